// Hostile requests for the apiserver: fast-check generators and the HTTPS runner, shared by the standing
// fuzz test (test/apiserver.fuzz.test.ts, a few thousand requests per backend in `npm test`) and the long
// run (scripts/fuzz.ts, `npm run fuzz`). Field paths come from the OpenAPI schemas Skiff serves
// (machinery/schema.ts), so a new field or kind is fuzzed without touching this file.

import fc from 'fast-check';
import https from 'node:https';
import { RESOURCES, apiVersionOf, type ResourceInfo } from '../../lambdas/machinery/resources.ts';
import { deref, kindSchema, type OpenAPISchema } from '../../lambdas/machinery/schema.ts';

// ---- field paths from the schemas ----

export type FieldPath = (string | number)[];

/**
 * Every field reachable in a kind's schema: properties, the first element of lists, one key of maps.
 * Recursive types stop where a schema repeats on its own path.
 */
export function fieldPaths(res: Pick<ResourceInfo, 'group' | 'version' | 'kind'>, maxDepth = 10): FieldPath[] {
  const out: FieldPath[] = [];
  const walk = (s: OpenAPISchema | undefined, path: FieldPath, stack: Set<OpenAPISchema>) => {
    const d = deref(s);
    if (!d || stack.has(d) || path.length > maxDepth) return;
    if (path.length) out.push(path);
    const inner = new Set(stack).add(d);
    for (const [k, p] of Object.entries(d.properties ?? {})) walk(p, [...path, k], inner);
    if (d.items) walk(d.items, [...path, 0], inner);
    if (d.additionalProperties && typeof d.additionalProperties === 'object') walk(d.additionalProperties, [...path, 'fuzz.io/k'], inner);
  };
  walk(kindSchema(res), [], new Set());
  return out;
}

/** Served kinds that can be written, with their field paths (computed once). */
export const FUZZ_KINDS: { res: ResourceInfo; paths: FieldPath[] }[] = RESOURCES.map((res) => ({ res, paths: fieldPaths(res) }));

// ---- values ----

// Raw JSON spliced into a body where a marker string stands (deep nesting and huge arrays are cheaper to
// write as text, and JSON.stringify of a 10,000-deep value would overflow this process's own stack).
const RAW = '\u0000fuzz-raw:';
const raw = (text: string) => `${RAW}${text}`;
const spliceRaw = (json: string) =>
  json.replace(/"\\u0000fuzz-raw:((?:[^"\\]|\\.)*)"/g, (_m, s: string) => JSON.parse(`"${s}"`) as string);
/** JSON text of a value, raw markers replaced by their text. */
export function toJson(v: unknown): string {
  return spliceRaw(JSON.stringify(v));
}

const deepArray = (n: number) => raw('['.repeat(n) + ']'.repeat(n));
const deepObject = (n: number) => raw('{"a":'.repeat(n) + '1' + '}'.repeat(n));

/** Numbers at and past the edges of every integer format, and the ones JSON cannot quite say. */
export const EXTREME_NUMBERS = [
  1e308, -1e308, 2 ** 31, 2 ** 31 - 1, -(2 ** 31) - 1, 2 ** 32, 2 ** 53 + 1, -(2 ** 53) - 1, 2 ** 63, 2 ** 64, 1.5, -0, 0, -1,
  5e-324, Number.MAX_SAFE_INTEGER, 1e21, 123456789012345680000,
];

const NASTY_STRINGS = [
  '', ' ', 'NaN', 'Infinity', '-Infinity', '1e308', '-1', '0x10', '1.5', 'true', 'null', '\u0000', '\u202e', '\ud800', '🙂',
  '../../etc/passwd', '%2F..%2F', '/registry/core/pods/default/x', 'a'.repeat(254), 'A_B', '-a-', 'a..b', '*', '${x}', '<script>',
  '{"a":1}', '\r\nX-Injected: 1', '\\', "'", '"', 'ä.example.com', 'exa mple', 'x=y,z!=w', 'in (a,b', '10.96.0.1', '::1', '256.1.1.1',
];

