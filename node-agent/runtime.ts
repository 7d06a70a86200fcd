// The agent's container runtime: the Docker Engine API (through dockerode), the way kubelet's dockershim
// used it. A pod is one pause container that owns the network, IPC and UTS namespaces, plus one Docker
// container per run of each of the pod's containers, joined to the pause container's namespaces.
//
// Every container carries labels saying which node, pod and container (and which run) it is: the agent
// keeps no state of its own, so after a restart it finds everything again by label. Names are
// deterministic (pod uid + container + run), so a create repeated after a crash collides (409) instead
// of making a second copy.

import type Docker from 'dockerode';
import type { ContainerCreateOptions, ContainerInspectInfo } from 'dockerode';
import { formatIPv4, parseIPv4CIDR } from '../lambdas/machinery/cidr.ts';

/** What the agent needs to know of the pods' Docker network. */
export interface PodNetwork {
  /** Its IPv4 subnet (the node's pod CIDR), e.g. 172.18.0.0/16. */
  subnet?: string;
  /** The host's address on it: pods reach the node's DNS there. */
  gateway?: string;
  /** The Linux bridge device. */
  bridge: string;
  /** Whether Docker masquerades what leaves the bridge (the network's enable_ip_masquerade; default on). */
  masquerade: boolean;
}

/** Reads a bridge network's subnet, gateway and device from the engine. */
export async function podNetwork(docker: Docker, network: string): Promise<PodNetwork> {
  const info = await docker.getNetwork(network).inspect();
  const v4 = ((info.IPAM?.Config ?? []) as { Gateway?: string; Subnet?: string }[]).find((c) => c.Subnet && parseIPv4CIDR(c.Subnet));
  const net = v4?.Subnet ? parseIPv4CIDR(v4.Subnet) : undefined;
  // A network created with a subnet and no gateway does not report one: the engine took the first address.
  const gateway = v4?.Gateway ?? (net && net.bits <= 30 ? formatIPv4(net.base + 1) : undefined);
  // Docker names a bridge network's device br-<first 12 of its id> unless told otherwise.
  const bridge = info.Options?.['com.docker.network.bridge.name'] ?? `br-${String(info.Id).slice(0, 12)}`;
  const masquerade = info.Options?.['com.docker.network.bridge.enable_ip_masquerade'] !== 'false';
  return { subnet: v4?.Subnet, gateway, bridge, masquerade };
}

export const LABELS = {
  node: 'io.skiff.node',
  namespace: 'io.skiff.pod.namespace',
  pod: 'io.skiff.pod.name',
  uid: 'io.skiff.pod.uid',
  container: 'io.skiff.container',
  restart: 'io.skiff.restart',
  kind: 'io.skiff.kind',
} as const;

/** The labels that make a container one run of a pod's container on a node (how the agent finds it). */
export function runLabels(nodeName: string, pod: PodRef, container: string, kind: ContainerKind, restart: number): Record<string, string> {
  return {
    [LABELS.node]: nodeName,
    [LABELS.namespace]: pod.namespace,
    [LABELS.pod]: pod.name,
    [LABELS.uid]: pod.uid,
    [LABELS.container]: container,
    [LABELS.restart]: String(restart),
    [LABELS.kind]: kind,
  };
}

/** The pause container's name in the io.skiff.container label. */
export const PAUSE = 'POD';

export type ContainerKind = 'pause' | 'init' | 'app';

/** One Docker container of a pod, as the pod worker needs to see it. */
export interface RunRecord {
  id: string;
  name: string; // the pod's container name, or POD
  kind: ContainerKind;
  uid: string;
  namespace: string;
  pod: string;
  restart: number;
  state: 'created' | 'running' | 'exited' | 'other';
  exitCode: number;
  oomKilled: boolean;
  error: string;
  createdAt: string;
  startedAt?: string; // RFC 3339 (seconds), when it has started, for the API
  finishedAt?: string;
  /** The same instants in ms, full precision (back-off is timed from these). */
  startedMs?: number;
  finishedMs?: number;
  image: string;
  imageID: string;
  ip?: string; // the pause container's address in the pod network
}

