// The cronjob controller on the real stores (SQLite, and DynamoDB through moto), on a controllable clock:
// a `*/1 * * * *` schedule firing once per minute with kube's Job names and scheduled-timestamp
// annotation, duplicated and concurrent reconciles making one Job per run, concurrencyPolicy Forbid and
// Replace, startingDeadlineSeconds, too many missed start times, history limits, suspend, time zones.
// Then the cloud's wake-ups: EventBridge Scheduler one-time schedules, against moto's scheduler service
// (real API calls), and the controller function's handler reconciling the key a wake-up names (and, being
// the one function for every trigger, deleting a Node whose EC2 instance terminated).

import { describe, expect, it } from 'vitest';
import { CreateScheduleGroupCommand, GetScheduleCommand, ListSchedulesCommand, SchedulerClient } from '@aws-sdk/client-scheduler';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import type { ControllerContext } from '../lambdas/controllers/controller.ts';
import { createCronJobController, jobNameFor, mostRecentScheduleTime, rfc3339In, SCHEDULED_TIMESTAMP } from '../lambdas/controllers/cronjob.ts';
import { atExpression, EventBridgeWakeUps, handleWakeUp, isWakeUpEvent, scheduleName } from '../lambdas/controllers/wakeups.ts';
import { nextFire, parseStandard } from '../lambdas/machinery/cron.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import type { Backend } from '../lambdas/storage/backend.ts';
import { testStores } from './support/backends.ts';
import { FREE_TIER, MONTH_HOURS, monthlyBill, PRICES } from '../infra/cost-model.ts';
import { dynamoTestEndpoint, uniqueTableName } from './support/dynamodb.ts';
import { DynamoBackend, ensureTable } from '../lambdas/storage/dynamodb.ts';

const cronJobsRes = findResource('batch', 'v1', 'cronjobs')!;
const jobsRes = findResource('batch', 'v1', 'jobs')!;
const nsRes = findResource('', 'v1', 'namespaces')!;
const eventsRes = findResource('', 'v1', 'events')!;

const stores = await testStores('cronjob');
const MIN = 60_000;

async function newCtx(open: () => Backend, clock: { t: number }): Promise<ControllerContext> {
  const api = new ApiServer({ backend: open() });
  const ctx = { ...api.controllerContext(), now: () => new Date(clock.t) };
  try {
    await ctx.registry.create(nsRes, undefined, { metadata: { name: 'default' } });
  } catch {
    // another instance made it
  }
  return ctx;
}

function cronJobObj(name: string, spec: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name },
    spec: {
      schedule: '*/1 * * * *',
      ...spec,
      jobTemplate: { metadata: { labels: { app: name } }, spec: { template: { spec: { restartPolicy: 'OnFailure', containers: [{ name: 'c', image: 'busybox' }] } } } },
    },
  };
}

const jobsOf = async (ctx: ControllerContext, cj: KubeObject) =>
  (await ctx.registry.list(jobsRes, 'default')).items.filter((j) => j.metadata.ownerReferences?.some((r) => r.uid === cj.metadata.uid));
const getCJ = (ctx: ControllerContext, name: string) => ctx.registry.get(cronJobsRes, 'default', name);
/** The first whole minute after the CronJob was created (its first fire time for * /1). */
const firstMinute = (cj: KubeObject) => Math.floor(Date.parse(cj.metadata.creationTimestamp!) / MIN) * MIN + MIN;

async function completeJob(ctx: ControllerContext, name: string, at: number, type = 'Complete'): Promise<void> {
  const ts = new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z');
  await ctx.registry.guaranteedUpdate(jobsRes, 'default', name, undefined, { subresource: 'status' }, (cur) => ({
    ...cur,
    status: {
      ...(cur.status ?? {}),
      startTime: ts,
      ...(type === 'Complete' ? { completionTime: ts, succeeded: 1 } : { failed: 1 }),
      conditions: [{ type, status: 'True', lastTransitionTime: ts, lastProbeTime: ts, reason: 'x', message: 'x' }],
    },
  }));
}

