// The HorizontalPodAutoscaler controller (kube-controller-manager's pkg/controller/podautoscaler,
// horizontal.go's reconcileAutoscaler): every sync period (--horizontal-pod-autoscaler-sync-period, 15 s)
// each HPA reads its target's scale subresource (Deployments, ReplicaSets, StatefulSets, RCs, custom
// resources with one), the pods its selector names and their usage (metrics.k8s.io PodMetrics as the
// apiserver serves them, kinds/metrics/metrics.ts: locally the agents' /stats/summary; deployed the nodes'
// reports on demand, apiserver/node-usage.ts, wired in controllers/lambda.ts), computes the replicas each
// metric asks for (horizontal-replicas.ts: kube's replica calculator), takes the highest, stabilizes it
// (the down-scale window, 300 s, or the behavior's windows), limits its rate (the behavior's policies, or
// double-or-4 without one), clamps it to min/max, writes the scale, and records status: currentMetrics,
// current/desired replicas, lastScaleTime, and the AbleToScale / ScalingActive / ScalingLimited conditions,
// with kube's events. Only Resource and ContainerResource metrics have a source here (no custom or external
// metrics API): Pods, Object and External metrics are reported as failing, as kube does without an adapter.
//
// Timing. Locally the runner requeues each HPA after the sync period. Its own status write (and any other
// change) wakes it too; as kube's rate-limited queue does, such a wake within the sync period waits for the
// period, unless the HPA's spec changed (a new generation: synced at once). In the cloud no process runs
// between events: each sync asks for a wake-up one period later (wakeups.ts, an EventBridge Scheduler
// one-time schedule per HPA, deleted with the HPA), so a cluster without HPAs pays nothing and each HPA
// costs 175,200 Scheduler invocations and controller function runs a 730-hour month (~$0.48 at list
// prices: infra/cost-model.ts HPA_SYNC; its usage reads and the nodes' reports are HPA_USAGE_READ and
// usageDemandHour). The recommendations and scale events the windows and rate limits
// look back on are in memory, as kube's are (a new controller process, or a cold function, starts afresh).

import { podMetricsKind } from '../kinds/metrics/metrics.ts';
import { nodeStats } from '../apiserver/node-proxy.ts';
import type { ReadContext } from '../kinds/kind.ts';
import { kindFor } from '../kinds/index.ts';
import { findResource, RESOURCES, type ResourceInfo } from '../machinery/resources.ts';
import { parseLabelSelector } from '../machinery/selectors.ts';
import { parseQuantity } from '../machinery/quantity.ts';
import type { KubeObject } from '../machinery/types.ts';
import { isObject } from '../machinery/types.ts';
import { ApiError } from '../machinery/status.ts';
import { isDeepStrictEqual } from 'node:util';
import { readerOf, type Controller, type ControllerContext, type ReconcileResult } from './controller.ts';
import { recordEvent } from './events.ts';
import { setStatusCondition } from '../kinds/policy/poddisruptionbudget.ts';
import { controllerUser } from './identity.ts';
import { localWakeUps, type WakeUps } from './wakeups.ts';
import {
  limitWithBehaviors,
  limitWithRules,
  ReplicaCalcError,
  resourceReplicas,
  stabilize,
  stabilizeWithBehaviors,
  storeScaleEvent,
  type PodMetric,
  type Recommendation,
  type ScaleEvent,
  type ScalingRules,
} from './horizontal-replicas.ts';

type Obj = Record<string, any>;

export const CONTROLLER_NAME = 'horizontal-pod-autoscaler';
const COMPONENT = 'horizontal-pod-autoscaler';
const hpas = findResource('autoscaling', 'v2', 'horizontalpodautoscalers')!;
const pods = findResource('', 'v1', 'pods')!;
const nodes = findResource('', 'v1', 'nodes')!;

/** Pods' usage of a namespace's pods selected by `selector` (metrics.k8s.io PodMetrics objects). */
export type PodMetricsSource = (ctx: ControllerContext, namespace: string, selector: string) => Promise<Obj[]>;

