// The pod-replica core shared by the replication controller (v1 ReplicationController, replication.ts)
// and the ReplicaSet controller (apps/v1 ReplicaSet, replicaset.ts): Kubernetes runs one ReplicaSetController
// for both kinds too, parameterized by kind and selector (pkg/controller/replicaset, replication). It keeps
// spec.replicas active pods matching the owner's selector, adopting matching orphans, releasing pods whose
// labels no longer match, creating pods from spec.template and deleting the surplus, and reporting it
// all in status (through the status subresource) and as Events. Below, "RC" names either kind.
//
// Expectations. Kubernetes' ReplicationManager remembers, in memory, how many creations/deletions it is
// waiting to observe, so a stale informer cache cannot make it create twice. Memory does not survive
// across Lambda instances, and two instances may reconcile the same RC at once, so Skiff makes the
// creations themselves idempotent instead: every pod the RC creates is named after a *slot*,
// `<rc-name>-<5 chars from hash(rc uid, slot index)>`, in Kubernetes' generateName alphabet, and a
// reconcile fills the lowest free slots. Two reconciles that saw the same (or a stale) list choose the
// same names, and the apiserver's name uniqueness turns the duplicate create into AlreadyExists instead
// of an extra pod. Slot indices stay below replicas + the owned pods that are not active (terminating,
// Succeeded, Failed: they keep their names), so however stale
// a reconcile's view, the RC's slot pods are bounded, and whatever surplus a race leaves (e.g. an adopted
// orphan plus a slot pod) is deleted by the next level-triggered reconcile.
// The price: a replacement reuses the name of the pod it replaces once that pod is gone from the store
// (as a StatefulSet does; never while the old pod, even terminating, still exists), where Kubernetes
// would draw a new random name. It is a new pod all the same (new uid).
//
// Reads come from the loops' cache (cache.ts), as Kubernetes' RC reads its pod lister: the namespace's
// pods, once per reconcile (locally from the shared informer's memory, in the cloud one list per
// namespace per stream batch), never a store list per pod event. A cache may lag the store, and a
// lagging one must not make the RC delete a pod twice over (it would still look active) nor retry
// creates that are done. So the RC remembers, per RC, the revision of its last pod write, and reads
// pods only once the cache has caught up with it (caughtUp: locally a wait for the informer, at most
// 2 s, then the store; in the cloud the batch's list is read again): Kubernetes' expectations, counted
// in revisions instead of creations and deletions.
//
// Bounded work: one reconcile creates (or deletes) at most burstReplicas pods (500, as kube), in
// slow-start batches that stop at the first failure (batch.ts), then asks to be requeued; the slots it
// fills are still the lowest free ones, so the bursts of successive (or racing) reconciles add up to the
// same pods one unbounded reconcile would have made, never more.
//
// Keys are "namespace/name" of an RC. A pod maps to the RC that controls it; an orphan pod (no
// controller) maps to "namespace/*": any RC of that namespace may adopt it, and keys() has no store to
// look the selectors up, so reconcile expands it to the namespace's RCs.

import type { ResourceInfo } from '../machinery/resources.ts';
import type { LabelSelector } from '../machinery/selectors.ts';

import { createHash } from 'node:crypto';
import { findResource } from '../machinery/resources.ts';
import { ApiError } from '../machinery/status.ts';
import type { KubeObject } from '../machinery/types.ts';
import { jsonEqual } from '../machinery/validation.ts';
import { readerOf, type Controller, type ControllerContext, type ReconcileResult } from './controller.ts';
import { slowStartBatch, BURST_REPLICAS } from './batch.ts';
import { recordEvent, type EventSpec } from './events.ts';
import { controllerRef, controllerRefTo, isTerminating, withoutOwner } from './owners.ts';
import { controllerUser } from './identity.ts';

const pods = findResource('', 'v1', 'pods')!;

/** What differs between the kinds the core manages. */
export interface ReplicaKind {
  /** The controller's name (also the Events' source component). */
  name: string;
  res: ResourceInfo;
  /**
   * The owner's pod selector; undefined when the controller must not act on it (an empty selector
   * would match every pod of the namespace, an invalid one nothing sensible: validation forbids both).
   */
  selector(owner: KubeObject): LabelSelector | undefined;
}
const ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

const is404 = (e: unknown) => e instanceof ApiError && e.code === 404;
const isConflictOrGone = (e: unknown) => e instanceof ApiError && (e.code === 404 || e.code === 409);

