// Discovery documents: the shapes kube-apiserver 1.32 serves, kinds and verbs of resources and
// subresources, aggregated discovery (apidiscovery.k8s.io/v2) and its negotiation.
import { describe, expect, it } from 'vitest';
import {
  aggregatedDiscovery,
  apiGroup,
  apiGroupList,
  apiResourceList,
  coreApiVersions,
  DISCOVERY_CONTENT_TYPE,
  negotiateDiscovery,
  storageVersionHash,
  versionInfo,
  type APIGroupDiscoveryList,
  type APIResource,
} from '../lambdas/apiserver/discovery.ts';
import { RESOURCES } from '../lambdas/machinery/resources.ts';

const KUBECTL_ACCEPT =
  'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json';

const byName = (list: APIResource[], name: string) => list.find((r) => r.name === name);

describe('/version', () => {
  it('reports Kubernetes 1.32', () => {
    const v = versionInfo();
    expect(v.major).toBe('1');
    expect(v.minor).toBe('32');
    expect(v.gitVersion).toMatch(/^v1\.32\.\d+/);
    expect(v.platform).toMatch(/^[a-z0-9]+\/[a-z0-9]+$/);
    for (const k of ['gitCommit', 'gitTreeState', 'buildDate', 'goVersion', 'compiler']) expect(typeof (v as any)[k]).toBe('string');
  });
});

