// OpenAPI v3: the index points at documents that exist, component schemas carry Kubernetes' patch
// metadata where kubectl looks for it, and every PATCH operation advertises fieldValidation (what
// kubectl's QueryParamVerifierV3 checks before sending fieldValidation=Strict).
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openapiV3Document, openapiV3Hash, openapiV3Index, openapiV3Response } from '../lambdas/apiserver/openapi.ts';
import { RESOURCES, type ResourceInfo } from '../lambdas/machinery/resources.ts';

const gvPath = (r: Pick<ResourceInfo, 'group' | 'version'>) => (r.group ? `apis/${r.group}/${r.version}` : `api/${r.version}`);

function doc(path: string): any {
  const d = openapiV3Document(path);
  expect(d, path).toBeDefined();
  return d;
}

/** client-go openapi3 / strategicpatch.PatchMetaFromOpenAPIV3: the component schema for a GVK. */
function gvkSchema(d: any, group: string, version: string, kind: string): any {
  const hits = Object.values(d.components.schemas).filter((s: any) =>
    (s['x-kubernetes-group-version-kind'] ?? []).some((g: any) => g.group === group && g.version === version && g.kind === kind),
  );
  expect(hits, `${group}/${version}/${kind}`).toHaveLength(1);
  return hits[0];
}

/** Follows a property the way PatchMetaFromOpenAPIV3 does: patch meta on the property, then resolve. */
function lookup(d: any, schema: any, key: string): { meta: any; schema: any } {
  const prop = schema.properties?.[key];
  expect(prop, `field ${key}`).toBeDefined();
  const meta = { strategy: prop['x-kubernetes-patch-strategy'], key: prop['x-kubernetes-patch-merge-key'] };
  let s = prop.allOf?.length === 1 ? prop.allOf[0] : prop;
  if (s.type === 'array') s = s.items;
  if (s.$ref) s = d.components.schemas[s.$ref.replace('#/components/schemas/', '')];
  return { meta, schema: s };
}

describe('/openapi/v3 index', () => {
  it('points at a document for every path, by content hash', () => {
    const index = openapiV3Index();
    expect(Object.keys(index.paths)).toEqual(expect.arrayContaining(['api', 'api/v1', 'apis', 'apis/coordination.k8s.io', 'apis/coordination.k8s.io/v1', 'version']));
    for (const [path, { serverRelativeURL }] of Object.entries(index.paths)) {
      const m = /^\/openapi\/v3\/(.+)\?hash=([0-9A-F]{128})$/.exec(serverRelativeURL);
      expect(m, serverRelativeURL).not.toBeNull();
      expect(m![1]).toBe(path);
      const d = doc(path);
      expect(d.openapi).toBe('3.0.0');
      expect(m![2]).toBe(createHash('sha512').update(JSON.stringify(d)).digest('hex').toUpperCase());
      expect(openapiV3Hash(path)).toBe(m![2]);
    }
    // stable: the same server answers the same hashes
    expect(openapiV3Index()).toEqual(index);
  });

  it('has a group version document for every served resource, and nothing else', () => {
    const index = openapiV3Index();
    for (const r of RESOURCES) expect(index.paths).toHaveProperty([gvPath(r)]);
    expect(openapiV3Document('apis/apps/v2')).toBeUndefined();
    expect(openapiV3Document('api/v2')).toBeUndefined();
    expect(openapiV3Document('nonsense')).toBeUndefined();
  });

  it('documents reference only schemas they contain', () => {
    for (const path of Object.keys(openapiV3Index().paths)) {
      const d = doc(path);
      const refs = new Set<string>();
      JSON.stringify(d, (k, v) => {
        if (k === '$ref' && typeof v === 'string') refs.add(v); // JSONSchemaProps has a property named "$ref"
        return v;
      });
      for (const ref of refs) {
        expect(ref.startsWith('#/components/schemas/'), ref).toBe(true);
        expect(d.components.schemas[ref.replace('#/components/schemas/', '')], `${path}: ${ref}`).toBeDefined();
      }
    }
  });
});

