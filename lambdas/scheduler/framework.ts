// The scheduling framework, kube-scheduler's shape in miniature: filter plugins say whether a pod may
// go on a node (and why not), score plugins rank the nodes that passed (0..100, times a weight), and the
// cycle picks the best. A NodeInfo is one node plus what is already on it (bound pods and pods another
// scheduler has reserved room for), with their requests summed once so filters are cheap.

import { parseQuantity } from '../machinery/quantity.ts';
import type { KubeObject } from '../machinery/types.ts';
import type { ControllerContext } from '../controllers/controller.ts';

/** A pod as far as scheduling is concerned: what it asks for and what it spreads with. */
export interface PodResources {
  uid: string;
  /** "ns/name" */
  key: string;
  /** Requested CPU in millicores and memory in bytes, as kube-scheduler computes them. */
  milliCPU: number;
  memory: number;
  /** The same with kube-scheduler's non-zero defaults (100m, 200Mi) for containers that ask for nothing: used to score. */
  nonZeroMilliCPU: number;
  nonZeroMemory: number;
  /** hostPorts as "protocol/ip/port" (ip "0.0.0.0" when unset). */
  hostPorts: string[];
  /** uid of the controlling owner (ownerReferences[controller=true]), for spreading. */
  ownerUid?: string;
}

export interface NodeInfo {
  node: KubeObject;
  /** Everything that occupies the node, one entry per pod uid. */
  pods: PodResources[];
  requested: { milliCPU: number; memory: number; pods: number };
  nonZeroRequested: { milliCPU: number; memory: number };
  allocatable: { milliCPU: number; memory: number; pods: number };
  /** hostPorts in use on the node. */
  usedPorts: Set<string>;
  /** Whether the node reports Ready, worked out on first use (a NodeInfo is rebuilt when its node changes). */
  ready?: boolean;
}

export type FilterResult = { ok: true } | { ok: false; reasons: string[] };
export const OK: FilterResult = { ok: true };
export const fail = (...reasons: string[]): FilterResult => ({ ok: false, reasons });

export interface FilterPlugin {
  name: string;
  filter(pod: KubeObject, podRes: PodResources, node: NodeInfo): FilterResult;
}

export interface ScorePlugin {
  name: string;
  weight: number;
  /** 0..100 for one feasible node; `all` are every feasible node, for plugins that normalize. */
  score(pod: KubeObject, podRes: PodResources, node: NodeInfo, all: NodeInfo[]): number;
}

/**
 * A plugin that needs objects other than the pod and the nodes (kube-scheduler's PreFilter and PreBind
 * extension points; VolumeBinding): it reads them once per pod before the cycle, filters every node with
 * what it read, and writes before the pod is bound (the chosen node onto the pod's claims).
 */
export interface CyclePlugin<S = any> {
  name: string;
  /** Undefined: nothing to check for this pod. `unschedulable`: why the pod cannot go on any node now. */
  preFilter(ctx: ControllerContext, pod: KubeObject): Promise<{ state: S } | { unschedulable: string } | undefined>;
  filter(pod: KubeObject, state: S, node: NodeInfo): FilterResult;
  preBind?(ctx: ControllerContext, pod: KubeObject, state: S, nodeName: string): Promise<void>;
}

export interface Profile {
  filters: FilterPlugin[];
  scores: ScorePlugin[];
  /** Plugins with PreFilter/PreBind: their filters run after `filters`. */
  cycle?: CyclePlugin[];
}

// ---- resource arithmetic ----

// kube-scheduler's defaults for a container with no request, used only when scoring
// (pkg/scheduler/util: DefaultMilliCPURequest, DefaultMemoryRequest), so a node full of
// request-less pods does not look empty.
const DEFAULT_MILLI_CPU = 100;
const DEFAULT_MEMORY = 200 * 1024 * 1024;

export function milliCPU(q: unknown): number {
  if (q === undefined || q === null || q === '') return 0;
  return Math.ceil(parseQuantity(String(q)) * 1000 - 1e-9);
}

export function bytes(q: unknown): number {
  if (q === undefined || q === null || q === '') return 0;
  return Math.ceil(parseQuantity(String(q)) - 1e-9);
}

