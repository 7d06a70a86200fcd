// Structural schemas (k8s.io/apiextensions-apiserver/pkg/apiserver/schema: validation.go, complete.go).
// A schema is structural when every field and array it specifies has a type outside the value validations
// (allOf/anyOf/oneOf/not), the logical junctors only restrict values, and metadata at the root restricts
// only name and generateName. Kube's findings are returned sorted by their text, as ValidateStructural
// sorts them.

import { child, errorString, fe, index, key, type FieldError } from './errors.ts';
import { re2Error } from './re2.ts';
import { isObj, type JSONSchemaProps } from './types.ts';

type Level = 'root' | 'item' | 'field';

const has = (s: JSONSchemaProps, k: keyof JSONSchemaProps): boolean => s[k] !== undefined && s[k] !== null;
const sortedKeys = (o: Record<string, unknown> | undefined): string[] => (isObj(o) ? Object.keys(o).sort() : []);
/** items as a single schema (an array of schemas is refused by CRD validation, not here). */
export const itemsOf = (s: JSONSchemaProps): JSONSchemaProps | undefined => (isObj(s.items) ? (s.items as JSONSchemaProps) : undefined);
export const additionalPropertiesOf = (s: JSONSchemaProps): JSONSchemaProps | undefined =>
  isObj(s.additionalProperties) ? (s.additionalProperties as JSONSchemaProps) : undefined;

/** ValidateStructural: every finding, sorted. */
export function validateStructural(path: string, s: JSONSchemaProps): FieldError[] {
  const errs = [...invariants(s, 'root', path), ...completeness(s, path)];
  return errs.sort((a, b) => (errorString(a) < errorString(b) ? -1 : errorString(a) > errorString(b) ? 1 : 0));
}

export function isStructural(s: JSONSchemaProps): boolean {
  return validateStructural('', s).length === 0;
}

function isIntOrStringAnyOf(anyOf: unknown): boolean {
  if (!Array.isArray(anyOf) || anyOf.length !== 2) return false;
  const only = (x: unknown, t: string): boolean => isObj(x) && Object.keys(x).length === 1 && x.type === t;
  return only(anyOf[0], 'integer') && only(anyOf[1], 'string');
}

function invariants(s: JSONSchemaProps | undefined, lvl: Level, path: string): FieldError[] {
  if (!isObj(s)) return [];
  const errs: FieldError[] = [];
  const items = itemsOf(s);
  if (s.type === 'array' && !items) errs.push(fe.required(child(path, 'items'), 'must be specified'));
  errs.push(...invariants(items, 'item', child(path, 'items')));
  for (const k of sortedKeys(s.properties)) errs.push(...invariants(s.properties![k], 'field', key(child(path, 'properties'), k)));
  if (has(s, 'additionalProperties')) {
    if (lvl === 'root') errs.push(fe.forbidden(child(path, 'additionalProperties'), 'must not be used at the root'));
    const ap = additionalPropertiesOf(s);
    if (ap) errs.push(...invariants(ap, 'field', child(path, 'additionalProperties')));
  }
  const intOrString = s['x-kubernetes-int-or-string'] === true;
  const preserve = s['x-kubernetes-preserve-unknown-fields'] === true;
  const embedded = s['x-kubernetes-embedded-resource'] === true;
  if (intOrString && preserve) errs.push(fe.invalid(child(path, 'x-kubernetes-preserve-unknown-fields'), true, 'must be false if x-kubernetes-int-or-string is true'));
  if (intOrString && embedded) errs.push(fe.invalid(child(path, 'x-kubernetes-embedded-resource'), true, 'must be false if x-kubernetes-int-or-string is true'));

  const skipAnyOf = isIntOrStringAnyOf(s.anyOf);
  const skipFirstAllOfAnyOf = Array.isArray(s.allOf) && s.allOf.length >= 1 && isIntOrStringAnyOf(s.allOf[0]?.anyOf);
  errs.push(...valueValidation(s, skipAnyOf, skipFirstAllOfAnyOf, lvl, path));

  const checkMetadata = lvl === 'root' || embedded;
  const type = typeof s.type === 'string' ? s.type : '';
  if (embedded && type !== 'object') {
    if (!type) errs.push(fe.required(child(path, 'type'), 'must be object if x-kubernetes-embedded-resource is true'));
    else errs.push(fe.invalid(child(path, 'type'), type, 'must be object if x-kubernetes-embedded-resource is true'));
  } else if (!type && !intOrString && !preserve) {
    const detail = { root: 'must not be empty at the root', item: 'must not be empty for specified array items', field: 'must not be empty for specified object fields' }[lvl];
    errs.push(fe.required(child(path, 'type'), detail));
  }
  if (embedded && has(s, 'additionalProperties')) errs.push(fe.forbidden(child(path, 'additionalProperties'), 'must not be used if x-kubernetes-embedded-resource is set'));
  if (lvl === 'root' && type && type !== 'object') errs.push(fe.invalid(child(path, 'type'), type, 'must be object at the root'));

  const props = isObj(s.properties) ? s.properties : {};
  for (const meta of ['kind', 'apiVersion']) {
    if (checkMetadata && isObj(props[meta]) && props[meta].type !== 'string') {
      errs.push(fe.invalid(child(key(child(path, 'properties'), meta), 'type'), props[meta].type ?? '', 'must be string'));
    }
  }
  if (isObj(props.metadata)) errs.push(...metadataInvariants(props.metadata, checkMetadata, lvl, key(child(path, 'properties'), 'metadata')));
  if (embedded && !preserve && sortedKeys(s.properties).length === 0) {
    errs.push(fe.required(child(path, 'properties'), 'must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields'));
  }
  return errs;
}

