// PATCH bodies, applied the way kube-apiserver applies them (k8s.io/apiserver endpoints/handlers/patch.go):
//
//   application/json-patch+json            RFC 6902 operations (fast-json-patch). A body that is not a
//                                          list of operations is 400; an operation that does not apply
//                                          (failed test, missing path) is 422, as Kubernetes answers.
//   application/merge-patch+json           RFC 7386: objects merge, null deletes, everything else replaces.
//   application/strategic-merge-patch+json Kubernetes' strategic merge patch (apimachinery strategicpatch):
//                                          lists merge by the merge key schema.ts reads from the served
//                                          OpenAPI, with the $patch, $retainKeys, $setElementOrder/<list>
//                                          and $deleteFromPrimitiveList/<list> directives.
//   application/apply-patch+yaml           server-side apply, simplified: the YAML apply configuration is
//                                          merged into the live object as a strategic merge patch; managed
//                                          fields are not tracked (fields dropped from a configuration are
//                                          not removed).
//
// applyPatch never mutates its inputs and never throws anything but ApiError.
import jsonpatch from 'fast-json-patch';
import { parse as parseYaml } from 'yaml';
import { nestedDeeperThan, tooDeepMessage, yamlMayNestDeeperThan } from './nesting.ts';
import { ApiError, errors } from './status.ts';
import type { ResourceInfo } from './resources.ts';
import { isObject, type KubeObject } from './types.ts';
import { elementSchema, field, kindSchema, type OpenAPISchema } from './schema.ts';

export const PATCH_CONTENT_TYPES = [
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
  'application/apply-patch+yaml',
] as const;

export type PatchType = (typeof PATCH_CONTENT_TYPES)[number];

/** kube-apiserver's cap on the operations of one JSON patch. */
const MAX_JSON_PATCH_OPERATIONS = 10000;

type Obj = Record<string, unknown>;

export function applyPatch(contentType: string, res: ResourceInfo, original: KubeObject, patchBody: string): KubeObject {
  // "application/merge-patch+json; charset=utf-8" is the same patch type (Kubernetes drops parameters).
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  let result: unknown;
  switch (type) {
    case 'application/json-patch+json':
      result = jsonPatch(original, patchBody);
      break;
    case 'application/merge-patch+json':
      result = mergePatch(structuredClone(original), decodeMergePatch(patchBody));
      break;
    case 'application/strategic-merge-patch+json':
      result = strategicMergePatch(res, original, decodePatchMap(parseJson(patchBody, '')));
      break;
    case 'application/apply-patch+yaml':
      result = strategicMergePatch(res, original, decodeApplyConfiguration(patchBody));
      break;
    default:
      throw errors.unsupportedMediaType(contentType);
  }
  if (!isObject(result)) {
    // Kubernetes fails decoding the patched document into the kind's type: 422 on field "patch".
    throw errors.invalid('', '', '', [
      { reason: 'FieldValueInvalid', field: 'patch', message: `Invalid value: ${JSON.stringify(JSON.stringify(result))}: the patched document is not a JSON object` },
    ]);
  }
  return result as KubeObject;
}

// ---------------------------------------------------------------------------------------------------
// JSON patch (RFC 6902)

function jsonPatch(original: KubeObject, body: string): unknown {
  const ops = parseJson(body, '');
  if (ops === null) return structuredClone(original); // Go decodes null into an empty patch
  if (!Array.isArray(ops)) throw errors.badRequest(`json: cannot unmarshal ${goKind(ops)} into Go value of type jsonpatch.Patch`);
  for (const op of ops) {
    if (!isObject(op)) throw errors.badRequest(`json: cannot unmarshal ${goKind(op)} into Go value of type jsonpatch.Operation`);
  }
  if (ops.length > MAX_JSON_PATCH_OPERATIONS) {
    throw new ApiError(
      'RequestEntityTooLarge',
      `Request entity too large: The allowed maximum operations in a JSON patch is ${MAX_JSON_PATCH_OPERATIONS}, got ${ops.length}`,
    );
  }
  try {
    // validate=true checks each operation's shape; mutateDocument=false works on a deep copy.
    return jsonpatch.applyPatch(original, ops as jsonpatch.Operation[], true, false).newDocument;
  } catch (e) {
    // Kubernetes: errors.NewGenericServerResponse(422, ...) — the operation's own error is not returned.
    if (e instanceof Error) return invalidPatch();
    throw e;
  }
}

