// RBAC on both stores (SQLite, DynamoDB through moto), over HTTPS against a local cluster (its apiserver
// following the RBAC objects by a watch, every loop running): a user token confined to one namespace by a
// RoleBinding; kube's 403 Status for resources, subresources (pods/log, deployments/scale, "*\/scale"),
// watch, cluster scope and non-resource URLs; escalation refused, then allowed with escalate and bind;
// ClusterRole aggregation (the bootstrap admin/edit/view and a new one). Then, with 1,000 bindings
// stored, a request visits only the user's own bindings; an apiserver without a watch (a Lambda instance)
// re-lists them at most once a second, one with a watch (skiff up) never.

import { afterAll, describe, expect, it } from 'vitest';
import https from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalCluster, type LocalCluster } from '../lambdas/local/server.ts';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { newToken, storeToken } from '../lambdas/apiserver/auth.ts';
import { ensureBootstrapPolicy } from '../lambdas/apiserver/bootstrap-policy.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import { testStores } from './support/backends.ts';
import { until } from './support/until.ts';

const stores = await testStores('rbac');
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const RBAC = 'rbac.authorization.k8s.io/v1';
const roleBindingsRes = findResource('rbac.authorization.k8s.io', 'v1', 'rolebindings')!;
const rolesRes = findResource('rbac.authorization.k8s.io', 'v1', 'roles')!;
const namespacesRes = findResource('', 'v1', 'namespaces')!;

interface Res {
  status: number;
  json: any;
}

function client(c: LocalCluster, token: string) {
  return (method: string, path: string, body?: unknown): Promise<Res> =>
    new Promise((resolve, reject) => {
      const u = new URL(path, c.url);
      const req = https.request(
        { host: u.hostname, port: u.port, path: u.pathname + u.search, method, ca: c.caCert, agent: false, headers: { authorization: `Bearer ${token}`, 'content-type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json' } },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => {
            let json: any;
            try {
              json = JSON.parse(text);
            } catch {
              json = text;
            }
            resolve({ status: res.statusCode!, json });
          });
          // A watch that was allowed stays open: the status is all this test needs.
          if (res.statusCode === 200 && /watch=true/.test(path)) {
            resolve({ status: 200, json: undefined });
            res.destroy();
          }
        },
      );
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
}

/** kube's 403 Status for an authorizer's refusal. */
// kube's 403: details name the resource (kind), its group and the object, as the message does.
const forbidden = (message: string) => {
  const m = /^([a-z]+)(?:\.([a-z0-9.]+))?(?: "([^"]+)")? is forbidden/.exec(message);
  const details = m ? { ...(m[3] ? { name: m[3] } : {}), ...(m[2] ? { group: m[2] } : {}), kind: m[1] } : {};
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'Forbidden', details, code: 403 };
};

const role = (name: string, rules: unknown[]) => ({ apiVersion: RBAC, kind: 'Role', metadata: { name }, rules });
const binding = (name: string, roleKind: string, roleName: string, user: string) => ({
  apiVersion: RBAC,
  kind: 'RoleBinding',
  metadata: { name },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: roleKind, name: roleName },
  subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: user }],
});

