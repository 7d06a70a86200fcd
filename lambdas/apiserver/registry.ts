// The generic REST store: Kubernetes object semantics on top of the storage Backend. It is what
// kube-apiserver's genericregistry.Store is to etcd: resourceVersion from revisions, metadata defaults,
// generateName, optimistic concurrency, the status subresource, finalizers and deletionTimestamp,
// selectors, paging and watch. Everything specific to a kind comes from its strategy (lambdas/kinds/):
// defaults, validation, PrepareForCreate/Update, graceful deletion and storage hooks.

import { randomUUID, randomInt } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { Backend, KeyValue, WatchEvent } from '../storage/backend.ts';
import { StorageError } from '../storage/backend.ts';
import { ApiError, errors, qualifiedResource } from '../machinery/status.ts';
import { clusterQuotaPresence, planQuotaCharges, planQuotaUpdate } from './admission-quota.ts';
import type { WebhookCaller } from './webhook-post.ts';
import { chargeExistingDependents, DEPENDENT_COUNTS_KEY, dependentCharges, dependentRecharges } from './dependents.ts';
import { apiVersionOf, resourcePrefix, storageKey, storagePrefix, type ResourceInfo } from '../machinery/resources.ts';
import { kindFor, RESOURCES } from '../kinds/index.ts';
import type { KindStrategy } from '../kinds/kind.ts';
import type { KubeList, KubeObject } from '../machinery/types.ts';
import { isObject } from '../machinery/types.ts';
import { validateObject } from '../machinery/validation.ts';
import type { FieldSelector, LabelSelector } from '../machinery/selectors.ts';
import { ServiceAllocator, type ServiceAllocOptions } from './service-alloc.ts';
import { PODS_BY_NODE } from '../storage/indexes.ts';

export interface ListParams {
  labelSelector?: LabelSelector;
  fieldSelector?: FieldSelector;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
}

export interface WatchParams {
  labelSelector?: LabelSelector;
  fieldSelector?: FieldSelector;
  /** Unset or "0": start with ADDED events for the current state. Otherwise: changes after it. */
  resourceVersion?: string;
  allowBookmarks?: boolean;
  /** Interval of progress checks from the backend (bookmarks are sent on them). */
  progressIntervalMs?: number;
  /**
   * End the watch once every change committed when it began has been sent, with a BOOKMARK at that
   * revision when bookmarks are allowed: a client that polls for changes (a deployed node agent) asks
   * what changed since its last look and gets only that, then its answer ends.
   */
  drain?: boolean;
}

export interface WatchEventOut {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KubeObject | Record<string, unknown>;
}

export interface DeleteOptions {
  preconditions?: { uid?: string; resourceVersion?: string };
  gracePeriodSeconds?: number;
  propagationPolicy?: 'Orphan' | 'Background' | 'Foreground';
  dryRun?: boolean;
  /** Admission of the delete, given the object as the delete read it (app.ts admitInWrite); may throw. */
  admit?: (stored: KubeObject) => Promise<void>;
}

export interface WriteOptions {
  dryRun?: boolean;
  /**
   * The object written is the registry's to keep and to answer with, and the caller only reads the answer
   * (serializes it, or caches it as read-only). create completes and stores the object as it is rather
   * than a copy; create and guaranteedUpdate answer with the object they wrote, its new resourceVersion
   * set, rather than a parse of the stored value. For a request's decoded body and for a mutation made on
   * the object guaranteedUpdate gives it, which serve nothing after: copying a pod was ~2% of `skiff up`'s
   * CPU scheduling 10,000 pods, parsing it again ~0.8% for its create and as much for its binding. Not for
   * objects a caller keeps, or one a caller compares with what it reads later (an answer made this way
   * may hold undefined fields, which a parse would not have).
   */
  owned?: boolean;
  /**
   * Admission of an update, given the object to be written (which it may change) and the object as the
   * write read it (app.ts admitInWrite): run in the write, at no read of its own; may throw.
   */
  admit?: (next: KubeObject, stored: KubeObject) => Promise<void>;
}

// Kubernetes' generateName suffix alphabet (no vowels, no confusable characters).
const NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
function randomSuffix(): string {
  let s = '';
  for (let i = 0; i < 5; i++) s += NAME_ALPHABET[randomInt(NAME_ALPHABET.length)];
  return s;
}

