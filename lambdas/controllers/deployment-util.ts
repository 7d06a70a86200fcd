// Pure helpers of the Deployment controller (kube 1.32's pkg/controller/deployment/util/deployment_util.go
// and the parts of pkg/controller/controller_utils.go it uses): the pod-template hash, revision and replica
// annotations, maxSurge/maxUnavailable fenceposts, ReplicaSet orderings and counts, conditions. No I/O:
// deployment.ts reads and writes; these decide.

import { isDeepStrictEqual } from 'node:util';
import type { KubeObject } from '../machinery/types.ts';
import { scaledValue } from './history.ts';

export const POD_TEMPLATE_HASH = 'pod-template-hash';
export const REVISION = 'deployment.kubernetes.io/revision';
export const REVISION_HISTORY = 'deployment.kubernetes.io/revision-history';
export const DESIRED_REPLICAS = 'deployment.kubernetes.io/desired-replicas';
export const MAX_REPLICAS = 'deployment.kubernetes.io/max-replicas';
/** kube's MaxRevHistoryLengthInChars. */
const MAX_REV_HISTORY_CHARS = 2000;
/** Annotations a Deployment does not pass on to its ReplicaSets (annotationsToSkip; kubectl's rollback skips the same). */
const ANNOTATIONS_TO_SKIP = new Set([
  'kubectl.kubernetes.io/last-applied-configuration',
  REVISION,
  REVISION_HISTORY,
  DESIRED_REPLICAS,
  MAX_REPLICAS,
  'deprecated.deployment.rollback.to',
]);

// Condition reasons (deployment_util.go).
export const REASON = {
  FailedRSCreate: 'ReplicaSetCreateError',
  NewReplicaSet: 'NewReplicaSetCreated',
  FoundNewRS: 'FoundNewReplicaSet',
  NewRSAvailable: 'NewReplicaSetAvailable',
  RSUpdated: 'ReplicaSetUpdated',
  TimedOut: 'ProgressDeadlineExceeded',
  Paused: 'DeploymentPaused',
  Resumed: 'DeploymentResumed',
  MinimumReplicasAvailable: 'MinimumReplicasAvailable',
  MinimumReplicasUnavailable: 'MinimumReplicasUnavailable',
} as const;

const ALPHANUMS = 'bcdfghjklmnpqrstvwxz2456789';

/** Go's hash/fnv New32a. */
function fnv1a32(bytes: Uint8Array, h = 0x811c9dc5): number {
  for (const b of bytes) h = Math.imul((h ^ b) >>> 0, 0x01000193) >>> 0;
  return h;
}

/** JSON with object keys sorted: one template, one hash, whatever order a patch left its keys in. */
function canonicalJSON(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJSON).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .filter((k) => (v as any)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJSON((v as any)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

/**
 * controller.ComputeHash: FNV-1a over the pod template, then collisionCount as 8 little-endian bytes when
 * set, the decimal sum through rand.SafeEncodeString. Kube hashes the Go struct as go-spew prints it; Skiff
 * hashes its canonical JSON, normalized as normalizeTemplate says (the same template gives the same hash on every instance and every release,
 * which is what the name is for), so the strings differ from kube's for the same template.
 */
export function computeHash(template: unknown, collisionCount?: number): string {
  let h = fnv1a32(Buffer.from(canonicalJSON(normalizeTemplate(template) ?? {})));
  if (collisionCount !== undefined && collisionCount !== null) {
    const b = Buffer.alloc(8);
    b.writeUInt32LE(collisionCount >>> 0, 0);
    h = fnv1a32(b, h);
  }
  return [...String(h)].map((c) => ALPHANUMS[c.charCodeAt(0) % ALPHANUMS.length]).join('');
}

/**
 * A template as Go's typed objects see it: null, {} and [] are the zero value, the same as absent (kube's
 * Semantic.DeepEqual treats empty and nil slices and maps as equal). kubectl rollout undo sends back the
 * ReplicaSet's template as Go marshals it (`metadata: {creationTimestamp: null}`, `resources: {}`), which
 * must still be that ReplicaSet's template, with the same hash.
 */
export function normalizeTemplate(v: unknown): unknown {
  if (Array.isArray(v)) {
    const a = v.map(normalizeTemplate);
    return a.length ? a : undefined;
  }
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const n = normalizeTemplate(x);
      if (n !== undefined) o[k] = n;
    }
    return Object.keys(o).length ? o : undefined;
  }
  return v === null ? undefined : v;
}

