// The replication controller on the real stores (SQLite, and DynamoDB through moto): scaling, pod
// replacement, adoption and release, status and events; at-least-once delivery (duplicated, redelivered,
// batched events) reaching the clean-delivery state; and two racing instances never over-creating.

import { describe, expect, it } from 'vitest';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import type { ChangeEvent, ControllerContext } from '../lambdas/controllers/controller.ts';
import { freeSlotNames, replicationController as rcc, slotName } from '../lambdas/controllers/replication.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import type { Backend } from '../lambdas/storage/backend.ts';
import { testStores } from './support/backends.ts';

const rcs = findResource('', 'v1', 'replicationcontrollers')!;
const podsRes = findResource('', 'v1', 'pods')!;
const eventsRes = findResource('', 'v1', 'events')!;
const nsRes = findResource('', 'v1', 'namespaces')!;

const backends = await testStores('rc');

async function newCtx(open: () => Backend): Promise<ControllerContext> {
  const api = new ApiServer({ backend: open() });
  const ctx = api.controllerContext();
  try {
    await ctx.registry.create(nsRes, undefined, { metadata: { name: 'default' } });
  } catch {
    // a second instance over the same store: already there
  }
  return ctx;
}

function rcObj(name: string, replicas: number, labels: Record<string, string> = { app: name }, extra: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ReplicationController',
    metadata: { name },
    spec: {
      replicas,
      selector: labels,
      template: { metadata: { labels }, spec: { containers: [{ name: 'c', image: 'nginx' }] } },
      ...extra,
    },
  };
}

const podsOf = async (ctx: ControllerContext, ns = 'default') => (await ctx.registry.list(podsRes, ns)).items;
const activeOwned = async (ctx: ControllerContext, rc: KubeObject, ns = 'default') =>
  (await podsOf(ctx, ns)).filter((p) => !p.metadata.deletionTimestamp && p.metadata.ownerReferences?.some((r) => r.uid === rc.metadata.uid && r.controller));

/** Reconciles every key (as resync would) until a round changes nothing. */
async function settle(ctx: ControllerContext, rounds = 4): Promise<void> {
  for (let i = 0; i < rounds; i++) for (const k of await rcc.allKeys(ctx)) await rcc.reconcile(k, ctx);
}

async function setReady(ctx: ControllerContext, pod: KubeObject, at: Date): Promise<void> {
  await ctx.registry.guaranteedUpdate(podsRes, 'default', pod.metadata.name!, undefined, { subresource: 'status' }, (cur) => ({
    ...cur,
    status: { ...(cur.status ?? {}), phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: at.toISOString().replace(/\.\d{3}Z$/, 'Z') }] },
  }));
}

