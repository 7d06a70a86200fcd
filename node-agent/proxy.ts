// The Service proxy of the node agent: kube-proxy's iptables mode. It follows Services and Endpoints
// through two informers and, after any change, rebuilds the rule set (proxy-rules.ts, a pure function)
// and applies what changed as one iptables-restore --noflush batch that touches only its own chains.
// The packets themselves never pass through this process: the kernel DNATs them, so service traffic
// keeps flowing while the agent is stopped, and stops only with cleanup().
//
// Syncs are coalesced: at most one apply runs at a time; a change during it marks the proxy dirty and
// one more sync follows; syncs are at least minSyncMs apart. A periodic check (resyncMs) reads our
// chains back and rewrites them all only if they drifted (jumps, chains or rule counts differ), so
// rules someone else removed are repaired, as kube-proxy's syncPeriod does, without a full rewrite of
// every service each period.

import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import type Docker from 'dockerode';
import type { KubeClient } from './kube-client.ts';
import { Informer } from './informer.ts';
import { buildRuleset, jumpRules, renderDeletion, renderRestore, servicePorts, staleUdpFlows, type PortInfo, type ProxyNodeInfo, type Ruleset } from './proxy-rules.ts';
import { podNetwork } from './runtime.ts';
import { iptables, iptablesRestore, iptablesSave, runIn } from './iptables.ts';

export interface ProxyConfig {
  /** Chain name prefix (default SKIFF; at most 10 characters). */
  chainPrefix?: string;
  /** Connections to this CIDR that no service rule takes are rejected (e.g. the apiserver's 10.96.0.0/16). */
  serviceCIDR?: string;
  masqueradeMark?: number;
  /** Minimum time between two applies (default 100 ms). */
  minSyncMs?: number;
  /** Full re-apply period (default 60 s). */
  resyncMs?: number;
  /** Called after every sync (tests and benchmarks). */
  onSync?: (s: SyncResult) => void;
  /**
   * The network namespace of the node's bridges (a name under /run/netns, or a path), when it is not
   * this process's: every iptables command runs there (iptables.ts). Hairpin mode is then left alone.
   */
  netns?: string;
}

export interface SyncResult {
  /** Whether iptables-restore ran (false: the rules were already as wanted). */
  applied: boolean;
  /** A full sync: every chain rewritten (the first, after drift was found, and after an error). */
  full: boolean;
  /** This sync began with the periodic check that the kernel still has our rules (its time is in buildMs). */
  checked?: boolean;
  /** Bytes of restore input written, build time and apply time. */
  bytes: number;
  buildMs: number;
  applyMs: number;
  services: number;
  error?: string;
}

export interface ServiceProxyOptions extends ProxyConfig {
  kube: KubeClient;
  /** The pods' subnet on this host (traffic from elsewhere to a VIP is masqueraded). */
  podCIDR?: string;
  bridgeNetfilter?: boolean;
  /** The pods' bridge device: its ports get hairpin mode (see ensureHairpin). */
  bridge?: string;
  log?: (msg: string) => void;
}

export class ServiceProxy {
  private readonly services: Informer;
  private readonly endpoints: Informer;
  private readonly prefix: string;
  private readonly log: (msg: string) => void;
  private applied?: Ruleset; // what the kernel holds (as far as we know); undefined: unknown
  private running?: Promise<void>;
  private dirty = false;
  private lastSyncAt = 0;
  private timer?: NodeJS.Timeout;
  private resyncTimer?: NodeJS.Timeout;
  private stopped = false;
  private started = false;
  private forceFull = false; // the next sync rewrites every chain (after an error)
  private verify = false;
  private appliedPorts?: PortInfo[]; // service ports as of the last applied sync (for UDP conntrack clean-up) // the next sync first checks the kernel still has what we applied (periodic)

  constructor(private readonly o: ServiceProxyOptions) {
    this.prefix = o.chainPrefix ?? 'SKIFF';
    if (!/^[A-Za-z][A-Za-z0-9]{0,9}$/.test(this.prefix)) throw new Error(`proxy chain prefix must be 1-10 letters or digits, got ${this.prefix}`);
    this.log = o.log ?? (() => {});
    this.services = Informer.shared(o.kube, '/api/v1/services', this.log, { changesOnly: true });
    this.endpoints = Informer.shared(o.kube, '/api/v1/endpoints', this.log, { changesOnly: true });
    const changed = () => this.schedule();
    this.services.on(changed);
    this.endpoints.on(changed);
  }

  /** Starts following the API; resolves once the first rule set is in place. */
  async start(): Promise<void> {
    await this.runIptables(['-w', '5', '-t', 'nat', '-S', 'PREROUTING', '1']); // fails early without iptables or root
    this.services.start();
    this.endpoints.start();
    await Promise.all([this.services.synced, this.endpoints.synced]);
    this.started = true;
    await this.syncNow(true);
    this.resyncTimer = setInterval(() => {
      this.verify = true;
      this.schedule();
    }, this.o.resyncMs ?? 60_000);
  }

