// Discovery documents, shaped exactly as kube-apiserver 1.32 serves them, built from the served kinds
// (lambdas/kinds/index.ts), read on each request so kinds registered at run time appear:
//   /version                      version.Info
//   /api                          APIVersions                  (legacy)   | APIGroupDiscoveryList (aggregated)
//   /apis                         APIGroupList                 (legacy)   | APIGroupDiscoveryList (aggregated)
//   /api/v1, /apis/{g}/{v}        APIResourceList (resources sorted by name, subresources as "pods/status")
//   /apis/{g}                     APIGroup
// kubectl 1.32 asks /api and /apis for aggregated discovery (apidiscovery.k8s.io/v2) first; the
// Content-Type of the answer tells client-go which of the formats it got.
import { createHash } from 'node:crypto';
import { apiVersionOf, type ResourceInfo } from '../kinds/kind.ts';
import { kinds, type KindRegistry } from '../kinds/index.ts';

// ---- /version ---------------------------------------------------------------------------------------

export interface VersionInfo {
  major: string;
  minor: string;
  gitVersion: string;
  gitCommit: string;
  gitTreeState: string;
  buildDate: string;
  goVersion: string;
  compiler: string;
  platform: string;
}

/** The Kubernetes version whose API Skiff serves. */
export const KUBE_MAJOR = '1';
export const KUBE_MINOR = '32';

export function versionInfo(): VersionInfo {
  const arch = ({ x64: 'amd64', ia32: '386' } as Record<string, string>)[process.arch] ?? process.arch;
  return {
    major: KUBE_MAJOR,
    minor: KUBE_MINOR,
    gitVersion: `v${KUBE_MAJOR}.${KUBE_MINOR}.0-skiff`,
    gitCommit: process.env.SKIFF_GIT_COMMIT ?? '0000000000000000000000000000000000000000',
    gitTreeState: 'clean',
    buildDate: process.env.SKIFF_BUILD_DATE ?? '1970-01-01T00:00:00Z',
    // Skiff is not built by Go; these say what runs it instead.
    goVersion: `node${process.versions.node}`,
    compiler: 'node',
    platform: `${process.platform}/${arch}`,
  };
}

// ---- Legacy discovery -----------------------------------------------------------------------------

export interface GroupVersionForDiscovery {
  groupVersion: string;
  version: string;
}

export interface APIGroup {
  kind: 'APIGroup';
  apiVersion: 'v1';
  name: string;
  versions: GroupVersionForDiscovery[];
  preferredVersion: GroupVersionForDiscovery;
}

export interface APIGroupList {
  kind: 'APIGroupList';
  apiVersion: 'v1';
  groups: Omit<APIGroup, 'kind' | 'apiVersion'>[];
}

export interface APIVersions {
  kind: 'APIVersions';
  versions: string[];
  serverAddressByClientCIDRs: { clientCIDR: string; serverAddress: string }[];
}

export interface APIResource {
  name: string;
  singularName: string;
  namespaced: boolean;
  group?: string;
  version?: string;
  kind: string;
  verbs: string[];
  shortNames?: string[];
  categories?: string[];
  storageVersionHash?: string;
}

export interface APIResourceList {
  kind: 'APIResourceList';
  apiVersion?: 'v1';
  groupVersion: string;
  resources: APIResource[];
}

/**
 * `/api`. kube-apiserver answers with the address clients should use; pass the host:port the request
 * came in on (Host header) when known.
 */
export function coreApiVersions(serverAddress = '127.0.0.1:6443'): APIVersions {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

function groupEntry(group: string, versions: string[]): Omit<APIGroup, 'kind' | 'apiVersion'> {
  const gvs = versions.map((version) => ({ groupVersion: `${group}/${version}`, version }));
  return { name: group, versions: gvs, preferredVersion: gvs[0]! };
}

/** `/apis`: the named groups, each with its versions (preferred first). */
export function apiGroupList(reg: KindRegistry = kinds): APIGroupList {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: reg.groups().map((g) => groupEntry(g.group, g.versions)) };
}

/** `/apis/{group}`, or undefined when the group is not served. */
export function apiGroup(group: string, reg: KindRegistry = kinds): APIGroup | undefined {
  const g = reg.groups().find((x) => x.group === group);
  return g ? { kind: 'APIGroup', apiVersion: 'v1', ...groupEntry(g.group, g.versions) } : undefined;
}

/** What a subresource speaks and allows, as kube-apiserver's REST storage for it declares. */
interface SubresourceFacts {
  group?: string;
  version?: string;
  /** undefined: the parent's kind. */
  kind?: string;
  verbs: string[];
}

