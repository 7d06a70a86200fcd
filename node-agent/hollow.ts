// Hollow nodes, as Kubernetes' kubemark: FOR BENCHMARKS AND CONTROLLER TESTS ONLY. They register Node
// objects, renew their Leases and report the pods bound to them Running, but run no containers at all.
// Each node carries the label and annotation skiff.io/hollow=true so nothing mistakes it for the real
// runtime. Heartbeats are one timer for all nodes; pods are followed with one watch on all pods.
// They run in-process on the registry (`skiff up --hollow-nodes`, benchmarks) or as API clients over
// HTTPS (`skiff agent --hollow N`), through the small HollowApi below.
// With `deployed`, each node follows what a deployed agent follows, the way it does (issue #16's scale
// rehearsal, bench:scale): its own pods by a polling informer that its SQS queue nudges, and the
// Services and Endpoints change feeds caught up on their poll; instead of the one watch.

import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Registry } from '../lambdas/apiserver/registry.ts';
import { KubeClient, type KubeClientConfig } from './kube-client.ts';
import { Informer } from './informer.ts';
import { startPushChannel, type PushChannel } from './push.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import { ApiError } from '../lambdas/machinery/status.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';

const nodesRes = findResource('', 'v1', 'nodes')!;
const leasesRes = findResource('coordination.k8s.io', 'v1', 'leases')!;
const podsRes = findResource('', 'v1', 'pods')!;
const nsRes = findResource('', 'v1', 'namespaces')!;
const LEASE_NS = 'kube-node-lease';

/** What hollow nodes need of the API. */
interface HollowApi {
  createNamespace(name: string): Promise<void>; // AlreadyExists is fine
  /** Creates the node, or replaces the status of an existing one. */
  upsertNode(node: KubeObject): Promise<void>;
  renewLease(name: string, spec: Record<string, unknown>): Promise<void>;
  watchPods(signal: AbortSignal): AsyncIterable<{ type: string; object: KubeObject }>;
  /** Sets the pod's status unless `skip(current)` says it is done already; 404 is fine. */
  setPodStatus(pod: KubeObject, skip: (cur: KubeObject) => boolean, status: (cur: KubeObject) => Record<string, unknown>): Promise<void>;
  /** Deletes with grace 0 (as the kubelet does when containers are gone); 404/409 are fine. */
  finishDeletion(pod: KubeObject): Promise<void>;
}

const ignore = (codes: number[]) => (e: unknown) => {
  if (!(e instanceof ApiError && (codes.includes(e.code) || (codes.includes(409) && e.reason === 'AlreadyExists')))) throw e;
};

function registryApi(registry: Registry): HollowApi {
  return {
    createNamespace: (name) => registry.create(nsRes, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } }).then(() => {}, ignore([409])),
    async upsertNode(node) {
      try {
        await registry.create(nodesRes, undefined, node);
      } catch (e) {
        ignore([409])(e);
        await registry.guaranteedUpdate(nodesRes, undefined, node.metadata.name!, undefined, { subresource: 'status' }, (cur) => ({ ...cur, status: node.status }));
      }
    },
    async renewLease(name, spec) {
      try {
        await registry.guaranteedUpdate(leasesRes, LEASE_NS, name, undefined, {}, (cur) => ({ ...cur, spec: { ...cur.spec, ...spec } }));
      } catch (e) {
        ignore([404])(e);
        await registry.create(leasesRes, LEASE_NS, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace: LEASE_NS }, spec }).catch(ignore([409]));
      }
    },
    watchPods: (signal) => registry.watch(podsRes, undefined, {}, signal) as AsyncIterable<{ type: string; object: KubeObject }>,
    setPodStatus: (pod, skip, status) =>
      registry
        .guaranteedUpdate(podsRes, pod.metadata.namespace, pod.metadata.name!, undefined, { subresource: 'status' }, (cur) =>
          cur.metadata.uid !== pod.metadata.uid || skip(cur) ? cur : { ...cur, status: status(cur) },
        )
        .then(() => {}, ignore([404])),
    finishDeletion: (pod) =>
      registry
        .delete(podsRes, pod.metadata.namespace, pod.metadata.name!, { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata.uid } })
        .then(() => {}, ignore([404, 409])),
  };
}

