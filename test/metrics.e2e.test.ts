// `kubectl top` on a local cluster (issue #17 item 1): a node agent on the real Docker Engine samples the
// node's and its containers' usage (node-agent/stats.ts); the apiserver serves metrics.k8s.io/v1beta1
// NodeMetrics and PodMetrics from the agents' samples; stock kubectl's `top nodes` and `top pods
// --containers` print them. A pod that burns a CPU shows it.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Docker from 'dockerode';
import { requireDocker, TEST_IMAGE } from './support/docker.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { until } from './support/until.ts';

const docker = await requireDocker();
const NODE = `top-node-${process.pid}`;
const NETWORK = `skiff-top-${process.pid}`;

describe.skipIf(!docker)('kubectl top (metrics.k8s.io from the agents)', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startTestCluster({ agents: 1, requireAgents: true, agentOptions: { nodeName: NODE, network: NETWORK } });
  }, 90_000);
  afterAll(async () => {
    for (const a of c?.agents ?? []) await a.close({ removePods: true });
    await c?.destroy();
    await (docker as Docker).getNetwork(NETWORK).remove().catch(() => {});
  });

  it('top nodes and top pods --containers show a busy pod\'s CPU and every container\'s memory', async () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'busy', labels: { app: 'busy' } },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [
          { name: 'burn', image: TEST_IMAGE, command: ['sh', '-c', 'while :; do :; done'] },
          { name: 'idle', image: TEST_IMAGE, command: ['sleep', '3600'] },
        ],
      },
    };
    expect((await c.kubectl(['apply', '-f', '-'], JSON.stringify(pod))).code).toBe(0);
    await until('busy Running', async () => (await c.kubectl(['get', 'pod', 'busy', '-o', 'jsonpath={.status.phase}'])).stdout === 'Running', 60_000, 250);

    // Two samples (10 s apart) make a CPU rate: until then the pod has no metrics yet.
    const top = await until('kubectl top pods --containers', async () => {
      const r = await c.kubectl(['top', 'pods', '--containers', '--no-headers']);
      return r.code === 0 && r.stdout.includes('burn') ? r.stdout : undefined;
    }, 40_000, 1000);
    // POD NAME CPU(cores) MEMORY(bytes)
    const rows = Object.fromEntries(top.trim().split('\n').map((l) => l.trim().split(/\s+/)).map(([p, name, cpu, mem]) => [`${p}/${name}`, { cpu: cpu!, mem: mem! }]));
    const milli = (q: string) => (q.endsWith('m') ? Number(q.slice(0, -1)) : Number(q) * 1000);
    expect(milli(rows['busy/burn']!.cpu)).toBeGreaterThan(300); // a spinning shell: most of a core
    expect(milli(rows['busy/idle']!.cpu)).toBeLessThan(50);
    expect(rows['busy/idle']!.mem).toMatch(/^\d+Mi$/);

    const nodes = await c.kubectl(['top', 'nodes', '--no-headers']);
    expect(nodes.code, nodes.stderr).toBe(0);
    // NAME CPU(cores) CPU(%) MEMORY(bytes) MEMORY(%)
    const [name, cpu, cpuPct, mem] = nodes.stdout.trim().split(/\s+/);
    expect(name).toBe(NODE);
    expect(milli(cpu!)).toBeGreaterThan(300);
    expect(cpuPct).toMatch(/^\d+%$/);
    expect(mem).toMatch(/^\d+Mi$/);

    // The API itself: a PodMetrics by name, its containers' usage as quantities; a pod with no metrics is a 404.
    const pm = JSON.parse((await c.kubectl(['get', '--raw', '/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/busy'])).stdout);
    expect(pm).toMatchObject({ kind: 'PodMetrics', apiVersion: 'metrics.k8s.io/v1beta1', metadata: { name: 'busy', namespace: 'default' } });
    expect(pm.containers.map((x: { name: string }) => x.name)).toEqual(['burn', 'idle']);
    expect(pm.containers[0].usage.cpu).toMatch(/^\d+n$/);
    expect(pm.window).toMatch(/^\d+s$/);
    const missing = await c.kubectl(['get', '--raw', '/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nope']);
    expect(missing.stderr).toMatch(/NotFound|not found/);
  }, 120_000);

  it('nodes/<node>/proxy passes GETs of the agent\'s metrics and stats through, for whoever may get nodes/proxy', async () => {
    const raw = (path: string, ...extra: string[]) => c.kubectl(['get', '--raw', path, ...extra]);
    const metrics = await raw(`/api/v1/nodes/${NODE}/proxy/metrics`);
    expect(metrics.code, metrics.stderr).toBe(0);
    expect(metrics.stdout).toMatch(/^# HELP kubelet_started_pods_total /m);
    const cadvisor = await raw(`/api/v1/nodes/${NODE}/proxy/metrics/cadvisor`);
    expect(cadvisor.stdout).toMatch(/^container_memory_working_set_bytes\{.*pod="busy"/m);
    const summary = JSON.parse((await raw(`/api/v1/nodes/${NODE}/proxy/stats/summary`)).stdout);
    expect(summary.node.nodeName).toBe(NODE);
    expect(summary.pods.map((p: { podRef: { name: string } }) => p.podRef.name)).toContain('busy');
    // Discovery lists it, as kube-apiserver does (get only: the agents serve reads).
    const v1 = JSON.parse((await raw('/api/v1')).stdout);
    expect(v1.resources.find((r: { name: string }) => r.name === 'nodes/proxy')).toMatchObject({ kind: 'NodeProxyOptions', verbs: ['get'] });

    // Authorization: a user with no grant is refused before the agent is asked; a grant of nodes/proxy opens it.
    const denied = await raw(`/api/v1/nodes/${NODE}/proxy/metrics`, '--as=scraper');
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/forbidden.*nodes\/proxy/i);
    expect((await c.kubectl(['create', 'clusterrole', 'node-proxy-reader', '--verb=get', '--resource=nodes/proxy'])).code).toBe(0);
    expect((await c.kubectl(['create', 'clusterrolebinding', 'scraper-node-proxy', '--clusterrole=node-proxy-reader', '--user=scraper'])).code).toBe(0);
    const allowed = await until('the grant applies', async () => {
      const r = await raw(`/api/v1/nodes/${NODE}/proxy/metrics`, '--as=scraper');
      return r.code === 0 ? r.stdout : undefined;
    }, 10_000, 200);
    expect(allowed).toMatch(/kubelet_started_pods_total/);

    // Bad input: a path the agent does not serve read-only, an unknown node, a write.
    expect((await raw(`/api/v1/nodes/${NODE}/proxy/containerLogs/default/busy/burn`)).stderr).toMatch(/NotFound|not found/i);
    expect((await raw(`/api/v1/nodes/${NODE}/proxy/../../metrics`)).code).not.toBe(0);
    expect((await raw('/api/v1/nodes/no-such-node/proxy/metrics')).stderr).toMatch(/nodes "no-such-node" not found/);
    const put = await c.kubectl(['replace', '--raw', `/api/v1/nodes/${NODE}/proxy/metrics`, '-f', '-'], '{}');
    expect(put.code).not.toBe(0);
    expect(put.stderr).toMatch(/MethodNotAllowed|method not allowed|405/i);
  }, 60_000);
});