  /** Stops following the API. The rules stay (and keep proxying) until cleanup(). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.resyncTimer);
    await Promise.all([this.services.stop(), this.endpoints.stop()]);
    await this.running?.catch(() => {});
  }

  /** Removes every chain and jump this proxy made (kube-proxy --cleanup). */
  async cleanup(): Promise<void> {
    await this.stop();
    await cleanupProxyRules(this.prefix, this.o.netns);
    this.applied = undefined;
  }

  /** The node information the rules depend on. */
  nodeInfo(): ProxyNodeInfo {
    return {
      prefix: this.prefix,
      podCIDR: this.o.podCIDR,
      bridgeNetfilter: this.o.bridgeNetfilter ?? bridgeNetfilterEnabled(),
      serviceCIDR: this.o.serviceCIDR,
      masqueradeMark: this.o.masqueradeMark,
    };
  }

  private schedule(full = false): void {
    if (full) this.forceFull = true;
    if (this.stopped || !this.started) return;
    this.dirty = true;
    if (this.running || this.timer) return; // the running sync re-checks dirty when it ends
    const wait = Math.max(0, this.lastSyncAt + (this.o.minSyncMs ?? 100) - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.syncNow(false);
    }, wait);
  }

  private async syncNow(first: boolean): Promise<void> {
    if (this.running) return this.running;
    this.running = (async () => {
      while (this.dirty || first) {
        first = false;
        this.dirty = false;
        this.lastSyncAt = Date.now();
        await this.syncOnce();
        if (this.stopped) break;
      }
    })().finally(() => (this.running = undefined));
    return this.running;
  }

  private async syncOnce(): Promise<void> {
    const t0 = performance.now();
    // The periodic check reads our chains back and rewrites everything only when they drifted (someone
    // flushed or deleted them): a full rewrite of 1,000 services takes about a second, and a change
    // arriving meanwhile would wait behind it.
    let full = this.forceFull || !this.applied;
    const checked = this.verify && !full;
    if (checked) full = !(await this.kernelMatches(this.applied!).catch(() => false));
    this.verify = false;
    this.forceFull = false;
    const result: SyncResult = { applied: false, full, checked, bytes: 0, buildMs: 0, applyMs: 0, services: this.services.items.size };
    let t1 = t0;
    try {
      const next = buildRuleset(this.services.items.values(), this.endpoints.items, this.nodeInfo());
      // A full sync compares with what the kernel has (every chain of ours rewritten, leftovers of an
      // earlier run or of removed services deleted); otherwise with what we applied last.
      const previous = full ? await this.existingChains() : this.applied!;
      const text = renderRestore(next, previous);
      if (this.o.bridge && !this.o.netns) ensureHairpin(this.o.bridge, this.log);
      t1 = performance.now();
      result.bytes = text.length;
      result.buildMs = t1 - t0;
      if (text) {
        await iptablesRestore(text, this.o.netns);
        result.applied = true;
      }
      this.applied = next;
      const ports = servicePorts(this.services.items.values(), this.endpoints.items);
      if (this.appliedPorts) await this.clearStaleUdp(staleUdpFlows(this.appliedPorts, ports));
      this.appliedPorts = ports;
      if (full) await this.ensureJumps();
    } catch (e) {
      this.applied = undefined; // state unknown: the next sync rewrites everything
      result.error = (e as Error).message;
      this.log(`service proxy: applying rules failed: ${result.error}`);
      if (!this.stopped) setTimeout(() => this.schedule(true), 1000).unref();
    }
    result.applyMs = performance.now() - t1;
    if (result.applyMs > 1000) this.log(`service proxy: applying ${result.bytes} bytes of rules took ${Math.round(result.applyMs)} ms`);
    this.o.onSync?.(result);
  }

  /** Deletes conntrack entries of UDP flows the new rules would otherwise never see (conntrack -D). */
  private async clearStaleUdp(deletions: string[][]): Promise<void> {
    for (const args of deletions) {
      // Exit status 1 means no entry matched: nothing was stale. A missing conntrack tool is said once.
      await runIn(this.o.netns, 'conntrack', args).catch((e: NodeJS.ErrnoException & { code?: unknown }) => {
        if (/ENOENT/.test(e.message) && !this.warnedConntrack) {
          this.warnedConntrack = true;
          this.log('service proxy: no conntrack tool: UDP flows to removed endpoints last until they time out');
        }
      });
    }
  }

  private warnedConntrack = false;

  /** Whether the kernel has our jumps, exactly our chains, and as many rules in each as we applied. */
  private async kernelMatches(applied: Ruleset): Promise<boolean> {
    for (const t of ['nat', 'filter'] as const) {
      const counts = new Map<string, number>();
      const lines = (await iptablesSave(t, this.o.netns)).split('\n');
      for (const line of lines) {
        const chain = /^:(\S+)/.exec(line)?.[1];
        if (chain?.startsWith(`${this.prefix}-`)) counts.set(chain, 0);
        const rule = /^-A (\S+) /.exec(line)?.[1];
        if (rule && counts.has(rule)) counts.set(rule, counts.get(rule)! + 1);
      }
      const want = applied[t];
      if (counts.size !== want.size) return false;
      for (const [chain, rules] of want) if (counts.get(chain) !== rules.length) return false;
      for (const [table, builtin, args] of jumpRules(this.prefix)) {
        if (table !== t) continue;
        const target = args[args.length - 1];
        if (!lines.some((l) => l.startsWith(`-A ${builtin} `) && l.endsWith(`-j ${target}`))) return false;
      }
    }
    return true;
  }

  /** Our chains as the kernel has them now, with rules marked unknown (so renderRestore rewrites them all). */
  private async existingChains(): Promise<Ruleset> {
    const found = await listChains(this.prefix, this.o.netns);
    const r: Ruleset = { nat: new Map(), filter: new Map() };
    for (const t of ['nat', 'filter'] as const) for (const c of found[t]) r[t].set(c, ['?']);
    return r;
  }

  /** Jumps from the built-in chains, inserted first, once each (checked with -C, as kube-proxy does). */
  private async ensureJumps(): Promise<void> {
    for (const [table, chain, args] of jumpRules(this.prefix)) {
      const present = await this.runIptables(['-w', '5', '-t', table, '-C', chain, ...args]).then(
        () => true,
        () => false,
      );
      if (!present) await this.runIptables(['-w', '5', '-t', table, '-I', chain, '1', ...args]);
    }
  }

  private runIptables(args: string[]): Promise<string> {
    return iptables(args, this.o.netns);
  }
}

