// Validation shared by every kind, as kube-apiserver validates (k8s.io/apimachinery/pkg/api/validation,
// pkg/apis/core/validation): field.Error and its messages, the string formats (names, labels, keys, IPs),
// ObjectMeta, and validateObject, which runs the checks every kind shares and then the kind's own rules
// (its strategy in lambdas/kinds/). PodSpec validation, shared by pods and pod templates, is in
// podspec-validation.ts. Every problem found is reported at once, with Kubernetes' field paths, cause
// reasons and message texts, so kubectl and client libraries show what they would show against a real
// cluster, e.g.
//   The Pod "x" is invalid: spec.containers[0].image: Required value
//
// Texts follow Kubernetes v1.32. Where Kubernetes' own validation has a quirk that users can see (a field
// path without an index, a typo in a path), the quirk is reproduced and marked "as upstream".
//
// Runs after defaulting, as in Kubernetes: fields that defaulting always sets are still checked, because
// an update or a status write can clear them.

import { Buffer } from 'node:buffer';
import { isIP } from 'node:net';
import { errors, type StatusCause } from './status.ts';
import type { KindStrategy } from '../kinds/kind.ts';
import type { KubeObject, ObjectMeta } from './types.ts';
import { isObject } from './types.ts';
import { parseQuantityExact, QuantityError, type ParsedQuantity } from './quantity.ts';
import { typeErrors } from './schema.ts';
import { nestedDeeperThan, tooDeepMessage } from './nesting.ts';

// ---------------------------------------------------------------------------------------------------
// field.Error: one finding, printed as apimachinery prints it.

export type FieldErrorType =
  | 'FieldValueRequired'
  | 'FieldValueInvalid'
  | 'FieldValueNotSupported'
  | 'FieldValueDuplicate'
  | 'FieldValueForbidden'
  | 'FieldValueTooLong'
  | 'FieldValueTooMany'
  | 'FieldValueNotFound';

export interface FieldError {
  type: FieldErrorType;
  field: string;
  value?: unknown;
  detail?: string;
}

const TYPE_TEXT: Record<FieldErrorType, string> = {
  FieldValueRequired: 'Required value',
  FieldValueInvalid: 'Invalid value',
  FieldValueNotSupported: 'Unsupported value',
  FieldValueDuplicate: 'Duplicate value',
  FieldValueForbidden: 'Forbidden',
  FieldValueTooLong: 'Too long',
  FieldValueTooMany: 'Too many',
  FieldValueNotFound: 'Not found',
};

/** Go's strconv.Quote (what %q prints). */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (c === 7) out += '\\a';
    else if (c === 8) out += '\\b';
    else if (c === 12) out += '\\f';
    else if (c === 11) out += '\\v';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + '"';
}

