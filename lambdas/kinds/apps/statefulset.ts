// StatefulSet (apps/v1): pkg/registry/apps/statefulset. Defaults (SetDefaults_StatefulSet, and its
// volumeClaimTemplates' PersistentVolumeClaim defaults), validation (ValidateStatefulSet: names are DNS
// labels, they become pod hostnames; only replicas, ordinals, template, updateStrategy,
// persistentVolumeClaimRetentionPolicy and minReadySeconds change on update; the status subresource's
// rules) and kubectl's columns, as Kubernetes 1.32 has them. Its pods are the statefulset controller's.
//
// As in Kubernetes 1.32, the pod template's spec is not validated as a PodSpec here (upstream's TODO in
// ValidatePodTemplateSpecForStatefulSet), nor is serviceName (checked from 1.33); a bad template is
// reported when the controller creates the pods. rollingUpdate.maxUnavailable is dropped, its feature gate
// (MaxUnavailableStatefulSet, alpha) being off.

import { ensureObject } from '../../machinery/defaulting.ts';
import { ageCol, col, int, layoutContainers, nameCol, since, str, type Printed } from '../../machinery/table.ts';
import { isObject, objectList, type KubeObject } from '../../machinery/types.ts';
import { GoStruct, jsonEqual, nameIsDNSLabel, obj, present, validateAnnotations, validateLabels, type ErrorList } from '../../machinery/validation.ts';
import { persistentVolumeClaim } from '../core/persistentvolumeclaim.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';
import { labelSelectorScale } from './scale.ts';
import {
  defaultTemplate,
  intOrPercentValue,
  isNotMoreThan100Percent,
  validateCollisionCount,
  validateNonNegative,
  validatePositiveIntOrPercent,
  validateRequiredSelector,
  validateStatusCounts,
  validateTemplateLabels,
  validateTemplateRestart,
  zeroCounts,
  prepareSpecUpdate,
} from './validation.ts';

type Obj = Record<string, any>;

const RETENTION = ['Retain', 'Delete'];
const UPDATABLE = ['replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy', 'minReadySeconds'];

/** SetDefaults_StatefulSet, the pod template's and the claim templates' defaults. */
function defaultStatefulSet(ss: Obj): void {
  const spec = ensureObject(ss, 'spec');
  if (!spec.podManagementPolicy) spec.podManagementPolicy = 'OrderedReady';
  const strategy = ensureObject(spec, 'updateStrategy');
  if (!strategy.type) {
    strategy.type = 'RollingUpdate';
    ensureObject(strategy, 'rollingUpdate');
  }
  if (strategy.type === 'RollingUpdate' && isObject(strategy.rollingUpdate) && !present(strategy.rollingUpdate.partition)) strategy.rollingUpdate.partition = 0;
  const retention = ensureObject(spec, 'persistentVolumeClaimRetentionPolicy');
  if (!retention.whenDeleted) retention.whenDeleted = 'Retain';
  if (!retention.whenScaled) retention.whenScaled = 'Retain';
  if (!present(spec.replicas)) spec.replicas = 1;
  if (!present(spec.revisionHistoryLimit)) spec.revisionHistoryLimit = 10;
  defaultTemplate(spec);
  for (const claim of objectList(spec.volumeClaimTemplates)) persistentVolumeClaim.defaults?.(claim);
  // replicas and availableReplicas have no omitempty.
  zeroCounts(ss, ['replicas', 'availableReplicas']);
}

/** The internal RollingUpdateStatefulSetStrategy or StatefulSetUpdateStrategy as a bad value (Go structs without JSON tags). */
function rollingUpdateJSON(ru: unknown): string {
  if (!isObject(ru)) return 'null';
  return `{"Partition":${JSON.stringify(ru.partition ?? 0)},"MaxUnavailable":${present(ru.maxUnavailable) ? JSON.stringify(ru.maxUnavailable) : 'null'}}`;
}

