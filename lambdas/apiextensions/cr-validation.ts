// Validation of a custom resource against its version's schema, with kube-apiserver's messages:
//   - the OpenAPI schema, as k8s.io/kube-openapi/pkg/validation/validate checks it (type.go, object_validator.go,
//     slice_validator.go, messages from pkg/validation/errors/schema.go) and as apiextensions-apiserver turns
//     the results into field errors (pkg/apiserver/validation/validation.go kubeOpenAPIResultToFieldErrors);
//   - x-kubernetes-list-type set/map uniqueness (pkg/apiserver/schema/listtype/validation.go);
//   - ObjectMeta of the object and of embedded resources (apimachinery ValidateObjectMetaAccessor,
//     pkg/apiserver/schema/objectmeta/validation.go).
// Patterns run on RE2 (re2js, a port of Go's regexp), never on JavaScript's backtracking RegExp: values are
// written by any custom-resource writer, and `^([a-z0-9]+-?)*$` against 33 a's and a '!' blocked the
// process for minutes on RegExp. See re2.ts; CEL's matches() and the CRD's own check of its patterns use it too.
// Values are what encoding/json hands kube: a number is an integer when it is an integral value that JSON
// holds exactly (|n| <= 2^53 - 1), otherwise a float, so an integer field given 1e308 fails as kube fails a
// float there: `spec.replicas: Invalid value: "number": spec.replicas in body must be of type integer: "number"`.

import { Buffer } from 'node:buffer';
import { isIP } from 'node:net';
import { dns1123LabelErrors, dns1123SubdomainErrors, labelKeyErrors, labelValueErrors } from '../machinery/validation.ts';
import { child, fe, goFloat, index, type FieldError } from './errors.ts';
import { compileRE2 } from './re2.ts';
import { additionalPropertiesOf, itemsOf } from './structural.ts';
import { isObj, jsonEqual, type JSONSchemaProps } from './types.ts';

/** The JSON type kube's validator infers for a decoded value. */
function jsonType(v: unknown): string {
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return Number.isSafeInteger(v) ? 'integer' : 'number';
  if (Array.isArray(v)) return 'array';
  return 'object';
}

const schemaTypes = (s: JSONSchemaProps): string[] => (s['x-kubernetes-int-or-string'] ? ['integer', 'string'] : typeof s.type === 'string' && s.type ? [s.type] : []);

/** %q of go-openapi messages (the data of an InvalidType error is a string). */
const q = (s: string): string => JSON.stringify(s);

