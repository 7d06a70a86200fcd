// The ClusterResourceQuota controller (OpenShift's clusterquotamapping and clusterquotareconciliation
// controllers, for the charge-in-the-write design of apiserver/admission-quota.ts). Usage is the store's
// counters, kept exact by every create and delete: one total per resource (limited by status.total.hard)
// and one per namespace and resource (a tally for status.namespaces). This loop
//   - brings a namespace the selector picks (or a resource newly in spec.quota.hard) into use: first
//     status.namespaces names the namespace with hard but without used for it (admission then refuses
//     creates there that would use it: "status unknown for quota"), then the namespace's objects stored
//     before are charged (Backend.chargeExisting, read fresh from the store), then used gives the counters;
//   - keeps status.total.hard = spec.quota.hard and every used = the counters.
// A namespace that stops matching keeps what its objects were charged until they are deleted (its entry
// stays in status.namespaces while it has usage): objects are charged once, at create.
// Keys: a quota's name, or "namespace:<name>" for a change in a namespace (every quota selecting it).

import { CLUSTER_QUOTAS, clusterChargeGroup, clusterNamespaceGroup, fromMilli, matchesScopes, toMilli, usageOf } from '../apiserver/admission-quota.ts';
import { selectsNamespace } from '../kinds/quota/clusterresourcequota.ts';
import { parseQuantityExact } from '../machinery/quantity.ts';
import { findResource, storageKey, type ResourceInfo } from '../machinery/resources.ts';
import { isObject, type KubeObject } from '../machinery/types.ts';
import { jsonEqual, obj } from '../machinery/validation.ts';
import { readerOf, type Controller, type ControllerContext } from './controller.ts';
import { controllerUser } from './identity.ts';
import { chargesMayMove, kindOfQuotaResource, resourceQuotaController } from './resourcequota.ts';

type Obj = Record<string, any>;

export const clusterResourceQuotas = findResource('quota.skiff.io', 'v1', 'clusterresourcequotas')!;
const namespaces = findResource('', 'v1', 'namespaces')!;
const NS_KEY = 'namespace:';

const formatOf = (v: unknown) => {
  try {
    return parseQuantityExact(v as string).format;
  } catch {
    return 'DecimalSI' as const;
  }
};

