// The ResourceQuota controller (kube's pkg/controller/resourcequota), for the charge-in-the-write design
// of apiserver/admission-quota.ts: usage is not recomputed here, it is the store's counters, kept exact
// by every create and delete. This loop
//   - brings a resource newly named in spec.hard into use: first status.hard names it without
//     status.used (admission then refuses creates that would use it: "status unknown for quota"), then
//     the objects of the namespace stored before are charged (Backend.chargeExisting, idempotent, read
//     fresh from the store), then status.used gives the counter: from then on admission charges it;
//   - keeps status.hard = spec.hard (a lowered limit applies at once) and status.used = the counters.
// The key is the namespace: any change of a charged kind there, or of a quota, reconciles the namespace's
// quotas (one list of them from the cache, one counter read per quota resource, a status write only
// when something changed). Redelivered or reordered events cost a no-op.

import { QUOTAS_IN, chargeGroup, chargeSignature, fromMilli, matchesScopes, toMilli, usageOf } from '../apiserver/admission-quota.ts';
import { parseQuantityExact } from '../machinery/quantity.ts';
import { findResource, storageKey, type ResourceInfo } from '../machinery/resources.ts';
import { isObject, type KubeObject } from '../machinery/types.ts';
import { jsonEqual } from '../machinery/validation.ts';
import { readerOf, type ChangeEvent, type Controller, type ControllerContext } from './controller.ts';
import { controllerUser } from './identity.ts';

type Obj = Record<string, any>;

const res = (group: string, version: string, resource: string): ResourceInfo => findResource(group, version, resource)!;
export const resourceQuotas = res('', 'v1', 'resourcequotas');
const pods = res('', 'v1', 'pods');
const services = res('', 'v1', 'services');
const claims = res('', 'v1', 'persistentvolumeclaims');
const LEGACY: Record<string, ResourceInfo> = {
  secrets: res('', 'v1', 'secrets'),
  configmaps: res('', 'v1', 'configmaps'),
  replicationcontrollers: res('', 'v1', 'replicationcontrollers'),
  resourcequotas: resourceQuotas,
};

/** The kind whose objects use a quota resource (undefined: a name no evaluator charges). */
export function kindOfQuotaResource(r: string): ResourceInfo | undefined {
  if (r.startsWith('count/')) {
    const [resource, ...group] = r.slice('count/'.length).split('.');
    const g = group.join('.');
    // Any served version: they share one storage.
    return [...['v1', 'v1beta1', 'v2']].map((v) => findResource(g, v, resource!)).find((x) => x);
  }
  if (r.startsWith('services')) return services;
  if (r === 'persistentvolumeclaims' || r === 'requests.storage' || r.includes('.storageclass.storage.k8s.io/')) return claims;
  if (LEGACY[r]) return LEGACY[r];
  return pods; // pods, cpu, memory, requests.*, limits.*, hugepages
}

function same(a: unknown, b: unknown): boolean {
  try {
    return parseQuantityExact(a as string).nanos === parseQuantityExact(b as string).nanos;
  } catch {
    return false;
  }
}

