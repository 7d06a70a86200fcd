// Object history (issue #17 item 5, apiserver/history.ts, storage/history.ts): every change of an object
// with who made it and a diff, on both stores: a local cluster over SQLite, and one over a DynamoDB table
// (moto) with the history in the same table. kubectl makes the changes as two users; the history API,
// its authorization (a Secret's values only for who may get it), its bad requests, `skiff history`'s
// output and retention are checked.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { QueryCommand } from '@aws-sdk/client-dynamodb';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startLocalCluster } from '../lambdas/local/server.ts';
import { ADMIN_USER, newToken, storeToken, type UserInfo } from '../lambdas/apiserver/auth.ts';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { inWriteScope, setRequestWriter } from '../lambdas/apiserver/history.ts';
import { DynamoBackend, ensureTable } from '../lambdas/storage/dynamodb.ts';
import { SqliteBackend } from '../lambdas/storage/sqlite.ts';
import {
  DynamoHistoryStore,
  SqliteHistoryStore,
  dynamoHistoryFromEnv,
  parseRetention,
  type HistoryEntry,
  type HistoryStore,
} from '../lambdas/storage/history.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import { installLocalLambdaRuntime } from '../lambdas/local/lambda-runtime.ts';
import { controllerUser } from '../lambdas/controllers/identity.ts';
import { dynamoTestEndpoint, uniqueTableName } from './support/dynamodb.ts';
import { withKubectl, type TestCluster } from './support/cluster.ts';
import { call } from './support/api-call.ts';
import { applyGrants, type Grant } from './support/grants.ts';

const ddb = await dynamoTestEndpoint();
const dir = mkdtempSync(join(tmpdir(), 'skiff-history-'));
afterAll(async () => {
  await ddb?.stop();
  rmSync(dir, { recursive: true, force: true });
});
if (!ddb) console.warn('history: no DynamoDB endpoint, DynamoDB suite SKIPPED');

const SKIFF = resolve(import.meta.dirname, '../dist/skiff.mjs');

const user = (username: string): UserInfo => ({ username, groups: ['system:authenticated'] });
const ALICE = user('alice');
const BOB = user('bob');
const CAROL = user('carol'); // reads Deployments, not Secrets
const DAVE = user('dave'); // reads Secrets
const EVE = user('eve'); // nothing

const rule = (verbs: string[], group: string, resources: string[]) => ({ verbs, apiGroups: [group], resources });
const GRANTS: Grant[] = [
  { subject: { group: 'system:masters' }, rule: { verbs: ['*'], apiGroups: ['*'], resources: ['*'] } },
  { subject: { group: 'system:masters' }, rule: { verbs: ['*'], nonResourceURLs: ['*'] } },
  { subject: { group: 'system:authenticated' }, rule: { verbs: ['get'], nonResourceURLs: ['/api', '/api/*', '/apis', '/apis/*', '/openapi', '/openapi/*', '/version'] } },
  ...[ALICE, BOB].map((u): Grant => ({ subject: { user: u.username }, namespace: 'default', rule: rule(['*'], 'apps', ['deployments', 'deployments/scale']) })),
  { subject: { user: 'carol' }, namespace: 'default', rule: rule(['get', 'list'], 'apps', ['deployments']) },
  { subject: { user: 'dave' }, namespace: 'default', rule: rule(['get'], '', ['secrets']) },
];

const DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: busybox:1
`;

interface Entry {
  revision: number;
  operation: string;
  verb?: string;
  subresource?: string;
  user?: { username: string; impersonatedBy?: string };
  time: string;
  unrecordedBefore?: boolean;
  diff: string;
  object?: any;
}

const STORES: [string, boolean, () => Promise<{ backend: SqliteBackend | DynamoBackend; historyStore?: HistoryStore }>][] = [
  ['SQLite', true, async () => ({ backend: new SqliteBackend(join(dir, `s${Math.random().toString(36).slice(2)}.db`)) })],
  [
    'DynamoDB',
    !!ddb,
    async () => {
      const tableName = uniqueTableName('skiff-history');
      await ensureTable(ddb!.client, tableName);
      // The history in the cluster's own table, as the deployed functions keep it (dynamoHistoryFromEnv).
      return { backend: new DynamoBackend({ client: ddb!.client, tableName, pollIntervalMs: 50 }), historyStore: new DynamoHistoryStore({ client: ddb!.newClient(), tableName }) };
    },
  ],
];

for (const [name, enabled, makeStore] of STORES) {
  describe.skipIf(!enabled)(`object history on ${name}`, () => {
    let c: TestCluster;
    const tokens = new Map<string, string>();
    const as = (u: UserInfo) => ({ url: c.url, caCert: c.caCert, token: tokens.get(u.username)! });
    const kubectlAs = (u: UserInfo, args: string[], input?: string) => c.kubectl([`--token=${tokens.get(u.username)}`, ...args], input);
    const historyPath = '/apis/history.skiff.io/v1/namespaces/default/deployments.apps/web';

    beforeAll(async () => {
      const { backend, historyStore } = await makeStore();
      const dataDir = mkdtempSync(join(dir, 'c-'));
      // No control loops: the Deployment's history is its users' changes alone (no status writes).
      c = withKubectl(await startLocalCluster({ dataDir, port: 0, backend, historyStore, controllers: false, watchProgressMs: 200, ...applyGrants(GRANTS) }), dataDir);
      for (const u of [ALICE, BOB, CAROL, DAVE, EVE]) {
        const t = newToken();
        await storeToken(c.backend, t, u);
        tokens.set(u.username, t);
      }
    }, 60_000);
    afterAll(async () => {
      await c?.destroy();
    });

    it('a Deployment created then edited three times by two users: four entries, their users, their diffs', async () => {
      const steps: [UserInfo, string[], string?][] = [
        [ALICE, ['create', '-f', '-'], DEPLOYMENT],
        [BOB, ['scale', 'deployment/web', '--replicas=3']],
        [ALICE, ['set', 'image', 'deployment/web', 'app=busybox:2']],
        [BOB, ['label', 'deployment/web', 'tier=front']],
      ];
      const versions: number[] = [];
      for (const [u, args, input] of steps) {
        const r = await kubectlAs(u, [...args, '-n', 'default'], input);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        const rv = await c.kubectl(['get', 'deployment/web', '-n', 'default', '-o', 'jsonpath={.metadata.resourceVersion}']);
        versions.push(Number(rv.stdout));
      }
      const h = await call(as(CAROL), 'GET', historyPath);
      expect(h.status).toBe(200);
      expect(h.body).toMatchObject({ kind: 'ObjectHistory', apiVersion: 'history.skiff.io/v1', target: { group: 'apps', resource: 'deployments', kind: 'Deployment', namespace: 'default', name: 'web' } });
      const entries = h.body.entries as Entry[];
      expect(entries.map((e) => e.revision)).toEqual(versions);
      expect(entries.map((e) => e.user?.username)).toEqual(['alice', 'bob', 'alice', 'bob']);
      expect(entries.map((e) => [e.operation, e.verb, e.subresource])).toEqual([
        ['create', 'create', undefined],
        ['update', 'patch', 'scale'],
        ['update', 'patch', undefined],
        ['update', 'patch', undefined],
      ]);
      expect(entries.every((e) => !e.unrecordedBefore)).toBe(true);
      const [created, scaled, imaged, labelled] = entries as [Entry, Entry, Entry, Entry];
      expect(created.diff).toMatch(/^--- \/dev\/null\n\+\+\+ revision \d+\n/);
      expect(created.diff).toContain('+kind: Deployment\n');
      expect(created.diff).toContain('+        - image: busybox:1\n');
      // Each later diff is exactly its own change (and the generation it bumped), against the entry before.
      const changed = (d: string) => d.split('\n').filter((l) => /^[-+][^-+]/.test(l));
      expect(scaled.diff).toContain(`--- revision ${created.revision}\n+++ revision ${scaled.revision}\n`);
      expect(changed(scaled.diff)).toEqual(['-  generation: 1', '+  generation: 2', '-  replicas: 1', '+  replicas: 3']);
      expect(changed(imaged.diff)).toEqual(['-  generation: 2', '+  generation: 3', '-        - image: busybox:1', '+        - image: busybox:2']);
      expect(changed(labelled.diff)).toEqual(['+  labels:', '+    tier: front']);
      expect(new Date(created.time).getTime()).toBeLessThanOrEqual(new Date(labelled.time).getTime());

      // The newest two, the older one still diffed against its predecessor; objects on request.
      const last2 = await call(as(ALICE), 'GET', `${historyPath}?limit=2&objects=true`);
      expect(last2.status).toBe(200);
      expect(last2.body.entries.map((e: Entry) => e.revision)).toEqual(versions.slice(2));
      expect(last2.body.entries[0].diff).toBe(imaged.diff);
      expect(last2.body.entries[1].object.metadata).toMatchObject({ name: 'web', resourceVersion: String(versions[3]), labels: { tier: 'front' } });
      expect(h.body.entries[0].object).toBeUndefined();

      // `skiff history`, with kubectl's short name, as bob with his own kubeconfig-less token: the CLI reads the kubeconfig.
      const out = await new Promise<{ code: number; stdout: string; stderr: string }>((ok) =>
        execFile(process.execPath, [SKIFF, 'history', 'deploy/web', '-n', 'default', '--kubeconfig', c.kubeconfigPath], { timeout: 30_000 }, (err, stdout, stderr) =>
          ok({ code: err ? 1 : 0, stdout, stderr }),
        ),
      );
      expect(out.stderr).toBe('');
      expect(out.code).toBe(0);
      const headers = out.stdout.split('\n').filter((l) => l.startsWith('revision '));
      expect(headers).toEqual([
        `revision ${versions[0]}  ${created.time}  alice  create`,
        `revision ${versions[1]}  ${scaled.time}  bob  patch scale`,
        `revision ${versions[2]}  ${imaged.time}  alice  patch`,
        `revision ${versions[3]}  ${labelled.time}  bob  patch`,
      ]);
      expect(out.stdout).toContain('4 recorded changes of deployments.apps/web in default, oldest first\n');
      expect(out.stdout).toContain(labelled.diff);
      expect(out.stdout).toContain('+  replicas: 3\n');

      // A delete is the last entry, its diff the object removed.
      expect((await kubectlAs(ALICE, ['delete', 'deployment/web', '-n', 'default'])).code).toBe(0);
      const after = (await call(as(CAROL), 'GET', historyPath)).body.entries as Entry[];
      expect(after).toHaveLength(5);
      expect(after[4]).toMatchObject({ operation: 'delete', verb: 'delete', user: { username: 'alice' } });
      expect(after[4]!.diff).toContain(`--- revision ${versions[3]}\n+++ /dev/null\n`);
      expect(after[4]!.diff).toContain('-kind: Deployment\n');
    }, 120_000);

    it("a Secret's history needs get on the Secret: who cannot read it sees no value", async () => {
      const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db', namespace: 'default' }, data: { password: Buffer.from('first-password').toString('base64') } };
      expect((await call(c, 'POST', '/api/v1/namespaces/default/secrets', secret)).status).toBe(201);
      const second = Buffer.from('second-password').toString('base64');
      expect((await call(c, 'PATCH', '/api/v1/namespaces/default/secrets/db', { data: { password: second } }, 'application/merge-patch+json')).status).toBe(200);
      const path = '/apis/history.skiff.io/v1/namespaces/default/secrets/db';
      for (const u of [CAROL, EVE]) {
        const r = await call(as(u), 'GET', path);
        expect(r.status).toBe(403);
        expect(r.body).toMatchObject({ kind: 'Status', reason: 'Forbidden', code: 403 });
        expect(r.body.message).toBe(`secrets "db" is forbidden: User "${u.username}" cannot get resource "secrets" in API group "" in the namespace "default"`);
        expect(JSON.stringify(r.body)).not.toContain(second);
        expect(JSON.stringify(r.body)).not.toContain(secret.data.password);
      }
      const r = await call(as(DAVE), 'GET', path);
      expect(r.status).toBe(200);
      expect(r.body.entries.map((e: Entry) => e.user?.username)).toEqual([ADMIN_USER.username, ADMIN_USER.username]);
      expect(r.body.entries[1].diff).toContain(`+  password: ${second}\n`);
      // And Deployments' history is not Carol's for the asking elsewhere: eve gets 403 on it too.
      expect((await call(as(EVE), 'GET', historyPath)).status).toBe(403);
    });

    it('bad requests are 4xx Status, never 500', async () => {
      const cases: [string, string, number, string][] = [
        ['GET', '/apis/history.skiff.io/v2/namespaces/default/deployments.apps/web', 404, 'NotFound'],
        ['GET', '/apis/history.skiff.io/v1/namespaces/default/nosuchthings/web', 404, 'NotFound'],
        ['GET', '/apis/history.skiff.io/v1/namespaces/default/deployments.nosuch.io/web', 404, 'NotFound'],
        ['GET', '/apis/history.skiff.io/v1/deployments.apps/web', 404, 'NotFound'], // namespaced, asked cluster-wide
        ['GET', '/apis/history.skiff.io/v1/namespaces/default/namespaces/default', 404, 'NotFound'], // cluster-scoped, asked in a namespace
        ['GET', '/apis/history.skiff.io/v1/namespaces/default/deployments.apps', 404, 'NotFound'],
        ['GET', '/apis/history.skiff.io/v1/namespaces/default/deployments.apps/web/extra', 404, 'NotFound'],
        ['GET', `${historyPath}?limit=0`, 400, 'BadRequest'],
        ['GET', `${historyPath}?limit=ten`, 400, 'BadRequest'],
        ['GET', `${historyPath}?limit=1001`, 400, 'BadRequest'],
        ['GET', `${historyPath}?objects=yes`, 400, 'BadRequest'],
        ['POST', historyPath, 405, 'MethodNotAllowed'],
        ['DELETE', historyPath, 405, 'MethodNotAllowed'],
      ];
      for (const [method, path, code, reason] of cases) {
        const r = await call(c, method, path, method === 'POST' ? {} : undefined);
        expect([path, r.status, r.body?.kind, r.body?.reason]).toEqual([path, code, 'Status', reason]);
      }
      const anonymous = await call({ ...c, token: 'not-a-token' }, 'GET', historyPath);
      expect(anonymous.status).toBe(401);
      // A cluster-scoped object's history, and an object never changed since history began: no entries.
      const ns = await call(c, 'GET', '/apis/history.skiff.io/v1/namespaces/kube-public');
      expect(ns.status).toBe(200);
      expect(ns.body.target).toEqual({ group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', name: 'kube-public' });
      const none = await call(c, 'GET', '/apis/history.skiff.io/v1/namespaces/default/configmaps/never');
      expect([none.status, none.body.entries]).toEqual([200, []]);
    });

    it('expired entries are not read, and are deleted', async () => {
      const store = c.api.history!.store;
      const key = '/registry/core/configmaps/default/retention';
      const at = Math.floor(Date.now() / 1000);
      const entry = (revision: number, expires: number): HistoryEntry => ({ key, revision, operation: revision === 1 ? 'create' : 'update', previousRevision: revision - 1, time: new Date().toISOString(), value: `{"v":${revision}}`, expires });
      await store.record(entry(1, at - 10));
      await store.record(entry(2, at + 3600));
      expect((await store.read(key)).map((e) => e.revision)).toEqual([2]);
      expect((await store.read(key, { now: at - 20 })).map((e) => e.revision)).toEqual([1, 2]);
      // SQLite deletes on its sweep (expire); DynamoDB's TTL deletes in its own time, and reads skip them till then.
      const deleted = await store.expire(at);
      expect(deleted).toBe(name === 'SQLite' ? 1 : 0);
      if (name === 'SQLite') expect((await store.read(key, { now: at - 20 })).map((e) => e.revision)).toEqual([2]);
    });
  });
}

describe('recording: who, what is lost, retention', () => {
  const deployments = findResource('apps', 'v1', 'deployments')!;
  // A loop's identity (authorized as a cluster admin here: what is tested is whose write it is).
  const loop: UserInfo = { username: 'system:serviceaccount:kube-system:deployment-controller', groups: ['system:serviceaccounts', 'system:masters'] };

  it("a control loop's write is its own identity's even when woken inside a request, and a lost record is flagged", async () => {
    const inner = new SqliteHistoryStore(join(dir, 'h1.db'), { sweepIntervalMs: 0 });
    let failNext = false;
    const store: HistoryStore = {
      ...inner,
      record: async (e) => {
        if (failNext) {
          failNext = false;
          throw new Error('history store unavailable');
        }
        return inner.record(e);
      },
      read: (k, o) => inner.read(k, o),
      expire: (n) => inner.expire(n),
      close: () => inner.close(),
    };
    const backend = new SqliteBackend(join(dir, 'r1.db'));
    const api = new ApiServer({ backend, history: { store, retentionSeconds: 3600 } });
    const ctx = api.controllerContext();
    const dep = (image: string) => ({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd', namespace: 'default' }, spec: { selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image }] } } } });
    await api.registry.create(findResource('', 'v1', 'namespaces')!, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } });
    // Inside alice's request scope, a loop acting as its own identity writes: the write is the loop's.
    await inWriteScope(async () => {
      setRequestWriter(ALICE, ALICE, 'create');
      await ctx.as!(loop).registry.create(deployments, 'default', dep('one'));
    });
    failNext = true; // the process "dies" between this write and its record
    await ctx.as!(loop).registry.update(deployments, 'default', 'd', dep('two'));
    await inWriteScope(async () => {
      setRequestWriter(BOB, user('carol'), 'update');
      await api.registry.update(deployments, 'default', 'd', dep('three'));
    });
    const key = '/registry/apps/deployments/default/d';
    const entries = await inner.read(key);
    expect(entries.map((e) => [e.operation, e.verb, e.actor?.username, e.actor?.impersonatedBy])).toEqual([
      ['create', undefined, loop.username, undefined],
      ['update', 'update', 'bob', 'carol'],
    ]);
    const { historyEntries } = await import('../lambdas/apiserver/history.ts');
    const shown = historyEntries(entries, undefined, false);
    expect(shown[1]!.unrecordedBefore).toBe(true);
    // The diff spans the unrecorded change: "one" to "three".
    expect(shown[1]!.diff).toContain(`--- revision ${entries[0]!.revision}\n+++ revision ${entries[1]!.revision}\n`);
    expect(shown[1]!.diff).toContain('-          image: one\n+          image: three\n');
    expect(entries[1]!.previousRevision).toBeGreaterThan(entries[0]!.revision);
    // The store's own keys (tokens) are never recorded.
    await storeToken(backend, 'tok', ALICE);
    expect(await inner.read(`/registry/skiff.io/tokens/`)).toEqual([]);
    await inner.close();
    await backend.close();
  });

  it('reading a history does bounded work: a change too big to diff shows as replaced, and an answer stops diffing past its budget', async () => {
    // Found by review: two 8,000-line versions with nothing in common took 27 s to diff, the server's whole time.
    const { historyEntries } = await import('../lambdas/apiserver/history.ts');
    // 8,000 changed lines between 8,000 the same: the shortest diff keeps those as context, and is past
    // the edit distance a diff is allowed (the cost is lines x edits), so the change shows as replaced.
    const cm = (prefix: string) => JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'h' }, data: { k: Array.from({ length: 8000 }, (_, i) => `${prefix}${i}\nsame`).join('\n') } });
    const entry = (revision: number, operation: 'create' | 'update', value: string) => ({ key: '/registry/core/configmaps/default/h', revision, previousRevision: revision - 1, operation, time: '2026-12-07T00:00:00.000Z', value, expires: 0 });
    const entries = [entry(1, 'create', cm('a')), entry(2, 'update', cm('b'))];
    const shown = historyEntries(entries, undefined, false);
    // Every old line removed and every new one added, in one hunk: a correct diff, if not the shortest.
    expect(shown[1]!.diff).toContain('--- revision 1\n+++ revision 2\n@@ -1,');
    expect(shown[1]!.diff.match(/^@@/gm)).toHaveLength(1);
    expect(shown[1]!.diff).toContain('\n-    a0\n-    same\n-    a1\n');
    expect(shown[1]!.diff).toContain('\n+    b7999\n+    same');
    expect(shown[1]!.diff).not.toMatch(/^ {5}same$/m); // no line kept as context
    // Past the answer's budget, the diffs are left out and say so.
    // Each diff counts the bytes of its two values: 1, 3 and 5 values' worth here, against a budget of 4.
    const small = historyEntries([entry(1, 'create', cm('a')), entry(2, 'update', cm('b')), entry(3, 'update', cm('c'))], undefined, false, 4 * cm('a').length);
    expect(small.map((e) => [e.diff !== '', e.diffOmitted ?? false])).toEqual([
      [true, false],
      [true, false],
      [false, true],
    ]);
  });

  it('retention: entries expire after the configured time; 0 records nothing', async () => {
    const store = new SqliteHistoryStore(join(dir, 'h2.db'), { sweepIntervalMs: 0 });
    const backend = new SqliteBackend(join(dir, 'r2.db'));
    const api = new ApiServer({ backend, history: { store, retentionSeconds: 1 } });
    const cm = findResource('', 'v1', 'configmaps')!;
    await api.registry.create(cm, 'default', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'default' }, data: { a: '1' } });
    const key = '/registry/core/configmaps/default/x';
    expect(await store.read(key)).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 2100));
    expect(await store.read(key)).toEqual([]);
    expect(await store.expire()).toBe(1);
    const off = new ApiServer({ backend, history: { store, retentionSeconds: 0 } });
    await off.registry.create(cm, 'default', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'y', namespace: 'default' } });
    expect(await store.read('/registry/core/configmaps/default/y', { now: 0 })).toEqual([]);
    await store.close();
    await backend.close();
  });

  it('a history file written before (a WITHOUT ROWID table) is read and written as it is', async () => {
    const path = join(dir, 'h-old.db');
    const Database = (await import('better-sqlite3')).default;
    const old = new Database(path);
    old.exec(`CREATE TABLE history (key TEXT NOT NULL, rev INTEGER NOT NULL, prev INTEGER, op TEXT NOT NULL, verb TEXT, sub TEXT, actor TEXT,
      time TEXT NOT NULL, value TEXT NOT NULL, expires INTEGER NOT NULL, PRIMARY KEY (key, rev)) WITHOUT ROWID`);
    old.prepare('INSERT INTO history VALUES (?, ?, NULL, ?, NULL, NULL, NULL, ?, ?, ?)').run('/registry/core/configmaps/default/o', 5, 'create', '2026-12-01T00:00:00.000Z', '{"v":1}', 4e9);
    old.close();
    const store = new SqliteHistoryStore(path, { sweepIntervalMs: 0 });
    await store.record({ key: '/registry/core/configmaps/default/o', revision: 9, previousRevision: 5, operation: 'update', time: '2026-12-01T00:00:01.000Z', value: '{"v":2}', expires: 4e9 });
    expect((await store.read('/registry/core/configmaps/default/o')).map((e) => [e.revision, e.value])).toEqual([[5, '{"v":1}'], [9, '{"v":2}']]);
    await store.close();
    // New files are rowid tables with a unique (key, rev) index: an entry recorded twice is one entry.
    const fresh = new SqliteHistoryStore(join(dir, 'h-new.db'), { sweepIntervalMs: 0 });
    const e = { key: '/registry/core/configmaps/default/n', revision: 3, operation: 'create' as const, time: '2026-12-01T00:00:00.000Z', value: '{}', expires: 4e9 };
    await Promise.all([fresh.record(e), fresh.record(e)]);
    await fresh.record(e);
    expect(await fresh.read(e.key)).toHaveLength(1);
    await fresh.close();
  });

  // The SQLite store writes its queue once a turn; the write being recorded does not wait for that (a turn
  // more per write at one client), and a read right after still sees the entry.
  it('a record is answered once queued, before the next turn, and read back at once', async () => {
    const store = new SqliteHistoryStore(join(dir, 'h-queue.db'), { sweepIntervalMs: 0 });
    const order: string[] = [];
    const nextTurn = new Promise<void>((resolve) => setImmediate(() => resolve(void order.push('next turn'))));
    const e = { key: '/registry/core/configmaps/default/q', revision: 4, operation: 'create' as const, time: '2026-12-01T00:00:00.000Z', value: '{}', expires: 4e9 };
    await store.record(e).then(() => order.push('answered'));
    expect((await store.read(e.key)).map((x) => x.revision)).toEqual([4]);
    await nextTurn;
    expect(order).toEqual(['answered', 'next turn']);
    await store.close();
  });

  it('retention flags and environment', () => {
    expect(parseRetention('24h')).toBe(86400);
    expect(parseRetention('90m')).toBe(5400);
    expect(parseRetention('3600')).toBe(3600);
    expect(parseRetention('7d')).toBe(604800);
    expect(parseRetention('0')).toBe(0);
    for (const bad of ['', '1.5h', '-1h', 'forever', '10y']) expect(() => parseRetention(bad, '--history-retention')).toThrow(/--history-retention must be a duration/);
    expect(dynamoHistoryFromEnv({ SKIFF_TABLE: 't', SKIFF_HISTORY_RETENTION: '0' })).toBeUndefined();
    expect(dynamoHistoryFromEnv({ SKIFF_TABLE: 't', SKIFF_HISTORY_RETENTION: '90m' })?.retentionSeconds).toBe(5400);
    expect(dynamoHistoryFromEnv({ SKIFF_TABLE: 't' })?.retentionSeconds).toBe(86400);
    expect(() => dynamoHistoryFromEnv({ SKIFF_TABLE: 't', SKIFF_HISTORY_RETENTION: 'soon' })).toThrow(/SKIFF_HISTORY_RETENTION/);
  });

  it('skiff up refuses a bad --history-retention', async () => {
    expect(existsSync(SKIFF)).toBe(true);
    const out = await new Promise<{ code: number; stderr: string }>((ok) =>
      execFile(process.execPath, [SKIFF, 'up', '--history-retention', 'soon', '--data-dir', join(dir, 'never')], { timeout: 30_000 }, (err, _o, stderr) => ok({ code: err ? 1 : 0, stderr })),
    );
    expect(out).toEqual({ code: 1, stderr: 'skiff: --history-retention must be a duration such as 24h, 90m or 3600s (0: off), got "soon"\n' });
  });
});

// The deployed functions themselves, on a DynamoDB table (moto): the apiserver Lambda's handler (its
// environment names the table and the retention) and the control loops' context (cloud-context.ts), each
// recording into the table's history partitions.
describe.skipIf(!ddb)('object history in the deployed functions (DynamoDB)', () => {
  const saved = { ...process.env };
  let server: Server;
  let base: string;
  let tableName: string;
  const token = newToken();

  beforeAll(async () => {
    tableName = uniqueTableName('skiff-history-fn');
    await ensureTable(ddb!.client, tableName);
    Object.assign(process.env, { SKIFF_TABLE: tableName, SKIFF_DYNAMODB_ENDPOINT: ddb!.endpoint, SKIFF_HISTORY_RETENTION: '1h' });
    for (const [k, v] of Object.entries({ AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' })) process.env[k] ??= v;
    await storeToken(new DynamoBackend({ client: ddb!.client, tableName }), token, ADMIN_USER);
    installLocalLambdaRuntime();
    const { handler } = await import('../lambdas/apiserver/lambda.ts');
    const invoke = handler as unknown as (event: unknown, stream: ServerResponse, context: { signal: AbortSignal }) => Promise<void>;
    // A Function URL's event per request, as the local server makes them (server.ts serve).
    server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks);
      const u = new URL(`http://x${req.url}`);
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : v ?? '']));
      const event = {
        version: '2.0',
        rawPath: u.pathname,
        rawQueryString: u.search.slice(1),
        headers,
        requestContext: { http: { method: req.method, path: u.pathname, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' }, timeEpoch: Date.now() },
        body: body.length ? body.toString('base64') : undefined,
        isBase64Encoded: body.length > 0,
      };
      await invoke(event, res, { signal: new AbortController().signal });
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }, 60_000);
  afterAll(async () => {
    await new Promise((ok) => server?.close(ok));
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  });

  const api = async (method: string, path: string, body?: unknown, contentType = 'application/json') => {
    const r = await fetch(base + path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': contentType }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: r.status, body: (await r.json()) as any };
  };

  it("a user's writes through the apiserver function and a loop's through the loops' context, read back through the function", async () => {
    expect((await api('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } })).status).toBe(201);
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', namespace: 'default' }, data: { mode: 'slow' } };
    expect((await api('POST', '/api/v1/namespaces/default/configmaps', cm)).status).toBe(201);
    expect((await api('PATCH', '/api/v1/namespaces/default/configmaps/settings', { data: { mode: 'fast' } }, 'application/merge-patch+json')).status).toBe(200);
    const { cloudContext } = await import('../lambdas/controllers/cloud-context.ts');
    const publisher = controllerUser('root-ca-cert-publisher');
    const ctx = await cloudContext();
    await ctx.as!(publisher).registry.update(findResource('', 'v1', 'configmaps')!, 'default', 'settings', { ...cm, data: { mode: 'fast', 'ca.crt': 'x' } });

    const h = await api('GET', '/apis/history.skiff.io/v1/namespaces/default/configmaps/settings');
    expect(h.status).toBe(200);
    expect(h.body.entries.map((e: Entry) => [e.operation, e.verb, e.user?.username])).toEqual([
      ['create', 'create', ADMIN_USER.username],
      ['update', 'patch', ADMIN_USER.username],
      ['update', undefined, publisher.username],
    ]);
    expect(h.body.entries[1].diff).toContain('-  mode: slow\n+  mode: fast\n');
    expect(h.body.entries[2].diff).toContain('+  ca.crt: x\n');
    // The items: the object's own history partition, sorted by revision, with the table's TTL attribute.
    const items = await ddb!.client.send(new QueryCommand({ TableName: tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': { S: 'hist#/registry/core/configmaps/default/settings' } } }));
    expect(items.Items!.map((i) => Number(i.sk!.S))).toEqual(h.body.entries.map((e: Entry) => e.revision));
    const now = Date.now() / 1000;
    for (const i of items.Items!) expect(Number(i.ttl!.N) - now).toBeGreaterThan(3500);
    for (const i of items.Items!) expect(Number(i.ttl!.N) - now).toBeLessThanOrEqual(3600);
  }, 60_000);
});
