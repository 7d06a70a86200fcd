// Served kinds as the rest of the code sees them: their ResourceInfo, looked up by group/version/resource
// or by apiVersion/kind, and their storage keys. The kinds themselves (everything specific to one) live in
// lambdas/kinds/, one module each, listed in lambdas/kinds/index.ts; the lookups below read that live list,
// so kinds registered at run time (custom resources) are found too.

import type { ResourceInfo } from '../kinds/kind.ts';

export type { ResourceInfo } from '../kinds/kind.ts';
export { apiVersionOf } from '../kinds/kind.ts';
export { RESOURCES, findResource, findKind, apiGroups } from '../kinds/index.ts';

// Storage keys: /registry/{group or "core"}/{resource}/{namespace}/{name} for namespaced kinds,
// /registry/{group or "core"}/{resource}/{name} for cluster-scoped ones. Listing a namespace is a prefix
// scan of ".../{namespace}/", listing all namespaces a scan of ".../{resource}/".

export function resourcePrefix(r: ResourceInfo): string {
  return `/registry/${r.group || 'core'}/${r.resource}/`;
}

export function storagePrefix(r: ResourceInfo, namespace?: string): string {
  return r.namespaced && namespace ? `${resourcePrefix(r)}${namespace}/` : resourcePrefix(r);
}

export function storageKey(r: ResourceInfo, namespace: string | undefined, name: string): string {
  return r.namespaced ? `${resourcePrefix(r)}${namespace}/${name}` : `${resourcePrefix(r)}${name}`;
}
