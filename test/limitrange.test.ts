// LimitRange (lambdas/kinds/core/limitrange.ts) and the LimitRanger admission
// (lambdas/apiserver/admission-limitranger.ts): kube's defaulting and validation messages, then a real
// apiserver over HTTPS on both storage backends: container defaults and their annotation, every kind of
// refusal with kube's 403 text (containers, pod sums, ratios), and claims' storage min/max.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalCluster, type LocalCluster } from '../lambdas/local/server.ts';
import { apiResourceList } from '../lambdas/apiserver/discovery.ts';
import { create, refusal, strategyOf, table } from './support/kinds.ts';
import { testStores } from './support/backends.ts';
import { call } from './support/api-call.ts';

const limitRanges = strategyOf('', 'v1', 'limitranges');
const lr = (limits: any[], name = 'lr') => ({ metadata: { name, namespace: 'default' }, spec: { limits } });

describe('LimitRange kind', () => {
  it('is served as kube serves it, with the generic Name / Created At table', () => {
    expect(apiResourceList('', 'v1')!.resources.find((r) => r.name === 'limitranges')).toMatchObject({ kind: 'LimitRange', namespaced: true, shortNames: ['limits'] });
    expect(table(limitRanges, [create(limitRanges, lr([]))]).columns).toEqual(['Name', 'Created At']);
  });

  it('defaults a Container item: the default limit from max, the default request from the default limit, else min', () => {
    const o = create(limitRanges, lr([{ type: 'Container', max: { cpu: '2', memory: '1Gi' }, default: { memory: '512Mi' }, min: { cpu: '100m', 'ephemeral-storage': '1Gi' } }]));
    expect(o.spec.limits[0]).toEqual({
      type: 'Container',
      max: { cpu: '2', memory: '1Gi' },
      min: { cpu: '100m', 'ephemeral-storage': '1Gi' },
      default: { cpu: '2', memory: '512Mi' },
      defaultRequest: { cpu: '2', memory: '512Mi', 'ephemeral-storage': '1Gi' },
    });
  });

  it.each([
    // Defaulting runs first (default and defaultRequest become max), so kube reports all three.
    [
      [{ type: 'Container', min: { cpu: '2' }, max: { cpu: '1' } }],
      '[spec.limits[0].min[cpu]: Invalid value: "2": min value 2 is greater than max value 1, spec.limits[0].defaultRequest[cpu]: Invalid value: "1": min value 2 is greater than default request value 1, spec.limits[0].default[cpu]: Invalid value: "2": min value 2 is greater than default value 1]',
    ],
    [[{ type: 'Pod', min: { cpu: '2' }, max: { cpu: '1' } }], 'spec.limits[0].min[cpu]: Invalid value: "2": min value 2 is greater than max value 1'],
    [[{ type: 'Pod', default: { cpu: '1' } }], "spec.limits[0].default: Forbidden: may not be specified when `type` is 'Pod'"],
    [[{ type: 'Container', default: { cpu: '1' }, defaultRequest: { cpu: '2' } }], 'spec.limits[0].defaultRequest[cpu]: Invalid value: "2": default request value 2 is greater than default limit value 1'],
    [[{ type: 'Container', maxLimitRequestRatio: { cpu: '500m' } }], 'spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: "500m": ratio 500m is less than 1'],
    [[{ type: 'PersistentVolumeClaim', min: { cpu: '1' } }], 'spec.limits[0].limits: Required value: either minimum or maximum storage value is required, but neither was provided'],
    [[{ type: 'Widget' }], 'spec.limits[0].type: Invalid value: "Widget": must be a standard limit type or fully qualified'],
    [[{ type: 'Pod', max: { pods: '1' } }], 'spec.limits[0].max[pods]: Invalid value: "pods": must be a standard resource for containers'],
    [[{ type: 'Pod' }, { type: 'Pod' }], 'spec.limits[1].type: Duplicate value: "Pod"'],
  ])('refuses %j', (limits, message) => {
    expect(refusal(() => create(limitRanges, lr(limits)))).toBe(`LimitRange "lr" is invalid: ${message}`);
  });
});

const stores = await testStores('limitrange');

