// The endpoints controller: every Service with a selector gets an Endpoints object of the same name,
// listing the IPs of the pods it selects (ready ones in `addresses`, the others in `notReadyAddresses`)
// with the Service's ports resolved against each pod (a named targetPort is looked up in the pod's
// container ports; a pod that lacks it is left out for that port). Addresses are then grouped by the
// set of ports they serve, as Kubernetes' RepackSubsets does, and sorted so the result is a pure
// function of the store: a duplicated or late event recomputes the same object and writes nothing.
//
// The same reconcile keeps the Service's discovery.k8s.io/v1 EndpointSlices as kube's endpointslice
// controller does (kubectl's describe and kube-proxy-style consumers read slices): one group of slices
// per set of ports, at most 100 endpoints a slice, generated names `<service>-<random>`, labels
// kubernetes.io/service-name and endpointslice.kubernetes.io/managed-by; an endpoint stays in the slice
// that holds it, so a change rewrites only that slice, and a slice whose content is right is not
// written. Slices are found by their service-name label in the cache (locally an informer made on first
// use, not watched for events: nothing but this controller writes managed ones, and a user's edit or
// deletion of one is put right on the next resync; in the cloud one list of the namespace's slices per
// batch). The loop waits for the cache to show its own last slice write of a Service before reading
// them again, so a lagging cache never makes it create a slice twice.
//
// A pod change reaches only the Services that select the pod, by its old or its new labels, and only if
// it changed what an endpoint is made of (IP, readiness, labels, deletion, hostname...: kube's
// podEndpointsChanged): a pod without an IP, created or scheduled, reaches none. keys() maps it to
// "namespace/@{labels}" for each label set, and reconciling that key looks the matching Services up in
// the selector index of the cache (cache.ts) and recomputes those. Pods of one template share their
// labels, so a burst of their changes is one queued key. A Service's recompute reads its own pods through
// the label index (the candidates of its selector's rarest pair), never its namespace's pods, and never
// a store list (locally the shared informer, in the cloud one list per namespace per stream batch).

import { isDeepStrictEqual } from 'node:util';
import { findResource } from '../machinery/resources.ts';
import { labelSelectorFromSet } from '../machinery/selectors.ts';
import { ApiError } from '../machinery/status.ts';
import type { KubeObject } from '../machinery/types.ts';
import { objectsSelectedBy, servicesSelecting } from './cache.ts';
import { readerOf, type Controller, type ControllerContext } from './controller.ts';
import { controllerUser } from './identity.ts';

const services = findResource('', 'v1', 'services')!;
const pods = findResource('', 'v1', 'pods')!;
const endpointsRes = findResource('', 'v1', 'endpoints')!;
const slicesRes = findResource('discovery.k8s.io', 'v1', 'endpointslices')!;

/** Marks Endpoints this controller owns; user-written Endpoints of selectorless services lack it. */
export const MANAGED_BY_LABEL = 'endpoints.skiff.io/managed-by';
export const MANAGED_BY_VALUE = 'endpoints-controller';
/** Kubernetes' labels on controller-made slices; a slice without this managed-by value is never touched. */
export const SLICE_SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
export const SLICE_MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by';
export const SLICE_MANAGED_BY_VALUE = 'endpointslice-controller.k8s.io';

interface EndpointAddress {
  ip: string;
  hostname?: string;
  nodeName?: string;
  targetRef: { kind: 'Pod'; namespace: string; name: string; uid: string };
}
interface EndpointPort {
  name?: string;
  port: number;
  protocol: string;
  appProtocol?: string;
}
interface Subset {
  addresses?: EndpointAddress[];
  notReadyAddresses?: EndpointAddress[];
  ports?: EndpointPort[];
}

/** A label set as a key: sorted JSON, so equal sets give equal keys. */
const labelsKey = (l: Record<string, string>) => JSON.stringify(Object.fromEntries(Object.entries(l).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));

