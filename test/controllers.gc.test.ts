// The garbage collector on the real stores (SQLite, and DynamoDB through moto): background, foreground
// and orphan propagation, dangling references with another live owner, resync finding orphans whose
// owner vanished unwatched, at-least-once delivery; and kubectl delete --cascade=... against a real
// local cluster running the replication controller and the garbage collector.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import type { ChangeEvent, ControllerContext } from '../lambdas/controllers/controller.ts';
import { StoreReader, type ObjectReader } from '../lambdas/controllers/cache.ts';
import { garbageCollector as gc } from '../lambdas/controllers/garbagecollector.ts';
import { SharedInformers } from '../lambdas/controllers/informer.ts';
import { replicationController } from '../lambdas/controllers/replication.ts';
import { runControllers, type ControllerRunner } from '../lambdas/local/controllers.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import type { Backend } from '../lambdas/storage/backend.ts';
import { testBackends } from './support/backends.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';

const rcs = findResource('', 'v1', 'replicationcontrollers')!;
const podsRes = findResource('', 'v1', 'pods')!;
const cmRes = findResource('', 'v1', 'configmaps')!;
const nsRes = findResource('', 'v1', 'namespaces')!;
const nodesRes = findResource('', 'v1', 'nodes')!;

const backends = await testBackends('gc');

async function newCtx(b: Backend, countDependents = true): Promise<ControllerContext> {
  const ctx = new ApiServer({ backend: b }).controllerContext();
  // As skiff up and the deployed bootstrap do: the store's counts of each owner's dependents are complete,
  // so the store reader's owner lookups (the cloud's path) go through them.
  if (countDependents) await ctx.registry.countExistingDependents();
  await ctx.registry.create(nsRes, undefined, { metadata: { name: 'default' } });
  return ctx;
}

const refTo = (o: KubeObject, block = true) => ({
  apiVersion: 'v1',
  kind: o.kind!,
  name: o.metadata.name!,
  uid: o.metadata.uid!,
  controller: true,
  blockOwnerDeletion: block,
});

async function rcWithPods(ctx: ControllerContext, name: string, n: number): Promise<{ rc: KubeObject; pods: KubeObject[] }> {
  const rc = await ctx.registry.create(rcs, 'default', {
    metadata: { name },
    spec: { replicas: n, selector: { app: name }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'x' }] } } },
  });
  const pods: KubeObject[] = [];
  for (let i = 0; i < n; i++) {
    pods.push(
      await ctx.registry.create(podsRes, 'default', {
        metadata: { name: `${name}-${i}`, labels: { app: name }, ownerReferences: [refTo(rc)] },
        spec: { containers: [{ name: 'c', image: 'x' }] },
      }),
    );
  }
  return { rc, pods };
}

const names = async (ctx: ControllerContext, res = podsRes) => (await ctx.registry.list(res, 'default')).items.map((p) => p.metadata.name).sort();
const exists = (ctx: ControllerContext, res: typeof podsRes, name: string) =>
  ctx.registry.get(res, 'default', name).then(
    () => true,
    (e) => (e.code === 404 ? false : Promise.reject(e)),
  );

/** Delivers events as the runner does: each event's keys, reconciled, requeues honoured a few times. */
async function deliver(ctx: ControllerContext, evs: ChangeEvent[]): Promise<void> {
  for (const ev of evs) for (const k of gc.keys(ev)) await gc.reconcile(k, ctx);
}

async function deleteWith(ctx: ControllerContext, res: typeof rcs, name: string, policy: 'Background' | 'Foreground' | 'Orphan'): Promise<ChangeEvent> {
  const r = await ctx.registry.delete(res, 'default', name, { propagationPolicy: policy });
  return { type: r.deleted ? 'DELETED' : 'MODIFIED', resource: res, object: r.object };
}

