// The node IPAM controller: gives every Node without spec.podCIDR a block of the cluster's pod range
// (kube-controller-manager's --allocate-node-cidrs with the RangeAllocator: --cluster-cidr, default
// here 10.244.0.0/16, cut into --node-cidr-mask-size blocks, default /24), writes it to spec.podCIDR and
// spec.podCIDRs, and gives the block back when the Node is gone.
//
// Kubernetes keeps the taken blocks in the controller's memory, rebuilt from the Nodes at start. A
// Lambda has no such memory and two of them may reconcile at once, so, as ClusterIPs do
// (apiserver/service-alloc.ts), each taken block is one storage key, /registry/skiff.io/podcidrs/
// <network>-<bits>, created with the storage contract's `create` (KeyExists: someone holds it). Its value
// names the owner Node (name and uid). That gives, on SQLite and DynamoDB alike:
// - one block, one node: only the `create` that made the key may write that block into a Node;
// - at most one block per node: spec.podCIDR is immutable once set (validation.ts), the write is a CAS
//   that only fills an empty podCIDR, and a reconcile that lost that race gives its key back;
// - stable blocks: a node that has a podCIDR keeps it (a redelivered event, a restart, a resync only
//   re-assert its key); a key taken before a crash, whose node write never happened, is reused by the
//   next reconcile of that node instead of leaking.
//
// Ordering that makes releases safe without locks: whatever releases keys lists them BEFORE it reads
// the Node(s). A key is only created after its Node was read, so a key in the listing whose Node is
// missing (or has another uid) afterwards belongs to a Node that is gone; an allocator still in flight
// for it fails its Node write (NotFound, or the uid check) and releases its key itself.
//
// Cost: a Node event for a Node whose blocks are held (every status or label change) is two reads. A
// Node without a podCIDR, or a missing one, needs the keys held (one per node in the cluster) and the
// Nodes' own podCIDRs: in the cloud both are read once per stream batch and shared by its reconciles
// (heldFor below; the Nodes through the batch's reader), so a burst of N new Nodes costs N/batch
// listings, not N (it was one each, and at 1,000 Nodes registering at once those reads grew with N²).
// Locally the Nodes come from the informer and the keys are listed per reconcile (SQLite, in process).
// Leaks (a delete no reconcile saw, keys of a crashed loser) are swept by the key "*", queued on every
// Node delete and every resync.

import { findResource } from '../machinery/resources.ts';
import { ApiError } from '../machinery/status.ts';
import type { KubeObject } from '../machinery/types.ts';
import { formatCIDR, overlaps, parseIPv4CIDR, type IPv4Net } from '../machinery/cidr.ts';
import { StorageError, type Backend, type KeyValue } from '../storage/backend.ts';
import { StoreReader } from './cache.ts';
import { readerOf, type Controller, type ControllerContext, type ReconcileResult } from './controller.ts';
import { recordEvent } from './events.ts';
import { controllerUser } from './identity.ts';

const nodes = findResource('', 'v1', 'nodes')!;

export const POD_CIDR_PREFIX = '/registry/skiff.io/podcidrs/';
/** The sweep's key ("*" is no Node name: names are DNS subdomains). */
export const REPAIR_KEY = '*';

export interface NodeIpamOptions {
  /** The pod range nodes' blocks come from (--cluster-cidr). IPv4. Default 10.244.0.0/16. */
  clusterCIDR?: string;
  /** Prefix length of each node's block (--node-cidr-mask-size). Default 24. */
  nodeCIDRMaskSize?: number;
  /** When the range is full, look at the node again after this long (a block may have been freed). */
  fullRetryMs?: number;
}

interface Owner {
  node: string;
  uid: string;
  allocatedAt: string;
}

interface Held {
  kv: KeyValue;
  cidr: string;
  owner: Owner | undefined;
}

/**
 * The keys held as one reconcile sees them: `held` as listed (then kept current by this batch's own
 * creates and releases), and `busy`, keys another process took after the listing (found by KeyExists),
 * skipped by the next allocation of the batch instead of tried again.
 */
interface HeldView {
  held: Map<string, Held>;
  busy: Set<string>;
}

