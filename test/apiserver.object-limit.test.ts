// The guard against runaway writes (issue #11): a namespace holds at most maxObjectsPerNamespace
// objects; a create beyond it is a 403 Forbidden in ResourceQuota's words and writes nothing, on both
// real stores (SQLite, and DynamoDB through moto); deletes always go through and free room. Then the
// same through the machine's kubectl against `skiff up`'s LocalClusterOptions.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteBackend } from '../lambdas/storage/sqlite.ts';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { DEFAULT_MAX_OBJECTS_PER_NAMESPACE } from '../lambdas/apiserver/registry.ts';
import { SERVICE_IP_PREFIX } from '../lambdas/apiserver/service-alloc.ts';
import { ApiError } from '../lambdas/machinery/status.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import { testBackends } from './support/backends.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { until } from './support/until.ts';

const nsRes = findResource('', 'v1', 'namespaces')!;
const cmRes = findResource('', 'v1', 'configmaps')!;
const svcRes = findResource('', 'v1', 'services')!;
const nodeRes = findResource('', 'v1', 'nodes')!;

const backends = await testBackends('objlimit');

async function apiError(p: Promise<unknown>): Promise<ApiError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, 'expected an ApiError').toBeInstanceOf(ApiError);
  return e as ApiError;
}

const cm = (name: string) => ({ metadata: { name }, data: { k: 'v' } });

const evRes = findResource('', 'v1', 'events')!;

