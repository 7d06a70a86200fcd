// PATCH semantics: strategic merge patch cases modeled on k8s.io/apimachinery strategicpatch's tests
// (merge by key, directives, ordering), the patches kubectl apply/patch/label/annotate/scale send, RFC
// 6902 and RFC 7386 patches, and the Status errors Kubernetes returns for bad bodies.
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { applyPatch, goJsonSyntaxError, strategicMerge } from '../lambdas/machinery/patch.ts';
import { findResource, RESOURCES, type ResourceInfo } from '../lambdas/machinery/resources.ts';
import { describePatchStrategies, kindSchema, pruneUnknownFields, unknownFields, type OpenAPISchema } from '../lambdas/machinery/schema.ts';
import { ApiError } from '../lambdas/machinery/status.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';

const pods = findResource('', 'v1', 'pods')!;
const services = findResource('', 'v1', 'services')!;
const endpoints = findResource('', 'v1', 'endpoints')!;
const rcs = findResource('', 'v1', 'replicationcontrollers')!;
const configmaps = findResource('', 'v1', 'configmaps')!;

const SMP = 'application/strategic-merge-patch+json';
const MERGE = 'application/merge-patch+json';
const JSONPATCH = 'application/json-patch+json';
const APPLY = 'application/apply-patch+yaml';

function pod(spec: Record<string, unknown> = {}, metadata: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'default', resourceVersion: '7', labels: { app: 'web', tier: 'front' }, ...metadata },
    spec: {
      containers: [
        { name: 'a', image: 'a:1', env: [{ name: 'X', value: '1' }, { name: 'Y', value: '2' }] },
        { name: 'b', image: 'b:1' },
      ],
      ...spec,
    },
  };
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

function patch(type: string, res: ResourceInfo, original: KubeObject, body: unknown): KubeObject {
  return applyPatch(type, res, deepFreeze(structuredClone(original)), typeof body === 'string' ? body : JSON.stringify(body));
}

function failure(type: string, res: ResourceInfo, original: KubeObject, body: string): ApiError {
  try {
    applyPatch(type, res, original, body);
  } catch (e) {
    expect(e).toBeInstanceOf(ApiError);
    return e as ApiError;
  }
  throw new Error('patch unexpectedly succeeded');
}

const names = (list: { name: string }[]) => list.map((c) => c.name);

