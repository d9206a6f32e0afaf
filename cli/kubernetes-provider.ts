/**
 * The Kubernetes node provider: the monitor's decisions carried out by the Kubernetes API, as
 * `lfaas monitor --provider kubernetes` runs them inside a cluster (deploy/k8s). Storage nodes are
 * the pods of a StatefulSet (`<statefulset>-<ordinal>`, each node's id is its pod's name), executors
 * the pods of a Deployment; the provider changes their counts through the `scale` subresource only
 * (`GET`/`PUT /apis/apps/v1/namespaces/{ns}/statefulsets/{name}/scale` and `.../deployments/
 * {name}/scale`), the one permission the monitor's Role grants.
 *
 * - add: read the scale, write replicas + 1 with the resourceVersion read (a 409 conflict, someone
 *   else wrote in between, is read again and retried). It resolves once the API accepted the new
 *   count: the pod then starts and joins by itself; the monitor's grace period covers its start.
 * - remove, storage: a StatefulSet always removes its highest ordinal, whichever node the monitor
 *   named, so that pod's node departs first (every key handed off, `depart`, which the caller
 *   provides: kvsDepart and a wait for the process to leave in `lfaas monitor`), and only then is
 *   the count lowered, provided it did not change meanwhile.
 * - remove, executor: the count is lowered; the ReplicaSet picks the pod, which drains on SIGTERM
 *   (schedulers stop placing there, its runs finish), so any choice is safe; the target named is
 *   only logged.
 * - nodes: the pod names of the last scale read (storage); `<deployment>-<i>` per replica
 *   (executors: a Deployment's pod names are random and reading them needs more rights).
 *
 * Errors are typed: a 401/403 (the service account lacks the right) is UNAUTHORISED, anything
 * else the API answers is INTERNAL; both carry the HTTP status ({@link KubernetesApiError}).
 */
import { AppsV1Api, KubeConfig } from '@kubernetes/client-node';
import type { V1Scale } from '@kubernetes/client-node';
import { ErrorCode, LfaasError } from '../lattices/index.js';
import type { NodeProvider, ScaledRole } from '../monitor/index.js';

/** A failed Kubernetes API call: its HTTP status (0: no answer). */
export class KubernetesApiError extends LfaasError {
  constructor(
    readonly status: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(status === 401 || status === 403 ? ErrorCode.UNAUTHORISED : ErrorCode.INTERNAL, message, options);
  }
}

export interface KubernetesProviderOptions {
  /** Where the API is and who the provider is (in-cluster or a kubeconfig: {@link kubeConfigFrom}). */
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  /** The storage nodes' StatefulSet (undefined: storage is not scaled). */
  readonly storageStatefulSet?: string;
  /** The executors' Deployment (undefined: executors are not scaled). */
  readonly executorDeployment?: string;
  /**
   * Departs the storage node of pod `pod` (its node id) gracefully: resolves once every key was
   * handed off and the node left; rejects when it did not (then nothing is scaled).
   */
  readonly depart: (pod: string) => Promise<void>;
  readonly log: (line: string) => void;
  /** Conflicting writes (409) retried, at most. */
  readonly conflictRetries?: number;
}

const CONFLICT_RETRIES = 5;

/** A kubeconfig: the file given, else the pod's service account (in a cluster), else the default places. */
export function kubeConfigFrom(file: string | undefined): KubeConfig {
  const config = new KubeConfig();
  if (file !== undefined) config.loadFromFile(file);
  else if (process.env['KUBERNETES_SERVICE_HOST'] !== undefined) config.loadFromCluster();
  else config.loadFromDefault();
  return config;
}

interface ScaleTarget {
  readonly kind: 'statefulsets' | 'deployments';
  readonly name: string;
}

export class KubernetesProvider implements NodeProvider {
  private readonly api: AppsV1Api;
  /** Replicas as last read, per role (undefined: not read yet). */
  private readonly replicas: Record<ScaledRole, number | undefined> = { storage: undefined, executor: undefined };
  /** One scale change at a time: each is a read, then a write of what was read plus or minus one. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: KubernetesProviderOptions) {
    this.api = options.kubeConfig.makeApiClient(AppsV1Api);
  }

  /** Reads the counts of both roles (what {@link nodes} reports until the next change). */
  async refresh(): Promise<void> {
    for (const role of ['storage', 'executor'] as const) {
      const target = this.targetOf(role, false);
      if (target !== undefined) this.replicas[role] = replicasOf(await this.read(target));
    }
  }

  nodes(role: ScaledRole): readonly string[] {
    const target = this.targetOf(role, false);
    const count = this.replicas[role] ?? 0;
    return target === undefined ? [] : Array.from({ length: count }, (_, i) => `${target.name}-${i}`);
  }

  add(role: ScaledRole): Promise<string> {
    return this.serially(async () => {
      const target = this.targetOf(role, true)!;
      const after = await this.change(target, role, (replicas) => replicas + 1);
      const name = `${target.name}-${after - 1}`;
      this.options.log(`kubernetes: ${target.kind}/${target.name} scaled to ${after} (${role} ${name} added by the monitor)`);
      return name;
    });
  }

