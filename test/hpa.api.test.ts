// The HorizontalPodAutoscaler API (issue #17 item 2) on a local cluster: one object at autoscaling/v2 (stored)
// and autoscaling/v1 (converted as kube-apiserver converts: pkg/apis/autoscaling/v1/conversion.go), through
// stock kubectl and the official Python client; kubectl autoscale, get (its columns), describe, explain
// and apply; watches at v1; bad input refused with kube's Status and the store unchanged.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { call } from './support/api-call.ts';
import { pythonClient, type PythonClient } from './support/python-client.ts';
import { until } from './support/until.ts';
import { widget, widgetCRD } from './apiextensions.fixtures.ts';

const py = await pythonClient();
const V1 = '/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers';
const V2 = '/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers';
const ref = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' };

describe('HorizontalPodAutoscaler at autoscaling/v2 and v1', () => {
  let c: TestCluster;
  beforeAll(async () => {
    // No agent: the controller finds no metrics (ScalingActive False), which these tests do not need.
    c = await startTestCluster({ agents: 0 });
    expect((await c.kubectl(['create', 'deployment', 'web', '--image=busybox', '--replicas=2'])).code).toBe(0);
  }, 60_000);
  afterAll(async () => {
    await c?.destroy();
  });

  it('discovery lists both versions, v2 preferred; kubectl explain reads v2\'s schema', async () => {
    const g = await call(c, 'GET', '/apis/autoscaling');
    expect(g.body.versions.map((v: any) => v.version)).toEqual(['v2', 'v1']);
    expect(g.body.preferredVersion.version).toBe('v2');
    for (const v of ['v1', 'v2']) {
      const list = await call(c, 'GET', `/apis/autoscaling/${v}`);
      expect(list.body.resources.map((r: any) => r.name)).toEqual(['horizontalpodautoscalers', 'horizontalpodautoscalers/status']);
      expect(list.body.resources[0]).toMatchObject({ kind: 'HorizontalPodAutoscaler', namespaced: true, shortNames: ['hpa'], categories: ['all'] });
    }
    const ex = await c.kubectl(['explain', 'hpa.spec.metrics.resource.target']);
    expect(ex.code, ex.stderr).toBe(0);
    expect(ex.stdout).toContain('VERSION:    v2');
    expect(ex.stdout).toContain('averageUtilization');
    const ex1 = await c.kubectl(['explain', 'hpa.spec', '--api-version=autoscaling/v1']);
    expect(ex1.stdout).toContain('targetCPUUtilizationPercentage');
  });

  it('kubectl autoscale (v1 protobuf) makes a v2 object; get shows kubectl\'s columns; describe works', async () => {
    const r = await c.kubectl(['autoscale', 'deployment', 'web', '--cpu-percent=50', '--min=1', '--max=5']);
    expect(r.code, r.stderr).toBe(0);
    const hpa = JSON.parse((await c.kubectl(['get', 'hpa', 'web', '-o', 'json'])).stdout);
    expect(hpa).toMatchObject({
      apiVersion: 'autoscaling/v2',
      spec: { scaleTargetRef: ref, minReplicas: 1, maxReplicas: 5, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } }] },
    });
    // No behavior given: none stored (the controller applies kube's defaults).
    expect(hpa.spec.behavior).toBeUndefined();
    const table = (await c.kubectl(['get', 'hpa'])).stdout.trim().split('\n');
    expect(table[0]!.split(/\s{2,}/)).toEqual(['NAME', 'REFERENCE', 'TARGETS', 'MINPODS', 'MAXPODS', 'REPLICAS', 'AGE']);
    expect(table[1]).toMatch(/^web\s+Deployment\/web\s+cpu: <unknown>\/50%\s+1\s+5\s+\d\s+\d+s$/);
    const d = await c.kubectl(['describe', 'hpa', 'web']);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/Reference:\s+Deployment\/web/);
    expect(d.stdout).toMatch(/resource cpu on pods\s+\(as a percentage of request\):\s+<unknown> \/ 50%/);
    // The loop found the Deployment's scale but no metrics (no agent): kube's reasons.
    expect(d.stdout).toMatch(/AbleToScale\s+True\s+SucceededGetScale/);
    expect(d.stdout).toMatch(/ScalingActive\s+False\s+FailedGetResourceMetric\s+the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API/);
    expect((await c.kubectl(['delete', 'hpa', 'web'])).code).toBe(0);
  });

  it('v2 -> v1 -> v2 through kubectl: what v1 cannot say rides in the annotations and comes back', async () => {
    const v2 = {
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name: 'rt', annotations: { team: 'a' } },
      spec: {
        scaleTargetRef: ref,
        minReplicas: 2,
        maxReplicas: 6,
        metrics: [
          { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 60 } } },
          { type: 'Resource', resource: { name: 'memory', target: { type: 'AverageValue', averageValue: '100Mi' } } },
        ],
        behavior: { scaleDown: { stabilizationWindowSeconds: 30, policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] } },
      },
    };
    const applied = await c.kubectl(['apply', '-f', '-'], JSON.stringify(v2));
    expect(applied.code, applied.stderr).toBe(0);
    const stored = JSON.parse((await c.kubectl(['get', 'hpa', 'rt', '-o', 'json'])).stdout);
    // SetDefaults: the rules' unset fields filled (the scale-down window stays as given).
    expect(stored.spec.behavior).toEqual({
      scaleUp: { stabilizationWindowSeconds: 0, selectPolicy: 'Max', policies: [{ type: 'Pods', value: 4, periodSeconds: 15 }, { type: 'Percent', value: 100, periodSeconds: 15 }] },
      scaleDown: { stabilizationWindowSeconds: 30, selectPolicy: 'Max', policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] },
    });

    const one = JSON.parse((await c.kubectl(['get', 'horizontalpodautoscalers.v1.autoscaling', 'rt', '-o', 'json'])).stdout);
    expect(one.apiVersion).toBe('autoscaling/v1');
    expect(one.spec).toEqual({ scaleTargetRef: ref, minReplicas: 2, maxReplicas: 6, targetCPUUtilizationPercentage: 60 });
    const ann = one.metadata.annotations;
    expect(ann.team).toBe('a');
    expect(JSON.parse(ann['autoscaling.alpha.kubernetes.io/metrics'])).toEqual([{ type: 'Resource', resource: { name: 'memory', targetAverageValue: '100Mi' } }]);
    // The behavior as kube writes it there: its internal Go struct, capitalized.
    expect(JSON.parse(ann['autoscaling.alpha.kubernetes.io/behavior'])).toEqual({
      ScaleUp: { StabilizationWindowSeconds: 0, SelectPolicy: 'Max', Policies: [{ Type: 'Pods', Value: 4, PeriodSeconds: 15 }, { Type: 'Percent', Value: 100, PeriodSeconds: 15 }] },
      ScaleDown: { StabilizationWindowSeconds: 30, SelectPolicy: 'Max', Policies: [{ Type: 'Pods', Value: 1, PeriodSeconds: 60 }] },
    });
    // The controller's conditions too (it has synced by now or soon).
    expect(one.status).toMatchObject({ currentReplicas: expect.any(Number), desiredReplicas: expect.any(Number) });

    // A v1 client writes back what it read, changing maxReplicas only: the v2 object keeps everything else.
    one.spec.maxReplicas = 7;
    delete one.metadata.resourceVersion;
    const put = await call(c, 'PUT', `${V1}/rt`, one);
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body.apiVersion).toBe('autoscaling/v1');
    const after = JSON.parse((await c.kubectl(['get', 'hpa', 'rt', '-o', 'json'])).stdout);
    expect(after.spec.maxReplicas).toBe(7);
    expect(after.spec.metrics).toEqual(stored.spec.metrics);
    expect(after.spec.behavior).toEqual(stored.spec.behavior);
    // The round-trip annotations are the conversion's, never stored.
    expect(Object.keys(after.metadata.annotations).sort()).toEqual(['kubectl.kubernetes.io/last-applied-configuration', 'team']);
    expect(after.metadata.generation).toBe(2);

    // A patch through v1 applies to v1's form.
    const patched = await call(c, 'PATCH', `${V1}/rt`, { spec: { targetCPUUtilizationPercentage: 75 } }, 'application/merge-patch+json');
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body.spec.targetCPUUtilizationPercentage).toBe(75);
    const p2 = (await call(c, 'GET', `${V2}/rt`)).body;
    expect(p2.spec.metrics.map((m: any) => [m.resource.name, m.resource.target.averageUtilization ?? m.resource.target.averageValue])).toEqual([
      ['cpu', 75],
      ['memory', '100Mi'],
    ]);
  });

  it('v1 -> v2: a v1 object without a target gets the implicit 80% cpu; lists and watches convert', async () => {
    const made = await call(c, 'POST', V1, { apiVersion: 'autoscaling/v1', kind: 'HorizontalPodAutoscaler', metadata: { name: 'plain' }, spec: { scaleTargetRef: ref, maxReplicas: 3 } });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    expect(made.body).toMatchObject({ apiVersion: 'autoscaling/v1', spec: { minReplicas: 1, maxReplicas: 3, targetCPUUtilizationPercentage: 80 } });
    expect((await call(c, 'GET', `${V2}/plain`)).body.spec.metrics).toEqual([{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } } }]);
    const list = (await call(c, 'GET', V1)).body;
    expect(list).toMatchObject({ apiVersion: 'autoscaling/v1', kind: 'HorizontalPodAutoscalerList' });
    expect(list.items.find((i: any) => i.metadata.name === 'plain').spec.targetCPUUtilizationPercentage).toBe(80);
    // A watch at v1 sends v1 objects.
    const w = c.kubectlSpawn(['get', 'horizontalpodautoscalers.v1.autoscaling', '--watch', '-o', 'json', '--field-selector=metadata.name=plain']);
    let text = '';
    w.stdout!.on('data', (d: Buffer) => (text += d.toString()));
    try {
      await new Promise((r) => setTimeout(r, 1500));
      await call(c, 'PATCH', `${V2}/plain`, { spec: { maxReplicas: 4 } }, 'application/merge-patch+json');
      const deadline = Date.now() + 15_000;
      while (!text.includes('"maxReplicas": 4') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    } finally {
      w.kill();
    }
    expect(text).toContain('"apiVersion": "autoscaling/v1"');
    expect(text).toContain('"maxReplicas": 4');
    expect(text).not.toContain('"apiVersion": "autoscaling/v2"');
  });

  it('scales a custom resource through its scale subresource (5 replicas, max 3: down to 3 without metrics)', async () => {
    expect((await c.kubectl(['apply', '-f', '-'], JSON.stringify(widgetCRD()))).code).toBe(0);
    await until('widgets served', async () => (await call(c, 'GET', '/apis/example.com/v1/namespaces/default/widgets')).status === 200, 20_000, 200);
    const w = await call(c, 'POST', '/apis/example.com/v1/namespaces/default/widgets', widget({ image: 'nginx', replicas: 5 }, 'wd'));
    expect(w.status, JSON.stringify(w.body)).toBe(201);
    const made = await call(c, 'POST', V2, { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: { name: 'wd' }, spec: { scaleTargetRef: { apiVersion: 'example.com/v1', kind: 'Widget', name: 'wd' }, minReplicas: 1, maxReplicas: 3 } });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    await until('the Widget scaled to 3', async () => (await call(c, 'GET', '/apis/example.com/v1/namespaces/default/widgets/wd')).body.spec?.replicas === 3, 20_000, 200);
    // The controller writes the HPA's status after the scale: a read between the two sees the old status.
    await until('the HPA status says 3', async () => (await call(c, 'GET', `${V2}/wd`)).body.status?.desiredReplicas === 3, 20_000, 200);
    const st = (await call(c, 'GET', `${V2}/wd`)).body.status;
    expect(st.desiredReplicas).toBe(3);
    expect(st.conditions.find((x: any) => x.type === 'AbleToScale')).toMatchObject({ status: 'True', reason: 'SucceededRescale', message: 'the HPA controller was able to update the target scale to 3' });
    const events = (await c.kubectl(['get', 'events', '--field-selector', 'involvedObject.name=wd,involvedObject.kind=HorizontalPodAutoscaler', '-o', 'jsonpath={.items[*].message}'])).stdout;
    expect(events).toContain('New size: 3; reason: Current number of replicas above Spec.MaxReplicas');
  }, 60_000);

  it('bad input is a 4xx Status and changes nothing in the store', async () => {
    const before = (await call(c, 'GET', V2)).body;
    const base = { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: { name: 'bad' } };
    const cases: [string, unknown, number, string][] = [
      ['minReplicas 0', { ...base, spec: { scaleTargetRef: ref, minReplicas: 0, maxReplicas: 3 } }, 422, 'spec.minReplicas: Invalid value: 0: must be greater than or equal to 1'],
      ['maxReplicas < minReplicas', { ...base, spec: { scaleTargetRef: ref, minReplicas: 4, maxReplicas: 2 } }, 422, 'spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`'],
      // Not an int32: the decoding refuses it (400, as kube-apiserver's JSON decoding does).
      ['maxReplicas 1e308', { ...base, spec: { scaleTargetRef: ref, maxReplicas: 1e308 } }, 400, 'cannot unmarshal number 1e+308 into Go struct field HorizontalPodAutoscalerSpec.spec.maxReplicas of type int32'],
      ['an unknown metric type', { ...base, spec: { scaleTargetRef: ref, maxReplicas: 3, metrics: [{ type: 'Cosmic' }] } }, 422, 'spec.metrics[0].type: Unsupported value: "Cosmic": supported values: "ContainerResource", "External", "Object", "Pods", "Resource"'],
      ['a metric without its source', { ...base, spec: { scaleTargetRef: ref, maxReplicas: 3, metrics: [{ type: 'Pods' }] } }, 422, 'spec.metrics[0].pods: Required value: must populate information for the given metric source'],
      ['a utilization of 0', { ...base, spec: { scaleTargetRef: ref, maxReplicas: 3, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 0 } } }] } }, 422, 'spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0'],
      ['a bad behavior policy', { ...base, spec: { scaleTargetRef: ref, maxReplicas: 3, behavior: { scaleUp: { selectPolicy: 'Sometimes', policies: [{ type: 'Pods', value: 0, periodSeconds: 1801 }] } } } }, 422, 'spec.behavior.scaleUp.selectPolicy: Unsupported value: "Sometimes": supported values: "Disabled", "Max", "Min"'],
      ['no scale target', { ...base, spec: { maxReplicas: 3 } }, 422, 'spec.scaleTargetRef.kind: Required value'],
    ];
    for (const [what, body, code, message] of cases) {
      const r = await call(c, 'POST', V2, body);
      expect(r.status, what).toBe(code);
      expect(r.body.kind, what).toBe('Status');
      expect(r.body.message, what).toContain(message);
    }
    const policy = await call(c, 'POST', V2, cases[6]![1]);
    expect(policy.body.details.causes.map((x: any) => x.field)).toEqual([
      'spec.behavior.scaleUp.selectPolicy',
      'spec.behavior.scaleUp.policies[0].value',
      'spec.behavior.scaleUp.policies[0].periodSeconds',
    ]);
    // Through v1: kube validates the converted object, so the paths are v2's.
    const v1bad = await call(c, 'POST', V1, { apiVersion: 'autoscaling/v1', kind: 'HorizontalPodAutoscaler', metadata: { name: 'bad' }, spec: { scaleTargetRef: ref, maxReplicas: 3, targetCPUUtilizationPercentage: -5 } });
    expect(v1bad.status).toBe(422);
    expect(v1bad.body.message).toContain('spec.metrics[0].resource.target.averageUtilization: Invalid value: -5: must be greater than 0');
    // A round-trip annotation that is not JSON: 400.
    const badAnn = await call(c, 'POST', V1, { apiVersion: 'autoscaling/v1', kind: 'HorizontalPodAutoscaler', metadata: { name: 'bad', annotations: { 'autoscaling.alpha.kubernetes.io/metrics': '[{' } }, spec: { scaleTargetRef: ref, maxReplicas: 3 } });
    expect(badAnn.status).toBe(400);
    expect(badAnn.body.kind).toBe('Status');
    // Updates of an existing object: refused, the object as it was.
    const rt = (await call(c, 'GET', `${V2}/rt`)).body;
    for (const patch of [{ spec: { minReplicas: 0 } }, { spec: { maxReplicas: 1e308 } }, { spec: { metrics: [{ type: 'Cosmic' }] } }]) {
      const r = await call(c, 'PATCH', `${V2}/rt`, patch, 'application/merge-patch+json');
      expect([400, 422], JSON.stringify(patch)).toContain(r.status);
      expect(r.body.kind).toBe('Status');
    }
    const r1 = await call(c, 'PATCH', `${V1}/rt`, { spec: { minReplicas: 9 } }, 'application/merge-patch+json');
    expect(r1.status).toBe(422);
    const again = (await call(c, 'GET', `${V2}/rt`)).body;
    expect(again.spec).toEqual(rt.spec);
    expect(again.metadata.generation).toBe(rt.metadata.generation);
    const after = (await call(c, 'GET', V2)).body;
    expect(after.items.map((i: any) => i.metadata.name)).toEqual(before.items.map((i: any) => i.metadata.name));
    expect(after.items.map((i: any) => i.spec)).toEqual(before.items.map((i: any) => i.spec));
  });

  it.skipIf(!py)(`the Python client ${py?.version ?? ''}: v2 made, v1 read and replaced, nothing lost; v1 made, v2 read; 422`, async () => {
    const out = await (py as PythonClient).run('hpa.py', c.kubeconfigPath, 'default');
    expect(out.created).toEqual({ minReplicas: 2, scaleUpPolicies: [['Pods', 4, 15], ['Percent', 100, 15]] });
    expect(out.v1).toEqual({
      target: 60,
      min: 2,
      max: 6,
      metricsAnnotation: [{ type: 'Resource', resource: { name: 'memory', targetAverageValue: '100Mi' } }],
      behaviorAnnotation: {
        ScaleUp: { StabilizationWindowSeconds: 0, SelectPolicy: 'Max', Policies: [{ Type: 'Pods', Value: 4, PeriodSeconds: 15 }, { Type: 'Percent', Value: 100, PeriodSeconds: 15 }] },
        ScaleDown: { StabilizationWindowSeconds: 30, SelectPolicy: 'Max', Policies: [{ Type: 'Pods', Value: 1, PeriodSeconds: 60 }] },
      },
    });
    expect(out.afterV1Replace).toEqual({
      max: 8,
      metrics: [
        ['cpu', 'Utilization', 60, null],
        ['memory', 'AverageValue', null, '100Mi'],
      ],
      scaleDown: [30, [['Pods', 1, 60]]],
      annotations: [],
    });
    expect(out.v1ToV2).toEqual({ min: 1, metrics: [['Resource', 'cpu', 'Utilization', 70]], behavior: false });
    expect(out.list).toEqual(expect.arrayContaining(['py1', 'py2']));
    expect(out.invalid).toEqual({ status: 422, reason: 'Invalid', causes: ['spec.minReplicas'] });
  }, 120_000);
});
