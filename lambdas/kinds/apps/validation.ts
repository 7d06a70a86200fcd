// What the apps/v1 kinds share, as pkg/apis/apps/validation and pkg/apis/apps/v1/defaults.go share it:
// int-or-percent fields (maxSurge, maxUnavailable; policy's PodDisruptionBudget uses them too, as kube's
// policy validation imports apps validation), the selector every workload must have and its pod template
// must match, the template's restartPolicy, the selector's immutability on update (the apps/v1 strategies'
// ValidateImmutableField), and the pod template's defaults (SetObjectDefaults_<Kind> reaching PodSpec).

import { defaultPodSpec, ensureObject } from '../../machinery/defaulting.ts';
import { labelSelectorJSON, validateLabelSelector } from '../../machinery/metav1-validation.ts';
import { validatePodTemplateSpec } from '../../machinery/podspec-validation.ts';
import { labelSelectorFromMetav1, type LabelSelector, type MetaLabelSelector } from '../../machinery/selectors.ts';
import { isObject } from '../../machinery/types.ts';
import { GoStruct, jsonEqual, obj, present, regexError, type ErrorList } from '../../machinery/validation.ts';

type Obj = Record<string, any>;

const PERCENT_FMT = '[0-9]+%';
const percentRe = new RegExp(`^${PERCENT_FMT}$`);
const NEGATIVE = 'must be greater than or equal to 0';

/** ValidateNonnegativeField: an int field below 0 (an unset field is 0, as the Go int is). */
export function validateNonNegative(errs: ErrorList, v: unknown, path: string): void {
  if (typeof v === 'number' && v < 0) errs.invalid(path, v, NEGATIVE);
}

/** ValidatePositiveIntOrPercent: a whole number >= 0, or a percent string ("25%"). */
export function validatePositiveIntOrPercent(errs: ErrorList, v: unknown, path: string): void {
  if (typeof v === 'string') {
    if (!percentRe.test(v)) errs.invalid(path, v, regexError("a valid percent string must be a numeric string followed by an ending '%'", PERCENT_FMT, '1%', '93%'));
  } else validateNonNegative(errs, v, path);
}

/** getPercentValue: the number of a valid percent string. */
function percentValue(v: unknown): number | undefined {
  return typeof v === 'string' && percentRe.test(v) ? Number(v.slice(0, -1)) : undefined;
}

/** IsNotMoreThan100Percent: a percent string over 100%. */
export function isNotMoreThan100Percent(errs: ErrorList, v: unknown, path: string): void {
  const p = percentValue(v);
  if (p !== undefined && p > 100) errs.invalid(path, v, 'must not be greater than 100%');
}

/** Both rules at once, as a PodDisruptionBudget's minAvailable and maxUnavailable are checked. */
export function validateIntOrPercent(errs: ErrorList, v: unknown, path: string): void {
  validatePositiveIntOrPercent(errs, v, path);
  isNotMoreThan100Percent(errs, v, path);
}

/** getIntOrPercentValue: a percent's number, an int, or a numeric string's value (IntValue; else 0). */
export function intOrPercentValue(v: unknown): number {
  const p = percentValue(v);
  if (p !== undefined) return p;
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^[+-]?\d+$/.test(v)) return Number(v);
  return 0;
}

/** metav1.LabelSelectorAsSelector; undefined when the selector does not convert (an invalid key or operator). */
function asSelector(selector: unknown): LabelSelector | undefined {
  try {
    return labelSelectorFromMetav1(isObject(selector) ? (selector as MetaLabelSelector) : undefined);
  } catch {
    return undefined;
  }
}

/** A *metav1.LabelSelector as a bad value. */
export const selectorValue = (selector: unknown): GoStruct => new GoStruct(labelSelectorJSON(selector));

/**
 * The selector rules of Deployments, ReplicaSets and StatefulSets: required, valid, not empty (`what` names
 * the kind in kube's message: a ReplicaSet's says "deployment", as upstream). Returns the selector the
 * template must match, undefined when it does not convert (kube then reports `invalidMessage` instead).
 */
export function validateRequiredSelector(errs: ErrorList, selector: unknown, what: string, invalidMessage: string): LabelSelector | undefined {
  if (!present(selector)) errs.required('spec.selector');
  else {
    validateLabelSelector(errs, selector, 'spec.selector');
    const s = obj(selector);
    if (Object.keys(obj(s.matchLabels)).length + (Array.isArray(s.matchExpressions) ? s.matchExpressions.length : 0) === 0) {
      errs.invalid('spec.selector', selectorValue(selector), `empty selector is invalid for ${what}`);
    }
  }
  const sel = asSelector(selector);
  if (!sel) errs.invalid('spec.selector', selectorValue(selector), invalidMessage);
  return sel;
}

