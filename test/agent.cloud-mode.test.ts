// The agent as a deployed cluster's node runs it (infra/nodes.ts: --poll-seconds, --lease-seconds,
// --status-report-seconds, --stream-port), on the real Docker Engine against a local apiserver: it
// follows its pods by polling (no watch is ever opened), declares its longer Lease, publishes its
// stream port, and serves a pod's log there to a bearer token (what the front door sends it).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { requireDocker, TEST_IMAGE } from './support/docker.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { until } from './support/until.ts';
import { newToken, nodeUser, storeToken } from '../lambdas/apiserver/auth.ts';
import { startAgent, type Agent } from '../node-agent/agent.ts';
import { KubeClient, type KubeClientConfig } from '../node-agent/kube-client.ts';
import { STREAM_PORT_ANNOTATION } from '../node-agent/node.ts';
import { ApiError } from '../lambdas/machinery/status.ts';
import { sqsTestEndpoint } from './support/sqs.ts';
import { createNodeNotifier } from '../lambdas/controllers/node-notifier.ts';
import { runControllers } from '../lambdas/local/controllers.ts';

const docker = await requireDocker();
const NODE = `cloud-node-${process.pid}`;
const NETWORK = `skiff-cloud-${process.pid}`;

/**
 * The agent's client, counting the watches it holds open (a polling agent must hold none) and the pod status
 * writes refused as stale (409): a sync must not start from the copy its own last write replaced.
 */
let watches = 0;
let staleStatusWrites = 0;
class CountingClient extends KubeClient {
  override watch(...args: Parameters<KubeClient['watch']>) {
    // A catch-up (the Services' and Endpoints' informers asking what changed: drain=true, ended by the
    // apiserver once caught up) holds nothing open; any other watch would.
    if (!args[0].includes('drain=true')) watches++;
    return super.watch(...args);
  }
  override async update<T>(path: string, body: unknown): Promise<T> {
    try {
      return await super.update<T>(path, body);
    } catch (e) {
      if (e instanceof ApiError && e.code === 409 && /\/pods\/[^/]+\/status$/.test(path)) staleStatusWrites++;
      throw e;
    }
  }
}

describe.skipIf(!docker)('agent in cloud mode (polling, long lease, stream port)', () => {
  let c: TestCluster;
  let agent: Agent;
  let dataDir: string;
  const engine = docker as Docker;

  beforeAll(async () => {
    c = await startTestCluster();
    const token = newToken();
    await storeToken(c.backend, token, nodeUser(NODE));
    dataDir = mkdtempSync(join(tmpdir(), 'skiff-cloud-agent-'));
    const api: KubeClientConfig = { server: c.url, caCert: c.caCert, token, pollMs: 500 };
    agent = await startAgent({
      api,
      kubeClient: new CountingClient(api),
      nodeName: NODE,
      dataDir,
      network: NETWORK,
      port: 0,
      streamPort: 0,
      heartbeatMs: 1000,
      leaseDurationSeconds: 240,
      nodeStatusReportMs: 3_600_000,
      proxy: false,
      backoffBaseMs: 1000,
    });
  }, 60_000);

  afterAll(async () => {
    await agent?.close({ removePods: true });
    await c?.destroy();
    await engine.getNetwork(NETWORK).remove().catch(() => {});
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('runs a pod it learns of by polling, never holds a watch open, and writes no stale status', async () => {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'talker' }, spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: TEST_IMAGE, command: ['sh', '-c', 'echo hello from the cloud; sleep 3600'] }] } };
    expect((await c.kubectl(['apply', '-f', '-'], JSON.stringify(pod))).code).toBe(0);
    await until(
      'talker Running on the polling agent',
      async () => {
        const r = await c.kubectl(['get', 'pod', 'talker', '-o', 'jsonpath={.spec.nodeName} {.status.phase}']);
        return r.stdout === `${NODE} Running`;
      },
      60_000,
      250,
    );
    expect(watches).toBe(0);
    // Its status went through several writes (Pending, then Running) between two polls, none of them stale.
    await new Promise((r) => setTimeout(r, 1500));
    expect(staleStatusWrites).toBe(0);
  });

  it('declares its longer Lease and publishes its stream port on the Node', async () => {
    const lease = await c.kubectl(['get', 'lease', '-n', 'kube-node-lease', NODE, '-o', 'jsonpath={.spec.leaseDurationSeconds}']);
    expect(lease.stdout).toBe('240');
    const port = (await c.kubectl(['get', 'node', NODE, '-o', `jsonpath={.metadata.annotations.skiff\\.io/stream-port}`])).stdout;
    expect(STREAM_PORT_ANNOTATION).toBe('skiff.io/stream-port');
    expect(Number(port)).toBeGreaterThan(0);
  });

  it('serves the pod\'s log on the stream port to a valid bearer token, and 401 to none', async () => {
    const port = Number((await c.kubectl(['get', 'node', NODE, '-o', `jsonpath={.metadata.annotations.skiff\\.io/stream-port}`])).stdout);
    const get = (token?: string) =>
      new Promise<{ status: number; body: string }>((ok, fail) =>
        http
          .get({ host: '127.0.0.1', port, path: '/api/v1/namespaces/default/pods/talker/log', headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
            let body = '';
            res.on('data', (d) => (body += d)).on('end', () => ok({ status: res.statusCode!, body }));
          })
          .on('error', fail),
      );
    const r = await until('the log has the line', async () => {
      const x = await get(c.token);
      return x.body.includes('hello from the cloud') ? x : undefined;
    });
    expect(r).toEqual({ status: 200, body: 'hello from the cloud\n' });
    expect((await get()).status).toBe(401);
  });
});

