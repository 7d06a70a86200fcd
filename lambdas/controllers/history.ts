// ControllerRevision history shared by the DaemonSet and StatefulSet controllers (kube's
// pkg/controller/history and the two controllers' revision code). A revision is an immutable snapshot of
// its owner's pod template: `data` is a strategic-merge patch `{"spec":{"template":{..., "$patch":
// "replace"}}}`, which is what kubectl reads (rollout history prints the template it gives) and sends
// back (rollout undo patches the owner with it). Revisions are named `<owner>-<hash>`, hash over the data
// and status.collisionCount, so redelivered events and racing reconciles converge on one revision name;
// a name taken by different data is a hash collision, and bumping collisionCount picks another name.
//
// Also here, because both controllers need it: expectations by revision (as replication.ts keeps them),
// so a reconcile that just wrote pods reads them from a cache that shows its own writes.

import { isDeepStrictEqual } from 'node:util';
import { findResource } from '../machinery/resources.ts';
import { labelSelectorFromMetav1, type LabelSelector } from '../machinery/selectors.ts';
import { ApiError } from '../machinery/status.ts';
import type { KubeObject } from '../machinery/types.ts';
import { objectsSelectedBy } from './cache.ts';
import { readerOf, type ControllerContext } from './controller.ts';
import { controllerRef, controllerRefTo, isTerminating, withoutOwner } from './owners.ts';

export const controllerRevisions = findResource('apps', 'v1', 'controllerrevisions')!;

/** The label on pods and revisions naming the revision (DaemonSet: the hash; StatefulSet: the name). */
export const REVISION_LABEL = 'controller-revision-hash';

const ALPHANUMS = 'bcdfghjklmnpqrstvwxz2456789';

/** Go's hash/fnv New32 (FNV-1, not 1a), as kube's HashControllerRevision uses. */
function fnv1_32(bytes: Uint8Array, h = 0x811c9dc5): number {
  for (const b of bytes) {
    h = Math.imul(h, 0x01000193) >>> 0;
    h = (h ^ b) >>> 0;
  }
  return h;
}

/** rand.SafeEncodeString: every character mapped into an alphabet without vowels (no words, no 0/1/3). */
const safeEncode = (s: string) => [...s].map((c) => ALPHANUMS[c.charCodeAt(0) % ALPHANUMS.length]).join('');

/** kube's HashControllerRevision: FNV-1 over the data, then the collision count in decimal, if any. */
export function hashRevision(data: unknown, collisionCount?: number): string {
  let h = fnv1_32(Buffer.from(JSON.stringify(data)));
  if (collisionCount) h = fnv1_32(Buffer.from(String(collisionCount)), h);
  return safeEncode(String(h));
}

/** kube's ControllerRevisionName: the owner's name (cut to 223 characters) and the hash. */
export const revisionName = (owner: string, hash: string) => `${owner.slice(0, 223)}-${hash}`;

/** The data of an owner's revision: a patch that replaces spec.template (DaemonSet's and StatefulSet's getPatch). */
export function templatePatch(owner: KubeObject): { spec: { template: Record<string, unknown> } } {
  return { spec: { template: { ...structuredClone(owner.spec?.template ?? {}), $patch: 'replace' } } };
}

/** The pod template a revision holds (its patch applied to the owner: the template it replaces). */
export function templateOf(revision: KubeObject): Record<string, any> {
  const { $patch: _, ...t } = (revision.data?.spec?.template ?? {}) as Record<string, any>;
  return t;
}

/** Whether two revisions hold the same template (history.EqualRevision). */
export const sameData = (a: KubeObject, b: unknown) => isDeepStrictEqual(templateOf(a), templateOf({ data: b } as unknown as KubeObject));

/** The revisions an owner controls, oldest revision number first (ties by name). */
export async function ownedRevisions(ctx: ControllerContext, owner: KubeObject): Promise<KubeObject[]> {
  // The owner index is by namespace: in the cloud that is one list of the owner's namespace, not of all.
  const list = await readerOf(ctx).byIndex(controllerRevisions, 'owner', `${owner.metadata.namespace}/${owner.metadata.uid}`);
  return list
    .filter((r) => r.metadata.namespace === owner.metadata.namespace && controllerRef(r)?.uid === owner.metadata.uid)
    .sort((a, b) => (a.revision ?? 0) - (b.revision ?? 0) || a.metadata.name!.localeCompare(b.metadata.name!));
}

