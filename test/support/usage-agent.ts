// A deployed node agent's usage reporting, wired as node-agent/agent.ts wires it: its push channel (an SQS
// queue made at start, long-polled) hands usage demands to a UsageReporter, which PUTs the node's reports
// to the apiserver. For the tests of kubectl top and HPAs on a deployed cluster (moto's SQS).

import type { SQSClient } from '@aws-sdk/client-sqs';
import { KubeClient } from '../../node-agent/kube-client.ts';
import { startPushChannel, type PushChannel } from '../../node-agent/push.ts';
import type { StatsSummary } from '../../node-agent/stats.ts';
import { UsageReporter } from '../../node-agent/usage-report.ts';

export interface UsageAgent {
  name: string;
  reporter: UsageReporter;
  channel: PushChannel;
  /** The demands' deadlines (ms since the epoch) as the channel handed them over. */
  demands: number[];
}

export async function startUsageAgent(opts: {
  name: string;
  server: string;
  token: string;
  caCert: string;
  sqs: SQSClient;
  queuePrefix: string;
  summary: () => StatsSummary;
  everyMs: number;
}): Promise<UsageAgent> {
  const kube = new KubeClient({ server: opts.server, token: opts.token, caCert: opts.caCert });
  const reporter = new UsageReporter({ kube, nodeName: opts.name, summary: opts.summary, everyMs: opts.everyMs });
  const demands: number[] = [];
  const channel = await startPushChannel({
    sqs: opts.sqs,
    queuePrefix: opts.queuePrefix,
    nodeName: opts.name,
    waitSeconds: 1,
    onNudge: () => {},
    onReportUsage: (u) => (demands.push(u), reporter.demand(u)),
  });
  return { name: opts.name, reporter, channel, demands };
}

export async function stopUsageAgents(agents: UsageAgent[]): Promise<void> {
  for (const a of agents) {
    a.reporter.stop();
    await a.channel.stop();
  }
}