const hasSelector = (svc: KubeObject) => svc.spec?.type !== 'ExternalName' && !!svc.spec?.selector && Object.keys(svc.spec.selector).length > 0;
const isManaged = (ep: KubeObject) => ep.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
const isManagedSlice = (s: KubeObject) => s.metadata.labels?.[SLICE_MANAGED_BY_LABEL] === SLICE_MANAGED_BY_VALUE;

function isReady(pod: KubeObject): boolean {
  return (pod.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True');
}

/** Resolves a Service port's targetPort for one pod (undefined: the pod does not expose that name). */
function resolveTargetPort(svcPort: any, pod: KubeObject): number | undefined {
  const tp = svcPort.targetPort;
  if (tp === undefined || tp === null || tp === '') return svcPort.port;
  if (typeof tp === 'number') return tp;
  if (/^\d+$/.test(tp)) return Number(tp);
  const proto = svcPort.protocol ?? 'TCP';
  for (const c of pod.spec?.containers ?? []) {
    for (const cp of c.ports ?? []) {
      if (cp.name === tp && (cp.protocol ?? 'TCP') === proto) return cp.containerPort;
    }
  }
  return undefined;
}

const portKey = (p: EndpointPort) => `${p.name ?? ''}/${p.port}/${p.protocol}`;
const addrKey = (a: EndpointAddress) => `${a.ip}/${a.targetRef.name}`;

/** The subsets a Service should have, given its namespace's pods. */
export function computeSubsets(svc: KubeObject, podList: KubeObject[]): Subset[] {
  const selector = labelSelectorFromSet(svc.spec.selector);
  const publishNotReady = svc.spec?.publishNotReadyAddresses === true;
  const svcPorts: any[] = svc.spec?.ports ?? [];
  // Without ports only a headless Service lists addresses (portless), as in Kubernetes.
  if (svcPorts.length === 0 && svc.spec?.clusterIP !== 'None') return [];
  // Address -> (readiness, the ports it serves); then grouped by identical port sets.
  const groups = new Map<string, { ports: EndpointPort[]; ready: EndpointAddress[]; notReady: EndpointAddress[] }>();
  for (const pod of podList) {
    if (!selector.matches(pod.metadata.labels)) continue;
    if (pod.metadata.deletionTimestamp || !pod.status?.podIP) continue;
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') continue;
    const addr: EndpointAddress = {
      ip: pod.status.podIP,
      // As Kubernetes: a pod with spec.hostname whose spec.subdomain names this Service gets DNS
      // <hostname>.<service>.<ns>.svc.<domain> through the address's hostname.
      ...(pod.spec?.hostname && pod.spec?.subdomain === svc.metadata.name ? { hostname: pod.spec.hostname } : {}),
      ...(pod.spec?.nodeName ? { nodeName: pod.spec.nodeName } : {}),
      targetRef: { kind: 'Pod', namespace: pod.metadata.namespace!, name: pod.metadata.name!, uid: pod.metadata.uid! },
    };
    const ports: EndpointPort[] = [];
    for (const sp of svcPorts) {
      const port = resolveTargetPort(sp, pod);
      if (port === undefined) continue;
      ports.push({
        ...(sp.name ? { name: sp.name } : {}),
        port,
        protocol: sp.protocol ?? 'TCP',
        ...(sp.appProtocol ? { appProtocol: sp.appProtocol } : {}),
      });
    }
    // A Service with ports whose targetPorts this pod cannot serve: the pod is not an endpoint.
    if (svcPorts.length > 0 && ports.length === 0) continue;
    ports.sort((a, b) => (portKey(a) < portKey(b) ? -1 : portKey(a) > portKey(b) ? 1 : 0));
    const k = ports.map(portKey).join(',');
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { ports, ready: [], notReady: [] }));
    (publishNotReady || isReady(pod) ? g.ready : g.notReady).push(addr);
  }
  const byAddr = (a: EndpointAddress, b: EndpointAddress) => (addrKey(a) < addrKey(b) ? -1 : addrKey(a) > addrKey(b) ? 1 : 0);
  return [...groups.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, g]) => ({
      ...(g.ready.length ? { addresses: g.ready.sort(byAddr) } : {}),
      ...(g.notReady.length ? { notReadyAddresses: g.notReady.sort(byAddr) } : {}),
      ...(g.ports.length ? { ports: g.ports } : {}),
    }));
}