/** The template without the pod-template-hash label, normalized. */
function withoutHash(t: any): any {
  const c = structuredClone(t ?? {});
  if (c.metadata?.labels) delete c.metadata.labels[POD_TEMPLATE_HASH];
  return normalizeTemplate(c) ?? {};
}

/** EqualIgnoreHash: two pod templates equal but for the pod-template-hash label. */
export const equalIgnoreHash = (a: unknown, b: unknown) => isDeepStrictEqual(withoutHash(a), withoutHash(b));

// Spec fields with the defaults kube's SetDefaults_Deployment gives (apps/v1), for objects stored before
// the kind's defaulting (or written around it).
export const replicasOf = (o: KubeObject): number => (typeof o.spec?.replicas === 'number' ? o.spec.replicas : 1);
export const rsReplicas = (rs: KubeObject): number => (typeof rs.spec?.replicas === 'number' ? rs.spec.replicas : 1);
export const isRecreate = (d: KubeObject) => d.spec?.strategy?.type === 'Recreate';
export const revisionHistoryLimit = (d: KubeObject): number => (typeof d.spec?.revisionHistoryLimit === 'number' ? d.spec.revisionHistoryLimit : 10);
/** progressDeadlineSeconds, undefined when there is none (MaxInt32 means none, as kube). */
export function progressDeadline(d: KubeObject): number | undefined {
  const v = d.spec?.progressDeadlineSeconds;
  if (v === 2147483647) return undefined;
  return typeof v === 'number' ? v : 600;
}

/** ResolveFenceposts: maxSurge rounded up, maxUnavailable down, never both 0. */
export function fenceposts(d: KubeObject): { surge: number; unavailable: number } {
  const ru = d.spec?.strategy?.rollingUpdate ?? {};
  const desired = replicasOf(d);
  const surge = scaledValue(ru.maxSurge ?? '25%', desired, true, 0);
  let unavailable = scaledValue(ru.maxUnavailable ?? '25%', desired, false, 0);
  if (surge === 0 && unavailable === 0) unavailable = 1;
  return { surge, unavailable };
}

export const maxSurge = (d: KubeObject) => (isRecreate(d) ? 0 : fenceposts(d).surge);
export function maxUnavailable(d: KubeObject): number {
  if (isRecreate(d) || replicasOf(d) === 0) return 0;
  return Math.min(fenceposts(d).unavailable, replicasOf(d));
}

const annotation = (o: KubeObject, k: string) => o.metadata.annotations?.[k];
const intAnnotation = (o: KubeObject, k: string): number | undefined => {
  const v = annotation(o, k);
  return v !== undefined && /^-?\d+$/.test(v) ? Number(v) : undefined;
};
export const revisionOf = (rs: KubeObject) => intAnnotation(rs, REVISION) ?? 0;
export const desiredReplicasAnnotation = (rs: KubeObject) => intAnnotation(rs, DESIRED_REPLICAS);
export const maxRevision = (rss: KubeObject[]) => rss.reduce((m, rs) => Math.max(m, revisionOf(rs)), 0);

/** SetReplicasAnnotations: desired-replicas and max-replicas; true when they changed. */
export function setReplicasAnnotations(rs: KubeObject, desired: number, max: number): boolean {
  const a = (rs.metadata.annotations ??= {});
  if (a[DESIRED_REPLICAS] === String(desired) && a[MAX_REPLICAS] === String(max)) return false;
  a[DESIRED_REPLICAS] = String(desired);
  a[MAX_REPLICAS] = String(max);
  return true;
}

export const replicasAnnotationsNeedUpdate = (rs: KubeObject, desired: number, max: number) =>
  annotation(rs, DESIRED_REPLICAS) !== String(desired) || annotation(rs, MAX_REPLICAS) !== String(max);

/**
 * SetNewReplicaSetAnnotations: the Deployment's annotations (but the skipped ones), the new revision, the
 * revisions it had before (a rollback to it), and for a new ReplicaSet the replica annotations. True when
 * anything changed.
 */