for (const [label, makeBackend, enabled] of backends) {
  describe.skipIf(!enabled)(`garbage collector on ${label}`, () => {
    it('background: dependents of a deleted owner go; a dependent with another live owner only loses the reference', async () => {
      const ctx = await newCtx(await makeBackend());
      const { rc } = await rcWithPods(ctx, 'bg', 2);
      const keeper = await ctx.registry.create(cmRes, 'default', { metadata: { name: 'keeper' }, data: {} });
      const shared = await ctx.registry.create(cmRes, 'default', {
        metadata: { name: 'shared', ownerReferences: [{ ...refTo(rc), controller: false }, { ...refTo(keeper), controller: false }] },
      });
      void shared;
      const ev = await deleteWith(ctx, rcs, 'bg', 'Background');
      expect(ev.type).toBe('DELETED'); // background: the owner goes at once, the GC follows
      await deliver(ctx, [ev]);
      expect(await names(ctx)).toEqual([]);
      const s = await ctx.registry.get(cmRes, 'default', 'shared');
      expect(s.metadata.ownerReferences!.map((r) => r.name)).toEqual(['keeper']);
      expect(await exists(ctx, cmRes, 'keeper')).toBe(true);
    });

    it('an owner recreated under the same name (new uid) does not keep the old dependents', async () => {
      const ctx = await newCtx(await makeBackend());
      const { rc } = await rcWithPods(ctx, 'again', 1);
      await ctx.registry.delete(rcs, 'default', 'again');
      await ctx.registry.create(rcs, 'default', { ...rc, metadata: { name: 'again' } });
      // No event delivered at all: resync finds the dangling reference.
      for (const k of await gc.allKeys(ctx)) await gc.reconcile(k, ctx);
      expect(await names(ctx)).toEqual([]);
      expect(await exists(ctx, rcs, 'again')).toBe(true);
    });

    it('foreground: dependents first (blocking ones waited for), then the owner', async () => {
      const ctx = await newCtx(await makeBackend());
      const { rc } = await rcWithPods(ctx, 'fg', 2);
      // A scheduled pod terminates gracefully: it stays (deletionTimestamp) until its kubelet is done.
      const slow = await ctx.registry.create(podsRes, 'default', {
        metadata: { name: 'fg-slow', labels: { app: 'fg' }, ownerReferences: [refTo(rc)] },
        spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'x' }] },
      });
      const ev = await deleteWith(ctx, rcs, 'fg', 'Foreground');
      expect(ev.type).toBe('MODIFIED');
      expect(ev.object.metadata.finalizers).toEqual(['foregroundDeletion']);
      const keys = gc.keys(ev);
      expect(keys.length).toBe(1);
      const r = await gc.reconcile(keys[0]!, ctx);
      expect(r?.requeueAfterMs).toBeGreaterThan(0);
      expect(await names(ctx)).toEqual(['fg-slow']);
      expect((await ctx.registry.get(podsRes, 'default', 'fg-slow')).metadata.deletionTimestamp).toBeTruthy();
      expect((await ctx.registry.get(rcs, 'default', 'fg')).metadata.finalizers).toEqual(['foregroundDeletion']);
      // The kubelet finishes: the pod goes; the next reconcile lets the owner go.
      await ctx.registry.delete(podsRes, 'default', 'fg-slow', { gracePeriodSeconds: 0 });
      void slow;
      await gc.reconcile(keys[0]!, ctx);
      expect(await exists(ctx, rcs, 'fg')).toBe(false);
    });

    it('orphan: dependents lose the reference and stay, then the owner goes', async () => {
      const ctx = await newCtx(await makeBackend());
      await rcWithPods(ctx, 'or', 2);
      const ev = await deleteWith(ctx, rcs, 'or', 'Orphan');
      expect(ev.object.metadata.finalizers).toEqual(['orphan']);
      await deliver(ctx, [ev]);
      expect(await exists(ctx, rcs, 'or')).toBe(false);
      const pods = (await ctx.registry.list(podsRes, 'default')).items;
      expect(pods.map((p) => p.metadata.name).sort()).toEqual(['or-0', 'or-1']);
      expect(pods.every((p) => p.metadata.ownerReferences === undefined)).toBe(true);
    });

    it('duplicated, redelivered and batched events reach the clean-delivery state', async () => {
      const outcome = async (policy: 'Background' | 'Foreground' | 'Orphan', mode: 'clean' | 'dup' | 'batch') => {
        const ctx = await newCtx(await makeBackend());
        const { pods } = await rcWithPods(ctx, 'x', 2);
        const podEvs: ChangeEvent[] = pods.map((p) => ({ type: 'ADDED', resource: podsRes, object: p }));
        const ev = await deleteWith(ctx, rcs, 'x', policy);
        const evs = [ev, ...podEvs];
        if (mode === 'clean') await deliver(ctx, evs);
        if (mode === 'dup') {
          await Promise.all([...evs, ...evs].flatMap((e) => gc.keys(e)).map((k) => gc.reconcile(k, ctx)));
          await deliver(ctx, [...evs].reverse()); // late redelivery after everything is done
          await deliver(ctx, evs);
        }
        if (mode === 'batch') for (const k of new Set(evs.flatMap((e) => gc.keys(e)))) await gc.reconcile(k, ctx);
        return { rc: await exists(ctx, rcs, 'x'), pods: await names(ctx) };
      };
      for (const policy of ['Background', 'Foreground', 'Orphan'] as const) {
        const clean = await outcome(policy, 'clean');
        expect(clean.rc).toBe(false);
        expect(clean.pods).toEqual(policy === 'Orphan' ? ['x-0', 'x-1'] : []);
        expect(await outcome(policy, 'dup')).toEqual(clean);
        expect(await outcome(policy, 'batch')).toEqual(clean);
      }
    });

    it("the cloud's reader: an owner's dependents are counted by the store, so a deleted object that owns nothing costs one read and no list", async () => {
      const ctx = await newCtx(await makeBackend());
      const b = ctx.registry.backend;
      const { rc, pods } = await rcWithPods(ctx, 'w', 2);
      const group = `dependents#${rc.metadata.uid}`;
      expect(await b.count(group)).toBe(2);
      // Owners moved by an update are moved in the counts: released, then adopted again.
      await ctx.registry.guaranteedUpdate(podsRes, 'default', 'w-0', undefined, {}, (p) => ({ ...p, metadata: { ...p.metadata, ownerReferences: [] } }));
      expect(await b.count(group)).toBe(1);
      await ctx.registry.guaranteedUpdate(podsRes, 'default', 'w-0', undefined, {}, (p) => ({ ...p, metadata: { ...p.metadata, ownerReferences: [refTo(rc)] } }));
      expect(await b.count(group)).toBe(2);
      // A pod that owns nothing, deleted: the collector (with no cache: a StoreReader per batch, as a
      // Lambda reads) lists no kind for it.
      const bare = await ctx.registry.create(podsRes, 'default', { metadata: { name: 'bare' }, spec: { containers: [{ name: 'c', image: 'x' }] } });
      const reader = new StoreReader(ctx.registry);
      const gone = await ctx.registry.delete(podsRes, 'default', 'bare', { gracePeriodSeconds: 0 });
      for (const k of gc.keys({ type: 'DELETED', resource: podsRes, object: gone.object })) await gc.reconcile(k, { ...ctx, cache: reader });
      expect(reader.listed).toEqual([]);
      expect(await b.count(`dependents#${bare.metadata.uid}`)).toBe(0); // what the reader read instead
      // The RC deleted: its two pods are found (the count says so) and go; the deletes give the count back.
      const evs = [await deleteWith(ctx, rcs, 'w', 'Background'), ...pods.map((p): ChangeEvent => ({ type: 'ADDED', resource: podsRes, object: p }))];
      const batch = new StoreReader(ctx.registry);
      for (const k of new Set(evs.flatMap((e) => gc.keys(e)))) await gc.reconcile(k, { ...ctx, cache: batch });
      expect(await names(ctx)).toEqual([]);
      expect(batch.listed).toContain('/pods default');
      expect(await b.count(group)).toBe(0);
    });

    it('an object names at most 64 owners (each moves a count in its own write): 65 is a 422, and nothing is stored', async () => {
      const ctx = await newCtx(await makeBackend());
      const refs = (n: number) => Array.from({ length: n }, (_, i) => ({ apiVersion: 'v1', kind: 'ConfigMap', name: `o${i}`, uid: `uid-${i}` }));
      const many = await ctx.registry.create(cmRes, 'default', { metadata: { name: 'many', ownerReferences: refs(64) } });
      expect(many.metadata.ownerReferences).toHaveLength(64);
      expect(await ctx.registry.backend.count('dependents#uid-63')).toBe(1);
      const err = await ctx.registry.create(cmRes, 'default', { metadata: { name: 'too-many', ownerReferences: refs(65) } }).catch((e) => e);
      expect(err.code).toBe(422);
      expect(err.message).toContain('metadata.ownerReferences: Too many: 65: must have at most 64 items');
      expect(await exists(ctx, cmRes, 'too-many')).toBe(false);
      expect(await ctx.registry.backend.count('dependents#uid-64')).toBe(0);
    });

    it('a store from before the counts: the reader lists as before until countExistingDependents has charged what it holds', async () => {
      const ctx = await newCtx(await makeBackend(), false);
      const b = ctx.registry.backend;
      const rc = await ctx.registry.create(rcs, 'default', { metadata: { name: 'old' }, spec: { replicas: 0, selector: { app: 'old' }, template: { metadata: { labels: { app: 'old' } }, spec: { containers: [{ name: 'c', image: 'x' }] } } } });
      // A dependent written as an older Skiff wrote it: no charge to its owner.
      await b.create('/registry/core/configmaps/default/of-old', JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'of-old', namespace: 'default', uid: 'u-of-old', ownerReferences: [refTo(rc)] } }));
      expect(await b.count(`dependents#${rc.metadata.uid}`)).toBe(0);
      // Counts not known complete: the owner's dependents are looked for in lists, and found.
      const before = new StoreReader(ctx.registry);
      expect((await before.byIndex(cmRes, 'owner', `default/${rc.metadata.uid}`)).map((c) => c.metadata.name)).toEqual(['of-old']);
      expect(await ctx.registry.countExistingDependents()).toBe(1);
      expect(await ctx.registry.countExistingDependents()).toBe(0); // done: the marker says so
      expect(await b.count(`dependents#${rc.metadata.uid}`)).toBe(1);
      // From now on through the count; deleting the RC collects the old dependent.
      const ev = await deleteWith(ctx, rcs, 'old', 'Background');
      for (const k of gc.keys(ev)) await gc.reconcile(k, { ...ctx, cache: new StoreReader(ctx.registry) });
      expect(await names(ctx, cmRes)).toEqual([]);
      expect(await b.count(`dependents#${rc.metadata.uid}`)).toBe(0);
    });

    it('a reference to a namespaced kind that cannot be listed ends its reconcile, with no cache made for that kind', async () => {
      const ctx = await newCtx(await makeBackend());
      const lsar = findResource('authorization.k8s.io', 'v1', 'localsubjectaccessreviews')!;
      const ref = { apiVersion: 'authorization.k8s.io/v1', kind: 'LocalSubjectAccessReview', name: 'x', uid: 'u-1' };
      const cm = await ctx.registry.create(cmRes, 'default', { metadata: { name: 'odd-owner', ownerReferences: [ref] } });
      const ac = new AbortController();
      const informers = new SharedInformers(ctx.registry);
      informers.for(cmRes);
      await informers.start(ac.signal);
      try {
        const keys = gc.keys({ type: 'ADDED', resource: cmRes, object: cm });
        expect(keys.length).toBe(1);
        const ended = await Promise.race([gc.reconcile(keys[0]!, { ...ctx, cache: informers }).then(() => 'ended'), new Promise((r) => setTimeout(() => r('still waiting'), 5000))]);
        expect(ended).toBe('ended');
        expect(informers.kinds()).not.toContain(lsar);
      } finally {
        ac.abort();
        await informers.stopped();
      }
      // The owner does not exist: the dependent goes, as with any owner gone.
      expect(await exists(ctx, cmRes, 'odd-owner')).toBe(false);
    });

    it('a cluster-scoped owner: its dependents in every namespace go, found by the owner index (no list)', async () => {
      const ctx = await newCtx(await makeBackend());
      await ctx.registry.create(nsRes, undefined, { metadata: { name: 'other' } });
      const owner = await ctx.registry.create(nodesRes, undefined, { metadata: { name: 'n1' } });
      const ref = { apiVersion: 'v1', kind: 'Node', name: 'n1', uid: owner.metadata.uid! };
      for (const ns of ['default', 'other']) await ctx.registry.create(cmRes, ns, { metadata: { name: 'of-n1', ownerReferences: [ref] } });
      await ctx.registry.create(cmRes, 'other', { metadata: { name: 'unrelated' } });
      // The loops' cache (shared informers, as in skiff up), with every read counted.
      const ac = new AbortController();
      const informers = new SharedInformers(ctx.registry);
      for (const r of [cmRes, podsRes]) informers.for(r);
      await informers.start(ac.signal);
      const reads: string[] = [];
      const counted: ObjectReader = {
        get: (r, ns, n) => (reads.push(`get ${r.resource}`), informers.get(r, ns, n)),
        list: (r, ns) => (reads.push(`list ${r.resource}`), informers.list(r, ns)),
        byIndex: (r, i, v) => (reads.push(`${i} ${r.resource}`), informers.byIndex(r, i, v)),
        countByIndex: (r, i, v) => (reads.push(`${i} ${r.resource}`), informers.countByIndex(r, i, v)),
        caughtUp: (r, rev) => informers.caughtUp(r, rev),
      };
      try {
        const gone = await ctx.registry.delete(nodesRes, undefined, 'n1', {});
        for (const k of gc.keys({ type: 'DELETED', resource: nodesRes, object: gone.object })) await gc.reconcile(k, { ...ctx, cache: counted });
      } finally {
        ac.abort();
        await informers.stopped();
      }
      expect(await names(ctx, cmRes)).toEqual([]);
      expect((await ctx.registry.list(cmRes, 'other')).items.map((c) => c.metadata.name)).toEqual(['unrelated']);
      expect(reads.filter((r) => r.startsWith('list '))).toEqual([]);
      expect(reads).toContain('owner configmaps');
    });
  });
}

