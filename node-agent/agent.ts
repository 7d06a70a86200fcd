// `skiff agent`: the node agent (kubelet). It registers the Node and heartbeats, lists then watches the
// pods bound to this node, and keeps a work queue of pod uids: any change to a pod (from the watch, from
// a container dying in the engine, from a probe, or from a timer the worker asked for) marks its uid
// dirty, and a pool of workers syncs dirty pods, one sync per pod at a time (client-go's workqueue).
// All state that matters lives in the API and in the engine's container labels, so a restarted agent
// picks up where it stopped, and containers of pods no longer bound here are removed.

import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import os from 'node:os';
import Docker from 'dockerode';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { KubeClient, type KubeClientConfig } from './kube-client.ts';
import { DockerRuntime, LABELS, podNetwork, type RunRecord } from './runtime.ts';
import { PodWorker } from './pods.ts';
import { Informer } from './informer.ts';
import { startPushChannel } from './push.ts';
import { startDeadMansSwitch } from './dead-mans-switch.ts';
import { StatsCollector } from './stats.ts';
import { UsageReporter } from './usage-report.ts';
import type { WakeUps } from '../lambdas/controllers/wakeups.ts';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { startLocalPathCleaner } from './volumes.ts';
import { ProbeSet } from './probing.ts';
import { NodeStatusReporter, hostIPv4 } from './node.ts';
import { DEFAULT_PAUSE_IMAGE, ensureBusyboxImage } from './images.ts';
import { loadOrCreateServingCert } from './serving-cert.ts';
import { startAgentServer } from './server.ts';
import { startStreamListener } from './stream-listener.ts';
import { tokenReviewAuthenticator } from './authn.ts';
import { nodeMetricsAuthorizer } from './authz.ts';
import { AgentMetrics, publishEmf, type AgentEmfOptions } from './metrics.ts';
import { startNodeDns, type NodeDns } from './dns.ts';
import { startServiceProxy, type ProxyConfig, type ServiceProxy, type SyncResult } from './proxy.ts';
import { cleanupPodNetworkRules, ensurePodNetworkRules } from './pod-network.ts';
import { TokenManager } from './token-manager.ts';
import { startApiRelay, type ApiRelay } from './api-relay.ts';

