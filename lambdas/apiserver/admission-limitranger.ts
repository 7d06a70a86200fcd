// LimitRanger, as kube-apiserver's plugin (plugin/pkg/admission/limitranger): the LimitRanges of the
// namespace default a new pod's container requests and limits (recording what it set in the annotation
// kubernetes.io/limit-ranger), then bound containers, pods (their sums) and claims' storage requests,
// refusing with kube's 403 messages ("maximum cpu usage per Container is 500m, but limit is 1").
// Pods are handled on create only (their containers' resources are immutable); claims on create and update.
//
// Cost per request: one counter read per pod create and claim write (how many LimitRanges the namespace
// holds), and a list of them only when there are some; nothing for any other request.

import { canonicalQuantity, formatQuantity, parseQuantityExact, type ParsedQuantity, type QuantityFormat } from '../machinery/quantity.ts';
import { ApiError } from '../machinery/status.ts';
import { findResource } from '../machinery/resources.ts';
import type { KubeObject } from '../machinery/types.ts';
import type { AdmissionPlugin } from './admission.ts';
import { LIMIT_RANGES_IN } from './admission-quota.ts';

type Obj = Record<string, any>;
type ResourceList = Record<string, string>;

const limitRanges = findResource('', 'v1', 'limitranges')!;

export const LIMIT_RANGER_ANNOTATION = 'kubernetes.io/limit-ranger';

const parse = (v: unknown): ParsedQuantity | undefined => {
  try {
    return parseQuantityExact(v as string);
  } catch {
    return undefined;
  }
};
const text = (v: unknown): string => {
  try {
    return canonicalQuantity(v as string);
  } catch {
    return String(v);
  }
};
const entries = (l: unknown): [string, unknown][] => (l && typeof l === 'object' ? Object.entries(l as Obj).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) : []);

const ceilDiv = (a: bigint, b: bigint): bigint => (a >= 0n ? (a + b - 1n) / b : a / b);
const MAX_MILLI_VALUE = ((1n << 63n) - 1n) / 1000n;

/** requestLimitEnforcedValues: milli-values when all three fit, else whole values (both rounded up). */
function enforcedValues(req: ParsedQuantity | undefined, lim: ParsedQuantity | undefined, enforced: ParsedQuantity): [bigint, bigint, bigint] {
  const value = (p?: ParsedQuantity) => (p ? ceilDiv(p.nanos, 1_000_000_000n) : 0n);
  const milli = (p?: ParsedQuantity) => (p ? ceilDiv(p.nanos, 1_000_000n) : 0n);
  const r = value(req);
  const l = value(lim);
  const e = value(enforced);
  if (r <= MAX_MILLI_VALUE && l <= MAX_MILLI_VALUE && e <= MAX_MILLI_VALUE) return [milli(req), milli(lim), milli(enforced)];
  return [r, l, e];
}

function minConstraint(type: string, name: string, enforced: unknown, requests: Obj, limits: Obj): string | undefined {
  const e = parse(enforced)!;
  const req = requests[name];
  const lim = limits[name];
  const [r, l, ev] = enforcedValues(parse(req), parse(lim), e);
  if (req === undefined) return `minimum ${name} usage per ${type} is ${text(enforced)}.  No request is specified`;
  if (r < ev) return `minimum ${name} usage per ${type} is ${text(enforced)}, but request is ${text(req)}`;
  if (lim !== undefined && l < ev) return `minimum ${name} usage per ${type} is ${text(enforced)}, but limit is ${text(lim)}`;
  return undefined;
}

function maxConstraint(type: string, name: string, enforced: unknown, requests: Obj, limits: Obj): string | undefined {
  const e = parse(enforced)!;
  const req = requests[name];
  const lim = limits[name];
  const [r, l, ev] = enforcedValues(parse(req), parse(lim), e);
  if (lim === undefined) return `maximum ${name} usage per ${type} is ${text(enforced)}.  No limit is specified`;
  if (l > ev) return `maximum ${name} usage per ${type} is ${text(enforced)}, but limit is ${text(lim)}`;
  if (req !== undefined && r > ev) return `maximum ${name} usage per ${type} is ${text(enforced)}, but request is ${text(req)}`;
  return undefined;
}

function maxRequestConstraint(type: string, name: string, enforced: unknown, requests: Obj): string | undefined {
  const req = requests[name];
  const [r, , ev] = enforcedValues(parse(req), undefined, parse(enforced)!);
  if (req === undefined) return `maximum ${name} usage per ${type} is ${text(enforced)}.  No request is specified`;
  if (r > ev) return `maximum ${name} usage per ${type} is ${text(enforced)}, but request is ${text(req)}`;
  return undefined;
}

