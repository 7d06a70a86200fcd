// The scheduler: each plugin on constructed inputs, then the controller end to end on the real store
// (SQLite, and DynamoDB through moto): placement by resources, selectors, taints, host ports and
// spreading; unschedulable pods reported and retried; duplicated/late/batched events; reservation
// garbage collection; and two schedulers racing over one store without overcommitting any node.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import type { ChangeEvent, Controller, ControllerContext } from '../lambdas/controllers/controller.ts';
import { runControllers } from '../lambdas/local/controllers.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { StorageError, type Backend } from '../lambdas/storage/backend.ts';
import { SqliteBackend } from '../lambdas/storage/sqlite.ts';
import { DynamoBackend, ensureTable } from '../lambdas/storage/dynamodb.ts';
import {
  feasibleNodesToFind,
  fitErrorMessage,
  newNodeInfo,
  podRequests,
  podResources,
  runCycle,
  type NodeInfo,
} from '../lambdas/scheduler/framework.ts';
import { defaultProfile } from '../lambdas/scheduler/plugins/index.ts';
import { nodeReady, nodeUnschedulable } from '../lambdas/scheduler/plugins/node-ready.ts';
import { nodeResourcesFit, nodeResourcesLeastAllocated } from '../lambdas/scheduler/plugins/node-resources.ts';
import { nodeSelector } from '../lambdas/scheduler/plugins/node-selector.ts';
import { nodePorts } from '../lambdas/scheduler/plugins/node-ports.ts';
import { taintToleration, toleratesTaint } from '../lambdas/scheduler/plugins/taint-toleration.ts';
import { selectorSpread } from '../lambdas/scheduler/plugins/spread.ts';
import { createScheduler } from '../lambdas/scheduler/scheduler.ts';
import { isPendingPod } from '../lambdas/scheduler/cache.ts';
import { coalescedUpdates, MemoryReservations, readReservation, updateReservation, type Entry, type Held, type Reservation } from '../lambdas/scheduler/reservation.ts';
import { dynamoTestEndpoint, uniqueTableName } from './support/dynamodb.ts';

const podsRes = findResource('', 'v1', 'pods')!;
const nodesRes = findResource('', 'v1', 'nodes')!;
const eventsRes = findResource('', 'v1', 'events')!;
const leasesRes = findResource('coordination.k8s.io', 'v1', 'leases')!;

// ---- builders ----

interface PodOpts {
  cpu?: string;
  memory?: string;
  nodeSelector?: Record<string, string>;
  tolerations?: any[];
  hostPort?: number;
  owner?: string;
  affinity?: any;
}

function pod(name: string, o: PodOpts = {}, ns = 'default'): KubeObject {
  const requests: Record<string, string> = {};
  if (o.cpu) requests.cpu = o.cpu;
  if (o.memory) requests.memory = o.memory;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: ns,
      uid: `uid-${name}`,
      ...(o.owner ? { ownerReferences: [{ apiVersion: 'v1', kind: 'ReplicationController', name: 'rc', uid: o.owner, controller: true }] } : {}),
    },
    spec: {
      containers: [
        {
          name: 'c',
          image: 'busybox',
          ...(Object.keys(requests).length ? { resources: { requests } } : {}),
          ...(o.hostPort ? { ports: [{ containerPort: 80, hostPort: o.hostPort }] } : {}),
        },
      ],
      ...(o.nodeSelector ? { nodeSelector: o.nodeSelector } : {}),
      ...(o.tolerations ? { tolerations: o.tolerations } : {}),
      ...(o.affinity ? { affinity: o.affinity } : {}),
    },
  };
}

interface NodeOpts {
  cpu?: string;
  memory?: string;
  pods?: string;
  labels?: Record<string, string>;
  taints?: any[];
  unschedulable?: boolean;
  ready?: 'True' | 'False' | 'Unknown';
}

function node(name: string, o: NodeOpts = {}): KubeObject {
  const alloc = { cpu: o.cpu ?? '4', memory: o.memory ?? '8Gi', pods: o.pods ?? '110' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...(o.labels ?? {}) } },
    spec: { ...(o.taints ? { taints: o.taints } : {}), ...(o.unschedulable ? { unschedulable: true } : {}) },
    status: { capacity: alloc, allocatable: alloc, conditions: [{ type: 'Ready', status: o.ready ?? 'True' }] },
  };
}

function info(n: KubeObject, on: KubeObject[] = []): NodeInfo {
  return newNodeInfo(n, on.map(podResources));
}

const check = (p: KubeObject, n: NodeInfo, plugin = defaultProfile.filters[0]!) => plugin.filter(p, podResources(p), n);

// ---- plugins ----

describe('pod requests', () => {
  it('sums containers, takes the largest init container, adds sidecars and overhead', () => {
    const p = pod('p');
    p.spec.containers = [
      { name: 'a', resources: { requests: { cpu: '100m', memory: '100Mi' } } },
      { name: 'b', resources: { requests: { cpu: '250m' } } },
    ];
    expect(podRequests(p)).toMatchObject({ cpu: 350, mem: 100 * 2 ** 20 });
    p.spec.initContainers = [{ name: 'i', resources: { requests: { cpu: '1', memory: '10Mi' } } }];
    expect(podRequests(p)).toMatchObject({ cpu: 1000, mem: 100 * 2 ** 20 });
    // A sidecar runs for the pod's life: it adds to the containers and to every later init step.
    p.spec.initContainers = [
      { name: 's', restartPolicy: 'Always', resources: { requests: { cpu: '200m' } } },
      { name: 'i', resources: { requests: { cpu: '500m' } } },
    ];
    expect(podRequests(p).cpu).toBe(700); // max(350 + 200, 200 + 500)
    p.spec.overhead = { cpu: '50m', memory: '1Mi' };
    expect(podRequests(p)).toMatchObject({ cpu: 750, mem: 101 * 2 ** 20 });
  });

  it('counts request-less containers at 100m / 200Mi for scoring only', () => {
    const r = podRequests(pod('p'));
    expect(r).toEqual({ cpu: 0, mem: 0, nzCpu: 100, nzMem: 200 * 2 ** 20 });
  });
});