async function reconcileQuota(ctx: ControllerContext, quota: KubeObject): Promise<void> {
  const ns = quota.metadata.namespace!;
  const name = quota.metadata.name!;
  const uid = quota.metadata.uid!;
  const specHard: Obj = isObject(quota.spec?.hard) ? quota.spec.hard : {};
  const statusHard: Obj = isObject(quota.status?.hard) ? quota.status.hard : {};
  const statusUsed: Obj = isObject(quota.status?.used) ? quota.status.used : {};
  const fresh = Object.keys(specHard).filter((r) => statusHard[r] === undefined || statusUsed[r] === undefined);
  const writeStatus = async (status: Obj) => {
    if (jsonEqual(status, quota.status ?? {})) return;
    await ctx.registry.guaranteedUpdate(resourceQuotas, ns, name, undefined, { subresource: 'status' }, (cur) => {
      if (cur.metadata.uid !== uid) throw new Error(`quota ${ns}/${name} was replaced`);
      return { ...cur, status };
    });
  };
  if (fresh.length) {
    // Step 1: name them in status.hard, without used: admission now refuses creates that would use them.
    const used0: Obj = Object.fromEntries(Object.entries(statusUsed).filter(([r]) => specHard[r] !== undefined && !fresh.includes(r)));
    await writeStatus({ hard: { ...specHard }, used: used0 });
    // Step 2: charge what was stored before (read from the store, not a cache: nothing may be missed).
    const kinds = new Map<string, ResourceInfo>();
    for (const r of fresh) {
      const k = kindOfQuotaResource(r);
      if (k) kinds.set(`${k.group}/${k.resource}`, k);
    }
    for (const kind of kinds.values()) {
      for (const o of (await ctx.registry.list(kind, ns)).items) {
        if (!matchesScopes(kind, quota.spec ?? {}, o)) continue;
        const usage = usageOf(kind, o);
        const charges = fresh
          .filter((r) => usage.has(r) && usage.get(r)!.nanos > 0n)
          .map((r) => ({ group: chargeGroup(uid, r), amount: toMilli(usage.get(r)!.nanos), limit: Number.MAX_SAFE_INTEGER }));
        if (charges.length) await ctx.registry.backend.chargeExisting(storageKey(kind, ns, o.metadata.name!), charges);
      }
    }
  }
  // Step 3 (and every time): used is the counters.
  const used: Obj = {};
  await Promise.all(
    Object.keys(specHard).map(async (r) => {
      const n = await ctx.registry.backend.count(chargeGroup(uid, r));
      const fmt = (() => {
        try {
          return parseQuantityExact(specHard[r]).format;
        } catch {
          return 'DecimalSI' as const;
        }
      })();
      used[r] = statusUsed[r] !== undefined && toMilli(parseQuantityExact(statusUsed[r]).nanos) === n ? statusUsed[r] : fromMilli(n, fmt);
    }),
  );
  const hard: Obj = {};
  for (const [r, v] of Object.entries(specHard)) hard[r] = statusHard[r] !== undefined && same(statusHard[r], v) ? statusHard[r] : v;
  const current = await ctx.registry.get(resourceQuotas, ns, name).catch(() => undefined);
  if (!current || current.metadata.uid !== uid) return;
  quota = current;
  await writeStatus({ hard, used: Object.fromEntries(Object.keys(specHard).sort().map((r) => [r, used[r]])) });
}

/**
 * Whether a change of a charged object can move the store's counters: not an update that leaves what quota
 * sees as it was (chargeSignature: the write kept its charges, admission-quota.ts), such as a pod's bind,
 * status writes or graceful deletion, as kube's quota monitor lets only a pod's turn to terminal through.
 * A ResourceQuota's own changes always can (its spec.hard).
 */
export function chargesMayMove(ev: ChangeEvent): boolean {
  if (ev.type !== 'MODIFIED' || !ev.oldObject || ev.resource === resourceQuotas) return true;
  // Asked by both quota loops of each change (the informer hands them the same event): worked out once.
  let moves = mayMove.get(ev);
  if (moves === undefined) mayMove.set(ev, (moves = chargeSignature(ev.resource, ev.oldObject) !== chargeSignature(ev.resource, ev.object)));
  return moves;
}
const mayMove = new WeakMap<ChangeEvent, boolean>();

export const resourceQuotaController: Controller = {
  name: 'resourcequota-controller',
  identity: controllerUser('resourcequota-controller'),
  watches: [resourceQuotas, pods, services, claims, ...Object.values(LEGACY).filter((r) => r !== resourceQuotas)],
  keys: (ev) => (ev.object.metadata.namespace && chargesMayMove(ev) ? [ev.object.metadata.namespace] : []),
  async reconcile(ns, ctx) {
    // One counter read tells whether the namespace has quotas at all (most have none): no list then.
    if ((await ctx.registry.backend.count(QUOTAS_IN(ns))) === 0) return;
    const quotas = await readerOf(ctx).list(resourceQuotas, ns);
    for (const cached of quotas) {
      // Read from the store: its status is what admission reads, and the status write is a CAS on it.
      const quota = await ctx.registry.get(resourceQuotas, ns, cached.metadata.name!).catch(() => undefined);
      if (quota && !quota.metadata.deletionTimestamp) await reconcileQuota(ctx, quota);
    }
  },
  async allKeys(ctx) {
    return [...new Set((await readerOf(ctx).list(resourceQuotas, undefined)).map((q) => q.metadata.namespace!))];
  },
};