for (const [label, makeStore, enabled] of backends) {
  describe.skipIf(!enabled)(`replication controller on ${label}`, () => {
    it('scales up with events and ownerReferences, then down (unscheduled, not ready, newest first)', async () => {
      const ctx = await newCtx(await makeStore());
      const rc = await ctx.registry.create(rcs, 'default', rcObj('web', 3));
      await rcc.reconcile('default/web', ctx);
      let pods = await activeOwned(ctx, rc);
      expect(pods.map((p) => p.metadata.name).sort()).toEqual([0, 1, 2].map((i) => slotName(rc, i)).sort());
      for (const p of pods) {
        expect(p.metadata.name).toMatch(/^web-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
        expect(p.metadata.generateName).toBe('web-');
        expect(p.metadata.labels).toEqual({ app: 'web' });
        expect(p.metadata.ownerReferences).toEqual([
          { apiVersion: 'v1', kind: 'ReplicationController', name: 'web', uid: rc.metadata.uid, controller: true, blockOwnerDeletion: true },
        ]);
      }
      const evs = (await ctx.registry.list(eventsRes, 'default')).items.filter((e) => e.reason === 'SuccessfulCreate');
      expect(evs.map((e) => e.message).sort()).toEqual(pods.map((p) => `Created pod: ${p.metadata.name}`).sort());
      expect(evs.every((e) => e.source.component === 'replication-controller' && e.type === 'Normal' && e.involvedObject.name === 'web')).toBe(true);
      let got = await ctx.registry.get(rcs, 'default', 'web');
      expect(got.status).toMatchObject({ replicas: 3, fullyLabeledReplicas: 3, readyReplicas: 0, availableReplicas: 0, observedGeneration: 1 });

      // Make two pods "better" than the third: scheduled+ready. The third must be the one deleted.
      const [keep1, keep2, victim] = pods;
      for (const p of [keep1!, keep2!]) {
        await ctx.registry.guaranteedUpdate(podsRes, 'default', p.metadata.name!, undefined, { subresource: 'binding' }, (cur) => ({
          ...cur,
          spec: { ...cur.spec, nodeName: 'n1' },
        }));
        await setReady(ctx, p, new Date());
      }
      await ctx.registry.guaranteedUpdate(rcs, 'default', 'web', undefined, {}, (cur) => ({ ...cur, spec: { ...cur.spec, replicas: 2 } }));
      await rcc.reconcile('default/web', ctx);
      pods = await activeOwned(ctx, rc);
      expect(pods.map((p) => p.metadata.name).sort()).toEqual([keep1!.metadata.name, keep2!.metadata.name].sort());
      await expect(ctx.registry.get(podsRes, 'default', victim!.metadata.name!)).rejects.toMatchObject({ code: 404 });
      const del = (await ctx.registry.list(eventsRes, 'default')).items.filter((e) => e.reason === 'SuccessfulDelete');
      expect(del.map((e) => e.message)).toEqual([`Deleted pod: ${victim!.metadata.name}`]);
      got = await ctx.registry.get(rcs, 'default', 'web');
      expect(got.status).toMatchObject({ replicas: 2, readyReplicas: 2, availableReplicas: 2, observedGeneration: 2 });
    });

    it('replaces a deleted pod; does not count terminating, Succeeded or Failed pods', async () => {
      const ctx = await newCtx(await makeStore());
      const rc = await ctx.registry.create(rcs, 'default', rcObj('api', 2));
      await rcc.reconcile('default/api', ctx);
      const [a, b] = await activeOwned(ctx, rc);
      await ctx.registry.delete(podsRes, 'default', a!.metadata.name!);
      const keys = rcc.keys({ type: 'DELETED', resource: podsRes, object: a! });
      expect(keys).toEqual(['default/api']);
      await rcc.reconcile(keys[0]!, ctx);
      expect((await activeOwned(ctx, rc)).length).toBe(2);
      // A Failed pod no longer counts: a replacement comes, the failed one stays (as in Kubernetes).
      await ctx.registry.guaranteedUpdate(podsRes, 'default', b!.metadata.name!, undefined, { subresource: 'status' }, (cur) => ({
        ...cur,
        status: { phase: 'Failed' },
      }));
      await rcc.reconcile('default/api', ctx);
      const owned = await activeOwned(ctx, rc);
      expect(owned.length).toBe(3);
      expect(owned.filter((p) => p.status?.phase !== 'Failed').length).toBe(2);
      expect((await ctx.registry.get(rcs, 'default', 'api')).status.replicas).toBe(2);
    });

    it("maps an owned pod's change to its RC only when it moves what the RC counts (a bind or a not-ready status write does not), and an RC's only when its spec or deletion moved", () => {
      const ref = { apiVersion: 'v1', kind: 'ReplicationController', name: 'db', uid: 'u-db', controller: true };
      const created = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'db-0', namespace: 'default', labels: { app: 'db' }, ownerReferences: [ref] }, spec: { containers: [{ name: 'c', image: 'x' }] } };
      const ev = (object: any, oldObject?: any) => rcc.keys(oldObject ? { type: 'MODIFIED', resource: podsRes, object, oldObject } : { type: 'ADDED', resource: podsRes, object });
      expect(ev(created)).toEqual(['default/db']);
      const bound = { ...created, spec: { ...created.spec, nodeName: 'n1' } };
      expect(ev(bound, created)).toEqual([]);
      const starting = { ...bound, status: { phase: 'Pending', conditions: [{ type: 'Ready', status: 'False', lastTransitionTime: 't0' }] } };
      expect(ev(starting, bound)).toEqual([]);
      const running = { ...bound, status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'False', lastTransitionTime: 't0' }] } };
      expect(ev(running, starting)).toEqual([]);
      // Ready (readyReplicas), and the time it became so (availableReplicas with minReadySeconds), count.
      const ready = { ...bound, status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: 't1' }] } };
      expect(ev(ready, running)).toEqual(['default/db']);
      expect(ev({ ...ready, status: { ...ready.status, podIP: '10.0.0.9' } }, ready)).toEqual([]);
      expect(ev({ ...ready, status: { ...ready.status, conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: 't2' }] } }, ready)).toEqual(['default/db']);
      // Finished, terminating, relabelled, released: all counted; so is any change without the old object.
      expect(ev({ ...ready, status: { phase: 'Succeeded' } }, ready)).toEqual(['default/db']);
      expect(ev({ ...ready, metadata: { ...ready.metadata, deletionTimestamp: 't3' } }, ready)).toEqual(['default/db']);
      expect(ev({ ...ready, metadata: { ...ready.metadata, labels: { app: 'db', v: '2' } } }, ready)).toEqual(['default/db']);
      // Released: an orphan now, which any RC of the namespace may adopt.
      expect(ev({ ...ready, metadata: { ...ready.metadata, ownerReferences: [] } }, ready)).toEqual(['default/*']);
      expect(rcc.keys({ type: 'MODIFIED', resource: podsRes, object: bound })).toEqual(['default/db']);
      expect(rcc.keys({ type: 'DELETED', resource: podsRes, object: ready })).toEqual(['default/db']);
      // The RC's own changes: a status write decides nothing; spec and deletion do.
      const rc = { apiVersion: 'v1', kind: 'ReplicationController', metadata: { name: 'db', namespace: 'default', uid: 'u-db' }, spec: { replicas: 2, selector: { app: 'db' } } };
      const rcEv = (object: any, oldObject: any) => rcc.keys({ type: 'MODIFIED', resource: rcs, object, oldObject });
      expect(rcEv({ ...rc, status: { replicas: 2 } }, rc)).toEqual([]);
      expect(rcEv({ ...rc, spec: { ...rc.spec, replicas: 3 } }, rc)).toEqual(['default/db']);
      expect(rcEv({ ...rc, metadata: { ...rc.metadata, deletionTimestamp: 't' } }, rc)).toEqual(['default/db']);
      expect(rcc.keys({ type: 'MODIFIED', resource: rcs, object: rc })).toEqual(['default/db']);
    });

    it('adopts matching orphans, releases pods whose labels stop matching', async () => {
      const ctx = await newCtx(await makeStore());
      const orphan = await ctx.registry.create(podsRes, 'default', {
        metadata: { name: 'stray', labels: { app: 'db', extra: 'x' } },
        spec: { containers: [{ name: 'c', image: 'x' }] },
      });
      const other = await ctx.registry.create(podsRes, 'default', {
        metadata: { name: 'unrelated', labels: { app: 'other' } },
        spec: { containers: [{ name: 'c', image: 'x' }] },
      });
      const rc = await ctx.registry.create(rcs, 'default', rcObj('db', 2));
      // The orphan's event maps to the namespace's RCs.
      expect(rcc.keys({ type: 'ADDED', resource: podsRes, object: orphan })).toEqual(['default/*']);
      // An update of an orphan looks for adopters only when its labels or its controller changed (kube's
      // updatePod): a bind or a status write does not; a relabel and a release do.
      const bound = { ...orphan, spec: { ...orphan.spec, nodeName: 'n1' }, status: { phase: 'Running' } };
      expect(rcc.keys({ type: 'MODIFIED', resource: podsRes, object: bound, oldObject: orphan })).toEqual([]);
      const relabelled = { ...orphan, metadata: { ...orphan.metadata, labels: { app: 'db' } } };
      expect(rcc.keys({ type: 'MODIFIED', resource: podsRes, object: relabelled, oldObject: orphan })).toEqual(['default/*']);
      const owned0 = { ...orphan, metadata: { ...orphan.metadata, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'x', uid: 'u1', controller: true }] } };
      expect(rcc.keys({ type: 'MODIFIED', resource: podsRes, object: orphan, oldObject: owned0 })).toEqual(['default/*']);
      await rcc.reconcile('default/*', ctx);
      const owned = await activeOwned(ctx, rc);
      expect(owned.length).toBe(2);
      expect(owned.map((p) => p.metadata.name)).toContain('stray');
      expect((await ctx.registry.get(podsRes, 'default', 'unrelated')).metadata.ownerReferences).toBeUndefined();
      void other;
      // Relabel the adopted pod: it is released and replaced.
      await ctx.registry.guaranteedUpdate(podsRes, 'default', 'stray', undefined, {}, (cur) => ({
        ...cur,
        metadata: { ...cur.metadata, labels: { app: 'gone' } },
      }));
      const relabeled = await ctx.registry.get(podsRes, 'default', 'stray');
      expect(rcc.keys({ type: 'MODIFIED', resource: podsRes, object: relabeled })).toEqual(['default/db']);
      await rcc.reconcile('default/db', ctx);
      expect((await ctx.registry.get(podsRes, 'default', 'stray')).metadata.ownerReferences).toBeUndefined();
      const now = await activeOwned(ctx, rc);
      expect(now.length).toBe(2);
      expect(now.map((p) => p.metadata.name)).not.toContain('stray');
      expect((await ctx.registry.get(rcs, 'default', 'db')).status).toMatchObject({ replicas: 2, fullyLabeledReplicas: 2 });
    });

    it('readyReplicas and availableReplicas (minReadySeconds); status written only when changed', async () => {
      const ctx = await newCtx(await makeStore());
      const rc = await ctx.registry.create(rcs, 'default', rcObj('slow', 2, { app: 'slow' }, { minReadySeconds: 30 }));
      await rcc.reconcile('default/slow', ctx);
      const [p1, p2] = await activeOwned(ctx, rc);
      await setReady(ctx, p1!, new Date(Date.now() - 60_000)); // ready long enough
      await setReady(ctx, p2!, new Date()); // ready, not yet available
      const r = await rcc.reconcile('default/slow', ctx);
      const got = await ctx.registry.get(rcs, 'default', 'slow');
      expect(got.status).toMatchObject({ replicas: 2, readyReplicas: 2, availableReplicas: 1 });
      // It asks to look again when the second pod becomes available.
      expect(r?.requeueAfterMs).toBeGreaterThan(20_000);
      expect(r?.requeueAfterMs).toBeLessThanOrEqual(31_000);
      await rcc.reconcile('default/slow', ctx);
      expect((await ctx.registry.get(rcs, 'default', 'slow')).metadata.resourceVersion).toBe(got.metadata.resourceVersion);
    });

    it('ReplicaFailure condition and FailedCreate event when the namespace is terminating; cleared once creation works', async () => {
      const ctx = await newCtx(await makeStore());
      await ctx.registry.create(nsRes, undefined, { metadata: { name: 'doomed' } });
      const rc = await ctx.registry.create(rcs, 'doomed', rcObj('w', 1));
      await ctx.registry.delete(nsRes, undefined, 'doomed');
      await rcc.reconcile('doomed/w', ctx);
      expect(await activeOwned(ctx, rc, 'doomed')).toEqual([]);
      const got = await ctx.registry.get(rcs, 'doomed', 'w');
      const cond = got.status.conditions.find((c: any) => c.type === 'ReplicaFailure');
      expect(cond).toMatchObject({ status: 'True', reason: 'FailedCreate' });
      expect(cond.message).toMatch(/terminat/i);
      const warn = (await ctx.registry.list(eventsRes, 'doomed')).items.find((e) => e.reason === 'FailedCreate');
      expect(warn?.type).toBe('Warning');

      // A template that admission accepts clears it (a second RC in a live namespace never had it).
      const ok = await ctx.registry.create(rcs, 'default', rcObj('fine', 1));
      await rcc.reconcile('default/fine', ctx);
      expect((await ctx.registry.get(rcs, 'default', 'fine')).status.conditions).toBeUndefined();
      void ok;
    });

    it('duplicated, redelivered and batched events reach the clean-delivery state', async () => {
      // Clean delivery: each event once, in order.
      const run = async (deliver: (evs: ChangeEvent[], ctx: ControllerContext) => Promise<void>) => {
        const ctx = await newCtx(await makeStore());
        const rc = await ctx.registry.create(rcs, 'default', rcObj('ev', 3));
        const evs: ChangeEvent[] = [{ type: 'ADDED', resource: rcs, object: rc }];
        await deliver(evs, ctx);
        // Scale to 2 and delete one pod: more events.
        const scaled = await ctx.registry.guaranteedUpdate(rcs, 'default', 'ev', undefined, {}, (cur) => ({ ...cur, spec: { ...cur.spec, replicas: 2 } }));
        const [first] = await activeOwned(ctx, rc);
        const gone = (await ctx.registry.delete(podsRes, 'default', first!.metadata.name!)).object;
        await deliver(
          [
            { type: 'MODIFIED', resource: rcs, object: scaled },
            { type: 'DELETED', resource: podsRes, object: gone },
          ],
          ctx,
        );
        const pods = await activeOwned(ctx, rc);
        const status = (await ctx.registry.get(rcs, 'default', 'ev')).status;
        const creates = (await ctx.registry.list(eventsRes, 'default')).items
          .filter((e) => e.reason === 'SuccessfulCreate')
          .reduce((n, e) => n + e.count, 0);
        return {
          count: pods.length,
          allPods: (await podsOf(ctx)).length,
          // every pod is one of the RC's slots (no stray generated names)
          inSlots: pods.every((p) => [0, 1, 2, 3, 4].some((i) => slotName(rc, i) === p.metadata.name)),
          creates,
          status: { replicas: status.replicas, fullyLabeledReplicas: status.fullyLabeledReplicas },
        };
      };
      const once = async (evs: ChangeEvent[], ctx: ControllerContext) => {
        for (const ev of evs) for (const k of rcc.keys(ev)) await rcc.reconcile(k, ctx);
      };
      const dup = async (evs: ChangeEvent[], ctx: ControllerContext) => {
        // Every event three times, the batch replayed in reverse, keys reconciled concurrently.
        const all = [...evs, ...evs, ...[...evs].reverse()];
        await Promise.all(all.flatMap((ev) => rcc.keys(ev)).map((k) => rcc.reconcile(k, ctx)));
        await once(all, ctx);
      };
      const batched = async (evs: ChangeEvent[], ctx: ControllerContext) => {
        // A stream batch: distinct keys once each.
        for (const k of new Set(evs.flatMap((ev) => rcc.keys(ev)))) await rcc.reconcile(k, ctx);
      };
      const clean = await run(once);
      expect(clean.count).toBe(2);
      expect(await run(dup)).toEqual(clean);
      expect(await run(batched)).toEqual(clean);
    });

    it('two racing instances, one with a stale pod list, never go above spec.replicas', async () => {
      const open = await makeStore();
      const a = await newCtx(open);
      const b = await newCtx(open);
      const rc = await a.registry.create(rcs, 'default', rcObj('race', 4));
      // Instance B reads pods from a snapshot taken before anything was created (a stale cache).
      const staleList = await b.registry.list(podsRes, 'default');
      const staleRegistry = Object.create(b.registry);
      staleRegistry.list = (res: any, ns: any, p: any) => (res === podsRes ? Promise.resolve(structuredClone(staleList)) : b.registry.list(res, ns, p));
      const stale: ControllerContext = { ...b, registry: staleRegistry };
      for (let round = 0; round < 4; round++) {
        await Promise.all([rcc.reconcile('default/race', a), rcc.reconcile('default/race', b), rcc.reconcile('default/race', stale)]);
        expect((await activeOwned(a, rc)).length).toBeLessThanOrEqual(4);
      }
      expect((await activeOwned(a, rc)).length).toBe(4);
      // Pod names are the RC's slots: a duplicate create was AlreadyExists, not a fifth pod.
      expect((await podsOf(a)).length).toBe(4);
      await settle(a);
      expect((await a.registry.get(rcs, 'default', 'race')).status.replicas).toBe(4);
    });
  });
}

describe('slot names', () => {
  it('two slots sharing a name do not leave the RC a pod short: the next slot stands in', () => {
    // Find an RC whose first 300 slots have two with one name (27^5 names: about 0.3% of RCs).
    let rc: KubeObject | undefined;
    let dup = -1;
    for (let u = 0; !rc; u++) {
      const candidate = { metadata: { name: 'web', uid: `uid-${u}` } } as KubeObject;
      const seen = new Map<string, number>();
      for (let i = 0; i < 300; i++) {
        const n = slotName(candidate, i);
        if (seen.has(n)) {
          rc = candidate;
          dup = i;
          break;
        }
        seen.set(n, i);
      }
    }
    const replicas = dup + 1;
    // Before: the names of slots 0..replicas-1, of which only replicas - 1 differ.
    expect(new Set(Array.from({ length: replicas }, (_, i) => slotName(rc!, i))).size).toBe(replicas - 1);
    const names = freeSlotNames(rc, replicas, new Set(), replicas);
    expect(new Set(names).size).toBe(replicas);
    // Deterministic, and it skips what is taken.
    expect(freeSlotNames(rc, replicas, new Set(names.slice(0, 3)), replicas)).toEqual(names.slice(3));
  });
});
