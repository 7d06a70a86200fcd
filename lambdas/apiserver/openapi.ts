// OpenAPI v3, as kube-apiserver 1.32 serves it and kubectl 1.32 reads it:
//   GET /openapi/v3            {"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=<HASH>"}, ...}}
//   GET /openapi/v3/<gv path>  one OpenAPI 3.0 document per group version (and for /api, /apis, /version)
//
// What kubectl uses it for:
//   - apply/diff/edit compute their strategic merge patch from the component schemas' x-kubernetes-patch-*
//     extensions (the same data schema.ts gives patch.ts, so kubectl's patch and Skiff's merge agree);
//   - apply/create/patch/replace look for a `fieldValidation` query parameter on the PATCH operations
//     tagged with the kind's x-kubernetes-group-version-kind; when present they skip client-side
//     validation and send fieldValidation=Strict (every PATCH operation of a kind must list it);
//   - explain renders the component schemas' descriptions.
// kubectl falls back to /openapi/v2 (openapi-v2.ts, derived from these documents) only for what v3 cannot
// answer: List files and unknown kinds. Documents are immutable per hash: the URL carries the content hash
// (sha512, as kube-openapi).
import { createHash } from 'node:crypto';
import type { KindStrategy, ResourceInfo } from '../kinds/kind.ts';
import { kinds, type KindRegistry } from '../kinds/index.ts';
import { schemaClosure, schemaName, SCHEMAS, type OpenAPISchema } from '../machinery/schema.ts';
import { SUBRESOURCES, subresourceKind } from './discovery.ts';
import type { ApiResponse } from './http.ts';

// ---- parameters (texts as Kubernetes publishes them) ------------------------------------------------

interface Parameter {
  name: string;
  in: 'query' | 'path';
  description?: string;
  required?: boolean;
  schema: { type: string; uniqueItems: true };
}

const query = (name: string, type: string, description: string): Parameter => ({ name, in: 'query', description, schema: { type, uniqueItems: true } });

const P = {
  pretty: query('pretty', 'string', "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget)."),
  dryRun: query('dryRun', 'string', 'When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed'),
  fieldManager: query('fieldManager', 'string', 'fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.'),
  fieldManagerPatch: query('fieldManager', 'string', 'fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint. This field is required for apply requests (application/apply-patch) but optional for non-apply patch types (JsonPatch, MergePatch, StrategicMergePatch).'),
  fieldValidation: query('fieldValidation', 'string', 'fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.'),
  force: query('force', 'boolean', 'Force is going to "force" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.'),
  gracePeriodSeconds: query('gracePeriodSeconds', 'integer', 'The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately.'),
  orphanDependents: query('orphanDependents', 'boolean', 'Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned. If true/false, the "orphan" finalizer will be added to/removed from the object\'s finalizers list. Either this field or PropagationPolicy may be set, but not both.'),
  propagationPolicy: query('propagationPolicy', 'string', "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground."),
  allowWatchBookmarks: query('allowWatchBookmarks', 'boolean', 'allowWatchBookmarks requests watch events with type "BOOKMARK". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server\'s discretion. Clients should not assume bookmarks are returned at any specific interval, nor may they assume the server will send any BOOKMARK event during a session. If this is not a watch, this field is ignored.'),
  continue: query('continue', 'string', 'The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue) and the server may reject a continue value it does not recognize. If the specified continue value is no longer valid whether due to expiration (generally five to fifteen minutes) or a configuration change on the server, the server will respond with a 410 ResourceExpired error together with a continue token. If the client needs a consistent list, it must restart their list without the continue field. Otherwise, the client may send another list request with the token received with the 410 error, the server will respond with a list starting from the next key, but from the latest snapshot, which is inconsistent from the previous list results - objects that are created, modified, or deleted after the first list request will be included in the response, as long as their keys are after the "next key".\n\nThis field is not supported when watch is true. Clients may start a watch from the last resourceVersion value returned by the server and not miss any modifications.'),
  fieldSelector: query('fieldSelector', 'string', 'A selector to restrict the list of returned objects by their fields. Defaults to everything.'),
  labelSelector: query('labelSelector', 'string', 'A selector to restrict the list of returned objects by their labels. Defaults to everything.'),
  limit: query('limit', 'integer', 'limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results. Setting a limit may return fewer than the requested amount of items (up to zero items) in the event all requested objects are filtered out and clients should only use the presence of the continue field to determine whether more results are available. Servers may choose not to support the limit argument and will return all of the available results. If limit is specified and the continue field is empty, clients may assume that no more results are available. This field is not supported if watch is true.\n\nThe server guarantees that the objects returned when using continue will be identical to issuing a single list call without a limit - that is, no objects created, modified, or deleted after the first request is issued will be included in any subsequent continued requests. This is sometimes referred to as a consistent snapshot, and ensures that a client that is using limit to receive smaller chunks of a very large result can ensure they see all possible objects. If objects are updated during a chunked list the version of the object that was present at the time the first list result was calculated is returned.'),
  resourceVersion: query('resourceVersion', 'string', 'resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset'),
  resourceVersionMatch: query('resourceVersionMatch', 'string', 'resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset'),
  sendInitialEvents: query('sendInitialEvents', 'boolean', '`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection. Once all such events have been sent, a synthetic "Bookmark" event  will be sent. The bookmark will report the ResourceVersion (RV) corresponding to the set of objects, and be marked with `"k8s.io/initial-events-end": "true"` annotation. Afterwards, the watch stream will proceed as usual, sending watch events corresponding to changes (subsequent to the RV) to objects watched.\n\nWhen `sendInitialEvents` option is set, we require `resourceVersionMatch` option to also be set. The semantic of the watch request is as following: - `resourceVersionMatch` = NotOlderThan\n  is interpreted as "data at least as new as the provided `resourceVersion`"\n  and the bookmark event is send when the state is synced\n  to a `resourceVersion` at least as fresh as the one provided by the ListOptions.\n  If `resourceVersion` is unset, this is interpreted as "consistent read" and the\n  bookmark event is send when the state is synced at least to the moment\n  when request started being processed.\n- `resourceVersionMatch` set to any other value or unset\n  Invalid error is returned.\n\nDefaults to true if `resourceVersion=""` or `resourceVersion="0"` (for backward compatibility reasons) and to false otherwise.'),
  timeoutSeconds: query('timeoutSeconds', 'integer', 'Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.'),
  watch: query('watch', 'boolean', 'Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.'),
  namespace: { name: 'namespace', in: 'path', description: 'object name and auth scope, such as for teams and projects', required: true, schema: { type: 'string', uniqueItems: true } } as Parameter,
  name: (kind: string): Parameter => ({ name: 'name', in: 'path', description: `name of the ${kind}`, required: true, schema: { type: 'string', uniqueItems: true } }),
};

