// ResourceQuota through the machine's kubectl against `skiff up`'s in-process cluster (issue #15, item 7):
// `kubectl create quota`, the quota controller filling status, `kubectl get/describe quota`, and a
// `kubectl run` refused with kube's words.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { until } from './support/until.ts';

let c: TestCluster;
// kubectl 1.32 has no --requests: the container's requests come as an override (a JSON merge patch).
const withCpu = `--overrides={"spec":{"containers":[{"name":"c","image":"busybox","resources":{"requests":{"cpu":"100m"}}}]}}`;
beforeAll(async () => {
  c = await startTestCluster();
}, 60_000);
afterAll(async () => {
  await c?.destroy();
});

describe('kubectl and ResourceQuota', () => {
  it('create quota, describe it, and a refused kubectl run', async () => {
    expect((await c.kubectl(['create', 'namespace', 'qe'])).code).toBe(0);
    const created = await c.kubectl(['create', 'quota', 'q', '-n', 'qe', '--hard=pods=1,services=2,requests.cpu=1']);
    expect(created.stderr).toBe('');
    expect(created.stdout.trim()).toBe('resourcequota/q created');
    // The controller fills status (hard, then used from the counters).
    await until('status.used', async () => {
      const r = await c.kubectl(['get', 'quota', 'q', '-n', 'qe', '-o', 'jsonpath={.status.used.pods}']);
      return r.stdout === '0';
    });

    const ok = await c.kubectl(['run', 'p1', '-n', 'qe', '--image=busybox', withCpu]);
    expect(ok.stderr).toBe('');
    const refused = await c.kubectl(['run', 'p2', '-n', 'qe', '--image=busybox', withCpu]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr.trim()).toBe(
      'Error from server (Forbidden): pods "p2" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1',
    );
    const bare = await c.kubectl(['run', 'p3', '-n', 'qe', '--image=busybox']);
    expect(bare.stderr.trim()).toBe('Error from server (Forbidden): pods "p3" is forbidden: failed quota: q: must specify requests.cpu for: p3');

    await until('used pods=1', async () => (await c.kubectl(['get', 'quota', 'q', '-n', 'qe', '-o', 'jsonpath={.status.used.pods}'])).stdout === '1');
    const table = await c.kubectl(['get', 'quota', '-n', 'qe']);
    expect(table.stdout.split('\n')[0]).toMatch(/^NAME\s+AGE\s+REQUEST\s+LIMIT$/);
    expect(table.stdout).toMatch(/^q\s+\S+\s+pods: 1\/1, requests.cpu: 100m\/1, services: 0\/2\s*$/m);

    const described = await c.kubectl(['describe', 'quota', 'q', '-n', 'qe']);
    expect(described.stderr).toBe('');
    const lines = described.stdout.split('\n').map((l) => l.trimEnd());
    expect(lines).toContain('Name:         q');
    expect(lines.some((l) => /^Namespace:\s+qe$/.test(l))).toBe(true);
    expect(lines.some((l) => /^Resource\s+Used\s+Hard$/.test(l))).toBe(true);
    expect(lines.some((l) => /^pods\s+1\s+1$/.test(l))).toBe(true);
    expect(lines.some((l) => /^requests.cpu\s+100m\s+1$/.test(l))).toBe(true);
    expect(lines.some((l) => /^services\s+0\s+2$/.test(l))).toBe(true);

    // The delete gives the pod's usage back; the controller shows it and a new pod fits.
    expect((await c.kubectl(['delete', 'pod', 'p1', '-n', 'qe', '--grace-period=0', '--force'])).code).toBe(0);
    await until('used pods=0', async () => (await c.kubectl(['get', 'quota', 'q', '-n', 'qe', '-o', 'jsonpath={.status.used.pods}'])).stdout === '0');
    expect((await c.kubectl(['run', 'p4', '-n', 'qe', '--image=busybox', withCpu])).stderr).toBe('');

    // An update that raises usage is charged too: a Service patched to LoadBalancer past the quota is
    // refused with kube's words ("requested" is the rise), and stays as it was.
    expect((await c.kubectl(['create', 'quota', 'lb', '-n', 'qe', '--hard=services.loadbalancers=0'])).code).toBe(0);
    await until('lb counted', async () => (await c.kubectl(['get', 'quota', 'lb', '-n', 'qe', '-o', 'jsonpath={.status.used.services\\.loadbalancers}'])).stdout === '0');
    expect((await c.kubectl(['create', 'service', 'clusterip', 'web', '-n', 'qe', '--tcp=80'])).code).toBe(0);
    const patched = await c.kubectl(['patch', 'service', 'web', '-n', 'qe', '-p', '{"spec":{"type":"LoadBalancer"}}']);
    expect(patched.code).not.toBe(0);
    expect(patched.stderr.trim()).toBe(
      'Error from server (Forbidden): services "web" is forbidden: exceeded quota: lb, requested: services.loadbalancers=1, used: services.loadbalancers=0, limited: services.loadbalancers=0',
    );
    expect((await c.kubectl(['get', 'service', 'web', '-n', 'qe', '-o', 'jsonpath={.spec.type}'])).stdout).toBe('ClusterIP');
  }, 120_000);

  it('a ClusterResourceQuota: kubectl apply, get and describe show used/hard per namespace', async () => {
    for (const ns of ['cq1', 'cq2']) {
      expect((await c.kubectl(['create', 'namespace', ns])).code).toBe(0);
      expect((await c.kubectl(['label', 'namespace', ns, 'team=blue'])).code).toBe(0);
      // Each namespace holds one ConfigMap of its own, kube-root-ca.crt, which the quota counts.
      await until(`kube-root-ca.crt in ${ns}`, async () => (await c.kubectl(['get', 'configmap', 'kube-root-ca.crt', '-n', ns])).code === 0);
    }
    const applied = await c.kubectl(['apply', '-f', '-'], `apiVersion: quota.skiff.io/v1
kind: ClusterResourceQuota
metadata:
  name: blue
spec:
  selector:
    labels:
      matchLabels:
        team: blue
  quota:
    hard:
      pods: "2"
      count/configmaps: "10"
`);
    expect(applied.stderr).toBe('');
    expect(applied.stdout.trim()).toBe('clusterresourcequota.quota.skiff.io/blue created');
    await until('both namespaces counted', async () => {
      const r = await c.kubectl(['get', 'clusterresourcequota', 'blue', '-o', 'jsonpath={.status.namespaces[*].status.used.pods}']);
      return r.stdout === '0 0';
    });
    expect((await c.kubectl(['run', 'a', '-n', 'cq1', '--image=busybox'])).stderr).toBe('');
    expect((await c.kubectl(['run', 'b', '-n', 'cq2', '--image=busybox'])).stderr).toBe('');
    const refused = await c.kubectl(['run', 'c', '-n', 'cq2', '--image=busybox']);
    expect(refused.stderr.trim()).toBe('Error from server (Forbidden): pods "c" is forbidden: exceeded quota: blue, requested: pods=1, used: pods=2, limited: pods=2');
    await until('used 2', async () => (await c.kubectl(['get', 'clusterquota', 'blue', '-o', 'jsonpath={.status.total.used.pods}'])).stdout === '2');

    const table = await c.kubectl(['get', 'clusterresourcequota']);
    expect(table.stdout.split('\n')[0]).toMatch(/^NAME\s+NAMESPACES\s+AGE\s+REQUEST\s+LIMIT$/);
    expect(table.stdout).toMatch(/^blue\s+2\s+\S+\s+count\/configmaps: \d+\/10, pods: 2\/2\s*$/m);
    const described = await c.kubectl(['describe', 'clusterresourcequota', 'blue']);
    expect(described.stderr).toBe('');
    // kubectl's generic describer (no built-in one for this kind) prints the fields: each namespace's
    // hard and used, then the total.
    const flat = described.stdout.replace(/\s+/g, ' ');
    expect(flat).toContain('Name: blue');
    expect(flat).toContain(
      'Status: Namespaces: Namespace: cq1 Status: Hard: count/configmaps: 10 Pods: 2 Used: count/configmaps: 1 Pods: 1 ' +
        'Namespace: cq2 Status: Hard: count/configmaps: 10 Pods: 2 Used: count/configmaps: 1 Pods: 1 ' +
        'Total: Hard: count/configmaps: 10 Pods: 2 Used: count/configmaps: 2 Pods: 2',
    );
  }, 120_000);
});
