// PATCH bodies, applied the way kube-apiserver applies them (k8s.io/apiserver endpoints/handlers/patch.go):
//
//   application/json-patch+json            RFC 6902 operations (fast-json-patch). A body that is not a
//                                          list of operations is 400; an operation that does not apply
//                                          (failed test, missing path) is 422, as Kubernetes answers,
//                                          and so is a patch whose copies add more than 3 MiB.
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
import { nestedDeeperThan, tooDeepMessage } from './nesting.ts';
import { parseYamlBody } from './yaml-body.ts';
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

/**
 * kube-apiserver's cap on the bytes the "copy" operations of one JSON patch may add, summed over the
 * patch: Config.JSONPatchMaxCopyBytes (3 MiB, k8s.io/apiserver/pkg/server/config.go), which it installs
 * as evanphx/json-patch's AccumulatedCopySizeLimit. Without it, 30 copies of a document into itself
 * make it 2^30 times larger.
 */
const MAX_JSON_PATCH_COPY_BYTES = 3 * 1024 * 1024;

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
    // What jsonpatch.applyPatch(original, ops, true, false) does, one operation at a time so copies can
    // be charged before they are made.
    let doc: unknown = jsonpatch.deepClone(original);
    let copied = 0;
    for (const [i, op] of (ops as jsonpatch.Operation[]).entries()) {
      if (op.op === 'copy') copied = chargeCopy(doc, op.from, copied);
      doc = jsonpatch.applyOperation(doc, op, validateOperation, true, true, i).newDocument;
    }
    return doc;
  } catch (e) {
    // Kubernetes: errors.NewGenericServerResponse(422, ...) — the operation's own error is not returned,
    // the copy limit's "Unable to complete the copy, the accumulated size increase of copy is N,
    // exceeding the limit 3145728" included.
    if (e instanceof Error) return invalidPatch();
    throw e;
  }
}

/**
 * Adds the size of the value a copy operation duplicates to `copied`, the bytes the patch's copies have
 * added so far; past MAX_JSON_PATCH_COPY_BYTES the patch fails, as evanphx/json-patch's
 * AccumulatedCopySizeError fails it (before the copy is made). A `from` that does not resolve is left
 * for the operation itself to fail.
 */
function chargeCopy(doc: unknown, from: unknown, copied: number): number {
  let value: unknown;
  try {
    value = typeof from === 'string' ? jsonpatch.getValueByPointer(doc, from) : undefined;
  } catch {
    return copied;
  }
  if (value === undefined) return copied;
  const total = copied + goJsonSize(value, MAX_JSON_PATCH_COPY_BYTES - copied);
  if (total > MAX_JSON_PATCH_COPY_BYTES) {
    throw new Error(`Unable to complete the copy, the accumulated size increase of copy is ${total}, exceeding the limit ${MAX_JSON_PATCH_COPY_BYTES}`);
  }
  return total;
}

/**
 * The length of `v` as Go's encoding/json marshals it (compact; UTF-8; <, >, &, U+2028 and U+2029
 * escaped), which is what json-patch charges a copy. Counting stops once it passes `limit` (the result
 * is then some number above it), so measuring never costs more than the limit allows copying.
 */
function goJsonSize(v: unknown, limit: number): number {
  let size = 0;
  const pending: unknown[] = [v];
  while (pending.length > 0 && size <= limit) {
    const x = pending.pop();
    if (typeof x === 'string') size += goStringSize(x, limit - size);
    else if (typeof x === 'number') size += String(x).length;
    else if (typeof x === 'boolean') size += x ? 4 : 5;
    else if (Array.isArray(x)) {
      size += x.length > 0 ? x.length + 1 : 2; // brackets and commas
      for (let i = x.length - 1; i >= 0; i--) pending.push(x[i]);
    } else if (isObject(x)) {
      const keys = Object.keys(x);
      size += keys.length > 0 ? keys.length * 2 + 1 : 2; // braces, colons and commas
      for (let i = keys.length - 1; i >= 0 && size <= limit; i--) {
        size += goStringSize(keys[i]!, limit - size);
        pending.push(x[keys[i]!]);
      }
    } else size += 4; // null
  }
  return size;
}