/**
 * PodMetrics as the apiserver serves them, each node's usage from `stats` (ReadContext.nodeStats). With
 * `byName`, `stats` needs only the node's name (node-usage.ts): the Node is not read (a node gone has no
 * fresh report either), one GetItem less per node and sync.
 */
export function podMetricsFrom(stats: ReadContext['nodeStats'], byName = false): PodMetricsSource {
  return (ctx, namespace, selector) => {
    const read: ReadContext = {
      get: async (r, ns, name) => (r === 'nodes' && byName ? { metadata: { name } } : ctx.registry.get(r === 'pods' ? pods : nodes, ns, name)),
      list: async (r, ns, ls) => (await ctx.registry.list(r === 'pods' ? pods : nodes, ns, { labelSelector: ls ? parseLabelSelector(ls) : undefined })).items,
      nodeStats: stats,
    };
    return podMetricsKind.read!.list(read, namespace, selector);
  };
}

/** PodMetrics from the nodes' agents' /stats/summary, as `skiff up` serves them (none where no agent can be reached). */
export function agentPodMetrics(nodeClientToken: string | undefined): PodMetricsSource {
  return podMetricsFrom((node) => nodeStats(node, nodeClientToken));
}

export interface HorizontalControllerOptions {
  /** Where pod usage comes from (default: the agents, unreachable without a node client token: no metrics). */
  metrics?: PodMetricsSource;
  /** --horizontal-pod-autoscaler-sync-period (15 s). */
  syncPeriodMs?: number;
  /** --horizontal-pod-autoscaler-downscale-stabilization (5 minutes): the scale-down window when the HPA sets none. */
  downscaleStabilizationMs?: number;
  /** --horizontal-pod-autoscaler-tolerance (0.1). */
  tolerance?: number;
  /** --horizontal-pod-autoscaler-cpu-initialization-period (5 minutes). */
  cpuInitializationPeriodMs?: number;
  /** --horizontal-pod-autoscaler-initial-readiness-delay (30 s). */
  initialReadinessDelayMs?: number;
  /** How the cloud wakes an HPA one sync period later (local: the runner's requeue). */
  wakeUps?: WakeUps;
}

interface State {
  recommendations: Recommendation[];
  scaleUpEvents: ScaleEvent[];
  scaleDownEvents: ScaleEvent[];
  lastSync: number;
  generation?: number;
}

const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** setConditionInList: the transition time moves only when the status does (as meta.SetStatusCondition). */
const setCondition = (status: Obj, type: string, value: 'True' | 'False', reason: string, message: string, now: Date) =>
  setStatusCondition(status, { type, status: value, reason, message }, now);

/** Quantity.MilliValue: rounded up. */
const milli = (q: unknown) => Math.ceil(parseQuantity(String(q)) * 1000 - 1e-6);

/** The kind a scaleTargetRef names, with a scale subresource, among the served kinds (custom resources too). */
async function targetKind(ctx: ControllerContext, ref: Obj): Promise<ResourceInfo | undefined> {
  const apiVersion = String(ref.apiVersion ?? '');
  const slash = apiVersion.indexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  const all = ((await ctx.kinds?.()) ?? RESOURCES).filter((r) => r.group === group && r.kind === ref.kind && kindFor(r).scale);
  return all.find((r) => r.version === version) ?? all[0];
}

