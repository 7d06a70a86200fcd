// Object history (issue #17 item 5): who changed an object, when, how (a diff), for a retention period,
// served read-only at /apis/history.skiff.io/v1/[namespaces/{ns}/]{resource}[.{group}]/{name}.
//
// How a change is recorded. The store holds values and revisions, not users, so the identity must travel
// with the write. Every write of an object goes through the apiserver's Registry onto its Backend, in the
// apiserver Lambda (requests) and in the loops' Lambdas and `skiff up` (the control loops, each acting as
// its own identity through ApiServer.controllerContext). The ApiServer wraps its Backend
// (recordingBackend): after a create, update or delete of an object succeeds, the wrapper records
// {key, revision, previous revision, operation, request verb, user, time, value} in the history store,
// the user being whoever the write runs for (an AsyncLocalStorage scope: a request's user after
// impersonation, set by ApiServer.route; a loop's identity, set by actingAs). The diff is computed when
// read, between consecutive values.
//
// What this can lose, and how it shows. The record is a second write after the object's own, not in its
// transaction (the DynamoDB write path is another module's, and a history item in every transaction would
// make each one larger): a process that dies between the two (a Lambda timing out, kill -9), or a history
// store that refuses the write (logged, never failing the request whose change is already stored), leaves
// that change unrecorded. Each entry carries the revision it replaced, so the next recorded change of the
// object says so (`unrecordedBefore`) and its diff spans both changes, attributed to its own writer only
// in that flagged form. Deriving history from the change stream instead (the DynamoDB stream, a local
// watch) would miss no change but would need the user beside each revision: a side record keyed by a
// revision only known after the write, which the same crash loses, so it buys completeness of values
// only, at the cost of one more Lambda on the stream. See ARCHITECTURE.md.

import { contextSlot } from '../machinery/context.ts';
import { createTwoFilesPatch, formatPatch } from 'diff';
import { stringify as toYaml } from 'yaml';
import type { Backend, KeyValue } from '../storage/backend.ts';
import type { HistoryActor, HistoryEntry, HistoryOperation, HistoryStore } from '../storage/history.ts';
import { errors } from '../machinery/status.ts';
import { storageKey } from '../machinery/resources.ts';
import type { KindRegistry } from '../kinds/index.ts';
import type { RequestAttributes, UserInfo } from './auth.ts';
import type { ApiRequest, ApiResponse } from './http.ts';

export const HISTORY_GROUP = 'history.skiff.io';
export const HISTORY_VERSION = 'v1';

export interface HistoryOptions {
  store: HistoryStore;
  /** How long an entry is kept (skiff up --history-retention, SKIFF_HISTORY_RETENTION); 0 records nothing. */
  retentionSeconds: number;
  /**
   * Collections not recorded, as "{group|core}/{resource}": by default Events and Leases, which are most
   * of an idle cluster's writes (a node renews its Lease every 10 s) and whose history nobody asks for.
   */
  exclude?: string[];
}

export const DEFAULT_HISTORY_EXCLUDE = ['core/events', 'events.k8s.io/events', 'coordination.k8s.io/leases'];

// ---- who a write runs for ----

interface WriteScope {
  actor?: HistoryActor;
  verb?: string;
  subresource?: string;
}

const scopes = contextSlot<WriteScope>('history write scope');

const actorOf = (user: UserInfo, authenticated?: UserInfo): HistoryActor => ({
  username: user.username,
  ...(user.uid ? { uid: user.uid } : {}),
  groups: user.groups,
  ...(authenticated && authenticated.username !== user.username ? { impersonatedBy: authenticated.username } : {}),
});

/** Runs a request's handling in a scope of its own, which setRequestWriter then names. */
export function inWriteScope<T>(fn: () => Promise<T>): Promise<T> {
  return scopes.run({}, fn);
}

