// RoleBinding (rbac.authorization.k8s.io/v1): pkg/registry/rbac/rolebinding. Grants a Role, or a
// ClusterRole's rules within its namespace, to users, groups and service accounts. Its roleRef never
// changes. Printed as kube's printers.go prints it.

import { ageCol, col, doc, nameCol, since, str } from '../../machinery/table.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';
import { defaultBinding, rbacName, subjectsStrings, validateBinding, validateBindingUpdate } from './validation.ts';

type Obj = Record<string, any>;

/** printers.go's roleBindingsColumnDefinitions (ClusterRoleBindings print the same). */
export const bindingTable = {
  columns: () => [
    nameCol(),
    col('Role', 'string', doc('io.k8s.api.rbac.v1.RoleBinding', 'roleRef')),
    ageCol(),
    col('Users', 'string', 'Users in the roleBinding', 1),
    col('Groups', 'string', 'Groups in the roleBinding', 1),
    col('ServiceAccounts', 'string', 'ServiceAccounts in the roleBinding', 1),
  ],
  print: (b: Obj, now: Date) => ({
    cells: [str(b.metadata?.name), `${str(b.roleRef?.kind)}/${str(b.roleRef?.name)}`, since(b.metadata?.creationTimestamp, now), ...subjectsStrings(b.subjects)],
  }),
};

export const roleBinding: KindStrategy = {
  info: resourceInfo('rbac.authorization.k8s.io', 'v1', 'RoleBinding', 'rolebindings', true),
  meta: { name: rbacName, kubeFinalizers: false },
  defaults: defaultBinding,
  validate: (errs, b) => validateBinding(errs, b, true),
  validateUpdate: (errs, b, old) => validateBindingUpdate(errs, b, old),
  table: bindingTable,
};
