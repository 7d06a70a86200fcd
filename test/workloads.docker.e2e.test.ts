// Workloads on two real nodes (two node agents on the Docker Engine, each its own node name, Docker network
// and pod subnet, as two `skiff agent`s would be), driven with stock kubectl: `kubectl drain` held by a
// PodDisruptionBudget, then allowed once the budget is relaxed, its pods replaced on the other node; and a
// CronJob firing on its own, its Job's pod a real container that runs to completion.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Docker from 'dockerode';
import { startLocalAgents } from '../lambdas/local/agents.ts';
import type { Agent } from '../node-agent/agent.ts';
import { LABELS } from '../node-agent/runtime.ts';
import { requireDocker, TEST_IMAGE } from './support/docker.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { until } from './support/until.ts';

const docker = await requireDocker();

describe.skipIf(!docker)('workloads on two Docker agents (kubectl end to end)', () => {
  let c: TestCluster;
  const agents: Agent[] = [];
  const engine = docker as Docker;
  const names = [`wl-a-${process.pid}`, `wl-b-${process.pid}`];
  const nets = names.map((n) => `skiff-${n}`);
  const kubectl = async (...args: string[]) => {
    const r = await c.kubectl(args);
    expect(r.code, `kubectl ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.stdout;
  };
  const pods = async (selector: string) =>
    JSON.parse(await kubectl('get', 'pods', '-l', selector, '-o', 'json')).items.filter((p: any) => !p.metadata.deletionTimestamp);
  const containersOn = async (node: string, uid: string) => engine.listContainers({ filters: { label: [`${LABELS.node}=${node}`, `${LABELS.uid}=${uid}`] } });

  beforeAll(async () => {
    c = await startTestCluster({ agents: 0 });
    for (const [i, nodeName] of names.entries()) {
      const [a] = await startLocalAgents({
        count: 1,
        backend: c.backend,
        server: c.url,
        caCert: c.caCert,
        dataDir: c.dataDir,
        agent: { nodeName, network: nets[i], backoffBaseMs: 1000, backoffMaxMs: 8000, heartbeatMs: 2000, resyncMs: 3000, proxy: false },
      });
      agents.push(a!);
    }
  }, 120_000);
  afterAll(async () => {
    for (const a of agents) await a.close({ removePods: true });
    for (const n of names) {
      const left = await engine.listContainers({ all: true, filters: { label: [`${LABELS.node}=${n}`] } });
      for (const x of left) await engine.getContainer(x.Id).remove({ force: true }).catch(() => {});
    }
    await c?.destroy();
    for (const n of nets) await engine.getNetwork(n).remove().catch(() => {});
  });

  it('kubectl drain waits for a PodDisruptionBudget, then moves the pods to the other node', async () => {
    const [a, b] = names as [string, string];
    // Both replicas on node a: b is cordoned while they start.
    await kubectl('cordon', b);
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web' },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'web', image: TEST_IMAGE, command: ['sleep', '3600'] }] },
        },
      },
    };
    let r = await c.kubectl(['apply', '-f', '-'], JSON.stringify(deployment));
    expect(r.code, r.stderr).toBe(0);
    expect((await c.kubectl(['rollout', 'status', 'deployment/web', '--timeout=120s'])).code).toBe(0);
    expect((await pods('app=web')).map((p: any) => p.spec.nodeName)).toEqual([a, a]);
    await kubectl('uncordon', b);

    // A budget that allows no disruption: the drain is refused, eviction after eviction, until its timeout.
    r = await c.kubectl(['create', 'poddisruptionbudget', 'web', '--selector=app=web', '--min-available=2']);
    expect(r.code, r.stderr).toBe(0);
    await until('the budget observed', async () => JSON.parse(await kubectl('get', 'pdb', 'web', '-o', 'json')).status?.currentHealthy === 2, 30_000);
    const held = await c.kubectl(['drain', a, '--ignore-daemonsets', '--timeout=12s']);
    expect(held.code).not.toBe(0);
    expect(held.stderr).toContain("Cannot evict pod as it would violate the pod's disruption budget.");
    expect((await pods('app=web')).map((p: any) => p.spec.nodeName)).toEqual([a, a]);

    // Relaxed: the drain evicts one pod at a time as the budget allows, and the replacements run on b.
    await kubectl('patch', 'pdb', 'web', '--type=merge', '-p', '{"spec":{"minAvailable":1}}');
    const drained = await c.kubectl(['drain', a, '--ignore-daemonsets', '--timeout=120s']);
    expect(drained.code, drained.stderr).toBe(0);
    expect(drained.stdout).toContain(`node/${a} drained`);
    const moved = await until('two web pods Running on the other node', async () => {
      const ps = await pods('app=web');
      return ps.length === 2 && ps.every((p: any) => p.spec.nodeName === b && p.status.phase === 'Running') && ps;
    }, 120_000);
    for (const p of moved) expect((await containersOn(b, p.metadata.uid)).length).toBeGreaterThanOrEqual(1);
    expect(await engine.listContainers({ filters: { label: [`${LABELS.node}=${a}`, `${LABELS.container}=web`] } })).toEqual([]);
    await kubectl('uncordon', a);
  }, 300_000);

  it('a CronJob fires at the next minute and its Job runs a real container to completion', async () => {
    const r = await c.kubectl(['create', 'cronjob', 'tick', `--image=${TEST_IMAGE}`, '--schedule=*/1 * * * *', '--', 'sh', '-c', 'echo tick from $(hostname)']);
    expect(r.code, r.stderr).toBe(0);
    const job = await until('a Job made by the CronJob', async () => JSON.parse(await kubectl('get', 'jobs', '-o', 'json')).items.find((j: any) => j.metadata.ownerReferences?.[0]?.name === 'tick'), 90_000, 500);
    // Named by its scheduled minute, as kube names them.
    expect(job.metadata.name).toMatch(/^tick-\d+$/);
    expect((await c.kubectl(['wait', '--for=condition=complete', `job/${job.metadata.name}`, '--timeout=90s'])).code).toBe(0);
    expect((await kubectl('logs', `job/${job.metadata.name}`)).trim()).toMatch(/^tick from tick-\d+-\w+$/);
    const cj = JSON.parse(await kubectl('get', 'cronjob', 'tick', '-o', 'json'));
    expect(cj.status.lastScheduleTime).toBeTruthy();
    await until('lastSuccessfulTime recorded', async () => JSON.parse(await kubectl('get', 'cronjob', 'tick', '-o', 'json')).status.lastSuccessfulTime, 30_000);
    await kubectl('delete', 'cronjob', 'tick');
  }, 240_000);
});
