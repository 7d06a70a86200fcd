// admissionregistration.k8s.io/v1 defaults and validation shared by its four kinds: kube's
// pkg/apis/admissionregistration/v1/defaults.go and pkg/apis/admissionregistration/validation/validation.go
// (messages verbatim). CEL expressions are compiled here, at create and update, so one that does not
// compile is refused with kube's "compilation failed: ERROR: <input>:..." text.

import { validateLabelSelector } from '../../machinery/metav1-validation.ts';
import { arr, dns1123SubdomainErrors, GoStruct, goQuote, obj, present, strOf, type ErrorList } from '../../machinery/validation.ts';
import { compileExpression, type ExpressionKind } from './cel.ts';

type Obj = Record<string, any>;

const OPERATIONS = ['*', 'CONNECT', 'CREATE', 'DELETE', 'UPDATE'];
const SCOPES = ['*', 'Cluster', 'Namespaced'];
const MATCH_POLICIES = ['Equivalent', 'Exact'];
const FAILURE_POLICIES = ['Fail', 'Ignore'];

// ---- defaults (SetDefaults_*) ----

function defaultRules(rules: unknown): void {
  for (const r of arr(rules)) if (r && typeof r === 'object' && !present(r.scope)) r.scope = '*';
}

/** SetDefaults_MatchResources. */
export function defaultMatchResources(m: Obj | undefined): void {
  if (!m || typeof m !== 'object') return;
  m.matchPolicy ??= 'Equivalent';
  m.namespaceSelector ??= {};
  m.objectSelector ??= {};
  defaultRules(m.resourceRules);
  defaultRules(m.excludeResourceRules);
}

/** SetDefaults_ValidatingWebhook / SetDefaults_MutatingWebhook (and the service port). */
export function defaultWebhook(w: Obj, mutating: boolean): void {
  w.failurePolicy ??= 'Fail';
  w.matchPolicy ??= 'Equivalent';
  w.namespaceSelector ??= {};
  w.objectSelector ??= {};
  w.timeoutSeconds ??= 10;
  if (mutating) w.reinvocationPolicy ??= 'Never';
  defaultRules(w.rules);
  const svc = w.clientConfig?.service;
  if (svc && typeof svc === 'object') svc.port ??= 443;
}

// ---- validation ----

function validateRule(errs: ErrorList, r: Obj, path: string, allowSubResources = true): void {
  if (!arr(r.operations).length) errs.required(`${path}.operations`, '');
  arr(r.operations).forEach((o, i) => {
    if (!OPERATIONS.includes(o)) errs.notSupported(`${path}.operations[${i}]`, o, OPERATIONS);
  });
  if (arr(r.operations).length > 1 && arr(r.operations).includes('*')) errs.invalid(`${path}.operations`, r.operations, "if '*' is present, must not specify other operations");
  for (const f of ['apiGroups', 'apiVersions'] as const) {
    if (!arr(r[f]).length) errs.required(`${path}.${f}`, '');
    if (arr(r[f]).length > 1 && arr(r[f]).includes('*')) errs.invalid(`${path}.${f}`, r[f], "if '*' is present, must not specify other API groups".replace('API groups', f === 'apiGroups' ? 'API groups' : 'API versions'));
  }
  arr(r.apiVersions).forEach((v, i) => {
    if (v === '') errs.required(`${path}.apiVersions[${i}]`, '');
  });
  if (!arr(r.resources).length) errs.required(`${path}.resources`, '');
  arr(r.resources).forEach((res, i) => {
    if (res === '') errs.required(`${path}.resources[${i}]`, '');
    if (!allowSubResources && String(res).includes('/')) errs.invalid(`${path}.resources[${i}]`, res, 'must not specify subresources');
  });
  if (present(r.scope) && !SCOPES.includes(r.scope)) errs.notSupported(`${path}.scope`, r.scope, SCOPES);
}

