// The cluster's DNS names, as CoreDNS's kubernetes plugin serves them (the Kubernetes DNS specification,
// github.com/kubernetes/dns/blob/master/docs/specification.md), computed from Services and Endpoints:
//   <svc>.<ns>.svc.<domain>            A/AAAA → the cluster IPs; headless → every ready endpoint address;
//                                      ExternalName → CNAME to the external name
//   <host>.<svc>.<ns>.svc.<domain>     A for each ready address of a headless Service (host: the address's
//                                      hostname, else its IP with dashes, as CoreDNS names it)
//   _<port>._<proto>.<svc>.<ns>.svc…  SRV for named ports (target: the Service, or each endpoint of a
//                                      headless one); the bare Service name answers SRV for every port
//   a-b-c-d.<ns>.pod.<domain>          A a.b.c.d (CoreDNS's `pods insecure`, what kubeadm and k3s configure)
//   PTR for cluster IPs and headless endpoint addresses.
// Pure: the server (dns.ts) feeds it the informers' objects and turns its answers into packets.

import net from 'node:net';
import type { KubeObject } from '../lambdas/machinery/types.ts';

export type ZoneRecord =
  | { type: 'A' | 'AAAA' | 'CNAME' | 'PTR' | 'NS'; name: string; data: string }
  | { type: 'SRV'; name: string; data: { priority: number; weight: number; port: number; target: string } };

export interface ZoneAnswer {
  rcode: 'NOERROR' | 'NXDOMAIN';
  answers: ZoneRecord[];
  /** Address records of SRV targets (the additional section). */
  additionals: ZoneRecord[];
  /** The end of a CNAME chain that leaves the zone: the server resolves it upstream, as CoreDNS does. */
  chase?: string;
}

const norm = (name: string) => name.toLowerCase().replace(/\.$/, '');
const dashed = (ip: string) => ip.replace(/[.:]/g, '-');

/** `1.2.3.4` → `4.3.2.1.in-addr.arpa` (IPv6: nibbles under ip6.arpa). */
export function reverseName(ip: string): string | undefined {
  if (net.isIPv4(ip)) return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
  if (!net.isIPv6(ip)) return undefined;
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return `${groups.map((g) => g.padStart(4, '0')).join('').split('').reverse().join('.')}.ip6.arpa`;
}

export class ClusterZone {
  readonly domain: string;
  private records = new Map<string, ZoneRecord[]>();
  /** Names with no records of their own but with names below them (empty non-terminals): NODATA, not NXDOMAIN. */
  private interior = new Set<string>();
  private readonly podRe: RegExp;

  /** `nameserver`: the address `ns.dns.<domain>` (the NS of the apex) resolves to. */
  constructor(domain = 'cluster.local', private readonly nameserver?: string) {
    this.domain = norm(domain);
    this.podRe = new RegExp(`^(\\d{1,3})-(\\d{1,3})-(\\d{1,3})-(\\d{1,3})\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?\\.pod\\.${this.domain.replace(/\./g, '\\.')}$`);
    this.rebuild([], []);
  }

  /** Whether `name` is inside the cluster domain (answered here, never forwarded). */
  inDomain(name: string): boolean {
    const n = norm(name);
    return n === this.domain || n.endsWith(`.${this.domain}`);
  }

  /** Whether this zone answers `name`: the cluster domain, and reverse names of addresses it knows. */
  owns(name: string): boolean {
    return this.inDomain(name) || this.records.has(norm(name));
  }

  soa(serial: number): { name: string; data: { mname: string; rname: string; serial: number; refresh: number; retry: number; expire: number; minimum: number } } {
    // CoreDNS's SOA for the zone; `minimum` is set from the TTL by the server (negative-caching time).
    return { name: this.domain, data: { mname: `ns.dns.${this.domain}`, rname: `hostmaster.${this.domain}`, serial, refresh: 7200, retry: 1800, expire: 86400, minimum: 0 } };
  }

