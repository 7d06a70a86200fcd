// CRD defaulting and validation. Messages are upstream's, from
// staging/src/k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation/validation.go and
// pkg/apiserver/schema/validation.go (structural schemas).
import { describe, expect, it } from 'vitest';
import { defaultCRD, errorString, invalidError, validateCRD, validateCRDUpdate, validateStructural, type CustomResourceDefinition } from '../lambdas/apiextensions/index.ts';
import { widgetCRD } from './apiextensions.fixtures.ts';
import { create, refusal, strategyOf, update } from './support/kinds.ts';

const strings = (crd: CustomResourceDefinition, old?: CustomResourceDefinition): string[] => {
  defaultCRD(crd, old);
  return (old ? validateCRDUpdate(crd, old) : validateCRD(crd)).map(errorString);
};

function single(schema: any): CustomResourceDefinition {
  return {
    metadata: { name: 'foos.example.com' },
    spec: { group: 'example.com', scope: 'Namespaced', names: { plural: 'foos', kind: 'Foo' }, versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: schema } }] },
  };
}

describe('CRD defaulting', () => {
  it('defaults singular, listKind, conversion and storedVersions as kube does', () => {
    const crd = single({ type: 'object' });
    defaultCRD(crd);
    expect(crd.spec.names).toMatchObject({ singular: 'foo', listKind: 'FooList' });
    expect(crd.spec.conversion).toEqual({ strategy: 'None' });
    expect(crd.status?.storedVersions).toEqual(['v1']);
  });
  it('adds a new storage version to storedVersions on update', () => {
    const old = widgetCRD();
    defaultCRD(old);
    const next = widgetCRD();
    next.spec.versions[0]!.storage = true;
    next.spec.versions[1]!.storage = false;
    defaultCRD(next, old);
    expect(next.status?.storedVersions).toEqual(['v1', 'v1beta1']);
  });
});

