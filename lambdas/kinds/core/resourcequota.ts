// ResourceQuota (core/v1): pkg/registry/core/resourcequota and pkg/apis/core/validation's
// ValidateResourceQuota. Quota admission (apiserver/admission-quota.ts) charges creates against it; the
// quota controller (controllers/resourcequota.ts) keeps status.hard and status.used.

import { ageCol, col, nameCol, since, str } from '../../machinery/table.ts';
import { canonicalQuantity, formatQuantity, type ParsedQuantity } from '../../machinery/quantity.ts';
import { isObject } from '../../machinery/types.ts';
import { dns1123SubdomainErrors, ErrorList, nameIsDNSSubdomain, obj, quantity } from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

type Obj = Record<string, any>;

/** helper.IsStandardQuotaResourceName: what a quota may name without a "/" (pkg/apis/core/helper). */
export const STANDARD_QUOTA_RESOURCES = new Set([
  'pods',
  'services',
  'replicationcontrollers',
  'resourcequotas',
  'secrets',
  'configmaps',
  'persistentvolumeclaims',
  'services.nodeports',
  'services.loadbalancers',
  'cpu',
  'memory',
  'ephemeral-storage',
  'requests.cpu',
  'requests.memory',
  'requests.storage',
  'requests.ephemeral-storage',
  'limits.cpu',
  'limits.memory',
  'limits.ephemeral-storage',
]);

/** helper.IsIntegerResourceName. */
const INTEGER_RESOURCES = new Set(['pods', 'services', 'replicationcontrollers', 'resourcequotas', 'secrets', 'configmaps', 'persistentvolumeclaims', 'services.nodeports', 'services.loadbalancers']);

export const QUOTA_SCOPES = ['Terminating', 'NotTerminating', 'BestEffort', 'NotBestEffort', 'PriorityClass', 'CrossNamespacePodAffinity'];
const POD_COUNT = new Set(['pods', 'count/pods']);
const POD_COMPUTE = new Set(['cpu', 'memory', 'limits.cpu', 'limits.memory', 'requests.cpu', 'requests.memory']);

/** helper.IsResourceQuotaScopeValidForResource. */
export function scopeValidForResource(scope: string, resource: string): boolean {
  if (scope === 'BestEffort') return POD_COUNT.has(resource);
  return POD_COUNT.has(resource) || POD_COMPUTE.has(resource);
}

/** ValidateResourceQuotaResourceName (with validateResourceName's qualified-name check). */
function validateQuotaResourceName(errs: ErrorList, field: string, name: string): void {
  const parts = name.split('/');
  const msgs: string[] = [];
  // validation.IsQualifiedName: an optional DNS-subdomain prefix, then a name of at most 63 characters.
  const local = parts.length === 2 ? parts[1]! : parts[0]!;
  if (parts.length > 2) msgs.push("a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')");
  else {
    if (parts.length === 2) {
      if (parts[0] === '') msgs.push('prefix part must be non-empty');
      else for (const m of dns1123SubdomainErrors(parts[0]!)) msgs.push(`prefix part ${m}`);
    }
    if (local === '') msgs.push('name part must be non-empty');
    else if (local.length > 63) msgs.push('name part must be no more than 63 characters');
    if (local !== '' && !/^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/.test(local)) {
      msgs.push("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')");
    }
  }
  for (const m of msgs) errs.invalid(field, name, m);
  if (msgs.length) return;
  if (parts.length === 1 && !STANDARD_QUOTA_RESOURCES.has(name) && !name.startsWith('hugepages-') && !name.startsWith('requests.hugepages-')) {
    errs.invalid(field, name, 'must be a standard resource for quota');
  }
}

/** ValidateResourceQuantityValue: non-negative, and whole for the counted resources. */
function validateQuotaQuantity(errs: ErrorList, field: string, name: string, v: unknown): void {
  let parsed: ParsedQuantity;
  try {
    parsed = quantity(v);
  } catch {
    return; // decoding already refused it (schema.ts)
  }
  // The value as kube prints a Quantity (canonical: "1.5" is "1500m").
  const shown = formatQuantity(parsed);
  if (parsed.nanos < 0n) errs.invalid(field, shown, 'must be greater than or equal to 0');
  if (INTEGER_RESOURCES.has(name) && parsed.nanos % 1_000_000_000n !== 0n) errs.invalid(field, shown, 'must be an integer');
}

function validateResourceList(errs: ErrorList, list: unknown, field: string): void {
  for (const [k, v] of Object.entries(obj(list))) {
    validateQuotaResourceName(errs, `${field}[${k}]`, k);
    validateQuotaQuantity(errs, `${field}[${k}]`, k, v);
  }
}

