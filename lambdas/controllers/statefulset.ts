// The StatefulSet controller (kube's pkg/controller/statefulset, 1.32): pods with stable identities
// `<set>-<ordinal>` (hostname = name, subdomain = spec.serviceName, so a headless Service of that name
// gives each one DNS: endpoints.ts carries the hostname, node-agent/dns-zone.ts serves it), each with its
// own PersistentVolumeClaims `<template>-<set>-<ordinal>` made from spec.volumeClaimTemplates before the
// pod. OrderedReady creates ordinal N only once 0..N-1 are Running and Ready (and available for
// minReadySeconds), and removes from the highest ordinal, one at a time; Parallel does both at once.
// RollingUpdate replaces pods whose revision is not the update revision from the highest ordinal down to
// spec.updateStrategy.rollingUpdate.partition, one at a time, each only once the one above is healthy;
// OnDelete leaves that to the user. Revisions are ControllerRevisions (history.ts); pods carry the
// revision's name in controller-revision-hash, and status.currentRevision moves to updateRevision once
// every pod is updated and ready (completeRollingUpdate).
//
// persistentVolumeClaimRetentionPolicy as kube's updateClaimOwnerRefForSetAndPod: whenDeleted: Delete
// gives each claim an ownerReference to the set, whenScaled: Delete one to the pod being scaled away, so
// the garbage collector deletes the claim with its owner; Retain (the default) leaves them unowned.
//
// Idempotence: names are the ordinals, so redelivered or reordered events at worst meet AlreadyExists;
// deletes carry the pod's uid as a precondition. Reads come from the cache with expectations by revision
// (history.ts). Keys are "namespace/name" of a StatefulSet; its pods and revisions map to it.

import { isDeepStrictEqual } from 'node:util';
import { findResource } from '../machinery/resources.ts';
import { ApiError } from '../machinery/status.ts';
import type { KubeObject, OwnerReference } from '../machinery/types.ts';
import { BURST_REPLICAS, slowStartBatch } from './batch.ts';
import { readerOf, type Controller, type ControllerContext, type ReconcileResult } from './controller.ts';
import { recordEvent, type EventSpec } from './events.ts';
import {
  availableAt,
  controllerRevisions,
  currentRevision,
  isAvailable,
  isFinished,
  isRunningAndReady,
  PodExpectations,
  claimPods,
  REVISION_LABEL,
  templateOf,
  truncateHistory,
} from './history.ts';
import { controllerRef, controllerRefTo, isTerminating } from './owners.ts';
import { controllerUser } from './identity.ts';

const statefulSets = findResource('apps', 'v1', 'statefulsets')!;
const pods = findResource('', 'v1', 'pods')!;
const claims = findResource('', 'v1', 'persistentvolumeclaims')!;
const COMPONENT = 'statefulset-controller';
export const POD_NAME_LABEL = 'statefulset.kubernetes.io/pod-name';
export const POD_INDEX_LABEL = 'apps.kubernetes.io/pod-index';

const is404 = (e: unknown) => e instanceof ApiError && e.code === 404;
const isConflictOrGone = (e: unknown) => e instanceof ApiError && (e.code === 404 || e.code === 409);

/** The ordinal in a pod's name, if it is one of the set's (`<set>-<n>`). */
export function ordinalOf(set: KubeObject, pod: KubeObject): number | undefined {
  const prefix = `${set.metadata.name}-`;
  const n = pod.metadata.name!;
  if (!n.startsWith(prefix) || !/^(0|[1-9]\d*)$/.test(n.slice(prefix.length))) return undefined;
  return Number(n.slice(prefix.length));
}

export const claimName = (template: string, set: string, ordinal: number) => `${template}-${set}-${ordinal}`;

const setRef = (set: KubeObject): OwnerReference => ({ apiVersion: 'apps/v1', kind: 'StatefulSet', name: set.metadata.name!, uid: set.metadata.uid! });
const podRef = (pod: KubeObject): OwnerReference => ({ apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name!, uid: pod.metadata.uid! });

