// The route controller (lambdas/controllers/routes.ts) with its two real providers:
// - Ec2RouteProvider against moto's EC2 (the moto server the DynamoDB harness starts serves EC2 on the
//   same endpoint): a VPC, subnet, route table and instances made with RunInstances; Nodes whose
//   providerIDs name those instances get routes in DescribeRouteTables, source/dest check goes off,
//   deleted nodes lose their routes, a moved target is a ReplaceRoute, foreign routes stay.
// - HostRouteProvider against Linux `ip route` inside a throwaway network namespace
//   (skiff-rt-<pid>), so the host's own routes are never touched.
// Nodes live in a SQLite store: the controller only lists them, the storage backends are covered by
// the IPAM suite. One test runs node IPAM and routes together on the live change feed.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateRouteCommand,
  CreateRouteTableCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  DescribeInstancesCommand,
  DescribeRouteTablesCommand,
  EC2Client,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { runControllers } from '../lambdas/local/controllers.ts';
import type { ControllerContext } from '../lambdas/controllers/controller.ts';
import { createNodeIpamController } from '../lambdas/controllers/nodeipam.ts';
import { createRouteController, Ec2RouteProvider, HostRouteProvider, instanceIdFromProviderID, routeControllerFromEnv, ROUTES_KEY } from '../lambdas/controllers/routes.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { SqliteBackend } from '../lambdas/storage/sqlite.ts';
import { dynamoTestEndpoint } from './support/dynamodb.ts';
import { until } from './support/until.ts';

const nodesRes = findResource('', 'v1', 'nodes')!;
const nsRes = findResource('', 'v1', 'namespaces')!;
const eventsRes = findResource('', 'v1', 'events')!;

const dir = mkdtempSync(join(tmpdir(), 'skiff-routes-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let dbNo = 0;
async function newCtx(): Promise<ControllerContext> {
  const ctx = new ApiServer({ backend: new SqliteBackend(join(dir, `r${dbNo++}.db`)) }).controllerContext();
  await ctx.registry.create(nsRes, undefined, { metadata: { name: 'default' } });
  return ctx;
}

function node(name: string, o: { podCIDR?: string; providerID?: string; internalIP?: string }): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name },
    spec: { ...(o.podCIDR ? { podCIDR: o.podCIDR, podCIDRs: [o.podCIDR] } : {}), ...(o.providerID ? { providerID: o.providerID } : {}) },
    ...(o.internalIP ? { status: { addresses: [{ type: 'InternalIP', address: o.internalIP }] } } : {}),
  };
}

// ---- EC2 (moto) ----

// A real AWS endpoint for DynamoDB must not make this suite launch instances there: with
// SKIFF_DYNAMODB_ENDPOINT set, EC2 is only used when SKIFF_EC2_ENDPOINT names one too.
async function ec2Endpoint(): Promise<{ endpoint: string; stop(): Promise<void> } | undefined> {
  if (process.env.SKIFF_EC2_ENDPOINT) return { endpoint: process.env.SKIFF_EC2_ENDPOINT, stop: async () => {} };
  if (process.env.SKIFF_DYNAMODB_ENDPOINT) {
    const msg = 'SKIFF_DYNAMODB_ENDPOINT is set but SKIFF_EC2_ENDPOINT is not: EC2 route tests SKIPPED';
    if (process.env.CI === 'true') throw new Error(msg);
    console.warn(`\n!!!!!!!!!! ${msg}\n`);
    return undefined;
  }
  return dynamoTestEndpoint(); // moto: serves EC2 as well (undefined, loudly, when not installed)
}

const ec2 = await ec2Endpoint();

