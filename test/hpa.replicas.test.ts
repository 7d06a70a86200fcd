// The HPA's arithmetic (controllers/horizontal-replicas.ts) against kube-controller-manager's own test
// cases: pkg/controller/podautoscaler/replica_calculator_test.go (TestReplicaCalc*: two containers a pod,
// each with the request and usage level given; pods Running and Ready since a "cool" start 3 minutes ago
// unless the case says otherwise; the tests' CPU initialization period of 2 minutes and initial readiness
// delay of 10 s), and the rate limits and stabilization of horizontal.go with its default behavior.

import { describe, expect, it } from 'vitest';
import {
  limitWithBehaviors,
  limitWithRules,
  ReplicaCalcError,
  resourceReplicas,
  scaleDownLimit,
  scaleUpLimit,
  stabilize,
  stabilizeWithBehaviors,
  storeScaleEvent,
  type PodMetric,
  type Recommendation,
  type ScaleEvent,
} from '../lambdas/controllers/horizontal-replicas.ts';
import { parseQuantity } from '../lambdas/machinery/quantity.ts';

const NOW = Date.parse('2026-12-05T10:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const COOL = NOW - 3 * 60_000;
const HOT = NOW;
const CONTAINERS = 2;
const milli = (q: unknown) => Math.ceil(parseQuantity(String(q)) * 1000 - 1e-6);
const OPTS = { now: NOW, tolerance: 0.1, cpuInitializationPeriodMs: 2 * 60_000, delayOfInitialReadinessStatusMs: 10_000 };

interface Case {
  current: number;
  expected?: number;
  error?: string;
  readiness?: ('True' | 'False')[];
  phase?: string[];
  start?: number[];
  deleting?: boolean[];
  requests: string[];
  levels: number[];
  target: number;
  utilization?: number;
  value?: number;
}

function run(c: Case) {
  const n = Math.max(c.requests.length, c.readiness?.length ?? 0, c.phase?.length ?? 0);
  const pods = Array.from({ length: n }, (_, i) => {
    const start = c.start?.[i] ?? COOL;
    return {
      metadata: { name: `test-pod-${i}`, ...(c.deleting?.[i] ? { deletionTimestamp: iso(NOW) } : {}) },
      spec: {
        containers: Array.from({ length: CONTAINERS }, (_, j) => ({ name: `c${j}`, resources: c.requests[i] === undefined ? {} : { requests: { cpu: c.requests[i] } } })),
      },
      status: {
        phase: c.phase?.[i] ?? 'Running',
        startTime: iso(start),
        conditions: [{ type: 'Ready', status: c.readiness?.[i] ?? 'True', lastTransitionTime: iso(start) }],
      },
    };
  });
  const metrics = new Map<string, PodMetric>(c.levels.map((l, i) => [`test-pod-${i}`, { value: l * CONTAINERS, timestamp: NOW, windowMs: 60_000 }]));
  return resourceReplicas(c.current, { utilization: c.target }, 'cpu', undefined, pods, metrics, milli, OPTS);
}

const CASES: Record<string, Case> = {
  ScaleUp: { current: 3, expected: 5, requests: ['1.0', '1.0', '1.0'], levels: [300, 500, 700], target: 30, utilization: 50, value: 2 * 500 },
  ScaleUpUnreadyLessScale: { current: 3, expected: 4, readiness: ['False', 'True', 'True'], requests: ['1.0', '1.0', '1.0'], levels: [300, 500, 700], target: 30, utilization: 60, value: 2 * 600 },
  ScaleUpHotCpuLessScale: { current: 3, expected: 4, start: [HOT, COOL, COOL], requests: ['1.0', '1.0', '1.0'], levels: [300, 500, 700], target: 30, utilization: 60, value: 2 * 600 },
  ScaleUpUnreadyNoScale: { current: 3, expected: 3, readiness: ['True', 'False', 'False'], requests: ['1.0', '1.0', '1.0'], levels: [400, 500, 700], target: 30, utilization: 40, value: 2 * 400 },
  ScaleHotCpuNoScale: { current: 3, expected: 3, readiness: ['True', 'False', 'False'], start: [COOL, HOT, HOT], requests: ['1.0', '1.0', '1.0'], levels: [400, 500, 700], target: 30, utilization: 40, value: 2 * 400 },
  ScaleUpIgnoresFailedPods: { current: 2, expected: 4, readiness: ['True', 'True', 'False', 'False'], phase: ['Running', 'Running', 'Failed', 'Failed'], requests: ['1.0', '1.0', '1.0', '1.0'], levels: [500, 700], target: 30, utilization: 60, value: 2 * 600 },
  ScaleUpIgnoresDeletionPods: { current: 2, expected: 4, readiness: ['True', 'True', 'False', 'False'], deleting: [false, false, true, true], requests: ['1.0', '1.0', '1.0', '1.0'], levels: [500, 700], target: 30, utilization: 60, value: 2 * 600 },
  ScaleDown: { current: 5, expected: 3, requests: ['1.0', '1.0', '1.0', '1.0', '1.0'], levels: [100, 300, 500, 250, 250], target: 50, utilization: 28, value: 2 * 280 },
  ScaleDownIncludeUnreadyPods: { current: 5, expected: 2, readiness: ['True', 'True', 'True', 'False', 'False'], requests: ['1.0', '1.0', '1.0', '1.0', '1.0'], levels: [100, 300, 500, 250, 250], target: 50, utilization: 30, value: 2 * 300 },
  ScaleDownExcludeUnscheduledPods: { current: 5, expected: 1, readiness: ['True', 'False', 'False', 'False', 'False'], phase: ['Running', 'Pending', 'Pending', 'Pending', 'Pending'], requests: ['1.0', '1.0', '1.0', '1.0', '1.0'], levels: [100], target: 50, utilization: 10, value: 2 * 100 },
  ScaleDownIgnoreHotCpuPods: { current: 5, expected: 2, start: [COOL, COOL, COOL, HOT, HOT], requests: ['1.0', '1.0', '1.0', '1.0', '1.0'], levels: [100, 300, 500, 250, 250], target: 50, utilization: 30, value: 2 * 300 },
  ScaleDownIgnoresFailedPods: {
    current: 5, expected: 3, readiness: ['True', 'True', 'True', 'True', 'True', 'False', 'False'], phase: ['Running', 'Running', 'Running', 'Running', 'Running', 'Failed', 'Failed'],
    requests: ['1.0', '1.0', '1.0', '1.0', '1.0', '1.0', '1.0'], levels: [100, 300, 500, 250, 250], target: 50, utilization: 28, value: 2 * 280,
  },
  ScaleDownIgnoresDeletionPods: {
    current: 5, expected: 3, readiness: ['True', 'True', 'True', 'True', 'True', 'False', 'False'], deleting: [false, false, false, false, false, true, true],
    requests: ['1.0', '1.0', '1.0', '1.0', '1.0', '1.0', '1.0'], levels: [100, 300, 500, 250, 250], target: 50, utilization: 28, value: 2 * 280,
  },
  Tolerance: { current: 3, expected: 3, requests: ['0.9', '1.0', '1.1'], levels: [1010, 1030, 1020], target: 100, utilization: 102, value: 2 * 1020 },
  SuperfluousMetrics: { current: 4, expected: 24, requests: ['1.0', '1.0', '1.0', '1.0'], levels: [4000, 9500, 3000, 7000, 3200, 2000], target: 100, utilization: 587, value: 2 * 5875 },
  MissingMetrics: { current: 4, expected: 3, requests: ['1.0', '1.0', '1.0', '1.0'], levels: [400, 95], target: 100, utilization: 24, value: 495 },
  MissingMetricsNoChangeEq: { current: 2, expected: 2, requests: ['1.0', '1.0'], levels: [1000], target: 100, utilization: 100, value: 2 * 1000 },
  MissingMetricsNoChangeGt: { current: 2, expected: 2, requests: ['1.0', '1.0'], levels: [1900], target: 100, utilization: 190, value: 2 * 1900 },
  MissingMetricsNoChangeLt: { current: 2, expected: 2, requests: ['1.0', '1.0'], levels: [600], target: 100, utilization: 60, value: 2 * 600 },
  MissingMetricsUnreadyChange: { current: 3, expected: 3, readiness: ['False', 'True', 'True'], requests: ['1.0', '1.0', '1.0'], levels: [100, 450], target: 50, utilization: 45, value: 2 * 450 },
  MissingMetricsHotCpuNoChange: { current: 3, expected: 3, start: [HOT, COOL, COOL], requests: ['1.0', '1.0', '1.0'], levels: [100, 450], target: 50, utilization: 45, value: 2 * 450 },
  MissingMetricsUnreadyScaleUp: { current: 3, expected: 4, readiness: ['False', 'True', 'True'], requests: ['1.0', '1.0', '1.0'], levels: [100, 2000], target: 50, utilization: 200, value: 2 * 2000 },
  MissingMetricsHotCpuScaleUp: { current: 3, expected: 4, readiness: ['False', 'True', 'True'], start: [HOT, COOL, COOL], requests: ['1.0', '1.0', '1.0'], levels: [100, 2000], target: 50, utilization: 200, value: 2 * 2000 },
  MissingMetricsUnreadyScaleDown: { current: 4, expected: 3, readiness: ['False', 'True', 'True', 'True'], requests: ['1.0', '1.0', '1.0', '1.0'], levels: [100, 100, 100], target: 50, utilization: 10, value: 2 * 100 },
  DuringRollingUpdateWithMaxSurge: { current: 2, expected: 2, phase: ['Running', 'Running', 'Running'], requests: ['1.0', '1.0', '1.0'], levels: [100, 100], target: 50, utilization: 10, value: 2 * 100 },
  EmptyCPURequest: { current: 1, error: 'missing request for', requests: [undefined as unknown as string], levels: [200], target: 100 },
};

describe('replica calculator (kube TestReplicaCalc* cases)', () => {
  for (const [name, c] of Object.entries(CASES)) {
    it(name, () => {
      if (c.error) {
        expect(() => run(c)).toThrow(ReplicaCalcError);
        expect(() => run(c)).toThrow(c.error);
        return;
      }
      const r = run(c);
      expect(r.replicas).toBe(c.expected);
      expect(r.utilization).toBe(c.utilization);
      expect(r.rawAverage).toBe(c.value);
    });
  }

  it('EmptyMetrics and no pods are errors with kube\'s words', () => {
    expect(() => run({ current: 4, requests: ['1.0', '1.0', '1.0'], levels: [], target: 100 })).toThrow('did not receive metrics for targeted pods (pods might be unready)');
    expect(() => resourceReplicas(1, { utilization: 50 }, 'cpu', undefined, [], new Map(), milli, OPTS)).toThrow('no pods returned by selector while calculating replica count');
  });

  it('ComputedToleranceAlgImplementation: scales just outside the tolerance, not just inside it', () => {
    // 10 pods using 150m each of ~300m requested (50%); a target a hair past 1/(2*(1-0.1)) scales down.
    const requests = [400, 200, 310, 290, 302, 298, 301, 299, 300, 300].map((m) => `${m}m`);
    const levels = Array(10).fill(150);
    const exact = Math.abs(1 / (2 * (1 - 0.1))) + 0.01;
    const target = Math.trunc(exact * 100);
    expect(run({ current: 10, requests, levels, target }).replicas).toBe(Math.ceil((1500 / (3000 * exact)) * 10));
    const closer = Math.trunc((Math.abs(1 / (2 * (1 - 0.1))) + 0.004) * 100);
    expect(run({ current: 10, requests, levels, target: closer }).replicas).toBe(10);
  });

  it('an average-value target (GetRawResourceReplicas) compares usage per pod', () => {
    const pods = ['a', 'b'].map((name) => ({ metadata: { name }, spec: { containers: [{ name: 'c' }] }, status: { phase: 'Running', startTime: iso(COOL), conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: iso(COOL) }] } }));
    const m = new Map<string, PodMetric>([['a', { value: 200_000 * 1000, timestamp: NOW, windowMs: 60_000 }], ['b', { value: 400_000 * 1000, timestamp: NOW, windowMs: 60_000 }]]);
    // 300 KB average against a 100 KB target: three times as many.
    const r = resourceReplicas(2, { averageMilli: 100_000 * 1000 }, 'memory', undefined, pods, m, milli, OPTS);
    expect(r).toEqual({ replicas: 6, utilization: undefined, rawAverage: 300_000 * 1000 });
  });
});

