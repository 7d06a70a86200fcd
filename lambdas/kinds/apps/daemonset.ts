// DaemonSet (apps/v1): pkg/registry/apps/daemonset. Defaults (SetDefaults_DaemonSet), validation
// (ValidateDaemonSet, the apps/v1 selector immutability, the status subresource's rules) and kubectl's
// columns, as Kubernetes 1.32 has them. Its pods are the daemonset controller's.
//
// The internal type's spec.templateGeneration is, in apps/v1, the annotation
// deprecated.daemonset.template.generation (the v1 conversion writes it on every read): 1 on create, one
// more whenever an update changes the pod template, and never what a client sets (PrepareForUpdate).

import { ensureObject } from '../../machinery/defaulting.ts';
import { formatLabelSelector } from '../../machinery/metav1-validation.ts';
import { formatLabels } from '../../machinery/selectors.ts';
import { ageCol, col, CORE, doc, int, layoutContainers, nameCol, since, str, type Printed } from '../../machinery/table.ts';
import { isObject, type KubeObject } from '../../machinery/types.ts';
import { jsonEqual, nameIsDNSSubdomain, obj, present, type ErrorList } from '../../machinery/validation.ts';
import { validatePodTemplateSpec } from '../../machinery/podspec-validation.ts';
import { validateLabelSelector } from '../../machinery/metav1-validation.ts';
import { labelSelectorFromMetav1 } from '../../machinery/selectors.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';
import {
  defaultTemplate,
  intOrPercentValue,
  isNotMoreThan100Percent,
  selectorValue,
  validateCollisionCount,
  validateNonNegative,
  validatePositiveIntOrPercent,
  validateSelectorUnchanged,
  validateStatusCounts,
  validateTemplateLabels,
  validateTemplateRestart,
  zeroCounts,
  prepareSpecUpdate,
  rollingStrategyValue,
} from './validation.ts';

type Obj = Record<string, any>;

const APPS = 'io.k8s.api.apps.v1.';
const STRATEGIES = ['RollingUpdate', 'OnDelete'];
/** appsv1.DeprecatedTemplateGeneration. */
export const TEMPLATE_GENERATION = 'deprecated.daemonset.template.generation';
/** DaemonSetStatus counts without omitempty. */
const ALWAYS_SHOWN = ['currentNumberScheduled', 'numberMisscheduled', 'desiredNumberScheduled', 'numberReady'];

/** SetDefaults_DaemonSet, and the pod template's defaults. */
function defaultDaemonSet(ds: Obj): void {
  const spec = ensureObject(ds, 'spec');
  const strategy = ensureObject(spec, 'updateStrategy');
  if (!strategy.type) strategy.type = 'RollingUpdate';
  if (strategy.type === 'RollingUpdate') {
    const ru = ensureObject(strategy, 'rollingUpdate');
    if (!present(ru.maxUnavailable)) ru.maxUnavailable = 1;
    if (!present(ru.maxSurge)) ru.maxSurge = 0;
  }
  if (!present(spec.revisionHistoryLimit)) spec.revisionHistoryLimit = 10;
  defaultTemplate(spec);
  zeroCounts(ds, ALWAYS_SHOWN);
}

/** The template generation an object carries (0 when its annotation is missing or not a number). */
export function templateGeneration(ds: Obj): number {
  const v = ds.metadata?.annotations?.[TEMPLATE_GENERATION];
  return typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : 0;
}

function setTemplateGeneration(ds: KubeObject, gen: number): void {
  ds.metadata.annotations = { ...ds.metadata.annotations, [TEMPLATE_GENERATION]: String(gen) };
}

/** ValidateDaemonSetUpdateStrategy and ValidateRollingUpdateDaemonSet. */
function validateUpdateStrategy(errs: ErrorList, strategy: Obj): void {
  const path = 'spec.updateStrategy';
  switch (strategy.type) {
    case 'OnDelete':
      break;
    case 'RollingUpdate': {
      if (!present(strategy.rollingUpdate)) {
        errs.required(`${path}.rollingUpdate`);
        break;
      }
      const ru = obj(strategy.rollingUpdate);
      const maxUnavailable = ru.maxUnavailable ?? 0;
      const maxSurge = ru.maxSurge ?? 0;
      validatePositiveIntOrPercent(errs, maxUnavailable, `${path}.rollingUpdate.maxUnavailable`);
      validatePositiveIntOrPercent(errs, maxSurge, `${path}.rollingUpdate.maxSurge`);
      isNotMoreThan100Percent(errs, maxUnavailable, `${path}.rollingUpdate.maxUnavailable`);
      isNotMoreThan100Percent(errs, maxSurge, `${path}.rollingUpdate.maxSurge`);
      // Exactly one of the two is non-zero.
      const hasUnavailable = intOrPercentValue(maxUnavailable) !== 0;
      const hasSurge = intOrPercentValue(maxSurge) !== 0;
      if (hasUnavailable && hasSurge) errs.invalid(`${path}.rollingUpdate.maxSurge`, maxSurge, 'may not be set when maxUnavailable is non-zero');
      else if (!hasUnavailable && !hasSurge) errs.required(`${path}.rollingUpdate.maxUnavailable`, 'cannot be 0 when maxSurge is 0');
      break;
    }
    default:
      errs.notSupported(path, rollingStrategyValue(strategy), STRATEGIES);
  }
}

