// The node's DNS server, as CoreDNS with the kubernetes plugin: cluster names (dns-zone.ts) are answered
// from Services and Endpoints followed with informers; every other name is forwarded, packet unchanged,
// to the host's resolvers. One runs on each node, on the pod network's gateway address, and the pods'
// resolv.conf names it (dnsPolicy ClusterFirst): no cluster-wide DNS Service, no extra hop across nodes.
// UDP and TCP (RFC 1035/7766): a UDP answer larger than the client can take (512 bytes, or its EDNS
// size) is sent truncated (TC) and the client asks again over TCP. Malformed packets get FORMERR, or
// nothing when not even the header is there; nothing a client sends can stop the server.

import dgram from 'node:dgram';
import net from 'node:net';
import os from 'node:os';
import { readFileSync } from 'node:fs';
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, Packet, Question } from 'dns-packet';
import type Docker from 'dockerode';
import type { KubeClient } from './kube-client.ts';
import { Informer } from './informer.ts';
import { podNetwork } from './runtime.ts';
import { ClusterZone, type ZoneRecord } from './dns-zone.ts';

export interface NodeDnsOptions {
  kube: KubeClient;
  /** Address to listen on (UDP and TCP): the pod network's gateway, so pods reach it. */
  host: string;
  /** Default 53 (resolv.conf has no port); 0 picks a free port (tests). */
  port?: number;
  /** Resolvers for names outside the cluster domain, `ip` or `ip:port`; default: /etc/resolv.conf's. */
  upstream?: string[];
  domain?: string;
  /** TTL of cluster answers and of negative answers (SOA minimum); CoreDNS's default is 5 s. */
  ttl?: number;
  /** How long one forwarded query may take per upstream before the next is tried. */
  forwardTimeoutMs?: number;
  log?: (msg: string) => void;
}

export interface NodeDns {
  address: string;
  port: number;
  /** Resolves once Services and Endpoints have been listed (until then cluster names get SERVFAIL). */
  synced: Promise<void>;
  close(): Promise<void>;
}

interface Upstream {
  host: string;
  port: number;
}

const FLAG_AA = dnsPacket.AUTHORITATIVE_ANSWER;
const FLAG_TC = dnsPacket.TRUNCATED_RESPONSE;
const FLAG_RD = dnsPacket.RECURSION_DESIRED;
const FLAG_RA = dnsPacket.RECURSION_AVAILABLE;
const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const MAX_UDP = 4096;
const TCP_IDLE_MS = 10_000;

/**
 * The gateway address of a Docker network (the host's address on the pod bridge). A network created with
 * a subnet and no gateway does not say it: the engine took the subnet's first address, so that is it.
 */
export async function networkGateway(docker: Docker, network: string): Promise<string> {
  const { gateway } = await podNetwork(docker, network);
  if (!gateway) throw new Error(`network ${network} has no IPv4 gateway`);
  return gateway;
}

/** Nameservers of a resolv.conf (`nameserver` lines), as upstream addresses. */
export function resolvConfNameservers(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((w) => w[0] === 'nameserver' && w[1] && net.isIP(w[1].replace(/%.*$/, '')))
    .map((w) => w[1]!);
}

function parseUpstream(s: string): Upstream | undefined {
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (bracket) return { host: bracket[1]!, port: Number(bracket[2] ?? 53) };
  if (net.isIP(s)) return { host: s, port: 53 };
  const m = /^([^:]+):(\d+)$/.exec(s);
  return m && net.isIPv4(m[1]!) ? { host: m[1]!, port: Number(m[2]) } : undefined;
}

