// The apiserver's way to a pod's node agent (kubelet): pods/log is streamed back through the normal
// response path (so it works from the Lambda too, inside the VPC), and pods/exec — an HTTP upgrade a
// Lambda endpoint cannot hold — is spliced socket to socket by the local server, as kube-apiserver's
// UpgradeAwareHandler does. pods/attach and pods/portforward go the same way; the upgrade is passed on as
// the client asked for it (WebSocket, or SPDY/3.1, kubectl's fallback), so the agent answers it.
//
// The agent is found from its Node object: status.addresses (first InternalIP, else Hostname),
// status.daemonEndpoints.kubeletEndpoint.Port, and the annotation skiff.io/kubelet-serving-cert-sha256.
// Its certificate is self-signed: the connection is accepted only when the certificate's SHA-256 is the
// pinned one, checked before a single byte (and so the node client token) is sent.

import tls from 'node:tls';
import https from 'node:https';
import { createHash } from 'node:crypto';
import type { StatsSummary } from '../../node-agent/stats.ts';
import { StringDecoder } from 'node:string_decoder';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { ApiError, errors, type Status } from '../machinery/status.ts';
import { findResource } from '../machinery/resources.ts';
import type { KubeObject } from '../machinery/types.ts';
import type { Registry } from './registry.ts';
import type { ApiRequest, ApiResponse } from './http.ts';
import { allowAuthenticated, forbiddenError, type Authorizer, type TokenAuthenticator } from './auth.ts';

export const SERVING_CERT_ANNOTATION = 'skiff.io/kubelet-serving-cert-sha256';

const pods = () => findResource('', 'v1', 'pods')!;
const nodes = () => findResource('', 'v1', 'nodes')!;

export interface AgentTarget {
  host: string;
  port: number;
  sha256: string;
}

/** Where the node's agent listens, from the Node object; 503 when the node does not say. */
export function agentTarget(node: KubeObject): AgentTarget {
  const name = node.metadata.name;
  const addrs: { type?: string; address?: string }[] = Array.isArray(node.status?.addresses) ? node.status.addresses : [];
  const host = (addrs.find((a) => a.type === 'InternalIP') ?? addrs.find((a) => a.type === 'Hostname'))?.address;
  const port = node.status?.daemonEndpoints?.kubeletEndpoint?.Port;
  const sha256 = String(node.metadata.annotations?.[SERVING_CERT_ANNOTATION] ?? '').toLowerCase();
  if (!host || !Number.isInteger(port) || port <= 0 || !/^[0-9a-f]{64}$/.test(sha256)) {
    throw new ApiError('ServiceUnavailable', `node "${name}" does not publish a reachable kubelet endpoint with a pinned serving certificate`);
  }
  return { host, port, sha256 };
}

/** A TLS connection to the agent whose certificate is the pinned one (else a 502 Status error). */
export async function connectAgent(t: AgentTarget): Promise<tls.TLSSocket> {
  const sock = tls.connect({ host: t.host, port: t.port, rejectUnauthorized: false, servername: /^[\d.:]+$/.test(t.host) ? undefined : t.host });
  // Streaming sessions are small frames both ways: Nagle's algorithm would hold each one for the peer's delayed ACK.
  sock.setNoDelay(true);
  try {
    await new Promise<void>((ok, fail) => {
      sock.once('secureConnect', ok);
      sock.once('error', fail);
    });
  } catch (e) {
    sock.destroy();
    throw new ApiError('ServiceUnavailable', `error dialing the node agent at ${t.host}:${t.port}: ${(e as Error).message}`);
  }
  const raw = sock.getPeerCertificate().raw;
  const got = raw ? createHash('sha256').update(raw).digest('hex') : '';
  if (got !== t.sha256) {
    sock.destroy();
    throw new ApiError('InternalError', `the node agent at ${t.host}:${t.port} presented a certificate that is not the pinned one`, undefined, 502);
  }
  return sock;
}

/** The pod's node's agent, with kube-apiserver's errors. */
async function locateNode(registry: Registry, ns: string, name: string): Promise<{ pod: KubeObject; target: AgentTarget }> {
  const pod = await registry.get(pods(), ns, name);
  const nodeName = pod.spec?.nodeName;
  if (!nodeName) throw errors.badRequest(`pod ${name} does not have a host assigned`);
  const node = await registry.get(nodes(), undefined, nodeName);
  return { pod, target: agentTarget(node) };
}

