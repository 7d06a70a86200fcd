// kubectl cordon, uncordon and drain, for real: the machine's kubectl against a local cluster with three
// hollow nodes (the scheduler, the replication and disruption controllers and the DaemonSet controller
// running in-process). Drain evicts through pods/eviction; a PodDisruptionBudget with no disruption left
// holds it (kubectl retries every 5 s on the 429) until the RC, scaled up, has a replacement Ready on
// another node; then the pods go one at a time, their replacements land on the uncordoned node, and the
// budget was never broken.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { until } from './support/until.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import { parseLabelSelector } from '../lambdas/machinery/selectors.ts';

let c: TestCluster;

beforeAll(async () => {
  c = await startTestCluster({ hollowNodes: 3 });
  expect((await c.kubectl(['create', 'namespace', 'drain'])).code).toBe(0);
});
afterAll(async () => {
  await c?.destroy();
});

const getJson = async (args: string[]) => {
  const r = await c.kubectl([...args, '-o', 'json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
};
const webPods = async () => (await getJson(['get', 'pods', '-n', 'drain', '-l', 'app=web'])).items as any[];
const ready = (p: any) => !p.metadata.deletionTimestamp && (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True');
const pdbStatus = async () => (await getJson(['get', 'pdb', 'web', '-n', 'drain'])).status;

const RC = `apiVersion: v1
kind: ReplicationController
metadata: {name: web, namespace: drain}
spec:
  replicas: 2
  selector: {app: web}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: busybox, volumeMounts: [{name: scratch, mountPath: /scratch}]}]
      volumes: [{name: scratch, emptyDir: {}}]
`;

const DS = `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: drain}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: busybox}]
`;

const PDB = `apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: drain}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: web}}
`;

describe('kubectl cordon, uncordon and drain against hollow nodes', () => {
  it('cordon marks nodes unschedulable (SchedulingDisabled) and the scheduler keeps pods off them; uncordon undoes it', async () => {
    for (const n of ['hollow-node-1', 'hollow-node-2']) {
      const r = await c.kubectl(['cordon', n]);
      expect(r.stdout.trim(), r.stderr).toBe(`node/${n} cordoned`);
    }
    expect((await c.kubectl(['cordon', 'hollow-node-2'])).stdout.trim()).toBe('node/hollow-node-2 already cordoned');
    expect((await getJson(['get', 'node', 'hollow-node-1'])).spec.unschedulable).toBe(true);
    const table = await c.kubectl(['get', 'nodes', '--no-headers']);
    expect(table.stdout).toMatch(/hollow-node-1\s+Ready,SchedulingDisabled/);
    expect(table.stdout).toMatch(/hollow-node-0\s+Ready\s/);

    const f = c.file('rc.yaml', RC);
    expect((await c.kubectl(['apply', '-f', f])).code).toBe(0);
    expect((await c.kubectl(['apply', '-f', c.file('ds.yaml', DS)])).code).toBe(0);
    const pods = await until('2 web pods Ready', async () => {
      const ps = await webPods();
      return ps.length === 2 && ps.every(ready) ? ps : undefined;
    });
    // Only hollow-node-0 is schedulable.
    expect(pods.map((p) => p.spec.nodeName)).toEqual(['hollow-node-0', 'hollow-node-0']);

    const un = await c.kubectl(['uncordon', 'hollow-node-1']);
    expect(un.stdout.trim(), un.stderr).toBe('node/hollow-node-1 uncordoned');
    expect((await getJson(['get', 'node', 'hollow-node-1'])).spec.unschedulable).toBeUndefined();
  });

  it('the disruption controller fills the budget: 2 of 2 healthy, none allowed', async () => {
    expect((await c.kubectl(['apply', '-f', c.file('pdb.yaml', PDB)])).code).toBe(0);
    const s = await until('the budget observed', async () => {
      const st = await pdbStatus();
      return st.observedGeneration === 1 && st.expectedPods === 2 ? st : undefined;
    });
    expect(s).toMatchObject({ currentHealthy: 2, desiredHealthy: 2, disruptionsAllowed: 0, expectedPods: 2 });
    expect(s.conditions).toEqual([expect.objectContaining({ type: 'DisruptionAllowed', status: 'False', reason: 'InsufficientPods' })]);
    const table = await c.kubectl(['get', 'pdb', '-n', 'drain', '--no-headers']);
    expect(table.stdout).toMatch(/^web\s+2\s+N\/A\s+0\s+/);
  });

  it('drain is held by the budget (429, kubectl retries), then completes once replacements are Ready elsewhere', async () => {
    const first = await webPods();
    // The RC names pods by slot, so a replacement may take its predecessor's name: pods are told apart by uid.
    const before = new Set(first.map((p) => p.metadata.uid));
    // Every change of the web pods while draining: the Ready ones (not being deleted) never drop below the budget's 2.
    const readyNow = new Map<string, boolean>(first.map((p) => [p.metadata.uid, ready(p)]));
    let fewestReady = Infinity;
    const stopWatch = new AbortController();
    const watching = (async () => {
      const pods = findResource('', 'v1', 'pods')!;
      const rv = (await c.api.registry.list(pods, 'drain')).metadata.resourceVersion;
      for await (const ev of c.api.registry.watch(pods, 'drain', { resourceVersion: rv, labelSelector: parseLabelSelector('app=web') }, stopWatch.signal)) {
        const o = ev.object as any;
        if (ev.type === 'DELETED') readyNow.delete(o.metadata.uid);
        else if (ev.type === 'ADDED' || ev.type === 'MODIFIED') readyNow.set(o.metadata.uid, ready(o));
        else continue;
        fewestReady = Math.min(fewestReady, [...readyNow.values()].filter(Boolean).length);
      }
    })().catch(() => undefined);
    const drain = c.kubectlSpawn(['drain', 'hollow-node-0', '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=150s']);
    let stdout = '';
    let stderr = '';
    drain.stdout!.on('data', (d) => (stdout += d));
    drain.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number>((resolve) => drain.on('exit', (code) => resolve(code ?? -1)));
    try {
      // Held: both evictions refused with kube's message; the node is cordoned and the pods are still there.
      await until('drain refused by the budget', async () => (stderr.match(/Cannot evict pod as it would violate the pod's disruption budget\./g)?.length ?? 0) >= 2, 30_000);
      expect(stderr).toMatch(/error when evicting pods\/"web-\w+" -n "drain" \(will retry after 5s\): Cannot evict pod as it would violate the pod's disruption budget\./);
      expect(stderr).toContain('Warning: ignoring DaemonSet-managed Pods: drain/agent-');
      expect(stdout).toContain('node/hollow-node-0 cordoned');
      expect((await webPods()).filter((p) => before.has(p.metadata.uid) && ready(p))).toHaveLength(2);

      // One more replica: it lands on hollow-node-1, becomes Ready, and the budget allows one disruption.
      expect((await c.kubectl(['scale', 'rc', 'web', '-n', 'drain', '--replicas=3'])).code).toBe(0);
      expect(await exited).toBe(0);
    } finally {
      drain.kill();
      stopWatch.abort();
      await watching;
    }
    expect(fewestReady).toBe(2);
    expect(stdout).toContain('node/hollow-node-0 drained');
    for (const p of first) expect(stdout).toContain(`pod/${p.metadata.name} evicted`);

    const after = await until('3 web pods Ready on hollow-node-1', async () => {
      const ps = await webPods();
      return ps.length === 3 && ps.every(ready) ? ps : undefined;
    });
    expect(after.map((p) => p.spec.nodeName)).toEqual(['hollow-node-1', 'hollow-node-1', 'hollow-node-1']);
    expect(after.some((p) => before.has(p.metadata.uid))).toBe(false);
    // The DaemonSet's pod stays on the drained node.
    const agents = (await getJson(['get', 'pods', '-n', 'drain', '-l', 'app=agent'])).items as any[];
    expect(agents.map((p) => p.spec.nodeName)).toContain('hollow-node-0');
    const s = await until('the budget settled', async () => {
      const st = await pdbStatus();
      return st.currentHealthy === 3 && !st.disruptedPods ? st : undefined;
    });
    expect(s).toMatchObject({ expectedPods: 3, desiredHealthy: 2, disruptionsAllowed: 1 });
    expect((await getJson(['get', 'node', 'hollow-node-0'])).spec.unschedulable).toBe(true);
  }, 180_000);

  it('evicting by hand: kubectl create of an Eviction through the raw API is refused with the budget message', async () => {
    // Leave no room: the budget now asks for all 3.
    expect((await c.kubectl(['patch', 'pdb', 'web', '-n', 'drain', '--type=merge', '-p', '{"spec":{"minAvailable":3}}'])).code).toBe(0);
    await until('the budget at generation 2', async () => {
      const st = await pdbStatus();
      return st.observedGeneration === 2 && st.disruptionsAllowed === 0 ? st : undefined;
    });
    const described = await c.kubectl(['describe', 'pdb', 'web', '-n', 'drain']);
    expect(described.stdout).toMatch(/Min available:\s+3\n/);
    expect(described.stdout).toMatch(/Allowed disruptions:\s+0\n\s+Current:\s+3\n\s+Desired:\s+3\n\s+Total:\s+3\n/);
    const victim = (await webPods())[0].metadata.name;
    const body = JSON.stringify({ apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: victim, namespace: 'drain' } });
    const r = await c.kubectl(['create', '--raw', `/api/v1/namespaces/drain/pods/${victim}/eviction`, '-f', '-'], body);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("Cannot evict pod as it would violate the pod's disruption budget.");
  });
});
