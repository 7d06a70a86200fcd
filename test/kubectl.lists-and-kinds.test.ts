// The machine's stock kubectl, default flags, on the paths where it leaves OpenAPI v3 for /openapi/v2 and
// the CRD list: applying a `kind: List` file (what `kubectl get -o yaml` writes), and files naming a kind
// or apiVersion the server does not serve. The messages are the ones kubectl prints against Kubernetes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from './support/cluster.ts';

let c: TestCluster;

beforeAll(async () => {
  c = await startTestCluster();
  const ns = await c.kubectl(['create', 'namespace', 'lists']);
  expect(ns.code).toBe(0);
});
afterAll(async () => {
  await c?.destroy();
});

const LIST = `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: s1, namespace: lists}
  spec:
    selector: {app: p1}
    ports: [{name: a, port: 80, targetPort: http}, {name: b, port: 81, targetPort: 8080}]
- apiVersion: v1
  kind: Pod
  metadata: {name: p1, namespace: lists, labels: {app: p1}}
  spec:
    containers:
    - name: c
      image: busybox
      resources: {limits: {cpu: 1, memory: 64Mi}, requests: {cpu: 100m}}
      ports: [{containerPort: 8080, name: http}]
- apiVersion: coordination.k8s.io/v1
  kind: Lease
  metadata: {name: l1, namespace: lists}
  spec: {holderIdentity: me, leaseDurationSeconds: 10}
- apiVersion: networking.k8s.io/v1
  kind: Ingress
  metadata: {name: i1, namespace: lists}
  spec:
    rules:
    - host: lists.example.com
      http:
        paths: [{path: /, pathType: Prefix, backend: {service: {name: s1, port: {name: a}}}}]
- apiVersion: scheduling.k8s.io/v1
  kind: PriorityClass
  metadata: {name: lists-low}
  value: 10
`;

