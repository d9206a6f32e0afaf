/**
 * The `lfaas` command.
 */
import './threadpool.js';
import { availableParallelism } from 'node:os';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { CONSISTENCIES, faasCall, faasDagCall, faasDagCreate, faasDagDelete, faasDagList, faasDeleteFunction, faasDeploy, faasFunctions } from './faas-commands.js';
import type { CallCommandOptions, DagCallOptions, FaasAddresses, ListOptions } from './faas-commands.js';
import { VALUE_TYPES, kvsDelete, kvsDepart, kvsGet, kvsPut, kvsReplicate, kvsStat } from './kvs-commands.js';
import type { ValueType } from './kvs-commands.js';
import { ISOLATION_LEVELS } from '../executor/index.js';
import type { IsolationLevel } from '../executor/index.js';
import { runExecutor } from './executor.js';
import { runRouting } from './routing.js';
import { runScheduler } from './scheduler.js';
import { runIngressProcess } from './ingress.js';
import { runDashboardProcess } from './dashboard.js';
import { runStorageNode } from './storage-node.js';
import { up } from './up.js';
import { DEMO_NAMES } from './demo.js';
import type { DemoName } from './demo.js';
import { printEvents } from './events-command.js';
import { logsCommand } from './logs-command.js';
import type { LogsCommandOptions } from './logs-command.js';
import { invocationsCommand } from './invocations-command.js';
import { servicesCommand } from './services-command.js';
import type { ServicesCommandOptions } from './services-command.js';
import type { InvocationsCommandOptions } from './invocations-command.js';
import { defaultMlDir, ensureMlInstalled, mlInstallCommand, mlInstalled, verifyNativeBinding } from './ml-install.js';
import { resolve as resolvePath } from 'node:path';
import { runMonitorProcess } from './monitor.js';
import { kubernetesProviderOptions } from './kubernetes-monitor.js';
import type { KubernetesCliOptions } from './kubernetes-monitor.js';
import { policyWith } from '../monitor/index.js';
import { keysAdd, keysRevoke, keysRotateToken, printKeysInit, printTokenCreate, tokenRevoke } from './keys-commands.js';
import type { SecurityOptions } from './security.js';
import { RIGHTS, ROLES } from '../protocol/index.js';
import type { Role } from '../protocol/index.js';
import { EXIT_CODES_HELP, ExitCode, jsonRequested, reportFailure, reportUsage } from './exit-codes.js';
import { DEFAULT_BASE_PORT } from './up-ports.js';

const integer = (min: number, max: number) => (value: string): number => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
  return parsed;
};
const list = (value: string): string[] => value.split(',').filter((item) => item.length > 0);
const ackOption = (): Option => new Option('--ack <mode>', 'when the write is acknowledged').choices(['local', 'durable', 'replicated']).default('durable');
const routingOption = (): Option => new Option('--routing <addresses>', 'comma-separated routing node addresses').env('LFAAS_ROUTING').makeOptionMandatory();
const schedulersOption = (): Option => new Option('--schedulers <addresses>', 'comma-separated scheduler addresses (default: discovered from the routing nodes, and followed as they change)').env('LFAAS_SCHEDULERS');
/** `--advertise`: the host others reach a role at, when it differs from the bound one (docs/multi-host.md). */
const advertiseOption = (): Option => new Option('--advertise <host>', 'the address other machines reach this role at, in every address it announces (default: --host; with --host 0.0.0.0, the first non-loopback interface address)').env('LFAAS_ADVERTISE');
/** A client command's routing nodes: the flag, LFAAS_ROUTING, else the `lfaas up` state file. */
const clientRoutingOption = (): Option => new Option('--routing <addresses>', 'comma-separated routing node addresses (default: LFAAS_ROUTING, else .lfaas/cluster.json from lfaas up)').env('LFAAS_ROUTING');
const clientSchedulersOption = (): Option => new Option('--schedulers <addresses>', 'comma-separated scheduler addresses (default: LFAAS_SCHEDULERS, else .lfaas/cluster.json from lfaas up)').env('LFAAS_SCHEDULERS');
/**
 * `--token`: the owner token a client command presents (LFAAS_TOKEN); the SDK reads it from the
 * environment, where the hook puts a token given on the command line.
 */
const tokenOption = (): Option => new Option('--token <token>', 'the owner token to present (lfaas token create; with lfaas up, the admin token in <data>/keys/admin.token)').env('LFAAS_TOKEN');
function withToken(command: Command): Command {
  return command.addOption(tokenOption()).hook('preAction', (_command, actionCommand) => {
    const { token } = actionCommand.opts<{ token?: string }>();
    if (token !== undefined) process.env['LFAAS_TOKEN'] = token;
  });
}
/** The options of a command that talks to the FaaS (functions, DAGs): routing, schedulers and a token. */
const faasCommand = (parent: Command, spec: string, description: string): Command => withToken(parent.command(spec).description(description).addOption(clientRoutingOption()).addOption(clientSchedulersOption()));
/** `--isolation`: how executors isolate functions (default: the strongest the machine allows). */
const isolationOption = (): Option => new Option('--isolation <level>', 'function isolation: bwrap (namespaces + sandbox process), process (sandbox process), none (threads: trusted code only; warns); default: the strongest available').choices([...ISOLATION_LEVELS]);
const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|::1|\[::1\])$/;

/**
 * A role's security options: `--keys` (its member key and the member list), `--key-name`, or
 * `--insecure` (plain ZeroMQ, nobody authenticated; loopback only, and every start warns).
 */
