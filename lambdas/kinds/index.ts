// The one list of served kinds, and the live registry built from it. The apiserver's store, the request
// pipeline, discovery and OpenAPI find kinds here (machinery/resources.ts re-exports the lookups for the
// controllers, scheduler and node agent). Kinds can be registered and removed at run time, as custom
// resources will be; whoever caches something derived from the list (OpenAPI documents) listens to
// onChange.
//
// Adding a built-in kind: write lambdas/kinds/<group or core>/<kind>.ts and add it to BUILT_IN_KINDS.

import type { KindStrategy, ResourceInfo } from './kind.ts';
import { namespace } from './core/namespace.ts';
import { pod } from './core/pod.ts';
import { service } from './core/service.ts';
import { endpoints } from './core/endpoints.ts';
import { replicationController } from './core/replicationcontroller.ts';
import { node } from './core/node.ts';
import { event } from './core/event.ts';
import { configMap } from './core/configmap.ts';
import { secret } from './core/secret.ts';
import { resourceQuota } from './core/resourcequota.ts';
import { clusterResourceQuota } from './quota/clusterresourcequota.ts';
import { serviceAccount } from './core/serviceaccount.ts';
import { lease } from './coordination/lease.ts';
import { tokenReview } from './authentication/tokenreview.ts';
import { selfSubjectReview } from './authentication/selfsubjectreview.ts';
import { subjectAccessReview } from './authorization/subjectaccessreview.ts';
import { localSubjectAccessReview } from './authorization/localsubjectaccessreview.ts';
import { selfSubjectAccessReview } from './authorization/selfsubjectaccessreview.ts';
import { nodeMetricsKind, podMetricsKind } from './metrics/metrics.ts';
import { selfSubjectRulesReview } from './authorization/selfsubjectrulesreview.ts';
import { customResourceDefinition } from './apiextensions/customresourcedefinition.ts';
import { endpointSlice } from './discovery/endpointslice.ts';
import { podTemplate } from './core/podtemplate.ts';
import { limitRange } from './core/limitrange.ts';
import { ingress } from './networking/ingress.ts';
import { ingressClass } from './networking/ingressclass.ts';
import { networkPolicy } from './networking/networkpolicy.ts';
import { podDisruptionBudget } from './policy/poddisruptionbudget.ts';
import { role } from './rbac/role.ts';
import { clusterRole } from './rbac/clusterrole.ts';
import { roleBinding } from './rbac/rolebinding.ts';
import { clusterRoleBinding } from './rbac/clusterrolebinding.ts';
import { storageClass } from './storage/storageclass.ts';
import { priorityClass } from './scheduling/priorityclass.ts';
import { persistentVolume } from './core/persistentvolume.ts';
import { persistentVolumeClaim } from './core/persistentvolumeclaim.ts';
import { controllerRevision } from './apps/controllerrevision.ts';
import { daemonSet } from './apps/daemonset.ts';
import { deployment } from './apps/deployment.ts';
import { replicaSet } from './apps/replicaset.ts';
import { statefulSet } from './apps/statefulset.ts';
import { horizontalPodAutoscaler, horizontalPodAutoscalerV1 } from './autoscaling/horizontalpodautoscaler.ts';
import { cronJob } from './batch/cronjob.ts';
import { job } from './batch/job.ts';
import { accessEntry } from './iam/accessentry.ts';
import { validatingAdmissionPolicy } from './admissionregistration/validatingadmissionpolicy.ts';
import { validatingAdmissionPolicyBinding } from './admissionregistration/validatingadmissionpolicybinding.ts';
import { mutatingWebhookConfiguration, validatingWebhookConfiguration } from './admissionregistration/webhookconfigurations.ts';