export interface PodRef {
  uid: string;
  namespace: string;
  name: string;
}

const ZERO_TIME = '0001-01-01T00:00:00Z';
const rfc3339 = (t: string | undefined) => (t && !t.startsWith('0001-') ? t.replace(/\.\d+Z$/, 'Z') : undefined);

export class DockerRuntime {
  /** Inspections of containers by id; refreshed when the list shows another state. */
  private readonly inspected = new Map<string, { listState: string; rec: RunRecord }>();

  constructor(
    readonly docker: Docker,
    readonly nodeName: string,
    readonly network: string,
  ) {}

  /**
   * Creates the pod network (a Docker bridge) unless it exists. masquerade: false leaves NAT to the agent
   * (pod-network.ts), so pods keep their addresses towards other nodes' pods; an existing network is
   * used as it is.
   */
  async ensureNetwork(subnet?: string, opts: { masquerade?: boolean } = {}): Promise<void> {
    const found = await this.docker.listNetworks({ filters: { name: [this.network] } });
    if (found.some((n) => n.Name === this.network)) return;
    try {
      await this.docker.createNetwork({
        Name: this.network,
        Driver: 'bridge',
        CheckDuplicate: true,
        Labels: { 'io.skiff.network': 'pods' },
        ...(opts.masquerade === false ? { Options: { 'com.docker.network.bridge.enable_ip_masquerade': 'false' } } : {}),
        ...(subnet ? { IPAM: { Config: [{ Subnet: subnet }] } } : {}),
      });
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 409) throw e; // another agent made it first
    }
  }

  /** Every container of this node (or of one pod), inspected (cached while their state is unchanged). */
  async list(podUid?: string): Promise<RunRecord[]> {
    const label = [`${LABELS.node}=${this.nodeName}`, ...(podUid ? [`${LABELS.uid}=${podUid}`] : [])];
    const listed = await this.docker.listContainers({ all: true, filters: { label } });
    if (!podUid) {
      const ids = new Set(listed.map((c) => c.Id));
      for (const id of this.inspected.keys()) if (!ids.has(id)) this.inspected.delete(id);
    }
    const out: RunRecord[] = [];
    await Promise.all(
      listed.map(async (c) => {
        const hit = this.inspected.get(c.Id);
        if (hit && hit.listState === c.State) return void out.push(hit.rec);
        try {
          const rec = toRecord(await this.docker.getContainer(c.Id).inspect());
          this.inspected.set(c.Id, { listState: c.State, rec });
          out.push(rec);
        } catch (e) {
          if ((e as { statusCode?: number }).statusCode !== 404) throw e; // removed meanwhile
        }
      }),
    );
    return out;
  }

  async inspect(id: string): Promise<RunRecord | undefined> {
    try {
      return toRecord(await this.docker.getContainer(id).inspect());
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return undefined;
      throw e;
    }
  }

  /**
   * Creates (or finds, if a previous attempt made it) and returns the container id of one run. The
   * Docker name is fixed by pod uid, container and run, so a retried create cannot make a duplicate.
   */
  async create(pod: PodRef, name: string, kind: ContainerKind, restart: number, opts: ContainerCreateOptions): Promise<string> {
    const dockerName = `skiff_${pod.namespace}_${pod.name}_${name === PAUSE ? 'POD' : name}_${pod.uid.slice(0, 8)}_${restart}`;
    const labels = { ...opts.Labels, ...runLabels(this.nodeName, pod, name, kind, restart) };
    try {
      const c = await this.docker.createContainer({ ...opts, name: dockerName, Labels: labels });
      return c.id;
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 409) throw e;
      const existing = await this.docker.getContainer(dockerName).inspect();
      if (existing.Config.Labels?.[LABELS.uid] !== pod.uid) throw e;
      return existing.Id;
    }
  }

  async start(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).start();
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 304) throw e; // already started
    }
    this.inspected.delete(id);
  }

  /** SIGTERM (the image's stop signal), then SIGKILL after graceSeconds, as `docker stop -t` does. */
  async stop(id: string, graceSeconds: number): Promise<void> {
    try {
      await this.docker.getContainer(id).stop({ t: Math.max(0, Math.floor(graceSeconds)) });
    } catch (e) {
      const code = (e as { statusCode?: number }).statusCode;
      if (code !== 304 && code !== 404) throw e; // already stopped, or gone
    }
    this.inspected.delete(id);
  }

  async remove(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).remove({ force: true, v: true });
    } catch (e) {
      const code = (e as { statusCode?: number }).statusCode;
      if (code !== 404 && code !== 409) throw e; // gone, or removal already in progress
    }
    this.inspected.delete(id);
  }

  /** Runs a command in a running container and collects its output (for exec probes). */
  async exec(id: string, cmd: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }> {
    const exec = await this.docker.getContainer(id).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({ hijack: true, stdin: false });
    const chunks: Buffer[] = [];
    const sink = { write: (b: Buffer) => (chunks.push(b), true) } as unknown as NodeJS.WritableStream;
    this.docker.modem.demuxStream(stream, sink, sink);
    const done = new Promise<void>((ok) => stream.on('end', ok).on('close', ok).on('error', ok));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([done.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs)))]);
    clearTimeout(timer);
    if (timedOut) {
      stream.destroy();
      return { exitCode: -1, output: `command timed out after ${timeoutMs}ms` };
    }
    const info = await exec.inspect();
    return { exitCode: info.ExitCode ?? -1, output: Buffer.concat(chunks).toString('utf8') };
  }

  /** Whether an image is present in the engine. */
  async hasImage(ref: string): Promise<boolean> {
    try {
      await this.docker.getImage(ref).inspect();
      return true;
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return false;
      throw e;
    }
  }

  /** Pulls an image through the engine (which needs its registry reachable). */
  async pull(ref: string): Promise<void> {
    const stream = await this.docker.pull(ref);
    await new Promise<void>((ok, fail) => this.docker.modem.followProgress(stream, (err: Error | null) => (err ? fail(err) : ok())));
  }
}

