// The garbage collector: cascading deletion by ownerReferences, as Kubernetes' GC does.
// - Background: a dependent whose owners are all gone (NotFound, or the name now holds another uid) is
//   deleted; a dangling reference on a dependent that still has a live owner is removed instead.
// - Foreground: an owner being deleted with the "foregroundDeletion" finalizer (propagationPolicy
//   Foreground) has its dependents deleted first; once no dependent with blockOwnerDeletion is left,
//   the finalizer is removed, which completes the owner's deletion in the registry.
// - Orphan: an owner being deleted with the "orphan" finalizer has its dependents' references to it
//   removed, then the finalizer removed.
//
// Keys name an owner: "Kind.group|namespace|name|uid" (see ownerKey; namespace empty for cluster-scoped owners). A
// dependent's change maps to a key per ownerReference, an owner's change (being deleted, or deleted) to
// its own key, so every decision is taken on one owner at a time: reconcile reads the owner from the
// store, finds the dependents referencing that uid in the owner's namespace (ownerReferences never cross
// namespaces) through the owner index of the loops' cache, and acts on what it finds, which makes it
// idempotent and level-triggered (a dependent the cache had not yet seen brings the owner's key back
// with its own event). Resync derives the keys from every ownerReference in the store, so dependents
// whose owner vanished while nothing watched are found. Kubernetes keeps a graph of all objects in
// memory; locally the shared informers' owner index is that graph. A Lambda keeps nothing: its batch
// reader first reads the store's count of the owner's dependents (apiserver/dependents.ts), and only when
// it is above 0 lists each dependent kind of the namespace, once per stream batch.
// One reconcile deletes or updates at most BURST_REPLICAS dependents, then asks to be requeued (an owner
// of a hundred thousand pods is cleaned up in steps, with the API answering in between).

import { RESOURCES, findKind, type ResourceInfo } from '../machinery/resources.ts';
import { ApiError } from '../machinery/status.ts';
import type { KubeObject, OwnerReference } from '../machinery/types.ts';
import { oneVersionEach, readerOf, servedKinds, type Controller, type ControllerContext, type ReconcileResult } from './controller.ts';
import { StoreReader, type ObjectReader } from './cache.ts';
import { isTerminating, withoutOwner } from './owners.ts';
import { BURST_REPLICAS } from './batch.ts';
import { controllerUser } from './identity.ts';

const ORPHAN = 'orphan';
const FOREGROUND = 'foregroundDeletion';

/**
 * Events (core and events.k8s.io) are neither owners nor dependents here, as kube's GC ignores them:
 * nothing we serve owns them, and they are the noisiest feed.
 */
const isEvents = (r: ResourceInfo) => r.resource === 'events';
/** Kinds whose objects may be dependents: the namespaced ones (Events excepted), custom resources included. */
const isDependentKind = (r: ResourceInfo) => r.namespaced && !isEvents(r) && r.verbs.includes('list') && r.verbs.includes('delete');
/**
 * The built-in dependent kinds: what the loop watches from the start (custom ones are added as they
 * come). One version of each (autoscaling/v2 HPAs, not v1 too: versions share one store, and each kind
 * watched is a cache of every such object in a local cluster).
 */
const DEPENDENT_KINDS = oneVersionEach(RESOURCES).filter(isDependentKind);

async function dependentKinds(ctx: ControllerContext): Promise<ResourceInfo[]> {
  return (await servedKinds(ctx)).filter(isDependentKind);
}

/** An owner's kind, by group and kind as its references name it (any served version: they share storage). */
async function kindOf(ctx: ControllerContext, group: string, kind: string): Promise<ResourceInfo | undefined> {
  const builtIn = RESOURCES.find((r) => r.group === group && r.kind === kind);
  return builtIn ?? (await servedKinds(ctx)).find((r) => r.group === group && r.kind === kind);
}

const groupOf = (apiVersion: string) => (apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '');

const is404 = (e: unknown) => e instanceof ApiError && e.code === 404;
const isConflictOrGone = (e: unknown) => e instanceof ApiError && (e.code === 404 || e.code === 409);

