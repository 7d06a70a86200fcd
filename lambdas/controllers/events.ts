// Records core/v1 Events about objects, as client-go's EventRecorder does: one Event per
// (object, reason, message, component), whose count and lastTimestamp grow when it happens again, so a
// controller that repeats itself (or an event stream redelivered) does not flood the namespace.
// Controllers write through the registry; the node agent, an API client, through an EventWriter.

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

function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Where events go: create one, or count one more occurrence of an existing one. */
export interface EventWriter {
  /** Throws ApiError AlreadyExists when the event exists. */
  create(namespace: string, event: KubeObject): Promise<void>;
  /** Throws ApiError NotFound when it is gone. */
  increment(namespace: string, name: string, lastTimestamp: string): Promise<void>;
}

function registryWriter(registry: Registry): EventWriter {
  return {
    create: async (namespace, event) => void (await registry.create(events, namespace, event)),
    increment: async (namespace, name, t) =>
      void (await registry.guaranteedUpdate(events, namespace, name, undefined, {}, (cur) => ({ ...cur, count: (cur.count ?? 1) + 1, lastTimestamp: t }))),
  };
}

export async function recordEvent(to: Registry | EventWriter, about: KubeObject, e: EventSpec): Promise<void> {
  const w = 'increment' in to ? to : registryWriter(to);
  const m = about.metadata;
  const namespace = m.namespace || 'default';
  const digest = createHash('sha256').update(`${m.uid}\0${e.reason}\0${e.message}\0${e.component}`).digest('hex').slice(0, 16);
  const name = `${m.name}.${digest}`;
  const t = now();
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
      message: e.message,
      type: e.type,
      source: { component: e.component, ...(e.host ? { host: e.host } : {}) },
      reportingComponent: e.component,
      reportingInstance: e.host ?? '',
      firstTimestamp: t,
      lastTimestamp: t,
      count: 1,
    });
    return;
  } catch (err) {
    if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
  }
  try {
    await w.increment(namespace, name, t);
  } catch (err) {
    // Deleted (or expired) between the two calls: the occurrence was already recorded once.
    if (!(err instanceof ApiError && err.code === 404)) throw err;
  }
}
