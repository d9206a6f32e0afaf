/**
 * The physical limit every FaaS benchmark is compared with: a raw zeromq Dealer/Router echo
 * (bench/echo-server.ts, its own OS process), with the least a correct client needs, and the
 * same server speaking our protocol (`ours`).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Dealer } from 'zeromq';

const here = dirname(fileURLToPath(import.meta.url));
export const PAYLOAD = new Uint8Array(64).fill(7);

export interface Client {
  roundTrip(): Promise<unknown>;
  close(): Promise<void>;
}

export async function startServer(mode: 'raw' | 'curve' | 'plain' | 'net-tls' | 'net-plain'): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, [join(here, 'echo-server.js'), mode], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${mode} echo server did not start in 10 s`)), 10_000);
    lines.on('line', (line) => {
      if (line.startsWith('ready ')) {
        clearTimeout(timer);
        resolve(line.slice('ready '.length));
      }
    });
    child.on('exit', (code) => reject(new Error(`${mode} echo server exited with ${code}`)));
  });
  return { child, address };
}

/** The baseline: a Dealer with the minimum a correct client needs (one writer, ids to match replies). */
export async function rawClient(address: string): Promise<Client> {
  const dealer = new Dealer({ linger: 0 });
  dealer.connect(address);
  const pending = new Map<number, () => void>();
  const queue: Buffer[][] = [];
  let sending = false;
  let nextId = 1;
  const pump = async (): Promise<void> => {
    sending = true;
    while (queue.length > 0) await dealer.send(queue.shift()!);
    sending = false;
  };
  void (async () => {
    try {
      for await (const [id] of dealer) {
        const resolve = pending.get(id!.readUInt32LE(0));
        pending.delete(id!.readUInt32LE(0));
        resolve?.();
      }
    } catch {
      // closed
    }
  })();
  return {
    roundTrip: () =>
      new Promise<void>((resolve) => {
        const id = nextId++;
        const header = Buffer.alloc(4);
        header.writeUInt32LE(id >>> 0, 0);
        pending.set(id >>> 0, resolve);
        queue.push([header, Buffer.from(PAYLOAD)]);
        if (!sending) void pump();
      }),
    close: async () => dealer.close(),
  };
}

