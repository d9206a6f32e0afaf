/**
 * The log records an executor's functions wrote (`console.*`, `ctx.log`), kept so that their owners
 * can read them (`lfaas logs`, `faas.logs()`): a bounded buffer in the executor's memory, oldest
 * records dropped first.
 *
 * Why memory and not the KVS: a record is kept on the call's hot path (a function may log a
 * thousand lines per call), and a KVS write per record, or per batch, would put the storage tier
 * on that path for data nobody may ever read. A production FaaS keeps recent logs where they were
 * written and ships them to a log store out of band; this executor keeps the recent ones, and a
 * reader asks every live executor (their addresses come from a scheduler). Records die with the
 * executor's process: see docs/observability-logs.md.
 *
 * Bounds (a function's text is untrusted): records at most (`recordsMax`), bytes at most
 * (`bytesMax`, text and fields counted), each record's text and fields cut to a length (and made
 * well-formed Unicode, so an answer always encodes). Each record gets a sequence number,
 * increasing for this executor's boot: a follower asks for the records after the last it saw.
 *
 * @example
 * ```ts
 * const logs = new FunctionLogBuffer({ recordsMax: 1000 });
 * logs.add({ timeMs: Date.now(), function: 'alice/f', version: 1, callId: 'alice/x-1', level: 'info', text: 'hello' });
 * logs.query({ name: 'alice/' }).records; // [{ seq: 1, function: 'alice/f', text: 'hello', ... }]
 * ```
 */

/** One record as kept (and as answered: the fields of `FunctionLogRecord` in faas.proto). */
export interface KeptLogRecord {
  readonly seq: number;
  readonly timeMs: number;
  readonly function: string;
  readonly version: number;
  readonly callId: string;
  readonly level: string;
  readonly text: string;
  /** ctx.log's fields as JSON text ('' : none). */
  readonly fields: string;
}

export type NewLogRecord = Omit<KeptLogRecord, 'seq' | 'fields'> & { readonly fields?: string };

/** What a reader asks (`LogsRequest` in faas.proto). */
export interface LogQuery {
  /** A function, a namespace (`alice/`), or '' (every function). */
  readonly name?: string;
  readonly sinceMs?: number;
  readonly callId?: string;
  readonly afterSeq?: number;
  readonly limit?: number;
}

export interface FunctionLogBufferOptions {
  /** Records kept at most (default 20,000). */
  readonly recordsMax?: number;
  /** Characters of text and fields kept at most, over all records (default 8 Mi). */
  readonly bytesMax?: number;
  /** One record's text, at most (longer: cut, with a note of the length; default 4,096). */
  readonly textCharsMax?: number;
  /** One record's fields (JSON text), at most (longer: cut; default 2,048). */
  readonly fieldsCharsMax?: number;
}

/** Records in one answer at most: an answer is one frame. */
export const LOG_QUERY_LIMIT_MAX = 1000;
/** Records in one answer when the reader names no limit. */
export const LOG_QUERY_LIMIT_DEFAULT = 500;
/** What a name or call id in a query may be, at most: longer matches nothing. */
const QUERY_NAME_CHARS_MAX = 512;
/** A record's fixed cost in the byte budget (numbers, names, the object itself). */
const RECORD_OVERHEAD_BYTES = 128;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** `text` at most `max` characters (not splitting a surrogate pair), well-formed Unicode. */
export function boundText(text: string, max: number): string {
  let out = text;
  if (out.length > max) {
    let end = max;
    const last = out.charCodeAt(end - 1);
    if (last >= 0xd800 && last <= 0xdbff) end--;
    out = `${out.slice(0, end)}... (${text.length} characters)`;
  }
  return out.replace(LONE_SURROGATE, '\uFFFD');
}

/** Whether `fn` is named by `name`: '' everything, `alice/` a namespace, else the exact name. */
export function nameMatches(name: string, fn: string): boolean {
  if (name === '') return true;
  return name.endsWith('/') ? fn.startsWith(name) : fn === name;
}

/**
 * The bounded buffer of an executor's function log records (see the module's comment): `add` on
 * the call's path, `query` for readers.
 *
 * @example
 * ```ts
 * const logs = new FunctionLogBuffer({ recordsMax: 2 });
 * for (const text of ['a', 'b', 'c']) logs.add({ timeMs: 0, function: 'f', version: 1, callId: 'c', level: 'log', text });
 * logs.query({}).records.map((r) => r.text); // ['b', 'c']
 * ```
 */
