// OpenAPI v3 schemas of Skiff's own built-in kinds (groups *.skiff.io), which no upstream definition
// holds. scripts/gen-kube-openapi.ts adds them to kube-openapi.json next to Kubernetes' own, so decoding,
// field validation, strategic merge patch and kubectl (which downloads /openapi/v3) treat them alike.
// ClusterResourceQuota follows OpenShift's quota.openshift.io/v1 types, field for field.

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const K8S = 'io.k8s.api.core.v1.';
const META = 'io.k8s.apimachinery.pkg.apis.meta.v1.';
const QUOTA = 'io.skiff.quota.v1.';
const gvk = (kind: string) => [{ group: 'quota.skiff.io', version: 'v1', kind }];
const typeMeta = {
  apiVersion: { description: 'APIVersion defines the versioned schema of this representation of an object.', type: 'string' },
  kind: { description: 'Kind is a string value representing the REST resource this object represents.', type: 'string' },
};

export const SKIFF_SCHEMAS: Record<string, object> = {
  [`${QUOTA}ClusterResourceQuota`]: {
    description: 'ClusterResourceQuota mirrors ResourceQuota at a cluster scope: one quota shared by every namespace its selector picks.',
    properties: {
      ...typeMeta,
      metadata: { ...ref(`${META}ObjectMeta`), description: "Standard object's metadata." },
      spec: { ...ref(`${QUOTA}ClusterResourceQuotaSpec`), description: 'Spec defines the desired quota.' },
      status: { ...ref(`${QUOTA}ClusterResourceQuotaStatus`), description: 'Status defines the actual enforced quota and its current usage.' },
    },
    required: ['metadata', 'spec'],
    type: 'object',
    'x-kubernetes-group-version-kind': gvk('ClusterResourceQuota'),
  },
  [`${QUOTA}ClusterResourceQuotaList`]: {
    description: 'ClusterResourceQuotaList is a collection of ClusterResourceQuotas.',
    properties: {
      ...typeMeta,
      items: { description: 'Items is a list of ClusterResourceQuotas.', items: ref(`${QUOTA}ClusterResourceQuota`), type: 'array' },
      metadata: { ...ref(`${META}ListMeta`), description: 'Standard list metadata.' },
    },
    required: ['items'],
    type: 'object',
    'x-kubernetes-group-version-kind': gvk('ClusterResourceQuotaList'),
  },
  [`${QUOTA}ClusterResourceQuotaSpec`]: {
    description: 'ClusterResourceQuotaSpec defines the desired quota restrictions.',
    properties: {
      quota: { ...ref(`${K8S}ResourceQuotaSpec`), description: 'Quota defines the desired quota.' },
      selector: { ...ref(`${QUOTA}ClusterResourceQuotaSelector`), description: 'Selector is the selector used to match namespaces.' },
    },
    required: ['selector', 'quota'],
    type: 'object',
  },
  [`${QUOTA}ClusterResourceQuotaSelector`]: {
    description: 'ClusterResourceQuotaSelector is used to select namespaces. At least one of labels or annotations must be present; a namespace must match all that are.',
    properties: {
      annotations: { additionalProperties: { type: 'string' }, description: 'AnnotationSelector is used to select namespaces by annotation.', type: 'object' },
      labels: { ...ref(`${META}LabelSelector`), description: 'LabelSelector is used to select namespaces by label.' },
    },
    type: 'object',
  },
  [`${QUOTA}ClusterResourceQuotaStatus`]: {
    description: 'ClusterResourceQuotaStatus defines the actual enforced quota and its current usage.',
    properties: {
      namespaces: {
        description: 'Namespaces slices the usage by namespace.',
        items: ref(`${QUOTA}ResourceQuotaStatusByNamespace`),
        type: 'array',
        'x-kubernetes-list-map-keys': ['namespace'],
        'x-kubernetes-list-type': 'map',
      },
      total: { ...ref(`${K8S}ResourceQuotaStatus`), description: 'Total defines the actual enforced quota and its current usage across all namespaces.' },
    },
    required: ['total'],
    type: 'object',
  },
  [`${QUOTA}ResourceQuotaStatusByNamespace`]: {
    description: "ResourceQuotaStatusByNamespace gives status for a particular namespace.",
    properties: {
      namespace: { description: 'Namespace the namespace this status applies to.', type: 'string' },
      status: { ...ref(`${K8S}ResourceQuotaStatus`), description: 'Status indicates how many resources have been consumed by this namespace.' },
    },
    required: ['namespace', 'status'],
    type: 'object',
  },
  // metrics.k8s.io/v1beta1, as metrics-server publishes it (k8s.io/metrics/pkg/apis/metrics/v1beta1).
  ...metricsSchemas(),
};

function metricsSchemas(): Record<string, object> {
  const M = 'io.k8s.metrics.pkg.apis.metrics.v1beta1.';
  const mgvk = (kind: string) => [{ group: 'metrics.k8s.io', version: 'v1beta1', kind }];
  const usage = { additionalProperties: ref('io.k8s.apimachinery.pkg.api.resource.Quantity'), type: 'object' };
  const sample = {
    timestamp: { ...ref(`${META}Time`), description: 'The following fields define time interval from which metrics were collected from the interval [Timestamp-Window, Timestamp].' },
    window: { description: 'The length of the interval the usage was measured over (a duration, e.g. "10s").', type: 'string' },
  };
  const list = (kind: string, what: string) => ({
    description: `${kind}List is a list of ${what}.`,
    properties: { ...typeMeta, items: { description: `List of ${what}.`, items: ref(`${M}${kind}`), type: 'array' }, metadata: { ...ref(`${META}ListMeta`), description: 'Standard list metadata.' } },
    required: ['items'],
    type: 'object',
    'x-kubernetes-group-version-kind': mgvk(`${kind}List`),
  });
  return {
    [`${M}NodeMetrics`]: {
      description: 'NodeMetrics sets resource usage metrics of a node.',
      properties: { ...typeMeta, metadata: { ...ref(`${META}ObjectMeta`), description: "Standard object's metadata." }, ...sample, usage: { ...usage, description: 'The memory usage is the memory working set.' } },
      required: ['timestamp', 'window', 'usage'],
      type: 'object',
      'x-kubernetes-group-version-kind': mgvk('NodeMetrics'),
    },
    [`${M}NodeMetricsList`]: list('NodeMetrics', 'node metrics'),
    [`${M}PodMetrics`]: {
      description: 'PodMetrics sets resource usage metrics of a pod.',
      properties: {
        ...typeMeta,
        metadata: { ...ref(`${META}ObjectMeta`), description: "Standard object's metadata." },
        ...sample,
        containers: { description: 'Metrics for all containers are collected within the same time window.', items: ref(`${M}ContainerMetrics`), type: 'array', 'x-kubernetes-list-type': 'atomic' },
      },
      required: ['timestamp', 'window', 'containers'],
      type: 'object',
      'x-kubernetes-group-version-kind': mgvk('PodMetrics'),
    },
    [`${M}PodMetricsList`]: list('PodMetrics', 'pod metrics'),
    [`${M}ContainerMetrics`]: {
      description: 'ContainerMetrics sets resource usage metrics of a container.',
      properties: { name: { description: 'Container name corresponding to the one from pod.spec.containers.', type: 'string' }, usage: { ...usage, description: 'The memory usage is the memory working set.' } },
      required: ['name', 'usage'],
      type: 'object',
    },
  };
}
