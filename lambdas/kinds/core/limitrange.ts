// LimitRange (core/v1): per-namespace bounds and defaults for the compute resources of containers and
// pods and the storage of claims (pkg/registry/core/limitrange). The LimitRanger admission plugin
// (apiserver/admission-limitranger.ts) applies them; here are kube's defaulting (SetDefaults_LimitRangeItem)
// and validation (ValidateLimitRange), with its messages. Its table is the generic Name / Created At, as
// kube prints it.

import { canonicalQuantity, formatQuantity, type ParsedQuantity } from '../../machinery/quantity.ts';
import { isOvercommitAllowed, validateContainerResourceName, validateResourceName } from '../../machinery/podspec-validation.ts';
import { isObject } from '../../machinery/types.ts';
import { arr, ErrorList, labelKeyErrors, nameIsDNSSubdomain, obj, quantity } from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

type Obj = Record<string, any>;

export const LIMIT_TYPES = ['Pod', 'Container', 'PersistentVolumeClaim'];
const LISTS = ['max', 'min', 'default', 'defaultRequest', 'maxLimitRequestRatio'] as const;

/** SetDefaults_LimitRangeItem: a Container item's default limit is its max, its default request the default limit, else its min. */
function defaultItem(item: Obj): void {
  // Quantities are stored in their canonical spelling, as kube serializes them.
  for (const k of LISTS) {
    if (!isObject(item[k])) continue;
    for (const [r, v] of Object.entries(item[k] as Obj)) {
      try {
        item[k][r] = canonicalQuantity(v as string);
      } catch {
        // left for validation to report
      }
    }
  }
  if (item.type !== 'Container') return;
  const def = (item.default = isObject(item.default) ? item.default : {});
  const req = (item.defaultRequest = isObject(item.defaultRequest) ? item.defaultRequest : {});
  for (const [r, v] of Object.entries(obj(item.max))) if (def[r] === undefined) def[r] = v;
  for (const [r, v] of Object.entries(def)) if (req[r] === undefined) req[r] = v;
  for (const [r, v] of Object.entries(obj(item.min))) if (req[r] === undefined) req[r] = v;
}

function validateTypeName(errs: ErrorList, type: string, field: string): void {
  const msgs = labelKeyErrors(type);
  if (msgs.length) return errs.each(field, type, msgs);
  if (!type.includes('/') && !LIMIT_TYPES.includes(type)) errs.invalid(field, type, 'must be a standard limit type or fully qualified');
}

/** validateLimitRangeResourceName: pods and containers take container resources, other types any resource. */
function validateResourceNameFor(errs: ErrorList, type: string, name: string, field: string): void {
  if (type === 'Pod' || type === 'Container') validateContainerResourceName(errs, name, field);
  else validateResourceName(errs, name, field);
}

const q = formatQuantity;

/** Quantity.Value(): the integer value, rounded up. */
function value(p: ParsedQuantity): bigint {
  const n = p.nanos / 1_000_000_000n;
  return p.nanos % 1_000_000_000n > 0n ? n + 1n : n;
}
function milliValue(p: ParsedQuantity): bigint {
  const n = p.nanos / 1_000_000n;
  return p.nanos % 1_000_000n > 0n ? n + 1n : n;
}
/** resource.MaxMilliValue: the largest value whose milli-value still fits an int64. */
const MAX_MILLI_VALUE = ((1n << 63n) - 1n) / 1000n;