  remove(role: ScaledRole, target: string): Promise<void> {
    return this.serially(async () => {
      const scaled = this.targetOf(role, true)!;
      const before = replicasOf(await this.read(scaled));
      this.replicas[role] = before;
      if (before <= 1) throw new LfaasError(ErrorCode.INTERNAL, `${scaled.kind}/${scaled.name} has ${before} replica(s): none is removed`);
      if (role === 'storage') {
        // A StatefulSet removes its highest ordinal: that node departs, whichever was named.
        const victim = `${scaled.name}-${before - 1}`;
        if (victim !== target) this.options.log(`kubernetes: ${target} was chosen, but a StatefulSet removes its highest ordinal: ${victim} departs instead`);
        await this.options.depart(victim);
      } else {
        this.options.log(`kubernetes: ${target} was chosen; the ReplicaSet picks the executor pod that drains and stops`);
      }
      const after = await this.change(scaled, role, (replicas) => {
        // Someone else changed the count meanwhile: the departed node may not be the one removed.
        if (replicas !== before) throw new LfaasError(ErrorCode.INTERNAL, `${scaled.kind}/${scaled.name} went from ${before} to ${replicas} replicas during the removal: not scaled`);
        return replicas - 1;
      });
      this.options.log(`kubernetes: ${scaled.kind}/${scaled.name} scaled to ${after} (${role} removed by the monitor)`);
    });
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private targetOf(role: ScaledRole, required: boolean): ScaleTarget | undefined {
    const name = role === 'storage' ? this.options.storageStatefulSet : this.options.executorDeployment;
    if (name === undefined) {
      if (required) throw new LfaasError(ErrorCode.INTERNAL, `this Kubernetes provider scales no ${role} (pass --${role === 'storage' ? 'storage-statefulset' : 'executor-deployment'})`);
      return undefined;
    }
    return { kind: role === 'storage' ? 'statefulsets' : 'deployments', name };
  }

  /**
   * Reads the scale and writes `next(replicas)` with the resourceVersion read; a 409 (a write in
   * between) is read and tried again, a bounded number of times. Resolves with the count written.
   */
  private async change(target: ScaleTarget, role: ScaledRole, next: (replicas: number) => number): Promise<number> {
    const retries = this.options.conflictRetries ?? CONFLICT_RETRIES;
    for (let attempt = 0; ; attempt++) {
      const scale = await this.read(target);
      const replicas = next(replicasOf(scale));
      try {
        const written = await this.write(target, { apiVersion: 'autoscaling/v1', kind: 'Scale', metadata: { name: target.name, namespace: this.options.namespace, ...(scale.metadata?.resourceVersion === undefined ? {} : { resourceVersion: scale.metadata.resourceVersion }) }, spec: { replicas } });
        this.replicas[role] = written.spec?.replicas ?? replicas;
        return this.replicas[role];
      } catch (error) {
        if (!(error instanceof KubernetesApiError) || error.status !== 409 || attempt >= retries) throw error;
        this.options.log(`kubernetes: ${target.kind}/${target.name}/scale changed since it was read (409): reading it again`);
      }
    }
  }

  private async read(target: ScaleTarget): Promise<V1Scale> {
    const request = { name: target.name, namespace: this.options.namespace };
    return this.call(`GET ${target.kind}/${target.name}/scale`, () => (target.kind === 'statefulsets' ? this.api.readNamespacedStatefulSetScale(request) : this.api.readNamespacedDeploymentScale(request)));
  }

  private async write(target: ScaleTarget, body: V1Scale): Promise<V1Scale> {
    const request = { name: target.name, namespace: this.options.namespace, body };
    return this.call(`PUT ${target.kind}/${target.name}/scale`, () => (target.kind === 'statefulsets' ? this.api.replaceNamespacedStatefulSetScale(request) : this.api.replaceNamespacedDeploymentScale(request)));
  }

  /** One API call; its failure as a {@link KubernetesApiError}. */
  private async call<T>(what: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      const status = typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : 0;
      const reason = status === 403 || status === 401 ? `the monitor's service account may not do it (the Role must grant get and update on ${what.split(' ')[1]?.split('/')[0] ?? ''}/scale)` : messageOf(error);
      throw new KubernetesApiError(status, `kubernetes: ${what} in ${this.options.namespace} failed${status === 0 ? '' : ` (${status})`}: ${reason}`, { cause: error });
    }
  }
}

function replicasOf(scale: V1Scale): number {
  const replicas = scale.spec?.replicas ?? scale.status?.replicas ?? 0;
  if (!Number.isInteger(replicas) || replicas < 0) throw new LfaasError(ErrorCode.INTERNAL, `kubernetes: a scale with ${String(replicas)} replicas`);
  return replicas;
}

/** The API's own message (a Status body's `message`), else the error's. */
function messageOf(error: unknown): string {
  const body = (error as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: unknown };
      if (typeof parsed.message === 'string') return parsed.message;
    } catch {
      // Not JSON: the error's own message below.
    }
  }
  return error instanceof Error ? error.message.slice(0, 300) : String(error).slice(0, 300);
}

