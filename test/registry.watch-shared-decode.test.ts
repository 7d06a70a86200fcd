// Watches of one SQLite store share one read of the log when caught up, and so the parse of each event's
// value (registry.ts decodeEventValue): two watches of pods get one parse of a pod event between them, not
// one each. Each still gets its own top-level object; what is below it is shared and read-only.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { Registry, type WatchEventOut } from '../lambdas/apiserver/registry.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { SqliteBackend } from '../lambdas/storage/sqlite.ts';

const configmaps = findResource('', 'v1', 'configmaps')!;

it('two caught-up watches get one parse of each event, each with its own top-level object', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-shared-decode-'));
  const backend = new SqliteBackend(join(dir, 'db'), { compactIntervalMs: 0 });
  const registry = new Registry(backend);
  const ac = new AbortController();
  try {
    await registry.create(configmaps, 'd', { metadata: { name: 'first' } });
    const from = String(await backend.currentRevision());
    const firstEvent = async () => {
      for await (const ev of registry.watch(configmaps, 'd', { resourceVersion: from }, ac.signal)) return ev;
      throw new Error('the watch ended without an event');
    };
    const a = firstEvent();
    const b = firstEvent();
    // Both watches wait at the same revision before the write, as the loops' informer and a client's do.
    await new Promise((r) => setTimeout(r, 50));
    await registry.create(configmaps, 'd', { metadata: { name: 'second', labels: { x: 'y' } }, data: { k: 'v' } });
    const [ea, eb] = (await Promise.all([a, b])) as [WatchEventOut, WatchEventOut];
    const [oa, ob] = [ea.object as KubeObject, eb.object as KubeObject];
    expect([ea.type, oa.metadata.name, oa.data]).toEqual(['ADDED', 'second', { k: 'v' }]);
    expect(ob).toEqual(oa);
    expect(ob).not.toBe(oa);
    expect(ob.metadata).toBe(oa.metadata); // one parse
  } finally {
    ac.abort();
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
