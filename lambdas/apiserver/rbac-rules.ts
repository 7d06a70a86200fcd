// What one RBAC PolicyRule allows, and whether some rules cover others: kube's
// plugin/pkg/auth/authorizer/rbac/rbac.go (RuleAllows), pkg/apis/rbac/v1/evaluation_helpers.go (the
// matchers, CompactString) and pkg/registry/rbac/validation (Covers, BreakdownRule, CompactRules), with
// the same semantics: '*' for verbs, groups and resources, "pods/log" and "*/scale" subresource forms,
// resourceNames (never matching a request that names no object), nonResourceURLs with a trailing '*'.

import { goQuote, jsonEqual } from '../machinery/validation.ts';
import { labelSelectorFromMetav1, type MetaLabelSelector } from '../machinery/selectors.ts';
import type { KubeObject } from '../machinery/types.ts';
import type { PolicyRule, RequestAttributes } from './auth.ts';

const ALL = '*';

const has = (set: readonly string[] | undefined, x: string) => !!set && set.includes(x);
const hasAll = (set: readonly string[] | undefined, xs: readonly string[] | undefined) => (xs ?? []).every((x) => has(set, x));

export function verbMatches(rule: PolicyRule, verb: string): boolean {
  return has(rule.verbs, ALL) || has(rule.verbs, verb);
}

export function apiGroupMatches(rule: PolicyRule, group: string): boolean {
  return has(rule.apiGroups, ALL) || has(rule.apiGroups, group);
}

/** `combined` is "resource" or "resource/subresource"; "*\/sub" matches that subresource of any resource. */
export function resourceMatches(rule: PolicyRule, combined: string, subresource: string | undefined): boolean {
  for (const r of rule.resources ?? []) {
    if (r === ALL || r === combined) return true;
    if (!subresource) continue;
    if (r.length === subresource.length + 2 && r.startsWith('*/') && r.endsWith(subresource)) return true;
  }
  return false;
}

export function resourceNameMatches(rule: PolicyRule, name: string | undefined): boolean {
  if (!rule.resourceNames?.length) return true;
  return has(rule.resourceNames, name ?? '');
}

export function nonResourceURLMatches(rule: PolicyRule, path: string): boolean {
  for (const u of rule.nonResourceURLs ?? []) {
    if (u === ALL || u === path) return true;
    if (u.endsWith(ALL) && path.startsWith(u.replace(/\*+$/, ''))) return true;
  }
  return false;
}

/** RuleAllows: does this one rule allow the request? */
export function ruleAllows(a: Omit<RequestAttributes, 'user'>, rule: PolicyRule): boolean {
  if (a.resourceRequest) {
    const combined = a.subresource ? `${a.resource}/${a.subresource}` : (a.resource ?? '');
    return verbMatches(rule, a.verb) && apiGroupMatches(rule, a.group ?? '') && resourceMatches(rule, combined, a.subresource) && resourceNameMatches(rule, a.name);
  }
  return verbMatches(rule, a.verb) && nonResourceURLMatches(rule, a.path);
}

/** BreakdownRule: one rule per group × resource × verb (× resourceName), and per URL × verb. */
export function breakdownRule(rule: PolicyRule): PolicyRule[] {
  const out: PolicyRule[] = [];
  for (const group of rule.apiGroups ?? []) {
    for (const resource of rule.resources ?? []) {
      for (const verb of rule.verbs ?? []) {
        if (rule.resourceNames?.length) {
          for (const n of rule.resourceNames) out.push({ apiGroups: [group], resources: [resource], verbs: [verb], resourceNames: [n] });
        } else out.push({ apiGroups: [group], resources: [resource], verbs: [verb] });
      }
    }
  }
  for (const url of rule.nonResourceURLs ?? []) for (const verb of rule.verbs ?? []) out.push({ nonResourceURLs: [url], verbs: [verb] });
  return out;
}

function resourceCoversAll(set: readonly string[] | undefined, covers: readonly string[] | undefined): boolean {
  if (has(set, ALL) || hasAll(set, covers)) return true;
  for (const path of covers ?? []) {
    if (has(set, path)) continue;
    const slash = path.indexOf('/');
    if (slash < 0) return false;
    if (!has(set, `*/${path.slice(slash + 1)}`)) return false;
  }
  return true;
}

function nonResourceURLCovers(owner: string, sub: string): boolean {
  return owner === sub || (owner.endsWith(ALL) && sub.startsWith(owner.replace(/\*+$/, '')));
}

