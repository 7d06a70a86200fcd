// The namespace controller: a namespace being deleted (deletionTimestamp set, phase Terminating) has
// everything in it deleted, custom resources included (the served kinds come from ctx.kinds()); once nothing is left, its "kubernetes" finalizer is removed, which lets the
// registry remove the namespace itself. Objects held by their own finalizers (or pods still stopping on
// a node) keep the namespace Terminating until they are gone, as in Kubernetes.
// One reconcile deletes at most BURST_REPLICAS objects (Kubernetes sends one DeleteCollection per kind,
// which etcd's apiserver spreads over time; here each delete is a write of this reconcile), then asks to
// be requeued: a namespace of a hundred thousand pods empties step by step while the API answers.

import type { Registry } from '../apiserver/registry.ts';
import { ApiError } from '../machinery/status.ts';
import { findResource, type ResourceInfo } from '../machinery/resources.ts';
import { BURST_REPLICAS } from './batch.ts';
import { servedKinds, type Controller } from './controller.ts';
import { controllerUser } from './identity.ts';

const namespaces = findResource('', 'v1', 'namespaces')!;
const FINALIZER = 'kubernetes';
const PAGE = 500;

/** Deletes up to `budget` objects of a kind in the namespace (not those already being deleted); returns how many. */
async function deleteSome(registry: Registry, res: ResourceInfo, ns: string, budget: number): Promise<number> {
  let deleted = 0;
  let cont: string | undefined;
  do {
    const page = await registry.list(res, ns, { limit: PAGE, continue: cont });
    for (const o of page.items) {
      if (deleted >= budget) return deleted;
      // Waiting for its finalizers or its node: nothing more to ask of it.
      if (o.metadata.deletionTimestamp) continue;
      try {
        await registry.delete(res, ns, o.metadata.name!, { propagationPolicy: 'Background', preconditions: { uid: o.metadata.uid } });
        deleted++;
      } catch (e) {
        if (!(e instanceof ApiError && (e.code === 404 || e.code === 409))) throw e;
      }
    }
    cont = page.metadata.continue;
  } while (cont);
  return deleted;
}

export interface NamespaceControllerOptions {
  /** The most objects one reconcile deletes (default BURST_REPLICAS, 500, as kube). */
  burstReplicas?: number;
}

export function createNamespaceController(opts: NamespaceControllerOptions = {}): Controller {
  const burst = opts.burstReplicas ?? BURST_REPLICAS;
  return {
    name: 'namespace',
    identity: controllerUser('namespace-controller'),
    watches: [namespaces],
    keys: (ev) => (ev.object.metadata.deletionTimestamp ? [ev.object.metadata.name!] : []),
    async allKeys({ registry }) {
      const list = await registry.list(namespaces, undefined);
      return list.items.filter((n) => n.metadata.deletionTimestamp).map((n) => n.metadata.name!);
    },
    async reconcile(name, ctx) {
      const { registry } = ctx;
      let ns;
      try {
        ns = await registry.get(namespaces, undefined, name);
      } catch (e) {
        if (e instanceof ApiError && e.code === 404) return; // already gone: nothing to do
        throw e;
      }
      if (!ns.metadata.deletionTimestamp) return;
      let remaining = 0;
      let budget = burst;
      // Custom resources too (kube's namespace controller asks discovery for every namespaced resource).
      for (const res of await servedKinds(ctx)) {
        if (!res.namespaced || !res.verbs.includes('delete')) continue;
        // Deletes or marks what it may; what is still present (finalizers, graceful pods) is counted below.
        budget -= await deleteSome(registry, res, name, budget);
        if (budget <= 0) return { requeueAfterMs: 0 }; // the rest at the queue's next turn
        remaining += (await registry.list(res, name, { limit: 1 })).items.length;
      }
      if (remaining > 0) return { requeueAfterMs: 1000 };
      const finalizers: string[] = ns.spec?.finalizers ?? [];
      if (!finalizers.includes(FINALIZER)) return;
      try {
        await registry.guaranteedUpdate(namespaces, undefined, name, undefined, { subresource: 'finalize' }, (cur) => ({
          ...cur,
          spec: { ...(cur.spec ?? {}), finalizers: (cur.spec?.finalizers ?? []).filter((f: string) => f !== FINALIZER) },
        }));
      } catch (e) {
        if (!(e instanceof ApiError && e.code === 404)) throw e;
      }
    },
  };
}

export const namespaceController = createNamespaceController();