const LIST_PARAMS = [P.allowWatchBookmarks, P.continue, P.fieldSelector, P.labelSelector, P.limit, P.pretty, P.resourceVersion, P.resourceVersionMatch, P.sendInitialEvents, P.timeoutSeconds, P.watch];
const WRITE_PARAMS = [P.dryRun, P.fieldManager, P.fieldValidation];
const PATCH_PARAMS = [P.dryRun, P.fieldManagerPatch, P.fieldValidation, P.force];
const DELETE_PARAMS = [P.dryRun, P.gracePeriodSeconds, P.orphanDependents, P.propagationPolicy];
const DELETECOLLECTION_PARAMS = [...DELETE_PARAMS, P.continue, P.fieldSelector, P.labelSelector, P.limit, P.resourceVersion, P.resourceVersionMatch, P.sendInitialEvents, P.timeoutSeconds];

// ---- documents ------------------------------------------------------------------------------------

type Gvk = { group: string; version: string; kind: string };
type Operation = Record<string, unknown>;
type PathItem = Record<string, unknown>;

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

function must(gvk: Gvk): string {
  const name = schemaName(gvk);
  if (!name) throw new Error(`no schema for ${gvk.group}/${gvk.version}/${gvk.kind}; run scripts/gen-kube-openapi.ts`);
  return name;
}

const META = 'io.k8s.apimachinery.pkg.apis.meta.v1';

function content(schema: string, types: string[]): Record<string, unknown> {
  return Object.fromEntries(types.map((t) => [t, { schema: ref(schema) }]));
}

const OBJECT_TYPES = ['application/json', 'application/yaml'];
const WATCH_TYPES = ['application/json', 'application/json;stream=watch', 'application/yaml'];
const PATCH_TYPES = ['application/apply-patch+yaml', 'application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json'];
// Custom resources take no strategic merge patch (kube's crdHandler: 415).
const CR_PATCH_TYPES = PATCH_TYPES.slice(0, 3);

