// DefaultTolerationSeconds, as in kube-apiserver: every new pod that does not say how long it tolerates
// a not-ready or unreachable node gets a NoExecute toleration of each for `seconds` (300 by default),
// so the node lifecycle controller evicts it five minutes after its node is lost, not at once.

import type { AdmissionPlugin } from './admission.ts';

const NOT_READY = 'node.kubernetes.io/not-ready';
const UNREACHABLE = 'node.kubernetes.io/unreachable';

export function defaultTolerationSeconds(seconds = 300): AdmissionPlugin {
  return {
    name: 'DefaultTolerationSeconds',
    async admit(req) {
      if (req.operation !== 'CREATE' || req.subresource || req.resource.group !== '' || req.resource.resource !== 'pods') return;
      const pod = req.object;
      if (!pod || typeof pod !== 'object') return;
      const spec = (pod.spec ??= {}) as Record<string, any>;
      const tolerations: any[] = Array.isArray(spec.tolerations) ? spec.tolerations : [];
      // A pod already tolerating the key with NoExecute (or every effect) keeps its own toleration.
      const has = (key: string) =>
        tolerations.some((t) => (t.key === key || (t.operator === 'Exists' && !t.key)) && (!t.effect || t.effect === 'NoExecute'));
      const add: any[] = [];
      if (!has(NOT_READY)) add.push({ key: NOT_READY, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: seconds });
      if (!has(UNREACHABLE)) add.push({ key: UNREACHABLE, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: seconds });
      if (add.length) spec.tolerations = [...tolerations, ...add];
    },
  };
}
