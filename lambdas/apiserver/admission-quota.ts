// ResourceQuota admission (kube's plugin/pkg/admission/resourcequota with the evaluators of
// pkg/quota/v1/evaluator/core), charged in the create's own storage write.
//
// Why in the write: kube's admission reads status.used, adds the request and writes the quota back with a
// compare-and-swap before the object is stored, so every create of a namespace serializes on the quota
// object and a crash between the two writes leaks usage until the controller recomputes. Here the usage
// of each quota resource is a store counter (Backend CreateOptions.charges: group
// "quota/<quota uid>/<resource>"), added to in the same atomic write that stores the object, on the
// condition that it stays within the limit; the object's delete gives it back in its own atomic write.
// So a quota can never be overshot, however many apiservers create at once, and deletes need no
// recompute. The quota controller (controllers/resourcequota.ts) publishes the counters as status.used.
//
// A resource takes part once the controller has charged the objects stored before it was quota'd:
// status.hard names it (the limit used here is status.hard, as kube's), status.used too. Named in
// status.hard but not yet in status.used: creates that would use it are refused, as kube refuses them,
// with "status unknown for quota" (the controller is charging the existing objects).
//
// Cost per create of a namespaced object: one list of the namespace's ResourceQuotas (a Query on
// DynamoDB); when none charges the object, nothing more. Charges are items of the create's own
// transaction (one per quota resource used). A refusal reads the charged counters (one read each).
//
// What is charged is the object as it will be stored, after every admission plugin (LimitRange's
// defaults) and the kind's defaulting (a pod's requests default to its limits): Registry.create asks
// here after those, so quota is the last admission step, as in kube.
//
// Updates: an update that changes what quota sees of the object (its usage, or for a pod what its scopes
// look at) replaces the object's charges in its own storage write (Backend UpdateOptions.charges): a
// pod reaching a terminal phase gives its compute back, as kube's evaluator stops counting it; a PVC's
// storage resize or a Service turned LoadBalancer takes more, refused past the limit with kube's words
// ("requested" is the rise). Every other update keeps the charges and reads no quota.

import type { Charge } from '../storage/backend.ts';
import { parseQuantityExact, formatQuantity, type ParsedQuantity } from '../machinery/quantity.ts';
import { findResource, type ResourceInfo } from '../machinery/resources.ts';
import { labelSelectorFromMetav1 } from '../machinery/selectors.ts';
import { ApiError, errors, qualifiedResource } from '../machinery/status.ts';
import { isObject, type KubeObject } from '../machinery/types.ts';
import type { Registry } from './registry.ts';
import { selectsNamespace } from '../kinds/quota/clusterresourcequota.ts';

type Obj = Record<string, any>;
/** Usage by quota resource name: exact values (nanos) with the format to print them in. */
export type Usage = Map<string, ParsedQuantity>;

const resourceQuotas = findResource('', 'v1', 'resourcequotas')!;
const clusterQuotas = findResource('quota.skiff.io', 'v1', 'clusterresourcequotas')!;
const namespaces = findResource('', 'v1', 'namespaces')!;
const NANO = 1_000_000_000n;
const one = (): ParsedQuantity => ({ nanos: NANO, format: 'DecimalSI' });

function q(v: unknown): ParsedQuantity | undefined {
  if (isObject(v) && typeof v.nanos === 'bigint') return v as unknown as ParsedQuantity; // summed already
  try {
    return typeof v === 'string' || typeof v === 'number' ? parseQuantityExact(v) : undefined;
  } catch {
    return undefined;
  }
}

function add(u: Usage, name: string, v: ParsedQuantity | undefined): void {
  if (!v) return;
  const cur = u.get(name);
  u.set(name, cur ? { nanos: cur.nanos + v.nanos, format: cur.format } : { ...v });
}

/** The counter group of one resource of one quota. */
export const chargeGroup = (quotaUid: string, resource: string): string => `quota/${quotaUid}/${resource}`;
/** A ClusterResourceQuota's groups: its total (limited), and each namespace's part (for status only). */
export const clusterChargeGroup = (quotaUid: string, resource: string): string => `cquota/${quotaUid}/${resource}`;
export const clusterNamespaceGroup = (quotaUid: string, namespace: string, resource: string): string => `cquota/${quotaUid}/${namespace}/${resource}`;