function nowRFC3339(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The stored bytes carry no resourceVersion: it is the storage revision, set when reading. */
export function encode(obj: KubeObject): string {
  const { resourceVersion: _rv, ...meta } = obj.metadata;
  return JSON.stringify({ ...obj, metadata: meta });
}

export function decode(kv: KeyValue): KubeObject {
  const obj = JSON.parse(kv.value) as KubeObject;
  obj.metadata.resourceVersion = String(kv.modRevision);
  return obj;
}

/** What decode(kv) would give for kv, written from obj: obj itself, with kv's revision as its resourceVersion. */
function asWritten(obj: KubeObject, kv: KeyValue): KubeObject {
  delete obj.metadata.resourceVersion; // last among the metadata's fields, as decode puts it
  obj.metadata.resourceVersion = String(kv.modRevision);
  return obj;
}

/**
 * A watch event's value, parsed once for all the watches that read that event. The SQLite store's
 * caught-up watches share one read of the log, the same KeyValue objects (storage/sqlite.ts), so the
 * loops' informer of pods, kubectl's watch and every client's each parsed every pod event: ~1% of
 * `skiff up`'s CPU scheduling 10,000 pods with one client watching. Each watch gets its own top-level
 * object (withTypeMeta); what is below it is shared and read-only, as objects in client-go's caches are.
 */
const decodedEvents = new WeakMap<KeyValue, KubeObject>();
function decodeEventValue(kv: KeyValue): KubeObject {
  let o = decodedEvents.get(kv);
  if (!o) decodedEvents.set(kv, (o = decode(kv)));
  return o;
}

function hasSpec(obj: KubeObject): boolean {
  return obj.spec !== undefined;
}

/** Everything but metadata and status: what "the spec changed" means for metadata.generation. */
function specPart(obj: KubeObject): Record<string, unknown> {
  const { metadata: _m, status: _s, apiVersion: _a, kind: _k, ...rest } = obj;
  return rest;
}

/** A resourceVersion parameter: unset, or the decimal revision; anything else is 400. */
export function parseRV(rv: string | undefined, what = 'resourceVersion'): number | undefined {
  if (rv === undefined || rv === '') return undefined;
  if (!/^\d+$/.test(rv)) throw errors.badRequest(`invalid ${what}: ${JSON.stringify(rv)}`);
  return Number(rv);
}

interface ContinueToken {
  v: 'meta.k8s.io/v1';
  rv: number;
  start: string;
}

function encodeContinue(rv: number, lastKey: string): string {
  const tok: ContinueToken = { v: 'meta.k8s.io/v1', rv, start: lastKey };
  return Buffer.from(JSON.stringify(tok)).toString('base64url');
}

function decodeContinue(s: string): ContinueToken {
  try {
    const tok = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as ContinueToken;
    if (tok.v !== 'meta.k8s.io/v1' || typeof tok.rv !== 'number' || typeof tok.start !== 'string') throw new Error();
    return tok;
  } catch {
    throw errors.badRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
  }
}

/**
 * Most objects one namespace holds by default. A guard against runaway writes (a loop or a client
 * creating without end), not a quota anyone should meet: 10,000 pods with their Events, Endpoints and
 * the rest fit several times over, while filling one namespace to it costs a few dollars on DynamoDB
 * (`npm run cost`) rather than an unbounded bill.
 */
export const DEFAULT_MAX_OBJECTS_PER_NAMESPACE = 100_000;

/** A deployed function's maxObjectsPerNamespace: infra/skiff-cluster.ts sets it on the apiserver and both loops. */
export const MAX_OBJECTS_ENV = 'SKIFF_MAX_OBJECTS_PER_NAMESPACE';

/** A whole number from a deployed function's environment (unset or empty: undefined); anything else is refused. */
function wholeNumberFromEnv(env: NodeJS.ProcessEnv, name: string, what: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a whole number${what}, got ${JSON.stringify(v)}`);
  return n;
}

export function maxObjectsFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  return wholeNumberFromEnv(env, MAX_OBJECTS_ENV, '');
}

/** A deployed function's eventTtlSeconds (--event-ttl): infra/skiff-cluster.ts sets it on the apiserver and both loops. */
export const EVENT_TTL_ENV = 'SKIFF_EVENT_TTL_SECONDS';

export function eventTtlFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  return wholeNumberFromEnv(env, EVENT_TTL_ENV, ' of seconds');
}

/** Present once every object of the store is in its namespace's count (see countExistingObjects). */
export const OBJECT_COUNTS_KEY = '/registry/skiff.io/meta/object-counts';

export interface RegistryOptions extends ServiceAllocOptions {
  /**
   * Creates of namespaced objects beyond this many in one namespace are refused with 403 Forbidden
   * (--max-objects-per-namespace); 0 turns the guard off. Namespaces themselves and cluster-scoped
   * objects are not counted. Default DEFAULT_MAX_OBJECTS_PER_NAMESPACE.
   */
  maxObjectsPerNamespace?: number;
  /** How long an Event lasts after its last write (--event-ttl); 0: Events never expire. Default 3600. */
  eventTtlSeconds?: number;
}

/** kube-apiserver's --event-ttl default. */
export const DEFAULT_EVENT_TTL_SECONDS = 3600;

export class Registry {
  /** ClusterIPs and node ports: taken on create/update, given back on delete (service-alloc.ts). */
  readonly services: ServiceAllocator;
  readonly maxObjectsPerNamespace: number;
  readonly eventTtlSeconds: number;
  /** ResourceQuota admission (admission-quota.ts) charges creates, and updates that change usage; the ApiServer turns it on. */
  quota = false;
  /** How a service-based admission webhook is called, when not directly (deployed: webhook-post.ts's remote caller). */
  webhookCaller?: WebhookCaller;

  constructor(
    readonly backend: Backend,
    opts: RegistryOptions = {},
  ) {
    this.services = new ServiceAllocator(backend, opts);
    this.maxObjectsPerNamespace = opts.maxObjectsPerNamespace ?? DEFAULT_MAX_OBJECTS_PER_NAMESPACE;
    this.eventTtlSeconds = opts.eventTtlSeconds ?? DEFAULT_EVENT_TTL_SECONDS;
  }

  /** How long an object of the kind lasts after a write (KindStrategy.ttlSeconds), if it expires. */
  private ttlOf(kind: KindStrategy): number | undefined {
    const ttl = kind.ttlSeconds?.({ eventTtlSeconds: this.eventTtlSeconds });
    return ttl && ttl > 0 ? ttl : undefined;
  }

  /**
   * The upgrade of a store written before objects were counted: every namespaced object in no count
   * group joins its namespace's (Backend.countExisting; idempotent), then a marker key says it is done,
   * so later calls cost one read. Returns how many objects it counted. `skiff up` runs it at start;
   * for a deployed table, scripts/count-objects.ts runs it once.
   */
  async countExistingObjects(): Promise<number> {
    return this.upgradeOnce(OBJECT_COUNTS_KEY, async () => RESOURCES.filter((r) => r.namespaced).map(resourcePrefix), (kv, prefix) =>
      this.backend.countExisting(kv.key, kv.key.slice(prefix.length).split('/')[0]!),
    );
  }

  /**
   * The upgrade of a store written before dependents were counted (dependents.ts): every object with
   * owners, of the namespaced built-in kinds and the custom resources of the CRDs stored, is charged to
   * them, once; later calls cost one read. `skiff up` runs it at start, a deployed table at its bootstrap.
   */
  async countExistingDependents(): Promise<number> {
    const prefixes = async () => {
      const all = new Set(RESOURCES.filter((r) => r.namespaced).map(resourcePrefix));
      for (const kv of (await this.backend.list('/registry/apiextensions.k8s.io/customresourcedefinitions/')).kvs) {
        const spec = (decode(kv).spec ?? {}) as { group?: string; names?: { plural?: string } };
        if (spec.group && spec.names?.plural) all.add(`/registry/${spec.group}/${spec.names.plural}/`);
      }
      return all;
    };
    return this.upgradeOnce(DEPENDENT_COUNTS_KEY, prefixes, (kv) => chargeExistingDependents(this.backend, kv));
  }

  /**
   * A one-time upgrade of the store: unless `marker` is there, `each` is applied to every key under the
   * prefixes (idempotent: safe while the cluster serves, and again), then the marker says it is done, so
   * later calls cost one read. Returns how many keys `each` changed.
   */
  private async upgradeOnce(marker: string, prefixes: () => Promise<Iterable<string>>, each: (kv: KeyValue, prefix: string) => Promise<boolean>): Promise<number> {
    if (await this.backend.get(marker)) return 0;
    let counted = 0;
    for (const prefix of new Set(await prefixes())) {
      let startAfter: string | undefined;
      for (;;) {
        const page = await this.backend.list(prefix, { limit: 500, startAfter });
        for (const kv of page.kvs) if (await each(kv, prefix)) counted++;
        if (!page.more) break;
        startAfter = page.kvs[page.kvs.length - 1]!.key;
      }
    }
    try {
      await this.backend.create(marker, JSON.stringify({ countedAt: nowRFC3339(), counted }));
    } catch (e) {
      if (!(e instanceof StorageError && e.code === 'KeyExists')) throw e; // another process finished first
    }
    return counted;
  }

  // ---- reads ----

  async get(res: ResourceInfo, namespace: string | undefined, name: string): Promise<KubeObject> {
    const conv = kindFor(res).conversion;
    if (conv) return this.converted(res, await this.get(conv.storage, namespace, name));
    const kv = await this.backend.get(storageKey(res, namespace, name));
    if (!kv) throw errors.notFound(res.resource, res.group, name);
    return this.withTypeMeta(res, decode(kv));
  }

  async list(res: ResourceInfo, namespace: string | undefined, p: ListParams = {}): Promise<KubeList> {
    const conv = kindFor(res).conversion;
    if (conv) {
      const list = await this.list(conv.storage, namespace, p);
      const items = list.items.map((it) => {
        const { apiVersion: _a, kind: _k, ...rest } = this.converted(res, it);
        return rest as KubeObject;
      });
      return { ...list, apiVersion: apiVersionOf(res), kind: res.listKind, items };
    }
    const prefix = storagePrefix(res, namespace);
    let startAfter: string | undefined;
    let revision: number | undefined;
    if (p.continue) {
      const tok = decodeContinue(p.continue);
      startAfter = prefix + tok.start;
      revision = tok.rv;
    } else if (p.resourceVersion && p.resourceVersion !== '0') {
      // An exact older resourceVersion is honoured where the backend can (SQLite); "0" means any.
      revision = parseRV(p.resourceVersion);
    }
    const filter = this.matcher(p);
    // An agent's list of its pods: only pods bound to that node can match, and the store may keep them
    // indexed (storage/indexes.ts).
    const node = res.group === '' && res.resource === 'pods' && p.fieldSelector?.requirements.find((r) => r.field === 'spec.nodeName' && r.operator === '=' && r.value !== '')?.value;
    let result;
    try {
      result = await this.backend.list(prefix, {
        limit: p.limit && p.limit > 0 ? p.limit : undefined,
        startAfter,
        revision,
        filter: filter ? (kv) => filter(decode(kv)) : undefined,
        ...(node ? { index: { name: PODS_BY_NODE.name, value: node } } : {}),
      });
    } catch (e) {
      if (e instanceof StorageError && e.code === 'Compacted') {
        throw errors.gone(
          p.continue
            ? 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.'
            : `too old resource version: ${revision} (${e.revision ?? 0})`,
        );
      }
      throw e;
    }
    // Items in a list carry no apiVersion/kind in Kubernetes' JSON; the list has them.
    const items = result.kvs.map((kv) => {
      const { apiVersion: _a, kind: _k, ...item } = decode(kv);
      return item as KubeObject;
    });
    const last = result.kvs[result.kvs.length - 1];
    const meta: KubeList['metadata'] = { resourceVersion: String(result.revision) };
    if (result.more && last) meta.continue = encodeContinue(result.revision, last.key.slice(prefix.length));
    return { apiVersion: apiVersionOf(res), kind: res.listKind, metadata: meta, items };
  }

  // ---- writes ----

  async create(res: ResourceInfo, namespace: string | undefined, input: KubeObject, opts: WriteOptions = {}): Promise<KubeObject> {
    const kind = kindFor(res);
    if (kind.conversion) {
      const stored = kind.conversion.toStorage({ ...input, apiVersion: apiVersionOf(res), kind: res.kind }) as KubeObject;
      return this.converted(res, await this.create(kind.conversion.storage, namespace, stored, opts));
    }
    const obj = opts.owned ? input : structuredClone(input);
    obj.apiVersion = apiVersionOf(res);
    obj.kind = res.kind;
    // A patch may have removed metadata (an apply patch with metadata: null): Go decodes that to an
    // empty ObjectMeta, and validation then says what is missing.
    if (!isObject(obj.metadata)) obj.metadata = {};
    const meta = obj.metadata;
    if (res.namespaced) meta.namespace = namespace;
    else delete meta.namespace;
    delete meta.resourceVersion;
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    delete meta.managedFields;
    meta.uid = randomUUID();
    meta.creationTimestamp = nowRFC3339();
    if (hasSpec(obj)) meta.generation = 1;
    else delete meta.generation;
    kind.prepareForCreate?.(obj);
    kind.defaults?.(obj);
    const generated = !meta.name && !!meta.generateName;
    // Validate with a placeholder name when generating, so the generated name's rules are checked once.
    if (generated) meta.name = `${meta.generateName}${randomSuffix()}`;
    validateObject(kind, obj);
    // What the object holds outside itself is taken now (a Service's clusterIP and node ports; a dry run
    // only checks they are free), and given back if the object is not stored.
    // ResourceQuota admission, the last step before storage (admission-quota.ts): what the object as it
    // will be stored is charged, in its own storage write below. A dry run is only checked.
    const plan = res.namespaced && namespace && this.quota ? await planQuotaCharges(this, res, namespace, obj) : undefined;
    // Presence counters (admission configurations, ClusterResourceQuotas) are kept whether or not quota is on.
    const clusterQuota = clusterQuotaPresence(res);
    const abort = await kind.beginCreate?.(this, obj, opts.dryRun);
    if (opts.dryRun) return this.withTypeMeta(res, obj);
    // Namespaced objects count against their namespace's limit, in the create's own storage write; those
    // that expire (Events) do not, as they leave without a delete to take them out again.
    const limit = this.maxObjectsPerNamespace;
    const ttlSeconds = this.ttlOf(kind);
    // Quota's charges, and one to each owner the object names (dependents.ts: the garbage collector's count).
    const charges = [...(plan ? plan.charges : (clusterQuota ?? [])), ...dependentCharges(obj)];
    const count = {
      ...(res.namespaced && namespace && limit > 0 && !ttlSeconds ? { count: { group: namespace, limit } } : {}),
      ...(charges.length ? { charges } : {}),
      ...(ttlSeconds ? { ttlSeconds } : {}),
    };
    try {
      // generateName: a collision retries with a new suffix, as kube-apiserver's storage does.
      for (let attempt = 0; ; attempt++) {
        try {
          const kv = await this.backend.create(storageKey(res, namespace, meta.name!), encode(obj), count);
          return this.withTypeMeta(res, opts.owned ? asWritten(obj, kv) : decode(kv));
        } catch (e) {
          if (e instanceof StorageError && e.code === 'LimitExceeded') {
            if (plan) {
              const refused = await plan.refusal(meta.name!);
              if (refused) throw refused;
              // Nothing exceeds now (a delete gave usage back meanwhile): try again, unless the namespace is full.
              if (attempt < 5 && (limit <= 0 || (await this.backend.count(namespace!)) < limit)) continue;
            }
            // Worded as kube's ResourceQuota admission refuses a create (403 Forbidden).
            throw errors.forbidden(
              `${qualifiedResource(res.resource, res.group)} "${meta.name}" is forbidden: exceeded quota: namespace "${namespace}" holds ${limit} objects, the limit of this cluster (--max-objects-per-namespace)`,
            );
          }
          if (e instanceof StorageError && e.code === 'KeyExists') {
            if (generated && attempt < 5) {
              meta.name = `${meta.generateName}${randomSuffix()}`;
              continue;
            }
            throw errors.alreadyExists(res.resource, res.group, meta.name!);
          }
          throw e;
        }
      }
    } catch (e) {
      // Not stored: what it took goes back (e.g. AlreadyExists must not leak a Service's IP).
      if (abort) await abort();
      throw e;
    }
  }

  /**
   * PUT semantics. `subresource` "status" takes only .status from the input; the main resource keeps
   * the stored status. A resourceVersion in the input is a precondition; without one the update is
   * unconditional (retried on concurrent writes), as Kubernetes allows for these kinds.
   */
  async update(
    res: ResourceInfo,
    namespace: string | undefined,
    name: string,
    input: KubeObject,
    opts: WriteOptions & { subresource?: 'status' } = {},
  ): Promise<KubeObject> {
    if (input.metadata?.name !== undefined && input.metadata.name !== name) {
      throw errors.badRequest(`the name of the object (${input.metadata.name}) does not match the name on the URL (${name})`);
    }
    if (res.namespaced && input.metadata?.namespace !== undefined && input.metadata.namespace !== namespace) {
      throw errors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    const precondition = parseRV(input.metadata?.resourceVersion);
    // A status write is admitted with the object as the client sent it (kube's admission sees the
    // decoded request): NodeRestriction refuses labels changed through status, though they are not kept.
    const admitUpdate = opts.admit && (opts.subresource === 'status' ? (_next: KubeObject, stored: KubeObject) => opts.admit!(structuredClone(input), stored) : opts.admit);
    return this.guaranteedUpdate(res, namespace, name, precondition, { dryRun: opts.dryRun, subresource: opts.subresource, admit: admitUpdate, owned: opts.owned }, (old) => {
      const obj = structuredClone(input);
      if (opts.subresource === 'status') {
        // Only status changes through /status; everything else stays as stored.
        return { ...old, status: obj.status };
      }
      obj.metadata = { ...obj.metadata };
      return obj;
    });
  }

  /**
   * Read-modify-write with compare-and-swap, retried on conflicts when the caller gave no
   * resourceVersion precondition. `mutate` gets the current object (with resourceVersion) and returns
   * the desired one; system metadata is carried over here, so callers cannot forge it.
   */
  async guaranteedUpdate(
    res: ResourceInfo,
    namespace: string | undefined,
    name: string,
    precondition: number | undefined,
    opts: WriteOptions & { subresource?: 'status' | 'binding' | 'finalize' },
    mutate: (current: KubeObject) => KubeObject,
  ): Promise<KubeObject> {
    const kind = kindFor(res);
    const conv = kind.conversion;
    if (conv) {
      // The caller's mutation and admission see this version; the store's steps the storage version.
      const view = (o: KubeObject) => this.converted(res, o);
      const down = (o: KubeObject) => (isObject(o) && isObject(o.metadata) ? (conv.toStorage({ ...o, apiVersion: apiVersionOf(res), kind: res.kind }) as KubeObject) : o);
      const admit =
        opts.admit &&
        (async (next: KubeObject, stored: KubeObject) => {
          const v = view(next);
          await opts.admit!(v, view(stored));
          // What admission made of it, back in `next` itself and its metadata object (the caller holds both).
          const back = down(v);
          const meta = next.metadata;
          for (const k of Object.keys(next)) delete (next as Record<string, unknown>)[k];
          Object.assign(next, back);
          if (isObject(meta) && isObject(back.metadata)) {
            for (const k of Object.keys(meta)) delete (meta as Record<string, unknown>)[k];
            next.metadata = Object.assign(meta, back.metadata);
          }
        });
      return view(await this.guaranteedUpdate(conv.storage, namespace, name, precondition, { ...opts, admit }, (cur) => down(mutate(view(cur)))));
    }
    kind.checkDelete?.(name);
    const key = storageKey(res, namespace, name);
    for (let attempt = 0; ; attempt++) {
      const kv = await this.backend.get(key);
      if (!kv) throw errors.notFound(res.resource, res.group, name);
      if (precondition !== undefined && precondition !== kv.modRevision) {
        throw errors.staleResourceVersion(res.resource, res.group, name);
      }
      const old = this.withTypeMeta(res, decode(kv));
      // The mutation's own copy, parsed again: JSON.parse makes it in less than half structuredClone's time.
      const obj = mutate(this.withTypeMeta(res, decode(kv)));
      if (!isObject(obj) || !isObject(obj.metadata)) throw errors.badRequest('object has no metadata');
      obj.apiVersion = apiVersionOf(res);
      obj.kind = res.kind;
      const m = obj.metadata;
      const om = old.metadata;
      // Fields the system owns: uid and creationTimestamp are always the stored ones (Kubernetes ignores
      // what a client sends); attempts to change name/namespace are reported by validation.
      m.uid = m.uid ?? om.uid;
      m.creationTimestamp = om.creationTimestamp;
      await opts.admit?.(obj, old);
      // What the kind carries over from the stored object (the status, on a main-resource write).
      kind.prepareForUpdate?.(obj, old, opts.subresource);
      if (res.namespaced) m.namespace = m.namespace ?? namespace;
      m.name = m.name ?? name;
      // deletionTimestamp can only be set by delete, and never cleared.
      if (om.deletionTimestamp) {
        m.deletionTimestamp = om.deletionTimestamp;
        m.deletionGracePeriodSeconds = om.deletionGracePeriodSeconds;
      } else {
        delete m.deletionTimestamp;
        delete m.deletionGracePeriodSeconds;
      }
      delete m.managedFields;
      if (om.generation !== undefined || hasSpec(obj)) {
        const gen = om.generation ?? 1;
        m.generation = isDeepStrictEqual(specPart(obj), specPart(old)) ? gen : gen + 1;
      }
      kind.defaults?.(obj);
      // Subresources have their own update rules (binding may set spec.nodeName, status may not touch spec).
      validateObject(kind, obj, old, { subresource: opts.subresource });
      // A write that removes the last finalizer of an object being deleted completes the delete.
      const finishDelete = !!om.deletionTimestamp && !(m.finalizers?.length) && !kind.finalizing?.(obj);
      const unchanged = isDeepStrictEqual(stripRV(obj), stripRV(old));
      // A dry run shows what the kind's storage hook would take (a Service's new clusterIP or node ports),
      // and checks requested values, without taking them.
      if (opts.dryRun && !unchanged) await kind.beginUpdate?.(this, obj, old, { dryRun: true, subresource: opts.subresource });
      if (opts.dryRun || (unchanged && !finishDelete)) {
        // No-op updates do not advance the revision (Kubernetes skips the write as well).
        return unchanged ? old : this.withTypeMeta(res, obj);
      }
      // Quota (admission-quota.ts): an update that changes what quota sees replaces the object's charges
      // in its own storage write; any other keeps them and reads nothing.
      const recharge = !finishDelete && res.namespaced && namespace && this.quota ? await planQuotaUpdate(this, res, namespace, obj, old) : undefined;
      const hook = finishDelete ? undefined : await kind.beginUpdate?.(this, obj, old, { subresource: opts.subresource });
      try {
        if (finishDelete) {
          const deleted = await this.backend.delete(key, kv.modRevision);
          const out = this.withTypeMeta(res, decode({ ...deleted, value: encode(obj) }));
          await kind.afterDelete?.(this, old);
          return out;
        }
        // And the owners' counts, when the object's owners changed (dependents.ts).
        const charges = [...(recharge?.charges ?? []), ...dependentRecharges(obj, old)];
        const ttlSeconds = this.ttlOf(kind);
        const written = await this.backend.update(key, encode(obj), kv.modRevision, charges.length || ttlSeconds ? { ...(charges.length ? { charges } : {}), ...(ttlSeconds ? { ttlSeconds } : {}) } : undefined);
        await hook?.commit();
        return this.withTypeMeta(res, opts.owned ? asWritten(obj, written) : decode(written));
      } catch (e) {
        await hook?.abort();
        if (e instanceof StorageError && e.code === 'LimitExceeded' && recharge) {
          const refused = await recharge.refusal(name);
          if (refused) throw refused;
          // Nothing exceeds now (usage was given back meanwhile): again, from a fresh read.
          if (attempt < 5) continue;
          throw errors.forbidden(`${qualifiedResource(res.resource, res.group)} "${name}" is forbidden: exceeded quota`);
        }
        if (e instanceof StorageError && (e.code === 'Conflict' || e.code === 'NotFound')) {
          if (e.code === 'NotFound') throw errors.notFound(res.resource, res.group, name);
          if (precondition !== undefined) throw errors.staleResourceVersion(res.resource, res.group, name);
          if (attempt < 100) continue;
        }
        throw e;
      }
    }
  }

  /**
   * DELETE. Objects with finalizers (or a namespace with spec.finalizers, or a pod on a node that
   * needs graceful termination) get deletionTimestamp and stay until those are done; others go now.
   * Returns the object as it was deleted or as it now is, and whether it is gone.
   */
  async delete(
    res: ResourceInfo,
    namespace: string | undefined,
    name: string,
    opts: DeleteOptions = {},
  ): Promise<{ object: KubeObject; deleted: boolean }> {
    const kind = kindFor(res);
    const conv = kind.conversion;
    if (conv) {
      const admit = opts.admit && ((stored: KubeObject) => opts.admit!(this.converted(res, stored)));
      const r = await this.delete(conv.storage, namespace, name, { ...opts, admit });
      return { object: this.converted(res, r.object), deleted: r.deleted };
    }
    kind.checkDelete?.(name);
    const key = storageKey(res, namespace, name);
    for (let attempt = 0; ; attempt++) {
      const kv = await this.backend.get(key);
      if (!kv) throw errors.notFound(res.resource, res.group, name);
      const cur = this.withTypeMeta(res, decode(kv));
      await opts.admit?.(cur);
      const pre = opts.preconditions;
      if (pre?.uid && pre.uid !== cur.metadata.uid) {
        throw errors.conflict(
          res.resource,
          res.group,
          name,
          `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${cur.metadata.uid}`,
        );
      }
      if (pre?.resourceVersion && pre.resourceVersion !== cur.metadata.resourceVersion) {
        throw errors.conflict(
          res.resource,
          res.group,
          name,
          `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${cur.metadata.resourceVersion}`,
        );
      }
      const next = structuredClone(cur);
      const m = next.metadata;
      // Propagation policy becomes a finalizer that the garbage collector acts on.
      const finalizers = new Set(m.finalizers ?? []);
      const propagation = opts.propagationPolicy ?? kind.defaultPropagationPolicy;
      if (!m.deletionTimestamp) {
        if (propagation === 'Orphan') finalizers.add('orphan');
        if (propagation === 'Foreground') finalizers.add('foregroundDeletion');
      }
      // Graceful deletion is the kind's (pods bound to a node); every other object goes at once.
      const graceful = kind.gracePeriodSeconds?.(cur, opts.gracePeriodSeconds) ?? 0;
      const mustWait = finalizers.size > 0 || !!kind.finalizing?.(cur) || graceful > 0;
      if (!mustWait) {
        if (opts.dryRun) return { object: cur, deleted: true };
        try {
          const deleted = await this.backend.delete(key, kv.modRevision);
          // Gone: what it held (a Service's clusterIP and node ports) can be taken again.
          await kind.afterDelete?.(this, cur);
          return { object: this.withTypeMeta(res, decode(deleted)), deleted: true };
        } catch (e) {
          if (e instanceof StorageError && e.code === 'Conflict' && attempt < 100) continue;
          if (e instanceof StorageError && e.code === 'NotFound') throw errors.notFound(res.resource, res.group, name);
          throw e;
        }
      }
      if (m.deletionTimestamp && isDeepStrictEqual([...finalizers], m.finalizers ?? [])) {
        // Already being deleted: a second delete changes nothing (except a shorter grace period).
        if (graceful >= (m.deletionGracePeriodSeconds ?? 0) || !kind.gracePeriodSeconds) return { object: cur, deleted: false };
      }
      if (finalizers.size) m.finalizers = [...finalizers];
      if (!m.deletionTimestamp) {
        m.deletionTimestamp = new Date(Date.now() + graceful * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
      }
      m.deletionGracePeriodSeconds = graceful;
      kind.prepareForDelete?.(next);
      if (opts.dryRun) return { object: next, deleted: false };
      try {
        const ttlSeconds = this.ttlOf(kind);
        const written = await this.backend.update(key, encode(next), kv.modRevision, ttlSeconds ? { ttlSeconds } : undefined);
        return { object: this.withTypeMeta(res, decode(written)), deleted: false };
      } catch (e) {
        if (e instanceof StorageError && e.code === 'Conflict' && attempt < 100) continue;
        if (e instanceof StorageError && e.code === 'NotFound') throw errors.notFound(res.resource, res.group, name);
        throw e;
      }
    }
  }

  // ---- the scale subresource, as a control loop uses it (the HorizontalPodAutoscaler's) ----

  /** The object as its autoscaling/v1 Scale (a kind without a scale subresource: 404). */
  async getScale(res: ResourceInfo, namespace: string | undefined, name: string): Promise<Record<string, any>> {
    const rules = kindFor(res).scale;
    if (!rules) throw errors.notFound(`${res.resource}/scale`, res.group, name);
    return rules.toScale(await this.get(res, namespace, name));
  }

  /** Sets the desired replicas through the scale subresource's rules; returns the Scale written. */
  async updateScale(res: ResourceInfo, namespace: string | undefined, name: string, replicas: number): Promise<Record<string, any>> {
    const rules = kindFor(res).scale;
    if (!rules) throw errors.notFound(`${res.resource}/scale`, res.group, name);
    const out = await this.guaranteedUpdate(res, namespace, name, undefined, {}, (o) => {
      rules.setReplicas(o, replicas);
      return o;
    });
    return rules.toScale(out);
  }

  /** DELETE on a collection: every matching object, as Kubernetes' deletecollection does. */
  async deleteCollection(res: ResourceInfo, namespace: string | undefined, p: ListParams, opts: DeleteOptions): Promise<KubeList> {
    const list = await this.list(res, namespace, { labelSelector: p.labelSelector, fieldSelector: p.fieldSelector });
    const items: KubeObject[] = [];
    for (const it of list.items) {
      try {
        const r = await this.delete(res, it.metadata.namespace, it.metadata.name!, opts);
        items.push(r.object);
      } catch (e) {
        if (!(e instanceof ApiError && e.code === 404)) throw e;
      }
    }
    return { ...list, items };
  }

  // ---- watch ----

  /**
   * A stream of watch events as kube-apiserver sends them. Selectors are applied to both the old and
   * new object, so an object that stops matching is reported DELETED and one that starts matching ADDED.
   */
  async *watch(res: ResourceInfo, namespace: string | undefined, p: WatchParams, signal: AbortSignal): AsyncGenerator<WatchEventOut> {
    const conv = kindFor(res).conversion;
    if (conv) {
      for await (const ev of this.watch(conv.storage, namespace, p, signal)) {
        if (ev.type === 'ERROR') yield ev;
        else if (ev.type === 'BOOKMARK') yield { type: 'BOOKMARK', object: { ...ev.object, kind: res.kind, apiVersion: apiVersionOf(res) } };
        else yield { type: ev.type, object: this.converted(res, ev.object as KubeObject) };
      }
      return;
    }
    const prefix = storagePrefix(res, namespace);
    const match = this.matcher(p);
    let from: number;
    const rv = p.resourceVersion;
    if (rv === undefined || rv === '' || rv === '0') {
      // Start with the current state as ADDED events, then follow (Kubernetes' "send initial events").
      const list = await this.list(res, namespace, { labelSelector: p.labelSelector, fieldSelector: p.fieldSelector });
      for (const it of list.items) yield { type: 'ADDED', object: this.withTypeMeta(res, it) };
      from = Number(list.metadata.resourceVersion);
    } else {
      from = parseRV(rv)!;
    }
    let lastSent = from;
    const bookmark = (revision: number): WatchEventOut => ({
      type: 'BOOKMARK',
      object: { kind: res.kind, apiVersion: apiVersionOf(res), metadata: { resourceVersion: String(revision) } },
    });
    const until = p.drain ? await this.backend.currentRevision() : Infinity;
    if (from >= until) {
      if (p.allowBookmarks) yield bookmark(from);
      return;
    }
    let iter: AsyncIterable<import('../storage/backend.ts').WatchBatch>;
    try {
      // Draining, every batch matters (an empty one says how far the backend has looked): no waiting.
      // Previous values only for a selector (translate): the DynamoDB backend then reads a collection's
      // changes without them (every node's agent follows Endpoints, without a selector).
      iter = this.backend.watch(prefix, from, signal, p.drain ? 0 : p.progressIntervalMs, { prevKv: match !== undefined });
      for await (const batch of iter) {
        for (const ev of batch.events) {
          const out = this.translate(res, ev, match);
          if (out) yield out;
        }
        if (batch.revision >= until) {
          if (p.allowBookmarks) yield bookmark(batch.revision);
          return;
        }
        if (batch.events.length === 0 && p.allowBookmarks && batch.revision > lastSent) {
          lastSent = batch.revision;
          yield bookmark(batch.revision);
        }
      }
    } catch (e) {
      if (e instanceof StorageError && e.code === 'Compacted') {
        yield { type: 'ERROR', object: errors.gone(`too old resource version: ${from} (${e.revision ?? 0})`).status as unknown as KubeObject };
        return;
      }
      throw e;
    }
  }

  private translate(res: ResourceInfo, ev: WatchEvent, matches: ((o: KubeObject) => boolean) | undefined): WatchEventOut | undefined {
    const cur = this.withTypeMeta(res, decodeEventValue(ev.kv));
    if (!matches) {
      // No selector: every object matches, so the previous value is not needed (most watches, the loops'
      // informers among them; parsing it was ~40% of the decoding in `skiff up` scheduling 10,000 pods,
      // and the backend may leave it out: WatchOptions.prevKv).
      if (ev.type === 'delete') return { type: 'DELETED', object: cur };
      return { type: ev.type === 'update' ? 'MODIFIED' : 'ADDED', object: cur };
    }
    const prev = ev.prevKv ? this.withTypeMeta(res, decodeEventValue(ev.prevKv)) : undefined;
    if (ev.type === 'delete') {
      if (!(prev ? matches(prev) : matches(cur))) return undefined;
      return { type: 'DELETED', object: cur };
    }
    const nowMatches = matches(cur);
    const wasMatching = prev ? matches(prev) : false;
    if (ev.type === 'create') return nowMatches ? { type: 'ADDED', object: cur } : undefined;
    if (nowMatches && wasMatching) return { type: 'MODIFIED', object: cur };
    if (nowMatches) return { type: 'ADDED', object: cur };
    if (wasMatching) return { type: 'DELETED', object: cur };
    return undefined;
  }

  // ---- helpers ----

  private matcher(p: { labelSelector?: LabelSelector; fieldSelector?: FieldSelector }): ((o: KubeObject) => boolean) | undefined {
    const ls = p.labelSelector && !p.labelSelector.empty ? p.labelSelector : undefined;
    const fs = p.fieldSelector && !p.fieldSelector.empty ? p.fieldSelector : undefined;
    if (!ls && !fs) return undefined;
    return (o) => (!ls || ls.matches(o.metadata.labels)) && (!fs || fs.matches(o));
  }

  /** An object of a converted version's storage version, as that version (KindStrategy.conversion). */
  private converted(res: ResourceInfo, stored: KubeObject): KubeObject {
    return this.withTypeMeta(res, kindFor(res).conversion!.fromStorage(stored) as KubeObject);
  }

  private withTypeMeta(res: ResourceInfo, obj: KubeObject): KubeObject {
    // apiVersion and kind first, as Kubernetes serializes them.
    const { apiVersion: _a, kind: _k, ...rest } = obj;
    return { apiVersion: apiVersionOf(res), kind: res.kind, ...rest } as KubeObject;
  }
}

function stripRV(o: KubeObject): KubeObject {
  const { resourceVersion: _rv, ...m } = o.metadata;
  return { ...o, metadata: m };
}
