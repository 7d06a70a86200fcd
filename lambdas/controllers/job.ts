// The job controller (kube-controller-manager's pkg/controller/job, 1.32 semantics): runs a Job's pods
// until spec.completions of them succeed (NonIndexed), or one per index succeeds (Indexed), or the Job
// fails: more failures than spec.backoffLimit, past spec.activeDeadlineSeconds, or a pod failure policy
// FailJob rule. It writes the Job's status (active, ready, terminating, succeeded, failed, startTime,
// completionTime, completedIndexes, uncountedTerminatedPods, conditions SuccessCriteriaMet/Complete and
// FailureTarget/Failed, Suspended) and deletes a finished Job after spec.ttlSecondsAfterFinished (kube's
// TTL-after-finished controller, here in the same loop: the Job's key comes back at that time).
//
// Counting each finished pod exactly once, under duplicated, late and reordered delivery and two
// instances at once, as kube does: every pod is created with the batch.kubernetes.io/job-tracking
// finalizer, so a finished pod cannot vanish before it is counted. Counting goes in three steps, each
// idempotent:
//   1. a finished pod that still has the finalizer has its uid added to status.uncountedTerminatedPods
//      (succeeded or failed). The write is conditional on the Job's resourceVersion read from the store,
//      and each candidate pod is re-read from the store just before: so a uid is added only if, at one
//      Job revision, it was neither uncounted nor counted (a counted pod has lost its finalizer, and its
//      uid left the uncounted list in a later Job revision, which makes the write conflict);
//   2. the finalizer is removed from pods whose uid is in the uncounted list (only then);
//   3. a uid of the uncounted list whose pod has no finalizer left (or is gone) moves into the count
//      (succeeded/failed += 1), in one compare-and-swap of the status computed from the stored Job.
// A redelivered event repeats a step that is already done: a no-op.
//
// Pod names are deterministic, so a create repeated by a stale or second reconcile collides
// (AlreadyExists) instead of making an extra pod: NonIndexed pods are `<job>-<5 chars of hash(uid, slot)>`
// in the lowest free slots (as the replication controller names them), Indexed pods
// `<job>-<index>-<5 chars of hash(uid, index, attempt)>` for the lowest free attempt. Reads come from the
// loops' cache (the pods whose controller is the Job, by index), and after its own writes a reconcile
// waits for the cache to show them (expectations by revision, as replicas.ts).
//
// Bounded work: at most BURST_REPLICAS pod creations, deletions or finalizer removals per reconcile
// (slow-start batches), then a requeue. Failed pods delay the next creations by kube's back-off: 10 s,
// doubling per failure, at most 6 minutes.
//
// Not done (kube has them): backoffLimitPerIndex/maxFailedIndexes, successPolicy, managedBy, counting
// container restarts of restartPolicy OnFailure pods against backoffLimit, adopting orphan pods of a
// manualSelector Job.

import { createHash } from 'node:crypto';
import { findResource } from '../machinery/resources.ts';
import { ApiError } from '../machinery/status.ts';
import type { KubeObject } from '../machinery/types.ts';
import { hasJobCondition } from '../kinds/batch/job.ts';
import { readerOf, type Controller, type ControllerContext, type ReconcileResult } from './controller.ts';
import { BURST_REPLICAS, slowStartBatch } from './batch.ts';
import { recordEvent, type EventSpec } from './events.ts';
import { controllerRef, controllerRefTo, isTerminating } from './owners.ts';
import { localWakeUps, type WakeUps } from './wakeups.ts';
import { controllerUser } from './identity.ts';

const jobs = findResource('batch', 'v1', 'jobs')!;
const pods = findResource('', 'v1', 'pods')!;
const COMPONENT = 'job-controller';
const ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
export const TRACKING_FINALIZER = 'batch.kubernetes.io/job-tracking';
export const COMPLETION_INDEX = 'batch.kubernetes.io/job-completion-index';
/** kube's DefaultJobPodFailureBackOff and MaxJobPodFailureBackOff. */
export const BACKOFF_BASE_MS = 10_000;
export const BACKOFF_MAX_MS = 360_000;

type Obj = Record<string, any>;

const is404 = (e: unknown) => e instanceof ApiError && e.code === 404;
const isConflict = (e: unknown) => e instanceof ApiError && e.code === 409;
const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

function hash5(...parts: (string | number)[]): string {
  const h = createHash('sha256').update(parts.join('/')).digest();
  let s = '';
  for (let k = 0; k < 5; k++) s += ALPHABET[h[k]! % ALPHABET.length];
  return s;
}