describe('strategic merge patch', () => {
  it('merges containers by name and keeps the others in place', () => {
    const out = patch(SMP, pods, pod(), { spec: { containers: [{ name: 'b', image: 'b:2' }] } });
    expect(out.spec.containers).toEqual([
      { name: 'a', image: 'a:1', env: [{ name: 'X', value: '1' }, { name: 'Y', value: '2' }] },
      { name: 'b', image: 'b:2' },
    ]);
  });

  it('puts a new list item first, as Kubernetes does without $setElementOrder', () => {
    const out = patch(SMP, pods, pod(), { spec: { containers: [{ name: 'c', image: 'c:1' }] } });
    expect(names(out.spec.containers)).toEqual(['c', 'a', 'b']);
  });

  it('orders the list by $setElementOrder', () => {
    const out = patch(SMP, pods, pod(), {
      spec: { '$setElementOrder/containers': [{ name: 'a' }, { name: 'c' }, { name: 'b' }], containers: [{ name: 'c', image: 'c:1' }] },
    });
    expect(names(out.spec.containers)).toEqual(['a', 'c', 'b']);
    expect(out.spec['$setElementOrder/containers']).toBeUndefined();
  });

  it('$setElementOrder alone reorders without changing items', () => {
    const out = patch(SMP, pods, pod(), { spec: { '$setElementOrder/containers': [{ name: 'b' }, { name: 'a' }] } });
    expect(names(out.spec.containers)).toEqual(['b', 'a']);
    expect(out.spec.containers[1].env).toHaveLength(2);
  });

  it('rejects a patch list whose order contradicts $setElementOrder', () => {
    const e = failure(SMP, pods, pod(), JSON.stringify({ spec: { '$setElementOrder/containers': [{ name: 'a' }, { name: 'b' }], containers: [{ name: 'b', image: 'x' }, { name: 'a', image: 'y' }] } }));
    expect(e.code).toBe(400);
    expect(e.message).toContain("doesn't match $setElementOrder list");
  });

  it('merges env of a container by name (nested merge lists)', () => {
    const out = patch(SMP, pods, pod(), { spec: { containers: [{ name: 'a', env: [{ name: 'Y', value: '3' }, { name: 'Z', value: '4' }] }] } });
    const a = out.spec.containers.find((c: any) => c.name === 'a');
    expect(a.image).toBe('a:1');
    expect(a.env).toEqual([
      { name: 'X', value: '1' },
      { name: 'Y', value: '3' },
      { name: 'Z', value: '4' },
    ]);
  });

  it('deletes list items with {$patch: delete}', () => {
    const out = patch(SMP, pods, pod(), { spec: { containers: [{ $patch: 'delete', name: 'a' }] } });
    expect(names(out.spec.containers)).toEqual(['b']);
  });

  it('replaces a list with {$patch: replace}', () => {
    const out = patch(SMP, pods, pod(), { spec: { containers: [{ name: 'z', image: 'z:1' }, { $patch: 'replace' }] } });
    expect(out.spec.containers).toEqual([{ name: 'z', image: 'z:1' }]);
  });

  it('replaces and deletes maps with $patch', () => {
    const base = pod({ nodeSelector: { disk: 'ssd', zone: 'a' } });
    expect(patch(SMP, pods, base, { spec: { nodeSelector: { $patch: 'replace', region: 'eu' } } }).spec.nodeSelector).toEqual({ region: 'eu' });
    expect(patch(SMP, pods, base, { metadata: { labels: { $patch: 'delete' } } }).metadata.labels).toEqual({});
  });

  it('removes labels set to null and adds others (kubectl label)', () => {
    const out = patch(SMP, pods, pod(), { metadata: { labels: { tier: null, version: 'v2' } } });
    expect(out.metadata.labels).toEqual({ app: 'web', version: 'v2' });
    // a null for a key that is not there is ignored, not stored
    const added = patch(SMP, pods, pod({}, { annotations: undefined }), { metadata: { annotations: { a: 'x', b: null } } });
    expect(added.metadata.annotations).toEqual({ a: 'x' });
  });

  it('merges finalizers as a set and removes with $deleteFromPrimitiveList', () => {
    const base = pod({}, { finalizers: ['a', 'b'] });
    expect(patch(SMP, pods, base, { metadata: { finalizers: ['b', 'c'] } }).metadata.finalizers).toEqual(['a', 'b', 'c']);
    expect(patch(SMP, pods, base, { metadata: { '$deleteFromPrimitiveList/finalizers': ['a'] } }).metadata.finalizers).toEqual(['b']);
  });

  it('replaces lists without a patch strategy (tolerations, command)', () => {
    const base = pod({ tolerations: [{ key: 'k1', operator: 'Exists' }] });
    const out = patch(SMP, pods, base, { spec: { tolerations: [{ key: 'k2', operator: 'Exists' }], containers: [{ name: 'b', command: ['sh'] }] } });
    expect(out.spec.tolerations).toEqual([{ key: 'k2', operator: 'Exists' }]);
    const again = patch(SMP, pods, out, { spec: { containers: [{ name: 'b', command: ['bash', '-c'] }] } });
    expect(again.spec.containers.find((c: any) => c.name === 'b').command).toEqual(['bash', '-c']);
  });

  it('merges container ports by containerPort and volumeMounts by mountPath', () => {
    const base = pod({ containers: [{ name: 'a', image: 'a', ports: [{ containerPort: 80, name: 'http' }], volumeMounts: [{ name: 'v', mountPath: '/data' }] }] });
    const out = patch(SMP, pods, base, {
      spec: { containers: [{ name: 'a', ports: [{ containerPort: 80, name: 'web' }], volumeMounts: [{ name: 'w', mountPath: '/data', readOnly: true }] }] },
    });
    expect(out.spec.containers[0].ports).toEqual([{ containerPort: 80, name: 'web' }]);
    expect(out.spec.containers[0].volumeMounts).toEqual([{ name: 'w', mountPath: '/data', readOnly: true }]);
  });

  it('merges Service ports by port, not by name', () => {
    const svc: KubeObject = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 's' },
      spec: { ports: [{ name: 'http', port: 80, targetPort: 80 }, { name: 'https', port: 443 }] },
    };
    const out = patch(SMP, services, svc, { spec: { ports: [{ name: 'web', port: 80, targetPort: 8080 }] } });
    expect(out.spec.ports).toEqual([{ name: 'web', port: 80, targetPort: 8080 }, { name: 'https', port: 443 }]);
  });

  it('replaces Endpoints subsets whole (atomic)', () => {
    const ep: KubeObject = {
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: { name: 's' },
      subsets: [{ addresses: [{ ip: '10.0.0.1' }], ports: [{ port: 80 }] }],
    };
    const out = patch(SMP, endpoints, ep, { subsets: [{ addresses: [{ ip: '10.0.0.2' }] }] });
    expect(out.subsets).toEqual([{ addresses: [{ ip: '10.0.0.2' }] }]);
  });

  it('merges ownerReferences by uid and status conditions by type', () => {
    const base = pod({}, { ownerReferences: [{ apiVersion: 'v1', kind: 'ReplicationController', name: 'rc', uid: 'u1' }] });
    base.status = { phase: 'Pending', conditions: [{ type: 'Ready', status: 'False' }, { type: 'PodScheduled', status: 'True' }] };
    const out = patch(SMP, pods, base, {
      metadata: { ownerReferences: [{ apiVersion: 'v1', kind: 'ReplicationController', name: 'rc', uid: 'u1', controller: true }] },
      status: { conditions: [{ type: 'Ready', status: 'True' }] },
    });
    expect(out.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'ReplicationController', name: 'rc', uid: 'u1', controller: true }]);
    expect(out.status.conditions).toEqual([{ type: 'Ready', status: 'True' }, { type: 'PodScheduled', status: 'True' }]);
  });

  it('clears keys missing from $retainKeys (volumes: merge,retainKeys)', () => {
    const base = pod({ volumes: [{ name: 'v', emptyDir: {} }, { name: 'w', emptyDir: {} }] });
    const out = patch(SMP, pods, base, { spec: { volumes: [{ $retainKeys: ['hostPath', 'name'], name: 'v', hostPath: { path: '/x' } }] } });
    expect(out.spec.volumes).toEqual([{ name: 'v', hostPath: { path: '/x' } }, { name: 'w', emptyDir: {} }]);
    const e = failure(SMP, pods, base, JSON.stringify({ spec: { volumes: [{ $retainKeys: ['name'], name: 'v', hostPath: { path: '/x' } }] } }));
    expect(e.code).toBe(400);
    expect(e.message).toBe('invalid patch format of retainKeys');
  });

  it('applies what kubectl apply sends (3-way patch with last-applied and $setElementOrder)', () => {
    const last = JSON.stringify(pod());
    const body = {
      metadata: { annotations: { 'kubectl.kubernetes.io/last-applied-configuration': last } },
      spec: {
        '$setElementOrder/containers': [{ name: 'a' }, { name: 'b' }],
        containers: [{ '$setElementOrder/env': [{ name: 'X' }], env: [{ $patch: 'delete', name: 'Y' }], image: 'a:2', name: 'a' }],
      },
    };
    const out = patch(SMP, pods, pod(), body);
    expect(out.metadata.annotations!['kubectl.kubernetes.io/last-applied-configuration']).toBe(last);
    expect(out.spec.containers).toEqual([
      { name: 'a', image: 'a:2', env: [{ name: 'X', value: '1' }] },
      { name: 'b', image: 'b:1' },
    ]);
  });

  it('sets fields the original lacks, resolving directives inside them', () => {
    const base = pod();
    delete (base.spec as any).volumes;
    const out = patch(SMP, pods, base, { spec: { volumes: [{ name: 'v', emptyDir: {} }, { name: 'gone', $patch: 'delete' }], hostAliases: [{ ip: '1.2.3.4', hostnames: ['x'] }] } });
    expect(out.spec.volumes).toEqual([{ name: 'v', emptyDir: {} }]);
    expect(out.spec.hostAliases).toEqual([{ ip: '1.2.3.4', hostnames: ['x'] }]);
  });

  it('does not mutate the original object', () => {
    const original = deepFreeze(pod());
    const copy = structuredClone(original);
    applyPatch(SMP, pods, original, JSON.stringify({ metadata: { labels: { app: null } }, spec: { containers: [{ name: 'a', image: 'z' }] } }));
    expect(original).toEqual(copy);
  });

  it('keeps "__proto__" an ordinary key', () => {
    const out = patch(SMP, pods, pod(), '{"metadata":{"labels":{"__proto__":"x"}}}');
    expect(Object.getPrototypeOf(out.metadata.labels)).toBe(Object.prototype);
    expect(Object.hasOwn(out.metadata.labels!, '__proto__')).toBe(true);
  });

  it('answers malformed bodies with 400 BadRequest', () => {
    let e = failure(SMP, pods, pod(), '{"spec": ');
    expect(e.code).toBe(400);
    expect(e.status.reason).toBe('BadRequest');
    expect(e.message).toBe('unexpected end of JSON input');
    e = failure(SMP, pods, pod(), '[1]');
    expect(e.message).toBe('json: cannot unmarshal array into Go value of type map[string]interface {}');
    e = failure(SMP, pods, pod(), JSON.stringify({ spec: { containers: [{ image: 'x' }] } }));
    expect(e.code).toBe(400);
    expect(e.message).toBe('map: map[image:x] does not contain declared merge key: name');
    e = failure(SMP, pods, pod(), JSON.stringify({ metadata: { labels: { $patch: 'explode' } } }));
    expect(e.code).toBe(400);
    expect(e.message).toBe('unknown patch type: explode in map: map[$patch:explode]');
    e = failure(SMP, pods, pod(), JSON.stringify({ metadata: { '$deleteFromPrimitiveList/finalizers': 'a' } }));
    expect(e.message).toBe('invalid patch format of primitive list');
  });

  it('answers lists of lists with 422 as Kubernetes does', () => {
    const e = failure(SMP, pods, pod(), JSON.stringify({ metadata: { finalizers: [['x']] } }));
    expect(e.code).toBe(422);
    expect(e.status.reason).toBe('Invalid');
  });

  it('treats a null body as an empty patch', () => {
    expect(patch(SMP, pods, pod(), 'null')).toEqual(pod());
  });

  // The next two used to be quadratic in the list length (a scan of the list per element): one patch of
  // 100,000 finalizers blocked the apiserver for about a minute, one of 40,000 containers for 30 s, so
  // on that code each test runs past the suite's 60 s testTimeout (vitest.config.ts) and fails. Merging
  // is linear now, and must give the same results.
  it('merges a 100,000-element primitive list in linear time', () => {
    const fin = Array.from({ length: 100_000 }, (_, i) => `x/${i}`);
    const base = pod({}, { finalizers: ['a/b', 'x/5'] });
    const out = patch(SMP, pods, base, { metadata: { finalizers: fin } });
    // new items first; a/b keeps its place before x/5, which the server list had
    expect(out.metadata.finalizers).toEqual([...fin.slice(0, 5), 'a/b', ...fin.slice(5)]);

    const odd = new Set(fin.filter((_, i) => i % 2 === 1));
    const pruned = patch(SMP, pods, out, { metadata: { '$deleteFromPrimitiveList/finalizers': [...odd] } });
    expect(pruned.metadata.finalizers).toEqual(out.metadata.finalizers!.filter((f) => !odd.has(f)));
    expect(pruned.metadata.finalizers).toHaveLength(50_001);

    // $setElementOrder orders the items it names; a/b, named by none, goes where the live list has it
    // relative to the first of them (x/99999, last in the live list)
    const reversed = [...fin].reverse();
    const ordered = patch(SMP, pods, out, { metadata: { '$setElementOrder/finalizers': reversed } });
    expect(ordered.metadata.finalizers).toEqual(['a/b', ...reversed]);
  });

  it('merges a 40,000-element list by merge key in linear time', () => {
    const base = pod({ containers: [{ name: 'a', image: 'a:1' }, { name: 'gone', image: 'g' }, { name: 'b', image: 'b:1', env: [{ name: 'X', value: '1' }] }] });
    const added = Array.from({ length: 40_000 }, (_, i) => ({ name: `c${i}`, image: `c:${i}` }));
    const out = patch(SMP, pods, base, {
      spec: { containers: [...added, { name: 'b', env: [{ name: 'Y', value: '2' }] }, { name: 'gone', $patch: 'delete' }, { name: 'c7', image: 'c:7b' }] },
    });
    const cs = out.spec.containers as { name: string; image: string; env?: unknown[] }[];
    expect(cs).toHaveLength(40_002);
    expect(names(cs)).toEqual([...added.map((c) => c.name), 'a', 'b']);
    expect(cs[7]).toEqual({ name: 'c7', image: 'c:7b' }); // a repeated key merges into the first
    expect(cs[40_001]).toEqual({ name: 'b', image: 'b:1', env: [{ name: 'Y', value: '2' }, { name: 'X', value: '1' }] });

    // kubectl apply's $setElementOrder, over the whole list
    const order = [...names(cs)].reverse().map((name) => ({ name }));
    const reordered = patch(SMP, pods, out, { spec: { '$setElementOrder/containers': order } });
    expect(names(reordered.spec.containers)).toEqual(order.map((c) => c.name));
    // and server-side apply goes through the same merge
    const applied = applyPatch(APPLY, pods, out, JSON.stringify({ spec: { containers: added.map((c) => ({ name: c.name, image: 'z' })) } }));
    expect((applied.spec.containers as { image: string }[]).filter((c) => c.image === 'z')).toHaveLength(40_000);
  });
});

