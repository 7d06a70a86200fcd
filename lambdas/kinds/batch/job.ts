// Job (batch/v1): pkg/registry/batch/job, as Kubernetes 1.32 has it. On create the apiserver generates
// the selector (batch.kubernetes.io/controller-uid=<uid>) and the template labels that match it, unless
// spec.manualSelector (generateSelector); defaults are SetDefaults_Job; validation is ValidateJob /
// ValidateJobUpdate with kube's messages; kubectl's columns are printJob. The job controller
// (lambdas/controllers/job.ts) runs its pods and writes its status.

import { defaultPodSpec, ensureObject } from '../../machinery/defaulting.ts';
import { formatLabelSelector, labelSelectorJSON, validateLabelSelector } from '../../machinery/metav1-validation.ts';
import { validatePodTemplateSpec } from '../../machinery/podspec-validation.ts';
import { labelSelectorFromMetav1, nameField, namespaceField } from '../../machinery/selectors.ts';
import { ageCol, col, doc, humanDuration, int, layoutContainers, nameCol, since, type Printed } from '../../machinery/table.ts';
import { isObject, type KubeObject } from '../../machinery/types.ts';
import { arr, dns1123LabelErrors, GoStruct, jsonEqual, nameIsDNSSubdomain, obj, present, labelKeyErrors, strOf, type ErrorList } from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

type Obj = Record<string, any>;

const BATCH = 'io.k8s.api.batch.v1.';
/** The labels generateSelector puts on the template (batch.ControllerUidLabel, JobNameLabel and the legacy ones). */
export const CONTROLLER_UID_LABEL = 'batch.kubernetes.io/controller-uid';
export const JOB_NAME_LABEL = 'batch.kubernetes.io/job-name';
export const LEGACY_CONTROLLER_UID_LABEL = 'controller-uid';
export const LEGACY_JOB_NAME_LABEL = 'job-name';
const MAX_PARALLELISM_INDEXED = 100_000;
const MAX_RULES = 20;
const MAX_EXIT_CODES = 255;
const ACTIONS = ['Count', 'FailIndex', 'FailJob', 'Ignore'];
const OPERATORS = ['In', 'NotIn'];
const CONDITION_STATUSES = ['False', 'True', 'Unknown'];

/** generateSelector (pkg/registry/batch/job/strategy.go): only when the client did not ask for a manual selector. */
function generateSelector(job: KubeObject): void {
  const spec = ensureObject(job, 'spec');
  if (spec.manualSelector === true) return;
  const template = ensureObject(spec, 'template');
  const meta = ensureObject(template, 'metadata');
  const labels = ensureObject(meta, 'labels');
  const name = job.metadata.name ?? '';
  const uid = job.metadata.uid!;
  // Labels the client set are kept (a conflict is reported by validation).
  for (const k of [LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL]) if (!(k in labels)) labels[k] = name;
  for (const k of [LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL]) if (!(k in labels)) labels[k] = uid;
  const selector = ensureObject(spec, 'selector');
  const match = ensureObject(selector, 'matchLabels');
  if (!(CONTROLLER_UID_LABEL in match)) match[CONTROLLER_UID_LABEL] = uid;
}

/** SetDefaults_Job. */
function defaultJob(job: Obj): void {
  const spec = ensureObject(job, 'spec');
  if (!present(spec.completions) && !present(spec.parallelism)) {
    spec.completions = 1;
    spec.parallelism = 1;
  }
  if (!present(spec.parallelism)) spec.parallelism = 1;
  if (!present(spec.backoffLimit)) spec.backoffLimit = present(spec.backoffLimitPerIndex) ? 2147483647 : 6;
  const template = isObject(spec.template) ? spec.template : undefined;
  const labels = template && isObject(template.metadata?.labels) ? template.metadata.labels : undefined;
  if (labels && (!isObject(job.metadata?.labels) || !Object.keys(job.metadata.labels).length)) job.metadata.labels = { ...labels };
  if (!present(spec.completionMode)) spec.completionMode = 'NonIndexed';
  if (!present(spec.suspend)) spec.suspend = false;
  for (const rule of arr(spec.podFailurePolicy?.rules)) for (const p of arr(rule?.onPodConditions)) if (isObject(p) && !p.status) p.status = 'True';
  if (!present(spec.podReplacementPolicy)) spec.podReplacementPolicy = present(spec.podFailurePolicy) ? 'Failed' : 'TerminatingOrFailed';
  if (!present(spec.manualSelector)) spec.manualSelector = false;
  if (template) defaultPodSpec(ensureObject(template, 'spec'));
}

