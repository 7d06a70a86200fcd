// Decodes Kubernetes protobuf request bodies (application/vnd.kubernetes.protobuf) into the JSON
// object the client would have sent as application/json. kubectl's typed commands (create namespace,
// configmap, secret, serviceaccount, service; debug; drain's DeleteOptions) send protobuf.
//
// Wire format: the magic "k8s\0", then a runtime.Unknown {typeMeta {apiVersion, kind}, raw,
// contentEncoding, contentType} whose raw bytes are the object's own message. protobufjs does the
// wire decoding from a reflection schema built from our table in protobuf-schema.ts; this file turns
// the decoded message into JSON the way Go's encoding/json would (omitempty, pointers, inline
// structs, Time/Quantity/IntOrString/bytes encodings).

import protobuf from 'protobufjs/light.js';
import { ApiError, errors } from './status.ts';
import { kinds, messages, type FieldSpec } from './protobuf-schema.ts';

export const PROTOBUF_CONTENT_TYPE = 'application/vnd.kubernetes.protobuf';

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]); // "k8s\0"
const SCALARS: Readonly<Record<string, string>> = { s: 'string', b: 'bool', i: 'int32', l: 'int64', y: 'bytes' };
// Go's zero time.Time as Unix seconds (0001-01-01T00:00:00Z); JSON encodes it as null.
const GO_ZERO_TIME = -62135596800;

type Msg = Record<string, unknown>;

let root: protobuf.Root | undefined;

/** The protobufjs reflection types, built once from our compact table (tests encode with them too). */
export function protobufTypes(): protobuf.Root {
  if (root) return root;
  const r = new protobuf.Root();
  for (const [name, fields] of Object.entries(messages)) {
    const t = new protobuf.Type(name);
    for (const [field, [num, type]] of Object.entries(fields)) {
      const kind = type[0];
      const base = kind === '[' || kind === '{' ? type.slice(1) : type;
      const pbType = SCALARS[base] ?? base;
      t.add(
        kind === '{'
          ? new protobuf.MapField(field, num, 'string', pbType)
          : new protobuf.Field(field, num, pbType, kind === '[' ? 'repeated' : 'optional'),
      );
    }
    r.add(t);
  }
  r.resolveAll();
  root = r;
  return r;
}

function has(m: unknown, field: string): boolean {
  return typeof m === 'object' && m !== null && Object.prototype.hasOwnProperty.call(m, field);
}

/** int64 values come back as Long objects (or numbers when Long is unavailable). */
function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'object' && v !== null && typeof (v as { toNumber?: unknown }).toNumber === 'function') {
    return (v as { toNumber(): number }).toNumber();
  }
  return Number(v ?? 0);
}

