// The HorizontalPodAutoscaler's arithmetic, pure (no store, no clock of its own), as kube-controller-
// manager 1.32 computes it: pkg/controller/podautoscaler/replica_calculator.go (how many replicas a
// resource metric asks for: usage / requests over the ready pods, the tolerance, pods without metrics and
// pods not yet ready) and horizontal.go (stabilization windows, behavior policies and their selectPolicy,
// the min/max clamp, and the conditions' reasons and messages). controllers/horizontal.ts drives it.

type Obj = Record<string, any>;

/** --horizontal-pod-autoscaler-tolerance. */
export const DEFAULT_TOLERANCE = 0.1;
/** --horizontal-pod-autoscaler-cpu-initialization-period. */
export const DEFAULT_CPU_INITIALIZATION_MS = 5 * 60_000;
/** --horizontal-pod-autoscaler-initial-readiness-delay. */
export const DEFAULT_INITIAL_READINESS_DELAY_MS = 30_000;

/** One pod's usage of a resource, in milli-units (metrics.k8s.io's quantities' MilliValue), and when it was sampled. */
export interface PodMetric {
  value: number;
  timestamp: number;
  windowMs: number;
}

export interface CalcOptions {
  tolerance?: number;
  cpuInitializationPeriodMs?: number;
  delayOfInitialReadinessStatusMs?: number;
  now: number;
}

export class ReplicaCalcError extends Error {}

const time = (v: unknown) => (typeof v === 'string' ? Date.parse(v) : NaN);

/** groupPods: the ready pods' count, and the pods unready (cpu only), without metrics, or ignored (deleted, failed, pending). */
export function groupPods(pods: Obj[], metrics: Map<string, PodMetric>, resource: string, opts: CalcOptions) {
  const cpuInit = opts.cpuInitializationPeriodMs ?? DEFAULT_CPU_INITIALIZATION_MS;
  const readinessDelay = opts.delayOfInitialReadinessStatusMs ?? DEFAULT_INITIAL_READINESS_DELAY_MS;
  let readyPodCount = 0;
  const unready = new Set<string>();
  const missing = new Set<string>();
  const ignored = new Set<string>();
  for (const pod of pods) {
    const name: string = pod.metadata.name;
    const phase = pod.status?.phase;
    if (pod.metadata.deletionTimestamp || phase === 'Failed' || phase === 'Pending') {
      ignored.add(name);
      continue;
    }
    const metric = metrics.get(name);
    if (!metric) {
      missing.add(name);
      continue;
    }
    if (resource === 'cpu') {
      const cond = (pod.status?.conditions ?? []).find((c: Obj) => c?.type === 'Ready');
      const start = time(pod.status?.startTime);
      let isUnready: boolean;
      if (!cond || Number.isNaN(start)) isUnready = true;
      else if (start + cpuInit > opts.now) {
        // Within the initialisation period: unready, or no whole sample window since it became ready.
        isUnready = cond.status === 'False' || metric.timestamp < time(cond.lastTransitionTime) + metric.windowMs;
      } else {
        // Unready and never ready since it started.
        isUnready = cond.status === 'False' && start + readinessDelay > time(cond.lastTransitionTime);
      }
      if (isUnready) {
        unready.add(name);
        continue;
      }
    }
    readyPodCount++;
  }
  return { readyPodCount, unready, missing, ignored };
}

/** calculatePodRequests: each pod's request of the resource in milli-units (the containers' sum, or one container's). */
export function podRequests(pods: Obj[], container: string | undefined, resource: string, milli: (q: unknown) => number): Map<string, number> {
  const out = new Map<string, number>();
  for (const pod of pods) {
    let sum = 0;
    for (const c of pod.spec?.containers ?? []) {
      if (container && c.name !== container) continue;
      const req = c.resources?.requests?.[resource];
      if (req === undefined) throw new ReplicaCalcError(`missing request for ${resource} in container ${c.name} of Pod ${pod.metadata.name}`);
      sum += milli(req);
    }
    out.set(pod.metadata.name, sum);
  }
  return out;
}

