// The Deployment controller (kube 1.32's pkg/controller/deployment: sync.go, rolling.go, recreate.go,
// progress.go): a Deployment owns ReplicaSets named `<deployment>-<pod-template-hash>`, one per pod
// template it has had; the one whose template is the Deployment's is the new ReplicaSet, the others are
// old. A reconcile claims the namespace's ReplicaSets (adopting orphans its selector matches, releasing
// those it no longer matches), then, as kube's syncDeployment:
// - deleted Deployment: status only;
// - paused, or a scaling event (an active ReplicaSet's desired-replicas annotation is not spec.replicas):
//   sync() scales the ReplicaSets, proportionally during a rollout;
// - otherwise the strategy: RollingUpdate scales the new ReplicaSet up within maxSurge and the old ones
//   down within maxUnavailable (rolling.go); Recreate scales the old ones to 0, waits for their pods to be
//   gone, then creates and scales the new one (recreate.go);
// - completed rollouts delete old ReplicaSets beyond revisionHistoryLimit; status, with the Available and
//   Progressing conditions (progressDeadlineSeconds), is written once at the end.
// kubectl rollout undo needs nothing here: kubectl 1.32 copies the revision's template into the
// Deployment itself (a JSON patch), and the controller sees a template change like any other.
//
// Idempotence under duplicated, late and reordered delivery: a new ReplicaSet's name is a hash of the
// template (and status.collisionCount), so two reconciles that both decide to create it make one (the
// second gets AlreadyExists and finds it); every ReplicaSet scale and the Deployment's status are written
// with the resourceVersion they were computed from (a precondition), so a decision made on a stale cache
// fails with a conflict and is made again from a fresh read instead of being applied. After its own
// ReplicaSet writes a reconcile waits for the cache to show them (expectations by revision, replicas.ts).
//
// Keys: "namespace/name" of a Deployment. A ReplicaSet maps to the Deployment that controls it (and the
// one that did, when its controller changed); an orphan ReplicaSet to "namespace/*" (every Deployment of
// the namespace may adopt it). A deleted pod maps to "namespace/replicaset:<name>" (resolved through the
// ReplicaSet's controllerRef when reconciled): Recreate waits for the old pods to be gone, as kube's
// deletePod handler does. Pod readiness reaches the Deployment through its ReplicaSet's status.

import { findResource } from '../machinery/resources.ts';
import type { LabelSelector } from '../machinery/selectors.ts';
import { ApiError } from '../machinery/status.ts';
import type { KubeObject } from '../machinery/types.ts';
import { readerOf, type Controller, type ControllerContext, type ReconcileResult } from './controller.ts';
import {
  activeRSs,
  actualReplicas,
  availableReplicas,
  byCreation,
  byRevision,
  bySizeNewer,
  bySizeOlder,
  computeHash,
  conditionOf,
  deploymentComplete,
  deploymentProgressing,
  deploymentTimedOut,
  desiredReplicasAnnotation,
  equalIgnoreHash,
  findActiveOrLatest,
  isRecreate,
  isSaturated,
  maxRevision,
  maxSurge,
  maxUnavailable,
  newRSNewReplicas,
  POD_TEMPLATE_HASH,
  progressDeadline,
  proportion,
  readyReplicas,
  REASON,
  removeCondition,
  replicasAnnotationsNeedUpdate,
  replicasOf,
  REVISION,
  revisionHistoryLimit,
  rsReplicas,
  safeAvailable,
  setCondition,
  setNewReplicaSetAnnotations,
  setReplicasAnnotations,
  specReplicas,
  type DeploymentCondition,
} from './deployment-util.ts';
import { isFinished } from './history.ts';
import { controllerRef, controllerRefTo, isTerminating } from './owners.ts';
import { podSelectorOf, replicaSets } from './replicaset.ts';
import { adopt, bestEffortEvent, listCaughtUp, release, wrote, type Expectations } from './replicas.ts';

export const deployments = findResource('apps', 'v1', 'deployments')!;
const pods = findResource('', 'v1', 'pods')!;
const COMPONENT = 'deployment-controller';
const RS_KEY = 'replicaset:';