/** The name of slot `i` of an RC: deterministic, so two instances creating it collide by name. */
export function slotName(rc: KubeObject, i: number): string {
  const h = createHash('sha256').update(`${rc.metadata.uid}/${i}`).digest();
  let s = '';
  for (let k = 0; k < 5; k++) s += ALPHABET[h[k]! % ALPHABET.length];
  // generateName truncates the base so the name stays a valid DNS label (63 - 5 characters).
  return `${rc.metadata.name!.slice(0, 57)}-`.slice(0, 58) + s;
}

/**
 * The first `want` names of the RC's lowest `slots` slots that are not taken. Slot names are 5 characters
 * of a hash (27^5 names), so two slots of a large RC can share one (a 3,000-replica RC does about one time
 * in four): a slot whose name an earlier slot already has is skipped and the next one stands in, so there
 * are always `slots` distinct names below the bound. Deterministic, as the names themselves are.
 */
export function freeSlotNames(rc: KubeObject, slots: number, taken: Set<string>, want: number): string[] {
  const names: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; seen.size < slots && names.length < want; i++) {
    const name = slotName(rc, i);
    if (seen.has(name)) continue;
    seen.add(name);
    if (!taken.has(name)) names.push(name);
  }
  return names;
}

function isActive(p: KubeObject): boolean {
  return !isTerminating(p) && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed';
}

function readyCondition(p: KubeObject): { status?: string; lastTransitionTime?: string } | undefined {
  return (p.status?.conditions ?? []).find((c: any) => c.type === 'Ready');
}

function isReady(p: KubeObject): boolean {
  return readyCondition(p)?.status === 'True';
}

/**
 * What of a pod reconcileRC counts: labels (it must match), owners, terminating, finished (not active), and
 * ready with the time it became so (availableReplicas). A pod change that keeps this the same changes no
 * decision and no status field.
 */
function countedView(p: KubeObject): string {
  const r = readyCondition(p);
  const ready = r?.status === 'True' ? r.lastTransitionTime ?? '' : false;
  return JSON.stringify([p.metadata.labels ?? {}, p.metadata.ownerReferences ?? [], p.metadata.deletionTimestamp ?? null, !isActive(p), ready]);
}

/** Kubernetes' deletion ranking, simplified: unscheduled < pending < not ready < newest first. */
function deletionRank(a: KubeObject, b: KubeObject): number {
  const sched = (p: KubeObject) => (p.spec?.nodeName ? 1 : 0);
  const phase = (p: KubeObject) => ({ Pending: 0, Unknown: 1, Running: 2 })[p.status?.phase as 'Pending'] ?? 0;
  const ready = (p: KubeObject) => (isReady(p) ? 1 : 0);
  return (
    sched(a) - sched(b) ||
    phase(a) - phase(b) ||
    ready(a) - ready(b) ||
    // Newer pods go first.
    (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? '') ||
    (a.metadata.name ?? '').localeCompare(b.metadata.name ?? '')
  );
}

function podFromTemplate(rc: KubeObject, name: string): KubeObject {
  const t = rc.spec?.template ?? {};
  const meta = t.metadata ?? {};
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      generateName: `${rc.metadata.name}-`,
      labels: { ...(meta.labels ?? {}) },
      ...(meta.annotations ? { annotations: { ...meta.annotations } } : {}),
      ownerReferences: [controllerRefTo(rc)],
    },
    spec: structuredClone(t.spec ?? {}),
  };
}

/**
 * Per RC uid, the store revision of the RC's last pod write not yet seen in the cache (expectations).
 * Entries go once the cache has caught up, so it holds only RCs with writes in flight.
 */
export type Expectations = Map<string, number>;

/** The revision an object was written at (its resourceVersion). */
const revisionOf = (o: KubeObject) => Number(o.metadata.resourceVersion) || 0;

/** The namespace's objects of a kind (its pods), from a cache that shows the owner's own writes (see the top of this file). */
export async function listCaughtUp(ctx: ControllerContext, res: ResourceInfo, expect: Expectations, key: string, ns: string): Promise<KubeObject[]> {
  const reader = readerOf(ctx);
  const rev = expect.get(key);
  if (rev === undefined) return reader.list(res, ns);
  // Not caught up in time: the store, and the next reconcile waits for the cache again.
  if (!(await reader.caughtUp(res, rev))) return (await ctx.registry.list(res, ns)).items;
  // Seen: nothing more to wait for, unless it wrote again meanwhile.
  if (expect.get(key) === rev) expect.delete(key);
  return reader.list(res, ns);
}

const listPods = (ctx: ControllerContext, expect: Expectations, key: string, ns: string) => listCaughtUp(ctx, pods, expect, key, ns);

