// The CustomResourceDefinition controller: kube-apiextensions-apiserver's naming, establishing and finalizer
// controllers (pkg/controller/status/naming_controller.go, establish/establishing_controller.go,
// finalizer/crd_finalizer.go) as one level-triggered loop over CRD names.
//   - names: the CRD's requested names are accepted unless another CRD of its group has accepted them
//     (plural, singular and short names share one set, kind and list kind another); status.acceptedNames,
//     condition NamesAccepted (True/NoConflicts, or False with PluralConflict, SingularConflict,
//     ShortNamesConflict, KindConflict, ListKindConflict and `"x" is already in use`);
//   - establishing: NamesAccepted=True makes Established=True (InitialNamesAccepted); until then
//     Established=False (NotAccepted). The apiserver serves the CRD's resources once it is Established.
//   - cleanup: a CRD being deleted (the registry added the customresourcecleanup finalizer and
//     Terminating=True/InstanceDeletionPending) has its custom resources deleted (InstanceDeletionInProgress),
//     at most BURST_REPLICAS a reconcile; when none is left, Terminating=False/InstanceDeletionCompleted and
//     the finalizer goes, which deletes the CRD.
// Reads go to the store, not a cache: reconciles of one controller run one at a time, so a CRD's names are
// decided after the previous CRD's accepted names are written (two CRDs asking for one plural: the second
// gets NamesAccepted=False). A deleted CRD's key wakes the other CRDs of its group, whose names may now be free.

import { isDeepStrictEqual } from 'node:util';
import type { Registry } from '../apiserver/registry.ts';
import { ApiError } from '../machinery/status.ts';
import { findResource, type ResourceInfo } from '../machinery/resources.ts';
import type { KubeObject } from '../machinery/types.ts';
import { resourceInfo } from '../kinds/kind.ts';
import { CRD_CLEANUP_FINALIZER, crdCondition, setCRDCondition } from '../kinds/apiextensions/customresourcedefinition.ts';
import { BURST_REPLICAS } from './batch.ts';
import type { Controller } from './controller.ts';
import { controllerUser } from './identity.ts';

const crds = findResource('apiextensions.k8s.io', 'v1', 'customresourcedefinitions')!;
const PAGE = 500;

type Names = { plural?: string; singular?: string; kind?: string; listKind?: string; shortNames?: string[]; categories?: string[] };

/** The group of a CRD from its name (plural.group), for a CRD that is gone. */
const groupOfName = (name: string) => name.slice(name.indexOf('.') + 1);

/** Where a CRD's custom resources are stored (the storage key needs only group, plural and scope). */
export function customResourceStorage(crd: KubeObject): ResourceInfo {
  const names: Names = crd.status?.acceptedNames?.plural ? crd.status.acceptedNames : crd.spec.names;
  const version = (crd.spec.versions ?? []).find((v: { storage?: boolean }) => v.storage)?.name ?? crd.spec.versions?.[0]?.name ?? 'v1';
  return resourceInfo(crd.spec.group, version, names.kind ?? '', names.plural ?? '', crd.spec.scope !== 'Cluster');
}

async function getCRD(registry: Registry, name: string): Promise<KubeObject | undefined> {
  try {
    return await registry.get(crds, undefined, name);
  } catch (e) {
    if (e instanceof ApiError && e.code === 404) return undefined;
    throw e;
  }
}

/** Writes the CRD's status if `change` altered it (status subresource; a vanished CRD is fine). */
async function updateStatus(registry: Registry, crd: KubeObject, change: (status: KubeObject) => void): Promise<void> {
  const next = structuredClone(crd);
  change(next);
  if (isDeepStrictEqual(next.status, crd.status)) return;
  try {
    await registry.guaranteedUpdate(crds, undefined, crd.metadata.name!, Number(crd.metadata.resourceVersion), { subresource: 'status' }, (cur) => ({
      ...cur,
      status: next.status,
    }));
  } catch (e) {
    if (e instanceof ApiError && e.code === 404) return;
    throw e; // a conflict retries the key (the runner's back-off; the stream's batch failure)
  }
}

