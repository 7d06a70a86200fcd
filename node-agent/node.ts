// The agent's Node: registration (capacity from the host, addresses, labels, EC2 zone and instance type
// when the instance metadata service answers), a Lease renewed every quarter of its duration (10 s of
// 40 s by default) in kube-node-lease (the heartbeat the node lifecycle controller watches), and the node conditions, written when they change or
// when the controller has marked the node Unknown.

import { statfsSync, readFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { LOCAL_PATH_DIR_ANNOTATION } from '../lambdas/controllers/local-path.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { ApiError } from '../lambdas/machinery/status.ts';
import type { KubeClient } from './kube-client.ts';

// Made by the control plane at start (a node may not create namespaces; kubelet does not either).
export const LEASE_NAMESPACE = 'kube-node-lease';

export interface NodeIdentity {
  name: string;
  /** The address other nodes and the apiserver reach this node at. */
  internalIP: string;
  /** Where the agent's HTTPS server listens (logs, exec). */
  port: number;
  /** SHA-256 of the agent's serving certificate (the apiserver pins it). */
  servingCertSha256: string;
  /** Directory whose filesystem holds the containers (for DiskPressure). */
  dataDir: string;
  runtimeVersion: string;
  pods: number;
  extraLabels?: Record<string, string>;
  podCIDR?: string;
  /** How long the Lease stays valid; it is renewed every quarter of it (kubelet's 40 s / 10 s). */
  leaseDurationSeconds?: number;
  /** An unchanged status is written again after this long; default 5 minutes (kubelet's). */
  statusReportMs?: number;
  /** The agent's plain-HTTP stream port (exec/attach/port-forward from the cloud front door), if any. */
  streamPort?: number;
  /** Whether the container runtime answers (Ready is False while it does not, as kubelet reports). */
  runtimeUp?: () => Promise<boolean>;
}

const micro = (d: Date) => d.toISOString().replace(/Z$/, '000Z');
const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };

/** The first non-internal IPv4 address of the host. */
export function hostIPv4(): string {
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal && !a.address.startsWith('172.17.')) return a.address;
  }
  return '127.0.0.1';
}

export interface Ec2Identity {
  zone: string;
  region: string;
  instanceType: string;
  instanceId: string;
  /** The instance's public DNS name and IPv4, when it has them (the front door reaches the agent there). */
  publicHostname?: string;
  publicIPv4?: string;
}

/** The annotation carrying the agent's stream port (lambdas/edge/stream-router.ts reads it). */
export const STREAM_PORT_ANNOTATION = 'skiff.io/stream-port';