/** Notes a write of the owner (by its uid), for listCaughtUp. */
export function wrote(expect: Expectations, key: string, obj: KubeObject): void {
  expect.set(key, Math.max(expect.get(key) ?? 0, revisionOf(obj)));
}

/**
 * Adds the RC as controller of an orphan (a pod; for the Deployment controller a ReplicaSet), re-checking on
 * the current object (CAS) that it still qualifies.
 */
export async function adopt(ctx: ControllerContext, rc: KubeObject, pod: KubeObject, matches: (p: KubeObject) => boolean, written: (o: KubeObject) => void, res = pods): Promise<boolean> {
  let adopted = false;
  try {
    const after = await ctx.registry.guaranteedUpdate(res, pod.metadata.namespace, pod.metadata.name!, undefined, {}, (cur) => {
      adopted = false;
      if (cur.metadata.uid !== pod.metadata.uid || controllerRef(cur) || isTerminating(cur) || !matches(cur)) return cur;
      adopted = true;
      const refs = (cur.metadata.ownerReferences ?? []).filter((r) => r.uid !== rc.metadata.uid);
      return { ...cur, metadata: { ...cur.metadata, ownerReferences: [...refs, controllerRefTo(rc)] } };
    });
    written(after);
  } catch (e) {
    if (!is404(e)) throw e;
    return false;
  }
  return adopted;
}

/** Removes the RC's ownerReference from an object it controls whose labels stopped matching. */
export async function release(ctx: ControllerContext, rc: KubeObject, pod: KubeObject, matches: (p: KubeObject) => boolean, written: (o: KubeObject) => void, res = pods): Promise<void> {
  try {
    const after = await ctx.registry.guaranteedUpdate(res, pod.metadata.namespace, pod.metadata.name!, undefined, {}, (cur) => {
      if (cur.metadata.uid !== pod.metadata.uid || controllerRef(cur)?.uid !== rc.metadata.uid || matches(cur)) return cur;
      return withoutOwner(cur, rc.metadata.uid!);
    });
    written(after);
  } catch (e) {
    if (!is404(e)) throw e;
  }
}

/** Events are informative: failing to record one must not fail (and repeat) a create or delete that is done. */
export async function bestEffortEvent(ctx: ControllerContext, rc: KubeObject, e: EventSpec): Promise<void> {
  try {
    await recordEvent(ctx.registry, rc, e);
  } catch (err) {
    console.error(`${e.component}: could not record event ${e.reason} for ${rc.metadata.namespace}/${rc.metadata.name}`, err);
  }
}

interface Failure {
  reason: string;
  message: string;
}