function ruleCovers(owner: PolicyRule, sub: PolicyRule): boolean {
  const verbs = has(owner.verbs, ALL) || hasAll(owner.verbs, sub.verbs);
  const groups = has(owner.apiGroups, ALL) || hasAll(owner.apiGroups, sub.apiGroups);
  const resources = resourceCoversAll(owner.resources, sub.resources);
  const urls = (sub.nonResourceURLs ?? []).every((p) => (owner.nonResourceURLs ?? []).some((o) => nonResourceURLCovers(o, p)));
  const names = !sub.resourceNames?.length ? !owner.resourceNames?.length : !owner.resourceNames?.length || hasAll(owner.resourceNames, sub.resourceNames);
  return verbs && groups && resources && names && urls;
}

/** Covers: whether `owner` rules hold every permission of `servant`; the atomic rules they do not. */
export function covers(owner: readonly PolicyRule[], servant: readonly PolicyRule[]): { covered: boolean; missing: PolicyRule[] } {
  const missing = servant.flatMap(breakdownRule).filter((sub) => !owner.some((o) => ruleCovers(o, sub)));
  return { covered: missing.length === 0, missing };
}

/** CompactRules: rules of one group and one resource (and at most one name) merge their verbs. */
export function compactRules(rules: readonly PolicyRule[]): PolicyRule[] {
  const out: PolicyRule[] = [];
  const simple = new Map<string, PolicyRule>();
  for (const r of rules) {
    const isSimple = (r.resourceNames?.length ?? 0) <= 1 && !r.nonResourceURLs?.length && r.apiGroups?.length === 1 && r.resources?.length === 1;
    if (!isSimple) {
      out.push(r);
      continue;
    }
    const key = JSON.stringify([r.apiGroups![0], r.resources![0], r.resourceNames?.[0] ?? null]);
    const seen = simple.get(key);
    if (seen) seen.verbs = [...seen.verbs, ...r.verbs];
    else simple.set(key, { ...r, verbs: [...r.verbs] });
  }
  return [...out, ...simple.values()];
}

const goStrings = (xs: readonly string[]) => `[${xs.map(goQuote).join(' ')}]`;

/** CompactString: `{APIGroups:[""], Resources:["pods"], Verbs:["get" "list"]}`, as 403 messages print a rule. */
export function compactString(r: PolicyRule): string {
  const parts: string[] = [];
  if (r.apiGroups?.length) parts.push(`APIGroups:${goStrings(r.apiGroups)}`);
  if (r.resources?.length) parts.push(`Resources:${goStrings(r.resources)}`);
  if (r.nonResourceURLs?.length) parts.push(`NonResourceURLs:${goStrings(r.nonResourceURLs)}`);
  if (r.resourceNames?.length) parts.push(`ResourceNames:${goStrings(r.resourceNames)}`);
  if (r.verbs?.length) parts.push(`Verbs:${goStrings(r.verbs)}`);
  return `{${parts.join(', ')}}`;
}

export { goStrings };

/** The rules an aggregated ClusterRole should hold: those of the roles its selectors match, by name, each rule once. */
export function aggregatedRules(role: KubeObject, all: readonly KubeObject[]): unknown[] {
  const selectors = ((role.aggregationRule?.clusterRoleSelectors ?? []) as MetaLabelSelector[]).map((s) => labelSelectorFromMetav1(s));
  const sources = all
    .filter((r) => r.metadata.name !== role.metadata.name && selectors.some((s) => s.matches(r.metadata.labels ?? {})))
    .sort((a, b) => (a.metadata.name! < b.metadata.name! ? -1 : a.metadata.name! > b.metadata.name! ? 1 : 0));
  const rules: unknown[] = [];
  for (const src of sources) for (const r of src.rules ?? []) if (!rules.some((x) => jsonEqual(x, r))) rules.push(r);
  return rules;
}

/**
 * The ClusterRoles with every aggregated one's rules gathered. Aggregated roles gather each other ("edit"
 * gathers "view", itself aggregated), so passes repeat over the updated set until nothing changes; each
 * pass changes at least one role, so there are at most as many passes as aggregated roles.
 */
export function aggregateRoles(roles: readonly KubeObject[]): KubeObject[] {
  const all = [...roles];
  const aggregated = all.filter((r) => r.aggregationRule).length;
  for (let pass = 0, changed = true; changed && pass <= aggregated; pass++) {
    changed = false;
    for (const [i, role] of all.entries()) {
      if (!role.aggregationRule) continue;
      const rules = aggregatedRules(role, all);
      if (jsonEqual(role.rules ?? [], rules)) continue;
      all[i] = { ...role, rules };
      changed = true;
    }
  }
  return all;
}