/** Thrown inside a Node write when the Node of that name is not the one the block was taken for. */
class NodeReplaced extends Error {}

/** The pod CIDRs a Node has: podCIDRs, else the legacy podCIDR (as validation.ts reads them). */
export function nodePodCIDRs(node: KubeObject): string[] {
  const list: unknown[] = Array.isArray(node.spec?.podCIDRs) ? node.spec.podCIDRs : [];
  if (list.length) return list.filter((c): c is string => typeof c === 'string' && c !== '');
  return typeof node.spec?.podCIDR === 'string' && node.spec.podCIDR ? [node.spec.podCIDR] : [];
}

const keyOf = (cidr: string) => POD_CIDR_PREFIX + cidr.replace('/', '-');
const cidrOfKey = (key: string) => key.slice(POD_CIDR_PREFIX.length).replace('-', '/');

function parseOwner(value: string): Owner | undefined {
  try {
    const o = JSON.parse(value) as Owner;
    return typeof o.node === 'string' && typeof o.uid === 'string' ? o : undefined;
  } catch {
    return undefined;
  }
}

async function getNode(ctx: ControllerContext, name: string): Promise<KubeObject | undefined> {
  try {
    return await ctx.registry.get(nodes, undefined, name);
  } catch (e) {
    if (e instanceof ApiError && e.code === 404) return undefined;
    throw e;
  }
}

/** Deletes an allocation key if it is still the version we saw (someone else may have re-taken it). */
async function releaseKey(backend: Backend, kv: KeyValue): Promise<boolean> {
  try {
    await backend.delete(kv.key, kv.modRevision);
    return true;
  } catch (e) {
    if (e instanceof StorageError && (e.code === 'NotFound' || e.code === 'Conflict')) return false;
    throw e;
  }
}