/** The pod, its container (named or the only one), and its node's agent, with kube-apiserver's errors. */
async function locate(registry: Registry, ns: string, name: string, container: string | null): Promise<{ container: string; target: AgentTarget }> {
  const pod = await registry.get(pods(), ns, name);
  const names: string[] = (pod.spec?.containers ?? []).map((c: { name: string }) => c.name);
  let c = container ?? '';
  if (!c) {
    if (names.length !== 1) throw errors.badRequest(`a container name must be specified for pod ${name}, choose one of: [${names.join(' ')}]`);
    c = names[0]!;
  } else if (!names.includes(c) && !(pod.spec?.initContainers ?? []).some((i: { name: string }) => i.name === c)) {
    throw errors.badRequest(`container ${c} is not valid for pod ${name}`);
  }
  const nodeName = pod.spec?.nodeName;
  if (!nodeName) throw errors.badRequest(`pod ${name} does not have a host assigned`);
  const node = await registry.get(nodes(), undefined, nodeName);
  return { container: c, target: agentTarget(node) };
}

const LOG_PARAMS = ['follow', 'previous', 'tailLines', 'sinceSeconds', 'sinceTime', 'timestamps', 'limitBytes'];

/** GET pods/{name}/log: the agent's /containerLogs body, streamed back as it comes. */
export async function podLogs(registry: Registry, req: ApiRequest, ns: string, name: string, nodeClientToken: string | undefined): Promise<ApiResponse> {
  if (!nodeClientToken) {
    // A deployed apiserver (a Lambda outside the VPC) reaches no agent: the front door sends pods/log to the node.
    throw new ApiError(
      'ServiceUnavailable',
      'this apiserver does not reach node agents: on a deployed cluster, logs, exec, attach and port-forward go through its front door (the stack output ApiEndpoint; `skiff kubeconfig --stack` uses it)',
    );
  }
  const q = req.query;
  for (const p of ['tailLines', 'sinceSeconds', 'limitBytes']) {
    const v = q.get(p);
    if (v !== null && !/^\d+$/.test(v)) throw errors.badRequest(`invalid ${p}: ${JSON.stringify(v)}`);
  }
  if (q.get('sinceSeconds') !== null && q.get('sinceTime') !== null) throw errors.badRequest('at most one of sinceTime or sinceSeconds may be specified');
  const { container, target } = await locate(registry, ns, name, q.get('container'));
  const out = new URLSearchParams();
  for (const p of LOG_PARAMS) for (const v of q.getAll(p)) out.append(p, v);
  const path = `/containerLogs/${encodeURIComponent(ns)}/${encodeURIComponent(name)}/${encodeURIComponent(container)}?${out}`;
  const sock = await connectAgent(target);
  const res = await new Promise<IncomingMessage>((ok, fail) => {
    const r = https.request({ createConnection: () => sock, path, headers: { authorization: `Bearer ${nodeClientToken}` } }, ok);
    r.on('error', fail);
    r.end();
  }).catch((e) => {
    sock.destroy();
    throw new ApiError('ServiceUnavailable', `error talking to the node agent: ${(e as Error).message}`);
  });
  const abort = () => res.destroy();
  req.signal?.addEventListener('abort', abort, { once: true });
  if (res.statusCode !== 200) {
    // The agent answers errors with a Status (its message is kubelet's): pass it on.
    let text = '';
    for await (const c of res) text += c;
    req.signal?.removeEventListener('abort', abort);
    let st: Partial<Status> | undefined;
    try {
      st = JSON.parse(text);
    } catch {
      /* not a Status */
    }
    if (st?.kind === 'Status' && st.reason && st.message) throw new ApiError(st.reason, st.message, st.details, res.statusCode);
    throw new ApiError('InternalError', `the node agent answered ${res.statusCode}: ${text.slice(0, 200)}`, undefined, 502);
  }
  // Bytes become strings for the streamed response; the decoder keeps multi-byte characters whole.
  const body = (async function* () {
    const dec = new StringDecoder('utf8');
    try {
      for await (const c of res) {
        const s = dec.write(c as Buffer);
        if (s) yield s;
      }
      const rest = dec.end();
      if (rest) yield rest;
    } catch {
      /* the agent or the client went away: the body just ends */
    } finally {
      req.signal?.removeEventListener('abort', abort);
      res.destroy();
    }
  })();
  return { status: 200, headers: { 'content-type': 'text/plain', 'cache-control': 'no-cache, private' }, body };
}