/** naming_controller.go calculateNamesAndConditions. */
function namesAndConditions(crd: KubeObject, others: KubeObject[]): void {
  const resources = new Set<string>();
  const kinds = new Set<string>();
  for (const o of others) {
    const a: Names = o.status?.acceptedNames ?? {};
    for (const n of [a.plural, a.singular, ...(a.shortNames ?? [])]) if (n) resources.add(n);
    for (const n of [a.kind, a.listKind]) if (n) kinds.add(n);
  }
  const requested: Names = crd.spec.names ?? {};
  const accepted: Names = crd.status?.acceptedNames ?? {};
  const next: Names = { ...accepted };
  let problem: { reason: string; message: string } | undefined;
  const fresh = (req: string | undefined, acc: string | undefined, used: Set<string>) =>
    req === acc || !req || !used.has(req) ? undefined : `${JSON.stringify(req)} is already in use`;
  const check = (field: 'plural' | 'singular' | 'kind' | 'listKind', used: Set<string>, reason: string) => {
    const err = fresh(requested[field], accepted[field], used);
    if (err) problem = { reason, message: err }; // a later conflict's reason wins, as in kube
    else if (requested[field] !== undefined) next[field] = requested[field];
  };
  check('plural', resources, 'PluralConflict');
  check('singular', resources, 'SingularConflict');
  const mine = new Set(accepted.shortNames ?? []);
  const shortConflict = (requested.shortNames ?? []).find((s) => !mine.has(s) && resources.has(s));
  if (shortConflict) problem = { reason: 'ShortNamesConflict', message: `${JSON.stringify(shortConflict)} is already in use` };
  else if (requested.shortNames) next.shortNames = requested.shortNames;
  else delete next.shortNames;
  check('kind', kinds, 'KindConflict');
  check('listKind', kinds, 'ListKindConflict');
  if (requested.categories) next.categories = requested.categories;
  else delete next.categories;

  crd.status ??= {};
  crd.status.acceptedNames = next;
  setCRDCondition(
    crd,
    problem ? { type: 'NamesAccepted', status: 'False', ...problem } : { type: 'NamesAccepted', status: 'True', reason: 'NoConflicts', message: 'no conflicts found' },
  );
  const established = crdCondition(crd, 'Established');
  if (!problem) {
    // The establishing controller's step, taken at once: the apiserver serves it from the next read on.
    if (established?.status !== 'True') {
      setCRDCondition(crd, { type: 'Established', status: 'True', reason: 'InitialNamesAccepted', message: 'the initial names have been accepted' });
    }
  } else if (!established) {
    setCRDCondition(crd, { type: 'Established', status: 'False', reason: 'NotAccepted', message: 'not all names are accepted' });
  }
}

/** Deletes up to `budget` custom resources (not those already being deleted); returns how many, and how many are left. */
async function deleteInstances(registry: Registry, res: ResourceInfo, budget: number): Promise<{ deleted: number; left: number }> {
  let deleted = 0;
  let left = 0;
  let cont: string | undefined;
  do {
    const page = await registry.list(res, undefined, { limit: PAGE, continue: cont });
    for (const o of page.items) {
      left++;
      if (o.metadata.deletionTimestamp || deleted >= budget) continue;
      try {
        const r = await registry.delete(res, o.metadata.namespace, o.metadata.name!, { preconditions: { uid: o.metadata.uid } });
        deleted++;
        if (r.deleted) left--;
      } catch (e) {
        if (!(e instanceof ApiError && (e.code === 404 || e.code === 409))) throw e;
      }
    }
    cont = page.metadata.continue;
  } while (cont);
  return { deleted, left };
}

async function cleanup(registry: Registry, crd: KubeObject) {
  if (!(crd.metadata.finalizers ?? []).includes(CRD_CLEANUP_FINALIZER)) return;
  const inProgress = { type: 'Terminating', status: 'True', reason: 'InstanceDeletionInProgress', message: 'CustomResource deletion is in progress' };
  await updateStatus(registry, crd, (c) => setCRDCondition(c, inProgress));
  const { left } = await deleteInstances(registry, customResourceStorage(crd), BURST_REPLICAS);
  // Instances still there (their own finalizers, or more than one reconcile's worth): look again soon.
  if (left > 0) return { requeueAfterMs: 1000 };
  const cur = await getCRD(registry, crd.metadata.name!);
  if (!cur) return;
  await updateStatus(registry, cur, (c) =>
    setCRDCondition(c, { type: 'Terminating', status: 'False', reason: 'InstanceDeletionCompleted', message: 'removed all instances' }),
  );
  try {
    await registry.guaranteedUpdate(crds, undefined, crd.metadata.name!, undefined, {}, (c) => ({
      ...c,
      metadata: { ...c.metadata, finalizers: (c.metadata.finalizers ?? []).filter((f: string) => f !== CRD_CLEANUP_FINALIZER) },
    }));
  } catch (e) {
    if (!(e instanceof ApiError && e.code === 404)) throw e;
  }
}

async function syncNames(registry: Registry, crd: KubeObject, all: KubeObject[]): Promise<void> {
  const others = all.filter((o) => o.spec?.group === crd.spec?.group && o.metadata.name !== crd.metadata.name);
  await updateStatus(registry, crd, (c) => namesAndConditions(c, others));
}

export const crdController: Controller = {
  name: 'customresourcedefinitions',
  identity: controllerUser('crd-controller'),
  watches: [crds],
  keys: (ev) => [ev.object.metadata.name!],
  async allKeys({ registry }) {
    return (await registry.list(crds, undefined)).items.map((c) => c.metadata.name!);
  },
  async reconcile(name, { registry }) {
    const crd = await getCRD(registry, name);
    if (crd?.metadata.deletionTimestamp) return cleanup(registry, crd);
    const all = (await registry.list(crds, undefined)).items;
    if (crd) return syncNames(registry, crd, all);
    // Gone: names it held may be free for a CRD of its group that could not have them.
    const group = groupOfName(name);
    for (const other of all) {
      if (other.spec?.group !== group || other.metadata.deletionTimestamp) continue;
      if (crdCondition(other, 'NamesAccepted')?.status === 'True') continue;
      await syncNames(registry, other, all);
    }
  },
};
