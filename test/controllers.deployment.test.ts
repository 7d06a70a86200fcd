// The Deployment controller (with the ReplicaSet controller making the pods) on the real stores (SQLite,
// and DynamoDB through moto): hash-named ReplicaSets with kube's annotations, RollingUpdate within
// maxSurge/maxUnavailable (maxUnavailable 0 never drops available replicas below spec.replicas), Recreate
// (no new pod while an old one runs), proportional scaling mid-rollout, revisionHistoryLimit, pause and
// resume, progressDeadlineSeconds, adoption, status and conditions, events, and duplicated/reordered
// delivery with a racing second instance ending where clean delivery does.

import { afterAll, describe, expect, it } from 'vitest';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import type { ChangeEvent, Controller, ControllerContext } from '../lambdas/controllers/controller.ts';
import { deploymentController as dc } from '../lambdas/controllers/deployment.ts';
import { computeHash, equalIgnoreHash, fenceposts, setNewReplicaSetAnnotations } from '../lambdas/controllers/deployment-util.ts';
import { replicaSetController as rsc } from '../lambdas/controllers/replicaset.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import type { Backend } from '../lambdas/storage/backend.ts';
import { testStores } from './support/backends.ts';
import { handleStreamBatch, streamFilterPatterns } from '../lambdas/controllers/stream.ts';
import { DynamoBackend, ensureTable } from '../lambdas/storage/dynamodb.ts';
import { dynamoTestEndpoint, uniqueTableName } from './support/dynamodb.ts';
import { streamRecords } from './support/dynamo-stream.ts';
import { passesFilters } from './support/lambda-filter.ts';

const depRes = findResource('apps', 'v1', 'deployments')!;
const rsRes = findResource('apps', 'v1', 'replicasets')!;
const podsRes = findResource('', 'v1', 'pods')!;
const eventsRes = findResource('', 'v1', 'events')!;
const nsRes = findResource('', 'v1', 'namespaces')!;

const backends = await testStores('deploy');

async function newCtx(open: () => Backend): Promise<ControllerContext> {
  const ctx = new ApiServer({ backend: open() }).controllerContext();
  await ctx.registry.create(nsRes, undefined, { metadata: { name: 'default' } }).catch(() => undefined);
  return ctx;
}

function deployObj(name: string, replicas: number, strategy: Record<string, unknown> = { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } }, extra: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'nginx:1' }] } },
      strategy,
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 600,
      ...extra,
    },
  };
}

const live = (p: KubeObject) => !p.metadata.deletionTimestamp;
const isReady = (p: KubeObject) => (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True');
const podsOf = async (ctx: ControllerContext) => (await ctx.registry.list(podsRes, 'default')).items.filter(live);
const rssOf = async (ctx: ControllerContext, d: string) =>
  (await ctx.registry.list(rsRes, 'default')).items.filter((rs) => rs.metadata.ownerReferences?.some((r) => r.kind === 'Deployment' && r.name === d));
const getD = (ctx: ControllerContext, name: string) => ctx.registry.get(depRes, 'default', name);
const cond = (d: KubeObject, type: string) => (d.status?.conditions ?? []).find((c: any) => c.type === type);

async function markReady(ctx: ControllerContext, pods?: KubeObject[]): Promise<void> {
  for (const p of pods ?? (await podsOf(ctx))) {
    if (isReady(p)) continue;
    await ctx.registry.guaranteedUpdate(podsRes, 'default', p.metadata.name!, undefined, { subresource: 'status' }, (cur) => ({
      ...cur,
      status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: new Date(Date.now() - 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') }] },
    }));
  }
}

async function reconcileAll(ctx: ControllerContext, c: Controller): Promise<void> {
  for (const k of await c.allKeys(ctx)) await c.reconcile(k, ctx);
}

/** One round of both loops (as resync would run them). */
async function round(ctx: ControllerContext): Promise<void> {
  await reconcileAll(ctx, dc);
  await reconcileAll(ctx, rsc);
  await reconcileAll(ctx, dc);
}

/** The store's revision: unchanged across a round when the round wrote nothing. */
const storeRevision = async (ctx: ControllerContext) => (await ctx.registry.list(nsRes, undefined)).metadata.resourceVersion;

/** Rounds until one changes nothing (at most `rounds`), pods made ready after each when `ready`. */
async function settle(ctx: ControllerContext, ready = true, rounds = 12): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    const before = await storeRevision(ctx);
    await round(ctx);
    if (ready) await markReady(ctx);
    if ((await storeRevision(ctx)) === before) return;
  }
}

