// Deployment (apps/v1): pkg/registry/apps/deployment. Defaults (SetDefaults_Deployment), validation
// (ValidateDeployment, the apps/v1 selector immutability, the status subresource's rules) and kubectl's
// columns, as Kubernetes 1.32 has them. Its ReplicaSets are the deployment controller's. Serves the scale
// subresource (kubectl scale, the HorizontalPodAutoscaler).

import { ensureObject, setIfMissing } from '../../machinery/defaulting.ts';
import { labelSelectorFromMetav1 } from '../../machinery/selectors.ts';
import { ageCol, col, doc, int, layoutContainers, nameCol, since, str, type Printed } from '../../machinery/table.ts';
import { isObject } from '../../machinery/types.ts';
import { nameIsDNSSubdomain, obj, present, type ErrorList } from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';
import { labelSelectorScale } from './scale.ts';
import {
  defaultTemplate,
  intOrPercentValue,
  isNotMoreThan100Percent,
  validateCollisionCount,
  validateNonNegative,
  validatePositiveIntOrPercent,
  validateReplicaSetTemplate,
  validateRequiredSelector,
  validateSelectorUnchanged,
  validateStatusCounts,
  prepareSpecUpdate,
  rollingStrategyValue,
} from './validation.ts';

type Obj = Record<string, any>;

const APPS = 'io.k8s.api.apps.v1.';
const STRATEGIES = ['Recreate', 'RollingUpdate'];

/** SetDefaults_Deployment, and the pod template's defaults. */
function defaultDeployment(d: Obj): void {
  const spec = ensureObject(d, 'spec');
  if (!present(spec.replicas)) spec.replicas = 1;
  const strategy = ensureObject(spec, 'strategy');
  setIfMissing(strategy, 'type', 'RollingUpdate');
  if (strategy.type === 'RollingUpdate') {
    const ru = ensureObject(strategy, 'rollingUpdate');
    if (!present(ru.maxUnavailable)) ru.maxUnavailable = '25%';
    if (!present(ru.maxSurge)) ru.maxSurge = '25%';
  }
  if (!present(spec.revisionHistoryLimit)) spec.revisionHistoryLimit = 10;
  if (!present(spec.progressDeadlineSeconds)) spec.progressDeadlineSeconds = 600;
  defaultTemplate(spec);
  // DeploymentStatus: every field is omitempty, so a new Deployment reads back with `status: {}`.
  ensureObject(d, 'status');
}

/** ValidateDeploymentStrategy and ValidateRollingUpdateDeployment. */
function validateStrategy(errs: ErrorList, strategy: Obj): void {
  const path = 'spec.strategy';
  switch (strategy.type) {
    case 'Recreate':
      if (present(strategy.rollingUpdate)) errs.forbidden(`${path}.rollingUpdate`, "may not be specified when strategy `type` is 'Recreate'");
      break;
    case 'RollingUpdate': {
      if (!present(strategy.rollingUpdate)) {
        errs.required(`${path}.rollingUpdate`, 'this should be defaulted and never be nil');
        break;
      }
      const ru = obj(strategy.rollingUpdate);
      // The internal type's fields are not pointers: unset is 0.
      const maxUnavailable = ru.maxUnavailable ?? 0;
      const maxSurge = ru.maxSurge ?? 0;
      validatePositiveIntOrPercent(errs, maxUnavailable, `${path}.rollingUpdate.maxUnavailable`);
      validatePositiveIntOrPercent(errs, maxSurge, `${path}.rollingUpdate.maxSurge`);
      if (intOrPercentValue(maxUnavailable) === 0 && intOrPercentValue(maxSurge) === 0) {
        errs.invalid(`${path}.rollingUpdate.maxUnavailable`, maxUnavailable, 'may not be 0 when `maxSurge` is 0');
      }
      isNotMoreThan100Percent(errs, maxUnavailable, `${path}.rollingUpdate.maxUnavailable`);
      break;
    }
    default:
      errs.notSupported(path, rollingStrategyValue(strategy), STRATEGIES);
  }
}

