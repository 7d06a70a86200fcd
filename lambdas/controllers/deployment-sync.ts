// One reconcile of one Deployment (kube's pkg/controller/deployment/sync.go): claiming ReplicaSets, finding
// or creating the new one (its hash name, revision annotations, hash collisions), scaling ReplicaSets with
// events (proportionally while a rollout is in progress), cleaning up old ones beyond revisionHistoryLimit,
// and writing the Deployment's revision annotation and status from the version it was read at.
// deployment.ts drives it; deployment-rolling.ts, deployment-recreate.ts and deployment-progress.ts are the
// strategies and the status.

import { findResource } from '../machinery/resources.ts';
import type { LabelSelector } from '../machinery/selectors.ts';
import { ApiError } from '../machinery/status.ts';
import type { KubeObject } from '../machinery/types.ts';
import type { ControllerContext } from './controller.ts';
import { activeRSs, byCreation, byRevision, bySizeNewer, bySizeOlder, computeHash, conditionOf, desiredReplicasAnnotation, equalIgnoreHash, findActiveOrLatest, isRecreate, isSaturated, maxRevision, maxSurge, newRSNewReplicas, POD_TEMPLATE_HASH, progressDeadline, proportion, REASON, replicasAnnotationsNeedUpdate, replicasOf, REVISION, revisionHistoryLimit, rsReplicas, setCondition, setNewReplicaSetAnnotations, setReplicasAnnotations, specReplicas, type DeploymentCondition } from './deployment-util.ts';
import { calculateStatus } from './deployment-progress.ts';
import { controllerRef, controllerRefTo, isTerminating } from './owners.ts';
import { replicaSets } from './replicaset.ts';
import { adopt, bestEffortEvent, listCaughtUp, release, wrote, type Expectations } from './replicas.ts';

export const deployments = findResource('apps', 'v1', 'deployments')!;
export const COMPONENT = 'deployment-controller';

const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
const revisionOfObj = (o: KubeObject) => Number(o.metadata.resourceVersion) || 0;

/** A write computed from a stale read: the reconcile stops and runs again from a fresh one. */
export class Stale extends Error {}

/** One reconcile of one Deployment: kube's DeploymentController methods (sync.go), with `d` the in-memory copy. */
export class DeploymentSync {
  /** Set when the revision annotation must be written (kube's SetDeploymentRevision). */
  private revisionAnnotation?: string;
  requeueMs?: number;
  /** ReplicaSets as this reconcile wrote them (by uid), so a second look at the list starts from them. */
  private readonly latest = new Map<string, KubeObject>();

  constructor(
    readonly ctx: ControllerContext,
    readonly d: KubeObject,
    private readonly expect: Expectations,
  ) {}

  get ns() {
    return this.d.metadata.namespace!;
  }

  requeue(ms: number): void {
    this.requeueMs = Math.min(this.requeueMs ?? Infinity, Math.max(0, ms));
  }

  condition(type: string, status: DeploymentCondition['status'], reason: string, message: string): DeploymentCondition {
    const now = rfc3339(this.ctx.now());
    return { type, status, lastUpdateTime: now, lastTransitionTime: now, reason, message };
  }

  event(type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    return bestEffortEvent(this.ctx, this.d, { type, reason, message, component: COMPONENT });
  }

  written = (o: KubeObject) => wrote(this.expect, this.d.metadata.uid!, o);

  /** getReplicaSetsForDeployment: the namespace's ReplicaSets this Deployment controls, after adoption and release. */
  async claim(selector: LabelSelector): Promise<KubeObject[]> {
    const uid = this.d.metadata.uid!;
    const matches = (rs: KubeObject) => selector.matches(rs.metadata.labels);
    const deleting = isTerminating(this.d);
    let list = await listCaughtUp(this.ctx, replicaSets, this.expect, uid, this.ns);
    let changed = false;
    let fresh: boolean | undefined;
    // kube's canAdopt: the Deployment, read again from the store, is still this one and not being deleted.
    const canAdopt = async () => {
      if (fresh === undefined) {
        try {
          const cur = await this.ctx.registry.get(deployments, this.ns, this.d.metadata.name!);
          fresh = cur.metadata.uid === uid && !isTerminating(cur);
        } catch {
          fresh = false;
        }
      }
      return fresh;
    };
    for (const rs of list) {
      const ref = controllerRef(rs);
      if (!ref && !deleting && !isTerminating(rs) && matches(rs) && (await canAdopt())) changed = (await adopt(this.ctx, this.d, rs, matches, this.written, replicaSets)) || changed;
      else if (ref?.uid === uid && !matches(rs) && !deleting) {
        await release(this.ctx, this.d, rs, matches, this.written, replicaSets);
        changed = true;
      }
    }
    if (changed) list = await listCaughtUp(this.ctx, replicaSets, this.expect, uid, this.ns);
    return list.filter((rs) => controllerRef(rs)?.uid === uid && matches(rs));
  }

