// Jobs in real containers: a local cluster with one node agent on the real Docker Engine, driven with the
// machine's kubectl. An Indexed Job of parallelism 2 runs its 3 indexes as real processes, each seeing
// its JOB_COMPLETION_INDEX, to Complete; a Job whose container exits 3 with backoffLimit 0 is Failed.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Docker from 'dockerode';
import { requireDocker, TEST_IMAGE } from './support/docker.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';

const docker = await requireDocker();
const NODE = `job-node-${process.pid}`;
const NETWORK = `skiff-job-${process.pid}`;
const AGENT = { nodeName: NODE, network: NETWORK, backoffBaseMs: 1000, backoffMaxMs: 8000, heartbeatMs: 2000, resyncMs: 3000 };

function jobJson(name: string, spec: Record<string, unknown>, command: string): string {
  return JSON.stringify({
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name },
    spec: {
      ...spec,
      template: { spec: { restartPolicy: 'Never', terminationGracePeriodSeconds: 1, containers: [{ name: 'c', image: TEST_IMAGE, imagePullPolicy: 'Never', command: ['sh', '-c', command] }] } },
    },
  });
}

describe.skipIf(!docker)('Jobs on Docker (kubectl end to end)', () => {
  let c: TestCluster;
  const engine = docker as Docker;

  beforeAll(async () => {
    c = await startTestCluster({ agents: 1, requireAgents: true, agentOptions: AGENT });
  }, 60_000);
  afterAll(async () => {
    for (const a of c?.agents ?? []) await a.close({ removePods: true });
    await c?.destroy();
    await engine.getNetwork(NETWORK).remove().catch(() => {});
  });

  it('an Indexed Job of parallelism 2 runs indexes 0..2 in containers to Complete', async () => {
    const r = await c.kubectl(['apply', '-f', '-'], jobJson('count', { completions: 3, parallelism: 2, completionMode: 'Indexed' }, 'echo "index $JOB_COMPLETION_INDEX on $(hostname)"'));
    expect(r.stderr).toBe('');
    const w = await c.kubectl(['wait', '--for=condition=complete', 'job/count', '--timeout=120s']);
    expect(w.stderr).toBe('');
    expect(w.stdout.trim()).toBe('job.batch/count condition met');
    const job = JSON.parse((await c.kubectl(['get', 'job', 'count', '-o', 'json'])).stdout);
    expect(job.status).toMatchObject({ succeeded: 3, completedIndexes: '0-2' });
    const pods = JSON.parse((await c.kubectl(['get', 'pods', '-l', 'job-name=count', '-o', 'json'])).stdout).items;
    expect(pods.map((p: any) => p.status.phase)).toEqual(['Succeeded', 'Succeeded', 'Succeeded']);
    // The tracking finalizer is gone from every counted pod.
    expect(pods.every((p: any) => !p.metadata.finalizers)).toBe(true);
    const logs = await Promise.all(pods.map(async (p: any) => (await c.kubectl(['logs', p.metadata.name])).stdout.trim()));
    expect(logs.sort()).toEqual(['index 0 on count-0', 'index 1 on count-1', 'index 2 on count-2']);
  }, 180_000);

  it('a container exiting 3 with backoffLimit 0 fails the Job (BackoffLimitExceeded)', async () => {
    const r = await c.kubectl(['apply', '-f', '-'], jobJson('oops', { backoffLimit: 0 }, 'exit 3'));
    expect(r.stderr).toBe('');
    const w = await c.kubectl(['wait', '--for=condition=failed', 'job/oops', '--timeout=120s']);
    expect(w.stdout.trim()).toBe('job.batch/oops condition met');
    const job = JSON.parse((await c.kubectl(['get', 'job', 'oops', '-o', 'json'])).stdout);
    expect(job.status.failed).toBe(1);
    expect(job.status.conditions.find((x: any) => x.type === 'Failed')).toMatchObject({ status: 'True', reason: 'BackoffLimitExceeded' });
    const pods = JSON.parse((await c.kubectl(['get', 'pods', '-l', 'job-name=oops', '-o', 'json'])).stdout).items;
    expect(pods[0].status.containerStatuses[0].state.terminated.exitCode).toBe(3);
  }, 180_000);
});
