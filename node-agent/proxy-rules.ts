// The Service proxy's rules, as kube-proxy's iptables mode writes them (pkg/proxy/iptables/proxier.go):
// a pure function from Services + Endpoints + a little node information to chains of iptables rules,
// and a renderer of those chains as iptables-restore input (the whole set, or only what changed since
// the last set applied). Nothing here runs a command, so all of it is unit-tested without a kernel.
//
// nat table:
//   PREROUTING, OUTPUT  → P-SERVICES: one rule per cluster IP:port (→ P-SVC-<hash>), then, last,
//                         local destinations (node addresses) → P-NODEPORTS
//   P-NODEPORTS         per node port: mark for masquerade, → P-SVC-<hash>
//   P-SVC-<hash>        per service port: mark for masquerade unless from a pod; ClientIP affinity
//                       (`recent` lists); then the equal random spread over ready endpoints
//   P-SEP-<hash>        per endpoint: hairpin masquerade, DNAT to ip:port
//   POSTROUTING         → P-POSTROUTING: MASQUERADE what P-MARK-MASQ marked
// filter table:
//   OUTPUT, FORWARD (new connections) → P-SERVICES: REJECT cluster IP:ports without ready endpoints
//   INPUT (new connections)           → P-EXTERNAL-SERVICES: REJECT node ports without ready endpoints
//   FORWARD                           → P-FORWARD: accept proxied (marked) and established traffic,
//                                        which Docker's FORWARD policy (DROP) would otherwise stop

import { createHash } from 'node:crypto';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { containsIPv4, parseIPv4CIDR } from '../lambdas/machinery/cidr.ts';

export interface ProxyNodeInfo {
  /** Chain name prefix (default SKIFF): SKIFF-SERVICES, SKIFF-SVC-<hash>... At most 10 characters. */
  prefix?: string;
  /** The pods' subnet on this node: traffic to a VIP from elsewhere (the host, other networks) is masqueraded. */
  podCIDR?: string;
  /**
   * Whether bridged traffic passes iptables (br_netfilter, bridge-nf-call-iptables=1). Without it a
   * backend's reply to a bridge neighbour skips the host's conntrack and never gets un-DNATed, so every
   * connection to a VIP is masqueraded.
   */
  bridgeNetfilter?: boolean;
  /** The Service CIDR: connections to an address in it that no rule proxies are rejected, not routed away. */
  serviceCIDR?: string;
  /** The fwmark bit that asks for masquerade (kube-proxy's 0x4000). */
  masqueradeMark?: number;
}

/** The rule set: table → chain → its rules (without the `-A CHAIN` head), chains in a stable order. */
export type Ruleset = Record<'nat' | 'filter', Map<string, string[]>>;

/** Jumps from the built-in chains into ours: [table, built-in chain, rule arguments]. */
export function jumpRules(prefix = 'SKIFF'): Array<[table: string, chain: string, args: string[]]> {
  const c = (s: string) => ['-m', 'comment', '--comment', s];
  const isNew = ['-m', 'conntrack', '--ctstate', 'NEW'];
  return [
    ['nat', 'PREROUTING', [...c('skiff service portals'), '-j', `${prefix}-SERVICES`]],
    ['nat', 'OUTPUT', [...c('skiff service portals'), '-j', `${prefix}-SERVICES`]],
    ['nat', 'POSTROUTING', [...c('skiff postrouting rules'), '-j', `${prefix}-POSTROUTING`]],
    ['filter', 'INPUT', [...isNew, ...c('skiff externally-visible service portals'), '-j', `${prefix}-EXTERNAL-SERVICES`]],
    ['filter', 'FORWARD', [...isNew, ...c('skiff service portals'), '-j', `${prefix}-SERVICES`]],
    ['filter', 'FORWARD', [...c('skiff forwarding rules'), '-j', `${prefix}-FORWARD`]],
    ['filter', 'OUTPUT', [...isNew, ...c('skiff service portals'), '-j', `${prefix}-SERVICES`]],
  ];
}

/** Chains every rule set has (the jumps point at them), per table. */
export function baseChains(prefix = 'SKIFF'): Record<'nat' | 'filter', string[]> {
  return {
    nat: [`${prefix}-SERVICES`, `${prefix}-NODEPORTS`, `${prefix}-POSTROUTING`, `${prefix}-MARK-MASQ`],
    filter: [`${prefix}-SERVICES`, `${prefix}-EXTERNAL-SERVICES`, `${prefix}-FORWARD`],
  };
}