function metadataInvariants(s: JSONSchemaProps, checkMetadata: boolean, lvl: Level, path: string): FieldError[] {
  const errs: FieldError[] = [];
  if (checkMetadata && s.type !== 'object') errs.push(fe.invalid(child(path, 'type'), s.type ?? '', 'must be object'));
  if (lvl === 'root') {
    // Only type, default (checked elsewhere) and the properties name and generateName may be given.
    const rest = Object.keys(s).filter((k) => !['type', 'default', 'properties'].includes(k) && s[k as keyof JSONSchemaProps] !== undefined);
    const propKeys = sortedKeys(s.properties);
    const okProps = propKeys.every((k) => k === 'name' || k === 'generateName');
    if (rest.length > 0 || !okProps) {
      errs.push(fe.forbidden(path, 'must not specify anything other than name and generateName, but metadata is implicitly specified'));
    }
  }
  return errs;
}

/** validateValueValidation: the junctors of a structural schema node. */
function valueValidation(v: JSONSchemaProps, skipAnyOf: boolean, skipFirstAllOfAnyOf: boolean, lvl: Level, path: string): FieldError[] {
  const errs: FieldError[] = [];
  if (!skipAnyOf) (Array.isArray(v.anyOf) ? v.anyOf : []).forEach((n, i) => errs.push(...nested(n, false, lvl, index(child(path, 'anyOf'), i))));
  (Array.isArray(v.allOf) ? v.allOf : []).forEach((n, i) => errs.push(...nested(n, skipFirstAllOfAnyOf && i === 0, lvl, index(child(path, 'allOf'), i))));
  (Array.isArray(v.oneOf) ? v.oneOf : []).forEach((n, i) => errs.push(...nested(n, false, lvl, index(child(path, 'oneOf'), i))));
  if (isObj(v.not)) errs.push(...nested(v.not, false, lvl, child(path, 'not')));
  if (typeof v.pattern === 'string' && v.pattern.length > 0) {
    // As kube's validator compiles it: Go's regexp (RE2 syntax; re2.ts), its error text.
    const err = re2Error(v.pattern);
    if (err) errs.push(fe.invalid(child(path, 'pattern'), v.pattern, `must be a valid regular expression, but isn't: ${err}`));
  }
  return errs;
}

