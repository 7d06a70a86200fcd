// The scheduler: a Controller that binds pods with no spec.nodeName (and schedulerName
// default-scheduler) to nodes, through the filter/score plugins of framework.ts.
//
// Keys. "ns/name" is a pod to schedule; "node:<name>" is a node whose reservation record needs
// garbage collection. A pod change that leaves it unbound gives its key; a node change that matters to
// scheduling (labels, taints, readiness, allocatable, a new node) or a pod leaving a node (deleted,
// Succeeded/Failed) also gives the keys of the pods this scheduler found no room for, so they retry
// at once; each such pod is also requeued after a 5-10 s back-off, and the periodic resync lists
// every unbound pod again.
//
// Snapshot. Reconciles work from SchedulerCache (cache.ts): one list of nodes, pods and reservation
// records, then kept up to date from the same change events keys() is handed, with per-node NodeInfos
// rebuilt only where something changed. A scheduling cycle is then O(nodes) cheap filter calls (and
// stops early on big clusters, as kube-scheduler's percentageOfNodesToScore does) instead of a list of
// every pod per pod. The snapshot is rebuilt on the full resync, and when older than snapshotMaxAgeMs
// (which bounds how stale it can get where this instance does not see every event, as with several
// Lambda instances on a sharded stream) it is rebuilt, or in the cloud caught up from the store's log of
// changes since its revision. Staleness never overcommits: see the reservation.
//
// Reservation (concurrency safety). Binding a pod is a CAS on the pod only, so two schedulers (two
// Lambda instances, two runners on one SQLite file or DynamoDB table) with stale snapshots could both
// put a pod on the last free room of a node. So a node's capacity is claimed before the bind, with a
// compare-and-swap on a per-node record: the Lease `skiff-alloc-<node>` in kube-node-lease, whose
// annotation skiff.dev/reservations lists, by pod uid, the pods the schedulers placed there and that
// may not be seen bound yet, with their requests, hostPorts and owner (reservation.ts). The cycle is:
//   1. choose a node from the snapshot;
//   2. reserve: read the record, drop entries of pods known deleted/finished, and re-check
//      NodeResourcesFit and NodePorts against the record's entries plus the pods bound to the node
//      in the snapshot; if the pod still fits, add it, prune the entries of pods the snapshot holds
//      bound there at a revision it covers (raising the record's prunedThrough to it), and write with
//      CAS (a concurrent write makes the registry retry from the read, re-checking). A record pruned
//      through a revision the snapshot does not cover (cache.coveredThrough) may leave out pods the
//      snapshot lacks: the node's pods are read first (one indexed list). If the pod no longer fits,
//      the fresh record goes into the snapshot and the cycle runs again;
//   3. bind through pods/binding semantics (guaranteedUpdate, subresource "binding": spec.nodeName is
//      set only if unset, on the same pod uid, not being deleted), as the apiserver's binding does;
//   4. if the bind fails because the pod is gone, being deleted or was bound elsewhere by another
//      scheduler, release the reservation (unless the pod ended up on this very node).
// Two schedulers can therefore only ever disagree about which node a pod goes to, never put more on
// a node than fits: every pod on a node went through a successful CAS that counted all the others,
// each either by its entry or, once pruned, bound in a snapshot that covers the pruning.
// Where a scheduler is the only one of its store (`skiff up` holding its data dir's scheduler lock,
// local/scheduler-lock.ts) it keeps the same records in memory (MemoryReservations): the same cycle,
// without a store write per pod (a fifth of `skiff up`'s CPU when scheduling 10,000 pods). Lambda
// instances and local clusters on a store given from outside (a DynamoDB table) keep them as Leases.
//
// Garbage collection. An entry is pruned once its pod is seen bound (above), and released when its
// pod is deleted or finished (dropped inline by any later reservation on that node, and by
// reconciling "node:<name>", enqueued when such a pod leaves the node and on every resync), when
// the pod was bound to another node, or when the pod is still unbound staleReservationMs (60 s) after
// the entry was made (a scheduler that crashed between reserve and bind). Facts are confirmed with a
// read of the pod before an entry is dropped, except for uids the snapshot saw deleted or finished,
// which can never come back.
// The one window left open: a scheduler stalled for longer than staleReservationMs between its
// reserve and its bind would bind without a reservation; the node's GC then sees the pod bound and
// counts it as bound, but the node may be overcommitted by that pod until it goes.

