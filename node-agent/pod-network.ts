// The node's half of the pod network: what a node's iptables must allow so that pods on different nodes
// reach each other by pod IP, unNATed (the Kubernetes network model), once routes carry each node's pod
// CIDR to it (the route controller: a VPC route table, or `ip route` on a local router).
//
// A Docker bridge network gets in the way twice:
// - Docker masquerades everything leaving the bridge (`POSTROUTING -s <subnet> ! -o <bridge> -j
//   MASQUERADE`), so a pod's connection to a pod on another node would arrive from the node's address.
//   The agent creates its pod network with masquerading off (runtime.ensureNetwork) and masquerades
//   itself, only what leaves the cluster's pod range (flannel's rule: `-s podCIDR ! -d clusterCIDR`).
// - Docker's FORWARD policy is DROP and its rules accept only replies and published ports towards a
//   container, so a new connection from another node's pod to a pod here is dropped. The agent accepts
//   forwarded traffic to its pods, and from its pods to the cluster's pod range.
// Both live in chains of the agent's own, one pair per pod CIDR (<prefix>-FWD-<hash> in filter,
// <prefix>-NAT-<hash> in nat; agents of different networks in one namespace keep out of each other's),
// rewritten whole at every start (iptables-restore --noflush touches only them) and jumped to once each
// from the built-in chains, appended after Docker's own rules so Docker's isolation between its other
// networks still applies first. Like the service proxy's, the rules outlive the agent (traffic keeps
// flowing while it restarts) and are removed by cleanup.
//
// The agent does this only when told the cluster's pod range: a node alone keeps Docker's defaults.
// A pod network that already exists keeps the masquerading it was created with: pods still reach each
// other and everything else, but a pod on another node sees this node's address (recreate the network,
// with no pods on it, to get pod IPs end to end). Nothing here requires recreating it.

import { createHash } from 'node:crypto';
import { iptables, iptablesRestore, iptablesSave } from './iptables.ts';

export interface PodNetworkRulesOptions {
  /** This node's pod subnet (its Docker network's, the Node's spec.podCIDR). */
  podCIDR: string;
  /** The cluster's pod range (every node's pod CIDR is inside it): traffic from pods to it is not masqueraded. */
  clusterCIDR: string;
  /** Chain prefix (default SKIFFNET; not the service proxy's, whose full syncs own `<its prefix>-*`). */
  chainPrefix?: string;
  /** Network namespace of the node's bridges when not this process's (see iptables.ts). */
  netns?: string;
}

export const DEFAULT_POD_NETWORK_PREFIX = 'SKIFFNET';

/** The rules, as `-A` lines without the chain: a pure function, for the unit tests and for apply. */
export function podNetworkRules(o: PodNetworkRulesOptions): { filter: string[]; nat: string[] } {
  const cluster = o.clusterCIDR;
  const c = (s: string) => `-m comment --comment "${s}"`;
  return {
    filter: [
      `-d ${o.podCIDR} ${c('skiff: to pods of this node')} -j ACCEPT`,
      `-s ${o.podCIDR} -d ${cluster} ${c('skiff: pods of this node to pods')} -j ACCEPT`,
    ],
    nat: [
      `! -s ${o.podCIDR} -j RETURN`,
      `-d ${o.podCIDR} ${c('skiff: pod to pod on this node, not NATed')} -j RETURN`,
      ...(cluster !== o.podCIDR ? [`-d ${cluster} ${c('skiff: pod to pod across nodes, not NATed')} -j RETURN`] : []),
      `${c('skiff: pods to outside the cluster pod range')} -j MASQUERADE`,
    ],
  };
}

/** Our chains for one pod CIDR, per table. */
export function podNetworkChains(podCIDR: string, prefix = DEFAULT_POD_NETWORK_PREFIX): { filter: string; nat: string } {
  const h = createHash('sha256').update(podCIDR).digest('hex').slice(0, 8).toUpperCase();
  return { filter: `${prefix}-FWD-${h}`, nat: `${prefix}-NAT-${h}` };
}

/** [table, built-in chain, rule arguments] of the jumps into our chains. */
export function podNetworkJumps(podCIDR: string, prefix = DEFAULT_POD_NETWORK_PREFIX): Array<[string, string, string[]]> {
  const chain = podNetworkChains(podCIDR, prefix);
  const c = ['-m', 'comment', '--comment', `skiff pod network ${podCIDR}`];
  return [
    ['filter', 'FORWARD', [...c, '-j', chain.filter]],
    ['nat', 'POSTROUTING', [...c, '-j', chain.nat]],
  ];
}

function checkPrefix(prefix: string): void {
  if (!/^[A-Za-z][A-Za-z0-9]{0,14}$/.test(prefix)) throw new Error(`pod network chain prefix must be 1-15 letters or digits, got ${prefix}`);
  // The service proxy's full sync owns every `<its prefix>-` chain: ours must not start like that.
  if (prefix === 'SKIFF') throw new Error('pod network chain prefix must differ from the service proxy\'s (SKIFF)');
}

/** Writes our chains (whole) and makes sure each jump exists once. Idempotent. */
export async function ensurePodNetworkRules(o: PodNetworkRulesOptions): Promise<void> {
  const prefix = o.chainPrefix ?? DEFAULT_POD_NETWORK_PREFIX;
  checkPrefix(prefix);
  const rules = podNetworkRules(o);
  const chain = podNetworkChains(o.podCIDR, prefix);
  // `:CHAIN - [0:0]` creates the chain or flushes it; the rules follow; one transaction per table.
  let text = '';
  for (const t of ['filter', 'nat'] as const) {
    text += `*${t}\n:${chain[t]} - [0:0]\n${rules[t].map((r) => `-A ${chain[t]} ${r}\n`).join('')}COMMIT\n`;
  }
  await iptablesRestore(text, o.netns);
  for (const [table, builtin, args] of podNetworkJumps(o.podCIDR, prefix)) {
    const present = await iptables(['-w', '5', '-t', table, '-C', builtin, ...args], o.netns).then(
      () => true,
      () => false,
    );
    if (!present) await iptables(['-w', '5', '-t', table, '-A', builtin, ...args], o.netns);
  }
}

/** Removes the jumps and our chains (whatever their rules); nothing there is not an error. */
export async function cleanupPodNetworkRules(o: { podCIDR: string; chainPrefix?: string; netns?: string }): Promise<void> {
  const prefix = o.chainPrefix ?? DEFAULT_POD_NETWORK_PREFIX;
  checkPrefix(prefix);
  const chains = podNetworkChains(o.podCIDR, prefix);
  for (const [table, builtin, args] of podNetworkJumps(o.podCIDR, prefix)) {
    for (let i = 0; i < 10; i++) {
      const ok = await iptables(['-w', '5', '-t', table, '-D', builtin, ...args], o.netns).then(
        () => true,
        () => false,
      );
      if (!ok) break;
    }
  }
  for (const [table, chain] of [['filter', chains.filter], ['nat', chains.nat]] as const) {
    const saved = await iptablesSave(table, o.netns);
    if (saved.split('\n').some((l) => l.startsWith(`:${chain} `))) await iptablesRestore(`*${table}\n-F ${chain}\n-X ${chain}\nCOMMIT\n`, o.netns);
  }
}
