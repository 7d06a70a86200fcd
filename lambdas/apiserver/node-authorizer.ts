// The Node authorizer (kube's plugin/pkg/auth/authorizer/node, AuthorizeNodeWithSelectors on as in 1.32):
// what a node's own credential (system:node:<name>, group system:nodes) may do.
//
// - Secrets, ConfigMaps, PVCs, PVs and service account tokens: only those related to a pod bound to the
//   node (its volumes, env/envFrom, imagePullSecrets, service account; PVC → PV by spec.volumeName);
//   otherwise no opinion with kube's reason "no relationship found between node '<n>' and this object".
// - Pods: get of a related pod, list/watch only with fieldSelector spec.nodeName=<self>; Nodes: read only
//   its own; Leases: only its own, in kube-node-lease.
// - Everything else: kube's NodeRules (bootstrappolicy.NodeRules()), matched as RBAC matches rules.
// What a node may write within these (its own Node, the status of its own pods...) is NodeRestriction
// admission's (admission-noderestriction.ts).
//
// Where the relationships come from (NodeGraph below): kube keeps a graph fed by informers. Here, the
// pods bound to a node are read by spec.nodeName:
// - `skiff up` (a long-lived process: NodeGraph.follow) keeps pods (indexed by node) and PVCs in caches
//   kept by a watch: an allowed request costs no storage read.
// - a Lambda instance (nothing long-lived guaranteed) lists the node's pods (registry.list with the field
//   selector spec.nodeName=<n>: one list of the pods prefix, filtered) and keeps that answer per node for
//   TTL_MS; a PVC (for a PV) is one get, kept as long. So a node's burst of requests (its agent starting a
//   pod reads its Secrets, ConfigMaps and claims together) costs one list, not one per request.
// Either way a "no" is confirmed by a fresh read before it is given: a pod bound a moment ago (the agent
// sees it through its own watch and asks for its Secret at once) is never refused from a stale view.
// A refusal therefore costs one list of the pods (and a get per claim for a PV).

import type { Authorizer, AuthorizationResult, PolicyRule, RequestAttributes, UserInfo } from './auth.ts';
import type { Registry } from './registry.ts';
import type { KubeObject } from '../machinery/types.ts';
import { ApiError } from '../machinery/status.ts';
import { findResource } from '../machinery/resources.ts';
import { kindFor } from '../kinds/index.ts';
import { parseFieldSelector } from '../machinery/selectors.ts';
import { SharedInformers } from '../controllers/informer.ts';
import { isLocalPathVolumeOf } from '../controllers/local-path.ts';
import { NODE_LEASE_NAMESPACE } from '../controllers/nodelifecycle.ts';

export const NODES_GROUP = 'system:nodes';
const NODE_USER_PREFIX = 'system:node:';
export { NODE_LEASE_NAMESPACE };

/**
 * The node a user is (kube's nodeidentifier.NodeIdentity): undefined when not a node (no system:node:
 * prefix, or not in system:nodes); '' when a node with no name.
 */
export function nodeIdentity(user: UserInfo): string | undefined {
  if (!user.username.startsWith(NODE_USER_PREFIX) || !user.groups.includes(NODES_GROUP)) return undefined;
  return user.username.slice(NODE_USER_PREFIX.length);
}

const rule = (verbs: string[], apiGroups: string[], resources: string[]): PolicyRule => ({ verbs, apiGroups, resources });
const READ = ['get', 'list', 'watch'];

/**
 * kube 1.32's bootstrappolicy.NodeRules(), for the requests the graph checks above do not decide, and
 * Skiff's one addition (marked). Rules for kinds Skiff does not serve (CSINodes, ResourceClaims...) are
 * kept: they match nothing here and keep the list comparable with kube's.
 */
