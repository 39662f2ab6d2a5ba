import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import { ROLE_NODE_FLAGS } from '../../core/role-process';
import { REPO_ROOT, CAVIAR_BIN } from '../helpers/repo';

const K8S = path.join(REPO_ROOT, 'deploy', 'kubernetes');
const RENDERS = [
  'base',
  'overlays/gpu',
  'overlays/cert-manager',
  'overlays/external-etcd',
  'sweep',
];
const kubectl = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0;
const skip = kubectl ? false : 'kubectl is not installed: the manifests cannot be rendered here';

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string }>;
  ports?: Array<{ name?: string; containerPort: number }>;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
interface SecretVolume {
  name: string;
  secret?: { secretName: string; items?: Array<{ key: string; path: string }> };
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: SecretVolume[];
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: {
    replicas?: number;
    serviceName?: string;
    selector?: Record<string, string> & { matchLabels?: Record<string, string> };
    template?: { metadata?: { labels?: Record<string, string> }; spec: PodSpec };
    ports?: Array<{ name: string; port: number; targetPort?: string | number }>;
    secretName?: string;
    commonName?: string;
  };
  data?: Record<string, string>;
}

function render(dir: string): K8sObject[] {
  const out = spawnSync('kubectl', ['kustomize', path.join(K8S, dir)], { encoding: 'utf8' });
  assert.equal(out.status, 0, `kubectl kustomize ${dir}: ${out.stderr}`);
  return parseAllDocuments(out.stdout).map((d) => d.toJS() as K8sObject);
}

// kubernetes-models is ESM only: imported, not required, from these CommonJS tests.
type Model = new (data: never) => { validate(): void };

async function validators(): Promise<Record<string, Model>> {
  const core = await import('kubernetes-models/v1');
  const apps = await import('kubernetes-models/apps/v1');
  const batch = await import('kubernetes-models/batch/v1');
  const policy = await import('kubernetes-models/policy/v1');
  return {
    'v1/Namespace': core.Namespace,
    'v1/ConfigMap': core.ConfigMap,
    'v1/Service': core.Service,
    'apps/v1/StatefulSet': apps.StatefulSet,
    'apps/v1/Deployment': apps.Deployment,
    'batch/v1/Job': batch.Job,
    'policy/v1/PodDisruptionBudget': policy.PodDisruptionBudget,
  };
}

const helpCache = new Map<string, string>();
function help(command: string): string {
  let text = helpCache.get(command);
  if (text === undefined) {
    const out = spawnSync(process.execPath, [CAVIAR_BIN, command, '--help'], { encoding: 'utf8' });
    assert.equal(out.status, 0, `caviar ${command} --help: ${out.stderr}`);
    text = out.stdout;
    helpCache.set(command, text);
  }
  return text;
}

/** The certificate a caviar container presents: its role's, or the CLI's for a command. */
const CERT_OF: Record<string, string> = {
  ps: 'ps',
  coordinator: 'coordinator',
  worker: 'worker',
  sweep: 'client',
};

const workloads = (objects: K8sObject[]) =>
  objects.filter((o) => o.spec?.template?.spec?.containers !== undefined);

test('every manifest renders and every built-in object passes its schema', { skip }, async () => {
  const models = await validators();
  for (const dir of RENDERS) {
    const objects = render(dir);
    assert.ok(objects.length > 0, dir);
    for (const o of objects) {
      const Model = models[`${o.apiVersion}/${o.kind}`];
      if (o.apiVersion.startsWith('cert-manager.io/')) continue; // a CRD: checked below
      assert.ok(Model, `${dir}: no schema for ${o.apiVersion} ${o.kind}`);
      assert.doesNotThrow(
        () => new Model(o as never).validate(),
        `${dir}: ${o.kind} ${o.metadata.name}`,
      );
    }
  }
});

test(
  'caviar containers: real flags, defined variables, their role certificate mounted',
  { skip },
  () => {
    for (const dir of RENDERS) {
      for (const w of workloads(render(dir))) {
        const pod = w.spec!.template!.spec;
        for (const c of pod.containers.filter((c) => /^caviar(-gpu)?(:|$)/.test(c.image))) {
          const args = c.args ?? [];
          const command = args[0] ?? '';
          const where = `${dir}: ${w.kind} ${w.metadata.name}`;
          const text = help(command);
          for (const arg of args.slice(1).filter((a) => a.startsWith('--'))) {
            const flag = arg.split('=')[0]!;
            assert.ok(
              text.includes(`${flag} `) || text.includes(`${flag}\n`),
              `${where}: caviar ${command} has no ${flag}`,
            );
          }
          const env = new Set((c.env ?? []).map((e) => e.name));
          for (const [, name] of args.join(' ').matchAll(/\$\(([A-Z_]+)\)/g))
            assert.ok(env.has(name!), `${where}: $(${name}) is not in the container's env`);
          const role = CERT_OF[command];
          assert.ok(role, `${where}: ${command} is not a role caviar knows`);
          assert.ok(env.has('CAVIAR_TLS_DIR'), `${where}: runs without --tls`);
          const mount = c.volumeMounts?.find((m) => m.mountPath === '/etc/caviar/tls');
          const volume = pod.volumes?.find((v) => v.name === mount?.name);
          const files = (volume?.secret?.items ?? []).map((i) => i.path).sort();
          assert.deepEqual(
            files,
            ['ca.pem', `${role}-key.pem`, `${role}.pem`].sort(),
            `${where}: TLS files`,
          );
        }
      }
    }
  },
);

