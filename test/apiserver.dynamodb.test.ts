// The same apiserver handler on the production backend: kubectl and client-node against a local HTTPS
// apiserver whose store is a DynamoDB table (moto server, or SKIFF_DYNAMODB_ENDPOINT).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from './support/until.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { startLocalCluster } from '../lambdas/local/server.ts';
import { DynamoBackend, ensureTable } from '../lambdas/storage/dynamodb.ts';
import { dynamoTestEndpoint, uniqueTableName } from './support/dynamodb.ts';
import { withKubectl, type TestCluster } from './support/cluster.ts';

const ddb = await dynamoTestEndpoint();
let c: TestCluster;

beforeAll(async () => {
  if (!ddb) return;
  const tableName = uniqueTableName('skiff-api');
  await ensureTable(ddb.client, tableName);
  const dataDir = mkdtempSync(join(tmpdir(), 'skiff-ddb-'));
  const backend = new DynamoBackend({ client: ddb.client, tableName, pollIntervalMs: 100 });
  c = withKubectl(await startLocalCluster({ dataDir, port: 0, backend, watchProgressMs: 200 }), dataDir);
});
afterAll(async () => {
  await c?.destroy();
  await ddb?.stop();
});

const MANIFEST = `apiVersion: v1
kind: Namespace
metadata:
  name: prod
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: prod
data:
  mode: fast
---
apiVersion: v1
kind: Pod
metadata:
  name: api
  namespace: prod
  labels: {app: api}
spec:
  containers:
  - name: api
    image: busybox:stable
`;

describe.skipIf(!ddb)('apiserver on DynamoDB', () => {
  it('kubectl apply, get, patch, delete', async () => {
    const f = c.file('m.yaml', MANIFEST);
    const a = await c.kubectl(['apply', '-f', f]);
    expect(a.stderr).toBe('');
    expect(a.stdout.trim().split('\n')).toEqual(['namespace/prod created', 'configmap/settings created', 'pod/api created']);
    expect((await c.kubectl(['apply', '-f', f])).stdout.trim().split('\n')).toEqual(['namespace/prod unchanged', 'configmap/settings unchanged', 'pod/api unchanged']);
    const rows = (await c.kubectl(['get', 'pods', '-n', 'prod'])).stdout.trim().split('\n');
    expect(rows[0]!.split(/\s+/)).toEqual(['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE']);
    expect(rows[1]!.split(/\s+/).slice(0, 4)).toEqual(['api', '0/1', 'Pending', '0']);
    const p = await c.kubectl(['patch', 'cm', 'settings', '-n', 'prod', '--type=merge', '-p', '{"data":{"mode":"safe"}}']);
    expect(p.stdout.trim()).toBe('configmap/settings patched');
    const cm = JSON.parse((await c.kubectl(['get', 'cm', 'settings', '-n', 'prod', '-o', 'json'])).stdout);
    expect(cm.data).toEqual({ mode: 'safe' });
    expect((await c.kubectl(['delete', 'pod', 'api', '-n', 'prod'])).stdout.trim()).toBe('pod "api" deleted');
    expect((await c.kubectl(['get', 'pod', 'api', '-n', 'prod'])).stderr.trim()).toBe('Error from server (NotFound): pods "api" not found');
  });

  it('client-node: list, watch from the list resourceVersion, stale update conflicts', async () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(c.kubeconfigPath);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    // With the namespace's own kube-root-ca.crt, once the root CA loop has published it.
    await until('kube-root-ca.crt in prod', async () => (await core.listNamespacedConfigMap({ namespace: 'prod' })).items.length === 2);
    const list = await core.listNamespacedConfigMap({ namespace: 'prod' });
    expect(list.items.map((i) => i.metadata?.name)).toEqual(['kube-root-ca.crt', 'settings']);
    const seen: string[] = [];
    const ctl = await new k8s.Watch(kc).watch(
      '/api/v1/namespaces/prod/configmaps',
      { resourceVersion: list.metadata?.resourceVersion },
      (type, obj) => seen.push(`${type} ${obj.metadata.name} ${obj.data?.n ?? ''}`.trim()),
      () => {},
    );
    const created = await core.createNamespacedConfigMap({ namespace: 'prod', body: { metadata: { name: 'w' }, data: { n: '1' } } });
    await core.replaceNamespacedConfigMap({ namespace: 'prod', name: 'w', body: { ...created, data: { n: '2' } } });
    const stale = await core.replaceNamespacedConfigMap({ namespace: 'prod', name: 'w', body: { ...created, data: { n: '3' } } }).catch((e) => e);
    expect(stale.code).toBe(409);
    await core.deleteNamespacedConfigMap({ namespace: 'prod', name: 'w' });
    for (let i = 0; i < 100 && seen.length < 3; i++) await new Promise((r) => setTimeout(r, 50));
    ctl.abort();
    expect(seen).toEqual(['ADDED w 1', 'MODIFIED w 2', 'DELETED w 2']);
  });

  it('an object past the DynamoDB item limit is a 413 Status, and nothing is written', async () => {
    // 400 KiB of data: under ConfigMap's own 1 MiB rule and the 3 MiB body limit, over what an item holds.
    const path = c.file('big.json', JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'big', namespace: 'prod' }, data: { a: 'x'.repeat(400 * 1024) } }));
    const r = await c.kubectl(['create', '-f', path]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Request entity too large: the object is \d+ bytes, over the DynamoDB backend's limit of 358400 bytes/);
    expect((await c.kubectl(['get', 'configmap', 'big', '-n', 'prod'])).stderr).toMatch(/NotFound/);
  });
});
