// The kinds Skiff stores as data (issue #13, part 3) through the machine's stock kubectl against a local
// cluster (what `skiff up` runs: HTTPS + SQLite, the controllers, the bootstrap objects): one manifest with
// one of each kind applied twice (created, then unchanged where kubectl says so against Kubernetes: OpenAPI,
// strategic merge patch and defaults agree),
// `kubectl get` of each with kube's columns, the built-in PriorityClasses, a pod's priority resolved from
// its class, and a pod naming an unknown class refused with kube-apiserver's message.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from './support/cluster.ts';

const MANIFEST = `apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata:
  name: high
value: 1000
description: For the web tier.
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: fast
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: ebs.csi.aws.com
parameters:
  type: gp3
allowVolumeExpansion: true
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: nginx
spec:
  controller: k8s.io/ingress-nginx
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: kinds
spec:
  ingressClassName: nginx
  tls:
  - hosts: [web.example.com]
    secretName: web-tls
  rules:
  - host: web.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              name: http
  - host: api.example.com
    http:
      paths:
      - path: /v1
        pathType: Exact
        backend:
          service:
            name: api
            port:
              number: 8080
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web-ingress
  namespace: kinds
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          team: edge
    - ipBlock:
        cidr: 10.0.0.0/8
        except: [10.1.0.0/16]
    ports:
    - port: 8080
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
  namespace: kinds
spec:
  minAvailable: 1
  selector:
    matchLabels:
      app: web
---
apiVersion: v1
kind: PodTemplate
metadata:
  name: web
  namespace: kinds
template:
  metadata:
    labels:
      app: web
  spec:
    containers:
    - name: web
      image: busybox:stable
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: kinds
  labels:
    app: web
spec:
  priorityClassName: high
  containers:
  - name: web
    image: busybox:stable
`;

const BAD_POD = `apiVersion: v1
kind: Pod
metadata:
  name: bad
  namespace: kinds
spec:
  priorityClassName: nope
  containers:
  - name: c
    image: busybox:stable
`;

let c: TestCluster;

beforeAll(async () => {
  // No scheduler or node agent is needed: the pod stays Pending.
  c = await startTestCluster({ controllers: false });
  expect((await c.kubectl(['create', 'namespace', 'kinds'])).code).toBe(0);
});
afterAll(async () => {
  await c?.destroy();
});

/** kubectl's table as lines with runs of spaces made one, the AGE cell replaced by "AGE". */
async function get(args: string[]): Promise<string[]> {
  const r = await c.kubectl(['get', ...args]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => l.trim().replace(/\s+/g, ' ').replace(/ \d+s( |$)/, ' AGE$1'));
}