function ratioConstraint(type: string, name: string, enforced: unknown, requests: Obj, limits: Obj): string | undefined {
  const e = parse(enforced)!;
  const [r, l] = enforcedValues(parse(requests[name]), parse(limits[name]), e);
  if (requests[name] === undefined || r === 0n) return `${name} max limit to request ratio per ${type} is ${text(enforced)}, but no request is specified or request is 0`;
  if (limits[name] === undefined || l === 0n) return `${name} max limit to request ratio per ${type} is ${text(enforced)}, but no limit is specified or limit is 0`;
  const observed = Number(l) / Number(r);
  const ev = ceilDiv(e.nanos, 1_000_000_000n);
  let ratio = observed;
  let max = Number(ev);
  if (ev <= MAX_MILLI_VALUE) {
    ratio = observed * 1000;
    max = Number(ceilDiv(e.nanos, 1_000_000n));
  }
  if (ratio > max) return `${name} max limit to request ratio per ${type} is ${text(enforced)}, but provided ratio is ${observed.toFixed(6)}`;
  return undefined;
}

/** Bounds one set of requests and limits by a LimitRange item (a container, or a pod's sums). */
function bound(item: Obj, requests: Obj, limits: Obj, errs: string[]): void {
  const push = (e: string | undefined) => e && errs.push(e);
  for (const [k, v] of entries(item.min)) push(minConstraint(item.type, k, v, requests, limits));
  for (const [k, v] of entries(item.max)) push(maxConstraint(item.type, k, v, requests, limits));
  for (const [k, v] of entries(item.maxLimitRequestRatio)) push(ratioConstraint(item.type, k, v, requests, limits));
}

const containersOf = (spec: Obj, key: string): Obj[] => (Array.isArray(spec?.[key]) ? spec[key].filter((c: unknown) => c && typeof c === 'object') : []);
const resourcesOf = (c: Obj): { requests: Obj; limits: Obj } => ({ requests: c.resources?.requests ?? {}, limits: c.resources?.limits ?? {} });

/** PodRequests / PodLimits: the containers' sum, at least each init container's own, plus the overhead. */
function podTotals(spec: Obj, which: 'requests' | 'limits'): ResourceList {
  const sum = new Map<string, bigint>();
  // A sum is spelled in the format of its first term, as Quantity.Add keeps it.
  const format = new Map<string, QuantityFormat>();
  const note = (k: string, p: ParsedQuantity) => format.has(k) || format.set(k, p.format);
  for (const c of containersOf(spec, 'containers')) {
    for (const [k, v] of Object.entries(resourcesOf(c)[which])) {
      const p = parse(v);
      if (p) sum.set(k, (sum.get(k) ?? 0n) + p.nanos), note(k, p);
    }
  }
  for (const c of containersOf(spec, 'initContainers')) {
    for (const [k, v] of Object.entries(resourcesOf(c)[which])) {
      const p = parse(v);
      if (p && p.nanos > (sum.get(k) ?? 0n)) sum.set(k, p.nanos), note(k, p);
    }
  }
  for (const [k, v] of Object.entries(spec?.overhead ?? {})) {
    const p = parse(v);
    if (p && sum.has(k)) sum.set(k, sum.get(k)! + p.nanos);
  }
  const out: ResourceList = {};
  for (const [k, n] of sum) out[k] = formatQuantity({ nanos: n, format: format.get(k) ?? 'DecimalSI' });
  return out;
}

/** mergeContainerResources: fills missing requests and limits, and says what it set. */
function mergeDefaults(c: Obj, requests: Obj, limits: Obj, prefix: string, notes: string[]): void {
  const res = (c.resources = c.resources && typeof c.resources === 'object' ? c.resources : {});
  res.limits = res.limits && typeof res.limits === 'object' ? res.limits : {};
  res.requests = res.requests && typeof res.requests === 'object' ? res.requests : {};
  const setLimits: string[] = [];
  const setRequests: string[] = [];
  for (const [k, v] of Object.entries(limits)) {
    if (res.limits[k] === undefined) {
      res.limits[k] = v;
      setLimits.push(k);
    }
  }
  for (const [k, v] of Object.entries(requests)) {
    if (res.requests[k] === undefined) {
      res.requests[k] = v;
      setRequests.push(k);
    }
  }
  if (setRequests.length) notes.push(`${setRequests.sort().join(', ')} request for ${prefix} ${c.name}`);
  if (setLimits.length) notes.push(`${setLimits.sort().join(', ')} limit for ${prefix} ${c.name}`);
  if (!Object.keys(res.limits).length) delete res.limits;
  if (!Object.keys(res.requests).length) delete res.requests;
}