function invalidPatch(): never {
  throw new ApiError('Invalid', 'the server rejected our request due to an error in our request', {});
}

// ---------------------------------------------------------------------------------------------------
// JSON merge patch (RFC 7386)

function decodeMergePatch(body: string): unknown {
  const patch = parseJson(body, 'error decoding patch: ');
  // evanphx/json-patch MergePatch: a null patch is ErrBadJSONPatch.
  if (patch === null) throw errors.badRequest('Invalid JSON Patch');
  return patch;
}

function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: Obj = isObject(target) ? target : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else put(out, k, mergePatch(has(out, k) ? out[k] : undefined, v));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Strategic merge patch. Mirrors k8s.io/apimachinery/pkg/util/strategicpatch mergeMap/mergeSlice with
// MergeParallelList and IgnoreUnmatchedNulls set, as StrategicMergeMapPatch uses them on the server.

const DIRECTIVE = '$patch';
const RETAIN_KEYS = '$retainKeys';
const DELETE_FROM_PRIMITIVE_LIST = '$deleteFromPrimitiveList';
const SET_ELEMENT_ORDER = '$setElementOrder';

/** An SMP failure; `code` 400 or 422 as interpretStrategicMergePatchError maps them. */
class SmpError extends Error {
  constructor(
    message: string,
    readonly code: 400 | 422 = 400,
  ) {
    super(message);
  }
}

// mergepatch's sentinel errors.
const ErrBadPatchFormatForPrimitiveList = () => new SmpError('invalid patch format of primitive list');
const ErrBadPatchFormatForRetainKeys = () => new SmpError('invalid patch format of retainKeys');
const ErrBadPatchFormatForSetElementOrderList = () => new SmpError('invalid patch format of setElementOrder list');
const ErrNoListOfLists = () => new SmpError('lists of lists are not supported', 422);
const ErrNoMergeKey = (m: unknown, k: string) => new SmpError(`map: ${goFmt(m)} does not contain declared merge key: ${k}`);
const ErrBadPatchType = (t: unknown, m: unknown) => new SmpError(`unknown patch type: ${goFmt(t)} in map: ${goFmt(m)}`);

function strategicMergePatch(res: ResourceInfo, original: KubeObject, patch: Obj): unknown {
  return strategicMerge(original, patch, kindSchema(res));
}

/**
 * Strategic merge of a decoded patch into a copy of `original`, with the patch rules `schema` declares
 * (a kind's schema from schema.ts; undefined merges maps and replaces lists). Neither input is changed.
 */
export function strategicMerge(original: Obj, patch: Obj, schema: OpenAPISchema | undefined): Obj {
  try {
    return mergeMap(structuredClone(original), structuredClone(patch), schema);
  } catch (e) {
    if (!(e instanceof SmpError)) throw e;
    if (e.code === 422) invalidPatch();
    throw errors.badRequest(e.message);
  }
}

/** The decoded SMP body: Kubernetes unmarshals it into map[string]interface{}. */
function decodePatchMap(v: unknown): Obj {
  if (v === null) return {};
  if (!isObject(v)) throw errors.badRequest(`json: cannot unmarshal ${goKind(v)} into Go value of type map[string]interface {}`);
  return v;
}

