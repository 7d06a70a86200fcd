// A custom resource kind: the KindStrategy of one served version of a CustomResourceDefinition, built
// from the apiextensions machinery (lambdas/apiextensions: compileCRDVersion) as kube-apiserver's
// apiextensions-apiserver builds a REST store per CRD version (customresource/strategy.go,
// status_strategy.go, tableconvertor, scale). The apiserver registers one per served version of each
// Established CRD (apiserver/crds.ts); nothing here reads storage.

import { JSONPath } from 'jsonpath-plus';
import { compileCRDVersion, invalidError, type CompiledCRDVersion, type CustomResourceDefinition, type FieldError } from '../../apiextensions/index.ts';
import { col, humanDuration, nameCol, str, type KindTable } from '../../machinery/table.ts';
import type { KubeObject } from '../../machinery/types.ts';
import type { ErrorList } from '../../machinery/validation.ts';
import type { KindStrategy, ResourceInfo, ScaleRules } from '../kind.ts';

type Obj = Record<string, any>;

const CRUD = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

/** kube's OpenAPI definition name of a CRD kind: the group reversed, then version and kind ("com.example.stable.v1.CronTab"). */
export function crdSchemaName(group: string, version: string, kind: string): string {
  return `${group.split('.').reverse().join('.')}.${version}.${kind}`;
}

/** The names a CRD is served under: its accepted names (kube serves status.acceptedNames), else its spec's. */
function servedNames(crd: CustomResourceDefinition): NonNullable<CustomResourceDefinition['spec']['names']> {
  const accepted = crd.status?.acceptedNames;
  return accepted?.plural && accepted.kind ? accepted : crd.spec.names;
}

/** The strategy of custom resources of `crd` in `version` (which must be one of its versions). */
export function customResourceKind(crd: CustomResourceDefinition, version: string): KindStrategy {
  const v = compileCRDVersion(crd, version);
  const names = servedNames(crd);
  const subresources = [...(v.subresources.status ? ['status'] : []), ...(v.scale ? ['scale'] : [])];
  const info: ResourceInfo = {
    group: v.group,
    version: v.version,
    kind: names.kind ?? v.kind,
    listKind: names.listKind ?? `${names.kind}List`,
    resource: names.plural ?? v.plural,
    singular: names.singular || (names.kind ?? v.kind).toLowerCase(),
    namespaced: v.namespaced,
    shortNames: [...(names.shortNames ?? [])],
    categories: [...(names.categories ?? [])],
    verbs: CRUD,
    subresources,
  };
  const fail = (errs: ErrorList, obj: Obj, found: FieldError[]) => {
    // The generic store's ObjectMeta findings and the schema's, as one 422 (repeats dropped).
    const all = [...(errs.list as FieldError[]), ...found];
    if (found.length) throw invalidError(info.kind, info.group, str(obj.metadata?.name), all);
  };
  const kindName = crdSchemaName(info.group, info.version, info.kind);
  const listName = crdSchemaName(info.group, info.version, info.listKind);
  return {
    info,
    // Names are checked by the CRD's schema rules and ObjectMeta validation (cr-validation.ts).
    meta: { name: () => [], kubeFinalizers: false },
    prepareForCreate(obj) {
      // customResourceStrategy.PrepareForCreate: a status subresource means a create carries no status.
      if (v.subresources.status) delete obj.status;
      obj.metadata.generation = 1;
    },
    prepareForUpdate(obj, old, subresource) {
      if (!v.subresources.status) return;
      // The main resource keeps the stored status; the status subresource changes nothing else.
      if (subresource !== 'status') {
        if (old.status === undefined) delete obj.status;
        else obj.status = structuredClone(old.status);
      }
    },
    defaults: (obj) => v.applyDefaults(obj),
    validateCreate: (errs, obj) => fail(errs, obj, v.validate(obj)),
    validateUpdate: (errs, obj, old, opts) => fail(errs, obj, opts.subresource === 'status' ? v.validateStatus(obj, old) : v.validate(obj, old)),
    table: printerTable(v),
    ...(v.scale ? { scale: scaleRules(v) } : {}),
    custom: {
      prune: (obj) => v.prune(obj),
      schemas: { kind: kindName, list: listName, all: publishedSchemas(v, info, kindName, listName) },
      terminating: !!crd.metadata?.deletionTimestamp,
    },
  };
}

// ---- OpenAPI -------------------------------------------------------------------------------------------

const DESC_API_VERSION =
  'APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources';
const DESC_KIND =
  'Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds';