describe.each(stores)('RBAC on %s', (name, makeStore, enabled) => {
  // Other users' bindings stored beside alice's: 1,000 on SQLite; 300 through moto, whose writes are slow.
  const others = name === 'SQLite' ? 1000 : 300;

  it.skipIf(!enabled)(
    'confines a user to a namespace, refuses with kube 403s, prevents escalation, and aggregates',
    async () => {
      const open = await makeStore();
      const dataDir = mkdtempSync(join(tmpdir(), 'skiff-rbac-'));
      dirs.push(dataDir);
      const c = await startLocalCluster({ dataDir, port: 0, backend: open(), watchProgressMs: 200, agents: 0 });
      try {
        const admin = client(c, c.token);
        const aliceToken = newToken();
        await storeToken(c.backend, aliceToken, { username: 'alice', groups: ['devs'] });
        const alice = client(c, aliceToken);
        for (const ns of ['team', 'other']) expect((await admin('POST', '/api/v1/namespaces', { metadata: { name: ns } })).status).toBe(201);

        // The default policy is there: cluster-admin for system:masters, kube's annotation and label.
        const ca = await admin('GET', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/cluster-admin');
        expect(ca.json.subjects).toEqual([{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:masters' }]);
        expect(ca.json.metadata.annotations).toEqual({ 'rbac.authorization.kubernetes.io/autoupdate': 'true' });
        expect(ca.json.metadata.labels).toEqual({ 'kubernetes.io/bootstrapping': 'rbac-defaults' });

        // No binding yet: refused, in kube's words. Discovery is everyone's (system:discovery).
        expect(await alice('GET', '/api/v1/namespaces/team/pods')).toEqual({
          status: 403,
          json: forbidden('pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "team"'),
        });
        expect((await alice('GET', '/api')).status).toBe(200);
        expect((await alice('GET', '/apis/apps/v1')).status).toBe(200);
        expect((await alice('GET', '/openapi/v2')).status).toBe(200);
        // A non-resource URL no role grants: 403 before 404 (an admin gets the 404).
        expect(await alice('GET', '/debug/pprof')).toEqual({ status: 403, json: forbidden('forbidden: User "alice" cannot get path "/debug/pprof"') });
        expect((await admin('GET', '/debug/pprof')).status).toBe(404);
        // /metrics is served, to who may get it (system:monitoring; an admin).
        expect(await alice('GET', '/metrics')).toEqual({ status: 403, json: forbidden('forbidden: User "alice" cannot get path "/metrics"') });
        expect((await admin('GET', '/metrics')).status).toBe(200);

        // A Role in "team" and alice's RoleBinding to it.
        const reader = role('reader', [
          { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
          // Not '*': that would include escalate and bind.
          { apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles', 'rolebindings'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
          { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get'] },
        ]);
        expect((await admin('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/team/roles', reader)).status).toBe(201);
        expect((await admin('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings', binding('alice-reader', 'Role', 'reader', 'alice'))).status).toBe(201);
        await until('alice may list pods in team', async () => (await alice('GET', '/api/v1/namespaces/team/pods')).status === 200);
        expect((await alice('GET', '/api/v1/namespaces/team/pods?watch=true')).status).toBe(200);

        // Elsewhere, and for what the role does not name: refused.
        const cases: [string, string, string][] = [
          ['GET', '/api/v1/namespaces/other/pods', 'pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "other"'],
          ['GET', '/api/v1/namespaces/other/pods?watch=true', 'pods is forbidden: User "alice" cannot watch resource "pods" in API group "" in the namespace "other"'],
          ['GET', '/api/v1/pods', 'pods is forbidden: User "alice" cannot list resource "pods" in API group "" at the cluster scope'],
          ['GET', '/api/v1/namespaces', 'namespaces is forbidden: User "alice" cannot list resource "namespaces" in API group "" at the cluster scope'],
          ['DELETE', '/api/v1/namespaces/team/pods/p1', 'pods "p1" is forbidden: User "alice" cannot delete resource "pods" in API group "" in the namespace "team"'],
          ['GET', '/api/v1/namespaces/team/pods/p1/log', 'pods "p1" is forbidden: User "alice" cannot get resource "pods/log" in API group "" in the namespace "team"'],
          ['GET', '/apis/apps/v1/namespaces/team/deployments/d1/scale', 'deployments.apps "d1" is forbidden: User "alice" cannot get resource "deployments/scale" in API group "apps" in the namespace "team"'],
          ['GET', '/apis/apps/v1/namespaces/team/replicasets', 'replicasets.apps is forbidden: User "alice" cannot list resource "replicasets" in API group "apps" in the namespace "team"'],
        ];
        for (const [method, path, message] of cases) expect(await alice(method, path), `${method} ${path}`).toEqual({ status: 403, json: forbidden(message) });
        // Allowed through to the store: the deployment is simply not there.
        expect((await alice('GET', '/apis/apps/v1/namespaces/team/deployments/d1')).status).toBe(404);

        // Escalation: alice may write roles in team, but not grant what she does not hold.
        const tooMuch = role('too-much', [{ apiGroups: [''], resources: ['pods', 'secrets'], verbs: ['get', 'delete'] }]);
        const refused = await alice('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/team/roles', tooMuch);
        expect(refused.status).toBe(403);
        expect(refused.json.reason).toBe('Forbidden');
        expect(refused.json.message).toBe(
          'roles.rbac.authorization.k8s.io "too-much" is forbidden: user "alice" (groups=["devs" "system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n' +
            '{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}\n{APIGroups:[""], Resources:["secrets"], Verbs:["get" "delete"]}',
        );
        // What she holds she may grant; "*/scale" grants every scale subresource.
        const scaler = role('scaler', [
          { apiGroups: [''], resources: ['pods'], verbs: ['get'] },
        ]);
        expect((await alice('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/team/roles', scaler)).status).toBe(201);
        // A patch that adds rules is checked too.
        const patched = await alice('PATCH', '/apis/rbac.authorization.k8s.io/v1/namespaces/team/roles/scaler', { rules: [{ apiGroups: ['*'], resources: ['*/scale'], verbs: ['get'] }] });
        expect(patched.status).toBe(403);
        expect(patched.json.message).toContain('{APIGroups:["*"], Resources:["*/scale"], Verbs:["get"]}');
        // Binding a role she does not hold (admin): refused; to a role that does not exist: 404. (admin's
        // rules are gathered by the aggregation controller: once they are there.)
        await until('the admin ClusterRole aggregated', async () => (await admin('GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles/admin')).json.rules?.length > 0);
        const bindAdmin = await alice('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings', binding('alice-admin', 'ClusterRole', 'admin', 'alice'));
        expect(bindAdmin.status).toBe(403);
        expect(bindAdmin.json.message).toMatch(/^rolebindings\.rbac\.authorization\.k8s\.io "alice-admin" is forbidden: user "alice" \(groups=\["devs" "system:authenticated"\]\) is attempting to grant RBAC permissions not currently held:\n\{/);
        const bindMissing = await alice('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings', binding('x', 'Role', 'nope', 'alice'));
        expect(bindMissing).toMatchObject({ status: 404, json: { reason: 'NotFound', message: 'roles.rbac.authorization.k8s.io "nope" not found' } });

        // With escalate on roles and bind on the "admin" ClusterRole (in team), both go through.
        expect(
          (await admin('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/team/roles', role('delegate', [
            { apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles'], verbs: ['escalate'] },
            { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterroles'], verbs: ['bind'], resourceNames: ['admin'] },
          ]))).status,
        ).toBe(201);
        expect((await admin('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings', binding('alice-delegate', 'Role', 'delegate', 'alice'))).status).toBe(201);
        await until('alice may escalate', async () => (await alice('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/team/roles', tooMuch)).status === 201);
        expect((await alice('PATCH', '/apis/rbac.authorization.k8s.io/v1/namespaces/team/roles/scaler', { rules: [{ apiGroups: ['*'], resources: ['*/scale'], verbs: ['get'] }] })).status).toBe(200);
        expect((await alice('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings', binding('alice-admin', 'ClusterRole', 'admin', 'alice'))).status).toBe(201);
        // bind on "admin" is not bind on "edit".
        expect((await alice('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings', { ...binding('alice-edit', 'ClusterRole', 'cluster-admin', 'alice') })).status).toBe(403);
        // Through the aggregated admin role (aggregated from edit, view and system:aggregate-to-*), alice now
        // holds what admin holds in team: deleting pods, reading secrets. Still nothing in "other".
        await until('admin is aggregated and alice holds it', async () => (await alice('GET', '/api/v1/namespaces/team/secrets')).status === 200);
        expect((await alice('GET', '/apis/apps/v1/namespaces/team/deployments/d1/scale')).status).toBe(404);
        expect((await alice('GET', '/api/v1/namespaces/other/secrets')).status).toBe(403);

        // A binding's roleRef never changes (422, kube's words).
        const rb = (await admin('GET', '/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings/alice-reader')).json;
        const changed = await admin('PUT', '/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings/alice-reader', { ...rb, roleRef: { ...rb.roleRef, name: 'scaler' } });
        expect(changed.status).toBe(422);
        expect(changed.json.message).toBe(
          'RoleBinding.rbac.authorization.k8s.io "alice-reader" is invalid: roleRef: Invalid value: {"APIGroup":"rbac.authorization.k8s.io","Kind":"Role","Name":"scaler"}: cannot change roleRef',
        );

        // Aggregation of a new ClusterRole: it gathers the rules of the roles its selector matches.
        const agg = { apiVersion: RBAC, kind: 'ClusterRole', metadata: { name: 'monitoring' }, aggregationRule: { clusterRoleSelectors: [{ matchLabels: { 'example.com/aggregate-to-monitoring': 'true' } }] } };
        expect((await admin('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', agg)).status).toBe(201);
        const part = { apiVersion: RBAC, kind: 'ClusterRole', metadata: { name: 'monitoring-endpoints', labels: { 'example.com/aggregate-to-monitoring': 'true' } }, rules: [{ apiGroups: [''], resources: ['endpoints'], verbs: ['get', 'list', 'watch'] }] };
        expect((await admin('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', part)).status).toBe(201);
        await until('monitoring is aggregated', async () => JSON.stringify((await admin('GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles/monitoring')).json.rules) === JSON.stringify(part.rules));
        // Setting an aggregationRule needs cluster-admin, even with escalate.
        const aliceAgg = await alice('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', { ...agg, metadata: { name: 'mine' } });
        expect(aliceAgg.status).toBe(403);

      } finally {
        await c.close();
      }
    },
    240_000,
  );

  it.skipIf(!enabled)(
    `with ${others} bindings stored, a request visits only the user's own; a watch keeps the view, without one it is re-listed at most once a second`,
    async () => {
      const open = await makeStore();
      const backend = open();
      const token = newToken();
      await storeToken(backend, token, { username: 'alice', groups: ['devs'] });
      const setup = new ApiServer({ backend });
      await ensureBootstrapPolicy(setup.registry);
      await setup.registry.create(namespacesRes, undefined, { metadata: { name: 'team' } });
      await setup.registry.create(rolesRes, 'team', role('reader', [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }]) as any);
      await setup.registry.create(roleBindingsRes, 'team', binding('alice', 'Role', 'reader', 'alice') as any);
      // Bindings of other users, written straight to the store (this is about reading them).
      const raw = (key: string, o: object) => backend.create(key, JSON.stringify(o));
      const writes: (() => Promise<unknown>)[] = [];
      for (let i = 0; i < others / 2; i++) {
        writes.push(() => raw(`/registry/rbac.authorization.k8s.io/rolebindings/team/rb-${i}`, { ...binding(`rb-${i}`, 'Role', 'reader', `user-${i}`), metadata: { name: `rb-${i}`, namespace: 'team' } }));
        writes.push(() => raw(`/registry/rbac.authorization.k8s.io/clusterrolebindings/crb-${i}`, { ...binding(`crb-${i}`, 'ClusterRole', 'view', `user-${i}`), kind: 'ClusterRoleBinding' }));
      }
      for (let i = 0; i < writes.length; i += 10) await Promise.all(writes.slice(i, i + 10).map((w) => w()));

      const call = (api: ApiServer, path: string) => api.handle({ method: 'GET', path, query: new URLSearchParams(), headers: { authorization: `Bearer ${token}` }, body: Buffer.alloc(0) });
      // Without a watch (each Lambda instance): one re-list, shared by the requests of a second.
      const lambdaApi = new ApiServer({ backend: open() });
      const results = await Promise.all(Array.from({ length: 20 }, () => call(lambdaApi, '/api/v1/namespaces/team/pods')));
      expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
      expect(lambdaApi.rbac.stats.relists).toBe(1);
      // alice's own bindings only: her RoleBinding in team, and the bootstrap ClusterRoleBindings of
      // system:authenticated (basic-user, discovery, public-info-viewer) before it. Not the others.
      const perRequest = lambdaApi.rbac.stats.bindingsVisited / 20;
      expect(perRequest).toBeGreaterThanOrEqual(1);
      expect(perRequest).toBeLessThanOrEqual(4);
      expect((await call(lambdaApi, '/api/v1/namespaces/other/pods')).status).toBe(403);
      // (A view's age counts from when its list began: a slow list, DynamoDB's, may already be a second old.)
      expect(lambdaApi.rbac.stats.relists).toBeLessThanOrEqual(2);
      const relists = lambdaApi.rbac.stats.relists;
      await new Promise((r) => setTimeout(r, 1100));
      await Promise.all(Array.from({ length: 5 }, () => call(lambdaApi, '/api/v1/namespaces/team/pods')));
      expect(lambdaApi.rbac.stats.relists).toBe(relists + 1);

      // With a watch (skiff up): requests read nothing; a new binding is seen through the watch.
      const localApi = new ApiServer({ backend: open() });
      const feed = new AbortController();
      const following = localApi.rbac.follow(feed.signal);
      try {
        await until('following', async () => localApi.rbac.isFollowing);
        const relists = localApi.rbac.stats.relists;
        expect((await call(localApi, '/api/v1/namespaces/team/configmaps')).status).toBe(403);
        await setup.registry.create(rolesRes, 'team', role('cm', [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list'] }]) as any);
        await setup.registry.create(roleBindingsRes, 'team', binding('alice-cm', 'Role', 'cm', 'alice') as any);
        await until('the watch brings the binding', async () => (await call(localApi, '/api/v1/namespaces/team/configmaps')).status === 200, 10_000);
        expect(localApi.rbac.stats.relists).toBe(relists);
      } finally {
        feed.abort();
        await following;
      }
    },
    240_000,
  );
});
