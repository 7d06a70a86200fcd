// Recreate (kube's pkg/controller/deployment/recreate.go): every old ReplicaSet scaled to 0, then nothing
// until none of their pods runs (Succeeded and Failed ones do not count), then the new ReplicaSet created
// and scaled to spec.replicas at once.

import { findResource } from '../machinery/resources.ts';
import type { KubeObject } from '../machinery/types.ts';
import { readerOf } from './controller.ts';
import { activeRSs, actualReplicas, deploymentComplete, replicasOf } from './deployment-util.ts';
import { syncRolloutStatus } from './deployment-progress.ts';
import type { DeploymentSync } from './deployment-sync.ts';
import { isFinished } from './history.ts';
import { controllerRef } from './owners.ts';

const pods = findResource('', 'v1', 'pods')!;

/** rolloutRecreate (recreate.go). */
export async function rolloutRecreate(ds: DeploymentSync, rsList: KubeObject[]): Promise<void> {
  let { newRS, oldRSs } = await ds.allRSs(rsList, false);
  // Scale the old ReplicaSets down first.
  let scaledDown = false;
  for (const rs of activeRSs(oldRSs)) {
    const after = (await ds.scaleRS(rs, 0)).rs;
    oldRSs = oldRSs.map((o) => (o === rs ? after : o));
    scaledDown = true;
  }
  const all = () => [...oldRSs, ...(newRS ? [newRS] : [])];
  if (scaledDown) return syncRolloutStatus(ds, all(), newRS);
  // Then wait until none of their pods runs.
  if (await oldPodsRunning(ds, newRS, oldRSs)) return syncRolloutStatus(ds, all(), newRS);
  if (!newRS) {
    ({ newRS, oldRSs } = await ds.allRSs(rsList, true));
    if (!newRS) return syncRolloutStatus(ds, oldRSs, undefined);
  }
  newRS = (await ds.scaleRS(newRS, replicasOf(ds.d))).rs;
  if (deploymentComplete(ds.d, ds.d.status ?? {})) await ds.cleanup(oldRSs);
  return syncRolloutStatus(ds, all(), newRS);
}

/** oldPodsRunning: old ReplicaSets report pods, or a pod of theirs is not finished. */
async function oldPodsRunning(ds: DeploymentSync, newRS: KubeObject | undefined, oldRSs: KubeObject[]): Promise<boolean> {
  if (actualReplicas(oldRSs) > 0) return true;
  const reader = readerOf(ds.ctx);
  for (const rs of oldRSs) {
    if (rs === newRS) continue;
    // The namespaced owner index: in the cloud one list of the namespace's pods, not of every namespace's.
    const owned = (await reader.byIndex(pods, 'owner', `${ds.ns}/${rs.metadata.uid}`)).filter((p) => controllerRef(p)?.uid === rs.metadata.uid);
    if (owned.some((p) => !isFinished(p))) return true;
  }
  return false;
}
