// The HPA controller (controllers/horizontal.ts) on the real stores (SQLite, and DynamoDB through moto),
// on a controllable clock, with pod usage given by the test (the agents' real samples are hpa.e2e's): a
// Deployment scaled up through its scale subresource, held by the 300 s down-scale window (and by a
// shorter one when the controller is configured so), then scaled down; a behavior's Pods policy limiting
// the rate; a target without a scale subresource or without metrics reported with kube's conditions; the
// wake-ups a deployed cluster's EventBridge Scheduler would fire (one per HPA and sync period, cancelled
// with the HPA); a change within the sync period waiting for it.

import { describe, expect, it } from 'vitest';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import type { ControllerContext } from '../lambdas/controllers/controller.ts';
import { contextFor } from '../lambdas/controllers/controller.ts';
import { createHorizontalController, type PodMetricsSource } from '../lambdas/controllers/horizontal.ts';
import type { WakeUps } from '../lambdas/controllers/wakeups.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import type { Backend } from '../lambdas/storage/backend.ts';
import { testStores } from './support/backends.ts';
import { controllers as cloudControllers } from '../lambdas/controllers/lambda.ts';
import { streamFilterPatterns } from '../lambdas/controllers/stream.ts';
import { OBJECT_PK_PREFIX } from '../lambdas/storage/dynamodb.ts';
import { resourcePrefix } from '../lambdas/machinery/resources.ts';

const hpas = findResource('autoscaling', 'v2', 'horizontalpodautoscalers')!;
const deployments = findResource('apps', 'v1', 'deployments')!;
const pods = findResource('', 'v1', 'pods')!;
const rcs = findResource('', 'v1', 'replicationcontrollers')!;
const nsRes = findResource('', 'v1', 'namespaces')!;
const eventsRes = findResource('', 'v1', 'events')!;
const stores = await testStores('hpa');
const T0 = Date.parse('2026-12-05T10:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

async function newCtx(open: () => Backend, clock: { t: number }): Promise<ControllerContext> {
  const api = new ApiServer({ backend: open() });
  const ctx = { ...api.controllerContext(), now: () => new Date(clock.t) };
  await ctx.registry.create(nsRes, undefined, { metadata: { name: 'default' } }).catch(() => undefined);
  return ctx;
}

/** A Deployment (no controller runs: its pods are made here, Running and Ready since 10 minutes before T0). */
async function workload(ctx: ControllerContext, name: string, replicas: number) {
  await ctx.registry.create(deployments, 'default', {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: { replicas, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } },
  } as KubeObject);
  for (let i = 0; i < replicas; i++) {
    await ctx.registry.create(pods, 'default', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `${name}-${i}`, labels: { app: name } },
      spec: { containers: [{ name: 'c', image: 'busybox', resources: { requests: { cpu: '100m' } } }] },
    } as KubeObject);
    await ctx.registry.guaranteedUpdate(pods, 'default', `${name}-${i}`, undefined, { subresource: 'status' }, (p) => ({
      ...p,
      status: { phase: 'Running', startTime: iso(T0 - 600_000), conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: iso(T0 - 600_000) }] },
    }));
  }
}

const hpa = (name: string, spec: Record<string, unknown> = {}) =>
  ({
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name },
    spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name }, minReplicas: 1, maxReplicas: 10, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } }], ...spec },
  }) as KubeObject;

/** PodMetrics of the selected pods at `usage[pod]` millicores, sampled at the clock's time. */
function metricsFrom(usage: Record<string, number>, clock: { t: number }): PodMetricsSource {
  return async (ctx, ns, selector) => {
    const [k, v] = selector.split('=');
    const list = (await ctx.registry.list(pods, ns)).items.filter((p) => p.metadata.labels?.[k!] === v && usage[p.metadata.name!] !== undefined);
    return list.map((p) => ({ metadata: { name: p.metadata.name, namespace: ns }, timestamp: iso(clock.t - 5_000), window: '10s', containers: [{ name: 'c', usage: { cpu: `${usage[p.metadata.name!]}m`, memory: '10Mi' } }] }));
  };
}

/** The wake-ups asked for, as EventBridgeWakeUps would get them (its API calls are tested in controllers.cronjob). */
function recordingWakeUps() {
  const at = new Map<string, number>();
  const cancelled: string[] = [];
  const w: WakeUps = {
    async wakeAt(controller, key, when) {
      at.set(`${controller} ${key}`, when.getTime());
    },
    async cancel(controller, key) {
      at.delete(`${controller} ${key}`);
      cancelled.push(`${controller} ${key}`);
    },
  };
  return { w, at, cancelled };
}

const replicasOf = async (ctx: ControllerContext, name: string) => (await ctx.registry.get(deployments, 'default', name)).spec.replicas;
const statusOf = async (ctx: ControllerContext, name: string) => (await ctx.registry.get(hpas, 'default', name)).status;
const cond = (status: any, type: string) => status.conditions.find((c: any) => c.type === type);

