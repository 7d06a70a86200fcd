// The route controller: makes the network route each node's pod CIDR to that node, as
// kube-controller-manager's route controller does with a cloud provider's Routes interface. Desired
// state: one route per Node that has a podCIDR (from nodeipam.ts) and a target the provider can reach
// (an EC2 instance, an InternalIP); actual state: the routes the provider owns. Reconcile creates the
// missing, replaces the ones pointing elsewhere, and deletes the owned routes no Node wants.
//
// The whole table is one key ("routes"): every Node change maps to it, so duplicated or batched events
// collapse into one reconcile, and it is level-triggered (the resync repairs anything missed). Two
// reconciles racing (two Lambda instances) compute the same table; a provider's create is a create-or-
// replace and its delete ignores a route already gone, so the race costs repeated calls, not errors.
//
// Providers say which routes are theirs, so a reconcile never deletes what someone else made:
// - Ec2RouteProvider: one VPC route table; its routes to an instance inside the cluster CIDR.
// - HostRouteProvider: the local Linux routing table through `ip route`; routes with its protocol
//   number (and table, if given), so routes the host or other software made are never touched.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { findResource } from '../machinery/resources.ts';
import type { KubeObject } from '../machinery/types.ts';
import { formatCIDR, overlaps, parseIPv4, parseIPv4CIDR, type IPv4Net } from '../machinery/cidr.ts';
import { readerOf, type Controller } from './controller.ts';

// The EC2 client is loaded on first use: importing it takes about 250 ms, which every cold start of the
// controller manager would pay even in clusters that program no route table.
let ec2Module: Promise<typeof import('@aws-sdk/client-ec2')> | undefined;
const ec2Sdk = () => (ec2Module ??= import('@aws-sdk/client-ec2'));
import { recordEvent } from './events.ts';
import { nodePodCIDRs } from './nodeipam.ts';
import { controllerUser } from './identity.ts';

const nodes = findResource('', 'v1', 'nodes')!;

export interface Route {
  destinationCidr: string;
  /** What the provider routes to: an EC2 instance id, a next-hop IP. */
  target: string;
}

export interface RouteProvider {
  /** The routes this provider made (or may manage): the only ones a reconcile may delete. */
  list(): Promise<Route[]>;
  /** Makes destinationCidr route to target, replacing a route to the same destination. */
  create(route: Route): Promise<void>;
  /** Removes the route; a route already gone is not an error. */
  delete(route: Route): Promise<void>;
  /** The target of a route to this Node (undefined: the Node cannot be routed to yet). */
  targetFor(node: KubeObject): string | undefined;
  /**
   * Whether a route to this destination would be one of list()'s (default: all). A Node's podCIDR the
   * provider would not own is left alone: created, it would be re-created on every reconcile.
   */
  manages?(destinationCidr: string): boolean;
}

export const ROUTES_KEY = 'routes';

export interface RouteControllerOptions {
  provider: RouteProvider;
}

/** The routes the Nodes want, by destination. A destination two Nodes claim goes to the first by name. */
export function desiredRoutes(nodeList: KubeObject[], provider: RouteProvider): Map<string, Route & { node: string }> {
  const want = new Map<string, Route & { node: string }>();
  const sorted = [...nodeList].sort((a, b) => (a.metadata.name! < b.metadata.name! ? -1 : a.metadata.name! > b.metadata.name! ? 1 : 0));
  for (const n of sorted) {
    const target = provider.targetFor(n);
    if (!target) continue;
    for (const cidr of nodePodCIDRs(n)) {
      const net = parseIPv4CIDR(cidr);
      if (!net) continue; // IPv4 routes only: the cluster is single-stack
      const dest = formatCIDR(net);
      if (provider.manages && !provider.manages(dest)) continue;
      if (!want.has(dest)) want.set(dest, { destinationCidr: dest, target, node: n.metadata.name! });
    }
  }
  return want;
}

