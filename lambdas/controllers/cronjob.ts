// The cronjob controller (kube-controller-manager's pkg/controller/cronjob, ControllerV2, 1.32
// semantics): at each time spec.schedule fires (in spec.timeZone, UTC without one) it creates a Job from
// spec.jobTemplate, named `<cronjob>-<scheduled time in minutes since the epoch>` with the
// batch.kubernetes.io/cronjob-scheduled-timestamp annotation; concurrencyPolicy Allow, Forbid (skip while
// one runs) or Replace (delete the running ones first); a start later than startingDeadlineSeconds is
// missed; more than 100 missed start times is reported (TooManyMissedTimes) and only the most recent is
// run; status.active, lastScheduleTime and lastSuccessfulTime; finished Jobs beyond the history limits are
// deleted; suspend stops new Jobs.
//
// Idempotent: the Job's name is a function of the CronJob and the scheduled time, so a redelivered or
// racing reconcile's create of the same run collides (AlreadyExists) instead of running it twice;
// lastScheduleTime only moves forward (it is set from the stored CronJob in a compare-and-swap).
//
// Time: the key is reconciled again at the next fire time. Locally the runner requeues it; in the cloud
// a one-time EventBridge Scheduler schedule invokes the controller function then (wakeups.ts), and a
// deleted CronJob's schedule is deleted. The clock is ctx.now(), so tests drive it.

import { findResource } from '../machinery/resources.ts';
import { nextFire, parseStandard, type CronSchedule } from '../machinery/cron.ts';
import { ApiError } from '../machinery/status.ts';
import type { KubeObject } from '../machinery/types.ts';
import { hasJobCondition } from '../kinds/batch/job.ts';
import { readerOf, type Controller, type ControllerContext, type ReconcileResult } from './controller.ts';
import { recordEvent, type EventSpec } from './events.ts';
import { controllerRef, controllerRefTo, isTerminating } from './owners.ts';
import { localWakeUps, type WakeUps } from './wakeups.ts';
import { controllerUser } from './identity.ts';

const cronJobs = findResource('batch', 'v1', 'cronjobs')!;
const jobs = findResource('batch', 'v1', 'jobs')!;
const COMPONENT = 'cronjob-controller';
export const CONTROLLER_NAME = 'cronjob-controller';
export const SCHEDULED_TIMESTAMP = 'batch.kubernetes.io/cronjob-scheduled-timestamp';
/** More missed start times than this is reported (kube's arbitrary 100). */
const TOO_MANY_MISSED = 100;

type Obj = Record<string, any>;

const is404 = (e: unknown) => e instanceof ApiError && e.code === 404;
const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** getJobName: the CronJob's name and the scheduled time in minutes since the epoch. */
export function jobNameFor(cj: KubeObject, scheduled: Date): string {
  return `${cj.metadata.name}-${Math.floor(scheduled.getTime() / 60_000)}`;
}

