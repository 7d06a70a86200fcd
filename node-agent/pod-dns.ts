// A pod's resolver configuration, as kubelet's dns.Configurer.GetPodDNS computes it, and the resolv.conf
// the agent writes for it. The file is bind-mounted at /etc/resolv.conf in the pod's containers, as
// containerd's CRI does: on a user-defined Docker network the engine would otherwise point every
// container at its embedded resolver (127.0.0.11), which also answers the engine's container names.
//   ClusterFirst (default)     the node's cluster DNS, search <ns>.svc.<domain> svc.<domain> <domain> (+ the
//                              node's searches), options ndots:5; hostNetwork pods get Default instead
//   ClusterFirstWithHostNet    ClusterFirst, even with hostNetwork
//   Default                    the node's resolv.conf (without loopback servers, unreachable from a pod)
//   None                       only dnsConfig
// dnsConfig is then appended for every policy: servers and searches without duplicates, options merged
// by name (the pod's win); at most 3 nameservers and 32 search domains, as kubelet trims them.

import net from 'node:net';
import type { KubeObject } from '../lambdas/machinery/types.ts';

export interface DnsConfig {
  servers: string[];
  searches: string[];
  options: string[];
}

const MAX_NAMESERVERS = 3;
const MAX_SEARCHES = 32;
const MAX_SEARCH_CHARS = 2048;

/** nameserver, search (or domain) and options of a resolv.conf. */
export function parseResolvConf(text: string): DnsConfig {
  const out: DnsConfig = { servers: [], searches: [], options: [] };
  for (const line of text.split('\n')) {
    const [key, ...words] = line.replace(/[#;].*$/, '').trim().split(/\s+/);
    if (key === 'nameserver' && words[0]) out.servers.push(words[0]);
    else if (key === 'search' || key === 'domain') out.searches = words; // the last one wins, as in libc
    else if (key === 'options') out.options.push(...words);
  }
  return out;
}

export function resolvConfText(c: DnsConfig): string {
  return [
    ...(c.searches.length ? [`search ${c.searches.join(' ')}`] : []),
    ...c.servers.map((s) => `nameserver ${s}`),
    ...(c.options.length ? [`options ${c.options.join(' ')}`] : []),
  ].join('\n') + '\n';
}

const unique = (xs: string[]) => [...new Set(xs)];

/** kubelet's mergeDNSOptions: one entry per option name, the later value winning. */
function mergeOptions(base: string[], extra: string[]): string[] {
  const m = new Map<string, string>();
  for (const o of [...base, ...extra]) {
    const i = o.indexOf(':');
    m.set(i < 0 ? o : o.slice(0, i), o);
  }
  return [...m.values()];
}

/**
 * The pod's resolver configuration; undefined means the engine's own (Default policy, nothing to add).
 * `cluster`: the node's cluster DNS (servers, extra searches, extra options), undefined when the node has
 * none (then ClusterFirst falls back to Default, as kubelet does). `hostResolvConf`: the node's file.
 */
export function podDnsConfig(pod: KubeObject, cluster: DnsConfig | undefined, hostResolvConf: () => string, domain = 'cluster.local'): DnsConfig | undefined {
  const spec = pod.spec ?? {};
  const policy: string = spec.dnsPolicy ?? 'ClusterFirst';
  const extra = spec.dnsConfig as { nameservers?: string[]; searches?: string[]; options?: { name: string; value?: string }[] } | undefined;
  let base: DnsConfig;
  if (policy === 'None') {
    base = { servers: [], searches: [], options: [] };
  } else if (cluster && (policy === 'ClusterFirstWithHostNet' || (policy === 'ClusterFirst' && !spec.hostNetwork))) {
    const ns = pod.metadata.namespace;
    base = {
      servers: [...cluster.servers],
      searches: unique([`${ns}.svc.${domain}`, `svc.${domain}`, domain, ...cluster.searches]),
      options: mergeOptions(['ndots:5'], cluster.options),
    };
  } else {
    if (!extra) return undefined; // Default, nothing to merge: the engine copies the host's configuration
    const host = parseResolvConf(hostResolvConf());
    base = { ...host, servers: spec.hostNetwork ? host.servers : host.servers.filter((s) => !isLoopback(s)) };
  }
  const merged: DnsConfig = {
    servers: unique([...base.servers, ...(extra?.nameservers ?? [])]).slice(0, MAX_NAMESERVERS),
    searches: unique([...base.searches, ...(extra?.searches ?? [])]),
    options: mergeOptions(base.options, (extra?.options ?? []).map((o) => (o.value !== undefined && o.value !== null ? `${o.name}:${o.value}` : o.name))),
  };
  // kubelet's formDNSSearchFitsLimits: drop domains past the count or length limit.
  const searches: string[] = [];
  for (const s of merged.searches) {
    if (searches.length >= MAX_SEARCHES || [...searches, s].join(' ').length > MAX_SEARCH_CHARS) break;
    searches.push(s);
  }
  return { ...merged, searches };
}

function isLoopback(ip: string): boolean {
  return (net.isIPv4(ip) && ip.startsWith('127.')) || ip === '::1';
}