export function createRouteController(opts: RouteControllerOptions): Controller {
  const { provider } = opts;
  return {
    name: 'route-controller',
    identity: controllerUser('route-controller'),
    watches: [nodes],
    keys: () => [ROUTES_KEY],
    allKeys: async () => [ROUTES_KEY],
    async reconcile(_key, ctx) {
      // Nodes from the loops' cache (a store list of every node on each reconcile before). A lagging
      // cache (reconciles start after its first list) never loses a route: it only lacks nodes it has not
      // seen yet, for which this loop has made no route either.
      const list = await readerOf(ctx).list(nodes, undefined);
      const want = desiredRoutes(list, provider);
      const have = await provider.list();
      const failures: string[] = [];
      for (const r of have) {
        if (want.has(r.destinationCidr)) continue;
        try {
          await provider.delete(r);
        } catch (e) {
          failures.push(`delete ${r.destinationCidr} -> ${r.target}: ${(e as Error).message}`);
        }
      }
      for (const w of want.values()) {
        if (have.some((r) => r.destinationCidr === w.destinationCidr && r.target === w.target)) continue;
        try {
          await provider.create({ destinationCidr: w.destinationCidr, target: w.target });
        } catch (e) {
          const msg = (e as Error).message;
          failures.push(`create ${w.destinationCidr} -> ${w.target}: ${msg}`);
          const node = list.find((n) => n.metadata.name === w.node)!;
          await recordEvent(ctx.registry, node, {
            type: 'Warning',
            reason: 'FailedToCreateRoute',
            message: `Could not create route ${w.destinationCidr} -> ${w.target} for node ${w.node}: ${msg}`,
            component: 'route_controller',
          }).catch(() => undefined);
        }
      }
      // Everything else went through; failing the key gets the rest retried (requeue locally, batch
      // item failure on the stream).
      if (failures.length) throw new Error(`route controller: ${failures.join('; ')}`);
    },
  };
}

// ---- EC2: a VPC route table ----

export interface Ec2RouteProviderOptions {
  /** Default: an EC2Client for the environment's region and credentials, made on first use. */
  client?: EC2Client;
  routeTableId: string;
  /** Routes to instances inside this range are the controller's (the cluster's pod range). */
  clusterCIDR: string;
}

/** aws:///us-east-1a/i-0123456789abcdef0 (also aws:///i-… without a zone) -> the instance id. */
export function instanceIdFromProviderID(providerID: unknown): string | undefined {
  if (typeof providerID !== 'string') return undefined;
  return /^aws:\/\/\/(?:[^/]+\/)?(i-[0-9a-zA-Z]+)$/.exec(providerID)?.[1];
}

const errName = (e: unknown) => (e as { name?: string; Code?: string })?.name ?? (e as { Code?: string })?.Code;

export class Ec2RouteProvider implements RouteProvider {
  private cluster: IPv4Net;
  constructor(private opts: Ec2RouteProviderOptions) {
    const c = parseIPv4CIDR(opts.clusterCIDR);
    if (!c) throw new Error(`Ec2RouteProvider: invalid clusterCIDR ${JSON.stringify(opts.clusterCIDR)}`);
    this.cluster = c;
  }

  private made?: Promise<EC2Client>;
  private client(): Promise<EC2Client> {
    return this.opts.client ? Promise.resolve(this.opts.client) : (this.made ??= ec2Sdk().then((m) => new m.EC2Client({})));
  }

  targetFor(node: KubeObject): string | undefined {
    return instanceIdFromProviderID(node.spec?.providerID);
  }

  /** Inside the cluster's pod range (a route to a wider range is someone else's). */
  manages(destinationCidr: string): boolean {
    const net = parseIPv4CIDR(destinationCidr);
    return !!net && overlaps(net, this.cluster) && net.bits >= this.cluster.bits;
  }

  async list(): Promise<Route[]> {
    const out = await (await this.client()).send(new (await ec2Sdk()).DescribeRouteTablesCommand({ RouteTableIds: [this.opts.routeTableId] }));
    const table = out.RouteTables?.[0];
    if (!table) throw new Error(`route table ${this.opts.routeTableId} not found`);
    const routes: Route[] = [];
    for (const r of table.Routes ?? []) {
      // Routes to an instance in the pod range; blackholes (the instance is gone) included, to be removed.
      if (!r.DestinationCidrBlock || !r.InstanceId || !this.manages(r.DestinationCidrBlock)) continue;
      routes.push({ destinationCidr: formatCIDR(parseIPv4CIDR(r.DestinationCidrBlock)!), target: r.InstanceId });
    }
    return routes;
  }

  async create(route: Route): Promise<void> {
    const { routeTableId } = this.opts;
    const client = await this.client();
    const sdk = await ec2Sdk();
    // An instance forwards packets for its pods only with the source/destination check off.
    await client.send(new sdk.ModifyInstanceAttributeCommand({ InstanceId: route.target, SourceDestCheck: { Value: false } }));
    const params = { RouteTableId: routeTableId, DestinationCidrBlock: route.destinationCidr, InstanceId: route.target };
    try {
      await client.send(new sdk.CreateRouteCommand(params));
    } catch (e) {
      // The destination has a route (to another instance, or a blackhole): point it here.
      if (errName(e) !== 'RouteAlreadyExists') throw e;
      await client.send(new sdk.ReplaceRouteCommand(params));
    }
  }