export interface AgentOptions {
  /** How to reach the apiserver (server URL, CA, bearer token). */
  api: KubeClientConfig;
  /** The client made from `api`, when the caller has one already (tests count its calls). */
  kubeClient?: KubeClient;
  nodeName?: string;
  /** Where pod volumes and the serving certificate live. */
  dataDir: string;
  docker?: Docker;
  /** The Docker network pods join (created if missing). */
  network?: string;
  /** Its subnet when the agent creates it (e.g. the node's pod CIDR). */
  podSubnet?: string;
  pauseImage?: string;
  /** Address the node advertises (InternalIP); default: the host's first IPv4 address. */
  address?: string;
  /** Address and port of the agent's HTTPS server (logs, exec); port 0 picks one. */
  listenHost?: string;
  port?: number;
  /** How often the Lease is renewed (and conditions checked); default a quarter of leaseDurationSeconds. */
  heartbeatMs?: number;
  /** The Lease's declared duration; default 40 s, as kubelet. The lifecycle controller honours it. */
  leaseDurationSeconds?: number;
  /** An unchanged Node status is written again after this long (kubelet's nodeStatusReportFrequency, 5 min). */
  nodeStatusReportMs?: number;
  /**
   * Port of the plain-HTTP stream listener (stream-listener.ts) the cloud front door sends exec, attach,
   * port-forward and logs to; published on the Node (skiff.io/stream-port). Unset: none.
   */
  streamPort?: number;
  resyncMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Pod syncs in parallel. */
  workers?: number;
  maxPods?: number;
  /**
   * Pods' cluster DNS. Default: the agent runs one (dns.ts) on the pod network's gateway, port 53; given
   * servers are used as they are (no server started); false: none (ClusterFirst pods get the host's).
   */
  dns?: { servers: string[]; searches: string[]; options: string[] } | false;
  /** Proxy Service VIPs and node ports on this host in iptables (proxy.ts); default true. */
  proxy?: boolean | ProxyConfig;
  /**
   * Pod IPs end to end across nodes (pod-network.ts), given the cluster's pod range: the agent's iptables
   * rules accept forwarded pod traffic and masquerade only what leaves clusterCIDR, and a pod network
   * the agent creates does not masquerade. Unset: a node alone, Docker masquerades as it does by default.
   */
  podNetworkRules?: { clusterCIDR: string; chainPrefix?: string };
  /**
   * The network namespace the engine's bridges live in, when it is not this process's (a node that is
   * a namespace of its own): the pod network rules and the service proxy run iptables there.
   */
  netns?: string;
  /** With podNetworkRules and no podSubnet: how long to wait for node IPAM to assign this Node a pod CIDR. */
  podCIDRWaitMs?: number;
  /**
   * The fraction of a projected service account token's lifetime after which it is refreshed (kubelet:
   * 0.8, the default). Tests lower it to see a refresh within seconds.
   */
  tokenRefreshFraction?: number;
  /**
   * Relay the apiserver to pods on the pod network's gateway (api-relay.ts). Default: when the API
   * server's address is a loopback one (skiff up), which pods could not reach otherwise.
   */
  apiRelay?: boolean;
  /**
   * A deployed cluster's push channel (push.ts): the node's SQS queue, on which the controller manager
   * says when to re-list its pods, so a polling agent acts on a bound pod at once rather than at its next
   * poll. Its pods are then polled every podPollMs only (the safety net); Services and Endpoints as before.
   */
  push?: { sqs: SQSClient; queuePrefix: string; podPollMs: number };
  /**
   * A deployed cluster's dead man's switch (dead-mans-switch.ts): a schedule moved ahead every 20 s, which
   * makes the node unreachable within 40 s of the agent stopping, though its Lease is renewed seldom.
   */
  deadMansSwitch?: { wakeUps: WakeUps; everyMs?: number; silentAfterMs?: number };
  /** A deployed node: its metrics to CloudWatch as EMF lines once a minute (metrics.ts publishEmf, emf-sink.ts). */
  emf?: AgentEmfOptions;
  log?: (msg: string) => void;
}

export interface Agent {
  nodeName: string;
  port: number;
  /** This agent's Prometheus metrics (metrics.ts), served at /metrics, /metrics/probes and /metrics/cadvisor. */
  metrics: AgentMetrics;
  /** Where pods reach the apiserver through this node (its relay), for the `kubernetes` Service's Endpoints. */
  apiEndpoint?: { ip: string; port: number };
  /**
   * Stops the agent. Containers keep running unless removePods (then every pod container goes); the
   * service proxy's rules stay (traffic keeps flowing) unless removePods or cleanup.
   */
  close(opts?: { removePods?: boolean; cleanup?: boolean }): Promise<void>;
}

/** A node's name when none is given: its host name, as kubelet's default (--hostname-override unset). */
export function defaultNodeName(): string {
  return os.hostname().toLowerCase();
}