const nastyString = fc.oneof(
  { arbitrary: fc.constantFrom(...NASTY_STRINGS), weight: 4 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 40 }), weight: 2 },
  { arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }), weight: 1 },
  { arbitrary: fc.integer({ min: 1_000, max: 400_000 }).map((n) => 'x'.repeat(n)), weight: 1 },
);

/** A value of any JSON type at the extremes: what goes where a field's real value should. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: fc.constantFrom(...EXTREME_NUMBERS), weight: 5 },
  { arbitrary: fc.double(), weight: 1 },
  { arbitrary: fc.integer(), weight: 1 },
  { arbitrary: nastyString, weight: 4 },
  { arbitrary: fc.constantFrom(null, true, false, {}, [], [null], [{}], { $patch: 'delete' }, { __proto__: { x: 1 } }, { 'fuzz.io/k': 1e308 }), weight: 2 },
  { arbitrary: fc.integer({ min: 10, max: 20_000 }).chain((n) => fc.constantFrom(deepArray(n), deepObject(n))), weight: 1 },
  { arbitrary: fc.integer({ min: 1_000, max: 200_000 }).map((n) => raw(`[${'0,'.repeat(n - 1)}0]`)), weight: 1 },
  { arbitrary: fc.array(fc.constantFrom(...EXTREME_NUMBERS), { maxLength: 8 }), weight: 1 },
);

// ---- objects ----

export const FUZZ_NAMES = ['fz-a', 'fz-b', 'fz-c'];
export const FUZZ_NAMESPACES = ['fuzz', 'default', 'fz-a'];

/** A valid object of the kind, for the fuzzer to spoil one field at a time. */
export function baseObject(res: ResourceInfo, ns: string, name: string): Record<string, any> {
  const meta = { name, ...(res.namespaced ? { namespace: ns } : {}), labels: { app: name } };
  const head = { apiVersion: apiVersionOf(res), kind: res.kind, metadata: meta };
  const podSpec = { containers: [{ name: 'c', image: 'busybox:stable', ports: [{ containerPort: 80 }] }] };
  switch (res.kind) {
    case 'Pod':
      return { ...head, spec: podSpec };
    case 'Service':
      return { ...head, spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 80 }] } };
    case 'ReplicationController':
      return { ...head, spec: { replicas: 1, selector: { app: name }, template: { metadata: { labels: { app: name } }, spec: podSpec } } };
    case 'ConfigMap':
      return { ...head, data: { k: 'v' } };
    case 'Secret':
      return { ...head, data: { k: 'dg==' } };
    case 'Endpoints':
      return { ...head, subsets: [{ addresses: [{ ip: '10.0.0.1' }], ports: [{ port: 80 }] }] };
    case 'EndpointSlice':
      return { ...head, addressType: 'IPv4', endpoints: [{ addresses: ['10.0.0.1'] }], ports: [{ port: 80 }] };
    case 'Event':
      return { ...head, involvedObject: { kind: 'Pod', name, namespace: ns }, reason: 'Fuzz', message: 'm', type: 'Normal' };
    case 'Lease':
      return { ...head, spec: { holderIdentity: 'fuzz', leaseDurationSeconds: 10 } };
    case 'TokenReview':
      return { ...head, spec: { token: 'not-a-token' } };
    // The workload kinds: a valid minimum each (a selector matching the template's labels), so hostile
    // values are tried on objects that would otherwise be stored.
    case 'ReplicaSet':
    case 'Deployment':
      return { ...head, spec: { replicas: 1, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: podSpec } } };
    case 'DaemonSet':
      return { ...head, spec: { selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: podSpec } } };
    case 'StatefulSet':
      return { ...head, spec: { serviceName: name, replicas: 1, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: podSpec } } };
    case 'ControllerRevision':
      return { ...head, revision: 1, data: { spec: { template: { $patch: 'replace' } } } };
    case 'Job':
      return { ...head, spec: { template: { spec: { ...podSpec, restartPolicy: 'Never' } } } };
    case 'CronJob':
      return { ...head, spec: { schedule: '*/5 * * * *', jobTemplate: { spec: { template: { spec: { ...podSpec, restartPolicy: 'OnFailure' } } } } } };
    case 'PersistentVolume':
      return { ...head, spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], hostPath: { path: '/tmp/fuzz' } } };
    case 'PersistentVolumeClaim':
      return { ...head, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } };
    default:
      return head;
  }
}