export const NODE_RULES: PolicyRule[] = [
  // Needed to check API access. These creates are non-mutating.
  rule(['create'], ['authentication.k8s.io'], ['tokenreviews']),
  rule(['create'], ['authorization.k8s.io'], ['subjectaccessreviews', 'localsubjectaccessreviews']),
  // Needed to build serviceLister, to populate env vars for services.
  rule(READ, [''], ['services']),
  // Nodes can register Node API objects and report status (NodeRestriction limits them to their own).
  rule(['create', 'get', 'list', 'watch'], [''], ['nodes']),
  rule(['update', 'patch'], [''], ['nodes/status']),
  rule(['update', 'patch'], [''], ['nodes']),
  rule(['create', 'update', 'patch'], [''], ['events']),
  rule(READ, [''], ['pods']),
  // Mirror pods (NodeRestriction: Skiff has none, so no create is admitted), and deletes of its own pods.
  rule(['create', 'delete'], [''], ['pods']),
  rule(['update', 'patch'], [''], ['pods/status']),
  rule(['create'], [''], ['pods/eviction']),
  rule(READ, [''], ['secrets', 'configmaps']),
  rule(['get'], [''], ['persistentvolumeclaims', 'persistentvolumes']),
  rule(['get'], [''], ['endpoints']),
  rule(['create', 'get', 'list', 'watch'], ['certificates.k8s.io'], ['certificatesigningrequests']),
  rule(['get', 'create', 'update', 'patch', 'delete'], ['coordination.k8s.io'], ['leases']),
  rule(['get'], ['storage.k8s.io'], ['volumeattachments']),
  rule(['create'], [''], ['serviceaccounts/token']),
  rule(['get', 'update', 'patch'], [''], ['persistentvolumeclaims/status']),
  rule(['get', 'watch', 'list'], ['storage.k8s.io'], ['csidrivers']),
  rule(['get', 'create', 'update', 'patch', 'delete'], ['storage.k8s.io'], ['csinodes']),
  rule(['get', 'list', 'watch'], ['node.k8s.io'], ['runtimeclasses']),
  // Skiff: the node agent is also each node's kube-proxy and cluster DNS, which kube runs under their own
  // identities (kube-proxy's system:node-proxier role: list/watch services and endpoints; CoreDNS the
  // same). NodeRules already read services; this adds the endpoints list/watch those two need.
  rule(['list', 'watch'], [''], ['endpoints']),
];

/**
 * Whether rules allow a request, with RBAC's matching (rbac.RulesAllow): verbs and API groups match
 * exactly or "*"; resources match "resource" or "resource/subresource", "*", or "*" followed by "/subresource";
 * resourceNames (when any) must name the object; non-resource URLs match exactly or by a "*" suffix.
 * Kept minimal (NODE_RULES use no resourceNames or URLs); RBAC's own matcher can replace it.
 */
export function rulesAllow(a: RequestAttributes, rules: PolicyRule[]): boolean {
  return rules.some((r) => {
    if (!r.verbs.includes(a.verb) && !r.verbs.includes('*')) return false;
    if (!a.resourceRequest) return (r.nonResourceURLs ?? []).some((u) => u === a.path || u === '*' || (u.endsWith('*') && a.path.startsWith(u.slice(0, -1))));
    const groups = r.apiGroups ?? [];
    if (!groups.includes(a.group ?? '') && !groups.includes('*')) return false;
    const combined = a.subresource ? `${a.resource}/${a.subresource}` : a.resource!;
    const resources = r.resources ?? [];
    const resourceOk = resources.some((x) => x === '*' || x === combined || (a.subresource && x === `*/${a.subresource}`));
    if (!resourceOk) return false;
    return !r.resourceNames?.length || (!!a.name && r.resourceNames.includes(a.name));
  });
}

// ---- the relationships ----

const podsRes = findResource('', 'v1', 'pods')!;
const claimsRes = findResource('', 'v1', 'persistentvolumeclaims')!;
const volumesRes = findResource('', 'v1', 'persistentvolumes')!;

type Containers = { env?: any[]; envFrom?: any[] }[];

/** Every container of a pod: init, regular and ephemeral (kube's podutil.AllContainers). */
function allContainers(pod: KubeObject): Containers {
  const s = pod.spec ?? {};
  return [...(s.initContainers ?? []), ...(s.containers ?? []), ...(s.ephemeralContainers ?? [])];
}

/** The Secrets a pod refers to (kube's podutil.VisitPodSecretNames). */
export function podSecretNames(pod: KubeObject): Set<string> {
  const out = new Set<string>();
  const add = (n: unknown) => typeof n === 'string' && n && out.add(n);
  for (const s of pod.spec?.imagePullSecrets ?? []) add(s?.name);
  for (const c of allContainers(pod)) {
    for (const e of c.envFrom ?? []) add(e?.secretRef?.name);
    for (const e of c.env ?? []) add(e?.valueFrom?.secretKeyRef?.name);
  }
  for (const v of pod.spec?.volumes ?? []) {
    add(v?.secret?.secretName);
    for (const p of v?.projected?.sources ?? []) add(p?.secret?.name);
    add(v?.azureFile?.secretName);
    for (const k of ['cephfs', 'cinder', 'flexVolume', 'iscsi', 'rbd', 'scaleIO', 'storageos']) add(v?.[k]?.secretRef?.name);
    add(v?.csi?.nodePublishSecretRef?.name);
  }
  return out;
}