describe.skipIf(!ec2)('route controller with Ec2RouteProvider (moto EC2)', () => {
  let client: EC2Client;
  let routeTableId: string;
  let instances: string[];
  const calls: string[] = [];

  beforeAll(async () => {
    client = new EC2Client({ endpoint: ec2!.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    // Observe which EC2 actions the provider sends (the real client, a recording middleware).
    client.middlewareStack.add((next, context) => async (args) => {
      calls.push(String(context.commandName).replace(/Command$/, ''));
      return next(args);
    }, { step: 'initialize', name: 'recordCalls' });
    const vpc = await client.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16' }));
    const vpcId = vpc.Vpc!.VpcId!;
    const subnet = await client.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.0.1.0/24', AvailabilityZone: 'us-east-1a' }));
    routeTableId = (await client.send(new CreateRouteTableCommand({ VpcId: vpcId }))).RouteTable!.RouteTableId!;
    const run = await client.send(
      new RunInstancesCommand({ ImageId: 'ami-12c6146b', InstanceType: 't3.micro', MinCount: 4, MaxCount: 4, SubnetId: subnet.Subnet!.SubnetId! }),
    );
    instances = run.Instances!.map((i) => i.InstanceId!);
    expect(instances).toHaveLength(4);
  });
  afterAll(async () => {
    client?.destroy();
    await ec2?.stop();
  });

  const providerID = (i: number) => `aws:///us-east-1a/${instances[i]}`;
  async function tableRoutes(): Promise<Record<string, string>> {
    const t = (await client.send(new DescribeRouteTablesCommand({ RouteTableIds: [routeTableId] }))).RouteTables![0]!;
    const out: Record<string, string> = {};
    for (const r of t.Routes ?? []) if (r.DestinationCidrBlock) out[r.DestinationCidrBlock] = r.InstanceId ?? r.GatewayId ?? '';
    return out;
  }
  async function sourceDestCheck(id: string): Promise<boolean | undefined> {
    const d = await client.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    return d.Reservations![0]!.Instances![0]!.SourceDestCheck;
  }

  it('is configured from the environment in the cloud (SKIFF_ROUTE_TABLE_ID), and off without it', () => {
    expect(routeControllerFromEnv({})).toBeUndefined();
    expect(routeControllerFromEnv({ SKIFF_ROUTE_TABLE_ID: 'rtb-1', SKIFF_CLUSTER_CIDR: '10.250.0.0/16' })?.name).toBe('route-controller');
    expect(() => routeControllerFromEnv({ SKIFF_ROUTE_TABLE_ID: 'rtb-1', SKIFF_CLUSTER_CIDR: 'nonsense' })).toThrow(/clusterCIDR/);
  });

  it('parses providerIDs', () => {
    expect(instanceIdFromProviderID('aws:///us-east-1a/i-0123456789abcdef0')).toBe('i-0123456789abcdef0');
    expect(instanceIdFromProviderID('aws:///i-0abc')).toBe('i-0abc');
    expect(instanceIdFromProviderID('gce://p/z/i-0abc')).toBeUndefined();
    expect(instanceIdFromProviderID(undefined)).toBeUndefined();
  });

  it('routes each node\'s podCIDR to its instance, keeps foreign routes, replaces moved targets, removes deleted nodes', async () => {
    const ctx = await newCtx();
    const rc = createRouteController({ provider: new Ec2RouteProvider({ client, routeTableId, clusterCIDR: '10.244.0.0/16' }) });
    // Someone else's route (outside the pod range) and a stale route of ours (inside it, no such node).
    await client.send(new CreateRouteCommand({ RouteTableId: routeTableId, DestinationCidrBlock: '192.168.0.0/16', InstanceId: instances[3] }));
    await client.send(new CreateRouteCommand({ RouteTableId: routeTableId, DestinationCidrBlock: '10.244.50.0/24', InstanceId: instances[3] }));
    expect(await sourceDestCheck(instances[0]!)).toBe(true);
    await ctx.registry.create(nodesRes, undefined, node('n0', { podCIDR: '10.244.0.0/24', providerID: providerID(0) }));
    await ctx.registry.create(nodesRes, undefined, node('n1', { podCIDR: '10.244.1.0/24', providerID: providerID(1) }));
    // Not routable yet: no podCIDR, or no instance.
    await ctx.registry.create(nodesRes, undefined, node('nocidr', { providerID: providerID(2) }));
    await ctx.registry.create(nodesRes, undefined, node('noinstance', { podCIDR: '10.244.3.0/24' }));
    // A podCIDR outside the pod range the provider owns (given by hand): not routed, so not re-created forever.
    await ctx.registry.create(nodesRes, undefined, node('outside', { podCIDR: '10.64.0.0/24', providerID: providerID(3) }));
    await rc.reconcile(ROUTES_KEY, ctx);
    expect(await tableRoutes()).toEqual({
      '10.0.0.0/16': 'local',
      '192.168.0.0/16': instances[3],
      '10.244.0.0/24': instances[0],
      '10.244.1.0/24': instances[1],
    });
    expect(await sourceDestCheck(instances[0]!)).toBe(false);
    expect(await sourceDestCheck(instances[1]!)).toBe(false);
    expect(await sourceDestCheck(instances[2]!)).toBe(true);

    // Nothing changed: a redelivered event or a resync makes no writes.
    calls.length = 0;
    await rc.reconcile(ROUTES_KEY, ctx);
    await rc.reconcile(ROUTES_KEY, ctx);
    expect(calls).toEqual(['DescribeRouteTables', 'DescribeRouteTables']);

    // n0 replaced by a node on another instance with the same block: ReplaceRoute, not a second route.
    await ctx.registry.delete(nodesRes, undefined, 'n0');
    await ctx.registry.create(nodesRes, undefined, node('n0', { podCIDR: '10.244.0.0/24', providerID: providerID(2) }));
    calls.length = 0;
    await rc.reconcile(ROUTES_KEY, ctx);
    expect(calls).toContain('ReplaceRoute');
    expect(calls).not.toContain('DeleteRoute');
    expect((await tableRoutes())['10.244.0.0/24']).toBe(instances[2]);
    expect(await sourceDestCheck(instances[2]!)).toBe(false);

    // n1 re-created with another podCIDR: the old route goes, the new one comes.
    await ctx.registry.delete(nodesRes, undefined, 'n1');
    await ctx.registry.create(nodesRes, undefined, node('n1', { podCIDR: '10.244.7.0/24', providerID: providerID(1) }));
    await rc.reconcile(ROUTES_KEY, ctx);
    const after = await tableRoutes();
    expect(after['10.244.1.0/24']).toBeUndefined();
    expect(after['10.244.7.0/24']).toBe(instances[1]);

    // A node deleted: its route is removed; the foreign route is still there.
    await ctx.registry.delete(nodesRes, undefined, 'n1');
    await rc.reconcile(ROUTES_KEY, ctx);
    expect(await tableRoutes()).toEqual({ '10.0.0.0/16': 'local', '192.168.0.0/16': instances[3], '10.244.0.0/24': instances[2] });
  });

  it('a route EC2 refuses is a FailedToCreateRoute event and a failed reconcile; the others are made', async () => {
    const ctx = await newCtx();
    const rc = createRouteController({ provider: new Ec2RouteProvider({ client, routeTableId, clusterCIDR: '10.245.0.0/16' }) });
    await ctx.registry.create(nodesRes, undefined, node('bad', { podCIDR: '10.245.1.0/24', providerID: 'aws:///us-east-1a/i-00000000000000000' }));
    await ctx.registry.create(nodesRes, undefined, node('good', { podCIDR: '10.245.2.0/24', providerID: providerID(3) }));
    await expect(rc.reconcile(ROUTES_KEY, ctx)).rejects.toThrow(/create 10\.245\.1\.0\/24/);
    expect((await tableRoutes())['10.245.2.0/24']).toBe(instances[3]);
    const evs = (await ctx.registry.list(eventsRes, 'default')).items.filter((e) => e.involvedObject?.name === 'bad');
    expect(evs.map((e) => [e.type, e.reason])).toEqual([['Warning', 'FailedToCreateRoute']]);
  });

  it('with node IPAM on the live change feed: a new node gets a block, then a route to its instance', async () => {
    const ctx = await newCtx();
    const runner = runControllers(
      ctx,
      [createNodeIpamController({ clusterCIDR: '10.246.0.0/16' }), createRouteController({ provider: new Ec2RouteProvider({ client, routeTableId, clusterCIDR: '10.246.0.0/16' }) })],
      { resyncMs: 3_600_000 },
    );
    try {
      await ctx.registry.create(nodesRes, undefined, node('live0', { providerID: providerID(0) }));
      await ctx.registry.create(nodesRes, undefined, node('live1', { providerID: providerID(1) }));
      await until('two routes', async () => {
        const r = await tableRoutes();
        return r['10.246.0.0/24'] !== undefined && r['10.246.1.0/24'] !== undefined;
      }, 15_000);
      const r = await tableRoutes();
      const cidr0 = (await ctx.registry.get(nodesRes, undefined, 'live0')).spec.podCIDR;
      expect(r[cidr0]).toBe(instances[0]);
      await ctx.registry.delete(nodesRes, undefined, 'live0');
      await until('live0 route removed', async () => (await tableRoutes())[cidr0] === undefined, 15_000);
    } finally {
      await runner.stop();
    }
  });
});

// ---- the host's routing table, in a throwaway network namespace ----

function netnsAvailable(): boolean {
  try {
    const probe = `skiff-rt-probe-${process.pid}`;
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'pipe' });
    execFileSync('ip', ['netns', 'del', probe], { stdio: 'pipe' });
    return true;
  } catch (e) {
    const msg = `HostRouteProvider tests need root and iproute2 (ip netns): ${(e as Error).message.split('\n')[0]}`;
    if (process.env.CI === 'true') throw new Error(msg);
    console.warn(`\n!!!!!!!!!! ${msg}\n!!!!!!!!!! HostRouteProvider tests are SKIPPED\n`);
    return false;
  }
}