/** The name of a NonIndexed Job's pod in slot `i`. */
export function jobPodName(job: KubeObject, i: number): string {
  return `${job.metadata.name!.slice(0, 57)}-`.slice(0, 58) + hash5(job.metadata.uid!, i);
}

/** The name of attempt `k` of an Indexed Job's pod for `index`. */
export function indexedPodName(job: KubeObject, index: number, k: number): string {
  const base = `${job.metadata.name}-${index}-`;
  return base.slice(0, 58) + hash5(job.metadata.uid!, index, k);
}

const hasFinalizer = (p: KubeObject) => (p.metadata.finalizers ?? []).includes(TRACKING_FINALIZER);
const isFinishedPhase = (p: KubeObject) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed';
const isActive = (p: KubeObject) => !isTerminating(p) && !isFinishedPhase(p);
const isReady = (p: KubeObject) => (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True');
const podIndex = (p: KubeObject): number | undefined => {
  const v = p.metadata.annotations?.[COMPLETION_INDEX] ?? p.metadata.labels?.[COMPLETION_INDEX];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
};

/**
 * A terminating pod whose node never reported it Failed well after its grace period ended (its
 * deletionTimestamp): counted as failed even under podReplacementPolicy Failed, or the tracking
 * finalizer would hold it forever.
 */
const pastGrace = (p: KubeObject, now: Date) => now.getTime() > (Date.parse(p.metadata.deletionTimestamp ?? '') || Infinity) + 30_000;

/** When a finished pod finished: its containers' last finishedAt, else its Ready condition's transition. */
function finishedAt(p: KubeObject): number | undefined {
  let t: number | undefined;
  for (const s of [...(p.status?.containerStatuses ?? []), ...(p.status?.initContainerStatuses ?? [])]) {
    const f = Date.parse(s?.state?.terminated?.finishedAt ?? '');
    if (!Number.isNaN(f)) t = Math.max(t ?? 0, f);
  }
  if (t !== undefined) return t;
  const ready = (p.status?.conditions ?? []).find((c: any) => c.type === 'Ready');
  const r = Date.parse(ready?.lastTransitionTime ?? '');
  if (!Number.isNaN(r)) return r;
  const d = Date.parse(p.metadata.deletionTimestamp ?? '');
  return Number.isNaN(d) ? undefined : d;
}

// ---------------------------------------------------------------------------------------------------
// Pod failure policy

interface PolicyMatch {
  action: 'FailJob' | 'Ignore' | 'Count' | 'FailIndex';
  message: string;
}

/** The first podFailurePolicy rule a failed pod matches (matchPodFailurePolicy), with kube's message. */
export function matchPodFailurePolicy(job: KubeObject, p: KubeObject): PolicyMatch | undefined {
  const rules: Obj[] = job.spec?.podFailurePolicy?.rules ?? [];
  const who = `${p.metadata.namespace}/${p.metadata.name}`;
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    const action = rule.action as PolicyMatch['action'];
    if (rule.onExitCodes) {
      const req = rule.onExitCodes;
      for (const s of [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])]) {
        const code = s?.state?.terminated?.exitCode;
        if (typeof code !== 'number' || code === 0) continue;
        if (req.containerName && req.containerName !== s.name) continue;
        const inValues = (req.values ?? []).includes(code);
        if ((req.operator === 'In' && inValues) || (req.operator === 'NotIn' && !inValues)) {
          return { action, message: `Container ${s.name} for pod ${who} failed with exit code ${code} matching ${action} rule at index ${i}` };
        }
      }
    }
    for (const pattern of rule.onPodConditions ?? []) {
      const c = (p.status?.conditions ?? []).find((c: any) => c.type === pattern.type && c.status === (pattern.status ?? 'True'));
      if (c) return { action, message: `Pod ${who} has condition ${pattern.type} matching ${action} rule at index ${i}` };
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------
// Expectations (as replicas.ts): per Job uid, the revision of its last pod write the cache must show.

type Expectations = Map<string, number>;

async function listJobPods(ctx: ControllerContext, expect: Expectations, job: KubeObject): Promise<KubeObject[]> {
  const reader = readerOf(ctx);
  const uid = job.metadata.uid!;
  const rev = expect.get(uid);
  const owned = (all: KubeObject[]) => all.filter((p) => controllerRef(p)?.uid === uid);
  if (rev !== undefined) {
    if (!(await reader.caughtUp(pods, rev))) return owned((await ctx.registry.list(pods, job.metadata.namespace)).items);
    if (expect.get(uid) === rev) expect.delete(uid);
  }
  // The namespaced owner index: in the cloud one list of the Job's namespace per batch, not of every namespace.
  return owned(await reader.byIndex(pods, 'owner', `${job.metadata.namespace}/${uid}`));
}

const wrote = (expect: Expectations, uid: string, o: KubeObject) => expect.set(uid, Math.max(expect.get(uid) ?? 0, Number(o.metadata.resourceVersion) || 0));

async function bestEffortEvent(ctx: ControllerContext, job: KubeObject, e: Omit<EventSpec, 'component'>): Promise<void> {
  try {
    await recordEvent(ctx.registry, job, { ...e, component: COMPONENT });
  } catch (err) {
    console.error(`job-controller: could not record event ${e.reason} for ${job.metadata.namespace}/${job.metadata.name}`, err);
  }
}

// ---------------------------------------------------------------------------------------------------
// Pods

function podFor(job: KubeObject, name: string, index: number | undefined): KubeObject {
  const t = structuredClone(job.spec?.template ?? {});
  const meta = t.metadata ?? {};
  const spec = t.spec ?? {};
  const labels: Record<string, string> = { ...(meta.labels ?? {}) };
  const annotations: Record<string, string> = { ...(meta.annotations ?? {}) };
  if (index !== undefined) {
    annotations[COMPLETION_INDEX] = String(index);
    labels[COMPLETION_INDEX] = String(index);
    spec.hostname = `${job.metadata.name}-${index}`;
    // The index as the workload sees it (kube's addCompletionIndexEnvVariables).
    const env = { name: 'JOB_COMPLETION_INDEX', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: `metadata.annotations['${COMPLETION_INDEX}']` } } };
    for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
      if (!(c.env ?? []).some((e: any) => e.name === 'JOB_COMPLETION_INDEX')) c.env = [...(c.env ?? []), env];
    }
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      generateName: index === undefined ? `${job.metadata.name}-` : `${job.metadata.name}-${index}-`,
      labels,
      ...(Object.keys(annotations).length ? { annotations } : {}),
      finalizers: [TRACKING_FINALIZER],
      ownerReferences: [controllerRefTo(job)],
    },
    spec,
  };
}