/** The ConfigMaps a pod refers to (kube's podutil.VisitPodConfigmapNames). */
export function podConfigMapNames(pod: KubeObject): Set<string> {
  const out = new Set<string>();
  const add = (n: unknown) => typeof n === 'string' && n && out.add(n);
  for (const c of allContainers(pod)) {
    for (const e of c.envFrom ?? []) add(e?.configMapRef?.name);
    for (const e of c.env ?? []) add(e?.valueFrom?.configMapKeyRef?.name);
  }
  for (const v of pod.spec?.volumes ?? []) {
    add(v?.configMap?.name);
    for (const p of v?.projected?.sources ?? []) add(p?.configMap?.name);
  }
  return out;
}

/** The claims a pod's volumes use; a generic ephemeral volume's claim is named <pod>-<volume>. */
export function podClaimNames(pod: KubeObject): Set<string> {
  const out = new Set<string>();
  for (const v of pod.spec?.volumes ?? []) {
    if (typeof v?.persistentVolumeClaim?.claimName === 'string') out.add(v.persistentVolumeClaim.claimName);
    if (v?.ephemeral) out.add(`${pod.metadata.name}-${v.name}`);
  }
  return out;
}

/** How long a Lambda instance keeps a node's pods (and a claim) between requests. */
const TTL_MS = 2000;

/**
 * Where the authorizer reads the pods bound to a node and the claims they use. By default reads the
 * store with a short per-instance cache; follow() (a long-lived process) switches to watch-kept caches.
 */
export class NodeGraph {
  private informers?: SharedInformers;
  private pods = new Map<string, { pods: KubeObject[]; until: number }>();
  private claims = new Map<string, { claim: KubeObject | undefined; until: number }>();

  constructor(
    private readonly registry: Registry,
    private readonly ttlMs = TTL_MS,
  ) {}

  /**
   * Keeps pods (indexed by node) and claims in caches fed by a watch, used once listed, until the signal
   * aborts; resolves when the watches have ended. Until then (and after) the store is read. `shared`: the
   * process's informers (`skiff up`: its loops'), started by their owner, so that a local cluster keeps
   * one cache of every pod and not two; without it, its own.
   */
  async follow(signal: AbortSignal, shared?: SharedInformers): Promise<void> {
    if (signal.aborted) return;
    const informers = shared ?? new SharedInformers(this.registry);
    const kinds = [informers.for(podsRes), informers.for(claimsRes)];
    if (!shared) void informers.start(signal);
    void Promise.all(kinds.map((k) => k.synced)).then(() => {
      if (!signal.aborted) this.informers = informers;
    });
    await new Promise<void>((ok) => signal.addEventListener('abort', () => ok(), { once: true }));
    this.informers = undefined;
    if (!shared) await informers.stopped();
  }

  /** The pods bound to a node; `fresh`: read from the store now. */
  async podsOn(node: string, fresh: boolean): Promise<KubeObject[]> {
    if (!fresh && this.informers) return this.informers.byIndex(podsRes, 'node', node);
    const now = Date.now();
    const hit = this.pods.get(node);
    if (!fresh && hit && hit.until > now) return hit.pods;
    const list = await this.registry.list(podsRes, undefined, { fieldSelector: parseFieldSelector(`spec.nodeName=${node}`, kindFor(podsRes)) });
    if (this.pods.size > 1000) this.pods.clear();
    this.pods.set(node, { pods: list.items, until: now + this.ttlMs });
    return list.items;
  }

  /** A claim, or undefined when there is none; `fresh`: read from the store now. */
  async claim(namespace: string, name: string, fresh: boolean): Promise<KubeObject | undefined> {
    if (!fresh && this.informers) return this.informers.get(claimsRes, namespace, name);
    const key = `${namespace}/${name}`;
    const now = Date.now();
    const hit = this.claims.get(key);
    if (!fresh && hit && hit.until > now) return hit.claim;
    const claim = await this.registry.get(claimsRes, namespace, name).catch((e) => {
      if (e instanceof ApiError && e.code === 404) return undefined;
      throw e;
    });
    if (this.claims.size > 10_000) this.claims.clear();
    this.claims.set(key, { claim, until: now + this.ttlMs });
    return claim;
  }

  /** Whether a volume is a local-path volume on a node (its directory is there); undefined: no such volume. One get, no cache. */
  async localPathVolumeOf(node: string, name: string): Promise<boolean | undefined> {
    const pv = await this.registry.get(volumesRes, undefined, name).catch((e) => {
      if (e instanceof ApiError && e.code === 404) return undefined;
      throw e;
    });
    return pv && isLocalPathVolumeOf(pv, node);
  }