function validateLimitRange(errs: ErrorList, lr: Obj): void {
  const seen = new Set<string>();
  arr(lr.spec?.limits).forEach((raw, i) => {
    const item = obj(raw);
    const path = `spec.limits[${i}]`;
    const type = typeof item.type === 'string' ? item.type : '';
    validateTypeName(errs, type, `${path}.type`);
    if (seen.has(type)) errs.duplicate(`${path}.type`, type);
    seen.add(type);

    const keys = new Set<string>();
    const lists: Record<string, Map<string, ParsedQuantity>> = {};
    const collect = (k: (typeof LISTS)[number]) => {
      const m = new Map<string, ParsedQuantity>();
      for (const [r, v] of Object.entries(obj(item[k]))) {
        validateResourceNameFor(errs, type, r, `${path}.${k}[${r}]`);
        keys.add(r);
        m.set(r, quantity(v));
      }
      lists[k] = m;
    };
    collect('max');
    collect('min');
    if (type === 'Pod') {
      if (Object.keys(obj(item.default)).length) errs.forbidden(`${path}.default`, "may not be specified when `type` is 'Pod'");
      if (Object.keys(obj(item.defaultRequest)).length) errs.forbidden(`${path}.defaultRequest`, "may not be specified when `type` is 'Pod'");
      lists.default = new Map();
      lists.defaultRequest = new Map();
    } else {
      collect('default');
      collect('defaultRequest');
    }
    if (type === 'PersistentVolumeClaim' && obj(item.min).storage === undefined && obj(item.max).storage === undefined) {
      errs.required(`${path}.limits`, 'either minimum or maximum storage value is required, but neither was provided');
    }
    collect('maxLimitRequestRatio');

    for (const k of [...keys].sort()) {
      const min = lists.min!.get(k);
      const max = lists.max!.get(k);
      const def = lists.default!.get(k);
      const defReq = lists.defaultRequest!.get(k);
      const ratio = lists.maxLimitRequestRatio!.get(k);
      if (min && max && min.nanos > max.nanos) errs.invalid(`${path}.min[${k}]`, q(min), `min value ${q(min)} is greater than max value ${q(max)}`);
      if (defReq && min && min.nanos > defReq.nanos) errs.invalid(`${path}.defaultRequest[${k}]`, q(defReq), `min value ${q(min)} is greater than default request value ${q(defReq)}`);
      if (defReq && max && defReq.nanos > max.nanos) errs.invalid(`${path}.defaultRequest[${k}]`, q(defReq), `default request value ${q(defReq)} is greater than max value ${q(max)}`);
      if (defReq && def && defReq.nanos > def.nanos) errs.invalid(`${path}.defaultRequest[${k}]`, q(defReq), `default request value ${q(defReq)} is greater than default limit value ${q(def)}`);
      if (def && min && min.nanos > def.nanos) errs.invalid(`${path}.default[${k}]`, q(min), `min value ${q(min)} is greater than default value ${q(def)}`);
      if (def && max && def.nanos > max.nanos) errs.invalid(`${path}.default[${k}]`, q(max), `default value ${q(def)} is greater than max value ${q(max)}`);
      if (ratio && ratio.nanos < 1_000_000_000n) errs.invalid(`${path}.maxLimitRequestRatio[${k}]`, q(ratio), `ratio ${q(ratio)} is less than 1`);
      if (ratio && min && max) {
        let r = Number(value(ratio));
        let lo = value(min);
        let hi = value(max);
        if (value(ratio) < MAX_MILLI_VALUE && lo < MAX_MILLI_VALUE && hi < MAX_MILLI_VALUE) {
          r = Number(milliValue(ratio)) / 1000;
          lo = milliValue(min);
          hi = milliValue(max);
        }
        const limit = Number(hi) / Number(lo);
        if (r > limit) errs.invalid(`${path}.maxLimitRequestRatio[${k}]`, q(ratio), `ratio ${q(ratio)} is greater than max/min = ${limit.toFixed(6)}`);
      }
      // Resources that cannot be overcommitted (hugepages, extended resources) need default == defaultRequest.
      if (!isOvercommitAllowed(k) && def && defReq && def.nanos !== defReq.nanos) {
        errs.invalid(`${path}.defaultRequest[${k}]`, q(defReq), `default value ${q(def)} must equal to defaultRequest value ${q(defReq)} in ${k}`);
      }
    }
  });
}

export const limitRange: KindStrategy = {
  info: resourceInfo('', 'v1', 'LimitRange', 'limitranges', true, { shortNames: ['limits'] }),
  // ValidateLimitRangeName: a DNS subdomain.
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: true },
  defaults: (lr) => {
    for (const item of arr(lr.spec?.limits)) if (isObject(item)) defaultItem(item);
  },
  validate: validateLimitRange,
};
