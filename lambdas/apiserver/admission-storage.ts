// The storage admission plugins of kube-apiserver (plugin/pkg/admission/storage):
// - DefaultStorageClass (storageclass/setdefault): a new claim that names no class (storageClassName
//   unset, not ""; no beta annotation) gets the default StorageClass, the newest one marked
//   is-default-class when several are. A claim naming a class that does not exist is not refused: it
//   stays Pending (the PV controller says why in an Event), as in Kubernetes.
// - StorageObjectInUseProtection (storageobjectinuseprotection): new claims carry the
//   kubernetes.io/pvc-protection finalizer and new volumes kubernetes.io/pv-protection, which the PV
//   controller removes once nothing uses them (controllers/pv-protection.ts).

import { findResource } from '../machinery/resources.ts';
import type { KubeObject } from '../machinery/types.ts';
import type { AdmissionPlugin } from './admission.ts';
import type { Registry } from './registry.ts';

export const PVC_PROTECTION_FINALIZER = 'kubernetes.io/pvc-protection';
export const PV_PROTECTION_FINALIZER = 'kubernetes.io/pv-protection';
const DEFAULT_ANNOTATIONS = ['storageclass.kubernetes.io/is-default-class', 'storageclass.beta.kubernetes.io/is-default-class'];
const BETA_CLASS_ANNOTATION = 'volume.beta.kubernetes.io/storage-class';

/** storageutil.IsDefaultAnnotation */
export function isDefaultStorageClass(sc: KubeObject): boolean {
  const a = sc.metadata?.annotations ?? {};
  return DEFAULT_ANNOTATIONS.some((k) => a[k] === 'true');
}

/** volumeutil.GetDefaultClass: of several defaults the newest, then the first by name. */
export function pickDefaultClass(classes: KubeObject[]): KubeObject | undefined {
  const defaults = classes.filter(isDefaultStorageClass);
  defaults.sort((a, b) => {
    const ta = Date.parse(a.metadata.creationTimestamp ?? '') || 0;
    const tb = Date.parse(b.metadata.creationTimestamp ?? '') || 0;
    return tb - ta || (a.metadata.name! < b.metadata.name! ? -1 : 1);
  });
  return defaults[0];
}

const isClaims = (r: { group: string; resource: string }) => r.group === '' && r.resource === 'persistentvolumeclaims';
const isVolumes = (r: { group: string; resource: string }) => r.group === '' && r.resource === 'persistentvolumes';

export const defaultStorageClassAdmission: AdmissionPlugin = {
  name: 'DefaultStorageClass',
  async admit(req, registry: Registry) {
    if (req.operation !== 'CREATE' || req.subresource || !req.object || !isClaims(req.resource)) return;
    const pvc = req.object;
    const spec = (pvc.spec ??= {}) as Record<string, any>;
    if (spec.storageClassName !== undefined && spec.storageClassName !== null) return;
    if (pvc.metadata?.annotations?.[BETA_CLASS_ANNOTATION] !== undefined) return;
    const res = findResource('storage.k8s.io', 'v1', 'storageclasses');
    if (!res) return;
    const def = pickDefaultClass((await registry.list(res, undefined)).items);
    if (def) spec.storageClassName = def.metadata.name;
  },
};

export const storageObjectInUseProtection: AdmissionPlugin = {
  name: 'StorageObjectInUseProtection',
  async admit(req) {
    if (req.operation !== 'CREATE' || req.subresource || !req.object) return;
    const finalizer = isClaims(req.resource) ? PVC_PROTECTION_FINALIZER : isVolumes(req.resource) ? PV_PROTECTION_FINALIZER : undefined;
    if (!finalizer) return;
    const meta = (req.object.metadata ??= {});
    const list: string[] = Array.isArray(meta.finalizers) ? meta.finalizers : [];
    if (!list.includes(finalizer)) meta.finalizers = [...list, finalizer];
  },
};
