// Bounded control loops (issue #11): slow-start batches (kube's slowStartBatch) and the per-reconcile
// bound of 500 creations/deletions, on the real stores (SQLite, and DynamoDB through moto), for the
// replication controller, the namespace controller and the garbage collector; and the local runner's
// back-off of a failing key (client-go's rate limiter).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { BURST_REPLICAS, slowStartBatch } from '../lambdas/controllers/batch.ts';
import type { Controller, ControllerContext } from '../lambdas/controllers/controller.ts';
import { createGarbageCollector, garbageCollector as gcDefault } from '../lambdas/controllers/garbagecollector.ts';
import { createNamespaceController, namespaceController as nsDefault } from '../lambdas/controllers/namespace.ts';
import { createNodeLifecycleController, NODE_LEASE_NAMESPACE } from '../lambdas/controllers/nodelifecycle.ts';
import { BucketRateLimiter, ItemExponentialFailureRateLimiter } from '../lambdas/controllers/ratelimit.ts';
import { createReplicationController, freeSlotNames, replicationController as rcc } from '../lambdas/controllers/replication.ts';
import { runControllers } from '../lambdas/local/controllers.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import { errors } from '../lambdas/machinery/status.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import type { Backend } from '../lambdas/storage/backend.ts';
import { SqliteBackend } from '../lambdas/storage/sqlite.ts';
import { testStores } from './support/backends.ts';

const rcs = findResource('', 'v1', 'replicationcontrollers')!;
const podsRes = findResource('', 'v1', 'pods')!;
const cms = findResource('', 'v1', 'configmaps')!;
const nsRes = findResource('', 'v1', 'namespaces')!;
const nodesRes = findResource('', 'v1', 'nodes')!;
const leasesRes = findResource('coordination.k8s.io', 'v1', 'leases')!;

const backends = await testStores('bounded');

async function newCtx(open: () => Backend, ns = 'default'): Promise<ControllerContext> {
  const ctx = new ApiServer({ backend: open() }).controllerContext();
  try {
    await ctx.registry.create(nsRes, undefined, { metadata: { name: ns } });
  } catch {
    // a second instance over the same store: already there
  }
  return ctx;
}

function rcObj(name: string, replicas: number): KubeObject {
  const labels = { app: name };
  return {
    apiVersion: 'v1',
    kind: 'ReplicationController',
    metadata: { name },
    spec: { replicas, selector: labels, template: { metadata: { labels }, spec: { containers: [{ name: 'c', image: 'nginx' }] } } },
  };
}

const activeOwned = async (ctx: ControllerContext, rc: KubeObject) =>
  (await ctx.registry.list(podsRes, 'default')).items.filter(
    (p) => !p.metadata.deletionTimestamp && p.metadata.ownerReferences?.some((r) => r.uid === rc.metadata.uid && r.controller),
  );