function decodeApplyConfiguration(body: string): Obj {
  if (yamlMayNestDeeperThan(body)) throw errors.badRequest(`error decoding YAML: ${tooDeepMessage}`);
  let v: unknown;
  try {
    v = parseYaml(body, { uniqueKeys: true });
  } catch (e) {
    throw errors.badRequest(`error decoding YAML: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
  }
  if (v === null || v === undefined) return {};
  if (nestedDeeperThan(v)) throw errors.badRequest(`error decoding YAML: ${tooDeepMessage}`);
  if (!isObject(v)) throw errors.badRequest(`error decoding YAML: cannot unmarshal ${goKind(v)} into an object`);
  return v;
}

const has = (o: Obj, k: string): boolean => Object.hasOwn(o, k);

/** Sets a key of a decoded JSON object; "__proto__" stays an ordinary key. */
function put(o: Obj, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

type ValueKind = 'map' | 'list' | 'scalar';
const kindOf = (v: unknown): ValueKind => (Array.isArray(v) ? 'list' : isObject(v) ? 'map' : 'scalar');

/** A patch value for a field the original lacks: directives resolved against nothing, nulls dropped. */
function fresh(v: unknown, fieldSchema: OpenAPISchema | undefined, mergeKey: string | undefined, merging: boolean): unknown {
  if (isObject(v)) return mergeMap({}, v, fieldSchema);
  if (Array.isArray(v)) {
    if (merging) return mergeList([], v, elementSchema(fieldSchema), mergeKey ?? '', false);
    const el = elementSchema(fieldSchema);
    return v.map((x) => (isObject(x) ? mergeMap({}, x, el) : x));
  }
  return v;
}

function mergeMap(original: Obj, patch: Obj, schema: OpenAPISchema | undefined): Obj {
  if (has(patch, DIRECTIVE)) {
    const directive = patch[DIRECTIVE];
    if (directive === 'replace') {
      const { [DIRECTIVE]: _, ...rest } = patch;
      return mergeMap({}, rest, schema);
    }
    if (directive === 'delete') return {};
    throw ErrBadPatchType(directive, patch);
  }

  applyRetainKeys(original, patch);
  applySetElementOrder(original, patch, schema);

  for (const [key, patchV] of Object.entries(patch)) {
    let k = key;
    let isDeleteList = false;
    if (key.startsWith(DELETE_FROM_PRIMITIVE_LIST)) {
      k = directiveTarget(key, DELETE_FROM_PRIMITIVE_LIST, ErrBadPatchFormatForPrimitiveList);
      isDeleteList = true;
      if (!Array.isArray(patchV)) throw ErrBadPatchFormatForPrimitiveList();
    }

    if (patchV === null) {
      delete original[k];
      continue;
    }

    const info = field(schema, k);
    const merging = info.patch.strategy === 'merge';
    if (!has(original, k) || kindOf(original[k]) !== kindOf(patchV)) {
      if (!isDeleteList) put(original, k, fresh(patchV, info.schema, info.patch.mergeKey, merging));
      continue;
    }

    switch (kindOf(patchV)) {
      case 'map':
        put(
          original,
          k,
          info.patch.strategy === 'replace'
            ? fresh(patchV, info.schema, undefined, false)
            : mergeMap(original[k] as Obj, patchV as Obj, info.schema),
        );
        break;
      case 'list':
        if (merging) {
          put(original, k, mergeList(original[k] as unknown[], patchV as unknown[], elementSchema(info.schema), info.patch.mergeKey ?? '', isDeleteList));
        } else if (isDeleteList) {
          // Only merge-strategy lists get $deleteFromPrimitiveList from kubectl; drop the values anyway.
          put(original, k, deleteScalars(original[k] as unknown[], patchV as unknown[]));
        } else {
          put(original, k, fresh(patchV, info.schema, undefined, false));
        }
        break;
      default:
        put(original, k, patchV);
    }
  }
  return original;
}

/** `$retainKeys: [a, b]`: keys of the original not listed are cleared; the patch may only set listed keys. */
function applyRetainKeys(original: Obj, patch: Obj): void {
  if (!has(patch, RETAIN_KEYS)) return;
  const list = patch[RETAIN_KEYS];
  delete patch[RETAIN_KEYS];
  if (!Array.isArray(list)) throw ErrBadPatchFormatForRetainKeys();
  const keep = new Set(list);
  for (const [k, v] of Object.entries(patch)) {
    if (v === null || k.startsWith(DELETE_FROM_PRIMITIVE_LIST) || k.startsWith(SET_ELEMENT_ORDER)) continue;
    if (!keep.has(k)) throw ErrBadPatchFormatForRetainKeys();
  }
  for (const k of Object.keys(original)) if (!keep.has(k)) delete original[k];
}

/**
 * `$setElementOrder/<list>`: the list is merged with its patch (if any), then ordered as the directive
 * says; items only the server has keep their place relative to the live list.
 */
function applySetElementOrder(original: Obj, patch: Obj, schema: OpenAPISchema | undefined): void {
  for (const [key, order] of Object.entries(patch)) {
    if (!key.startsWith(SET_ELEMENT_ORDER)) continue;
    delete patch[key];
    if (!Array.isArray(order)) throw ErrBadPatchFormatForSetElementOrderList();
    const k = directiveTarget(key, SET_ELEMENT_ORDER, ErrBadPatchFormatForSetElementOrderList);
    const foundOriginal = has(original, k) && original[k] !== null;
    const foundPatch = has(patch, k) && patch[k] !== null;
    const originalList = foundOriginal ? original[k] : undefined;
    const patchList = foundPatch ? patch[k] : undefined;
    if (foundOriginal && !Array.isArray(originalList)) throw ErrBadPatchFormatForSetElementOrderList();
    if (foundPatch && !Array.isArray(patchList)) throw ErrBadPatchFormatForSetElementOrderList();
    if (!foundOriginal && !foundPatch) continue;

    const info = field(schema, k);
    const mergeKey = info.patch.mergeKey ?? '';
    if (patchList) validateOrder(patchList as unknown[], order, mergeKey);

    let merged: unknown[];
    if (!foundPatch) merged = originalList as unknown[];
    else if (info.patch.strategy === 'merge')
      merged = mergeList(foundOriginal ? (originalList as unknown[]) : [], patchList as unknown[], elementSchema(info.schema), mergeKey, false);
    else merged = fresh(patchList, info.schema, undefined, false) as unknown[];
    delete patch[k];

    if (merged.length === 0) {
      put(original, k, merged);
      continue;
    }
    const isMap = isObject(merged[0]);
    const key_ = isMap ? mergeKey : '';
    const inOrder = (v: unknown) => indexIn(order, v, key_) >= 0;
    const patchItems = merged.filter(inOrder);
    const serverOnly = merged.filter((v) => !inOrder(v));
    put(original, k, normalizeElementOrder(patchItems, serverOnly, order, (originalList as unknown[]) ?? [], key_));
  }
}

/** The items of the patch list must appear in the $setElementOrder list, in the same relative order. */
function validateOrder(patchList: unknown[], order: unknown[], mergeKey: string): void {
  if (order.length === 0 || patchList.length === 0) return;
  const items = mergeKey ? patchList.filter((v) => !(isObject(v) && v[DIRECTIVE] === 'delete')) : patchList;
  const sameKey = (a: unknown, b: unknown): boolean => {
    if (!mergeKey) return a === b;
    if (!isObject(a) || !isObject(b)) throw ErrBadPatchFormatForSetElementOrderList();
    if (!has(a, mergeKey)) throw ErrNoMergeKey(a, mergeKey);
    if (!has(b, mergeKey)) throw ErrNoMergeKey(b, mergeKey);
    return a[mergeKey] === b[mergeKey];
  };
  let p = 0;
  let o = 0;
  while (p < items.length && o < order.length) {
    const item = items[p];
    if (isObject(item) && has(item, DIRECTIVE)) {
      p++;
      continue;
    }
    if (sameKey(item, order[o])) p++;
    o++;
  }
  if (p < items.length) {
    throw new SmpError(
      `The order in patch list:\n${goFmt(patchList)}\n doesn't match ${SET_ELEMENT_ORDER} list:\n${goFmt(order)}\n`,
    );
  }
}