/**
 * The kinds every Skiff serves, in discovery order: the core group first, then the named groups in the
 * order kube-apiserver lists them (by the group priorities of its APIServices, highest first:
 * pkg/controlplane/apiserver/aggregator.go's apiVersionPriorities, apps 17800, authentication.k8s.io 17700,
 * authorization.k8s.io 17600, autoscaling 17500, batch 17400 ...
 * networking.k8s.io 17200, policy 17100, rbac.authorization.k8s.io 17000, storage.k8s.io 16800, apiextensions.k8s.io 16700,
 * scheduling.k8s.io 16600, coordination.k8s.io 16500, discovery.k8s.io 16200).
 */
export const BUILT_IN_KINDS: readonly KindStrategy[] = [
  namespace,
  pod,
  podTemplate,
  service,
  endpoints,
  replicationController,
  node,
  event,
  limitRange,
  configMap,
  secret,
  serviceAccount,
  resourceQuota,
  persistentVolumeClaim,
  persistentVolume,
  controllerRevision,
  daemonSet,
  deployment,
  replicaSet,
  statefulSet,
  selfSubjectReview,
  tokenReview,
  localSubjectAccessReview,
  selfSubjectAccessReview,
  selfSubjectRulesReview,
  subjectAccessReview,
  // autoscaling (17500): v2 first, the preferred version and the one stored; v1 is converted from it.
  horizontalPodAutoscaler,
  horizontalPodAutoscalerV1,
  cronJob,
  job,
  ingress,
  ingressClass,
  networkPolicy,
  podDisruptionBudget,
  clusterRoleBinding,
  clusterRole,
  roleBinding,
  role,
  storageClass,
  // admissionregistration.k8s.io shares 16700 with apiextensions.k8s.io; ties go by group name.
  mutatingWebhookConfiguration,
  validatingAdmissionPolicy,
  validatingAdmissionPolicyBinding,
  validatingWebhookConfiguration,
  customResourceDefinition,
  priorityClass,
  lease,
  endpointSlice,
  // metrics.k8s.io: metrics-server's APIService asks priority 100, after every built-in group.
  nodeMetricsKind,
  podMetricsKind,
  // Skiff's own groups, after the upstream ones (kube-apiserver lists aggregated groups last).
  accessEntry,
  clusterResourceQuota,
];

const byResource = (group: string, version: string, resource: string) => `${group}/${version}/${resource}`;
const byKind = (group: string, version: string, kind: string) => `${group}/${version}/${kind}`;

/**
 * The strategy of every ResourceInfo served by some registry, so kindFor() finds the kinds of a layered
 * registry (below) from the ResourceInfo a request resolved, without knowing which server it came from.
 */
const servedInfos = new WeakMap<ResourceInfo, KindStrategy>();

/**
 * The served kinds, in registration order, with lookups by resource and by kind.
 *
 * A registry may be layered over a parent (`new KindRegistry([], kinds)`): it serves the parent's kinds
 * (live: the parent's registrations show through and fire this one's listeners) plus its own. Each
 * ApiServer serves custom resources from its own layer over the process-wide `kinds` (apiserver/crds.ts),
 * because custom resources belong to a store: tests run several ApiServers on different stores in one
 * process, and a CRD of one must not be served by another.
 */
export class KindRegistry {
  private kinds: KindStrategy[] = [];
  private resources = new Map<string, KindStrategy>();
  private kindNames = new Map<string, KindStrategy>();
  private listeners = new Set<() => void>();
  private merged: readonly KindStrategy[] | undefined;

  constructor(
    initial: readonly KindStrategy[] = [],
    private readonly parent?: KindRegistry,
  ) {
    for (const k of initial) this.add(k);
    // A weak link: a parent that outlives its layers (the process-wide registry) must not keep them alive.
    if (parent) {
      const self = new WeakRef(this);
      const stop = parent.onChange(() => {
        const me = self.deref();
        if (!me) return void stop();
        me.changed();
      });
    }
  }

  /** Serves a kind from now on. A group/version/resource or group/version/kind already served is an error. */
  register(kind: KindStrategy): void {
    this.add(kind);
    this.changed();
  }