describe('filter plugins', () => {
  it('NodeResourcesFit: cpu, memory and pod count against allocatable', () => {
    const n = node('n', { cpu: '1', memory: '1Gi', pods: '2' });
    const busy = info(n, [pod('a', { cpu: '600m', memory: '512Mi' })]);
    expect(check(pod('p', { cpu: '400m' }), busy, nodeResourcesFit)).toEqual({ ok: true });
    expect(check(pod('p', { cpu: '401m' }), busy, nodeResourcesFit)).toEqual({ ok: false, reasons: ['Insufficient cpu'] });
    expect(check(pod('p', { cpu: '500m', memory: '600Mi' }), busy, nodeResourcesFit)).toEqual({
      ok: false,
      reasons: ['Insufficient cpu', 'Insufficient memory'],
    });
    const full = info(n, [pod('a'), pod('b')]);
    expect(check(pod('p'), full, nodeResourcesFit)).toEqual({ ok: false, reasons: ['Too many pods'] });
  });

  it('NodeSelector and required node affinity', () => {
    const n = info(node('n1', { labels: { disk: 'ssd', gen: '5' } }));
    expect(check(pod('p', { nodeSelector: { disk: 'ssd' } }), n, nodeSelector).ok).toBe(true);
    expect(check(pod('p', { nodeSelector: { disk: 'hdd' } }), n, nodeSelector)).toEqual({
      ok: false,
      reasons: ["node(s) didn't match Pod's node affinity/selector"],
    });
    const aff = (terms: any[]) => ({ nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } } });
    const ok = (terms: any[]) => check(pod('p', { affinity: aff(terms) }), n, nodeSelector).ok;
    expect(ok([{ matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd', 'nvme'] }] }])).toBe(true);
    expect(ok([{ matchExpressions: [{ key: 'disk', operator: 'NotIn', values: ['ssd'] }] }])).toBe(false);
    expect(ok([{ matchExpressions: [{ key: 'gpu', operator: 'DoesNotExist' }, { key: 'gen', operator: 'Gt', values: ['4'] }] }])).toBe(true);
    expect(ok([{ matchExpressions: [{ key: 'gen', operator: 'Lt', values: ['5'] }] }])).toBe(false);
    // Terms are ORed; an empty term matches nothing.
    expect(ok([{ matchExpressions: [{ key: 'gpu', operator: 'Exists' }] }, { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }] }])).toBe(true);
    expect(ok([{}])).toBe(false);
  });

  it('toleration matching: Exists/Equal, empty key with Exists, effect', () => {
    const taint = { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' };
    expect(toleratesTaint({ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }, taint)).toBe(true);
    expect(toleratesTaint({ key: 'dedicated', value: 'gpu' }, taint)).toBe(true); // no operator means Equal, no effect means any
    expect(toleratesTaint({ key: 'dedicated', value: 'cpu' }, taint)).toBe(false);
    expect(toleratesTaint({ key: 'dedicated', operator: 'Exists' }, taint)).toBe(true);
    expect(toleratesTaint({ key: 'dedicated', operator: 'Exists', effect: 'NoExecute' }, taint)).toBe(false);
    expect(toleratesTaint({ operator: 'Exists' }, taint)).toBe(true);
    expect(toleratesTaint({ operator: 'Exists', effect: 'NoExecute' }, taint)).toBe(false);
    expect(toleratesTaint({ key: '', operator: 'Equal', value: 'gpu' }, taint)).toBe(false);
  });

  it('TaintToleration: NoSchedule and NoExecute keep pods off, PreferNoSchedule does not', () => {
    const unreachable = info(node('n', { taints: [{ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' }] }));
    expect(check(pod('p'), unreachable, taintToleration)).toEqual({
      ok: false,
      reasons: ['node(s) had untolerated taint {node.kubernetes.io/unreachable: }'],
    });
    expect(check(pod('p', { tolerations: [{ key: 'node.kubernetes.io/unreachable', operator: 'Exists' }] }), unreachable, taintToleration).ok).toBe(true);
    expect(check(pod('p'), info(node('n', { taints: [{ key: 'a', value: 'b', effect: 'PreferNoSchedule' }] })), taintToleration).ok).toBe(true);
  });

  it('NodeReady and NodeUnschedulable', () => {
    expect(check(pod('p'), info(node('n')), nodeReady).ok).toBe(true);
    expect(check(pod('p'), info(node('n', { ready: 'False' })), nodeReady)).toEqual({ ok: false, reasons: ['node(s) were not ready'] });
    // Tolerating unreachable NoExecute (every pod does, for 300 s) lets a pod stay on, not go on: NoSchedule does.
    const staysAWhile = pod('p', { tolerations: [{ key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }] });
    expect(check(staysAWhile, info(node('n', { ready: 'Unknown' })), nodeReady)).toEqual({ ok: false, reasons: ['node(s) were not ready'] });
    const tolerant = pod('p', { tolerations: [{ key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoSchedule' }] });
    expect(check(tolerant, info(node('n', { ready: 'Unknown' })), nodeReady).ok).toBe(true);
    expect(check(pod('p', { tolerations: [{ operator: 'Exists' }] }), info(node('n', { ready: 'False' })), nodeReady).ok).toBe(true);
    const cordoned = info(node('n', { unschedulable: true }));
    expect(check(pod('p'), cordoned, nodeUnschedulable)).toEqual({ ok: false, reasons: ['node(s) were unschedulable'] });
    expect(check(pod('p', { tolerations: [{ key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' }] }), cordoned, nodeUnschedulable).ok).toBe(true);
  });

  it('NodePorts: same protocol and port conflict unless both host IPs are specific and differ', () => {
    const n = node('n');
    const with80 = info(n, [pod('a', { hostPort: 80 })]);
    expect(check(pod('p', { hostPort: 80 }), with80, nodePorts)).toEqual({
      ok: false,
      reasons: ["node(s) didn't have free ports for the requested pod ports"],
    });
    expect(check(pod('p', { hostPort: 81 }), with80, nodePorts).ok).toBe(true);
    const udp = pod('p', { hostPort: 80 });
    udp.spec.containers[0].ports[0].protocol = 'UDP';
    expect(check(udp, with80, nodePorts).ok).toBe(true);
    const ipA = pod('a', { hostPort: 80 });
    ipA.spec.containers[0].ports[0].hostIP = '10.0.0.1';
    const ipB = pod('p', { hostPort: 80 });
    ipB.spec.containers[0].ports[0].hostIP = '10.0.0.2';
    expect(check(ipB, info(n, [ipA]), nodePorts).ok).toBe(true);
    expect(check(pod('p', { hostPort: 80 }), info(n, [ipA]), nodePorts).ok).toBe(false); // wildcard vs specific
  });
});

describe('score plugins and the cycle', () => {
  it('LeastAllocated: mean of free cpu and memory percentages, this pod included', () => {
    const n = node('n', { cpu: '4', memory: '4Gi' });
    const p = pod('p', { cpu: '1', memory: '1Gi' });
    // cpu (4000 - 1000) * 100 / 4000 = 75, memory 75 → 75
    expect(nodeResourcesLeastAllocated.score(p, podResources(p), info(n), [])).toBe(75);
    const busy = info(n, [pod('a', { cpu: '2', memory: '512Mi' })]);
    // cpu (4000 - 3000) / 4000 = 25, memory (4096 - 1536) / 4096 = 62.5 → 62 → (25 + 62) / 2 = 43
    expect(nodeResourcesLeastAllocated.score(p, podResources(p), busy, [])).toBe(43);
  });

  it('SelectorSpread: fewer pods of the same owner score higher', () => {
    const p = pod('p', { owner: 'rc1' });
    const a = info(node('a'), [pod('x', { owner: 'rc1' }), pod('y', { owner: 'rc1' })]);
    const b = info(node('b'), [pod('z', { owner: 'rc1' }), pod('w', { owner: 'other' })]);
    const c = info(node('c'));
    const all = [a, b, c];
    expect(all.map((i) => selectorSpread.score(p, podResources(p), i, all))).toEqual([0, 50, 100]);
    expect(selectorSpread.score(pod('q'), podResources(pod('q')), a, all)).toBe(100);
  });

  it('picks the best node, breaks ties by name, and explains failures like kube-scheduler', () => {
    const nodes = [info(node('b')), info(node('a')), info(node('c', { cpu: '8' }))];
    expect(runCycle(pod('p', { cpu: '1' }), nodes, defaultProfile, { tieBreak: 'name' }).node).toBe('c');
    expect(runCycle(pod('p'), [info(node('b')), info(node('a'))], defaultProfile, { tieBreak: 'name' }).node).toBe('a');
    const r = runCycle(
      pod('p', { cpu: '3' }),
      [
        info(node('small', { cpu: '2' })),
        info(node('t1', { taints: [{ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' }] })),
        info(node('t2', { taints: [{ key: 'node.kubernetes.io/unreachable', effect: 'NoSchedule' }] })),
      ],
      defaultProfile,
    );
    expect(r.node).toBeUndefined();
    if (r.node === undefined) {
      expect(fitErrorMessage(r.numAllNodes, r.reasons)).toBe(
        '0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {node.kubernetes.io/unreachable: }. ' +
          'preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.',
      );
    }
  });

  it('looks at a bounded share of a large cluster', () => {
    expect(feasibleNodesToFind(50)).toBe(50);
    expect(feasibleNodesToFind(1000)).toBe(420);
    expect(feasibleNodesToFind(5000)).toBe(500);
    const many = Array.from({ length: 300 }, (_, i) => info(node(`n${String(i).padStart(3, '0')}`)));
    const r = runCycle(pod('p'), many, defaultProfile, { feasibleToFind: feasibleNodesToFind(many.length), startIndex: 10 });
    expect(r.node !== undefined && r.feasible).toBe(feasibleNodesToFind(300));
  });
});

// ---- end to end on the store ----

interface Store {
  backend: () => Promise<Backend>;
  label: string;
}

const ddb = await dynamoTestEndpoint();
afterAll(async () => {
  await ddb?.stop();
});

const dir = mkdtempSync(join(tmpdir(), 'skiff-sched-'));
let fileNo = 0;
const sqliteStore = (): { open: () => Backend } => {
  const file = join(dir, `s${fileNo++}.db`);
  return { open: () => new SqliteBackend(file) };
};
const dynamoStore = async (): Promise<{ open: () => Backend }> => {
  const tableName = uniqueTableName('skiff-sched');
  await ensureTable(ddb!.client, tableName);
  return { open: () => new DynamoBackend({ client: ddb!.newClient(), tableName, pollIntervalMs: 50 }) };
};

const backends: [string, () => Promise<{ open: () => Backend }>, boolean][] = [
  ['SQLite', async () => sqliteStore(), true],
  ['DynamoDB', dynamoStore, !!ddb],
];

function ctxOf(b: Backend): ControllerContext {
  return new ApiServer({ backend: b }).controllerContext();
}

async function getPod(ctx: ControllerContext, name: string): Promise<KubeObject> {
  return ctx.registry.get(podsRes, 'default', name);
}

/** Resync and reconcile every key until nothing is left to do (requeues included), like a runner would. */
async function settle(s: Controller, ctx: ControllerContext, rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    const keys = await s.allKeys(ctx);
    for (const k of keys) await s.reconcile(k, ctx);
  }
}

async function placement(ctx: ControllerContext): Promise<Record<string, string | undefined>> {
  const out: Record<string, string | undefined> = {};
  for (const p of (await ctx.registry.list(podsRes, 'default')).items) out[p.metadata.name!] = p.spec.nodeName;
  return out;
}

async function eventsFor(ctx: ControllerContext, podName: string): Promise<KubeObject[]> {
  return (await ctx.registry.list(eventsRes, 'default')).items.filter((e) => e.involvedObject?.name === podName);
}

/** Every node: the bound pods' requests stay within allocatable; returns cpu used per node. */
async function assertNoOvercommit(ctx: ControllerContext): Promise<Record<string, { cpu: number; pods: number }>> {
  const nodes = (await ctx.registry.list(nodesRes, undefined)).items;
  const used: Record<string, { cpu: number; mem: number; pods: number }> = {};
  for (const p of (await ctx.registry.list(podsRes, undefined)).items) {
    if (!p.spec.nodeName) continue;
    const r = podRequests(p);
    const u = (used[p.spec.nodeName] ??= { cpu: 0, mem: 0, pods: 0 });
    u.cpu += r.cpu;
    u.mem += r.mem;
    u.pods += 1;
  }
  for (const n of nodes) {
    const u = used[n.metadata.name!] ?? { cpu: 0, mem: 0, pods: 0 };
    const a = newNodeInfo(n, []).allocatable;
    expect(u.cpu, `cpu on ${n.metadata.name}`).toBeLessThanOrEqual(a.milliCPU);
    expect(u.mem, `memory on ${n.metadata.name}`).toBeLessThanOrEqual(a.memory);
    expect(u.pods, `pods on ${n.metadata.name}`).toBeLessThanOrEqual(a.pods);
  }
  return used;
}

/** The context with one registry method shown its arguments first (to count its calls, or wrap a callback). */
function spied(ctx: ControllerContext, method: 'list' | 'guaranteedUpdate', see: (args: any[]) => void): ControllerContext {
  return {
    ...ctx,
    registry: new Proxy(ctx.registry, {
      get(t, prop, receiver) {
        const v = Reflect.get(t, prop, receiver);
        if (prop !== method) return v;
        return (...args: any[]) => (see(args), v.apply(t, args));
      },
    }),
  };
}

async function createPod(ctx: ControllerContext, p: KubeObject): Promise<KubeObject> {
  const { uid: _u, ...meta } = p.metadata;
  return ctx.registry.create(podsRes, p.metadata.namespace, { ...p, metadata: meta });
}

describe('reservation writes coalesced per node', () => {
  it('changes asked while a write is in flight go in the next one; a refused change is left out; a release never creates', async () => {
    const calls: { node: string; create: boolean }[] = [];
    const stored = new Map<string, Reservation>();
    const update = coalescedUpdates(async (node, change, opts = {}) => {
      calls.push({ node, create: opts.create !== false });
      await new Promise((r) => setTimeout(r, 5));
      const cur = stored.get(node);
      if (!cur && opts.create === false) return { node, rv: 0, entries: {}, prunedThrough: 0 };
      const r = { node, rv: (cur?.rv ?? 0) + 1, ...change({ entries: { ...(cur?.entries ?? {}) }, prunedThrough: 0 }, cur?.rv ?? 0) };
      stored.set(node, r);
      return r;
    });
    const entry = (key: string): Entry => ({ key, requests: {}, nonZero: { cpu: 0, memory: 0 }, hostPorts: [], at: 0 }) as unknown as Entry;
    const add = (uid: string) => (h: Held) => ({ ...h, entries: { ...h.entries, [uid]: entry(uid) } });
    const full = new Error('no room');
    const first = update('n', add('a'));
    const [b, c, refused, release, other] = await Promise.allSettled([
      update('n', add('b')),
      update('n', add('c')),
      update('n', () => {
        throw full;
      }),
      update('gone', (h) => h, { create: false }),
      update('m', add('x')),
    ]);
    await first;
    // n: the first change alone, then the three that came meanwhile in one write, once the first is done;
    // gone and m at once, on their own.
    expect(calls).toEqual([
      { node: 'n', create: true },
      { node: 'gone', create: false },
      { node: 'm', create: true },
      { node: 'n', create: true },
    ]);
    expect(b).toEqual({ status: 'fulfilled', value: { node: 'n', rv: 2, entries: { a: entry('a'), b: entry('b'), c: entry('c') }, prunedThrough: 0 } });
    expect(c).toEqual(b);
    expect(refused).toEqual({ status: 'rejected', reason: full });
    expect(release).toEqual({ status: 'fulfilled', value: { node: 'gone', rv: 0, entries: {}, prunedThrough: 0 } });
    expect(stored.has('gone')).toBe(false);
    expect(other.status).toBe('fulfilled');
  });
});

describe('scheduler snapshot', () => {
  it('keeps a node created while its first lists run (events that arrive meanwhile are replayed)', async () => {
    const ctx = ctxOf(sqliteStore().open());
    const s = createScheduler();
    // The first list of nodes is answered only after the node exists and its event was handed over,
    // as when a slow store (DynamoDB) lists while the node is created.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const list = ctx.registry.list.bind(ctx.registry);
    let first = true;
    ctx.registry.list = (async (res: any, ns: any, opts: any) => {
      const answer = await list(res, ns, opts);
      if (res === nodesRes && first) {
        first = false;
        await held;
      }
      return answer;
    }) as typeof ctx.registry.list;
    const building = s.cache.ensure(ctx.registry);
    await new Promise((r) => setTimeout(r, 20));
    const late = await ctx.registry.create(nodesRes, undefined, node('late', { cpu: '1' }));
    s.keys({ type: 'ADDED', resource: nodesRes, object: late });
    release();
    await building;
    expect(s.cache.nodeInfos().map((i) => i.node.metadata.name)).toEqual(['late']);
  });
});

describe('scheduler snapshot catch-up', () => {
  it('lists everything again when the log no longer holds its revision (Compacted)', async () => {
    const ctx = ctxOf(sqliteStore().open());
    await ctx.registry.create(nodesRes, undefined, node('a'));
    const s = createScheduler({ snapshotMaxAgeMs: 1 });
    await s.cache.ensure(ctx.registry);
    await ctx.registry.create(nodesRes, undefined, node('b'));
    await new Promise((r) => setTimeout(r, 5));
    let asked = 0;
    await s.cache.ensure(ctx.registry, async () => {
      asked++;
      throw new StorageError('Compacted', 'resync', 'revision 1 is compacted');
    });
    expect(asked).toBe(1);
    expect(s.cache.nodeInfos().map((i) => i.node.metadata.name).sort()).toEqual(['a', 'b']);
  });
});

for (const [label, makeStore, enabled] of backends) {
  describe.skipIf(!enabled)(`scheduler on ${label}`, () => {
    let store: { open: () => Backend };
    let backend: Backend;
    let ctx: ControllerContext;
    const opened: Backend[] = [];
    const open = () => {
      const b = store.open();
      opened.push(b);
      return b;
    };
    const fresh = async () => {
      store = await makeStore();
      backend = open();
      ctx = ctxOf(backend);
    };
    afterAll(async () => {
      for (const b of opened) await b.close();
    });

    it('places pods by resources, nodeSelector, taints, host ports and spreads an owner', async () => {
      await fresh();
      const r = ctx.registry;
      await r.create(nodesRes, undefined, node('big', { cpu: '2', labels: { disk: 'ssd' } }));
      await r.create(nodesRes, undefined, node('small', { cpu: '1' }));
      await r.create(nodesRes, undefined, node('gpu', { cpu: '4', taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] }));
      const s = createScheduler({ tieBreak: 'name' });
      await createPod(ctx, pod('large', { cpu: '1500m' }));
      await createPod(ctx, pod('ssd', { cpu: '100m', nodeSelector: { disk: 'ssd' } }));
      await createPod(ctx, pod('gpu-job', { cpu: '3', tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }] }));
      await createPod(ctx, pod('too-big', { cpu: '3' }));
      await settle(s, ctx, 1);
      const placed = await placement(ctx);
      expect(placed).toMatchObject({ large: 'big', ssd: 'big', 'gpu-job': 'gpu', 'too-big': undefined });
      // Host ports: two pods wanting port 8080 cannot share a node.
      await createPod(ctx, pod('web1', { hostPort: 8080, tolerations: [{ operator: 'Exists' }] }));
      await createPod(ctx, pod('web2', { hostPort: 8080, tolerations: [{ operator: 'Exists' }] }));
      await settle(s, ctx, 1);
      const p2 = await placement(ctx);
      expect(p2.web1).toBeDefined();
      expect(p2.web2).toBeDefined();
      expect(p2.web1).not.toBe(p2.web2);
      // Spread: four replicas of one owner over two equal nodes go two and two.
      for (const n of ['e1', 'e2']) await r.create(nodesRes, undefined, node(n, { cpu: '8', labels: { pool: 'even' } }));
      for (let i = 0; i < 4; i++) await createPod(ctx, pod(`rep${i}`, { owner: 'rc-uid', nodeSelector: { pool: 'even' } }));
      await settle(s, ctx, 1);
      const p3 = await placement(ctx);
      const counts = [0, 1, 2, 3].map((i) => p3[`rep${i}`]);
      expect(counts.filter((n) => n === 'e1')).toHaveLength(2);
      expect(counts.filter((n) => n === 'e2')).toHaveLength(2);
      await assertNoOvercommit(ctx);
      // The scheduled event, from default-scheduler.
      const ev = await eventsFor(ctx, 'large');
      expect(ev.map((e) => [e.type, e.reason, e.message, e.source?.component])).toEqual([
        ['Normal', 'Scheduled', 'Successfully assigned default/large to big', 'default-scheduler'],
      ]);
    });

    it('reports an unschedulable pod and schedules it once a fitting node appears', async () => {
      await fresh();
      const r = ctx.registry;
      await r.create(nodesRes, undefined, node('n1', { cpu: '1' }));
      await r.create(nodesRes, undefined, node('n2', { taints: [{ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' }] }));
      await r.create(nodesRes, undefined, node('n3', { ready: 'False' }));
      const s = createScheduler();
      await createPod(ctx, pod('hungry', { cpu: '2' }));
      await s.allKeys(ctx);
      const res = await s.reconcile('default/hungry', ctx);
      expect(res?.requeueAfterMs).toBeGreaterThanOrEqual(5000);
      expect(res?.requeueAfterMs).toBeLessThanOrEqual(10_000);
      const message =
        '0/3 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, 1 node(s) were not ready. ' +
        'preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.';
      let p = await getPod(ctx, 'hungry');
      expect(p.spec.nodeName).toBeUndefined();
      expect(p.status.conditions.find((c: any) => c.type === 'PodScheduled')).toMatchObject({
        status: 'False',
        reason: 'Unschedulable',
        message,
      });
      // Retrying without change writes nothing new and counts the event.
      const rv = p.metadata.resourceVersion;
      await s.reconcile('default/hungry', ctx);
      p = await getPod(ctx, 'hungry');
      expect(p.metadata.resourceVersion).toBe(rv);
      const failed = await eventsFor(ctx, 'hungry');
      expect(failed.map((e) => [e.type, e.reason, e.message, e.count])).toEqual([['Warning', 'FailedScheduling', message, 2]]);
      // A new node: its ADDED event requeues the pod, which is then bound.
      const big = await r.create(nodesRes, undefined, node('n4', { cpu: '4' }));
      const keys = s.keys({ type: 'ADDED', resource: nodesRes, object: big });
      expect(keys).toContain('default/hungry');
      await s.reconcile('default/hungry', ctx);
      p = await getPod(ctx, 'hungry');
      expect(p.spec.nodeName).toBe('n4');
      expect(p.status.conditions.find((c: any) => c.type === 'PodScheduled')).toMatchObject({ status: 'True' });
      expect((await eventsFor(ctx, 'hungry')).map((e) => e.reason).sort()).toEqual(['FailedScheduling', 'Scheduled']);
      // A heartbeat-only node update requeues nothing; a pod that is bound is never a key.
      const hb = structuredClone(big);
      hb.metadata.resourceVersion = String(Number(big.metadata.resourceVersion) + 1000);
      hb.status.conditions[0].lastHeartbeatTime = '2026-01-01T00:00:00Z';
      expect(s.keys({ type: 'MODIFIED', resource: nodesRes, object: hb })).toEqual([]);
      expect(s.keys({ type: 'MODIFIED', resource: podsRes, object: p })).toEqual([]);
    });

    it('frees room when a pod finishes or is deleted, and garbage-collects its reservation', async () => {
      await fresh();
      const r = ctx.registry;
      await r.create(nodesRes, undefined, node('only', { cpu: '1' }));
      const s = createScheduler();
      await createPod(ctx, pod('first', { cpu: '800m' }));
      await createPod(ctx, pod('second', { cpu: '800m' }));
      await settle(s, ctx, 1);
      let placed = await placement(ctx);
      const [winner, loser] = placed.first ? ['first', 'second'] : ['second', 'first'];
      expect(placed[winner]).toBe('only');
      expect(placed[loser]).toBeUndefined();
      expect(Object.values((await readReservation(r, 'only')).entries).map((e) => e.key)).toEqual([`default/${winner}`]);
      // The winner finishes: the status event frees room and requeues the loser and the node's GC.
      const done = await r.guaranteedUpdate(podsRes, 'default', winner, undefined, { subresource: 'status' }, (cur) => ({
        ...cur,
        status: { ...cur.status, phase: 'Succeeded' },
      }));
      const keys = s.keys({ type: 'MODIFIED', resource: podsRes, object: done });
      expect(keys).toEqual(expect.arrayContaining([`default/${loser}`, 'node:only']));
      for (const k of new Set(keys)) await s.reconcile(k, ctx);
      placed = await placement(ctx);
      expect(placed[loser]).toBe('only');
      expect(Object.values((await readReservation(r, 'only')).entries).map((e) => e.key)).toEqual([`default/${loser}`]);
      // Deleting the pod (seen by a scheduler that missed the event: only the store tells) releases it too.
      await r.delete(podsRes, 'default', loser, { gracePeriodSeconds: 0 });
      const other = createScheduler();
      await other.reconcile('node:only', ctx);
      expect((await readReservation(r, 'only')).entries).toEqual({});
      expect((await readReservation(r, 'only')).rv).toBeGreaterThan(0);
      // The node goes: so does its (empty) reservation record.
      const gone = (await r.delete(nodesRes, undefined, 'only')).object;
      const nodeKeys = s.keys({ type: 'DELETED', resource: nodesRes, object: gone });
      expect(nodeKeys).toContain('node:only');
      await s.reconcile('node:only', ctx);
      expect((await readReservation(r, 'only')).rv).toBe(0);
    });

    it('releases a reservation left by a scheduler that never bound its pod', async () => {
      await fresh();
      const r = ctx.registry;
      await r.create(nodesRes, undefined, node('n', { cpu: '1' }));
      const p = await createPod(ctx, pod('orphan', { cpu: '900m' }));
      // What a crashed scheduler leaves behind: a reservation, no binding.
      const { uid, ...rest } = podResources(p);
      await updateReservation(r, 'n', (h) => ({ ...h, entries: { ...h.entries, [uid]: { ...rest, at: Date.now() - 120_000 } } }));
      await createPod(ctx, pod('next', { cpu: '900m' }));
      const s = createScheduler({ tieBreak: 'name' });
      await s.allKeys(ctx);
      // "next" does not fit while the stale reservation holds the room...
      await s.reconcile('default/next', ctx);
      expect((await getPod(ctx, 'next')).spec.nodeName).toBeUndefined();
      // ...the node's GC releases it (older than staleReservationMs, pod unbound), then "orphan"'s own
      // reconcile or "next" gets the room: exactly one of them.
      await s.reconcile('node:n', ctx);
      expect((await readReservation(r, 'n')).entries).toEqual({});
      await settle(s, ctx, 2);
      const placed = await placement(ctx);
      expect([placed.orphan, placed.next].filter(Boolean)).toEqual(['n']);
      await assertNoOvercommit(ctx);
    });

    it('duplicated, late and batched events reach the same state as clean delivery', async () => {
      // Each pod fits exactly one node, so the right answer does not depend on the order of work.
      const setup = async () => {
        await fresh();
        for (const z of ['a', 'b', 'c']) await ctx.registry.create(nodesRes, undefined, node(`node-${z}`, { cpu: '1', labels: { zone: z } }));
        const created: KubeObject[] = [];
        for (const z of ['a', 'b', 'c']) for (let i = 0; i < 2; i++) created.push(await createPod(ctx, pod(`p-${z}${i}`, { cpu: '400m', nodeSelector: { zone: z } })));
        created.push(await createPod(ctx, pod('p-x', { cpu: '400m', nodeSelector: { zone: 'x' } })));
        return created;
      };
      const ev = (o: KubeObject, type: ChangeEvent['type'] = 'ADDED'): ChangeEvent => ({ type, resource: podsRes, object: o });
      const snapshot = async () => {
        const pods = (await ctx.registry.list(podsRes, 'default')).items.map((p) => [p.metadata.name, p.spec.nodeName ?? null]);
        const evs = (await ctx.registry.list(eventsRes, 'default')).items.map((e) => [e.involvedObject.name, e.reason, e.count]).sort();
        // A node's record keeps the pods in flight, less those pruned once bound (which of a node's pods
        // that leaves depends on the order of work): compared as what it holds that is not bound there.
        const res: Record<string, string[]> = {};
        for (const z of ['a', 'b', 'c']) {
          const there = new Set(pods.filter(([, n]) => n === `node-${z}`).map(([name]) => `default/${name}`));
          res[z] = Object.values((await readReservation(ctx.registry, `node-${z}`)).entries).map((e) => e.key).filter((k) => !there.has(k));
        }
        return { pods, evs, res };
      };

      // Clean: one event per pod, each key reconciled once.
      let created = await setup();
      let s = createScheduler();
      await s.allKeys(ctx);
      for (const p of created) for (const k of s.keys(ev(p))) await s.reconcile(k, ctx);
      const clean = await snapshot();
      expect(clean.pods.filter(([, n]) => n).length).toBe(6);
      expect(clean.res).toEqual({ a: [], b: [], c: [] });

      // Messy: every event twice, in reverse, batched into distinct keys, reconciled twice, then the
      // original (unbound) versions delivered late after the binding.
      created = await setup();
      s = createScheduler();
      await s.allKeys(ctx);
      const batch = [...created, ...created].reverse().map((p) => ev(p));
      const keys = new Set(batch.flatMap((e) => s.keys(e)));
      for (const k of keys) await s.reconcile(k, ctx);
      for (const k of keys) await s.reconcile(k, ctx);
      for (const p of created) for (const k of s.keys(ev(p, 'MODIFIED'))) await s.reconcile(k, ctx);
      // The FailedScheduling event of the pod that fits nowhere counts each retry; everything else is equal.
      const messy = await snapshot();
      expect(messy.pods).toEqual(clean.pods);
      expect(messy.res).toEqual(clean.res);
      const noCount = (e: any[]) => e.filter(([n]) => n !== 'p-x');
      expect(noCount(messy.evs)).toEqual(noCount(clean.evs));
      expect(messy.evs.filter(([n]) => n === 'p-x').map(([, r]) => r)).toEqual(['FailedScheduling']);
    });

    it('two schedulers racing on one store never overcommit a node', async () => {
      await fresh();
      const other = open(); // a second handle: another process on the same SQLite file / DynamoDB table
      const ctxA = ctx;
      const ctxB = ctxOf(other);
      const nodeCount = 3;
      for (let i = 0; i < nodeCount; i++) await ctxA.registry.create(nodesRes, undefined, node(`small-${i}`, { cpu: '1', memory: '1Gi', pods: '10' }));
      // 300m each: three fit on a node, nine in all; 24 pods compete for them.
      const total = 24;
      for (let i = 0; i < total; i++) await createPod(ctxA, pod(`r${String(i).padStart(2, '0')}`, { cpu: '300m', memory: '100Mi' }));
      const a = createScheduler({ unschedulableBackoffMs: [0, 0] });
      const b = createScheduler({ unschedulableBackoffMs: [0, 0] });
      // Both build their snapshot before either writes: they start equally blind to each other.
      const keysA = await a.allKeys(ctxA);
      const keysB = await b.allKeys(ctxB);
      expect(keysA.length).toBe(total);
      const run = async (s: Controller, c: ControllerContext, keys: string[]) => {
        for (const k of keys) {
          const res = await s.reconcile(k, c);
          if (res?.requeueAfterMs !== undefined && res.requeueAfterMs < 1000) await s.reconcile(k, c);
        }
      };
      const shuffled = [...keysB].sort(() => Math.random() - 0.5);
      await Promise.all([run(a, ctxA, keysA), run(b, ctxB, shuffled), run(a, ctxA, [...keysA].reverse())]);
      // Then a couple of resync rounds, still racing, so every requeue is worked off.
      for (let round = 0; round < 2; round++) {
        await Promise.all([
          (async () => run(a, ctxA, await a.allKeys(ctxA)))(),
          (async () => run(b, ctxB, await b.allKeys(ctxB)))(),
        ]);
      }
      const used = await assertNoOvercommit(ctxA);
      const bound = Object.values(await placement(ctxA)).filter(Boolean).length;
      expect(bound).toBe(9);
      for (let i = 0; i < nodeCount; i++) {
        expect(used[`small-${i}`]!.pods).toBe(3);
        // Reservations hold only pods bound there (losers of a race released theirs; the bound ones are
        // pruned by the next reservation on the node).
        const reserved = Object.values((await readReservation(ctxA.registry, `small-${i}`)).entries).map((e) => e.key).sort();
        const there = (await ctxA.registry.list(podsRes, 'default')).items
          .filter((p) => p.spec.nodeName === `small-${i}`)
          .map((p) => `default/${p.metadata.name}`)
          .sort();
        expect(there).toEqual(expect.arrayContaining(reserved));
      }
      // Each bound pod has one Scheduled event, whichever scheduler won.
      const scheduled = (await ctxA.registry.list(eventsRes, 'default')).items.filter((e) => e.reason === 'Scheduled');
      expect(scheduled.map((e) => e.count)).toEqual(Array(9).fill(1));
    });

    it('schedulers with snapshots of different ages, pruning as they go, never overcommit (randomized rounds)', async () => {
      await fresh();
      const ctxs = [ctx, ctxOf(open()), ctxOf(open())];
      for (let i = 0; i < 3; i++) await ctx.registry.create(nodesRes, undefined, node(`m-${i}`, { cpu: '1', memory: '1Gi', pods: '10' }));
      let nodeLists = 0;
      const spiedCtxs = ctxs.map((c) => spied(c, 'list', ([res, , params]) => void (res.resource === 'pods' && params?.fieldSelector && nodeLists++)));
      const schedulers = ctxs.map(() => createScheduler({ unschedulableBackoffMs: [0, 0] }));
      for (const [i, sc] of schedulers.entries()) await sc.allKeys(spiedCtxs[i]!);
      let made = 0;
      for (let round = 0; round < 6; round++) {
        // 300m each: three fit on a node, nine in all.
        for (let i = 0; i < 6; i++) await createPod(ctx, pod(`q${made++}`, { cpu: '300m', memory: '100Mi' }));
        // Some snapshots catch up this round, the others stay as they were (the other schedulers' binds
        // unseen). Each pending pod goes to one scheduler at random, all three at once.
        for (const [i, sc] of schedulers.entries()) if (Math.random() < 0.5) await sc.allKeys(spiedCtxs[i]!);
        const pending = (await ctx.registry.list(podsRes, 'default')).items.filter(isPendingPod).map((p) => `default/${p.metadata.name}`);
        const mine = schedulers.map(() => [] as string[]);
        for (const k of pending) mine[Math.floor(Math.random() * 3)]!.push(k);
        await Promise.all(schedulers.map(async (sc, i) => {
          for (const k of mine[i]!) await sc.reconcile(k, spiedCtxs[i]!);
        }));
        await assertNoOvercommit(ctx);
        // Some bound pods go; only some schedulers hear of it.
        const bound = (await ctx.registry.list(podsRes, 'default')).items.filter((p) => p.spec.nodeName).sort(() => Math.random() - 0.5).slice(0, 3);
        for (const p of bound) {
          await ctx.registry.delete(podsRes, 'default', p.metadata.name!, { gracePeriodSeconds: 0 });
          for (const [i, sc] of schedulers.entries()) if (Math.random() < 0.5) for (const k of sc.keys({ type: 'DELETED', resource: podsRes, object: p })) await sc.reconcile(k, spiedCtxs[i]!);
        }
      }
      await assertNoOvercommit(ctx);
      // The rounds did prune, and a scheduler behind a pruning read a node's pods.
      const pruned = await Promise.all([0, 1, 2].map(async (i) => (await readReservation(ctx.registry, `m-${i}`)).prunedThrough));
      console.log(`scheduler on ${label}: records pruned through ${pruned.join(', ')}; ${nodeLists} reads of a node's pods`);
      expect(Math.max(...pruned)).toBeGreaterThan(0);
    });

    it("a node's record keeps only pods in flight, and a scheduler whose snapshot is older than its pruning reads the node's pods first", async () => {
      await fresh();
      await ctx.registry.create(nodesRes, undefined, node('n', { cpu: '1', memory: '1Gi', pods: '10' }));
      // 300m each: three fit.
      for (const name of ['a', 'b', 'c', 'd']) await createPod(ctx, pod(name, { cpu: '300m', memory: '100Mi' }));
      const stale = createScheduler({ tieBreak: 'name' });
      await stale.allKeys(ctx); // its snapshot: n empty, every pod unbound
      const s = createScheduler({ tieBreak: 'name' });
      await s.allKeys(ctx);
      await s.reconcile('default/a', ctx);
      await s.reconcile('default/b', ctx);
      // Bound after s's snapshot was taken: their entries stay for now.
      const entries = async () => Object.values((await readReservation(ctx.registry, 'n')).entries).map((e) => e.key).sort();
      expect(await entries()).toEqual(['default/a', 'default/b']);
      // Once s's snapshot has caught up past their binds (its periodic catch-up), the next reservation on n
      // prunes them: the record holds c alone, pruned through a's and b's revisions.
      await s.allKeys(ctx);
      await s.reconcile('default/c', ctx);
      expect(await entries()).toEqual(['default/c']);
      const [a, b] = [await getPod(ctx, 'a'), await getPod(ctx, 'b')];
      expect((await readReservation(ctx.registry, 'n')).prunedThrough).toBe(Math.max(Number(a.metadata.resourceVersion), Number(b.metadata.resourceVersion)));
      // The stale scheduler sees room on n for d (its snapshot has nothing bound there). The record alone
      // (c) would let d in beside a, b and c: 1200m on a node of 1000m. Its pruning is past the snapshot, so
      // the scheduler reads n's pods first, and d does not fit.
      const lists: string[] = [];
      const counted = spied(ctx, 'list', ([res, , params]) => {
        lists.push(`${res.resource} ${params?.fieldSelector?.requirements.map((r: { field: string; value: string }) => `${r.field}=${r.value}`).join(',') ?? ''}`);
      });
      await stale.reconcile('default/d', counted);
      expect((await assertNoOvercommit(ctx)).n!.pods).toBe(3);
      expect((await getPod(ctx, 'd')).spec.nodeName).toBeUndefined();
      expect(lists).toContain('pods spec.nodeName=n');
      // The same scheduler now covers n: the pod's next cycle reads nothing more.
      lists.length = 0;
      await stale.reconcile('default/d', counted);
      expect(lists.filter((l) => l.startsWith('pods spec.nodeName'))).toEqual([]);
      // When a pod goes, its entry is already gone: nothing to release, no write of the record.
      const before = (await readReservation(ctx.registry, 'n')).rv;
      await ctx.registry.delete(podsRes, 'default', 'a', { gracePeriodSeconds: 0 });
      for (const k of s.keys({ type: 'DELETED', resource: podsRes, object: a })) await s.reconcile(k, ctx);
      expect((await readReservation(ctx.registry, 'n')).rv).toBe(before);
      // And its room is free: d fits now.
      await s.reconcile('default/d', ctx);
      expect((await getPod(ctx, 'd')).spec.nodeName).toBe('n');
      await assertNoOvercommit(ctx);
    });

    it('in-memory reservation records (the one scheduler of its store): pods in flight at once never overcommit, nothing is written for them, a standby binds nothing', async () => {
      await fresh();
      for (let i = 0; i < 2; i++) await ctx.registry.create(nodesRes, undefined, node(`mem-${i}`, { cpu: '1', memory: '1Gi', pods: '10' }));
      // 300m each: three fit on a node, six in all; twelve compete, all reconciled at once (as the runner's
      // concurrency does), so each reserve races the others through the same records.
      for (let i = 0; i < 12; i++) await createPod(ctx, pod(`m${String(i).padStart(2, '0')}`, { cpu: '300m', memory: '100Mi' }));
      const records = new MemoryReservations();
      const s = createScheduler({ reservations: records, unschedulableBackoffMs: [0, 0] });
      const keys = await s.allKeys(ctx);
      expect(keys.length).toBe(12);
      await Promise.all(keys.map((k) => s.reconcile(k, ctx)));
      const used = await assertNoOvercommit(ctx);
      expect(used['mem-0']!.pods + used['mem-1']!.pods).toBe(6);
      // The records are this scheduler's memory: no Lease was made for them.
      const stored = (await ctx.registry.list(leasesRes, 'kube-node-lease')).items.map((l) => l.metadata.name);
      expect(stored.filter((n) => n!.startsWith('skiff-alloc-'))).toEqual([]);
      // They hold exactly the pods bound to each node.
      for (const n of ['mem-0', 'mem-1']) {
        const held = Object.values((await records.read(n)).entries).map((e) => e.key).sort();
        const there = Object.entries(await placement(ctx)).filter(([, on]) => on === n).map(([name]) => `default/${name}`).sort();
        expect(held).toEqual(there);
      }
      // A pod deleted gives its room back: its entry goes with the node's reconcile, and a waiting pod fits.
      const victim = Object.entries(await placement(ctx)).find(([, on]) => on === 'mem-0')![0];
      const gone = await getPod(ctx, victim);
      await ctx.registry.delete(podsRes, 'default', victim, { gracePeriodSeconds: 0 });
      expect(s.keys({ type: 'DELETED', resource: podsRes, object: gone })).toContain('node:mem-0');
      await s.reconcile('node:mem-0', ctx);
      expect(Object.keys((await records.read('mem-0')).entries)).not.toContain(gone.metadata.uid);
      for (const k of await s.allKeys(ctx)) if (!k.startsWith('node:')) await s.reconcile(k, ctx);
      expect((await assertNoOvercommit(ctx))['mem-0']!.pods).toBe(3);
      // A standby (another process holds the data dir's scheduler lock) looks again later and binds nothing.
      await createPod(ctx, pod('standby', { cpu: '10m' }));
      const standby = createScheduler({ reservations: new MemoryReservations(), active: () => false });
      expect(await standby.reconcile('default/standby', ctx)).toEqual({ requeueAfterMs: 5000 });
      expect((await placement(ctx)).standby).toBeUndefined();
    });

    // Only DynamoDB has the log the cloud's loops read (a test that is not there, not a skipped one).
    if (label === 'DynamoDB') it("in the cloud an old snapshot catches up from the store's log: no list again, and it has what no event told it", async () => {
      await fresh();
      // As cloud-context.ts makes a loop's context: the backend is also the log (ResyncLog).
      const cloud: ControllerContext = { ...ctx, resyncLog: backend as DynamoBackend };
      const lists: string[] = [];
      const list = cloud.registry.list.bind(cloud.registry);
      cloud.registry.list = ((res: any, ns: any, o: any) => (lists.push(res.resource), list(res, ns, o))) as typeof cloud.registry.list;
      await ctx.registry.create(nodesRes, undefined, node('full', { cpu: '1' }));
      const s = createScheduler({ snapshotMaxAgeMs: 1, unschedulableBackoffMs: [0, 0] });
      await createPod(ctx, pod('first', { cpu: '800m' }));
      await s.reconcile('default/first', cloud);
      expect((await getPod(ctx, 'first')).spec.nodeName).toBe('full');
      expect(lists.filter((r) => r === 'pods')).toHaveLength(1); // the first snapshot
      // A node the scheduler hears of from no event (another shard's instance got it), and a pod that fits only there.
      await ctx.registry.create(nodesRes, undefined, node('roomy', { cpu: '4' }));
      await createPod(ctx, pod('second', { cpu: '800m' }));
      await new Promise((r) => setTimeout(r, 5)); // older than snapshotMaxAgeMs
      lists.length = 0;
      await s.reconcile('default/second', cloud);
      expect((await getPod(ctx, 'second')).spec.nodeName).toBe('roomy');
      expect(lists).toEqual([]);
    });

    it('reservations in the store: pods in flight at once on a node share its Lease writes, and never overcommit it', async () => {
      await fresh();
      for (let i = 0; i < 2; i++) await ctx.registry.create(nodesRes, undefined, node(`co-${i}`, { cpu: '1', memory: '1Gi', pods: '10' }));
      // 300m each: three fit on a node, six in all; twelve reconciled at once, as the runner's concurrency does.
      for (let i = 0; i < 12; i++) await createPod(ctx, pod(`c${String(i).padStart(2, '0')}`, { cpu: '300m', memory: '100Mi' }));
      // Every read-modify-write of a reservation Lease: each is a read and a compare-and-swap in the store.
      let leaseRounds = 0;
      const counted = spied(ctx, 'guaranteedUpdate', (args) => {
        if (args[0] !== leasesRes) return;
        const tryUpdate = args[5];
        args[5] = (cur: KubeObject) => (leaseRounds++, tryUpdate(cur));
      });
      const s = createScheduler({ unschedulableBackoffMs: [0, 0] });
      const keys = await s.allKeys(counted);
      const results = await Promise.all(keys.map((k) => s.reconcile(k, counted)));
      for (const [i, r] of results.entries()) if (r?.requeueAfterMs !== undefined) await s.reconcile(keys[i]!, counted);
      const used = await assertNoOvercommit(ctx);
      expect(used['co-0']!.pods + used['co-1']!.pods).toBe(6);
      for (const n of ['co-0', 'co-1']) {
        const reserved = Object.values((await readReservation(ctx.registry, n)).entries).map((e) => e.key).sort();
        const there = Object.entries(await placement(ctx)).filter(([, on]) => on === n).map(([name]) => `default/${name}`).sort();
        expect(there).toEqual(expect.arrayContaining(reserved));
      }
      // Twelve reserves, each on its own, took at least a round each (more when they lost the race);
      // coalesced, those waiting on a node go in one round.
      console.log(`scheduler on ${label}: ${leaseRounds} read-modify-writes of the reservation Leases for 12 pods in flight at once`);
      expect(leaseRounds).toBeLessThan(8);
    });

    it('runs on the in-process runner from watch events', async () => {
      await fresh();
      const s = createScheduler({ unschedulableBackoffMs: [200, 400] });
      const runner = runControllers(ctx, [s], { resyncMs: 60_000 });
      try {
        await ctx.registry.create(nodesRes, undefined, node('w1', { cpu: '1' }));
        for (let i = 0; i < 4; i++) await createPod(ctx, pod(`w${i}`, { cpu: '400m' }));
        // Two fit on w1; the other two wait until w2 appears.
        await until(async () => Object.values(await placement(ctx)).filter(Boolean).length === 2);
        await ctx.registry.create(nodesRes, undefined, node('w2', { cpu: '1' }));
        await until(async () => Object.values(await placement(ctx)).filter(Boolean).length === 4);
        await assertNoOvercommit(ctx);
      } finally {
        await runner.stop();
      }
    });
  });
}

async function until(cond: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