const nonNegative = (errs: ErrorList, path: string, v: unknown) => {
  if (typeof v === 'number' && v < 0) errs.invalid(path, v, 'must be greater than or equal to 0');
};

/** validateJobSpec: what a Job and a CronJob's jobTemplate share. */
export function validateJobSpecCommon(errs: ErrorList, spec: Obj, path: string): void {
  nonNegative(errs, `${path}.parallelism`, spec.parallelism);
  nonNegative(errs, `${path}.completions`, spec.completions);
  nonNegative(errs, `${path}.activeDeadlineSeconds`, spec.activeDeadlineSeconds);
  nonNegative(errs, `${path}.backoffLimit`, spec.backoffLimit);
  nonNegative(errs, `${path}.ttlSecondsAfterFinished`, spec.ttlSecondsAfterFinished);
  const indexed = spec.completionMode === 'Indexed';
  if (present(spec.backoffLimitPerIndex)) {
    nonNegative(errs, `${path}.backoffLimitPerIndex`, spec.backoffLimitPerIndex);
    if (!indexed) errs.invalid(`${path}.backoffLimitPerIndex`, spec.backoffLimitPerIndex, 'requires indexed completion mode');
  }
  if (present(spec.maxFailedIndexes) && !present(spec.backoffLimitPerIndex)) {
    errs.required(`${path}.backoffLimitPerIndex`, 'when maxFailedIndexes is specified');
  }
  if (present(spec.completionMode)) {
    if (spec.completionMode !== 'NonIndexed' && !indexed) errs.notSupported(`${path}.completionMode`, spec.completionMode, ['NonIndexed', 'Indexed']);
    if (indexed) {
      if (!present(spec.completions)) errs.required(`${path}.completions`, 'when completion mode is Indexed');
      if (typeof spec.parallelism === 'number' && spec.parallelism > MAX_PARALLELISM_INDEXED) {
        errs.invalid(`${path}.parallelism`, spec.parallelism, `must be less than or equal to ${MAX_PARALLELISM_INDEXED} when completion mode is Indexed`);
      }
    }
  }
  if (present(spec.podFailurePolicy)) validatePodFailurePolicy(errs, spec, `${path}.podFailurePolicy`);
  if (present(spec.podReplacementPolicy)) {
    // With a pod failure policy a replacement waits for the pod to be Failed (its exit code is needed).
    const allowed = present(spec.podFailurePolicy) ? ['Failed'] : ['Failed', 'TerminatingOrFailed'];
    if (!allowed.includes(spec.podReplacementPolicy)) errs.notSupported(`${path}.podReplacementPolicy`, spec.podReplacementPolicy, allowed);
  }
  const template = obj(spec.template);
  validatePodTemplateSpec(errs, template, `${path}.template`);
  // SetDefaults_PodSpec makes an unset restartPolicy Always, so both read as "not chosen".
  const rp = template.spec?.restartPolicy;
  const rpPath = `${path}.template.spec.restartPolicy`;
  if (rp === 'Always' || !rp) errs.required(rpPath, 'valid values: "OnFailure", "Never"');
  else if (rp !== 'OnFailure' && rp !== 'Never') errs.notSupported(rpPath, rp, ['OnFailure', 'Never']);
  else if (present(spec.podFailurePolicy) && rp !== 'Never') errs.invalid(rpPath, rp, 'only "Never" is supported when podFailurePolicy is specified');
}

const quoteList = (l: string[]) => `[${l.map((s) => JSON.stringify(s)).join(' ')}]`;

