// The pods/eviction subresource on both stores (SQLite, DynamoDB through moto), through the apiserver's
// request handler: evictions deleting pods, PodDisruptionBudgets refusing them with kube's 429, two
// racing evictions for the last allowed disruption, two budgets (500), a budget not yet observed, terminal
// and unhealthy pods, DeleteOptions (grace period, preconditions), dry run, v1beta1, bad input. No
// controllers run here: budgets' statuses are written as the disruption controller would write them.
// Last, @kubernetes/client-node's createNamespacedPodEviction against a real HTTPS apiserver.

import { describe, expect, it } from 'vitest';
import * as k8s from '@kubernetes/client-node';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { ADMIN_USER, newToken, storeToken } from '../lambdas/apiserver/auth.ts';
import type { ApiRequest } from '../lambdas/apiserver/http.ts';
import { openapiV3Document } from '../lambdas/apiserver/openapi.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { testStores } from './support/backends.ts';
import { startTestCluster } from './support/cluster.ts';

const podsRes = findResource('', 'v1', 'pods')!;
const pdbsRes = findResource('policy', 'v1', 'poddisruptionbudgets')!;
const nsRes = findResource('', 'v1', 'namespaces')!;

const stores = await testStores('eviction');

interface Res {
  status: number;
  headers: Record<string, string>;
  json: any;
}

async function server(open: () => any) {
  const backend = open();
  const token = newToken();
  await storeToken(backend, token, ADMIN_USER);
  const api = new ApiServer({ backend });
  await api.registry.create(nsRes, undefined, { metadata: { name: 'ev' } });
  const call = async (method: string, path: string, body?: unknown, query = ''): Promise<Res> => {
    const req: ApiRequest = {
      method,
      path,
      query: new URLSearchParams(query),
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: Buffer.from(body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body)),
    };
    const r = await api.handle(req);
    return { status: r.status, headers: r.headers, json: JSON.parse(String(r.body)) };
  };
  const evict = (pod: string, deleteOptions?: Record<string, unknown>, query = '', apiVersion = 'policy/v1') =>
    call('POST', `/api/v1/namespaces/ev/pods/${pod}/eviction`, { apiVersion, kind: 'Eviction', metadata: { name: pod, namespace: 'ev' }, ...(deleteOptions ? { deleteOptions } : {}) }, query);
  /** A Running, Ready (or not) pod, bound to a node when asked (then deleted gracefully). */
  const pod = async (name: string, labels: Record<string, string>, o: { ready?: boolean; phase?: string; nodeName?: string } = {}) => {
    await api.registry.create(podsRes, 'ev', { metadata: { name, labels }, spec: { ...(o.nodeName ? { nodeName: o.nodeName } : {}), containers: [{ name: 'c', image: 'busybox' }] } });
    return api.registry.guaranteedUpdate(podsRes, 'ev', name, undefined, { subresource: 'status' }, (cur) => ({
      ...cur,
      status: { phase: o.phase ?? 'Running', conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True', lastTransitionTime: '2026-01-01T00:00:00Z' }] },
    }));
  };
  /** A budget with the status the disruption controller would have given it. */
  const pdb = async (name: string, selector: Record<string, string>, status: Record<string, number>, spec: Record<string, unknown> = {}) => {
    await api.registry.create(pdbsRes, 'ev', { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name }, spec: { minAvailable: 1, selector: { matchLabels: selector }, ...spec } });
    return api.registry.guaranteedUpdate(pdbsRes, 'ev', name, undefined, { subresource: 'status' }, (cur) => ({ ...cur, status: { observedGeneration: 1, ...status } }));
  };
  const get = (res: typeof podsRes, name: string) => api.registry.get(res, 'ev', name).catch(() => undefined) as Promise<KubeObject | undefined>;
  return { api, call, evict, pod, pdb, get };
}

const SUCCESS = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 };
const VIOLATES = "Cannot evict pod as it would violate the pod's disruption budget.";

