// batch/v1 through the machine's stock kubectl against a real local cluster (HTTPS + SQLite, the
// controllers in-process): `kubectl create job` then `kubectl wait --for=condition=complete`, a Job of
// parallelism 3 / completions 6, backoffLimit reached (Failed), a CronJob's columns and
// `kubectl create job --from=cronjob/...`, and a bad cron expression refused with kube's 422 message.
// No node runs the pods (a hollow node would keep them Running): the test finishes them as a kubelet
// would, writing the pod's status (phase and a terminated container) through the status subresource.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { until } from './support/until.ts';

let c: TestCluster;

beforeAll(async () => {
  c = await startTestCluster();
  await c.kubectl(['create', 'namespace', 'batch']);
});
afterAll(async () => {
  await c?.destroy();
});

function table(out: string): string[][] {
  return out
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s{2,}/));
}

async function podsOf(job: string): Promise<{ name: string; phase: string }[]> {
  const r = await c.kubectl(['get', 'pods', '-n', 'batch', '-l', `job-name=${job}`, '-o', 'jsonpath={range .items[*]}{.metadata.name} {.status.phase}{"\\n"}{end}']);
  return r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [name, phase] = l.split(' ');
      return { name: name!, phase: phase ?? '' };
    });
}

/** What a kubelet writes when the pod's only container exits. */
async function finishPod(name: string, phase: 'Succeeded' | 'Failed'): Promise<void> {
  const t = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const exitCode = phase === 'Succeeded' ? 0 : 1;
  const status = { phase, containerStatuses: [{ name: 'c', image: 'busybox', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode, startedAt: t, finishedAt: t } } }] };
  const r = await c.kubectl(['patch', 'pod', name, '-n', 'batch', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]);
  expect(r.stderr).toBe('');
}

