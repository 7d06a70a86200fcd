// The admission chain: plugins that see every write after authorization and before storage, as
// kube-apiserver's admission plugins do. Defaulting and validation of each kind run inside the
// registry's write path (Kubernetes' "strategy"), so they also guard writes that bypass HTTP.

import type { ResourceInfo } from '../machinery/resources.ts';
import type { KubeObject } from '../machinery/types.ts';
import { ApiError, errors } from '../machinery/status.ts';
import type { Registry } from './registry.ts';
import type { Authorizer, UserInfo } from './auth.ts';
import { defaultTolerationSeconds } from './admission-tolerations.ts';
import { priorityAdmission } from './admission-priority.ts';
import { defaultStorageClassAdmission, storageObjectInUseProtection } from './admission-storage.ts';
import { rbacEscalationCheck } from './admission-rbac.ts';
import { nodeRestriction } from './admission-noderestriction.ts';
import { podSecurityAdmission } from './admission-podsecurity.ts';
import { limitRanger } from './admission-limitranger.ts';
import { validatingAdmissionPolicy } from './admission-policy.ts';
import { mutatingAdmissionWebhook, validatingAdmissionWebhook } from './admission-webhooks.ts';
import { serviceAccountAdmission } from './admission-serviceaccount.ts';
import { namespaceOf } from './admission-match.ts';

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface AdmissionRequest {
  operation: Operation;
  resource: ResourceInfo;
  subresource?: string;
  namespace?: string;
  name?: string;
  /** The incoming object (CREATE/UPDATE); plugins may mutate it. */
  object?: KubeObject;
  /** The object as stored, for an UPDATE or DELETE (read by the write itself: no read of the plugin's). */
  oldObject?: KubeObject;
  user: UserInfo;
  /** The server's authorizer chain, for admission CEL's `authorizer` checks (cel-authorizer.ts). */
  authorizer?: Authorizer;
  /** Warnings for the client (kube's warning.AddWarning): the server sends them as `Warning:` headers. */
  warnings?: string[];
  /** Audit annotations (kube's audit.AddAuditAnnotations), for the audit log to record with the request. */
  annotations?: Record<string, string>;
  /** ?dryRun=All: webhooks without sideEffects None/NoneOnDryRun are not called (kube's rule). */
  dryRun?: boolean;
}

export interface AdmissionPlugin {
  name: string;
  admit(req: AdmissionRequest, registry: Registry): Promise<void>;
}

/** NamespaceLifecycle: objects may only be created in a namespace that exists and is not terminating. */
export const namespaceLifecycle: AdmissionPlugin = {
  name: 'NamespaceLifecycle',
  async admit(req, registry) {
    if (req.operation !== 'CREATE' || !req.resource.namespaced || !req.namespace) return;
    // Subresource creates (pods/binding) act on an existing object; its namespace was checked then.
    if (req.subresource) return;
    // One read of the namespace per request, shared with PodSecurity and the policies (admission-match.ts).
    const ns = await namespaceOf(req, registry);
    if (!ns) throw errors.notFound('namespaces', '', req.namespace);
    if (ns.metadata.deletionTimestamp || ns.status?.phase === 'Terminating') {
      throw new ApiError(
        'Forbidden',
        `${req.resource.resource} "${req.object?.metadata?.name ?? req.object?.metadata?.generateName ?? ''}" is forbidden: unable to create new content in namespace ${req.namespace} because it is being terminated`,
        { name: req.object?.metadata?.name, kind: req.resource.resource, causes: [{ reason: 'NamespaceTerminating', message: `namespace ${req.namespace} is being terminated`, field: 'metadata.namespace' }] },
      );
    }
  },
};

// DefaultTolerationSeconds: pods tolerate not-ready/unreachable nodes for 300 s before eviction.
// Priority: a pod's priorityClassName becomes its spec.priority (admission-priority.ts).
// DefaultStorageClass and StorageObjectInUseProtection: claims get the default class, claims and volumes
// their protection finalizers (admission-storage.ts).
// LimitRanger: LimitRange defaults and bounds (admission-limitranger.ts); it must stay before any
// ResourceQuota plugin, which charges the defaulted requests (kube's order: ... LimitRanger ... ResourceQuota).
// NodeRestriction: what a node's own credential may write (admission-noderestriction.ts).
// RBAC escalation prevention (admission-rbac.ts; kube does it in the RBAC kinds' storage).
// MutatingAdmissionWebhook after the built-in mutating plugins; PodSecurity after them, so it judges the
// pod as it will be stored; then ValidatingAdmissionPolicy and ValidatingAdmissionWebhook, as kube orders
// them. ResourceQuota is charged by the store itself, in the object's own write, after all of these.
export const defaultAdmissionChain: AdmissionPlugin[] = [
  namespaceLifecycle,
  limitRanger,
  defaultTolerationSeconds(300),
  priorityAdmission,
  defaultStorageClassAdmission,
  storageObjectInUseProtection,
  nodeRestriction,
  rbacEscalationCheck,
  mutatingAdmissionWebhook,
  podSecurityAdmission,
  validatingAdmissionPolicy,
  validatingAdmissionWebhook,
];

/**
 * The chain with ServiceAccount admission after NamespaceLifecycle (kube's order), for a server whose
 * serviceaccounts loop runs (it makes each namespace's `default`, which every pod needs).
 */
export function withServiceAccountAdmission(chain: AdmissionPlugin[]): AdmissionPlugin[] {
  if (chain.includes(serviceAccountAdmission)) return chain;
  const at = chain.indexOf(namespaceLifecycle) + 1;
  return [...chain.slice(0, at), serviceAccountAdmission, ...chain.slice(at)];
}

export async function admit(chain: AdmissionPlugin[], req: AdmissionRequest, registry: Registry): Promise<void> {
  for (const p of chain) await p.admit(req, registry);
}