/** How many ResourceQuotas a namespace holds, and ClusterResourceQuotas the cluster: counters kept by their creates and deletes. */
export const QUOTAS_IN = (namespace: string) => `quotas/${namespace}`;
export const CLUSTER_QUOTAS = 'clusterquotas';
/** How many LimitRanges a namespace holds (admission-limitranger.ts reads it before listing them). */
export const LIMIT_RANGES_IN = (namespace: string) => `limitranges/${namespace}`;

/**
 * A quota's or a LimitRange's create joins its namespace's presence counter (its delete leaves it), so
 * admission reads one counter, and lists only where there are some.
 */
function presenceCharge(res: ResourceInfo, namespace: string): Charge | undefined {
  if (res.group !== '') return undefined;
  if (res.resource === 'resourcequotas') return { group: QUOTAS_IN(namespace), amount: 1, limit: Number.MAX_SAFE_INTEGER };
  if (res.resource === 'limitranges') return { group: LIMIT_RANGES_IN(namespace), amount: 1, limit: Number.MAX_SAFE_INTEGER };
  return undefined;
}

/** How many admission configurations (webhooks, policies, bindings) the cluster holds (admission-match.ts). */
export const ADMISSION_CONFIGS = 'admission-configs';
const ADMISSION_CONFIG_RESOURCES = new Set(['mutatingwebhookconfigurations', 'validatingwebhookconfigurations', 'validatingadmissionpolicies', 'validatingadmissionpolicybindings']);

/**
 * The presence charge of a cluster-scoped kind that admission looks for on every write: a ClusterResourceQuota,
 * or an admission configuration. A request then reads one counter to learn there are none, not their lists.
 */
export function clusterQuotaPresence(res: ResourceInfo): Charge[] | undefined {
  if (res.group === clusterQuotas.group && res.resource === clusterQuotas.resource) return [{ group: CLUSTER_QUOTAS, amount: 1, limit: Number.MAX_SAFE_INTEGER }];
  if (res.group === 'admissionregistration.k8s.io' && ADMISSION_CONFIG_RESOURCES.has(res.resource)) return [{ group: ADMISSION_CONFIGS, amount: 1, limit: Number.MAX_SAFE_INTEGER }];
  return undefined;
}

/** Charges are whole milli-units (exact for every quantity kube quotas: cpu in millicores, bytes x 1000). */
export const toMilli = (nanos: bigint): number => Number((nanos + 999_999n) / 1_000_000n);
export const fromMilli = (milli: number, format: ParsedQuantity['format']): string => formatQuantity({ nanos: BigInt(milli) * 1_000_000n, format });

/** resourcehelper.PodRequests/PodLimits: containers summed, the largest init container if larger, plus overhead. */
function podResources(pod: Obj, field: 'requests' | 'limits'): Record<string, ParsedQuantity> {
  const sum: Record<string, ParsedQuantity> = {};
  for (const c of Array.isArray(pod.spec?.containers) ? pod.spec.containers : []) {
    for (const [k, v] of Object.entries(isObject(c?.resources?.[field]) ? c.resources[field] : {})) {
      const x = q(v);
      if (x) sum[k] = sum[k] ? { nanos: sum[k]!.nanos + x.nanos, format: sum[k]!.format } : x;
    }
  }
  for (const c of Array.isArray(pod.spec?.initContainers) ? pod.spec.initContainers : []) {
    for (const [k, v] of Object.entries(isObject(c?.resources?.[field]) ? c.resources[field] : {})) {
      const x = q(v);
      if (x && (!sum[k] || x.nanos > sum[k]!.nanos)) sum[k] = x;
    }
  }
  for (const [k, v] of Object.entries(isObject(pod.spec?.overhead) ? pod.spec.overhead : {})) {
    const x = q(v);
    if (x && sum[k]) sum[k] = { nanos: sum[k]!.nanos + x.nanos, format: sum[k]!.format };
  }
  return sum;
}

/** podComputeUsageHelper. */
function podComputeUsage(requests: Obj, limits: Obj): Usage {
  const u: Usage = new Map([['pods', one()]]);
  for (const r of ['cpu', 'memory', 'ephemeral-storage']) {
    const req = q(requests[r]);
    if (req) {
      u.set(r, req);
      u.set(`requests.${r}`, req);
    }
    const lim = q(limits[r]);
    if (lim) u.set(`limits.${r}`, lim);
  }
  for (const [k, v] of Object.entries(requests)) if (k.startsWith('hugepages-')) add(u, `requests.${k}`, q(v));
  return u;
}

