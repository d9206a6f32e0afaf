/**
 * The Kubernetes node provider (cli/kubernetes-provider.ts) against a small HTTP server on
 * 127.0.0.1 that implements exactly the API calls the provider makes: GET and PUT of the scale
 * subresource of a StatefulSet and of a Deployment, with resourceVersions and 409 conflicts as the
 * API server answers them; and once with the real departure (cli/kubernetes-monitor.ts) of a
 * real storage node process, which must have left before the count is lowered. No Kubernetes runs here; the provider reaches the server through a real
 * kubeconfig file (plain http, a bearer token) and the real @kubernetes/client-node (which accepts
 * an http server only with insecure-skip-tls-verify set).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KvsClient } from '../client/index.js';
import { departStorageNode, loadKubernetesProvider } from '../cli/index.js';
import { ErrorCode, GSet } from '../lattices/index.js';
import { TestCluster, eventually, startProcess, stopProcess, testKeysFolder } from './cluster.js';
import type { RoleProcess } from './cluster.js';

const { KubernetesApiError, KubernetesProvider, kubeConfigFrom } = await loadKubernetesProvider();
type KubernetesProvider = InstanceType<typeof KubernetesProvider>;
type KubernetesApiError = InstanceType<typeof KubernetesApiError>;

const NAMESPACE = 'lfaas';
const TOKEN = 'test-token';

interface Workload {
  replicas: number;
  resourceVersion: number;
}

/** The fake API server's state and what it was asked. */
const state = {
  workloads: new Map<string, Workload>(),
  calls: [] as string[],
  unexpected: [] as string[],
  /** Answers to give before the real ones: e.g. a 409 to the next PUT, or a 403 to everything. */
  inject: [] as { method: string; status: number }[],
  /** Bumps the resourceVersion (as a status update would) right after the next GET. */
  bumpAfterGet: 0,
};

const SCALE_PATH = /^\/apis\/apps\/v1\/namespaces\/([a-z0-9-]+)\/(statefulsets|deployments)\/([a-z0-9-]+)\/scale$/;

function status(response: ServerResponse, code: number, reason: string, message: string): void {
  response.writeHead(code, { 'content-type': 'application/json' });
  response.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code }));
}

function scaleOf(kind: string, name: string, workload: Workload): unknown {
  return { kind: 'Scale', apiVersion: 'autoscaling/v1', metadata: { name, namespace: NAMESPACE, resourceVersion: String(workload.resourceVersion) }, spec: { replicas: workload.replicas }, status: { replicas: workload.replicas, selector: `app.kubernetes.io/name=${kind}` } };
}

async function bodyOf(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function answer(request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = new URL(request.url ?? '/', 'http://x').pathname;
  const method = request.method ?? 'GET';
  const match = SCALE_PATH.exec(path);
  if (request.headers.authorization !== `Bearer ${TOKEN}`) return status(response, 401, 'Unauthorized', 'no token');
  if (match === null || match[1] !== NAMESPACE || (method !== 'GET' && method !== 'PUT')) {
    state.unexpected.push(`${method} ${path}`);
    return status(response, 404, 'NotFound', `${path} is not served here`);
  }
  const [, , kind, name] = match as unknown as [string, string, string, string];
  state.calls.push(`${method} ${kind}/${name}`);
  const injected = state.inject.findIndex((entry) => entry.method === method || entry.method === '*');
  if (injected >= 0) {
    const { status: code } = state.inject[injected]!;
    if (state.inject[injected]!.method !== '*') state.inject.splice(injected, 1);
    return status(response, code, code === 403 ? 'Forbidden' : 'Conflict', code === 403 ? `${kind}.apps "${name}" is forbidden: User "system:serviceaccount:lfaas:lfaas-monitor" cannot update resource "${kind}/scale"` : 'the object has been modified; please apply your changes to the latest version and try again');
  }
  const workload = state.workloads.get(`${kind}/${name}`);
  if (workload === undefined) return status(response, 404, 'NotFound', `${kind}.apps "${name}" not found`);
  if (method === 'GET') {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify(scaleOf(kind, name, workload)));
    if (state.bumpAfterGet > 0) {
      state.bumpAfterGet--;
      workload.resourceVersion++;
    }
    return;
  }
  const body = JSON.parse(await bodyOf(request)) as { kind?: string; metadata?: { name?: string; resourceVersion?: string }; spec?: { replicas?: number } };
  if (body.kind !== 'Scale' || body.metadata?.name !== name || typeof body.spec?.replicas !== 'number') return status(response, 400, 'BadRequest', 'not a Scale of this object');
  // Optimistic concurrency, as the API server does it: a stale resourceVersion is a conflict.
  if (body.metadata.resourceVersion !== undefined && body.metadata.resourceVersion !== String(workload.resourceVersion)) return status(response, 409, 'Conflict', 'the object has been modified; please apply your changes to the latest version and try again');
  workload.replicas = body.spec.replicas;
  workload.resourceVersion++;
  response.writeHead(200, { 'content-type': 'application/json' });
  response.end(JSON.stringify(scaleOf(kind, name, workload)));
}

