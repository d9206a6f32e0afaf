/**
 * A process and its descendants, read from /proc on Linux: an executor's sandbox processes
 * (bubblewrap, its namespace init, node) are a tree under the process the executor spawned.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

/** Bounds of a walk down a process tree (an executor -> bwrap -> bwrap init -> node is depth 3). */
const TREE_DEPTH_MAX = 6;
const TREE_PROCESSES_MAX = 512;
const PAGE_BYTES = 4096;

/**
 * The direct children of a process, from its main thread's list (/proc/<pid>/task/<pid>/children:
 * Node and bubblewrap start children from their main thread); none where /proc cannot be read.
 */
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1')
      .trim()
      .split(' ')
      .filter((child) => child !== '')
      .map(Number);
  } catch {
    return [];
  }
}

/** A process and its descendants, parents first (bounded in depth and count). */
export function processTree(pid: number): number[] {
  const tree: number[] = [];
  const seen = new Set<number>();
  const visit = (current: number, depth: number): void => {
    if (tree.length >= TREE_PROCESSES_MAX || seen.has(current)) return;
    seen.add(current);
    tree.push(current);
    if (depth < TREE_DEPTH_MAX) for (const child of childPids(current)) visit(child, depth + 1);
  };
  visit(pid, 0);
  return tree;
}

/** Resident memory of a process and its descendants, in bytes (a process that ended meanwhile counts 0). */
export function treeResidentBytes(pid: number): number {
  let total = 0;
  for (const member of processTree(pid)) {
    try {
      total += Number(readFileSync(`/proc/${member}/statm`, 'latin1').split(' ')[1]) * PAGE_BYTES;
    } catch {
      // Ended meanwhile: it holds nothing.
    }
  }
  return total;
}

/** How many reads of a {@link TreeMemory} use the processes it found before it walks the tree again. */
const REWALK_EVERY = 100;

/**
 * The resident memory of a process tree, read often (every few milliseconds while a sandbox runs a
 * call): the tree is walked once every {@link REWALK_EVERY} reads, and each member's `statm` stays
 * open and is read again from its start (one system call, where a fresh read opened, examined,
 * read and closed the file: thousands of system calls a second per executor).
 */
export class TreeMemory {
  private members = new Map<number, number>();
  private reads = 0;
  private readonly buffer = Buffer.alloc(128);
  private closed = false;

  constructor(private readonly pid: number) {}

  /** Resident bytes of the process and its descendants (a process that ended meanwhile counts 0). */
  bytes(): number {
    if (this.closed) return 0;
    if (this.reads++ % REWALK_EVERY === 0) this.rewalk();
    let total = 0;
    for (const [member, fd] of this.members) {
      let pages = Number.NaN;
      try {
        const length = readSync(fd, this.buffer, 0, this.buffer.byteLength, 0);
        pages = Number(this.buffer.toString('latin1', 0, length).split(' ')[1]);
      } catch {
        // Ended meanwhile (read below).
      }
      // An ended process holds nothing (its file reads fail or read empty): dropped until the next walk finds it again.
      if (Number.isFinite(pages)) total += pages * PAGE_BYTES;
      else this.forget(member);
    }
    return total;
  }

  close(): void {
    this.closed = true;
    for (const member of [...this.members.keys()]) this.forget(member);
  }

  private rewalk(): void {
    const tree = new Set(processTree(this.pid));
    for (const member of [...this.members.keys()]) if (!tree.has(member)) this.forget(member);
    for (const member of tree) {
      if (this.members.has(member)) continue;
      try {
        this.members.set(member, openSync(`/proc/${member}/statm`, 'r'));
      } catch {
        // Ended meanwhile.
      }
    }
  }

  private forget(member: number): void {
    const fd = this.members.get(member);
    this.members.delete(member);
    if (fd !== undefined) closeSync(fd);
  }
}
