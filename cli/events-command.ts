/**
 * `lfaas events`: the monitor's event log from the KVS (its decisions, their outcomes, and which
 * monitor held the lease), oldest first; a table, or with `--json` one JSON array. The routing
 * nodes: `--routing`, else LFAAS_ROUTING, else the `lfaas up` state file.
 */
import { KvsClient } from '../client/index.js';
import { readEvents } from './monitor.js';

export async function printEvents(options: { readonly routing?: string; readonly json: boolean }): Promise<void> {
  const routing = (options.routing ?? '').split(',').filter((address) => address.length > 0);
  const client = await KvsClient.connect({ ...(routing.length === 0 ? {} : { routing }), requestTimeoutMs: 2000 });
  try {
    const events = await readEvents(client);
    if (options.json) {
      console.log(JSON.stringify(events));
      return;
    }
    if (events.length === 0) {
      console.log('no events yet (is a monitor running? lfaas up --autoscale runs one)');
      return;
    }
    for (const event of events) {
      const what = event.action === undefined ? event.kind : `${event.kind.padEnd(7)} ${event.action} ${event.role}${event.node === undefined ? '' : ` ${event.node}`}`;
      console.log(`${new Date(event.atMs).toISOString()}  ${what.padEnd(48)}  ${event.reason}`);
    }
  } finally {
    await client.close();
  }
}