/** Sets obj at path to v, making the objects and lists on the way (replacing what is not one). */
export function setPath(obj: Record<string, any>, path: FieldPath, v: unknown): void {
  let cur: any = obj;
  for (let i = 0; i < path.length - 1; i++) {
    const k = path[i]!;
    const wantList = typeof path[i + 1] === 'number';
    if (cur[k] === null || typeof cur[k] !== 'object' || Array.isArray(cur[k]) !== wantList) cur[k] = wantList ? [] : {};
    cur = cur[k];
  }
  cur[path.at(-1)!] = v;
}

const kindArb = fc.constantFrom(...FUZZ_KINDS);
const nsArb = fc.oneof({ arbitrary: fc.constantFrom(...FUZZ_NAMESPACES), weight: 9 }, { arbitrary: nastyString, weight: 1 });
const nameArb = fc.oneof({ arbitrary: fc.constantFrom(...FUZZ_NAMES), weight: 9 }, { arbitrary: nastyString, weight: 1 });

/** A kind, namespace and name, and an object of that kind with one to three fields spoilt. */
const spoiltObject = fc
  .tuple(kindArb, nsArb, nameArb)
  .chain(([k, ns, name]) =>
    fc.tuple(
      fc.constant(k),
      fc.constant(ns),
      fc.constant(name),
      fc.array(fc.tuple(fc.constantFrom(...(k.paths.length ? k.paths : [['metadata']])), hostileValue), { minLength: 0, maxLength: 3 }),
      // Mostly the spoilt object is otherwise valid; one time in four the fields are set on a bare {}.
      fc.constantFrom(false, false, false, true),
      // Valid but huge: an RC asking for the largest int32 must not make the loops run away.
      fc.constantFrom(undefined, undefined, undefined, 0, 3, 2 ** 31 - 1),
    ),
  )
  .map(([k, ns, name, spoils, bare, replicas]) => {
    const obj = bare ? {} : baseObject(k.res, typeof ns === 'string' ? ns : 'fuzz', typeof name === 'string' ? name : 'x');
    if (replicas !== undefined && k.res.kind === 'ReplicationController' && !bare) obj.spec.replicas = replicas;
    // Copies: constant values are shared between generated requests and setPath writes into them.
    for (const [p, v] of spoils) setPath(obj, p, structuredClone(v));
    return { res: k.res, ns, name, obj };
  });

// ---- requests ----

export interface FuzzRequest {
  method: string;
  /** Path and query, percent-encoded as a client would send them. */
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** Whether the server may stream the answer (a watch): then only the time to headers is bounded. */
  watch: boolean;
  /** What the request was meant to test, for the report. */
  what: string;
}

// Lone surrogates cannot be percent-encoded as UTF-8; they become U+FFFD in URLs (bodies keep them).
const enc = (s: string) => encodeURIComponent((s as string & { toWellFormed(): string }).toWellFormed());

function collectionPath(res: ResourceInfo, ns: string): string {
  const base = res.group ? `/apis/${res.group}/${res.version}` : `/api/${res.version}`;
  return res.namespaced ? `${base}/namespaces/${enc(ns)}/${res.resource}` : `${base}/${res.resource}`;
}

const CONTENT_TYPES = [
  'application/json',
  'application/yaml',
  'application/vnd.kubernetes.protobuf',
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
  'application/apply-patch+yaml',
  'application/apply-patch+cbor',
  'application/cbor',
  'text/plain',
  'multipart/form-data; boundary=x',
  'application/json; charset=utf-16',
  '',
  '*/*',
  ';;;',
];
const PATCH_TYPES = CONTENT_TYPES.slice(3, 8);