function goStringSize(s: string, limit: number): number {
  let size = 2;
  for (let i = 0; i < s.length && size <= limit; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      if (c === 0x22 || c === 0x5c || c === 0x08 || c === 0x0c || c === 0x0a || c === 0x0d || c === 0x09) size += 2;
      else if (c < 0x20 || c === 0x3c || c === 0x3e || c === 0x26) size += 6; // \u00XX
      else size += 1;
    } else if (c < 0x800) size += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      size += 4; // a surrogate pair: one 4-byte UTF-8 sequence
      i++;
    } else if ((c & 0xf800) === 0xd800 || c === 0x2028 || c === 0x2029) size += 6; // \ufffd for a lone surrogate, \u2028, \u2029
    else size += 3;
  }
  return size;
}

/**
 * fast-json-patch's own validation (what applyPatch's validate=true runs), except for where a copy or
 * move takes its value from: the stock validator checks that `from` resolves by deep-copying the whole
 * document for every copy and move, O(operations × document) for 10,000 small copies into a big object.
 * This checks the same path in place (a "_get" only reads) and fails exactly when the stock one does.
 */
function validateOperation(op: jsonpatch.Operation, index: number, document: unknown, existingPath: string): void {
  if (op.op !== 'copy' && op.op !== 'move') return jsonpatch.validator(op, index, document, existingPath);
  jsonpatch.validator(op, index); // the operation's shape
  const unresolvable = () => new jsonpatch.JsonPatchError('Cannot perform the operation from a path that does not exist', 'OPERATION_FROM_UNRESOLVABLE', index, op, document);
  // evanphx/json-patch finds no value at "" to copy or move; fast-json-patch would put the document
  // inside itself, and a move makes it circular.
  if (op.from === '') throw unresolvable();
  if (op.path === '') return; // on the root, applyOperation with validate=true checks nothing more
  try {
    jsonpatch.applyOperation(document, { op: '_get', path: op.from, value: undefined }, true, true);
  } catch (e) {
    if (!(e instanceof jsonpatch.JsonPatchError)) throw e;
    if (e.name === 'OPERATION_PATH_UNRESOLVABLE') throw unresolvable();
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
  let v: unknown;
  try {
    v = parseYamlBody(body);
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
    const inOrder = positions(order, key_);
    const patchItems = merged.filter((v) => inOrder(v) >= 0);
    const serverOnly = merged.filter((v) => inOrder(v) < 0);
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

/**
 * Merges a patch list into a list whose field has patchStrategy "merge". Linear in the lists' lengths
 * (but for sorting): lookups go through a Set or Map built once per list, never a scan per element.
 */
function mergeList(original: unknown[], patch: unknown[], elemSchema: OpenAPISchema | undefined, mergeKey: string, isDeleteList: boolean): unknown[] {
  if (original.length === 0 && patch.length === 0) return original;
  const elementKind = listElementKind(original, patch);

  if (elementKind !== 'map') {
    if (isDeleteList) return deleteScalars(original, patch);
    const merged = dedupe([...original, ...patch]);
    const inPatch = new Set(patch);
    return normalizeElementOrder(merged.filter((v) => inPatch.has(v)), merged.filter((v) => !inPatch.has(v)), patch, original, '');
  }

  if (!mergeKey) throw new SmpError('cannot merge lists without merge key');

  // Special elements first: {$patch: delete, <key>: v} removes, {$patch: replace} replaces the list.
  let serverList = original;
  let patchList: unknown[] = [];
  let replace = false;
  const deleted = new Set<unknown>(); // merge keys of the {$patch: delete} items
  for (const v of patch) {
    const item = v as Obj;
    if (!has(item, DIRECTIVE)) {
      patchList.push(item);
      continue;
    }
    const directive = item[DIRECTIVE];
    if (directive === 'delete') {
      if (!has(item, mergeKey)) throw ErrNoMergeKey(item, mergeKey);
      if (!Number.isNaN(item[mergeKey])) deleted.add(item[mergeKey]); // NaN matches nothing (===)
    } else if (directive === 'replace') {
      replace = true;
    } else if (directive === 'merge') {
      throw new SmpError('merging lists cannot yet be specified in the patch');
    } else {
      throw ErrBadPatchType(directive, item);
    }
  }
  if (deleted.size > 0) serverList = serverList.filter((o) => !(isObject(o) && has(o, mergeKey) && deleted.has(o[mergeKey])));
  if (replace) {
    serverList = patchList.map((v) => mergeMap({}, v as Obj, elemSchema));
    patchList = [];
  }

  // Each patch item merges into the first element that has its merge key (===), or is appended. `first`
  // holds that element's position for every key. An item whose key is null is the one case that changes
  // an element's key (merging deletes it), so the elements keyed null are used up in order instead.
  const merged = [...serverList];
  const first = new Map<unknown, number>();
  const nullKeyed: number[] = [];
  let nextNullKeyed = 0;
  merged.forEach((o, i) => {
    if (!isObject(o)) throw new SmpError('value for key is not a map.');
    if (!has(o, mergeKey)) return;
    if (o[mergeKey] === null) nullKeyed.push(i);
    else if (!first.has(o[mergeKey])) first.set(o[mergeKey], i);
  });
  for (const v of patchList) {
    const item = v as Obj;
    if (!has(item, mergeKey)) throw ErrNoMergeKey(item, mergeKey);
    const key = item[mergeKey];
    const at = key === null ? nullKeyed[nextNullKeyed++] : Number.isNaN(key) ? undefined : first.get(key);
    if (at !== undefined) {
      merged[at] = mergeMap(merged[at] as Obj, item, elemSchema);
    } else {
      const added = mergeMap({}, item, elemSchema);
      if (has(added, mergeKey) && !first.has(added[mergeKey])) first.set(added[mergeKey], merged.length);
      merged.push(added);
    }
  }

  const inPatch = positions(patchList, mergeKey);
  return normalizeElementOrder(merged.filter((v) => inPatch(v) >= 0), merged.filter((v) => inPatch(v) < 0), patchList, serverList, mergeKey);
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

/** The list without repeats, first occurrences in order (equality as Array.includes, a Set's). */
function dedupe(list: unknown[]): unknown[] {
  return [...new Set(list)];
}

function deleteScalars(list: unknown[], toDelete: unknown[]): unknown[] {
  const drop = new Set(toDelete);
  return list.filter((v) => !drop.has(v));
}

/**
 * Position lookup in `list`: the returned function gives the index of the first element equal (===) to
 * `v`, or with mergeKey, of the first map whose merge key is === `v`'s (undefined for a `v` that is not
 * a map); -1 if none. One pass to build, then O(1) a lookup.
 */
function positions(list: readonly unknown[], mergeKey: string): (v: unknown) => number {
  const first = new Map<unknown, number>();
  list.forEach((x, i) => {
    if (mergeKey && !isObject(x)) return;
    const key = mergeKey ? (x as Obj)[mergeKey] : x;
    if (!first.has(key)) first.set(key, i);
  });
  return (v) => {
    const key = mergeKey ? (isObject(v) ? v[mergeKey] : undefined) : v;
    return Number.isNaN(key) ? -1 : (first.get(key) ?? -1); // a Map finds NaN, === does not
  };
}

/**
 * Orders the items named by the patch by `patchOrder` and the server-only items by `serverOrder`, then
 * interleaves them: a server-only item goes before a patch item only when the live list has it earlier.
 * So items new to the list come first unless $setElementOrder places them (Kubernetes does the same).
 */
function normalizeElementOrder(patchItems: unknown[], serverOnly: unknown[], patchOrder: unknown[], serverOrder: unknown[], mergeKey: string): unknown[] {
  const inServer = positions(serverOrder, mergeKey);
  const left = sortBy(serverOnly, inServer);
  const right = sortBy(patchItems, positions(patchOrder, mergeKey));
  const out: unknown[] = [];
  let i = 0;
  let j = 0;
  while (i < left.length || j < right.length) {
    if (j >= right.length) out.push(left[i++]);
    else if (i >= left.length) out.push(right[j++]);
    else {
      const li = inServer(left[i]);
      const ri = inServer(right[j]);
      if (li >= 0 && ri >= 0 && li < ri) out.push(left[i++]);
      else out.push(right[j++]);
    }
  }
  return out;
}

/** `items` in the order of their positions (-1: after the others, as they came). */
function sortBy(items: unknown[], position: (v: unknown) => number): unknown[] {
  const keyed = items.map((v, n) => ({ v, n, at: position(v) }));
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
