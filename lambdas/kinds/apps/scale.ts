// The autoscaling/v1 Scale of the apps/v1 kinds with replicas (Deployment, ReplicaSet, StatefulSet): their
// selector is a metav1.LabelSelector, published in status.selector as its string form (kubectl scale and
// the HorizontalPodAutoscaler read it), as pkg/registry/apps/<kind>/storage's scaleFromX does.

import { formatLabelSelector } from '../../machinery/metav1-validation.ts';
import type { KubeObject } from '../../machinery/types.ts';
import type { ScaleRules } from '../kind.ts';

export const labelSelectorScale: ScaleRules = {
  toScale: (o: KubeObject) => ({
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: {
      name: o.metadata.name,
      namespace: o.metadata.namespace,
      uid: o.metadata.uid,
      resourceVersion: o.metadata.resourceVersion,
      creationTimestamp: o.metadata.creationTimestamp,
    },
    spec: { replicas: o.spec?.replicas ?? 0 },
    status: { replicas: o.status?.replicas ?? 0, selector: formatLabelSelector(o.spec?.selector) },
  }),
  setReplicas: (o, replicas) => {
    o.spec = { ...o.spec, replicas };
  },
};
