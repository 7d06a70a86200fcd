// The StatefulSet controller on the real stores (SQLite, and DynamoDB through moto): stable identities
// (names, hostname/subdomain, labels), OrderedReady creation and scale-down, Parallel, claims from
// volumeClaimTemplates with the retention policy's ownerReferences, RollingUpdate with a partition and
// the current/update revisions, OnDelete; and duplicated or reordered delivery reaching the clean state.

import { describe, expect, it } from 'vitest';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import type { ChangeEvent, ControllerContext } from '../lambdas/controllers/controller.ts';
import { createStatefulSetController, statefulSetController as ssc } from '../lambdas/controllers/statefulset.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import type { Backend } from '../lambdas/storage/backend.ts';
import { testStores } from './support/backends.ts';

const stsRes = findResource('apps', 'v1', 'statefulsets')!;
const crRes = findResource('apps', 'v1', 'controllerrevisions')!;
const podsRes = findResource('', 'v1', 'pods')!;
const pvcRes = findResource('', 'v1', 'persistentvolumeclaims')!;
const eventsRes = findResource('', 'v1', 'events')!;
const nsRes = findResource('', 'v1', 'namespaces')!;

const backends = await testStores('sts');

async function newCtx(open: () => Backend): Promise<ControllerContext> {
  const ctx = new ApiServer({ backend: open() }).controllerContext();
  try {
    await ctx.registry.create(nsRes, undefined, { metadata: { name: 'default' } });
  } catch {
    // already there
  }
  return ctx;
}

function stsObj(name: string, replicas: number, extra: Record<string, unknown> = {}): KubeObject {
  const mounts = extra.volumeClaimTemplates ? {} : { volumeMounts: [{ name: 'www', mountPath: '/www' }] };
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name },
    spec: {
      replicas,
      serviceName: 'nginx',
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'nginx:1', ...mounts }] } },
      volumeClaimTemplates: [{ metadata: { name: 'www' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }],
      podManagementPolicy: 'OrderedReady',
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } },
      revisionHistoryLimit: 10,
      ...extra,
    },
  };
}

const podsOf = async (ctx: ControllerContext) => (await ctx.registry.list(podsRes, 'default')).items.filter((p) => !p.metadata.deletionTimestamp);
const names = async (ctx: ControllerContext) => (await podsOf(ctx)).map((p) => p.metadata.name!).sort();
const getSet = (ctx: ControllerContext, name: string) => ctx.registry.get(stsRes, 'default', name);

async function setReady(ctx: ControllerContext): Promise<void> {
  for (const p of await podsOf(ctx)) {
    if (p.status?.phase === 'Running') continue;
    await ctx.registry.guaranteedUpdate(podsRes, 'default', p.metadata.name!, undefined, { subresource: 'status' }, (cur) => ({
      ...cur,
      status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: '2020-01-01T00:00:00Z' }] },
    }));
  }
}

/** Reconciles, makes every pod Running and Ready (a kubelet), repeatedly; returns the names after each round. */
async function rounds(ctx: ControllerContext, key: string, n: number): Promise<string[][]> {
  const seen: string[][] = [];
  for (let i = 0; i < n; i++) {
    await ssc.reconcile(key, ctx);
    seen.push(await names(ctx));
    await setReady(ctx);
  }
  await ssc.reconcile(key, ctx);
  return seen;
}

const image = (ctx: ControllerContext, name: string, img: string) =>
  ctx.registry.guaranteedUpdate(stsRes, 'default', name, undefined, {}, (cur) => {
    cur.spec.template.spec.containers[0].image = img;
    return cur;
  });