function directiveTarget(key: string, prefix: string, err: () => SmpError): string {
  const slash = key.indexOf('/');
  if (slash < 0 || key.slice(0, slash) !== prefix) throw err();
  return key.slice(slash + 1);
}

/** Merges a patch list into a list whose field has patchStrategy "merge". */
function mergeList(original: unknown[], patch: unknown[], elemSchema: OpenAPISchema | undefined, mergeKey: string, isDeleteList: boolean): unknown[] {
  if (original.length === 0 && patch.length === 0) return original;
  const elementKind = listElementKind(original, patch);

  if (elementKind !== 'map') {
    if (isDeleteList) return deleteScalars(original, patch);
    const merged = dedupe([...original, ...patch]);
    const inPatch = (v: unknown) => patch.includes(v);
    return normalizeElementOrder(merged.filter(inPatch), merged.filter((v) => !inPatch(v)), patch, original, '');
  }

  if (!mergeKey) throw new SmpError('cannot merge lists without merge key');

  // Special elements first: {$patch: delete, <key>: v} removes, {$patch: replace} replaces the list.
  let serverList = original;
  let patchList: unknown[] = [];
  let replace = false;
  for (const v of patch) {
    const item = v as Obj;
    if (!has(item, DIRECTIVE)) {
      patchList.push(item);
      continue;
    }
    const directive = item[DIRECTIVE];
    if (directive === 'delete') {
      if (!has(item, mergeKey)) throw ErrNoMergeKey(item, mergeKey);
      serverList = serverList.filter((o) => !(isObject(o) && has(o, mergeKey) && o[mergeKey] === item[mergeKey]));
    } else if (directive === 'replace') {
      replace = true;
    } else if (directive === 'merge') {
      throw new SmpError('merging lists cannot yet be specified in the patch');
    } else {
      throw ErrBadPatchType(directive, item);
    }
  }
  if (replace) {
    serverList = patchList.map((v) => mergeMap({}, v as Obj, elemSchema));
    patchList = [];
  }

  const merged = [...serverList];
  for (const v of patchList) {
    const item = v as Obj;
    if (!has(item, mergeKey)) throw ErrNoMergeKey(item, mergeKey);
    const at = merged.findIndex((o) => {
      if (!isObject(o)) throw new SmpError('value for key is not a map.');
      return has(o, mergeKey) && o[mergeKey] === item[mergeKey];
    });
    if (at >= 0) merged[at] = mergeMap(merged[at] as Obj, item, elemSchema);
    else merged.push(mergeMap({}, item, elemSchema));
  }

  const inPatch = (v: unknown) => indexIn(patchList, v, mergeKey) >= 0;
  return normalizeElementOrder(merged.filter(inPatch), merged.filter((v) => !inPatch(v)), patchList, serverList, mergeKey);
}

