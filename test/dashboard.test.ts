/**
 * The live dashboard in a real browser: `lfaas up` (which runs the dashboard) on free ports, a
 * function registered and called through the SDK, the page opened in Debian's Chromium through
 * playwright-core. The page loads with the admin token from its URL fragment (then cleared from
 * the address bar), lists the function, shows its calls/s rising after calls and its errors after
 * failing calls, shows a trace posted to the OTLP receiver with its waterfall, and its structure
 * holds: the ARIA snapshot has every panel's heading and table columns in order, and the
 * screenshot is a PNG in which every panel has a non-empty box inside the viewport. Structure, not
 * pixels: nothing depends on fonts or colours.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER_FILE, LatticeFaas, readClusterFile } from '../client/index.js';
import type { ClusterFile } from '../client/index.js';
import { otlpBody } from '../dashboard/testing.js';
import { startClientTracing } from '../cli/index.js';
import { lfaasTracer } from '../protocol/index.js';
import { context, trace } from '@opentelemetry/api';
import { eventually } from './cluster.js';
import { killLeftovers, pidsIn, startUp } from './up-process.js';

const CHROMIUM = process.env['LFAAS_CHROMIUM'] ?? '/usr/bin/chromium';
const VIEWPORT = { width: 1400, height: 2600 };

/** The page's outline: each panel's heading, then its table's columns, in document order. */
const OUTLINE: readonly string[] = [
  '- heading "Lattice FaaS dashboard" [level=1]',
  '- heading "Cluster" [level=2]',
  '- heading "Ring" [level=2]',
  '- heading "Shards" [level=2]',
  ...['Node', 'Shard', 'Keys', 'Memory', 'Req/s'].map((name) => `- columnheader "${name}"`),
  '- heading "Executors" [level=2]',
  ...['Address', 'Utilisation', 'Capacity', 'Warm runtimes', 'Stem runtimes'].map((name) => `- columnheader "${name}"`),
  '- heading "Functions" [level=2]',
  ...['Name', 'Version', 'Calls/s', 'p50 ms', 'p99 ms', 'Errors/s'].map((name) => `- columnheader "${name}"`),
  '- heading "DAGs" [level=2]',
  ...['Name', 'Functions', 'Edges'].map((name) => `- columnheader "${name}"`),
  '- heading "Events" [level=2]',
  ...['Time', 'Kind', 'What', 'Reason'].map((name) => `- columnheader "${name}"`),
  '- heading "Recent traces" [level=2]',
  ...['Time', 'Trace', 'Service', 'Spans', 'Duration ms'].map((name) => `- columnheader "${name}"`),
  '- heading "Trace waterfall" [level=3]',
  ...['Service', 'Span', 'Duration ms', 'Offset ms', 'Timeline'].map((name) => `- columnheader "${name}"`),
];
const PANELS = ['summary', 'ring', 'shards', 'executors', 'functions', 'dags', 'events', 'traces'];

/** A number in a cell ("–" and empty read as 0). */
async function cellNumber(page: Page, selector: string): Promise<number> {
  const text = (await page.locator(selector).first().textContent({ timeout: 2000 }).catch(() => '')) ?? '';
  const value = Number.parseFloat(text);
  return Number.isFinite(value) ? value : 0;
}