/** Order-insensitive form of subsets, for "did anything change". */
function canonical(subsets: any[] | undefined): string[] {
  const out: string[] = [];
  for (const s of subsets ?? []) {
    const ports = (s.ports ?? []).map((p: any) => `${p.name ?? ''}/${p.port}/${p.protocol ?? 'TCP'}/${p.appProtocol ?? ''}`).sort().join(',');
    for (const [kind, list] of [['r', s.addresses], ['n', s.notReadyAddresses]] as const) {
      for (const a of list ?? []) out.push(`${ports}|${kind}|${a.ip}|${a.hostname ?? ''}|${a.nodeName ?? ''}|${a.targetRef?.name ?? ''}|${a.targetRef?.uid ?? ''}`);
    }
    if (!(s.addresses?.length || s.notReadyAddresses?.length)) out.push(`${ports}|empty`);
  }
  return out.sort();
}

async function getOrUndefined(ctx: ControllerContext, res: typeof services, ns: string, name: string): Promise<KubeObject | undefined> {
  try {
    return await ctx.registry.get(res, ns, name);
  } catch (e) {
    if (e instanceof ApiError && e.code === 404) return undefined;
    throw e;
  }
}

/** Kubernetes' --max-endpoints-per-slice default: a slice holds at most this many endpoints. */
export const MAX_ENDPOINTS_PER_SLICE = 100;

type SliceEndpoint = Record<string, any> & { targetRef: { name: string; [k: string]: unknown } };
/** One port group's slice content: its ports (in the stored form) and its endpoints. */
interface PortGroup {
  ports: any[];
  endpoints: SliceEndpoint[];
}

const slicePortKey = (ports: any[]) =>
  ports
    .map((p) => `${p.name ?? ''}/${p.port}/${p.protocol ?? 'TCP'}/${p.appProtocol ?? ''}`)
    .sort()
    .join(',');
const endpointKey = (e: SliceEndpoint) => `${e.addresses?.[0]}/${e.targetRef?.name}`;
const byEndpoint = (a: SliceEndpoint, b: SliceEndpoint) => (endpointKey(a) < endpointKey(b) ? -1 : endpointKey(a) > endpointKey(b) ? 1 : 0);

/**
 * The endpoints a Service's slices should hold, one group per set of ports (kube's endpointslice
 * controller: a slice has one port list, so pods that resolve a named targetPort differently are in
 * different slices), in the exact form the registry stores (ports defaulted to name "" and a
 * protocol), so an unchanged slice compares equal and is not rewritten.
 */
function desiredGroups(subsets: Subset[], podList: KubeObject[]): Map<string, PortGroup> {
  const podReady = new Map(podList.map((p) => [p.metadata.name!, isReady(p)]));
  const endpoint = (a: EndpointAddress, ready: boolean): SliceEndpoint => ({
    addresses: [a.ip],
    // Terminating pods are never endpoints here (computeSubsets leaves them out); serving is the pod's own
    // readiness, which differs from ready only under publishNotReadyAddresses.
    conditions: { ready, serving: podReady.get(a.targetRef.name) ?? ready, terminating: false },
    ...(a.hostname ? { hostname: a.hostname } : {}),
    ...(a.nodeName ? { nodeName: a.nodeName } : {}),
    targetRef: { kind: 'Pod', namespace: a.targetRef.namespace, name: a.targetRef.name, uid: a.targetRef.uid },
  });
  const groups = new Map<string, PortGroup>();
  for (const s of subsets) {
    const ports = (s.ports ?? []).map((p) => ({ name: p.name ?? '', port: p.port, protocol: p.protocol, ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}) }));
    const endpoints = [...(s.addresses ?? []).map((a) => endpoint(a, true)), ...(s.notReadyAddresses ?? []).map((a) => endpoint(a, false))];
    groups.set(slicePortKey(ports), { ports, endpoints });
  }
  return groups;
}