export async function startNodeDns(o: NodeDnsOptions): Promise<NodeDns> {
  const log = o.log ?? ((m: string) => console.error(`dns: ${m}`));
  const ttl = o.ttl ?? 5;
  const timeoutMs = o.forwardTimeoutMs ?? 2000;
  const zone = new ClusterZone(o.domain ?? 'cluster.local', o.host === '0.0.0.0' || o.host === '::' ? undefined : o.host);

  // ---- the cluster's objects ----
  let dirty = true;
  let serial = Math.floor(Date.now() / 1000);
  const markDirty = () => {
    dirty = true;
    serial++;
  };
  const services = Informer.shared(o.kube, '/api/v1/services', log, { changesOnly: true }).on(markDirty).start();
  const endpoints = Informer.shared(o.kube, '/api/v1/endpoints', log, { changesOnly: true }).on(markDirty).start();
  let isSynced = false;
  const synced = Promise.all([services.synced, endpoints.synced]).then(() => void (isSynced = true));
  const currentZone = () => {
    // Rebuilt on the first question after a change: cheap (one pass over Services and Endpoints) and
    // never done for changes nobody asks about.
    if (dirty) {
      dirty = false;
      zone.rebuild(services.items.values(), endpoints.items.values());
    }
    return zone;
  };

  // ---- listeners (the same port for UDP and TCP) ----
  const { udp, tcp } = await listen(o.host, o.port ?? 53);
  const port = udp.address().port;
  const conns = new Set<net.Socket>();

  // ---- upstreams: never ourselves ----
  const localAddrs = new Set(['0.0.0.0', '::', ...Object.values(os.networkInterfaces()).flatMap((l) => (l ?? []).map((a) => a.address))]);
  const isSelf = (u: Upstream) =>
    u.port === port && (u.host === o.host || ((o.host === '0.0.0.0' || o.host === '::') && (localAddrs.has(u.host) || u.host.startsWith('127.'))));
  const upstreamSpec = o.upstream ?? resolvConfNameservers(safeRead('/etc/resolv.conf'));
  const upstreams = upstreamSpec.map((s) => {
    const u = parseUpstream(s);
    if (!u) log(`ignoring upstream resolver ${JSON.stringify(s)}: not ip or ip:port`);
    return u;
  }).filter((u): u is Upstream => !!u && !isSelf(u));
  if (!upstreams.length) log('no upstream resolver: names outside the cluster domain get SERVFAIL');

  // ---- answering ----
  async function handle(buf: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    if (buf.length < 12) return undefined; // not even a header: nothing to answer to
    const id = buf.readUInt16BE(0);
    const rawFlags = buf.readUInt16BE(2);
    if (rawFlags & 0x8000) return undefined; // a response: never answer those (no loops)
    const opcode = (rawFlags >> 11) & 0xf;
    const rd = rawFlags & FLAG_RD;
    let q: DecodedPacket;
    try {
      q = dnsPacket.decode(buf);
    } catch {
      return header(id, (opcode << 11) | rd | RCODE.FORMERR);
    }
    if (opcode !== 0) return header(id, (opcode << 11) | rd | RCODE.NOTIMP);
    const question = q.questions?.[0];
    if (!question || q.questions!.length !== 1) return header(id, rd | RCODE.FORMERR);
    const edns = q.additionals?.find((a) => a.type === 'OPT') as (Answer & { udpPayloadSize?: number }) | undefined;
    const maxUdp = edns ? Math.min(Math.max(edns.udpPayloadSize ?? 512, 512), MAX_UDP) : 512;
    const reply = (p: Packet) => {
      const full: Packet = { ...p, type: 'response', id, questions: [question], additionals: [...(p.additionals ?? []), ...(edns ? [opt()] : [])] };
      let out = dnsPacket.encode(full);
      if (transport === 'udp' && out.length > maxUdp) {
        out = dnsPacket.encode({ type: 'response', id, flags: (p.flags ?? 0) | FLAG_TC, questions: [question], additionals: edns ? [opt()] : [] });
      }
      return out;
    };

    if (!(isSynced ? currentZone() : zone).owns(question.name)) {
      const forwarded = await forward(buf, transport);
      return forwarded ?? reply({ flags: rd | FLAG_RA | RCODE.SERVFAIL });
    }
    if (!isSynced) return reply({ flags: rd | FLAG_RA | RCODE.SERVFAIL }); // not NXDOMAIN: that would be cached
    try {
      return await answerLocally(question, rd, reply);
    } catch (e) {
      // Something in the zone this server cannot encode (an odd record type asked, an upstream record
      // dns-packet rejects): SERVFAIL for this question, nothing more.
      log(`answering ${question.type} ${question.name}: ${(e as Error).message}`);
      return reply({ flags: rd | FLAG_RA | RCODE.SERVFAIL });
    }
  }

  async function answerLocally(question: Question, rd: number, reply: (p: Packet) => Buffer): Promise<Buffer> {
    if ((question.class ?? 'IN') !== 'IN' && question.class !== 'ANY') return reply({ flags: FLAG_AA | rd | FLAG_RA | RCODE.REFUSED });
    const z = currentZone();
    const ans = z.lookup(question.name, question.type);
    if (!ans) return reply({ flags: rd | FLAG_RA | RCODE.SERVFAIL });
    const soa = { ...z.soa(serial), type: 'SOA' as const, class: 'IN' as const, ttl };
    soa.data.minimum = ttl;
    const answers: Answer[] = ans.answers.map((r) => toAnswer(r, question.name));
    if (ans.chase) answers.push(...(await chase(ans.chase, question.type)));
    if (!answers.length && question.type === 'SOA' && ans.rcode === 'NOERROR' && norm(question.name) === z.domain) {
      answers.push({ ...soa, name: question.name });
    }
    const negative = !answers.length;
    return reply({
      flags: FLAG_AA | rd | FLAG_RA | RCODE[ans.rcode],
      answers,
      authorities: negative && z.inDomain(question.name) ? [soa] : [],
      additionals: ans.additionals.map((r) => toAnswer(r, question.name)),
    });
  }

  function toAnswer(r: ZoneRecord, asked: string): Answer {
    // The owner name as the client spelled it when it is the name asked (0x20 case randomization).
    const name = r.name === norm(asked) ? asked : r.name;
    return { ...r, name, class: 'IN', ttl } as Answer;
  }

  const opt = (): Answer => ({ type: 'OPT', name: '.', udpPayloadSize: MAX_UDP, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }) as Answer;
  const header = (id: number, flags: number) => dnsPacket.encode({ type: 'response', id, flags: flags | FLAG_RA });

  /** An ExternalName's target, resolved upstream; its records follow the CNAME (empty when it fails). */
  async function chase(target: string, type: string): Promise<Answer[]> {
    if (type === 'CNAME') return [];
    const q = dnsPacket.encode({ type: 'query', id: Math.floor(Math.random() * 65536), flags: FLAG_RD, questions: [{ type: type as any, name: target, class: 'IN' }] });
    let res = await forward(q, 'udp');
    try {
      if (res && dnsPacket.decode(res).flag_tc) res = await forward(q, 'tcp');
      return res ? (dnsPacket.decode(res).answers ?? []) : [];
    } catch {
      return [];
    }
  }

  /** The query, unchanged, to each upstream in turn; its answer, unchanged, or undefined when none answers. */
  async function forward(query: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    for (const u of upstreams) {
      try {
        return transport === 'udp' ? await udpExchange(u, query, timeoutMs) : await tcpExchange(u, query, timeoutMs);
      } catch {
        // next upstream
      }
    }
    return undefined;
  }

  let closed = false;
  udp.on('message', (msg, rinfo) => {
    handle(msg, 'udp')
      .then((out) => {
        if (out && !closed) udp.send(out, rinfo.port, rinfo.address);
      })
      .catch((e) => log(`answering ${rinfo.address}: ${(e as Error).message}`));
  });
  udp.on('error', (e) => log(`udp: ${e.message}`));

  tcp.on('connection', (sock) => {
    conns.add(sock);
    sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
    sock.on('close', () => conns.delete(sock));
    sock.on('error', () => sock.destroy());
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        handle(Buffer.from(msg), 'tcp')
          .then((out) => {
            if (!out || sock.destroyed) return;
            const len = Buffer.alloc(2);
            len.writeUInt16BE(out.length);
            sock.write(Buffer.concat([len, out]));
          })
          .catch((e) => log(`answering ${sock.remoteAddress} over tcp: ${(e as Error).message}`));
      }
    });
  });

  log(`serving ${zone.domain} on ${o.host}:${port} (udp, tcp); forwarding to ${upstreams.map((u) => `${u.host}:${u.port}`).join(', ') || 'nothing'}`);
  return {
    address: o.host,
    port,
    synced,
    async close() {
      closed = true;
      for (const c of conns) c.destroy();
      await Promise.all([
        new Promise<void>((r) => udp.close(() => r())),
        new Promise<void>((r) => tcp.close(() => r())),
        services.stop(),
        endpoints.stop(),
      ]);
    },
  };
}