/** ValidateDaemonSetSpec. */
function validateDaemonSet(errs: ErrorList, ds: Obj): void {
  const spec = obj(ds.spec);
  const template = obj(spec.template);
  validateLabelSelector(errs, spec.selector, 'spec.selector');
  // Unlike the other workloads, a missing selector is not "Required": it selects nothing, so no template matches.
  let selector;
  try {
    selector = labelSelectorFromMetav1(isObject(spec.selector) ? spec.selector : undefined);
  } catch {
    selector = undefined;
  }
  if (selector) validateTemplateLabels(errs, template, selector, false);
  if (isObject(spec.selector) && Object.keys(obj(spec.selector.matchLabels)).length + (Array.isArray(spec.selector.matchExpressions) ? spec.selector.matchExpressions.length : 0) === 0) {
    errs.invalid('spec.selector', selectorValue(spec.selector), 'empty selector is invalid for daemonset');
  }
  validatePodTemplateSpec(errs, template, 'spec.template');
  validateTemplateRestart(errs, template, 'DaemonSet');
  validateNonNegative(errs, spec.minReadySeconds, 'spec.minReadySeconds');
  validateUpdateStrategy(errs, obj(spec.updateStrategy));
  validateNonNegative(errs, spec.revisionHistoryLimit, 'spec.revisionHistoryLimit');
}

/** validateDaemonSetStatus and the collision count (ValidateDaemonSetStatusUpdate). */
function validateStatus(errs: ErrorList, ds: Obj, old: Obj): void {
  const s = obj(ds.status);
  validateStatusCounts(errs, s, [
    'currentNumberScheduled',
    'numberMisscheduled',
    'desiredNumberScheduled',
    'numberReady',
    'observedGeneration',
    'updatedNumberScheduled',
    'numberAvailable',
    'numberUnavailable',
    'collisionCount',
  ]);
  validateCollisionCount(errs, s, old);
}

function printDaemonSet(ds: Obj, now: Date): Printed {
  const [names, images] = layoutContainers(ds.spec?.template?.spec?.containers);
  const s = obj(ds.status);
  const nodeSelector = ds.spec?.template?.spec?.nodeSelector;
  return {
    cells: [
      str(ds.metadata?.name),
      int(s.desiredNumberScheduled),
      int(s.currentNumberScheduled),
      int(s.numberReady),
      int(s.updatedNumberScheduled),
      int(s.numberAvailable),
      formatLabels(isObject(nodeSelector) ? nodeSelector : undefined),
      since(ds.metadata?.creationTimestamp, now),
      names,
      images,
      formatLabelSelector(ds.spec?.selector),
    ],
  };
}

export const daemonSet: KindStrategy = {
  info: resourceInfo('apps', 'v1', 'DaemonSet', 'daemonsets', true, { shortNames: ['ds'], categories: ['all'], subresources: ['status'] }),
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: true },
  defaults: defaultDaemonSet,
  validate: validateDaemonSet,
  validateUpdate: (errs, ds, old, opts) => {
    if (opts.subresource === 'status') validateStatus(errs, ds, old);
    else validateSelectorUnchanged(errs, ds, old);
  },
  prepareForCreate: (o) => {
    delete o.status;
    setTemplateGeneration(o, Math.max(templateGeneration(o), 1));
  },
  prepareForUpdate: prepareSpecUpdate(defaultDaemonSet, (o, old) => {
    // A client cannot set the template generation; a changed template moves it on.
    const gen = templateGeneration(old);
    setTemplateGeneration(o as KubeObject, jsonEqual(o.spec?.template, old.spec?.template) ? gen : gen + 1);
  }),
  table: {
    columns: () => [
      nameCol(),
      col('Desired', 'integer', doc(`${APPS}DaemonSetStatus`, 'desiredNumberScheduled')),
      col('Current', 'integer', doc(`${APPS}DaemonSetStatus`, 'currentNumberScheduled')),
      col('Ready', 'integer', doc(`${APPS}DaemonSetStatus`, 'numberReady')),
      col('Up-to-date', 'integer', doc(`${APPS}DaemonSetStatus`, 'updatedNumberScheduled')),
      col('Available', 'integer', doc(`${APPS}DaemonSetStatus`, 'numberAvailable')),
      col('Node Selector', 'string', doc(`${CORE}PodSpec`, 'nodeSelector')),
      ageCol(),
      col('Containers', 'string', 'Names of each container in the template.', 1),
      col('Images', 'string', 'Images referenced by each container in the template.', 1),
      col('Selector', 'string', doc(`${APPS}DaemonSetSpec`, 'selector'), 1),
    ],
    print: printDaemonSet,
  },
};
