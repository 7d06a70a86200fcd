// Runs controllers in-process for the local cluster: each watched resource's change feed (the SQLite
// watch, through the registry) is turned into keys, and each key is reconciled, one at a time per
// controller, with requeue on pending work, back-off on error (client-go's rate limiters, ratelimit.ts),
// plus a periodic full resync. In the cloud the same Controller objects are driven from DynamoDB stream
// batches instead.
//
// Sharing the event loop with the apiserver. With an in-process store every await in a reconcile
// resolves without a turn of the event loop, so the workers work in slices of at most SLICE_MS and take
// turns: one slice per turn of the event loop for all controllers together (Turns, round robin), so
// seven busy loops cannot add up to seven slices between two looks at the sockets. Before a slice they
// give way to API requests in flight (api-priority.ts), for a bounded time.

import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { contextFor, servedKinds, type Controller, type ControllerContext } from '../controllers/controller.ts';
import type { ResourceInfo } from '../machinery/resources.ts';
import { ControllerRateLimiter, type RateLimiterOptions } from '../controllers/ratelimit.ts';
import type { ApiPriorityGate } from './api-priority.ts';
import { SharedInformers } from '../controllers/informer.ts';
import { reconcileCharged } from '../machinery/usage.ts';

/** Longest a worker reconciles without letting the event loop turn, while no API request waits. */
const SLICE_MS = 50;
/**
 * The same while API requests are in flight: a slice after giving way to them for up to
 * MAX_GIVE_WAY_MS (40) is at most 10 ms. The loops keep one fifth of a busy event loop, as 50 ms after
 * 200 did, in pieces that hold a request up by at most 10 ms: with 50, a burst of deletes at 32 clients
 * (each a garbage collector key) had a p99 of 49-69 ms, every request in flight waiting out one slice.
 */
const BUSY_SLICE_MS = 10;

export interface ControllerRunner {
  stop(): Promise<void>;
}

export interface RunnerOptions {
  resyncMs?: number;
  /** The API's in-flight requests: slices of loop work wait (a bounded time) while any is. */
  gate?: ApiPriorityGate;
  /** Back-off of failed keys (defaults: client-go's 5 ms doubling to 1000 s; 10/s overall, burst 100). */
  rateLimiter?: RateLimiterOptions;
}

/** Hands out slices of work one per turn of the event loop, in the order they were asked for. */
class Turns {
  /** Resolves with the slice's length in ms. */
  private readonly waiting: ((ms: number) => void)[] = [];
  private scheduled = false;
  constructor(
    private readonly signal: AbortSignal,
    private readonly gate: ApiPriorityGate | undefined,
  ) {
    signal.addEventListener('abort', () => this.waiting.splice(0).forEach((r) => r(0)), { once: true });
  }
  /** Waits for this worker's turn; resolves with how long its slice may be (ms). */
  take(): Promise<number> {
    if (this.signal.aborted) return Promise.resolve(0);
    return new Promise((r) => {
      this.waiting.push(r);
      this.schedule();
    });
  }
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // setImmediate: after the sockets have been looked at (the poll phase) in this turn of the loop.
    setImmediate(async () => {
      await this.gate?.giveWay();
      this.scheduled = false;
      this.waiting.shift()?.(this.gate?.busy ? BUSY_SLICE_MS : SLICE_MS);
      if (this.waiting.length) this.schedule();
    });
  }
}

