/**
 * Across machines, on one machine: seven hosts in network namespaces this test creates
 * (test/netns.ts: one address each on 10.213.0.0/24, joined by a bridge), CURVE on everywhere
 * (keys from `lfaas keys init`, never --insecure), every link given latency by the transport's
 * test hook (LFAAS_TEST_SEND_DELAY_MS; this kernel has no `tc netem`).
 *
 * h1 routing (binds 0.0.0.0, --advertise its address), h2 and h3 storage nodes (replication 2),
 * h4 a scheduler, h5 and h6 executors (h5 binds 0.0.0.0 with no --advertise: it advertises its one
 * interface address), h7 the client. Nobody is given a scheduler address: the executors and the
 * client discover the scheduler through the routing node. The client (test/multi-host-client.mjs,
 * the built SDK) runs the shared-counter demo and the DAG demo; then h6 (an executor host) and h3
 * (a storage host) die (processes SIGKILLed by pid, links down) and both demos run again.
 *
 * Needs root and iproute2: without them the test fails saying so (it does not skip).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from './cluster.js';
import { NetnsLab } from './netns.js';
import type { HostProcess } from './netns.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLIENT_SCRIPT = fileURLToPath(new URL('./multi-host-client.mjs', import.meta.url));
const HOSTS = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'h7'] as const;
/** The latency every send gets (the transport's test hook). */
const LINK_DELAY_MS = 2;
/** ctx.increment calls per counter run, made by LANES callers at once (as the demo's clients). */
const CALLS = 24;
const LANES = 4;

describe('multi-host: roles on separate hosts (network namespaces), discovery through routing', () => {
  let lab: NetnsLab | undefined;
  let work: string;
  let keys: string;
  let token: string;

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'lfaas-multi-host-'));
    keys = join(work, 'keys');
    const init = spawnSync(process.execPath, [CLI, 'keys', 'init', keys], { encoding: 'utf8', timeout: 20_000 });
    if (init.status !== 0) throw new Error(`lfaas keys init failed: ${init.stderr}`);
    token = readFileSync(join(keys, 'admin.token'), 'utf8').trim();
    lab = NetnsLab.create(HOSTS);
  });

  afterAll(async () => {
    await lab?.teardown();
    rmSync(work, { recursive: true, force: true });
  });

  /** A role on a host: `lfaas <args> --keys <keys>`, its ready line. */
  const role = async (host: string, args: readonly string[]): Promise<{ started: HostProcess; ready: Record<string, unknown> }> => {
    const env: NodeJS.ProcessEnv = { LFAAS_TEST_SEND_DELAY_MS: String(LINK_DELAY_MS), LFAAS_SCHEDULERS: '', LFAAS_ROUTING: '', LFAAS_KEYS: '' };
    const started = lab!.spawn(host, process.execPath, [CLI, ...args, '--keys', keys], env);
    return { started, ready: await NetnsLab.ready(started) };
  };

  /** One run of the client on h7; its result line. */
  const client = async (config: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const built = { client: new URL('../dist/client/index.js', import.meta.url).href, protocol: new URL('../dist/protocol/index.js', import.meta.url).href };
    const started = lab!.spawn('h7', process.execPath, [CLIENT_SCRIPT, JSON.stringify({ ...built, budgetMs: 40_000, ...config })], {
      LFAAS_TOKEN: token,
      LFAAS_TEST_SEND_DELAY_MS: String(LINK_DELAY_MS),
      LFAAS_SCHEDULERS: '',
    });
    await NetnsLab.exited(started, 60_000);
    const line = started.stdout.find((text) => text.startsWith('result '));
    if (line === undefined) throw new Error(`the client printed no result:\n${started.stderr.slice(-30).join('\n')}`);
    return JSON.parse(line.slice('result '.length)) as Record<string, unknown>;
  };

  it('runs the counter and DAG demos across hosts, and survives an executor host and a storage host dying', async () => {
    const address = (host: string): string => lab!.host(host).address;
    const routing = await role('h1', ['routing', '--host', '0.0.0.0', '--advertise', address('h1'), '--port', '7100', '--failure-timeout-ms', '1500']);
    const routingAddress = String(routing.ready['address']);
    expect(routingAddress).toMatch(new RegExp(`^tcp://${address('h1').replaceAll('.', '\\.')}:7100#[A-Za-z0-9_-]{43}$`));

    const storage = (host: string, id: string): Promise<unknown> => role(host, ['kvs', '--id', id, '--host', address(host), '--routing', routingAddress, '--data', join(work, id), '--shards', '1', '--threads', 'off', '--metrics-port', '-1']);
    await Promise.all([storage('h2', 'node-a'), storage('h3', 'node-b')]);
    const scheduler = await role('h4', ['scheduler', '--host', address('h4'), '--routing', routingAddress, '--metrics-port', '0']);
    expect(String(scheduler.ready['address'])).toContain(`tcp://${address('h4')}:`);
    const executorArgs = ['--routing', routingAddress, '--workers', '2', '--prewarm', '1', '--isolation', 'process', '--metrics-port', '-1'];
    // h5: a wildcard bind with no --advertise advertises the host's one interface address, never loopback.
    const [wildcard, advertised] = await Promise.all([role('h5', ['executor', '--host', '0.0.0.0', ...executorArgs]), role('h6', ['executor', '--host', address('h6'), '--advertise', address('h6'), ...executorArgs])]);
    expect(String(wildcard.ready['address'])).toContain(`tcp://${address('h5')}:`);
    expect(String(advertised.ready['address'])).toContain(`tcp://${address('h6')}:`);
    // A monitor (on the routing host) and an HTTP ingress (on the scheduler host), neither given the scheduler.
    const monitor = await role('h1', ['monitor', '--routing', routingAddress, '--host', address('h1'), '--metrics-port', '-1']);
    const ingressPort = 7080;
    await role('h4', ['ingress', '--routing', routingAddress, '--host', address('h4'), '--advertise', address('h4'), '--port', String(ingressPort), '--metrics-port', '-1']);

    const functions = { increment: join(ROOT, 'examples/functions/increment.ts'), square: join(ROOT, 'examples/functions/square.ts'), counter: join(ROOT, 'examples/functions/counter-increment.ts') };
    const schedulerMetrics = `http://${address('h4')}:${String(scheduler.ready['metricsPort'])}/metrics`;
    const common = { routing: [routingAddress], host: address('h7'), ingress: `http://${address('h4')}:${ingressPort}`, functions, schedulerMetrics, calls: CALLS, lanes: LANES };

    const before = await client({ ...common, phase: 'before', executors: 2, storageHosts: [address('h2'), address('h3')] });
    expect(before).toMatchObject({ executorsSeen: true, storageSeen: true, serving: true, callsFailed: [], counter: CALLS, dag: [4, 9, 16, 25], ingress: 25 });
    // The ingress announces its URL with its member key (ingress.key): callers find it through the routing node.
    expect(before['services']).toEqual({ schedulers: [scheduler.ready['address']], monitors: [monitor.ready['address']], ingresses: [`http://${address('h4')}:${ingressPort}`] });

    // An executor host and a storage host die: processes killed by pid, links down.
    lab!.kill('h6');
    lab!.kill('h3');
    const after = await client({ ...common, phase: 'after', executors: 1, storageHosts: [address('h2')] });
    expect(after).toMatchObject({ executorsSeen: true, storageSeen: true, serving: true, callsFailed: [], counter: CALLS, dag: [4, 9, 16, 25], ingress: 25 });
  }, 150_000);
});