function securityOptions(command: Command): Command {
  return command
    .addOption(new Option('--keys <folder>', 'the cluster\'s keys folder (lfaas keys init): this role\'s key pair and the member list').env('LFAAS_KEYS'))
    .option('--key-name <name>', 'the key file in --keys to use (<name>.key; default: the role\'s name)')
    .option('--insecure', 'plain mode: no encryption, no membership, no authentication; loopback only (warns)')
    .hook('preAction', checkSecurity);
}

/** Safe defaults: keys unless `--insecure`, and `--insecure` never beyond loopback. */
function checkSecurity(command: Command, actionCommand: Command): void {
  // A parent's hook runs for its subcommands too (lfaas kvs get): those are clients.
  if (actionCommand !== command) return;
  const { host, insecure, keys } = command.opts<{ host?: string; insecure?: boolean; keys?: string }>();
  if (insecure === true) {
    if (host !== undefined && !LOOPBACK.test(host)) command.error(`lfaas: --host ${host} with --insecure would expose a cluster with no encryption or authentication beyond this machine; binding elsewhere needs --keys`);
    process.stderr.write(`WARNING: --insecure: ${command.name()} runs with no encryption and no authentication: anyone who can reach its port can join the cluster, run code, and read or write any key\n`);
    return;
  }
  if (keys === undefined || keys === '') command.error(`lfaas: ${command.name()} needs --keys <folder> (make one with \`lfaas keys init <folder>\`), or --insecure for a plain cluster on loopback`);
}

const consistencyOption = (): Option => new Option('--consistency <mode>', 'consistency of the call\'s reads').choices([...CONSISTENCIES]);

const program = new Command();
program
  .name('lfaas')
  .description('Lattice FaaS: a stateful FaaS on a lattice key-value store')
  .version('0.1.0')
  .enablePositionalOptions()
  .addHelpText('after', `\nA client command finds its cluster from its flags, else LFAAS_ROUTING / LFAAS_SCHEDULERS / LFAAS_TOKEN, else .lfaas/cluster.json (written by lfaas up; LFAAS_STATE names another).\n${EXIT_CODES_HELP}\n`)
  // Commander's own errors (unknown option, missing argument) become exit 2 (and JSON with --json)
  // in the catch at the end; the subcommands made below inherit both settings.
  .exitOverride()
  .configureOutput({ outputError: (text, write) => (jsonRequested() ? undefined : write(text)) })
  // Tracing (cli/tracing.ts): before the command (`lfaas --otlp-endpoint <url> up`); the roles it starts inherit it.
  .option('--otlp-endpoint <url>', 'export trace spans (OTLP/HTTP JSON) to this URL, in this process and the roles it starts (docs/observability-tracing.md)')
  .hook('preAction', (command) => {
    const endpoint = (command.opts() as { otlpEndpoint?: string }).otlpEndpoint;
    if (endpoint !== undefined) process.env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] = endpoint;
  });

