// The Service proxy (node-agent/proxy.ts, proxy-rules.ts): the pure rule builder, rule by rule; then end
// to end with real containers on the Docker Engine and real iptables: a client pod reaches backends
// through the cluster IP, spread over all of them; a backend that turns not-ready stops getting traffic
// within about a second of its Endpoints change; UDP, node ports from the host, ClientIP affinity,
// hairpin, REJECT for a service without endpoints; rules survive the agent, and cleanup removes them.
//
// The proxy under test uses its own chain prefix (SKT<pid>) so it cannot touch the chains of any other
// agent on this machine, and every request goes to a cluster IP only once its rules are in place (with a
// catch-all REJECT for the service CIDR), so no test packet leaves the host.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dgram from 'node:dgram';
import net from 'node:net';
import type Docker from 'dockerode';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { buildRuleset, jumpRules, probability, renderRestore, staleUdpFlows, type PortInfo, type Ruleset } from '../node-agent/proxy-rules.ts';
import { cleanupProxyRules, listChains, type SyncResult } from '../node-agent/proxy.ts';
import { LABELS } from '../node-agent/runtime.ts';
import { execInContainer, requireDocker, TEST_IMAGE } from './support/docker.ts';
import { getOnNewConnection } from './support/http.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { until } from './support/until.ts';

// ---------------------------------------------------------------------------------------------------
// The rule builder

const svc = (name: string, spec: Record<string, unknown>, ns = 'default'): KubeObject =>
  ({ apiVersion: 'v1', kind: 'Service', metadata: { namespace: ns, name }, spec }) as KubeObject;
const addr = (ip: string) => ({ ip });
const eps = (entries: Record<string, unknown[]>) => new Map(Object.entries(entries).map(([k, subsets]) => [k, { subsets } as unknown as KubeObject]));
const NODE = { prefix: 'SKIFF', podCIDR: '172.30.0.0/16', bridgeNetfilter: true };
const svcChains = (r: Ruleset) => [...r.nat.keys()].filter((c) => c.startsWith('SKIFF-SVC-'));
const sepChains = (r: Ruleset) => [...r.nat.keys()].filter((c) => c.startsWith('SKIFF-SEP-'));

