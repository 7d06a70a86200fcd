// batch/v1 Job and CronJob kinds (lambdas/kinds/batch/): kube 1.32's defaults, the generated selector,
// validation with kube-apiserver's exact messages (create and update), and kubectl's table cells.

import { describe, expect, it } from 'vitest';
import { cronJob } from '../lambdas/kinds/batch/cronjob.ts';
import { job } from '../lambdas/kinds/batch/job.ts';
import { apiVersionOf, type KindStrategy } from '../lambdas/kinds/kind.ts';
import { parseStandard } from '../lambdas/machinery/cron.ts';
import { ApiError } from '../lambdas/machinery/status.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { validateObject } from '../lambdas/machinery/validation.ts';

const UID = '0e3a53b0-3d3c-4b8e-a0a4-2f9f3bd2d0a1';

function create(kind: KindStrategy, input: KubeObject): KubeObject {
  const o = structuredClone(input);
  o.apiVersion = apiVersionOf(kind.info);
  o.kind = kind.info.kind;
  o.metadata = { namespace: 'default', uid: UID, creationTimestamp: '2026-01-01T00:00:00Z', ...o.metadata };
  kind.prepareForCreate?.(o);
  kind.defaults?.(o);
  validateObject(kind, o);
  return o;
}

function update(kind: KindStrategy, old: KubeObject, change: (o: KubeObject) => void): KubeObject {
  const o = structuredClone(old);
  change(o);
  kind.prepareForUpdate?.(o, old);
  kind.defaults?.(o);
  validateObject(kind, o, old);
  return o;
}

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof ApiError) return e.message;
    throw e;
  }
  throw new Error('expected a refusal');
}

