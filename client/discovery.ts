/**
 * Discovery through the routing nodes (docs/multi-host.md): schedulers, monitors and ingresses
 * announce their advertised addresses (an ingress its HTTP URL) to every routing node (`ServiceAnnounce`, a heartbeat), and whoever knows
 * only the routing nodes asks them for the live services (`ServicesRequest` -> `ServiceList`).
 *
 * - `askServices`: one round: every routing node asked at once, their lists merged (an announcer
 *   may have reached only some of them), sorted; routing nodes that do not answer are skipped.
 * - `discoverSchedulers`: asks until the list has a scheduler, bounded by a deadline.
 * - `ServiceFollower`: asks again every period and keeps a list current in place (the same array
 *   object, so whoever holds it sees the change); stops on `stop()` or when its Rpc closes.
 * - `ServiceAnnouncer`: a member's heartbeat to the routing nodes, one-way, sent on the member's
 *   own transport (its seal proves the member key: message-rights.ts lets a scheduler key announce
 *   schedulers only, a monitor key monitors only, an ingress key its ingress's HTTP URL only);
 *   `stop()` says it departs.
 *
 * Every loop here is bounded: rounds have a timeout each, waits have a deadline, timers are
 * unref'd and cleared on stop.
 */
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { encodeEnvelope, envelopeWith, isServiceUrl, pb } from '../protocol/index.js';
import type { PbTypes, Rpc, Transport } from '../protocol/index.js';

/** The live services by role, as the routing nodes list them. */
export interface ServiceList {
  readonly schedulers: readonly string[];
  readonly monitors: readonly string[];
  readonly ingresses: readonly string[];
}

/** What a round of asking waits for each routing node, by default. */
export const DISCOVERY_ROUND_MS = 1000;
/** How often a follower asks again, by default. */
export const DISCOVERY_REFRESH_MS = 2000;
/** How often an announcer announces, by default; its TTL is three periods. */
export const ANNOUNCE_PERIOD_MS = 500;
/** Addresses kept per role from one answer, at most. */
const SERVICES_MAX = 256;

/**
 * Asks every routing node for the live services; the union of the answers (empty when none
 * answered). Rejects TRANSPORT_CLOSED only when the Rpc is closed.
 */
export async function askServices(rpc: Rpc, routing: readonly string[], timeoutMs = DISCOVERY_ROUND_MS): Promise<ServiceList> {
  const answers = await Promise.allSettled(routing.map((address) => rpc.request(address, { servicesRequest: {} }, { timeoutMs })));
  // A closed Rpc is not an empty cluster: the caller is gone (a follower stops on this).
  const closed = answers.find((answer) => answer.status === 'rejected' && (answer.reason as LfaasError).code === ErrorCode.TRANSPORT_CLOSED);
  if (closed !== undefined && answers.every((answer) => answer.status === 'rejected')) throw (closed as PromiseRejectedResult).reason;
  const merged = { schedulers: new Set<string>(), monitors: new Set<string>(), ingresses: new Set<string>() };
  for (const answer of answers) {
    if (answer.status !== 'fulfilled') continue;
    const list: PbTypes.IServiceList | null | undefined = answer.value.serviceList;
    if (list === null || list === undefined) continue;
    for (const address of (list.schedulers ?? []).slice(0, SERVICES_MAX)) merged.schedulers.add(address);
    for (const address of (list.monitors ?? []).slice(0, SERVICES_MAX)) merged.monitors.add(address);
    // An ingress is listed by its HTTP URL (decoding lets a transport address through too: not one).
    for (const address of (list.ingresses ?? []).slice(0, SERVICES_MAX)) if (isServiceUrl(address)) merged.ingresses.add(address);
  }
  return { schedulers: [...merged.schedulers].sort(), monitors: [...merged.monitors].sort(), ingresses: [...merged.ingresses].sort() };
}

/**
 * The schedulers the routing nodes list, once there is at least one; rejects SCHED_NO_CAPACITY
 * when none is listed by `deadlineMs` (a time in ms since the epoch).
 */
