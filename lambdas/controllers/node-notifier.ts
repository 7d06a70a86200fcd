// The push channel to nodes of a deployed cluster (issue #16): one SQS queue per node, which its agent
// long-polls (node-agent/push.ts), and this loop on the table's stream, which tells a node to re-list
// its pods when a pod bound to it is created, bound, changed in spec or deleted.
//
// Pods only, not Services and Endpoints: every node proxies them all, so a push per change would be a
// message and a list per node per change, O(nodes x changes): at 100 nodes and 600 pod changes an hour
// (each changing a Service's Endpoints) `npm run cost` priced it at about $800 a month. Agents keep
// polling those every 75 s (infra/nodes.ts); their pods' poll is the push channel's safety net, 5
// minutes.
//
// Why SQS: a deployed agent cannot hold a watch (the apiserver is a Lambda: an open watch is billed
// all along), so it polled every 60 s, and a bound pod waited up to a minute before its node saw it.
// A queue costs nothing while idle but the agent's long polls (one request per 20 s wait, $0.40 per
// million: about $0.05 a node-month), needs no function kept running, and holds a message while the
// agent restarts. A message is a nudge, not the change itself: the agent re-lists the named collection
// through the apiserver, so authorization, order and content stay the apiserver's, and a duplicated,
// late or reordered message costs one list and changes nothing. A lost one is caught by the agent's
// poll, which stays as the safety net, much rarer (infra/nodes.ts).
//
// A bind is told by the scheduler itself, at once (deployed: createScheduler's onBound, schedulerTeller
// below), not by this loop: here the bind's record came a stream batch later, after the controller
// manager's other loops of the batch before it, which under a burst of creates on moto was most of a
// pod's wait (bench:scale). Everything else (a pod created bound, deleted, its spec changed) still comes
// here, and a bind too when no scheduler tells (schedulerTellsBinds false).
//
// Cost in proportion to what changed: one message per node per stream batch (the runner reconciles
// each distinct key once per batch); a node's queue URL is asked of SQS by its name once per warm
// function (no table read, so `npm run cost`'s per-operation reads are unchanged). Cost per namespace
// (machinery/usage.ts): a message's requests (its send, and the agent's receive and delete) are shared
// by the namespaces of the pods whose changes sent it; keys name no namespace ("pods:<node>").

import { DeleteQueueCommand, GetQueueUrlCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { createHash } from 'node:crypto';
import { findResource } from '../machinery/resources.ts';
import type { ChangeEvent, Controller, ControllerContext } from './controller.ts';
import type { KubeObject } from '../machinery/types.ts';

const pods = findResource('', 'v1', 'pods')!;
const nodes = findResource('', 'v1', 'nodes')!;
/** What the notifier watches (the stack's stream filter names them; nodes: a deleted node's queue goes). */
export const NODE_NOTIFIER_WATCHES = [pods, nodes];

/** What a message tells an agent to re-list (pods only, for now: see above). */
export type PushedCollection = 'pods' | 'services' | 'endpoints';
export interface PushMessage {
  resync?: PushedCollection[];
  /** Report usage to the apiserver until then (RFC 3339): `kubectl top` deployed (apiserver/node-usage.ts). */
  reportUsage?: { until: string };
}

/** A cluster's queue name prefix: short and fixed whatever the cluster's name (up to 64 characters). */
export function nodeQueuePrefix(clusterName: string): string {
  return `skiff-${createHash('sha256').update(clusterName).digest('hex').slice(0, 10)}-`;
}

/**
 * The queue of a node: the cluster's prefix, the node name made safe for SQS (letters, digits, - and _,
 * at most 80 characters in all) and a hash of the exact name, so two names that read alike differ.
 */
export function nodeQueueName(prefix: string, nodeName: string): string {
  const hash = createHash('sha256').update(nodeName).digest('hex').slice(0, 8);
  const safe = nodeName.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, Math.max(0, 80 - prefix.length - hash.length - 1));
  return `${prefix}${safe}-${hash}`;
}

export interface NodeTellerOptions {
  sqs: SQSClient;
  /** The cluster's queue name prefix (the stack's; SKIFF_NODE_QUEUE_PREFIX). */
  queuePrefix: string;
}

export interface NodeNotifierOptions extends NodeTellerOptions {
  /** The scheduler tells a node of each pod it binds there (schedulerTeller): a bind alone asks nothing here. */
  schedulerTellsBinds?: boolean;
}