export function runControllers(ctx: ControllerContext, controllers: Controller[], opts: RunnerOptions = {}): ControllerRunner {
  const { registry } = ctx;
  const ctl = new AbortController();
  // Every watch and wait listens on this one signal: dozens of listeners are expected, not a leak.
  setMaxListeners(1000, ctl.signal);
  const tasks: Promise<void>[] = [];
  const turns = new Turns(ctl.signal, opts.gate);
  // Requeue timers, cleared on stop (a backed-off key may wait minutes).
  const timers = new Set<NodeJS.Timeout>();
  /** Listeners to remove on stop. */
  const unsubscribe: (() => void)[] = [];
  const later = (ms: number, f: () => void) => {
    // Node fires a timer of more than 2^31 - 1 ms (24.8 days) at once: an RC's minReadySeconds of a
    // valid int32 asks for a requeue decades away, which must not become a 1 ms reconcile loop.
    ms = Math.min(ms, 2 ** 31 - 1);
    const t = setTimeout(() => {
      timers.delete(t);
      if (!ctl.signal.aborted) f();
    }, ms);
    timers.add(t);
  };
  // One cache per kind for all the loops (informer.ts); reconciles read it through ctx.cache.
  const informers = ctx.cache instanceof SharedInformers ? ctx.cache : new SharedInformers(registry);
  ctx = { ...ctx, cache: informers };
  // Resolved when every cache holds its first list (started below, once all loops have said what they watch).
  let cachesSynced = false;
  let markSynced!: () => void;
  const synced = new Promise<void>((r) => (markSynced = r));
  const aborted = new Promise<void>((r) => ctl.signal.addEventListener('abort', () => r(), { once: true }));
  for (const c of controllers) {
    const limiter = new ControllerRateLimiter(opts.rateLimiter);
    const concurrency = Math.max(1, c.concurrency ?? 1);
    const queue = new Set<string>();
    // The loop's own identity for its calls (identity.ts); the shared informers stay the runner's.
    const cctx = contextFor(c, ctx);
    const reconcileKey = async (key: string): Promise<void> => {
      try {
        const r = await reconcileCharged(cctx.usage, key, () => c.reconcile(key, cctx));
        limiter.forget(key);
        if (r?.requeueAfterMs !== undefined) later(r.requeueAfterMs, () => enqueue(key));
      } catch (e) {
        if (ctl.signal.aborted) return;
        const wait = limiter.when(key);
        console.error(`controller ${c.name}: reconcile ${key} failed (${limiter.numRequeues(key)} in a row), retrying in ${Math.round(wait)} ms`, e);
        later(wait, () => enqueue(key));
      }
    };
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
    // Feed: the shared informer of each kind the controller listens to (its first list, then changes).
    const feed = (res: ResourceInfo) =>
      informers.for(res).onChange((ev) => {
        for (const k of c.keys(ev)) enqueue(k);
      });
    for (const res of c.watches) feed(res);
    // And the other served kinds, custom resources as CRDs come, for a loop that asks (but those it ignores).
    if (c.watchesCustomResources && ctx.onKindsChange) {
      const fed = new Set(c.watches.map((r) => `${r.group}/${r.resource}`));
      const feedNewKinds = async () => {
        try {
          for (const res of await servedKinds(ctx)) {
            const id = `${res.group}/${res.resource}`;
            if (fed.has(id) || c.ignores?.(res) || ctl.signal.aborted) continue;
            fed.add(id);
            feed(res);
          }
        } catch (e) {
          if (!ctl.signal.aborted) console.error(`controller ${c.name}: could not read the served kinds`, e);
        }
      };
      unsubscribe.push(ctx.onKindsChange(() => void feedNewKinds()));
      void feedNewKinds();
    }
    // Resync: every key, now and then, so nothing missed stays missed.
    tasks.push(
      (async () => {
        while (!ctl.signal.aborted) {
          try {
            for (const k of await c.allKeys(cctx)) enqueue(k);
          } catch (e) {
            if (!ctl.signal.aborted) console.error(`controller ${c.name}: resync failed`, e);
          }
          await sleep(opts.resyncMs ?? 30_000);
        }
      })(),
    );
    // Worker: reconcile queued keys, `concurrency` at a time, a slice at a time (see the top of this file).
    tasks.push(
      (async () => {
        while (!ctl.signal.aborted) {
          if (!queue.size) {
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
            continue;
          }
          // Reconciles read the caches: not before they hold a first list.
          if (!cachesSynced) await Promise.race([synced, aborted]);
          const sliceMs = await turns.take();
          const sliceStart = performance.now();
          // Up to `concurrency` keys in flight (controller-runtime's MaxConcurrentReconciles), never the
          // same key twice at once: a key queued again while in flight waits for its reconcile to end.
          const inFlight = new Map<string, Promise<void>>();
          while (!ctl.signal.aborted && performance.now() - sliceStart <= sliceMs) {
            for (const key of queue) {
              if (inFlight.size >= concurrency) break;
              if (inFlight.has(key)) continue;
              queue.delete(key);
              inFlight.set(key, reconcileKey(key).finally(() => inFlight.delete(key)));
            }
            if (!inFlight.size) break;
            await Promise.race(inFlight.values());
          }
          await Promise.all(inFlight.values());
        }
      })(),
    );
  }
  void informers.start(ctl.signal).then(() => {
    cachesSynced = true;
    markSynced();
  });
  return {
    async stop() {
      ctl.abort();
      for (const u of unsubscribe) u();
      for (const t of timers) clearTimeout(t);
      await Promise.allSettled(tasks);
      await informers.stopped();
    },
  };
}
