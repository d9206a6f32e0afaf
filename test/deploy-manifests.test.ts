/**
 * The deployment, checked offline (no Kubernetes and no Docker run in CI):
 *
 * - the Kubernetes manifests (deploy/k8s): the base and the dev overlay rendered with `kubectl
 *   kustomize`, plus what deploy/k8s/secrets.sh makes from a real keys folder (`lfaas keys init`);
 *   every object validated against the Kubernetes API schemas (kubernetes-models), every field name
 *   checked against the API types (the schemas accept unknown fields: a typo would pass them), and
 *   our own rules: probes, resources and a locked-down security context on every workload, a
 *   disruption budget selecting each, Services that select pods that exist, every Secret and
 *   ConfigMap referenced made, the monitor's Role granting exactly the scale calls its provider
 *   makes, and every flag the pods pass known to `lfaas <role> --help`;
 * - the image (deploy/Dockerfile): read statically: stages, a pinned base, a non-root user, an
 *   exec-form entrypoint, a runtime stage that copies only the compiled tree and its dependencies.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as appsV1 from 'kubernetes-models/apps/v1';
import * as policyV1 from 'kubernetes-models/policy/v1';
import * as rbacV1 from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import * as coreV1 from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist/cli/main.js');
const require = createRequire(import.meta.url);
const MODELS = dirname(require.resolve('kubernetes-models/package.json'));

type Obj = Record<string, any>;

function kubectl(args: readonly string[]): string {
  const result = spawnSync('kubectl', args, { encoding: 'utf8', timeout: 60_000 });
  if (result.error !== undefined) throw new Error(`kubectl is needed to render the manifests (kubectl ${args.join(' ')}): ${result.error.message}`);
  if (result.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

function parse(text: string): Obj[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`YAML: ${doc.errors[0]!.message}`);
      return doc.toJS() as Obj | null;
    })
    .filter((obj): obj is Obj => obj !== null);
}

let keysDir: string;
/** The secrets and addresses deploy/k8s/secrets.sh made from a fresh keys folder. */
let generated: Obj[];
const rendered = new Map<string, Obj[]>();

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  keysDir = join(mkdtempSync(join(tmpdir(), 'lfaas-deploy-')), 'keys');
  execFileSync(process.execPath, [CLI, 'keys', 'init', keysDir], { stdio: 'pipe', timeout: 60_000 });
  generated = parse(execFileSync(join(ROOT, 'deploy/k8s/secrets.sh'), [keysDir, 'lfaas'], { encoding: 'utf8', timeout: 60_000 }));
  for (const target of ['base', 'overlays/dev']) rendered.set(target, parse(kubectl(['kustomize', join(ROOT, 'deploy/k8s', target)])));
}, 120_000);

afterAll(() => {
  if (keysDir !== undefined) rmSync(dirname(keysDir), { recursive: true, force: true });
});

// ---------------------------------------------------------------- schema and field names

type ModelClass = new (data: Obj) => { validate(): void };
/** The API groups the manifests use, and their models. */
const MODEL_GROUPS: Record<string, Record<string, unknown>> = { v1: coreV1, 'apps/v1': appsV1, 'policy/v1': policyV1, 'rbac.authorization.k8s.io/v1': rbacV1 };

/** The model class of an apiVersion and kind. */
function modelOf(apiVersion: string, kind: string): ModelClass | undefined {
  return MODEL_GROUPS[apiVersion]?.[kind] as ModelClass | undefined;
}

interface TypeInfo {
  readonly properties: ReadonlyMap<string, string>;
  readonly imports: ReadonlyMap<string, string>;
  readonly file: string;
}
const typeCache = new Map<string, TypeInfo | undefined>();

