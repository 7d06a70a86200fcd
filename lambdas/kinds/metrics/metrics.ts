// metrics.k8s.io/v1beta1 NodeMetrics and PodMetrics (issue #17 item 1): what metrics-server serves, so
// `kubectl top nodes` and `kubectl top pods [--containers]` work. Never stored: each read asks the nodes'
// agents for their latest usage sample (node-agent/stats.ts, their /stats/summary, as metrics-server
// scrapes kubelets), so the figures are at most one sampling period (10 s) old. A node whose agent
// cannot be reached (a hollow node, one down) has no metrics, as with metrics-server; a container not
// yet sampled twice has no CPU rate yet, and its pod is left out until it has.

import type { KubeObject } from '../../machinery/types.ts';

type Obj = Record<string, any>;
import type { StatsSummary, Usage } from '../../../node-agent/stats.ts';
import { errors } from '../../machinery/status.ts';
import { resourceInfo, type KindStrategy, type ReadContext } from '../kind.ts';

export const METRICS_GROUP = 'metrics.k8s.io';

const quantities = (u: Usage) => ({ cpu: `${u.usageNanoCores ?? 0}n`, memory: `${Math.round(u.workingSetBytes / 1024)}Ki` });
const windowOf = (u: Usage) => `${Math.max(0, Math.round(u.window))}s`;

function nodeMetrics(node: KubeObject, s: StatsSummary | undefined): Obj | undefined {
  const u = s?.node.usage;
  if (!u || u.usageNanoCores === undefined) return undefined;
  return {
    kind: 'NodeMetrics',
    apiVersion: `${METRICS_GROUP}/v1beta1`,
    metadata: { name: node.metadata.name, creationTimestamp: u.time, ...(node.metadata.labels ? { labels: node.metadata.labels } : {}) },
    timestamp: u.time,
    window: windowOf(u),
    usage: quantities(u),
  };
}

function podMetrics(pod: KubeObject, s: StatsSummary | undefined): Obj | undefined {
  const p = s?.pods.find((x) => x.podRef.uid === pod.metadata.uid);
  if (!p || !p.containers.length || p.containers.some((c) => c.usage.usageNanoCores === undefined)) return undefined;
  const first = p.containers[0]!.usage;
  return {
    kind: 'PodMetrics',
    apiVersion: `${METRICS_GROUP}/v1beta1`,
    metadata: { name: pod.metadata.name, namespace: pod.metadata.namespace, creationTimestamp: first.time, ...(pod.metadata.labels ? { labels: pod.metadata.labels } : {}) },
    timestamp: first.time,
    window: windowOf(first),
    containers: p.containers.map((c) => ({ name: c.name, usage: quantities(c.usage) })).sort((a, b) => (a.name < b.name ? -1 : 1)),
  };
}

/** The nodes' latest usage samples, read from their agents at once, by node name. */
async function statsOf(ctx: ReadContext, nodes: KubeObject[]): Promise<Map<string, StatsSummary | undefined>> {
  const stats = await Promise.all(nodes.map((n) => ctx.nodeStats(n)));
  return new Map(nodes.map((n, i) => [n.metadata.name!, stats[i]]));
}

/** The nodes named (each once; a node gone meanwhile is left out). */
async function nodesNamed(ctx: ReadContext, names: Iterable<string>): Promise<KubeObject[]> {
  const nodes = await Promise.all([...new Set(names)].map((n) => ctx.get('nodes', undefined, n).catch(() => undefined)));
  return nodes.filter((n): n is KubeObject => !!n);
}

export const nodeMetricsKind: KindStrategy = {
  info: resourceInfo(METRICS_GROUP, 'v1beta1', 'NodeMetrics', 'nodes', false, { verbs: ['get', 'list'] }),
  read: {
    async get(ctx, _ns, name) {
      const node = await ctx.get('nodes', undefined, name);
      const m = nodeMetrics(node, await ctx.nodeStats(node));
      if (!m) throw errors.notFound('nodes', METRICS_GROUP, name);
      return m;
    },
    async list(ctx, _ns, labelSelector) {
      const nodes = await ctx.list('nodes', undefined, labelSelector);
      const stats = await statsOf(ctx, nodes);
      return nodes.flatMap((n) => nodeMetrics(n, stats.get(n.metadata.name!)) ?? []);
    },
  },
};

export const podMetricsKind: KindStrategy = {
  info: resourceInfo(METRICS_GROUP, 'v1beta1', 'PodMetrics', 'pods', true, { verbs: ['get', 'list'] }),
  read: {
    async get(ctx, ns, name) {
      const pod = await ctx.get('pods', ns, name);
      const [node] = pod.spec?.nodeName ? await nodesNamed(ctx, [pod.spec.nodeName]) : [];
      const m = node ? podMetrics(pod, await ctx.nodeStats(node)) : undefined;
      if (!m) throw errors.notFound('pods', METRICS_GROUP, name);
      return m;
    },
    async list(ctx, ns, labelSelector) {
      const pods = (await ctx.list('pods', ns, labelSelector)).filter((p) => p.spec?.nodeName && p.status?.phase === 'Running');
      const stats = await statsOf(ctx, await nodesNamed(ctx, pods.map((p) => p.spec!.nodeName as string)));
      return pods.flatMap((p) => podMetrics(p, stats.get(p.spec!.nodeName)) ?? []);
    },
  },
};