/** "CoreV1", "CoordinationV1", "RbacAuthorizationV1": the group version part of operation ids. */
function opGroup(group: string, version: string): string {
  const words = (group || 'core').replace(/\.k8s\.io$/, '').split(/[.-]/);
  return words.map(cap).join('') + cap(version);
}
const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
const tagOf = (group: string, version: string) => `${(group || 'core').replace(/\.k8s\.io$/, '').replace(/[.-]/g, '_')}_${version}`;

interface OpSpec {
  verb: 'get' | 'put' | 'post' | 'delete' | 'patch';
  action: string;
  id: string;
  description: string;
  gvk: Gvk;
  params?: Parameter[];
  body?: { schema: string; types: string[] };
  responses: Record<string, { schema: string; types: string[]; description: string }>;
}

function operation(o: OpSpec, tag: string): Operation {
  return {
    description: o.description,
    operationId: o.id,
    ...(o.params ? { parameters: o.params } : {}),
    ...(o.body ? { requestBody: { content: content(o.body.schema, o.body.types), required: true } } : {}),
    responses: Object.fromEntries(
      Object.entries(o.responses).map(([code, r]) => [code, { content: content(r.schema, r.types), description: r.description }]),
    ),
    tags: [tag],
    'x-kubernetes-action': o.action,
    'x-kubernetes-group-version-kind': { group: o.gvk.group, kind: o.gvk.kind, version: o.gvk.version },
  };
}

const ok = (schema: string, types = OBJECT_TYPES) => ({ '200': { schema, types, description: 'OK' } });
const created = (schema: string) => ({ ...ok(schema), '201': { schema, types: OBJECT_TYPES, description: 'Created' } });
const accepted = (schema: string) => ({ ...created(schema), '202': { schema, types: OBJECT_TYPES, description: 'Accepted' } });

