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
import { labelSelectorFromMetav1, type MetaLabelSelector } from '../machinery/selectors.ts';
import type { KubeObject } from '../machinery/types.ts';
import { jsonEqual } from '../machinery/validation.ts';
import { readerOf, type Controller } from './controller.ts';
import { controllerUser } from './identity.ts';

const clusterRoles = findResource('rbac.authorization.k8s.io', 'v1', 'clusterroles')!;
const ALL = '*';

/** The rules an aggregated role should hold: those of the roles its selectors match, first seen first. */
export function aggregatedRules(role: KubeObject, all: readonly KubeObject[]): unknown[] {
  const selectors = ((role.aggregationRule?.clusterRoleSelectors ?? []) as MetaLabelSelector[]).map((s) => labelSelectorFromMetav1(s));
  const sources = all
    .filter((r) => r.metadata.name !== role.metadata.name && selectors.some((s) => s.matches(r.metadata.labels ?? {})))
    .sort((a, b) => (a.metadata.name! < b.metadata.name! ? -1 : a.metadata.name! > b.metadata.name! ? 1 : 0));
  const rules: unknown[] = [];
  for (const src of sources) for (const r of src.rules ?? []) if (!rules.some((x) => jsonEqual(x, r))) rules.push(r);
  return rules;
}

export const clusterRoleAggregationController: Controller = {
  name: 'clusterrole-aggregation',
  identity: controllerUser('clusterrole-aggregation-controller'),
  watches: [clusterRoles],
  keys: () => [ALL],
  allKeys: async () => [ALL],
  async reconcile(_key, ctx) {
    // Aggregated roles gather each other ("edit" gathers "view", itself aggregated): what one pass writes
    // is what the next roles gather, so passes repeat over the updated set until nothing changes, rather
    // than waiting for the writes' own events (a role left with half its rules meanwhile refuses requests
    // it should allow). Each pass changes at least one role, so there are at most as many as aggregated roles.
    const all = [...(await readerOf(ctx).list(clusterRoles, undefined))];
    const aggregated = all.filter((r) => r.aggregationRule).length;
    for (let pass = 0, changed = true; changed && pass <= aggregated; pass++) {
      changed = false;
      for (const [i, role] of all.entries()) {
        if (!role.aggregationRule) continue;
        const rules = aggregatedRules(role, all);
        if (jsonEqual(role.rules ?? [], rules)) continue;
        changed = true;
        try {
          all[i] = await ctx.registry.guaranteedUpdate(clusterRoles, undefined, role.metadata.name!, undefined, {}, (cur) => ({ ...cur, rules }));
        } catch (e) {
          // Deleted meanwhile: nothing to aggregate into.
          if (!(e instanceof ApiError && e.code === 404)) throw e;
          all[i] = { ...role, rules };
        }
      }
    }
  },
};
