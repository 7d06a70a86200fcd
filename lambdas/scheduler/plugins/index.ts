// The default profile: the filters in kube-scheduler's order (cheap node checks first), then the scores.

import type { Profile } from '../framework.ts';
import { nodeReady, nodeUnschedulable } from './node-ready.ts';
import { nodeSelector } from './node-selector.ts';
import { nodePorts } from './node-ports.ts';
import { nodeResourcesFit, nodeResourcesLeastAllocated } from './node-resources.ts';
import { taintToleration } from './taint-toleration.ts';
import { selectorSpread } from './spread.ts';

export const defaultProfile: Profile = {
  filters: [nodeUnschedulable, nodeReady, nodeSelector, nodePorts, nodeResourcesFit, taintToleration],
  scores: [nodeResourcesLeastAllocated, selectorSpread],
};