describe('kubectl with the kinds stored as data', () => {
  it('lists them in api-resources', async () => {
    const r = await c.kubectl(['api-resources']);
    expect(r.code).toBe(0);
    const rows = r.stdout.trim().split('\n').map((l) => l.trim().split(/\s{2,}/));
    for (const row of [
      ['podtemplates', 'v1', 'true', 'PodTemplate'],
      ['ingressclasses', 'networking.k8s.io/v1', 'false', 'IngressClass'],
      ['ingresses', 'ing', 'networking.k8s.io/v1', 'true', 'Ingress'],
      ['networkpolicies', 'netpol', 'networking.k8s.io/v1', 'true', 'NetworkPolicy'],
      ['poddisruptionbudgets', 'pdb', 'policy/v1', 'true', 'PodDisruptionBudget'],
      ['priorityclasses', 'pc', 'scheduling.k8s.io/v1', 'false', 'PriorityClass'],
      ['storageclasses', 'sc', 'storage.k8s.io/v1', 'false', 'StorageClass'],
    ]) {
      expect(rows).toContainEqual(row);
    }
  });

  it('applies one of each kind, then again: created, then as kubectl says against Kubernetes', async () => {
    const f = c.file('kinds.yaml', MANIFEST);
    const a1 = await c.kubectl(['apply', '-f', f]);
    expect(a1.stderr).toBe('');
    expect(a1.stdout.trim().split('\n')).toEqual([
      'priorityclass.scheduling.k8s.io/high created',
      'storageclass.storage.k8s.io/fast created',
      'ingressclass.networking.k8s.io/nginx created',
      'ingress.networking.k8s.io/web created',
      'networkpolicy.networking.k8s.io/web-ingress created',
      'poddisruptionbudget.policy/web created',
      'podtemplate/web created',
      'pod/web created',
    ]);
    const a2 = await c.kubectl(['apply', '-f', f]);
    expect(a2.stderr).toBe('');
    // As against Kubernetes, two say "configured" although nothing changes: kubectl's three-way patch
    // always carries a PDB's selector (patchStrategy "replace"), and a NetworkPolicy's ingress rules (an
    // atomic list) differ from the live ones by the port protocol the server defaulted.
    expect(a2.stdout.trim().split('\n')).toEqual([
      'priorityclass.scheduling.k8s.io/high unchanged',
      'storageclass.storage.k8s.io/fast unchanged',
      'ingressclass.networking.k8s.io/nginx unchanged',
      'ingress.networking.k8s.io/web unchanged',
      'networkpolicy.networking.k8s.io/web-ingress configured',
      'poddisruptionbudget.policy/web configured',
      'podtemplate/web unchanged',
      'pod/web unchanged',
    ]);
  });

  it('gets each kind with the columns kube-apiserver prints', async () => {
    expect(await get(['priorityclasses'])).toEqual([
      'NAME VALUE GLOBAL-DEFAULT AGE PREEMPTIONPOLICY',
      'high 1000 false AGE PreemptLowerPriority',
      'system-cluster-critical 2000000000 false AGE PreemptLowerPriority',
      'system-node-critical 2000001000 false AGE PreemptLowerPriority',
    ]);
    // Every cluster starts with local-path (default); a second default class is printed as kube does.
    expect(await get(['sc'])).toEqual([
      'NAME PROVISIONER RECLAIMPOLICY VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION AGE',
      'fast (default) ebs.csi.aws.com Delete WaitForFirstConsumer true AGE',
      'local-path (default) rancher.io/local-path Delete WaitForFirstConsumer false AGE',
    ]);
    expect(await get(['ingressclass'])).toEqual(['NAME CONTROLLER PARAMETERS AGE', 'nginx k8s.io/ingress-nginx <none> AGE']);
    // ADDRESS is empty: no ingress controller writes the status.
    expect(await get(['ing', '-n', 'kinds'])).toEqual(['NAME CLASS HOSTS ADDRESS PORTS AGE', 'web nginx web.example.com,api.example.com 80, 443 AGE']);
    expect(await get(['netpol', '-n', 'kinds'])).toEqual(['NAME POD-SELECTOR AGE', 'web-ingress app=web AGE']);
    expect(await get(['pdb', '-n', 'kinds'])).toEqual(['NAME MIN AVAILABLE MAX UNAVAILABLE ALLOWED DISRUPTIONS AGE', 'web 1 N/A 0 AGE']);
    expect(await get(['podtemplates', '-n', 'kinds'])).toEqual(['NAME CONTAINERS IMAGES POD LABELS', 'web web busybox:stable app=web']);
  });

  it('stores the defaults kube fills in', async () => {
    const np = JSON.parse((await c.kubectl(['get', 'netpol', 'web-ingress', '-n', 'kinds', '-o', 'json'])).stdout);
    expect(np.spec.policyTypes).toEqual(['Ingress']);
    expect(np.spec.ingress[0].ports).toEqual([{ port: 8080, protocol: 'TCP' }]);
    const pdb = JSON.parse((await c.kubectl(['get', 'pdb', 'web', '-n', 'kinds', '-o', 'json'])).stdout);
    expect(pdb.status).toEqual({ currentHealthy: 0, desiredHealthy: 0, disruptionsAllowed: 0, expectedPods: 0 });
    const sc = JSON.parse((await c.kubectl(['get', 'sc', 'fast', '-o', 'json'])).stdout);
    expect(sc.reclaimPolicy).toBe('Delete');
  });

  it("resolves a pod's priorityClassName to its priority at create", async () => {
    const r = await c.kubectl(['get', 'pod', 'web', '-n', 'kinds', '-o', 'jsonpath={.spec.priority} {.spec.preemptionPolicy}']);
    expect(r.stdout).toBe('1000 PreemptLowerPriority');
  });

  it('refuses a pod naming an unknown PriorityClass with kube-apiserver\'s message', async () => {
    const f = c.file('bad.yaml', BAD_POD);
    const r = await c.kubectl(['apply', '-f', f]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`Error from server (Forbidden): error when creating "${f}": pods "bad" is forbidden: no PriorityClass with name nope was found`);
    expect((await c.kubectl(['get', 'pod', 'bad', '-n', 'kinds'])).code).toBe(1);
  });

  it('refuses an invalid object and an unknown field as kube-apiserver does', async () => {
    const bad = c.file('bad-ing.yaml', 'apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: empty, namespace: kinds}\nspec: {}\n');
    const r = await c.kubectl(['apply', '-f', bad]);
    expect(r.stderr.trim()).toBe(
      `The Ingress "empty" is invalid: spec: Invalid value: null: either \`defaultBackend\` or \`rules\` must be specified`,
    );
    const typo = c.file('typo.yaml', 'apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: typo, namespace: kinds}\nspec: {minAvailabel: 1}\n');
    const t = await c.kubectl(['apply', '-f', typo]);
    expect(t.stderr.trim()).toBe(
      `Error from server (BadRequest): error when creating "${typo}": PodDisruptionBudget in version "v1" cannot be handled as a PodDisruptionBudget: strict decoding error: unknown field "spec.minAvailabel"`,
    );
  });

  it("kubectl's typed create commands (protobuf bodies) make them as against Kubernetes", async () => {
    const pc = await c.kubectl(['create', 'priorityclass', 'low', '--value=10', '--description=batch work', '--preemption-policy=Never']);
    expect(pc.stderr).toBe('');
    expect(pc.stdout.trim()).toBe('priorityclass.scheduling.k8s.io/low created');
    const pdb = await c.kubectl(['create', 'poddisruptionbudget', 'half', '-n', 'kinds', '--selector=app=web', '--min-available=50%']);
    expect(pdb.stderr).toBe('');
    expect(pdb.stdout.trim()).toBe('poddisruptionbudget.policy/half created');
    const ing = await c.kubectl(['create', 'ingress', 'simple', '-n', 'kinds', '--class=nginx', '--rule=foo.com/bar=svc1:8080,tls=my-cert', '--rule=foo.com/api*=api:http']);
    expect(ing.stderr).toBe('');
    expect(ing.stdout.trim()).toBe('ingress.networking.k8s.io/simple created');

    const got = async (args: string[]) => JSON.parse((await c.kubectl(['get', ...args, '-o', 'json'])).stdout);
    expect(await got(['pc', 'low'])).toMatchObject({ value: 10, description: 'batch work', preemptionPolicy: 'Never' });
    expect((await got(['pdb', 'half', '-n', 'kinds'])).spec).toEqual({ minAvailable: '50%', selector: { matchLabels: { app: 'web' } } });
    expect((await got(['ing', 'simple', '-n', 'kinds'])).spec).toEqual({
      ingressClassName: 'nginx',
      rules: [
        {
          host: 'foo.com',
          http: {
            paths: [
              { path: '/bar', pathType: 'Exact', backend: { service: { name: 'svc1', port: { number: 8080 } } } },
              { path: '/api', pathType: 'Prefix', backend: { service: { name: 'api', port: { name: 'http' } } } },
            ],
          },
        },
      ],
      tls: [{ hosts: ['foo.com'], secretName: 'my-cert' }],
    });
    expect(await get(['pc', 'low'])).toEqual(['NAME VALUE GLOBAL-DEFAULT AGE PREEMPTIONPOLICY', 'low 10 false AGE Never']);
    expect(await get(['pc', '--field-selector', 'metadata.name=low', '-o', 'name'])).toEqual(['priorityclass.scheduling.k8s.io/low']);
  });

  it('describes each kind', async () => {
    for (const args of [
      ['pc', 'high'],
      ['sc', 'fast'],
      ['ingressclass', 'nginx'],
      ['ing', 'web', '-n', 'kinds'],
      ['netpol', 'web-ingress', '-n', 'kinds'],
      ['pdb', 'web', '-n', 'kinds'],
      ['podtemplate', 'web', '-n', 'kinds'],
    ]) {
      const r = await c.kubectl(['describe', ...args]);
      expect(r.stderr, args.join(' ')).toBe('');
      expect(r.stdout).toMatch(new RegExp(`^Name:\\s+${args[1]}\\n`));
    }
    const ing = await c.kubectl(['describe', 'ing', 'web', '-n', 'kinds']);
    expect(ing.stdout).toMatch(/Ingress Class:\s+nginx/);
    expect(ing.stdout).toMatch(/TLS:\n\s+web-tls terminates web.example.com/);
    const np = await c.kubectl(['describe', 'netpol', 'web-ingress', '-n', 'kinds']);
    expect(np.stdout).toMatch(/PodSelector:\s+app=web/);
    expect(np.stdout).toMatch(/Policy Types: Ingress/);
  });

  it('explains the new kinds from their OpenAPI schemas', async () => {
    const r = await c.kubectl(['explain', 'ingress.spec.rules.http.paths.pathType']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('GROUP:      networking.k8s.io');
    expect(r.stdout).toContain('FIELD: pathType <string>');
  });
});