/** validateNestedValueValidation: inside a junctor only value restrictions are allowed. */
function nested(v: JSONSchemaProps | undefined, skipAnyOf: boolean, lvl: Level, path: string): FieldError[] {
  if (!isObj(v)) return [];
  const errs: FieldError[] = [];
  errs.push(...valueValidation(v, skipAnyOf, false, lvl, path));
  const items = itemsOf(v);
  if (items) errs.push(...nested(items, false, lvl, child(path, 'items')));
  for (const k of sortedKeys(v.properties)) errs.push(...nested(v.properties![k], false, 'field', key(child(path, 'properties'), k)));
  if (typeof v.type === 'string' && v.type) errs.push(fe.forbidden(child(path, 'type'), 'must be empty to be structural'));
  if (has(v, 'additionalProperties')) errs.push(fe.forbidden(child(path, 'additionalProperties'), 'must be undefined to be structural'));
  if (v.default !== undefined && v.default !== null) errs.push(fe.forbidden(child(path, 'default'), 'must be undefined to be structural'));
  if (v.title) errs.push(fe.forbidden(child(path, 'title'), 'must be empty to be structural'));
  if (v.description) errs.push(fe.forbidden(child(path, 'description'), 'must be empty to be structural'));
  if (v.nullable) errs.push(fe.forbidden(child(path, 'nullable'), 'must be false to be structural'));
  if (v['x-kubernetes-preserve-unknown-fields']) errs.push(fe.forbidden(child(path, 'x-kubernetes-preserve-unknown-fields'), 'must be false to be structural'));
  if (v['x-kubernetes-embedded-resource']) errs.push(fe.forbidden(child(path, 'x-kubernetes-embedded-resource'), 'must be false to be structural'));
  if (v['x-kubernetes-int-or-string']) errs.push(fe.forbidden(child(path, 'x-kubernetes-int-or-string'), 'must be false to be structural'));
  if (Array.isArray(v['x-kubernetes-list-map-keys']) && v['x-kubernetes-list-map-keys'].length) {
    errs.push(fe.forbidden(child(path, 'x-kubernetes-list-map-keys'), 'must be empty to be structural'));
  }
  if (has(v, 'x-kubernetes-list-type')) errs.push(fe.forbidden(child(path, 'x-kubernetes-list-type'), 'must be undefined to be structural'));
  if (has(v, 'x-kubernetes-map-type')) errs.push(fe.forbidden(child(path, 'x-kubernetes-map-type'), 'must be undefined to be structural'));
  if (Array.isArray(v['x-kubernetes-validations']) && v['x-kubernetes-validations'].length) {
    errs.push(fe.forbidden(child(path, 'x-kubernetes-validations'), 'must be empty to be structural'));
  }
  if (isObj(v.properties) && 'metadata' in v.properties) errs.push(fe.forbidden(key(child(path, 'properties'), 'metadata'), 'must not be specified in a nested context'));
  return errs;
}

// complete.go: every field or array a junctor speaks of is also specified in the structural part.

function completeness(s: JSONSchemaProps, path: string): FieldError[] {
  return valueCompleteness(s, s, path, path);
}

function valueCompleteness(v: JSONSchemaProps, s: JSONSchemaProps | undefined, sPath: string, vPath: string): FieldError[] {
  if (!s) return [fe.required(sPath, `because it is defined in ${vPath}`)];
  const errs: FieldError[] = [];
  if (isObj(v.not)) errs.push(...nestedCompleteness(v.not, s, sPath, child(vPath, 'not')));
  for (const j of ['allOf', 'anyOf', 'oneOf'] as const) {
    (Array.isArray(v[j]) ? v[j]! : []).forEach((n, i) => errs.push(...nestedCompleteness(n, s, sPath, index(child(vPath, j), i))));
  }
  return errs;
}

function nestedCompleteness(v: JSONSchemaProps, s: JSONSchemaProps | undefined, sPath: string, vPath: string): FieldError[] {
  if (!isObj(v)) return [];
  if (!s) return [fe.required(sPath, `because it is defined in ${vPath}`)];
  const errs: FieldError[] = [...valueCompleteness(v, s, sPath, vPath)];
  const vItems = itemsOf(v);
  if (vItems) errs.push(...nestedCompleteness(vItems, itemsOf(s), child(sPath, 'items'), child(vPath, 'items')));
  for (const k of sortedKeys(v.properties)) {
    const sFld = isObj(s.properties) ? s.properties[k] : undefined;
    if (!sFld) errs.push(fe.required(key(child(sPath, 'properties'), k), `because it is defined in ${key(child(vPath, 'properties'), k)}`));
    else errs.push(...nestedCompleteness(v.properties![k]!, sFld, key(child(sPath, 'properties'), k), key(child(vPath, 'properties'), k)));
  }
  return errs;
}
