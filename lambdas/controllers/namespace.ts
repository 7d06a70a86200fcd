// The namespace controller: a namespace being deleted (deletionTimestamp set, phase Terminating) has
// everything in it deleted; once nothing is left, its "kubernetes" finalizer is removed, which lets the
// registry remove the namespace itself. Objects held by their own finalizers (or pods still stopping on
// a node) keep the namespace Terminating until they are gone, as in Kubernetes.

import { ApiError } from '../machinery/status.ts';
import { findResource, RESOURCES } from '../machinery/resources.ts';
import type { Controller } from './controller.ts';

const namespaces = findResource('', 'v1', 'namespaces')!;
const FINALIZER = 'kubernetes';

export const namespaceController: Controller = {
  name: 'namespace',
  watches: [namespaces],
  keys: (ev) => (ev.object.metadata.deletionTimestamp ? [ev.object.metadata.name!] : []),
  async allKeys({ registry }) {
    const list = await registry.list(namespaces, undefined);
    return list.items.filter((n) => n.metadata.deletionTimestamp).map((n) => n.metadata.name!);
  },
  async reconcile(name, { registry }) {
    let ns;
    try {
      ns = await registry.get(namespaces, undefined, name);
    } catch (e) {
      if (e instanceof ApiError && e.code === 404) return; // already gone: nothing to do
      throw e;
    }
    if (!ns.metadata.deletionTimestamp) return;
    let remaining = 0;
    for (const res of RESOURCES) {
      if (!res.namespaced || !res.verbs.includes('delete')) continue;
      // Deletes or marks everything; what is still present (finalizers, graceful pods) is counted below.
      await registry.deleteCollection(res, name, {}, { propagationPolicy: 'Background' });
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
