// Event aggregation and spam filtering (client-go's EventCorrelator, lambdas/controllers/events.ts) on
// the real stores: identical events are one Event with a count; similar events (same source, object,
// type and reason, different messages) are combined after 10; a source gets 25 events about an object,
// then one per 5 minutes; a replication controller creating 600 pods writes a handful of Events.

import { describe, expect, it } from 'vitest';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import type { ControllerContext } from '../lambdas/controllers/controller.ts';
import { EventCorrelator, recordEvent, type EventSpec } from '../lambdas/controllers/events.ts';
import { replicationController as rcc } from '../lambdas/controllers/replication.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import type { Backend } from '../lambdas/storage/backend.ts';
import { testStores } from './support/backends.ts';

const rcs = findResource('', 'v1', 'replicationcontrollers')!;
const pods = findResource('', 'v1', 'pods')!;
const eventsRes = findResource('', 'v1', 'events')!;
const nsRes = findResource('', 'v1', 'namespaces')!;

const backends = await testStores('events');

async function newCtx(open: () => Backend): Promise<ControllerContext> {
  const ctx = new ApiServer({ backend: open() }).controllerContext();
  await ctx.registry.create(nsRes, undefined, { metadata: { name: 'default' } });
  return ctx;
}

/** A clock the test moves. */
function clock(start = Date.parse('2026-01-01T00:00:00Z')) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

const about = (name: string, uid = `uid-${name}`): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ReplicationController',
  metadata: { name, namespace: 'default', uid },
});
const created = (i: number): EventSpec => ({ type: 'Normal', reason: 'SuccessfulCreate', message: `Created pod: p-${i}`, component: 'replication-controller' });

describe('EventCorrelator', () => {
  it('spam filter: 25 events per source and object at once, then one per 5 minutes; other objects and sources have their own', () => {
    const c = clock();
    const corr = new EventCorrelator({ now: c.now });
    const same = { type: 'Warning' as const, reason: 'BackOff', message: 'Back-off restarting', component: 'kubelet', host: 'n1' };
    const outcomes = Array.from({ length: 30 }, () => corr.correlate(about('a'), same).skip);
    expect(outcomes.filter((s) => !s).length).toBe(25);
    expect(outcomes.slice(25).every((s) => s)).toBe(true);
    expect(corr.correlate(about('b'), same).skip).toBe(false);
    expect(corr.correlate(about('a'), { ...same, host: 'n2' }).skip).toBe(false);
    c.advance(299_000);
    expect(corr.correlate(about('a'), same).skip).toBe(true);
    c.advance(1_000);
    expect(corr.correlate(about('a'), same).skip).toBe(false);
    expect(corr.correlate(about('a'), same).skip).toBe(true);
  });

  it('its memory is an LRU: a forgotten object starts with a full bucket', () => {
    const corr = new EventCorrelator({ now: clock().now, cacheSize: 2 });
    const e = created(0);
    for (let i = 0; i < 25; i++) corr.correlate(about('a'), e);
    expect(corr.correlate(about('a'), e).skip).toBe(true);
    corr.correlate(about('b'), e);
    corr.correlate(about('c'), e); // pushes 'a' out
    expect(corr.correlate(about('a'), e).skip).toBe(false);
  });

  it('similar events are combined from the 10th distinct message on; after 10 quiet minutes they are separate again', () => {
    const c = clock();
    const corr = new EventCorrelator({ now: c.now });
    const r = Array.from({ length: 12 }, (_, i) => corr.correlate(about('a'), created(i)));
    expect(r.slice(0, 9).map((x) => !x.skip && x.combined)).toEqual(Array(9).fill(false));
    expect(r[9]).toMatchObject({ skip: false, combined: true, message: '(combined from similar events): Created pod: p-9' });
    expect(r[11]).toMatchObject({ combined: true, message: '(combined from similar events): Created pod: p-11' });
    // Another reason about the same object is its own group.
    expect(corr.correlate(about('a'), { ...created(99), reason: 'SuccessfulDelete' })).toMatchObject({ combined: false });
    c.advance(600_001);
    expect(corr.correlate(about('a'), created(100))).toMatchObject({ skip: false, combined: false });
  });
});

for (const [label, makeStore, enabled] of backends) {
  describe.skipIf(!enabled)(`events on ${label}`, () => {
    it('identical events are one Event whose count grows; combined ones are one Event with the latest message', async () => {
      const ctx = await newCtx(await makeStore());
      const c = clock();
      const corr = new EventCorrelator({ now: c.now });
      const rc = about('web');
      expect(await recordEvent(ctx.registry, rc, created(0), corr)).toBe('created');
      c.advance(1000);
      expect(await recordEvent(ctx.registry, rc, created(0), corr)).toBe('counted');
      let evs = (await ctx.registry.list(eventsRes, 'default')).items;
      expect(evs).toHaveLength(1);
      expect(evs[0]).toMatchObject({ count: 2, message: 'Created pod: p-0', firstTimestamp: '2026-01-01T00:00:00Z', lastTimestamp: '2026-01-01T00:00:01Z' });

      const outcomes = [];
      for (let i = 1; i <= 40; i++) outcomes.push(await recordEvent(ctx.registry, rc, created(i), corr));
      // Accepted: 25 in all (2 above, 23 here); p-1..p-8 on their own, then one combined event.
      expect(outcomes.filter((o) => o === 'skipped')).toHaveLength(40 - 23);
      evs = (await ctx.registry.list(eventsRes, 'default')).items;
      expect(evs).toHaveLength(10);
      const combined = evs.filter((e) => e.message.startsWith('(combined from similar events): '));
      expect(combined).toHaveLength(1);
      expect(combined[0]).toMatchObject({ count: 23 - 8, message: '(combined from similar events): Created pod: p-23', reason: 'SuccessfulCreate', involvedObject: { name: 'web', uid: 'uid-web' } });
    });

    // Far more pods than the spam filter lets through (25); fewer through moto, which is slow.
    const many = label === 'SQLite' ? 600 : 150;
    it(`a replication controller creating ${many} pods writes a bounded number of Events`, async () => {
      const ctx = await newCtx(await makeStore());
      const labels = { app: 'many' };
      const rc = await ctx.registry.create(rcs, 'default', {
        metadata: { name: 'many' },
        spec: { replicas: many, selector: labels, template: { metadata: { labels }, spec: { containers: [{ name: 'c', image: 'nginx' }] } } },
      });
      for (let i = 0; i < 3; i++) await rcc.reconcile('default/many', ctx);
      expect((await ctx.registry.list(pods, 'default')).items).toHaveLength(many);
      const evs = (await ctx.registry.list(eventsRes, 'default')).items.filter((e) => e.involvedObject.uid === rc.metadata.uid);
      // 9 single ones, then one combined one: the other (many - 25) were dropped by the spam filter.
      expect(evs).toHaveLength(10);
      expect(evs.reduce((n, e) => n + e.count, 0)).toBe(25);
      expect(evs.filter((e) => e.message.startsWith('(combined from similar events): Created pod: many-'))).toHaveLength(1);
    });
  });
}