const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
const revisionOfObj = (o: KubeObject) => Number(o.metadata.resourceVersion) || 0;

/** A write computed from a stale read: the reconcile stops and runs again from a fresh one. */
class Stale extends Error {}

/** One reconcile of one Deployment: kube's DeploymentController methods, with `d` the in-memory copy. */
class DeploymentSync {
  /** Set when the revision annotation must be written (kube's SetDeploymentRevision). */
  private revisionAnnotation?: string;
  requeueMs?: number;

  constructor(
    private readonly ctx: ControllerContext,
    readonly d: KubeObject,
    private readonly expect: Expectations,
  ) {}

  private get ns() {
    return this.d.metadata.namespace!;
  }

  requeue(ms: number): void {
    this.requeueMs = Math.min(this.requeueMs ?? Infinity, Math.max(0, ms));
  }

  private condition(type: string, status: DeploymentCondition['status'], reason: string, message: string): DeploymentCondition {
    const now = rfc3339(this.ctx.now());
    return { type, status, lastUpdateTime: now, lastTransitionTime: now, reason, message };
  }

  private event(type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    return bestEffortEvent(this.ctx, this.d, { type, reason, message, component: COMPONENT });
  }

  private written = (o: KubeObject) => wrote(this.expect, this.d.metadata.uid!, o);

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
  async allRSs(rsList: KubeObject[], create: boolean): Promise<{ newRS?: KubeObject; oldRSs: KubeObject[] }> {
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
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      if (e.reason === 'AlreadyExists') {
        alreadyExists = true;
        // The store, not the cache: it was created by a reconcile the cache may not show yet.
        const rs = await this.ctx.registry.get(replicaSets, this.ns, newRS.metadata.name!).catch(() => undefined);
        if (rs && controllerRef(rs)?.uid === d.metadata.uid && (equalIgnoreHash(d.spec?.template, rs.spec?.template) || this.madeFromTemplate(rs, hash))) {
          created = rs;
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
    this.d.status = this.calculateStatus([...oldRSs, ...(newRS ? [newRS] : [])], newRS);
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

  /** rolloutRolling (rolling.go). */
  async rolloutRolling(rsList: KubeObject[]): Promise<void> {
    const r = await this.allRSs(rsList, true);
    let newRS = r.newRS;
    let oldRSs = r.oldRSs;
    if (!newRS) return this.syncRolloutStatus(oldRSs, undefined);
    // Scale up, if we can.
    const up = await this.reconcileNewRS([...oldRSs, newRS], newRS);
    newRS = up.rs;
    if (up.scaled) return this.syncRolloutStatus([...oldRSs, newRS], newRS);
    // Scale down, if we can.
    const down = await this.reconcileOldRSs(oldRSs, newRS);
    oldRSs = down.oldRSs;
    if (down.scaled) return this.syncRolloutStatus([...oldRSs, newRS], newRS);
    if (deploymentComplete(this.d, this.d.status ?? {})) await this.cleanup(oldRSs);
    return this.syncRolloutStatus([...oldRSs, newRS], newRS);
  }

  /** reconcileNewReplicaSet. */
  private async reconcileNewRS(allRSs: KubeObject[], newRS: KubeObject): Promise<{ scaled: boolean; rs: KubeObject }> {
    const want = replicasOf(this.d);
    if (rsReplicas(newRS) === want) return { scaled: false, rs: newRS };
    if (rsReplicas(newRS) > want) return this.scaleRS(newRS, want);
    return this.scaleRS(newRS, newRSNewReplicas(this.d, allRSs, newRS));
  }

  /** reconcileOldReplicaSets: unhealthy old replicas first, then old ones within maxUnavailable. */
  private async reconcileOldRSs(allOld: KubeObject[], newRS: KubeObject): Promise<{ scaled: boolean; oldRSs: KubeObject[] }> {
    const d = this.d;
    const oldRSs = [...allOld];
    const active = activeRSs(oldRSs);
    if (specReplicas(active) === 0) return { scaled: false, oldRSs };
    const allPods = specReplicas([...oldRSs, newRS]);
    const minAvailable = replicasOf(d) - maxUnavailable(d);
    const newUnavailable = rsReplicas(newRS) - safeAvailable([newRS]);
    const maxScaledDown = allPods - minAvailable - newUnavailable;
    if (maxScaledDown <= 0) return { scaled: false, oldRSs };
    let total = 0;
    // cleanupUnhealthyReplicas: old replicas that are not available go first, oldest ReplicaSet first.
    for (const rs of [...active].sort(byCreation)) {
      if (total >= maxScaledDown) break;
      const unhealthy = rsReplicas(rs) - safeAvailable([rs]);
      if (rsReplicas(rs) === 0 || unhealthy <= 0) continue;
      const n = Math.min(maxScaledDown - total, unhealthy);
      const after = (await this.scaleRS(rs, rsReplicas(rs) - n)).rs;
      oldRSs.splice(oldRSs.indexOf(rs), 1, after);
      total += n;
    }
    // scaleDownOldReplicaSetsForRollingUpdate: as many as keep minAvailable available.
    const available = safeAvailable([...oldRSs, newRS]);
    if (available > minAvailable) {
      const toScale = available - minAvailable;
      let done = 0;
      for (const rs of activeRSs(oldRSs).sort(byCreation)) {
        if (done >= toScale) break;
        const n = Math.min(rsReplicas(rs), toScale - done);
        const after = (await this.scaleRS(rs, rsReplicas(rs) - n)).rs;
        oldRSs.splice(oldRSs.indexOf(rs), 1, after);
        done += n;
      }
      total += done;
    }
    return { scaled: total > 0, oldRSs };
  }

  /** rolloutRecreate (recreate.go). */
  async rolloutRecreate(rsList: KubeObject[]): Promise<void> {
    let { newRS, oldRSs } = await this.allRSs(rsList, false);
    // Scale the old ReplicaSets down first.
    let scaledDown = false;
    for (const rs of activeRSs(oldRSs)) {
      const after = (await this.scaleRS(rs, 0)).rs;
      oldRSs = oldRSs.map((o) => (o === rs ? after : o));
      scaledDown = true;
    }
    const all = () => [...oldRSs, ...(newRS ? [newRS] : [])];
    if (scaledDown) return this.syncRolloutStatus(all(), newRS);
    // Then wait until none of their pods runs.
    if (await this.oldPodsRunning(newRS, oldRSs)) return this.syncRolloutStatus(all(), newRS);
    if (!newRS) {
      ({ newRS, oldRSs } = await this.allRSs(rsList, true));
      if (!newRS) return this.syncRolloutStatus(oldRSs, undefined);
    }
    newRS = (await this.scaleRS(newRS, replicasOf(this.d))).rs;
    if (deploymentComplete(this.d, this.d.status ?? {})) await this.cleanup(oldRSs);
    return this.syncRolloutStatus(all(), newRS);
  }

  /** oldPodsRunning: old ReplicaSets report pods, or a pod of theirs is not finished. */
  private async oldPodsRunning(newRS: KubeObject | undefined, oldRSs: KubeObject[]): Promise<boolean> {
    if (actualReplicas(oldRSs) > 0) return true;
    const reader = readerOf(this.ctx);
    for (const rs of oldRSs) {
      if (rs === newRS) continue;
      const owned = (await reader.byIndex(pods, 'controller', rs.metadata.uid!)).filter((p) => p.metadata.namespace === this.ns);
      if (owned.some((p) => !isFinished(p))) return true;
    }
    return false;
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

  /** calculateStatus. */
  calculateStatus(allRSs: KubeObject[], newRS: KubeObject | undefined): any {
    const d = this.d;
    const available = availableReplicas(allRSs);
    const status: any = {
      observedGeneration: d.metadata.generation,
      replicas: actualReplicas(allRSs),
      updatedReplicas: newRS ? actualReplicas([newRS]) : 0,
      readyReplicas: readyReplicas(allRSs),
      availableReplicas: available,
      unavailableReplicas: Math.max(0, specReplicas(allRSs) - available),
    };
    if (d.status?.collisionCount !== undefined) status.collisionCount = d.status.collisionCount;
    if (d.status?.conditions?.length) status.conditions = d.status.conditions.map((c: any) => ({ ...c }));
    if (available >= replicasOf(d) - maxUnavailable(d)) {
      setCondition(status, this.condition('Available', 'True', REASON.MinimumReplicasAvailable, 'Deployment has minimum availability.'));
    } else {
      setCondition(status, this.condition('Available', 'False', REASON.MinimumReplicasUnavailable, 'Deployment does not have minimum availability.'));
    }
    return status;
  }

  /** syncRolloutStatus (progress.go): status with the Progressing condition; requeues to check the deadline. */
  syncRolloutStatus(allRSs: KubeObject[], newRS: KubeObject | undefined): void {
    const d = this.d;
    const s = this.calculateStatus(allRSs, newRS);
    const deadline = progressDeadline(d);
    if (deadline === undefined) removeCondition(s, 'Progressing');
    const current = conditionOf(d.status, 'Progressing');
    const complete = s.replicas === s.updatedReplicas && current?.reason === REASON.NewRSAvailable;
    if (deadline !== undefined && !complete) {
      const name = newRS ? `ReplicaSet "${newRS.metadata.name}"` : `Deployment "${d.metadata.name}"`;
      if (deploymentComplete(d, s)) {
        setCondition(s, this.condition('Progressing', 'True', REASON.NewRSAvailable, `${name} has successfully progressed.`));
      } else if (deploymentProgressing(d, s)) {
        const c = this.condition('Progressing', 'True', REASON.RSUpdated, `${name} is progressing.`);
        // Progress refreshes lastUpdateTime even with the same reason (kube handles this case apart).
        if (current) {
          if (current.status === 'True') c.lastTransitionTime = current.lastTransitionTime;
          removeCondition(s, 'Progressing');
        }
        setCondition(s, c);
      } else if (deploymentTimedOut(d, s, this.ctx.now().getTime())) {
        setCondition(s, this.condition('Progressing', 'False', REASON.TimedOut, `${name} has timed out progressing.`));
      }
    }
    // The ReplicaSets' ReplicaFailure condition (kube moves the new ReplicaSet's, else an old one's).
    const failure = [newRS, ...allRSs].map((rs) => conditionOf(rs?.status, 'ReplicaFailure')).find((c) => c?.status === 'True');
    if (failure) setCondition(s, { type: 'ReplicaFailure', status: failure.status, reason: failure.reason, message: failure.message, lastUpdateTime: failure.lastTransitionTime, lastTransitionTime: failure.lastTransitionTime });
    else removeCondition(s, 'ReplicaFailure');
    d.status = s;
    // requeueStuckDeployment: look again when the deadline passes, unless complete or already timed out.
    const cond = conditionOf(s, 'Progressing');
    if (deadline !== undefined && cond && !deploymentComplete(d, s) && cond.reason !== REASON.TimedOut) {
      const after = (Date.parse(cond.lastUpdateTime ?? '') || 0) + deadline * 1000 - this.ctx.now().getTime();
      this.requeue(after < 1000 ? 1000 : after + 1000);
    }
  }

  /** checkPausedConditions: Progressing Unknown DeploymentPaused / DeploymentResumed. */
  checkPausedConditions(): void {
    const d = this.d;
    if (progressDeadline(d) === undefined) return;
    const cond = conditionOf(d.status, 'Progressing');
    if (cond?.reason === REASON.TimedOut) return;
    const pausedCond = cond?.reason === REASON.Paused;
    if (d.spec?.paused && !pausedCond) setCondition((d.status ??= {}), this.condition('Progressing', 'Unknown', REASON.Paused, 'Deployment is paused'));
    else if (!d.spec?.paused && pausedCond) setCondition((d.status ??= {}), this.condition('Progressing', 'Unknown', REASON.Resumed, 'Deployment is resumed'));
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

async function syncDeployment(ns: string, name: string, ctx: ControllerContext, expect: Expectations): Promise<ReconcileResult | void> {
  const original = await readerOf(ctx).get(deployments, ns, name);
  if (!original) return;
  const d = structuredClone(original);
  const s = new DeploymentSync(ctx, d, expect);
  try {
    const selector = podSelectorOf(d);
    if (!selector) {
      // An empty selector would select every ReplicaSet and pod (apps/v1 validation refuses it).
      const sel = d.spec?.selector;
      if (sel && !Object.keys(sel.matchLabels ?? {}).length && !(sel.matchExpressions ?? []).length) {
        await bestEffortEvent(ctx, d, { type: 'Warning', reason: 'SelectingAll', message: 'This deployment is selecting all pods. A non-empty selector is required.', component: COMPONENT });
        d.status = { ...d.status, observedGeneration: d.metadata.generation };
        await s.persist(original);
      }
      return;
    }
    const rsList = await s.claim(selector);
    if (isTerminating(d)) {
      // syncStatusOnly.
      const { newRS, oldRSs } = await s.allRSs(rsList, false);
      d.status = s.calculateStatus([...oldRSs, ...(newRS ? [newRS] : [])], newRS);
    } else {
      s.checkPausedConditions();
      if (d.spec?.paused || (await s.isScalingEvent(rsList))) await s.sync(rsList);
      else if (isRecreate(d)) await s.rolloutRecreate(rsList);
      else await s.rolloutRolling(rsList);
    }
    await s.persist(original);
  } catch (e) {
    // A decision made on a stale read: again, from a read that shows what changed.
    if (e instanceof Stale) return { requeueAfterMs: 200 };
    throw e;
  }
  return s.requeueMs !== undefined ? { requeueAfterMs: s.requeueMs } : undefined;
}

export function createDeploymentController(): Controller {
  const expect: Expectations = new Map();
  return {
    name: COMPONENT,
    watches: [deployments, replicaSets, pods],
    keys(ev) {
      const m = ev.object.metadata;
      const r = ev.resource;
      if (r.group === 'apps' && r.resource === 'deployments') return [`${m.namespace}/${m.name}`];
      if (r.group === 'apps' && r.resource === 'replicasets') {
        const keys = new Set<string>();
        const owner = (o: KubeObject | undefined) => {
          const ref = o && controllerRef(o);
          return ref?.kind === 'Deployment' && ref.apiVersion === 'apps/v1' ? ref.name : undefined;
        };
        const now = owner(ev.object);
        if (now) keys.add(`${m.namespace}/${now}`);
        const before = owner(ev.oldObject);
        if (before) keys.add(`${m.namespace}/${before}`);
        // An orphan some Deployment may adopt.
        if (!controllerRef(ev.object) && ev.type !== 'DELETED' && !isTerminating(ev.object)) keys.add(`${m.namespace}/*`);
        return [...keys];
      }
      if (r.resource === 'pods' && ev.type === 'DELETED') {
        const ref = controllerRef(ev.object);
        return ref?.kind === 'ReplicaSet' && ref.apiVersion === 'apps/v1' ? [`${m.namespace}/${RS_KEY}${ref.name}`] : [];
      }
      return [];
    },
    async allKeys({ registry }) {
      return (await registry.list(deployments, undefined)).items.map((o) => `${o.metadata.namespace}/${o.metadata.name}`);
    },
    async reconcile(key, ctx) {
      const i = key.indexOf('/');
      const ns = key.slice(0, i);
      const name = key.slice(i + 1);
      let names: string[];
      if (name === '*') names = (await readerOf(ctx).list(deployments, ns)).map((o) => o.metadata.name!);
      else if (name.startsWith(RS_KEY)) {
        const rs = await readerOf(ctx).get(replicaSets, ns, name.slice(RS_KEY.length));
        const ref = rs && controllerRef(rs);
        names = ref?.kind === 'Deployment' ? [ref.name] : [];
      } else names = [name];
      let requeue: number | undefined;
      for (const n of names) {
        const r = await syncDeployment(ns, n, ctx, expect);
        if (r?.requeueAfterMs !== undefined) requeue = Math.min(requeue ?? Infinity, r.requeueAfterMs);
      }
      return requeue !== undefined ? { requeueAfterMs: requeue } : undefined;
    },
  };
}

export const deploymentController: Controller = createDeploymentController();