function toRecord(i: ContainerInspectInfo): RunRecord {
  const l = i.Config.Labels ?? {};
  const s = i.State;
  const nets = i.NetworkSettings?.Networks ?? {};
  const ip = Object.values(nets).map((n) => n.IPAddress).find((a) => a);
  return {
    id: i.Id,
    name: l[LABELS.container] ?? '',
    kind: (l[LABELS.kind] as ContainerKind) ?? 'app',
    uid: l[LABELS.uid] ?? '',
    namespace: l[LABELS.namespace] ?? '',
    pod: l[LABELS.pod] ?? '',
    restart: Number(l[LABELS.restart] ?? 0),
    // A container whose start failed stays 'created' with an error: for the pod it has run and failed.
    state: s.Running ? 'running' : s.Status === 'created' ? (s.Error ? 'exited' : 'created') : s.Status === 'exited' || s.Status === 'dead' ? 'exited' : 'other',
    exitCode: s.ExitCode,
    oomKilled: s.OOMKilled,
    error: s.Error ?? '',
    createdAt: rfc3339(i.Created) ?? ZERO_TIME,
    startedAt: rfc3339(s.StartedAt),
    finishedAt: rfc3339(s.FinishedAt),
    startedMs: rfc3339(s.StartedAt) ? Date.parse(s.StartedAt) : undefined,
    finishedMs: rfc3339(s.FinishedAt) ? Date.parse(s.FinishedAt) : undefined,
    image: i.Config.Image,
    imageID: i.Image,
    ip,
  };
}
