// The DaemonSet controller (kube's pkg/controller/daemon, 1.32): one pod of the DaemonSet on every node
// that should run it, following nodes as they join, leave, or change labels and taints; rolling its
// template out (RollingUpdate with maxUnavailable or maxSurge, or OnDelete), keeping the template history
// as ControllerRevisions (history.ts) and reporting it all in status.
//
// Which nodes: kube's NodeShouldRunDaemonPod. The template's nodeName, nodeSelector and required node
// affinity must match; taints with NoSchedule/NoExecute must be tolerated, by the template's tolerations
// plus the ones every daemon pod gets (not-ready and unreachable NoExecute; disk-, memory-, pid-pressure
// and unschedulable NoSchedule; network-unavailable for hostNetwork). A pod already there keeps running
// unless a NoExecute taint is untolerated. As kube since 1.12, the controller does not bind: each pod
// gets a required node affinity `metadata.name In [<node>]` and the scheduler (with all its plugins:
// resources, ports...) binds it.
//
// Idempotence: a pod is named `<ds>-<5 chars of hash(ds uid, node, revision hash)>`, so two reconciles
// that saw the same (or a stale) state create the same names and the apiserver's name uniqueness turns a
// duplicate into AlreadyExists. The revision is in the name so a node can hold an old and a new pod at once
// (maxSurge). A name held by a pod the DaemonSet does not control (one it released) is skipped for the
// next of the node's names, the same way by every reconcile. Orphans its selector matches are adopted
// and pods that stop matching released (history.ts' claimPods) by the DaemonSet's reconciles. Reads come
// from the cache (pods by the namespaced owner index, nodes listed once), with expectations by revision
// (history.ts) after the controller's own pod writes.
//
// Keys: "namespace/name" of a DaemonSet; its pods and revisions map to it. A node change that can matter
// (added, deleted, labels, taints, unschedulable) maps to "*": every DaemonSet, expanded in reconcile
// (keys() has no store to read). Heartbeats change none of these and cost nothing.

import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { templateGeneration } from '../kinds/apps/daemonset.ts';
import { findResource } from '../machinery/resources.ts';
import { ApiError } from '../machinery/status.ts';
import type { KubeObject } from '../machinery/types.ts';
import { matchesNodeSelector } from '../scheduler/plugins/node-selector.ts';
import { toleratesTaint, type Taint, type Toleration } from '../scheduler/plugins/taint-toleration.ts';
import { BURST_REPLICAS, slowStartBatch } from './batch.ts';
import { readerOf, type Controller, type ControllerContext, type ReconcileResult } from './controller.ts';
import { recordEvent, type EventSpec } from './events.ts';
import {
  availableAt,
  controllerRevisions,
  currentRevision,
  isAvailable,
  isFinished,
  PodExpectations,
  claimPods,
  podReadySince,
  REVISION_LABEL,
  scaledValue,
  truncateHistory,
} from './history.ts';
import { controllerRef, controllerRefTo, isTerminating } from './owners.ts';
import { controllerUser } from './identity.ts';

const daemonSets = findResource('apps', 'v1', 'daemonsets')!;
const pods = findResource('', 'v1', 'pods')!;
const nodes = findResource('', 'v1', 'nodes')!;
const COMPONENT = 'daemonset-controller';
const ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
const ALL = '*';

/** The tolerations kube's AddOrUpdateDaemonPodTolerations gives every daemon pod. */
export function daemonTolerations(hostNetwork: boolean): Toleration[] {
  const t = (key: string, effect: string): Toleration => ({ key, operator: 'Exists', effect });
  return [
    t('node.kubernetes.io/not-ready', 'NoExecute'),
    t('node.kubernetes.io/unreachable', 'NoExecute'),
    t('node.kubernetes.io/disk-pressure', 'NoSchedule'),
    t('node.kubernetes.io/memory-pressure', 'NoSchedule'),
    t('node.kubernetes.io/pid-pressure', 'NoSchedule'),
    t('node.kubernetes.io/unschedulable', 'NoSchedule'),
    ...(hostNetwork ? [t('node.kubernetes.io/network-unavailable', 'NoSchedule')] : []),
  ];
}