async function setImage(ctx: ControllerContext, name: string, image: string): Promise<void> {
  await ctx.registry.guaranteedUpdate(depRes, 'default', name, undefined, {}, (cur) => {
    const c = structuredClone(cur);
    c.spec.template.spec.containers[0].image = image;
    return c;
  });
}

for (const [label, makeStore, enabled] of backends) {
  describe.skipIf(!enabled)(`deployment controller on ${label}`, () => {
    it('creates <name>-<pod-template-hash> with the hash label, selector and annotations; status and conditions; ScalingReplicaSet event', async () => {
      const ctx = await newCtx(await makeStore());
      const d = await ctx.registry.create(depRes, 'default', deployObj('web', 3));
      expect(dc.keys({ type: 'ADDED', resource: depRes, object: d })).toEqual(['default/web']);
      await dc.reconcile('default/web', ctx);
      const [rs] = await rssOf(ctx, 'web');
      const hash = computeHash(d.spec.template);
      expect(hash).toMatch(/^[bcdfghjklmnpqrstvwxz2456789]{6,10}$/);
      expect(rs!.metadata.name).toBe(`web-${hash}`);
      expect(rs!.metadata.labels).toEqual({ app: 'web', 'pod-template-hash': hash });
      expect(rs!.spec.selector).toEqual({ matchLabels: { app: 'web', 'pod-template-hash': hash } });
      expect(rs!.spec.template.metadata.labels).toEqual({ app: 'web', 'pod-template-hash': hash });
      expect(rs!.spec.replicas).toBe(3);
      expect(rs!.metadata.annotations).toMatchObject({
        'deployment.kubernetes.io/revision': '1',
        'deployment.kubernetes.io/desired-replicas': '3',
        'deployment.kubernetes.io/max-replicas': '4',
      });
      expect(rs!.metadata.ownerReferences).toEqual([{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: d.metadata.uid, controller: true, blockOwnerDeletion: true }]);
      // The ReplicaSet's events map to the Deployment.
      expect(dc.keys({ type: 'MODIFIED', resource: rsRes, object: rs! })).toEqual(['default/web']);
      let got = await getD(ctx, 'web');
      expect(got.metadata.annotations?.['deployment.kubernetes.io/revision']).toBe('1');
      expect(cond(got, 'Progressing')).toMatchObject({ status: 'True', reason: 'NewReplicaSetCreated', message: `Created new replica set "web-${hash}"` });
      expect(cond(got, 'Available')).toMatchObject({ status: 'False', reason: 'MinimumReplicasUnavailable', message: 'Deployment does not have minimum availability.' });
      const ev = (await ctx.registry.list(eventsRes, 'default')).items.filter((e) => e.reason === 'ScalingReplicaSet');
      expect(ev.map((e) => e.message)).toEqual([`Scaled up replica set web-${hash} from 0 to 3`]);
      expect(ev[0]!.source.component).toBe('deployment-controller');

      await settle(ctx);
      expect((await podsOf(ctx)).length).toBe(3);
      got = await getD(ctx, 'web');
      expect(got.status).toMatchObject({ observedGeneration: 1, replicas: 3, updatedReplicas: 3, readyReplicas: 3, availableReplicas: 3, unavailableReplicas: 0 });
      expect(cond(got, 'Available')).toMatchObject({ status: 'True', reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.' });
      expect(cond(got, 'Progressing')).toMatchObject({ status: 'True', reason: 'NewReplicaSetAvailable', message: `ReplicaSet "web-${hash}" has successfully progressed.` });
      // Settled: another round writes nothing.
      const rv = got.metadata.resourceVersion;
      await round(ctx);
      expect((await getD(ctx, 'web')).metadata.resourceVersion).toBe(rv);
    });

    it('RollingUpdate with maxUnavailable 0: available replicas never below spec.replicas, at most maxSurge extra pods; revision 2', async () => {
      const ctx = await newCtx(await makeStore());
      await ctx.registry.create(depRes, 'default', deployObj('roll', 4, { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } }));
      await settle(ctx);
      const [first] = await rssOf(ctx, 'roll');
      await setImage(ctx, 'roll', 'nginx:2');
      // Step by step: one pod made ready per round, invariants checked after every write.
      for (let i = 0; i < 30; i++) {
        await round(ctx);
        const pods = await podsOf(ctx);
        expect(pods.filter(isReady).length).toBeGreaterThanOrEqual(4);
        expect(pods.length).toBeLessThanOrEqual(5);
        const notReady = pods.filter((p) => !isReady(p));
        if (notReady.length) await markReady(ctx, notReady.slice(0, 1));
      }
      const rss = await rssOf(ctx, 'roll');
      expect(rss.length).toBe(2);
      const second = rss.find((rs) => rs.metadata.uid !== first!.metadata.uid)!;
      expect(second.spec.replicas).toBe(4);
      expect(second.metadata.annotations!['deployment.kubernetes.io/revision']).toBe('2');
      expect((await ctx.registry.get(rsRes, 'default', first!.metadata.name!)).spec.replicas).toBe(0);
      const pods = await podsOf(ctx);
      expect(pods.every((p) => p.spec.containers[0].image === 'nginx:2')).toBe(true);
      const got = await getD(ctx, 'roll');
      expect(got.metadata.annotations!['deployment.kubernetes.io/revision']).toBe('2');
      expect(got.status).toMatchObject({ observedGeneration: 2, replicas: 4, updatedReplicas: 4, availableReplicas: 4 });
      expect(cond(got, 'Progressing')).toMatchObject({ reason: 'NewReplicaSetAvailable' });
      const msgs = (await ctx.registry.list(eventsRes, 'default')).items.filter((e) => e.reason === 'ScalingReplicaSet').map((e) => e.message);
      expect(msgs).toContain(`Scaled up replica set ${second.metadata.name} from 0 to 1`);
      expect(msgs).toContain(`Scaled down replica set ${first!.metadata.name} from 4 to 3`);
      expect(msgs).toContain(`Scaled down replica set ${first!.metadata.name} from 1 to 0`);
    });

    it('rolling back to the first template reuses its ReplicaSet with a new revision and revision-history', async () => {
      const ctx = await newCtx(await makeStore());
      await ctx.registry.create(depRes, 'default', deployObj('back', 2));
      await settle(ctx);
      await setImage(ctx, 'back', 'nginx:2');
      await settle(ctx);
      await setImage(ctx, 'back', 'nginx:1');
      await settle(ctx);
      const rss = await rssOf(ctx, 'back');
      expect(rss.length).toBe(2);
      const firstRS = rss.find((rs) => rs.spec.template.spec.containers[0].image === 'nginx:1')!;
      expect(firstRS.spec.replicas).toBe(2);
      expect(firstRS.metadata.annotations).toMatchObject({ 'deployment.kubernetes.io/revision': '3', 'deployment.kubernetes.io/revision-history': '1' });
      expect((await getD(ctx, 'back')).metadata.annotations!['deployment.kubernetes.io/revision']).toBe('3');
    });

    it('Recreate: old pods all gone before the new ReplicaSet is created', async () => {
      const ctx = await newCtx(await makeStore());
      await ctx.registry.create(depRes, 'default', deployObj('re', 3, { type: 'Recreate' }));
      await settle(ctx);
      const [old] = await rssOf(ctx, 're');
      // One old pod will linger as terminating (a finalizer holds it), as a pod on a node does.
      const [held] = await podsOf(ctx);
      await ctx.registry.guaranteedUpdate(podsRes, 'default', held!.metadata.name!, undefined, {}, (cur) => ({ ...cur, metadata: { ...cur.metadata, finalizers: ['test.skiff.io/hold'] } }));
      await setImage(ctx, 're', 'nginx:2');
      await dc.reconcile('default/re', ctx);
      expect((await ctx.registry.get(rsRes, 'default', old!.metadata.name!)).spec.replicas).toBe(0);
      expect((await rssOf(ctx, 're')).length).toBe(1);
      // The old ReplicaSet has not reported its pods gone: still no new ReplicaSet.
      await dc.reconcile('default/re', ctx);
      expect((await rssOf(ctx, 're')).length).toBe(1);
      // It has (status.replicas 0), but the terminating pod still runs: still none.
      await reconcileAll(ctx, rsc);
      expect((await ctx.registry.get(rsRes, 'default', old!.metadata.name!)).status.replicas).toBe(0);
      expect((await ctx.registry.get(podsRes, 'default', held!.metadata.name!)).metadata.deletionTimestamp).toBeTruthy();
      await dc.reconcile('default/re', ctx);
      expect((await rssOf(ctx, 're')).length).toBe(1);
      // Gone: its deletion maps to the Deployment (through the ReplicaSet), which creates the new one.
      await ctx.registry.guaranteedUpdate(podsRes, 'default', held!.metadata.name!, undefined, {}, (cur) => ({ ...cur, metadata: { ...cur.metadata, finalizers: [] } }));
      const gone: ChangeEvent = { type: 'DELETED', resource: podsRes, object: held! };
      expect(dc.keys(gone)).toEqual([`default/replicaset:${old!.metadata.name}`]);
      await expect(ctx.registry.get(podsRes, 'default', held!.metadata.name!)).rejects.toMatchObject({ code: 404 });
      for (const k of dc.keys(gone)) await dc.reconcile(k, ctx);
      expect((await rssOf(ctx, 're')).length).toBe(2);
      await settle(ctx);
      const rss = await rssOf(ctx, 're');
      expect(rss.length).toBe(2);
      expect((await podsOf(ctx)).every((p) => p.spec.containers[0].image === 'nginx:2')).toBe(true);
      expect((await podsOf(ctx)).length).toBe(3);
      expect((await getD(ctx, 're')).status).toMatchObject({ replicas: 3, updatedReplicas: 3, availableReplicas: 3 });
    });

    it('scaling mid-rollout is proportional across the ReplicaSets', async () => {
      const ctx = await newCtx(await makeStore());
      await ctx.registry.create(depRes, 'default', deployObj('prop', 10, { type: 'RollingUpdate', rollingUpdate: { maxSurge: 3, maxUnavailable: 2 } }));
      await settle(ctx);
      await setImage(ctx, 'prop', 'nginx:broken');
      // The new pods never become ready: the rollout stalls with both ReplicaSets active.
      await settle(ctx, false, 4);
      let rss = await rssOf(ctx, 'prop');
      const sizes = () => rss.map((rs) => rs.spec.replicas).sort((a, b) => a - b);
      expect(sizes()).toEqual([5, 8]);
      await ctx.registry.guaranteedUpdate(depRes, 'default', 'prop', undefined, {}, (cur) => ({ ...cur, spec: { ...cur.spec, replicas: 20 } }));
      await dc.reconcile('default/prop', ctx);
      rss = await rssOf(ctx, 'prop');
      // 13 -> 23 (20 + maxSurge 3): 8 -> 14 and 5 -> 9, as kube's getReplicaSetFraction rounds.
      expect(sizes()).toEqual([9, 14]);
      expect(rss.every((rs) => rs.metadata.annotations!['deployment.kubernetes.io/desired-replicas'] === '20' && rs.metadata.annotations!['deployment.kubernetes.io/max-replicas'] === '23')).toBe(true);
    });

    it('revisionHistoryLimit deletes the oldest scaled-down ReplicaSets', async () => {
      const ctx = await newCtx(await makeStore());
      await ctx.registry.create(depRes, 'default', deployObj('hist', 1, undefined, { revisionHistoryLimit: 1 }));
      await settle(ctx);
      for (const img of ['nginx:2', 'nginx:3', 'nginx:4']) {
        await setImage(ctx, 'hist', img);
        await settle(ctx);
      }
      const rss = await rssOf(ctx, 'hist');
      expect(rss.map((rs) => rs.metadata.annotations!['deployment.kubernetes.io/revision']).sort()).toEqual(['3', '4']);
    });

    it('paused: a template change makes no ReplicaSet (Progressing Unknown DeploymentPaused); resumed it rolls out', async () => {
      const ctx = await newCtx(await makeStore());
      await ctx.registry.create(depRes, 'default', deployObj('p', 2));
      await settle(ctx);
      await ctx.registry.guaranteedUpdate(depRes, 'default', 'p', undefined, {}, (cur) => ({ ...cur, spec: { ...cur.spec, paused: true } }));
      await setImage(ctx, 'p', 'nginx:2');
      await settle(ctx);
      expect((await rssOf(ctx, 'p')).length).toBe(1);
      let got = await getD(ctx, 'p');
      expect(cond(got, 'Progressing')).toMatchObject({ status: 'Unknown', reason: 'DeploymentPaused', message: 'Deployment is paused' });
      expect(got.status.observedGeneration).toBe(got.metadata.generation);
      // Scaling still applies while paused.
      await ctx.registry.guaranteedUpdate(depRes, 'default', 'p', undefined, {}, (cur) => ({ ...cur, spec: { ...cur.spec, replicas: 3 } }));
      await settle(ctx);
      expect((await rssOf(ctx, 'p'))[0]!.spec.replicas).toBe(3);
      await ctx.registry.guaranteedUpdate(depRes, 'default', 'p', undefined, {}, (cur) => ({ ...cur, spec: { ...cur.spec, paused: false } }));
      await dc.reconcile('default/p', ctx);
      got = await getD(ctx, 'p');
      expect(['DeploymentResumed', 'NewReplicaSetCreated', 'ReplicaSetUpdated']).toContain(cond(got, 'Progressing').reason);
      await settle(ctx);
      expect((await rssOf(ctx, 'p')).length).toBe(2);
      expect((await podsOf(ctx)).every((p) => p.spec.containers[0].image === 'nginx:2')).toBe(true);
      expect(cond(await getD(ctx, 'p'), 'Progressing')).toMatchObject({ status: 'True', reason: 'NewReplicaSetAvailable' });
    });

    it('progressDeadlineSeconds: no progress past the deadline is Progressing=False ProgressDeadlineExceeded', async () => {
      const ctx = await newCtx(await makeStore());
      await ctx.registry.create(depRes, 'default', deployObj('slow', 2, undefined, { progressDeadlineSeconds: 30 }));
      await settle(ctx, false, 2);
      const r = await dc.reconcile('default/slow', ctx);
      // It asks to look again when the deadline passes.
      expect(r?.requeueAfterMs).toBeGreaterThan(20_000);
      expect(r?.requeueAfterMs).toBeLessThanOrEqual(32_000);
      const later: ControllerContext = { ...ctx, now: () => new Date(Date.now() + 60_000) };
      await dc.reconcile('default/slow', later);
      const got = await getD(ctx, 'slow');
      const rs = (await rssOf(ctx, 'slow'))[0]!;
      expect(cond(got, 'Progressing')).toMatchObject({ status: 'False', reason: 'ProgressDeadlineExceeded', message: `ReplicaSet "${rs.metadata.name}" has timed out progressing.` });
      // Progress afterwards makes it progress again.
      await markReady(ctx);
      await reconcileAll(ctx, rsc);
      await dc.reconcile('default/slow', ctx);
      expect(cond(await getD(ctx, 'slow'), 'Progressing')).toMatchObject({ status: 'True', reason: 'NewReplicaSetAvailable' });
    });

    it('adopts an orphan ReplicaSet its selector matches (and maps its events to the namespace)', async () => {
      const ctx = await newCtx(await makeStore());
      const d = deployObj('adopt', 2);
      const hash = computeHash(d.spec.template);
      const orphan = await ctx.registry.create(rsRes, 'default', {
        metadata: { name: `adopt-${hash}`, labels: { app: 'adopt', 'pod-template-hash': hash } },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'adopt', 'pod-template-hash': hash } },
          template: { metadata: { labels: { app: 'adopt', 'pod-template-hash': hash } }, spec: d.spec.template.spec },
        },
      });
      expect(dc.keys({ type: 'ADDED', resource: rsRes, object: orphan })).toEqual(['default/*']);
      const created = await ctx.registry.create(depRes, 'default', d);
      await dc.reconcile('default/*', ctx);
      const rss = await rssOf(ctx, 'adopt');
      expect(rss.map((rs) => rs.metadata.uid)).toEqual([orphan.metadata.uid]);
      expect(rss[0]!.metadata.ownerReferences![0]!.uid).toBe(created.metadata.uid);
      expect(rss[0]!.metadata.annotations!['deployment.kubernetes.io/revision']).toBe('1');
    });

    it('duplicated, reordered delivery and a racing second instance reach the clean-delivery state', async () => {
      const run = async (deliver: (evs: ChangeEvent[], ctxs: ControllerContext[]) => Promise<void>) => {
        const open = await makeStore();
        const a = await newCtx(open);
        const b = await newCtx(open);
        const d = await a.registry.create(depRes, 'default', deployObj('ev', 3, { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 1 } }));
        await deliver([{ type: 'ADDED', resource: depRes, object: d }], [a, b]);
        await settle(a);
        await setImage(a, 'ev', 'nginx:2');
        const changed = await getD(a, 'ev');
        for (let i = 0; i < 10; i++) {
          await deliver([{ type: 'MODIFIED', resource: depRes, object: changed }, ...(await a.registry.list(rsRes, 'default')).items.map((o) => ({ type: 'MODIFIED' as const, resource: rsRes, object: o }))], [a, b]);
          await reconcileAll(a, rsc);
          await markReady(a);
        }
        await settle(a);
        const rss = await rssOf(a, 'ev');
        const status = (await getD(a, 'ev')).status;
        return {
          rss: rss.map((rs) => [rs.metadata.name, rs.spec.replicas, rs.metadata.annotations!['deployment.kubernetes.io/revision']]).sort(),
          pods: (await podsOf(a)).length,
          status: { replicas: status.replicas, updatedReplicas: status.updatedReplicas, availableReplicas: status.availableReplicas },
        };
      };
      const once = async (evs: ChangeEvent[], [a]: ControllerContext[]) => {
        for (const ev of evs) for (const k of dc.keys(ev)) await dc.reconcile(k, a!);
      };
      const dup = async (evs: ChangeEvent[], [a, b]: ControllerContext[]) => {
        const all = [...evs, ...[...evs].reverse(), ...evs];
        await Promise.all(all.flatMap((ev) => dc.keys(ev)).flatMap((k) => [dc.reconcile(k, a!), dc.reconcile(k, b!)]));
      };
      const clean = await run(once);
      expect(clean.rss.length).toBe(2);
      expect(clean.pods).toBe(3);
      expect(await run(dup)).toEqual({ ...clean, rss: clean.rss.map(([n, r, v]) => [n, r, v]) });
    });
  });
}

