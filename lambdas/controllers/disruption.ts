// The disruption controller (kube's pkg/controller/disruption): keeps each PodDisruptionBudget's status
// from the pods it selects, which is what the pods/eviction subresource (apiserver/eviction.ts) spends.
//
// - expectedPods: the number of selected pods for an integer minAvailable; for maxUnavailable or a
//   percentage minAvailable, the sum of the scale (spec.replicas) of the pods' controllers: a
//   ReplicationController, a ReplicaSet (or, above it, its Deployment), a StatefulSet, or any kind with
//   a scale subresource (custom resources too). A selected pod with no controller is left out of that
//   sum (an UnmanagedPods warning); one whose controller cannot be found, or has no scale (a Job), fails
//   the sync.
// - desiredHealthy: minAvailable (scaled, rounded up), or expectedPods - maxUnavailable (rounded up).
// - currentHealthy: selected pods that are Ready, not being deleted, and not in status.disruptedPods.
// - disruptionsAllowed: currentHealthy - desiredHealthy, never below 0, and 0 while expectedPods is 0.
// - disruptedPods: the evictions the eviction API recorded, kept until the pod is seen deleting or gone,
//   or for 2 minutes (DeletionTimeout; a NotDeleted warning then); the budget is requeued for the
//   earliest expiry.
// - observedGeneration, and the DisruptionAllowed condition (SufficientPods / InsufficientPods; a failed
//   sync sets disruptionsAllowed 0 with SyncFailed and the error, as kube's failSafe).
// - A pod the eviction API marked DisruptionTarget=True but that is still not being deleted 2 minutes later
//   (its delete failed) gets the condition back to False (kube's syncStalePodDisruption).
//
// Keys: "namespace/name" for a budget. A pod change that matters to budgets (created, deleted, labels,
// readiness, deletion, controller) maps to "namespace/@{labels}" for its old and new labels, as the
// endpoints controller maps pods to Services; reconciling that key finds the budgets selecting those
// labels through the selector index of the cache (cache.ts selectorsMatching) and syncs each. A change of
// a controller's replicas maps to its template's labels the same way. A budget's pods are read from the
// label index (objectsSelectedBy on its matchLabels, then the whole selector), the controllers by get,
// all through ctx.cache.
//
// The status is computed and written inside the registry's compare-and-swap on the budget: the eviction
// API's own writes (disruptionsAllowed - 1, a new disruptedPods entry) are never overwritten by a sync
// that read the budget before them, and a duplicated or reordered event recomputes the same status,
// which is then not written at all.

import { findResource, type ResourceInfo } from '../machinery/resources.ts';
import { labelSelectorFromMetav1 } from '../machinery/selectors.ts';
import { ApiError, errors } from '../machinery/status.ts';
import type { KubeObject, OwnerReference } from '../machinery/types.ts';
import { isPodReady } from '../apiserver/eviction.ts';
import { kindFor } from '../kinds/index.ts';
import { SYNC_FAILED, setDisruptionAllowedCondition, setStatusCondition } from '../kinds/policy/poddisruptionbudget.ts';
import { objectsSelectedBy, selectorsMatching, type ObjectReader } from './cache.ts';
import { readerOf, servedKinds, type Controller, type ControllerContext, type ReconcileResult } from './controller.ts';
import { recordEvent } from './events.ts';
import { scaledValue } from './history.ts';
import { controllerRef } from './owners.ts';
import { controllerUser } from './identity.ts';

const pdbsRes = findResource('policy', 'v1', 'poddisruptionbudgets')!;
const podsRes = findResource('', 'v1', 'pods')!;
const rcsRes = findResource('', 'v1', 'replicationcontrollers')!;
const rssRes = findResource('apps', 'v1', 'replicasets')!;
const deploymentsRes = findResource('apps', 'v1', 'deployments')!;
const statefulSetsRes = findResource('apps', 'v1', 'statefulsets')!;
const SCALED = [rcsRes, rssRes, deploymentsRes, statefulSetsRes];

/** Kube's DeletionTimeout: how long an eviction's entry in disruptedPods holds the pod out of currentHealthy. */
export const DELETION_TIMEOUT_MS = 2 * 60_000;
const COMPONENT = 'controllermanager';

