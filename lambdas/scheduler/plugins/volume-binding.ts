// VolumeBinding (pkg/scheduler/framework/plugins/volumebinding), for a pod's persistentVolumeClaim
// volumes:
// - PreFilter reads the pod's claims (from the controllers' cache): a missing claim, one being deleted,
//   or an unbound claim of an Immediate class (the PV controller binds those without the scheduler) make
//   the pod unschedulable for now, with kube-scheduler's messages.
// - Filter: a node must satisfy the node affinity of every volume the pod's bound claims have
//   ("volume node affinity conflict"); for an unbound WaitForFirstConsumer claim, a node is fine if a
//   matching Available volume admits it or the class provisions (a class whose provisioner is
//   kubernetes.io/no-provisioner, static local volumes, needs such a volume). An unbound claim a node was
//   already selected for keeps the pod on that node.
// - PreBind writes the chosen node onto each unbound WaitForFirstConsumer claim
//   (volume.kubernetes.io/selected-node), which is what the PV controller waits for to bind or provision.
//   Unlike kube-scheduler, the pod is bound without waiting for the claims to be bound: the node agent
//   waits (its volume set-up retries until the claim is bound).

import { readerOf } from '../../controllers/controller.ts';
import { findMatchingVolume, volumeFitsNode } from '../../controllers/persistentvolume.ts';
import { SELECTED_NODE_ANNOTATION } from '../../controllers/local-path.ts';
import { claimClass } from '../../kinds/core/persistentvolumeclaim.ts';
import { findResource } from '../../machinery/resources.ts';
import type { KubeObject } from '../../machinery/types.ts';
import { fail, OK, type CyclePlugin } from '../framework.ts';

const claims = findResource('', 'v1', 'persistentvolumeclaims')!;
const volumes = findResource('', 'v1', 'persistentvolumes')!;
const storageClasses = findResource('storage.k8s.io', 'v1', 'storageclasses')!;

const NO_PROVISIONER = 'kubernetes.io/no-provisioner';
export const VOLUME_NODE_AFFINITY_CONFLICT = 'node(s) had volume node affinity conflict';
export const NO_MATCHING_VOLUMES = "node(s) didn't find available persistent volumes to bind";

interface State {
  /** Volumes of the pod's bound claims. */
  bound: KubeObject[];
  /** Unbound WaitForFirstConsumer claims, with the volumes that could still be bound to them. */
  delayed: { claim: KubeObject; candidates: KubeObject[]; provisions: boolean }[];
}

function claimNames(pod: KubeObject): string[] {
  return [...new Set<string>((pod.spec?.volumes ?? []).map((v: any) => v?.persistentVolumeClaim?.claimName).filter((n: unknown) => typeof n === 'string' && n))];
}

export const volumeBinding: CyclePlugin<State> = {
  name: 'VolumeBinding',

  async preFilter(ctx, pod) {
    const names = claimNames(pod);
    if (!names.length) return undefined;
    const reader = readerOf(ctx);
    const ns = pod.metadata.namespace!;
    const state: State = { bound: [], delayed: [] };
    let allVolumes: KubeObject[] | undefined;
    let immediateUnbound = false;
    for (const name of names) {
      const claim = await reader.get(claims, ns, name);
      if (!claim) return { unschedulable: `persistentvolumeclaim "${name}" not found` };
      if (claim.metadata.deletionTimestamp) return { unschedulable: `persistentvolumeclaim "${name}" is being deleted` };
      const volumeName: string | undefined = claim.spec?.volumeName;
      if (volumeName) {
        const pv = await reader.get(volumes, undefined, volumeName);
        if (!pv) return { unschedulable: `persistentvolume "${volumeName}" not found` };
        state.bound.push(pv);
        continue;
      }
      const klass = claimClass(claim);
      const sc = klass ? await reader.get(storageClasses, undefined, klass) : undefined;
      if (sc?.volumeBindingMode !== 'WaitForFirstConsumer') {
        immediateUnbound = true;
        continue;
      }
      allVolumes ??= await reader.list(volumes, undefined);
      const candidates = allVolumes.filter((v) => findMatchingVolume(claim, [v]) === v);
      state.delayed.push({ claim, candidates, provisions: sc.provisioner !== NO_PROVISIONER });
    }
    if (immediateUnbound) return { unschedulable: 'pod has unbound immediate PersistentVolumeClaims' };
    return { state };
  },

  filter(_pod, state, info) {
    const node = info.node;
    for (const pv of state.bound) if (!volumeFitsNode(pv, node)) return fail(VOLUME_NODE_AFFINITY_CONFLICT);
    for (const d of state.delayed) {
      const selected = d.claim.metadata.annotations?.[SELECTED_NODE_ANNOTATION];
      if (selected && selected !== node.metadata.name) return fail(VOLUME_NODE_AFFINITY_CONFLICT);
      if (d.candidates.some((v) => volumeFitsNode(v, node))) continue;
      if (!d.provisions) return fail(NO_MATCHING_VOLUMES);
    }
    return OK;
  },

  async preBind(ctx, _pod, state, nodeName) {
    for (const { claim } of state.delayed) {
      if (claim.metadata.annotations?.[SELECTED_NODE_ANNOTATION] === nodeName) continue;
      await ctx.registry.guaranteedUpdate(claims, claim.metadata.namespace, claim.metadata.name!, undefined, {}, (cur) => {
        if (cur.metadata.uid !== claim.metadata.uid || cur.spec?.volumeName || cur.metadata.annotations?.[SELECTED_NODE_ANNOTATION]) return cur;
        cur.metadata.annotations = { ...(cur.metadata.annotations ?? {}), [SELECTED_NODE_ANNOTATION]: nodeName };
        return cur;
      });
    }
  },
};
