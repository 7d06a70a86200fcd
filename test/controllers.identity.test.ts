// The control loops act under their own identities (controllers/identity.ts), not as system:masters:
// each loop is the service account kube-system/<name> and may do what its bootstrap ClusterRole
// system:controller:<name> (apiserver/bootstrap-policy.ts) allows, and nothing else; on both stores.
import { describe, expect, it } from 'vitest';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { contextFor, type Controller } from '../lambdas/controllers/controller.ts';
import { controllers as cloudControllers } from '../lambdas/controllers/lambda.ts';
import { replicaSetController } from '../lambdas/controllers/replicaset.ts';
import { createScheduler } from '../lambdas/scheduler/scheduler.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import { testStores } from './support/backends.ts';

const nsRes = findResource('', 'v1', 'namespaces')!;
const rsRes = findResource('apps', 'v1', 'replicasets')!;
const podsRes = findResource('', 'v1', 'pods')!;
const secretsRes = findResource('', 'v1', 'secrets')!;
const rolesRes = findResource('rbac.authorization.k8s.io', 'v1', 'clusterroles')!;

describe.each(await testStores('identity'))('loops under their own identities (%s)', (_label, store) => {
  it('every loop of the controller manager and the scheduler has an identity, none of them system:masters', () => {
    for (const c of [...cloudControllers, createScheduler()] as Controller[]) {
      expect(c.identity, c.name).toBeDefined();
      expect(c.identity!.groups, c.name).not.toContain('system:masters');
    }
    expect(replicaSetController.identity!.username).toBe('system:serviceaccount:kube-system:replicaset-controller');
  });

  it("the ReplicaSet loop makes its pods, is refused a Secret with kube's 403, and its reconcile works as it", async () => {
    const api = new ApiServer({ backend: (await store())() });
    const base = api.controllerContext();
    await base.registry.create(nsRes, undefined, { metadata: { name: 'default' } }).catch(() => undefined);
    const ctx = contextFor(replicaSetController, base);
    await expect(ctx.registry.create(secretsRes, 'default', { metadata: { name: 's' }, data: {} })).rejects.toThrow(
      'secrets "s" is forbidden: User "system:serviceaccount:kube-system:replicaset-controller" cannot create resource "secrets" in API group "" in the namespace "default"',
    );
    await expect(ctx.registry.list(secretsRes, 'default')).rejects.toThrow('cannot list resource "secrets"');
    await base.registry.create(rsRes, 'default', {
      metadata: { name: 'web' },
      spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } },
    });
    await replicaSetController.reconcile('default/web', ctx);
    expect((await base.registry.list(podsRes, 'default')).items).toHaveLength(2);
    // Its role is what decides: without pods create in it, the loop's creates are refused.
    const role = await base.registry.get(rolesRes, undefined, 'system:controller:replicaset-controller');
    role.metadata.annotations = { 'rbac.authorization.kubernetes.io/autoupdate': 'false' };
    role.rules = role.rules.filter((r: { resources?: string[] }) => !r.resources?.includes('pods'));
    await base.registry.update(rolesRes, undefined, role.metadata.name!, role);
    await new Promise((ok) => setTimeout(ok, 1100)); // the authorizer's view is at most 1 s old without a watch
    await expect(ctx.registry.create(podsRes, 'default', { metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } })).rejects.toThrow(
      'pods "p" is forbidden: User "system:serviceaccount:kube-system:replicaset-controller" cannot create resource "pods" in API group "" in the namespace "default"',
    );
  });
});
