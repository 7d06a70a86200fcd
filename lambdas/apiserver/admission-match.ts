// What ValidatingAdmissionPolicies (admission-policy.ts) and admission webhooks (admission-webhooks.ts)
// share: their configurations, read through a short per-instance cache; which requests a rule, a
// namespaceSelector and an objectSelector match (k8s.io/apiserver/pkg/admission/plugin/webhook/predicates
// and policy/matching); and the admission.k8s.io/v1 AdmissionRequest both hand to CEL and to webhooks.
//
// Storage cost per write request (reads only, no write):
//   - the configurations: when this instance's view is older than CONFIG_MAX_AGE_MS (1 s), one list of each
//     of the four kinds' prefixes, in parallel, shared by concurrent requests; nothing between re-reads.
//     For CONFIG_MAX_AGE_MS after a valid write to an admissionregistration.k8s.io object passes this
//     instance's admission, every request re-reads, so a policy or webhook created here applies to the
//     very next request (other instances: within 1 s). `skiff up` is one apiserver, so locally every
//     configuration change applies at once without a watch;
//   - only when some policy or webhook matches the request's resource: the namespace (one get, when a
//     namespaceSelector is not empty or a policy names namespaceObject) and, for UPDATE and DELETE, the
//     stored object (one get, when a webhook is called, an objectSelector is set or a policy names
//     oldObject), each at most once per request whatever the number of policies and webhooks.

import { randomUUID } from 'node:crypto';
import { findResource } from '../machinery/resources.ts';
import { kindFor } from '../kinds/index.ts';
import { ErrorList } from '../machinery/validation.ts';
import { labelSelectorFromMetav1, type MetaLabelSelector } from '../machinery/selectors.ts';
import { ApiError } from '../machinery/status.ts';
import type { KubeObject } from '../machinery/types.ts';
import type { AdmissionRequest } from './admission.ts';
import type { Registry } from './registry.ts';
import { ADMISSION_CONFIGS } from './admission-quota.ts';
import type { Budget } from '../apiextensions/cel.ts';
import { authorizerVariable } from '../kinds/admissionregistration/cel-authorizer.ts';

type Obj = Record<string, any>;

export const ADMISSION_GROUP = 'admissionregistration.k8s.io';

/** How old an instance's view of the admission configurations may get (as crds.ts's maxAgeMs). */
export const CONFIG_MAX_AGE_MS = 1000;

interface CachedList {
  items: KubeObject[];
  at: number;
  pending?: Promise<KubeObject[]>;
}

const caches = new WeakMap<Registry, { lists: Map<string, CachedList>; freshUntil: number; none?: { at: number; empty: Promise<boolean> } }>();

function cacheOf(registry: Registry) {
  let c = caches.get(registry);
  if (!c) caches.set(registry, (c = { lists: new Map(), freshUntil: 0 }));
  return c;
}

/** The four configuration kinds: a refresh reads them all at once (one round trip of latency, not four). */
const CONFIG_RESOURCES = ['mutatingwebhookconfigurations', 'validatingadmissionpolicies', 'validatingadmissionpolicybindings', 'validatingwebhookconfigurations'];

function refresh(registry: Registry, resource: string): Promise<KubeObject[]> {
  const c = cacheOf(registry);
  let entry = c.lists.get(resource);
  if (!entry) c.lists.set(resource, (entry = { items: [], at: -Infinity }));
  const e = entry;
  const started = Date.now();
  e.pending = registry
    .list(findResource(ADMISSION_GROUP, 'v1', resource)!, undefined)
    .then((l) => {
      // An older read finishing late must not replace a newer one.
      if (started >= e.at) {
        e.items = l.items;
        e.at = started;
      }
      return l.items;
    })
    .finally(() => {
      e.pending = undefined;
    });
  return e.pending;
}

/**
 * The stored objects of one admissionregistration.k8s.io kind (cluster-scoped), from this instance's cache
 * when it is younger than CONFIG_MAX_AGE_MS. A stale view re-reads all four kinds in parallel.
 */
export async function admissionConfigs(registry: Registry, resource: string): Promise<KubeObject[]> {
  const c = cacheOf(registry);
  const now = Date.now();
  const hit = c.lists.get(resource);
  if (hit && now - hit.at < CONFIG_MAX_AGE_MS && now >= c.freshUntil) return hit.items;
  // Most clusters have no configuration at all: one counter read (kept by the configurations' own creates
  // and deletes, admission-quota.ts ADMISSION_CONFIGS) says so, instead of four lists.
  if (now >= c.freshUntil) {
    if (!c.none || now - c.none.at >= CONFIG_MAX_AGE_MS) c.none = { at: now, empty: registry.backend.count(ADMISSION_CONFIGS).then((n) => n === 0, (e) => ((c.none = undefined), Promise.reject(e))) };
    if (await c.none.empty) return [];
  }
  // Concurrent requests share one read, except just after a configuration write: a read begun before the
  // write was stored could miss it.
  if (hit?.pending && now >= c.freshUntil) return hit.pending;
  for (const other of CONFIG_RESOURCES) {
    if (other === resource) continue;
    const o = c.lists.get(other);
    if (!o?.pending && !(o && now - o.at < CONFIG_MAX_AGE_MS && now >= c.freshUntil)) void refresh(registry, other).catch(() => {});
  }
  return refresh(registry, resource);
}

