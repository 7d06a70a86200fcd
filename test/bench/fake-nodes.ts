// What the HTTPS benchmarks run in place of kubelets, the same on both sides (Skiff and Kubernetes), so
// neither side's own node code is measured: Nodes registered Ready and kept so by renewing their Leases,
// a watch follower that survives cut streams, and (for benchmarks whose pods must become Ready) a
// stand-in kubelet that reports bound pods Running and Ready and finishes their graceful deletion.

import { performance } from 'node:perf_hooks';
import type { apiClient } from '../support/skiff-up.ts';
import { drive } from './drive.ts';

export type Client = ReturnType<typeof apiClient>;

const LEASE_RENEW_MS = 10_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function must(r: { status: number; body: any }, ...codes: number[]) {
  if (!codes.includes(r.status)) throw new Error(`expected ${codes.join('/')}, got ${r.status}: ${JSON.stringify(r.body).slice(0, 300)}`);
  return r;
}

/** Creates a namespace, and its default ServiceAccount (kube's admission refuses pods without it). */
export async function ensureNamespace(cl: Client, ns: string): Promise<void> {
  must(await cl.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }), 201, 409);
  must(await cl.request('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } }), 201, 409);
}

/**
 * Registers `count` Nodes as a kubelet does (capacity, Ready) with their Leases, `concurrency` at a time;
 * returns the Leases by node name, for leaseRenewer.
 */
export async function registerNodes(cl: Client, count: number, concurrency: number, prefix = 'bench-node'): Promise<Map<string, any>> {
  must(await cl.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kube-node-lease' } }), 201, 409);
  const leases = new Map<string, any>();
  await drive(count, concurrency, async (i) => {
    const name = `${prefix}-${i}`;
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const capacity = { cpu: '4', memory: '16Gi', pods: '110' };
    must(
      await cl.request('POST', '/api/v1/nodes', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64' } },
        status: {
          capacity,
          allocatable: capacity,
          conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'bench node', lastHeartbeatTime: now, lastTransitionTime: now }],
          addresses: [{ type: 'InternalIP', address: `10.250.${Math.floor(i / 256)}.${i % 256}` }],
        },
      }),
      201,
    );
    const lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace: 'kube-node-lease' }, spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: new Date().toISOString().replace('Z', '000Z') } };
    leases.set(name, must(await cl.request('POST', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', lease), 201).body);
  });
  return leases;
}

/** Renews every node's Lease each 10 s, as kubelets do: PUT with the last version seen. Returns its stop. */
export function leaseRenewer(cl: Client, leases: Map<string, any>): () => Promise<void> {
  const path = (n: string) => `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${n}`;
  let running: Promise<void> | undefined;
  const renewAll = async () => {
    if (running) return; // a slow round is not doubled up
    let done!: () => void;
    running = new Promise((r) => (done = r));
    try {
      const names = [...leases.keys()];
      await drive(names.length, 8, async (i) => {
        const name = names[i]!;
        const cur = leases.get(name);
        const next = { ...cur, spec: { ...cur.spec, renewTime: new Date().toISOString().replace('Z', '000Z') } };
        let r = await cl.request('PUT', path(name), next);
        if (r.status === 409) {
          const fresh = must(await cl.request('GET', path(name)), 200).body;
          r = await cl.request('PUT', path(name), { ...fresh, spec: next.spec });
        }
        if (r.status === 200) leases.set(name, r.body);
        else console.error(`lease ${name}: ${r.status}`);
      });
    } finally {
      running = undefined;
      done();
    }
  };
  const timer = setInterval(() => void renewAll().catch((e) => console.error('lease renewal:', e)), LEASE_RENEW_MS);
  // Stopping waits for a round in flight, so closing the client after it cuts no renewal short.
  return async () => {
    clearInterval(timer);
    await running;
  };
}

/**
 * Follows a collection as an informer does: a watch from rv, resumed from the last resourceVersion seen
 * when the server ends it, and re-listed after 410 Gone. kube-apiserver closes a watch whose client
 * falls behind (its watch cache drops unresponsive watchers): a benchmark creating pods 32 at a time
 * on 2 shared cores is such a client, and a plain watch then saw only some 500 of 1,000 pods bound.
 * How often it resumed is reported: a resumed watch delivers late events, so latencies can only grow.
 */
