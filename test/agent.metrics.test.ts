// The agent's Prometheus metrics (issue #17 item 3, node-agent/metrics.ts) on a real agent with Docker,
// scraped over its HTTPS port as Prometheus scrapes a kubelet and parsed by Prometheus's own text parser
// (the official Python client's): a pod start is counted and timed, probe results are counted by type and
// result (/metrics/probes, where kubelet has them), the service proxy's syncs are timed, and running
// containers have CPU and memory series (/metrics/cadvisor). Only who may get nodes/metrics reads them:
// no token is a 401, a user without the grant a 403 (a SubjectAccessReview to the apiserver decides).

import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Docker from 'dockerode';
import { register as globalRegistry } from 'prom-client';
import { requireDocker, TEST_IMAGE } from './support/docker.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { prometheusParser, type PromFamily } from './support/prometheus-text.ts';
import { until } from './support/until.ts';
import { newToken, storeToken } from '../lambdas/apiserver/auth.ts';
import { cleanupProxyRules } from '../node-agent/proxy.ts';
import { AgentMetrics } from '../node-agent/metrics.ts';

const docker = await requireDocker();
const parse = prometheusParser();
const PID = process.pid;
const NODE = `metrics-node-${PID}`;
const NETWORK = `skiff-metrics-${PID}`;
const PREFIX = `SKM${PID}`.slice(0, 10);

/** The value of the family's sample named `name` whose labels include these. */
const value = (f: PromFamily | undefined, name: string, labels: Record<string, string> = {}) =>
  f?.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
/** A histogram's cumulative count at the bucket whose bound is `le`. */
const bucket = (f: PromFamily | undefined, le: number) => f?.samples.find((s) => s.name.endsWith('_bucket') && Number(s.labels.le) === le)?.value;

describe('agent metrics registries', () => {
  it('are each agent\'s own: two agents in one process count apart, and the global registry holds none', async () => {
    const a = new AgentMetrics();
    const b = new AgentMetrics();
    a.podStarted(true);
    a.podStarted(false);
    expect(await a.registry.getSingleMetricAsString('kubelet_started_pods_total')).toMatch(/^kubelet_started_pods_total 2$/m);
    expect(await a.registry.getSingleMetricAsString('kubelet_started_pods_errors_total')).toMatch(/^kubelet_started_pods_errors_total 1$/m);
    expect(await b.registry.getSingleMetricAsString('kubelet_started_pods_total')).toMatch(/^kubelet_started_pods_total 0$/m);
    expect(await globalRegistry.metrics()).not.toMatch(/kubelet_|prober_|kubeproxy_|container_cpu/);
  });
});