/** The ownerReferences a claim should have (updateClaimOwnerRefForSetAndPod); `scaledDown`: its pod is condemned. */
function claimOwners(set: KubeObject, pod: KubeObject | undefined, refs: OwnerReference[], scaledDown: boolean): OwnerReference[] {
  const policy = set.spec?.persistentVolumeClaimRetentionPolicy ?? {};
  const byPod = policy.whenScaled === 'Delete' && scaledDown && pod?.metadata.uid;
  const bySet = policy.whenDeleted === 'Delete' && !byPod;
  const others = refs.filter((r) => r.uid !== set.metadata.uid && !(r.kind === 'Pod' && r.apiVersion === 'v1' && r.name === pod?.metadata.name));
  return [...others, ...(bySet ? [setRef(set)] : []), ...(byPod ? [podRef(pod!)] : [])];
}

function newClaim(set: KubeObject, t: any, ordinal: number): KubeObject {
  const labels = { ...(t.metadata?.labels ?? {}), ...(set.spec?.selector?.matchLabels ?? {}) };
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: claimName(t.metadata?.name, set.metadata.name!, ordinal),
      namespace: set.metadata.namespace,
      ...(Object.keys(labels).length ? { labels } : {}),
      ...(t.metadata?.annotations ? { annotations: { ...t.metadata.annotations } } : {}),
    },
    spec: structuredClone(t.spec ?? {}),
  };
}

/** newVersionedStatefulSetPod: the pod of an ordinal from a revision's template. */
function newPod(set: KubeObject, template: any, revision: string, ordinal: number): KubeObject {
  const name = `${set.metadata.name}-${ordinal}`;
  const spec = structuredClone(template.spec ?? {});
  const templates: any[] = set.spec?.volumeClaimTemplates ?? [];
  // updateStorage: each claim template becomes the volume of that name, replacing the template's own.
  const claimVolumes = templates.map((t) => ({ name: t.metadata?.name, persistentVolumeClaim: { claimName: claimName(t.metadata?.name, set.metadata.name!, ordinal) } }));
  const volumes = [...claimVolumes, ...((spec.volumes ?? []) as any[]).filter((v) => !claimVolumes.some((c) => c.name === v.name))];
  if (volumes.length) spec.volumes = volumes;
  spec.hostname = name;
  if (set.spec?.serviceName) spec.subdomain = set.spec.serviceName;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      labels: { ...(template.metadata?.labels ?? {}), [POD_NAME_LABEL]: name, [POD_INDEX_LABEL]: String(ordinal), [REVISION_LABEL]: revision },
      ...(template.metadata?.annotations ? { annotations: { ...template.metadata.annotations } } : {}),
      ownerReferences: [controllerRefTo({ ...set, apiVersion: 'apps/v1', kind: 'StatefulSet' })],
    },
    spec,
  };
}

async function bestEffortEvent(ctx: ControllerContext, set: KubeObject, e: EventSpec): Promise<void> {
  try {
    await recordEvent(ctx.registry, set, e);
  } catch (err) {
    console.error(`${COMPONENT}: could not record event ${e.reason} for ${set.metadata.namespace}/${set.metadata.name}`, err);
  }
}

interface Pass {
  ctx: ControllerContext;
  set: KubeObject;
  ns: string;
  expect: PodExpectations;
  claimsByName: Map<string, KubeObject>;
  changed: boolean;
}