describe('proxy rule builder', () => {
  const web = svc('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 'http' }] });
  const three = eps({ 'default/web': [{ addresses: ['172.30.0.4', '172.30.0.2', '172.30.0.3'].map(addr), ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] }] });

  it('spreads over the ready endpoints with probabilities 1/n, 1/(n-1), ... and DNATs to each', () => {
    const r = buildRuleset([web], three, NODE);
    expect(r.nat.get('SKIFF-SERVICES')).toContain(
      `-d 10.96.0.10/32 -p tcp -m tcp --dport 80 -m comment --comment "default/web:http cluster IP" -j ${svcChains(r)[0]}`,
    );
    const rules = r.nat.get(svcChains(r)[0]!)!;
    const spread = rules.filter((x) => x.includes('-> 172.30.0.'));
    expect(spread).toHaveLength(3);
    expect(spread[0]).toContain('-> 172.30.0.2:8080" -m statistic --mode random --probability 0.3333333333 -j SKIFF-SEP-');
    expect(spread[1]).toContain('-> 172.30.0.3:8080" -m statistic --mode random --probability 0.5000000000 -j SKIFF-SEP-');
    expect(spread[2]).toMatch(/-> 172\.30\.0\.4:8080" -j SKIFF-SEP-\w+$/);
    expect(sepChains(r)).toHaveLength(3);
    const dnats = sepChains(r).map((c) => r.nat.get(c)!.find((x) => x.includes('DNAT'))!.replace(/.*--to-destination /, ''));
    expect(dnats.sort()).toEqual(['172.30.0.2:8080', '172.30.0.3:8080', '172.30.0.4:8080']);
    // Four endpoints: 1/4, 1/3, 1/2, rest; one endpoint: no statistic at all.
    expect([4, 3, 2].map(probability)).toEqual(['0.2500000000', '0.3333333333', '0.5000000000']);
    const one = buildRuleset([web], eps({ 'default/web': [{ addresses: [addr('172.30.0.9')], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] }] }), NODE);
    expect(one.nat.get(svcChains(one)[0]!)!.join('\n')).not.toContain('statistic');
    // Chain names fit iptables' 28 characters, also with a longer prefix.
    const long = buildRuleset([web], three, { ...NODE, prefix: 'SKT1234567' });
    for (const c of long.nat.keys()) expect(c.length).toBeLessThanOrEqual(28);
  });

  it('leaves out not-ready addresses, and ports whose name or protocol do not match', () => {
    const e = eps({
      'default/web': [
        { addresses: [addr('172.30.0.2')], notReadyAddresses: [addr('172.30.0.3')], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] },
        { addresses: [addr('172.30.0.5')], ports: [{ name: 'metrics', port: 9090, protocol: 'TCP' }] },
      ],
    });
    const r = buildRuleset([web], e, NODE);
    const text = renderRestore(r);
    expect(text).toContain('--to-destination 172.30.0.2:8080');
    expect(text).not.toContain('172.30.0.3');
    expect(text).not.toContain('172.30.0.5');
  });

  it('masquerades traffic from other networks, hairpin traffic, the host\'s own towards other nodes, and everything without br_netfilter', () => {
    const r = buildRuleset([web], three, NODE);
    const svcRules = r.nat.get(svcChains(r)[0]!)!;
    expect(svcRules[0]).toBe(
      '! -s 172.30.0.0/16 -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -m addrtype ! --src-type LOCAL -m comment --comment "default/web:http cluster IP" -j SKIFF-MARK-MASQ',
    );
    // Local endpoints: only hairpin is SNATed (the host's connections come back through the bridge).
    for (const c of sepChains(r)) {
      const [hairpin, dnat, ...rest] = r.nat.get(c)!;
      const ip = dnat!.replace(/.*--to-destination ([\d.]+):.*/, '$1');
      expect(hairpin).toBe(`-s ${ip}/32 -m comment --comment "default/web:http" -j SKIFF-MARK-MASQ`);
      expect(rest).toEqual([]);
    }
    // An endpoint on another node: the host's own connections to it are SNATed as well.
    const remote = buildRuleset([web], eps({ 'default/web': [{ addresses: [addr('10.244.1.7')], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] }] }), NODE);
    const [rHairpin, rHost, rDnat] = remote.nat.get(sepChains(remote)[0]!)!;
    expect(rHairpin).toContain('-s 10.244.1.7/32');
    expect(rHost).toBe('-m addrtype --src-type LOCAL -m comment --comment "default/web:http" -j SKIFF-MARK-MASQ');
    expect(rDnat).toContain('--to-destination 10.244.1.7:8080');
    expect(r.nat.get('SKIFF-MARK-MASQ')).toEqual(['-j MARK --or-mark 0x4000']);
    expect(r.nat.get('SKIFF-POSTROUTING')!.join('\n')).toMatch(/! --mark 0x4000\/0x4000 -j RETURN\n-j MARK --xor-mark 0x4000\n.*-j MASQUERADE/);
    const noBrNf = buildRuleset([web], three, { ...NODE, bridgeNetfilter: false });
    expect(noBrNf.nat.get(svcChains(noBrNf)[0]!)![0]).toMatch(/^-d 10\.96\.0\.10\/32 .* -j SKIFF-MARK-MASQ$/);
    // Proxied traffic is let through Docker's FORWARD policy.
    expect(r.filter.get('SKIFF-FORWARD')![0]).toContain('-m mark --mark 0x4000/0x4000');
  });

  it('ClientIP affinity: a recent-list check per endpoint before the spread, set on DNAT; timeout default 10800 s', () => {
    const sticky = svc('web', { ...web.spec, sessionAffinity: 'ClientIP' });
    const r = buildRuleset([sticky], three, NODE);
    const rules = r.nat.get(svcChains(r)[0]!)!;
    const checks = rules.filter((x) => x.includes('--rcheck'));
    expect(checks).toHaveLength(3);
    for (const x of checks) expect(x).toMatch(/-m recent --name (SKIFF-SEP-\w+) --mask 255\.255\.255\.255 --rsource --rcheck --seconds 10800 --reap -j \1$/);
    expect(rules.findIndex((x) => x.includes('statistic'))).toBeGreaterThan(rules.findIndex((x) => x.includes('--rcheck')));
    for (const c of sepChains(r)) expect(r.nat.get(c)!.find((x) => x.includes('DNAT'))).toContain(`-m recent --name ${c} --mask 255.255.255.255 --rsource --set`);
    const custom = buildRuleset([svc('web', { ...sticky.spec, sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } })], three, NODE);
    expect(renderRestore(custom)).toContain('--rcheck --seconds 60 --reap');
    expect(renderRestore(buildRuleset([web], three, NODE))).not.toContain('recent');
  });

  it('REJECTs a service port without ready endpoints (tcp-reset for TCP, port-unreachable for UDP), node ports too', () => {
    const none = svc('none', { clusterIP: '10.96.0.20', type: 'NodePort', ports: [{ port: 80, protocol: 'TCP', nodePort: 30020 }] });
    const dns = svc('dns', { clusterIP: '10.96.0.21', ports: [{ port: 53, protocol: 'UDP' }] });
    const r = buildRuleset([none, dns], eps({ 'default/none': [{ notReadyAddresses: [addr('172.30.0.2')], ports: [{ port: 80, protocol: 'TCP' }] }] }), NODE);
    const rejects = r.filter.get('SKIFF-SERVICES')!;
    expect(rejects).toContain('-d 10.96.0.20/32 -p tcp -m tcp --dport 80 -m comment --comment "default/none has no endpoints" -j REJECT --reject-with tcp-reset');
    expect(rejects).toContain('-d 10.96.0.21/32 -p udp -m udp --dport 53 -m comment --comment "default/dns has no endpoints" -j REJECT --reject-with icmp-port-unreachable');
    expect(r.filter.get('SKIFF-EXTERNAL-SERVICES')).toEqual([
      '-m addrtype --dst-type LOCAL -p tcp -m tcp --dport 30020 -m comment --comment "default/none has no endpoints" -j REJECT --reject-with tcp-reset',
    ]);
    expect(svcChains(r)).toEqual([]);
    expect(r.nat.get('SKIFF-SERVICES')!.join('\n')).not.toContain('10.96.0.2');
    // Any other port of a cluster IP, and (if known) the rest of the service CIDR, are refused as well.
    expect(rejects).toContain('-d 10.96.0.20/32 -m comment --comment "skiff cluster IP: port not served" -j REJECT --reject-with icmp-port-unreachable');
    expect(buildRuleset([], new Map(), { ...NODE, serviceCIDR: '10.96.0.0/16' }).filter.get('SKIFF-SERVICES')!.at(-1)).toMatch(/^-d 10\.96\.0\.0\/16 .* -j REJECT/);
  });

  it('NodePort (and LoadBalancer): masquerade then the service chain, reached from local destinations last', () => {
    for (const type of ['NodePort', 'LoadBalancer']) {
      const np = svc('web', { ...web.spec, type, ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }] });
      const r = buildRuleset([np], three, NODE);
      expect(r.nat.get('SKIFF-NODEPORTS')).toEqual([
        '-p tcp -m tcp --dport 30080 -m comment --comment "default/web:http" -j SKIFF-MARK-MASQ',
        `-p tcp -m tcp --dport 30080 -m comment --comment "default/web:http" -j ${svcChains(r)[0]}`,
      ]);
      expect(r.nat.get('SKIFF-SERVICES')!.at(-1)).toMatch(/! -d 127\.0\.0\.0\/8 -m addrtype --dst-type LOCAL -j SKIFF-NODEPORTS$/);
    }
    // A ClusterIP service with a stale nodePort field gets no node port.
    const r = buildRuleset([svc('web', { ...web.spec, ports: [{ name: 'http', port: 80, nodePort: 30080 }] })], three, NODE);
    expect(r.nat.get('SKIFF-NODEPORTS')).toEqual([]);
  });

  it('UDP ports match udp; multi-port services get one chain per port; unnamed ports match unnamed', () => {
    const s = svc('multi', {
      clusterIP: '10.96.0.30',
      ports: [
        { name: 'dns', port: 53, protocol: 'UDP' },
        { name: 'dns-tcp', port: 53, protocol: 'TCP' },
      ],
    });
    const e = eps({
      'default/multi': [{ addresses: [addr('172.30.0.7')], ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }, { name: 'dns-tcp', port: 5354, protocol: 'TCP' }] }],
      'default/plain': [{ addresses: [addr('172.30.0.8')], ports: [{ port: 9000, protocol: 'TCP' }] }],
    });
    const plain = svc('plain', { clusterIP: '10.96.0.31', ports: [{ port: 90, protocol: 'TCP' }] });
    const r = buildRuleset([s, plain], e, NODE);
    const text = renderRestore(r);
    expect(text).toContain('-A SKIFF-SERVICES -d 10.96.0.30/32 -p udp -m udp --dport 53 -m comment --comment "default/multi:dns cluster IP"');
    expect(text).toContain('-A SKIFF-SERVICES -d 10.96.0.30/32 -p tcp -m tcp --dport 53 -m comment --comment "default/multi:dns-tcp cluster IP"');
    expect(text).toMatch(/-p udp -m udp -m comment --comment "default\/multi:dns" -j DNAT --to-destination 172\.30\.0\.7:5353/);
    expect(text).toMatch(/-p tcp -m tcp -m comment --comment "default\/multi:dns-tcp" -j DNAT --to-destination 172\.30\.0\.7:5354/);
    expect(text).toContain('-j DNAT --to-destination 172.30.0.8:9000');
    expect(svcChains(r)).toHaveLength(3);
  });

  it('gives headless and ExternalName services no rules', () => {
    const r = buildRuleset(
      [svc('headless', { clusterIP: 'None', ports: [{ port: 80 }] }), svc('ext', { type: 'ExternalName', externalName: 'example.com', ports: [{ port: 80 }] })],
      eps({ 'default/headless': [{ addresses: [addr('172.30.0.2')], ports: [{ port: 80, protocol: 'TCP' }] }] }),
      NODE,
    );
    expect(svcChains(r)).toEqual([]);
    expect(r.filter.get('SKIFF-SERVICES')).toEqual([]);
    expect(renderRestore(r)).not.toContain('172.30.0.2');
  });

  it('clears conntrack for UDP flows to removed endpoints, to a VIP that got its first endpoint, and of removed services', () => {
    const udp = (eps: string[], port = 53): PortInfo => ({ key: 'default/dns', protocol: 'udp', clusterIP: '10.96.0.53', port, endpoints: eps });
    const tcp: PortInfo = { key: 'default/web', protocol: 'tcp', clusterIP: '10.96.0.10', port: 80, endpoints: [] };
    expect(staleUdpFlows([udp(['172.30.0.2:5353', '172.30.0.3:5353']), tcp], [udp(['172.30.0.3:5353']), { ...tcp, endpoints: ['172.30.0.9:80'] }])).toEqual([
      ['-D', '-p', 'udp', '--orig-dst', '10.96.0.53', '--orig-port-dst', '53', '--dst-nat', '172.30.0.2'],
    ]);
    expect(staleUdpFlows([udp([])], [udp(['172.30.0.2:5353'])])).toEqual([['-D', '-p', 'udp', '--orig-dst', '10.96.0.53', '--orig-port-dst', '53']]);
    expect(staleUdpFlows([udp(['172.30.0.2:5353'])], [])).toEqual([['-D', '-p', 'udp', '--orig-dst', '10.96.0.53', '--orig-port-dst', '53', '--dst-nat', '172.30.0.2']]);
    expect(staleUdpFlows([udp(['172.30.0.2:5353'])], [udp(['172.30.0.2:5353'])])).toEqual([]);
  });

  it('renders the whole set, only what changed against the last one (deleting chains gone), or nothing', () => {
    const a = buildRuleset([web], three, NODE);
    const full = renderRestore(a);
    expect(full).toMatch(/^\*filter\n:SKIFF-SERVICES - \[0:0\]\n[\s\S]*COMMIT\n\*nat\n[\s\S]*COMMIT\n$/);
    expect(renderRestore(buildRuleset([web], three, NODE), a)).toBe('');
    // One endpoint fewer: the service chain is rewritten, the gone endpoint's chain deleted; nothing else.
    const b = buildRuleset([web], eps({ 'default/web': [{ addresses: ['172.30.0.2', '172.30.0.3'].map(addr), ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] }] }), NODE);
    const diff = renderRestore(b, a);
    const gone = sepChains(a).find((c) => !b.nat.has(c))!;
    expect(diff).toBe(
      `*nat\n:${svcChains(b)[0]} - [0:0]\n:${gone} - [0:0]\n${b.nat
        .get(svcChains(b)[0]!)!
        .map((x) => `-A ${svcChains(b)[0]} ${x}\n`)
        .join('')}-X ${gone}\nCOMMIT\n`,
    );
    // The jumps from the built-in chains (made apart from the batch, with -C/-I) point at the base chains.
    expect(jumpRules('SKIFF').map(([t, c, args]) => `${t} ${c} ${args.at(-1)}`)).toEqual([
      'nat PREROUTING SKIFF-SERVICES',
      'nat OUTPUT SKIFF-SERVICES',
      'nat POSTROUTING SKIFF-POSTROUTING',
      'filter INPUT SKIFF-EXTERNAL-SERVICES',
      'filter FORWARD SKIFF-SERVICES',
      'filter FORWARD SKIFF-FORWARD',
      'filter OUTPUT SKIFF-SERVICES',
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------
// End to end

const docker = await requireDocker();
const podsRes = findResource('', 'v1', 'pods')!;
const svcRes = findResource('', 'v1', 'services')!;
const epRes = findResource('', 'v1', 'endpoints')!;
const PID = process.pid;
const NODE_NAME = `proxy-node-${PID}`;
const NETWORK = `skiff-proxy-${PID}`;
const PREFIX = `SKT${PID}`.slice(0, 10);
const syncs: SyncResult[] = [];
const AGENT = {
  nodeName: NODE_NAME,
  network: NETWORK,
  backoffBaseMs: 1000,
  backoffMaxMs: 8000,
  heartbeatMs: 2000,
  resyncMs: 3000,
  proxy: { chainPrefix: PREFIX, serviceCIDR: '10.96.0.0/16', resyncMs: 3000, onSync: (s: SyncResult) => void syncs.push(s) },
};

// A UDP server for the busybox image (its nc has no -u): answers each datagram with the host name.
const UDP_ECHO_C = `
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET; a.sin_port = htons(atoi(argv[1])); a.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(s, (struct sockaddr *)&a, sizeof a)) return 1;
  char host[256] = {0}; gethostname(host, sizeof host - 1);
  for (;;) {
    char buf[512]; struct sockaddr_in from; socklen_t fl = sizeof from;
    if (recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl) < 0) continue;
    sendto(s, host, strlen(host), 0, (struct sockaddr *)&from, fl);
  }
}
`;



const iptablesSave = () => execFileSync('iptables-save', { encoding: 'utf8' });
const ourRules = () => iptablesSave().split('\n').filter((l) => l.includes(PREFIX));

describe.skipIf(!docker)('service proxy on Docker (end to end)', () => {
  let c: TestCluster;
  let udpDir: string;
  const engine = docker as Docker;
  let cleaned = false;

  const apply = async (doc: object) => {
    const r = await c.kubectl(['apply', '-f', '-'], JSON.stringify(doc));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  };
  const getPod = (name: string) => c.api.registry.get(podsRes, 'default', name) as Promise<KubeObject>;
  const getSvc = (name: string) => c.api.registry.get(svcRes, 'default', name) as Promise<KubeObject>;
  const getEp = (name: string) => c.api.registry.get(epRes, 'default', name).catch(() => undefined) as Promise<KubeObject | undefined>;
  const readyIPs = async (name: string) => ((await getEp(name))?.subsets ?? []).flatMap((s: any) => (s.addresses ?? []).map((a: any) => a.ip as string)).sort();
  /** The app container of a pod (to exec in it through the engine). */
  const containerOf = async (pod: string, container = 'main') => {
    const uid = (await getPod(pod)).metadata.uid;
    const list = await engine.listContainers({ filters: { label: [`${LABELS.node}=${NODE_NAME}`, `${LABELS.uid}=${uid}`, `${LABELS.container}=${container}`] } });
    return engine.getContainer(list[0]!.Id);
  };
  const execIn = async (pod: string, cmd: string): Promise<{ code: number; stdout: string; stderr: string; ms: number }> => {
    const t0 = Date.now();
    const r = await execInContainer(engine, (await containerOf(pod)).id, ['sh', '-c', cmd]);
    return { ...r, ms: Date.now() - t0 };
  };
  /** The nat rule for this cluster IP:port is in the kernel (so a request to it cannot leave the host). */
  const proxied = (ip: string, port: number) =>
    until(`rules for ${ip}:${port}`, async () => ourRules().some((l) => l.startsWith(`-A ${PREFIX}-SERVICES -d ${ip}/32`) && l.includes(`--dport ${port} `)), 10_000);
  const clusterIP = async (name: string) => (await getSvc(name)).spec.clusterIP as string;
  const webPod = (name: string, labels: Record<string, string>) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'main',
          image: TEST_IMAGE,
          // Serves its own host name (the pod name); ready while /tmp/ready exists.
          command: ['sh', '-c', 'mkdir -p /www && hostname > /www/index.html && touch /tmp/ready && exec httpd -f -p 8080 -h /www'],
          ports: [{ name: 'http', containerPort: 8080 }],
          readinessProbe: { exec: { command: ['test', '-f', '/tmp/ready'] }, periodSeconds: 1, failureThreshold: 1, successThreshold: 1 },
        },
      ],
    },
  });
  const service = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name }, spec });

  beforeAll(async () => {
    udpDir = mkdtempSync(join(tmpdir(), `skiff-proxy-udp-${PID}-`));
    writeFileSync(join(udpDir, 'udpecho.c'), UDP_ECHO_C);
    execFileSync('gcc', ['-static', '-O2', '-o', join(udpDir, 'udpecho'), join(udpDir, 'udpecho.c')]);
    c = await startTestCluster({ agents: 1, requireAgents: true, agentOptions: AGENT });
    for (const n of ['web-0', 'web-1', 'web-2']) await apply(webPod(n, { app: 'web' }));
    await apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'client' },
      spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: TEST_IMAGE, command: ['sleep', '100000'] }] },
    });
    await apply(service('web', { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] }));
    await until('three ready web endpoints', async () => (await readyIPs('web')).length === 3, 60_000);
    await until('client running', async () => (await getPod('client')).status?.phase === 'Running', 30_000);
  }, 120_000);

  afterAll(async () => {
    for (const a of c?.agents ?? []) await a.close({ removePods: true });
    // The agent may have been closed by a test already (pods left running): remove what is left of ours.
    const left = await engine.listContainers({ all: true, filters: { label: [`${LABELS.node}=${NODE_NAME}`] } });
    await Promise.all(left.map((x) => engine.getContainer(x.Id).remove({ force: true }).catch(() => {})));
    if (!cleaned) await cleanupProxyRules(PREFIX).catch(() => {});
    await c?.destroy();
    await engine.getNetwork(NETWORK).remove().catch(() => {});
    if (udpDir) rmSync(udpDir, { recursive: true, force: true });
  }, 60_000);

  it('a client pod reaches a backend through the cluster IP (named targetPort), spread over all three', async () => {
    const ip = await clusterIP('web');
    expect(ip).toMatch(/^10\.96\./);
    await proxied(ip, 80);
    const one = await execIn('client', `timeout 5 wget -qO- http://${ip}:80/`);
    expect(one.code).toBe(0);
    expect(one.stdout.trim()).toMatch(/^web-[012]$/);
    const many = await execIn('client', `for i in $(seq 30); do timeout 5 wget -qO- http://${ip}/ || echo FAIL; done`);
    const seen = many.stdout.trim().split('\n');
    expect(seen).toHaveLength(30);
    expect(seen).not.toContain('FAIL');
    expect(new Set(seen)).toEqual(new Set(['web-0', 'web-1', 'web-2']));
    // From the host as well (not SNATed: the pod answers the host's address through the bridge and conntrack).
    expect(await getOnNewConnection(ip, 80)).toMatch(/^web-[012]$/);
    // And by name, as a user writes it: the agent's cluster DNS gives the VIP, the proxy a backend.
    const byName = await execIn('client', 'timeout 5 wget -qO- http://web.default.svc.cluster.local:80/ && timeout 5 wget -qO- http://web/');
    expect(byName.stderr).toBe('');
    expect(byName.stdout.trim().split('\n')).toEqual([expect.stringMatching(/^web-[012]$/), expect.stringMatching(/^web-[012]$/)]);
  }, 60_000);

  it('hairpin: a backend reaching the service through the cluster IP also reaches itself', async () => {
    const ip = await clusterIP('web');
    const r = await execIn('web-0', `for i in $(seq 25); do timeout 5 wget -qO- http://${ip}/ || echo FAIL; done`);
    const seen = r.stdout.trim().split('\n');
    expect(seen).toHaveLength(25);
    expect(seen).not.toContain('FAIL');
    expect(seen).toContain('web-0'); // P(never itself in 25) = (2/3)^25 ≈ 0.004%
    // And promptly: a frame the bridge would not hairpin is dropped, and each retransmitted SYN costs 1 s.
    expect(r.ms).toBeLessThan(4000);
  }, 60_000);

  it('ClientIP session affinity keeps every request of one client on one backend', async () => {
    await apply(service('sticky', { selector: { app: 'web' }, sessionAffinity: 'ClientIP', ports: [{ port: 80, targetPort: 8080 }] }));
    const ip = await clusterIP('sticky');
    await until('sticky endpoints', async () => (await readyIPs('sticky')).length === 3);
    await proxied(ip, 80);
    // The Service's rule can be in the kernel before its backends are (the agent sees the Endpoints a
    // moment after the API has them): wait for a first answer, which also pins this client to a backend.
    let first = '';
    await until('a first answer through the sticky service', async () => {
      first = (await execIn('client', `timeout 5 wget -qO- http://${ip}/ || echo FAIL`)).stdout.trim();
      return first !== 'FAIL';
    });
    expect(first).toMatch(/^web-[012]$/);
    const r = await execIn('client', `for i in $(seq 15); do timeout 5 wget -qO- http://${ip}/ || echo FAIL; done`);
    const seen = r.stdout.trim().split('\n');
    expect(seen).toEqual(Array(15).fill(first));
    const rules = ourRules().join('\n');
    expect(rules).toContain('--rcheck --seconds 10800 --reap');
  }, 60_000);

  it('NodePort: reachable from the host at nodeIP:nodePort', async () => {
    await apply(service('web-np', { type: 'NodePort', selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] }));
    const s = await getSvc('web-np');
    const nodePort: number = s.spec.ports[0].nodePort;
    expect(nodePort).toBeGreaterThanOrEqual(30000);
    const node = (await c.kubectl(['get', 'node', NODE_NAME, '-o', 'json'])).stdout;
    const nodeIP: string = JSON.parse(node).status.addresses.find((a: any) => a.type === 'InternalIP').address;
    await until('node port rule', async () => ourRules().some((l) => l.startsWith(`-A ${PREFIX}-NODEPORTS`) && l.includes(`--dport ${nodePort} `)), 10_000);
    await until('web-np endpoints', async () => (await readyIPs('web-np')).length === 3);
    const seen = new Set<string>();
    for (let i = 0; i < 15; i++) seen.add(await getOnNewConnection(nodeIP, nodePort));
    expect([...seen].every((h) => /^web-[012]$/.test(h))).toBe(true);
    expect(seen.size).toBeGreaterThan(1);
  }, 60_000);

  /** A pod answering UDP on 5353 (port name dns) with its own name, from the static udpecho built in beforeAll. */
  const udpEchoPod = (name: string, app: string) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app } },
    spec: {
      terminationGracePeriodSeconds: 1,
      volumes: [{ name: 'bin', hostPath: { path: udpDir } }],
      containers: [{ name: 'main', image: TEST_IMAGE, command: ['/opt/udp/udpecho', '5353'], volumeMounts: [{ name: 'bin', mountPath: '/opt/udp' }], ports: [{ name: 'dns', containerPort: 5353, protocol: 'UDP' }] }],
    },
  });

  it('UDP: a UDP service answers through its cluster IP', async () => {
    await apply(udpEchoPod('udp', 'udp'));
    await apply(service('udp', { selector: { app: 'udp' }, ports: [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: 'dns' }] }));
    await until('udp endpoint', async () => (await readyIPs('udp')).length === 1, 60_000);
    const ip = await clusterIP('udp');
    await until('udp rule', async () => ourRules().some((l) => l.includes(`-d ${ip}/32 -p udp`) && l.includes(`-j ${PREFIX}-SVC-`)), 10_000);
    const answer = await until('a UDP answer', () => udpAsk(ip, 53), 15_000);
    expect(answer).toBe('udp');

    // One client socket (one source port: one conntrack flow) keeps asking while the Service moves to
    // another backend. The old flow's conntrack entry is deleted with the endpoint, so the next datagram
    // goes to the new backend even though the old one still answers.
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '0.0.0.0', () => r()));
    try {
      expect(await udpAskOn(sock, ip, 53)).toBe('udp');
      await apply(udpEchoPod('udp2', 'udp-b'));
      await until('udp2 running', async () => (await getPod('udp2')).status?.phase === 'Running', 30_000);
      expect(await udpAskOn(sock, ip, 53)).toBe('udp'); // the flow is pinned to its backend
      await c.kubectl(['patch', 'svc', 'udp', '-p', JSON.stringify({ spec: { selector: { app: 'udp-b' } } })]);
      await until('the service moved to udp2', async () => (await readyIPs('udp')).length === 1 && (await readyIPs('udp'))[0] === (await getPod('udp2')).status.podIP, 30_000);
      const moved = await until('the same flow answered by udp2', async () => (await udpAskOn(sock, ip, 53)) === 'udp2' && 'udp2', 5_000);
      expect(moved).toBe('udp2');
    } finally {
      sock.close();
    }
  }, 90_000);

  it('a service without endpoints is refused at once (not a timeout), from a pod and from the host', async () => {
    await apply(service('nothing', { selector: { app: 'nothing' }, ports: [{ port: 80, targetPort: 8080 }] }));
    const ip = await clusterIP('nothing');
    await until('reject rule', async () => ourRules().some((l) => l.startsWith(`-A ${PREFIX}-SERVICES -d ${ip}/32 -p tcp`) && l.includes('REJECT')), 10_000);
    const r = await execIn('client', `timeout 5 wget -qO- http://${ip}/; echo code=$?`);
    expect(r.stdout).toContain('code=1'); // wget's error, not timeout's 143
    expect(r.stderr).toMatch(/refused/i);
    expect(r.ms).toBeLessThan(3000);
    const t0 = Date.now();
    const err = await new Promise<NodeJS.ErrnoException>((resolve) => {
      const s = net.connect({ host: ip, port: 80 }, () => resolve(Object.assign(new Error('connected'), { code: 'CONNECTED' })));
      s.on('error', resolve);
      s.setTimeout(5000, () => s.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    });
    expect(err.code).toBe('ECONNREFUSED');
    expect(Date.now() - t0).toBeLessThan(1000);
  }, 60_000);

  it('a backend that turns not-ready stops getting new connections within about 1 s of its Endpoints change', async () => {
    const ip = await clusterIP('web');
    const victimIP = (await getPod('web-2')).status.podIP as string;
    // Watch the Endpoints; note when web-2 leaves the ready addresses.
    const ctl = new AbortController();
    let changedAt = 0;
    const watching = (async () => {
      for await (const ev of c.api.registry.watch(epRes, 'default', {}, ctl.signal)) {
        const ep = ev.object as KubeObject;
        if (ep.metadata?.name !== 'web') continue;
        const ready = (ep.subsets ?? []).flatMap((s: any) => (s.addresses ?? []).map((a: any) => a.ip));
        if (!ready.includes(victimIP) && !changedAt) changedAt = Date.now();
      }
    })().catch(() => {});
    // Requests from the host, one new connection each, as fast as they go.
    const hits: Array<{ at: number; who: string }> = [];
    let loop = true;
    const requester = (async () => {
      while (loop) {
        const who = await getOnNewConnection(ip, 80, 5000).catch((e: Error) => `error:${e.message}`);
        hits.push({ at: Date.now(), who });
      }
    })();
    await until('web-2 hit before the change', async () => hits.some((h) => h.who === 'web-2'), 10_000);
    const syncsBefore = syncs.length;
    const rm = await execIn('web-2', 'rm /tmp/ready');
    expect(rm.code).toBe(0);
    await until('web-2 out of the ready endpoints', async () => changedAt > 0, 15_000);
    await new Promise((r) => setTimeout(r, 2500));
    loop = false;
    await requester;
    ctl.abort();
    await watching;
    const lastToVictim = Math.max(...hits.filter((h) => h.who === 'web-2').map((h) => h.at));
    const after = hits.filter((h) => h.at > changedAt + 1000);
    expect(after.length).toBeGreaterThan(10);
    expect(after.every((h) => /^web-[01]$/.test(h.who))).toBe(true); // no errors either
    expect(lastToVictim - changedAt).toBeLessThan(1000);
    // The proxy applied (only) what changed.
    const applied = syncs.slice(syncsBefore).filter((s) => s.applied);
    expect(applied.length).toBeGreaterThan(0);
    console.log(`not-ready: last request to web-2 ${lastToVictim - changedAt} ms after the Endpoints change; ${hits.length} requests; apply ${applied.map((s) => `${s.bytes} B in ${s.applyMs.toFixed(0)} ms`).join(', ')}`);
  }, 60_000);

  it('the periodic check rewrites nothing while the kernel matches, and repairs a chain someone flushed', async () => {
    const ip = await clusterIP('web');
    // A periodic check (every 3 s here) with nothing drifted: no full sync, nothing written.
    const n = syncs.length;
    await new Promise((r) => setTimeout(r, 3500));
    expect(syncs.slice(n).length).toBeGreaterThan(0);
    expect(syncs.slice(n).every((s) => !s.full && !s.applied)).toBe(true);
    // Someone flushes the service's chain: the next check notices and rewrites every chain.
    const svcChain = ourRules().find((l) => l.startsWith(`-A ${PREFIX}-SERVICES -d ${ip}/32`))!.replace(/.* -j (\S+)$/, '$1');
    execFileSync('iptables', ['-w', '5', '-t', 'nat', '-F', svcChain]);
    expect(ourRules().some((l) => l.startsWith(`-A ${svcChain} `))).toBe(false);
    await until('the flushed chain restored', async () => ourRules().filter((l) => l.startsWith(`-A ${svcChain} `)).length >= 3, 10_000);
    // The kernel has the rules before the proxy reports its sync: wait for the report too, or it lands
    // in the next test's window (which asserts that nothing is applied) and fails it.
    await until('the repairing full sync reported', async () => syncs.slice(n).some((s) => s.full && s.applied), 5_000);
    const r = await execIn('client', `timeout 5 wget -qO- http://${ip}/`);
    expect(r.stdout.trim()).toMatch(/^web-[012]$/);
  }, 30_000);

  it('writes nothing when a change does not change the rules', async () => {
    const n = syncs.length;
    await c.kubectl(['annotate', 'svc', 'web', `touched=${Date.now()}`]);
    await until('a sync after the annotation', async () => syncs.length > n, 5_000);
    expect(syncs.slice(n).every((s) => !s.applied && s.bytes === 0)).toBe(true);
  }, 30_000);

  it('service traffic keeps flowing with the agent stopped; cleanup removes every chain and jump it made', async () => {
    const ip = await clusterIP('web');
    const agent = c.agents[0]!;
    await agent.close(); // no cleanup: the kernel keeps proxying
    const r = await execIn('client', `timeout 5 wget -qO- http://${ip}/`);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^web-[01]$/);
    expect(ourRules().length).toBeGreaterThan(10);
    const dockerBefore = iptablesSave().split('\n').filter((l) => /DOCKER/.test(l));
    await cleanupProxyRules(PREFIX);
    cleaned = true;
    expect(ourRules()).toEqual([]);
    expect(await listChains(PREFIX)).toEqual({ nat: [], filter: [] });
    // Docker's own chains are as they were.
    expect(iptablesSave().split('\n').filter((l) => /DOCKER/.test(l))).toEqual(dockerBefore);
  }, 60_000);
});

/** Sends one datagram from a given socket and resolves with the answer (undefined after 1 s). */
function udpAskOn(s: dgram.Socket, ip: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const onMessage = (m: Buffer) => done(m.toString().trim());
    const done = (v: string | undefined) => {
      clearTimeout(t);
      s.off('message', onMessage);
      resolve(v);
    };
    const t = setTimeout(() => done(undefined), 1000);
    s.on('message', onMessage);
    s.send('hello', port, ip);
  });
}

/** Sends one datagram to ip:port and resolves with the answer (undefined after 1 s). */
function udpAsk(ip: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const done = (v: string | undefined) => {
      clearTimeout(t);
      s.close();
      resolve(v);
    };
    const t = setTimeout(() => done(undefined), 1000);
    s.on('message', (m) => done(m.toString().trim()));
    s.on('error', () => done(undefined));
    s.send('hello', port, ip);
  });
}