/** The usage an object brings to a quota (the evaluators' Usage), with its object count. */
export function usageOf(res: ResourceInfo, o: KubeObject): Usage {
  const u: Usage = new Map([[res.group ? `count/${res.resource}.${res.group}` : `count/${res.resource}`, one()]]);
  if (res.group !== '') return u;
  switch (res.resource) {
    case 'pods': {
      if (o.status?.phase === 'Succeeded' || o.status?.phase === 'Failed') return u;
      for (const [k, v] of podComputeUsage(podResources(o, 'requests'), podResources(o, 'limits'))) u.set(k, v);
      return u;
    }
    case 'services': {
      u.set('services', one());
      const type = o.spec?.type;
      if (type === 'LoadBalancer') u.set('services.loadbalancers', one());
      if (type === 'NodePort' || type === 'LoadBalancer') {
        const n = (Array.isArray(o.spec?.ports) ? o.spec.ports : []).length;
        u.set('services.nodeports', { nanos: BigInt(n) * NANO, format: 'DecimalSI' });
      }
      return u;
    }
    case 'persistentvolumeclaims': {
      u.set('persistentvolumeclaims', one());
      const storage = q(o.spec?.resources?.requests?.storage);
      if (storage) u.set('requests.storage', storage);
      const cls = o.spec?.storageClassName;
      if (typeof cls === 'string' && cls) {
        u.set(`${cls}.storageclass.storage.k8s.io/persistentvolumeclaims`, one());
        if (storage) u.set(`${cls}.storageclass.storage.k8s.io/requests.storage`, storage);
      }
      return u;
    }
    case 'secrets':
    case 'configmaps':
    case 'replicationcontrollers':
    case 'resourcequotas':
      u.set(res.resource, one());
      return u;
  }
  return u;
}

/** The scopes of a quota as scope selector requirements (spec.scopes are Exists requirements). */
function scopesOf(spec: Obj): Obj[] {
  const scopes = (Array.isArray(spec.scopes) ? spec.scopes : []).map((s: string) => ({ scopeName: s, operator: 'Exists' }));
  const sel = Array.isArray(spec.scopeSelector?.matchExpressions) ? spec.scopeSelector.matchExpressions : [];
  return [...scopes, ...sel];
}

/** qos.GetPodQOS(pod) == BestEffort: no container requests or limits cpu or memory. */
function isBestEffort(pod: Obj): boolean {
  const all = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
  return !all.some((c: Obj) =>
    ['requests', 'limits'].some((f) => ['cpu', 'memory'].some((r) => { const x = q(c?.resources?.[f]?.[r]); return x !== undefined && x.nanos !== 0n; })),
  );
}