program
  .command('up')
  .description('start a local cluster on 127.0.0.1: a routing node, storage nodes, schedulers and executors')
  .option('--demo [name]', `run the demos, or the one named (${DEMO_NAMES.join(', ')}), then stop`)
  .option('--schedulers <n>', 'schedulers', integer(1, 16), 1)
  .option('--executors <n>', 'executors (4 workers each)', integer(1, 64), 2)
  .option('--nodes <n>', 'storage nodes', integer(1, 16), 3)
  .option('--shards <n>', 'shards per storage node', integer(1, 64), 2)
  .option('--replication <n>', 'nodes per key (global replication factor)', integer(1, 16), 2)
  .option('--data <folder>', 'data folder (one lmdb environment per shard)', 'data')
  .option('--base-port <port>', `ports: routing <base>, schedulers from <base>+100, executors from <base>+200, storage nodes (control, then shards) from <base>+300, HTTP ingress <base>-20`, integer(1024, 65000), DEFAULT_BASE_PORT)
  .option('--routing-port <port>', 'the routing node\'s port (default: <base>)', integer(1, 65535))
  .option('--scheduler-port <port>', 'the first scheduler\'s port (default: <base>+100)', integer(1, 65535))
  .option('--executor-port <port>', 'the first executor\'s port (default: <base>+200)', integer(1, 65535))
  .option('--storage-port <port>', 'the first storage node\'s control port; its shards follow (default: <base>+300)', integer(1, 65535))
  .option('--http-port <port>', 'the HTTP ingress\'s port (default: <base>-20, 7080); 0: no ingress', integer(0, 65535))
  .option('--dashboard-port <port>', 'the dashboard\'s port (default: <base>-19, 7081); 0: no dashboard', integer(0, 65535))
  .option('--json', 'print the ready report as one JSON line on stdout (progress goes to stderr)', false)
  .option('--gossip-period-ms <ms>', 'gossip period', integer(1, 60_000), 50)
  .option('--shard-memory-mb <mb>', 'each shard\'s memory budget for entries (beyond it, entries live on disk only)', integer(1, 1 << 20), 256)
  .addOption(isolationOption())
  .option('--autoscale', 'run the monitor and the local node provider: executors and storage nodes are added and removed with the load (lfaas events shows why)', false)
  .option('--min-executors <n>', 'autoscale: executors at least', integer(1, 64), 1)
  .option('--max-executors <n>', 'autoscale: executors at most', integer(1, 64), 8)
  .option('--min-nodes <n>', 'autoscale: storage nodes at least (never fewer than the replication factor)', integer(1, 64), 1)
  .option('--max-nodes <n>', 'autoscale: storage nodes at most', integer(1, 64), 16)
  .option('--node-memory-high-mb <mb>', 'autoscale: add a storage node when nodes hold more than this on average', integer(1, 1 << 20), 64)
  .option('--node-capacity-rps <n>', 'autoscale: requests/s one storage node serves at full load; with it, storage nodes are also added when their average utilisation stays >= 0.7 (0: unknown)', integer(0, 100_000_000), 0)
  .option('--scale-up-after-ms <ms>', 'autoscale: how long a scale-up condition must hold', integer(0, 3_600_000), 3000)
  .option('--scale-down-after-ms <ms>', 'autoscale: how long a scale-down condition must hold', integer(0, 3_600_000), 15_000)
  .option('--scale-grace-ms <ms>', 'autoscale: after an action on a role, how long nothing more is decided for it', integer(0, 3_600_000), 10_000)
  .option('--monitor-period-ms <ms>', 'autoscale: how often the monitor looks', integer(100, 60_000), 1000)
  .option('--hot-key-rate <n>', 'autoscale: requests/s from which a key far above the mean is hot (replicated on more nodes)', integer(1, 10_000_000), 100)
  .option('--hot-key-replicas <n>', 'autoscale: nodes a hot key is replicated on', integer(1, 64), 3)
  .option('--hot-key-cool-ms <ms>', 'autoscale: how long a hot key must stay cool before its factor goes back', integer(0, 3_600_000), 30_000)
  .option('--pin-rate <n>', 'autoscale: calls/s of one function per executor it is pinned on (a function is kept warm on ceil(rate / n) executors, at least 2)', integer(1, 10_000_000), 50)
  .option('--pin-cool-ms <ms>', 'autoscale: how long a function\'s rate must stay low before its pin count falls', integer(0, 3_600_000), 30_000)
  .action(async ({ autoscale, demo, ...options }: UpCommandOptions) => {
    if (typeof demo === 'string' && !(DEMO_NAMES as readonly string[]).includes(demo)) {
      reportUsage(`--demo ${demo}: the demos are ${DEMO_NAMES.join(', ')}`);
      return;
    }
    await up({
      ...options,
      ports: {
        basePort: options.basePort,
        ...(options.routingPort === undefined ? {} : { routingPort: options.routingPort }),
        ...(options.schedulerPort === undefined ? {} : { schedulerPort: options.schedulerPort }),
        ...(options.executorPort === undefined ? {} : { executorPort: options.executorPort }),
        ...(options.storagePort === undefined ? {} : { storagePort: options.storagePort }),
        ...(options.httpPort === undefined ? {} : { httpPort: options.httpPort }),
        ...(options.dashboardPort === undefined ? {} : { dashboardPort: options.dashboardPort }),
      },
      demo: demo === undefined ? false : demo === true ? true : (demo as DemoName),
      ...(autoscale
        ? {
            autoscale: {
              policy: policyWith({
                executor: { min: options.minExecutors, max: options.maxExecutors, upSustainMs: options.scaleUpAfterMs, downSustainMs: options.scaleDownAfterMs, graceMs: options.scaleGraceMs },
                storage: { min: options.minNodes, max: options.maxNodes, memoryHighBytes: options.nodeMemoryHighMb * 1024 * 1024, capacityRps: options.nodeCapacityRps, upSustainMs: options.scaleUpAfterMs, downSustainMs: options.scaleDownAfterMs, graceMs: options.scaleGraceMs },
                hotKeys: { hotRateMin: options.hotKeyRate, replicas: options.hotKeyReplicas, coolSustainMs: options.hotKeyCoolMs },
                pins: { perExecutorRate: options.pinRate, downSustainMs: options.pinCoolMs },
              }),
              periodMs: options.monitorPeriodMs,
            },
          }
        : {}),
    });
  });

/** `lfaas up`'s command line. */
interface UpCommandOptions {
  demo?: boolean | string;
  nodes: number;
  shards: number;
  replication: number;
  data: string;
  basePort: number;
  routingPort?: number;
  schedulerPort?: number;
  executorPort?: number;
  storagePort?: number;
  httpPort?: number;
  dashboardPort?: number;
  json: boolean;
  gossipPeriodMs: number;
  shardMemoryMb: number;
  schedulers: number;
  executors: number;
  isolation?: IsolationLevel;
  autoscale: boolean;
  minExecutors: number;
  maxExecutors: number;
  minNodes: number;
  maxNodes: number;
  nodeMemoryHighMb: number;
  nodeCapacityRps: number;
  scaleUpAfterMs: number;
  scaleDownAfterMs: number;
  scaleGraceMs: number;
  monitorPeriodMs: number;
  hotKeyRate: number;
  hotKeyReplicas: number;
  hotKeyCoolMs: number;
  pinRate: number;
  pinCoolMs: number;
}

securityOptions(program
  .command('routing'))
  .description('run a routing node (membership, rings, key addresses)')
  .option('--host <host>', 'interface to bind', '127.0.0.1')
  .addOption(advertiseOption())
  .option('--port <port>', 'port (0 = any)', integer(0, 65535), 0)
  .option('--peers <addresses>', 'comma-separated addresses of the other routing nodes', list, [])
  .option('--global <n>', 'default nodes per key', integer(1, 64), 2)
  .option('--local <n>', 'default shards per key inside a node', integer(1, 64), 1)
  .option('--failure-timeout-ms <ms>', 'a node silent this long is removed', integer(100, 600_000), 2000)
  .option('--metrics-port <port>', 'Prometheus metrics, /healthz and /readyz port (0 = any, -1 = none)', integer(-1, 65535), 0)
  .action(async (options: { host: string; advertise?: string; port: number; peers: string[]; global: number; local: number; failureTimeoutMs: number; metricsPort: number } & SecurityOptions) => {
    await runRouting(options);
  });

