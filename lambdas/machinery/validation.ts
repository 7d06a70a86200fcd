// Validation of the served kinds, as kube-apiserver's strategies validate them (pkg/apis/core/validation,
// pkg/apis/coordination/validation, k8s.io/apimachinery/pkg/api/validation). Every problem found is
// reported at once, with Kubernetes' field paths, cause reasons and message texts, so kubectl and client
// libraries show what they would show against a real cluster, e.g.
//   The Pod "x" is invalid: spec.containers[0].image: Required value
//
// Texts follow Kubernetes v1.32. Where Kubernetes' own validation has a quirk that users can see (a field
// path without an index, a typo in a path), the quirk is reproduced and marked "as upstream".
//
// Runs after defaulting (defaulting.ts), as in Kubernetes: fields that defaulting always sets are still
// checked, because an update or a status write can clear them.

import { Buffer } from 'node:buffer';
import { isIP } from 'node:net';
import { errors, type StatusCause } from './status.ts';
import type { ResourceInfo } from './resources.ts';
import type { KubeObject, ObjectMeta } from './types.ts';
import { isObject } from './types.ts';
import { parseQuantityExact, formatQuantity, QuantityError, type ParsedQuantity } from './quantity.ts';
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
function goJSON(v: unknown): string {
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
class GoStruct {
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

class ErrorList {
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

function maxLenError(n: number): string {
  return `must be no more than ${n} characters`;
}

/** validation.RegexError: note Go's ", " before each " or ", which yields a double space. */
function regexError(msg: string, fmt: string, ...examples: string[]): string {
  if (examples.length === 0) return `${msg} (regex used for validation is '${fmt}')`;
  return `${msg} (e.g. ${examples.map((e) => `'${e}', `).join(' or ')}regex used for validation is '${fmt}')`;
}

function inclusiveRangeError(lo: number, hi: number): string {
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

function portNumErrors(n: unknown): string[] {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535 ? [] : [inclusiveRangeError(1, 65535)];
}

/** IsRelaxedEnvVarName (the RelaxedEnvironmentVariableValidation gate is on by default in v1.32). */
function envVarNameErrors(v: string): string[] {
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
function parseIPSloppy(s: string): 4 | 6 | undefined {
  if (typeof s !== 'string') return undefined;
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(s)) return s.split('.').every((o) => Number(o) <= 255) ? 4 : undefined;
  const v = isIP(s);
  return v === 4 || v === 6 ? v : undefined;
}

function ipErrors(errs: ErrorList, field: string, value: unknown): boolean {
  if (typeof value === 'string' && parseIPSloppy(value)) return true;
  errs.invalid(field, value ?? '', 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)');
  return false;
}

function validCIDR(s: unknown): boolean {
  if (typeof s !== 'string') return false;
  const [ip, bits, ...rest] = s.split('/');
  if (rest.length || bits === undefined || !/^\d+$/.test(bits)) return false;
  const v = parseIPSloppy(ip!);
  return v !== undefined && Number(bits) <= (v === 4 ? 32 : 128);
}

/** Unspecified, loopback and link-local addresses are refused for endpoints and external IPs. */
function nonSpecialIPErrors(errs: ErrorList, field: string, ip: string): void {
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

const arr = (v: unknown): any[] => (Array.isArray(v) ? v : []);
const obj = (v: unknown): Record<string, any> => (isObject(v) ? v : {});
const strOf = (v: unknown): string => (typeof v === 'string' ? v : '');
const has = (o: unknown, k: string): boolean => isObject(o) && o[k] !== undefined && o[k] !== null;
const present = (v: unknown): boolean => v !== undefined && v !== null;

/** Semantic equality of JSON values: a missing field, null, [] and {} are all "unset", as Go's zero values. */
function jsonEqual(a: unknown, b: unknown): boolean {
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

function sortedList(values: Iterable<string>): string[] {
  return [...values].sort();
}

// ---------------------------------------------------------------------------------------------------
// Quantities: a quantity that does not parse is a decoding error in Kubernetes (400, not 422).

class DecodeError extends Error {}

function quantity(v: unknown): ParsedQuantity {
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

type NameFn = (name: string, prefix: boolean) => string[];

/** The generateName check validates the prefix with a trailing '-' masked (maskTrailingDash). */
function maskTrailingDash(name: string): string {
  return name.endsWith('-') && name.length >= 2 ? `${name.slice(0, -2)}a` : name;
}

const nameIsDNSSubdomain: NameFn = (n, p) => dns1123SubdomainErrors(p ? maskTrailingDash(n) : n);
const nameIsDNSLabel: NameFn = (n, p) => dns1123LabelErrors(p ? maskTrailingDash(n) : n);
const nameIsDNS1035Label: NameFn = (n, p) => dns1035LabelErrors(p ? maskTrailingDash(n) : n);
/** path.ValidatePathSegmentName: what the generic store enforces on names of kinds without a rule. */
const pathSegmentName: NameFn = (n, prefix) => {
  if (!prefix) {
    if (n === '.' || n === '..') return [`may not be '${n}'`];
  }
  const errs: string[] = [];
  for (const bad of ['/', '%']) if (n.includes(bad)) errs.push(`may not contain '${bad}'`);
  return errs;
};

const STANDARD_FINALIZERS = new Set(['kubernetes', 'orphan', 'foregroundDeletion']);

interface MetaRules {
  nameFn: NameFn;
  namespaced: boolean;
  /** Core kinds also require unqualified finalizer names to be one of the standard ones. */
  kubeFinalizers: boolean;
}

function validateLabels(errs: ErrorList, labels: unknown, field: string): void {
  if (!present(labels)) return;
  for (const [k, v] of Object.entries(obj(labels))) {
    errs.each(field, k, labelKeyErrors(k));
    errs.each(field, v, labelValueErrors(strOf(v)));
  }
}

const TOTAL_ANNOTATION_SIZE = 256 * 1024;

function validateAnnotations(errs: ErrorList, annotations: unknown, field: string): void {
  if (!present(annotations)) return;
  let size = 0;
  for (const [k, v] of Object.entries(obj(annotations))) {
    // Annotation keys are qualified names, compared case-insensitively.
    errs.each(field, k, labelKeyErrors(k.toLowerCase()));
    size += Buffer.byteLength(k) + Buffer.byteLength(strOf(v));
  }
  if (size > TOTAL_ANNOTATION_SIZE) errs.tooLong(field, TOTAL_ANNOTATION_SIZE);
}

function validateOwnerReferences(errs: ErrorList, refs: unknown, field: string): void {
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

function validateObjectMeta(errs: ErrorList, meta: ObjectMeta, rules: MetaRules): void {
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

function validateObjectMetaUpdate(errs: ErrorList, meta: ObjectMeta, old: ObjectMeta): void {
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
// Pod spec (pkg/apis/core/validation: ValidatePodSpec and what it calls)

const PROTOCOLS = ['SCTP', 'TCP', 'UDP'];

/** VolumeSource members in the order Kubernetes checks them; the second one found is the error. */
const VOLUME_SOURCES: [string, string][] = [
  ['emptyDir', 'emptyDir'],
  ['hostPath', 'hostPath'],
  ['gitRepo', 'gitRepo'],
  ['gcePersistentDisk', 'gcePersistentDisk'],
  ['awsElasticBlockStore', 'awsElasticBlockStore'],
  ['secret', 'secret'],
  ['nfs', 'nfs'],
  ['iscsi', 'iscsi'],
  ['glusterfs', 'glusterfs'],
  ['flocker', 'flocker'],
  ['persistentVolumeClaim', 'persistentVolumeClaim'],
  ['rbd', 'rbd'],
  ['cinder', 'cinder'],
  ['cephfs', 'cephFS'], // as upstream: the error path is spelled cephFS
  ['quobyte', 'quobyte'],
  ['downwardAPI', 'downwarAPI'], // as upstream: the error path has this typo
  ['fc', 'fc'],
  ['flexVolume', 'flexVolume'],
  ['configMap', 'configMap'],
  ['azureFile', 'azureFile'],
  ['vsphereVolume', 'vsphereVolume'],
  ['photonPersistentDisk', 'photonPersistentDisk'],
  ['portworxVolume', 'portworxVolume'],
  ['azureDisk', 'azureDisk'],
  ['storageos', 'storageos'],
  ['projected', 'projected'],
  ['scaleIO', 'scaleIO'],
  ['csi', 'csi'],
  ['ephemeral', 'ephemeral'],
  ['image', 'image'],
];

const HOST_PATH_TYPES = ['', 'BlockDevice', 'CharDevice', 'Directory', 'DirectoryOrCreate', 'File', 'FileOrCreate', 'Socket'];
const FILE_MODE_ERROR = 'must be a number between 0 and 0777 (octal), both inclusive';

function pathNoBacksteps(errs: ErrorList, field: string, p: string): void {
  if (p.replace(/\\/g, '/').split('/').includes('..')) errs.invalid(field, p, "must not contain '..'");
}

function localDescendingPath(errs: ErrorList, field: string, p: string): void {
  if (p.startsWith('/')) errs.invalid(field, p, 'must be a relative path');
  pathNoBacksteps(errs, field, p);
}

function localNonReservedPath(errs: ErrorList, field: string, p: string): void {
  localDescendingPath(errs, field, p);
  if (p.startsWith('..') && !p.startsWith('../')) errs.invalid(field, p, "must not start with '..'");
}

function fileMode(errs: ErrorList, field: string, mode: unknown): void {
  if (typeof mode === 'number' && (mode > 0o777 || mode < 0)) errs.invalid(field, mode, FILE_MODE_ERROR);
}

function keyToPaths(errs: ErrorList, field: string, items: unknown): void {
  arr(items).forEach((kp, i) => {
    const p = `${field}[${i}]`;
    if (!strOf(kp?.key)) errs.required(`${p}.key`);
    if (!strOf(kp?.path)) errs.required(`${p}.path`);
    localNonReservedPath(errs, `${p}.path`, strOf(kp?.path));
    fileMode(errs, `${p}.mode`, kp?.mode);
  });
}

function validateVolumeSource(errs: ErrorList, v: Record<string, any>, path: string): void {
  let count = 0;
  for (const [key, errName] of VOLUME_SOURCES) {
    if (!has(v, key)) continue;
    if (count > 0) {
      errs.forbidden(`${path}.${errName}`, 'may not specify more than 1 volume type');
      continue;
    }
    count++;
    const src = obj(v[key]);
    const p = `${path}.${key}`;
    switch (key) {
      case 'emptyDir':
        if (present(src.sizeLimit) && quantity(src.sizeLimit).nanos < 0n) errs.forbidden(`${p}.sizeLimit`, 'SizeLimit field must be a valid resource quantity');
        break;
      case 'hostPath':
        if (!strOf(src.path)) {
          errs.required(`${p}.path`);
          break;
        }
        pathNoBacksteps(errs, `${p}.path`, src.path);
        if (present(src.type) && !HOST_PATH_TYPES.includes(src.type)) errs.notSupported(`${p}.type`, src.type, HOST_PATH_TYPES);
        break;
      case 'secret':
        if (!strOf(src.secretName)) errs.required(`${p}.secretName`);
        fileMode(errs, `${p}.defaultMode`, src.defaultMode);
        keyToPaths(errs, `${p}.items`, src.items);
        break;
      case 'configMap':
        if (!strOf(src.name)) errs.required(`${p}.name`);
        fileMode(errs, `${p}.defaultMode`, src.defaultMode);
        keyToPaths(errs, `${p}.items`, src.items);
        break;
      case 'persistentVolumeClaim':
        if (!strOf(src.claimName)) errs.required(`${p}.claimName`);
        break;
      case 'nfs':
        if (!strOf(src.server)) errs.required(`${p}.server`);
        if (!strOf(src.path)) errs.required(`${p}.path`);
        if (!strOf(src.path).startsWith('/')) errs.invalid(`${p}.path`, strOf(src.path), 'must be an absolute path');
        break;
      case 'downwardAPI':
        fileMode(errs, `${p}.defaultMode`, src.defaultMode);
        break;
      case 'projected':
        fileMode(errs, `${p}.defaultMode`, src.defaultMode);
        arr(src.sources).forEach((source, j) => {
          if (!isObject(source?.serviceAccountToken)) return;
          // A bound token's lifetime: at least 10 minutes, at most 2^32 s (validateProjectionSources).
          const t = source.serviceAccountToken;
          const tp = `${p}.sources[${j}].serviceAccountToken`;
          const exp = t.expirationSeconds ?? 3600;
          if (exp < 600) errs.invalid(`${tp}.expirationSeconds`, exp, 'may not specify a duration less than 10 minutes');
          if (exp > 2 ** 32) errs.invalid(`${tp}.expirationSeconds`, exp, 'may not specify a duration larger than 2^32 seconds');
          if (!strOf(t.path)) errs.required(`${tp}.path`);
        });
        break;
    }
  }
  if (count === 0) errs.required(path, 'must specify a volume type');
}

/** Returns the names of the valid volumes: mounts may only refer to those. */
function validateVolumes(errs: ErrorList, volumes: unknown, path: string): Map<string, Record<string, any>> {
  const names = new Map<string, Record<string, any>>();
  arr(volumes).forEach((vol, i) => {
    const idx = `${path}[${i}]`;
    const own = new ErrorList();
    const v = obj(vol);
    validateVolumeSource(own, v, idx);
    const name = strOf(v.name);
    if (!name) own.required(`${idx}.name`);
    else own.each(`${idx}.name`, name, dns1123LabelErrors(name));
    if (names.has(name)) own.duplicate(`${idx}.name`, name);
    if (own.length === 0) names.set(name, v);
    else errs.list.push(...own.list);
  });
  return names;
}

function validateContainerPorts(errs: ErrorList, ports: unknown, path: string): void {
  const names = new Set<string>();
  arr(ports).forEach((port, i) => {
    const p = `${path}[${i}]`;
    const pt = obj(port);
    const name = strOf(pt.name);
    if (name) {
      const msgs = portNameErrors(name);
      if (msgs.length) errs.each(`${p}.name`, name, msgs);
      else if (names.has(name)) errs.duplicate(`${p}.name`, name);
      else names.add(name);
    }
    if (!pt.containerPort) errs.required(`${p}.containerPort`);
    else errs.each(`${p}.containerPort`, pt.containerPort, portNumErrors(pt.containerPort));
    if (pt.hostPort) errs.each(`${p}.hostPort`, pt.hostPort, portNumErrors(pt.hostPort));
    if (!strOf(pt.protocol)) errs.required(`${p}.protocol`);
    else if (!PROTOCOLS.includes(pt.protocol)) errs.notSupported(`${p}.protocol`, pt.protocol, PROTOCOLS);
  });
}

const ENV_FIELD_PATHS = sortedList([
  'metadata.name',
  'metadata.namespace',
  'metadata.uid',
  'spec.nodeName',
  'spec.serviceAccountName',
  'status.hostIP',
  'status.hostIPs',
  'status.podIP',
  'status.podIPs',
]);
const RESOURCE_FIELD_PATHS = sortedList(['limits.cpu', 'limits.memory', 'limits.ephemeral-storage', 'requests.cpu', 'requests.memory', 'requests.ephemeral-storage']);

function validateObjectFieldSelector(errs: ErrorList, fs: Record<string, any>, path: string): void {
  if (!strOf(fs.apiVersion)) return errs.required(`${path}.apiVersion`);
  const fieldPath = strOf(fs.fieldPath);
  if (!fieldPath) return errs.required(`${path}.fieldPath`);
  const sub = /^(metadata\.(?:labels|annotations))\['(.*)'\]$/.exec(fieldPath);
  if (sub) {
    const key = sub[1] === 'metadata.annotations' ? sub[2]!.toLowerCase() : sub[2]!;
    errs.each(path, key, labelKeyErrors(key));
  } else if (!ENV_FIELD_PATHS.includes(fieldPath)) {
    errs.notSupported(`${path}.fieldPath`, fieldPath, ENV_FIELD_PATHS);
  }
}

function validateKeySelector(errs: ErrorList, s: Record<string, any>, path: string): void {
  errs.each(`${path}.name`, strOf(s.name), dns1123SubdomainErrors(strOf(s.name)));
  if (!strOf(s.key)) errs.required(`${path}.key`);
  else errs.each(`${path}.key`, s.key, configMapKeyErrors(s.key));
}

function validateEnv(errs: ErrorList, env: unknown, path: string): void {
  arr(env).forEach((ev, i) => {
    const p = `${path}[${i}]`;
    const e = obj(ev);
    if (!strOf(e.name)) errs.required(`${p}.name`);
    else errs.each(`${p}.name`, e.name, envVarNameErrors(e.name));
    if (!present(e.valueFrom)) return;
    const vf = obj(e.valueFrom);
    const vp = `${p}.valueFrom`;
    let sources = 0;
    if (has(vf, 'fieldRef')) {
      sources++;
      validateObjectFieldSelector(errs, obj(vf.fieldRef), `${vp}.fieldRef`);
    }
    if (has(vf, 'resourceFieldRef')) {
      sources++;
      const r = obj(vf.resourceFieldRef);
      if (!strOf(r.resource)) errs.required(`${vp}.resourceFieldRef.resource`);
      else if (!RESOURCE_FIELD_PATHS.includes(r.resource) && !/^(requests|limits)\.hugepages-/.test(r.resource)) {
        errs.notSupported(`${vp}.resourceFieldRef.resource`, r.resource, RESOURCE_FIELD_PATHS);
      }
    }
    if (has(vf, 'configMapKeyRef')) {
      sources++;
      validateKeySelector(errs, obj(vf.configMapKeyRef), `${vp}.configMapKeyRef`);
    }
    if (has(vf, 'secretKeyRef')) {
      sources++;
      validateKeySelector(errs, obj(vf.secretKeyRef), `${vp}.secretKeyRef`);
    }
    if (sources === 0) errs.invalid(vp, '', 'must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`');
    else if (strOf(e.value)) errs.invalid(vp, '', 'may not be specified when `value` is not empty');
    else if (sources > 1) errs.invalid(vp, '', 'may not have more than one field specified at a time');
  });
}

function validateEnvFrom(errs: ErrorList, envFrom: unknown, path: string): void {
  arr(envFrom).forEach((ef, i) => {
    const p = `${path}[${i}]`;
    const e = obj(ef);
    if (strOf(e.prefix)) errs.each(`${p}.prefix`, e.prefix, envVarNameErrors(e.prefix));
    let sources = 0;
    for (const key of ['configMapRef', 'secretRef']) {
      if (!has(e, key)) continue;
      sources++;
      const name = strOf(e[key].name);
      if (!name) errs.required(`${p}.${key}.name`);
      else errs.each(`${p}.${key}.name`, name, nameIsDNSSubdomain(name, true));
    }
    if (sources === 0) errs.invalid(path, '', 'must specify one of: `configMapRef` or `secretRef`');
    else if (sources > 1) errs.invalid(path, '', 'may not have more than one field specified at a time');
  });
}

function validateVolumeMounts(errs: ErrorList, mounts: unknown, volumes: Map<string, Record<string, any>>, container: Record<string, any>, path: string): void {
  const mountPaths = new Set<string>();
  arr(mounts).forEach((mnt, i) => {
    const p = `${path}[${i}]`;
    const m = obj(mnt);
    const name = strOf(m.name);
    if (!name) errs.required(`${p}.name`);
    if (!volumes.has(name)) errs.notFound(`${p}.name`, name);
    const mountPath = strOf(m.mountPath);
    if (!mountPath) errs.required(`${p}.mountPath`);
    if (mountPaths.has(mountPath)) errs.invalid(`${p}.mountPath`, mountPath, 'must be unique');
    mountPaths.add(mountPath);
    // as upstream: subPath and mountPropagation errors carry the list path, not the item's.
    if (strOf(m.subPath)) localDescendingPath(errs, `${path}.subPath`, m.subPath);
    if (strOf(m.subPathExpr)) {
      if (strOf(m.subPath)) errs.invalid(`${p}.subPathExpr`, m.subPathExpr, 'subPathExpr and subPath are mutually exclusive');
      localDescendingPath(errs, `${path}.subPathExpr`, m.subPathExpr);
    }
    if (present(m.mountPropagation)) {
      const supported = ['Bidirectional', 'HostToContainer', 'None'];
      if (!supported.includes(m.mountPropagation)) errs.notSupported(`${path}.mountPropagation`, m.mountPropagation, supported);
      if (m.mountPropagation === 'Bidirectional' && container.securityContext?.privileged !== true) {
        errs.forbidden(`${path}.mountPropagation`, 'Bidirectional mount propagation is available only to privileged containers');
      }
    }
  });
}

// Resource names (pkg/apis/core/helper): what containers may request.
const STANDARD_CONTAINER_RESOURCES = new Set(['cpu', 'memory', 'ephemeral-storage']);
const STANDARD_RESOURCES = new Set([
  'cpu',
  'memory',
  'ephemeral-storage',
  'requests.cpu',
  'requests.memory',
  'requests.ephemeral-storage',
  'limits.cpu',
  'limits.memory',
  'limits.ephemeral-storage',
  'pods',
  'resourcequotas',
  'services',
  'replicationcontrollers',
  'secrets',
  'persistentvolumeclaims',
  'configmaps',
  'services.nodeports',
  'services.loadbalancers',
  'requests.storage',
  'storage',
]);

const isHugePages = (n: string) => n.startsWith('hugepages-');
const isNativeResource = (n: string) => !n.includes('/') || n.startsWith('kubernetes.io/');
const isExtendedResource = (n: string) => !isNativeResource(n) && !n.startsWith('requests.') && labelKeyErrors(`requests.${n}`).length === 0;
const isOvercommitAllowed = (n: string) => isNativeResource(n) && !isHugePages(n);

function validateContainerResourceName(errs: ErrorList, name: string, field: string): void {
  const msgs = labelKeyErrors(name);
  if (msgs.length) return errs.each(field, name, msgs);
  if (!name.includes('/')) {
    if (!STANDARD_RESOURCES.has(name) && !isHugePages(name) && !/^requests\.hugepages-/.test(name)) {
      errs.invalid(field, name, 'must be a standard resource type or fully qualified');
    }
    if (!STANDARD_CONTAINER_RESOURCES.has(name) && !isHugePages(name)) errs.invalid(field, name, 'must be a standard resource for containers');
  } else if (!isNativeResource(name) && !isExtendedResource(name)) {
    errs.invalid(field, name, "doesn't follow extended resource name standard");
  }
}

function validateResourceQuantity(errs: ErrorList, name: string, q: ParsedQuantity, field: string): void {
  const text = formatQuantity(q);
  if (q.nanos < 0n) errs.invalid(field, text, 'must be greater than or equal to 0');
  // Extended resources are counted in whole units.
  if (isExtendedResource(name) && q.nanos % 1_000_000_000n !== 0n) errs.invalid(field, text, 'must be an integer');
}

function validateResources(errs: ErrorList, resources: unknown, path: string): void {
  const r = obj(resources);
  const limits = obj(r.limits);
  const requests = obj(r.requests);
  const limPath = `${path}.limits`;
  const reqPath = `${path}.requests`;
  const parsedLimits = new Map<string, ParsedQuantity>();
  for (const [name, value] of Object.entries(limits)) {
    const field = `${limPath}[${name}]`;
    validateContainerResourceName(errs, name, field);
    const q = quantity(value);
    parsedLimits.set(name, q);
    validateResourceQuantity(errs, name, q, field);
  }
  for (const [name, value] of Object.entries(requests)) {
    const field = `${reqPath}[${name}]`;
    validateContainerResourceName(errs, name, field);
    const q = quantity(value);
    validateResourceQuantity(errs, name, q, field);
    const lim = parsedLimits.get(name);
    if (lim) {
      if (q.nanos !== lim.nanos && !isOvercommitAllowed(name)) {
        errs.invalid(reqPath, formatQuantity(q), `must be equal to ${name} limit of ${formatQuantity(lim)}`);
      } else if (q.nanos > lim.nanos) {
        errs.invalid(reqPath, formatQuantity(q), `must be less than or equal to ${name} limit of ${formatQuantity(lim)}`);
      }
    } else if (!isOvercommitAllowed(name)) {
      errs.required(limPath, 'Limit must be set for non overcommitable resources');
    }
  }
  const cpuOrMemory = ['cpu', 'memory'].some((n) => n in limits || n in requests);
  const huge = [...Object.keys(limits), ...Object.keys(requests)].some(isHugePages);
  if (huge && !cpuOrMemory) errs.forbidden(path, 'HugePages require cpu or memory');
}

function validatePortNumOrName(errs: ErrorList, port: unknown, field: string): void {
  if (typeof port === 'string') errs.each(field, port, portNameErrors(port));
  else errs.each(field, port ?? 0, portNumErrors(port));
}

interface Handlers {
  exec?: unknown;
  httpGet?: unknown;
  tcpSocket?: unknown;
  grpc?: unknown;
  sleep?: unknown;
}

function validateHandler(errs: ErrorList, h: Handlers & Record<string, any>, path: string, allowed: (keyof Handlers)[]): void {
  let n = 0;
  for (const key of allowed) {
    if (!has(h, key)) continue;
    if (n > 0) {
      errs.forbidden(`${path}.${key}`, 'may not specify more than 1 handler type');
      continue;
    }
    n++;
    const a = obj(h[key]);
    const p = `${path}.${key}`;
    switch (key) {
      case 'exec':
        if (arr(a.command).length === 0) errs.required(`${p}.command`);
        break;
      case 'httpGet': {
        if (!strOf(a.path)) errs.required(`${p}.path`);
        validatePortNumOrName(errs, a.port, `${p}.port`);
        if (!['HTTP', 'HTTPS'].includes(a.scheme)) errs.notSupported(`${p}.scheme`, a.scheme ?? '', ['HTTP', 'HTTPS']);
        for (const hd of arr(a.httpHeaders)) {
          const name = strOf(hd?.name);
          if (!/^[-A-Za-z0-9]+$/.test(name)) {
            errs.invalid(`${p}.httpHeaders`, name, regexError("a valid HTTP header must consist of alphanumeric characters or '-'", '[-A-Za-z0-9]+', 'X-Header-Name'));
          }
        }
        break;
      }
      case 'tcpSocket':
        validatePortNumOrName(errs, a.port, `${p}.port`);
        break;
      case 'grpc':
        errs.each(`${p}.port`, a.port ?? 0, portNumErrors(a.port));
        break;
    }
  }
  if (n === 0) errs.required(path, 'must specify a handler type');
}

function validateProbe(errs: ErrorList, probe: unknown, path: string, kind: 'liveness' | 'readiness' | 'startup'): void {
  if (!present(probe)) return;
  const p = obj(probe);
  validateHandler(errs, p, path, ['exec', 'httpGet', 'tcpSocket', 'grpc']);
  for (const f of ['initialDelaySeconds', 'timeoutSeconds', 'periodSeconds', 'successThreshold', 'failureThreshold']) {
    if (typeof p[f] === 'number' && p[f] < 0) errs.invalid(`${path}.${f}`, p[f], 'must be greater than or equal to 0');
  }
  if (present(p.terminationGracePeriodSeconds) && p.terminationGracePeriodSeconds <= 0) {
    errs.invalid(`${path}.terminationGracePeriodSeconds`, p.terminationGracePeriodSeconds, 'must be greater than 0');
  }
  if (kind === 'readiness' && present(p.terminationGracePeriodSeconds)) {
    errs.invalid(`${path}.terminationGracePeriodSeconds`, p.terminationGracePeriodSeconds, 'must not be set for readinessProbes');
  }
  if (kind !== 'readiness' && typeof p.successThreshold === 'number' && p.successThreshold !== 1) {
    errs.invalid(`${path}.successThreshold`, p.successThreshold, 'must be 1');
  }
}

function validateLifecycle(errs: ErrorList, lifecycle: unknown, path: string): void {
  const l = obj(lifecycle);
  for (const hook of ['postStart', 'preStop']) {
    if (has(l, hook)) validateHandler(errs, obj(l[hook]), `${path}.${hook}`, ['exec', 'httpGet', 'tcpSocket', 'sleep']);
  }
}

const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'];

function validateSecurityContextIDs(errs: ErrorList, sc: Record<string, any>, path: string): void {
  for (const f of ['runAsUser', 'runAsGroup', 'fsGroup']) {
    const v = sc[f];
    if (typeof v === 'number' && (v < 0 || v > 4294967295)) errs.invalid(`${path}.${f}`, v, inclusiveRangeError(0, 4294967295));
  }
}

function validateContainerCommon(errs: ErrorList, c: Record<string, any>, volumes: Map<string, Record<string, any>>, path: string): void {
  const name = strOf(c.name);
  if (!name) errs.required(`${path}.name`);
  else errs.each(`${path}.name`, name, dns1123LabelErrors(name));
  if (!strOf(c.image)) errs.required(`${path}.image`);
  const tmp = c.terminationMessagePolicy;
  if (!strOf(tmp)) errs.required(`${path}.terminationMessagePolicy`);
  else if (tmp !== 'File' && tmp !== 'FallbackToLogsOnError') errs.notSupported(`${path}.terminationMessagePolicy`, tmp, ['File', 'FallbackToLogsOnError']);
  validateContainerPorts(errs, c.ports, `${path}.ports`);
  validateEnv(errs, c.env, `${path}.env`);
  validateEnvFrom(errs, c.envFrom, `${path}.envFrom`);
  validateVolumeMounts(errs, c.volumeMounts, volumes, c, `${path}.volumeMounts`);
  if (!strOf(c.imagePullPolicy)) errs.required(`${path}.imagePullPolicy`);
  else if (!PULL_POLICIES.includes(c.imagePullPolicy)) errs.notSupported(`${path}.imagePullPolicy`, c.imagePullPolicy, PULL_POLICIES);
  validateResources(errs, c.resources, `${path}.resources`);
  if (isObject(c.securityContext)) {
    const sc = c.securityContext;
    validateSecurityContextIDs(errs, sc, `${path}.securityContext`);
    if (sc.allowPrivilegeEscalation === false && sc.privileged === true) {
      errs.invalid(`${path}.securityContext`, sc, 'cannot set `allowPrivilegeEscalation` to false and `privileged` to true');
    }
  }
}

/** Host ports must not collide: "protocol/hostIP/port" is the key. */
function checkHostPortConflicts(errs: ErrorList, containers: any[], path: string, seen = new Set<string>()): void {
  containers.forEach((c, ci) => {
    arr(c?.ports).forEach((pt, pi) => {
      if (!pt?.hostPort) return;
      const key = `${strOf(pt.protocol)}/${strOf(pt.hostIP)}/${pt.hostPort}`;
      if (seen.has(key)) errs.duplicate(`${path}[${ci}].ports[${pi}].hostPort`, key);
      else seen.add(key);
    });
  });
}

function validateContainers(errs: ErrorList, containers: unknown, volumes: Map<string, Record<string, any>>, path: string): void {
  const list = arr(containers);
  if (list.length === 0) return errs.required(path);
  const names = new Set<string>();
  list.forEach((ctr, i) => {
    const c = obj(ctr);
    const p = `${path}[${i}]`;
    validateContainerCommon(errs, c, volumes, p);
    const name = strOf(c.name);
    if (names.has(name)) errs.duplicate(`${p}.name`, name);
    else names.add(name);
    if (present(c.lifecycle)) validateLifecycle(errs, c.lifecycle, `${p}.lifecycle`);
    validateProbe(errs, c.livenessProbe, `${p}.livenessProbe`, 'liveness');
    validateProbe(errs, c.readinessProbe, `${p}.readinessProbe`, 'readiness');
    validateProbe(errs, c.startupProbe, `${p}.startupProbe`, 'startup');
    if (present(c.restartPolicy)) errs.forbidden(`${p}.restartPolicy`, 'may not be set for non-init containers');
  });
  checkHostPortConflicts(errs, list, path);
}

function validateInitContainers(errs: ErrorList, inits: unknown, regular: unknown, volumes: Map<string, Record<string, any>>, path: string): void {
  const names = new Set(arr(regular).map((c) => strOf(c?.name)));
  arr(inits).forEach((ctr, i) => {
    const c = obj(ctr);
    const p = `${path}[${i}]`;
    validateContainerCommon(errs, c, volumes, p);
    let restartAlways = false;
    if (present(c.restartPolicy)) {
      if (c.restartPolicy !== 'Always') errs.notSupported(`${p}.restartPolicy`, c.restartPolicy, ['Always']);
      restartAlways = c.restartPolicy === 'Always';
    }
    const name = strOf(c.name);
    if (names.has(name)) errs.duplicate(`${p}.name`, name);
    else if (name) names.add(name);
    // Init containers run one by one, so only ports within one of them can collide.
    checkHostPortConflicts(errs, [c], path);
    if (restartAlways) {
      if (present(c.lifecycle)) validateLifecycle(errs, c.lifecycle, `${p}.lifecycle`);
      validateProbe(errs, c.livenessProbe, `${p}.livenessProbe`, 'liveness');
      validateProbe(errs, c.readinessProbe, `${p}.readinessProbe`, 'readiness');
      validateProbe(errs, c.startupProbe, `${p}.startupProbe`, 'startup');
    } else {
      for (const f of ['lifecycle', 'livenessProbe', 'readinessProbe', 'startupProbe']) {
        if (present(c[f])) errs.forbidden(`${p}.${f}`, 'may not be set for init containers without restartPolicy=Always');
      }
    }
  });
}

const RESTART_POLICIES = ['Always', 'OnFailure', 'Never'];
const DNS_POLICIES = ['ClusterFirstWithHostNet', 'ClusterFirst', 'Default', 'None'];
const TAINT_EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'];

function validateTolerations(errs: ErrorList, tolerations: unknown, path: string): void {
  arr(tolerations).forEach((tol, i) => {
    const t = obj(tol);
    const p = `${path}[${i}]`;
    const key = strOf(t.key);
    if (key) errs.each(`${p}.key`, key, labelKeyErrors(key));
    const op = strOf(t.operator);
    if (!key && op !== 'Exists') errs.invalid(`${p}.operator`, op, 'operator must be Exists when `key` is empty, which means "match all values and all keys"');
    if (present(t.tolerationSeconds) && t.effect !== 'NoExecute') errs.invalid(`${p}.effect`, strOf(t.effect), "effect must be 'NoExecute' when `tolerationSeconds` is set");
    if (op === 'Equal' || op === '') {
      const msgs = labelValueErrors(strOf(t.value));
      if (msgs.length) errs.invalid(`${p}.operator`, strOf(t.value), msgs.join(';'));
    } else if (op === 'Exists') {
      if (strOf(t.value)) errs.invalid(`${p}.operator`, t.value, "value must be empty when `operator` is 'Exists'");
    } else {
      errs.notSupported(`${p}.operator`, op, ['Equal', 'Exists']);
    }
    if (strOf(t.effect) && !TAINT_EFFECTS.includes(t.effect)) errs.notSupported(`${p}.effect`, t.effect, TAINT_EFFECTS);
  });
}

function validateDNSConfig(errs: ErrorList, dnsConfig: unknown, dnsPolicy: unknown, path: string): void {
  if (dnsPolicy === 'None') {
    if (!present(dnsConfig)) return errs.required(path, 'must provide `dnsConfig` when `dnsPolicy` is None');
    if (arr(obj(dnsConfig).nameservers).length === 0) return errs.required(`${path}.nameservers`, 'must provide at least one DNS nameserver when `dnsPolicy` is None');
  }
  if (!present(dnsConfig)) return;
  const c = obj(dnsConfig);
  const ns = arr(c.nameservers);
  if (ns.length > 3) errs.invalid(`${path}.nameservers`, ns, 'must not have more than 3 nameservers');
  ns.forEach((n, i) => ipErrors(errs, `${path}.nameservers[${i}]`, n));
  const searches = arr(c.searches).map(strOf);
  if (searches.length > 32) errs.invalid(`${path}.searches`, searches, 'must not have more than 32 search paths');
  if (searches.join(' ').length > 2048) errs.invalid(`${path}.searches`, searches, 'must not have more than 2048 characters (including spaces) in the search list');
  searches.forEach((s, i) => {
    const trimmed = s.replace(/\.$/, '');
    errs.each(`${path}.searches[${i}]`, trimmed, dns1123SubdomainErrors(trimmed));
  });
  arr(c.options).forEach((o, i) => {
    if (!strOf(o?.name)) errs.required(`${path}.options[${i}]`, 'must not be empty');
  });
}

interface PodSpecOptions {
  /** Pods (not templates) also refuse images with surrounding whitespace. */
  isPod: boolean;
}

// Scheduling constraints (core/validation: validateAffinity, validateTopologySpreadConstraints). The
// scheduler acts on these, so their numbers are held to Kubernetes' ranges: weights 1-100, maxSkew and
// minDomains positive.

function validateNodeSelectorTerm(errs: ErrorList, term: unknown, path: string): void {
  const t = obj(term);
  arr(t.matchExpressions).forEach((r, i) => {
    const p = `${path}.matchExpressions[${i}]`;
    const values = arr(r?.values);
    switch (r?.operator) {
      case 'In':
      case 'NotIn':
        if (!values.length) errs.required(`${p}.values`, "must be specified when `operator` is 'In' or 'NotIn'");
        break;
      case 'Exists':
      case 'DoesNotExist':
        if (values.length) errs.forbidden(`${p}.values`, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
        break;
      case 'Gt':
      case 'Lt':
        if (values.length !== 1) errs.required(`${p}.values`, "must be specified single value when `operator` is 'Lt' or 'Gt'");
        break;
      default:
        errs.invalid(`${p}.operator`, r?.operator, 'not a valid selector operator');
    }
    const key = strOf(r?.key);
    errs.each(`${p}.key`, key, labelKeyErrors(key));
  });
  arr(t.matchFields).forEach((r, i) => {
    const p = `${path}.matchFields[${i}]`;
    if (r?.key !== 'metadata.name') errs.invalid(`${p}.key`, r?.key, 'not a valid field selector key');
    if (r?.operator !== 'In' && r?.operator !== 'NotIn') errs.invalid(`${p}.operator`, r?.operator, 'not a valid selector operator');
    else if (arr(r?.values).length !== 1) errs.required(`${p}.values`, 'must be only one value when `operator` is \'In\' or \'NotIn\' for node field selector');
  });
}

function validateWeight(errs: ErrorList, w: unknown, path: string): void {
  if (typeof w !== 'number' || w <= 0 || w > 100) errs.invalid(path, w ?? 0, 'must be in the range 1-100');
}

function validatePodAffinityTerms(errs: ErrorList, pa: Record<string, any>, path: string): void {
  const term = (t: unknown, p: string) => {
    const key = strOf(obj(t).topologyKey);
    if (!key) errs.required(`${p}.topologyKey`, 'can not be empty');
    else errs.each(`${p}.topologyKey`, key, labelKeyErrors(key));
  };
  arr(pa.requiredDuringSchedulingIgnoredDuringExecution).forEach((t, i) => term(t, `${path}.requiredDuringSchedulingIgnoredDuringExecution[${i}]`));
  arr(pa.preferredDuringSchedulingIgnoredDuringExecution).forEach((t, i) => {
    const p = `${path}.preferredDuringSchedulingIgnoredDuringExecution[${i}]`;
    validateWeight(errs, t?.weight, `${p}.weight`);
    term(t?.podAffinityTerm, `${p}.podAffinityTerm`);
  });
}

function validateAffinity(errs: ErrorList, a: Record<string, any>, path: string): void {
  const na = obj(a.nodeAffinity);
  const required = na.requiredDuringSchedulingIgnoredDuringExecution;
  if (isObject(required)) {
    const p = `${path}.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms`;
    const terms = arr(required.nodeSelectorTerms);
    if (!terms.length) errs.required(p, 'must have at least one node selector term');
    terms.forEach((t, i) => validateNodeSelectorTerm(errs, t, `${p}[${i}]`));
  }
  arr(na.preferredDuringSchedulingIgnoredDuringExecution).forEach((t, i) => {
    const p = `${path}.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[${i}]`;
    validateWeight(errs, t?.weight, `${p}.weight`);
    validateNodeSelectorTerm(errs, t?.preference, `${p}.preference`);
  });
  if (isObject(a.podAffinity)) validatePodAffinityTerms(errs, a.podAffinity, `${path}.podAffinity`);
  if (isObject(a.podAntiAffinity)) validatePodAffinityTerms(errs, a.podAntiAffinity, `${path}.podAntiAffinity`);
}

const SCHEDULE_ACTIONS = ['DoNotSchedule', 'ScheduleAnyway'];

function validateTopologySpreadConstraints(errs: ErrorList, list: unknown, path: string): void {
  const seen = new Set<string>();
  arr(list).forEach((c, i) => {
    const p = `${path}[${i}]`;
    const skew = c?.maxSkew ?? 0;
    if (typeof skew !== 'number' || skew <= 0) errs.invalid(`${p}.maxSkew`, skew, 'must be greater than zero');
    const key = strOf(c?.topologyKey);
    if (!key) errs.required(`${p}.topologyKey`, 'can not be empty');
    else errs.each(`${p}.topologyKey`, key, labelKeyErrors(key));
    const action = strOf(c?.whenUnsatisfiable);
    if (!SCHEDULE_ACTIONS.includes(action)) errs.notSupported(`${p}.whenUnsatisfiable`, action, SCHEDULE_ACTIONS);
    const pair = `{${key}, ${action}}`;
    if (seen.has(pair)) errs.duplicate(`${p}.{topologyKey, whenUnsatisfiable}`, pair);
    seen.add(pair);
    if (present(c?.minDomains)) {
      if (c.minDomains <= 0) errs.invalid(`${p}.minDomains`, c.minDomains, 'must be greater than zero');
      if (action !== 'DoNotSchedule') errs.invalid(`${p}.minDomains`, c.minDomains, `can only use minDomains if whenUnsatisfiable=DoNotSchedule, not ${action}`);
    }
  });
}

function validatePodSpec(errs: ErrorList, spec: Record<string, any>, path: string, opts: PodSpecOptions): void {
  if (!present(spec.terminationGracePeriodSeconds)) errs.required(`${path}.terminationGracePeriodSeconds`);
  const volumes = validateVolumes(errs, spec.volumes, `${path}.volumes`);
  validateContainers(errs, spec.containers, volumes, `${path}.containers`);
  validateInitContainers(errs, spec.initContainers, spec.containers, volumes, `${path}.initContainers`);
  const sc = obj(spec.securityContext);
  if (spec.hostNetwork === true || sc.hostNetwork === true) {
    arr(spec.containers).forEach((c, ci) =>
      arr(c?.ports).forEach((pt, pi) => {
        const hp = pt?.hostPort ?? 0;
        if ((opts.isPod || hp !== 0) && hp !== pt?.containerPort) {
          errs.invalid(`${path}.containers[${ci}].ports[${pi}].hostPort`, hp, 'must match `containerPort` when `hostNetwork` is true');
        }
      }),
    );
  }
  const rp = spec.restartPolicy;
  if (!strOf(rp)) errs.required(`${path}.restartPolicy`);
  else if (!RESTART_POLICIES.includes(rp)) errs.notSupported(`${path}.restartPolicy`, rp, RESTART_POLICIES);
  const dp = spec.dnsPolicy;
  if (!strOf(dp)) errs.required(`${path}.dnsPolicy`);
  else if (!DNS_POLICIES.includes(dp)) errs.notSupported(`${path}.dnsPolicy`, dp, DNS_POLICIES);
  validateLabels(errs, spec.nodeSelector, `${path}.nodeSelector`);
  validateSecurityContextIDs(errs, sc, `${path}.securityContext`);
  arr(sc.supplementalGroups).forEach((g, i) => {
    if (typeof g === 'number' && (g < 0 || g > 4294967295)) errs.invalid(`${path}.securityContext.supplementalGroups[${i}]`, g, inclusiveRangeError(0, 4294967295));
  });
  validateDNSConfig(errs, spec.dnsConfig, dp, `${path}.dnsConfig`);
  arr(spec.readinessGates).forEach((g, i) => {
    const t = strOf(g?.conditionType);
    errs.each(`${path}.readinessGates[${i}].conditionType`, t, labelKeyErrors(t));
  });
  const gates = new Set<string>();
  arr(spec.schedulingGates).forEach((g, i) => {
    const n = strOf(g?.name);
    errs.each(`${path}.schedulingGates[${i}]`, n, labelKeyErrors(n));
    if (gates.has(n)) errs.duplicate(`${path}.schedulingGates[${i}]`, n);
    gates.add(n);
  });
  if (strOf(spec.serviceAccountName)) errs.each(`${path}.serviceAccountName`, spec.serviceAccountName, nameIsDNSSubdomain(spec.serviceAccountName, false));
  if (strOf(spec.nodeName)) errs.each(`${path}.nodeName`, spec.nodeName, nameIsDNSSubdomain(spec.nodeName, false));
  if (present(spec.activeDeadlineSeconds)) {
    const v = spec.activeDeadlineSeconds;
    if (typeof v !== 'number' || v < 1 || v > 2147483647) errs.invalid(`${path}.activeDeadlineSeconds`, v, inclusiveRangeError(1, 2147483647));
  }
  if (strOf(spec.hostname)) errs.each(`${path}.hostname`, spec.hostname, dns1123LabelErrors(spec.hostname));
  if (strOf(spec.subdomain)) errs.each(`${path}.subdomain`, spec.subdomain, dns1123LabelErrors(spec.subdomain));
  validateTolerations(errs, spec.tolerations, `${path}.tolerations`);
  if (isObject(spec.affinity)) validateAffinity(errs, spec.affinity, `${path}.affinity`);
  validateTopologySpreadConstraints(errs, spec.topologySpreadConstraints, `${path}.topologySpreadConstraints`);
  arr(spec.hostAliases).forEach((ha, i) => {
    ipErrors(errs, `${path}.hostAliases[${i}].ip`, ha?.ip);
    arr(ha?.hostnames).forEach((h, j) => errs.each(`${path}.hostAliases[${i}].hostnames[${j}]`, strOf(h), dns1123SubdomainErrors(strOf(h))));
  });
  if (strOf(spec.priorityClassName)) errs.each(`${path}.priorityClassName`, spec.priorityClassName, nameIsDNSSubdomain(spec.priorityClassName, false));
  if (present(spec.preemptionPolicy) && !['PreemptLowerPriority', 'Never'].includes(spec.preemptionPolicy)) {
    errs.notSupported(`${path}.preemptionPolicy`, spec.preemptionPolicy, ['PreemptLowerPriority', 'Never']);
  }
  if (opts.isPod) {
    for (const list of ['containers', 'initContainers']) {
      arr(spec[list]).forEach((c, i) => {
        const image = strOf(c?.image);
        if (image.length !== image.trim().length) errs.invalid(`${path}.${list}[${i}].image`, image, 'must not have leading or trailing whitespace');
      });
    }
  }
}

function validatePodTemplateSpec(errs: ErrorList, template: Record<string, any>, path: string): void {
  const meta = obj(template.metadata);
  // as upstream: template labels are reported at <template>.labels, without "metadata".
  validateLabels(errs, meta.labels, `${path}.labels`);
  validateAnnotations(errs, meta.annotations, `${path}.annotations`);
  validatePodSpec(errs, obj(template.spec), `${path}.spec`, { isPod: false });
  if (arr(template.spec?.ephemeralContainers).length) errs.forbidden(`${path}.spec.ephemeralContainers`, 'ephemeral containers not allowed in pod template');
}

// ---------------------------------------------------------------------------------------------------
// Kinds

export interface ValidateOptions {
  /**
   * The subresource written, when not the main resource. "binding" is the one way spec.nodeName of a
   * pod may change (from unset to a node); "status" writes are checked for status rules.
   */
  subresource?: string;
}

interface KindRules {
  meta: MetaRules;
  /** Validation of the whole object (create, and again on update). */
  validate?(errs: ErrorList, o: Record<string, any>): void;
  /** Checks only an update can fail (immutable fields, allowed transitions). */
  update?(errs: ErrorList, o: Record<string, any>, old: Record<string, any>, opts: ValidateOptions): void;
  /** Checks only a create can fail. */
  create?(errs: ErrorList, o: Record<string, any>): void;
}

const core = (nameFn: NameFn, namespaced = true): MetaRules => ({ nameFn, namespaced, kubeFinalizers: true });

const UPDATABLE_POD_SPEC_FIELDS = [
  '`spec.containers[*].image`',
  '`spec.initContainers[*].image`',
  '`spec.activeDeadlineSeconds`',
  '`spec.tolerations` (only additions to existing tolerations)',
  '`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)',
];

/** A short listing of what differs, standing in for the go-cmp diff Kubernetes appends. */
function specDiff(oldSpec: unknown, newSpec: unknown, path = 'spec'): string[] {
  if (jsonEqual(oldSpec, newSpec)) return [];
  if (isObject(oldSpec) && isObject(newSpec)) {
    const keys = sortedList(new Set([...Object.keys(oldSpec), ...Object.keys(newSpec)]));
    return keys.flatMap((k) => specDiff(oldSpec[k], newSpec[k], `${path}.${k}`));
  }
  if (Array.isArray(oldSpec) && Array.isArray(newSpec) && oldSpec.length === newSpec.length) {
    return oldSpec.flatMap((x, i) => specDiff(x, newSpec[i], `${path}[${i}]`));
  }
  return [`-\t${path}: ${goJSON(oldSpec)}`, `+\t${path}: ${goJSON(newSpec)}`];
}

function validatePodUpdate(errs: ErrorList, pod: Record<string, any>, old: Record<string, any>, opts: ValidateOptions): void {
  const spec = obj(pod.spec);
  const oldSpec = obj(old.spec);
  for (const list of ['containers', 'initContainers']) {
    const now = arr(spec[list]);
    if (now.length !== arr(oldSpec[list]).length) {
      errs.forbidden(`spec.${list}`, 'pod updates may not add or remove containers');
      return;
    }
    now.forEach((c, i) => {
      if (!strOf(c?.image)) errs.required(`spec.${list}[${i}].image`);
    });
  }
  const ads = spec.activeDeadlineSeconds;
  if (present(ads)) {
    if (typeof ads !== 'number' || ads < 0 || ads > 2147483647) {
      errs.invalid('spec.activeDeadlineSeconds', ads, inclusiveRangeError(0, 2147483647));
      return;
    }
    if (typeof oldSpec.activeDeadlineSeconds === 'number' && oldSpec.activeDeadlineSeconds < ads) {
      errs.invalid('spec.activeDeadlineSeconds', ads, 'must be less than or equal to previous value');
      return;
    }
  } else if (present(oldSpec.activeDeadlineSeconds)) {
    errs.invalid('spec.activeDeadlineSeconds', null, 'must not update from a positive integer to nil value');
  }
  // Tolerations may only be added; an existing one may change only its tolerationSeconds.
  const newTols = arr(spec.tolerations);
  for (const t of arr(oldSpec.tolerations)) {
    const found = newTols.some((n) => jsonEqual({ ...obj(t), tolerationSeconds: n?.tolerationSeconds }, n));
    if (!found) {
      errs.forbidden('spec.tolerations', 'existing toleration can not be modified except its tolerationSeconds');
      break;
    }
  }
  // Scheduling gates may only be removed.
  const oldGates = new Set(arr(oldSpec.schedulingGates).map((g) => strOf(g?.name)));
  arr(spec.schedulingGates).forEach((g, i) => {
    if (!oldGates.has(strOf(g?.name))) errs.forbidden(`spec.schedulingGates[${i}].name`, `only deletion is allowed, but found new scheduling gate '${strOf(g?.name)}'`);
  });
  if (jsonEqual(spec, oldSpec)) return;
  // The spec is immutable except for the fields above: copy those from the old spec and compare.
  const munged: Record<string, any> = structuredClone(spec);
  for (const list of ['containers', 'initContainers']) {
    if (Array.isArray(munged[list])) munged[list] = munged[list].map((c: any, i: number) => ({ ...obj(c), image: oldSpec[list]?.[i]?.image }));
  }
  munged.activeDeadlineSeconds = oldSpec.activeDeadlineSeconds;
  munged.schedulingGates = oldSpec.schedulingGates;
  munged.tolerations = oldSpec.tolerations;
  if (typeof oldSpec.terminationGracePeriodSeconds === 'number' && oldSpec.terminationGracePeriodSeconds < 0 && munged.terminationGracePeriodSeconds === 1) {
    munged.terminationGracePeriodSeconds = oldSpec.terminationGracePeriodSeconds;
  }
  // Binding is the one write that assigns a node (once).
  if (opts.subresource === 'binding' && !strOf(oldSpec.nodeName)) munged.nodeName = oldSpec.nodeName;
  if (!jsonEqual(munged, oldSpec)) {
    errs.forbidden('spec', `pod updates may not change fields other than ${UPDATABLE_POD_SPEC_FIELDS.join(',')}\n${specDiff(oldSpec, munged).join('\n')}`);
  }
}

function validatePodStatusUpdate(errs: ErrorList, pod: Record<string, any>, old: Record<string, any>): void {
  const st = obj(pod.status);
  const oldSt = obj(old.status);
  // The apiserver backfills an empty qosClass from the old pod, so only a different value is an error.
  if (strOf(st.qosClass) && strOf(oldSt.qosClass) && st.qosClass !== oldSt.qosClass) errs.invalid('status.qosClass', st.qosClass, 'field is immutable');
  if (strOf(st.nominatedNodeName) && st.nominatedNodeName !== oldSt.nominatedNodeName) {
    errs.each('status.nominatedNodeName', st.nominatedNodeName, nameIsDNSSubdomain(st.nominatedNodeName, false));
  }
  arr(st.podIPs).forEach((p, i) => ipErrors(errs, `status.podIPs[${i}]`, p?.ip));
  arr(st.conditions).forEach((c, i) => {
    const t = strOf(c?.type);
    if (!['PodScheduled', 'Ready', 'Initialized'].includes(t)) errs.each(`status.conditions[${i}].Type`, t, labelKeyErrors(t));
  });
  // Containers that will not restart may not come back from terminated.
  const rp = old.spec?.restartPolicy;
  if (rp !== 'Always') {
    arr(oldSt.containerStatuses).forEach((os, i) => {
      const term = os?.state?.terminated;
      if (!term || (term.exitCode !== 0 && rp === 'OnFailure')) return;
      for (const ns of arr(st.containerStatuses)) {
        if (ns?.name === os.name && !ns?.state?.terminated) errs.forbidden(`status.containerStatuses[${i}].state`, 'may not be transitioned to non-terminated state');
      }
    });
  }
}

const SERVICE_TYPES = ['ClusterIP', 'ExternalName', 'LoadBalancer', 'NodePort'];

function isHeadless(spec: Record<string, any>): boolean {
  const ips = arr(spec.clusterIPs);
  return ips.length === 1 && ips[0] === 'None';
}

/** core.ServicePort{Protocol, Port} as Go's json.Marshal prints the internal struct. */
function servicePortKey(protocol: string, port: unknown): GoStruct {
  return new GoStruct(`{"Name":"","Protocol":${JSON.stringify(protocol)},"AppProtocol":null,"Port":${Number(port) || 0},"TargetPort":0,"NodePort":0}`);
}

function validateService(errs: ErrorList, svc: Record<string, any>): void {
  const spec = obj(svc.spec);
  const type = spec.type;
  const ports = arr(spec.ports);
  const headless = isHeadless(spec);
  if (ports.length === 0 && !headless && type !== 'ExternalName') errs.required('spec.ports');
  if ((type === 'LoadBalancer' || type === 'NodePort') && headless) {
    errs.invalid('spec.clusterIPs[0]', 'None', `may not be set to 'None' for ${type} services`);
  }
  if (type === 'ExternalName') {
    if (arr(spec.clusterIPs).length) errs.forbidden('spec.clusterIPs', 'may not be set for ExternalName services');
    if (arr(spec.ipFamilies).length) errs.forbidden('spec.ipFamilies', 'may not be set for ExternalName services');
    if (present(spec.ipFamilyPolicy)) errs.forbidden('spec.ipFamilyPolicy', 'may not be set for ExternalName services');
    const cname = strOf(spec.externalName).replace(/\.$/, '');
    if (cname) errs.each('spec.externalName', cname, dns1123SubdomainErrors(cname));
    else errs.required('spec.externalName');
  }
  const names = new Set<string>();
  ports.forEach((port, i) => {
    const p = `spec.ports[${i}]`;
    const sp = obj(port);
    const name = strOf(sp.name);
    if (ports.length > 1 && !name) errs.required(`${p}.name`);
    else if (name) {
      errs.each(`${p}.name`, name, dns1123LabelErrors(name));
      if (names.has(name)) errs.duplicate(`${p}.name`, name);
      else names.add(name);
    }
    errs.each(`${p}.port`, sp.port ?? 0, portNumErrors(sp.port));
    if (!strOf(sp.protocol)) errs.required(`${p}.protocol`);
    else if (!PROTOCOLS.includes(sp.protocol)) errs.notSupported(`${p}.protocol`, sp.protocol, PROTOCOLS);
    validatePortNumOrName(errs, sp.targetPort, `${p}.targetPort`);
    if (present(sp.appProtocol)) errs.each(`${p}.appProtocol`, sp.appProtocol, labelKeyErrors(strOf(sp.appProtocol)));
  });
  if (present(spec.selector)) validateLabels(errs, spec.selector, 'spec.selector');
  const sa = spec.sessionAffinity;
  if (!strOf(sa)) errs.required('spec.sessionAffinity');
  else if (sa !== 'ClientIP' && sa !== 'None') errs.notSupported('spec.sessionAffinity', sa, ['ClientIP', 'None']);
  if (sa === 'ClientIP') {
    const t = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds;
    if (!present(spec.sessionAffinityConfig)) errs.required('spec.sessionAffinityConfig', 'when session affinity type is ClientIP');
    else if (!present(spec.sessionAffinityConfig.clientIP)) errs.required('spec.sessionAffinityConfig.clientIP', 'when session affinity type is ClientIP');
    else if (!present(t)) errs.required('spec.sessionAffinityConfig.clientIP.timeoutSeconds', 'when session affinity type is ClientIP');
    else if (t <= 0 || t > 86400) errs.invalid('spec.sessionAffinityConfig.clientIP.timeoutSeconds', t, 'must be greater than 0 and less than 86400');
  } else if (sa === 'None' && present(spec.sessionAffinityConfig)) {
    errs.forbidden('spec.sessionAffinityConfig', 'must not be set when session affinity is None');
  }
  validateClusterIPFields(errs, spec);
  arr(spec.externalIPs).forEach((ip, i) => {
    if (ipErrors(errs, `spec.externalIPs[${i}]`, ip)) nonSpecialIPErrors(errs, `spec.externalIPs[${i}]`, ip);
  });
  if (!strOf(type)) errs.required('spec.type');
  else if (!SERVICE_TYPES.includes(type)) errs.notSupported('spec.type', type, SERVICE_TYPES);
  if (type === 'ClusterIP') {
    ports.forEach((sp, i) => {
      if (sp?.nodePort) errs.forbidden(`spec.ports[${i}].nodePort`, "may not be used when `type` is 'ClusterIP'");
    });
  }
  const nodePorts = new Set<string>();
  const seenPorts = new Set<string>();
  ports.forEach((sp, i) => {
    if (sp?.nodePort) {
      const key = `${sp.protocol}/${sp.nodePort}`;
      if (nodePorts.has(key)) errs.duplicate(`spec.ports[${i}].nodePort`, sp.nodePort);
      nodePorts.add(key);
    }
    const key = `${strOf(sp?.protocol)}/${sp?.port}`;
    if (seenPorts.has(key)) errs.duplicate(`spec.ports[${i}]`, servicePortKey(strOf(sp?.protocol), sp?.port));
    seenPorts.add(key);
  });
  if (arr(spec.loadBalancerSourceRanges).length) {
    if (type !== 'LoadBalancer') errs.forbidden('spec.LoadBalancerSourceRanges', "may only be used when `type` is 'LoadBalancer'");
    arr(spec.loadBalancerSourceRanges).forEach((r, i) => {
      if (!validCIDR(strOf(r).trim())) errs.invalid(`spec.LoadBalancerSourceRanges[${i}]`, strOf(r).trim(), 'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)');
    });
  }
  if (present(spec.allocateLoadBalancerNodePorts) && type !== 'LoadBalancer') {
    errs.forbidden('spec.allocateLoadBalancerNodePorts', "may only be used when `type` is 'LoadBalancer'");
  }
  // as upstream: this path lacks "spec.".
  if (type === 'LoadBalancer' && !present(spec.allocateLoadBalancerNodePorts)) errs.required('allocateLoadBalancerNodePorts');
  if (present(spec.loadBalancerClass) && type !== 'LoadBalancer') errs.forbidden('spec.loadBalancerClass', "may only be used when `type` is 'LoadBalancer'");
  const externallyAccessible = type === 'LoadBalancer' || type === 'NodePort' || (type === 'ClusterIP' && arr(spec.externalIPs).length > 0);
  if (!externallyAccessible) {
    if (strOf(spec.externalTrafficPolicy)) errs.invalid('spec.externalTrafficPolicy', spec.externalTrafficPolicy, 'may only be set for externally-accessible services');
  } else if (!strOf(spec.externalTrafficPolicy)) {
    errs.required('spec.externalTrafficPolicy');
  } else if (!['Cluster', 'Local'].includes(spec.externalTrafficPolicy)) {
    errs.notSupported('spec.externalTrafficPolicy', spec.externalTrafficPolicy, ['Cluster', 'Local']);
  }
  const needsHealthCheck = type === 'LoadBalancer' && spec.externalTrafficPolicy === 'Local';
  if (!needsHealthCheck && spec.healthCheckNodePort) {
    errs.invalid('spec.healthCheckNodePort', spec.healthCheckNodePort, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'");
  }
  if (!present(spec.internalTrafficPolicy)) {
    if (['NodePort', 'LoadBalancer', 'ClusterIP'].includes(type)) errs.required('spec.internalTrafficPolicy');
  } else if (!['Cluster', 'Local'].includes(spec.internalTrafficPolicy)) {
    errs.notSupported('spec.internalTrafficPolicy', spec.internalTrafficPolicy, ['Cluster', 'Local']);
  }
  if (present(spec.trafficDistribution) && spec.trafficDistribution !== 'PreferClose') {
    errs.notSupported('spec.trafficDistribution', spec.trafficDistribution, ['PreferClose']);
  }
}

function validateClusterIPFields(errs: ErrorList, spec: Record<string, any>): void {
  if (spec.type === 'ExternalName') return;
  const clusterIP = strOf(spec.clusterIP);
  const ips = arr(spec.clusterIPs);
  if (clusterIP) {
    if (ips.length === 0) errs.required('spec.clusterIPs');
    else if (ips[0] !== clusterIP) errs.invalid('spec.clusterIPs', ips, 'first value must match `clusterIP`');
  } else if (ips.length) {
    errs.invalid('spec.clusterIPs', ips, 'must be empty when `clusterIP` is not specified');
  }
  const families = arr(spec.ipFamilies);
  const seen = new Set<string>();
  families.forEach((f, i) => {
    if (f !== 'IPv4' && f !== 'IPv6') errs.notSupported(`spec.ipFamilies[${i}]`, f, ['IPv4', 'IPv6']);
    if (seen.has(f)) errs.duplicate(`spec.ipFamilies[${i}]`, f);
    seen.add(f);
  });
  const policies = ['PreferDualStack', 'RequireDualStack', 'SingleStack'];
  if (present(spec.ipFamilyPolicy) && !policies.includes(spec.ipFamilyPolicy)) errs.notSupported('spec.ipFamilyPolicy', spec.ipFamilyPolicy, policies);
  let badIPs = false;
  ips.forEach((ip, i) => {
    if (i === 0 && ip === 'None') {
      if (ips.length > 1) {
        badIPs = true;
        errs.invalid('spec.clusterIPs', ips, "'None' must be the first and only value");
      }
      return;
    }
    if (!ipErrors(errs, `spec.clusterIPs[${i}]`, ip)) badIPs = true;
  });
  if (ips.length > 2) errs.invalid('spec.clusterIPs', ips, 'may only hold up to 2 values');
  if (badIPs) return;
  if (ips.length > 1 && parseIPSloppy(ips[0]) === parseIPSloppy(ips[1])) {
    errs.invalid('spec.clusterIPs', ips, 'may specify no more than one IP for each IP family');
  }
  if (!isHeadless(spec)) {
    ips.forEach((ip, i) => {
      const fam = families[i];
      if (fam === 'IPv4' && parseIPSloppy(ip) === 6) errs.invalid(`spec.clusterIPs[${i}]`, ip, `expected an IPv4 value as indicated by \`ipFamilies[${i}]\``);
      if (fam === 'IPv6' && parseIPSloppy(ip) !== 6) errs.invalid(`spec.clusterIPs[${i}]`, ip, `expected an IPv6 value as indicated by \`ipFamilies[${i}]\``);
    });
  }
}

function validateServiceUpdate(errs: ErrorList, svc: Record<string, any>, old: Record<string, any>): void {
  const spec = obj(svc.spec);
  const oldSpec = obj(old.spec);
  if (spec.type === 'ExternalName' || oldSpec.type === 'ExternalName') return;
  if (isHeadless(spec) && isHeadless(oldSpec)) return;
  const ips = arr(spec.clusterIPs);
  const oldIPs = arr(oldSpec.clusterIPs);
  if (ips.length === oldIPs.length) {
    oldIPs.forEach((ip, i) => {
      if (ip !== ips[i]) errs.invalid(`spec.clusterIPs[${i}]`, ips, 'may not change once set');
    });
  } else if (oldIPs.length > ips.length) {
    if (ips.length === 0) errs.invalid('spec.clusterIPs[0]', ips, 'primary clusterIP can not be unset');
    if (ips.length > 0 && ips[0] !== oldIPs[0]) errs.invalid('spec.clusterIPs[0]', ips, 'may not change once set');
    if (ips.length === 1 && spec.ipFamilyPolicy !== 'SingleStack') {
      errs.invalid('spec.ipFamilyPolicy', spec.ipFamilyPolicy ?? null, "must be set to 'SingleStack' when releasing the secondary clusterIP");
    }
  } else if (oldIPs.length > 0 && ips[0] !== oldIPs[0]) {
    errs.invalid('spec.clusterIPs[0]', ips, 'may not change once set');
  }
  const fams = arr(spec.ipFamilies);
  const oldFams = arr(oldSpec.ipFamilies);
  if (fams.length === oldFams.length && oldFams.some((f, i) => f !== fams[i])) {
    errs.invalid('spec.ipFamilies[0]', fams, 'may not change once set');
  }
}

function validateReplicationController(errs: ErrorList, rc: Record<string, any>): void {
  const spec = obj(rc.spec);
  if (typeof spec.minReadySeconds === 'number' && spec.minReadySeconds < 0) errs.invalid('spec.minReadySeconds', spec.minReadySeconds, 'must be greater than or equal to 0');
  const selector = obj(spec.selector);
  if (Object.keys(selector).length === 0) errs.required('spec.selector');
  const replicas = spec.replicas ?? 0;
  if (typeof replicas !== 'number' || replicas < 0) errs.invalid('spec.replicas', replicas, 'must be greater than or equal to 0');
  if (!present(spec.template)) return errs.required('spec.template');
  const template = obj(spec.template);
  const labels = obj(template.metadata?.labels);
  // labels.Set(selector).AsSelector().Matches(template labels)
  if (Object.keys(selector).length && !Object.entries(selector).every(([k, v]) => Object.prototype.hasOwnProperty.call(labels, k) && labels[k] === v)) {
    errs.invalid('spec.template.metadata.labels', labels, '`selector` does not match template `labels`');
  }
  validatePodTemplateSpec(errs, template, 'spec.template');
  const rp = template.spec?.restartPolicy;
  if (rp !== 'Always') errs.notSupported('spec.template.spec.restartPolicy', rp ?? '', ['Always']);
  if (present(template.spec?.activeDeadlineSeconds)) {
    errs.forbidden('spec.template.spec.activeDeadlineSeconds', 'activeDeadlineSeconds in ReplicationController is not Supported');
  }
}

function validateReplicationControllerStatus(errs: ErrorList, status: unknown): void {
  const s = obj(status);
  const n = (f: string) => (typeof s[f] === 'number' ? s[f] : 0);
  for (const f of ['replicas', 'fullyLabeledReplicas', 'readyReplicas', 'availableReplicas', 'observedGeneration']) {
    if (n(f) < 0) errs.invalid(`status.${f}`, n(f), 'must be greater than or equal to 0');
  }
  for (const f of ['fullyLabeledReplicas', 'readyReplicas', 'availableReplicas']) {
    if (n(f) > n('replicas')) errs.invalid(`status.${f}`, n(f), 'cannot be greater than status.replicas');
  }
  if (n('availableReplicas') > n('readyReplicas')) errs.invalid('status.availableReplicas', n('availableReplicas'), 'cannot be greater than readyReplicas');
}

const MAX_SECRET_SIZE = 1024 * 1024;

function validateConfigMap(errs: ErrorList, cm: Record<string, any>): void {
  let total = 0;
  const binary = obj(cm.binaryData);
  for (const [k, v] of Object.entries(obj(cm.data))) {
    errs.each(`data[${k}]`, k, configMapKeyErrors(k));
    if (Object.prototype.hasOwnProperty.call(binary, k)) errs.invalid(`data[${k}]`, k, 'duplicate of key present in binaryData');
    total += Buffer.byteLength(strOf(v));
  }
  for (const [k, v] of Object.entries(binary)) {
    errs.each(`binaryData[${k}]`, k, configMapKeyErrors(k));
    total += decodeBase64('ConfigMap', strOf(v)).length;
  }
  // as upstream: the size error names the whole object (an empty field path).
  if (total > MAX_SECRET_SIZE) errs.tooLong('', MAX_SECRET_SIZE);
}

/** encoding/json's []byte decoding: standard base64, newlines ignored. Bad data is a 400. */
function decodeBase64(kind: string, s: string): Buffer {
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

function validateSecret(errs: ErrorList, secret: Record<string, any>): void {
  const data = new Map<string, Buffer>();
  let total = 0;
  for (const [k, v] of Object.entries(obj(secret.data))) {
    errs.each(`data[${k}]`, k, configMapKeyErrors(k));
    const bytes = decodeBase64('Secret', strOf(v));
    data.set(k, bytes);
    total += bytes.length;
  }
  if (total > MAX_SECRET_SIZE) errs.tooLong('data', MAX_SECRET_SIZE);
  const need = (key: string) => {
    if (!data.has(key)) errs.required(`data[${key}]`);
  };
  switch (secret.type) {
    case 'kubernetes.io/service-account-token':
      if (!strOf(secret.metadata?.annotations?.['kubernetes.io/service-account.name'])) errs.required('metadata.annotations[kubernetes.io/service-account.name]');
      break;
    case 'kubernetes.io/dockercfg':
    case 'kubernetes.io/dockerconfigjson': {
      const key = secret.type === 'kubernetes.io/dockercfg' ? '.dockercfg' : '.dockerconfigjson';
      if (!data.has(key)) {
        need(key);
        break;
      }
      try {
        const parsed = JSON.parse(data.get(key)!.toString('utf8'));
        if (!isObject(parsed)) throw new Error('json: cannot unmarshal into Go value of type map[string]interface {}');
      } catch (e) {
        errs.invalid(`data[${key}]`, '<secret contents redacted>', (e as Error).message);
      }
      break;
    }
    case 'kubernetes.io/basic-auth':
      if (!data.has('username') && !data.has('password')) {
        errs.required('data[username]');
        errs.required('data[password]');
      }
      break;
    case 'kubernetes.io/ssh-auth':
      if (!data.get('ssh-privatekey')?.length) errs.required('data[ssh-privatekey]');
      break;
    case 'kubernetes.io/tls':
      need('tls.crt');
      need('tls.key');
      break;
  }
}

function validateImmutableData(errs: ErrorList, o: Record<string, any>, old: Record<string, any>, fields: string[]): void {
  if (old.immutable !== true) return;
  if (o.immutable !== true) errs.forbidden('immutable', 'field is immutable when `immutable` is set');
  for (const f of fields) {
    if (!jsonEqual(o[f], old[f])) errs.forbidden(f, 'field is immutable when `immutable` is set');
  }
}

function validateEndpoints(errs: ErrorList, ep: Record<string, any>): void {
  arr(ep.subsets).forEach((ss, i) => {
    const p = `subsets[${i}]`;
    const s = obj(ss);
    if (arr(s.addresses).length === 0 && arr(s.notReadyAddresses).length === 0) errs.required(p, 'must specify `addresses` or `notReadyAddresses`');
    for (const list of ['addresses', 'notReadyAddresses']) {
      arr(s[list]).forEach((a, j) => {
        const ap = `${p}.${list}[${j}]`;
        const addr = obj(a);
        const valid = ipErrors(errs, `${ap}.ip`, addr.ip);
        if (strOf(addr.hostname)) errs.each(`${ap}.hostname`, addr.hostname, dns1123LabelErrors(addr.hostname));
        if (present(addr.nodeName)) errs.each(`${ap}.nodeName`, strOf(addr.nodeName), nameIsDNSSubdomain(strOf(addr.nodeName), false));
        if (valid) nonSpecialIPErrors(errs, `${ap}.ip`, addr.ip);
        else errs.invalid(`${ap}.ip`, addr.ip ?? '', 'must be a valid IP address');
      });
    }
    const ports = arr(s.ports);
    ports.forEach((pt, j) => {
      const pp = `${p}.ports[${j}]`;
      const port = obj(pt);
      if (ports.length > 1 && !strOf(port.name)) errs.required(`${pp}.name`);
      else if (strOf(port.name)) errs.each(`${pp}.name`, port.name, dns1123LabelErrors(port.name));
      errs.each(`${pp}.port`, port.port ?? 0, portNumErrors(port.port));
      if (!strOf(port.protocol)) errs.required(`${pp}.protocol`);
      else if (!PROTOCOLS.includes(port.protocol)) errs.notSupported(`${pp}.protocol`, port.protocol, PROTOCOLS);
      if (present(port.appProtocol)) errs.each(`${pp}.appProtocol`, port.appProtocol, labelKeyErrors(strOf(port.appProtocol)));
    });
  });
}

/** core/v1 Events get only the legacy checks (events.k8s.io is stricter). */
function validateEvent(errs: ErrorList, ev: Record<string, any>): void {
  const ns = strOf(ev.metadata?.namespace);
  const io = obj(ev.involvedObject);
  const ioNs = strOf(io.namespace);
  if (!present(ev.eventTime)) {
    if (!ioNs) {
      if (ns !== '' && ns !== 'default') errs.invalid('involvedObject.namespace', ioNs, 'does not match event.namespace');
    } else if (ns !== ioNs) {
      errs.invalid('involvedObject.namespace', ioNs, 'does not match event.namespace');
    }
  } else {
    if (!ioNs && ns !== 'default' && ns !== 'kube-system') errs.invalid('involvedObject.namespace', ioNs, 'does not match event.namespace');
    const rc = strOf(ev.reportingComponent);
    if (!rc) errs.required('reportingController');
    errs.each('reportingController', rc, labelKeyErrors(rc));
    const ri = strOf(ev.reportingInstance);
    if (!ri) errs.required('reportingInstance');
    if (ri.length > 128) errs.invalid('reportingInstance', '', 'can have at most 128 characters');
    if (!strOf(ev.action)) errs.required('action');
    if (strOf(ev.action).length > 128) errs.invalid('action', '', 'can have at most 128 characters');
    if (!strOf(ev.reason)) errs.required('reason');
    if (strOf(ev.reason).length > 128) errs.invalid('reason', '', 'can have at most 128 characters');
    if (strOf(ev.message).length > 1024) errs.invalid('message', '', 'can have at most 1024 characters');
  }
  errs.each('namespace', ns, dns1123SubdomainErrors(ns));
}

function validateNamespaceFinalizers(errs: ErrorList, finalizers: unknown, indexed: boolean): void {
  arr(finalizers).forEach((f, i) => {
    const field = indexed ? `spec.finalizers[${i}]` : 'spec.finalizers';
    const name = strOf(f);
    errs.each(field, name, labelKeyErrors(name));
    if (name.split('/').length === 1 && !STANDARD_FINALIZERS.has(name)) errs.invalid(field, name, 'name is neither a standard finalizer name nor is it fully qualified');
  });
}

function validateNode(errs: ErrorList, node: Record<string, any>): void {
  const spec = obj(node.spec);
  const seen = new Map<string, Set<string>>();
  arr(spec.taints).forEach((t, i) => {
    // as upstream: taints are reported under "metadata.taints".
    const p = `metadata.taints[${i}]`;
    const taint = obj(t);
    errs.each(`${p}.key`, strOf(taint.key), labelKeyErrors(strOf(taint.key)));
    const vmsgs = labelValueErrors(strOf(taint.value));
    if (vmsgs.length) errs.invalid(`${p}.value`, strOf(taint.value), vmsgs.join(';'));
    if (!strOf(taint.effect)) errs.required(`${p}.effect`);
    else if (!TAINT_EFFECTS.includes(taint.effect)) errs.notSupported(`${p}.effect`, taint.effect, TAINT_EFFECTS);
    const keys = seen.get(strOf(taint.effect)) ?? new Set<string>();
    if (keys.has(strOf(taint.key))) {
      const v = new GoStruct(`{"Key":${JSON.stringify(strOf(taint.key))},"Value":${JSON.stringify(strOf(taint.value))},"Effect":${JSON.stringify(strOf(taint.effect))},"TimeAdded":${JSON.stringify(taint.timeAdded ?? null)}}`);
      errs.duplicate(p, v, 'taints must be unique by key and effect pair');
      return;
    }
    keys.add(strOf(taint.key));
    seen.set(strOf(taint.effect), keys);
  });
  for (const list of ['capacity', 'allocatable']) {
    for (const [k, v] of Object.entries(obj(node.status?.[list]))) {
      const q = quantity(v);
      if (q.nanos < 0n) errs.invalid(`status.${list}.${k}`, formatQuantity(q), 'must be greater than or equal to 0');
    }
  }
  const cidrs = podCIDRsOf(spec);
  cidrs.forEach((c, i) => {
    if (!validCIDR(c)) errs.invalid(`spec.podCIDRs[${i}]`, c, 'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)');
  });
}

/**
 * The pod CIDRs a v1 NodeSpec stands for, as Kubernetes' v1->internal conversion reads them: podCIDRs,
 * or else the legacy single podCIDR (which is what older clients, and our hollow nodes, set alone).
 */
function podCIDRsOf(spec: Record<string, any> | undefined): unknown[] {
  const list = arr(spec?.podCIDRs);
  if (list.length) return list;
  return strOf(spec?.podCIDR) ? [spec!.podCIDR] : [];
}

function validateNodeUpdate(errs: ErrorList, node: Record<string, any>, old: Record<string, any>): void {
  const seen = new Set<string>();
  arr(node.status?.addresses).forEach((a, i) => {
    const key = `${strOf(a?.type)}/${strOf(a?.address)}`;
    if (seen.has(key)) errs.duplicate(`status.addresses[${i}]`, { address: strOf(a?.address), type: strOf(a?.type) });
    seen.add(key);
  });
  // Set once (by the node IPAM controller or the node itself), then fixed: routes and pod IPs hang on it.
  // Both fields count, so a client writing only the legacy podCIDR cannot move it either.
  const oldCIDRs = podCIDRsOf(old.spec);
  const cidrs = podCIDRsOf(node.spec);
  const legacy = strOf(node.spec?.podCIDR);
  // podCIDRs wins when both are given (as in conversion), but a legacy value that disagrees is a move.
  const legacyMoved = !!legacy && legacy !== cidrs[0];
  if (oldCIDRs.length && (legacyMoved || oldCIDRs.length !== cidrs.length || oldCIDRs.some((c, i) => c !== cidrs[i]))) {
    errs.forbidden('spec.podCIDRs', 'node updates may not change podCIDR except from "" to valid');
  }
  const oldProvider = strOf(old.spec?.providerID);
  if (oldProvider && oldProvider !== strOf(node.spec?.providerID)) {
    errs.forbidden('spec.providerID', 'node updates may not change providerID except from "" to valid');
  }
  if (strOf(node.spec?.externalID) !== strOf(old.spec?.externalID)) errs.forbidden('spec.externalID', 'may not be updated');
}

function validateLease(errs: ErrorList, lease: Record<string, any>): void {
  const spec = obj(lease.spec);
  if (present(spec.leaseDurationSeconds) && !(spec.leaseDurationSeconds > 0)) errs.invalid('spec.leaseDurationSeconds', spec.leaseDurationSeconds, 'must be greater than 0');
  if (present(spec.leaseTransitions) && !(spec.leaseTransitions >= 0)) errs.invalid('spec.leaseTransitions', spec.leaseTransitions, 'must be greater than or equal to 0');
  if (present(spec.strategy)) {
    if (spec.strategy !== 'OldestEmulationVersion') errs.notSupported('spec.strategy', spec.strategy, ['OldestEmulationVersion']);
  }
  if (strOf(spec.preferredHolder) && !strOf(spec.strategy)) errs.forbidden('spec.preferredHolder', 'may only be specified if `strategy` is defined');
}

// discovery.k8s.io/v1 EndpointSlice (pkg/apis/discovery/validation).
const ADDRESS_TYPES = ['FQDN', 'IPv4', 'IPv6'];
const MAX_SLICE_ENDPOINTS = 1000;
const MAX_SLICE_ADDRESSES = 100;
const MAX_SLICE_PORTS = 100;
const MAX_TOPOLOGY_LABELS = 16;

/** IsFullyQualifiedDomainName: a subdomain of at least two labels (a trailing dot allowed). */
function fqdnErrors(errs: ErrorList, field: string, name: string): void {
  const s = name.toLowerCase().replace(/\.$/, '');
  if (!s) return errs.required(field);
  if (s.split('.').length < 2) errs.invalid(field, name, 'should be a domain with at least two segments separated by dots');
  errs.each(field, name, dns1123SubdomainErrors(s));
}

function validateSliceAddress(errs: ErrorList, field: string, addressType: string, address: unknown): void {
  const a = strOf(address);
  // Unknown address types were refused above; their addresses are not checked further, as upstream.
  if (addressType === 'IPv4' || addressType === 'IPv6') {
    const want = addressType === 'IPv4' ? 4 : 6;
    if (parseIPSloppy(a) !== want) errs.invalid(field, a, `must be a valid ${addressType} address`);
    else nonSpecialIPErrors(errs, field, a);
  } else if (addressType === 'FQDN') {
    fqdnErrors(errs, field, a);
  }
}

function validateEndpointSlice(errs: ErrorList, slice: Record<string, any>): void {
  const addressType = strOf(slice.addressType);
  if (!addressType) errs.required('addressType');
  else if (!ADDRESS_TYPES.includes(addressType)) errs.notSupported('addressType', addressType, ADDRESS_TYPES);

  const endpoints = arr(slice.endpoints);
  if (endpoints.length > MAX_SLICE_ENDPOINTS) errs.tooMany('endpoints', endpoints.length, MAX_SLICE_ENDPOINTS);
  else {
    endpoints.forEach((e, i) => {
      const p = `endpoints[${i}]`;
      const ep = obj(e);
      const addrs = arr(ep.addresses);
      if (addrs.length === 0) errs.required(`${p}.addresses`, 'must contain at least 1 address');
      else if (addrs.length > MAX_SLICE_ADDRESSES) errs.tooMany(`${p}.addresses`, addrs.length, MAX_SLICE_ADDRESSES);
      addrs.forEach((a, j) => validateSliceAddress(errs, `${p}.addresses[${j}]`, addressType, a));
      if (present(ep.nodeName)) errs.each(`${p}.nodeName`, strOf(ep.nodeName), nameIsDNSSubdomain(strOf(ep.nodeName), false));
      const topology = obj(ep.deprecatedTopology);
      if (Object.keys(topology).length > MAX_TOPOLOGY_LABELS) errs.tooMany(`${p}.deprecatedTopology`, Object.keys(topology).length, MAX_TOPOLOGY_LABELS);
      validateLabels(errs, ep.deprecatedTopology, `${p}.deprecatedTopology`);
      if (present(ep.zone)) errs.each(`${p}.zone`, ep.zone, labelValueErrors(strOf(ep.zone)));
      if (present(ep.hostname)) errs.each(`${p}.hostname`, ep.hostname, dns1123LabelErrors(strOf(ep.hostname)));
    });
  }

  const ports = arr(slice.ports);
  if (ports.length > MAX_SLICE_PORTS) return errs.tooMany('ports', ports.length, MAX_SLICE_PORTS);
  const names = new Set<string>();
  ports.forEach((pt, i) => {
    const p = `ports[${i}]`;
    const port = obj(pt);
    const name = strOf(port.name);
    if (name) errs.each(`${p}.name`, name, dns1123LabelErrors(name));
    if (names.has(name)) errs.duplicate(`${p}.name`, name);
    names.add(name);
    // A port left out means "all ports"; a given one is a port number (0 as upstream's int32 allows).
    if (present(port.port) && !(typeof port.port === 'number' && Number.isInteger(port.port) && port.port >= 0 && port.port <= 65535)) {
      errs.invalid(`${p}.port`, port.port, inclusiveRangeError(0, 65535));
    }
    if (!strOf(port.protocol)) errs.required(`${p}.protocol`);
    else if (!PROTOCOLS.includes(port.protocol)) errs.notSupported(`${p}.protocol`, port.protocol, PROTOCOLS);
    if (present(port.appProtocol)) errs.each(`${p}.appProtocol`, port.appProtocol, labelKeyErrors(strOf(port.appProtocol)));
  });
}

const RULES: Record<string, KindRules> = {
  Namespace: {
    meta: core(nameIsDNSLabel, false),
    create: (errs, o) => validateNamespaceFinalizers(errs, o.spec?.finalizers, false),
    update: (errs, o, old, opts) => {
      if (opts.subresource === 'finalize') validateNamespaceFinalizers(errs, o.spec?.finalizers, true);
      if (opts.subresource === 'status' || !jsonEqual(o.status, old.status)) {
        const phase = strOf(o.status?.phase);
        if (!present(o.metadata?.deletionTimestamp)) {
          if (phase !== 'Active') errs.invalid('status.Phase', phase, "may only be 'Active' if `deletionTimestamp` is empty");
        } else if (phase !== 'Terminating') {
          errs.invalid('status.Phase', phase, "may only be 'Terminating' if `deletionTimestamp` is not empty");
        }
      }
    },
  },
  Pod: {
    meta: core(nameIsDNSSubdomain),
    validate: (errs, o) => validatePodSpec(errs, obj(o.spec), 'spec', { isPod: true }),
    create: (errs, o) => {
      if (arr(o.spec?.ephemeralContainers).length) errs.forbidden('spec.ephemeralContainers', 'cannot be set on create');
      if (strOf(o.spec?.nodeName) && arr(o.spec?.schedulingGates).length) errs.forbidden('spec.nodeName', 'cannot be set until all schedulingGates have been cleared');
    },
    update: (errs, o, old, opts) => {
      validatePodUpdate(errs, o, old, opts);
      if (opts.subresource === 'status' || !jsonEqual(o.status, old.status)) validatePodStatusUpdate(errs, o, old);
    },
  },
  Service: { meta: core(nameIsDNS1035Label), validate: validateService, update: validateServiceUpdate },
  Endpoints: { meta: core(nameIsDNSSubdomain), validate: validateEndpoints },
  ReplicationController: {
    meta: core(nameIsDNSSubdomain),
    validate: validateReplicationController,
    update: (errs, o, old, opts) => {
      if (opts.subresource === 'status' || !jsonEqual(o.status, old.status)) validateReplicationControllerStatus(errs, o.status);
    },
  },
  Node: { meta: core(nameIsDNSSubdomain, false), validate: validateNode, update: validateNodeUpdate },
  Event: {
    // Events are checked by the generic store only: names are path segments, finalizers qualified names.
    meta: { nameFn: pathSegmentName, namespaced: true, kubeFinalizers: false },
    validate: validateEvent,
  },
  ConfigMap: {
    meta: core(nameIsDNSSubdomain),
    validate: validateConfigMap,
    update: (errs, o, old) => validateImmutableData(errs, o, old, ['data', 'binaryData']),
  },
  Secret: {
    meta: core(nameIsDNSSubdomain),
    validate: validateSecret,
    update: (errs, o, old) => {
      if (strOf(o.type) !== strOf(old.type)) errs.invalid('type', strOf(o.type), 'field is immutable');
      validateImmutableData(errs, o, old, ['data']);
    },
  },
  ServiceAccount: { meta: core(nameIsDNSSubdomain) },
  Lease: { meta: { nameFn: nameIsDNSSubdomain, namespaced: true, kubeFinalizers: false }, validate: validateLease },
  EndpointSlice: {
    meta: core(nameIsDNSSubdomain),
    validate: validateEndpointSlice,
    update: (errs, o, old) => {
      if (strOf(o.addressType) !== strOf(old.addressType)) errs.invalid('addressType', strOf(o.addressType), 'field is immutable');
    },
  },
};

/** Kinds without rules get the generic store's checks only. */
const GENERIC: KindRules = { meta: { nameFn: pathSegmentName, namespaced: true, kubeFinalizers: false } };

/**
 * Validates an object about to be stored: on create (no `old`) or on update (`old` is the stored
 * object). Throws errors.invalid (422) listing every problem found, or a 400 when a value cannot even be
 * decoded (a quantity or base64 that does not parse), as the apiserver's decoder would.
 */
export function validateObject(res: ResourceInfo, obj: KubeObject, old?: KubeObject, opts: ValidateOptions = {}): void {
  const rules = RULES[res.kind] ?? { ...GENERIC, meta: { ...GENERIC.meta, namespaced: res.namespaced } };
  const errs = new ErrorList();
  try {
    // What the Go type could not even hold (a string in an int32, replicas 1e308) is a decoding error,
    // checked on every write: the scale subresource and controllers' own writes never pass the decoder.
    if (nestedDeeperThan(obj)) throw new DecodeError(tooDeepMessage);
    const undecodable = typeErrors(res, obj);
    if (undecodable.length) throw new DecodeError(undecodable[0]);
    validateObjectMeta(errs, obj.metadata, rules.meta);
    if (old) validateObjectMetaUpdate(errs, obj.metadata, old.metadata);
    rules.validate?.(errs, obj);
    if (old) rules.update?.(errs, obj, old, opts);
    else rules.create?.(errs, obj);
  } catch (e) {
    if (e instanceof DecodeError) {
      const kind = (e.cause as string | undefined) ?? res.kind;
      throw errors.badRequest(`${kind} in version "${res.version}" cannot be handled as a ${kind}: ${e.message}`);
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