/** The request's writes are this user's (after impersonation: `authenticated` is who impersonated). */
export function setRequestWriter(user: UserInfo, authenticated: UserInfo, verb: string, subresource?: string): void {
  const s = scopes.getStore();
  if (!s) return;
  s.actor = actorOf(user, authenticated);
  s.verb = verb;
  s.subresource = subresource;
}

/**
 * The object with every method call run as `user`'s writes (a control loop's registry): a loop's work may
 * have been woken from inside a request's scope (a watch event scheduled by that request's write), and
 * must not be recorded as that request's user's.
 */
export function actingAs<T extends object>(target: T, user: UserInfo): T {
  const scope: WriteScope = { actor: actorOf(user) };
  return new Proxy(target, {
    get(t, prop, receiver) {
      const value = Reflect.get(t, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => scopes.run(scope, () => (value as (...a: unknown[]) => unknown).apply(t, args));
    },
  });
}

// ---- recording ----

/** The collection of a storage key ("{group|core}/{resource}"), or undefined for the store's own keys. */
function collectionOf(key: string): string | undefined {
  const m = /^\/registry\/([^/]+)\/([^/]+)\//.exec(key);
  // skiff.io holds the store's own records (tokens, allocations, markers), never objects.
  if (!m || m[1] === 'skiff.io') return undefined;
  return `${m[1]}/${m[2]}`;
}

/**
 * The backend with each successful create, update and delete of an object recorded in the history store,
 * as the write's scope says who made it. A failed record is logged, not thrown: the change is stored.
 */
export function recordingBackend(backend: Backend, opts: HistoryOptions): Backend {
  const exclude = new Set(opts.exclude ?? DEFAULT_HISTORY_EXCLUDE);
  const record = async (operation: HistoryOperation, kv: KeyValue, previousRevision: number | undefined) => {
    const collection = collectionOf(kv.key);
    if (!collection || exclude.has(collection)) return;
    const s = scopes.getStore();
    const now = Date.now();
    const entry: HistoryEntry = {
      key: kv.key,
      revision: kv.modRevision,
      ...(previousRevision !== undefined ? { previousRevision } : {}),
      operation,
      ...(s?.verb ? { verb: s.verb } : {}),
      ...(s?.subresource ? { subresource: s.subresource } : {}),
      ...(s?.actor ? { actor: s.actor } : {}),
      time: new Date(now).toISOString(),
      value: kv.value,
      expires: Math.floor(now / 1000) + opts.retentionSeconds,
    };
    try {
      await opts.store.record(entry);
    } catch (e) {
      console.error(`history: revision ${kv.modRevision} of ${kv.key} was stored but not recorded: ${(e as Error).message}`);
    }
  };
  if (opts.retentionSeconds <= 0) return backend;
  return new Proxy(backend, {
    get(t, prop, receiver) {
      if (prop === 'create') {
        return async (key: string, value: string, o?: Parameters<Backend['create']>[2]) => {
          const kv = await t.create(key, value, o);
          await record('create', kv, 0);
          return kv;
        };
      }
      if (prop === 'update') {
        return async (key: string, value: string, expected: number, o?: Parameters<Backend['update']>[3]) => {
          const kv = await t.update(key, value, expected, o);
          await record('update', kv, expected);
          return kv;
        };
      }
      if (prop === 'delete') {
        return async (key: string, expected?: number) => {
          const kv = await t.delete(key, expected);
          await record('delete', kv, expected);
          return kv;
        };
      }
      const value = Reflect.get(t, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(t) : value;
    },
  });
}

// ---- reading ----

/** What a history read needs from the ApiServer. */
export interface HistoryReadContext {
  store?: HistoryStore;
  kinds: () => KindRegistry;
  /** Re-reads the CRDs (a custom resource this server's view does not know yet). */
  refreshKinds(): Promise<void>;
  /** Authorizes (and audits) the caller's attributes; throws kube's 403. */
  authorize(a: Omit<RequestAttributes, 'user'>): Promise<void>;
}

export interface ObjectHistoryEntry {
  revision: number;
  operation: HistoryOperation;
  verb?: string;
  subresource?: string;
  /** Unset: the write came from no request and no loop (the apiserver's own start-up objects). */
  user?: HistoryActor;
  time: string;
  /** True when a change of the object before this one was not recorded (or expired): the diff spans it. */
  unrecordedBefore?: boolean;
  /** A unified diff of the object's YAML, from the previous recorded value to this one. */
  diff: string;
  /** True when this answer's diffs reached their size limit before this entry: `diff` is empty (ask with a smaller `limit`). */
  diffOmitted?: boolean;
  /** The object after the change (?objects=true). */
  object?: unknown;
}

const MAX_LIMIT = 1000;

function yamlOf(value: string | undefined): string {
  return value === undefined ? '' : toYaml(JSON.parse(value));
}

// A diff is computed while the request waits, so its work is bounded (found by review: two 8,000-line
// versions with nothing in common took 27 s, all of the server's time): Myers' diff costs (lines x edit
// distance), so past MAX_EDIT_LINES of edits, or DIFF_TIMEOUT_MS, the change is shown as the old text
// removed and the new added (a correct diff, not the shortest); and one answer diffs at most
// DIFF_BUDGET_BYTES of YAML (100 updates of a 1 MB object took 18 s): the later entries' diffs are omitted.
const MAX_EDIT_LINES = 2000;
const DIFF_TIMEOUT_MS = 200;
const DIFF_BUDGET_BYTES = 16 * 1024 * 1024;

/** Unified diff of two YAML texts, without the jsdiff banner line. */
function unifiedDiff(fromLabel: string, toLabel: string, from: string, to: string): string {
  const d = createTwoFilesPatch(fromLabel, toLabel, from, to, '', '', { context: 3, maxEditLength: MAX_EDIT_LINES, timeout: DIFF_TIMEOUT_MS });
  return (d ?? replacement(fromLabel, toLabel, from, to)).replace(/^=+\n/, '');
}

/** The whole old text removed and the new one added, as one hunk (what a diff that gave up shows). */
function replacement(fromLabel: string, toLabel: string, from: string, to: string): string {
  const lines = (t: string) => (t === '' ? [] : t.replace(/\n$/, '').split('\n'));
  const a = lines(from);
  const b = lines(to);
  const hunk = { oldStart: a.length ? 1 : 0, oldLines: a.length, newStart: b.length ? 1 : 0, newLines: b.length, lines: [...a.map((l) => `-${l}`), ...b.map((l) => `+${l}`)] };
  return formatPatch({ oldFileName: fromLabel, newFileName: toLabel, oldHeader: '', newHeader: '', hunks: [hunk] });
}

/** Entries with their diffs, oldest first; `base` is the entry before the first (read only as its base). */
export function historyEntries(entries: HistoryEntry[], base: HistoryEntry | undefined, withObjects: boolean, budgetBytes = DIFF_BUDGET_BYTES): ObjectHistoryEntry[] {
  let prev = base;
  let spent = 0;
  return entries.map((e) => {
    const known = e.operation === 'create' || (prev !== undefined && (e.previousRevision === undefined || e.previousRevision === prev.revision));
    // A create starts from nothing (a name used again after a delete is a new object); a delete removes
    // its last value; an update changes the previous recorded value (none: all of it is new here).
    const base = e.operation === 'update' && prev && prev.operation !== 'delete' ? prev : undefined;
    // The stored JSON's length stands for its YAML's: the budget is checked before either is made.
    spent += (e.operation === 'delete' ? e.value.length : (base?.value.length ?? 0) + e.value.length);
    const omitted = spent > budgetBytes;
    let diff = '';
    if (!omitted) {
      const from = e.operation === 'delete' ? yamlOf(e.value) : yamlOf(base?.value);
      const fromLabel = e.operation === 'delete' ? `revision ${e.previousRevision ?? prev?.revision ?? e.revision}` : base ? `revision ${base.revision}` : '/dev/null';
      diff = e.operation === 'delete' ? unifiedDiff(fromLabel, '/dev/null', from, '') : unifiedDiff(fromLabel, `revision ${e.revision}`, from, yamlOf(e.value));
    }
    prev = e;
    const obj = withObjects ? JSON.parse(e.value) : undefined;
    if (obj?.metadata) obj.metadata.resourceVersion = String(e.revision);
    return {
      revision: e.revision,
      operation: e.operation,
      ...(e.verb ? { verb: e.verb } : {}),
      ...(e.subresource ? { subresource: e.subresource } : {}),
      ...(e.actor ? { user: e.actor } : {}),
      time: e.time,
      ...(known ? {} : { unrecordedBefore: true }),
      diff,
      ...(omitted ? { diffOmitted: true } : {}),
      ...(obj ? { object: obj } : {}),
    };
  });
}

/**
 * GET /apis/history.skiff.io/v1/[namespaces/{ns}/]{resource}[.{group}]/{name}[?limit=N&objects=true]: the
 * object's recorded changes. Reading them needs `get` on the object itself, so a history shows nothing
 * its reader could not read (a Secret's old values included) and needs no role of its own.
 */
export async function serveHistory(req: ApiRequest, rest: string[], ctx: HistoryReadContext): Promise<ApiResponse> {
  const [version, ...p] = rest;
  if (version !== HISTORY_VERSION) throw errors.pageNotFound();
  let namespace: string | undefined;
  let target: string[] = p;
  if (p[0] === 'namespaces' && p.length === 4) {
    namespace = p[1];
    target = p.slice(2);
  }
  if (target.length !== 2) throw errors.pageNotFound();
  if (req.method !== 'GET') throw errors.methodNotAllowed();
  const [resourceGroup, name] = target as [string, string];
  const dot = resourceGroup.indexOf('.');
  const resource = dot < 0 ? resourceGroup : resourceGroup.slice(0, dot);
  const group = dot < 0 ? '' : resourceGroup.slice(dot + 1);
  // Any served version of the resource: its objects' storage key does not depend on the version.
  const find = () => ctx.kinds().all().find((k) => k.info.group === group && k.info.resource === resource);
  let kind = find();
  if (!kind) {
    await ctx.refreshKinds();
    kind = find();
  }
  if (!kind || kind.info.namespaced !== (namespace !== undefined)) {
    throw errors.notFound(resource, group, name);
  }
  await ctx.authorize({ verb: 'get', resourceRequest: true, path: req.path, version: kind.info.version, namespace, group, resource, name });
  const limitParam = req.query.get('limit');
  let limit = 0;
  if (limitParam !== null) {
    limit = Number(limitParam);
    if (!/^\d+$/.test(limitParam) || limit < 1 || limit > MAX_LIMIT) throw errors.badRequest(`limit must be a whole number from 1 to ${MAX_LIMIT}, got ${JSON.stringify(limitParam)}`);
  }
  const objectsParam = req.query.get('objects');
  if (objectsParam !== null && objectsParam !== 'true' && objectsParam !== 'false') throw errors.badRequest(`objects must be true or false, got ${JSON.stringify(objectsParam)}`);
  const key = storageKey(kind.info, namespace, name);
  // One more than asked for: the base the oldest returned entry is diffed against.
  const read = ctx.store ? await ctx.store.read(key, { limit: limit ? limit + 1 : 0 }) : [];
  const base = limit && read.length > limit ? read.shift() : undefined;
  return {
    status: 200,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      kind: 'ObjectHistory',
      apiVersion: `${HISTORY_GROUP}/${HISTORY_VERSION}`,
      metadata: { name, ...(namespace ? { namespace } : {}) },
      target: { group, version: kind.info.version, resource, kind: kind.info.kind, ...(namespace ? { namespace } : {}), name },
      ...(ctx.store ? {} : { message: 'history is off on this server' }),
      entries: historyEntries(read, base, objectsParam === 'true'),
    }),
  };
}
