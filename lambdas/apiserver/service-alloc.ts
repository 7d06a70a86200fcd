// Service ClusterIP and NodePort allocation: what kube-apiserver's service REST storage does in
// pkg/registry/core/service/storage/alloc.go with its ipallocator and portallocator.
//
// Kubernetes keeps one bitmap per range in etcd. Skiff keeps one storage key per allocated value
// instead (/registry/skiff.io/serviceips/<ip>, /registry/skiff.io/servicenodeports/<port>), taken
// with the storage contract's create: KeyExists means someone else holds it. That makes allocation
// unique under concurrent creates on every backend (SQLite and DynamoDB alike) without a global
// read-modify-write hot spot. Each key's value names its owner (namespace, name, uid), so a key whose
// owner no longer exists (a crash between allocating and writing the Service, or a failed release)
// can be recognised and reclaimed: see repair().

import type { Backend } from '../storage/backend.ts';
import { StorageError } from '../storage/backend.ts';
import { ApiError, errors } from '../machinery/status.ts';
import { fieldErrorBody, type FieldError } from '../machinery/validation.ts';
import { findResource, storagePrefix } from '../machinery/resources.ts';
import { needsNodePorts } from '../kinds/core/service.ts';
import type { KubeObject } from '../machinery/types.ts';
import { formatCIDR, formatIPv4, parseIPv4, parseIPv4CIDR } from '../machinery/cidr.ts';

export const SERVICE_IP_PREFIX = '/registry/skiff.io/serviceips/';
export const NODE_PORT_PREFIX = '/registry/skiff.io/servicenodeports/';

export interface ServiceAllocOptions {
  /** IPv4 CIDR that ClusterIPs come from (kube-apiserver --service-cluster-ip-range). Default 10.96.0.0/16. */
  serviceCIDR?: string;
  /** Inclusive node port range "first-last" (--service-node-port-range). Default 30000-32767. */
  nodePortRange?: string;
  /**
   * An allocation younger than this is never reclaimed by repair, even if its Service is not in storage
   * yet: a create allocates first and writes the Service just after. Default 60 s.
   */
  leakGraceMs?: number;
}

/** What one write took (to release if the write fails) or gives up (to release once it succeeded). */
export interface Allocation {
  ips: string[];
  nodePorts: number[];
}

interface Owner {
  namespace: string;
  name: string;
  uid: string;
  allocatedAt: string;
}

const RANDOM_PROBES = 8;

export class ServiceAllocator {
  readonly cidr: string;
  readonly portRange: string;
  private base: number; // network address as an unsigned 32-bit number
  private size: number; // addresses in the CIDR
  private firstPort: number;
  private lastPort: number;
  private graceMs: number;

  constructor(
    private backend: Backend,
    opts: ServiceAllocOptions = {},
  ) {
    const cidr = opts.serviceCIDR ?? '10.96.0.0/16';
    const net = parseIPv4CIDR(cidr);
    // Kubernetes needs room for the network, broadcast and kubernetes-service addresses plus one.
    if (!net || !(net.bits >= 8 && net.bits <= 29)) throw new Error(`invalid serviceCIDR ${JSON.stringify(cidr)}: want an IPv4 CIDR from /8 to /29`);
    this.size = net.size;
    this.base = net.base;
    this.cidr = formatCIDR(net);
    const r = /^(\d+)-(\d+)$/.exec(opts.nodePortRange ?? '30000-32767');
    this.firstPort = r ? Number(r[1]) : NaN;
    this.lastPort = r ? Number(r[2]) : NaN;
    if (!(this.firstPort >= 1 && this.lastPort <= 65535 && this.firstPort <= this.lastPort)) {
      throw new Error(`invalid nodePortRange ${JSON.stringify(opts.nodePortRange)}: want "first-last" within 1-65535`);
    }
    this.portRange = `${this.firstPort}-${this.lastPort}`;
    this.graceMs = opts.leakGraceMs ?? 60_000;
  }

  /** The address Kubernetes gives the `kubernetes` service: never handed out dynamically. */
  get kubernetesServiceIP(): string {
    return formatIPv4(this.base + 1);
  }

  // ---- the registry's hooks ----