describe('component schemas', () => {
  it('Pod: containers merge by name, env by name, ports by containerPort, tolerations atomic', () => {
    const d = doc('api/v1');
    const podSchema = gvkSchema(d, '', 'v1', 'Pod');
    const spec = lookup(d, podSchema, 'spec').schema;
    const containers = lookup(d, spec, 'containers');
    expect(containers.meta).toEqual({ strategy: 'merge', key: 'name' });
    expect(spec.properties.containers['x-kubernetes-list-type']).toBe('map');
    expect(spec.properties.containers['x-kubernetes-list-map-keys']).toEqual(['name']);
    expect(lookup(d, containers.schema, 'env').meta).toEqual({ strategy: 'merge', key: 'name' });
    expect(lookup(d, containers.schema, 'ports').meta).toEqual({ strategy: 'merge', key: 'containerPort' });
    expect(lookup(d, containers.schema, 'volumeMounts').meta).toEqual({ strategy: 'merge', key: 'mountPath' });
    expect(lookup(d, spec, 'volumes').meta).toEqual({ strategy: 'merge,retainKeys', key: 'name' });
    expect(lookup(d, spec, 'tolerations').meta).toEqual({ strategy: undefined, key: undefined });
    const meta = lookup(d, podSchema, 'metadata').schema;
    expect(lookup(d, meta, 'finalizers').meta).toEqual({ strategy: 'merge', key: undefined });
    expect(lookup(d, meta, 'ownerReferences').meta).toEqual({ strategy: 'merge', key: 'uid' });
  });

  it('Service ports merge by port', () => {
    const d = doc('api/v1');
    const spec = lookup(d, gvkSchema(d, '', 'v1', 'Service'), 'spec').schema;
    expect(lookup(d, spec, 'ports').meta).toEqual({ strategy: 'merge', key: 'port' });
  });

  it('every served kind and its list has a schema with descriptions (kubectl explain)', () => {
    for (const r of RESOURCES) {
      const d = doc(gvPath(r));
      const s = gvkSchema(d, r.group, r.version, r.kind);
      expect(s.description, r.kind).toBeTruthy();
      expect(s.properties.metadata).toBeDefined();
      if (r.verbs.includes('list')) gvkSchema(d, r.group, r.version, r.listKind); // TokenReview has no list
    }
  });

  it('is OpenAPI v3, not the JSON Schema it was converted from', () => {
    const text = JSON.stringify(openapiV3Document('api/v1'));
    expect(text).not.toContain('#/$defs/');
    expect(text).not.toContain('"null"');
    const d = doc('api/v1');
    expect(d.components.schemas['io.k8s.apimachinery.pkg.util.intstr.IntOrString']).toMatchObject({ format: 'int-or-string', oneOf: [{ type: 'integer' }, { type: 'string' }] });
    expect(d.components.schemas['io.k8s.api.core.v1.Pod'].properties.kind).not.toHaveProperty('enum');
  });
});