/** The template's tolerations plus the daemon ones it does not already have (by key and effect). */
function withDaemonTolerations(spec: any): Toleration[] {
  const own: Toleration[] = spec?.tolerations ?? [];
  const add = daemonTolerations(!!spec?.hostNetwork).filter((d) => !own.some((o) => o.key === d.key && o.effect === d.effect));
  return [...own, ...add];
}

/** kube's NodeShouldRunDaemonPod: whether a daemon pod should be placed there, and whether one there may stay. */
export function nodeShouldRunDaemonPod(ds: KubeObject, node: KubeObject): { shouldRun: boolean; shouldContinueRunning: boolean } {
  const spec = ds.spec?.template?.spec ?? {};
  const no = { shouldRun: false, shouldContinueRunning: false };
  if (spec.nodeName && spec.nodeName !== node.metadata.name) return no;
  if (!matchesNodeSelector({ metadata: {}, spec } as KubeObject, node)) return no;
  const tolerations = withDaemonTolerations(spec);
  const untolerated = ((node.spec?.taints ?? []) as Taint[]).filter(
    (t) => (t.effect === 'NoSchedule' || t.effect === 'NoExecute') && !tolerations.some((tol) => toleratesTaint(tol, t)),
  );
  if (!untolerated.length) return { shouldRun: true, shouldContinueRunning: true };
  return { shouldRun: false, shouldContinueRunning: !untolerated.some((t) => t.effect === 'NoExecute') };
}

/**
 * The pod name for a node and revision: deterministic, so duplicate creates collide by name. `attempt`
 * picks another name when this one is held by a pod that is not the DaemonSet's (one it released).
 */
export function daemonPodName(ds: KubeObject, node: string, hash: string, attempt = 0): string {
  const h = createHash('sha256').update(`${ds.metadata.uid}/${node}/${hash}${attempt ? `/${attempt}` : ''}`).digest();
  let s = '';
  for (let k = 0; k < 5; k++) s += ALPHABET[h[k]! % ALPHABET.length];
  return `${ds.metadata.name!.slice(0, 57)}-`.slice(0, 58) + s;
}

/** The node a daemon pod is for: its nodeName once bound, else its node-name affinity (util.GetTargetNodeName). */
export function targetNode(p: KubeObject): string | undefined {
  if (p.spec?.nodeName) return p.spec.nodeName;
  for (const term of p.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? []) {
    for (const f of term?.matchFields ?? []) if (f.key === 'metadata.name' && f.operator === 'In' && f.values?.length === 1) return f.values[0];
  }
  return undefined;
}

/** The template's affinity with the required node terms replaced by the node's name (ReplaceDaemonSetPodNodeNameNodeAffinity). */
function nodeNameAffinity(affinity: any, node: string): any {
  const required = { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [node] }] }] };
  return { ...(affinity ?? {}), nodeAffinity: { ...(affinity?.nodeAffinity ?? {}), requiredDuringSchedulingIgnoredDuringExecution: required } };
}

function newPod(ds: KubeObject, node: string, hash: string, name: string): KubeObject {
  const t = ds.spec?.template ?? {};
  const spec = structuredClone(t.spec ?? {});
  spec.tolerations = withDaemonTolerations(spec);
  spec.affinity = nodeNameAffinity(spec.affinity, node);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      generateName: `${ds.metadata.name}-`,
      labels: { ...(t.metadata?.labels ?? {}), ...generationLabel(ds), [REVISION_LABEL]: hash },
      ...(t.metadata?.annotations ? { annotations: { ...t.metadata.annotations } } : {}),
      ownerReferences: [controllerRefTo({ ...ds, apiVersion: 'apps/v1', kind: 'DaemonSet' })],
    },
    spec,
  };
}

