// Cost per namespace, served read-only (issue #17 item 6): what each namespace caused the control plane
// to spend, as counted by machinery/usage.ts and priced by the cost model (infra/cost-model.ts priceUsage),
// and what no namespace caused (overhead), so that namespaces + overhead = total, comparable with `npm run
// cost` for the same load.
//
//   GET /apis/cost.skiff.io/v1/namespaces/{namespace}/usage[?since=1h]   who may get pods in the namespace
//   GET /apis/cost.skiff.io/v1/usage[?since=1h]                          every namespace and the overhead:
//                                                                         who may list pods in all namespaces
// The answer (JSON, one shape for both):
//   { kind: "UsageReport", apiVersion: "cost.skiff.io/v1",
//     window: { since, until (RFC 3339), seconds },
//     pricing: { region, checked, basis },
//     namespaces: [ { namespace ("" = cluster-scoped requests), apiRequests, reconciles,
//                     dynamoRequests: { read, list, write, history }, readUnits, writeUnits,
//                     invocations (stream batches' shares, wake-ups), historyWrites, sqsRequests,
//                     auditBytes, logBytes, schedulerInvocations, cloudFrontRequests,
//                     watchSeconds (how long its watches were open: Lambda time deployed),
//                     usd: { lambda, dynamo, cloudFront, sqs, logs, scheduler, fixed, total },
//                     monthlyUsd } ],                                                   costliest first
//     overhead: [ { name, description, estimated, the same fields } ],   costliest first; [] for one namespace
//     namespacesTotal: { the namespaces' fields summed },
//     total: { namespaces + overhead } }
// Overhead, counted: heartbeats (nodes' Lease renewals and Node status), agent polls (nodes' other
// cluster-scoped requests), resync (the loops' scheduled resync, all of it), cost per namespace counting
// (the counts' own writes, deployed), other (work outside any request or reconcile). Estimated for the
// window (estimated: true, usd.fixed): alarms (by the month), push channel idle polls (the nodes now, one
// long poll each per 20 s, when nodes have queues). Not in the report: DynamoDB storage (by the GB-month:
// $0.0001-$0.01 a month in `npm run cost`'s scenarios) and the opt-in CloudWatch metrics.
// monthlyUsd projects the window's rate to a 730-hour month. `since` is a duration (90s, 15m, 1h, 2h30m,
// 7d). Locally the counts are this server's since it started (a week at most, by the minute); deployed,
// the table's hourly items (storage/usage-store.ts), whole hours, the last day by default.

import { fixedOverhead, MONTH_SECONDS, PRICES, priceUsage, type UsagePrice } from '../../infra/cost-model.ts';
import { addCounts, emptyCounts, isOverhead, OVERHEAD, type UsageCounts, type UsageMeter } from '../machinery/usage.ts';
import { errors } from '../machinery/status.ts';
import type { RequestAttributes } from './auth.ts';
import { jsonResponse, type ApiRequest, type ApiResponse } from './http.ts';

export const COST_PATH = '/apis/cost.skiff.io/';

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** A duration as `--since` and `?since=` take it: 90s, 15m, 1h, 2h30m, 7d. Throws a 400 otherwise. */
export function parseSince(s: string): number {
  if (!/^(\d+[smhd])+$/.test(s)) throw errors.badRequest(`invalid since ${JSON.stringify(s)}: a duration such as 90s, 15m, 1h, 2h30m or 7d`);
  let seconds = 0;
  for (const [, n, u] of s.matchAll(/(\d+)([smhd])/g)) seconds += Number(n) * UNIT_SECONDS[u!]!;
  if (seconds <= 0) throw errors.badRequest(`invalid since ${JSON.stringify(s)}: must be more than 0`);
  return seconds;
}

export interface UsageLine {
  namespace?: string;
  apiRequests: number;
  reconciles: number;
  dynamoRequests: { read: number; list: number; write: number; history: number };
  readUnits: number;
  writeUnits: number;
  invocations: number;
  historyWrites: number;
  sqsRequests: number;
  auditBytes: number;
  logBytes: number;
  schedulerInvocations: number;
  cloudFrontRequests: number;
  watchSeconds: number;
  /** fixed: the estimated lines' dollars (alarms, idle polls), which no count prices. */
  usd: UsagePrice & { fixed: number };
  monthlyUsd: number;
}