describe('operations', () => {
  /** kubectl's supportsQueryParamV3: the PATCH operations tagged with the GVK must list the parameter. */
  function patchOps(d: any, r: ResourceInfo) {
    const ops: any[] = [];
    for (const item of Object.values<any>(d.paths)) {
      const gvk = item.patch?.['x-kubernetes-group-version-kind'];
      if (gvk && gvk.group === r.group && gvk.version === r.version && gvk.kind === r.kind) ops.push(item.patch);
    }
    return ops;
  }

  it('every PATCH operation of every kind takes fieldValidation (and dryRun, fieldManager, force)', () => {
    for (const r of RESOURCES.filter((x) => x.verbs.includes('patch'))) {
      const ops = patchOps(doc(gvPath(r)), r);
      expect(ops.length, r.kind).toBeGreaterThan(0);
      for (const op of ops) {
        const params = op.parameters.filter((p: any) => p.in === 'query').map((p: any) => p.name);
        expect(params, op.operationId).toEqual(expect.arrayContaining(['fieldValidation', 'dryRun', 'fieldManager', 'force']));
      }
    }
  });

  it('has the standard operations for pods, with kube-apiserver operation ids', () => {
    const d = doc('api/v1');
    const coll = d.paths['/api/v1/namespaces/{namespace}/pods'];
    expect(coll.get.operationId).toBe('listCoreV1NamespacedPod');
    expect(coll.get['x-kubernetes-action']).toBe('list');
    expect(coll.post.operationId).toBe('createCoreV1NamespacedPod');
    expect(coll.post.parameters.map((p: any) => p.name)).toEqual(expect.arrayContaining(['fieldValidation', 'dryRun', 'fieldManager']));
    expect(coll.delete.operationId).toBe('deleteCoreV1CollectionNamespacedPod');
    const item = d.paths['/api/v1/namespaces/{namespace}/pods/{name}'];
    expect(Object.keys(item).filter((k) => k !== 'parameters').sort()).toEqual(['delete', 'get', 'patch', 'put']);
    expect(item.patch.operationId).toBe('patchCoreV1NamespacedPod');
    expect(item.patch['x-kubernetes-group-version-kind']).toEqual({ group: '', kind: 'Pod', version: 'v1' });
    expect(Object.keys(item.patch.requestBody.content)).toEqual(
      expect.arrayContaining(['application/strategic-merge-patch+json', 'application/merge-patch+json', 'application/json-patch+json', 'application/apply-patch+yaml']),
    );
    expect(item.parameters.map((p: any) => p.name)).toEqual(['name', 'namespace', 'pretty']);
    expect(d.paths['/api/v1/pods'].get.operationId).toBe('listCoreV1PodForAllNamespaces');
    expect(d.paths['/api/v1/namespaces/{namespace}/pods/{name}/binding'].post['x-kubernetes-group-version-kind']).toEqual({ group: '', kind: 'Binding', version: 'v1' });
    const scale = d.paths['/api/v1/namespaces/{namespace}/replicationcontrollers/{name}/scale'];
    expect(scale.patch['x-kubernetes-group-version-kind']).toEqual({ group: 'autoscaling', kind: 'Scale', version: 'v1' });
    expect(d.components.schemas['io.k8s.api.autoscaling.v1.Scale']).toBeDefined();
  });

  it('follows the verbs: namespaces have no deletecollection, nodes are cluster-scoped', () => {
    const d = doc('api/v1');
    expect(d.paths['/api/v1/namespaces'].delete).toBeUndefined();
    expect(d.paths['/api/v1/namespaces/{name}/finalize'].put.operationId).toBe('replaceCoreV1NamespaceFinalize');
    expect(d.paths['/api/v1/nodes/{name}'].get.operationId).toBe('readCoreV1Node');
    expect(d.paths['/api/v1/nodes/{name}'].parameters.map((p: any) => p.name)).toEqual(['name', 'pretty']);
  });

  it('covers leases in coordination.k8s.io/v1', () => {
    const d = doc('apis/coordination.k8s.io/v1');
    expect(d.paths['/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}'].patch.operationId).toBe('patchCoordinationV1NamespacedLease');
    expect(d.paths['/apis/coordination.k8s.io/v1/'].get.operationId).toBe('getCoordinationV1APIResources');
    expect(Object.keys(d.components.schemas).some((k) => k.startsWith('io.k8s.api.core.'))).toBe(false);
    expect(doc('apis/coordination.k8s.io').paths['/apis/coordination.k8s.io/'].get.operationId).toBe('getCoordinationAPIGroup');
  });

  it('covers the kinds stored as data, with the operation ids and patch metadata kube-apiserver publishes', () => {
    const net = doc('apis/networking.k8s.io/v1');
    expect(net.paths['/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/{name}/status'].patch.operationId).toBe('patchNetworkingV1NamespacedIngressStatus');
    expect(net.paths['/apis/networking.k8s.io/v1/ingressclasses/{name}'].get.operationId).toBe('readNetworkingV1IngressClass');
    expect(net.paths['/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies'].post.operationId).toBe('createNetworkingV1NamespacedNetworkPolicy');
    const pdb = doc('apis/policy/v1');
    expect(pdb.paths['/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/{name}/status'].put.operationId).toBe('replacePolicyV1NamespacedPodDisruptionBudgetStatus');
    // A PDB's selector is replaced, never merged, by a strategic merge patch (patchStrategy "replace").
    expect(gvkSchema(pdb, 'policy', 'v1', 'PodDisruptionBudget')).toBeDefined();
    expect(pdb.components.schemas['io.k8s.api.policy.v1.PodDisruptionBudgetSpec'].properties.selector['x-kubernetes-patch-strategy']).toBe('replace');
    expect(doc('apis/storage.k8s.io/v1').paths['/apis/storage.k8s.io/v1/storageclasses'].get.operationId).toBe('listStorageV1StorageClass');
    expect(doc('apis/scheduling.k8s.io/v1').paths['/apis/scheduling.k8s.io/v1/priorityclasses/{name}'].delete.operationId).toBe('deleteSchedulingV1PriorityClass');
    expect(doc('api/v1').paths['/api/v1/namespaces/{namespace}/podtemplates/{name}'].put.operationId).toBe('replaceCoreV1NamespacedPodTemplate');
  });
});

describe('openapiV3Response', () => {
  it('serves the index and documents with ETag, 304 and immutable caching', () => {
    const index = openapiV3Response('', new URLSearchParams(), {})!;
    expect(index.status).toBe(200);
    expect(JSON.parse(index.body as string)).toEqual(openapiV3Index());

    const hash = openapiV3Hash('api/v1')!;
    const r = openapiV3Response('/api/v1', new URLSearchParams({ hash }), {})!;
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers.etag).toBe(`"${hash}"`);
    expect(r.headers['cache-control']).toBe('public, immutable');
    expect(JSON.parse(r.body as string)).toEqual(openapiV3Document('api/v1'));

    expect(openapiV3Response('api/v1', new URLSearchParams(), { 'if-none-match': `"${hash}"` })!.status).toBe(304);
    const moved = openapiV3Response('api/v1', new URLSearchParams({ hash: 'OLD' }), {})!;
    expect(moved.status).toBe(301);
    expect(moved.headers.location).toBe(`/openapi/v3/api/v1?hash=${hash}`);
    expect(openapiV3Response('apis/apps/v2', new URLSearchParams(), {})).toBeUndefined();
  });
});
