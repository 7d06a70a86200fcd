// The persistent volume controller (pkg/controller/volume/persistentvolume, with pvcprotection and
// pvprotection, and the local-path provisioner of local-path.ts): one loop over two kinds of key,
// "claim:<ns>/<name>" and "volume:<name>".
//
// A claim: an unbound claim is bound to the smallest Available volume that satisfies it (class, access
// modes, size, volume mode, selector; a volume whose claimRef names it first). A claim of a
// WaitForFirstConsumer class waits until the scheduler has picked the node of a pod using it
// (volume.kubernetes.io/selected-node, set by the VolumeBinding plugin); then a volume whose node affinity
// allows that node is bound, or the class's provisioner makes one (local-path: in-process; any other
// provisioner: an Event saying who is waited for). A claim naming a class that does not exist stays
// Pending with a Warning Event, as in Kubernetes. Binding writes the volume first (claimRef, by CAS: two
// claims never get one volume), then the claim (spec.volumeName by CAS, then the statuses), each write a
// no-op when done, so redelivered and reordered events change nothing. A claim being deleted keeps its
// kubernetes.io/pvc-protection finalizer while a scheduled, unfinished pod uses it (confirmed with a
// store read before it goes, as kube asks the apiserver).
//
// A volume: phase Available when it has no claim, Bound when its claim is bound to it, Released when its
// claim is gone (a claimRef uid no claim has), then its reclaim policy: Delete deletes the volume (a
// local-path volume's directory is removed by its node's agent, which then drops LOCAL_PATH_FINALIZER),
// Retain keeps it Released. A volume being deleted keeps kubernetes.io/pv-protection while Bound.
//
// Reads go through ctx.cache (the PV list for static matching is one in-memory list locally, one list
// per stream batch in the cloud); writes are guaranteedUpdates of one object each, at most 4 a reconcile.

import { findResource } from '../machinery/resources.ts';
import { labelSelectorFromMetav1 } from '../machinery/selectors.ts';
import { compareQuantities } from '../machinery/quantity.ts';
import { ApiError, errors } from '../machinery/status.ts';
import type { KubeObject } from '../machinery/types.ts';
import { PV_PROTECTION_FINALIZER, PVC_PROTECTION_FINALIZER, pickDefaultClass } from '../apiserver/admission-storage.ts';
import { claimClass } from '../kinds/core/persistentvolumeclaim.ts';
import { pvClass } from '../kinds/core/persistentvolume.ts';
import { matchesNodeSelector } from '../scheduler/plugins/node-selector.ts';
import { readerOf, type ChangeEvent, type Controller, type ControllerContext, type ReconcileResult } from './controller.ts';
import { recordEvent, type EventSpec } from './events.ts';
import { claimRefTo, LOCAL_PATH_PROVISIONER, localPathVolume, PROVISIONED_BY_ANNOTATION, provisionedVolumeName, SELECTED_NODE_ANNOTATION } from './local-path.ts';
import { controllerUser } from './identity.ts';

export const claims = findResource('', 'v1', 'persistentvolumeclaims')!;
export const volumes = findResource('', 'v1', 'persistentvolumes')!;
const pods = findResource('', 'v1', 'pods')!;
const nodes = findResource('', 'v1', 'nodes')!;
const storageClasses = findResource('storage.k8s.io', 'v1', 'storageclasses')!;

const COMPONENT = 'persistentvolume-controller';
const BOUND_BY_CONTROLLER = 'pv.kubernetes.io/bound-by-controller';
const BIND_COMPLETED = 'pv.kubernetes.io/bind-completed';
const STORAGE_PROVISIONER = 'volume.kubernetes.io/storage-provisioner';
const BETA_STORAGE_PROVISIONER = 'volume.beta.kubernetes.io/storage-provisioner';
/** How soon a claim waiting on something no event announces (a StorageClass created later) is looked at again. */
const RETRY_MS = 15_000;

const notFound = (e: unknown) => e instanceof ApiError && e.code === 404;