/**
 * A write to an admission configuration is about to be stored: this instance re-reads the configurations
 * on every request for the next CONFIG_MAX_AGE_MS, so the change applies as soon as it is stored. Objects
 * the kind's validation refuses will not be stored, so they change nothing.
 */
const noted = new WeakSet<AdmissionRequest>();
export function noteConfigWrite(req: AdmissionRequest, registry: Registry): void {
  if (req.resource.group !== ADMISSION_GROUP || noted.has(req)) return;
  noted.add(req);
  if (req.object && req.operation !== 'DELETE') {
    const errs = new ErrorList();
    try {
      const kind = kindFor(req.resource);
      const o = structuredClone(req.object);
      kind.defaults?.(o);
      kind.validate?.(errs, o);
    } catch {
      // Malformed beyond validation: the registry refuses it.
      return;
    }
    if (errs.length) return;
  }
  cacheOf(registry).freshUntil = Date.now() + CONFIG_MAX_AGE_MS;
}

/** Admission configurations never apply to admission configurations (kube exempts them to avoid lock-outs). */
export function exempt(req: AdmissionRequest): boolean {
  return req.resource.group === ADMISSION_GROUP;
}

// ---- per-request reads, shared by every policy and webhook of one request ----

const requestReads = new WeakMap<AdmissionRequest, { ns?: Promise<KubeObject | undefined>; old?: Promise<KubeObject | undefined> }>();

function readsOf(req: AdmissionRequest) {
  let r = requestReads.get(req);
  if (!r) requestReads.set(req, (r = {}));
  return r;
}

const namespaces = () => findResource('', 'v1', 'namespaces')!;

/** The request's namespace object (undefined for cluster-scoped requests, or when it does not exist). */
export function namespaceOf(req: AdmissionRequest, registry: Registry): Promise<KubeObject | undefined> {
  if (!req.namespace || (req.resource.group === '' && req.resource.resource === 'namespaces')) return Promise.resolve(undefined);
  const r = readsOf(req);
  return (r.ns ??= registry.get(namespaces(), undefined, req.namespace).catch((e) => {
    if (e instanceof ApiError && e.code === 404) return undefined;
    throw e;
  }));
}

/** The stored object an UPDATE replaces (the request's own, or one read). */
export function oldObjectOf(req: AdmissionRequest, registry: Registry): Promise<KubeObject | undefined> {
  if (req.oldObject) return Promise.resolve(req.oldObject);
  if (req.operation !== 'UPDATE' && req.operation !== 'DELETE') return Promise.resolve(undefined);
  const name = req.name ?? req.object?.metadata?.name;
  if (!name) return Promise.resolve(undefined);
  const r = readsOf(req);
  return (r.old ??= registry.get(req.resource, req.namespace, name).catch((e) => {
    if (e instanceof ApiError && e.code === 404) return undefined;
    throw e;
  }));
}

// ---- matching ----

/** A RuleWithOperations (webhooks) or NamedRuleWithOperations (policies) against the request. */
export function ruleMatches(rule: Obj, req: AdmissionRequest): boolean {
  const any = (list: unknown, v: string) => Array.isArray(list) && (list.includes('*') || list.includes(v));
  if (!any(rule.operations, req.operation)) return false;
  if (!any(rule.apiGroups, req.resource.group)) return false;
  if (!any(rule.apiVersions, req.resource.version)) return false;
  const scope = rule.scope ?? '*';
  if (scope === 'Cluster' && req.resource.namespaced) return false;
  if (scope === 'Namespaced' && !req.resource.namespaced) return false;
  const sub = req.subresource ?? '';
  const resOK = (Array.isArray(rule.resources) ? rule.resources : []).some((r: string) => {
    if (r === '*/*') return true;
    const [res, rsub] = r.split('/', 2) as [string, string | undefined];
    if (res !== '*' && res !== req.resource.resource) return false;
    if (rsub === undefined) return sub === '';
    return rsub === '*' || rsub === sub;
  });
  if (!resOK) return false;
  const names = rule.resourceNames;
  if (Array.isArray(names) && names.length) {
    const name = req.name ?? req.object?.metadata?.name;
    if (!name || !names.includes(name)) return false;
  }
  return true;
}

