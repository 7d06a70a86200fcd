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
// ReplicaSet's controllerRef when reconciled, and only for a Recreate Deployment): Recreate waits for the
// old pods to be gone, as kube's deletePod handler does. Pod readiness reaches the Deployment through its
// ReplicaSet's status.
//
// Files: this one (keys, the reconcile's steps), deployment-sync.ts (claiming, the new ReplicaSet, scaling,
// cleanup, writes), deployment-rolling.ts, deployment-recreate.ts, deployment-progress.ts (status and
// conditions), deployment-util.ts (kube's deployment_util: pure).

import { findResource } from '../machinery/resources.ts';
import type { KubeObject } from '../machinery/types.ts';
import { readerOf, type Controller, type ControllerContext, type ReconcileResult } from './controller.ts';
import { checkPausedConditions, calculateStatus } from './deployment-progress.ts';
import { rolloutRecreate } from './deployment-recreate.ts';
import { rolloutRolling } from './deployment-rolling.ts';
import { COMPONENT, DeploymentSync, deployments, Stale } from './deployment-sync.ts';
import { isRecreate } from './deployment-util.ts';
import { controllerRef, isTerminating } from './owners.ts';
import { podSelectorOf, replicaSets } from './replicaset.ts';
import { bestEffortEvent, type Expectations } from './replicas.ts';
import { controllerUser } from './identity.ts';

export { deployments } from './deployment-sync.ts';

const pods = findResource('', 'v1', 'pods')!;
const RS_KEY = 'replicaset:';

async function syncDeployment(ns: string, name: string, ctx: ControllerContext, expect: Expectations): Promise<ReconcileResult | void> {
  const original = await readerOf(ctx).get(deployments, ns, name);
  if (!original) return;
  // With its type (a cache fed from stream images holds objects as stored): ownerReferences name it.
  const d: KubeObject = { ...structuredClone(original), apiVersion: 'apps/v1', kind: 'Deployment' };
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
      d.status = calculateStatus(s, [...oldRSs, ...(newRS ? [newRS] : [])], newRS);
    } else {
      checkPausedConditions(s);
      if (d.spec?.paused || (await s.isScalingEvent(rsList))) await s.sync(rsList);
      else if (isRecreate(d)) await rolloutRecreate(s, rsList);
      else await rolloutRolling(s, rsList);
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
    identity: controllerUser('deployment-controller'),
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
    async allKeys(ctx) {
      return (await readerOf(ctx).list(deployments, undefined)).map((o) => `${o.metadata.namespace}/${o.metadata.name}`);
    },
    async reconcile(key, ctx) {
      const i = key.indexOf('/');
      const ns = key.slice(0, i);
      const name = key.slice(i + 1);
      let names: string[];
      if (name === '*') names = (await readerOf(ctx).list(deployments, ns)).map((o) => o.metadata.name!);
      else if (name.startsWith(RS_KEY)) {
        // Only Recreate waits for pods to be gone (kube's deletePod): a rolling Deployment is not
        // reconciled once per deleted pod.
        const rs = await readerOf(ctx).get(replicaSets, ns, name.slice(RS_KEY.length));
        const ref = rs && controllerRef(rs);
        const d = ref?.kind === 'Deployment' ? await readerOf(ctx).get(deployments, ns, ref.name) : undefined;
        names = d && isRecreate(d) ? [d.metadata.name!] : [];
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