/** json.Marshal of a value: maps come out with sorted keys, as Go marshals map[string]T. */
export function goJSON(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(goJSON).join(',')}]`;
  if (isObject(v)) {
    if (v instanceof GoStruct) return v.json;
    return `{${Object.keys(v)
      .filter((k) => v[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${goJSON(v[k])}`)
      .join(',')}}`;
  }
  return v === undefined ? 'null' : JSON.stringify(v);
}

/** A value that Kubernetes reports as an internal Go struct, whose JSON keeps Go's field order. */
export class GoStruct {
  constructor(readonly json: string) {}
}

function formatBadValue(v: unknown): string {
  if (typeof v === 'string') return goQuote(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return goJSON(v);
}

/** field.Error.ErrorBody(): the message without the field path. */
export function fieldErrorBody(e: FieldError): string {
  let s = TYPE_TEXT[e.type];
  if (e.type !== 'FieldValueRequired' && e.type !== 'FieldValueForbidden' && e.type !== 'FieldValueTooLong') {
    s += `: ${formatBadValue(e.value)}`;
  }
  if (e.detail) s += `: ${e.detail}`;
  return s;
}

/** field.Error.Error(): "path: body". */
export function fieldErrorString(e: FieldError): string {
  return `${e.field}: ${fieldErrorBody(e)}`;
}

export class ErrorList {
  readonly list: FieldError[] = [];
  required(field: string, detail = ''): void {
    this.list.push({ type: 'FieldValueRequired', field, detail });
  }
  invalid(field: string, value: unknown, detail: string): void {
    this.list.push({ type: 'FieldValueInvalid', field, value, detail });
  }
  notSupported(field: string, value: unknown, supported: readonly string[]): void {
    const detail = supported.length ? `supported values: ${supported.map((s) => goQuote(s)).join(', ')}` : '';
    this.list.push({ type: 'FieldValueNotSupported', field, value, detail });
  }
  duplicate(field: string, value: unknown, detail = ''): void {
    this.list.push({ type: 'FieldValueDuplicate', field, value, detail });
  }
  forbidden(field: string, detail: string): void {
    this.list.push({ type: 'FieldValueForbidden', field, detail });
  }
  tooLong(field: string, max: number): void {
    this.list.push({ type: 'FieldValueTooLong', field, detail: `may not be more than ${max} ${max === 1 ? 'byte' : 'bytes'}` });
  }
  /** field.TooMany: the actual count is the bad value. */
  tooMany(field: string, actual: number, max: number): void {
    this.list.push({ type: 'FieldValueTooMany', field, value: actual, detail: `must have at most ${max} ${max === 1 ? 'item' : 'items'}` });
  }
  notFound(field: string, value: unknown, detail = ''): void {
    this.list.push({ type: 'FieldValueNotFound', field, value, detail });
  }
  /** Adds Invalid errors for each message of a string validator. */
  each(field: string, value: unknown, msgs: string[]): void {
    for (const m of msgs) this.invalid(field, value, m);
  }
  get length(): number {
    return this.list.length;
  }
}

// ---------------------------------------------------------------------------------------------------
// String formats (k8s.io/apimachinery/pkg/util/validation)

const DNS1123_LABEL_FMT = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const DNS1123_SUBDOMAIN_FMT = `${DNS1123_LABEL_FMT}(\\.${DNS1123_LABEL_FMT})*`;
const DNS1035_LABEL_FMT = '[a-z]([-a-z0-9]*[a-z0-9])?';
const QUALIFIED_NAME_FMT = '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]';
const LABEL_VALUE_FMT = `(${QUALIFIED_NAME_FMT})?`;
const CONFIG_MAP_KEY_FMT = '[-._a-zA-Z0-9]+';

const dns1123Label = new RegExp(`^${DNS1123_LABEL_FMT}$`);
const dns1123Subdomain = new RegExp(`^${DNS1123_SUBDOMAIN_FMT}$`);
const dns1035Label = new RegExp(`^${DNS1035_LABEL_FMT}$`);
const qualifiedName = new RegExp(`^${QUALIFIED_NAME_FMT}$`);
const labelValue = new RegExp(`^${LABEL_VALUE_FMT}$`);
const configMapKey = new RegExp(`^${CONFIG_MAP_KEY_FMT}$`);

export function maxLenError(n: number): string {
  return `must be no more than ${n} characters`;
}

/** validation.RegexError: note Go's ", " before each " or ", which yields a double space. */
export function regexError(msg: string, fmt: string, ...examples: string[]): string {
  if (examples.length === 0) return `${msg} (regex used for validation is '${fmt}')`;
  return `${msg} (e.g. ${examples.map((e) => `'${e}', `).join(' or ')}regex used for validation is '${fmt}')`;
}

export function inclusiveRangeError(lo: number, hi: number): string {
  return `must be between ${lo} and ${hi}, inclusive`;
}

const DNS1123_LABEL_MSG = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_MSG = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_MSG = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_MSG = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_MSG = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

export function dns1123LabelErrors(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 63) errs.push(maxLenError(63));
  if (!dns1123Label.test(v)) {
    // A valid subdomain that is not a label can only be failing on its dots.
    errs.push(dns1123Subdomain.test(v) ? 'must not contain dots' : regexError(DNS1123_LABEL_MSG, DNS1123_LABEL_FMT, 'my-name', '123-abc'));
  }
  return errs;
}

export function dns1123SubdomainErrors(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 253) errs.push(maxLenError(253));
  if (!dns1123Subdomain.test(v)) errs.push(regexError(DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, 'example.com'));
  return errs;
}

export function dns1035LabelErrors(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 63) errs.push(maxLenError(63));
  if (!dns1035Label.test(v)) errs.push(regexError(DNS1035_LABEL_MSG, DNS1035_LABEL_FMT, 'my-name', 'abc-123'));
  return errs;
}

