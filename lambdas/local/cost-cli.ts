// `skiff cost [--namespace NS] [--since 1h]`: what each namespace caused the control plane to spend
// (apiserver/cost.ts serves it at /apis/cost.skiff.io/v1), read with the kubeconfig's credentials as
// kubectl would, printed as a table: requests by kind, request units, dollars in the window and the
// 730-hour month it projects to; without --namespace, the overhead no namespace caused as rows
// "overhead/<name>" (estimated ones marked *), and TOTAL = namespaces + overhead, the figure to compare
// with `npm run cost`. A local cluster's counts are priced as if it were deployed.

import { parseArgs } from 'node:util';
import { configFromKubeconfig, KubeClient } from '../../node-agent/kube-client.ts';
import { parseSince, type UsageLine, type UsageReport } from '../apiserver/cost.ts';

const usd = (n: number) => (n >= 0.01 ? `$${n.toFixed(2)}` : `$${n.toFixed(6)}`);

/** The report as `skiff cost` prints it. */
export function formatReport(r: UsageReport, local: boolean): string {
  const header = ['NAMESPACE', 'API REQUESTS', 'RECONCILES', 'DDB READS', 'DDB LISTS', 'DDB WRITES', 'RRU', 'WRU', 'COST', 'MONTH'];
  const row = (name: string, l: UsageLine) => [name, l.apiRequests, l.reconciles, l.dynamoRequests.read, l.dynamoRequests.list, l.dynamoRequests.write, l.readUnits, l.writeUnits, usd(l.usd.total), usd(l.monthlyUsd)].map(String);
  const overhead = r.overhead ?? [];
  const rows = [header, ...r.namespaces.map((n) => row(n.namespace || '(cluster)', n)), ...overhead.map((o) => row(`overhead/${o.name.replace(/ /g, '-')}${o.estimated ? '*' : ''}`, o))];
  if (r.namespaces.length + overhead.length > 1) rows.push(row('TOTAL', r.total));
  const widths = header.map((_, i) => Math.max(...rows.map((x) => x[i]!.length)));
  const table = rows.map((x) => x.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
  const basis = `${r.pricing.basis}, ${r.pricing.region} prices checked ${r.pricing.checked}`;
  return [
    `control-plane cost per namespace, ${r.window.since} to ${r.window.until} (${r.window.seconds} s); MONTH: that rate for 730 hours`,
    local ? `priced as if deployed (this is a local cluster on SQLite: ${basis})` : `priced at ${basis}`,
    '',
    table,
    ...(overhead.length
      ? [
          '',
          "overhead/...: what no namespace caused (the nodes' heartbeats and polls, the loops' scheduled resync, the counting itself, work outside any request);",
          '* estimated for the window (alarms by the month, the nodes\' idle long polls). TOTAL = namespaces + overhead: compare with `npm run cost` (DynamoDB storage left out)',
        ]
      : []),
    ...(r.window.seconds < 3600 ? ['', `MONTH projects a ${r.window.seconds} s window: a burst in it (a start-up's writes, a rollout) is projected as if it went on all month`] : []),
    '',
  ].join('\n');
}

export async function cost(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      namespace: { type: 'string', short: 'n' },
      since: { type: 'string' },
      kubeconfig: { type: 'string', default: process.env.KUBECONFIG?.split(':')[0] || '.skiff/kubeconfig' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length) throw new Error(`cost takes no arguments (got ${positionals.join(' ')}): skiff cost [--namespace NS] [--since 1h]`);
  if (values.since !== undefined) {
    try {
      parseSince(values.since);
    } catch (e) {
      throw new Error((e as Error).message);
    }
  }
  const query = values.since ? `?since=${encodeURIComponent(values.since)}` : '';
  const path = values.namespace !== undefined ? `/apis/cost.skiff.io/v1/namespaces/${encodeURIComponent(values.namespace)}/usage${query}` : `/apis/cost.skiff.io/v1/usage${query}`;
  const config = configFromKubeconfig(values.kubeconfig!);
  const kube = new KubeClient(config);
  try {
    const r = await kube.get<UsageReport>(path);
    const host = new URL(config.server).hostname;
    process.stdout.write(formatReport(r, host === '127.0.0.1' || host === 'localhost' || host === '::1'));
  } finally {
    kube.close();
  }
}