async function reconcileRC(k: ReplicaKind, ns: string, name: string, ctx: ControllerContext, burst: number, expect: Expectations): Promise<ReconcileResult | void> {
  const rcs = k.res;
  const COMPONENT = k.name;
  const read = await readerOf(ctx).get(rcs, ns, name);
  if (!read) return; // gone: the garbage collector deals with its pods
  // With its type: a cache fed from stream images has objects as stored, without apiVersion and kind,
  // and the ownerReferences this RC writes name them.
  const rc: KubeObject = { ...read, apiVersion: rcs.group ? `${rcs.group}/${rcs.version}` : rcs.version, kind: rcs.kind };
  // By uid: a new RC of the same name expects nothing of the old one's writes.
  const key = rc.metadata.uid!;
  const written = (o: KubeObject) => wrote(expect, key, o);
  const selector = k.selector(rc);
  if (!selector) return;
  const matches = (p: KubeObject) => selector.matches(p.metadata.labels);
  const uid = rc.metadata.uid!;
  const replicas: number = rc.spec?.replicas ?? 1;
  const deleting = isTerminating(rc);

  let all = await listPods(ctx, expect, key, ns);
  let changed = false;
  // Claim: adopt matching orphans, release owned pods that no longer match (not while the RC is deleted).
  for (const p of all) {
    const ref = controllerRef(p);
    if (!deleting && !ref && !isTerminating(p) && matches(p)) changed = (await adopt(ctx, rc, p, matches, written)) || changed;
    else if (ref?.uid === uid && !matches(p)) {
      await release(ctx, rc, p, matches, written);
      changed = true;
    }
  }
  if (changed) all = await listPods(ctx, expect, key, ns);
  const owned = all.filter((p) => controllerRef(p)?.uid === uid && matches(p));
  const active = owned.filter(isActive);

  let failure: Failure | undefined;
  let requeue: number | undefined;
  const diff = active.length - replicas;
  if (!deleting && diff < 0) {
    const taken = new Set(all.map((p) => p.metadata.name!));
    // Terminating and finished (Succeeded/Failed) pods keep their names: the slots they hold are
    // added to the bound, so their replacements get slots of their own.
    const slots = replicas + (owned.length - active.length);
    // The lowest free slots, at most a burst of them this reconcile.
    const names = freeSlotNames(rc, slots, taken, Math.min(-diff, burst));
    const r = await slowStartBatch(names.length, 1, async (i) => {
      try {
        written(await ctx.create(pods, ns, podFromTemplate(rc, names[i]!)));
      } catch (e) {
        // Another reconcile (a second instance, a redelivered event) created this slot: not ours to
        // count again. Look again shortly, from a fresh list.
        if (e instanceof ApiError && e.reason === 'AlreadyExists') return void (requeue = 1000);
        throw e;
      }
      changed = true;
      await bestEffortEvent(ctx, rc, { type: 'Normal', reason: 'SuccessfulCreate', message: `Created pod: ${names[i]}`, component: COMPONENT });
    });
    if (r.error !== undefined) {
      if (!(r.error instanceof ApiError)) throw r.error;
      // The same template will fail the same way: slow start stopped at the first failed batch, and
      // the next reconcile (requeued below) retries.
      failure = { reason: 'FailedCreate', message: r.error.message };
      await bestEffortEvent(ctx, rc, { type: 'Warning', reason: 'FailedCreate', message: `Error creating: ${r.error.message}`, component: COMPONENT });
    } else if (names.length < -diff) {
      // More than a burst to go: continue at the queue's next turn. Or every slot below the bound is
      // held (by pods of another owner, or newer than our list): look again.
      requeue = names.length === burst ? 0 : 1000;
    }
  } else if (diff > 0) {
    const victims = [...active].sort(deletionRank).slice(0, Math.min(diff, burst));
    const r = await slowStartBatch(victims.length, 1, async (i) => {
      const p = victims[i]!;
      try {
        written((await ctx.registry.delete(pods, ns, p.metadata.name!, { preconditions: { uid: p.metadata.uid } })).object);
      } catch (e) {
        if (isConflictOrGone(e)) return;
        throw e;
      }
      changed = true;
      await bestEffortEvent(ctx, rc, { type: 'Normal', reason: 'SuccessfulDelete', message: `Deleted pod: ${p.metadata.name}`, component: COMPONENT });
    });
    if (r.error !== undefined) throw r.error;
    if (diff > burst) requeue = 0; // the rest at the queue's next turn
  }
  if (failure) requeue = 5000;

  // Status: from a look that shows this reconcile's writes, so it converges in one pass.
  if (changed) all = await listPods(ctx, expect, key, ns);
  const now = ctx.now().getTime();
  const minReady = (rc.spec?.minReadySeconds ?? 0) * 1000;
  const mine = all.filter((p) => controllerRef(p)?.uid === uid && matches(p) && isActive(p));
  const templateLabels: Record<string, string> = rc.spec?.template?.metadata?.labels ?? {};
  const ready = mine.filter(isReady);
  let available = 0;
  for (const p of ready) {
    const since = Date.parse(readyCondition(p)?.lastTransitionTime ?? '') || 0;
    if (minReady === 0 || since + minReady <= now) available++;
    else requeue = Math.min(requeue ?? Infinity, since + minReady - now + 100);
  }
  await updateStatus(ctx, rcs, rc, {
    replicas: mine.length,
    fullyLabeledReplicas: mine.filter((p) => Object.entries(templateLabels).every(([k, v]) => p.metadata.labels?.[k] === v)).length,
    readyReplicas: ready.length,
    availableReplicas: available,
    observedGeneration: rc.metadata.generation,
    failure,
  });
  return requeue !== undefined ? { requeueAfterMs: requeue } : undefined;
}