/** The template's labels must be selected (an empty selector, matching everything, is not checked). */
export function validateTemplateLabels(errs: ErrorList, template: Obj, selector: LabelSelector, checkEmpty = true): void {
  if (checkEmpty && selector.empty) return;
  const labels = template.metadata?.labels;
  if (!selector.matches(isObject(labels) ? labels : undefined)) {
    errs.invalid('spec.template.metadata.labels', labels ?? null, '`selector` does not match template `labels`');
  }
}

/** What a workload's pods must be: restarted always, never deadlined (`kind` names it in kube's message). */
export function validateTemplateRestart(errs: ErrorList, template: Obj, kind: string): void {
  const spec = obj(template.spec);
  if (spec.restartPolicy !== 'Always') errs.notSupported('spec.template.spec.restartPolicy', spec.restartPolicy ?? '', ['Always']);
  if (present(spec.activeDeadlineSeconds)) errs.forbidden('spec.template.spec.activeDeadlineSeconds', `activeDeadlineSeconds in ${kind} is not Supported`);
}

/**
 * ValidatePodTemplateSpecForReplicaSet (Deployments and ReplicaSets): the template matches the selector,
 * is a valid pod template, and restarts always. Its message names "ReplicaSet" for Deployments too, as upstream.
 */
export function validateReplicaSetTemplate(errs: ErrorList, template: unknown, selector: LabelSelector | undefined): void {
  const t = obj(template);
  if (selector) validateTemplateLabels(errs, t, selector);
  validatePodTemplateSpec(errs, t, 'spec.template');
  validateTemplateRestart(errs, t, 'ReplicaSet');
}

/** apps/v1 refuses a changed selector on update (the strategies' ValidateImmutableField). */
export function validateSelectorUnchanged(errs: ErrorList, o: Obj, old: Obj): void {
  const selector = o.spec?.selector;
  if (!jsonEqual(selector, old.spec?.selector)) errs.invalid('spec.selector', selectorValue(selector), 'field is immutable');
}

/** SetObjectDefaults_<Kind> on the pod template: SetDefaults_PodSpec and what it reaches. */
export function defaultTemplate(spec: Obj): void {
  const template = spec.template;
  if (isObject(template)) defaultPodSpec(ensureObject(template, 'spec'));
}

/** Fills a status's counts that Go always serializes (int32 fields without omitempty) with 0. */
export function zeroCounts(o: Obj, fields: readonly string[]): void {
  const status = ensureObject(o, 'status');
  for (const f of fields) if (!present(status[f])) status[f] = 0;
}

/** Checks a status's counts (ValidateNonnegativeField), `cannot be greater than status.replicas` and the like. */
export function validateStatusCounts(errs: ErrorList, status: Obj, fields: readonly string[]): void {
  for (const f of fields) validateNonNegative(errs, status[f], `status.${f}`);
}

/** IsDecremented(status.collisionCount): a hash collision count only grows. */
export function validateCollisionCount(errs: ErrorList, status: Obj, old: Obj): void {
  const now = status.collisionCount;
  const before = old.status?.collisionCount;
  if (typeof before !== 'number') return;
  if (typeof now !== 'number' || now < before) errs.invalid('status.collisionCount', typeof now === 'number' ? now : 0, 'cannot be decremented');
}

/** The internal Deployment/DaemonSet strategy as a bad value (a Go struct without JSON tags) for notSupported. */
export function rollingStrategyValue(s: Obj): GoStruct {
  const ru = isObject(s.rollingUpdate)
    ? `{"MaxUnavailable":${JSON.stringify(s.rollingUpdate.maxUnavailable ?? 0)},"MaxSurge":${JSON.stringify(s.rollingUpdate.maxSurge ?? 0)}}`
    : 'null';
  return new GoStruct(`{"Type":${JSON.stringify(s.type ?? '')},"RollingUpdate":${ru}}`);
}

/**
 * PrepareForUpdate of the apps kinds for their main resource: defaulted first, as kube defaults a
 * decoded object before PrepareForUpdate (the store's generation compares specs, and a PUT leaving out
 * defaulted fields changes none), with the stored status kept; `then` adds a kind's own step.
 */
export function prepareSpecUpdate(defaults: (o: Obj) => void, then?: (o: Obj, old: Obj) => void) {
  return (o: Obj, old: Obj, subresource?: string): void => {
    if (subresource) return;
    defaults(o);
    o.status = old.status;
    then?.(o, old);
  };
}