async function event(ctx: ControllerContext, about: KubeObject, e: Omit<EventSpec, 'component'>, component = COMPONENT): Promise<void> {
  try {
    await recordEvent(ctx.registry, about, { ...e, component });
  } catch (err) {
    console.error(`${COMPONENT}: could not record event ${e.reason}`, err);
  }
}

/** The claims a pod's volumes name. */
export function podClaimNames(pod: KubeObject): string[] {
  return (pod.spec?.volumes ?? []).map((v: any) => v?.persistentVolumeClaim?.claimName).filter((n: unknown): n is string => typeof n === 'string' && n !== '');
}

// ---- matching (pkg/controller/volume/persistentvolume/util: FindMatchingVolume) ----

function accessModesContain(have: string[], want: string[]): boolean {
  return want.every((m) => have.includes(m));
}

/** Whether the volume's node affinity admits the node (no affinity: every node). */
export function volumeFitsNode(pv: KubeObject, node: KubeObject): boolean {
  const required = pv.spec?.nodeAffinity?.required;
  if (!required) return true;
  return matchesNodeSelector({ metadata: {}, spec: { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: required } } } }, node);
}

/**
 * The best volume for the claim: one pre-bound to it (claimRef names it) if any, else the smallest
 * unclaimed, Available volume that satisfies it. With `node`, only volumes whose affinity admits it.
 */
export function findMatchingVolume(claim: KubeObject, all: KubeObject[], node?: KubeObject): KubeObject | undefined {
  const request = claim.spec?.resources?.requests?.storage;
  const klass = claimClass(claim);
  const modes: string[] = claim.spec?.accessModes ?? [];
  const mode = claim.spec?.volumeMode ?? 'Filesystem';
  const selector = claim.spec?.selector ? labelSelectorFromMetav1(claim.spec.selector) : undefined;
  let best: KubeObject | undefined;
  for (const pv of all) {
    if (pv.metadata.deletionTimestamp) continue;
    const ref = pv.spec?.claimRef;
    const preBound = !!ref && ref.name === claim.metadata.name && ref.namespace === claim.metadata.namespace && (!ref.uid || ref.uid === claim.metadata.uid);
    if (ref && !preBound) continue;
    if (!preBound && pv.status?.phase !== 'Available' && pv.status?.phase !== 'Pending') continue;
    if ((pv.spec?.volumeMode ?? 'Filesystem') !== mode) continue;
    if (node && !volumeFitsNode(pv, node)) continue;
    if (preBound) return pv;
    if (pvClass(pv) !== klass) continue;
    if (selector && !selector.matches(pv.metadata.labels ?? {})) continue;
    if (!accessModesContain(pv.spec?.accessModes ?? [], modes)) continue;
    const size = pv.spec?.capacity?.storage;
    if (size === undefined || (request !== undefined && compareQuantities(size, request) < 0)) continue;
    if (!best || compareQuantities(size, best.spec.capacity.storage) < 0) best = pv;
  }
  return best;
}

// ---- writes, each one CAS and a no-op when already done ----

/** Step 1 of a bind: the volume's claimRef names the claim (refused if it names another). */
async function bindVolumeToClaim(ctx: ControllerContext, pv: KubeObject, claim: KubeObject): Promise<KubeObject> {
  return ctx.registry.guaranteedUpdate(volumes, undefined, pv.metadata.name!, undefined, {}, (cur) => {
    const ref = cur.spec?.claimRef;
    if (ref && ref.uid === claim.metadata.uid) return cur;
    if (ref && (ref.uid || ref.name !== claim.metadata.name || ref.namespace !== claim.metadata.namespace)) {
      throw errors.conflict('persistentvolumes', '', pv.metadata.name!, `the volume is bound to claim ${ref.namespace}/${ref.name}`);
    }
    if (cur.metadata.deletionTimestamp) throw errors.conflict('persistentvolumes', '', pv.metadata.name!, 'the volume is being deleted');
    cur.spec = { ...cur.spec, claimRef: claimRefTo(claim) };
    if (!ref) cur.metadata.annotations = { ...(cur.metadata.annotations ?? {}), [BOUND_BY_CONTROLLER]: 'yes' };
    return cur;
  });
}