function publishedSchemas(v: CompiledCRDVersion, info: ResourceInfo, kindName: string, listName: string): Record<string, Obj> {
  const gvk = (kind: string) => [{ group: info.group, kind, version: info.version }];
  return {
    [kindName]: { ...v.openAPISchema, 'x-kubernetes-group-version-kind': gvk(info.kind) },
    [listName]: {
      description: `${info.listKind} is a list of ${info.kind}`,
      type: 'object',
      required: ['items'],
      properties: {
        apiVersion: { type: 'string', description: DESC_API_VERSION },
        items: {
          type: 'array',
          description: `List of ${info.resource}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md`,
          items: { $ref: `#/components/schemas/${kindName}` },
        },
        kind: { type: 'string', description: DESC_KIND },
        metadata: { $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta' },
      },
      'x-kubernetes-group-version-kind': gvk(info.listKind),
    },
  };
}

// ---- Table (tableconvertor.go) -------------------------------------------------------------------------

function printerTable(v: CompiledCRDVersion): KindTable {
  const cols = v.printerColumns;
  return {
    columns: () => [
      nameCol(),
      ...cols.map((c) =>
        col(c.name ?? '', c.type ?? '', c.description || `Custom resource definition column (in JSONPath format): ${c.jsonPath}`, c.priority ?? 0, c.format ?? ''),
      ),
    ],
    print: (o, now) => ({ cells: [str(o.metadata?.name), ...cols.map((c) => cell(c.type ?? '', c.jsonPath ?? '', o, now))] }),
  };
}

/** The first value a column's JSONPath finds (kube evaluates `{<jsonPath>}` and takes results[0][0]). */
function firstResult(jsonPath: string, o: Obj): { found: boolean; value?: unknown } {
  let out: unknown[];
  try {
    out = JSONPath({ path: `$${jsonPath.startsWith('.') || jsonPath.startsWith('[') ? '' : '.'}${jsonPath}`, json: o, wrap: true, eval: 'safe' }) as unknown[];
  } catch {
    return { found: false };
  }
  return out.length ? { found: true, value: out[0] } : { found: false };
}

/** cellForJSONValue, and jsonpath's text output for string columns. */
function cell(type: string, jsonPath: string, o: Obj, now: Date): unknown {
  const r = firstResult(jsonPath, o);
  if (!r.found || r.value === undefined) return null;
  const value = r.value;
  switch (type) {
    case 'string':
      if (value === null) return null;
      return typeof value === 'string' ? value : JSON.stringify(value);
    case 'integer':
      if (typeof value === 'number') return Math.trunc(value);
      if (typeof value === 'string' && /^[+-]?\d+$/.test(value)) return Number(value);
      return null;
    case 'number':
      if (typeof value === 'number') return value;
      if (typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value))) return Number(value);
      return null;
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (value === 'true' || value === 'false') return value === 'true';
      return null;
    case 'date': {
      if (typeof value !== 'string') return null;
      const t = Date.parse(value);
      return Number.isNaN(t) ? null : humanDuration(now.getTime() - t);
    }
  }
  return null;
}

// ---- Scale (the scale subresource of custom resources) ---------------------------------------------------

/** ".spec.replicas" -> ["spec", "replicas"] (the paths are simple dotted JSON paths; validation ensures it). */
const segments = (path: string) => path.replace(/^\./, '').split('.').filter(Boolean);

function getPath(o: Obj, path: string): unknown {
  let cur: unknown = o;
  for (const s of segments(path)) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Obj)[s];
  }
  return cur;
}

function setPath(o: Obj, path: string, value: unknown): void {
  const segs = segments(path);
  let cur = o;
  for (const s of segs.slice(0, -1)) {
    if (typeof cur[s] !== 'object' || cur[s] === null) cur[s] = {};
    cur = cur[s];
  }
  cur[segs[segs.length - 1]!] = value;
}

function scaleRules(v: CompiledCRDVersion): ScaleRules {
  const paths = v.scale!;
  return {
    toScale(obj: KubeObject) {
      const m = obj.metadata;
      const spec = getPath(obj, paths.specReplicasPath);
      const status = getPath(obj, paths.statusReplicasPath);
      const selector = paths.labelSelectorPath ? getPath(obj, paths.labelSelectorPath) : undefined;
      return {
        kind: 'Scale',
        apiVersion: 'autoscaling/v1',
        metadata: {
          name: m.name,
          ...(m.namespace ? { namespace: m.namespace } : {}),
          uid: m.uid,
          resourceVersion: m.resourceVersion,
          creationTimestamp: m.creationTimestamp,
        },
        spec: typeof spec === 'number' ? { replicas: spec } : {},
        status: { replicas: typeof status === 'number' ? status : 0, ...(typeof selector === 'string' && selector ? { selector } : {}) },
      };
    },
    setReplicas(obj, replicas) {
      setPath(obj, paths.specReplicasPath, replicas);
    },
  };
}
