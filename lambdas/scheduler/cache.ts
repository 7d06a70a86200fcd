// The scheduler's snapshot of the cluster: nodes, the pods on them and the nodes' reservation records,
// built from one list of each and then kept current from the change events the controller is fed
// (kube-scheduler's scheduler cache, minus the assume/forget bookkeeping, which the reservation
// records do durably). Per-node NodeInfos are kept and rebuilt only for nodes an event touched, so a
// scheduling cycle costs O(nodes) cheap filter calls, not a list of every pod.
//
// The snapshot is a hint, never the authority: a late or missing event can make it stale, and the
// reservation CAS re-checks fit against the stored record before any bind. What it holds that can
// only be true (a pod uid that was deleted or finished) is kept across rebuilds; events older than
// what is cached (by resourceVersion, the global revision) are ignored, so duplicated, replayed and
// late events change nothing.

import type { Registry } from '../apiserver/registry.ts';
import { findResource } from '../machinery/resources.ts';
import { kindFor } from '../kinds/index.ts';
import { parseFieldSelector } from '../machinery/selectors.ts';
import type { KubeObject } from '../machinery/types.ts';
import type { ChangeEvent, ChangesSince } from '../controllers/controller.ts';
import { StorageError } from '../storage/backend.ts';
import { controllerUid, newNodeInfo, podResources, type NodeInfo, type PodResources } from './framework.ts';
import { nodeIsReady } from './plugins/node-ready.ts';
import { entryResources, leases, RESERVATION_NAMESPACE, reservationNode, reservationOf, type Reservation } from './reservation.ts';

export const pods = findResource('', 'v1', 'pods')!;
export const nodes = findResource('', 'v1', 'nodes')!;

export const SCHEDULER_NAME = 'default-scheduler';

interface CachedPod {
  uid: string;
  rv: number;
  nodeName?: string;
  /** The first revision this snapshot saw the pod bound to nodeName at (at or after its bind). */
  boundAt?: number;
  res: PodResources;
  /** Unbound, for this scheduler, not being deleted: a pod to schedule. */
  pending: boolean;
}

/** What an event changed, so the controller knows which pods to retry. */
export interface Effect {
  /** A node appeared or changed in a way that can let a pod fit (labels, taints, readiness, room). */
  nodeChanged?: boolean;
  /** A pod on this node went away or finished: its reservation can be released, its room is free. */
  podGoneFrom?: string;
  /** A reservation record lost entries: room was freed. */
  roomFreed?: boolean;
}

const rvOf = (o: KubeObject) => Number(o.metadata.resourceVersion ?? 0);
const isFinished = (p: KubeObject) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed';

export function isPendingPod(p: KubeObject): boolean {
  return !p.spec?.nodeName && (p.spec?.schedulerName ?? SCHEDULER_NAME) === SCHEDULER_NAME && !p.metadata.deletionTimestamp && !isFinished(p);
}

/** The node fields scheduling reads: a change to anything else (heartbeats) retries no pod. */
function nodeSignature(n: KubeObject): string {
  return JSON.stringify([n.metadata.labels, n.spec?.taints, n.spec?.unschedulable, nodeIsReady(n), n.status?.allocatable ?? n.status?.capacity]);
}

/**
 * A newer version of a pod already cached: what it requests and the host ports it takes cannot change
 * (the spec is immutable but for images, tolerations, scheduling gates and activeDeadlineSeconds), so
 * they are not worked out again; its controller can (adoption, orphaning), so that is read afresh.
 */
function sameRequests(res: PodResources, p: KubeObject): PodResources {
  const ownerUid = controllerUid(p);
  return res.ownerUid === ownerUid ? res : { ...res, ownerUid };
}