function validatePodFailurePolicy(errs: ErrorList, spec: Obj, path: string): void {
  const rules = arr(spec.podFailurePolicy?.rules);
  if (rules.length > MAX_RULES) errs.tooMany(`${path}.rules`, rules.length, MAX_RULES);
  const names = new Set([...arr(spec.template?.spec?.containers), ...arr(spec.template?.spec?.initContainers)].map((c) => strOf(c?.name)));
  rules.forEach((rule: Obj, i) => {
    const p = `${path}.rules[${i}]`;
    const action = strOf(rule?.action);
    if (!action) errs.required(`${p}.action`, `valid values: ${quoteList(ACTIONS)}`);
    else if (action === 'FailIndex') {
      if (!present(spec.backoffLimitPerIndex)) errs.invalid(`${p}.action`, action, 'requires the backoffLimitPerIndex to be set');
    } else if (!ACTIONS.includes(action)) errs.notSupported(`${p}.action`, action, ACTIONS);
    const onExit = rule?.onExitCodes;
    const onConds = arr(rule?.onPodConditions);
    if (present(onExit)) {
      const ep = `${p}.onExitCodes`;
      const op = strOf(onExit.operator);
      if (!op) errs.required(`${ep}.operator`, `valid values: ${quoteList(OPERATORS)}`);
      else if (!OPERATORS.includes(op)) errs.notSupported(`${ep}.operator`, op, OPERATORS);
      if (present(onExit.containerName) && !names.has(onExit.containerName)) {
        errs.invalid(`${ep}.containerName`, onExit.containerName, 'must be one of the container or initContainer names in the pod template');
      }
      const values: number[] = arr(onExit.values);
      if (!values.length) errs.invalid(`${ep}.values`, values, 'at least one value is required');
      else if (values.length > MAX_EXIT_CODES) errs.tooMany(`${ep}.values`, values.length, MAX_EXIT_CODES);
      else {
        const seen = new Set<number>();
        let ordered = true;
        values.forEach((v, j) => {
          if (op === 'In' && v === 0) errs.invalid(`${ep}.values[${j}]`, v, 'must not be 0 for the In operator');
          if (seen.has(v)) errs.duplicate(`${ep}.values[${j}]`, v);
          else seen.add(v);
          if (j > 0 && values[j - 1]! > v) ordered = false;
        });
        if (!ordered) errs.invalid(`${ep}.values`, values, 'must be ordered');
      }
    }
    onConds.forEach((c: Obj, j) => {
      const cp = `${p}.onPodConditions[${j}]`;
      errs.each(`${cp}.type`, strOf(c?.type), labelKeyErrors(strOf(c?.type)));
      if (!c?.status) errs.required(`${cp}.status`, `valid values: ${quoteList(CONDITION_STATUSES)}`);
      else if (!CONDITION_STATUSES.includes(c.status)) errs.notSupported(`${cp}.status`, c.status, CONDITION_STATUSES);
    });
    if (present(onExit) && onConds.length) errs.invalid(p, OMIT, 'specifying both OnExitCodes and OnPodConditions is not supported');
    if (!present(onExit) && !onConds.length) errs.invalid(p, OMIT, 'specifying one of OnExitCodes and OnPodConditions is required');
  });
}

/** field.OmitValueType: the message carries no value. */
const OMIT = new GoStruct('{}');

/** validateGeneratedSelector: the generated labels are on the template and the selector selects them. */
function validateGeneratedSelector(errs: ErrorList, job: Obj): void {
  const spec = obj(job.spec);
  if (spec.manualSelector === true || !present(spec.selector)) return;
  const uid = strOf(job.metadata?.uid);
  const name = strOf(job.metadata?.name);
  const labels = obj(spec.template?.metadata?.labels);
  for (const [k, want] of [
    [CONTROLLER_UID_LABEL, uid],
    [JOB_NAME_LABEL, name],
  ] as const) {
    const p = `spec.template.metadata.labels[${k}]`;
    if (!(k in labels)) errs.required(p, `must be '${want}'`);
    else if (labels[k] !== want) errs.invalid(p, labels, `must be '${want}'`);
  }
  try {
    if (!labelSelectorFromMetav1(spec.selector).matches({ [CONTROLLER_UID_LABEL]: uid, [JOB_NAME_LABEL]: name })) {
      errs.invalid('spec.selector', new GoStruct(labelSelectorJSON(spec.selector)), '`selector` not auto-generated');
    }
  } catch {
    // an invalid selector is reported by ValidateLabelSelector
  }
}

function validateJob(errs: ErrorList, job: Obj): void {
  validateGeneratedSelector(errs, job);
  const spec = obj(job.spec);
  validateJobSpecCommon(errs, spec, 'spec');
  if (!present(spec.selector)) errs.required('spec.selector');
  else {
    validateLabelSelector(errs, spec.selector, 'spec.selector');
    try {
      const labels = obj(spec.template?.metadata?.labels);
      if (!labelSelectorFromMetav1(spec.selector).matches(labels)) {
        errs.invalid('spec.template.metadata.labels', labels, '`selector` does not match template `labels`');
      }
    } catch {
      // reported above
    }
  }
  if (spec.completionMode === 'Indexed' && typeof spec.completions === 'number' && spec.completions > 0) {
    const host = `${strOf(job.metadata?.name)}-${spec.completions - 1}`;
    if (dns1123LabelErrors(host).length) errs.invalid('metadata.name', job.metadata?.name, `will not able to create pod with invalid DNS label: ${host}`);
  }
}