for (const [label, makeStore, enabled] of stores) {
  describe.skipIf(!enabled)(`pods/eviction on ${label}`, () => {
    it('without a budget the pod is deleted, gracefully when bound, with the DisruptionTarget condition and the grace period asked for', async () => {
      const s = await server(await makeStore());
      await s.pod('loose', { app: 'none' });
      const r = await s.evict('loose');
      expect(r.status).toBe(201);
      expect(r.json).toEqual(SUCCESS);
      expect(await s.get(podsRes, 'loose')).toBeUndefined();

      await s.pod('bound', { app: 'none' }, { nodeName: 'n1' });
      expect((await s.evict('bound', { gracePeriodSeconds: 7 })).status).toBe(201);
      const p = (await s.get(podsRes, 'bound'))!;
      expect(p.metadata.deletionTimestamp).toBeDefined();
      expect(p.metadata.deletionGracePeriodSeconds).toBe(7);
      expect(p.status.conditions).toContainEqual(expect.objectContaining({ type: 'DisruptionTarget', status: 'True', reason: 'EvictionByEvictionAPI', message: 'Eviction API: evicting' }));
    });

    it('a budget with no disruption allowed refuses with 429 and the DisruptionBudget cause; one allowed is spent and recorded', async () => {
      const s = await server(await makeStore());
      await s.pod('a', { app: 'web' });
      await s.pod('b', { app: 'web' });
      await s.pdb('web', { app: 'web' }, { disruptionsAllowed: 0, currentHealthy: 2, desiredHealthy: 2, expectedPods: 2 });
      const refused = await s.evict('a');
      expect(refused.status).toBe(429);
      expect(refused.headers['retry-after']).toBeUndefined();
      expect(refused.json).toEqual({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: VIOLATES,
        reason: 'TooManyRequests',
        details: { causes: [{ reason: 'DisruptionBudget', message: 'The disruption budget web needs 2 healthy pods and has 2 currently' }] },
        code: 429,
      });
      expect(await s.get(podsRes, 'a')).toBeDefined();

      await s.api.registry.guaranteedUpdate(pdbsRes, 'ev', 'web', undefined, { subresource: 'status' }, (cur) => ({ ...cur, status: { ...cur.status, disruptionsAllowed: 1, desiredHealthy: 1 } }));
      expect((await s.evict('a')).json).toEqual(SUCCESS);
      expect(await s.get(podsRes, 'a')).toBeUndefined();
      const spent = (await s.get(pdbsRes, 'web'))!;
      expect(spent.status.disruptionsAllowed).toBe(0);
      expect(Object.keys(spent.status.disruptedPods)).toEqual(['a']);
      expect(spent.status.conditions).toEqual([expect.objectContaining({ type: 'DisruptionAllowed', status: 'False', reason: 'InsufficientPods', message: '', observedGeneration: 1 })]);
      expect((await s.evict('b')).status).toBe(429);
    });

    it('two evictions racing for the last allowed disruption: exactly one wins', async () => {
      const s = await server(await makeStore());
      for (const n of ['r1', 'r2', 'r3']) await s.pod(n, { app: 'race' });
      await s.pdb('race', { app: 'race' }, { disruptionsAllowed: 1, currentHealthy: 3, desiredHealthy: 2, expectedPods: 3 });
      const results = await Promise.all(['r1', 'r2', 'r3'].map((n) => s.evict(n)));
      expect(results.map((r) => r.status).sort()).toEqual([201, 429, 429]);
      const left = await Promise.all(['r1', 'r2', 'r3'].map((n) => s.get(podsRes, n)));
      expect(left.filter(Boolean)).toHaveLength(2);
      const budget = (await s.get(pdbsRes, 'race'))!;
      expect(budget.status.disruptionsAllowed).toBe(0);
      expect(Object.keys(budget.status.disruptedPods)).toHaveLength(1);
    });

    it('two budgets selecting the pod: 500 with kube message; a budget not yet observed: 429 with Retry-After', async () => {
      const s = await server(await makeStore());
      await s.pod('twice', { app: 'two', tier: 'x' });
      await s.pdb('one', { app: 'two' }, { disruptionsAllowed: 5 });
      await s.pdb('other', { tier: 'x' }, { disruptionsAllowed: 5 });
      const r = await s.evict('twice');
      expect(r.status).toBe(500);
      expect(r.json).toEqual({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.', code: 500 });

      await s.pod('young', { app: 'young' });
      await s.pdb('young', { app: 'young' }, { disruptionsAllowed: 1 });
      // A spec change the controller has not seen: generation 2, observedGeneration 1.
      await s.api.registry.guaranteedUpdate(pdbsRes, 'ev', 'young', undefined, {}, (cur) => ({ ...cur, spec: { ...cur.spec, minAvailable: 0 } }));
      const lag = await s.evict('young');
      expect(lag.status).toBe(429);
      expect(lag.headers['retry-after']).toBe('10');
      expect(lag.json.details).toEqual({ retryAfterSeconds: 10, causes: [{ reason: 'DisruptionBudget', message: 'The disruption budget young is still being processed by the server.' }] });
      expect(await s.get(podsRes, 'young')).toBeDefined();
    });

    it('terminal and pending pods go without the budget; unhealthy pods by unhealthyPodEvictionPolicy', async () => {
      const s = await server(await makeStore());
      await s.pdb('guard', { app: 'g' }, { disruptionsAllowed: 0, currentHealthy: 1, desiredHealthy: 2, expectedPods: 3 });
      await s.pod('done', { app: 'g' }, { phase: 'Failed', ready: false });
      await s.pod('pending', { app: 'g' }, { phase: 'Pending', ready: false });
      expect((await s.evict('done')).status).toBe(201);
      expect((await s.evict('pending')).status).toBe(201);
      // Unready, and the budget is not satisfied (1 healthy of 2 desired): IfHealthyBudget refuses.
      await s.pod('sick', { app: 'g' }, { ready: false });
      expect((await s.evict('sick')).status).toBe(429);
      // Satisfied (2 of 2): the unready pod goes, and spends nothing.
      await s.api.registry.guaranteedUpdate(pdbsRes, 'ev', 'guard', undefined, { subresource: 'status' }, (cur) => ({ ...cur, status: { ...cur.status, currentHealthy: 2 } }));
      expect((await s.evict('sick')).status).toBe(201);
      expect((await s.get(pdbsRes, 'guard'))!.status.disruptedPods).toBeUndefined();

      await s.pdb('lenient', { app: 'l' }, { disruptionsAllowed: 0, currentHealthy: 0, desiredHealthy: 2, expectedPods: 2 }, { unhealthyPodEvictionPolicy: 'AlwaysAllow' });
      await s.pod('sick2', { app: 'l' }, { ready: false });
      await s.pod('well', { app: 'l' });
      expect((await s.evict('sick2')).status).toBe(201);
      expect((await s.evict('well')).status).toBe(429);
    });

    it('dry run checks and writes nothing; preconditions, v1beta1, names and bodies', async () => {
      const s = await server(await makeStore());
      const p = await s.pod('dry', { app: 'd' });
      const before = await s.pdb('d', { app: 'd' }, { disruptionsAllowed: 1, currentHealthy: 1, desiredHealthy: 0, expectedPods: 1 });
      expect((await s.evict('dry', undefined, 'dryRun=All')).json).toEqual(SUCCESS);
      expect((await s.evict('dry', { dryRun: ['All'] })).status).toBe(201);
      expect((await s.get(podsRes, 'dry'))!.metadata.resourceVersion).toBe(p.metadata.resourceVersion);
      expect((await s.get(pdbsRes, 'd'))!.metadata.resourceVersion).toBe(before.metadata.resourceVersion);

      const uid = await s.evict('dry', { preconditions: { uid: 'not-the-uid' } });
      expect(uid.status).toBe(409);
      expect(uid.json.message).toBe(`Operation cannot be fulfilled on Pod "dry": the UID in the precondition (not-the-uid) does not match the UID in record (${p.metadata.uid}). The object might have been deleted and then recreated`);
      // The refused eviction spent its disruption (as kube's does): the budget's controller gives it back.
      await s.api.registry.guaranteedUpdate(pdbsRes, 'ev', 'd', undefined, { subresource: 'status' }, (cur) => ({ ...cur, status: { ...cur.status, disruptionsAllowed: 1, disruptedPods: undefined } }));

      const beta = await s.evict('dry', { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: p.metadata.uid } }, '', 'policy/v1beta1');
      expect(beta.json).toEqual(SUCCESS);
      expect(await s.get(podsRes, 'dry')).toBeUndefined();

      const missing = await s.evict('ghost');
      expect(missing.status).toBe(404);
      expect(missing.json.message).toBe('pods "ghost" not found');
      const wrongName = await s.call('POST', '/api/v1/namespaces/ev/pods/ghost/eviction', { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'other' } });
      expect(wrongName.status).toBe(400);
      expect(wrongName.json.message).toBe('name in URL does not match name in Eviction object');
      const wrongNs = await s.call('POST', '/api/v1/namespaces/ev/pods/ghost/eviction', { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'ghost', namespace: 'other' } });
      expect(wrongNs.status).toBe(400);
      expect(wrongNs.json.message).toBe('the namespace of the provided object does not match the namespace sent on the request');
      const badGrace = await s.call('POST', '/api/v1/namespaces/ev/pods/ghost/eviction', { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'ghost' }, deleteOptions: { gracePeriodSeconds: 'soon' } });
      expect(badGrace.status).toBe(400);
      expect((await s.call('GET', '/api/v1/namespaces/ev/pods/ghost/eviction')).status).toBe(405);
    });

    it('is in discovery as kubectl drain looks for it, and in OpenAPI with kube\'s operation', async () => {
      const s = await server(await makeStore());
      const v1 = await s.call('GET', '/api/v1');
      expect(v1.json.resources.find((r: any) => r.name === 'pods/eviction')).toEqual({ name: 'pods/eviction', singularName: '', namespaced: true, group: 'policy', version: 'v1', kind: 'Eviction', verbs: ['create'] });
      const doc = openapiV3Document('api/v1') as any;
      const post = doc.paths['/api/v1/namespaces/{namespace}/pods/{name}/eviction'].post;
      expect(post.operationId).toBe('createCoreV1NamespacedPodEviction');
      expect(post['x-kubernetes-group-version-kind']).toEqual({ group: 'policy', kind: 'Eviction', version: 'v1' });
      expect(post.requestBody.content['application/json'].schema.$ref).toBe('#/components/schemas/io.k8s.api.policy.v1.Eviction');
    });
  });
}