describe('slowStartBatch', () => {
  it('runs batches of 1, 2, 4, 8, ... each after the previous one is done', async () => {
    let done = 0;
    const doneAtStart: number[] = [];
    const r = await slowStartBatch(20, 1, async (i) => {
      doneAtStart[i] = done;
      await new Promise((ok) => setTimeout(ok, 1));
      done++;
    });
    expect(r).toEqual({ successes: 20, attempted: 20 });
    // Each call starts when exactly the calls of the earlier batches have finished.
    expect(doneAtStart).toEqual([0, 1, 1, 3, 3, 3, 3, ...Array(8).fill(7), ...Array(5).fill(15)]);
  });

  it('stops after the first batch with a failure, skipping the rest', async () => {
    const called: number[] = [];
    const boom = new Error('quota');
    const r = await slowStartBatch(100, 1, async (i) => {
      called.push(i);
      if (i === 4) throw boom;
    });
    // Batches [0], [1,2], [3..6]: the failing batch runs to its end, nothing after it starts.
    expect(r).toEqual({ successes: 6, attempted: 7, error: boom });
    expect(called.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });
});

for (const [label, makeStore, enabled] of backends) {
  // moto answers one request at a time (a pod create with its admission is a dozen requests): there each
  // loop is given a burst of 25 (its burstReplicas option; the bound is the same code) and fewer objects,
  // still more than a burst. Kube's 500 is checked on SQLite.
  const dynamo = label !== 'SQLite';
  const replicas = dynamo ? 60 : 1200;
  const burst = dynamo ? 25 : BURST_REPLICAS;
  const rcLoop = dynamo ? createReplicationController({ burstReplicas: burst }) : rcc;
  const garbageCollector = dynamo ? createGarbageCollector({ burstReplicas: burst }) : gcDefault;
  const namespaceController = dynamo ? createNamespaceController({ burstReplicas: burst }) : nsDefault;
  const big = dynamo ? 150_000 : 60_000;

  describe.skipIf(!enabled)(`bounded loops on ${label}`, () => {
    it(`an RC of ${replicas} replicas: at most ${burst} pods per reconcile, lowest slots first; requeues finish the job`, async () => {
      const ctx = await newCtx(await makeStore());
      const rc = await ctx.registry.create(rcs, 'default', rcObj('big', replicas));
      let expected = 0;
      for (let round = 0; expected < replicas; round++) {
        const r = await rcLoop.reconcile('default/big', ctx);
        expected = Math.min(replicas, expected + burst);
        const pods = await activeOwned(ctx, rc);
        expect(pods.length).toBe(expected);
        expect(new Set(pods.map((p) => p.metadata.name))).toEqual(new Set(freeSlotNames(rc, expected, new Set(), expected)));
        // Still short: the reconcile asks to be requeued at once.
        expect(r?.requeueAfterMs).toBe(expected < replicas ? 0 : undefined);
      }
      expect((await ctx.registry.get(rcs, 'default', 'big')).status.replicas).toBe(replicas);

      // Scale down to 10: at most a burst of deletions per reconcile too.
      await ctx.registry.guaranteedUpdate(rcs, 'default', 'big', undefined, {}, (cur) => ({ ...cur, spec: { ...cur.spec, replicas: 10 } }));
      const r = await rcLoop.reconcile('default/big', ctx);
      expect((await activeOwned(ctx, rc)).length).toBe(replicas - burst);
      expect(r?.requeueAfterMs).toBe(0);
      for (let i = 0; i < 3; i++) await rcLoop.reconcile('default/big', ctx);
      expect((await activeOwned(ctx, rc)).length).toBe(10);
    });

    it('a failing create stops the burst at the first failed batch (one FailedCreate), and later reconciles continue', async () => {
      const real = await newCtx(await makeStore());
      let calls = 0;
      let failAt: number | undefined = 4;
      const ctx: ControllerContext = {
        ...real,
        async create(res, ns, obj) {
          const n = calls++;
          // A refusal of this request, as a quota would give (the store itself is real).
          if (n === failAt) throw errors.forbidden('exceeded quota: pods');
          return real.create(res, ns, obj);
        },
      };
      const rc = await ctx.registry.create(rcs, 'default', rcObj('quota', 50));
      const r = await rcc.reconcile('default/quota', ctx);
      expect(calls).toBe(7); // batches of 1, 2 and 4; the 5th call failed, the 8th was never made
      expect((await activeOwned(ctx, rc)).length).toBe(6);
      expect(r?.requeueAfterMs).toBe(5000);
      const status = (await ctx.registry.get(rcs, 'default', 'quota')).status;
      expect(status.conditions).toEqual([expect.objectContaining({ type: 'ReplicaFailure', reason: 'FailedCreate', message: 'exceeded quota: pods' })]);
      failAt = undefined;
      await rcc.reconcile('default/quota', ctx);
      expect((await activeOwned(ctx, rc)).length).toBe(50);
    });

    it('duplicated and redelivered keys on two racing instances never make more pods than replicas', async () => {
      const open = await makeStore();
      const a = await newCtx(open);
      const b = await newCtx(open);
      const n = label === 'SQLite' ? 700 : 40; // on moto: more than the slow-start batches of 1+2+...+16
      const rc = await a.registry.create(rcs, 'default', rcObj('race', n));
      for (let round = 0; round < 4; round++) {
        // The same key, delivered twice to one instance and once to another, all at once.
        await Promise.all([rcc.reconcile('default/race', a), rcc.reconcile('default/race', b), rcc.reconcile('default/race', a), rcc.reconcile('default/*', b)]);
        expect((await activeOwned(a, rc)).length).toBeLessThanOrEqual(n);
      }
      expect((await activeOwned(a, rc)).length).toBe(n);
    }, big);

    it(`namespace deletion and the garbage collector delete at most ${burst} objects per reconcile`, async () => {
      const ctx = await newCtx(await makeStore(), 'doomed');
      const count = burst + (dynamo ? 20 : 150);
      const owner = await ctx.registry.create(cms, 'doomed', { metadata: { name: 'owner' }, data: {} });
      const ref = { apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata.uid! };
      for (let i = 0; i < count; i++) await ctx.registry.create(cms, 'doomed', { metadata: { name: `dep-${i}`, ownerReferences: [ref] }, data: {} });
      const left = async () => (await ctx.registry.list(cms, 'doomed')).items.length;

      // The owner goes: its dependents are deleted by the garbage collector, a burst at a time.
      const gone = await ctx.registry.delete(cms, 'doomed', 'owner', {});
      const [key] = garbageCollector.keys({ type: 'DELETED', resource: cms, object: gone.object });
      if (!key) throw new Error('the garbage collector gave no key for a deleted owner');
      expect(await garbageCollector.reconcile(key, ctx)).toEqual({ requeueAfterMs: 0 });
      expect(await left()).toBe(count - burst);
      await garbageCollector.reconcile(key, ctx);
      expect(await left()).toBe(0);

      for (let i = 0; i < count; i++) await ctx.registry.create(cms, 'doomed', { metadata: { name: `cm-${i}` }, data: {} });
      await ctx.registry.delete(nsRes, undefined, 'doomed', {});
      expect(await namespaceController.reconcile('doomed', ctx)).toEqual({ requeueAfterMs: 0 });
      expect(await left()).toBe(count - burst);
      for (let i = 0; i < 3; i++) await namespaceController.reconcile('doomed', ctx);
      expect(await left()).toBe(0);
      await expect(ctx.registry.get(nsRes, undefined, 'doomed')).rejects.toMatchObject({ code: 404 });
    }, big);

    it(`node lifecycle evicts at most ${burst} pods of a dead node per reconcile`, async () => {
      const ctx = await newCtx(await makeStore(), NODE_LEASE_NAMESPACE);
      const t0 = Date.parse('2026-01-01T00:00:00Z');
      await ctx.registry.create(nodesRes, undefined, { metadata: { name: 'dead' }, status: { conditions: [{ type: 'Ready', status: 'True' }] } });
      await ctx.registry.create(leasesRes, NODE_LEASE_NAMESPACE, { metadata: { name: 'dead' }, spec: { holderIdentity: 'dead', leaseDurationSeconds: 40, renewTime: new Date(t0).toISOString() } });
      await ctx.registry.create(nsRes, undefined, { metadata: { name: 'default' } });
      const count = burst + 20;
      // No toleration of the unreachable taint: due for eviction as soon as the node is unreachable.
      for (let i = 0; i < count; i++) await ctx.registry.create(podsRes, 'default', { metadata: { name: `p-${i}` }, spec: { nodeName: 'dead', containers: [{ name: 'c', image: 'nginx' }] } });
      const nlc = createNodeLifecycleController({ now: () => new Date(t0 + 120_000), burstReplicas: burst });
      const left = async () => (await ctx.registry.list(podsRes, 'default')).items.length;
      const r = await nlc.reconcile('dead', ctx);
      expect(await left()).toBe(20);
      expect(r?.requeueAfterMs).toBeLessThanOrEqual(100); // the rest at once
      await nlc.reconcile('dead', ctx);
      expect(await left()).toBe(0);
    }, big);
  });
}

describe('back-off of a failing key (local runner)', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  function context(): ControllerContext {
    const dir = mkdtempSync(join(tmpdir(), `skiff-backoff-${process.pid}-`));
    const backend = new SqliteBackend(join(dir, 'db'), { compactIntervalMs: 0 });
    cleanup.push(async () => {
      await backend.close();
      rmSync(dir, { recursive: true, force: true });
    });
    return new ApiServer({ backend }).controllerContext();
  }

  it('the per-key delay doubles from 5 ms to its cap and starts over after a success', () => {
    const l = new ItemExponentialFailureRateLimiter(5, 1000_000);
    expect([1, 2, 3, 4, 5].map(() => l.when('k'))).toEqual([5, 10, 20, 40, 80]);
    expect(l.when('other')).toBe(5);
    for (let i = 0; i < 2000; i++) l.when('k');
    expect(l.when('k')).toBe(1000_000);
    l.forget('k');
    expect(l.when('k')).toBe(5);
  });

  it('all retries of a loop together are held to an overall rate (10/s after a burst of 100)', () => {
    let t = 0;
    const b = new BucketRateLimiter(10, 100, () => t);
    const waits = Array.from({ length: 103 }, () => b.when());
    expect(waits.slice(0, 100).every((w) => w === 0)).toBe(true);
    expect(waits.slice(100)).toEqual([100, 200, 300]);
    t = 20_000; // refilled: the 3 reserved ahead are paid back, and it holds no more than the burst
    expect(Array.from({ length: 101 }, () => b.when()).filter((w) => w > 0)).toHaveLength(1);
  });

  it('a key whose reconcile always fails is retried ever more slowly, not in a spin', async () => {
    const attempts: number[] = [];
    const failing: Controller = {
      name: 'failing',
      watches: [cms],
      keys: () => [],
      allKeys: async () => ['k'],
      async reconcile() {
        attempts.push(performance.now());
        throw new Error('store unavailable');
      },
    };
    const errorLog = console.error;
    console.error = () => {};
    cleanup.push(async () => void (console.error = errorLog));
    const runner = runControllers(context(), [failing], { resyncMs: 60_000 });
    cleanup.push(() => runner.stop());
    await new Promise((r) => setTimeout(r, 2000));
    // 5 ms doubling: retries at about 5, 15, 35, 75, 155, 315, 635, 1275 ms; a fixed or no delay
    // would make hundreds or thousands of attempts in 2 s.
    expect(attempts.length).toBeGreaterThanOrEqual(5);
    expect(attempts.length).toBeLessThanOrEqual(11);
    const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!);
    // Each wait at least as long as the doubling asks (timers fire late, never early).
    gaps.forEach((g, i) => expect(g).toBeGreaterThanOrEqual(5 * 2 ** i - 1));
  });
});
