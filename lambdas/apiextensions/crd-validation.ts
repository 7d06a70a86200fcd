// CustomResourceDefinition defaulting and validation, as kube-apiserver does them for apiextensions.k8s.io/v1
// (pkg/apis/apiextensions/v1/defaults.go, the v1->internal conversion, pkg/apis/apiextensions/validation/
// validation.go). kube validates the internal version, into which per-version schemas, subresources and
// printer columns that are identical in all versions are moved to the top level, so for such CRDs (every
// single-version CRD) errors name spec.validation.openAPIV3Schema, spec.subresources and
// spec.additionalPrinterColumns; this module reproduces that.
//
// Conversion webhooks are refused: Skiff serves one version's objects as stored (strategy None only).

import { dns1035LabelErrors, dns1123SubdomainErrors } from '../machinery/validation.ts';
import { compileSchemaRules } from './cel.ts';
import { child, fe, index, key, type FieldError } from './errors.ts';
import { validateObjectMeta, validateObjectMetaUpdate, validateSchema } from './cr-validation.ts';
import { prune } from './prune.ts';
import { additionalPropertiesOf, itemsOf, validateStructural } from './structural.ts';
import { deepCopy, isObj, jsonEqual, type CustomResourceDefinition, type CustomResourceDefinitionNames, type CustomResourceSubresources, type JSONSchemaProps } from './types.ts';

const PRINTER_COLUMN_TYPES = ['boolean', 'date', 'integer', 'number', 'string'];
const PRINTER_COLUMN_FORMATS = ['byte', 'date', 'date-time', 'double', 'float', 'int32', 'int64', 'password'];
const OPENAPI_V3_TYPES = ['array', 'boolean', 'integer', 'number', 'object', 'string'];
const SUPPORTED_REASONS = ['FieldValueDuplicate', 'FieldValueForbidden', 'FieldValueInvalid', 'FieldValueRequired'];
/** Go field names allowed at the root of a schema when the status subresource is on, in Go's order. */
const ALLOWED_AT_ROOT = ['Description', 'Type', 'Format', 'Title', 'Maximum', 'ExclusiveMaximum', 'Minimum', 'ExclusiveMinimum', 'MaxLength', 'MinLength', 'Pattern', 'MaxItems', 'MinItems', 'UniqueItems', 'MultipleOf', 'Required', 'Items', 'Properties', 'ExternalDocs', 'Example', 'XPreserveUnknownFields', 'XValidations'];
/** JSONSchemaProps JSON keys → Go field names, in the struct's declaration order. */
const GO_FIELDS: [string, string][] = [
  ['id', 'ID'], ['$schema', 'Schema'], ['$ref', 'Ref'], ['description', 'Description'], ['type', 'Type'], ['nullable', 'Nullable'],
  ['format', 'Format'], ['title', 'Title'], ['default', 'Default'], ['maximum', 'Maximum'], ['exclusiveMaximum', 'ExclusiveMaximum'],
  ['minimum', 'Minimum'], ['exclusiveMinimum', 'ExclusiveMinimum'], ['maxLength', 'MaxLength'], ['minLength', 'MinLength'],
  ['pattern', 'Pattern'], ['maxItems', 'MaxItems'], ['minItems', 'MinItems'], ['uniqueItems', 'UniqueItems'], ['multipleOf', 'MultipleOf'],
  ['enum', 'Enum'], ['maxProperties', 'MaxProperties'], ['minProperties', 'MinProperties'], ['required', 'Required'], ['items', 'Items'],
  ['allOf', 'AllOf'], ['oneOf', 'OneOf'], ['anyOf', 'AnyOf'], ['not', 'Not'], ['properties', 'Properties'],
  ['additionalProperties', 'AdditionalProperties'], ['patternProperties', 'PatternProperties'], ['dependencies', 'Dependencies'],
  ['additionalItems', 'AdditionalItems'], ['definitions', 'Definitions'], ['externalDocs', 'ExternalDocs'], ['example', 'Example'],
  ['x-kubernetes-preserve-unknown-fields', 'XPreserveUnknownFields'], ['x-kubernetes-embedded-resource', 'XEmbeddedResource'],
  ['x-kubernetes-int-or-string', 'XIntOrString'], ['x-kubernetes-list-map-keys', 'XListMapKeys'], ['x-kubernetes-list-type', 'XListType'],
  ['x-kubernetes-map-type', 'XMapType'], ['x-kubernetes-validations', 'XValidations'],
];

// ---------------------------------------------------------------------------------------------------
// Defaulting (SetDefaults_CustomResourceDefinition and the strategy's PrepareForCreate/PrepareForUpdate).

