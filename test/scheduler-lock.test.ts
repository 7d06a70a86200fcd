// One scheduler per data dir (lambdas/local/scheduler-lock.ts): `skiff up` keeps its scheduler's
// reservation records in memory, so only the process holding the data dir's scheduler lock schedules.
// The lock itself (a second holder refused in this process and in another, a killed holder's lock free
// at once), then two local clusters on one data dir: pods are scheduled while both run, and by the
// second once the first stops. (That a standby binds nothing is scheduler.test's.)

import { afterAll, describe, expect, it } from 'vitest';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SchedulerLock } from '../lambdas/local/scheduler-lock.ts';
import { startLocalCluster } from '../lambdas/local/server.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import { until } from './support/until.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'skiff-schedlock-'));
  dirs.push(d);
  return d;
};
const modulePath = new URL('../lambdas/local/scheduler-lock.ts', import.meta.url).pathname;
const tryInChild = (path: string) =>
  execFileSync(process.execPath, ['--import', 'tsx', '-e', `import('${modulePath}').then((m) => console.log(new m.SchedulerLock(${JSON.stringify(path)}).held()))`]).toString().trim();
const waitRetry = () => new Promise((r) => setTimeout(r, 1100)); // a standby tries at most once a second

describe('the scheduler lock', () => {
  it('has one holder: another in this process or in another process is refused until it is released', async () => {
    const path = join(tempDir(), 'scheduler.lock');
    const a = new SchedulerLock(path);
    const b = new SchedulerLock(path);
    expect(a.held()).toBe(true);
    expect(b.held()).toBe(false);
    expect(tryInChild(path)).toBe('false');
    a.release();
    await waitRetry();
    expect(b.held()).toBe(true);
    expect(a.held()).toBe(false);
    b.release();
  });

  it('is free as soon as a holder is killed', async () => {
    const path = join(tempDir(), 'scheduler.lock');
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', `import('${modulePath}').then((m) => { console.log(new m.SchedulerLock(${JSON.stringify(path)}).held()); setInterval(() => {}, 1000); })`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const said = await new Promise<string>((resolve) => child.stdout.once('data', (d) => resolve(String(d).trim())));
    expect(said).toBe('true');
    const mine = new SchedulerLock(path);
    expect(mine.held()).toBe(false);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    await waitRetry();
    expect(mine.held()).toBe(true);
    mine.release();
  });
});

describe('two local clusters on one data dir', () => {
  it('pods are scheduled while both run, and once the first stops the second takes the lock and schedules', async () => {
    const dataDir = tempDir();
    const pods = findResource('', 'v1', 'pods')!;
    const first = await startLocalCluster({ dataDir, port: 0, hollowNodes: 1 });
    const second = await startLocalCluster({ dataDir, port: 0 });
    try {
      const pod = (name: string) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { containers: [{ name: 'c', image: 'busybox' }] } });
      const boundOn = async (name: string) => (await second.api.registry.get(pods, 'default', name)).spec?.nodeName as string | undefined;
      await second.api.registry.create(pods, 'default', pod('one'));
      expect(await until('pod one bound (by the first cluster, the lock holder)', () => boundOn('one'), 30_000)).toBe('hollow-node-0');
      expect(new SchedulerLock(join(dataDir, 'scheduler.lock')).held()).toBe(false);
      await first.close();
      // The first one's hollow node is still in the store (a hollow node just stops renewing its lease).
      await second.api.registry.create(pods, 'default', pod('two'));
      // Only the second cluster's scheduler runs now.
      expect(await until('pod two bound by the second cluster, once the first stopped', () => boundOn('two'), 30_000)).toBe('hollow-node-0');
      expect(new SchedulerLock(join(dataDir, 'scheduler.lock')).held()).toBe(false);
    } finally {
      await second.close();
      await first.close().catch(() => {});
    }
  }, 90_000);
});
