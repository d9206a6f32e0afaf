/**
 * The one rule for strings: every string a lattice holds (values at any depth, object keys, set
 * elements, writer and node ids, map keys) and every string of a user value is well-formed Unicode.
 *
 * Why refuse rather than repair: msgpack carries strings as UTF-8, and a lone surrogate (U+D800 to
 * U+DFFF without its pair) has no UTF-8 form. msgpackr writes a short one as the 3-byte sequence of
 * the surrogate (not UTF-8; its own decoder then reads it as U+FFFD) and a long one through
 * `Buffer.write`, which stores U+FFFD. Either way the value a writer holds is not the value a
 * reader gets, so it is refused where it is built, with a typed error, and never stored.
 *
 * Decoding refuses ill-formed bytes too. msgpackr turns invalid UTF-8 into U+FFFD without a word,
 * so a peer's bytes (another client library, a hand-made payload) would arrive changed; and it turns
 * a non-string map key (an integer, say) into a string. {@link msgpackStringProblem} walks the raw
 * bytes and finds both.
 */

/** `String.prototype.isWellFormed` (ES2024, in Node 20; our `lib` is ES2023): no lone surrogates. */
export function isWellFormedString(value: string): boolean {
  return (value as unknown as { isWellFormed(): boolean }).isWellFormed();
}

/**
 * Where a msgpack payload breaks the string rule, or `undefined` when it does not: a string whose
 * bytes are not well-formed UTF-8, or a map key that is not a string. Call it on bytes that already
 * unpacked (it trusts the framing only as far as it checks bounds; truncated input is reported, never
 * read past). Iterative, so hostile nesting cannot overflow the stack.
 *
 * @example
 * ```ts
 * msgpackStringProblem(Uint8Array.of(0xa3, 0xed, 0xa0, 0x80)); // 'the string at byte 1 is not well-formed UTF-8'
 * ```
 */
export function msgpackStringProblem(bytes: Uint8Array): string | undefined {
  // One frame per open array or map: items still to read, and whether it is a map (keys at even counts).
  const remaining: number[] = [1];
  const isMap: boolean[] = [false];
  let position = 0;
  const length = bytes.byteLength;
  const readUint = (size: number): number => {
    let value = 0;
    for (let i = 0; i < size; i++) value = value * 256 + (bytes[position + i] as number);
    position += size;
    return value;
  };
  while (remaining.length > 0) {
    const top = remaining.length - 1;
    const left = remaining[top] as number;
    if (left === 0) {
      remaining.pop();
      isMap.pop();
      continue;
    }
    const keyExpected = (isMap[top] as boolean) && left % 2 === 0;
    remaining[top] = left - 1;
    if (position >= length) return 'truncated payload';
    const head = bytes[position++] as number;
    let stringBytes = -1;
    let skipBytes = 0;
    let items = 0;
    let map = false;
    if (head <= 0x7f || head >= 0xe0) {
      // positive or negative fixint
    } else if (head <= 0x8f) {
      items = (head & 0x0f) * 2;
      map = true;
    } else if (head <= 0x9f) {
      items = head & 0x0f;
    } else if (head <= 0xbf) {
      stringBytes = head & 0x1f;
    } else {
      const sizes = EXTRA_BYTES[head - 0xc0] as number;
      if (position + sizes > length) return 'truncated payload';
      switch (head) {
        case 0xc1:
          return `reserved byte 0xc1 at byte ${position - 1}`;
        case 0xc4: // bin 8/16/32
        case 0xc5:
        case 0xc6:
          skipBytes = readUint(sizes);
          break;
        case 0xc7: // ext 8/16/32: length, then a type byte
        case 0xc8:
        case 0xc9:
          skipBytes = readUint(sizes) + 1;
          break;
        case 0xd9: // str 8/16/32
        case 0xda:
        case 0xdb:
          stringBytes = readUint(sizes);
          break;
        case 0xdc: // array 16/32
        case 0xdd:
          items = readUint(sizes);
          break;
        case 0xde: // map 16/32
        case 0xdf:
          items = readUint(sizes) * 2;
          map = true;
          break;
        default: // nil, booleans, numbers, fixext: a fixed size
          skipBytes = sizes;
      }
    }
    if (keyExpected && stringBytes < 0) return `a map key at byte ${position - 1} is not a string`;
    if (stringBytes >= 0) {
      if (position + stringBytes > length) return 'truncated payload';
      if (!isWellFormedUtf8(bytes, position, position + stringBytes)) return `the string at byte ${position} is not well-formed UTF-8`;
      position += stringBytes;
    }
    position += skipBytes;
    if (position > length) return 'truncated payload';
    if (items > 0) {
      remaining.push(items);
      isMap.push(map);
    }
  }
  return position === length ? undefined : 'trailing bytes';
}

/** Bytes after the head byte 0xc0 + i: the length field of variable types, the whole body of fixed ones. */
const EXTRA_BYTES: readonly number[] = [
  0, 0, 0, 0, // c0 nil, c1 reserved, c2 false, c3 true
  1, 2, 4, // c4-c6 bin: length field
  1, 2, 4, // c7-c9 ext: length field
  4, 8, // ca float32, cb float64
  1, 2, 4, 8, // cc-cf uint
  1, 2, 4, 8, // d0-d3 int
  2, 3, 5, 9, 17, // d4-d8 fixext: type byte + data
  1, 2, 4, // d9-db str: length field
  2, 4, // dc-dd array: length field
  2, 4, // de-df map: length field
];

/** Whether `bytes[start, end)` is well-formed UTF-8 (Unicode table 3-7: no overlongs, surrogates or values past U+10FFFF). */
function isWellFormedUtf8(bytes: Uint8Array, start: number, end: number): boolean {
  let i = start;
  while (i < end) {
    const first = bytes[i] as number;
    if (first < 0x80) {
      i++;
      continue;
    }
    let size: number;
    let low = 0x80;
    let high = 0xbf;
    if (first >= 0xc2 && first <= 0xdf) size = 2;
    else if (first >= 0xe0 && first <= 0xef) {
      size = 3;
      if (first === 0xe0) low = 0xa0;
      else if (first === 0xed) high = 0x9f;
    } else if (first >= 0xf0 && first <= 0xf4) {
      size = 4;
      if (first === 0xf0) low = 0x90;
      else if (first === 0xf4) high = 0x8f;
    } else return false;
    if (i + size > end) return false;
    const second = bytes[i + 1] as number;
    if (second < low || second > high) return false;
    for (let k = 2; k < size; k++) {
      const next = bytes[i + k] as number;
      if (next < 0x80 || next > 0xbf) return false;
    }
    i += size;
  }
  return true;
}