/** The labels and owner of every slice of a Service. */
function sliceMeta(svc: KubeObject) {
  const name = svc.metadata.name!;
  return {
    labels: {
      ...(svc.metadata.labels ?? {}),
      ...(svc.spec?.clusterIP === 'None' ? { 'service.kubernetes.io/headless': '' } : {}),
      [SLICE_SERVICE_NAME_LABEL]: name,
      [SLICE_MANAGED_BY_LABEL]: SLICE_MANAGED_BY_VALUE,
    },
    // The Service controls them: the garbage collector deletes them with the Service (also in the foreground).
    ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name, uid: svc.metadata.uid!, controller: true, blockOwnerDeletion: true }],
  };
}

/** The fields of a slice this controller decides; anything else (annotations, finalizers) is left as found. */
const sliceContent = (s: KubeObject) => ({
  labels: s.metadata.labels ?? {},
  ownerReferences: s.metadata.ownerReferences ?? [],
  addressType: s.addressType,
  endpoints: s.endpoints ?? [],
  ports: s.ports ?? [],
});

async function deleteIfManaged(ctx: ControllerContext, res: typeof services, ns: string, name: string, managed: (o: KubeObject) => boolean, uid?: string): Promise<number | undefined> {
  const cur = uid ? undefined : await getOrUndefined(ctx, res, ns, name);
  if (!uid && (!cur || !managed(cur))) return undefined;
  try {
    const r = await ctx.registry.delete(res, ns, name, { preconditions: { uid: uid ?? cur!.metadata.uid } });
    return Number(r.object.metadata.resourceVersion) || undefined;
  } catch (e) {
    // Gone already, or replaced by another object meanwhile: the next event for it decides.
    if (e instanceof ApiError && (e.code === 404 || e.code === 409)) return undefined;
    throw e;
  }
}

/**
 * The revision of this process's last slice write per Service ("namespace/name"): before reading a
 * Service's slices from the cache, the loop waits for the cache to show it (client-go's expectations;
 * kube's endpointslice controller keeps an EndpointSliceTracker for the same reason), so a lagging
 * cache never makes it create a slice twice. Another process's writes are not known here; the
 * reconcile after its event (or the resync) merges any duplicate it made.
 */
const lastSliceWrites = new WeakMap<object, Map<string, number>>();
const lastSliceWrite = (ctx: ControllerContext) => {
  let m = lastSliceWrites.get(ctx.registry);
  if (!m) lastSliceWrites.set(ctx.registry, (m = new Map()));
  return m;
};
const noteSliceWrite = (ctx: ControllerContext, key: string, rv: number | undefined) => {
  const m = lastSliceWrite(ctx);
  if (rv !== undefined && rv > (m.get(key) ?? 0)) m.set(key, rv);
};

/** The slices this controller manages for a Service, ordered by name. */
async function managedSlicesOf(ctx: ControllerContext, ns: string, name: string): Promise<KubeObject[]> {
  const reader = readerOf(ctx);
  const rv = lastSliceWrite(ctx).get(`${ns}/${name}`);
  let found: KubeObject[];
  if (rv !== undefined && !(await reader.caughtUp(slicesRes, rv))) {
    // The cache does not show this loop's own last write in time: read the store.
    found = (await ctx.registry.list(slicesRes, ns, { labelSelector: labelSelectorFromSet({ [SLICE_SERVICE_NAME_LABEL]: name }) })).items;
  } else found = await reader.byIndex(slicesRes, 'label', `${ns}/${SLICE_SERVICE_NAME_LABEL}=${name}`);
  return found.filter(isManagedSlice).sort((a, b) => (a.metadata.name! < b.metadata.name! ? -1 : 1));
}

