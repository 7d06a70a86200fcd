// An informer, as client-go's: list a collection, then watch it from the list's resourceVersion, keeping
// a local cache of the objects by namespace/name; after a dropped watch it re-lists (a 410 Gone or a
// network error), so the cache converges on what the apiserver holds. Handlers get called after every
// change to the cache with the key that changed; `synced` resolves after the first list.
// On a client set to poll (KubeClientConfig.pollMs) it re-lists on that period instead of watching: the
// same diff turns each list into events, and no connection stays open.
// The node agent uses one per collection it follows (its pods, Services, Endpoints). A deployed agent
// is also told when to re-list by its push channel (push.ts): nudge() ends the poll's wait.

import type { KubeObject } from '../lambdas/machinery/types.ts';
import { ApiError } from '../lambdas/machinery/status.ts';
import type { KubeClient } from './kube-client.ts';

export type InformerEvent = 'ADDED' | 'MODIFIED' | 'DELETED';
export type InformerHandler = (type: InformerEvent, obj: KubeObject, key: string) => void;

export interface InformerOptions {
  /**
   * On a polling client, after the first list, ask only what changed since the last look: a watch of at
   * most a second from the last resourceVersion, which Skiff's apiserver ends once it has caught up
   * (drain=true; a list again after a 410). For collections the store keeps a change feed of (storage/indexes.ts FEEDS:
   * Services and Endpoints, which every node follows), where that read costs what changed; a list costs
   * the whole collection.
   */
  changesOnly?: boolean;
}

export const keyOf = (o: KubeObject): string => (o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name!);

// One informer per client and collection, shared by whoever follows it (client-go's
// SharedInformerFactory): the node's service proxy and its DNS server both follow Services and
// Endpoints, and with shared informers that is one list/watch (or one poll) of each, not two.
const shared = new WeakMap<KubeClient, Map<string, Informer>>();

export class Informer {
  /** The informer of `path` on this client, made on first use; each user start()s and stop()s it. */
  static shared(kube: KubeClient, path: string, log?: (msg: string) => void, opts: InformerOptions = {}): Informer {
    let byPath = shared.get(kube);
    if (!byPath) shared.set(kube, (byPath = new Map()));
    let inf = byPath.get(path);
    if (!inf) {
      inf = new Informer(kube, path, log, opts);
      inf.onStopped = () => byPath.delete(path);
      byPath.set(path, inf);
    }
    return inf;
  }

  /**
   * Nudges every informer of this client that follows `collection` (its path's last segment before any
   * query: "pods", "services", "endpoints"). Returns how many.
   */
  static nudge(kube: KubeClient, collection: string): number {
    let n = 0;
    for (const [path, inf] of shared.get(kube) ?? []) {
      if (path.split('?')[0]!.split('/').pop() !== collection) continue;
      inf.nudge();
      n++;
    }
    return n;
  }

  /** The cache: namespace/name → the object as last seen. */
  readonly items = new Map<string, KubeObject>();
  readonly synced: Promise<void>;
  private markSynced!: () => void;
  private readonly handlers: InformerHandler[] = [];
  private readonly ctl = new AbortController();
  private running?: Promise<void>;
  private stopped = false;
  private users = 0;
  private onStopped?: () => void;
  /** Ends the current wait, if one is running; else `nudged` makes the next wait end at once. */
  private endWait?: () => void;
  private nudged = false;

  /** `path` is a collection path, optionally with a query (e.g. `/api/v1/pods?fieldSelector=...`). */
  constructor(
    private readonly kube: KubeClient,
    private readonly path: string,
    private readonly log: (msg: string) => void = () => {},
    private readonly opts: InformerOptions = {},
  ) {
    this.synced = new Promise((r) => (this.markSynced = r));
  }

  on(handler: InformerHandler): this {
    this.handlers.push(handler);
    return this;
  }

  /** Starts following (once, however many users start it). */
  start(): this {
    this.users++;
    this.running ??= this.run();
    return this;
  }