describe('legacy discovery', () => {
  it('/api lists v1 with server addresses', () => {
    expect(coreApiVersions('10.0.0.1:6443')).toEqual({
      kind: 'APIVersions',
      versions: ['v1'],
      serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '10.0.0.1:6443' }],
    });
  });

  it('/apis lists the named groups with their preferred version', () => {
    const list = apiGroupList();
    expect(list.kind).toBe('APIGroupList');
    expect(list.apiVersion).toBe('v1');
    expect(list.groups.find((g) => g.name === '')).toBeUndefined();
    expect(list.groups).toContainEqual({
      name: 'coordination.k8s.io',
      versions: [{ groupVersion: 'coordination.k8s.io/v1', version: 'v1' }],
      preferredVersion: { groupVersion: 'coordination.k8s.io/v1', version: 'v1' },
    });
  });

  it('/apis/{group} describes one group; unknown groups are undefined', () => {
    expect(apiGroup('coordination.k8s.io')).toEqual({
      kind: 'APIGroup',
      apiVersion: 'v1',
      name: 'coordination.k8s.io',
      versions: [{ groupVersion: 'coordination.k8s.io/v1', version: 'v1' }],
      preferredVersion: { groupVersion: 'coordination.k8s.io/v1', version: 'v1' },
    });
    expect(apiGroup('example.com')).toBeUndefined();
  });

  it('/api/v1 lists every core resource and subresource, sorted, without apiVersion', () => {
    const list = apiResourceList('', 'v1')!;
    expect(list.kind).toBe('APIResourceList');
    expect(list).not.toHaveProperty('apiVersion');
    expect(list.groupVersion).toBe('v1');
    const names = list.resources.map((r) => r.name);
    expect(names).toEqual([...names].sort());
    for (const r of RESOURCES.filter((x) => x.group === '')) {
      expect(names).toContain(r.resource);
      for (const s of r.subresources) expect(names).toContain(`${r.resource}/${s}`);
    }
    expect(byName(list.resources, 'pods')).toEqual({
      name: 'pods',
      singularName: 'pod',
      namespaced: true,
      kind: 'Pod',
      verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
      shortNames: ['po'],
      categories: ['all'],
      storageVersionHash: 'xPOwRZ+Yhw8=', // the value kube-apiserver publishes for pods
    });
    expect(byName(list.resources, 'pods/status')).toEqual({ name: 'pods/status', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get', 'patch', 'update'] });
    expect(byName(list.resources, 'pods/binding')).toMatchObject({ kind: 'Binding', verbs: ['create'] });
    expect(byName(list.resources, 'replicationcontrollers/scale')).toEqual({
      name: 'replicationcontrollers/scale',
      singularName: '',
      namespaced: true,
      group: 'autoscaling',
      version: 'v1',
      kind: 'Scale',
      verbs: ['get', 'patch', 'update'],
    });
    expect(byName(list.resources, 'namespaces')).toMatchObject({ namespaced: false, shortNames: ['ns'], verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'] });
    expect(byName(list.resources, 'namespaces/finalize')).toMatchObject({ kind: 'Namespace', verbs: ['update'] });
    expect(byName(list.resources, 'configmaps')!.storageVersionHash).toBe('qFsyl6wFWjQ=');
    expect(byName(list.resources, 'secrets')).not.toHaveProperty('shortNames');
  });

  it('/apis/coordination.k8s.io/v1 lists leases with apiVersion set', () => {
    const list = apiResourceList('coordination.k8s.io', 'v1')!;
    expect(list.apiVersion).toBe('v1');
    expect(list.groupVersion).toBe('coordination.k8s.io/v1');
    expect(list.resources).toEqual([
      {
        name: 'leases',
        singularName: 'lease',
        namespaced: true,
        kind: 'Lease',
        verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
        storageVersionHash: storageVersionHash({ group: 'coordination.k8s.io', version: 'v1', kind: 'Lease' }),
      },
    ]);
    expect(apiResourceList('coordination.k8s.io', 'v2')).toBeUndefined();
    expect(apiResourceList('', 'v2')).toBeUndefined();
  });
});

/** client-go's discovery.SplitGroupsAndResources conversion of aggregated discovery to legacy lists. */
function toLegacy(doc: APIGroupDiscoveryList) {
  const out: Record<string, APIResource[]> = {};
  for (const g of doc.items) {
    for (const v of g.versions) {
      const gv = g.metadata.name ? `${g.metadata.name}/${v.version}` : v.version;
      const list: APIResource[] = (out[gv] = []);
      for (const r of v.resources) {
        const parent: APIResource = {
          name: r.resource,
          singularName: r.singularResource,
          namespaced: r.scope === 'Namespaced',
          kind: r.responseKind.kind,
          verbs: r.verbs,
          ...(r.shortNames ? { shortNames: r.shortNames } : {}),
          ...(r.categories ? { categories: r.categories } : {}),
        };
        list.push(parent);
        for (const s of r.subresources ?? []) {
          list.push({
            name: `${r.resource}/${s.subresource}`,
            singularName: '',
            namespaced: parent.namespaced,
            ...(s.responseKind.group ? { group: s.responseKind.group } : {}),
            ...(s.responseKind.version ? { version: s.responseKind.version } : {}),
            kind: s.responseKind.kind,
            verbs: s.verbs,
          });
        }
      }
    }
  }
  return out;
}

const withoutHash = (list: APIResource[]) => list.map(({ storageVersionHash: _, ...r }) => r);

describe('aggregated discovery', () => {
  it('/api carries the core group without a name', () => {
    const doc = aggregatedDiscovery('api');
    expect(doc.kind).toBe('APIGroupDiscoveryList');
    expect(doc.apiVersion).toBe('apidiscovery.k8s.io/v2');
    expect(doc.metadata).toEqual({});
    expect(doc.items).toHaveLength(1);
    expect(doc.items[0]!.metadata).toEqual({ creationTimestamp: null });
    const v1 = doc.items[0]!.versions[0]!;
    expect(v1.version).toBe('v1');
    expect(v1.freshness).toBe('Current');
    const pods = v1.resources.find((r) => r.resource === 'pods')!;
    expect(pods).toMatchObject({
      responseKind: { group: '', version: '', kind: 'Pod' },
      scope: 'Namespaced',
      singularResource: 'pod',
      shortNames: ['po'],
      categories: ['all'],
    });
    expect(pods.subresources).toEqual([
      { subresource: 'binding', responseKind: { group: '', version: '', kind: 'Binding' }, verbs: ['create'] },
      { subresource: 'eviction', responseKind: { group: 'policy', version: 'v1', kind: 'Eviction' }, verbs: ['create'] },
      { subresource: 'log', responseKind: { group: '', version: '', kind: 'Pod' }, verbs: ['get'] },
      { subresource: 'status', responseKind: { group: '', version: '', kind: 'Pod' }, verbs: ['get', 'patch', 'update'] },
    ]);
    const rc = v1.resources.find((r) => r.resource === 'replicationcontrollers')!;
    expect(rc.subresources).toContainEqual({ subresource: 'scale', responseKind: { group: 'autoscaling', version: 'v1', kind: 'Scale' }, verbs: ['get', 'patch', 'update'] });
    expect(v1.resources.find((r) => r.resource === 'nodes')!.scope).toBe('Cluster');
  });

  it('/apis carries every named group', () => {
    const doc = aggregatedDiscovery('apis');
    // In kube-apiserver's order: by its APIServices' group priorities (apps 17800, authentication.k8s.io
    // 17700, authorization.k8s.io 17600, autoscaling 17500, batch 17400, networking.k8s.io 17200, policy 17100, rbac.authorization.k8s.io 17000, storage.k8s.io 16800, apiextensions.k8s.io 16700,
    // scheduling.k8s.io 16600, coordination.k8s.io 16500, discovery.k8s.io 16200).
    const order = [
      'apps',
      'authentication.k8s.io',
      'authorization.k8s.io',
      'autoscaling',
      'batch',
      'networking.k8s.io',
      'policy',
      'rbac.authorization.k8s.io',
      'storage.k8s.io',
      'admissionregistration.k8s.io',
      'apiextensions.k8s.io',
      'scheduling.k8s.io',
      'coordination.k8s.io',
      'discovery.k8s.io',
      'metrics.k8s.io', // metrics-server's APIService: priority 100
      'iam.skiff.io', // Skiff's own groups last
      'quota.skiff.io',
    ];
    expect(doc.items.map((i) => i.metadata.name)).toEqual(order);
    // The legacy /apis lists the same groups in the same order.
    expect(apiGroupList().groups.map((g) => g.name)).toEqual(order);
    expect(doc.items[0]!.metadata.creationTimestamp).toBeNull();
    const group = (name: string) => doc.items.find((i) => i.metadata.name === name)!.versions[0]!.resources;
    expect(group('coordination.k8s.io').map((r) => r.resource)).toEqual(['leases']);
    // TokenReview: create only (node agents review bearer tokens with it).
    expect(group('authentication.k8s.io').map((r) => [r.resource, r.verbs])).toEqual([['selfsubjectreviews', ['create']], ['tokenreviews', ['create']]]);
    expect(group('authorization.k8s.io').map((r) => [r.resource, r.scope])).toEqual([
      ['localsubjectaccessreviews', 'Namespaced'],
      ['selfsubjectaccessreviews', 'Cluster'],
      ['selfsubjectrulesreviews', 'Cluster'],
      ['subjectaccessreviews', 'Cluster'],
    ]);
    // CustomResourceDefinitions: every verb, and the status subresource (as kube-apiserver lists them).
    expect(group('apiextensions.k8s.io').map((r) => [r.resource, r.verbs, r.subresources?.map((x) => x.subresource)])).toEqual([
      ['customresourcedefinitions', ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'], ['status']],
    ]);
    // EndpointSlices (kubectl describe svc reads them): namespaced, every verb of a Kubernetes cluster.
    expect(group('discovery.k8s.io').map((r) => [r.resource, r.scope, r.verbs])).toEqual([
      ['endpointslices', 'Namespaced', ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch']],
    ]);
    // Kinds stored as data (issue #13, part 3), with kube-apiserver's scopes, short names and subresources.
    const summary = (name: string) => group(name).map((r) => [r.resource, r.scope, r.shortNames ?? [], (r.subresources ?? []).map((s) => s.subresource)]);
    expect(summary('networking.k8s.io')).toEqual([
      ['ingressclasses', 'Cluster', [], []],
      ['ingresses', 'Namespaced', ['ing'], ['status']],
      ['networkpolicies', 'Namespaced', ['netpol'], []],
    ]);
    expect(summary('policy')).toEqual([['poddisruptionbudgets', 'Namespaced', ['pdb'], ['status']]]);
    expect(summary('storage.k8s.io')).toEqual([['storageclasses', 'Cluster', ['sc'], []]]);
    expect(summary('rbac.authorization.k8s.io')).toEqual([
      ['clusterrolebindings', 'Cluster', [], []],
      ['clusterroles', 'Cluster', [], []],
      ['rolebindings', 'Namespaced', [], []],
      ['roles', 'Namespaced', [], []],
    ]);
    expect(summary('scheduling.k8s.io')).toEqual([['priorityclasses', 'Cluster', ['pc'], []]]);
  });

  it('says exactly what legacy discovery says (client-go conversion)', () => {
    const legacy = toLegacy(aggregatedDiscovery('api'));
    expect(legacy['v1']).toEqual(withoutHash(apiResourceList('', 'v1')!.resources));
    const named = toLegacy(aggregatedDiscovery('apis'));
    expect(named['coordination.k8s.io/v1']).toEqual(withoutHash(apiResourceList('coordination.k8s.io', 'v1')!.resources));
  });

  it('serves v2beta1 when asked', () => {
    expect(aggregatedDiscovery('apis', 'aggregated-v2beta1').apiVersion).toBe('apidiscovery.k8s.io/v2beta1');
  });
});

describe('negotiateDiscovery', () => {
  it.each([
    [KUBECTL_ACCEPT, 'aggregated-v2'],
    ['application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json', 'aggregated-v2beta1'],
    ['application/json', 'legacy'],
    ['', 'legacy'],
    [undefined, 'legacy'],
    ['*/*', 'legacy'],
    ['application/json;q=0.5, application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList', 'aggregated-v2'],
    ['application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0.1, application/json', 'legacy'],
    ['application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json', 'legacy'],
    ['application/json; g=apidiscovery.k8s.io; as=APIGroupDiscoveryList; v=v2', 'aggregated-v2'],
  ])('%s → %s', (accept, kind) => {
    const n = negotiateDiscovery(accept);
    expect(n.kind).toBe(kind);
    expect(n.contentType).toBe(DISCOVERY_CONTENT_TYPE[n.kind]);
  });

  it('answers with the content types client-go recognises', () => {
    expect(DISCOVERY_CONTENT_TYPE['aggregated-v2']).toBe('application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList');
    expect(DISCOVERY_CONTENT_TYPE['aggregated-v2beta1']).toBe('application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList');
    expect(DISCOVERY_CONTENT_TYPE.legacy).toBe('application/json');
  });
});