/** ValidateDeploymentSpec. */
function validateDeployment(errs: ErrorList, d: Obj): void {
  const spec = obj(d.spec);
  validateNonNegative(errs, spec.replicas, 'spec.replicas');
  const selector = validateRequiredSelector(errs, spec.selector, 'deployment', 'invalid label selector');
  validateReplicaSetTemplate(errs, spec.template, selector);
  validateStrategy(errs, obj(spec.strategy));
  validateNonNegative(errs, spec.minReadySeconds, 'spec.minReadySeconds');
  validateNonNegative(errs, spec.revisionHistoryLimit, 'spec.revisionHistoryLimit');
  if (typeof spec.progressDeadlineSeconds === 'number') {
    validateNonNegative(errs, spec.progressDeadlineSeconds, 'spec.progressDeadlineSeconds');
    if (spec.progressDeadlineSeconds <= (typeof spec.minReadySeconds === 'number' ? spec.minReadySeconds : 0)) {
      errs.invalid('spec.progressDeadlineSeconds', spec.progressDeadlineSeconds, 'must be greater than minReadySeconds');
    }
  }
}

const STATUS_COUNTS = ['observedGeneration', 'replicas', 'updatedReplicas', 'readyReplicas', 'availableReplicas', 'unavailableReplicas', 'collisionCount'];

/** ValidateDeploymentStatusUpdate. */
function validateStatus(errs: ErrorList, d: Obj, old: Obj): void {
  const s = obj(d.status);
  validateStatusCounts(errs, s, STATUS_COUNTS);
  const n = (f: string) => (typeof s[f] === 'number' ? s[f] : 0);
  for (const f of ['updatedReplicas', 'readyReplicas', 'availableReplicas']) {
    if (n(f) > n('replicas')) errs.invalid(`status.${f}`, n(f), 'cannot be greater than status.replicas');
  }
  if (n('availableReplicas') > n('readyReplicas')) errs.invalid('status.availableReplicas', n('availableReplicas'), 'cannot be greater than readyReplicas');
  validateCollisionCount(errs, s, old);
}

/** printDeployment: READY is ready/desired; the selector is LabelSelectorAsSelector's string ("<invalid>" if it fails). */
function printDeployment(d: Obj, now: Date): Printed {
  const [names, images] = layoutContainers(d.spec?.template?.spec?.containers);
  let selector: string;
  try {
    selector = labelSelectorFromMetav1(isObject(d.spec?.selector) ? d.spec.selector : undefined).toString();
  } catch {
    selector = '<invalid>';
  }
  const s = obj(d.status);
  return {
    cells: [str(d.metadata?.name), `${int(s.readyReplicas)}/${int(d.spec?.replicas)}`, int(s.updatedReplicas), int(s.availableReplicas), since(d.metadata?.creationTimestamp, now), names, images, selector],
  };
}

export const deployment: KindStrategy = {
  info: resourceInfo('apps', 'v1', 'Deployment', 'deployments', true, { shortNames: ['deploy'], categories: ['all'], subresources: ['status', 'scale'] }),
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: true },
  defaults: defaultDeployment,
  validate: validateDeployment,
  validateUpdate: (errs, d, old, opts) => {
    if (opts.subresource === 'status') validateStatus(errs, d, old);
    else validateSelectorUnchanged(errs, d, old);
  },
  prepareForCreate: (o) => {
    delete o.status;
  },
  prepareForUpdate: prepareSpecUpdate(defaultDeployment),
  scale: labelSelectorScale,
  table: {
    columns: () => [
      nameCol(),
      col('Ready', 'string', 'Number of the pod with ready state'),
      col('Up-to-date', 'string', doc(`${APPS}DeploymentStatus`, 'updatedReplicas')),
      col('Available', 'string', doc(`${APPS}DeploymentStatus`, 'availableReplicas')),
      ageCol(),
      col('Containers', 'string', 'Names of each container in the template.', 1),
      col('Images', 'string', 'Images referenced by each container in the template.', 1),
      col('Selector', 'string', doc(`${APPS}DeploymentSpec`, 'selector'), 1),
    ],
    print: printDeployment,
  },
};
