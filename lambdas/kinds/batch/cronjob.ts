// CronJob (batch/v1): pkg/registry/batch/cronjob, as Kubernetes 1.32 has it: SetDefaults_CronJob,
// ValidateCronJobCreate/Update (the schedule parsed as robfig/cron's ParseStandard does, with its error
// text: machinery/cron.ts; spec.timeZone an IANA zone, not TZ=/CRON_TZ= in the schedule), the job
// template checked as a Job's spec minus the selector, and kubectl's columns (printCronJob). The cronjob
// controller (lambdas/controllers/cronjob.ts) makes its Jobs.

import { parseStandard, validTimeZone } from '../../machinery/cron.ts';
import { defaultPodSpec, ensureObject } from '../../machinery/defaulting.ts';
import { formatLabelSelector, labelSelectorJSON } from '../../machinery/metav1-validation.ts';
import { nameField, namespaceField } from '../../machinery/selectors.ts';
import { ageCol, col, doc, layoutContainers, nameCol, since, type Printed } from '../../machinery/table.ts';
import { isObject } from '../../machinery/types.ts';
import { arr, GoStruct, nameIsDNSSubdomain, obj, present, strOf, validateAnnotations, validateLabels, type ErrorList } from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';
import { validateJobSpecCommon } from './job.ts';

type Obj = Record<string, any>;

const BATCH = 'io.k8s.api.batch.v1.';
const POLICIES = ['Allow', 'Forbid', 'Replace'];
/** DNS1035LabelMaxLength - 11: the Jobs it makes are named <name>-<minutes since epoch>. */
const MAX_NAME = 52;

/** SetDefaults_CronJob, and the pod template's defaults (the generated defaulters reach it). */
function defaultCronJob(cj: Obj): void {
  const spec = ensureObject(cj, 'spec');
  if (!spec.concurrencyPolicy) spec.concurrencyPolicy = 'Allow';
  if (!present(spec.suspend)) spec.suspend = false;
  if (!present(spec.successfulJobsHistoryLimit)) spec.successfulJobsHistoryLimit = 3;
  if (!present(spec.failedJobsHistoryLimit)) spec.failedJobsHistoryLimit = 1;
  const template = spec.jobTemplate?.spec?.template;
  if (isObject(template)) defaultPodSpec(ensureObject(template, 'spec'));
}

/** validateScheduleFormat: robfig's message, and TZ in the schedule (allowed only where it already was). */
function validateSchedule(errs: ErrorList, schedule: string, timeZone: unknown, allowTZ: boolean): void {
  const parsed = parseStandard(schedule);
  if (parsed.error !== undefined) errs.invalid('spec.schedule', schedule, parsed.error);
  if (allowTZ && schedule.includes('TZ') && present(timeZone)) errs.invalid('spec.schedule', schedule, 'cannot use both timeZone field and TZ or CRON_TZ in schedule');
  else if (!allowTZ && schedule.includes('TZ')) errs.invalid('spec.schedule', schedule, 'cannot use TZ or CRON_TZ in schedule, use timeZone field instead');
}

const TZ_PART = /^[A-Za-z.\-_0-9+]{1,14}$/;

/** validateTimeZone. */
function validateTimeZone(errs: ErrorList, tz: unknown): void {
  if (!present(tz)) return;
  const z = strOf(tz);
  if (!z) return errs.invalid('spec.timeZone', z, 'timeZone must be nil or non-empty string');
  for (const part of z.split('/')) {
    if (part === '.' || part === '..' || part.startsWith('-') || !TZ_PART.test(part)) return errs.invalid('spec.timeZone', z, `unknown time zone ${z}`);
  }
  if (z.toLowerCase() === 'local') errs.invalid('spec.timeZone', z, 'timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones');
  if (!validTimeZone(z)) errs.invalid('spec.timeZone', z, `unknown time zone ${z}`);
}

/** ValidateJobTemplateSpec: a Job's spec, whose selector is always generated. */
function validateJobTemplate(errs: ErrorList, t: Obj): void {
  const meta = obj(t.metadata);
  validateLabels(errs, meta.labels, 'spec.jobTemplate.metadata.labels');
  validateAnnotations(errs, meta.annotations, 'spec.jobTemplate.metadata.annotations');
  const spec = obj(t.spec);
  validateJobSpecCommon(errs, spec, 'spec.jobTemplate.spec');
  if (present(spec.selector)) errs.invalid('spec.jobTemplate.spec.selector', new GoStruct(labelSelectorJSON(spec.selector)), '`selector` will be auto-generated');
  if (spec.manualSelector === true) errs.notSupported('spec.jobTemplate.spec.manualSelector', true, ['nil', 'false']);
}

