// The node's DNS server (node-agent/dns.ts) against a real cluster: Services and Endpoints created through
// the API, questions asked with real packets over UDP and TCP (dns-packet, and Node's c-ares resolver),
// names outside the cluster forwarded to an upstream resolver started here. Then end to end: an agent on
// Docker, the DNS server on the pod network's gateway, and nslookup inside a busybox pod.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import net from 'node:net';
import { Resolver } from 'node:dns/promises';
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, Question } from 'dns-packet';
import type Docker from 'dockerode';
import { LABELS } from '../node-agent/runtime.ts';
import { KubeClient } from '../node-agent/kube-client.ts';
import { networkGateway, startNodeDns, type NodeDns } from '../node-agent/dns.ts';
import { reverseName } from '../node-agent/dns-zone.ts';
import { podDnsConfig, resolvConfText, parseResolvConf } from '../node-agent/pod-dns.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { execInContainer, requireDocker, TEST_IMAGE } from './support/docker.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { until } from './support/until.ts';


let nextId = 1;
/** One question, one raw answer (undefined when nothing comes back within `ms`). */
function exchangeUdp(port: number, msg: Buffer, ms = 2000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const t = setTimeout(() => (s.close(), resolve(undefined)), ms);
    s.on('message', (m) => (clearTimeout(t), s.close(), resolve(m)));
    s.send(msg, port, '127.0.0.1');
  });
}
function exchangeTcp(port: number, msg: Buffer, ms = 2000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const t = setTimeout(() => (s.destroy(), resolve(undefined)), ms);
    s.on('connect', () => s.write(Buffer.concat([Buffer.from([msg.length >> 8, msg.length & 0xff]), msg])));
    s.on('data', (c) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) (clearTimeout(t), s.destroy(), resolve(buf.subarray(2, 2 + buf.readUInt16BE(0))));
    });
    s.on('error', () => (clearTimeout(t), resolve(undefined)));
  });
}
async function ask(port: number, name: string, type: Question['type'], opts: { tcp?: boolean; edns?: number } = {}): Promise<DecodedPacket & { rcode?: string }> {
  const q = dnsPacket.encode({
    type: 'query',
    id: nextId++,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name, class: 'IN' }],
    additionals: opts.edns ? [{ type: 'OPT', name: '.', udpPayloadSize: opts.edns, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] } as Answer] : [],
  });
  const raw = await (opts.tcp ? exchangeTcp : exchangeUdp)(port, q);
  if (!raw) throw new Error(`no answer to ${type} ${name}`);
  return dnsPacket.decode(raw) as DecodedPacket & { rcode?: string };
}
const data = (p: DecodedPacket, type: string) => (p.answers ?? []).filter((a) => a.type === type).map((a) => (a as { data: unknown }).data);

/** A tiny upstream resolver on UDP and TCP: `*.example.test` A 192.0.2.7, anything else NXDOMAIN. */
async function startUpstream(): Promise<{ port: number; asked: string[]; close(): void }> {
  const asked: string[] = [];
  const answer = (m: Buffer, transport: string) => {
    const q = dnsPacket.decode(m);
    const question = q.questions![0]!;
    asked.push(`${transport} ${question.type} ${question.name}`);
    const known = /(^|\.)example\.test$/.test(question.name);
    const answers: Answer[] = known && question.type === 'A' ? [{ type: 'A', name: question.name, class: 'IN', ttl: 60, data: '192.0.2.7' }] : [];
    return dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.RECURSION_AVAILABLE | (known ? 0 : 3), questions: q.questions, answers });
  };
  // UDP and TCP on one port number: the UDP port is the system's pick, and TCP may find it taken (another
  // test's connection), so a taken pair is given up and another one tried.
  for (let attempt = 0; ; attempt++) {
    const s = dgram.createSocket('udp4');
    s.on('message', (m, r) => {
      try {
        s.send(answer(m, 'udp'), r.port, r.address);
      } catch {
        // garbage forwarded by the malformed-packet test: no answer
      }
    });
    await new Promise<void>((ok) => s.bind(0, '127.0.0.1', ok));
    const t = net.createServer((sock) => {
      let buf = Buffer.alloc(0);
      sock.on('data', (c) => {
        buf = Buffer.concat([buf, c]);
        if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
        const out = answer(buf.subarray(2, 2 + buf.readUInt16BE(0)), 'tcp');
        sock.end(Buffer.concat([Buffer.from([out.length >> 8, out.length & 0xff]), out]));
      });
      sock.on('error', () => {});
    });
    const listening = await new Promise<boolean>((ok) => {
      t.once('error', () => ok(false));
      t.listen(s.address().port, '127.0.0.1', () => ok(true));
    });
    if (listening) return { port: s.address().port, asked, close: () => (s.close(), t.close()) };
    s.close();
    if (attempt >= 20) throw new Error('no port free for both UDP and TCP');
  }
}