// The push channel (issue #16): the same agent, polling only once an hour, with its SQS queue (moto)
// fed by the node notifier loop: a pod bound to it starts at once, not at the next poll.
const sqs = docker ? await sqsTestEndpoint() : undefined;
afterAll(async () => sqs?.stop());

describe.skipIf(!docker || !sqs)('agent in cloud mode with the push channel', () => {
  it('starts a pod bound to it within seconds though it polls once an hour', async () => {
    const c = await startTestCluster();
    const node = `push-node-${process.pid}`;
    const network = `skiff-push-${process.pid}`;
    const token = newToken();
    await storeToken(c.backend, token, nodeUser(node));
    const dir = mkdtempSync(join(tmpdir(), 'skiff-push-agent-'));
    const client = sqs!.newClient();
    const queuePrefix = `push${process.pid}-`;
    const loops = runControllers(c.api.controllerContext(), [createNodeNotifier({ sqs: client, queuePrefix })]);
    const api: KubeClientConfig = { server: c.url, caCert: c.caCert, token, pollMs: 3_600_000 };
    const a = await startAgent({ api, nodeName: node, dataDir: dir, network, port: 0, heartbeatMs: 1000, proxy: false, push: { sqs: client, queuePrefix, podPollMs: 3_600_000 } });
    try {
      // Its first list (at start) is done; from now on only a nudge makes it list again within the hour.
      await until('the node is Ready', async () => (await c.kubectl(['get', 'node', node, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])).stdout === 'True', 30_000);
      const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'pushed' }, spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: TEST_IMAGE, command: ['sleep', '3600'] }] } };
      const t0 = Date.now();
      expect((await c.kubectl(['apply', '-f', '-'], JSON.stringify(pod))).code).toBe(0);
      await until('pushed Running on the agent', async () => (await c.kubectl(['get', 'pod', 'pushed', '-o', 'jsonpath={.spec.nodeName} {.status.phase}'])).stdout === `${node} Running`, 30_000, 100);
      console.log(`push channel: kubectl apply -> Running on a node polling hourly: ${Date.now() - t0} ms`);
    } finally {
      await a.close({ removePods: true });
      await loops.stop();
      await c.destroy();
      await engine().getNetwork(network).remove().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});

const engine = () => docker as Docker;