/**
 * Defaults a CRD in place: names.singular (lower-case kind), names.listKind (<Kind>List), conversion
 * strategy None, preserveUnknownFields false; on create the status is reset and storedVersions is the
 * storage version; on update the status is kept and a new storage version is added to storedVersions.
 */
export function defaultCRD(crd: CustomResourceDefinition, old?: CustomResourceDefinition): void {
  const spec = (crd.spec ??= {} as CustomResourceDefinition['spec']);
  const names = (spec.names ??= {});
  if (!names.singular && names.kind) names.singular = names.kind.toLowerCase();
  if (!names.listKind && names.kind) names.listKind = `${names.kind}List`;
  spec.conversion ??= { strategy: 'None' };
  if (spec.conversion.strategy === 'Webhook' && spec.conversion.webhook && !spec.conversion.webhook.conversionReviewVersions?.length) {
    spec.conversion.webhook.conversionReviewVersions = ['v1'];
  }
  spec.preserveUnknownFields ??= false;
  const storage = (spec.versions ?? []).find((v) => v.storage)?.name;
  if (!old) {
    crd.status = { storedVersions: storage ? [storage] : [] };
  } else {
    crd.status = deepCopy(old.status ?? {});
    const stored = (crd.status.storedVersions ??= []);
    if (storage && !stored.includes(storage)) stored.push(storage);
  }
}

// ---------------------------------------------------------------------------------------------------
// Validation

interface Internal {
  /** The schema moved to spec.validation, when every version has the same one. */
  validation?: JSONSchemaProps;
  subresources?: CustomResourceSubresources;
  columns?: CustomResourceDefinition['spec']['versions'][number]['additionalPrinterColumns'];
  perVersionSchema: boolean;
  perVersionSubresources: boolean;
  perVersionColumns: boolean;
}

function internal(crd: CustomResourceDefinition): Internal {
  const vs = crd.spec.versions ?? [];
  const same = <T>(f: (v: (typeof vs)[number]) => T): boolean => vs.every((v) => jsonEqual(f(v) ?? null, f(vs[0]!) ?? null));
  const schemaSame = vs.length > 0 && same((v) => v.schema);
  const subSame = vs.length > 0 && same((v) => v.subresources);
  const colSame = vs.length > 0 && same((v) => v.additionalPrinterColumns);
  return {
    validation: schemaSame ? vs[0]!.schema?.openAPIV3Schema : undefined,
    subresources: subSame ? vs[0]!.subresources : undefined,
    columns: colSame ? vs[0]!.additionalPrinterColumns : undefined,
    perVersionSchema: !schemaSame,
    perVersionSubresources: !subSame,
    perVersionColumns: !colSame,
  };
}

/** Where a version's schema sits in kube's error paths (see the header). */
export function schemaPath(crd: CustomResourceDefinition, versionIndex: number): string {
  return internal(crd).perVersionSchema ? `spec.versions[${versionIndex}].schema.openAPIV3Schema` : 'spec.validation.openAPIV3Schema';
}

const dns1035 = (v: string): string => dns1035LabelErrors(v).join(',');

/** ValidateCustomResourceDefinition (create). */
export function validateCRD(crd: CustomResourceDefinition): FieldError[] {
  return [...validateMeta(crd), ...validateSpec(crd, undefined), ...validateStatus(crd), ...validateStoredVersions(crd), ...validateAPIApproval(crd, undefined), ...validatePreserveUnknownFields(crd)];
}

/** ValidateCustomResourceDefinitionUpdate. */
export function validateCRDUpdate(crd: CustomResourceDefinition, old: CustomResourceDefinition): FieldError[] {
  const errs = [...validateObjectMetaUpdate(crd.metadata, old.metadata, 'metadata'), ...validateSpec(crd, old)];
  const established = (old.status?.conditions ?? []).some((c) => c.type === 'Established' && c.status === 'True');
  if (established) {
    if (crd.spec.scope !== old.spec.scope) errs.push(fe.invalid('spec.scope', crd.spec.scope ?? '', 'field is immutable'));
    if (crd.spec.names?.kind !== old.spec.names?.kind) errs.push(fe.invalid('spec.names.kind', crd.spec.names?.kind ?? '', 'field is immutable'));
  }
  if (crd.spec.group !== old.spec.group) errs.push(fe.invalid('spec.group', crd.spec.group ?? '', 'field is immutable'));
  if (crd.spec.names?.plural !== old.spec.names?.plural) errs.push(fe.invalid('spec.names.plural', crd.spec.names?.plural ?? '', 'field is immutable'));
  errs.push(...validateStatus(crd), ...validateStoredVersions(crd), ...validateAPIApproval(crd, old), ...validatePreserveUnknownFields(crd));
  return errs;
}

