// Records core/v1 Events about objects, as client-go's EventRecorder does: one Event per
// (object, reason, message, component), whose count and lastTimestamp grow when it happens again, so a
// controller that repeats itself (or an event stream redelivered) does not flood the namespace.
// Controllers write through the registry; the node agent, an API client, through an EventWriter.
//
// Before writing, an EventCorrelator does what client-go's does (tools/record/events_cache.go), so a
// loop that makes thousands of objects does not make thousands of Events:
// - aggregation: once 10 events from one source about one object share type and reason but differ in
//   message within 10 minutes, further ones go to a single "(combined from similar events): <message>"
//   Event whose count grows (an RC creating 600 pods: 9 events, then one combined);
// - spam filter: a token bucket per source and object, 25 events at once, then one per 5 minutes;
//   events beyond it are dropped.
// Its state is in process memory, LRU-bounded (4096 keys each), as client-go keeps it: each Lambda
// instance and each `skiff up` process has its own. The names of the Events stay a pure function of what
// they say (a digest), so two instances writing the same event count it on one object.

import { createHash } from 'node:crypto';
import type { Registry } from '../apiserver/registry.ts';
import { findResource } from '../machinery/resources.ts';
import { ApiError } from '../machinery/status.ts';
import type { KubeObject } from '../machinery/types.ts';

const events = findResource('', 'v1', 'events')!;

export interface EventSpec {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  /** Who reports it: "default-scheduler", "replication-controller", "kubelet"... */
  component: string;
  host?: string;
}

const rfc3339 = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** A Map bounded to `max` entries, dropping the least recently used (golang/groupcache's lru). */
class Lru<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(k: string): V | undefined {
    const v = this.map.get(k);
    if (v !== undefined) {
      this.map.delete(k);
      this.map.set(k, v);
    }
    return v;
  }
  set(k: string, v: V): void {
    this.map.delete(k);
    this.map.set(k, v);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }
  get size(): number {
    return this.map.size;
  }
}

export interface CorrelatorOptions {
  /** The clock (ms since the epoch); tests pass their own. */
  now?: () => number;
  /** Entries each cache keeps (client-go's maxLruCacheEntries). */
  cacheSize?: number;
  /** Distinct messages of one type+reason about one object before they are combined. */
  maxEvents?: number;
  /** How long a group of similar events stays open after its last one. */
  maxIntervalMs?: number;
  /** Spam filter: events a source may send about an object at once, and the refill per second. */
  spamBurst?: number;
  spamQps?: number;
}

export type Correlated = { skip: true } | { skip: false; combined: boolean; message: string; aggregateKey: string };

/** client-go's EventCorrelator, without its observation cache (the store's digest names do that part). */
export class EventCorrelator {
  readonly now: () => number;
  private readonly maxEvents: number;
  private readonly maxIntervalMs: number;
  private readonly burst: number;
  private readonly qps: number;
  private readonly groups: Lru<{ messages: Set<string>; last: number }>;
  private readonly buckets: Lru<{ tokens: number; last: number }>;

  constructor(o: CorrelatorOptions = {}) {
    this.now = o.now ?? Date.now;
    this.maxEvents = o.maxEvents ?? 10;
    this.maxIntervalMs = o.maxIntervalMs ?? 600_000;
    this.burst = o.spamBurst ?? 25;
    this.qps = o.spamQps ?? 1 / 300;
    this.groups = new Lru(o.cacheSize ?? 4096);
    this.buckets = new Lru(o.cacheSize ?? 4096);
  }

