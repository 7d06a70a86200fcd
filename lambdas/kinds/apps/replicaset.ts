// ReplicaSet (apps/v1): pkg/registry/apps/replicaset. Defaults (SetDefaults_ReplicaSet), validation
// (ValidateReplicaSet, the apps/v1 selector immutability, the status subresource's rules) and kubectl's
// columns, as Kubernetes 1.32 has them. Its pods are the replicaset controller's. Serves the scale
// subresource. Selectable by metadata.name and metadata.namespace only: its GetAttrs also lists
// status.replicas, but apps/v1 registers no field label conversion for it, so kube-apiserver refuses that
// field ("is not a known field selector"), and so does the generic store here.

import { ensureObject } from '../../machinery/defaulting.ts';
import { formatLabelSelector } from '../../machinery/metav1-validation.ts';
import { ageCol, col, doc, int, layoutContainers, nameCol, since, str, type Printed } from '../../machinery/table.ts';
import { nameIsDNSSubdomain, obj, present, type ErrorList } from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';
import { labelSelectorScale } from './scale.ts';
import { defaultTemplate, prepareSpecUpdate, validateNonNegative, validateReplicaSetTemplate, validateRequiredSelector, validateSelectorUnchanged, validateStatusCounts, zeroCounts } from './validation.ts';

type Obj = Record<string, any>;

const APPS = 'io.k8s.api.apps.v1.';

function defaultReplicaSet(rs: Obj): void {
  const spec = ensureObject(rs, 'spec');
  if (!present(spec.replicas)) spec.replicas = 1;
  defaultTemplate(spec);
  // ReplicaSetStatus.replicas has no omitempty: a new ReplicaSet reads back with `status: {replicas: 0}`.
  zeroCounts(rs, ['replicas']);
}

/** ValidateReplicaSetSpec; its empty-selector message says "deployment", as upstream. */
function validateReplicaSet(errs: ErrorList, rs: Obj): void {
  const spec = obj(rs.spec);
  validateNonNegative(errs, spec.replicas, 'spec.replicas');
  validateNonNegative(errs, spec.minReadySeconds, 'spec.minReadySeconds');
  const selector = validateRequiredSelector(errs, spec.selector, 'deployment', 'invalid label selector');
  validateReplicaSetTemplate(errs, spec.template, selector);
}

/** ValidateReplicaSetStatus. */
function validateStatus(errs: ErrorList, rs: Obj): void {
  const s = obj(rs.status);
  validateStatusCounts(errs, s, ['replicas', 'fullyLabeledReplicas', 'readyReplicas', 'availableReplicas', 'observedGeneration']);
  const n = (f: string) => (typeof s[f] === 'number' ? s[f] : 0);
  for (const f of ['fullyLabeledReplicas', 'readyReplicas', 'availableReplicas']) {
    if (n(f) > n('replicas')) errs.invalid(`status.${f}`, n(f), 'cannot be greater than status.replicas');
  }
  if (n('availableReplicas') > n('readyReplicas')) errs.invalid('status.availableReplicas', n('availableReplicas'), 'cannot be greater than readyReplicas');
}

function printReplicaSet(rs: Obj, now: Date): Printed {
  const [names, images] = layoutContainers(rs.spec?.template?.spec?.containers);
  const s = obj(rs.status);
  return {
    cells: [str(rs.metadata?.name), int(rs.spec?.replicas), int(s.replicas), int(s.readyReplicas), since(rs.metadata?.creationTimestamp, now), names, images, formatLabelSelector(rs.spec?.selector)],
  };
}

export const replicaSet: KindStrategy = {
  info: resourceInfo('apps', 'v1', 'ReplicaSet', 'replicasets', true, { shortNames: ['rs'], categories: ['all'], subresources: ['status', 'scale'] }),
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: true },
  defaults: defaultReplicaSet,
  validate: validateReplicaSet,
  validateUpdate: (errs, rs, old, opts) => {
    if (opts.subresource === 'status') validateStatus(errs, rs);
    else validateSelectorUnchanged(errs, rs, old);
  },
  prepareForCreate: (o) => {
    delete o.status;
  },
  prepareForUpdate: prepareSpecUpdate(defaultReplicaSet),
  scale: labelSelectorScale,
  table: {
    columns: () => [
      nameCol(),
      col('Desired', 'integer', doc(`${APPS}ReplicaSetSpec`, 'replicas')),
      col('Current', 'integer', doc(`${APPS}ReplicaSetStatus`, 'replicas')),
      col('Ready', 'integer', doc(`${APPS}ReplicaSetStatus`, 'readyReplicas')),
      ageCol(),
      col('Containers', 'string', 'Names of each container in the template.', 1),
      col('Images', 'string', 'Images referenced by each container in the template.', 1),
      col('Selector', 'string', doc(`${APPS}ReplicaSetSpec`, 'selector'), 1),
    ],
    print: printReplicaSet,
  },
};