async function setVolumePhase(ctx: ControllerContext, name: string, phase: string, message?: string): Promise<void> {
  await ctx.registry.guaranteedUpdate(volumes, undefined, name, undefined, { subresource: 'status' }, (cur) => {
    if (cur.status?.phase === phase) return cur;
    cur.status = { ...(cur.status ?? {}), phase, ...(message ? { message } : {}) };
    if (!message) delete cur.status.message;
    return cur;
  });
}

/**
 * Step 2 of a bind: the claim's spec.volumeName, then its status (Bound, with the volume's size and
 * modes). A provisioned volume's claim also records its provisioner, as kube's setClaimProvisioner does.
 */
async function bindClaimToVolume(ctx: ControllerContext, claim: KubeObject, pv: KubeObject, provisioner?: string): Promise<void> {
  const { namespace, name, uid } = claim.metadata;
  await ctx.registry.guaranteedUpdate(claims, namespace, name!, undefined, {}, (cur) => {
    if (cur.metadata.uid !== uid) throw errors.conflict('persistentvolumeclaims', '', name!, 'the claim was re-created');
    const vn = cur.spec?.volumeName;
    if (vn && vn !== pv.metadata.name) throw errors.conflict('persistentvolumeclaims', '', name!, `the claim is bound to volume ${vn}`);
    const annotations: Record<string, string> = { ...(cur.metadata.annotations ?? {}), [BIND_COMPLETED]: 'yes' };
    if (!vn) annotations[BOUND_BY_CONTROLLER] = 'yes';
    if (provisioner) annotations[STORAGE_PROVISIONER] = annotations[BETA_STORAGE_PROVISIONER] = provisioner;
    cur.metadata.annotations = annotations;
    cur.spec = { ...cur.spec, volumeName: pv.metadata.name };
    return cur;
  });
  await ctx.registry.guaranteedUpdate(claims, namespace, name!, undefined, { subresource: 'status' }, (cur) => {
    if (cur.metadata.uid !== uid) throw errors.conflict('persistentvolumeclaims', '', name!, 'the claim was re-created');
    cur.status = { ...(cur.status ?? {}), phase: 'Bound', accessModes: pv.spec?.accessModes ?? [], capacity: { ...(pv.spec?.capacity ?? {}) } };
    return cur;
  });
}

async function setClaimPhase(ctx: ControllerContext, claim: KubeObject, phase: string): Promise<void> {
  await ctx.registry.guaranteedUpdate(claims, claim.metadata.namespace, claim.metadata.name!, undefined, { subresource: 'status' }, (cur) => {
    if (cur.status?.phase === phase) return cur;
    cur.status = { ...(cur.status ?? {}), phase };
    return cur;
  });
}

/** The whole bind, volume first (pkg/controller/volume/persistentvolume: bind()). */
async function bind(ctx: ControllerContext, pv: KubeObject, claim: KubeObject): Promise<void> {
  const bound = await bindVolumeToClaim(ctx, pv, claim);
  await setVolumePhase(ctx, bound.metadata.name!, 'Bound');
  await bindClaimToVolume(ctx, claim, bound, bound.metadata.annotations?.[PROVISIONED_BY_ANNOTATION]);
}

async function removeFinalizer(ctx: ControllerContext, res: typeof claims, obj: KubeObject, finalizer: string): Promise<void> {
  try {
    await ctx.registry.guaranteedUpdate(res, obj.metadata.namespace, obj.metadata.name!, undefined, {}, (cur) => {
      if (cur.metadata.uid !== obj.metadata.uid || !(cur.metadata.finalizers ?? []).includes(finalizer)) return cur;
      cur.metadata.finalizers = cur.metadata.finalizers!.filter((f: string) => f !== finalizer);
      return cur;
    });
  } catch (e) {
    if (!notFound(e)) throw e;
  }
}

// ---- claims ----