describe('CRD validation', () => {
  it('accepts a realistic multi-version CRD', () => {
    expect(strings(widgetCRD())).toEqual([]);
  });

  it('group, names, scope and metadata.name', () => {
    const crd = single({ type: 'object' });
    crd.spec.group = 'example';
    crd.spec.scope = 'Global';
    crd.spec.names = { plural: 'Foos', kind: 'Foo', listKind: 'Foo', shortNames: ['f_1'] };
    const errs = strings(crd);
    expect(errs).toContain('spec.group: Invalid value: "example": should be a domain with at least one dot');
    expect(errs).toContain('spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"');
    expect(errs).toContain('metadata.name: Invalid value: "foos.example.com": must be spec.names.plural+"."+spec.group');
    expect(errs).toContain('spec.names.listKind: Invalid value: "Foo": kind and listKind may not be the same');
    expect(errs).toContain(
      "spec.names.plural: Invalid value: \"Foos\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
    );
    expect(errs.some((e) => e.startsWith('spec.names.shortNames[0]: Invalid value: "f_1": a DNS-1035 label'))).toBe(true);
  });

  it('versions: storage flag, unique names, required schemas; storedVersions', () => {
    const crd = widgetCRD();
    crd.spec.versions[0]!.storage = true;
    crd.spec.versions[0]!.name = 'v1';
    delete crd.spec.versions[1]!.schema;
    const errs = strings(crd);
    expect(errs.some((e) => e.startsWith('spec.versions: Invalid value: ') && e.endsWith(': must contain unique version names'))).toBe(true);
    expect(errs.some((e) => e.endsWith(': must have exactly one version marked as storage version'))).toBe(true);
    expect(errs).toContain('spec.versions[1].schema.openAPIV3Schema: Required value: schemas are required');
  });

  it('a stored version cannot be dropped from spec.versions', () => {
    const old = widgetCRD();
    defaultCRD(old);
    old.status!.storedVersions = ['v1beta1', 'v1'];
    const next = widgetCRD();
    next.spec.versions.shift();
    expect(strings(next, old)).toContain(
      'status.storedVersions[0]: Invalid value: "v1beta1": missing from spec.versions; v1beta1 was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in v1beta1 and removes v1beta1 from status.storedVersions',
    );
  });

  it('scope, group and plural are immutable (scope and kind once established)', () => {
    const old = widgetCRD();
    defaultCRD(old);
    old.status!.conditions = [{ type: 'Established', status: 'True' }];
    const next = widgetCRD();
    next.spec.scope = 'Cluster';
    expect(strings(next, old)).toContain('spec.scope: Invalid value: "Cluster": field is immutable');
  });

  it('subresources and printer columns (per-version paths when versions differ)', () => {
    const crd = widgetCRD();
    crd.spec.versions[1]!.subresources = { scale: { specReplicasPath: '.status.replicas', statusReplicasPath: 'status.replicas' } };
    crd.spec.versions[1]!.additionalPrinterColumns = [{ name: 'X', type: 'float', jsonPath: 'spec.x' }];
    const errs = strings(crd);
    expect(errs).toContain('spec.versions[1].subresources.scale.specReplicasPath: Invalid value: ".status.replicas": should be a json path under .spec');
    expect(errs).toContain('spec.versions[1].subresources.scale.statusReplicasPath: Invalid value: "status.replicas": must be a simple json path starting with .');
    expect(errs).toContain('spec.versions[1].additionalPrinterColumns[0].type: Invalid value: "float": must be one of boolean,date,integer,number,string');
    expect(errs).toContain('spec.versions[1].additionalPrinterColumns[0].JSONPath: Invalid value: "spec.x": must be a simple json path starting with .');
  });

  it('nulls in lists and maps decode to zero values, as Go decodes them: a 422, never a crash', () => {
    // Found by the fuzz suite (seed 2035488378): `additionalPrinterColumns: [null]` was a 500.
    const crds = strategyOf('apiextensions.k8s.io', 'v1', 'customresourcedefinitions');
    const cases: [(c: any) => void, string][] = [
      [(c) => (c.spec.versions[0].additionalPrinterColumns = [null]), 'spec.additionalPrinterColumns[0].name: Required value'],
      [(c) => c.spec.versions.push(null), 'spec.versions[1].name: Invalid value: ""'],
      [(c) => (c.spec.versions[0].schema.openAPIV3Schema = { type: 'object', properties: { a: null } }), 'spec.validation.openAPIV3Schema.properties[a].type: Required value'],
      [(c) => (c.spec.versions[0].schema.openAPIV3Schema = { type: 'object', 'x-kubernetes-validations': [null] }), 'x-kubernetes-validations[0].rule: Required value'],
      [(c) => (c.spec.names.shortNames = [null]), 'spec.names.shortNames[0]: Invalid value: ""'],
      [(c) => (c.spec.names = null), 'spec.names.plural: Required value'],
    ];
    for (const [mutate, message] of cases) {
      const crd: any = single({ type: 'object' });
      mutate(crd);
      expect(refusal(() => create(crds, crd))).toContain(message);
    }
    // The same on update.
    const stored = create(crds, single({ type: 'object' }));
    const next: any = structuredClone(stored);
    next.spec.versions[0].additionalPrinterColumns = [null];
    expect(refusal(() => update(crds, stored, next))).toContain('spec.additionalPrinterColumns[0].type: Required value');
  });

  it('Webhook conversion is refused with a clear message', () => {
    const crd = widgetCRD();
    crd.spec.conversion = { strategy: 'Webhook', webhook: { clientConfig: { url: 'https://x' } } };
    expect(strings(crd).some((e) => e.startsWith('spec.conversion.strategy: Forbidden: Webhook conversion is not supported'))).toBe(true);
  });

  it('a single-version schema is reported under spec.validation, as kube converts v1 to its internal form', () => {
    const errs = strings(single({ type: 'object', properties: { spec: { properties: { a: { type: 'string' } } } } }));
    expect(errs).toEqual(['spec.validation.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields']);
  });

  it('the whole 422 as kubectl prints it', () => {
    const crd = single({ type: 'object', properties: { spec: { type: 'object', properties: { x: { $ref: '#/foo', type: 'string' } } } } });
    defaultCRD(crd);
    const err = invalidError('CustomResourceDefinition', 'apiextensions.k8s.io', 'foos.example.com', validateCRD(crd));
    expect(err.status.code).toBe(422);
    expect(err.message).toBe(
      'CustomResourceDefinition.apiextensions.k8s.io "foos.example.com" is invalid: spec.validation.openAPIV3Schema.properties[spec].properties[x].$ref: Forbidden: $ref is not supported',
    );
  });

  it('list-type map rules and x-kubernetes-validations shape', () => {
    const crd = single({
      type: 'object',
      properties: {
        spec: {
          type: 'object',
          properties: {
            l: { type: 'array', 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['k', 'missing'], items: { type: 'object', properties: { k: { type: 'string' } } } },
            m: { type: 'string', 'x-kubernetes-list-type': 'set' },
          },
          'x-kubernetes-validations': [{ rule: '' }, { rule: 'true', reason: 'Bad' }],
        },
      },
    });
    const errs = strings(crd);
    const base = 'spec.validation.openAPIV3Schema.properties[spec]';
    expect(errs).toContain(`${base}.properties[l].x-kubernetes-list-map-keys: Invalid value: ["k","missing"]: entries must all be names of item properties`);
    expect(errs).toContain(`${base}.properties[l].items.properties[k].default: Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property`);
    expect(errs).toContain(`${base}.properties[m].type: Invalid value: "string": must be array if x-kubernetes-list-type is specified`);
    expect(errs).toContain(`${base}.x-kubernetes-validations[0].rule: Required value: rule is not specified`);
    expect(errs).toContain(`${base}.x-kubernetes-validations[1].reason: Unsupported value: "Bad": supported values: "FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"`);
  });

  it('CEL compile errors are reported at create', () => {
    const crd = single({ type: 'object', properties: { spec: { type: 'object', properties: { a: { type: 'integer' } }, 'x-kubernetes-validations': [{ rule: 'self.b > 1' }] } } });
    const errs = strings(crd);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^spec\.validation\.openAPIV3Schema\.properties\[spec\]\.x-kubernetes-validations\[0\]\.rule: Invalid value: \{"rule":"self\.b > 1"\}: compilation failed: ERROR: <input>:1:\d+: undefined field 'b'/);
  });

  it('defaults must validate and be pruned', () => {
    const crd = single({ type: 'object', properties: { spec: { type: 'object', properties: { n: { type: 'integer', maximum: 3, default: 5 }, o: { type: 'object', properties: { a: { type: 'string' } }, default: { b: 1 } } } } } });
    const errs = strings(crd);
    expect(errs).toContain('spec.validation.openAPIV3Schema.properties[spec].properties[n].default: Invalid value: 5: spec.validation.openAPIV3Schema.properties[spec].properties[n].default in body should be less than or equal to 3');
    expect(errs).toContain('spec.validation.openAPIV3Schema.properties[spec].properties[o].default: Invalid value: {"b":1}: must not have unknown fields');
  });
});