/** The properties of the interface declared first in a kubernetes-models .d.ts file, and its imports. */
function typeInfo(file: string): TypeInfo | undefined {
  if (typeCache.has(file)) return typeCache.get(file);
  let info: TypeInfo | undefined;
  if (existsSync(file)) {
    const text = readFileSync(file, 'utf8');
    const imports = new Map<string, string>();
    for (const match of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) imports.set(match[1]!, match[2]!);
    const body = /^export interface \w+(?: extends [\w, ]+)? \{\n([\s\S]*?)^\}/m.exec(text)?.[1];
    if (body !== undefined) {
      const properties = new Map<string, string>();
      // A property at the interface's own indentation; an inline type (`{`, `Array<{`) is not walked.
      for (const match of body.matchAll(/^ {4}"([^"]+)"\??: (.*?);?$/gm)) properties.set(match[1]!, match[2]!);
      info = { properties, imports, file };
    }
  }
  typeCache.set(file, info);
  return info;
}

function resolveType(from: string, module: string): string {
  if (module.startsWith('.')) return join(dirname(from), `${module}.d.ts`);
  const nested = join(MODELS, 'node_modules', `${module}.d.ts`);
  return existsSync(nested) ? nested : join(ROOT, 'node_modules', `${module}.d.ts`);
}

/** Field names in `value` that its API type does not have, as paths. */
function unknownFields(value: unknown, info: TypeInfo, path: string): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [];
  const found: string[] = [];
  for (const [key, child] of Object.entries(value)) {
    if (key === 'apiVersion' || key === 'kind') continue;
    const type = info.properties.get(key);
    if (type === undefined) {
      found.push(`${path}.${key}`);
      continue;
    }
    const element = /^Array<(\w+)>$/.exec(type)?.[1];
    const named = element ?? (/^\w+$/.test(type) ? type : undefined);
    const module = named === undefined ? undefined : info.imports.get(named);
    const childInfo = module === undefined ? undefined : typeInfo(resolveType(info.file, module));
    if (childInfo === undefined) continue;
    if (element !== undefined && Array.isArray(child)) child.forEach((item, i) => found.push(...unknownFields(item, childInfo, `${path}.${key}[${i}]`)));
    else found.push(...unknownFields(child, childInfo, `${path}.${key}`));
  }
  return found;
}

// ---------------------------------------------------------------- helpers over the objects

const WORKLOADS = new Set(['Deployment', 'StatefulSet']);
const nameOf = (obj: Obj): string => `${obj['kind']}/${obj['metadata']?.['name']}`;
const selects = (selector: Obj | undefined, labels: Obj | undefined): boolean => selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([key, value]) => labels?.[key] === value);

function containersOf(workload: Obj): Obj[] {
  return workload['spec']['template']['spec']['containers'] as Obj[];
}

/** The `lfaas <role> --help` text, per role (once). */
const helpCache = new Map<string, string>();
function helpOf(role: string): string {
  let help = helpCache.get(role);
  if (help === undefined) {
    const result = spawnSync(process.execPath, [CLI, role, '--help'], { encoding: 'utf8', timeout: 60_000 });
    help = result.status === 0 ? result.stdout : '';
    helpCache.set(role, help);
  }
  return help;
}