for (const [label, makeStore, enabled] of stores) {
  describe.skipIf(!enabled)(`cronjob controller on ${label}`, () => {
    it('*/1 fires once a minute: Job named by the minute, annotated, in status.active; duplicates and racing instances make one', async () => {
      const clock = { t: Date.now() };
      const open = await makeStore();
      const ctx = await newCtx(open, clock);
      const other = await newCtx(open, clock);
      const cc = createCronJobController();
      const cc2 = createCronJobController();
      const cj = await ctx.registry.create(cronJobsRes, 'default', cronJobObj('tick'));
      // The loops' clock starts after the create (the store stamps creationTimestamp with the real time): a
      // clock read before it, across a minute's boundary, would see a fire time before the CronJob existed.
      clock.t = Date.now();
      // Before the first minute: nothing, and the key comes back at it.
      const m1 = firstMinute(cj);
      const r0 = await cc.reconcile('default/tick', ctx);
      expect(await jobsOf(ctx, cj)).toEqual([]);
      expect(r0?.requeueAfterMs).toBe(m1 - clock.t + 100);

      clock.t = m1 + 2000;
      await Promise.all([cc.reconcile('default/tick', ctx), cc2.reconcile('default/tick', other), cc.reconcile('default/tick', ctx)]);
      let jobs = await jobsOf(ctx, cj);
      expect(jobs.map((j) => j.metadata.name)).toEqual([`tick-${m1 / MIN}`]);
      expect(jobNameFor(cj, new Date(m1))).toBe(`tick-${m1 / MIN}`);
      const job = jobs[0]!;
      expect(job.metadata.annotations![SCHEDULED_TIMESTAMP]).toBe(new Date(m1).toISOString().replace('.000Z', 'Z'));
      expect(job.metadata.labels).toMatchObject({ app: 'tick' });
      expect(job.metadata.ownerReferences).toEqual([{ apiVersion: 'batch/v1', kind: 'CronJob', name: 'tick', uid: cj.metadata.uid, controller: true, blockOwnerDeletion: true }]);
      // The Job itself went through the Job kind: selector generated, defaults set.
      expect(job.spec.selector.matchLabels['batch.kubernetes.io/controller-uid']).toBe(job.metadata.uid);
      let got = await getCJ(ctx, 'tick');
      expect(got.status.lastScheduleTime).toBe(new Date(m1).toISOString().replace('.000Z', 'Z'));
      expect(got.status.active).toEqual([{ kind: 'Job', namespace: 'default', name: job.metadata.name, uid: job.metadata.uid, apiVersion: 'batch/v1', resourceVersion: job.metadata.resourceVersion }]);
      // A late duplicate of the Job's event: nothing new.
      for (const k of cc.keys({ type: 'ADDED', resource: jobsRes, object: job })) await cc.reconcile(k, other);
      expect((await jobsOf(ctx, cj)).length).toBe(1);

      // The Job completes; the next minute makes the next Job.
      await completeJob(ctx, job.metadata.name!, m1 + 30_000);
      clock.t = m1 + MIN + 1000;
      await cc.reconcile('default/tick', ctx);
      jobs = await jobsOf(ctx, cj);
      expect(jobs.map((j) => j.metadata.name).sort()).toEqual([`tick-${m1 / MIN}`, `tick-${m1 / MIN + 1}`].sort());
      got = await getCJ(ctx, 'tick');
      expect(got.status.active.map((r: any) => r.name)).toEqual([`tick-${m1 / MIN + 1}`]);
      expect(got.status.lastSuccessfulTime).toBe(new Date(m1 + 30_000).toISOString().replace('.000Z', 'Z'));
      const reasons = (await ctx.registry.list(eventsRes, 'default')).items.filter((e) => e.involvedObject.name === 'tick').map((e) => e.reason);
      expect(reasons).toContain('SuccessfulCreate');
      expect(reasons).toContain('SawCompletedJob');
    });

    it('a racer that makes the run between our read and our create: AlreadyExists, and the run stays in status.active', async () => {
      const clock = { t: Date.now() };
      const open = await makeStore();
      const ctx = await newCtx(open, clock);
      const other = await newCtx(open, clock);
      const cj = await ctx.registry.create(cronJobsRes, 'default', cronJobObj('race'));
      clock.t = firstMinute(cj) + 2000;
      // The other instance reconciles (creates the Job, writes status.active) just before our create.
      const create = ctx.create.bind(ctx);
      let raced = false;
      const slow = {
        ...ctx,
        create: (async (res, ns, obj) => {
          if (res === jobsRes && !raced) {
            raced = true;
            await createCronJobController().reconcile('default/race', other);
          }
          return create(res, ns, obj);
        }) as typeof ctx.create,
      };
      await createCronJobController().reconcile('default/race', slow);
      expect(raced).toBe(true);
      const jobs = await jobsOf(ctx, cj);
      expect(jobs).toHaveLength(1);
      expect((await getCJ(ctx, 'race')).status.active?.map((r: any) => r.uid)).toEqual([jobs[0]!.metadata.uid]);
    });

    it('Forbid skips while a run is active; Replace deletes it and starts the new run', async () => {
      const clock = { t: Date.now() };
      const ctx = await newCtx(await makeStore(), clock);
      const cc = createCronJobController();
      const forbid = await ctx.registry.create(cronJobsRes, 'default', cronJobObj('forbid', { concurrencyPolicy: 'Forbid' }));
      const replace = await ctx.registry.create(cronJobsRes, 'default', cronJobObj('replace', { concurrencyPolicy: 'Replace' }));
      const m1 = Math.max(firstMinute(forbid), firstMinute(replace));
      clock.t = m1 + 1000;
      await cc.reconcile('default/forbid', ctx);
      await cc.reconcile('default/replace', ctx);
      clock.t = m1 + MIN + 1000;
      await cc.reconcile('default/forbid', ctx);
      await cc.reconcile('default/replace', ctx);
      expect((await jobsOf(ctx, forbid)).map((j) => j.metadata.name)).toEqual([`forbid-${m1 / MIN}`]);
      const replaced = await jobsOf(ctx, replace);
      // The old run is being deleted (background propagation: gone or marked), the new one runs.
      expect(replaced.filter((j) => !j.metadata.deletionTimestamp).map((j) => j.metadata.name)).toEqual([`replace-${m1 / MIN + 1}`]);
      expect((await getCJ(ctx, 'replace')).status.active.map((r: any) => r.name)).toEqual([`replace-${m1 / MIN + 1}`]);
      expect((await getCJ(ctx, 'forbid')).status.lastScheduleTime).toBe(new Date(m1).toISOString().replace('.000Z', 'Z'));
    });

    it('history limits delete the oldest finished Jobs; suspend makes none; a missed start past startingDeadlineSeconds is skipped', async () => {
      const clock = { t: Date.now() };
      const ctx = await newCtx(await makeStore(), clock);
      const cc = createCronJobController();
      const cj = await ctx.registry.create(cronJobsRes, 'default', cronJobObj('hist', { successfulJobsHistoryLimit: 1, failedJobsHistoryLimit: 0 }));
      const m1 = firstMinute(cj);
      for (let i = 0; i < 3; i++) {
        clock.t = m1 + i * MIN + 1000;
        await cc.reconcile('default/hist', ctx);
        await completeJob(ctx, `hist-${m1 / MIN + i}`, clock.t + 500, i === 2 ? 'Failed' : 'Complete');
      }
      await cc.reconcile('default/hist', ctx);
      const left = (await jobsOf(ctx, cj)).filter((j) => !j.metadata.deletionTimestamp).map((j) => j.metadata.name);
      expect(left).toEqual([`hist-${m1 / MIN + 1}`]);

      await ctx.registry.guaranteedUpdate(cronJobsRes, 'default', 'hist', undefined, {}, (cur) => ({ ...cur, spec: { ...cur.spec, suspend: true } }));
      clock.t = m1 + 5 * MIN + 1000;
      expect(await cc.reconcile('default/hist', ctx)).toBeUndefined();
      expect((await jobsOf(ctx, cj)).filter((j) => !j.metadata.deletionTimestamp).length).toBe(1);

      const late = await ctx.registry.create(cronJobsRes, 'default', cronJobObj('late', { schedule: '0 * * * *', startingDeadlineSeconds: 10 }));
      const hour = Math.floor(Date.parse(late.metadata.creationTimestamp!) / 3_600_000) * 3_600_000 + 3_600_000;
      clock.t = hour + 30_000;
      const r = await cc.reconcile('default/late', ctx);
      expect(await jobsOf(ctx, late)).toEqual([]);
      expect(r?.requeueAfterMs).toBe(hour + 3_600_000 - clock.t + 100);
    });

    it('an active Job that went missing leaves status.active (MissingJob)', async () => {
      const clock = { t: Date.now() };
      const ctx = await newCtx(await makeStore(), clock);
      const cc = createCronJobController();
      await ctx.registry.create(cronJobsRes, 'default', cronJobObj('lost', { suspend: true }));
      await ctx.registry.guaranteedUpdate(cronJobsRes, 'default', 'lost', undefined, { subresource: 'status' }, (cur) => ({
        ...cur,
        status: { active: [{ kind: 'Job', namespace: 'default', name: 'lost-1', uid: 'gone-uid', apiVersion: 'batch/v1' }] },
      }));
      await cc.reconcile('default/lost', ctx);
      expect((await getCJ(ctx, 'lost')).status.active).toBeUndefined();
      const ev = (await ctx.registry.list(eventsRes, 'default')).items.find((e) => e.reason === 'MissingJob');
      expect(ev).toMatchObject({ type: 'Warning', message: 'Active job went missing: lost-1' });
    });

    it('too many missed start times: reported, and only the most recent runs', async () => {
      const clock = { t: Date.now() };
      const ctx = await newCtx(await makeStore(), clock);
      const cc = createCronJobController();
      const cj = await ctx.registry.create(cronJobsRes, 'default', cronJobObj('behind'));
      const m1 = firstMinute(cj);
      await ctx.registry.guaranteedUpdate(cronJobsRes, 'default', 'behind', undefined, { subresource: 'status' }, (cur) => ({
        ...cur,
        status: { lastScheduleTime: new Date(m1 - 200 * MIN).toISOString().replace('.000Z', 'Z') },
      }));
      clock.t = m1 + 1000;
      await cc.reconcile('default/behind', ctx);
      expect((await jobsOf(ctx, cj)).map((j) => j.metadata.name)).toEqual([`behind-${m1 / MIN}`]);
      const ev = (await ctx.registry.list(eventsRes, 'default')).items.find((e) => e.reason === 'TooManyMissedTimes');
      expect(ev).toMatchObject({ type: 'Warning', message: 'too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew' });
    });

    it('spec.timeZone: fires at 09:00 in America/New_York, annotated with the zone\'s offset', async () => {
      const clock = { t: Date.now() };
      const ctx = await newCtx(await makeStore(), clock);
      const cc = createCronJobController();
      const cj = await ctx.registry.create(cronJobsRes, 'default', cronJobObj('ny', { schedule: '0 9 * * *', timeZone: 'America/New_York' }));
      const fire = nextFire(parseStandard('0 9 * * *').schedule!, new Date(cj.metadata.creationTimestamp!), 'America/New_York');
      expect(rfc3339In(fire, 'America/New_York')).toMatch(/T09:00:00-0[45]:00$/);
      clock.t = fire.getTime() + 1000;
      await cc.reconcile('default/ny', ctx);
      const [job] = await jobsOf(ctx, cj);
      expect(job!.metadata.annotations![SCHEDULED_TIMESTAMP]).toBe(rfc3339In(fire, 'America/New_York'));
    });
  });
}

