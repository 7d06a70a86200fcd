// OpenAPI v2 at /openapi/v2: the protobuf kubectl reads decodes to the JSON document, the definitions
// obey the rules kube-openapi's parser (pkg/util/proto) enforces before kubectl validates anything with
// them, and the PATCH operations carry what kubectl's QueryParamVerifier looks for.
import { describe, expect, it } from 'vitest';
import { encodeOpenapiV2, openapiV2Document, openapiV2Response, openapiV2Types } from '../lambdas/apiserver/openapi-v2.ts';
import { RESOURCES } from '../lambdas/machinery/resources.ts';

const PB_ACCEPT = 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf';

function decoded(): any {
  const Document = openapiV2Types().lookupType('Document');
  return Document.toObject(Document.decode(encodeOpenapiV2(openapiV2Document())), { defaults: false });
}

/** kube-openapi's ParseSchema rules: a violation makes kubectl reject the whole document. */
function parseErrors(name: string, s: any, definitions: Record<string, unknown>, path = name): string[] {
  const errs: string[] = [];
  if (s.$ref) {
    if (!s.$ref.startsWith('#/definitions/')) errs.push(`${path}: reference to non-definition ${s.$ref}`);
    else if (!(s.$ref.slice('#/definitions/'.length) in definitions)) errs.push(`${path}: unknown model ${s.$ref}`);
    if (s.type) errs.push(`${path}: reference with a type`);
    return errs;
  }
  if (s.type !== undefined && !['object', 'array', 'string', 'integer', 'number', 'boolean'].includes(s.type)) errs.push(`${path}: type ${s.type}`);
  if (s.type === 'array') {
    if (!s.items || Array.isArray(s.items)) errs.push(`${path}: array without exactly one item schema`);
    else errs.push(...parseErrors(name, s.items, definitions, `${path}[]`));
  }
  for (const [p, ps] of Object.entries<any>(s.properties ?? {})) errs.push(...parseErrors(name, ps, definitions, `${path}.${p}`));
  if (s.additionalProperties && typeof s.additionalProperties === 'object') errs.push(...parseErrors(name, s.additionalProperties, definitions, `${path}{}`));
  return errs;
}

describe('/openapi/v2 document', () => {
  const doc = openapiV2Document();

  it('has every definition kube-openapi can parse', () => {
    const errs = Object.entries<any>(doc.definitions).flatMap(([name, s]) => parseErrors(name, s, doc.definitions));
    expect(errs).toEqual([]);
    // The two v3 oneOf types become v2 strings, as kube-apiserver publishes them.
    expect(doc.definitions['io.k8s.apimachinery.pkg.util.intstr.IntOrString']).toMatchObject({ type: 'string', format: 'int-or-string' });
    expect(doc.definitions['io.k8s.apimachinery.pkg.api.resource.Quantity']).toMatchObject({ type: 'string' });
    expect(doc.definitions['io.k8s.apimachinery.pkg.api.resource.Quantity'].format).toBeUndefined();
  });

  it('names each served kind by x-kubernetes-group-version-kind (what kubectl validates a List item against)', () => {
    for (const r of RESOURCES) {
      const hits = Object.values<any>(doc.definitions).filter((s) =>
        (s['x-kubernetes-group-version-kind'] ?? []).some((g: any) => g.group === r.group && g.version === r.version && g.kind === r.kind),
      );
      expect(hits, r.kind).toHaveLength(1);
    }
  });

  it('lists fieldValidation on the PATCH of every patchable kind, with a body parameter on writes', () => {
    const patch = doc.paths['/api/v1/namespaces/{namespace}/pods/{name}'].patch;
    expect(patch['x-kubernetes-group-version-kind']).toEqual({ group: '', kind: 'Pod', version: 'v1' });
    expect(patch.parameters.map((p: any) => p.name)).toEqual(['body', 'dryRun', 'fieldManager', 'fieldValidation', 'force']);
    expect(patch.parameters[0]).toEqual({ in: 'body', name: 'body', required: true, schema: { $ref: '#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch' } });
    expect(patch.consumes).toContain('application/strategic-merge-patch+json');
    expect(patch.responses['200']).toEqual({ description: 'OK', schema: { $ref: '#/definitions/io.k8s.api.core.v1.Pod' } });
    for (const r of RESOURCES.filter((x) => x.verbs.includes('patch'))) {
      const ops = Object.values<any>(doc.paths).filter((item) => item.patch?.['x-kubernetes-group-version-kind']?.kind === r.kind);
      expect(ops.length, r.kind).toBeGreaterThan(0);
      for (const item of ops) expect(item.patch.parameters.map((p: any) => p.name), r.kind).toContain('fieldValidation');
    }
  });
});