function crossNamespaceAffinity(pod: Obj): boolean {
  const terms = (a: Obj | undefined) => [
    ...(a?.requiredDuringSchedulingIgnoredDuringExecution ?? []),
    ...(a?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((w: Obj) => w?.podAffinityTerm),
  ];
  const aff = pod.spec?.affinity ?? {};
  return [...terms(aff.podAffinity), ...terms(aff.podAntiAffinity)].some((t: Obj) => (t?.namespaces?.length ?? 0) > 0 || t?.namespaceSelector != null);
}

/** podMatchesScopeFunc. */
function podMatchesScope(pod: Obj, sel: Obj): boolean {
  switch (sel.scopeName) {
    case 'Terminating':
      return typeof pod.spec?.activeDeadlineSeconds === 'number' && pod.spec.activeDeadlineSeconds >= 0;
    case 'NotTerminating':
      return !(typeof pod.spec?.activeDeadlineSeconds === 'number' && pod.spec.activeDeadlineSeconds >= 0);
    case 'BestEffort':
      return isBestEffort(pod);
    case 'NotBestEffort':
      return !isBestEffort(pod);
    case 'PriorityClass': {
      const pc = typeof pod.spec?.priorityClassName === 'string' ? pod.spec.priorityClassName : '';
      if (sel.operator === 'Exists') return pc !== '';
      const labels: Record<string, string> = pc ? { PriorityClass: pc } : {};
      return labelSelectorFromMetav1({ matchExpressions: [{ key: 'PriorityClass', operator: sel.operator, values: sel.values }] }).matches(labels);
    }
    case 'CrossNamespacePodAffinity':
      return crossNamespaceAffinity(pod);
  }
  return false;
}

/** Whether a quota's scopes admit the object (only pods have scopes; a scoped quota charges nothing else). */
export function matchesScopes(res: ResourceInfo, spec: Obj, o: KubeObject): boolean {
  const scopes = scopesOf(spec);
  if (scopes.length === 0) return true;
  if (res.group !== '' || res.resource !== 'pods') return false;
  return scopes.every((s) => podMatchesScope(o, s));
}

const VALIDATION_SET = new Set(['cpu', 'memory', 'requests.cpu', 'requests.memory', 'limits.cpu', 'limits.memory']);

/** podEvaluator.Constraints: each container must state the cpu/memory a quota tracks ("must specify ..."). */
function podConstraints(pod: Obj, hard: string[]): string | undefined {
  const required = hard.filter((r) => VALIDATION_SET.has(r));
  if (!required.length) return undefined;
  const missing = new Map<string, Set<string>>();
  for (const c of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]) {
    const have = podComputeUsage(isObject(c?.resources?.requests) ? c.resources.requests : {}, isObject(c?.resources?.limits) ? c.resources.limits : {});
    for (const r of required) if (!have.has(r)) missing.set(r, (missing.get(r) ?? new Set()).add(String(c?.name ?? '')));
  }
  if (!missing.size) return undefined;
  const parts = [...missing.keys()].sort().map((r) => `${r} for: ${[...missing.get(r)!].sort().join(',')}`);
  return `must specify ${parts.join('; ')}`;
}

/** quota.prettyPrint: "k=v,k2=v2" sorted by resource name. */
function prettyPrint(m: Map<string, string>): string {
  return [...m.keys()].sort().map((k) => `${k}=${m.get(k)}`).join(',');
}

/** What a write is charged, and how a LimitExceeded answer is worded. */
export interface QuotaPlan {
  charges: Charge[];
  /** kube's "exceeded quota" refusal, worded from the counters now; undefined if nothing exceeds (anymore). */
  refusal(name: string): Promise<ApiError | undefined>;
}

/** A charged quota resource: the charge (the object's whole usage of it) and, for a refusal, what it asks for more. */
interface Item {
  resource: string;
  charge: Charge;
  /** What the write adds: the whole usage on create, the rise on update (may be zero or less). */
  requested: ParsedQuantity;
  hard: ParsedQuantity;
}

interface Charged {
  quota: KubeObject;
  /** Charges that only keep a tally (a ClusterResourceQuota's namespace part): never the reason of a refusal. */
  tallies?: Charge[];
  items: Item[];
  /** An update's: this quota's groups the object no longer uses (charge 0: given back if it held them). */
  released?: Charge[];
}

/**
 * What quota has to say about an object quota can charge, as a string: its usage and, for a pod, what its
 * scopes look at. When an update leaves it as it was, the object keeps its charges and no quota is read
 * (so a ConfigMap's or a running pod's update costs quota nothing).
 */
export function chargeSignature(res: ResourceInfo, o: KubeObject): string {
  const usage = [...usageOf(res, o)].map(([k, v]) => `${k}=${v.nanos}`).sort();
  if (res.group !== '' || res.resource !== 'pods') return usage.join(',');
  const scopes = ['Terminating', 'BestEffort', 'CrossNamespacePodAffinity'].map((s) => podMatchesScope(o, { scopeName: s }));
  return JSON.stringify([usage, scopes, o.spec?.priorityClassName ?? '']);
}

/**
 * The charges of `o` (as it will be stored) in `namespace`: of a create, or with `old` of an update that
 * changes what quota sees (chargeSignature). Throws kube's 403 for a pod that does not state what a quota
 * requires, or a quota whose usage is still being counted; 'keep' (an update only): a quota is counting a
 * resource the update does not raise, and the object keeps its charges (the counting charges it).
 */