describe('schedules', () => {
  it('DST in America/New_York: a missing 02:30 fires at 03:30, a repeated 01:30 once', () => {
    const s = parseStandard('30 2 * * *').schedule!;
    expect(nextFire(s, new Date('2026-03-08T05:00:00Z'), 'America/New_York').toISOString()).toBe('2026-03-08T07:30:00.000Z');
    const back = parseStandard('30 1 * * *').schedule!;
    const first = nextFire(back, new Date('2026-11-01T04:00:00Z'), 'America/New_York');
    expect(first.toISOString()).toBe('2026-11-01T05:30:00.000Z');
    expect(nextFire(back, first, 'America/New_York').toISOString()).toBe('2026-11-02T06:30:00.000Z');
  });

  it('@hourly, @every and counting missed times as kube does', () => {
    const cj = { metadata: { creationTimestamp: '2026-01-01T00:00:30Z' }, spec: {}, status: {} } as KubeObject;
    const hourly = parseStandard('@hourly').schedule!;
    expect(mostRecentScheduleTime(cj, new Date('2026-01-01T05:10:00Z'), hourly, 'UTC')).toEqual({ time: new Date('2026-01-01T05:00:00Z'), missed: 5 });
    const every = parseStandard('@every 90s').schedule!;
    expect(nextFire(every, new Date('2026-01-01T00:00:00.500Z')).toISOString()).toBe('2026-01-01T00:01:30.000Z');
  });
});