export function createHorizontalController(opts: HorizontalControllerOptions = {}): Controller {
  const syncMs = opts.syncPeriodMs ?? 15_000;
  const downscaleMs = opts.downscaleStabilizationMs ?? 5 * 60_000;
  const metricsOf = opts.metrics ?? agentPodMetrics(undefined);
  const wakeUps = opts.wakeUps ?? localWakeUps;
  const states = new Map<string, State>();
  const calc = (now: number) => ({
    now,
    tolerance: opts.tolerance,
    cpuInitializationPeriodMs: opts.cpuInitializationPeriodMs,
    delayOfInitialReadinessStatusMs: opts.initialReadinessDelayMs,
  });

  async function reconcile(key: string, ctx: ControllerContext): Promise<ReconcileResult | void> {
    const i = key.indexOf('/');
    const [ns, name] = [key.slice(0, i), key.slice(i + 1)];
    const hpa = await readerOf(ctx).get(hpas, ns, name);
    if (!hpa || hpa.metadata.deletionTimestamp) {
      states.delete(key);
      return void (await wakeUps.cancel(CONTROLLER_NAME, key));
    }
    const nowDate = ctx.now();
    const now = nowDate.getTime();
    let st = states.get(key);
    // A change within the sync period waits for it (kube's rate-limited queue), unless the spec changed.
    if (st && now - st.lastSync < syncMs && st.generation === hpa.metadata.generation) return { requeueAfterMs: st.lastSync + syncMs - now };
    if (!st) states.set(key, (st = { recommendations: [], scaleUpEvents: [], scaleDownEvents: [], lastSync: now }));
    st.lastSync = now;
    st.generation = hpa.metadata.generation;
    try {
      await sync(ctx, hpa, st, nowDate);
    } finally {
      await wakeUps.wakeAt(CONTROLLER_NAME, key, new Date(now + syncMs));
    }
    return { requeueAfterMs: syncMs };
  }

  /** reconcileAutoscaler. */
  async function sync(ctx: ControllerContext, hpa: KubeObject, st: State, nowDate: Date): Promise<void> {
    const now = nowDate.getTime();
    const spec: Obj = hpa.spec ?? {};
    const status: Obj = structuredClone(hpa.status ?? {});
    const before = structuredClone(hpa.status ?? {});
    const event = (type: 'Normal' | 'Warning', reason: string, message: string) => recordEvent(ctx.registry, hpa, { type, reason, message, component: COMPONENT }).catch(() => undefined);
    const ref: Obj = spec.scaleTargetRef ?? {};
    const minReplicas: number = spec.minReplicas ?? 1;
    const maxReplicas: number = spec.maxReplicas ?? 0;
    const writeStatus = async () => {
      status.observedGeneration = hpa.metadata.generation;
      if (isDeepStrictEqual(status, before)) return;
      await ctx.registry.guaranteedUpdate(hpas, hpa.metadata.namespace, hpa.metadata.name!, undefined, { subresource: 'status' }, (cur) => ({ ...cur, status }));
    };

    // The target's scale.
    const res = await targetKind(ctx, ref);
    let scale: Obj | undefined;
    let scaleError = res ? '' : `no matches for kind "${ref.kind}" in group "${String(ref.apiVersion ?? '').split('/').slice(0, -1).join('/')}"`;
    if (res) {
      try {
        scale = await ctx.registry.getScale(res, hpa.metadata.namespace, String(ref.name ?? ''));
      } catch (e) {
        scaleError = e instanceof ApiError ? e.message : String(e);
      }
    }
    if (!scale) {
      setCondition(status, 'AbleToScale', 'False', 'FailedGetScale', `the HPA controller was unable to get the target's current scale: ${scaleError}`, nowDate);
      await event('Warning', 'FailedGetScale', scaleError);
      return writeStatus();
    }
    setCondition(status, 'AbleToScale', 'True', 'SucceededGetScale', "the HPA controller was able to get the target's current scale", nowDate);
    const currentReplicas: number = scale.spec?.replicas ?? 0;
    status.currentReplicas = scale.status?.replicas ?? 0;
    let desiredReplicas = 0;
    let rescaleReason = '';
    let rescale = false;
    let metricStatuses: Obj[] | undefined = status.currentMetrics;

    if (currentReplicas === 0 && minReplicas !== 0) {
      // Autoscaling is disabled for this resource.
      setCondition(status, 'ScalingActive', 'False', 'ScalingDisabled', 'scaling is disabled since the replica count of the target is zero', nowDate);
    } else if (currentReplicas > maxReplicas) {
      rescaleReason = 'Current number of replicas above Spec.MaxReplicas';
      desiredReplicas = maxReplicas;
    } else if (currentReplicas < minReplicas) {
      rescaleReason = 'Current number of replicas below Spec.MinReplicas';
      desiredReplicas = minReplicas;
    } else {
      const computed = await computeReplicasForMetrics(ctx, hpa, scale, currentReplicas, status, nowDate, event);
      metricStatuses = computed.statuses;
      if (computed.replicas < 0) {
        status.currentMetrics = metricStatuses.length ? metricStatuses : null;
        status.desiredReplicas = status.desiredReplicas ?? 0;
        await event('Warning', 'FailedComputeMetricsReplicas', computed.error);
        return writeStatus();
      }
      desiredReplicas = computed.replicas;
      if (desiredReplicas > currentReplicas) rescaleReason = `${computed.metric} above target`;
      if (desiredReplicas < currentReplicas) rescaleReason = 'All metrics below target';
      desiredReplicas = isObject(spec.behavior)
        ? normalizeWithBehaviors(st, spec.behavior, currentReplicas, desiredReplicas, minReplicas, maxReplicas, status, nowDate)
        : normalize(st, currentReplicas, desiredReplicas, minReplicas, maxReplicas, status, nowDate);
      rescale = desiredReplicas !== currentReplicas;
    }
    if (!rescale && rescaleReason) rescale = desiredReplicas !== currentReplicas;

    if (rescale) {
      try {
        await ctx.registry.updateScale(res!, hpa.metadata.namespace, String(ref.name), desiredReplicas);
      } catch (e) {
        const msg = e instanceof ApiError ? e.message : String(e);
        setCondition(status, 'AbleToScale', 'False', 'FailedUpdateScale', `the HPA controller was unable to update the target scale: ${msg}`, nowDate);
        await event('Warning', 'FailedRescale', `New size: ${desiredReplicas}; reason: ${rescaleReason}; error: ${msg}`);
        return writeStatus();
      }
      setCondition(status, 'AbleToScale', 'True', 'SucceededRescale', `the HPA controller was able to update the target scale to ${desiredReplicas}`, nowDate);
      await event('Normal', 'SuccessfulRescale', `New size: ${desiredReplicas}; reason: ${rescaleReason}`);
      const behavior = isObject(spec.behavior) ? spec.behavior : undefined;
      if (behavior) {
        if (desiredReplicas > currentReplicas) storeScaleEvent(st.scaleUpEvents, behavior.scaleUp, desiredReplicas - currentReplicas, now);
        else storeScaleEvent(st.scaleDownEvents, behavior.scaleDown, currentReplicas - desiredReplicas, now);
      }
      status.lastScaleTime = rfc3339(nowDate);
    } else {
      desiredReplicas = currentReplicas;
    }
    status.currentReplicas = scale.status?.replicas ?? 0;
    status.desiredReplicas = desiredReplicas;
    // No omitempty: none is null, as the API defaults it.
    status.currentMetrics = metricStatuses?.length ? metricStatuses : null;
    await writeStatus();
  }

  /** computeReplicasForMetrics: the highest proposal of the metrics; -1 when they cannot be trusted. */
  async function computeReplicasForMetrics(
    ctx: ControllerContext,
    hpa: KubeObject,
    scale: Obj,
    currentReplicas: number,
    status: Obj,
    nowDate: Date,
    event: (type: 'Normal' | 'Warning', reason: string, message: string) => Promise<unknown>,
  ): Promise<{ replicas: number; metric: string; statuses: Obj[]; error: string }> {
    const specs: Obj[] = Array.isArray(hpa.spec?.metrics) ? hpa.spec.metrics : [];
    const selectorText: string = scale.status?.selector ?? '';
    if (!selectorText) {
      setCondition(status, 'ScalingActive', 'False', 'InvalidSelector', "the HPA target's scale is missing a selector", nowDate);
      await event('Warning', 'SelectorRequired', 'selector is required');
      return { replicas: -1, metric: '', statuses: [], error: 'selector is required' };
    }
    let selector;
    try {
      selector = parseLabelSelector(selectorText);
    } catch (e) {
      const msg = `couldn't convert selector into a corresponding internal selector object: ${(e as Error).message}`;
      setCondition(status, 'ScalingActive', 'False', 'InvalidSelector', msg, nowDate);
      await event('Warning', 'InvalidSelector', msg);
      return { replicas: -1, metric: '', statuses: [], error: msg };
    }
    const ns = hpa.metadata.namespace!;
    const podList = (await readerOf(ctx).list(pods, ns)).filter((p) => selector.matches(p.metadata.labels));
    let podMetrics: Obj[] | undefined;
    const usage = async () => (podMetrics ??= await metricsOf(ctx, ns, selectorText).catch(() => []));
    let replicas = 0;
    let metric = '';
    let invalid = 0;
    let firstError: { reason: string; message: string; error: string } | undefined;
    const statuses: Obj[] = [];
    for (const [i, m] of specs.entries()) {
      const type = m?.type;
      const key = type === 'Resource' ? 'resource' : type === 'ContainerResource' ? 'containerResource' : undefined;
      if (!key) {
        const what = type === 'Pods' ? 'pods' : type === 'Object' ? 'object' : 'external';
        const reason = type === 'Pods' ? 'FailedGetPodsMetric' : type === 'Object' ? 'FailedGetObjectMetric' : type === 'External' ? 'FailedGetExternalMetric' : 'InvalidMetricSourceType';
        const err = reason === 'InvalidMetricSourceType' ? `unknown metric source type "${type}"` : `unable to get ${what} metric: no custom or external metrics API is served`;
        statuses[i] = { type: '' };
        invalid++;
        firstError ??= { reason, message: `the HPA was unable to compute the replica count: ${err}`, error: err };
        await event('Warning', reason, err);
        continue;
      }
      const src: Obj = m[key] ?? {};
      const resource: string = src.name;
      const container: string | undefined = key === 'containerResource' ? src.container : undefined;
      const target: Obj = src.target ?? {};
      try {
        const all = await usage();
        const values = new Map<string, PodMetric>();
        for (const pm of all) {
          const cs = (pm.containers ?? []).filter((c: Obj) => !container || c.name === container);
          if (container && !cs.length) continue;
          let sum = 0;
          let missing = false;
          for (const c of cs) {
            const q = c.usage?.[resource];
            if (q === undefined) missing = true;
            else sum += milli(q);
          }
          if (missing) continue;
          values.set(pm.metadata.name, { value: sum, timestamp: Date.parse(pm.timestamp), windowMs: (parseFloat(pm.window) || 0) * 1000 });
        }
        if (!values.size) throw new ReplicaCalcError(`unable to get metrics for resource ${resource}: no metrics returned from resource metrics API`);
        const r = resourceReplicas(
          currentReplicas,
          target.averageUtilization !== undefined ? { utilization: target.averageUtilization } : { averageMilli: milli(target.averageValue) },
          resource,
          container,
          podList,
          values,
          milli,
          calc(nowDate.getTime()),
        );
        const current: Obj = { averageValue: formatMilli(r.rawAverage, resource) };
        if (target.averageUtilization !== undefined) current.averageUtilization = r.utilization;
        statuses[i] = { type, [key]: { name: resource, ...(container ? { container } : {}), current } };
        if (r.replicas > replicas) {
          replicas = r.replicas;
          metric = `${resource} ${key === 'resource' ? 'resource' : 'container resource'}${target.averageUtilization !== undefined ? ' utilization (percentage of request)' : ''}`;
        }
      } catch (e) {
        const what = target.averageUtilization !== undefined ? `failed to get ${resource} utilization` : `failed to get ${resource} usage`;
        const err = `${what}: ${(e as Error).message}`;
        const reason = key === 'resource' ? 'FailedGetResourceMetric' : 'FailedGetContainerResourceMetric';
        statuses[i] = { type: '' };
        invalid++;
        firstError ??= { reason, message: `the HPA was unable to compute the replica count: ${err}`, error: err };
        await event('Warning', reason, err);
      }
    }
    // All metrics invalid, or some invalid and the valid ones would scale down: no scaling on this.
    if (specs.length && (invalid >= specs.length || (invalid > 0 && replicas < currentReplicas))) {
      setCondition(status, 'ScalingActive', 'False', firstError!.reason, firstError!.message, nowDate);
      return { replicas: -1, metric, statuses, error: `invalid metrics (${invalid} invalid out of ${specs.length}), first error is: ${firstError!.error}` };
    }
    setCondition(status, 'ScalingActive', 'True', 'ValidMetricFound', `the HPA was able to successfully calculate a replica count from ${metric}`, nowDate);
    return { replicas, metric, statuses, error: '' };
  }

  /** normalizeDesiredReplicas (no behavior). */
  function normalize(st: State, current: number, desired: number, min: number, max: number, status: Obj, nowDate: Date): number {
    const stabilized = stabilize(st.recommendations, desired, downscaleMs, nowDate.getTime());
    if (stabilized !== desired) setCondition(status, 'AbleToScale', 'True', 'ScaleDownStabilized', 'recent recommendations were higher than current one, applying the highest recent recommendation', nowDate);
    else setCondition(status, 'AbleToScale', 'True', 'ReadyForNewScale', 'recommended size matches current size', nowDate);
    const limited = limitWithRules(current, stabilized, min, max);
    setCondition(status, 'ScalingLimited', limited.replicas === stabilized ? 'False' : 'True', limited.reason, limited.message, nowDate);
    return limited.replicas;
  }

  /** normalizeDesiredReplicasWithBehaviors. */
  function normalizeWithBehaviors(st: State, behavior: Obj, current: number, desired: number, min: number, max: number, status: Obj, nowDate: Date): number {
    const now = nowDate.getTime();
    const up: ScalingRules = behavior.scaleUp ?? {};
    const down: ScalingRules = behavior.scaleDown ?? {};
    const s = stabilizeWithBehaviors(
      st.recommendations,
      { current, desired, upWindowSeconds: up.stabilizationWindowSeconds ?? 0, downWindowSeconds: down.stabilizationWindowSeconds ?? downscaleMs / 1000 },
      now,
    );
    if (s.replicas !== desired) setCondition(status, 'AbleToScale', 'True', s.reason, s.message, nowDate);
    else setCondition(status, 'AbleToScale', 'True', 'ReadyForNewScale', 'recommended size matches current size', nowDate);
    const limited = limitWithBehaviors({ current, desired: s.replicas, min, max, scaleUp: up, scaleDown: down }, st.scaleUpEvents, st.scaleDownEvents, now);
    setCondition(status, 'ScalingLimited', limited.replicas === s.replicas ? 'False' : 'True', limited.reason, limited.message, nowDate);
    return limited.replicas;
  }

  return {
    name: CONTROLLER_NAME,
    identity: controllerUser('horizontal-pod-autoscaler'),
    watches: [hpas],
    keys: (ev) => [`${ev.object.metadata.namespace}/${ev.object.metadata.name}`],
    async allKeys(ctx) {
      return (await readerOf(ctx).list(hpas, undefined)).map((h) => `${h.metadata.namespace}/${h.metadata.name}`);
    },
    reconcile,
  };
}

/** A milli-unit average as a Quantity: cpu in millicores ("250m"), bytes whole when they are. */
function formatMilli(m: number, resource: string): string {
  if (resource === 'cpu' || m % 1000 !== 0) return `${m}m`;
  return String(m / 1000);
}
