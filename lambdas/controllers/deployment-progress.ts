// The Deployment's status (kube's calculateStatus in sync.go and pkg/controller/deployment/progress.go):
// replica counts summed over its ReplicaSets, the Available condition (minimum availability: spec.replicas
// - maxUnavailable), the Progressing condition (NewReplicaSetAvailable once complete, ReplicaSetUpdated
// while it progresses, ProgressDeadlineExceeded once progressDeadlineSeconds pass without progress,
// DeploymentPaused/DeploymentResumed), the ReplicaSets' ReplicaFailure, and the requeue that checks the
// deadline.

import type { KubeObject } from '../machinery/types.ts';
import { actualReplicas, availableReplicas, conditionOf, deploymentComplete, deploymentProgressing, deploymentTimedOut, maxUnavailable, progressDeadline, readyReplicas, REASON, removeCondition, replicasOf, setCondition, specReplicas } from './deployment-util.ts';
import type { DeploymentSync } from './deployment-sync.ts';

/** calculateStatus. */
export function calculateStatus(ds: DeploymentSync, allRSs: KubeObject[], newRS: KubeObject | undefined): any {
  const d = ds.d;
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
    setCondition(status, ds.condition('Available', 'True', REASON.MinimumReplicasAvailable, 'Deployment has minimum availability.'));
  } else {
    setCondition(status, ds.condition('Available', 'False', REASON.MinimumReplicasUnavailable, 'Deployment does not have minimum availability.'));
  }
  return status;
}

/** syncRolloutStatus (progress.go): status with the Progressing condition; requeues to check the deadline. */
export function syncRolloutStatus(ds: DeploymentSync, allRSs: KubeObject[], newRS: KubeObject | undefined): void {
  const d = ds.d;
  const s = calculateStatus(ds, allRSs, newRS);
  const deadline = progressDeadline(d);
  if (deadline === undefined) removeCondition(s, 'Progressing');
  const current = conditionOf(d.status, 'Progressing');
  const complete = s.replicas === s.updatedReplicas && current?.reason === REASON.NewRSAvailable;
  if (deadline !== undefined && !complete) {
    const name = newRS ? `ReplicaSet "${newRS.metadata.name}"` : `Deployment "${d.metadata.name}"`;
    if (deploymentComplete(d, s)) {
      setCondition(s, ds.condition('Progressing', 'True', REASON.NewRSAvailable, `${name} has successfully progressed.`));
    } else if (deploymentProgressing(d, s)) {
      const c = ds.condition('Progressing', 'True', REASON.RSUpdated, `${name} is progressing.`);
      // Progress refreshes lastUpdateTime even with the same reason (kube handles this case apart).
      if (current) {
        if (current.status === 'True') c.lastTransitionTime = current.lastTransitionTime;
        removeCondition(s, 'Progressing');
      }
      setCondition(s, c);
    } else if (deploymentTimedOut(d, s, ds.ctx.now().getTime())) {
      setCondition(s, ds.condition('Progressing', 'False', REASON.TimedOut, `${name} has timed out progressing.`));
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
    const after = (Date.parse(cond.lastUpdateTime ?? '') || 0) + deadline * 1000 - ds.ctx.now().getTime();
    ds.requeue(after < 1000 ? 1000 : after + 1000);
  }
}

/** checkPausedConditions: Progressing Unknown DeploymentPaused / DeploymentResumed. */
export function checkPausedConditions(ds: DeploymentSync): void {
  const d = ds.d;
  if (progressDeadline(d) === undefined) return;
  const cond = conditionOf(d.status, 'Progressing');
  if (cond?.reason === REASON.TimedOut) return;
  const pausedCond = cond?.reason === REASON.Paused;
  if (d.spec?.paused && !pausedCond) setCondition((d.status ??= {}), ds.condition('Progressing', 'Unknown', REASON.Paused, 'Deployment is paused'));
  else if (!d.spec?.paused && pausedCond) setCondition((d.status ??= {}), ds.condition('Progressing', 'Unknown', REASON.Resumed, 'Deployment is resumed'));
}