// ---- nodes/{name}/proxy/{path}: GET passed through to the agent (kube's node proxy) ----

/** Agent paths the node proxy passes on: its metrics, stats and health (not the pod streams, which have their own subresources). */
const NODE_PROXY_PATHS = /^\/(metrics(\/cadvisor|\/probes)?|stats\/summary|healthz)$/;

/**
 * GET /api/v1/nodes/{name}/proxy/{path}: the node agent's answer for `path`, as kube-apiserver's node
 * proxy gives the kubelet's (`kubectl get --raw /api/v1/nodes/N/proxy/metrics`, Prometheus' scrape
 * through the apiserver). The caller was authorized for `get nodes/proxy`; the agent is asked with the
 * apiserver's node-client identity. Only GET and the agent's read-only paths; a deployed apiserver reaches
 * no agent (503, as pods/log).
 */
export async function nodeProxy(registry: Registry, req: ApiRequest, nodeName: string, path: string, nodeClientToken: string | undefined): Promise<ApiResponse> {
  if (!nodeClientToken) {
    throw new ApiError('ServiceUnavailable', 'this apiserver does not reach node agents: on a deployed cluster, scrape the agents\' /metrics on their nodes (kubectl top works through the usage reports)');
  }
  if (!NODE_PROXY_PATHS.test(path)) throw errors.pageNotFound();
  const target = agentTarget(await registry.get(nodes(), undefined, nodeName));
  const query = req.query.toString();
  let sock: tls.TLSSocket;
  try {
    sock = await connectAgent(target);
  } catch (e) {
    throw new ApiError('ServiceUnavailable', `error trying to reach the node agent of ${nodeName}: ${(e as Error).message}`);
  }
  const res = await new Promise<IncomingMessage>((ok, fail) => {
    const r = https.request({ createConnection: () => sock, path: query ? `${path}?${query}` : path, headers: { authorization: `Bearer ${nodeClientToken}`, accept: req.headers.accept ?? '*/*' }, timeout: 30_000 }, ok);
    r.on('timeout', () => r.destroy(new Error('timed out')));
    r.on('error', fail);
    r.end();
  }).catch((e) => {
    sock.destroy();
    throw new ApiError('ServiceUnavailable', `error talking to the node agent of ${nodeName}: ${(e as Error).message}`);
  });
  // A proxy: the agent's status, type and body as they are (its errors are kubelet's Status).
  const chunks: Buffer[] = [];
  try {
    for await (const c of res) chunks.push(c as Buffer);
  } finally {
    sock.destroy();
  }
  return { status: res.statusCode ?? 502, headers: { 'content-type': String(res.headers['content-type'] ?? 'text/plain'), 'cache-control': 'no-cache, private' }, body: Buffer.concat(chunks) };
}

// ---- exec: HTTP upgrades, spliced ----

export interface UpgradeProxyOptions {
  registry: Registry;
  authn: TokenAuthenticator;
  authorizer?: Authorizer;
  nodeClientToken: string;
}

/**
 * Headers of the client's upgrade request the agent needs: the WebSocket handshake is end to end, and a
 * SPDY upgrade's X-Stream-Protocol-Version (one line per offered protocol) is negotiated by the agent.
 */
const PASS_HEADERS = ['upgrade', 'connection', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-protocol', 'sec-websocket-extensions', 'x-stream-protocol-version'];

/** The 'upgrade' listener for the local HTTPS server: /api/v1/namespaces/{ns}/pods/{name}/{exec,attach,portforward}. */
export function podUpgradeHandler(opts: UpgradeProxyOptions) {
  return (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => {});
    proxyUpgrade(opts, req, socket, head).catch((e) => {
      const st = e instanceof ApiError ? e.status : errors.internal((e as Error).message).status;
      if (!(e instanceof ApiError)) console.error('apiserver: upgrade failed', e);
      writeSocketStatus(socket, st);
    });
  };
}