securityOptions(program
  .command('scheduler'))
  .description('run a scheduler (function and DAG registry, placement, the clients\' entry point)')
  .option('--host <host>', 'interface to bind', '127.0.0.1')
  .addOption(advertiseOption())
  .option('--port <port>', 'port (0 = any)', integer(0, 65535), 0)
  .addOption(routingOption())
  .option('--executor-timeout-ms <ms>', 'an executor silent this long is dead (its runs are answered or dispatched again)', integer(100, 600_000), 1000)
  .option('--metrics-port <port>', 'Prometheus metrics port (0 = any, -1 = none)', integer(-1, 65535), 0)
  .option('--pin-executors <n>', 'executors each function is prepared on at registration (0: none)', integer(0, 64), 2)
  .action(async (options: { host: string; advertise?: string; port: number; routing: string; executorTimeoutMs: number; metricsPort: number; pinExecutors: number } & SecurityOptions) => {
    await runScheduler({ ...options, routing: list(options.routing) });
  });

securityOptions(program
  .command('executor'))
  .description('run an executor (a cache next to a pool of function runtimes)')
  .option('--host <host>', 'interface to bind', '127.0.0.1')
  .addOption(advertiseOption())
  .option('--port <port>', 'port (0 = any)', integer(0, 65535), 0)
  .addOption(routingOption())
  .addOption(schedulersOption())
  .option('--workers <n>', 'runtimes (sandbox processes) at most', integer(1, 256), 8)
  .option('--prewarm <n>', 'unspecialised runtimes (stems) started ahead of calls', integer(0, 256), 2)
  .option('--memory-mb <mb>', 'memory class of prewarmed runtimes', integer(16, 4096), 128)
  .addOption(isolationOption())
  .option('--cache-bytes <n>', 'cache size in bytes', integer(1024, 2 ** 40), 64 * 1024 * 1024)
  .option('--status-period-ms <ms>', 'heartbeat period', integer(10, 60_000), 100)
  .option('--metrics-port <port>', 'Prometheus metrics port (0 = any, -1 = none)', integer(-1, 65535), 0)
  .option('--no-dag-prewarm', 'do not prepare the functions of a DAG run that wait for their parents (for comparisons)')
  .option('--no-prefetch', 'do not read a run\'s keys into the cache when it is scheduled (for comparisons)')
  .option('--keep-alive-time-scale <n>', 'divide every keep-alive window by n (benchmarks: 60 makes a minute a second)', integer(1, 3600), 1)
  .option('--stem-target-max <n>', 'stems kept waiting at most, over all memory classes and owners (default: half of --workers; 0 with --prewarm 0: no stems)', integer(0, 256))
  .option('--ml-dir <dir>', 'the folder onnxruntime-node is installed in, for ctx.infer (`lfaas ml install`; default $LFAAS_ML_DIR or .lfaas/ml)')
  .option('--push-delay-ms <ms>', 'test hook: apply the KVS\'s pushes to the cache this much later, so it reads stale values (warns)', integer(0, 60_000), 0)
  .action(async (options: { host: string; advertise?: string; port: number; routing: string; schedulers?: string; workers: number; prewarm: number; memoryMb: number; cacheBytes: number; statusPeriodMs: number; metricsPort: number; isolation?: IsolationLevel; dagPrewarm: boolean; prefetch: boolean; keepAliveTimeScale: number; stemTargetMax?: number; mlDir?: string; pushDelayMs: number } & SecurityOptions) => {
    await runExecutor({ ...options, routing: list(options.routing), schedulers: list(options.schedulers ?? ''), ...(options.stemTargetMax === undefined ? {} : { stemsMax: options.stemTargetMax }) });
  });

faasCommand(program, 'deploy <file>', 'bundle a TypeScript (or JavaScript) function module and register it; prints {"name","version"}')
  .option('--name <name>', 'function name (default: the file\'s base name without its extension)')
  .option('--memory-mb <mb>', 'memory limit of its runtime', integer(16, 4096))
  .option('--timeout-ms <ms>', 'time limit of a call', integer(1, 3_600_000))
  .addOption(new Option('--keep-alive <policy>', 'how long its idle runtime stays loaded: fixed (--keep-alive-ms after each call) or adaptive (a histogram of its idle times: unloaded after a call, loaded again before the next is expected)').choices(['fixed', 'adaptive']).default('fixed'))
  .option('--keep-alive-ms <ms>', 'the fixed policy\'s window (15 minutes)', integer(0, 86_400_000))
  .option('--reads <keys>', 'comma-separated keys it reads, prefetched into the executor\'s cache when its run is scheduled (a prefix ends in *)', list)
  .option('--concurrency <n>', 'calls of it running at once at most, per scheduler (0: no limit)', integer(0, 100_000))
  .action(async (file: string, options: FaasAddresses & { name?: string; memoryMb?: number; timeoutMs?: number; keepAliveMs?: number; keepAlive?: 'fixed' | 'adaptive'; reads?: string[]; concurrency?: number }) => faasDeploy(file, options));

faasCommand(program, 'call <name> [args...]', 'call a function; each argument is JSON (a bare word is a string); prints the result as JSON')
  .option('--version <n>', 'function version (default: the latest)', integer(1, Number.MAX_SAFE_INTEGER))
  .addOption(consistencyOption())
  .option('--timeout-ms <ms>', 'the call\'s time budget', integer(1, 3_600_000))
  .option('--async', 'call asynchronously (the result lands in the KVS) and print it once it does', false)
  .option('--trace', 'trace the call (sampled whatever LFAAS_TRACE_SAMPLE says) and print its trace id on stderr', false)
  .action(async (name: string, args: string[], options: CallCommandOptions) => faasCall(name, args, options));

