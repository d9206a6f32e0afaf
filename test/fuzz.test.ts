/**
 * The wire fuzzer (test/fuzz/wire-fuzzer.ts) against a real cluster of processes: a routing node,
 * two storage nodes of two shards each, a scheduler and an executor. For each phase and each
 * socket (routing, every shard, every storage node's control socket, scheduler, executor) it fires
 * the phase's frames from a raw socket of the cluster's transport (test/raw-socket.ts: a TLS-PSK
 * connection writing length-prefixed frames on node:net, a CURVE DEALER on ZeroMQ; not our
 * transport, which checks what it sends), then an echo request on the same socket: its
 * answer marks the moment the socket has read everything before it, which gives the frames per
 * second the socket sustains (printed as a table at the end). A node refuses a peer's frames
 * beyond its share of the inbox (fair-inbox.ts), the marker too: it is sent again (after 25 ms,
 * then twice as long each time, 500 ms at most) until one is answered. The table also shows what
 * each socket's metrics counted meanwhile: frames rejected at decode and refused over the
 * sender's share (the routing node serves no metrics). Then that process must be alive and
 * the socket must answer an echo within 1 s. After each phase, every process must be alive, every
 * socket must answer an echo within 1 s, and the cluster must serve a KVS put/get and a function
 * call.
 *
 * Seeded: the seed is in the suite's name and printed on failure; `LFAAS_SEED=<n>` replays it
 * (the frames are the same; the cluster's ports are not). Quick mode by default (CI, well under a
 * minute on two cores); `LFAAS_LONG=1` runs three seeds at a larger scale (minutes).
 * `LFAAS_FUZZ_FORGE=1` also forges alive members in ring updates to shards and storage nodes (a
 * known trust gap: expected to fail until member authentication exists).
 */
import { RawSocket } from './raw-socket.js';
import { generateKeyPair } from '../protocol/index.js';
import type { Transport } from '../protocol/index.js';
import protobuf from 'protobufjs/minimal.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KvsClient, LatticeFaas } from '../client/index.js';
import { HybridClock, Lww } from '../lattices/index.js';
import { Rpc, bindTransport, decodeEnvelope, encodeEnvelope, systemClock } from '../protocol/index.js';
import { FaasCluster, adminToken, isAlive, scrapeMetrics } from './cluster.js';
import type { RoleProcess } from './cluster.js';
import { LONG_SCALE, PHASES, QUICK_SCALE, WireFuzzer, sendBytes, sendFrames } from './fuzz/wire-fuzzer.js';
import type { FuzzSend, FuzzTarget, PhaseName } from './fuzz/wire-fuzzer.js';
import { code } from './wire-faults.js';

// These frames are hand-made on raw sockets (test/raw-socket.ts) of the transport the cluster runs:
// node:net with TLS-PSK by default, ZeroMQ with CURVE and seals under LFAAS_TRANSPORT=zmq.

const LONG = process.env['LFAAS_LONG'] === '1';
const FORGE = process.env['LFAAS_FUZZ_FORGE'] === '1';
const SEED = process.env['LFAAS_SEED'] !== undefined && process.env['LFAAS_SEED'] !== '' ? Number(process.env['LFAAS_SEED']) >>> 0 : (Date.now() ^ (process.pid << 12)) >>> 0;
const ROUNDS = LONG ? 3 : 1;
const SCALE = LONG ? LONG_SCALE : QUICK_SCALE;
/** How long one (phase, target) may take to send and be read (then the socket counts as mute). */
const DRAIN_TIMEOUT_MS = LONG ? 120_000 : 10_000;
/**
 * How long one phase may fire at all its targets (the rest are not fired): a mute cluster fails
 * fast. A phase takes 12-18 s on a quiet 2-core machine (hostile bodies and addresses read at
 * about 1 s per socket), so 20 s was missed under the suite's load with every socket answering.
 */
const PHASE_BUDGET_MS = LONG ? 15 * 60_000 : 40_000;
/**
 * A put/get or a call that fails is tried again for this long (a forged member the routing node or
 * a scheduler is still timing out). A liveness bound, not a speed one: on a loaded 2-core CI machine
 * (the whole suite runs beside this file) a first call after a flood once took more than 7 s, so
 * the window leaves room for several tries; each retry is printed as a note.
 */
const SERVE_WINDOW_MS = 30_000;
const ECHO_TIMEOUT_MS = 1000;
const FUNCTION = 'fuzz-echo';