for (const target of ['base', 'overlays/dev']) {
  describe(`deploy/k8s/${target}`, () => {
    const objects = (): Obj[] => rendered.get(target)!;
    const all = (): Obj[] => [...objects(), ...generated];
    const workloads = (): Obj[] => objects().filter((obj) => WORKLOADS.has(obj['kind']));

    it('renders every role', () => {
      const names = workloads().map(nameOf).sort();
      expect(names).toEqual(['Deployment/lfaas-dashboard', 'Deployment/lfaas-executor', 'Deployment/lfaas-ingress', 'Deployment/lfaas-monitor', 'Deployment/lfaas-scheduler', 'StatefulSet/lfaas-routing', 'StatefulSet/lfaas-storage']);
    });

    it('every object, and every Secret and ConfigMap secrets.sh makes, is valid against the Kubernetes API schemas', () => {
      const problems: string[] = [];
      for (const obj of all()) {
        const Model = modelOf(obj['apiVersion'], obj['kind']);
        if (Model === undefined) {
          problems.push(`${nameOf(obj)}: no schema for ${obj['apiVersion']} ${obj['kind']}`);
          continue;
        }
        try {
          new Model(obj).validate();
        } catch (error) {
          problems.push(`${nameOf(obj)}: ${(error as Error).message}`);
        }
        const info = typeInfo(join(MODELS, obj['apiVersion'], `${obj['kind']}.d.ts`));
        if (info === undefined) problems.push(`${nameOf(obj)}: no type declaration found`);
        else problems.push(...unknownFields(obj, info, nameOf(obj)).map((path) => `unknown field ${path}`));
      }
      expect(problems).toEqual([]);
    });

    it('every namespaced object is in the lfaas namespace', () => {
      for (const obj of all()) if (obj['kind'] !== 'Namespace') expect(obj['metadata']['namespace'], nameOf(obj)).toBe('lfaas');
    });

    it('every workload has probes, resources and a locked-down security context', () => {
      for (const workload of workloads()) {
        const pod = workload['spec']['template']['spec'];
        const label = nameOf(workload);
        expect(pod['securityContext']['runAsNonRoot'], label).toBe(true);
        expect(pod['securityContext']['runAsUser'], label).toBeGreaterThan(0);
        expect(pod['securityContext']['seccompProfile']['type'], label).toBe('RuntimeDefault');
        // Only the monitor talks to the Kubernetes API.
        expect(pod['automountServiceAccountToken'], label).toBe(workload['metadata']['name'] === 'lfaas-monitor');
        for (const container of containersOf(workload)) {
          const ports = new Set((container['ports'] as Obj[]).map((port) => port['name']));
          for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
            const spec = container[probe] as Obj | undefined;
            expect(spec, `${label} ${probe}`).toBeDefined();
            const port = spec!['httpGet']?.['port'] ?? spec!['tcpSocket']?.['port'];
            expect(ports.has(port), `${label} ${probe} on a named port of the container (${port})`).toBe(true);
            if (spec!['httpGet'] !== undefined) expect(spec!['httpGet']['path'], label).toBe(probe === 'readinessProbe' ? '/readyz' : '/healthz');
          }
          for (const kind of ['requests', 'limits']) for (const resource of ['cpu', 'memory']) expect(container['resources']?.[kind]?.[resource], `${label} ${kind}.${resource}`).toBeDefined();
          const security = container['securityContext'] as Obj;
          expect(security['allowPrivilegeEscalation'], label).toBe(false);
          expect(security['readOnlyRootFilesystem'], label).toBe(true);
          expect(security['capabilities']['drop'], label).toContain('ALL');
          expect(security['privileged'], label).toBeUndefined();
        }
      }
    });

    it('a disruption budget selects every workload, and none selects nothing', () => {
      const budgets = objects().filter((obj) => obj['kind'] === 'PodDisruptionBudget');
      for (const workload of workloads()) expect(budgets.filter((pdb) => selects(pdb['spec']['selector']['matchLabels'], workload['spec']['template']['metadata']['labels'])).map(nameOf), nameOf(workload)).toHaveLength(1);
      for (const pdb of budgets) expect(workloads().some((workload) => selects(pdb['spec']['selector']['matchLabels'], workload['spec']['template']['metadata']['labels'])), nameOf(pdb)).toBe(true);
    });

    it('every Service selects pods that exist, on ports they name; StatefulSets have their headless Service', () => {
      for (const service of objects().filter((obj) => obj['kind'] === 'Service')) {
        const targets = workloads().filter((workload) => selects(service['spec']['selector'], workload['spec']['template']['metadata']['labels']));
        expect(targets.length, nameOf(service)).toBe(1);
        const ports = new Set(containersOf(targets[0]!).flatMap((container) => (container['ports'] as Obj[]).map((port) => port['name'])));
        for (const port of service['spec']['ports'] as Obj[]) expect(ports.has(port['targetPort']), `${nameOf(service)} -> ${port['targetPort']}`).toBe(true);
      }
      for (const set of workloads().filter((obj) => obj['kind'] === 'StatefulSet')) {
        const service = objects().find((obj) => obj['kind'] === 'Service' && obj['metadata']['name'] === set['spec']['serviceName']);
        expect(service?.['spec']['clusterIP'], nameOf(set)).toBe('None');
      }
      const storage = workloads().find((obj) => obj['metadata']['name'] === 'lfaas-storage')!;
      const claim = storage['spec']['volumeClaimTemplates'][0]['metadata']['name'];
      expect(containersOf(storage)[0]!['volumeMounts'].some((mount: Obj) => mount['name'] === claim && mount['mountPath'] === '/data')).toBe(true);
    });

    it('every Secret and ConfigMap referenced exists, with the keys referenced; each pod mounts only its own member key', () => {
      const secrets = new Map(all().filter((obj) => obj['kind'] === 'Secret').map((obj) => [obj['metadata']['name'], Object.keys(obj['data'] ?? {})]));
      const maps = new Map(all().filter((obj) => obj['kind'] === 'ConfigMap').map((obj) => [obj['metadata']['name'], Object.keys(obj['data'] ?? {})]));
      for (const workload of workloads()) {
        const pod = workload['spec']['template']['spec'];
        const mounted: string[] = [];
        for (const volume of pod['volumes'] ?? []) {
          for (const source of volume['projected']?.['sources'] ?? []) if (source['secret'] !== undefined) mounted.push(source['secret']['name']);
          if (volume['secret'] !== undefined) mounted.push(volume['secret']['secretName']);
        }
        for (const name of mounted) expect(secrets.has(name), `${nameOf(workload)} mounts Secret ${name}`).toBe(true);
        const memberKeys = mounted.filter((name) => name.startsWith('lfaas-key-')).sort();
        const role = workload['metadata']['name'].replace(/^lfaas-/, '');
        // The monitor also signs departures with the routing key; the dashboard asks for
        // statistics with the monitor's (the ingress mounts its own: it announces its URL).
        const expected = { dashboard: ['lfaas-key-monitor'], monitor: ['lfaas-key-monitor', 'lfaas-key-routing'] }[role as string] ?? [`lfaas-key-${role}`];
        expect(memberKeys, nameOf(workload)).toEqual(expected);
        for (const container of containersOf(workload)) {
          for (const from of container['envFrom'] ?? []) {
            if (from['configMapRef'] !== undefined) expect(maps.has(from['configMapRef']['name']), `${nameOf(workload)} ConfigMap ${from['configMapRef']['name']}`).toBe(true);
            if (from['secretRef'] !== undefined) expect(secrets.has(from['secretRef']['name']), `${nameOf(workload)} Secret ${from['secretRef']['name']}`).toBe(true);
          }
          for (const env of container['env'] ?? []) {
            const ref = env['valueFrom']?.['secretKeyRef'];
            if (ref !== undefined) expect(secrets.get(ref['name']) ?? [], `${nameOf(workload)} ${env['name']}`).toContain(ref['key']);
          }
        }
      }
      // The token signing key stays out of the cluster; the admin token goes to the dashboard only.
      for (const keys of secrets.values()) expect(keys).not.toContain('token-signing.key');
      for (const workload of workloads()) {
        const sources = (workload['spec']['template']['spec']['volumes'] as Obj[]).flatMap((volume) => (volume['projected']?.['sources'] ?? []) as Obj[]);
        expect(sources.some((source) => source['secret']?.['name'] === 'lfaas-admin-token'), nameOf(workload)).toBe(workload['metadata']['name'] === 'lfaas-dashboard');
      }
    });

    it('every $(VAR) in the pods\' arguments and environment is defined', () => {
      const maps = new Map(all().filter((obj) => obj['kind'] === 'ConfigMap').map((obj) => [obj['metadata']['name'], Object.keys(obj['data'] ?? {})]));
      for (const workload of workloads()) {
        for (const container of containersOf(workload)) {
          const defined = new Set<string>();
          for (const from of container['envFrom'] ?? []) for (const key of maps.get(from['configMapRef']?.['name']) ?? []) defined.add(key);
          for (const env of container['env'] ?? []) {
            // An env value may use only variables defined before it.
            for (const match of String(env['value'] ?? '').matchAll(/\$\((\w+)\)/g)) expect(defined.has(match[1]!), `${nameOf(workload)} ${env['name']} uses $(${match[1]})`).toBe(true);
            defined.add(env['name']);
          }
          for (const arg of container['args'] as string[]) for (const match of arg.matchAll(/\$\((\w+)\)/g)) expect(defined.has(match[1]!), `${nameOf(workload)} ${arg}`).toBe(true);
        }
      }
    });

    it("the monitor's Role grants exactly the scale calls its provider makes, on the workloads it scales", () => {
      const role = objects().find((obj) => obj['kind'] === 'Role' && obj['metadata']['name'] === 'lfaas-monitor')!;
      const monitor = workloads().find((obj) => obj['metadata']['name'] === 'lfaas-monitor')!;
      const args = containersOf(monitor)[0]!['args'] as string[];
      const flag = (name: string): string | undefined => args.find((arg) => arg.startsWith(`--${name}=`))?.split('=')[1];
      expect(flag('provider')).toBe('kubernetes');
      const storage = flag('storage-statefulset')!;
      const executor = flag('executor-deployment')!;
      expect(workloads().some((obj) => obj['kind'] === 'StatefulSet' && obj['metadata']['name'] === storage)).toBe(true);
      expect(workloads().some((obj) => obj['kind'] === 'Deployment' && obj['metadata']['name'] === executor)).toBe(true);
      // cli/kubernetes-provider.ts reads (GET) and replaces (PUT: the "update" verb) the scale subresource, nothing else.
      const rules = (role['rules'] as Obj[]).map((rule) => ({ apiGroups: rule['apiGroups'], resources: rule['resources'], resourceNames: rule['resourceNames'], verbs: [...rule['verbs']].sort() }));
      expect(rules).toEqual([
        { apiGroups: ['apps'], resources: ['statefulsets/scale'], resourceNames: [storage], verbs: ['get', 'update'] },
        { apiGroups: ['apps'], resources: ['deployments/scale'], resourceNames: [executor], verbs: ['get', 'update'] },
      ]);
      const binding = objects().find((obj) => obj['kind'] === 'RoleBinding' && obj['roleRef']['name'] === 'lfaas-monitor')!;
      expect(binding['subjects']).toEqual([{ kind: 'ServiceAccount', name: monitor['spec']['template']['spec']['serviceAccountName'], namespace: 'lfaas' }]);
      // The provider's source makes exactly these calls.
      const source = readFileSync(join(ROOT, 'cli/kubernetes-provider.ts'), 'utf8');
      expect([...new Set(source.match(/this\.api\.\w+/g))].sort()).toEqual(['this.api.readNamespacedDeploymentScale', 'this.api.readNamespacedStatefulSetScale', 'this.api.replaceNamespacedDeploymentScale', 'this.api.replaceNamespacedStatefulSetScale']);
    });

    it('the pods pass only flags their lfaas command has', () => {
      const missing: string[] = [];
      for (const workload of workloads()) {
        for (const container of containersOf(workload)) {
          const [role, ...args] = container['args'] as string[];
          const help = helpOf(role!);
          if (help === '') {
            missing.push(`${nameOf(workload)}: \`lfaas ${role} --help\` failed: no such command`);
            continue;
          }
          for (const arg of args.filter((item) => item.startsWith('--'))) {
            const flag = arg.split('=')[0]!;
            if (!new RegExp(`(^|[\\s,])${flag}([\\s=,]|$)`, 'm').test(help)) missing.push(`${nameOf(workload)}: lfaas ${role} has no ${flag}`);
          }
        }
      }
      expect(missing).toEqual([]);
    });
  });
}