/** IsQualifiedName: label keys, annotation keys, finalizers. */
export function labelKeyErrors(v: string): string[] {
  const errs: string[] = [];
  const parts = v.split('/');
  let name: string;
  if (parts.length === 1) {
    name = parts[0]!;
  } else if (parts.length === 2) {
    const prefix = parts[0]!;
    name = parts[1]!;
    if (prefix.length === 0) errs.push('prefix part must be non-empty');
    else errs.push(...dns1123SubdomainErrors(prefix).map((m) => `prefix part ${m}`));
  } else {
    return [
      `a qualified name ${regexError(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, 'MyName', 'my.name', '123-abc')} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
    ];
  }
  if (name.length === 0) errs.push('name part must be non-empty');
  else if (name.length > 63) errs.push(`name part ${maxLenError(63)}`);
  if (!qualifiedName.test(name)) errs.push(`name part ${regexError(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, 'MyName', 'my.name', '123-abc')}`);
  return errs;
}

export function labelValueErrors(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 63) errs.push(maxLenError(63));
  if (!labelValue.test(v)) errs.push(regexError(LABEL_VALUE_MSG, LABEL_VALUE_FMT, 'MyValue', 'my_value', '12345'));
  return errs;
}

function chDirPrefixErrors(v: string): string[] {
  if (v === '.') return ["must not be '.'"];
  if (v === '..') return ["must not be '..'"];
  if (v.startsWith('..')) return ["must not start with '..'"];
  return [];
}

export function configMapKeyErrors(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 253) errs.push(maxLenError(253));
  if (!configMapKey.test(v)) {
    errs.push(regexError("a valid config key must consist of alphanumeric characters, '-', '_' or '.'", CONFIG_MAP_KEY_FMT, 'key.name', 'KEY_NAME', 'key-name'));
  }
  errs.push(...chDirPrefixErrors(v));
  return errs;
}

/** IsValidPortName: IANA_SVC_NAME. */
export function portNameErrors(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 15) errs.push(maxLenError(15));
  if (!/^[-a-z0-9]+$/.test(v)) errs.push('must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)');
  if (!/[a-z]/.test(v)) errs.push('must contain at least one letter (a-z)');
  if (v.includes('--')) errs.push('must not contain consecutive hyphens');
  if (v.length > 0 && (v.startsWith('-') || v.endsWith('-'))) errs.push('must not begin or end with a hyphen');
  return errs;
}

export function portNumErrors(n: unknown): string[] {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535 ? [] : [inclusiveRangeError(1, 65535)];
}

/** IsRelaxedEnvVarName (the RelaxedEnvironmentVariableValidation gate is on by default in v1.32). */
export function envVarNameErrors(v: string): string[] {
  const errs: string[] = [];
  if (v.length === 0) errs.push('environment variable name must be non-empty');
  for (const ch of v) {
    const c = ch.codePointAt(0)!;
    if (c > 0x7e || c < 0x20 || ch === '=') {
      errs.push("a valid environment variable name must consist only of printable ASCII characters other than '='");
      break;
    }
  }
  return errs;
}

/** netutils.ParseIPSloppy: also accepts IPv4 octets with leading zeros. */
export function parseIPSloppy(s: string): 4 | 6 | undefined {
  if (typeof s !== 'string') return undefined;
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(s)) return s.split('.').every((o) => Number(o) <= 255) ? 4 : undefined;
  const v = isIP(s);
  return v === 4 || v === 6 ? v : undefined;
}

export function ipErrors(errs: ErrorList, field: string, value: unknown): boolean {
  if (typeof value === 'string' && parseIPSloppy(value)) return true;
  errs.invalid(field, value ?? '', 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)');
  return false;
}

export function validCIDR(s: unknown): boolean {
  if (typeof s !== 'string') return false;
  const [ip, bits, ...rest] = s.split('/');
  if (rest.length || bits === undefined || !/^\d+$/.test(bits)) return false;
  const v = parseIPSloppy(ip!);
  return v !== undefined && Number(bits) <= (v === 4 ? 32 : 128);
}

/** Unspecified, loopback and link-local addresses are refused for endpoints and external IPs. */
export function nonSpecialIPErrors(errs: ErrorList, field: string, ip: string): void {
  const v = parseIPSloppy(ip);
  if (!v) return;
  const lower = ip.toLowerCase();
  if (v === 4) {
    const o = ip.split('.').map(Number);
    if (o.every((x) => x === 0)) errs.invalid(field, ip, `may not be unspecified (${ip})`);
    if (o[0] === 127) errs.invalid(field, ip, 'may not be in the loopback range (127.0.0.0/8, ::1/128)');
    if (o[0] === 169 && o[1] === 254) errs.invalid(field, ip, 'may not be in the link-local range (169.254.0.0/16, fe80::/10)');
    if (o[0] === 224 && o[1] === 0 && o[2] === 0) errs.invalid(field, ip, 'may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)');
  } else {
    if (/^[0:]+$/.test(lower)) errs.invalid(field, ip, `may not be unspecified (${ip})`);
    if (/^(0{0,4}:)*:?0{0,3}1$/.test(lower) && lower.replace(/[0:]/g, '') === '1') errs.invalid(field, ip, 'may not be in the loopback range (127.0.0.0/8, ::1/128)');
    if (/^fe[89ab]/.test(lower)) errs.invalid(field, ip, 'may not be in the link-local range (169.254.0.0/16, fe80::/10)');
    if (/^ff[0-9a-f]2:/.test(lower)) errs.invalid(field, ip, 'may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)');
  }
}

// ---------------------------------------------------------------------------------------------------
// Small helpers over JSON objects.

export const arr = (v: unknown): any[] => (Array.isArray(v) ? v : []);
export const obj = (v: unknown): Record<string, any> => (isObject(v) ? v : {});
export const strOf = (v: unknown): string => (typeof v === 'string' ? v : '');
export const has = (o: unknown, k: string): boolean => isObject(o) && o[k] !== undefined && o[k] !== null;
export const present = (v: unknown): boolean => v !== undefined && v !== null;

/** Semantic equality of JSON values: a missing field, null, [] and {} are all "unset", as Go's zero values. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  const unset = (v: unknown): boolean => v === undefined || v === null || (Array.isArray(v) && v.length === 0) || (isObject(v) && Object.keys(v).every((k) => unset(v[k])));
  if (unset(a) && unset(b)) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) if (!jsonEqual(a[k], b[k])) return false;
    return true;
  }
  return a === b;
}

export function sortedList(values: Iterable<string>): string[] {
  return [...values].sort();
}

// ---------------------------------------------------------------------------------------------------
// Quantities: a quantity that does not parse is a decoding error in Kubernetes (400, not 422).

export class DecodeError extends Error {}

export function quantity(v: unknown): ParsedQuantity {
  try {
    if (typeof v !== 'string' && typeof v !== 'number') throw new QuantityError("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'");
    return parseQuantityExact(v);
  } catch (e) {
    if (e instanceof QuantityError) throw new DecodeError(e.message);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------
// ObjectMeta (apimachinery/pkg/api/validation/objectmeta.go, and core's finalizer rule)

export type NameFn = (name: string, prefix: boolean) => string[];

/** The generateName check validates the prefix with a trailing '-' masked (maskTrailingDash). */
function maskTrailingDash(name: string): string {
  return name.endsWith('-') && name.length >= 2 ? `${name.slice(0, -2)}a` : name;
}

export const nameIsDNSSubdomain: NameFn = (n, p) => dns1123SubdomainErrors(p ? maskTrailingDash(n) : n);
export const nameIsDNSLabel: NameFn = (n, p) => dns1123LabelErrors(p ? maskTrailingDash(n) : n);
export const nameIsDNS1035Label: NameFn = (n, p) => dns1035LabelErrors(p ? maskTrailingDash(n) : n);
/** path.ValidatePathSegmentName: what the generic store enforces on names of kinds without a rule. */
export const pathSegmentName: NameFn = (n, prefix) => {
  if (!prefix) {
    if (n === '.' || n === '..') return [`may not be '${n}'`];
  }
  const errs: string[] = [];
  for (const bad of ['/', '%']) if (n.includes(bad)) errs.push(`may not contain '${bad}'`);
  return errs;
};

export const STANDARD_FINALIZERS = new Set(['kubernetes', 'orphan', 'foregroundDeletion']);

export interface MetaRules {
  nameFn: NameFn;
  namespaced: boolean;
  /** Core kinds also require unqualified finalizer names to be one of the standard ones. */
  kubeFinalizers: boolean;
}

export function validateLabels(errs: ErrorList, labels: unknown, field: string): void {
  if (!present(labels)) return;
  for (const [k, v] of Object.entries(obj(labels))) {
    errs.each(field, k, labelKeyErrors(k));
    errs.each(field, v, labelValueErrors(strOf(v)));
  }
}

const TOTAL_ANNOTATION_SIZE = 256 * 1024;

export function validateAnnotations(errs: ErrorList, annotations: unknown, field: string): void {
  if (!present(annotations)) return;
  let size = 0;
  for (const [k, v] of Object.entries(obj(annotations))) {
    // Annotation keys are qualified names, compared case-insensitively.
    errs.each(field, k, labelKeyErrors(k.toLowerCase()));
    size += Buffer.byteLength(k) + Buffer.byteLength(strOf(v));
  }
  if (size > TOTAL_ANNOTATION_SIZE) errs.tooLong(field, TOTAL_ANNOTATION_SIZE);
}

/**
 * The most distinct owners an object may name. Kubernetes sets none; here each owner's count of its
 * dependents moves in the object's own storage write (apiserver/dependents.ts), and a DynamoDB
 * transaction holds at most 100 items, so an object naming hundreds would fail at storage instead.
 */
export const MAX_OWNER_REFERENCES = 64;

function validateOwnerReferences(errs: ErrorList, refs: unknown, field: string): void {
  const uids = new Set(arr(refs).map((r) => strOf(obj(r).uid)));
  if (uids.size > MAX_OWNER_REFERENCES) errs.tooMany(field, uids.size, MAX_OWNER_REFERENCES);
  let firstController = '';
  for (const ref of arr(refs)) {
    const r = obj(ref);
    const apiVersion = strOf(r.apiVersion);
    const parts = apiVersion.split('/');
    const version = parts.length === 1 ? parts[0] : parts.length === 2 ? parts[1] : '';
    const group = parts.length === 2 ? parts[0] : '';
    if (!version) errs.invalid(`${field}.apiVersion`, apiVersion, 'version must not be empty');
    if (!strOf(r.kind)) errs.invalid(`${field}.kind`, strOf(r.kind), 'must not be empty');
    if (!strOf(r.name)) errs.invalid(`${field}.name`, strOf(r.name), 'must not be empty');
    if (!strOf(r.uid)) errs.invalid(`${field}.uid`, strOf(r.uid), 'must not be empty');
    if (group === '' && version === 'v1' && r.kind === 'Event') errs.invalid(field, r, '/v1, Kind=Event is disallowed from being an owner');
    if (r.controller === true) {
      const name = `${strOf(r.kind)}/${strOf(r.name)}`;
      if (firstController) {
        errs.invalid(field, refs, `Only one reference can have Controller set to true. Found "true" in references for ${firstController} and ${name}`);
      } else {
        firstController = name;
      }
    }
  }
}

function validateFinalizers(errs: ErrorList, finalizers: unknown, field: string, kube: boolean): void {
  const list = arr(finalizers).map(strOf);
  for (const f of list) errs.each(field, f, labelKeyErrors(f));
  if (list.includes('orphan') && list.includes('foregroundDeletion')) {
    errs.invalid(field, list, 'finalizer orphan and foregroundDeletion cannot be both set');
  }
  if (kube) {
    list.forEach((f, i) => {
      if (f.split('/').length === 1 && !STANDARD_FINALIZERS.has(f)) {
        errs.invalid(`${field}[${i}]`, f, 'name is neither a standard finalizer name nor is it fully qualified');
      }
    });
  }
}

export function validateObjectMeta(errs: ErrorList, meta: ObjectMeta, rules: MetaRules): void {
  const m = obj(meta);
  if (strOf(m.generateName)) errs.each('metadata.generateName', m.generateName, rules.nameFn(m.generateName, true));
  if (!strOf(m.name)) errs.required('metadata.name', 'name or generateName is required');
  else errs.each('metadata.name', m.name, rules.nameFn(m.name, false));
  if (rules.namespaced) {
    if (!strOf(m.namespace)) errs.required('metadata.namespace');
    else errs.each('metadata.namespace', m.namespace, nameIsDNSLabel(m.namespace, false));
  } else if (strOf(m.namespace)) {
    errs.forbidden('metadata.namespace', 'not allowed on this type');
  }
  if (typeof m.generation === 'number' && m.generation < 0) errs.invalid('metadata.generation', m.generation, 'must be greater than or equal to 0');
  validateLabels(errs, m.labels, 'metadata.labels');
  validateAnnotations(errs, m.annotations, 'metadata.annotations');
  validateOwnerReferences(errs, m.ownerReferences, 'metadata.ownerReferences');
  validateFinalizers(errs, m.finalizers, 'metadata.finalizers', rules.kubeFinalizers);
}

export function validateObjectMetaUpdate(errs: ErrorList, meta: ObjectMeta, old: ObjectMeta): void {
  const m = obj(meta);
  const o = obj(old);
  if (present(o.deletionTimestamp)) {
    const prev = new Set(arr(o.finalizers).map(strOf));
    const added = sortedList(new Set(arr(m.finalizers).map(strOf).filter((f) => !prev.has(f))));
    if (added.length) {
      errs.forbidden('metadata.finalizers', `no new finalizers can be added if the object is being deleted, found new finalizers []string{${added.map(goQuote).join(', ')}}`);
    }
  }
  if (typeof m.generation === 'number' && typeof o.generation === 'number' && m.generation < o.generation) {
    errs.invalid('metadata.generation', m.generation, 'must not be decremented');
  }
  for (const f of ['name', 'namespace', 'uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds']) {
    if (!jsonEqual(m[f], o[f])) errs.invalid(`metadata.${f}`, m[f] ?? '', 'field is immutable');
  }
}

// ---------------------------------------------------------------------------------------------------
// Values several kinds check alike.

export const PROTOCOLS = ['SCTP', 'TCP', 'UDP'];
export const TAINT_EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'];

export function validatePortNumOrName(errs: ErrorList, port: unknown, field: string): void {
  if (typeof port === 'string') errs.each(field, port, portNameErrors(port));
  else errs.each(field, port ?? 0, portNumErrors(port));
}

/** The most a Secret's or ConfigMap's data may hold. */
export const MAX_SECRET_SIZE = 1024 * 1024;

/** encoding/json's []byte decoding: standard base64, newlines ignored. Bad data is a 400. */
export function decodeBase64(kind: string, s: string): Buffer {
  const clean = s.replace(/[\r\n]/g, '');
  const bad = clean.search(/[^A-Za-z0-9+/=]/);
  const padAt = clean.indexOf('=');
  const badPad = padAt >= 0 && (clean.length % 4 !== 0 || !/^=+$/.test(clean.slice(padAt)) || clean.length - padAt > 2);
  if (bad >= 0 || badPad || clean.length % 4 === 1) {
    const at = bad >= 0 ? bad : padAt >= 0 ? padAt : clean.length - (clean.length % 4);
    throw new DecodeError(`illegal base64 data at input byte ${at}`, { cause: kind });
  }
  return Buffer.from(clean, 'base64');
}

/** ConfigMaps and Secrets with `immutable: true` keep their data (and stay immutable). */
export function validateImmutableData(errs: ErrorList, o: Record<string, any>, old: Record<string, any>, fields: string[]): void {
  if (old.immutable !== true) return;
  if (o.immutable !== true) errs.forbidden('immutable', 'field is immutable when `immutable` is set');
  for (const f of fields) {
    if (!jsonEqual(o[f], old[f])) errs.forbidden(f, 'field is immutable when `immutable` is set');
  }
}

// ---------------------------------------------------------------------------------------------------
// The driver: what every kind shares, then the kind's own rules.

export interface ValidateOptions {
  /**
   * The subresource written, when not the main resource. "binding" is the one way spec.nodeName of a
   * pod may change (from unset to a node); "status" writes are checked for status rules.
   */
  subresource?: string;
}

/**
 * Validates an object of `kind` about to be stored: on create (no `old`) or on update (`old` is the stored
 * object). Throws errors.invalid (422) listing every problem found, or a 400 when a value cannot even be
 * decoded (a quantity or base64 that does not parse), as the apiserver's decoder would.
 */
export function validateObject(kind: KindStrategy, obj: KubeObject, old?: KubeObject, opts: ValidateOptions = {}): void {
  const res = kind.info;
  // Kinds without rules get the generic store's: names are path segments, finalizers qualified names.
  const meta: MetaRules = { nameFn: kind.meta?.name ?? pathSegmentName, namespaced: res.namespaced, kubeFinalizers: kind.meta?.kubeFinalizers ?? false };
  const errs = new ErrorList();
  try {
    // What the Go type could not even hold (a string in an int32, replicas 1e308) is a decoding error,
    // checked on every write: the scale subresource and controllers' own writes never pass the decoder.
    // Except a binding: it sets spec.nodeName (a string its callers check) and a condition on a pod stored
    // after these checks, and kube's binding storage validates the pod no further either. Walking the whole
    // pod again found nothing, for ~1.3% of `skiff up`'s CPU scheduling, and validating its spec ~1%.
    const binding = opts.subresource === 'binding';
    if (!binding) {
      if (nestedDeeperThan(obj)) throw new DecodeError(tooDeepMessage);
      const undecodable = typeErrors(res, obj);
      if (undecodable.length) throw new DecodeError(undecodable[0]);
    }
    validateObjectMeta(errs, obj.metadata, meta);
    if (old) validateObjectMetaUpdate(errs, obj.metadata, old.metadata);
    if (!binding) kind.validate?.(errs, obj);
    if (old) kind.validateUpdate?.(errs, obj, old, opts);
    else kind.validateCreate?.(errs, obj);
  } catch (e) {
    if (e instanceof DecodeError) {
      const what = (e.cause as string | undefined) ?? res.kind;
      throw errors.badRequest(`${what} in version "${res.version}" cannot be handled as a ${what}: ${e.message}`);
    }
    throw e;
  }
  if (errs.length === 0) return;
  // The aggregated message drops repeated findings, as field.ErrorList.ToAggregate does.
  const seen = new Set<string>();
  const causes: StatusCause[] = [];
  for (const e of errs.list) {
    const key = fieldErrorString(e);
    if (seen.has(key)) continue;
    seen.add(key);
    causes.push({ reason: e.type, message: fieldErrorBody(e), field: e.field });
  }
  throw errors.invalid(res.kind, res.group, obj.metadata?.name ?? '', causes);
}
