// ClusterRoleBinding (rbac.authorization.k8s.io/v1): pkg/registry/rbac/clusterrolebinding. Grants a
// ClusterRole everywhere. Its roleRef never changes; service-account subjects name their namespace.

import { resourceInfo, type KindStrategy } from '../kind.ts';
import { bindingTable } from './rolebinding.ts';
import { defaultBinding, rbacName, validateBinding, validateBindingUpdate } from './validation.ts';

export const clusterRoleBinding: KindStrategy = {
  info: resourceInfo('rbac.authorization.k8s.io', 'v1', 'ClusterRoleBinding', 'clusterrolebindings', false),
  meta: { name: rbacName, kubeFinalizers: false },
  defaults: defaultBinding,
  validate: (errs, b) => validateBinding(errs, b, false),
  validateUpdate: (errs, b, old) => validateBindingUpdate(errs, b, old),
  table: bindingTable,
};