function validateMatchResources(errs: ErrorList, m: Obj, path: string): void {
  if (!present(m.matchPolicy)) errs.required(`${path}.matchPolicy`, '');
  else if (!MATCH_POLICIES.includes(m.matchPolicy)) errs.notSupported(`${path}.matchPolicy`, m.matchPolicy, MATCH_POLICIES);
  if (!present(m.namespaceSelector)) errs.required(`${path}.namespaceSelector`, '');
  else validateLabelSelector(errs, m.namespaceSelector, `${path}.namespaceSelector`);
  if (!present(m.objectSelector)) errs.required(`${path}.objectSelector`, '');
  else validateLabelSelector(errs, m.objectSelector, `${path}.objectSelector`);
  for (const f of ['resourceRules', 'excludeResourceRules'] as const) {
    arr(m[f]).forEach((r, i) => {
      const p = `${path}.${f}[${i}]`;
      validateRule(errs, obj(r), p);
      arr(obj(r).resourceNames).forEach((n, j) => {
        for (const msg of dns1123SubdomainErrors(String(n))) errs.invalid(`${p}.resourceNames[${j}]`, n, msg);
      });
    });
  }
}

/** A CEL field: required, and compiling to the wanted type (kube's validateCELCondition / validateValidation). */
function validateExpression(errs: ErrorList, expr: unknown, path: string, want: ExpressionKind, missing: string): void {
  if (!strOf(expr).trim()) {
    errs.required(path, missing);
    return;
  }
  const r = compileExpression(String(expr), want);
  if (r.error?.startsWith('compilation failed')) errs.invalid(path, expr, r.error);
  else if (r.error) errs.invalid(path, expr, r.error);
}

const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

function validateMatchConditions(errs: ErrorList, conds: unknown, path: string): void {
  const seen = new Set<string>();
  arr(conds).forEach((c, i) => {
    const p = `${path}[${i}]`;
    const name = strOf(c?.name);
    if (!name) errs.required(`${p}.name`, '');
    else if (!QUALIFIED_NAME.test(name) || name.length > 63) errs.invalid(`${p}.name`, name, "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')");
    else if (seen.has(name)) errs.duplicate(`${p}.name`, name);
    seen.add(name);
    validateExpression(errs, c?.expression, `${p}.expression`, 'bool', '');
  });
  if (arr(conds).length > 64) errs.tooMany(path, arr(conds).length, 64);
}

const REASONS = ['Forbidden', 'Invalid', 'RequestEntityTooLarge', 'Unauthorized'];

/** ValidateValidatingAdmissionPolicy's spec rules. */
export function validatePolicySpec(errs: ErrorList, o: Obj): void {
  const spec = obj(o.spec);
  const p = 'spec';
  if (present(spec.failurePolicy) && !FAILURE_POLICIES.includes(spec.failurePolicy)) errs.notSupported(`${p}.failurePolicy`, spec.failurePolicy, FAILURE_POLICIES);
  if (present(spec.paramKind)) {
    const pk = obj(spec.paramKind);
    if (!strOf(pk.apiVersion)) errs.required(`${p}.paramKind.apiVersion`, '');
    else if (strOf(pk.apiVersion).split('/').length > 2) errs.invalid(`${p}.paramKind.apiVersion`, pk.apiVersion, 'apiVersion must be in the format group/version or version');
    if (!strOf(pk.kind)) errs.required(`${p}.paramKind.kind`, '');
  }
  if (!present(spec.matchConstraints) || !arr(spec.matchConstraints.resourceRules).length) errs.required(`${p}.matchConstraints.resourceRules`, '');
  if (present(spec.matchConstraints)) validateMatchResources(errs, obj(spec.matchConstraints), `${p}.matchConstraints`);
  if (!arr(spec.validations).length && !arr(spec.auditAnnotations).length) errs.required(`${p}.validations`, 'validations or auditAnnotations must contain at least one item');
  validateMatchConditions(errs, spec.matchConditions, `${p}.matchConditions`);
  const varNames = new Set<string>();
  arr(spec.variables).forEach((v, i) => {
    const vp = `${p}.variables[${i}]`;
    const name = strOf(v?.name);
    if (!name) errs.required(`${vp}.name`, 'name is not specified');
    else if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) errs.invalid(`${vp}.name`, name, 'name is not a valid CEL identifier');
    else if (varNames.has(name)) errs.duplicate(`${vp}.name`, name);
    varNames.add(name);
    validateExpression(errs, v?.expression, `${vp}.expression`, 'any', 'expression is not specified');
  });
  arr(spec.validations).forEach((v, i) => {
    const vp = `${p}.validations[${i}]`;
    validateExpression(errs, v?.expression, `${vp}.expression`, 'bool', 'expression is not specified');
    if (strOf(v?.message) && /[\r\n]/.test(v.message)) errs.invalid(`${vp}.message`, v.message, 'message must not contain line breaks');
    else if (present(v?.message) && !strOf(v.message).trim()) errs.invalid(`${vp}.message`, v.message, 'message must be non-empty if specified');
    if (strOf(v?.messageExpression)) validateExpression(errs, v.messageExpression, `${vp}.messageExpression`, 'string', '');
    if (present(v?.reason) && !REASONS.includes(v.reason)) errs.notSupported(`${vp}.reason`, v.reason, REASONS);
  });
}

