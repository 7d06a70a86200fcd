// The node lifecycle controller: nodes heartbeat by renewing a coordination.k8s.io/v1 Lease named
// after them in kube-node-lease. A node whose lease is older than the grace period is marked
// unreachable, as Kubernetes' node lifecycle controller does: its conditions become Unknown
// (NodeStatusUnknown) and it gets the node.kubernetes.io/unreachable taints (NoSchedule and NoExecute); the pods on it
// are then evicted (taint-based eviction) when their toleration of that taint runs out, and pods that
// tolerate it forever stay. When the lease is renewed the taint goes; the node agent sets Ready itself.
//
// A node that is gone (its Node deleted: `kubectl delete node`, or the cloud's instance terminated) takes
// its pods with it: on its DELETED event (goneNodeKey) they are deleted at once, as kube's pod garbage collector deletes pods bound to a node
// that does not exist, so their owners replace them elsewhere (without it they stayed bound to nothing).
//
// A deployed agent also keeps a dead man's switch (node-agent/dead-mans-switch.ts): a schedule it moves
// ahead every 20 s, which fires only once it has stopped, as the key silentNodeKey(node). That records
// on the Node when the silence was noticed (SILENT_SINCE_ANNOTATION), and a node whose last heartbeat is
// older than that is unreachable at once, without waiting for its long lease to run out; its next lease
// renewal makes it reachable again.
//
// Everything is decided from the lease age at the time reconcile runs (level-triggered), so a missed,
// duplicated or late event, or a resync, all lead to the same state. The controller asks to be woken up
// when the next deadline (lease expiry, a toleration running out) passes.

import { findResource } from '../machinery/resources.ts';
import { ApiError } from '../machinery/status.ts';
import type { KubeObject } from '../machinery/types.ts';
import { readerOf, type Controller, type ControllerContext, type ReconcileResult } from './controller.ts';
import { recordEvent } from './events.ts';
import { BURST_REPLICAS } from './batch.ts';
import { controllerUser } from './identity.ts';

const nodes = findResource('', 'v1', 'nodes')!;
const leases = findResource('coordination.k8s.io', 'v1', 'leases')!;
const pods = findResource('', 'v1', 'pods')!;

export const NODE_LEASE_NAMESPACE = 'kube-node-lease';
/**
 * The key of a Node's DELETED event: only then are pods bound to a missing node looked for (a list of the
 * node's pods). A plain key of a missing node (a lease in kube-node-lease that is no node's, such as the
 * scheduler's reservations) reads nothing more than the node.
 */
export const goneNodeKey = (name: string) => `gone:${name}`;
export const UNREACHABLE_TAINT = 'node.kubernetes.io/unreachable';
const UNREACHABLE_EFFECTS = ['NoSchedule', 'NoExecute'] as const;
export const NODE_LIFECYCLE_CONTROLLER = 'node-lifecycle-controller';
/** The key a node's dead man's switch fires with: its agent has been silent for the switch's period. */
export const silentNodeKey = (name: string) => `silent:${name}`;
/** When a node's dead man's switch last fired (RFC 3339, on the Node): silent since, unless it renewed since. */
export const SILENT_SINCE_ANNOTATION = 'node.skiff.io/silent-since';

export interface NodeLifecycleOptions {
  /** How old a lease may get before the node is unreachable (Kubernetes' node-monitor-grace-period, 40 s). */
  gracePeriodMs?: number;
  /** Evict pods from unreachable nodes (on by default). */
  evictionEnabled?: boolean;
  /** The clock; defaults to the context's. Tests inject one so nothing sleeps 40 s. */
  now?: () => Date;
  /** The most pods one reconcile evicts or deletes (default BURST_REPLICAS, 500, as kube). */
  burstReplicas?: number;
}

const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

async function getOrUndefined(ctx: ControllerContext, res: typeof nodes, ns: string | undefined, name: string): Promise<KubeObject | undefined> {
  try {
    return await ctx.registry.get(res, ns, name);
  } catch (e) {
    if (e instanceof ApiError && e.code === 404) return undefined;
    throw e;
  }
}

/** When the node last showed life: its lease, else its own Ready heartbeat, else its creation. */
function lastHeartbeat(node: KubeObject, lease: KubeObject | undefined): number {
  const renew = lease?.spec?.renewTime ?? lease?.spec?.acquireTime;
  if (renew) return Date.parse(renew);
  const ready = (node.status?.conditions ?? []).find((c: any) => c.type === 'Ready');
  const t = ready?.lastHeartbeatTime ?? node.metadata.creationTimestamp;
  return t ? Date.parse(t) : 0;
}

