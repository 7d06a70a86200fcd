// Defaulting (k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting/algorithm.go, prunenulls.go):
// a property's `default` is set where the property is missing (or null while the schema does not allow
// null) in an object that exists: a default under a missing parent is not applied, because the parent is
// not created. Defaults inside defaults apply too, since the walk continues into the values set. Then nulls
// of non-nullable fields without a default are dropped. kube applies this when it decodes a request body
// and when it reads an object from storage.

import { additionalPropertiesOf, itemsOf } from './structural.ts';
import { deepCopy, isObj, type JSONSchemaProps } from './types.ts';

export function applyDefaults(x: unknown, s: JSONSchemaProps | undefined): void {
  if (!isObj(s)) return;
  if (isObj(x)) {
    const props = isObj(s.properties) ? s.properties : {};
    for (const [k, prop] of Object.entries(props)) {
      if (prop.default === undefined || prop.default === null) continue;
      if (!(k in x) || (x[k] === null && !prop.nullable)) x[k] = deepCopy(prop.default);
    }
    const ap = additionalPropertiesOf(s);
    for (const [k, v] of Object.entries(x)) {
      if (props[k]) applyDefaults(v, props[k]);
      else if (ap) applyDefaults(v, ap);
    }
  } else if (Array.isArray(x)) {
    const items = itemsOf(s);
    for (const v of x) applyDefaults(v, items);
  }
}

/** PruneNonNullableNullsWithoutDefaults. */
export function pruneNulls(x: unknown, s: JSONSchemaProps | undefined): void {
  if (!isObj(s)) return;
  if (isObj(x)) {
    const props = isObj(s.properties) ? s.properties : {};
    const ap = additionalPropertiesOf(s);
    for (const [k, v] of Object.entries(x)) {
      const ps = props[k] ?? ap;
      if (!ps) continue;
      if (v === null) {
        if (!ps.nullable && (ps.default === undefined || ps.default === null)) delete x[k];
        continue;
      }
      pruneNulls(v, ps);
    }
  } else if (Array.isArray(x)) {
    const items = itemsOf(s);
    for (const v of x) pruneNulls(v, items);
  }
}