async function deleteManaged(ctx: ControllerContext, ns: string, name: string): Promise<void> {
  await deleteIfManaged(ctx, endpointsRes, ns, name, isManaged);
  for (const s of await managedSlicesOf(ctx, ns, name)) await deleteIfManaged(ctx, slicesRes, ns, s.metadata.name!, isManagedSlice, s.metadata.uid);
  // Nothing of the Service is left to read back: forget its last write (the map stays the Services' size).
  lastSliceWrite(ctx).delete(`${ns}/${name}`);
}

/**
 * Makes a Service's managed slices hold the desired groups, as kube's endpointslice reconciler does:
 * an endpoint stays in the slice that has it (updated in place if it changed); slices of a port group
 * that no longer exists, or left empty, are deleted; new endpoints fill the room of the group's slices
 * (at most MAX_ENDPOINTS_PER_SLICE each) before new slices are made, named `<service>-<random>`. Only
 * slices whose content changed are written: creates first, then updates, then deletes, so a consumer
 * never sees an endpoint missing meanwhile. A Service without endpoints keeps one empty placeholder slice.
 * An endpoint found in two slices (a duplicate another instance made) is kept in the first only.
 */
async function syncSlices(ctx: ControllerContext, svc: KubeObject, groups: Map<string, PortGroup>): Promise<void> {
  const ns = svc.metadata.namespace!;
  const name = svc.metadata.name!;
  const key = `${ns}/${name}`;
  const meta = sliceMeta(svc);
  const existing = await managedSlicesOf(ctx, ns, name);
  const want = (s: KubeObject, endpoints: SliceEndpoint[], ports: any[]): KubeObject => ({
    ...s,
    metadata: { ...s.metadata, labels: meta.labels, ownerReferences: meta.ownerReferences },
    addressType: 'IPv4',
    endpoints: [...endpoints].sort(byEndpoint),
    ports,
  });
  const updates: KubeObject[] = [];
  const deletes: KubeObject[] = [];
  const creates: KubeObject[] = [];
  const placed = new Set<string>(); // "portKey|endpointKey"
  const kept = new Map<string, { slice: KubeObject; endpoints: SliceEndpoint[]; ports: any[] }[]>();
  const wanted = new Map<string, Map<string, SliceEndpoint>>();
  for (const [pk, g] of groups) wanted.set(pk, new Map(g.endpoints.map((e) => [endpointKey(e), e])));
  for (const s of existing) {
    const pk = slicePortKey(s.ports ?? []);
    const group = wanted.get(pk);
    if (!group) {
      deletes.push(s);
      continue;
    }
    const endpoints: SliceEndpoint[] = [];
    for (const e of s.endpoints ?? []) {
      const k = endpointKey(e);
      const w = group.get(k);
      if (w && !placed.has(`${pk}|${k}`) && endpoints.length < MAX_ENDPOINTS_PER_SLICE) {
        placed.add(`${pk}|${k}`);
        endpoints.push(w);
      }
    }
    if (!kept.has(pk)) kept.set(pk, []);
    kept.get(pk)!.push({ slice: s, endpoints, ports: groups.get(pk)!.ports });
  }
  for (const [pk, g] of groups) {
    const rest = g.endpoints.filter((e) => !placed.has(`${pk}|${endpointKey(e)}`)).sort(byEndpoint);
    const mine = kept.get(pk) ?? [];
    // Fill the fullest slices first, as kube does, so the group's endpoints stay packed.
    for (const k of [...mine].sort((a, b) => b.endpoints.length - a.endpoints.length)) {
      while (rest.length && k.endpoints.length < MAX_ENDPOINTS_PER_SLICE) k.endpoints.push(rest.shift()!);
    }
    for (const k of mine) {
      if (k.endpoints.length === 0) deletes.push(k.slice);
      else updates.push(want(k.slice, k.endpoints, k.ports));
    }
    while (rest.length) {
      const chunk = rest.splice(0, MAX_ENDPOINTS_PER_SLICE);
      creates.push(want({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { generateName: `${name}-`, namespace: ns } }, chunk, g.ports));
    }
  }
  // No endpoint at all: one empty placeholder slice (kube keeps one so consumers see the Service).
  if (!creates.length && !updates.length) {
    const keep = deletes.find((s) => (s.endpoints ?? []).length === 0 && (s.ports ?? []).length === 0) ?? deletes[0];
    if (keep) {
      deletes.splice(deletes.indexOf(keep), 1);
      updates.push(want(keep, [], []));
    } else creates.push(want({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { generateName: `${name}-`, namespace: ns } }, [], []));
  }
  // As kube's reconciler (finalize): a slice to create takes the place of one to delete, one update instead
  // of two writes (a Service's first endpoint fills its empty placeholder). Appended after the other
  // updates, so endpoints moving out of the replaced slice are in their new slices first.
  while (creates.length && deletes.length) {
    const c = creates.pop()!;
    updates.push(want(deletes.pop()!, c.endpoints, c.ports));
  }
  const byName = new Map(existing.map((s) => [s.metadata.name!, s]));
  for (const c of creates) noteSliceWrite(ctx, key, Number((await ctx.registry.create(slicesRes, ns, c)).metadata.resourceVersion));
  for (const u of updates) {
    const cur = byName.get(u.metadata.name!)!;
    if (isDeepStrictEqual(sliceContent(cur), sliceContent(u))) continue;
    try {
      const { labels, ownerReferences } = u.metadata;
      const w = await ctx.registry.guaranteedUpdate(slicesRes, ns, u.metadata.name!, undefined, {}, (s) => {
        if (s.metadata.uid !== cur.metadata.uid || !isManagedSlice(s)) return s;
        return { ...s, metadata: { ...s.metadata, labels, ownerReferences }, addressType: u.addressType, endpoints: u.endpoints, ports: u.ports };
      });
      noteSliceWrite(ctx, key, Number(w.metadata.resourceVersion));
    } catch (e) {
      // Deleted meanwhile: the next reconcile (its event, or the resync) places its endpoints anew.
      if (!(e instanceof ApiError && e.code === 404)) throw e;
    }
  }
  for (const d of deletes) noteSliceWrite(ctx, key, await deleteIfManaged(ctx, slicesRes, ns, d.metadata.name!, isManagedSlice, d.metadata.uid));
}

