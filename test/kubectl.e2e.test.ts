// The machine's stock kubectl, default flags, against a real local cluster (HTTPS + SQLite): the flows
// a new user tries first. Output is compared with what kubectl prints against Kubernetes.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, withKubectl, type TestCluster } from './support/cluster.ts';
import { startLocalCluster } from '../lambdas/local/server.ts';

const APP = `apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: demo
  labels:
    app: web
spec:
  containers:
  - name: web
    image: busybox:stable
    command: ["httpd", "-f", "-p", "8080"]
    ports:
    - containerPort: 8080
      name: http
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: demo
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: http
---
apiVersion: v1
kind: ReplicationController
metadata:
  name: web
  namespace: demo
spec:
  replicas: 2
  selector:
    app: web-rc
  template:
    metadata:
      labels:
        app: web-rc
    spec:
      containers:
      - name: web
        image: busybox:stable
        command: ["sleep", "3600"]
`;

let c: TestCluster;

beforeAll(async () => {
  c = await startTestCluster();
});
afterAll(async () => {
  await c?.destroy();
});

/** Splits a kubectl table into rows of cells. */
function table(out: string): string[][] {
  return out
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s{2,}/));
}

describe('kubectl against a local cluster', () => {
  it('version and api-resources', async () => {
    const v = await c.kubectl(['version']);
    expect(v.stderr).toBe('');
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/Server Version: v1\.32\./);

    const r = await c.kubectl(['api-resources']);
    expect(r.code).toBe(0);
    const rows = table(r.stdout);
    expect(rows[0]).toEqual(['NAME', 'SHORTNAMES', 'APIVERSION', 'NAMESPACED', 'KIND']);
    expect(rows).toContainEqual(['pods', 'po', 'v1', 'true', 'Pod']);
    expect(rows).toContainEqual(['namespaces', 'ns', 'v1', 'false', 'Namespace']);
    expect(rows).toContainEqual(['replicationcontrollers', 'rc', 'v1', 'true', 'ReplicationController']);
    expect(rows).toContainEqual(['leases', 'coordination.k8s.io/v1', 'true', 'Lease']);
  });

  it('create namespace, apply a file twice (second time unchanged)', async () => {
    const ns = await c.kubectl(['create', 'namespace', 'demo']);
    expect(ns.stdout.trim()).toBe('namespace/demo created');
    const f = c.file('app.yaml', APP);
    const a1 = await c.kubectl(['apply', '-f', f]);
    expect(a1.stderr).toBe('');
    expect(a1.stdout.trim().split('\n')).toEqual(['pod/web created', 'service/web created', 'replicationcontroller/web created']);
    const a2 = await c.kubectl(['apply', '-f', f]);
    expect(a2.stderr).toBe('');
    expect(a2.stdout.trim().split('\n')).toEqual(['pod/web unchanged', 'service/web unchanged', 'replicationcontroller/web unchanged']);
  });

  it('get: table, wide, yaml, json, -l, -A, --show-labels', async () => {
    const t = await c.kubectl(['get', 'pods', '-n', 'demo']);
    expect(t.code).toBe(0);
    const rows = table(t.stdout);
    expect(rows[0]).toEqual(['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE']);
    expect(rows[1]!.slice(0, 4)).toEqual(['web', '0/1', 'Pending', '0']);
    expect(rows[1]![4]).toMatch(/^\d+s$/);

    const w = await c.kubectl(['get', 'pods', '-n', 'demo', '-o', 'wide']);
    expect(table(w.stdout)[0]).toEqual(['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE', 'IP', 'NODE', 'NOMINATED NODE', 'READINESS GATES']);

    const y = await c.kubectl(['get', 'pod', 'web', '-n', 'demo', '-o', 'yaml']);
    expect(y.stdout).toMatch(/^apiVersion: v1\n/);
    expect(y.stdout).toContain('kind: Pod');
    expect(y.stdout).toMatch(/resourceVersion: "\d+"/);
    expect(y.stdout).toMatch(/uid: [0-9a-f-]{36}/);

    const j = await c.kubectl(['get', 'svc', 'web', '-n', 'demo', '-o', 'json']);
    const svc = JSON.parse(j.stdout);
    expect(svc.kind).toBe('Service');
    expect(svc.spec.ports[0]).toMatchObject({ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' });

    const l = await c.kubectl(['get', 'pods', '-n', 'demo', '-l', 'app=web', '-o', 'name']);
    expect(l.stdout.trim()).toBe('pod/web');
    const none = await c.kubectl(['get', 'pods', '-n', 'demo', '-l', 'app=nothing']);
    expect(none.stderr.trim()).toBe('No resources found in demo namespace.');

    const all = await c.kubectl(['get', 'namespaces']);
    const names = table(all.stdout).slice(1).map((r) => r[0]);
    expect(names).toEqual(expect.arrayContaining(['default', 'demo', 'kube-system', 'kube-public', 'kube-node-lease']));

    // The replication controller creates the two pods (no node runs them, so none is ready).
    for (let i = 0; i < 50; i++) {
      const rc = JSON.parse((await c.kubectl(['get', 'rc', 'web', '-n', 'demo', '-o', 'json'])).stdout);
      if (rc.status?.replicas === 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const A = await c.kubectl(['get', 'rc', '-A']);
    const arows = table(A.stdout);
    expect(arows[0]).toEqual(['NAMESPACE', 'NAME', 'DESIRED', 'CURRENT', 'READY', 'AGE']);
    expect(arows[1]!.slice(0, 5)).toEqual(['demo', 'web', '2', '2', '0']);

    const sl = await c.kubectl(['get', 'pods', '-n', 'demo', '--show-labels']);
    const srows = table(sl.stdout);
    expect(srows[0]!.at(-1)).toBe('LABELS');
    expect(srows[1]!.at(-1)).toBe('app=web');
  });

  it('describe', async () => {
    const d = await c.kubectl(['describe', 'pod', 'web', '-n', 'demo']);
    expect(d.stderr).toBe('');
    expect(d.stdout).toMatch(/^Name:\s+web$/m);
    expect(d.stdout).toMatch(/^Namespace:\s+demo$/m);
    expect(d.stdout).toMatch(/^Labels:\s+app=web$/m);
    expect(d.stdout).toMatch(/^Status:\s+Pending$/m);
    const s = await c.kubectl(['describe', 'svc', 'web', '-n', 'demo']);
    expect(s.stdout).toMatch(/^Selector:\s+app=web$/m);
    const rc = await c.kubectl(['describe', 'rc', 'web', '-n', 'demo']);
    expect(rc.stdout).toMatch(/^Replicas:\s+2 current \/ 2 desired$/m);
    expect(rc.stdout).toMatch(/SuccessfulCreate\s+.*Created pod: web-/);
  });

  it('label, annotate, patch (strategic, merge, json)', async () => {
    expect((await c.kubectl(['label', 'pod', 'web', '-n', 'demo', 'tier=frontend'])).stdout.trim()).toBe('pod/web labeled');
    expect((await c.kubectl(['annotate', 'pod', 'web', '-n', 'demo', 'note=hello'])).stdout.trim()).toBe('pod/web annotated');
    const pod = JSON.parse((await c.kubectl(['get', 'pod', 'web', '-n', 'demo', '-o', 'json'])).stdout);
    expect(pod.metadata.labels).toEqual({ app: 'web', tier: 'frontend' });
    expect(pod.metadata.annotations.note).toBe('hello');
    // Removing a label with the trailing "-".
    expect((await c.kubectl(['label', 'pod', 'web', '-n', 'demo', 'tier-'])).stdout.trim()).toBe('pod/web unlabeled');

    // Strategic merge: Service ports merge by port; the name survives.
    const p = await c.kubectl(['patch', 'svc', 'web', '-n', 'demo', '-p', '{"spec":{"ports":[{"port":80,"targetPort":8081}]}}']);
    expect(p.stderr).toBe('');
    expect(p.stdout.trim()).toBe('service/web patched');
    const svc = JSON.parse((await c.kubectl(['get', 'svc', 'web', '-n', 'demo', '-o', 'json'])).stdout);
    expect(svc.spec.ports).toEqual([{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8081 }]);

    const m = await c.kubectl(['patch', 'rc', 'web', '-n', 'demo', '--type=merge', '-p', '{"metadata":{"labels":{"team":"blue"}}}']);
    expect(m.stdout.trim()).toBe('replicationcontroller/web patched');
    const jp = await c.kubectl(['patch', 'pod', 'web', '-n', 'demo', '--type=json', '-p', '[{"op":"add","path":"/metadata/labels/x","value":"y"}]']);
    expect(jp.stdout.trim()).toBe('pod/web patched');
    const pod2 = JSON.parse((await c.kubectl(['get', 'pod', 'web', '-n', 'demo', '-o', 'json'])).stdout);
    expect(pod2.metadata.labels).toEqual({ app: 'web', x: 'y' });
    // A patch that changes nothing reports "no change".
    const same = await c.kubectl(['patch', 'pod', 'web', '-n', 'demo', '--type=merge', '-p', '{"metadata":{"labels":{"x":"y"}}}']);
    expect(same.stdout.trim()).toBe('pod/web patched (no change)');
  });

  it('scale and replace', async () => {
    const s = await c.kubectl(['scale', 'rc', 'web', '-n', 'demo', '--replicas=3']);
    expect(s.stdout.trim()).toBe('replicationcontroller/web scaled');
    const y = (await c.kubectl(['get', 'rc', 'web', '-n', 'demo', '-o', 'yaml'])).stdout;
    expect(y).toMatch(/^ {2}replicas: 3$/m);
    const f = c.file('rc.yaml', y.replace(/^ {2}replicas: 3$/m, '  replicas: 1'));
    const r = await c.kubectl(['replace', '-f', f]);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('replicationcontroller/web replaced');
    const rc = JSON.parse((await c.kubectl(['get', 'rc', 'web', '-n', 'demo', '-o', 'json'])).stdout);
    expect(rc.spec.replicas).toBe(1);
    expect(rc.metadata.generation).toBe(3);
    // The same file again carries a stale resourceVersion: Kubernetes' Conflict.
    const stale = await c.kubectl(['replace', '-f', f]);
    expect(stale.code).not.toBe(0);
    expect(stale.stderr.trim()).toBe(
      `Error from server (Conflict): error when replacing "${f}": Operation cannot be fulfilled on replicationcontrollers "web": the object has been modified; please apply your changes to the latest version and try again`,
    );
  });

  it('get -w shows later changes', async () => {
    const w = c.kubectlSpawn(['get', 'configmaps', '-n', 'demo', '-w']);
    let out = '';
    w.stdout!.on('data', (d) => (out += d));
    const until = async (re: RegExp) => {
      for (let i = 0; i < 100 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 100));
      return out;
    };
    // No need to wait for kubectl to start: it lists, then watches from the list's resourceVersion.
    await c.kubectl(['create', 'configmap', 'watched', '-n', 'demo', '--from-literal=a=1']);
    await until(/watched/);
    await c.kubectl(['delete', 'configmap', 'watched', '-n', 'demo']);
    await new Promise((r) => setTimeout(r, 500));
    w.kill();
    expect(out).toMatch(/^NAME\s+DATA\s+AGE$/m);
    // Added, then the delete shows the object again (kubectl prints a row per event).
    expect(out.match(/^watched\s+1\s+\d+s$/gm)?.length).toBeGreaterThanOrEqual(2);
  });

  it('errors read like Kubernetes', async () => {
    const bad = await c.kubectl(['create', 'namespace', 'Bad_Name']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim()).toBe(
      `The Namespace "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
    );
    const missing = await c.kubectl(['get', 'pod', 'nope', '-n', 'demo']);
    expect(missing.stderr.trim()).toBe('Error from server (NotFound): pods "nope" not found');
    const dup = await c.kubectl(['create', 'namespace', 'demo']);
    expect(dup.stderr.trim()).toBe('Error from server (AlreadyExists): namespaces "demo" already exists');
    const noNs = await c.kubectl(['create', 'configmap', 'x', '-n', 'nowhere']);
    expect(noNs.stderr.trim()).toBe('error: failed to create configmap: namespaces "nowhere" not found');
  });

  it('delete', async () => {
    const d = await c.kubectl(['delete', 'pod', 'web', '-n', 'demo']);
    expect(d.stdout.trim()).toBe('pod "web" deleted');
    const g = await c.kubectl(['get', 'pod', 'web', '-n', 'demo']);
    expect(g.stderr.trim()).toBe('Error from server (NotFound): pods "web" not found');
    const f = await c.kubectl(['delete', '-f', c.file('svc.yaml', APP.split('---')[1]!)]);
    expect(f.stdout.trim()).toBe('service "web" deleted');
  });

  it('a restart keeps every object', async () => {
    const before = JSON.parse((await c.kubectl(['get', 'rc,ns', '-A', '-o', 'json'])).stdout);
    await c.close();
    const again = withKubectl(await startLocalCluster({ dataDir: c.dataDir, port: 0 }), c.dataDir);
    c = again;
    const after = JSON.parse((await c.kubectl(['get', 'rc,ns', '-A', '-o', 'json'])).stdout);
    expect(after.items).toEqual(before.items);
    const created = await c.kubectl(['create', 'configmap', 'after-restart', '-n', 'demo']);
    expect(created.stdout.trim()).toBe('configmap/after-restart created');
    const cm = JSON.parse((await c.kubectl(['get', 'cm', 'after-restart', '-n', 'demo', '-o', 'json'])).stdout);
    const maxBefore = Math.max(...before.items.map((i: any) => Number(i.metadata.resourceVersion)));
    expect(Number(cm.metadata.resourceVersion)).toBeGreaterThan(maxBefore);
  });
});

describe('namespace deletion', () => {
  it('deletes everything inside, refuses new content while terminating, then goes', async () => {
    expect((await c.kubectl(['create', 'namespace', 'doomed'])).stdout.trim()).toBe('namespace/doomed created');
    await c.kubectl(['create', 'configmap', 'plain', '-n', 'doomed']);
    const held = c.file('held.yaml', 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  namespace: doomed\n  finalizers: ["example.com/hold"]\n');
    expect((await c.kubectl(['apply', '-f', held])).stdout.trim()).toBe('configmap/held created');
    const del = await c.kubectl(['delete', 'namespace', 'doomed', '--wait=false']);
    expect(del.stdout.trim()).toBe('namespace "doomed" deleted');
    // The held config map keeps the namespace Terminating; the other one is deleted.
    let ns: any;
    for (let i = 0; i < 50; i++) {
      ns = JSON.parse((await c.kubectl(['get', 'ns', 'doomed', '-o', 'json'])).stdout);
      const cms = (await c.kubectl(['get', 'cm', '-n', 'doomed', '-o', 'name'])).stdout.trim();
      if (cms === 'configmap/held') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(ns.status.phase).toBe('Terminating');
    expect((await c.kubectl(['get', 'cm', '-n', 'doomed', '-o', 'name'])).stdout.trim()).toBe('configmap/held');
    const refused = await c.kubectl(['create', 'configmap', 'late', '-n', 'doomed']);
    expect(refused.stderr.trim()).toBe(
      'error: failed to create configmap: configmaps "late" is forbidden: unable to create new content in namespace doomed because it is being terminated',
    );
    // Releasing the finalizer lets the namespace finish; kubectl's wait sees it go.
    await c.kubectl(['patch', 'cm', 'held', '-n', 'doomed', '--type=merge', '-p', '{"metadata":{"finalizers":null}}']);
    const wait = await c.kubectl(['wait', '--for=delete', 'namespace/doomed', '--timeout=20s']);
    expect(wait.code).toBe(0);
    expect((await c.kubectl(['get', 'ns', 'doomed'])).stderr.trim()).toBe('Error from server (NotFound): namespaces "doomed" not found');
  });
});

describe('endpoint slices', () => {
  it('describe svc lists the ready endpoints from the controller\'s EndpointSlice; get endpointslices prints kube\'s columns', async () => {
    expect((await c.kubectl(['create', 'namespace', 'eps'])).stdout.trim()).toBe('namespace/eps created');
    const app = APP.split('---').slice(0, 2).join('---').replaceAll('namespace: demo', 'namespace: eps');
    expect((await c.kubectl(['apply', '-f', c.file('eps.yaml', app)])).stdout.trim().split('\n')).toEqual(['pod/web created', 'service/web created']);
    // No node runs pods here: report what the agent would (an IP, Ready) through the status subresource.
    const status = { status: { phase: 'Running', podIP: '172.21.0.2', podIPs: [{ ip: '172.21.0.2' }], conditions: [{ type: 'Ready', status: 'True' }] } };
    const st = await c.kubectl(['patch', 'pod', 'web', '-n', 'eps', '--subresource=status', '--type=merge', '-p', JSON.stringify(status)]);
    expect(st.stderr).toBe('');

    let rows: string[][] = [];
    for (let i = 0; i < 100; i++) {
      rows = table((await c.kubectl(['get', 'endpointslices', '-n', 'eps'])).stdout);
      if (rows[1]?.[3] === '172.21.0.2') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(rows[0]).toEqual(['NAME', 'ADDRESSTYPE', 'PORTS', 'ENDPOINTS', 'AGE']);
    // Named as kube's endpointslice controller names them: <service>-<5 random characters>.
    expect(rows[1]![0]).toMatch(/^web-[a-z0-9]{5}$/);
    expect(rows[1]!.slice(1, 4)).toEqual(['IPv4', '8080', '172.21.0.2']);
    expect(rows[1]![4]).toMatch(/^\d+s$/);

    const d = await c.kubectl(['describe', 'svc', 'web', '-n', 'eps']);
    expect(d.stderr).toBe('');
    expect(d.stdout).toMatch(/^Endpoints:\s+172\.21\.0\.2:8080$/m);

    const y = JSON.parse((await c.kubectl(['get', 'endpointslice', rows[1]![0]!, '-n', 'eps', '-o', 'json'])).stdout);
    expect(y.apiVersion).toBe('discovery.k8s.io/v1');
    expect(y.metadata.labels).toMatchObject({ 'kubernetes.io/service-name': 'web', 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' });
    expect(y.endpoints).toEqual([
      expect.objectContaining({ addresses: ['172.21.0.2'], conditions: { ready: true, serving: true, terminating: false }, targetRef: expect.objectContaining({ kind: 'Pod', name: 'web' }) }),
    ]);

    // Not ready: describe lists no endpoint. kubectl prints an empty value, not "<none>", when a slice
    // exists with no ready endpoint, as against Kubernetes (its "<none>" means no slice at all).
    const notReady = { status: { conditions: [{ type: 'Ready', status: 'False' }] } };
    await c.kubectl(['patch', 'pod', 'web', '-n', 'eps', '--subresource=status', '--type=merge', '-p', JSON.stringify(notReady)]);
    let out = '';
    for (let i = 0; i < 100; i++) {
      out = (await c.kubectl(['describe', 'svc', 'web', '-n', 'eps'])).stdout;
      if (/^Endpoints:\s*$/m.test(out)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(out).toMatch(/^Endpoints:\s*$/m);
    expect(table((await c.kubectl(['get', 'endpointslices', '-n', 'eps'])).stdout)[1]!.slice(0, 4)).toEqual([rows[1]![0], 'IPv4', '8080', '172.21.0.2']);
    expect((await c.kubectl(['delete', 'svc', 'web', '-n', 'eps'])).stdout.trim()).toBe('service "web" deleted');
    let left = '';
    for (let i = 0; i < 100; i++) {
      left = (await c.kubectl(['get', 'endpointslices', '-n', 'eps', '-o', 'name'])).stdout.trim();
      if (!left) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(left).toBe('');
  });
});