const norm = (name: string) => name.toLowerCase().replace(/\.$/, '');

/** UDP and TCP on the same port; with port 0, a free port whose TCP twin is free too. */
async function listen(host: string, want: number): Promise<{ udp: dgram.Socket; tcp: net.Server }> {
  const family = net.isIPv6(host) ? 'udp6' : 'udp4';
  for (let attempt = 0; ; attempt++) {
    const udp = dgram.createSocket({ type: family });
    await new Promise<void>((ok, fail) => {
      udp.once('error', fail);
      udp.bind({ address: host, port: want, exclusive: true }, () => {
        udp.off('error', fail);
        ok();
      });
    });
    const tcp = net.createServer();
    try {
      await new Promise<void>((ok, fail) => {
        tcp.once('error', fail);
        tcp.listen({ host, port: udp.address().port }, () => {
          tcp.off('error', fail);
          ok();
        });
      });
      return { udp, tcp };
    } catch (e) {
      await new Promise<void>((r) => udp.close(() => r()));
      if (want !== 0 || attempt >= 5 || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
    }
  }
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function udpExchange(u: Upstream, query: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // A socket per query: a fresh random source port, and only the upstream's answer with our id accepted.
    const sock = dgram.createSocket(net.isIPv6(u.host) ? 'udp6' : 'udp4');
    const done = (err?: Error, msg?: Buffer) => {
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve(msg!);
    };
    const timer = setTimeout(() => done(new Error(`${u.host}:${u.port}: timeout`)), timeoutMs);
    sock.on('error', (e) => done(e));
    sock.on('message', (msg, rinfo) => {
      if (rinfo.address !== u.host || rinfo.port !== u.port || msg.length < 12 || msg.readUInt16BE(0) !== query.readUInt16BE(0)) return;
      done(undefined, msg);
    });
    sock.send(query, u.port, u.host);
  });
}

function tcpExchange(u: Upstream, query: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: u.host, port: u.port });
    let buf = Buffer.alloc(0);
    const done = (err?: Error, msg?: Buffer) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(msg!);
    };
    const timer = setTimeout(() => done(new Error(`${u.host}:${u.port}: timeout`)), timeoutMs);
    sock.on('error', (e) => done(e));
    sock.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      sock.write(Buffer.concat([len, query]));
    });
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) done(undefined, buf.subarray(2, 2 + buf.readUInt16BE(0)));
    });
    sock.on('end', () => done(new Error(`${u.host}:${u.port}: closed`)));
  });
}

