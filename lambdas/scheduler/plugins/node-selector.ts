// NodeSelector / NodeAffinity (required part): spec.nodeSelector must be a subset of the node's labels,
// and spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution must match: its
// nodeSelectorTerms are ORed, the requirements inside a term ANDed, and a term with no requirements (or
// a list with no terms) matches nothing, as in k8s.io/component-helpers' nodeaffinity.
// Operators: In, NotIn, Exists, DoesNotExist, Gt, Lt on labels; matchFields supports metadata.name.

import type { KubeObject } from '../../machinery/types.ts';
import { fail, OK, type FilterPlugin } from '../framework.ts';

interface Requirement {
  key: string;
  operator: string;
  values?: string[];
}

function matchRequirement(r: Requirement, value: string | undefined): boolean {
  const vals = r.values ?? [];
  switch (r.operator) {
    case 'In':
      return value !== undefined && vals.includes(value);
    case 'NotIn':
      return value === undefined || !vals.includes(value);
    case 'Exists':
      return value !== undefined;
    case 'DoesNotExist':
      return value === undefined;
    case 'Gt':
    case 'Lt': {
      if (value === undefined || vals.length !== 1 || !/^-?\d+$/.test(value) || !/^-?\d+$/.test(vals[0]!)) return false;
      return r.operator === 'Gt' ? BigInt(value) > BigInt(vals[0]!) : BigInt(value) < BigInt(vals[0]!);
    }
    default:
      return false;
  }
}

function matchTerm(term: any, node: KubeObject): boolean {
  const exprs: Requirement[] = term?.matchExpressions ?? [];
  const fields: Requirement[] = term?.matchFields ?? [];
  if (!exprs.length && !fields.length) return false;
  const labels = node.metadata.labels ?? {};
  for (const r of exprs) if (!matchRequirement(r, Object.hasOwn(labels, r.key) ? labels[r.key] : undefined)) return false;
  for (const r of fields) {
    if (r.key !== 'metadata.name') return false;
    if (!matchRequirement(r, node.metadata.name)) return false;
  }
  return true;
}

export function matchesNodeSelector(pod: KubeObject, node: KubeObject): boolean {
  const labels = node.metadata.labels ?? {};
  for (const [k, v] of Object.entries((pod.spec?.nodeSelector ?? {}) as Record<string, string>)) {
    if (labels[k] !== v) return false;
  }
  const required = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (required) {
    const terms: unknown[] = required.nodeSelectorTerms ?? [];
    if (!terms.some((t) => matchTerm(t, node))) return false;
  }
  return true;
}

export const nodeSelector: FilterPlugin = {
  name: 'NodeAffinity',
  filter(pod, _res, info) {
    return matchesNodeSelector(pod, info.node) ? OK : fail("node(s) didn't match Pod's node affinity/selector");
  },
};