/**
 * "Kind.group|namespace|name|uid". The kind is named by group and kind, as a reference names it, and
 * resolved when reconciled: an owner may be a custom resource this process learns of later. The
 * namespace is the owner's; for a reference to a kind not known here (a custom resource), the dependent's,
 * and reconcile drops it if the owner turns out to be cluster-scoped.
 */
function ownerKey(group: string, kind: string, namespace: string | undefined, name: string, uid: string): string {
  return [`${kind}.${group}`, namespace ?? '', name, uid].join('|');
}

function parseKey(key: string): { group: string; kind: string; namespace: string; name: string; uid: string } | undefined {
  const [kg, namespace, name, uid] = key.split('|');
  if (!kg || name === undefined || !uid) return undefined;
  const dot = kg.indexOf('.');
  return { kind: kg.slice(0, dot), group: kg.slice(dot + 1), namespace: namespace ?? '', name, uid };
}

function refKeys(obj: KubeObject): string[] {
  return (obj.metadata.ownerReferences ?? []).map((ref) => {
    const known = findKind(ref.apiVersion, ref.kind);
    return ownerKey(groupOf(ref.apiVersion ?? ''), ref.kind, known && !known.namespaced ? '' : obj.metadata.namespace, ref.name, ref.uid);
  });
}

const selfKey = (res: ResourceInfo, o: KubeObject) => ownerKey(res.group, res.kind, res.namespaced ? o.metadata.namespace : '', o.metadata.name!, o.metadata.uid!);

function ownsSelf(obj: KubeObject): boolean {
  const f = obj.metadata.finalizers ?? [];
  return isTerminating(obj) && (f.includes(ORPHAN) || f.includes(FOREGROUND));
}

/** The owner, if it is the one a reference means (same uid); undefined when it is gone. */
async function liveOwner(ctx: ControllerContext, res: ResourceInfo, namespace: string, name: string, uid: string): Promise<KubeObject | undefined> {
  try {
    const o = await ctx.registry.get(res, res.namespaced ? namespace : undefined, name);
    return o.metadata.uid === uid ? o : undefined;
  } catch (e) {
    if (is404(e)) return undefined;
    throw e;
  }
}

/**
 * Dependents of `uid` in a namespace: every object whose ownerReferences name it, found by the owner
 * index (cache.ts): locally a lookup per dependent kind in the shared informers, so reconciling a
 * deleted object costs no store read however full its namespace is (every delete of every namespaced
 * object asks, and a list of each dependent kind per delete made a delete slower than a create); in the
 * cloud, the batch reader's count of the owner's dependents, then (if any) its list of each kind in the
 * namespace.
 */
async function dependentsOf(ctx: ControllerContext, reader: ObjectReader, namespace: string, uid: string): Promise<{ res: ResourceInfo; obj: KubeObject }[]> {
  const out: { res: ResourceInfo; obj: KubeObject }[] = [];
  for (const res of await dependentKinds(ctx)) {
    const found = await reader.byIndex(res, 'owner', ownerIndexValue(namespace, uid));
    for (const obj of found) out.push({ res, obj });
  }
  return out;
}

/** The owner index's value for an owner: a cluster-scoped one ('' namespace) may have dependents in any namespace, under "*". */
const ownerIndexValue = (namespace: string, uid: string) => `${namespace || '*'}/${uid}`;

/** Whether any object of a dependent kind names `uid` as an owner (the owner index, without the lists). */
async function hasDependents(ctx: ControllerContext, reader: ObjectReader, namespace: string, uid: string): Promise<boolean> {
  for (const res of await dependentKinds(ctx)) if ((await reader.countByIndex(res, 'owner', ownerIndexValue(namespace, uid))) > 0) return true;
  return false;
}