describe('pods/eviction from @kubernetes/client-node over HTTPS', () => {
  it('createNamespacedPodEviction: refused with the budget in the 429 body, then evicts', async () => {
    const c = await startTestCluster({ controllers: false });
    try {
      const kc = new k8s.KubeConfig();
      kc.loadFromFile(c.kubeconfigPath);
      const core = kc.makeApiClient(k8s.CoreV1Api);
      const policy = kc.makeApiClient(k8s.PolicyV1Api);
      const pod = await core.createNamespacedPod({ namespace: 'default', body: { metadata: { name: 'p', labels: { app: 'p' } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } });
      await core.replaceNamespacedPodStatus({ name: 'p', namespace: 'default', body: { ...pod, status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } } });
      await policy.createNamespacedPodDisruptionBudget({ namespace: 'default', body: { metadata: { name: 'p' }, spec: { minAvailable: 1, selector: { matchLabels: { app: 'p' } } } } });
      const merge = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
      await policy.patchNamespacedPodDisruptionBudgetStatus({ name: 'p', namespace: 'default', body: { status: { observedGeneration: 1, disruptionsAllowed: 0, currentHealthy: 1, desiredHealthy: 1, expectedPods: 1 } } }, merge);
      const eviction = { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'p', namespace: 'default' } };
      const refused = await core.createNamespacedPodEviction({ name: 'p', namespace: 'default', body: eviction }).then(
        () => undefined,
        (e: any) => e,
      );
      expect(refused?.code).toBe(429);
      expect(JSON.parse(refused.body).details.causes).toEqual([{ reason: 'DisruptionBudget', message: 'The disruption budget p needs 1 healthy pods and has 1 currently' }]);
      await policy.patchNamespacedPodDisruptionBudgetStatus({ name: 'p', namespace: 'default', body: { status: { disruptionsAllowed: 1 } } }, merge);
      await core.createNamespacedPodEviction({ name: 'p', namespace: 'default', body: eviction });
      await expect(core.readNamespacedPod({ name: 'p', namespace: 'default' })).rejects.toMatchObject({ code: 404 });
    } finally {
      await c.destroy();
    }
  });
});
