import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { TreeMemory, processTree, treeResidentBytes } from './process-tree.js';

/** A node process that starts one child (both sleep), and prints the child's pid once the child has started. */
async function startTree(): Promise<{ pid: number; childPid: number; stop(): void }> {
  const script = `const c = require('node:child_process').spawn(process.execPath, ['-e', 'console.log(1); setInterval(() => {}, 1000)'], { stdio: ['ignore', 'pipe', 'ignore'] }); c.stdout.once('data', () => console.log(c.pid)); setInterval(() => {}, 1000);`;
  const parent = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const childPid = await new Promise<number>((resolve, reject) => {
    parent.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
    parent.once('exit', () => reject(new Error('the tree did not start')));
  });
  return {
    pid: parent.pid!,
    childPid,
    stop: () => {
      parent.kill('SIGKILL');
      try {
        process.kill(childPid, 'SIGKILL');
      } catch {
        // Already ended (the test ends it).
      }
    },
  };
}

describe('TreeMemory', () => {
  it('reads the resident memory of a whole process tree as a fresh walk does, follows a member ending, and reads 0 once closed', async () => {
    const tree = await startTree();
    try {
      expect(processTree(tree.pid)).toEqual([tree.pid, tree.childPid]);
      const memory = new TreeMemory(tree.pid);
      const first = memory.bytes();
      const fresh = treeResidentBytes(tree.pid);
      // Two started node processes: tens of MB; the two reads are a moment apart.
      expect(first).toBeGreaterThan(20 * 1024 * 1024);
      expect(Math.abs(first - fresh)).toBeLessThan(fresh * 0.2);
      // Reads again (from the open files) give the same order of figure.
      for (let i = 0; i < 5; i++) expect(Math.abs(memory.bytes() - fresh)).toBeLessThan(fresh * 0.2);
      // The child ends: its share goes.
      process.kill(tree.childPid, 'SIGKILL');
      const deadline = Date.now() + 5000;
      while (processTree(tree.pid).length > 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      const parentOnly = treeResidentBytes(tree.pid);
      expect(Math.abs(memory.bytes() - parentOnly)).toBeLessThan(parentOnly * 0.2);
      memory.close();
      expect(memory.bytes()).toBe(0);
    } finally {
      tree.stop();
    }
  });
});