describe('/openapi/v2 protobuf (gnostic openapi.v2.Document)', () => {
  const pb = decoded();
  const doc = openapiV2Document();

  it('carries every path and definition of the JSON document', () => {
    expect(pb.swagger).toBe('2.0');
    expect(pb.paths.path.map((p: any) => p.name)).toEqual(Object.keys(doc.paths));
    expect(pb.definitions.additionalProperties.map((d: any) => d.name)).toEqual(Object.keys(doc.definitions));
  });

  it('encodes schemas, refs and vendor extensions as kubectl reads them', () => {
    const def = (name: string) => pb.definitions.additionalProperties.find((d: any) => d.name === name).value;
    const pod = def('io.k8s.api.core.v1.Pod');
    expect(pod.type.value).toEqual(['object']);
    const gvk = pod.vendorExtension.find((e: any) => e.name === 'x-kubernetes-group-version-kind');
    // kubectl parses the YAML text of an extension; JSON is YAML.
    expect(JSON.parse(gvk.value.yaml)).toEqual([{ group: '', kind: 'Pod', version: 'v1' }]);
    const prop = (s: any, n: string) => s.properties.additionalProperties.find((p: any) => p.name === n).value;
    expect(prop(pod, 'spec').ref).toBe('#/definitions/io.k8s.api.core.v1.PodSpec');
    const containers = prop(def('io.k8s.api.core.v1.PodSpec'), 'containers');
    expect(containers.type.value).toEqual(['array']);
    expect(containers.items.schema).toEqual([{ ref: '#/definitions/io.k8s.api.core.v1.Container' }]);
    expect(containers.vendorExtension.map((e: any) => [e.name, JSON.parse(e.value.yaml)])).toEqual(
      expect.arrayContaining([
        ['x-kubernetes-patch-merge-key', 'name'],
        ['x-kubernetes-patch-strategy', 'merge'],
      ]),
    );
    const labels = prop(def('io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta'), 'labels');
    expect(labels.additionalProperties.schema.type.value).toEqual(['string']);
  });

  it('encodes the PATCH parameters QueryParamVerifier walks (NonBodyParameter → QueryParameterSubSchema)', () => {
    const item = pb.paths.path.find((p: any) => p.name === '/api/v1/namespaces/{name}').value;
    const gvk = item.patch.vendorExtension.find((e: any) => e.name === 'x-kubernetes-group-version-kind');
    expect(JSON.parse(gvk.value.yaml)).toEqual({ group: '', kind: 'Namespace', version: 'v1' });
    const names = item.patch.parameters.map((p: any) => p.parameter.nonBodyParameter?.queryParameterSubSchema?.name ?? p.parameter.bodyParameter?.name);
    expect(names).toEqual(['body', 'dryRun', 'fieldManager', 'fieldValidation', 'force']);
    expect(item.parameters.map((p: any) => p.parameter.nonBodyParameter.pathParameterSubSchema?.name ?? p.parameter.nonBodyParameter.queryParameterSubSchema?.name)).toEqual(['name', 'pretty']);
  });
});

describe('GET /openapi/v2', () => {
  it('answers protobuf to kubectl with the media type Go can parse, JSON otherwise, and 304 on a matching ETag', () => {
    const pb = openapiV2Response({ accept: PB_ACCEPT });
    expect(pb.status).toBe(200);
    expect(pb.headers['content-type']).toBe('application/com.github.proto-openapi.spec.v2.v1.0+protobuf');
    expect(pb.body).toBeInstanceOf(Uint8Array);

    const json = openapiV2Response({ accept: 'application/json' });
    expect(json.headers['content-type']).toBe('application/json');
    expect(JSON.parse(json.body as string).swagger).toBe('2.0');
    expect(json.headers['etag']).not.toBe(pb.headers['etag']);

    const again = openapiV2Response({ accept: PB_ACCEPT, 'if-none-match': pb.headers['etag'] });
    expect(again.status).toBe(304);
    expect(again.body).toBe('');
  });
});