const dagCommand = program.command('dag').description('DAGs of functions: create, call, list, delete');

faasCommand(dagCommand, 'create <name>', 'register a DAG: its functions, and edges from:to (a parent\'s result is its child\'s first argument)')
  .requiredOption('--functions <names>', 'comma-separated function names', list)
  .option('--edges <edges>', 'comma-separated from:to pairs', list, [])
  .action(async (name: string, options: FaasAddresses & { functions: string[]; edges: string[] }) => faasDagCreate(name, options));

faasCommand(dagCommand, 'call <name>', 'call a DAG; prints its sink\'s result as JSON')
  .option('--args <json>', 'per function, its arguments: a JSON object of arrays, e.g. {"increment":[1]}')
  .addOption(consistencyOption())
  .option('--timeout-ms <ms>', 'the call\'s time budget', integer(1, 3_600_000))
  .option('--async', 'call asynchronously and print the result once it lands in the KVS', false)
  .action(async (name: string, options: DagCallOptions) => faasDagCall(name, options));

faasCommand(dagCommand, 'list', 'list the registered DAGs')
  .option('--json', 'one JSON array', false)
  .action(async (options: ListOptions) => faasDagList(options));

faasCommand(dagCommand, 'delete <name>', 'delete a DAG')
  .action(async (name: string, options: FaasAddresses) => faasDagDelete(name, options));

// Its addresses are checked in the action, not by commander: an ancestor's mandatory options are
// required of its subcommands too, which take their own (`functions delete <name> --routing ...`).
const functionsCommand = program
  .command('functions [name]')
  .enablePositionalOptions()
  .description('list the registered functions (or the one named); `functions delete <name>` deletes one')
  .addOption(clientRoutingOption())
  .addOption(clientSchedulersOption())
  .addOption(tokenOption())
  .option('--json', 'one JSON document: the function named, or an array', false)
  .action(async (name: string | undefined, options: Partial<ListOptions> & { json: boolean; token?: string }) => {
    if (options.token !== undefined) process.env['LFAAS_TOKEN'] = options.token;
    await faasFunctions(name, { ...(options.routing === undefined ? {} : { routing: options.routing }), ...(options.schedulers === undefined ? {} : { schedulers: options.schedulers }), json: options.json });
  });

faasCommand(functionsCommand, 'delete <name>', 'delete a function: every version, or the one given')
  .option('--version <n>', 'the version to delete (default: all)', integer(1, Number.MAX_SAFE_INTEGER))
  .action(async (name: string, options: FaasAddresses & { version?: number }) => faasDeleteFunction(name, options));

faasCommand(program, 'logs [function]', 'what functions logged (console.*, ctx.log), from every executor, in time order: the function, or a namespace (alice/); default: the token\'s own (docs/observability-logs.md)')
  .option('--follow', 'keep printing new records until Ctrl-C', false)
  .option('--since <when>', 'records since a duration ago (30s, 5m, 2h, 1d) or a date (ISO 8601)')
  .option('--call <id>', 'only this call\'s records')
  .option('--limit <n>', 'records per executor, at most', integer(1, 5000))
  .option('--json', 'one JSON document (an array); with --follow, one JSON object a line', false)
  .action(async (name: string | undefined, options: LogsCommandOptions) => logsCommand(name, options));

faasCommand(program, 'invocations', 'recent and running calls with their state (queued, running, succeeded, failed, timed-out, cancelled), the most recent first')
  .option('--function <name>', 'a function or DAG, or a namespace (alice/); default: the token\'s own')
  .option('--running', 'only the calls queued or running', false)
  .option('--limit <n>', 'calls at most', integer(1, 1000), 100)
  .option('--json', 'one JSON document (an array)', false)
  .action(async (options: InvocationsCommandOptions) => invocationsCommand(options));

program
  .command('services')
  .description('the services the routing nodes list now (discovery): schedulers and monitors by address, HTTP ingresses by URL')
  .addOption(clientRoutingOption())
  .option('--json', 'one JSON object: { routing, schedulers, ingresses, monitors }', false)
  .action(async (options: ServicesCommandOptions) => servicesCommand(options));

program
  .command('ingress')
  .addOption(new Option('--keys <folder>', 'the cluster\'s keys folder: its token.pub verifies callers\' tokens, its ingress.key announces the ingress\'s URL to the routing nodes (the ingress calls the cluster as a client, with each caller\'s token)').env('LFAAS_KEYS'))
  .option('--insecure', 'for an --insecure cluster: plain ZeroMQ, no tokens asked; loopback only (warns)')
  .hook('preAction', checkSecurity)
  .description('run the HTTP ingress: calls, async calls and results, DAG calls and KVS reads and writes over HTTP (JSON, or msgpack); callers present owner tokens (docs/http.md)')
  .addOption(new Option('--routing <addresses>', 'comma-separated routing node addresses').env('LFAAS_ROUTING').makeOptionMandatory())
  .addOption(schedulersOption())
  .option('--host <host>', 'interface the HTTP server binds', '127.0.0.1')
  .addOption(new Option('--advertise <host>', 'the address the cluster reaches the ingress\'s own sockets at, and the host of the URL it announces (http://<advertise>:<port>): they then bind --host too (default: they bind 127.0.0.1, for a cluster on this machine)').env('LFAAS_ADVERTISE'))
  .option('--port <port>', 'HTTP port (0 = any)', integer(0, 65535), 7080)
  .option('--body-limit-mb <mb>', 'request bodies larger than this are refused 413', (value: string) => {
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed <= 0 || parsed > 64) throw new InvalidArgumentError('expected a number of MiB above 0, at most 64');
    return parsed;
  }, 4)
  .option('--concurrency <n>', 'requests served at once at most; beyond, 503 with Retry-After', integer(1, 100_000), 1024)
  .option('--request-timeout-ms <ms>', 'a request taking longer is answered 504 (and a call\'s budget is at most this)', integer(100, 3_600_000), 60_000)
  .option('--clients-max <n>', 'callers\' tokens with a cluster client kept open at once (least recently used closed beyond)', integer(1, 10_000), 64)
  .option('--headers-timeout-ms <ms>', 'a client must send its request headers within this (slow clients are cut off)', integer(100, 600_000), 10_000)
  .option('--metrics-port <port>', 'Prometheus metrics, /healthz and /readyz port, apart from the HTTP port (0 = any, -1 = none)', integer(-1, 65535), 0)
  .action(async (options: { routing: string; schedulers?: string; host: string; advertise?: string; port: number; bodyLimitMb: number; concurrency: number; requestTimeoutMs: number; clientsMax: number; headersTimeoutMs: number; metricsPort: number } & SecurityOptions) => {
    await runIngressProcess({ ...options, routing: list(options.routing), schedulers: list(options.schedulers ?? '') });
  });

