// ResourceQuota (issue #15, item 7) on both real stores (SQLite, and DynamoDB through moto): kube's exact
// refusals (exceeded quota, must specify, status unknown, validation), no overshoot under 50 concurrent
// creates (also through two apiservers on two handles of one store), deletes giving usage back, scopes.
// The quota controller is the real one, reconciled directly (the loop runner is not what is tested here).

import { describe, expect, it } from 'vitest';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { resourceQuotaController } from '../lambdas/controllers/resourcequota.ts';
import { clusterResourceQuotaController } from '../lambdas/controllers/clusterresourcequota.ts';
import { ApiError } from '../lambdas/machinery/status.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { testStores } from './support/backends.ts';

const nsRes = findResource('', 'v1', 'namespaces')!;
const podRes = findResource('', 'v1', 'pods')!;
const cmRes = findResource('', 'v1', 'configmaps')!;
const rqRes = findResource('', 'v1', 'resourcequotas')!;
const crqRes = findResource('quota.skiff.io', 'v1', 'clusterresourcequotas')!;

const stores = await testStores('quota');

async function apiError(p: Promise<unknown>): Promise<ApiError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, 'expected an ApiError').toBeInstanceOf(ApiError);
  return e as ApiError;
}

type Res = Record<string, string>;
const pod = (name: string, resources?: { requests?: Res; limits?: Res }, spec: Record<string, unknown> = {}): KubeObject =>
  ({ metadata: { name }, spec: { containers: [{ name: 'c', image: 'busybox', ...(resources ? { resources } : {}) }], ...spec } }) as KubeObject;
const quota = (name: string, hard: Res, spec: Record<string, unknown> = {}): KubeObject => ({ metadata: { name }, spec: { hard, ...spec } }) as KubeObject;

async function setup(api: ApiServer, ns: string, q: KubeObject): Promise<KubeObject> {
  const reg = api.registry;
  await reg.create(nsRes, undefined, { metadata: { name: ns } } as KubeObject).catch(() => undefined);
  await reg.create(rqRes, ns, q);
  await resourceQuotaController.reconcile(ns, api.controllerContext());
  return reg.get(rqRes, ns, q.metadata.name!);
}

