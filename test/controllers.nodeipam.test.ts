// The node IPAM controller (lambdas/controllers/nodeipam.ts) on the real stores (SQLite, and DynamoDB
// through moto): distinct blocks under concurrent reconciles from two "processes" on one store,
// at-least-once delivery (duplicated, reversed, batched, restarted), nodes that bring their own
// podCIDR, release on delete (also a missed delete), a crash between taking a block and writing the
// Node, the full range (CIDRNotAvailable), and the live change feed.

import { describe, expect, it } from 'vitest';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { runControllers } from '../lambdas/local/controllers.ts';
import type { ChangeEvent, Controller, ControllerContext } from '../lambdas/controllers/controller.ts';
import { createNodeIpamController, nodeIpamController, nodeIpamControllerFromEnv, nodePodCIDRs, POD_CIDR_PREFIX, REPAIR_KEY } from '../lambdas/controllers/nodeipam.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import { ApiError } from '../lambdas/machinery/status.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import type { Backend } from '../lambdas/storage/backend.ts';
import { StoreReader } from '../lambdas/controllers/cache.ts';
import { testStores } from './support/backends.ts';
import { until } from './support/until.ts';

const nodesRes = findResource('', 'v1', 'nodes')!;
const nsRes = findResource('', 'v1', 'namespaces')!;
const eventsRes = findResource('', 'v1', 'events')!;

const stores = await testStores('ipam');

async function newCtx(backend: Backend, withNamespace = true): Promise<ControllerContext> {
  const ctx = new ApiServer({ backend }).controllerContext();
  if (withNamespace) await ctx.registry.create(nsRes, undefined, { metadata: { name: 'default' } });
  return ctx;
}

const nodeObj = (name: string, spec: Record<string, any> = {}): KubeObject => ({ apiVersion: 'v1', kind: 'Node', metadata: { name }, spec });
const ev = (type: ChangeEvent['type'], object: KubeObject): ChangeEvent => ({ type, resource: nodesRes, object });

/** Delivers events the way the stream does: keys, deduplicated, then reconcile each. */
async function deliver(c: Controller, ctx: ControllerContext, events: ChangeEvent[]): Promise<void> {
  for (const k of new Set(events.flatMap((e) => c.keys(e)))) await c.reconcile(k, ctx);
}

async function cidrOf(ctx: ControllerContext, name: string): Promise<string | undefined> {
  const n = await ctx.registry.get(nodesRes, undefined, name);
  // Both fields, always equal: what kubectl and the route controller read.
  expect(n.spec?.podCIDRs ?? (n.spec?.podCIDR ? [n.spec.podCIDR] : [])).toEqual(n.spec?.podCIDR ? [n.spec.podCIDR] : []);
  return n.spec?.podCIDR;
}

/** Allocation keys as "cidr -> owner node name(uid)". */
async function heldBlocks(ctx: ControllerContext): Promise<Record<string, { node: string; uid: string }>> {
  const out: Record<string, { node: string; uid: string }> = {};
  for (const kv of (await ctx.registry.backend.list(POD_CIDR_PREFIX)).kvs) {
    const o = JSON.parse(kv.value);
    out[kv.key.slice(POD_CIDR_PREFIX.length).replace('-', '/')] = { node: o.node, uid: o.uid };
  }
  return out;
}

/** Every node has a block, no two share one, and exactly the nodes' blocks are held, by them. */
async function expectConsistent(ctx: ControllerContext): Promise<Map<string, string>> {
  const byNode = new Map<string, string>();
  const held = await heldBlocks(ctx);
  for (const n of (await ctx.registry.list(nodesRes, undefined)).items) {
    const cidrs = nodePodCIDRs(n);
    expect(cidrs, `node ${n.metadata.name}`).toHaveLength(1);
    byNode.set(n.metadata.name!, cidrs[0]!);
    expect(held[cidrs[0]!]).toEqual({ node: n.metadata.name, uid: n.metadata.uid });
  }
  expect(new Set(byNode.values()).size).toBe(byNode.size);
  expect(Object.keys(held).sort()).toEqual([...byNode.values()].sort());
  return byNode;
}

async function eventsAbout(ctx: ControllerContext, name: string): Promise<KubeObject[]> {
  return (await ctx.registry.list(eventsRes, 'default')).items.filter((e) => e.involvedObject?.name === name);
}

