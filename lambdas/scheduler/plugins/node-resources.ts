// NodeResourcesFit (filter) and NodeResourcesLeastAllocated (score).
// Fit: the pod's effective requests (framework.podRequests: containers summed, init containers' max,
// sidecars, overhead) plus what is already requested on the node must stay within status.allocatable,
// and the node must have room for one more pod. As upstream, every short resource is a reason, and a
// pod that asks for no cpu/memory is only checked against the pod count.
// LeastAllocated: for cpu and memory, (allocatable - requested) * 100 / allocatable, averaged with equal
// weights, where requested includes this pod and counts request-less containers at 100m / 200Mi.

import { fail, OK, type FilterPlugin, type NodeInfo, type PodResources, type ScorePlugin } from '../framework.ts';

export function insufficientResources(res: PodResources, info: NodeInfo): string[] {
  const out: string[] = [];
  if (info.requested.pods + 1 > info.allocatable.pods) out.push('Too many pods');
  if (res.milliCPU === 0 && res.memory === 0) return out;
  if (res.milliCPU > 0 && info.requested.milliCPU + res.milliCPU > info.allocatable.milliCPU) out.push('Insufficient cpu');
  if (res.memory > 0 && info.requested.memory + res.memory > info.allocatable.memory) out.push('Insufficient memory');
  return out;
}

/** insufficientResources(...).length === 0, without building the list: the common case of the filter. */
function fits(res: PodResources, info: NodeInfo): boolean {
  const r = info.requested;
  const a = info.allocatable;
  return (
    r.pods + 1 <= a.pods &&
    ((res.milliCPU === 0 && res.memory === 0) ||
      ((res.milliCPU <= 0 || r.milliCPU + res.milliCPU <= a.milliCPU) && (res.memory <= 0 || r.memory + res.memory <= a.memory)))
  );
}

export const nodeResourcesFit: FilterPlugin = {
  name: 'NodeResourcesFit',
  filter(_pod, res, info) {
    return fits(res, info) ? OK : fail(...insufficientResources(res, info));
  },
};

function leastAllocated(requested: number, allocatable: number): number {
  if (allocatable <= 0 || requested > allocatable) return 0;
  return Math.floor(((allocatable - requested) * 100) / allocatable);
}

export const nodeResourcesLeastAllocated: ScorePlugin = {
  name: 'NodeResourcesLeastAllocated',
  weight: 1,
  score(_pod, res, info) {
    const cpu = leastAllocated(info.nonZeroRequested.milliCPU + res.nonZeroMilliCPU, info.allocatable.milliCPU);
    const mem = leastAllocated(info.nonZeroRequested.memory + res.nonZeroMemory, info.allocatable.memory);
    return Math.floor((cpu + mem) / 2);
  },
};
