// PersistentVolume (core/v1, cluster-scoped): pkg/registry/core/persistentvolume and the PV rules of
// pkg/apis/core/validation. The PV controller (lambdas/controllers/persistentvolume.ts) binds and
// provisions them; the PVC kind (persistentvolumeclaim.ts) shares the access-mode and quantity rules here.

import { ensureObject } from '../../machinery/defaulting.ts';
import { ageCol, col, CORE, doc, nameCol, since, str } from '../../machinery/table.ts';
import { isObject, type KubeObject } from '../../machinery/types.ts';
import { canonicalQuantity } from '../../machinery/quantity.ts';
import { arr, jsonEqual, nameIsDNSSubdomain, obj, present, quantity, strOf, type ErrorList } from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

type Obj = Record<string, any>;

// ---- what PersistentVolumes and PersistentVolumeClaims share ----

/** supportedAccessModes, as sets.List sorts them. */
export const ACCESS_MODES = ['ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOnce', 'ReadWriteOncePod'];

/** The access modes rule of PV and PVC specs; `requiredDetail` is what the Required error says. */
export function validateAccessModes(errs: ErrorList, modes: unknown, field: string, requiredDetail: string): void {
  const list = arr(modes);
  if (list.length === 0) errs.required(field, requiredDetail);
  let rwop = false;
  let other = false;
  for (const m of list) {
    if (!ACCESS_MODES.includes(m)) errs.notSupported(field, m, ACCESS_MODES);
    if (m === 'ReadWriteOncePod') rwop = true;
    else if (ACCESS_MODES.includes(m)) other = true;
  }
  if (rwop && other) errs.forbidden(field, 'may not use ReadWriteOncePod with other access modes');
}

/** ValidateClassName: a DNS subdomain. */
export function validateClassName(errs: ErrorList, name: string, field: string): void {
  errs.each(field, name, nameIsDNSSubdomain(name, false));
}

/** helper.GetAccessModesAsString: the short forms, in kube's fixed order. */
export function accessModesString(modes: unknown): string {
  const list = arr(modes);
  const short: [string, string][] = [
    ['ReadWriteOnce', 'RWO'],
    ['ReadOnlyMany', 'ROX'],
    ['ReadWriteMany', 'RWX'],
    ['ReadWriteOncePod', 'RWOP'],
  ];
  return short
    .filter(([m]) => list.includes(m))
    .map(([, s]) => s)
    .join(',');
}

/** A quantity as Quantity.String() prints it ("" stays ""; a bad one is printed as given). */
export function formatQuantityOf(q: unknown): string {
  if (typeof q !== 'string' && typeof q !== 'number') return '';
  try {
    return canonicalQuantity(q);
  } catch {
    return String(q);
  }
}

const RECLAIM_POLICIES = ['Delete', 'Recycle', 'Retain'];
export const VOLUME_MODES = ['Block', 'Filesystem'];
const HOST_PATH_TYPES = ['', 'BlockDevice', 'CharDevice', 'Directory', 'DirectoryOrCreate', 'File', 'FileOrCreate', 'Socket'];

/** The volume sources of a PersistentVolumeSpec in the order kube's validation looks at them (and the path it names). */
const SOURCES: [string, string][] = [
  ['hostPath', 'hostPath'],
  ['gcePersistentDisk', 'gcePersistentDisk'],
  ['awsElasticBlockStore', 'awsElasticBlockStore'],
  ['glusterfs', 'glusterfs'],
  ['flocker', 'flocker'],
  ['nfs', 'nfs'],
  ['rbd', 'rbd'],
  ['quobyte', 'quobyte'],
  ['cephfs', 'cephFS'],
  ['iscsi', 'iscsi'],
  ['cinder', 'cinder'],
  ['fc', 'fc'],
  ['flexVolume', 'flexVolume'],
  ['azureFile', 'azureFile'],
  ['vsphereVolume', 'vsphereVolume'],
  ['photonPersistentDisk', 'photonPersistentDisk'],
  ['portworxVolume', 'portworxVolume'],
  ['azureDisk', 'azureDisk'],
  ['scaleIO', 'scaleIO'],
  ['local', 'local'],
  ['storageos', 'storageos'],
  ['csi', 'csi'],
];

/** validatePathNoBacksteps */
function validatePathNoBacksteps(errs: ErrorList, p: string, field: string): void {
  if (p.split('/').includes('..')) errs.invalid(field, p, "must not contain '..'");
}

/** validateVolumeNodeAffinity (the term contents are the scheduler's to read; their count is checked here). */
function validateVolumeNodeAffinity(errs: ErrorList, na: unknown, field: string): boolean {
  const required = obj(na).required;
  if (!present(required)) {
    errs.required(`${field}.required`, 'must specify required node constraints');
    return false;
  }
  if (arr(obj(required).nodeSelectorTerms).length === 0) errs.required(`${field}.required.nodeSelectorTerms`, 'must have at least one node selector term');
  return true;
}