  /**
   * A new Service (validated, with its uid): checks the IP families against this single-stack IPv4
   * cluster, allocates clusterIP (unless headless/ExternalName) and node ports (NodePort and
   * LoadBalancer), and writes them into the spec. On error nothing stays allocated.
   */
  async allocateCreate(svc: KubeObject, dryRun = false): Promise<Allocation> {
    return this.allocate(svc, undefined, dryRun);
  }

  /**
   * An update: keeps what the old object holds, allocates what is new (ExternalName→ClusterIP, a type
   * change to NodePort, an added port). Returns what was taken now; what the old object held and the
   * new one no longer uses is in `release` (to give back after the write succeeds).
   */
  async allocateUpdate(svc: KubeObject, old: KubeObject, dryRun = false): Promise<{ taken: Allocation; release: Allocation }> {
    const taken = await this.allocate(svc, old, dryRun);
    const now = held(svc);
    const before = held(old);
    return {
      taken,
      release: {
        ips: before.ips.filter((ip) => !now.ips.includes(ip)),
        nodePorts: before.nodePorts.filter((p) => !now.nodePorts.includes(p)),
      },
    };
  }

  /** Gives back a Service's allocations (on delete, or after a failed write). Only keys it owns. */
  async release(a: Allocation, ownerUid: string | undefined): Promise<void> {
    const keys = [...a.ips.map((ip) => SERVICE_IP_PREFIX + ip), ...a.nodePorts.map((p) => NODE_PORT_PREFIX + p)];
    for (const key of keys) {
      try {
        const kv = await this.backend.get(key);
        if (!kv || (ownerUid && parseOwner(kv.value)?.uid !== ownerUid)) continue;
        await this.backend.delete(key, kv.modRevision);
      } catch (e) {
        // A key left behind is a leak that repair() reclaims; it must not fail the user's request.
        if (!(e instanceof StorageError)) throw e;
        console.warn(`service allocator: could not release ${key}: ${e.message}`);
      }
    }
  }

  /** All of a stored Service's allocations (what a delete gives back). */
  held(svc: KubeObject): Allocation {
    return held(svc);
  }

  /**
   * Reclaims allocations whose owning Service (by uid) is not in storage and that are older than the
   * grace period: the job of Kubernetes' ipallocator/portallocator repair controllers. Runs when a
   * range looks full and when a requested value is held by someone else; returns the keys it freed.
   */
  async repair(): Promise<string[]> {
    const live = await this.liveServiceUids();
    const freed: string[] = [];
    for (const prefix of [SERVICE_IP_PREFIX, NODE_PORT_PREFIX]) {
      for (const kv of (await this.backend.list(prefix)).kvs) {
        if (await this.reclaimIfLeaked(kv.key, live)) freed.push(kv.key);
      }
    }
    return freed;
  }

  // ---- allocation ----

  private async allocate(svc: KubeObject, old: KubeObject | undefined, dryRun: boolean): Promise<Allocation> {
    const spec = svc.spec ?? {};
    const name = svc.metadata.name ?? '';
    this.checkFamilies(spec, name);
    const owner: Owner = {
      namespace: svc.metadata.namespace ?? '',
      name,
      uid: svc.metadata.uid ?? '',
      allocatedAt: new Date().toISOString(),
    };
    const taken: Allocation = { ips: [], nodePorts: [] };
    const oldHeld = old ? held(old) : { ips: [], nodePorts: [] };
    try {
      if (needsClusterIP(spec)) {
        const want = typeof spec.clusterIP === 'string' && spec.clusterIP ? spec.clusterIP : undefined;
        if (!want || !oldHeld.ips.includes(want)) {
          const ip = want ? await this.takeIP(want, spec, owner, name, dryRun) : await this.nextIP(owner, dryRun);
          if (!dryRun) taken.ips.push(ip);
          spec.clusterIP = ip;
          spec.clusterIPs = [ip];
        }
      }
      if (needsNodePorts(spec)) {
        // Ports with the same port number (e.g. 53/TCP and 53/UDP) share one node port, as upstream.
        const byPort = new Map<number, number>();
        const ports: any[] = Array.isArray(spec.ports) ? spec.ports : [];
        for (const [i, p] of ports.entries()) {
          if (p.nodePort) {
            const np = Number(p.nodePort);
            if (!oldHeld.nodePorts.includes(np) && !taken.nodePorts.includes(np)) {
              await this.takePort(np, `spec.ports[${i}].nodePort`, owner, name, dryRun);
              if (!dryRun) taken.nodePorts.push(np);
            }
            byPort.set(p.port, np);
            continue;
          }
          const np = byPort.get(p.port) ?? (await this.nextPort(owner, dryRun));
          if (!dryRun && !byPort.has(p.port)) taken.nodePorts.push(np);
          byPort.set(p.port, np);
          p.nodePort = np;
        }
      }
    } catch (e) {
      await this.release(taken, owner.uid);
      throw e;
    }
    return taken;
  }