function validateMeta(crd: CustomResourceDefinition): FieldError[] {
  const errs = validateObjectMeta(crd.metadata, 'metadata', { namespaced: false, nameRequired: true });
  const name = typeof crd.metadata?.name === 'string' ? crd.metadata.name : '';
  if (name && name !== `${crd.spec?.names?.plural ?? ''}.${crd.spec?.group ?? ''}`) errs.push(fe.invalid('metadata.name', name, 'must be spec.names.plural+"."+spec.group'));
  return errs;
}

function validateSpec(crd: CustomResourceDefinition, old: CustomResourceDefinition | undefined): FieldError[] {
  const spec = crd.spec ?? ({} as CustomResourceDefinition['spec']);
  const errs: FieldError[] = [];
  const group = spec.group ?? '';
  if (!group) errs.push(fe.required('spec.group', ''));
  else if (dns1123SubdomainErrors(group).length) errs.push(fe.invalid('spec.group', group, dns1123SubdomainErrors(group).join(',')));
  else if (group.split('.').length < 2) errs.push(fe.invalid('spec.group', group, 'should be a domain with at least one dot'));

  if (!spec.scope) errs.push(fe.required('spec.scope', ''));
  else if (spec.scope !== 'Cluster' && spec.scope !== 'Namespaced') errs.push(fe.notSupported('spec.scope', spec.scope, ['Cluster', 'Namespaced']));

  const versions = Array.isArray(spec.versions) ? spec.versions : [];
  const int = internal(crd);
  // Schemas are required for every version (old CRDs without one keep being accepted).
  const oldAllHaveSchemas = !old || (old.spec.versions ?? []).every((v) => isObj(v.schema?.openAPIV3Schema));
  if (oldAllHaveSchemas && !int.validation) {
    versions.forEach((v, i) => {
      if (!isObj(v.schema?.openAPIV3Schema)) errs.push(fe.required(`spec.versions[${i}].schema.openAPIV3Schema`, 'schemas are required'));
    });
  }

  let storage = 0;
  const seen = new Set<string>();
  let unique = true;
  versions.forEach((v, i) => {
    const vp = index('spec.versions', i);
    if (v.storage) storage++;
    if (seen.has(v.name)) unique = false;
    seen.add(v.name);
    const nameErrs = dns1035(String(v.name ?? ''));
    if (nameErrs) errs.push(fe.invalid(child(vp, 'name'), v.name ?? '', nameErrs));
    // validateCustomResourceDefinitionVersion
    if (!v.deprecated && v.deprecationWarning !== undefined) errs.push(fe.invalid(child(vp, 'deprecationWarning'), v.deprecationWarning, 'can only be set for deprecated versions'));
    else if (v.deprecationWarning !== undefined) {
      if (v.deprecationWarning.length > 256) errs.push(fe.invalid(child(vp, 'deprecationWarning'), v.deprecationWarning, 'must be <= 256 characters long'));
      if (v.deprecationWarning.length === 0) errs.push(fe.invalid(child(vp, 'deprecationWarning'), v.deprecationWarning, 'must not be an empty string'));
    }
    const subresources = int.perVersionSubresources ? v.subresources : int.subresources;
    if (int.perVersionSchema && isObj(v.schema?.openAPIV3Schema)) {
      errs.push(...validateValidation(v.schema!.openAPIV3Schema!, isObj(subresources?.status), child(vp, 'schema')));
    }
    if (int.perVersionSubresources) errs.push(...validateSubresources(v.subresources, child(vp, 'subresources')));
    if (int.perVersionColumns) (v.additionalPrinterColumns ?? []).forEach((c, j) => errs.push(...validateColumn(c, index(child(vp, 'additionalPrinterColumns'), j))));
  });
  if (!unique) errs.push(fe.invalid('spec.versions', versionsValue(versions), 'must contain unique version names'));
  if (storage !== 1) errs.push(fe.invalid('spec.versions', versionsValue(versions), 'must have exactly one version marked as storage version'));
  // The internal spec.version is versions[0].name, validated again.
  if (versions.length && dns1035(String(versions[0]!.name ?? ''))) errs.push(fe.invalid('spec.version', versions[0]!.name ?? '', dns1035(String(versions[0]!.name ?? ''))));

  const names = spec.names ?? {};
  if (!names.plural) errs.push(fe.required('spec.names.plural', ''));
  if (!names.singular) errs.push(fe.required('spec.names.singular', ''));
  if (!names.kind) errs.push(fe.required('spec.names.kind', ''));
  if (!names.listKind) errs.push(fe.required('spec.names.listKind', ''));
  errs.push(...validateNames(names, 'spec.names'));
  const anyStatus = versions.some((v) => isObj(v.subresources?.status));
  if (int.validation) errs.push(...validateValidation(int.validation, anyStatus, 'spec.validation'));
  if (!int.perVersionSubresources) errs.push(...validateSubresources(int.subresources, 'spec.subresources'));
  if (!int.perVersionColumns) (int.columns ?? []).forEach((c, j) => errs.push(...validateColumn(c, index('spec.additionalPrinterColumns', j))));

  const conv = spec.conversion;
  if (conv) {
    if (!conv.strategy) errs.push(fe.required('spec.conversion.strategy', ''));
    else if (conv.strategy !== 'None' && conv.strategy !== 'Webhook') errs.push(fe.notSupported('spec.conversion.strategy', conv.strategy, ['None', 'Webhook']));
    else if (conv.strategy === 'Webhook') {
      errs.push(fe.forbidden('spec.conversion.strategy', 'Webhook conversion is not supported by this server; use None (every version is served from the stored object)'));
    } else if (conv.webhook?.clientConfig) {
      errs.push(fe.forbidden('spec.conversion.webhookClientConfig', 'should not be set when strategy is not set to Webhook'));
    } else if (conv.webhook?.conversionReviewVersions?.length) {
      errs.push(fe.forbidden('spec.conversion.conversionReviewVersions', 'should not be set when strategy is not set to Webhook'));
    }
  }
  return errs;
}