export interface OverheadLine extends UsageLine {
  name: string;
  description: string;
  /** True for what is estimated for the window rather than counted (alarms, idle polls). */
  estimated: boolean;
}

export interface UsageReport {
  kind: 'UsageReport';
  apiVersion: 'cost.skiff.io/v1';
  window: { since: string; until: string; seconds: number };
  pricing: { region: string; checked: string; basis: string };
  namespaces: (UsageLine & { namespace: string })[];
  overhead: OverheadLine[];
  namespacesTotal: UsageLine;
  total: UsageLine;
}

function line(c: UsageCounts, seconds: number, fixed = 0): UsageLine {
  const priced = priceUsage(c);
  const usd = { ...priced, fixed, total: priced.total + fixed };
  return {
    apiRequests: c.apiRequests,
    reconciles: c.reconciles,
    dynamoRequests: { read: c.byKind.read ?? 0, list: c.byKind.list ?? 0, write: c.byKind.write ?? 0, history: c.byKind.history ?? 0 },
    readUnits: c.rru,
    writeUnits: c.wru,
    invocations: c.invocations,
    historyWrites: c.historyWrites,
    sqsRequests: c.sqsRequests,
    auditBytes: c.auditBytes,
    logBytes: c.logBytes,
    schedulerInvocations: c.schedulerInvocations,
    cloudFrontRequests: c.cloudFrontRequests,
    watchSeconds: c.watchSeconds,
    usd,
    monthlyUsd: seconds > 0 ? (usd.total * MONTH_SECONDS) / seconds : 0,
  };
}

/** What each counted overhead line is. */
const OVERHEAD_DESCRIPTIONS: Record<string, string> = {
  [OVERHEAD.heartbeats]: "the nodes' Lease renewals and Node status: their requests and storage",
  [OVERHEAD.polls]: "the nodes' other cluster-scoped requests: their pods' lists (polls, push-channel nudges), Services and Endpoints catch-ups",
  [OVERHEAD.resync]: "the loops' scheduled resync: its invocations, reads, reconciles and log line",
  [OVERHEAD.counting]: "cost per namespace's own writes of its counts to the table",
  [OVERHEAD.other]: 'work outside any request or reconcile (a start, a local informer\'s first list)',
};

/** Where the counts are read: deployed, the table's hourly items (storage/usage-store.ts). */
export interface UsageSource {
  read(sinceMs: number, untilMs: number, namespace?: string): Promise<Map<string, UsageCounts>>;
}

/** What the estimated overhead lines need: the nodes now, and whether they long-poll queues. */
export interface ClusterFacts {
  nodes: number;
  pushChannel: boolean;
}

/** Deployed, a report without --since covers the last day (the table keeps 35). */
const DEFAULT_SHARED_SECONDS = 86400;

/** The report of `meter` since `sinceSeconds` ago (or since it started), for one namespace or all (with `facts`: the overhead). */
export function usageReport(meter: UsageMeter, sinceSeconds: number | undefined, namespace?: string, now = Date.now(), facts?: ClusterFacts): UsageReport {
  const from = Math.max(meter.started, sinceSeconds === undefined ? 0 : now - sinceSeconds * 1000);
  return reportOf(meter.since(from), from, now, namespace, facts);
}

/** The report from the shared store: whole hours, the one `since` falls in included. */
export async function sharedUsageReport(source: UsageSource, sinceSeconds: number | undefined, namespace?: string, now = Date.now(), facts?: ClusterFacts): Promise<UsageReport> {
  const from = Math.floor((now - (sinceSeconds ?? DEFAULT_SHARED_SECONDS) * 1000) / 3600_000) * 3600_000;
  return reportOf(await source.read(from, now, namespace), from, now, namespace, facts);
}

const costliest = (a: { usd: { total: number } }, b: { usd: { total: number } }) => b.usd.total - a.usd.total;