/** ValidateStatefulSetSpec. */
function validateSpec(errs: ErrorList, spec: Obj): void {
  const pmp = spec.podManagementPolicy;
  if (!pmp) errs.required('spec.podManagementPolicy');
  else if (pmp !== 'OrderedReady' && pmp !== 'Parallel') errs.invalid('spec.podManagementPolicy', pmp, "must be 'OrderedReady' or 'Parallel'");

  const strategy = obj(spec.updateStrategy);
  switch (strategy.type ?? '') {
    case '':
      errs.required('spec.updateStrategy');
      break;
    case 'OnDelete':
      if (present(strategy.rollingUpdate)) errs.invalid('spec.updateStrategy.rollingUpdate', new GoStruct(rollingUpdateJSON(strategy.rollingUpdate)), "only allowed for updateStrategy 'RollingUpdate'");
      break;
    case 'RollingUpdate':
      if (present(strategy.rollingUpdate)) {
        const ru = obj(strategy.rollingUpdate);
        const path = 'spec.updateStrategy.rollingUpdate';
        validateNonNegative(errs, ru.partition, `${path}.partition`);
        if (present(ru.maxUnavailable)) {
          validatePositiveIntOrPercent(errs, ru.maxUnavailable, `${path}.maxUnavailable`);
          if (intOrPercentValue(ru.maxUnavailable) === 0) errs.invalid(`${path}.maxUnavailable`, ru.maxUnavailable, 'cannot be 0');
          isNotMoreThan100Percent(errs, ru.maxUnavailable, `${path}.maxUnavailable`);
        }
      }
      break;
    default:
      errs.invalid(
        'spec.updateStrategy',
        new GoStruct(`{"Type":${JSON.stringify(strategy.type)},"RollingUpdate":${rollingUpdateJSON(strategy.rollingUpdate)}}`),
        "must be 'RollingUpdate' or 'OnDelete'",
      );
  }

  if (present(spec.persistentVolumeClaimRetentionPolicy)) {
    const r = obj(spec.persistentVolumeClaimRetentionPolicy);
    for (const f of ['whenDeleted', 'whenScaled']) {
      if (!RETENTION.includes(r[f])) errs.notSupported(`spec.persistentVolumeClaimRetentionPolicy.${f}`, r[f] ?? '', RETENTION);
    }
  }

  validateNonNegative(errs, spec.replicas, 'spec.replicas');
  validateNonNegative(errs, spec.minReadySeconds, 'spec.minReadySeconds');
  // as upstream: the path is written as one segment.
  if (present(spec.ordinals)) validateNonNegative(errs, obj(spec.ordinals).start, 'spec.ordinals.start');

  const selector = validateRequiredSelector(errs, spec.selector, 'statefulset', '');
  // ValidatePodTemplateSpecForStatefulSet: the selector, the template's labels and annotations, no PodSpec.
  const template = obj(spec.template);
  if (selector) {
    validateTemplateLabels(errs, template, selector);
    validateLabels(errs, template.metadata?.labels, 'spec.template.labels');
    validateAnnotations(errs, template.metadata?.annotations, 'spec.template.annotations');
  }
  validateTemplateRestart(errs, template, 'StatefulSet');
}

/** ValidateStatefulSetUpdate: everything but the updatable fields stays as it was. */
function validateSpecUpdate(errs: ErrorList, ss: Obj, old: Obj): void {
  const rest = (spec: unknown) => Object.fromEntries(Object.entries(obj(spec)).filter(([k]) => !UPDATABLE.includes(k)));
  if (!jsonEqual(rest(ss.spec), rest(old.spec))) {
    errs.forbidden(
      'spec',
      "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
    );
  }
}

/** ValidateStatefulSetStatusUpdate. */
function validateStatus(errs: ErrorList, ss: Obj, old: Obj): void {
  const s = obj(ss.status);
  validateStatusCounts(errs, s, ['replicas', 'readyReplicas', 'currentReplicas', 'updatedReplicas', 'availableReplicas', 'observedGeneration', 'collisionCount']);
  const n = (f: string) => (typeof s[f] === 'number' ? s[f] : 0);
  for (const f of ['readyReplicas', 'currentReplicas', 'updatedReplicas', 'availableReplicas']) {
    if (n(f) > n('replicas')) errs.invalid(`status.${f}`, n(f), 'cannot be greater than status.replicas');
  }
  if (n('availableReplicas') > n('readyReplicas')) errs.invalid('status.availableReplicas', n('availableReplicas'), 'cannot be greater than status.readyReplicas');
  validateCollisionCount(errs, s, old);
}

/** dropStatefulSetDisabledFields: maxUnavailable is kept only where the stored object already has it. */
function dropMaxUnavailable(ss: KubeObject, old?: KubeObject): void {
  const ru = ss.spec?.updateStrategy?.rollingUpdate;
  if (isObject(ru) && !present(old?.spec?.updateStrategy?.rollingUpdate?.maxUnavailable)) delete ru.maxUnavailable;
}

function printStatefulSet(ss: Obj, now: Date): Printed {
  const [names, images] = layoutContainers(ss.spec?.template?.spec?.containers);
  return { cells: [str(ss.metadata?.name), `${int(ss.status?.readyReplicas)}/${int(ss.spec?.replicas)}`, since(ss.metadata?.creationTimestamp, now), names, images] };
}

export const statefulSet: KindStrategy = {
  info: resourceInfo('apps', 'v1', 'StatefulSet', 'statefulsets', true, { shortNames: ['sts'], categories: ['all'], subresources: ['status', 'scale'] }),
  meta: { name: nameIsDNSLabel, kubeFinalizers: true },
  defaults: defaultStatefulSet,
  validate: (errs, ss) => validateSpec(errs, obj(ss.spec)),
  validateUpdate: (errs, ss, old, opts) => {
    if (opts.subresource === 'status') validateStatus(errs, ss, old);
    else validateSpecUpdate(errs, ss, old);
  },
  prepareForCreate: (o) => {
    delete o.status;
    dropMaxUnavailable(o);
  },
  prepareForUpdate: prepareSpecUpdate(defaultStatefulSet, (o, old) => dropMaxUnavailable(o as KubeObject, old as KubeObject)),
  scale: labelSelectorScale,
  table: {
    columns: () => [
      nameCol(),
      col('Ready', 'string', 'Number of the pod with ready state'),
      ageCol(),
      col('Containers', 'string', 'Names of each container in the template.', 1),
      col('Images', 'string', 'Images referenced by each container in the template.', 1),
    ],
    print: printStatefulSet,
  },
};

