// The informer on a polling client (agents of a deployed cluster: `skiff agent --poll-seconds`): it
// re-lists on its period instead of holding a watch open, and the re-list diff still reports every
// add, change, delete and delete-and-recreate to its handlers.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { until } from './support/until.ts';
import { Informer, type InformerEvent } from '../node-agent/informer.ts';
import { KubeClient, type WatchEvent } from '../node-agent/kube-client.ts';

let c: TestCluster;
beforeAll(async () => {
  c = await startTestCluster();
});
afterAll(async () => {
  await c?.destroy();
});

/** A client that counts lists and refuses to watch: a poll-mode informer must never open one. */
class CountingClient extends KubeClient {
  lists = 0;
  watches = 0;
  override get<T>(path: string): Promise<T> {
    this.lists++;
    return super.get<T>(path);
  }
  override watch(): AsyncGenerator<WatchEvent> {
    this.watches++;
    throw new Error('a polling informer opened a watch');
  }
}

describe('informer in poll mode', () => {
  it('turns periodic lists into ADDED/MODIFIED/DELETED, without a watch', async () => {
    const kube = new CountingClient({ server: c.url, caCert: c.caCert, token: c.token, pollMs: 300 });
    const events: string[] = [];
    // The namespace's own kube-root-ca.crt (published by a loop, maybe during the test) is not this test's.
    const inf = new Informer(kube, '/api/v1/namespaces/default/configmaps').on((t: InformerEvent, o) => {
      if (o.metadata.name !== 'kube-root-ca.crt') events.push(`${t} ${o.metadata.name} ${o.data?.v ?? ''}`.trim());
    });
    inf.start();
    await inf.synced;
    expect(events).toEqual([]);
    const cm = (name: string, v: string) => JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { v } });
    expect((await c.kubectl(['apply', '-f', '-'], cm('a', '1'))).code).toBe(0);
    await until('ADDED seen', async () => events.includes('ADDED a 1'), 10_000);
    expect((await c.kubectl(['apply', '-f', '-'], cm('a', '2'))).code).toBe(0);
    await until('MODIFIED seen', async () => events.includes('MODIFIED a 2'), 10_000);
    // Deleted and created again between two polls: the new object is another one (new uid).
    const uid1 = inf.items.get('default/a')!.metadata.uid;
    const n = events.length;
    expect((await c.kubectl(['delete', 'configmap', 'a'])).code).toBe(0);
    expect((await c.kubectl(['create', '-f', '-'], cm('a', '3'))).code).toBe(0);
    await until('recreation seen', async () => inf.items.get('default/a')?.metadata.uid !== uid1 && inf.items.get('default/a')?.data.v === '3', 10_000);
    expect(events.slice(n)).toEqual(['DELETED a 2', 'ADDED a 3']);
    expect((await c.kubectl(['delete', 'configmap', 'a'])).code).toBe(0);
    await until('DELETED seen', async () => events.at(-1) === 'DELETED a 3', 10_000);
    const lists = kube.lists;
    await inf.stop();
    expect(kube.watches).toBe(0);
    expect(lists).toBeGreaterThanOrEqual(4);
    kube.close();
  });
});

