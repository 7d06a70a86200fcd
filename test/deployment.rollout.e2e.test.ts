// A Deployment rolled forward and back with stock kubectl while a client keeps calling its Service, on a
// real node (the node agent on the Docker Engine, its Service proxy with a chain prefix of its own, as in
// agent.proxy.test.ts). With maxUnavailable 0, a readiness probe and a preStop sleep (the pattern a
// Kubernetes user follows for zero-downtime rollouts), no request fails: new pods take traffic only once
// ready, and old ones keep serving while their endpoints leave the rules.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Docker from 'dockerode';
import { findResource } from '../lambdas/machinery/resources.ts';
import { LABELS } from '../node-agent/runtime.ts';
import { requireDocker, TEST_IMAGE } from './support/docker.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { until } from './support/until.ts';

const docker = await requireDocker();
const svcRes = findResource('', 'v1', 'services')!;
const PID = process.pid;
const NODE_NAME = `rollout-node-${PID}`;
const NETWORK = `skiff-rollout-${PID}`;
const PREFIX = `SKR${PID}`.slice(0, 10);
const AGENT = {
  nodeName: NODE_NAME,
  network: NETWORK,
  backoffBaseMs: 1000,
  backoffMaxMs: 8000,
  heartbeatMs: 2000,
  resyncMs: 3000,
  proxy: { chainPrefix: PREFIX, serviceCIDR: '10.96.0.0/16', resyncMs: 3000 },
};

const deployment = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web' },
  spec: {
    replicas: 3,
    selector: { matchLabels: { app: 'web' } },
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
    template: {
      metadata: { labels: { app: 'web' } },
      spec: {
        terminationGracePeriodSeconds: 10,
        containers: [
          {
            name: 'web',
            image: TEST_IMAGE,
            env: [{ name: 'VERSION', value: 'v1' }],
            command: ['sh', '-c', 'mkdir -p /www && echo "$VERSION" > /www/index.html && exec httpd -f -p 8080 -h /www'],
            ports: [{ name: 'http', containerPort: 8080 }],
            readinessProbe: { httpGet: { path: '/', port: 'http' }, periodSeconds: 1, failureThreshold: 1 },
            lifecycle: { preStop: { sleep: { seconds: 4 } } },
          },
        ],
      },
    },
  },
};

describe.skipIf(!docker)('a Deployment rolled forward and back under load (real containers)', () => {
  let c: TestCluster;
  const engine = docker as Docker;
  const kubectl = async (...args: string[]) => {
    const r = await c.kubectl(args);
    expect(r.stderr, `kubectl ${args.join(' ')}`).toBe('');
    expect(r.code).toBe(0);
    return r.stdout;
  };
  /** The client's log: one line per request, the version served or FAIL. */
  const answers = async () => (await kubectl('logs', 'client')).split('\n').filter(Boolean);

  beforeAll(async () => {
    c = await startTestCluster({ agents: 1, requireAgents: true, agentOptions: AGENT });
    const r = await c.kubectl(['apply', '-f', '-'], JSON.stringify(deployment));
    expect(r.code, r.stderr).toBe(0);
    await c.kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } }));
    expect((await c.kubectl(['rollout', 'status', 'deployment/web', '--timeout=90s'])).code).toBe(0);
    const ip = (await c.api.registry.get(svcRes, 'default', 'web')).spec.clusterIP;
    // One request every 50 ms through the Service's cluster IP; a request not answered in 2 s is a failure.
    const loop = `while true; do if out=$(timeout 2 wget -q -O- http://${ip}/ 2>/dev/null); then echo "$out"; else echo FAIL; fi; sleep 0.05; done`;
    await c.kubectl(['run', 'client', `--image=${TEST_IMAGE}`, '--restart=Never', '--command', '--', 'sh', '-c', loop]);
    await until('the client answered by v1', async () => (await answers()).filter((l) => l === 'v1').length >= 20, 60_000);
  }, 180_000);

  afterAll(async () => {
    for (const a of c?.agents ?? []) await a.close({ removePods: true });
    const left = await engine.listContainers({ all: true, filters: { label: [`${LABELS.node}=${NODE_NAME}`] } });
    for (const x of left) await engine.getContainer(x.Id).remove({ force: true }).catch(() => {});
    await c?.destroy();
    await engine.getNetwork(NETWORK).remove().catch(() => {});
  });

  it('rolls to v2 and back to v1 with no failed request, and kubectl shows the history', async () => {
    const before = (await answers()).length;
    await kubectl('set', 'env', 'deployment/web', 'VERSION=v2');
    expect((await c.kubectl(['rollout', 'status', 'deployment/web', '--timeout=120s'])).code).toBe(0);
    await until('the client answered by v2 only', async () => (await answers()).slice(-20).every((l) => l === 'v2'), 30_000);

    const history = await kubectl('rollout', 'history', 'deployment/web');
    expect(history).toMatch(/REVISION\s+CHANGE-CAUSE\n1\s+<none>\n2\s+<none>/);

    await kubectl('rollout', 'undo', 'deployment/web');
    expect((await c.kubectl(['rollout', 'status', 'deployment/web', '--timeout=120s'])).code).toBe(0);
    await until('the client answered by v1 only', async () => (await answers()).slice(-20).every((l) => l === 'v1'), 30_000);

    const during = (await answers()).slice(before);
    // Both rollouts happened under load: the client saw both versions, many times, and never a failure.
    expect(during.filter((l) => l === 'v2').length).toBeGreaterThan(20);
    expect(during.filter((l) => l === 'v1').length).toBeGreaterThan(20);
    expect(during.filter((l) => l !== 'v1' && l !== 'v2')).toEqual([]);
    // The undo made revision 3 out of revision 1; three ready pods, all v1.
    expect(await kubectl('get', 'deployment', 'web', '-o', 'jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision} {.status.readyReplicas}')).toBe('3 3');
  }, 300_000);
});
