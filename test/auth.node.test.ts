// The Node authorizer and NodeRestriction admission, over HTTPS on both stores (SQLite, DynamoDB through
// moto), with real kubectl where a person would use it: a node's own credential reads the Secrets and
// ConfigMaps of the pods bound to it and nothing else, lists only its own pods, writes only its own Node,
// Lease and pods' status, and cannot label itself into a role. kube 1.32's exact words throughout.
// Last, the same decisions from an apiserver with no watch-kept view (a Lambda instance's).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import https from 'node:https';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { nodeUser, newToken, storeToken } from '../lambdas/apiserver/auth.ts';
import type { Backend } from '../lambdas/storage/backend.ts';
import { testStores } from './support/backends.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';

const stores = await testStores('auth-node');

interface Res {
  status: number;
  json: any;
}

const NS = 'team';
const forbiddenGet = (res: string, name: string, node: string, ns = NS) =>
  `${res} "${name}" is forbidden: User "system:node:${node}" cannot get resource "${res}" in API group "" in the namespace "${ns}": no relationship found between node '${node}' and this object`;

for (const [storeName, makeStore, enabled] of stores) {
  describe.skipIf(!enabled)(`Node authorizer and NodeRestriction (${storeName})`, () => {
    let c: TestCluster;
    let open: () => Backend;
    let tokenA: string;
    let tokenB: string;

    const call = (token: string, method: string, path: string, body?: unknown, contentType = 'application/json') =>
      new Promise<Res>((resolve, reject) => {
        const req = https.request(new URL(path, c.url), { method, ca: c.caCert, headers: { authorization: `Bearer ${token}`, 'content-type': contentType } }, (res) => {
          let data = '';
          res.on('data', (d) => (data += d));
          res.on('end', () => resolve({ status: res.statusCode!, json: data ? JSON.parse(data) : undefined }));
        });
        req.on('error', reject);
        req.end(body === undefined ? undefined : JSON.stringify(body));
      });
    const admin = (method: string, path: string, body?: unknown) => call(c.token, method, path, body);
    const asNode = (method: string, path: string, body?: unknown, ct?: string) => call(tokenA, method, path, body, ct);
    const kubectlAsA = (args: string[]) => c.kubectl([`--token=${tokenA}`, ...args]);

    const pod = (name: string, node: string, spec: Record<string, unknown>) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, labels: { app: name } },
      spec: { nodeName: node, containers: [{ name: 'c', image: 'busybox', ...((spec.container as object) ?? {}) }], ...spec, container: undefined },
    });

    beforeAll(async () => {
      open = await makeStore();
      c = await startTestCluster({ backend: open(), controllers: false });
      tokenA = newToken();
      tokenB = newToken();
      await storeToken(c.backend, tokenA, nodeUser('node-a'));
      await storeToken(c.backend, tokenB, nodeUser('node-b'));
      expect((await admin('POST', '/api/v1/namespaces', { metadata: { name: NS } })).status).toBe(201);
      for (const n of ['node-a', 'node-b']) expect((await admin('POST', '/api/v1/nodes', { metadata: { name: n, labels: { 'kubernetes.io/hostname': n } } })).status).toBe(201);
      for (const s of ['s-a', 's-b', 'pull-a', 'late']) {
        expect((await admin('POST', `/api/v1/namespaces/${NS}/secrets`, { metadata: { name: s }, stringData: { k: s } })).status).toBe(201);
      }
      for (const m of ['cm-a', 'cm-b']) expect((await admin('POST', `/api/v1/namespaces/${NS}/configmaps`, { metadata: { name: m }, data: { k: m } })).status).toBe(201);
      // p-a on node-a: a Secret volume, a ConfigMap through envFrom, an image pull Secret.
      const pa = pod('p-a', 'node-a', {
        imagePullSecrets: [{ name: 'pull-a' }],
        volumes: [{ name: 'v', secret: { secretName: 's-a' } }],
        container: { envFrom: [{ configMapRef: { name: 'cm-a' } }] },
      });
      const pb = pod('p-b', 'node-b', { volumes: [{ name: 'v', secret: { secretName: 's-b' } }, { name: 'c', configMap: { name: 'cm-b' } }] });
      for (const p of [pa, pb]) expect((await admin('POST', `/api/v1/namespaces/${NS}/pods`, p)).status).toBe(201);
    }, 120_000);

    afterAll(async () => {
      await c?.destroy();
    });

    it('reads the Secrets and ConfigMaps of its own pods, and is refused another node pod’s with kube’s message', async () => {
      for (const path of [`secrets/s-a`, `secrets/pull-a`, `configmaps/cm-a`]) {
        const r = await asNode('GET', `/api/v1/namespaces/${NS}/${path}`);
        expect(r.status, path).toBe(200);
      }
      const got = await kubectlAsA(['get', 'secret', 's-a', '-n', NS, '-o', 'jsonpath={.data.k}']);
      expect(got.code, got.stderr).toBe(0);
      expect(Buffer.from(got.stdout, 'base64').toString()).toBe('s-a');

      const refused = await kubectlAsA(['get', 'secret', 's-b', '-n', NS]);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr.trim()).toBe(`Error from server (Forbidden): ${forbiddenGet('secrets', 's-b', 'node-a')}`);
      const r = await asNode('GET', `/api/v1/namespaces/${NS}/configmaps/cm-b`);
      expect(r.status).toBe(403);
      expect(r.json).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'Forbidden', code: 403, message: forbiddenGet('configmaps', 'cm-b', 'node-a') });
      // node-b reads its own and not node-a's.
      expect((await call(tokenB, 'GET', `/api/v1/namespaces/${NS}/secrets/s-b`)).status).toBe(200);
      expect((await call(tokenB, 'GET', `/api/v1/namespaces/${NS}/secrets/s-a`)).json.message).toBe(forbiddenGet('secrets', 's-a', 'node-b'));
    });

    it('reads a Secret of a pod bound to it a moment ago (a stale view is never the last word)', async () => {
      expect((await asNode('GET', `/api/v1/namespaces/${NS}/secrets/late`)).status).toBe(403);
      const p = pod('p-late', 'node-a', { volumes: [{ name: 'v', secret: { secretName: 'late' } }] });
      expect((await admin('POST', `/api/v1/namespaces/${NS}/pods`, p)).status).toBe(201);
      expect((await asNode('GET', `/api/v1/namespaces/${NS}/secrets/late`)).status).toBe(200);
    });

    it('lists only its own pods, and no Secrets at all', async () => {
      const all = await kubectlAsA(['get', 'pods', '-A']);
      expect(all.code).not.toBe(0);
      expect(all.stderr.trim()).toBe(
        'Error from server (Forbidden): pods is forbidden: User "system:node:node-a" cannot list resource "pods" in API group "" at the cluster scope: can only list/watch pods with spec.nodeName field selector',
      );
      const own = await asNode('GET', `/api/v1/pods?fieldSelector=${encodeURIComponent('spec.nodeName=node-a')}`);
      expect(own.status).toBe(200);
      expect(own.json.items.map((p: any) => p.metadata.name).sort()).toEqual(['p-a', 'p-late']);
      const other = await asNode('GET', `/api/v1/pods?fieldSelector=${encodeURIComponent('spec.nodeName=node-b')}`);
      expect(other.status).toBe(403);
      const secrets = await kubectlAsA(['get', 'secrets', '-n', NS]);
      expect(secrets.stderr.trim()).toBe(
        `Error from server (Forbidden): secrets is forbidden: User "system:node:node-a" cannot list resource "secrets" in API group "" in the namespace "${NS}": No Object name found`,
      );
      const nodes = await asNode('GET', '/api/v1/nodes');
      expect(nodes.json.message).toBe(`nodes is forbidden: User "system:node:node-a" cannot list resource "nodes" in API group "" at the cluster scope: node 'node-a' cannot read all nodes, only its own Node object`);
      expect((await asNode('GET', '/api/v1/nodes/node-a')).status).toBe(200);
      // And nothing else a node has no rule for.
      const ns = await asNode('DELETE', `/api/v1/namespaces/${NS}`);
      expect(ns.json.message).toBe(`namespaces "${NS}" is forbidden: User "system:node:node-a" cannot delete resource "namespaces" in API group "" at the cluster scope`);
    });

    it('updates its own Node and its status, and is refused another node’s', async () => {
      const own = (await asNode('GET', '/api/v1/nodes/node-a')).json;
      const st = await asNode('PUT', '/api/v1/nodes/node-a/status', { ...own, status: { conditions: [{ type: 'Ready', status: 'True' }] } });
      expect(st.status).toBe(200);
      const other = (await admin('GET', '/api/v1/nodes/node-b')).json;
      const r = await asNode('PUT', '/api/v1/nodes/node-b/status', { ...other, status: { conditions: [{ type: 'Ready', status: 'False' }] } });
      expect(r.status).toBe(403);
      expect(r.json).toMatchObject({ reason: 'Forbidden', message: 'nodes "node-b" is forbidden: node "node-a" is not allowed to modify node "node-b"' });
      const patched = await kubectlAsA(['label', 'node', 'node-b', 'example.com/x=y']);
      // kubectl label reads the Node first: the authorizer refuses that already.
      expect(patched.stderr.trim()).toBe(
        `Error from server (Forbidden): nodes "node-b" is forbidden: User "system:node:node-a" cannot get resource "nodes" in API group "" at the cluster scope: node 'node-a' cannot read 'node-b', only its own Node object`,
      );
      const merge = await asNode('PATCH', '/api/v1/nodes/node-b', { metadata: { labels: { 'example.com/x': 'y' } } }, 'application/merge-patch+json');
      expect(merge.json.message).toBe('nodes "node-b" is forbidden: node "node-a" is not allowed to modify node "node-b"');
      expect((await admin('GET', '/api/v1/nodes/node-b')).json.metadata.labels['example.com/x']).toBeUndefined();
      const del = await asNode('DELETE', '/api/v1/nodes/node-b');
      expect(del.json.message).toBe('nodes "node-b" is forbidden: User "system:node:node-a" cannot delete resource "nodes" in API group "" at the cluster scope');
    });

    it('is refused labelling itself into a role or a node-restriction label, and may set other labels', async () => {
      for (const label of ['node-role.kubernetes.io/x', 'node-restriction.kubernetes.io/x']) {
        const r = await kubectlAsA(['label', 'node', 'node-a', `${label}=`]);
        expect(r.code).not.toBe(0);
        expect(r.stderr.trim()).toBe(`Error from server (Forbidden): nodes "node-a" is forbidden: is not allowed to modify labels: ${label}`);
      }
      const ok = await kubectlAsA(['label', 'node', 'node-a', 'example.com/rack=r1', 'node.kubernetes.io/exclude-from-external-load-balancers=true']);
      expect(ok.code, ok.stderr).toBe(0);
      const labels = (await admin('GET', '/api/v1/nodes/node-a')).json.metadata.labels;
      expect(labels).toMatchObject({ 'example.com/rack': 'r1' });
      expect(labels['node-role.kubernetes.io/x']).toBeUndefined();
      const taint = await kubectlAsA(['taint', 'node', 'node-a', 'k=v:NoSchedule']);
      expect(taint.stderr.trim()).toBe('Error from server (Forbidden): nodes "node-a" is forbidden: node "node-a" is not allowed to modify taints');
      // A node registering itself with a role label is refused too.
      const reg = await call(tokenB, 'POST', '/api/v1/nodes', { metadata: { name: 'node-b', labels: { 'node-role.kubernetes.io/control-plane': '' } } });
      expect(reg.json.message).toBe('nodes "node-b" is forbidden: node "node-b" is not allowed to set the following labels: node-role.kubernetes.io/control-plane');
    });

    it('updates the status of its own pods only, deletes only its own, and creates none', async () => {
      const mine = (await asNode('GET', `/api/v1/namespaces/${NS}/pods/p-a`)).json;
      expect((await asNode('PUT', `/api/v1/namespaces/${NS}/pods/p-a/status`, { ...mine, status: { phase: 'Running' } })).status).toBe(200);
      const theirs = (await admin('GET', `/api/v1/namespaces/${NS}/pods/p-b`)).json;
      const r = await asNode('PUT', `/api/v1/namespaces/${NS}/pods/p-b/status`, { ...theirs, status: { phase: 'Failed' } });
      expect(r.status).toBe(403);
      expect(r.json.message).toBe('pods "p-b" is forbidden: node "node-a" can only update pod status for pods with spec.nodeName set to itself');
      const patch = await asNode('PATCH', `/api/v1/namespaces/${NS}/pods/p-b/status`, { status: { phase: 'Failed' } }, 'application/merge-patch+json');
      expect(patch.json.message).toBe('pods "p-b" is forbidden: node "node-a" can only update pod status for pods with spec.nodeName set to itself');
      expect((await admin('GET', `/api/v1/namespaces/${NS}/pods/p-b`)).json.status.phase).not.toBe('Failed');
      const relabel = await asNode('PUT', `/api/v1/namespaces/${NS}/pods/p-a/status`, { ...(await asNode('GET', `/api/v1/namespaces/${NS}/pods/p-a`)).json, metadata: { ...mine.metadata, resourceVersion: undefined, labels: { app: 'other' } } });
      expect(relabel.json.message).toBe('pods "p-a" is forbidden: node "node-a" cannot update labels through pod status');
      const get = await asNode('GET', `/api/v1/namespaces/${NS}/pods/p-b`);
      expect(get.json.message).toBe(`pods "p-b" is forbidden: User "system:node:node-a" cannot get resource "pods" in API group "" in the namespace "${NS}": no relationship found between node 'node-a' and this object`);
      const del = await asNode('DELETE', `/api/v1/namespaces/${NS}/pods/p-b`);
      expect(del.json.message).toBe('pods "p-b" is forbidden: node "node-a" can only delete pods with spec.nodeName set to itself');
      const evict = await asNode('POST', `/api/v1/namespaces/${NS}/pods/p-b/eviction`, { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'p-b', namespace: NS } });
      expect(evict.json.message).toBe('pods "p-b" is forbidden: node node-a can only evict pods with spec.nodeName set to itself');
      const create = await asNode('POST', `/api/v1/namespaces/${NS}/pods`, pod('mine', 'node-a', {}));
      expect(create.json.message).toBe('pods "mine" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "node-a" can only create mirror pods');
      expect((await admin('GET', `/api/v1/namespaces/${NS}/pods/p-b`)).status).toBe(200);
      expect((await asNode('DELETE', `/api/v1/namespaces/${NS}/pods/p-late`)).status).toBe(200);
    });

    it('writes its own Lease in kube-node-lease and no other', async () => {
      const leases = '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases';
      const lease = (name: string) => ({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name }, spec: { holderIdentity: name, leaseDurationSeconds: 40 } });
      expect((await asNode('POST', leases, lease('node-a'))).status).toBe(201);
      expect((await asNode('PATCH', `${leases}/node-a`, { spec: { leaseDurationSeconds: 30 } }, 'application/merge-patch+json')).status).toBe(200);
      const other = await asNode('POST', leases, lease('node-b'));
      expect(other.status).toBe(403);
      expect(other.json.message).toBe('leases.coordination.k8s.io "node-b" is forbidden: can only access node lease with the same name as the requesting node');
      expect((await call(tokenB, 'POST', leases, lease('node-b'))).status).toBe(201);
      const get = await asNode('GET', `${leases}/node-b`);
      expect(get.json.message).toBe(
        'leases.coordination.k8s.io "node-b" is forbidden: User "system:node:node-a" cannot get resource "leases" in API group "coordination.k8s.io" in the namespace "kube-node-lease": can only access node lease with the same name as the requesting node',
      );
      const elsewhere = await asNode('POST', `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`, lease('node-a'));
      expect(elsewhere.json.message).toBe(
        `leases.coordination.k8s.io is forbidden: User "system:node:node-a" cannot create resource "leases" in API group "coordination.k8s.io" in the namespace "${NS}": can only access leases in the "kube-node-lease" system namespace`,
      );
    });

    it('reads the claims and volumes of its own pods; writes only the local-path finalizer of its own local-path volumes', async () => {
      const pv = (name: string, node: string, extra: Record<string, unknown> = {}) => ({
        apiVersion: 'v1',
        kind: 'PersistentVolume',
        metadata: { name, ...extra },
        spec: {
          capacity: { storage: '1Gi' },
          accessModes: ['ReadWriteOnce'],
          hostPath: { path: `/tmp/${name}` },
          nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node] }] }] } },
        },
      });
      for (const [name, node] of [['pv-a', 'node-a'], ['pv-b', 'node-b']]) {
        expect((await admin('POST', '/api/v1/persistentvolumes', pv(name, node))).status).toBe(201);
        const claim = { metadata: { name: `claim-${node}` }, spec: { accessModes: ['ReadWriteOnce'], volumeName: name, storageClassName: '', resources: { requests: { storage: '1Gi' } } } };
        expect((await admin('POST', `/api/v1/namespaces/${NS}/persistentvolumeclaims`, claim)).status).toBe(201);
        const user = pod(`user-${node}`, node, { volumes: [{ name: 'd', persistentVolumeClaim: { claimName: `claim-${node}` } }] });
        expect((await admin('POST', `/api/v1/namespaces/${NS}/pods`, user)).status).toBe(201);
      }
      expect((await asNode('GET', `/api/v1/namespaces/${NS}/persistentvolumeclaims/claim-node-a`)).status).toBe(200);
      expect((await asNode('GET', '/api/v1/persistentvolumes/pv-a')).status).toBe(200);
      expect((await asNode('GET', `/api/v1/namespaces/${NS}/persistentvolumeclaims/claim-node-b`)).json.message).toBe(forbiddenGet('persistentvolumeclaims', 'claim-node-b', 'node-a'));
      expect((await asNode('GET', '/api/v1/persistentvolumes/pv-b')).json.message).toBe(
        `persistentvolumes "pv-b" is forbidden: User "system:node:node-a" cannot get resource "persistentvolumes" in API group "" at the cluster scope: no relationship found between node 'node-a' and this object`,
      );
      expect((await asNode('GET', '/api/v1/persistentvolumes')).json.message).toBe(
        'persistentvolumes is forbidden: User "system:node:node-a" cannot list resource "persistentvolumes" in API group "" at the cluster scope: can only get individual resources of this type',
      );

      // A deleted local-path volume on node-a: node-a may drop its cleanup finalizer, and change nothing else.
      const local = pv('pvc-local-a', 'node-a', { annotations: { 'pv.kubernetes.io/provisioned-by': 'rancher.io/local-path' }, finalizers: ['skiff.io/local-path-cleanup'] });
      expect((await admin('POST', '/api/v1/persistentvolumes', local)).status).toBe(201);
      const localB = pv('pvc-local-b', 'node-b', { annotations: { 'pv.kubernetes.io/provisioned-by': 'rancher.io/local-path' }, finalizers: ['skiff.io/local-path-cleanup'] });
      expect((await admin('POST', '/api/v1/persistentvolumes', localB)).status).toBe(201);
      const merge = 'application/merge-patch+json';
      const relabel = await asNode('PATCH', '/api/v1/persistentvolumes/pvc-local-a', { metadata: { labels: { x: 'y' } } }, merge);
      expect(relabel.json.message).toBe('persistentvolumes "pvc-local-a" is forbidden: node "node-a" may only remove the skiff.io/local-path-cleanup finalizer of its own local-path volumes');
      const theirs = await asNode('PATCH', '/api/v1/persistentvolumes/pvc-local-b', { metadata: { finalizers: [] } }, merge);
      expect(theirs.status).toBe(403);
      // Its other finalizers (pv-protection) stay: dropping them too is refused.
      const others = ((await asNode('GET', '/api/v1/persistentvolumes/pvc-local-a')).json.metadata.finalizers as string[]).filter((f) => f !== 'skiff.io/local-path-cleanup');
      expect(others).toEqual(['kubernetes.io/pv-protection']);
      expect((await asNode('PATCH', '/api/v1/persistentvolumes/pvc-local-a', { metadata: { finalizers: [] } }, merge)).status).toBe(403);
      expect((await asNode('PATCH', '/api/v1/persistentvolumes/pvc-local-a', { metadata: { finalizers: others } }, merge)).status).toBe(200);
      expect((await admin('GET', '/api/v1/persistentvolumes/pvc-local-a')).json.metadata.finalizers ?? []).not.toContain('skiff.io/local-path-cleanup');
      expect((await admin('GET', '/api/v1/persistentvolumes/pvc-local-b')).json.metadata.finalizers).toContain('skiff.io/local-path-cleanup');
      // A volume that does not exist reads as a 404 (its directory is an orphan to remove).
      expect((await asNode('GET', '/api/v1/persistentvolumes/pvc-gone')).status).toBe(404);
    });

    it('decides the same from an apiserver with no watch-kept view (a Lambda instance)', async () => {
      const backend = open();
      const api = new ApiServer({ backend });
      const get = async (path: string) => {
        const r = await api.handle({ method: 'GET', path, query: new URLSearchParams(), headers: { authorization: `Bearer ${tokenA}` }, body: Buffer.alloc(0) });
        return { status: r.status, json: JSON.parse(String(r.body)) };
      };
      expect((await get(`/api/v1/namespaces/${NS}/secrets/s-a`)).status).toBe(200);
      expect((await get(`/api/v1/namespaces/${NS}/configmaps/cm-a`)).status).toBe(200);
      expect((await get(`/api/v1/namespaces/${NS}/secrets/s-b`)).json.message).toBe(forbiddenGet('secrets', 's-b', 'node-a'));
      await backend.close();
      // Admins are untouched by either.
      expect((await admin('GET', `/api/v1/namespaces/${NS}/secrets/s-b`)).status).toBe(200);
    });
  });
}