export const SUBRESOURCES: Readonly<Record<string, SubresourceFacts>> = {
  status: { verbs: ['get', 'patch', 'update'] },
  binding: { kind: 'Binding', verbs: ['create'] },
  // pods/eviction speaks policy/v1 Eviction (kube's EvictionREST.GroupVersionKind), which kubectl drain
  // looks for in /api/v1 before it evicts rather than deletes.
  eviction: { group: 'policy', version: 'v1', kind: 'Eviction', verbs: ['create'] },
  scale: { group: 'autoscaling', version: 'v1', kind: 'Scale', verbs: ['get', 'patch', 'update'] },
  finalize: { verbs: ['update'] },
  log: { kind: 'Pod', verbs: ['get'] },
  // nodes/proxy: kube lists create, delete, get, patch, update; Skiff's agents serve reads only.
  proxy: { kind: 'NodeProxyOptions', verbs: ['get'] },
  // serviceaccounts/token speaks authentication.k8s.io/v1 TokenRequest (kube's TokenREST).
  token: { group: 'authentication.k8s.io', version: 'v1', kind: 'TokenRequest', verbs: ['create'] },
};

/** The group/version/kind a subresource answers with; group and version empty when the parent's. */
export function subresourceKind(r: ResourceInfo, sub: string): { group: string; version: string; kind: string } {
  const f = SUBRESOURCES[sub];
  return { group: f?.group ?? '', version: f?.version ?? '', kind: f?.kind ?? r.kind };
}

/** storageVersionHash: base64 of the first 8 bytes of sha256("group/version/kind"), as Kubernetes computes it. */
export function storageVersionHash(r: Pick<ResourceInfo, 'group' | 'version' | 'kind'>): string {
  return createHash('sha256').update(`${r.group}/${r.version}/${r.kind}`).digest().subarray(0, 8).toString('base64');
}

function servedIn(group: string, version: string, reg: KindRegistry): ResourceInfo[] {
  return reg.all().map((k) => k.info).filter((r) => r.group === group && r.version === version).sort((a, b) => (a.resource < b.resource ? -1 : 1));
}

/** `/api/v1` (group '') or `/apis/{group}/{version}`; undefined when not served. */
export function apiResourceList(group: string, version: string, reg: KindRegistry = kinds): APIResourceList | undefined {
  const served = servedIn(group, version, reg);
  if (served.length === 0) return undefined;
  const resources: APIResource[] = [];
  for (const r of served) {
    resources.push({
      name: r.resource,
      singularName: r.singular,
      namespaced: r.namespaced,
      kind: r.kind,
      verbs: [...r.verbs].sort(),
      ...(r.shortNames.length ? { shortNames: [...r.shortNames] } : {}),
      ...(r.categories.length ? { categories: [...r.categories] } : {}),
      storageVersionHash: storageVersionHash(r),
    });
    for (const sub of [...r.subresources].sort()) {
      const k = subresourceKind(r, sub);
      resources.push({
        name: `${r.resource}/${sub}`,
        singularName: '',
        namespaced: r.namespaced,
        ...(k.group ? { group: k.group } : {}),
        ...(k.version ? { version: k.version } : {}),
        kind: k.kind,
        verbs: [...(SUBRESOURCES[sub]?.verbs ?? ['get'])],
      });
    }
  }
  // kube-apiserver omits apiVersion on /api/v1 (legacy group) and sets it on /apis/{g}/{v}.
  return group
    ? { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: apiVersionOf({ group, version }), resources }
    : { kind: 'APIResourceList', groupVersion: version, resources };
}

// ---- Aggregated discovery (apidiscovery.k8s.io/v2) ------------------------------------------------

export interface GroupVersionKindRef {
  group: string;
  version: string;
  kind: string;
}

export interface APISubresourceDiscovery {
  subresource: string;
  responseKind: GroupVersionKindRef;
  verbs: string[];
}

export interface APIResourceDiscovery {
  resource: string;
  responseKind: GroupVersionKindRef;
  scope: 'Cluster' | 'Namespaced';
  singularResource: string;
  verbs: string[];
  shortNames?: string[];
  categories?: string[];
  subresources?: APISubresourceDiscovery[];
}

export interface APIVersionDiscovery {
  version: string;
  resources: APIResourceDiscovery[];
  freshness: 'Current' | 'Stale';
}

export interface APIGroupDiscovery {
  metadata: { name?: string; creationTimestamp: null };
  versions: APIVersionDiscovery[];
}

export interface APIGroupDiscoveryList {
  kind: 'APIGroupDiscoveryList';
  apiVersion: 'apidiscovery.k8s.io/v2' | 'apidiscovery.k8s.io/v2beta1';
  metadata: Record<string, never>;
  items: APIGroupDiscovery[];
}

export type DiscoveryFormat = 'aggregated-v2' | 'aggregated-v2beta1' | 'legacy';

/** The Content-Type kube-apiserver answers each discovery format with. */
export const DISCOVERY_CONTENT_TYPE: Readonly<Record<DiscoveryFormat, string>> = {
  'aggregated-v2': 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList',
  'aggregated-v2beta1': 'application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList',
  legacy: 'application/json',
};

