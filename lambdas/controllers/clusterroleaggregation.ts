// The ClusterRole aggregation controller (kube's pkg/controller/clusterroleaggregation): a ClusterRole
// with an aggregationRule gets, as its rules, the rules of every other ClusterRole its selectors match
// (by name order, each rule once), so "admin", "edit" and "view" grow with the aggregate-to-* roles that
// CRD authors and the bootstrap policy add.
//
// Any ClusterRole's change may change what an aggregated one gathers, so every change maps to one key,
// "*": reconcile all aggregated ClusterRoles. Cost per reconcile: one list of ClusterRoles from the cache
// (the informer locally; one list per stream batch in the cloud) and one write per role whose rules changed.

import { ApiError } from '../machinery/status.ts';
import { findResource } from '../machinery/resources.ts';
import { jsonEqual } from '../machinery/validation.ts';
import { aggregateRoles } from '../apiserver/rbac-rules.ts';
import { readerOf, type Controller } from './controller.ts';
import { controllerUser } from './identity.ts';

const clusterRoles = findResource('rbac.authorization.k8s.io', 'v1', 'clusterroles')!;
const ALL = '*';

export const clusterRoleAggregationController: Controller = {
  name: 'clusterrole-aggregation',
  identity: controllerUser('clusterrole-aggregation-controller'),
  watches: [clusterRoles],
  keys: () => [ALL],
  allKeys: async () => [ALL],
  async reconcile(_key, ctx) {
    // All aggregated roles are gathered to a fixed point first (aggregateRoles), so "edit" gets "view"'s
    // rules in the same reconcile that fills "view", not after its own write's event comes back.
    const stored = await readerOf(ctx).list(clusterRoles, undefined);
    const want = aggregateRoles(stored);
    for (const [i, role] of stored.entries()) {
      const rules = want[i]!.rules ?? [];
      if (!role.aggregationRule || jsonEqual(role.rules ?? [], rules)) continue;
      try {
        await ctx.registry.guaranteedUpdate(clusterRoles, undefined, role.metadata.name!, undefined, {}, (cur) => ({ ...cur, rules }));
      } catch (e) {
        // Deleted meanwhile: nothing to aggregate into.
        if (!(e instanceof ApiError && e.code === 404)) throw e;
      }
    }
  },
};
