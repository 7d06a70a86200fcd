// ClusterRole (rbac.authorization.k8s.io/v1): pkg/registry/rbac/clusterrole. Cluster-wide rules, maybe
// gathered from other ClusterRoles by an aggregationRule (controllers/clusterroleaggregation.ts writes
// the rules of an aggregated role). Printed as the generic store prints (Name, Created At), as kube does.

import { resourceInfo, type KindStrategy } from '../kind.ts';
import { rbacName, validateAggregationRule, validateRules } from './validation.ts';

export const clusterRole: KindStrategy = {
  info: resourceInfo('rbac.authorization.k8s.io', 'v1', 'ClusterRole', 'clusterroles', false),
  meta: { name: rbacName, kubeFinalizers: false },
  validate: (errs, r) => {
    validateRules(errs, r, false);
    validateAggregationRule(errs, r);
  },
};