const ACCEPTS = [
  'application/json',
  'application/json;as=Table;v=v1;g=meta.k8s.io',
  'application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json',
  'application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io',
  'application/vnd.kubernetes.protobuf',
  'application/yaml',
  'text/html',
  '*/*',
  'application/json;as=Table;v=v1;g=meta.k8s.io;includeObject=Object',
];

const numberish = fc.oneof(
  fc.constantFrom('-1', '0', '1', '1.5', '1e308', '-0', 'NaN', 'abc', '', '9999999999999999999999', '2147483648', '9007199254740993', '0x10', ' 1'),
  fc.integer().map(String),
);

const continueToken = fc.oneof(
  nastyString,
  fc.record({ v: fc.constantFrom('meta.k8s.io/v1', 'x'), rv: fc.oneof(fc.constantFrom(...EXTREME_NUMBERS), fc.integer()), start: nastyString })
    .map((t) => Buffer.from(JSON.stringify(t)).toString('base64url')),
);

const selector = fc.oneof(
  fc.constantFrom(
    'a=b', 'a!=b', 'a in (b,c)', 'a notin (b)', '!a', 'a', 'a==b', 'a=b,c', 'a=', '=b', 'a in (', 'a in ()', ',,', 'a=b=c',
    'metadata.name=fz-a', 'spec.nodeName=', 'status.phase!=Running', 'metadata.namespace==x', 'nope=1', 'a>1', 'a<1', 'a in (b', '(a)',
    'x'.repeat(10_000), Array.from({ length: 2_000 }, (_, i) => `k${i}=v`).join(','), 'a in (' + 'b,'.repeat(5_000) + 'c)',
  ),
  nastyString,
);

// A parameter no API knows, with a name that itself needs escaping.
const nastyQueryKey = 'x y&\u00e9';

/** Query strings: every list, watch, write and delete option, with bad values. */
const query = fc
  .record(
    {
      labelSelector: selector,
      fieldSelector: selector,
      continue: continueToken,
      limit: numberish,
      resourceVersion: fc.oneof(numberish, fc.constantFrom('0', '1', '18446744073709551616')),
      resourceVersionMatch: fc.constantFrom('NotOlderThan', 'Exact', 'exact', ''),
      timeoutSeconds: numberish,
      gracePeriodSeconds: numberish,
      propagationPolicy: fc.constantFrom('Orphan', 'Background', 'Foreground', 'x', ''),
      orphanDependents: fc.constantFrom('true', 'false', 'x'),
      dryRun: fc.constantFrom('All', 'x', ''),
      fieldManager: fc.oneof(fc.constantFrom('fuzz', ''), nastyString),
      fieldValidation: fc.constantFrom('Strict', 'Warn', 'Ignore', 'strict', 'x'),
      force: fc.constantFrom('true', 'false', 'x'),
      pretty: fc.constantFrom('true', 'x'),
      includeObject: fc.constantFrom('None', 'Metadata', 'Object', 'x'),
      allowWatchBookmarks: fc.constantFrom('true', 'x'),
      sendInitialEvents: fc.constantFrom('true', 'false', 'x'),
      [nastyQueryKey]: nastyString,
    },
    { requiredKeys: [] },
  )
  .map((q) => Object.entries(q).map(([k, v]) => `${enc(k)}=${enc(v as string)}`).join('&'));

