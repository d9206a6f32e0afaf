/**
 * Reads V8 CPU profiles (`.cpuprofile`: Chrome DevTools' format, written by `LFAAS_CPU_PROFILE_DIR`
 * roles and the inspector) and says where the time went: self time per function and per part
 * (our folders and files, each library, Node's internals, the garbage collector, idle).
 */

/** The subset of a `.cpuprofile` this reads. */
export interface CpuProfile {
  readonly nodes: readonly { readonly id: number; readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }; readonly hitCount?: number }[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

/** Self time of one function or one part, in microseconds. */
export interface SelfTime {
  readonly name: string;
  readonly micros: number;
}

export interface ProfileSummary {
  /** Sampled time in total, idle included, in microseconds. */
  readonly totalMicros: number;
  /** Sampled time the thread was not idle. */
  readonly busyMicros: number;
  /** Busy time by part, largest first. */
  readonly parts: readonly SelfTime[];
  /** Busy time by function (`name part:line`), largest first. */
  readonly functions: readonly SelfTime[];
}

const LIBRARIES: readonly [RegExp, string][] = [
  [/node_modules\/zeromq\//, 'lib zeromq.js'],
  [/node_modules\/protobufjs\//, 'lib protobufjs'],
  [/node_modules\/@protobufjs\//, 'lib protobufjs'],
  [/node_modules\/msgpackr/, 'lib msgpackr'],
  [/node_modules\/lmdb/, 'lib lmdb'],
  [/node_modules\/pino/, 'lib pino'],
  [/node_modules\/@opentelemetry\//, 'lib opentelemetry'],
];

/** The part a frame belongs to: one of ours (`kvs/shard.js`), a library, Node, or V8's own entries. */
export function partOf(url: string, functionName: string): string {
  if (url === '') {
    if (functionName === '(garbage collector)' || functionName === '(program)' || functionName === '(idle)' || functionName === '(root)') return functionName;
    return 'native';
  }
  for (const [pattern, name] of LIBRARIES) if (pattern.test(url)) return name;
  if (url.startsWith('node:')) return `node ${url.slice('node:'.length).replace(/^internal\//, '').split('/')[0]}`;
  const node = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (node !== null) return `lib ${node[1]}`;
  // Our code: the last two path segments under dist/ (folder/file).
  const ours = /dist\/(.+)$/.exec(url);
  if (ours !== null) return ours[1]!.split('/').slice(-2).join('/');
  return url.split('/').slice(-2).join('/');
}

/** Self times of a profile, by part and by function. */
export function summariseProfile(profile: CpuProfile): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfById = new Map<number, number>();
  if (profile.samples !== undefined && profile.timeDeltas !== undefined) {
    // Each sample's time is the delta to the next sample.
    const samples = profile.samples;
    const deltas = profile.timeDeltas;
    for (let i = 0; i < samples.length; i++) {
      const delta = i + 1 < deltas.length ? deltas[i + 1]! : 0;
      selfById.set(samples[i]!, (selfById.get(samples[i]!) ?? 0) + Math.max(0, delta));
    }
  } else {
    const interval = (profile.endTime - profile.startTime) / Math.max(1, profile.nodes.reduce((sum, node) => sum + (node.hitCount ?? 0), 0));
    for (const node of profile.nodes) selfById.set(node.id, (node.hitCount ?? 0) * interval);
  }
  const parts = new Map<string, number>();
  const functions = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, micros] of selfById) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const part = partOf(url, functionName);
    total += micros;
    if (part === '(idle)') {
      idle += micros;
      continue;
    }
    parts.set(part, (parts.get(part) ?? 0) + micros);
    const name = `${functionName === '' ? '(anonymous)' : functionName} ${part}${url === '' ? '' : `:${lineNumber + 1}`}`;
    functions.set(name, (functions.get(name) ?? 0) + micros);
  }
  const sorted = (map: Map<string, number>): SelfTime[] => [...map].map(([name, micros]) => ({ name, micros })).sort((a, b) => b.micros - a.micros);
  return { totalMicros: total, busyMicros: total - idle, parts: sorted(parts), functions: sorted(functions) };
}
