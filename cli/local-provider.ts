/**
 * The local node provider: the monitor's decisions carried out on this machine, as `lfaas up
 * --autoscale` runs them. A storage node or executor it adds is a supervised `lfaas kvs` or `lfaas
 * executor` process with a member key of its own (`lfaas keys add`: listed under its role); a
 * storage node it removes departs gracefully (every key handed off, then the process exits), an
 * executor is stopped with SIGTERM (it drains: schedulers stop placing there, its runs finish); the
 * key of a node it made is then revoked. Nodes `up` started itself are adopted (their keys are the
 * roles' shared ones and stay).
 */
import type { ChildProcess } from 'node:child_process';
import type { NodeProvider, ScaledRole } from '../monitor/index.js';
import { keysAdd, keysRevoke } from './keys-commands.js';
import { kvsDepart } from './kvs-commands.js';
import { waitForRing } from './ring-ready.js';
import type { Started } from './role-process.js';
import type { SupervisedRole, Supervisor } from './supervisor.js';

/** How `up` starts a node of each role: its supervised command line, given its name and key. */
export interface LocalRoles {
  storage(name: string, keyName: string | undefined): SupervisedRole;
  executor(name: string, keyName: string | undefined): SupervisedRole;
}

interface LocalNode {
  /** Its supervised name. */
  readonly name: string;
  /** The member key made for it (undefined: a role's shared key). */
  readonly keyName: string | undefined;
  readonly ready: Readonly<Record<string, unknown>>;
}

/** How long a storage node may take to hand its keys off and exit. */
const DEPART_MAX_MS = 60_000;
/** How long an executor may take to drain and exit. */
const STOP_MAX_MS = 20_000;

export class LocalProvider implements NodeProvider {
  private readonly running: Record<ScaledRole, Map<string, LocalNode>> = { storage: new Map(), executor: new Map() };
  private readonly made: Record<ScaledRole, number> = { storage: 0, executor: 0 };

  constructor(
    private readonly options: {
      readonly supervisor: Supervisor;
      readonly keys: string;
      readonly routing: readonly string[];
      readonly roles: LocalRoles;
      readonly log: (line: string) => void;
    },
  ) {}

  /** A node `up` started itself: the provider may remove it (its shared key stays). */
  adopt(role: ScaledRole, name: string, started: Started): void {
    this.running[role].set(targetOf(role, name, started), { name, keyName: undefined, ready: started.ready });
  }

  nodes(role: ScaledRole): readonly string[] {
    return [...this.running[role].keys()];
  }

  async add(role: ScaledRole): Promise<string> {
    const name = `${role === 'storage' ? 'node' : 'executor'}-auto-${++this.made[role]}`;
    keysAdd(this.options.keys, role, name);
    let started: Started;
    try {
      started = await this.options.supervisor.start(this.options.roles[role](name, name));
      if (role === 'storage') await waitForRing(this.options.routing, started.ready['shards'] as string[], 30_000);
    } catch (error) {
      this.options.supervisor.retire(name)?.kill('SIGKILL');
      keysRevoke(this.options.keys, name);
      throw error;
    }
    const target = targetOf(role, name, started);
    this.running[role].set(target, { name, keyName: name, ready: started.ready });
    this.options.log(`up: ${name} started (pid ${started.child.pid}) by the monitor`);
    return target;
  }

  /**
   * A graceful departure, still supervised: the node hands every key off and exits 0. Killed on the
   * way (or out of time with keys left: exit 1), it is restarted on its ports and data by the
   * supervisor and asked again; only a clean exit ends it.
   */
  private async depart(name: string, nodeId: string): Promise<void> {
    const clean = this.options.supervisor.cleanExit(name);
    let left = false;
    void clean.then(() => (left = true));
    for (let attempt = 1; attempt <= DEPART_ATTEMPTS && !left; attempt++) {
      const ready = this.options.supervisor.readyOf(name);
      const pid = ready?.['pid'];
      // A member's request, with the routing key: hand every key off, then exit.
      if (ready !== undefined) await kvsDepart(String(ready['control']), nodeId, { keys: this.options.keys, keyName: 'routing' }).catch((error: unknown) => this.options.log(`up: asking ${name} to depart failed: ${String(error)}`));
      // Until it left, or was restarted (a new pid: ask the new run), or the departure timed out.
      const deadline = Date.now() + DEPART_MAX_MS;
      while (!left && Date.now() < deadline && this.options.supervisor.readyOf(name)?.['pid'] === pid) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    if (!left) throw new Error(`${name} did not leave after ${DEPART_ATTEMPTS} departures`);
  }

  async remove(role: ScaledRole, target: string): Promise<void> {
    const node = this.running[role].get(target);
    if (node === undefined) throw new Error(`no ${role} ${target} is run by this provider`);
    if (role === 'storage') await this.depart(node.name, target);
    else {
      const child = this.options.supervisor.retire(node.name);
      child?.kill('SIGTERM');
      await exited(child, STOP_MAX_MS);
    }
    this.running[role].delete(target);
    if (node.keyName !== undefined) keysRevoke(this.options.keys, node.keyName);
    this.options.log(`up: ${node.name} removed by the monitor`);
  }
}

/** Departures asked of a storage node before the provider gives up (each after a restart). */
const DEPART_ATTEMPTS = 3;

function targetOf(role: ScaledRole, name: string, started: Started): string {
  return role === 'storage' ? name : String(started.ready['address']);
}

/** Resolves when `child` exits; after `maxMs`, kills it and resolves on that exit. */
async function exited(child: ChildProcess | undefined, maxMs: number): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), maxMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
