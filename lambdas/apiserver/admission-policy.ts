// ValidatingAdmissionPolicy admission (k8s.io/apiserver/pkg/admission/plugin/policy/validating: dispatcher.go,
// validator.go): each ValidatingAdmissionPolicyBinding applies its policy, with the parameters it names, to
// the writes both match; a validation whose CEL expression is not true fails, and the binding's
// validationActions decide what that does: Deny refuses the write with kube's words, Warn adds a Warning
// header, Audit is accepted and does nothing yet (no audit log exists to annotate).
//
// Expressions see object, oldObject, request, params, namespaceObject, variables and authorizer (kinds/
// admissionregistration/cel.ts; an authorizer check asks the server's authorizer chain). Expressions are compiled
// once per policy version (uid and resourceVersion) per instance.
//
// Storage cost per write, beyond admission-match.ts's cached configuration lists (two kinds here): for each
// matching binding with a paramRef, one get (by name) or one list (by selector) of its params; the stored
// object (UPDATE, DELETE) and the namespace only when an expression names oldObject or namespaceObject
// (once per request); nothing when no policy matches.

import { findKind } from '../kinds/index.ts';
import { compileExpression, evaluate, activation, newBudget, type Program } from '../kinds/admissionregistration/cel.ts';
import { labelSelectorFromMetav1 } from '../machinery/selectors.ts';
import { ApiError, qualifiedResource, type StatusReason } from '../machinery/status.ts';
import type { KubeObject } from '../machinery/types.ts';
import type { AdmissionPlugin, AdmissionRequest } from './admission.ts';
import {
  admissionConfigs,
  exempt,
  matchResourcesMatch,
  nameOf,
  namespaceOf,
  noteConfigWrite,
  oldObjectOf,
  reviewRequest,
  authorizerFor,
} from './admission-match.ts';
import type { Registry } from './registry.ts';

type Obj = Record<string, any>;

interface Compiled {
  expr: string;
  program?: Program;
  error?: string;
}

interface CompiledPolicy {
  version: string;
  /** Whether any expression names oldObject / namespaceObject: only then are they read (one get each). */
  usesOld: boolean;
  usesNamespace: boolean;
  matchConditions: (Compiled & { name: string })[];
  variables: (Compiled & { name: string })[];
  validations: (Compiled & { v: Obj; message?: Compiled })[];
}

const compiledPolicies = new Map<string, CompiledPolicy>();

function compile(expr: unknown, want: 'bool' | 'string' | 'any'): Compiled {
  const e = String(expr ?? '');
  const r = compileExpression(e, want);
  return { expr: e, program: r.program, error: r.error };
}

/** The policy's expressions, compiled once per version of it. */
function compiledPolicy(policy: KubeObject): CompiledPolicy {
  const uid = policy.metadata.uid ?? policy.metadata.name!;
  const version = policy.metadata.resourceVersion ?? '';
  const hit = compiledPolicies.get(uid);
  if (hit && hit.version === version) return hit;
  const spec = policy.spec ?? {};
  const exprs = JSON.stringify([spec.matchConditions, spec.variables, spec.validations]);
  const c: CompiledPolicy = {
    version,
    usesOld: exprs.includes('oldObject'),
    usesNamespace: exprs.includes('namespaceObject'),
    matchConditions: (spec.matchConditions ?? []).map((m: Obj) => ({ name: String(m.name), ...compile(m.expression, 'bool') })),
    variables: (spec.variables ?? []).map((v: Obj) => ({ name: String(v.name), ...compile(v.expression, 'any') })),
    validations: (spec.validations ?? []).map((v: Obj) => ({ v, ...compile(v.expression, 'bool'), ...(v.messageExpression ? { message: compile(v.messageExpression, 'string') } : {}) })),
  };
  if (compiledPolicies.size > 500) compiledPolicies.clear();
  compiledPolicies.set(uid, c);
  return c;
}

/** One failed validation: what it says and which status reason it carries. */
interface Decision {
  message: string;
  reason?: StatusReason;
  /** A configuration or evaluation error: subject to failurePolicy, and always denies under Fail. */
  error?: boolean;
}

