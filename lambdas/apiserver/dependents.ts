// Dependent counts: how many stored objects name an owner's uid in their ownerReferences. The store keeps
// them as charges (Backend CreateOptions/UpdateOptions.charges, the mechanism quota uses), one group per
// owner uid, moved in each dependent's own create, update and delete, so a count is exact at every
// revision. Why: the garbage collector in the cloud has no graph of owners in memory (kube's GC keeps one;
// skiff up's informers' owner index is one), so for every deleted object it listed each dependent kind
// of the namespace, 27 Queries and their revision reads per deleted pod, growing with the namespace. A
// pod almost never owns anything: one read of its count now says so (controllers/cache.ts StoreReader).
//
// A store written before the counts holds dependents that were never charged. Until
// Registry.countExistingDependents() has charged them and left its marker, the counts are not trusted and the
// collector lists as before. skiff up runs it at start; a deployed table at its bootstrap (each deploy
// after the first costs one read).

import type { Backend, Charge, KeyValue } from '../storage/backend.ts';
import type { KubeObject } from '../machinery/types.ts';

/** Present once every stored dependent is in its owners' counts (see countExistingDependents). */
export const DEPENDENT_COUNTS_KEY = '/registry/skiff.io/meta/dependent-counts';

/** A count has no limit: any number of objects may name an owner. */
const NO_LIMIT = Number.MAX_SAFE_INTEGER;

export const dependentsGroup = (uid: string) => `dependents#${uid}`;

const ownerUids = (o: KubeObject | undefined) => new Set((o?.metadata.ownerReferences ?? []).map((r) => r.uid).filter((u): u is string => typeof u === 'string' && u !== ''));

/** A create's charges: one to each owner it names. */
export function dependentCharges(obj: KubeObject): Charge[] {
  return [...ownerUids(obj)].map((uid) => ({ group: dependentsGroup(uid), amount: 1, limit: NO_LIMIT }));
}

/** An update's: owners dropped go to 0, owners added to 1; none when the owners are the same. */
export function dependentRecharges(obj: KubeObject, old: KubeObject): Charge[] {
  const now = ownerUids(obj);
  const before = ownerUids(old);
  return [
    ...[...before].filter((u) => !now.has(u)).map((uid) => ({ group: dependentsGroup(uid), amount: 0, limit: NO_LIMIT })),
    ...[...now].filter((u) => !before.has(u)).map((uid) => ({ group: dependentsGroup(uid), amount: 1, limit: NO_LIMIT })),
  ];
}

/** Backends whose counts are known complete (the marker was seen once: it is never removed). */
const counted = new WeakSet<Backend>();

/**
 * False only when the store says no object names `uid` as an owner: its count is 0 and every stored
 * object is counted. True when it may (counted above 0, or counts not yet complete).
 */
export async function mayHaveDependents(backend: Backend, uid: string): Promise<boolean> {
  if (!counted.has(backend)) {
    if (!(await backend.get(DEPENDENT_COUNTS_KEY))) return true;
    counted.add(backend);
  }
  return (await backend.count(dependentsGroup(uid))) > 0;
}

/**
 * One key of a store written before dependents were counted (Registry.countExistingDependents, which
 * visits every key and then writes DEPENDENT_COUNTS_KEY): an object with owners is charged to them
 * (Backend.chargeExisting: only the groups it lacks, so a write that charged it meanwhile is not counted
 * twice). True when it charged something now.
 */
export async function chargeExistingDependents(backend: Backend, kv: KeyValue): Promise<boolean> {
  let obj: KubeObject | undefined;
  try {
    obj = JSON.parse(kv.value) as KubeObject;
  } catch {
    return false; // not an object (a malformed value is never a dependent)
  }
  const charges = obj?.metadata ? dependentCharges(obj) : [];
  return charges.length > 0 && (await backend.chargeExisting(kv.key, charges)).length > 0;
}
