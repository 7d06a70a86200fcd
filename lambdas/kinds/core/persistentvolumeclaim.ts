// PersistentVolumeClaim (core/v1): pkg/registry/core/persistentvolumeclaim and the PVC rules of
// pkg/apis/core/validation. The DefaultStorageClass admission (apiserver/admission-storage.ts) fills in
// spec.storageClassName; the PV controller (controllers/persistentvolume.ts) binds it.

import { ensureObject } from '../../machinery/defaulting.ts';
import { validateLabelSelector } from '../../machinery/metav1-validation.ts';
import { compareQuantities } from '../../machinery/quantity.ts';
import { ageCol, col, CORE, doc, nameCol, since, str } from '../../machinery/table.ts';
import { isObject } from '../../machinery/types.ts';
import { jsonEqual, nameIsDNSSubdomain, obj, present, quantity, strOf, type ErrorList } from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';
import { accessModesString, formatQuantityOf, validateAccessModes, validateClassName, VOLUME_MODES } from './persistentvolume.ts';

type Obj = Record<string, any>;

const BETA_CLASS_ANNOTATION = 'volume.beta.kubernetes.io/storage-class';

/** validateDataSource / validateDataSourceRef (the parts that need no other object). */
function validateDataSource(errs: ErrorList, ds: Obj, field: string): void {
  if (!strOf(ds.name)) errs.required(`${field}.name`);
  if (!strOf(ds.kind)) errs.required(`${field}.kind`);
  const group = strOf(ds.apiGroup);
  if (!group && ds.kind !== 'PersistentVolumeClaim') errs.invalid(field, strOf(ds.kind), "must be 'PersistentVolumeClaim' when referencing the default apiGroup");
  if (group) errs.each(`${field}.apiGroup`, group, nameIsDNSSubdomain(group, false));
}

/** ValidatePersistentVolumeClaimSpec */
export function validatePersistentVolumeClaimSpec(errs: ErrorList, spec: Obj, path: string): void {
  validateAccessModes(errs, spec.accessModes, `${path}.accessModes`, 'at least 1 access mode is required');
  if (present(spec.selector)) validateLabelSelector(errs, spec.selector, `${path}.selector`);
  const requests = obj(obj(spec.resources).requests);
  if (!present(requests.storage)) errs.required(`${path}.resources[storage]`);
  else if (quantity(requests.storage).nanos <= 0n) errs.invalid(`${path}.resources[storage]`, formatQuantityOf(requests.storage), 'must be greater than zero');
  if (strOf(spec.storageClassName)) validateClassName(errs, spec.storageClassName, `${path}.storageClassName`);
  if (present(spec.volumeMode) && !VOLUME_MODES.includes(spec.volumeMode)) errs.notSupported(`${path}.volumeMode`, spec.volumeMode, VOLUME_MODES);
  if (isObject(spec.dataSource)) validateDataSource(errs, spec.dataSource, `${path}.dataSource`);
  if (isObject(spec.dataSourceRef)) validateDataSource(errs, spec.dataSourceRef, `${path}.dataSourceRef`);
}

/**
 * ValidatePersistentVolumeClaimUpdate: the spec is immutable but for volumeName (set once, by the
 * binder), storageClassName (set once from nil: the retroactive default class) and, on a bound claim, a
 * larger storage request. (Kube's Forbidden message also carries a cmp.Diff of the two specs; Skiff's
 * carries the first line only.)
 */