export class SchedulerCache {
  private nodes = new Map<string, { obj: KubeObject; rv: number; sig: string }>();
  private nodeTombstones = new Map<string, number>();
  private nodeOrder: string[] | undefined;
  private pods = new Map<string, CachedPod>();
  private podsByNode = new Map<string, Map<string, PodResources>>();
  private reservations = new Map<string, Reservation>();
  private infos = new Map<string, NodeInfo>();
  /** nodeInfos()'s answer, in nodeOrder, and where each node is in it; `stale` are the entries to redo. */
  private list: NodeInfo[] | undefined;
  private listIndex = new Map<string, number>();
  private stale = new Set<string>();
  /** Pod uids known deleted or terminated (a fact that cannot become false), with when we learned it. */
  readonly finished = new Map<string, number>();
  /** Pods that found no node: retried when a node changes or room is freed. */
  readonly unschedulable = new Set<string>();
  private ready = false;
  private builtAt = 0;
  /** The revision the snapshot holds everything up to (its lists' oldest): where a catch-up reads from. */
  private revision = 0;
  /**
   * Nodes whose bound pods the snapshot holds up to a later revision than `revision`, each read by
   * verifyNode (see coveredThrough). Forgotten on a rebuild.
   */
  private verified = new Map<string, number>();
  private building: Promise<void> | undefined;
  private buffer: ChangeEvent[] | undefined;

  /**
   * `held`: the reservation records, when the scheduler keeps them in memory (MemoryReservations); the
   * snapshot then takes them from there and not from the store's Leases.
   */
  constructor(
    private readonly maxAgeMs: number,
    private readonly held?: () => Reservation[],
  ) {}

  /** Forget the snapshot: the next ensure() lists everything again. */
  invalidate(): void {
    this.ready = false;
  }

  /**
   * A snapshot no older than maxAgeMs. Given the store's change log (`changes`, in the cloud), an old
   * snapshot reads what changed since its revision instead of listing every node and pod again: a warm
   * scheduler function then reads in proportion to the cluster's changes, not to its size (a 1,000-node
   * rehearsal on moto listed all 10,000 pods every minute). A log that no longer holds that revision
   * (Compacted) means a full list.
   */
  async ensure(registry: Registry, changes?: ChangesSince): Promise<void> {
    if (this.ready && Date.now() - this.builtAt < this.maxAgeMs) return;
    this.building ??= (this.ready && changes ? this.catchUp(registry, changes) : this.rebuild(registry)).finally(() => (this.building = undefined));
    await this.building;
  }

  private async catchUp(registry: Registry, changes: ChangesSince): Promise<void> {
    try {
      this.revision = await changes(this.revision, (ev) => void this.applyToSnapshot(ev));
      this.builtAt = Date.now();
    } catch (e) {
      if (!(e instanceof StorageError && e.code === 'Compacted')) throw e;
      await this.rebuild(registry);
    }
  }

  private async rebuild(registry: Registry): Promise<void> {
    this.buffer = [];
    try {
      const [nl, pl, ll] = await Promise.all([
        registry.list(nodes, undefined),
        registry.list(pods, undefined),
        this.held ? undefined : registry.list(leases, RESERVATION_NAMESPACE),
      ]);
      this.nodes.clear();
      this.nodeOrder = undefined;
      this.verified.clear();
      this.pods.clear();
      this.podsByNode.clear();
      this.reservations.clear();
      this.infos.clear();
      this.list = undefined;
      this.revision = Math.min(...[nl, pl, ll].filter((l) => l !== undefined).map((l) => Number(l.metadata.resourceVersion ?? 0)));
      for (const n of nl.items) this.applyNode('ADDED', n);
      for (const p of pl.items) this.applyPod('ADDED', p);
      for (const l of ll?.items ?? []) this.applyLease('ADDED', l);
      for (const r of this.held?.() ?? []) this.reservations.set(r.node, r);
      // Events that arrived while listing: replayed (the older ones are ignored by resourceVersion).
      // Straight into the new snapshot: through apply(), the first build's replay was taken for events
      // of a never-built cache and dropped, and a node created while the first lists ran was missing
      // until the next rebuild a minute later (a flaky test on DynamoDB, whose lists are slow).
      const buffered = this.buffer;
      this.buffer = undefined;
      for (const ev of buffered) this.applyToSnapshot(ev);
      // Keep the set of finished uids bounded: after 10 minutes a stale reservation naming one is
      // found by the node's garbage collection instead.
      const cutoff = Date.now() - 600_000;
      for (const [uid, t] of this.finished) if (t < cutoff) this.finished.delete(uid);
      this.ready = true;
      this.builtAt = Date.now();
    } finally {
      this.buffer = undefined;
    }
  }

