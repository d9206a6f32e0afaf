/**
 * Leased execution records: how an async call outlives the scheduler boot that accepted it. The
 * sans-I/O part of the scheduler machine that owns this boot's lease, its index of pending runs,
 * and the takeover of the runs of dead boots; every KVS access is a task through the host (keys and
 * codecs: execution-records.ts).
 *
 * - Lease: one record per boot (`lfaas/sched/lease/<boot>`), rewritten every `leaseRenewMs`. What
 *   it costs does not grow with the runs pending: one small write per period per boot. Whether a
 *   boot lives is judged by each observer on its own clock: a lease whose value has not changed for
 *   `leaseTimeoutMs` since this scheduler first saw it is expired (no clock is compared with
 *   another's; a scheduler that just started waits that long before it judges anyone). A boot at
 *   this scheduler's own address with another incarnation is a previous boot of this process: dead
 *   at once.
 * - Index: the boot's pending async runs (`lfaas/sched/index/<gen>/<boot>`), a Map of Lww entries
 *   (why: execution-records.ts). A run is added (ack durable) before its call is accepted, removed
 *   once its result is written. Once the entries written to the current generation reach
 *   `max(INDEX_ROTATE_MIN, 2 x pending)`, the pending entries are copied into a new generation,
 *   the lease names it (a renewal, acknowledged durable) and the old key is deleted: the index
 *   stays within a small multiple of the pending runs. While the copy is under way adds and
 *   removals go to both generations.
 * - Boots: `lfaas/sched/boots/<epoch>` maps boot -> registered (1) or gone (0). A boot registers
 *   (durable) after its first lease write and before it accepts an async call, and again whenever
 *   a pass does not find it registered in the current epoch (a gone mark written while it was
 *   paused, a fresh epoch). The epoch moves on (the live entries copied into the next one, then
 *   `boots-epoch` raised, then the epoch before the old one deleted) once 16 gone marks gathered
 *   and the epoch is `bootsEpochMinMs` old: readers read the epochs around the one they know, and
 *   nobody still writes two epochs back.
 * - Takeover: every `periodMs` a pass reads the boots (one read of 3-4 keys) and the leases of up to
 *   BOOTS_PER_PASS of them (one read), and for one expired boot its index and then at most
 *   `recordsPerPass` records (and `bytesPerPass` of them, from the sizes the index keeps) with
 *   their result keys. A run with a result is done (its record is marked so); one whose record names
 *   another owner was claimed already; otherwise this boot claims it: adds it to its own index,
 *   writes the record with itself as owner and the attempt + 1 (durable; the record's timestamp
 *   observed first, so the claim is later than what it replaces), reads the record back, and
 *   dispatches it through the scheduler's normal path unless the record read back is a later claim
 *   of a third boot; then removes it from the dead boot's index. An expired boot with nothing left
 *   pending is marked gone and its lease and index keys deleted. A record claimed
 *   `claimAttemptsMax` times (its schedulers keep dying with it) gets EXEC_LOST as its result.
 * - The duplicate race: two schedulers may claim one record at once (both saw the lease expire).
 *   The read-back settles most of it (the later claim in the Lww order wins on every replica, and
 *   its loser backs off once it reads the winner), but a read served by a replica that has not seen
 *   the other claim yet lets both dispatch; a boot wrongly judged dead (paused longer than the
 *   lease timeout) keeps dispatching what it holds too. Both are at least once by design: each
 *   attempt writes the result key as a Priority keyed by its attempt, so a duplicate costs a second
 *   execution, never a second result.
 * - Orphans: a run in this boot's own index that the scheduler no longer holds (its result or
 *   failure write failed) for two passes in a row is adopted like a dead boot's run.
 * Everything read back is checked (execution-records.ts); what does not decode is skipped and
 * counted in `recordsMalformed`, never thrown to the machine.
 */