/** The operations kube-apiserver installs for one resource (by its verbs) and its subresources. */
function resourcePaths(strategy: KindStrategy, prefix: string, paths: Record<string, PathItem>): void {
  const r = strategy.info;
  const custom = strategy.custom;
  const G = opGroup(r.group, r.version);
  const tag = tagOf(r.group, r.version);
  const gvk: Gvk = { group: r.group, version: r.version, kind: r.kind };
  const kindSchema = custom ? custom.schemas.kind : must(gvk);
  const patchTypes = custom ? CR_PATCH_TYPES : PATCH_TYPES;
  // Create-only kinds (TokenReview) have no list kind.
  const listSchema = custom ? custom.schemas.list : r.verbs.includes('list') || r.verbs.includes('watch') ? must({ ...gvk, kind: r.listKind }) : '';
  const ns = r.namespaced ? 'Namespaced' : '';
  const scope = r.namespaced ? `/namespaces/{namespace}` : '';
  const scopeParams = r.namespaced ? [P.namespace] : [];
  const has = (v: string) => r.verbs.includes(v);
  const add = (path: string, params: Parameter[], ops: OpSpec[]) => {
    if (ops.length === 0) return;
    const item: PathItem = { parameters: params };
    for (const o of ops) item[o.verb] = operation(o, tag);
    paths[path] = item;
  };

  const collection: OpSpec[] = [];
  if (has('deletecollection'))
    collection.push({ verb: 'delete', action: 'deletecollection', id: `delete${G}Collection${ns}${r.kind}`, description: `delete collection of ${r.kind}`, gvk, params: DELETECOLLECTION_PARAMS, body: { schema: `${META}.DeleteOptions`, types: ['application/json'] }, responses: ok(`${META}.Status`) });
  if (has('list'))
    collection.push({ verb: 'get', action: 'list', id: `list${G}${ns}${r.kind}`, description: `list or watch objects of kind ${r.kind}`, gvk, params: LIST_PARAMS.filter((p) => p.name !== 'pretty'), responses: ok(listSchema, WATCH_TYPES) });
  if (has('create'))
    collection.push({ verb: 'post', action: 'post', id: `create${G}${ns}${r.kind}`, description: `create a ${r.kind}`, gvk, params: WRITE_PARAMS, body: { schema: kindSchema, types: ['application/json'] }, responses: accepted(kindSchema) });
  add(`${prefix}${scope}/${r.resource}`, [...scopeParams, P.pretty], collection);

  const item: OpSpec[] = [];
  if (has('delete'))
    item.push({ verb: 'delete', action: 'delete', id: `delete${G}${ns}${r.kind}`, description: `delete a ${r.kind}`, gvk, params: DELETE_PARAMS, body: { schema: `${META}.DeleteOptions`, types: ['application/json'] }, responses: { ...ok(`${META}.Status`), '202': { schema: `${META}.Status`, types: OBJECT_TYPES, description: 'Accepted' } } });
  if (has('get')) item.push({ verb: 'get', action: 'get', id: `read${G}${ns}${r.kind}`, description: `read the specified ${r.kind}`, gvk, responses: ok(kindSchema) });
  if (has('patch'))
    item.push({ verb: 'patch', action: 'patch', id: `patch${G}${ns}${r.kind}`, description: `partially update the specified ${r.kind}`, gvk, params: PATCH_PARAMS, body: { schema: `${META}.Patch`, types: patchTypes }, responses: created(kindSchema) });
  if (has('update'))
    item.push({ verb: 'put', action: 'put', id: `replace${G}${ns}${r.kind}`, description: `replace the specified ${r.kind}`, gvk, params: WRITE_PARAMS, body: { schema: kindSchema, types: ['application/json'] }, responses: created(kindSchema) });
  const itemParams = [P.name(r.kind), ...scopeParams, P.pretty];
  add(`${prefix}${scope}/${r.resource}/{name}`, itemParams, item);

  for (const sub of r.subresources) {
    const facts = SUBRESOURCES[sub];
    // nodes/proxy is a connect operation (a path beyond it, any body): kube describes it with string
    // answers, which no client here reads; left out rather than described wrongly.
    if (!facts || sub === 'proxy') continue;
    const k = subresourceKind(r, sub);
    const subGvk: Gvk = { group: k.group || r.group, version: k.version || r.version, kind: k.kind };
    const subSchema = custom && subGvk.kind === r.kind ? kindSchema : must(subGvk);
    const Sub = cap(sub);
    const ops: OpSpec[] = [];
    const pathParams = [P.name(k.kind), ...scopeParams, P.pretty];
    if (facts.verbs.includes('get')) ops.push({ verb: 'get', action: 'get', id: `read${G}${ns}${r.kind}${Sub}`, description: `read ${sub} of the specified ${r.kind}`, gvk: subGvk, responses: ok(subSchema) });
    if (facts.verbs.includes('patch'))
      ops.push({ verb: 'patch', action: 'patch', id: `patch${G}${ns}${r.kind}${Sub}`, description: `partially update ${sub} of the specified ${r.kind}`, gvk: subGvk, params: PATCH_PARAMS, body: { schema: `${META}.Patch`, types: patchTypes }, responses: created(subSchema) });
    if (facts.verbs.includes('update'))
      ops.push({ verb: 'put', action: 'put', id: `replace${G}${ns}${r.kind}${Sub}`, description: `replace ${sub} of the specified ${r.kind}`, gvk: subGvk, params: WRITE_PARAMS, body: { schema: subSchema, types: ['application/json'] }, responses: created(subSchema) });
    if (facts.verbs.includes('create'))
      ops.push({ verb: 'post', action: 'post', id: `create${G}${ns}${r.kind}${Sub}`, description: `create ${sub} of a ${r.kind}`, gvk: subGvk, params: WRITE_PARAMS, body: { schema: subSchema, types: ['application/json'] }, responses: accepted(subSchema) });
    add(`${prefix}${scope}/${r.resource}/{name}/${sub}`, pathParams, ops);
  }

  if (has('list') && r.namespaced) {
    add(`${prefix}/${r.resource}`, LIST_PARAMS, [
      { verb: 'get', action: 'list', id: `list${G}${r.kind}ForAllNamespaces`, description: `list or watch objects of kind ${r.kind}`, gvk, responses: ok(listSchema, WATCH_TYPES) },
    ]);
  }
  if (has('watch')) {
    const event = `${META}.WatchEvent`;
    add(`${prefix}/watch${scope}/${r.resource}`, [...LIST_PARAMS.slice(0, 5), ...scopeParams, ...LIST_PARAMS.slice(5)], [
      { verb: 'get', action: 'watchlist', id: `watch${G}${ns}${r.kind}List`, description: `watch individual changes to a list of ${r.kind}. deprecated: use the 'watch' parameter with a list operation instead.`, gvk, responses: ok(event, WATCH_TYPES) },
    ]);
    add(`${prefix}/watch${scope}/${r.resource}/{name}`, [...LIST_PARAMS.slice(0, 5), P.name(r.kind), ...scopeParams, ...LIST_PARAMS.slice(5)], [
      { verb: 'get', action: 'watch', id: `watch${G}${ns}${r.kind}`, description: `watch changes to an object of kind ${r.kind}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter.`, gvk, responses: ok(event, WATCH_TYPES) },
    ]);
    if (r.namespaced) {
      add(`${prefix}/watch/${r.resource}`, LIST_PARAMS, [
        { verb: 'get', action: 'watchlist', id: `watch${G}${r.kind}ListForAllNamespaces`, description: `watch individual changes to a list of ${r.kind}. deprecated: use the 'watch' parameter with a list operation instead.`, gvk, responses: ok(event, WATCH_TYPES) },
      ]);
    }
  }
}