/** One service port as the proxy sees it. */
export interface PortInfo {
  key: string; // namespace/name[:portname] (kube-proxy's ServicePortName)
  protocol: string; // tcp, udp, sctp
  clusterIP: string;
  port: number;
  nodePort?: number;
  affinitySeconds?: number;
  endpoints: string[]; // ready ip:port, sorted
}

/** Probabilities as kube-proxy prints them (1/n with 10 decimals), so the rules read the same. */
export const probability = (n: number): string => (1 / n).toFixed(10);

const MAX_CHAIN = 28; // iptables' chain name limit (XT_EXTENSION_MAXNAMELEN - 1)

function chainHash(prefix: string, kind: string, ...parts: string[]): string {
  const room = Math.min(16, MAX_CHAIN - `${prefix}-${kind}-`.length);
  return `${prefix}-${kind}-${createHash('sha256').update(parts.join('|')).digest('hex').slice(0, room).toUpperCase()}`;
}

/** Each proxied service port with its ready endpoints (headless and ExternalName services have none). */
export function servicePorts(services: Iterable<KubeObject>, endpoints: Map<string, KubeObject>): PortInfo[] {
  const out: PortInfo[] = [];
  for (const svc of services) {
    const spec = svc.spec ?? {};
    const ip: string | undefined = spec.clusterIP;
    if (spec.type === 'ExternalName' || !ip || ip === 'None' || !/^\d+\.\d+\.\d+\.\d+$/.test(ip)) continue;
    const ns = svc.metadata.namespace ?? 'default';
    const ep = endpoints.get(`${ns}/${svc.metadata.name}`);
    const affinity = spec.sessionAffinity === 'ClientIP' ? (spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10800) : undefined;
    const withNodePorts = spec.type === 'NodePort' || spec.type === 'LoadBalancer';
    for (const p of spec.ports ?? []) {
      const protocol = String(p.protocol ?? 'TCP').toLowerCase();
      const name = p.name ?? '';
      // The endpoints controller has already resolved targetPort (named or numeric) per pod; an
      // Endpoints port belongs to this service port when its name (and protocol) match.
      const eps = new Set<string>();
      for (const s of ep?.subsets ?? []) {
        const ePort = (s.ports ?? []).find((x: any) => (x.name ?? '') === name && String(x.protocol ?? 'TCP').toLowerCase() === protocol);
        if (!ePort) continue;
        for (const a of s.addresses ?? []) if (a?.ip) eps.add(`${a.ip}:${ePort.port}`);
      }
      out.push({
        key: `${ns}/${svc.metadata.name}${name ? `:${name}` : ''}`,
        protocol,
        clusterIP: ip,
        port: p.port,
        nodePort: withNodePorts && p.nodePort ? p.nodePort : undefined,
        affinitySeconds: affinity,
        endpoints: [...eps].sort(compareEndpoint),
      });
    }
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : 0));
}

