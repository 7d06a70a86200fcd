// Role (rbac.authorization.k8s.io/v1): pkg/registry/rbac/role. Namespaced rules; the RBAC authorizer
// (apiserver/rbac.ts) reads them, the RBAC admission plugin (apiserver/admission-rbac.ts) keeps a user from
// granting rules they do not hold. Printed as the generic store prints (Name, Created At), as kube does.

import { resourceInfo, type KindStrategy } from '../kind.ts';
import { rbacName, validateRules } from './validation.ts';

export const role: KindStrategy = {
  info: resourceInfo('rbac.authorization.k8s.io', 'v1', 'Role', 'roles', true),
  meta: { name: rbacName, kubeFinalizers: false },
  validate: (errs, r) => validateRules(errs, r, true),
};