describe.each(stores)('LimitRanger admission over HTTPS (%s)', (_name, makeStore, enabled) => {
  let c: LocalCluster;
  let dataDir: string;
  beforeAll(async () => {
    if (!enabled) return;
    dataDir = mkdtempSync(join(tmpdir(), 'skiff-limits-'));
    const open = await makeStore();
    c = await startLocalCluster({ port: 0, dataDir, controllers: false, backend: open() });
    await call(c, 'POST', '/api/v1/namespaces', { metadata: { name: 'lim' } });
    const created = await call(c, 'POST', '/api/v1/namespaces/lim/limitranges', {
      metadata: { name: 'limits' },
      spec: {
        limits: [
          { type: 'Container', default: { cpu: '500m', memory: '256Mi' }, defaultRequest: { cpu: '250m', memory: '128Mi' }, max: { cpu: '1' }, min: { memory: '64Mi' }, maxLimitRequestRatio: { cpu: '2' } },
          { type: 'Pod', max: { memory: '1Gi' } },
          { type: 'PersistentVolumeClaim', min: { storage: '1Gi' }, max: { storage: '10Gi' } },
        ],
      },
    });
    expect(created.status).toBe(201);
  }, 60_000);
  afterAll(async () => {
    await c?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const pod = (name: string, containers: any[]) => call(c, 'POST', '/api/v1/namespaces/lim/pods', { metadata: { name }, spec: { containers } });

  it.runIf(enabled)('defaults missing requests and limits and says so in kube\'s annotation', async () => {
    const r = await pod('d', [{ name: 'c', image: 'busybox' }, { name: 'e', image: 'busybox', resources: { requests: { cpu: '300m' }, limits: { cpu: '600m' } } }]);
    expect(r.status).toBe(201);
    expect(r.body.spec.containers[0].resources).toEqual({ requests: { cpu: '250m', memory: '128Mi' }, limits: { cpu: '500m', memory: '256Mi' } });
    expect(r.body.spec.containers[1].resources).toEqual({ requests: { cpu: '300m', memory: '128Mi' }, limits: { cpu: '600m', memory: '256Mi' } });
    expect(r.body.metadata.annotations['kubernetes.io/limit-ranger']).toBe(
      'LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c; memory request for container e; memory limit for container e',
    );
  });

  it.runIf(enabled)('refuses containers over max, under min, and over the ratio with kube\'s 403, writing nothing', async () => {
    const over = await pod('over', [{ name: 'c', image: 'busybox', resources: { limits: { cpu: '1500m' }, requests: { cpu: '1' } } }]);
    expect(over.status).toBe(403);
    expect(over.body).toMatchObject({ reason: 'Forbidden', code: 403, message: 'pods "over" is forbidden: maximum cpu usage per Container is 1, but limit is 1500m' });
    const under = await pod('under', [{ name: 'c', image: 'busybox', resources: { requests: { memory: '32Mi' }, limits: { memory: '32Mi' } } }]);
    expect(under.body.message).toBe('pods "under" is forbidden: minimum memory usage per Container is 64Mi, but request is 32Mi');
    const both = await pod('both', [{ name: 'c', image: 'busybox', resources: { requests: { memory: '32Mi', cpu: '100m' }, limits: { memory: '64Mi', cpu: '2' } } }]);
    expect(both.body.message).toBe(
      'pods "both" is forbidden: [minimum memory usage per Container is 64Mi, but request is 32Mi, maximum cpu usage per Container is 1, but limit is 2, cpu max limit to request ratio per Container is 2, but provided ratio is 20.000000]',
    );
    const ratio = await pod('ratio', [{ name: 'c', image: 'busybox', resources: { requests: { cpu: '200m' }, limits: { cpu: '800m' } } }]);
    expect(ratio.body.message).toBe('pods "ratio" is forbidden: cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000');
    expect((await call(c, 'GET', '/api/v1/namespaces/lim/pods/ratio')).status).toBe(404);
  });

  it.runIf(enabled)('bounds the pod\'s sum by a Pod item', async () => {
    const big = { name: 'a', image: 'busybox', resources: { limits: { memory: '600Mi' }, requests: { memory: '600Mi' } } };
    const r = await pod('sum', [big, { ...big, name: 'b' }]);
    expect(r.status).toBe(403);
    expect(r.body.message).toBe('pods "sum" is forbidden: maximum memory usage per Pod is 1Gi, but limit is 1200Mi');
  });

  it.runIf(enabled)('bounds claims\' storage requests on create and on resize', async () => {
    const claim = (name: string, storage: string) => ({ metadata: { name }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage } } } });
    const small = await call(c, 'POST', '/api/v1/namespaces/lim/persistentvolumeclaims', claim('small', '500Mi'));
    expect(small.status).toBe(403);
    expect(small.body.message).toBe('persistentvolumeclaims "small" is forbidden: minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi');
    const large = await call(c, 'POST', '/api/v1/namespaces/lim/persistentvolumeclaims', claim('large', '20Gi'));
    expect(large.body.message).toBe('persistentvolumeclaims "large" is forbidden: maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi');
    const ok = await call(c, 'POST', '/api/v1/namespaces/lim/persistentvolumeclaims', claim('ok', '5Gi'));
    expect(ok.status).toBe(201);
    const resized = { ...ok.body, spec: { ...ok.body.spec, resources: { requests: { storage: '11Gi' } } } };
    const r = await call(c, 'PUT', '/api/v1/namespaces/lim/persistentvolumeclaims/ok', resized);
    expect(r.status).toBe(403);
    expect(r.body.message).toBe('persistentvolumeclaims "ok" is forbidden: maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 11Gi');
  });

  it.runIf(enabled)('refuses a bad LimitRange with kube\'s 422', async () => {
    const r = await call(c, 'POST', '/api/v1/namespaces/lim/limitranges', { metadata: { name: 'bad' }, spec: { limits: [{ type: 'Pod', min: { cpu: '2' }, max: { cpu: '1' } }] } });
    expect(r.status).toBe(422);
    expect(r.body.message).toBe('LimitRange "bad" is invalid: spec.limits[0].min[cpu]: Invalid value: "2": min value 2 is greater than max value 1');
  });
});