export async function startAgent(o: AgentOptions): Promise<Agent> {
  const log = o.log ?? ((m: string) => console.error(`agent: ${m}`));
  const nodeName = o.nodeName ?? defaultNodeName();
  const dataDir = resolve(o.dataDir);
  mkdirSync(join(dataDir, 'pods'), { recursive: true });
  const docker = o.docker ?? new Docker();
  const version = await docker.version().catch((e: Error) => {
    throw new Error(`no Docker Engine reachable (${e.message}); start dockerd, or run without an agent`);
  });
  const pauseImage = o.pauseImage ?? DEFAULT_PAUSE_IMAGE;
  if (pauseImage === DEFAULT_PAUSE_IMAGE) await ensureBusyboxImage(docker, pauseImage, { cmd: ['/bin/sleep', '2147483647'] });
  const runtime = new DockerRuntime(docker, nodeName, o.network ?? 'skiff');
  const netRules = o.podNetworkRules && { netns: o.netns, ...o.podNetworkRules };
  const kube = o.kubeClient ?? new KubeClient(o.api);
  const address = o.address ?? hostIPv4();

  // The agent's own HTTPS server (logs, exec), trusted by the apiserver through the pinned fingerprint.
  const cert = await loadOrCreateServingCert(join(dataDir, 'pki'), [nodeName, address, '127.0.0.1', 'localhost']);
  const authenticate = tokenReviewAuthenticator((body) => kube.create('/apis/authentication.k8s.io/v1/tokenreviews', body));
  // Resource usage for metrics.k8s.io (`kubectl top`), sampled every 10 s and served at /stats/summary.
  const stats = new StatsCollector(docker, nodeName).start();
  // Prometheus metrics (metrics.ts): this agent's own registries; read by who may get nodes/metrics (authz.ts).
  const metrics = new AgentMetrics(() => stats.summary());
  const usageReporter = new UsageReporter({ kube, nodeName, summary: () => stats.summary(), log });
  const emf = o.emf && publishEmf(metrics, o.emf, log);
  const server = await startAgentServer({
    docker,
    nodeName,
    host: o.listenHost ?? '0.0.0.0',
    port: o.port ?? 10250,
    tls: cert,
    authenticate,
    stats: () => stats.summary(),
    metrics: { metrics, authorize: nodeMetricsAuthorizer((path, body) => kube.create(path, body), nodeName) },
  });
  const listenHost = o.listenHost && o.listenHost !== '0.0.0.0' && o.listenHost !== '::' ? o.listenHost : '127.0.0.1';
  const streams =
    o.streamPort === undefined
      ? undefined
      : await startStreamListener({
          nodeName,
          port: o.streamPort,
          host: o.listenHost ?? '0.0.0.0',
          kube,
          authenticate, // the same instance as the agent server's: its second check of the token is a cache hit
          log,
          agent: { host: listenHost, port: server.port, sha256: cert.sha256 },
        });

  const identity = {
    name: nodeName,
    internalIP: address,
    port: server.port,
    servingCertSha256: cert.sha256,
    dataDir,
    runtimeVersion: `docker://${version.Version}`,
    pods: o.maxPods ?? 110,
    podCIDR: o.podSubnet,
    leaseDurationSeconds: o.leaseDurationSeconds ?? 40,
    statusReportMs: o.nodeStatusReportMs,
    streamPort: streams?.port,
    runtimeUp: () => docker.ping().then(
      () => true,
      () => false,
    ),
  };
  const reporter = new NodeStatusReporter(kube, identity);

  // The node's pod CIDR is the subnet its pods really get addresses from: its network's. In a cluster
  // with a pod range (podNetworkRules) a new network takes the block node IPAM assigns to this Node, so
  // blocks never overlap across nodes; otherwise the node brings its network's subnet (or --pod-cidr),
  // and node IPAM keeps a CIDR a node brings.
  const networkExists = (await docker.listNetworks({ filters: { name: [runtime.network] } })).some((n) => n.Name === runtime.network);
  let subnet = o.podSubnet;
  if (!subnet && netRules && !networkExists) {
    await reporter.register();
    subnet = await assignedPodCIDR(kube, nodeName, o.podCIDRWaitMs ?? 120_000);
    log(`pod CIDR ${subnet} assigned by node IPAM`);
  }
  await runtime.ensureNetwork(subnet, { masquerade: !netRules });
  const podNet = await podNetwork(docker, runtime.network);
  if (netRules && podNet.subnet) {
    if (podNet.masquerade) log(`pod network ${runtime.network} was created with masquerading: pods on other nodes see this node's address, not pod IPs`);
    await ensurePodNetworkRules({ podCIDR: podNet.subnet, ...netRules }).catch((e: Error) =>
      log(`pod network rules not installed (cross-node pod traffic is dropped${podNet.masquerade ? '' : ', and pods cannot reach outside the cluster'}): ${e.message}`),
    );
  }

  // Cluster DNS on the pod network's gateway. Agents sharing one network (skiff up --nodes N) share the
  // first one's server: the address is taken, and it answers the same names. Without a DNS server,
  // ClusterFirst pods fall back to the host's resolvers, as kubelet does.
  let dnsServer: NodeDns | undefined;
  let podDns = o.dns === false ? undefined : o.dns;
  if (o.dns === undefined) {
    try {
      const gateway = podNet.gateway;
      if (!gateway) throw new Error(`network ${runtime.network} has no IPv4 gateway`);
      dnsServer = await startNodeDns({ kube, host: gateway, log }).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EADDRINUSE') throw e;
        return undefined;
      });
      podDns = { servers: [gateway], searches: [], options: [] };
    } catch (e) {
      log(`cluster DNS not started (pods resolve with the host's resolvers): ${(e as Error).message}`);
    }
  }

  // The apiserver on the gateway (api-relay.ts), at the apiserver's own port. Agents sharing a network
  // share the first one's relay (the address is taken), as they share its DNS server.
  const apiURL = new URL(o.api.server);
  const apiHost = apiURL.hostname.replace(/^\[|\]$/g, '');
  const apiPort = Number(apiURL.port || (apiURL.protocol === 'https:' ? 443 : 80));
  let relay: ApiRelay | undefined;
  let apiEndpoint: { ip: string; port: number } | undefined;
  const loopback = /^(127\.|::1$|localhost$)/.test(apiHost);
  const relayed = o.apiRelay ?? loopback;
  if (relayed && podNet.gateway) {
    try {
      relay = await startApiRelay({ host: podNet.gateway, port: apiPort, target: { host: apiHost, port: apiPort }, log });
      apiEndpoint = { ip: podNet.gateway, port: apiPort };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') apiEndpoint = { ip: podNet.gateway, port: apiPort };
      else log(`apiserver relay not started (pods cannot reach the API): ${(e as Error).message}`);
    }
  }

  identity.podCIDR ??= podNet.subnet;
  await reporter.register();

  // ---- the work queue ----
  const desired = new Map<string, KubeObject>(); // pods bound here, by uid, as last seen
  const grace = new Map<string, number>(); // last known grace period of pods (for orphans)
  const dirty = new Set<string>();
  const processing = new Set<string>();
  const workers = o.workers ?? 8;
  let stopped = false;
  let informerSynced = false;
  const timers = new Set<NodeJS.Timeout>();

  const probes = new ProbeSet(
    runtime,
    (uid) => enqueue(uid),
    (uid, container, kind, message) => {
      const pod = desired.get(uid);
      const Kind = kind[0]!.toUpperCase() + kind.slice(1);
      if (pod) worker.event(pod, 'Warning', 'Unhealthy', `${Kind} probe failed: ${message}`.slice(0, 1024));
      void container;
    },
  );
  probes.onResult = (uid, container, kind, ok) => metrics.probe(desired.get(uid), container, kind, ok);
  const worker = new PodWorker({
    runtime,
    kube,
    nodeName,
    hostIP: address,
    podsDir: join(dataDir, 'pods'),
    pauseImage,
    backoffBaseMs: o.backoffBaseMs ?? 10_000,
    backoffMaxMs: o.backoffMaxMs ?? 300_000,
    probes,
    dns: podDns,
    tokens: new TokenManager({ kube, refreshFraction: o.tokenRefreshFraction }),
    // Not relayed (a deployed node, whose apiserver is a host name pods reach as the node does): pods
    // are told that host and port in KUBERNETES_SERVICE_HOST/PORT.
    apiServer: relayed || loopback ? undefined : { host: apiHost, port: apiPort },
    now: Date.now,
    sandboxStarted: (ok) => metrics.podStarted(ok),
    statusWritten: (basedOn, written) => {
      metrics.podStatusWritten(basedOn, written);
      const uid = written.metadata.uid!;
      if (desired.get(uid)?.metadata.resourceVersion === basedOn.metadata.resourceVersion) desired.set(uid, written);
    },
  });

  function enqueue(uid: string): void {
    if (stopped) return;
    dirty.add(uid);
    pump();
  }
  function enqueueAfter(uid: string, ms: number): void {
    // A timer past 2^31 - 1 ms fires at once (Node caps it to 1 ms): a far-off wake-up must not become
    // a sync loop, so it is capped at ~24.8 days instead (the pod is re-synced on any change anyway).
    ms = Math.min(ms, 2 ** 31 - 1);
    const t = setTimeout(() => {
      timers.delete(t);
      enqueue(uid);
    }, ms);
    timers.add(t);
  }
  function pump(): void {
    for (const uid of dirty) {
      if (processing.size >= workers) return;
      if (processing.has(uid)) continue; // dirty again: runs once the current sync ends
      dirty.delete(uid);
      processing.add(uid);
      void syncOne(uid).finally(() => {
        processing.delete(uid);
        pump();
      });
    }
  }
  async function syncOne(uid: string): Promise<void> {
    try {
      const runs = await runtime.list(uid);
      const pod = desired.get(uid);
      if (!pod) {
        if (!informerSynced || !runs.length) return;
        // Not bound here (deleted, force-deleted or rebound): nothing of it may keep running.
        const r = runs[0]!;
        log(`removing containers of pod ${r.namespace}/${r.pod} (${uid}): no longer bound to ${nodeName}`);
        await worker.terminate({ uid, namespace: r.namespace, name: r.pod }, runs, grace.get(uid) ?? 2);
        grace.delete(uid);
        return;
      }
      const res = await worker.sync(pod, runs);
      if (res.requeueMs !== undefined) enqueueAfter(uid, Math.max(0, res.requeueMs));
    } catch (e) {
      if (stopped) return;
      log(`sync of pod ${uid} failed: ${(e as Error).message}`);
      enqueueAfter(uid, 1000);
    }
  }

  // ---- the pod informer (informer.ts): the pods bound to this node, by uid ----
  // With the push channel, on a client of its own polling less often; shared (one per client and path):
  // the channel nudges it by collection (Informer.nudge).
  const podKube = o.push && kube.pollMs ? new KubeClient({ ...o.api, pollMs: o.push.podPollMs }) : kube;
  const podInformer = Informer.shared(podKube, `/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${nodeName}`)}`, (m) => log(`pod ${m}`));
  podInformer.on((type, pod) => {
    const uid = pod.metadata.uid!;
    if (type === 'DELETED') {
      desired.delete(uid);
      metrics.podGone(uid);
      metrics.forgetPod(pod);
    } else {
      metrics.podSeen(uid);
      desired.set(uid, pod);
      grace.set(uid, pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30);
    }
    enqueue(uid);
  });
  podInformer.start();
  // The push channel's messages end the informers' poll waits (pods, and the proxy's and DNS's Services and Endpoints).
  const push = o.push
    ? await startPushChannel({
        ...o.push,
        nodeName,
        log,
        onNudge: (collections) => collections.forEach((c) => Informer.nudge(c === 'pods' ? podKube : kube, c)),
        // `kubectl top` deployed: the apiserver asks for usage reports while it is read (usage-report.ts).
        onReportUsage: (until) => usageReporter.demand(until),
      }).catch((e: Error) => {
        log(`push channel: ${e.message}; following by poll alone`);
        return undefined;
      })
    : undefined;
  // After a lapse of the switch the node may be marked unreachable: a heartbeat (Lease and status) ends that at once.
  const deadMan = o.deadMansSwitch
    ? startDeadMansSwitch({ ...o.deadMansSwitch, nodeName, log, onLapse: () => void reporter.heartbeat().catch((e: Error) => !stopped && log(`heartbeat: ${e.message}`)) })
    : undefined;
  // The node's half of the local-path provisioner: directories of deleted volumes go (volumes.ts).
  const localPath = startLocalPathCleaner({ kube, nodeName, dir: join(dataDir, 'local-path'), log });
  void podInformer.synced.then(() => {
    informerSynced = true;
    return housekeeping().catch((e: Error) => !stopped && log(`housekeeping: ${e.message}`)); // orphans from before a restart
  });

  // ---- housekeeping: probes follow the running containers; orphans are found; everything resyncs ----
  async function housekeeping(): Promise<void> {
    const runs = await runtime.list();
    probes.update(desired, runs);
    const uids = new Set<string>(runs.map((r: RunRecord) => r.uid));
    for (const uid of uids) if (!desired.has(uid)) enqueue(uid);
  }
  let lastResync = Date.now();
  const houseTimer = setInterval(() => {
    void housekeeping()
      .then(() => {
        if (Date.now() - lastResync >= (o.resyncMs ?? 10_000)) {
          lastResync = Date.now();
          for (const uid of desired.keys()) enqueue(uid);
        }
      })
      .catch((e: Error) => !stopped && log(`housekeeping: ${e.message}`));
  }, 1000);
  const probeTimer = setInterval(() => probes.tick(), 100);
  const heartbeatTimer = setInterval(() => void reporter.heartbeat().catch((e: Error) => !stopped && log(`heartbeat: ${e.message}`)), o.heartbeatMs ?? (o.leaseDurationSeconds ?? 40) * 250);

  // Containers that stop (or start) in the engine wake their pod at once. The stream is resubscribed if
  // the engine restarts; the periodic resync covers anything missed meanwhile.
  let events: (NodeJS.ReadableStream & { destroy(): void }) | undefined;
  const subscribe = async (): Promise<void> => {
    if (stopped) return;
    try {
      events = (await docker.getEvents({
        filters: { type: ['container'], event: ['start', 'die', 'oom'], label: [`${LABELS.node}=${nodeName}`] },
      })) as NodeJS.ReadableStream & { destroy(): void };
    } catch {
      const t = setTimeout(() => void subscribe(), 1000);
      timers.add(t);
      return;
    }
    let buf = '';
    events.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const uid = JSON.parse(line)?.Actor?.Attributes?.[LABELS.uid];
          if (uid) enqueue(uid);
        } catch {
          // not JSON: ignore; the resync covers it
        }
      }
    });
    events.on('error', () => {});
    events.on('close', () => {
      if (!stopped) setTimeout(() => void subscribe(), 1000);
    });
  };
  await subscribe();

  // A proxy that cannot start (no iptables, not root) leaves the agent running pods without one.
  let proxy: ServiceProxy | undefined;
  if (o.proxy !== false) {
    const config = typeof o.proxy === 'object' ? o.proxy : {};
    const onSync = (s: SyncResult) => {
      metrics.proxySynced(s);
      config.onSync?.(s);
    };
    proxy = await startServiceProxy({ kube, podCIDR: podNet.subnet, bridge: podNet.bridge, log, netns: o.netns, ...config, onSync }).catch((e: Error) => {
      log(`service proxy not started: ${e.message}`);
      return undefined;
    });
  }

  return {
    nodeName,
    port: server.port,
    metrics,
    apiEndpoint,
    async close(opts = {}) {
      if (stopped) return;
      stopped = true;
      clearInterval(houseTimer);
      clearInterval(probeTimer);
      clearInterval(heartbeatTimer);
      for (const t of timers) clearTimeout(t);
      events?.destroy();
      await (opts.removePods || opts.cleanup ? proxy?.cleanup() : proxy?.stop())?.catch((e: Error) => log(`service proxy: ${e.message}`));
      if ((opts.removePods || opts.cleanup) && netRules && podNet.subnet) await cleanupPodNetworkRules({ ...netRules, podCIDR: podNet.subnet }).catch((e: Error) => log(`pod network rules: ${e.message}`));
      await push?.stop();
      deadMan?.stop();
      await emf?.stop();
      stats.stop();
      usageReporter.stop();
      await podInformer.stop();
      await localPath.stop();
      while (processing.size) await sleep(20);
      if (opts.removePods) {
        const runs = await runtime.list();
        await Promise.all(runs.map((r) => runtime.remove(r.id)));
      }
      await dnsServer?.close();
      await relay?.close();
      await streams?.close();
      await server.close();
      kube.close();
      if (podKube !== kube) podKube.close();
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The pod CIDR node IPAM wrote on this Node (spec.podCIDR), once it is there. */
async function assignedPodCIDR(kube: KubeClient, nodeName: string, waitMs: number): Promise<string> {
  const end = Date.now() + waitMs;
  for (;;) {
    const node = await kube.get<KubeObject>(`/api/v1/nodes/${encodeURIComponent(nodeName)}`);
    if (node.spec?.podCIDR) return node.spec.podCIDR;
    if (Date.now() > end) throw new Error(`node ${nodeName} got no spec.podCIDR within ${waitMs} ms: is node IPAM running (skiff up --cluster-cidr, or the cloud controller manager)?`);
    await sleep(250);
  }
}