type Req = { cpu: number; mem: number; nzCpu: number; nzMem: number };
const zero = (): Req => ({ cpu: 0, mem: 0, nzCpu: 0, nzMem: 0 });
const add = (a: Req, b: Req): Req => ({ cpu: a.cpu + b.cpu, mem: a.mem + b.mem, nzCpu: a.nzCpu + b.nzCpu, nzMem: a.nzMem + b.nzMem });
const max = (a: Req, b: Req): Req => ({
  cpu: Math.max(a.cpu, b.cpu),
  mem: Math.max(a.mem, b.mem),
  nzCpu: Math.max(a.nzCpu, b.nzCpu),
  nzMem: Math.max(a.nzMem, b.nzMem),
});

function containerReq(c: any): Req {
  const r = c?.resources?.requests ?? {};
  const cpu = milliCPU(r.cpu);
  const mem = bytes(r.memory);
  return { cpu, mem, nzCpu: r.cpu === undefined ? DEFAULT_MILLI_CPU : cpu, nzMem: r.memory === undefined ? DEFAULT_MEMORY : mem };
}

/**
 * The pod's effective request, as Kubernetes' resourcehelper.PodRequests computes it: the sum of the
 * app containers plus the restartable (sidecar) init containers, or the largest single init container
 * step (which runs alongside the sidecars started before it) if that is more, plus spec.overhead.
 */
export function podRequests(pod: KubeObject): Req {
  let containers = zero();
  for (const c of pod.spec?.containers ?? []) containers = add(containers, containerReq(c));
  let sidecars = zero();
  let initMax = zero();
  for (const c of pod.spec?.initContainers ?? []) {
    const r = containerReq(c);
    if (c?.restartPolicy === 'Always') {
      sidecars = add(sidecars, r);
      initMax = max(initMax, sidecars);
    } else {
      initMax = max(initMax, add(r, sidecars));
    }
  }
  let total = max(add(containers, sidecars), initMax);
  const o = pod.spec?.overhead;
  if (o) {
    const oc = milliCPU(o.cpu);
    const om = bytes(o.memory);
    total = add(total, { cpu: oc, mem: om, nzCpu: oc, nzMem: om });
  }
  return total;
}

/** hostPorts a pod takes on its node (app containers and sidecars, which run for the pod's life). */
export function podHostPorts(pod: KubeObject): string[] {
  const out: string[] = [];
  const containers = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? []).filter((c: any) => c?.restartPolicy === 'Always')];
  for (const c of containers) {
    for (const p of c?.ports ?? []) {
      if (!p?.hostPort || p.hostPort <= 0) continue;
      out.push(`${p.protocol || 'TCP'}/${p.hostIP || '0.0.0.0'}/${p.hostPort}`);
    }
  }
  return out;
}

export function controllerUid(pod: KubeObject): string | undefined {
  return pod.metadata.ownerReferences?.find((r) => r.controller)?.uid;
}

export function podResources(pod: KubeObject): PodResources {
  const r = podRequests(pod);
  return {
    uid: pod.metadata.uid!,
    key: `${pod.metadata.namespace}/${pod.metadata.name}`,
    milliCPU: r.cpu,
    memory: r.mem,
    nonZeroMilliCPU: r.nzCpu,
    nonZeroMemory: r.nzMem,
    hostPorts: podHostPorts(pod),
    ownerUid: controllerUid(pod),
  };
}

export function nodeAllocatable(node: KubeObject): NodeInfo['allocatable'] {
  // Kubernetes falls back to capacity when allocatable is not reported.
  const a = node.status?.allocatable ?? node.status?.capacity ?? {};
  return { milliCPU: milliCPU(a.cpu), memory: bytes(a.memory), pods: a.pods === undefined ? 0 : Math.floor(parseQuantity(String(a.pods))) };
}

export function newNodeInfo(node: KubeObject, pods: Iterable<PodResources>): NodeInfo {
  const info: NodeInfo = {
    node,
    pods: [],
    requested: { milliCPU: 0, memory: 0, pods: 0 },
    nonZeroRequested: { milliCPU: 0, memory: 0 },
    allocatable: nodeAllocatable(node),
    usedPorts: new Set(),
  };
  const seen = new Set<string>();
  for (const p of pods) {
    if (seen.has(p.uid)) continue;
    seen.add(p.uid);
    addPod(info, p);
  }
  return info;
}

