// The persistent volume controller (binder, local-path provisioner, protection finalizers, reclaim) on
// the real stores (SQLite, and DynamoDB through moto), driven key by key as the runners drive it: the
// default class and finalizers from admission, WaitForFirstConsumer until a node is selected, local-path
// provisioning and binding, static binding to the smallest fitting volume, an unknown class, PVC
// protection while a pod uses the claim, reclaim Delete and Retain; duplicated and reordered keys.

import { afterAll, describe, expect, it } from 'vitest';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { DescribeStreamCommand, DynamoDBStreamsClient, GetRecordsCommand, GetShardIteratorCommand } from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBRecord } from 'aws-lambda';
import { handleStreamBatch, streamFilterPatterns } from '../lambdas/controllers/stream.ts';
import { DynamoBackend, ensureTable } from '../lambdas/storage/dynamodb.ts';
import { dynamoTestEndpoint, uniqueTableName } from './support/dynamodb.ts';
import { passesFilters } from './support/lambda-filter.ts';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import type { ControllerContext } from '../lambdas/controllers/controller.ts';
import { persistentVolumeController as pvc } from '../lambdas/controllers/persistentvolume.ts';
import { LOCAL_PATH_DIR_ANNOTATION, LOCAL_PATH_FINALIZER, SELECTED_NODE_ANNOTATION } from '../lambdas/controllers/local-path.ts';
import { ensureDefaultStorageClass } from '../lambdas/kinds/storage/storageclass.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import type { Backend } from '../lambdas/storage/backend.ts';
import { testStores } from './support/backends.ts';

const claimsRes = findResource('', 'v1', 'persistentvolumeclaims')!;
const volumesRes = findResource('', 'v1', 'persistentvolumes')!;
const podsRes = findResource('', 'v1', 'pods')!;
const nodesRes = findResource('', 'v1', 'nodes')!;
const eventsRes = findResource('', 'v1', 'events')!;
const nsRes = findResource('', 'v1', 'namespaces')!;

const stores = await testStores('pv');

async function newCtx(open: () => Backend): Promise<ControllerContext> {
  const api = new ApiServer({ backend: open() });
  const ctx = api.controllerContext();
  await ctx.registry.create(nsRes, undefined, { metadata: { name: 'default' } });
  await ensureDefaultStorageClass(ctx.registry);
  return ctx;
}

/** Reconciles every key (as a resync would) until a round changes nothing. */
async function settle(ctx: ControllerContext, rounds = 4): Promise<void> {
  for (let i = 0; i < rounds; i++) for (const k of await pvc.allKeys(ctx)) await pvc.reconcile(k, ctx);
}

const claim = (name: string, extra: Record<string, unknown> = {}, storage = '1Gi'): KubeObject => ({
  apiVersion: 'v1',
  kind: 'PersistentVolumeClaim',
  metadata: { name },
  spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage } }, ...extra },
});

const staticVolume = (name: string, storage: string, extra: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'PersistentVolume',
  metadata: { name },
  spec: { capacity: { storage }, accessModes: ['ReadWriteOnce'], storageClassName: 'manual', hostPath: { path: `/data/${name}` }, ...extra },
});

const getClaim = (ctx: ControllerContext, name: string) => ctx.registry.get(claimsRes, 'default', name);
const getVolume = (ctx: ControllerContext, name: string) => ctx.registry.get(volumesRes, undefined, name);
const reasons = async (ctx: ControllerContext, name: string) =>
  (await ctx.registry.list(eventsRes, 'default')).items.filter((e) => e.involvedObject?.name === name).map((e) => `${e.type} ${e.reason}: ${e.message}`);
const gone = (p: Promise<unknown>) => p.then(() => false, (e) => e?.code === 404);

async function addNode(ctx: ControllerContext, name: string): Promise<void> {
  await ctx.registry.create(nodesRes, undefined, {
    metadata: { name, labels: { 'kubernetes.io/hostname': name }, annotations: { [LOCAL_PATH_DIR_ANNOTATION]: `/var/lib/skiff-${name}/local-path` } },
  });
}

async function selectNode(ctx: ControllerContext, name: string, node: string): Promise<void> {
  await ctx.registry.guaranteedUpdate(claimsRes, 'default', name, undefined, {}, (cur) => {
    cur.metadata.annotations = { ...(cur.metadata.annotations ?? {}), [SELECTED_NODE_ANNOTATION]: node };
    return cur;
  });
}