/** spec.versions as kube prints it in a field error (a Go slice of structs, as JSON). */
function versionsValue(versions: CustomResourceDefinition['spec']['versions']): { goJSON: string } {
  return { goJSON: JSON.stringify(versions) };
}

export function validateNames(names: CustomResourceDefinitionNames, path: string): FieldError[] {
  const errs: FieldError[] = [];
  if (names.plural && dns1035(names.plural)) errs.push(fe.invalid(child(path, 'plural'), names.plural, dns1035(names.plural)));
  if (names.singular && dns1035(names.singular)) errs.push(fe.invalid(child(path, 'singular'), names.singular, dns1035(names.singular)));
  if (names.kind && dns1035(names.kind.toLowerCase())) errs.push(fe.invalid(child(path, 'kind'), names.kind, `may have mixed case, but should otherwise match: ${dns1035(names.kind.toLowerCase())}`));
  if (names.listKind && dns1035(names.listKind.toLowerCase())) {
    errs.push(fe.invalid(child(path, 'listKind'), names.listKind, `may have mixed case, but should otherwise match: ${dns1035(names.listKind.toLowerCase())}`));
  }
  (names.shortNames ?? []).forEach((s, i) => {
    if (dns1035(s)) errs.push(fe.invalid(index(child(path, 'shortNames'), i), s, dns1035(s)));
  });
  if (names.kind && names.kind === names.listKind) errs.push(fe.invalid(child(path, 'listKind'), names.listKind, 'kind and listKind may not be the same'));
  (names.categories ?? []).forEach((s, i) => {
    if (dns1035(s)) errs.push(fe.invalid(index(child(path, 'categories'), i), s, dns1035(s)));
  });
  return errs;
}

function validateStatus(crd: CustomResourceDefinition): FieldError[] {
  return validateNames(crd.status?.acceptedNames ?? {}, 'status.acceptedNames');
}

function validateStoredVersions(crd: CustomResourceDefinition): FieldError[] {
  const stored = crd.status?.storedVersions ?? [];
  const path = 'status.storedVersions';
  if (stored.length === 0) return [fe.invalid(path, stored, 'must have at least one stored version')];
  const errs: FieldError[] = [];
  const left = new Map(stored.map((v, i) => [v, i]));
  for (const v of crd.spec.versions ?? []) {
    if (v.storage && !left.has(v.name)) errs.push(fe.invalid(path, stored, `must have the storage version ${v.name}`));
    left.delete(v.name);
  }
  for (const [v, i] of left) {
    errs.push(fe.invalid(index(path, i), v, `missing from spec.versions; ${v} was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in ${v} and removes ${v} from status.storedVersions`));
  }
  return errs;
}