import { ErrorCode, LfaasError, Lww, Max, Priority } from '../lattices/index.js';
import type { AnyLattice, HybridClock, Timestamp } from '../lattices/index.js';
import { executionKey, resultKeyOf } from '../protocol/index.js';
import type { Effect } from '../protocol/index.js';
import type { Continuation, SchedulerTask } from './kvs-tasks.js';
import {
  BOOTS_EPOCH_KEY,
  bootEntry,
  bootsKey,
  bootsOf,
  encodeRunRecord,
  indexEntry,
  indexKey,
  indexOf,
  leaseKey,
  leaseValue,
  readBoots,
  readEpoch,
  readIndex,
  readLease,
  runRecordValue,
  decodeRunRecord,
} from './execution-records.js';
import type { BootEntry, IndexEntry, RunRecord } from './execution-records.js';

/** Boots whose leases one pass reads, at most. */
export const BOOTS_PER_PASS = 32;
/** Boots a pass reads from the boots maps, at most. */
export const BOOTS_MAX = 4096;
/** An index is rewritten once this many entries (and twice the pending ones) were written to it. */
export const INDEX_ROTATE_MIN = 256;
/** Gone marks that move the boots set on to a new epoch (once it is old enough). */
export const BOOTS_GONE_ROTATE = 16;
/** Runs of this boot's own index adopted per pass, at most. */
const ORPHANS_PER_PASS = 16;
/** Run ids remembered as handled (per dead boot being taken over), at most in all. */
const HANDLED_MAX = 65_536;
/** A pass that has not ended after this many periods is given up (a task that never came back). */
const PASS_STUCK_PERIODS = 20;

export interface TakeoverOptions {
  /** This boot: `<address>#<incarnation>` (or the address alone). */
  readonly boot: string;
  readonly address: string;
  readonly leaseRenewMs: number;
  readonly leaseTimeoutMs: number;
  readonly periodMs: number;
  readonly recordsPerPass: number;
  readonly bytesPerPass: number;
  /** A record claimed with this attempt or more fails EXEC_LOST instead. */
  readonly claimAttemptsMax: number;
  readonly bootsEpochMinMs: number;
  /** Async calls waiting for this boot's registration, at most. */
  readonly waitersMax: number;
}

export interface TakeoverCounters {
  leaseRenewals: number;
  takeoverPasses: number;
  bootsExpired: number;
  bootsRetired: number;
  takenOver: number;
  takeoverSettled: number;
  takeoverFailed: number;
  claimsLost: number;
  orphansAdopted: number;
  recordsMalformed: number;
  indexRotations: number;
  bootsRotations: number;
}

export function newTakeoverCounters(): TakeoverCounters {
  return { leaseRenewals: 0, takeoverPasses: 0, bootsExpired: 0, bootsRetired: 0, takenOver: 0, takeoverSettled: 0, takeoverFailed: 0, claimsLost: 0, orphansAdopted: 0, recordsMalformed: 0, indexRotations: 0, bootsRotations: 0 };
}

export interface TakeoverHost {
  kvs(task: SchedulerTask, then: Continuation): Effect[];
  readonly clock: HybridClock;
  now(): number;
  readonly counters: TakeoverCounters;
  /** Whether the scheduler holds run `callId` now (dispatched, waiting for room, or its result being settled). */
  holds(callId: string): boolean;
  /** Dispatches a run this boot now owns (claimed or adopted) through the scheduler's normal path. */
  redispatch(record: RunRecord): Effect[];
}

interface Observed {
  readonly version: string;
  readonly sinceMs: number;
  expired: boolean;
}

interface Rotation {
  readonly from: number;
  readonly to: number;
  copied: boolean;
  copying: boolean;
}

export class Takeover {
  private renewals = 0;
  private leaseWritten = false;
  private registered = false;
  private registering = false;
  private readonly waiters: (() => Effect[])[] = [];
  /** This boot's pending runs (present in its index): call id -> record bytes. */
  private readonly indexed = new Map<string, number>();
  /** Where adds go. */
  private gen = 0;
  /** The generation the lease names (acknowledged). */
  private leaseGen = 0;
  /** Distinct entries written to `gen`. */
  private genEntries = 0;
  private rotation: Rotation | undefined;
  private epoch = 0;
  private epochSinceMs: number | undefined;
  private bootsRotating = false;
  private readonly observed = new Map<string, Observed>();
  /** Per boot being taken over, the run ids already handled (their removal may not win, see `work`). */
  private readonly handled = new Map<string, Set<string>>();
  private handledCount = 0;
  /** Claims under way: run id -> the boot it is claimed from. */
  private readonly claiming = new Map<string, string>();
  /** Runs of this boot's index the scheduler did not hold at the last pass. */
  private orphans = new Set<string>();
  private adopting = false;
  private passStartedMs: number | undefined;
  private passAgain = false;
  private cursor = 0;

