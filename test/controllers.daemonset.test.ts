// The DaemonSet controller on the real stores (SQLite, and DynamoDB through moto): one pod per eligible
// node (nodeSelector, taints and the daemon tolerations), pods following nodes that join and leave, the
// node-name affinity the scheduler binds by, ControllerRevision history (rollout, undo, history limit),
// RollingUpdate with maxUnavailable and with maxSurge, OnDelete, status; and duplicated or reordered
// delivery reaching the clean-delivery state.

import { describe, expect, it } from 'vitest';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import type { ChangeEvent, ControllerContext } from '../lambdas/controllers/controller.ts';
import { daemonPodName, daemonSetController as dsc, nodeShouldRunDaemonPod, targetNode } from '../lambdas/controllers/daemonset.ts';
import { hashRevision, templatePatch } from '../lambdas/controllers/history.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import type { Backend } from '../lambdas/storage/backend.ts';
import { testStores } from './support/backends.ts';

const dsRes = findResource('apps', 'v1', 'daemonsets')!;
const crRes = findResource('apps', 'v1', 'controllerrevisions')!;
const podsRes = findResource('', 'v1', 'pods')!;
const nodesRes = findResource('', 'v1', 'nodes')!;
const eventsRes = findResource('', 'v1', 'events')!;
const nsRes = findResource('', 'v1', 'namespaces')!;

const backends = await testStores('ds');

async function newCtx(open: () => Backend): Promise<ControllerContext> {
  const ctx = new ApiServer({ backend: open() }).controllerContext();
  try {
    await ctx.registry.create(nsRes, undefined, { metadata: { name: 'default' } });
  } catch {
    // a second instance over the same store: already there
  }
  return ctx;
}

function nodeObj(name: string, labels: Record<string, string> = {}, taints: unknown[] = []): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } },
    spec: taints.length ? { taints } : {},
    status: { conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

function dsObj(name: string, extra: Record<string, unknown> = {}, podSpec: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name },
    spec: {
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'busybox:1' }], ...podSpec } },
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } },
      revisionHistoryLimit: 10,
      ...extra,
    },
  };
}

const podsOf = async (ctx: ControllerContext) => (await ctx.registry.list(podsRes, 'default')).items.filter((p) => !p.metadata.deletionTimestamp);
const byNode = async (ctx: ControllerContext) => Object.fromEntries((await podsOf(ctx)).map((p) => [targetNode(p), p]).sort());
const revisionsOf = async (ctx: ControllerContext) => (await ctx.registry.list(crRes, 'default')).items.sort((a, b) => a.revision - b.revision);

async function settle(ctx: ControllerContext, rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) for (const k of await dsc.allKeys(ctx)) await dsc.reconcile(k, ctx);
}

/** What the scheduler and a kubelet would do: bind each pod to its target node, Running and Ready. */
async function runAll(ctx: ControllerContext): Promise<void> {
  for (const p of await podsOf(ctx)) {
    if (p.status?.phase === 'Running') continue;
    await ctx.registry.guaranteedUpdate(podsRes, 'default', p.metadata.name!, undefined, { subresource: 'status' }, (cur) => ({
      ...cur,
      status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: '2020-01-01T00:00:00Z' }] },
    }));
  }
}

const getDS = (ctx: ControllerContext, name: string) => ctx.registry.get(dsRes, 'default', name);

