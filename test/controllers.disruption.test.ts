// The disruption controller on the real stores (SQLite, and DynamoDB through moto): a budget's status from
// its pods (Ready = healthy) and, for maxUnavailable and percentages, its pods' controllers' replicas (RC,
// ReplicaSet under a Deployment, StatefulSet); the DisruptionAllowed condition and its transitions;
// SyncFailed when a controller cannot be found; evictions recorded in disruptedPods kept out of
// currentHealthy until they expire (2 minutes); pod changes reaching budgets through the selector index;
// duplicated and reordered delivery writing nothing new.

import { describe, expect, it } from 'vitest';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { evictPod } from '../lambdas/apiserver/eviction.ts';
import type { ChangeEvent, ControllerContext } from '../lambdas/controllers/controller.ts';
import { DELETION_TIMEOUT_MS, STALE_POD_DISRUPTION_MS, disruptionController as dc } from '../lambdas/controllers/disruption.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import type { Backend } from '../lambdas/storage/backend.ts';
import { testStores } from './support/backends.ts';

const podsRes = findResource('', 'v1', 'pods')!;
const pdbsRes = findResource('policy', 'v1', 'poddisruptionbudgets')!;
const rcsRes = findResource('', 'v1', 'replicationcontrollers')!;
const rssRes = findResource('apps', 'v1', 'replicasets')!;
const deploymentsRes = findResource('apps', 'v1', 'deployments')!;
const stsRes = findResource('apps', 'v1', 'statefulsets')!;
const eventsRes = findResource('', 'v1', 'events')!;
const nsRes = findResource('', 'v1', 'namespaces')!;

const stores = await testStores('disruption');

async function newCtx(open: () => Backend): Promise<ControllerContext> {
  const ctx = new ApiServer({ backend: open() }).controllerContext();
  await ctx.registry.create(nsRes, undefined, { metadata: { name: 'default' } });
  return ctx;
}

const template = (labels: Record<string, string>) => ({ metadata: { labels }, spec: { containers: [{ name: 'c', image: 'busybox' }] } });
const ownerRef = (o: KubeObject) => ({ apiVersion: o.apiVersion!, kind: o.kind!, name: o.metadata.name!, uid: o.metadata.uid!, controller: true, blockOwnerDeletion: true });

async function pod(ctx: ControllerContext, name: string, labels: Record<string, string>, owner?: KubeObject, ready = true): Promise<KubeObject> {
  await ctx.registry.create(podsRes, 'default', { metadata: { name, labels, ...(owner ? { ownerReferences: [ownerRef(owner)] } : {}) }, spec: template(labels).spec });
  return setReady(ctx, name, ready);
}

function setReady(ctx: ControllerContext, name: string, ready: boolean): Promise<KubeObject> {
  return ctx.registry.guaranteedUpdate(podsRes, 'default', name, undefined, { subresource: 'status' }, (cur) => ({
    ...cur,
    status: { phase: 'Running', conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: '2026-01-01T00:00:00Z' }] },
  }));
}

const pdb = (ctx: ControllerContext, name: string, spec: Record<string, unknown>) =>
  ctx.registry.create(pdbsRes, 'default', { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name }, spec });
const statusOf = async (ctx: ControllerContext, name: string) => (await ctx.registry.get(pdbsRes, 'default', name)).status;
const eventsAbout = async (ctx: ControllerContext, name: string) => (await ctx.registry.list(eventsRes, 'default')).items.filter((e) => e.involvedObject.name === name);

/** Every key a change maps to, reconciled, as the runner would. */
async function deliver(ctx: ControllerContext, ev: ChangeEvent) {
  const out = [];
  for (const k of dc.keys(ev)) out.push(await dc.reconcile(k, ctx));
  return out;
}

const counts = (s: any) => ({ expectedPods: s.expectedPods, currentHealthy: s.currentHealthy, desiredHealthy: s.desiredHealthy, disruptionsAllowed: s.disruptionsAllowed, observedGeneration: s.observedGeneration });

