// OpenAPI v2 (Swagger 2.0) at /openapi/v2, as kube-apiserver serves it: one document with every path and
// definition, as JSON or, for kubectl, as protobuf (gnostic's openapi.v2.Document).
//
// kubectl 1.32 reads v3 (openapi.ts) first and falls back to this document when v3 cannot answer:
//   - a `kind: List` file (what `kubectl get -o yaml` writes) is validated item by item against the v2
//     definitions (kube-openapi's pkg/util/proto), so `kubectl apply -f` of such a file needs them;
//   - a kind no v3 document describes (a typo'd kind, a wrong apiVersion) is looked up here, then among
//     CRDs, before kubectl says "no matches for kind ... ensure CRDs are installed first".
// The document is derived from the v3 documents, so paths and schemas are written in one place; only the
// shape differs (body parameters, `#/definitions/` refs, IntOrString and Quantity as v2 strings).
import { createHash } from 'node:crypto';
import protobuf from 'protobufjs/light.js';
import { kinds, type KindRegistry } from '../kinds/index.ts';
import { openapiV3Document, openapiV3Paths } from './openapi.ts';
import type { ApiResponse } from './http.ts';

type Json = any;

// ---- v3 → v2 ------------------------------------------------------------------------------------------

const V3_REF = '#/components/schemas/';
const V2_REF = '#/definitions/';
/** The schema keywords our definitions use; anything else would be silently lost, so it fails instead. */
const SCHEMA_KEYWORDS = new Set(['description', 'type', 'format', '$ref', 'properties', 'items', 'required', 'additionalProperties']);
// What custom resources' schemas (from CRDs) may also say: kept as v2 has them, or dropped where v2 has no
// such keyword, as kube's ToStructuralOpenAPIV2 drops them.
const CR_V2_KEYWORDS = new Set(['enum', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength', 'pattern', 'minItems', 'maxItems', 'uniqueItems', 'multipleOf', 'default', 'title', 'example', 'minProperties', 'maxProperties']);
const CR_V3_ONLY = new Set(['nullable', 'anyOf', 'allOf', 'not']);

function schemaV2(s: Json): Json {
  // IntOrString and Quantity are oneOf [integer|number, string] in v3; v2 has no oneOf, and kube-apiserver
  // publishes them as strings (IntOrString with format int-or-string, which kubectl's validation accepts
  // as either).
  if (s.oneOf) return { ...(s.description ? { description: s.description } : {}), type: 'string', ...(s.format ? { format: s.format } : {}) };
  const out: Json = {};
  for (const [k, v] of Object.entries<Json>(s)) {
    if (k.startsWith('x-')) out[k] = v;
    else if (CR_V2_KEYWORDS.has(k)) out[k] = v;
    else if (CR_V3_ONLY.has(k)) continue;
    else if (!SCHEMA_KEYWORDS.has(k)) throw new Error(`OpenAPI v2: unhandled schema keyword "${k}"`);
    else if (k === '$ref') out[k] = String(v).replace(V3_REF, V2_REF);
    else if (k === 'properties') out[k] = Object.fromEntries(Object.entries<Json>(v).map(([p, ps]) => [p, schemaV2(ps)]));
    else if (k === 'items' || (k === 'additionalProperties' && typeof v === 'object')) out[k] = schemaV2(v);
    else out[k] = v;
  }
  return out;
}

const refV2 = (schema: Json) => ({ $ref: String(schema.$ref).replace(V3_REF, V2_REF) });

function parameterV2(p: Json): Json {
  return { ...(p.description ? { description: p.description } : {}), in: p.in, name: p.name, ...(p.required ? { required: true } : {}), type: p.schema.type, uniqueItems: p.schema.uniqueItems };
}

function operationV2(op: Json): Json {
  const out: Json = {};
  if (op.description) out.description = op.description;
  out.consumes = op.requestBody ? Object.keys(op.requestBody.content) : ['*/*'];
  out.produces = [...new Set(Object.values<Json>(op.responses).flatMap((r) => Object.keys(r.content ?? {})))];
  out.schemes = ['https'];
  out.tags = op.tags;
  out.operationId = op.operationId;
  const params = (op.parameters ?? []).map(parameterV2);
  if (op.requestBody) {
    const schema = Object.values<Json>(op.requestBody.content)[0].schema;
    params.unshift({ in: 'body', name: 'body', required: true, schema: refV2(schema) });
  }
  if (params.length) out.parameters = params;
  out.responses = Object.fromEntries(
    Object.entries<Json>(op.responses).map(([code, r]) => [code, { description: r.description, schema: refV2(Object.values<Json>(r.content)[0].schema) }]),
  );
  for (const [k, v] of Object.entries(op)) if (k.startsWith('x-')) out[k] = v;
  return out;
}

const VERBS = ['get', 'put', 'post', 'delete', 'patch'] as const;

function pathItemV2(item: Json): Json {
  const out: Json = {};
  for (const verb of VERBS) if (item[verb]) out[verb] = operationV2(item[verb]);
  if (item.parameters?.length) out.parameters = item.parameters.map(parameterV2);
  return out;
}

/** The whole v2 document as JSON, built from every v3 document. */
export function openapiV2Document(reg: KindRegistry = kinds): Json {
  const paths: Json = {};
  const definitions: Json = {};
  for (const p of openapiV3Paths(reg)) {
    const d: Json = openapiV3Document(p, reg);
    for (const [path, item] of Object.entries<Json>(d.paths)) paths[path] = pathItemV2(item);
    for (const [name, s] of Object.entries<Json>(d.components.schemas)) definitions[name] ??= schemaV2(s);
  }
  const sorted = (o: Json) => Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));
  return {
    swagger: '2.0',
    info: { title: 'Kubernetes', version: 'unversioned' },
    paths: sorted(paths),
    definitions: sorted(definitions),
    securityDefinitions: { BearerToken: { description: 'Bearer Token authentication', type: 'apiKey', name: 'authorization', in: 'header' } },
    security: [{ BearerToken: [] }],
  };
}