const VAP = 'validatingadmissionpolicies';
const BINDINGS = 'validatingadmissionpolicybindings';

/** kube's reasonToCode for the reasons a validation may name. */
const REASON_CODES: Partial<Record<StatusReason, number>> = { Forbidden: 403, Unauthorized: 401, RequestEntityTooLarge: 413, Invalid: 422 };

export const validatingAdmissionPolicy: AdmissionPlugin = {
  name: 'ValidatingAdmissionPolicy',
  async admit(req, registry) {
    noteConfigWrite(req, registry);
    if (exempt(req) || req.operation === 'CONNECT') return;
    const [policies, bindings] = await Promise.all([admissionConfigs(registry, VAP), admissionConfigs(registry, BINDINGS)]);
    if (!bindings.length) return;
    let denied: { policy: string; binding: string; d: Decision } | undefined;
    // kube dispatches policy by policy (sorted by name), each with its bindings.
    for (const policy of [...policies].sort((a, b) => (a.metadata.name! < b.metadata.name! ? -1 : 1))) {
      if (!(await matchResourcesMatch(policy.spec?.matchConstraints, req, registry))) continue;
      const failurePolicy = policy.spec?.failurePolicy ?? 'Fail';
      const mine = bindings.filter((b) => b.spec?.policyName === policy.metadata.name).sort((a, b) => (a.metadata.name! < b.metadata.name! ? -1 : 1));
      for (const binding of mine) {
        if (binding.spec?.matchResources && !(await matchResourcesMatch(binding.spec.matchResources, req, registry))) continue;
        const decisions = await applyBinding(req, registry, policy, binding);
        for (const d of decisions) {
          if (d.error) {
            if (failurePolicy === 'Ignore') continue;
            denied ??= { policy: policy.metadata.name!, binding: binding.metadata.name!, d };
            continue;
          }
          const actions: string[] = binding.spec?.validationActions ?? [];
          if (actions.includes('Deny')) denied ??= { policy: policy.metadata.name!, binding: binding.metadata.name!, d };
          if (actions.includes('Warn')) {
            req.warnings?.push(`Validation failed for ValidatingAdmissionPolicy '${policy.metadata.name}' with binding '${binding.metadata.name}': ${d.message}`);
          }
          // Audit: kube annotates the audit event (validation.policy.admission.k8s.io/validation_failure);
          // Skiff has no audit log to annotate yet, so an Audit-only failure admits the write.
        }
      }
    }
    if (denied) throw policyDenial(req, denied.policy, denied.binding, denied.d);
  },
};

/** admission.NewForbidden with the validation's reason and code (dispatcher.go's last step). */
function policyDenial(req: AdmissionRequest, policy: string, binding: string, d: Decision): ApiError {
  const message = `ValidatingAdmissionPolicy '${policy}' with binding '${binding}' denied request: ${d.message}`;
  const name = nameOf(req);
  const gr = qualifiedResource(req.resource.resource, req.resource.group);
  const full = name ? `${gr} "${name}" is forbidden: ${message}` : `${gr} is forbidden: ${message}`;
  const reason: StatusReason = d.reason ?? 'Invalid';
  return new ApiError(reason, full, { name, ...(req.resource.group ? { group: req.resource.group } : {}), kind: req.resource.resource, causes: [{ message }] }, REASON_CODES[reason] ?? 422);
}

