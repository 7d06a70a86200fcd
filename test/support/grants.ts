// Who may do what in the access-review, impersonation and audit tests, as data: each grant is what one
// RBAC (Cluster)Role rule bound by one (Cluster)RoleBinding gives (namespace set: a Role and RoleBinding
// in it; unset: a ClusterRole and ClusterRoleBinding). Until RBAC serves these tests, grantsAuthorizer
// answers from the same table with RBAC's matching rules; with RBAC, `applyGrants` is the one place to
// change: create the roles and bindings through the API instead, and drop the authorizer option.

import type { Authorizer, PolicyRule, RequestAttributes, RuleResolver, UserInfo } from '../../lambdas/apiserver/auth.ts';
import { privilegedGroupAuthorizer, unionAuthorizer } from '../../lambdas/apiserver/auth.ts';

export interface Grant {
  subject: { user: string } | { group: string };
  /** Unset: cluster-wide (a ClusterRoleBinding). */
  namespace?: string;
  rule: PolicyRule;
}

/** system:basic-user and system:discovery, as kube binds them to every authenticated user. */
const EVERYONE: Grant[] = [
  {
    subject: { group: 'system:authenticated' },
    rule: { verbs: ['create'], apiGroups: ['authorization.k8s.io'], resources: ['selfsubjectaccessreviews', 'selfsubjectrulesreviews'] },
  },
  { subject: { group: 'system:authenticated' }, rule: { verbs: ['create'], apiGroups: ['authentication.k8s.io'], resources: ['selfsubjectreviews'] } },
  {
    subject: { group: 'system:authenticated' },
    rule: { verbs: ['get'], nonResourceURLs: ['/api', '/api/*', '/apis', '/apis/*', '/openapi', '/openapi/*', '/version', '/version/'] },
  },
];

/**
 * The tests' world: alice reads pods in team-a; members of team-b-admins do anything in team-b; carol may
 * impersonate alice, the team-b-admins group and service accounts of team-a; bob may do nothing of his own;
 * system:masters is cluster-admin (kube binds cluster-admin to it).
 */
export const GRANTS: Grant[] = [
  ...EVERYONE,
  { subject: { group: 'system:masters' }, rule: { verbs: ['*'], apiGroups: ['*'], resources: ['*'] } },
  { subject: { group: 'system:masters' }, rule: { verbs: ['*'], nonResourceURLs: ['*'] } },
  { subject: { user: 'alice' }, namespace: 'team-a', rule: { verbs: ['get', 'list', 'watch'], apiGroups: [''], resources: ['pods'] } },
  { subject: { group: 'team-b-admins' }, namespace: 'team-b', rule: { verbs: ['*'], apiGroups: ['*'], resources: ['*'] } },
  { subject: { user: 'carol' }, rule: { verbs: ['impersonate'], apiGroups: [''], resources: ['users'], resourceNames: ['alice'] } },
  { subject: { user: 'carol' }, rule: { verbs: ['impersonate'], apiGroups: [''], resources: ['groups'], resourceNames: ['team-b-admins'] } },
  { subject: { user: 'carol' }, namespace: 'team-a', rule: { verbs: ['impersonate'], apiGroups: [''], resources: ['serviceaccounts'] } },
];

const has = (list: string[] | undefined, v: string) => !!list && (list.includes('*') || list.includes(v));

function subjectMatches(g: Grant, u: UserInfo): boolean {
  return 'user' in g.subject ? g.subject.user === u.username : u.groups.includes(g.subject.group);
}

/** RBAC's RuleAllows: verbs, groups, resources (resource/subresource), names; or non-resource URLs ("/x*" prefixes). */
function ruleAllows(r: PolicyRule, a: RequestAttributes): boolean {
  if (!has(r.verbs, a.verb)) return false;
  if (!a.resourceRequest) {
    return !!r.nonResourceURLs?.some((u) => u === '*' || u === a.path || (u.endsWith('*') && a.path.startsWith(u.slice(0, -1))));
  }
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource ?? '';
  return has(r.apiGroups, a.group ?? '') && has(r.resources, resource) && (!r.resourceNames?.length || r.resourceNames.includes(a.name ?? ''));
}

/** The grants as an authorizer (allow with a reason naming the grant, else no opinion) and a rule resolver. */
export function grantsAuthorizer(grants: Grant[] = GRANTS): Authorizer & RuleResolver {
  return {
    async authorize(a) {
      if (a.user.username === 'broken') throw new Error('the authorizer could not read its rules');
      const i = grants.findIndex((g) => subjectMatches(g, a.user) && (g.namespace === undefined || g.namespace === a.namespace) && ruleAllows(g.rule, a));
      return i >= 0 ? { decision: 'allow', reason: `allowed by test grant ${i}` } : { decision: 'noOpinion' };
    },
    async rulesFor(user, namespace) {
      const rules = grants.filter((g) => subjectMatches(g, user) && (g.namespace === undefined || g.namespace === namespace)).map((g) => g.rule);
      return { rules, incomplete: false };
    },
  };
}

/** The options a test cluster takes to enforce the grants: kube's chain, system:masters first. */
export function applyGrants(grants: Grant[] = GRANTS): { authorizer: Authorizer; ruleResolver: RuleResolver } {
  const g = grantsAuthorizer(grants);
  return { authorizer: unionAuthorizer(privilegedGroupAuthorizer, g), ruleResolver: g };
}