/** GetResourceUtilizationRatio: usage over requests of the pods with both, against the target. */
export function utilizationRatio(metrics: Map<string, PodMetric>, requests: Map<string, number>, target: number) {
  let metricsTotal = 0;
  let requestsTotal = 0;
  let entries = 0;
  for (const [name, m] of metrics) {
    const r = requests.get(name);
    if (r === undefined) continue;
    metricsTotal += m.value;
    requestsTotal += r;
    entries++;
  }
  if (requestsTotal === 0) throw new ReplicaCalcError('no metrics returned matched known pods');
  const utilization = Math.trunc((metricsTotal * 100) / requestsTotal);
  return { ratio: utilization / target, utilization, rawAverage: Math.trunc(metricsTotal / entries) };
}

/** GetMetricUsageRatio: an average value against its target. */
const usageRatio = (metrics: Map<string, PodMetric>, target: number) => {
  let total = 0;
  for (const m of metrics.values()) total += m.value;
  const average = Math.trunc(total / metrics.size);
  return { ratio: average / target, average };
};

export interface ResourceReplicas {
  replicas: number;
  /** Percent of the request (utilization targets). */
  utilization?: number;
  /** Average usage per pod, milli-units. */
  rawAverage: number;
}

/**
 * GetResourceReplicas (target utilization, percent) and GetRawResourceReplicas (target average value,
 * milli-units: `targetUtilization` undefined): the replicas the metric asks for.
 */
export function resourceReplicas(
  currentReplicas: number,
  target: { utilization?: number; averageMilli?: number },
  resource: string,
  container: string | undefined,
  pods: Obj[],
  podMetrics: Map<string, PodMetric>,
  milli: (q: unknown) => number,
  opts: CalcOptions,
): ResourceReplicas {
  const tolerance = opts.tolerance ?? DEFAULT_TOLERANCE;
  if (!pods.length) throw new ReplicaCalcError('no pods returned by selector while calculating replica count');
  const metrics = new Map(podMetrics);
  const { readyPodCount, unready, missing, ignored } = groupPods(pods, metrics, resource, opts);
  for (const n of ignored) metrics.delete(n);
  for (const n of unready) metrics.delete(n);
  if (!metrics.size) throw new ReplicaCalcError('did not receive metrics for targeted pods (pods might be unready)');
  const requests = target.utilization !== undefined ? podRequests(pods, container, resource, milli) : new Map<string, number>();
  const ratioOf = (m: Map<string, PodMetric>) => {
    if (target.utilization !== undefined) return utilizationRatio(m, requests, target.utilization);
    const u = usageRatio(m, target.averageMilli!);
    return { ratio: u.ratio, utilization: undefined, rawAverage: u.average };
  };
  const first = ratioOf(metrics);
  const result = (replicas: number): ResourceReplicas => ({ replicas, utilization: first.utilization, rawAverage: first.rawAverage });
  const scaleUpWithUnready = unready.size > 0 && first.ratio > 1;
  if (!scaleUpWithUnready && missing.size === 0) {
    if (Math.abs(1 - first.ratio) <= tolerance) return result(currentReplicas);
    return result(Math.ceil(first.ratio * readyPodCount));
  }
  if (missing.size > 0) {
    if (first.ratio < 1) {
      // On a scale-down, a pod without metrics counts as using its whole request (or the target, above 100%).
      for (const n of missing) {
        const value = target.utilization !== undefined ? Math.trunc(((requests.get(n) ?? 0) * Math.max(100, target.utilization)) / 100) : target.averageMilli!;
        metrics.set(n, { value, timestamp: opts.now, windowMs: 0 });
      }
    } else if (first.ratio > 1) {
      // On a scale-up, as using nothing.
      for (const n of missing) metrics.set(n, { value: 0, timestamp: opts.now, windowMs: 0 });
    }
  }
  // On a scale-up, unready pods count as using nothing.
  if (scaleUpWithUnready) for (const n of unready) metrics.set(n, { value: 0, timestamp: opts.now, windowMs: 0 });
  const next = ratioOf(metrics);
  // Within tolerance, or the direction reversed: no change.
  if (Math.abs(1 - next.ratio) <= tolerance || (first.ratio < 1 && next.ratio > 1) || (first.ratio > 1 && next.ratio < 1)) return result(currentReplicas);
  const replicas = Math.ceil(next.ratio * metrics.size);
  // A scale in the other direction than the new ratio says: no change.
  if ((next.ratio < 1 && replicas > currentReplicas) || (next.ratio > 1 && replicas < currentReplicas)) return result(currentReplicas);
  return result(replicas);
}