  /** An RS update from the version it was read at (a conflict means a stale decision: Stale). */
  private async updateRS(rs: KubeObject, mutate: (cur: KubeObject) => void): Promise<KubeObject> {
    try {
      const after = await this.ctx.registry.guaranteedUpdate(replicaSets, this.ns, rs.metadata.name!, revisionOfObj(rs), {}, (cur) => {
        const c = structuredClone(cur);
        mutate(c);
        return c;
      });
      this.written(after);
      this.latest.set(after.metadata.uid!, after);
      return after;
    } catch (e) {
      if (e instanceof ApiError && (e.code === 409 || e.code === 404)) throw new Stale(e.message);
      throw e;
    }
  }

  /** FindNewReplicaSet: the oldest ReplicaSet whose template is the Deployment's. */
  findNewRS(rsList: KubeObject[]): KubeObject | undefined {
    const t = this.d.spec?.template;
    const hash = computeHash(t, this.d.status?.collisionCount);
    const sorted = [...rsList].sort(byCreation);
    // The hash-named ReplicaSet made from this very template counts too: the ReplicaSet kind's defaulting
    // of its template cannot then make the Deployment miss it (and create it again, forever).
    return sorted.find((rs) => equalIgnoreHash(rs.spec?.template, t)) ?? sorted.find((rs) => this.madeFromTemplate(rs, hash));
  }

  private madeFromTemplate(rs: KubeObject, hash: string): boolean {
    return controllerRef(rs)?.uid === this.d.metadata.uid && rs.metadata.name === `${this.d.metadata.name}-${hash}` && rs.metadata.labels?.[POD_TEMPLATE_HASH] === hash;
  }

  /** getAllReplicaSetsAndSyncRevision. */
  async allRSs(claimed: KubeObject[], create: boolean): Promise<{ newRS?: KubeObject; oldRSs: KubeObject[] }> {
    const uids = new Set(claimed.map((rs) => rs.metadata.uid));
    const rsList = [...claimed.map((rs) => this.latest.get(rs.metadata.uid!) ?? rs), ...[...this.latest.values()].filter((rs) => !uids.has(rs.metadata.uid))];
    const found = this.findNewRS(rsList);
    const oldRSs = rsList.filter((rs) => rs !== found);
    const newRS = await this.newReplicaSet(found, oldRSs, create);
    return { newRS, oldRSs };
  }

  private setRevision(revision: string | undefined): void {
    if (revision !== undefined && this.d.metadata.annotations?.[REVISION] !== revision) {
      this.d.metadata.annotations = { ...this.d.metadata.annotations, [REVISION]: revision };
      this.revisionAnnotation = revision;
    }
  }

