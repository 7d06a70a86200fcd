// `npm run cost`: the monthly control-plane bill of a deployed Skiff cluster (infra/cost-model.ts), one
// table per scenario and a summary beside EKS's control-plane fee, then the agent settings that keep an
// idle 3-node cluster under $1 a month.
//
//   npm run cost
//   npm run cost -- --nodes 5 --pods 40 --churn 20 --poll 30 --lease 60 [--watch] [--function-url]

import { parseArgs } from 'node:util';
import {
  CURRENT_AGENT,
  NAIVE_AGENT,
  NODE_STATUS_REFRESH_SECONDS,
  MONTH_HOURS,
  OPERATIONS,
  PRICES,
  SCENARIOS,
  usageDemandHour,
  LARGE_CLUSTER,
  scaleLimits,
  GUARD_MAX_OBJECTS_PER_NAMESPACE,
  guardCost,
  cloudWatchMetricsCost,
  monthlyBill,
  candidateSettings,
  type AgentSettings,
  type Bill,
  type ClusterProfile,
} from '../infra/cost-model.ts';

const usd = (n: number) => `$${n < 0.01 && n > 0 ? n.toFixed(4) : n.toFixed(2)}`;

function table(rows: string[][], right: number[] = []): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (right.includes(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

function describe(a: AgentSettings): string {
  const follow = a.follow === 'poll' ? `poll every ${a.pollSeconds} s` : 'watches held open';
  const inf = `${a.informers.pods + a.informers.services + a.informers.endpoints} informers`;
  const wakes = [a.leaseWakes.scheduler && 'scheduler', a.leaseWakes.controllerManager && 'controller manager'].filter(Boolean).join(' + ') || 'nothing';
  return `agents: ${follow}, lease every ${a.leaseSeconds} s, ${inf}, via ${a.via === 'frontDoor' ? 'CloudFront' : 'the Function URL'}; heartbeats wake ${wakes}; resync every ${a.resyncSeconds} s`;
}

function printBill(b: Bill, note: string): void {
  const c = b.cluster;
  const units = c.pods ? `, in RCs + Services of ${c.podsPerUnit ?? 10} pods, ${c.namespaces ?? 1} namespace(s)` : '';
  console.log(`\n== ${c.name}: ${c.nodes} nodes, ${c.pods} pods${units}, ${c.churnPerHour} pod creations+deletions/h (${note})`);
  console.log(`   ${describe(b.agent)}`);
  const rows = [['line item', 'quantity / month', 'USD / month'], ...b.lines.map((l) => [l.item, l.quantity, usd(l.usd)])];
  rows.push(['total (usage)', '', usd(b.usageUsd)], ['total', '', usd(b.totalUsd)], ['total after always-free tiers', '', usd(b.afterFreeTierUsd)], ['EKS control plane', `${MONTH_HOURS} h`, usd(b.eksUsd)]);
  console.log(table(rows, [2]));
  const sources = Object.entries(b.bySource).filter(([, v]) => Math.abs(v) >= 0.005).sort((x, y) => y[1] - x[1]);
  console.log(`   where it goes: ${sources.map(([k, v]) => `${k} ${usd(v)}`).join('; ')}`);
}

const { values } = parseArgs({
  options: {
    nodes: { type: 'string' },
    pods: { type: 'string' },
    churn: { type: 'string' },
    /** CronJob fire times per hour, all CronJobs together (EventBridge Scheduler wake-ups). */
    'cronjob-fires': { type: 'string' },
    poll: { type: 'string' },
    lease: { type: 'string' },
    watch: { type: 'boolean' },
    'function-url': { type: 'boolean' },
  },
});

console.log(`Skiff control-plane cost per ${MONTH_HOURS}-hour month, ${PRICES.region} prices checked ${PRICES.checked} (sources in infra/cost-model.ts).`);
console.log('Request counts per operation are counted on the real code by test/cost.requests.test.ts; Lambda times are a local measurement (moto).');

if (values.nodes) {
  const cluster: ClusterProfile = { name: 'custom', nodes: Number(values.nodes), pods: Number(values.pods ?? 0), churnPerHour: Number(values.churn ?? 0), cronJobFiresPerHour: Number(values['cronjob-fires'] ?? 0) };
  const agent: AgentSettings = {
    ...CURRENT_AGENT,
    follow: values.watch ? 'watch' : 'poll',
    pollSeconds: Number(values.poll ?? CURRENT_AGENT.pollSeconds),
    leaseSeconds: Number(values.lease ?? CURRENT_AGENT.leaseSeconds),
    via: values['function-url'] ? 'functionUrl' : 'frontDoor',
  };
  printBill(monthlyBill(cluster, agent), 'from the command line');
  process.exit(0);
}

const bills = SCENARIOS.map((s) => ({ ...s, bill: monthlyBill(s.cluster, s.agent) }));
for (const s of bills) printBill(s.bill, s.note);

console.log('\n== Summary (USD per month)');
console.log(
  table(
    [
      ['scenario', 'Lambda', 'DynamoDB', 'CloudFront', 'CloudWatch', 'total', 'after free tiers', 'EKS control plane'],
      ...bills.map(({ bill: b }) => {
        const sum = (p: string) => b.lines.filter((l) => l.item.startsWith(p)).reduce((n, l) => n + l.usd, 0);
        return [b.cluster.name, usd(sum('Lambda')), usd(sum('DynamoDB')), usd(sum('CloudFront')), usd(sum('CloudWatch')), usd(b.totalUsd), usd(b.afterFreeTierUsd), usd(b.eksUsd)];
      }),
    ],
    [1, 2, 3, 4, 5, 6, 7],
  ),
);

// The opt-in CloudWatch metrics (cdk deploy -c skiff:cloudWatchMetrics=true): not in the bills above.
console.log('\n== Opt-in: the apiserver\'s and nodes\' metrics in CloudWatch (skiff:cloudWatchMetrics=true; custom metrics, counted from the EMF series definitions, see cloudWatchMetricsCost)');
console.log(
  table(
    [['scenario', 'custom metrics', 'adds a month'], ...bills.map(({ cluster: c }) => { const m = cloudWatchMetricsCost(c); return [c.name, String(m.metrics), usd(m.usd)]; })],
    [1, 2],
  ),
);

// `kubectl top` deployed: reported on demand only, so the idle bills above have none of it.
console.log('\n== `kubectl top` / HPA usage reads on a deployed cluster (node-usage.ts): nothing while nobody reads; while read, per hour');
console.log(
  table(
    [
      ['cluster', 'reports/h', 'demands/h', 'an hour', 'read all month'],
      ...[[3, 10], [100, 30]].map(([n, p]) => {
        const h = usageDemandHour(n!, p!, 240); // an HPA's PodMetrics read every 15 s
        return [`${n} nodes, ${p} pods each`, String(h.reports), String(h.messages), usd(h.usd), usd(h.usd * 730)];
      }),
    ],
    [1, 2, 3, 4],
  ),
);

// Where a cluster far larger than the scenarios would first break (issue #16 item 5).
for (const c of [SCENARIOS.find((x) => x.cluster.nodes === 100)!.cluster, LARGE_CLUSTER]) {
  const bill = monthlyBill(c);
  console.log(`\n== Where ${c.name} would first break (${c.churnPerHour} pod creations+deletions/h, ${c.namespaces} namespaces; usage ${usd(bill.usageUsd)} a month)`);
  const amount = (n: number, unit: string) => (unit === 'bytes' ? `${(n / 1024 / 1024).toFixed(1)} MB` : n >= 100 ? n.toFixed(0) : n.toFixed(2));
  console.log(
    table(
      [['limit', 'needed', 'AWS default', 'needed / limit', 'unit', 'note'], ...scaleLimits(c).map((r) => [r.what, amount(r.needed, r.unit), amount(r.limit, r.unit), `${(r.needed / r.limit).toFixed(2)}x`, r.unit, r.note])],
      [1, 2, 3],
    ),
  );
}

console.log(
  `\n== The runaway-write guard: the most one namespace can be made to cost (limit ${GUARD_MAX_OBJECTS_PER_NAMESPACE} objects, --max-objects-per-namespace / maxObjectsPerNamespace)`,
);
console.log(
  table(
    [['filled with', 'creates', 'to fill (once)', 'to keep / month'], ...guardCost().map((g) => [g.what, String(g.creates), usd(g.fillUsd), usd(g.storagePerMonthUsd)])],
    [1, 2, 3],
  ),
);
console.log('   beyond the limit creates are refused (403) and write nothing; the TableWriteRate alarm fires on any sustained runaway');

// What each default is worth: the idle 3-node bill with one knob put back as it was before the cost work.
const idle: ClusterProfile = { name: 'idle 3 nodes', nodes: 3, pods: 0, churnPerHour: 0 };
const now = monthlyBill(idle, CURRENT_AGENT).usageUsd;
const knobs: [string, Partial<AgentSettings>][] = [
  ['agents poll every 10 s', { pollSeconds: 10 }],
  ['Lease every 60 s', { leaseSeconds: 60 }],
  ['proxy and DNS with their own informers', { informers: NAIVE_AGENT.informers }],
  ['agents through CloudFront', { via: 'frontDoor' }],
  ['heartbeat Leases wake both loops', { leaseWakes: { scheduler: true, controllerManager: true } }],
  ['resync every minute', { resyncSeconds: 60 }],
  ['Node status every 5 minutes', { statusRefreshSeconds: NODE_STATUS_REFRESH_SECONDS }],
];
console.log(`\n== What each default saves on the idle 3-node cluster (usage ${usd(now)} a month with all of them)`);
console.log(table([['put back', 'adds a month'], ...knobs.map(([what, k]) => [what, usd(monthlyBill(idle, { ...CURRENT_AGENT, ...k }).usageUsd - now)])], [1]));

const budget = 1;
const all = candidateSettings(idle);
console.log(`\n== The idle 3-node cluster: the cheapest settings for each poll interval (usage = all but the fixed alarms; aim: under ${usd(budget)})`);
const rows = [['poll', 'usage', 'total', 'after free tiers', 'under aim', 'settings (besides the poll)']];
for (const poll of [...new Set(all.map((c) => c.agent.pollSeconds))].sort((a, b) => a - b)) {
  const best = all.filter((c) => c.agent.pollSeconds === poll).sort((a, b) => a.bill.usageUsd - b.bill.usageUsd)[0]!;
  rows.push([`${poll} s`, usd(best.bill.usageUsd), usd(best.bill.totalUsd), usd(best.bill.afterFreeTierUsd), best.bill.usageUsd < budget ? 'yes' : 'no', best.changes.slice(1).join('; ')]);
}
console.log(table(rows, [1, 2, 3]));
console.log(`\n== Fewest changes that meet the aim, with the shortest poll for each`);
const meeting = all.filter((c) => c.bill.usageUsd < budget).sort((a, b) => a.changes.length - b.changes.length || a.agent.pollSeconds - b.agent.pollSeconds || a.agent.leaseSeconds - b.agent.leaseSeconds);
const seen = new Set<string>();
const rows2 = [['usage', 'total', 'after free tiers', 'settings']];
for (const f of meeting) {
  const key = f.changes.slice(2).join(',');
  if (seen.has(key)) continue;
  seen.add(key);
  rows2.push([usd(f.bill.usageUsd), usd(f.bill.totalUsd), usd(f.bill.afterFreeTierUsd), f.changes.join('; ')]);
  if (rows2.length > 10) break;
}
console.log(meeting.length ? table(rows2, [0, 1, 2]) : 'none of the settings searched meets it');