/** pvcprotection's isBeingUsed: a scheduled pod that has not finished names the claim. */
function usedBy(podList: KubeObject[], claimName: string): boolean {
  return podList.some((p) => !!p.spec?.nodeName && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed' && podClaimNames(p).includes(claimName));
}

async function syncDeletedClaim(ctx: ControllerContext, claim: KubeObject): Promise<void> {
  if (!(claim.metadata.finalizers ?? []).includes(PVC_PROTECTION_FINALIZER)) return;
  const ns = claim.metadata.namespace!;
  if (usedBy(await readerOf(ctx).list(pods, ns), claim.metadata.name!)) return;
  // The cache may lag a pod just created: ask the store before letting the claim go.
  if (usedBy((await ctx.registry.list(pods, ns)).items, claim.metadata.name!)) return;
  await removeFinalizer(ctx, claims, claim, PVC_PROTECTION_FINALIZER);
}

async function syncBoundClaim(ctx: ControllerContext, claim: KubeObject): Promise<void> {
  const name = claim.spec.volumeName as string;
  const pv = (await readerOf(ctx).get(volumes, undefined, name)) ?? (await ctx.registry.get(volumes, undefined, name).catch((e) => (notFound(e) ? undefined : Promise.reject(e))));
  if (!pv) {
    if (claim.status?.phase !== 'Lost') {
      await setClaimPhase(ctx, claim, 'Lost');
      await event(ctx, claim, { type: 'Warning', reason: 'ClaimLost', message: 'Bound claim has lost reference to PersistentVolume. Data on the volume is lost!' });
    }
    return;
  }
  const ref = pv.spec?.claimRef;
  if (!ref || ref.uid === claim.metadata.uid || (!ref.uid && ref.name === claim.metadata.name && ref.namespace === claim.metadata.namespace)) {
    // Pre-bound by the user (volumeName set), or a bind that stopped half-way: finish it.
    await bind(ctx, pv, claim);
    return;
  }
  if (claim.status?.phase !== 'Lost') {
    await setClaimPhase(ctx, claim, 'Lost');
    await event(ctx, claim, { type: 'Warning', reason: 'ClaimMisbound', message: 'Two claims are bound to the same volume, this one is bound incorrectly' });
  }
}

async function syncUnboundClaim(ctx: ControllerContext, claim: KubeObject): Promise<ReconcileResult | void> {
  const reader = readerOf(ctx);
  // RetroactiveDefaultStorageClass: a claim that names no class gets the default once there is one.
  if ((claim.spec?.storageClassName === undefined || claim.spec?.storageClassName === null) && claim.metadata.annotations?.['volume.beta.kubernetes.io/storage-class'] === undefined) {
    const def = pickDefaultClass(await reader.list(storageClasses, undefined));
    if (def) {
      await ctx.registry.guaranteedUpdate(claims, claim.metadata.namespace, claim.metadata.name!, undefined, {}, (cur) => {
        if (cur.metadata.uid !== claim.metadata.uid || (cur.spec?.storageClassName !== undefined && cur.spec?.storageClassName !== null)) return cur;
        cur.spec = { ...cur.spec, storageClassName: def.metadata.name };
        return cur;
      });
      return; // the update is an event of its own
    }
  }
  const klass = claimClass(claim);
  const sc = klass ? await reader.get(storageClasses, undefined, klass) : undefined;
  const delayed = sc?.volumeBindingMode === 'WaitForFirstConsumer';
  const selected: string | undefined = claim.metadata.annotations?.[SELECTED_NODE_ANNOTATION];
  const node = selected ? await reader.get(nodes, undefined, selected) : undefined;
  const all = await reader.list(volumes, undefined);
  if (delayed && !selected) {
    // Only a volume the user pre-bound to this claim is bound before a pod is scheduled.
    const pre = findMatchingVolume(claim, all.filter((v) => v.spec?.claimRef));
    if (pre) return bind(ctx, pre, claim);
    await event(ctx, claim, { type: 'Normal', reason: 'WaitForFirstConsumer', message: 'waiting for first consumer to be created before binding' });
    return;
  }
  const pv = findMatchingVolume(claim, all, delayed ? node : undefined);
  if (pv) {
    try {
      await bind(ctx, pv, claim);
    } catch (e) {
      // Another claim took the volume first: look again with a fresher view.
      if (e instanceof ApiError && e.code === 409) return { requeueAfterMs: 100 };
      throw e;
    }
    return;
  }
  if (!klass) {
    await event(ctx, claim, { type: 'Normal', reason: 'FailedBinding', message: 'no persistent volumes available for this claim and no storage class is set' });
    return;
  }
  if (!sc) {
    await event(ctx, claim, { type: 'Warning', reason: 'ProvisioningFailed', message: `storageclass.storage.k8s.io "${klass}" not found` });
    return { requeueAfterMs: RETRY_MS };
  }
  if (sc.provisioner !== LOCAL_PATH_PROVISIONER) {
    await event(ctx, claim, {
      type: 'Normal',
      reason: 'ExternalProvisioning',
      message: `Waiting for a volume to be created either by the external provisioner '${sc.provisioner}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.`,
    });
    return;
  }
  return provisionLocalPath(ctx, claim, sc, selected, node);
}

async function provisionLocalPath(ctx: ControllerContext, claim: KubeObject, sc: KubeObject, selected: string | undefined, node: KubeObject | undefined): Promise<ReconcileResult | void> {
  if (!selected) {
    await event(ctx, claim, { type: 'Warning', reason: 'ProvisioningFailed', message: `failed to provision volume with StorageClass "${sc.metadata.name}": configuration error, no node was specified` }, LOCAL_PATH_PROVISIONER);
    return;
  }
  if (!node) {
    await event(ctx, claim, { type: 'Warning', reason: 'ProvisioningFailed', message: `failed to provision volume with StorageClass "${sc.metadata.name}": nodes "${selected}" not found` }, LOCAL_PATH_PROVISIONER);
    return { requeueAfterMs: RETRY_MS };
  }
  let pv: KubeObject;
  try {
    pv = await ctx.create(volumes, undefined, localPathVolume(claim, sc, node));
    await event(ctx, claim, { type: 'Normal', reason: 'ProvisioningSucceeded', message: `Successfully provisioned volume ${pv.metadata.name}` }, LOCAL_PATH_PROVISIONER);
  } catch (e) {
    // A redelivered event: the volume was made already (its name is the claim's uid).
    if (!(e instanceof ApiError && e.reason === 'AlreadyExists')) throw e;
    pv = await ctx.registry.get(volumes, undefined, provisionedVolumeName(claim));
  }
  await bind(ctx, pv, claim);
}

async function syncClaim(ctx: ControllerContext, namespace: string, name: string): Promise<ReconcileResult | void> {
  const claim = await readerOf(ctx).get(claims, namespace, name);
  if (!claim) return;
  if (claim.metadata.deletionTimestamp) return syncDeletedClaim(ctx, claim);
  if (claim.spec?.volumeName) return syncBoundClaim(ctx, claim);
  return syncUnboundClaim(ctx, claim);
}

// ---- volumes ----

async function syncVolume(ctx: ControllerContext, name: string): Promise<void> {
  const pv = await readerOf(ctx).get(volumes, undefined, name);
  if (!pv) return;
  const phase = pv.status?.phase;
  if (pv.metadata.deletionTimestamp) {
    // pvprotection: a volume goes only once no claim is bound to it.
    if (phase !== 'Bound' && (pv.metadata.finalizers ?? []).includes(PV_PROTECTION_FINALIZER)) await removeFinalizer(ctx, volumes, pv, PV_PROTECTION_FINALIZER);
    if (phase !== 'Bound') return;
  }
  const ref = pv.spec?.claimRef;
  if (!ref) {
    if (phase !== 'Available') await setVolumePhase(ctx, name, 'Available');
    return;
  }
  if (!ref.uid) {
    // Pre-bound by the user to a claim by name: the claim's sync binds it.
    if (phase !== 'Available') await setVolumePhase(ctx, name, 'Available');
    return;
  }
  // The cache may not have a claim just made: the store decides whether it is gone.
  let claim = await readerOf(ctx).get(claims, ref.namespace, ref.name);
  if (!claim || claim.metadata.uid !== ref.uid) claim = await ctx.registry.get(claims, ref.namespace, ref.name).catch((e) => (notFound(e) ? undefined : Promise.reject(e)));
  if (!claim || claim.metadata.uid !== ref.uid) return reclaim(ctx, pv);
  if (claim.spec?.volumeName === name) {
    if (phase !== 'Bound') await setVolumePhase(ctx, name, 'Bound');
    return;
  }
  if (claim.spec?.volumeName) {
    // The claim is bound to another volume: a bind this controller started is undone.
    if (pv.metadata.annotations?.[BOUND_BY_CONTROLLER] === 'yes') {
      await ctx.registry.guaranteedUpdate(volumes, undefined, name, undefined, {}, (cur) => {
        if (cur.spec?.claimRef?.uid !== ref.uid) return cur;
        delete cur.spec.claimRef;
        return cur;
      });
      await setVolumePhase(ctx, name, 'Available');
    }
  }
  // Else the claim is not bound yet: its own sync binds it (the PV's event gave its key too).
}

/** The claim is gone: Released, then the reclaim policy (pkg/controller/volume/persistentvolume: reclaimVolume). */
async function reclaim(ctx: ControllerContext, pv: KubeObject): Promise<void> {
  const name = pv.metadata.name!;
  if (pv.status?.phase !== 'Released' && pv.status?.phase !== 'Failed') await setVolumePhase(ctx, name, 'Released');
  const policy = pv.spec?.persistentVolumeReclaimPolicy ?? 'Retain';
  if (policy === 'Delete') {
    if (pv.metadata.deletionTimestamp) return;
    try {
      await ctx.registry.delete(volumes, undefined, name, { preconditions: { uid: pv.metadata.uid } });
    } catch (e) {
      if (!notFound(e) && !(e instanceof ApiError && e.code === 409)) throw e;
    }
  } else if (policy === 'Recycle' && pv.status?.phase !== 'Failed') {
    await setVolumePhase(ctx, name, 'Failed', 'Recycle is not supported by Skiff');
    await event(ctx, pv, { type: 'Warning', reason: 'VolumeFailedRecycle', message: 'Recycle is not supported by Skiff: delete the volume, or use Retain or Delete' });
  }
}

// ---- the loop ----

const CLAIM = 'claim:';
const VOLUME = 'volume:';

function keys(ev: ChangeEvent): string[] {
  const o = ev.object;
  if (ev.resource === claims) {
    const out = [`${CLAIM}${o.metadata.namespace}/${o.metadata.name}`];
    for (const v of new Set([o.spec?.volumeName, ev.oldObject?.spec?.volumeName])) if (v) out.push(VOLUME + v);
    return out;
  }
  if (ev.resource === volumes) {
    const out = [VOLUME + o.metadata.name];
    const ref = o.spec?.claimRef;
    if (ref?.name) out.push(`${CLAIM}${ref.namespace}/${ref.name}`);
    return out;
  }
  if (ev.resource === pods) {
    // A pod that stops using its claims may let a claim being deleted go.
    const done = ev.type === 'DELETED' || o.status?.phase === 'Succeeded' || o.status?.phase === 'Failed';
    return done ? podClaimNames(o).map((n) => `${CLAIM}${o.metadata.namespace}/${n}`) : [];
  }
  return [];
}

export const persistentVolumeController: Controller = {
  name: 'persistentvolume',
  identity: controllerUser('persistent-volume-binder'),
  watches: [claims, volumes, pods],
  keys,
  async reconcile(key, ctx) {
    try {
      if (key.startsWith(VOLUME)) return await syncVolume(ctx, key.slice(VOLUME.length));
      if (key.startsWith(CLAIM)) {
        const rest = key.slice(CLAIM.length);
        const slash = rest.indexOf('/');
        return await syncClaim(ctx, rest.slice(0, slash), rest.slice(slash + 1));
      }
    } catch (e) {
      // The object went between the read and the write: its own delete event follows.
      if (notFound(e)) return;
      throw e;
    }
  },
  async allKeys(ctx) {
    const reader = readerOf(ctx);
    const [c, v] = await Promise.all([reader.list(claims, undefined), reader.list(volumes, undefined)]);
    return [...c.map((o) => `${CLAIM}${o.metadata.namespace}/${o.metadata.name}`), ...v.map((o) => VOLUME + o.metadata.name)];
  },
};
