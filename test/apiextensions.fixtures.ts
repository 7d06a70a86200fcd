// A multi-version CRD shaped like operators' CRDs (a Prometheus-operator-like Alertmanager-ish kind):
// printer columns, status and scale subresources, CEL rules (with a transition rule), a list-type map.
import type { CustomResourceDefinition } from '../lambdas/apiextensions/index.ts';

export function widgetCRD(): CustomResourceDefinition {
  const schema = (extra: Record<string, unknown> = {}) => ({
    type: 'object',
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec: {
        type: 'object',
        required: ['image'],
        'x-kubernetes-validations': [
          { rule: 'self.minReplicas <= self.replicas', message: 'replicas must be at least minReplicas' },
          { rule: 'self.image == oldSelf.image || !has(oldSelf.locked) || !oldSelf.locked', message: 'image is locked' },
        ],
        properties: {
          image: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[a-z0-9./:-]+$' },
          replicas: { type: 'integer', format: 'int32', minimum: 0, maximum: 100, default: 1 },
          minReplicas: { type: 'integer', default: 0 },
          locked: { type: 'boolean' },
          logLevel: { type: 'string', enum: ['debug', 'info', 'warn'], default: 'info' },
          retention: { 'x-kubernetes-int-or-string': true },
          storage: { type: 'object', properties: { size: { type: 'string', default: '1Gi' }, class: { type: 'string' } } },
          ports: {
            type: 'array',
            maxItems: 4,
            'x-kubernetes-list-type': 'map',
            'x-kubernetes-list-map-keys': ['name'],
            items: {
              type: 'object',
              required: ['name'],
              properties: { name: { type: 'string' }, port: { type: 'integer', format: 'int32' }, protocol: { type: 'string', default: 'TCP' } },
              'x-kubernetes-validations': [{ rule: 'self.port > 0 && self.port < 65536', messageExpression: "'port ' + string(self.port) + ' is out of range'" }],
            },
          },
          tags: { type: 'array', 'x-kubernetes-list-type': 'set', items: { type: 'string' } },
          extra: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
          startAt: { type: 'string', format: 'date-time' },
          ...extra,
        },
      },
      status: {
        type: 'object',
        properties: { replicas: { type: 'integer' }, selector: { type: 'string' }, phase: { type: 'string' } },
      },
    },
  });
  const columns = [
    { name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas' },
    { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ];
  const subresources = { status: {}, scale: { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: '.status.selector' } };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'widgets.example.com' },
    spec: {
      group: 'example.com',
      scope: 'Namespaced',
      names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList', shortNames: ['wd'], categories: ['all'] },
      versions: [
        { name: 'v1beta1', served: true, storage: false, deprecated: true, deprecationWarning: 'example.com/v1beta1 Widget is deprecated', schema: { openAPIV3Schema: schema({ legacy: { type: 'string' } }) as any }, subresources, additionalPrinterColumns: columns },
        { name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: schema() as any }, subresources, additionalPrinterColumns: columns },
      ],
    },
  };
}

export function widget(spec: Record<string, unknown>, name = 'w1'): any {
  return { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name, namespace: 'default' }, spec };
}