const ACTIONS = ['Audit', 'Deny', 'Warn'];

/** ValidateValidatingAdmissionPolicyBinding's spec rules. */
export function validateBindingSpec(errs: ErrorList, o: Obj): void {
  const spec = obj(o.spec);
  if (!strOf(spec.policyName)) errs.required('spec.policyName', '');
  else for (const m of dns1123SubdomainErrors(spec.policyName)) errs.invalid('spec.policyName', spec.policyName, m);
  if (present(spec.matchResources)) validateMatchResources(errs, obj(spec.matchResources), 'spec.matchResources');
  if (present(spec.paramRef)) {
    const pr = obj(spec.paramRef);
    if (present(pr.name) && present(pr.selector)) errs.forbidden('spec.paramRef.name', 'name and selector are mutually exclusive');
    else if (!present(pr.name) && !present(pr.selector)) errs.required('spec.paramRef', 'one of name or selector must be specified');
    if (present(pr.selector)) validateLabelSelector(errs, pr.selector, 'spec.paramRef.selector');
    if (!present(pr.parameterNotFoundAction)) errs.required('spec.paramRef.parameterNotFoundAction', '');
    else if (!['Allow', 'Deny'].includes(pr.parameterNotFoundAction)) errs.notSupported('spec.paramRef.parameterNotFoundAction', pr.parameterNotFoundAction, ['Allow', 'Deny']);
  }
  const actions = arr(spec.validationActions);
  if (!actions.length) errs.required('spec.validationActions', 'at least one validation action is required');
  const seen = new Set<string>();
  actions.forEach((a, i) => {
    if (seen.has(a)) errs.duplicate(`spec.validationActions[${i}]`, a);
    seen.add(a);
    if (!ACTIONS.includes(a)) errs.notSupported(`spec.validationActions[${i}]`, a, ACTIONS);
  });
  if (seen.has('Deny') && seen.has('Warn')) {
    // kube prints the internal slice with %#v.
    const goValue = new GoStruct(`[]admissionregistration.ValidationAction{${actions.map((a) => goQuote(String(a))).join(', ')}}`);
    errs.invalid('spec.validationActions', goValue, 'must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)');
  }
}

const SIDE_EFFECTS = ['None', 'NoneOnDryRun'];

