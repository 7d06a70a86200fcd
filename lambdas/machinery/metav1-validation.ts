// The meta/v1 types that kinds embed, as k8s.io/apimachinery/pkg/apis/meta/v1/validation checks them (with
// kube's messages): a metav1.LabelSelector (a NetworkPolicy's podSelector, a PodDisruptionBudget's
// selector), also how printers show it (metav1.FormatLabelSelector) and how a validation message shows it
// as a bad value (encoding/json of the Go struct: matchLabels before matchExpressions); and
// []metav1.Condition in a status (ValidateConditions).

import { labelSelectorFromMetav1, type MetaLabelSelector } from './selectors.ts';
import { isObject } from './types.ts';
import { arr, goJSON, labelKeyErrors, labelValueErrors, obj, present, regexError, strOf, validateLabels, type ErrorList } from './validation.ts';

/** ValidateLabelSelector (AllowInvalidLabelValueInSelector off, as on every create). A missing selector is valid. */
export function validateLabelSelector(errs: ErrorList, selector: unknown, path: string): void {
  if (!present(selector)) return;
  const s = obj(selector);
  validateLabels(errs, s.matchLabels, `${path}.matchLabels`);
  arr(s.matchExpressions).forEach((r, i) => {
    const p = `${path}.matchExpressions[${i}]`;
    const values = arr(r?.values);
    switch (r?.operator) {
      case 'In':
      case 'NotIn':
        if (!values.length) errs.required(`${p}.values`, "must be specified when `operator` is 'In' or 'NotIn'");
        break;
      case 'Exists':
      case 'DoesNotExist':
        if (values.length) errs.forbidden(`${p}.values`, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
        break;
      default:
        errs.invalid(`${p}.operator`, strOf(r?.operator), 'not a valid selector operator');
    }
    const key = strOf(r?.key);
    errs.each(`${p}.key`, key, labelKeyErrors(key));
    values.forEach((v, j) => errs.each(`${p}.values[${j}]`, strOf(v), labelValueErrors(strOf(v))));
  });
}

/** metav1.FormatLabelSelector: "app=web,tier in (a,b)"; "<none>" when it selects by nothing; "<error>" when invalid. */
export function formatLabelSelector(selector: unknown): string {
  try {
    const s = labelSelectorFromMetav1(isObject(selector) ? (selector as MetaLabelSelector) : undefined).toString();
    return s || '<none>';
  } catch {
    return '<error>';
  }
}

/** A *metav1.LabelSelector as encoding/json writes it (field order, omitempty), for a bad value in a message. */
export function labelSelectorJSON(selector: unknown): string {
  if (!isObject(selector)) return 'null';
  const parts: string[] = [];
  if (isObject(selector.matchLabels) && Object.keys(selector.matchLabels).length) parts.push(`"matchLabels":${goJSON(selector.matchLabels)}`);
  const exprs = arr(selector.matchExpressions);
  if (exprs.length) {
    const e = exprs.map((r) => {
      const values = arr(r?.values);
      return `{"key":${JSON.stringify(strOf(r?.key))},"operator":${JSON.stringify(strOf(r?.operator))}${values.length ? `,"values":${goJSON(values)}` : ''}}`;
    });
    parts.push(`"matchExpressions":[${e.join(',')}]`);
  }
  return `{${parts.join(',')}}`;
}

const CONDITION_STATUSES = ['False', 'True', 'Unknown'];
const CONDITION_REASON_FMT = '[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?';
const conditionReason = new RegExp(`^${CONDITION_REASON_FMT}$`);
const CONDITION_REASON_MSG =
  "a condition reason must start with alphabetic character, optionally followed by a string of alphanumeric characters or '_,:', and must end with an alphanumeric character or '_'";

/** ValidateConditions: types unique and qualified names, a known status, a transition time and a reason. */
export function validateConditions(errs: ErrorList, conditions: unknown, path: string): void {
  const seen = new Set<string>();
  arr(conditions).forEach((c, i) => {
    const p = `${path}[${i}]`;
    const cond = obj(c);
    const type = strOf(cond.type);
    if (seen.has(type)) errs.duplicate(`${p}.type`, type);
    seen.add(type);
    errs.each(`${p}.type`, type, labelKeyErrors(type));
    if (!CONDITION_STATUSES.includes(strOf(cond.status))) errs.notSupported(`${p}.status`, strOf(cond.status), CONDITION_STATUSES);
    if (typeof cond.observedGeneration === 'number' && cond.observedGeneration < 0) {
      errs.invalid(`${p}.observedGeneration`, cond.observedGeneration, 'must be greater than or equal to zero');
    }
    if (!strOf(cond.lastTransitionTime)) errs.required(`${p}.lastTransitionTime`);
    const reason = strOf(cond.reason);
    if (!reason) errs.required(`${p}.reason`);
    else {
      if (!conditionReason.test(reason)) {
        errs.invalid(`${p}.reason`, reason, regexError(CONDITION_REASON_MSG, CONDITION_REASON_FMT, 'my_name', 'MY_NAME', 'MyName', 'ReasonA,ReasonB', 'ReasonA:ReasonB'));
      }
      if (reason.length > 1024) errs.tooLong(`${p}.reason`, 1024);
    }
    if (strOf(cond.message).length > 32 * 1024) errs.tooLong(`${p}.message`, 32 * 1024);
  });
}