for (const [label, makeStore, enabled] of backends) {
  describe.skipIf(!enabled)(`daemonset controller on ${label}`, () => {
    it('one pod per eligible node (nodeSelector, taints, daemon tolerations), with node-name affinity and a revision', async () => {
      const ctx = await newCtx(await makeStore());
      await ctx.registry.create(nodesRes, undefined, nodeObj('n1', { disk: 'ssd' }));
      await ctx.registry.create(nodesRes, undefined, nodeObj('n2', { disk: 'ssd' }, [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }]));
      await ctx.registry.create(nodesRes, undefined, nodeObj('n3', { disk: 'hdd' }));
      // Tolerated by every daemon pod: not-ready (NoExecute) and unschedulable (NoSchedule).
      await ctx.registry.create(nodesRes, undefined, nodeObj('n4', { disk: 'ssd' }, [{ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }, { key: 'node.kubernetes.io/not-ready', effect: 'NoExecute' }]));
      const ds = await ctx.registry.create(dsRes, 'default', dsObj('agent', {}, { nodeSelector: { disk: 'ssd' } }));
      await dsc.reconcile('default/agent', ctx);

      const got = await byNode(ctx);
      expect(Object.keys(got)).toEqual(['n1', 'n4']);
      const [cr] = await revisionsOf(ctx);
      const hash = hashRevision(templatePatch(ds));
      expect(cr).toMatchObject({ metadata: { name: `agent-${hash}`, labels: { app: 'agent', 'controller-revision-hash': hash } }, revision: 1 });
      expect(cr!.data).toEqual({ spec: { template: { ...ds.spec.template, $patch: 'replace' } } });
      expect(cr!.metadata.ownerReferences).toEqual([{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'agent', uid: ds.metadata.uid, controller: true, blockOwnerDeletion: true }]);
      const p = got.n1!;
      expect(p.metadata.name).toBe(daemonPodName(ds, 'n1', hash));
      expect(p.metadata.labels).toEqual({ app: 'agent', 'pod-template-generation': '1', 'controller-revision-hash': hash });
      expect(p.spec.nodeName).toBeUndefined(); // the scheduler binds it
      expect(p.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution).toEqual({
        nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }] }],
      });
      expect(p.spec.tolerations.map((t: any) => `${t.key}:${t.operator}:${t.effect}`)).toEqual([
        'node.kubernetes.io/not-ready:Exists:NoExecute',
        'node.kubernetes.io/unreachable:Exists:NoExecute',
        'node.kubernetes.io/disk-pressure:Exists:NoSchedule',
        'node.kubernetes.io/memory-pressure:Exists:NoSchedule',
        'node.kubernetes.io/pid-pressure:Exists:NoSchedule',
        'node.kubernetes.io/unschedulable:Exists:NoSchedule',
      ]);
      let st = (await getDS(ctx, 'agent')).status;
      expect(st).toMatchObject({ desiredNumberScheduled: 2, currentNumberScheduled: 2, numberMisscheduled: 0, numberReady: 0, numberUnavailable: 2, updatedNumberScheduled: 2, observedGeneration: 1 });
      const evs = (await ctx.registry.list(eventsRes, 'default')).items.filter((e) => e.reason === 'SuccessfulCreate');
      expect(evs.map((e) => e.message).sort()).toEqual([`Created pod: ${got.n1!.metadata.name}`, `Created pod: ${got.n4!.metadata.name}`].sort());

      await runAll(ctx);
      await dsc.reconcile('default/agent', ctx);
      st = (await getDS(ctx, 'agent')).status;
      expect(st).toMatchObject({ desiredNumberScheduled: 2, numberReady: 2, numberAvailable: 2, updatedNumberScheduled: 2 });
      expect(st.numberUnavailable).toBeUndefined();

      // A toleration in the template opens n2.
      await ctx.registry.guaranteedUpdate(dsRes, 'default', 'agent', undefined, {}, (cur) => {
        cur.spec.template.spec.tolerations = [{ key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoSchedule' }];
        return cur;
      });
      await dsc.reconcile('default/agent', ctx);
      expect(Object.keys(await byNode(ctx))).toContain('n2');
    });

    it('pods follow nodes: added, tainted (NoExecute removes, NoSchedule keeps), deleted; heartbeats map to no key', async () => {
      const ctx = await newCtx(await makeStore());
      await ctx.registry.create(nodesRes, undefined, nodeObj('a'));
      await ctx.registry.create(dsRes, 'default', dsObj('logs'));
      await dsc.reconcile('default/logs', ctx);
      expect(Object.keys(await byNode(ctx))).toEqual(['a']);

      const b = await ctx.registry.create(nodesRes, undefined, nodeObj('b'));
      const keys = dsc.keys({ type: 'ADDED', resource: nodesRes, object: b });
      expect(keys).toEqual(['*']);
      for (const k of keys) await dsc.reconcile(k, ctx);
      expect(Object.keys(await byNode(ctx))).toEqual(['a', 'b']);

      // A heartbeat (status only) maps to no key; a taint change does.
      const beat = { ...b, status: { conditions: [{ type: 'Ready', status: 'True', lastHeartbeatTime: '2030-01-01T00:00:00Z' }] } };
      expect(dsc.keys({ type: 'MODIFIED', resource: nodesRes, object: beat, oldObject: b })).toEqual([]);
      const tainted = await ctx.registry.guaranteedUpdate(nodesRes, undefined, 'b', undefined, {}, (cur) => ({ ...cur, spec: { taints: [{ key: 'evict', effect: 'NoExecute' }] } }));
      for (const k of dsc.keys({ type: 'MODIFIED', resource: nodesRes, object: tainted, oldObject: b })) await dsc.reconcile(k, ctx);
      expect(Object.keys(await byNode(ctx))).toEqual(['a']);

      // A NoSchedule taint keeps new pods off, but a running one stays (misscheduled in status).
      await ctx.registry.guaranteedUpdate(nodesRes, undefined, 'a', undefined, {}, (cur) => ({ ...cur, spec: { taints: [{ key: 'soft', effect: 'NoSchedule' }] } }));
      await dsc.reconcile('*', ctx);
      expect(Object.keys(await byNode(ctx))).toEqual(['a']);
      expect((await getDS(ctx, 'logs')).status).toMatchObject({ desiredNumberScheduled: 0, currentNumberScheduled: 0, numberMisscheduled: 1 });

      const gone = (await ctx.registry.delete(nodesRes, undefined, 'a')).object;
      for (const k of dsc.keys({ type: 'DELETED', resource: nodesRes, object: gone })) await dsc.reconcile(k, ctx);
      expect(await podsOf(ctx)).toEqual([]);
    });

    it('rolls a template change out with maxUnavailable, keeps history, and undo reuses the old revision', async () => {
      const ctx = await newCtx(await makeStore());
      for (const n of ['n1', 'n2', 'n3']) await ctx.registry.create(nodesRes, undefined, nodeObj(n));
      const ds = await ctx.registry.create(dsRes, 'default', dsObj('roll'));
      await settle(ctx);
      await runAll(ctx);
      await settle(ctx, 1);
      const v1 = hashRevision(templatePatch(ds));
      const updated = await ctx.registry.guaranteedUpdate(dsRes, 'default', 'roll', undefined, {}, (cur) => {
        cur.spec.template.spec.containers[0].image = 'busybox:2';
        return cur;
      });
      const v2 = hashRevision(templatePatch(updated));
      // Step by step: never more than one node without an available pod.
      for (let i = 0; i < 12; i++) {
        await dsc.reconcile('default/roll', ctx);
        const pods = await podsOf(ctx);
        expect(pods.filter((p) => p.status?.phase === 'Running').length).toBeGreaterThanOrEqual(2);
        await runAll(ctx);
        if (pods.length === 3 && pods.every((p) => p.metadata.labels?.['controller-revision-hash'] === v2 && p.status?.phase === 'Running')) break;
      }
      await dsc.reconcile('default/roll', ctx);
      expect(Object.values(await byNode(ctx)).map((p: any) => p.spec.containers[0].image)).toEqual(['busybox:2', 'busybox:2', 'busybox:2']);
      expect((await getDS(ctx, 'roll')).status).toMatchObject({ desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3, observedGeneration: 2 });
      expect((await revisionsOf(ctx)).map((r) => [r.metadata.name, r.revision])).toEqual([
        [`roll-${v1}`, 1],
        [`roll-${v2}`, 2],
      ]);
      // kubectl rollout undo patches the DaemonSet with revision 1's data: that revision becomes 3.
      const [r1] = await revisionsOf(ctx);
      await ctx.registry.guaranteedUpdate(dsRes, 'default', 'roll', undefined, {}, (cur) => {
        const { $patch: _, ...t } = r1!.data.spec.template;
        return { ...cur, spec: { ...cur.spec, template: t } };
      });
      await dsc.reconcile('default/roll', ctx);
      expect((await revisionsOf(ctx)).map((r) => [r.metadata.name, r.revision])).toEqual([
        [`roll-${v2}`, 2],
        [`roll-${v1}`, 3],
      ]);
    });

    it('maxSurge starts the new pod before the old one goes; OnDelete waits for deletions; the history limit holds', async () => {
      const ctx = await newCtx(await makeStore());
      for (const n of ['n1', 'n2']) await ctx.registry.create(nodesRes, undefined, nodeObj(n));
      await ctx.registry.create(dsRes, 'default', dsObj('surge', { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } }, revisionHistoryLimit: 1 }));
      await settle(ctx);
      await runAll(ctx);
      const image = async (img: string) =>
        ctx.registry.guaranteedUpdate(dsRes, 'default', 'surge', undefined, {}, (cur) => {
          cur.spec.template.spec.containers[0].image = img;
          return cur;
        });
      await image('busybox:2');
      await dsc.reconcile('default/surge', ctx);
      // One node surged: two pods there, both Running old + Pending new; the other node untouched.
      let pods = await podsOf(ctx);
      expect(pods.length).toBe(3);
      expect(pods.filter((p) => p.status?.phase === 'Running').length).toBe(2);
      for (let i = 0; i < 8; i++) {
        await runAll(ctx);
        await dsc.reconcile('default/surge', ctx);
      }
      pods = await podsOf(ctx);
      expect(pods.map((p) => p.spec.containers[0].image)).toEqual(['busybox:2', 'busybox:2']);

      // OnDelete: a template change replaces nothing until a pod is deleted.
      await ctx.registry.guaranteedUpdate(dsRes, 'default', 'surge', undefined, {}, (cur) => ({ ...cur, spec: { ...cur.spec, updateStrategy: { type: 'OnDelete' } } }));
      await image('busybox:3');
      await settle(ctx);
      pods = await podsOf(ctx);
      expect(pods.map((p) => p.spec.containers[0].image)).toEqual(['busybox:2', 'busybox:2']);
      await ctx.registry.delete(podsRes, 'default', pods[0]!.metadata.name!);
      await settle(ctx);
      expect((await podsOf(ctx)).map((p) => p.spec.containers[0].image).sort()).toEqual(['busybox:2', 'busybox:3']);
      expect((await getDS(ctx, 'surge')).status).toMatchObject({ desiredNumberScheduled: 2, updatedNumberScheduled: 1 });
      // revisionHistoryLimit 1: busybox:1's revision (no pod uses it) is gone; 2 (in use) and 3 (current) stay.
      const imgs = (await revisionsOf(ctx)).map((r) => r.data.spec.template.spec.containers[0].image);
      expect(imgs).toEqual(['busybox:2', 'busybox:3']);
    });

    it('adopts a matching orphan on its node instead of creating one; releases a pod whose labels stop matching', async () => {
      const ctx = await newCtx(await makeStore());
      for (const n of ['n1', 'n2']) await ctx.registry.create(nodesRes, undefined, nodeObj(n));
      const orphan = await ctx.registry.create(podsRes, 'default', {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'left-behind', labels: { app: 'adopt' } },
        spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'busybox:1' }] },
      });
      const ds = await ctx.registry.create(dsRes, 'default', dsObj('adopt'));
      // The DaemonSet's reconcile claims it (the orphan's own event maps to no key: it costs nothing).
      expect(dsc.keys({ type: 'ADDED', resource: podsRes, object: orphan })).toEqual([]);
      await dsc.reconcile('default/adopt', ctx);
      const got = await byNode(ctx);
      expect(Object.keys(got)).toEqual(['n1', 'n2']);
      expect(got.n1!.metadata.name).toBe('left-behind');
      expect(got.n1!.metadata.ownerReferences).toEqual([{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'adopt', uid: ds.metadata.uid, controller: true, blockOwnerDeletion: true }]);
      // Relabelled out of the selector: released (no owner), and n2 gets a new daemon pod.
      await ctx.registry.guaranteedUpdate(podsRes, 'default', got.n2!.metadata.name!, undefined, {}, (cur) => ({ ...cur, metadata: { ...cur.metadata, labels: { app: 'debug' } } }));
      await dsc.reconcile('default/adopt', ctx);
      const released = await ctx.registry.get(podsRes, 'default', got.n2!.metadata.name!);
      expect(released.metadata.ownerReferences).toBeUndefined();
      const owned = (await podsOf(ctx)).filter((p) => p.metadata.ownerReferences?.some((r) => r.uid === ds.metadata.uid));
      expect(owned.map((p) => targetNode(p)).sort()).toEqual(['n1', 'n2']);
    });

    it('a DaemonSet made again after an orphaning delete adopts its pods and its history', async () => {
      const ctx = await newCtx(await makeStore());
      await ctx.registry.create(nodesRes, undefined, nodeObj('n1'));
      const first = await ctx.registry.create(dsRes, 'default', dsObj('again'));
      await dsc.reconcile('default/again', ctx);
      const [pod] = await podsOf(ctx);
      const [rev] = await revisionsOf(ctx);
      // What the garbage collector does for --cascade=orphan: dependents lose the owner's reference.
      for (const [res, name] of [[podsRes, pod!.metadata.name!], [crRes, rev!.metadata.name!]] as const) {
        await ctx.registry.guaranteedUpdate(res, 'default', name, undefined, {}, (cur) => {
          const { ownerReferences: _, ...metadata } = cur.metadata;
          return { ...cur, metadata };
        });
      }
      await ctx.registry.delete(dsRes, 'default', 'again');
      const second = await ctx.registry.create(dsRes, 'default', dsObj('again'));
      expect(second.metadata.uid).not.toBe(first.metadata.uid);
      await dsc.reconcile('default/again', ctx);
      expect((await podsOf(ctx)).map((p) => [p.metadata.name, p.metadata.ownerReferences?.[0]?.uid])).toEqual([[pod!.metadata.name, second.metadata.uid]]);
      expect((await revisionsOf(ctx)).map((r) => [r.metadata.name, r.revision, r.metadata.ownerReferences?.[0]?.uid])).toEqual([[rev!.metadata.name, 1, second.metadata.uid]]);
    });

    it('a create the apiserver refuses (terminating namespace) is a FailedCreate Warning and a requeue', async () => {
      const ctx = await newCtx(await makeStore());
      await ctx.registry.create(nsRes, undefined, { metadata: { name: 'doomed' } });
      await ctx.registry.create(dsRes, 'doomed', dsObj('w'));
      // Its revision is made first (no node yet); the node comes once the namespace is terminating.
      await dsc.reconcile('doomed/w', ctx);
      await ctx.registry.delete(nsRes, undefined, 'doomed');
      await ctx.registry.create(nodesRes, undefined, nodeObj('n1'));
      expect(await dsc.reconcile('doomed/w', ctx)).toEqual({ requeueAfterMs: 5000 });
      const warn = (await ctx.registry.list(eventsRes, 'doomed')).items.find((e) => e.reason === 'FailedCreate');
      expect(warn).toMatchObject({ type: 'Warning', source: { component: 'daemonset-controller' } });
      expect(warn!.message).toMatch(/^Error creating: .*terminat/);
    });

    it('duplicated, redelivered and reordered events reach the clean-delivery state', async () => {
      const run = async (deliver: (evs: ChangeEvent[], ctx: ControllerContext) => Promise<void>) => {
        const ctx = await newCtx(await makeStore());
        const evs: ChangeEvent[] = [];
        for (const n of ['x', 'y']) evs.push({ type: 'ADDED', resource: nodesRes, object: await ctx.registry.create(nodesRes, undefined, nodeObj(n)) });
        evs.push({ type: 'ADDED', resource: dsRes, object: await ctx.registry.create(dsRes, 'default', dsObj('dup')) });
        await deliver(evs, ctx);
        const z = await ctx.registry.create(nodesRes, undefined, nodeObj('z'));
        const [first] = await podsOf(ctx);
        const gone = (await ctx.registry.delete(podsRes, 'default', first!.metadata.name!)).object;
        await deliver(
          [
            { type: 'ADDED', resource: nodesRes, object: z },
            { type: 'DELETED', resource: podsRes, object: gone },
          ],
          ctx,
        );
        const pods = await podsOf(ctx);
        const st = (await getDS(ctx, 'dup')).status;
        const creates = (await ctx.registry.list(eventsRes, 'default')).items.filter((e) => e.reason === 'SuccessfulCreate').reduce((n, e) => n + e.count, 0);
        return {
          nodes: pods.map((p) => targetNode(p)).sort(),
          all: (await ctx.registry.list(podsRes, 'default')).items.length,
          revisions: (await revisionsOf(ctx)).length,
          creates,
          status: { desired: st.desiredNumberScheduled, current: st.currentNumberScheduled },
        };
      };
      const once = async (evs: ChangeEvent[], ctx: ControllerContext) => {
        for (const ev of evs) for (const k of dsc.keys(ev)) await dsc.reconcile(k, ctx);
      };
      const dup = async (evs: ChangeEvent[], ctx: ControllerContext) => {
        const all = [...evs, ...evs, ...[...evs].reverse()];
        await Promise.all(all.flatMap((ev) => dsc.keys(ev)).map((k) => dsc.reconcile(k, ctx)));
        await once(all, ctx);
      };
      const reordered = async (evs: ChangeEvent[], ctx: ControllerContext) => {
        for (const k of new Set([...evs].reverse().flatMap((ev) => dsc.keys(ev)))) await dsc.reconcile(k, ctx);
      };
      const clean = await run(once);
      expect(clean).toMatchObject({ nodes: ['x', 'y', 'z'], all: 3, revisions: 1, creates: 4, status: { desired: 3, current: 3 } });
      expect(await run(dup)).toEqual(clean);
      expect(await run(reordered)).toEqual(clean);
    });
  });
}