  constructor(
    private readonly host: TakeoverHost,
    private readonly options: TakeoverOptions,
  ) {}

  /** Runs pending in this boot's index. */
  get pendingCount(): number {
    return this.indexed.size;
  }

  /** Whether this boot is in the boots set (its async calls are found if it dies). */
  get isRegistered(): boolean {
    return this.registered;
  }

  /** At start: the first lease write (durable), then a pass (which registers this boot). */
  start(): Effect[] {
    return this.renew();
  }

  /** The lease timer: one renewal. */
  onLeaseTimer(): Effect[] {
    return this.renew();
  }

  /** The takeover timer: a pass, unless one is under way. */
  onPassTimer(): Effect[] {
    if (this.passStartedMs !== undefined && this.host.now() - this.passStartedMs < PASS_STUCK_PERIODS * this.options.periodMs) return [];
    return this.pass();
  }

  /**
   * Runs `then` once this boot is registered (at once if it is): an async call is accepted only
   * then. Undefined when too many wait already (the caller refuses the call).
   */
  whenRegistered(then: () => Effect[]): Effect[] | undefined {
    if (this.registered) return then();
    if (this.waiters.length >= this.options.waitersMax) return undefined;
    this.waiters.push(then);
    return [];
  }

  /** Adds a run to this boot's index (ack durable); `then` gets the outcome. */
  add(callId: string, bytes: number, then: (error: LfaasError | undefined) => Effect[]): Effect[] {
    if (!this.indexed.has(callId)) this.genEntries++;
    this.indexed.set(callId, bytes);
    this.orphans.delete(callId);
    const entry = indexEntry(this.host.clock, callId, bytes);
    const effects = this.writeIndex(entry, 'durable', then);
    effects.push(...this.maybeRotate());
    return effects;
  }

  /** Removes a run from this boot's index (its result is written, or its call was refused). */
  remove(callId: string): Effect[] {
    if (!this.indexed.delete(callId)) return [];
    this.orphans.delete(callId);
    return this.writeIndex(indexEntry(this.host.clock, callId, 0), 'local', () => []);
  }

  // ---- lease and index ------------------------------------------------------------------------

  private writeIndex(entry: AnyLattice, ack: 'local' | 'durable', then: (error: LfaasError | undefined) => Effect[]): Effect[] {
    const gens = this.rotation === undefined ? [this.gen] : [this.rotation.from, this.rotation.to];
    let left = gens.length;
    let failure: LfaasError | undefined;
    return gens.flatMap((gen) =>
      this.host.kvs({ op: 'put', key: indexKey(this.options.boot, gen), value: entry, ack }, (error) => {
        failure ??= error;
        return --left === 0 ? then(failure) : [];
      }),
    );
  }

  private renew(): Effect[] {
    const rotation = this.rotation;
    // The lease names the new generation once its copy is acknowledged.
    const gen = rotation?.copied === true ? rotation.to : this.leaseGen;
    const effects: Effect[] = [];
    if (rotation !== undefined && !rotation.copied && !rotation.copying) effects.push(...this.copyIndex(rotation));
    const switching = gen !== this.leaseGen;
    const value = leaseValue(this.host.clock, ++this.renewals, gen);
    effects.push(
      ...this.host.kvs({ op: 'put', key: leaseKey(this.options.boot), value, ack: this.leaseWritten && !switching ? 'local' : 'durable' }, (error) => {
        if (error !== undefined) return [];
        this.host.counters.leaseRenewals++;
        const out: Effect[] = [];
        if (switching && this.rotation === rotation && rotation !== undefined) {
          // The lease names the new generation: the old one is dropped.
          this.leaseGen = rotation.to;
          this.rotation = undefined;
          out.push(...this.host.kvs({ op: 'delete', keys: [indexKey(this.options.boot, rotation.from)] }, () => []));
        }
        if (!this.leaseWritten) {
          this.leaseWritten = true;
          out.push(...this.pass());
        }
        return out;
      }),
    );
    return effects;
  }