async function chargesOf(registry: Registry, res: ResourceInfo, namespace: string, o: KubeObject, old?: KubeObject): Promise<{ presence?: Charge; charged: Charged[] } | 'keep'> {
  const byName = (a: KubeObject, b: KubeObject) => String(a.metadata.name).localeCompare(String(b.metadata.name));
  // Whether there are quotas to read at all: two counter reads (GetItems), kept exact by the quotas' own
  // creates and deletes (presence charges, below); the lists only when there are.
  const presence = presenceCharge(res, namespace);
  const [inNamespace, inCluster] = await Promise.all([registry.backend.count(QUOTAS_IN(namespace)), registry.backend.count(CLUSTER_QUOTAS)]);
  const [quotas, cluster] = await Promise.all([
    inNamespace > 0 ? registry.list(resourceQuotas, namespace).then((l) => l.items.sort(byName)) : [],
    inCluster > 0 ? registry.list(clusterQuotas, undefined).then((l) => l.items.sort(byName)) : [],
  ]);
  if (!quotas.length && !cluster.length) return { presence, charged: [] };
  const usage = usageOf(res, o);
  const oldUsage = old && usageOf(res, old);
  const forbidden = (msg: string) => errors.forbidden(`${qualifiedResource(res.resource, res.group)} "${o.metadata.name ?? ''}" is forbidden: ${msg}`);
  let keep = false;
  /** One quota's items; `hard` its limits, `used` its published usage, `spec` where its scopes are. */
  const itemsOf = (quota: KubeObject, hard: Obj, used: Obj, spec: Obj, group: (r: string) => string): Item[] => {
    const matched = Object.keys(hard).filter((r) => usage.has(r));
    if (!matched.length || !matchesScopes(res, spec, o)) return [];
    // What the object held of this quota before the update (nothing, if the quota did not match it then).
    const before = old && oldUsage && matchesScopes(res, spec, old) ? oldUsage : new Map<string, ParsedQuantity>();
    const rise = (r: string) => usage.get(r)!.nanos - (before.get(r)?.nanos ?? 0n);
    if (!old && res.group === '' && res.resource === 'pods') {
      const missing = podConstraints(o, Object.keys(hard));
      if (missing) throw forbidden(`failed quota: ${quota.metadata.name}: ${missing}`);
    }
    const unknown = matched.filter((r) => used[r] === undefined).sort();
    if (unknown.length) {
      // An update is refused only for what it raises, as kube checks the delta.
      if (!old || unknown.some((r) => rise(r) > 0n)) throw forbidden(`status unknown for quota: ${quota.metadata.name}, resources: ${unknown.filter((r) => !old || rise(r) > 0n).join(',')}`);
      keep = true;
    }
    return matched.flatMap((r) => {
      const total = usage.get(r)!;
      const hq = q(hard[r]);
      if (!hq || total.nanos <= 0n) return [];
      const requested = old ? { nanos: rise(r), format: total.format } : total;
      return [{ resource: r, requested, hard: hq, charge: { group: group(r), amount: toMilli(total.nanos), limit: toMilli(hq.nanos) } }];
    });
  };
  /** An update's releases: each resource of the quota the object is not charged now, at 0. */
  const releasedOf = (hard: Obj, items: Item[], group: (r: string) => string): Charge[] =>
    old ? Object.keys(hard).filter((r) => !items.some((i) => i.resource === r)).map((r) => ({ group: group(r), amount: 0, limit: Number.MAX_SAFE_INTEGER })) : [];
  const charged: Charged[] = [];
  for (const quota of quotas) {
    const hard: Obj = isObject(quota.status?.hard) ? quota.status.hard : {};
    const group = (r: string) => chargeGroup(quota.metadata.uid!, r);
    const items = itemsOf(quota, hard, isObject(quota.status?.used) ? quota.status.used : {}, isObject(quota.spec) ? quota.spec : {}, group);
    const released = releasedOf(hard, items, group);
    if (items.length || released.length) charged.push({ quota, items, released });
  }
  // ClusterResourceQuotas selecting the namespace (one more read, only when there are any): status.total
  // holds the limits, and the namespace's entry in status.namespaces says its objects are counted.
  const ns = cluster.length ? await registry.get(namespaces, undefined, namespace).catch(() => undefined) : undefined;
  for (const quota of ns ? cluster.filter((c) => selectsNamespace(c, ns)) : []) {
    const part = (Array.isArray(quota.status?.namespaces) ? quota.status.namespaces : []).find((n: Obj) => n?.namespace === namespace);
    const hard: Obj = isObject(quota.status?.total?.hard) ? quota.status.total.hard : {};
    const items = itemsOf(quota, hard, isObject(part?.status?.used) ? part.status.used : {}, isObject(quota.spec?.quota) ? quota.spec.quota : {}, (r) =>
      clusterChargeGroup(quota.metadata.uid!, r),
    );
    const tally = (r: string) => clusterNamespaceGroup(quota.metadata.uid!, namespace, r);
    const tallies = items.map((i) => ({ group: tally(i.resource), amount: i.charge.amount, limit: Number.MAX_SAFE_INTEGER }));
    const released = [...releasedOf(hard, items, (r) => clusterChargeGroup(quota.metadata.uid!, r)), ...releasedOf(hard, items, tally)];
    if (items.length || released.length) charged.push({ quota, items, tallies, released });
  }
  return keep ? 'keep' : { presence, charged };
}