// ---- normalization: stabilization, rate limits, min/max (horizontal.go) ----

export interface Recommendation {
  replicas: number;
  timestamp: number;
}

export interface ScaleEvent {
  change: number;
  timestamp: number;
  outdated: boolean;
}

export interface ScalingRules {
  stabilizationWindowSeconds?: number;
  selectPolicy?: string;
  policies?: { type: string; value: number; periodSeconds: number }[];
}

export interface Limited {
  replicas: number;
  reason: string;
  message: string;
}

/** getReplicasChangePerPeriod: replicas added (or removed) by the events of the last `periodSeconds`. */
export function changeInPeriod(periodSeconds: number, events: ScaleEvent[], now: number): number {
  const cutoff = now - periodSeconds * 1000;
  let sum = 0;
  for (const e of events) if (e.timestamp > cutoff) sum += e.change;
  return sum;
}

/** calculateScaleUpLimitWithScalingRules. */
export function scaleUpLimit(current: number, up: ScaleEvent[], down: ScaleEvent[], rules: ScalingRules, now: number): number {
  if (rules.selectPolicy === 'Disabled') return current;
  const pickMin = rules.selectPolicy === 'Min';
  let result = pickMin ? Number.MAX_SAFE_INTEGER : Number.MIN_SAFE_INTEGER;
  for (const p of rules.policies ?? []) {
    const start = current - changeInPeriod(p.periodSeconds, up, now) + changeInPeriod(p.periodSeconds, down, now);
    const proposed = p.type === 'Pods' ? start + p.value : Math.ceil(start * (1 + p.value / 100));
    result = pickMin ? Math.min(result, proposed) : Math.max(result, proposed);
  }
  return result;
}

/** calculateScaleDownLimitWithBehaviors. */
export function scaleDownLimit(current: number, up: ScaleEvent[], down: ScaleEvent[], rules: ScalingRules, now: number): number {
  if (rules.selectPolicy === 'Disabled') return current;
  const pickMin = rules.selectPolicy === 'Min';
  // Min picks the smallest change: the highest limit.
  let result = pickMin ? Number.MIN_SAFE_INTEGER : Number.MAX_SAFE_INTEGER;
  for (const p of rules.policies ?? []) {
    const start = current - changeInPeriod(p.periodSeconds, up, now) + changeInPeriod(p.periodSeconds, down, now);
    const proposed = p.type === 'Pods' ? start - p.value : Math.trunc(start * (1 - p.value / 100));
    result = pickMin ? Math.max(result, proposed) : Math.min(result, proposed);
  }
  return result;
}

/** stabilizeRecommendationWithBehaviors: the recommendation within the windows' bounds; records the new one. */
export function stabilizeWithBehaviors(
  recs: Recommendation[],
  args: { current: number; desired: number; upWindowSeconds: number; downWindowSeconds: number },
  now: number,
): Limited {
  const upCutoff = now - args.upWindowSeconds * 1000;
  const downCutoff = now - args.downWindowSeconds * 1000;
  let up = args.desired;
  let down = args.desired;
  let oldIndex = -1;
  recs.forEach((r, i) => {
    if (r.timestamp > upCutoff) up = Math.min(r.replicas, up);
    if (r.timestamp > downCutoff) down = Math.max(r.replicas, down);
    if (r.timestamp < upCutoff && r.timestamp < downCutoff) oldIndex = i;
  });
  let replicas = args.current;
  if (replicas < up) replicas = up;
  if (replicas > down) replicas = down;
  if (oldIndex >= 0) recs[oldIndex] = { replicas: args.desired, timestamp: now };
  else recs.push({ replicas: args.desired, timestamp: now });
  return args.desired >= args.current
    ? { replicas, reason: 'ScaleUpStabilized', message: 'recent recommendations were lower than current one, applying the lowest recent recommendation' }
    : { replicas, reason: 'ScaleDownStabilized', message: 'recent recommendations were higher than current one, applying the highest recent recommendation' };
}