/** Makes (or re-owns) the claims of an ordinal's pod. */
async function syncClaims(pass: Pass, ordinal: number, pod: KubeObject | undefined, scaledDown: boolean): Promise<void> {
  const { ctx, set, ns } = pass;
  for (const t of (set.spec?.volumeClaimTemplates ?? []) as any[]) {
    const name = claimName(t.metadata?.name, set.metadata.name!, ordinal);
    const have = pass.claimsByName.get(name);
    if (!have) {
      if (scaledDown) continue;
      const claim = newClaim(set, t, ordinal);
      const owners = claimOwners(set, pod, [], false);
      if (owners.length) claim.metadata.ownerReferences = owners;
      try {
        pass.claimsByName.set(name, await ctx.create(claims, ns, claim));
        await bestEffortEvent(ctx, set, {
          type: 'Normal',
          reason: 'SuccessfulCreate',
          message: `create Claim ${name} Pod ${set.metadata.name}-${ordinal} in StatefulSet ${set.metadata.name} success`,
          component: COMPONENT,
        });
      } catch (e) {
        if (e instanceof ApiError && e.reason === 'AlreadyExists') continue;
        if (e instanceof ApiError) {
          await bestEffortEvent(ctx, set, {
            type: 'Warning',
            reason: 'FailedCreate',
            message: `create Claim ${name} for Pod ${set.metadata.name}-${ordinal} in StatefulSet ${set.metadata.name} failed error: ${e.message}`,
            component: COMPONENT,
          });
        }
        throw e;
      }
      continue;
    }
    if (isTerminating(have)) continue;
    const want = claimOwners(set, pod, have.metadata.ownerReferences ?? [], scaledDown);
    if (isDeepStrictEqual(want, have.metadata.ownerReferences ?? [])) continue;
    try {
      const after = await ctx.registry.guaranteedUpdate(claims, ns, name, undefined, {}, (cur) => {
        const refs = claimOwners(set, pod, cur.metadata.ownerReferences ?? [], scaledDown);
        const metadata = { ...cur.metadata, ownerReferences: refs };
        if (!refs.length) delete (metadata as { ownerReferences?: unknown }).ownerReferences;
        return { ...cur, metadata };
      });
      pass.claimsByName.set(name, after);
    } catch (e) {
      if (!is404(e)) throw e;
    }
  }
}

async function createPod(pass: Pass, ordinal: number, template: any, revision: string): Promise<boolean> {
  const { ctx, set, ns } = pass;
  await syncClaims(pass, ordinal, undefined, false);
  const pod = newPod(set, template, revision, ordinal);
  try {
    pass.expect.wrote(set.metadata.uid!, await ctx.create(pods, ns, pod));
  } catch (e) {
    if (e instanceof ApiError && e.reason === 'AlreadyExists') return false;
    // kube's recordPodEvent for a failed create; the error fails the reconcile, which is retried.
    if (e instanceof ApiError) {
      await bestEffortEvent(ctx, set, { type: 'Warning', reason: 'FailedCreate', message: `create Pod ${pod.metadata.name} in StatefulSet ${set.metadata.name} failed error: ${e.message}`, component: COMPONENT });
    }
    throw e;
  }
  pass.changed = true;
  await bestEffortEvent(ctx, set, { type: 'Normal', reason: 'SuccessfulCreate', message: `create Pod ${pod.metadata.name} in StatefulSet ${set.metadata.name} successful`, component: COMPONENT });
  return true;
}

async function deletePod(pass: Pass, pod: KubeObject): Promise<void> {
  const { ctx, set, ns } = pass;
  try {
    pass.expect.wrote(set.metadata.uid!, (await ctx.registry.delete(pods, ns, pod.metadata.name!, { preconditions: { uid: pod.metadata.uid } })).object);
  } catch (e) {
    if (isConflictOrGone(e)) return;
    throw e;
  }
  pass.changed = true;
  await bestEffortEvent(ctx, set, { type: 'Normal', reason: 'SuccessfulDelete', message: `delete Pod ${pod.metadata.name} in StatefulSet ${set.metadata.name} successful`, component: COMPONENT });
}