program
  .command('dashboard')
  .addOption(new Option('--keys <folder>', 'the cluster\'s keys folder: monitor.key asks the cluster\'s statistics, token.pub verifies the admin token, admin.token reads the registry').env('LFAAS_KEYS'))
  .option('--insecure', 'for an --insecure cluster: plain ZeroMQ, no token asked for the page; loopback only (warns)')
  .hook('preAction', checkSecurity)
  .description('run the live dashboard: a web page of the ring, shards, executors, functions, DAGs, events and traces (docs/dashboard.md); open http://127.0.0.1:7081/#token=<admin token>')
  .addOption(new Option('--routing <addresses>', 'comma-separated routing node addresses').env('LFAAS_ROUTING'))
  .addOption(new Option('--schedulers <addresses>', 'comma-separated scheduler addresses').env('LFAAS_SCHEDULERS'))
  .option('--state <file>', 'read the addresses from this lfaas up state file (.lfaas/cluster.json) once it exists, when --routing is not given')
  .option('--host <host>', 'interface the HTTP server binds', '127.0.0.1')
  .option('--port <port>', 'HTTP port (0 = any)', integer(0, 65535), 7081)
  .option('--period-ms <ms>', 'how often the cluster is asked', integer(100, 60_000), 1000)
  .option('--trace-body-limit-mb <mb>', 'OTLP trace bodies larger than this are refused 413', (value: string) => {
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed <= 0 || parsed > 64) throw new InvalidArgumentError('expected a number of MiB above 0, at most 64');
    return parsed;
  }, 4)
  .action(async (options: { routing?: string; schedulers?: string; state?: string; host: string; port: number; periodMs: number; traceBodyLimitMb: number } & SecurityOptions) => {
    await runDashboardProcess({ ...options, routing: list(options.routing ?? ''), schedulers: list(options.schedulers ?? '') });
  });

kubernetesProviderOptions(securityOptions(program.command('monitor')), integer)
  .description('run a monitor: it takes the lease in the KVS, reads the cluster and records its decisions (lfaas up --autoscale also carries them out)')
  .requiredOption('--routing <addresses>', 'comma-separated routing node addresses', list)
  .option('--schedulers <addresses>', 'comma-separated scheduler addresses (default: discovered from the routing nodes, and followed as they change)', list, [])
  .option('--host <host>', 'interface to bind', '127.0.0.1')
  .addOption(advertiseOption())
  .option('--period-ms <ms>', 'how often it looks', integer(100, 60_000), 1000)
  .option('--metrics-port <port>', 'Prometheus metrics port (0 = any, -1 = none)', integer(-1, 65535), 0)
  .option('--pin-rate <n>', 'calls/s of one function per executor it is pinned on (a function is kept warm on ceil(rate / n) executors, at least 2)', integer(1, 10_000_000), 50)
  .option('--pin-cool-ms <ms>', 'how long a function\'s rate must stay low before its pin count falls', integer(0, 3_600_000), 30_000)
  .option('--hot-key-rate <n>', 'requests/s from which a key far above the mean is hot (replicated on more nodes)', integer(1, 10_000_000), 100)
  .option('--hot-key-replicas <n>', 'nodes a hot key is replicated on', integer(1, 64), 3)
  .option('--hot-key-cool-ms <ms>', 'how long a hot key must stay cool before its factor goes back', integer(0, 3_600_000), 30_000)
  .option('--min-executors <n>', 'executors at least', integer(1, 1024), 1)
  .option('--max-executors <n>', 'executors at most', integer(1, 1024), 8)
  .option('--min-nodes <n>', 'storage nodes at least (never fewer than the replication factor)', integer(1, 1024), 1)
  .option('--max-nodes <n>', 'storage nodes at most', integer(1, 1024), 16)
  .action(async (options: { routing: string[]; schedulers: string[]; host: string; advertise?: string; periodMs: number; metricsPort: number; pinRate: number; pinCoolMs: number; hotKeyRate: number; hotKeyReplicas: number; hotKeyCoolMs: number; minExecutors: number; maxExecutors: number; minNodes: number; maxNodes: number; provider: string } & KubernetesCliOptions & SecurityOptions) =>
    runMonitorProcess({
      ...options,
      ...(options.provider === 'kubernetes' ? { kubernetes: options } : {}),
      policy: policyWith({
        executor: { min: options.minExecutors, max: options.maxExecutors },
        storage: { min: options.minNodes, max: options.maxNodes },
        pins: { perExecutorRate: options.pinRate, downSustainMs: options.pinCoolMs },
        hotKeys: { hotRateMin: options.hotKeyRate, replicas: options.hotKeyReplicas, coolSustainMs: options.hotKeyCoolMs },
      }),
    }),
  );