describe('nodeShouldRunDaemonPod', () => {
  it('follows kube: nodeName, affinity, NoSchedule vs NoExecute taints', () => {
    const ds = dsObj('d');
    expect(nodeShouldRunDaemonPod(ds, nodeObj('n'))).toEqual({ shouldRun: true, shouldContinueRunning: true });
    expect(nodeShouldRunDaemonPod(ds, nodeObj('n', {}, [{ key: 'k', effect: 'NoSchedule' }]))).toEqual({ shouldRun: false, shouldContinueRunning: true });
    expect(nodeShouldRunDaemonPod(ds, nodeObj('n', {}, [{ key: 'k', effect: 'NoExecute' }]))).toEqual({ shouldRun: false, shouldContinueRunning: false });
    expect(nodeShouldRunDaemonPod(ds, nodeObj('n', {}, [{ key: 'k', effect: 'PreferNoSchedule' }]))).toEqual({ shouldRun: true, shouldContinueRunning: true });
    expect(nodeShouldRunDaemonPod(dsObj('d', {}, { nodeName: 'other' }), nodeObj('n'))).toEqual({ shouldRun: false, shouldContinueRunning: false });
    const aff = { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }] } } } };
    expect(nodeShouldRunDaemonPod(dsObj('d', {}, aff), nodeObj('n', { zone: 'b' })).shouldRun).toBe(false);
    expect(nodeShouldRunDaemonPod(dsObj('d', {}, aff), nodeObj('n', { zone: 'a' })).shouldRun).toBe(true);
    // hostNetwork pods also tolerate network-unavailable.
    const net = nodeObj('n', {}, [{ key: 'node.kubernetes.io/network-unavailable', effect: 'NoSchedule' }]);
    expect(nodeShouldRunDaemonPod(ds, net).shouldRun).toBe(false);
    expect(nodeShouldRunDaemonPod(dsObj('d', {}, { hostNetwork: true }), net).shouldRun).toBe(true);
  });
});