// ---- protobuf (gnostic openapi.v2) ----------------------------------------------------------------------

// The part of gnostic's OpenAPIv2.proto this document uses, as a protobufjs JSON descriptor. The field
// numbers are the wire format (github.com/google/gnostic-models/openapiv2); names are ours. gnostic keeps
// JSON maps as ordered (name, value) lists and any JSON value (vendor extensions) as YAML text.
const str = (id: number) => ({ type: 'string', id });
const strs = (id: number) => ({ type: 'string', id, rule: 'repeated' });
const msg = (type: string, id: number) => ({ type, id });
const msgs = (type: string, id: number) => ({ type, id, rule: 'repeated' });
const named = (value: string) => ({ fields: { name: str(1), value: msg(value, 2) } });

const DESCRIPTOR = {
  nested: {
    Document: {
      fields: {
        swagger: str(1), info: msg('Info', 2), paths: msg('Paths', 8), definitions: msg('Definitions', 9),
        security: msgs('SecurityRequirement', 12), securityDefinitions: msg('SecurityDefinitions', 13),
      },
    },
    Info: { fields: { title: str(1), version: str(2) } },
    Paths: { fields: { path: msgs('NamedPathItem', 2) } },
    NamedPathItem: named('PathItem'),
    PathItem: {
      fields: {
        get: msg('Operation', 2), put: msg('Operation', 3), post: msg('Operation', 4), delete: msg('Operation', 5),
        patch: msg('Operation', 8), parameters: msgs('ParametersItem', 9),
      },
    },
    Operation: {
      fields: {
        tags: strs(1), description: str(3), operationId: str(5), produces: strs(6), consumes: strs(7),
        parameters: msgs('ParametersItem', 8), responses: msg('Responses', 9), schemes: strs(10), vendorExtension: msgs('NamedAny', 13),
      },
    },
    ParametersItem: { fields: { parameter: msg('Parameter', 1) } },
    Parameter: { fields: { bodyParameter: msg('BodyParameter', 1), nonBodyParameter: msg('NonBodyParameter', 2) } },
    BodyParameter: { fields: { description: str(1), name: str(2), in: str(3), required: { type: 'bool', id: 4 }, schema: msg('Schema', 5) } },
    NonBodyParameter: { fields: { queryParameterSubSchema: msg('QueryParameterSubSchema', 3), pathParameterSubSchema: msg('PathParameterSubSchema', 4) } },
    QueryParameterSubSchema: { fields: { required: { type: 'bool', id: 1 }, in: str(2), description: str(3), name: str(4), type: str(6), uniqueItems: { type: 'bool', id: 20 } } },
    PathParameterSubSchema: { fields: { required: { type: 'bool', id: 1 }, in: str(2), description: str(3), name: str(4), type: str(5), uniqueItems: { type: 'bool', id: 19 } } },
    Responses: { fields: { responseCode: msgs('NamedResponseValue', 1) } },
    NamedResponseValue: named('ResponseValue'),
    ResponseValue: { fields: { response: msg('Response', 1) } },
    Response: { fields: { description: str(1), schema: msg('SchemaItem', 2) } },
    SchemaItem: { fields: { schema: msg('Schema', 1) } },
    Definitions: { fields: { additionalProperties: msgs('NamedSchema', 1) } },
    NamedSchema: named('Schema'),
    Schema: {
      fields: {
        ref: str(1), format: str(2), description: str(4), required: strs(19), additionalProperties: msg('AdditionalPropertiesItem', 21),
        type: msg('TypeItem', 22), items: msg('ItemsItem', 23), properties: msg('Properties', 25), vendorExtension: msgs('NamedAny', 31),
      },
    },
    AdditionalPropertiesItem: { fields: { schema: msg('Schema', 1), boolean: { type: 'bool', id: 2 } } },
    TypeItem: { fields: { value: strs(1) } },
    ItemsItem: { fields: { schema: msgs('Schema', 1) } },
    Properties: { fields: { additionalProperties: msgs('NamedSchema', 1) } },
    NamedAny: named('Any'),
    Any: { fields: { yaml: str(2) } },
    SecurityDefinitions: { fields: { additionalProperties: msgs('NamedSecurityDefinitionsItem', 1) } },
    NamedSecurityDefinitionsItem: named('SecurityDefinitionsItem'),
    SecurityDefinitionsItem: { fields: { apiKeySecurity: msg('ApiKeySecurity', 2) } },
    ApiKeySecurity: { fields: { type: str(1), name: str(2), in: str(3), description: str(4) } },
    SecurityRequirement: { fields: { additionalProperties: msgs('NamedStringArray', 1) } },
    NamedStringArray: named('StringArray'),
    StringArray: { fields: { value: strs(1) } },
  },
};