  /** Stops serving a kind; false if it was not served. */
  unregister(group: string, version: string, resource: string): boolean {
    const kind = this.resources.get(byResource(group, version, resource));
    if (!kind) return false;
    this.kinds = this.kinds.filter((k) => k !== kind);
    servedInfos.delete(kind.info);
    this.resources.delete(byResource(group, version, resource));
    this.kindNames.delete(byKind(group, version, kind.info.kind));
    this.changed();
    return true;
  }

  /** Every served kind, in registration order (the order discovery lists them). */
  all(): readonly KindStrategy[] {
    if (!this.parent) return this.kinds;
    return (this.merged ??= [...this.parent.all(), ...this.kinds]);
  }

  /** Kinds registered in this registry itself (not its parent's). */
  own(): readonly KindStrategy[] {
    return this.kinds;
  }

  forResource(group: string, version: string, resource: string): KindStrategy | undefined {
    return this.resources.get(byResource(group, version, resource)) ?? this.parent?.forResource(group, version, resource);
  }

  forKind(group: string, version: string, kind: string): KindStrategy | undefined {
    return this.kindNames.get(byKind(group, version, kind)) ?? this.parent?.forKind(group, version, kind);
  }

  /** Served API groups (excluding the core group), in discovery order, with their versions. */
  groups(): { group: string; versions: string[] }[] {
    const out: { group: string; versions: string[] }[] = [];
    for (const { info: r } of this.all()) {
      if (!r.group) continue;
      const g = out.find((x) => x.group === r.group);
      if (!g) out.push({ group: r.group, versions: [r.version] });
      else if (!g.versions.includes(r.version)) g.versions.push(r.version);
    }
    return out;
  }

  /** Calls `listener` after every register and unregister; returns the function that stops it. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private add(kind: KindStrategy): void {
    const { group, version, resource } = kind.info;
    const rk = byResource(group, version, resource);
    const kk = byKind(group, version, kind.info.kind);
    if (this.forResource(group, version, resource)) throw new Error(`kind registry: ${resource} in ${group || 'core'}/${version} is already served`);
    if (this.forKind(group, version, kind.info.kind)) throw new Error(`kind registry: ${kind.info.kind} in ${group || 'core'}/${version} is already served`);
    this.kinds.push(kind);
    this.resources.set(rk, kind);
    this.kindNames.set(kk, kind);
    servedInfos.set(kind.info, kind);
  }

  private changed(): void {
    this.merged = undefined;
    for (const l of this.listeners) l();
  }
}

/** The registry this process serves. */
export const kinds = new KindRegistry(BUILT_IN_KINDS);

/** The ResourceInfo of every served kind, in discovery order. A live binding: it follows registrations. */
export let RESOURCES: readonly ResourceInfo[] = kinds.all().map((k) => k.info);
kinds.onChange(() => {
  RESOURCES = kinds.all().map((k) => k.info);
});

export function findResource(group: string, version: string, resource: string): ResourceInfo | undefined {
  return kinds.forResource(group, version, resource)?.info;
}

/** Look a kind up by the apiVersion and kind written in an object. */
export function findKind(apiVersion: string, kind: string): ResourceInfo | undefined {
  const slash = apiVersion.indexOf('/');
  // "v1" is the core group; "/v1" names no group at all.
  if (slash === 0) return undefined;
  return (slash < 0 ? kinds.forKind('', apiVersion, kind) : kinds.forKind(apiVersion.slice(0, slash), apiVersion.slice(slash + 1), kind))?.info;
}

/**
 * The strategy serving `res`. A ResourceInfo no longer served (its kind was unregistered while a request
 * held it) gets the generic store's rules only.
 */
export function kindFor(res: ResourceInfo): KindStrategy {
  return kinds.forResource(res.group, res.version, res.resource) ?? servedInfos.get(res) ?? { info: res };
}

/** Served API groups (excluding the core group), in discovery order, with their versions. */
export function apiGroups(): { group: string; versions: string[] }[] {
  return kinds.groups();
}