describe.each(backends)('objects per namespace on %s', (_name, makeBackend, enabled) => {
  it.runIf(enabled)('Events do not count against the limit: they expire --event-ttl after their last write, as kube-apiserver\'s do', async () => {
    const backend = await makeBackend();
    const reg = new ApiServer({ backend, maxObjectsPerNamespace: 2, eventTtlSeconds: 2 }).registry;
    await reg.create(nsRes, undefined, { metadata: { name: 'ev' } });
    for (const n of ['c1', 'c2']) await reg.create(cmRes, 'ev', cm(n));
    expect((await apiError(reg.create(cmRes, 'ev', cm('c3')))).code).toBe(403); // full
    const event = (name: string) => ({
      metadata: { name },
      involvedObject: { kind: 'ConfigMap', namespace: 'ev', name: 'c1' },
      reason: 'Seen',
      message: name,
      type: 'Normal',
    });
    // A full namespace still takes Events: a loop's record of why it failed must get through.
    for (const n of ['e1', 'e2', 'e3']) await reg.create(evRes, 'ev', event(n));
    expect(await backend.count('ev')).toBe(2);
    // e3 written again a second later lasts from then (kube's TTLFunc runs on every write).
    await new Promise((r) => setTimeout(r, 1000));
    const e3 = await reg.get(evRes, 'ev', 'e3');
    await reg.update(evRes, 'ev', 'e3', { ...e3, count: 2 });
    await until('e1 and e2 to expire', async () => (await reg.list(evRes, 'ev')).items.length === 1);
    expect((await reg.list(evRes, 'ev')).items.map((e) => e.metadata.name)).toEqual(['e3']);
    await until('e3 to expire', async () => (await reg.list(evRes, 'ev')).items.length === 0);
    // Their names can be taken again; the ConfigMaps stay, still counted.
    await reg.create(evRes, 'ev', event('e1'));
    expect((await reg.list(cmRes, 'ev')).items).toHaveLength(2);
    expect(await backend.count('ev')).toBe(2);
  });

  it.runIf(enabled)('a create over the limit is 403 Forbidden and writes nothing; deletes free room; other namespaces, namespaces and cluster-scoped objects are not held back', async () => {
    const backend = await makeBackend();
    const reg = new ApiServer({ backend, maxObjectsPerNamespace: 3 }).registry;
    for (const ns of ['a', 'b', 'c', 'd']) await reg.create(nsRes, undefined, { metadata: { name: ns } }); // namespaces: not counted
    for (const n of ['c1', 'c2']) await reg.create(cmRes, 'a', cm(n));
    const svc = await reg.create(svcRes, 'a', { metadata: { name: 's' }, spec: { ports: [{ port: 80 }] } }); // kinds share the count
    const rev = await backend.currentRevision();

    const e = await apiError(reg.create(cmRes, 'a', cm('c3')));
    expect(e.code).toBe(403);
    expect(e.status.reason).toBe('Forbidden');
    expect(e.message).toBe(
      'configmaps "c3" is forbidden: exceeded quota: namespace "a" holds 3 objects, the limit of this cluster (--max-objects-per-namespace)',
    );
    await apiError(reg.get(cmRes, 'a', 'c3')); // not stored...
    expect(await backend.currentRevision()).toBe(rev); // ...nothing written at all
    // A refused Service gives back the clusterIP it took for the create.
    const ips = (await backend.list(SERVICE_IP_PREFIX)).kvs.map((kv) => kv.key);
    await apiError(reg.create(svcRes, 'a', { metadata: { name: 's2' }, spec: { ports: [{ port: 80 }] } }));
    expect((await backend.list(SERVICE_IP_PREFIX)).kvs.map((kv) => kv.key)).toEqual(ips);

    await reg.create(cmRes, 'b', cm('c1')); // another namespace has its own room
    await reg.create(nodeRes, undefined, { metadata: { name: 'n1' } }); // cluster-scoped: not counted
    await reg.create(nsRes, undefined, { metadata: { name: 'e' } });

    // An update keeps the object in (still full); a delete frees room.
    await reg.update(cmRes, 'a', 'c1', { ...cm('c1'), data: { k: 'v2' } });
    await apiError(reg.create(cmRes, 'a', cm('c3')));
    await reg.delete(cmRes, 'a', 'c1');
    await reg.create(cmRes, 'a', cm('c3'));
    expect(await backend.count('a')).toBe(3);

    // An object with a finalizer leaves the count when its delete completes (the last finalizer goes).
    await reg.delete(cmRes, 'a', 'c3');
    await reg.create(cmRes, 'a', { ...cm('f'), metadata: { name: 'f', finalizers: ['example.com/hold'] } });
    await reg.delete(cmRes, 'a', 'f');
    expect(await backend.count('a')).toBe(3); // deletionTimestamp set, still stored
    await reg.guaranteedUpdate(cmRes, 'a', 'f', undefined, {}, (o) => ({ ...o, metadata: { ...o.metadata, finalizers: [] } }));
    await apiError(reg.get(cmRes, 'a', 'f'));
    expect(await backend.count('a')).toBe(2);

    // Emptying a namespace (what namespace deletion does first) brings its count back to 0.
    await reg.delete(cmRes, 'a', 'c2');
    await reg.delete(svcRes, 'a', 's');
    expect(await backend.count('a')).toBe(0);
    await backend.close();
  });

  it.runIf(enabled)('a store written before counting: countExistingObjects counts its objects once, then the limit holds', async () => {
    const backend = await makeBackend();
    // Objects stored as the code before counting stored them: in no count group (a limit of 0 counts nothing).
    const before = new ApiServer({ backend, maxObjectsPerNamespace: 0 }).registry;
    for (const ns of ['a', 'b']) await before.create(nsRes, undefined, { metadata: { name: ns } });
    for (const n of ['c1', 'c2', 'c3', 'c4']) await before.create(cmRes, 'a', cm(n));
    await before.create(svcRes, 'b', { metadata: { name: 's' }, spec: { ports: [{ port: 80 }] } });
    await before.create(nodeRes, undefined, { metadata: { name: 'n1' } });
    expect(await backend.count('a')).toBe(0);

    const reg = new ApiServer({ backend, maxObjectsPerNamespace: 3 }).registry;
    expect(await reg.countExistingObjects()).toBe(5); // the four ConfigMaps and the Service
    expect(await backend.count('a')).toBe(4);
    expect(await backend.count('b')).toBe(1);
    expect(await reg.countExistingObjects()).toBe(0); // done: the marker says so
    expect(await backend.count('a')).toBe(4);
    // Over the limit already: no create until deletes bring it under.
    expect((await apiError(reg.create(cmRes, 'a', cm('c5')))).code).toBe(403);
    await reg.delete(cmRes, 'a', 'c1');
    await reg.delete(cmRes, 'a', 'c2');
    expect(await backend.count('a')).toBe(2);
    await reg.create(cmRes, 'a', cm('c5'));
    expect((await apiError(reg.create(cmRes, 'a', cm('c6')))).code).toBe(403);
    await backend.close();
  });

  it.runIf(enabled)('the limit is exact under concurrent creates through the registry, and 0 turns it off', async () => {
    const backend = await makeBackend();
    const reg = new ApiServer({ backend, maxObjectsPerNamespace: 5 }).registry;
    await reg.create(nsRes, undefined, { metadata: { name: 'race' } });
    const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => reg.create(cmRes, 'race', cm(`c${i}`))));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as ApiError).code).toBe(403);
    expect((await reg.list(cmRes, 'race')).items).toHaveLength(5);

    const unlimited = new ApiServer({ backend, maxObjectsPerNamespace: 0 }).registry;
    await unlimited.create(cmRes, 'race', cm('extra'));
    expect((await reg.list(cmRes, 'race')).items).toHaveLength(6);
    await backend.close();
  });
});

it('the default limit bounds the cost yet holds 10,000 pods several times over (their Events do not count)', () => {
  expect(new ApiServer({ backend: {} as never }).registry.maxObjectsPerNamespace).toBe(DEFAULT_MAX_OBJECTS_PER_NAMESPACE);
  expect(DEFAULT_MAX_OBJECTS_PER_NAMESPACE).toBeGreaterThanOrEqual(50_000);
});

