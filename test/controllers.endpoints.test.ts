// The endpoints controller on the real stores (SQLite, and DynamoDB through moto): readiness flips,
// pod IP changes, named targetPorts, selector changes, service deletion, user-managed Endpoints of
// selectorless services, and at-least-once delivery (duplicated, redelivered, batched events).

import { describe, expect, it } from 'vitest';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { runControllers } from '../lambdas/local/controllers.ts';
import type { ChangeEvent, ControllerContext } from '../lambdas/controllers/controller.ts';
import {
  endpointsController as epc,
  MANAGED_BY_LABEL,
  SLICE_MANAGED_BY_LABEL,
  SLICE_MANAGED_BY_VALUE,
  SLICE_SERVICE_NAME_LABEL,
  MAX_ENDPOINTS_PER_SLICE,
} from '../lambdas/controllers/endpoints.ts';
import { garbageCollector } from '../lambdas/controllers/garbagecollector.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import { labelSelectorFromSet } from '../lambdas/machinery/selectors.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import type { Backend } from '../lambdas/storage/backend.ts';
import { testBackends } from './support/backends.ts';

const svcRes = findResource('', 'v1', 'services')!;
const podsRes = findResource('', 'v1', 'pods')!;
const epRes = findResource('', 'v1', 'endpoints')!;
const nsRes = findResource('', 'v1', 'namespaces')!;
const sliceRes = findResource('discovery.k8s.io', 'v1', 'endpointslices')!;

const backends = await testBackends('ep');

async function newCtx(backend: Backend): Promise<ControllerContext> {
  const ctx = new ApiServer({ backend }).controllerContext();
  await ctx.registry.create(nsRes, undefined, { metadata: { name: 'default' } });
  return ctx;
}

function svc(name: string, selector: Record<string, string> | undefined, ports: any[] = [{ name: 'http', port: 80, targetPort: 'web' }]): KubeObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { ...(selector ? { selector } : {}), ports } };
}

function pod(name: string, labels: Record<string, string>, containerPorts: any[] = [{ name: 'web', containerPort: 8080 }]): KubeObject {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, labels }, spec: { containers: [{ name: 'c', image: 'nginx', ports: containerPorts }] } };
}

/** What the node agent would report: a pod IP and a Ready condition. */
async function setStatus(ctx: ControllerContext, name: string, ip: string | undefined, ready: boolean): Promise<KubeObject> {
  return ctx.registry.guaranteedUpdate(podsRes, 'default', name, undefined, { subresource: 'status' }, (p) => ({
    ...p,
    status: {
      phase: 'Running',
      ...(ip ? { podIP: ip, podIPs: [{ ip }] } : {}),
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
    },
  }));
}

const ev = (type: ChangeEvent['type'], object: KubeObject): ChangeEvent => ({ type, resource: object.kind === 'Pod' ? podsRes : object.kind === 'Service' ? svcRes : epRes, object });

/** Delivers events the way the stream does: keys, deduplicated, then reconcile. */
async function deliver(ctx: ControllerContext, events: ChangeEvent[]): Promise<void> {
  const keys = new Set(events.flatMap((e) => epc.keys(e)));
  for (const k of keys) await epc.reconcile(k, ctx);
}

async function getEp(ctx: ControllerContext, name: string): Promise<KubeObject | undefined> {
  try {
    return await ctx.registry.get(epRes, 'default', name);
  } catch {
    return undefined;
  }
}

/** The controller's slices of a Service (by kube's service-name label), ordered by name. */
async function slicesOf(ctx: ControllerContext, service: string): Promise<KubeObject[]> {
  const l = await ctx.registry.list(sliceRes, 'default', { labelSelector: labelSelectorFromSet({ [SLICE_SERVICE_NAME_LABEL]: service }) });
  return l.items.filter((s) => s.metadata.labels?.[SLICE_MANAGED_BY_LABEL] === SLICE_MANAGED_BY_VALUE).sort((a, b) => (a.metadata.name! < b.metadata.name! ? -1 : 1));
}

/** A Service's one slice (a small Service has one; more is a failure). */
async function getSlice(ctx: ControllerContext, service: string): Promise<KubeObject | undefined> {
  const l = await slicesOf(ctx, service);
  expect(l.length).toBeLessThanOrEqual(1);
  return l[0];
}