/** convertDesiredReplicasWithBehaviorRate: the behavior's rate limits, then min and max. */
export function limitWithBehaviors(
  args: { current: number; desired: number; min: number; max: number; scaleUp: ScalingRules; scaleDown: ScalingRules },
  up: ScaleEvent[],
  down: ScaleEvent[],
  now: number,
): Limited {
  if (args.desired > args.current) {
    let limit = scaleUpLimit(args.current, up, down, args.scaleUp, now);
    if (limit < args.current) limit = args.current; // no further scale-up until old events are outdated
    const [allowed, reason, message] =
      args.max > limit
        ? [limit, 'ScaleUpLimit', 'the desired replica count is increasing faster than the maximum scale rate']
        : [args.max, 'TooManyReplicas', 'the desired replica count is more than the maximum replica count'];
    if (args.desired > allowed) return { replicas: allowed, reason, message };
  } else if (args.desired < args.current) {
    let limit = scaleDownLimit(args.current, up, down, args.scaleDown, now);
    if (limit > args.current) limit = args.current;
    const [allowed, reason, message] =
      args.min < limit
        ? [limit, 'ScaleDownLimit', 'the desired replica count is decreasing faster than the maximum scale rate']
        : [args.min, 'TooFewReplicas', 'the desired replica count is less than the minimum replica count'];
    if (args.desired < allowed) return { replicas: allowed, reason, message };
  }
  return { replicas: args.desired, reason: 'DesiredWithinRange', message: 'the desired count is within the acceptable range' };
}

/** stabilizeRecommendation (no behavior): the highest recommendation of the down-scale window; records the new one. */
export function stabilize(recs: Recommendation[], desired: number, windowMs: number, now: number): number {
  const cutoff = now - windowMs;
  let max = desired;
  let oldIndex = -1;
  recs.forEach((r, i) => {
    if (r.timestamp > cutoff) max = Math.max(max, r.replicas);
    else oldIndex = i;
  });
  if (oldIndex >= 0) recs[oldIndex] = { replicas: desired, timestamp: now };
  else recs.push({ replicas: desired, timestamp: now });
  return max;
}

/** convertDesiredReplicasWithRules (no behavior): at most double (at least 4) per sync, then min and max. */
export function limitWithRules(current: number, desired: number, min: number, max: number): Limited {
  const scaleUpLimit = Math.max(2 * current, 4);
  const [maximum, maxReason, maxMessage] =
    max > scaleUpLimit
      ? [scaleUpLimit, 'ScaleUpLimit', 'the desired replica count is increasing faster than the maximum scale rate']
      : [max, 'TooManyReplicas', 'the desired replica count is more than the maximum replica count'];
  if (desired < min) return { replicas: min, reason: 'TooFewReplicas', message: 'the desired replica count is less than the minimum replica count' };
  if (desired > maximum) return { replicas: maximum, reason: maxReason, message: maxMessage };
  return { replicas: desired, reason: 'DesiredWithinRange', message: 'the desired count is within the acceptable range' };
}

/** storeScaleEvent: a scale remembered for the behavior's rate limits (events older than the longest period reused). */
export function storeScaleEvent(events: ScaleEvent[], rules: ScalingRules | undefined, change: number, now: number): void {
  const longest = Math.max(0, ...(rules?.policies ?? []).map((p) => p.periodSeconds));
  const cutoff = now - longest * 1000;
  let reused = false;
  for (let i = 0; i < events.length; i++) {
    if (events[i]!.timestamp < cutoff) events[i]!.outdated = true;
    if (!reused && events[i]!.outdated) {
      events[i] = { change, timestamp: now, outdated: false };
      reused = true;
    }
  }
  if (!reused) events.push({ change, timestamp: now, outdated: false });
}