async function removeRef(ctx: ControllerContext, res: ResourceInfo, dep: KubeObject, uid: string): Promise<void> {
  try {
    await ctx.registry.guaranteedUpdate(res, dep.metadata.namespace, dep.metadata.name!, undefined, {}, (cur) =>
      cur.metadata.uid === dep.metadata.uid ? withoutOwner(cur, uid) : cur,
    );
  } catch (e) {
    if (!is404(e)) throw e;
  }
}

async function removeFinalizer(ctx: ControllerContext, res: ResourceInfo, owner: KubeObject, finalizer: string): Promise<void> {
  try {
    await ctx.registry.guaranteedUpdate(res, owner.metadata.namespace, owner.metadata.name!, undefined, {}, (cur) => {
      if (cur.metadata.uid !== owner.metadata.uid) return cur;
      return { ...cur, metadata: { ...cur.metadata, finalizers: (cur.metadata.finalizers ?? []).filter((f) => f !== finalizer) } };
    });
  } catch (e) {
    if (!is404(e)) throw e;
  }
}

async function deleteDependent(ctx: ControllerContext, res: ResourceInfo, dep: KubeObject, policy: 'Background' | 'Foreground'): Promise<void> {
  try {
    await ctx.registry.delete(res, dep.metadata.namespace, dep.metadata.name!, { preconditions: { uid: dep.metadata.uid }, propagationPolicy: policy });
  } catch (e) {
    if (!isConflictOrGone(e)) throw e;
  }
}

/** True when some other owner of `dep` (not `uid`) still exists. */
async function hasOtherLiveOwner(ctx: ControllerContext, dep: KubeObject, uid: string): Promise<boolean> {
  for (const ref of dep.metadata.ownerReferences ?? []) {
    if (ref.uid === uid) continue;
    const res = await kindOf(ctx, groupOf(ref.apiVersion ?? ''), ref.kind);
    // An owner of a kind we do not serve cannot be checked: treat it as alive (never delete wrongly).
    if (!res) return true;
    if (await liveOwner(ctx, res, dep.metadata.namespace ?? '', ref.name, ref.uid)) return true;
  }
  return false;
}

