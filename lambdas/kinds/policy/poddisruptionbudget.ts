// PodDisruptionBudget (policy/v1): pkg/registry/policy/poddisruptionbudget. Stored and validated, with a
// status subresource; the disruption controller that fills its status and the eviction API that honours
// it are not there yet, so its status stays what a create leaves (all zero) or a client writes.

import { ensureObject } from '../../machinery/defaulting.ts';
import { labelSelectorJSON, validateConditions, validateLabelSelector } from '../../machinery/metav1-validation.ts';
import { ageCol, col, int, nameCol, since, str } from '../../machinery/table.ts';
import { GoStruct, obj, present, regexError, type ErrorList } from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

type Obj = Record<string, any>;

const EVICTION_POLICIES = ['AlwaysAllow', 'IfHealthyBudget'];
const PERCENT_FMT = '[0-9]+%';
const percentRe = new RegExp(`^${PERCENT_FMT}$`);
/** The status counts are int32 without omitempty: a PDB always shows them. */
const STATUS_COUNTS = ['currentHealthy', 'desiredHealthy', 'disruptionsAllowed', 'expectedPods'];

/** An IntOrString as encoding/json writes it. */
const intOrStringJSON = (v: unknown): string => (present(v) ? JSON.stringify(v) : 'null');

/** ValidatePositiveIntOrPercent and IsNotMoreThan100Percent (apps validation). */
function validateIntOrPercent(errs: ErrorList, v: unknown, path: string): void {
  if (typeof v === 'string') {
    if (!percentRe.test(v)) errs.invalid(path, v, regexError("a valid percent string must be a numeric string followed by an ending '%'", PERCENT_FMT, '1%', '93%'));
    else if (Number(v.slice(0, -1)) > 100) errs.invalid(path, v, 'must not be greater than 100%');
  } else if (typeof v === 'number' && v < 0) {
    errs.invalid(path, v, 'must be greater than or equal to 0');
  }
}

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