describe('JSON patch (RFC 6902)', () => {
  it('applies add, replace, remove, test, copy and move', () => {
    const out = patch(JSONPATCH, pods, pod(), [
      { op: 'test', path: '/metadata/labels/app', value: 'web' },
      { op: 'replace', path: '/spec/containers/0/image', value: 'a:9' },
      { op: 'add', path: '/metadata/labels/new', value: 'yes' },
      { op: 'remove', path: '/metadata/labels/tier' },
      { op: 'add', path: '/spec/containers/-', value: { name: 'c', image: 'c' } },
      { op: 'copy', from: '/metadata/labels/app', path: '/metadata/labels/copy' },
      { op: 'move', from: '/metadata/labels/copy', path: '/metadata/labels/moved' },
    ]);
    expect(out.spec.containers[0].image).toBe('a:9');
    expect(names(out.spec.containers)).toEqual(['a', 'b', 'c']);
    expect(out.metadata.labels).toEqual({ app: 'web', new: 'yes', moved: 'web' });
  });

  it('answers operations that do not apply with 422 Invalid', () => {
    for (const ops of [
      [{ op: 'test', path: '/metadata/labels/app', value: 'db' }],
      [{ op: 'remove', path: '/metadata/labels/missing' }],
      [{ op: 'replace', path: '/spec/nothing/here', value: 1 }],
      [{ op: 'frobnicate', path: '/spec' }],
    ]) {
      const e = failure(JSONPATCH, pods, pod(), JSON.stringify(ops));
      expect(e.code).toBe(422);
      expect(e.status.reason).toBe('Invalid');
      expect(e.message).toBe('the server rejected our request due to an error in our request');
    }
  });

  it('answers bodies that are not a list of operations with 400', () => {
    let e = failure(JSONPATCH, pods, pod(), '{"op":"add"}');
    expect(e.code).toBe(400);
    expect(e.message).toBe('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
    e = failure(JSONPATCH, pods, pod(), '["add"]');
    expect(e.message).toBe('json: cannot unmarshal string into Go value of type jsonpatch.Operation');
    e = failure(JSONPATCH, pods, pod(), '[{"op": "add",}]');
    expect(e.code).toBe(400);
    expect(e.message).toBe("invalid character '}' looking for beginning of object key string");
  });

  it('rejects a result that is not an object', () => {
    const e = failure(JSONPATCH, pods, pod(), '[{"op":"replace","path":"","value":[1]}]');
    expect(e.code).toBe(422);
  });

  // kube-apiserver caps what a patch's copy operations add at JSONPatchMaxCopyBytes, 3 MiB; past it
  // json-patch fails the patch and Kubernetes answers 422 with its generic message. Without the cap,
  // each copy of /data into itself doubled the document: 30 took 105 s and 4 GB (and failed only when
  // a string outgrew V8's limit); 20 (14 MB, 28 MB copied) went through.
  it('refuses copies that add more than 3 MiB (kubectl patch --type=json, doubling /data)', () => {
    const cm: KubeObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { a: 'hello' } };
    const ops = Array.from({ length: 30 }, (_, i) => ({ op: 'copy', from: '/data', path: `/data/k${i}` }));
    for (const steps of [20, 30]) {
      const e = failure(JSONPATCH, configmaps, cm, JSON.stringify(ops.slice(0, steps)));
      expect(e.code).toBe(422);
      expect(e.status.reason).toBe('Invalid');
      expect(e.message).toBe('the server rejected our request due to an error in our request');
    }
    // a few doublings stay well under the cap
    const out = patch(JSONPATCH, configmaps, cm, ops.slice(0, 3));
    expect(Object.keys(out.data.k2)).toEqual(['a', 'k0', 'k1']);
  });

  it('charges a copy the bytes Go marshals, up to exactly 3 MiB', () => {
    const MiB = 1024 * 1024;
    const copies = (n: number) => Array.from({ length: n }, (_, i) => ({ op: 'copy', from: '/data/big', path: `/data/c${i}` }));
    const cm = (big: string): KubeObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { big } });
    // three copies of a string of MiB-2 characters (MiB bytes with the quotes) add exactly 3 MiB: allowed
    expect(Object.keys(patch(JSONPATCH, configmaps, cm('x'.repeat(MiB - 2)), copies(3)).data)).toHaveLength(4);
    expect(failure(JSONPATCH, configmaps, cm('x'.repeat(MiB - 1)), JSON.stringify(copies(3))).code).toBe(422);
    // Go writes "<" as \u003c (6 bytes) and "é" in 2 bytes
    expect(failure(JSONPATCH, configmaps, cm('<'.repeat(MiB / 2)), JSON.stringify(copies(1))).code).toBe(422);
    expect(failure(JSONPATCH, configmaps, cm('é'.repeat(MiB)), JSON.stringify(copies(2))).code).toBe(422);
    expect(Object.keys(patch(JSONPATCH, configmaps, cm('é'.repeat(MiB / 2)), copies(2)).data)).toHaveLength(3);
  });

  it('copies and moves within a large object without copying the whole document each time', () => {
    // fast-json-patch's validation deep-copied the document for every copy and move: 10,000 of them in
    // a 1 MB ConfigMap took 47-74 s, in this 3 MB one well past the suite's 60 s testTimeout.
    const cm: KubeObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { a: 'v', big: 'x'.repeat(3_000_000) } };
    const ops = Array.from({ length: 10_000 }, (_, i) => (i % 2 ? { op: 'move', from: `/data/k${i - 1}`, path: `/data/k${i}` } : { op: 'copy', from: '/data/a', path: `/data/k${i}` }));
    const out = patch(JSONPATCH, configmaps, cm, ops);
    expect(Object.keys(out.data)).toHaveLength(2 + 5_000);
    expect(out.data.k9999).toBe('v');
    expect(out.data.k0).toBeUndefined();
  });

  it('refuses a copy or move from "" as Kubernetes does (a move would nest the document in itself)', () => {
    for (const op of ['copy', 'move']) {
      const e = failure(JSONPATCH, pods, pod(), JSON.stringify([{ op, from: '', path: '/metadata/annotations' }]));
      expect(e.code).toBe(422);
      expect(e.message).toBe('the server rejected our request due to an error in our request');
    }
  });
});