  async delete(route: Route): Promise<void> {
    try {
      await (await this.client()).send(new (await ec2Sdk()).DeleteRouteCommand({ RouteTableId: this.opts.routeTableId, DestinationCidrBlock: route.destinationCidr }));
    } catch (e) {
      if (errName(e) !== 'InvalidRoute.NotFound') throw e;
    }
  }
}

/**
 * The controller-manager Lambda's route controller, when the deployment names a route table
 * (SKIFF_ROUTE_TABLE_ID; pod range SKIFF_CLUSTER_CIDR, default 10.244.0.0/16). The EC2 client takes
 * region and credentials from the function's environment. Undefined: no routes are managed.
 */
export function routeControllerFromEnv(env: Record<string, string | undefined> = process.env): Controller | undefined {
  const routeTableId = env.SKIFF_ROUTE_TABLE_ID;
  if (!routeTableId) return undefined;
  const clusterCIDR = env.SKIFF_CLUSTER_CIDR || '10.244.0.0/16';
  return createRouteController({ provider: new Ec2RouteProvider({ routeTableId, clusterCIDR }) });
}

// ---- the local host: `ip route` ----

export interface HostRouteProviderOptions {
  /** Run `ip` in this network namespace (`ip -n NAME`); tests use a throwaway one. */
  netns?: string;
  /** Protocol number that marks the routes this provider made (rtnetlink proto; default 246). */
  proto?: number;
  /** Routing table (name or number); default the main table. */
  table?: string;
  /** The `ip` binary. */
  ipCommand?: string;
  /** The Node that is this host: its pods are on a local bridge, so it gets no route (as flannel host-gw). */
  localNodeName?: string;
}

const exec = promisify(execFile);

/**
 * Routes pod CIDRs to nodes' InternalIPs on this host: for a local multi-node topology where nodes are
 * hosts (or VMs) on one L2 segment, `ip route replace <podCIDR> via <node InternalIP>`.
 */
export class HostRouteProvider implements RouteProvider {
  private proto: string;
  constructor(private opts: HostRouteProviderOptions = {}) {
    const p = opts.proto ?? 246;
    // 0-4 are the kernel's own (unspec, redirect, kernel, boot, static): never claim those.
    if (!Number.isInteger(p) || p < 5 || p > 255) throw new Error(`HostRouteProvider: proto ${p} must be 5-255`);
    this.proto = String(p);
  }

  targetFor(node: KubeObject): string | undefined {
    if (this.opts.localNodeName && node.metadata.name === this.opts.localNodeName) return undefined;
    const addrs: any[] = Array.isArray(node.status?.addresses) ? node.status.addresses : [];
    return addrs.find((a) => a?.type === 'InternalIP' && typeof a.address === 'string' && parseIPv4(a.address) !== undefined)?.address;
  }

  private async ip(...args: string[]): Promise<string> {
    const ns = this.opts.netns ? ['-n', this.opts.netns] : [];
    const { stdout } = await exec(this.opts.ipCommand ?? 'ip', [...ns, ...args]);
    return stdout;
  }

  private get where(): string[] {
    return ['proto', this.proto, ...(this.opts.table ? ['table', this.opts.table] : [])];
  }

  async list(): Promise<Route[]> {
    const out = await this.ip('-j', '-4', 'route', 'show', ...this.where);
    const routes = (out.trim() ? JSON.parse(out) : []) as { dst?: string; gateway?: string }[];
    return routes
      .filter((r) => r.dst && r.dst !== 'default')
      .map((r) => ({ destinationCidr: r.dst!.includes('/') ? r.dst! : `${r.dst}/32`, target: r.gateway ?? '' }));
  }

  async create(route: Route): Promise<void> {
    await this.ip('route', 'replace', route.destinationCidr, 'via', route.target, ...this.where);
  }

  async delete(route: Route): Promise<void> {
    try {
      await this.ip('route', 'del', route.destinationCidr, ...this.where);
    } catch (e) {
      // "RTNETLINK answers: No such process": gone already.
      if (!/No such process/.test(String((e as { stderr?: string }).stderr ?? e))) throw e;
    }
  }
}