const podSpec = (extra: Record<string, unknown> = {}) => ({ restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox' }], ...extra });
const jobObj = (spec: Record<string, unknown> = {}, podExtra: Record<string, unknown> = {}): KubeObject => ({
  metadata: { name: 'pi' },
  spec: { template: { spec: podSpec(podExtra) }, ...spec },
});
const cronObj = (spec: Record<string, unknown> = {}): KubeObject => ({
  metadata: { name: 'hello' },
  spec: { schedule: '*/5 * * * *', jobTemplate: { spec: { template: { spec: podSpec() } } }, ...spec },
});

describe('Job', () => {
  it('generates the selector and the template labels from the uid, and fills kube\'s defaults', () => {
    const j = create(job, jobObj());
    const gen = { 'batch.kubernetes.io/controller-uid': UID, 'batch.kubernetes.io/job-name': 'pi', 'controller-uid': UID, 'job-name': 'pi' };
    expect(j.spec.selector).toEqual({ matchLabels: { 'batch.kubernetes.io/controller-uid': UID } });
    expect(j.spec.template.metadata.labels).toEqual(gen);
    expect(j.metadata.labels).toEqual(gen);
    expect(j.spec).toMatchObject({ parallelism: 1, completions: 1, backoffLimit: 6, completionMode: 'NonIndexed', suspend: false, manualSelector: false, podReplacementPolicy: 'TerminatingOrFailed' });
    // Only parallelism given: completions stays unset (a work queue).
    expect(create(job, jobObj({ parallelism: 3 })).spec.completions).toBeUndefined();
    // A pod failure policy: replacements wait for Failed; onPodConditions status defaults to True.
    const pfp = create(job, jobObj({ podFailurePolicy: { rules: [{ action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget' }] }] } }));
    expect(pfp.spec.podReplacementPolicy).toBe('Failed');
    expect(pfp.spec.podFailurePolicy.rules[0].onPodConditions[0].status).toBe('True');
    // A manual selector is the client's own.
    const manualJob = jobObj({ manualSelector: true, selector: { matchLabels: { app: 'x' } } });
    manualJob.spec.template.metadata = { labels: { app: 'x' } };
    const manual = create(job, manualJob);
    expect(manual.spec.selector).toEqual({ matchLabels: { app: 'x' } });
    expect(manual.spec.template.metadata.labels).toEqual({ app: 'x' });
    delete manualJob.spec.template.metadata;
    expect(refusal(() => create(job, manualJob))).toBe('Job.batch "pi" is invalid: spec.template.metadata.labels: Invalid value: {}: `selector` does not match template `labels`');
  });

  it('refuses what kube-apiserver refuses, with its messages', () => {
    const cases: [KubeObject, string][] = [
      [jobObj({}, { restartPolicy: 'Always' }), 'spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"'],
      [jobObj({ parallelism: -1, completions: -2, backoffLimit: -1, activeDeadlineSeconds: -5 }), ''],
      [jobObj({ completionMode: 'Indexed', parallelism: 2 }), 'spec.completions: Required value: when completion mode is Indexed'],
      [jobObj({ completionMode: 'Sometimes' }), 'spec.completionMode: Unsupported value: "Sometimes": supported values: "NonIndexed", "Indexed"'],
      [jobObj({ podFailurePolicy: { rules: [] } }, { restartPolicy: 'OnFailure' }), 'spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is supported when podFailurePolicy is specified'],
      [
        jobObj({ podFailurePolicy: { rules: [{ action: 'FailJob', onExitCodes: { operator: 'In', values: [0, 2, 1] } }] } }),
        'spec.podFailurePolicy.rules[0].onExitCodes.values[0]: Invalid value: 0: must not be 0 for the In operator',
      ],
      [jobObj({ podFailurePolicy: { rules: [{ action: 'Explode', onPodConditions: [{ type: 'X', status: 'True' }] }] } }), 'spec.podFailurePolicy.rules[0].action: Unsupported value: "Explode": supported values: "Count", "FailIndex", "FailJob", "Ignore"'],
      [jobObj({ backoffLimitPerIndex: 1 }), 'spec.backoffLimitPerIndex: Invalid value: 1: requires indexed completion mode'],
      [{ ...jobObj({ completionMode: 'Indexed', completions: 10 }), metadata: { name: 'a'.repeat(62) } }, `metadata.name: Invalid value: "${'a'.repeat(62)}": will not able to create pod with invalid DNS label: ${'a'.repeat(62)}-9`],
    ];
    for (const [o, msg] of cases) {
      const m = refusal(() => create(job, o));
      expect(m.startsWith('Job.batch "')).toBe(true);
      if (msg) expect(m).toContain(msg);
    }
    expect(refusal(() => create(job, jobObj({ parallelism: -1, completions: -2, backoffLimit: -1, activeDeadlineSeconds: -5 })))).toBe(
      'Job.batch "pi" is invalid: [spec.parallelism: Invalid value: -1: must be greater than or equal to 0, spec.completions: Invalid value: -2: must be greater than or equal to 0, spec.activeDeadlineSeconds: Invalid value: -5: must be greater than or equal to 0, spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0]',
    );
    // A selector that does not select the generated labels.
    expect(refusal(() => create(job, jobObj({ selector: { matchLabels: { 'batch.kubernetes.io/controller-uid': 'other' } } })))).toContain(
      'spec.selector: Invalid value: {"matchLabels":{"batch.kubernetes.io/controller-uid":"other"}}: `selector` not auto-generated',
    );
  });

  it('on update: completions and the template are immutable (the template\'s scheduling directives not while suspended and never started)', () => {
    const j = create(job, jobObj({ completions: 2 }));
    expect(refusal(() => update(job, j, (o) => (o.spec.completions = 3)))).toBe('Job.batch "pi" is invalid: spec.completions: Invalid value: 3: field is immutable');
    expect(refusal(() => update(job, j, (o) => (o.spec.template.spec.containers[0].image = 'perl')))).toMatch(/^Job\.batch "pi" is invalid: spec\.template: Invalid value: .*: field is immutable$/);
    // Parallelism may change, and so may suspend.
    expect(update(job, j, (o) => (o.spec.parallelism = 5)).spec.parallelism).toBe(5);
    const suspended = create(job, jobObj({ suspend: true }));
    const moved = update(job, suspended, (o) => (o.spec.template.spec.nodeSelector = { zone: 'a' }));
    expect(moved.spec.template.spec.nodeSelector).toEqual({ zone: 'a' });
    expect(refusal(() => update(job, suspended, (o) => (o.spec.template.spec.containers[0].image = 'perl')))).toContain('spec.template: Invalid value');
    // Indexed: completions may change together with parallelism (elastic Indexed Jobs).
    const idx = create(job, jobObj({ completionMode: 'Indexed', completions: 3, parallelism: 3 }));
    expect(update(job, idx, (o) => Object.assign(o.spec, { completions: 5, parallelism: 5 })).spec.completions).toBe(5);
    expect(refusal(() => update(job, idx, (o) => (o.spec.completions = 5)))).toContain('spec.completions: Invalid value: 5: can only be modified in tandem with spec.parallelism');
  });

  it("status: completedIndexes changed must be kube's format, within completions, and only on an Indexed Job", () => {
    // Found by review: "0-999999,1000000-1999999,…" (40 ranges, 700 bytes) written through the status
    // subresource cost the Job controller seconds and gigabytes each pass.
    const statusUpdate = (old: KubeObject, completedIndexes: string) => {
      const o = structuredClone(old);
      o.status = { ...old.status, completedIndexes };
      job.prepareForUpdate?.(o, old, 'status');
      validateObject(job, o, old, { subresource: 'status' });
      return o;
    };
    const idx = create(job, jobObj({ completionMode: 'Indexed', completions: 10, parallelism: 2 }));
    expect(statusUpdate(idx, '0,2-4,9').status.completedIndexes).toBe('0,2-4,9');
    const msg = (ci: string, why: string) => `Job.batch "pi" is invalid: status.completedIndexes: Invalid value: ${JSON.stringify(ci)}: error parsing completedIndexes: ${why}`;
    const huge = Array.from({ length: 40 }, (_, i) => `${i * 1_000_000}-${i * 1_000_000 + 999_999}`).join(',');
    expect(refusal(() => statusUpdate(idx, huge))).toBe(msg(huge, 'too large index: "999999"'));
    expect(refusal(() => statusUpdate(idx, '0-10'))).toBe(msg('0-10', 'too large index: "10"'));
    expect(refusal(() => statusUpdate(idx, '3,1'))).toBe(msg('3,1', 'non-increasing order, previous: 3, current: 1'));
    expect(refusal(() => statusUpdate(idx, '2-2'))).toBe(msg('2-2', 'non-increasing order, previous: 2, current: 2'));
    expect(refusal(() => statusUpdate(idx, '1-2-3'))).toBe(msg('1-2-3', `the fragment "1-2-3" violates the requirement that an index interval can have at most two parts separated by '-'`));
    expect(refusal(() => statusUpdate(idx, 'a'))).toBe(msg('a', 'cannot convert string to integer for index: "a"'));
    const plain = create(job, jobObj({ completions: 3 }));
    expect(refusal(() => statusUpdate(plain, '0'))).toBe('Job.batch "pi" is invalid: status.completedIndexes: Invalid value: "0": cannot set non-empty completedIndexes when non-indexed completion mode');
  });

  it('prints NAME STATUS COMPLETIONS DURATION AGE (wide: CONTAINERS IMAGES SELECTOR) as kubectl shows them', () => {
    const names = job.table!.columns().map((c) => `${c.name}${c.priority ? '*' : ''}`);
    expect(names).toEqual(['Name', 'Status', 'Completions', 'Duration', 'Age', 'Containers*', 'Images*', 'Selector*']);
    const now = new Date('2026-01-01T00:10:00Z');
    const j = create(job, jobObj({ completions: 3 }));
    expect(job.table!.print(j, now).cells).toEqual(['pi', 'Running', '0/3', '', '10m', 'c', 'busybox', `batch.kubernetes.io/controller-uid=${UID}`]);
    const done = { ...j, status: { succeeded: 3, startTime: '2026-01-01T00:00:00Z', completionTime: '2026-01-01T00:01:05Z', conditions: [{ type: 'Complete', status: 'True' }] } };
    expect(job.table!.print(done, now).cells.slice(0, 4)).toEqual(['pi', 'Complete', '3/3', '65s']);
    const queue = create(job, jobObj({ parallelism: 4 }));
    expect(job.table!.print({ ...queue, status: { succeeded: 1, startTime: '2026-01-01T00:09:00Z', conditions: [{ type: 'Failed', status: 'True' }] } }, now).cells.slice(0, 4)).toEqual([
      'pi',
      'Failed',
      '1/1 of 4',
      '60s',
    ]);
  });
});

describe('CronJob', () => {
  it('defaults: Allow, not suspended, history 3 and 1; the pod template\'s defaults', () => {
    const c = create(cronJob, cronObj());
    expect(c.spec).toMatchObject({ concurrencyPolicy: 'Allow', suspend: false, successfulJobsHistoryLimit: 3, failedJobsHistoryLimit: 1 });
    expect(c.spec.jobTemplate.spec.template.spec).toMatchObject({ dnsPolicy: 'ClusterFirst', terminationGracePeriodSeconds: 30 });
    // The job template is not a Job: no Job defaults, no generated selector.
    expect(c.spec.jobTemplate.spec.backoffLimit).toBeUndefined();
    expect(c.spec.jobTemplate.spec.selector).toBeUndefined();
  });

  it('schedules: robfig/cron\'s ParseStandard messages, descriptors, time zones', () => {
    const bad: [string, string][] = [
      ['every minute', 'expected exactly 5 fields, found 2: [every minute]'],
      ['* * * *', 'expected exactly 5 fields, found 4: [* * * *]'],
      ['60 * * * *', 'end of range (60) above maximum (59): 60'],
      ['* 24 * * *', 'end of range (24) above maximum (23): 24'],
      ['* * 0 * *', 'beginning of range (0) below minimum (1): 0'],
      ['* * * 13 *', 'end of range (13) above maximum (12): 13'],
      ['5-1 * * * *', 'beginning of range (5) beyond end of range (1): 5-1'],
      ['*/0 * * * *', 'step of range should be a positive number: */0'],
      ['x * * * *', 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'],
      ['1/2/3 * * * *', 'too many slashes: 1/2/3'],
      ['@fortnightly', 'unrecognized descriptor: @fortnightly'],
    ];
    for (const [schedule, msg] of bad) {
      expect(refusal(() => create(cronJob, cronObj({ schedule })))).toBe(`CronJob.batch "hello" is invalid: spec.schedule: Invalid value: ${JSON.stringify(schedule)}: ${msg}`);
    }
    for (const ok of ['@hourly', '@daily', '@midnight', '@weekly', '@monthly', '@yearly', '@annually', '@every 1h30m', '0 9 * * mon-fri', '*/15 0-6 1,15 jan-jun ?']) {
      expect(parseStandard(ok).error, ok).toBeUndefined();
      create(cronJob, cronObj({ schedule: ok }));
    }
    expect(refusal(() => create(cronJob, cronObj({ schedule: 'TZ=UTC 0 * * * *' })))).toBe(
      'CronJob.batch "hello" is invalid: spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead',
    );
    expect(refusal(() => create(cronJob, cronObj({ timeZone: 'Mars/Olympus' })))).toBe('CronJob.batch "hello" is invalid: spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus');
    expect(refusal(() => create(cronJob, cronObj({ timeZone: 'Local' })))).toContain('timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones');
    expect(create(cronJob, cronObj({ timeZone: 'Europe/Paris' })).spec.timeZone).toBe('Europe/Paris');
  });

  it('refuses a bad policy, a selector in the job template, a name too long for its Jobs', () => {
    expect(refusal(() => create(cronJob, cronObj({ concurrencyPolicy: 'Sometimes' })))).toBe(
      'CronJob.batch "hello" is invalid: spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"',
    );
    expect(refusal(() => create(cronJob, cronObj({ startingDeadlineSeconds: -1 })))).toBe('CronJob.batch "hello" is invalid: spec.startingDeadlineSeconds: Invalid value: -1: must be greater than or equal to 0');
    const withSelector = cronObj();
    withSelector.spec.jobTemplate.spec.selector = { matchLabels: { a: 'b' } };
    expect(refusal(() => create(cronJob, withSelector))).toBe('CronJob.batch "hello" is invalid: spec.jobTemplate.spec.selector: Invalid value: {"matchLabels":{"a":"b"}}: `selector` will be auto-generated');
    const long = { ...cronObj(), metadata: { name: 'c'.repeat(53) } };
    expect(refusal(() => create(cronJob, long))).toBe(`CronJob.batch "${'c'.repeat(53)}" is invalid: metadata.name: Invalid value: "${'c'.repeat(53)}": must be no more than 52 characters`);
    const always = cronObj();
    always.spec.jobTemplate.spec.template.spec.restartPolicy = 'Always';
    expect(refusal(() => create(cronJob, always))).toBe('CronJob.batch "hello" is invalid: spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"');
  });

  it('prints NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE', () => {
    expect(cronJob.table!.columns().filter((c) => !c.priority).map((c) => c.name)).toEqual(['Name', 'Schedule', 'Timezone', 'Suspend', 'Active', 'Last Schedule', 'Age']);
    const now = new Date('2026-01-01T01:00:00Z');
    const c = create(cronJob, cronObj());
    expect(cronJob.table!.print(c, now).cells).toEqual(['hello', '*/5 * * * *', '<none>', 'False', 0, '<none>', '60m', 'c', 'busybox', '<none>']);
    const running = { ...c, spec: { ...c.spec, timeZone: 'Europe/Paris' }, status: { active: [{ name: 'hello-1' }], lastScheduleTime: '2026-01-01T00:55:00Z' } };
    expect(cronJob.table!.print(running, now).cells.slice(0, 6)).toEqual(['hello', '*/5 * * * *', 'Europe/Paris', 'False', 1, '5m']);
  });
});