/** Validates `v` against `s`; `path` is the kube-openapi path ("" at the root, "spec.replicas", "spec.ports[0]"). */
export function validateSchema(s: JSONSchemaProps | undefined, v: unknown, path = ''): FieldError[] {
  if (!isObj(s)) return [];
  const errs: FieldError[] = [];
  const types = schemaTypes(s);
  const name = path;
  if (v === null || v === undefined) {
    if (types.length && !s.nullable) errs.push(fe.typeInvalid(path, 'null', `${name} in body must be of type ${types.join(',')}: "null"`));
    return errs;
  }
  const t = jsonType(v);
  if (types.length && !(types.includes(t) || (t === 'integer' && types.includes('number')))) {
    errs.push(fe.typeInvalid(path, t, `${name} in body must be of type ${types.join(',')}: ${q(t)}`));
    return errs;
  }
  // Logical junctors.
  errs.push(...junctors(s, v, path));
  if (typeof v === 'string') {
    const n = [...v].length;
    if (typeof s.maxLength === 'number' && n > s.maxLength) errs.push(fe.tooLong(path, s.maxLength));
    if (typeof s.minLength === 'number' && n < s.minLength) errs.push(fe.invalid(path, v, `${name} in body should be at least ${s.minLength} chars long`));
    if (typeof s.pattern === 'string') {
      // kube-openapi validate.Pattern: Go's regexp, unanchored; a pattern that does not compile fails the value.
      const re = compileRE2(s.pattern);
      if (re instanceof Error) errs.push(fe.invalid(path, v, `${name} in body should match '${s.pattern}, but pattern is invalid: ${re.message}'`));
      else if (!re.test(v)) errs.push(fe.invalid(path, v, `${name} in body should match '${s.pattern}'`));
    }
    if (typeof s.format === 'string' && s.format && types.includes('string')) {
      const ok = formatValid(s.format, v);
      if (ok === false) errs.push(fe.typeInvalid(path, v, `${name} in body must be of type ${s.format}: ${q(v)}`));
    }
  }
  if (typeof v === 'number') {
    if (typeof s.multipleOf === 'number' && s.multipleOf > 0 && !Number.isInteger(v / s.multipleOf)) {
      errs.push(fe.invalid(path, v, `${name} in body should be a multiple of ${goFloat(s.multipleOf)}`));
    }
    if (typeof s.maximum === 'number' && (s.exclusiveMaximum ? v >= s.maximum : v > s.maximum)) {
      errs.push(fe.invalid(path, v, `${name} in body should be less than ${s.exclusiveMaximum ? '' : 'or equal to '}${goFloat(s.maximum)}`));
    }
    if (typeof s.minimum === 'number' && (s.exclusiveMinimum ? v <= s.minimum : v < s.minimum)) {
      errs.push(fe.invalid(path, v, `${name} in body should be greater than ${s.exclusiveMinimum ? '' : 'or equal to '}${goFloat(s.minimum)}`));
    }
  }
  if (Array.isArray(v)) {
    const items = itemsOf(s);
    if (items) v.forEach((x, i) => errs.push(...validateSchema(items, x, index(path, i))));
    if (typeof s.minItems === 'number' && v.length < s.minItems) errs.push(fe.invalid(path, v.length, `${name} in body should have at least ${s.minItems} items`));
    if (typeof s.maxItems === 'number' && v.length > s.maxItems) errs.push(fe.tooMany(path, v.length, s.maxItems));
  }
  if (Array.isArray(s.enum) && !s.enum.some((e) => jsonEqual(e, v))) {
    errs.push(fe.notSupported(path, v, s.enum.map((e) => (typeof e === 'string' ? e : JSON.stringify(e)))));
  }
  if (isObj(v)) {
    const n = Object.keys(v).length;
    if (typeof s.minProperties === 'number' && n < s.minProperties) return [...errs, fe.invalid(path, n, `${name} in body should have at least ${s.minProperties} properties`)];
    if (typeof s.maxProperties === 'number' && n > s.maxProperties) return [...errs, fe.tooMany(path, n, s.maxProperties)];
    const props = isObj(s.properties) ? s.properties : {};
    const ap = additionalPropertiesOf(s);
    for (const [k, x] of Object.entries(v)) {
      if (k in props) errs.push(...validateSchema(props[k], x, child(path, k)));
      else if (ap) errs.push(...validateSchema(ap, x, child(path, k)));
    }
    for (const r of Array.isArray(s.required) ? s.required : []) if (!(r in v)) errs.push(fe.required(child(path, r), ''));
  }
  return errs;
}

function junctors(s: JSONSchemaProps, v: unknown, path: string): FieldError[] {
  const errs: FieldError[] = [];
  // The int-or-string pattern (anyOf: [{type: integer}, {type: string}]) holds for any value that passed the type check.
  if (Array.isArray(s.allOf)) for (const sub of s.allOf) errs.push(...validateSchema(sub, v, path));
  if (Array.isArray(s.anyOf) && s.anyOf.length && !s.anyOf.some((sub) => validateSchema(sub, v, path).length === 0)) {
    errs.push(fe.invalid(path, '', `${path} must validate at least one schema (anyOf)`));
  }
  if (Array.isArray(s.oneOf) && s.oneOf.length) {
    const n = s.oneOf.filter((sub) => validateSchema(sub, v, path).length === 0).length;
    if (n !== 1) errs.push(fe.invalid(path, '', `${path} must validate one and only one schema (oneOf)`));
  }
  if (isObj(s.not) && validateSchema(s.not, v, path).length === 0) errs.push(fe.invalid(path, '', `${path} must not validate the schema (not)`));
  return errs;
}

