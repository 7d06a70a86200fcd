// `skiff up` as a user runs it: the built CLI in its own process, stopped with SIGTERM/SIGINT, started
// again on the same data dir with every object intact and the same kubeconfig still valid.

import { afterAll, describe, expect, it } from 'vitest';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dataDir = mkdtempSync(join(tmpdir(), 'skiff-cli-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function up(): Promise<{ proc: ChildProcess; url: string; output: () => string }> {
  const proc = spawn(process.execPath, ['dist/skiff.mjs', 'up', '--port', '0', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`skiff up did not start: ${out}`)), 20_000);
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
    const first = await up();
    expect(first.output()).toContain(`export KUBECONFIG=${join(dataDir, 'kubeconfig')}`);
    expect(kubectl('create', 'configmap', 'kept', '--from-literal=k=v').trim()).toBe('configmap/kept created');
    expect(await stop(first.proc, 'SIGTERM')).toBe(0);
    expect(first.output()).toContain('SIGTERM: stopping Skiff');

    const second = await up();
    expect(JSON.parse(kubectl('get', 'configmap', 'kept', '-o', 'json')).data).toEqual({ k: 'v' });
    expect(kubectl('get', 'namespaces', '-o', 'name').trim().split('\n')).toEqual([
      'namespace/default',
      'namespace/kube-node-lease',
      'namespace/kube-public',
      'namespace/kube-system',
    ]);
    expect(await stop(second.proc, 'SIGINT')).toBe(0);
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