  /** A single-stack IPv4 cluster: IPv6 or RequireDualStack cannot be served; PreferDualStack gets IPv4. */
  private checkFamilies(spec: Record<string, any>, name: string): void {
    if (!needsClusterIP(spec) && !isHeadless(spec)) return;
    const fams: unknown[] = Array.isArray(spec.ipFamilies) ? spec.ipFamilies : [];
    const errs: FieldError[] = [];
    fams.forEach((f, i) => {
      if (f !== 'IPv4') errs.push({ type: 'FieldValueInvalid', field: `spec.ipFamilies[${i}]`, value: f, detail: 'not configured on this cluster' });
    });
    if (spec.ipFamilyPolicy === 'RequireDualStack') {
      errs.push({ type: 'FieldValueInvalid', field: 'spec.ipFamilyPolicy', value: spec.ipFamilyPolicy, detail: 'this cluster is not configured for dual-stack services' });
    }
    if (errs.length) throw invalid(name, errs);
  }

  private async takeIP(ip: string, spec: Record<string, any>, owner: Owner, name: string, dryRun: boolean): Promise<string> {
    const fail = (why: string) =>
      invalid(name, [{ type: 'FieldValueInvalid', field: 'spec.clusterIPs', value: spec.clusterIPs ?? [ip], detail: `failed to allocate IP ${ip}: ${why}` }]);
    const n = parseIPv4(ip);
    // The network and broadcast addresses are outside the allocatable range, as in ipallocator.
    if (n === undefined || n <= this.base || n >= this.base + this.size - 1) {
      throw fail(`provided IP is not in the valid range. The range of valid IPs is ${this.cidr}`);
    }
    if (!(await this.tryTake(SERVICE_IP_PREFIX + ip, owner, dryRun, true))) throw fail('provided IP is already allocated');
    return ip;
  }

  private async takePort(port: number, field: string, owner: Owner, name: string, dryRun: boolean): Promise<void> {
    const fail = (why: string) => invalid(name, [{ type: 'FieldValueInvalid', field, value: port, detail: why }]);
    if (port < this.firstPort || port > this.lastPort) {
      throw fail(`provided port is not in the valid range. The range of valid ports is ${this.portRange}`);
    }
    if (!(await this.tryTake(NODE_PORT_PREFIX + port, owner, dryRun, true))) throw fail('provided port is already allocated');
  }

  private nextIP(owner: Owner, dryRun: boolean): Promise<string> {
    // base+1 is the kubernetes service's; the last address is broadcast.
    const first = this.base + 2;
    const count = this.size - 3;
    return this.next(SERVICE_IP_PREFIX, first, count, formatIPv4, owner, dryRun, 'serviceIP');
  }

  private nextPort(owner: Owner, dryRun: boolean): Promise<number> {
    return this.next(NODE_PORT_PREFIX, this.firstPort, this.lastPort - this.firstPort + 1, (n) => n, owner, dryRun, 'nodePort');
  }

