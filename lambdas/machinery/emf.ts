// The Prometheus series of a prom-client registry, written as CloudWatch embedded metric format (EMF) log
// lines (issue #17 item 3): in the cloud nobody scrapes a Lambda instance, so the apiserver function and
// the deployed agents publish the same series to CloudWatch this way, once a minute per process (not per
// request: a line per request would be a log event and a metric value per request).
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
// Each line is one JSON object: `_aws` with `Timestamp` (ms since the epoch) and `CloudWatchMetrics`, one
// MetricDirective (`Namespace`, `Dimensions`: one dimension set, `Metrics`: `Name` and `Unit`), and at the
// top level each dimension's value (a string) and each metric's value (a number).
//
// What goes: counters as the increase since the last flush (CloudWatch sums the lines of all instances
// and nodes in a period: use the Sum statistic), gauges as their value (summed over the labels dropped),
// histograms as <name>_count and <name>_sum increases (average = sum / count) and, under <name> itself, the
// flush's distribution for CloudWatch's percentiles: EMF takes an array of up to 100 values per metric and
// no counts, so each bucket's increase becomes that many copies of its upper bound (the +Inf bucket's: the
// largest finite bound, a floor), scaled down in proportion when the increases pass 100. So a p99 read in
// CloudWatch is the bucket bound a Prometheus reader would see (no interpolation), exact while an
// instance's minute has at most 100 observations, approximate beyond; the true count stays in _count.
// Labels become dimensions only where `dimensions` names them; the rest are summed.
//
// COST: each distinct (namespace, metric name, dimension values) is a CloudWatch custom metric, priced per
// metric per month ($0.30 each for the first 10,000, prorated by the hour it is sent in), so dimension sets
// are kept small: never a pod, node, Lambda instance or resource name, only short closed sets (verb, code,
// probe type and result, namespace). A series that did not move is not sent (a counter's zero increase),
// so a quiet hour bills nothing for it. The lines themselves are log ingestion ($0.50/GB): ~1-2 KB a minute
// per process, about 2-4 cents a month each.

import type { Registry } from 'prom-client';

/** The CloudWatch namespace of Skiff's metrics (the apiserver's and the agents'). */
export const EMF_NAMESPACE = 'Skiff';

/** Which registry metric goes, with which of its labels as dimensions, in which CloudWatch unit. */
export interface EmfSeries {
  metric: string;
  dimensions: string[];
  unit?: 'Count' | 'Seconds' | 'Bytes' | 'None';
}

export interface EmfOptions {
  /** The CloudWatch namespace (e.g. Skiff). */
  namespace: string;
  /** Dimensions every line carries (e.g. ClusterName): part of every dimension set. */
  dimensions: Record<string, string>;
  series: EmfSeries[];
  write(line: string): void;
  now?: () => number;
}

interface Doc {
  dims: Record<string, string>;
  metrics: Map<string, { value: number | number[]; unit: string }>;
  /** Per histogram: its buckets' cumulative increases by upper bound (le), summed over dropped labels. */
  buckets: Map<string, { unit: string; byLe: Map<number, number> }>;
}

/** The most values EMF takes for one metric in one line. */
export const EMF_MAX_VALUES = 100;

/**
 * A histogram's increases as EMF values: cumulative bucket counts by upper bound → each bucket's bound
 * repeated as often as it grew (the +Inf bucket counted at the largest finite bound), at most `max`
 * values in all, scaled by largest remainders when more. Empty when nothing was observed.
 */
export function distributionValues(byLe: Map<number, number>, max = EMF_MAX_VALUES): number[] {
  const les = [...byLe.keys()].sort((a, b) => a - b);
  const finite = les.filter(Number.isFinite);
  const counts: [number, number][] = [];
  let below = 0;
  for (const le of les) {
    const cum = byLe.get(le)!;
    const n = Math.max(0, cum - below);
    below = Math.max(below, cum);
    const at = Number.isFinite(le) ? le : finite[finite.length - 1];
    if (n > 0 && at !== undefined) counts.push([at, n]);
  }
  const total = counts.reduce((a, [, n]) => a + n, 0);
  if (total === 0) return [];
  let shares = counts.map(([at, n]) => ({ at, n, exact: total <= max ? n : (n * max) / total }));
  if (total > max) {
    const floors = shares.map((c) => ({ ...c, n: Math.floor(c.exact) }));
    let left = max - floors.reduce((a, c) => a + c.n, 0);
    for (const c of [...floors].sort((x, y) => y.exact - Math.floor(y.exact) - (x.exact - Math.floor(x.exact)))) {
      if (left-- <= 0) break;
      c.n++;
    }
    shares = floors;
  }
  return shares.flatMap((c) => Array<number>(c.n).fill(c.at));
}