let server: Server;
let dir: string;
let kubeconfig: string;

beforeAll(async () => {
  server = createServer((request, response) => {
    answer(request, response).catch((error: unknown) => status(response, 500, 'InternalError', String(error)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  dir = mkdtempSync(join(tmpdir(), 'lfaas-k8s-provider-'));
  kubeconfig = join(dir, 'kubeconfig.yaml');
  writeFileSync(kubeconfig, ['apiVersion: v1', 'kind: Config', 'clusters:', '- name: local', '  cluster:', `    server: http://127.0.0.1:${port}`, '    insecure-skip-tls-verify: true', 'users:', '- name: monitor', '  user:', `    token: ${TOKEN}`, 'contexts:', '- name: local', '  context:', '    cluster: local', '    user: monitor', `    namespace: ${NAMESPACE}`, 'current-context: local', ''].join('\n'));
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  state.workloads = new Map([
    ['statefulsets/lfaas-storage', { replicas: 3, resourceVersion: 100 }],
    ['deployments/lfaas-executor', { replicas: 2, resourceVersion: 200 }],
  ]);
  state.calls = [];
  state.unexpected = [];
  state.inject = [];
  state.bumpAfterGet = 0;
});

function provider(departed: string[] = [], depart?: (pod: string) => Promise<void>): { provider: KubernetesProvider; log: string[] } {
  const log: string[] = [];
  return {
    log,
    provider: new KubernetesProvider({
      kubeConfig: kubeConfigFrom(kubeconfig),
      namespace: NAMESPACE,
      storageStatefulSet: 'lfaas-storage',
      executorDeployment: 'lfaas-executor',
      depart:
        depart ??
        (async (pod) => {
          // The storage count must not have been lowered before the node left.
          expect(state.workloads.get('statefulsets/lfaas-storage')!.replicas).toBe(3);
          departed.push(pod);
        }),
      log: (line) => log.push(line),
    }),
  };
}

describe('the Kubernetes node provider', () => {
  it('reads the counts: nodes() lists the StatefulSet pods and the Deployment replicas', async () => {
    const { provider: p } = provider();
    expect(p.nodes('storage')).toEqual([]);
    await p.refresh();
    expect(p.nodes('storage')).toEqual(['lfaas-storage-0', 'lfaas-storage-1', 'lfaas-storage-2']);
    expect(p.nodes('executor')).toHaveLength(2);
    expect(state.calls).toEqual(['GET statefulsets/lfaas-storage', 'GET deployments/lfaas-executor']);
    expect(state.unexpected).toEqual([]);
  });

  it('adds a storage node and an executor through the scale subresource', async () => {
    const { provider: p } = provider();
    await expect(p.add('storage')).resolves.toBe('lfaas-storage-3');
    expect(state.workloads.get('statefulsets/lfaas-storage')!.replicas).toBe(4);
    await p.add('executor');
    expect(state.workloads.get('deployments/lfaas-executor')!.replicas).toBe(3);
    expect(p.nodes('storage')).toEqual(['lfaas-storage-0', 'lfaas-storage-1', 'lfaas-storage-2', 'lfaas-storage-3']);
    expect(p.nodes('executor')).toHaveLength(3);
    expect(state.calls).toEqual(['GET statefulsets/lfaas-storage', 'PUT statefulsets/lfaas-storage', 'GET deployments/lfaas-executor', 'PUT deployments/lfaas-executor']);
    expect(state.unexpected).toEqual([]);
  });

  it('several adds at once each add one', async () => {
    const { provider: p } = provider();
    const names = await Promise.all([p.add('executor'), p.add('executor'), p.add('executor')]);
    expect(new Set(names).size).toBe(3);
    expect(state.workloads.get('deployments/lfaas-executor')!.replicas).toBe(5);
  });

  it('removes a storage node: the highest ordinal departs first, then the count is lowered', async () => {
    const departed: string[] = [];
    const { provider: p, log } = provider(departed);
    await p.remove('storage', 'lfaas-storage-0');
    expect(departed).toEqual(['lfaas-storage-2']);
    expect(state.workloads.get('statefulsets/lfaas-storage')!.replicas).toBe(2);
    expect(log.some((line) => line.includes('highest ordinal'))).toBe(true);
    expect(p.nodes('storage')).toEqual(['lfaas-storage-0', 'lfaas-storage-1']);
    expect(state.unexpected).toEqual([]);
  });

  it('a departure that fails scales nothing', async () => {
    const { provider: p } = provider([], async () => {
      throw new Error('lfaas-storage-2 did not leave');
    });
    await expect(p.remove('storage', 'lfaas-storage-2')).rejects.toThrow(/did not leave/);
    expect(state.workloads.get('statefulsets/lfaas-storage')!.replicas).toBe(3);
    expect(state.calls.filter((call) => call.startsWith('PUT'))).toEqual([]);
  });

  it('removes an executor by lowering the Deployment\'s count', async () => {
    const { provider: p } = provider();
    await p.remove('executor', 'tcp://10.0.0.7:7200#key');
    expect(state.workloads.get('deployments/lfaas-executor')!.replicas).toBe(1);
    // Never below one.
    await expect(p.remove('executor', 'tcp://10.0.0.8:7200#key')).rejects.toThrow(/none is removed/);
    expect(state.workloads.get('deployments/lfaas-executor')!.replicas).toBe(1);
  });

  it('a 409 conflict is read again and retried with the new resourceVersion', async () => {
    const { provider: p, log } = provider();
    // A status update lands between the provider's read and its write: its resourceVersion is stale.
    state.bumpAfterGet = 1;
    await expect(p.add('storage')).resolves.toBe('lfaas-storage-3');
    expect(state.workloads.get('statefulsets/lfaas-storage')!.replicas).toBe(4);
    expect(state.calls).toEqual(['GET statefulsets/lfaas-storage', 'PUT statefulsets/lfaas-storage', 'GET statefulsets/lfaas-storage', 'PUT statefulsets/lfaas-storage']);
    expect(log.some((line) => line.includes('409'))).toBe(true);
  });

  it('conflicts without end give up, bounded', async () => {
    const { provider: p } = provider();
    state.inject = Array.from({ length: 20 }, () => ({ method: 'PUT', status: 409 }));
    const error = await p.add('executor').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(KubernetesApiError);
    expect((error as KubernetesApiError).status).toBe(409);
    expect(state.calls.filter((call) => call.startsWith('PUT')).length).toBe(6);
    expect(state.workloads.get('deployments/lfaas-executor')!.replicas).toBe(2);
  });

  it('a 403 (the service account lacks the right) is a typed UNAUTHORISED error', async () => {
    const { provider: p } = provider();
    state.inject = [{ method: 'PUT', status: 403 }];
    const error = await p.add('storage').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(KubernetesApiError);
    expect((error as KubernetesApiError).code).toBe(ErrorCode.UNAUTHORISED);
    expect((error as KubernetesApiError).status).toBe(403);
    expect((error as Error).message).toMatch(/service account/);
    expect(state.workloads.get('statefulsets/lfaas-storage')!.replicas).toBe(3);
  });

  it('a workload that does not exist is a typed error naming it', async () => {
    const log: string[] = [];
    const p = new KubernetesProvider({ kubeConfig: kubeConfigFrom(kubeconfig), namespace: NAMESPACE, storageStatefulSet: 'nope', depart: async () => undefined, log: (line) => log.push(line) });
    const error = await p.add('storage').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(KubernetesApiError);
    expect((error as KubernetesApiError).status).toBe(404);
    expect((error as KubernetesApiError).code).toBe(ErrorCode.INTERNAL);
    await expect(p.add('executor')).rejects.toThrow(/executor-deployment/);
  });
});

describe('a storage removal through the provider, with the real departure', () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
  });

  it('the highest ordinal\'s node hands every key off and exits before the StatefulSet is scaled down', async () => {
    cluster = new TestCluster();
    await cluster.startRouting({ global: 1, failureTimeoutMs: 1000 });
    // Storage nodes named as a StatefulSet's pods are (their node id is the pod name).
    for (const id of ['lfaas-storage-0', 'lfaas-storage-1']) await cluster.startNode(id, 1, 'off');
    await cluster.waitForRing();
    const client = await KvsClient.connect({ routing: cluster.routingAddresses });
    try {
      const keys = Array.from({ length: 200 }, (_, i) => `k8s-depart-${i}`);
      for (const key of keys) await client.put(key, GSet.of(key), { ack: 'replicated' });
      state.workloads.set('statefulsets/lfaas-storage', { replicas: 2, resourceVersion: 7 });
      const leaving = cluster.nodes.get('lfaas-storage-1')!;
      const exited = new Promise<number | null>((resolve) =>
        leaving.child.once('exit', (code) => {
          state.calls.push('exit lfaas-storage-1');
          resolve(code);
        }),
      );
      const log: string[] = [];
      const nodes = cluster.nodes;
      const p = new KubernetesProvider({
        kubeConfig: kubeConfigFrom(kubeconfig),
        namespace: NAMESPACE,
        storageStatefulSet: 'lfaas-storage',
        depart: (pod) => departStorageNode({ nodeId: pod, control: String(nodes.get(pod)!.ready['control']), metrics: `http://127.0.0.1:${String(nodes.get(pod)!.ready['metricsPort'])}`, keys: testKeysFolder(), timeoutMs: 30_000, log: (line) => log.push(line) }),
        log: (line) => log.push(line),
      });
      await p.remove('storage', 'lfaas-storage-1');
      // It left cleanly (every key handed off), and only then was the count lowered.
      expect(await exited).toBe(0);
      expect(state.calls).toEqual(['GET statefulsets/lfaas-storage', 'exit lfaas-storage-1', 'GET statefulsets/lfaas-storage', 'PUT statefulsets/lfaas-storage']);
      expect(state.workloads.get('statefulsets/lfaas-storage')!.replicas).toBe(1);
      // Every key is still there, on the node that stays.
      for (const key of keys) expect((await client.get(key))?.reveal(), key).toEqual([key]);
    } finally {
      await client.close();
    }
  }, 90_000);
});

describe('lfaas monitor --provider kubernetes', () => {
  let cluster: TestCluster | undefined;
  let monitor: RoleProcess | undefined;
  let scheduler: RoleProcess | undefined;
  afterEach(async () => {
    for (const role of [monitor, scheduler]) if (role !== undefined) await stopProcess(role);
    monitor = undefined;
    scheduler = undefined;
    await cluster?.stop();
    cluster = undefined;
  });

  it('reads both scales at start, then carries out its decisions through them', async () => {
    cluster = new TestCluster();
    await cluster.startRouting({ global: 1, failureTimeoutMs: 1000 });
    await cluster.startNode('lfaas-storage-0', 1, 'off');
    await cluster.waitForRing();
    // A monitor without --schedulers discovers them through the routing node, and waits for one.
    scheduler = await startProcess(['scheduler', '--routing', cluster.routingAddress, '--metrics-port', '-1']);
    state.workloads.set('statefulsets/lfaas-storage', { replicas: 1, resourceVersion: 3 });
    // One storage node, two wanted: the monitor decides to add one, and the provider scales.
    monitor = await startProcess(['monitor', '--routing', cluster.routingAddress, '--period-ms', '200', '--metrics-port', '-1', '--min-nodes', '2', '--provider', 'kubernetes', '--kubeconfig', kubeconfig, '--namespace', NAMESPACE, '--storage-statefulset', 'lfaas-storage', '--executor-deployment', 'lfaas-executor']);
    expect(state.calls.slice(0, 2)).toEqual(['GET statefulsets/lfaas-storage', 'GET deployments/lfaas-executor']);
    expect(await eventually(() => state.calls.includes('PUT statefulsets/lfaas-storage'), 30_000), `${state.calls.join(', ')}\n${monitor.stderr.join('')}`).toBe(true);
    expect(state.workloads.get('statefulsets/lfaas-storage')!.replicas).toBe(2);
    expect(state.unexpected).toEqual([]);
  }, 60_000);
});
