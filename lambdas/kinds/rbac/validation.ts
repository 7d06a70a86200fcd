// rbac.authorization.k8s.io/v1 validation and defaulting, as pkg/apis/rbac/validation/validation.go and
// pkg/apis/rbac/v1/defaults.go (with kube's messages), shared by the four RBAC kinds.

import { validateLabelSelector } from '../../machinery/metav1-validation.ts';
import { arr, dns1123SubdomainErrors, GoStruct, obj, pathSegmentName, strOf, type ErrorList } from '../../machinery/validation.ts';

type Obj = Record<string, any>;

export const RBAC_GROUP = 'rbac.authorization.k8s.io';

/** ValidateRBACName: a path segment name (path.IsValidPathSegmentName), for objects and roleRef.name. */
export const rbacName = pathSegmentName;

/** ValidatePolicyRule: namespaced rules (a Role's) may not name non-resource URLs. */
export function validatePolicyRule(errs: ErrorList, rule: unknown, namespaced: boolean, path: string): void {
  const r = obj(rule);
  const verbs = arr(r.verbs);
  const urls = arr(r.nonResourceURLs);
  if (!verbs.length) errs.required(`${path}.verbs`, 'verbs must contain at least one value');
  if (urls.length) {
    if (namespaced) errs.invalid(`${path}.nonResourceURLs`, urls, 'namespaced rules cannot apply to non-resource URLs');
    if (arr(r.apiGroups).length || arr(r.resources).length || arr(r.resourceNames).length) {
      errs.invalid(`${path}.nonResourceURLs`, urls, 'rules cannot apply to both regular resources and non-resource URLs');
    }
    return;
  }
  if (!arr(r.apiGroups).length) errs.required(`${path}.apiGroups`, 'resource rules must supply at least one api group');
  if (!arr(r.resources).length) errs.required(`${path}.resources`, 'resource rules must supply at least one resource');
}

export function validateRules(errs: ErrorList, o: Obj, namespaced: boolean): void {
  arr(o.rules).forEach((r, i) => validatePolicyRule(errs, r, namespaced, `rules[${i}]`));
}

/** ValidateClusterRole's aggregationRule: at least one selector, each a valid metav1 LabelSelector. */
export function validateAggregationRule(errs: ErrorList, cr: Obj): void {
  if (cr.aggregationRule === undefined || cr.aggregationRule === null) return;
  const selectors = arr(obj(cr.aggregationRule).clusterRoleSelectors);
  if (!selectors.length) errs.required('aggregationRule.clusterRoleSelectors', 'at least one clusterRoleSelector required if aggregationRule is non-nil');
  selectors.forEach((s, i) => validateLabelSelector(errs, s, `aggregationRule.clusterRoleSelectors[${i}]`));
}

/** ValidateRoleBindingSubject: ServiceAccounts in a ClusterRoleBinding must name their namespace. */
function validateSubject(errs: ErrorList, subject: unknown, namespaced: boolean, path: string): void {
  const s = obj(subject);
  const name = strOf(s.name);
  const apiGroup = strOf(s.apiGroup);
  if (!name) errs.required(`${path}.name`);
  switch (s.kind) {
    case 'ServiceAccount':
      // ValidateServiceAccountName: a DNS subdomain.
      if (name) errs.each(`${path}.name`, name, dns1123SubdomainErrors(name));
      if (apiGroup) errs.notSupported(`${path}.apiGroup`, apiGroup, ['']);
      if (!namespaced && !strOf(s.namespace)) errs.required(`${path}.namespace`);
      break;
    case 'User':
    case 'Group':
      if (apiGroup !== RBAC_GROUP) errs.notSupported(`${path}.apiGroup`, apiGroup, [RBAC_GROUP]);
      break;
    default:
      errs.notSupported(`${path}.kind`, strOf(s.kind), ['ServiceAccount', 'User', 'Group']);
  }
}

/** ValidateRoleBinding / ValidateClusterRoleBinding: the roleRef (kinds allowed differ) and the subjects. */
export function validateBinding(errs: ErrorList, b: Obj, namespaced: boolean): void {
  const ref = obj(b.roleRef);
  const apiGroup = strOf(ref.apiGroup);
  if (apiGroup !== RBAC_GROUP) errs.notSupported('roleRef.apiGroup', apiGroup, [RBAC_GROUP]);
  const kinds = namespaced ? ['Role', 'ClusterRole'] : ['ClusterRole'];
  if (!kinds.includes(ref.kind)) errs.notSupported('roleRef.kind', strOf(ref.kind), kinds);
  const name = strOf(ref.name);
  if (!name) errs.required('roleRef.name');
  else errs.each('roleRef.name', name, rbacName(name, false));
  arr(b.subjects).forEach((s, i) => validateSubject(errs, s, namespaced, `subjects[${i}]`));
}

/** ValidateRoleBindingUpdate: the roleRef is fixed for a binding's life (the bad value is the internal Go struct). */
export function validateBindingUpdate(errs: ErrorList, b: Obj, old: Obj): void {
  const r = obj(b.roleRef);
  const o = obj(old.roleRef);
  if (strOf(r.apiGroup) !== strOf(o.apiGroup) || strOf(r.kind) !== strOf(o.kind) || strOf(r.name) !== strOf(o.name)) {
    const value = new GoStruct(JSON.stringify({ APIGroup: strOf(r.apiGroup), Kind: strOf(r.kind), Name: strOf(r.name) }));
    errs.invalid('roleRef', value, 'cannot change roleRef');
  }
}

/** SetDefaults_RoleBinding/ClusterRoleBinding and SetDefaults_Subject: the API groups a client may leave out. */
export function defaultBinding(b: Obj): void {
  if (b.roleRef && typeof b.roleRef === 'object' && !b.roleRef.apiGroup) b.roleRef.apiGroup = RBAC_GROUP;
  for (const s of arr(b.subjects)) {
    if (!s || typeof s !== 'object' || s.apiGroup) continue;
    if (s.kind === 'ServiceAccount') s.apiGroup = '';
    else if (s.kind === 'User' || s.kind === 'Group') s.apiGroup = RBAC_GROUP;
  }
}

/** rbac.SubjectsStrings: users, groups and "namespace/name" service accounts, for the printers' wide columns. */
export function subjectsStrings(subjects: unknown): [string, string, string] {
  const users: string[] = [];
  const groups: string[] = [];
  const sas: string[] = [];
  for (const s of arr(subjects)) {
    if (s?.kind === 'User') users.push(strOf(s.name));
    else if (s?.kind === 'Group') groups.push(strOf(s.name));
    else if (s?.kind === 'ServiceAccount') sas.push(`${strOf(s.namespace)}/${strOf(s.name)}`);
  }
  return [users.join(', '), groups.join(', '), sas.join(', ')];
}
