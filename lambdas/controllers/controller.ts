// The shape every Skiff controller has: a level-triggered, idempotent reconcile of one key, fed by
// change events (client-go's controller loop). A change maps to the keys it affects; reconciling a key
// reads current state and moves it one step toward what it should be, so a duplicated, late or
// replayed event costs a no-op, never a wrong result. Loops read what they do not own through
// ctx.cache (cache.ts: the shared informers locally, a per-batch reader in the cloud), so an event
// costs in proportion to what it changed, not to the namespace.

import type { Registry } from '../apiserver/registry.ts';
import type { UsageMeter } from '../machinery/usage.ts';
import type { UserInfo } from '../apiserver/auth.ts';
import { RESOURCES, type ResourceInfo } from '../machinery/resources.ts';
import type { KubeObject } from '../machinery/types.ts';
import type { WatchEvent } from '../storage/backend.ts';
import type { ResyncMark } from '../storage/dynamodb.ts';
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
  /** Where each reconcile's storage requests are charged to its key's namespace (machinery/usage.ts). */
  usage?: UsageMeter;
  /** Creates an object as a control-plane client: admission (namespace lifecycle...) applies. */
  create(res: ResourceInfo, namespace: string | undefined, obj: KubeObject): Promise<KubeObject>;
  now(): Date;
  /** Cached reads (cache.ts); without one, loops read through a StoreReader of their own. */
  cache?: ObjectReader;
  /**
   * Every kind the store's apiserver serves now: the built-in ones and its CustomResourceDefinitions'
   * (re-read when the view is old, as a request would). Without it: the built-in kinds.
   */
  kinds?(): Promise<readonly ResourceInfo[]>;
  /** Calls `listener` when kinds are added or removed (a CRD Established or gone); returns its remover. */
  onKindsChange?(listener: () => void): () => void;
  /**
   * This context acting as `user` (identity.ts): its registry and creates are authorized as that
   * user's requests would be. The runners give each loop the context of its Controller.identity.
   */
  as?(user: UserInfo): ControllerContext;
  /** The store's log and the resync's mark (DynamoBackend, deployed): the scheduled resync reads what changed. */
  resyncLog?: ResyncLog;
}

/** The store's changes after a revision, each as the event a watch would give, up to the returned revision. */
export type ChangesSince = (after: number, each: (ev: ChangeEvent) => void) => Promise<number>;

/** What an incremental resync reads (stream.ts resyncAll); DynamoBackend has it. */
export interface ResyncLog {
  currentRevision(): Promise<number>;
  resyncMark(name: string): Promise<ResyncMark | undefined>;
  moveResyncMark(name: string, revision: number, fullAt: number | undefined, done: string[]): Promise<void>;
  addResyncPending(name: string, keys: string[]): Promise<void>;
  changesSince(after: number, each: (events: WatchEvent[]) => void): Promise<number>;
}

/** The context a loop reconciles with: acting as its own identity, reading the runner's cache. */
export function contextFor(c: Pick<Controller, 'identity'>, ctx: ControllerContext): ControllerContext {
  if (!c.identity || !ctx.as) return ctx;
  // Only the calls change hands; the clock, caches and kinds stay the caller's (a test's clock too).
  const own = ctx.as(c.identity);
  return { ...ctx, registry: own.registry, create: own.create };
}

/**
 * The served kinds that are stored, one version of each resource: the versions of a custom resource share
 * one storage, so a loop that lists, deletes or looks for dependents needs to go through only one of them.
 * Kinds that cannot be deleted are never stored (reviews, metrics.k8s.io): no loop has anything of theirs.
 */
export async function servedKinds(ctx: ControllerContext): Promise<ResourceInfo[]> {
  return oneVersionEach(((await ctx.kinds?.()) ?? RESOURCES).filter((r) => r.verbs.includes('delete')));
}

/** The first of each group/resource: one version of each (versions share one storage). */
export function oneVersionEach(resources: readonly ResourceInfo[]): ResourceInfo[] {
  const seen = new Set<string>();
  return resources.filter((r) => {
    const id = `${r.group}/${r.resource}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** The context's cache, or a reader straight from the store for this call. */
export function readerOf(ctx: ControllerContext): ObjectReader {
  return ctx.cache ?? new StoreReader(ctx.registry);
}

export interface Controller {
  name: string;
  /**
   * Who the loop acts as (identity.ts: controllerUser('<name>-controller'), a kube-system service
   * account whose ClusterRole system:controller:<name> holds what it uses); absent: the runner's own.
   */
  identity?: UserInfo;
  /** The resources whose changes this controller listens to. */
  watches: ResourceInfo[];
  /** The keys a change affects (e.g. "namespace/name"); duplicates are fine. */
  keys(ev: ChangeEvent): string[];
  reconcile(key: string, ctx: ControllerContext): Promise<ReconcileResult | void>;
  /**
   * Every key that exists, for periodic resync (so a missed event is never missed for long). Read through
   * readerOf(ctx): in the cloud a resync's loops then share one list of each kind (a kind listed by one
   * loop's keys and the garbage collector's scan is read once), locally they read the informers.
   */
  allKeys(ctx: ControllerContext): Promise<string[]>;
  /**
   * Also listen to every other served kind, custom resources included as CRDs are Established, but those
   * `ignores` names (the garbage collector: any object may be an owner or a dependent). Locally the
   * runner adds them as they come; in the cloud the deployed stream filter names `watches` only, so the
   * others are seen by the resync.
   */
  watchesCustomResources?: boolean;
  /**
   * Served kinds a loop with watchesCustomResources does not listen to (the garbage collector's Events,
   * as kube's GC ignores them): each would be one more cache of every such object in a local cluster.
   */
  ignores?: (res: ResourceInfo) => boolean;
  /**
   * Its allKeys on every scheduled resync, not only the full re-read: it has work on a clock that no
   * change announces (node lifecycle: a lease that stops being renewed).
   */
  resyncAlways?: boolean;
  /**
   * How many different keys are reconciled at once (controller-runtime's MaxConcurrentReconciles;
   * default 1): by the local runner, and in the cloud within a stream batch or a resync. The same key is
   * never reconciled twice at once. DynamoDB writes in flight together do not retry each other: a write
   * takes its revision with an atomic ADD (storage/dynamodb.ts).
   */
  concurrency?: number;
}