describe('the cost of wake-ups (infra/cost-model.ts, npm run cost)', () => {
  it('one EventBridge Scheduler invocation and one controller-manager invocation per fire; $1.00 per million after 14 million free', () => {
    const base = { name: 'c', nodes: 3, pods: 0, churnPerHour: 0 };
    const none = monthlyBill(base);
    const minutely = monthlyBill({ ...base, cronJobFiresPerHour: 60 });
    const fires = 60 * MONTH_HOURS;
    expect(minutely.usage.schedulerInvocations).toBe(fires);
    expect(minutely.usage.lambdaRequests.controllerManager - none.usage.lambdaRequests.controllerManager).toBe(fires);
    expect(minutely.lines.find((l) => l.item === 'EventBridge Scheduler (CronJob wake-ups)')!.usd).toBeCloseTo(fires / 1e6, 6);
    expect(minutely.bySource['cronjob wake-ups']).toBeGreaterThan(fires / 1e6);
    // Within the free 14 million the Scheduler part costs nothing after the free tiers.
    const freeScheduler = Math.min(fires, FREE_TIER.schedulerInvocations) * PRICES.schedulerPerInvocation;
    expect(freeScheduler).toBeCloseTo(fires / 1e6, 6);
    const huge = monthlyBill({ ...base, cronJobFiresPerHour: 30_000 });
    expect(huge.usage.schedulerInvocations).toBeGreaterThan(FREE_TIER.schedulerInvocations);
  });
});