describe('kubectl and batch/v1', () => {
  it('kubectl create job pi, its pod finishes, kubectl wait --for=condition=complete', async () => {
    const r = await c.kubectl(['create', 'job', 'pi', '-n', 'batch', '--image=busybox', '--', 'echo', 'hi']);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('job.batch/pi created');
    const [pod] = await until('the pod of job pi', async () => {
      const p = await podsOf('pi');
      return p.length ? p : undefined;
    });
    // kubectl names the container after the job.
    const t = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const status = { phase: 'Succeeded', containerStatuses: [{ name: 'pi', image: 'busybox', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 0, startedAt: t, finishedAt: t } } }] };
    expect((await c.kubectl(['patch', 'pod', pod!.name, '-n', 'batch', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })])).stderr).toBe('');
    const w = await c.kubectl(['wait', '-n', 'batch', '--for=condition=complete', 'job/pi', '--timeout=30s']);
    expect(w.stderr).toBe('');
    expect(w.stdout.trim()).toBe('job.batch/pi condition met');
    const g = await c.kubectl(['get', 'job', 'pi', '-n', 'batch']);
    const rows = table(g.stdout);
    expect(rows[0]).toEqual(['NAME', 'STATUS', 'COMPLETIONS', 'DURATION', 'AGE']);
    expect(rows[1]!.slice(0, 3)).toEqual(['pi', 'Complete', '1/1']);
    expect(rows[1]![3]).toMatch(/^\d+s$/);
    const wide = await c.kubectl(['get', 'job', 'pi', '-n', 'batch', '-o', 'wide']);
    expect(table(wide.stdout)[0]).toEqual(['NAME', 'STATUS', 'COMPLETIONS', 'DURATION', 'AGE', 'CONTAINERS', 'IMAGES', 'SELECTOR']);
    expect(table(wide.stdout)[1]!.slice(5, 7)).toEqual(['pi', 'busybox']);
    expect(table(wide.stdout)[1]![7]).toMatch(/^batch\.kubernetes\.io\/controller-uid=[0-9a-f-]{36}$/);
    const y = await c.kubectl(['get', 'job', 'pi', '-n', 'batch', '-o', 'jsonpath={.status.succeeded} {.status.conditions[*].type}']);
    expect(y.stdout).toBe('1 SuccessCriteriaMet Complete');
    const d = await c.kubectl(['describe', 'job', 'pi', '-n', 'batch']);
    expect(d.stderr).toBe('');
    expect(d.stdout).toMatch(/^Pods Statuses:\s+0 Active \(0 Ready\) \/ 1 Succeeded \/ 0 Failed$/m);
    expect(d.stdout).toMatch(/Normal\s+SuccessfulCreate\s+.*job-controller\s+Created pod: pi-/);
    expect(d.stdout).toMatch(/Normal\s+Completed\s+.*job-controller\s+Job completed/);
  });

  it('kubectl delete job: its pods (running ones too, held by the tracking finalizer) are gone with it', async () => {
    expect((await c.kubectl(['create', 'job', 'gone', '-n', 'batch', '--image=busybox', '--', 'sleep', '3600'])).stdout.trim()).toBe('job.batch/gone created');
    await until('the pod of job gone', async () => (await podsOf('gone')).length === 1);
    const fin = await c.kubectl(['get', 'pods', '-n', 'batch', '-l', 'job-name=gone', '-o', 'jsonpath={.items[0].metadata.finalizers}']);
    expect(fin.stdout).toBe('["batch.kubernetes.io/job-tracking"]');
    const d = await c.kubectl(['delete', 'job', 'gone', '-n', 'batch']);
    expect(d.stdout.trim()).toBe('job.batch "gone" deleted');
    await until('the pods of job gone to be deleted', async () => (await podsOf('gone')).length === 0, 30_000, 200);
  });

  it('a Job of parallelism 3 and completions 6 runs three at a time to 6/6', async () => {
    const manifest = `apiVersion: batch/v1
kind: Job
metadata:
  name: wide
  namespace: batch
spec:
  parallelism: 3
  completions: 6
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: busybox
        command: ["true"]
`;
    expect((await c.kubectl(['apply', '-f', c.file('wide.yaml', manifest)])).stdout.trim()).toBe('job.batch/wide created');
    const seen = new Set<string>();
    await until(
      'six pods to succeed',
      async () => {
        const pods = await podsOf('wide');
        const running = pods.filter((p) => p.phase !== 'Succeeded');
        // Never more than parallelism at once.
        expect(running.length).toBeLessThanOrEqual(3);
        for (const p of running) {
          seen.add(p.name);
          await finishPod(p.name, 'Succeeded');
        }
        return pods.filter((p) => p.phase === 'Succeeded').length >= 6;
      },
      60_000,
      300,
    );
    const w = await c.kubectl(['wait', '-n', 'batch', '--for=condition=complete', 'job/wide', '--timeout=30s']);
    expect(w.stdout.trim()).toBe('job.batch/wide condition met');
    expect(table((await c.kubectl(['get', 'job', 'wide', '-n', 'batch'])).stdout)[1]!.slice(0, 3)).toEqual(['wide', 'Complete', '6/6']);
    expect((await podsOf('wide')).length).toBe(6);
  });

  it('backoffLimit reached: the Job gets Failed (BackoffLimitExceeded)', async () => {
    const manifest = `apiVersion: batch/v1
kind: Job
metadata:
  name: doomed
  namespace: batch
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: busybox
        command: ["false"]
`;
    expect((await c.kubectl(['apply', '-f', c.file('doomed.yaml', manifest)])).stdout.trim()).toBe('job.batch/doomed created');
    const [pod] = await until('the pod of job doomed', async () => {
      const p = await podsOf('doomed');
      return p.length ? p : undefined;
    });
    await finishPod(pod!.name, 'Failed');
    const w = await c.kubectl(['wait', '-n', 'batch', '--for=condition=failed', 'job/doomed', '--timeout=30s']);
    expect(w.stdout.trim()).toBe('job.batch/doomed condition met');
    const reason = await c.kubectl(['get', 'job', 'doomed', '-n', 'batch', '-o', 'jsonpath={.status.conditions[?(@.type=="Failed")].reason}']);
    expect(reason.stdout).toBe('BackoffLimitExceeded');
    expect(table((await c.kubectl(['get', 'job', 'doomed', '-n', 'batch'])).stdout)[1]!.slice(0, 3)).toEqual(['doomed', 'Failed', '0/1']);
  });

  it('a CronJob: kubectl create cronjob, its columns, kubectl create job --from=cronjob', async () => {
    const r = await c.kubectl(['create', 'cronjob', 'hello', '-n', 'batch', '--image=busybox', '--schedule=*/1 * * * *', '--', 'date']);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('cronjob.batch/hello created');
    const g = await c.kubectl(['get', 'cronjob', 'hello', '-n', 'batch']);
    const rows = table(g.stdout);
    expect(rows[0]).toEqual(['NAME', 'SCHEDULE', 'TIMEZONE', 'SUSPEND', 'ACTIVE', 'LAST SCHEDULE', 'AGE']);
    expect(rows[1]!.slice(0, 4)).toEqual(['hello', '*/1 * * * *', '<none>', 'False']);
    const m = await c.kubectl(['create', 'job', 'manual', '-n', 'batch', '--from=cronjob/hello']);
    expect(m.stderr).toBe('');
    expect(m.stdout.trim()).toBe('job.batch/manual created');
    const j = JSON.parse((await c.kubectl(['get', 'job', 'manual', '-n', 'batch', '-o', 'json'])).stdout);
    expect(j.metadata.annotations['cronjob.kubernetes.io/instantiate']).toBe('manual');
    expect(j.metadata.ownerReferences[0]).toMatchObject({ kind: 'CronJob', name: 'hello', controller: true });
    expect(j.spec.template.spec.containers[0]).toMatchObject({ name: 'hello', image: 'busybox', command: ['date'] });
    // The job controller runs it.
    await until('the pod of job manual', async () => (await podsOf('manual')).length === 1);
    // Its CronJob sees it as active.
    await until('cronjob hello to list job manual as active', async () => {
      const a = await c.kubectl(['get', 'cronjob', 'hello', '-n', 'batch', '-o', 'jsonpath={.status.active[*].name}']);
      return a.stdout.split(' ').includes('manual');
    });
  });

  it('the CronJob fires on its own at the next minute (skiff up requeues it for its fire time)', async () => {
    const job = await until(
      'the scheduled Job of cronjob hello',
      async () => {
        const r = await c.kubectl(['get', 'jobs', '-n', 'batch', '-o', 'jsonpath={range .items[*]}{.metadata.name} {.metadata.annotations.batch\\.kubernetes\\.io/cronjob-scheduled-timestamp}{"\\n"}{end}']);
        return r.stdout.split('\n').find((l) => /^hello-\d+ /.test(l));
      },
      75_000,
      1000,
    );
    const [name, scheduled] = job.split(' ');
    // Named by the scheduled minute, annotated with it.
    expect(Number(name!.slice('hello-'.length)) * 60_000).toBe(Date.parse(scheduled!));
    const last = await c.kubectl(['get', 'cronjob', 'hello', '-n', 'batch', '-o', 'jsonpath={.status.lastScheduleTime}']);
    expect(last.stdout).toBe(scheduled);
  }, 90_000);

  it('a bad cron expression or time zone is refused with kube\'s 422 message', async () => {
    const r = await c.kubectl(['create', 'cronjob', 'bad', '-n', 'batch', '--image=busybox', '--schedule=every minute']);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim()).toBe('error: failed to create cronjob: CronJob.batch "bad" is invalid: spec.schedule: Invalid value: "every minute": expected exactly 5 fields, found 2: [every minute]');
    const manifest = `apiVersion: batch/v1
kind: CronJob
metadata:
  name: tz
  namespace: batch
spec:
  schedule: "61 * * * *"
  timeZone: Mars/Olympus
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: c
            image: busybox
`;
    const a = await c.kubectl(['apply', '-f', c.file('tz.yaml', manifest)]);
    expect(a.stderr.trim()).toBe(
      'The CronJob "tz" is invalid: \n* spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61\n* spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus',
    );
    const job = await c.kubectl(['create', 'job', 'always', '-n', 'batch', '--image=busybox', '--dry-run=server', '-o', 'name']);
    expect(job.code).toBe(0);
  });
});
