// Shared informers for the local cluster: one cache per kind per process, kept by list+watch through
// the registry (client-go's SharedIndexInformer is the model), read by every loop through the
// ObjectReader interface (cache.ts) and feeding them change events that carry the old object too.
//
// A kind's cache is a map of namespace/name to the object, plus indexes: by namespace (always), and by
// the INDEXERS of cache.ts (controller owner uid, node name, Service selector pairs, label pairs). Reads are answered
// from memory; an index lookup costs the size of its answer.
//
// List, then watch from the list's resourceVersion. If the watch ends or is too old (410 Gone, the
// store compacted its log), list again and turn the difference into events (an object gone meanwhile
// is a DELETED with its last known state), so handlers see every change's end state at least once.

import type { Registry } from '../apiserver/registry.ts';
import { apiVersionOf, type ResourceInfo } from '../machinery/resources.ts';
import type { KubeObject } from '../machinery/types.ts';
import { INDEXERS, type IndexName, type ObjectReader } from './cache.ts';
import type { ChangeEvent } from './controller.ts';

export type ChangeHandler = (ev: ChangeEvent) => void;

const keyOf = (o: KubeObject) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

/** One kind's cache and its watch. */
export class SharedInformer {
  private readonly store = new Map<string, KubeObject>();
  /** index name → value → keys; 'namespace' is kept for every kind. */
  private readonly indexes = new Map<IndexName | 'namespace', Map<string, Set<string>>>();
  private readonly handlers: ChangeHandler[] = [];
  /** The store revision the cache reflects: its list's, then each applied event's. */
  private revision = 0;
  /** Loops waiting for the cache to reach a revision (caughtUp). */
  private readonly waiters = new Set<{ revision: number; resolve: (ok: boolean) => void }>();
  private syncedResolve!: () => void;
  /** Resolves once the first list is in the cache. */
  readonly synced = new Promise<void>((r) => (this.syncedResolve = r));

  constructor(
    readonly resource: ResourceInfo,
    private readonly registry: Registry,
    private readonly retryMs = 1000,
  ) {
    for (const name of ['namespace', ...Object.keys(INDEXERS)] as (IndexName | 'namespace')[]) this.indexes.set(name, new Map());
  }

  /** Handlers added after the first list get no replay of it: add them before run(). */
  onChange(h: ChangeHandler): void {
    this.handlers.push(h);
  }

  get(namespace: string | undefined, name: string): KubeObject | undefined {
    return this.store.get(`${namespace ?? ''}/${name}`);
  }

  list(namespace: string | undefined): KubeObject[] {
    if (namespace === undefined || !this.resource.namespaced) return [...this.store.values()];
    return this.lookup('namespace', namespace);
  }

  /**
   * Resolves true once the cache reflects the store at `revision` or later (an event of this kind at or
   * after it has been applied), false after timeoutMs: a loop that wrote at that revision then reads
   * the store instead of a cache that does not yet show its own writes.
   */
  caughtUp(revision: number, timeoutMs: number): Promise<boolean> {
    if (this.revision >= revision) return Promise.resolve(true);
    return new Promise((resolve) => {
      const w = {
        revision,
        resolve: (ok: boolean) => {
          clearTimeout(t);
          this.waiters.delete(w);
          resolve(ok);
        },
      };
      const t = setTimeout(() => w.resolve(false), timeoutMs);
      this.waiters.add(w);
    });
  }

  count(index: IndexName | 'namespace', value: string): number {
    return this.indexes.get(index)!.get(value)?.size ?? 0;
  }

  lookup(index: IndexName | 'namespace', value: string): KubeObject[] {
    const keys = this.indexes.get(index)!.get(value);
    return keys ? [...keys].map((k) => this.store.get(k)!) : [];
  }

  /** Lists and watches until the signal aborts. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        const list = await this.registry.list(this.resource, undefined);
        // Items of a list carry no apiVersion/kind; the watch's objects do, and so do the cache's.
        this.replace(list.items.map((o) => ({ apiVersion: apiVersionOf(this.resource), kind: this.resource.kind, ...o })));
        this.reached(Number(list.metadata.resourceVersion));
        this.syncedResolve();
        for await (const ev of this.registry.watch(this.resource, undefined, { resourceVersion: list.metadata.resourceVersion }, signal)) {
          // ERROR is 410 Gone (the log was compacted past our revision): list again.
          if (ev.type === 'ERROR') break;
          if (ev.type === 'BOOKMARK') continue;
          const obj = ev.object as KubeObject;
          this.apply(ev.type, obj);
          this.reached(Number(obj.metadata.resourceVersion));
        }
      } catch (e) {
        if (!signal.aborted) console.error(`informer ${this.resource.resource}: list/watch failed, listing again`, e);
      }
      if (!signal.aborted) await new Promise((r) => setTimeout(r, this.retryMs));
    }
  }

  private reached(revision: number): void {
    if (!(revision > this.revision)) return;
    this.revision = revision;
    for (const w of this.waiters) if (w.revision <= revision) w.resolve(true);
  }

  /** A fresh list: what changed since the cache's state becomes events. */
  private replace(items: KubeObject[]): void {
    const seen = new Set<string>();
    for (const o of items) {
      seen.add(keyOf(o));
      const old = this.store.get(keyOf(o));
      if (!old) this.apply('ADDED', o);
      else if (old.metadata.resourceVersion !== o.metadata.resourceVersion) this.apply('MODIFIED', o);
    }
    for (const [k, old] of [...this.store]) if (!seen.has(k)) this.apply('DELETED', old);
  }