/** kube's "exceeded quota" refusal, worded from the counters now; undefined if nothing exceeds (anymore). */
async function refusalOf(registry: Registry, res: ResourceInfo, charged: Charged[], name: string): Promise<ApiError | undefined> {
  // kube's checkRequest: the first quota (by name) with a resource the request would take past its limit.
  for (const { quota, items } of charged) {
    const now = await Promise.all(items.map((i) => registry.backend.count(i.charge.group)));
    const over = items.filter((i, n) => i.requested.nanos > 0n && now[n]! + toMilli(i.requested.nanos) > i.charge.limit);
    if (!over.length) continue;
    const requested = new Map(over.map((i) => [i.resource, formatQuantity(i.requested)]));
    const used = new Map(over.map((i) => [i.resource, fromMilli(now[items.indexOf(i)]!, i.hard.format)]));
    const limited = new Map(over.map((i) => [i.resource, formatQuantity(i.hard)]));
    return errors.forbidden(
      `${qualifiedResource(res.resource, res.group)} "${name}" is forbidden: exceeded quota: ${quota.metadata.name}, requested: ${prettyPrint(requested)}, used: ${prettyPrint(used)}, limited: ${prettyPrint(limited)}`,
    );
  }
  return undefined;
}

const chargesIn = (presence: Charge | undefined, charged: Charged[]): Charge[] => [
  ...(presence ? [presence] : []),
  ...charged.flatMap((c) => [...c.items.map((i) => i.charge), ...(c.tallies ?? []), ...(c.released ?? [])]),
];

/**
 * The charges of creating `o` (as it will be stored) in `namespace`; throws kube's 403 for a pod that does
 * not state what a quota requires, or a quota whose usage is still being counted.
 */
export async function planQuotaCharges(registry: Registry, res: ResourceInfo, namespace: string, o: KubeObject): Promise<QuotaPlan | undefined> {
  const plan = await chargesOf(registry, res, namespace, o);
  if (plan === 'keep') throw new Error('unreachable: a create has nothing to keep');
  const charges = chargesIn(plan.presence, plan.charged);
  if (!charges.length) return undefined;
  return { charges, refusal: (name) => refusalOf(registry, res, plan.charged, name) };
}

/**
 * The charges an update brings (Backend UpdateOptions.charges): for every quota of the namespace (and
 * cluster quota selecting it), the object's charge in each of its resources from now on, 0 for those it
 * no longer uses. A pod that ends gives its compute back; a claim resized or a Service turned
 * LoadBalancer takes more, within the quota, in the update's own write. Charges of quotas not read here
 * (made meanwhile) are left alone. Undefined: the object keeps its charges (quota sees no change, or is
 * counting what the update touches). Throws as planQuotaCharges.
 */
export async function planQuotaUpdate(registry: Registry, res: ResourceInfo, namespace: string, o: KubeObject, old: KubeObject): Promise<QuotaPlan | undefined> {
  if (chargeSignature(res, o) === chargeSignature(res, old)) return undefined;
  const plan = await chargesOf(registry, res, namespace, o, old);
  if (plan === 'keep') return undefined;
  return { charges: chargesIn(plan.presence, plan.charged), refusal: (name) => refusalOf(registry, res, plan.charged, name) };
}
