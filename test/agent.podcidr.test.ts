// A node in a cluster with a pod range (node IPAM on, the agent told the range): its pod network is
// built for the block node IPAM assigned to it, so nodes never share addresses, and pods get their
// IPs from that block. Real Docker Engine, real controllers.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Docker from 'dockerode';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { containsIPv4, parseIPv4CIDR } from '../lambdas/machinery/cidr.ts';
import { requireDocker, TEST_IMAGE } from './support/docker.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { until } from './support/until.ts';

const docker = await requireDocker();
const RANGE = '10.247.0.0/16';
const NODE = `podcidr-node-${process.pid}`;
const NETWORK = `skiff-podcidr-${process.pid}`;
const pods = findResource('', 'v1', 'pods')!;

describe.skipIf(!docker)('pod CIDR from node IPAM', () => {
  let c: TestCluster;
  const engine = docker as Docker;

  beforeAll(async () => {
    await engine.getNetwork(NETWORK).remove().catch(() => {});
    c = await startTestCluster({
      clusterCIDR: RANGE,
      agents: 1,
      requireAgents: true,
      agentOptions: { nodeName: NODE, network: NETWORK, podNetworkRules: { clusterCIDR: RANGE }, dns: false, heartbeatMs: 2000 },
    });
  }, 90_000);
  afterAll(async () => {
    for (const a of c?.agents ?? []) await a.close({ removePods: true });
    await c?.destroy();
    await engine.getNetwork(NETWORK).remove().catch(() => {});
  });

  it("builds the node's pod network for the block node IPAM assigned, and pods take their IPs from it", async () => {
    const node = JSON.parse((await c.kubectl(['get', 'node', NODE, '-o', 'json'])).stdout);
    const block = parseIPv4CIDR(node.spec.podCIDR)!;
    expect(block.bits).toBe(24);
    expect(containsIPv4(parseIPv4CIDR(RANGE)!, node.spec.podCIDR.split('/')[0])).toBe(true);
    const net = await engine.getNetwork(NETWORK).inspect();
    expect(net.IPAM?.Config?.[0]?.Subnet).toBe(node.spec.podCIDR);
    // Docker's own masquerade is off: the agent's rules NAT only what leaves the cluster's range.
    expect(net.Options?.['com.docker.network.bridge.enable_ip_masquerade']).toBe('false');

    await c.kubectl(['run', 'inblock', '--image', TEST_IMAGE, '--', 'sleep', '3600']);
    const pod = await until('pod running with an IP', async () => {
      const p = (await c.api.registry.get(pods, 'default', 'inblock').catch(() => undefined)) as KubeObject | undefined;
      return p?.status?.phase === 'Running' && p.status.podIP && p;
    });
    expect(containsIPv4(block, pod.status.podIP)).toBe(true);
    await c.kubectl(['delete', 'pod', 'inblock', '--grace-period=1', '--wait=false']);
  }, 60_000);
});
