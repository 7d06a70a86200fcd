// ReplicationController (core/v1): pkg/registry/core/replicationcontroller. Its pod template is checked
// by the shared PodSpec rules (machinery/podspec-validation.ts); the replication controller
// (lambdas/controllers/replication.ts) makes its pods. Serves the scale subresource (kubectl scale).

import { defaultPodSpec, ensureObject } from '../../machinery/defaulting.ts';
import { validatePodTemplateSpec } from '../../machinery/podspec-validation.ts';
import { formatLabels, nameField, namespaceField } from '../../machinery/selectors.ts';
import { ageCol, col, CORE, doc, int, layoutContainers, nameCol, since, str, type Printed } from '../../machinery/table.ts';
import { isObject, type KubeObject } from '../../machinery/types.ts';
import { jsonEqual, nameIsDNSSubdomain, obj, present, type ErrorList } from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

type Obj = Record<string, any>;

function defaultReplicationController(rc: Obj): void {
  const spec = ensureObject(rc, 'spec');
  const template = isObject(spec.template) ? spec.template : undefined;
  const labels = template && isObject(template.metadata) && isObject(template.metadata.labels) ? template.metadata.labels : undefined;
  if (labels) {
    if (!isObject(spec.selector) || Object.keys(spec.selector).length === 0) spec.selector = { ...labels };
    const meta = rc.metadata as Obj;
    if (!isObject(meta.labels) || Object.keys(meta.labels).length === 0) meta.labels = { ...labels };
  }
  if (spec.replicas === undefined || spec.replicas === null) spec.replicas = 1;
  if (template) defaultPodSpec(ensureObject(template, 'spec'));
  const status = ensureObject(rc, 'status');
  if (status.replicas === undefined) status.replicas = 0;
}

function validateReplicationController(errs: ErrorList, rc: Record<string, any>): void {
  const spec = obj(rc.spec);
  if (typeof spec.minReadySeconds === 'number' && spec.minReadySeconds < 0) errs.invalid('spec.minReadySeconds', spec.minReadySeconds, 'must be greater than or equal to 0');
  const selector = obj(spec.selector);
  if (Object.keys(selector).length === 0) errs.required('spec.selector');
  const replicas = spec.replicas ?? 0;
  if (typeof replicas !== 'number' || replicas < 0) errs.invalid('spec.replicas', replicas, 'must be greater than or equal to 0');
  if (!present(spec.template)) return errs.required('spec.template');
  const template = obj(spec.template);
  const labels = obj(template.metadata?.labels);
  // labels.Set(selector).AsSelector().Matches(template labels)
  if (Object.keys(selector).length && !Object.entries(selector).every(([k, v]) => Object.prototype.hasOwnProperty.call(labels, k) && labels[k] === v)) {
    errs.invalid('spec.template.metadata.labels', labels, '`selector` does not match template `labels`');
  }
  validatePodTemplateSpec(errs, template, 'spec.template');
  const rp = template.spec?.restartPolicy;
  if (rp !== 'Always') errs.notSupported('spec.template.spec.restartPolicy', rp ?? '', ['Always']);
  if (present(template.spec?.activeDeadlineSeconds)) {
    errs.forbidden('spec.template.spec.activeDeadlineSeconds', 'activeDeadlineSeconds in ReplicationController is not Supported');
  }
}

function validateReplicationControllerStatus(errs: ErrorList, status: unknown): void {
  const s = obj(status);
  const n = (f: string) => (typeof s[f] === 'number' ? s[f] : 0);
  for (const f of ['replicas', 'fullyLabeledReplicas', 'readyReplicas', 'availableReplicas', 'observedGeneration']) {
    if (n(f) < 0) errs.invalid(`status.${f}`, n(f), 'must be greater than or equal to 0');
  }
  for (const f of ['fullyLabeledReplicas', 'readyReplicas', 'availableReplicas']) {
    if (n(f) > n('replicas')) errs.invalid(`status.${f}`, n(f), 'cannot be greater than status.replicas');
  }
  if (n('availableReplicas') > n('readyReplicas')) errs.invalid('status.availableReplicas', n('availableReplicas'), 'cannot be greater than readyReplicas');
}

function printReplicationController(rc: Obj, now: Date): Printed {
  const [names, images] = layoutContainers(rc.spec?.template?.spec?.containers);
  const selector = isObject(rc.spec?.selector) ? (rc.spec.selector as Record<string, string>) : undefined;
  return {
    cells: [str(rc.metadata?.name), int(rc.spec?.replicas), int(rc.status?.replicas), int(rc.status?.readyReplicas), since(rc.metadata?.creationTimestamp, now), names, images, formatLabels(selector)],
  };
}

/** autoscaling/v1 Scale of a replication controller: its selector is a map, printed as "k=v,k2=v2". */
function toScale(rc: KubeObject): Obj {
  const sel = rc.spec?.selector ?? {};
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: {
      name: rc.metadata.name,
      namespace: rc.metadata.namespace,
      uid: rc.metadata.uid,
      resourceVersion: rc.metadata.resourceVersion,
      creationTimestamp: rc.metadata.creationTimestamp,
    },
    spec: { replicas: rc.spec?.replicas ?? 0 },
    status: {
      replicas: rc.status?.replicas ?? 0,
      selector: Object.entries(sel)
        .map(([k, v]) => `${k}=${v}`)
        .join(','),
    },
  };
}

export const replicationController: KindStrategy = {
  info: resourceInfo('', 'v1', 'ReplicationController', 'replicationcontrollers', true, {
    shortNames: ['rc'],
    categories: ['all'],
    subresources: ['status', 'scale'],
  }),
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: true },
  defaults: defaultReplicationController,
  validate: validateReplicationController,
  validateUpdate: (errs, o, old, opts) => {
    if (opts.subresource === 'status' || !jsonEqual(o.status, old.status)) validateReplicationControllerStatus(errs, o.status);
  },
  prepareForCreate: (o) => {
    delete o.status;
  },
  prepareForUpdate: (o, old, subresource) => {
    if (!subresource) o.status = old.status;
  },
  scale: {
    toScale,
    setReplicas: (rc, replicas) => {
      rc.spec = { ...rc.spec, replicas };
    },
  },
  table: {
    columns: () => [
      nameCol(),
      col('Desired', 'integer', doc(`${CORE}ReplicationControllerSpec`, 'replicas')),
      col('Current', 'integer', doc(`${CORE}ReplicationControllerStatus`, 'replicas')),
      col('Ready', 'integer', doc(`${CORE}ReplicationControllerStatus`, 'readyReplicas')),
      ageCol(),
      col('Containers', 'string', 'Names of each container in the template.', 1),
      col('Images', 'string', 'Images referenced by each container in the template.', 1),
      col('Selector', 'string', doc(`${CORE}ReplicationControllerSpec`, 'selector'), 1),
    ],
    print: printReplicationController,
  },
  fieldSelectors: {
    fields: {
      'metadata.name': nameField,
      'metadata.namespace': namespaceField,
      'status.replicas': (o) => String(typeof o.status?.replicas === 'number' ? o.status.replicas : 0),
    },
  },
};