  apply(ev: ChangeEvent): Effect {
    if (this.buffer) {
      this.buffer.push(ev);
      // While listing, the previous state is not known: assume the event matters.
      if (ev.resource === nodes) return { nodeChanged: true };
      if (ev.resource === pods && (ev.type === 'DELETED' || isFinished(ev.object)) && ev.object.spec?.nodeName) return { podGoneFrom: ev.object.spec.nodeName };
      return {};
    }
    if (!this.ready && this.builtAt === 0) {
      // Never built: the first list will see this state. Effects still let the controller retry.
      if (ev.resource === nodes) return { nodeChanged: true };
      if (ev.resource === pods && (ev.type === 'DELETED' || isFinished(ev.object))) {
        this.finished.set(ev.object.metadata.uid!, Date.now());
        return ev.object.spec?.nodeName ? { podGoneFrom: ev.object.spec.nodeName } : {};
      }
      return {};
    }
    return this.applyToSnapshot(ev);
  }

  private applyToSnapshot(ev: ChangeEvent): Effect {
    if (ev.resource === nodes) return this.applyNode(ev.type, ev.object);
    if (ev.resource === pods) return this.applyPod(ev.type, ev.object);
    if (ev.resource === leases) return this.applyLease(ev.type, ev.object);
    return {};
  }

  private applyNode(type: ChangeEvent['type'], n: KubeObject): Effect {
    const name = n.metadata.name!;
    const rv = rvOf(n);
    const cur = this.nodes.get(name);
    if (type === 'DELETED') {
      if (cur && cur.rv > rv) return {};
      this.nodeTombstones.set(name, rv);
      if (cur) {
        this.nodes.delete(name);
        this.nodeOrder = undefined;
        this.forget(name);
      }
      return {};
    }
    if ((this.nodeTombstones.get(name) ?? -1) >= rv || (cur && cur.rv >= rv)) return {};
    const sig = nodeSignature(n);
    this.nodes.set(name, { obj: n, rv, sig });
    this.forget(name);
    if (!cur) this.nodeOrder = undefined;
    return { nodeChanged: !cur || cur.sig !== sig };
  }

  private unindex(key: string): void {
    const cur = this.pods.get(key);
    if (!cur) return;
    this.pods.delete(key);
    if (cur.nodeName) {
      this.podsByNode.get(cur.nodeName)?.delete(cur.uid);
      this.forget(cur.nodeName);
    }
  }

  private applyPod(type: ChangeEvent['type'], p: KubeObject): Effect {
    const key = `${p.metadata.namespace}/${p.metadata.name}`;
    const uid = p.metadata.uid!;
    const rv = rvOf(p);
    const cur = this.pods.get(key);
    if (type === 'DELETED' || isFinished(p)) {
      const known = this.finished.has(uid);
      this.finished.set(uid, this.finished.get(uid) ?? Date.now());
      const node = (cur?.uid === uid ? cur.nodeName : undefined) ?? p.spec?.nodeName;
      if (cur?.uid === uid) this.unindex(key);
      if (node) {
        const r = this.reservations.get(node);
        if (r?.entries[uid]) this.forget(node);
      }
      return node && !known ? { podGoneFrom: node } : {};
    }
    if (this.finished.has(uid)) return {};
    if (cur && cur.rv >= rv) return {};
    this.unindex(key);
    const res = cur?.uid === uid ? sameRequests(cur.res, p) : podResources(p);
    const nodeName: string | undefined = p.spec?.nodeName || undefined;
    const boundAt = !nodeName ? undefined : cur?.uid === uid && cur.nodeName === nodeName ? cur.boundAt : rv;
    this.pods.set(key, { uid, rv, nodeName, boundAt, res, pending: isPendingPod(p) });
    if (nodeName) {
      let m = this.podsByNode.get(nodeName);
      if (!m) this.podsByNode.set(nodeName, (m = new Map()));
      m.set(uid, res);
      this.forget(nodeName);
    }
    return {};
  }

  private applyLease(type: ChangeEvent['type'], l: KubeObject): Effect {
    // Node heartbeats are Leases too, and most reservation events echo a write this scheduler already
    // took in (setReservation): both are told apart before parsing the entries.
    const node = this.held ? undefined : reservationNode(l);
    if (!node) return {};
    if (type !== 'DELETED' && (this.reservations.get(node)?.rv ?? -1) >= rvOf(l)) return {};
    const r = reservationOf(l);
    if (!r) return {};
    if (type === 'DELETED') {
      const cur = this.reservations.get(r.node);
      if (cur && cur.rv <= r.rv) {
        this.reservations.delete(r.node);
        this.forget(r.node);
        return { roomFreed: true };
      }
      return {};
    }
    return this.setReservation(r);
  }

