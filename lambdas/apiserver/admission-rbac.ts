// RBAC escalation prevention, as kube's policy-based RBAC storage (pkg/registry/rbac/role/policybased,
// clusterrole/policybased, rolebinding/policybased, clusterrolebinding/policybased and
// pkg/registry/rbac/escalation_check.go): a user may write a Role or ClusterRole only with rules they hold
// themselves (validation.Covers), unless they may `escalate` it; and a RoleBinding or ClusterRoleBinding
// only to a role whose rules they hold, unless they may `bind` it. system:masters may do both.
//
// Cost: nothing for other kinds; for an RBAC write, the RBAC view's lookups (rbac.ts: usually no storage
// read) and, on an update, one read of the stored object (to let GC-only changes through, as kube does).

import { ApiError } from '../machinery/status.ts';
import { goQuote, jsonEqual } from '../machinery/validation.ts';
import type { KubeObject } from '../machinery/types.ts';
import type { AdmissionPlugin, AdmissionRequest } from './admission.ts';
import { MASTERS_GROUP, privilegedGroupAuthorizer, unionAuthorizer, type PolicyRule, type UserInfo } from './auth.ts';
import type { Registry } from './registry.ts';
import { policyFor, type RbacAuthorizer, type RoleRef } from './rbac.ts';
import { compactRules, compactString, covers, goStrings } from './rbac-rules.ts';

const GROUP = 'rbac.authorization.k8s.io';
const ROLES = new Set(['roles', 'clusterroles']);
const BINDINGS = new Set(['rolebindings', 'clusterrolebindings']);

/** What only cluster-admin holds: needed to set an aggregationRule (it may gather anything). */
const FULL_AUTHORITY: PolicyRule[] = [
  { verbs: ['*'], apiGroups: ['*'], resources: ['*'] },
  { verbs: ['*'], nonResourceURLs: ['*'] },
];

/** errors.NewForbidden(groupResource, name, err). */
function forbidden(resource: string, name: string, why: string): ApiError {
  const gr = `${resource}.${GROUP}`;
  return new ApiError('Forbidden', name ? `${gr} ${goQuote(name)} is forbidden: ${why}` : `${gr} is forbidden: ${why}`, { name, group: GROUP, kind: resource });
}

/** ConfirmNoEscalation: undefined when the user holds every rule, else kube's message. */
export async function escalationError(rbac: RbacAuthorizer, user: UserInfo, namespace: string, rules: PolicyRule[]): Promise<string | undefined> {
  const owner = await rbac.rulesFor(user, namespace);
  const { covered, missing } = covers(owner.rules, rules);
  if (covered) return undefined;
  const lines = [...new Set(compactRules(missing).map(compactString))].sort();
  let msg = `user ${goQuote(user.username)} (groups=${goStrings(user.groups)}) is attempting to grant RBAC permissions not currently held:\n${lines.join('\n')}`;
  if (owner.incomplete) msg += `; resolution errors: [${owner.evaluationError}]`;
  return msg;
}

/** IsOnlyMutatingGCFields: an update that changes only ownerReferences and finalizers needs no check. */
function onlyGCFields(obj: KubeObject, old: KubeObject): boolean {
  const strip = (o: KubeObject) => {
    const { ownerReferences: _o, finalizers: _f, resourceVersion: _rv, managedFields: _m, ...meta } = o.metadata ?? {};
    return { ...o, metadata: meta };
  };
  return jsonEqual(strip(obj), strip(old));
}

export const rbacEscalationCheck: AdmissionPlugin = {
  name: 'RBACEscalationCheck',
  async admit(req, registry) {
    const r = req.resource;
    if (r.group !== GROUP || req.subresource || !req.object || (req.operation !== 'CREATE' && req.operation !== 'UPDATE')) return;
    if (!ROLES.has(r.resource) && !BINDINGS.has(r.resource)) return;
    // EscalationAllowed: system:masters may do anything (the apiserver's loopback identity is one).
    if (req.user.groups.includes(MASTERS_GROUP)) return;
    if (req.operation === 'UPDATE' && (await unchangedButGC(req, registry))) return;
    const rbac = policyFor(registry.backend);
    const authz = unionAuthorizer(privilegedGroupAuthorizer, rbac);
    const obj = req.object;
    const name = obj.metadata?.name ?? '';
    const namespace = req.namespace ?? '';
    if (ROLES.has(r.resource)) {
      // RoleEscalationAuthorized: `escalate` on the role (its name as the URL gives it: none on create).
      const escalate = await authz.authorize({ user: req.user, verb: 'escalate', resourceRequest: true, path: '', group: GROUP, version: '*', resource: r.resource, name: req.name, namespace: req.namespace });
      if (escalate.decision === 'allow') return;
      const rules = Array.isArray(obj.rules) ? (obj.rules as PolicyRule[]) : [];
      const why = await escalationError(rbac, req.user, namespace, rules);
      if (why) throw forbidden(r.resource, name, why);
      if (r.resource === 'clusterroles' && obj.aggregationRule && (await escalationError(rbac, req.user, namespace, FULL_AUTHORITY))) {
        throw forbidden(r.resource, name, 'must have cluster-admin privileges to use the aggregationRule');
      }
      return;
    }
    // BindingAuthorized: `bind` on the referenced role, in the binding's namespace ("" for ClusterRoleBindings).
    const ref = (obj.roleRef ?? {}) as RoleRef;
    const resource = ref.kind === 'ClusterRole' ? 'clusterroles' : ref.kind === 'Role' ? 'roles' : undefined;
    if (!resource) return; // validation refuses it
    const bind = await authz.authorize({ user: req.user, verb: 'bind', resourceRequest: true, path: '', group: ref.apiGroup ?? GROUP, resource, name: ref.name, namespace: req.namespace });
    if (bind.decision === 'allow') return;
    // A role that does not exist is the store's 404, as kube answers.
    const rules = await rbac.roleReferenceRules(ref, req.namespace);
    const why = await escalationError(rbac, req.user, namespace, rules);
    if (why) throw forbidden(r.resource, name, why);
  },
};

async function unchangedButGC(req: AdmissionRequest, registry: Registry): Promise<boolean> {
  const old = req.oldObject ?? (await registry.get(req.resource, req.namespace, req.name ?? req.object!.metadata.name!).catch(() => undefined));
  return !!old && onlyGCFields(req.object!, old);
}