import type { Controller, ControllerContext, ReconcileResult } from '../controllers/controller.ts';
import { changeEventsSince } from '../controllers/stream.ts';
import { recordEvent, type EventSpec } from '../controllers/events.ts';
import { ApiError, errors } from '../machinery/status.ts';
import type { KubeObject } from '../machinery/types.ts';
import { feasibleNodesToFind, fitErrorMessage, podResources, runCycle, type CyclePlugin, type NodeInfo, type Profile } from './framework.ts';
import { defaultProfile } from './plugins/index.ts';
import { insufficientResources } from './plugins/node-resources.ts';
import { portsConflict } from './plugins/node-ports.ts';
import { isPendingPod, nodes, pods, SchedulerCache, SCHEDULER_NAME } from './cache.ts';
import { leases, NoFit, release, storeReservations, type Entry, type Held, type MemoryReservations, type ReservationRecords } from './reservation.ts';

/** A node's record was pruned through a revision this scheduler's snapshot does not cover yet. */
class BehindRecord extends Error {
  constructor(readonly prunedThrough: number) {
    super(`the node's reservation record was pruned through revision ${prunedThrough}, past the snapshot`);
  }
}

export interface SchedulerOptions {
  profile?: Profile;
  /** How equal best scores are broken: "random" (default, as kube-scheduler) or "name". */
  tieBreak?: 'random' | 'name';
  /** Retry an unschedulable pod after a random delay in [min, max] ms. Default 5-10 s. */
  unschedulableBackoffMs?: [number, number];
  /** Rebuild the snapshot when it is older than this. Default 60 s. */
  snapshotMaxAgeMs?: number;
  /** A reservation of a pod still unbound after this long is released. Default 60 s. */
  staleReservationMs?: number;
  /**
   * Records kept in this scheduler's memory instead of the store's Leases (storeReservations, the
   * default, which any number of schedulers on one store may share): only for the store's one
   * scheduler (see `active`).
   */
  reservations?: MemoryReservations;
  /**
   * Whether this scheduler may schedule now (default: always). `skiff up` answers with its data dir's
   * scheduler lock, so that with in-memory records only one process schedules, as kube-scheduler's
   * leader election makes standby instances wait. A standby looks at its pods again every 5 s.
   */
  active?: () => boolean;
  /**
   * Called once a bind is stored, before its Event: the deployed scheduler tells the pod's node through
   * its queue at once (node-notifier.ts schedulerTeller), rather than leave it to the controller manager's
   * notifier a stream batch later. Best effort: a failure is logged, and the node's poll finds the pod.
   */
  onBound?: (ctx: ControllerContext, pod: KubeObject) => Promise<void>;
}

const NODE_KEY = 'node:';
const MAX_ATTEMPTS = 5;