  /** getNewReplicaSet: syncs the existing new ReplicaSet's annotations, or creates it (when `create`). */
  private async newReplicaSet(existing: KubeObject | undefined, oldRSs: KubeObject[], create: boolean): Promise<KubeObject | undefined> {
    const d = this.d;
    const newRevision = maxRevision(oldRSs) + 1;
    const minReady = d.spec?.minReadySeconds ?? 0;
    if (existing) {
      const copy = structuredClone(existing);
      const annotationsChanged = setNewReplicaSetAnnotations(d, copy, newRevision, true);
      let rs = existing;
      if (annotationsChanged || (existing.spec?.minReadySeconds ?? 0) !== minReady) {
        rs = await this.updateRS(existing, (cur) => {
          cur.metadata.annotations = copy.metadata.annotations;
          cur.spec = { ...cur.spec, minReadySeconds: minReady };
        });
      }
      this.setRevision(rs.metadata.annotations?.[REVISION]);
      if (!conditionOf(d.status, 'Progressing') && progressDeadline(d) !== undefined) {
        setCondition((d.status ??= {}), this.condition('Progressing', 'True', REASON.FoundNewRS, `Found new replica set "${rs.metadata.name}"`));
      }
      return rs;
    }
    if (!create) return undefined;

    const template = structuredClone(d.spec?.template ?? {});
    const hash = computeHash(d.spec?.template, d.status?.collisionCount);
    template.metadata = { ...template.metadata, labels: { ...template.metadata?.labels, [POD_TEMPLATE_HASH]: hash } };
    const selector = structuredClone(d.spec.selector);
    selector.matchLabels = { ...selector.matchLabels, [POD_TEMPLATE_HASH]: hash };
    const newRS: KubeObject = {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: { name: `${d.metadata.name}-${hash}`, namespace: this.ns, ownerReferences: [controllerRefTo(d)], labels: { ...template.metadata.labels } },
      spec: { replicas: 0, minReadySeconds: minReady, selector, template },
    };
    newRS.spec.replicas = newRSNewReplicas(d, [...oldRSs, newRS], newRS);
    setNewReplicaSetAnnotations(d, newRS, newRevision, false);
    let created: KubeObject;
    let alreadyExists = false;
    try {
      created = await this.ctx.create(replicaSets, this.ns, newRS);
      this.written(created);
      this.latest.set(created.metadata.uid!, created);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      if (e.reason === 'AlreadyExists') {
        alreadyExists = true;
        // The store, not the cache: it was created by a reconcile the cache may not show yet.
        const rs = await this.ctx.registry.get(replicaSets, this.ns, newRS.metadata.name!).catch(() => undefined);
        if (rs && controllerRef(rs)?.uid === d.metadata.uid && (equalIgnoreHash(d.spec?.template, rs.spec?.template) || this.madeFromTemplate(rs, hash))) {
          created = rs;
          this.latest.set(rs.metadata.uid!, rs);
        } else {
          // A hash collision with a ReplicaSet that is not this template's: the next name (kube bumps
          // status.collisionCount and retries).
          d.status = { ...d.status, collisionCount: (d.status?.collisionCount ?? 0) + 1 };
          this.requeue(0);
          return undefined;
        }
      } else if (e.status.details?.causes?.some((c) => c.reason === 'NamespaceTerminating')) {
        throw e;
      } else {
        const msg = `Failed to create new replica set "${newRS.metadata.name}": ${e.message}`;
        if (progressDeadline(d) !== undefined) setCondition((d.status ??= {}), this.condition('Progressing', 'False', REASON.FailedRSCreate, msg));
        await this.event('Warning', REASON.FailedRSCreate, msg);
        this.requeue(5000);
        return undefined;
      }
    }
    if (!alreadyExists && rsReplicas(created) > 0) {
      await this.event('Normal', 'ScalingReplicaSet', `Scaled up replica set ${created.metadata.name} from 0 to ${rsReplicas(created)}`);
    }
    this.setRevision(String(newRevision));
    if (!alreadyExists && progressDeadline(d) !== undefined) {
      setCondition((d.status ??= {}), this.condition('Progressing', 'True', REASON.NewReplicaSet, `Created new replica set "${created.metadata.name}"`));
    }
    return created;
  }

  /** scaleReplicaSetAndRecordEvent / scaleReplicaSet: returns the ReplicaSet as written. */
  async scaleRS(rs: KubeObject, newScale: number, operation?: 'up' | 'down'): Promise<{ scaled: boolean; rs: KubeObject }> {
    const d = this.d;
    const desired = replicasOf(d);
    const max = desired + maxSurge(d);
    const old = rsReplicas(rs);
    const sizeNeedsUpdate = old !== newScale;
    if (!sizeNeedsUpdate && !replicasAnnotationsNeedUpdate(rs, desired, max)) return { scaled: false, rs };
    const after = await this.updateRS(rs, (cur) => {
      cur.spec = { ...cur.spec, replicas: newScale };
      setReplicasAnnotations(cur, desired, max);
    });
    if (sizeNeedsUpdate) {
      const op = operation ?? (old < newScale ? 'up' : 'down');
      await this.event('Normal', 'ScalingReplicaSet', `Scaled ${op} replica set ${rs.metadata.name} from ${old} to ${newScale}`);
    }
    return { scaled: sizeNeedsUpdate, rs: after };
  }

  /** isScalingEvent: an active ReplicaSet was sized for a different spec.replicas. */
  async isScalingEvent(rsList: KubeObject[]): Promise<boolean> {
    const { newRS, oldRSs } = await this.allRSs(rsList, false);
    return activeRSs([...oldRSs, newRS]).some((rs) => {
      const desired = desiredReplicasAnnotation(rs);
      return desired !== undefined && desired !== replicasOf(this.d);
    });
  }

  /** sync: scaling (and cleanup when paused), then status. */
  async sync(rsList: KubeObject[]): Promise<void> {
    const r = await this.allRSs(rsList, false);
    const { newRS, oldRSs } = await this.scale(r.newRS, r.oldRSs);
    if (this.d.spec?.paused) await this.cleanup(oldRSs);
    this.d.status = calculateStatus(this, [...oldRSs, ...(newRS ? [newRS] : [])], newRS);
  }