const netnsOk = netnsAvailable();

describe.skipIf(!netnsOk)('route controller with HostRouteProvider (ip route in a netns)', () => {
  const ns = `skiff-rt-${process.pid}`;
  const ipn = (...args: string[]) => execFileSync('ip', ['-n', ns, ...args], { encoding: 'utf8' });
  const routes = () =>
    (JSON.parse(ipn('-j', '-4', 'route', 'show')) as { dst: string; gateway?: string; protocol?: string }[])
      .filter((r) => r.gateway)
      .map((r) => `${r.dst} via ${r.gateway} proto ${r.protocol ?? 'boot'}`)
      .sort();

  beforeAll(() => {
    execFileSync('ip', ['netns', 'add', ns]);
    // A link with an address, so next hops on 192.168.77.0/24 are reachable (a veth pair: dummy
    // interfaces need a kernel module that containers often lack).
    ipn('link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
    ipn('addr', 'add', '192.168.77.1/24', 'dev', 'v0');
    ipn('link', 'set', 'v0', 'up');
    ipn('link', 'set', 'v1', 'up');
  });
  afterAll(() => {
    execFileSync('ip', ['netns', 'del', ns]);
  });

  it('replaces routes to nodes\' InternalIPs with its own proto, and deletes only its own', async () => {
    const ctx = await newCtx();
    const provider = new HostRouteProvider({ netns: ns, proto: 246, localNodeName: 'self' });
    const rc = createRouteController({ provider });
    // Not ours though inside the pod range (proto static), and a stale one of ours.
    ipn('route', 'add', '10.244.99.0/24', 'via', '192.168.77.99', 'proto', 'static');
    ipn('route', 'add', '10.244.50.0/24', 'via', '192.168.77.50', 'proto', '246');
    await ctx.registry.create(nodesRes, undefined, node('h0', { podCIDR: '10.244.0.0/24', internalIP: '192.168.77.2' }));
    await ctx.registry.create(nodesRes, undefined, node('h1', { podCIDR: '10.244.1.0/24', internalIP: '192.168.77.3' }));
    await ctx.registry.create(nodesRes, undefined, node('h2', { podCIDR: '10.244.2.0/24' })); // no InternalIP yet
    await ctx.registry.create(nodesRes, undefined, node('self', { podCIDR: '10.244.4.0/24', internalIP: '192.168.77.1' })); // this host
    await rc.reconcile(ROUTES_KEY, ctx);
    expect(routes()).toEqual(['10.244.0.0/24 via 192.168.77.2 proto 246', '10.244.1.0/24 via 192.168.77.3 proto 246', '10.244.99.0/24 via 192.168.77.99 proto static']);
    expect(await provider.list()).toEqual([
      { destinationCidr: '10.244.0.0/24', target: '192.168.77.2' },
      { destinationCidr: '10.244.1.0/24', target: '192.168.77.3' },
    ]);
    // The node moves to another address (re-created): the route is replaced in place.
    await ctx.registry.delete(nodesRes, undefined, 'h0');
    await ctx.registry.create(nodesRes, undefined, node('h0', { podCIDR: '10.244.0.0/24', internalIP: '192.168.77.4' }));
    await ctx.registry.create(nodesRes, undefined, node('h3', { podCIDR: '10.244.3.0/32', internalIP: '192.168.77.5' }));
    await rc.reconcile(ROUTES_KEY, ctx);
    expect(routes()).toEqual([
      '10.244.0.0/24 via 192.168.77.4 proto 246',
      '10.244.1.0/24 via 192.168.77.3 proto 246',
      '10.244.3.0 via 192.168.77.5 proto 246',
      '10.244.99.0/24 via 192.168.77.99 proto static',
    ]);
    await rc.reconcile(ROUTES_KEY, ctx); // idempotent (the /32 is listed as "10.244.3.0" and matched)
    expect(routes()).toHaveLength(4);
    // Nodes deleted: their routes go, the foreign one stays.
    await ctx.registry.delete(nodesRes, undefined, 'h1');
    await ctx.registry.delete(nodesRes, undefined, 'h3');
    await rc.reconcile(ROUTES_KEY, ctx);
    expect(routes()).toEqual(['10.244.0.0/24 via 192.168.77.4 proto 246', '10.244.99.0/24 via 192.168.77.99 proto static']);
    // Deleting a route already gone is fine (a racing reconcile did it).
    await provider.delete({ destinationCidr: '10.244.1.0/24', target: '192.168.77.3' });
  });

  it('refuses the kernel\'s own protocol numbers', () => {
    expect(() => new HostRouteProvider({ proto: 3 })).toThrow(/5-255/);
  });
});