export function setNewReplicaSetAnnotations(d: KubeObject, rs: KubeObject, newRevision: number, exists: boolean): boolean {
  const a = (rs.metadata.annotations ??= {});
  let changed = false;
  for (const [k, v] of Object.entries(d.metadata.annotations ?? {})) {
    if (ANNOTATIONS_TO_SKIP.has(k) || a[k] === v) continue;
    a[k] = v;
    changed = true;
  }
  const oldRevision = a[REVISION];
  const oldInt = oldRevision === undefined || oldRevision === '' ? 0 : /^\d+$/.test(oldRevision) ? Number(oldRevision) : undefined;
  if (oldInt === undefined) return changed; // unparsable: leave it, as kube does
  if (oldInt < newRevision) {
    a[REVISION] = String(newRevision);
    changed = true;
    if (oldRevision) {
      const history = a[REVISION_HISTORY] ?? '';
      let olds = history.split(',');
      if (!olds[0]) a[REVISION_HISTORY] = oldRevision;
      else {
        let total = history.length + oldRevision.length + 1;
        let start = 0;
        while (total > MAX_REV_HISTORY_CHARS && start < olds.length) total -= olds[start++]!.length + 1;
        if (total <= MAX_REV_HISTORY_CHARS) {
          olds = [...olds.slice(start), oldRevision];
          a[REVISION_HISTORY] = olds.join(',');
        }
      }
    }
  }
  if (!exists && setReplicasAnnotations(rs, replicasOf(d), replicasOf(d) + maxSurge(d))) changed = true;
  return changed;
}

const created = (o: KubeObject) => o.metadata.creationTimestamp ?? '';
/** ReplicaSetsByCreationTimestamp: oldest first, then by name. */
export const byCreation = (a: KubeObject, b: KubeObject) => created(a).localeCompare(created(b)) || a.metadata.name!.localeCompare(b.metadata.name!);
/** ReplicaSetsByRevision: lowest revision first, then oldest. */
export const byRevision = (a: KubeObject, b: KubeObject) => revisionOf(a) - revisionOf(b) || byCreation(a, b);
/** ReplicaSetsBySizeNewer (scaling up: newer first among equals) and BySizeOlder (down: older first). */
export const bySizeNewer = (a: KubeObject, b: KubeObject) => rsReplicas(b) - rsReplicas(a) || byCreation(b, a);
export const bySizeOlder = (a: KubeObject, b: KubeObject) => rsReplicas(b) - rsReplicas(a) || byCreation(a, b);

export const activeRSs = (rss: (KubeObject | undefined)[]) => rss.filter((rs): rs is KubeObject => !!rs && rsReplicas(rs) > 0);
const sum = (rss: (KubeObject | undefined)[], f: (rs: KubeObject) => number) => rss.reduce((n, rs) => n + (rs ? f(rs) : 0), 0);
/** Sums of spec.replicas, status.replicas, readyReplicas, availableReplicas. */
export const specReplicas = (rss: (KubeObject | undefined)[]) => sum(rss, rsReplicas);
export const actualReplicas = (rss: (KubeObject | undefined)[]) => sum(rss, (rs) => rs.status?.replicas ?? 0);
export const readyReplicas = (rss: (KubeObject | undefined)[]) => sum(rss, (rs) => rs.status?.readyReplicas ?? 0);
export const availableReplicas = (rss: (KubeObject | undefined)[]) => sum(rss, (rs) => rs.status?.availableReplicas ?? 0);
/**
 * Available replicas for scaling decisions: a ReplicaSet's status counted at most up to its spec.replicas.
 * The ReplicaSet controller's status lags a scale-down by one of its reconciles, and kube counts it as it
 * stands; counting the pods it is about to delete would let a second scale-down before that status
 * arrives take the Deployment below minAvailable (with maxUnavailable 0: below spec.replicas).
 */
export const safeAvailable = (rss: (KubeObject | undefined)[]) => sum(rss, (rs) => Math.min(rs.status?.availableReplicas ?? 0, rsReplicas(rs)));

/** IsSaturated: the new ReplicaSet runs the Deployment's replicas, all available. */
export function isSaturated(d: KubeObject, rs: KubeObject | undefined): boolean {
  if (!rs) return false;
  const n = replicasOf(d);
  return desiredReplicasAnnotation(rs) === n && rsReplicas(rs) === n && (rs.status?.availableReplicas ?? 0) === n;
}