  private maybeRotate(force = false): Effect[] {
    if (this.rotation !== undefined || !this.registered) return [];
    if (!force && this.genEntries < Math.max(INDEX_ROTATE_MIN, 2 * this.indexed.size)) return [];
    const rotation: Rotation = { from: this.leaseGen, to: Math.max(this.gen, this.leaseGen) + 1, copied: false, copying: false };
    this.rotation = rotation;
    this.gen = rotation.to;
    this.genEntries = this.indexed.size;
    this.host.counters.indexRotations++;
    return this.copyIndex(rotation);
  }

  /** Writes every pending entry into the rotation's new generation (adds meanwhile go to both). */
  private copyIndex(rotation: Rotation): Effect[] {
    rotation.copying = true;
    return this.host.kvs({ op: 'put', key: indexKey(this.options.boot, rotation.to), value: indexOf(this.host.clock, this.indexed), ack: 'durable' }, (error) => {
      rotation.copying = false;
      // A failed copy is written again at the next renewal; the lease names the new generation at
      // the first renewal after the copy.
      if (error === undefined) rotation.copied = true;
      return [];
    });
  }

  // ---- the pass -------------------------------------------------------------------------------

  private pass(): Effect[] {
    if (this.passStartedMs !== undefined && this.host.now() - this.passStartedMs < PASS_STUCK_PERIODS * this.options.periodMs) {
      this.passAgain = true;
      return [];
    }
    this.passStartedMs = this.host.now();
    this.host.counters.takeoverPasses++;
    const epoch = this.epoch;
    const keys = [BOOTS_EPOCH_KEY, bootsKey(epoch), bootsKey(epoch + 1), ...(epoch > 0 ? [bootsKey(epoch - 1)] : [])];
    return this.host.kvs({ op: 'getMany', keys }, (error, result) => {
      if (error !== undefined || !Array.isArray(result)) return this.endPass();
      return this.onBoots(epoch, result as (AnyLattice | undefined)[]);
    });
  }

  private endPass(): Effect[] {
    this.passStartedMs = undefined;
    if (!this.passAgain) return [];
    this.passAgain = false;
    return this.pass();
  }

  private onBoots(readEpochAt: number, values: readonly (AnyLattice | undefined)[]): Effect[] {
    const now = this.host.now();
    let pointer = this.epoch;
    try {
      pointer = readEpoch(values[0]);
    } catch {
      this.host.counters.recordsMalformed++;
    }
    this.epochSinceMs ??= now;
    if (pointer > this.epoch) {
      this.epoch = pointer;
      this.epochSinceMs = now;
    }
    const { boots, malformed } = readBoots(values.slice(1), BOOTS_MAX);
    this.host.counters.recordsMalformed += malformed;
    const effects: Effect[] = [];
    // Registered in the current epoch? (read: values[1] is epoch `readEpochAt`, values[2] the next)
    const currentAt = this.epoch === readEpochAt ? 1 : this.epoch === readEpochAt + 1 ? 2 : -1;
    const mineHere = currentAt > 0 && readBoots([values[currentAt]], BOOTS_MAX).boots.get(this.options.boot)?.live === true;
    if (!mineHere) effects.push(...this.register(boots.get(this.options.boot)));
    // The boots to judge: live ones but this one, a window of them per pass (in turn).
    const live = [...boots].filter(([boot, entry]) => entry.live && boot !== this.options.boot).map(([boot]) => boot);
    const liveSet = new Set(live);
    for (const boot of this.observed.keys()) if (!liveSet.has(boot)) this.observed.delete(boot);
    for (const boot of this.handled.keys()) if (!liveSet.has(boot) && !this.isClaimingFrom(boot)) this.forgetHandled(boot);
    // Gone marks are written into the current epoch: those there say whether it is time to move on.
    const current = currentAt > 0 ? readBoots([values[currentAt]], BOOTS_MAX).boots : new Map<string, BootEntry>();
    effects.push(...this.maybeRotateBoots(boots, current));
    effects.push(...this.adoptOrphans());
    if (live.length === 0) return [...effects, ...this.endPass()];
    // In turn: the window starts one boot further at each pass (a window further when there are
    // more boots than a window), so no expired boot is always behind another one.
    const start = this.cursor % live.length;
    const window = [...live.slice(start), ...live.slice(0, start)].slice(0, BOOTS_PER_PASS);
    this.cursor = start + (live.length > BOOTS_PER_PASS ? window.length : 1);
    effects.push(
      ...this.host.kvs({ op: 'getMany', keys: window.map(leaseKey) }, (error, result) => {
        if (error !== undefined || !Array.isArray(result)) return this.endPass();
        return this.onLeases(window, result as (AnyLattice | undefined)[], boots);
      }),
    );
    return effects;
  }

