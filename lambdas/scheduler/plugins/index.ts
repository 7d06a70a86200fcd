// The default profile: the filters in kube-scheduler's default order (NodeReady, Skiff's own, right
// after NodeUnschedulable). The order matters for messages: a node is reported under the first filter
// that rejects it, as upstream stops at the first failing plugin.

import type { Profile } from '../framework.ts';
import { nodeReady, nodeUnschedulable } from './node-ready.ts';
import { nodeSelector } from './node-selector.ts';
import { nodePorts } from './node-ports.ts';
import { nodeResourcesFit, nodeResourcesLeastAllocated } from './node-resources.ts';
import { taintToleration } from './taint-toleration.ts';
import { selectorSpread } from './spread.ts';
import { volumeBinding } from './volume-binding.ts';

export const defaultProfile: Profile = {
  filters: [nodeUnschedulable, nodeReady, taintToleration, nodeSelector, nodePorts, nodeResourcesFit],
  scores: [nodeResourcesLeastAllocated, selectorSpread],
  // VolumeBinding reads the pod's claims first and writes the chosen node onto them before the bind.
  cycle: [volumeBinding],
};
