// Resource usage of the node and of its pods' containers (issue #17 item 1): what kubelet's Summary API
// (/stats/summary, cAdvisor's numbers) gives metrics-server, so the apiserver can serve
// metrics.k8s.io's NodeMetrics and PodMetrics (`kubectl top`).
//
// A sample every `everyMs` (10 s by default, as metrics-server's resolution): the host's CPU time and
// available memory from /proc, and for each running app container of this node the Docker Engine's
// one-shot stats (no waiting for a second sample). CPU usage is a rate, so it is the difference between
// two samples: a container seen once has memory but no CPU figure yet. Memory is the working set, as
// kubelet reports it: usage less inactive file pages (the page cache the kernel can drop).

import { readFileSync } from 'node:fs';
import type Docker from 'dockerode';
import { LABELS } from './runtime.ts';

export interface Usage {
  /** When it was measured (RFC 3339) and over how long (the rate's window, seconds). */
  time: string;
  window: number;
  usageNanoCores?: number;
  /** Cumulative CPU time, ns (the Summary API's cpu.usageCoreNanoSeconds; metrics.ts's container_cpu_usage_seconds_total). */
  usageCoreNanoSeconds?: number;
  workingSetBytes: number;
}

export interface PodStats {
  podRef: { namespace: string; name: string; uid: string };
  containers: { name: string; usage: Usage }[];
}

export interface StatsSummary {
  node: { nodeName: string; usage?: Usage };
  pods: PodStats[];
}

interface CpuSample {
  at: number;
  /** Cumulative CPU time, ns. */
  used: number;
}

/** USER_HZ, the unit of /proc/stat (100 on Linux everywhere Node runs). */
const CLK_TCK = 100;

export class StatsCollector {
  private timer?: NodeJS.Timeout;
  private last: StatsSummary;
  private hostCpu?: CpuSample;
  private readonly containerCpu = new Map<string, CpuSample>();
  private sampling?: Promise<void>;

  constructor(
    private readonly docker: Docker,
    private readonly nodeName: string,
    private readonly everyMs = 10_000,
  ) {
    this.last = { node: { nodeName }, pods: [] };
  }

  start(): this {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.everyMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The latest sample (what the agent's /stats/summary answers). */
  summary(): StatsSummary {
    return this.last;
  }

  /** Takes a sample now (one at a time); resolves when it is in summary(). */
  sample(): Promise<void> {
    this.sampling ??= this.take()
      .catch(() => undefined) // a failed sample keeps the last one (the Engine restarting, a container gone)
      .finally(() => (this.sampling = undefined));
    return this.sampling;
  }

  private async take(): Promise<void> {
    const now = Date.now();
    const time = new Date(now).toISOString().replace(/\.\d+Z$/, 'Z');
    const node = this.hostUsage(now, time);
    const listed = await this.docker.listContainers({ filters: { label: [`${LABELS.node}=${this.nodeName}`, `${LABELS.kind}=app`], status: ['running'] } });
    const pods = new Map<string, PodStats>();
    const seen = new Set<string>();
    await Promise.all(
      listed.map(async (c) => {
        const l = c.Labels;
        // One-shot: the Engine answers at once (without it, it waits a second for its own second sample).
        const s = (await this.docker.getContainer(c.Id).stats({ stream: false, 'one-shot': true } as { stream: false })) as unknown as DockerStats;
        seen.add(c.Id);
        const used = s.cpu_stats?.cpu_usage?.total_usage;
        const prev = this.containerCpu.get(c.Id);
        let usageNanoCores: number | undefined;
        if (used !== undefined) {
          if (prev && now > prev.at && used >= prev.used) usageNanoCores = Math.round(((used - prev.used) / (now - prev.at)) * 1e3);
          this.containerCpu.set(c.Id, { at: now, used });
        }
        const mem = s.memory_stats ?? {};
        const inactive = mem.stats?.inactive_file ?? mem.stats?.total_inactive_file ?? 0;
        const workingSetBytes = Math.max(0, (mem.usage ?? 0) - inactive);
        const key = l[LABELS.uid]!;
        let pod = pods.get(key);
        if (!pod) pods.set(key, (pod = { podRef: { namespace: l[LABELS.namespace]!, name: l[LABELS.pod]!, uid: key }, containers: [] }));
        pod.containers.push({ name: l[LABELS.container]!, usage: { time, window: prev ? (now - prev.at) / 1000 : 0, ...(usageNanoCores !== undefined ? { usageNanoCores } : {}), ...(used !== undefined ? { usageCoreNanoSeconds: used } : {}), workingSetBytes } });
      }),
    );
    for (const id of this.containerCpu.keys()) if (!seen.has(id)) this.containerCpu.delete(id);
    this.last = { node: { nodeName: this.nodeName, usage: node }, pods: [...pods.values()] };
  }

  /** The host's CPU (busy time from /proc/stat) and working set (MemTotal - MemAvailable). */
  private hostUsage(now: number, time: string): Usage | undefined {
    try {
      const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
      // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
      const busyTicks = cpu.slice(0, 8).reduce((a, b) => a + b, 0) - cpu[3]! - cpu[4]!;
      const used = (busyTicks / CLK_TCK) * 1e9;
      const prev = this.hostCpu;
      this.hostCpu = { at: now, used };
      const mem = Object.fromEntries(
        readFileSync('/proc/meminfo', 'utf8')
          .split('\n')
          .map((l) => /^(\w+):\s+(\d+)/.exec(l))
          .filter((m): m is RegExpExecArray => !!m)
          .map((m) => [m[1]!, Number(m[2]) * 1024]),
      );
      const usageNanoCores = prev && now > prev.at ? Math.round(((used - prev.used) / (now - prev.at)) * 1e3) : undefined; // ns per ms, x1000: ns per s
      return { time, window: prev ? (now - prev.at) / 1000 : 0, ...(usageNanoCores !== undefined ? { usageNanoCores } : {}), workingSetBytes: (mem.MemTotal ?? 0) - (mem.MemAvailable ?? 0) };
    } catch {
      return undefined; // not Linux
    }
  }
}

/** What the Engine's stats answer holds that is read here (cgroup v1 and v2 names of inactive file). */
interface DockerStats {
  cpu_stats?: { cpu_usage?: { total_usage?: number } };
  memory_stats?: { usage?: number; stats?: { inactive_file?: number; total_inactive_file?: number } };
}