function validateAPIApproval(crd: CustomResourceDefinition, old: CustomResourceDefinition | undefined): FieldError[] {
  const g = crd.spec.group ?? '';
  const protectedGroup = g === 'k8s.io' || g === 'kubernetes.io' || g.endsWith('.k8s.io') || g.endsWith('.kubernetes.io');
  if (!protectedGroup) return [];
  const annotation = 'api-approved.kubernetes.io';
  const value = (a: unknown): string | undefined => (isObj(a) && typeof a[annotation] === 'string' ? a[annotation] : undefined);
  const cur = value(crd.metadata?.annotations);
  if (old && cur === value(old.metadata?.annotations)) return [];
  const path = key('metadata.annotations', annotation);
  if (cur === undefined) return [fe.required(path, `protected groups must have approval annotation "${annotation}", see https://github.com/kubernetes/enhancements/pull/1111`)];
  if (cur.startsWith('unapproved')) return [];
  if (!/^https?:\/\//.test(cur)) return [fe.invalid(path, cur, `protected groups must have approval annotation "${annotation}" with either a URL or a reason starting with "unapproved", see https://github.com/kubernetes/enhancements/pull/1111`)];
  return [];
}

function validatePreserveUnknownFields(crd: CustomResourceDefinition): FieldError[] {
  if (crd.spec.preserveUnknownFields === true) {
    return [fe.invalid('spec.preserveUnknownFields', true, 'cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead')];
  }
  return [];
}

export function validateSubresources(sub: CustomResourceSubresources | undefined, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const scale = sub?.scale;
  if (!isObj(scale)) return errs;
  const check = (p: string | undefined, name: string, under: string[], msg: string, required: boolean): void => {
    const fp = child(path, `scale.${name}`);
    if (!p) {
      if (required) errs.push(fe.required(fp, ''));
      return;
    }
    const simple = simpleJSONPathErrors(p, fp);
    if (simple.length) errs.push(...simple);
    else if (!under.some((u) => p.startsWith(u))) errs.push(fe.invalid(fp, p, msg));
  };
  check(scale.specReplicasPath, 'specReplicasPath', ['.spec.'], 'should be a json path under .spec', true);
  check(scale.statusReplicasPath, 'statusReplicasPath', ['.status.'], 'should be a json path under .status', true);
  check(scale.labelSelectorPath, 'labelSelectorPath', ['.spec.', '.status.'], 'should be a json path under either .spec or .status', false);
  return errs;
}

function simpleJSONPathErrors(s: string, path: string): FieldError[] {
  if (s.length === 0) return [fe.invalid(path, s, 'must not be empty')];
  if (s[0] !== '.') return [fe.invalid(path, s, 'must be a simple json path starting with .')];
  return [];
}

export function validateColumn(col: NonNullable<Internal['columns']>[number], path: string): FieldError[] {
  const errs: FieldError[] = [];
  if (!col.name) errs.push(fe.required(child(path, 'name'), ''));
  if (!col.type) errs.push(fe.required(child(path, 'type'), `must be one of ${PRINTER_COLUMN_TYPES.join(',')}`));
  else if (!PRINTER_COLUMN_TYPES.includes(col.type)) errs.push(fe.invalid(child(path, 'type'), col.type, `must be one of ${PRINTER_COLUMN_TYPES.join(',')}`));
  if (col.format && !PRINTER_COLUMN_FORMATS.includes(col.format)) errs.push(fe.invalid(child(path, 'format'), col.format, `must be one of ${PRINTER_COLUMN_FORMATS.join(',')}`));
  // As upstream: the internal field is JSONPath, and so is the error path.
  if (!col.jsonPath) errs.push(fe.required(child(path, 'JSONPath'), ''));
  else errs.push(...simpleJSONPathErrors(col.jsonPath, child(path, 'JSONPath')));
  return errs;
}

/** validateCustomResourceDefinitionValidation: one schema (path ends before .openAPIV3Schema). */
function validateValidation(schema: JSONSchemaProps, statusEnabled: boolean, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const sp = child(path, 'openAPIV3Schema');
  if (!isObj(schema)) return errs;
  if (statusEnabled) {
    for (const [json, goName] of GO_FIELDS) {
      const v = (schema as Record<string, unknown>)[json];
      if (v === undefined || v === null || v === false || v === '' || (Array.isArray(v) && v.length === 0) || (isObj(v) && Object.keys(v).length === 0)) continue;
      if (goName === 'Type') {
        if (schema.type !== 'object') {
          errs.push(fe.invalid(child(path, 'openAPIV3Schema.type'), schema.type, 'only "object" is allowed as the type at the root of the schema if the status subresource is enabled'));
          break;
        }
        continue;
      }
      if (!ALLOWED_AT_ROOT.includes(goName)) {
        errs.push(fe.invalid(sp, { goJSON: JSON.stringify(schema) }, `only [${ALLOWED_AT_ROOT.join(' ')}] fields are allowed at the root of the schema if the status subresource is enabled`));
        break;
      }
    }
  }
  if (schema.nullable) errs.push(fe.forbidden(child(path, 'openAPIV3Schema.nullable'), 'nullable cannot be true at the root'));
  let celOK = false;
  const structural = validateStructural(sp, schema);
  if (structural.length) errs.push(...structural);
  else {
    const defaults = validateDefaults(schema, sp);
    if (defaults.length) errs.push(...defaults);
    else celOK = true;
  }
  const schemaErrs = openAPISchemaErrors(schema, sp, { isRoot: true, insideMeta: false, allowDefaults: true, disallowReason: '' });
  errs.push(...schemaErrs);
  if (celOK && schemaErrs.length === 0) errs.push(...compileSchemaRules(schema, sp).errors);
  return errs;
}

/** structuraldefaulting.ValidateDefaults: defaults must be pruned and valid against their schema. */
function validateDefaults(schema: JSONSchemaProps, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const walk = (s: JSONSchemaProps, p: string, insideMeta: boolean): void => {
    if (!isObj(s)) return;
    if (s.default !== undefined && s.default !== null && !insideMeta) {
      const pruned = deepCopy(s.default);
      prune(pruned, s, s['x-kubernetes-embedded-resource'] === true);
      if (!jsonEqual(pruned, s.default)) errs.push(fe.invalid(child(p, 'default'), s.default, 'must not have unknown fields'));
      else errs.push(...validateSchema(s, s.default, child(p, 'default')));
    }
    const items = itemsOf(s);
    if (items) walk(items, child(p, 'items'), insideMeta);
    for (const [k, ps] of Object.entries(isObj(s.properties) ? s.properties : {})) {
      walk(ps, key(child(p, 'properties'), k), insideMeta || (p === path && ['metadata', 'apiVersion', 'kind'].includes(k)));
    }
  };
  walk(schema, path, false);
  return errs;
}

interface SSV {
  isRoot: boolean;
  insideMeta: boolean;
  allowDefaults: boolean;
  disallowReason: string;
}

/** ValidateCustomResourceDefinitionOpenAPISchema (schema errors; CEL compile errors come from cel.ts). */
function openAPISchemaErrors(s: JSONSchemaProps | undefined, path: string, ssv: SSV): FieldError[] {
  if (!isObj(s)) return [];
  const errs: FieldError[] = [];
  // specStandardValidatorV3.validate
  if (typeof s.type === 'string' && s.type && !OPENAPI_V3_TYPES.includes(s.type)) {
    if (s.type === 'null') errs.push(fe.forbidden(child(path, 'type'), 'type cannot be set to null, use nullable as an alternative'));
    else errs.push(fe.notSupported(child(path, 'type'), s.type, OPENAPI_V3_TYPES));
  }
  if (s.default !== undefined && s.default !== null && !ssv.allowDefaults) {
    errs.push(fe.forbidden(child(path, 'default'), `must not be set${ssv.disallowReason ? ` ${ssv.disallowReason}` : ''}`));
  }
  if (s.id) errs.push(fe.forbidden(child(path, 'id'), 'id is not supported'));
  if (s.additionalItems !== undefined) errs.push(fe.forbidden(child(path, 'additionalItems'), 'additionalItems is not supported'));
  if (isObj(s.patternProperties) && Object.keys(s.patternProperties).length) errs.push(fe.forbidden(child(path, 'patternProperties'), 'patternProperties is not supported'));
  if (isObj(s.definitions) && Object.keys(s.definitions).length) errs.push(fe.forbidden(child(path, 'definitions'), 'definitions is not supported'));
  if (s.dependencies !== undefined) errs.push(fe.forbidden(child(path, 'dependencies'), 'dependencies is not supported'));
  if (s.$ref !== undefined) errs.push(fe.forbidden(child(path, '$ref'), '$ref is not supported'));
  if (Array.isArray(s.items)) errs.push(fe.forbidden(child(path, 'items'), 'items must be a schema object and not an array'));
  if (ssv.insideMeta && s['x-kubernetes-embedded-resource']) errs.push(fe.forbidden(child(path, 'x-kubernetes-embedded-resource'), 'must not be used inside of resource meta'));

  if (s.uniqueItems) errs.push(fe.forbidden(child(path, 'uniqueItems'), 'uniqueItems cannot be set to true since the runtime complexity becomes quadratic'));
  const props = isObj(s.properties) ? s.properties : {};
  if (s.additionalProperties !== undefined) {
    if (Object.keys(props).length && s.additionalProperties !== true) {
      errs.push(fe.forbidden(child(path, 'additionalProperties'), 'additionalProperties and properties are mutual exclusive'));
    }
    const sub = ssv.insideMeta ? { ...ssv, allowDefaults: false, disallowReason: 'inside additionalProperties applying to object metadata' } : ssv;
    errs.push(...openAPISchemaErrors(additionalPropertiesOf(s), child(path, 'additionalProperties'), { ...sub, isRoot: false }));
  }
  for (const k of Object.keys(props).sort()) {
    let sub: SSV = { ...ssv, isRoot: false };
    if ((ssv.isRoot || s['x-kubernetes-embedded-resource']) && ['metadata', 'kind', 'apiVersion'].includes(k)) {
      sub = { ...sub, insideMeta: true };
      if (ssv.isRoot) sub = { ...sub, allowDefaults: false, disallowReason: `in top-level ${k}` };
    }
    errs.push(...openAPISchemaErrors(props[k], key(child(path, 'properties'), k), sub));
  }
  const nested = { ...ssv, isRoot: false };
  if (isObj(s.not)) errs.push(...openAPISchemaErrors(s.not, child(path, 'not'), nested));
  for (const j of ['allOf', 'oneOf', 'anyOf'] as const) (Array.isArray(s[j]) ? s[j]! : []).forEach((x, i) => errs.push(...openAPISchemaErrors(x, index(child(path, j), i), nested)));
  const items = itemsOf(s);
  if (items) errs.push(...openAPISchemaErrors(items, child(path, 'items'), nested));

  if (s['x-kubernetes-preserve-unknown-fields'] === false) errs.push(fe.invalid(child(path, 'x-kubernetes-preserve-unknown-fields'), false, 'must be true or undefined'));
  const mapType = s['x-kubernetes-map-type'];
  if (mapType !== undefined && s.type !== 'object') {
    if (!s.type) errs.push(fe.required(child(path, 'type'), 'must be object if x-kubernetes-map-type is specified'));
    else errs.push(fe.invalid(child(path, 'type'), s.type, 'must be object if x-kubernetes-map-type is specified'));
  }
  if (mapType !== undefined && mapType !== 'atomic' && mapType !== 'granular') errs.push(fe.notSupported(child(path, 'x-kubernetes-map-type'), mapType, ['atomic', 'granular']));
  const listType = s['x-kubernetes-list-type'];
  if (listType !== undefined && s.type !== 'array') {
    if (!s.type) errs.push(fe.required(child(path, 'type'), 'must be array if x-kubernetes-list-type is specified'));
    else errs.push(fe.invalid(child(path, 'type'), s.type, 'must be array if x-kubernetes-list-type is specified'));
  } else if (listType === 'set' && items) {
    if (items.type === 'array' && items['x-kubernetes-list-type'] !== undefined && items['x-kubernetes-list-type'] !== 'atomic') {
      errs.push(fe.invalid(child(path, 'items', 'x-kubernetes-list-type'), items['x-kubernetes-list-type'], 'must be atomic as item of a list with x-kubernetes-list-type=set'));
    }
    if (items.type === 'object' && items['x-kubernetes-map-type'] !== 'atomic') {
      // As upstream: the value printed is the items' list type (unset: null).
      errs.push(fe.invalid(child(path, 'items', 'x-kubernetes-map-type'), items['x-kubernetes-list-type'] ?? null, 'must be atomic as item of a list with x-kubernetes-list-type=set'));
    }
  }
  if (listType !== undefined && !['atomic', 'set', 'map'].includes(listType)) errs.push(fe.notSupported(child(path, 'x-kubernetes-list-type'), listType, ['atomic', 'set', 'map']));
  const mapKeys = Array.isArray(s['x-kubernetes-list-map-keys']) ? s['x-kubernetes-list-map-keys'] : [];
  if (mapKeys.length) {
    if (listType === undefined) errs.push(fe.required(child(path, 'x-kubernetes-list-type'), 'must be map if x-kubernetes-list-map-keys is non-empty'));
    else if (listType !== 'map') errs.push(fe.invalid(child(path, 'x-kubernetes-list-type'), listType, 'must be map if x-kubernetes-list-map-keys is non-empty'));
  }
  if (listType === 'map') {
    if (!mapKeys.length) errs.push(fe.required(child(path, 'x-kubernetes-list-map-keys'), 'must not be empty if x-kubernetes-list-type is map'));
    if (s.items === undefined) errs.push(fe.required(child(path, 'items'), 'must have a schema if x-kubernetes-list-type is map'));
    if (items && items.type !== 'object') errs.push(fe.invalid(child(path, 'items', 'type'), items.type ?? '', "must be object if parent array's x-kubernetes-list-type is map"));
    if (items && items.type === 'object') {
      const seen = new Set<string>();
      for (const k of mapKeys) {
        const ks = isObj(items.properties) ? items.properties[k] : undefined;
        if (ks) {
          if (ks.type === 'array' || ks.type === 'object') {
            errs.push(fe.invalid(child(key(child(path, 'items', 'properties'), k), 'type'), items.type, "must be a scalar type if parent array's x-kubernetes-list-type is map"));
          }
        } else errs.push(fe.invalid(child(path, 'x-kubernetes-list-map-keys'), mapKeys, 'entries must all be names of item properties'));
        if (seen.has(k)) errs.push(fe.invalid(child(path, 'x-kubernetes-list-map-keys'), mapKeys, 'must not contain duplicate entries'));
        seen.add(k);
      }
    }
  }
  // validateMapListKeysMapSet
  if (items && (listType === 'set' || listType === 'map')) {
    if (items.nullable) errs.push(fe.forbidden(child(path, 'items', 'nullable'), `cannot be nullable when x-kubernetes-list-type is ${listType}`));
    if (listType === 'map') {
      const req = new Set(Array.isArray(items.required) ? items.required : []);
      for (const k of mapKeys) {
        const ks = isObj(items.properties) ? items.properties[k] : undefined;
        if (!ks) continue;
        if (!req.has(k) && (ks.default === undefined || ks.default === null)) {
          errs.push(fe.required(child(key(child(path, 'items', 'properties'), k), 'default'), 'this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property'));
        }
        if (ks.nullable) errs.push(fe.forbidden(child(key(child(path, 'items', 'properties'), k), 'nullable'), 'this property is in x-kubernetes-list-map-keys, so it cannot be nullable'));
      }
    }
  }
  const rules = Array.isArray(s['x-kubernetes-validations']) ? s['x-kubernetes-validations'] : [];
  rules.forEach((r, i) => {
    const rp = index(child(path, 'x-kubernetes-validations'), i);
    const rule = (r.rule ?? '').trim();
    const msg = (r.message ?? '').trim();
    if (!rule) errs.push(fe.required(child(rp, 'rule'), 'rule is not specified'));
    else if (r.message && !msg) errs.push(fe.invalid(child(rp, 'message'), r.message, 'message must be non-empty if specified'));
    else if (/[\n\r]/.test(msg)) errs.push(fe.invalid(child(rp, 'message'), r.message, 'message must not contain line breaks'));
    else if (/[\n\r]/.test(rule) && !msg) errs.push(fe.required(child(rp, 'message'), 'message must be specified if rule contains line breaks'));
    if (r.messageExpression !== undefined && r.messageExpression !== '' && !r.messageExpression.trim()) {
      errs.push(fe.required(child(rp, 'messageExpression'), 'messageExpression must be non-empty if specified'));
    }
    if (r.reason !== undefined && !SUPPORTED_REASONS.includes(r.reason)) errs.push(fe.notSupported(child(rp, 'reason'), r.reason, SUPPORTED_REASONS));
    if (r.fieldPath !== undefined && r.fieldPath !== '' && !r.fieldPath.trim()) errs.push(fe.invalid(child(rp, 'fieldPath'), r.fieldPath, 'fieldPath must be non-empty if specified'));
    if (r.fieldPath && /[\n\r]/.test(r.fieldPath)) errs.push(fe.invalid(child(rp, 'fieldPath'), r.fieldPath, 'fieldPath must not contain line breaks'));
    else if (r.fieldPath && !fieldPathValid(s, r.fieldPath)) errs.push(fe.invalid(child(rp, 'fieldPath'), r.fieldPath, 'fieldPath must be a valid path'));
  });
  return errs;
}

/** cel.ValidFieldPath: the fieldPath names fields the schema declares. */
function fieldPathValid(s: JSONSchemaProps, fieldPath: string): boolean {
  const re = /\.([A-Za-z_$][\w$-]*)|\[\s*'((?:[^'\\]|\\.)*)'\s*\]|\[(\d+)\]/y;
  let cur: JSONSchemaProps | undefined = s;
  let pos = 0;
  while (pos < fieldPath.length) {
    re.lastIndex = pos;
    const m = re.exec(fieldPath);
    if (!m || !cur) return false;
    pos = re.lastIndex;
    if (m[3] !== undefined) cur = itemsOf(cur);
    else {
      const name = (m[1] ?? m[2])!;
      cur = isObj(cur.properties) && cur.properties[name] ? cur.properties[name] : additionalPropertiesOf(cur);
    }
  }
  return cur !== undefined;
}
