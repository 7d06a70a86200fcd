// CustomResourceDefinition (apiextensions.k8s.io/v1), as kube's apiextensions-apiserver stores it
// (pkg/registry/customresourcedefinition: strategy.go, etcd.go): defaulted and validated by the
// apiextensions machinery, status through its subresource (written by the CRD controller,
// controllers/crd.ts: NamesAccepted, Established, Terminating, acceptedNames), and a delete that first
// adds the customresourcecleanup.apiextensions.k8s.io finalizer and the Terminating condition, so the
// controller deletes the custom resources before the CRD goes. The apiserver serves the custom resources
// of Established CRDs (apiserver/crds.ts).

import { defaultCRD, invalidError, validateCRD, validateCRDUpdate, type CustomResourceDefinition, type FieldError } from '../../apiextensions/index.ts';
import { zeroNulls } from '../../machinery/schema.ts';
import type { ErrorList } from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

/** kube's CustomResourceCleanupFinalizer. */
export const CRD_CLEANUP_FINALIZER = 'customresourcecleanup.apiextensions.k8s.io';

type Obj = Record<string, any>;
type Condition = { type: string; status: string; lastTransitionTime?: string; reason?: string; message?: string };

const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

/** apiextensions SetCRDCondition: replaces the condition of the same type; the transition time moves only when the status does. */
export function setCRDCondition(crd: Obj, c: Condition): void {
  crd.status ??= {};
  const conds: Condition[] = (crd.status.conditions ??= []);
  const i = conds.findIndex((x) => x.type === c.type);
  if (i < 0) {
    conds.push({ ...c, lastTransitionTime: c.lastTransitionTime ?? now() });
    return;
  }
  const old = conds[i]!;
  conds[i] = { ...c, lastTransitionTime: old.status === c.status && old.lastTransitionTime ? old.lastTransitionTime : (c.lastTransitionTime ?? now()) };
}

export function crdCondition(crd: Obj, type: string): Condition | undefined {
  return (crd.status?.conditions as Condition[] | undefined)?.find((c) => c.type === type);
}

const fail = (errs: ErrorList, obj: Obj, found: FieldError[]) => {
  if (found.length) invalid(errs, obj, found);
};
function invalid(errs: ErrorList, obj: Obj, found: FieldError[]): never {
  throw invalidError('CustomResourceDefinition', 'apiextensions.k8s.io', typeof obj.metadata?.name === 'string' ? obj.metadata.name : '', [
    ...(errs.list as FieldError[]),
    ...found,
  ]);
}

export const customResourceDefinition: KindStrategy = {
  info: resourceInfo('apiextensions.k8s.io', 'v1', 'CustomResourceDefinition', 'customresourcedefinitions', false, {
    shortNames: ['crd', 'crds'],
    categories: ['api-extensions'],
    subresources: ['status'],
  }),
  // The name rule (spec.names.plural + "." + spec.group) is validateCRD's.
  meta: { name: () => [], kubeFinalizers: false },
  prepareForCreate(obj) {
    // Decoded as Go decodes it (a null column or version is an empty one), so validation reads structs.
    zeroNulls(customResourceDefinition.info, obj);
    // strategy.PrepareForCreate: the status is reset, storedVersions is the storage version.
    defaultCRD(obj as unknown as CustomResourceDefinition);
    obj.metadata.generation = 1;
  },
  prepareForUpdate(obj, old, subresource) {
    // The status subresource changes only the status (the store keeps the rest); the main resource keeps
    // the stored status, adding a new storage version to storedVersions.
    if (subresource === 'status') return;
    zeroNulls(customResourceDefinition.info, obj);
    defaultCRD(obj as unknown as CustomResourceDefinition, old as unknown as CustomResourceDefinition);
  },
  validateCreate: (errs, obj) => fail(errs, obj, validateCRD(obj as CustomResourceDefinition)),
  validateUpdate: (errs, obj, old) => fail(errs, obj, validateCRDUpdate(obj as CustomResourceDefinition, old as CustomResourceDefinition)),
  // etcd.go REST.Delete: the first delete adds the cleanup finalizer and the Terminating condition; the
  // CRD controller deletes the custom resources, then removes the finalizer, and the CRD goes.
  finalizing: (obj) => !obj.metadata.deletionTimestamp,
  prepareForDelete(obj) {
    const fins: string[] = (obj.metadata.finalizers ??= []);
    if (!fins.includes(CRD_CLEANUP_FINALIZER)) fins.push(CRD_CLEANUP_FINALIZER);
    if (crdCondition(obj, 'Terminating')?.status !== 'True') {
      setCRDCondition(obj, {
        type: 'Terminating',
        status: 'True',
        reason: 'InstanceDeletionPending',
        message: 'CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon',
      });
    }
  },
};