/** ValidatePersistentVolumeSpec (not inline). */
function validatePersistentVolumeSpec(errs: ErrorList, spec: Obj): void {
  validateAccessModes(errs, spec.accessModes, 'spec.accessModes', '');
  const capacity = obj(spec.capacity);
  const keys = Object.keys(capacity);
  if (keys.length === 0) errs.required('spec.capacity');
  if (!keys.includes('storage') || keys.length > 1) errs.notSupported('spec.capacity', capacity, ['storage']);
  for (const k of keys.sort()) {
    const q = quantity(capacity[k]);
    // validateBasicResource, then ValidatePositiveQuantityValue
    if (q.nanos < 0n) errs.invalid(`spec.capacity[${k}]`, Number(q.nanos / 1_000_000_000n), 'must be a valid resource quantity');
    if (q.nanos <= 0n) errs.invalid(`spec.capacity[${k}]`, formatQuantityOf(capacity[k]), 'must be greater than zero');
  }
  const policy = strOf(spec.persistentVolumeReclaimPolicy);
  if (policy && !RECLAIM_POLICIES.includes(policy)) errs.notSupported('spec.persistentVolumeReclaimPolicy', policy, RECLAIM_POLICIES);
  const affinity = present(spec.nodeAffinity) && validateVolumeNodeAffinity(errs, spec.nodeAffinity, 'spec.nodeAffinity');

  let numVolumes = 0;
  for (const [key, path] of SOURCES) {
    if (!present(spec[key])) continue;
    if (numVolumes > 0 && key !== 'flexVolume') {
      errs.forbidden(`spec.${path}`, 'may not specify more than 1 volume type');
      continue;
    }
    numVolumes++;
    const src = obj(spec[key]);
    if (key === 'hostPath') {
      if (!strOf(src.path)) errs.required('spec.hostPath.path');
      else {
        validatePathNoBacksteps(errs, src.path, 'spec.hostPath.path');
        if (present(src.type) && !HOST_PATH_TYPES.includes(strOf(src.type))) errs.notSupported('spec.hostPath.type', src.type, HOST_PATH_TYPES);
      }
    } else if (key === 'local') {
      if (!strOf(src.path)) errs.required('spec.local.path');
      else validatePathNoBacksteps(errs, src.path, 'spec.local.path');
      if (!affinity) errs.required('spec.nodeAffinity', 'Local volume requires node affinity');
    } else if (key === 'nfs') {
      if (!strOf(src.server)) errs.required('spec.nfs.server');
      if (!strOf(src.path)) errs.required('spec.nfs.path');
      else if (!src.path.startsWith('/')) errs.invalid('spec.nfs.path', src.path, 'must be an absolute path');
    } else if (key === 'csi') {
      if (!strOf(src.driver)) errs.required('spec.csi.driver');
      if (!strOf(src.volumeHandle)) errs.required('spec.csi.volumeHandle');
    }
  }
  if (numVolumes === 0) errs.required('spec', 'must specify a volume type');
  if (isObject(spec.hostPath) && strOf(spec.hostPath.path).replace(/\/+$/, '') === '' && strOf(spec.hostPath.path) !== '' && policy === 'Recycle') {
    errs.forbidden('spec.persistentVolumeReclaimPolicy', "may not be 'recycle' for a hostPath mount of '/'");
  }
  if (strOf(spec.storageClassName)) validateClassName(errs, spec.storageClassName, 'spec.storageClassName');
  if (present(spec.volumeMode) && !VOLUME_MODES.includes(spec.volumeMode)) errs.notSupported('spec.volumeMode', spec.volumeMode, VOLUME_MODES);
}

/** The PersistentVolumeSource part of a spec: what may never change after creation. */
function volumeSource(spec: Obj): Obj {
  const out: Obj = {};
  for (const [key] of SOURCES) if (present(spec[key])) out[key] = spec[key];
  return out;
}

function validatePersistentVolumeUpdate(errs: ErrorList, pv: Obj, old: Obj, subresource?: string): void {
  if (subresource === 'status') return;
  const spec = obj(pv.spec);
  const was = obj(old.spec);
  if (!jsonEqual(volumeSource(spec), volumeSource(was))) errs.forbidden('spec.persistentvolumesource', 'spec.persistentvolumesource is immutable after creation');
  if ((spec.volumeMode ?? null) !== (was.volumeMode ?? null)) errs.invalid('volumeMode', spec.volumeMode ?? null, 'field is immutable');
  // validatePvNodeAffinity (kube prints the new value as a Go struct literal; Skiff as JSON).
  if (present(was.nodeAffinity) && !jsonEqual(spec.nodeAffinity, was.nodeAffinity)) {
    errs.invalid('nodeAffinity', spec.nodeAffinity ?? null, 'field is immutable, except for updating from beta label to GA');
  }
  // The VolumeAttributesClass feature gate is off in 1.32 (beta, disabled by default).
  if (!jsonEqual(spec.volumeAttributesClassName, was.volumeAttributesClassName)) {
    errs.forbidden('spec.volumeAttributesClassName', 'update is forbidden when the VolumeAttributesClass feature gate is disabled');
  }
}