async function reconcileOwner(key: string, ctx: ControllerContext, burst: number): Promise<ReconcileResult | void> {
  const parsed = parseKey(key);
  if (!parsed) return;
  // A kind not served (a CRD not Established yet, or gone): its objects cannot be read, so nothing is
  // decided about their dependents (kube's GC leaves references it cannot resolve alone too).
  const res = await kindOf(ctx, parsed.group, parsed.kind);
  if (!res) return;
  const k = { ...parsed, res, namespace: res.namespaced ? parsed.namespace : '' };
  const reader = readerOf(ctx);
  // Locally, the loops' shared informers answer first, for the kinds the collector follows
  // (isDependentKind): an owner in the cache that is live and not being deleted needs nothing from its
  // dependents, and one gone from it with no dependents in its owner index (every delete of every
  // namespaced object) needs nothing at all, with no store read, as kube's GC does nothing for an owner
  // without dependents in its graph. A cache that lags is safe for these two answers: the owner's
  // terminating update, or a new dependent, is an event of its own that queues this key again. Not a
  // StoreReader (the cloud's batch reader): it keeps what it read, and a decision to delete dependents
  // must read them after the owner. Otherwise a reconcile that read them before a concurrent one orphaned
  // them and took the owner's finalizer would find the owner gone and delete what was just orphaned.
  if (!(reader instanceof StoreReader) && isDependentKind(k.res)) {
    const cached = await reader.get(k.res, k.namespace, k.name);
    if (cached?.metadata.uid === k.uid ? !isTerminating(cached) : !(await hasDependents(ctx, reader, k.namespace, k.uid))) return;
  }
  const owner = await liveOwner(ctx, k.res, k.namespace, k.name, k.uid);
  // A live owner that is not being deleted needs nothing from its dependents: don't list them (a list
  // per dependent kind, on every resync of every owner).
  if (owner && !isTerminating(owner)) return;
  const deps = await dependentsOf(ctx, reader, k.namespace, k.uid);
  // Writes left in this reconcile; when they run out, the rest waits for the requeue.
  let budget = burst;
  const more = { requeueAfterMs: 0 };

  if (!owner) {
    // Background: the owner is gone. A dependent with no other live owner goes; one that still has a
    // live owner only loses the dangling reference.
    for (const { res, obj } of deps) {
      if (isTerminating(obj)) continue;
      if (budget-- <= 0) return more;
      if (await hasOtherLiveOwner(ctx, obj, k.uid)) await removeRef(ctx, res, obj, k.uid);
      else await deleteDependent(ctx, res, obj, 'Background');
    }
    return;
  }
  const finalizers = owner.metadata.finalizers ?? [];

  if (finalizers.includes(ORPHAN)) {
    for (const { res, obj } of deps) {
      if (budget-- <= 0) return more;
      await removeRef(ctx, res, obj, k.uid);
    }
    await removeFinalizer(ctx, k.res, owner, ORPHAN);
    return;
  }
  if (finalizers.includes(FOREGROUND)) {
    for (const { res, obj } of deps) {
      const ref = obj.metadata.ownerReferences!.find((r: OwnerReference) => r.uid === k.uid)!;
      if (isTerminating(obj)) continue;
      if (budget-- <= 0) return more;
      if (await hasOtherLiveOwner(ctx, obj, k.uid)) {
        await removeRef(ctx, res, obj, k.uid);
        continue;
      }
      // A blocking dependent is deleted in the foreground too, so its own dependents go before it does.
      // Pods own nothing in Skiff, and a foreground finalizer on a pod would cut its graceful
      // termination short when removed, so pods are deleted in the background.
      const policy = ref.blockOwnerDeletion && res.resource !== 'pods' ? 'Foreground' : 'Background';
      await deleteDependent(ctx, res, obj, policy);
    }
    // Wait for the blocking dependents to be gone (deleted, or still terminating). Looked for in the
    // store, not the cache: the cache may not yet have seen the deletes just made, nor a blocking
    // dependent created just now, and the owner must not go before one.
    const left = (await dependentsOf(ctx, new StoreReader(ctx.registry), k.namespace, k.uid)).filter(
      ({ obj }) => obj.metadata.ownerReferences!.find((r) => r.uid === k.uid)?.blockOwnerDeletion,
    );
    if (left.length) return { requeueAfterMs: 1000 };
    await removeFinalizer(ctx, k.res, owner, FOREGROUND);
  }
}

export const garbageCollector: Controller = {
  name: 'garbage-collector',
  identity: controllerUser('generic-garbage-collector'),
  // Dependents of every namespaced kind, and owners (RCs are among them; any kind may own). Custom
  // resources are watched too, as their CRDs are Established (the local runner adds them).
  watches: DEPENDENT_KINDS,
  watchesCustomResources: true,
  ignores: isEvents,
  keys(ev) {
    const o = ev.object;
    const keys = refKeys(o);
    // An owner being deleted with a GC finalizer, or one just deleted (its dependents may now dangle).
    if (ownsSelf(o) || ev.type === 'DELETED') keys.push(selfKey(ev.resource, o));
    return keys;
  },
  async allKeys(ctx) {
    const keys = new Set<string>();
    for (const res of await dependentKinds(ctx)) {
      for (const o of (await readerOf(ctx).list(res, undefined))) {
        for (const k of refKeys(o)) keys.add(k);
        if (ownsSelf(o)) keys.add(selfKey(res, o));
      }
    }
    return [...keys];
  },
  reconcile: (key, ctx) => reconcileOwner(key, ctx, BURST_REPLICAS),
};

export interface GarbageCollectorOptions {
  /** The most dependents one reconcile deletes or updates (default BURST_REPLICAS, 500, as kube). */
  burstReplicas?: number;
}

/** The garbage collector with options (garbageCollector is it with kube's defaults). */
export function createGarbageCollector(opts: GarbageCollectorOptions = {}): Controller {
  const burst = opts.burstReplicas ?? BURST_REPLICAS;
  return { ...garbageCollector, reconcile: (key, ctx) => reconcileOwner(key, ctx, burst) };
}