describe('deployment util (kube deployment_util semantics)', () => {
  it('the hash ignores key order and Go zero values (what kubectl rollout undo sends back), and changes with collisionCount', () => {
    const t = { metadata: { labels: { app: 'x' } }, spec: { containers: [{ name: 'c', image: 'i' }] } };
    const asGoMarshals = { spec: { containers: [{ image: 'i', name: 'c', resources: {} }] }, metadata: { creationTimestamp: null, labels: { app: 'x' } } };
    expect(computeHash(asGoMarshals)).toBe(computeHash(t));
    expect(equalIgnoreHash(asGoMarshals, { ...t, metadata: { labels: { app: 'x', 'pod-template-hash': 'abc' } } })).toBe(true);
    expect(equalIgnoreHash(t, { ...t, spec: { containers: [{ name: 'c', image: 'j' }] } })).toBe(false);
    expect(computeHash(t, 1)).not.toBe(computeHash(t));
    expect(computeHash(t, 1)).toBe(computeHash(t, 1));
  });

  it('fenceposts: maxSurge rounds up, maxUnavailable down, never both 0', () => {
    const d = (replicas: number, maxSurge: unknown, maxUnavailable: unknown) =>
      ({ metadata: {}, spec: { replicas, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge, maxUnavailable } } } }) as KubeObject;
    expect(fenceposts(d(10, '25%', '25%'))).toEqual({ surge: 3, unavailable: 2 });
    expect(fenceposts(d(1, '25%', '25%'))).toEqual({ surge: 1, unavailable: 0 });
    expect(fenceposts(d(3, 0, '10%'))).toEqual({ surge: 0, unavailable: 1 });
  });

  it('a rollback to an old ReplicaSet moves its old revision into revision-history', () => {
    const d = { metadata: { annotations: { 'kubernetes.io/change-cause': 'why', 'deployment.kubernetes.io/revision': '4' } }, spec: { replicas: 2 } } as KubeObject;
    const rs = { metadata: { annotations: { 'deployment.kubernetes.io/revision': '2', 'deployment.kubernetes.io/revision-history': '1' } } } as KubeObject;
    expect(setNewReplicaSetAnnotations(d, rs, 5, true)).toBe(true);
    expect(rs.metadata.annotations).toEqual({ 'deployment.kubernetes.io/revision': '5', 'deployment.kubernetes.io/revision-history': '1,2', 'kubernetes.io/change-cause': 'why' });
    // Again: nothing to change (idempotent under redelivery).
    expect(setNewReplicaSetAnnotations(d, rs, 5, true)).toBe(false);
  });
});

