// CloudWatch embedded metric format (issue #17 item 3, lambdas/machinery/emf.ts): the lines are checked
// against the specification's required structure (checkEmf below), and their values against what the
// registry counted: counters as increases since the last flush, summed over the labels that are not
// dimensions; gauges as values; histograms as _count and _sum increases; nothing for a series that did not
// move. Then the deployed apiserver function itself (lambdas/apiserver/lambda.ts on DynamoDB/moto):
// requests write no line until the flush period has passed, then one set of lines counts them all.

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { EmfPublisher, distributionValues } from '../lambdas/machinery/emf.ts';
import { AgentMetrics, AGENT_EMF_SERIES, publishEmf } from '../node-agent/metrics.ts';
import { cloudWatchLogsWriter } from '../node-agent/emf-sink.ts';
import { CloudWatchLogsClient, CreateLogGroupCommand, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { ADMIN_USER, newToken, storeToken } from '../lambdas/apiserver/auth.ts';
import { DynamoBackend, ensureTable } from '../lambdas/storage/dynamodb.ts';
import { installLocalLambdaRuntime } from '../lambdas/local/lambda-runtime.ts';
import { dynamoTestEndpoint, uniqueTableName } from './support/dynamodb.ts';
import { until } from './support/until.ts';

/**
 * The specification's rules for one log line: a JSON object whose _aws has a Timestamp (ms since the
 * epoch) and CloudWatchMetrics (MetricDirectives: a Namespace, Dimensions as arrays of at most 30 keys,
 * 1..100 Metrics each with a Name and an optional Unit), and every dimension (a string) and metric (a
 * number, or at most 100 numbers) referenced at the top level. Returns the parsed document.
 */
function checkEmf(line: string): Record<string, any> {
  const doc = JSON.parse(line);
  expect(typeof doc).toBe('object');
  const aws = doc._aws;
  expect(typeof aws.Timestamp).toBe('number');
  expect(Number.isInteger(aws.Timestamp)).toBe(true);
  expect(Math.abs(aws.Timestamp - Date.now())).toBeLessThan(24 * 3600_000); // milliseconds, not seconds
  expect(Array.isArray(aws.CloudWatchMetrics) && aws.CloudWatchMetrics.length > 0).toBe(true);
  const units = new Set(['Seconds', 'Microseconds', 'Milliseconds', 'Bytes', 'Kilobytes', 'Megabytes', 'Gigabytes', 'Terabytes', 'Bits', 'Kilobits', 'Megabits', 'Gigabits', 'Terabits', 'Percent', 'Count', 'Bytes/Second', 'Kilobytes/Second', 'Megabytes/Second', 'Gigabytes/Second', 'Terabytes/Second', 'Bits/Second', 'Kilobits/Second', 'Megabits/Second', 'Gigabits/Second', 'Terabits/Second', 'Count/Second', 'None']);
  for (const d of aws.CloudWatchMetrics) {
    expect(Object.keys(d).sort()).toEqual(['Dimensions', 'Metrics', 'Namespace']);
    expect(typeof d.Namespace).toBe('string');
    expect(d.Namespace.length).toBeGreaterThan(0);
    expect(d.Namespace.length).toBeLessThanOrEqual(255);
    expect(Array.isArray(d.Dimensions)).toBe(true);
    for (const set of d.Dimensions) {
      expect(Array.isArray(set)).toBe(true);
      expect(set.length).toBeLessThanOrEqual(30);
      for (const key of set) {
        expect(typeof doc[key], `dimension ${key} at the top level`).toBe('string');
        expect(doc[key].length).toBeGreaterThan(0);
      }
    }
    expect(d.Metrics.length).toBeGreaterThan(0);
    expect(d.Metrics.length).toBeLessThanOrEqual(100);
    for (const m of d.Metrics) {
      expect(typeof m.Name).toBe('string');
      if (m.Unit !== undefined) expect(units.has(m.Unit), m.Unit).toBe(true);
      const v = doc[m.Name];
      const ok = typeof v === 'number' || (Array.isArray(v) && v.length <= 100 && v.every((x) => typeof x === 'number'));
      expect(ok, `metric ${m.Name} at the top level: ${JSON.stringify(v)}`).toBe(true);
    }
  }
  return doc;
}

/** The documents whose dimensions include these values. */
const having = (docs: Record<string, any>[], dims: Record<string, string>) => docs.filter((d) => Object.entries(dims).every(([k, v]) => d[k] === v));

describe('EMF lines from a prom-client registry', () => {
  it('carry a histogram\'s distribution as its buckets\' bounds, at most 100 values, in proportion', async () => {
    // Cumulative counts by upper bound, as prom-client gives them.
    expect(distributionValues(new Map([[0.1, 2], [0.5, 3], [1, 3], [Infinity, 4]]))).toEqual([0.1, 0.1, 0.5, 1]); // +Inf counted at 1, a floor
    expect(distributionValues(new Map([[0.1, 0], [Infinity, 0]]))).toEqual([]);
    // 1,000 observations: 900 under 0.1, 90 under 0.5, 10 under 1 → 90, 9 and 1 values.
    const scaled = distributionValues(new Map([[0.1, 900], [0.5, 990], [1, 1000], [Infinity, 1000]]));
    expect(scaled.length).toBe(100);
    expect(scaled.filter((v) => v === 0.1).length).toBe(90);
    expect(scaled.filter((v) => v === 0.5).length).toBe(9);
    expect(scaled.filter((v) => v === 1).length).toBe(1);
    // Largest remainders: 3 buckets of 1/3 each over 100 values make 34, 33, 33.
    const thirds = distributionValues(new Map([[1, 100], [2, 200], [3, 300]]));
    expect(thirds.length).toBe(100);
    expect([1, 2, 3].map((b) => thirds.filter((v) => v === b).length).sort()).toEqual([33, 33, 34]);

    // Through a publisher: 150 observations in a flush are 100 values, the next flush only the new ones.
    const r = new Registry();
    const h = new Histogram({ name: 'd_seconds', help: 'h', labelNames: ['verb', 'resource'], buckets: [0.01, 0.1], registers: [r] });
    const lines: string[] = [];
    const p = new EmfPublisher([r], { namespace: 'Skiff', dimensions: { ClusterName: 'c1' }, series: [{ metric: 'd_seconds', dimensions: ['verb'], unit: 'Seconds' }], write: (l) => lines.push(l) });
    for (let i = 0; i < 100; i++) h.observe({ verb: 'GET', resource: 'pods' }, 0.005);
    for (let i = 0; i < 50; i++) h.observe({ verb: 'GET', resource: 'secrets' }, 0.05); // summed over resource
    await p.flush();
    const [doc] = lines.splice(0).map(checkEmf);
    expect(doc!.d_seconds_count).toBe(150);
    expect(doc!.d_seconds.length).toBe(100);
    expect(doc!.d_seconds.filter((v: number) => v === 0.01).length).toBe(67);
    expect(doc!.d_seconds.filter((v: number) => v === 0.1).length).toBe(33);
    h.observe({ verb: 'GET', resource: 'pods' }, 0.2); // past the last bound: counted at it
    await p.flush();
    expect(lines.splice(0).map(checkEmf)[0]!.d_seconds).toEqual([0.1]);
  });

  it('are well-formed, carry increases per flush summed over non-dimension labels, gauges as values, histograms as count and sum', async () => {
    const r = new Registry();
    const reqs = new Counter({ name: 'req_total', help: 'h', labelNames: ['verb', 'resource', 'code'], registers: [r] });
    const open = new Gauge({ name: 'open_now', help: 'h', labelNames: ['verb'], registers: [r] });
    const lat = new Histogram({ name: 'lat_seconds', help: 'h', labelNames: ['verb'], buckets: [0.1, 1], registers: [r] });
    new Counter({ name: 'not_published_total', help: 'h', registers: [r] }).inc(5);
    const lines: string[] = [];
    let now = Date.now();
    const p = new EmfPublisher([r], {
      namespace: 'Skiff',
      dimensions: { ClusterName: 'c1' },
      series: [
        { metric: 'req_total', dimensions: ['verb', 'code'], unit: 'Count' },
        { metric: 'open_now', dimensions: ['verb'], unit: 'Count' },
        { metric: 'lat_seconds', dimensions: ['verb'], unit: 'Seconds' },
      ],
      write: (l) => lines.push(l),
      now: () => now,
    });
    reqs.inc({ verb: 'GET', resource: 'pods', code: '200' }, 3);
    reqs.inc({ verb: 'GET', resource: 'configmaps', code: '200' }, 2);
    reqs.inc({ verb: 'POST', resource: 'pods', code: '201' });
    open.set({ verb: 'WATCH' }, 2);
    lat.observe({ verb: 'GET' }, 0.5);
    lat.observe({ verb: 'GET' }, 0.25);

    expect(await p.maybeFlush(60_000)).toBe(0); // not a minute yet
    expect(lines).toEqual([]);
    now += 60_000;
    expect(await p.maybeFlush(60_000)).toBeGreaterThan(0);
    const first = lines.splice(0).map(checkEmf);
    for (const d of first) {
      expect(d._aws.Timestamp).toBe(now);
      expect(d._aws.CloudWatchMetrics[0].Namespace).toBe('Skiff');
      expect(d._aws.CloudWatchMetrics[0].Dimensions[0][0]).toBe('ClusterName');
      expect(d.ClusterName).toBe('c1');
      expect(d.not_published_total).toBeUndefined();
      expect(d.resource).toBeUndefined(); // not a dimension: summed over
    }
    expect(having(first, { verb: 'GET', code: '200' })[0]!.req_total).toBe(5);
    expect(having(first, { verb: 'POST', code: '201' })[0]!.req_total).toBe(1);
    const get = having(first, { verb: 'GET' }).find((d) => 'lat_seconds_count' in d)!;
    expect(get.lat_seconds_count).toBe(2);
    expect(get.lat_seconds_sum).toBeCloseTo(0.75);
    expect(get._aws.CloudWatchMetrics[0].Metrics).toEqual(expect.arrayContaining([{ Name: 'lat_seconds_count', Unit: 'Count' }, { Name: 'lat_seconds_sum', Unit: 'Seconds' }]));
    // The distribution for percentiles: 0.25 and 0.5 fell in the bucket up to 1 s.
    expect(get.lat_seconds).toEqual([1, 1]);
    expect(get._aws.CloudWatchMetrics[0].Metrics).toContainEqual({ Name: 'lat_seconds', Unit: 'Seconds' });
    expect(having(first, { verb: 'WATCH' })[0]!.open_now).toBe(2);

    // The next flush: only what moved since, and the gauge's value now.
    reqs.inc({ verb: 'GET', resource: 'pods', code: '200' });
    open.set({ verb: 'WATCH' }, 0);
    now += 60_000;
    await p.flush();
    const second = lines.splice(0).map(checkEmf);
    expect(having(second, { verb: 'GET', code: '200' })[0]!.req_total).toBe(1);
    expect(having(second, { verb: 'POST', code: '201' })).toEqual([]); // did not move: not sent
    expect(second.some((d) => 'lat_seconds_count' in d || 'lat_seconds' in d)).toBe(false);
    expect(having(second, { verb: 'WATCH' })[0]!.open_now).toBe(0);

    // A series that went and came back (a container's) counts from zero again.
    reqs.remove({ verb: 'POST', resource: 'pods', code: '201' });
    await p.flush();
    expect(having(lines.splice(0).map(checkEmf), { verb: 'POST' })).toEqual([]);
    reqs.inc({ verb: 'POST', resource: 'pods', code: '201' }, 4);
    await p.flush();
    expect(having(lines.splice(0).map(checkEmf), { verb: 'POST', code: '201' })[0]!.req_total).toBe(4);

    // A counter that went back (a reset) counts from zero.
    reqs.reset();
    reqs.inc({ verb: 'GET', resource: 'pods', code: '200' }, 2);
    await p.flush();
    expect(having(lines.splice(0).map(checkEmf), { verb: 'GET', code: '200' })[0]!.req_total).toBe(2);
  });

  it("an agent's series: cluster-wide sums with small dimension sets (no node, pod or container)", async () => {
    const m = new AgentMetrics(() => ({
      node: { nodeName: 'n1' },
      pods: [
        { podRef: { namespace: 'a', name: 'p1', uid: 'u1' }, containers: [{ name: 'x', usage: { time: '', window: 10, usageCoreNanoSeconds: 2e9, workingSetBytes: 100 } }, { name: 'y', usage: { time: '', window: 10, usageCoreNanoSeconds: 1e9, workingSetBytes: 50 } }] },
        { podRef: { namespace: 'b', name: 'p2', uid: 'u2' }, containers: [{ name: 'x', usage: { time: '', window: 10, usageCoreNanoSeconds: 5e8, workingSetBytes: 7 } }] },
      ],
    }));
    m.podStarted(true);
    const pod = { metadata: { name: 'p1', namespace: 'a', uid: 'u1' } };
    m.probe(pod, 'x', 'readiness', true);
    m.probe(pod, 'y', 'readiness', true);
    m.probe(pod, 'x', 'liveness', false);
    m.proxySynced({ applied: true, full: true, bytes: 10, buildMs: 3, applyMs: 7, services: 1 });
    const lines: string[] = [];
    await new EmfPublisher([m.registry, m.probes, m.cadvisor], { namespace: 'Skiff', dimensions: { ClusterName: 'c1' }, series: AGENT_EMF_SERIES, write: (l) => lines.push(l) }).flush();
    const docs = lines.map(checkEmf);
    const keys = new Set(docs.flatMap((d) => d._aws.CloudWatchMetrics[0].Dimensions[0] as string[]));
    for (const k of ['node', 'pod', 'container', 'pod_uid']) expect(keys.has(k)).toBe(false);
    const only = (dims: Record<string, string>, metric: string) => having(docs, dims).find((d) => metric in d)?.[metric];
    expect(only({}, 'kubelet_started_pods_total')).toBe(1);
    expect(only({ probe_type: 'Readiness', result: 'successful' }, 'prober_probe_total')).toBe(2);
    expect(only({ probe_type: 'Liveness', result: 'failed' }, 'prober_probe_total')).toBe(1);
    expect(only({}, 'kubeproxy_sync_proxy_rules_duration_seconds_sum')).toBeCloseTo(0.01);
    expect(only({ namespace: 'a' }, 'container_cpu_usage_seconds_total')).toBe(3);
    expect(only({ namespace: 'a' }, 'container_memory_working_set_bytes')).toBe(150);
    expect(only({ namespace: 'b' }, 'container_memory_working_set_bytes')).toBe(7);
  });
});

describe('the apiserver function sends EMF only when its stack asks (custom metrics cost)', () => {
  it('without SKIFF_METRICS_FLUSH_SECONDS (or with 0) it writes nothing and never builds a publisher', async () => {
    const { apiserverEmf } = await import('../lambdas/apiserver/metrics-emf.ts');
    for (const env of [{}, { SKIFF_METRICS_FLUSH_SECONDS: '0' }]) {
      const lines: string[] = [];
      let asked = 0;
      const mw = apiserverEmf(async () => (asked++, ({} as never)), env, (l) => lines.push(l));
      await (mw.after as (r: unknown) => Promise<void>)({});
      expect(lines).toEqual([]);
      expect(asked).toBe(0);
    }
  });
});

const ddb = await dynamoTestEndpoint();
afterAll(async () => ddb?.stop());

describe.skipIf(!ddb)('the deployed apiserver function writes EMF once per flush period, not per request', () => {
  const saved = { ...process.env };
  let server: Server;
  let base: string;
  const token = newToken();
  const written: string[] = [];

  beforeAll(async () => {
    const tableName = uniqueTableName('skiff-emf');
    await ensureTable(ddb!.client, tableName);
    Object.assign(process.env, { SKIFF_TABLE: tableName, SKIFF_DYNAMODB_ENDPOINT: ddb!.endpoint, SKIFF_CLUSTER_NAME: 'emf-test', SKIFF_METRICS_FLUSH_SECONDS: '3' });
    for (const [k, v] of Object.entries({ AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' })) process.env[k] ??= v;
    await storeToken(new DynamoBackend({ client: ddb!.client, tableName }), token, ADMIN_USER);
    const write = process.stdout.write.bind(process.stdout);
    vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: string | Uint8Array, ...rest: unknown[]) => {
      if (typeof chunk === 'string' && chunk.startsWith('{"_aws"')) {
        written.push(chunk.trimEnd());
        return true;
      }
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stdout.write);
    installLocalLambdaRuntime();
    const { handler } = await import('../lambdas/apiserver/lambda.ts');
    const invoke = handler as unknown as (event: unknown, stream: ServerResponse, context: { signal: AbortSignal }) => Promise<void>;
    server = createServer(async (req, res) => {
      const u = new URL(`http://x${req.url}`);
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : (v ?? '')]));
      const event = { version: '2.0', rawPath: u.pathname, rawQueryString: u.search.slice(1), headers, requestContext: { http: { method: req.method, path: u.pathname, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' }, timeEpoch: Date.now() } };
      await invoke(event, res, { signal: new AbortController().signal });
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }, 60_000);
  afterAll(async () => {
    vi.restoreAllMocks();
    await new Promise((ok) => server?.close(ok));
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  });

  const get = async (path: string) => (await fetch(base + path, { headers: { authorization: `Bearer ${token}` } })).status;

  it('counts every request of the period in one set of lines', async () => {
    const sum = (docs: Record<string, any>[], dims: Record<string, string>, metric: string) => having(docs, dims).reduce((a, d) => a + (d[metric] ?? 0), 0);
    expect(await get('/api/v1/namespaces/default/configmaps')).toBe(200);
    expect(await get('/api/v1/namespaces/default/configmaps/nope')).toBe(404);
    expect(await get('/api/v1/namespaces/default/configmaps')).toBe(200);
    expect(written).toEqual([]); // within the period: nothing written per request
    // The period ends: the instance writes its lines (its timer, or the end of the next invocation).
    await until('the first flush', async () => written.length > 0, 6000, 100);
    const first = written.splice(0).map(checkEmf);
    expect(new Set(first.map((d) => d._aws.Timestamp)).size).toBe(1); // one flush
    for (const d of first) {
      expect(d.ClusterName).toBe('emf-test');
      expect(d._aws.CloudWatchMetrics[0].Namespace).toBe('Skiff');
    }
    expect(sum(first, { verb: 'LIST', code: '200' }, 'apiserver_request_total')).toBe(2);
    expect(sum(first, { verb: 'GET', code: '404' }, 'apiserver_request_total')).toBe(1);
    expect(sum(first, { verb: 'LIST' }, 'apiserver_request_duration_seconds_count')).toBe(2);
    expect(sum(first, { operation: 'list' }, 'skiff_storage_request_duration_seconds_count')).toBeGreaterThanOrEqual(2);
    // A request just after: nothing at once; the next flush carries it alone.
    expect(await get('/api/v1/namespaces/default/configmaps')).toBe(200);
    expect(written).toEqual([]);
    await until('the second flush', async () => written.length > 0, 6000, 100);
    const second = written.splice(0).map(checkEmf);
    expect(sum(second, { verb: 'LIST', code: '200' }, 'apiserver_request_total')).toBe(1);
    expect(sum(second, { verb: 'GET', code: '404' }, 'apiserver_request_total')).toBe(0);
  }, 30_000);
});

describe.skipIf(!ddb)("a deployed agent's EMF lines in its CloudWatch Logs stream (moto)", () => {
  it('are sent once per period and once more at stop, one PutLogEvents each, and read back as valid EMF', async () => {
    const client = new CloudWatchLogsClient({ endpoint: ddb!.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    const logGroupName = `/skiff/emf-test-${process.pid}/node-metrics`;
    await client.send(new CreateLogGroupCommand({ logGroupName }));
    const m = new AgentMetrics();
    const sends: number[] = [];
    const put = cloudWatchLogsWriter({ logGroupName, logStreamName: 'node-1', client });
    const emf = publishEmf(m, { clusterName: 'emf-test', everyMs: 500, write: async (lines) => (sends.push(lines.length), put(lines)) });
    m.podStarted(true);
    m.podStarted(true);
    await until('a flush', async () => sends.length > 0, 5000, 50);
    m.podStarted(false);
    await emf.stop();
    const events = (await client.send(new GetLogEventsCommand({ logGroupName, logStreamName: 'node-1', startFromHead: true }))).events ?? [];
    const docs = events.map((e) => checkEmf(e.message!));
    const started = docs.map((d) => d.kubelet_started_pods_total).filter((v) => v !== undefined);
    expect(started.reduce((a, b) => a + b, 0)).toBe(3); // increases: 2, then 1 (periods without a start send none)
    expect(started.at(-1)).toBe(1);
    expect(docs.find((d) => 'kubelet_started_pods_errors_total' in d)!.kubelet_started_pods_errors_total).toBe(1);
    expect(sends.length).toBeGreaterThanOrEqual(2); // the timer's flush and the one at stop
    client.destroy();
  }, 20_000);
});