  /** Takes a reservation record read or written by this scheduler (write-through), if newer. */
  setReservation(r: Reservation): Effect {
    const cur = this.reservations.get(r.node);
    if (cur && cur.rv >= r.rv) return {};
    this.reservations.set(r.node, r);
    this.forget(r.node);
    const freed = cur && Object.keys(cur.entries).some((u) => !r.entries[u]);
    return freed ? { roomFreed: true } : {};
  }

  /** The fresh pod read by a reconcile, taken into the snapshot like an event. */
  notePod(p: KubeObject): void {
    if (this.ready || this.builtAt) this.applyPod('MODIFIED', p);
  }

  node(name: string): KubeObject | undefined {
    return this.nodes.get(name)?.obj;
  }

  /**
   * The revision up to which the snapshot holds every pod bound to the node: a reservation record whose
   * entries were pruned through a later one may not count pods this snapshot lacks (reservation.ts).
   */
  coveredThrough(node: string): number {
    return Math.max(this.revision, this.verified.get(node) ?? 0);
  }

  /** Reads the pods bound to the node (one indexed list) into the snapshot: it then covers the node through that list's revision. */
  async verifyNode(registry: Registry, node: string): Promise<void> {
    const list = await registry.list(pods, undefined, { fieldSelector: parseFieldSelector(`spec.nodeName=${node}`, kindFor(pods)) });
    for (const p of list.items) this.applyPod('MODIFIED', p);
    const rev = Number(list.metadata.resourceVersion ?? 0);
    if (rev > (this.verified.get(node) ?? 0)) this.verified.set(node, rev);
  }

  /** Pods bound to the node according to the snapshot. */
  boundPods(node: string): Iterable<PodResources> {
    return this.podsByNode.get(node)?.values() ?? [];
  }

  /** A NodeInfo from a node, the given reservation entries and the pods bound to it (by uid, once). */
  nodeInfoWith(node: KubeObject, r: Reservation | undefined): NodeInfo {
    const name = node.metadata.name!;
    const occupants: PodResources[] = [];
    for (const [uid, e] of Object.entries(r?.entries ?? {})) if (!this.finished.has(uid)) occupants.push(entryResources(uid, e));
    for (const p of this.boundPods(name)) occupants.push(p);
    return newNodeInfo(node, occupants);
  }

  /** The node's NodeInfo is out of date (the node, its pods or its reservation changed). */
  private forget(name: string): void {
    this.infos.delete(name);
    if (this.list) this.stale.add(name);
  }

  private info(name: string): NodeInfo {
    let info = this.infos.get(name);
    if (!info) {
      info = this.nodeInfoWith(this.nodes.get(name)!.obj, this.reservations.get(name));
      this.infos.set(name, info);
    }
    return info;
  }

  /**
   * Every node's NodeInfo, in a stable (name) order. Asked once per scheduling cycle, so the array is
   * kept and only the entries of nodes that changed are redone: it is valid until the next change.
   */
  nodeInfos(): NodeInfo[] {
    if (this.nodeOrder && this.list) {
      for (const name of this.stale) {
        const i = this.listIndex.get(name);
        if (i !== undefined) this.list[i] = this.info(name);
      }
      this.stale.clear();
      return this.list;
    }
    this.nodeOrder ??= [...this.nodes.keys()].sort();
    this.list = this.nodeOrder.map((name) => this.info(name));
    this.listIndex = new Map(this.nodeOrder.map((name, i) => [name, i]));
    this.stale.clear();
    return this.list;
  }

  pendingKeys(): string[] {
    return [...this.pods].filter(([, p]) => p.pending).map(([k]) => k);
  }

  reservationNodes(): string[] {
    return [...this.reservations.keys()];
  }

  /** The snapshot's view of a pod by key: undefined when unknown or gone. */
  pod(key: string): CachedPod | undefined {
    return this.pods.get(key);
  }
}