/** The seconds a pod tolerates the unreachable taint: undefined = forever, 0 = not at all. */
export function toleratedSeconds(pod: KubeObject): number | undefined {
  let best: number | undefined | null = null; // null: no matching toleration
  for (const t of pod.spec?.tolerations ?? []) {
    const keyMatches = t.operator === 'Exists' ? !t.key || t.key === UNREACHABLE_TAINT : t.key === UNREACHABLE_TAINT && !t.value;
    const effectMatches = !t.effect || t.effect === 'NoExecute';
    if (!keyMatches || !effectMatches) continue;
    if (t.tolerationSeconds === undefined || t.tolerationSeconds === null) return undefined;
    // Kubernetes takes the shortest of the matching tolerations; negative means evict now.
    const s = Math.max(0, Number(t.tolerationSeconds));
    best = best === null || best === undefined ? s : Math.min(best, s);
  }
  return best === null ? 0 : best;
}

export function createNodeLifecycleController(opts: NodeLifecycleOptions = {}): Controller {
  const graceDefault = opts.gracePeriodMs ?? 40_000;
  const evictionEnabled = opts.evictionEnabled ?? true;
  const burst = opts.burstReplicas ?? BURST_REPLICAS;

  async function markUnreachable(ctx: ControllerContext, name: string, nowD: Date): Promise<KubeObject> {
    const t = rfc3339(nowD);
    await ctx.registry.guaranteedUpdate(nodes, undefined, name, undefined, { subresource: 'status' }, (n) => {
      const conds: any[] = n.status?.conditions ?? [];
      if (conds.length && conds.every((c) => c.status === 'Unknown' && c.reason === 'NodeStatusUnknown')) return n;
      const types = conds.some((c) => c.type === 'Ready') ? conds : [...conds, { type: 'Ready' }];
      const next = types.map((c) =>
        c.status === 'Unknown' && c.reason === 'NodeStatusUnknown'
          ? c
          : {
              ...c,
              status: 'Unknown',
              reason: 'NodeStatusUnknown',
              message: 'Kubelet stopped posting node status.',
              lastTransitionTime: t,
              lastHeartbeatTime: c.lastHeartbeatTime ?? t,
            },
      );
      return { ...n, status: { ...(n.status ?? {}), conditions: next } };
    });
    // Both of kube's taints: NoSchedule (its TaintNodesByCondition) keeps new pods off, even those that
    // tolerate the NoExecute one for a while (as every pod does, for 300 s by default); NoExecute evicts.
    return ctx.registry.guaranteedUpdate(nodes, undefined, name, undefined, {}, (n) => {
      const taints: any[] = n.spec?.taints ?? [];
      const missing = UNREACHABLE_EFFECTS.filter((effect) => !taints.some((x) => x.key === UNREACHABLE_TAINT && x.effect === effect));
      if (!missing.length) return n;
      return { ...n, spec: { ...(n.spec ?? {}), taints: [...taints, ...missing.map((effect) => ({ key: UNREACHABLE_TAINT, effect, timeAdded: t }))] } };
    });
  }

  /** Notes on the Node that its dead man's switch fired now (a redelivered firing moves nothing back). */
  async function recordSilence(ctx: ControllerContext, node: KubeObject, nowD: Date): Promise<KubeObject> {
    const t = rfc3339(nowD);
    return ctx.registry.guaranteedUpdate(nodes, undefined, node.metadata.name!, undefined, {}, (n) => {
      const was = n.metadata.annotations?.[SILENT_SINCE_ANNOTATION];
      if (was && Date.parse(was) >= Date.parse(t)) return n;
      return { ...n, metadata: { ...n.metadata, annotations: { ...(n.metadata.annotations ?? {}), [SILENT_SINCE_ANNOTATION]: t } } };
    });
  }

  async function clearUnreachable(ctx: ControllerContext, name: string): Promise<void> {
    await ctx.registry.guaranteedUpdate(nodes, undefined, name, undefined, {}, (n) => {
      const taints: any[] = n.spec?.taints ?? [];
      const kept = taints.filter((x) => x.key !== UNREACHABLE_TAINT);
      if (kept.length === taints.length) return n;
      const spec = { ...(n.spec ?? {}), taints: kept };
      if (!kept.length) delete spec.taints;
      return { ...n, spec };
    });
  }

  /**
   * Evicts the pods whose toleration has run out; returns ms until the next one does. At most
   * BURST_REPLICAS per reconcile (a dead node of thousands of pods): 0 asks for the rest at once.
   */
  async function evict(ctx: ControllerContext, node: KubeObject, nowMs: number): Promise<number | undefined> {
    const taint = (node.spec?.taints ?? []).find((x: any) => x.key === UNREACHABLE_TAINT && x.effect === 'NoExecute');
    const since = taint?.timeAdded ? Date.parse(taint.timeAdded) : nowMs;
    // The node's pods from the cache's node index (a store list of every pod, filtered, before).
    const onNode = await readerOf(ctx).byIndex(pods, 'node', node.metadata.name!);
    let next: number | undefined;
    let budget = burst;
    for (const pod of onNode) {
      if (pod.metadata.deletionTimestamp && pod.metadata.deletionGracePeriodSeconds === 0) continue;
      const secs = toleratedSeconds(pod);
      if (secs === undefined) continue; // tolerates the taint forever
      const due = since + secs * 1000;
      if (due > nowMs) {
        next = Math.min(next ?? Infinity, due - nowMs);
        continue;
      }
      if (budget-- <= 0) return 0;
      await deletePodNow(ctx, pod, 'TaintManagerEviction', `Marking for deletion Pod ${pod.metadata.namespace}/${pod.metadata.name}`, 'taint-eviction-controller');
    }
    return next;
  }

  /**
   * Deletes a pod with no grace period (its node is gone: no agent will finish a graceful termination),
   * unless it went or was replaced meanwhile, and records why in an Event.
   */
  async function deletePodNow(ctx: ControllerContext, pod: KubeObject, reason: string, message: string, component: string): Promise<void> {
    try {
      await ctx.registry.delete(pods, pod.metadata.namespace, pod.metadata.name!, { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata.uid } });
    } catch (e) {
      if (e instanceof ApiError && (e.code === 404 || e.code === 409)) return;
      throw e;
    }
    await recordEvent(ctx.registry, pod, { type: 'Normal', reason, message, component }).catch(() => undefined); // events are best effort
  }

  /**
   * kube's PodGC gcOrphaned: the pods bound to a node that no longer exists (the store said so just now)
   * are deleted with no grace period, since no agent will end them. At most BURST_REPLICAS per reconcile.
   */
  async function deleteOrphanedPods(ctx: ControllerContext, name: string): Promise<ReconcileResult | void> {
    let budget = burst;
    for (const pod of await readerOf(ctx).byIndex(pods, 'node', name)) {
      if (pod.spec?.nodeName !== name) continue;
      if (budget-- <= 0) return { requeueAfterMs: 0 };
      await deletePodNow(ctx, pod, 'PodGCOrphaned', `Deleting pod ${pod.metadata.namespace}/${pod.metadata.name} bound to node ${name}, which does not exist`, 'pod-garbage-collector');
    }
  }

  return {
    name: NODE_LIFECYCLE_CONTROLLER,
    identity: controllerUser('node-controller'),
    watches: [nodes, leases],
    // Its clock: a lease that stops being renewed announces nothing, so every resync looks at every node.
    resyncAlways: true,
    keys(ev) {
      if (ev.resource.resource === 'leases') return ev.object.metadata.namespace === NODE_LEASE_NAMESPACE ? [ev.object.metadata.name!] : [];
      return [ev.type === 'DELETED' ? goneNodeKey(ev.object.metadata.name!) : ev.object.metadata.name!];
    },
    async allKeys(ctx) {
      return (await readerOf(ctx).list(nodes, undefined)).map((n) => n.metadata.name!);
    },
    async reconcile(key, ctx): Promise<ReconcileResult | void> {
      const gone = key.startsWith('gone:');
      const silent = key.startsWith('silent:');
      const name = gone ? key.slice('gone:'.length) : silent ? key.slice('silent:'.length) : key;
      let node = await getOrUndefined(ctx, nodes, undefined, name);
      if (!node) return gone ? deleteOrphanedPods(ctx, name) : undefined;
      if (silent) node = await recordSilence(ctx, node, (opts.now ?? ctx.now)());
      if (node.metadata.deletionTimestamp) return;
      const lease = await getOrUndefined(ctx, leases, NODE_LEASE_NAMESPACE, name);
      const nowD = (opts.now ?? ctx.now)();
      const nowMs = nowD.getTime();
      const heartbeat = lastHeartbeat(node, lease);
      const age = nowMs - heartbeat;
      // Silent since after its last heartbeat: its dead man's switch fired, and it has not renewed since.
      const silentSince = Date.parse(node.metadata.annotations?.[SILENT_SINCE_ANNOTATION] ?? '');
      // A node that renews seldom (cloud agents renew every 60 s to keep idle cost down) declares a longer
      // lease; it is not late until that lease has run out.
      const declared = Number(lease?.spec?.leaseDurationSeconds);
      const grace = Math.max(graceDefault, Number.isFinite(declared) ? declared * 1000 : 0);
      if (age <= grace && !(silentSince > heartbeat)) {
        await clearUnreachable(ctx, name);
        // Look again just after the lease would expire if it is not renewed.
        return { requeueAfterMs: grace - age + 1000 };
      }
      const tainted = await markUnreachable(ctx, name, nowD);
      if (!evictionEnabled) return { requeueAfterMs: grace };
      const next = await evict(ctx, tainted, nowMs);
      return { requeueAfterMs: next !== undefined ? Math.min(next + 100, grace) : grace };
    },
  };
}

export const nodeLifecycleController: Controller = createNodeLifecycleController();
