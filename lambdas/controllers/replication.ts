// The replication controller (Kubernetes' ReplicationManager for v1 ReplicationController): the pod-replica
// core (replicas.ts) with the RC's equality-based selector, a map of labels (spec.selector).

import { findResource } from '../machinery/resources.ts';
import { labelSelectorFromSet } from '../machinery/selectors.ts';
import type { Controller } from './controller.ts';
import { createReplicaController, type ReplicaControllerOptions } from './replicas.ts';

export { freeSlotNames, slotName } from './replicas.ts';

export type ReplicationControllerOptions = ReplicaControllerOptions;

export function createReplicationController(opts: ReplicationControllerOptions = {}): Controller {
  return createReplicaController(
    {
      name: 'replication-controller',
      res: findResource('', 'v1', 'replicationcontrollers')!,
      selector(rc) {
        const set: Record<string, string> = rc.spec?.selector ?? {};
        // An empty selector would match every pod of the namespace; validation forbids it, never act on it.
        return Object.keys(set).length ? labelSelectorFromSet(set) : undefined;
      },
    },
    opts,
  );
}

export const replicationController: Controller = createReplicationController();
