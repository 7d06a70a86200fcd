// Generates lambdas/machinery/kube-openapi.json: the upstream Kubernetes v1.32.0 OpenAPI schemas of the
// kinds Skiff serves (and everything they reference), in OpenAPI v3 form. schema.ts reads it for strategic
// merge patch and field checks; openapi.ts serves it to kubectl. The x-kubernetes-patch-strategy and
// x-kubernetes-patch-merge-key extensions in it are what kube-apiserver publishes from the Go struct tags
// (`patchStrategy:"merge" patchMergeKey:"name"` in k8s.io/api/core/v1/types.go).
//
// Source: the PyPI package kubernetes-validate (Apache-2.0), which ships the v1.32.0 API definitions
// converted to JSON Schema (kubernetes-json-schema/v1.32.0-local/_definitions.json). This script undoes
// that conversion (nullable type unions, added apiVersion/kind enums, #/$defs refs) to get back the shape
// kube-apiserver serves at /openapi/v3.
//
//   npx tsx scripts/gen-kube-openapi.ts                      # pip-downloads kubernetes-validate==1.37.0
//   npx tsx scripts/gen-kube-openapi.ts path/to/_definitions.json
//
// Re-run after adding a kind to lambdas/kinds/index.ts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RESOURCES } from '../lambdas/machinery/resources.ts';
import { SKIFF_SCHEMAS } from '../lambdas/machinery/skiff-openapi.ts';

const KUBERNETES_VERSION = 'v1.32.0';
const PACKAGE = 'kubernetes-validate==1.37.0';
const MEMBER = `kubernetes_validate/kubernetes-json-schema/${KUBERNETES_VERSION}-local/_definitions.json`;
const OUT = join(dirname(fileURLToPath(import.meta.url)), '..', 'lambdas', 'machinery', 'kube-openapi.json');

type Json = any;

function loadDefinitions(): Record<string, Json> {
  let path = process.argv[2];
  if (!path) {
    const dir = mkdtempSync(join(tmpdir(), 'kube-openapi-'));
    execFileSync('pip', ['download', '--no-deps', '--only-binary=:all:', '-q', '-d', dir, PACKAGE], { stdio: 'inherit' });
    const wheel = readdirSync(dir).find((f) => f.endsWith('.whl'));
    if (!wheel) throw new Error(`no wheel downloaded for ${PACKAGE}`);
    execFileSync('python3', ['-c', 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])', join(dir, wheel), MEMBER, dir]);
    path = join(dir, MEMBER);
  }
  const doc = JSON.parse(readFileSync(path, 'utf8'));
  return doc.$defs ?? doc.definitions;
}

const defs = loadDefinitions();

function byGVK(group: string, version: string, kind: string): string {
  const hit = Object.keys(defs).filter((name) =>
    (defs[name]['x-kubernetes-group-version-kind'] ?? []).some(
      (g: Json) => g.group === group && g.version === version && g.kind === kind,
    ),
  );
  // DeleteOptions & co. list many GVKs; the kinds we look up here are unique.
  if (hit.length !== 1) throw new Error(`expected one definition for ${group}/${version}/${kind}, found ${hit.join(', ') || 'none'}`);
  return hit[0]!;
}

// Roots: every served kind and its list, the kinds subresources speak (pods/binding, */scale), and the
// meta types the operations and discovery documents reference.
const roots = new Set<string>();
for (const r of RESOURCES) {
  if (r.group.endsWith('skiff.io') || r.group === 'metrics.k8s.io') continue; // Skiff's own kinds and metrics-server's: SKIFF_SCHEMAS, below
  roots.add(byGVK(r.group, r.version, r.kind));
  if (r.verbs.includes('list')) roots.add(byGVK(r.group, r.version, r.listKind)); // TokenReview has none
}
roots.add(byGVK('', 'v1', 'Binding'));
roots.add(byGVK('autoscaling', 'v1', 'Scale'));
roots.add(byGVK('policy', 'v1', 'Eviction'));
roots.add(byGVK('authentication.k8s.io', 'v1', 'TokenRequest'));
for (const meta of ['DeleteOptions', 'Status', 'WatchEvent', 'Patch', 'APIVersions', 'APIGroupList', 'APIGroup', 'APIResourceList']) {
  roots.add(`io.k8s.apimachinery.pkg.apis.meta.v1.${meta}`);
}
roots.add('io.k8s.apimachinery.pkg.version.Info');