withToken(
  program
    .command('events')
    .description("the monitor's decisions and their outcomes, oldest first (the last 500)")
    .addOption(clientRoutingOption())
    .option('--json', 'one JSON array', false),
).action(async (options: { routing?: string; json: boolean }) => printEvents(options));

const keys = program.command('keys').description('the cluster\'s keys: init a keys folder, add or revoke a member');
keys
  .command('init <folder>')
  .description('make a keys folder: a key pair per role (<role>.key, mode 0600) and members.json listing them')
  .action((folder: string, options: { json?: boolean }) => printKeysInit(folder, options.json === true));
keys
  .command('add <folder>')
  .description('make a member key pair (<name>.key) and list it under a role')
  .addOption(new Option('--role <role>', 'its role').choices([...ROLES]).makeOptionMandatory())
  .requiredOption('--name <name>', 'its key file\'s name')
  .action((folder: string, options: { role: Role; name: string; json?: boolean }) => {
    const key = keysAdd(folder, options.role, options.name);
    process.stdout.write(options.json === true ? `${JSON.stringify({ name: options.name, role: options.role, key })}\n` : `${options.name}.key is a ${options.role} member: ${key}\n`);
  });
keys
  .command('revoke <folder>')
  .description('take a member off the list (refused from then on, within a second) and delete its key file')
  .requiredOption('--name <name>', 'its key file\'s name')
  .action((folder: string, options: { name: string; json?: boolean }) => {
    const key = keysRevoke(folder, options.name);
    process.stdout.write(options.json === true ? `${JSON.stringify({ name: options.name, revoked: key })}\n` : `revoked ${key}\n`);
  });

keys
  .command('rotate-token <folder>')
  .description('a new token signing key and admin token; the key it replaces stays accepted until the next rotation (running processes re-read it within a second)')
  .action((folder: string, options: { json?: boolean }) => {
    keysRotateToken(folder);
    if (options.json === true) {
      process.stdout.write(`${JSON.stringify({ folder, adminToken: `${folder}/admin.token`, rotated: true })}\n`);
      return;
    }
    process.stdout.write(`new token key in ${folder}; the new admin token is in ${folder}/admin.token; tokens signed with the previous key stay valid until they expire or the next rotation\n`);
  });

const ml = program.command('ml').description('the ML packages of ctx.infer and the predict example (onnxruntime-node, ~290 MB, and onnx-proto), kept out of the project\'s install');
ml
  .command('install')
  .description('install them into .lfaas/ml (or LFAAS_ML_DIR) with npm install --ignore-scripts, unless there already; check the native binding loads')
  .option('--dir <folder>', 'the ML folder (default: LFAAS_ML_DIR, else <repository>/.lfaas/ml)')
  .action(async (options: { dir?: string; json?: boolean }) => {
    if (options.json !== true) return mlInstallCommand(options);
    const dir = options.dir === undefined ? defaultMlDir() : resolvePath(options.dir);
    const already = mlInstalled(dir);
    await ensureMlInstalled({ dir });
    if (already) await verifyNativeBinding(dir);
    process.stdout.write(`${JSON.stringify({ dir, installed: true, already })}\n`);
  });

const token = program.command('token').description('owner tokens: create one (signed with the cluster\'s token key), revoke one');
token
  .command('revoke <token-or-id>')
  .description('refuse a token (or its id) from now on, before its expiry (running processes re-read the list within a second)')
  .addOption(new Option('--keys <folder>', 'the cluster\'s keys folder').env('LFAAS_KEYS').makeOptionMandatory())
  .action((tokenOrId: string, options: { keys: string; json?: boolean }) => {
    const id = tokenRevoke(options.keys, tokenOrId);
    process.stdout.write(options.json === true ? `${JSON.stringify({ revoked: id })}\n` : `revoked token ${id}\n`);
  });
token
  .command('create')
  .description('print a token for an owner with some rights, signed with --keys\'s token key')
  .addOption(new Option('--keys <folder>', 'the cluster\'s keys folder (its token-signing.key)').env('LFAAS_KEYS').makeOptionMandatory())
  .requiredOption('--owner <name>', 'the owner (tenant) the token names')
  .requiredOption('--rights <list>', `comma-separated rights: ${RIGHTS.join(', ')}`)
  .option('--ttl <duration>', 'lifetime: seconds, or 30m, 12h, 7d', '1d')
  .option('--key-prefix <prefix...>', 'restrict to these key prefixes (in the owner\'s namespace, e.g. alice/public/)')
  .option('--function <name...>', 'restrict to these functions and DAGs')
  .option('--grant <grant...>', "rights in another owner's namespace: <owner>:<rights joined by +>[:prefix=<key prefix>][:function=<name>], e.g. bob:read+call:prefix=bob/shared/")
  .action((options: { keys: string; owner: string; rights: string; ttl: string; keyPrefix?: string[]; function?: string[]; grant?: string[]; json?: boolean }) => printTokenCreate(options.keys, options));