/** Zone, region, instance type and id from EC2's instance metadata (IMDSv2); undefined off EC2 (fast). */
export async function ec2Metadata(timeoutMs = 300): Promise<Ec2Identity | undefined> {
  // The AWS SDKs' own override of the IMDS address (also how tests stand one up on loopback).
  const base = `${(process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT ?? 'http://169.254.169.254').replace(/\/$/, '')}/latest`;
  const text = async (r: Response) => {
    if (!r.ok) throw new Error(`IMDS: HTTP ${r.status}`);
    return (await r.text()).trim();
  };
  try {
    const token = await text(
      await fetch(`${base}/api/token`, { method: 'PUT', headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60' }, signal: AbortSignal.timeout(timeoutMs) }),
    );
    const get = async (p: string) => text(await fetch(`${base}/meta-data/${p}`, { headers: { 'X-aws-ec2-metadata-token': token }, signal: AbortSignal.timeout(timeoutMs) }));
    const [zone, instanceType, instanceId] = await Promise.all([get('placement/availability-zone'), get('instance-type'), get('instance-id')]);
    // Something other than IMDS may answer that address (a proxy, a sandbox): trust only well-formed values.
    if (!/^[a-z]{2}(-[a-z]+)+-\d+[a-z]$/.test(zone) || !/^[a-z0-9-]+\.[a-z0-9]+$/.test(instanceType) || !/^i-[0-9a-z]+$/.test(instanceId)) return undefined;
    // No public address: IMDS answers 404 for these, and the node simply has none.
    const optional = (p: string) => get(p).catch(() => undefined);
    const [publicHostname, publicIPv4] = await Promise.all([optional('public-hostname'), optional('public-ipv4')]);
    return {
      zone,
      region: zone.replace(/[a-z]$/, ''),
      instanceType,
      instanceId,
      ...(publicHostname && /^[a-z0-9.-]+$/.test(publicHostname) ? { publicHostname } : {}),
      ...(publicIPv4 && /^\d+\.\d+\.\d+\.\d+$/.test(publicIPv4) ? { publicIPv4 } : {}),
    };
  } catch {
    return undefined;
  }
}

export class NodeStatusReporter {
  private lastConditions = '';
  private lastWrite = 0;
  private ec2?: Ec2Identity;

  constructor(
    private readonly kube: KubeClient,
    private readonly id: NodeIdentity,
    private readonly now: () => Date = () => new Date(),
  ) {}

  private get path(): string {
    return `/api/v1/nodes/${encodeURIComponent(this.id.name)}`;
  }

  /** Creates the Node, or takes over an existing one of this name (a restarted agent). */
  async register(): Promise<void> {
    const ec2 = (this.ec2 = await ec2Metadata());
    const labels: Record<string, string> = {
      'kubernetes.io/hostname': this.id.name,
      'kubernetes.io/os': 'linux',
      'kubernetes.io/arch': ARCH[process.arch] ?? process.arch,
      'beta.kubernetes.io/os': 'linux',
      'beta.kubernetes.io/arch': ARCH[process.arch] ?? process.arch,
      ...(ec2
        ? {
            'topology.kubernetes.io/zone': ec2.zone,
            'topology.kubernetes.io/region': ec2.region,
            'node.kubernetes.io/instance-type': ec2.instanceType,
          }
        : {}),
      ...(this.id.extraLabels ?? {}),
    };
    const annotations: Record<string, string> = {
      'skiff.io/kubelet-serving-cert-sha256': this.id.servingCertSha256,
      // Where this node's local-path volumes live (controllers/local-path.ts provisions under it).
      [LOCAL_PATH_DIR_ANNOTATION]: join(this.id.dataDir, 'local-path'),
      ...(this.id.streamPort ? { [STREAM_PORT_ANNOTATION]: String(this.id.streamPort) } : {}),
    };
    // The AWS cloud provider's form; the route controller finds the node's instance by it.
    const providerID = ec2 ? { providerID: `aws:///${ec2.zone}/${ec2.instanceId}` } : {};
    const node: KubeObject = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: this.id.name, labels, annotations },
      spec: { ...providerID, ...(this.id.podCIDR ? { podCIDR: this.id.podCIDR, podCIDRs: [this.id.podCIDR] } : {}) },
    };
    try {
      await this.kube.create('/api/v1/nodes', node);
    } catch (e) {
      if (!(e instanceof ApiError && e.reason === 'AlreadyExists')) throw e;
      await this.kube.patch(this.path, { metadata: { labels, annotations }, ...(ec2 ? { spec: providerID } : {}) }, 'merge');
    }
    await this.writeStatus(true);
    await this.renewLease();
  }

  /** One heartbeat: the lease, and the status when conditions changed or the controller overrode them. */
  async heartbeat(): Promise<void> {
    await this.renewLease();
    await this.writeStatus(false);
  }

  async renewLease(): Promise<void> {
    const path = `/apis/coordination.k8s.io/v1/namespaces/${LEASE_NAMESPACE}/leases/${encodeURIComponent(this.id.name)}`;
    const spec = { holderIdentity: this.id.name, leaseDurationSeconds: this.id.leaseDurationSeconds ?? 40, renewTime: micro(this.now()) };
    try {
      await this.kube.patch(path, { spec }, 'merge');
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 404)) throw e;
      try {
        await this.kube.create(`/apis/coordination.k8s.io/v1/namespaces/${LEASE_NAMESPACE}/leases`, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.id.name, namespace: LEASE_NAMESPACE },
          spec,
        });
      } catch (e2) {
        if (!(e2 instanceof ApiError && e2.reason === 'AlreadyExists')) throw e2;
      }
    }
  }

  /** Capacity, addresses, node info and conditions. Written when `force`, on change, or every 5 minutes. */
  async writeStatus(force: boolean): Promise<void> {
    const now = this.now();
    const current = await this.kube.get(this.path);
    const conds = this.conditions(this.id.runtimeUp ? await this.id.runtimeUp() : true);
    const key = JSON.stringify(conds.map((c) => [c.type, c.status, c.reason]));
    const old: any[] = current.status?.conditions ?? [];
    // The lifecycle controller may have set Ready=Unknown (a late lease): a heartbeat puts it right.
    const overridden = old.find((c) => c.type === 'Ready')?.status !== conds.find((c) => c.type === 'Ready')!.status;
    if (!force && !overridden && key === this.lastConditions && now.getTime() - this.lastWrite < (this.id.statusReportMs ?? 5 * 60_000)) return;
    const t = rfc3339(now);
    const conditions = conds.map((c) => {
      const prev = old.find((o) => o.type === c.type);
      return { ...c, lastHeartbeatTime: t, lastTransitionTime: prev?.status === c.status ? prev.lastTransitionTime : t };
    });
    const cpus = os.cpus().length;
    const memKi = `${Math.floor(os.totalmem() / 1024)}Ki`;
    const capacity = { cpu: String(cpus), memory: memKi, pods: String(this.id.pods) };
    const status = {
      ...(current.status ?? {}),
      capacity,
      allocatable: capacity,
      addresses: [
        { type: 'InternalIP', address: this.id.internalIP },
        { type: 'Hostname', address: this.id.name },
        ...(this.ec2?.publicIPv4 ? [{ type: 'ExternalIP', address: this.ec2.publicIPv4 }] : []),
        ...(this.ec2?.publicHostname ? [{ type: 'ExternalDNS', address: this.ec2.publicHostname }] : []),
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: this.id.port } },
      nodeInfo: {
        machineID: readId('/etc/machine-id'),
        systemUUID: readId('/sys/class/dmi/id/product_uuid'),
        bootID: readId('/proc/sys/kernel/random/boot_id'),
        kernelVersion: os.release(),
        osImage: osImage(),
        containerRuntimeVersion: this.id.runtimeVersion,
        kubeletVersion: 'v1.32.0-skiff',
        kubeProxyVersion: 'v1.32.0-skiff',
        operatingSystem: 'linux',
        architecture: ARCH[process.arch] ?? process.arch,
      },
      conditions,
    };
    try {
      await this.kube.update(`${this.path}/status`, { ...current, status });
      this.lastConditions = key;
      this.lastWrite = now.getTime();
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 409)) throw e; // the next heartbeat writes it
    }
  }

  private conditions(runtimeUp: boolean): { type: string; status: string; reason: string; message: string }[] {
    const memFree = os.freemem() / os.totalmem();
    let diskFree = 1;
    try {
      const s = statfsSync(this.id.dataDir);
      diskFree = s.bavail / s.blocks;
    } catch {
      // no such directory yet: no pressure to report
    }
    let pidsUsed = 0;
    try {
      const max = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
      const running = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[3]?.split('/')[1] ?? 0);
      pidsUsed = running / max;
    } catch {
      // not Linux: no PID accounting
    }
    // Eviction thresholds as kubelet's defaults: memory.available < 100Mi, nodefs.available < 10%.
    const memPressure = os.freemem() < 100 * 1024 * 1024 && memFree < 0.05;
    const c = (type: string, pressure: boolean, what: string) => ({
      type,
      status: pressure ? 'True' : 'False',
      reason: pressure ? `KubeletHas${what}Pressure` : `KubeletHasSufficient${what}`,
      message: pressure ? `kubelet has ${what.toLowerCase()} pressure` : `kubelet has sufficient ${what.toLowerCase()} available`,
    });
    return [
      c('MemoryPressure', memPressure, 'Memory'),
      { ...c('DiskPressure', diskFree < 0.1, 'Disk'), ...(diskFree < 0.1 ? {} : { reason: 'KubeletHasNoDiskPressure', message: 'kubelet has no disk pressure' }) },
      c('PIDPressure', pidsUsed > 0.9, 'PID'),
      runtimeUp
        ? { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'skiff agent is posting ready status' }
        : { type: 'Ready', status: 'False', reason: 'KubeletNotReady', message: 'container runtime is down: the Docker Engine does not answer' },
    ];
  }
}

function readId(path: string): string {
  try {
    return existsSync(path) ? readFileSync(path, 'utf8').trim() : '';
  } catch {
    return '';
  }
}

function osImage(): string {
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'));
    return m?.[1] ?? 'Linux';
  } catch {
    return 'Linux';
  }
}