  /** Whether an object of a kind is related to a node through one of its pods. */
  async related(node: string, kind: 'secrets' | 'configmaps' | 'persistentvolumeclaims' | 'persistentvolumes' | 'serviceaccounts' | 'pods', namespace: string | undefined, name: string): Promise<boolean> {
    // A hit from the cache is an answer; a miss is confirmed with a fresh read (see the file comment).
    return (await this.relatedIn(node, kind, namespace, name, false)) || this.relatedIn(node, kind, namespace, name, true);
  }

  private async relatedIn(node: string, kind: string, namespace: string | undefined, name: string, fresh: boolean): Promise<boolean> {
    const pods = await this.podsOn(node, fresh);
    const inNs = (p: KubeObject) => p.metadata.namespace === namespace;
    switch (kind) {
      case 'pods':
        return pods.some((p) => inNs(p) && p.metadata.name === name);
      case 'secrets':
        return pods.some((p) => inNs(p) && podSecretNames(p).has(name));
      case 'configmaps':
        return pods.some((p) => inNs(p) && podConfigMapNames(p).has(name));
      case 'serviceaccounts':
        return pods.some((p) => inNs(p) && (p.spec?.serviceAccountName || 'default') === name);
      case 'persistentvolumeclaims':
        return pods.some((p) => inNs(p) && podClaimNames(p).has(name));
      case 'persistentvolumes':
        for (const p of pods) {
          for (const c of podClaimNames(p)) {
            const claim = await this.claim(p.metadata.namespace!, c, fresh);
            if (claim?.spec?.volumeName === name) return true;
          }
        }
        return false;
    }
    return false;
  }
}

// ---- the authorizer ----

const allow: AuthorizationResult = { decision: 'allow' };
const noOpinion = (reason?: string): AuthorizationResult => ({ decision: 'noOpinion', ...(reason ? { reason } : {}) });

/** The equality requirements of a field selector (kube's attrs.GetFieldSelector; "=" and "==" alike). */
function fieldEquals(selector: string | undefined, field: string, value: string): boolean {
  if (!selector) return false;
  return selector.split(',').some((term) => {
    const m = /^\s*([^=!\s]+)\s*==?\s*(.*?)\s*$/.exec(term);
    return !!m && m[1] === field && m[2] === value;
  });
}

/**
 * Kube's Node authorizer over a NodeGraph. Non-nodes: no opinion (the next authorizer decides). Costs:
 * nothing for requests the static rules decide; for related-object checks see NodeGraph.
 */
export function createNodeAuthorizer(graph: NodeGraph): Authorizer {
  const relation = async (node: string, kind: Parameters<NodeGraph['related']>[1], a: RequestAttributes): Promise<AuthorizationResult> => {
    if (!a.name) return noOpinion('No Object name found');
    if (await graph.related(node, kind, a.namespace, a.name)) return allow;
    return noOpinion(`no relationship found between node '${node}' and this object`);
  };
  const get = (node: string, kind: Parameters<NodeGraph['related']>[1], a: RequestAttributes) => {
    if (a.verb !== 'get') return noOpinion('can only get individual resources of this type');
    if (a.subresource) return noOpinion('cannot get subresource');
    return relation(node, kind, a);
  };
  return {
    async authorize(a) {
      const node = nodeIdentity(a.user);
      if (node === undefined) return noOpinion();
      if (!node) return noOpinion(`unknown node for user "${a.user.username}"`);
      if (a.resourceRequest) {
        const gr = `${a.group ?? ''}/${a.resource}`;
        switch (gr) {
          case '/secrets':
          case '/configmaps':
            if (!['get', 'list', 'watch'].includes(a.verb)) return noOpinion('can only read resources of this type');
            if (a.subresource) return noOpinion('cannot read subresource');
            if (!a.namespace) return noOpinion('can only read namespaced object of this type');
            return relation(node, a.resource as 'secrets' | 'configmaps', a);
          case '/persistentvolumeclaims':
            if (a.subresource === 'status') {
              if (a.verb !== 'update' && a.verb !== 'patch') return noOpinion('can only get/update/patch this type');
              return relation(node, 'persistentvolumeclaims', a);
            }
            return get(node, 'persistentvolumeclaims', a);
          case '/persistentvolumes': {
            const d = await get(node, 'persistentvolumes', a);
            // Skiff: a node removes the directories of its deleted local-path volumes, then their
            // finalizer (node-agent/volumes.ts startLocalPathCleaner); such a volume is bound to no pod
            // any more. So a node may also get, and update or patch (NodeRestriction: only to drop that
            // finalizer), the local-path volumes on itself, one by name (one get of the volume).
            if (d.decision === 'allow' || !a.name || a.subresource || !['get', 'update', 'patch'].includes(a.verb)) return d;
            // A volume that is gone may be read too (a 404): its directory is then an orphan to remove,
            // and all the node learns is that no volume has that name.
            const mine = await graph.localPathVolumeOf(node, a.name);
            return mine || (mine === undefined && a.verb === 'get') ? allow : d;
          }
          case '/serviceaccounts':
            if (a.verb !== 'create' || !a.name) return noOpinion('can only create tokens for individual service accounts');
            if (a.subresource !== 'token') return noOpinion('can only create token subresource of serviceaccount');
            return relation(node, 'serviceaccounts', a);
          case 'coordination.k8s.io/leases':
            if (!['get', 'create', 'update', 'patch', 'delete'].includes(a.verb)) return noOpinion('can only get, create, update, patch, or delete a node lease');
            if (a.namespace !== NODE_LEASE_NAMESPACE) return noOpinion(`can only access leases in the "${NODE_LEASE_NAMESPACE}" system namespace`);
            // No name on create: NodeRestriction checks the Lease's own.
            if (a.verb !== 'create' && a.name !== node) return noOpinion('can only access node lease with the same name as the requesting node');
            return allow;
          case '/nodes':
            return authorizeNode(node, a);
          case '/pods':
            return authorizePod(node, a, relation);
        }
      }
      return rulesAllow(a, NODE_RULES) ? allow : noOpinion();
    },
  };
}