async function getSliceNamed(ctx: ControllerContext, name: string): Promise<KubeObject | undefined> {
  try {
    return await ctx.registry.get(sliceRes, 'default', name);
  } catch {
    return undefined;
  }
}

/** A compact view of a slice's endpoints: "ip ready/serving/terminating" and "name:port/protocol". */
function sliceView(s: KubeObject | undefined) {
  if (!s) return undefined;
  return {
    endpoints: (s.endpoints ?? []).map((e: any) => `${e.addresses.join(',')} ${e.conditions.ready}/${e.conditions.serving}/${e.conditions.terminating}`),
    ports: (s.ports ?? []).map((p: any) => `${p.name}:${p.port}/${p.protocol}`),
  };
}

/** A compact view: "ready|notReady" ip lists and ports per subset. */
function view(ep: KubeObject | undefined) {
  return (ep?.subsets ?? []).map((s: any) => ({
    ready: (s.addresses ?? []).map((a: any) => a.ip),
    notReady: (s.notReadyAddresses ?? []).map((a: any) => a.ip),
    ports: (s.ports ?? []).map((p: any) => `${p.name ?? ''}:${p.port}/${p.protocol}`),
  }));
}

for (const [label, open, enabled] of backends) {
  describe.skipIf(!enabled)(`endpoints controller (${label})`, () => {
    it('follows readiness flips and pod IP changes, with full address fields', async () => {
      const ctx = await newCtx(await open());
      const s = await ctx.registry.create(svcRes, 'default', svc('web', { app: 'web' }));
      const p1 = await ctx.registry.create(podsRes, 'default', pod('p1', { app: 'web' }));
      await ctx.registry.create(podsRes, 'default', pod('other', { app: 'db' }));
      await deliver(ctx, [ev('ADDED', s), ev('ADDED', p1)]);
      const ep0 = await getEp(ctx, 'web');
      expect(ep0?.metadata.labels?.[MANAGED_BY_LABEL]).toBe('endpoints-controller');
      expect(view(ep0)).toEqual([]); // no IP yet: not an endpoint

      await deliver(ctx, [ev('MODIFIED', await setStatus(ctx, 'p1', '10.0.0.5', false))]);
      expect(view(await getEp(ctx, 'web'))).toEqual([{ ready: [], notReady: ['10.0.0.5'], ports: ['http:8080/TCP'] }]);

      const ready = await setStatus(ctx, 'p1', '10.0.0.5', true);
      await deliver(ctx, [ev('MODIFIED', ready)]);
      const ep = await getEp(ctx, 'web');
      expect(view(ep)).toEqual([{ ready: ['10.0.0.5'], notReady: [], ports: ['http:8080/TCP'] }]);
      expect(ep!.subsets[0].addresses[0].targetRef).toEqual({ kind: 'Pod', namespace: 'default', name: 'p1', uid: p1.metadata.uid });

      await deliver(ctx, [ev('MODIFIED', await setStatus(ctx, 'p1', '10.0.0.9', true))]);
      expect(view(await getEp(ctx, 'web'))).toEqual([{ ready: ['10.0.0.9'], notReady: [], ports: ['http:8080/TCP'] }]);

      await deliver(ctx, [ev('MODIFIED', await setStatus(ctx, 'p1', '10.0.0.9', false))]);
      expect(view(await getEp(ctx, 'web'))).toEqual([{ ready: [], notReady: ['10.0.0.9'], ports: ['http:8080/TCP'] }]);
    });

    it('resolves named targetPorts per pod and groups addresses by the ports they serve', async () => {
      const ctx = await newCtx(await open());
      await ctx.registry.create(
        svcRes,
        'default',
        svc('multi', { app: 'm' }, [
          { name: 'http', port: 80, targetPort: 'web' },
          { name: 'metrics', port: 9090, targetPort: 9100 },
        ]),
      );
      await ctx.registry.create(podsRes, 'default', pod('a', { app: 'm' }, [{ name: 'web', containerPort: 8080 }]));
      await ctx.registry.create(podsRes, 'default', pod('b', { app: 'm' }, [{ name: 'web', containerPort: 8081 }]));
      await ctx.registry.create(podsRes, 'default', pod('c', { app: 'm' }, [{ name: 'other', containerPort: 1 }]));
      await setStatus(ctx, 'a', '10.0.0.1', true);
      await setStatus(ctx, 'b', '10.0.0.2', true);
      await setStatus(ctx, 'c', '10.0.0.3', true);
      await epc.reconcile('default/multi', ctx);
      const v = view(await getEp(ctx, 'multi'));
      // c lacks "web": it serves only the numeric metrics port.
      expect(v).toHaveLength(3);
      expect(v).toContainEqual({ ready: ['10.0.0.1'], notReady: [], ports: ['http:8080/TCP', 'metrics:9100/TCP'] });
      expect(v).toContainEqual({ ready: ['10.0.0.2'], notReady: [], ports: ['http:8081/TCP', 'metrics:9100/TCP'] });
      expect(v).toContainEqual({ ready: ['10.0.0.3'], notReady: [], ports: ['metrics:9100/TCP'] });
    });

    it('follows selector changes and pod relabeling, and deletes Endpoints of a deleted service', async () => {
      const ctx = await newCtx(await open());
      const s = await ctx.registry.create(svcRes, 'default', svc('web', { app: 'web' }));
      await ctx.registry.create(podsRes, 'default', pod('p1', { app: 'web' }));
      await ctx.registry.create(podsRes, 'default', pod('p2', { app: 'api' }));
      await setStatus(ctx, 'p1', '10.0.0.1', true);
      await setStatus(ctx, 'p2', '10.0.0.2', true);
      await deliver(ctx, [ev('ADDED', s)]);
      expect(view(await getEp(ctx, 'web'))[0].ready).toEqual(['10.0.0.1']);

      const s2 = await ctx.registry.guaranteedUpdate(svcRes, 'default', 'web', undefined, {}, (o) => ({ ...o, spec: { ...o.spec, selector: { app: 'api' } } }));
      await deliver(ctx, [ev('MODIFIED', s2)]);
      expect(view(await getEp(ctx, 'web'))[0].ready).toEqual(['10.0.0.2']);

      // The pod loses the label: the event carries only the new labels, yet the service drops it.
      const p2 = await ctx.registry.guaranteedUpdate(podsRes, 'default', 'p2', undefined, {}, (o) => ({ ...o, metadata: { ...o.metadata, labels: { app: 'none' } } }));
      await deliver(ctx, [ev('MODIFIED', p2)]);
      expect(view(await getEp(ctx, 'web'))).toEqual([]);

      const del = await ctx.registry.delete(svcRes, 'default', 'web');
      await deliver(ctx, [ev('DELETED', del.object)]);
      expect(await getEp(ctx, 'web')).toBeUndefined();
    });

    it('leaves user-managed Endpoints of a selectorless service alone, removes its own when the selector goes', async () => {
      const ctx = await newCtx(await open());
      await ctx.registry.create(svcRes, 'default', svc('ext', undefined, [{ port: 5432 }]));
      await ctx.registry.create(epRes, 'default', {
        apiVersion: 'v1',
        kind: 'Endpoints',
        metadata: { name: 'ext' },
        subsets: [{ addresses: [{ ip: '192.0.2.10' }], ports: [{ port: 5432 }] }],
      });
      await epc.reconcile('default/ext', ctx);
      expect(view(await getEp(ctx, 'ext'))).toEqual([{ ready: ['192.0.2.10'], notReady: [], ports: [':5432/TCP'] }]);
      // Deleting the selectorless service does not touch the user's Endpoints either.
      await ctx.registry.delete(svcRes, 'default', 'ext');
      await epc.reconcile('default/ext', ctx);
      expect(await getEp(ctx, 'ext')).toBeDefined();

      await ctx.registry.create(svcRes, 'default', svc('sel', { app: 'x' }));
      await epc.reconcile('default/sel', ctx);
      expect(await getEp(ctx, 'sel')).toBeDefined();
      await ctx.registry.guaranteedUpdate(svcRes, 'default', 'sel', undefined, {}, (o) => {
        const { selector: _s, ...spec } = o.spec;
        return { ...o, spec };
      });
      await epc.reconcile('default/sel', ctx);
      expect(await getEp(ctx, 'sel')).toBeUndefined();
      expect(await getSlice(ctx, 'sel')).toBeUndefined();
      expect((await epc.allKeys(ctx)).sort()).toEqual([]);
    });

    it('headless services without ports list portless addresses; ClusterIP services without ports list none', async () => {
      const ctx = await newCtx(await open());
      await ctx.registry.create(podsRes, 'default', pod('p', { app: 'h' }));
      await setStatus(ctx, 'p', '10.0.3.1', true);
      await ctx.registry.create(svcRes, 'default', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'headless' }, spec: { clusterIP: 'None', selector: { app: 'h' } } });
      await epc.reconcile('default/headless', ctx);
      expect(view(await getEp(ctx, 'headless'))).toEqual([{ ready: ['10.0.3.1'], notReady: [], ports: [] }]);
    });

    it('gives addresses the hostname of pods whose subdomain names the service (DNS <hostname>.<svc>)', async () => {
      const ctx = await newCtx(await open());
      const named = (name: string, subdomain: string) => ({ ...pod(name, { app: 'db' }), spec: { ...pod(name, {}).spec, hostname: `${name}-host`, subdomain } });
      await ctx.registry.create(podsRes, 'default', named('db-0', 'db'));
      await ctx.registry.create(podsRes, 'default', named('db-1', 'other'));
      await setStatus(ctx, 'db-0', '10.0.4.1', true);
      await setStatus(ctx, 'db-1', '10.0.4.2', true);
      await ctx.registry.create(svcRes, 'default', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'db' }, spec: { clusterIP: 'None', selector: { app: 'db' } } });
      await epc.reconcile('default/db', ctx);
      const addrs = (await getEp(ctx, 'db'))!.subsets[0].addresses;
      expect(addrs.map((a: any) => [a.ip, a.hostname])).toEqual([['10.0.4.1', 'db-0-host'], ['10.0.4.2', undefined]]);
      // The same IP and pod name, now with the service's subdomain: the hostname alone changed, and is written.
      await ctx.registry.delete(podsRes, 'default', 'db-1', { gracePeriodSeconds: 0 });
      await ctx.registry.create(podsRes, 'default', named('db-1', 'db'));
      await setStatus(ctx, 'db-1', '10.0.4.2', true);
      await epc.reconcile('default/db', ctx);
      expect((await getEp(ctx, 'db'))!.subsets[0].addresses.map((a: any) => a.hostname)).toEqual(['db-0-host', 'db-1-host']);
    });

    it('runs on the live change feed: watches services and pods', async () => {
      const ctx = await newCtx(await open());
      const runner = runControllers(ctx, [epc], { resyncMs: 3_600_000 });
      try {
        await ctx.registry.create(svcRes, 'default', svc('live', { app: 'live' }));
        await ctx.registry.create(podsRes, 'default', pod('lp', { app: 'live' }));
        await setStatus(ctx, 'lp', '10.0.4.1', true);
        // About 5 s on moto alone; a loaded CI run took over 10.
        const deadline = Date.now() + 30_000;
        let v: ReturnType<typeof view> = [];
        while (Date.now() < deadline) {
          v = view(await getEp(ctx, 'live'));
          if (v.length && v[0]!.ready.length) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        expect(v).toEqual([{ ready: ['10.0.4.1'], notReady: [], ports: ['http:8080/TCP'] }]);
      } finally {
        await runner.stop();
      }
    });

    it('duplicated, redelivered, stale and batched events reach the clean-delivery state, writing nothing when unchanged', async () => {
      const clean = await newCtx(await open());
      const messy = await newCtx(await open());
      const script = async (ctx: ControllerContext) => {
        const evs: ChangeEvent[] = [];
        evs.push(ev('ADDED', await ctx.registry.create(svcRes, 'default', svc('web', { app: 'web' }))));
        for (const n of ['p3', 'p1', 'p2']) evs.push(ev('ADDED', await ctx.registry.create(podsRes, 'default', pod(n, { app: 'web' }))));
        evs.push(ev('MODIFIED', await setStatus(ctx, 'p1', '10.0.1.1', true)));
        evs.push(ev('MODIFIED', await setStatus(ctx, 'p2', '10.0.1.2', false)));
        evs.push(ev('MODIFIED', await setStatus(ctx, 'p3', '10.0.1.3', true)));
        evs.push(ev('MODIFIED', await setStatus(ctx, 'p3', '10.0.1.4', true)));
        evs.push(ev('DELETED', (await ctx.registry.delete(podsRes, 'default', 'p1')).object));
        return evs;
      };
      for (const e of await script(clean)) await deliver(clean, [e]);
      const evs = await script(messy);
      // Everything at once, reversed, twice over (stale events come last).
      await deliver(messy, [...evs].reverse());
      await deliver(messy, [...evs, ...evs]);
      const want = view(await getEp(clean, 'web'));
      expect(want).toEqual([{ ready: ['10.0.1.4'], notReady: ['10.0.1.2'], ports: ['http:8080/TCP'] }]);
      const got = await getEp(messy, 'web');
      expect(view(got)).toEqual(want);
      const gotSlice = await getSlice(messy, 'web');
      expect(sliceView(gotSlice)).toEqual(sliceView(await getSlice(clean, 'web')));
      expect(sliceView(gotSlice)).toEqual({ endpoints: ['10.0.1.2 false/false/false', '10.0.1.4 true/true/false'], ports: ['http:8080/TCP'] });
      // A further redelivery is a no-op: no new revision.
      await deliver(messy, evs);
      expect((await getEp(messy, 'web'))!.metadata.resourceVersion).toBe(got!.metadata.resourceVersion);
      expect((await getSlice(messy, 'web'))!.metadata.resourceVersion).toBe(gotSlice!.metadata.resourceVersion);
    });

    it('keeps an EndpointSlice per selector service: created, updated on readiness, untouched by a duplicate event, deleted with the service', async () => {
      const ctx = await newCtx(await open());
      const s = await ctx.registry.create(svcRes, 'default', {
        ...svc('web', { app: 'web' }, [{ name: 'http', port: 80, targetPort: 'web', appProtocol: 'http' }]),
        metadata: { name: 'web', labels: { team: 'a' } },
      });
      const p1 = await ctx.registry.create(podsRes, 'default', { ...pod('p1', { app: 'web' }), spec: { ...pod('p1', {}).spec, nodeName: 'node-1' } });
      await deliver(ctx, [ev('ADDED', s), ev('ADDED', p1)]);
      const empty = await getSlice(ctx, 'web');
      expect(sliceView(empty)).toEqual({ endpoints: [], ports: [] });
      expect(empty!.addressType).toBe('IPv4');
      expect(empty!.metadata.labels).toEqual({ team: 'a', [SLICE_SERVICE_NAME_LABEL]: 'web', [SLICE_MANAGED_BY_LABEL]: SLICE_MANAGED_BY_VALUE });
      expect(empty!.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Service', name: 'web', uid: s.metadata.uid, controller: true, blockOwnerDeletion: true }]);

      await deliver(ctx, [ev('MODIFIED', await setStatus(ctx, 'p1', '10.0.0.5', false))]);
      expect(sliceView(await getSlice(ctx, 'web'))).toEqual({ endpoints: ['10.0.0.5 false/false/false'], ports: ['http:8080/TCP'] });

      const ready = await setStatus(ctx, 'p1', '10.0.0.5', true);
      await deliver(ctx, [ev('MODIFIED', ready)]);
      const slice = (await getSlice(ctx, 'web'))!;
      expect(sliceView(slice)).toEqual({ endpoints: ['10.0.0.5 true/true/false'], ports: ['http:8080/TCP'] });
      expect(slice.endpoints[0]).toEqual({
        addresses: ['10.0.0.5'],
        conditions: { ready: true, serving: true, terminating: false },
        nodeName: 'node-1',
        targetRef: { kind: 'Pod', namespace: 'default', name: 'p1', uid: p1.metadata.uid },
      });
      expect(slice.ports).toEqual([{ name: 'http', port: 8080, protocol: 'TCP', appProtocol: 'http' }]);

      // The same event again, and a resync: the slice is not rewritten (no new resourceVersion).
      await deliver(ctx, [ev('MODIFIED', ready), ev('MODIFIED', ready)]);
      for (const k of await epc.allKeys(ctx)) await epc.reconcile(k, ctx);
      expect((await getSlice(ctx, 'web'))!.metadata.resourceVersion).toBe(slice.metadata.resourceVersion);

      const del = await ctx.registry.delete(svcRes, 'default', 'web');
      await deliver(ctx, [ev('DELETED', del.object)]);
      expect(await getSlice(ctx, 'web')).toBeUndefined();
      expect(await getEp(ctx, 'web')).toBeUndefined();
    });

    it('publishNotReadyAddresses: not-ready pods are ready endpoints that are not serving; headless slices are labelled', async () => {
      const ctx = await newCtx(await open());
      await ctx.registry.create(podsRes, 'default', pod('p', { app: 'h' }));
      await setStatus(ctx, 'p', '10.0.3.1', false);
      await ctx.registry.create(svcRes, 'default', {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'peers' },
        spec: { clusterIP: 'None', publishNotReadyAddresses: true, selector: { app: 'h' } },
      });
      await epc.reconcile('default/peers', ctx);
      const slice = (await getSlice(ctx, 'peers'))!;
      expect(sliceView(slice)).toEqual({ endpoints: ['10.0.3.1 true/false/false'], ports: [] });
      expect(slice.metadata.labels!['service.kubernetes.io/headless']).toBe('');
    });

    it('the garbage collector removes a slice whose service was deleted while the controller missed it', async () => {
      const ctx = await newCtx(await open());
      const s = await ctx.registry.create(svcRes, 'default', svc('gone', { app: 'x' }));
      await epc.reconcile('default/gone', ctx);
      expect(await getSlice(ctx, 'gone')).toBeDefined();
      const del = await ctx.registry.delete(svcRes, 'default', 'gone');
      // Only the garbage collector hears of it: the ownerReference is what lets it clean up.
      for (const k of garbageCollector.keys({ type: 'DELETED', resource: svcRes, object: del.object })) await garbageCollector.reconcile(k, ctx);
      expect(await getSlice(ctx, 'gone')).toBeUndefined();
      expect(s.metadata.uid).toBeTruthy();
    });

    it('never touches a slice without its managed-by label, even one named after a selector service', async () => {
      const ctx = await newCtx(await open());
      const user = (name: string, service: string): KubeObject => ({
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name, labels: { [SLICE_SERVICE_NAME_LABEL]: service } },
        addressType: 'IPv4',
        endpoints: [{ addresses: ['192.0.2.10'] }],
        ports: [{ port: 5432 }],
      });
      // For a selectorless service (the usual case), and squatting on the name of a selector service.
      await ctx.registry.create(svcRes, 'default', svc('ext', undefined, [{ port: 5432 }]));
      const extSlice = await ctx.registry.create(sliceRes, 'default', user('ext', 'ext'));
      await ctx.registry.create(svcRes, 'default', svc('sel', { app: 'x' }));
      const selSlice = await ctx.registry.create(sliceRes, 'default', user('sel', 'sel'));
      await epc.reconcile('default/ext', ctx);
      await epc.reconcile('default/sel', ctx);
      expect((await getSliceNamed(ctx, 'ext'))!.metadata.resourceVersion).toBe(extSlice.metadata.resourceVersion);
      expect((await getSliceNamed(ctx, 'sel'))!.metadata.resourceVersion).toBe(selSlice.metadata.resourceVersion);
      expect(await getEp(ctx, 'sel')).toBeDefined(); // the Endpoints half is still maintained
      await ctx.registry.delete(svcRes, 'default', 'ext');
      await ctx.registry.delete(svcRes, 'default', 'sel');
      await epc.reconcile('default/ext', ctx);
      await epc.reconcile('default/sel', ctx);
      expect(await getSliceNamed(ctx, 'ext')).toBeDefined();
      expect(await getSliceNamed(ctx, 'sel')).toBeDefined();
      expect(await slicesOf(ctx, 'sel')).toEqual([]); // its own slice went with the Service; the user's stays
      expect(await getEp(ctx, 'sel')).toBeUndefined();
    });

    it('slices as kube makes them: at most 100 endpoints each, named <service>-<random>; a change rewrites only the slice that holds it', async () => {
      const ctx = await newCtx(await open());
      await ctx.registry.create(svcRes, 'default', svc('big', { app: 'big' }));
      for (let i = 0; i < 250; i++) {
        await ctx.registry.create(podsRes, 'default', pod(`b-${i}`, { app: 'big' }));
        await setStatus(ctx, `b-${i}`, `10.5.${i >> 8}.${i & 255}`, true);
      }
      await epc.reconcile('default/big', ctx);
      const slices = await slicesOf(ctx, 'big');
      expect(slices.map((s) => s.endpoints.length).sort((a, b) => b - a)).toEqual([MAX_ENDPOINTS_PER_SLICE, MAX_ENDPOINTS_PER_SLICE, 50]);
      for (const sl of slices) {
        expect(sl.metadata.name).toMatch(/^big-[a-z0-9]{5}$/);
        expect(sl.metadata.labels).toEqual({ [SLICE_SERVICE_NAME_LABEL]: 'big', [SLICE_MANAGED_BY_LABEL]: SLICE_MANAGED_BY_VALUE });
        expect(sliceView(sl)!.ports).toEqual(['http:8080/TCP']);
      }
      // Every pod exactly once over the slices.
      const ips = slices.flatMap((sl) => sl.endpoints.map((e: any) => e.addresses[0]));
      expect(new Set(ips).size).toBe(250);
      expect(ips).toHaveLength(250);

      // One pod turns not ready: only its slice gets a new resourceVersion.
      const holder = slices.find((sl) => sl.endpoints.some((e: any) => e.targetRef.name === 'b-7'))!;
      await setStatus(ctx, 'b-7', '10.5.0.7', false);
      await epc.reconcile('default/big', ctx);
      const after = await slicesOf(ctx, 'big');
      expect(after.map((s) => s.metadata.name)).toEqual(slices.map((s) => s.metadata.name));
      for (const sl of after) {
        const before = slices.find((b) => b.metadata.name === sl.metadata.name)!;
        if (sl.metadata.name === holder.metadata.name) {
          expect(sl.metadata.resourceVersion).not.toBe(before.metadata.resourceVersion);
          expect(sl.endpoints.find((e: any) => e.targetRef.name === 'b-7').conditions).toEqual({ ready: false, serving: false, terminating: false });
        } else expect(sl.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
      }
      // Nothing changed: a reconcile writes nothing.
      await epc.reconcile('default/big', ctx);
      expect((await slicesOf(ctx, 'big')).map((s) => s.metadata.resourceVersion)).toEqual(after.map((s) => s.metadata.resourceVersion));

      // 60 more pods fill the room of the slice with 50 before a new slice is made: 100, 100, 100, 10.
      for (let i = 250; i < 310; i++) {
        await ctx.registry.create(podsRes, 'default', pod(`b-${i}`, { app: 'big' }));
        await setStatus(ctx, `b-${i}`, `10.5.${i >> 8}.${i & 255}`, true);
      }
      await epc.reconcile('default/big', ctx);
      expect((await slicesOf(ctx, 'big')).map((s) => s.endpoints.length).sort((a, b) => b - a)).toEqual([100, 100, 100, 10]);
      // The pods of one slice go away: that slice is deleted, the others are not rewritten.
      const cur = await slicesOf(ctx, 'big');
      const gone = cur.find((s) => s.endpoints.length === 10)!;
      for (const e of gone.endpoints) await ctx.registry.delete(podsRes, 'default', e.targetRef.name, { gracePeriodSeconds: 0 });
      await epc.reconcile('default/big', ctx);
      const last = await slicesOf(ctx, 'big');
      expect(last.map((s) => s.metadata.name)).toEqual(cur.filter((s) => s !== gone).map((s) => s.metadata.name));
      expect(last.map((s) => s.metadata.resourceVersion)).toEqual(cur.filter((s) => s !== gone).map((s) => s.metadata.resourceVersion));
    });

    it('one slice per port group (pods resolving a named targetPort differently); a duplicate endpoint another instance wrote is merged away', async () => {
      const ctx = await newCtx(await open());
      await ctx.registry.create(svcRes, 'default', svc('multi', { app: 'm' }, [{ name: 'http', port: 80, targetPort: 'web' }]));
      await ctx.registry.create(podsRes, 'default', pod('a', { app: 'm' }, [{ name: 'web', containerPort: 8080 }]));
      await ctx.registry.create(podsRes, 'default', pod('b', { app: 'm' }, [{ name: 'web', containerPort: 8081 }]));
      await setStatus(ctx, 'a', '10.0.0.1', true);
      await setStatus(ctx, 'b', '10.0.0.2', true);
      await epc.reconcile('default/multi', ctx);
      const views = (await slicesOf(ctx, 'multi')).map(sliceView);
      expect(views).toHaveLength(2);
      expect(views).toContainEqual({ endpoints: ['10.0.0.1 true/true/false'], ports: ['http:8080/TCP'] });
      expect(views).toContainEqual({ endpoints: ['10.0.0.2 true/true/false'], ports: ['http:8081/TCP'] });
      // A second slice with a's endpoint, as a concurrent instance could have made: merged on the next reconcile.
      const first = (await slicesOf(ctx, 'multi')).find((s) => s.ports[0].port === 8080)!;
      await ctx.registry.create(sliceRes, 'default', { ...first, metadata: { name: 'multi-dup00', labels: first.metadata.labels, ownerReferences: first.metadata.ownerReferences } });
      await epc.reconcile('default/multi', ctx);
      const merged = await slicesOf(ctx, 'multi');
      expect(merged.map(sliceView)).toHaveLength(2);
      expect(merged.flatMap((s) => s.endpoints.map((e: any) => e.addresses[0])).sort()).toEqual(['10.0.0.1', '10.0.0.2']);
      // Every pod gone: one empty placeholder slice remains.
      await ctx.registry.delete(podsRes, 'default', 'a', { gracePeriodSeconds: 0 });
      await ctx.registry.delete(podsRes, 'default', 'b', { gracePeriodSeconds: 0 });
      await epc.reconcile('default/multi', ctx);
      const placeholder = await slicesOf(ctx, 'multi');
      expect(placeholder.map(sliceView)).toEqual([{ endpoints: [], ports: [] }]);
      // A first endpoint again: it fills the placeholder (one update, as kube's reconciler makes a create
      // take the place of a delete), not a new slice and the placeholder's delete.
      await ctx.registry.create(podsRes, 'default', pod('c', { app: 'm' }, [{ name: 'web', containerPort: 8080 }]));
      await setStatus(ctx, 'c', '10.0.0.3', true);
      await epc.reconcile('default/multi', ctx);
      const filled = await slicesOf(ctx, 'multi');
      expect(filled.map(sliceView)).toEqual([{ endpoints: ['10.0.0.3 true/true/false'], ports: ['http:8080/TCP'] }]);
      expect(filled[0]!.metadata.uid).toBe(placeholder[0]!.metadata.uid);
    });
  });
}

