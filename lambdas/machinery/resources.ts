// The resource registry: every kind Skiff serves, with the facts discovery, routing, storage keys and
// kubectl need about it. Adding a kind starts here.

export interface ResourceInfo {
  group: string; // '' for the core group
  version: string;
  kind: string;
  listKind: string;
  /** The plural, lower-case resource name used in URLs ("pods"). */
  resource: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  verbs: string[];
  /** Subresources served under /{name}/{sub}. */
  subresources: string[];
}

const crud = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function def(
  group: string,
  version: string,
  kind: string,
  resource: string,
  namespaced: boolean,
  extra: Partial<Pick<ResourceInfo, 'shortNames' | 'categories' | 'verbs' | 'subresources'>> = {},
): ResourceInfo {
  return {
    group,
    version,
    kind,
    listKind: `${kind}List`,
    resource,
    singular: kind.toLowerCase(),
    namespaced,
    shortNames: extra.shortNames ?? [],
    categories: extra.categories ?? [],
    verbs: extra.verbs ?? crud,
    subresources: extra.subresources ?? [],
  };
}

export const RESOURCES: readonly ResourceInfo[] = [
  def('', 'v1', 'Namespace', 'namespaces', false, {
    shortNames: ['ns'],
    verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
    subresources: ['status', 'finalize'],
  }),
  def('', 'v1', 'Pod', 'pods', true, { shortNames: ['po'], categories: ['all'], subresources: ['status', 'binding', 'log'] }),
  def('', 'v1', 'Service', 'services', true, {
    shortNames: ['svc'],
    categories: ['all'],
    verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
    subresources: ['status'],
  }),
  def('', 'v1', 'Endpoints', 'endpoints', true, { shortNames: ['ep'] }),
  def('', 'v1', 'ReplicationController', 'replicationcontrollers', true, {
    shortNames: ['rc'],
    categories: ['all'],
    subresources: ['status', 'scale'],
  }),
  def('', 'v1', 'Node', 'nodes', false, { shortNames: ['no'], subresources: ['status'] }),
  def('', 'v1', 'Event', 'events', true, { shortNames: ['ev'] }),
  def('', 'v1', 'ConfigMap', 'configmaps', true, { shortNames: ['cm'] }),
  def('', 'v1', 'Secret', 'secrets', true),
  def('', 'v1', 'ServiceAccount', 'serviceaccounts', true, { shortNames: ['sa'] }),
  def('coordination.k8s.io', 'v1', 'Lease', 'leases', true),
  // Create-only and never stored: the answer is computed (node agents authenticate tokens with it).
  def('authentication.k8s.io', 'v1', 'TokenReview', 'tokenreviews', false, { verbs: ['create'] }),
  // Read-only and always empty: Skiff has no custom resources. kubectl lists CRDs to tell an unknown kind
  // from a custom one ("no matches for kind ... ensure CRDs are installed first"); creating one is 405.
  def('apiextensions.k8s.io', 'v1', 'CustomResourceDefinition', 'customresourcedefinitions', false, {
    shortNames: ['crd', 'crds'],
    categories: ['api-extensions'],
    verbs: ['get', 'list', 'watch'],
  }),
  // Written by the endpoints controller next to each Service's Endpoints (kubectl 1.32 describes Services
  // from slices); users may write their own for selectorless Services. Last, as kube-apiserver lists
  // discovery.k8s.io after the groups above.
  def('discovery.k8s.io', 'v1', 'EndpointSlice', 'endpointslices', true),
];

/** "v1" for the core group, "group/version" otherwise. */
export function apiVersionOf(r: Pick<ResourceInfo, 'group' | 'version'>): string {
  return r.group ? `${r.group}/${r.version}` : r.version;
}

export function findResource(group: string, version: string, resource: string): ResourceInfo | undefined {
  return RESOURCES.find((r) => r.group === group && r.version === version && r.resource === resource);
}

/** Look a kind up by the apiVersion and kind written in an object. */
export function findKind(apiVersion: string, kind: string): ResourceInfo | undefined {
  return RESOURCES.find((r) => apiVersionOf(r) === apiVersion && r.kind === kind);
}

/** Served API groups (excluding the core group), in discovery order, with their versions. */
export function apiGroups(): { group: string; versions: string[] }[] {
  const out: { group: string; versions: string[] }[] = [];
  for (const r of RESOURCES) {
    if (!r.group) continue;
    const g = out.find((x) => x.group === r.group);
    if (!g) out.push({ group: r.group, versions: [r.version] });
    else if (!g.versions.includes(r.version)) g.versions.push(r.version);
  }
  return out;
}

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
