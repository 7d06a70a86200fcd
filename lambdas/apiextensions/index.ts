// The apiextensions machinery: everything about CustomResourceDefinitions and custom resources that does
// not depend on how kinds are served. A serving layer uses it like this:
//
//   CRD writes (apiextensions.k8s.io/v1 customresourcedefinitions):
//     defaultCRD(crd, old?)                     defaults in place (names, conversion None, status.storedVersions)
//     validateCRD(crd) / validateCRDUpdate(crd, old) -> FieldError[]   (empty: valid)
//     invalidError('CustomResourceDefinition', 'apiextensions.k8s.io', name, errs) -> the 422 ApiError
//
//   Serving a CRD version (compile once per CRD resourceVersion and version, then reuse):
//     const v = compileCRDVersion(crd, 'v1')
//     on create/update of a custom resource, in this order (as kube's decoder, strategy and REST store):
//       const unknown = v.prune(obj)            drops unknown fields, returns their paths:
//                                               fieldValidation=Warn -> unknownFieldWarnings(unknown),
//                                               Strict -> throw strictDecodingError(kind, version, unknown)
//       v.applyDefaults(obj)                    schema defaults (also on every read from storage)
//       const errs = v.validate(obj, old?)      metadata, schema, list types, embedded resources, CEL rules
//       if (errs.length) throw invalidError(v.kind, v.group, name, errs)
//     status subresource writes: v.validateStatus(obj, old) (only status is checked, as kube's status strategy)
//     v.printerColumns, v.subresources, v.scale (spec/status replica paths, label selector path)
//     v.openAPISchema: the version's schema for /openapi/v3 (apiVersion, kind and metadata filled in)
//     v.namespaced, v.group, v.version, v.kind, v.listKind, v.plural, v.singular, v.shortNames, v.categories
//
// Nothing here reads storage or the network; every function is pure apart from the in-place defaulting.

import { compileSchemaRules, validateCEL, type CompiledSchemaRules } from './cel.ts';
import { validateEmbedded, validateListTypes, validateObjectMeta, validateObjectMetaUpdate, validateSchema } from './cr-validation.ts';
import { applyDefaults as applySchemaDefaults, pruneNulls } from './defaults.ts';
import { fe, type FieldError } from './errors.ts';
import { prune as pruneSchema } from './prune.ts';
import { deepCopy, isObj, type CustomResourceColumnDefinition, type CustomResourceDefinition, type JSONSchemaProps } from './types.ts';

export { defaultCRD, validateCRD, validateCRDUpdate, schemaPath } from './crd-validation.ts';
export { validateStructural, isStructural } from './structural.ts';
export { invalidError, errorString, errorBody, type FieldError } from './errors.ts';
export { unknownFieldWarnings, strictDecodingError } from './prune.ts';
export type * from './types.ts';

export interface ScalePaths {
  specReplicasPath: string;
  statusReplicasPath: string;
  labelSelectorPath?: string;
}

export interface CompiledCRDVersion {
  group: string;
  version: string;
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  categories: string[];
  namespaced: boolean;
  served: boolean;
  storage: boolean;
  deprecated: boolean;
  deprecationWarning?: string;
  schema: JSONSchemaProps;
  printerColumns: CustomResourceColumnDefinition[];
  subresources: { status: boolean; scale?: ScalePaths };
  scale?: ScalePaths;
  openAPISchema: JSONSchemaProps;
  /** Drops unknown fields in place; returns their paths. */
  prune(obj: unknown): string[];
  /** Applies schema defaults in place and drops nulls of non-nullable fields without defaults. */
  applyDefaults(obj: unknown): void;
  /** Every finding on a write of the whole object (create: no old). */
  validate(obj: unknown, old?: unknown): FieldError[];
  /** Every finding on a write of the status subresource. */
  validateStatus(obj: unknown, old: unknown): FieldError[];
}

/** The columns kube shows when a version declares none. */
const DEFAULT_COLUMNS: CustomResourceColumnDefinition[] = [
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'CreationTimestamp is a timestamp representing the server time when this object was created.' },
];