export function follow(cl: Client, path: string, rv: string, signal: AbortSignal, onObject: (o: any) => void) {
  const counts = { resumed: 0, relisted: 0 };
  void (async () => {
    let from = rv;
    while (!signal.aborted) {
      let gone = false;
      await cl.watch(
        `${path}?watch=true&allowWatchBookmarks=true&resourceVersion=${from}`,
        (ev) => {
          if (ev.type === 'ERROR') {
            if (ev.object?.code === 410) gone = true;
            return;
          }
          if (ev.object?.metadata?.resourceVersion) from = ev.object.metadata.resourceVersion;
          if (ev.type !== 'BOOKMARK') onObject(ev.object);
        },
        signal,
      );
      if (signal.aborted) break;
      counts.resumed++;
      if (gone) {
        counts.relisted++;
        const l = await cl.request('GET', path);
        for (const o of l.body.items ?? []) onObject(o);
        from = l.body.metadata.resourceVersion;
      }
    }
  })();
  return counts;
}

const rfc3339 = (d = new Date()) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * A stand-in for the kubelets of the registered nodes, over the API as kubelets use it: a pod bound to a
 * node is reported Running and Ready (one status write: what a kubelet writes once its containers are
 * up), and a bound pod being deleted gracefully is finished (DELETE with grace 0, the kubelet's last
 * write). `concurrency` writes in flight at most. Returns its stop and a count of its writes.
 */
export function standInKubelet(cl: Client, namespace: string, concurrency = 16) {
  const abort = new AbortController();
  const pending = new Map<string, any>(); // name -> latest object seen
  const done = new Set<string>(); // uids reported Ready
  const finishing = new Set<string>(); // uids whose final delete was sent
  const stats = { statusWrites: 0, deletes: 0, errors: 0 };
  let wake: (() => void) | undefined;
  const onObject = (o: any) => {
    if (!o?.spec?.nodeName) return;
    const uid = o.metadata.uid;
    if (o.metadata.deletionTimestamp ? finishing.has(uid) : done.has(uid)) return;
    pending.set(o.metadata.name, o);
    wake?.();
  };
  const work = async (o: any) => {
    const base = `/api/v1/namespaces/${namespace}/pods/${o.metadata.name}`;
    if (o.metadata.deletionTimestamp) {
      finishing.add(o.metadata.uid);
      const r = await cl.request('DELETE', base, { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0, preconditions: { uid: o.metadata.uid } });
      if (r.status === 200 || r.status === 404 || r.status === 409) stats.deletes++;
      else (stats.errors++, finishing.delete(o.metadata.uid));
      return;
    }
    done.add(o.metadata.uid);
    const now = rfc3339();
    const cond = (type: string) => ({ type, status: 'True', lastProbeTime: null, lastTransitionTime: now });
    const i = stats.statusWrites;
    const status = {
      phase: 'Running',
      hostIP: '10.250.0.1',
      podIP: `10.${100 + ((i >> 16) & 63)}.${(i >> 8) & 255}.${i & 255}`,
      podIPs: [{ ip: `10.${100 + ((i >> 16) & 63)}.${(i >> 8) & 255}.${i & 255}` }],
      startTime: now,
      conditions: ['PodReadyToStartContainers', 'Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map(cond),
      containerStatuses: (o.spec.containers ?? []).map((c: any) => ({ name: c.name, image: c.image, imageID: '', ready: true, restartCount: 0, started: true, state: { running: { startedAt: now } } })),
    };
    const r = await cl.request('PATCH', `${base}/status`, { status }, { 'content-type': 'application/merge-patch+json' });
    if (r.status === 200) stats.statusWrites++;
    else if (r.status !== 404) (stats.errors++, done.delete(o.metadata.uid));
  };
  const workers = Array.from({ length: concurrency }, async () => {
    while (!abort.signal.aborted) {
      const next = pending.entries().next();
      if (next.done) {
        await new Promise<void>((r) => ((wake = r), setTimeout(r, 200)));
        continue;
      }
      const [name, o] = next.value;
      pending.delete(name);
      await work(o).catch(() => stats.errors++);
    }
  });
  return {
    stats,
    async start() {
      const list = must(await cl.request('GET', `/api/v1/namespaces/${namespace}/pods`), 200);
      for (const o of list.body.items) onObject(o);
      follow(cl, `/api/v1/namespaces/${namespace}/pods`, list.body.metadata.resourceVersion, abort.signal, onObject);
    },
    async stop() {
      abort.abort();
      wake?.();
      await Promise.all(workers);
    },
  };
}

export { sleep, performance };
