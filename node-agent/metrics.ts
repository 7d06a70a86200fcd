// The agent's Prometheus metrics (issue #17 item 3), under the names and labels kubelet and kube-proxy
// give them, so dashboards and alerts written for Kubernetes read them, at kubelet's paths:
//   /metrics           kubelet_started_pods_total, kubelet_started_pods_errors_total and
//                      kubelet_pod_start_duration_seconds (from first seeing a pod to its first Running
//                      status); kubeproxy_sync_proxy_rules_duration_seconds (every sync of the service
//                      proxy), kubeproxy_sync_full_proxy_rules_duration_seconds (full ones) and
//                      kubeproxy_sync_proxy_rules_last_timestamp_seconds
//   /metrics/probes    prober_probe_total{probe_type,result,container,pod,namespace,pod_uid}
//   /metrics/cadvisor  container_cpu_usage_seconds_total and container_memory_working_set_bytes
//                      {container,namespace,pod} of running app containers, from stats.ts's latest sample
//                      (every 10 s; cAdvisor's id, image and name labels are not carried)
// Who may read them is kubelet's rule: `get` on the node's nodes/metrics subresource, asked of the
// apiserver by SubjectAccessReview (authz.ts). Each agent has registries of its own (several agents share
// one process in tests and in `skiff up --nodes N`); prom-client's global registry is never used.

import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { errors } from '../lambdas/machinery/status.ts';
import type { StatsSummary } from './stats.ts';
import type { SyncResult } from './proxy.ts';
import type { Kind } from './probing.ts';
import type { Decision } from './authz.ts';
import { EMF_NAMESPACE, EmfPublisher, type EmfSeries } from '../lambdas/machinery/emf.ts';

/** kubelet's buckets for kubelet_pod_start_duration_seconds. */
const POD_START_BUCKETS = [0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600];
/** kube-proxy's: ExponentialBuckets(0.001, 2, 15), 1 ms to 16.4 s. */
const PROXY_BUCKETS = Array.from({ length: 15 }, (_, i) => 0.001 * 2 ** i);
const PROBE_TYPE: Record<Kind, string> = { startup: 'Startup', liveness: 'Liveness', readiness: 'Readiness' };

/**
 * What a deployed agent publishes to CloudWatch as EMF (lambdas/machinery/emf.ts, where the cost is):
 * cluster-wide sums, never by node, pod or container (a custom metric per pod would cost $0.30 a month
 * each); the agents' lines add up in CloudWatch (the Sum statistic).
 */
export const AGENT_EMF_SERIES: EmfSeries[] = [
  { metric: 'kubelet_started_pods_total', dimensions: [], unit: 'Count' },
  { metric: 'kubelet_started_pods_errors_total', dimensions: [], unit: 'Count' },
  { metric: 'kubelet_pod_start_duration_seconds', dimensions: [], unit: 'Seconds' },
  { metric: 'prober_probe_total', dimensions: ['probe_type', 'result'], unit: 'Count' },
  { metric: 'kubeproxy_sync_proxy_rules_duration_seconds', dimensions: [], unit: 'Seconds' },
  { metric: 'container_cpu_usage_seconds_total', dimensions: ['namespace'], unit: 'Seconds' },
  { metric: 'container_memory_working_set_bytes', dimensions: ['namespace'], unit: 'Bytes' },
];

export const METRICS_PATHS = ['/metrics', '/metrics/probes', '/metrics/cadvisor'] as const;

export class AgentMetrics {
  readonly registry = new Registry();
  readonly probes = new Registry();
  readonly cadvisor = new Registry();

  readonly startedPods = new Counter({ name: 'kubelet_started_pods_total', help: 'Cumulative number of pods started', registers: [this.registry] });
  readonly startedPodsErrors = new Counter({ name: 'kubelet_started_pods_errors_total', help: 'Cumulative number of errors when starting pods', registers: [this.registry] });
  readonly podStartDuration = new Histogram({ name: 'kubelet_pod_start_duration_seconds', help: 'Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run', buckets: POD_START_BUCKETS, registers: [this.registry] });
  readonly proxySync = new Histogram({ name: 'kubeproxy_sync_proxy_rules_duration_seconds', help: 'SyncProxyRules latency in seconds', buckets: PROXY_BUCKETS, registers: [this.registry] });
  readonly proxyFullSync = new Histogram({ name: 'kubeproxy_sync_full_proxy_rules_duration_seconds', help: 'SyncProxyRules latency in seconds for full resyncs', buckets: PROXY_BUCKETS, registers: [this.registry] });
  readonly proxyLastSync = new Gauge({ name: 'kubeproxy_sync_proxy_rules_last_timestamp_seconds', help: 'The last time proxy rules were successfully synced', registers: [this.registry] });
  readonly probeTotal = new Counter({
    name: 'prober_probe_total',
    help: 'Cumulative number of a liveness, readiness or startup probe for a container by result.',
    labelNames: ['probe_type', 'result', 'container', 'pod', 'namespace', 'pod_uid'],
    registers: [this.probes],
  });

  /** When each pod (by uid) was first seen, until its first Running status is written. */
  private readonly firstSeen = new Map<string, number>();

