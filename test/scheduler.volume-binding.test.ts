// The scheduler's VolumeBinding plugin with the PV controller, on the real stores (SQLite, and DynamoDB
// through moto): a pod's WaitForFirstConsumer claim gets the chosen node (selected-node), the local-path
// volume is provisioned there, and a later pod of the same claim is kept to that node by the volume's
// node affinity; a missing claim, an unbound Immediate claim and a no-provisioner class with no fitting
// volume leave the pod unschedulable with kube-scheduler's messages.

import { describe, expect, it } from 'vitest';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import type { ControllerContext } from '../lambdas/controllers/controller.ts';
import { persistentVolumeController as pvc } from '../lambdas/controllers/persistentvolume.ts';
import { ensureDefaultStorageClass } from '../lambdas/kinds/storage/storageclass.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { createScheduler } from '../lambdas/scheduler/scheduler.ts';
import { testStores } from './support/backends.ts';

const podsRes = findResource('', 'v1', 'pods')!;
const nodesRes = findResource('', 'v1', 'nodes')!;
const claimsRes = findResource('', 'v1', 'persistentvolumeclaims')!;
const volumesRes = findResource('', 'v1', 'persistentvolumes')!;
const scRes = findResource('storage.k8s.io', 'v1', 'storageclasses')!;
const nsRes = findResource('', 'v1', 'namespaces')!;

const stores = await testStores('volbind');

function node(name: string): KubeObject {
  const alloc = { cpu: '4', memory: '8Gi', pods: '110' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name } },
    status: { capacity: alloc, allocatable: alloc, conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

function podWith(name: string, claimName: string, nodeSelector?: Record<string, string>): KubeObject {
  return {
    metadata: { name },
    spec: {
      containers: [{ name: 'c', image: 'busybox' }],
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName } }],
      ...(nodeSelector ? { nodeSelector } : {}),
    },
  };
}

const claim = (name: string, storageClassName?: string): KubeObject => ({
  metadata: { name },
  spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, ...(storageClassName ? { storageClassName } : {}) },
});

async function cluster(open: () => import('../lambdas/storage/backend.ts').Backend): Promise<ControllerContext> {
  const ctx = new ApiServer({ backend: open() }).controllerContext();
  await ctx.registry.create(nsRes, undefined, { metadata: { name: 'default' } });
  await ensureDefaultStorageClass(ctx.registry);
  await ctx.registry.create(nodesRes, undefined, node('n1'));
  await ctx.registry.create(nodesRes, undefined, node('n2'));
  return ctx;
}

async function settleVolumes(ctx: ControllerContext): Promise<void> {
  for (let i = 0; i < 3; i++) for (const k of await pvc.allKeys(ctx)) await pvc.reconcile(k, ctx);
}

const getPod = (ctx: ControllerContext, name: string) => ctx.registry.get(podsRes, 'default', name);
const scheduledCondition = async (ctx: ControllerContext, name: string) => (await getPod(ctx, name)).status?.conditions?.find((c: any) => c.type === 'PodScheduled');
const preemption = 'preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.';

describe.each(stores)('VolumeBinding on %s', (_name, makeStore, enabled) => {
  it.runIf(enabled)('puts the chosen node on a WaitForFirstConsumer claim; the volume made there keeps later pods of the claim on that node', async () => {
    const ctx = await cluster(await makeStore());
    const s = createScheduler({ tieBreak: 'name' });
    await ctx.create(claimsRes, 'default', claim('data'));
    // The first pod asks for n2 (by name the scheduler would otherwise prefer n1).
    await ctx.create(podsRes, 'default', podWith('first', 'data', { 'kubernetes.io/hostname': 'n2' }));
    await s.allKeys(ctx);
    await s.reconcile('default/first', ctx);
    expect((await getPod(ctx, 'first')).spec.nodeName).toBe('n2');
    const c = await ctx.registry.get(claimsRes, 'default', 'data');
    expect(c.metadata.annotations?.['volume.kubernetes.io/selected-node']).toBe('n2');

    await settleVolumes(ctx);
    const bound = await ctx.registry.get(claimsRes, 'default', 'data');
    expect(bound.status.phase).toBe('Bound');
    const pv = await ctx.registry.get(volumesRes, undefined, bound.spec.volumeName);
    expect(pv.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values).toEqual(['n2']);

    // A second pod of the claim, free to go anywhere, goes where its volume is.
    await ctx.create(podsRes, 'default', podWith('second', 'data'));
    await s.allKeys(ctx);
    await s.reconcile('default/second', ctx);
    expect((await getPod(ctx, 'second')).spec.nodeName).toBe('n2');

    // A pod of the claim that may only go to n1 cannot go anywhere.
    await ctx.create(podsRes, 'default', podWith('third', 'data', { 'kubernetes.io/hostname': 'n1' }));
    await s.allKeys(ctx);
    await s.reconcile('default/third', ctx);
    expect(await scheduledCondition(ctx, 'third')).toMatchObject({
      status: 'False',
      reason: 'Unschedulable',
      message: `0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had volume node affinity conflict. ${preemption}`,
    });
  });

  it.runIf(enabled)('a missing claim, an unbound Immediate claim, and a no-provisioner class without a fitting volume leave the pod unschedulable', async () => {
    const ctx = await cluster(await makeStore());
    const s = createScheduler({ tieBreak: 'name' });
    await ctx.registry.create(scRes, undefined, { metadata: { name: 'now' }, provisioner: 'example.com/external' });
    await ctx.registry.create(scRes, undefined, { metadata: { name: 'static' }, provisioner: 'kubernetes.io/no-provisioner', volumeBindingMode: 'WaitForFirstConsumer' });
    await ctx.create(claimsRes, 'default', claim('immediate', 'now'));
    await ctx.create(claimsRes, 'default', claim('local', 'static'));
    await ctx.create(podsRes, 'default', podWith('orphan', 'nope'));
    await ctx.create(podsRes, 'default', podWith('early', 'immediate'));
    await ctx.create(podsRes, 'default', podWith('nolocal', 'local'));
    await s.allKeys(ctx);
    for (const p of ['orphan', 'early', 'nolocal']) await s.reconcile(`default/${p}`, ctx);
    expect((await scheduledCondition(ctx, 'orphan'))?.message).toBe(`0/2 nodes are available: persistentvolumeclaim "nope" not found. ${preemption}`);
    expect((await scheduledCondition(ctx, 'early'))?.message).toBe(`0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. ${preemption}`);
    expect((await scheduledCondition(ctx, 'nolocal'))?.message).toBe(`0/2 nodes are available: 2 node(s) didn't find available persistent volumes to bind. ${preemption}`);

    // A static local volume on n2 makes room for it there, and only there.
    await ctx.create(volumesRes, undefined, {
      metadata: { name: 'disk-n2' },
      spec: {
        capacity: { storage: '5Gi' },
        accessModes: ['ReadWriteOnce'],
        storageClassName: 'static',
        local: { path: '/mnt/disk' },
        nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['n2'] }] }] } },
      },
    });
    await settleVolumes(ctx);
    await s.allKeys(ctx);
    await s.reconcile('default/nolocal', ctx);
    expect((await getPod(ctx, 'nolocal')).spec.nodeName).toBe('n2');
    await settleVolumes(ctx);
    expect((await ctx.registry.get(claimsRes, 'default', 'local')).spec.volumeName).toBe('disk-n2');
  });
});