const kvs = securityOptions(program
  .command('kvs'))
  .enablePositionalOptions()
  .description('run a storage node (without a subcommand), or use the KVS: get, put, delete, replicate, stat, depart')
  .option('--id <id>', 'node id (stable across restarts: it names the data folder)')
  .option('--host <host>', 'interface to bind', '127.0.0.1')
  .addOption(advertiseOption())
  .option('--port <port>', 'control port; shard i binds port+1+i (0 = any)', integer(0, 65535), 0)
  .option('--shard-ports <ports>', 'comma-separated ports of the shards (instead of port+1+i)', (value: string) => list(value).map(integer(1, 65535)))
  .option('--shards <n>', 'shards (default: one per core)', integer(1, 64), availableParallelism())
  .option('--routing <addresses>', 'comma-separated routing node addresses', list, [])
  .option('--data <folder>', 'data folder', 'data')
  .option('--metrics-port <port>', 'Prometheus metrics port (0 = any, -1 = none)', integer(-1, 65535), 0)
  .option('--gossip-period-ms <ms>', 'gossip period', integer(1, 60_000), 50)
  .option('--shard-memory-mb <mb>', 'each shard\'s memory budget for entries: beyond it, entries live on disk only (lmdb) and are read back when used', integer(1, 1 << 20), 256)
  .option('--depart-timeout-ms <ms>', 'how long a graceful departure may take', integer(100, 600_000), 30_000)
  .addOption(new Option('--threads <mode>', 'one worker thread per shard: on, off, or auto (on with 4 cores or more)').choices(['on', 'off', 'auto']).default('auto'))
  .action(async (options: { id?: string; host: string; advertise?: string; port: number; shardPorts?: number[]; shards: number; routing: string[]; data: string; metricsPort: number; gossipPeriodMs: number; shardMemoryMb: number; departTimeoutMs: number; threads: string } & SecurityOptions) => {
    if (options.id === undefined || options.routing.length === 0) kvs.error('a storage node needs --id and --routing');
    if (options.shardPorts !== undefined && options.shardPorts.length !== options.shards) kvs.error('--shard-ports needs one port per shard');
    const threads = options.threads === 'on' || (options.threads === 'auto' && availableParallelism() >= 4);
    await runStorageNode({ ...options, id: options.id!, threads, shardMemoryBytes: options.shardMemoryMb * 1024 * 1024 });
  });

withToken(kvs
  .command('get <key>'))
  .description('print the value of a key as JSON (exit 3 when it does not exist)')
  .addOption(clientRoutingOption())
  .option('--all', 'ask every replica and merge', false)
  .action(async (key: string, options: { routing?: string; all: boolean }) => kvsGet(key, options));

withToken(kvs
  .command('put <key> <value>'))
  .description('merge a value into a key')
  .addOption(clientRoutingOption())
  .addOption(new Option('--type <type>', 'lattice type of the value').choices([...VALUE_TYPES]).default('lww'))
  .addOption(ackOption())
  .action(async (key: string, value: string, options: { routing?: string; type: ValueType; ack: 'local' | 'durable' | 'replicated'; json?: boolean }) => kvsPut(key, value, options));

withToken(kvs
  .command('delete <key>'))
  .description('delete a key')
  .addOption(clientRoutingOption())
  .addOption(ackOption())
  .action(async (key: string, options: { routing?: string; ack: 'local' | 'durable' | 'replicated'; json?: boolean }) => kvsDelete(key, options));

withToken(kvs
  .command('replicate <key>'))
  .description('set a key\'s replication factors for the whole cluster')
  .addOption(clientRoutingOption())
  .requiredOption('--global <n>', 'nodes holding the key', integer(1, 64))
  .option('--local <n>', 'shards holding it in each node', integer(1, 64), 1)
  .action(async (key: string, options: { routing?: string; global: number; local: number; json?: boolean }) => kvsReplicate(key, options));

withToken(kvs
  .command('stat'))
  .description('show the ring and every node\'s shard statistics')
  .addOption(clientRoutingOption())
  .action(async (options: { routing?: string; json?: boolean }) => kvsStat(options));

kvs
  .command('depart <control-address> <node-id>')
  .description('ask a storage node to hand its keys off and leave (a member\'s request: signed with a routing or storage key of --keys)')
  .addOption(new Option('--keys <folder>', 'the cluster\'s keys folder').env('LFAAS_KEYS'))
  .option('--key-name <name>', 'the member key to send with (<name>.key)', 'routing')
  .action(async (control: string, nodeId: string, options: { keys?: string; keyName: string; json?: boolean }) => kvsDepart(control, nodeId, options));

/** Role processes print a ready line, not results: no --json. */
const ROLE_COMMANDS: ReadonlySet<string> = new Set(['routing', 'scheduler', 'executor', 'monitor', 'ingress']);

/**
 * `--json` on every command that prints something for people (client commands, keys, token,
 * events, kvs, ml): one JSON document on stdout, failures as {"error":{...}}. Commands that have
 * it already keep theirs.
 */
function addJsonOptions(command: Command): void {
  for (const sub of command.commands) {
    if (ROLE_COMMANDS.has(sub.name())) continue;
    // `kvs` runs a storage node itself: only its subcommands are clients.
    const isRole = sub.name() === 'kvs' && command === program;
    if (!isRole && !sub.options.some((option) => option.long === '--json')) sub.option('--json', 'print one JSON document on stdout (failures: {"error":{"code","message","retryable"}})', false);
    addJsonOptions(sub);
  }
}

addJsonOptions(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // Help and version end with code 0; every other commander error is a usage error (exit 2).
    if (error.exitCode === 0 || error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') process.exitCode = ExitCode.OK;
    else if (jsonRequested()) reportUsage(error.message.replace(/^error: /, ''));
    else process.exitCode = ExitCode.USAGE;
  } else {
    reportFailure(error);
  }
}