/** ValidateValidatingWebhookConfiguration / ValidateMutatingWebhookConfiguration. */
export function validateWebhooks(errs: ErrorList, o: Obj, mutating: boolean): void {
  const names = new Set<string>();
  arr(o.webhooks).forEach((w, i) => {
    const p = `webhooks[${i}]`;
    const name = strOf(w?.name);
    if (!name) errs.required(`${p}.name`, '');
    else {
      for (const m of dns1123SubdomainErrors(name)) errs.invalid(`${p}.name`, name, m);
      if (name.split('.').length < 3) errs.invalid(`${p}.name`, name, 'should be a domain with at least three segments separated by dots');
      if (names.has(name)) errs.duplicate(`${p}.name`, name);
    }
    names.add(name);
    arr(w?.rules).forEach((r, j) => validateRule(errs, obj(r), `${p}.rules[${j}]`));
    if (present(w?.failurePolicy) && !FAILURE_POLICIES.includes(w.failurePolicy)) errs.notSupported(`${p}.failurePolicy`, w.failurePolicy, FAILURE_POLICIES);
    if (present(w?.matchPolicy) && !MATCH_POLICIES.includes(w.matchPolicy)) errs.notSupported(`${p}.matchPolicy`, w.matchPolicy, MATCH_POLICIES);
    if (!present(w?.sideEffects)) errs.required(`${p}.sideEffects`, `must specify one of ${SIDE_EFFECTS.map((s) => JSON.stringify(s)).join(', ')}`);
    else if (!SIDE_EFFECTS.includes(w.sideEffects)) errs.notSupported(`${p}.sideEffects`, w.sideEffects, SIDE_EFFECTS);
    if (!arr(w?.admissionReviewVersions).length) errs.required(`${p}.admissionReviewVersions`, 'must specify one of v1, v1beta1');
    else if (!arr(w.admissionReviewVersions).some((v) => v === 'v1' || v === 'v1beta1')) {
      errs.invalid(`${p}.admissionReviewVersions`, w.admissionReviewVersions, 'must include at least one of v1, v1beta1');
    }
    if (present(w?.timeoutSeconds) && !(w.timeoutSeconds >= 1 && w.timeoutSeconds <= 30)) {
      errs.invalid(`${p}.timeoutSeconds`, w.timeoutSeconds, 'the timeout value must be between 1 and 30 seconds');
    }
    if (present(w?.namespaceSelector)) validateLabelSelector(errs, w.namespaceSelector, `${p}.namespaceSelector`);
    if (present(w?.objectSelector)) validateLabelSelector(errs, w.objectSelector, `${p}.objectSelector`);
    if (mutating && present(w?.reinvocationPolicy) && !['IfNeeded', 'Never'].includes(w.reinvocationPolicy)) {
      errs.notSupported(`${p}.reinvocationPolicy`, w.reinvocationPolicy, ['IfNeeded', 'Never']);
    }
    validateClientConfig(errs, obj(w?.clientConfig), `${p}.clientConfig`);
    validateMatchConditions(errs, w?.matchConditions, `${p}.matchConditions`);
  });
}

function validateClientConfig(errs: ErrorList, cc: Obj, path: string): void {
  const hasURL = present(cc.url);
  const hasSvc = present(cc.service);
  if (hasURL === hasSvc) {
    errs.required(path, 'exactly one of url or service is required');
    return;
  }
  if (hasURL) {
    let u: URL | undefined;
    try {
      u = new URL(String(cc.url));
    } catch {
      errs.invalid(`${path}.url`, cc.url, 'host must be specified');
      return;
    }
    if (u.protocol !== 'https:') errs.invalid(`${path}.url`, cc.url, "'https' is the only allowed URL scheme")
    else if (!u.hostname) errs.invalid(`${path}.url`, cc.url, 'host must be specified');
    if (u.username || u.password) errs.invalid(`${path}.url`, cc.url, 'user information is not permitted in the URL');
    if (u.hash) errs.invalid(`${path}.url`, cc.url, 'fragments are not permitted in the URL');
    if (u.search) errs.invalid(`${path}.url`, cc.url, 'query parameters are not permitted in the URL');
  } else {
    const s = obj(cc.service);
    if (!strOf(s.name)) errs.required(`${path}.service.name`, 'service name is required');
    if (!strOf(s.namespace)) errs.required(`${path}.service.namespace`, 'service namespace is required');
    if (present(s.path) && !String(s.path).startsWith('/')) errs.invalid(`${path}.service.path`, s.path, "must start with a '/'");
    if (present(s.port) && !(Number.isInteger(s.port) && s.port >= 1 && s.port <= 65535)) errs.invalid(`${path}.service.port`, s.port, 'port is not valid: must be between 1 and 65535, inclusive');
  }
  if (present(cc.caBundle)) {
    try {
      const pem = Buffer.from(String(cc.caBundle), 'base64').toString('utf8');
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error();
    } catch {
      errs.invalid(`${path}.caBundle`, cc.caBundle, 'must be a base64-encoded PEM certificate bundle');
    }
  }
}