/** Removes the jumps and chains of a proxy with this prefix, whether or not this process made them. */
export async function cleanupProxyRules(prefix = 'SKIFF', netns?: string): Promise<void> {
  for (const [table, chain, args] of jumpRules(prefix)) {
    // -D removes one copy; repeat until none is left (a crashed run may have left duplicates).
    for (let i = 0; i < 10; i++) {
      const ok = await iptables(['-w', '5', '-t', table, '-D', chain, ...args], netns).then(
        () => true,
        () => false,
      );
      if (!ok) break;
    }
  }
  const chains = await listChains(prefix, netns);
  const text = renderDeletion(chains);
  if (text) await iptablesRestore(text, netns);
}

/** Names of the chains with our prefix in the nat and filter tables. */
export async function listChains(prefix = 'SKIFF', netns?: string): Promise<Record<'nat' | 'filter', string[]>> {
  const out = { nat: [] as string[], filter: [] as string[] };
  for (const t of ['nat', 'filter'] as const) {
    const saved = await iptablesSave(t, netns);
    for (const line of saved.split('\n')) {
      const m = /^:(\S+)/.exec(line);
      if (m && m[1]!.startsWith(`${prefix}-`)) out[t].push(m[1]!);
    }
  }
  return out;
}

/**
 * With br_netfilter the DNAT happens while the frame is still being bridged, so a pod whose connection
 * to a VIP is DNATed to itself gets its frame sent back out of the port it came in on, which a bridge
 * port only does in hairpin mode (kubelet's --hairpin-mode=hairpin-veth). Docker leaves it off. New
 * pods' ports appear before their endpoints do, so doing this on every sync covers them.
 */
export function ensureHairpin(bridge: string, log: (msg: string) => void = () => {}): void {
  const dir = `/sys/class/net/${bridge}/brif`;
  let ports: string[];
  try {
    ports = readdirSync(dir);
  } catch {
    return; // no such bridge (yet): nothing to do
  }
  for (const port of ports) {
    const f = `${dir}/${port}/hairpin_mode`;
    try {
      if (readFileSync(f, 'utf8').trim() !== '1') writeFileSync(f, '1');
    } catch (e) {
      log(`service proxy: hairpin mode on ${port}: ${(e as Error).message}`);
    }
  }
}

export function bridgeNetfilterEnabled(): boolean {
  try {
    return readFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

/** Starts a proxy for the agent: the pod subnet and bridge come from the Docker network the pods join. */
export async function startServiceProxy(o: ServiceProxyOptions & { docker?: Docker; network?: string }): Promise<ServiceProxy> {
  let { podCIDR, bridge } = o;
  if (o.docker && o.network) {
    const net = await podNetwork(o.docker, o.network);
    podCIDR ??= net.subnet;
    bridge ??= net.bridge;
  }
  const p = new ServiceProxy({ ...o, podCIDR, bridge });
  await p.start();
  return p;
}