async function reconcileClusterQuota(ctx: ControllerContext, name: string): Promise<void> {
  const crq = await ctx.registry.get(clusterResourceQuotas, undefined, name).catch(() => undefined);
  if (!crq || crq.metadata.deletionTimestamp) return;
  const uid = crq.metadata.uid!;
  const spec: Obj = isObject(crq.spec?.quota) ? crq.spec.quota : {};
  const hard: Obj = isObject(spec.hard) ? { ...spec.hard } : {};
  const resources = Object.keys(hard).sort();
  const selected = (await readerOf(ctx).list(namespaces, undefined)).filter((ns) => selectsNamespace(crq, ns)).map((ns) => ns.metadata.name!);
  const parts = new Map<string, Obj>((Array.isArray(crq.status?.namespaces) ? crq.status.namespaces : []).map((p: Obj) => [p.namespace, p.status ?? {}]));
  const write = async (status: Obj) => {
    await ctx.registry.guaranteedUpdate(clusterResourceQuotas, undefined, name, undefined, { subresource: 'status' }, (cur) => {
      if (cur.metadata.uid !== uid) throw new Error(`ClusterResourceQuota ${name} was replaced`);
      return jsonEqual(cur.status ?? {}, status) ? cur : { ...cur, status };
    });
  };
  // Namespaces (or resources) not counted yet: named without used first, so admission refuses meanwhile.
  const fresh = new Map<string, string[]>();
  for (const ns of selected) {
    const used = obj(parts.get(ns)?.used);
    const missing = resources.filter((r) => used[r] === undefined);
    if (missing.length) fresh.set(ns, missing);
  }
  const entries = (usedOf: (ns: string) => Obj) =>
    [...new Set([...selected, ...parts.keys()])].sort().map((ns) => ({ namespace: ns, status: { hard, used: usedOf(ns) } }));
  if (fresh.size) {
    await write({
      total: { hard, used: obj(crq.status?.total?.used) },
      namespaces: entries((ns) => Object.fromEntries(Object.entries(obj(parts.get(ns)?.used)).filter(([r]) => !fresh.get(ns)?.includes(r) && hard[r] !== undefined))),
    });
    for (const [ns, missing] of fresh) {
      const kinds = new Map<string, ResourceInfo>();
      for (const r of missing) {
        const k = kindOfQuotaResource(r);
        if (k) kinds.set(`${k.group}/${k.resource}`, k);
      }
      for (const kind of kinds.values()) {
        for (const o of (await ctx.registry.list(kind, ns)).items as KubeObject[]) {
          if (!matchesScopes(kind, spec, o)) continue;
          const usage = usageOf(kind, o);
          const charges = missing
            .filter((r) => usage.has(r) && usage.get(r)!.nanos > 0n)
            .flatMap((r) => {
              const amount = toMilli(usage.get(r)!.nanos);
              return [
                { group: clusterChargeGroup(uid, r), amount, limit: Number.MAX_SAFE_INTEGER },
                { group: clusterNamespaceGroup(uid, ns, r), amount, limit: Number.MAX_SAFE_INTEGER },
              ];
            });
          if (charges.length) await ctx.registry.backend.chargeExisting(storageKey(kind, ns, o.metadata.name!), charges);
        }
      }
    }
  }
  // Every time: used is the counters.
  const count = (group: string, r: string) => ctx.registry.backend.count(group).then((n) => fromMilli(n, formatOf(hard[r])));
  const total = Object.fromEntries(await Promise.all(resources.map(async (r) => [r, await count(clusterChargeGroup(uid, r), r)] as const)));
  const perNs = new Map<string, Obj>();
  const all = [...new Set([...selected, ...parts.keys()])];
  await Promise.all(
    all.map(async (ns) => perNs.set(ns, Object.fromEntries(await Promise.all(resources.map(async (r) => [r, await count(clusterNamespaceGroup(uid, ns, r), r)] as const))))),
  );
  // A namespace no longer selected stays listed only while its objects hold usage.
  const keep = new Set(all.filter((ns) => selected.includes(ns) || Object.values(perNs.get(ns)!).some((v) => v !== '0')));
  await write({
    total: { hard, used: total },
    namespaces: [...keep].sort().map((ns) => ({ namespace: ns, status: { hard, used: perNs.get(ns)! } })),
  });
}

export const clusterResourceQuotaController: Controller = {
  name: 'clusterresourcequota-controller',
  identity: controllerUser('clusterresourcequota-controller'),
  watches: [clusterResourceQuotas, namespaces, ...resourceQuotaController.watches],
  keys: (ev) => {
    if (ev.resource === clusterResourceQuotas) return [ev.object.metadata.name!];
    if (ev.resource === namespaces) return [`${NS_KEY}${ev.object.metadata.name}`];
    return ev.object.metadata.namespace && chargesMayMove(ev) ? [`${NS_KEY}${ev.object.metadata.namespace}`] : [];
  },
  async reconcile(key, ctx) {
    if (!key.startsWith(NS_KEY)) return reconcileClusterQuota(ctx, key);
    // A change in a namespace: the quotas that select it (or list it) now.
    // One counter read tells whether the cluster has any ClusterResourceQuota: no reads beyond it then.
    if ((await ctx.registry.backend.count(CLUSTER_QUOTAS)) === 0) return;
    const nsName = key.slice(NS_KEY.length);
    const ns = await readerOf(ctx).get(namespaces, undefined, nsName);
    for (const crq of await readerOf(ctx).list(clusterResourceQuotas, undefined)) {
      const listed = (crq.status?.namespaces ?? []).some((p: Obj) => p?.namespace === nsName);
      if (listed || (ns && selectsNamespace(crq, ns))) await reconcileClusterQuota(ctx, crq.metadata.name!);
    }
  },
  async allKeys(ctx) {
    return (await readerOf(ctx).list(clusterResourceQuotas, undefined)).map((q) => q.metadata.name!);
  },
};