describe('structural schemas', () => {
  const v = (s: any) => validateStructural('spec.validation.openAPIV3Schema', s).map(errorString);
  it('root type, array items, nested junctors, metadata', () => {
    expect(v({ properties: { a: { type: 'array' } } })).toEqual([
      'spec.validation.openAPIV3Schema.properties[a].items: Required value: must be specified',
      'spec.validation.openAPIV3Schema.type: Required value: must not be empty at the root',
    ]);
    expect(v({ type: 'object', properties: { a: { type: 'string', anyOf: [{ type: 'string', description: 'x' }] } } })).toEqual([
      'spec.validation.openAPIV3Schema.properties[a].anyOf[0].description: Forbidden: must be empty to be structural',
      'spec.validation.openAPIV3Schema.properties[a].anyOf[0].type: Forbidden: must be empty to be structural',
    ]);
    expect(v({ type: 'object', properties: { metadata: { type: 'object', properties: { labels: { type: 'object' } } } } })).toEqual([
      'spec.validation.openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified',
    ]);
    expect(v({ type: 'object', allOf: [{ properties: { x: { minLength: 1 } } }] })).toEqual([
      'spec.validation.openAPIV3Schema.properties[x]: Required value: because it is defined in spec.validation.openAPIV3Schema.allOf[0].properties[x]',
    ]);
  });
  it('int-or-string patterns and extension conflicts', () => {
    expect(v({ type: 'object', properties: { p: { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] } } })).toEqual([]);
    expect(v({ type: 'object', properties: { p: { 'x-kubernetes-int-or-string': true, 'x-kubernetes-preserve-unknown-fields': true } } })).toEqual([
      'spec.validation.openAPIV3Schema.properties[p].x-kubernetes-preserve-unknown-fields: Invalid value: true: must be false if x-kubernetes-int-or-string is true',
    ]);
    expect(v({ type: 'object', properties: { e: { type: 'object', 'x-kubernetes-embedded-resource': true } } })).toEqual([
      'spec.validation.openAPIV3Schema.properties[e].properties: Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields',
    ]);
  });
});