describe('kubectl with List files', () => {
  it('applies a List twice: created, then unchanged (items validated against /openapi/v2)', async () => {
    const f = c.file('list.yaml', LIST);
    const a1 = await c.kubectl(['apply', '-f', f]);
    expect(a1.stderr).toBe('');
    expect(a1.stdout.trim().split('\n')).toEqual([
      'service/s1 created',
      'pod/p1 created',
      'lease.coordination.k8s.io/l1 created',
      'ingress.networking.k8s.io/i1 created',
      'priorityclass.scheduling.k8s.io/lists-low created',
    ]);
    const a2 = await c.kubectl(['apply', '-f', f]);
    expect(a2.stderr).toBe('');
    expect(a2.stdout.trim().split('\n')).toEqual([
      'service/s1 unchanged',
      'pod/p1 unchanged',
      'lease.coordination.k8s.io/l1 unchanged',
      'ingress.networking.k8s.io/i1 unchanged',
      'priorityclass.scheduling.k8s.io/lists-low unchanged',
    ]);
  });

  it('applies what `kubectl get -o yaml` wrote', async () => {
    expect((await c.kubectl(['create', 'configmap', 'c1', '-n', 'lists', '--from-literal=a=b'])).code).toBe(0);
    const got = await c.kubectl(['get', 'configmaps', '-n', 'lists', '-o', 'yaml']);
    expect(got.stdout).toMatch(/^apiVersion: v1\nitems:/);
    const edited = got.stdout.replace('a: b', 'a: changed');
    const a = await c.kubectl(['apply', '-f', c.file('got.yaml', edited)]);
    expect(a.code).toBe(0);
    expect(a.stdout).toContain('configmap/c1 configured');
    const v = await c.kubectl(['get', 'configmap', 'c1', '-n', 'lists', '-o', 'jsonpath={.data.a}']);
    expect(v.stdout).toBe('changed');
  });

  it('rejects a List whose item breaks the schema, client-side, and creates nothing', async () => {
    const bad = LIST.replace('name: p1, namespace', 'name: p2, namespace').replace('image: busybox', 'image: busybox\n      bogusField: 1').replace('containerPort: 8080', 'containerPort: "x"');
    const r = await c.kubectl(['create', '-f', c.file('bad.yaml', bad)]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('ValidationError(Pod.spec.containers[0]): unknown field "bogusField" in io.k8s.api.core.v1.Container');
    expect(r.stderr).toContain('ValidationError(Pod.spec.containers[0].ports[0].containerPort): invalid type for io.k8s.api.core.v1.ContainerPort.containerPort: got "string", expected "integer"');
    const p2 = await c.kubectl(['get', 'pod', 'p2', '-n', 'lists']);
    expect(p2.stderr.trim()).toBe('Error from server (NotFound): pods "p2" not found');
  });
});

describe('kubectl with kinds the server does not serve', () => {
  it('says "no matches for kind" for an unknown kind and for a wrong apiVersion', async () => {
    const widget = await c.kubectl(['create', '-f', c.file('w.yaml', 'apiVersion: v1\nkind: Widget\nmetadata: {name: w}\n')]);
    expect(widget.code).not.toBe(0);
    expect(widget.stderr.trim()).toBe(
      `error: resource mapping not found for name: "w" namespace: "" from "${c.dataDir}/w.yaml": no matches for kind "Widget" in version "v1"\nensure CRDs are installed first`,
    );
    const v2 = await c.kubectl(['apply', '-f', c.file('v2.yaml', 'apiVersion: v2\nkind: Pod\nmetadata: {name: w}\n')]);
    expect(v2.stderr.trim()).toBe(
      `error: resource mapping not found for name: "w" namespace: "" from "${c.dataDir}/v2.yaml": no matches for kind "Pod" in version "v2"\nensure CRDs are installed first`,
    );
  });

  it('lists no CRDs at first, refuses a CRD whose schema is not structural (422), creates a valid one', async () => {
    const list = await c.kubectl(['get', 'crds']);
    expect(list.code).toBe(0);
    expect(list.stderr.trim()).toBe('No resources found');
    const crd = (schema: string) => `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: ${schema}}}]
`;
    const bad = await c.kubectl(['create', '-f', c.file('bad-crd.yaml', crd('{properties: {spec: {}}}'))]);
    expect(bad.code).not.toBe(0);
    // kube-apiserver's structural schema messages (apiextensions-apiserver pkg/apiserver/schema/validation.go).
    expect(bad.stderr).toContain('The CustomResourceDefinition "widgets.example.com" is invalid');
    expect(bad.stderr).toContain('spec.validation.openAPIV3Schema.type: Required value: must not be empty at the root');
    expect(bad.stderr).toContain('spec.validation.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields');
    // A CEL rule that does not compile (an undefined field) is refused at create, as kube-apiserver does.
    const cel = await c.kubectl([
      'create',
      '-f',
      c.file('cel-crd.yaml', crd("{type: object, properties: {spec: {type: object, properties: {a: {type: integer}}, x-kubernetes-validations: [{rule: 'self.nope > 1'}]}}}")),
    ]);
    expect(cel.code).not.toBe(0);
    expect(cel.stderr).toContain('The CustomResourceDefinition "widgets.example.com" is invalid');
    expect(cel.stderr).toContain('spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value:');
    expect(cel.stderr).toMatch(/compilation failed: ERROR: <input>:1:\d+: undefined field 'nope'/);
    expect((await c.kubectl(['get', 'crd', 'widgets.example.com'])).stderr.trim()).toBe(
      'Error from server (NotFound): customresourcedefinitions.apiextensions.k8s.io "widgets.example.com" not found',
    );
    const good = await c.kubectl(['create', '-f', c.file('crd.yaml', crd('{type: object}'))]);
    expect(good.stdout.trim()).toBe('customresourcedefinition.apiextensions.k8s.io/widgets.example.com created');
    const got = await c.kubectl(['get', 'crd', 'widgets.example.com', '-o', 'jsonpath={.spec.names.listKind}']);
    expect(got.stdout).toBe('WidgetList');
  });
});