function listElementKind(...lists: unknown[][]): ValueKind {
  let kind: ValueKind | undefined;
  let scalarType: string | undefined;
  for (const list of lists) {
    for (const v of list) {
      const k = kindOf(v);
      if (kind === undefined && k === 'list') throw ErrNoListOfLists();
      const t = k === 'scalar' ? typeof v + (v === null ? 'null' : '') : k;
      if (kind !== undefined && (k !== kind || (k === 'scalar' && t !== scalarType))) {
        throw new SmpError(`list element types are not identical: ${goFmt(lists)}`);
      }
      kind = k;
      scalarType = t;
    }
  }
  return kind ?? 'scalar';
}

function dedupe(list: unknown[]): unknown[] {
  const out: unknown[] = [];
  for (const v of list) if (!out.includes(v)) out.push(v);
  return out;
}

function deleteScalars(list: unknown[], toDelete: unknown[]): unknown[] {
  return list.filter((v) => !toDelete.includes(v));
}

/** Position of `v` in `list`, by merge key for maps, by value for scalars; -1 if absent. */
function indexIn(list: unknown[], v: unknown, mergeKey: string): number {
  if (!mergeKey) return list.indexOf(v);
  const key = isObject(v) ? v[mergeKey] : undefined;
  return list.findIndex((x) => isObject(x) && x[mergeKey] === key);
}

/**
 * Orders the items named by the patch by `patchOrder` and the server-only items by `serverOrder`, then
 * interleaves them: a server-only item goes before a patch item only when the live list has it earlier.
 * So items new to the list come first unless $setElementOrder places them (Kubernetes does the same).
 */
function normalizeElementOrder(patchItems: unknown[], serverOnly: unknown[], patchOrder: unknown[], serverOrder: unknown[], mergeKey: string): unknown[] {
  const left = sortBy(serverOnly, serverOrder, mergeKey);
  const right = sortBy(patchItems, patchOrder, mergeKey);
  const out: unknown[] = [];
  let i = 0;
  let j = 0;
  while (i < left.length || j < right.length) {
    if (j >= right.length) out.push(left[i++]);
    else if (i >= left.length) out.push(right[j++]);
    else {
      const li = indexIn(serverOrder, left[i], mergeKey);
      const ri = indexIn(serverOrder, right[j], mergeKey);
      if (li >= 0 && ri >= 0 && li < ri) out.push(left[i++]);
      else out.push(right[j++]);
    }
  }
  return out;
}

function sortBy(items: unknown[], order: unknown[], mergeKey: string): unknown[] {
  const keyed = items.map((v, n) => ({ v, n, at: indexIn(order, v, mergeKey) }));
  keyed.sort((a, b) => (a.at >= 0 && b.at >= 0 ? a.at - b.at : a.at >= 0 ? -1 : b.at >= 0 ? 1 : a.n - b.n));
  return keyed.map((x) => x.v);
}

// ---------------------------------------------------------------------------------------------------
// Decoding and Go-flavoured messages (kubectl shows the server's text verbatim).

function parseJson(body: string, prefix: string): unknown {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    throw errors.badRequest(prefix + goJsonSyntaxError(body));
  }
  if (nestedDeeperThan(v)) throw errors.badRequest(prefix + tooDeepMessage);
  return v;
}