for (const [label, makeStore, enabled] of stores) {
  describe.skipIf(!enabled)(`disruption controller on ${label}`, () => {
    it('minAvailable counts Ready pods; a pod turning unready reaches the budget by its labels and flips the condition', async () => {
      const ctx = await newCtx(await makeStore());
      const rc = await ctx.registry.create(rcsRes, 'default', { metadata: { name: 'web' }, spec: { replicas: 3, selector: { app: 'web' }, template: template({ app: 'web' }) } });
      for (const n of ['web-1', 'web-2', 'web-3']) await pod(ctx, n, { app: 'web' }, rc);
      await pdb(ctx, 'web', { minAvailable: 2, selector: { matchLabels: { app: 'web' } } });
      await dc.reconcile('default/web', ctx);
      const s = await statusOf(ctx, 'web');
      expect(counts(s)).toEqual({ expectedPods: 3, currentHealthy: 3, desiredHealthy: 2, disruptionsAllowed: 1, observedGeneration: 1 });
      expect(s.conditions).toEqual([{ type: 'DisruptionAllowed', status: 'True', observedGeneration: 1, lastTransitionTime: expect.any(String), reason: 'SufficientPods', message: '' }]);
      expect(s.disruptedPods).toBeUndefined();

      const old = await ctx.registry.get(podsRes, 'default', 'web-2');
      const sick = await setReady(ctx, 'web-2', false);
      await deliver(ctx, { type: 'MODIFIED', resource: podsRes, object: sick, oldObject: old });
      const s2 = await statusOf(ctx, 'web');
      expect(counts(s2)).toMatchObject({ currentHealthy: 2, disruptionsAllowed: 0 });
      expect(s2.conditions).toEqual([expect.objectContaining({ type: 'DisruptionAllowed', status: 'False', reason: 'InsufficientPods' })]);
      // A change that does not matter to budgets (no label, readiness, deletion or controller change) maps to no key.
      expect(dc.keys({ type: 'MODIFIED', resource: podsRes, object: { ...sick, status: { ...sick.status, podIP: '10.0.0.9' } }, oldObject: sick })).toEqual([]);
    });

    it('maxUnavailable and percentages are measured against the controllers: RC replicas, a Deployment above its ReplicaSet, a StatefulSet', async () => {
      const ctx = await newCtx(await makeStore());
      // An RC of 4 with 3 pods so far: expected 4, maxUnavailable 1 → desired 3, and 3 healthy → 0 allowed.
      const rc = await ctx.registry.create(rcsRes, 'default', { metadata: { name: 'rc' }, spec: { replicas: 4, selector: { app: 'rc' }, template: template({ app: 'rc' }) } });
      for (const n of ['rc-1', 'rc-2', 'rc-3']) await pod(ctx, n, { app: 'rc' }, rc);
      await pdb(ctx, 'rc', { maxUnavailable: 1, selector: { matchLabels: { app: 'rc' } } });
      await dc.reconcile('default/rc', ctx);
      expect(counts(await statusOf(ctx, 'rc'))).toEqual({ expectedPods: 4, currentHealthy: 3, desiredHealthy: 3, disruptionsAllowed: 0, observedGeneration: 1 });
      // The RC scaled to 3: its change reaches the budget through the template's labels.
      const oldRc = await ctx.registry.get(rcsRes, 'default', 'rc');
      const newRc = await ctx.registry.guaranteedUpdate(rcsRes, 'default', 'rc', undefined, {}, (cur) => ({ ...cur, spec: { ...cur.spec, replicas: 3 } }));
      await deliver(ctx, { type: 'MODIFIED', resource: rcsRes, object: newRc, oldObject: oldRc });
      expect(counts(await statusOf(ctx, 'rc'))).toMatchObject({ expectedPods: 3, desiredHealthy: 2, disruptionsAllowed: 1 });

      // A Deployment of 4 above a ReplicaSet (its replicas say 2, mid-rollout): the Deployment's 4 count.
      const sel = { matchLabels: { app: 'dep' } };
      const dep = await ctx.registry.create(deploymentsRes, 'default', { metadata: { name: 'dep' }, spec: { replicas: 4, selector: sel, template: template({ app: 'dep' }) } });
      const rs = await ctx.registry.create(rssRes, 'default', { metadata: { name: 'dep-abc', ownerReferences: [ownerRef(dep)] }, spec: { replicas: 2, selector: sel, template: template({ app: 'dep' }) } });
      for (const n of ['dep-1', 'dep-2', 'dep-3']) await pod(ctx, n, { app: 'dep' }, rs);
      await pdb(ctx, 'dep', { minAvailable: '50%', selector: sel });
      await dc.reconcile('default/dep', ctx);
      expect(counts(await statusOf(ctx, 'dep'))).toEqual({ expectedPods: 4, currentHealthy: 3, desiredHealthy: 2, disruptionsAllowed: 1, observedGeneration: 1 });

      const sts = await ctx.registry.create(stsRes, 'default', { metadata: { name: 'db' }, spec: { replicas: 3, serviceName: 'db', selector: { matchLabels: { app: 'db' } }, template: template({ app: 'db' }) } });
      for (const n of ['db-0', 'db-1', 'db-2']) await pod(ctx, n, { app: 'db' }, sts);
      // Only matchExpressions: found through the index's "no matchLabels" entry.
      await pdb(ctx, 'db', { maxUnavailable: '34%', selector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['db'] }] } });
      const p = await ctx.registry.get(podsRes, 'default', 'db-0');
      await deliver(ctx, { type: 'ADDED', resource: podsRes, object: p });
      // 34% of 3 rounds up to 2 unavailable: desired 1.
      expect(counts(await statusOf(ctx, 'db'))).toEqual({ expectedPods: 3, currentHealthy: 3, desiredHealthy: 1, disruptionsAllowed: 2, observedGeneration: 1 });
    });

    it('unmanaged pods are left out with a warning; a controller that cannot be found fails the sync safe (SyncFailed)', async () => {
      const ctx = await newCtx(await makeStore());
      const rc = await ctx.registry.create(rcsRes, 'default', { metadata: { name: 'mix' }, spec: { replicas: 2, selector: { app: 'mix' }, template: template({ app: 'mix' }) } });
      await pod(ctx, 'mix-1', { app: 'mix' }, rc);
      await pod(ctx, 'mix-2', { app: 'mix' }, rc);
      await pod(ctx, 'stray', { app: 'mix' });
      await pdb(ctx, 'mix', { maxUnavailable: 1, selector: { matchLabels: { app: 'mix' } } });
      await dc.reconcile('default/mix', ctx);
      expect(counts(await statusOf(ctx, 'mix'))).toEqual({ expectedPods: 2, currentHealthy: 3, desiredHealthy: 1, disruptionsAllowed: 2, observedGeneration: 1 });
      expect((await eventsAbout(ctx, 'mix')).map((e) => [e.type, e.reason, e.source.component])).toEqual([['Warning', 'UnmanagedPods', 'controllermanager']]);

      // A pod whose controller is gone: the budget allows nothing, and says why.
      await ctx.registry.create(podsRes, 'default', {
        metadata: { name: 'orphan', labels: { app: 'mix' }, ownerReferences: [{ apiVersion: 'v1', kind: 'ReplicationController', name: 'gone', uid: 'no-such-uid', controller: true }] },
        spec: template({}).spec,
      });
      await dc.reconcile('default/mix', ctx);
      const s = await statusOf(ctx, 'mix');
      expect(s.disruptionsAllowed).toBe(0);
      expect(s.conditions).toEqual([expect.objectContaining({ type: 'DisruptionAllowed', status: 'False', reason: 'SyncFailed', message: 'found no controllers for pod "orphan"' })]);
      expect((await eventsAbout(ctx, 'mix')).map((e) => e.reason)).toContain('CalculateExpectedPodCountFailed');
      // The pod goes: the next sync recovers.
      await ctx.registry.delete(podsRes, 'default', 'orphan');
      await dc.reconcile('default/mix', ctx);
      expect((await statusOf(ctx, 'mix')).conditions).toEqual([expect.objectContaining({ status: 'True', reason: 'SufficientPods' })]);

      // A Job's pods cannot be measured by replicas: kube's message for a kind without a scale subresource.
      const job = await ctx.registry.create(findResource('batch', 'v1', 'jobs')!, 'default', { metadata: { name: 'batch' }, spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox' }] } } } });
      await pod(ctx, 'batch-1', { app: 'batch' }, job);
      await pdb(ctx, 'batch', { minAvailable: '50%', selector: { matchLabels: { app: 'batch' } } });
      await dc.reconcile('default/batch', ctx);
      expect((await statusOf(ctx, 'batch')).conditions).toEqual([expect.objectContaining({ status: 'False', reason: 'SyncFailed', message: 'jobs.batch does not implement the scale subresource' })]);
    });

    it('an eviction recorded in disruptedPods keeps the pod out of currentHealthy until it is deleted or 2 minutes pass', async () => {
      const ctx = await newCtx(await makeStore());
      for (const n of ['e-1', 'e-2', 'e-3']) await pod(ctx, n, { app: 'e' });
      await pdb(ctx, 'e', { minAvailable: 1, selector: { matchLabels: { app: 'e' } } });
      await dc.reconcile('default/e', ctx);
      expect((await statusOf(ctx, 'e')).disruptionsAllowed).toBe(2);
      // A dry-run eviction spends nothing; a real one spends one and names the pod.
      expect((await evictPod(ctx.registry, 'default', 'e-1', { dryRun: true })).code).toBe(201);
      expect((await statusOf(ctx, 'e')).disruptionsAllowed).toBe(2);
      // An eviction whose delete is refused (a stale uid): the disruption is spent and the pod stays.
      await expect(evictPod(ctx.registry, 'default', 'e-1', { preconditions: { uid: 'stale' } })).rejects.toThrow('the UID in the precondition (stale)');
      const spent = await statusOf(ctx, 'e');
      expect(spent.disruptionsAllowed).toBe(1);
      expect(Object.keys(spent.disruptedPods)).toEqual(['e-1']);
      // The controller keeps the entry: e-1 is still there but counts as about to go.
      const r = await dc.reconcile('default/e', ctx);
      expect(counts(await statusOf(ctx, 'e'))).toMatchObject({ currentHealthy: 2, disruptionsAllowed: 1 });
      expect(Object.keys((await statusOf(ctx, 'e')).disruptedPods)).toEqual(['e-1']);
      expect(r?.requeueAfterMs).toBeGreaterThan(DELETION_TIMEOUT_MS - 10_000);
      expect(r?.requeueAfterMs).toBeLessThanOrEqual(DELETION_TIMEOUT_MS + 1);
      // Two minutes later it was never deleted: the entry expires, e-1 is healthy again, and a warning says so.
      const later: ControllerContext = { ...ctx, now: () => new Date(Date.now() + DELETION_TIMEOUT_MS + 1000) };
      expect(await dc.reconcile('default/e', later)).toBeUndefined();
      const s = await statusOf(ctx, 'e');
      expect(s.disruptedPods).toBeUndefined();
      expect(counts(s)).toMatchObject({ currentHealthy: 3, disruptionsAllowed: 2 });
      expect((await eventsAbout(ctx, 'e-1')).map((e) => [e.reason, e.message])).toEqual([['NotDeleted', "Pod was expected by PDB default/default to be deleted but it wasn't"]]);
    });

    it('a DisruptionTarget condition that outlived its eviction (the pod was never deleted) is set back to False after 2 minutes', async () => {
      const ctx = await newCtx(await makeStore());
      await pod(ctx, 'kept', { app: 'k' });
      const mark = (at: Date) =>
        ctx.registry.guaranteedUpdate(podsRes, 'default', 'kept', undefined, { subresource: 'status' }, (cur) => ({
          ...cur,
          status: { ...cur.status, conditions: [...cur.status.conditions.filter((c: any) => c.type !== 'DisruptionTarget'), { type: 'DisruptionTarget', status: 'True', reason: 'EvictionByEvictionAPI', message: 'Eviction API: evicting', lastProbeTime: null, lastTransitionTime: at.toISOString().replace(/\.\d{3}Z$/, 'Z') }] },
        }));
      // Marked just now: not stale yet, looked at again when it would be.
      const fresh = await mark(new Date());
      const keys = dc.keys({ type: 'MODIFIED', resource: podsRes, object: fresh });
      expect(keys).toContain('default/pods/kept');
      const r = await dc.reconcile('default/pods/kept', ctx);
      expect(r?.requeueAfterMs).toBeGreaterThan(STALE_POD_DISRUPTION_MS - 10_000);
      expect((await ctx.registry.get(podsRes, 'default', 'kept')).metadata.resourceVersion).toBe(fresh.metadata.resourceVersion);
      // Three minutes old: reset, found by resync too.
      await mark(new Date(Date.now() - 3 * 60_000));
      expect(await dc.allKeys(ctx)).toContain('default/pods/kept');
      expect(await dc.reconcile('default/pods/kept', ctx)).toBeUndefined();
      const cond = (await ctx.registry.get(podsRes, 'default', 'kept')).status.conditions.find((c: any) => c.type === 'DisruptionTarget');
      expect(cond).toEqual({ type: 'DisruptionTarget', status: 'False', lastProbeTime: null, lastTransitionTime: expect.any(String) });
      expect(await dc.allKeys(ctx)).not.toContain('default/pods/kept');
    });

    it('duplicated and reordered delivery writes nothing new; a spec change is observed at its generation', async () => {
      const ctx = await newCtx(await makeStore());
      for (const n of ['d-1', 'd-2']) await pod(ctx, n, { app: 'd', tier: 'x' });
      const created = await pdb(ctx, 'd', { minAvailable: 1, selector: { matchLabels: { app: 'd' } } });
      await deliver(ctx, { type: 'ADDED', resource: pdbsRes, object: created });
      const settled = await ctx.registry.get(pdbsRes, 'default', 'd');
      // The same events again, and the pods' in reverse order, and a resync.
      const podsNow = (await ctx.registry.list(podsRes, 'default')).items;
      for (const p of [...podsNow].reverse()) await deliver(ctx, { type: 'ADDED', resource: podsRes, object: p });
      await deliver(ctx, { type: 'ADDED', resource: pdbsRes, object: created });
      for (const k of await dc.allKeys(ctx)) await dc.reconcile(k, ctx);
      expect((await ctx.registry.get(pdbsRes, 'default', 'd')).metadata.resourceVersion).toBe(settled.metadata.resourceVersion);

      const bumped = await ctx.registry.guaranteedUpdate(pdbsRes, 'default', 'd', undefined, {}, (cur) => ({ ...cur, spec: { ...cur.spec, minAvailable: 2 } }));
      expect(bumped.metadata.generation).toBe(2);
      await deliver(ctx, { type: 'MODIFIED', resource: pdbsRes, object: bumped, oldObject: settled });
      const s = await statusOf(ctx, 'd');
      expect(counts(s)).toEqual({ expectedPods: 2, currentHealthy: 2, desiredHealthy: 2, disruptionsAllowed: 0, observedGeneration: 2 });
      expect(s.conditions).toEqual([expect.objectContaining({ status: 'False', reason: 'InsufficientPods', observedGeneration: 2 })]);
      // A budget selecting nothing: expected 0, nothing allowed, a NoPods event.
      await pdb(ctx, 'none', { minAvailable: 0, selector: { matchLabels: { app: 'nothing' } } });
      await dc.reconcile('default/none', ctx);
      expect(counts(await statusOf(ctx, 'none'))).toEqual({ expectedPods: 0, currentHealthy: 0, desiredHealthy: 0, disruptionsAllowed: 0, observedGeneration: 1 });
      expect((await eventsAbout(ctx, 'none')).map((e) => [e.reason, e.message])).toEqual([['NoPods', 'No matching pods found']]);
      // A deleted budget: nothing to do.
      await ctx.registry.delete(pdbsRes, 'default', 'none');
      expect(await dc.reconcile('default/none', ctx)).toBeUndefined();
    });
  });
}