  /** This boot into the current epoch's boots (its own earlier entry, a gone mark maybe, observed first). */
  private register(known: BootEntry | undefined): Effect[] {
    if (!this.leaseWritten || this.registering) return [];
    this.registering = true;
    if (known !== undefined) this.observe(known.at);
    const revived = known !== undefined && !known.live;
    return this.host.kvs({ op: 'put', key: bootsKey(this.epoch), value: bootEntry(this.host.clock, this.options.boot, true), ack: 'durable' }, (error) => {
      this.registering = false;
      if (error !== undefined) return [];
      const effects: Effect[] = [];
      // Marked gone while alive (paused past the lease timeout): its index may have been deleted;
      // what it still holds is written into a fresh generation.
      if (revived) effects.push(...this.maybeRotate(true));
      if (!this.registered) {
        this.registered = true;
        for (const waiter of this.waiters.splice(0)) {
          try {
            effects.push(...waiter());
          } catch {
            // One call's failure (a value no lattice holds) does not keep the others waiting.
          }
        }
      }
      return effects;
    });
  }

  private onLeases(window: readonly string[], values: readonly (AnyLattice | undefined)[], boots: ReadonlyMap<string, BootEntry>): Effect[] {
    const now = this.host.now();
    let target: { boot: string; gen: number } | undefined;
    window.forEach((boot, i) => {
      let version = 'absent';
      let gen = 0;
      try {
        const lease = readLease(values[i]);
        if (lease !== undefined) ({ version, gen } = lease);
      } catch {
        this.host.counters.recordsMalformed++;
        version = 'malformed';
      }
      let observed = this.observed.get(boot);
      if (observed === undefined || observed.version !== version) this.observed.set(boot, (observed = { version, sinceMs: now, expired: false }));
      const dead = this.isPredecessor(boot) || now - observed.sinceMs >= this.options.leaseTimeoutMs;
      if (dead && !observed.expired) this.host.counters.bootsExpired++;
      observed.expired = dead;
      // A boot's runs are claimed only by a registered boot (a claim names this boot the owner: its
      // own index must be findable).
      if (dead && target === undefined && this.registered) target = { boot, gen };
    });
    if (target === undefined) return this.endPass();
    return this.work(target.boot, target.gen, boots.get(target.boot));
  }

  /** A previous boot of this process: the same address, another incarnation. */
  private isPredecessor(boot: string): boolean {
    const address = this.options.address;
    return boot !== this.options.boot && (boot === address || boot.startsWith(`${address}#`));
  }

  /** One batch of an expired boot's pending runs; the boot is retired once none is left. */
  private work(boot: string, gen: number, entry: BootEntry | undefined): Effect[] {
    return this.host.kvs({ op: 'get', key: indexKey(boot, gen) }, (error, value) => {
      if (error !== undefined) return this.endPass();
      let pending: IndexEntry[] = [];
      try {
        const view = readIndex(value as AnyLattice | undefined);
        pending = view.pending;
        this.host.counters.recordsMalformed += view.malformed;
      } catch {
        this.host.counters.recordsMalformed++;
      }
      const handled = this.handled.get(boot);
      const batch = this.batchOf(pending, handled);
      if (batch.length === 0) {
        // Claims from it still under way: retired at a later pass (a failed claim is tried again).
        if (this.isClaimingFrom(boot)) return this.endPass();
        return [...this.retire(boot, gen, entry), ...this.endPass()];
      }
      return this.examine(boot, gen, batch);
    });
  }

