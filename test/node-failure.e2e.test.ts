// A node that dies, end to end on a local cluster (issue #16 item 2): a real `skiff agent` process on the
// Docker Engine runs a ReplicationController's pod; the agent is killed (SIGKILL: no goodbye); within the
// 40 s grace period its node becomes Ready=Unknown and tainted unreachable, the pod is evicted when its
// toleration runs out, and the RC's replacement runs on the cluster's other node (hollow: it reports pods
// Running without containers).

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type Docker from 'dockerode';
import { requireDocker, TEST_IMAGE } from './support/docker.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { LABELS } from '../node-agent/runtime.ts';
import { until } from './support/until.ts';

const docker = await requireDocker();
const NODE = `doomed-${process.pid}`;
const NETWORK = `skiff-doomed-${process.pid}`;
let agent: ChildProcess | undefined;
let c: TestCluster | undefined;
const dir = mkdtempSync(join(tmpdir(), 'skiff-doomed-'));
afterAll(async () => {
  agent?.kill('SIGKILL');
  await c?.destroy();
  if (docker) {
    const engine = docker as Docker;
    for (const ct of await engine.listContainers({ all: true, filters: { label: [`${LABELS.node}=${NODE}`] } })) await engine.getContainer(ct.Id).remove({ force: true }).catch(() => {});
    // Docker may still be detaching the containers just removed: the network goes once they are off it.
    for (let i = 0; i < 20; i++) {
      const err = await engine.getNetwork(NETWORK).remove().then(() => undefined, (e: { statusCode?: number }) => e);
      if (!err || err.statusCode === 404) break;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!docker)('a node whose agent dies (local cluster, real agent process)', () => {
  it('is NotReady and tainted within the grace period; its pod is evicted and replaced on the other node', async () => {
    c = await startTestCluster({ hollowNodes: 1 });
    const hollow = (await c.kubectl(['get', 'nodes', '-l', 'skiff.io/hollow=true', '-o', 'jsonpath={.items[0].metadata.name}'])).stdout;
    expect(hollow).not.toBe('');
    // The pod must start on the real node: the hollow one is cordoned until then.
    expect((await c.kubectl(['cordon', hollow])).code).toBe(0);
    agent = spawn(process.execPath, ['dist/skiff.mjs', 'agent', '--kubeconfig', c.kubeconfigPath, '--name', NODE, '--data-dir', join(dir, 'agent'), '--network', NETWORK, '--port', '0', '--no-proxy'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    agent.stdout!.on('data', (d) => (out += d));
    agent.stderr!.on('data', (d) => (out += d));
    await until(`node ${NODE} Ready`, async () => (await c!.kubectl(['get', 'node', NODE, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])).stdout === 'True', 60_000, 250).catch((e) => {
      throw new Error(`${(e as Error).message}\n${out}`);
    });
    const rc = {
      apiVersion: 'v1',
      kind: 'ReplicationController',
      metadata: { name: 'survivor' },
      spec: {
        replicas: 1,
        selector: { app: 'survivor' },
        template: {
          metadata: { labels: { app: 'survivor' } },
          spec: {
            terminationGracePeriodSeconds: 1,
            // Evicted 5 s after the node is found unreachable (the default is 300 s).
            tolerations: [{ key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 5 }],
            containers: [{ name: 'main', image: TEST_IMAGE, command: ['sleep', '3600'] }],
          },
        },
      },
    };
    expect((await c.kubectl(['apply', '-f', '-'], JSON.stringify(rc))).code).toBe(0);
    const pod = (await until('the pod Running on the real node (its uid)', async () => {
      const r = await c!.kubectl(['get', 'pods', '-l', 'app=survivor', '-o', 'jsonpath={range .items[*]}{.metadata.uid} {.metadata.name} {.spec.nodeName} {.status.phase}{"\\n"}{end}']);
      const line = r.stdout.split('\n').find((l) => l.endsWith(`${NODE} Running`));
      return line?.split(' ')[0];
    }, 60_000, 250))!;
    expect((await c.kubectl(['uncordon', hollow])).code).toBe(0);

    const killedAt = Date.now();
    agent.kill('SIGKILL');
    await until('the node NotReady (Unknown) and tainted unreachable', async () => {
      const r = await c!.kubectl(['get', 'node', NODE, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status} {.spec.taints[*].key}']);
      return r.stdout.startsWith('Unknown') && r.stdout.includes('node.kubernetes.io/unreachable');
    }, 70_000, 250);
    const notReadyS = (Date.now() - killedAt) / 1000;
    // 40 s after its last lease renewal (every 10 s locally), plus the loop's look 1 s after the deadline.
    expect(notReadyS).toBeLessThanOrEqual(52);
    // A replacement seen bound to the dead node: it tolerates the unreachable NoExecute taint for 5 s, but
    // the NoSchedule one must keep it off (it once landed there and waited for the next eviction pass).
    const onDeadNode = new Set<string>();
    const replacement = await until('a replacement Running on the hollow node', async () => {
      const r = await c!.kubectl(['get', 'pods', '-l', 'app=survivor', '-o', 'jsonpath={range .items[*]}{.metadata.uid} {.metadata.name} {.spec.nodeName} {.status.phase}{"\\n"}{end}']);
      for (const l of r.stdout.split('\n')) if (l.split(' ')[2] === NODE && !l.startsWith(pod)) onDeadNode.add(l);
      return r.stdout.split('\n').find((l) => l.endsWith(`${hollow} Running`))?.split(' ')[0];
    }, 60_000, 250);
    expect([...onDeadNode]).toEqual([]);
    expect(replacement).not.toBe(pod); // another pod (uids; the RC may give it the same name)
    console.log(`agent killed -> node unreachable ${notReadyS.toFixed(1)} s; -> replacement Running ${((Date.now() - killedAt) / 1000).toFixed(1)} s (5 s toleration)`);
    // The evicted pod is gone from the store (deleted with no grace: no agent will end it): one pod left.
    const uids = (await c.kubectl(['get', 'pods', '-l', 'app=survivor', '-o', 'jsonpath={.items[*].metadata.uid}'])).stdout.split(' ');
    expect(uids).toEqual([replacement]);
  }, 240_000);
});
