// The local apiserver keeps answering while the in-process loops are busy (issue #11): the loops work in
// slices, one per turn of the event loop, and give way to API requests in flight for a bounded time
// (lambdas/local/api-priority.ts). A liveness bound, not a benchmark (test/bench/loops-busy.ts measures).

import https from 'node:https';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiPriorityGate, isLongRunning } from '../lambdas/local/api-priority.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';

describe('API priority gate', () => {
  it('holds the loops back while a request is in flight, at most for its bound', async () => {
    const gate = new ApiPriorityGate();
    const t0 = performance.now();
    await gate.giveWay(1000);
    expect(performance.now() - t0).toBeLessThan(50); // idle: no wait

    const answered = gate.enter();
    const waited = gate.giveWay(5000).then(() => performance.now());
    const t1 = performance.now();
    setTimeout(answered, 100);
    expect((await waited) - t1).toBeGreaterThanOrEqual(90); // until the request was answered...
    expect((await waited) - t1).toBeLessThan(2000);

    gate.enter(); // ...or, for a request that takes long, until the bound
    const t2 = performance.now();
    await gate.giveWay(150);
    expect(performance.now() - t2).toBeGreaterThanOrEqual(140);
    expect(gate.busy).toBe(true);
  });

  it('watches and followed logs are not requests the loops wait for', () => {
    const u = (s: string) => new URL(s, 'https://x');
    expect(isLongRunning('GET', u('/api/v1/pods?watch=true'))).toBe(true);
    expect(isLongRunning('GET', u('/api/v1/namespaces/d/pods/p/log?follow=1'))).toBe(true);
    expect(isLongRunning('GET', u('/api/v1/watch/pods'))).toBe(true);
    expect(isLongRunning('GET', u('/api/v1/pods?watch=false'))).toBe(false);
    expect(isLongRunning('GET', u('/api/v1/pods'))).toBe(false);
    expect(isLongRunning('POST', u('/api/v1/namespaces/d/pods'))).toBe(false);
  });
});

describe('skiff up with busy loops', () => {
  let c: TestCluster | undefined;
  afterAll(async () => c?.destroy());

  it('answers a GET within 5 s throughout while an RC of 3000 pods is created and scheduled on hollow nodes', async () => {
    c = await startTestCluster({ hollowNodes: 30 });
    const cluster = c;
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: cluster.caCert });
    const get = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const r = https.get(new URL(path, cluster.url), { agent, headers: { authorization: `Bearer ${cluster.token}` }, timeout: 5000 }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        r.on('timeout', () => r.destroy(new Error('no answer within 5 s')));
        r.on('error', reject);
      });
    const labels = { app: 'busy' };
    await cluster.api.registry.create(findResource('', 'v1', 'replicationcontrollers')!, 'default', {
      metadata: { name: 'busy' },
      spec: { replicas: 3000, selector: labels, template: { metadata: { labels }, spec: { containers: [{ name: 'c', image: 'pause' }] } } },
    });
    const pods = findResource('', 'v1', 'pods')!;
    const latencies: number[] = [];
    const end = Date.now() + 25_000;
    let made = 0;
    while (Date.now() < end) {
      const t = performance.now();
      expect(await get('/api/v1/namespaces/default')).toBe(200);
      latencies.push(performance.now() - t);
      // Busy until every pod is made and bound (the RC, the scheduler and the hollow nodes all at work).
      made = (await cluster.api.registry.list(pods, 'default')).items.filter((p) => p.spec?.nodeName).length;
      if (made >= 3000) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    agent.destroy();
    // The loops were busy for the whole window (pods still being made and bound, or all bound within it)...
    expect(made).toBeGreaterThan(500);
    console.log(`busy loops: ${made} pods bound, ${latencies.length} GETs, max ${Math.max(...latencies).toFixed(0)} ms`);
    // ...and every answer came within the liveness bound.
    expect(latencies.length).toBeGreaterThan(10);
    expect(Math.max(...latencies)).toBeLessThan(5000);
  }, 90_000);
});