async function syncService(ctx: ControllerContext, ns: string, name: string): Promise<void> {
  const reader = readerOf(ctx);
  const svc = await reader.get(services, ns, name);
  if (!svc || svc.metadata.deletionTimestamp || !hasSelector(svc)) return deleteManaged(ctx, ns, name);
  // The Service's own pods, from the label index: a recompute costs its pods, not its namespace's.
  const list = await objectsSelectedBy(reader, pods, ns, svc.spec.selector);
  const subsets = computeSubsets(svc, list);
  await syncEndpoints(ctx, svc, subsets);
  await syncSlices(ctx, svc, desiredGroups(subsets, list));
}

async function syncEndpoints(ctx: ControllerContext, svc: KubeObject, subsets: Subset[]): Promise<void> {
  const ns = svc.metadata.namespace!;
  const name = svc.metadata.name!;
  const labels = { ...(svc.metadata.labels ?? {}), [MANAGED_BY_LABEL]: MANAGED_BY_VALUE };
  const cur = await getOrUndefined(ctx, endpointsRes, ns, name);
  const same = (ep: KubeObject) => isDeepStrictEqual(canonical(ep.subsets), canonical(subsets)) && isDeepStrictEqual(ep.metadata.labels ?? {}, labels);
  // Already right: no second read through guaranteedUpdate.
  if (cur && same(cur)) return;
  if (!cur) {
    try {
      await ctx.registry.create(endpointsRes, ns, { apiVersion: 'v1', kind: 'Endpoints', metadata: { name, namespace: ns, labels }, subsets });
      return;
    } catch (e) {
      // Created meanwhile (another instance, a redelivered event): fall through to the update path.
      if (!(e instanceof ApiError && e.reason === 'AlreadyExists')) throw e;
    }
  }
  await ctx.registry.guaranteedUpdate(endpointsRes, ns, name, undefined, {}, (ep) => (same(ep) ? ep : { ...ep, metadata: { ...ep.metadata, labels }, subsets }));
}