const immutable = (errs: ErrorList, path: string, a: unknown, b: unknown, shown: unknown = a) => {
  if (!jsonEqual(a ?? null, b ?? null)) errs.invalid(path, shown ?? null, 'field is immutable');
};

/** The pod template as kube reports it in "field is immutable" (the internal Go struct). */
const templateValue = (t: unknown) => new GoStruct(JSON.stringify(t ?? {}));

function validateJobUpdate(errs: ErrorList, job: Obj, old: Obj): void {
  const spec = obj(job.spec);
  const oldSpec = obj(old.spec);
  // Completions: immutable, except for an Indexed Job changing it together with parallelism (elastic).
  if (!jsonEqual(spec.completions ?? null, oldSpec.completions ?? null)) {
    if (spec.completionMode !== 'Indexed') errs.invalid('spec.completions', spec.completions ?? null, 'field is immutable');
    else if (present(spec.completions) && spec.completions !== spec.parallelism) {
      errs.invalid('spec.completions', spec.completions, 'can only be modified in tandem with spec.parallelism');
    }
  }
  immutable(errs, 'spec.selector', spec.selector, oldSpec.selector, present(spec.selector) ? new GoStruct(labelSelectorJSON(spec.selector)) : null);
  // A suspended Job that never started may change where its pods go (scheduling directives).
  let oldTemplate = oldSpec.template;
  if (oldSpec.suspend === true && !present(old.status?.startTime)) {
    const t = obj(spec.template);
    oldTemplate = structuredClone(obj(oldSpec.template));
    const ot = oldTemplate as Obj;
    ot.metadata = { ...obj(ot.metadata), labels: t.metadata?.labels, annotations: t.metadata?.annotations };
    ot.spec = { ...obj(ot.spec), nodeSelector: t.spec?.nodeSelector, tolerations: t.spec?.tolerations, affinity: t.spec?.affinity, schedulingGates: t.spec?.schedulingGates };
  }
  if (!jsonEqual(spec.template, oldTemplate)) errs.invalid('spec.template', templateValue(spec.template), 'field is immutable');
  immutable(errs, 'spec.completionMode', spec.completionMode, oldSpec.completionMode);
  immutable(errs, 'spec.podFailurePolicy', spec.podFailurePolicy, oldSpec.podFailurePolicy);
  immutable(errs, 'spec.backoffLimitPerIndex', spec.backoffLimitPerIndex, oldSpec.backoffLimitPerIndex);
  immutable(errs, 'spec.managedBy', spec.managedBy, oldSpec.managedBy);
  immutable(errs, 'spec.successPolicy', spec.successPolicy, oldSpec.successPolicy);
}

function validateJobStatus(errs: ErrorList, job: Obj, old: Obj): void {
  const s = obj(job.status);
  for (const f of ['active', 'succeeded', 'failed', 'ready', 'terminating']) nonNegative(errs, `status.${f}`, s[f]);
  // kube's RejectCompletedIndexesForNonIndexedJob and RejectInvalidCompletedIndexes, for a change of it: the
  // Job controller expands the list into a set of indexes, so "0-999999,1000000-1999999,…" (700 bytes)
  // cost it seconds and gigabytes a pass before this was checked.
  const ci = s.completedIndexes;
  if (ci === undefined || ci === old.status?.completedIndexes) return;
  const spec = obj(job.spec);
  if (spec.completionMode !== 'Indexed') {
    if (ci) errs.invalid('status.completedIndexes', ci, 'cannot set non-empty completedIndexes when non-indexed completion mode');
  } else if (typeof spec.completions === 'number' && typeof ci === 'string') {
    const problem = indexesFormatError(ci, spec.completions);
    if (problem) errs.invalid('status.completedIndexes', ci, `error parsing completedIndexes: ${problem}`);
  }
}