async function proxyUpgrade(opts: UpgradeProxyOptions, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  const u = new URL(req.url ?? '/', 'https://apiserver');
  const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/(exec|attach|portforward)\/?$/.exec(u.pathname);
  if (!m) throw errors.pageNotFound();
  const [ns, name, sub] = [decodeURIComponent(m[1]!), decodeURIComponent(m[2]!), m[3]!];
  const user = await opts.authn.authenticate(req.headers.authorization);
  const verb = req.method === 'POST' ? 'create' : 'get';
  const attrs = { user, verb, resourceRequest: true, path: u.pathname, namespace: ns, group: '', version: 'v1', resource: 'pods', subresource: sub, name };
  const d = await (opts.authorizer ?? allowAuthenticated).authorize(attrs);
  if (d.decision !== 'allow') throw forbiddenError(attrs, d.reason);
  const upgrade = (req.headers.upgrade ?? '').toLowerCase();
  if (upgrade !== 'websocket' && upgrade !== 'spdy/3.1') {
    throw errors.badRequest(`unable to upgrade: unsupported protocol ${JSON.stringify(req.headers.upgrade ?? '')}: only WebSocket and SPDY/3.1 are served`);
  }
  const q = new URLSearchParams(u.searchParams);
  let path: string;
  let target: AgentTarget;
  if (sub === 'portforward') {
    // Kubelet's path; the ports travel in the SPDY streams' headers.
    ({ target } = await locateNode(opts.registry, ns, name));
    path = `/portForward/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;
  } else {
    let container: string;
    ({ container, target } = await locate(opts.registry, ns, name, u.searchParams.get('container')));
    q.delete('container');
    path = `/${sub}/${encodeURIComponent(ns)}/${encodeURIComponent(name)}/${encodeURIComponent(container)}`;
  }
  const query = q.toString();
  await spliceUpgrade(target, req, socket, head, `${path}${query ? `?${query}` : ''}`, opts.nodeClientToken);
}

/**
 * Sends a client's upgrade on to the agent (`GET path` with the client's upgrade headers and `token`),
 * then joins the two connections: the agent's answer (101, or its error Status) goes back as it is.
 * The apiserver splices this way, and so does the agent's stream listener (to its own server).
 */
export async function spliceUpgrade(target: AgentTarget, req: IncomingMessage, socket: Duplex, head: Buffer, path: string, token: string): Promise<void> {
  const lines = [`GET ${path} HTTP/1.1`, `Host: ${target.host}:${target.port}`];
  // rawHeaders keeps repeated lines as they came (X-Stream-Protocol-Version is one line per protocol).
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const [h, v] = [req.rawHeaders[i]!, req.rawHeaders[i + 1]!];
    if (PASS_HEADERS.includes(h.toLowerCase()) && !/[\r\n]/.test(v)) lines.push(`${h}: ${v}`);
  }
  lines.push(`Authorization: Bearer ${token}`);
  const agent = await connectAgent(target);
  if (socket.destroyed) {
    agent.destroy();
    return;
  }
  // Streaming sessions are small frames both ways: no Nagle delay on the client's side either.
  (socket as { setNoDelay?(b: boolean): void }).setNoDelay?.(true);
  agent.on('error', () => socket.destroy());
  socket.on('error', () => agent.destroy());
  agent.write(lines.join('\r\n') + '\r\n\r\n');
  if (head.length) agent.write(head);
  agent.pipe(socket);
  socket.pipe(agent);
  socket.on('close', () => agent.destroy());
  agent.on('close', () => socket.destroy());
}

/** An HTTP answer on a socket that asked to upgrade and will not be. */
function writeSocketStatus(socket: Duplex, st: Status): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(st);
  socket.end(`HTTP/1.1 ${st.code} ${st.reason ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

// ---- resource usage: the agent's /stats/summary (metrics.k8s.io) ----

/** A node's agent's latest usage sample (node-agent/stats.ts), or undefined when it cannot be had now. */
export async function nodeStats(node: KubeObject, nodeClientToken: string | undefined, timeoutMs = 5000): Promise<StatsSummary | undefined> {
  if (!nodeClientToken) return undefined; // a deployed apiserver reaches no agent
  let sock: tls.TLSSocket;
  try {
    sock = await connectAgent(agentTarget(node));
  } catch {
    return undefined; // a node without an agent (hollow), or one gone: no metrics, as metrics-server skips it
  }
  try {
    return await new Promise<StatsSummary | undefined>((ok) => {
      const r = https.request({ createConnection: () => sock, path: '/stats/summary', headers: { authorization: `Bearer ${nodeClientToken}` }, timeout: timeoutMs }, async (res) => {
        let text = '';
        for await (const c of res) text += c;
        try {
          ok(res.statusCode === 200 ? (JSON.parse(text) as StatsSummary) : undefined);
        } catch {
          ok(undefined);
        }
      });
      r.on('timeout', () => r.destroy());
      r.on('error', () => ok(undefined));
      r.end();
    });
  } finally {
    sock.destroy();
  }
}
