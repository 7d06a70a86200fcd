// bench:vs-kube's custom resource phase (BENCH_ONLY=crd): custom resources and discovery with many
// CustomResourceDefinitions, on `skiff up` and on kube-apiserver (whose apiextensions-apiserver serves
// CRDs in the same process), driven by the same HTTPS client, sides interleaved per step.
//
// 1. One CRD (widgets.bench.skiff.dev: a structural schema with an integer, an enum and a CEL rule, a
//    printer column, the status subresource), waited for until Established; then create, get, list (100),
//    update and delete of its custom resources at concurrency 1 and 32: p50, p99, req/s, server CPU.
// 2. CRDS - 1 more CRDs, each in its own group, all Established; then discovery as kubectl asks for it
//    (aggregated /apis, legacy /apis and one group-version) and OpenAPI v3 (the index and one CRD's
//    group-version document) with all of them installed: p50 and p99 at concurrency 1.
// The CRDs are deleted at the end.

import { performance } from 'node:perf_hooks';
import { apiClient } from '../support/skiff-up.ts';
import { drive, pct } from './drive.ts';
import { cpuMs, type ControlPlane } from './vs-kube-cluster.ts';

const OPS = Number(process.env.BENCH_OPS ?? 400);
const CRDS = Number(process.env.BENCH_CRDS ?? 100);
const DISCOVERY_GETS = 200;
const GROUP = 'bench.skiff.dev';
const AGGREGATED = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json';

type Client = ReturnType<typeof apiClient>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '—');
const ratio = (s: number, k: number) => (Number.isFinite(s) && Number.isFinite(k) && k > 0 ? `${(s / k).toFixed(2)}×` : '—');
const serverCpuMs = (cp: ControlPlane) => cp.procs.reduce((a, p) => a + cpuMs(p.pid), 0);

function must(r: { status: number; body: any }, ...codes: number[]) {
  if (!codes.includes(r.status)) throw new Error(`expected ${codes.join('/')}, got ${r.status}: ${JSON.stringify(r.body).slice(0, 300)}`);
  return r;
}

/** A CRD shaped like an operator's: one served and stored version, a schema with a CEL rule, a column. */
function crd(group: string, plural = 'widgets', kind = 'Widget') {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope: 'Namespaced',
      names: { plural, singular: plural.slice(0, -1), kind, listKind: `${kind}List`, shortNames: [] },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [{ name: 'Size', type: 'integer', jsonPath: '.spec.size' }],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: {
                spec: {
                  type: 'object',
                  required: ['size'],
                  'x-kubernetes-validations': [{ rule: 'self.size <= 1000', message: 'size is at most 1000' }],
                  properties: {
                    size: { type: 'integer', minimum: 0 },
                    color: { type: 'string', enum: ['red', 'green', 'blue'] },
                  },
                },
                status: { type: 'object', properties: { ready: { type: 'boolean' } } },
              },
            },
          },
        },
      ],
    },
  };
}

async function established(cl: Client, name: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await cl.request('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
    if (r.status === 200 && r.body.status?.conditions?.some((c: any) => c.type === 'Established' && c.status === 'True')) return;
    if (Date.now() > end) throw new Error(`CRD ${name} not Established in ${timeoutMs} ms (${r.status})`);
    await sleep(50);
  }
}

/** Served once Established: kube-apiserver may still answer 404 for a moment after the condition. */
async function served(cl: Client, path: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while ((await cl.request('GET', path)).status !== 200) {
    if (Date.now() > end) throw new Error(`${path} not served in ${timeoutMs} ms`);
    await sleep(50);
  }
}