/** kube's validateIndexesFormat: "1,3-5,7", increasing, every index below completions; the problem, if any. */
export function indexesFormatError(indexes: string, completions: number): string | undefined {
  if (!indexes) return undefined;
  let last: number | undefined;
  for (const interval of indexes.split(',')) {
    const limits = interval.split('-');
    if (limits.length > 2) return `the fragment ${JSON.stringify(interval)} violates the requirement that an index interval can have at most two parts separated by '-'`;
    const bounds: number[] = [];
    for (const l of limits) {
      // strconv.Atoi: an optional sign and decimal digits.
      if (!/^[+-]?\d+$/.test(l)) return `cannot convert string to integer for index: ${JSON.stringify(l)}`;
      const n = Number(l);
      if (n >= completions) return `too large index: ${JSON.stringify(l)}`;
      bounds.push(n);
    }
    const x = bounds[0]!;
    const y = bounds[1] ?? x;
    if (bounds.length > 1 && x >= y) return `non-increasing order, previous: ${x}, current: ${y}`;
    if (last !== undefined && last >= x) return `non-increasing order, previous: ${last}, current: ${x}`;
    last = y;
  }
  return undefined;
}

/** A condition of the Job's status that is True. */
export function hasJobCondition(job: Obj, type: string): boolean {
  return arr(job.status?.conditions).some((c) => c?.type === type && c?.status === 'True');
}

/** printJob's Status column. */
function jobStatus(job: Obj): string {
  if (hasJobCondition(job, 'Complete')) return 'Complete';
  if (hasJobCondition(job, 'Failed')) return 'Failed';
  if (job.metadata?.deletionTimestamp) return 'Terminating';
  if (hasJobCondition(job, 'Suspended')) return 'Suspended';
  if (hasJobCondition(job, 'FailureTarget')) return 'FailureTarget';
  if (hasJobCondition(job, 'SuccessCriteriaMet')) return 'SuccessCriteriaMet';
  return 'Running';
}

function printJob(job: Obj, now: Date): Printed {
  const spec = obj(job.spec);
  const succeeded = int(job.status?.succeeded);
  let completions: string;
  if (present(spec.completions)) completions = `${succeeded}/${int(spec.completions)}`;
  else {
    const parallelism = int(spec.parallelism);
    completions = parallelism > 1 ? `${succeeded}/1 of ${parallelism}` : `${succeeded}/1`;
  }
  const start = Date.parse(strOf(job.status?.startTime));
  const end = Date.parse(strOf(job.status?.completionTime));
  const duration = Number.isNaN(start) ? '' : humanDuration((Number.isNaN(end) ? now.getTime() : end) - start);
  const [names, images] = layoutContainers(spec.template?.spec?.containers);
  return { cells: [strOf(job.metadata?.name), jobStatus(job), completions, duration, since(job.metadata?.creationTimestamp, now), names, images, formatLabelSelector(spec.selector)] };
}

export const job: KindStrategy = {
  info: resourceInfo('batch', 'v1', 'Job', 'jobs', true, { categories: ['all'], subresources: ['status'] }),
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: true },
  // kube's jobStrategy.DefaultGarbageCollectionPolicy: a batch/v1 delete without a propagationPolicy orphans
  // the pods (kept for backward compatibility; kubectl always sends Background).
  defaultPropagationPolicy: 'Orphan',
  prepareForCreate: (o) => {
    delete o.status;
    generateSelector(o);
  },
  prepareForUpdate: (o, old, subresource) => {
    if (!subresource) o.status = old.status;
    else if (subresource === 'status') o.spec = old.spec;
  },
  defaults: defaultJob,
  validate: validateJob,
  validateUpdate: (errs, o, old, opts) => {
    if (opts.subresource === 'status') return validateJobStatus(errs, o, old);
    validateJobUpdate(errs, o, old);
  },
  table: {
    columns: () => [
      nameCol(),
      col('Status', 'string', 'Status of the job.'),
      col('Completions', 'string', doc(`${BATCH}JobStatus`, 'succeeded')),
      col('Duration', 'string', 'Time required to complete the job.'),
      ageCol(),
      col('Containers', 'string', 'Names of each container in the template.', 1),
      col('Images', 'string', 'Images referenced by each container in the template.', 1),
      col('Selector', 'string', doc(`${BATCH}JobSpec`, 'selector'), 1),
    ],
    print: printJob,
  },
  fieldSelectors: {
    fields: {
      'metadata.name': nameField,
      'metadata.namespace': namespaceField,
      'status.successful': (o) => String(int(o.status?.succeeded)),
    },
  },
};