const isEmptySelector = (s: unknown): boolean =>
  !!s && typeof s === 'object' && !Object.keys((s as Obj).matchLabels ?? {}).length && !((s as Obj).matchExpressions ?? []).length;

/**
 * namespaceSelector: cluster-scoped requests match (a Namespace is matched by its own labels); others by
 * the labels of their namespace (one read, skipped when the selector is empty).
 */
export async function namespaceSelectorMatches(selector: unknown, req: AdmissionRequest, registry: Registry): Promise<boolean> {
  if (selector === undefined || selector === null || isEmptySelector(selector)) return true;
  let labels: Record<string, string> | undefined;
  if (req.resource.group === '' && req.resource.resource === 'namespaces') {
    labels = (req.object ?? (await oldObjectOf(req, registry)))?.metadata?.labels;
  } else if (!req.namespace) {
    return true;
  } else {
    labels = (await namespaceOf(req, registry))?.metadata?.labels;
  }
  return labelSelectorFromMetav1(selector as MetaLabelSelector).matches(labels ?? {});
}

/** objectSelector: the new object's or the old object's labels match. */
export async function objectSelectorMatches(selector: unknown, req: AdmissionRequest, registry: Registry): Promise<boolean> {
  if (selector === undefined || selector === null || isEmptySelector(selector)) return true;
  const sel = labelSelectorFromMetav1(selector as MetaLabelSelector);
  if (req.object && sel.matches(req.object.metadata?.labels ?? {})) return true;
  const old = await oldObjectOf(req, registry);
  return !!old && sel.matches(old.metadata?.labels ?? {});
}

/** Policies' MatchResources: rules, exclusions and both selectors. */
export async function matchResourcesMatch(m: Obj | undefined, req: AdmissionRequest, registry: Registry): Promise<boolean> {
  if (!m) return true;
  const rules: Obj[] = Array.isArray(m.resourceRules) ? m.resourceRules : [];
  if (!rules.some((r) => ruleMatches(r, req))) return false;
  const excluded: Obj[] = Array.isArray(m.excludeResourceRules) ? m.excludeResourceRules : [];
  if (excluded.some((r) => ruleMatches(r, req))) return false;
  return (await namespaceSelectorMatches(m.namespaceSelector, req, registry)) && (await objectSelectorMatches(m.objectSelector, req, registry));
}

// ---- the AdmissionRequest ----

const OPTIONS_KIND: Record<string, string> = { CREATE: 'CreateOptions', UPDATE: 'UpdateOptions', DELETE: 'DeleteOptions' };

/** admission.k8s.io/v1 AdmissionRequest: what a webhook receives, and CEL's `request` (without the objects). */
/** The `authorizer` CEL variable of an evaluation for this request (as the requesting user, on its resource). */
export function authorizerFor(req: AdmissionRequest, budget: Budget): unknown {
  const r = req.resource;
  return authorizerVariable(req.authorizer, req.user, { group: r.group, version: r.version, resource: r.resource, subresource: req.subresource, namespace: req.namespace, name: nameOf(req) }, budget);
}

export function reviewRequest(req: AdmissionRequest, withObjects: { object?: unknown; oldObject?: unknown } | undefined): Obj {
  const r = req.resource;
  const kind = { group: r.group, version: r.version, kind: r.kind };
  const resource = { group: r.group, version: r.version, resource: r.resource };
  const name = req.name ?? req.object?.metadata?.name;
  const out: Obj = {
    uid: uidOf(req),
    kind,
    resource,
    ...(req.subresource ? { subResource: req.subresource } : {}),
    requestKind: kind,
    requestResource: resource,
    ...(req.subresource ? { requestSubResource: req.subresource } : {}),
    ...(name ? { name } : {}),
    ...(req.namespace ? { namespace: req.namespace } : {}),
    operation: req.operation,
    userInfo: { username: req.user.username, ...(req.user.uid ? { uid: req.user.uid } : {}), groups: req.user.groups },
    dryRun: !!req.dryRun,
  };
  if (withObjects) {
    out.object = withObjects.object ?? null;
    out.oldObject = withObjects.oldObject ?? null;
    const ok = OPTIONS_KIND[req.operation];
    out.options = ok ? { kind: ok, apiVersion: 'meta.k8s.io/v1' } : null;
  }
  return out;
}

const uids = new WeakMap<AdmissionRequest, string>();
/** One uid per request, the same for every webhook it is sent to (as kube-apiserver's). */
function uidOf(req: AdmissionRequest): string {
  let u = uids.get(req);
  if (!u) uids.set(req, (u = randomUUID()));
  return u;
}

/** The name kube's admission errors give the object: the request's, else the object's. */
export function nameOf(req: AdmissionRequest): string {
  return req.name ?? req.object?.metadata?.name ?? '';
}