  private batchOf(pending: readonly IndexEntry[], handled: ReadonlySet<string> | undefined): IndexEntry[] {
    const batch: IndexEntry[] = [];
    let bytes = 0;
    for (const entry of pending) {
      if (handled?.has(entry.callId) === true || this.claiming.has(entry.callId)) continue;
      if (batch.length >= this.options.recordsPerPass || (batch.length > 0 && bytes + entry.bytes > this.options.bytesPerPass)) break;
      batch.push(entry);
      bytes += entry.bytes;
    }
    return batch;
  }

  /** Reads a batch's records and result keys, then settles, skips or claims each run. */
  private examine(boot: string, gen: number, batch: readonly IndexEntry[], endsPass = true): Effect[] {
    const keys = [...batch.map((entry) => executionKey(entry.callId)), ...batch.map((entry) => resultKeyOf(entry.callId))];
    return this.host.kvs({ op: 'getMany', keys }, (error, result) => {
      const done = (): Effect[] => (endsPass ? this.endPass() : ((this.adopting = false), []));
      if (error !== undefined || !Array.isArray(result)) return done();
      const values = result as (AnyLattice | undefined)[];
      const effects: Effect[] = [];
      batch.forEach((entry, i) => effects.push(...this.settleOne(boot, gen, entry, values[i], values[batch.length + i])));
      return [...effects, ...done()];
    });
  }

  private settleOne(boot: string, gen: number, entry: IndexEntry, recordValue: AnyLattice | undefined, resultValue: AnyLattice | undefined): Effect[] {
    const callId = entry.callId;
    const mine = boot === this.options.boot;
    if (!mine) this.markHandled(boot, callId);
    if (this.claiming.has(callId) || this.host.holds(callId)) return mine ? [] : this.dropEntry(boot, gen, entry);
    let record: RunRecord | undefined;
    try {
      record = decodeRunRecord(recordValue, callId);
    } catch {
      this.host.counters.recordsMalformed++;
      return this.dropEntry(boot, gen, entry);
    }
    if (resultValue !== undefined) {
      // Its result is written (its executor finished after its scheduler died): done.
      this.host.counters.takeoverSettled++;
      return [...(record !== undefined && record.state !== 'done' ? this.writeDone(record, recordValue as Lww) : []), ...this.dropEntry(boot, gen, entry)];
    }
    // Never recorded (the call was refused), finished, or claimed by another boot already (which
    // indexed it before it wrote the record).
    if (record === undefined || record.state === 'done' || record.owner !== boot) return this.dropEntry(boot, gen, entry);
    return this.claim(boot, gen, entry, record, recordValue as Lww);
  }

  /**
   * Claims a run of `boot` (or adopts one of this boot's own): indexed here first, then the record
   * names this boot with the attempt + 1, is read back, and the run dispatched unless a later
   * claim of a third boot won the record.
   */
  private claim(boot: string, gen: number, entry: IndexEntry, record: RunRecord, stored: Lww): Effect[] {
    const callId = entry.callId;
    const mine = boot === this.options.boot;
    this.claiming.set(callId, boot);
    const giveUp = (): Effect[] => {
      this.claiming.delete(callId);
      this.unmarkHandled(boot, callId);
      return [];
    };
    if (record.attempt >= this.options.claimAttemptsMax) return this.failClaimed(boot, gen, entry, record, stored);
    const claimed: RunRecord = { ...record, owner: this.options.boot, attempt: record.attempt + 1, state: 'running', executor: '', atMs: Math.floor(this.host.now()) };
    const writeClaim = (): Effect[] => {
      this.observe(stored.timestamp);
      let encoded: Lww;
      try {
        encoded = encodeRunRecord(this.host.clock, claimed).value;
      } catch {
        this.host.counters.recordsMalformed++;
        this.claiming.delete(callId);
        return [...(mine ? [] : this.remove(callId)), ...this.dropEntry(boot, gen, entry)];
      }
      return this.host.kvs({ op: 'put', key: executionKey(callId), value: encoded, ack: 'durable' }, (error) => {
        if (error !== undefined) return [...(mine ? [] : this.remove(callId)), ...giveUp()];
        return this.host.kvs({ op: 'get', key: executionKey(callId) }, (readError, readBack) => {
          this.claiming.delete(callId);
          if (readError === undefined && this.lostTo(readBack as AnyLattice | undefined, encoded, boot, callId)) {
            this.host.counters.claimsLost++;
            return [...this.remove(callId), ...(mine ? [] : this.dropEntry(boot, gen, entry))];
          }
          if (mine) this.host.counters.orphansAdopted++;
          else this.host.counters.takenOver++;
          return [...this.host.redispatch(claimed), ...(mine ? [] : this.dropEntry(boot, gen, entry))];
        });
      });
    };
    if (mine) return writeClaim();
    return this.add(callId, entry.bytes, (error) => (error !== undefined ? [...this.remove(callId), ...giveUp()] : writeClaim()));
  }

