/**
 * Lanes for the cold-start benches: one routing node and one storage node shared, and per lane a
 * scheduler with an executor of its own (the executor reports only to its lane's scheduler, so a
 * lane's calls run on its executor), each started with the lane's executor flags. The lanes
 * share the registry (the KVS), so a function registered once is callable in every lane. Secure,
 * as a cluster runs by default. Stopped by pid.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LatticeFaas } from '../client/index.js';
import { startRole, stopChildren } from '../cli/index.js';
import type { Started } from '../cli/index.js';
import { scrape, startBenchStorage } from './faas-cluster.js';

export interface LaneSpec {
  readonly name: string;
  /** Extra `lfaas executor` flags (`--prewarm 0`, `--no-dag-prewarm`, ...). */
  readonly executorArgs: readonly string[];
}

export interface Lane {
  readonly name: string;
  readonly faas: LatticeFaas;
  readonly executorPid: number;
  /** The executor's metrics, one scrape: series name (with its labels as printed) -> value. */
  metrics(): Promise<Map<string, number>>;
}

export interface Lanes {
  readonly lanes: readonly Lane[];
  /** The isolation level the executors run at. */
  readonly isolation: string;
  stop(): Promise<void>;
}

/** GET http://127.0.0.1:<port>/metrics, parsed into series -> value. */
async function scrapeSeries(port: number): Promise<Map<string, number>> {
  const series = new Map<string, number>();
  for (const line of (await scrape(port)).split('\n')) {
    if (line.startsWith('#') || line.length === 0) continue;
    const space = line.lastIndexOf(' ');
    // Labels other than `node` matter (a stage, a source): the node label is dropped.
    const name = line.slice(0, space).replace(/node="[^"]*",?/, '').replace('{}', '').replace(',}', '}');
    series.set(name, Number(line.slice(space + 1)) || 0);
  }
  return series;
}

export async function startLanes(specs: readonly LaneSpec[], options: { workers: number; schedulerArgs?: readonly string[] }): Promise<Lanes> {
  const data = mkdtempSync(join(tmpdir(), 'lfaas-bench-lanes-'));
  const processes: Started[] = [];
  const clients: LatticeFaas[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(clients.map((faas) => faas.close()));
    await stopChildren(processes.map((started) => started.child));
    rmSync(data, { recursive: true, force: true });
  };
  try {
    const { keys, routingAddress } = await startBenchStorage(data, processes);
    const lanes: Lane[] = [];
    const levels = new Set<string>();
    for (const spec of specs) {
      const scheduler = await startRole(['scheduler', '--keys', keys, '--routing', routingAddress, '--metrics-port', '-1', ...(options.schedulerArgs ?? [])], `${spec.name} scheduler`);
      processes.push(scheduler);
      const schedulerAddress = String(scheduler.ready['address']);
      const executor = await startRole(['executor', '--keys', keys, '--routing', routingAddress, '--schedulers', schedulerAddress, '--workers', String(options.workers), ...spec.executorArgs], `${spec.name} executor`);
      processes.push(executor);
      levels.add(String(executor.ready['isolation']));
      const faas = await LatticeFaas.connect({ routing: [routingAddress], schedulers: [schedulerAddress] });
      clients.push(faas);
      const port = Number(executor.ready['metricsPort']);
      lanes.push({ name: spec.name, faas, executorPid: executor.child.pid!, metrics: () => scrapeSeries(port) });
    }
    if (levels.size !== 1) throw new Error(`the executors run at different isolation levels: ${[...levels].join(', ')}`);
    // Until each lane's scheduler has heard from its executor (bounded).
    for (const lane of lanes) await lane.faas.register('lanes-probe', { code: 'module.exports = () => 1;' });
    for (const lane of lanes) {
      for (let attempt = 0; attempt < 100; attempt++) {
        try {
          await lane.faas.call('lanes-probe', []);
          break;
        } catch (error) {
          if ((error as { code?: string }).code !== 'SCHED_NO_CAPACITY' || attempt === 99) throw error;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    }
    return { lanes, isolation: [...levels][0]!, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The difference of two scrapes, for the series named (absent: 0). */
export function metricsDelta(after: ReadonlyMap<string, number>, before: ReadonlyMap<string, number>, names: readonly string[]): Record<string, number> {
  return Object.fromEntries(names.map((name) => [name, (after.get(name) ?? 0) - (before.get(name) ?? 0)]));
}
