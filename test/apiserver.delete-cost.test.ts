// What a delete costs the store, beside a create (issue #12: a ConfigMap delete over HTTPS was slower
// than kube-apiserver's while create, get and update were faster). A profile of `skiff up` showed the
// delete itself was one storage write, as a create is (one transaction, one fsync on SQLite), but every
// deleted object woke the garbage collector, which listed every dependent kind of its namespace from
// the store to look for dependents: about 20 lists per delete, each growing with the namespace. Here a
// delete in a namespace of 200 ConfigMaps, with the garbage collector running as `skiff up` runs it,
// must cost one write, and the collector no read; the reads counted are named.

import { describe, expect, it } from 'vitest';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import type { ControllerContext } from '../lambdas/controllers/controller.ts';
import { garbageCollector } from '../lambdas/controllers/garbagecollector.ts';
import { SharedInformers } from '../lambdas/controllers/informer.ts';
import { runControllers } from '../lambdas/local/controllers.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { Backend } from '../lambdas/storage/backend.ts';
import { testBackends } from './support/backends.ts';
import { until } from './support/until.ts';

const nsRes = findResource('', 'v1', 'namespaces')!;
const cmRes = findResource('', 'v1', 'configmaps')!;

const backends = await testBackends('delete-cost');

const CALLS = ['get', 'list', 'create', 'update', 'delete', 'count', 'countExisting'] as const;

/** Counts the backend's calls by method (each write method is one atomic write: one transaction). */
function counting(b: Backend): { backend: Backend; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const backend = Object.create(b) as Backend;
  for (const m of CALLS) {
    const f = (b as any)[m].bind(b);
    (backend as any)[m] = (...args: unknown[]) => (calls.set(m, (calls.get(m) ?? 0) + 1), f(...args));
  }
  for (const m of ['currentRevision', 'watch', 'close'] as const) (backend as any)[m] = (b as any)[m].bind(b);
  return { backend, calls };
}

describe.each(backends)('a ConfigMap delete on %s', (_name, make, enabled) => {
  it.runIf(enabled)('is one storage write, as a create is, and costs the garbage collector no list however full the namespace', async () => {
    const { backend, calls } = counting(await make());
    // As `skiff up` runs it: the apiserver follows the store's CRDs with a watch (the loops ask it which
    // kinds are served, custom ones included), and its RBAC objects (the loops' calls are authorized), so
    // no request or reconcile re-reads them.
    const api = new ApiServer({ backend });
    const feed = new AbortController();
    const following = Promise.all([api.crds.follow(feed.signal), api.rbac.follow(feed.signal)]);
    const ctx = api.controllerContext();
    const reg = ctx.registry;
    await reg.create(nsRes, undefined, { metadata: { name: 'default' } });
    for (let i = 0; i < 200; i++) await reg.create(cmRes, 'default', { metadata: { name: `filler-${i}` }, data: { i: String(i) } });

    // The garbage collector as `skiff up` runs it (shared informers), telling when a key's reconcile is
    // done. Without its start-up resync: that scan (a list of every dependent kind in every namespace) is
    // the loop's periodic safety net, not a delete's cost, and on moto under the full suite's load it took
    // minutes before anything could be measured.
    const done: string[] = [];
    const gc = {
      ...garbageCollector,
      allKeys: async () => [],
      reconcile: async (k: string, c: ControllerContext) => {
        try {
          return await garbageCollector.reconcile(k, c);
        } finally {
          done.push(k);
        }
      },
    };
    // The runner's caches, held here to wait for their first lists: a delete made before a cache has
    // listed is in neither its list nor its watch, and (without the resync) would never be reconciled.
    const informers = new SharedInformers(reg);
    const runner = runControllers({ ...ctx, cache: informers }, [gc], { resyncMs: 3_600_000 });
    try {
      await informers.synced();
      // Running, caches filled: a first delete has been reconciled.
      await reg.delete(cmRes, 'default', 'filler-0');
      await until('the garbage collector to reconcile a first delete', async () => done.some((k) => k.includes('|filler-0|')), 120_000);

      calls.clear();
      await reg.create(cmRes, 'default', { metadata: { name: 'x' }, data: { a: 'b' } });
      // The create: one write (the key's absence is checked inside it), and two counter reads: whether the
      // namespace has ResourceQuotas and the cluster ClusterResourceQuotas (quota admission lists only then).
      expect(Object.fromEntries(calls)).toEqual({ count: 2, create: 1 });

      calls.clear();
      done.length = 0;
      const r = await reg.delete(cmRes, 'default', 'x');
      expect(r.deleted).toBe(true);
      await until('the garbage collector to reconcile the delete', async () => done.some((k) => k.includes('|x|')));
      // The delete: the registry's read of the object (finalizers, preconditions, grace) and one write.
      // The garbage collector reads nothing: the owner is gone from its cache and the cache's owner index
      // names no dependent, so there is nothing to collect (it made a list per dependent kind, and then a
      // store read of the owner, on every delete).
      expect(Object.fromEntries(calls)).toEqual({ get: 1, delete: 1 });
    } finally {
      await runner.stop();
      feed.abort();
      await following;
    }
  }, 240_000);
});