export function addPod(info: NodeInfo, p: PodResources): void {
  info.pods.push(p);
  info.requested.milliCPU += p.milliCPU;
  info.requested.memory += p.memory;
  info.requested.pods += 1;
  info.nonZeroRequested.milliCPU += p.nonZeroMilliCPU;
  info.nonZeroRequested.memory += p.nonZeroMemory;
  for (const hp of p.hostPorts) info.usedPorts.add(hp);
}

// ---- the cycle ----

export interface CycleOptions {
  /** "random" (kube-scheduler's reservoir choice among equal best scores) or "name" (deterministic). */
  tieBreak?: 'random' | 'name';
  /** Where to start looking, rotated by the caller so successive pods do not all probe the same nodes. */
  startIndex?: number;
  /**
   * Stop filtering once this many feasible nodes are found (kube-scheduler's percentageOfNodesToScore),
   * so a large cluster costs a bounded amount per pod. Default: all nodes.
   */
  feasibleToFind?: number;
}

export type CycleResult =
  | { node: string; feasible: number; examined: number }
  | { node: undefined; numAllNodes: number; reasons: Map<string, number> };

/** kube-scheduler's adaptive numFeasibleNodesToFind: all of a small cluster, a shrinking share of a big one. */
export function feasibleNodesToFind(numNodes: number): number {
  if (numNodes < 100) return numNodes;
  const pct = Math.max(5, 50 - Math.floor(numNodes / 125));
  return Math.max(100, Math.floor((numNodes * pct) / 100));
}

/** Filter every node (from startIndex, until enough are feasible), score the feasible ones, pick the best. */
export function runCycle(pod: KubeObject, nodes: NodeInfo[], profile: Profile, opts: CycleOptions = {}): CycleResult {
  const podRes = podResources(pod);
  const want = opts.feasibleToFind ?? nodes.length;
  const feasible: NodeInfo[] = [];
  const reasons = new Map<string, number>();
  const n = nodes.length;
  const start = n ? ((opts.startIndex ?? 0) % n + n) % n : 0;
  let examined = 0;
  for (let i = 0; i < n && feasible.length < want; i++) {
    const info = nodes[(start + i) % n]!;
    examined++;
    let ok = true;
    for (const f of profile.filters) {
      const r = f.filter(pod, podRes, info);
      if (!r.ok) {
        // As kube-scheduler: the first plugin that rejects a node gives its reasons (one node can
        // count for several, e.g. Insufficient cpu and Insufficient memory).
        for (const reason of r.reasons) reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
        ok = false;
        break;
      }
    }
    if (ok) feasible.push(info);
  }
  if (feasible.length === 0) return { node: undefined, numAllNodes: n, reasons };
  let best: NodeInfo[] = [];
  let bestScore = -Infinity;
  if (feasible.length === 1) best = feasible;
  else {
    for (const info of feasible) {
      let s = 0;
      for (const sp of profile.scores) s += sp.weight * sp.score(pod, podRes, info, feasible);
      if (s > bestScore) {
        bestScore = s;
        best = [info];
      } else if (s === bestScore) best.push(info);
    }
  }
  const chosen =
    opts.tieBreak === 'name'
      ? best.reduce((a, b) => (a.node.metadata.name! <= b.node.metadata.name! ? a : b))
      : best[Math.floor(Math.random() * best.length)]!;
  return { node: chosen.node.metadata.name!, feasible: feasible.length, examined };
}

/**
 * kube-scheduler's FitError text: "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had
 * untolerated taint {k: v}. preemption: ..." with the reasons counted and sorted as strings.
 * Skiff has no preemption, so the preemption part always says it would not help.
 */
export function fitErrorMessage(numAllNodes: number, reasons: Map<string, number>): string {
  const parts = [...reasons].map(([r, c]) => `${c} ${r}`).sort();
  const head = `0/${numAllNodes} nodes are available`;
  const body = parts.length ? `${head}: ${parts.join(', ')}.` : `${head}.`;
  return `${body} preemption: ${head}: ${numAllNodes} Preemption is not helpful for scheduling.`;
}
