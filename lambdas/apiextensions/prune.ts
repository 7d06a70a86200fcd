// Pruning (k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning/algorithm.go): fields a structural
// schema does not specify are dropped, unless x-kubernetes-preserve-unknown-fields keeps them. apiVersion,
// kind and metadata of the object (and of embedded resources) are never pruned by the schema; unknown fields
// of metadata are dropped as the ObjectMeta decoding drops them. The paths dropped are returned, so the
// serving layer can answer fieldValidation=Warn with warnings (`unknown field "spec.foo"`) and Strict with
// a 400.

import { errors, type ApiError } from '../machinery/status.ts';
import { additionalPropertiesOf, itemsOf } from './structural.ts';
import { isObj, type JSONSchemaProps } from './types.ts';

const OBJECT_META_FIELDS = new Set([
  'name', 'generateName', 'namespace', 'selfLink', 'uid', 'resourceVersion', 'generation', 'creationTimestamp',
  'deletionTimestamp', 'deletionGracePeriodSeconds', 'labels', 'annotations', 'ownerReferences', 'finalizers', 'managedFields',
]);
const TYPE_META = new Set(['apiVersion', 'kind']);

const join = (path: string, k: string): string => (path ? `${path}.${k}` : k);

/**
 * Prunes `obj` in place against `schema` and returns the dropped field paths in kube's notation
 * (spec.foo, spec.ports[0].bar). `isResourceRoot` is true for a whole custom resource.
 */
export function prune(obj: unknown, schema: JSONSchemaProps | undefined, isResourceRoot = true): string[] {
  const pruned: string[] = [];
  walk(obj, schema, isResourceRoot, '', pruned);
  return pruned;
}

function walk(v: unknown, s: JSONSchemaProps | undefined, isResource: boolean, path: string, pruned: string[]): void {
  if (Array.isArray(v)) {
    const items = isObj(s) ? itemsOf(s) : undefined;
    v.forEach((x, i) => {
      if (items) walk(x, items, items['x-kubernetes-embedded-resource'] === true, `${path}[${i}]`, pruned);
      else if (!(isObj(s) && s['x-kubernetes-preserve-unknown-fields'])) walk(x, undefined, false, `${path}[${i}]`, pruned);
    });
    return;
  }
  if (!isObj(v)) return;
  const preserve = isObj(s) && s['x-kubernetes-preserve-unknown-fields'] === true;
  const props = isObj(s) && isObj(s.properties) ? s.properties : {};
  const ap = isObj(s) ? additionalPropertiesOf(s) : undefined;
  const apAllows = isObj(s) && s.additionalProperties === true;
  for (const k of Object.keys(v)) {
    const p = join(path, k);
    if (isResource && TYPE_META.has(k)) continue;
    if (isResource && k === 'metadata') {
      if (isObj(v.metadata)) {
        for (const mk of Object.keys(v.metadata)) {
          if (!OBJECT_META_FIELDS.has(mk)) {
            delete v.metadata[mk];
            pruned.push(`${p}.${mk}`);
          }
        }
      }
      continue;
    }
    const ps = props[k];
    if (ps) {
      walk(v[k], ps, ps['x-kubernetes-embedded-resource'] === true, p, pruned);
    } else if (ap) {
      walk(v[k], ap, ap['x-kubernetes-embedded-resource'] === true, p, pruned);
    } else if (preserve || apAllows) {
      // Kept as is: nothing below an unspecified, preserved field is pruned.
    } else {
      delete v[k];
      pruned.push(p);
    }
  }
}

/** The warnings kube returns for fieldValidation=Warn. */
export function unknownFieldWarnings(paths: readonly string[]): string[] {
  return paths.map((p) => `unknown field ${JSON.stringify(p)}`);
}

/** The 400 kube returns for fieldValidation=Strict (the decoder's strict decoding error). */
export function strictDecodingError(kind: string, version: string, paths: readonly string[]): ApiError {
  return errors.badRequest(`${kind} in version ${JSON.stringify(version)} cannot be handled as a ${kind}: strict decoding error: ${unknownFieldWarnings(paths).join(', ')}`);
}
