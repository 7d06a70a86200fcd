// The official JavaScript client (@kubernetes/client-node 1.x) against a real local cluster: list,
// create, errors, watch and an informer, as an application or operator would use them.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as k8s from '@kubernetes/client-node';
import { startTestCluster, type TestCluster } from './support/cluster.ts';

let c: TestCluster;
let kc: k8s.KubeConfig;
let core: k8s.CoreV1Api;

beforeAll(async () => {
  // The apiserver alone: no controller writes to what the test inspects.
  c = await startTestCluster({ controllers: false });
  kc = new k8s.KubeConfig();
  kc.loadFromFile(c.kubeconfigPath);
  core = kc.makeApiClient(k8s.CoreV1Api);
});
afterAll(async () => {
  await c?.destroy();
});

const pod = (name: string, labels: Record<string, string> = {}): k8s.V1Pod => ({
  metadata: { name, labels },
  spec: { containers: [{ name: 'main', image: 'busybox:stable' }] },
});

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('@kubernetes/client-node', () => {
  it('creates, reads and lists', async () => {
    const ns = await core.createNamespace({ body: { metadata: { name: 'cn' } } });
    expect(ns.metadata?.name).toBe('cn');
    expect(ns.status?.phase).toBe('Active');
    const created = await core.createNamespacedPod({ namespace: 'cn', body: pod('a', { app: 'x' }) });
    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.status?.phase).toBe('Pending');
    expect(created.spec?.restartPolicy).toBe('Always');
    await core.createNamespacedPod({ namespace: 'cn', body: pod('b', { app: 'y' }) });
    const list = await core.listNamespacedPod({ namespace: 'cn' });
    expect(list.items.map((p) => p.metadata?.name)).toEqual(['a', 'b']);
    const sel = await core.listNamespacedPod({ namespace: 'cn', labelSelector: 'app=y' });
    expect(sel.items.map((p) => p.metadata?.name)).toEqual(['b']);
    const paged = await core.listNamespacedPod({ namespace: 'cn', limit: 1 });
    expect(paged.items).toHaveLength(1);
    expect(paged.metadata?._continue).toBeTruthy();
    const rest = await core.listNamespacedPod({ namespace: 'cn', limit: 1, _continue: paged.metadata!._continue });
    expect(rest.items.map((p) => p.metadata?.name)).toEqual(['b']);
    expect(rest.metadata?._continue).toBeFalsy();
  });

  it('reports Kubernetes errors as ApiException with a Status body', async () => {
    const err = await core.readNamespacedPod({ namespace: 'cn', name: 'missing' }).catch((e) => e);
    expect(err).toBeInstanceOf(k8s.ApiException);
    expect(err.code).toBe(404);
    const body = JSON.parse(err.body);
    expect(body).toMatchObject({ kind: 'Status', reason: 'NotFound', code: 404, message: 'pods "missing" not found' });
    const invalid = await core.createNamespacedPod({ namespace: 'cn', body: { metadata: { name: 'x' }, spec: { containers: [] } } }).catch((e) => e);
    expect(invalid.code).toBe(422);
    expect(JSON.parse(invalid.body).reason).toBe('Invalid');
  });

  it('watches from a list resourceVersion', async () => {
    const list = await core.listNamespacedConfigMap({ namespace: 'cn' });
    const seen: string[] = [];
    const w = new k8s.Watch(kc);
    const ctl = await w.watch(
      '/api/v1/namespaces/cn/configmaps',
      { resourceVersion: list.metadata?.resourceVersion, allowWatchBookmarks: true },
      (type, obj) => {
        if (type !== 'BOOKMARK') seen.push(`${type} ${obj.metadata.name}`);
      },
      () => {},
    );
    await core.createNamespacedConfigMap({ namespace: 'cn', body: { metadata: { name: 'w1' }, data: { k: 'v' } } });
    await core.patchNamespacedConfigMap(
      { namespace: 'cn', name: 'w1', body: { data: { k: 'v2' } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await core.deleteNamespacedConfigMap({ namespace: 'cn', name: 'w1' });
    await waitFor(() => seen.length >= 3);
    ctl.abort();
    expect(seen).toEqual(['ADDED w1', 'MODIFIED w1', 'DELETED w1']);
  });

  it('an informer keeps a cache in sync', async () => {
    const informer = k8s.makeInformer(kc, '/api/v1/namespaces/cn/pods', () => core.listNamespacedPod({ namespace: 'cn' }));
    const events: string[] = [];
    informer.on('add', (p) => events.push(`add ${p.metadata?.name}`));
    informer.on('update', (p) => events.push(`update ${p.metadata?.name}`));
    informer.on('delete', (p) => events.push(`delete ${p.metadata?.name}`));
    await informer.start();
    await waitFor(() => informer.list().length === 2);
    await core.createNamespacedPod({ namespace: 'cn', body: pod('c') });
    await waitFor(() => informer.list('cn').some((p) => p.metadata?.name === 'c'));
    await core.patchNamespacedPod(
      { namespace: 'cn', name: 'c', body: { metadata: { labels: { touched: 'yes' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
    );
    await waitFor(() => informer.get('c', 'cn')?.metadata?.labels?.touched === 'yes');
    await core.deleteNamespacedPod({ namespace: 'cn', name: 'a' });
    await waitFor(() => !informer.get('a', 'cn'));
    await informer.stop();
    expect(events).toEqual(['add a', 'add b', 'add c', 'update c', 'delete a']);
  });
});