describe.each(stores)('PersistentVolume controller on %s', (_name, makeStore, enabled) => {
  it.runIf(enabled)('a claim gets the default class and its finalizer, waits for a consumer, then is provisioned on the selected node and bound', async () => {
    const ctx = await newCtx(await makeStore());
    const created = await ctx.create(claimsRes, 'default', claim('data'));
    expect(created.spec.storageClassName).toBe('local-path');
    expect(created.metadata.finalizers).toEqual(['kubernetes.io/pvc-protection']);
    await settle(ctx);
    expect((await getClaim(ctx, 'data')).status.phase).toBe('Pending');
    expect(await reasons(ctx, 'data')).toContain('Normal WaitForFirstConsumer: waiting for first consumer to be created before binding');
    expect((await ctx.registry.list(volumesRes, undefined)).items).toEqual([]);

    await addNode(ctx, 'n1');
    await selectNode(ctx, 'data', 'n1');
    await settle(ctx);
    const c = await getClaim(ctx, 'data');
    const pvName = `pvc-${c.metadata.uid}`;
    expect(c.spec.volumeName).toBe(pvName);
    expect(c.status).toMatchObject({ phase: 'Bound', accessModes: ['ReadWriteOnce'], capacity: { storage: '1Gi' } });
    expect(c.metadata.annotations).toMatchObject({
      'pv.kubernetes.io/bind-completed': 'yes',
      'pv.kubernetes.io/bound-by-controller': 'yes',
      'volume.kubernetes.io/storage-provisioner': 'rancher.io/local-path',
      'volume.beta.kubernetes.io/storage-provisioner': 'rancher.io/local-path',
    });
    const pv = await getVolume(ctx, pvName);
    expect(pv.metadata.finalizers).toEqual([LOCAL_PATH_FINALIZER, 'kubernetes.io/pv-protection']);
    expect(pv.metadata.annotations?.['pv.kubernetes.io/provisioned-by']).toBe('rancher.io/local-path');
    expect(pv.spec).toMatchObject({
      capacity: { storage: '1Gi' },
      persistentVolumeReclaimPolicy: 'Delete',
      storageClassName: 'local-path',
      hostPath: { path: `/var/lib/skiff-n1/local-path/${pvName}`, type: 'DirectoryOrCreate' },
      nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['n1'] }] }] } },
      claimRef: { kind: 'PersistentVolumeClaim', namespace: 'default', name: 'data', uid: c.metadata.uid },
    });
    expect(pv.status.phase).toBe('Bound');
    expect(await reasons(ctx, 'data')).toContain(`Normal ProvisioningSucceeded: Successfully provisioned volume ${pvName}`);

    // Duplicated and reordered delivery: volume keys before claim keys, each several times: nothing changes.
    const before = [(await getClaim(ctx, 'data')).metadata.resourceVersion, (await getVolume(ctx, pvName)).metadata.resourceVersion];
    for (const k of [`volume:${pvName}`, 'claim:default/data', `volume:${pvName}`, 'claim:default/data', 'claim:default/data']) await pvc.reconcile(k, ctx);
    expect([(await getClaim(ctx, 'data')).metadata.resourceVersion, (await getVolume(ctx, pvName)).metadata.resourceVersion]).toEqual(before);
    expect((await ctx.registry.list(volumesRes, undefined)).items.map((v) => v.metadata.name)).toEqual([pvName]);
  });

  it.runIf(enabled)('a claim provisioned twice at once (redelivered key) still gets one volume', async () => {
    const ctx = await newCtx(await makeStore());
    await addNode(ctx, 'n1');
    await ctx.create(claimsRes, 'default', claim('twice', { storageClassName: 'local-path' }));
    await selectNode(ctx, 'twice', 'n1');
    await Promise.all([pvc.reconcile('claim:default/twice', ctx), pvc.reconcile('claim:default/twice', ctx), pvc.reconcile('claim:default/twice', ctx)]);
    await settle(ctx);
    const vols = (await ctx.registry.list(volumesRes, undefined)).items;
    expect(vols).toHaveLength(1);
    expect((await getClaim(ctx, 'twice')).spec.volumeName).toBe(vols[0]!.metadata.name);
  });

  it.runIf(enabled)('binds a claim statically to the smallest volume that fits; a claim nothing fits, of a class that does not exist, stays Pending with a Warning', async () => {
    const ctx = await newCtx(await makeStore());
    await ctx.create(volumesRes, undefined, staticVolume('big', '10Gi'));
    await ctx.create(volumesRes, undefined, staticVolume('small', '2Gi'));
    await ctx.create(volumesRes, undefined, staticVolume('tiny', '500Mi'));
    await ctx.create(volumesRes, undefined, staticVolume('rwx', '2Gi', { accessModes: ['ReadWriteMany'] }));
    await settle(ctx);
    expect((await getVolume(ctx, 'small')).status.phase).toBe('Available');
    await ctx.create(claimsRes, 'default', claim('one', { storageClassName: 'manual' }));
    await ctx.create(claimsRes, 'default', claim('huge', { storageClassName: 'manual' }, '50Gi'));
    await settle(ctx);
    expect((await getClaim(ctx, 'one')).spec.volumeName).toBe('small');
    expect((await getClaim(ctx, 'one')).status).toMatchObject({ phase: 'Bound', capacity: { storage: '2Gi' } });
    expect((await getVolume(ctx, 'small')).status.phase).toBe('Bound');
    expect((await getVolume(ctx, 'big')).status.phase).toBe('Available');
    expect((await getClaim(ctx, 'huge')).status.phase).toBe('Pending');
    expect(await reasons(ctx, 'huge')).toContain('Warning ProvisioningFailed: storageclass.storage.k8s.io "manual" not found');

    // Retain: the claim goes, the volume stays Released.
    await ctx.registry.delete(claimsRes, 'default', 'one');
    await settle(ctx);
    expect(await gone(getClaim(ctx, 'one'))).toBe(true);
    expect((await getVolume(ctx, 'small')).status.phase).toBe('Released');
  });

  it.runIf(enabled)('a claim being deleted stays while a pod uses it; then its volume is Released and deleted, and goes once its node has cleaned up', async () => {
    const ctx = await newCtx(await makeStore());
    await addNode(ctx, 'n1');
    await ctx.create(claimsRes, 'default', claim('data'));
    await selectNode(ctx, 'data', 'n1');
    await settle(ctx);
    const pvName = (await getClaim(ctx, 'data')).spec.volumeName as string;
    await ctx.create(podsRes, 'default', {
      metadata: { name: 'user' },
      spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'busybox' }], volumes: [{ name: 'd', persistentVolumeClaim: { claimName: 'data' } }] },
    });
    await ctx.registry.delete(claimsRes, 'default', 'data');
    await settle(ctx);
    expect((await getClaim(ctx, 'data')).metadata.deletionTimestamp).toBeTruthy();
    expect((await getClaim(ctx, 'data')).metadata.finalizers).toEqual(['kubernetes.io/pvc-protection']);
    // A bound volume is not deleted either.
    await ctx.registry.delete(volumesRes, undefined, pvName);
    await settle(ctx);
    expect((await getVolume(ctx, pvName)).metadata.finalizers).toContain('kubernetes.io/pv-protection');

    await ctx.registry.delete(podsRes, 'default', 'user', { gracePeriodSeconds: 0 });
    // The pod's deletion is the event that wakes the claim.
    for (const k of pvc.keys({ type: 'DELETED', resource: podsRes, object: { metadata: { name: 'user', namespace: 'default' }, spec: { volumes: [{ name: 'd', persistentVolumeClaim: { claimName: 'data' } }] } } })) await pvc.reconcile(k, ctx);
    expect(await gone(getClaim(ctx, 'data'))).toBe(true);
    await settle(ctx);
    const pv = await getVolume(ctx, pvName);
    expect(pv.status.phase).toBe('Released');
    expect(pv.metadata.deletionTimestamp).toBeTruthy();
    // pv-protection is gone; the agent's finalizer holds the object until the directory is removed.
    expect(pv.metadata.finalizers).toEqual([LOCAL_PATH_FINALIZER]);
    await ctx.registry.guaranteedUpdate(volumesRes, undefined, pvName, undefined, {}, (cur) => ({ ...cur, metadata: { ...cur.metadata, finalizers: [] } }));
    expect(await gone(getVolume(ctx, pvName))).toBe(true);
  });

  it.runIf(enabled)('pre-binding: a claim naming a volume, and a volume whose claimRef names a claim, are bound to each other only', async () => {
    const ctx = await newCtx(await makeStore());
    await ctx.create(volumesRes, undefined, staticVolume('chosen', '5Gi'));
    await ctx.create(volumesRes, undefined, staticVolume('reserved', '1Gi', { claimRef: { namespace: 'default', name: 'mine' } }));
    await ctx.create(volumesRes, undefined, staticVolume('spare', '1Gi'));
    await ctx.create(claimsRes, 'default', claim('picky', { storageClassName: 'manual', volumeName: 'chosen' }));
    await ctx.create(claimsRes, 'default', claim('other', { storageClassName: 'manual' }));
    await settle(ctx);
    // "other" fits "reserved" best by size, but that one waits for "mine"; it gets "spare".
    expect((await getClaim(ctx, 'other')).spec.volumeName).toBe('spare');
    expect((await getVolume(ctx, 'reserved')).status.phase).toBe('Available');
    const picky = await getClaim(ctx, 'picky');
    expect(picky.status).toMatchObject({ phase: 'Bound', capacity: { storage: '5Gi' } });
    expect(picky.metadata.annotations?.['pv.kubernetes.io/bound-by-controller']).toBeUndefined();
    expect((await getVolume(ctx, 'chosen')).spec.claimRef).toMatchObject({ name: 'picky', uid: picky.metadata.uid });
    await ctx.create(claimsRes, 'default', claim('mine', { storageClassName: 'manual' }));
    await settle(ctx);
    const mine = await getClaim(ctx, 'mine');
    expect(mine.spec.volumeName).toBe('reserved');
    expect((await getVolume(ctx, 'reserved')).spec.claimRef.uid).toBe(mine.metadata.uid);
    expect((await getVolume(ctx, 'reserved')).status.phase).toBe('Bound');
  });

  it.runIf(enabled)('a claim created before any default class gets it retroactively', async () => {
    const api = new ApiServer({ backend: (await makeStore())() });
    const ctx = api.controllerContext();
    await ctx.registry.create(nsRes, undefined, { metadata: { name: 'default' } });
    await ctx.create(claimsRes, 'default', claim('early'));
    expect((await getClaim(ctx, 'early')).spec.storageClassName).toBeUndefined();
    await settle(ctx);
    expect(await reasons(ctx, 'early')).toContain('Normal FailedBinding: no persistent volumes available for this claim and no storage class is set');
    await ensureDefaultStorageClass(ctx.registry);
    await settle(ctx);
    expect((await getClaim(ctx, 'early')).spec.storageClassName).toBe('local-path');
  });
});

