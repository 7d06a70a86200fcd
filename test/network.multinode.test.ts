// The pod network across nodes, on a local multi-node topology (test/support/netns.ts): two nodes, each
// a network namespace with its own Docker Engine, joined by a root-namespace bridge that plays the VPC
// and its router. Each node runs a real agent (in this process, talking to its node's engine by socket,
// its iptables work done in its node's namespace) with pod subnet 10.245.{1,2}.0/24 of cluster range
// 10.245.0.0/16, registering with a real local cluster. The VPC router's routes come from the route
// controller's HostRouteProvider, computed from the Nodes as registered (podCIDR via InternalIP).
//
// Proven with real containers: a pod on node B reaches a pod on node A by pod IP, and A's server sees
// B's pod IP (no NAT between pods); without the agent's FORWARD rules Docker's DROP policy stops it;
// pods reach an address outside the pod range (the router, 10.199.0.1) masqueraded to their node's
// address; and a Service on A's pod is reached from B's pod by cluster IP (B's proxy, in B's namespace),
// still with the pod's own address.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type Docker from 'dockerode';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { desiredRoutes, HostRouteProvider, type Route } from '../lambdas/controllers/routes.ts';
import { startLocalAgents } from '../lambdas/local/agents.ts';
import type { Agent } from '../node-agent/agent.ts';
import { ensureBusyboxImage } from '../node-agent/images.ts';
import { cleanupPodNetworkRules, ensurePodNetworkRules, podNetworkChains, podNetworkRules } from '../node-agent/pod-network.ts';
import { LABELS } from '../node-agent/runtime.ts';
import { execInContainer, TEST_IMAGE } from './support/docker.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { netnsTopologySupported, startTopology, type NetnsNode, type Topology } from './support/netns.ts';

const PID = process.pid;
const CLUSTER_CIDR = '10.245.0.0/16';
const SUBNETS = ['10.245.1.0/24', '10.245.2.0/24'];
const NETWORK = 'skiff-pods';
const podsRes = findResource('', 'v1', 'pods')!;
const svcRes = findResource('', 'v1', 'services')!;
const epRes = findResource('', 'v1', 'endpoints')!;

/** The who page's text, the peer written as an IPv4 address (busybox httpd writes `[::ffff:a.b.c.d]`). */
const who = (out: string) => out.trim().replace(/\[::ffff:([\d.]+)\]/, '$1');

