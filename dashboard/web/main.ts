/**
 * The dashboard page's entry (bundled by scripts/bundle-dashboard.js into app.js and app.css):
 * takes the admin token from the URL fragment, polls GET /api/state every second and redraws
 * every panel, and shows the waterfall of the trace chosen in the recent traces.
 */
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { ApiError, adoptTokenFromFragment, fetchState, fetchTrace, hasToken, setToken } from './api.js';
import type { State } from './api.js';
import { renderCharts } from './charts.js';
import { byId, renderRing, renderSummary, renderTables, renderTraces, renderWaterfall } from './render.js';

const POLL_MS = 1000;

let selected: string | undefined;
let shownTrace: string | undefined;
let last: State | undefined;

function status(text: string, bad = false): void {
  const node = byId('connection');
  node.textContent = text;
  node.classList.toggle('bad', bad);
}

function select(traceId: string): void {
  selected = traceId;
  shownTrace = undefined;
  if (last !== undefined) draw(last);
}

/**
 * Shows the selected trace's waterfall, read again whenever its span count in the list changes
 * (the roles export every second, so a trace's spans arrive over a few seconds).
 */
async function showTrace(state: State): Promise<void> {
  if (selected === undefined) return;
  const traceId = selected;
  const version = `${traceId}:${state.traces.find((summary) => summary.traceId === traceId)?.spanCount ?? '?'}`;
  if (shownTrace === version) return;
  shownTrace = version;
  try {
    const trace = await fetchTrace(traceId);
    if (selected !== traceId) return;
    renderWaterfall(trace);
  } catch {
    // Read again at the next round.
    shownTrace = undefined;
    renderWaterfall(undefined);
  }
}

function draw(state: State): void {
  renderSummary(state);
  renderRing(state);
  renderTables(state);
  renderTraces(state, selected, select);
  renderCharts(state);
  void showTrace(state);
}

async function poll(): Promise<void> {
  try {
    const state = await fetchState();
    last = state;
    // The newest trace is shown until one is chosen.
    if (selected === undefined && state.traces.length > 0) select(state.traces[0]!.traceId);
    draw(state);
    const problems = state.problems.length === 0 ? '' : ` (${state.problems.join('; ')})`;
    status(`${state.summary.connected ? 'live' : 'waiting for the cluster'}: round ${state.rounds}, updated ${new Date(state.atMs || Date.now()).toLocaleTimeString()}${problems}`, !state.summary.connected);
    byId('token-form').hidden = true;
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      status(`${error.message}`, true);
      byId('token-form').hidden = false;
    } else status(`no answer from the dashboard: ${error instanceof Error ? error.message : String(error)}`, true);
  }
}

function start(): void {
  adoptTokenFromFragment();
  const form = byId('token-form') as HTMLFormElement;
  form.hidden = hasToken();
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const input = byId('token-input') as HTMLInputElement;
    setToken(input.value);
    input.value = '';
    void poll();
  });
  renderWaterfall(undefined);
  const loop = (): void => {
    void poll().finally(() => setTimeout(loop, POLL_MS));
  };
  loop();
}

start();
