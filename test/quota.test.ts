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
const pvcRes = findResource('', 'v1', 'persistentvolumeclaims')!;
const svcRes = findResource('', 'v1', 'services')!;

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

describe('quota loops: which changes they look at', () => {
  it("an update that leaves an object's charges as they were wakes neither loop; one that moves them, or a quota's, does", () => {
    const p = { ...pod('p', { requests: { cpu: '100m' } }), metadata: { name: 'p', namespace: 'a' } } as KubeObject;
    const bound = { ...p, spec: { ...p.spec, nodeName: 'n1' }, status: { phase: 'Running', podIP: '10.0.0.9' } } as KubeObject;
    const terminating = { ...bound, metadata: { ...bound.metadata, deletionTimestamp: '2026-12-05T00:00:00Z' } } as KubeObject;
    const done = { ...bound, status: { phase: 'Succeeded' } } as KubeObject;
    const q = { ...quota('q', { pods: '10' }), metadata: { name: 'q', namespace: 'a' } } as KubeObject;
    for (const c of [resourceQuotaController, clusterResourceQuotaController]) {
      expect(c.keys({ type: 'ADDED', resource: podRes, object: p })).toHaveLength(1);
      expect(c.keys({ type: 'MODIFIED', resource: podRes, object: bound, oldObject: p })).toEqual([]);
      expect(c.keys({ type: 'MODIFIED', resource: podRes, object: terminating, oldObject: bound })).toEqual([]);
      // A pod's turn to a terminal phase gives its compute back: the counters moved.
      expect(c.keys({ type: 'MODIFIED', resource: podRes, object: done, oldObject: bound })).toHaveLength(1);
      // Without the old object (a source that does not know it), always.
      expect(c.keys({ type: 'MODIFIED', resource: podRes, object: bound })).toHaveLength(1);
      expect(c.keys({ type: 'DELETED', resource: podRes, object: bound })).toHaveLength(1);
      expect(c.keys({ type: 'MODIFIED', resource: rqRes, object: { ...q, spec: { hard: { pods: '5' } } }, oldObject: q })).toHaveLength(1);
    }
  });
});

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
    // An update with charges: each named group moves by the difference, a rise within its limit or
    // nothing written; 0 gives a group back; groups not named are kept.
    let cur = (await be.get('/registry/core/configmaps/n/a'))!;
    const before = await be.currentRevision();
    const over = await be.update('/registry/core/configmaps/n/a', '{"x":2}', cur.modRevision, { charges: [c('g1', 700, 1000)] }).catch((e) => e);
    expect(over.code).toBe('LimitExceeded');
    expect(await be.currentRevision()).toBe(before);
    expect((await be.get('/registry/core/configmaps/n/a'))!.value).toBe('{"x":1}');
    await be.update('/registry/core/configmaps/n/a', '{"x":3}', cur.modRevision, { charges: [c('g1', 500, 1000), c('g4', 3, 5)] });
    expect([await be.count('g1'), await be.count('g2'), await be.count('g4')]).toEqual([900, 1, 3]);
    cur = (await be.get('/registry/core/configmaps/n/a'))!;
    await be.update('/registry/core/configmaps/n/a', '{"x":4}', cur.modRevision, { charges: [c('g2', 0, 2)] });
    expect([await be.count('g1'), await be.count('g2'), await be.count('g4')]).toEqual([900, 0, 3]);
    await be.delete('/registry/core/configmaps/n/a');
    await be.delete('/registry/core/configmaps/n/old');
    expect([await be.count('g1'), await be.count('g2'), await be.count('g3'), await be.count('g4')]).toEqual([400, 0, 0, 0]);
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

  it.runIf(enabled)('updates that change usage are charged in their write: a pod that ends gives back, a claim resized or a Service turned LoadBalancer takes more, never past the limit', async () => {
    const open = await makeStore();
    const api = new ApiServer({ backend: open() });
    const reg = api.registry;
    const ctx = api.controllerContext();
    const used = async () => {
      await resourceQuotaController.reconcile('u', ctx);
      return (await reg.get(rqRes, 'u', 'q')).status!.used;
    };
    await setup(api, 'u', quota('q', { pods: '2', 'requests.cpu': '1', 'requests.storage': '3Gi', 'services.loadbalancers': '1', 'services.nodeports': '2' }));
    const cpu = (v: string) => ({ requests: { cpu: v }, limits: { cpu: v } });
    await reg.create(podRes, 'u', pod('a', cpu('600m')));
    await reg.create(podRes, 'u', pod('b', cpu('400m')));
    let e = await apiError(reg.create(podRes, 'u', pod('c', cpu('100m'))));
    expect(e.message).toBe('pods "c" is forbidden: exceeded quota: q, requested: pods=1,requests.cpu=100m, used: pods=2,requests.cpu=1, limited: pods=2,requests.cpu=1');
    // A pod that ends: kube's evaluator stops counting it, so its pod and cpu are given back at once.
    await reg.guaranteedUpdate(podRes, 'u', 'a', undefined, { subresource: 'status' }, (o) => ({ ...o, status: { ...o.status, phase: 'Succeeded' } }));
    expect(await used()).toMatchObject({ pods: '1', 'requests.cpu': '400m' });
    await reg.create(podRes, 'u', pod('c', cpu('600m')));

    // A bound claim resized: the rise is charged within the quota, and refused past it with kube's words
    // ("requested" is the rise); nothing is written then.
    await reg.create(pvcRes, 'u', { metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } } as KubeObject);
    await reg.guaranteedUpdate(pvcRes, 'u', 'data', undefined, { subresource: 'status' }, (o) => ({ ...o, status: { phase: 'Bound' } }));
    const resize = (size: string) =>
      reg.guaranteedUpdate(pvcRes, 'u', 'data', undefined, {}, (o) => ({ ...o, spec: { ...o.spec, resources: { requests: { storage: size } } } }));
    await resize('2Gi');
    expect(await used()).toMatchObject({ 'requests.storage': '2Gi' });
    const rev = await open().currentRevision();
    e = await apiError(resize('4Gi'));
    expect(e.code).toBe(403);
    expect(e.message).toBe('persistentvolumeclaims "data" is forbidden: exceeded quota: q, requested: requests.storage=2Gi, used: requests.storage=2Gi, limited: requests.storage=3Gi');
    expect(await open().currentRevision()).toBe(rev);
    expect((await reg.get(pvcRes, 'u', 'data')).spec.resources.requests.storage).toBe('2Gi');
    await resize('3Gi');
    expect(await used()).toMatchObject({ 'requests.storage': '3Gi' });

    // Services: a ClusterIP Service turned LoadBalancer takes a load balancer and its node ports.
    const svc = (name: string) => ({ metadata: { name }, spec: { selector: { app: name }, ports: [{ port: 80 }] } }) as KubeObject;
    const toLB = (name: string) => reg.guaranteedUpdate(svcRes, 'u', name, undefined, {}, (o) => ({ ...o, spec: { ...o.spec, type: 'LoadBalancer' } }));
    await reg.create(svcRes, 'u', svc('one'));
    await reg.create(svcRes, 'u', svc('two'));
    await toLB('one');
    expect(await used()).toMatchObject({ 'services.loadbalancers': '1', 'services.nodeports': '1' });
    e = await apiError(toLB('two'));
    expect(e.message).toBe('services "two" is forbidden: exceeded quota: q, requested: services.loadbalancers=1, used: services.loadbalancers=1, limited: services.loadbalancers=1');
    expect((await reg.get(svcRes, 'u', 'two')).spec.type).toBe('ClusterIP');
    // Back to ClusterIP gives both back; then the other may.
    await reg.guaranteedUpdate(svcRes, 'u', 'one', undefined, {}, (o) => {
      const spec = { ...o.spec, type: 'ClusterIP' };
      delete spec.allocateLoadBalancerNodePorts; // as kube asks: only for LoadBalancer
      for (const p of spec.ports) delete p.nodePort;
      return { ...o, spec };
    });
    await toLB('two');
    expect(await used()).toMatchObject({ 'services.loadbalancers': '1', 'services.nodeports': '1' });
    expect(await used()).toMatchObject({ pods: '2', 'requests.cpu': '1', 'requests.storage': '3Gi' });
  });

  it.runIf(enabled)('concurrent resizes through two apiservers never pass the quota', async () => {
    const open = await makeStore();
    const a = new ApiServer({ backend: open() });
    const b = new ApiServer({ backend: open() });
    await setup(a, 'r', quota('q', { 'requests.storage': '2Gi' }));
    // Ten bound claims of 100Mi (1000Mi of 2048Mi); each asks to grow to 500Mi (+400Mi): two fit.
    for (let i = 0; i < 10; i++) {
      await a.registry.create(pvcRes, 'r', { metadata: { name: `c${i}` }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '100Mi' } } } } as KubeObject);
      await a.registry.guaranteedUpdate(pvcRes, 'r', `c${i}`, undefined, { subresource: 'status' }, (o) => ({ ...o, status: { phase: 'Bound' } }));
    }
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        [a, b][i % 2]!.registry.guaranteedUpdate(pvcRes, 'r', `c${i}`, undefined, {}, (o) => ({ ...o, spec: { ...o.spec, resources: { requests: { storage: '500Mi' } } } })),
      ),
    );
    const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as ApiError);
    expect(results.length - refused.length).toBe(2);
    for (const e of refused) expect(e.message).toMatch(/^persistentvolumeclaims "c\d" is forbidden: exceeded quota: q, requested: requests.storage=400Mi, used: requests.storage=1800Mi, limited: requests.storage=2Gi$/);
    const sizes = (await b.registry.list(pvcRes, 'r')).items.map((c) => c.spec.resources.requests.storage);
    expect(sizes.filter((s) => s === '500Mi')).toHaveLength(2);
    await resourceQuotaController.reconcile('r', a.controllerContext());
    expect((await a.registry.get(rqRes, 'r', 'q')).status!.used).toEqual({ 'requests.storage': '1800Mi' });
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
    /** After the controller's reconcile: t1 uses no pod, t2 its own, the total t2's. */
    const expectOnlyT2 = async () => {
      await clusterResourceQuotaController.reconcile('team-x', a.controllerContext());
      crq = await a.registry.get(crqRes, undefined, 'team-x');
      expect(crq.status!.total.used).toEqual({ pods: String(t2) });
      expect(crq.status!.namespaces.map((p: any) => [p.namespace, p.status.used.pods])).toEqual([
        ['t1', '0'],
        ['t2', String(t2)],
      ]);
    };
    for (const p of (await a.registry.list(podRes, 't1')).items) await a.registry.delete(podRes, 't1', p.metadata.name!, { gracePeriodSeconds: 0 });
    await expectOnlyT2();
    await b.registry.create(podRes, 't1', pod('again'));
    // A pod that ends gives its part back, to the total and to its namespace's tally.
    const done = (await a.registry.list(podRes, 't1')).items[0]!.metadata.name!;
    await a.registry.guaranteedUpdate(podRes, 't1', done, undefined, { subresource: 'status' }, (o) => ({ ...o, status: { ...o.status, phase: 'Failed' } }));
    await expectOnlyT2();
  });
});