describe('node IPAM options', () => {
  it('refuses ranges it cannot cut', () => {
    expect(() => createNodeIpamController({ clusterCIDR: '10.244.0.0' })).toThrow(/invalid clusterCIDR/);
    expect(() => createNodeIpamController({ clusterCIDR: 'fd00::/48' })).toThrow(/invalid clusterCIDR/);
    expect(() => createNodeIpamController({ clusterCIDR: '10.244.0.0/16', nodeCIDRMaskSize: 15 })).toThrow(/between 16 and 32/);
    expect(() => createNodeIpamController({ clusterCIDR: '10.0.0.0/8', nodeCIDRMaskSize: 28 })).toThrow(/between 8 and 24/);
    expect(() => createNodeIpamController({ clusterCIDR: '10.0.0.0/8', nodeCIDRMaskSize: 24 })).not.toThrow();
    // The Lambda's configuration: the same options from the environment.
    expect(nodeIpamControllerFromEnv({}).name).toBe('node-ipam-controller');
    expect(() => nodeIpamControllerFromEnv({ SKIFF_CLUSTER_CIDR: '10.0.0.0/16', SKIFF_NODE_CIDR_MASK_SIZE: '8' })).toThrow(/between 16 and 32/);
    expect(() => nodeIpamControllerFromEnv({ SKIFF_CLUSTER_CIDR: 'x' })).toThrow(/invalid clusterCIDR/);
  });
});

