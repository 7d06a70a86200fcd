// RollingUpdate (kube's pkg/controller/deployment/rolling.go): the new ReplicaSet scaled up within maxSurge,
// then the old ones down within maxUnavailable, unhealthy old replicas first. Counted with safeAvailable
// (deployment-util.ts), so maxUnavailable 0 never takes available replicas below spec.replicas even while
// a ReplicaSet's status lags its scale-down.

import type { KubeObject } from '../machinery/types.ts';
import { activeRSs, byCreation, deploymentComplete, maxUnavailable, newRSNewReplicas, replicasOf, rsReplicas, safeAvailable, specReplicas } from './deployment-util.ts';
import { syncRolloutStatus } from './deployment-progress.ts';
import type { DeploymentSync } from './deployment-sync.ts';

/** rolloutRolling (rolling.go). */
export async function rolloutRolling(ds: DeploymentSync, rsList: KubeObject[]): Promise<void> {
  const r = await ds.allRSs(rsList, true);
  let newRS = r.newRS;
  let oldRSs = r.oldRSs;
  if (!newRS) return syncRolloutStatus(ds, oldRSs, undefined);
  // Scale up, if we can.
  const up = await reconcileNewRS(ds, [...oldRSs, newRS], newRS);
  newRS = up.rs;
  if (up.scaled) return syncRolloutStatus(ds, [...oldRSs, newRS], newRS);
  // Scale down, if we can.
  const down = await reconcileOldRSs(ds, oldRSs, newRS);
  oldRSs = down.oldRSs;
  if (down.scaled) return syncRolloutStatus(ds, [...oldRSs, newRS], newRS);
  if (deploymentComplete(ds.d, ds.d.status ?? {})) await ds.cleanup(oldRSs);
  return syncRolloutStatus(ds, [...oldRSs, newRS], newRS);
}

/** reconcileNewReplicaSet. */
async function reconcileNewRS(ds: DeploymentSync, allRSs: KubeObject[], newRS: KubeObject): Promise<{ scaled: boolean; rs: KubeObject }> {
  const want = replicasOf(ds.d);
  if (rsReplicas(newRS) === want) return { scaled: false, rs: newRS };
  if (rsReplicas(newRS) > want) return ds.scaleRS(newRS, want);
  return ds.scaleRS(newRS, newRSNewReplicas(ds.d, allRSs, newRS));
}

/** reconcileOldReplicaSets: unhealthy old replicas first, then old ones within maxUnavailable. */
async function reconcileOldRSs(ds: DeploymentSync, allOld: KubeObject[], newRS: KubeObject): Promise<{ scaled: boolean; oldRSs: KubeObject[] }> {
  const d = ds.d;
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
    const after = (await ds.scaleRS(rs, rsReplicas(rs) - n)).rs;
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
      const after = (await ds.scaleRS(rs, rsReplicas(rs) - n)).rs;
      oldRSs.splice(oldRSs.indexOf(rs), 1, after);
      done += n;
    }
    total += done;
  }
  return { scaled: total > 0, oldRSs };
}