describe('through kubectl on a local cluster (skiff up --max-objects-per-namespace, --event-ttl)', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startTestCluster({ controllers: false, maxObjectsPerNamespace: 2, eventTtlSeconds: 3 });
  }, 60_000);

  it('a full namespace still takes Events, which kubectl sees until --event-ttl has passed', async () => {
    expect((await c.kubectl(['create', 'namespace', 'evfull'])).code).toBe(0);
    for (const n of ['one', 'two']) expect((await c.kubectl(['-n', 'evfull', 'create', 'configmap', n])).code).toBe(0);
    const event = (name: string) =>
      `apiVersion: v1\nkind: Event\nmetadata: {name: ${name}}\ninvolvedObject: {kind: ConfigMap, namespace: evfull, name: one}\nreason: Seen\nmessage: hello\ntype: Normal\n`;
    const r = await c.kubectl(['-n', 'evfull', 'create', '-f', '-'], event('seen-1'));
    expect(r.code, r.stderr).toBe(0);
    expect((await c.kubectl(['-n', 'evfull', 'get', 'events', '-o', 'name'])).stdout.trim()).toBe('event/seen-1');
    await until('the Event to expire', async () => (await c.kubectl(['-n', 'evfull', 'get', 'events', '-o', 'name'])).stdout.trim() === '', 15_000, 250);
    expect((await c.kubectl(['-n', 'evfull', 'get', 'configmaps', '-o', 'name'])).stdout.trim().split('\n')).toEqual(['configmap/one', 'configmap/two']);
  });
  afterAll(async () => c?.destroy());

  it('kubectl sees Forbidden with the quota message, and delete makes room', async () => {
    expect((await c.kubectl(['create', 'namespace', 'lim'])).code).toBe(0);
    for (const n of ['one', 'two']) expect((await c.kubectl(['-n', 'lim', 'create', 'configmap', n])).code).toBe(0);
    const r = await c.kubectl(['-n', 'lim', 'create', '-f', '-'], 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: three}\n');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(
      'Error from server (Forbidden): error when creating "STDIN": configmaps "three" is forbidden: exceeded quota: namespace "lim" holds 2 objects, the limit of this cluster (--max-objects-per-namespace)',
    );
    expect((await c.kubectl(['-n', 'lim', 'delete', 'configmap', 'one'])).code).toBe(0);
    expect((await c.kubectl(['-n', 'lim', 'create', 'configmap', 'three'])).code).toBe(0);
    expect((await c.kubectl(['-n', 'lim', 'get', 'configmaps', '-o', 'name'])).stdout.trim().split('\n').sort()).toEqual([
      'configmap/three',
      'configmap/two',
    ]);
  }, 60_000);
});

it('skiff up on a data dir written before counting counts its objects at start', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'skiff-objlimit-old-'));
  const old = new SqliteBackend(join(dataDir, 'skiff.db'));
  const before = new ApiServer({ backend: old, maxObjectsPerNamespace: 0 }).registry; // counts nothing, as the old code
  await before.create(nsRes, undefined, { metadata: { name: 'old' } });
  for (const n of ['a', 'b', 'c']) await before.create(cmRes, 'old', cm(n));
  await old.close();

  const c = await startTestCluster({ dataDir, controllers: false, maxObjectsPerNamespace: 3 });
  try {
    expect(await c.backend.count('old')).toBe(3);
    const r = await c.kubectl(['-n', 'old', 'create', '-f', '-'], 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\n');
    expect(r.stderr).toContain('configmaps "d" is forbidden: exceeded quota: namespace "old" holds 3 objects');
  } finally {
    await c.destroy();
  }
}, 60_000);

it('deleting a namespace (the namespace controller empties it) brings its count back to 0', async () => {
  const c = await startTestCluster({ maxObjectsPerNamespace: 7 });
  // Every namespace soon holds two objects of the cluster's own: its `default` ServiceAccount and the
  // kube-root-ca.crt ConfigMap, and they count as any other.
  const ownTwo = () => until('the default ServiceAccount and kube-root-ca.crt', async () => (await c.backend.count('gone')) === 2);
  try {
    expect((await c.kubectl(['create', 'namespace', 'gone'])).code).toBe(0);
    await ownTwo();
    for (const n of ['a', 'b', 'c']) expect((await c.kubectl(['-n', 'gone', 'create', 'configmap', n])).code).toBe(0);
    expect(await c.backend.count('gone')).toBe(5);
    expect((await c.kubectl(['delete', 'namespace', 'gone', '--wait=false'])).code).toBe(0);
    await until('namespace gone', async () => (await c.kubectl(['get', 'namespace', 'gone'])).code !== 0);
    expect(await c.backend.count('gone')).toBe(0);
    // A namespace of the same name starts empty.
    expect((await c.kubectl(['create', 'namespace', 'gone'])).code).toBe(0);
    await ownTwo();
    for (const n of ['a', 'b', 'c', 'd', 'e']) expect((await c.kubectl(['-n', 'gone', 'create', 'configmap', n])).code).toBe(0);
    expect((await c.kubectl(['-n', 'gone', 'create', 'configmap', 'f'])).code).not.toBe(0);
  } finally {
    await c.destroy();
  }
}, 90_000);