export class EmfPublisher {
  /** Each counter's and histogram's last value by metric name and full label set (only the series still there). */
  private last = new Map<string, number>();
  private lastFlush: number;

  constructor(
    private readonly registries: Registry[],
    private readonly o: EmfOptions,
  ) {
    this.lastFlush = (o.now ?? Date.now)();
  }

  /** Flushes when `everyMs` have passed since the last flush; returns the lines written. */
  async maybeFlush(everyMs = 60_000): Promise<number> {
    return (this.o.now ?? Date.now)() - this.lastFlush >= everyMs ? this.flush() : 0;
  }

  /** Writes one line per set of dimension values that has something to say; returns how many. */
  async flush(): Promise<number> {
    const now = (this.o.now ?? Date.now)();
    this.lastFlush = now;
    const wanted = new Map(this.o.series.map((s) => [s.metric, s]));
    const docs = new Map<string, Doc>();
    const gauges = new Set<string>();
    // Rebuilt at every flush, so series that went (a container's) are not kept for ever.
    const seen = new Map<string, number>();
    for (const registry of this.registries) {
      for (const m of await registry.getMetricsAsJSON()) {
        const spec = wanted.get(m.name);
        if (!spec) continue;
        const type = String(m.type); // prom-client's MetricType enum holds these strings
        if (type === 'gauge') gauges.add(m.name);
        for (const v of m.values as { value: number; labels: Record<string, string | number>; metricName?: string }[]) {
          const sample = v.metricName ?? m.name;
          const bucket = type === 'histogram' && sample.endsWith('_bucket');
          if (type === 'histogram' && !bucket && !sample.endsWith('_count') && !sample.endsWith('_sum')) continue;
          let value = v.value;
          if (type === 'counter' || type === 'histogram') {
            const key = `${sample}${JSON.stringify(v.labels)}`;
            const prev = this.last.get(key);
            seen.set(key, v.value);
            value = prev !== undefined && v.value >= prev ? v.value - prev : v.value; // a reset counts from zero
          }
          const name = type === 'histogram' ? sample : m.name;
          const unit = type === 'histogram' && sample.endsWith('_count') ? 'Count' : (spec.unit ?? 'None');
          // CloudWatch wants a non-empty value for each dimension.
          const dims = Object.fromEntries(spec.dimensions.map((d) => [d, String(v.labels[d] ?? '') || 'none']));
          const id = `${spec.dimensions.join(',')}|${JSON.stringify(dims)}`;
          let doc = docs.get(id);
          if (!doc) docs.set(id, (doc = { dims, metrics: new Map(), buckets: new Map() }));
          if (bucket) {
            let h = doc.buckets.get(m.name);
            if (!h) doc.buckets.set(m.name, (h = { unit: spec.unit ?? 'None', byLe: new Map() }));
            const le = v.labels.le === '+Inf' ? Infinity : Number(v.labels.le);
            h.byLe.set(le, (h.byLe.get(le) ?? 0) + value);
            continue;
          }
          const cur = doc.metrics.get(name);
          doc.metrics.set(name, { value: ((cur?.value as number | undefined) ?? 0) + value, unit });
        }
      }
    }
    this.last = seen;
    let lines = 0;
    for (const doc of docs.values()) {
      for (const [name, h] of doc.buckets) {
        const values = distributionValues(h.byLe);
        if (values.length) doc.metrics.set(name, { value: values, unit: h.unit });
      }
      // Counters and histograms that did not move are left out (no cost for an idle series).
      const metrics = [...doc.metrics].filter(([name, m]) => m.value !== 0 || gauges.has(name));
      // At most 100 metrics per directive (the spec's limit).
      for (let i = 0; i < metrics.length; i += 100) {
        const chunk = metrics.slice(i, i + 100);
        const line: Record<string, unknown> = {
          _aws: {
            Timestamp: now,
            CloudWatchMetrics: [{ Namespace: this.o.namespace, Dimensions: [[...Object.keys(this.o.dimensions), ...Object.keys(doc.dims)]], Metrics: chunk.map(([Name, m]) => ({ Name, Unit: m.unit })) }],
          },
          ...this.o.dimensions,
          ...doc.dims,
        };
        for (const [name, m] of chunk) line[name] = m.value;
        this.o.write(JSON.stringify(line));
        lines++;
      }
    }
    return lines;
  }
}