// Hollow nodes through the API act as many nodes at once (they list every pod, write every hollow
// node's Node and Lease, make kube-node-lease): one node's credential may not (the Node authorizer and
// NodeRestriction), so `skiff agent --hollow` needs an admin kubeconfig, as kubemark's hollow nodes each
// need their own node identity.
function kubeApi(kube: KubeClient): HollowApi {
  const podPath = (p: KubeObject) => `/api/v1/namespaces/${encodeURIComponent(p.metadata.namespace!)}/pods/${encodeURIComponent(p.metadata.name!)}`;
  return {
    createNamespace: (name) => kube.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } }).then(() => {}, ignore([409])),
    async upsertNode(node) {
      try {
        await kube.create('/api/v1/nodes', node);
      } catch (e) {
        ignore([409])(e);
        const path = `/api/v1/nodes/${encodeURIComponent(node.metadata.name!)}`;
        await kube.update(`${path}/status`, { ...(await kube.get(path)), status: node.status });
      }
    },
    async renewLease(name, spec) {
      const path = `/apis/coordination.k8s.io/v1/namespaces/${LEASE_NS}/leases`;
      try {
        await kube.patch(`${path}/${encodeURIComponent(name)}`, { spec }, 'merge');
      } catch (e) {
        ignore([404])(e);
        await kube.create(path, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace: LEASE_NS }, spec }).catch(ignore([409]));
      }
    },
    async *watchPods(signal) {
      const list = await kube.get<{ items: KubeObject[]; metadata: { resourceVersion: string } }>('/api/v1/pods');
      for (const object of list.items) yield { type: 'ADDED', object };
      yield* kube.watch('/api/v1/pods', list.metadata.resourceVersion, signal);
    },
    async setPodStatus(pod, skip, status) {
      // A conflict means a newer version exists: read it and write again (a polling node would not hear
      // of it before its next poll).
      for (let cur: KubeObject | undefined = pod, attempt = 0; cur && attempt < 5 && cur.metadata.uid === pod.metadata.uid && !skip(cur); attempt++) {
        try {
          return void (await kube.update(`${podPath(cur)}/status`, { ...cur, status: status(cur) }));
        } catch (e) {
          if (!(e instanceof ApiError && e.code === 409)) return ignore([404])(e);
          cur = await kube.get(podPath(cur)).catch((e2: unknown) => void ignore([404])(e2));
        }
      }
    },
    finishDeletion: (pod) =>
      kube
        .delete(podPath(pod), { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0, preconditions: { uid: pod.metadata.uid } })
        .then(() => {}, ignore([404, 409])),
  };
}

export interface HollowNodesOptions {
  registry?: Registry;
  ctx?: { registry: Registry };
  /** An API client instead of the registry: hollow nodes in their own process (`skiff agent --hollow`). */
  kube?: KubeClient;
  count: number;
  namePrefix?: string;
  cpu?: string;
  memory?: string;
  pods?: number;
  heartbeatMs?: number;
  /** The Lease's declared duration (default 40 s; a deployed agent declares 4 × its renewal interval). */
  leaseDurationSeconds?: number;
  now?: () => Date;
  /** Follow as deployed agents do (see the header); needs `kube` for the nodes' writes. */
  deployed?: DeployedFollow;
}

/** What each hollow node follows in deployed mode, with the deployed agents' settings (infra/nodes.ts). */
export interface DeployedFollow {
  /** The apiserver and credential the nodes' informers read with. */
  api: KubeClientConfig;
  /** Each node's SQS client (an agent has its own: one shared client would hold 50 long polls at most). */
  sqs: (node: string) => SQSClient;
  /** The cluster's queue prefix (the controller manager's node notifier sends to these queues). */
  queuePrefix: string;
  /** The pods' poll, the push channel's safety net (deployed: 300 s). */
  podPollMs: number;
  /** The Services and Endpoints catch-up (deployed: 75 s). */
  servicesPollMs: number;
}

export interface HollowNodes {
  nodes: string[];
  /** Renews every (not stopped) node's lease now; the timer calls it every heartbeatMs. */
  heartbeat(): Promise<void>;
  /** Stops one node's heartbeat (its pods are still reported), to test node lifecycle. */
  stopNode(name: string): void;
  /** Stops all heartbeats and the pod watch. */
  stop(): Promise<void>;
}