export async function discoverSchedulers(rpc: Rpc, routing: readonly string[], deadlineMs: number): Promise<string[]> {
  for (let round = 0; round < 10_000; round++) {
    const left = deadlineMs - Date.now();
    const list = await askServices(rpc, routing, Math.max(100, Math.min(DISCOVERY_ROUND_MS, left)));
    if (list.schedulers.length > 0) return [...list.schedulers];
    if (Date.now() + 100 >= deadlineMs) break;
    await new Promise((resolve) => setTimeout(resolve, Math.min(200, Math.max(0, deadlineMs - Date.now()))));
  }
  throw new LfaasError(ErrorCode.SCHED_NO_CAPACITY, `no scheduler is announced to the routing nodes ${routing.join(',')} (discovery: a scheduler announces itself to them once it runs)`);
}

/** Replaces the contents of `list` with `next` (same array object), keeping it when `next` is empty. */
function replaceInPlace(list: string[], next: readonly string[]): boolean {
  if (next.length === 0) return false;
  if (list.length === next.length && list.every((address, index) => address === next[index])) return false;
  list.splice(0, list.length, ...next);
  return true;
}

/**
 * Keeps `list` (scheduler or monitor addresses) current from the routing nodes, in place. An empty
 * answer (no routing node reached, or nothing announced for a moment) leaves the list as it was:
 * the last known services beat none.
 */
export class ServiceFollower {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** `failed`: rounds no routing node answered (the list is kept as it was, and asked again next period). */
  readonly counters = { rounds: 0, changes: 0, failed: 0 };

  constructor(
    private readonly rpc: Rpc,
    private readonly routing: readonly string[],
    /** The list kept current (mutated in place). */
    readonly list: string[],
    private readonly role: keyof ServiceList = 'schedulers',
    private readonly periodMs = DISCOVERY_REFRESH_MS,
    private readonly onChange?: (list: readonly string[]) => void,
  ) {
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.round(), this.periodMs);
    this.timer.unref();
  }

  private async round(): Promise<void> {
    this.counters.rounds++;
    try {
      const services = await askServices(this.rpc, this.routing);
      if (this.stopped) return;
      if (replaceInPlace(this.list, services[this.role])) {
        this.counters.changes++;
        this.onChange?.(this.list);
      }
    } catch (error) {
      // Only a closed Rpc rejects here: the owner is gone, and so is the need to follow.
      if ((error as LfaasError).code === ErrorCode.TRANSPORT_CLOSED) {
        this.stopped = true;
        return;
      }
      this.counters.failed++;
    }
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }
}

/** A member's announcement of itself to the routing nodes; see the file comment. */
export class ServiceAnnouncer {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  readonly counters = { sent: 0, failed: 0 };

  constructor(
    private readonly transport: Transport,
    private readonly routing: readonly string[],
    private readonly role: 'scheduler' | 'monitor' | 'ingress',
    /** The advertised address announced: the member transport's own address, or an ingress's HTTP URL. */
    private readonly address: string,
    private readonly periodMs = ANNOUNCE_PERIOD_MS,
    /** The envelope's sender: the transport's address (an ingress's URL is no transport address). */
    private readonly sender = address,
  ) {
    void this.announce(false);
    this.timer = setInterval(() => void this.announce(false), periodMs);
    this.timer.unref();
  }

  private announce(departing: boolean): Promise<unknown> {
    const role = this.role === 'scheduler' ? pb.ServiceRole.SERVICE_SCHEDULER : this.role === 'monitor' ? pb.ServiceRole.SERVICE_MONITOR : pb.ServiceRole.SERVICE_INGRESS;
    const frame = encodeEnvelope(envelopeWith({ serviceAnnounce: { role, address: this.address, ttlMs: this.periodMs * 3, departing } }, { sender: this.sender }));
    return Promise.all(
      this.routing.map((to) =>
        this.transport.send(to, frame).then(
          () => this.counters.sent++,
          () => this.counters.failed++,
        ),
      ),
    );
  }

  /**
   * Stops announcing and tells the routing nodes this service departs (best effort); resolves once
   * that departure is handed to the transport (or after `waitMs`), so closing the transport next
   * does not drop it.
   */
  async stop(waitMs = 1000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.announce(true), new Promise((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
  }
}
