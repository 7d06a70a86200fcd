// The RBAC objects every cluster starts with, as kube-apiserver 1.32 writes them at start
// (plugin/pkg/auth/authorizer/rbac/bootstrappolicy: policy.go, controller_policy.go; their expected
// output is its testdata/cluster-roles.yaml and cluster-role-bindings.yaml), plus one
// system:controller:<loop> ClusterRole for each of Skiff's control loops (lambdas/controllers/*),
// holding only what that loop reads and writes.
//
// ensureBootstrapPolicy writes them idempotently, as kube's RBAC post-start hook reconciles them: a
// missing object is created; an existing one annotated rbac.authorization.kubernetes.io/autoupdate
// "true" gets the rules it lacks (validation.Covers), the labels, annotations and aggregation selectors it
// lacks, and, for a binding, the subjects it lacks. Nothing is ever removed, so an administrator's
// additions stay; autoupdate "false" leaves an object alone. Run by `skiff up` at each start
// (local/server.ts) and by a deployed cluster's bootstrap resource (bootstrap/lambda.ts).

import { ApiError } from '../machinery/status.ts';
import { findResource } from '../machinery/resources.ts';
import type { KubeObject } from '../machinery/types.ts';
import { jsonEqual } from '../machinery/validation.ts';
import type { PolicyRule } from './auth.ts';
import type { Registry } from './registry.ts';
import { aggregateRoles, covers } from './rbac-rules.ts';

export const AUTOUPDATE_ANNOTATION = 'rbac.authorization.kubernetes.io/autoupdate';
const BOOTSTRAP_LABEL = { 'kubernetes.io/bootstrapping': 'rbac-defaults' };
const AGGREGATE_TO = (role: 'admin' | 'edit' | 'view') => `rbac.authorization.k8s.io/aggregate-to-${role}`;

const READ = ['get', 'list', 'watch'];
const READ_WRITE = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'];
const WRITE = ['create', 'delete', 'deletecollection', 'patch', 'update'];

/** rbac.NewRule(verbs...).Groups(groups...).Resources(resources...) [.Names(names...)], sorted as kube prints them. */
function rule(verbs: string[], groups: string[], resources: string[], names?: string[]): PolicyRule {
  return { apiGroups: groups, resources: [...resources].sort(), ...(names ? { resourceNames: names } : {}), verbs: [...verbs].sort() };
}
function urls(verbs: string[], paths: string[]): PolicyRule {
  return { nonResourceURLs: [...paths].sort(), verbs };
}
/** eventsRule(): events are recorded through either API. */
const EVENTS = rule(['create', 'update', 'patch'], ['', 'events.k8s.io'], ['events']);

interface RoleSpec {
  name: string;
  rules?: PolicyRule[];
  labels?: Record<string, string>;
  aggregate?: 'admin' | 'edit' | 'view';
}