function validateCronJob(errs: ErrorList, cj: Obj, allowTZ: boolean): void {
  const name = strOf(cj.metadata?.name);
  if (name.length > MAX_NAME) errs.invalid('metadata.name', name, `must be no more than ${MAX_NAME} characters`);
  const spec = obj(cj.spec);
  const schedule = strOf(spec.schedule);
  if (!schedule) errs.required('spec.schedule');
  else validateSchedule(errs, schedule, spec.timeZone, allowTZ);
  if (typeof spec.startingDeadlineSeconds === 'number' && spec.startingDeadlineSeconds < 0) {
    errs.invalid('spec.startingDeadlineSeconds', spec.startingDeadlineSeconds, 'must be greater than or equal to 0');
  }
  const policy = strOf(spec.concurrencyPolicy);
  if (!policy) errs.required('spec.concurrencyPolicy');
  else if (!POLICIES.includes(policy)) errs.notSupported('spec.concurrencyPolicy', policy, POLICIES);
  validateJobTemplate(errs, obj(spec.jobTemplate));
  validateTimeZone(errs, spec.timeZone);
  for (const f of ['successfulJobsHistoryLimit', 'failedJobsHistoryLimit']) {
    if (typeof spec[f] === 'number' && spec[f] < 0) errs.invalid(`spec.${f}`, spec[f], 'must be greater than or equal to 0');
  }
}

function printCronJob(cj: Obj, now: Date): Printed {
  const spec = obj(cj.spec);
  const last = present(cj.status?.lastScheduleTime) ? since(cj.status.lastScheduleTime, now) : '<none>';
  const suspend = typeof spec.suspend === 'boolean' ? (spec.suspend ? 'True' : 'False') : '<unset>';
  const jobSpec = obj(spec.jobTemplate?.spec);
  const [names, images] = layoutContainers(jobSpec.template?.spec?.containers);
  return {
    cells: [
      strOf(cj.metadata?.name),
      strOf(spec.schedule),
      present(spec.timeZone) ? strOf(spec.timeZone) : '<none>',
      suspend,
      arr(cj.status?.active).length,
      last,
      since(cj.metadata?.creationTimestamp, now),
      names,
      images,
      formatLabelSelector(jobSpec.selector),
    ],
  };
}

export const cronJob: KindStrategy = {
  info: resourceInfo('batch', 'v1', 'CronJob', 'cronjobs', true, { shortNames: ['cj'], categories: ['all'], subresources: ['status'] }),
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: true },
  prepareForCreate: (o) => {
    delete o.status;
  },
  prepareForUpdate: (o, old, subresource) => {
    if (!subresource) o.status = old.status;
    else if (subresource === 'status') o.spec = old.spec;
  },
  defaults: defaultCronJob,
  validateCreate: (errs, o) => validateCronJob(errs, o, false),
  validateUpdate: (errs, o, old, opts) => {
    if (opts.subresource === 'status') return;
    // A schedule that already had TZ= (from before timeZone existed) may keep it.
    validateCronJob(errs, o, strOf(old.spec?.schedule).includes('TZ'));
  },
  table: {
    columns: () => [
      nameCol(),
      col('Schedule', 'string', doc(`${BATCH}CronJobSpec`, 'schedule')),
      col('Timezone', 'string', doc(`${BATCH}CronJobSpec`, 'timeZone')),
      col('Suspend', 'boolean', doc(`${BATCH}CronJobSpec`, 'suspend')),
      col('Active', 'integer', doc(`${BATCH}CronJobStatus`, 'active')),
      col('Last Schedule', 'string', doc(`${BATCH}CronJobStatus`, 'lastScheduleTime')),
      ageCol(),
      col('Containers', 'string', 'Names of each container in the template.', 1),
      col('Images', 'string', 'Images referenced by each container in the template.', 1),
      col('Selector', 'string', doc(`${BATCH}JobSpec`, 'selector'), 1),
    ],
    print: printCronJob,
  },
  fieldSelectors: { fields: { 'metadata.name': nameField, 'metadata.namespace': namespaceField } },
};