  correlate(about: KubeObject, e: EventSpec): Correlated {
    const now = this.now();
    const m = about.metadata;
    const source = [e.component, e.host ?? '', about.kind, m.namespace ?? '', m.name, m.uid, about.apiVersion];
    // Aggregation (EventAggregatorByReasonFunc): the group is source+object+type+reason, the message
    // tells its members apart.
    const aggregateKey = [...source, e.type, e.reason].join('\0');
    let group = this.groups.get(aggregateKey);
    if (!group || now - group.last > this.maxIntervalMs) group = { messages: new Set(), last: now };
    group.messages.add(e.message);
    group.last = now;
    this.groups.set(aggregateKey, group);
    let combined = false;
    if (group.messages.size >= this.maxEvents) {
      // Keep the set from growing past the threshold (client-go's PopAny).
      group.messages.delete(group.messages.values().next().value!);
      combined = true;
    }
    // Spam filter (EventSourceObjectSpamFilter): a token bucket per source+object.
    const spamKey = source.join('\0');
    const b = this.buckets.get(spamKey) ?? { tokens: this.burst, last: now };
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.last) / 1000) * this.qps);
    b.last = now;
    this.buckets.set(spamKey, b);
    if (b.tokens < 1) return { skip: true };
    b.tokens -= 1;
    return { skip: false, combined, message: combined ? `(combined from similar events): ${e.message}` : e.message, aggregateKey };
  }
}

/** The process's correlator (client-go keeps one per broadcaster; controllers here share one). */
export const defaultCorrelator = new EventCorrelator();

/** Where events go: create one, or count one more occurrence of an existing one. */
export interface EventWriter {
  /** Throws ApiError AlreadyExists when the event exists. */
  create(namespace: string, event: KubeObject): Promise<void>;
  /** Throws ApiError NotFound when it is gone. `message`: the latest one, for a combined event. */
  increment(namespace: string, name: string, lastTimestamp: string, message?: string): Promise<void>;
}

function registryWriter(registry: Registry): EventWriter {
  return {
    create: async (namespace, event) => void (await registry.create(events, namespace, event)),
    increment: async (namespace, name, t, message) =>
      void (await registry.guaranteedUpdate(events, namespace, name, undefined, {}, (cur) => ({
        ...cur,
        count: (cur.count ?? 1) + 1,
        lastTimestamp: t,
        ...(message !== undefined ? { message } : {}),
      }))),
  };
}

/** What became of an event: a new Event, one more count on an existing one, or dropped as spam. */
export type Recorded = 'created' | 'counted' | 'skipped';

export async function recordEvent(to: Registry | EventWriter, about: KubeObject, e: EventSpec, correlator = defaultCorrelator): Promise<Recorded> {
  const c = correlator.correlate(about, e);
  if (c.skip) return 'skipped';
  const w = 'increment' in to ? to : registryWriter(to);
  const m = about.metadata;
  const namespace = m.namespace || 'default';
  // A combined event is one object per group, whatever its latest message says.
  const identity = c.combined ? `${c.aggregateKey}\0combined` : `${m.uid}\0${e.reason}\0${e.message}\0${e.component}`;
  const digest = createHash('sha256').update(identity).digest('hex').slice(0, 16);
  const name = `${m.name}.${digest}`;
  const t = rfc3339(correlator.now());
  // Most events are new: try the create first (one write), and count a repeat on AlreadyExists.
  try {
    await w.create(namespace, {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace },
      involvedObject: {
        apiVersion: about.apiVersion,
        kind: about.kind,
        namespace: m.namespace,
        name: m.name,
        uid: m.uid,
        resourceVersion: m.resourceVersion,
      },
      reason: e.reason,
      message: c.message,
      type: e.type,
      source: { component: e.component, ...(e.host ? { host: e.host } : {}) },
      reportingComponent: e.component,
      reportingInstance: e.host ?? '',
      firstTimestamp: t,
      lastTimestamp: t,
      count: 1,
    });
    return 'created';
  } catch (err) {
    if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
  }
  try {
    await w.increment(namespace, name, t, c.combined ? c.message : undefined);
  } catch (err) {
    // Deleted (or expired) between the two calls: the occurrence was already recorded once.
    if (!(err instanceof ApiError && err.code === 404)) throw err;
  }
  return 'counted';
}