/** Removes the tracking finalizer from a pod (CAS on the current pod; gone is done). */
async function removeFinalizer(ctx: ControllerContext, p: KubeObject, still: (cur: KubeObject) => boolean = () => true): Promise<KubeObject | undefined> {
  try {
    return await ctx.registry.guaranteedUpdate(pods, p.metadata.namespace, p.metadata.name!, undefined, {}, (cur) => {
      if (cur.metadata.uid !== p.metadata.uid || !hasFinalizer(cur) || !still(cur)) return cur;
      const finalizers = (cur.metadata.finalizers ?? []).filter((f) => f !== TRACKING_FINALIZER);
      const metadata = { ...cur.metadata, finalizers };
      if (!finalizers.length) delete (metadata as Obj).finalizers;
      return { ...cur, metadata };
    });
  } catch (e) {
    if (is404(e)) return undefined;
    throw e;
  }
}

async function deletePod(ctx: ControllerContext, p: KubeObject): Promise<KubeObject | undefined> {
  try {
    return (await ctx.registry.delete(pods, p.metadata.namespace, p.metadata.name!, { preconditions: { uid: p.metadata.uid } })).object;
  } catch (e) {
    if (is404(e) || isConflict(e)) return undefined;
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------
// Status

interface Uncounted {
  succeeded: string[];
  failed: string[];
}

const uncountedOf = (job: KubeObject): Uncounted => ({
  succeeded: [...(job.status?.uncountedTerminatedPods?.succeeded ?? [])],
  failed: [...(job.status?.uncountedTerminatedPods?.failed ?? [])],
});

/** "1,3-5,7": kube's completedIndexes format, from a set of indexes. */
export function formatIndexes(idx: Iterable<number>): string {
  const sorted = [...new Set(idx)].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out.push(j > i ? `${sorted[i]}-${sorted[j]}` : `${sorted[i]}`);
    i = j + 1;
  }
  return out.join(',');
}

export function parseIndexes(s: unknown, completions: number): Set<number> {
  const out = new Set<number>();
  if (typeof s !== 'string') return out;
  for (const part of s.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) continue;
    const a = Number(m[1]);
    // Only indexes the Job has: validation refuses others now, but a status stored before it did may
    // hold any (each range expanded here once cost seconds and gigabytes a pass).
    const b = Math.min(m[2] !== undefined ? Number(m[2]) : a, completions - 1);
    for (let i = a; i <= b; i++) out.add(i);
  }
  return out;
}

interface Condition {
  type: string;
  status: 'True' | 'False';
  reason: string;
  message: string;
}