describe('JSON merge patch (RFC 7386)', () => {
  it('merges objects, deletes nulls and replaces lists', () => {
    const out = patch(MERGE, pods, pod(), { metadata: { labels: { tier: null, x: 'y' } }, spec: { containers: [{ name: 'only', image: 'o' }] } });
    expect(out.metadata.labels).toEqual({ app: 'web', x: 'y' });
    expect(out.spec.containers).toEqual([{ name: 'only', image: 'o' }]);
  });

  it('scales a replication controller the way kubectl scale patches it', () => {
    const rc: KubeObject = { apiVersion: 'v1', kind: 'ReplicationController', metadata: { name: 'r' }, spec: { replicas: 1, selector: { app: 'web' } } };
    expect(patch(MERGE, rcs, rc, { spec: { replicas: 3 } }).spec).toEqual({ replicas: 3, selector: { app: 'web' } });
  });

  it('answers malformed and null bodies with 400', () => {
    let e = failure(MERGE, pods, pod(), '{"metadata": nope}');
    expect(e.code).toBe(400);
    expect(e.message).toBe("error decoding patch: invalid character 'o' in literal null (expecting 'u')");
    e = failure(MERGE, pods, pod(), 'null');
    expect(e.code).toBe(400);
    expect(e.message).toBe('Invalid JSON Patch');
  });
});

