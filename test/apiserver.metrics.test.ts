// The apiserver's /metrics (issue #17 item 3) on a local cluster, read as Prometheus reads it: scraped
// through kubectl (`get --raw /metrics`) and parsed by Prometheus's own text parser (the official Python
// client's). Requests are
// counted by verb, resource and code and timed; open watches are a gauge; the store's calls are timed;
// and only who may `get` the non-resource URL /metrics (system:monitoring, admins) reads it.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { prometheusParser, type PromFamily } from './support/prometheus-text.ts';
import { until } from './support/until.ts';

const parse = prometheusParser();
let c: TestCluster;
beforeAll(async () => {
  if (parse) c = await startTestCluster({ controllers: false });
});
afterAll(async () => c?.destroy());

async function scrape(as: string[] = []): Promise<Map<string, PromFamily>> {
  const r = await c.kubectl(['get', '--raw', '/metrics', ...as]);
  expect(r.code, r.stderr).toBe(0);
  return parse!(r.stdout);
}

/** The value of the family's sample named `name` (e.g. its _count) whose labels include these. */
const value = (f: PromFamily | undefined, name: string, labels: Record<string, string>) =>
  f?.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

describe.skipIf(!parse)('apiserver /metrics', () => {
  it('counts and times requests by verb, resource and code, shows open watches and store latency; parsed as Prometheus text', async () => {
    for (let i = 0; i < 3; i++) expect((await c.kubectl(['create', 'configmap', `m${i}`, '--from-literal=a=b'])).code).toBe(0);
    expect((await c.kubectl(['create', 'configmap', 'm0'])).code).not.toBe(0); // 409 AlreadyExists
    expect((await c.kubectl(['get', 'configmap', 'm1', '-o', 'name'])).code).toBe(0);
    expect((await c.kubectl(['get', 'configmap', 'nope'])).code).not.toBe(0); // 404
    const watch = c.kubectl(['get', 'configmaps', '--watch', '--request-timeout=6s']);

    const m = await until('the watch counted as open', async () => {
      const f = await scrape();
      return (value(f.get('apiserver_longrunning_requests'), 'apiserver_longrunning_requests', { verb: 'WATCH', resource: 'configmaps' }) ?? 0) >= 1 ? f : undefined;
    }, 10_000, 200);
    // The parser names a counter's family without _total (its samples keep it).
    const total = m.get('apiserver_request')!;
    expect(total.type).toBe('counter');
    const count = (labels: Record<string, string>) => value(total, 'apiserver_request_total', { resource: 'configmaps', ...labels });
    expect(count({ verb: 'POST', code: '201', scope: 'namespace', version: 'v1', group: '' })).toBe(3);
    expect(count({ verb: 'POST', code: '409' })).toBe(1);
    expect(count({ verb: 'GET', code: '200', scope: 'resource' })).toBe(1);
    expect(count({ verb: 'GET', code: '404' })).toBe(1);

    const latency = m.get('apiserver_request_duration_seconds')!;
    expect(latency.type).toBe('histogram');
    const posts = { verb: 'POST', resource: 'configmaps' };
    expect(value(latency, 'apiserver_request_duration_seconds_count', posts)).toBe(4); // the 201s and the 409, timed without their code
    expect(value(latency, 'apiserver_request_duration_seconds_bucket', { ...posts, le: '+Inf' })).toBe(4);
    expect(value(latency, 'apiserver_request_duration_seconds_sum', posts)).toBeGreaterThan(0);
    // Watches are counted, not timed.
    expect(value(latency, 'apiserver_request_duration_seconds_count', { verb: 'WATCH' })).toBeUndefined();

    const store = m.get('skiff_storage_request_duration_seconds')!;
    expect(store.type).toBe('histogram');
    expect(value(store, 'skiff_storage_request_duration_seconds_count', { operation: 'create' })).toBeGreaterThanOrEqual(3);
    expect(value(store, 'skiff_storage_request_duration_seconds_count', { operation: 'get' })).toBeGreaterThan(0);

    await watch; // ends at its timeout: no longer open
    await until('the watch no longer open', async () => (value((await scrape()).get('apiserver_longrunning_requests'), 'apiserver_longrunning_requests', { verb: 'WATCH', resource: 'configmaps' }) ?? 0) === 0, 10_000, 200);
  });

  it('is for who may get /metrics: system:monitoring may, another user is refused (403)', async () => {
    expect((await scrape(['--as=prometheus', '--as-group=system:monitoring'])).get('apiserver_request')).toBeDefined();
    const r = await c.kubectl(['get', '--raw', '/metrics', '--as=alice']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/forbidden/i);
  });
});