/** ClusterRoles(): the user-facing and system roles. */
const CLUSTER_ROLES: RoleSpec[] = [
  { name: 'cluster-admin', rules: [rule(['*'], ['*'], ['*']), urls(['*'], ['*'])] },
  // Aggregated: the aggregation controller (controllers/clusterroleaggregation.ts) fills their rules.
  { name: 'admin', aggregate: 'admin' },
  { name: 'edit', aggregate: 'edit', labels: { [AGGREGATE_TO('admin')]: 'true' } },
  { name: 'view', aggregate: 'view', labels: { [AGGREGATE_TO('edit')]: 'true' } },
  {
    name: 'system:aggregate-to-admin',
    labels: { [AGGREGATE_TO('admin')]: 'true' },
    rules: [rule(['create'], ['authorization.k8s.io'], ['localsubjectaccessreviews']), rule(READ_WRITE, ['rbac.authorization.k8s.io'], ['roles', 'rolebindings'])],
  },
  {
    name: 'system:aggregate-to-edit',
    labels: { [AGGREGATE_TO('edit')]: 'true' },
    rules: [
      rule(READ, [''], ['pods/attach', 'pods/proxy', 'pods/exec', 'pods/portforward', 'secrets', 'services/proxy']),
      rule(['impersonate'], [''], ['serviceaccounts']),
      rule(WRITE, [''], ['pods', 'pods/attach', 'pods/proxy', 'pods/exec', 'pods/portforward']),
      rule(['create'], [''], ['pods/eviction']),
      rule(WRITE, [''], ['replicationcontrollers', 'replicationcontrollers/scale', 'serviceaccounts', 'services', 'services/proxy', 'persistentvolumeclaims', 'configmaps', 'secrets', 'events']),
      rule(['create'], [''], ['serviceaccounts/token']),
      rule(WRITE, ['apps'], ['statefulsets', 'statefulsets/scale', 'daemonsets', 'deployments', 'deployments/scale', 'deployments/rollback', 'replicasets', 'replicasets/scale']),
      rule(WRITE, ['autoscaling'], ['horizontalpodautoscalers']),
      rule(WRITE, ['batch'], ['jobs', 'cronjobs']),
      rule(WRITE, ['extensions'], ['daemonsets', 'deployments', 'deployments/scale', 'deployments/rollback', 'ingresses', 'replicasets', 'replicasets/scale', 'replicationcontrollers/scale', 'networkpolicies']),
      rule(WRITE, ['policy'], ['poddisruptionbudgets']),
      rule(WRITE, ['networking.k8s.io'], ['ingresses', 'networkpolicies']),
      rule(READ_WRITE, ['coordination.k8s.io'], ['leases']),
    ],
  },
  {
    name: 'system:aggregate-to-view',
    labels: { [AGGREGATE_TO('view')]: 'true' },
    rules: [
      rule(READ, [''], ['pods', 'replicationcontrollers', 'replicationcontrollers/scale', 'serviceaccounts', 'services', 'services/status', 'endpoints', 'persistentvolumeclaims', 'persistentvolumeclaims/status', 'configmaps']),
      rule(READ, [''], ['limitranges', 'resourcequotas', 'bindings', 'events', 'pods/status', 'resourcequotas/status', 'namespaces/status', 'replicationcontrollers/status', 'pods/log']),
      rule(READ, [''], ['namespaces']),
      rule(READ, ['discovery.k8s.io'], ['endpointslices']),
      rule(READ, ['apps'], ['controllerrevisions', 'statefulsets', 'statefulsets/status', 'statefulsets/scale', 'daemonsets', 'daemonsets/status', 'deployments', 'deployments/status', 'deployments/scale', 'replicasets', 'replicasets/status', 'replicasets/scale']),
      rule(READ, ['autoscaling'], ['horizontalpodautoscalers', 'horizontalpodautoscalers/status']),
      rule(READ, ['batch'], ['jobs', 'cronjobs', 'cronjobs/status', 'jobs/status']),
      rule(READ, ['extensions'], ['daemonsets', 'daemonsets/status', 'deployments', 'deployments/scale', 'deployments/status', 'ingresses', 'ingresses/status', 'replicasets', 'replicasets/scale', 'replicasets/status', 'replicationcontrollers/scale', 'networkpolicies']),
      rule(READ, ['policy'], ['poddisruptionbudgets', 'poddisruptionbudgets/status']),
      rule(READ, ['networking.k8s.io'], ['ingresses', 'ingresses/status', 'networkpolicies']),
    ],
  },
  {
    // metrics-server's: `kubectl top` for whoever may view (metrics.k8s.io is served here, not aggregated).
    name: 'system:aggregated-metrics-reader',
    labels: { [AGGREGATE_TO('view')]: 'true', [AGGREGATE_TO('edit')]: 'true', [AGGREGATE_TO('admin')]: 'true' },
    rules: [rule(READ, ['metrics.k8s.io'], ['pods', 'nodes'])],
  },
  {
    name: 'system:basic-user',
    rules: [rule(['create'], ['authorization.k8s.io'], ['selfsubjectaccessreviews', 'selfsubjectrulesreviews']), rule(['create'], ['authentication.k8s.io'], ['selfsubjectreviews'])],
  },
  { name: 'system:discovery', rules: [urls(['get'], ['/api', '/api/*', '/apis', '/apis/*', '/healthz', '/livez', '/openapi', '/openapi/*', '/readyz', '/version', '/version/'])] },
  { name: 'system:public-info-viewer', rules: [urls(['get'], ['/healthz', '/livez', '/readyz', '/version', '/version/'])] },
  { name: 'system:monitoring', rules: [urls(['get'], ['/healthz', '/healthz/*', '/livez', '/livez/*', '/metrics', '/metrics/slis', '/readyz', '/readyz/*'])] },
  { name: 'system:service-account-issuer-discovery', rules: [urls(['get'], ['/.well-known/openid-configuration', '/openid/v1/jwks'])] },
  {
    name: 'system:auth-delegator',
    rules: [rule(['create'], ['authentication.k8s.io'], ['tokenreviews']), rule(['create'], ['authorization.k8s.io'], ['subjectaccessreviews'])],
  },
  {
    name: 'system:node',
    rules: [
      rule(['create'], ['authentication.k8s.io'], ['tokenreviews']),
      rule(['create'], ['authorization.k8s.io'], ['subjectaccessreviews', 'localsubjectaccessreviews']),
      rule(READ, [''], ['services']),
      rule(['create', 'get', 'list', 'watch'], [''], ['nodes']),
      rule(['update', 'patch'], [''], ['nodes/status']),
      rule(['update', 'patch'], [''], ['nodes']),
      rule(['create', 'update', 'patch'], [''], ['events']),
      rule(READ, [''], ['pods']),
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
      rule(READ, ['storage.k8s.io'], ['csidrivers']),
      rule(['create', 'delete', 'get', 'patch', 'update'], ['storage.k8s.io'], ['csinodes']),
      rule(READ, ['node.k8s.io'], ['runtimeclasses']),
    ],
  },
  {
    name: 'system:node-proxier',
    rules: [rule(['list', 'watch'], [''], ['services', 'endpoints']), rule(READ, [''], ['nodes']), EVENTS, rule(['list', 'watch'], ['discovery.k8s.io'], ['endpointslices'])],
  },
  {
    name: 'system:kube-scheduler',
    rules: [
      EVENTS,
      rule(['create'], ['coordination.k8s.io'], ['leases']),
      rule(['get', 'update'], ['coordination.k8s.io'], ['leases'], ['kube-scheduler']),
      // Skiff's scheduler reserves a node's resources in a Lease per node (skiff-alloc-<node>, scheduler/reservation.ts).
      rule(['get', 'list', 'watch', 'create', 'update', 'delete'], ['coordination.k8s.io'], ['leases']),
      rule(READ, ['storage.k8s.io'], ['storageclasses']),
      rule(READ, [''], ['nodes']),
      rule(['delete', 'get', 'list', 'watch'], [''], ['pods']),
      rule(['create'], [''], ['bindings', 'pods/binding']),
      rule(['patch', 'update'], [''], ['pods/status']),
      rule(READ, [''], ['replicationcontrollers', 'services']),
      rule(READ, ['apps', 'extensions'], ['replicasets']),
      rule(READ, ['apps'], ['statefulsets']),
      rule(READ, ['policy'], ['poddisruptionbudgets']),
      rule(READ, [''], ['persistentvolumeclaims', 'persistentvolumes']),
      rule(['create'], ['authentication.k8s.io'], ['tokenreviews']),
      rule(['create'], ['authorization.k8s.io'], ['subjectaccessreviews']),
      rule(READ, ['storage.k8s.io'], ['csinodes']),
      rule(READ, [''], ['namespaces']),
      rule(READ, ['storage.k8s.io'], ['csidrivers']),
      rule(READ, ['storage.k8s.io'], ['csistoragecapacities']),
    ],
  },
  {
    // The scheduler's VolumeBinding plugin writes a claim's selected node and binds volumes to claims.
    name: 'system:volume-scheduler',
    rules: [rule(['get', 'list', 'patch', 'update', 'watch'], [''], ['persistentvolumes']), rule(READ, ['storage.k8s.io'], ['storageclasses']), rule(['get', 'list', 'patch', 'update', 'watch'], [''], ['persistentvolumeclaims'])],
  },
];