// String formats kube validates in CRD schemas (apiextensions-apiserver pkg/apiserver/validation/formats.go);
// others (int32, int64, float, double, ...) are stripped and not checked, as upstream.
const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
const FORMATS: Record<string, (v: string) => boolean> = {
  bsonobjectid: (v) => /^[0-9a-f]{24}$/i.test(v),
  uri: (v) => /^([a-z][a-z0-9+.-]*:|\/)\S*$/i.test(v),
  email: (v) => /^[^\s@<>()]+@[^\s@<>()]+$/.test(v),
  hostname: (v) => v.length <= 255 && /^([a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)*\.?$/.test(v),
  ipv4: (v) => isIP(v) === 4,
  ipv6: (v) => isIP(v) === 6,
  cidr: (v) => {
    const [ip, bits, ...rest] = v.split('/');
    const fam = isIP(ip ?? '');
    return rest.length === 0 && fam !== 0 && /^\d+$/.test(bits ?? '') && Number(bits) <= (fam === 4 ? 32 : 128);
  },
  mac: (v) => /^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i.test(v) || /^([0-9a-f]{4}\.){2}[0-9a-f]{4}$/i.test(v),
  uuid: (v) => UUID.test(v),
  uuid3: (v) => UUID.test(v) && /^[0-9a-f]{8}-?[0-9a-f]{4}-?3/i.test(v),
  uuid4: (v) => /^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$/i.test(v),
  uuid5: (v) => /^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$/i.test(v),
  hexcolor: (v) => /^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/.test(v),
  rgbcolor: (v) => /^rgb\(\s*\d{1,3}\s*,\s*\d{1,3}\s*,\s*\d{1,3}\s*\)$/.test(v),
  byte: (v) => /^[A-Za-z0-9+/]*={0,2}$/.test(v) && v.length % 4 === 0 && Buffer.from(v, 'base64').toString('base64') === v,
  password: () => true,
  date: (v) => /^\d{4}-\d{2}-\d{2}$/.test(v) && !Number.isNaN(Date.parse(`${v}T00:00:00Z`)) && new Date(`${v}T00:00:00Z`).toISOString().startsWith(v),
  duration: (v) => /^([-+]?(\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+$/.test(v) || /^\d+\s*(ns|us|ms|s|m|h|d|w|nanoseconds?|microseconds?|milliseconds?|seconds?|minutes?|hours?|days?|weeks?)$/i.test(v) || v === '0',
  datetime: (v) => /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(v) && !Number.isNaN(Date.parse(v.replace(' ', 'T'))),
  isbn: (v) => /^(\d{9}[\dX]|\d{13})$/.test(v.replace(/[- ]/g, '')),
  isbn10: (v) => /^\d{9}[\dX]$/.test(v.replace(/[- ]/g, '')),
  isbn13: (v) => /^\d{13}$/.test(v.replace(/[- ]/g, '')),
  ssn: (v) => /^\d{3}[- ]?\d{2}[- ]?\d{4}$/.test(v),
  creditcard: (v) => /^\d{12,19}$/.test(v.replace(/\D/g, '')),
};

/** true/false for a format kube checks, undefined for one it strips. */
export function formatValid(format: string, v: string): boolean | undefined {
  const f = FORMATS[format.replace(/-/g, '')];
  return f ? f(v) : undefined;
}

// ---------------------------------------------------------------------------------------------------
// x-kubernetes-list-type (listtype/validation.go): set items and map keys must be unique.

export function validateListTypes(s: JSONSchemaProps | undefined, v: unknown, path = ''): FieldError[] {
  if (!isObj(s) || v === null || v === undefined) return [];
  const errs: FieldError[] = [];
  if (Array.isArray(v)) {
    const lt = s['x-kubernetes-list-type'];
    if (lt === 'set') {
      const seen: unknown[] = [];
      v.forEach((x, i) => {
        if (seen.some((y) => jsonEqual(x, y))) errs.push(fe.duplicate(index(path, i), x));
        else seen.push(x);
      });
    } else if (lt === 'map') {
      const keys = s['x-kubernetes-list-map-keys'] ?? [];
      const seen: string[] = [];
      v.forEach((x, i) => {
        if (!isObj(x)) return;
        const kv: Record<string, unknown> = {};
        for (const k of keys) if (x[k] !== undefined) kv[k] = x[k];
        const id = JSON.stringify(keys.map((k) => x[k]));
        if (seen.includes(id)) errs.push(fe.duplicate(index(path, i), kv));
        else seen.push(id);
      });
    }
    const items = itemsOf(s);
    v.forEach((x, i) => errs.push(...validateListTypes(items, x, index(path, i))));
  } else if (isObj(v)) {
    const props = isObj(s.properties) ? s.properties : {};
    const ap = additionalPropertiesOf(s);
    for (const [k, x] of Object.entries(v)) {
      const ps = props[k] ?? ap;
      if (ps) errs.push(...validateListTypes(ps, x, props[k] ? child(path, k) : `${path}[${k}]`));
    }
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------------
// ObjectMeta of a custom resource (ValidateObjectMetaAccessor with NameIsDNSSubdomain) and of embedded
// resources. Written here because machinery/validation.ts keeps its ObjectMeta validation private and bound
// to the "metadata" root path; embedded resources need it at any path.

export interface MetaOptions {
  namespaced: boolean;
  /** Embedded resources may leave the name out. */
  nameRequired: boolean;
}

export function validateObjectMeta(meta: unknown, path: string, opts: MetaOptions): FieldError[] {
  const errs: FieldError[] = [];
  const m = isObj(meta) ? meta : {};
  const str = (x: unknown): string => (typeof x === 'string' ? x : '');
  const masked = (n: string): string => (n.endsWith('-') && n.length >= 2 ? `${n.slice(0, -2)}a` : n);
  if (str(m.generateName)) for (const msg of dns1123SubdomainErrors(masked(m.generateName))) errs.push(fe.invalid(child(path, 'generateName'), m.generateName, msg));
  if (!str(m.name)) {
    if (opts.nameRequired) errs.push(fe.required(child(path, 'name'), 'name or generateName is required'));
  } else for (const msg of dns1123SubdomainErrors(m.name)) errs.push(fe.invalid(child(path, 'name'), m.name, msg));
  if (opts.namespaced) {
    if (opts.nameRequired && !str(m.namespace)) errs.push(fe.required(child(path, 'namespace'), ''));
    else if (str(m.namespace)) for (const msg of dns1123LabelErrors(m.namespace)) errs.push(fe.invalid(child(path, 'namespace'), m.namespace, msg));
  } else if (str(m.namespace)) {
    errs.push(fe.forbidden(child(path, 'namespace'), 'not allowed on this type'));
  }
  if (isObj(m.labels)) {
    for (const [k, v] of Object.entries(m.labels)) {
      for (const msg of labelKeyErrors(k)) errs.push(fe.invalid(child(path, 'labels'), k, msg));
      for (const msg of labelValueErrors(str(v))) errs.push(fe.invalid(child(path, 'labels'), v, msg));
    }
  }
  if (isObj(m.annotations)) {
    let size = 0;
    for (const [k, v] of Object.entries(m.annotations)) {
      for (const msg of labelKeyErrors(k.toLowerCase())) errs.push(fe.invalid(child(path, 'annotations'), k, msg));
      size += Buffer.byteLength(k) + Buffer.byteLength(str(v));
    }
    if (size > 256 * 1024) errs.push(fe.tooLong(child(path, 'annotations'), 256 * 1024));
  }
  const finalizers = Array.isArray(m.finalizers) ? m.finalizers.map(str) : [];
  for (const f of finalizers) for (const msg of labelKeyErrors(f)) errs.push(fe.invalid(child(path, 'finalizers'), f, msg));
  if (finalizers.includes('orphan') && finalizers.includes('foregroundDeletion')) {
    errs.push(fe.invalid(child(path, 'finalizers'), finalizers, 'finalizer orphan and foregroundDeletion cannot be both set'));
  }
  return errs;
}

export function validateObjectMetaUpdate(meta: unknown, old: unknown, path: string): FieldError[] {
  const m = isObj(meta) ? meta : {};
  const o = isObj(old) ? old : {};
  const errs: FieldError[] = [];
  for (const f of ['name', 'namespace', 'uid', 'creationTimestamp']) {
    if ((m[f] ?? '') !== (o[f] ?? '')) errs.push(fe.invalid(child(path, f), m[f] ?? '', 'field is immutable'));
  }
  return errs;
}

/** Embedded resources (x-kubernetes-embedded-resource): apiVersion, kind and metadata, as objectmeta.Validate. */
export function validateEmbedded(s: JSONSchemaProps | undefined, v: unknown, path: string): FieldError[] {
  if (!isObj(s) || !isObj(v)) return [];
  const errs: FieldError[] = [];
  if (s['x-kubernetes-embedded-resource']) {
    if (typeof v.apiVersion !== 'string' || !v.apiVersion) errs.push(fe.required(child(path, 'apiVersion'), 'must not be empty'));
    if (typeof v.kind !== 'string' || !v.kind) errs.push(fe.required(child(path, 'kind'), 'must not be empty'));
    if (v.metadata !== undefined) errs.push(...validateObjectMeta(v.metadata, child(path, 'metadata'), { namespaced: false, nameRequired: false }).filter((e) => !e.field.endsWith('.namespace')));
  }
  const props = isObj(s.properties) ? s.properties : {};
  const ap = additionalPropertiesOf(s);
  for (const [k, x] of Object.entries(v)) {
    const ps = props[k] ?? ap;
    if (isObj(x)) errs.push(...validateEmbedded(ps, x, child(path, k)));
    else if (Array.isArray(x) && isObj(ps)) x.forEach((y, i) => errs.push(...validateEmbedded(itemsOf(ps), y, index(child(path, k), i))));
  }
  return errs;
}