export class FunctionLogBuffer {
  /** Oldest first; `head` is the first live index (records before it were dropped). */
  private records: KeptLogRecord[] = [];
  private head = 0;
  private bytes = 0;
  private nextSeq = 1;
  private readonly recordsMax: number;
  private readonly bytesMax: number;
  private readonly textCharsMax: number;
  private readonly fieldsCharsMax: number;
  readonly counters = { added: 0, dropped: 0, cut: 0 };

  constructor(options: FunctionLogBufferOptions = {}) {
    this.recordsMax = Math.max(1, options.recordsMax ?? 20_000);
    this.bytesMax = Math.max(1024, options.bytesMax ?? 8 * 1024 * 1024);
    this.textCharsMax = Math.max(16, options.textCharsMax ?? 4096);
    this.fieldsCharsMax = Math.max(16, options.fieldsCharsMax ?? 2048);
  }

  /** Records kept now. */
  get size(): number {
    return this.records.length - this.head;
  }

  /** Characters (plus a fixed cost per record) kept now. */
  get byteCount(): number {
    return this.bytes;
  }

  /** Keeps `record` (cut to the bounds), dropping the oldest beyond them; returns it as kept. */
  add(record: NewLogRecord): KeptLogRecord {
    const text = boundText(record.text, this.textCharsMax);
    const fields = boundText(record.fields ?? '', this.fieldsCharsMax);
    if (text.length !== record.text.length || fields.length !== (record.fields ?? '').length) this.counters.cut++;
    const kept: KeptLogRecord = {
      seq: this.nextSeq++,
      timeMs: record.timeMs,
      // Never empty: a record names its function (the wire requires it).
      function: boundText(record.function || '(unknown)', QUERY_NAME_CHARS_MAX),
      version: record.version,
      callId: boundText(record.callId, QUERY_NAME_CHARS_MAX),
      level: record.level,
      text,
      fields,
    };
    this.records.push(kept);
    this.bytes += costOf(kept);
    this.counters.added++;
    while (this.size > this.recordsMax || (this.bytes > this.bytesMax && this.size > 1)) this.dropOldest();
    return kept;
  }

  /**
   * The records `query` names, oldest first, at most its limit (`LOG_QUERY_LIMIT_MAX`):
   * `truncated` when more matched (ask again after the last one's `seq`).
   */
  query(query: LogQuery): { readonly records: KeptLogRecord[]; readonly truncated: boolean } {
    const name = query.name ?? '';
    const callId = query.callId ?? '';
    if (name.length > QUERY_NAME_CHARS_MAX || callId.length > QUERY_NAME_CHARS_MAX) return { records: [], truncated: false };
    const limit = Math.min(LOG_QUERY_LIMIT_MAX, query.limit || LOG_QUERY_LIMIT_DEFAULT);
    const sinceMs = query.sinceMs ?? 0;
    const afterSeq = query.afterSeq ?? 0;
    // Sequence numbers are the array's order: start past `afterSeq` at once.
    const first = this.records[this.head];
    let start = this.head;
    if (first !== undefined && afterSeq >= first.seq) start = this.head + Math.min(this.size, afterSeq - first.seq + 1);
    const out: KeptLogRecord[] = [];
    for (let i = start; i < this.records.length; i++) {
      const record = this.records[i]!;
      if (record.timeMs < sinceMs || (callId !== '' && record.callId !== callId) || !nameMatches(name, record.function)) continue;
      if (out.length >= limit) return { records: out, truncated: true };
      out.push(record);
    }
    return { records: out, truncated: false };
  }

  private dropOldest(): void {
    const dropped = this.records[this.head];
    if (dropped === undefined) return;
    this.bytes -= costOf(dropped);
    this.head++;
    this.counters.dropped++;
    // Compact now and then: the dropped prefix is never longer than the live part.
    if (this.head > 1024 && this.head * 2 > this.records.length) {
      this.records = this.records.slice(this.head);
      this.head = 0;
    }
  }
}

function costOf(record: KeptLogRecord): number {
  return RECORD_OVERHEAD_BYTES + record.text.length + record.fields.length + record.function.length + record.callId.length;
}