// The default behavior (SetDefaults_HorizontalPodAutoscalerBehavior).
const UP = { stabilizationWindowSeconds: 0, selectPolicy: 'Max', policies: [{ type: 'Pods', value: 4, periodSeconds: 15 }, { type: 'Percent', value: 100, periodSeconds: 15 }] };
const DOWN = { selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }] };

describe('rate limits and stabilization (horizontal.go)', () => {
  it('scale-up limit: the larger of +4 pods and +100% per 15 s (Max), the smaller with Min, none when Disabled', () => {
    expect(scaleUpLimit(1, [], [], UP, NOW)).toBe(5);
    expect(scaleUpLimit(10, [], [], UP, NOW)).toBe(20);
    expect(scaleUpLimit(10, [], [], { ...UP, selectPolicy: 'Min' }, NOW)).toBe(14);
    expect(scaleUpLimit(10, [], [], { ...UP, selectPolicy: 'Disabled' }, NOW)).toBe(10);
    // Replicas added within the period count against it: 5 -> 10 a moment ago, so the period started at 5.
    const up: ScaleEvent[] = [{ change: 5, timestamp: NOW - 5_000, outdated: false }];
    expect(scaleUpLimit(10, up, [], UP, NOW)).toBe(10);
    expect(scaleUpLimit(10, up, [], UP, NOW + 20_000)).toBe(20);
  });

  it('scale-down limit: Percent rounds down, Min picks the smaller change', () => {
    expect(scaleDownLimit(10, [], [], DOWN, NOW)).toBe(0);
    const two = { selectPolicy: 'Max', policies: [{ type: 'Pods', value: 2, periodSeconds: 60 }, { type: 'Percent', value: 25, periodSeconds: 60 }] };
    expect(scaleDownLimit(10, [], [], two, NOW)).toBe(7); // min(8, 7.5 -> 7)
    expect(scaleDownLimit(10, [], [], { ...two, selectPolicy: 'Min' }, NOW)).toBe(8);
    const down: ScaleEvent[] = [{ change: 2, timestamp: NOW - 10_000, outdated: false }];
    expect(scaleDownLimit(8, [], down, two, NOW)).toBe(7); // the period started at 10
  });

  it('with behaviors: stabilized within the windows, then limited and clamped with kube\'s reasons', () => {
    const recs: Recommendation[] = [{ replicas: 6, timestamp: NOW - 60_000 }];
    // Down window 300 s: the highest recent recommendation (6) wins over 2.
    expect(stabilizeWithBehaviors(recs, { current: 6, desired: 2, upWindowSeconds: 0, downWindowSeconds: 300 }, NOW)).toMatchObject({ replicas: 6, reason: 'ScaleDownStabilized' });
    // A 30 s window has forgotten it.
    expect(stabilizeWithBehaviors([{ replicas: 6, timestamp: NOW - 60_000 }], { current: 6, desired: 2, upWindowSeconds: 0, downWindowSeconds: 30 }, NOW).replicas).toBe(2);
    expect(limitWithBehaviors({ current: 1, desired: 50, min: 1, max: 10, scaleUp: UP, scaleDown: DOWN }, [], [], NOW)).toEqual({
      replicas: 5,
      reason: 'ScaleUpLimit',
      message: 'the desired replica count is increasing faster than the maximum scale rate',
    });
    expect(limitWithBehaviors({ current: 1, desired: 50, min: 1, max: 3, scaleUp: UP, scaleDown: DOWN }, [], [], NOW)).toMatchObject({ replicas: 3, reason: 'TooManyReplicas' });
    expect(limitWithBehaviors({ current: 5, desired: 0, min: 2, max: 10, scaleUp: UP, scaleDown: DOWN }, [], [], NOW)).toMatchObject({ replicas: 2, reason: 'TooFewReplicas' });
    expect(limitWithBehaviors({ current: 5, desired: 4, min: 1, max: 10, scaleUp: UP, scaleDown: DOWN }, [], [], NOW)).toMatchObject({ replicas: 4, reason: 'DesiredWithinRange' });
  });

  it('without behavior: the down-scale window keeps the highest recommendation; double-or-4 and min/max', () => {
    const recs: Recommendation[] = [];
    expect(stabilize(recs, 8, 300_000, NOW - 100_000)).toBe(8);
    expect(stabilize(recs, 3, 300_000, NOW)).toBe(8);
    expect(stabilize(recs, 3, 300_000, NOW + 300_000)).toBe(3);
    expect(limitWithRules(1, 50, 1, 10)).toMatchObject({ replicas: 4, reason: 'ScaleUpLimit' });
    expect(limitWithRules(3, 50, 1, 10)).toMatchObject({ replicas: 6, reason: 'ScaleUpLimit' });
    expect(limitWithRules(3, 50, 1, 5)).toMatchObject({ replicas: 5, reason: 'TooManyReplicas' });
    expect(limitWithRules(3, 0, 2, 5)).toMatchObject({ replicas: 2, reason: 'TooFewReplicas' });
  });

  it('scale events older than the longest policy period are reused, not accumulated', () => {
    const ev: ScaleEvent[] = [];
    storeScaleEvent(ev, UP, 2, NOW);
    storeScaleEvent(ev, UP, 3, NOW + 5_000);
    expect(ev).toHaveLength(2);
    storeScaleEvent(ev, UP, 1, NOW + 60_000);
    expect(ev).toHaveLength(2);
    expect(ev.find((e) => e.timestamp === NOW + 60_000)?.change).toBe(1);
  });
});