/** What one (phase, target) cost and how fast the socket read it. */
interface Measure {
  readonly round: number;
  readonly phase: PhaseName;
  readonly target: string;
  readonly frames: number;
  readonly messages: number;
  readonly bytes: number;
  readonly generateMs: number;
  /** From the first frame until the socket took the last one (ZeroMQ's buffers, then TCP, push back). */
  readonly sendMs: number;
  readonly readMs: number;
  readonly answered: boolean;
  /** What the socket's metrics counted meanwhile (undefined: it serves none). */
  readonly rejected: number | undefined;
  readonly refused: number | undefined;
}

/** A socket's wire counters, from its process's metrics. */
interface WireCounts {
  readonly rejected: number;
  readonly refused: number;
}

describe(`the wire fuzzer (seed ${SEED}, ${LONG ? 'long' : 'quick'} mode; replay with LFAAS_SEED=${SEED}${LONG ? ' LFAAS_LONG=1' : ''})`, () => {
  const cluster = new FaasCluster();
  const targets: (FuzzTarget & { readonly process: RoleProcess })[] = [];
  const dealers = new Map<string, RawSocket>();
  const measures: Measure[] = [];
  /**
   * Markers sent and not yet answered: request id -> the nonce their echo carries (a fuzz frame
   * may name any request id, a bit flip too: only the echo of the nonce is the marker's answer).
   */
  const markers = new Map<number, { readonly nonce: string; answered: boolean; wake?: () => void }>();
  let repliesHeard = 0;
  let listener: Transport;
  let listenerAddress = '';
  let kvs: KvsClient;
  let faas: LatticeFaas;
  let nextProbeId = 1;
  let checks = 0;
  const writer = new HybridClock('fuzz-check', () => Date.now());

  const processes = (): RoleProcess[] => [cluster.routing!, ...cluster.nodes.values(), ...cluster.schedulers, ...cluster.executors];
  const nameOf = (role: RoleProcess): string => targets.find((target) => target.process === role)?.name.split('/')[0] ?? String(role.pid);

  /** The last lines a process wrote to stderr (its stack trace when it died). */
  function stderrTail(role: RoleProcess, lines = 12): string {
    return role.stderr.slice(-lines).join('\n    ');
  }

  /** A marker: an echo request answered to the listener, registered before it is sent. */
  function marker(): { readonly id: number; readonly frame: Uint8Array } {
    const id = nextProbeId++;
    const nonce = `${SEED}:${id}:${Math.random()}`;
    markers.set(id, { nonce, answered: false });
    return { id, frame: encodeEnvelope({ requestId: id, replyTo: listenerAddress, echo: { payload: Buffer.from(nonce) } }) };
  }

  /** Waits (at most `timeoutMs`) for the listener to hear marker `id`'s answer; forgets the marker. */
  function heard(id: number, timeoutMs: number): Promise<boolean> {
    const entry = markers.get(id);
    if (entry === undefined) return Promise.resolve(false);
    if (entry.answered) {
      markers.delete(id);
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        markers.delete(id);
        resolve(false);
      }, timeoutMs);
      entry.wake = () => {
        clearTimeout(timer);
        markers.delete(id);
        resolve(true);
      };
    });
  }

  /** A frame the listener heard: an echo's answer settles its marker. */
  function onReply(part: Uint8Array): void {
    repliesHeard++;
    const id = responseToOf(part);
    const entry = id === undefined ? undefined : markers.get(id);
    if (entry === undefined || entry.answered) return;
    let nonce: string | undefined;
    try {
      const payload = decodeEnvelope(part).echo?.payload;
      nonce = payload === undefined || payload === null ? undefined : Buffer.from(payload).toString();
    } catch {
      return;
    }
    if (nonce !== entry.nonce) return;
    entry.answered = true;
    entry.wake?.();
  }

  /** Echo probes of every target (a fresh transport each time); the problems found. */
  async function echoProblems(only?: readonly FuzzTarget[]): Promise<string[]> {
    const transport = await bindTransport();
    const rpc = new Rpc(transport, systemClock);
    try {
      const results = await Promise.all(
        (only ?? targets).map(async (target) => {
          const started = performance.now();
          try {
            const reply = await rpc.request(target.address, { echo: { payload: Uint8Array.of(7, 7) } }, { timeoutMs: ECHO_TIMEOUT_MS });
            return reply.body === 'echo' ? undefined : `${target.name}: echo answered with ${reply.body}`;
          } catch (error) {
            return `${target.name}: no echo within ${ECHO_TIMEOUT_MS} ms (${(error as Error).message}; after ${Math.round(performance.now() - started)} ms)`;
          }
        }),
      );
      return results.filter((problem): problem is string => problem !== undefined);
    } finally {
      await rpc.close();
      await transport.close();
    }
  }

  function deadProblems(): string[] {
    return processes()
      .filter((role) => !isAlive(role.pid))
      .map((role) => `process ${nameOf(role)} (pid ${role.pid}) died; stderr:\n    ${stderrTail(role)}`);
  }

  /** Tries `attempt` until it holds or the window passes; the problem, or undefined (with a note when it needed more than one try). */
  async function served(what: string, attempt: () => Promise<void>, notes: string[]): Promise<string | undefined> {
    const started = Date.now();
    let tries = 0;
    let last: unknown;
    while (tries < 50 && Date.now() - started < SERVE_WINDOW_MS) {
      tries++;
      try {
        await attempt();
        if (tries > 1) notes.push(`${what} served after ${tries} tries (${Date.now() - started} ms; first failure: ${String(last)})`);
        return undefined;
      } catch (error) {
        last ??= error;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    return `${what} not served in ${SERVE_WINDOW_MS} ms (${tries} tries): ${String(last)}`;
  }

  /** Everything alive, every socket answers an echo within 1 s, a KVS put/get and a call work. */
  async function clusterProblems(label: string): Promise<string[]> {
    const problems = deadProblems();
    problems.push(...(await echoProblems()));
    const check = checks++;
    const notes: string[] = [];
    const kvsProblem = await served(
      'KVS put/get',
      async () => {
        const key = `fuzz-check/${SEED}/${check}`;
        const value = { check, label };
        await kvs.put(key, Lww.write(writer, value));
        const read = await kvs.get<Lww<typeof value>>(key);
        expect(read?.reveal()).toEqual(value);
      },
      notes,
    );
    const callProblem = await served(
      'function call',
      async () => {
        expect(await faas.call(FUNCTION, [check, label], { timeoutMs: 5000 })).toEqual({ echoed: [check, label] });
      },
      notes,
    );
    for (const note of notes) console.log(`[fuzz ${label}] ${note}`);
    // Where a long-lived client failed: does a fresh one get served (the cluster serves, the client's state is stuck)?
    const fresh = kvsProblem === undefined ? undefined : await freshClientServed(check);
    return [...problems, ...[kvsProblem === undefined ? undefined : `${kvsProblem} [${fresh}]`, callProblem].filter((problem): problem is string => problem !== undefined)];
  }

  /** A KVS put/get through a client made now (diagnosis of a failed check). */
  async function freshClientServed(check: number): Promise<string> {
    let client: KvsClient | undefined;
    try {
      client = await KvsClient.connect({ routing: cluster.routingAddresses, requestTimeoutMs: 1000, retriesMax: 3 });
      const key = `fuzz-check/${SEED}/${check}/fresh`;
      await client.put(key, Lww.write(writer, 'fresh'));
      const read = await client.get<Lww<string>>(key);
      return read?.reveal() === 'fresh' ? 'a fresh KvsClient was served' : `a fresh KvsClient read ${JSON.stringify(read?.reveal())}`;
    } catch (error) {
      return `a fresh KvsClient was not served either: ${String(error)}`;
    } finally {
      await client?.close();
    }
  }

  function dealerTo(target: FuzzTarget): RawSocket {
    let socket = dealers.get(target.address);
    if (socket === undefined) {
      // A CURVE client with a key of its own (not a member), each message sealed: the frames reach the nodes' decoders.
      socket = new RawSocket(target.address, { sendHighWaterMark: 200_000, sendTimeout: DRAIN_TIMEOUT_MS });
      dealers.set(target.address, socket);
    }
    return socket;
  }

  /** The wire counters of a target socket, or undefined (the routing node serves no metrics; a scrape failed). */
  async function wireCounts(target: FuzzTarget & { readonly process: RoleProcess }): Promise<WireCounts | undefined> {
    if (target.role === 'routing') return undefined;
    try {
      const text = await scrapeMetrics(target.process);
      // A storage node labels each socket (`socket="shard-0"`); a scheduler or an executor has one.
      const label = target.role === 'shard' || target.role === 'storage' ? `socket="${target.name.split('/')[1]}"` : '';
      const value = (name: string): number => {
        let sum = 0;
        for (const line of text.split('\n')) if (line.startsWith(`${name}{`) && line.includes(label)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
        return sum;
      };
      return { rejected: value('lfaas_wire_frames_rejected_total'), refused: value('lfaas_wire_frames_refused_total') };
    } catch {
      return undefined;
    }
  }

  /** Fires one phase at one target, then its marker echo; the problems found. */
  async function fire(round: number, fuzzer: WireFuzzer, phase: PhaseName, target: FuzzTarget & { readonly process: RoleProcess }, drainTimeoutMs: number): Promise<string[]> {
    const generating = performance.now();
    const sends: FuzzSend[] = [...fuzzer.sends(phase, target)];
    const generateMs = performance.now() - generating;
    const dealer = dealerTo(target);
    const countsBefore = await wireCounts(target);
    const started = performance.now();
    let frames = 0;
    let bytes = 0;
    let messages = 0;
    const problems: string[] = [];
    try {
      for (const send of sends) {
        await dealer.send(send as Uint8Array | Uint8Array[]);
        frames += sendFrames(send);
        bytes += sendBytes(send);
        messages++;
        if (performance.now() - started > drainTimeoutMs) throw new Error(`sending took over ${drainTimeoutMs} ms`);
      }
    } catch (error) {
      problems.push(`${target.name}: ${phase}: the socket stopped taking frames after ${frames} (${(error as Error).message})`);
    }
    const sendMs = performance.now() - started;
    // The marker: on the same socket, so it is read after every frame before it. A node refuses
    // what a peer sends beyond its share of the inbox, the marker too: sent again until answered.
    let read = false;
    try {
      for (let attempt = 0; attempt < 1000 && !read && performance.now() - started < drainTimeoutMs; attempt++) {
        const { id, frame } = marker();
        await dealer.send(frame);
        read = await heard(id, Math.max(1, Math.min(25 * 2 ** Math.min(attempt, 5), 500, drainTimeoutMs - (performance.now() - started))));
      }
    } catch (error) {
      problems.push(`${target.name}: ${phase}: could not send the marker (${(error as Error).message})`);
    }
    const readMs = performance.now() - started;
    const countsAfter = await wireCounts(target);
    const delta = (field: keyof WireCounts): number | undefined => (countsBefore === undefined || countsAfter === undefined ? undefined : countsAfter[field] - countsBefore[field]);
    measures.push({ round, phase, target: target.name, frames, messages, bytes, generateMs, sendMs, readMs, answered: read, rejected: delta('rejected'), refused: delta('refused') });
    if (!read) problems.push(`${target.name}: ${phase}: the marker echo after ${frames} frames was not answered within ${Math.round(drainTimeoutMs)} ms (the socket is mute or far behind)`);
    if (!isAlive(target.process.pid)) {
      problems.push(`${target.name}: ${phase}: its process (pid ${target.process.pid}) died; stderr:\n    ${stderrTail(target.process)}`);
      return problems;
    }
    problems.push(...(await echoProblems([target])).map((problem) => `${problem} (after ${phase})`));
    return problems;
  }

  beforeAll(async () => {
    console.log(`[fuzz] seed ${SEED} (${LONG ? 'long' : 'quick'} mode); replay with LFAAS_SEED=${SEED}`);
    await cluster.startRouting({ global: 2 });
    await cluster.startNode('node-0', 2);
    await cluster.startNode('node-1', 2);
    await cluster.waitForRing();
    await cluster.startScheduler(1000);
    await cluster.startExecutor(2);
    await cluster.waitForExecutors();
    // The markers' answers come to a transport of the cluster's kind, with a key of its own
    // (nodes answer only to keyed addresses); a large inbox, so no answer is refused.
    listener = await bindTransport({ host: '127.0.0.1', port: 0, keyPair: generateKeyPair(), inbox: { peerFramesMax: 1_000_000, totalFramesMax: 1_000_000 } });
    listenerAddress = listener.address;
    listener.onFrame((frame) => onReply(frame));
    kvs = await KvsClient.connect({ routing: cluster.routingAddresses, requestTimeoutMs: 1000, retriesMax: 3 });
    faas = await cluster.connect();
    await faas.register(FUNCTION, code('(check, label) => ({ echoed: [check, label] })'), { timeoutMs: 5000 });

    const routing = cluster.routing!;
    targets.push({ name: 'routing', role: 'routing', address: cluster.routingAddress, process: routing });
    for (const [id, node] of cluster.nodes) {
      targets.push({ name: `${id}/control`, role: 'storage', address: String(node.ready['control']), process: node });
      cluster.shardsOf(id).forEach((address, index) => targets.push({ name: `${id}/shard-${index}`, role: 'shard', address, process: node }));
    }
    targets.push({ name: 'scheduler', role: 'scheduler', address: cluster.schedulerAddresses[0]!, process: cluster.schedulers[0]! });
    targets.push({ name: 'executor', role: 'executor', address: String(cluster.executors[0]!.ready['address']), process: cluster.executors[0]! });
  }, 60_000);

  afterEach((context) => {
    if (context.task.result?.state === 'fail') console.log(`[fuzz] FAILED with seed ${SEED}: replay with LFAAS_SEED=${SEED}${LONG ? ' LFAAS_LONG=1' : ''} npx vitest run test/fuzz.test.ts`);
  });

  afterAll(async () => {
    for (const socket of dealers.values()) socket.close();
    await listener?.close();
    await faas?.close();
    await kvs?.close();
    await cluster.stop();
    if (measures.length > 0) console.log(throughputTable(measures, repliesHeard));
  }, 60_000);

  it('the cluster serves before any fuzzing', async () => {
    expect(targets).toHaveLength(9);
    const problems = await clusterProblems('baseline');
    for (const problem of problems) console.log(`[fuzz baseline] ${problem}`);
    expect(problems).toEqual([]);
  }, 60_000);

  /** The first phase after which the cluster did not serve: later phases would only find it broken. */
  let brokenBy: string | undefined;

  for (let round = 0; round < ROUNDS; round++) {
    const seed = (SEED + round) >>> 0;
    for (const phase of PHASES) {
      it(`round ${round + 1} (seed ${seed}): ${phase} at every socket, then every process alive, echoing and serving`, async () => {
        expect(brokenBy, `not run: the cluster stopped serving after ${brokenBy}`).toBeUndefined();
        const fuzzer = new WireFuzzer(seed, SCALE, { listener: listenerAddress, cluster: targets.map((target) => target.address), functions: [FUNCTION], forgeMembership: FORGE, token: adminToken() });
        const problems: string[] = [];
        const deadline = performance.now() + PHASE_BUDGET_MS;
        for (const target of targets) {
          const leftMs = deadline - performance.now();
          if (leftMs <= 0) {
            problems.push(`${target.name}: ${phase}: not fired (the phase used its ${PHASE_BUDGET_MS} ms on sockets that did not answer)`);
            continue;
          }
          problems.push(...(await fire(round + 1, fuzzer, phase, target, Math.max(1000, Math.min(DRAIN_TIMEOUT_MS, leftMs)))));
        }
        const served = await clusterProblems(`${phase} (round ${round + 1})`);
        if (served.length > 0) brokenBy = `${phase} (round ${round + 1}, seed ${seed})`;
        problems.push(...served);
        for (const problem of problems) console.log(`[fuzz ${phase}] ${problem}`);
        expect(problems, `seed ${seed}, phase ${phase}`).toEqual([]);
      }, (LONG ? 40 : 4) * 60_000);
    }
  }
});

/** `response_to` (field 3) of a frame, read without decoding the rest. */
function responseToOf(frame: Uint8Array): number | undefined {
  try {
    const reader = protobuf.Reader.create(frame);
    for (let fields = 0; fields < 16 && reader.pos < reader.len; fields++) {
      const tag = reader.uint32();
      if (tag >>> 3 === 3 && (tag & 7) === 0) return Number(reader.uint64());
      reader.skipType(tag & 7);
    }
  } catch {
    // Not an envelope.
  }
  return undefined;
}

/** The frames per second each socket read, per phase: what the closing note quotes. */
function throughputTable(measures: readonly Measure[], replies: number): string {
  const rows = measures.map((m) => [
    String(m.round),
    m.phase,
    m.target,
    String(m.frames),
    (m.bytes / (1024 * 1024)).toFixed(1),
    m.sendMs.toFixed(0),
    m.readMs.toFixed(0),
    m.answered ? Math.round(m.frames / (m.readMs / 1000)).toLocaleString('en-US') : 'mute',
    m.rejected === undefined ? '-' : String(m.rejected),
    m.refused === undefined ? '-' : String(m.refused),
  ]);
  const header = ['round', 'phase', 'socket', 'frames', 'MiB', 'sent ms', 'read ms', 'frames/s', 'rejected', 'refused'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: readonly string[]): string => cells.map((cell, column) => (column >= 3 ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!))).join('  ');
  return [`[fuzz] frames per second each socket sustained (send until the marker echo came back; ${replies} replies heard)`, line(header), ...rows.map(line)].join('\n');
}