// The two types kubernetes-validate rewrites into JSON Schema oneOfs, as kube-apiserver 1.32 serves them in v3.
const OVERRIDES: Record<string, Json> = {
  'io.k8s.apimachinery.pkg.util.intstr.IntOrString': {
    description:
      'IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML marshalling and unmarshalling, it produces or consumes the inner type.  This allows you to have, for example, a JSON field that can accept a name or number.',
    format: 'int-or-string',
    oneOf: [{ type: 'integer' }, { type: 'string' }],
  },
  'io.k8s.apimachinery.pkg.api.resource.Quantity': {
    description:
      'Quantity is a fixed-point representation of a number. It provides convenient marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() accessors.',
    oneOf: [{ type: 'string' }, { type: 'number' }],
  },
};

function toV3(s: Json, propName?: string): Json {
  if (Array.isArray(s)) return s.map((x) => toV3(x));
  if (!s || typeof s !== 'object') return s;
  const out: Json = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === '$ref') out[k] = String(v).replace('#/$defs/', '#/components/schemas/');
    else if (k === 'type' && Array.isArray(v)) out[k] = v.find((t) => t !== 'null');
    // kubernetes-validate pins apiVersion/kind with an enum; kube-apiserver does not.
    else if (k === 'enum' && (propName === 'apiVersion' || propName === 'kind')) continue;
    else if (k === 'properties') out[k] = Object.fromEntries(Object.entries(v as Json).map(([p, ps]) => [p, toV3(ps, p)]));
    else if (k === 'x-kubernetes-group-version-kind' || k === 'x-kubernetes-unions') out[k] = v;
    else out[k] = toV3(v);
  }
  return out;
}

const schemas: Record<string, Json> = {};
const queue = [...roots];
while (queue.length) {
  const name = queue.pop()!;
  if (schemas[name]) continue;
  if (!defs[name]) throw new Error(`missing definition ${name}`);
  const s = OVERRIDES[name] ?? toV3(defs[name]);
  schemas[name] = s;
  JSON.stringify(s, (k, v) => {
    // JSONSchemaProps (CustomResourceDefinition) has a property named "$ref": only string values are references.
    if (k === '$ref' && typeof v === 'string') queue.push(v.replace('#/components/schemas/', ''));
    return v;
  });
}

// Skiff's own kinds (lambdas/machinery/skiff-openapi.ts), and the upstream schemas they reference.
for (const [name, s] of Object.entries(SKIFF_SCHEMAS)) {
  schemas[name] = s;
  JSON.stringify(s, (k, v) => {
    if (k === '$ref' && typeof v === 'string') queue.push(v.replace('#/components/schemas/', ''));
    return v;
  });
}
while (queue.length) {
  const name = queue.pop()!;
  if (schemas[name]) continue;
  if (!defs[name]) throw new Error(`missing definition ${name}`);
  schemas[name] = OVERRIDES[name] ?? toV3(defs[name]);
  JSON.stringify(schemas[name], (k, v) => {
    if (k === '$ref' && typeof v === 'string') queue.push(v.replace('#/components/schemas/', ''));
    return v;
  });
}

const sorted = Object.fromEntries(Object.keys(schemas).sort().map((k) => [k, schemas[k]]));
const out = {
  source: `Kubernetes ${KUBERNETES_VERSION} OpenAPI definitions (via PyPI ${PACKAGE}, ${MEMBER}); generated by scripts/gen-kube-openapi.ts, do not edit`,
  kubernetesVersion: KUBERNETES_VERSION,
  schemas: sorted,
};
writeFileSync(OUT, JSON.stringify(out, null, 1) + '\n');
console.log(`wrote ${Object.keys(sorted).length} schemas to ${OUT}`);
