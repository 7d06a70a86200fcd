// ownerReference helpers shared by the replication controller and the garbage collector.

import { findKind, type ResourceInfo } from '../machinery/resources.ts';
import type { KubeObject, ObjectMeta, OwnerReference } from '../machinery/types.ts';

/** The controlling owner (ownerReferences[controller=true]), if any. */
export function controllerRef(obj: KubeObject): OwnerReference | undefined {
  return obj.metadata.ownerReferences?.find((r) => r.controller === true);
}

/** The ownerReference that says `owner` is the controller, blocking the owner's foreground deletion. */
export function controllerRefTo(owner: KubeObject): OwnerReference {
  return {
    apiVersion: owner.apiVersion ?? 'v1',
    kind: owner.kind!,
    name: owner.metadata.name!,
    uid: owner.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** The object without the ownerReference(s) to `uid` (the list is dropped when it becomes empty). */
export function withoutOwner(obj: KubeObject, uid: string): KubeObject {
  const refs = (obj.metadata.ownerReferences ?? []).filter((r) => r.uid !== uid);
  const metadata: ObjectMeta = { ...obj.metadata, ownerReferences: refs };
  if (!refs.length) delete metadata.ownerReferences;
  return { ...obj, metadata };
}

/** The served resource an ownerReference points to (undefined for kinds Skiff does not serve). */
export function ownerResource(ref: OwnerReference): ResourceInfo | undefined {
  return findKind(ref.apiVersion, ref.kind);
}

export function isTerminating(obj: KubeObject): boolean {
  return !!obj.metadata.deletionTimestamp;
}