function reportOf(counts: Map<string, UsageCounts>, from: number, now: number, namespace?: string, facts?: ClusterFacts): UsageReport {
  const seconds = Math.max(1, (now - from) / 1000);
  const names = namespace === undefined ? [...counts.keys()].filter((k) => !isOverhead(k)) : [namespace];
  const namespaces = names.map((ns) => ({ namespace: ns, ...line(counts.get(ns) ?? emptyCounts(), seconds) })).sort((a, b) => costliest(a, b) || a.namespace.localeCompare(b.namespace));
  const summed = names.reduce((t, ns) => addCounts(t, counts.get(ns) ?? emptyCounts()), emptyCounts());
  const overhead: OverheadLine[] = [];
  const all = addCounts(emptyCounts(), summed);
  let fixedUsd = 0;
  if (namespace === undefined) {
    for (const [bucket, c] of counts) {
      if (!isOverhead(bucket)) continue;
      overhead.push({ name: bucket.slice(1), description: OVERHEAD_DESCRIPTIONS[bucket] ?? '', estimated: false, ...line(c, seconds) });
      addCounts(all, c);
    }
    for (const f of fixedOverhead(seconds, facts?.nodes ?? 0, facts?.pushChannel ?? false)) {
      if (!f.usd) continue;
      overhead.push({ name: f.name, description: f.description, estimated: true, ...line(emptyCounts(), seconds, f.usd) });
      fixedUsd += f.usd;
    }
    overhead.sort(costliest);
  }
  return {
    kind: 'UsageReport',
    apiVersion: 'cost.skiff.io/v1',
    window: { since: new Date(from).toISOString(), until: new Date(now).toISOString(), seconds: Math.round(seconds) },
    pricing: {
      region: PRICES.region,
      checked: PRICES.checked,
      basis: 'list prices as deployed (Lambda, DynamoDB on-demand, CloudFront, SQS, CloudWatch, EventBridge Scheduler), no free tier; DynamoDB storage left out',
    },
    namespaces,
    overhead,
    namespacesTotal: line(summed, seconds),
    total: line(all, seconds, fixedUsd),
  };
}

/** Answers a request under COST_PATH; `namespaceExists` throws a 404 for an unknown namespace; `nodes` counts the Nodes now. */
export async function serveCost(
  req: ApiRequest,
  path: string,
  meter: UsageMeter,
  authorize: (a: Omit<RequestAttributes, 'user'>) => Promise<void>,
  namespaceExists: (ns: string) => Promise<unknown>,
  source?: UsageSource,
  nodes: () => Promise<number> = async () => 0,
): Promise<ApiResponse> {
  const report = async (since: number | undefined, ns?: string) => {
    const facts = ns === undefined ? { nodes: meter.pushChannel ? await nodes() : 0, pushChannel: meter.pushChannel } : undefined;
    return source ? sharedUsageReport(source, since, ns, Date.now(), facts) : usageReport(meter, since, ns, Date.now(), facts);
  };
  const ns = /^\/apis\/cost\.skiff\.io\/v1\/namespaces\/([^/]+)\/usage$/.exec(path)?.[1];
  const verb = req.method.toLowerCase();
  if (ns !== undefined) {
    const namespace = decodeURIComponent(ns);
    // Whoever may get pods in the namespace may see what it costs.
    await authorize({ verb: 'get', resourceRequest: true, path, version: 'v1', group: '', resource: 'pods', namespace });
    if (req.method !== 'GET') throw errors.methodNotAllowed();
    await namespaceExists(namespace);
    return jsonResponse(200, await report(sinceOf(req), namespace));
  }
  if (path !== '/apis/cost.skiff.io/v1/usage') {
    await authorize({ verb, resourceRequest: false, path });
    throw errors.pageNotFound();
  }
  // Every namespace's figures: whoever may list pods in all namespaces. Not a non-resource check on the
  // URL: kube's default system:discovery binding lets every authenticated user get /apis/*.
  await authorize({ verb: 'list', resourceRequest: true, path, version: 'v1', group: '', resource: 'pods', namespace: '' });
  if (req.method !== 'GET') throw errors.methodNotAllowed();
  return jsonResponse(200, await report(sinceOf(req)));
}

function sinceOf(req: ApiRequest): number | undefined {
  const s = req.query.get('since');
  return s === null ? undefined : parseSince(s);
}