describe('server-side apply (simplified)', () => {
  it('merges a YAML apply configuration into the live object', () => {
    const body = [
      'apiVersion: v1',
      'kind: Pod',
      'metadata:',
      '  name: p',
      '  labels:',
      '    extra: "1"',
      'spec:',
      '  containers:',
      '  - name: b',
      '    image: b:2',
    ].join('\n');
    const out = patch(APPLY, pods, pod(), body);
    expect(out.metadata.labels).toEqual({ app: 'web', tier: 'front', extra: '1' });
    expect(out.spec.containers.find((c: any) => c.name === 'b').image).toBe('b:2');
    expect(out.spec.containers).toHaveLength(2);
  });

  it('answers malformed YAML with 400', () => {
    const e = failure(APPLY, pods, pod(), 'metadata: [unclosed');
    expect(e.code).toBe(400);
    expect(e.message).toMatch(/^error decoding YAML: /);
  });
});

describe('content types', () => {
  it('accepts parameters and answers unknown types with 415', () => {
    expect(patch(`${MERGE}; charset=utf-8`, pods, pod(), { metadata: { labels: { a: 'b' } } }).metadata.labels!.a).toBe('b');
    const e = failure('application/xml', pods, pod(), '<x/>');
    expect(e.code).toBe(415);
    expect(e.status.reason).toBe('UnsupportedMediaType');
  });
});