  /** Stops following when its last user stops. */
  async stop(): Promise<void> {
    if (--this.users > 0) return;
    this.onStopped?.();
    this.stopped = true;
    this.ctl.abort();
    await this.running;
  }

  private emit(type: InformerEvent, obj: KubeObject): void {
    const key = keyOf(obj);
    if (type === 'DELETED') this.items.delete(key);
    else this.items.set(key, obj);
    for (const h of this.handlers) {
      try {
        h(type, obj, key);
      } catch (e) {
        this.log(`informer ${this.path}: handler failed: ${(e as Error).message}`);
      }
    }
  }

  private async run(): Promise<void> {
    // The resourceVersion the cache is at, when following changes only (opts.changesOnly).
    let at: string | undefined;
    while (!this.stopped) {
      try {
        if (at !== undefined) {
          at = await this.catchUp(at);
          await this.sleep(this.kube.pollMs!);
          continue;
        }
        const list = await this.kube.list(this.path);
        const seen = new Set(list.items.map(keyOf));
        for (const [key, obj] of [...this.items]) if (!seen.has(key)) this.emit('DELETED', obj);
        for (const o of list.items) {
          const old = this.items.get(keyOf(o));
          // Deleted and created again under the same name while the watch was down: another object.
          if (old && old.metadata.uid !== o.metadata.uid) this.emit('DELETED', old);
          const now = this.items.get(keyOf(o));
          if (now?.metadata.resourceVersion !== o.metadata.resourceVersion) this.emit(now ? 'MODIFIED' : 'ADDED', o);
        }
        this.markSynced();
        if (this.kube.pollMs) {
          if (this.opts.changesOnly) at = list.metadata.resourceVersion;
          await this.sleep(this.kube.pollMs);
          continue;
        }
        // A watch that ends (server timeout) or fails is followed by a fresh list: simple, and the diff
        // against the cache above turns it into the right events.
        for await (const ev of this.kube.watch(this.path, list.metadata.resourceVersion, this.ctl.signal)) {
          if (ev.type === 'ERROR') throw new ApiError('Expired', ev.object?.message ?? 'watch error', undefined, Number(ev.object?.code ?? 500));
          if (ev.type === 'BOOKMARK') continue;
          this.emit(ev.type as InformerEvent, ev.object);
        }
      } catch (e) {
        at = undefined; // list again
        if (this.stopped) break;
        if (!(e instanceof ApiError && e.code === 410)) this.log(`watch ${this.path}: ${(e as Error).message}; re-listing`);
        await this.sleep(this.kube.pollMs ? Math.min(this.kube.pollMs, 5000) : 500);
      }
    }
  }

  /** Applies what changed since `rv` (a watch the apiserver ends once caught up); returns the new resourceVersion. */
  private async catchUp(rv: string): Promise<string> {
    const sep = this.path.includes('?') ? '&' : '?';
    // drain=true: Skiff's apiserver ends the watch once caught up; another would hold it the second.
    for await (const ev of this.kube.watch(`${this.path}${sep}timeoutSeconds=1&drain=true`, rv, this.ctl.signal)) {
      if (ev.type === 'ERROR') throw new ApiError('Expired', ev.object?.message ?? 'watch error', undefined, Number(ev.object?.code ?? 500));
      rv = ev.object.metadata.resourceVersion ?? rv;
      if (ev.type !== 'BOOKMARK') this.emit(ev.type as InformerEvent, ev.object);
    }
    return rv;
  }

  /**
   * Re-list now rather than at the end of the poll period (a poll-mode informer; a watching one is
   * current already and re-lists only after its next wait, on an error). A nudge during a list makes the
   * next list start at once: that list may have been read before the change it is told of.
   */
  nudge(): void {
    if (this.endWait) this.endWait();
    else this.nudged = true;
  }

  /** Waits ms, or less when the informer is stopped or nudged. */
  private sleep(ms: number): Promise<void> {
    if (this.nudged) {
      this.nudged = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.ctl.signal.removeEventListener('abort', done);
        this.endWait = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.ctl.signal.addEventListener('abort', done);
      this.endWait = done;
    });
  }
}
