// A watch of a collection with a change feed (Services, Endpoints) gets the same events on both backends,
// with and without a label selector. The DynamoDB backend's feed items carry a change without its
// previous value (storage/dynamodb.ts feedItem): a watch without a selector asks for none, and one with
// a selector, which needs it to tell ADDED and DELETED from MODIFIED, asks for it (WatchOptions.prevKv).

import { describe, expect, it } from 'vitest';
import { Registry } from '../lambdas/apiserver/registry.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import { parseLabelSelector } from '../lambdas/machinery/selectors.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { testStores } from './support/backends.ts';

const endpoints = findResource('', 'v1', 'endpoints')!;
const stores = await testStores('watch-feeds');

for (const [label, makeStore, enabled] of stores) {
  describe.skipIf(!enabled)(`watch of a fed collection on ${label}`, () => {
    it('without a selector: every change, MODIFIED for updates; with one: ADDED and DELETED as labels come and go', async () => {
      const open = await makeStore();
      const backend = open();
      const registry = new Registry(backend);
      try {
        // A write first: a watch from resourceVersion "0" would start with the current state instead.
        await registry.create(endpoints, 'other', { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'x', namespace: 'other' } });
        const from = String(await backend.currentRevision());
        const ep = (labels: Record<string, string>, ip: string): KubeObject => ({
          apiVersion: 'v1',
          kind: 'Endpoints',
          metadata: { name: 'web', namespace: 'w', labels },
          subsets: [{ addresses: [{ ip }], ports: [{ port: 80 }] }],
        });
        const put = async (labels: Record<string, string>, ip: string) => {
          const cur = await registry.get(endpoints, 'w', 'web');
          return registry.update(endpoints, 'w', 'web', { ...ep(labels, ip), metadata: { ...ep(labels, ip).metadata, resourceVersion: cur.metadata.resourceVersion } });
        };
        await registry.create(endpoints, 'w', ep({ app: 'a' }, '10.0.0.1'));
        await put({ app: 'b' }, '10.0.0.1'); // leaves the selector
        await put({ app: 'a' }, '10.0.0.2'); // comes back
        await put({ app: 'a' }, '10.0.0.3'); // stays
        await registry.delete(endpoints, 'w', 'web');

        const seen = async (labelSelector?: string) => {
          const ac = new AbortController();
          const out: string[] = [];
          // drain: the watch ends once it has sent every change up to the revision it began at (until).
          const p = { resourceVersion: from, drain: true, ...(labelSelector ? { labelSelector: parseLabelSelector(labelSelector) } : {}) };
          for await (const ev of registry.watch(endpoints, 'w', p, ac.signal)) {
            const o = ev.object as KubeObject & { subsets?: { addresses?: { ip: string }[] }[] };
            out.push(`${ev.type} ${o.metadata.labels?.app} ${o.subsets?.[0]?.addresses?.[0]?.ip}`);
          }
          ac.abort();
          return out;
        };
        expect(await seen()).toEqual(['ADDED a 10.0.0.1', 'MODIFIED b 10.0.0.1', 'MODIFIED a 10.0.0.2', 'MODIFIED a 10.0.0.3', 'DELETED a 10.0.0.3']);
        expect(await seen('app=a')).toEqual(['ADDED a 10.0.0.1', 'DELETED b 10.0.0.1', 'ADDED a 10.0.0.2', 'MODIFIED a 10.0.0.3', 'DELETED a 10.0.0.3']);
        expect(await seen('app=b')).toEqual(['ADDED b 10.0.0.1', 'DELETED a 10.0.0.2']);
      } finally {
        await backend.close();
      }
    }, 60_000);
  });
}