describe('shared informers', () => {
  it('the proxy and DNS follow one collection with one poll: one informer per client and path, stopped by its last user', async () => {
    const kube = new CountingClient({ server: c.url, caCert: c.caCert, token: c.token, pollMs: 200 });
    const a = Informer.shared(kube, '/api/v1/namespaces/default/secrets');
    const b = Informer.shared(kube, '/api/v1/namespaces/default/secrets');
    expect(a).toBe(b);
    expect(Informer.shared(kube, '/api/v1/namespaces/default/configmaps')).not.toBe(a);
    const seenA: string[] = [];
    const seenB: string[] = [];
    a.on((t, o) => seenA.push(`${t} ${o.metadata.name}`)).start();
    b.on((t, o) => seenB.push(`${t} ${o.metadata.name}`)).start();
    await a.synced;
    const before = kube.lists;
    await new Promise((r) => setTimeout(r, 1000));
    // One poll every 200 ms for both users (about 5 in a second), not two.
    expect(kube.lists - before).toBeLessThanOrEqual(6);
    expect(kube.lists - before).toBeGreaterThanOrEqual(2);
    expect((await c.kubectl(['create', 'secret', 'generic', 's1', '--from-literal=k=v'])).code).toBe(0);
    await until('both users see it', async () => seenA.includes('ADDED s1') && seenB.includes('ADDED s1'), 10_000);
    // The first user leaves; the other keeps following.
    await a.stop();
    expect((await c.kubectl(['delete', 'secret', 's1'])).code).toBe(0);
    await until('the remaining user sees the delete', async () => seenB.includes('DELETED s1'), 10_000);
    await b.stop();
    const stoppedAt = kube.lists;
    await new Promise((r) => setTimeout(r, 600));
    expect(kube.lists).toBe(stoppedAt);
    // After its last user stopped, the next user gets a fresh informer.
    expect(Informer.shared(kube, '/api/v1/namespaces/default/secrets')).not.toBe(a);
    kube.close();
  });
});

describe('paged lists', () => {
  it("an informer lists in pages of 500 (a Lambda apiserver's answer is at most 6 MB)", async () => {
    const kube = new CountingClient({ server: c.url, caCert: c.caCert, token: c.token, pollMs: 60_000 });
    const paths: string[] = [];
    const get = kube.get.bind(kube);
    kube.get = <T>(path: string) => {
      paths.push(path);
      return get<T>(path);
    };
    // 1,100 ConfigMaps in a namespace of their own, made through the API.
    expect((await c.kubectl(['create', 'namespace', 'paged'])).code).toBe(0);
    const admin = new KubeClient({ server: c.url, caCert: c.caCert, token: c.token });
    for (let i = 0; i < 1100; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) => admin.create('/api/v1/namespaces/paged/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `cm-${i + j}` }, data: { v: '1' } })),
      );
    }
    const inf = new Informer(kube, '/api/v1/namespaces/paged/configmaps');
    inf.start();
    await inf.synced;
    // Three pages: 500, 500 and the rest (with kube-root-ca.crt, once its loop has published it).
    expect(paths.filter((p) => p.startsWith('/api/v1/namespaces/paged/configmaps?limit=500'))).toHaveLength(3);
    expect(paths.filter((p) => p.includes('&continue='))).toHaveLength(2);
    expect([...inf.items.keys()].filter((k) => k.startsWith('paged/cm-'))).toHaveLength(1100);
    expect(paths).toHaveLength(3);
    await inf.stop();
    kube.close();
    admin.close();
  }, 120_000);

  it('pages are one snapshot: a delete between two pages does not make the second page skip or repeat an object', async () => {
    const kube = new KubeClient({ server: c.url, caCert: c.caCert, token: c.token });
    const names = new Set<string>();
    let pages = 0;
    const get = kube.get.bind(kube);
    kube.get = async <T>(path: string) => {
      const page = await get<{ items: { metadata: { name: string } }[] }>(path);
      // After the first page, delete an object the second page would hold and one the first page held.
      if (pages++ === 0) {
        await kube.delete('/api/v1/namespaces/paged/configmaps/cm-999');
        await kube.delete('/api/v1/namespaces/paged/configmaps/cm-1');
      }
      return page as T;
    };
    const list = await kube.list<{ metadata: { name: string } }>('/api/v1/namespaces/paged/configmaps');
    for (const o of list.items) {
      expect(names.has(o.metadata.name)).toBe(false);
      names.add(o.metadata.name);
    }
    // The snapshot of the first page: all 1,100, both deleted objects with them (cm-999 sorts into a later page).
    expect(pages).toBe(3);
    expect([...names].filter((n) => n.startsWith('cm-'))).toHaveLength(1100);
    expect(names.has('cm-999')).toBe(true);
    expect(names.has('cm-1')).toBe(true);
    expect(await kube.getOptional('/api/v1/namespaces/paged/configmaps/cm-999')).toBeUndefined();
    kube.close();
  }, 60_000);
});

