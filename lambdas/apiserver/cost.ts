// Cost per namespace, served read-only (issue #17 item 6): what each namespace's control-plane requests
// cost, as counted by machinery/usage.ts and priced by the cost model (infra/cost-model.ts priceUsage).
//
//   GET /apis/cost.skiff.io/v1/namespaces/{namespace}/usage[?since=1h]   who may get pods in the namespace
//   GET /apis/cost.skiff.io/v1/usage[?since=1h]                          every namespace: `get` on this
//                                                                         non-resource URL (cluster admins)
// The answer (JSON, one shape for both):
//   { kind: "UsageReport", apiVersion: "cost.skiff.io/v1",
//     window: { since, until (RFC 3339), seconds },
//     pricing: { region, checked, basis },
//     namespaces: [ { namespace ("" = cluster-scoped requests), apiRequests, reconciles,
//                     dynamoRequests: { read, list, write }, readUnits, writeUnits,
//                     usd: { lambda, dynamo, cloudFront, total }, monthlyUsd } ],   costliest first
//     total: { the same fields, namespace omitted } }
// monthlyUsd projects the window's rate to a 730-hour month. `since` is a duration (90s, 15m, 1h, 2h30m,
// 7d). Locally the counts are this server's since it started (a week at most, by the minute); deployed,
// the table's hourly items (storage/usage-store.ts), whole hours, the last day by default.

import { MONTH_SECONDS, PRICES, priceUsage } from '../../infra/cost-model.ts';
import { addCounts, emptyCounts, type UsageCounts, type UsageMeter } from '../machinery/usage.ts';
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
  dynamoRequests: { read: number; list: number; write: number };
  readUnits: number;
  writeUnits: number;
  usd: { lambda: number; dynamo: number; cloudFront: number; total: number };
  monthlyUsd: number;
}

export interface UsageReport {
  kind: 'UsageReport';
  apiVersion: 'cost.skiff.io/v1';
  window: { since: string; until: string; seconds: number };
  pricing: { region: string; checked: string; basis: string };
  namespaces: (UsageLine & { namespace: string })[];
  total: UsageLine;
}

function line(c: UsageCounts, seconds: number): UsageLine {
  const usd = priceUsage(c);
  return {
    apiRequests: c.apiRequests,
    reconciles: c.reconciles,
    dynamoRequests: { read: c.byKind.read ?? 0, list: c.byKind.list ?? 0, write: c.byKind.write ?? 0 },
    readUnits: c.rru,
    writeUnits: c.wru,
    usd,
    monthlyUsd: seconds > 0 ? (usd.total * MONTH_SECONDS) / seconds : 0,
  };
}

/** Where the counts are read: deployed, the table's hourly items (storage/usage-store.ts). */
export interface UsageSource {
  read(sinceMs: number, untilMs: number, namespace?: string): Promise<Map<string, UsageCounts>>;
}

/** Deployed, a report without --since covers the last day (the table keeps 35). */
const DEFAULT_SHARED_SECONDS = 86400;

/** The report of `meter` since `sinceSeconds` ago (or since it started), for one namespace or all. */
export function usageReport(meter: UsageMeter, sinceSeconds: number | undefined, namespace?: string, now = Date.now()): UsageReport {
  const from = Math.max(meter.started, sinceSeconds === undefined ? 0 : now - sinceSeconds * 1000);
  return reportOf(meter.since(from), from, now, namespace);
}

/** The report from the shared store: whole hours, the one `since` falls in included. */
export async function sharedUsageReport(source: UsageSource, sinceSeconds: number | undefined, namespace?: string, now = Date.now()): Promise<UsageReport> {
  const from = Math.floor((now - (sinceSeconds ?? DEFAULT_SHARED_SECONDS) * 1000) / 3600_000) * 3600_000;
  return reportOf(await source.read(from, now, namespace), from, now, namespace);
}

function reportOf(counts: Map<string, UsageCounts>, from: number, now: number, namespace?: string): UsageReport {
  const seconds = Math.max(1, (now - from) / 1000);
  const names = namespace === undefined ? [...counts.keys()] : [namespace];
  const namespaces = names.map((ns) => ({ namespace: ns, ...line(counts.get(ns) ?? emptyCounts(), seconds) })).sort((a, b) => b.usd.total - a.usd.total || a.namespace.localeCompare(b.namespace));
  const total = names.reduce((t, ns) => addCounts(t, counts.get(ns) ?? emptyCounts()), emptyCounts());
  return {
    kind: 'UsageReport',
    apiVersion: 'cost.skiff.io/v1',
    window: { since: new Date(from).toISOString(), until: new Date(now).toISOString(), seconds: Math.round(seconds) },
    pricing: { region: PRICES.region, checked: PRICES.checked, basis: 'list prices as deployed (Lambda, DynamoDB on-demand, CloudFront), no free tier' },
    namespaces,
    total: line(total, seconds),
  };
}

/** Answers a request under COST_PATH; `namespaceExists` throws a 404 for an unknown namespace. */
export async function serveCost(
  req: ApiRequest,
  path: string,
  meter: UsageMeter,
  authorize: (a: Omit<RequestAttributes, 'user'>) => Promise<void>,
  namespaceExists: (ns: string) => Promise<unknown>,
  source?: UsageSource,
): Promise<ApiResponse> {
  const report = (since: number | undefined, ns?: string) => (source ? sharedUsageReport(source, since, ns) : Promise.resolve(usageReport(meter, since, ns)));
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
  await authorize({ verb, resourceRequest: false, path });
  if (path !== '/apis/cost.skiff.io/v1/usage') throw errors.pageNotFound();
  if (req.method !== 'GET') throw errors.methodNotAllowed();
  return jsonResponse(200, await report(sinceOf(req)));
}

function sinceOf(req: ApiRequest): number | undefined {
  const s = req.query.get('since');
  return s === null ? undefined : parseSince(s);
}