  /**
   * Whether the record read back after a claim is a later claim of a third boot (or the run is
   * done): that one dispatches it. The latest claim in the Lww order never sees a later one, so at
   * least one claimer dispatches; an older value read (a replica behind) does not stop this one.
   */
  private lostTo(readBack: AnyLattice | undefined, claim: Lww, boot: string, callId: string): boolean {
    if (!(readBack instanceof Lww) || readBack.compare(claim as Lww<unknown>) !== 'gt') return false;
    try {
      const record = decodeRunRecord(readBack, callId);
      return record !== undefined && (record.state === 'done' || (record.owner !== this.options.boot && record.owner !== boot));
    } catch {
      return false;
    }
  }

  /** A record claimed too often: EXEC_LOST is its result (as the next attempt), then it is done. */
  private failClaimed(boot: string, gen: number, entry: IndexEntry, record: RunRecord, stored: Lww): Effect[] {
    const callId = entry.callId;
    const error = new LfaasError(ErrorCode.EXEC_LOST, `run ${callId} was taken over from dead schedulers ${record.attempt} times; given up`);
    const result = new Priority(record.attempt + 1, { ok: false, code: error.code, message: error.message });
    return this.host.kvs({ op: 'put', key: record.resultKey, value: result, ack: 'replicated' }, (failure) => {
      this.claiming.delete(callId);
      if (failure !== undefined) {
        this.unmarkHandled(boot, callId);
        return [];
      }
      this.host.counters.takeoverFailed++;
      return [...this.writeDone(record, stored), ...this.dropEntry(boot, gen, entry)];
    });
  }

  /** The record marked done (its arguments dropped), later than the one read. */
  private writeDone(record: RunRecord, stored: Lww | undefined): Effect[] {
    if (stored !== undefined) this.observe(stored.timestamp);
    const done = doneRecord(record, Math.floor(this.host.now()));
    return this.host.kvs({ op: 'put', key: executionKey(record.callId), value: Lww.write(this.host.clock, runRecordValue(done)), ack: 'local' }, () => []);
  }

  /** The entry removed from `boot`'s index (this boot's own: through `remove`). */
  private dropEntry(boot: string, gen: number, entry: IndexEntry): Effect[] {
    if (boot === this.options.boot) return this.remove(entry.callId);
    this.observe(entry.at);
    return this.host.kvs({ op: 'put', key: indexKey(boot, gen), value: indexEntry(this.host.clock, entry.callId, 0), ack: 'local' }, () => []);
  }

  /** Nothing of `boot` is left pending: marked gone, its lease and index keys deleted. */
  private retire(boot: string, gen: number, entry: BootEntry | undefined): Effect[] {
    this.host.counters.bootsRetired++;
    if (entry !== undefined) this.observe(entry.at);
    this.observed.delete(boot);
    this.forgetHandled(boot);
    const indexKeys = [gen - 1, gen, gen + 1].filter((g) => g >= 0).map((g) => indexKey(boot, g));
    return [
      ...this.host.kvs({ op: 'put', key: bootsKey(this.epoch), value: bootEntry(this.host.clock, boot, false), ack: 'local' }, () => []),
      ...this.host.kvs({ op: 'delete', keys: [leaseKey(boot), ...indexKeys] }, () => []),
    ];
  }