function authorizeNode(node: string, a: RequestAttributes): AuthorizationResult {
  if (!a.subresource) {
    // Writes: NodeRestriction keeps a node to its own Node.
    if (['create', 'update', 'patch'].includes(a.verb)) return allow;
    if (['get', 'list', 'watch'].includes(a.verb)) {
      if (a.name === node) return allow;
      if (!a.name) return noOpinion(`node '${node}' cannot read all nodes, only its own Node object`);
      return noOpinion(`node '${node}' cannot read '${a.name}', only its own Node object`);
    }
  } else if (a.subresource === 'status' && (a.verb === 'update' || a.verb === 'patch')) {
    return allow;
  } else if (a.subresource === 'usage' && a.verb === 'update') {
    // Skiff: a node reports its own usage only (apiserver/node-usage.ts, `kubectl top` deployed).
    if (a.name === node) return allow;
    return noOpinion(`node '${node}' cannot report usage of '${a.name}', only its own`);
  }
  return noOpinion();
}

async function authorizePod(node: string, a: RequestAttributes, relation: (node: string, kind: 'pods', a: RequestAttributes) => Promise<AuthorizationResult>): Promise<AuthorizationResult> {
  if (!a.subresource) {
    switch (a.verb) {
      case 'get':
        return relation(node, 'pods', a);
      case 'list':
      case 'watch':
        if (fieldEquals(a.fieldSelector, 'spec.nodeName', node)) return allow;
        if (a.name) return relation(node, 'pods', a);
        return noOpinion('can only list/watch pods with spec.nodeName field selector');
      case 'create':
      case 'delete':
        // Mirror pods, and the node's own pods: NodeRestriction decides.
        return allow;
    }
  } else if (a.subresource === 'status' && (a.verb === 'update' || a.verb === 'patch')) {
    return allow;
  } else if (a.subresource === 'eviction' && a.verb === 'create') {
    return allow;
  }
  return noOpinion();
}

/**
 * UNTIL RBAC IS MERGED: what the default RBAC bindings give every authenticated user, and everything to
 * anyone not a node (today's behaviour for them). The chain in app.ts puts it after the Node authorizer,
 * where RBAC goes; the lead replaces it with RBAC. For a node it allows only system:discovery,
 * system:basic-user and system:public-info-viewer's rules (bound to system:authenticated in kube).
 */
export const untilRbac: Authorizer = {
  async authorize(a) {
    if (nodeIdentity(a.user) === undefined) return allow;
    return rulesAllow(a, AUTHENTICATED_RULES) ? allow : noOpinion();
  },
};

const AUTHENTICATED_RULES: PolicyRule[] = [
  { verbs: ['get'], nonResourceURLs: ['/livez', '/readyz', '/healthz', '/version', '/version/', '/openapi', '/openapi/*', '/api', '/api/*', '/apis', '/apis/*'] },
  rule(['create'], ['authorization.k8s.io'], ['selfsubjectaccessreviews', 'selfsubjectrulesreviews']),
  rule(['create'], ['authentication.k8s.io'], ['selfsubjectreviews']),
];