function forbidden(resource: string, obj: KubeObject, errs: string[]): ApiError {
  const name = obj.metadata?.name ?? '';
  const msg = errs.length === 1 ? errs[0] : `[${errs.join(', ')}]`;
  const e = new ApiError('Forbidden', `${resource} "${name}" is forbidden: ${msg}`, { name, kind: resource });
  return e;
}

function admitPod(pod: KubeObject, ranges: Obj[]): void {
  const spec = ((pod as Obj).spec ??= {}) as Obj;
  // PodMutateLimitFunc: the Container items' default requests and limits.
  const defRequests: Obj = {};
  const defLimits: Obj = {};
  for (const lr of ranges) {
    for (const item of Array.isArray(lr.spec?.limits) ? lr.spec.limits : []) {
      if (item?.type !== 'Container') continue;
      Object.assign(defRequests, item.defaultRequest ?? {});
      Object.assign(defLimits, item.default ?? {});
    }
  }
  const notes: string[] = [];
  if (Object.keys(defRequests).length || Object.keys(defLimits).length) {
    for (const c of containersOf(spec, 'containers')) mergeDefaults(c, defRequests, defLimits, 'container', notes);
    for (const c of containersOf(spec, 'initContainers')) mergeDefaults(c, defRequests, defLimits, 'init container', notes);
    if (notes.length) {
      const meta = (pod.metadata ??= {} as any);
      meta.annotations = { ...(meta.annotations ?? {}), [LIMIT_RANGER_ANNOTATION]: `LimitRanger plugin set: ${notes.join('; ')}` };
    }
  }
  // PodValidateLimitFunc: each Container item over every container, each Pod item over the pod's sums.
  const errs: string[] = [];
  for (const lr of ranges) {
    for (const item of Array.isArray(lr.spec?.limits) ? lr.spec.limits : []) {
      if (item?.type === 'Container') {
        for (const c of [...containersOf(spec, 'containers'), ...containersOf(spec, 'initContainers')]) {
          const { requests, limits } = resourcesOf(c);
          bound(item, requests, limits, errs);
        }
      } else if (item?.type === 'Pod') {
        bound(item, podTotals(spec, 'requests'), podTotals(spec, 'limits'), errs);
      }
    }
  }
  if (errs.length) throw forbidden('pods', pod, errs);
}

function admitClaim(pvc: KubeObject, ranges: Obj[]): void {
  const requests = (pvc as Obj).spec?.resources?.requests ?? {};
  const errs: string[] = [];
  for (const lr of ranges) {
    for (const item of Array.isArray(lr.spec?.limits) ? lr.spec.limits : []) {
      if (item?.type !== 'PersistentVolumeClaim') continue;
      // The claim's limits are not user input: min is checked against the requests alone.
      for (const [k, v] of entries(item.min)) {
        const e = minConstraint(item.type, k, v, requests, {});
        if (e) errs.push(e);
      }
      for (const [k, v] of entries(item.max)) {
        const e = maxRequestConstraint(item.type, k, v, requests);
        if (e) errs.push(e);
      }
    }
  }
  if (errs.length) throw forbidden('persistentvolumeclaims', pvc, errs);
}

export const limitRanger: AdmissionPlugin = {
  name: 'LimitRanger',
  async admit(req, registry) {
    if (req.subresource || !req.object || !req.namespace || req.resource.group !== '') return;
    const isPod = req.resource.resource === 'pods' && req.operation === 'CREATE';
    const isClaim = req.resource.resource === 'persistentvolumeclaims' && (req.operation === 'CREATE' || req.operation === 'UPDATE');
    if (!isPod && !isClaim) return;
    // Most namespaces have none: one counter read (kept by the LimitRanges' own creates and deletes) says so.
    if ((await registry.backend.count(LIMIT_RANGES_IN(req.namespace))) === 0) return;
    const ranges = (await registry.list(limitRanges, req.namespace)).items as Obj[];
    if (!ranges.length) return;
    if (isPod) admitPod(req.object, ranges);
    else admitClaim(req.object, ranges);
  },
};