  /** Runs of this boot's own index it has not held for two passes: adopted (at most ORPHANS_PER_PASS). */
  private adoptOrphans(): Effect[] {
    const now: string[] = [];
    const confirmed: IndexEntry[] = [];
    for (const [callId, bytes] of this.indexed) {
      if (this.host.holds(callId) || this.claiming.has(callId)) continue;
      now.push(callId);
      if (this.orphans.has(callId) && confirmed.length < ORPHANS_PER_PASS) confirmed.push({ callId, bytes, at: { wallMs: 0, logical: 0 } });
    }
    this.orphans = new Set(now);
    if (confirmed.length === 0 || this.adopting) return [];
    this.adopting = true;
    return this.examine(this.options.boot, this.gen, confirmed, false);
  }

  /**
   * Moves the boots set to a new epoch once enough boots of the current one are gone (and it is old
   * enough): the live boots of every epoch read are copied into the next.
   */
  private maybeRotateBoots(boots: ReadonlyMap<string, BootEntry>, current: ReadonlyMap<string, BootEntry>): Effect[] {
    const now = this.host.now();
    if (this.bootsRotating || now - (this.epochSinceMs ?? now) < this.options.bootsEpochMinMs) return [];
    let gone = 0;
    for (const entry of current.values()) if (!entry.live) gone++;
    if (gone < BOOTS_GONE_ROTATE) return [];
    this.bootsRotating = true;
    const from = this.epoch;
    const to = from + 1;
    const live = [...boots].filter(([, entry]) => entry.live);
    return this.host.kvs({ op: 'put', key: bootsKey(to), value: bootsOf(live), ack: 'durable' }, (error) => {
      if (error !== undefined) {
        this.bootsRotating = false;
        return [];
      }
      return this.host.kvs({ op: 'put', key: BOOTS_EPOCH_KEY, value: new Max(to), ack: 'durable' }, (failure) => {
        this.bootsRotating = false;
        if (failure !== undefined) return [];
        this.host.counters.bootsRotations++;
        if (this.epoch < to) {
          this.epoch = to;
          this.epochSinceMs = this.host.now();
        }
        // Nobody writes two epochs back any more (every boot reads the pointer each pass, and the
        // epoch was bootsEpochMinMs old); what lived there is in `to`.
        return from >= 1 ? this.host.kvs({ op: 'delete', keys: [bootsKey(from - 1)] }, () => []) : [];
      });
    });
  }

  // ---- bookkeeping ----------------------------------------------------------------------------

  private observe(at: Timestamp): void {
    try {
      this.host.clock.observe(at);
    } catch {
      // A timestamp that is no timestamp (a hostile value) is not folded in.
    }
  }

  private isClaimingFrom(boot: string): boolean {
    for (const from of this.claiming.values()) if (from === boot) return true;
    return false;
  }

  private markHandled(boot: string, callId: string): void {
    let handled = this.handled.get(boot);
    if (handled === undefined) this.handled.set(boot, (handled = new Set()));
    if (handled.has(callId)) return;
    if (this.handledCount >= HANDLED_MAX) {
      // Forget the oldest boot's set: its runs are examined again (their records say what to do).
      const oldest = this.handled.keys().next().value!;
      this.forgetHandled(oldest);
      if (oldest === boot) this.handled.set(boot, (handled = new Set()));
    }
    handled.add(callId);
    this.handledCount++;
  }

  private unmarkHandled(boot: string, callId: string): void {
    if (this.handled.get(boot)?.delete(callId) === true) this.handledCount--;
  }

  private forgetHandled(boot: string): void {
    this.handledCount -= this.handled.get(boot)?.size ?? 0;
    this.handled.delete(boot);
  }
}

/** A record once its result is written: its functions kept without their arguments. */
export function doneRecord(record: RunRecord, atMs: number): RunRecord {
  return { ...record, state: 'done', functions: record.functions.map((fn) => ({ ...fn, args: [] })), atMs };
}