function nowRFC3339(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function notFound(e: unknown): boolean {
  return e instanceof ApiError && e.code === 404;
}

/** Events are informative: failing to record one must not make a done bind be retried. */
async function bestEffortEvent(ctx: ControllerContext, about: KubeObject, e: EventSpec): Promise<void> {
  try {
    await recordEvent(ctx.registry, about, e);
  } catch (err) {
    console.error(`scheduler: could not record event ${e.reason} for ${about.metadata.namespace}/${about.metadata.name}`, err);
  }
}

/** A scheduler Controller with its own snapshot: one per runner (or Lambda instance). */
export function createScheduler(opts: SchedulerOptions = {}): Controller & { cache: SchedulerCache } {
  const profile = opts.profile ?? defaultProfile;
  const [backoffMin, backoffMax] = opts.unschedulableBackoffMs ?? [5000, 10_000];
  const staleMs = opts.staleReservationMs ?? 60_000;
  const memory = opts.reservations;
  const cache = new SchedulerCache(opts.snapshotMaxAgeMs ?? 60_000, memory && (() => memory.held()));
  const recordsOf = (ctx: ControllerContext): ReservationRecords => memory ?? storeReservations(ctx.registry);
  // Records in memory are not written anywhere: nothing to gain by pruning them.
  const prune = !memory;
  const STANDBY_RETRY_MS = 5000;
  let nextStart = 0;

  const backoff = () => backoffMin + Math.floor(Math.random() * (backoffMax - backoffMin + 1));

  async function markUnschedulable(ctx: ControllerContext, pod: KubeObject, message: string): Promise<ReconcileResult> {
    const { namespace, name, uid } = pod.metadata;
    cache.unschedulable.add(`${namespace}/${name}`);
    let current = pod;
    try {
      current = await ctx.registry.guaranteedUpdate(pods, namespace, name!, undefined, { subresource: 'status' }, (cur) => {
        if (cur.metadata.uid !== uid || cur.spec?.nodeName) return cur;
        const conds: any[] = cur.status?.conditions ?? [];
        const old = conds.find((c) => c?.type === 'PodScheduled');
        if (old?.status === 'False' && old.reason === 'Unschedulable' && old.message === message) return cur;
        const cond = {
          type: 'PodScheduled',
          status: 'False',
          lastProbeTime: null,
          lastTransitionTime: old?.status === 'False' && old.lastTransitionTime ? old.lastTransitionTime : nowRFC3339(),
          reason: 'Unschedulable',
          message,
        };
        cur.status = { ...(cur.status ?? {}), conditions: [...conds.filter((c) => c?.type !== 'PodScheduled'), cond] };
        return cur;
      });
    } catch (e) {
      if (notFound(e)) return {};
      throw e;
    }
    if (current.metadata.uid !== uid || current.spec?.nodeName) return {};
    await bestEffortEvent(ctx, current, { type: 'Warning', reason: 'FailedScheduling', message, component: SCHEDULER_NAME });
    return { requeueAfterMs: backoff() };
  }

  /**
   * Claims room for the pod on the node with CAS on its reservation record; NoFit if there is none.
   * With the records in the store, the same write prunes the entries of pods the snapshot holds bound to
   * the node (their room is counted from the snapshots' pods from then on: pruneBound), so the record
   * stays as small as the pods in flight. A record pruned through a revision the snapshot does not cover
   * first has the node's pods read (BehindRecord).
   */
  async function reserve(ctx: ControllerContext, records: ReservationRecords, nodeName: string, pod: KubeObject): Promise<void> {
    const res = podResources(pod);
    for (let tries = 0; ; tries++) {
      try {
        const r = await records.update(nodeName, (held, rv) => {
          const { entries } = held;
          if (prune && held.prunedThrough > cache.coveredThrough(nodeName)) throw new BehindRecord(held.prunedThrough);
          for (const u of Object.keys(entries)) if (u !== res.uid && cache.finished.has(u)) delete entries[u];
          if (!entries[res.uid]) {
            // Not reserved already (as after a redelivered key, or a retry after a failed bind): check the fit.
            const node = cache.node(nodeName);
            const fresh = { node: nodeName, rv, ...held };
            if (!node) throw new NoFit(['node(s) not found'], fresh);
            const info = cache.nodeInfoWith(node, fresh);
            const reasons = insufficientResources(res, info);
            if (portsConflict(res.hostPorts, info.usedPorts)) reasons.push("node(s) didn't have free ports for the requested pod ports");
            if (reasons.length) throw new NoFit(reasons, fresh);
            const { uid: _uid, ...rest } = res;
            entries[res.uid] = { ...rest, at: Date.now() } satisfies Entry;
          }
          return prune ? pruneBound(held, nodeName, res.uid) : held;
        });
        cache.setReservation(r);
        return;
      } catch (e) {
        if (!(e instanceof BehindRecord) || tries >= MAX_ATTEMPTS) throw e;
        await cache.verifyNode(ctx.registry, nodeName);
      }
    }
  }

  /**
   * Drops the entries of pods the snapshot holds bound to the node (but `keep`'s) at a revision it covers,
   * raising prunedThrough to those revisions. So prunedThrough never passes this snapshot's coverage (the
   * record's, checked before, did not either): this scheduler's next reservation there reads nothing more,
   * and an entry pruned by anyone is a pod any snapshot covering prunedThrough holds. A pod bound after the
   * snapshot's revision keeps its entry until a later reservation, once the snapshot has caught up.
   */
  function pruneBound(held: Held, nodeName: string, keep: string): Held {
    const covered = cache.coveredThrough(nodeName);
    let through = held.prunedThrough;
    for (const [uid, e] of Object.entries(held.entries)) {
      const p = uid === keep ? undefined : cache.pod(e.key);
      if (p?.uid !== uid || p.nodeName !== nodeName || p.boundAt === undefined || p.boundAt > covered) continue;
      delete held.entries[uid];
      through = Math.max(through, p.boundAt);
    }
    return { entries: held.entries, prunedThrough: through };
  }

  /** pods/binding, as the apiserver serves it: spec.nodeName only if unset, for this very pod. */
  async function bind(ctx: ControllerContext, pod: KubeObject, nodeName: string): Promise<KubeObject> {
    const { namespace, name, uid } = pod.metadata;
    return ctx.registry.guaranteedUpdate(pods, namespace, name!, undefined, { subresource: 'binding', owned: true }, (cur) => {
      if (cur.metadata.deletionTimestamp) throw errors.conflict('pods', '', name!, 'pod is being deleted, cannot be assigned to a host');
      if (cur.spec?.nodeName) throw errors.conflict('pods', '', name!, `pod ${name} is already assigned to node "${cur.spec.nodeName}"`);
      if (cur.metadata.uid !== uid) throw errors.conflict('pods', '', name!, 'the UID in the binding does not match the pod');
      cur.spec.nodeName = nodeName;
      const conds: any[] = (cur.status?.conditions ?? []).filter((c: any) => c.type !== 'PodScheduled');
      conds.push({ type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: nowRFC3339() });
      cur.status = { ...(cur.status ?? {}), conditions: conds };
      return cur;
    });
  }

  /** Runs the cycle plugins' PreFilter; their filters join the profile's for this pod. */
  async function preFilter(
    ctx: ControllerContext,
    pod: KubeObject,
    numNodes: number,
  ): Promise<{ profile: Profile; states: [CyclePlugin, unknown][] } | { unschedulable: string }> {
    const states: [CyclePlugin, unknown][] = [];
    for (const plugin of profile.cycle ?? []) {
      const r = await plugin.preFilter(ctx, pod);
      if (!r) continue;
      // As kube-scheduler's FitError with a PreFilter message.
      if ('unschedulable' in r) {
        const head = `0/${numNodes} nodes are available`;
        return { unschedulable: `${head}: ${r.unschedulable}. preemption: ${head}: ${numNodes} Preemption is not helpful for scheduling.` };
      }
      states.push([plugin, r.state]);
    }
    if (!states.length) return { profile, states };
    const filters = states.map(([plugin, state]) => ({ name: plugin.name, filter: (p: KubeObject, _r: unknown, node: NodeInfo) => plugin.filter(p, state, node) }));
    return { profile: { ...profile, filters: [...profile.filters, ...filters] }, states };
  }

  /** In the cloud, the store's log: an old snapshot catches up from it (cache.ts ensure). */
  const changesOf = (ctx: ControllerContext) => (ctx.resyncLog ? changeEventsSince(ctx.resyncLog, [nodes, pods, leases]) : undefined);

  async function reconcilePod(key: string, ctx: ControllerContext): Promise<ReconcileResult | void> {
    const { registry } = ctx;
    const records = recordsOf(ctx);
    const slash = key.indexOf('/');
    const namespace = key.slice(0, slash);
    const name = key.slice(slash + 1);
    await cache.ensure(registry, changesOf(ctx));
    let pod: KubeObject;
    try {
      pod = await registry.get(pods, namespace, name);
    } catch (e) {
      if (notFound(e)) return void cache.unschedulable.delete(key);
      throw e;
    }
    cache.notePod(pod);
    if (!isPendingPod(pod)) return void cache.unschedulable.delete(key);

    // PreFilter of the cycle plugins (VolumeBinding): what they read, bound into this pod's filters.
    const cycle = await preFilter(ctx, pod, cache.nodeInfos().length);
    if ('unschedulable' in cycle) return markUnschedulable(ctx, pod, cycle.unschedulable);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const infos = cache.nodeInfos();
      const result = runCycle(pod, infos, cycle.profile, {
        tieBreak: opts.tieBreak,
        startIndex: nextStart,
        feasibleToFind: feasibleNodesToFind(infos.length),
      });
      if (result.node === undefined) {
        const message = result.numAllNodes === 0 ? 'no nodes available to schedule pods' : fitErrorMessage(result.numAllNodes, result.reasons);
        return markUnschedulable(ctx, pod, message);
      }
      // The next pod starts looking where this one stopped (kube-scheduler's nextStartNodeIndex).
      nextStart = (nextStart + result.examined) % Math.max(1, infos.length);
      try {
        await reserve(ctx, records, result.node, pod);
      } catch (e) {
        if (e instanceof NoFit) {
          // Our snapshot was behind: take the fresh record and choose again.
          cache.setReservation(e.fresh);
          continue;
        }
        throw e;
      }
      let bound: KubeObject;
      try {
        for (const [plugin, state] of cycle.states) await plugin.preBind?.(ctx, pod, state, result.node);
      } catch (e) {
        cache.setReservation(await release(records, result.node, [pod.metadata.uid!]));
        throw e;
      }
      try {
        bound = await bind(ctx, pod, result.node);
      } catch (e) {
        if (!(e instanceof ApiError && (e.code === 404 || e.code === 409))) {
          cache.setReservation(await release(records, result.node, [pod.metadata.uid!]));
          throw e;
        }
        // Gone, being deleted, or bound by another scheduler: keep the room only if it is ours.
        let now: KubeObject | undefined;
        try {
          now = await registry.get(pods, namespace, name);
          cache.notePod(now);
        } catch (e2) {
          if (!notFound(e2)) throw e2;
        }
        if (!(now && now.metadata.uid === pod.metadata.uid && now.spec?.nodeName === result.node)) {
          cache.setReservation(await release(records, result.node, [pod.metadata.uid!]));
        }
        cache.unschedulable.delete(key);
        return;
      }
      cache.notePod(bound);
      cache.unschedulable.delete(key);
      await opts.onBound?.(ctx, bound).catch((e) => console.error(`scheduler: could not tell node ${result.node} of ${key}`, e));
      await bestEffortEvent(ctx, bound, {
        type: 'Normal',
        reason: 'Scheduled',
        message: `Successfully assigned ${namespace}/${name} to ${result.node}`,
        component: SCHEDULER_NAME,
      });
      return;
    }
    // Lost the race for room several times in a row: try again shortly with what we learned.
    return { requeueAfterMs: 50 + Math.floor(Math.random() * 100) };
  }

  /** Releases reservations whose pods are gone, finished, bound elsewhere, or never bound. */
  async function reconcileNode(nodeName: string, ctx: ControllerContext): Promise<ReconcileResult | void> {
    const { registry } = ctx;
    await cache.ensure(registry, changesOf(ctx));
    const records = recordsOf(ctx);
    const r = await records.read(nodeName);
    cache.setReservation(r);
    const stale: string[] = [];
    let inFlight = false;
    const now = Date.now();
    for (const [uid, e] of Object.entries(r.entries)) {
      if (cache.finished.has(uid)) {
        stale.push(uid);
        continue;
      }
      const cached = cache.pod(e.key);
      if (cached?.uid === uid && cached.nodeName === nodeName) continue; // running here: keep
      const slash = e.key.indexOf('/');
      let pod: KubeObject | undefined;
      try {
        pod = await registry.get(pods, e.key.slice(0, slash), e.key.slice(slash + 1));
      } catch (err) {
        if (!notFound(err)) throw err;
      }
      if (!pod || pod.metadata.uid !== uid || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') {
        stale.push(uid);
      } else if (pod.spec?.nodeName) {
        if (pod.spec.nodeName !== nodeName) stale.push(uid);
      } else if (pod.metadata.deletionTimestamp || now - e.at >= staleMs) {
        stale.push(uid);
      } else {
        inFlight = true; // reserved, not bound yet: look again once it may have gone stale
      }
    }
    if (stale.length) cache.setReservation(await release(records, nodeName, stale));
    if (inFlight) return { requeueAfterMs: staleMs };
    if (stale.length === Object.keys(r.entries).length && r.rv > 0) await dropRecordOfDeletedNode(ctx, records, nodeName);
  }

  /** A deleted node's empty reservation record goes too (only if unchanged since we read it). */
  async function dropRecordOfDeletedNode(ctx: ControllerContext, records: ReservationRecords, nodeName: string): Promise<void> {
    if (cache.node(nodeName)) return;
    try {
      await ctx.registry.get(nodes, undefined, nodeName);
      return; // the node exists: keep its record
    } catch (e) {
      if (!notFound(e)) throw e;
    }
    const r = await records.read(nodeName);
    if (r.rv === 0 || Object.keys(r.entries).length) return;
    await records.drop(nodeName, r.rv);
  }

  return {
    name: 'scheduler',
    // kube-scheduler's own user, holding the system:kube-scheduler ClusterRole.
    identity: { username: 'system:kube-scheduler', groups: ['system:authenticated'] },
    cache,
    // Pods are placed one after another from the snapshot, but each waits for its reservation, bind and
    // Event writes to commit; with several in flight those writes share commits (the SQLite store's group
    // commit) instead of each pod paying its own. Safe by the reservation protocol above: pods in flight
    // at once are no different from two schedulers.
    concurrency: 16,
    // The records' Leases only when the records are in the store.
    watches: memory ? [pods, nodes] : [pods, nodes, leases],
    keys(ev) {
      const effect = cache.apply(ev);
      const out: string[] = [];
      if (ev.resource === pods && ev.type === 'DELETED') cache.unschedulable.delete(`${ev.object.metadata.namespace}/${ev.object.metadata.name}`);
      if (ev.resource === nodes && ev.type === 'DELETED') out.push(NODE_KEY + ev.object.metadata.name);
      if (ev.resource === pods && ev.type !== 'DELETED' && isPendingPod(ev.object)) {
        out.push(`${ev.object.metadata.namespace}/${ev.object.metadata.name}`);
      }
      if (effect.podGoneFrom) out.push(NODE_KEY + effect.podGoneFrom);
      if (effect.nodeChanged || effect.podGoneFrom || effect.roomFreed) out.push(...cache.unschedulable);
      return out;
    },
    async allKeys({ registry }) {
      cache.invalidate();
      await cache.ensure(registry);
      return [...cache.pendingKeys(), ...cache.reservationNodes().map((n) => NODE_KEY + n)];
    },
    async reconcile(key, ctx) {
      if (opts.active && !opts.active()) return { requeueAfterMs: STANDBY_RETRY_MS };
      return key.startsWith(NODE_KEY) ? reconcileNode(key.slice(NODE_KEY.length), ctx) : reconcilePod(key, ctx);
    },
  };
}
