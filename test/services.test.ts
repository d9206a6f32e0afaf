/**
 * Discovery of ingresses through the routing nodes, with real processes (CURVE on, keys from
 * `lfaas keys init`): a routing node and a scheduler; an `lfaas ingress` announces its HTTP URL
 * with its member key (`ingress.key`); `lfaas services --json`, `listServices` and
 * `faas.services()` list it (and the scheduler), and it is unlisted once it stops. An ingress
 * started with a keys folder made before the ingress role (no `ingress.key`) serves, warns, and
 * is not listed.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LatticeFaas, listServices } from '../client/index.js';
import { CLI, TestCluster, eventually, startProcess, stopProcess, testKeysFolder } from './cluster.js';
import type { RoleProcess } from './cluster.js';

/** `lfaas services --json --routing <routing>`, parsed. */
function servicesCli(routing: string): Promise<{ routing: string[]; schedulers: string[]; ingresses: string[]; monitors: string[] }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, 'services', '--json', '--routing', routing], { timeout: 30_000, env: { ...process.env, LFAAS_ROUTING: '', LFAAS_SCHEDULERS: '' } }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`lfaas services failed: ${error.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as never);
    });
  });
}

describe('services: ingresses discovered through the routing nodes', () => {
  const cluster = new TestCluster();
  let scheduler: RoleProcess | undefined;
  const work = mkdtempSync(join(tmpdir(), 'lfaas-services-'));

  beforeAll(async () => {
    await cluster.startRouting();
    scheduler = await startProcess(['scheduler', '--routing', cluster.routingAddress, '--port', '0', '--metrics-port', '-1']);
  }, 60_000);

  afterAll(async () => {
    if (scheduler !== undefined) await stopProcess(scheduler);
    await cluster.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('a started ingress is listed with its HTTP URL, and unlisted once it stops', async () => {
    const ingress = await startProcess(['ingress', '--keys', testKeysFolder(), '--routing', cluster.routingAddress, '--schedulers', String(scheduler!.ready['address']), '--port', '0', '--metrics-port', '-1']);
    let stopped = false;
    try {
      const url = String(ingress.ready['url']);
      expect(url).toBe(`http://127.0.0.1:${String(ingress.ready['port'])}`);
      // The URL is the one callers use: it answers.
      expect((await fetch(`${url}/v1/health`, { signal: AbortSignal.timeout(10_000) })).status).toBeLessThan(500);

      let listed = await servicesCli(cluster.routingAddress);
      for (let round = 0; round < 40 && !listed.ingresses.includes(url); round++) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        listed = await servicesCli(cluster.routingAddress);
      }
      expect(listed.ingresses).toEqual([url]);
      expect(listed.schedulers).toEqual([String(scheduler!.ready['address'])]);
      expect(listed.routing).toEqual([cluster.routingAddress]);

      expect((await listServices({ routing: [cluster.routingAddress] })).ingresses).toEqual([url]);
      const faas = await LatticeFaas.connect({ routing: [cluster.routingAddress], schedulers: [String(scheduler!.ready['address'])] });
      try {
        expect(await faas.services()).toMatchObject({ ingresses: [url], schedulers: [String(scheduler!.ready['address'])] });
      } finally {
        await faas.close();
      }

      await stopProcess(ingress);
      stopped = true;
      // Unlisted by its departure (or, were that lost, by its TTL).
      const gone = await eventually(async () => (await listServices({ routing: [cluster.routingAddress] })).ingresses.length === 0, 20_000);
      expect(gone).toBe(true);
      expect((await servicesCli(cluster.routingAddress)).ingresses).toEqual([]);
    } finally {
      if (!stopped) await stopProcess(ingress);
    }
  }, 120_000);

  it('a keys folder made before the ingress role (no ingress.key): the ingress serves, warns, is not listed', async () => {
    const old = join(work, 'keys-old');
    cpSync(testKeysFolder(), old, { recursive: true });
    rmSync(join(old, 'ingress.key'));
    const members = JSON.parse(readFileSync(join(old, 'members.json'), 'utf8')) as { members: Record<string, unknown> };
    delete members.members['ingress'];
    writeFileSync(join(old, 'members.json'), JSON.stringify(members));
    const ingress = await startProcess(['ingress', '--keys', old, '--routing', cluster.routingAddress, '--schedulers', String(scheduler!.ready['address']), '--port', '0', '--metrics-port', '-1']);
    try {
      expect(ingress.ready['url']).toBeNull();
      expect(await eventually(() => ingress.stderr.some((line) => line.includes('no ingress.key')), 10_000)).toBe(true);
      expect((await fetch(`${String(ingress.ready['address'])}/v1/health`, { signal: AbortSignal.timeout(10_000) })).status).toBeLessThan(500);
      expect((await listServices({ routing: [cluster.routingAddress] })).ingresses).toEqual([]);
    } finally {
      await stopProcess(ingress);
    }
  }, 120_000);
});