export function createNodeIpamController(opts: NodeIpamOptions = {}): Controller {
  const clusterCIDR = opts.clusterCIDR ?? '10.244.0.0/16';
  const maskSize = opts.nodeCIDRMaskSize ?? 24;
  const cluster = parseIPv4CIDR(clusterCIDR);
  if (!cluster) throw new Error(`node IPAM: invalid clusterCIDR ${JSON.stringify(clusterCIDR)}: want an IPv4 CIDR`);
  // Kubernetes' cidrset refuses more than 2^16 blocks; so do we (resync lists every key).
  if (!Number.isInteger(maskSize) || maskSize < cluster.bits || maskSize > 32 || maskSize - cluster.bits > 16) {
    throw new Error(`node IPAM: nodeCIDRMaskSize ${maskSize} must be between ${cluster.bits} and ${Math.min(32, cluster.bits + 16)} for ${formatCIDR(cluster)}`);
  }
  const blockSize = 2 ** (32 - maskSize);
  const blockCount = cluster.size / blockSize;
  const fullRetryMs = opts.fullRetryMs ?? 30_000;
  const blockAt = (i: number): string => formatCIDR({ base: cluster.base + i * blockSize, bits: maskSize, size: blockSize });

  /** The cluster blocks a podCIDR covers (none when it lies outside the cluster range). */
  function blocksOf(podCIDR: string): string[] {
    const net: IPv4Net | undefined = parseIPv4CIDR(podCIDR);
    if (!net || !overlaps(net, cluster!)) return [];
    const lo = Math.max(net.base, cluster!.base) - cluster!.base;
    const hi = Math.min(net.base + net.size, cluster!.base + cluster!.size) - cluster!.base;
    const out: string[] = [];
    for (let i = Math.floor(lo / blockSize); i * blockSize < hi; i++) out.push(blockAt(i));
    return out;
  }

  async function listHeld(backend: Backend): Promise<HeldView> {
    const held = new Map<string, Held>();
    for (const kv of (await backend.list(POD_CIDR_PREFIX)).kvs) held.set(kv.key, { kv, cidr: cidrOfKey(kv.key), owner: parseOwner(kv.value) });
    return { held, busy: new Set() };
  }

  // One listing per stream batch: the cloud runner gives each batch (and each resync) a StoreReader of its
  // own (stream.ts forOneBatch), so it identifies the batch. This loop reconciles one key at a time, so
  // the view it shares is changed by one reconcile at a time. It may be older than another instance's
  // writes; that is safe, as a fresh listing is too by the time it is used: a block is taken only by
  // `create` (KeyExists: someone holds it), a Node is written only if its podCIDR is empty, and a key
  // released only at the version listed. The locally long-lived informer cache is not a batch: there each
  // reconcile lists.
  const batchViews = new WeakMap<StoreReader, Promise<HeldView>>();
  /** A batch's sweep, run once however many of its Nodes find the range full (each would list every Node). */
  const batchRepairs = new WeakMap<StoreReader, Promise<number>>();
  const batchOf = (ctx: ControllerContext) => (ctx.cache instanceof StoreReader ? ctx.cache : undefined);
  function heldFor(ctx: ControllerContext): Promise<HeldView> {
    const batch = batchOf(ctx);
    return (batch && batchViews.get(batch)) ?? relist(ctx);
  }
  /** Lists the keys now; in a batch this listing becomes the batch's view. */
  function relist(ctx: ControllerContext): Promise<HeldView> {
    const view = listHeld(ctx.registry.backend);
    const batch = batchOf(ctx);
    if (batch) {
      batchViews.set(batch, view);
      view.catch(() => batchViews.delete(batch)); // a failed listing is not kept: the next key lists again
    }
    return view;
  }
  const hold = (view: HeldView, kv: KeyValue) => view.held.set(kv.key, { kv, cidr: cidrOfKey(kv.key), owner: parseOwner(kv.value) });
  /** releaseKey, and the key leaves the view. */
  async function release(backend: Backend, view: HeldView, kv: KeyValue): Promise<boolean> {
    view.held.delete(kv.key);
    return releaseKey(backend, kv);
  }

  const ownerValue = (node: KubeObject): string =>
    JSON.stringify({ node: node.metadata.name!, uid: node.metadata.uid!, allocatedAt: new Date().toISOString() } satisfies Owner);

  async function tryCreate(backend: Backend, key: string, node: KubeObject): Promise<KeyValue | undefined> {
    try {
      return await backend.create(key, ownerValue(node));
    } catch (e) {
      if (e instanceof StorageError && e.code === 'KeyExists') return undefined;
      throw e;
    }
  }

  /** Whether a key's owner is no longer a Node (listed before this check: see the header). */
  async function ownerGone(ctx: ControllerContext, owner: Owner | undefined): Promise<boolean> {
    if (!owner) return true;
    const n = await getNode(ctx, owner.node);
    return !n || n.metadata.uid !== owner.uid;
  }

  /**
   * The sweep (Kubernetes' allocator repair): frees keys whose owner Node is gone (a delete no reconcile
   * saw, a crash between taking a key and writing a Node since deleted) and keys a Node holds beyond its
   * podCIDR (a crash after losing a race). Keys are listed before the Nodes: see the header. Runs on
   * every resync, after a Node delete, and when the range looks full: once per stream batch (a batch's Node
   * deletions and full-range Nodes share it; what it freed is in the batch's view), per reconcile locally.
   */
  function repair(ctx: ControllerContext): Promise<number> {
    const batch = batchOf(ctx);
    if (!batch) return sweep(ctx);
    let done = batchRepairs.get(batch);
    if (!done) {
      done = sweep(ctx);
      batchRepairs.set(batch, done);
      done.catch(() => batchRepairs.delete(batch)); // a failed sweep is not kept: the next key sweeps again
    }
    return done;
  }

  async function sweep(ctx: ControllerContext): Promise<number> {
    const view = await relist(ctx);
    const live = new Map<string, KubeObject>();
    // From the store, not the batch's reader or the informer: this list must be newer than the keys'.
    for (const n of (await ctx.registry.list(nodes, undefined)).items) live.set(`${n.metadata.name}\0${n.metadata.uid}`, n);
    let freed = 0;
    for (const h of [...view.held.values()]) {
      const owner = h.owner && live.get(`${h.owner.node}\0${h.owner.uid}`);
      // A live owner without a podCIDR may be about to write this very block: it keeps it.
      if (owner && (!nodePodCIDRs(owner).length || nodePodCIDRs(owner).flatMap(blocksOf).includes(h.cidr))) continue;
      if (await release(ctx.registry.backend, view, h.kv)) freed++;
    }
    return freed;
  }

  /** Whether every block a Node's podCIDRs cover is held for that Node (the steady state). */
  async function allHeld(ctx: ControllerContext, node: KubeObject, cidrs: string[]): Promise<boolean> {
    for (const block of cidrs.flatMap(blocksOf)) {
      const kv = await ctx.registry.backend.get(keyOf(block));
      const o = kv && parseOwner(kv.value);
      if (!o || o.node !== node.metadata.name || o.uid !== node.metadata.uid) return false;
    }
    return true;
  }

  /**
   * Takes the lowest free block (as Kubernetes' cidrset hands them out in order). Blocks that a Node's
   * own podCIDR covers count as taken even before that Node's reconcile has held them (a node that came
   * with `--pod-cidr`), as Kubernetes occupies every existing Node's CIDR before it allocates.
   */
  async function takeFree(ctx: ControllerContext, node: KubeObject, view: HeldView): Promise<KeyValue | undefined> {
    const claimed = new Set<string>();
    // Through the reader: the informer locally, one list per batch in the cloud (a Node this batch gave a
    // block to shows in the view instead).
    for (const n of await readerOf(ctx).list(nodes, undefined)) for (const b of nodePodCIDRs(n).flatMap(blocksOf)) claimed.add(keyOf(b));
    for (let i = 0; i < blockCount; i++) {
      const key = keyOf(blockAt(i));
      if (view.held.has(key) || view.busy.has(key) || claimed.has(key)) continue;
      const kv = await tryCreate(ctx.registry.backend, key, node);
      if (kv) return hold(view, kv), kv;
      view.busy.add(key);
    }
    return undefined;
  }

  /**
   * A Node that has its podCIDR (given by us, or by the node itself: `skiff agent --pod-cidr`): makes
   * sure the blocks it covers are held for it, so they are never handed to another node.
   */
  async function occupy(ctx: ControllerContext, node: KubeObject, cidrs: string[], view: HeldView): Promise<void> {
    const backend = ctx.registry.backend;
    const { name, uid } = node.metadata;
    const create = async (key: string) => {
      const kv = await tryCreate(backend, key, node);
      if (kv) hold(view, kv);
      return kv;
    };
    for (const cidr of cidrs) {
      for (const block of blocksOf(cidr)) {
        const key = keyOf(block);
        const isMine = (o: Owner | undefined) => !!o && o.node === name && o.uid === uid;
        let h = view.held.get(key);
        if (h && isMine(h.owner)) continue;
        if (!h) {
          if (await create(key)) continue;
          const kv = await backend.get(key);
          if (!kv) continue; // taken and freed meanwhile: the next resync occupies it
          h = { kv, cidr: block, owner: parseOwner(kv.value) };
          if (isMine(h.owner)) continue;
        }
        // Held by another owner. A live one (even one still writing its Node) keeps it: taking it over
        // could give the block to two nodes. A gone one is replaced.
        if ((await ownerGone(ctx, h.owner)) && (await release(backend, view, h.kv)) && (await create(key))) continue;
        await recordEvent(ctx.registry, node, {
          type: 'Warning',
          reason: 'CIDRAssignmentFailed',
          message: `podCIDR ${cidr} of node ${name} overlaps ${block}, which is allocated to node ${h.owner?.node ?? 'unknown'}`,
          component: 'cidrAllocator',
        }).catch(() => undefined);
      }
    }
  }

  async function assign(ctx: ControllerContext, node: KubeObject, held: HeldView): Promise<ReconcileResult | void> {
    let view = held;
    const backend = ctx.registry.backend;
    const name = node.metadata.name!;
    const uid = node.metadata.uid;
    // A key this very Node took before (a reconcile that crashed, or one racing us): use it, lowest first.
    const pending = [...view.held.values()]
      .filter((h) => h.owner?.node === name && h.owner.uid === uid)
      .sort((a, b) => (parseIPv4CIDR(a.cidr)?.base ?? 0) - (parseIPv4CIDR(b.cidr)?.base ?? 0));
    let taken: KeyValue | undefined = pending[0]?.kv;
    if (!taken) taken = await takeFree(ctx, node, view);
    if (!taken && (await repair(ctx)) > 0) {
      view = await heldFor(ctx); // repair listed anew: the batch's view from here on
      taken = await takeFree(ctx, node, view);
    }
    if (!taken) {
      await recordEvent(ctx.registry, node, {
        type: 'Normal',
        reason: 'CIDRNotAvailable',
        message: `Node ${name} status is now: CIDRNotAvailable`,
        component: 'cidrAllocator',
      }).catch(() => undefined);
      return { requeueAfterMs: fullRetryMs };
    }
    const cidr = cidrOfKey(taken.key);
    let updated: KubeObject;
    try {
      updated = await ctx.registry.guaranteedUpdate(nodes, undefined, name, undefined, {}, (n) => {
        if (n.metadata.uid !== uid) throw new NodeReplaced();
        if (nodePodCIDRs(n).length) return n; // someone else was first: immutable from here on
        return { ...n, spec: { ...(n.spec ?? {}), podCIDR: cidr, podCIDRs: [cidr] } };
      });
    } catch (e) {
      if (e instanceof NodeReplaced || (e instanceof ApiError && e.code === 404)) {
        await release(backend, view, taken);
        return;
      }
      throw e; // the key stays ours: the retry reuses it (pending above)
    }
    // Keys of this Node that its podCIDR does not cover: a race we lost, or extra pending keys.
    const keep = new Set(nodePodCIDRs(updated).flatMap(blocksOf).map(keyOf));
    for (const kv of [taken, ...pending.map((p) => p.kv)]) if (!keep.has(kv.key)) await release(backend, view, kv);
  }

  return {
    name: 'node-ipam-controller',
    identity: controllerUser('node-controller'),
    watches: [nodes],
    // A delete also sweeps: the Node's name may already belong to a new Node with its own podCIDR.
    keys: (ev) => (ev.type === 'DELETED' ? [ev.object.metadata.name!, REPAIR_KEY] : [ev.object.metadata.name!]),
    async allKeys(ctx) {
      return [...(await readerOf(ctx).list(nodes, undefined)).map((n) => n.metadata.name!), REPAIR_KEY];
    },
    async reconcile(key, ctx) {
      if (key === REPAIR_KEY) return void (await repair(ctx));
      const name = key;
      // Fast path, what nearly every Node event (status, labels) costs: two reads, no listing.
      const seen = await getNode(ctx, name);
      if (seen && nodePodCIDRs(seen).length && (await allHeld(ctx, seen, nodePodCIDRs(seen)))) return;
      const backend = ctx.registry.backend;
      const view = await heldFor(ctx); // listed before the Node is read: see the header
      const node = await getNode(ctx, name);
      const mine = [...view.held.values()].filter((h) => h.owner?.node === name);
      // Blocks of a Node that is gone, or of an earlier Node of the same name: free.
      for (const h of mine) if (!node || h.owner!.uid !== node.metadata.uid) await release(backend, view, h.kv);
      if (!node) return;
      const cidrs = nodePodCIDRs(node);
      if (!cidrs.length) return assign(ctx, node, view);
      await occupy(ctx, node, cidrs, view);
      const keep = new Set(cidrs.flatMap(blocksOf).map(keyOf));
      for (const h of mine) if (h.owner!.uid === node.metadata.uid && !keep.has(h.kv.key)) await release(backend, view, h.kv);
    },
  };
}

export const nodeIpamController: Controller = createNodeIpamController();

/**
 * The node IPAM controller as a deployment configures it: SKIFF_CLUSTER_CIDR and
 * SKIFF_NODE_CIDR_MASK_SIZE (kube-controller-manager's --cluster-cidr and --node-cidr-mask-size).
 */
export function nodeIpamControllerFromEnv(env: Record<string, string | undefined> = process.env): Controller {
  const mask = env.SKIFF_NODE_CIDR_MASK_SIZE;
  return createNodeIpamController({ clusterCIDR: env.SKIFF_CLUSTER_CIDR || undefined, nodeCIDRMaskSize: mask ? Number(mask) : undefined });
}