  private apply(type: ChangeEvent['type'], obj: KubeObject): void {
    const key = keyOf(obj);
    const old = this.store.get(key);
    if (old) this.unindex(key, old);
    if (type === 'DELETED') this.store.delete(key);
    else {
      this.store.set(key, obj);
      this.index(key, obj);
    }
    const ev: ChangeEvent = { type, resource: this.resource, object: obj, ...(old ? { oldObject: old } : {}) };
    for (const h of this.handlers) {
      try {
        h(ev);
      } catch (e) {
        console.error(`informer ${this.resource.resource}: a handler failed`, e);
      }
    }
  }

  private valuesOf(obj: KubeObject): [IndexName | 'namespace', string[]][] {
    return [['namespace', obj.metadata.namespace ? [obj.metadata.namespace] : []], ...(Object.entries(INDEXERS) as [IndexName, (o: KubeObject) => string[]][]).map(([n, f]) => [n, f(obj)] as [IndexName, string[]])];
  }

  private index(key: string, obj: KubeObject): void {
    for (const [name, values] of this.valuesOf(obj)) {
      const idx = this.indexes.get(name)!;
      for (const v of values) {
        let set = idx.get(v);
        if (!set) idx.set(v, (set = new Set()));
        set.add(key);
      }
    }
  }

  private unindex(key: string, obj: KubeObject): void {
    for (const [name, values] of this.valuesOf(obj)) {
      const idx = this.indexes.get(name)!;
      for (const v of values) {
        const set = idx.get(v);
        set?.delete(key);
        if (set && !set.size) idx.delete(v);
      }
    }
  }
}

/** The process's informers, one per kind, made on first use; the reader the local loops get. */
export class SharedInformers implements ObjectReader {
  private readonly informers = new Map<ResourceInfo, SharedInformer>();
  private readonly runs: Promise<void>[] = [];
  private running?: AbortSignal;

  constructor(private readonly registry: Registry) {}

  /** The informer of a kind (made if new; started at once if the others already run). */
  for(res: ResourceInfo): SharedInformer {
    let inf = this.informers.get(res);
    if (!inf) {
      inf = new SharedInformer(res, this.registry);
      this.informers.set(res, inf);
      if (this.running) this.runs.push(inf.run(this.running));
    }
    return inf;
  }

  /** The kinds cached, one informer each. */
  kinds(): ResourceInfo[] {
    return [...this.informers.keys()];
  }

  /** Starts every informer made so far (and any made later); resolves when all have listed once. */
  async start(signal: AbortSignal): Promise<void> {
    this.running = signal;
    for (const inf of this.informers.values()) this.runs.push(inf.run(signal));
    await this.synced();
  }

  /** Resolves when every informer has stopped (after the start signal aborted). */
  async stopped(): Promise<void> {
    await Promise.allSettled(this.runs);
  }

  synced(): Promise<void> {
    return Promise.all([...this.informers.values()].map((i) => i.synced)).then(() => undefined);
  }

  async get(res: ResourceInfo, namespace: string | undefined, name: string): Promise<KubeObject | undefined> {
    const inf = this.for(res);
    await inf.synced;
    return inf.get(namespace, name);
  }

  async list(res: ResourceInfo, namespace: string | undefined): Promise<KubeObject[]> {
    const inf = this.for(res);
    await inf.synced;
    return inf.list(namespace);
  }

  async byIndex(res: ResourceInfo, index: IndexName, value: string): Promise<KubeObject[]> {
    const inf = this.for(res);
    await inf.synced;
    return inf.lookup(index, value);
  }

  async countByIndex(res: ResourceInfo, index: IndexName, value: string): Promise<number> {
    const inf = this.for(res);
    await inf.synced;
    return inf.count(index, value);
  }

  /** Waits (up to CAUGHT_UP_MS) for the kind's cache to reach a revision; see SharedInformer.caughtUp. */
  async caughtUp(res: ResourceInfo, revision: number): Promise<boolean> {
    const inf = this.for(res);
    await inf.synced;
    return inf.caughtUp(revision, CAUGHT_UP_MS);
  }
}

/**
 * How long a loop waits for the cache to show its own writes before it reads the store instead. The
 * local store's watch delivers a write on the next turn of the event loop, so this is reached only when
 * the process is overloaded or the watch is being re-established.
 */
const CAUGHT_UP_MS = 2000;