/**
 * One role per Skiff control loop (kube's controller_policy.go names them system:controller:<name>): what
 * the loop lists and watches through its caches, and the writes it makes (status through the status
 * subresource), each with EVENTS for the events it records.
 */
const CONTROLLER_ROLES: RoleSpec[] = [
  { name: 'namespace-controller', rules: [rule(['get', 'list', 'watch', 'delete'], [''], ['namespaces']), rule(['update'], [''], ['namespaces/finalize', 'namespaces/status']), rule(['get', 'list', 'delete', 'deletecollection'], ['*'], ['*'])] },
  { name: 'crd-controller', rules: [rule(READ, ['apiextensions.k8s.io'], ['customresourcedefinitions']), rule(['update'], ['apiextensions.k8s.io'], ['customresourcedefinitions', 'customresourcedefinitions/status']), rule(['list', 'delete', 'deletecollection'], ['*'], ['*'])] },
  { name: 'replication-controller', rules: [rule(['get', 'list', 'watch', 'update'], [''], ['replicationcontrollers']), rule(['update'], [''], ['replicationcontrollers/status']), rule(['list', 'watch', 'patch', 'update', 'create', 'delete'], [''], ['pods']), EVENTS] },
  { name: 'replicaset-controller', rules: [rule(['get', 'list', 'watch', 'update'], ['apps'], ['replicasets']), rule(['update'], ['apps'], ['replicasets/status']), rule(['list', 'watch', 'patch', 'update', 'create', 'delete'], [''], ['pods']), EVENTS] },
  {
    name: 'deployment-controller',
    rules: [rule(['get', 'list', 'watch', 'update'], ['apps'], ['deployments']), rule(['update'], ['apps'], ['deployments/status']), rule(['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], ['apps'], ['replicasets']), rule(['get', 'list', 'watch', 'update'], [''], ['pods']), EVENTS],
  },
  {
    name: 'daemon-set-controller',
    rules: [rule(READ, ['apps'], ['daemonsets']), rule(['update'], ['apps'], ['daemonsets/status']), rule(READ, [''], ['nodes']), rule(['list', 'watch', 'create', 'delete', 'patch', 'update'], [''], ['pods']), rule(['create'], [''], ['pods/binding']), rule(['create', 'delete', 'list', 'patch', 'update', 'watch'], ['apps'], ['controllerrevisions']), EVENTS],
  },
  {
    name: 'statefulset-controller',
    rules: [rule(READ, ['apps'], ['statefulsets']), rule(['update'], ['apps'], ['statefulsets/status']), rule(['get', 'list', 'watch', 'create', 'delete', 'update', 'patch'], [''], ['pods']), rule(['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], ['apps'], ['controllerrevisions']), rule(['get', 'list', 'watch', 'create', 'update', 'patch'], [''], ['persistentvolumeclaims']), EVENTS],
  },
  { name: 'job-controller', rules: [rule(['get', 'list', 'watch', 'update', 'patch', 'delete'], ['batch'], ['jobs']), rule(['update', 'patch'], ['batch'], ['jobs/status']), rule(['update'], ['batch'], ['jobs/finalizers']), rule(['get', 'list', 'watch', 'create', 'delete', 'patch', 'update'], [''], ['pods']), EVENTS] },
  { name: 'cronjob-controller', rules: [rule(['get', 'list', 'watch', 'update'], ['batch'], ['cronjobs']), rule(['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], ['batch'], ['jobs']), rule(['update'], ['batch'], ['cronjobs/status']), rule(['list', 'delete'], [''], ['pods']), EVENTS] },
  // kube's, plus get nodes: Skiff reads pod usage from the nodes' agents where kube asks metrics-server.
  {
    name: 'horizontal-pod-autoscaler',
    rules: [
      rule(READ, ['autoscaling'], ['horizontalpodautoscalers']),
      rule(['update'], ['autoscaling'], ['horizontalpodautoscalers/status']),
      rule(['get', 'update'], ['*'], ['*/scale']),
      rule(['list', 'watch'], [''], ['pods']),
      rule(['get'], [''], ['pods', 'nodes']),
      rule(['list'], ['metrics.k8s.io'], ['pods']),
      rule(['get', 'list'], ['custom.metrics.k8s.io'], ['*']),
      rule(['get', 'list'], ['external.metrics.k8s.io'], ['*']),
      EVENTS,
    ],
  },
  { name: 'generic-garbage-collector', rules: [rule(['get', 'list', 'watch', 'patch', 'update', 'delete'], ['*'], ['*'])] },
  {
    name: 'endpoint-controller',
    rules: [rule(READ, [''], ['services', 'pods']), rule(['get', 'list', 'create', 'update', 'delete'], [''], ['endpoints']), rule(['create', 'delete', 'get', 'list', 'update'], ['discovery.k8s.io'], ['endpointslices']), EVENTS],
  },
  // kube's two, plus the reads Skiff's loops make where kube's read their informers.
  { name: 'serviceaccount-controller', rules: [rule(['create'], [''], ['serviceaccounts']), rule(READ, [''], ['serviceaccounts', 'namespaces']), EVENTS] },
  { name: 'root-ca-cert-publisher', rules: [rule(['create', 'update'], [''], ['configmaps']), rule(READ, [''], ['configmaps', 'namespaces']), EVENTS] },
  // Quota counts anything for reconciliation, so it needs full viewing powers (kube's words); Skiff's loop
  // also reads a quota from the store before its status write.
  {
    name: 'resourcequota-controller',
    rules: [rule(['list', 'watch'], ['*'], ['*']), rule(['get'], [''], ['resourcequotas']), rule(['update'], [''], ['resourcequotas/status']), EVENTS],
  },
  {
    name: 'clusterresourcequota-controller',
    rules: [rule(['list', 'watch'], ['*'], ['*']), rule(['get'], ['quota.skiff.io'], ['clusterresourcequotas']), rule(['update'], ['quota.skiff.io'], ['clusterresourcequotas/status']), EVENTS],
  },
  {
    name: 'persistent-volume-binder',
    rules: [
      rule(['create', 'delete', 'get', 'list', 'update', 'watch'], [''], ['persistentvolumes']),
      rule(['update'], [''], ['persistentvolumes/status']),
      rule(['get', 'list', 'update', 'watch'], [''], ['persistentvolumeclaims']),
      rule(['update'], [''], ['persistentvolumeclaims/status']),
      rule(READ, [''], ['pods', 'nodes']),
      rule(READ, ['storage.k8s.io'], ['storageclasses']),
      EVENTS,
    ],
  },
  { name: 'disruption-controller', rules: [rule(READ, ['apps'], ['deployments', 'replicasets', 'statefulsets']), rule(READ, [''], ['replicationcontrollers', 'pods']), rule(READ, ['policy'], ['poddisruptionbudgets']), rule(['update'], ['policy'], ['poddisruptionbudgets/status']), EVENTS] },
  { name: 'node-controller', rules: [rule(['get', 'list', 'update', 'patch', 'delete', 'watch'], [''], ['nodes']), rule(['patch', 'update'], [''], ['nodes/status']), rule(['delete', 'list', 'watch', 'get'], [''], ['pods']), rule(['update'], [''], ['pods/status']), rule(READ, ['coordination.k8s.io'], ['leases']), EVENTS] },
  { name: 'route-controller', rules: [rule(['list', 'watch'], [''], ['nodes']), rule(['patch'], [''], ['nodes/status']), EVENTS] },
  // kube's clusterrole-aggregation-controller: escalate, because an aggregated role holds what it gathers.
  { name: 'clusterrole-aggregation-controller', rules: [rule(['escalate', 'get', 'list', 'watch', 'update', 'patch'], ['rbac.authorization.k8s.io'], ['clusterroles'])] },
];

/** ClusterRoleBindings(): who holds the system roles (none for system:node: the Node authorizer decides). */
const CLUSTER_ROLE_BINDINGS: { name: string; users?: string[]; groups?: string[]; serviceAccounts?: [string, string][] }[] = [
  { name: 'cluster-admin', groups: ['system:masters'] },
  { name: 'system:basic-user', groups: ['system:authenticated'] },
  { name: 'system:discovery', groups: ['system:authenticated'] },
  { name: 'system:public-info-viewer', groups: ['system:authenticated', 'system:unauthenticated'] },
  { name: 'system:monitoring', groups: ['system:monitoring'] },
  { name: 'system:node' },
  { name: 'system:node-proxier', users: ['system:kube-proxy'] },
  { name: 'system:kube-scheduler', users: ['system:kube-scheduler'] },
  { name: 'system:volume-scheduler', users: ['system:kube-scheduler'] },
  { name: 'system:service-account-issuer-discovery', groups: ['system:serviceaccounts'] },
  // Controller roles are bound to kube-system service accounts named for them, as kube binds its own.
  ...CONTROLLER_ROLES.map((r) => ({ name: `system:controller:${r.name}`, serviceAccounts: [['kube-system', r.name] as [string, string]] })),
];

const meta = (name: string, labels?: Record<string, string>) => ({ name, labels: { ...BOOTSTRAP_LABEL, ...labels }, annotations: { [AUTOUPDATE_ANNOTATION]: 'true' } });

/** The default ClusterRoles as objects to write. */
export function bootstrapClusterRoles(): KubeObject[] {
  const roles = [...CLUSTER_ROLES, ...CONTROLLER_ROLES.map((r) => ({ ...r, name: `system:controller:${r.name}` }))];
  // admin, edit and view are written already gathered from the bootstrap roles (the aggregation controller
  // adds what later roles bring): a fresh cluster never serves them empty or half-filled.
  return aggregateRoles(roles.map((r) => ({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: meta(r.name, r.labels),
    ...(r.aggregate ? { aggregationRule: { clusterRoleSelectors: [{ matchLabels: { [AGGREGATE_TO(r.aggregate)]: 'true' } }] } } : {}),
    ...(r.rules ? { rules: r.rules } : {}),
  })));
}

/** The default ClusterRoleBindings as objects to write. */
export function bootstrapClusterRoleBindings(): KubeObject[] {
  return CLUSTER_ROLE_BINDINGS.map((b) => ({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: meta(b.name),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: b.name },
    subjects: [
      ...(b.groups ?? []).map((name) => ({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name })),
      ...(b.users ?? []).map((name) => ({ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name })),
      ...(b.serviceAccounts ?? []).map(([namespace, name]) => ({ kind: 'ServiceAccount', name, namespace })),
    ],
  }));
}

/** What reconciliation adds to an existing object (undefined: nothing to add). */
function reconciled(existing: KubeObject, want: KubeObject): KubeObject | undefined {
  if (existing.metadata.annotations?.[AUTOUPDATE_ANNOTATION] === 'false') return undefined;
  const out = structuredClone(existing);
  out.metadata.labels = { ...want.metadata.labels, ...existing.metadata.labels };
  out.metadata.annotations = { ...want.metadata.annotations, ...existing.metadata.annotations };
  if (want.kind === 'ClusterRole') {
    const missing = (want.rules ?? []).filter((r: PolicyRule) => !covers(existing.rules ?? [], [r]).covered);
    if (missing.length) out.rules = [...(existing.rules ?? []), ...missing];
    const wantSel = want.aggregationRule?.clusterRoleSelectors ?? [];
    if (wantSel.length) {
      const have = existing.aggregationRule?.clusterRoleSelectors ?? [];
      const add = wantSel.filter((s: unknown) => !have.some((h: unknown) => jsonEqual(h, s)));
      if (add.length) out.aggregationRule = { clusterRoleSelectors: [...have, ...add] };
    }
  } else {
    const have = existing.subjects ?? [];
    const add = (want.subjects ?? []).filter((s: any) => !have.some((h: any) => h.kind === s.kind && h.name === s.name && (h.namespace ?? '') === (s.namespace ?? '')));
    if (add.length) out.subjects = [...have, ...add];
  }
  return jsonEqual(out, existing) ? undefined : out;
}

/** Creates what is missing and adds what autoupdated objects lack (see the top of the file). */
export async function ensureBootstrapPolicy(registry: Pick<Registry, 'get' | 'create' | 'update'>): Promise<void> {
  const clusterRoles = findResource('rbac.authorization.k8s.io', 'v1', 'clusterroles')!;
  const bindings = findResource('rbac.authorization.k8s.io', 'v1', 'clusterrolebindings')!;
  const write = async (res: typeof clusterRoles, want: KubeObject) => {
    for (let attempt = 0; attempt < 5; attempt++) {
      const existing = await registry.get(res, undefined, want.metadata.name!).catch((e) => {
        if (e instanceof ApiError && e.code === 404) return undefined;
        throw e;
      });
      try {
        if (!existing) return void (await registry.create(res, undefined, want));
        const next = reconciled(existing, want);
        if (next) await registry.update(res, undefined, want.metadata.name!, next);
        return;
      } catch (e) {
        // Another writer (a second apiserver starting, the aggregation controller) got there first: again.
        if (!(e instanceof ApiError && (e.code === 409 || e.reason === 'AlreadyExists'))) throw e;
      }
    }
  };
  for (const r of bootstrapClusterRoles()) await write(clusterRoles, r);
  for (const b of bootstrapClusterRoleBindings()) await write(bindings, b);
}
