// PodDisruptionBudget (policy/v1): pkg/registry/policy/poddisruptionbudget. Stored and validated, with a
// status subresource. Its status is the disruption controller's (controllers/disruption.ts: expected,
// healthy and desired pod counts, disruptionsAllowed, the DisruptionAllowed condition), spent by the
// pods/eviction subresource (apiserver/eviction.ts), which decrements disruptionsAllowed and records the
// pod in status.disruptedPods. Both set the condition through setDisruptionAllowedCondition below
// (component-helpers' pdbhelper), so they agree on it.

import { ensureObject } from '../../machinery/defaulting.ts';
import { labelSelectorJSON, validateConditions, validateLabelSelector } from '../../machinery/metav1-validation.ts';
import { ageCol, col, int, nameCol, since, str } from '../../machinery/table.ts';
import { GoStruct, obj, present, type ErrorList } from '../../machinery/validation.ts';
// ValidatePositiveIntOrPercent and IsNotMoreThan100Percent: kube's policy validation uses apps validation's.
import { validateIntOrPercent } from '../apps/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

type Obj = Record<string, any>;

const EVICTION_POLICIES = ['AlwaysAllow', 'IfHealthyBudget'];
/** The status counts are int32 without omitempty: a PDB always shows them. */
const STATUS_COUNTS = ['currentHealthy', 'desiredHealthy', 'disruptionsAllowed', 'expectedPods'];

/** An IntOrString as encoding/json writes it. */
const intOrStringJSON = (v: unknown): string => (present(v) ? JSON.stringify(v) : 'null');

function validatePodDisruptionBudget(errs: ErrorList, pdb: Obj): void {
  const spec = obj(pdb.spec);
  if (present(spec.minAvailable) && present(spec.maxUnavailable)) {
    // The bad value is the internal Go struct, which has no JSON tags.
    const value = new GoStruct(
      `{"MinAvailable":${intOrStringJSON(spec.minAvailable)},"Selector":${labelSelectorJSON(spec.selector)},"MaxUnavailable":${intOrStringJSON(spec.maxUnavailable)},"UnhealthyPodEvictionPolicy":${present(spec.unhealthyPodEvictionPolicy) ? JSON.stringify(spec.unhealthyPodEvictionPolicy) : 'null'}}`,
    );
    errs.invalid('spec', value, 'minAvailable and maxUnavailable cannot be both set');
  }
  if (present(spec.minAvailable)) validateIntOrPercent(errs, spec.minAvailable, 'spec.minAvailable');
  if (present(spec.maxUnavailable)) validateIntOrPercent(errs, spec.maxUnavailable, 'spec.maxUnavailable');
  validateLabelSelector(errs, spec.selector, 'spec.selector');
  if (present(spec.unhealthyPodEvictionPolicy) && !EVICTION_POLICIES.includes(spec.unhealthyPodEvictionPolicy)) {
    errs.notSupported('spec.unhealthyPodEvictionPolicy', spec.unhealthyPodEvictionPolicy, EVICTION_POLICIES);
  }
}

/** ValidatePodDisruptionBudgetStatusUpdate (policy/v1): its conditions, and no negative counts. */
function validateStatus(errs: ErrorList, status: Obj): void {
  validateConditions(errs, status.conditions, 'status.conditions');
  for (const f of ['disruptionsAllowed', 'currentHealthy', 'desiredHealthy', 'expectedPods']) {
    if (typeof status[f] === 'number' && status[f] < 0) errs.invalid(`status.${f}`, status[f], 'must be greater than or equal to 0');
  }
}