/**
 * What of a pod its Services' endpoints can depend on (kube's podEndpointsChanged, plus what a named
 * targetPort resolves against), or undefined when the pod is no Service's endpoint at all: it has no IP
 * yet, is terminating, or has finished. A change that leaves this the same changes no Endpoints or slice.
 */
function endpointView(pod: KubeObject | undefined): string | undefined {
  if (!pod?.status?.podIP || pod.metadata.deletionTimestamp) return undefined;
  if (pod.status.phase === 'Succeeded' || pod.status.phase === 'Failed') return undefined;
  return JSON.stringify([
    labelsKey(pod.metadata.labels ?? {}),
    pod.status.podIP,
    isReady(pod),
    pod.spec?.hostname ?? null,
    pod.spec?.subdomain ?? null,
    pod.spec?.nodeName ?? null,
    (pod.spec?.containers ?? []).map((c: any) => (c.ports ?? []).map((p: any) => [p.name ?? null, p.containerPort, p.protocol ?? 'TCP'])),
  ]);
}

export const endpointsController: Controller = {
  name: 'endpoints-controller',
  identity: controllerUser('endpoint-controller'),
  watches: [services, pods, endpointsRes],
  keys(ev) {
    const m = ev.object.metadata;
    if (ev.resource.resource !== 'pods') return [`${m.namespace}/${m.name}`];
    // Without the old object (a source that does not know it), old labels cannot be looked up: every
    // selector Service of the namespace is recomputed, as before the selector index.
    if (ev.type === 'MODIFIED' && !ev.oldObject) return [`${m.namespace}/*`];
    // As kube's GetServicesToUpdateOnPodChange: a change that leaves the pod's endpoint the same (a
    // scheduling, a status write without a new IP or readiness) reaches no Service. Beyond it, a pod
    // that is nobody's endpoint before and after (created without an IP, as every pod is) reaches none
    // either. The reconcile still reads everything it decides on, so skipping a no-op costs nothing.
    const before = ev.type === 'ADDED' ? undefined : ev.type === 'DELETED' ? ev.object : ev.oldObject;
    const after = ev.type === 'DELETED' ? undefined : ev.object;
    const vb = endpointView(before);
    const va = endpointView(after);
    if (vb === va) return [];
    const sets = [vb !== undefined ? before!.metadata.labels ?? {} : undefined, va !== undefined ? after!.metadata.labels ?? {} : undefined];
    return [...new Set(sets.filter((l) => l !== undefined).map((l) => `${m.namespace}/@${labelsKey(l)}`))];
  },
  async allKeys(ctx) {
    const keys = new Set<string>();
    for (const s of (await readerOf(ctx).list(services, undefined))) if (hasSelector(s)) keys.add(`${s.metadata.namespace}/${s.metadata.name}`);
    for (const e of (await readerOf(ctx).list(endpointsRes, undefined))) if (isManaged(e)) keys.add(`${e.metadata.namespace}/${e.metadata.name}`);
    for (const e of (await readerOf(ctx).list(slicesRes, undefined))) {
      const svc = e.metadata.labels?.[SLICE_SERVICE_NAME_LABEL];
      if (isManagedSlice(e) && svc) keys.add(`${e.metadata.namespace}/${svc}`);
    }
    return [...keys];
  },
  async reconcile(key, ctx) {
    const i = key.indexOf('/');
    const ns = key.slice(0, i);
    const name = key.slice(i + 1);
    const reader = readerOf(ctx);
    let selecting: KubeObject[];
    if (name === '*') selecting = (await reader.list(services, ns)).filter(hasSelector);
    else if (name.startsWith('@')) selecting = await servicesSelecting(reader, services, ns, JSON.parse(name.slice(1)));
    else return syncService(ctx, ns, name);
    for (const s of selecting) await syncService(ctx, ns, s.metadata.name!);
  },
};