describe('which pod changes reach Services (kube GetServicesToUpdateOnPodChange)', () => {
  const base = (over: Record<string, any> = {}): KubeObject => {
    const p = pod('p', { app: 'web' });
    return { ...p, metadata: { ...p.metadata, namespace: 'default', uid: 'u1', resourceVersion: '1' }, ...over };
  };
  const withStatus = (p: KubeObject, ip: string | undefined, ready: boolean): KubeObject => ({
    ...p,
    status: { phase: 'Running', ...(ip ? { podIP: ip, podIPs: [{ ip }] } : {}), conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  });
  const mod = (oldObject: KubeObject, object: KubeObject): ChangeEvent => ({ type: 'MODIFIED', resource: podsRes, object, oldObject });
  const webKey = 'default/@{"app":"web"}';

  it('a pod without an IP, created, scheduled or deleted, reaches none', () => {
    const created = base();
    const bound = { ...created, spec: { ...created.spec, nodeName: 'n1' } };
    expect(epc.keys({ type: 'ADDED', resource: podsRes, object: created })).toEqual([]);
    expect(epc.keys(mod(created, bound))).toEqual([]);
    expect(epc.keys(mod(bound, withStatus(bound, undefined, false)))).toEqual([]);
    expect(epc.keys({ type: 'DELETED', resource: podsRes, object: bound })).toEqual([]);
  });

  it('an IP, a readiness flip, a relabel, a deletion reach the Services of the old and new labels; a status write that changes none of that reaches none', () => {
    const p = { ...base(), spec: { ...base().spec, nodeName: 'n1' } };
    const up = withStatus(p, '10.0.0.1', false);
    expect(epc.keys(mod(p, up))).toEqual([webKey]);
    const ready = withStatus(p, '10.0.0.1', true);
    expect(epc.keys(mod(up, ready))).toEqual([webKey]);
    // The same endpoint, another status field (a container's start time): nothing to recompute.
    const same = { ...ready, status: { ...ready.status, startTime: '2024-01-01T00:00:00Z' } };
    expect(epc.keys(mod(ready, same))).toEqual([]);
    const relabeled = { ...ready, metadata: { ...ready.metadata, labels: { app: 'api' } } };
    expect(epc.keys(mod(ready, relabeled)).sort()).toEqual(['default/@{"app":"api"}', webKey]);
    const terminating = { ...ready, metadata: { ...ready.metadata, deletionTimestamp: '2024-01-01T00:00:00Z' } };
    expect(epc.keys(mod(ready, terminating))).toEqual([webKey]);
    expect(epc.keys({ type: 'DELETED', resource: podsRes, object: ready })).toEqual([webKey]);
    // A pod created with an IP (a restored or imported object) reaches its Services.
    expect(epc.keys({ type: 'ADDED', resource: podsRes, object: ready })).toEqual([webKey]);
    // Without the old object nothing can be compared: every selector Service of the namespace.
    expect(epc.keys({ type: 'MODIFIED', resource: podsRes, object: same })).toEqual(['default/*']);
  });
});
