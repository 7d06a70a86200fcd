// StorageClass (storage.k8s.io/v1): pkg/registry/storage/storageclass. Every cluster starts with one,
// the default `local-path` (ensureDefaultStorageClass): rancher's local-path provisioner's class, whose
// volumes are directories on the node the claim's first pod is scheduled to (controllers/local-path.ts).

import { Buffer } from 'node:buffer';
import type { Registry } from '../../apiserver/registry.ts';
import { ApiError } from '../../machinery/status.ts';
import { ageCol, col, doc, nameCol, since, str } from '../../machinery/table.ts';
import { isObject } from '../../machinery/types.ts';
import { arr, jsonEqual, labelKeyErrors, nameIsDNSSubdomain, obj, present, strOf, type ErrorList } from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

type Obj = Record<string, any>;

const MAX_PARAMETERS = 512;
const MAX_PARAMETERS_SIZE = 256 * 1024;
const RECLAIM_POLICIES = ['Delete', 'Retain'];
const BINDING_MODES = ['Immediate', 'WaitForFirstConsumer'];
const DEFAULT_ANNOTATIONS = ['storageclass.kubernetes.io/is-default-class', 'storageclass.beta.kubernetes.io/is-default-class'];

function validateStorageClass(errs: ErrorList, sc: Obj): void {
  const provisioner = strOf(sc.provisioner);
  if (!provisioner) errs.required('provisioner');
  else errs.each('provisioner', provisioner.toLowerCase(), labelKeyErrors(provisioner.toLowerCase()));

  const params = obj(sc.parameters);
  const keys = Object.keys(params);
  if (keys.length > MAX_PARAMETERS) errs.tooLong('parameters', MAX_PARAMETERS);
  else {
    let size = 0;
    for (const k of keys) {
      if (k.length < 1) errs.invalid('parameters', k, 'field can not be empty.');
      size += Buffer.byteLength(k) + Buffer.byteLength(strOf(params[k]));
    }
    if (size > MAX_PARAMETERS_SIZE) errs.tooLong('parameters', MAX_PARAMETERS_SIZE);
  }

  const reclaim = strOf(sc.reclaimPolicy);
  if (reclaim && !RECLAIM_POLICIES.includes(reclaim)) errs.notSupported('reclaimPolicy', reclaim, RECLAIM_POLICIES);
  if (!present(sc.volumeBindingMode)) errs.required('volumeBindingMode');
  else if (!BINDING_MODES.includes(sc.volumeBindingMode)) errs.notSupported('volumeBindingMode', sc.volumeBindingMode, BINDING_MODES);

  // validateAllowedTopologies: each term's keys once, each key with values, no two terms alike.
  const seen: Map<string, Set<string>>[] = [];
  arr(sc.allowedTopologies).forEach((t, i) => {
    const term = new Map<string, Set<string>>();
    arr(obj(t).matchLabelExpressions).forEach((r, j) => {
      const p = `allowedTopologies[${i}].matchLabelExpressions[${j}]`;
      const values = arr(r?.values).map(strOf);
      if (values.length === 0) errs.required(`${p}.values`);
      const set = new Set<string>();
      values.forEach((v, k) => {
        if (set.has(v)) errs.duplicate(`${p}.values[${k}]`, v);
        set.add(v);
      });
      const key = strOf(r?.key);
      errs.each(`${p}.key`, key, labelKeyErrors(key));
      if (term.has(key)) errs.duplicate(`${p}.key`, key);
      term.set(key, set);
    });
    const same = (a: Map<string, Set<string>>, b: Map<string, Set<string>>) =>
      a.size === b.size && [...a].every(([k, v]) => b.has(k) && b.get(k)!.size === v.size && [...v].every((x) => b.get(k)!.has(x)));
    for (const prev of seen) if (same(term, prev)) errs.duplicate(`allowedTopologies[${i}].matchLabelExpressions`, '');
    seen.push(term);
  });
}

function validateStorageClassUpdate(errs: ErrorList, sc: Obj, old: Obj): void {
  if (!jsonEqual(sc.parameters, old.parameters)) errs.forbidden('parameters', 'updates to parameters are forbidden.');
  if (strOf(sc.provisioner) !== strOf(old.provisioner)) errs.forbidden('provisioner', 'updates to provisioner are forbidden.');
  if (strOf(sc.reclaimPolicy) !== strOf(old.reclaimPolicy)) errs.forbidden('reclaimPolicy', 'updates to reclaimPolicy are forbidden.');
  if ((sc.volumeBindingMode ?? null) !== (old.volumeBindingMode ?? null)) errs.invalid('volumeBindingMode', sc.volumeBindingMode ?? null, 'field is immutable');
}

/** storageutil.IsDefaultAnnotation */
function isDefaultClass(sc: Obj): boolean {
  const a = isObject(sc.metadata?.annotations) ? sc.metadata.annotations : {};
  return DEFAULT_ANNOTATIONS.some((k) => a[k] === 'true');
}

const SC = 'io.k8s.api.storage.v1.StorageClass';

export const storageClass: KindStrategy = {
  info: resourceInfo('storage.k8s.io', 'v1', 'StorageClass', 'storageclasses', false, { shortNames: ['sc'] }),
  // ValidateClassName: a DNS subdomain.
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: false },
  // SetDefaults_StorageClass
  defaults: (sc) => {
    if (!present(sc.reclaimPolicy)) sc.reclaimPolicy = 'Delete';
    if (!present(sc.volumeBindingMode)) sc.volumeBindingMode = 'Immediate';
  },
  validate: validateStorageClass,
  validateUpdate: validateStorageClassUpdate,
  table: {
    columns: () => [
      nameCol(),
      col('Provisioner', 'string', doc(SC, 'provisioner')),
      col('ReclaimPolicy', 'string', doc(SC, 'reclaimPolicy')),
      col('VolumeBindingMode', 'string', doc(SC, 'volumeBindingMode')),
      col('AllowVolumeExpansion', 'string', doc(SC, 'allowVolumeExpansion')),
      ageCol(),
    ],
    print: (o, now) => ({
      cells: [
        `${str(o.metadata?.name)}${isDefaultClass(o) ? ' (default)' : ''}`,
        str(o.provisioner),
        typeof o.reclaimPolicy === 'string' ? o.reclaimPolicy : 'Delete',
        typeof o.volumeBindingMode === 'string' ? o.volumeBindingMode : 'Immediate',
        o.allowVolumeExpansion === true,
        since(o.metadata?.creationTimestamp, now),
      ],
    }),
  },
};

/** The provisioner name of the local-path class (rancher/local-path-provisioner's). */
export const LOCAL_PATH_PROVISIONER = 'rancher.io/local-path';
export const LOCAL_PATH_CLASS = 'local-path';

/** The default class every cluster starts with, as k3s ships it. */
export function localPathStorageClass(): Obj {
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: LOCAL_PATH_CLASS, annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
    provisioner: LOCAL_PATH_PROVISIONER,
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'WaitForFirstConsumer',
  };
}

/** Creates the local-path class unless it exists (a user may have changed or removed its default mark: kept). */
export async function ensureDefaultStorageClass(registry: Pick<Registry, 'create'>): Promise<void> {
  try {
    await registry.create(storageClass.info, undefined, localPathStorageClass() as any);
  } catch (e) {
    if (!(e instanceof ApiError && e.reason === 'AlreadyExists')) throw e;
  }
}