  /** scale: the ReplicaSets as it left them. */
  private async scale(newRS0: KubeObject | undefined, oldRSs0: KubeObject[]): Promise<{ newRS?: KubeObject; oldRSs: KubeObject[] }> {
    const d = this.d;
    let newRS = newRS0;
    const oldRSs = [...oldRSs0];
    const replace = (before: KubeObject, after: KubeObject) => {
      if (before === newRS) newRS = after;
      else oldRSs.splice(oldRSs.indexOf(before), 1, after);
    };
    const result = () => ({ newRS, oldRSs });
    const target = findActiveOrLatest(newRS, oldRSs);
    if (target) {
      if (rsReplicas(target) !== replicasOf(d)) replace(target, (await this.scaleRS(target, replicasOf(d))).rs);
      return result();
    }
    if (isSaturated(d, newRS)) {
      for (const old of activeRSs(oldRSs)) replace(old, (await this.scaleRS(old, 0)).rs);
      return result();
    }
    if (isRecreate(d)) return result();
    // Proportional scaling of a rollout in progress: the replicas to add (or remove) shared in proportion to
    // each active ReplicaSet's size, the leftover to the largest.
    const active = activeRSs([...oldRSs, newRS]);
    const allowed = replicasOf(d) > 0 ? replicasOf(d) + maxSurge(d) : 0;
    const toAdd = allowed - specReplicas(active);
    let op: 'up' | 'down' | undefined;
    if (toAdd > 0) {
      active.sort(bySizeNewer);
      op = 'up';
    } else if (toAdd < 0) {
      active.sort(bySizeOlder);
      op = 'down';
    }
    let added = 0;
    const size = new Map<string, number>();
    for (const rs of active) {
      if (toAdd !== 0) {
        const p = proportion(rs, d, toAdd, added);
        size.set(rs.metadata.name!, rsReplicas(rs) + p);
        added += p;
      } else size.set(rs.metadata.name!, rsReplicas(rs));
    }
    for (let i = 0; i < active.length; i++) {
      const rs = active[i]!;
      if (i === 0 && toAdd !== 0) size.set(rs.metadata.name!, Math.max(0, size.get(rs.metadata.name!)! + toAdd - added));
      replace(rs, (await this.scaleRS(rs, size.get(rs.metadata.name!)!, op)).rs);
    }
    return result();
  }

  /** cleanupDeployment: old ReplicaSets beyond revisionHistoryLimit, lowest revisions first, if empty. */
  async cleanup(oldRSs: KubeObject[]): Promise<void> {
    const limit = revisionHistoryLimit(this.d);
    const cleanable = oldRSs.filter((rs) => !isTerminating(rs)).sort(byRevision);
    const diff = cleanable.length - limit;
    for (let i = 0; i < diff; i++) {
      const rs = cleanable[i]!;
      if ((rs.status?.replicas ?? 0) !== 0 || rsReplicas(rs) !== 0 || (rs.metadata.generation ?? 0) > (rs.status?.observedGeneration ?? 0)) continue;
      try {
        const r = await this.ctx.registry.delete(replicaSets, this.ns, rs.metadata.name!, { preconditions: { uid: rs.metadata.uid } });
        this.written(r.object);
      } catch (e) {
        if (!(e instanceof ApiError && (e.code === 404 || e.code === 409))) throw e;
      }
    }
  }

  /** Writes the revision annotation and the status, each from the version this reconcile read. */
  async persist(original: KubeObject): Promise<void> {
    const d = this.d;
    let rev = revisionOfObj(original);
    try {
      if (this.revisionAnnotation !== undefined) {
        const value = this.revisionAnnotation;
        const after = await this.ctx.registry.guaranteedUpdate(deployments, this.ns, d.metadata.name!, rev, {}, (cur) => ({
          ...cur,
          metadata: { ...cur.metadata, annotations: { ...cur.metadata.annotations, [REVISION]: value } },
        }));
        rev = revisionOfObj(after);
      }
      if (!isDeepEqualStatus(original.status, d.status)) {
        await this.ctx.registry.guaranteedUpdate(deployments, this.ns, d.metadata.name!, rev, { subresource: 'status' }, (cur) => ({ ...cur, status: d.status }));
      }
    } catch (e) {
      if (e instanceof ApiError && (e.code === 409 || e.code === 404)) throw new Stale(e.message);
      throw e;
    }
  }
}

function isDeepEqualStatus(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? {}) === JSON.stringify(b ?? {});
}

