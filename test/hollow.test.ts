// Hollow nodes (kubemark-style, no containers) on the real stores: they register marked Node objects,
// renew their Leases, report pods bound to them Running with per-node IPs, finish graceful deletion,
// and once stopped the node lifecycle controller sees their leases expire.

import { describe, expect, it } from 'vitest';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import type { ControllerContext } from '../lambdas/controllers/controller.ts';
import { createNodeLifecycleController, UNREACHABLE_TAINT } from '../lambdas/controllers/nodelifecycle.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import type { Backend } from '../lambdas/storage/backend.ts';
import { startHollowNodes } from '../node-agent/hollow.ts';
import { testBackends } from './support/backends.ts';
import { until } from './support/until.ts';

const nodesRes = findResource('', 'v1', 'nodes')!;
const leasesRes = findResource('coordination.k8s.io', 'v1', 'leases')!;
const podsRes = findResource('', 'v1', 'pods')!;
const nsRes = findResource('', 'v1', 'namespaces')!;

const backends = await testBackends('hollow');

async function newCtx(backend: Backend): Promise<ControllerContext> {
  const ctx = new ApiServer({ backend }).controllerContext();
  await ctx.registry.create(nsRes, undefined, { metadata: { name: 'default' } });
  return ctx;
}


const tryGet = async (ctx: ControllerContext, ns: string, name: string) => {
  try {
    return await ctx.registry.get(podsRes, ns, name);
  } catch {
    return undefined;
  }
};

for (const [label, open, enabled] of backends) {
  describe.skipIf(!enabled)(`hollow nodes (${label})`, () => {
    it('register marked nodes, heartbeat, report bound pods Running, finish deletion; stopped nodes go unreachable', async () => {
      const ctx = await newCtx(await open());
      let clock = Date.parse('2026-01-01T00:00:00Z');
      const hollow = await startHollowNodes({ registry: ctx.registry, count: 3, namePrefix: 'hn-', cpu: '8', memory: '32Gi', pods: 50, heartbeatMs: 3_600_000, now: () => new Date(clock) });
      try {
        expect(hollow.nodes).toEqual(['hn-0', 'hn-1', 'hn-2']);
        const nodes = (await ctx.registry.list(nodesRes, undefined)).items;
        expect(nodes.map((n) => n.metadata.name)).toEqual(['hn-0', 'hn-1', 'hn-2']);
        for (const n of nodes) {
          expect(n.metadata.labels).toMatchObject({ 'kubernetes.io/hostname': n.metadata.name, 'kubernetes.io/os': 'linux', 'skiff.io/hollow': 'true' });
          expect(n.metadata.annotations?.['skiff.io/hollow']).toBe('true');
          expect(n.status.allocatable).toEqual({ cpu: '8', memory: '32Gi', pods: '50' });
          expect(n.status.conditions.find((c: any) => c.type === 'Ready').status).toBe('True');
        }
        const lease0 = await ctx.registry.get(leasesRes, 'kube-node-lease', 'hn-1');
        expect(lease0.spec.holderIdentity).toBe('hn-1');
        expect(Date.parse(lease0.spec.renewTime)).toBe(clock);

        // Heartbeat: every lease renewed to the new time.
        clock += 10_000;
        await hollow.heartbeat();
        for (const n of hollow.nodes) expect(Date.parse((await ctx.registry.get(leasesRes, 'kube-node-lease', n)).spec.renewTime)).toBe(clock);

        // Pods bound to hollow nodes become Running with distinct per-node IPs; others are not touched.
        const mk = (name: string, nodeName: string): KubeObject => ({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name },
          spec: { nodeName, containers: [{ name: 'c', image: 'nginx' }] },
        });
        await ctx.registry.create(podsRes, 'default', mk('a', 'hn-0'));
        await ctx.registry.create(podsRes, 'default', mk('b', 'hn-0'));
        await ctx.registry.create(podsRes, 'default', mk('c', 'hn-2'));
        await ctx.registry.create(podsRes, 'default', mk('elsewhere', 'real-node'));
        const running = await until('pods running', async () => {
          const ps = await Promise.all(['a', 'b', 'c'].map((n) => tryGet(ctx, 'default', n)));
          return ps.every((p) => p?.status?.phase === 'Running') ? (ps as KubeObject[]) : undefined;
        }, 10_000);
        const [a, b, c] = running;
        expect(new Set(running.map((p) => p.status.podIP)).size).toBe(3);
        expect(a!.status.podIP.split('.').slice(0, 3)).toEqual(b!.status.podIP.split('.').slice(0, 3));
        expect(a!.status.podIP.split('.').slice(0, 3)).not.toEqual(c!.status.podIP.split('.').slice(0, 3));
        expect(a!.status.conditions.map((x: any) => `${x.type}=${x.status}`).sort()).toEqual(['ContainersReady=True', 'Initialized=True', 'PodScheduled=True', 'Ready=True']);
        expect(a!.status.containerStatuses).toMatchObject([{ name: 'c', ready: true, state: { running: {} } }]);
        expect(a!.status.startTime).toBeDefined();
        expect((await tryGet(ctx, 'default', 'elsewhere'))!.status?.phase).not.toBe('Running');

        // A pod marked finished (a Job's pod whose containers "exited") stays finished: a kubelet never
        // runs a Succeeded pod again. The later pod d shows the watch has gone past b's change.
        await ctx.registry.guaranteedUpdate(podsRes, 'default', 'b', undefined, { subresource: 'status' }, (p) => ({ ...p, status: { ...p.status, phase: 'Succeeded' } }));
        await ctx.registry.create(podsRes, 'default', mk('d', 'hn-1'));
        await until('pod d running', async () => (await tryGet(ctx, 'default', 'd'))?.status?.phase === 'Running', 10_000);
        expect((await tryGet(ctx, 'default', 'b'))!.status.phase).toBe('Succeeded');

        // Graceful deletion (30 s by default for a pod on a node) is completed at once, as a kubelet would.
        const del = await ctx.registry.delete(podsRes, 'default', 'a');
        expect(del.deleted).toBe(false);
        await until('pod a gone', async () => !(await tryGet(ctx, 'default', 'a')), 10_000);
        expect((await tryGet(ctx, 'default', 'elsewhere'))).toBeDefined();

        // hn-2 stops heartbeating: after the grace period the node lifecycle controller taints it.
        hollow.stopNode('hn-2');
        clock += 10_000;
        await hollow.heartbeat();
        clock += 41_000;
        const nlc = createNodeLifecycleController({ now: () => new Date(clock) });
        await hollow.heartbeat();
        for (const n of hollow.nodes) await nlc.reconcile(n, ctx);
        const tainted = (await ctx.registry.list(nodesRes, undefined)).items.filter((n) => (n.spec?.taints ?? []).some((t: any) => t.key === UNREACHABLE_TAINT));
        expect(tainted.map((n) => n.metadata.name)).toEqual(['hn-2']);
      } finally {
        await hollow.stop();
      }
      // After stop() nothing renews leases any more.
      const before = (await ctx.registry.get(leasesRes, 'kube-node-lease', 'hn-0')).spec.renewTime;
      clock += 10_000;
      await hollow.heartbeat();
      expect((await ctx.registry.get(leasesRes, 'kube-node-lease', 'hn-0')).spec.renewTime).toBe(before);
    });
  });
}