/** FindActiveOrLatest: the one active ReplicaSet, or the newest when none is active, or none (several). */
export function findActiveOrLatest(newRS: KubeObject | undefined, oldRSs: KubeObject[]): KubeObject | undefined {
  if (!newRS && !oldRSs.length) return undefined;
  const olds = [...oldRSs].sort(byCreation).reverse();
  const active = activeRSs([...olds, newRS]);
  if (active.length === 0) return newRS ?? olds[0];
  return active.length === 1 ? active[0] : undefined;
}

/** NewRSNewReplicas: how far the new ReplicaSet may scale up now. */
export function newRSNewReplicas(d: KubeObject, allRSs: KubeObject[], newRS: KubeObject): number {
  if (isRecreate(d)) return replicasOf(d);
  const maxTotal = replicasOf(d) + fenceposts(d).surge;
  const current = specReplicas(allRSs);
  if (current >= maxTotal) return rsReplicas(newRS);
  return rsReplicas(newRS) + Math.min(maxTotal - current, replicasOf(d) - rsReplicas(newRS));
}

/** GetReplicaSetProportion: this ReplicaSet's share of a proportional scale (getReplicaSetFraction within the bounds). */
export function proportion(rs: KubeObject, d: KubeObject, toAdd: number, added: number): number {
  if (rsReplicas(rs) === 0 || toAdd === 0 || toAdd === added) return 0;
  let fraction: number;
  if (replicasOf(d) === 0) fraction = -rsReplicas(rs);
  else {
    const dMax = replicasOf(d) + maxSurge(d);
    let before = intAnnotation(rs, MAX_REPLICAS) ?? 0;
    if (!before) before = d.status?.replicas ?? 0;
    // Go's math.Round: halves away from zero.
    const x = (rsReplicas(rs) * dMax) / (before || 1);
    fraction = Math.sign(x) * Math.round(Math.abs(x)) - rsReplicas(rs);
  }
  const allowed = toAdd - added;
  return toAdd > 0 ? Math.min(fraction, allowed) : Math.max(fraction, allowed);
}

export interface DeploymentCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastUpdateTime?: string;
  lastTransitionTime?: string;
}

export const conditionOf = (status: any, type: string): DeploymentCondition | undefined => (status?.conditions ?? []).find((c: any) => c.type === type);

/** SetDeploymentCondition: a condition with the same status and reason is left as it is (times included). */
export function setCondition(status: any, c: DeploymentCondition): void {
  const cur = conditionOf(status, c.type);
  if (cur && cur.status === c.status && cur.reason === c.reason) return;
  if (cur && cur.status === c.status) c.lastTransitionTime = cur.lastTransitionTime;
  status.conditions = [...(status.conditions ?? []).filter((x: any) => x.type !== c.type), c];
}

export function removeCondition(status: any, type: string): void {
  if (!status.conditions) return;
  status.conditions = status.conditions.filter((c: any) => c.type !== type);
  if (!status.conditions.length) delete status.conditions;
}

/** DeploymentComplete: every replica updated and available, the latest generation observed. */
export function deploymentComplete(d: KubeObject, s: any): boolean {
  const n = replicasOf(d);
  return (s.updatedReplicas ?? 0) === n && (s.replicas ?? 0) === n && (s.availableReplicas ?? 0) === n && (s.observedGeneration ?? 0) >= (d.metadata.generation ?? 0);
}

/** DeploymentProgressing: more updated, fewer old, more ready or more available replicas than before. */
export function deploymentProgressing(d: KubeObject, s: any): boolean {
  const o = d.status ?? {};
  const oldOld = (o.replicas ?? 0) - (o.updatedReplicas ?? 0);
  const newOld = (s.replicas ?? 0) - (s.updatedReplicas ?? 0);
  return (
    (s.updatedReplicas ?? 0) > (o.updatedReplicas ?? 0) ||
    newOld < oldOld ||
    (s.readyReplicas ?? 0) > (o.readyReplicas ?? 0) ||
    (s.availableReplicas ?? 0) > (o.availableReplicas ?? 0)
  );
}

/** DeploymentTimedOut: the Progressing condition was last updated longer than the deadline ago. */
export function deploymentTimedOut(d: KubeObject, s: any, now: number): boolean {
  const deadline = progressDeadline(d);
  if (deadline === undefined) return false;
  const c = conditionOf(s, 'Progressing');
  if (!c) return false;
  if (c.reason === REASON.NewRSAvailable) return false;
  if (c.reason === REASON.TimedOut) return true;
  const from = Date.parse(c.lastUpdateTime ?? '') || 0;
  return from + deadline * 1000 < now;
}
