// Runs controllers in-process for the local cluster: each watched resource's change feed (the SQLite
// watch, through the registry) is turned into keys, and each key is reconciled, one at a time per
// controller, with requeue on pending work or error, plus a periodic full resync. In the cloud the same
// Controller objects are driven from DynamoDB stream batches instead.

import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Controller, ControllerContext } from '../controllers/controller.ts';

/** Longest a worker reconciles without letting the event loop turn. */
const SLICE_MS = 50;

export interface ControllerRunner {
  stop(): Promise<void>;
}

export function runControllers(ctx: ControllerContext, controllers: Controller[], opts: { resyncMs?: number } = {}): ControllerRunner {
  const { registry } = ctx;
  const ctl = new AbortController();
  // Every watch and wait listens on this one signal: dozens of listeners are expected, not a leak.
  setMaxListeners(1000, ctl.signal);
  const tasks: Promise<void>[] = [];
  for (const c of controllers) {
    const queue = new Set<string>();
    let wake: (() => void) | undefined;
    const enqueue = (k: string) => {
      queue.add(k);
      wake?.();
    };
    // Waits that end early on stop; each removes its abort listener when done, so a long-running
    // cluster does not pile them up.
    const sleep = (ms: number) =>
      new Promise<void>((r) => {
        if (ctl.signal.aborted) return r();
        const done = () => {
          clearTimeout(t);
          ctl.signal.removeEventListener('abort', done);
          r();
        };
        const t = setTimeout(done, ms);
        ctl.signal.addEventListener('abort', done, { once: true });
      });
    // Feed: one watch per resource the controller listens to, restarted if it ends.
    for (const res of c.watches) {
      tasks.push(
        (async () => {
          while (!ctl.signal.aborted) {
            try {
              for await (const ev of registry.watch(res, undefined, {}, ctl.signal)) {
                if (ev.type === 'ADDED' || ev.type === 'MODIFIED' || ev.type === 'DELETED') {
                  for (const k of c.keys({ type: ev.type, resource: res, object: ev.object as any })) enqueue(k);
                }
              }
            } catch (e) {
              if (!ctl.signal.aborted) console.error(`controller ${c.name}: watch failed, restarting`, e);
            }
            await sleep(1000);
          }
        })(),
      );
    }
    // Resync: every key, now and then, so nothing missed stays missed.
    tasks.push(
      (async () => {
        while (!ctl.signal.aborted) {
          try {
            for (const k of await c.allKeys(ctx)) enqueue(k);
          } catch (e) {
            if (!ctl.signal.aborted) console.error(`controller ${c.name}: resync failed`, e);
          }
          await sleep(opts.resyncMs ?? 30_000);
        }
      })(),
    );
    // Worker: reconcile queued keys one at a time. With an in-process store every await in a reconcile
    // resolves without a turn of the event loop, so a long queue would keep everything else in the
    // process waiting (requests, and the change feed, which the SQLite backend delivers on the next turn
    // to read a burst of writes at once): the worker gives the event loop a turn every SLICE_MS.
    tasks.push(
      (async () => {
        let sliceStart = performance.now();
        while (!ctl.signal.aborted) {
          if (performance.now() - sliceStart > SLICE_MS) {
            await new Promise<void>((r) => setImmediate(r));
            sliceStart = performance.now();
            continue; // stop() may have come meanwhile
          }
          const next = queue.values().next();
          if (next.done) {
            await new Promise<void>((r) => {
              if (ctl.signal.aborted) return r();
              const done = () => {
                ctl.signal.removeEventListener('abort', done);
                r();
              };
              wake = done;
              ctl.signal.addEventListener('abort', done, { once: true });
            });
            wake = undefined;
            sliceStart = performance.now();
            continue;
          }
          const key = next.value;
          queue.delete(key);
          try {
            const r = await c.reconcile(key, ctx);
            if (r?.requeueAfterMs !== undefined) setTimeout(() => !ctl.signal.aborted && enqueue(key), r.requeueAfterMs);
          } catch (e) {
            if (ctl.signal.aborted) break;
            console.error(`controller ${c.name}: reconcile ${key} failed, retrying`, e);
            setTimeout(() => !ctl.signal.aborted && enqueue(key), 1000);
          }
        }
      })(),
    );
  }
  return {
    async stop() {
      ctl.abort();
      await Promise.allSettled(tasks);
    },
  };
}