for (const [label, makeStore, enabled] of backends) {
  describe.skipIf(!enabled)(`statefulset controller on ${label}`, () => {
    it('OrderedReady: web-0, web-1, web-2 one at a time, each with its identity and claim', async () => {
      const ctx = await newCtx(await makeStore());
      const set = await ctx.registry.create(stsRes, 'default', stsObj('web', 3));
      await ssc.reconcile('default/web', ctx);
      await ssc.reconcile('default/web', ctx); // web-0 not ready yet: nothing more
      expect(await names(ctx)).toEqual(['web-0']);
      expect(await rounds(ctx, 'default/web', 3)).toEqual([['web-0'], ['web-0', 'web-1'], ['web-0', 'web-1', 'web-2']]);

      const p = await ctx.registry.get(podsRes, 'default', 'web-1');
      const st = (await getSet(ctx, 'web')).status;
      expect(p.metadata.labels).toEqual({ app: 'web', 'statefulset.kubernetes.io/pod-name': 'web-1', 'apps.kubernetes.io/pod-index': '1', 'controller-revision-hash': st.updateRevision });
      expect(p.spec.hostname).toBe('web-1');
      expect(p.spec.subdomain).toBe('nginx');
      expect(p.spec.volumes).toEqual([{ name: 'www', persistentVolumeClaim: { claimName: 'www-web-1' } }]);
      expect(p.metadata.ownerReferences).toEqual([{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'web', uid: set.metadata.uid, controller: true, blockOwnerDeletion: true }]);
      const claims = (await ctx.registry.list(pvcRes, 'default')).items;
      expect(claims.map((c) => c.metadata.name).sort()).toEqual(['www-web-0', 'www-web-1', 'www-web-2']);
      expect(claims[0]!.metadata.labels).toEqual({ app: 'web' });
      expect(claims[0]!.metadata.ownerReferences).toBeUndefined(); // Retain by default
      expect(claims[0]!.spec.resources).toEqual({ requests: { storage: '1Gi' } });
      expect(st).toMatchObject({ replicas: 3, readyReplicas: 3, currentReplicas: 3, updatedReplicas: 3, availableReplicas: 3, observedGeneration: 1 });
      expect(st.currentRevision).toBe(st.updateRevision);
      const [cr] = (await ctx.registry.list(crRes, 'default')).items;
      expect(cr).toMatchObject({ metadata: { name: st.updateRevision }, revision: 1 });
      const evs = (await ctx.registry.list(eventsRes, 'default')).items.map((e) => e.message);
      expect(evs).toContain('create Pod web-0 in StatefulSet web successful');
      expect(evs).toContain('create Claim www-web-0 Pod web-0 in StatefulSet web success');
    });

    it('scales down from the highest ordinal, one at a time; whenScaled: Delete hands the claim to the pod', async () => {
      const ctx = await newCtx(await makeStore());
      await ctx.registry.create(stsRes, 'default', stsObj('db', 3, { persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Delete', whenScaled: 'Delete' } }));
      await rounds(ctx, 'default/db', 4);
      const set = await getSet(ctx, 'db');
      const claim0 = await ctx.registry.get(pvcRes, 'default', 'www-db-0');
      expect(claim0.metadata.ownerReferences).toEqual([{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', uid: set.metadata.uid }]);
      const pod2 = await ctx.registry.get(podsRes, 'default', 'db-2');
      await ctx.registry.guaranteedUpdate(stsRes, 'default', 'db', undefined, {}, (cur) => ({ ...cur, spec: { ...cur.spec, replicas: 1 } }));
      await ssc.reconcile('default/db', ctx);
      expect(await names(ctx)).toEqual(['db-0', 'db-1']);
      // The condemned pod's claim is now owned by the pod (the garbage collector deletes it with the pod).
      expect((await ctx.registry.get(pvcRes, 'default', 'www-db-2')).metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Pod', name: 'db-2', uid: pod2.metadata.uid }]);
      await ssc.reconcile('default/db', ctx);
      expect(await names(ctx)).toEqual(['db-0']);
      expect((await ctx.registry.list(eventsRes, 'default')).items.filter((e) => e.reason === 'SuccessfulDelete').map((e) => e.message).sort()).toEqual([
        'delete Pod db-1 in StatefulSet db successful',
        'delete Pod db-2 in StatefulSet db successful',
      ]);
      expect((await getSet(ctx, 'db')).status).toMatchObject({ replicas: 1, readyReplicas: 1 });
    });

    it('Parallel creates and removes all at once', async () => {
      const ctx = await newCtx(await makeStore());
      await ctx.registry.create(stsRes, 'default', stsObj('par', 3, { podManagementPolicy: 'Parallel', volumeClaimTemplates: [] }));
      await ssc.reconcile('default/par', ctx);
      expect(await names(ctx)).toEqual(['par-0', 'par-1', 'par-2']);
      await ctx.registry.guaranteedUpdate(stsRes, 'default', 'par', undefined, {}, (cur) => ({ ...cur, spec: { ...cur.spec, replicas: 0 } }));
      await ssc.reconcile('default/par', ctx);
      expect(await names(ctx)).toEqual([]);
      expect((await getSet(ctx, 'par')).status.replicas).toBe(0);
    });

    it('replicas 2^31 - 1 (a valid int32): each pass makes a bounded number of pods, in bounded memory', async () => {
      // The pass once sized an array by spec.replicas: 2^31 - 1 slots took the whole heap (the fuzz suite's
      // worker died of it). Both policies: OrderedReady makes one pod, Parallel a burst (20 here, 500 by
      // default: the same bound, quicker on moto), and asks again.
      const ctx = await newCtx(await makeStore());
      const small = createStatefulSetController({ burstReplicas: 20 });
      for (const policy of ['OrderedReady', 'Parallel']) {
        const name = `huge-${policy.toLowerCase()}`;
        await ctx.registry.create(stsRes, 'default', stsObj(name, 2 ** 31 - 1, { podManagementPolicy: policy, volumeClaimTemplates: [] }));
        const heap = process.memoryUsage().heapUsed;
        const r = await small.reconcile(`default/${name}`, ctx);
        expect(process.memoryUsage().heapUsed - heap).toBeLessThan(256 * 1024 * 1024);
        const made = (await names(ctx)).filter((n) => n.startsWith(`${name}-`));
        if (policy === 'OrderedReady') expect(made).toEqual([`${name}-0`]);
        else {
          expect(made.length).toBeGreaterThan(1);
          expect(made.length).toBeLessThanOrEqual(20);
          expect(r?.requeueAfterMs).toBe(0); // the rest in later passes, each as bounded
        }
      }
    });

    it('RollingUpdate with a partition: highest ordinal first, one at a time; currentRevision moves once all are updated', async () => {
      const ctx = await newCtx(await makeStore());
      await ctx.registry.create(stsRes, 'default', stsObj('ru', 3));
      await rounds(ctx, 'default/ru', 4);
      const rev1 = (await getSet(ctx, 'ru')).status.currentRevision;
      await ctx.registry.guaranteedUpdate(stsRes, 'default', 'ru', undefined, {}, (cur) => ({
        ...cur,
        spec: { ...cur.spec, updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 1 } } },
      }));
      await image(ctx, 'ru', 'nginx:2');
      const imgs = async () => (await podsOf(ctx)).sort((a, b) => a.metadata.name!.localeCompare(b.metadata.name!)).map((p) => p.spec.containers[0].image);
      await ssc.reconcile('default/ru', ctx);
      expect(await names(ctx)).toEqual(['ru-0', 'ru-1']); // ru-2 deleted first
      await rounds(ctx, 'default/ru', 4);
      expect(await imgs()).toEqual(['nginx:1', 'nginx:2', 'nginx:2']);
      let st = (await getSet(ctx, 'ru')).status;
      expect(st.currentRevision).toBe(rev1);
      expect(st.updateRevision).not.toBe(rev1);
      expect(st).toMatchObject({ replicas: 3, readyReplicas: 3, currentReplicas: 1, updatedReplicas: 2 });
      // A pod below the partition that is deleted comes back at the current revision.
      await ctx.registry.delete(podsRes, 'default', 'ru-0');
      await rounds(ctx, 'default/ru', 1);
      expect(await imgs()).toEqual(['nginx:1', 'nginx:2', 'nginx:2']);
      // Partition 0: the rest rolls, and the update revision becomes the current one.
      await ctx.registry.guaranteedUpdate(stsRes, 'default', 'ru', undefined, {}, (cur) => ({ ...cur, spec: { ...cur.spec, updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } } } }));
      await rounds(ctx, 'default/ru', 3);
      expect(await imgs()).toEqual(['nginx:2', 'nginx:2', 'nginx:2']);
      st = (await getSet(ctx, 'ru')).status;
      expect(st.currentRevision).toBe(st.updateRevision);
      expect(st).toMatchObject({ replicas: 3, readyReplicas: 3, currentReplicas: 3, updatedReplicas: 3 });
      expect((await ctx.registry.list(crRes, 'default')).items.map((r) => r.revision).sort()).toEqual([1, 2]);
    });

    it('OnDelete replaces only deleted pods', async () => {
      const ctx = await newCtx(await makeStore());
      await ctx.registry.create(stsRes, 'default', stsObj('od', 2, { updateStrategy: { type: 'OnDelete' }, volumeClaimTemplates: [] }));
      await rounds(ctx, 'default/od', 3);
      await image(ctx, 'od', 'nginx:2');
      await rounds(ctx, 'default/od', 2);
      expect((await podsOf(ctx)).map((p) => p.spec.containers[0].image)).toEqual(['nginx:1', 'nginx:1']);
      await ctx.registry.delete(podsRes, 'default', 'od-1');
      await rounds(ctx, 'default/od', 2);
      const byName = Object.fromEntries((await podsOf(ctx)).map((p) => [p.metadata.name, p.spec.containers[0].image]));
      expect(byName).toEqual({ 'od-0': 'nginx:1', 'od-1': 'nginx:2' });
    });

    it('adopts orphans named after the set (and only those) that its selector matches', async () => {
      const ctx = await newCtx(await makeStore());
      const orphan = (name: string) =>
        ctx.registry.create(podsRes, 'default', { apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app: 'kept' } }, spec: { containers: [{ name: 'c', image: 'nginx:1' }] } });
      const member = await orphan('kept-0');
      await orphan('stranger');
      const set = await ctx.registry.create(stsRes, 'default', stsObj('kept', 1, { volumeClaimTemplates: [] }));
      expect(ssc.keys({ type: 'ADDED', resource: podsRes, object: member })).toEqual([]);
      await ssc.reconcile('default/kept', ctx);
      expect((await ctx.registry.get(podsRes, 'default', 'kept-0')).metadata.ownerReferences?.[0]?.uid).toBe(set.metadata.uid);
      expect((await ctx.registry.get(podsRes, 'default', 'stranger')).metadata.ownerReferences).toBeUndefined();
      expect(await names(ctx)).toEqual(['kept-0', 'stranger']);
    });

    it('a create the apiserver refuses (terminating namespace) is a FailedCreate Warning, and the reconcile fails to be retried', async () => {
      const ctx = await newCtx(await makeStore());
      await ctx.registry.create(nsRes, undefined, { metadata: { name: 'doomed' } });
      // Their revisions are made first (at 0 replicas); then scaled up once the namespace is terminating.
      await ctx.registry.create(stsRes, 'doomed', stsObj('w', 0, { volumeClaimTemplates: [] }));
      await ctx.registry.create(stsRes, 'doomed', stsObj('v', 0));
      for (const k of ['doomed/w', 'doomed/v']) await ssc.reconcile(k, ctx);
      await ctx.registry.delete(nsRes, undefined, 'doomed');
      for (const n of ['w', 'v']) await ctx.registry.guaranteedUpdate(stsRes, 'doomed', n, undefined, {}, (cur) => ({ ...cur, spec: { ...cur.spec, replicas: 1 } }));
      await expect(ssc.reconcile('doomed/w', ctx)).rejects.toMatchObject({ code: 403 });
      await expect(ssc.reconcile('doomed/v', ctx)).rejects.toMatchObject({ code: 403 });
      const warns = (await ctx.registry.list(eventsRes, 'doomed')).items.filter((e) => e.reason === 'FailedCreate' && e.type === 'Warning').map((e) => e.message);
      expect(warns.sort()).toEqual([
        expect.stringMatching(/^create Claim www-v-0 for Pod v-0 in StatefulSet v failed error: .*terminat/),
        expect.stringMatching(/^create Pod w-0 in StatefulSet w failed error: .*terminat/),
      ]);
    });

    it('spec.ordinals.start numbers the pods; minReadySeconds holds OrderedReady and availableReplicas back', async () => {
      const ctx = await newCtx(await makeStore());
      await ctx.registry.create(stsRes, 'default', stsObj('ord', 2, { ordinals: { start: 5 }, minReadySeconds: 3600, volumeClaimTemplates: [] }));
      await ssc.reconcile('default/ord', ctx);
      await setReady(ctx); // ready since 2020: long available
      await ssc.reconcile('default/ord', ctx);
      expect(await names(ctx)).toEqual(['ord-5', 'ord-6']);
      expect((await ctx.registry.get(podsRes, 'default', 'ord-6')).metadata.labels?.['apps.kubernetes.io/pod-index']).toBe('6');
      // ord-6 ready just now: not available for an hour, so a third replica waits, and the reconcile asks to come back.
      await ctx.registry.guaranteedUpdate(podsRes, 'default', 'ord-6', undefined, { subresource: 'status' }, (cur) => ({
        ...cur,
        status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') }] },
      }));
      await ctx.registry.guaranteedUpdate(stsRes, 'default', 'ord', undefined, {}, (cur) => ({ ...cur, spec: { ...cur.spec, replicas: 3 } }));
      const r = await ssc.reconcile('default/ord', ctx);
      expect(r?.requeueAfterMs).toBeGreaterThan(3_500_000);
      expect(await names(ctx)).toEqual(['ord-5', 'ord-6']);
      expect((await getSet(ctx, 'ord')).status).toMatchObject({ replicas: 2, readyReplicas: 2, availableReplicas: 1 });
    });

    it('duplicated, redelivered and reordered events reach the clean-delivery state', async () => {
      const run = async (deliver: (evs: ChangeEvent[], ctx: ControllerContext) => Promise<void>) => {
        const ctx = await newCtx(await makeStore());
        const set = await ctx.registry.create(stsRes, 'default', stsObj('dup', 2, { podManagementPolicy: 'Parallel' }));
        await deliver([{ type: 'ADDED', resource: stsRes, object: set }], ctx);
        await setReady(ctx);
        const gone = (await ctx.registry.delete(podsRes, 'default', 'dup-0')).object;
        const scaled = await ctx.registry.guaranteedUpdate(stsRes, 'default', 'dup', undefined, {}, (cur) => ({ ...cur, spec: { ...cur.spec, replicas: 3 } }));
        await deliver(
          [
            { type: 'DELETED', resource: podsRes, object: gone },
            { type: 'MODIFIED', resource: stsRes, object: scaled },
          ],
          ctx,
        );
        const st = (await getSet(ctx, 'dup')).status;
        return {
          pods: await names(ctx),
          claims: (await ctx.registry.list(pvcRes, 'default')).items.map((c) => c.metadata.name).sort(),
          revisions: (await ctx.registry.list(crRes, 'default')).items.length,
          replicas: st.replicas,
        };
      };
      const once = async (evs: ChangeEvent[], ctx: ControllerContext) => {
        for (const ev of evs) for (const k of ssc.keys(ev)) await ssc.reconcile(k, ctx);
      };
      const dup = async (evs: ChangeEvent[], ctx: ControllerContext) => {
        const all = [...evs, ...evs, ...[...evs].reverse()];
        await Promise.all(all.flatMap((ev) => ssc.keys(ev)).map((k) => ssc.reconcile(k, ctx)));
        await once(all, ctx);
      };
      const reordered = async (evs: ChangeEvent[], ctx: ControllerContext) => {
        for (const ev of [...evs].reverse()) for (const k of ssc.keys(ev)) await ssc.reconcile(k, ctx);
      };
      const clean = await run(once);
      expect(clean).toEqual({ pods: ['dup-0', 'dup-1', 'dup-2'], claims: ['www-dup-0', 'www-dup-1', 'www-dup-2'], revisions: 1, replicas: 3 });
      expect(await run(dup)).toEqual(clean);
      expect(await run(reordered)).toEqual(clean);
    });
  });
}