export function compileCRDVersion(crd: CustomResourceDefinition, versionName: string): CompiledCRDVersion {
  const v = (crd.spec.versions ?? []).find((x) => x.name === versionName);
  if (!v) throw new Error(`version ${versionName} not in CustomResourceDefinition ${crd.metadata?.name ?? ''}`);
  const schema: JSONSchemaProps = isObj(v.schema?.openAPIV3Schema) ? v.schema!.openAPIV3Schema! : { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  const names = crd.spec.names ?? {};
  const namespaced = crd.spec.scope !== 'Cluster';
  const rules: CompiledSchemaRules = compileSchemaRules(schema, '');
  const scale = isObj(v.subresources?.scale)
    ? {
        specReplicasPath: v.subresources!.scale!.specReplicasPath ?? '',
        statusReplicasPath: v.subresources!.scale!.statusReplicasPath ?? '',
        ...(v.subresources!.scale!.labelSelectorPath ? { labelSelectorPath: v.subresources!.scale!.labelSelectorPath } : {}),
      }
    : undefined;
  const statusOn = isObj(v.subresources?.status);

  const validateAll = (obj: unknown, old: unknown): FieldError[] => {
    const o = isObj(obj) ? obj : {};
    const errs: FieldError[] = [];
    errs.push(...validateObjectMeta(o.metadata, 'metadata', { namespaced, nameRequired: true }));
    if (old !== undefined) errs.push(...validateObjectMetaUpdate(o.metadata, isObj(old) ? old.metadata : undefined, 'metadata'));
    // The schema of metadata may restrict name and generateName only; TypeMeta is checked by the decoder.
    const { metadata: _m, apiVersion: _a, kind: _k, ...rest } = o;
    const restSchema: JSONSchemaProps = { ...schema, properties: Object.fromEntries(Object.entries(schema.properties ?? {}).filter(([k]) => !['metadata', 'apiVersion', 'kind'].includes(k))) };
    errs.push(...validateSchema(restSchema, rest));
    const metaSchema = schema.properties?.metadata;
    if (isObj(metaSchema) && isObj(o.metadata)) {
      for (const f of ['name', 'generateName']) {
        const fs = metaSchema.properties?.[f];
        if (fs && o.metadata[f] !== undefined) errs.push(...validateSchema(fs, o.metadata[f], `metadata.${f}`));
      }
    }
    errs.push(...validateListTypes(schema, rest));
    for (const [k, ps] of Object.entries(schema.properties ?? {})) if (isObj(rest[k])) errs.push(...validateEmbedded(ps, rest[k], k));
    // As kube's customResourceStrategy: CEL rules do not run over values of the wrong type or outside their enum.
    if (errs.some((e) => e.type === 'FieldValueTypeInvalid' || e.type === 'FieldValueNotSupported')) {
      errs.push(fe.invalid('<nil>', 'null', 'some validation rules were not checked because the object was invalid; correct the existing errors to complete validation'));
    } else {
      errs.push(...validateCEL(rules, obj, old));
    }
    return errs;
  };

  return {
    group: crd.spec.group,
    version: v.name,
    kind: names.kind ?? '',
    listKind: names.listKind ?? `${names.kind ?? ''}List`,
    plural: names.plural ?? '',
    singular: names.singular ?? (names.kind ?? '').toLowerCase(),
    shortNames: names.shortNames ?? [],
    categories: names.categories ?? [],
    namespaced,
    served: v.served,
    storage: v.storage,
    deprecated: v.deprecated === true,
    ...(v.deprecationWarning !== undefined ? { deprecationWarning: v.deprecationWarning } : {}),
    schema,
    printerColumns: v.additionalPrinterColumns?.length ? v.additionalPrinterColumns : DEFAULT_COLUMNS,
    subresources: { status: statusOn, ...(scale ? { scale } : {}) },
    ...(scale ? { scale } : {}),
    openAPISchema: publishedSchema(schema),
    prune: (obj) => pruneSchema(obj, schema, true),
    applyDefaults: (obj) => {
      applySchemaDefaults(obj, schema);
      pruneNulls(obj, schema);
    },
    validate: (obj, old) => validateAll(obj, old),
    validateStatus: (obj, old) => {
      // kube's status strategy validates the whole object but only status can differ from old.
      return validateAll(obj, old);
    },
  };
}

/** The schema published for the version (kube's builder adds TypeMeta and ObjectMeta). */
function publishedSchema(schema: JSONSchemaProps): JSONSchemaProps {
  const s = deepCopy(schema);
  s.type ??= 'object';
  s.properties ??= {};
  s.properties.apiVersion = {
    type: 'string',
    description:
      'APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources',
  };
  s.properties.kind = {
    type: 'string',
    description:
      'Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds',
  };
  s.properties.metadata = { $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta' } as JSONSchemaProps;
  return s;
}
