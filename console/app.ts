// The Skiff web console (issue #17 item 4), served by the apiserver at /ui/ (lambdas/apiserver/console.ts).
// An ordinary API client: it signs in with a bearer token (kept in sessionStorage, sent as
// `Authorization: Bearer` on every call, never in a URL), reads with LIST and keeps lists current with
// watches (fetch streaming of ?watch=1, resumed from the last resourceVersion, relisted on 410 Gone).
// preact + htm: a React-style component model in ~4 KB gzipped, with no JSX compile step.

import { h, render, type ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';

const html = htm.bind(h);
type Obj = any; // Kubernetes objects as the API sends them

// ---- the API client ----

const TOKEN_KEY = 'skiff.token';
const NS_KEY = 'skiff.namespace';
let token = sessionStorage.getItem(TOKEN_KEY) ?? '';
let onSignedOut: (message: string) => void = () => {};

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function headers(): Record<string, string> {
  return { authorization: `Bearer ${token}`, accept: 'application/json' };
}

async function failure(r: Response): Promise<HttpError> {
  if (r.status === 401) {
    token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    onSignedOut('The token was not accepted (401 Unauthorized). Sign in again.');
  }
  const status = (await r.json().catch(() => undefined)) as { message?: string } | undefined;
  return new HttpError(r.status, status?.message ?? `${r.status} ${r.statusText}`);
}

async function api(path: string, signal?: AbortSignal): Promise<Obj> {
  const r = await fetch(path, { headers: headers(), signal });
  if (!r.ok) throw await failure(r);
  return r.json();
}

/** A GET's body as text chunks while they arrive (a watch, a followed log). */
async function* streamed(path: string, signal: AbortSignal): AsyncGenerator<string> {
  const r = await fetch(path, { headers: headers(), signal });
  if (!r.ok) throw await failure(r);
  const reader = r.body!.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    yield value;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A collection's path: core (group '') or a group's, all namespaces or one. */
function coll(group: string, version: string, resource: string, ns?: string): string {
  const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
  return `${base}${ns ? `/namespaces/${encodeURIComponent(ns)}` : ''}/${resource}`;
}

interface ListState {
  items: Obj[];
  loaded: boolean;
  error?: string;
}

/**
 * Watches held open at once. Over HTTP/1.1 (skiff up's server) a browser opens at most 6 connections to
 * a host and each open watch holds one; the rest are for GETs (logs, history, metrics). A list that finds
 * no slot free is kept current by listing again every 3 s until one frees.
 */
const WATCH_SLOTS = 3;
let watchesOpen = 0;

/** A list kept current by a watch: LIST, then WATCH from its resourceVersion, resumed where it ended. */
function useList(path: string | undefined): ListState {
  const [state, setState] = useState<ListState>({ items: [], loaded: false });
  useEffect(() => {
    setState({ items: [], loaded: false });
    if (!path) return;
    const ctl = new AbortController();
    const key = (o: Obj) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
    let objects = new Map<string, Obj>();
    let scheduled = false;
    let holding = false;
    const release = () => {
      if (holding) watchesOpen--;
      holding = false;
    };
    const publish = () => {
      if (scheduled) return;
      scheduled = true;
      // Many events in a burst make one render.
      setTimeout(() => {
        scheduled = false;
        if (!ctl.signal.aborted) setState({ items: [...objects.values()], loaded: true });
      }, 50);
    };
    void (async () => {
      let rv = '';
      const sep = path.includes('?') ? '&' : '?';
      while (!ctl.signal.aborted) {
        try {
          if (!rv) {
            const list = await api(path, ctl.signal);
            objects = new Map(list.items.map((o: Obj) => [key(o), o]));
            rv = list.metadata.resourceVersion;
            publish();
          }
          if (!holding) {
            if (watchesOpen >= WATCH_SLOTS) {
              await sleep(3000);
              rv = '';
              continue;
            }
            holding = true;
            watchesOpen++;
          }
          let buf = '';
          for await (const value of streamed(`${path}${sep}watch=1&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(rv)}`, ctl.signal)) {
            buf += value;
            let i: number;
            while ((i = buf.indexOf('\n')) >= 0) {
              const line = buf.slice(0, i).trim();
              buf = buf.slice(i + 1);
              if (!line) continue;
              const ev = JSON.parse(line) as { type: string; object: Obj };
              if (ev.type === 'ERROR') {
                // 410 Gone: the revision is compacted away; list again.
                rv = '';
                throw new HttpError(ev.object?.code ?? 500, ev.object?.message ?? 'watch error');
              }
              rv = ev.object.metadata.resourceVersion;
              if (ev.type === 'BOOKMARK') continue;
              if (ev.type === 'DELETED') objects.delete(key(ev.object));
              else objects.set(key(ev.object), ev.object);
              publish();
            }
          }
        } catch (e) {
          if (ctl.signal.aborted) return;
          if (e instanceof HttpError && e.status !== 410) {
            setState((s) => ({ ...s, loaded: true, error: e.message }));
            if (e.status === 401 || e.status === 403 || e.status === 404) return;
          }
          await sleep(1000);
        }
      }
    })();
    return () => {
      ctl.abort();
      release();
    };
  }, [path]);
  return state;
}

/** A GET, again every `everyMs` when given (metrics, which have no watch). */
function useGet(path: string | undefined, everyMs = 0): { data?: Obj; error?: string } {
  const [state, setState] = useState<{ data?: Obj; error?: string }>({});
  useEffect(() => {
    setState({});
    if (!path) return;
    const ctl = new AbortController();
    const load = () =>
      api(path, ctl.signal).then(
        (data) => setState({ data }),
        (e) => !ctl.signal.aborted && setState((s) => ({ ...s, error: (e as Error).message })),
      );
    void load();
    const t = everyMs ? setInterval(load, everyMs) : undefined;
    return () => {
      ctl.abort();
      clearInterval(t);
    };
  }, [path, everyMs]);
  return state;
}

// ---- formatting ----

function age(ts?: string): string {
  if (!ts) return '';
  const s = Math.max(0, (Date.now() - Date.parse(ts)) / 1000);
  if (s < 120) return `${Math.floor(s)}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** A quantity as a number (cores for cpu, bytes for memory). */
function quantity(q?: string): number {
  if (!q) return 0;
  const m = /^([0-9.]+)([a-zA-Z]*)$/.exec(q);
  if (!m) return 0;
  const units: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 };
  return Number(m[1]) * (units[m[2]!] ?? 1);
}
const cores = (n: number) => (n < 1 ? `${Math.round(n * 1000)}m` : n.toFixed(2));
const mib = (n: number) => `${Math.round(n / 1024 ** 2)}Mi`;

function podPhase(p: Obj): string {
  return p.metadata.deletionTimestamp ? 'Terminating' : (p.status?.phase ?? 'Pending');
}
const byName = (a: Obj, b: Obj) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`);

// ---- routing: #/view/arg/... ----

function useRoute(): string[] {
  const parse = () => location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent).filter((s, i) => s || i === 0);
  const [route, setRoute] = useState(parse());
  useEffect(() => {
    const on = () => setRoute(parse());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}
const href = (...parts: string[]) => '#/' + parts.map(encodeURIComponent).join('/');

// ---- views ----

function Title(props: { children: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null);
  // A new view: focus its heading, so keyboard and screen-reader users land on it.
  useEffect(() => ref.current?.focus(), []);
  return html`<h1 tabindex="-1" ref=${ref}>${props.children}</h1>`;
}

function Problem(props: { error?: string }) {
  return props.error ? html`<p role="alert" class="error">${props.error}</p>` : null;
}

function Table(props: { caption: string; head: string[]; rows: ComponentChildren[][]; empty?: string; max?: number }) {
  const max = props.max ?? 500;
  const rows = props.rows.slice(0, max);
  return html`<table>
    <caption>${props.caption} (${props.rows.length})</caption>
    <thead><tr>${props.head.map((c) => html`<th scope="col">${c}</th>`)}</tr></thead>
    <tbody>
      ${rows.map((r) => html`<tr>${r.map((c) => html`<td>${c}</td>`)}</tr>`)}
      ${props.rows.length === 0 ? html`<tr><td colspan=${props.head.length} class="muted">${props.empty ?? 'None.'}</td></tr>` : null}
    </tbody>
  </table>
  ${props.rows.length > max ? html`<p class="muted">Showing ${max} of ${props.rows.length}.</p>` : null}`;
}

const PHASES = ['Running', 'Pending', 'Succeeded', 'Failed', 'Unknown', 'Terminating'];

function PodSquare(props: { pod: Obj }) {
  const p = props.pod;
  const phase = podPhase(p);
  const label = `${p.metadata.namespace}/${p.metadata.name}: ${phase}`;
  return html`<li><a class=${`pod ${phase}`} href=${href('pod', p.metadata.namespace, p.metadata.name)} title=${label} aria-label=${label}></a></li>`;
}

/** The picture of the cluster: each node a box holding its pods, coloured by phase. */
function ClusterView(props: { ns: string }) {
  const nodes = useList(coll('', 'v1', 'nodes'));
  const pods = useList(coll('', 'v1', 'pods', props.ns));
  const metrics = useGet('/apis/metrics.k8s.io/v1beta1/nodes', 15_000);
  const usage = new Map<string, Obj>((metrics.data?.items ?? []).map((m: Obj) => [m.metadata.name, m.usage]));
  const byNode = new Map<string, Obj[]>();
  for (const p of pods.items) {
    const n = p.spec?.nodeName ?? '';
    if (!byNode.has(n)) byNode.set(n, []);
    byNode.get(n)!.push(p);
  }
  const unscheduled = byNode.get('') ?? [];
  const ready = (n: Obj) => n.status?.conditions?.find((c: Obj) => c.type === 'Ready')?.status === 'True';
  return html`<${Title}>Cluster</${Title}>
    <${Problem} error=${nodes.error ?? pods.error} />
    <p>${nodes.items.length} nodes, <span data-testid="pod-count">${pods.items.length}</span> pods${props.ns ? ` in ${props.ns}` : ''}.</p>
    <ul class="legend" aria-label="Pod phases">${PHASES.map((ph) => html`<li><span class=${`pod ${ph}`} aria-hidden="true"></span>${ph}</li>`)}</ul>
    <ul class="nodes" aria-label="Nodes and their pods" data-loaded=${String(nodes.loaded && pods.loaded)}>
      ${[...nodes.items].sort(byName).map((n) => {
        const u = usage.get(n.metadata.name);
        const mine = (byNode.get(n.metadata.name) ?? []).sort(byName);
        return html`<li class="node">
          <h2><a href=${href('node', n.metadata.name)}>${n.metadata.name}</a></h2>
          <p class="muted">${ready(n) ? 'Ready' : 'Not ready'} · ${mine.length} pods${u ? ` · cpu ${cores(quantity(u.cpu))}/${n.status?.capacity?.cpu ?? '?'} · mem ${mib(quantity(u.memory))}` : ''}</p>
          <ul class="pods" aria-label=${`Pods on ${n.metadata.name}`}>${mine.map((p) => html`<${PodSquare} pod=${p} />`)}</ul>
        </li>`;
      })}
      ${unscheduled.length
        ? html`<li class="node"><h2>Not scheduled</h2><p class="muted">${unscheduled.length} pods</p>
            <ul class="pods" aria-label="Pods not scheduled">${unscheduled.sort(byName).map((p) => html`<${PodSquare} pod=${p} />`)}</ul></li>`
        : null}
    </ul>`;
}

function NamespacesView(props: { setNs: (ns: string) => void }) {
  const list = useList(coll('', 'v1', 'namespaces'));
  return html`<${Title}>Namespaces</${Title}><${Problem} error=${list.error} />
    <${Table} caption="Namespaces" head=${['Name', 'Status', 'Age', '']} rows=${[...list.items].sort(byName).map((n) => [
      html`<a href=${href('o', 'core', 'v1', 'namespaces', '_', n.metadata.name)}>${n.metadata.name}</a>`,
      n.status?.phase ?? '',
      age(n.metadata.creationTimestamp),
      html`<button type="button" onClick=${() => props.setNs(n.metadata.name)}>Show only ${n.metadata.name}</button>`,
    ])} />`;
}

const WORKLOADS: { kind: string; group: string; version: string; resource: string; ready: (o: Obj) => string }[] = [
  { kind: 'Deployments', group: 'apps', version: 'v1', resource: 'deployments', ready: (o) => `${o.status?.readyReplicas ?? 0}/${o.spec?.replicas ?? 0}` },
  { kind: 'StatefulSets', group: 'apps', version: 'v1', resource: 'statefulsets', ready: (o) => `${o.status?.readyReplicas ?? 0}/${o.spec?.replicas ?? 0}` },
  { kind: 'DaemonSets', group: 'apps', version: 'v1', resource: 'daemonsets', ready: (o) => `${o.status?.numberReady ?? 0}/${o.status?.desiredNumberScheduled ?? 0}` },
  { kind: 'ReplicaSets', group: 'apps', version: 'v1', resource: 'replicasets', ready: (o) => `${o.status?.readyReplicas ?? 0}/${o.spec?.replicas ?? 0}` },
  { kind: 'Jobs', group: 'batch', version: 'v1', resource: 'jobs', ready: (o) => `${o.status?.succeeded ?? 0}/${o.spec?.completions ?? 1} done` },
  { kind: 'CronJobs', group: 'batch', version: 'v1', resource: 'cronjobs', ready: (o) => `${o.spec?.schedule ?? ''}${o.spec?.suspend ? ' (suspended)' : ''}` },
];

function WorkloadTable(props: { w: (typeof WORKLOADS)[number]; ns: string }) {
  const { w } = props;
  const list = useList(coll(w.group, w.version, w.resource, props.ns));
  return html`<${Problem} error=${list.error} /><${Table} caption=${w.kind} head=${['Name', 'Namespace', w.kind === 'CronJobs' ? 'Schedule' : 'Ready', 'Age']}
    rows=${[...list.items].sort(byName).map((o) => [
      html`<a href=${href('o', w.group, w.version, w.resource, o.metadata.namespace, o.metadata.name)}>${o.metadata.name}</a>`,
      o.metadata.namespace,
      w.ready(o),
      age(o.metadata.creationTimestamp),
    ])} />`;
}

function PodTable(props: { path: string; caption?: string }) {
  const pods = useList(props.path);
  return html`<${Problem} error=${pods.error} /><${Table} caption=${props.caption ?? 'Pods'} head=${['Name', 'Namespace', 'Phase', 'Ready', 'Restarts', 'Node', 'Age']}
    rows=${[...pods.items].sort(byName).map((p) => {
      const cs: Obj[] = p.status?.containerStatuses ?? [];
      return [
        html`<a href=${href('pod', p.metadata.namespace, p.metadata.name)}>${p.metadata.name}</a>`,
        p.metadata.namespace,
        html`<span class="phase">${podPhase(p)}</span>`,
        `${cs.filter((c) => c.ready).length}/${p.spec?.containers?.length ?? 0}`,
        String(cs.reduce((n, c) => n + (c.restartCount ?? 0), 0)),
        p.spec?.nodeName ?? '',
        age(p.metadata.creationTimestamp),
      ];
    })} />`;
}

function WorkloadsView(props: { ns: string }) {
  return html`<${Title}>Workloads</${Title}>
    ${WORKLOADS.map((w) => html`<${WorkloadTable} key=${w.resource} w=${w} ns=${props.ns} />`)}
    <${PodTable} path=${coll('', 'v1', 'pods', props.ns)} />`;
}

function NodesView() {
  const nodes = useList(coll('', 'v1', 'nodes'));
  const metrics = useGet('/apis/metrics.k8s.io/v1beta1/nodes', 15_000);
  const usage = new Map<string, Obj>((metrics.data?.items ?? []).map((m: Obj) => [m.metadata.name, m.usage]));
  return html`<${Title}>Nodes</${Title}><${Problem} error=${nodes.error} />
    <${Table} caption="Nodes" head=${['Name', 'Ready', 'CPU used', 'CPU capacity', 'Memory used', 'Memory capacity', 'Age']}
      rows=${[...nodes.items].sort(byName).map((n) => {
        const u = usage.get(n.metadata.name);
        return [
          html`<a href=${href('node', n.metadata.name)}>${n.metadata.name}</a>`,
          n.status?.conditions?.find((c: Obj) => c.type === 'Ready')?.status ?? 'Unknown',
          u ? cores(quantity(u.cpu)) : '–',
          n.status?.capacity?.cpu ?? '',
          u ? mib(quantity(u.memory)) : '–',
          n.status?.capacity?.memory ? mib(quantity(n.status.capacity.memory)) : '',
          age(n.metadata.creationTimestamp),
        ];
      })} />
    ${metrics.error ? html`<p class="muted">Usage unavailable: ${metrics.error}</p>` : null}`;
}

function ServicesView(props: { ns: string }) {
  const svcs = useList(coll('', 'v1', 'services', props.ns));
  const eps = useList(coll('', 'v1', 'endpoints', props.ns));
  return html`<${Title}>Services and endpoints</${Title}><${Problem} error=${svcs.error ?? eps.error} />
    <${Table} caption="Services" head=${['Name', 'Namespace', 'Type', 'Cluster IP', 'Ports', 'Selector']}
      rows=${[...svcs.items].sort(byName).map((s) => [
        html`<a href=${href('o', 'core', 'v1', 'services', s.metadata.namespace, s.metadata.name)}>${s.metadata.name}</a>`,
        s.metadata.namespace,
        s.spec?.type ?? '',
        s.spec?.clusterIP ?? '',
        (s.spec?.ports ?? []).map((p: Obj) => `${p.port}${p.nodePort ? ':' + p.nodePort : ''}/${p.protocol ?? 'TCP'}`).join(', '),
        Object.entries(s.spec?.selector ?? {}).map(([k, v]) => `${k}=${v}`).join(','),
      ])} />
    <${Table} caption="Endpoints" head=${['Name', 'Namespace', 'Addresses']}
      rows=${[...eps.items].sort(byName).map((e) => [
        e.metadata.name,
        e.metadata.namespace,
        (e.subsets ?? [])
          .flatMap((s: Obj) => (s.addresses ?? []).flatMap((a: Obj) => (s.ports ?? [{}]).map((p: Obj) => `${a.ip}${p.port ? ':' + p.port : ''}`)))
          .join(', ') || 'none ready',
      ])} />`;
}

function EventsTable(props: { path: string; caption?: string }) {
  const events = useList(props.path);
  const when = (e: Obj) => e.lastTimestamp ?? e.eventTime ?? e.metadata.creationTimestamp ?? '';
  const sorted = [...events.items].sort((a, b) => when(b).localeCompare(when(a)));
  return html`<${Problem} error=${events.error} /><${Table} caption=${props.caption ?? 'Events'} max=${200} head=${['Age', 'Type', 'Reason', 'Object', 'Message']}
    rows=${sorted.map((e) => [age(when(e)), e.type ?? '', e.reason ?? '', `${e.involvedObject?.kind ?? ''}/${e.involvedObject?.name ?? ''}`, e.message ?? ''])} />`;
}

function EventsView(props: { ns: string }) {
  return html`<${Title}>Events</${Title}><${EventsTable} path=${coll('', 'v1', 'events', props.ns)} />`;
}

/** An object's recorded changes (lambdas/apiserver/history.ts; `skiff history` prints the same). */
function History(props: { group: string; resource: string; ns?: string; name: string }) {
  const res = props.group ? `${props.resource}.${props.group}` : props.resource;
  const path = `/apis/history.skiff.io/v1${props.ns ? `/namespaces/${encodeURIComponent(props.ns)}` : ''}/${res}/${encodeURIComponent(props.name)}?limit=20`;
  const [n, setN] = useState(0);
  const hist = useGet(`${path}&_=${n}`);
  const entries: Obj[] = hist.data?.entries ?? [];
  return html`<section aria-labelledby="history-h">
    <h2 id="history-h">History <button type="button" onClick=${() => setN(n + 1)}>Refresh</button></h2>
    <${Problem} error=${hist.error} />
    ${hist.data?.message ? html`<p class="muted">${hist.data.message}</p>` : null}
    ${hist.data && !entries.length ? html`<p class="muted">No recorded changes.</p>` : null}
    <ul>
      ${[...entries].reverse().map(
        (e) => html`<li><details>
          <summary>revision ${e.revision}: ${e.operation}${e.subresource ? ` (${e.subresource})` : ''} by ${e.user?.username ?? 'unknown'}, ${age(e.time)} ago${e.unrecordedBefore ? ' (earlier changes not recorded)' : ''}</summary>
          ${e.diffOmitted ? html`<p class="muted">Diff not shown: this answer reached its size limit.</p>` : html`<pre>${e.diff}</pre>`}
        </details></li>`,
      )}
    </ul>
  </section>`;
}

/** A container's logs (the pods/log subresource), followed as they come when asked. */
function Logs(props: { ns: string; pod: string; container: string }) {
  const [follow, setFollow] = useState(false);
  const [text, setText] = useState('');
  const [error, setError] = useState<string>();
  useEffect(() => {
    const ctl = new AbortController();
    setText('');
    setError(undefined);
    const q = new URLSearchParams({ container: props.container, tailLines: '500', ...(follow ? { follow: 'true' } : {}) });
    void (async () => {
      try {
        let all = '';
        for await (const value of streamed(`${coll('', 'v1', 'pods', props.ns)}/${encodeURIComponent(props.pod)}/log?${q}`, ctl.signal)) {
          all = (all + value).slice(-200_000);
          setText(all);
        }
      } catch (e) {
        if (!ctl.signal.aborted) setError((e as Error).message);
      }
    })();
    return () => ctl.abort();
  }, [props.ns, props.pod, props.container, follow]);
  return html`<section aria-labelledby="logs-h">
    <h2 id="logs-h">Logs of ${props.container}</h2>
    <label><input type="checkbox" checked=${follow} onChange=${(e: Event) => setFollow((e.target as HTMLInputElement).checked)} /> Follow</label>
    <${Problem} error=${error} />
    <pre role="log" aria-label=${`Logs of ${props.container}`} tabindex="0">${text}</pre>
  </section>`;
}

function Labels(props: { labels?: Record<string, string> }) {
  const entries = Object.entries(props.labels ?? {});
  return html`<span class="labels" data-testid="labels">${entries.length ? entries.map(([k, v]) => html`<code>${k}=${v}</code>`) : 'none'}</span>`;
}

function PodView(props: { ns: string; name: string; container?: string }) {
  const { ns, name } = props;
  // One pod, kept current by a watch narrowed to it.
  const list = useList(`${coll('', 'v1', 'pods', ns)}?fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`);
  const pod = list.items[0];
  const sel = encodeURIComponent(`involvedObject.kind=Pod,involvedObject.name=${name}`);
  const statuses = new Map<string, Obj>((pod?.status?.containerStatuses ?? []).map((c: Obj) => [c.name, c]));
  const state = (c?: Obj) => (c?.state ? Object.entries(c.state).map(([k, v]: [string, Obj]) => `${k}${v?.reason ? ` (${v.reason})` : ''}`).join(', ') : 'waiting');
  return html`<${Title}>Pod ${ns}/${name}</${Title}><${Problem} error=${list.error} />
    ${list.loaded && !pod ? html`<p role="alert">This pod does not exist (any more).</p>` : null}
    ${pod
      ? html`<dl>
          <dt>Phase</dt><dd class="phase" data-testid="phase">${podPhase(pod)}</dd>
          <dt>Node</dt><dd>${pod.spec?.nodeName ?? 'not scheduled'}</dd>
          <dt>Pod IP</dt><dd>${pod.status?.podIP ?? ''}</dd>
          <dt>Labels</dt><dd><${Labels} labels=${pod.metadata.labels} /></dd>
          <dt>Created</dt><dd>${pod.metadata.creationTimestamp} (${age(pod.metadata.creationTimestamp)} ago)</dd>
        </dl>
        <${Table} caption="Containers" head=${['Name', 'Image', 'State', 'Ready', 'Restarts', '']}
          rows=${(pod.spec?.containers ?? []).map((c: Obj) => [
            c.name,
            c.image,
            state(statuses.get(c.name)),
            statuses.get(c.name)?.ready ? 'yes' : 'no',
            String(statuses.get(c.name)?.restartCount ?? 0),
            html`<a href=${href('pod', ns, name, 'logs', c.name)}>Logs of ${c.name}</a>`,
          ])} />
        <${Table} caption="Conditions" head=${['Type', 'Status', 'Reason']}
          rows=${(pod.status?.conditions ?? []).map((c: Obj) => [c.type, c.status, c.reason ?? ''])} />`
      : null}
    ${props.container ? html`<${Logs} ns=${ns} pod=${name} container=${props.container} />` : null}
    <${EventsTable} caption="Events of this pod" path=${`${coll('', 'v1', 'events', ns)}?fieldSelector=${sel}`} />
    <${History} group="" resource="pods" ns=${ns} name=${name} />`;
}

/** Any object: its pods (for a workload with a selector), what it is now, and its history. */
function ObjectView(props: { group: string; version: string; resource: string; ns?: string; name: string }) {
  const group = props.group === 'core' ? '' : props.group;
  const ns = props.ns === '_' ? undefined : props.ns;
  const list = useList(`${coll(group, props.version, props.resource, ns)}?fieldSelector=${encodeURIComponent(`metadata.name=${props.name}`)}`);
  const o = list.items[0];
  const match = o?.spec?.selector?.matchLabels ?? (props.resource === 'services' ? o?.spec?.selector : undefined);
  const selector = match ? Object.entries(match).map(([k, v]) => `${k}=${v}`).join(',') : '';
  return html`<${Title}>${props.resource} ${ns ? `${ns}/` : ''}${props.name}</${Title}><${Problem} error=${list.error} />
    ${list.loaded && !o ? html`<p role="alert">This object does not exist (any more).</p>` : null}
    ${o ? html`<p>Labels: <${Labels} labels=${o.metadata.labels} /></p>` : null}
    ${selector && ns ? html`<${PodTable} caption="Its pods" path=${`${coll('', 'v1', 'pods', ns)}?labelSelector=${encodeURIComponent(selector)}`} />` : null}
    ${o ? html`<details><summary>The object as stored</summary><pre>${JSON.stringify(o, null, 2)}</pre></details>` : null}
    <${History} group=${group} resource=${props.resource} ns=${ns} name=${props.name} />`;
}

function NodeView(props: { name: string }) {
  return html`<${ObjectView} group="core" version="v1" resource="nodes" ns="_" name=${props.name} />
    <${PodTable} caption="Pods on this node" path=${`${coll('', 'v1', 'pods')}?fieldSelector=${encodeURIComponent(`spec.nodeName=${props.name}`)}`} />`;
}

// ---- cost per namespace (issue #17 item 6; lambdas/apiserver/cost.ts serves it, `skiff cost` prints it) ----

const COST = '/apis/cost.skiff.io/v1';
const WINDOWS: [string, string, number][] = [
  ['1h', 'Last hour', 3600],
  ['1d', 'Last day', 86400],
  ['7d', 'Last 7 days', 7 * 86400],
  ['30d', 'Last 30 days', 30 * 86400],
];
/** The report's dollars by service, as the cost model names them; keys not listed are shown as they come. */
const SERVICES: Record<string, string> = { lambda: 'Lambda', dynamo: 'DynamoDB', cloudFront: 'CloudFront', sqs: 'SQS', logs: 'CloudWatch Logs', scheduler: 'EventBridge Scheduler', fixed: 'Estimated' };

interface Cost {
  report?: Obj;
  /** Why only some namespaces are shown (the cluster-wide report was forbidden). */
  partial?: string;
  /** Neither the cluster-wide report nor the namespaces' list may be read: the user names a namespace. */
  askNamespace?: boolean;
}

/** The lines' numbers added field by field (nested ones too: usd, dynamoRequests), whatever fields they have. */
function addUp(lines: Obj[]): Obj {
  const add = (into: Obj, l: Obj) => {
    for (const [k, v] of Object.entries(l ?? {})) {
      if (typeof v === 'number') into[k] = (into[k] ?? 0) + v;
      else if (v && typeof v === 'object' && !Array.isArray(v)) add((into[k] ??= {}), v);
    }
    return into;
  };
  return lines.reduce(add, {});
}

const forbidden = (e: unknown) => e instanceof HttpError && (e.status === 403 || e.status === 404);

/**
 * The cluster-wide report; for a user who may not read it (403), the report of each namespace they may get
 * pods in, summed here; for one namespace (the header's choice), its own report.
 */
async function loadCost(since: string, ns: string, signal: AbortSignal): Promise<Cost> {
  const q = `?since=${encodeURIComponent(since)}`;
  if (ns) return { report: await api(`${COST}/namespaces/${encodeURIComponent(ns)}/usage${q}`, signal) };
  let why: string;
  try {
    return { report: await api(`${COST}/usage${q}`, signal) };
  } catch (e) {
    if (!(e instanceof HttpError) || e.status !== 403) throw e;
    why = e.message;
  }
  let names: string[];
  try {
    names = (await api(coll('', 'v1', 'namespaces'), signal)).items.map((n: Obj) => n.metadata.name);
  } catch (e) {
    if (!forbidden(e)) throw e;
    return { partial: `You may not read the cluster-wide report (${why}), nor list namespaces: name one you may get pods in.`, askNamespace: true };
  }
  const reports = (await Promise.all(names.map((n) => api(`${COST}/namespaces/${encodeURIComponent(n)}/usage${q}`, signal).catch((e) => (forbidden(e) ? undefined : Promise.reject(e)))))).filter(Boolean);
  const lines = reports.flatMap((r) => r.namespaces ?? []).sort((a: Obj, b: Obj) => (b.usd?.total ?? 0) - (a.usd?.total ?? 0));
  return {
    partial: `You may not read the cluster-wide report (${why}): shown are the namespaces you may get pods in (${lines.length}) and their total, without the cluster's overhead.`,
    askNamespace: lines.length === 0,
    report: reports.length ? { window: reports[0].window, pricing: reports[0].pricing, namespaces: lines, overhead: [], total: addUp(lines) } : undefined,
  };
}

const money = (n: unknown) => {
  const v = typeof n === 'number' ? n : 0;
  // Cents for dollars; a local cluster's hour is fractions of a cent: three significant digits.
  if (v === 0) return '$0';
  if (v >= 1) return `$${v.toFixed(2)}`;
  const t = v.toLocaleString('en-US', { maximumSignificantDigits: 3, maximumFractionDigits: 12 });
  return `$${v >= 0.01 && /\.\d$/.test(t) ? `${t}0` : t}`;
};
const count = (n: unknown) => (typeof n === 'number' ? n.toLocaleString('en-US', { maximumFractionDigits: 1 }) : '0');
function duration(s: number): string {
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1).replace(/\.0$/, '')} h`;
  return `${(s / 86400).toFixed(1).replace(/\.0$/, '')} days`;
}

/** A line's cells after its name: requests, reconciles, DynamoDB reads and writes, dollars in the window and a month. */
function costCells(l: Obj) {
  const d = l.dynamoRequests ?? {};
  return [count(l.apiRequests), count(l.reconciles), count((d.read ?? 0) + (d.list ?? 0)), count((d.write ?? 0) + (d.history ?? 0)), money(l.usd?.total), money(l.monthlyUsd)].map((c) => html`<td class="num">${c}</td>`);
}

function NamespaceName(props: { ns: string }) {
  const { ns } = props;
  if (ns === '') return html`<span class="muted">(cluster-scoped)</span>`;
  // A namespace's page when it is one (a DNS label); any other line the API adds is shown as it comes.
  return /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ns) ? html`<a href=${href('o', 'core', 'v1', 'namespaces', '_', ns)}>${ns}</a>` : ns;
}

function CostView(props: { ns: string; since?: string; setNs: (ns: string) => void }) {
  const since = WINDOWS.some(([w]) => w === props.since) ? props.since! : '1h';
  const [n, setN] = useState(0);
  const [state, setState] = useState<Cost & { error?: string; loading: boolean }>({ loading: true });
  useEffect(() => {
    const ctl = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    loadCost(since, props.ns, ctl.signal).then(
      (c) => !ctl.signal.aborted && setState({ ...c, loading: false }),
      // A namespace the user may not see: the Status's message, and the form to name another.
      (e) => !ctl.signal.aborted && setState({ loading: false, error: (e as Error).message, askNamespace: !!props.ns && forbidden(e) }),
    );
    return () => ctl.abort();
  }, [since, props.ns, n]);
  const r = state.report;
  const lines: Obj[] = r?.namespaces ?? [];
  const overhead: Obj[] = r?.overhead ?? [];
  const all = [...lines.map((l) => [l.namespace, l] as const), ...overhead.map((o) => [o.name, o] as const), ['Total', r?.total] as const];
  const services = [...new Set(all.flatMap(([, l]) => Object.entries(l?.usd ?? {}).filter(([k, v]) => k !== 'total' && typeof v === 'number').map(([k]) => k)))];
  const chosen = WINDOWS.find(([w]) => w === since)![2];
  const head = ['Namespace', 'API requests', 'Reconciles', 'DynamoDB reads', 'DynamoDB writes', 'Cost in the window', 'Per month'];
  return html`<${Title}>Cost${props.ns ? ` of ${props.ns}` : ' per namespace'}</${Title}>
    <div class="toolbar">
      <fieldset class="windows"><legend>Window</legend>
        ${WINDOWS.map(([w, label]) => html`<label><input type="radio" name="window" value=${w} checked=${w === since}
          onChange=${() => (location.hash = href('cost', w))} /> ${label}</label>`)}
      </fieldset>
      <button type="button" onClick=${() => setN(n + 1)}>Refresh</button>
    </div>
    <${Problem} error=${state.error} />
    ${state.partial ? html`<p class="note" role="status" data-testid="cost-partial">${state.partial}</p>` : null}
    ${state.askNamespace
      ? html`<form class="inline" onSubmit=${(e: Event) => {
          e.preventDefault();
          const v = ((e.target as HTMLFormElement).elements.namedItem('cost-ns') as HTMLInputElement).value.trim();
          if (v) props.setNs(v);
        }}><label for="cost-ns">Namespace to show</label> <input id="cost-ns" name="cost-ns" required /> <button type="submit">Show its cost</button></form>`
      : null}
    <section aria-busy=${String(state.loading)} data-testid="cost" data-since=${since} data-loaded=${String(!state.loading && !!r)}>
    ${r
      ? html`<p>${r.window?.since} to ${r.window?.until} (${duration(r.window?.seconds ?? 0)})${(r.window?.seconds ?? 0) < chosen * 0.99 ? html`<span class="muted">: the counts begin at ${r.window?.since}, a local apiserver's when it started</span>` : null}.</p>
        <table class="cost">
          <caption>Control-plane cost${props.ns ? '' : ' per namespace'}, costliest first (${lines.length})</caption>
          <thead><tr>${head.map((c, i) => html`<th scope="col" class=${i ? 'num' : ''}>${c}</th>`)}</tr></thead>
          <tbody>
            ${lines.map((l) => html`<tr data-namespace=${l.namespace}><th scope="row"><${NamespaceName} ns=${l.namespace ?? ''} /></th>${costCells(l)}</tr>`)}
            ${lines.length === 0 ? html`<tr><td colspan=${head.length} class="muted">No namespace caused any cost in the window.</td></tr>` : null}
          </tbody>
          ${overhead.length
            ? html`<tbody>
                <tr><th scope="rowgroup" colspan=${head.length}>Cluster overhead: what no namespace caused</th></tr>
                ${overhead.map((o) => html`<tr data-overhead=${o.name}><th scope="row">${o.name}${o.estimated ? ' (estimated)' : ''}<br /><span class="muted small">${o.description}</span></th>${costCells(o)}</tr>`)}
              </tbody>`
            : null}
          <tfoot><tr data-testid="cost-total"><th scope="row">${state.partial ? 'Total of these namespaces' : overhead.length ? 'Total (namespaces and overhead)' : 'Total'}</th>${costCells(r.total ?? {})}</tr></tfoot>
        </table>
        <p class="muted">Priced at ${r.pricing?.basis ?? 'the cost model'}; ${r.pricing?.region ?? ''} prices checked ${r.pricing?.checked ?? '?'}.
          DynamoDB reads are gets and queries, writes include object history entries. Per month: the window's rate for 730 hours${(r.window?.seconds ?? 0) < 3600 ? ` (a window of ${duration(r.window?.seconds ?? 0)}: a burst in it, such as a start's writes, is projected as if it went on all month)` : ''}.
          ${/^(127\.|localhost$|\[::1\]$)/.test(location.hostname) ? " This is a local cluster: its requests are priced as if it were deployed." : ''}</p>
        ${services.length
          ? html`<details><summary>By service</summary>
              <table>
                <caption>Cost in the window by service</caption>
                <thead><tr><th scope="col">Line</th>${services.map((k) => html`<th scope="col" class="num">${SERVICES[k] ?? k}</th>`)}</tr></thead>
                <tbody>${all.map(([name, l]) => html`<tr><th scope="row">${name === '' ? '(cluster-scoped)' : name}</th>${services.map((k) => html`<td class="num">${money(l?.usd?.[k])}</td>`)}</tr>`)}</tbody>
              </table>
            </details>`
          : null}`
      : state.loading
        ? html`<p class="muted">Loading…</p>`
        : null}
    </section>`;
}

const VIEWS: [string, string][] = [
  ['cluster', 'Cluster'],
  ['namespaces', 'Namespaces'],
  ['workloads', 'Workloads'],
  ['nodes', 'Nodes'],
  ['services', 'Services'],
  ['events', 'Events'],
  ['cost', 'Cost'],
];

function SignIn(props: { message?: string; onToken: (t: string) => void }) {
  const [error, setError] = useState(props.message);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const t = ((e.target as HTMLFormElement).elements.namedItem('token') as HTMLInputElement).value.trim();
    if (!t) return setError('Enter a bearer token.');
    setBusy(true);
    // Any authenticated user may ask who they are (SelfSubjectReview); a wrong token is a 401.
    const r = await fetch('/apis/authentication.k8s.io/v1/selfsubjectreviews', {
      method: 'POST',
      headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }),
    }).catch(() => undefined);
    setBusy(false);
    if (!r) return setError('The apiserver could not be reached.');
    if (r.status === 401) return setError('Sign-in failed: the token was not accepted (401 Unauthorized).');
    if (!r.ok && r.status !== 403) return setError(`Sign-in failed: ${r.status} ${r.statusText}`);
    props.onToken(t);
  };
  return html`<main id="main"><form class="signin" onSubmit=${submit} aria-describedby="signin-help">
    <h1>Sign in to Skiff</h1>
    <p id="signin-help" class="muted">Paste a bearer token: <code>skiff ui</code> prints the local admin's. It is kept in this tab only.</p>
    <label for="token">Bearer token</label>
    <input id="token" name="token" type="password" autocomplete="off" required />
    <button type="submit" disabled=${busy}>Sign in</button>
    ${error ? html`<p role="alert" class="error" data-testid="signin-error">${error}</p>` : null}
  </form></main>`;
}

function App() {
  const [signedIn, setSignedIn] = useState(!!token);
  const [message, setMessage] = useState<string>();
  const [ns, setNsState] = useState(sessionStorage.getItem(NS_KEY) ?? '');
  // Read every 30 s, not watched: the header keeps no watch slot.
  const namespaces = useGet(signedIn ? coll('', 'v1', 'namespaces') : undefined, 30_000);
  const route = useRoute();
  onSignedOut = (m) => {
    setMessage(m);
    setSignedIn(false);
  };
  const setNs = (v: string) => {
    sessionStorage.setItem(NS_KEY, v);
    setNsState(v);
  };
  if (!signedIn) {
    return html`<${SignIn} message=${message} onToken=${(t: string) => {
      token = t;
      sessionStorage.setItem(TOKEN_KEY, t);
      setMessage(undefined);
      setSignedIn(true);
    }} />`;
  }
  const view = route[0] || 'cluster';
  const args = route.slice(1);
  let body;
  switch (view) {
    case 'namespaces': body = html`<${NamespacesView} setNs=${setNs} />`; break;
    case 'workloads': body = html`<${WorkloadsView} ns=${ns} />`; break;
    case 'nodes': body = html`<${NodesView} />`; break;
    case 'services': body = html`<${ServicesView} ns=${ns} />`; break;
    case 'events': body = html`<${EventsView} ns=${ns} />`; break;
    case 'cost': body = html`<${CostView} ns=${ns} since=${args[0]} setNs=${setNs} />`; break;
    case 'pod': body = html`<${PodView} key=${`${args[0]}/${args[1]}`} ns=${args[0]} name=${args[1]} container=${args[2] === 'logs' ? args[3] : undefined} />`; break;
    case 'node': body = html`<${NodeView} key=${args[0]} name=${args[0]} />`; break;
    case 'o': body = html`<${ObjectView} key=${args.join('/')} group=${args[0]} version=${args[1]} resource=${args[2]} ns=${args[3]} name=${args[4]} />`; break;
    default: body = html`<${ClusterView} ns=${ns} />`;
  }
  return html`<header>
      <a class="skip" href="#main" onClick=${(e: Event) => {
        e.preventDefault();
        document.querySelector<HTMLElement>('main h1')?.focus();
      }}>Skip to content</a>
      <span class="brand">Skiff</span>
      <nav aria-label="Views"><ul>${VIEWS.map(([v, label]) => html`<li><a href=${href(v)} aria-current=${view === v ? 'page' : undefined}>${label}</a></li>`)}</ul></nav>
      <label>Namespace <select value=${ns} onChange=${(e: Event) => setNs((e.target as HTMLSelectElement).value)}>
        <option value="">All namespaces</option>
        ${ns && !(namespaces.data?.items ?? []).some((n: Obj) => n.metadata.name === ns) ? html`<option value=${ns}>${ns}</option>` : null}
        ${[...(namespaces.data?.items ?? [])].sort(byName).map((n) => html`<option value=${n.metadata.name}>${n.metadata.name}</option>`)}
      </select></label>
      <button type="button" onClick=${() => {
        token = '';
        sessionStorage.removeItem(TOKEN_KEY);
        onSignedOut('Signed out.');
      }}>Sign out</button>
    </header>
    <main id="main">${body}</main>`;
}

const root = document.getElementById('app')!;
root.textContent = ''; // the "Loading" line
render(html`<${App} />`, root);