describe('changes only (a deployed agent following Services and Endpoints)', () => {
  it('after one list, each poll asks what changed since (a watch the apiserver ends once caught up), and the cache still converges', async () => {
    const kube = new CountingClient({ server: c.url, caCert: c.caCert, token: c.token, pollMs: 200 });
    const watched: string[] = [];
    kube.watch = async function* (path: string, rv: string, signal?: AbortSignal) {
      watched.push(path);
      yield* KubeClient.prototype.watch.call(kube, path, rv, signal);
    } as typeof kube.watch;
    expect((await c.kubectl(['create', 'namespace', 'changes'])).code).toBe(0);
    const events: string[] = [];
    const inf = new Informer(kube, '/api/v1/namespaces/changes/configmaps', undefined, { changesOnly: true }).on((t, o) => {
      if (o.metadata.name !== 'kube-root-ca.crt') events.push(`${t} ${o.metadata.name} ${o.data?.v ?? ''}`.trim());
    });
    inf.start();
    await inf.synced;
    const cm = (name: string, v: string) => JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'changes' }, data: { v } });
    expect((await c.kubectl(['apply', '-f', '-'], cm('a', '1'))).code).toBe(0);
    await until('ADDED', async () => events.includes('ADDED a 1'), 10_000);
    expect((await c.kubectl(['apply', '-f', '-'], cm('a', '2'))).code).toBe(0);
    await until('MODIFIED', async () => events.includes('MODIFIED a 2'), 10_000);
    expect((await c.kubectl(['delete', 'configmap', 'a', '-n', 'changes'])).code).toBe(0);
    await until('DELETED', async () => events.includes('DELETED a 2'), 10_000);
    // One list at the start; everything since came from catch-up watches of at most a second.
    expect(kube.lists).toBe(1);
    expect(watched.length).toBeGreaterThanOrEqual(3);
    expect(watched.every((p) => p.includes('timeoutSeconds=1&drain=true'))).toBe(true);
    expect(inf.items.has('changes/a')).toBe(false);
    await inf.stop();
    kube.close();
  }, 30_000);

  it('the apiserver ends a drain watch once it has caught up: at once when nothing changed, with a BOOKMARK at the current revision', async () => {
    const kube = new KubeClient({ server: c.url, caCert: c.caCert, token: c.token });
    const list = await kube.list('/api/v1/namespaces/default/configmaps');
    const t0 = performance.now();
    const got: WatchEvent[] = [];
    for await (const ev of kube.watch('/api/v1/namespaces/default/configmaps?timeoutSeconds=1&drain=true', list.metadata.resourceVersion)) got.push(ev);
    expect(performance.now() - t0).toBeLessThan(500);
    expect(got.map((e) => e.type)).toEqual(['BOOKMARK']);
    expect(Number(got[0]!.object.metadata.resourceVersion)).toBeGreaterThanOrEqual(Number(list.metadata.resourceVersion));
    // With changes after the list: they, then the bookmark, then the end.
    await kube.create('/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'drained' }, data: {} });
    const after: WatchEvent[] = [];
    for await (const ev of kube.watch('/api/v1/namespaces/default/configmaps?timeoutSeconds=1&drain=true', list.metadata.resourceVersion)) after.push(ev);
    expect(after.map((e) => `${e.type} ${e.type === 'BOOKMARK' ? '' : e.object.metadata.name}`.trim())).toEqual(['ADDED drained', 'BOOKMARK']);
    kube.close();
  }, 30_000);
});