// ---- the cloud path: real DynamoDB stream records, delivered once, again, and in reverse ----

const ddb = await dynamoTestEndpoint();
afterAll(async () => ddb?.stop());

/** Every record on the table's stream so far, as Lambda would deliver them. */
async function streamRecords(tableName: string): Promise<DynamoDBRecord[]> {
  const streams = new DynamoDBStreamsClient({ endpoint: ddb!.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  const arn = (await ddb!.client.send(new DescribeTableCommand({ TableName: tableName }))).Table!.LatestStreamArn!;
  const shards = (await streams.send(new DescribeStreamCommand({ StreamArn: arn }))).StreamDescription!.Shards!;
  const out: DynamoDBRecord[] = [];
  for (const sh of shards) {
    let it = (await streams.send(new GetShardIteratorCommand({ StreamArn: arn, ShardId: sh.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
    for (let i = 0; it && i < 100; i++) {
      const r = await streams.send(new GetRecordsCommand({ ShardIterator: it }));
      out.push(...((r.Records ?? []) as unknown as DynamoDBRecord[]));
      if (!r.Records?.length) break;
      it = r.NextShardIterator;
    }
  }
  streams.destroy();
  return out;
}

describe.skipIf(!ddb)('PersistentVolume controller on the DynamoDB stream', () => {
  it('provisions and binds from stream batches; redelivered and reversed batches write nothing more', async () => {
    const tableName = uniqueTableName('skiff-pvstream');
    await ensureTable(ddb!.client, tableName);
    const backend = new DynamoBackend({ client: ddb!.client, tableName });
    const ctx = new ApiServer({ backend }).controllerContext();
    await ctx.registry.create(nsRes, undefined, { metadata: { name: 'default' } });
    await ensureDefaultStorageClass(ctx.registry);
    await addNode(ctx, 'n1');
    await ctx.create(claimsRes, 'default', claim('data'));
    await selectNode(ctx, 'data', 'n1');

    // What the deployed event source mapping lets through to the controller manager.
    const batch = async () => (await streamRecords(tableName)).filter((r) => passesFilters(streamFilterPatterns(pvc), r));
    const first = await handleStreamBatch([pvc], ctx, await batch());
    expect(first.batchItemFailures).toEqual([]);
    // The volume's own events (ADDED, claimRef, Bound) and the claim's bind come in the next batch.
    for (let i = 0; i < 2; i++) expect((await handleStreamBatch([pvc], ctx, await batch())).batchItemFailures).toEqual([]);
    const c = await getClaim(ctx, 'data');
    expect(c.status.phase).toBe('Bound');
    expect((await getVolume(ctx, c.spec.volumeName)).status.phase).toBe('Bound');

    const rev = await backend.currentRevision();
    const all = await batch();
    await handleStreamBatch([pvc], ctx, all);
    await handleStreamBatch([pvc], ctx, [...all].reverse());
    expect(await backend.currentRevision()).toBe(rev);
    expect((await ctx.registry.list(volumesRes, undefined)).items).toHaveLength(1);
  });
});