async function until(what: string, ok: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await ok().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('pod network rules (pure)', () => {
  it('accepts forwarded traffic to this node\'s pods and from them to the cluster range; masquerades only what leaves the range', () => {
    const r = podNetworkRules({ podCIDR: '10.245.1.0/24', clusterCIDR: CLUSTER_CIDR });
    expect(r.filter).toEqual([
      '-d 10.245.1.0/24 -m comment --comment "skiff: to pods of this node" -j ACCEPT',
      '-s 10.245.1.0/24 -d 10.245.0.0/16 -m comment --comment "skiff: pods of this node to pods" -j ACCEPT',
    ]);
    expect(r.nat).toEqual([
      '! -s 10.245.1.0/24 -j RETURN',
      '-d 10.245.1.0/24 -m comment --comment "skiff: pod to pod on this node, not NATed" -j RETURN',
      '-d 10.245.0.0/16 -m comment --comment "skiff: pod to pod across nodes, not NATed" -j RETURN',
      '-m comment --comment "skiff: pods to outside the cluster pod range" -j MASQUERADE',
    ]);
    // One pair of chains per pod CIDR, and never under the service proxy's prefix (its syncs own those).
    const a = podNetworkChains('10.245.1.0/24');
    expect(a.filter).toMatch(/^SKIFFNET-FWD-[0-9A-F]{8}$/);
    expect(a.nat).toMatch(/^SKIFFNET-NAT-[0-9A-F]{8}$/);
    expect(podNetworkChains('10.245.2.0/24').filter).not.toBe(a.filter);
    return expect(ensurePodNetworkRules({ podCIDR: '10.245.1.0/24', clusterCIDR: CLUSTER_CIDR, chainPrefix: 'SKIFF' })).rejects.toThrow(/differ/);
  });
});

const supported = netnsTopologySupported();

describe.runIf(supported)('pod network across two nodes (netns topology, real engines)', () => {
  let topo: Topology;
  let c: TestCluster;
  const agents: Agent[] = [];
  // Its own route protocol: a route controller on this host (proto 246) neither sees nor removes these.
  const routes = new HostRouteProvider({ proto: 245 });
  let made: Route[] = [];
  let outside: http.Server;
  let outsidePort = 0;
  const nodeName = (i: number) => `sk${PID}${'ab'[i]}`;

  const nsRun = (n: NetnsNode, cmd: string) => execFileSync('nsenter', [`--net=/run/netns/${n.netns}`, 'sh', '-c', cmd], { encoding: 'utf8' });
  const apply = async (doc: object) => {
    const r = await c.kubectl(['apply', '-f', '-'], JSON.stringify(doc));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  };
  const getPod = (name: string) => c.api.registry.get(podsRes, 'default', name) as Promise<KubeObject>;
  const podIP = async (name: string) => {
    await until(`pod ${name} running with an IP`, async () => {
      const p = await getPod(name);
      return p.status?.phase === 'Running' && !!p.status?.podIP;
    });
    return (await getPod(name)).status.podIP as string;
  };
  const execIn = async (node: number, pod: string, cmd: string): Promise<{ code: number; stdout: string; stderr: string }> => {
    const engine: Docker = topo.nodes[node]!.docker;
    const uid = (await getPod(pod)).metadata.uid;
    const list = await engine.listContainers({ filters: { label: [`${LABELS.node}=${nodeName(node)}`, `${LABELS.uid}=${uid}`, `${LABELS.container}=main`] } });
    return execInContainer(engine, list[0]!.Id, ['sh', '-c', cmd]);
  };
  // A pod pinned to a node. `web` serves /cgi-bin/who: the peer address its httpd saw, and its host name.
  const pod = (name: string, node: number, web: boolean) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app: name } },
    spec: {
      nodeName: nodeName(node),
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'main',
          image: TEST_IMAGE,
          command: web
            ? [
                'sh',
                '-c',
                'mkdir -p /www/cgi-bin && printf \'#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho "peer=$REMOTE_ADDR host=$(hostname)"\\n\' > /www/cgi-bin/who && chmod +x /www/cgi-bin/who && exec httpd -f -p 8080 -h /www',
              ]
            : ['sleep', '3600'],
          ...(web ? { ports: [{ name: 'http', containerPort: 8080 }] } : {}),
        },
      ],
    },
  });

  beforeAll(async () => {
    outside = http.createServer((req, res) => res.end(`outside saw ${req.socket.remoteAddress?.replace(/^::ffff:/, '')}`));
    topo = await startTopology(2);
    // The router's test server listens on the VPC address only.
    await new Promise<void>((r) => outside.listen(0, topo.gateway, r));
    outsidePort = (outside.address() as AddressInfo).port;
    await Promise.all(topo.nodes.map((n) => ensureBusyboxImage(n.docker, TEST_IMAGE)));
    c = await startTestCluster();
    for (const [i, n] of topo.nodes.entries()) {
      const [agent] = await startLocalAgents({
        count: 1,
        backend: c.backend,
        server: c.url,
        caCert: c.caCert,
        dataDir: c.dataDir,
        agent: {
          nodeName: nodeName(i),
          docker: n.docker,
          network: NETWORK,
          podSubnet: SUBNETS[i],
          address: n.address,
          netns: n.netns,
          podNetworkRules: { clusterCIDR: CLUSTER_CIDR },
          dns: false,
          // Inside the node's own namespace the proxy's default chains collide with nobody.
          proxy: { serviceCIDR: '10.96.0.0/12' },
          backoffBaseMs: 500,
          heartbeatMs: 2000,
        },
      });
      agents.push(agent!);
    }
    // The VPC router's routes, as the route controller computes them from the registered Nodes.
    const nodes = (await c.api.registry.list(findResource('', 'v1', 'nodes')!, undefined, {})) as unknown as { items: KubeObject[] };
    const mine = nodes.items.filter((x) => x.metadata.name?.startsWith(`sk${PID}`));
    made = [...desiredRoutes(mine, routes).values()].map(({ destinationCidr, target }) => ({ destinationCidr, target }));
    for (const r of made) await routes.create(r);
  }, 180_000);

  afterAll(async () => {
    for (const r of made) await routes.delete(r).catch(() => {});
    for (const a of agents) await a.close({ removePods: true }).catch(() => {});
    await c?.destroy();
    await topo?.destroy();
    outside?.close();
  }, 120_000);

  it('registers each node with its pod subnet as podCIDR, and the router routes each to its node', async () => {
    expect(made.sort((a, b) => a.destinationCidr.localeCompare(b.destinationCidr))).toEqual([
      { destinationCidr: SUBNETS[0], target: topo.nodes[0]!.address },
      { destinationCidr: SUBNETS[1], target: topo.nodes[1]!.address },
    ]);
    const table = execFileSync('ip', ['-4', 'route', 'show', 'proto', '245'], { encoding: 'utf8' });
    expect(table).toContain(`${SUBNETS[0]} via ${topo.nodes[0]!.address} dev ${topo.bridge}`);
    expect(table).toContain(`${SUBNETS[1]} via ${topo.nodes[1]!.address} dev ${topo.bridge}`);
    // The agents made their pod networks without Docker's masquerade; Docker's FORWARD policy is DROP.
    for (const [i, n] of topo.nodes.entries()) {
      const net = await n.docker.getNetwork(NETWORK).inspect();
      expect(net.Options?.['com.docker.network.bridge.enable_ip_masquerade']).toBe('false');
      const nat = nsRun(n, 'iptables -t nat -S POSTROUTING');
      expect(nat).not.toContain(`-s ${SUBNETS[i]} ! -o`);
      expect(nat).toContain(`-j ${podNetworkChains(SUBNETS[i]!).nat}`);
      expect(nsRun(n, 'iptables -S FORWARD')).toMatch(/^-P FORWARD DROP$/m);
    }
  });

  it('a pod on node B reaches a pod on node A by pod IP, and A sees B\'s pod IP (no NAT between pods)', async () => {
    await apply(pod('web', 0, true));
    await apply(pod('client', 1, false));
    const [webIP, clientIP] = [await podIP('web'), await podIP('client')];
    expect(webIP.startsWith('10.245.1.')).toBe(true);
    expect(clientIP.startsWith('10.245.2.')).toBe(true);
    let r = { code: -1, stdout: '', stderr: '' };
    await until('web reachable from client', async () => {
      r = await execIn(1, 'client', `timeout 5 wget -qO- http://${webIP}:8080/cgi-bin/who`);
      return r.code === 0;
    }, 30_000).catch(() => {});
    expect(r.stderr).toBe('');
    expect(who(r.stdout)).toBe(`peer=${clientIP} host=web`);
  }, 120_000);

  it('without the agent\'s FORWARD rules, Docker drops the connection; the agent\'s rules restore it', async () => {
    const webIP = await podIP('web');
    const a = topo.nodes[0]!;
    await cleanupPodNetworkRules({ podCIDR: SUBNETS[0]!, netns: a.netns });
    try {
      expect(nsRun(a, 'iptables-save')).not.toContain('SKIFFNET-');
      const blocked = await execIn(1, 'client', `timeout 3 wget -qO- http://${webIP}:8080/cgi-bin/who`);
      expect(blocked.code).not.toBe(0);
    } finally {
      await ensurePodNetworkRules({ podCIDR: SUBNETS[0]!, clusterCIDR: CLUSTER_CIDR, netns: a.netns });
    }
    const again = await execIn(1, 'client', `timeout 5 wget -qO- http://${webIP}:8080/cgi-bin/who`);
    expect(who(again.stdout)).toBe(`peer=${await podIP('client')} host=web`);
    // Idempotent: ensuring again adds no second jump.
    await ensurePodNetworkRules({ podCIDR: SUBNETS[0]!, clusterCIDR: CLUSTER_CIDR, netns: a.netns });
    const jumps = nsRun(a, 'iptables -S FORWARD').split('\n').filter((l) => l.includes(podNetworkChains(SUBNETS[0]!).filter));
    expect(jumps).toHaveLength(1);
  }, 60_000);

  it('pods reach an address outside the pod range, masqueraded to their node\'s address', async () => {
    for (const [i, name] of [[0, 'web'], [1, 'client']] as const) {
      const r = await execIn(i, name, `timeout 5 wget -qO- http://${topo.gateway}:${outsidePort}/`);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe(`outside saw ${topo.nodes[i]!.address}`);
    }
  }, 60_000);

  it('a Service on node A\'s pod is reached from node B\'s pod by cluster IP, with the pod\'s own address', async () => {
    await apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] } });
    const webIP = await podIP('web');
    await until('endpoints of web', async () => {
      const ep = (await c.api.registry.get(epRes, 'default', 'web')) as KubeObject;
      return (ep.subsets ?? []).some((s: any) => (s.addresses ?? []).some((x: any) => x.ip === webIP));
    });
    const vip = ((await c.api.registry.get(svcRes, 'default', 'web')) as KubeObject).spec.clusterIP as string;
    // B's proxy has the rule (in B's namespace) before any packet goes to the VIP.
    await until('proxy rules on node B', async () => nsRun(topo.nodes[1]!, 'iptables-save -t nat').includes(`-A SKIFF-SERVICES -d ${vip}/32`), 15_000);
    const r = await execIn(1, 'client', `timeout 5 wget -qO- http://${vip}/cgi-bin/who`);
    expect(r.stderr).toBe('');
    expect(who(r.stdout)).toBe(`peer=${await podIP('client')} host=web`);
  }, 90_000);
});
