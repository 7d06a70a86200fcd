// Access reviews (authorization.k8s.io/v1 SubjectAccessReview, LocalSubjectAccessReview,
// SelfSubjectAccessReview, SelfSubjectRulesReview; authentication.k8s.io/v1 SelfSubjectReview) and
// impersonation, over HTTPS and through the machine's kubectl (auth can-i [--list], auth whoami, --as,
// --as-group), against a real local cluster enforcing test/support/grants.ts. The reviews are computed,
// never stored, so one storage backend serves (the store is checked to be untouched).

import https from 'node:https';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeToken } from '../lambdas/apiserver/auth.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { applyGrants } from './support/grants.ts';
import { pythonClient } from './support/python-client.ts';

let c: TestCluster;
let revisionBefore: number;
const token = (user: string) => `${user}-token-0123456789`;

beforeAll(async () => {
  c = await startTestCluster({ controllers: false, ...applyGrants() });
  for (const u of ['alice', 'bob', 'carol', 'broken']) await storeToken(c.backend, token(u), { username: u, groups: [] });
  revisionBefore = await c.backend.currentRevision();
}, 60_000);
afterAll(async () => {
  await c?.destroy();
});

interface Res {
  status: number;
  json: any;
}

function post(path: string, body: unknown, as: string | null, headers: Record<string, string> = {}): Promise<Res> {
  const u = new URL(path, c.url);
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      u,
      { method: 'POST', ca: c.caCert, headers: { authorization: `Bearer ${as ? token(as) : c.token}`, 'content-type': 'application/json', ...headers } },
      (res) => {
        let t = '';
        res.on('data', (d) => (t += d));
        res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(t) }));
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

const AZ = '/apis/authorization.k8s.io/v1';
const ssar = (spec: object, as: string | null, headers?: Record<string, string>) =>
  post(`${AZ}/selfsubjectaccessreviews`, { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec }, as, headers);