const docker = await requireDocker();

describe("a pod's resolv.conf (kubelet's dnsPolicy and dnsConfig rules)", () => {
  const cluster = { servers: ['172.20.0.1'], searches: [], options: [] };
  const host = () => 'nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0\n';
  const pod = (spec: Record<string, unknown>) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'shop' }, spec }) as KubeObject;

  it('ClusterFirst: the cluster DNS only, the cluster search path, ndots:5', () => {
    const cfg = podDnsConfig(pod({}), cluster, host)!;
    expect(resolvConfText(cfg)).toBe('search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 172.20.0.1\noptions ndots:5\n');
    expect(parseResolvConf(resolvConfText(cfg))).toEqual(cfg);
  });

  it('hostNetwork: ClusterFirst falls back to Default, ClusterFirstWithHostNet keeps the cluster DNS', () => {
    expect(podDnsConfig(pod({ hostNetwork: true }), cluster, host)).toBeUndefined();
    expect(podDnsConfig(pod({ hostNetwork: true, dnsPolicy: 'ClusterFirstWithHostNet' }), cluster, host)!.servers).toEqual(['172.20.0.1']);
    // Without a cluster DNS on the node, ClusterFirst is Default too.
    expect(podDnsConfig(pod({}), undefined, host)).toBeUndefined();
  });

  it('dnsConfig is merged for every policy: no duplicates, options by name (the pod wins), at most 3 nameservers', () => {
    const dnsConfig = { nameservers: ['172.20.0.1', '1.1.1.1', '8.8.8.8', '9.9.9.9'], searches: ['svc.cluster.local', 'extra.example'], options: [{ name: 'ndots', value: '2' }, { name: 'rotate' }] };
    expect(podDnsConfig(pod({ dnsConfig }), cluster, host)).toEqual({
      servers: ['172.20.0.1', '1.1.1.1', '8.8.8.8'],
      searches: ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local', 'extra.example'],
      options: ['ndots:2', 'rotate'],
    });
    // None: dnsConfig alone.
    expect(podDnsConfig(pod({ dnsPolicy: 'None', dnsConfig: { nameservers: ['10.9.9.9'], searches: ['a.example'] } }), cluster, host)).toEqual({
      servers: ['10.9.9.9'],
      searches: ['a.example'],
      options: [],
    });
    // Default with dnsConfig: the node's file (minus loopback servers a pod cannot reach) plus dnsConfig.
    expect(podDnsConfig(pod({ dnsPolicy: 'Default', dnsConfig: { searches: ['b.example'] } }), cluster, host)).toEqual({
      servers: ['10.0.0.2'],
      searches: ['corp.example', 'b.example'],
      options: ['edns0'],
    });
    expect(podDnsConfig(pod({ dnsPolicy: 'Default' }), cluster, host)).toBeUndefined();
  });

  it('keeps at most 32 search domains', () => {
    const searches = Array.from({ length: 40 }, (_, i) => `s${i}.example`);
    expect(podDnsConfig(pod({ dnsPolicy: 'None', dnsConfig: { searches } }), cluster, host)!.searches).toEqual(searches.slice(0, 32));
  });
});