export interface History {
  /** Every revision of the owner, oldest first (including the one below). */
  revisions: KubeObject[];
  /** The revision of the owner's current template. */
  update: KubeObject;
  /** status.collisionCount as it must now be (raised when a hash collided). */
  collisionCount: number;
}

const maxRevision = (rs: KubeObject[]) => rs.reduce((m, r) => Math.max(m, r.revision ?? 0), 0);

/**
 * The revision of the owner's current template, made if new. An older revision with the same template
 * (kubectl rollout undo, or a template changed back) becomes the newest by getting the next revision
 * number, as kube's history does, instead of a duplicate being made.
 */
export async function currentRevision(ctx: ControllerContext, owner: KubeObject, kind: { apiVersion: string; kind: string }): Promise<History> {
  let revisions = await ownedRevisions(ctx, owner);
  if (await adoptRevisions(ctx, { ...owner, ...kind })) revisions = await ownedRevisions(ctx, owner);
  const data = templatePatch(owner);
  let collisionCount: number = owner.status?.collisionCount ?? 0;
  const next = maxRevision(revisions) + 1;
  const equal = revisions.filter((r) => sameData(r, data));
  if (equal.length) {
    let update = equal[equal.length - 1]!;
    if (update !== revisions[revisions.length - 1] && (update.revision ?? 0) < next - 1) {
      update = await ctx.registry.guaranteedUpdate(controllerRevisions, owner.metadata.namespace, update.metadata.name!, undefined, {}, (cur) =>
        (cur.revision ?? 0) >= next - 1 ? cur : { ...cur, revision: next },
      );
      revisions = [...revisions.filter((r) => r.metadata.uid !== update.metadata.uid), update];
    }
    return { revisions, update, collisionCount };
  }
  const ownerRef = controllerRefTo({ ...owner, apiVersion: kind.apiVersion, kind: kind.kind });
  // Bounded: each collision moves to another name; kube retries the same way (with the new count saved).
  for (let attempt = 0; attempt < 10; attempt++) {
    const hash = hashRevision(data, collisionCount);
    const name = revisionName(owner.metadata.name!, hash);
    const cr: KubeObject = {
      apiVersion: 'apps/v1',
      kind: 'ControllerRevision',
      metadata: {
        name,
        namespace: owner.metadata.namespace,
        labels: { ...(owner.spec?.template?.metadata?.labels ?? {}), [REVISION_LABEL]: hash },
        ...(owner.metadata.annotations ? { annotations: { ...owner.metadata.annotations } } : {}),
        ownerReferences: [ownerRef],
      },
      data,
      revision: next,
    };
    try {
      const made = await ctx.create(controllerRevisions, owner.metadata.namespace, cr);
      return { revisions: [...revisions, made], update: made, collisionCount };
    } catch (e) {
      if (!(e instanceof ApiError && e.reason === 'AlreadyExists')) throw e;
    }
    // Made by a racing reconcile (same data, ours): use it. Anything else under that name: a collision.
    let found: KubeObject | undefined;
    try {
      found = await ctx.registry.get(controllerRevisions, owner.metadata.namespace, name);
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 404)) throw e;
      continue;
    }
    if (controllerRef(found)?.uid === owner.metadata.uid && sameData(found, data)) {
      return { revisions: [...revisions.filter((r) => r.metadata.name !== name), found], update: found, collisionCount };
    }
    collisionCount++;
  }
  throw new Error(`could not find a free ControllerRevision name for ${owner.metadata.namespace}/${owner.metadata.name}`);
}

/**
 * Adopts orphan revisions the owner's selector matches (ClaimControllerRevisions: an owner deleted with
 * --cascade=orphan and made again keeps its history). Found through the label index; CAS on each.
 */