/** A JSON Patch (RFC 6902) with ops, pointers and values that mostly do not fit. */
const jsonPatch = (paths: FieldPath[]) =>
  fc.array(
    fc.record(
      {
        op: fc.constantFrom('add', 'remove', 'replace', 'move', 'copy', 'test', 'x', ''),
        path: fc.oneof(
          fc.constantFrom(...(paths.length ? paths : [['metadata']])).map((p) => '/' + p.map((s) => String(s).replace(/~/g, '~0').replace(/\//g, '~1')).join('/')),
          fc.constantFrom('', '/', '/-', '/metadata/labels/~2', '/spec/containers/999999999', '/spec/containers/-1', '/metadata/name', '/kind', '/__proto__/x'),
          nastyString,
        ),
        from: fc.constantFrom('/metadata', '/spec', '', '/x/y', '/metadata/labels'),
        value: hostileValue,
      },
      { requiredKeys: ['op'] },
    ),
    { maxLength: 5 },
  );

/** Strategic-merge directives in the wrong places. */
const smpDirectives = fc.constantFrom(
  { $patch: 'replace' },
  { $patch: 'delete' },
  { $patch: 'x' },
  { spec: { $retainKeys: 1e308 } },
  { spec: { '$setElementOrder/containers': [{ name: 1e308 }, null] } },
  { metadata: { '$deleteFromPrimitiveList/finalizers': 'x' } },
  { spec: { containers: [{ $patch: 'delete' }] } },
  { spec: { containers: { $patch: 'delete' } } },
  { spec: { containers: [{ name: 'c', $patch: 'replace', image: null }] } },
  { metadata: { labels: { $patch: 'delete' } } },
);

function encodeBody(v: unknown, ct: string): Buffer {
  const json = toJson(v);
  // YAML is a superset of JSON: JSON text is a YAML body.
  return Buffer.from(ct.includes('cbor') || ct.includes('protobuf') ? json.slice(0, 64) : json);
}

// Most writes carry no query: nearly every generated query has a bad parameter, and a write refused for
// its query never reaches decoding, validation or the loops.
const writeQuery = fc.oneof({ arbitrary: fc.constant(''), weight: 3 }, { arbitrary: query, weight: 1 });

const writeRequest: fc.Arbitrary<FuzzRequest> = fc
  .tuple(spoiltObject, fc.constantFrom('POST', 'POST', 'PUT', 'PATCH'), writeQuery, fc.constantFrom(...CONTENT_TYPES.slice(0, 3), 'application/json'), fc.constantFrom(...PATCH_TYPES))
  .map(([o, method, q, ct, pct]) => {
    const coll = collectionPath(o.res, typeof o.ns === 'string' ? o.ns : 'fuzz');
    const path = method === 'POST' ? coll : `${coll}/${enc(String(o.name))}`;
    const contentType = method === 'PATCH' ? pct : ct;
    // Applies need a field manager; leave it off sometimes (a 400 is expected then).
    const qs = method === 'PATCH' && pct.startsWith('application/apply') && !q.includes('fieldManager') ? `fieldManager=fuzz&${q}` : q;
    return {
      method,
      path: `${path}?${qs}`,
      headers: { 'content-type': contentType },
      body: encodeBody(o.obj, contentType),
      watch: false,
      what: `${method} ${o.res.kind} (${contentType})`,
    };
  });

const patchRequest: fc.Arbitrary<FuzzRequest> = kindArb.chain((k) =>
  fc
    .tuple(nsArb, nameArb, fc.constantFrom(...PATCH_TYPES), jsonPatch(k.paths), smpDirectives, spoiltObject, fc.constantFrom('', '/status', '/scale'), query)
    .map(([ns, name, ct, ops, smp, o, sub, q]) => {
      const body = ct === 'application/json-patch+json' ? ops : { ...o.obj, ...smp };
      const qs = ct.startsWith('application/apply') ? `fieldManager=fuzz&${q}` : q;
      return {
        method: 'PATCH',
        path: `${collectionPath(k.res, String(ns))}/${enc(String(name))}${sub}?${qs}`,
        headers: { 'content-type': ct },
        body: encodeBody(body, ct),
        watch: false,
        what: `PATCH ${k.res.kind}${sub} (${ct})`,
      };
    }),
);

const readRequest: fc.Arbitrary<FuzzRequest> = fc
  .tuple(kindArb, nsArb, fc.option(nameArb), query, fc.constantFrom(...ACCEPTS), fc.constantFrom('', '', 'watch=true&timeoutSeconds=1&', 'watch=1&'), fc.boolean())
  .map(([k, ns, name, q, accept, watchQ, watchPath]) => {
    let path = collectionPath(k.res, String(ns));
    if (watchPath) path = path.replace(/^(\/apis?\/(?:[^/]+\/)?v1)\//, '$1/watch/');
    if (name !== null) path += `/${enc(String(name))}`;
    return {
      method: 'GET',
      path: `${path}?${watchQ}${q}`,
      headers: { accept },
      watch: watchPath || watchQ !== '',
      what: `GET ${k.res.kind}${watchPath || watchQ ? ' watch' : name !== null ? '' : ' list'}`,
    };
  });

const deleteRequest: fc.Arbitrary<FuzzRequest> = fc
  .tuple(kindArb, nsArb, fc.option(nameArb), query, fc.option(fc.oneof(hostileValue, fc.record({ kind: fc.constant('DeleteOptions'), apiVersion: fc.constant('v1'), gracePeriodSeconds: hostileValue, preconditions: hostileValue, propagationPolicy: hostileValue, dryRun: hostileValue }))))
  .map(([k, ns, name, q, body]) => ({
    method: 'DELETE',
    path: `${collectionPath(k.res, String(ns))}${name !== null ? `/${enc(String(name))}` : ''}?${q}`,
    headers: (body === null ? {} : { 'content-type': 'application/json' }) as Record<string, string>,
    body: body === null ? undefined : Buffer.from(toJson(body)),
    watch: false,
    what: `DELETE ${k.res.kind}${name !== null ? '' : ' collection'}`,
  }));

const subresourceRequest: fc.Arbitrary<FuzzRequest> = fc
  .tuple(
    fc.constantFrom(...FUZZ_KINDS.filter((k) => k.res.subresources.some((s) => s !== 'log'))),
    nsArb,
    nameArb,
    fc.constantFrom('GET', 'PUT', 'POST', 'PATCH'),
    hostileValue,
    spoiltObject,
    fc.constantFrom(...FUZZ_NAMES),
  )
  .chain(([k, ns, name, method, v, o, target]) =>
    fc.constantFrom(...k.res.subresources.filter((s) => s !== 'log')).map((sub) => {
      const body =
        sub === 'binding'
          ? { apiVersion: 'v1', kind: 'Binding', metadata: { name: String(name) }, target: { kind: 'Node', name: v ?? target } }
          : sub === 'scale'
            ? { apiVersion: 'autoscaling/v1', kind: 'Scale', metadata: { name: String(name), namespace: String(ns) }, spec: { replicas: v } }
            : sub === 'eviction'
              ? { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: String(name), namespace: String(ns) }, deleteOptions: { gracePeriodSeconds: v } }
              : o.obj;
      // binding and eviction are create-only subresources.
      const post = sub === 'binding' || sub === 'eviction';
      return {
        method: post ? 'POST' : method,
        path: `${collectionPath(k.res, String(ns))}/${enc(String(name))}/${sub}`,
        headers: { 'content-type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json' },
        body: Buffer.from(toJson(body)),
        watch: false,
        what: `${post ? 'POST' : method} ${k.res.kind}/${sub}`,
      };
    }),
  );

/** Bodies that are not an object at all, under every content type. */
const garbageRequest: fc.Arbitrary<FuzzRequest> = fc
  .tuple(
    kindArb,
    fc.constantFrom('POST', 'PUT', 'PATCH'),
    fc.constantFrom(...CONTENT_TYPES),
    fc.oneof(
      fc.uint8Array({ maxLength: 2_000 }).map((b) => Buffer.from(b)),
      fc.string({ unit: 'binary', maxLength: 500 }).map((s) => Buffer.from(s)),
      fc.constantFrom('{', '[', 'null', '1e308', '""', '{"kind":1}', '{"apiVersion":{},"kind":[]}', '\ufeff{}', '---\n- a\n- b', '!!binary AAAA', '&a [*a]', 'a: &a [*a, *a]', '{"metadata":{"name":{"$ne":1}}}').map((s) => Buffer.from(s)),
      // YAML aliases that expand (the "billion laughs"), and deep YAML and JSON nesting.
      fc.constant(Buffer.from(['a: &a ["x","x","x","x","x","x","x","x","x"]', ...Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`)].join('\n'))),
      fc.integer({ min: 100, max: 200_000 }).map((n) => Buffer.from('['.repeat(n) + ']'.repeat(n))),
      fc.integer({ min: 100, max: 200_000 }).map((n) => Buffer.from('{"a":'.repeat(n) + '1' + '}'.repeat(n))),
      fc.integer({ min: 100, max: 20_000 }).map((n) => Buffer.from('- '.repeat(n) + 'x')),
    ),
    fc.constantFrom(...FUZZ_NAMES),
  )
  .map(([k, method, ct, body, name]) => ({
    method,
    path: `${collectionPath(k.res, 'fuzz')}${method === 'POST' ? '' : `/${name}`}${ct.startsWith('application/apply') ? '?fieldManager=fuzz' : ''}`,
    headers: { 'content-type': ct },
    body,
    watch: false,
    what: `${method} ${k.res.kind} garbage (${ct || 'no type'})`,
  }));

/** Bodies past the server's limit (the server must answer 413 without buffering them whole). */
export const oversizedRequest = (maxBodyBytes: number): fc.Arbitrary<FuzzRequest> =>
  fc.tuple(kindArb, fc.integer({ min: 1, max: 256 * 1024 }), fc.constantFrom('application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf')).map(([k, extra, ct]) => ({
    method: 'POST',
    path: collectionPath(k.res, 'fuzz'),
    headers: { 'content-type': ct },
    body: Buffer.from(`{"a":"${'x'.repeat(maxBodyBytes + extra)}"}`),
    watch: false,
    what: `POST ${k.res.kind} oversized`,
  }));

const pathSegment = fc.oneof(
  fc.constantFrom('api', 'apis', 'v1', 'namespaces', 'pods', 'watch', 'status', 'scale', 'binding', 'log', 'exec', 'proxy', 'finalize', '..', '.', '', '%2e%2e', '%00', '%ff', 'openapi', 'version', 'healthz', 'apps', 'skiff', 'node-credentials'),
  nastyString.map(enc),
);

/** Unknown methods and paths, and known paths with methods they do not take. */
const oddRequest: fc.Arbitrary<FuzzRequest> = fc
  .tuple(
    fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND', 'MKCOL', 'FOO', 'LINK', 'PURGE', 'SEARCH', 'M-SEARCH'),
    fc.array(pathSegment, { minLength: 0, maxLength: 9 }),
    fc.oneof(fc.constant(''), query),
    fc.option(fc.uint8Array({ maxLength: 200 })),
  )
  .map(([method, segs, q, body]) => ({
    method,
    path: `/${segs.join('/')}${q ? `?${q}` : ''}`,
    headers: (body ? { 'content-type': 'application/json' } : {}) as Record<string, string>,
    body: body ? Buffer.from(body) : undefined,
    // Any GET might be a watch path; the fuzzer cannot tell, so it bounds only the time to headers.
    watch: segs.includes('watch') || q.includes('watch'),
    what: `${method} odd path`,
  }));

/** Everything above, weighted towards writes of spoilt objects (where the 1e308 replicas came from). */
export function hostileRequest(opts: { maxBodyBytes: number }): fc.Arbitrary<FuzzRequest> {
  return fc.oneof(
    { arbitrary: writeRequest, weight: 40 },
    { arbitrary: patchRequest, weight: 15 },
    { arbitrary: readRequest, weight: 14 },
    { arbitrary: deleteRequest, weight: 5 },
    { arbitrary: subresourceRequest, weight: 8 },
    { arbitrary: garbageRequest, weight: 10 },
    { arbitrary: oddRequest, weight: 7 },
    { arbitrary: oversizedRequest(opts.maxBodyBytes), weight: 1 },
  );
}

// ---- running ----

export interface FuzzTarget {
  url: string;
  token: string;
  caCert: string;
}

export interface FuzzResult {
  status: number;
  ms: number;
  /** The response body (the first 64 KiB; a watch's is not read). */
  body: string;
  /** A transport failure: reset connection, no answer within the deadline. */
  error?: string;
}

export interface FuzzClient {
  send(req: FuzzRequest): Promise<FuzzResult>;
  close(): void;
}

/** Requests over one keep-alive HTTPS agent, each abandoned after deadlineMs. */
export function fuzzClient(target: FuzzTarget, deadlineMs = 10_000): FuzzClient {
  const agent = new https.Agent({ ca: target.caCert, keepAlive: true, maxSockets: 16 });
  const u = new URL(target.url);
  const send = (r: FuzzRequest) =>
    new Promise<FuzzResult>((resolve) => {
      const t0 = performance.now();
      let done = false;
      const finish = (x: Omit<FuzzResult, 'ms'>) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve({ ...x, ms: performance.now() - t0 });
      };
      const req = https.request({
        agent,
        host: u.hostname,
        port: u.port,
        method: r.method,
        path: r.path,
        headers: { authorization: `Bearer ${target.token}`, ...r.headers, ...(r.body ? { 'content-length': String(r.body.length) } : {}) },
      });
      const timer = setTimeout(() => {
        finish({ status: 0, body: '', error: `no answer within ${deadlineMs} ms` });
        req.destroy();
      }, deadlineMs);
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        if (r.watch && status === 200) {
          // A watch streams until its timeout: its headers are the answer.
          finish({ status, body: '' });
          res.destroy();
          req.destroy();
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          if (size < 65536) chunks.push(c);
          size += c.length;
        });
        res.on('end', () => finish({ status, body: Buffer.concat(chunks).toString('utf8').slice(0, 65536) }));
        res.on('error', (e) => finish({ status, body: '', error: `response: ${e.message}` }));
      });
      req.on('error', (e) => {
        // A reset while sending may be the server refusing a request too large to read (see tooLargeToRead).
        finish({ status: 0, body: '', error: `request: ${(e as NodeJS.ErrnoException).code ?? ''} ${e.message}` });
      });
      req.end(r.body);
    });
  return { send, close: () => agent.destroy() };
}

/** Node's limit on a request's head (request line and headers; kube-apiserver's is 1 MiB): past it, 431. */
export const MAX_HEADER_BYTES = 16 * 1024;

/**
 * Whether the server may refuse the request before reading it whole: a head past MAX_HEADER_BYTES (431)
 * or a body past the limit (413). It answers and closes the connection, and a client still sending then
 * sees the connection reset instead of the answer: for these requests a reset is a refusal, not a failure.
 */
export function tooLargeToRead(req: FuzzRequest, maxBodyBytes: number): boolean {
  const head = req.method.length + req.path.length + Object.entries(req.headers).reduce((n, [k, v]) => n + k.length + v.length + 4, 0);
  return head > MAX_HEADER_BYTES - 1024 || (req.body?.length ?? 0) > maxBodyBytes;
}

/** What is wrong with one answer (undefined when nothing is): a 5xx, no answer, or a slow one. */
export function fuzzFailure(r: FuzzResult, req: FuzzRequest, opts: { maxBodyBytes: number; maxMs?: number }): string | undefined {
  const maxMs = opts.maxMs ?? 5_000;
  if (r.error && /\b(ECONNRESET|EPIPE)\b/.test(r.error) && tooLargeToRead(req, opts.maxBodyBytes)) return undefined;
  if (r.error) return r.error;
  if (r.status >= 500) return `${r.status}: ${r.body.slice(0, 500)}`;
  if (r.ms > maxMs) return `answered in ${Math.round(r.ms)} ms (> ${maxMs})`;
  return undefined;
}

/** A short, replayable description of a request (its body cut to 300 characters). */
export function describeRequest(r: FuzzRequest): string {
  const body = r.body ? ` body(${r.body.length} B)=${r.body.subarray(0, 300).toString('utf8')}` : '';
  return `${r.what}: ${r.method} ${r.path.slice(0, 500)} ${JSON.stringify(r.headers)}${body}`;
}

/** The seed: SKIFF_FUZZ_SEED when set (to replay a failure), otherwise a new one. */
export function fuzzSeed(): number {
  const s = process.env.SKIFF_FUZZ_SEED;
  if (s !== undefined && s !== '') {
    const n = Number(s);
    if (!Number.isInteger(n)) throw new Error(`SKIFF_FUZZ_SEED must be an integer, got ${s}`);
    return n;
  }
  return (Date.now() ^ (Math.random() * 2 ** 31)) | 0;
}