export async function crdPhase(sides: ControlPlane[]): Promise<void> {
  const acc = new Map<string, { lat: number[]; wallMs: number; cpuMs: number }>();
  const ops: string[] = [];
  const measure = async (cp: ControlPlane, op: string, conc: number, run: () => Promise<{ lat: number[]; wall: number }>) => {
    const c0 = serverCpuMs(cp);
    const r = await run();
    const k = `${cp.name}|${op}|${conc}`;
    const a = acc.get(k) ?? { lat: [], wallMs: 0, cpuMs: 0 };
    a.lat.push(...r.lat);
    a.wallMs += r.wall;
    a.cpuMs += serverCpuMs(cp) - c0;
    acc.set(k, a);
    if (!ops.includes(op)) ops.push(op);
  };

  const admin = new Map<string, Client>(sides.map((cp) => [cp.name, apiClient(cp.dir, cp.url, { maxSockets: 32 })]));
  for (const cp of sides) {
    const cl = admin.get(cp.name)!;
    must(await cl.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd(GROUP)), 201);
    await established(cl, `widgets.${GROUP}`);
  }

  // 1. Custom resources.
  for (const conc of [1, 32]) {
    const ns = `vsk-crd-c${conc}`;
    for (const cp of sides) {
      const cl = admin.get(cp.name)!;
      must(await cl.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }), 201);
      await served(cl, `/apis/${GROUP}/v1/namespaces/${ns}/widgets`);
      // Not measured: kube-apiserver took 2 s over its first create of a new custom resource.
      must(await cl.request('POST', `/apis/${GROUP}/v1/namespaces/${ns}/widgets`, { apiVersion: `${GROUP}/v1`, kind: 'Widget', metadata: { name: 'warm-up' }, spec: { size: 1 } }), 201);
      must(await cl.request('DELETE', `/apis/${GROUP}/v1/namespaces/${ns}/widgets/warm-up`), 200);
    }
    const base = `/apis/${GROUP}/v1/namespaces/${ns}/widgets`;
    const widget = (i: number, size = i % 1000) => ({ apiVersion: `${GROUP}/v1`, kind: 'Widget', metadata: { name: `w-${i}` }, spec: { size, color: 'red' } });
    const rvs = new Map<string, Map<number, string>>(sides.map((cp) => [cp.name, new Map()]));
    const steps: [string, number, (cl: Client, rv: Map<number, string>, i: number) => Promise<void>][] = [
      ['CR create', OPS, async (cl, rv, i) => void rv.set(i, must(await cl.request('POST', base, widget(i)), 201).body.metadata.resourceVersion)],
      ['CR get', OPS, async (cl, _rv, i) => void must(await cl.request('GET', `${base}/w-${i}`), 200)],
      ['CR list (100 items)', Math.max(20, OPS / 4), async (cl) => void must(await cl.request('GET', `${base}?limit=100`), 200)],
      [
        'CR update',
        OPS,
        async (cl, rv, i) => {
          const o = widget(i, (i + 1) % 1000);
          must(await cl.request('PUT', `${base}/w-${i}`, { ...o, metadata: { ...o.metadata, resourceVersion: rv.get(i) } }), 200);
        },
      ],
      ['CR delete', OPS, async (cl, _rv, i) => void must(await cl.request('DELETE', `${base}/w-${i}`), 200)],
    ];
    const clients = new Map(sides.map((cp) => [cp.name, apiClient(cp.dir, cp.url, { maxSockets: conc })]));
    // Connections opened before the rows, as the main API rows do: without this the first row at c=32 also
    // measured 32 TLS handshakes at once (CR create's p99 157-219 ms on skiff up's one thread, 63-73 ms).
    for (const cp of sides) await drive(conc * 2, conc, async () => void must(await clients.get(cp.name)!.request('GET', `/api/v1/namespaces/${ns}`), 200));
    for (const [op, n, fn] of steps)
      for (const cp of conc === 1 ? sides : [...sides].reverse()) {
        const cl = clients.get(cp.name)!;
        await measure(cp, op, conc, () => drive(n, conc, (i) => fn(cl, rvs.get(cp.name)!, i)));
      }
    for (const cl of clients.values()) cl.close();
  }

  // 2. Discovery and OpenAPI with CRDS CRDs installed.
  const installed = new Map<string, number>();
  for (const cp of sides) {
    const cl = admin.get(cp.name)!;
    const t0 = performance.now();
    await drive(CRDS - 1, 8, async (i) => void must(await cl.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd(`g${i}.${GROUP}`)), 201));
    for (let i = 0; i < CRDS - 1; i++) await established(cl, `widgets.g${i}.${GROUP}`);
    await served(cl, `/apis/g${CRDS - 2}.${GROUP}/v1`);
    installed.set(cp.name, (performance.now() - t0) / 1000);
  }
  const gets: [string, string, Record<string, string>][] = [
    ['discovery /apis (aggregated)', '/apis', { accept: AGGREGATED }],
    ['discovery /apis (legacy)', '/apis', {}],
    [`discovery /apis/g0.${GROUP}/v1`, `/apis/g0.${GROUP}/v1`, {}],
    ['OpenAPI v3 index', '/openapi/v3', {}],
    [`OpenAPI v3 /apis/g0.${GROUP}/v1`, `/openapi/v3/apis/g0.${GROUP}/v1`, {}],
  ];
  for (const [op, path, headers] of gets)
    for (const cp of sides) {
      const cl = admin.get(cp.name)!;
      await measure(cp, op, 1, () => drive(DISCOVERY_GETS, 1, async () => void must(await cl.request('GET', path, undefined, headers), 200)));
    }

  // Clean up: every CRD (their custom resources go with them).
  for (const cp of sides) {
    const cl = admin.get(cp.name)!;
    for (let i = 0; i < CRDS - 1; i++) await cl.request('DELETE', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.g${i}.${GROUP}`);
    await cl.request('DELETE', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.${GROUP}`);
    cl.close();
  }

  const names = sides.map((s) => s.name);
  const stat = (side: string, op: string, conc: number) => {
    const a = acc.get(`${side}|${op}|${conc}`);
    if (!a) return undefined;
    const lat = [...a.lat].sort((x, y) => x - y);
    return { n: lat.length, p50: pct(lat, 50), p99: pct(lat, 99), rps: (lat.length / a.wallMs) * 1000, cpu: a.cpuMs / Math.max(1, lat.length) };
  };
  console.log(`\n### Custom resources (${OPS} requests per row; list: ${Math.max(20, OPS / 4)}), and discovery with ${CRDS} CRDs installed (${DISCOVERY_GETS} GETs each)\n`);
  console.log(`Installing ${CRDS - 1} CRDs (8 at a time) until all were Established and served: ${names.map((n) => `${n} ${fmt(installed.get(n)!, 1)} s`).join(', ')}.\n`);
  console.log('| side | operation | concurrency | requests | p50 ms | p99 ms | req/s | server CPU ms/request |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const op of ops)
    for (const conc of [1, 32])
      for (const side of names) {
        const s = stat(side, op, conc);
        if (s) console.log(`| ${side} | ${op} | ${conc} | ${s.n} | ${fmt(s.p50, 2)} | ${fmt(s.p99, 2)} | ${fmt(s.rps, 0)} | ${fmt(s.cpu, 2)} |`);
      }
  if (names.length === 2) {
    console.log('\nRatios Skiff/Kubernetes:\n');
    console.log('| operation | concurrency | p50 | p99 | req/s | server CPU/request |');
    console.log('|---|---:|---:|---:|---:|---:|');
    for (const op of ops)
      for (const conc of [1, 32]) {
        const s = stat('Skiff', op, conc);
        const k = stat('Kubernetes', op, conc);
        if (s && k) console.log(`| ${op} | ${conc} | ${ratio(s.p50, k.p50)} | ${ratio(s.p99, k.p99)} | ${ratio(s.rps, k.rps)} | ${ratio(s.cpu, k.cpu)} |`);
      }
  }
}
