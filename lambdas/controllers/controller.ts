// The shape every Skiff controller has: a level-triggered, idempotent reconcile of one key, fed by
// change events (client-go's controller loop). A change maps to the keys it affects; reconciling a key
// reads current state and moves it one step toward what it should be, so a duplicated, late or
// replayed event costs a no-op, never a wrong result. Loops read what they do not own through
// ctx.cache (cache.ts: the shared informers locally, a per-batch reader in the cloud), so an event
// costs in proportion to what it changed, not to the namespace.

import type { Registry } from '../apiserver/registry.ts';
import type { ResourceInfo } from '../machinery/resources.ts';
import type { KubeObject } from '../machinery/types.ts';
import { StoreReader, type ObjectReader } from './cache.ts';

export interface ChangeEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  resource: ResourceInfo;
  object: KubeObject;
  /** The object before this change, when the source knows it (informers; stream records' old image). */
  oldObject?: KubeObject;
}

export interface ReconcileResult {
  /** Reconcile this key again after so many milliseconds (work is still pending). */
  requeueAfterMs?: number;
}

/** What a controller may use: the store, and creation through the admission chain. */
export interface ControllerContext {
  registry: Registry;
  /** Creates an object as a control-plane client: admission (namespace lifecycle...) applies. */
  create(res: ResourceInfo, namespace: string | undefined, obj: KubeObject): Promise<KubeObject>;
  now(): Date;
  /** Cached reads (cache.ts); without one, loops read through a StoreReader of their own. */
  cache?: ObjectReader;
}

/** The context's cache, or a reader straight from the store for this call. */
export function readerOf(ctx: ControllerContext): ObjectReader {
  return ctx.cache ?? new StoreReader(ctx.registry);
}

export interface Controller {
  name: string;
  /** The resources whose changes this controller listens to. */
  watches: ResourceInfo[];
  /** The keys a change affects (e.g. "namespace/name"); duplicates are fine. */
  keys(ev: ChangeEvent): string[];
  reconcile(key: string, ctx: ControllerContext): Promise<ReconcileResult | void>;
  /** Every key that exists, for periodic resync (so a missed event is never missed for long). */
  allKeys(ctx: ControllerContext): Promise<string[]>;
  /**
   * How many different keys the local runner reconciles at once (controller-runtime's
   * MaxConcurrentReconciles; default 1); the same key never twice at once. In the cloud a stream batch's
   * keys run one after another: every DynamoDB write serializes on the revision counter, so writes in
   * flight together would mostly retry (and each retry is billed).
   */
  concurrency?: number;
}
