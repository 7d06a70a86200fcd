// preStop hooks on a real node (the agent on the Docker Engine): the hook runs before the container is
// signalled, its time comes out of the grace period, and a failing hook does not keep the pod (kubelet
// stops the container either way, with a FailedPreStopHook event).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { performance } from 'node:perf_hooks';
import { findResource } from '../lambdas/machinery/resources.ts';
import { LABELS } from '../node-agent/runtime.ts';
import { requireDocker, TEST_IMAGE } from './support/docker.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { until } from './support/until.ts';

const docker = await requireDocker();
const podsRes = findResource('', 'v1', 'pods')!;
const eventsRes = findResource('', 'v1', 'events')!;
const NODE = `lifecycle-node-${process.pid}`;
const NETWORK = `skiff-lifecycle-${process.pid}`;
const AGENT = { nodeName: NODE, network: NETWORK, backoffBaseMs: 1000, backoffMaxMs: 8000, heartbeatMs: 2000, resyncMs: 3000 };

describe.skipIf(!docker)('preStop hooks (real containers)', () => {
  let c: TestCluster;
  const engine = docker as Docker;
  const host = mkdtempSync(join(tmpdir(), 'skiff-lifecycle-'));
  chmodSync(host, 0o777);

  const run = async (name: string, preStop: Record<string, unknown>, grace = 10) => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name },
      spec: {
        terminationGracePeriodSeconds: grace,
        volumes: [{ name: 'host', hostPath: { path: host, type: 'Directory' } }],
        containers: [
          {
            name: 'main',
            image: TEST_IMAGE,
            // On SIGTERM it writes "term" and exits: the log shows the order of hook and signal.
            command: ['sh', '-c', `trap 'echo term >> /host/${name}; exit 0' TERM; while true; do sleep 0.1; done`],
            volumeMounts: [{ name: 'host', mountPath: '/host' }],
            lifecycle: { preStop },
          },
        ],
      },
    };
    const r = await c.kubectl(['apply', '-f', '-'], JSON.stringify(pod));
    expect(r.code, r.stderr).toBe(0);
    await until(`${name} running`, async () => (await c.api.registry.get(podsRes, 'default', name)).status?.phase === 'Running', 60_000);
  };
  const deleteAndTime = async (name: string) => {
    const t0 = performance.now();
    const r = await c.kubectl(['delete', 'pod', name, '--wait=true']);
    expect(r.code, r.stderr).toBe(0);
    return (performance.now() - t0) / 1000;
  };

  beforeAll(async () => {
    c = await startTestCluster({ agents: 1, requireAgents: true, agentOptions: AGENT });
  }, 60_000);
  afterAll(async () => {
    for (const a of c?.agents ?? []) await a.close({ removePods: true });
    const left = await engine.listContainers({ all: true, filters: { label: [`${LABELS.node}=${NODE}`] } });
    for (const x of left) await engine.getContainer(x.Id).remove({ force: true }).catch(() => {});
    await c?.destroy();
    await engine.getNetwork(NETWORK).remove().catch(() => {});
    rmSync(host, { recursive: true, force: true });
  });

  it('runs an exec preStop hook before SIGTERM', async () => {
    await run('exec', { exec: { command: ['sh', '-c', 'echo prestop >> /host/exec'] } });
    await deleteAndTime('exec');
    expect(readFileSync(join(host, 'exec'), 'utf8')).toBe('prestop\nterm\n');
  }, 90_000);

  it('a sleep hook holds the container that long before SIGTERM, within the grace period', async () => {
    await run('sleep', { sleep: { seconds: 3 } });
    const s = await deleteAndTime('sleep');
    expect(s).toBeGreaterThanOrEqual(3);
    expect(s).toBeLessThan(10);
    expect(readFileSync(join(host, 'sleep'), 'utf8')).toBe('term\n');
  }, 90_000);

  it('a failing hook is reported and the container is stopped all the same', async () => {
    await run('failing', { exec: { command: ['sh', '-c', 'exit 3'] } });
    await deleteAndTime('failing');
    expect(readFileSync(join(host, 'failing'), 'utf8')).toBe('term\n');
    const events = (await c.api.registry.list(eventsRes, 'default')).items.filter((e) => e.involvedObject?.name === 'failing' && e.reason === 'FailedPreStopHook');
    expect(events.length).toBe(1);
    expect(events[0]!.type).toBe('Warning');
  }, 90_000);
});