for (const [label, makeStore, enabled] of stores) {
  describe.skipIf(!enabled)(`node IPAM controller (${label})`, () => {
    it('concurrent reconciles from two processes on one store never give one block to two nodes', async () => {
      const open = await makeStore();
      const a = await newCtx(open());
      const b = await newCtx(open(), false);
      // Two controller instances: two Lambda execution environments, or two local processes.
      const ca = createNodeIpamController();
      const cb = createNodeIpamController();
      const names = Array.from({ length: 12 }, (_, i) => `c${i}`);
      for (const n of names) await a.registry.create(nodesRes, undefined, nodeObj(n));
      // Every node reconciled four times at once: twice on each process.
      await Promise.all(names.flatMap((n) => [ca.reconcile(n, a), cb.reconcile(n, b), ca.reconcile(n, a), cb.reconcile(n, b)]));
      const got = await expectConsistent(a);
      expect(got.size).toBe(12);
      // All in the range (which blocks depends on who won which race: losers give theirs back).
      for (const c of got.values()) expect(c).toMatch(/^10\.244\.\d+\.0\/24$/);
      // Reconciling again (a resync on either process) writes nothing.
      const rev = await a.registry.backend.currentRevision();
      await Promise.all(names.flatMap((n) => [ca.reconcile(n, a), cb.reconcile(n, b)]));
      expect(await a.registry.backend.currentRevision()).toBe(rev);
    });

    it('a stream batch of new Nodes lists the held blocks and the Nodes once, also with another batch racing it', async () => {
      const open = await makeStore();
      const a = await newCtx(open());
      const b = await newCtx(open(), false);
      // Key listings per store handle: before, each new Node listed every held block and every Node.
      const keyLists = new Map<Backend, number>();
      for (const backend of [a.registry.backend, b.registry.backend]) {
        const list = backend.list.bind(backend);
        backend.list = ((prefix: string, ...rest: unknown[]) => {
          if (prefix === POD_CIDR_PREFIX) keyLists.set(backend, (keyLists.get(backend) ?? 0) + 1);
          return (list as (...args: unknown[]) => ReturnType<Backend['list']>)(prefix, ...rest);
        }) as Backend['list'];
      }
      const evs: ChangeEvent[] = [];
      for (let i = 0; i < 15; i++) evs.push(ev('ADDED', await a.registry.create(nodesRes, undefined, nodeObj(`s${i}`))));
      // Two instances' batches at once (a stream batch, and another shard's or a resync), sharing s5..s9;
      // each batch has a reader of its own, as stream.ts gives it.
      const batchA = { ...a, cache: new StoreReader(a.registry) };
      const batchB = { ...b, cache: new StoreReader(b.registry) };
      await Promise.all([deliver(createNodeIpamController(), batchA, evs.slice(0, 10)), deliver(createNodeIpamController(), batchB, evs.slice(5))]);
      expect(keyLists.get(a.registry.backend)).toBe(1);
      expect(keyLists.get(b.registry.backend)).toBe(1);
      expect(batchA.cache.listed).toEqual(['/nodes *']);
      expect(batchB.cache.listed).toEqual(['/nodes *']);
      const first = await expectConsistent(a);
      expect(first.size).toBe(15);
      // A later batch lists again (its view is its own): a deleted Node's block is given back.
      const c = createNodeIpamController();
      const listed = keyLists.get(a.registry.backend)!; // expectConsistent lists them too
      await a.registry.delete(nodesRes, undefined, 's3');
      await deliver(c, { ...a, cache: new StoreReader(a.registry) }, [ev('DELETED', evs[3]!.object)]);
      expect(keyLists.get(a.registry.backend)).toBe(listed + 2); // the Node's key, then the sweep's
      const after = await expectConsistent(a);
      expect(after.size).toBe(14);
      expect(Object.keys(await heldBlocks(a))).not.toContain(first.get('s3'));
    });

    it('duplicated, reversed and batched delivery, and a restarted controller, never move a block', async () => {
      const open = await makeStore();
      const ctx = await newCtx(open());
      const c = nodeIpamController;
      const evs: ChangeEvent[] = [];
      for (const n of ['d0', 'd1', 'd2', 'd3']) evs.push(ev('ADDED', await ctx.registry.create(nodesRes, undefined, nodeObj(n))));
      await deliver(c, ctx, [...evs].reverse());
      const first = await expectConsistent(ctx);
      // The nodes' own updates (status, labels) come back as MODIFIED events; stale ADDED ones are redelivered.
      const mods: ChangeEvent[] = [];
      for (const n of ['d2', 'd0']) {
        mods.push(ev('MODIFIED', await ctx.registry.guaranteedUpdate(nodesRes, undefined, n, undefined, {}, (o) => ({ ...o, metadata: { ...o.metadata, labels: { seen: 'yes' } } }))));
      }
      await deliver(c, ctx, [...mods, ...evs, ...evs, ...mods.reverse()]);
      for (const e of evs) await c.reconcile(e.object.metadata.name!, ctx); // one at a time, too
      expect(await expectConsistent(ctx)).toEqual(first);
      // A new controller instance on a new handle (a restart; a cold Lambda) resyncs: nothing moves.
      const restarted = await newCtx(open(), false);
      const fresh = createNodeIpamController();
      const rev = await ctx.registry.backend.currentRevision();
      for (const k of await fresh.allKeys(restarted)) await fresh.reconcile(k, restarted);
      expect(await expectConsistent(restarted)).toEqual(first);
      expect(await restarted.registry.backend.currentRevision()).toBe(rev);
      // And the apiserver refuses to move an assigned podCIDR (validation: set once).
      const err = await ctx.registry
        .guaranteedUpdate(nodesRes, undefined, 'd1', undefined, {}, (o) => ({ ...o, spec: { ...o.spec, podCIDR: '10.244.200.0/24', podCIDRs: ['10.244.200.0/24'] } }))
        .catch((e) => e);
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).code).toBe(422);
      expect(await cidrOf(ctx, 'd1')).toBe(first.get('d1'));
    });

    it('a node that brings its own podCIDR keeps it, and that block is never handed out', async () => {
      const ctx = await newCtx((await makeStore())());
      const c = nodeIpamController;
      // Created by an agent started with --pod-cidr, not yet reconciled; one outside the range too.
      await ctx.registry.create(nodesRes, undefined, nodeObj('own', { podCIDR: '10.244.1.0/24' }));
      await ctx.registry.create(nodesRes, undefined, nodeObj('outside', { podCIDR: '10.64.0.0/24', podCIDRs: ['10.64.0.0/24'] }));
      for (const n of ['x0', 'x1', 'x2']) await ctx.registry.create(nodesRes, undefined, nodeObj(n));
      for (const n of ['x0', 'x1', 'x2']) await c.reconcile(n, ctx);
      expect([await cidrOf(ctx, 'x0'), await cidrOf(ctx, 'x1'), await cidrOf(ctx, 'x2')]).toEqual(['10.244.0.0/24', '10.244.2.0/24', '10.244.3.0/24']);
      await c.reconcile('own', ctx);
      await c.reconcile('outside', ctx);
      expect(await cidrOf(ctx, 'own')).toBe('10.244.1.0/24');
      expect(await cidrOf(ctx, 'outside')).toBe('10.64.0.0/24');
      const held = await heldBlocks(ctx);
      expect(held['10.244.1.0/24']?.node).toBe('own');
      expect(Object.keys(held)).toHaveLength(4); // the out-of-range block is not ours to hold
    });

    it('releases a block when its node is deleted (also a missed delete, and a same-name re-create)', async () => {
      const ctx = await newCtx((await makeStore())());
      const c = nodeIpamController;
      for (const n of ['r0', 'r1', 'r2']) {
        await ctx.registry.create(nodesRes, undefined, nodeObj(n));
        await c.reconcile(n, ctx);
      }
      expect(await cidrOf(ctx, 'r1')).toBe('10.244.1.0/24');
      // Deleted with its event delivered (twice).
      const gone = (await ctx.registry.delete(nodesRes, undefined, 'r1')).object;
      await deliver(c, ctx, [ev('DELETED', gone), ev('DELETED', gone)]);
      expect(Object.keys(await heldBlocks(ctx)).sort()).toEqual(['10.244.0.0/24', '10.244.2.0/24']);
      // The freed block is the lowest free one again.
      await ctx.registry.create(nodesRes, undefined, nodeObj('r3'));
      await c.reconcile('r3', ctx);
      expect(await cidrOf(ctx, 'r3')).toBe('10.244.1.0/24');
      // Deleted while no controller ran: the resync's sweep frees the block (and only it).
      await ctx.registry.delete(nodesRes, undefined, 'r2');
      const keys = await c.allKeys(ctx);
      expect(keys.sort()).toEqual([REPAIR_KEY, 'r0', 'r3']);
      for (const k of keys) await c.reconcile(k, ctx);
      expect(Object.keys(await heldBlocks(ctx)).sort()).toEqual(['10.244.0.0/24', '10.244.1.0/24']);
      expect((await heldBlocks(ctx))['10.244.2.0/24']).toBeUndefined();
      // Deleted and re-created under the same name before any reconcile: the old Node's block is
      // freed, the new Node (new uid) gets one of its own.
      const oldUid = (await ctx.registry.get(nodesRes, undefined, 'r0')).metadata.uid;
      await ctx.registry.delete(nodesRes, undefined, 'r0');
      const again = await ctx.registry.create(nodesRes, undefined, nodeObj('r0'));
      expect(again.metadata.uid).not.toBe(oldUid);
      await c.reconcile('r0', ctx);
      const map = await expectConsistent(ctx);
      expect(map.get('r0')).toBe('10.244.0.0/24');
      expect((await heldBlocks(ctx))['10.244.0.0/24']).toEqual({ node: 'r0', uid: again.metadata.uid });
    });

    it('a block taken just before a crash is used by the next reconcile, a stray one is given back', async () => {
      const ctx = await newCtx((await makeStore())());
      const c = nodeIpamController;
      const n = await ctx.registry.create(nodesRes, undefined, nodeObj('k0'));
      const owner = (cidr: string) => JSON.stringify({ node: 'k0', uid: n.metadata.uid, allocatedAt: new Date().toISOString() });
      // The state a reconcile leaves when it dies after taking 10.244.7.0/24 and before writing the Node.
      await ctx.registry.backend.create(`${POD_CIDR_PREFIX}10.244.7.0-24`, owner('10.244.7.0/24'));
      await c.reconcile('k0', ctx);
      expect(await cidrOf(ctx, 'k0')).toBe('10.244.7.0/24');
      // A racing reconcile's key left behind for the same Node (it crashed after losing): the sweep
      // (every resync) gives it back; the Node's own block stays.
      await ctx.registry.backend.create(`${POD_CIDR_PREFIX}10.244.9.0-24`, owner('10.244.9.0/24'));
      await c.reconcile('k0', ctx);
      await c.reconcile(REPAIR_KEY, ctx);
      expect(await heldBlocks(ctx)).toEqual({ '10.244.7.0/24': { node: 'k0', uid: n.metadata.uid } });
      // A Node still without a podCIDR keeps its pending key through a sweep: it may be writing it now.
      const p = await ctx.registry.create(nodesRes, undefined, nodeObj('k1'));
      await ctx.registry.backend.create(`${POD_CIDR_PREFIX}10.244.3.0-24`, JSON.stringify({ node: 'k1', uid: p.metadata.uid, allocatedAt: new Date().toISOString() }));
      await c.reconcile(REPAIR_KEY, ctx);
      expect((await heldBlocks(ctx))['10.244.3.0/24']).toEqual({ node: 'k1', uid: p.metadata.uid });
      await c.reconcile('k1', ctx);
      expect(await cidrOf(ctx, 'k1')).toBe('10.244.3.0/24');
    });

    it('a full range records CIDRNotAvailable, and the node gets a block once one is freed', async () => {
      const ctx = await newCtx((await makeStore())());
      // Two /24 blocks in all.
      const c = createNodeIpamController({ clusterCIDR: '10.250.0.0/23', nodeCIDRMaskSize: 24, fullRetryMs: 5000 });
      for (const n of ['f0', 'f1', 'f2']) await ctx.registry.create(nodesRes, undefined, nodeObj(n));
      await c.reconcile('f0', ctx);
      await c.reconcile('f1', ctx);
      expect(await c.reconcile('f2', ctx)).toEqual({ requeueAfterMs: 5000 });
      expect(await c.reconcile('f2', ctx)).toEqual({ requeueAfterMs: 5000 });
      expect(await cidrOf(ctx, 'f2')).toBeUndefined();
      const evs = await eventsAbout(ctx, 'f2');
      expect(evs.map((e) => [e.type, e.reason, e.message, e.involvedObject.kind, e.source?.component, e.count])).toEqual([
        ['Normal', 'CIDRNotAvailable', 'Node f2 status is now: CIDRNotAvailable', 'Node', 'cidrAllocator', 2],
      ]);
      expect(await eventsAbout(ctx, 'f0')).toEqual([]);
      // f0 is deleted and nobody tells the controller: the full-range repair finds its block unowned.
      const f0Block = await cidrOf(ctx, 'f0');
      await ctx.registry.delete(nodesRes, undefined, 'f0');
      expect(await c.reconcile('f2', ctx)).toBeUndefined();
      expect(await cidrOf(ctx, 'f2')).toBe(f0Block);
      await expectConsistent(ctx);
    });

    it('a stream batch whose Nodes find the range full sweeps once, not once per Node', async () => {
      const ctx = await newCtx((await makeStore())());
      // Two /24 blocks in all, for five Nodes: three find the range full.
      const c = createNodeIpamController({ clusterCIDR: '10.250.0.0/23', nodeCIDRMaskSize: 24, fullRetryMs: 5000 });
      const evs: ChangeEvent[] = [];
      for (let i = 0; i < 5; i++) evs.push(ev('ADDED', await ctx.registry.create(nodesRes, undefined, nodeObj(`full${i}`))));
      // Lists of Nodes through the registry: the batch's reader's one (StoreReader.listed), and the sweep's.
      let nodeLists = 0;
      const list = ctx.registry.list.bind(ctx.registry);
      ctx.registry.list = ((res: { resource: string }, ...rest: unknown[]) => {
        if (res.resource === 'nodes') nodeLists++;
        return (list as (...args: unknown[]) => ReturnType<typeof ctx.registry.list>)(res, ...rest);
      }) as typeof ctx.registry.list;
      const batch = new StoreReader(ctx.registry);
      await deliver(c, { ...ctx, cache: batch }, evs);
      expect(batch.listed).toEqual(['/nodes *']);
      expect(nodeLists).toBe(2);
      const withBlock = async () => {
        const out = new Map<string, string>();
        for (const n of (await ctx.registry.list(nodesRes, undefined)).items) if (n.spec?.podCIDR) out.set(n.metadata.name!, n.spec.podCIDR);
        return out;
      };
      const first = await withBlock();
      expect(first.size).toBe(2);
      expect(Object.keys(await heldBlocks(ctx)).sort()).toEqual([...first.values()].sort());
      // The next batch sweeps again (its own): a Node deleted meanwhile gives its block to a waiting one.
      const [goneName, goneBlock] = [...first.entries()][0]!;
      const gone = evs.find((e) => e.object.metadata.name === goneName)!;
      await ctx.registry.delete(nodesRes, undefined, goneName);
      const waiting = evs.filter((e) => !first.has(e.object.metadata.name!));
      const counted = nodeLists;
      await deliver(c, { ...ctx, cache: new StoreReader(ctx.registry) }, [ev('DELETED', gone.object), ...waiting]);
      expect(nodeLists).toBe(counted + 2); // the new batch's reader, and its one sweep
      const second = await withBlock();
      expect([...second.values()]).toContain(goneBlock);
      expect(second.size).toBe(2);
    });

    it('runs on the live change feed: new nodes get blocks, deleted ones give them back', async () => {
      const ctx = await newCtx((await makeStore())());
      const runner = runControllers(ctx, [nodeIpamController], { resyncMs: 3_600_000 });
      try {
        for (const n of ['l0', 'l1', 'l2']) await ctx.registry.create(nodesRes, undefined, nodeObj(n));
        await until('three blocks', async () => (await ctx.registry.list(nodesRes, undefined)).items.every((n) => nodePodCIDRs(n).length === 1), 15_000, 50);
        const map = await expectConsistent(ctx);
        expect([...map.values()].sort()).toEqual(['10.244.0.0/24', '10.244.1.0/24', '10.244.2.0/24']);
        await ctx.registry.delete(nodesRes, undefined, 'l1');
        await until('l1 released', async () => !(map.get('l1')! in (await heldBlocks(ctx))), 15_000, 50);
        await expectConsistent(ctx);
      } finally {
        await runner.stop();
      }
    });
  });
}
