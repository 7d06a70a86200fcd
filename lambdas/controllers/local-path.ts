// The local-path provisioner (rancher/local-path-provisioner's behaviour, in-process): a claim of a class
// whose provisioner is rancher.io/local-path, once the scheduler has chosen the node of its first pod
// (annotation volume.kubernetes.io/selected-node; the class is WaitForFirstConsumer), gets a
// PersistentVolume `pvc-<claim uid>`: a hostPath directory `<node's local-path dir>/pvc-<claim uid>` with
// node affinity to that node, pre-bound to the claim (claimRef). The name follows from the claim's uid, so
// a redelivered event meets AlreadyExists instead of provisioning twice.
//
// The directory lives on the node: the node agent announces where (the Node annotation
// skiff.io/local-path-dir, <agent data dir>/local-path), creates it when a pod first mounts the volume,
// and removes it when the volume is deleted (node-agent/volumes.ts), then drops the volume's
// LOCAL_PATH_FINALIZER, so the PV object outlives its directory never the other way round.

import type { KubeObject } from '../machinery/types.ts';

export { LOCAL_PATH_PROVISIONER } from '../kinds/storage/storageclass.ts';
import { LOCAL_PATH_PROVISIONER } from '../kinds/storage/storageclass.ts';

/** The Node annotation where an agent says under which directory its local-path volumes live. */
export const LOCAL_PATH_DIR_ANNOTATION = 'skiff.io/local-path-dir';
/** Where volumes go on a node that does not say (rancher's DEFAULT_PATH_FOR_NON_LISTED_NODES). */
export const DEFAULT_LOCAL_PATH_DIR = '/opt/local-path-provisioner';
/** Held by every local-path volume until the agent of its node has removed its directory. */
export const LOCAL_PATH_FINALIZER = 'skiff.io/local-path-cleanup';
export const SELECTED_NODE_ANNOTATION = 'volume.kubernetes.io/selected-node';
export const PROVISIONED_BY_ANNOTATION = 'pv.kubernetes.io/provisioned-by';
const HOSTNAME_LABEL = 'kubernetes.io/hostname';

/** The name of the volume provisioned for a claim (the external provisioner's "pvc-<uid>"). */
export function provisionedVolumeName(claim: KubeObject): string {
  return `pvc-${claim.metadata.uid}`;
}

/** The PersistentVolume rancher's provisioner would create for the claim on `node`. */
export function localPathVolume(claim: KubeObject, storageClass: KubeObject, node: KubeObject): KubeObject {
  const name = provisionedVolumeName(claim);
  const base = (node.metadata.annotations?.[LOCAL_PATH_DIR_ANNOTATION] ?? DEFAULT_LOCAL_PATH_DIR).replace(/\/+$/, '');
  const hostname = node.metadata.labels?.[HOSTNAME_LABEL] ?? node.metadata.name!;
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: {
      name,
      annotations: { [PROVISIONED_BY_ANNOTATION]: LOCAL_PATH_PROVISIONER, 'local.path.provisioner/selected-node': node.metadata.name! },
      finalizers: [LOCAL_PATH_FINALIZER],
    },
    spec: {
      capacity: { storage: claim.spec?.resources?.requests?.storage },
      accessModes: claim.spec?.accessModes ?? ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: storageClass.reclaimPolicy ?? 'Delete',
      storageClassName: storageClass.metadata.name,
      volumeMode: claim.spec?.volumeMode ?? 'Filesystem',
      hostPath: { path: `${base}/${name}`, type: 'DirectoryOrCreate' },
      nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: HOSTNAME_LABEL, operator: 'In', values: [hostname] }] }] } },
      claimRef: claimRefTo(claim),
    },
  };
}

/** An ObjectReference to the claim, as the binder writes it into spec.claimRef. */
export function claimRefTo(claim: KubeObject): Record<string, string> {
  return {
    kind: 'PersistentVolumeClaim',
    namespace: claim.metadata.namespace!,
    name: claim.metadata.name!,
    uid: claim.metadata.uid!,
    apiVersion: 'v1',
    resourceVersion: claim.metadata.resourceVersion ?? '',
  };
}

/** Whether the volume's directory is on `nodeName`: a local-path volume whose node affinity names it. */
export function isLocalPathVolumeOf(pv: KubeObject, nodeName: string, hostname = nodeName): boolean {
  if (pv.metadata.annotations?.[PROVISIONED_BY_ANNOTATION] !== LOCAL_PATH_PROVISIONER) return false;
  const terms: any[] = pv.spec?.nodeAffinity?.required?.nodeSelectorTerms ?? [];
  return terms.some((t) => (t?.matchExpressions ?? []).some((e: any) => e?.key === HOSTNAME_LABEL && e.operator === 'In' && (e.values ?? []).includes(hostname)));
}