function compareEndpoint(a: string, b: string): number {
  const n = (s: string) => s.split(/[.:]/).map(Number);
  const x = n(a);
  const y = n(b);
  for (let i = 0; i < 5; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
}

/** Services + Endpoints (by namespace/name) + node information → the complete rule set. */
export function buildRuleset(services: Iterable<KubeObject>, endpoints: Map<string, KubeObject>, node: ProxyNodeInfo = {}): Ruleset {
  const P = node.prefix ?? 'SKIFF';
  const mark = `0x${(node.masqueradeMark ?? 0x4000).toString(16)}`;
  const nat = new Map<string, string[]>();
  const filter = new Map<string, string[]>();
  const base = baseChains(P);
  for (const c of base.nat) nat.set(c, []);
  for (const c of base.filter) filter.set(c, []);
  const chain = (t: Map<string, string[]>, name: string) => {
    let rules = t.get(name);
    if (!rules) t.set(name, (rules = []));
    return rules;
  };
  const cm = (s: string) => `-m comment --comment "${s}"`;

  chain(nat, `${P}-MARK-MASQ`).push(`-j MARK --or-mark ${mark}`);
  chain(nat, `${P}-POSTROUTING`).push(
    `-m mark ! --mark ${mark}/${mark} -j RETURN`,
    // Clear the mark so a packet that is re-processed (e.g. looped through the bridge) is not SNATed twice.
    `-j MARK --xor-mark ${mark}`,
    `${cm('skiff service traffic requiring SNAT')} -j MASQUERADE --random-fully`,
  );
  chain(filter, `${P}-FORWARD`).push(
    `-m mark --mark ${mark}/${mark} ${cm('skiff forwarding rules')} -j ACCEPT`,
    `-m conntrack --ctstate RELATED,ESTABLISHED ${cm('skiff forwarding conntrack rule')} -j ACCEPT`,
  );

  const services_ = chain(nat, `${P}-SERVICES`);
  const nodeports = chain(nat, `${P}-NODEPORTS`);
  const rejects = chain(filter, `${P}-SERVICES`);
  const externalRejects = chain(filter, `${P}-EXTERNAL-SERVICES`);
  const masqAll = node.bridgeNetfilter === false || !node.podCIDR;
  const local = node.podCIDR ? parseIPv4CIDR(node.podCIDR) : undefined;

  for (const sp of servicePorts(services, endpoints)) {
    const proto = `-p ${sp.protocol} -m ${sp.protocol}`;
    const reject = sp.protocol === 'tcp' ? '-j REJECT --reject-with tcp-reset' : '-j REJECT --reject-with icmp-port-unreachable';
    if (!sp.endpoints.length) {
      rejects.push(`-d ${sp.clusterIP}/32 ${proto} --dport ${sp.port} ${cm(`${sp.key} has no endpoints`)} ${reject}`);
      if (sp.nodePort)
        externalRejects.push(`-m addrtype --dst-type LOCAL ${proto} --dport ${sp.nodePort} ${cm(`${sp.key} has no endpoints`)} ${reject}`);
      continue;
    }
    const svc = chainHash(P, 'SVC', sp.key, sp.protocol);
    services_.push(`-d ${sp.clusterIP}/32 ${proto} --dport ${sp.port} ${cm(`${sp.key} cluster IP`)} -j ${svc}`);
    if (sp.nodePort) {
      nodeports.push(`${proto} --dport ${sp.nodePort} ${cm(sp.key)} -j ${P}-MARK-MASQ`);
      nodeports.push(`${proto} --dport ${sp.nodePort} ${cm(sp.key)} -j ${svc}`);
    }
    const svcRules = chain(nat, svc);
    // Replies from the backend must come back through this host to be un-DNATed: true for pods on the
    // bridge (with br_netfilter), not for connections from elsewhere, which are SNATed. Connections
    // from this host itself are SNATed only towards endpoints on other nodes (below, per endpoint): a
    // local pod answers the host's address through the bridge, back through conntrack. (SNATing them
    // too, as kube-proxy does, reuses source ports against the backend's TIME_WAIT sockets, and PAWS
    // then drops SYNs: measured as 1 s stalls in bench:proxy.)
    if (masqAll) svcRules.push(`-d ${sp.clusterIP}/32 ${proto} --dport ${sp.port} ${cm(`${sp.key} cluster IP`)} -j ${P}-MARK-MASQ`);
    else
      svcRules.push(
        `! -s ${node.podCIDR} -d ${sp.clusterIP}/32 ${proto} --dport ${sp.port} -m addrtype ! --src-type LOCAL ${cm(`${sp.key} cluster IP`)} -j ${P}-MARK-MASQ`,
      );
    const seps = sp.endpoints.map((e) => chainHash(P, 'SEP', sp.key, sp.protocol, e));
    if (sp.affinitySeconds !== undefined) {
      sp.endpoints.forEach((e, i) =>
        svcRules.push(`${cm(`${sp.key} -> ${e}`)} -m recent --name ${seps[i]} --mask 255.255.255.255 --rsource --rcheck --seconds ${sp.affinitySeconds} --reap -j ${seps[i]}`),
      );
    }
    const n = sp.endpoints.length;
    sp.endpoints.forEach((e, i) => {
      // Equal spread: the i-th of n rules takes 1/(n-i) of what reaches it; the last takes the rest.
      const stat = i < n - 1 ? ` -m statistic --mode random --probability ${probability(n - i)}` : '';
      svcRules.push(`${cm(`${sp.key} -> ${e}`)}${stat} -j ${seps[i]}`);
    });
    sp.endpoints.forEach((e, i) => {
      const ip = e.slice(0, e.lastIndexOf(':'));
      const sep = chain(nat, seps[i]!);
      // Hairpin: a pod reaching itself through the VIP would answer itself directly; SNAT makes it answer the host.
      sep.push(`-s ${ip}/32 ${cm(sp.key)} -j ${P}-MARK-MASQ`);
      // The host's own connections to an endpoint elsewhere (not on this node's bridge) are SNATed.
      if (!masqAll && !(local && containsIPv4(local, ip))) sep.push(`-m addrtype --src-type LOCAL ${cm(sp.key)} -j ${P}-MARK-MASQ`);
      const recent = sp.affinitySeconds !== undefined ? ` -m recent --name ${seps[i]} --mask 255.255.255.255 --rsource --set` : '';
      sep.push(`${proto}${recent} ${cm(sp.key)} -j DNAT --to-destination ${e}`);
    });
  }

  // Node ports on any local address but loopback (DNAT from 127.0.0.1 would need route_localnet).
  services_.push(`${cm('skiff service nodeports; NOTE: this must be the last rule in this chain')} ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j ${P}-NODEPORTS`);
  // Whatever is addressed to a cluster IP and was not DNATed above (unknown IP or port) is refused here
  // rather than routed out of the host to a network that does not know the address.
  const clusterIPs = new Set<string>();
  for (const svc of services) {
    const ip = svc.spec?.clusterIP;
    if (svc.spec?.type !== 'ExternalName' && ip && /^\d+\.\d+\.\d+\.\d+$/.test(ip)) clusterIPs.add(ip);
  }
  for (const ip of [...clusterIPs].sort(compareEndpoint)) rejects.push(`-d ${ip}/32 ${cm('skiff cluster IP: port not served')} -j REJECT --reject-with icmp-port-unreachable`);
  if (node.serviceCIDR) rejects.push(`-d ${node.serviceCIDR} ${cm('skiff service CIDR: no such service')} -j REJECT --reject-with icmp-net-unreachable`);
  return { nat, filter };
}

/**
 * The rule set as iptables-restore --noflush input. With `previous` (what was applied last), only the
 * chains whose rules changed are written, and chains no longer wanted are flushed and deleted; a chain
 * declaration (`:NAME - [0:0]`) flushes it, so a written chain holds exactly its new rules. Empty when
 * nothing changed. The whole text is one transaction per table (COMMIT): all of it applies, or none.
 */
export function renderRestore(next: Ruleset, previous?: Ruleset): string {
  let out = '';
  for (const table of ['filter', 'nat'] as const) {
    const want = next[table];
    const had = previous?.[table];
    const changed = [...want].filter(([name, rules]) => !had || !sameRules(had.get(name), rules));
    const gone = had ? [...had.keys()].filter((name) => !want.has(name)) : [];
    if (!changed.length && !gone.length) continue;
    out += `*${table}\n`;
    for (const [name] of changed) out += `:${name} - [0:0]\n`;
    for (const name of gone) out += `:${name} - [0:0]\n`;
    for (const [name, rules] of changed) for (const r of rules) out += `-A ${name} ${r}\n`;
    for (const name of gone) out += `-X ${name}\n`;
    out += 'COMMIT\n';
  }
  return out;
}

function sameRules(a: string[] | undefined, b: string[]): boolean {
  return !!a && a.length === b.length && a.every((r, i) => r === b[i]);
}

/** Input that flushes and deletes the given chains (cleanup). */
export function renderDeletion(chains: Record<'nat' | 'filter', string[]>): string {
  let out = '';
  for (const table of ['filter', 'nat'] as const) {
    if (!chains[table].length) continue;
    out += `*${table}\n`;
    for (const c of chains[table]) out += `:${c} - [0:0]\n`;
    for (const c of chains[table]) out += `-X ${c}\n`;
    out += 'COMMIT\n';
  }
  return out;
}

/**
 * conntrack deletions a UDP change needs (kube-proxy does the same): a UDP "connection" is conntrack's
 * guess and lives on while packets keep coming, so a client would keep sending to a removed endpoint,
 * or keep its pre-rule entry to a VIP that just got its first endpoint. Returns conntrack argument lists.
 */
export function staleUdpFlows(before: PortInfo[], after: PortInfo[]): string[][] {
  const was = new Map(before.filter((p) => p.protocol === 'udp').map((p) => [`${p.clusterIP}:${p.port}`, p]));
  const out: string[][] = [];
  for (const p of after) {
    if (p.protocol !== 'udp') continue;
    const old = was.get(`${p.clusterIP}:${p.port}`);
    const oldEps = old?.endpoints ?? [];
    if (p.endpoints.length && !oldEps.length) out.push(['-D', '-p', 'udp', '--orig-dst', p.clusterIP, '--orig-port-dst', String(p.port)]);
    for (const e of oldEps) {
      if (p.endpoints.includes(e)) continue;
      const ip = e.slice(0, e.lastIndexOf(':'));
      out.push(['-D', '-p', 'udp', '--orig-dst', p.clusterIP, '--orig-port-dst', String(p.port), '--dst-nat', ip]);
    }
  }
  // A UDP service removed altogether: its flows to the endpoints it had.
  const now = new Set(after.map((p) => `${p.clusterIP}:${p.port}`));
  for (const [k, old] of was) {
    if (now.has(k)) continue;
    for (const e of old.endpoints) out.push(['-D', '-p', 'udp', '--orig-dst', old.clusterIP, '--orig-port-dst', String(old.port), '--dst-nat', e.slice(0, e.lastIndexOf(':'))]);
  }
  return out;
}
