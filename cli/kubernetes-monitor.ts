/**
 * `lfaas monitor --provider kubernetes`: its flags, the provider made from them, and how a storage
 * pod departs. Kept apart from kubernetes-provider.ts so that `lfaas` loads
 * @kubernetes/client-node (most of a second) only when a monitor runs with this provider.
 *
 * A departure is asked of the pod's control port by its stable DNS name
 * (`<pod>.<service>.<namespace>.svc.<domain>`, the StatefulSet's headless Service), signed with
 * the routing member key (a departure is a storage-side request: the monitor pod mounts routing.key
 * for it), and followed on the pod's metrics port: the node has left when its metrics server stops
 * answering or answers for a process started later (the kubelet restarts a container that exited).
 */
import { readFileSync } from 'node:fs';
import { Option } from 'commander';
import type { Command } from 'commander';
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { readMembers } from '../protocol/index.js';
import type { KubernetesProvider } from './kubernetes-provider.js';
import { kvsDepart } from './kvs-commands.js';

/** `lfaas monitor --provider kubernetes`'s options (see {@link kubernetesProviderOptions}). */
export interface KubernetesCliOptions {
  readonly namespace?: string;
  readonly storageStatefulset?: string;
  readonly executorDeployment?: string;
  readonly storageService?: string;
  readonly storagePort: number;
  readonly storageMetricsPort: number;
  readonly clusterDomain: string;
  readonly kubeconfig?: string;
  readonly departTimeoutMs: number;
}

/** The flags of `lfaas monitor` that configure the Kubernetes provider. */
export function kubernetesProviderOptions(command: Command, integer: (min: number, max: number) => (value: string) => number): Command {
  return command
    .addOption(new Option('--provider <name>', 'who carries out its decisions: none (decide and log only), kubernetes (scale a StatefulSet of storage nodes and a Deployment of executors: docs/deploy.md)').choices(['none', 'kubernetes']).default('none'))
    .option('--namespace <namespace>', 'kubernetes: the namespace of the workloads (default: the pod\'s own, else "default")')
    .option('--storage-statefulset <name>', 'kubernetes: the storage nodes\' StatefulSet (each pod\'s name is its node id); unset: storage is not scaled')
    .option('--executor-deployment <name>', 'kubernetes: the executors\' Deployment; unset: executors are not scaled')
    .option('--storage-service <name>', 'kubernetes: the storage pods\' headless Service (default: the StatefulSet\'s name)')
    .option('--storage-port <port>', 'kubernetes: the storage nodes\' control port (a departure is asked there)', integer(1, 65535), 7300)
    .option('--storage-metrics-port <port>', 'kubernetes: the storage nodes\' metrics port (a departure is followed there)', integer(1, 65535), 9090)
    .option('--cluster-domain <domain>', 'kubernetes: the cluster\'s DNS domain', 'cluster.local')
    .option('--kubeconfig <file>', 'kubernetes: a kubeconfig file (default: the pod\'s service account in a cluster, else ~/.kube/config)')
    .option('--depart-timeout-ms <ms>', 'kubernetes: how long a storage node may take to hand its keys off and leave', integer(1000, 3_600_000), 120_000);
}

/** The namespace a pod runs in (its service account's), else "default". */
function podNamespace(): string {
  try {
    return readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim() || 'default';
  } catch {
    return 'default';
  }
}

/** The Kubernetes provider's module, loaded on first use (it brings @kubernetes/client-node). */
export function loadKubernetesProvider(): Promise<typeof import('./kubernetes-provider.js')> {
  return import('./kubernetes-provider.js');
}

/** The provider `lfaas monitor --provider kubernetes` runs (its counts read once before it returns). */
export async function kubernetesProviderFromCli(options: KubernetesCliOptions, keys: string | undefined, log: (line: string) => void): Promise<KubernetesProvider> {
  const { KubernetesProvider, kubeConfigFrom } = await loadKubernetesProvider();
  const namespace = options.namespace ?? podNamespace();
  const service = options.storageService ?? options.storageStatefulset;
  // The storage nodes' public key (their addresses carry it): the role's key from `lfaas keys init`.
  const storageKey = keys === undefined ? undefined : readMembers(keys).members.storage[0];
  const provider = new KubernetesProvider({
    kubeConfig: kubeConfigFrom(options.kubeconfig),
    namespace,
    ...(options.storageStatefulset === undefined ? {} : { storageStatefulSet: options.storageStatefulset }),
    ...(options.executorDeployment === undefined ? {} : { executorDeployment: options.executorDeployment }),
    depart: async (pod) => {
      const host = `${pod}.${service}.${namespace}.svc.${options.clusterDomain}`;
      await departStorageNode({ nodeId: pod, control: `tcp://${host}:${options.storagePort}${storageKey === undefined ? '' : `#${storageKey}`}`, metrics: `http://${host}:${options.storageMetricsPort}`, ...(keys === undefined ? {} : { keys }), timeoutMs: options.departTimeoutMs, log });
    },
    log,
  });
  await provider.refresh();
  return provider;
}

/** How often a departing node's metrics are read. */
const DEPART_POLL_MS = 250;

/**
 * Asks a storage node to depart (hand every key off, then exit) and resolves once its process
 * left: its metrics server stops answering, or answers for a process started later (the kubelet
 * restarted the container). Rejects when that did not happen within `timeoutMs`.
 */
export async function departStorageNode(options: { readonly nodeId: string; readonly control: string; readonly metrics: string; readonly keys?: string; readonly keyName?: string; readonly timeoutMs: number; readonly log: (line: string) => void }): Promise<void> {
  const started = await startTimeOf(options.metrics);
  if (started === undefined) throw new LfaasError(ErrorCode.INTERNAL, `storage node ${options.nodeId}: no process start time at ${options.metrics}/metrics: not departing a node that cannot be followed`);
  await kvsDepart(options.control, options.nodeId, { ...(options.keys === undefined ? {} : { keys: options.keys }), keyName: options.keyName ?? 'routing', json: true });
  options.log(`kubernetes: asked ${options.nodeId} to depart`);
  const deadline = Date.now() + options.timeoutMs;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, DEPART_POLL_MS));
    const now = await startTimeOf(options.metrics);
    if (now !== started) {
      options.log(`kubernetes: ${options.nodeId} left`);
      return;
    }
  }
  throw new LfaasError(ErrorCode.INTERNAL, `storage node ${options.nodeId} did not leave within ${options.timeoutMs} ms`);
}

/** `process_start_time_seconds` from a metrics server (undefined: no answer). */
async function startTimeOf(metrics: string): Promise<number | undefined> {
  try {
    const response = await fetch(`${metrics}/metrics`, { signal: AbortSignal.timeout(2000) });
    const text = await response.text();
    const match = /^process_start_time_seconds(?:\{[^}]*\})? ([0-9.e+]+)$/m.exec(text);
    return match === null ? undefined : Number(match[1]);
  } catch {
    return undefined;
  }
}