describe.each(stores)('ResourceQuota on %s', (_name, makeStore, enabled) => {
  it.runIf(enabled)('Backend charges: within the limit or nothing written; updates keep them; the delete gives them back; chargeExisting once', async () => {
    const be = (await makeStore())();
    const c = (group: string, amount: number, limit: number) => ({ group, amount, limit });
    await be.create('/registry/core/configmaps/n/a', '{}', { charges: [c('g1', 600, 1000), c('g2', 1, 2)] });
    const rev = await be.currentRevision();
    const refused = await be.create('/registry/core/configmaps/n/b', '{}', { charges: [c('g2', 1, 2), c('g1', 500, 1000)] }).catch((e) => e);
    expect(refused.code).toBe('LimitExceeded');
    expect(await be.currentRevision()).toBe(rev); // nothing written, g2 not moved either
    expect([await be.count('g1'), await be.count('g2')]).toEqual([600, 1]);
    await be.create('/registry/core/configmaps/n/b', '{}', { charges: [c('g1', 400, 1000)] });
    const kv = await be.get('/registry/core/configmaps/n/a');
    await be.update('/registry/core/configmaps/n/a', '{"x":1}', kv!.modRevision);
    expect(await be.count('g1')).toBe(1000);
    await be.create('/registry/core/configmaps/n/old', '{}');
    expect(await be.chargeExisting('/registry/core/configmaps/n/old', [c('g3', 7, 0)])).toEqual(['g3']); // beyond any limit
    expect(await be.chargeExisting('/registry/core/configmaps/n/old', [c('g3', 7, 0)])).toEqual([]);
    expect(await be.chargeExisting('/registry/core/configmaps/n/none', [c('g3', 7, 0)])).toEqual([]);
    await be.delete('/registry/core/configmaps/n/a');
    await be.delete('/registry/core/configmaps/n/old');
    expect([await be.count('g1'), await be.count('g2'), await be.count('g3')]).toEqual([400, 0, 0]);
    await be.close();
  });

  it.runIf(enabled)("kube's refusals, word for word; usage from the object as stored; existing objects charged; deletes give back", async () => {
    const open = await makeStore();
    const api = new ApiServer({ backend: open() });
    const reg = api.registry;
    const ctx = api.controllerContext();
    await reg.create(nsRes, undefined, { metadata: { name: 'q' } } as KubeObject);
    // Stored before the quota: charged by the controller when the quota comes.
    await reg.create(podRes, 'q', pod('before', { requests: { cpu: '500m', memory: '100Mi' }, limits: { cpu: '1', memory: '100Mi' } }));
    const q = await setup(api, 'q', quota('compute', { 'requests.cpu': '1', 'requests.memory': '1Gi', 'limits.cpu': '2', pods: '2' }));
    expect(q.status).toEqual({
      hard: { 'limits.cpu': '2', pods: '2', 'requests.cpu': '1', 'requests.memory': '1Gi' },
      used: { 'limits.cpu': '1', pods: '1', 'requests.cpu': '500m', 'requests.memory': '100Mi' },
    });

    let e = await apiError(reg.create(podRes, 'q', pod('bare')));
    expect(e.code).toBe(403);
    expect(e.message).toBe('pods "bare" is forbidden: failed quota: compute: must specify limits.cpu for: c; requests.cpu for: c; requests.memory for: c');

    // Only limits: requests default to them (the object as stored), so 600m more cpu is asked for.
    const rev = await open().currentRevision();
    e = await apiError(reg.create(podRes, 'q', pod('big', { limits: { cpu: '600m', memory: '200Mi' } })));
    expect(e.code).toBe(403);
    expect(e.status.reason).toBe('Forbidden');
    expect(e.message).toBe('pods "big" is forbidden: exceeded quota: compute, requested: requests.cpu=600m, used: requests.cpu=500m, limited: requests.cpu=1');
    expect(await open().currentRevision()).toBe(rev); // nothing written
    await apiError(reg.get(podRes, 'q', 'big'));

    await reg.create(podRes, 'q', pod('fits', { limits: { cpu: '500m', memory: '200Mi' } }));
    e = await apiError(reg.create(podRes, 'q', pod('third', { limits: { cpu: '100m', memory: '1Mi' } })));
    expect(e.message).toBe(
      'pods "third" is forbidden: exceeded quota: compute, requested: pods=1,requests.cpu=100m, used: pods=2,requests.cpu=1, limited: pods=2,requests.cpu=1',
    );
    await resourceQuotaController.reconcile('q', ctx);
    expect((await reg.get(rqRes, 'q', 'compute')).status!.used).toEqual({ 'limits.cpu': '1500m', pods: '2', 'requests.cpu': '1', 'requests.memory': '300Mi' });

    // A delete gives its usage back at once (in its own write); the controller shows it.
    await reg.delete(podRes, 'q', 'before', { gracePeriodSeconds: 0 });
    await reg.create(podRes, 'q', pod('third', { limits: { cpu: '100m', memory: '1Mi' } }));
    await resourceQuotaController.reconcile('q', ctx);
    expect((await reg.get(rqRes, 'q', 'compute')).status!.used).toEqual({ 'limits.cpu': '600m', pods: '2', 'requests.cpu': '600m', 'requests.memory': '201Mi' });

    // A resource added to spec.hard: refused with "status unknown" while the controller counts it.
    await reg.guaranteedUpdate(rqRes, 'q', 'compute', undefined, {}, (o) => ({ ...o, spec: { hard: { ...o.spec.hard, 'count/configmaps': '1' } } }));
    await reg.guaranteedUpdate(rqRes, 'q', 'compute', undefined, { subresource: 'status' }, (o) => ({ ...o, status: { hard: { ...o.spec.hard }, used: o.status.used } }));
    e = await apiError(reg.create(cmRes, 'q', { metadata: { name: 'c1' } } as KubeObject));
    expect(e.message).toBe('configmaps "c1" is forbidden: status unknown for quota: compute, resources: count/configmaps');
    await resourceQuotaController.reconcile('q', ctx);
    await reg.create(cmRes, 'q', { metadata: { name: 'c1' } } as KubeObject);
    e = await apiError(reg.create(cmRes, 'q', { metadata: { name: 'c2' } } as KubeObject));
    expect(e.message).toBe('configmaps "c2" is forbidden: exceeded quota: compute, requested: count/configmaps=1, used: count/configmaps=1, limited: count/configmaps=1');

    // kube's validation.
    e = await apiError(reg.create(rqRes, 'q', quota('bad', { foo: '1', pods: '1.5', 'requests.cpu': '-1' })));
    expect(e.code).toBe(422);
    expect(e.message).toBe(
      'ResourceQuota "bad" is invalid: [spec.hard[foo]: Invalid value: "foo": must be a standard resource for quota, spec.hard[pods]: Invalid value: "1500m": must be an integer, spec.hard[requests.cpu]: Invalid value: "-1": must be greater than or equal to 0]',
    );
    e = await apiError(reg.create(rqRes, 'q', quota('bad', { 'requests.storage': '1Gi' }, { scopes: ['BestEffort', 'NotBestEffort'] })));
    // (one message per distinct error, as kube's ToAggregate)
    expect(e.message).toBe(
      'ResourceQuota "bad" is invalid: [spec.scopes: Invalid value: ["BestEffort","NotBestEffort"]: unsupported scope applied to resource, spec.scopes: Invalid value: ["BestEffort","NotBestEffort"]: conflicting scopes]',
    );
  });

  it.runIf(enabled)('50 concurrent creates against a quota of 3 leave exactly 3 (pods, count/configmaps), through one apiserver and through two', async () => {
    const open = await makeStore();
    const a = new ApiServer({ backend: open() });
    const b = new ApiServer({ backend: open() });
    await setup(a, 'race', quota('three', { pods: '3', 'count/configmaps': '3' }));
    const race = async (servers: ApiServer[], create: (api: ApiServer, i: number) => Promise<unknown>) => {
      const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => create(servers[i % servers.length]!, i)));
      const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as ApiError);
      return { ok: results.length - refused.length, refused };
    };
    const r1 = await race([a], (api, i) => api.registry.create(podRes, 'race', pod(`p${i}`)));
    expect(r1.ok).toBe(3);
    for (const e of r1.refused) {
      expect(e.code).toBe(403);
      expect(e.message).toMatch(/^pods "p\d+" is forbidden: exceeded quota: three, requested: pods=1, used: pods=3, limited: pods=3$/);
    }
    expect((await a.registry.list(podRes, 'race')).items).toHaveLength(3);

    const r2 = await race([a, b], (api, i) => api.registry.create(cmRes, 'race', { metadata: { name: `c${i}` } } as KubeObject));
    expect(r2.ok).toBe(3);
    for (const e of r2.refused) expect(e.message).toMatch(/^configmaps "c\d+" is forbidden: exceeded quota: three, requested: count\/configmaps=1, used: count\/configmaps=3, limited: count\/configmaps=3$/);
    expect((await b.registry.list(cmRes, 'race')).items).toHaveLength(3);

    // Delete all pods, then race again through two servers: again exactly 3.
    for (const p of (await a.registry.list(podRes, 'race')).items) await a.registry.delete(podRes, 'race', p.metadata.name!, { gracePeriodSeconds: 0 });
    const r3 = await race([a, b], (api, i) => api.registry.create(podRes, 'race', pod(`n${i}`)));
    expect(r3.ok).toBe(3);
    expect((await b.registry.list(podRes, 'race')).items).toHaveLength(3);
    await resourceQuotaController.reconcile('race', b.controllerContext());
    expect((await a.registry.get(rqRes, 'race', 'three')).status!.used).toEqual({ 'count/configmaps': '3', pods: '3' });
  });

  it.runIf(enabled)('scopes: BestEffort, NotBestEffort, Terminating, PriorityClass', async () => {
    const api = new ApiServer({ backend: (await makeStore())() });
    const reg = api.registry;
    await setup(api, 's', quota('be', { pods: '1' }, { scopes: ['BestEffort'] }));
    await setup(api, 's', quota('term', { pods: '1' }, { scopes: ['Terminating'] }));
    await setup(api, 's', quota('pc', { pods: '1' }, { scopeSelector: { matchExpressions: [{ scopeName: 'PriorityClass', operator: 'In', values: ['gold'] }] } }));
    await reg.create(podRes, 's', pod('be1'));
    let e = await apiError(reg.create(podRes, 's', pod('be2')));
    expect(e.message).toBe('pods "be2" is forbidden: exceeded quota: be, requested: pods=1, used: pods=1, limited: pods=1');
    // Not best effort: neither the BestEffort quota nor any other charges it.
    await reg.create(podRes, 's', pod('burst1', { requests: { cpu: '10m' } }));
    await reg.create(podRes, 's', pod('burst2', { requests: { cpu: '10m' } }));
    await reg.create(podRes, 's', pod('t1', { requests: { cpu: '10m' } }, { activeDeadlineSeconds: 30 }));
    e = await apiError(reg.create(podRes, 's', pod('t2', { requests: { cpu: '10m' } }, { activeDeadlineSeconds: 30 })));
    expect(e.message).toBe('pods "t2" is forbidden: exceeded quota: term, requested: pods=1, used: pods=1, limited: pods=1');
    await reg.create(podRes, 's', pod('g1', { requests: { cpu: '10m' } }, { priorityClassName: 'gold' })).catch((err) => {
      // The Priority admission plugin resolves the class: create it first if needed.
      throw err;
    });
    e = await apiError(reg.create(podRes, 's', pod('g2', { requests: { cpu: '10m' } }, { priorityClassName: 'gold' })));
    expect(e.message).toBe('pods "g2" is forbidden: exceeded quota: pc, requested: pods=1, used: pods=1, limited: pods=1');
  });

  it.runIf(enabled)('a ClusterResourceQuota over two namespaces: 50 concurrent creates through two apiservers leave exactly 3; status per namespace converges after deletes', async () => {
    const open = await makeStore();
    const a = new ApiServer({ backend: open() });
    const b = new ApiServer({ backend: open() });
    for (const name of ['t1', 't2']) await a.registry.create(nsRes, undefined, { metadata: { name, labels: { team: 'x' } } } as KubeObject);
    await a.registry.create(nsRes, undefined, { metadata: { name: 'other' } } as KubeObject);
    await a.registry.create(podRes, 't1', pod('old')); // stored before: charged by the controller
    let e = await apiError(a.registry.create(crqRes, undefined, { metadata: { name: 'bad' }, spec: { quota: { hard: { pods: '1' } } } } as KubeObject));
    expect(e.message).toBe('ClusterResourceQuota.quota.skiff.io "bad" is invalid: spec.selector: Required value: must restrict the selected projects');
    await a.registry.create(crqRes, undefined, { metadata: { name: 'team-x' }, spec: { selector: { labels: { matchLabels: { team: 'x' } } }, quota: { hard: { pods: '3' } } } } as KubeObject);
    await clusterResourceQuotaController.reconcile('team-x', a.controllerContext());
    let crq = await a.registry.get(crqRes, undefined, 'team-x');
    expect(crq.status).toEqual({
      total: { hard: { pods: '3' }, used: { pods: '1' } },
      namespaces: [
        { namespace: 't1', status: { hard: { pods: '3' }, used: { pods: '1' } } },
        { namespace: 't2', status: { hard: { pods: '3' }, used: { pods: '0' } } },
      ],
    });

    const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => [a, b][i % 2]!.registry.create(podRes, i % 4 < 2 ? 't1' : 't2', pod(`p${i}`))));
    const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as ApiError);
    expect(results.length - refused.length).toBe(2); // 3 with the old pod
    for (const err of refused) expect(err.message).toMatch(/^pods "p\d+" is forbidden: exceeded quota: team-x, requested: pods=1, used: pods=3, limited: pods=3$/);
    const t1 = (await a.registry.list(podRes, 't1')).items.length;
    const t2 = (await a.registry.list(podRes, 't2')).items.length;
    expect(t1 + t2).toBe(3);
    await b.registry.create(podRes, 'other', pod('free')); // not selected: not charged

    await clusterResourceQuotaController.reconcile('namespace:t1', b.controllerContext());
    crq = await a.registry.get(crqRes, undefined, 'team-x');
    expect(crq.status!.total.used).toEqual({ pods: '3' });
    expect(crq.status!.namespaces.map((p: any) => [p.namespace, p.status.used.pods])).toEqual([
      ['t1', String(t1)],
      ['t2', String(t2)],
    ]);
    for (const p of (await a.registry.list(podRes, 't1')).items) await a.registry.delete(podRes, 't1', p.metadata.name!, { gracePeriodSeconds: 0 });
    await clusterResourceQuotaController.reconcile('team-x', a.controllerContext());
    crq = await a.registry.get(crqRes, undefined, 'team-x');
    expect(crq.status!.total.used).toEqual({ pods: String(t2) });
    expect(crq.status!.namespaces.map((p: any) => [p.namespace, p.status.used.pods])).toEqual([
      ['t1', '0'],
      ['t2', String(t2)],
    ]);
    await b.registry.create(podRes, 't1', pod('again'));
  });
});