/** Sends nodes' queues their nudges; each queue's URL is asked of SQS once per process. */
export function createNodeTeller(o: NodeTellerOptions) {
  // Queue name → URL, as SQS said (a queue made again under its name has the same URL).
  const urls = new Map<string, string>();
  /** The queue's URL, or undefined when it does not exist (an agent without the channel, or not started yet). */
  const urlOf = async (name: string): Promise<string | undefined> => {
    let url = urls.get(name);
    if (url) return url;
    try {
      url = (await o.sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl;
    } catch (e) {
      return ignoreMissingQueue(e as Error);
    }
    if (url) urls.set(name, url);
    return url;
  };
  /** Runs a call on the node's queue, if it has one; a queue gone meanwhile is forgotten. */
  const onQueue = async (node: string, call: (url: string) => Promise<unknown>): Promise<boolean> => {
    const name = nodeQueueName(o.queuePrefix, node);
    const url = await urlOf(name);
    // No queue: an agent without the push channel, or one not started yet; its poll finds the pod.
    if (!url) return false;
    try {
      await call(url);
      return true;
    } catch (e) {
      urls.delete(name);
      ignoreMissingQueue(e as Error); // throws anything but a queue gone meanwhile
      return false;
    }
  };
  return {
    /** Tells the node to re-list its pods; `payers`, the namespaces whose pods asked (cost per namespace). */
    async tellPods(node: string, payers: string[], ctx?: ControllerContext): Promise<void> {
      const sent = await onQueue(node, (url) => o.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: JSON.stringify({ resync: ['pods'] } satisfies PushMessage) })));
      if (sent) ctx?.usage?.sqs(3, payers);
    },
    /** A deleted Node's queue goes with it (a replaced instance's node never comes back by that name; if it does, its agent makes the queue again). */
    async dropQueue(node: string): Promise<void> {
      if (await onQueue(node, (url) => o.sqs.send(new DeleteQueueCommand({ QueueUrl: url })))) urls.delete(nodeQueueName(o.queuePrefix, node));
    },
  };
}

/** A bind changes the pod's nodeName (and its PodScheduled condition) and nothing else the notifier looks at. */
function onlyBound(was: KubeObject, now: KubeObject): boolean {
  if (was.spec?.nodeName || !now.spec?.nodeName || was.metadata.deletionTimestamp !== now.metadata.deletionTimestamp) return false;
  return JSON.stringify({ ...was.spec, nodeName: now.spec.nodeName }) === JSON.stringify(now.spec);
}

export function createNodeNotifier(o: NodeNotifierOptions): Controller {
  const teller = createNodeTeller(o);
  // A node's key → the namespaces of the pods that asked for it since its last reconcile (who pays).
  const askedBy = new Map<string, string[]>();

  return {
    name: 'node-notifier',
    watches: NODE_NOTIFIER_WATCHES,
    keys(ev: ChangeEvent): string[] {
      if (ev.resource === nodes) return ev.type === 'DELETED' ? [`gone:${ev.object.metadata.name}`] : [];
      if (ev.resource === pods) {
        // What an agent acts on: a pod bound, created bound, deleted, being deleted or its spec changed
        // (an image, a resize). Not its status, which is mostly the agent's own writes: telling the
        // agent of them would make each status it writes cost it a list.
        const was = ev.oldObject;
        if (ev.type === 'MODIFIED' && was && JSON.stringify(was.spec) === JSON.stringify(ev.object.spec) && was.metadata.deletionTimestamp === ev.object.metadata.deletionTimestamp) return [];
        // The scheduler told the node when it bound the pod.
        if (o.schedulerTellsBinds && ev.type === 'MODIFIED' && was && onlyBound(was, ev.object)) return [];
        // The node it is on, and the node it was on (a pod is never moved, but a delete names it once).
        const on = new Set([ev.object.spec?.nodeName, ev.oldObject?.spec?.nodeName].filter((n): n is string => !!n));
        const keys = [...on].map((n) => `pods:${n}`);
        for (const k of keys) askedBy.set(k, [...(askedBy.get(k) ?? []), ev.object.metadata.namespace ?? '']);
        return keys;
      }
      return [];
    },
    async reconcile(key: string, ctx?: ControllerContext): Promise<void> {
      const payers = askedBy.get(key) ?? [];
      askedBy.delete(key);
      if (key.startsWith('gone:')) await teller.dropQueue(key.slice('gone:'.length));
      else await teller.tellPods(key.slice('pods:'.length), payers, ctx);
    },
    // Nothing to catch up on at a resync: a missed nudge is what the agents' own poll is for.
    allKeys: async () => [],
  };
}

/** A queue that does not exist (never made, or deleted with its node): nothing to tell. Anything else is an error. */
function ignoreMissingQueue(e: Error & { name?: string }): undefined {
  if (e.name === 'QueueDoesNotExist' || e.name === 'AWS.SimpleQueueService.NonExistentQueue') return undefined;
  throw e;
}

/**
 * The notifier of a deployed cluster whose nodes have queues (SKIFF_NODE_QUEUE_PREFIX set by the stack,
 * on the scheduler's function too, which tells binds: schedulerTellerFromEnv).
 */
export function nodeNotifierFromEnv(env: Record<string, string | undefined> = process.env): Controller | undefined {
  const queuePrefix = env.SKIFF_NODE_QUEUE_PREFIX;
  if (!queuePrefix) return undefined;
  return createNodeNotifier({ sqs: new SQSClient({}), queuePrefix, schedulerTellsBinds: true });
}

/** What the deployed scheduler calls after each bind (SchedulerOptions.onBound): tells the pod's node. */
export function schedulerTeller(o: NodeTellerOptions): (ctx: ControllerContext, pod: KubeObject) => Promise<void> {
  const teller = createNodeTeller(o);
  return (ctx, pod) => teller.tellPods(pod.spec.nodeName, [pod.metadata.namespace ?? ''], ctx);
}

export function schedulerTellerFromEnv(env: Record<string, string | undefined> = process.env): ReturnType<typeof schedulerTeller> | undefined {
  const queuePrefix = env.SKIFF_NODE_QUEUE_PREFIX;
  return queuePrefix ? schedulerTeller({ sqs: new SQSClient({}), queuePrefix }) : undefined;
}