const labelsKey = (l: Record<string, string> | undefined) => JSON.stringify(Object.fromEntries(Object.entries(l ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));

/** The pods a budget selects (a missing selector: none; an empty one: all of the namespace's). */
async function podsOf(reader: ObjectReader, pdb: KubeObject): Promise<KubeObject[]> {
  const sel = pdb.spec?.selector;
  if (!sel) return [];
  const selector = labelSelectorFromMetav1(sel);
  const ns = pdb.metadata.namespace!;
  const matchLabels: Record<string, string> = sel.matchLabels ?? {};
  const candidates = Object.keys(matchLabels).length ? await objectsSelectedBy(reader, podsRes, ns, matchLabels) : await reader.list(podsRes, ns);
  return candidates.filter((p) => selector.matches(p.metadata.labels ?? {}));
}

const groupOf = (ref: OwnerReference) => {
  const av = ref.apiVersion ?? '';
  return av.includes('/') ? av.slice(0, av.indexOf('/')) : '';
};
/** verifyGroupKind: ReplicaSets and Deployments may still be named by their old group, extensions. */
const refIs = (ref: OwnerReference, res: ResourceInfo) =>
  ref.kind === res.kind && (groupOf(ref) === res.group || (res.group === 'apps' && res !== statefulSetsRes && groupOf(ref) === 'extensions'));

/** The referenced controller, if it is the one the reference means (same uid). */
async function controllerOf(reader: ObjectReader, res: ResourceInfo, ns: string, ref: OwnerReference): Promise<KubeObject | undefined> {
  const o = await reader.get(res, ns, ref.name);
  return o && o.metadata.uid === ref.uid ? o : undefined;
}

type Scale = { uid: string; replicas: number };

/**
 * The finders of kube's getExpectedScale, in its order: the pod's RC, its ReplicaSet's Deployment, its
 * ReplicaSet (one no Deployment controls), its StatefulSet, then any kind through its scale subresource.
 */
async function scaleOf(ctx: ControllerContext, reader: ObjectReader, ns: string, ref: OwnerReference): Promise<Scale | undefined> {
  const replicas = (o: KubeObject) => (typeof o.spec?.replicas === 'number' ? o.spec.replicas : 1);
  if (refIs(ref, rcsRes) || refIs(ref, statefulSetsRes)) {
    const o = await controllerOf(reader, refIs(ref, rcsRes) ? rcsRes : statefulSetsRes, ns, ref);
    if (o) return { uid: o.metadata.uid!, replicas: replicas(o) };
  } else if (refIs(ref, rssRes)) {
    const rs = await controllerOf(reader, rssRes, ns, ref);
    const up = rs && controllerRef(rs);
    if (rs && (!up || !refIs(up, deploymentsRes))) return { uid: rs.metadata.uid!, replicas: replicas(rs) };
    // A ReplicaSet of a Deployment: the Deployment's replicas are what the budget is measured against
    // (a Deployment gone, the ReplicaSet's own scale, as kube's last finder finds it).
    const d = up && (await controllerOf(reader, deploymentsRes, ns, up));
    if (d) return { uid: d.metadata.uid!, replicas: replicas(d) };
  }
  return scaleSubresourceOf(ctx, reader, ns, ref);
}

/** getScaleController: a controller of any served kind (a custom resource's too), by its scale subresource. */
async function scaleSubresourceOf(ctx: ControllerContext, reader: ObjectReader, ns: string, ref: OwnerReference): Promise<Scale | undefined> {
  const group = groupOf(ref);
  const res = (await servedKinds(ctx)).find((r) => r.group === group && r.kind === ref.kind);
  if (!res) throw new Error(`no matches for kind ${JSON.stringify(ref.kind)} in version ${JSON.stringify(ref.apiVersion ?? '')}`);
  const rules = kindFor(res).scale;
  if (!rules) throw new Error(`${res.resource}${group ? `.${group}` : ''} does not implement the scale subresource`);
  const o = await controllerOf(reader, res, ns, ref);
  return o && { uid: o.metadata.uid!, replicas: Number(rules.toScale(o).spec?.replicas ?? 0) };
}

/** getExpectedScale: the sum of the scales of the selected pods' controllers. */
async function expectedScale(ctx: ControllerContext, reader: ObjectReader, pods: KubeObject[]): Promise<{ expected: number; unmanaged: string[] }> {
  const scales = new Map<string, number>();
  const unmanaged: string[] = [];
  const seen = new Set<string>();
  for (const pod of pods) {
    const ref = controllerRef(pod);
    if (!ref) {
      unmanaged.push(pod.metadata.name!);
      continue;
    }
    if (seen.has(ref.uid)) continue;
    seen.add(ref.uid);
    const found = await scaleOf(ctx, reader, pod.metadata.namespace!, ref);
    if (!found) throw new Error(`found no controllers for pod ${JSON.stringify(pod.metadata.name)}`);
    scales.set(found.uid, found.replicas);
  }
  return { expected: [...scales.values()].reduce((a, b) => a + b, 0), unmanaged };
}

/** getExpectedPodCount: expectedPods and desiredHealthy from the spec. */
async function expectedCount(ctx: ControllerContext, reader: ObjectReader, pdb: KubeObject, pods: KubeObject[]): Promise<{ expected: number; desired: number; unmanaged: string[] }> {
  const spec = pdb.spec ?? {};
  if (spec.maxUnavailable !== undefined && spec.maxUnavailable !== null) {
    const { expected, unmanaged } = await expectedScale(ctx, reader, pods);
    const maxUnavailable = scaledValue(spec.maxUnavailable, expected, true, 0);
    return { expected, desired: Math.max(0, expected - maxUnavailable), unmanaged };
  }
  if (typeof spec.minAvailable === 'number') return { expected: pods.length, desired: spec.minAvailable, unmanaged: [] };
  if (typeof spec.minAvailable === 'string') {
    const { expected, unmanaged } = await expectedScale(ctx, reader, pods);
    return { expected, desired: scaledValue(spec.minAvailable, expected, true, 0), unmanaged };
  }
  return { expected: 0, desired: 0, unmanaged: [] };
}

/** buildDisruptedPodMap: the entries still standing for pods not yet seen deleting; the expired ones. */
function disruptedPodMap(pods: KubeObject[], recorded: Record<string, string> | undefined, now: number) {
  const kept: Record<string, string> = {};
  const expired: KubeObject[] = [];
  let recheckAt: number | undefined;
  if (!recorded) return { kept, expired, recheckAt };
  for (const pod of pods) {
    if (pod.metadata.deletionTimestamp) continue;
    const at = recorded[pod.metadata.name!];
    if (at === undefined) continue;
    const deadline = Date.parse(at) + DELETION_TIMEOUT_MS;
    if (deadline < now) expired.push(pod);
    else {
      kept[pod.metadata.name!] = at;
      if (recheckAt === undefined || deadline < recheckAt) recheckAt = deadline;
    }
  }
  return { kept, expired, recheckAt };
}

/** countHealthyPods: Ready, not deleting, not about to be deleted by an eviction. */
function countHealthy(pods: KubeObject[], disrupted: Record<string, string>, now: number): number {
  let n = 0;
  for (const pod of pods) {
    if (pod.metadata.deletionTimestamp) continue;
    const at = disrupted[pod.metadata.name!];
    if (at !== undefined && Date.parse(at) + DELETION_TIMEOUT_MS > now) continue;
    if (isPodReady(pod)) n++;
  }
  return n;
}

const isConflict = (e: unknown) => e instanceof ApiError && e.code === 409;
const is404 = (e: unknown) => e instanceof ApiError && e.code === 404;

/** Thrown inside the compare-and-swap when the budget is not the one the counts were computed for. */
const changedMeanwhile = (name: string) => errors.conflict(pdbsRes.resource, pdbsRes.group, name, 'the object has been modified; please apply your changes to the latest version and try again');

/** failSafe: no disruption allowed, and the condition says why. */
async function failSafe(ctx: ControllerContext, pdb: KubeObject, err: Error): Promise<void> {
  const now = ctx.now();
  await ctx.registry.guaranteedUpdate(pdbsRes, pdb.metadata.namespace, pdb.metadata.name!, undefined, { subresource: 'status' }, (cur) => {
    if (cur.metadata.uid !== pdb.metadata.uid) return cur;
    const status = { ...(cur.status ?? {}), disruptionsAllowed: 0 };
    setStatusCondition(status, { type: 'DisruptionAllowed', status: 'False', reason: SYNC_FAILED, message: err.message, observedGeneration: status.observedGeneration }, now);
    return { ...cur, status };
  });
}

async function syncBudget(ctx: ControllerContext, ns: string, name: string): Promise<ReconcileResult | void> {
  const reader = readerOf(ctx);
  // The budget from the store: its generation decides observedGeneration, and the write below is a CAS on it.
  let pdb: KubeObject;
  try {
    pdb = await ctx.registry.get(pdbsRes, ns, name);
  } catch (e) {
    if (is404(e)) return;
    throw e;
  }
  let pods: KubeObject[];
  let counts: { expected: number; desired: number; unmanaged: string[] };
  try {
    pods = await podsOf(reader, pdb);
    counts = await expectedCount(ctx, reader, pdb, pods);
  } catch (e) {
    if (isConflict(e)) throw e;
    const err = e instanceof Error ? e : new Error(String(e));
    await recordEvent(ctx.registry, pdb, { type: 'Warning', reason: 'CalculateExpectedPodCountFailed', message: `Failed to calculate the number of expected pods: ${err.message}`, component: COMPONENT });
    await failSafe(ctx, pdb, err);
    return;
  }

  const now = ctx.now();
  const nowMs = now.getTime();
  let recheckAt: number | undefined;
  let expired: KubeObject[] = [];
  let before: KubeObject | undefined;
  let after: KubeObject;
  try {
    after = await ctx.registry.guaranteedUpdate(pdbsRes, ns, name, undefined, { subresource: 'status' }, (cur) => {
    if (cur.metadata.uid !== pdb.metadata.uid || cur.metadata.generation !== pdb.metadata.generation) throw changedMeanwhile(name);
    before = cur;
    const status = cur.status ?? {};
    const dp = disruptedPodMap(pods, status.disruptedPods, nowMs);
    recheckAt = dp.recheckAt;
    expired = dp.expired;
    const currentHealthy = countHealthy(pods, dp.kept, nowMs);
    let disruptionsAllowed = currentHealthy - counts.desired;
    if (counts.expected <= 0 || disruptionsAllowed <= 0) disruptionsAllowed = 0;
    const next: Record<string, any> = {
      ...(cur.metadata.generation ? { observedGeneration: cur.metadata.generation } : {}),
      ...(Object.keys(dp.kept).length ? { disruptedPods: dp.kept } : {}),
      disruptionsAllowed,
      currentHealthy,
      desiredHealthy: counts.desired,
      expectedPods: counts.expected,
      ...(status.conditions ? { conditions: structuredClone(status.conditions) } : {}),
    };
    setDisruptionAllowedCondition(next, now);
    // Unchanged: the registry writes nothing (no new revision, no event).
    return { ...cur, status: next };
    });
  } catch (e) {
    // The spec changed since it was read (kube requeues on a conflict, without failSafe): again, soon.
    if (isConflict(e)) return { requeueAfterMs: 10 };
    throw e;
  }
  if (before && after.metadata.resourceVersion !== before.metadata.resourceVersion) {
    // Said once per change of the status, not on every resync.
    if (pods.length === 0) await recordEvent(ctx.registry, pdb, { type: 'Normal', reason: 'NoPods', message: 'No matching pods found', component: COMPONENT });
    if (counts.unmanaged.length) {
      await recordEvent(ctx.registry, pdb, {
        type: 'Warning',
        reason: 'UnmanagedPods',
        message: `Pods selected by this PodDisruptionBudget (selector: ${selectorString(pdb.spec?.selector)}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set ".spec.minAvailable" field of the PDB to an integer value.`,
        component: COMPONENT,
      });
    }
    for (const pod of expired) {
      await recordEvent(ctx.registry, pod, { type: 'Warning', reason: 'NotDeleted', message: `Pod was expected by PDB ${ns}/${ns} to be deleted but it wasn't`, component: COMPONENT });
    }
  }
  if (recheckAt !== undefined) return { requeueAfterMs: Math.max(0, recheckAt - nowMs) + 1 };
}

/** A LabelSelector as Go's %v prints the pointer's struct (the UnmanagedPods message quotes it). */
function selectorString(sel: any): string {
  const ml = Object.entries(sel?.matchLabels ?? {})
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}: ${v},`)
    .join('');
  const me = (sel?.matchExpressions ?? []).map((e: any) => `LabelSelectorRequirement{Key:${e.key},Operator:${e.operator},Values:[${(e.values ?? []).join(' ')}],}`).join(',');
  return `&LabelSelector{MatchLabels:map[string]string{${ml}},MatchExpressions:[]LabelSelectorRequirement{${me}},}`;
}

/** Whether a pod change can change a budget's counts. */
function podMatters(ev: { type: string; object: KubeObject; oldObject?: KubeObject }): boolean {
  const o = ev.oldObject;
  if (ev.type !== 'MODIFIED' || !o) return true;
  const p = ev.object;
  return (
    labelsKey(p.metadata.labels) !== labelsKey(o.metadata.labels) ||
    isPodReady(p) !== isPodReady(o) ||
    !!p.metadata.deletionTimestamp !== !!o.metadata.deletionTimestamp ||
    controllerRef(p)?.uid !== controllerRef(o)?.uid
  );
}

/**
 * kube's stalePodDisruptionTimeout: a pod marked DisruptionTarget (an eviction's first write) that is still
 * not being deleted this long after has the condition set back to False (the delete never happened).
 */
export const STALE_POD_DISRUPTION_MS = 2 * 60_000;

/** The pod's DisruptionTarget=True condition, while the pod is not being deleted. */
function pendingDisruption(pod: KubeObject): { lastTransitionTime?: string } | undefined {
  if (pod.metadata.deletionTimestamp) return undefined;
  return (pod.status?.conditions ?? []).find((c: any) => c?.type === 'DisruptionTarget' && c.status === 'True');
}

/** syncStalePodDisruption: resets a DisruptionTarget condition that outlived its eviction. */
async function syncStalePodDisruption(ctx: ControllerContext, ns: string, name: string): Promise<ReconcileResult | void> {
  const pod = await readerOf(ctx).get(podsRes, ns, name);
  const cond = pod && pendingDisruption(pod);
  if (!pod || !cond) return;
  const now = ctx.now();
  const staleAt = (c: { lastTransitionTime?: string }) => (Date.parse(c.lastTransitionTime ?? '') || 0) + STALE_POD_DISRUPTION_MS;
  if (staleAt(cond) > now.getTime()) return { requeueAfterMs: staleAt(cond) - now.getTime() + 1 };
  try {
    await ctx.registry.guaranteedUpdate(podsRes, ns, name, undefined, { subresource: 'status' }, (cur) => {
      const c = cur.metadata.uid === pod.metadata.uid ? pendingDisruption(cur) : undefined;
      if (!c || staleAt(c) > now.getTime()) return cur;
      const conditions = (cur.status.conditions as any[]).map((x) =>
        x?.type === 'DisruptionTarget' ? { type: 'DisruptionTarget', status: 'False', lastProbeTime: null, lastTransitionTime: now.toISOString().replace(/\.\d{3}Z$/, 'Z') } : x,
      );
      return { ...cur, status: { ...cur.status, conditions } };
    });
  } catch (e) {
    if (!is404(e)) throw e;
  }
}

const LABELS_KEY = '/@';
const POD_KEY = '/pods/';

export const disruptionController: Controller = {
  name: 'disruption',
  identity: controllerUser('disruption-controller'),
  watches: [pdbsRes, podsRes, ...SCALED],
  keys(ev) {
    const o = ev.object;
    const ns = o.metadata.namespace ?? '';
    if (ev.resource === pdbsRes) return [`${ns}/${o.metadata.name}`];
    if (ev.resource === podsRes) {
      const keys = pendingDisruption(o) ? [`${ns}${POD_KEY}${o.metadata.name}`] : [];
      if (!podMatters(ev)) return keys;
      keys.push(`${ns}${LABELS_KEY}${labelsKey(o.metadata.labels)}`);
      if (ev.oldObject) keys.push(`${ns}${LABELS_KEY}${labelsKey(ev.oldObject.metadata.labels)}`);
      return keys;
    }
    // A controller's scale is a budget's expectedPods: its pods' budgets, by the template's labels.
    if (ev.type === 'MODIFIED' && ev.oldObject && ev.oldObject.spec?.replicas === o.spec?.replicas) return [];
    return [`${ns}${LABELS_KEY}${labelsKey(o.spec?.template?.metadata?.labels)}`];
  },
  // Keys: "ns/name" a budget; "ns/@{labels}" the budgets selecting those labels; "ns/pods/name" a pod's
  // DisruptionTarget condition (names have no "@" and budget names no "/", so the three never meet).
  async reconcile(key, ctx) {
    const at = key.indexOf(LABELS_KEY);
    if (at < 0) {
      const slash = key.indexOf('/');
      if (key.startsWith(POD_KEY, slash)) return syncStalePodDisruption(ctx, key.slice(0, slash), key.slice(slash + POD_KEY.length));
      return syncBudget(ctx, key.slice(0, slash), key.slice(slash + 1));
    }
    const ns = key.slice(0, at);
    const labels = JSON.parse(key.slice(at + LABELS_KEY.length)) as Record<string, string>;
    let requeue: number | undefined;
    for (const pdb of await selectorsMatching(readerOf(ctx), pdbsRes, ns, labels)) {
      const r = await syncBudget(ctx, ns, pdb.metadata.name!);
      if (r?.requeueAfterMs !== undefined) requeue = Math.min(requeue ?? Infinity, r.requeueAfterMs);
    }
    if (requeue !== undefined) return { requeueAfterMs: requeue };
  },
  async allKeys(ctx) {
    const budgets = (await readerOf(ctx).list(pdbsRes, undefined)).map((p) => `${p.metadata.namespace}/${p.metadata.name}`);
    const marked = (await readerOf(ctx).list(podsRes, undefined)).filter(pendingDisruption).map((p) => `${p.metadata.namespace}${POD_KEY}${p.metadata.name}`);
    return [...budgets, ...marked];
  },
};