function versionDiscovery(group: string, version: string, reg: KindRegistry): APIVersionDiscovery {
  const resources = servedIn(group, version, reg).map((r): APIResourceDiscovery => {
    const subs = [...r.subresources].sort().map((sub) => ({
      subresource: sub,
      responseKind: subresourceKind(r, sub),
      verbs: [...(SUBRESOURCES[sub]?.verbs ?? ['get'])],
    }));
    return {
      resource: r.resource,
      // Kubernetes leaves group and version empty when they are the containing group version's.
      responseKind: { group: '', version: '', kind: r.kind },
      scope: r.namespaced ? 'Namespaced' : 'Cluster',
      singularResource: r.singular,
      verbs: [...r.verbs].sort(),
      ...(r.shortNames.length ? { shortNames: [...r.shortNames] } : {}),
      ...(r.categories.length ? { categories: [...r.categories] } : {}),
      ...(subs.length ? { subresources: subs } : {}),
    };
  });
  return { version, resources, freshness: 'Current' };
}

/**
 * The aggregated discovery document: for `/api` the core group (metadata without a name), for
 * `/apis` every named group. Versions are listed preferred first.
 */
export function aggregatedDiscovery(
  which: 'api' | 'apis',
  format: Exclude<DiscoveryFormat, 'legacy'> = 'aggregated-v2',
  reg: KindRegistry = kinds,
): APIGroupDiscoveryList {
  const items: APIGroupDiscovery[] =
    which === 'api'
      ? [{ metadata: { creationTimestamp: null }, versions: [versionDiscovery('', 'v1', reg)] }]
      : reg.groups().map((g) => ({
          metadata: { name: g.group, creationTimestamp: null },
          versions: g.versions.map((v) => versionDiscovery(g.group, v, reg)),
        }));
  return {
    kind: 'APIGroupDiscoveryList',
    apiVersion: format === 'aggregated-v2beta1' ? 'apidiscovery.k8s.io/v2beta1' : 'apidiscovery.k8s.io/v2',
    metadata: {},
    items,
  };
}

export interface DiscoveryNegotiation {
  kind: DiscoveryFormat;
  /** The Content-Type to answer with. */
  contentType: string;
}

/**
 * Picks the discovery format for an Accept header, as kube-apiserver does: media ranges by q-value
 * (then order); `application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList` selects v2,
 * `...;v=v2beta1;...` v2beta1, plain JSON or wildcards the legacy documents. Skiff serves JSON only, so
 * protobuf ranges are skipped; with nothing acceptable the legacy JSON document is served.
 */
export function negotiateDiscovery(acceptHeader: string | undefined): DiscoveryNegotiation {
  const ranges = (acceptHeader ?? '')
    .split(',')
    .map((raw, order) => {
      const [type, ...paramParts] = raw.split(';').map((x) => x.trim());
      const params: Record<string, string> = {};
      for (const p of paramParts) {
        const eq = p.indexOf('=');
        if (eq > 0) params[p.slice(0, eq).trim().toLowerCase()] = p.slice(eq + 1).trim().replace(/^"|"$/g, '');
      }
      const q = params.q === undefined ? 1 : Number(params.q);
      return { type: (type ?? '').toLowerCase(), params, q: Number.isFinite(q) ? q : 0, order };
    })
    .filter((r) => r.type && r.q > 0)
    .sort((a, b) => b.q - a.q || a.order - b.order);
  for (const r of ranges) {
    const kind = formatFor(r.type, r.params);
    if (kind) return { kind, contentType: DISCOVERY_CONTENT_TYPE[kind] };
  }
  return { kind: 'legacy', contentType: DISCOVERY_CONTENT_TYPE.legacy };
}

function formatFor(type: string, params: Record<string, string>): DiscoveryFormat | undefined {
  if (type !== 'application/json' && type !== 'application/*' && type !== '*/*') return undefined;
  const { g, v, as } = params;
  if (g === undefined && v === undefined && as === undefined) return 'legacy';
  if (type !== 'application/json' || g !== 'apidiscovery.k8s.io' || as !== 'APIGroupDiscoveryList') return undefined;
  if (v === 'v2') return 'aggregated-v2';
  if (v === 'v2beta1') return 'aggregated-v2beta1';
  return undefined;
}

// Discovery documents as sent, per registry (each ApiServer serves its own custom resources), until the
// served kinds change: every kubectl command asks for /api and /apis, and with many CRDs building and
// serializing them was most of a discovery request's time.
const sentBy = new WeakMap<KindRegistry, Map<string, string>>();

/** The body `build` makes for `key`, made once per registry until a kind is registered or removed. */
export function discoveryBody(reg: KindRegistry, key: string, build: () => unknown): string {
  let m = sentBy.get(reg);
  if (!m) {
    const cache = (m = new Map<string, string>());
    reg.onChange(() => cache.clear());
    sentBy.set(reg, m);
  }
  let body = m.get(key);
  if (body === undefined) m.set(key, (body = JSON.stringify(build())));
  return body;
}