async function reconcileSet(ns: string, name: string, ctx: ControllerContext, burst: number, expect: PodExpectations): Promise<ReconcileResult | void> {
  const reader = readerOf(ctx);
  let set = await reader.get(statefulSets, ns, name);
  if (!set || isTerminating(set)) return;
  set = { ...set, apiVersion: 'apps/v1', kind: 'StatefulSet' };
  const now = ctx.now().getTime();
  const minReady: number = set.spec?.minReadySeconds ?? 0;
  const replicas: number = set.spec?.replicas ?? 1;
  const start: number = set.spec?.ordinals?.start ?? 0;
  const monotonic = (set.spec?.podManagementPolicy ?? 'OrderedReady') !== 'Parallel';
  const rolling = (set.spec?.updateStrategy?.type ?? 'RollingUpdate') === 'RollingUpdate';
  const partition: number = rolling ? (set.spec?.updateStrategy?.rollingUpdate?.partition ?? 0) : 0;

  const history = await currentRevision(ctx, set, { apiVersion: 'apps/v1', kind: 'StatefulSet' });
  const update = history.update;
  const current = history.revisions.find((r) => r.metadata.name === set!.status?.currentRevision) ?? update;
  const updateTemplate = templateOf(update);
  const currentTemplate = templateOf(current);

  const pass: Pass = { ctx, set, ns, expect, claimsByName: new Map(), changed: false };
  if ((set.spec?.volumeClaimTemplates ?? []).length) {
    for (const c of await reader.list(claims, ns)) pass.claimsByName.set(c.metadata.name!, c);
  }
  let requeue: number | undefined;
  const requeueIn = (ms: number) => (requeue = Math.min(requeue ?? Infinity, ms));
  const healthy = (p: KubeObject) => {
    if (!isRunningAndReady(p) || isTerminating(p)) return false;
    if (isAvailable(p, minReady, now)) return true;
    const at = availableAt(p, minReady);
    if (at !== undefined) requeueIn(at - now + 100);
    return false;
  };

  let owned = await expect.owned(ctx, set);
  // Only pods named after the set are its members (isMemberOf): others matching the selector stay orphans.
  if (await claimPods(ctx, set, owned, expect, (p) => ordinalOf(set!, p) !== undefined)) owned = await expect.owned(ctx, set);
  // The set's pods by slot (ordinal - start). A map, not an array of `replicas` slots: replicas may be any
  // int32, and an array of 2^31 - 1 filled slots took the whole heap (the fuzz suite crashed its worker).
  // Only existing pods take room; missing slots are made at most `burst` a pass.
  const slots = new Map<number, KubeObject>();
  const condemned: KubeObject[] = [];
  for (const p of owned) {
    const ord = ordinalOf(set, p);
    if (ord === undefined) continue;
    if (ord >= start && ord < start + replicas) slots.set(ord - start, p);
    else condemned.push(p);
  }
  condemned.sort((a, b) => ordinalOf(set!, b)! - ordinalOf(set!, a)!);

  // One pass of kube's updateStatefulSet: stops where OrderedReady must wait.
  let writes = 0;
  const step = async (): Promise<void> => {
    for (let i = 0; i < replicas; i++) {
      if (writes >= burst) return void requeueIn(0);
      const ord = start + i;
      const p = slots.get(i);
      if (!p) {
        // Below the partition a missing pod comes back at the current revision (newVersionedStatefulSetPod).
        const old = rolling && i < partition;
        writes++;
        if (!(await createPod(pass, ord, old ? currentTemplate : updateTemplate, old ? current.metadata.name! : update.metadata.name!))) requeueIn(1000);
        if (monotonic) return;
        continue;
      }
      if (isFinished(p) && !isTerminating(p)) {
        // A failed (or completed) pod is deleted; its replacement follows once it is gone.
        writes++;
        await deletePod(pass, p);
        if (monotonic) return;
        continue;
      }
      if (isTerminating(p)) {
        if (monotonic) return;
        continue;
      }
      // Claims a pod lost (deleted by hand) come back; their owners follow the retention policy.
      await syncClaims(pass, ord, p, false);
      if (!healthy(p) && monotonic) return;
    }
    // Condemned pods, highest ordinal first; OrderedReady removes one at a time and only from a healthy set.
    const inOrder = [...slots].sort((a, b) => a[0] - b[0]).map(([, p]) => p);
    const firstUnhealthy = [...inOrder, ...condemned].find((p) => !healthy(p));
    for (const p of condemned) {
      if (writes >= burst) return void requeueIn(0);
      if (isTerminating(p)) {
        if (monotonic) return;
        continue;
      }
      if (monotonic && !healthy(p) && p !== firstUnhealthy) return;
      await syncClaims(pass, ordinalOf(set!, p)!, p, true);
      writes++;
      await deletePod(pass, p);
      if (monotonic) return;
    }
    if (!rolling) return;
    // RollingUpdate: from the highest ordinal down to the partition, one pod at a time.
    for (let i = replicas - 1; i >= partition; i--) {
      const p = slots.get(i);
      if (!p) return;
      if (p.metadata.labels?.[REVISION_LABEL] !== update.metadata.name && !isTerminating(p)) {
        await deletePod(pass, p);
        return;
      }
      if (!healthy(p)) return;
    }
  };
  await step();

  const after = pass.changed ? await expect.owned(ctx, set) : owned;
  const live = new Set(after.map((p) => p.metadata.labels?.[REVISION_LABEL] ?? ''));
  await truncateHistory(ctx, set, history.revisions, live, new Set([current.metadata.name!, update.metadata.name!]));

  // Status (updateStatefulSetStatus, then completeRollingUpdate).
  const counted = after.filter((p) => ordinalOf(set!, p) !== undefined);
  let ready = 0;
  let available = 0;
  let currentReplicas = 0;
  let updated = 0;
  for (const p of counted) {
    if (isRunningAndReady(p)) {
      ready++;
      if (isAvailable(p, minReady, now)) available++;
    }
    if (isTerminating(p)) continue;
    if (p.metadata.labels?.[REVISION_LABEL] === current.metadata.name) currentReplicas++;
    if (p.metadata.labels?.[REVISION_LABEL] === update.metadata.name) updated++;
  }
  const status: Record<string, unknown> = {
    replicas: counted.length,
    readyReplicas: ready,
    currentReplicas,
    updatedReplicas: updated,
    availableReplicas: available,
    currentRevision: current.metadata.name,
    updateRevision: update.metadata.name,
    collisionCount: history.collisionCount,
    observedGeneration: set.metadata.generation,
  };
  if (rolling && updated === counted.length && ready === counted.length) {
    status.currentReplicas = updated;
    status.currentRevision = update.metadata.name;
  }
  await updateStatus(ctx, set, status);
  return requeue !== undefined ? { requeueAfterMs: requeue } : undefined;
}