/** Sets a condition, keeping the old one (and its times) when nothing about it changed. */
function setCondition(status: Obj, c: Condition, now: Date): void {
  const list: Obj[] = status.conditions ?? [];
  const i = list.findIndex((x) => x.type === c.type);
  const old = i >= 0 ? list[i] : undefined;
  if (old && old.status === c.status && old.reason === c.reason && old.message === c.message) return;
  if (!old && c.status === 'False') return; // kube never adds a condition that starts False
  const ts = rfc3339(now);
  const next = { type: c.type, status: c.status, lastProbeTime: ts, lastTransitionTime: old && old.status === c.status ? old.lastTransitionTime : ts, reason: c.reason, message: c.message };
  status.conditions = i >= 0 ? list.map((x, k) => (k === i ? next : x)) : [...list, next];
}

/** Writes the status the mutate computes from the current stored Job (skipped when unchanged). */
async function writeStatus(ctx: ControllerContext, job: KubeObject, mutate: (status: Obj, cur: KubeObject) => void, precondition?: number): Promise<KubeObject | undefined> {
  try {
    return await ctx.registry.guaranteedUpdate(jobs, job.metadata.namespace, job.metadata.name!, precondition, { subresource: 'status' }, (cur) => {
      if (cur.metadata.uid !== job.metadata.uid) return cur;
      const status = structuredClone(cur.status ?? {});
      mutate(status, cur);
      return { ...cur, status };
    });
  } catch (e) {
    if (is404(e)) return undefined;
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------
// The reconcile

export interface JobControllerOptions {
  /** The most pods one reconcile creates, deletes or releases (default BURST_REPLICAS, 500). */
  burst?: number;
  /**
   * How a Job is reconciled again at a time when nothing else happens (its back-off ends, its deadline
   * passes, its TTL ends). Locally the runner's requeue does it; in the cloud an EventBridge Scheduler
   * wake-up (wakeups.ts), as the scheduled resync alone would be minutes late.
   */
  wakeUps?: WakeUps;
}

/** Requeues shorter than this are left to events and the runner (a wake-up costs a Scheduler call). */
const WAKE_UP_MIN_MS = 5000;

function isFinished(job: KubeObject): boolean {
  return hasJobCondition(job, 'Complete') || hasJobCondition(job, 'Failed');
}

/** When the Job finished (its Complete or Failed condition's transition). */
function finishTime(job: KubeObject): number | undefined {
  const c = (job.status?.conditions ?? []).find((c: any) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
  const t = Date.parse(job.status?.completionTime ?? c?.lastTransitionTime ?? '');
  return Number.isNaN(t) ? undefined : t;
}

/** Releases (removes the finalizer of) pods of a Job that is gone or finished: nothing is counted any more. */
async function releaseAll(ctx: ControllerContext, list: KubeObject[], burst: number, written: (o: KubeObject) => void): Promise<boolean> {
  const held = list.filter(hasFinalizer).slice(0, burst);
  const r = await slowStartBatch(held.length, 1, async (i) => {
    const after = await removeFinalizer(ctx, held[i]!);
    if (after) written(after);
  });
  if (r.error !== undefined) throw r.error;
  return list.filter(hasFinalizer).length > burst;
}

async function reconcileJob(ns: string, name: string, uidHint: string | undefined, ctx: ControllerContext, burst: number, expect: Expectations): Promise<ReconcileResult | void> {
  let job = await readerOf(ctx).get(jobs, ns, name);
  if (!job || (uidHint && job.metadata.uid !== uidHint)) {
    // The Job is gone (or replaced): its pods' finalizers go, so their deletion can finish.
    if (!uidHint) return;
    const orphans = (await readerOf(ctx).byIndex(pods, 'owner', `${ns}/${uidHint}`)).filter((p) => controllerRef(p)?.uid === uidHint);
    const more = await releaseAll(ctx, orphans, burst, () => {});
    return more ? { requeueAfterMs: 0 } : undefined;
  }
  const uid = job.metadata.uid!;
  const written = (o: KubeObject) => wrote(expect, uid, o);
  const now = ctx.now();
  let requeue: number | undefined;
  const after = (ms: number) => (requeue = Math.min(requeue ?? Infinity, Math.max(0, ms)));

  if (isFinished(job)) {
    const list = await listJobPods(ctx, expect, job);
    if (hasJobCondition(job, 'Failed')) {
      // A failed Job's pods that still run are stopped (kube deletes them before Failed is set; a late
      // pod of a racing instance is caught here).
      for (const p of list.filter(isActive).slice(0, burst)) {
        const d = await deletePod(ctx, p);
        if (d) written(d);
      }
    }
    if (await releaseAll(ctx, list, burst, written)) after(0);
    // TTL after finished: the Job (and, through the garbage collector, its pods) is deleted.
    const ttl = job.spec?.ttlSecondsAfterFinished;
    const done = finishTime(job);
    if (typeof ttl === 'number' && done !== undefined && !isTerminating(job)) {
      const at = done + ttl * 1000;
      if (at <= now.getTime()) {
        try {
          await ctx.registry.delete(jobs, ns, name, { preconditions: { uid }, propagationPolicy: 'Background' });
        } catch (e) {
          if (!is404(e) && !isConflict(e)) throw e;
        }
        return;
      }
      after(at - now.getTime());
    }
    return requeue !== undefined ? { requeueAfterMs: requeue } : undefined;
  }

  const spec = job.spec ?? {};
  const indexed = spec.completionMode === 'Indexed';
  const suspended = spec.suspend === true;
  const parallelism: number = spec.parallelism ?? 1;
  const completions: number | undefined = typeof spec.completions === 'number' ? spec.completions : undefined;
  const backoffLimit: number = spec.backoffLimit ?? 6;
  const list = await listJobPods(ctx, expect, job);

  // ---- counting (steps 1 to 3 at the top of this file) ----
  const uncounted = uncountedOf(job);
  const inUncounted = new Set([...uncounted.succeeded, ...uncounted.failed]);
  let failJob: { reason: string; message: string } | undefined;
  const toAdd: Uncounted = { succeeded: [], failed: [] };
  const ignored: KubeObject[] = [];
  const addIndexes = new Set<number>();
  for (const p of list) {
    if (!hasFinalizer(p) || inUncounted.has(p.metadata.uid!)) continue;
    const phase = p.status?.phase;
    if (phase === 'Succeeded') toAdd.succeeded.push(p.metadata.uid!);
    else if (phase === 'Failed' || (isTerminating(p) && (spec.podReplacementPolicy !== 'Failed' || pastGrace(p, now)))) {
      // Deleted while the Job is suspended: stopped by us, not a failure.
      if (phase !== 'Failed' && suspended) ignored.push(p);
      else {
        const m = spec.podFailurePolicy ? matchPodFailurePolicy(job, p) : undefined;
        if (m?.action === 'Ignore') ignored.push(p);
        else {
          toAdd.failed.push(p.metadata.uid!);
          if (m?.action === 'FailJob' && !failJob) failJob = { reason: 'PodFailurePolicy', message: m.message };
        }
      }
    } else if (isTerminating(p)) after((Date.parse(p.metadata.deletionTimestamp!) || now.getTime()) + 30_000 - now.getTime() + 100);
    if (phase === 'Succeeded' && indexed) {
      const i = podIndex(p);
      if (i !== undefined && completions !== undefined && i < completions) addIndexes.add(i);
    }
  }
  // Ignored failures are not counted: their finalizer just goes.
  const released = new Set<string>();
  for (const p of ignored.slice(0, burst)) {
    const a = await removeFinalizer(ctx, p);
    if (a) written(a);
    released.add(p.metadata.uid!);
  }
  if (toAdd.succeeded.length || toAdd.failed.length) {
    // Step 1: re-read the Job and the candidates from the store, and add them at that Job revision.
    const fresh = await ctx.registry.get(jobs, ns, name).catch((e) => (is404(e) ? undefined : Promise.reject(e)));
    if (!fresh || fresh.metadata.uid !== uid) return;
    const freshUncounted = uncountedOf(fresh);
    const have = new Set([...freshUncounted.succeeded, ...freshUncounted.failed]);
    const stillHeld = async (puid: string) => {
      const p = list.find((x) => x.metadata.uid === puid)!;
      const cur = await ctx.registry.get(pods, ns, p.metadata.name!).catch((e) => (is404(e) ? undefined : Promise.reject(e)));
      return !!cur && cur.metadata.uid === puid && hasFinalizer(cur) && !have.has(puid);
    };
    const addS: string[] = [];
    const addF: string[] = [];
    for (const u of toAdd.succeeded.slice(0, burst)) if (await stillHeld(u)) addS.push(u);
    for (const u of toAdd.failed.slice(0, burst)) if (await stillHeld(u)) addF.push(u);
    if (addS.length || addF.length) {
      try {
        job =
          (await writeStatus(
            ctx,
            fresh,
            (s) => {
              const u = uncountedOf({ ...fresh, status: s } as KubeObject);
              s.uncountedTerminatedPods = { ...(u.succeeded.length || addS.length ? { succeeded: [...u.succeeded, ...addS] } : {}), ...(u.failed.length || addF.length ? { failed: [...u.failed, ...addF] } : {}) };
              if (indexed && addIndexes.size) s.completedIndexes = formatIndexes([...parseIndexes(s.completedIndexes, completions ?? 0), ...addIndexes]);
            },
            Number(fresh.metadata.resourceVersion),
          )) ?? job;
      } catch (e) {
        if (!isConflict(e)) throw e;
        return { requeueAfterMs: 100 }; // the Job changed meanwhile: start over from what it is now
      }
    }
  }
  // Step 2: the pods whose uids are uncounted lose their finalizer.
  const nowUncounted = uncountedOf(job);
  const uncountedSet = new Set([...nowUncounted.succeeded, ...nowUncounted.failed]);
  const release = list.filter((p) => uncountedSet.has(p.metadata.uid!) && hasFinalizer(p)).slice(0, burst);
  const rr = await slowStartBatch(release.length, 1, async (i) => {
    const a = await removeFinalizer(ctx, release[i]!);
    if (a) written(a);
    released.add(release[i]!.metadata.uid!);
  });
  if (rr.error !== undefined) throw rr.error;
  // Step 3: uncounted uids whose pods hold no finalizer any more (or are gone) are counted.
  const byUid = new Map(list.map((p) => [p.metadata.uid!, p]));
  const countable = new Set([...uncountedSet].filter((u) => released.has(u) || !byUid.get(u) || !hasFinalizer(byUid.get(u)!)));
  if (countable.size) {
    job =
      (await writeStatus(ctx, job, (s) => {
        const u = uncountedOf({ ...job, status: s } as KubeObject);
        const movedS = u.succeeded.filter((x) => countable.has(x));
        const movedF = u.failed.filter((x) => countable.has(x));
        // Indexed: the count is of succeeded indexes (a second success of an index adds nothing), as kube.
        s.succeeded = indexed ? parseIndexes(s.completedIndexes, completions ?? 0).size : (s.succeeded ?? 0) + movedS.length;
        s.failed = (s.failed ?? 0) + movedF.length;
        const restS = u.succeeded.filter((x) => !countable.has(x));
        const restF = u.failed.filter((x) => !countable.has(x));
        s.uncountedTerminatedPods = { ...(restS.length ? { succeeded: restS } : {}), ...(restF.length ? { failed: restF } : {}) };
      })) ?? job;
  }

  // ---- what the Job should be doing now ----
  const st = job.status ?? {};
  const uc = uncountedOf(job);
  const succeeded: number = (st.succeeded ?? 0) + uc.succeeded.length;
  const failed: number = (st.failed ?? 0) + uc.failed.length;
  const active = list.filter(isActive);
  const terminating = list.filter((p) => isTerminating(p) && !isFinishedPhase(p));
  const completed = parseIndexes(st.completedIndexes, completions ?? 0);
  for (const i of addIndexes) completed.add(i);
  // The deadline counts from startTime, which this reconcile sets (first start) or resets (resume).
  const resuming = (st.conditions ?? []).some((c: Obj) => c.type === 'Suspended' && c.status === 'True');
  const startMs = resuming || !st.startTime ? now.getTime() : Date.parse(st.startTime);

  let success = false;
  if (indexed) success = completions !== undefined && completed.size >= completions;
  else if (completions !== undefined) success = succeeded >= completions;
  else success = succeeded > 0 && active.length === 0;
  if (!failJob && !success && failed > backoffLimit) failJob = { reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' };
  if (!failJob && !success && !suspended && typeof spec.activeDeadlineSeconds === 'number' && !Number.isNaN(startMs)) {
    const deadline = startMs + spec.activeDeadlineSeconds * 1000;
    if (deadline <= now.getTime()) failJob = { reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' };
    else after(deadline - now.getTime());
  }
  const already = st.conditions ?? [];
  const target = already.find((c: Obj) => c.type === 'FailureTarget' && c.status === 'True');
  if (!failJob && target) failJob = { reason: target.reason, message: target.message };
  const criteriaMet = already.some((c: Obj) => c.type === 'SuccessCriteriaMet' && c.status === 'True');
  if (criteriaMet && !failJob) success = true;

  let deleted = 0;
  let created = 0;
  const stopping = failJob || success || suspended;
  if (stopping) {
    // Everything still running goes (kube: the Job's pods are deleted when it fails, succeeds or is suspended).
    const victims = active.slice(0, burst);
    const r = await slowStartBatch(victims.length, 1, async (i) => {
      const d = await deletePod(ctx, victims[i]!);
      if (d) {
        written(d);
        deleted++;
        await bestEffortEvent(ctx, job!, { type: 'Normal', reason: 'SuccessfulDelete', message: `Deleted pod: ${victims[i]!.metadata.name}` });
      }
    });
    if (r.error !== undefined) throw r.error;
    if (active.length > burst) after(0);
  } else {
    // Back-off after failures: 10 s doubling per failure, at most 6 minutes, from the last failure.
    let notBefore = 0;
    if (failed > 0) {
      const last = Math.max(0, ...list.filter((p) => p.status?.phase === 'Failed' || isTerminating(p)).map((p) => finishedAt(p) ?? 0));
      if (last > 0) notBefore = last + Math.min(BACKOFF_BASE_MS * 2 ** Math.min(failed - 1, 16), BACKOFF_MAX_MS);
    }
    const replacing = spec.podReplacementPolicy === 'Failed' ? terminating.length : 0;
    if (notBefore > now.getTime()) after(notBefore - now.getTime());
    else {
      const taken = new Set(list.map((p) => p.metadata.name!));
      let names: { name: string; index?: number }[] = [];
      if (indexed && completions !== undefined) {
        const running = new Set(active.concat(terminating).map(podIndex).filter((i): i is number => i !== undefined));
        const room = Math.min(parallelism - active.length - replacing, burst);
        for (let i = 0; i < completions && names.length < room; i++) {
          if (completed.has(i) || running.has(i)) continue;
          let k = 0;
          while (taken.has(indexedPodName(job, i, k))) k++;
          names.push({ name: indexedPodName(job, i, k), index: i });
        }
      } else {
        let want = parallelism;
        if (completions !== undefined) want = Math.min(completions - succeeded, parallelism);
        else if (succeeded > 0) want = 0; // a work queue: once one pod succeeded, no new ones
        const diff = Math.min(want - active.length - replacing, burst);
        for (let i = 0; names.length < diff; i++) {
          const n = jobPodName(job, i);
          if (!taken.has(n)) names.push({ name: n });
        }
      }
      const r = await slowStartBatch(names.length, 1, async (i) => {
        const { name: podName, index } = names[i]!;
        try {
          written(await ctx.create(pods, ns, podFor(job!, podName, index)));
        } catch (e) {
          if (e instanceof ApiError && e.reason === 'AlreadyExists') return void after(1000);
          throw e;
        }
        created++;
        await bestEffortEvent(ctx, job!, { type: 'Normal', reason: 'SuccessfulCreate', message: `Created pod: ${podName}` });
      });
      if (r.error !== undefined) {
        if (!(r.error instanceof ApiError)) throw r.error;
        await bestEffortEvent(ctx, job, { type: 'Warning', reason: 'FailedCreate', message: `Error creating: ${r.error.message}` });
        after(5000);
      } else if (names.length === burst) after(0);
    }
  }

  // ---- status ----
  const activeNow = stopping ? active.length - deleted : active.length + created;
  const readyNow = stopping ? 0 : active.filter(isReady).length;
  // Finished only once no pod of it runs or waits to be counted (kube 1.31+: the terminal condition
  // comes after the pods are gone), so what the Job's counts say is final.
  const stillHeld = list.some((p) => hasFinalizer(p) && !isActive(p) && !released.has(p.metadata.uid!)) || uc.succeeded.length + uc.failed.length > 0;
  const finished = (failJob || success) && activeNow === 0 && deleted === 0 && !stillHeld;
  const updated = await writeStatus(ctx, job, (s) => {
    // active, succeeded and failed are omitempty in the API (absent when 0); ready and terminating are not.
    s.active = Math.max(0, activeNow);
    s.ready = readyNow;
    s.terminating = terminating.length + (stopping ? deleted : 0);
    for (const f of ['active', 'succeeded', 'failed']) if (!s[f]) delete s[f];
    s.uncountedTerminatedPods = s.uncountedTerminatedPods ?? {};
    if (indexed) {
      const ci = formatIndexes([...parseIndexes(s.completedIndexes, completions ?? 0), ...completed]);
      if (ci) s.completedIndexes = ci;
    }
    if (suspended && !failJob && !success) {
      setCondition(s, { type: 'Suspended', status: 'True', reason: 'JobSuspended', message: 'Job suspended' }, now);
    } else if ((s.conditions ?? []).some((c: Obj) => c.type === 'Suspended' && c.status === 'True')) {
      setCondition(s, { type: 'Suspended', status: 'False', reason: 'JobResumed', message: 'Job resumed' }, now);
      // The deadline counts from the resume.
      s.startTime = rfc3339(now);
    }
    if (!suspended && !s.startTime) s.startTime = rfc3339(now);
    if (failJob) {
      setCondition(s, { type: 'FailureTarget', status: 'True', ...failJob }, now);
      if (finished) setCondition(s, { type: 'Failed', status: 'True', ...failJob }, now);
    } else if (success) {
      const reason = 'CompletionsReached';
      const message = 'Reached expected number of succeeded pods';
      setCondition(s, { type: 'SuccessCriteriaMet', status: 'True', reason, message }, now);
      if (finished) {
        setCondition(s, { type: 'Complete', status: 'True', reason, message }, now);
        s.completionTime = s.completionTime ?? rfc3339(now);
      }
    }
  });
  const wasSuspended = (st.conditions ?? []).some((c: Obj) => c.type === 'Suspended' && c.status === 'True');
  if (updated && suspended && !wasSuspended && !failJob && !success) await bestEffortEvent(ctx, updated, { type: 'Normal', reason: 'Suspended', message: 'Job suspended' });
  if (updated && !suspended && wasSuspended) await bestEffortEvent(ctx, updated, { type: 'Normal', reason: 'Resumed', message: 'Job resumed' });
  if (updated && finished && !isFinished(job)) {
    if (failJob) await bestEffortEvent(ctx, updated, { type: 'Warning', reason: failJob.reason, message: failJob.message });
    else await bestEffortEvent(ctx, updated, { type: 'Normal', reason: 'Completed', message: 'Job completed' });
    // A TTL starts now: come back when it ends.
    const ttl = updated.spec?.ttlSecondsAfterFinished;
    if (typeof ttl === 'number') after(ttl * 1000);
  } else if ((failJob || success) && !finished) after(1000);
  return requeue !== undefined ? { requeueAfterMs: requeue } : undefined;
}

/** Keys of orphan pods (`orphan-pod:<namespace>/<name>`): kube's orphan queue. */
const ORPHAN_POD = 'orphan-pod:';

/**
 * kube's syncOrphanPod: a pod that still has the tracking finalizer and no controller any more is released
 * (its finalizer removed), so its deletion can finish. One adopted meanwhile is left to its Job.
 */
async function releaseOrphanPod(nsName: string, ctx: ControllerContext): Promise<void> {
  const i = nsName.indexOf('/');
  const pod = await readerOf(ctx).get(pods, nsName.slice(0, i), nsName.slice(i + 1));
  if (!pod || !hasFinalizer(pod) || controllerRef(pod)) return;
  await removeFinalizer(ctx, pod, (cur) => !controllerRef(cur));
}

export function createJobController(opts: JobControllerOptions = {}): Controller {
  const burst = opts.burst ?? BURST_REPLICAS;
  const wakeUps = opts.wakeUps ?? localWakeUps;
  const expect: Expectations = new Map();
  return {
    name: 'job-controller',
    identity: controllerUser('job-controller'),
    watches: [jobs, pods],
    keys(ev) {
      const m = ev.object.metadata;
      if (ev.resource === jobs) {
        // A deleted Job: its pods' finalizers must go (key with its uid).
        return ev.type === 'DELETED' ? [`${m.namespace}/${m.name}#${m.uid}`] : [`${m.namespace}/${m.name}`];
      }
      const ref = controllerRef(ev.object);
      // A pod with our finalizer and no controller (its Job deleted with orphan propagation, the default for
      // Jobs, so the garbage collector took its owner reference): nothing would ever release it.
      if (!ref) return hasFinalizer(ev.object) ? [`${ORPHAN_POD}${m.namespace}/${m.name}`] : [];
      if (ref.kind !== 'Job' || ref.apiVersion !== 'batch/v1') return [];
      // A pod held by our finalizer whose Job may be gone is reconciled by the Job's uid too.
      return hasFinalizer(ev.object) && (isTerminating(ev.object) || isFinishedPhase(ev.object)) ? [`${m.namespace}/${ref.name}#${ref.uid}`] : [`${m.namespace}/${ref.name}`];
    },
    async allKeys(ctx) {
      return (await readerOf(ctx).list(jobs, undefined)).map((j) => `${j.metadata.namespace}/${j.metadata.name}`);
    },
    async reconcile(key, ctx) {
      if (key.startsWith(ORPHAN_POD)) return releaseOrphanPod(key.slice(ORPHAN_POD.length), ctx);
      const i = key.indexOf('/');
      const ns = key.slice(0, i);
      const rest = key.slice(i + 1);
      const h = rest.indexOf('#');
      const name = h < 0 ? rest : rest.slice(0, h);
      const uid = h < 0 ? undefined : rest.slice(h + 1);
      const r = await reconcileJob(ns, name, uid, ctx, burst, expect);
      if (r?.requeueAfterMs !== undefined && r.requeueAfterMs >= WAKE_UP_MIN_MS) {
        await wakeUps.wakeAt('job-controller', `${ns}/${name}`, new Date(ctx.now().getTime() + r.requeueAfterMs));
      }
      return r;
    },
  };
}

export const jobController: Controller = createJobController();