/** Oldest first; a running pod before a pending one of the same age (podByCreationTimestampAndPhase). */
function byAge(a: KubeObject, b: KubeObject): number {
  const running = (p: KubeObject) => (p.status?.phase === 'Running' ? 0 : 1);
  return (
    (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') ||
    running(a) - running(b) ||
    a.metadata.name!.localeCompare(b.metadata.name!)
  );
}

/** The deprecated pod-template-generation label kube still puts on daemon pods (from the DaemonSet's annotation). */
const GENERATION_LABEL = 'pod-template-generation';
const generationLabel = (ds: KubeObject): Record<string, string> => {
  const gen = templateGeneration(ds);
  return gen ? { [GENERATION_LABEL]: String(gen) } : {};
};

/** util.IsPodUpdated: the revision hash matches, or the template generation does. */
function isUpdated(p: KubeObject, hash: string, ds: KubeObject): boolean {
  if (p.metadata.labels?.[REVISION_LABEL] === hash) return true;
  const gen = templateGeneration(ds);
  return gen > 0 && p.metadata.labels?.[GENERATION_LABEL] === String(gen);
}

/** findUpdatedPodsOnNode: the node's one new and one old live pod; not ok when there are more. */
function updatedPodsOnNode(list: KubeObject[], hash: string, ds: KubeObject): { newPod?: KubeObject; oldPod?: KubeObject; ok: boolean } {
  let newPod: KubeObject | undefined;
  let oldPod: KubeObject | undefined;
  for (const p of list) {
    if (isTerminating(p)) continue;
    if (isUpdated(p, hash, ds)) {
      if (newPod) return { ok: false };
      newPod = p;
    } else {
      if (oldPod) return { ok: false };
      oldPod = p;
    }
  }
  return { newPod, oldPod, ok: true };
}

/** The first of the node's names not held by another owner's (or no owner's) pod; the same for every reconcile that sees the same pods. */
async function freeName(ctx: ControllerContext, ds: KubeObject, node: string, hash: string): Promise<string> {
  const reader = readerOf(ctx);
  let name = daemonPodName(ds, node, hash);
  for (let attempt = 1; attempt < 8; attempt++) {
    const holder = await reader.get(pods, ds.metadata.namespace, name);
    if (!holder || controllerRef(holder)?.uid === ds.metadata.uid) return name;
    name = daemonPodName(ds, node, hash, attempt);
  }
  return name;
}

const is404 = (e: unknown) => e instanceof ApiError && e.code === 404;

async function bestEffortEvent(ctx: ControllerContext, ds: KubeObject, e: EventSpec): Promise<void> {
  try {
    await recordEvent(ctx.registry, ds, e);
  } catch (err) {
    console.error(`${COMPONENT}: could not record event ${e.reason} for ${ds.metadata.namespace}/${ds.metadata.name}`, err);
  }
}

async function reconcileDS(ns: string, name: string, ctx: ControllerContext, burst: number, expect: PodExpectations): Promise<ReconcileResult | void> {
  const reader = readerOf(ctx);
  let ds = await reader.get(daemonSets, ns, name);
  if (!ds || isTerminating(ds)) return; // the garbage collector deletes its pods and revisions
  ds = { ...ds, apiVersion: 'apps/v1', kind: 'DaemonSet' };
  const uid = ds.metadata.uid!;
  const now = ctx.now().getTime();
  const minReady: number = ds.spec?.minReadySeconds ?? 0;

  const history = await currentRevision(ctx, ds, { apiVersion: 'apps/v1', kind: 'DaemonSet' });
  const hash: string = history.update.metadata.labels?.[REVISION_LABEL] ?? history.update.metadata.name!.slice(name.length + 1);

  const allNodes = await reader.list(nodes, undefined);
  const nodeByName = new Map(allNodes.map((n) => [n.metadata.name!, n]));
  let owned = await expect.owned(ctx, ds);
  if (await claimPods(ctx, ds, owned, expect)) owned = await expect.owned(ctx, ds);
  const byNode = (list: KubeObject[]) => {
    const m = new Map<string, KubeObject[]>();
    for (const p of list) {
      const n = targetNode(p) ?? '';
      m.set(n, [...(m.get(n) ?? []), p]);
    }
    return m;
  };
  let podsByNode = byNode(owned);

  const toCreate: string[] = []; // node names
  const toDelete = new Map<string, KubeObject>();
  const surge = ds.spec?.updateStrategy?.type !== 'OnDelete' && scaledValue(ds.spec?.updateStrategy?.rollingUpdate?.maxSurge, 1, true, 0) > 0;
  // manage: what each node should have (podsShouldBeOnNode).
  for (const node of allNodes) {
    const { shouldRun, shouldContinueRunning } = nodeShouldRunDaemonPod(ds, node);
    const here = podsByNode.get(node.metadata.name!) ?? [];
    if (shouldRun && here.length === 0) {
      toCreate.push(node.metadata.name!);
      continue;
    }
    if (!shouldContinueRunning) {
      for (const p of here) if (!isTerminating(p)) toDelete.set(p.metadata.name!, p);
      continue;
    }
    const running: KubeObject[] = [];
    for (const p of here) {
      if (isTerminating(p)) continue;
      // A failed daemon pod is deleted and replaced (kube backs the replacement off; the name waits for the old one to go).
      if (isFinished(p)) toDelete.set(p.metadata.name!, p);
      else running.push(p);
    }
    running.sort(byAge);
    if (surge) {
      // Keep the oldest new and the oldest old pod; the old one goes once the new one is available.
      let oldestNew: KubeObject | undefined;
      let oldestOld: KubeObject | undefined;
      for (const p of running) {
        if (isUpdated(p, hash, ds) && !oldestNew) oldestNew = p;
        else if (!isUpdated(p, hash, ds) && !oldestOld) oldestOld = p;
        else toDelete.set(p.metadata.name!, p);
      }
      if (oldestNew && oldestOld && (podReadySince(oldestOld) === undefined || isAvailable(oldestNew, minReady, now))) toDelete.set(oldestOld.metadata.name!, oldestOld);
    } else {
      for (const p of running.slice(1)) toDelete.set(p.metadata.name!, p);
    }
  }
  // Pods for nodes that are gone (or that never named one): nothing will ever run them.
  for (const [n, list] of podsByNode) if (!nodeByName.has(n)) for (const p of list) if (!isTerminating(p)) toDelete.set(p.metadata.name!, p);

  let requeue: number | undefined;
  const requeueIn = (ms: number) => (requeue = Math.min(requeue ?? Infinity, ms));
  // rollingUpdate: only when manage has nothing to do, from the same view (kube runs it after manage's writes).
  if (ds.spec?.updateStrategy?.type !== 'OnDelete' && toCreate.length === 0 && toDelete.size === 0) {
    const desired = allNodes.filter((n) => nodeShouldRunDaemonPod(ds, n).shouldRun).length;
    const ru = ds.spec?.updateStrategy?.rollingUpdate ?? {};
    const maxSurge = scaledValue(ru.maxSurge, desired, true, 0);
    const maxUnavailable = maxSurge > 0 ? 0 : Math.max(1, scaledValue(ru.maxUnavailable, desired, true, 1));
    const availableLater = (p: KubeObject) => {
      const at = availableAt(p, minReady);
      if (at !== undefined && at > now) requeueIn(at - now + 100);
    };
    if (maxSurge === 0) {
      let unavailable = 0;
      const allowed: KubeObject[] = [];
      const candidates: KubeObject[] = [];
      for (const [n, list] of podsByNode) {
        if (!nodeByName.has(n)) continue;
        const { newPod: np, oldPod: op, ok } = updatedPodsOnNode(list, hash, ds);
        if (!ok || (!np && !op) || (np && op)) unavailable++;
        else if (np) {
          if (!isAvailable(np, minReady, now)) {
            unavailable++;
            availableLater(np);
          }
        } else if (op) {
          if (!isAvailable(op, minReady, now)) allowed.push(op);
          else if (unavailable < maxUnavailable) candidates.push(op);
        }
      }
      const room = Math.min(Math.max(0, maxUnavailable - unavailable), candidates.length);
      for (const p of [...allowed, ...candidates.sort(byAge).slice(0, room)]) toDelete.set(p.metadata.name!, p);
    } else {
      let surged = 0;
      const allowed: string[] = [];
      const candidates: string[] = [];
      for (const [n, list] of podsByNode) {
        if (!nodeByName.has(n)) continue;
        const { newPod: np, oldPod: op, ok } = updatedPodsOnNode(list, hash, ds);
        if (!ok) {
          surged++;
          continue;
        }
        if (!op) continue;
        if (!np) {
          if (!isAvailable(op, minReady, now)) allowed.push(n);
          else if (surged < maxSurge) candidates.push(n);
        } else if (!isAvailable(np, minReady, now)) {
          surged++;
          availableLater(np);
        } else toDelete.set(op.metadata.name!, op);
      }
      toCreate.push(...allowed, ...candidates.sort().slice(0, Math.max(0, maxSurge - surged)));
    }
  }

  // syncNodes: at most a burst of writes, creations and deletions each in slow-start batches.
  let changed = false;
  const creates = toCreate.sort().slice(0, burst);
  const made = await slowStartBatch(creates.length, 1, async (i) => {
    const pod = newPod(ds!, creates[i]!, hash, await freeName(ctx, ds!, creates[i]!, hash));
    try {
      expect.wrote(uid, await ctx.create(pods, ns, pod));
    } catch (e) {
      // A duplicate delivery (or the old pod of this name still terminating): look again shortly.
      if (e instanceof ApiError && e.reason === 'AlreadyExists') return void requeueIn(1000);
      throw e;
    }
    changed = true;
    await bestEffortEvent(ctx, ds!, { type: 'Normal', reason: 'SuccessfulCreate', message: `Created pod: ${pod.metadata.name}`, component: COMPONENT });
  });
  if (made.error !== undefined) {
    if (!(made.error instanceof ApiError)) throw made.error;
    await bestEffortEvent(ctx, ds, { type: 'Warning', reason: 'FailedCreate', message: `Error creating: ${made.error.message}`, component: COMPONENT });
    requeueIn(5000);
  }
  const deletes = [...toDelete.values()].slice(0, burst);
  const gone = await slowStartBatch(deletes.length, 1, async (i) => {
    const p = deletes[i]!;
    try {
      expect.wrote(uid, (await ctx.registry.delete(pods, ns, p.metadata.name!, { preconditions: { uid: p.metadata.uid } })).object);
    } catch (e) {
      if (e instanceof ApiError && (e.code === 404 || e.code === 409)) return;
      throw e;
    }
    changed = true;
    await bestEffortEvent(ctx, ds!, { type: 'Normal', reason: 'SuccessfulDelete', message: `Deleted pod: ${p.metadata.name}`, component: COMPONENT });
  });
  if (gone.error !== undefined) throw gone.error;
  if (toCreate.length > burst || toDelete.size > burst) requeueIn(0);

  if (changed) {
    owned = await expect.owned(ctx, ds);
    podsByNode = byNode(owned);
  }
  // History: revisions no pod uses, beyond the limit, go (cleanupHistory).
  const live = new Set(owned.map((p) => p.metadata.labels?.[REVISION_LABEL] ?? ''));
  await truncateHistory(ctx, ds, history.revisions, live, new Set([history.update.metadata.name!]), true);

  // Status (updateDaemonSetStatus).
  let desired = 0;
  let current = 0;
  let ready = 0;
  let available = 0;
  let updated = 0;
  let misscheduled = 0;
  for (const node of allNodes) {
    const here = [...(podsByNode.get(node.metadata.name!) ?? [])].sort(byAge);
    if (nodeShouldRunDaemonPod(ds, node).shouldRun) {
      desired++;
      if (!here.length) continue;
      current++;
      const p = here[0]!;
      if (podReadySince(p) !== undefined) {
        ready++;
        if (isAvailable(p, minReady, now)) available++;
        else {
          const at = availableAt(p, minReady);
          if (at !== undefined) requeueIn(at - now + 100);
        }
      }
      if (isUpdated(p, hash, ds)) updated++;
    } else if (here.length) misscheduled++;
  }
  await updateStatus(ctx, ds, {
    desiredNumberScheduled: desired,
    currentNumberScheduled: current,
    numberMisscheduled: misscheduled,
    numberReady: ready,
    numberAvailable: available,
    numberUnavailable: desired - available,
    updatedNumberScheduled: updated,
    observedGeneration: ds.metadata.generation,
    ...(history.collisionCount ? { collisionCount: history.collisionCount } : {}),
  });
  // Not yet converged (pods to be bound, to become ready): the pod events bring the next reconcile.
  return requeue !== undefined ? { requeueAfterMs: requeue } : undefined;
}

async function updateStatus(ctx: ControllerContext, ds: KubeObject, s: Record<string, number | undefined>): Promise<void> {
  try {
    await ctx.registry.guaranteedUpdate(daemonSets, ds.metadata.namespace, ds.metadata.name!, undefined, { subresource: 'status' }, (cur) => {
      if (cur.metadata.uid !== ds.metadata.uid) return cur;
      const status: Record<string, unknown> = { ...(cur.status ?? {}) };
      for (const [k, v] of Object.entries(s)) if (v !== undefined) status[k] = v;
      // kube omits zero counts (omitempty) except the four required ones; keep the object as kubectl expects it.
      for (const k of ['numberAvailable', 'numberUnavailable', 'updatedNumberScheduled'] as const) if (status[k] === 0) delete status[k];
      return isDeepStrictEqual(status, cur.status) ? cur : { ...cur, status };
    });
  } catch (e) {
    if (!is404(e)) throw e;
  }
}

/** Whether a node change can change where daemon pods belong (kube's shouldIgnoreNodeUpdate, inverted). */
function nodeChangeMatters(old: KubeObject | undefined, cur: KubeObject): boolean {
  if (!old) return true;
  return (
    !isDeepStrictEqual(old.metadata.labels ?? {}, cur.metadata.labels ?? {}) ||
    !isDeepStrictEqual(old.spec?.taints ?? [], cur.spec?.taints ?? []) ||
    !!old.spec?.unschedulable !== !!cur.spec?.unschedulable
  );
}

export interface DaemonSetControllerOptions {
  /** The most pods one reconcile creates or deletes (default BURST_REPLICAS, as kube). */
  burstReplicas?: number;
}

export function createDaemonSetController(opts: DaemonSetControllerOptions = {}): Controller {
  const burst = opts.burstReplicas ?? BURST_REPLICAS;
  const expect = new PodExpectations(pods);
  return {
    name: COMPONENT,
    identity: controllerUser('daemon-set-controller'),
    watches: [daemonSets, pods, nodes, controllerRevisions],
    keys(ev) {
      const m = ev.object.metadata;
      if (ev.resource === daemonSets || ev.resource.resource === 'daemonsets') return [`${m.namespace}/${m.name}`];
      if (ev.resource.resource === 'nodes') return ev.type !== 'MODIFIED' || nodeChangeMatters(ev.oldObject, ev.object) ? [ALL] : [];
      const ref = controllerRef(ev.object);
      // Orphans are adopted by the owner's own reconciles (claimPods), not on the orphan's events: an
      // ordinary pod then costs this loop nothing (in the cloud, no owner list per pod batch).
      return ref?.kind === 'DaemonSet' && ref.apiVersion?.startsWith('apps/') ? [`${m.namespace}/${ref.name}`] : [];
    },
    async allKeys(ctx) {
      return (await readerOf(ctx).list(daemonSets, undefined)).map((d) => `${d.metadata.namespace}/${d.metadata.name}`);
    },
    async reconcile(key, ctx) {
      if (key !== ALL) {
        const i = key.indexOf('/');
        return reconcileDS(key.slice(0, i), key.slice(i + 1), ctx, burst, expect);
      }
      let requeue: number | undefined;
      for (const ds of await readerOf(ctx).list(daemonSets, undefined)) {
        const r = await reconcileDS(ds.metadata.namespace!, ds.metadata.name!, ctx, burst, expect);
        if (r?.requeueAfterMs !== undefined) requeue = Math.min(requeue ?? Infinity, r.requeueAfterMs);
      }
      return requeue !== undefined ? { requeueAfterMs: requeue } : undefined;
    },
  };
}

export const daemonSetController: Controller = createDaemonSetController();
