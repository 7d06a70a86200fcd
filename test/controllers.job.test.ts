// The job controller on the real stores (SQLite, and DynamoDB through moto): completions and
// parallelism, counting each finished pod exactly once through the job-tracking finalizer under
// duplicated, reordered and concurrent delivery, backoffLimit with kube's back-off, Indexed completion
// mode, pod failure policy, suspend, activeDeadlineSeconds and ttlSecondsAfterFinished; time is a
// controllable clock in the controller's context.

import { describe, expect, it } from 'vitest';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import type { ControllerContext } from '../lambdas/controllers/controller.ts';
import { COMPLETION_INDEX, createJobController, formatIndexes, jobPodName, matchPodFailurePolicy, parseIndexes, TRACKING_FINALIZER } from '../lambdas/controllers/job.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import type { Backend } from '../lambdas/storage/backend.ts';
import { testStores } from './support/backends.ts';
import type { WakeUps } from '../lambdas/controllers/wakeups.ts';

const jobsRes = findResource('batch', 'v1', 'jobs')!;
const podsRes = findResource('', 'v1', 'pods')!;
const nsRes = findResource('', 'v1', 'namespaces')!;
const eventsRes = findResource('', 'v1', 'events')!;

const stores = await testStores('job');

interface Clock {
  t: number;
}

async function newCtx(open: () => Backend, clock: Clock): Promise<ControllerContext> {
  const api = new ApiServer({ backend: open() });
  const ctx = { ...api.controllerContext(), now: () => new Date(clock.t) };
  try {
    await ctx.registry.create(nsRes, undefined, { metadata: { name: 'default' } });
  } catch {
    // another instance over the same store made it
  }
  return ctx;
}

function jobObj(name: string, spec: Record<string, unknown> = {}, podSpec: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name },
    spec: { ...spec, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox' }], ...podSpec } } },
  };
}

const podsOf = async (ctx: ControllerContext, job: KubeObject) =>
  (await ctx.registry.list(podsRes, 'default')).items.filter((p) => p.metadata.ownerReferences?.some((r) => r.uid === job.metadata.uid));
const getJob = (ctx: ControllerContext, name: string) => ctx.registry.get(jobsRes, 'default', name);
const cond = (job: KubeObject, type: string) => (job.status?.conditions ?? []).find((c: any) => c.type === type);

/** Writes a pod's phase (and a terminated container with an exit code and finish time) as a kubelet would. */
async function finish(ctx: ControllerContext, pod: KubeObject, phase: 'Succeeded' | 'Failed', at: number, exitCode = phase === 'Succeeded' ? 0 : 1): Promise<void> {
  const ts = new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z');
  await ctx.registry.guaranteedUpdate(podsRes, 'default', pod.metadata.name!, undefined, { subresource: 'status' }, (cur) => ({
    ...cur,
    status: { phase, containerStatuses: [{ name: 'c', image: 'busybox', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode, startedAt: ts, finishedAt: ts } } }] },
  }));
}

