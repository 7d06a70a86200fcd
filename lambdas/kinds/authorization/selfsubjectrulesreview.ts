// SelfSubjectRulesReview (authorization.k8s.io/v1): everything I may do in a namespace, as the rule
// resolver (RBAC's) knows it; `kubectl auth can-i --list` asks it. Never stored. Costs what the
// resolver's RulesFor costs (RBAC: its bindings and roles, read as one authorization reads them).

import type { PolicyRule, RuleResolver } from '../../apiserver/auth.ts';
import { errors } from '../../machinery/status.ts';
import { isObject } from '../../machinery/types.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';
import { asObject, GROUP } from './review.ts';

/** kube's AlwaysAllow rule resolver: every verb on everything (the answer when every user may do all). */
export const allowAllRules: RuleResolver = {
  async rulesFor() {
    return { rules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }, { verbs: ['*'], nonResourceURLs: ['*'] }], incomplete: false };
  },
};

const list = (v: string[] | undefined) => (v?.length ? v : undefined);

export const selfSubjectRulesReview: KindStrategy = {
  info: resourceInfo(GROUP, 'v1', 'SelfSubjectRulesReview', 'selfsubjectrulesreviews', false, { verbs: ['create'] }),
  async create(raw, ctx) {
    const body = asObject(raw);
    const spec = isObject(body.spec) ? body.spec : {};
    const namespace = typeof spec.namespace === 'string' ? spec.namespace : '';
    if (!namespace) throw errors.badRequest('no namespace on request');
    let rules: PolicyRule[] = [];
    let incomplete = true;
    let evaluationError: string | undefined;
    if (!ctx.rules) {
      // An authorizer that cannot list its rules (kube's webhook authorizer): nothing known, incomplete.
      evaluationError = 'no rule resolver: the authorizer cannot list rules';
    } else {
      try {
        ({ rules, incomplete, evaluationError } = await ctx.rules.rulesFor(ctx.user, namespace));
      } catch (e) {
        evaluationError = e instanceof Error ? e.message : String(e);
      }
    }
    // A rule names resources, non-resource URLs, or (oddly) both: it goes to each list it names.
    const resourceRules = rules
      .filter((r) => r.resources?.length)
      .map((r) => ({ verbs: r.verbs, ...(list(r.apiGroups) ? { apiGroups: r.apiGroups } : {}), resources: r.resources, ...(list(r.resourceNames) ? { resourceNames: r.resourceNames } : {}) }));
    const nonResourceRules = rules.filter((r) => r.nonResourceURLs?.length).map((r) => ({ verbs: r.verbs, nonResourceURLs: r.nonResourceURLs }));
    return {
      kind: 'SelfSubjectRulesReview',
      apiVersion: `${GROUP}/v1`,
      metadata: { creationTimestamp: null },
      spec: {},
      status: { resourceRules, nonResourceRules, incomplete, ...(evaluationError ? { evaluationError } : {}) },
    };
  },
};