const micro = (d: Date) => d.toISOString().replace(/Z$/, '000Z');
const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** A per-node /24 out of 10.64.0.0/10, so pod IPs never collide across hollow nodes. */
function nodeCidrBase(i: number): string {
  return `10.${64 + Math.floor(i / 256)}.${i % 256}`;
}

export async function startHollowNodes(o: HollowNodesOptions): Promise<HollowNodes> {
  const registry = o.registry ?? o.ctx?.registry;
  const api = o.kube ? kubeApi(o.kube) : registry ? registryApi(registry) : undefined;
  if (!api) throw new Error('startHollowNodes: registry, ctx or kube is required');
  const prefix = o.namePrefix ?? 'hollow-node-';
  const now = o.now ?? (() => new Date());
  const names = Array.from({ length: o.count }, (_, i) => `${prefix}${i}`);
  const index = new Map(names.map((n, i) => [n, i]));
  const nextHost = new Map(names.map((n) => [n, 2]));
  const stopped = new Set<string>();

  await api.createNamespace(LEASE_NS);

  for (const [i, name] of names.entries()) {
    const t = rfc3339(now());
    const capacity = { cpu: o.cpu ?? '4', memory: o.memory ?? '16Gi', pods: String(o.pods ?? 110) };
    const node: KubeObject = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name,
        labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', 'skiff.io/hollow': 'true' },
        annotations: { 'skiff.io/hollow': 'true' },
      },
      spec: { podCIDR: `${nodeCidrBase(i)}.0/24` },
      status: {
        capacity,
        allocatable: capacity,
        addresses: [
          { type: 'InternalIP', address: `10.63.${Math.floor(i / 256)}.${i % 256}` },
          { type: 'Hostname', address: name },
        ],
        conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'hollow node is posting ready status', lastHeartbeatTime: t, lastTransitionTime: t }],
        // Every NodeSystemInfo field, as kubemark's hollow kubelet reports them: they are all required in
        // the API's schema, and clients that check (the Python client's models) refuse a node without them.
        nodeInfo: {
          machineID: name,
          systemUUID: name,
          bootID: name,
          kernelVersion: 'hollow',
          osImage: 'hollow',
          containerRuntimeVersion: 'hollow://1.0',
          kubeletVersion: 'v1.32.0-hollow',
          kubeProxyVersion: 'v1.32.0-hollow',
          operatingSystem: 'linux',
          architecture: 'amd64',
        },
      },
    };
    await api.upsertNode(node);
  }

  const renew = (name: string) => api.renewLease(name, { holderIdentity: name, leaseDurationSeconds: o.leaseDurationSeconds ?? 40, renewTime: micro(now()) });
  const heartbeat = async () => {
    await Promise.all(names.filter((n) => !stopped.has(n)).map((n) => renew(n).catch((e) => console.error(`hollow ${n}: lease renew failed`, e))));
  };
  await heartbeat();
  const timer = setInterval(() => void heartbeat(), o.heartbeatMs ?? 10_000);

  async function handlePod(pod: KubeObject): Promise<void> {
    const node = pod.spec?.nodeName;
    if (!node || !index.has(node)) return;
    const m = pod.metadata;
    if (m.deletionTimestamp) {
      // As the kubelet does once containers are stopped (there are none): finish the deletion.
      return api!.finishDeletion(pod);
    }
    if (pod.status?.phase === 'Running' && pod.status?.podIP) return;
    // A finished pod never runs again (a kubelet never moves Succeeded or Failed back): whoever marked
    // it finished (a test standing in for the containers' exit) has the last word.
    const finished = (p: KubeObject) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed';
    if (finished(pod)) return;
    const host = nextHost.get(node)!;
    nextHost.set(node, host >= 254 ? 2 : host + 1);
    const ip = `${nodeCidrBase(index.get(node)!)}.${host}`;
    const t = rfc3339(now());
    const cond = (type: string) => ({ type, status: 'True', lastProbeTime: null, lastTransitionTime: t });
    await api!.setPodStatus(
      pod,
      (cur) => !!cur.metadata.deletionTimestamp || finished(cur) || (cur.status?.phase === 'Running' && !!cur.status?.podIP),
      (cur) => ({
            ...(cur.status ?? {}),
            phase: 'Running',
            hostIP: `10.63.${Math.floor(index.get(node)! / 256)}.${index.get(node)! % 256}`,
            podIP: ip,
            podIPs: [{ ip }],
            startTime: t,
            conditions: ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'].map(cond),
            containerStatuses: (cur.spec?.containers ?? []).map((c: any) => ({
              name: c.name,
              image: c.image,
              imageID: '',
              containerID: `hollow://${cur.metadata.uid}/${c.name}`,
              ready: true,
              started: true,
              restartCount: 0,
              state: { running: { startedAt: t } },
            })),
      }),
    );
  }

  // Pods are handled at once, as a thousand kubelets would, not one after another: one pod at a time
  // each, its newest version seen meanwhile handled next (a deletion arriving while its Running write is
  // in flight is not lost).
  const newer = new Map<string, KubeObject | undefined>(); // uid in hand → its newest version since
  const handling = new Set<Promise<void>>();
  const handle = (pod: KubeObject) => {
    const uid = pod.metadata.uid!;
    if (newer.has(uid)) return void newer.set(uid, pod);
    newer.set(uid, undefined);
    const p = (async () => {
      for (let next: KubeObject | undefined = pod; next; next = newer.get(uid)) {
        newer.set(uid, undefined);
        await handlePod(next).catch((e) => console.error('hollow: pod update failed', e));
      }
      newer.delete(uid);
    })();
    handling.add(p);
    void p.finally(() => handling.delete(p));
  };

  const ctl = new AbortController();
  const following = o.deployed ? await followDeployed(o.deployed, names, handle) : undefined;
  const watching = (async () => {
    while (!following && !ctl.signal.aborted) {
      try {
        for await (const ev of api.watchPods(ctl.signal)) {
          if (ev.type !== 'ADDED' && ev.type !== 'MODIFIED') continue;
          handle(ev.object as KubeObject);
        }
      } catch (e) {
        if (!ctl.signal.aborted) console.error('hollow: pod watch failed, restarting', e);
      }
      if (!ctl.signal.aborted) await new Promise((r) => setTimeout(r, 500));
    }
  })();

  return {
    nodes: names,
    heartbeat,
    stopNode: (n) => void stopped.add(n),
    async stop() {
      clearInterval(timer);
      for (const n of names) stopped.add(n);
      ctl.abort();
      await watching;
      await following?.stop();
      await Promise.all(handling);
    },
  };
}