const sar = (spec: object, as: string | null = null, metadata?: object) =>
  post(`${AZ}/subjectaccessreviews`, { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', ...(metadata ? { metadata } : {}), spec }, as);
const whoami = (as: string | null, headers?: Record<string, string>) =>
  post('/apis/authentication.k8s.io/v1/selfsubjectreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }, as, headers);
const podsIn = (namespace: string, verb = 'list') => ({ resourceAttributes: { namespace, verb, resource: 'pods' } });

describe('SelfSubjectAccessReview', () => {
  it('answers for the caller: allowed with the reason, or neither allowed nor denied (no opinion)', async () => {
    const yes = await ssar(podsIn('team-a'), 'alice');
    expect(yes.status).toBe(201);
    expect(yes.json).toMatchObject({ kind: 'SelfSubjectAccessReview', apiVersion: 'authorization.k8s.io/v1', spec: podsIn('team-a') });
    expect(yes.json.status).toEqual({ allowed: true, reason: expect.stringMatching(/^allowed by test grant \d+$/) });
    const no = await ssar(podsIn('team-b'), 'alice');
    expect(no.json.status).toEqual({ allowed: false });
    // Non-resource URLs: discovery is everyone's, /metrics is not alice's.
    expect((await ssar({ nonResourceAttributes: { path: '/apis', verb: 'get' } }, 'alice')).json.status.allowed).toBe(true);
    expect((await ssar({ nonResourceAttributes: { path: '/metrics', verb: 'get' } }, 'alice')).json.status.allowed).toBe(false);
  });

  it('refuses a spec naming both or neither kind of attributes, and any metadata, with kube\'s messages', async () => {
    const neither = await ssar({}, 'alice');
    expect(neither.status).toBe(422);
    expect(neither.json.message).toBe(
      'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified',
    );
    expect(neither.json.details.causes).toEqual([
      { reason: 'FieldValueInvalid', field: 'spec.resourceAttributes', message: 'Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified' },
    ]);
    const both = await ssar({ ...podsIn('team-a'), nonResourceAttributes: { path: '/x', verb: 'get' } }, 'alice');
    expect(both.json.message).toBe(
      'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.nonResourceAttributes: Invalid value: authorization.NonResourceAttributes{Path:"/x", Verb:"get"}: cannot be specified in combination with resourceAttributes',
    );
    const named = await post(`${AZ}/selfsubjectaccessreviews`, { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', metadata: { name: 'x' }, spec: podsIn('team-a') }, 'alice');
    expect(named.status).toBe(422);
    expect(named.json.message).toBe(
      'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: metadata: Invalid value: v1.ObjectMeta{Name:"x", GenerateName:"", Namespace:"", SelfLink:"", UID:"", ResourceVersion:"", Generation:0, CreationTimestamp:time.Date(1, time.January, 1, 0, 0, 0, 0, time.UTC), DeletionTimestamp:<nil>, DeletionGracePeriodSeconds:(*int64)(nil), Labels:map[string]string(nil), Annotations:map[string]string(nil), OwnerReferences:[]v1.OwnerReference(nil), Finalizers:[]string(nil), ManagedFields:[]v1.ManagedFieldsEntry(nil)}: must be empty',
    );
    // Not decodable: 400, as for any kind.
    const wrongType = await ssar({ resourceAttributes: 'pods' }, 'alice');
    expect(wrongType.status).toBe(400);
    expect(wrongType.json.message).toMatch(/^SelfSubjectAccessReview in version "v1" cannot be handled as a SelfSubjectAccessReview: /);
  });
});

describe('SubjectAccessReview', () => {
  it('answers for the user, groups and uid the spec names', async () => {
    const r = await sar({ user: 'alice', ...podsIn('team-a') });
    expect(r.status).toBe(201);
    expect(r.json.status).toEqual({ allowed: true, reason: expect.stringMatching(/^allowed by test grant/) });
    expect((await sar({ user: 'alice', ...podsIn('team-b') })).json.status).toEqual({ allowed: false });
    // A group alone is a subject too.
    expect((await sar({ groups: ['team-b-admins'], resourceAttributes: { namespace: 'team-b', verb: 'delete', group: 'apps', resource: 'deployments' } })).json.status.allowed).toBe(true);
  });

  it('reports an authorizer failure as evaluationError, not as an error of the request', async () => {
    const r = await sar({ user: 'broken', ...podsIn('team-a') });
    expect(r.status).toBe(201);
    expect(r.json.status).toEqual({ allowed: false, evaluationError: 'the authorizer could not read its rules' });
  });

  it('is refused (403) to whoever may not create subjectaccessreviews, in kube\'s words', async () => {
    const r = await sar({ user: 'bob', ...podsIn('team-a') }, 'alice');
    expect(r.status).toBe(403);
    expect(r.json).toMatchObject({
      kind: 'Status',
      reason: 'Forbidden',
      message: 'subjectaccessreviews.authorization.k8s.io is forbidden: User "alice" cannot create resource "subjectaccessreviews" in API group "authorization.k8s.io" at the cluster scope',
    });
  });

  it('refuses a spec without a subject or attributes, naming every problem', async () => {
    const r = await sar({});
    expect(r.status).toBe(422);
    expect(r.json.message).toBe(
      'SubjectAccessReview.authorization.k8s.io "" is invalid: [spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified, spec.user: Invalid value: "": at least one of user or group must be specified]',
    );
    expect(r.json.details).toMatchObject({ group: 'authorization.k8s.io', kind: 'SubjectAccessReview', name: '' });
  });
});

describe('LocalSubjectAccessReview', () => {
  const lsar = (ns: string, spec: object, metadata?: object) =>
    post(`${AZ}/namespaces/${ns}/localsubjectaccessreviews`, { apiVersion: 'authorization.k8s.io/v1', kind: 'LocalSubjectAccessReview', ...(metadata ? { metadata } : {}), spec }, null);

  it('answers within the namespace of its path', async () => {
    const r = await lsar('team-a', { user: 'alice', ...podsIn('team-a') });
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({ kind: 'LocalSubjectAccessReview', metadata: { namespace: 'team-a' }, status: { allowed: true } });
  });

  it('refuses attributes of another namespace, non-resource attributes, and a metadata namespace not the path\'s', async () => {
    const other = await lsar('team-a', { user: 'alice', ...podsIn('team-b') });
    expect(other.status).toBe(422);
    expect(other.json.message).toBe('LocalSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes.namespace: Invalid value: "team-b": must match metadata.namespace');
    const nonResource = await lsar('team-a', { user: 'alice', nonResourceAttributes: { path: '/healthz', verb: 'get' } });
    expect(nonResource.json.message).toBe(
      'LocalSubjectAccessReview.authorization.k8s.io "" is invalid: spec.nonResourceAttributes: Invalid value: authorization.NonResourceAttributes{Path:"/healthz", Verb:"get"}: disallowed on this kind of request',
    );
    const mismatch = await lsar('team-a', { user: 'alice', ...podsIn('team-b') }, { namespace: 'team-b' });
    expect(mismatch.status).toBe(400);
    expect(mismatch.json.message).toBe('the namespace of the provided object does not match the namespace sent on the request');
  });
});

describe('SelfSubjectRulesReview', () => {
  const ssrr = (spec: object, as: string | null) => post(`${AZ}/selfsubjectrulesreviews`, { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectRulesReview', spec }, as);

  it('lists what the caller may do in a namespace, resource and non-resource rules apart', async () => {
    const r = await ssrr({ namespace: 'team-a' }, 'alice');
    expect(r.status).toBe(201);
    expect(r.json.kind).toBe('SelfSubjectRulesReview');
    expect(r.json.status.incomplete).toBe(false);
    expect(r.json.status.resourceRules).toContainEqual({ verbs: ['get', 'list', 'watch'], apiGroups: [''], resources: ['pods'] });
    expect(r.json.status.nonResourceRules).toContainEqual({ verbs: ['get'], nonResourceURLs: expect.arrayContaining(['/apis', '/apis/*']) });
    // In team-b alice holds only what everyone holds.
    const b = await ssrr({ namespace: 'team-b' }, 'alice');
    expect(b.json.status.resourceRules.some((x: any) => x.resources.includes('pods'))).toBe(false);
  });

  it('needs a namespace (kube\'s 400)', async () => {
    const r = await ssrr({}, 'alice');
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ reason: 'BadRequest', message: 'no namespace on request' });
  });
});

describe('SelfSubjectReview', () => {
  it('tells the caller who they are', async () => {
    const r = await whoami('alice');
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({ kind: 'SelfSubjectReview', apiVersion: 'authentication.k8s.io/v1', status: { userInfo: { username: 'alice', groups: ['system:authenticated'] } } });
    expect(r.json.metadata.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });
});

describe('impersonation', () => {
  it('acts as the user, uid, groups and extras asked for, when each is allowed', async () => {
    const r = await whoami(null, { 'impersonate-user': 'dora', 'impersonate-uid': 'u-1', 'impersonate-group': 'g1, g2', 'impersonate-extra-scopes': 'a, b', 'impersonate-extra-acme.com%2fteam': 'x' });
    expect(r.status).toBe(201);
    expect(r.json.status.userInfo).toEqual({ username: 'dora', uid: 'u-1', groups: ['g1', 'g2', 'system:authenticated'], extra: { scopes: ['a', 'b'], 'acme.com/team': ['x'] } });
    // An explicit system:unauthenticated is kept and system:authenticated not added: dora then lacks
    // what every authenticated user may do.
    const unauth = await whoami(null, { 'impersonate-user': 'dora', 'impersonate-group': 'system:unauthenticated' });
    expect(unauth.status).toBe(403);
    expect(unauth.json.message).toBe(
      'selfsubjectreviews.authentication.k8s.io is forbidden: User "dora" cannot create resource "selfsubjectreviews" in API group "authentication.k8s.io" at the cluster scope',
    );
  });

  it('a service account user is checked as serviceaccounts in its namespace and gets its groups', async () => {
    const ok = await whoami('carol', { 'impersonate-user': 'system:serviceaccount:team-a:builder' });
    expect(ok.json.status.userInfo).toEqual({
      username: 'system:serviceaccount:team-a:builder',
      groups: ['system:serviceaccounts', 'system:serviceaccounts:team-a', 'system:authenticated'],
    });
    const no = await whoami('carol', { 'impersonate-user': 'system:serviceaccount:team-b:builder' });
    expect(no.status).toBe(403);
    expect(no.json.message).toBe('serviceaccounts "builder" is forbidden: User "carol" cannot impersonate resource "serviceaccounts" in API group "" in the namespace "team-b"');
  });

  it('refuses each part not allowed with kube\'s 403: users, groups, uids, userextras', async () => {
    const user = await whoami('bob', { 'impersonate-user': 'alice' });
    expect(user.status).toBe(403);
    expect(user.json.message).toBe('users "alice" is forbidden: User "bob" cannot impersonate resource "users" in API group "" at the cluster scope');
    const group = await whoami('carol', { 'impersonate-user': 'alice', 'impersonate-group': 'system:masters' });
    expect(group.json.message).toBe('groups "system:masters" is forbidden: User "carol" cannot impersonate resource "groups" in API group "" at the cluster scope');
    const uid = await whoami('carol', { 'impersonate-user': 'alice', 'impersonate-uid': 'u-9' });
    expect(uid.json.message).toBe('uids.authentication.k8s.io "u-9" is forbidden: User "carol" cannot impersonate resource "uids" in API group "authentication.k8s.io" at the cluster scope');
    const extra = await whoami('carol', { 'impersonate-user': 'alice', 'impersonate-extra-scopes': 'admin' });
    expect(extra.json.message).toBe(
      'userextras.authentication.k8s.io "admin" is forbidden: User "carol" cannot impersonate resource "userextras/scopes" in API group "authentication.k8s.io" at the cluster scope',
    );
  });

  it('groups, uid or extras without a user are a 400', async () => {
    const r = await whoami(null, { 'impersonate-group': 'devs' });
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ reason: 'BadRequest', message: 'requested [{Group  devs    }] without impersonating a user' });
  });

  it('the impersonated user is the one authorized', async () => {
    // carol may impersonate alice, who may list pods in team-a but not team-b.
    expect((await ssar(podsIn('team-a'), 'carol', { 'impersonate-user': 'alice' })).json.status.allowed).toBe(true);
    expect((await ssar(podsIn('team-b'), 'carol', { 'impersonate-user': 'alice' })).json.status.allowed).toBe(false);
  });
});

describe('kubectl auth', () => {
  const as = (user: string) => ['--token', token(user)];

  it('can-i answers yes (exit 0) and no (exit 1)', async () => {
    const yes = await c.kubectl([...as('alice'), 'auth', 'can-i', 'list', 'pods', '-n', 'team-a']);
    expect([yes.code, yes.stdout.trim()]).toEqual([0, 'yes']);
    const no = await c.kubectl([...as('alice'), 'auth', 'can-i', 'delete', 'pods', '-n', 'team-a']);
    expect([no.code, no.stdout.trim()]).toEqual([1, 'no']);
    const other = await c.kubectl([...as('alice'), 'auth', 'can-i', 'get', 'pods', '-n', 'team-b']);
    expect([other.code, other.stdout.trim()]).toEqual([1, 'no']);
    const path = await c.kubectl(['auth', 'can-i', 'get', '/healthz']);
    expect([path.code, path.stdout.trim()]).toEqual([0, 'yes']);
  });

  it('can-i --list prints the caller\'s rules in the namespace', async () => {
    const r = await c.kubectl([...as('alice'), 'auth', 'can-i', '--list', '-n', 'team-a']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^Resources\s+Non-Resource URLs\s+Resource Names\s+Verbs$/);
    expect(lines).toContainEqual(expect.stringMatching(/^pods\s+\[\]\s+\[\]\s+\[get list watch\]$/));
    expect(lines).toContainEqual(expect.stringMatching(/^selfsubjectaccessreviews\.authorization\.k8s\.io\s+\[\]\s+\[\]\s+\[create\]$/));
    expect(lines).toContainEqual(expect.stringMatching(/^\s+\[\/apis\]\s+\[\]\s+\[get\]$/));
  });

  it('whoami prints the user, and -o json the SelfSubjectReview', async () => {
    const r = await c.kubectl([...as('alice'), 'auth', 'whoami']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ATTRIBUTE\s+VALUE\nUsername\s+alice\nGroups\s+\[system:authenticated\]\n$/);
    const j = await c.kubectl(['auth', 'whoami', '-o', 'json']);
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout).status.userInfo).toEqual({ username: 'skiff-admin', groups: ['system:masters', 'system:authenticated'] });
  });

  it('--as and --as-group act as another user when allowed', async () => {
    const r = await c.kubectl([...as('carol'), 'auth', 'whoami', '--as', 'alice', '-o', 'json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).status.userInfo).toEqual({ username: 'alice', groups: ['system:authenticated'] });
    const can = await c.kubectl([...as('carol'), 'auth', 'can-i', 'list', 'pods', '-n', 'team-a', '--as', 'alice']);
    expect([can.code, can.stdout.trim()]).toEqual([0, 'yes']);
    // As a member of team-b-admins alice may do anything in team-b.
    const grouped = await c.kubectl([...as('carol'), 'auth', 'can-i', 'create', 'deployments', '-n', 'team-b', '--as', 'alice', '--as-group', 'team-b-admins']);
    expect([grouped.code, grouped.stdout.trim()]).toEqual([0, 'yes']);
    const notGrouped = await c.kubectl([...as('carol'), 'auth', 'can-i', 'create', 'deployments', '-n', 'team-b', '--as', 'alice']);
    expect([notGrouped.code, notGrouped.stdout.trim()]).toEqual([1, 'no']);
  });

  it('--as is refused to whoever may not impersonate, with kube\'s message', async () => {
    const r = await c.kubectl([...as('bob'), 'get', 'pods', '-n', 'team-a', '--as', 'alice']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Error from server (Forbidden): users "alice" is forbidden: User "bob" cannot impersonate resource "users" in API group "" at the cluster scope');
    const group = await c.kubectl([...as('carol'), 'get', 'pods', '-n', 'team-a', '--as', 'alice', '--as-group', 'system:masters']);
    expect(group.code).toBe(1);
    expect(group.stderr).toContain('groups "system:masters" is forbidden: User "carol" cannot impersonate resource "groups" in API group "" at the cluster scope');
  });
});

describe('the official clients', () => {
  it('@kubernetes/client-node asks what it may do and who it is', async () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(c.kubeconfigPath);
    const user = kc.getCurrentUser()!;
    kc.users = kc.users.map((u) => (u.name === user.name ? { ...u, token: token('alice') } : u));
    const authz = kc.makeApiClient(k8s.AuthorizationV1Api);
    const review = (namespace: string) => authz.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { namespace, verb: 'list', resource: 'pods' } } } });
    expect((await review('team-a')).status).toMatchObject({ allowed: true });
    expect((await review('team-b')).status).toMatchObject({ allowed: false });
    const rules = await authz.createSelfSubjectRulesReview({ body: { spec: { namespace: 'team-a' } } });
    expect(rules.status!.resourceRules).toContainEqual({ verbs: ['get', 'list', 'watch'], apiGroups: [''], resources: ['pods'] });
    const me = await kc.makeApiClient(k8s.AuthenticationV1Api).createSelfSubjectReview({ body: {} });
    expect(me.status!.userInfo).toEqual({ username: 'alice', groups: ['system:authenticated'] });
  });

  it('the Python client asks, and impersonates (allowed and refused)', async () => {
    const py = await pythonClient();
    if (!py) return;
    const out = await py.run('access_reviews.py', c.kubeconfigPath, token('alice'), token('carol'));
    expect(out.can_list_team_a).toMatchObject({ allowed: true, reason: expect.stringMatching(/^allowed by test grant/) });
    expect(out.can_list_team_b).toEqual({ allowed: false, denied: null, reason: null });
    expect(out.rules).toContainEqual({ verbs: ['get', 'list', 'watch'], apiGroups: [''], resources: ['pods'] });
    expect(out.incomplete).toBe(false);
    expect(out.whoami).toEqual({ username: 'alice', groups: ['system:authenticated'] });
    expect(out.impersonated).toEqual({ username: 'alice', groups: ['system:authenticated'] });
    expect(out.refused).toEqual({ status: 403, message: 'users "carol" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope' });
  }, 240_000);
});

describe('reviews are never stored', () => {
  it('no answer, refusal or impersonation above wrote anything', async () => {
    expect(await c.backend.currentRevision()).toBe(revisionBefore);
  });
});