async function updateStatus(ctx: ControllerContext, set: KubeObject, s: Record<string, unknown>): Promise<void> {
  try {
    await ctx.registry.guaranteedUpdate(statefulSets, set.metadata.namespace, set.metadata.name!, undefined, { subresource: 'status' }, (cur) => {
      if (cur.metadata.uid !== set.metadata.uid) return cur;
      const status: Record<string, unknown> = { ...(cur.status ?? {}), ...s };
      // kube's omitempty counts: absent when zero (replicas and availableReplicas are always there).
      for (const k of ['readyReplicas', 'currentReplicas', 'updatedReplicas'] as const) if (status[k] === 0) delete status[k];
      return isDeepStrictEqual(status, cur.status) ? cur : { ...cur, status };
    });
  } catch (e) {
    if (!is404(e)) throw e;
  }
}

export interface StatefulSetControllerOptions {
  /** The most pods one reconcile creates or deletes (default BURST_REPLICAS, as kube). */
  burstReplicas?: number;
}

export function createStatefulSetController(opts: StatefulSetControllerOptions = {}): Controller {
  const burst = opts.burstReplicas ?? BURST_REPLICAS;
  const expect = new PodExpectations(pods);
  return {
    name: COMPONENT,
    identity: controllerUser('statefulset-controller'),
    watches: [statefulSets, pods, controllerRevisions],
    keys(ev) {
      const m = ev.object.metadata;
      if (ev.resource.resource === 'statefulsets') return [`${m.namespace}/${m.name}`];
      const ref = controllerRef(ev.object);
      // Orphans are adopted by the owner's own reconciles (claimPods), not on the orphan's events: an
      // ordinary pod then costs this loop nothing (in the cloud, no owner list per pod batch).
      return ref?.kind === 'StatefulSet' && ref.apiVersion?.startsWith('apps/') ? [`${m.namespace}/${ref.name}`] : [];
    },
    async allKeys(ctx) {
      return (await readerOf(ctx).list(statefulSets, undefined)).map((s) => `${s.metadata.namespace}/${s.metadata.name}`);
    },
    async reconcile(key, ctx) {
      const i = key.indexOf('/');
      return reconcileSet(key.slice(0, i), key.slice(i + 1), ctx, burst, expect);
    },
  };
}

export const statefulSetController: Controller = createStatefulSetController();
