/**
 * Length-prefixed frames out of a byte stream (the node:net transport, net-transport.ts): each frame
 * is a 4-byte big-endian length and that many bytes; the stream arrives in chunks of any size.
 *
 * - No quadratic copying: chunks are kept as a list, never concatenated as they come. A frame
 *   inside one chunk is a view of it; a frame spread over several chunks is copied once, when it
 *   is complete. A small frame cut from a big chunk is copied, so a few bytes waiting in an inbox
 *   do not keep a whole read buffer alive (the inbox bounds bytes by the frames' own lengths).
 * - Bounded: a length above `frameBytesMax` is refused as soon as its 4 bytes are in, before any of
 *   the frame is buffered; the caller then closes the connection. At most one frame (plus one
 *   chunk) is ever buffered.
 *
 * @example
 * ```ts
 * const reader = new FrameReader(DEFAULT_MAX_FRAME_BYTES);
 * socket.on('data', (chunk) => {
 *   if (!reader.push(chunk, (frame) => inbox.offer(peer, frame))) socket.destroy();
 * });
 * ```
 */

/** Bytes of a frame's length prefix. */
export const FRAME_HEADER_BYTES = 4;
/** A frame smaller than this cut from a chunk this many times its size is copied (see the file comment). */
const COPY_RATIO = 8;
/** ...as long as it is at most this big; larger frames stay views. */
const COPY_BYTES_MAX = 4096;

/** See the file comment. */
export class FrameReader {
  private chunks: Buffer[] = [];
  /** Bytes in `chunks`, minus what `offset` already consumed of the first one. */
  private buffered = 0;
  /** Bytes of the first chunk already consumed. */
  private offset = 0;
  /** The length of the frame being read, once its header is in; -1 before. */
  private needed = -1;

  constructor(private readonly frameBytesMax: number) {}

  /** Bytes buffered and not yet handed out as frames. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /**
   * Adds `chunk` and hands every frame now complete to `deliver`, in order. Returns false (and
   * delivers nothing more) when a frame's length is above the bound: the stream is then unusable.
   */
  push(chunk: Buffer, deliver: (frame: Buffer) => void): boolean {
    if (chunk.byteLength === 0) return true;
    this.chunks.push(chunk);
    this.buffered += chunk.byteLength;
    for (;;) {
      if (this.needed < 0) {
        if (this.buffered < FRAME_HEADER_BYTES) return true;
        const length = this.take(FRAME_HEADER_BYTES, false).readUInt32BE(0);
        if (length > this.frameBytesMax) return false;
        this.needed = length;
      }
      if (this.buffered < this.needed) return true;
      const frame = this.take(this.needed, true);
      this.needed = -1;
      deliver(frame);
    }
  }

  /**
   * The next `count` bytes (count <= buffered): a view when they lie in one chunk (copied when
   * small and `detach`, see the file comment), else one copy.
   */
  private take(count: number, detach: boolean): Buffer {
    if (count === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    const available = first.byteLength - this.offset;
    let out: Buffer;
    if (available >= count) {
      out = first.subarray(this.offset, this.offset + count);
      if (detach && count <= COPY_BYTES_MAX && count * COPY_RATIO < first.byteLength) out = Buffer.from(out);
      this.offset += count;
      if (this.offset === first.byteLength) {
        this.chunks.shift();
        this.offset = 0;
      }
    } else {
      out = Buffer.allocUnsafe(count);
      let filled = 0;
      while (filled < count) {
        const chunk = this.chunks[0]!;
        const part = Math.min(count - filled, chunk.byteLength - this.offset);
        chunk.copy(out, filled, this.offset, this.offset + part);
        filled += part;
        this.offset += part;
        if (this.offset === chunk.byteLength) {
          this.chunks.shift();
          this.offset = 0;
        }
      }
    }
    this.buffered -= count;
    return out;
  }
}