/** How encoding/json names a JSON value's kind in "cannot unmarshal X into Go value". */
function goKind(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  switch (typeof v) {
    case 'object':
      return 'object';
    case 'number':
      return 'number';
    case 'boolean':
      return 'bool';
    default:
      return 'string';
  }
}

/** A value formatted like Go's %v of the decoded interface{} (map[k:v ...], [a b], <nil>). */
export function goFmt(v: unknown): string {
  if (v === null || v === undefined) return '<nil>';
  if (Array.isArray(v)) return `[${v.map(goFmt).join(' ')}]`;
  if (isObject(v)) {
    return `map[${Object.keys(v)
      .sort()
      .map((k) => `${k}:${goFmt(v[k])}`)
      .join(' ')}]`;
  }
  return String(v);
}

/** The message Go's encoding/json scanner gives for a malformed document. */
export function goJsonSyntaxError(s: string): string {
  let i = 0;
  const EOF = 'unexpected end of JSON input';
  const q = (c: string) => (c === "'" ? `'\\''` : c === '"' ? `'"'` : `'${JSON.stringify(c).slice(1, -1)}'`);
  const bad = (context: string): never => {
    throw new Error(i >= s.length ? EOF : `invalid character ${q(s[i]!)} ${context}`);
  };
  const ws = () => {
    while (i < s.length && ' \t\r\n'.includes(s[i]!)) i++;
  };
  const str = () => {
    i++; // opening quote
    for (;;) {
      if (i >= s.length) throw new Error(EOF);
      const c = s[i]!;
      if (c === '"') return void i++;
      if (c < ' ') bad('in string literal');
      if (c === '\\') {
        i++;
        if (i >= s.length) throw new Error(EOF);
        if (s[i] === 'u') {
          for (let n = 0; n < 4; n++) {
            i++;
            if (i >= s.length) throw new Error(EOF);
            if (!/[0-9a-fA-F]/.test(s[i]!)) bad('in \\u hexadecimal character escape');
          }
        } else if (!'"\\/bfnrt'.includes(s[i]!)) bad('in string escape code');
      }
      i++;
    }
  };
  const num = () => {
    if (s[i] === '-') {
      i++;
      if (i >= s.length) throw new Error(EOF);
      if (!/[0-9]/.test(s[i]!)) bad('in numeric literal');
    }
    if (s[i] === '0') i++;
    else while (i < s.length && /[0-9]/.test(s[i]!)) i++;
    if (s[i] === '.') {
      i++;
      if (i >= s.length) throw new Error(EOF);
      if (!/[0-9]/.test(s[i]!)) bad('after decimal point in numeric literal');
      while (i < s.length && /[0-9]/.test(s[i]!)) i++;
    }
    if (s[i] === 'e' || s[i] === 'E') {
      i++;
      if (s[i] === '+' || s[i] === '-') i++;
      if (i >= s.length) throw new Error(EOF);
      if (!/[0-9]/.test(s[i]!)) bad('in exponent of numeric literal');
      while (i < s.length && /[0-9]/.test(s[i]!)) i++;
    }
  };
  const value = (): void => {
    ws();
    if (i >= s.length) throw new Error(EOF);
    const c = s[i]!;
    if (c === '{') {
      i++;
      ws();
      if (s[i] === '}') return void i++;
      for (;;) {
        ws();
        if (s[i] !== '"') bad('looking for beginning of object key string');
        str();
        ws();
        if (s[i] !== ':') bad('after object key');
        i++;
        value();
        ws();
        if (s[i] === ',') {
          i++;
          continue;
        }
        if (s[i] === '}') return void i++;
        bad('after object key:value pair');
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (s[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (s[i] === ',') {
          i++;
          continue;
        }
        if (s[i] === ']') return void i++;
        bad('after array element');
      }
    }
    if (c === '"') return str();
    if (c === '-' || (c >= '0' && c <= '9')) return num();
    for (const lit of ['true', 'false', 'null']) {
      if (c !== lit[0]) continue;
      for (let n = 1; n < lit.length; n++) {
        i++;
        if (s[i] !== lit[n]) bad(`in literal ${lit} (expecting ${q(lit[n]!)})`);
      }
      return void i++;
    }
    bad('looking for beginning of value');
  };
  try {
    value();
    ws();
    if (i < s.length) bad('after top-level value');
    return 'invalid JSON';
  } catch (e) {
    return (e as Error).message;
  }
}
