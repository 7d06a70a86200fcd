// Fault suite, the node agent: `skiff agent` (the built CLI, its own process, on the real Docker Engine)
// killed with SIGKILL in the middle of starting a pod, after the pause container and the first app
// container were created but before the pod is up. Started again, the agent finds what it made by the
// containers' labels and fixed names: the pod ends Running once (no container restarted, nothing made
// twice) and the engine holds exactly the pause container plus one container per container of the pod.

import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { LABELS, PAUSE } from '../node-agent/runtime.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { requireDocker, TEST_IMAGE } from './support/docker.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { until } from './support/until.ts';

const docker = await requireDocker();
const NODE = `fault-node-${process.pid}`;
const NETWORK = `skiff-fault-${process.pid}`;
const podsRes = findResource('', 'v1', 'pods')!;

let c: TestCluster | undefined;
const agentDir = mkdtempSync(join(tmpdir(), 'skiff-fault-agent-'));
const procs: ChildProcess[] = [];
afterAll(async () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  if (docker) {
    for (const ct of await docker.listContainers({ all: true, filters: { label: [`${LABELS.node}=${NODE}`] } })) {
      await docker.getContainer(ct.Id).remove({ force: true, v: true }).catch(() => {});
    }
    await docker.getNetwork(NETWORK).remove().catch(() => {});
  }
  await c?.destroy();
  rmSync(agentDir, { recursive: true, force: true });
});

/** `skiff agent` for NODE against the test cluster; resolves once it has registered. */
function startAgentProcess(kubeconfig: string): Promise<ChildProcess> {
  const proc = spawn(
    process.execPath,
    ['dist/skiff.mjs', 'agent', '--kubeconfig', kubeconfig, '--name', NODE, '--network', NETWORK, '--data-dir', agentDir, '--port', '0', '--no-proxy'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  procs.push(proc);
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`skiff agent did not start: ${out}`)), 40_000);
    proc.stdout!.on('data', () => {
      if (/registered/.test(out)) {
        clearTimeout(t);
        resolve(proc);
      }
    });
    proc.once('exit', (code) => reject(new Error(`skiff agent exited with ${code}: ${out}`)));
  });
}

// Where the kill lands: at the n-th engine event of that kind for the pod (the pause container comes first).
const KILL_POINTS: [string, 'create' | 'start', number][] = [
  ['after the pause container is created, before it starts', 'create', 1],
  ['after the pause and the first app container are created', 'create', 2],
  ['after the first app container has started, before the status says so', 'start', 2],
];

describe.skipIf(!docker)('node agent killed during a pod start', () => {
  it.each(KILL_POINTS)('SIGKILL %s: restarted, the pod ends Running once, no leaked or doubled containers', async (_, killOn, nth) => {
    const engine = docker as Docker;
    c ??= await startTestCluster({});
    const first = await startAgentProcess(c.kubeconfigPath);
    await until('the node is Ready', async () => {
      const r = await c!.kubectl(['get', 'node', NODE, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
      return r.stdout === 'True';
    });

    // Three containers, so a start takes several engine calls: the kill lands in the middle of them.
    const names = ['a', 'b', 'c'];
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `interrupted-${killOn}-${nth}`, namespace: 'default' },
      spec: {
        nodeName: NODE,
        terminationGracePeriodSeconds: 0,
        containers: names.map((name) => ({ name, image: TEST_IMAGE, command: ['sleep', '3600'] })),
      },
    };
    // The engine's create events for this node's containers, from before the pod exists.
    const events = (await engine.getEvents({ filters: { type: ['container'], event: [killOn], label: [`${LABELS.node}=${NODE}`] } })) as NodeJS.ReadableStream;
    let seen = 0;
    const killed = new Promise<void>((resolve) => {
      events.on('data', () => {
        if (++seen === nth) {
          first.kill('SIGKILL');
          resolve();
        }
      });
    });
    const created = (await c.api.registry.create(podsRes, 'default', pod as unknown as KubeObject)) as KubeObject;
    const uid = created.metadata.uid as string;
    await killed;
    await new Promise((r) => first.once('exit', r));
    (events as unknown as { destroy(): void }).destroy();
    const mine = () => engine.listContainers({ all: true, filters: { label: [`${LABELS.node}=${NODE}`, `${LABELS.uid}=${uid}`] } });
    const before = await mine();
    const done = killOn === 'create' ? before.length : before.filter((ct) => ct.State === 'running').length;
    expect(done, 'the kill landed mid-start').toBeLessThan(1 + names.length);
    expect(before.some((ct) => ct.Labels[LABELS.container] === PAUSE)).toBe(true);

    // The pod's phase as every write leaves it: Running must come once and stay.
    const phases: string[] = [];
    const ctl = new AbortController();
    const watching = (async () => {
      for await (const e of c!.api.registry.watch(podsRes, 'default', { resourceVersion: created.metadata.resourceVersion as string }, ctl.signal)) {
        const p = (e as { object?: KubeObject }).object;
        if (p?.metadata?.uid === uid && p.status?.phase && phases.at(-1) !== p.status.phase) phases.push(p.status.phase);
      }
    })().catch(() => {});

    const second = await startAgentProcess(c.kubeconfigPath);
    const running = await until(
      'the pod Running with every container running',
      async () => {
        const p = (await c!.api.registry.get(podsRes, 'default', pod.metadata.name)) as KubeObject;
        const all = p.status?.containerStatuses?.length === names.length && p.status.containerStatuses.every((s: any) => s.state?.running);
        return p.status?.phase === 'Running' && all && p;
      },
      40_000,
      200,
    );
    // Settle: the agent's next syncs must not restart or add anything.
    await new Promise((r) => setTimeout(r, 3000));
    ctl.abort();
    await watching;

    const after = await mine();
    const byContainer = new Map<string, number>();
    for (const ct of after) byContainer.set(ct.Labels[LABELS.container]!, (byContainer.get(ct.Labels[LABELS.container]!) ?? 0) + 1);
    expect(Object.fromEntries(byContainer)).toEqual({ [PAUSE]: 1, a: 1, b: 1, c: 1 });
    expect(after.every((ct) => ct.State === 'running')).toBe(true);
    const now = (await c.api.registry.get(podsRes, 'default', pod.metadata.name)) as KubeObject;
    expect(now.status.containerStatuses.map((s: any) => s.restartCount)).toEqual([0, 0, 0]);
    // The status names the containers that run, not ones made before the kill and lost.
    expect(new Set(now.status.containerStatuses.map((s: any) => s.containerID.replace('docker://', '')))).toEqual(
      new Set(after.filter((ct) => ct.Labels[LABELS.container] !== PAUSE).map((ct) => ct.Id)),
    );
    expect(running.status.phase).toBe('Running');
    expect(phases.filter((p) => p === 'Running')).toEqual(['Running']);
    expect(phases.at(-1)).toBe('Running');
    second.kill('SIGTERM'); // pods keep running; the next case starts its own agent
    await new Promise((r) => second.once('exit', r));
  }, 60_000);
});
