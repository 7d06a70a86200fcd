// The namespace controller on both backends: a deleted namespace is emptied, then removed, whether its
// events arrive once, twice, out of order or all in one batch; a held object keeps it Terminating.

import { describe, expect, it } from 'vitest';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import type { Backend } from '../lambdas/storage/backend.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import { namespaceController } from '../lambdas/controllers/namespace.ts';
import type { ChangeEvent } from '../lambdas/controllers/controller.ts';
import { testBackends } from './support/backends.ts';

const namespaces = findResource('', 'v1', 'namespaces')!;
const configmaps = findResource('', 'v1', 'configmaps')!;
const backends = await testBackends('ns');

/** Runs the deletion with the given delivery of events; returns what is left. */
async function run(make: () => Promise<Backend>, deliver: (evs: ChangeEvent[]) => ChangeEvent[]) {
  const backend = await make();
  const api = new ApiServer({ backend });
  const ctx = api.controllerContext();
  const reg = api.registry;
  const evs: ChangeEvent[] = [];
  const ns = await reg.create(namespaces, undefined, { metadata: { name: 'doomed' } });
  evs.push({ type: 'ADDED', resource: namespaces, object: ns });
  await reg.create(configmaps, 'doomed', { metadata: { name: 'a' } });
  await reg.create(configmaps, 'doomed', { metadata: { name: 'held', finalizers: ['example.com/hold'] } });
  const { object } = await reg.delete(namespaces, undefined, 'doomed');
  evs.push({ type: 'MODIFIED', resource: namespaces, object });
  const pass = async () => {
    for (const ev of deliver(evs)) for (const k of namespaceController.keys(ev)) await namespaceController.reconcile(k, ctx);
  };
  await pass();
  const whileHeld = (await reg.get(namespaces, undefined, 'doomed')).status?.phase;
  const leftWhileHeld = (await reg.list(configmaps, 'doomed')).items.map((c) => c.metadata.name);
  await reg.guaranteedUpdate(configmaps, 'doomed', 'held', undefined, {}, (c) => ({ ...c, metadata: { ...c.metadata, finalizers: [] } }));
  await pass();
  const gone = await reg.get(namespaces, undefined, 'doomed').then(() => false, (e) => e.code === 404);
  const rev = await backend.currentRevision();
  await pass(); // once more after the end: nothing to write
  const quiet = (await backend.currentRevision()) === rev;
  await backend.close();
  return { whileHeld, leftWhileHeld, gone, quiet };
}

for (const [name, make, enabled] of backends) {
  describe.skipIf(!enabled)(`namespace controller on ${name}`, () => {
    it('empties then removes a deleted namespace, the same for clean, duplicated, reversed and batched delivery', async () => {
      const clean = await run(make, (e) => e);
      expect(clean).toEqual({ whileHeld: 'Terminating', leftWhileHeld: ['held'], gone: true, quiet: true });
      expect(await run(make, (e) => [...e, ...e, ...e])).toEqual(clean);
      expect(await run(make, (e) => [...e].reverse())).toEqual(clean);
      expect(await run(make, (e) => e.slice(-1))).toEqual(clean);
    });
  });
}
