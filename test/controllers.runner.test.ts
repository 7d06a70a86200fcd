// The local controller runner (lambdas/local/controllers.ts) on the SQLite store: a backlog of keys is
// worked through without keeping the rest of the process waiting (with an in-process store a reconcile
// resolves without a turn of the event loop), and stop() returns at once.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import type { Controller } from '../lambdas/controllers/controller.ts';
import { ApiPriorityGate } from '../lambdas/local/api-priority.ts';
import { runControllers } from '../lambdas/local/controllers.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import { SqliteBackend } from '../lambdas/storage/sqlite.ts';

const cms = findResource('', 'v1', 'configmaps')!;
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

function context() {
  const dir = mkdtempSync(join(tmpdir(), `skiff-runner-${process.pid}-`));
  const backend = new SqliteBackend(join(dir, 'db'), { compactIntervalMs: 0 });
  cleanup.push(async () => {
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return new ApiServer({ backend }).controllerContext();
}

/** A controller whose every reconcile takes `ms` of CPU and resolves without an event-loop turn. */
function busy(keys: string[], ms: number, done: string[]): Controller {
  return {
    name: 'busy',
    watches: [cms],
    keys: (ev) => [ev.object.metadata.name!],
    allKeys: async () => keys,
    async reconcile(key) {
      const until = performance.now() + ms;
      while (performance.now() < until);
      done.push(key);
    },
  };
}

describe('local controller runner', () => {
  it('lets the event loop turn while it works through a backlog', async () => {
    const ctx = context();
    const done: string[] = [];
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
    const runner = runControllers(ctx, [busy(keys, 3, done)], { resyncMs: 60_000 });
    cleanup.push(() => runner.stop());
    // A timer due now: it runs at the worker's first turn, long before 100 × 3 ms of work are done.
    const doneWhenTimerRan = await new Promise<number>((r) => setTimeout(() => r(done.length), 0));
    await expect.poll(() => done.length, { timeout: 5000 }).toBe(100);
    expect(doneWhenTimerRan).toBeLessThan(100);
    expect(new Set(done).size).toBe(100); // each key once
  });

  it('busy controllers take turns: one does not hold the others back until its backlog is done', async () => {
    const ctx = context();
    const done: string[] = [];
    const keys = (p: string) => Array.from({ length: 30 }, (_, i) => `${p}${i}`);
    const a = { ...busy(keys('a'), 10, done), name: 'a' };
    const b = { ...busy(keys('b'), 10, done), name: 'b' };
    // A probe on every turn of the event loop: how many keys were done since the previous turn.
    let last = 0;
    let most = 0;
    const probe = setInterval(() => {
      most = Math.max(most, done.length - last);
      last = done.length;
    }, 0);
    const runner = runControllers(ctx, [a, b], { resyncMs: 60_000 });
    cleanup.push(() => runner.stop());
    await expect.poll(() => done.length, { timeout: 10_000 }).toBe(60);
    clearInterval(probe);
    // One slice per turn for both loops together: at most 50 ms of 10 ms keys (+1 started before the
    // slice ran out), not one slice of each loop.
    expect(most).toBeLessThanOrEqual(6);
    // Slices of 50 ms (a few keys) alternate between the two loops.
    const firstHalf = done.slice(0, 30);
    expect(firstHalf.filter((k) => k.startsWith('a')).length).toBeGreaterThanOrEqual(10);
    expect(firstHalf.filter((k) => k.startsWith('b')).length).toBeGreaterThanOrEqual(10);
  });

  it('slices are at most 10 ms while an API request is in flight, 50 ms while none is', async () => {
    const ctx = context();
    const gate = new ApiPriorityGate();
    const done: string[] = [];
    // Keys of 1 ms each; the probe counts how many were done between two turns of the event loop.
    const runner = runControllers(ctx, [busy(Array.from({ length: 400 }, (_, i) => `k${i}`), 1, done)], { resyncMs: 60_000, gate });
    cleanup.push(() => runner.stop());
    const mostPerTurn = async (n: number) => {
      let last = done.length;
      let most = 0;
      const start = done.length;
      await new Promise<void>((resolve) => {
        const probe = setInterval(() => {
          most = Math.max(most, done.length - last);
          last = done.length;
          if (done.length - start >= n || done.length === 400) {
            clearInterval(probe);
            resolve();
          }
        }, 0);
      });
      return most;
    };
    // A request in flight the whole time: the loop gives way for up to 40 ms, then works 10 ms (+1 key).
    const answered = gate.enter();
    const busySlice = await mostPerTurn(100);
    answered();
    // None: slices of 50 ms.
    const idleSlice = await mostPerTurn(150);
    expect(busySlice).toBeGreaterThanOrEqual(5);
    expect(busySlice).toBeLessThanOrEqual(16);
    expect(idleSlice).toBeGreaterThanOrEqual(30);
  });

  it('stop() while the worker is letting the event loop turn ends the worker', async () => {
    const ctx = context();
    let stopped: Promise<string> | undefined;
    // One key whose reconcile outlasts the worker's time slice, so the worker yields right after it with
    // its queue empty; the reconcile asks for stop() on the next turn, ahead of the worker's own resumption.
    const c: Controller = {
      ...busy(['k0'], 80, []),
      async reconcile() {
        const until = performance.now() + 80;
        while (performance.now() < until);
        setImmediate(() => {
          stopped = new Promise<string>((r) => {
            void runner.stop().then(() => r('stopped'));
            setTimeout(() => r('still running after 2 s'), 2000).unref();
          });
        });
      },
    };
    const runner = runControllers(ctx, [c], { resyncMs: 60_000 });
    await expect.poll(() => stopped, { timeout: 5000 }).toBeDefined();
    expect(await stopped).toBe('stopped');
  });

  it("a requeue asked for decades ahead waits (it does not overflow Node's timer into a 1 ms loop)", async () => {
    const ctx = context();
    let reconciles = 0;
    const far: Controller = {
      name: 'far',
      watches: [cms],
      keys: () => [],
      allKeys: async () => ['k'],
      async reconcile() {
        reconciles++;
        // An RC with minReadySeconds 2147483647 asks this of the runner.
        return { requeueAfterMs: 2147483647 * 1000 };
      },
    };
    const runner = runControllers(ctx, [far], { resyncMs: 60_000 });
    cleanup.push(() => runner.stop());
    await expect.poll(() => reconciles, { timeout: 5000 }).toBe(1);
    await new Promise((r) => setTimeout(r, 500));
    expect(reconciles).toBe(1);
  });

  it('stop() returns promptly', async () => {
    const ctx = context();
    const done: string[] = [];
    const runner = runControllers(ctx, [busy([], 0, done)], { resyncMs: 60_000 });
    await ctx.create(cms, 'default', { metadata: { name: 'one' }, data: {} }).catch(() => ctx.registry.create(findResource('', 'v1', 'namespaces')!, undefined, { metadata: { name: 'default' } }).then(() => ctx.create(cms, 'default', { metadata: { name: 'one' }, data: {} })));
    await expect.poll(() => done, { timeout: 5000 }).toContain('one');
    const t = performance.now();
    await runner.stop();
    expect(performance.now() - t).toBeLessThan(500);
  });
});
