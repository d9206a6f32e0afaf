/**
 * The page's panels drawn from a state: the summary, the ring (storage nodes around a circle,
 * each with its shards as dots), and the tables' rows. Text goes in through textContent only
 * (names come from the cluster; nothing is parsed as HTML). Rows carry `data-testid`s and
 * `data-name`s for tests.
 */
import type { State } from './api.js';
import type { TraceView } from '../traces.js';

const SVG = 'http://www.w3.org/2000/svg';

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, attributes: Record<string, string> = {}): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

export function byId(id: string): HTMLElement {
  const node = document.getElementById(id);
  if (node === null) throw new Error(`the page has no #${id}`);
  return node;
}

export function bytes(value: number): string {
  if (value < 1024) return `${value} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let scaled = value / 1024;
  let unit = 0;
  while (scaled >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit++;
  }
  return `${scaled.toFixed(scaled < 10 ? 1 : 0)} ${units[unit]}`;
}

export const num = (value: number, digits = 1): string => (Number.isFinite(value) ? (Math.abs(value) >= 100 ? value.toFixed(0) : value.toFixed(digits)) : '–');
const time = (ms: number): string => (ms > 0 ? new Date(ms).toLocaleTimeString() : '–');
/** An address without its CURVE key (`tcp://127.0.0.1:7300`). */
const shortAddress = (address: string): string => address.replace(/#.*$/, '');

/** Replaces a table body's rows. */
function fill(tbodyId: string, rows: readonly HTMLTableRowElement[], empty: string, columns: number): void {
  const body = byId(tbodyId);
  if (rows.length === 0) {
    const row = el('tr', undefined, { class: 'empty' });
    row.append(el('td', empty, { colspan: String(columns) }));
    body.replaceChildren(row);
  } else body.replaceChildren(...rows);
}

function row(cells: readonly string[], attributes: Record<string, string> = {}, testIds: readonly (string | undefined)[] = []): HTMLTableRowElement {
  const tr = el('tr', undefined, attributes);
  cells.forEach((text, index) => tr.append(el('td', text, testIds[index] === undefined ? {} : { 'data-testid': testIds[index]! })));
  return tr;
}

export function renderSummary(state: State): void {
  const s = state.summary;
  const items: [string, string, string][] = [
    ['Storage nodes', String(s.storageNodes), 'summary-nodes'],
    ['Shards', String(s.shards), 'summary-shards'],
    ['Keys', String(s.keys), 'summary-keys'],
    ['Memory', bytes(s.bytes), 'summary-bytes'],
    ['Replication', String(s.replication), 'summary-replication'],
    ['Executors', String(s.executors), 'summary-executors'],
    ['Runtime slots', String(s.capacity), 'summary-capacity'],
    ['Warm runtimes', String(s.warmRuntimes), 'summary-warm'],
    ['Stem runtimes', String(s.stemRuntimes), 'summary-stems'],
    ['Functions', String(s.functions), 'summary-functions'],
    ['DAGs', String(s.dags), 'summary-dags'],
    ['Calls/s', num(s.callsPerSecond), 'summary-calls'],
    ['Errors/s', num(s.errorsPerSecond), 'summary-errors'],
    ['Traces kept', String(state.tracesHeld), 'summary-traces'],
  ];
  const list = byId('summary');
  list.replaceChildren(
    ...items.map(([label, value, testId]) => {
      const item = el('div', undefined, { class: 'stat' });
      item.append(el('dt', label), el('dd', value, { 'data-testid': testId }));
      return item;
    }),
  );
}

/** Storage nodes evenly around a circle, each with its shards as dots sized by their keys. */
export function renderRing(state: State): void {
  const size = 260;
  const centre = size / 2;
  const radius = 90;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${size} ${size}`);
  svg.setAttribute('data-testid', 'ring-svg');
  const circle = document.createElementNS(SVG, 'circle');
  for (const [name, value] of Object.entries({ cx: centre, cy: centre, r: radius, class: 'ring-line' })) circle.setAttribute(name, String(value));
  svg.append(circle);
  const nodes = state.ring;
  const maxKeys = Math.max(1, ...state.shards.map((shard) => shard.keys));
  nodes.forEach((node, index) => {
    const angle = (2 * Math.PI * index) / Math.max(1, nodes.length) - Math.PI / 2;
    const x = centre + radius * Math.cos(angle);
    const y = centre + radius * Math.sin(angle);
    const group = document.createElementNS(SVG, 'g');
    group.setAttribute('data-testid', 'ring-node');
    group.setAttribute('data-name', node.id);
    const dot = document.createElementNS(SVG, 'circle');
    for (const [name, value] of Object.entries({ cx: x, cy: y, r: 14, class: 'ring-node' })) dot.setAttribute(name, String(value));
    const title = document.createElementNS(SVG, 'title');
    title.textContent = `${node.id}: ${node.shards} shards, ${node.keys} keys, ${bytes(node.bytes)}, ${num(node.rps)} req/s`;
    dot.append(title);
    group.append(dot);
    const shards = state.shards.filter((shard) => shard.node === node.id);
    shards.forEach((shard, n) => {
      const around = angle + ((n - (shards.length - 1) / 2) * 0.22);
      const sx = centre + (radius + 30) * Math.cos(around);
      const sy = centre + (radius + 30) * Math.sin(around);
      const shardDot = document.createElementNS(SVG, 'circle');
      for (const [name, value] of Object.entries({ cx: sx, cy: sy, r: 3 + (6 * shard.keys) / maxKeys, class: 'ring-shard' })) shardDot.setAttribute(name, String(value));
      const shardTitle = document.createElementNS(SVG, 'title');
      shardTitle.textContent = `${node.id} shard ${shard.shard}: ${shard.keys} keys, ${bytes(shard.bytes)}`;
      shardDot.append(shardTitle);
      group.append(shardDot);
    });
    const label = document.createElementNS(SVG, 'text');
    for (const [name, value] of Object.entries({ x, y: y + 4, 'text-anchor': 'middle', class: 'ring-label' })) label.setAttribute(name, String(value));
    label.textContent = node.id.replace(/^node-/, '');
    group.append(label);
    svg.append(group);
  });
  const holder = byId('ring');
  holder.setAttribute('aria-label', `${nodes.length} storage nodes on the ring`);
  holder.replaceChildren(svg);
}

export function renderTables(state: State): void {
  fill('shards', state.shards.map((shard) => row([shard.node, String(shard.shard), String(shard.keys), bytes(shard.bytes), num(shard.rps)], { 'data-testid': 'shard-row' })), 'no shards reported yet', 5);
  fill(
    'executors',
    state.executors.map((executor) =>
      row([shortAddress(executor.address), `${Math.round(executor.utilisation * 100)}%`, String(executor.capacity), executor.warm.length === 0 ? '0' : `${executor.warm.length}: ${executor.warm.join(', ')}`, String(executor.stems)], { 'data-testid': 'executor-row' }),
    ),
    'no executors reported yet',
    5,
  );
  fill(
    'functions',
    state.functions.map((fn) =>
      row([fn.name, fn.version === 0 ? '–' : String(fn.version), num(fn.callsPerSecond, 2), num(fn.p50Ms), num(fn.p99Ms), num(fn.errorsPerSecond, 2)], { 'data-testid': 'function-row', 'data-name': fn.name }, ['function-name', undefined, 'function-calls', 'function-p50', 'function-p99', 'function-errors']),
    ),
    'no functions registered',
    6,
  );
  fill('dags', state.dags.map((dag) => row([dag.name, dag.functions.join(' → '), dag.edges.map(([from, to]) => `${from}→${to}`).join(', ') || '–'], { 'data-testid': 'dag-row', 'data-name': dag.name })), 'no DAGs registered', 3);
  fill('events', state.events.map((event) => row([time(event.atMs), event.kind, event.what, event.reason], { 'data-testid': 'event-row', 'data-kind': event.kind, class: event.kind === 'failed' || event.kind === 'left' ? 'bad' : '' })), 'no events yet', 4);
}

/** The recent traces; `select` is called with a trace id when its row is chosen. */
export function renderTraces(state: State, selected: string | undefined, select: (traceId: string) => void): void {
  fill(
    'traces',
    state.traces.map((trace) => {
      const tr = row([time(trace.startMs), trace.name, trace.service, String(trace.spanCount), num(trace.durationMs)], { 'data-testid': 'trace-row', 'data-trace-id': trace.traceId, tabindex: '0', class: `${trace.errors > 0 ? 'bad ' : ''}${trace.traceId === selected ? 'selected' : ''}`.trim() });
      tr.addEventListener('click', () => select(trace.traceId));
      tr.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' || event.key === ' ') select(trace.traceId);
      });
      return tr;
    }),
    'no traces received yet (roles export spans to POST /v1/traces)',
    5,
  );
}

/** One trace's spans as a waterfall: each span's offset from the trace's start and its length. */
export function renderWaterfall(trace: TraceView | undefined): void {
  byId('waterfall-title').textContent = trace === undefined ? 'select a trace' : `${trace.name} (${trace.traceId}): ${trace.spanCount} spans, ${num(trace.durationMs)} ms`;
  if (trace === undefined) {
    fill('waterfall', [], 'no trace selected', 5);
    return;
  }
  const total = Math.max(trace.durationMs, 0.001);
  const depth = new Map<string, number>();
  for (const span of trace.spans) depth.set(span.spanId, span.parentSpanId === '' ? 0 : (depth.get(span.parentSpanId) ?? 0) + 1);
  fill(
    'waterfall',
    trace.spans.map((span) => {
      const offset = span.startMs - trace.startMs;
      const duration = span.endMs - span.startMs;
      const tr = row([span.service, `${'  '.repeat(Math.min(10, depth.get(span.spanId) ?? 0))}${span.name}`, num(duration, 2), num(offset, 2), ''], { 'data-testid': 'span-row', class: span.status === 2 ? 'bad' : '' });
      const bar = el('div', undefined, { class: 'bar' });
      bar.style.marginLeft = `${(100 * offset) / total}%`;
      bar.style.width = `${Math.max(0.5, (100 * duration) / total)}%`;
      tr.lastElementChild!.append(bar);
      return tr;
    }),
    'the trace has no spans',
    5,
  );
}