async function updateStatus(
  ctx: ControllerContext,
  rcs: ResourceInfo,
  rc: KubeObject,
  s: { replicas: number; fullyLabeledReplicas: number; readyReplicas: number; availableReplicas: number; observedGeneration?: number; failure?: Failure },
): Promise<void> {
  try {
    await ctx.registry.guaranteedUpdate(rcs, rc.metadata.namespace, rc.metadata.name!, undefined, { subresource: 'status' }, (cur) => {
      if (cur.metadata.uid !== rc.metadata.uid) return cur;
      const old = cur.status ?? {};
      const others = (old.conditions ?? []).filter((c: any) => c.type !== 'ReplicaFailure');
      const prev = (old.conditions ?? []).find((c: any) => c.type === 'ReplicaFailure');
      const conditions = [...others];
      if (s.failure) {
        // Keep the old condition (and its transition time) when nothing about it changed.
        const same = prev && prev.status === 'True' && prev.reason === s.failure.reason && prev.message === s.failure.message;
        conditions.push(
          same
            ? prev
            : { type: 'ReplicaFailure', status: 'True', reason: s.failure.reason, message: s.failure.message, lastTransitionTime: ctx.now().toISOString().replace(/\.\d{3}Z$/, 'Z') },
        );
      }
      const status: Record<string, unknown> = {
        ...old,
        replicas: s.replicas,
        fullyLabeledReplicas: s.fullyLabeledReplicas,
        readyReplicas: s.readyReplicas,
        availableReplicas: s.availableReplicas,
      };
      if (s.observedGeneration !== undefined) status.observedGeneration = s.observedGeneration;
      if (conditions.length) status.conditions = conditions;
      else delete status.conditions;
      // The registry skips writes that change nothing, so an unchanged status costs no revision.
      return { ...cur, status };
    });
  } catch (e) {
    if (!is404(e)) throw e;
  }
}

export interface ReplicaControllerOptions {
  /** The most pods one reconcile of an RC creates or deletes (default BURST_REPLICAS, 500, as kube). */
  burstReplicas?: number;
}

export function createReplicaController(k: ReplicaKind, opts: ReplicaControllerOptions = {}): Controller {
  const burst = opts.burstReplicas ?? BURST_REPLICAS;
  const expect: Expectations = new Map();
  const rcs = k.res;
  const apiVersion = rcs.group ? `${rcs.group}/${rcs.version}` : rcs.version;
  return {
    name: k.name,
    identity: controllerUser(k.name),
    watches: [rcs, pods],
    keys(ev) {
      const m = ev.object.metadata;
      if (ev.resource === rcs || (ev.resource.group === rcs.group && ev.resource.resource === rcs.resource)) {
        // Its own status write (or anyone's that leaves spec and deletion alone) decides nothing: the pods
        // it counted are unchanged, and their next change brings the RC back. In the cloud it was one more
        // list of the namespace's pods after every status write.
        const old = ev.type === 'MODIFIED' ? ev.oldObject : undefined;
        if (old && jsonEqual(old.spec, ev.object.spec) && old.metadata.deletionTimestamp === m.deletionTimestamp) return [];
        return [`${m.namespace}/${m.name}`];
      }
      const ref = controllerRef(ev.object);
      if (ref) {
        if (ref.kind !== rcs.kind || ref.apiVersion !== apiVersion) return [];
        // A change that moves none of what the RC counts (its bind, a status write that leaves it as ready
        // as it was) asks nothing of the RC: in the cloud each reconcile is a list of the namespace's pods
        // per stream batch (the bind and the first status of every pod were two). Which pod goes first on a
        // scale-down (deletionRank) is read when the RC changes, not kept from these events.
        const old = ev.type === 'MODIFIED' ? ev.oldObject : undefined;
        if (old && controllerRef(old)?.uid === ref.uid && countedView(old) === countedView(ev.object)) return [];
        return [`${m.namespace}/${ref.name}`];
      }
      // An orphan that some RC may adopt (a deleted or terminating orphan changes no RC's count).
      if (ev.type === 'DELETED' || isTerminating(ev.object) || !m.labels || !Object.keys(m.labels).length) return [];
      // An update looks for adopters only when the orphan's labels or controller changed (kube's updatePod):
      // a bare pod's bind and status writes ask nothing of its namespace's RCs (a list of them each, before).
      const old = ev.type === 'MODIFIED' ? ev.oldObject : undefined;
      if (old && !controllerRef(old) && jsonEqual(old.metadata.labels, m.labels)) return [];
      return [`${m.namespace}/*`];
    },
    async allKeys(ctx) {
      return (await readerOf(ctx).list(rcs, undefined)).map((r) => `${r.metadata.namespace}/${r.metadata.name}`);
    },
    async reconcile(key, ctx) {
      const i = key.indexOf('/');
      const ns = key.slice(0, i);
      const name = key.slice(i + 1);
      if (name !== '*') return reconcileRC(k, ns, name, ctx, burst, expect);
      let requeue: number | undefined;
      for (const rc of await readerOf(ctx).list(rcs, ns)) {
        const r = await reconcileRC(k, ns, rc.metadata.name!, ctx, burst, expect);
        if (r?.requeueAfterMs !== undefined) requeue = Math.min(requeue ?? Infinity, r.requeueAfterMs);
      }
      return requeue !== undefined ? { requeueAfterMs: requeue } : undefined;
    },
  };
}
