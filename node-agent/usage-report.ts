// A deployed agent's usage reports (`kubectl top` deployed, lambdas/apiserver/node-usage.ts): only when
// the apiserver asked through the push channel ("report usage until <deadline>"), the agent PUTs its
// latest sample (stats.ts) to /api/v1/nodes/<node>/usage at once, then every `everyMs` until the
// deadline, and stops. Without a demand it sends nothing: an idle cluster pays no report.
//
// Duplicated messages extend nothing (the latest deadline wins); a deadline further than `maxAheadMs`
// (a clock far ahead) is cut to it; a failed report is tried again at the next interval.

import type { StatsSummary } from './stats.ts';
import type { KubeClient } from './kube-client.ts';

export interface UsageReporterOptions {
  kube: Pick<KubeClient, 'update'>;
  nodeName: string;
  summary: () => StatsSummary;
  /** Between reports (default 30 s, node-usage.ts USAGE_REPORT_SECONDS). */
  everyMs?: number;
  /** The furthest deadline taken (default 16 minutes ahead). */
  maxAheadMs?: number;
  log?: (msg: string) => void;
}

export class UsageReporter {
  private until = 0;
  private timer?: NodeJS.Timeout;
  /** Reports sent (tests count them). */
  reports = 0;

  constructor(private readonly o: UsageReporterOptions) {}

  /** Reports until `untilMs` (the later of this and any deadline already taken). */
  demand(untilMs: number): void {
    const until = Math.min(untilMs, Date.now() + (this.o.maxAheadMs ?? 16 * 60_000));
    if (until <= this.until || until <= Date.now()) return;
    const idle = !this.timer;
    this.until = until;
    if (idle) void this.tick();
  }

  get reporting(): boolean {
    return !!this.timer;
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.until = 0;
  }

  private async tick(): Promise<void> {
    if (Date.now() >= this.until) {
      this.timer = undefined;
      return;
    }
    this.timer = setTimeout(() => void this.tick(), this.o.everyMs ?? 30_000);
    this.timer.unref();
    try {
      this.reports++;
      await this.o.kube.update(`/api/v1/nodes/${encodeURIComponent(this.o.nodeName)}/usage`, this.o.summary());
    } catch (e) {
      this.o.log?.(`usage report: ${(e as Error).message}`);
    }
  }
}