for (const [label, makeStore, enabled] of stores) {
  describe.skipIf(!enabled)(`HPA controller on ${label}`, () => {
    it('scales up at once, holds for the 300 s down-scale window, then scales down; wake-ups every 15 s while the HPA exists', async () => {
      const clock = { t: T0 };
      const ctx = await newCtx(await makeStore(), clock);
      await workload(ctx, 'web', 2);
      await ctx.registry.create(hpas, 'default', hpa('web'));
      const usage: Record<string, number> = { 'web-0': 100, 'web-1': 100 };
      const wakes = recordingWakeUps();
      const c = createHorizontalController({ metrics: metricsFrom(usage, clock), wakeUps: wakes.w });
      const sync = () => c.reconcile('default/web', contextFor(c, ctx));

      // 100% of the request against 50%: twice the pods.
      expect(await sync()).toEqual({ requeueAfterMs: 15_000 });
      expect(await replicasOf(ctx, 'web')).toBe(4);
      let st = await statusOf(ctx, 'web');
      expect(st).toMatchObject({ currentReplicas: 0, desiredReplicas: 4, lastScaleTime: iso(T0), observedGeneration: 1 });
      expect(st.currentMetrics).toEqual([{ type: 'Resource', resource: { name: 'cpu', current: { averageUtilization: 100, averageValue: '100m' } } }]);
      expect(cond(st, 'AbleToScale')).toMatchObject({ status: 'True', reason: 'SucceededRescale', message: 'the HPA controller was able to update the target scale to 4' });
      expect(cond(st, 'ScalingActive')).toMatchObject({ status: 'True', reason: 'ValidMetricFound' });
      expect(cond(st, 'ScalingLimited')).toMatchObject({ status: 'False', reason: 'DesiredWithinRange' });
      expect(wakes.at.get('horizontal-pod-autoscaler default/web')).toBe(T0 + 15_000);
      const events = (await ctx.registry.list(eventsRes, 'default')).items.filter((e) => e.involvedObject.name === 'web' && e.involvedObject.kind === 'HorizontalPodAutoscaler');
      expect(events.map((e) => [e.type, e.reason, e.message])).toContainEqual(['Normal', 'SuccessfulRescale', 'New size: 4; reason: cpu resource utilization (percentage of request) above target']);

      // A change (its own status write) within the sync period waits for the period.
      clock.t = T0 + 5_000;
      expect(await sync()).toEqual({ requeueAfterMs: 10_000 });

      // The load drops to 10%: one replica would do, but the last 300 s recommended 4.
      usage['web-0'] = 10;
      usage['web-1'] = 10;
      clock.t = T0 + 15_000;
      await sync();
      expect(await replicasOf(ctx, 'web')).toBe(4);
      st = await statusOf(ctx, 'web');
      expect(cond(st, 'AbleToScale')).toMatchObject({ status: 'True', reason: 'ScaleDownStabilized' });
      expect(st.desiredReplicas).toBe(4);
      expect(wakes.at.get('horizontal-pod-autoscaler default/web')).toBe(T0 + 30_000);

      clock.t = T0 + 301_000;
      await sync();
      expect(await replicasOf(ctx, 'web')).toBe(1);
      st = await statusOf(ctx, 'web');
      expect(st).toMatchObject({ desiredReplicas: 1, lastScaleTime: iso(T0 + 301_000) });
      expect(cond(st, 'AbleToScale').reason).toBe('SucceededRescale');

      // Deleted: no more wake-ups, no state kept.
      await ctx.registry.delete(hpas, 'default', 'web');
      clock.t = T0 + 320_000;
      await sync();
      expect(wakes.at.size).toBe(0);
      expect(wakes.cancelled).toEqual(['horizontal-pod-autoscaler default/web']);
    });

    it('a shorter down-scale window by configuration; a behavior\'s policy limits the rate; min and max clamp', async () => {
      const clock = { t: T0 };
      const ctx = await newCtx(await makeStore(), clock);
      await workload(ctx, 'quick', 2);
      await workload(ctx, 'slow', 2);
      await ctx.registry.create(hpas, 'default', hpa('quick', { maxReplicas: 3 }));
      // Down by at most one pod a minute, no window.
      await ctx.registry.create(hpas, 'default', hpa('slow', { behavior: { scaleDown: { stabilizationWindowSeconds: 0, policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] } } }));
      const usage: Record<string, number> = { 'quick-0': 400, 'quick-1': 400, 'slow-0': 100, 'slow-1': 100 };
      const c = createHorizontalController({ metrics: metricsFrom(usage, clock), downscaleStabilizationMs: 30_000, syncPeriodMs: 1000 });
      const sync = (name: string) => c.reconcile(`default/${name}`, contextFor(c, ctx));

      await sync('quick');
      // 400% asks for 16; max 3.
      expect(await replicasOf(ctx, 'quick')).toBe(3);
      expect(cond(await statusOf(ctx, 'quick'), 'ScalingLimited')).toMatchObject({ status: 'True', reason: 'TooManyReplicas' });
      await sync('slow');
      expect(await replicasOf(ctx, 'slow')).toBe(4);

      for (const p of Object.keys(usage)) usage[p] = 5;
      clock.t = T0 + 31_000;
      await sync('quick');
      expect(await replicasOf(ctx, 'quick')).toBe(1);
      // Within a minute of its scale-up from 2 the period started at 2 replicas: down to 1 is allowed (kube's
      // periodStartReplicas); a minute later, one pod a minute.
      await sync('slow');
      expect(await replicasOf(ctx, 'slow')).toBe(1);
      await ctx.registry.updateScale(deployments, 'default', 'slow', 4);
      clock.t = T0 + 95_000;
      await sync('slow');
      expect(await replicasOf(ctx, 'slow')).toBe(3);
      expect(cond(await statusOf(ctx, 'slow'), 'ScalingLimited')).toMatchObject({ status: 'True', reason: 'ScaleDownLimit' });
      clock.t = T0 + 120_000;
      await sync('slow');
      expect(await replicasOf(ctx, 'slow')).toBe(3); // the minute is not over
      clock.t = T0 + 156_000;
      await sync('slow');
      expect(await replicasOf(ctx, 'slow')).toBe(2);
    });

    it('scales a ReplicationController through its scale subresource too', async () => {
      const clock = { t: T0 };
      const ctx = await newCtx(await makeStore(), clock);
      await workload(ctx, 'rcpods', 2); // the pods (and a Deployment the HPA does not name)
      await ctx.registry.create(rcs, 'default', {
        apiVersion: 'v1',
        kind: 'ReplicationController',
        metadata: { name: 'rc' },
        spec: { replicas: 2, selector: { app: 'rcpods' }, template: { metadata: { labels: { app: 'rcpods' } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } },
      } as KubeObject);
      await ctx.registry.create(hpas, 'default', hpa('rc', { scaleTargetRef: { apiVersion: 'v1', kind: 'ReplicationController', name: 'rc' } }));
      const c = createHorizontalController({ metrics: metricsFrom({ 'rcpods-0': 75, 'rcpods-1': 75 }, clock) });
      await c.reconcile('default/rc', contextFor(c, ctx));
      // 150% of 50%: 3.
      expect((await ctx.registry.get(rcs, 'default', 'rc')).spec.replicas).toBe(3);
      expect((await statusOf(ctx, 'rc')).currentMetrics[0].resource.current).toEqual({ averageUtilization: 75, averageValue: '75m' });
    });

    it('reports what stops it with kube\'s reasons: no scale subresource, no metrics, metrics it has no source for', async () => {
      const clock = { t: T0 };
      const ctx = await newCtx(await makeStore(), clock);
      await workload(ctx, 'web', 2);
      await ctx.registry.create(hpas, 'default', hpa('cm', { scaleTargetRef: { apiVersion: 'v1', kind: 'ConfigMap', name: 'x' } }));
      await ctx.registry.create(hpas, 'default', hpa('nometrics', { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' } }));
      await ctx.registry.create(
        hpas,
        'default',
        hpa('pods', { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' }, metrics: [{ type: 'Pods', pods: { metric: { name: 'qps' }, target: { type: 'AverageValue', averageValue: '10' } } }] }),
      );
      const c = createHorizontalController({ metrics: metricsFrom({}, clock) });
      for (const n of ['cm', 'nometrics', 'pods']) await c.reconcile(`default/${n}`, contextFor(c, ctx));
      expect(cond(await statusOf(ctx, 'cm'), 'AbleToScale')).toMatchObject({
        status: 'False',
        reason: 'FailedGetScale',
        message: 'the HPA controller was unable to get the target\'s current scale: no matches for kind "ConfigMap" in group ""',
      });
      const nm = await statusOf(ctx, 'nometrics');
      expect(cond(nm, 'ScalingActive')).toMatchObject({
        status: 'False',
        reason: 'FailedGetResourceMetric',
        message: 'the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API',
      });
      expect(nm.currentMetrics).toEqual([{ type: '' }]);
      expect(cond(await statusOf(ctx, 'pods'), 'ScalingActive')).toMatchObject({ status: 'False', reason: 'FailedGetPodsMetric' });
      // Nothing was scaled.
      expect(await replicasOf(ctx, 'web')).toBe(2);
    });
  });
}

describe('HPA controller in the controller function', () => {
  it('runs there, acting as its own identity, and HPA writes pass the function\'s stream filter', () => {
    const c = cloudControllers.find((x) => x.name === 'horizontal-pod-autoscaler');
    expect(c?.identity?.username).toBe('system:serviceaccount:kube-system:horizontal-pod-autoscaler');
    expect(c?.watches).toEqual([hpas]);
    const patterns = streamFilterPatterns(...cloudControllers).map((p) => JSON.parse(p));
    expect(patterns[0].dynamodb.Keys.pk.S).toContain(`${OBJECT_PK_PREFIX}${resourcePrefix(hpas)}`);
  });
});