const activePods = (list: KubeObject[]) => list.filter((p) => !p.metadata.deletionTimestamp && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed');

describe('pod failure policy matching (matchPodFailurePolicy)', () => {
  const jobWith = (rules: unknown[]) => ({ metadata: { name: 'j' }, spec: { podFailurePolicy: { rules } } }) as KubeObject;
  const pod = (status: Record<string, unknown>) => ({ metadata: { name: 'p', namespace: 'ns' }, status }) as KubeObject;
  it('first matching rule wins; onPodConditions, NotIn, containerName and exit code 0 as kube', () => {
    const job = jobWith([
      { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
      { action: 'FailJob', onExitCodes: { containerName: 'main', operator: 'NotIn', values: [1, 2] } },
      { action: 'Count', onExitCodes: { operator: 'In', values: [1] } },
    ]);
    const term = (name: string, exitCode: number) => ({ name, state: { terminated: { exitCode } } });
    expect(matchPodFailurePolicy(job, pod({ conditions: [{ type: 'DisruptionTarget', status: 'True' }], containerStatuses: [term('main', 9)] }))).toEqual({
      action: 'Ignore',
      message: 'Pod ns/p has condition DisruptionTarget matching Ignore rule at index 0',
    });
    expect(matchPodFailurePolicy(job, pod({ containerStatuses: [term('main', 9)] }))).toEqual({
      action: 'FailJob',
      message: 'Container main for pod ns/p failed with exit code 9 matching FailJob rule at index 1',
    });
    // Another container's exit code does not match a rule naming "main"; exit code 0 never matches.
    expect(matchPodFailurePolicy(job, pod({ containerStatuses: [term('side', 9), term('main', 0)] }))).toBeUndefined();
    expect(matchPodFailurePolicy(job, pod({ containerStatuses: [term('main', 1)] }))?.action).toBe('Count');
  });
});

for (const [label, makeStore, enabled] of stores) {
  describe.skipIf(!enabled)(`job controller on ${label}`, () => {
    it('runs completions 3 at parallelism 2 to Complete, counting each pod once', async () => {
      const clock = { t: Date.parse('2026-01-01T00:00:00Z') };
      const ctx = await newCtx(await makeStore(), clock);
      const jc = createJobController();
      const job = await ctx.registry.create(jobsRes, 'default', jobObj('pi', { completions: 3, parallelism: 2 }));
      await jc.reconcile('default/pi', ctx);
      let pods = await podsOf(ctx, job);
      expect(pods.map((p) => p.metadata.name).sort()).toEqual([jobPodName(job, 0), jobPodName(job, 1)].sort());
      for (const p of pods) {
        expect(p.metadata.finalizers).toEqual([TRACKING_FINALIZER]);
        expect(p.metadata.labels).toMatchObject({ 'batch.kubernetes.io/job-name': 'pi', 'job-name': 'pi', 'controller-uid': job.metadata.uid });
        expect(p.metadata.ownerReferences).toEqual([{ apiVersion: 'batch/v1', kind: 'Job', name: 'pi', uid: job.metadata.uid, controller: true, blockOwnerDeletion: true }]);
      }
      let got = await getJob(ctx, 'pi');
      expect(got.status).toEqual({ active: 2, ready: 0, terminating: 0, startTime: '2026-01-01T00:00:00Z', uncountedTerminatedPods: {} });
      // The same reconcile again (a duplicate event) creates nothing.
      await jc.reconcile('default/pi', ctx);
      expect((await podsOf(ctx, job)).length).toBe(2);

      clock.t += 5000;
      const done = pods[0]!.metadata.uid;
      await finish(ctx, pods[0]!, 'Succeeded', clock.t);
      for (let i = 0; i < 3; i++) await jc.reconcile('default/pi', ctx);
      got = await getJob(ctx, 'pi');
      expect(got.status).toMatchObject({ active: 2, succeeded: 1, uncountedTerminatedPods: {} });
      expect(got.status.failed).toBeUndefined();
      pods = await podsOf(ctx, job);
      expect(pods.length).toBe(3);
      const counted = pods.find((p) => p.metadata.uid === done)!;
      expect(counted.status.phase).toBe('Succeeded');
      expect(counted.metadata.finalizers).toBeUndefined();
      expect(activePods(pods).every((p) => p.metadata.finalizers?.includes(TRACKING_FINALIZER))).toBe(true);

      clock.t += 5000;
      for (const p of activePods(pods)) await finish(ctx, p, 'Succeeded', clock.t);
      for (let i = 0; i < 3; i++) await jc.reconcile('default/pi', ctx);
      got = await getJob(ctx, 'pi');
      expect(got.status).toMatchObject({ ready: 0, terminating: 0, succeeded: 3, completionTime: '2026-01-01T00:00:10Z' });
      expect([got.status.active, got.status.failed]).toEqual([undefined, undefined]);
      expect(cond(got, 'Complete')).toMatchObject({ status: 'True', reason: 'CompletionsReached', message: 'Reached expected number of succeeded pods' });
      expect(cond(got, 'SuccessCriteriaMet')).toMatchObject({ status: 'True', reason: 'CompletionsReached' });
      expect((await podsOf(ctx, job)).every((p) => !p.metadata.finalizers)).toBe(true);
      const reasons = (await ctx.registry.list(eventsRes, 'default')).items.map((e) => e.reason);
      expect(reasons.filter((r) => r === 'SuccessfulCreate').length).toBe(3);
      expect(reasons).toContain('Completed');
    });

    it('two instances reconciling at once, with duplicated and stale deliveries, create and count exactly completions', async () => {
      const clock = { t: Date.parse('2026-01-01T00:00:00Z') };
      const open = await makeStore();
      const a = await newCtx(open, clock);
      const b = await newCtx(open, clock);
      const ja = createJobController();
      const jb = createJobController();
      const job = await a.registry.create(jobsRes, 'default', jobObj('race', { completions: 4, parallelism: 4 }));
      await Promise.all([ja.reconcile('default/race', a), jb.reconcile('default/race', b), ja.reconcile('default/race', a)]);
      const pods = await podsOf(a, job);
      expect(pods.length).toBe(4);
      clock.t += 1000;
      for (const p of pods) await finish(a, p, 'Succeeded', clock.t);
      // Many reconciles racing over the same finished pods: each is counted once.
      for (let round = 0; round < 3; round++) {
        await Promise.all([ja.reconcile('default/race', a), jb.reconcile('default/race', b), jb.reconcile('default/race', b), ja.reconcile('default/race', a)]);
      }
      const got = await getJob(a, 'race');
      expect(got.status.succeeded).toBe(4);
      expect(got.status.failed).toBeUndefined();
      expect(cond(got, 'Complete')?.status).toBe('True');
      expect((await podsOf(a, job)).length).toBe(4);
      // A late, out-of-order pod event after completion changes nothing.
      for (const k of ja.keys({ type: 'MODIFIED', resource: podsRes, object: pods[0]! })) await ja.reconcile(k, a);
      expect((await getJob(a, 'race')).status).toMatchObject({ succeeded: 4 });
      expect((await getJob(a, 'race')).status.failed).toBeUndefined();
    });

    it('backs off 10 s after a failure (kube: doubling, at most 6 min), and fails the Job past backoffLimit', async () => {
      const clock = { t: Date.parse('2026-01-01T00:00:00Z') };
      const ctx = await newCtx(await makeStore(), clock);
      const jc = createJobController();
      const job = await ctx.registry.create(jobsRes, 'default', jobObj('flaky', { backoffLimit: 1 }));
      await jc.reconcile('default/flaky', ctx);
      const [first] = await podsOf(ctx, job);
      await finish(ctx, first!, 'Failed', clock.t);
      const r = await jc.reconcile('default/flaky', ctx);
      // The replacement waits 10 s after the failure.
      expect(activePods(await podsOf(ctx, job)).length).toBe(0);
      expect(r?.requeueAfterMs).toBe(10_000);
      expect((await getJob(ctx, 'flaky')).status).toMatchObject({ failed: 1, ready: 0 });
      clock.t += 10_000;
      await jc.reconcile('default/flaky', ctx);
      const second = activePods(await podsOf(ctx, job));
      expect(second.length).toBe(1);
      await finish(ctx, second[0]!, 'Failed', clock.t);
      await jc.reconcile('default/flaky', ctx);
      await jc.reconcile('default/flaky', ctx);
      const got = await getJob(ctx, 'flaky');
      expect(got.status).toMatchObject({ failed: 2, ready: 0, terminating: 0 });
      expect([got.status.active, got.status.succeeded]).toEqual([undefined, undefined]);
      expect(cond(got, 'FailureTarget')).toMatchObject({ status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' });
      expect(cond(got, 'Failed')).toMatchObject({ status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' });
      expect((await podsOf(ctx, job)).length).toBe(2);
    });

    it('Indexed: one pod per index with its index annotation, label, hostname and JOB_COMPLETION_INDEX', async () => {
      const clock = { t: Date.parse('2026-01-01T00:00:00Z') };
      const ctx = await newCtx(await makeStore(), clock);
      const jc = createJobController();
      const job = await ctx.registry.create(jobsRes, 'default', jobObj('idx', { completions: 3, parallelism: 2, completionMode: 'Indexed' }));
      await jc.reconcile('default/idx', ctx);
      let pods = await podsOf(ctx, job);
      expect(pods.map((p) => p.metadata.annotations?.[COMPLETION_INDEX]).sort()).toEqual(['0', '1']);
      for (const p of pods) {
        const i = p.metadata.annotations![COMPLETION_INDEX];
        expect(p.metadata.name).toMatch(new RegExp(`^idx-${i}-[a-z0-9]{5}$`));
        expect(p.metadata.labels![COMPLETION_INDEX]).toBe(i);
        expect(p.spec.hostname).toBe(`idx-${i}`);
        expect(p.spec.containers[0].env).toContainEqual({ name: 'JOB_COMPLETION_INDEX', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: `metadata.annotations['${COMPLETION_INDEX}']` } } });
      }
      const one = pods.find((p) => p.metadata.annotations![COMPLETION_INDEX] === '1')!;
      await finish(ctx, one, 'Succeeded', clock.t);
      await jc.reconcile('default/idx', ctx);
      let got = await getJob(ctx, 'idx');
      expect(got.status).toMatchObject({ completedIndexes: '1', succeeded: 1 });
      pods = activePods(await podsOf(ctx, job));
      expect(pods.map((p) => p.metadata.annotations![COMPLETION_INDEX]).sort()).toEqual(['0', '2']);
      // Index 0 fails: it is retried under a new name, same index.
      const zero = pods.find((p) => p.metadata.annotations![COMPLETION_INDEX] === '0')!;
      await finish(ctx, zero, 'Failed', clock.t);
      await jc.reconcile('default/idx', ctx);
      clock.t += 10_000;
      await jc.reconcile('default/idx', ctx);
      pods = activePods(await podsOf(ctx, job));
      const retry = pods.find((p) => p.metadata.annotations![COMPLETION_INDEX] === '0')!;
      expect(retry.metadata.name).not.toBe(zero.metadata.name);
      for (const p of pods) await finish(ctx, p, 'Succeeded', clock.t);
      await jc.reconcile('default/idx', ctx);
      await jc.reconcile('default/idx', ctx);
      got = await getJob(ctx, 'idx');
      expect(got.status).toMatchObject({ completedIndexes: '0-2', succeeded: 3, failed: 1 });
      expect(cond(got, 'Complete')?.status).toBe('True');
      expect(formatIndexes(parseIndexes('0,2-4,7', 8))).toBe('0,2-4,7');
      // Only the Job's own indexes: a status stored before validation refused it may name any.
      expect(formatIndexes(parseIndexes('0,2-4,7-999999999,2000000000-2000000005', 5))).toBe('0,2-4');
    });

    it('Indexed: two pods succeeding for one index count once (succeeded counts indexes)', async () => {
      const clock = { t: Date.parse('2026-01-01T00:00:00Z') };
      const ctx = await newCtx(await makeStore(), clock);
      const jc = createJobController();
      const job = await ctx.registry.create(jobsRes, 'default', jobObj('dup', { completions: 2, parallelism: 1, completionMode: 'Indexed' }));
      await jc.reconcile('default/dup', ctx);
      const [first] = await podsOf(ctx, job);
      // A second pod of index 0 (as a racing instance could have made before seeing the first).
      const twin = structuredClone(first!);
      twin.metadata = { ...first!.metadata, name: `${first!.metadata.name}-twin` };
      for (const k of ['uid', 'resourceVersion', 'creationTimestamp'] as const) delete twin.metadata[k];
      delete twin.status;
      await ctx.registry.create(podsRes, 'default', twin);
      for (const p of await podsOf(ctx, job)) await finish(ctx, p, 'Succeeded', clock.t);
      await jc.reconcile('default/dup', ctx);
      await jc.reconcile('default/dup', ctx);
      const got = await getJob(ctx, 'dup');
      expect(got.status).toMatchObject({ completedIndexes: '0', succeeded: 1 });
      expect(activePods(await podsOf(ctx, job)).map((p) => p.metadata.annotations![COMPLETION_INDEX])).toEqual(['1']);
    });

    it('pod failure policy: Ignore does not count, FailJob fails the Job at once with kube\'s message', async () => {
      const clock = { t: Date.parse('2026-01-01T00:00:00Z') };
      const ctx = await newCtx(await makeStore(), clock);
      const jc = createJobController();
      const job = await ctx.registry.create(
        jobsRes,
        'default',
        jobObj('pfp', {
          backoffLimit: 6,
          podFailurePolicy: {
            rules: [
              { action: 'FailJob', onExitCodes: { containerName: 'c', operator: 'In', values: [42] } },
              { action: 'Ignore', onExitCodes: { operator: 'In', values: [7] } },
            ],
          },
        }),
      );
      await jc.reconcile('default/pfp', ctx);
      const [p1] = await podsOf(ctx, job);
      await finish(ctx, p1!, 'Failed', clock.t, 7);
      await jc.reconcile('default/pfp', ctx);
      expect((await getJob(ctx, 'pfp')).status.failed).toBeUndefined();
      const [p2] = activePods(await podsOf(ctx, job));
      expect(p2).toBeDefined();
      await finish(ctx, p2!, 'Failed', clock.t, 42);
      await jc.reconcile('default/pfp', ctx);
      await jc.reconcile('default/pfp', ctx);
      const got = await getJob(ctx, 'pfp');
      expect(got.status.failed).toBe(1);
      const msg = `Container c for pod default/${p2!.metadata.name} failed with exit code 42 matching FailJob rule at index 0`;
      expect(cond(got, 'Failed')).toMatchObject({ status: 'True', reason: 'PodFailurePolicy', message: msg });
    });

    it('suspend deletes the running pods (Suspended), resume starts again; activeDeadlineSeconds fails it; TTL deletes it', async () => {
      const clock = { t: Date.parse('2026-01-01T00:00:00Z') };
      const ctx = await newCtx(await makeStore(), clock);
      const jc = createJobController();
      const job = await ctx.registry.create(jobsRes, 'default', jobObj('sus', { parallelism: 2, completions: 2, activeDeadlineSeconds: 60, ttlSecondsAfterFinished: 30 }));
      await jc.reconcile('default/sus', ctx);
      expect(activePods(await podsOf(ctx, job)).length).toBe(2);
      await ctx.registry.guaranteedUpdate(jobsRes, 'default', 'sus', undefined, {}, (cur) => ({ ...cur, spec: { ...cur.spec, suspend: true } }));
      await jc.reconcile('default/sus', ctx);
      await jc.reconcile('default/sus', ctx);
      let got = await getJob(ctx, 'sus');
      expect(cond(got, 'Suspended')).toMatchObject({ status: 'True', reason: 'JobSuspended', message: 'Job suspended' });
      expect([got.status.active, got.status.failed]).toEqual([undefined, undefined]);
      expect(await podsOf(ctx, job)).toEqual([]);

      clock.t += 1000;
      await ctx.registry.guaranteedUpdate(jobsRes, 'default', 'sus', undefined, {}, (cur) => ({ ...cur, spec: { ...cur.spec, suspend: false } }));
      const r = await jc.reconcile('default/sus', ctx);
      got = await getJob(ctx, 'sus');
      expect(cond(got, 'Suspended')).toMatchObject({ status: 'False', reason: 'JobResumed', message: 'Job resumed' });
      expect(got.status.startTime).toBe('2026-01-01T00:00:01Z');
      expect(activePods(await podsOf(ctx, job)).length).toBe(2);
      expect(r?.requeueAfterMs).toBe(60_000);
      const reasons = (await ctx.registry.list(eventsRes, 'default')).items.filter((e) => e.involvedObject.name === 'sus').map((e) => e.reason);
      expect(reasons).toEqual(expect.arrayContaining(['Suspended', 'Resumed']));

      clock.t += 60_000;
      await jc.reconcile('default/sus', ctx);
      await jc.reconcile('default/sus', ctx);
      got = await getJob(ctx, 'sus');
      expect(cond(got, 'Failed')).toMatchObject({ status: 'True', reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' });
      expect(activePods(await podsOf(ctx, job))).toEqual([]);

      const r2 = await jc.reconcile('default/sus', ctx);
      expect(r2?.requeueAfterMs).toBe(30_000);
      clock.t += 30_000;
      await jc.reconcile('default/sus', ctx);
      await expect(getJob(ctx, 'sus')).rejects.toMatchObject({ code: 404 });
    });

    it('asks for a wake-up when its back-off ends (the cloud has no requeue between events)', async () => {
      const clock = { t: Date.parse('2026-01-01T00:00:00Z') };
      const ctx = await newCtx(await makeStore(), clock);
      const asked: [string, string, string][] = [];
      const wakeUps: WakeUps = {
        async wakeAt(controller, key, at) {
          asked.push([controller, key, at.toISOString()]);
        },
        async cancel() {},
      };
      const jc = createJobController({ wakeUps });
      const job = await ctx.registry.create(jobsRes, 'default', jobObj('wake', { backoffLimit: 3 }));
      await jc.reconcile('default/wake', ctx);
      expect(asked).toEqual([]);
      const [p] = await podsOf(ctx, job);
      await finish(ctx, p!, 'Failed', clock.t);
      await jc.reconcile('default/wake', ctx);
      expect(asked).toEqual([['job-controller', 'default/wake', '2026-01-01T00:00:10.000Z']]);
    });

    it('a deleted Job\'s pods lose the tracking finalizer so their deletion completes', async () => {
      const clock = { t: Date.parse('2026-01-01T00:00:00Z') };
      const ctx = await newCtx(await makeStore(), clock);
      const jc = createJobController();
      const job = await ctx.registry.create(jobsRes, 'default', jobObj('gone', { parallelism: 2, completions: 2 }));
      await jc.reconcile('default/gone', ctx);
      const pods = await podsOf(ctx, job);
      await ctx.registry.delete(jobsRes, 'default', 'gone');
      // The garbage collector deletes the dependents: they stay, terminating, held by the finalizer.
      for (const p of pods) await ctx.registry.delete(podsRes, 'default', p.metadata.name!, { gracePeriodSeconds: 0 });
      const held = await podsOf(ctx, job);
      expect(held.length).toBe(2);
      const keys = jc.keys({ type: 'MODIFIED', resource: podsRes, object: held[0]! });
      expect(keys).toEqual([`default/gone#${job.metadata.uid}`]);
      await jc.reconcile(keys[0]!, ctx);
      expect(await podsOf(ctx, job)).toEqual([]);
    });

    it('a Job deleted with orphan propagation (the default for Jobs): its orphaned pods lose the tracking finalizer, as kube\'s orphan queue', async () => {
      const clock = { t: Date.parse('2026-01-01T00:00:00Z') };
      const ctx = await newCtx(await makeStore(), clock);
      const jc = createJobController();
      const job = await ctx.registry.create(jobsRes, 'default', jobObj('orphaner', { parallelism: 2, completions: 2 }));
      await jc.reconcile('default/orphaner', ctx);
      const names = (await podsOf(ctx, job)).map((p) => p.metadata.name!);
      expect(names.length).toBe(2);
      await ctx.registry.delete(jobsRes, 'default', 'orphaner');
      // The garbage collector orphans them: their owner reference goes, the finalizer stays.
      for (const n of names) {
        await ctx.registry.guaranteedUpdate(podsRes, 'default', n, undefined, {}, (cur) => ({ ...cur, metadata: { ...cur.metadata, ownerReferences: [] } }));
      }
      const orphan = await ctx.registry.get(podsRes, 'default', names[0]!);
      expect(orphan.metadata.finalizers).toEqual([TRACKING_FINALIZER]);
      const keys = jc.keys({ type: 'MODIFIED', resource: podsRes, object: orphan });
      expect(keys).toEqual([`orphan-pod:default/${names[0]}`]);
      // Duplicated delivery is a no-op.
      await jc.reconcile(keys[0]!, ctx);
      await jc.reconcile(keys[0]!, ctx);
      expect((await ctx.registry.get(podsRes, 'default', names[0]!)).metadata.finalizers).toBeUndefined();
      // A pod another Job adopted meanwhile keeps its finalizer.
      const other = await ctx.registry.create(jobsRes, 'default', jobObj('adopter', { parallelism: 1, completions: 1 }));
      await ctx.registry.guaranteedUpdate(podsRes, 'default', names[1]!, undefined, {}, (cur) => ({
        ...cur,
        metadata: { ...cur.metadata, ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: 'adopter', uid: other.metadata.uid!, controller: true, blockOwnerDeletion: true }] },
      }));
      await jc.reconcile(`orphan-pod:default/${names[1]}`, ctx);
      expect((await ctx.registry.get(podsRes, 'default', names[1]!)).metadata.finalizers).toEqual([TRACKING_FINALIZER]);
      // Deleting the released pod now completes.
      await ctx.registry.delete(podsRes, 'default', names[0]!, { gracePeriodSeconds: 0 });
      await expect(ctx.registry.get(podsRes, 'default', names[0]!)).rejects.toMatchObject({ code: 404 });
    });
  });
}