describe('Go JSON syntax error messages', () => {
  it.each([
    ['', 'unexpected end of JSON input'],
    ['{"a":}', "invalid character '}' looking for beginning of value"],
    ['{"a" 1}', "invalid character '1' after object key"],
    ['{"a":1 "b":2}', `invalid character '"' after object key:value pair`],
    ['[1 2]', "invalid character '2' after array element"],
    ['trux', "invalid character 'x' in literal true (expecting 'e')"],
    ['{}x', "invalid character 'x' after top-level value"],
    ['-x', "invalid character 'x' in numeric literal"],
    ['"a\\q"', "invalid character 'q' in string escape code"],
  ])('%j', (input, message) => {
    expect(goJsonSyntaxError(input)).toBe(message);
  });
});

describe('schema.ts (the description patch and validation share)', () => {
  it('reads merge rules from the upstream types', () => {
    const rules = describePatchStrategies({ group: '', version: 'v1', kind: 'Pod' });
    expect(rules).toEqual(
      expect.arrayContaining([
        'spec.containers: merge by name',
        'spec.initContainers: merge by name',
        'spec.containers[].env: merge by name',
        'spec.containers[].ports: merge by containerPort',
        'spec.containers[].volumeMounts: merge by mountPath',
        'spec.volumes: merge by name (retainKeys)',
        'spec.imagePullSecrets: merge by name',
        'spec.hostAliases: merge by ip',
        'spec.tolerations: replace',
        'metadata.finalizers: merge as set',
        'metadata.ownerReferences: merge by uid',
        'status.conditions: merge by type',
      ]),
    );
    expect(describePatchStrategies({ group: '', version: 'v1', kind: 'Service' })).toContain('spec.ports: merge by port');
    expect(describePatchStrategies({ group: '', version: 'v1', kind: 'Node' })).toContain('spec.taints: replace');
    expect(describePatchStrategies({ group: '', version: 'v1', kind: 'Endpoints' })).toContain('subsets: replace');
  });

  it('has a schema for every served kind', () => {
    for (const r of RESOURCES) expect(kindSchema(r), r.kind).toBeDefined();
  });

  it('names unknown fields as strict decoding does, and prunes them', () => {
    const obj = pod();
    (obj as any).spex = {};
    (obj.spec.containers[0] as any).imagePullPolicyy = 'Always';
    (obj.metadata as any).labelz = {};
    expect(unknownFields(pods, obj)).toEqual(['metadata.labelz', 'spec.containers[0].imagePullPolicyy', 'spex']);
    const pruned = pruneUnknownFields(pods, deepFreeze(obj));
    expect(unknownFields(pods, pruned)).toEqual([]);
    expect(pruned.metadata.labels).toEqual({ app: 'web', tier: 'front' });
    expect(pruned.spec.containers[0]).toEqual({ name: 'a', image: 'a:1', env: [{ name: 'X', value: '1' }, { name: 'Y', value: '2' }] });
    expect(unknownFields(pods, pod())).toEqual([]);
  });
});

