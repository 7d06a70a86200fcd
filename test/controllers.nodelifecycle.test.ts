// Node lifecycle on the real stores (SQLite, DynamoDB through moto) with an injected clock: a lease
// that stops being renewed makes the node Unknown and tainted unreachable; pods go once their
// toleration (added by the DefaultTolerationSeconds admission plugin) runs out and not before; pods
// tolerating it forever stay; a renewed lease removes the taint. Also the admission plugin itself.

import { describe, expect, it } from 'vitest';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { namespaceLifecycle } from '../lambdas/apiserver/admission.ts';
import { defaultTolerationSeconds } from '../lambdas/apiserver/admission-tolerations.ts';
import type { ControllerContext } from '../lambdas/controllers/controller.ts';
import { createNodeLifecycleController, goneNodeKey, NODE_LEASE_NAMESPACE, SILENT_SINCE_ANNOTATION, silentNodeKey, UNREACHABLE_TAINT } from '../lambdas/controllers/nodelifecycle.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import type { Backend } from '../lambdas/storage/backend.ts';
import { testBackends } from './support/backends.ts';
import { handleInstanceState, isInstanceStateEvent } from '../lambdas/controllers/instance-events.ts';

const nodesRes = findResource('', 'v1', 'nodes')!;
const leasesRes = findResource('coordination.k8s.io', 'v1', 'leases')!;
const podsRes = findResource('', 'v1', 'pods')!;
const eventsRes = findResource('', 'v1', 'events')!;
const nsRes = findResource('', 'v1', 'namespaces')!;

const backends = await testBackends('nlc');

const T0 = Date.parse('2026-01-01T00:00:00Z');

async function newCtx(backend: Backend): Promise<ControllerContext> {
  const ctx = new ApiServer({ backend, admission: [namespaceLifecycle, defaultTolerationSeconds(300)] }).controllerContext();
  await ctx.registry.create(nsRes, undefined, { metadata: { name: 'default' } });
  await ctx.registry.create(nsRes, undefined, { metadata: { name: NODE_LEASE_NAMESPACE } });
  return ctx;
}

async function addNode(ctx: ControllerContext, name: string, renewAt: number, leaseDurationSeconds = 40): Promise<void> {
  await ctx.registry.create(nodesRes, undefined, {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name },
    status: {
      capacity: { cpu: '4', memory: '8Gi', pods: '110' },
      conditions: [
        { type: 'Ready', status: 'True', reason: 'KubeletReady' },
        { type: 'MemoryPressure', status: 'False', reason: 'KubeletHasSufficientMemory' },
      ],
    },
  });
  await ctx.registry.create(leasesRes, NODE_LEASE_NAMESPACE, {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name },
    spec: { holderIdentity: name, leaseDurationSeconds, renewTime: new Date(renewAt).toISOString() },
  });
}

async function renew(ctx: ControllerContext, name: string, at: number): Promise<void> {
  await ctx.registry.guaranteedUpdate(leasesRes, NODE_LEASE_NAMESPACE, name, undefined, {}, (l) => ({ ...l, spec: { ...l.spec, renewTime: new Date(at).toISOString() } }));
}

/** A pod created through admission (so it gets the default tolerations), then bound to the node. */
async function addPod(ctx: ControllerContext, name: string, node: string, tolerations?: any[]): Promise<void> {
  await ctx.create(podsRes, 'default', {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: { containers: [{ name: 'c', image: 'nginx' }], nodeName: node, ...(tolerations ? { tolerations } : {}) },
  });
}

const podNames = async (ctx: ControllerContext) => (await ctx.registry.list(podsRes, 'default')).items.map((p) => p.metadata.name).sort();
const node = (ctx: ControllerContext, n: string) => ctx.registry.get(nodesRes, undefined, n);
const hasTaint = (n: KubeObject) => (n.spec?.taints ?? []).some((t: any) => t.key === UNREACHABLE_TAINT && t.effect === 'NoExecute');