/** A GET without parameters answering with one schema (discovery endpoints, /version). */
function simpleGet(id: string, description: string, schema: string, tag: string): PathItem {
  return {
    get: { description, operationId: id, responses: { '200': { content: content(schema, ['application/json', 'application/yaml']), description: 'OK' } }, tags: [tag] },
  };
}

function document(paths: Record<string, PathItem>, extra: Record<string, object> = {}): object {
  const roots = new Set<string>();
  JSON.stringify([paths, extra], (k, v) => {
    if (k === '$ref' && typeof v === 'string') roots.add(v.replace('#/components/schemas/', ''));
    return v;
  });
  const schemas: Record<string, OpenAPISchema> = {};
  for (const name of schemaClosure(roots)) schemas[name] = SCHEMAS[name]!;
  // Custom resources' schemas (from their CRDs), sorted in with the built-in ones.
  Object.assign(schemas, extra);
  const sorted = Object.fromEntries(Object.keys(schemas).sort().map((k) => [k, schemas[k]!]));
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: 'unversioned' },
    paths: Object.fromEntries(Object.keys(paths).sort().map((p) => [p, paths[p]])),
    components: {
      schemas: sorted,
      securitySchemes: { BearerToken: { description: 'Bearer Token authentication', in: 'header', name: 'authorization', type: 'apiKey' } },
    },
    security: [{ BearerToken: [] }],
  };
}

function groupVersionDocument(group: string, version: string, reg: KindRegistry): object | undefined {
  const served = reg.all().filter(({ info: r }) => r.group === group && r.version === version);
  if (served.length === 0) return undefined;
  const prefix = group ? `/apis/${group}/${version}` : `/api/${version}`;
  const paths: Record<string, PathItem> = {
    [`${prefix}/`]: simpleGet(`get${opGroup(group, version)}APIResources`, 'get available resources', `${META}.APIResourceList`, tagOf(group, version)),
  };
  const extra: Record<string, object> = {};
  for (const k of served) {
    resourcePaths(k, prefix, paths);
    Object.assign(extra, k.custom?.schemas.all);
  }
  return document(paths, extra);
}

/** Builds the document a /openapi/v3/<path> serves, or undefined. */
function build(path: string, reg: KindRegistry): object | undefined {
  if (path === 'api') return document({ '/api/': simpleGet('getCoreAPIVersions', 'get available API versions', `${META}.APIVersions`, 'core') });
  if (path === 'apis') return document({ '/apis/': simpleGet('getAPIVersions', 'get available API versions', `${META}.APIGroupList`, 'apis') });
  if (path === 'version') return document({ '/version/': simpleGet('getCodeVersion', 'get the version information for this server', 'io.k8s.apimachinery.pkg.version.Info', 'version') });
  const m = /^api\/([^/]+)$/.exec(path);
  if (m) return groupVersionDocument('', m[1]!, reg);
  const segs = path.split('/');
  if (segs[0] !== 'apis' || segs.length < 2 || segs.length > 3) return undefined;
  const g = reg.groups().find((x) => x.group === segs[1]);
  if (!g) return undefined;
  if (segs.length === 2) {
    const word = opGroup(g.group, '');
    const tag = (g.group.replace(/\.k8s\.io$/, '') || 'core').replace(/[.-]/g, '_');
    return document({ [`/apis/${g.group}/`]: simpleGet(`get${word}APIGroup`, 'get information of a group', `${META}.APIGroup`, tag) });
  }
  return g.versions.includes(segs[2]!) ? groupVersionDocument(g.group, segs[2]!, reg) : undefined;
}

