// What the Pod Security Standards' checks share (kube's pod-security-admission/policy: checks.go,
// visitor.go, helpers.go): a check looks at a pod's metadata and spec and allows it or says why not,
// as a reason ("host namespaces") and an optional detail ("hostNetwork=true").

import { goQuote } from '../../machinery/validation.ts';

type Obj = Record<string, any>;

export interface CheckResult {
  allowed: boolean;
  forbiddenReason?: string;
  forbiddenDetail?: string;
}

/** A check: kube's CheckPodFn, on the plain JSON of the pod's (or template's) metadata and spec. */
export type CheckPod = (meta: Obj, spec: Obj) => CheckResult;

export const ALLOWED: CheckResult = { allowed: true };

export function forbid(reason: string, detail = ''): CheckResult {
  return { allowed: false, forbiddenReason: reason, forbiddenDetail: detail };
}

/** visitContainers: init containers, then containers, then ephemeral containers. */
export function visitContainers(spec: Obj, fn: (c: Obj) => void): void {
  for (const key of ['initContainers', 'containers', 'ephemeralContainers']) {
    const list = spec?.[key];
    if (Array.isArray(list)) for (const c of list) if (c && typeof c === 'object') fn(c);
  }
}

export function pluralize(singular: string, plural: string, n: number): string {
  return n === 1 ? singular : plural;
}

/** joinQuote: each item %q-quoted, joined by ", ". */
export function joinQuote(items: string[]): string {
  return items.map((s) => goQuote(s)).join(', ');
}

/** sets.NewString(...).List(): unique and sorted. */
export function sortedSet(items: Iterable<string>): string[] {
  return [...new Set(items)].sort();
}

/** "container" or "containers", then the quoted names. */
export function containersPhrase(names: string[]): string {
  return `${pluralize('container', 'containers', names.length)} ${joinQuote(names)}`;
}

export const sc = (o: Obj | undefined): Obj | undefined =>
  o && typeof o.securityContext === 'object' && o.securityContext !== null ? o.securityContext : undefined;
