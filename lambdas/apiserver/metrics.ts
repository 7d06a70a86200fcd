// The apiserver's Prometheus metrics at /metrics (issue #17 item 3), named as kube-apiserver names them so
// dashboards and alerts written for Kubernetes read them: apiserver_request_total and
// apiserver_request_duration_seconds by verb, group, version, resource, subresource, scope and code (the
// histogram without code, as kube's), apiserver_longrunning_requests (watches open now), and the store's
// request latency by operation (skiff_storage_request_duration_seconds: kube's etcd_request_duration_seconds
// has no etcd to name here). prom-client keeps the series and writes the text format.
//
// Who may read them is kube's rule: `get` on the non-resource URL /metrics (the system:monitoring group
// has it, bootstrap-policy.ts). Each process counts its own requests: `skiff up` is one process; each
// apiserver Lambda instance of a deployed cluster has its own counts (not aggregated there yet).

import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Backend } from '../storage/backend.ts';
import type { RequestAttributes } from './auth.ts';

const REQUEST_LABELS = ['verb', 'group', 'version', 'resource', 'subresource', 'scope', 'component'] as const;
/** kube-apiserver's buckets for apiserver_request_duration_seconds. */
const REQUEST_BUCKETS = [0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60];
const STORAGE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** Requests that stay open (kube's long-running verbs): counted, not timed. */
const LONG_RUNNING = new Set(['watch', 'proxy', 'connect']);

export const METRICS_PATH = '/metrics';

type Labels = Record<(typeof REQUEST_LABELS)[number], string>;

export class ApiMetrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({ name: 'apiserver_request_total', help: 'Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.', labelNames: [...REQUEST_LABELS, 'code'], registers: [this.registry] });
  private readonly duration = new Histogram({ name: 'apiserver_request_duration_seconds', help: 'Response latency distribution in seconds for each verb, group, version, resource, subresource, scope and component.', labelNames: [...REQUEST_LABELS], buckets: REQUEST_BUCKETS, registers: [this.registry] });
  private readonly longRunning = new Gauge({ name: 'apiserver_longrunning_requests', help: 'Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, scope and component.', labelNames: [...REQUEST_LABELS], registers: [this.registry] });
  private readonly storage = new Histogram({ name: 'skiff_storage_request_duration_seconds', help: 'Storage (SQLite or DynamoDB) request latency in seconds for each operation.', labelNames: ['operation'], buckets: STORAGE_BUCKETS, registers: [this.registry] });

  /** The series of each label set, made once (prom-client hashes a label object on every call otherwise). */
  private readonly series = new Map<string, { labels: Labels; codes: Map<number, ReturnType<Counter['labels']>>; duration: ReturnType<Histogram['labels']> }>();

  /** Records a request answered: its count by code; its latency unless it is long-running (then it is open until `ended`). */
  request(a: RequestAttributes, code: number, seconds: number): { ended?: () => void } {
    const id = `${a.verb}|${a.group ?? ''}|${a.version ?? ''}|${a.resource ?? ''}|${a.subresource ?? ''}|${a.namespace ? 'n' : ''}|${a.name ? 'r' : ''}|${a.resourceRequest ? 'R' : ''}`;
    let s = this.series.get(id);
    if (!s) {
      // Bounded: a client may name any resource (a 404 is counted too); past the bound, series are made per call.
      const labels = labelsOf(a);
      s = { labels, codes: new Map(), duration: this.duration.labels(labels) };
      if (this.series.size < 10_000) this.series.set(id, s);
    }
    const labels = s.labels;
    let counter = s.codes.get(code);
    if (!counter) s.codes.set(code, (counter = this.requests.labels({ ...labels, code: String(code) })));
    counter.inc();
    if (!LONG_RUNNING.has(a.verb)) {
      s.duration.observe(seconds);
      return {};
    }
    if (code >= 300) return {};
    this.longRunning.inc(labels);
    let open = true;
    return {
      ended: () => {
        if (open) this.longRunning.dec(labels);
        open = false;
      },
    };
  }

  /** The store, timed: each object read, list and write by operation (watches are long-lived: not timed). */
  timed(backend: Backend): Backend {
    // One child per operation, made once: no label lookup per call.
    const children = new Map<string, ReturnType<Histogram['labels']>>();
    const time = <T>(operation: string, p: Promise<T>): Promise<T> => {
      let child = children.get(operation);
      if (!child) children.set(operation, (child = this.storage.labels(operation)));
      const t0 = performance.now();
      const c = child;
      return p.then(
        (v) => {
          c.observe((performance.now() - t0) / 1000);
          return v;
        },
        (e: unknown) => {
          c.observe((performance.now() - t0) / 1000);
          throw e;
        },
      );
    };
    return {
      // Reads of one small counter (several per write: admission asks whether any quota, limit range or
      // webhook exists) are not timed: timing them cost writes about 10% in bench:vs-kube.
      currentRevision: () => backend.currentRevision(),
      get: (key) => time('get', backend.get(key)),
      list: (prefix, opts) => time('list', backend.list(prefix, opts)),
      create: (key, value, opts) => time('create', backend.create(key, value, opts)),
      count: (group) => backend.count(group),
      countExisting: (key, group) => time('countExisting', backend.countExisting(key, group)),
      chargeExisting: (key, charges) => time('chargeExisting', backend.chargeExisting(key, charges)),
      update: (key, value, rev, opts) => time('update', backend.update(key, value, rev, opts)),
      delete: (key, rev) => time('delete', backend.delete(key, rev)),
      watch: (prefix, from, signal, progress, opts) => backend.watch(prefix, from, signal, progress, opts),
      close: () => backend.close(),
    };
  }

  /** The text format (version 0.0.4). */
  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

function labelsOf(a: RequestAttributes): Labels {
  if (!a.resourceRequest) return { verb: a.verb.toUpperCase(), group: '', version: '', resource: '', subresource: '', scope: '', component: 'apiserver' };
  // kube's scope: one object ("resource"), a namespace's collection, or the cluster's.
  const scope = a.name ? 'resource' : a.namespace ? 'namespace' : 'cluster';
  // kube's verbs are upper case in this metric (LIST, WATCH, GET, POST...: its "reported verb").
  const verb = { create: 'POST', update: 'PUT', patch: 'PATCH', delete: 'DELETE', deletecollection: 'DELETE', get: 'GET', list: 'LIST', watch: 'WATCH' }[a.verb] ?? a.verb.toUpperCase();
  return { verb, group: a.group ?? '', version: a.version ?? '', resource: a.resource ?? '', subresource: a.subresource ?? '', scope, component: 'apiserver' };
}