/** helper.GetPersistentVolumeClass: spec.storageClassName, or the beta annotation. */
export function pvClass(pv: Obj): string {
  const beta = pv.metadata?.annotations?.['volume.beta.kubernetes.io/storage-class'];
  if (typeof beta === 'string') return beta;
  return strOf(pv.spec?.storageClassName);
}

function printPersistentVolume(pv: Obj, now: Date) {
  const spec = obj(pv.spec);
  const claim = isObject(spec.claimRef) ? `${str(spec.claimRef.namespace)}/${str(spec.claimRef.name)}` : '';
  const phase = pv.metadata?.deletionTimestamp ? 'Terminating' : str(pv.status?.phase);
  return {
    cells: [
      str(pv.metadata?.name),
      formatQuantityOf(obj(spec.capacity).storage ?? '0'),
      accessModesString(spec.accessModes),
      str(spec.persistentVolumeReclaimPolicy),
      phase,
      claim,
      pvClass(pv),
      typeof spec.volumeAttributesClassName === 'string' ? spec.volumeAttributesClassName : '<unset>',
      str(pv.status?.reason),
      since(pv.metadata?.creationTimestamp, now),
      typeof spec.volumeMode === 'string' ? spec.volumeMode : '<unset>',
    ],
  };
}

const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

export const persistentVolume: KindStrategy = {
  info: resourceInfo('', 'v1', 'PersistentVolume', 'persistentvolumes', false, { shortNames: ['pv'], subresources: ['status'] }),
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: true },
  // SetDefaults_PersistentVolume (and SetDefaults_HostPathVolumeSource: type "").
  defaults: (pv) => {
    const spec = ensureObject(pv, 'spec');
    if (!strOf(spec.persistentVolumeReclaimPolicy)) spec.persistentVolumeReclaimPolicy = 'Retain';
    if (!present(spec.volumeMode)) spec.volumeMode = 'Filesystem';
    if (isObject(spec.hostPath) && !present(spec.hostPath.type)) spec.hostPath.type = '';
    const status = ensureObject(pv, 'status');
    if (!strOf(status.phase)) status.phase = 'Pending';
  },
  validate: (errs, pv) => validatePersistentVolumeSpec(errs, obj(pv.spec)),
  validateUpdate: (errs, pv, old, opts) => validatePersistentVolumeUpdate(errs, pv, old, opts.subresource),
  // PrepareForCreate: a new volume is Pending, since now (PersistentVolumeLastPhaseTransitionTime, GA in 1.31).
  prepareForCreate: (o) => {
    o.status = { phase: 'Pending', lastPhaseTransitionTime: rfc3339(new Date()) };
  },
  prepareForUpdate: (o: KubeObject, old: KubeObject, subresource?: string) => {
    if (!subresource) o.status = old.status;
    else if (subresource === 'status') {
      o.spec = old.spec;
      // PrepareForUpdate of the status strategy: a phase change stamps its time.
      if (o.status?.phase !== old.status?.phase) o.status = { ...(o.status ?? {}), lastPhaseTransitionTime: rfc3339(new Date()) };
    }
  },
  table: {
    columns: () => [
      nameCol(),
      col('Capacity', 'string', doc(`${CORE}PersistentVolumeSpec`, 'capacity')),
      col('Access Modes', 'string', doc(`${CORE}PersistentVolumeSpec`, 'accessModes')),
      col('Reclaim Policy', 'string', doc(`${CORE}PersistentVolumeSpec`, 'persistentVolumeReclaimPolicy')),
      col('Status', 'string', doc(`${CORE}PersistentVolumeStatus`, 'phase')),
      col('Claim', 'string', doc(`${CORE}PersistentVolumeSpec`, 'claimRef')),
      col('StorageClass', 'string', 'StorageClass of the pv'),
      col('VolumeAttributesClass', 'string', 'VolumeAttributesClass of the pv'),
      col('Reason', 'string', doc(`${CORE}PersistentVolumeStatus`, 'reason')),
      ageCol(),
      col('VolumeMode', 'string', doc(`${CORE}PersistentVolumeSpec`, 'volumeMode'), 1),
    ],
    print: printPersistentVolume,
  },
};
