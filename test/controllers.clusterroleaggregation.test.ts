// The ClusterRole aggregation loop: chained aggregation ("edit" gathers "view", itself aggregated from
// system:aggregate-to-view) converges in one reconcile, so "edit" never holds half its rules while it waits
// for the event of its own write; a later change to a gathered role reaches every role that gathers it.
// On both stores, run as the loop's own identity.
import { describe, expect, it } from 'vitest';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { ensureBootstrapPolicy } from '../lambdas/apiserver/bootstrap-policy.ts';
import { clusterRoleAggregationController as loop } from '../lambdas/controllers/clusterroleaggregation.ts';
import { contextFor } from '../lambdas/controllers/controller.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import { testStores } from './support/backends.ts';

const clusterRoles = findResource('rbac.authorization.k8s.io', 'v1', 'clusterroles')!;
const grants = (role: any, resource: string, verb: string) =>
  (role.rules ?? []).some((r: any) => r.apiGroups?.includes('') && r.resources?.includes(resource) && r.verbs?.includes(verb));

describe.each(await testStores('aggregation'))('ClusterRole aggregation on %s', (_label, store, enabled) => {
  it.runIf(enabled)('one reconcile fills admin, edit and view, each with what the roles it gathers gathered', async () => {
    const base = new ApiServer({ backend: (await store())() }).controllerContext();
    await ensureBootstrapPolicy(base.registry);
    const get = (name: string) => base.registry.get(clusterRoles, undefined, name);
    // The bootstrap writes admin, edit and view already gathered: a fresh cluster never serves them empty.
    expect(grants(await get('edit'), 'configmaps', 'list')).toBe(true);
    // Emptied (as a store written before that holds them), the loop fills them again in one reconcile.
    for (const name of ['admin', 'edit', 'view']) await base.registry.guaranteedUpdate(clusterRoles, undefined, name, undefined, {}, (cur) => ({ ...cur, rules: [] }));
    expect((await get('edit')).rules ?? []).toEqual([]);

    const ctx = contextFor(loop, base);
    await loop.reconcile('*', ctx);
    const [view, edit, admin] = [await get('view'), await get('edit'), await get('admin')];
    // view's own (from system:aggregate-to-view), edit's own, and edit's read of configmaps through view.
    expect(grants(view, 'configmaps', 'list')).toBe(true);
    expect(grants(edit, 'configmaps', 'create')).toBe(true);
    expect(grants(edit, 'configmaps', 'list')).toBe(true);
    expect(grants(admin, 'configmaps', 'list')).toBe(true);
    // A second reconcile finds nothing to change.
    const rv = [view, edit, admin].map((r) => r.metadata.resourceVersion);
    await loop.reconcile('*', ctx);
    expect([await get('view'), await get('edit'), await get('admin')].map((r) => r.metadata.resourceVersion)).toEqual(rv);

    // A new role labelled to aggregate into view reaches edit and admin in the same reconcile.
    await base.registry.create(clusterRoles, undefined, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'widgets-view', labels: { 'rbac.authorization.k8s.io/aggregate-to-view': 'true' } },
      rules: [{ apiGroups: [''], resources: ['widgets'], verbs: ['get', 'list'] }],
    });
    await loop.reconcile('*', ctx);
    for (const name of ['view', 'edit', 'admin']) expect(grants(await get(name), 'widgets', 'list'), name).toBe(true);
  });
});