describe('node DNS server (cluster names from Services and Endpoints; forwarding)', () => {
  let c: TestCluster;
  let kube: KubeClient;
  let dns: NodeDns;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let webIP: string;
  const svcs = '/api/v1/namespaces/default/services';

  beforeAll(async () => {
    c = await startTestCluster();
    kube = new KubeClient({ server: c.url, caCert: c.caCert, token: c.token });
    upstream = await startUpstream();
    await kube.create('/api/v1/namespaces', { metadata: { name: 'shop' } });
    const web = await kube.create(svcs, {
      metadata: { name: 'web' },
      spec: { ports: [{ name: 'http', port: 80, targetPort: 8080 }, { name: 'dns', port: 53, protocol: 'UDP' }] },
    });
    webIP = web.spec.clusterIP;
    await kube.create('/api/v1/namespaces/shop/services', { metadata: { name: 'db' }, spec: { clusterIP: 'None', ports: [{ name: 'pg', port: 5432 }] } });
    await kube.create('/api/v1/namespaces/shop/endpoints', {
      metadata: { name: 'db' },
      subsets: [
        {
          addresses: [{ ip: '10.244.0.11', hostname: 'db-0' }, { ip: '10.244.0.12', hostname: 'db-1' }, { ip: '10.244.0.13' }],
          notReadyAddresses: [{ ip: '10.244.0.99', hostname: 'db-9' }],
          ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }],
        },
      ],
    });
    await kube.create(svcs, { metadata: { name: 'ext' }, spec: { type: 'ExternalName', externalName: 'api.example.test' } });
    dns = await startNodeDns({ kube, host: '127.0.0.1', port: 0, upstream: [`127.0.0.1:${upstream.port}`], forwardTimeoutMs: 500, log: () => {} });
    await dns.synced;
  }, 60_000);
  afterAll(async () => {
    await dns?.close();
    upstream?.close();
    kube?.close();
    await c?.destroy();
  });

  it('answers a ClusterIP Service with its cluster IP (A, UDP and TCP), authoritatively, TTL 5', async () => {
    for (const tcp of [false, true]) {
      const r = await ask(dns.port, 'web.default.svc.cluster.local', 'A', { tcp });
      expect(r.rcode).toBe('NOERROR');
      expect(r.flag_aa).toBe(true);
      expect(r.flag_ra).toBe(true);
      expect(data(r, 'A')).toEqual([webIP]);
      expect((r.answers![0] as { ttl?: number }).ttl).toBe(5);
    }
    // Case as asked (0x20), and the stock c-ares resolver agrees.
    const mixed = await ask(dns.port, 'Web.Default.SVC.cluster.local', 'A');
    expect(mixed.answers![0]!.name).toBe('Web.Default.SVC.cluster.local');
    expect(data(mixed, 'A')).toEqual([webIP]);
    const resolver = new Resolver();
    resolver.setServers([`127.0.0.1:${dns.port}`]);
    expect(await resolver.resolve4('web.default.svc.cluster.local')).toEqual([webIP]);
    // The reverse name of the cluster IP.
    const ptr = await ask(dns.port, reverseName(webIP)!, 'PTR');
    expect(data(ptr, 'PTR')).toEqual(['web.default.svc.cluster.local']);
  });

  it('answers AAAA of an existing name with NOERROR and no records, SOA in authority', async () => {
    const r = await ask(dns.port, 'web.default.svc.cluster.local', 'AAAA');
    expect(r.rcode).toBe('NOERROR');
    expect(r.answers).toEqual([]);
    expect(r.authorities![0]!.type).toBe('SOA');
    expect((r.authorities![0] as { name: string }).name).toBe('cluster.local');
    // Types it has no records of (HTTPS, type 65, as browsers ask): NODATA too.
    const https = await ask(dns.port, 'web.default.svc.cluster.local', 'UNKNOWN_65' as Question['type']);
    expect([https.rcode, https.answers!.length, https.authorities![0]!.type]).toEqual(['NOERROR', 0, 'SOA']);
    // Empty non-terminals are names too: NODATA, not NXDOMAIN.
    expect((await ask(dns.port, 'default.svc.cluster.local', 'A')).rcode).toBe('NOERROR');
    expect((await ask(dns.port, 'cluster.local', 'SOA')).answers![0]!.type).toBe('SOA');
  });

  it('answers NXDOMAIN with the SOA for unknown names of the cluster domain (never forwarded)', async () => {
    const before = upstream.asked.length;
    for (const name of ['nope.default.svc.cluster.local', 'web.nowhere.svc.cluster.local', 'x.cluster.local', 'db-9.db.shop.svc.cluster.local']) {
      const r = await ask(dns.port, name, 'A');
      expect(r.rcode, name).toBe('NXDOMAIN');
      expect(r.flag_aa).toBe(true);
      expect(r.authorities!.map((a) => a.type)).toEqual(['SOA']);
      expect((r.authorities![0] as { data: { minimum: number } }).data.minimum).toBe(5);
    }
    expect(upstream.asked.length).toBe(before);
    const resolver = new Resolver();
    resolver.setServers([`127.0.0.1:${dns.port}`]);
    await expect(resolver.resolve4('nope.default.svc.cluster.local')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('answers a headless Service with one A per ready endpoint, and each endpoint by hostname (or dashed IP)', async () => {
    const r = await ask(dns.port, 'db.shop.svc.cluster.local', 'A');
    expect((data(r, 'A') as string[]).sort()).toEqual(['10.244.0.11', '10.244.0.12', '10.244.0.13']); // not the not-ready one
    expect(data(await ask(dns.port, 'db-1.db.shop.svc.cluster.local', 'A'), 'A')).toEqual(['10.244.0.12']);
    expect(data(await ask(dns.port, '10-244-0-13.db.shop.svc.cluster.local', 'A'), 'A')).toEqual(['10.244.0.13']);
    expect(data(await ask(dns.port, reverseName('10.244.0.11')!, 'PTR'), 'PTR')).toEqual(['db-0.db.shop.svc.cluster.local']);
  });

  it('answers SRV for named ports: the Service as target, or each endpoint of a headless one (with addresses)', async () => {
    const r = await ask(dns.port, '_http._tcp.web.default.svc.cluster.local', 'SRV');
    expect(data(r, 'SRV')).toEqual([{ priority: 0, weight: 100, port: 80, target: 'web.default.svc.cluster.local' }]);
    expect(data(await ask(dns.port, '_dns._udp.web.default.svc.cluster.local', 'SRV'), 'SRV')).toEqual([
      { priority: 0, weight: 100, port: 53, target: 'web.default.svc.cluster.local' },
    ]);
    expect((await ask(dns.port, '_http._udp.web.default.svc.cluster.local', 'SRV')).rcode).toBe('NXDOMAIN');
    const h = await ask(dns.port, '_pg._tcp.db.shop.svc.cluster.local', 'SRV', { tcp: true });
    const targets = (data(h, 'SRV') as { port: number; target: string; weight: number }[]).map((s) => `${s.port} ${s.target} ${s.weight}`).sort();
    expect(targets).toEqual(['5432 10-244-0-13.db.shop.svc.cluster.local 33', '5432 db-0.db.shop.svc.cluster.local 33', '5432 db-1.db.shop.svc.cluster.local 33']);
    expect((h.additionals ?? []).filter((a) => a.type === 'A').map((a) => `${a.name} ${(a as { data: string }).data}`).sort()).toEqual([
      '10-244-0-13.db.shop.svc.cluster.local 10.244.0.13',
      'db-0.db.shop.svc.cluster.local 10.244.0.11',
      'db-1.db.shop.svc.cluster.local 10.244.0.12',
    ]);
    const resolver = new Resolver();
    resolver.setServers([`127.0.0.1:${dns.port}`]);
    expect(await resolver.resolveSrv('_http._tcp.web.default.svc.cluster.local')).toEqual([{ name: 'web.default.svc.cluster.local', port: 80, priority: 0, weight: 100 }]);
  });

  it('answers an ExternalName Service with a CNAME, and follows it upstream for the address', async () => {
    const r = await ask(dns.port, 'ext.default.svc.cluster.local', 'A');
    expect(r.rcode).toBe('NOERROR');
    expect(r.answers!.map((a) => `${a.type} ${(a as { data: string }).data}`)).toEqual(['CNAME api.example.test', 'A 192.0.2.7']);
    expect(data(await ask(dns.port, 'ext.default.svc.cluster.local', 'CNAME'), 'CNAME')).toEqual(['api.example.test']);
    const resolver = new Resolver();
    resolver.setServers([`127.0.0.1:${dns.port}`]);
    expect(await resolver.resolveCname('ext.default.svc.cluster.local')).toEqual(['api.example.test']);
  });

  it('answers pod names a-b-c-d.<ns>.pod.cluster.local', async () => {
    expect(data(await ask(dns.port, '10-244-1-7.shop.pod.cluster.local', 'A'), 'A')).toEqual(['10.244.1.7']);
    expect((await ask(dns.port, '10-244-1-300.shop.pod.cluster.local', 'A')).rcode).toBe('NXDOMAIN');
  });

  it('forwards names outside the cluster domain upstream (UDP and TCP), and SERVFAILs when upstream is gone', async () => {
    const r = await ask(dns.port, 'www.example.test', 'A');
    expect(r.rcode).toBe('NOERROR');
    expect(r.flag_aa).toBe(false); // the upstream's answer, unchanged
    expect(data(r, 'A')).toEqual(['192.0.2.7']);
    expect(upstream.asked).toContain('udp A www.example.test');
    expect((await ask(dns.port, 'missing.invalid', 'A')).rcode).toBe('NXDOMAIN');
    // Over TCP from the client: over TCP upstream.
    expect(data(await ask(dns.port, 'tcp.example.test', 'A', { tcp: true }), 'A')).toEqual(['192.0.2.7']);
    expect(upstream.asked).toContain('tcp A tcp.example.test');
    // And through the stock c-ares resolver.
    const resolver = new Resolver();
    resolver.setServers([`127.0.0.1:${dns.port}`]);
    expect(await resolver.resolve4('cares.example.test')).toEqual(['192.0.2.7']);
    // A DNS server whose upstream never answers.
    const silent = dgram.createSocket('udp4');
    await new Promise<void>((ok) => silent.bind(0, '127.0.0.1', ok));
    const lonely = await startNodeDns({ kube, host: '127.0.0.1', port: 0, upstream: [`127.0.0.1:${silent.address().port}`], forwardTimeoutMs: 300, log: () => {} });
    try {
      await lonely.synced;
      const t0 = Date.now();
      expect((await ask(lonely.port, 'www.example.test', 'A')).rcode).toBe('SERVFAIL');
      expect(Date.now() - t0).toBeLessThan(1500);
      expect(data(await ask(lonely.port, 'web.default.svc.cluster.local', 'A'), 'A')).toEqual([webIP]);
    } finally {
      await lonely.close();
      silent.close();
    }
  });

  it('never forwards to itself (its own address among the upstreams is dropped)', async () => {
    const self = await startNodeDns({ kube, host: '127.0.0.1', port: 0, upstream: [], log: () => {} });
    await self.close();
    const logs: string[] = [];
    const looping = await startNodeDns({ kube, host: '127.0.0.1', port: self.port, upstream: [`127.0.0.1:${self.port}`, `127.0.0.1:${upstream.port}`], forwardTimeoutMs: 300, log: (m) => logs.push(m) });
    try {
      expect(logs.join('\n')).toContain(`forwarding to 127.0.0.1:${upstream.port}\n`.trim());
      expect(logs.join('\n')).not.toContain(`127.0.0.1:${self.port},`);
      // Answered by the real upstream at once, not after a timeout spent asking itself.
      const t0 = Date.now();
      expect(data(await ask(looping.port, 'www.example.test', 'A'), 'A')).toEqual(['192.0.2.7']);
      expect(Date.now() - t0).toBeLessThan(250);
    } finally {
      await looping.close();
    }
  });

  it('sets TC on UDP answers over 512 bytes unless EDNS allows more; TCP and c-ares get them whole', async () => {
    await kube.create('/api/v1/namespaces/shop/services', { metadata: { name: 'big' }, spec: { clusterIP: 'None', ports: [{ name: 'x', port: 1 }] } });
    const ips = Array.from({ length: 60 }, (_, i) => `10.245.0.${i + 1}`);
    await kube.create('/api/v1/namespaces/shop/endpoints', { metadata: { name: 'big' }, subsets: [{ addresses: ips.map((ip) => ({ ip })), ports: [{ name: 'x', port: 1 }] }] });
    const name = 'big.shop.svc.cluster.local';
    await until('big service answered', async () => (await ask(dns.port, name, 'A', { tcp: true })).answers!.length === 60, 10_000);
    const udp = await ask(dns.port, name, 'A');
    expect(udp.flag_tc).toBe(true);
    expect(udp.answers).toEqual([]);
    const edns = await ask(dns.port, name, 'A', { edns: 4096 });
    expect(edns.flag_tc).toBe(false);
    expect(edns.answers!.length).toBe(60);
    expect(edns.additionals!.some((a) => a.type === 'OPT')).toBe(true);
    const resolver = new Resolver();
    resolver.setServers([`127.0.0.1:${dns.port}`]);
    expect((await resolver.resolve4(name)).sort()).toEqual([...ips].sort());
  });

  it('sees Services created and deleted after it started', async () => {
    const name = 'late.default.svc.cluster.local';
    expect((await ask(dns.port, name, 'A')).rcode).toBe('NXDOMAIN');
    const late = await kube.create<KubeObject>(svcs, { metadata: { name: 'late' }, spec: { ports: [{ port: 81 }] } });
    await until('late answered', async () => data(await ask(dns.port, name, 'A'), 'A')[0] === late.spec.clusterIP, 10_000);
    await kube.delete(`${svcs}/late`);
    await until('late gone', async () => (await ask(dns.port, name, 'A')).rcode === 'NXDOMAIN', 10_000);
  });

  it('ignores or FORMERRs malformed packets, and keeps answering', async () => {
    expect(await exchangeUdp(dns.port, Buffer.from([1, 2, 3]), 300)).toBeUndefined();
    const junk = Buffer.concat([Buffer.from([0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]), Buffer.from([63, 1, 2])]);
    for (const ex of [exchangeUdp, exchangeTcp]) {
      const r = await ex(dns.port, junk);
      expect(r!.readUInt16BE(0)).toBe(0xabcd);
      expect(r!.readUInt16BE(2) & 0x8000).toBe(0x8000);
      expect(r!.readUInt16BE(2) & 0xf).toBe(1); // FORMERR
    }
    // A response sent to it is not answered (no loops); a status query is NOTIMP.
    const resp = dnsPacket.encode({ type: 'response', id: 9, questions: [{ type: 'A', name: 'web.default.svc.cluster.local' }] });
    expect(await exchangeUdp(dns.port, resp, 300)).toBeUndefined();
    const status = Buffer.from(dnsPacket.encode({ type: 'query', id: 10, questions: [{ type: 'A', name: 'x' }] }));
    status.writeUInt16BE(2 << 11, 2);
    expect((dnsPacket.decode((await exchangeUdp(dns.port, status))!) as { rcode?: string }).rcode).toBe('NOTIMP');
    // Valid queries with bytes flipped at random (a fixed seed): each is answered, FORMERRed or ignored.
    const good = dnsPacket.encode({ type: 'query', id: 77, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'SRV', name: '_http._tcp.web.default.svc.cluster.local' }] });
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const sock = dgram.createSocket('udp4');
    for (let i = 0; i < 400; i++) {
      const bad = Buffer.from(good);
      for (let k = 0; k < 3; k++) bad[12 + Math.floor(rand() * (bad.length - 12))] = Math.floor(rand() * 256);
      sock.send(i % 2 ? bad : bad.subarray(0, 12 + Math.floor(rand() * (bad.length - 12))), dns.port, '127.0.0.1');
    }
    await new Promise((r) => setTimeout(r, 300));
    sock.close();
    // A TCP frame cut short, then the connection dropped: nothing breaks.
    const s = net.connect({ host: '127.0.0.1', port: dns.port });
    await new Promise((r) => s.on('connect', r));
    s.end(Buffer.from([0, 40, 1, 2]));
    expect(data(await ask(dns.port, 'web.default.svc.cluster.local', 'A'), 'A')).toEqual([webIP]);
  });
});

