// NodeReady and NodeUnschedulable. kube-scheduler itself leaves readiness to the node lifecycle
// controller's node.kubernetes.io/not-ready taint; Skiff also checks the Ready condition directly, so a
// node that never reported Ready (or stopped) gets no pods even before it is tainted. Pods that tolerate
// the not-ready / unreachable NoSchedule taint (as a CNI DaemonSet's `operator: Exists` does) pass anyway.
// NodeUnschedulable: spec.unschedulable (kubectl cordon) keeps pods off unless they tolerate the
// node.kubernetes.io/unschedulable:NoSchedule taint, exactly as the upstream plugin does.

import { fail, OK, type FilterPlugin } from '../framework.ts';
import { podTolerates } from './taint-toleration.ts';

export function nodeIsReady(node: { status?: any }): boolean {
  return (node.status?.conditions ?? []).some((c: any) => c?.type === 'Ready' && c.status === 'True');
}

export const nodeReady: FilterPlugin = {
  name: 'NodeReady',
  filter(pod, _res, info) {
    // Asked of every node for every pod: the answer is kept on the NodeInfo.
    if ((info.ready ??= nodeIsReady(info.node))) return OK;
    const ready = (info.node.status?.conditions ?? []).find((c: any) => c?.type === 'Ready');
    const key = ready?.status === 'Unknown' ? 'node.kubernetes.io/unreachable' : 'node.kubernetes.io/not-ready';
    // Only a NoSchedule toleration lets a pod on, as the lifecycle controller's NoSchedule taint would:
    // tolerating the NoExecute one (every pod does, for 300 s) only lets a pod already there stay a while.
    if (podTolerates(pod, { key, effect: 'NoSchedule' })) return OK;
    return fail('node(s) were not ready');
  },
};

export const nodeUnschedulable: FilterPlugin = {
  name: 'NodeUnschedulable',
  filter(pod, _res, info) {
    if (!info.node.spec?.unschedulable) return OK;
    if (podTolerates(pod, { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' })) return OK;
    return fail('node(s) were unschedulable');
  },
};