/**
 * Each node as a deployed agent follows (node-agent/agent.ts with --push-queue-prefix): an informer of its
 * own pods (`spec.nodeName=<node>`, served from the store's index) polled every podPollMs and re-listed
 * when its queue says so, and informers of the Services and Endpoints feeds caught up every
 * servicesPollMs (the proxy's and DNS's, shared by them on a real node). Each node has its own informers
 * and clients, as a thousand agents would.
 */
async function followDeployed(d: DeployedFollow, names: string[], onPod: (pod: KubeObject) => void): Promise<{ stop(): Promise<void> }> {
  const log = (m: string) => console.error(`hollow: ${m}`);
  const informers: Informer[] = [];
  const clients: KubeClient[] = [];
  const channels: Promise<PushChannel | undefined>[] = [];
  for (const name of names) {
    const podKube = new KubeClient({ ...d.api, pollMs: d.podPollMs });
    const svcKube = new KubeClient({ ...d.api, pollMs: d.servicesPollMs });
    clients.push(podKube, svcKube);
    const pods = new Informer(podKube, `/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${name}`)}`, log).on((type, pod) => type !== 'DELETED' && onPod(pod));
    const services = new Informer(svcKube, '/api/v1/services', log, { changesOnly: true });
    const endpoints = new Informer(svcKube, '/api/v1/endpoints', log, { changesOnly: true });
    informers.push(pods.start(), services.start(), endpoints.start());
    const byCollection: Record<string, Informer> = { pods, services, endpoints };
    channels.push(
      startPushChannel({ sqs: d.sqs(name), queuePrefix: d.queuePrefix, nodeName: name, log, onNudge: (cs) => cs.forEach((c) => byCollection[c]?.nudge()) }).catch((e: Error) => {
        log(`${name}: no push channel (${e.message}); its pods are polled only`);
        return undefined;
      }),
    );
  }
  const started = await Promise.all(channels);
  return {
    async stop() {
      await Promise.all(started.map((c) => c?.stop()));
      await Promise.all(informers.map((i) => i.stop()));
      for (const c of clients) c.close();
    },
  };
}
