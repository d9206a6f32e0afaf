/**
 * A process and its descendants, read from /proc on Linux: an executor's sandbox processes
 * (bubblewrap, its namespace init, node) are a tree under the process the executor spawned.
 */
import { readFileSync } from 'node:fs';

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