  /**
   * Random pick with a bounded scan: a few random probes (cheap while the range is mostly free), then
   * one listing of what is taken and tries on the free values left; when none is free, repair once and
   * look again. A full range is Kubernetes' InternalError "failed to allocate a serviceIP: range is full".
   */
  private async next<T extends string | number>(
    prefix: string,
    first: number,
    count: number,
    show: (n: number) => T,
    owner: Owner,
    dryRun: boolean,
    what: string,
  ): Promise<T> {
    for (let i = 0; i < Math.min(RANDOM_PROBES, count); i++) {
      const v = show(first + Math.floor(Math.random() * count));
      if (await this.tryTake(prefix + v, owner, dryRun, false)) return v;
    }
    for (let round = 0; round < 2; round++) {
      const used = new Set((await this.backend.list(prefix)).kvs.map((kv) => kv.key.slice(prefix.length)));
      const free: T[] = [];
      for (let n = first; n < first + count; n++) if (!used.has(String(show(n)))) free.push(show(n));
      // Start at a random free value so concurrent allocators spread out instead of racing for one.
      const start = Math.floor(Math.random() * free.length);
      for (let i = 0; i < free.length; i++) {
        const v = free[(start + i) % free.length]!;
        if (await this.tryTake(prefix + v, owner, dryRun, false)) return v;
      }
      // Look again even if this repair freed nothing: a concurrent one may just have.
      if (round === 0) await this.repair();
    }
    throw errors.internal(`failed to allocate a ${what}: range is full`);
  }

  /**
   * Takes one key (or, in a dry run, checks that it is free). `reclaim`: when the key is held, see
   * whether its owner is gone and take it over (a user asked for exactly this value).
   */
  private async tryTake(key: string, owner: Owner, dryRun: boolean, reclaim: boolean): Promise<boolean> {
    if (dryRun) {
      const kv = await this.backend.get(key);
      return !kv || (reclaim && (await this.leaked(kv.value)));
    }
    try {
      await this.backend.create(key, JSON.stringify(owner));
      return true;
    } catch (e) {
      if (!(e instanceof StorageError && e.code === 'KeyExists')) throw e;
    }
    if (!reclaim || !(await this.reclaimIfLeaked(key))) return false;
    try {
      await this.backend.create(key, JSON.stringify(owner));
      return true;
    } catch (e) {
      if (e instanceof StorageError && e.code === 'KeyExists') return false;
      throw e;
    }
  }

  /** Deletes key if its owner is not a live Service (and the grace period has passed). */
  private async reclaimIfLeaked(key: string, live?: Set<string>): Promise<boolean> {
    const kv = await this.backend.get(key);
    if (!kv || !(await this.leaked(kv.value, live))) return false;
    try {
      await this.backend.delete(key, kv.modRevision);
      return true;
    } catch (e) {
      if (e instanceof StorageError && (e.code === 'Conflict' || e.code === 'NotFound')) return false;
      throw e;
    }
  }

  private async leaked(value: string, live?: Set<string>): Promise<boolean> {
    const o = parseOwner(value);
    if (!o) return true;
    if (Date.now() - Date.parse(o.allocatedAt) < this.graceMs) return false;
    // By uid, not by name: a generateName retry may have stored the Service under another name.
    return !(live ?? (await this.liveServiceUids())).has(o.uid);
  }

  private async liveServiceUids(): Promise<Set<string>> {
    const svcRes = findResource('', 'v1', 'services')!;
    const live = new Set<string>();
    for (const kv of (await this.backend.list(storagePrefix(svcRes))).kvs) {
      const uid = (JSON.parse(kv.value) as KubeObject).metadata?.uid;
      if (uid) live.add(uid);
    }
    return live;
  }
}

// ---- helpers ----

function invalid(name: string, errs: FieldError[]): ApiError {
  return errors.invalid(
    'Service',
    '',
    name,
    errs.map((e) => ({ reason: e.type, message: fieldErrorBody(e), field: e.field })),
  );
}

function isHeadless(spec: Record<string, any>): boolean {
  return spec.clusterIP === 'None';
}

function needsClusterIP(spec: Record<string, any>): boolean {
  return spec.type !== 'ExternalName' && !isHeadless(spec);
}

/** The values a stored Service holds. */
function held(svc: KubeObject): Allocation {
  const spec = svc.spec ?? {};
  const ips = needsClusterIP(spec) && typeof spec.clusterIP === 'string' && spec.clusterIP ? [spec.clusterIP] : [];
  const ports: any[] = Array.isArray(spec.ports) ? spec.ports : [];
  const nodePorts = needsNodePorts(spec) ? [...new Set(ports.map((p) => Number(p.nodePort)).filter((n) => n > 0))] : [];
  return { ips, nodePorts };
}

function parseOwner(value: string): Owner | undefined {
  try {
    const o = JSON.parse(value) as Owner;
    return typeof o.uid === 'string' && typeof o.allocatedAt === 'string' ? o : undefined;
  } catch {
    return undefined;
  }
}