describe('kubectl against a local cluster running the RC controller and the GC', () => {
  let c: TestCluster;
  let runner: ControllerRunner;
  beforeAll(async () => {
    // Only these two controllers (the cluster's own set is off), resyncing every second.
    c = await startTestCluster({ controllers: false });
    runner = runControllers(c.api.controllerContext(), [replicationController, gc], { resyncMs: 1000 });
  });
  afterAll(async () => {
    await runner?.stop();
    await c?.destroy();
  });

  const rcYaml = (name: string, replicas: number) => `apiVersion: v1
kind: ReplicationController
metadata:
  name: ${name}
spec:
  replicas: ${replicas}
  selector: {app: ${name}}
  template:
    metadata:
      labels: {app: ${name}}
    spec:
      containers:
      - name: c
        image: nginx
`;

  async function podsOf(app: string): Promise<KubeObject[]> {
    const r = await c.kubectl(['get', 'pods', '-l', `app=${app}`, '-o', 'json']);
    expect(r.stderr).toBe('');
    return JSON.parse(r.stdout).items.filter((p: KubeObject) => !p.metadata.deletionTimestamp);
  }
  async function until<T>(what: string, f: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
    let v = await f();
    for (let i = 0; i < 100 && !ok(v); i++) {
      await new Promise((r) => setTimeout(r, 100));
      v = await f();
    }
    if (!ok(v)) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v).slice(0, 500)}`);
    return v;
  }

  it('kubectl scale, pod replacement, delete --cascade=orphan|foreground|background', async () => {
    expect((await c.kubectl(['apply', '-f', c.file('rc.yaml', rcYaml('web', 2))])).stdout).toContain('replicationcontroller/web created');
    await until('2 pods', () => podsOf('web'), (p) => p.length === 2);
    expect((await c.kubectl(['scale', 'rc', 'web', '--replicas=3'])).stdout.trim()).toBe('replicationcontroller/web scaled');
    const three = await until('3 pods', () => podsOf('web'), (p) => p.length === 3);
    const victim = three[0]!.metadata.name!;
    const victimUid = three[0]!.metadata.uid;
    expect((await c.kubectl(['delete', 'pod', victim])).stdout.trim()).toBe(`pod "${victim}" deleted`);
    // The replacement is a new pod (new uid); it takes the freed slot, so its name may be the same.
    await until('replacement', () => podsOf('web'), (p) => p.length === 3 && !p.some((x) => x.metadata.uid === victimUid));
    await until('status.replicas 3', async () => JSON.parse((await c.kubectl(['get', 'rc', 'web', '-o', 'json'])).stdout).status?.replicas, (n) => n === 3);

    // Orphan: the RC goes, its pods stay without the reference.
    const before = (await podsOf('web')).map((p) => p.metadata.name).sort();
    const del = await c.kubectl(['delete', 'rc', 'web', '--cascade=orphan']);
    expect(del.stdout.trim()).toBe('replicationcontroller "web" deleted');
    await until('rc web gone', async () => (await c.kubectl(['get', 'rc', 'web'])).code, (code) => code !== 0);
    const orphans = await podsOf('web');
    expect(orphans.map((p) => p.metadata.name).sort()).toEqual(before);
    expect(orphans.every((p) => !p.metadata.ownerReferences)).toBe(true);

    // A new RC adopts them (and makes no new ones); foreground deletion then takes pods and RC.
    await c.kubectl(['apply', '-f', c.file('rc2.yaml', rcYaml('web', 3))]);
    const adopted = await until('adoption', () => podsOf('web'), (p) => p.every((x) => x.metadata.ownerReferences?.[0]?.name === 'web'));
    expect(adopted.map((p) => p.metadata.name).sort()).toEqual(before);
    expect((await c.kubectl(['delete', 'rc', 'web', '--cascade=foreground'])).code).toBe(0);
    await until('foreground done', async () => [(await c.kubectl(['get', 'rc', 'web'])).code, (await podsOf('web')).length], ([code, n]) => code !== 0 && n === 0);

    // Background (kubectl's default).
    await c.kubectl(['apply', '-f', c.file('rc3.yaml', rcYaml('bg', 2))]);
    await until('2 pods', () => podsOf('bg'), (p) => p.length === 2);
    expect((await c.kubectl(['delete', 'rc', 'bg', '--cascade=background'])).code).toBe(0);
    await until('background done', () => podsOf('bg'), (p) => p.length === 0);
  });
});