let types: protobuf.Root | undefined;
/** The gnostic message types (tests decode with them too). */
export function openapiV2Types(): protobuf.Root {
  return (types ??= protobuf.Root.fromJSON(DESCRIPTOR as protobuf.INamespace));
}

// JSON is valid YAML, and gnostic's readers (yaml.Unmarshal) take it as such.
const extensions = (o: Json) =>
  Object.entries<Json>(o)
    .filter(([k]) => k.startsWith('x-'))
    .map(([name, v]) => ({ name, value: { yaml: JSON.stringify(v) } }));
const namedList = <T>(o: Json, f: (v: Json) => T) => Object.entries<Json>(o).map(([name, v]) => ({ name, value: f(v) }));

function schemaPb(s: Json): Json {
  const out: Json = {};
  if (s.$ref) out.ref = s.$ref;
  if (s.format) out.format = s.format;
  if (s.description) out.description = s.description;
  if (s.required) out.required = s.required;
  if (s.additionalProperties !== undefined)
    out.additionalProperties = typeof s.additionalProperties === 'boolean' ? { boolean: s.additionalProperties } : { schema: schemaPb(s.additionalProperties) };
  if (s.type) out.type = { value: [s.type] };
  if (s.items) out.items = { schema: [schemaPb(s.items)] };
  if (s.properties) out.properties = { additionalProperties: namedList(s.properties, schemaPb) };
  const ext = extensions(s);
  if (ext.length) out.vendorExtension = ext;
  return out;
}