describe.skipIf(!docker || !parse)('agent /metrics on Docker', () => {
  let c: TestCluster;
  let promToken: string;
  let aliceToken: string;

  const scrape = (path: string, token?: string) =>
    new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
      const req = https.get(
        { host: '127.0.0.1', port: c.agents[0]!.port, path, rejectUnauthorized: false, headers: token ? { authorization: `Bearer ${token}` } : {} },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body }));
        },
      );
      req.on('error', reject);
    });
  const families = async (path: string, token = promToken) => {
    const r = await scrape(path, token);
    expect(r.status, r.body).toBe(200);
    expect(r.type).toMatch(/^text\/plain; version=0\.0\.4/);
    return parse!(r.body);
  };

  beforeAll(async () => {
    c = await startTestCluster({
      agents: 1,
      requireAgents: true,
      agentOptions: { nodeName: NODE, network: NETWORK, proxy: { chainPrefix: PREFIX, serviceCIDR: '10.96.0.0/16', resyncMs: 3000 } },
    });
    // Prometheus's user may get nodes/metrics (RBAC); alice may not.
    promToken = newToken();
    aliceToken = newToken();
    await storeToken(c.backend, promToken, { username: 'prometheus', groups: ['system:authenticated'] });
    await storeToken(c.backend, aliceToken, { username: 'alice', groups: ['system:authenticated'] });
    for (const args of [
      ['create', 'clusterrole', 'node-metrics', '--verb=get', '--resource=nodes/metrics'],
      ['create', 'clusterrolebinding', 'prometheus-node-metrics', '--clusterrole=node-metrics', '--user=prometheus'],
    ]) {
      const r = await c.kubectl(args);
      expect(r.code, r.stderr).toBe(0);
    }
  }, 90_000);
  afterAll(async () => {
    for (const a of c?.agents ?? []) await a.close({ removePods: true });
    await cleanupProxyRules(PREFIX).catch(() => {});
    await c?.destroy();
    await (docker as Docker | undefined)?.getNetwork(NETWORK).remove().catch(() => {});
  });

  it('counts pod starts, probe results and proxy syncs; running containers have cAdvisor CPU and memory series', async () => {
    const before = await families('/metrics');
    const startedBefore = value(before.get('kubelet_started_pods'), 'kubelet_started_pods_total') ?? 0;
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'probed' },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [
          // Burns a little CPU, then idles: its CPU time is above zero.
          { name: 'ok', image: TEST_IMAGE, command: ['sh', '-c', 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; exec sleep 3600'], readinessProbe: { exec: { command: ['true'] }, periodSeconds: 1 } },
          { name: 'bad', image: TEST_IMAGE, command: ['sleep', '3600'], readinessProbe: { exec: { command: ['false'] }, periodSeconds: 1 } },
        ],
      },
    };
    expect((await c.kubectl(['apply', '-f', '-'], JSON.stringify(pod))).code).toBe(0);
    expect((await c.kubectl(['create', 'service', 'clusterip', 'probed', '--tcp=80:8080'])).code).toBe(0);
    await until('probed Running', async () => (await c.kubectl(['get', 'pod', 'probed', '-o', 'jsonpath={.status.phase}'])).stdout === 'Running', 60_000, 250);
    const uid = (await c.kubectl(['get', 'pod', 'probed', '-o', 'jsonpath={.metadata.uid}'])).stdout;

    // kubelet's pod start count and latency; kube-proxy's sync times.
    const m = await until('a sync of the proxy after the Service', async () => {
      const f = await families('/metrics');
      return (value(f.get('kubeproxy_sync_proxy_rules_duration_seconds'), 'kubeproxy_sync_proxy_rules_duration_seconds_count') ?? 0) >= 2 ? f : undefined;
    }, 15_000, 300);
    expect(m.get('kubelet_started_pods')!.type).toBe('counter');
    expect(value(m.get('kubelet_started_pods'), 'kubelet_started_pods_total')).toBe(startedBefore + 1);
    expect(value(m.get('kubelet_started_pods_errors'), 'kubelet_started_pods_errors_total')).toBe(0);
    const start = m.get('kubelet_pod_start_duration_seconds')!;
    expect(start.type).toBe('histogram');
    expect(value(start, 'kubelet_pod_start_duration_seconds_count')).toBe(1);
    const startSeconds = value(start, 'kubelet_pod_start_duration_seconds_sum')!;
    expect(startSeconds).toBeGreaterThan(0);
    expect(startSeconds).toBeLessThan(60);
    expect(bucket(start, 60)).toBe(1);
    expect(bucket(start, 0.5)).toBe(startSeconds <= 0.5 ? 1 : 0);
    const sync = m.get('kubeproxy_sync_proxy_rules_duration_seconds')!;
    expect(sync.type).toBe('histogram');
    expect(value(sync, 'kubeproxy_sync_proxy_rules_duration_seconds_sum')).toBeGreaterThan(0);
    expect(bucket(sync, 16.384)).toBe(value(sync, 'kubeproxy_sync_proxy_rules_duration_seconds_count'));
    expect(value(m.get('kubeproxy_sync_full_proxy_rules_duration_seconds'), 'kubeproxy_sync_full_proxy_rules_duration_seconds_count')).toBeGreaterThanOrEqual(1); // the first sync is full
    expect(value(m.get('kubeproxy_sync_proxy_rules_last_timestamp_seconds'), 'kubeproxy_sync_proxy_rules_last_timestamp_seconds')! * 1000).toBeGreaterThan(Date.now() - 60_000);

    // Probe results, by kubelet's labels and values.
    const probes = await until('both probes counted', async () => {
      const f = (await families('/metrics/probes')).get('prober_probe');
      const labels = { probe_type: 'Readiness', pod: 'probed', namespace: 'default', pod_uid: uid };
      const ok = value(f, 'prober_probe_total', { ...labels, container: 'ok', result: 'successful' }) ?? 0;
      const bad = value(f, 'prober_probe_total', { ...labels, container: 'bad', result: 'failed' }) ?? 0;
      return ok >= 2 && bad >= 2 ? f : undefined;
    }, 20_000, 500);
    expect(probes.type).toBe('counter');
    expect(value(probes, 'prober_probe_total', { container: 'ok', result: 'failed' })).toBeUndefined();
    expect(value(probes, 'prober_probe_total', { container: 'bad', result: 'successful' })).toBeUndefined();

    // cAdvisor's container series from the agent's usage samples (every 10 s).
    const cad = await until('container series for the pod', async () => {
      const f = await families('/metrics/cadvisor');
      return value(f.get('container_cpu_usage_seconds'), 'container_cpu_usage_seconds_total', { pod: 'probed', container: 'ok' }) !== undefined &&
        value(f.get('container_memory_working_set_bytes'), 'container_memory_working_set_bytes', { pod: 'probed', container: 'bad' }) !== undefined
        ? f
        : undefined;
    }, 30_000, 1000);
    const cpu = cad.get('container_cpu_usage_seconds')!;
    expect(cpu.type).toBe('counter');
    const mem = cad.get('container_memory_working_set_bytes')!;
    expect(mem.type).toBe('gauge');
    for (const container of ['ok', 'bad']) {
      const labels = { container, pod: 'probed', namespace: 'default' };
      expect(Object.keys(cpu.samples.find((s) => s.labels.pod === 'probed' && s.labels.container === container)!.labels).sort()).toEqual(['container', 'namespace', 'pod']);
      expect(value(mem, 'container_memory_working_set_bytes', labels)).toBeGreaterThan(0);
      expect(value(cpu, 'container_cpu_usage_seconds_total', labels)).toBeGreaterThanOrEqual(0);
    }
    // The busy loop ran on a CPU; the pause container is not an app container and has no series.
    expect(value(cpu, 'container_cpu_usage_seconds_total', { pod: 'probed', container: 'ok' })).toBeGreaterThan(0.01);
    expect(cpu.samples.some((s) => s.labels.container === 'POD' || s.labels.container === '')).toBe(false);
  }, 150_000);

  it('is for who may get nodes/metrics: no token 401, a bad token 401, a user without the grant 403, the admin 200', async () => {
    for (const path of ['/metrics', '/metrics/probes', '/metrics/cadvisor']) {
      expect((await scrape(path)).status).toBe(401);
      expect((await scrape(path, 'not-a-token')).status).toBe(401);
      const denied = await scrape(path, aliceToken);
      expect(denied.status).toBe(403);
      expect(JSON.parse(denied.body)).toMatchObject({ kind: 'Status', code: 403, reason: 'Forbidden' });
      expect(denied.body).toContain('user=alice');
      expect((await scrape(path, promToken)).status).toBe(200);
      expect((await scrape(path, c.token)).status).toBe(200); // system:masters
    }
    expect((await scrape('/metrics/nope', promToken)).status).toBe(404);
    // The other paths keep their own rule (system:masters): nodes/metrics does not open logs.
    expect((await scrape('/stats/summary', promToken)).status).toBe(401);
  });
});