// ---- the cloud path: the two controllers fed real DynamoDB stream records through the deployed filter ----

const ddb = await dynamoTestEndpoint();
afterAll(async () => ddb?.stop());

describe.skipIf(!ddb)('Deployment and ReplicaSet controllers on the DynamoDB stream', () => {
  it('roll out and roll over from stream batches, every batch holding every record so far; redelivered and reversed, nothing more is written', async () => {
    const tableName = uniqueTableName('skiff-deploystream');
    await ensureTable(ddb!.client, tableName);
    const backend = new DynamoBackend({ client: ddb!.client, tableName });
    const ctx = new ApiServer({ backend }).controllerContext();
    await ctx.registry.create(nsRes, undefined, { metadata: { name: 'default' } });
    const loops = [dc, rsc];
    const batch = async () => (await streamRecords(ddb!, tableName)).filter((r) => passesFilters(streamFilterPatterns(...loops), r));
    const deliver = async () => {
      const r = await handleStreamBatch(loops, ctx, await batch());
      expect(r.batchItemFailures).toEqual([]);
    };
    const complete = async (image: string) => {
      const d = await getD(ctx, 'web');
      return d.status?.updatedReplicas === 3 && d.status?.availableReplicas === 3 && d.status?.replicas === 3 && (await podsOf(ctx)).every((p) => p.spec.containers[0].image === image);
    };
    await ctx.registry.create(depRes, 'default', deployObj('web', 3, { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } }));
    for (let i = 0; i < 12 && !(await complete('nginx:1')); i++) {
      await deliver();
      await markReady(ctx);
    }
    expect(await complete('nginx:1')).toBe(true);
    await setImage(ctx, 'web', 'nginx:2');
    for (let i = 0; i < 30 && !(await complete('nginx:2')); i++) {
      await deliver();
      // maxUnavailable 0 holds on this path too.
      expect((await podsOf(ctx)).filter(isReady).length).toBeGreaterThanOrEqual(3);
      await markReady(ctx);
    }
    expect(await complete('nginx:2')).toBe(true);
    for (let i = 0; i < 3; i++) await deliver();
    const rss = await rssOf(ctx, 'web');
    expect(rss.map((rs) => [rs.spec.replicas, rs.metadata.annotations!['deployment.kubernetes.io/revision']]).sort()).toEqual([
      [0, '1'],
      [3, '2'],
    ]);
    expect(cond(await getD(ctx, 'web'), 'Progressing')).toMatchObject({ status: 'True', reason: 'NewReplicaSetAvailable' });

    const rev = await backend.currentRevision();
    const all = await batch();
    await handleStreamBatch(loops, ctx, all);
    await handleStreamBatch(loops, ctx, [...all].reverse());
    expect(await backend.currentRevision()).toBe(rev);
    expect((await ctx.registry.list(rsRes, 'default')).items).toHaveLength(2);
    expect((await podsOf(ctx)).length).toBe(3);
  });
});