/** time.Time.In(zone).Format(time.RFC3339): the local time with its offset ("Z" in UTC). */
export function rfc3339In(d: Date, tz: string): string {
  if (tz === 'UTC') return rfc3339(d);
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'longOffset' })
      .formatToParts(d)
      .map((p) => [p.type, p.value]),
  );
  const off = parts.timeZoneName === 'GMT' ? 'Z' : String(parts.timeZoneName).replace('GMT', '');
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}${off}`;
}

const isFinished = (j: KubeObject) => hasJobCondition(j, 'Complete') || hasJobCondition(j, 'Failed');

/**
 * mostRecentScheduleTime: the latest fire time in (earliest, now], and how many there were (roughly, as
 * kube counts them); undefined when none.
 */
export function mostRecentScheduleTime(cj: KubeObject, now: Date, sched: CronSchedule, tz: string): { time?: Date; missed: number } {
  let earliest = Date.parse(cj.status?.lastScheduleTime ?? cj.metadata.creationTimestamp ?? '');
  if (Number.isNaN(earliest)) earliest = now.getTime();
  const sds = cj.spec?.startingDeadlineSeconds;
  if (typeof sds === 'number') earliest = Math.max(earliest, now.getTime() - sds * 1000);
  const t1 = nextFire(sched, new Date(earliest), tz);
  if (t1.getTime() > now.getTime()) return { missed: 0 };
  const t2 = nextFire(sched, t1, tz);
  if (t2.getTime() > now.getTime()) return { time: t1, missed: 1 };
  const between = Math.round((t2.getTime() - t1.getTime()) / 1000);
  if (between < 1) return { missed: 0 };
  const missed = Math.floor((now.getTime() - t1.getTime()) / 1000 / between) + 1;
  // Back from the estimate by two intervals, then let the schedule walk to the last time not after now.
  let t = new Date(t1.getTime() + (missed - 2) * between * 1000);
  let latest: Date | undefined;
  for (let n = nextFire(sched, t, tz); n.getTime() <= now.getTime(); n = nextFire(sched, n, tz)) latest = n;
  t = latest ?? t1;
  return { time: t, missed };
}

function jobRef(j: KubeObject): Obj {
  return { kind: 'Job', namespace: j.metadata.namespace, name: j.metadata.name, uid: j.metadata.uid, apiVersion: 'batch/v1', resourceVersion: j.metadata.resourceVersion };
}

function jobFromTemplate(cj: KubeObject, name: string, scheduled: Date, tz: string): KubeObject {
  const t = cj.spec?.jobTemplate ?? {};
  const meta = t.metadata ?? {};
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name,
      labels: { ...(meta.labels ?? {}) },
      annotations: { ...(meta.annotations ?? {}), [SCHEDULED_TIMESTAMP]: rfc3339In(scheduled, tz) },
      ownerReferences: [controllerRefTo(cj)],
    },
    spec: structuredClone(t.spec ?? {}),
  };
}

async function event(ctx: ControllerContext, cj: KubeObject, e: Omit<EventSpec, 'component'>): Promise<void> {
  try {
    await recordEvent(ctx.registry, cj, { ...e, component: COMPONENT });
  } catch (err) {
    console.error(`cronjob-controller: could not record event ${e.reason}`, err);
  }
}

async function deleteJob(ctx: ControllerContext, j: KubeObject): Promise<boolean> {
  try {
    await ctx.registry.delete(jobs, j.metadata.namespace, j.metadata.name!, { preconditions: { uid: j.metadata.uid }, propagationPolicy: 'Background' });
    return true;
  } catch (e) {
    if (is404(e) || (e instanceof ApiError && e.code === 409)) return false;
    throw e;
  }
}

const startOf = (j: KubeObject) => Date.parse(j.status?.startTime ?? j.metadata.creationTimestamp ?? '') || 0;

/** cleanupFinishedJobs: the oldest finished Jobs beyond a history limit are deleted. */
async function cleanupHistory(ctx: ControllerContext, cj: KubeObject, owned: KubeObject[]): Promise<void> {
  const limits: [string, (j: KubeObject) => boolean][] = [
    ['successfulJobsHistoryLimit', (j) => hasJobCondition(j, 'Complete')],
    ['failedJobsHistoryLimit', (j) => hasJobCondition(j, 'Failed')],
  ];
  for (const [field, pick] of limits) {
    const limit = cj.spec?.[field];
    if (typeof limit !== 'number') continue;
    const finished = owned.filter((j) => pick(j) && !isTerminating(j)).sort((a, b) => startOf(a) - startOf(b));
    for (const j of finished.slice(0, Math.max(0, finished.length - limit))) {
      if (await deleteJob(ctx, j)) await event(ctx, cj, { type: 'Normal', reason: 'SuccessfulDelete', message: `Deleted job ${j.metadata.name}` });
    }
  }
}

export interface CronJobControllerOptions {
  /** How a key is reconciled at the next fire time when nothing else happens (default: local requeue only). */
  wakeUps?: WakeUps;
}

async function reconcileCronJob(ns: string, name: string, ctx: ControllerContext, wakeUps: WakeUps): Promise<ReconcileResult | void> {
  const key = `${ns}/${name}`;
  const cj = await readerOf(ctx).get(cronJobs, ns, name);
  if (!cj) return void (await wakeUps.cancel(CONTROLLER_NAME, key));
  const uid = cj.metadata.uid!;
  const now = ctx.now();
  // The namespaced owner index: in the cloud one list of the namespace's Jobs per batch.
  const owned = (await readerOf(ctx).byIndex(jobs, 'owner', `${ns}/${uid}`)).filter((j) => controllerRef(j)?.uid === uid);
  const byUid = new Map(owned.map((j) => [j.metadata.uid!, j]));

  // status.active: the owned Jobs not finished; finished ones leave it (lastSuccessfulTime for completions).
  // A Job of the list that the cache does not show (yet) is looked up in the store before it is dropped,
  // as kube does (MissingJob), so a lagging cache cannot make Forbid start a second run.
  let active: Obj[] = [];
  for (const r of cj.status?.active ?? []) {
    let j = byUid.get(r.uid);
    if (!j) {
      j = await ctx.registry.get(jobs, ns, r.name).catch((e) => (is404(e) ? undefined : Promise.reject(e)));
      if (j && j.metadata.uid === r.uid) byUid.set(r.uid, j);
      else {
        await event(ctx, cj, { type: 'Warning', reason: 'MissingJob', message: `Active job went missing: ${r.name}` });
        continue;
      }
    }
    if (!isFinished(j)) active.push(r);
  }
  for (const j of owned) if (!isFinished(j) && !active.some((r) => r.uid === j.metadata.uid)) active.push(jobRef(j));
  let lastSuccessful: string | undefined;
  for (const r of cj.status?.active ?? []) {
    const j = byUid.get(r.uid);
    if (j && isFinished(j)) {
      const complete = hasJobCondition(j, 'Complete');
      await event(ctx, cj, { type: 'Normal', reason: 'SawCompletedJob', message: `Saw completed job: ${j.metadata.name}, condition: ${complete ? 'Complete' : 'Failed'}` });
    }
  }
  for (const j of owned) {
    const done = hasJobCondition(j, 'Complete') ? j.status?.completionTime : undefined;
    if (done && (!lastSuccessful || done > lastSuccessful)) lastSuccessful = done;
  }

  let scheduled: Date | undefined;
  let next: Date | undefined;
  if (!isTerminating(cj) && cj.spec?.suspend !== true) {
    const tz: string = cj.spec?.timeZone ?? 'UTC';
    const parsed = parseStandard(String(cj.spec?.schedule ?? ''));
    if (!parsed.schedule) {
      await event(ctx, cj, { type: 'Warning', reason: 'UnparseableSchedule', message: `unparseable schedule: ${JSON.stringify(cj.spec?.schedule)} : ${parsed.error}` });
    } else {
      const sched = parsed.schedule;
      const recent = mostRecentScheduleTime(cj, now, sched, tz);
      if (recent.missed > TOO_MANY_MISSED) {
        await event(ctx, cj, { type: 'Warning', reason: 'TooManyMissedTimes', message: 'too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew' });
      }
      next = nextFire(sched, now, tz);
      const t = recent.time;
      const sds = cj.spec?.startingDeadlineSeconds;
      const jobName = t ? jobNameFor(cj, t) : '';
      if (!t) {
        // nothing due
      } else if (typeof sds === 'number' && t.getTime() + sds * 1000 < now.getTime()) {
        await event(ctx, cj, { type: 'Warning', reason: 'MissSchedule', message: `Missed scheduled time to start a job: ${t.toUTCString()}` });
      } else if (owned.some((j) => j.metadata.name === jobName) || active.some((r) => r.name === jobName)) {
        // this run exists already (a redelivered event, another instance)
      } else if (cj.spec?.concurrencyPolicy === 'Forbid' && active.length > 0) {
        // kube leaves lastScheduleTime alone: the run is skipped, and the next is looked for next time
        await event(ctx, cj, { type: 'Normal', reason: 'JobAlreadyActive', message: 'Not starting job because prior execution is running and concurrency policy is Forbid' });
      } else {
        if (cj.spec?.concurrencyPolicy === 'Replace') {
          for (const r of active) {
            const j = byUid.get(r.uid);
            if (j && (await deleteJob(ctx, j))) await event(ctx, cj, { type: 'Normal', reason: 'SuccessfulDelete', message: `Deleted job ${j.metadata.name}` });
          }
          active = [];
        }
        try {
          const created = await ctx.create(jobs, ns, jobFromTemplate(cj, jobName, t, tz));
          active.push(jobRef(created));
          await event(ctx, cj, { type: 'Normal', reason: 'SuccessfulCreate', message: `Created job ${jobName}` });
        } catch (e) {
          if (!(e instanceof ApiError && e.reason === 'AlreadyExists')) {
            if (e instanceof ApiError) {
              await event(ctx, cj, { type: 'Warning', reason: 'FailedCreate', message: `Error creating job: ${e.message}` });
              return { requeueAfterMs: 10_000 };
            }
            throw e;
          }
          // A racing reconcile (another instance, a redelivered event) made this run first, after our read:
          // it is active as much as if we had made it. Left out, the status written below would drop it
          // from status.active over the racer's own write.
          const theirs = await ctx.registry.get(jobs, ns, jobName).catch((err) => (is404(err) ? undefined : Promise.reject(err)));
          if (theirs && controllerRef(theirs)?.uid === uid && !isFinished(theirs) && !active.some((r) => r.uid === theirs.metadata.uid)) active.push(jobRef(theirs));
        }
        scheduled = t;
      }
    }
  }

  // Status, from the stored CronJob: lastScheduleTime never goes back.
  try {
    await ctx.registry.guaranteedUpdate(cronJobs, ns, name, undefined, { subresource: 'status' }, (cur) => {
      if (cur.metadata.uid !== uid) return cur;
      const status: Obj = { ...(cur.status ?? {}) };
      if (active.length) status.active = active;
      else delete status.active;
      if (scheduled && !(status.lastScheduleTime && Date.parse(status.lastScheduleTime) >= scheduled.getTime())) status.lastScheduleTime = rfc3339(scheduled);
      if (lastSuccessful && !(status.lastSuccessfulTime && status.lastSuccessfulTime >= lastSuccessful)) status.lastSuccessfulTime = lastSuccessful;
      return { ...cur, status };
    });
  } catch (e) {
    if (!is404(e)) throw e;
  }
  await cleanupHistory(ctx, cj, owned);

  if (!next) return void (await wakeUps.cancel(CONTROLLER_NAME, key));
  await wakeUps.wakeAt(CONTROLLER_NAME, key, next);
  return { requeueAfterMs: Math.max(0, next.getTime() - now.getTime()) + 100 };
}

export function createCronJobController(opts: CronJobControllerOptions = {}): Controller {
  const wakeUps = opts.wakeUps ?? localWakeUps;
  return {
    name: CONTROLLER_NAME,
    identity: controllerUser('cronjob-controller'),
    watches: [cronJobs, jobs],
    keys(ev) {
      const m = ev.object.metadata;
      if (ev.resource === cronJobs) return [`${m.namespace}/${m.name}`];
      const ref = controllerRef(ev.object);
      return ref && ref.kind === 'CronJob' && ref.apiVersion === 'batch/v1' ? [`${m.namespace}/${ref.name}`] : [];
    },
    async allKeys(ctx) {
      return (await readerOf(ctx).list(cronJobs, undefined)).map((c) => `${c.metadata.namespace}/${c.metadata.name}`);
    },
    async reconcile(key, ctx) {
      const i = key.indexOf('/');
      return reconcileCronJob(key.slice(0, i), key.slice(i + 1), ctx, wakeUps);
    },
  };
}

export const cronJobController: Controller = createCronJobController();