describe('DefaultTolerationSeconds admission', () => {
  it('adds not-ready and unreachable NoExecute tolerations, keeping a pod\'s own', async () => {
    const plugin = defaultTolerationSeconds(120);
    const user = { username: 'u', groups: [] };
    const p1: KubeObject = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a' }, spec: { containers: [] } };
    await plugin.admit({ operation: 'CREATE', resource: podsRes, namespace: 'default', object: p1, user }, undefined as any);
    expect(p1.spec.tolerations).toEqual([
      { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 120 },
      { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 120 },
    ]);
    const own = { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute' };
    const p2: KubeObject = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'b' }, spec: { containers: [], tolerations: [own] } };
    await plugin.admit({ operation: 'CREATE', resource: podsRes, namespace: 'default', object: p2, user }, undefined as any);
    expect(p2.spec.tolerations).toEqual([own, { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 120 }]);
    // Updates and other kinds are left alone.
    const p3: KubeObject = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'c' }, spec: { containers: [] } };
    await plugin.admit({ operation: 'UPDATE', resource: podsRes, namespace: 'default', object: p3, user }, undefined as any);
    expect(p3.spec.tolerations).toBeUndefined();
  });
});

for (const [label, open, enabled] of backends) {
  describe.skipIf(!enabled)(`node lifecycle controller (${label})`, () => {
    it('a lease declaring a longer duration than the grace period (a cloud agent renewing every 60 s) is late only when it runs out', async () => {
      const ctx = await newCtx(await open());
      let now = T0;
      const c = createNodeLifecycleController({ gracePeriodMs: 40_000, now: () => new Date(now) });
      await addNode(ctx, 'slow', T0, 240);
      now = T0 + 200_000; // past the 40 s default grace, within the declared 240 s
      const r = await c.reconcile('slow', ctx);
      expect(hasTaint(await node(ctx, 'slow'))).toBe(false);
      expect(r?.requeueAfterMs).toBe(41_000);
      now = T0 + 241_000;
      await c.reconcile('slow', ctx);
      expect(hasTaint(await node(ctx, 'slow'))).toBe(true);
    });

    it('expired lease: Unknown + unreachable taint; evicts after tolerationSeconds, not before; forever-tolerating pods stay; renewal removes the taint', async () => {
      const ctx = await newCtx(await open());
      let now = T0;
      const c = createNodeLifecycleController({ gracePeriodMs: 40_000, now: () => new Date(now) });
      await addNode(ctx, 'n1', T0);
      await addNode(ctx, 'n2', T0);
      await addPod(ctx, 'default-tol', 'n1');
      await addPod(ctx, 'forever', 'n1', [{ key: UNREACHABLE_TAINT, operator: 'Exists', effect: 'NoExecute' }]);
      await addPod(ctx, 'short', 'n1', [{ key: UNREACHABLE_TAINT, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 10 }]);
      await addPod(ctx, 'on-n2', 'n2');
      const p = await ctx.registry.get(podsRes, 'default', 'default-tol');
      expect(p.spec.tolerations.find((t: any) => t.key === UNREACHABLE_TAINT).tolerationSeconds).toBe(300);

      // Within the grace period: nothing happens; requeue around the expiry.
      now = T0 + 30_000;
      const r0 = await c.reconcile('n1', ctx);
      expect(hasTaint(await node(ctx, 'n1'))).toBe(false);
      expect(r0?.requeueAfterMs).toBeGreaterThan(0);
      expect(r0!.requeueAfterMs!).toBeLessThanOrEqual(11_000);

      // n2 keeps heartbeating; n1 stops.
      now = T0 + 41_000;
      await renew(ctx, 'n2', now);
      await c.reconcile('n1', ctx);
      await c.reconcile('n2', ctx);
      const n1 = await node(ctx, 'n1');
      expect(hasTaint(n1)).toBe(true);
      // kube's two: NoSchedule keeps new pods off (even those tolerating NoExecute a while), NoExecute evicts.
      expect(n1.spec.taints).toEqual([
        { key: UNREACHABLE_TAINT, effect: 'NoSchedule', timeAdded: '2026-01-01T00:00:41Z' },
        { key: UNREACHABLE_TAINT, effect: 'NoExecute', timeAdded: '2026-01-01T00:00:41Z' },
      ]);
      for (const cond of n1.status.conditions) {
        expect(cond).toMatchObject({ status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.' });
      }
      expect(hasTaint(await node(ctx, 'n2'))).toBe(false);
      // The short toleration (10 s) has not run out yet: nothing evicted.
      expect(await podNames(ctx)).toEqual(['default-tol', 'forever', 'on-n2', 'short']);

      now = T0 + 50_000;
      const r1 = await c.reconcile('n1', ctx);
      expect(await podNames(ctx)).toEqual(['default-tol', 'forever', 'on-n2', 'short']);
      expect(r1!.requeueAfterMs!).toBeLessThanOrEqual(1_100);

      now = T0 + 51_000;
      await c.reconcile('n1', ctx);
      await c.reconcile('n1', ctx); // a duplicate is harmless
      expect(await podNames(ctx)).toEqual(['default-tol', 'forever', 'on-n2']);
      const evs = (await ctx.registry.list(eventsRes, 'default')).items;
      expect(evs.map((e) => [e.reason, e.involvedObject.name])).toEqual([['TaintManagerEviction', 'short']]);

      // 300 s after the taint, the default toleration runs out; the forever one does not.
      now = T0 + 41_000 + 299_000;
      await c.reconcile('n1', ctx);
      expect(await podNames(ctx)).toEqual(['default-tol', 'forever', 'on-n2']);
      now = T0 + 41_000 + 300_000;
      await c.reconcile('n1', ctx);
      expect(await podNames(ctx)).toEqual(['forever', 'on-n2']);
      now += 3_600_000;
      await c.reconcile('n1', ctx);
      expect(await podNames(ctx)).toEqual(['forever', 'on-n2']);

      // The node comes back: the taint goes.
      await renew(ctx, 'n1', now);
      await c.reconcile('n1', ctx);
      expect(hasTaint(await node(ctx, 'n1'))).toBe(false);
    });

    it('a reconcile after a long silence reaches the same state as step-by-step ones; eviction can be disabled', async () => {
      const ctx = await newCtx(await open());
      let now = T0;
      const off = createNodeLifecycleController({ gracePeriodMs: 40_000, evictionEnabled: false, now: () => new Date(now) });
      await addNode(ctx, 'n1', T0);
      await addPod(ctx, 'p', 'n1', [{ key: UNREACHABLE_TAINT, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 0 }]);
      now = T0 + 100_000;
      await off.reconcile('n1', ctx);
      expect(hasTaint(await node(ctx, 'n1'))).toBe(true);
      expect(await podNames(ctx)).toEqual(['p']);
      const on = createNodeLifecycleController({ gracePeriodMs: 40_000, now: () => new Date(now) });
      await on.reconcile('n1', ctx);
      expect(await podNames(ctx)).toEqual([]);
      // keys: node events and node leases map to the node; other leases do not.
      const lease = await ctx.registry.get(leasesRes, NODE_LEASE_NAMESPACE, 'n1');
      expect(on.keys({ type: 'MODIFIED', resource: leasesRes, object: lease })).toEqual(['n1']);
      expect(on.keys({ type: 'MODIFIED', resource: leasesRes, object: { ...lease, metadata: { ...lease.metadata, namespace: 'default' } } })).toEqual([]);
      expect(await on.allKeys(ctx)).toEqual(['n1']);
    });

    it('a deleted node takes its pods with it (kube\'s pod GC of orphans), with an event each; other nodes\' pods stay', async () => {
      const ctx = await newCtx(await open());
      const c = createNodeLifecycleController({ gracePeriodMs: 40_000, now: () => new Date(T0) });
      await addNode(ctx, 'gone', T0);
      await addNode(ctx, 'kept', T0);
      await addPod(ctx, 'a', 'gone');
      await addPod(ctx, 'b', 'gone');
      await addPod(ctx, 'c', 'kept');
      const deleted = (await ctx.registry.delete(nodesRes, undefined, 'gone')).object;
      // A plain key of a missing node (a lease that is no node's) looks for no pods.
      await c.reconcile('gone', ctx);
      expect(await podNames(ctx)).toEqual(['a', 'b', 'c']);
      // The node's DELETED event gives the gone-node key; its reconcile finds the node gone.
      expect(c.keys({ type: 'DELETED', resource: nodesRes, object: deleted })).toEqual([goneNodeKey('gone')]);
      await c.reconcile(goneNodeKey('gone'), ctx);
      expect(await podNames(ctx)).toEqual(['c']);
      const events = (await ctx.registry.list(eventsRes, 'default')).items.filter((e) => e.reason === 'PodGCOrphaned');
      expect(events.map((e) => e.message).sort()).toEqual([
        'Deleting pod default/a bound to node gone, which does not exist',
        'Deleting pod default/b bound to node gone, which does not exist',
      ]);
      // Again: nothing left to do. A node that exists keeps its pods.
      await c.reconcile(goneNodeKey('gone'), ctx);
      await c.reconcile('kept', ctx);
      expect(await podNames(ctx)).toEqual(['c']);
    });

    it('a dead man\'s switch firing (silent:<node>) makes a node with a long, unexpired lease unreachable now; its next renewal makes it reachable again', async () => {
      const ctx = await newCtx(await open());
      let now = T0;
      const c = createNodeLifecycleController({ gracePeriodMs: 40_000, now: () => new Date(now) });
      await addNode(ctx, 'quiet', T0, 480); // renews every 120 s: its lease alone says nothing for 8 minutes
      await addPod(ctx, 'p', 'quiet');
      now = T0 + 60_000;
      await c.reconcile('quiet', ctx);
      expect(hasTaint(await node(ctx, 'quiet'))).toBe(false);
      // The switch fires (the agent stopped moving it 40 s ago): unreachable at once, Ready Unknown.
      await c.reconcile(silentNodeKey('quiet'), ctx);
      const n = await node(ctx, 'quiet');
      expect(hasTaint(n)).toBe(true);
      expect(n.metadata.annotations?.[SILENT_SINCE_ANNOTATION]).toBe('2026-01-01T00:01:00Z');
      expect(n.status.conditions.find((x: any) => x.type === 'Ready')).toMatchObject({ status: 'Unknown', reason: 'NodeStatusUnknown' });
      // A redelivered firing, a resync: the same state; the pod stays within its 300 s toleration.
      await c.reconcile(silentNodeKey('quiet'), ctx);
      now = T0 + 90_000;
      await c.reconcile('quiet', ctx);
      expect(hasTaint(await node(ctx, 'quiet'))).toBe(true);
      expect(await podNames(ctx)).toEqual(['p']);
      // Back: it renews its lease; the taint goes.
      now = T0 + 120_000;
      await renew(ctx, 'quiet', now);
      await c.reconcile('quiet', ctx);
      expect(hasTaint(await node(ctx, 'quiet'))).toBe(false);
      // A firing for a node that no longer exists changes nothing.
      await expect(c.reconcile(silentNodeKey('nobody'), ctx)).resolves.toBeUndefined();
    });

    it('an EC2 instance shutting down or terminated (EventBridge) deletes its Node and its pods at once; other instances and states change nothing', async () => {
      const ctx = await newCtx(await open());
      const c = createNodeLifecycleController({ gracePeriodMs: 40_000, now: () => new Date(T0) });
      for (const [n, id] of [['ip-10-0-0-1', 'i-0aaa'], ['ip-10-0-0-2', 'i-0bbb']]) {
        await addNode(ctx, n!, T0);
        await ctx.registry.guaranteedUpdate(nodesRes, undefined, n!, undefined, {}, (o) => ({ ...o, spec: { ...o.spec, providerID: `aws:///us-east-1a/${id}` } }));
      }
      await addPod(ctx, 'a', 'ip-10-0-0-1');
      await addPod(ctx, 'b', 'ip-10-0-0-2');
      const event = (id: string, state: string) => ({ source: 'aws.ec2', 'detail-type': 'EC2 Instance State-change Notification', detail: { 'instance-id': id, state } });
      expect(isInstanceStateEvent(event('i-0aaa', 'terminated'))).toBe(true);
      expect(isInstanceStateEvent({ source: 'aws.events' })).toBe(false);
      // Not a node's instance, or a state it may come back from: nothing.
      expect(await handleInstanceState(c, ctx, event('i-0ccc', 'terminated') as never)).toBeUndefined();
      expect(await handleInstanceState(c, ctx, event('i-0aaa', 'stopping') as never)).toBeUndefined();
      expect((await ctx.registry.list(nodesRes, undefined)).items.map((n) => n.metadata.name).sort()).toEqual(['ip-10-0-0-1', 'ip-10-0-0-2']);
      // Its instance shutting down: the Node and its pod go now.
      expect(await handleInstanceState(c, ctx, event('i-0aaa', 'shutting-down') as never)).toBe('ip-10-0-0-1');
      expect((await ctx.registry.list(nodesRes, undefined)).items.map((n) => n.metadata.name)).toEqual(['ip-10-0-0-2']);
      expect(await podNames(ctx)).toEqual(['b']);
      // The terminated event that follows (at least once, maybe twice) changes nothing more.
      expect(await handleInstanceState(c, ctx, event('i-0aaa', 'terminated') as never)).toBeUndefined();
      expect(await podNames(ctx)).toEqual(['b']);
    });
  });
}
