// The ReplicaSet controller (kube's pkg/controller/replicaset for apps/v1 ReplicaSet): the pod-replica core
// (replicas.ts: deterministic slot names, expectations by revision, bounded bursts, adoption and release,
// status with ReplicaFailure) with the ReplicaSet's metav1.LabelSelector (matchLabels and matchExpressions).
// The Deployment controller (deployment.ts) owns ReplicaSets and only sets their replicas and template;
// this loop makes their pods.

import { findResource } from '../machinery/resources.ts';
import { labelSelectorFromMetav1 } from '../machinery/selectors.ts';
import type { KubeObject } from '../machinery/types.ts';
import type { Controller } from './controller.ts';
import { createReplicaController, type ReplicaControllerOptions } from './replicas.ts';

export const replicaSets = findResource('apps', 'v1', 'replicasets')!;

/**
 * A metav1.LabelSelector as a selector the controllers act on: undefined when it is missing, empty (it would
 * select every pod of the namespace; apps/v1 validation forbids it) or invalid.
 */
export function podSelectorOf(owner: KubeObject) {
  const sel = owner.spec?.selector;
  if (!sel || typeof sel !== 'object') return undefined;
  if (!Object.keys(sel.matchLabels ?? {}).length && !(sel.matchExpressions ?? []).length) return undefined;
  try {
    return labelSelectorFromMetav1(sel);
  } catch {
    return undefined;
  }
}

export function createReplicaSetController(opts: ReplicaControllerOptions = {}): Controller {
  return createReplicaController({ name: 'replicaset-controller', res: replicaSets, selector: podSelectorOf }, opts);
}

export const replicaSetController: Controller = createReplicaSetController();