function setKey(o: Msg, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

/** metav1.Time: RFC 3339 in UTC with second precision (Go's Time drops the nanoseconds). */
function formatTime(m: Msg): string | undefined {
  // gogo writes a zero Time as an empty message; an explicit epoch has its fields on the wire.
  if (!has(m, 'seconds') && !has(m, 'nanos')) return undefined;
  const seconds = toNumber(m.seconds);
  if (seconds === GO_ZERO_TIME) return undefined;
  const d = new Date(seconds * 1000);
  const year = d.getUTCFullYear();
  if (!Number.isFinite(d.getTime()) || year < 0 || year > 9999) {
    throw errors.badRequest(`Time.MarshalJSON: year outside of range [0,9999] (seconds ${seconds})`);
  }
  return `${d.toISOString().slice(0, 19)}Z`;
}

/**
 * One value of a field: a scalar, a special message or a nested message.
 * `keep` is set for pointers, fields without omitempty, and list/map elements (Go always encodes those).
 */
function convertValue(type: string, v: unknown, keep: boolean, pointer: boolean): unknown {
  switch (type) {
    case 's':
      return v !== '' || keep ? v : undefined;
    case 'b':
      return v === true || keep ? v === true : undefined;
    case 'i': {
      const n = toNumber(v);
      return n !== 0 || keep ? n : undefined;
    }
    case 'l': {
      const n = toNumber(v);
      return n !== 0 || keep ? n : undefined;
    }
    case 'y': {
      const b = v as Uint8Array;
      return b.length > 0 || keep ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64') : undefined;
    }
  }
  const m = v as Msg;
  switch (type) {
    case 'Time':
      return formatTime(m);
    case 'Quantity': {
      // Go encodes a zero Quantity as "0" (it is a struct, so omitempty never drops it).
      const s = has(m, 'string') ? String(m.string) : '';
      return s === '' ? '0' : s;
    }
    case 'IntOrString': {
      const isString = toNumber(m.type) === 1;
      const val = isString ? String(m.strVal ?? '') : toNumber(m.intVal);
      // A zero IntOrString under omitempty is "not set" (the server defaults it, e.g. targetPort).
      return val !== 0 && val !== '' ? val : keep ? val : undefined;
    }
    case 'FieldsV1': {
      const raw = has(m, 'Raw') ? (m.Raw as Uint8Array) : undefined;
      if (!raw || raw.length === 0) return undefined;
      try {
        return JSON.parse(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8'));
      } catch {
        throw errors.badRequest('managedFields: fieldsV1 is not valid JSON');
      }
    }
  }
  const out = convertMessage(type, m);
  // Go encodes a set pointer even when it points at an empty struct (emptyDir: {}); a non-pointer
  // empty struct is what the client left unset, so it is dropped.
  return pointer || Object.keys(out).length > 0 ? out : undefined;
}

function convertField(spec: FieldSpec, v: unknown): unknown {
  const [, type, flags = ''] = spec;
  if (type[0] === '[') {
    const base = type.slice(1);
    const list = (v as unknown[]).map((e) => convertValue(base, e, true, true) ?? null);
    return list.length > 0 ? list : undefined;
  }
  if (type[0] === '{') {
    const base = type.slice(1);
    const entries = Object.entries(v as Msg);
    if (entries.length === 0) return undefined;
    const out: Msg = {};
    for (const [k, e] of entries) setKey(out, k, convertValue(base, e, true, true) ?? null);
    return out;
  }
  const pointer = flags.includes('p');
  return convertValue(type, v, pointer || flags.includes('r'), pointer);
}

function convertMessage(name: string, m: Msg): Msg {
  const spec = messages[name];
  if (!spec) throw errors.internal(`protobuf schema has no message ${name}`);
  const out: Msg = {};
  for (const [field, fs] of Object.entries(spec)) {
    if (!has(m, field)) continue; // not on the wire
    const v = convertField(fs, m[field]);
    if (v === undefined) continue;
    if (fs[2]?.includes('i')) Object.assign(out, v);
    else setKey(out, field, v);
  }
  return out;
}

function decodeWith(type: string, bytes: Uint8Array, what: string): Msg {
  try {
    return protobufTypes().lookupType(type).decode(bytes) as unknown as Msg;
  } catch (e) {
    throw errors.badRequest(`unable to decode protobuf ${what}: ${(e as Error).message}`);
  }
}

/**
 * Decodes a Kubernetes protobuf request body into the JSON object (apiVersion, kind, metadata, …) the
 * client would have sent as JSON. Malformed bodies raise BadRequest; kinds Skiff does not decode
 * from protobuf raise UnsupportedMediaType, so the client can fall back to JSON.
 */
export function decodeProtobufObject(body: Buffer): Record<string, unknown> {
  if (body.length < MAGIC.length || !body.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw errors.badRequest('provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]');
  }
  const unknown = decodeWith('Unknown', body.subarray(MAGIC.length), 'envelope (runtime.Unknown)');
  const typeMeta = (unknown.typeMeta ?? {}) as Msg;
  const apiVersion = String(typeMeta.apiVersion ?? '');
  const kind = String(typeMeta.kind ?? '');
  if (!kind) throw errors.badRequest("Object 'Kind' is missing in the protobuf body");
  const encoding = String(unknown.contentEncoding ?? '');
  const contentType = String(unknown.contentType ?? '');
  if (encoding || (contentType && contentType !== PROTOBUF_CONTENT_TYPE)) {
    throw new ApiError(
      'UnsupportedMediaType',
      `protobuf body with contentEncoding ${JSON.stringify(encoding)} and contentType ${JSON.stringify(contentType)} is not supported`,
    );
  }
  const k = Object.prototype.hasOwnProperty.call(kinds, kind) ? kinds[kind] : undefined;
  if (!k || (apiVersion && k.apiVersions !== '*' && !k.apiVersions.includes(apiVersion))) {
    const gvk = apiVersion ? `${apiVersion}, Kind=${kind}` : `Kind=${kind}`;
    throw new ApiError(
      'UnsupportedMediaType',
      `protobuf request bodies are not supported for ${gvk}; send it as application/json`,
    );
  }
  const raw = has(unknown, 'raw') ? (unknown.raw as Uint8Array) : new Uint8Array(0);
  const message = k.byVersion?.[apiVersion] ?? k.message;
  const obj = decodeWith(message, raw, kind);
  let json: Msg;
  try {
    json = convertMessage(message, obj);
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw errors.badRequest(`unable to decode protobuf ${kind}: ${(e as Error).message}`);
  }
  return { ...(apiVersion ? { apiVersion } : {}), kind, ...json };
}
