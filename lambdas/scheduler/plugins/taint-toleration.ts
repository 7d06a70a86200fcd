// TaintToleration: a node's NoSchedule and NoExecute taints keep off every pod that does not tolerate
// them (PreferNoSchedule only affects scoring in Kubernetes, which Skiff leaves out).
// Matching follows k8s.io/api/core/v1 Toleration.ToleratesTaint: the effect must match unless the
// toleration leaves it empty; the key must match unless the toleration has an empty key with operator
// Exists (which tolerates everything); Exists ignores the value; Equal (or no operator) compares it.

import type { KubeObject } from '../../machinery/types.ts';
import { fail, OK, type FilterPlugin } from '../framework.ts';

export interface Taint {
  key: string;
  value?: string;
  effect: string;
}

export interface Toleration {
  key?: string;
  operator?: string;
  value?: string;
  effect?: string;
}

export function toleratesTaint(t: Toleration, taint: Taint): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  if (!t.key) {
    // An empty key only makes sense with Exists: it matches every key.
    return t.operator === 'Exists';
  }
  if (t.key !== taint.key) return false;
  switch (t.operator ?? 'Equal') {
    case 'Exists':
      return true;
    case 'Equal':
    case '':
      return (t.value ?? '') === (taint.value ?? '');
    default:
      return false;
  }
}

export function podTolerates(pod: KubeObject, taint: Taint): boolean {
  return (pod.spec?.tolerations ?? []).some((t: Toleration) => toleratesTaint(t, taint));
}

export const taintToleration: FilterPlugin = {
  name: 'TaintToleration',
  filter(pod, _res, info) {
    for (const taint of (info.node.spec?.taints ?? []) as Taint[]) {
      if (taint.effect !== 'NoSchedule' && taint.effect !== 'NoExecute') continue;
      if (!podTolerates(pod, taint)) return fail(`node(s) had untolerated taint {${taint.key}: ${taint.value ?? ''}}`);
    }
    return OK;
  },
};