async function adoptRevisions(ctx: ControllerContext, owner: KubeObject): Promise<boolean> {
  const sel = ownerSelector(owner);
  const matchLabels: Record<string, string> = owner.spec?.selector?.matchLabels ?? {};
  if (!sel || isTerminating(owner) || !Object.keys(matchLabels).length) return false;
  const ns = owner.metadata.namespace!;
  const orphans = (await objectsSelectedBy(readerOf(ctx), controllerRevisions, ns, matchLabels)).filter((r) => !controllerRef(r) && !isTerminating(r) && sel.matches(r.metadata.labels ?? {}));
  let adopted = false;
  for (const r of orphans) {
    try {
      await ctx.registry.guaranteedUpdate(controllerRevisions, ns, r.metadata.name!, undefined, {}, (cur) => {
        if (cur.metadata.uid !== r.metadata.uid || controllerRef(cur) || !sel.matches(cur.metadata.labels ?? {})) return cur;
        adopted = true;
        const refs = (cur.metadata.ownerReferences ?? []).filter((o) => o.uid !== owner.metadata.uid);
        return { ...cur, metadata: { ...cur.metadata, ownerReferences: [...refs, controllerRefTo(owner)] } };
      });
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 404)) throw e;
    }
  }
  return adopted;
}

/**
 * Deletes the oldest revisions beyond spec.revisionHistoryLimit (default 10) that no live pod uses and
 * that are not `keep` (the current and update revisions). The two kube controllers count differently:
 * the StatefulSet's truncateHistory keeps `limit` revisions besides the live ones; the DaemonSet's
 * cleanupHistory counts the live ones towards the limit too (`liveCount`), so fewer idle ones stay.
 */
export async function truncateHistory(ctx: ControllerContext, owner: KubeObject, revisions: KubeObject[], live: Set<string>, keep: Set<string>, liveCount = false): Promise<void> {
  const limit: number = owner.spec?.revisionHistoryLimit ?? 10;
  const isLive = (r: KubeObject) => live.has(r.metadata.name!) || live.has(r.metadata.labels?.[REVISION_LABEL] ?? '');
  const old = revisions.filter((r) => !keep.has(r.metadata.name!) && (liveCount || !isLive(r)));
  let toKill = old.length - limit;
  for (const r of old) {
    if (toKill <= 0) break;
    if (isLive(r)) continue;
    toKill--;
    try {
      await ctx.registry.delete(controllerRevisions, owner.metadata.namespace, r.metadata.name!, { preconditions: { uid: r.metadata.uid } });
    } catch (e) {
      if (!(e instanceof ApiError && (e.code === 404 || e.code === 409))) throw e;
    }
  }
}

/**
 * Per owner uid, the store revision of the owner's last pod write not yet seen in the cache (kube's
 * expectations, counted in revisions as replication.ts does): reads wait for the cache to show it, and
 * read the store when the cache does not catch up in time.
 */
export class PodExpectations {
  private readonly pending = new Map<string, number>();
  constructor(private readonly pods = findResource('', 'v1', 'pods')!) {}

  wrote(owner: string, obj: KubeObject): void {
    this.pending.set(owner, Math.max(this.pending.get(owner) ?? 0, Number(obj.metadata.resourceVersion) || 0));
  }

  /** The pods the owner controls in its namespace, from a read that shows its own writes. */
  async owned(ctx: ControllerContext, owner: KubeObject): Promise<KubeObject[]> {
    const uid = owner.metadata.uid!;
    const reader = readerOf(ctx);
    const rev = this.pending.get(uid);
    const mine = (l: KubeObject[]) => l.filter((p) => p.metadata.namespace === owner.metadata.namespace && controllerRef(p)?.uid === uid);
    if (rev !== undefined) {
      if (!(await reader.caughtUp(this.pods, rev))) return mine((await ctx.registry.list(this.pods, owner.metadata.namespace)).items);
      if (this.pending.get(uid) === rev) this.pending.delete(uid);
    }
    return mine(await reader.byIndex(this.pods, 'owner', `${owner.metadata.namespace}/${uid}`));
  }
}

/** The owner's spec.selector, or undefined when it has none or it is invalid (then it selects nothing). */
export function ownerSelector(owner: KubeObject): LabelSelector | undefined {
  if (!owner.spec?.selector) return undefined;
  try {
    return labelSelectorFromMetav1(owner.spec.selector);
  } catch {
    return undefined;
  }
}