test('every caviar image carries the one release tag', { skip }, () => {
  const tags = new Set<string>();
  for (const dir of RENDERS)
    for (const w of workloads(render(dir)))
      for (const c of w.spec!.template!.spec.containers)
        if (/^caviar(-gpu)?(:|$)/.test(c.image)) tags.add(c.image.split(':')[1] ?? '(none)');
  const version = (
    JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }
  ).version;
  assert.deepEqual([...tags], [version]);
});

test('services select pods that exist and name ports those pods open', { skip }, () => {
  for (const dir of RENDERS.filter((d) => d !== 'sweep')) {
    const objects = render(dir);
    const pods = workloads(objects).map((w) => w.spec!.template!);
    for (const s of objects.filter((o) => o.kind === 'Service')) {
      const selector = s.spec!.selector ?? {};
      const selected = pods.filter((p) =>
        Object.entries(selector).every(([k, v]) => p.metadata?.labels?.[k] === v),
      );
      assert.ok(selected.length > 0, `${dir}: Service ${s.metadata.name} selects no pods`);
      for (const port of s.spec!.ports ?? []) {
        const target = port.targetPort ?? port.port;
        const open = selected.some((p) =>
          p.spec.containers.some((c) =>
            (c.ports ?? []).some((cp) => cp.name === target || cp.containerPort === target),
          ),
        );
        assert.ok(open, `${dir}: Service ${s.metadata.name} port ${port.name} opens on no pod`);
      }
    }
  }
});

test(
  'the coordinator names every shard, the etcd URLs every member; secrets are the documented ones',
  { skip },
  () => {
    const base = render('base');
    const find = (kind: string, name: string) =>
      base.find((o) => o.kind === kind && o.metadata.name === name);
    const ps = find('StatefulSet', 'caviar-ps')!;
    const coordinator = find('Deployment', 'caviar-coordinator')!;
    const psFlag = coordinator.spec!.template!.spec.containers[0]!.args!.find((a) =>
      a.startsWith('--ps='),
    )!;
    const expected = Array.from(
      { length: ps.spec!.replicas! },
      (_, i) => `caviar-ps-${i}.${ps.spec!.serviceName}:7100`,
    );
    assert.deepEqual(psFlag.slice('--ps='.length).split(','), expected);
    const etcd = find('StatefulSet', 'caviar-etcd')!;
    const config = base.find(
      (o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('caviar-config'),
    )!;
    const urls = config.data!['etcd-endpoints']!.split(',');
    assert.equal(urls.length, etcd.spec!.replicas, 'one URL per etcd member');
    for (const url of urls) assert.match(url, /^https:\/\/caviar-etcd-\d\.caviar-etcd:2379$/);

    const secretsOf = (objects: K8sObject[]) =>
      new Set(
        workloads(objects).flatMap((w) => {
          const pod = w.spec!.template!.spec;
          const envSecrets = [...pod.containers, ...(pod.initContainers ?? [])].flatMap((c) =>
            (c.env ?? []).flatMap((e) => {
              const ref = (e as { valueFrom?: { secretKeyRef?: { name: string } } }).valueFrom;
              return ref?.secretKeyRef ? [ref.secretKeyRef.name] : [];
            }),
          );
          return [
            ...envSecrets,
            ...(pod.volumes ?? []).flatMap((v) => (v.secret ? [v.secret.secretName] : [])),
          ];
        }),
      );
    assert.deepEqual([...secretsOf(base)].sort(), ['caviar-etcd-auth', 'caviar-tls']);
    const managed = render('overlays/cert-manager');
    const issued = new Set(
      managed.filter((o) => o.kind === 'Certificate').map((o) => o.spec!.secretName!),
    );
    for (const secret of secretsOf(managed))
      assert.ok(
        secret === 'caviar-etcd-auth' || issued.has(secret),
        `${secret} is issued by no Certificate`,
      );
    for (const c of managed.filter(
      (o) => o.kind === 'Certificate' && o.metadata.name !== 'caviar-ca',
    ))
      assert.equal(`caviar-tls-${c.spec!.commonName}`, c.spec!.secretName, 'CN is the role');
  },
);

test(
  'the gpu overlay asks for a GPU and the gpu backend; external-etcd drops the in-cluster one',
  { skip },
  () => {
    const gpu = render('overlays/gpu').find(
      (o) => o.metadata.name === 'caviar-worker' && o.kind === 'Deployment',
    )!;
    const worker = gpu.spec!.template!.spec.containers[0]! as Container & {
      resources: { limits: Record<string, unknown> };
    };
    assert.equal(worker.resources.limits['nvidia.com/gpu'], 1);
    assert.ok(worker.args!.includes('--backend=gpu'));
    assert.match(worker.image, /^caviar-gpu:/);
    const external = render('overlays/external-etcd');
    assert.ok(
      !external.some((o) => o.metadata.name.startsWith('caviar-etcd')),
      'no in-cluster etcd',
    );
    const config = external.find((o) => o.kind === 'ConfigMap')!;
    assert.doesNotMatch(config.data!['etcd-endpoints']!, /caviar-etcd/);
  },
);

test('the container image starts node with ROLE_NODE_FLAGS', () => {
  const text = fs.readFileSync(
    path.join(REPO_ROOT, 'deploy', 'container', 'Containerfile'),
    'utf8',
  );
  const entrypoints = [...text.matchAll(/^ENTRYPOINT (.*)$/gm)].map(
    (m) => JSON.parse(m[1]!) as string[],
  );
  assert.ok(entrypoints.length >= 2, 'the cpu and gpu images');
  for (const e of entrypoints)
    assert.deepEqual(e, ['node', ...ROLE_NODE_FLAGS, '/opt/caviar/bin/caviar.js']);
});