  /** Replaces the zone's contents with the names these Services and Endpoints make. */
  rebuild(services: Iterable<KubeObject>, endpoints: Iterable<KubeObject>): void {
    const records = new Map<string, ZoneRecord[]>();
    const interior = new Set<string>([`svc.${this.domain}`, `pod.${this.domain}`]);
    const add = (r: ZoneRecord) => {
      r = { ...r, name: norm(r.name), data: typeof r.data === 'object' ? { ...r.data } : r.data } as ZoneRecord;
      const list = records.get(r.name) ?? [];
      const same = (o: ZoneRecord) => o.type === r.type && JSON.stringify(o.data) === JSON.stringify(r.data);
      if (!list.some(same)) list.push(r);
      records.set(r.name, list);
      if (!this.inDomain(r.name)) return;
      for (let n = r.name; n !== this.domain && n.includes('.'); ) interior.add((n = n.slice(n.indexOf('.') + 1)));
    };
    const addAddress = (name: string, ip: string) => {
      if (net.isIP(ip)) add({ type: net.isIPv6(ip) ? 'AAAA' : 'A', name, data: ip });
    };
    const addPtr = (ip: string, target: string) => {
      const rev = reverseName(ip);
      if (rev) add({ type: 'PTR', name: rev, data: target });
    };
    const byKey = new Map<string, KubeObject>();
    for (const ep of endpoints) byKey.set(`${ep.metadata.namespace}/${ep.metadata.name}`, ep);
    if (this.nameserver) addAddress(`ns.dns.${this.domain}`, this.nameserver);

    for (const svc of services) {
      const ns = svc.metadata.namespace!;
      const base = `${svc.metadata.name}.${ns}.svc.${this.domain}`;
      const spec = svc.spec ?? {};
      const ports: any[] = spec.ports ?? [];
      const srv = (port: { name?: string; protocol?: string }, number: number, target: string) => {
        const rec = { priority: 0, weight: 100, port: number, target };
        add({ type: 'SRV', name: base, data: rec });
        if (port.name) add({ type: 'SRV', name: `_${port.name}._${(port.protocol ?? 'TCP').toLowerCase()}.${base}`, data: rec });
      };
      if (spec.type === 'ExternalName') {
        if (!spec.externalName) continue;
        add({ type: 'CNAME', name: base, data: norm(spec.externalName) });
        for (const p of ports) srv(p, p.port, norm(spec.externalName));
        continue;
      }
      if (spec.clusterIP && spec.clusterIP !== 'None') {
        for (const ip of spec.clusterIPs ?? [spec.clusterIP]) {
          addAddress(base, ip);
          addPtr(ip, base);
        }
        for (const p of ports) srv(p, p.port, base);
        continue;
      }
      // Headless: the endpoints themselves (ready addresses only; publishNotReadyAddresses puts the others
      // there already, in the endpoints controller).
      for (const subset of byKey.get(`${ns}/${svc.metadata.name}`)?.subsets ?? []) {
        for (const a of subset.addresses ?? []) {
          if (!net.isIP(a.ip)) continue;
          const host = `${a.hostname || dashed(a.ip)}.${base}`;
          addAddress(base, a.ip);
          addAddress(host, a.ip);
          addPtr(a.ip, host);
          for (const p of subset.ports ?? []) srv(p, p.port, host);
        }
      }
    }
    // SRV weights as CoreDNS computes them: the records of one name share 100.
    for (const list of records.values()) {
      const srvs = list.filter((r) => r.type === 'SRV');
      for (const r of srvs) (r.data as { weight: number }).weight = Math.floor(100 / srvs.length);
    }
    this.records = records;
    this.interior = interior;
  }

  /** The answer for one question, or undefined when the name is not this zone's (forward it). */
  lookup(name: string, type: string): ZoneAnswer | undefined {
    const n = norm(name);
    if (!this.owns(n)) return undefined;
    const out: ZoneAnswer = { rcode: 'NOERROR', answers: [], additionals: [] };
    const pod = this.podRe.exec(n);
    if (pod) {
      const octets = pod.slice(1, 5).map(Number);
      if (octets.some((o) => o > 255)) return { ...out, rcode: 'NXDOMAIN' };
      if (type === 'A' || type === 'ANY') out.answers.push({ type: 'A', name: n, data: octets.join('.') });
      return out;
    }
    let cur = n;
    for (let hops = 0; hops < 8; hops++) {
      const recs = this.records.get(cur);
      if (!recs) {
        if (hops > 0) return out; // a CNAME to a name of the zone that has gone: the chain ends there
        if (n === this.domain) {
          if (type === 'NS' && this.nameserver) out.answers.push({ type: 'NS', name: n, data: `ns.dns.${this.domain}` });
          return out; // SOA is added by the server (it also goes in the authority section)
        }
        return this.interior.has(n) ? out : { ...out, rcode: 'NXDOMAIN' };
      }
      const cname = recs.find((r) => r.type === 'CNAME');
      if (cname && type !== 'CNAME') {
        out.answers.push(cname);
        cur = cname.data as string;
        if (!this.owns(cur)) return { ...out, chase: cur };
        continue;
      }
      const hits = recs.filter((r) => r.type === type || type === 'ANY');
      out.answers.push(...hits);
      for (const r of hits) {
        if (r.type !== 'SRV') continue;
        for (const t of this.records.get(r.data.target) ?? []) if (t.type === 'A' || t.type === 'AAAA') out.additionals.push(t);
      }
      return out;
    }
    return out;
  }
}