/** The params a binding names (CollectParams): [undefined] when the policy takes none; [] when none are found and that is allowed. */
async function collectParams(req: AdmissionRequest, registry: Registry, policy: KubeObject, binding: KubeObject): Promise<(KubeObject | undefined)[]> {
  const paramKind = policy.spec?.paramKind;
  if (!paramKind) return [undefined];
  const ref = binding.spec?.paramRef;
  const gvk = `${paramKind.apiVersion}, Kind=${paramKind.kind}`;
  if (!ref) throw new Error(`paramKind kind \`${gvk}\` is set but paramRef is not set`);
  // Built-in kinds only: custom resources are served per apiserver, and a plugin sees only the store.
  const res = findKind(String(paramKind.apiVersion), String(paramKind.kind));
  if (!res) throw new Error(`paramKind kind \`${gvk}\` not known`);
  let namespace: string | undefined;
  if (res.namespaced) {
    namespace = ref.namespace || req.namespace;
    if (!namespace) throw new Error('cannot use namespaced paramRef in policy binding that matches cluster-scoped resources');
  }
  let params: KubeObject[];
  if (ref.name) {
    try {
      params = [await registry.get(res, namespace, ref.name)];
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 404)) throw e;
      params = [];
    }
  } else {
    params = (await registry.list(res, namespace, { labelSelector: labelSelectorFromMetav1(ref.selector ?? {}) })).items;
  }
  if (!params.length && ref.parameterNotFoundAction === 'Deny') throw new Error('no params found for policy binding with `Deny` parameterNotFoundAction');
  return params;
}

/** Every failed validation of one binding, over each of its params (validator.go). */
async function applyBinding(req: AdmissionRequest, registry: Registry, policy: KubeObject, binding: KubeObject): Promise<Decision[]> {
  let params: (KubeObject | undefined)[];
  try {
    params = await collectParams(req, registry, policy, binding);
  } catch (e) {
    if (e instanceof ApiError) throw e;
    return [{ message: `failed to configure binding: ${(e as Error).message}`, error: true }];
  }
  if (!params.length) return [];
  const c = compiledPolicy(policy);
  const broken = [...c.matchConditions, ...c.variables, ...c.validations].find((x) => x.error);
  if (broken) return [{ message: `failed to configure policy: ${broken.error}`, error: true }];
  const oldObject = req.operation === 'CREATE' || !c.usesOld ? undefined : await oldObjectOf(req, registry);
  const namespaceObject = c.usesNamespace ? await namespaceOf(req, registry) : undefined;
  const request = reviewRequest(req, undefined);
  const out: Decision[] = [];
  for (const param of params) {
    const budget = newBudget();
    const act = activation({ object: req.operation === 'DELETE' ? null : req.object, oldObject, request, params: param ?? null, namespaceObject: namespaceObject ?? null }, budget);
    act.authorizer = authorizerFor(req, budget);
    const variables: Record<string, unknown> = {};
    act.variables = variables;
    // matchConditions: any false skips the binding; an error counts only when none is false.
    let skip = false;
    let condError: string | undefined;
    for (const m of c.matchConditions) {
      try {
        if ((await evaluate(m.program!, act, budget)) !== true) skip = true;
      } catch (e) {
        condError ??= `failed to evaluate match condition '${m.name}': ${(e as Error).message}`;
      }
    }
    if (skip) continue;
    if (condError) {
      out.push({ message: condError, error: true });
      continue;
    }
    // Variables in order; one that fails is absent, so an expression using it fails in turn.
    for (const v of c.variables) {
      try {
        variables[v.name] = await evaluate(v.program!, act, budget);
      } catch {
        // kube evaluates variables lazily and reports the error where one is used.
      }
    }
    for (const val of c.validations) {
      let ok: unknown;
      try {
        ok = await evaluate(val.program!, act, budget);
      } catch (e) {
        out.push({ message: `expression '${val.expr}' resulted in error: ${(e as Error).message}`, error: true });
        continue;
      }
      if (ok === true) continue;
      out.push({ message: await failureMessage(val, act, budget), reason: val.v.reason });
    }
  }
  return out;
}

/** messageExpression's result, else message, else "failed expression: <expression>" (validator.go). */
async function failureMessage(val: CompiledPolicy['validations'][number], act: Record<string, unknown>, budget: ReturnType<typeof newBudget>): Promise<string> {
  if (val.message?.program) {
    try {
      const m = await evaluate(val.message.program, act, budget);
      if (typeof m === 'string' && m.trim() && !m.includes('\n') && m.trim().length <= 5 * 1024) return m.trim();
    } catch {
      // kube logs a failing messageExpression and falls back.
    }
  }
  if (typeof val.v.message === 'string' && val.v.message.trim()) return val.v.message.trim();
  return `failed expression: ${val.expr.trim()}`;
}