const moto = await dynamoTestEndpoint();

describe.skipIf(!moto)('wake-ups in the cloud: EventBridge Scheduler (moto)', () => {
  it('upserts one at() schedule per key targeting the controller function, deletes it with the CronJob', async () => {
    const client = new SchedulerClient({ endpoint: moto!.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    const group = `skiff-wakeups-${Date.now().toString(36)}`;
    await client.send(new CreateScheduleGroupCommand({ Name: group }));
    const targetArn = 'arn:aws:lambda:us-east-1:123456789012:function:skiff-controllers';
    const roleArn = 'arn:aws:iam::123456789012:role/skiff-wakeups';
    const wakeUps = new EventBridgeWakeUps({ client, group, targetArn, roleArn });

    const clock = { t: Date.now() };
    const api = new ApiServer({ backend: (await stores[0]![1]())() });
    const ctx = { ...api.controllerContext(), now: () => new Date(clock.t) };
    await ctx.registry.create(nsRes, undefined, { metadata: { name: 'default' } });
    const cc = createCronJobController({ wakeUps });
    const cj = await ctx.registry.create(cronJobsRes, 'default', cronJobObj('cloud'));
    clock.t = Date.now(); // after the create, as in the first test
    const m1 = firstMinute(cj);
    await cc.reconcile('default/cloud', ctx);
    const name = scheduleName('cronjob-controller', 'default/cloud');
    let s = await client.send(new GetScheduleCommand({ Name: name, GroupName: group }));
    expect(s.ScheduleExpression).toBe(atExpression(new Date(m1)));
    expect(s.ScheduleExpression).toBe(`at(${new Date(m1).toISOString().slice(0, 19)})`);
    expect(s.ActionAfterCompletion).toBe('DELETE');
    expect(s.FlexibleTimeWindow).toEqual({ Mode: 'OFF' });
    expect(s.Target?.Arn).toBe(targetArn);
    expect(s.Target?.RoleArn).toBe(roleArn);
    const payload = JSON.parse(s.Target!.Input!);
    expect(payload).toEqual({ skiffWakeUp: { controller: 'cronjob-controller', key: 'default/cloud' } });
    expect(isWakeUpEvent(payload)).toBe(true);

    // The wake-up at m1: the handler reconciles the key it names, the Job is made, the schedule moves on.
    clock.t = m1 + 1500;
    await handleWakeUp([cc], ctx, payload);
    expect((await jobsOf(ctx, cj)).map((j) => j.metadata.name)).toEqual([`cloud-${m1 / MIN}`]);
    s = await client.send(new GetScheduleCommand({ Name: name, GroupName: group }));
    expect(s.ScheduleExpression).toBe(atExpression(new Date(m1 + MIN)));
    expect((await client.send(new ListSchedulesCommand({ GroupName: group }))).Schedules?.length).toBe(1);

    // Deleted CronJob: its schedule goes.
    await ctx.registry.delete(cronJobsRes, 'default', 'cloud');
    await cc.reconcile('default/cloud', ctx);
    expect((await client.send(new ListSchedulesCommand({ GroupName: group }))).Schedules ?? []).toEqual([]);
  });

  it('the controller function (lambdas/controllers/lambda.ts handler), configured as the stack configures it, reconciles a wake-up and schedules the next', async () => {
    const client = new SchedulerClient({ endpoint: moto!.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    const group = `skiff-fn-${Date.now().toString(36)}`;
    await client.send(new CreateScheduleGroupCommand({ Name: group }));
    const tableName = uniqueTableName('skiff-cronjob-fn');
    await ensureTable(moto!.client, tableName);
    // The environment infra/skiff-cluster.ts gives the function, and what the Lambda runtime sets; every
    // AWS call goes to moto.
    Object.assign(process.env, {
      SKIFF_TABLE: tableName,
      SKIFF_DYNAMODB_ENDPOINT: moto!.endpoint,
      AWS_ENDPOINT_URL: moto!.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_LAMBDA_FUNCTION_NAME: 'skiff-controllers',
      SKIFF_WAKEUP_GROUP: group,
      SKIFF_WAKEUP_ROLE_ARN: 'arn:aws:iam::123456789012:role/skiff-wakeups',
    });
    const { handler } = await import('../lambdas/controllers/lambda.ts');
    const api = new ApiServer({ backend: new DynamoBackend({ client: moto!.newClient(), tableName }) });
    await api.registry.create(nsRes, undefined, { metadata: { name: 'default' } });
    // A schedule that is due now: every minute, last run two minutes ago.
    const cj = await api.registry.create(cronJobsRes, 'default', cronJobObj('fn'));
    // The function's clock is the real one: keep clear of a minute's turn while this runs.
    if (Date.now() % MIN > MIN - 10_000) await new Promise((r) => setTimeout(r, MIN - (Date.now() % MIN) + 100));
    const minute = Math.floor(Date.now() / MIN) * MIN;
    await api.registry.guaranteedUpdate(cronJobsRes, 'default', 'fn', undefined, { subresource: 'status' }, (cur) => ({
      ...cur,
      status: { lastScheduleTime: new Date(minute - 2 * MIN).toISOString().replace('.000Z', 'Z') },
    }));
    await handler({ skiffWakeUp: { controller: 'cronjob-controller', key: 'default/fn' } });
    const made = (await api.registry.list(jobsRes, 'default')).items.filter((j) => j.metadata.ownerReferences?.[0]?.uid === cj.metadata.uid);
    expect(made.map((j) => j.metadata.name)).toEqual([`fn-${minute / MIN}`]);
    const s = await client.send(new GetScheduleCommand({ Name: scheduleName('cronjob-controller', 'default/fn'), GroupName: group }));
    expect(s.Target?.Arn).toBe('arn:aws:lambda:us-east-1:123456789012:function:skiff-controllers');
    expect(s.ScheduleExpression).toBe(atExpression(new Date(minute + MIN)));

    // The same function takes EventBridge's EC2 state changes (infra's InstanceGone rule): a node's
    // instance terminated deletes its Node and the pods bound to it (lambdas/controllers/instance-events.ts).
    const nodesRes = findResource('', 'v1', 'nodes')!;
    const podsRes = findResource('', 'v1', 'pods')!;
    await api.registry.create(nodesRes, undefined, { metadata: { name: 'ip-10-0-1-9' }, spec: { providerID: 'aws:///us-east-1a/i-0f00d' } });
    await api.registry.create(podsRes, 'default', { metadata: { name: 'on-it' }, spec: { nodeName: 'ip-10-0-1-9', containers: [{ name: 'c', image: 'busybox' }] } });
    await handler({ source: 'aws.ec2', 'detail-type': 'EC2 Instance State-change Notification', detail: { 'instance-id': 'i-0f00d', state: 'terminated' } });
    expect((await api.registry.list(nodesRes, undefined)).items.map((n) => n.metadata.name)).toEqual([]);
    expect((await api.registry.list(podsRes, 'default')).items.map((p) => p.metadata.name)).toEqual([]);
    await moto!.stop();
  });
});