function parameterPb(p: Json): Json {
  if (p.in === 'body') return { parameter: { bodyParameter: { name: p.name, in: p.in, required: p.required, schema: schemaPb(p.schema) } } };
  const sub = { required: !!p.required, in: p.in, description: p.description, name: p.name, type: p.type, uniqueItems: !!p.uniqueItems };
  return { parameter: { nonBodyParameter: p.in === 'path' ? { pathParameterSubSchema: sub } : { queryParameterSubSchema: sub } } };
}

function operationPb(op: Json): Json {
  return {
    tags: op.tags,
    description: op.description,
    operationId: op.operationId,
    produces: op.produces,
    consumes: op.consumes,
    parameters: (op.parameters ?? []).map(parameterPb),
    responses: { responseCode: namedList(op.responses, (r) => ({ response: { description: r.description, schema: { schema: schemaPb(r.schema) } } })) },
    schemes: op.schemes,
    vendorExtension: extensions(op),
  };
}

function documentPb(doc: Json): Json {
  return {
    swagger: doc.swagger,
    info: doc.info,
    paths: {
      path: namedList(doc.paths, (item) => ({
        ...Object.fromEntries(VERBS.filter((v) => item[v]).map((v) => [v, operationPb(item[v])])),
        parameters: (item.parameters ?? []).map(parameterPb),
      })),
    },
    definitions: { additionalProperties: namedList(doc.definitions, schemaPb) },
    security: doc.security.map((req: Json) => ({ additionalProperties: namedList(req, (scopes) => ({ value: scopes })) })),
    securityDefinitions: { additionalProperties: namedList(doc.securityDefinitions, (d) => ({ apiKeySecurity: d })) },
  };
}

/** The v2 document encoded as gnostic's openapi.v2.Document. */
export function encodeOpenapiV2(doc: Json): Uint8Array {
  const Document = openapiV2Types().lookupType('Document');
  return Document.encode(Document.fromObject(documentPb(doc))).finish();
}

// ---- serving ----------------------------------------------------------------------------------------------

// kube-openapi accepts both spellings of the protobuf media type (kubectl sends the first) and answers with
// the second: Go's mime parser, which client-go runs on the response, rejects the "@".
const PROTOBUF_TYPE = 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf';
const PROTOBUF_TYPES = ['application/com.github.proto-openapi.spec.v2@v1.0+protobuf', PROTOBUF_TYPE];

interface Encoded {
  body: string | Uint8Array;
  etag: string;
}
// Per registry (each ApiServer's custom resources), derived from the served kinds like the v3 documents: a
// kind registered or removed invalidates both encodings.
const encodedBy = new WeakMap<KindRegistry, { json?: Encoded; pb?: Encoded }>();

function encoded(asProtobuf: boolean, reg: KindRegistry): Encoded {
  let cache = encodedBy.get(reg);
  if (!cache) {
    const c: { json?: Encoded; pb?: Encoded } = (cache = {});
    reg.onChange(() => {
      c.json = undefined;
      c.pb = undefined;
    });
    encodedBy.set(reg, cache);
  }
  const make = (body: string | Uint8Array): Encoded => ({ body, etag: `"${createHash('sha512').update(body).digest('hex').toUpperCase()}"` });
  if (asProtobuf) return (cache.pb ??= make(encodeOpenapiV2(openapiV2Document(reg))));
  return (cache.json ??= make(JSON.stringify(openapiV2Document(reg))));
}

/** GET /openapi/v2: protobuf when the Accept header asks for it, JSON otherwise; ETag and 304 as kube-openapi. */
export function openapiV2Response(headers: Record<string, string | undefined>, reg: KindRegistry = kinds): ApiResponse {
  const accept = (headers['accept'] ?? '').split(',').map((t) => t.split(';')[0]!.trim());
  const protobuf = PROTOBUF_TYPES.some((t) => accept.includes(t));
  const e = encoded(protobuf, reg);
  const h = { 'content-type': protobuf ? PROTOBUF_TYPE : 'application/json', etag: e.etag, vary: 'Accept' };
  if ((headers['if-none-match'] ?? '').split(',').map((x) => x.trim()).includes(e.etag)) return { status: 304, headers: h, body: '' };
  return { status: 200, headers: h, body: e.body };
}