/** The paths listed by /openapi/v3, in the order kube-apiserver sorts them. */
export function openapiV3Paths(reg: KindRegistry = kinds): string[] {
  const out = ['api', 'api/v1', 'apis', 'version'];
  for (const g of reg.groups()) {
    out.push(`apis/${g.group}`);
    for (const v of g.versions) out.push(`apis/${g.group}/${v}`);
  }
  return out.sort();
}

interface Built {
  doc: object;
  json: string;
  hash: string;
}

// Documents per registry (each ApiServer serves its own custom resources over the built-in kinds), derived
// from the served kinds: a kind registered or removed invalidates them all.
const builtBy = new WeakMap<KindRegistry, Map<string, Built>>();
function builtFor(reg: KindRegistry): Map<string, Built> {
  let m = builtBy.get(reg);
  if (!m) {
    const cache = (m = new Map<string, Built>());
    reg.onChange(() => cache.clear());
    builtBy.set(reg, m);
  }
  return m;
}

function get(path: string, reg: KindRegistry = kinds): Built | undefined {
  const built = builtFor(reg);
  let b = built.get(path);
  if (!b) {
    if (!openapiV3Paths(reg).includes(path)) return undefined;
    const doc = build(path, reg);
    if (!doc) return undefined;
    const json = JSON.stringify(doc);
    // kube-openapi's ETag: the upper-case hex SHA-512 of the document.
    b = { doc, json, hash: createHash('sha512').update(json).digest('hex').toUpperCase() };
    built.set(path, b);
  }
  return b;
}

/** The index as sent, kept with the documents until the served kinds change (kubectl asks it often). */
function indexJson(reg: KindRegistry): string {
  const built = builtFor(reg);
  let b = built.get(INDEX);
  if (!b) {
    const doc = openapiV3Index(reg);
    b = { doc, json: JSON.stringify(doc), hash: '' };
    built.set(INDEX, b);
  }
  return b.json;
}
/** The index's key among the documents (no group-version path is empty). */
const INDEX = '';

/** GET /openapi/v3. */
export function openapiV3Index(reg: KindRegistry = kinds): { paths: Record<string, { serverRelativeURL: string }> } {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const p of openapiV3Paths(reg)) paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${get(p, reg)!.hash}` };
  return { paths };
}

/** GET /openapi/v3/<groupVersionPath> ("api/v1", "apis/coordination.k8s.io/v1", ...); undefined if none. */
export function openapiV3Document(groupVersionPath: string, reg: KindRegistry = kinds): object | undefined {
  return get(groupVersionPath.replace(/^\/+|\/+$/g, ''), reg)?.doc;
}

/** The content hash of a document (what ?hash= and the ETag carry). */
export function openapiV3Hash(groupVersionPath: string, reg: KindRegistry = kinds): string | undefined {
  return get(groupVersionPath.replace(/^\/+|\/+$/g, ''), reg)?.hash;
}

/**
 * A complete response for GET /openapi/v3[/<path>] with kube-openapi's caching behaviour: ETag is the
 * quoted hash; If-None-Match with it gives 304; a request with the current ?hash= is immutable for a
 * year; a stale ?hash= is redirected (301) to the current URL. `path` is what follows "/openapi/v3".
 * Undefined when there is no such document (answer 404).
 */
export function openapiV3Response(
  path: string,
  query: URLSearchParams,
  headers: Record<string, string | undefined>,
  reg: KindRegistry = kinds,
): ApiResponse | undefined {
  const p = path.replace(/^\/+|\/+$/g, '');
  if (p === '') return { status: 200, headers: { 'content-type': 'application/json' }, body: indexJson(reg) };
  const b = get(p, reg);
  if (!b) return undefined;
  const etag = `"${b.hash}"`;
  const hash = query.get('hash');
  if (hash && hash !== b.hash) {
    return { status: 301, headers: { location: `/openapi/v3/${p}?hash=${b.hash}`, 'content-type': 'text/html; charset=utf-8' }, body: '' };
  }
  const h: Record<string, string> = { 'content-type': 'application/json', etag, vary: 'Accept' };
  if (hash) {
    h['cache-control'] = 'public, immutable';
    h['expires'] = new Date(Date.now() + 365 * 24 * 3600 * 1000).toUTCString();
  }
  if ((headers['if-none-match'] ?? '').split(',').map((x) => x.trim()).includes(etag)) return { status: 304, headers: h, body: '' };
  return { status: 200, headers: h, body: b.json };
}