/** Width and height of a PNG, from its IHDR chunk; throws when `bytes` is not a PNG. */
function pngSize(bytes: Buffer): { width: number; height: number } {
  if (!bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) throw new Error('not a PNG');
  if (bytes.subarray(12, 16).toString('latin1') !== 'IHDR') throw new Error('a PNG without IHDR first');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

describe('the dashboard in Chromium', () => {
  const data = mkdtempSync(join(tmpdir(), 'lfaas-dashboard-'));
  let up: ReturnType<typeof startUp> | undefined;
  let state: ClusterFile;
  let faas: LatticeFaas | undefined;
  let browser: Browser | undefined;
  let page: Page;

  beforeAll(async () => {
    expect(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (apt-get install chromium; or set LFAAS_CHROMIUM)`).toBe(true);
    up = startUp(['--data', data, '--nodes', '2', '--executors', '1']);
    const ready = await eventually(() => up!.output().includes('cluster ready') || up!.child.exitCode !== null, 120_000);
    expect(ready && up.output().includes('cluster ready'), up.output().slice(-3000)).toBe(true);
    state = readClusterFile(join(up.cwd, CLUSTER_FILE));
    expect(state.dashboard, up.output().slice(-3000)).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    // The line comes after "cluster ready", perhaps in a later chunk of up's output.
    const line = `dashboard ${state.dashboard}/#token=${state.token}`;
    await eventually(() => up!.output().includes(line), 10_000);
    expect(up.output()).toContain(line);
    faas = await LatticeFaas.connect({ routing: state.routing, schedulers: state.schedulers, token: state.token, connectTimeoutMs: 10_000 });
    await faas.register('dash-square', { code: 'module.exports = (x) => x * x;' }, { timeoutMs: 10_000 });
    await faas.register('dash-fail', { code: 'module.exports = () => { throw new Error("always"); };' }, { timeoutMs: 10_000 });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      timeout: 60_000,
    });
    page = await browser.newPage({ viewport: VIEWPORT });
    page.setDefaultTimeout(30_000);
  }, 240_000);

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await faas?.close().catch(() => {});
    if (up !== undefined) {
      const pids = pidsIn(up.output());
      if (up.child.exitCode === null && up.child.signalCode === null) up.child.kill('SIGTERM');
      await Promise.race([up.exited, new Promise((resolve) => setTimeout(resolve, 20_000))]);
      killLeftovers(pids);
    }
    rmSync(data, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  }, 60_000);

  it('loads with the token from the fragment and lists the function, its calls and errors as they happen', async () => {
    const requests: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    await page.goto(`${state.dashboard}/#token=${state.token}`, { waitUntil: 'load' });
    await page.getByRole('heading', { name: 'Lattice FaaS dashboard', level: 1 }).waitFor();
    // The token left the address bar; no request carried it in its URL; none went elsewhere.
    expect(page.url()).not.toContain('token');
    expect(requests.filter((url) => url.includes(state.token))).toEqual([]);
    expect(requests.filter((url) => !url.startsWith(state.dashboard!))).toEqual([]);

    const row = page.locator('tr[data-testid="function-row"][data-name="dash-square"]');
    await row.waitFor({ timeout: 30_000 });
    expect(await row.locator('td').nth(1).textContent()).toBe('1');
    await expect.poll(() => page.getByTestId('connection').textContent(), { timeout: 30_000 }).toMatch(/^live: round \d+/);
    await page.locator('tr[data-testid="executor-row"]').first().waitFor();
    expect(await page.locator('tr[data-testid="shard-row"]').count()).toBe(4);
    expect(await page.locator('[data-testid="ring-node"]').count()).toBe(2);

    // Calls: the page's calls/s for the function rises above 0 (calls keep coming until it does).
    const callsShown = await eventually(async () => {
      await Promise.all(Array.from({ length: 8 }, (_, n) => faas!.call('dash-square', [n], { timeoutMs: 10_000 })));
      return (await cellNumber(page, 'tr[data-name="dash-square"] [data-testid="function-calls"]')) > 0;
    }, 60_000);
    expect(callsShown, await page.locator('tbody#functions').innerText()).toBe(true);
    expect(await cellNumber(page, '[data-testid="summary-calls"]')).toBeGreaterThan(0);

    // Errors: failed calls show as the function's errors/s.
    await page.locator('tr[data-testid="function-row"][data-name="dash-fail"]').waitFor();
    const errorsShown = await eventually(async () => {
      await Promise.allSettled(Array.from({ length: 4 }, () => faas!.call('dash-fail', [], { timeoutMs: 10_000 })));
      return (await cellNumber(page, 'tr[data-name="dash-fail"] [data-testid="function-errors"]')) > 0;
    }, 60_000);
    expect(errorsShown, await page.locator('tbody#functions').innerText()).toBe(true);
  }, 180_000);

  it('shows a trace posted to the OTLP receiver, with its waterfall', async () => {
    const traceId = randomBytes(16).toString('hex');
    const [root, child] = [randomBytes(8).toString('hex'), randomBytes(8).toString('hex')];
    const now = Date.now();
    const body = otlpBody(traceId, [
      { spanId: root, name: 'call dash-square', startMs: now - 40, endMs: now },
      { spanId: child, parent: root, name: 'run dash-square', startMs: now - 30, endMs: now - 5 },
    ]);
    const posted = await fetch(`${state.dashboard}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
    expect(posted.status).toBe(200);
    const row = page.locator(`tr[data-testid="trace-row"][data-trace-id="${traceId}"]`);
    await row.waitFor({ timeout: 30_000 });
    await row.click();
    await expect.poll(() => page.getByTestId('waterfall-title').textContent(), { timeout: 30_000 }).toContain(traceId);
    const spans = page.locator('tr[data-testid="span-row"]');
    await expect.poll(() => spans.count(), { timeout: 30_000 }).toBe(2);
    expect(await spans.nth(0).locator('td').nth(1).textContent()).toContain('call dash-square');
    expect(await spans.nth(1).locator('td').nth(3).textContent()).toBe('10.00');
  }, 90_000);

  it('follows a traced call: the client traces a call, and the page shows its spans from the client, the scheduler and the executor', async () => {
    // The cluster's roles export their spans to the dashboard (lfaas up points them at it); this client does too.
    const stop = await startClientTracing({ endpoint: state.dashboard!, serviceName: 'lfaas-dashboard-test' });
    let traceId: string;
    try {
      const span = lfaasTracer().startSpan('dashboard test call');
      traceId = span.spanContext().traceId;
      await context.with(trace.setSpan(context.active(), span), () => faas!.call('dash-square', [12], { timeoutMs: 10_000 }));
      span.end();
    } finally {
      await stop();
    }
    const row = page.locator(`tr[data-testid="trace-row"][data-trace-id="${traceId}"]`);
    await row.waitFor({ timeout: 30_000 });
    await row.click();
    await expect.poll(() => page.getByTestId('waterfall-title').textContent(), { timeout: 30_000 }).toContain(traceId);
    // The roles export every second: the waterfall fills in as their spans arrive (it is re-read while selected).
    const services = async (): Promise<string[]> => [...new Set(await page.locator('tr[data-testid="span-row"] td:first-child').allTextContents())].sort();
    await expect.poll(services, { timeout: 30_000 }).toEqual(expect.arrayContaining(['lfaas-dashboard-test', 'lfaas-executor', 'lfaas-scheduler']));
    const names = await page.locator('tr[data-testid="span-row"] td:nth-child(2)').allTextContents();
    expect(names.map((name) => name.trim())).toEqual(expect.arrayContaining(['dashboard test call', 'lfaas.call', 'lfaas.schedule', 'lfaas.run']));
  }, 90_000);

  it('has the expected structure: the ARIA outline, and a screenshot with every panel in view', async () => {
    const aria = await page.locator('body').ariaSnapshot();
    const lines = aria.split('\n').map((line) => line.trim());
    let at = -1;
    for (const expected of OUTLINE) {
      const found = lines.findIndex((line, index) => index > at && line.startsWith(expected));
      expect(found, `${expected} after line ${at} of:\n${aria}`).toBeGreaterThan(at);
      at = found;
    }
    const path = join(data, 'dashboard.png');
    const shot = await page.screenshot({ path, fullPage: false });
    expect(readFileSync(path).equals(shot)).toBe(true);
    expect(pngSize(shot)).toEqual(VIEWPORT);
    for (const panel of PANELS) {
      const box = await page.getByTestId(`panel-${panel}`).boundingBox();
      expect(box, panel).not.toBeNull();
      expect(box!.width, panel).toBeGreaterThan(50);
      expect(box!.height, panel).toBeGreaterThan(30);
      expect(box!.x, panel).toBeGreaterThanOrEqual(0);
      expect(box!.y, panel).toBeGreaterThanOrEqual(0);
      expect(box!.x + box!.width, panel).toBeLessThanOrEqual(VIEWPORT.width);
      expect(box!.y + box!.height, panel).toBeLessThanOrEqual(VIEWPORT.height);
    }
    // The charts drew (uPlot's canvases), bundled with the page.
    expect(await page.locator('#chart-calls canvas').count()).toBeGreaterThan(0);
    expect(await page.locator('#chart-latency canvas').count()).toBeGreaterThan(0);
  }, 60_000);
});