// Apply-side cases from k8s.io/apimachinery/pkg/util/strategicpatch/patch_test.go
// (StrategicMergePatchRawTestCaseData: Current + ThreeWay patch = Result), on its test type mergeItem.
describe('upstream strategicpatch cases', () => {
  const item: OpenAPISchema = { type: 'object', properties: {} };
  const mergeByName = { type: 'array', items: item, 'x-kubernetes-patch-strategy': 'merge', 'x-kubernetes-patch-merge-key': 'name' };
  item.properties = {
    name: { type: 'string' },
    value: { type: 'string' },
    other: { type: 'string' },
    mergingList: mergeByName,
    mergeItemPtr: mergeByName,
    nonMergingList: { type: 'array', items: item },
    mergingIntList: { type: 'array', items: { type: 'integer' }, 'x-kubernetes-patch-strategy': 'merge' },
    nonMergingIntList: { type: 'array', items: { type: 'integer' } },
    simpleMap: { type: 'object', additionalProperties: { type: 'string' } },
    retainKeysMap: { type: 'object', properties: { name: { type: 'string' }, value: { type: 'string' }, other: { type: 'string' } }, 'x-kubernetes-patch-strategy': 'retainKeys' },
    retainKeysMergingList: { ...mergeByName, 'x-kubernetes-patch-strategy': 'merge,retainKeys' },
  };

  const cases: [string, string, string, string][] = [
    [
      'merge lists of maps',
      'mergingList: [{name: 1, other: a}, {name: 2, value: 2, other: b}]',
      '{$setElementOrder/mergingList: [{name: 4}, {name: 1}, {name: 2}, {name: 3}], mergingList: [{name: 4, value: 4}, {name: 3, value: 3}]}',
      'mergingList: [{name: 4, value: 4}, {name: 1, other: a}, {name: 2, value: 2, other: b}, {name: 3, value: 3}]',
    ],
    [
      'replace non merging list nested in merging list',
      'mergingList: [{name: 1, other: a, nonMergingList: [{name: 1}, {name: 2, value: 2}]}, {name: 2, other: b}]',
      '{$setElementOrder/mergingList: [{name: 1}, {name: 2}], mergingList: [{name: 1, nonMergingList: [{name: 1, value: 1}]}]}',
      'mergingList: [{name: 1, other: a, nonMergingList: [{name: 1, value: 1}]}, {name: 2, other: b}]',
    ],
    [
      'add field to map in merging list nested in merging list with deletion conflict (reordered)',
      'mergingList: [{name: 1, other: a, mergingList: [{name: 2, value: 2, other: d}]}, {name: 2, other: b}]',
      '{$setElementOrder/mergingList: [{name: 1}, {name: 2}], mergingList: [{$setElementOrder/mergingList: [{name: 2}, {name: 1}], name: 1, mergingList: [{name: 1, value: 1}]}]}',
      'mergingList: [{name: 1, other: a, mergingList: [{name: 2, value: 2, other: d}, {name: 1, value: 1}]}, {name: 2, other: b}]',
    ],
    [
      'add map to merging list by pointer',
      'mergeItemPtr: [{name: 1, other: a}, {name: 3}]',
      '{$setElementOrder/mergeItemPtr: [{name: 1}, {name: 2}], mergeItemPtr: [{name: 2}]}',
      'mergeItemPtr: [{name: 1, other: a}, {name: 2}, {name: 3}]',
    ],
    ['merge lists of scalars', 'mergingIntList: [1, 2, 4]', '{$setElementOrder/mergingIntList: [1, 2, 3], mergingIntList: [3]}', 'mergingIntList: [1, 2, 3, 4]'],
    ['add an item in a list of primitives and preserve order', 'mergingIntList: [1, 4, 2]', '{$setElementOrder/mergingIntList: [3, 1, 2], mergingIntList: [3]}', 'mergingIntList: [3, 1, 4, 2]'],
    ['delete an item in a list of primitives and preserve order', 'mergingIntList: [1, 2, 3]', '{$setElementOrder/mergingIntList: [2, 1], $deleteFromPrimitiveList/mergingIntList: [3]}', 'mergingIntList: [2, 1]'],
    [
      'delete an item in a list and preserve order',
      'mergingList: [{name: 1, other: a}, {name: 2, value: 2, other: b}, {name: 3, value: 3}]',
      '{$setElementOrder/mergingList: [{name: 2}, {name: 1}], mergingList: [{name: 3, $patch: delete}]}',
      'mergingList: [{name: 2, value: 2, other: b}, {name: 1, other: a}]',
    ],
    [
      'add and delete an item in a list and preserve order',
      'mergingList: [{name: 1, other: a}, {name: 2, value: 2, other: b}, {name: 3, value: 3}]',
      '{$setElementOrder/mergingList: [{name: 4}, {name: 2}, {name: 1}], mergingList: [{name: 4, value: 4}, {name: 3, $patch: delete}]}',
      'mergingList: [{name: 4, value: 4}, {name: 2, value: 2, other: b}, {name: 1, other: a}]',
    ],
    [
      'set elements order in a list with server-only items 3',
      'mergingList: [{name: 1, other: a}, {name: 2, value: 2}, {name: 7}, {name: 9}, {name: 8}, {name: 3, value: 3}, {name: 4, value: 4}]',
      '{$setElementOrder/mergingList: [{name: 2}, {name: 1}, {name: 4}, {name: 3}]}',
      'mergingList: [{name: 2, value: 2}, {name: 1, other: a}, {name: 7}, {name: 9}, {name: 8}, {name: 4, value: 4}, {name: 3, value: 3}]',
    ],
    ['set elements order in a int list with server-only items 2', 'mergingIntList: [1, 2, 9, 3, 4]', '{$setElementOrder/mergingIntList: [2, 1, 4, 3]}', 'mergingIntList: [2, 1, 9, 4, 3]'],
    ['add and delete an item in a int list and preserve order', 'mergingIntList: [1, 2, 3]', '{$setElementOrder/mergingIntList: [4, 2, 1], mergingIntList: [4], $deleteFromPrimitiveList/mergingIntList: [3]}', 'mergingIntList: [4, 2, 1]'],
    [
      'behavior of set element order for a merging list with duplicate',
      'mergingList: [{name: 1}, {name: 2, value: dup1}, {name: 3}, {name: 2, value: dup2}, {name: 4}]',
      '{$setElementOrder/mergingList: [{name: 2}, {name: 1}, {name: 4}, {name: 3}, {name: 2}]}',
      'mergingList: [{name: 2, value: dup1}, {name: 2, value: dup2}, {name: 1}, {name: 4}, {name: 3}]',
    ],
    ['retainKeys map should clear defaulted field with conflict (discriminated union)', 'retainKeysMap: {name: type1, value: foo}', '{retainKeysMap: {$retainKeys: [name, other], name: type2, other: bar}}', 'retainKeysMap: {name: type2, other: bar}'],
    ['retainKeys map deletes a field and clears a field', 'retainKeysMap: {name: foo, value: bar, other: a}', '{retainKeysMap: {$retainKeys: [name], value: null}}', 'retainKeysMap: {name: foo}'],
  ];

  it.each(cases)('%s', (_, current, threeWay, result) => {
    const out = strategicMerge(parseYaml(current), parseYaml(threeWay), item);
    expect(out).toEqual(parseYaml(result));
  });
});
