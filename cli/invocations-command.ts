/**
 * `lfaas invocations [--function f] [--running] [--limit N] [--json]`: recent and running calls
 * with their state (queued, running, succeeded, failed with its error code, timed-out, cancelled),
 * from the schedulers (async calls queued) and every live executor (the runs they hold and held
 * lately), through the SDK (`faas.invocations()`, client/observe.ts). A table, the most recently
 * started first; `--json`: one JSON document (an array). An owner sees its own namespace's
 * functions and DAGs and its own calls (the default), the admin everything.
 */
import { LatticeFaas, terminalSafe } from '../client/index.js';
import type { InvocationEntry } from '../client/index.js';
import { reportFailure } from './exit-codes.js';
import { exitWatchdog, given } from './faas-commands.js';
import { shortAddress, warnOnce } from './logs-command.js';
import type { FaasAddresses } from './faas-commands.js';

export interface InvocationsCommandOptions extends FaasAddresses {
  readonly function?: string;
  readonly running?: boolean;
  readonly limit?: number;
  readonly json?: boolean;
}

/** An entry's state as the table shows it: a failure with its error code. */
export function stateText(entry: InvocationEntry): string {
  return entry.error === undefined || entry.state === 'succeeded' ? entry.state : `${entry.state} ${entry.error.code}`;
}

function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((cells) => cells[column]?.length ?? 0)));
  const line = (cells: readonly string[]): string => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd();
  process.stdout.write(`${line(header)}\n`);
  for (const cells of rows) process.stdout.write(`${line(cells)}\n`);
}

export async function invocationsCommand(options: InvocationsCommandOptions): Promise<void> {
  const json = options.json === true;
  let faas: LatticeFaas | undefined;
  try {
    faas = await LatticeFaas.connect(given(options));
    const entries = await faas.invocations({ ...(options.function === undefined ? {} : { function: options.function }), running: options.running === true, ...(options.limit === undefined ? {} : { limit: options.limit }), onUnreachable: warnOnce() });
    if (json) {
      process.stdout.write(`${JSON.stringify(entries)}\n`);
      return;
    }
    printTable(
      ['callId', 'name', 'state', 'node', 'started', 'durationMs', 'mode'],
      entries.map((entry) => [entry.callId, `${entry.name}${entry.dag ? ' (dag)' : ''}`, stateText(entry), shortAddress(entry.node), new Date(entry.startedAtMs).toISOString(), String(entry.durationMs), entry.mode].map(terminalSafe)),
    );
  } catch (error) {
    reportFailure(error, json);
  } finally {
    await faas?.close();
    exitWatchdog();
  }
}