function validatePersistentVolumeClaimUpdate(errs: ErrorList, pvc: Obj, old: Obj): void {
  const spec = structuredClone(obj(pvc.spec));
  const was = structuredClone(obj(old.spec));
  if (!strOf(was.volumeName)) was.volumeName = spec.volumeName;
  const oldBeta = old.metadata?.annotations?.[BETA_CLASS_ANNOTATION];
  const newBeta = pvc.metadata?.annotations?.[BETA_CLASS_ANNOTATION];
  if (oldBeta !== newBeta) errs.invalid(`metadata.annotations[${BETA_CLASS_ANNOTATION}]`, newBeta ?? '', 'field is immutable');
  if (oldBeta === undefined && !present(was.storageClassName) && strOf(spec.storageClassName)) was.storageClassName = spec.storageClassName;
  if (pvc.status?.phase === 'Bound' && isObject(spec.resources?.requests)) spec.resources.requests.storage = obj(was.resources?.requests).storage;
  if (pvc.status?.phase === 'Bound' && present(spec.volumeAttributesClassName)) spec.volumeAttributesClassName = was.volumeAttributesClassName;
  if (!jsonEqual(spec, was)) errs.forbidden('spec', 'spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims');
  const newSize = obj(pvc.spec?.resources?.requests).storage;
  const oldSize = obj(old.spec?.resources?.requests).storage;
  if (present(newSize) && present(oldSize) && compareQuantities(newSize, oldSize) < 0) {
    errs.forbidden('spec.resources.requests.storage', 'field can not be less than previous value');
  }
  if ((pvc.spec?.volumeMode ?? null) !== (old.spec?.volumeMode ?? null)) errs.invalid('volumeMode', pvc.spec?.volumeMode ?? null, 'field is immutable');
  // The VolumeAttributesClass feature gate is off in 1.32 (beta, disabled by default).
  if (!jsonEqual(pvc.spec?.volumeAttributesClassName, old.spec?.volumeAttributesClassName)) {
    errs.forbidden('spec.volumeAttributesClassName', 'update is forbidden when the VolumeAttributesClass feature gate is disabled');
  }
}

/** helper.GetPersistentVolumeClaimClass: the beta annotation, else spec.storageClassName. */
export function claimClass(pvc: Obj): string {
  const beta = pvc.metadata?.annotations?.[BETA_CLASS_ANNOTATION];
  if (typeof beta === 'string') return beta;
  return strOf(pvc.spec?.storageClassName);
}

function printPersistentVolumeClaim(pvc: Obj, now: Date) {
  const spec = obj(pvc.spec);
  const phase = pvc.metadata?.deletionTimestamp ? 'Terminating' : str(pvc.status?.phase);
  let capacity = '';
  let modes = '';
  if (strOf(spec.volumeName)) {
    modes = accessModesString(pvc.status?.accessModes);
    capacity = formatQuantityOf(obj(pvc.status?.capacity).storage ?? '0');
  }
  return {
    cells: [
      str(pvc.metadata?.name),
      phase,
      strOf(spec.volumeName),
      capacity,
      modes,
      claimClass(pvc),
      typeof spec.volumeAttributesClassName === 'string' ? spec.volumeAttributesClassName : '<unset>',
      since(pvc.metadata?.creationTimestamp, now),
      typeof spec.volumeMode === 'string' ? spec.volumeMode : '<unset>',
    ],
  };
}

export const persistentVolumeClaim: KindStrategy = {
  info: resourceInfo('', 'v1', 'PersistentVolumeClaim', 'persistentvolumeclaims', true, { shortNames: ['pvc'], subresources: ['status'] }),
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: true },
  // SetDefaults_PersistentVolumeClaim, SetDefaults_PersistentVolumeClaimSpec
  defaults: (pvc) => {
    const spec = ensureObject(pvc, 'spec');
    if (!present(spec.volumeMode)) spec.volumeMode = 'Filesystem';
    const status = ensureObject(pvc, 'status');
    if (!strOf(status.phase)) status.phase = 'Pending';
  },
  validate: (errs, pvc) => validatePersistentVolumeClaimSpec(errs, obj(pvc.spec), 'spec'),
  validateUpdate: (errs, pvc, old, opts) => {
    if (opts.subresource !== 'status') validatePersistentVolumeClaimUpdate(errs, pvc, old);
  },
  prepareForCreate: (o) => {
    delete o.status;
  },
  prepareForUpdate: (o, old, subresource) => {
    if (!subresource) o.status = old.status;
    else if (subresource === 'status') o.spec = old.spec;
  },
  table: {
    columns: () => [
      nameCol(),
      col('Status', 'string', doc(`${CORE}PersistentVolumeClaimStatus`, 'phase')),
      col('Volume', 'string', doc(`${CORE}PersistentVolumeClaimSpec`, 'volumeName')),
      col('Capacity', 'string', doc(`${CORE}PersistentVolumeClaimStatus`, 'capacity')),
      col('Access Modes', 'string', doc(`${CORE}PersistentVolumeClaimStatus`, 'accessModes')),
      col('StorageClass', 'string', 'StorageClass of the pvc'),
      col('VolumeAttributesClass', 'string', 'VolumeAttributesClass of the pvc'),
      ageCol(),
      col('VolumeMode', 'string', doc(`${CORE}PersistentVolumeClaimSpec`, 'volumeMode'), 1),
    ],
    print: printPersistentVolumeClaim,
  },
};