/** validateResourceQuotaScopes and validateScopeSelector. */
function validateScopes(errs: ErrorList, spec: Obj): void {
  const scopes: unknown[] = Array.isArray(spec.scopes) ? spec.scopes : [];
  const hard = Object.keys(obj(spec.hard)).sort();
  const set = new Set<string>();
  for (const s of scopes) {
    if (!QUOTA_SCOPES.includes(s as string)) errs.invalid('spec.scopes', scopes, 'unsupported scope');
    for (const k of hard) {
      if (STANDARD_QUOTA_RESOURCES.has(k) && !scopeValidForResource(s as string, k)) errs.invalid('spec.scopes', scopes, 'unsupported scope applied to resource');
    }
    set.add(s as string);
  }
  for (const [a, b] of [
    ['BestEffort', 'NotBestEffort'],
    ['Terminating', 'NotTerminating'],
  ]) {
    if (set.has(a!) && set.has(b!)) errs.invalid('spec.scopes', scopes, 'conflicting scopes');
  }
  const sel = obj(spec.scopeSelector);
  const exprs: unknown[] = Array.isArray(sel.matchExpressions) ? sel.matchExpressions : [];
  const selScopes = new Set<string>();
  exprs.forEach((e, i) => {
    const req = obj(e);
    const f = `spec.scopeSelector.matchExpressions[${i}]`;
    const name = str(req.scopeName);
    if (!QUOTA_SCOPES.includes(name)) errs.invalid(`${f}.scopeName`, req.scopeName, 'unsupported scope');
    for (const k of hard) {
      if (STANDARD_QUOTA_RESOURCES.has(k) && QUOTA_SCOPES.includes(name) && !scopeValidForResource(name, k)) {
        errs.invalid('spec.scopeSelector', spec.scopeSelector, 'unsupported scope applied to resource');
      }
    }
    const values: unknown[] = Array.isArray(req.values) ? req.values : [];
    switch (req.operator) {
      case 'In':
      case 'NotIn':
        if (values.length === 0) errs.invalid(`${f}.values`, values, 'must be at least one value when `operator` is \'In\' or \'NotIn\' for scope selector');
        break;
      case 'Exists':
      case 'DoesNotExist':
        if (values.length !== 0) errs.invalid(`${f}.values`, values, "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector");
        break;
      default:
        errs.invalid(`${f}.operator`, req.operator, 'not a valid selector operator');
    }
    selScopes.add(name);
  });
  for (const [a, b] of [
    ['BestEffort', 'NotBestEffort'],
    ['Terminating', 'NotTerminating'],
  ]) {
    if (selScopes.has(a!) && selScopes.has(b!)) errs.invalid('spec.scopeSelector', spec.scopeSelector, 'conflicting scopes');
  }
}

/** ValidateResourceQuotaSpec; `path` is where the spec is (a ClusterResourceQuota's is spec.quota). */
export function validateResourceQuotaSpec(errs: ErrorList, spec: Obj, path = 'spec'): void {
  validateResourceList(errs, spec.hard, `${path}.hard`);
  const scoped = new ErrorList();
  validateScopes(scoped, spec);
  for (const e of scoped.list) errs.list.push({ ...e, field: e.field.replace(/^spec/, path) });
}

export { validateResourceList, quotaCells };

/** printResourceQuota: "resource: used/hard" pairs, limits.* in their own column. */
function quotaCells(o: Obj): [string, string] {
  const hard = obj(o.status?.hard);
  const used = obj(o.status?.used);
  const req: string[] = [];
  const lim: string[] = [];
  for (const r of Object.keys(hard).sort()) {
    const q = (v: unknown) => (v === undefined ? '0' : canonicalQuantity(v as string));
    (r.split('.')[0] === 'limits' && r.includes('.') ? lim : req).push(`${r}: ${q(used[r])}/${q(hard[r])}`);
  }
  return [req.join(', '), lim.join(', ')];
}

export const resourceQuota: KindStrategy = {
  info: resourceInfo('', 'v1', 'ResourceQuota', 'resourcequotas', true, { shortNames: ['quota'], subresources: ['status'] }),
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: true },
  validate: (errs, q) => {
    validateResourceQuotaSpec(errs, obj(q.spec));
    validateResourceList(errs, q.status?.hard, 'status.hard');
    validateResourceList(errs, q.status?.used, 'status.used');
  },
  prepareForCreate: (o) => {
    // resourcequota strategy: the controller owns status.
    delete o.status;
  },
  prepareForUpdate: (o, old, subresource) => {
    if (!subresource) o.status = old.status;
    else if (subresource === 'status') o.spec = old.spec;
  },
  table: {
    columns: () => [
      nameCol(),
      ageCol(),
      col('Request', 'string', 'Request represents a minimum amount of cpu/memory that a container may consume.'),
      col('Limit', 'string', 'Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.'),
    ],
    print: (o, now) => {
      const [req, lim] = isObject(o) ? quotaCells(o) : ['', ''];
      return { cells: [str(o.metadata?.name), since(o.metadata?.creationTimestamp, now), req, lim] };
    },
  },
};