describe('deploy/Dockerfile', () => {
  const text = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8');
  // Instructions with their continuation lines joined, comments dropped.
  const instructions = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith('#'))
    .map((line) => {
      const [keyword, ...rest] = line.split(/\s+/);
      return { keyword: keyword!.toUpperCase(), args: rest.join(' ') };
    });
  const stages: { name: string; from: string; body: typeof instructions }[] = [];
  const globalArgs = new Map<string, string>();
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const match = /^(\S+)(?: AS (\S+))?$/i.exec(instruction.args)!;
      stages.push({ from: match[1]!, name: match[2] ?? '', body: [] });
    } else if (stages.length === 0 && instruction.keyword === 'ARG') {
      const [name, value] = instruction.args.split('=');
      globalArgs.set(name!, value ?? '');
    } else stages.at(-1)?.body.push(instruction);
  }
  const runtime = stages.at(-1)!;

  it('is multi-stage: a build stage, then a runtime stage on a pinned Node image', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) {
      const image = stage.from.replace(/\$\{(\w+)\}/g, (_, name: string) => globalArgs.get(name) ?? '');
      // A pinned major, never `latest` or an untagged image.
      expect(image, stage.from).toMatch(/^node:(2[0-9])-bookworm-slim(@sha256:[0-9a-f]{64})?$/);
    }
    expect(stages[0]!.body.some((step) => step.keyword === 'RUN' && /npm ci/.test(step.args))).toBe(true);
    expect(stages[0]!.body.some((step) => step.keyword === 'RUN' && /npm run -s build/.test(step.args) && /npm prune --omit=dev/.test(step.args))).toBe(true);
  });

  it('the runtime stage copies only the compiled tree, its production dependencies and the launcher, from the build stage', () => {
    const copies = runtime.body.filter((step) => step.keyword === 'COPY' || step.keyword === 'ADD');
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) {
      expect(copy.keyword, copy.args).toBe('COPY');
      expect(copy.args, 'from the build stage').toContain(`--from=${stages[0]!.name}`);
      const source = copy.args.split(/\s+/).filter((part) => !part.startsWith('--'))[0];
      expect(['/src/package.json', '/src/node_modules', '/src/dist', '/src/bin']).toContain(source);
    }
    // The build stage removed the compiled tests and benchmarks before the copy.
    expect(stages[0]!.body.some((step) => /rm -rf dist\/test dist\/bench/.test(step.args))).toBe(true);
  });

  it('runs as a non-root user, through an exec-form entrypoint that runs any role', () => {
    const users = runtime.body.filter((step) => step.keyword === 'USER');
    expect(users.length).toBeGreaterThan(0);
    const user = users.at(-1)!.args.split(':')[0]!;
    expect(user).toMatch(/^[1-9][0-9]*$/);
    expect(Number(user)).not.toBe(0);
    // The same uid as the pods' securityContext.
    expect(Number(user)).toBe(10001);
    const entrypoint = runtime.body.filter((step) => step.keyword === 'ENTRYPOINT').at(-1)!;
    const argv = JSON.parse(entrypoint.args) as string[];
    expect(argv.slice(-2)).toEqual(['node', 'dist/cli/main.js']);
    // bubblewrap for the executor's strongest isolation level (executor/isolation.ts).
    expect(runtime.body.some((step) => step.keyword === 'RUN' && /\bbubblewrap\b/.test(step.args))).toBe(true);
  });

  it('.dockerignore keeps the build context to the sources: no node_modules, dist, .git or keys', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((line) => line.trim());
    for (const entry of ['.git', 'node_modules', 'dist', 'keys', '*.key', '.lfaas']) expect(ignored).toContain(entry);
  });
});
