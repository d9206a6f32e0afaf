/**
 * `lfaas services [--json]`: the services the routing nodes list now (discovery,
 * docs/multi-host.md): schedulers and monitors by transport address, ingresses by their HTTP URL.
 * Only the routing nodes are asked (`--routing`, LFAAS_ROUTING, else the `lfaas up` state file):
 * no scheduler or token is needed. A table of role and address; `--json`: one JSON object
 * `{ "routing": [...], "schedulers": [...], "ingresses": [...], "monitors": [...] }`.
 */
import { listServices, terminalSafe } from '../client/index.js';
import { reportFailure } from './exit-codes.js';
import { exitWatchdog, given } from './faas-commands.js';

export interface ServicesCommandOptions {
  readonly routing?: string;
  readonly json?: boolean;
}

export async function servicesCommand(options: ServicesCommandOptions): Promise<void> {
  const json = options.json === true;
  try {
    const routing = given({ ...(options.routing === undefined ? {} : { routing: options.routing }) }).routing;
    const services = await listServices(routing === undefined ? {} : { routing });
    if (json) {
      process.stdout.write(`${JSON.stringify({ routing: services.routing, schedulers: services.schedulers, ingresses: services.ingresses, monitors: services.monitors })}\n`);
      return;
    }
    const rows = [
      ...services.schedulers.map((address) => ['scheduler', address]),
      ...services.ingresses.map((address) => ['ingress', address]),
      ...services.monitors.map((address) => ['monitor', address]),
    ];
    if (rows.length === 0) {
      process.stdout.write(`the routing nodes ${services.routing.join(',')} list no service (or none of them answered)\n`);
      return;
    }
    const width = Math.max(4, ...rows.map(([role]) => role!.length));
    process.stdout.write(`${'role'.padEnd(width)}  address\n`);
    for (const [role, address] of rows) process.stdout.write(`${role!.padEnd(width)}  ${terminalSafe(address!)}\n`);
  } catch (error) {
    reportFailure(error, json);
  } finally {
    exitWatchdog();
  }
}