export const podDisruptionBudget: KindStrategy = {
  info: resourceInfo('policy', 'v1', 'PodDisruptionBudget', 'poddisruptionbudgets', true, { shortNames: ['pdb'], subresources: ['status'] }),
  // ValidatePodDisruptionBudget checks no name rule of its own: the generic store's (a path segment) applies.
  defaults: (pdb) => {
    const status = ensureObject(pdb, 'status');
    for (const f of STATUS_COUNTS) if (!present(status[f])) status[f] = 0;
  },
  validate: validatePodDisruptionBudget,
  validateUpdate: (errs, pdb, _old, opts) => {
    if (opts.subresource === 'status') validateStatus(errs, obj(pdb.status));
  },
  prepareForCreate: (o) => {
    delete o.status;
  },
  prepareForUpdate: (o, old, subresource) => {
    if (!subresource) o.status = old.status;
  },
  table: {
    columns: () => [
      nameCol(),
      col('Min Available', 'string', 'The minimum number of pods that must be available.'),
      col('Max Unavailable', 'string', 'The maximum number of pods that may be unavailable.'),
      col('Allowed Disruptions', 'integer', 'Calculated number of pods that may be disrupted at this time.'),
      ageCol(),
    ],
    print: (o, now) => ({
      cells: [
        str(o.metadata?.name),
        present(o.spec?.minAvailable) ? String(o.spec.minAvailable) : 'N/A',
        present(o.spec?.maxUnavailable) ? String(o.spec.maxUnavailable) : 'N/A',
        int(o.status?.disruptionsAllowed),
        since(o.metadata?.creationTimestamp, now),
      ],
    }),
  },
};

/** The DisruptionAllowed condition's type and reasons (policy/v1). */
export const DISRUPTION_ALLOWED = 'DisruptionAllowed';
export const SUFFICIENT_PODS = 'SufficientPods';
export const INSUFFICIENT_PODS = 'InsufficientPods';
export const SYNC_FAILED = 'SyncFailed';

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * apimachinery's meta.SetStatusCondition: adds the condition, or updates the one of its type; the
 * transition time moves only when the status changes, so setting what is already there changes nothing.
 */
export function setStatusCondition(status: Obj, c: Omit<Condition, 'lastTransitionTime'>, now: Date): void {
  const conds: Condition[] = Array.isArray(status.conditions) ? status.conditions : (status.conditions = []);
  const cur = conds.find((x) => x?.type === c.type);
  const gen = c.observedGeneration ? { observedGeneration: c.observedGeneration } : {};
  if (!cur) {
    conds.push({ type: c.type, status: c.status, ...gen, lastTransitionTime: rfc3339(now), reason: c.reason, message: c.message });
    return;
  }
  if (cur.status !== c.status) {
    cur.status = c.status;
    cur.lastTransitionTime = rfc3339(now);
  }
  cur.reason = c.reason;
  cur.message = c.message;
  if (c.observedGeneration) cur.observedGeneration = c.observedGeneration;
  else delete cur.observedGeneration;
}

/** pdbhelper.UpdateDisruptionAllowedCondition: True/SufficientPods while disruptions are allowed. */
export function setDisruptionAllowedCondition(status: Obj, now: Date): void {
  const allowed = (status.disruptionsAllowed ?? 0) > 0;
  setStatusCondition(
    status,
    { type: DISRUPTION_ALLOWED, status: allowed ? 'True' : 'False', reason: allowed ? SUFFICIENT_PODS : INSUFFICIENT_PODS, message: '', observedGeneration: status.observedGeneration },
    now,
  );
}

/** pdbhelper.ConditionsAreUpToDate: the condition says what disruptionsAllowed says, for this generation. */
export function disruptionConditionUpToDate(status: Obj): boolean {
  const c = (Array.isArray(status.conditions) ? status.conditions : []).find((x: any) => x?.type === DISRUPTION_ALLOWED);
  if (!c || (c.observedGeneration ?? 0) !== (status.observedGeneration ?? 0)) return false;
  return (status.disruptionsAllowed ?? 0) > 0 ? c.status === 'True' && c.reason === SUFFICIENT_PODS : c.status === 'False' && c.reason === INSUFFICIENT_PODS;
}