  constructor(stats?: () => StatsSummary) {
    if (!stats) return;
    // Filled from the latest sample at each scrape: no work between scrapes beyond stats.ts's own.
    new Counter({
      name: 'container_cpu_usage_seconds_total',
      help: 'Cumulative cpu time consumed in seconds.',
      labelNames: ['container', 'namespace', 'pod'],
      registers: [this.cadvisor],
      collect() {
        this.reset();
        for (const p of stats().pods)
          for (const c of p.containers)
            if (c.usage.usageCoreNanoSeconds !== undefined) this.inc({ container: c.name, namespace: p.podRef.namespace, pod: p.podRef.name }, c.usage.usageCoreNanoSeconds / 1e9);
      },
    });
    new Gauge({
      name: 'container_memory_working_set_bytes',
      help: 'Current working set in bytes.',
      labelNames: ['container', 'namespace', 'pod'],
      registers: [this.cadvisor],
      collect() {
        this.reset();
        for (const p of stats().pods) for (const c of p.containers) this.set({ container: c.name, namespace: p.podRef.namespace, pod: p.podRef.name }, c.usage.workingSetBytes);
      },
    });
  }

  /** The pod watch saw this pod (kubelet's first-seen time starts the pod's start latency). */
  podSeen(uid: string, now = Date.now()): void {
    if (!this.firstSeen.has(uid) && this.firstSeen.size < 100_000) this.firstSeen.set(uid, now);
  }

  podGone(uid: string): void {
    this.firstSeen.delete(uid);
  }

  /** A pod status was written: its first change from Pending to Running ends its start latency (as kubelet). */
  podStatusWritten(basedOn: KubeObject, written: KubeObject, now = Date.now()): void {
    const uid = written.metadata.uid!;
    const seen = this.firstSeen.get(uid);
    if (seen === undefined || written.status?.phase !== 'Running' || (basedOn.status?.phase ?? 'Pending') !== 'Pending') return;
    this.firstSeen.delete(uid);
    this.podStartDuration.observe((now - seen) / 1000);
  }

  /** A pod sandbox was created (kubelet counts a start per sandbox it creates), and whether that failed. */
  podStarted(ok: boolean): void {
    this.startedPods.inc();
    if (!ok) this.startedPodsErrors.inc();
  }

  probe(pod: KubeObject | undefined, container: string, kind: Kind, ok: boolean): void {
    if (!pod) return;
    const m = pod.metadata;
    this.probeTotal.inc({ probe_type: PROBE_TYPE[kind], result: ok ? 'successful' : 'failed', container, pod: m.name!, namespace: m.namespace!, pod_uid: m.uid! });
  }

  /** Forgets a deleted pod's probe series (kubelet removes them with the pod's workers). */
  forgetPod(pod: KubeObject): void {
    const m = pod.metadata;
    for (const c of (pod.spec?.containers ?? []) as { name: string }[])
      for (const probe_type of Object.values(PROBE_TYPE))
        for (const result of ['successful', 'failed']) this.probeTotal.remove({ probe_type, result, container: c.name, pod: m.name!, namespace: m.namespace!, pod_uid: m.uid! });
  }

  proxySynced(s: SyncResult): void {
    const seconds = (s.buildMs + s.applyMs) / 1000;
    this.proxySync.observe(seconds);
    if (s.full) this.proxyFullSync.observe(seconds);
    if (!s.error) this.proxyLastSync.set(Date.now() / 1000);
  }

  registryOf(path: string): Registry | undefined {
    return path === '/metrics' ? this.registry : path === '/metrics/probes' ? this.probes : path === '/metrics/cadvisor' ? this.cadvisor : undefined;
  }
}

export interface AgentEmfOptions {
  /** The ClusterName dimension. */
  clusterName: string;
  /** Sends one flush's lines (emf-sink.ts: a CloudWatch Logs stream). */
  write(lines: string[]): Promise<void>;
  /** Default a minute. */
  everyMs?: number;
}

/** A deployed agent's series to CloudWatch as EMF, once a minute (and once more when it stops). */
export function publishEmf(m: AgentMetrics, o: AgentEmfOptions, log: (msg: string) => void = () => {}): { flush(): Promise<void>; stop(): Promise<void> } {
  let pending: string[] = [];
  const publisher = new EmfPublisher([m.registry, m.probes, m.cadvisor], { namespace: EMF_NAMESPACE, dimensions: { ClusterName: o.clusterName }, series: AGENT_EMF_SERIES, write: (l) => pending.push(l) });
  let running = Promise.resolve();
  const flush = () =>
    (running = running.then(async () => {
      await publisher.flush();
      const lines = pending;
      pending = [];
      if (lines.length) await o.write(lines);
    }).catch((e: Error) => log(`metrics: EMF flush failed: ${e.message}`)));
  const timer = setInterval(() => void flush(), o.everyMs ?? 60_000);
  timer.unref();
  return {
    flush,
    async stop() {
      clearInterval(timer);
      await flush();
    },
  };
}

/**
 * GET /metrics[/probes|/cadvisor]: the bearer token's user must be allowed `get` on nodes/metrics of this
 * node (401 without a valid token, 403 without the permission, as kubelet answers).
 */
export async function serveMetrics(
  o: { metrics: AgentMetrics; authorize(token: string): Promise<Decision>; nodeName: string },
  path: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const registry = o.metrics.registryOf(path);
  if (!registry) throw errors.pageNotFound();
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  const d = m ? await o.authorize(m[1]!) : { allowed: false, user: undefined };
  if (!d.user) throw errors.unauthorized();
  if (!d.allowed) throw errors.forbidden(`Forbidden (user=${d.user}, verb=get, resource=nodes, subresource=metrics, name=${o.nodeName})`);
  if (req.method !== 'GET') throw errors.methodNotAllowed();
  const body = await registry.metrics();
  res.writeHead(200, { 'content-type': registry.contentType });
  res.end(body);
}