/**
 * kube's PodControllerRefManager.ClaimPods: adopts orphan pods of the namespace that the owner's selector
 * (and `member`, the StatefulSet's name check) matches, and releases pods it controls that no longer
 * match. Each change is a compare-and-swap on the current pod, re-checked there, so a racing claim by
 * another owner or a label change meanwhile wins. Orphans are found through the label index (the
 * selector's matchLabels), not a namespace list. Returns whether any pod changed.
 */
export async function claimPods(
  ctx: ControllerContext,
  owner: KubeObject,
  owned: KubeObject[],
  expect: PodExpectations,
  member: (p: KubeObject) => boolean = () => true,
): Promise<boolean> {
  const pods = findResource('', 'v1', 'pods')!;
  const uid = owner.metadata.uid!;
  const ns = owner.metadata.namespace!;
  const sel = ownerSelector(owner);
  const matches = (p: KubeObject) => !!sel && sel.matches(p.metadata.labels ?? {}) && member(p);
  let changed = false;
  const write = async (p: KubeObject, f: (cur: KubeObject) => KubeObject | undefined) => {
    try {
      let did = false;
      const after = await ctx.registry.guaranteedUpdate(pods, ns, p.metadata.name!, undefined, {}, (cur) => {
        const next = cur.metadata.uid === p.metadata.uid ? f(cur) : undefined;
        did = !!next;
        return next ?? cur;
      });
      if (did) {
        expect.wrote(uid, after);
        changed = true;
      }
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 404)) throw e;
    }
  };
  for (const p of owned) {
    if (matches(p)) continue;
    await write(p, (cur) => (controllerRef(cur)?.uid === uid && !matches(cur) ? withoutOwner(cur, uid) : undefined));
  }
  if (!sel || isTerminating(owner)) return changed;
  const matchLabels: Record<string, string> = owner.spec.selector.matchLabels ?? {};
  const reader = readerOf(ctx);
  const candidates = Object.keys(matchLabels).length ? await objectsSelectedBy(reader, pods, ns, matchLabels) : await reader.list(pods, ns);
  for (const p of candidates) {
    if (controllerRef(p) || isTerminating(p) || !matches(p)) continue;
    await write(p, (cur) => {
      if (controllerRef(cur) || isTerminating(cur) || !matches(cur)) return undefined;
      const refs = (cur.metadata.ownerReferences ?? []).filter((r) => r.uid !== uid);
      return { ...cur, metadata: { ...cur.metadata, ownerReferences: [...refs, controllerRefTo(owner)] } };
    });
  }
  return changed;
}

/** Pod helpers both controllers share (kube's podutil). */
export function podReadySince(p: KubeObject): number | undefined {
  const c = (p.status?.conditions ?? []).find((c: any) => c.type === 'Ready');
  if (c?.status !== 'True') return undefined;
  return Date.parse(c.lastTransitionTime ?? '') || 0;
}

export const isRunningAndReady = (p: KubeObject) => p.status?.phase === 'Running' && podReadySince(p) !== undefined;

/** Available: ready for at least minReadySeconds at `now` (podutil.IsPodAvailable). */
export function isAvailable(p: KubeObject, minReadySeconds: number, now: number): boolean {
  const since = podReadySince(p);
  if (since === undefined) return false;
  return minReadySeconds === 0 || since + minReadySeconds * 1000 <= now;
}

/** When a ready pod becomes available, if later than now (for a requeue). */
export function availableAt(p: KubeObject, minReadySeconds: number): number | undefined {
  const since = podReadySince(p);
  return since === undefined || minReadySeconds === 0 ? undefined : since + minReadySeconds * 1000;
}

export const isFinished = (p: KubeObject) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed';
export const isLive = (p: KubeObject) => !isTerminating(p) && !isFinished(p);

/** intstr.GetScaledValueFromIntOrPercent: an int, or a percentage of `total` rounded up or down. */
export function scaledValue(v: number | string | undefined, total: number, roundUp: boolean, dflt: number): number {
  if (v === undefined || v === null) return dflt;
  if (typeof v === 'number') return v;
  const m = /^(\d+)%$/.exec(v);
  if (!m) return /^\d+$/.test(v) ? Number(v) : dflt;
  const x = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(x) : Math.floor(x);
}
