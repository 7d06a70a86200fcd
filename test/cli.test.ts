// `skiff up` as a user runs it: the built CLI in its own process, stopped with SIGTERM/SIGINT, started
// again on the same data dir with every object intact and the same kubeconfig still valid.

import { afterAll, describe, expect, it } from 'vitest';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localNodeNames } from '../lambdas/local/agents.ts';
import { requireDocker, TEST_IMAGE } from './support/docker.ts';

const docker = await requireDocker();

const dataDir = mkdtempSync(join(tmpdir(), 'skiff-cli-'));
afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
  // `skiff up` leaves its service proxy's rules in place when it stops (traffic keeps flowing, as with
  // kube-proxy); the test removes them the way a user would.
  if (docker) execFileSync(process.execPath, ['dist/skiff.mjs', 'agent', '--proxy-cleanup'], { stdio: 'ignore' });
});

function up(...extra: string[]): Promise<{ proc: ChildProcess; url: string; output: () => string }> {
  return upWith({}, ...extra);
}

function upWith(env: Record<string, string>, ...extra: string[]): Promise<{ proc: ChildProcess; url: string; output: () => string }> {
  const proc = spawn(process.execPath, ['dist/skiff.mjs', 'up', '--port', '0', '--data-dir', dataDir, ...extra], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`skiff up did not start: ${out}`)), 40_000);
    proc.stdout!.on('data', () => {
      const m = /Skiff is running at (https:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve({ proc, url: m[1]!, output: () => out });
      }
    });
    proc.on('exit', (code) => reject(new Error(`skiff up exited with ${code}: ${out}`)));
  });
}

function stop(proc: ChildProcess, signal: NodeJS.Signals): Promise<number | null> {
  return new Promise((resolve) => {
    proc.on('exit', (code) => resolve(code));
    proc.kill(signal);
  });
}

const kubectl = (...args: string[]) => execFileSync('kubectl', ['--kubeconfig', join(dataDir, 'kubeconfig'), ...args], { encoding: 'utf8' });

describe('skiff up', () => {
  it('serves, stops cleanly on SIGTERM and SIGINT, and restarts with everything intact', async () => {
    expect(existsSync('dist/skiff.mjs')).toBe(true); // npm test builds before running tests
    const first = await up('--no-agent');
    expect(first.output()).toContain(`export KUBECONFIG=${join(dataDir, 'kubeconfig')}`);
    expect(first.output()).toContain('Nodes: none (--no-agent)');
    expect(kubectl('create', 'configmap', 'kept', '--from-literal=k=v').trim()).toBe('configmap/kept created');
    expect(await stop(first.proc, 'SIGTERM')).toBe(0);
    expect(first.output()).toContain('SIGTERM: stopping Skiff');

    const second = await up('--no-agent');
    expect(JSON.parse(kubectl('get', 'configmap', 'kept', '-o', 'json')).data).toEqual({ k: 'v' });
    expect(kubectl('get', 'namespaces', '-o', 'name').trim().split('\n')).toEqual([
      'namespace/default',
      'namespace/kube-node-lease',
      'namespace/kube-public',
      'namespace/kube-system',
    ]);
    expect(await stop(second.proc, 'SIGINT')).toBe(0);
  });

  it('with no Docker Engine, says so and runs the control plane alone', async () => {
    const run = await upWith({ DOCKER_HOST: `unix://${join(dataDir, 'no-such-engine.sock')}` });
    expect(run.output()).toMatch(/Nodes: NONE - the node agent could not start: no Docker Engine reachable/);
    expect(run.output()).toContain('pods stay Pending');
    expect(kubectl('get', 'namespaces', '-o', 'name')).toContain('namespace/default');
    expect(kubectl('get', 'nodes', '-o', 'name').trim()).toBe('');
    expect(await stop(run.proc, 'SIGTERM')).toBe(0);
  });

  it('explains its usage and rejects unknown commands', () => {
    expect(execFileSync(process.execPath, ['dist/skiff.mjs', '--help'], { encoding: 'utf8' })).toContain('skiff <command>');
    let code = 0;
    try {
      execFileSync(process.execPath, ['dist/skiff.mjs', 'fly'], { stdio: 'pipe' });
    } catch (e) {
      code = (e as { status: number }).status;
    }
    expect(code).toBe(2);
  });
});

describe.skipIf(!docker)('skiff up with node agents, and skiff agent --hollow', () => {
  it('runs a replication controller on two local agents; hollow nodes join from their own process', async () => {
    const cluster = await up('--nodes', '2');
    const names = localNodeNames(2);
    expect(cluster.output()).toContain(`Nodes: ${names.join(', ')} (Docker Engine)`);
    const hollow = spawn(process.execPath, ['dist/skiff.mjs', 'agent', '--hollow', '3', '--name', 'cli-hollow', '--kubeconfig', join(dataDir, 'kubeconfig')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      await until('5 Ready nodes', async () => {
        const nodes = JSON.parse(kubectl('get', 'nodes', '-o', 'json')).items;
        const ready = nodes.filter((n: any) => n.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'));
        return ready.length === 5;
      });
      expect(kubectl('get', 'nodes', '-l', 'skiff.io/hollow=true', '-o', 'name').trim().split('\n').sort()).toEqual([
        'node/cli-hollow-0',
        'node/cli-hollow-1',
        'node/cli-hollow-2',
      ]);
      // Keep the pods on the real nodes (hollow ones would report them Running without containers).
      kubectl('create', 'namespace', 'cli-rc');
      const rc = {
        apiVersion: 'v1',
        kind: 'ReplicationController',
        metadata: { name: 'spread', namespace: 'cli-rc' },
        spec: {
          replicas: 4,
          selector: { app: 'spread' },
          template: {
            metadata: { labels: { app: 'spread' } },
            spec: {
              terminationGracePeriodSeconds: 0,
              nodeSelector: { 'skiff.io/real': 'true' },
              containers: [{ name: 'c', image: TEST_IMAGE, command: ['sleep', '3600'] }],
            },
          },
        },
      };
      for (const n of names) kubectl('label', 'node', n, 'skiff.io/real=true');
      execFileSync('kubectl', ['--kubeconfig', join(dataDir, 'kubeconfig'), 'apply', '-f', '-'], { input: JSON.stringify(rc) });
      const pods = await until('4 pods Running', async () => {
        const items = JSON.parse(kubectl('get', 'pods', '-n', 'cli-rc', '-o', 'json')).items;
        return items.filter((p: any) => p.status?.phase === 'Running' && p.status.containerStatuses?.[0]?.state?.running).length === 4 && items;
      });
      // Spread over both real nodes (the scheduler's spreading score), each a real container.
      expect(new Set(pods.map((p: any) => p.spec.nodeName))).toEqual(new Set(names));
      for (const p of pods) expect(p.status.containerStatuses[0].containerID).toMatch(/^docker:\/\//);
      kubectl('delete', 'namespace', 'cli-rc', '--wait=true', '--timeout=60s');
    } finally {
      hollow.kill('SIGTERM');
      expect(await stop(cluster.proc, 'SIGTERM')).toBe(0);
    }
    // The agents' containers of the deleted namespace are gone.
    const left = await docker!.listContainers({ all: true, filters: { label: names.map((n) => `io.skiff.node=${n}`).slice(0, 1) } });
    expect(left.filter((c) => c.Labels['io.skiff.pod.namespace'] === 'cli-rc')).toEqual([]);
  }, 120_000);
});

async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch {
      // not yet
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