describe.skipIf(!docker)('node DNS end to end: pods resolve Services by name', () => {
  const engine = docker as Docker;
  const NODE = `dns-node-${process.pid}`;
  const NETWORK = `skiff-dns-${process.pid}`;
  let c: TestCluster;
  let kube: KubeClient;
  let dns: NodeDns;
  let gateway: string;

  beforeAll(async () => {
    // The network first, so the DNS server can listen on its gateway before the agent starts pods.
    await engine.createNetwork({ Name: NETWORK, Driver: 'bridge', Labels: { 'io.skiff.network': 'pods', 'io.skiff.test': String(process.pid) } });
    gateway = await networkGateway(engine, NETWORK);
    c = await startTestCluster({
      agents: 1,
      requireAgents: true,
      agentOptions: { nodeName: NODE, network: NETWORK, backoffBaseMs: 1000, backoffMaxMs: 8000, heartbeatMs: 2000, resyncMs: 3000, dns: { servers: [gateway], searches: [], options: [] } },
    });
    kube = new KubeClient({ server: c.url, caCert: c.caCert, token: c.token });
    dns = await startNodeDns({ kube, host: gateway, port: 53, log: () => {} });
    await dns.synced;
  }, 90_000);
  /** Runs a command in the pod's container through the engine (what kubectl exec reaches, minus the apiserver hop). */
  async function podExec(cmd: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const [info] = await engine.listContainers({ filters: { label: [`${LABELS.node}=${NODE}`, `${LABELS.pod}=client`, `${LABELS.container}=c`], status: ['running'] } });
    return execInContainer(engine, info!.Id, cmd);
  }

  afterAll(async () => {
    for (const a of c?.agents ?? []) await a.close({ removePods: true });
    await dns?.close();
    kube?.close();
    await c?.destroy();
    await engine.getNetwork(NETWORK).remove().catch(() => {});
  });

  it("finds a network's gateway, also when the network was made with a subnet only (the engine's first address)", async () => {
    const name = `skiff-dns-gw-${process.pid}`;
    const subnet = `10.213.${process.pid % 256}.0/28`;
    await engine.createNetwork({ Name: name, Driver: 'bridge', IPAM: { Config: [{ Subnet: subnet }] }, Labels: { 'io.skiff.test': String(process.pid) } });
    try {
      const gw = await networkGateway(engine, name);
      expect(gw).toBe(`10.213.${process.pid % 256}.1`);
      // What a container on it routes through.
      const box = await engine.createContainer({ Image: TEST_IMAGE, Cmd: ['ip', 'route'], name: `${name}-probe`, HostConfig: { NetworkMode: name } });
      try {
        await box.start();
        await box.wait();
        const logs = (await box.logs({ stdout: true, stderr: true })).toString();
        expect(logs).toContain(`default via ${gw} `);
      } finally {
        await box.remove({ force: true });
      }
    } finally {
      await engine.getNetwork(name).remove();
    }
    expect(await networkGateway(engine, NETWORK)).toBe(gateway);
  });

  it('a ClusterFirst pod resolves a Service by short name and by full name to its cluster IP', async () => {
    const svc = await kube.create<KubeObject>('/api/v1/namespaces/default/services', { metadata: { name: 'hello' }, spec: { ports: [{ port: 80 }] } });
    await kube.create('/api/v1/namespaces/default/pods', {
      metadata: { name: 'client' },
      spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'c', image: TEST_IMAGE, command: ['sleep', '3600'] }] },
    });
    await until('client running', async () => (await kube.get<KubeObject>('/api/v1/namespaces/default/pods/client')).status?.phase === 'Running', 60_000);
    const conf = await podExec(['cat', '/etc/resolv.conf']);
    expect(conf.code).toBe(0);
    expect(conf.stdout).toMatch(/^search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local\s*$/m);
    expect(conf.stdout).toMatch(new RegExp(`^nameserver ${gateway.replace(/\./g, '\\.')}\\s*$`, 'm'));
    expect(conf.stdout).toMatch(/^options ndots:5\s*$/m);
    // busybox nslookup asks every search domain at once and exits 1 when any fails, as on Kubernetes;
    // what matters is the answer for the name the search path made.
    for (const name of ['hello', 'hello.default.svc.cluster.local']) {
      const r = await podExec(['nslookup', '-type=a', name]);
      expect(r.stdout, name).toContain(`Server:\t\t${gateway}`);
      expect(r.stdout, name).toMatch(new RegExp(`Name:\\s+hello\\.default\\.svc\\.cluster\\.local\\s+Address: ${svc.spec.clusterIP!.replace(/\./g, '\\.')}\\b`));
    }
    // The C library's resolver (ndots:5 and the search path): a name with a dot is searched too.
    const ping = await podExec(['ping', '-c', '1', '-W', '1', 'hello.default']);
    expect(ping.stdout + ping.stderr).toContain(`PING hello.default (${svc.spec.clusterIP})`);
    const missing = await podExec(['nslookup', '-type=a', 'nothing-here.default.svc.cluster.local']);
    expect(missing.code).not.toBe(0);
    expect(missing.stdout + missing.stderr).toMatch(/NXDOMAIN/);
  });
});
