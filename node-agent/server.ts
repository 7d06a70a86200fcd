// The agent's HTTPS API, the part of kubelet's server the apiserver calls:
//   GET /containerLogs/{ns}/{pod}/{container}   container logs, streamed (kubectl logs)
//   GET /exec/{ns}/{pod}/{container}?command=.. an upgrade speaking Kubernetes' remotecommand protocol
//                                              v5/v4 (kubectl exec), over WebSocket or SPDY/3.1
//   GET /attach/{ns}/{pod}/{container}           the same, joined to the container's process (kubectl attach)
//   GET /metrics, /metrics/probes, /metrics/cadvisor  Prometheus text (metrics.ts; nodes/metrics by SubjectAccessReview)
//   GET /portForward/{ns}/{pod}                  SPDY streams to the pod's ports (kubectl port-forward), on
//                                              a SPDY/3.1 upgrade or tunnelled in a WebSocket
// Every request carries a bearer token; `authenticate` (a TokenReview, see authn.ts) decides.
// remotecommand.ts, portforward.ts and spdy.ts hold the protocols; this file routes and checks requests.

import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { PassThrough, Writable } from 'node:stream';
import type { AddressInfo, Server } from 'node:net';
import type Docker from 'dockerode';
import type { StatsSummary } from './stats.ts';
import { serveMetrics, type AgentMetrics } from './metrics.ts';
import type { Decision } from './authz.ts';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { ApiError, errors, type Status } from '../lambdas/machinery/status.ts';
import { EXEC_PROTOCOLS, execResult, runSession, spdyChannels, webSocketChannels, type Session } from './remotecommand.ts';
import { PORT_FORWARD_PROTOCOL, findPodIP, servePortForward } from './portforward.ts';
import { SPDY_TUNNEL_PREFIX, acceptSpdyUpgrade, isSpdyUpgrade, negotiateStreamProtocol, spdyServer } from './spdy.ts';

/** kubectl's port-forward subprotocol: SPDY framed in WebSocket binary messages. */
const PORT_FORWARD_TUNNEL = SPDY_TUNNEL_PREFIX + PORT_FORWARD_PROTOCOL;
/**
 * ws accepts only RFC 6455 tokens as subprotocols, and the tunnel's has a '/': the handshake runs with
 * this token in its place, and the answer's Sec-WebSocket-Protocol line is put back to the real name.
 */
const PORT_FORWARD_TUNNEL_TOKEN = 'skiff-tunnel-' + PORT_FORWARD_PROTOCOL;

export interface AgentServerOptions {
  docker: Docker;
  nodeName: string;
  host: string;
  /** 0 picks a free port. */
  port: number;
  tls: { cert: string; key: string };
  authenticate(token: string): Promise<boolean>;
  /** The node's and its pods' resource usage, for GET /stats/summary (stats.ts). */
  stats?: () => StatsSummary;
  /** Prometheus metrics at /metrics, /metrics/probes and /metrics/cadvisor (metrics.ts), for who may get nodes/metrics. */
  metrics?: { metrics: AgentMetrics; authorize(token: string): Promise<Decision> };
}

export interface AgentServer {
  port: number;
  close(): Promise<void>;
}

/**
 * A client's protocol error (a message over WS_MAX_MESSAGE_BYTES, a bad frame) is emitted on the socket as
 * 'error' after ws has closed it: without a listener that error would end the agent process.
 */
function quietOnError<T extends { on(event: 'error', f: (e: Error) => void): unknown }>(ws: T): T {
  ws.on('error', () => {});
  return ws;
}

/** The largest WebSocket message the agent takes; a bigger one closes the connection (1009, message too big). */
export const WS_MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

export async function startAgentServer(opts: AgentServerOptions): Promise<AgentServer> {
  const wss = new WebSocketServer({
    noServer: true,
    // One message is at most this: clients send stdin and tunnelled port-forward data as they read it (tens
    // of KB); ws's default (100 MiB) let one message sit whole in the agent's memory.
    maxPayload: WS_MAX_MESSAGE_BYTES,
    handleProtocols: (offered, req) =>
      (req.url ?? '').startsWith('/portForward/')
        ? offered.has(PORT_FORWARD_TUNNEL_TOKEN) && PORT_FORWARD_TUNNEL_TOKEN
        : (EXEC_PROTOCOLS.find((p) => offered.has(p)) ?? false),
  });
  wss.on('headers', (headers: string[]) => {
    const i = headers.indexOf(`Sec-WebSocket-Protocol: ${PORT_FORWARD_TUNNEL_TOKEN}`);
    if (i >= 0) headers[i] = `Sec-WebSocket-Protocol: ${PORT_FORWARD_TUNNEL}`;
  });
  const server = https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, (req, res) => {
    void serveHttp(opts, req, res).catch((e) => sendStatus(res, statusOf(e)));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    void serveUpgrade(opts, wss, req, socket, head).catch((e) => writeSocketStatus(socket, statusOf(e)));
  });
  const listening = await listenTracked(server, opts.port, opts.host);
  return {
    port: listening.port,
    async close() {
      for (const c of wss.clients) c.terminate();
      await listening.close();
    },
  };
}

/**
 * Listens, and keeps the open connections so close() ends them too (a streaming session would otherwise
 * hold server.close() open for as long as it lasts).
 */
export async function listenTracked(server: Server, port: number, host?: string): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Duplex>();
  server.on('connection', (s: Duplex) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => ok());
  });
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}

// ---- requests ----

interface Target {
  namespace: string;
  pod: string;
  container: string;
  query: URLSearchParams;
}

/** /{kind}/{ns}/{pod}/{container}, or a 404 Status. */
function parseTarget(req: IncomingMessage, kind: string): Target {
  const u = new URL(req.url ?? '/', 'https://agent');
  const segs = u.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  if (segs[0] !== kind || segs.length !== 4 || segs.slice(1).some((s) => !s)) throw errors.pageNotFound();
  return { namespace: segs[1]!, pod: segs[2]!, container: segs[3]!, query: u.searchParams };
}

async function checkAuth(opts: AgentServerOptions, req: IncomingMessage): Promise<void> {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (!m || !(await opts.authenticate(m[1]!))) throw errors.unauthorized();
}

async function serveHttp(opts: AgentServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0]!;
  // Authorized by SubjectAccessReview (nodes/metrics), not by the system:masters rule below.
  if (opts.metrics && (path === '/metrics' || path.startsWith('/metrics/'))) return serveMetrics({ ...opts.metrics, nodeName: opts.nodeName }, path, req, res);
  await checkAuth(opts, req);
  if (path.startsWith('/exec/') || path.startsWith('/attach/') || path.startsWith('/portForward/')) throw errors.badRequest('Upgrade request required');
  if (path === '/stats/summary' && opts.stats) {
    if (req.method !== 'GET') throw errors.methodNotAllowed();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(opts.stats()));
    return;
  }
  if (!path.startsWith('/containerLogs/')) throw errors.pageNotFound();
  if (req.method !== 'GET') throw errors.methodNotAllowed();
  await serveLogs(opts, parseTarget(req, 'containerLogs'), req, res);
}

const bool = (v: string | null) => v === 'true' || v === '1';

function intParam(q: URLSearchParams, name: string, min: number): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  if (!/^-?\d+$/.test(v) || Number(v) < min) throw errors.badRequest(`invalid ${name}: ${JSON.stringify(v)}: must be greater than or equal to ${min}`);
  return Number(v);
}

// ---- which container ----

interface Found {
  id: string;
  tty: boolean;
  running: boolean;
}

/**
 * The Docker container of (namespace, pod, container) on this node: among the newest pod uid's containers,
 * the highest restart count, or with previous the next lower one (the agent keeps the last exited instance).
 */
export async function findContainer(docker: Docker, nodeName: string, t: Omit<Target, 'query'>, previous: boolean): Promise<Found> {
  const all = await docker.listContainers({
    all: true,
    filters: { label: [`io.skiff.node=${nodeName}`, `io.skiff.pod.namespace=${t.namespace}`, `io.skiff.pod.name=${t.pod}`] },
  });
  let newestUid: string | undefined;
  let newest = -1;
  for (const c of all) {
    if (c.Created > newest) {
      newest = c.Created;
      newestUid = c.Labels['io.skiff.pod.uid'];
    }
  }
  const mine = all
    .filter((c) => c.Labels['io.skiff.pod.uid'] === newestUid && c.Labels['io.skiff.container'] === t.container && t.container !== 'POD')
    .sort((a, b) => Number(b.Labels['io.skiff.restart'] ?? 0) - Number(a.Labels['io.skiff.restart'] ?? 0));
  const pick = previous ? mine[1] : mine[0];
  if (!pick) {
    throw previous
      ? new ApiError('NotFound', `previous terminated container "${t.container}" in pod "${t.pod}" not found`)
      : new ApiError('NotFound', `container ${t.container} is not valid for pod ${t.pod}`);
  }
  const info = await docker.getContainer(pick.Id).inspect();
  return { id: pick.Id, tty: !!info.Config.Tty, running: !!info.State.Running };
}

// ---- logs ----

async function serveLogs(opts: AgentServerOptions, t: Target, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const q = t.query;
  const follow = bool(q.get('follow'));
  const previous = bool(q.get('previous'));
  const tail = intParam(q, 'tailLines', 0);
  const sinceSeconds = intParam(q, 'sinceSeconds', 1);
  const limitBytes = intParam(q, 'limitBytes', 1);
  const sinceTimeText = q.get('sinceTime');
  let since: number | undefined;
  if (sinceTimeText) {
    const ms = Date.parse(sinceTimeText);
    if (Number.isNaN(ms)) throw errors.badRequest(`invalid sinceTime: ${JSON.stringify(sinceTimeText)}: must be RFC3339`);
    since = ms / 1000;
  }
  if (sinceSeconds !== undefined) since = Date.now() / 1000 - sinceSeconds;
  const found = await findContainer(opts.docker, opts.nodeName, t, previous);
  const logOpts = {
    stdout: true,
    stderr: true,
    timestamps: bool(q.get('timestamps')),
    ...(tail !== undefined ? { tail } : {}),
    ...(since !== undefined ? { since: since.toFixed(3) as unknown as number } : {}),
  };
  const container = opts.docker.getContainer(found.id);
  // dockerode answers follow=false with a Buffer and follow=true with a stream; either is multiplexed
  // (8-byte frame headers per chunk) unless the container has a TTY.
  let raw: NodeJS.ReadableStream;
  if (follow) raw = (await container.logs({ ...logOpts, follow: true })) as NodeJS.ReadableStream;
  else {
    const pt = new PassThrough();
    pt.end((await container.logs({ ...logOpts, follow: false })) as unknown as Buffer);
    raw = pt;
  }

  res.writeHead(200, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked', 'cache-control': 'no-cache, private' });
  res.flushHeaders();
  let left = limitBytes ?? Infinity;
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    (raw as unknown as { destroy?(): void }).destroy?.();
    res.end();
  };
  // Kubelet writes stdout and stderr to the one body, in the order they come.
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (done) return cb();
      const part = chunk.length > left ? chunk.subarray(0, left) : chunk;
      left -= part.length;
      res.write(part);
      if (left <= 0) finish();
      cb();
    },
  });
  res.on('close', finish);
  raw.on('end', finish);
  raw.on('close', finish);
  raw.on('error', finish);
  if (found.tty) raw.pipe(out);
  else opts.docker.modem.demuxStream(raw, out, out);
}

// ---- exec, attach and port-forward: upgrades ----

async function serveUpgrade(opts: AgentServerOptions, wss: WebSocketServer, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  socket.on('error', () => {});
  await checkAuth(opts, req);
  const path = (req.url ?? '').split('?')[0]!;
  const upgrade = (req.headers.upgrade ?? '').toLowerCase();
  if (upgrade !== 'websocket' && !isSpdyUpgrade(req)) {
    throw errors.badRequest(`unable to upgrade: unsupported protocol ${JSON.stringify(req.headers.upgrade ?? '')}: only WebSocket and SPDY/3.1 are served`);
  }
  if (path.startsWith('/portForward/')) return upgradePortForward(opts, wss, req, socket, head);
  const kind = path.startsWith('/attach/') ? 'attach' : 'exec';
  const t = parseTarget(req, kind);
  const q = t.query;
  const command = q.getAll('command');
  if (kind === 'exec' && !command.length) throw errors.badRequest('you must specify at least 1 command');
  const stdin = bool(q.get('stdin') ?? q.get('input'));
  const stdout = bool(q.get('stdout') ?? q.get('output'));
  const stderr = bool(q.get('stderr') ?? q.get('error'));
  const tty = bool(q.get('tty'));
  if (!stdin && !stdout && !stderr) throw errors.badRequest('you must specify at least one of stdin, stdout, stderr');
  // The protocol is settled before any work, so that a refusal is an HTTP error the client can fall back on.
  let spdyProtocol: string | undefined;
  if (upgrade === 'websocket') {
    const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim());
    if (!EXEC_PROTOCOLS.some((p) => offered.includes(p))) {
      throw errors.badRequest(`unable to upgrade: none of the requested subprotocols (${offered.join(', ')}) is supported: ${EXEC_PROTOCOLS.join(', ')}`);
    }
  } else spdyProtocol = negotiateStreamProtocol(req, EXEC_PROTOCOLS);
  const found = await findContainer(opts.docker, opts.nodeName, t, false);
  if (!found.running) throw errors.badRequest(`container ${t.container} is not running`);
  const container = opts.docker.getContainer(found.id);
  let session: Session;
  if (kind === 'attach') {
    // Attach joins the container's own process: its TTY is the container's, and the session just ends
    // when the process does (kubelet reports no exit status for attach).
    session = {
      tty: found.tty,
      start: async () => (await container.attach({ stream: true, hijack: true, stdin, stdout, stderr, logs: false })) as unknown as Duplex,
      resize: (w, h) => container.resize({ w, h }),
      finish: async () => undefined,
    };
  } else {
    // Created before the upgrade, so that a refusal from the engine is still an HTTP error.
    const exec = await container.exec({
      Cmd: command,
      AttachStdin: stdin,
      AttachStdout: stdout,
      AttachStderr: stderr && !tty,
      Tty: tty,
    });
    session = {
      tty,
      start: async () => (await exec.start({ hijack: true, stdin, Tty: tty })) as unknown as Duplex,
      resize: (w, h) => exec.resize({ w, h }),
      finish: () => execResult(exec),
    };
  }
  if (spdyProtocol === undefined) {
    wss.handleUpgrade(req, socket, head, (ws) => void runSession(opts.docker, webSocketChannels(quietOnError(ws)), session, { stdin }));
    return;
  }
  const conn = acceptSpdyUpgrade(socket, head, spdyProtocol);
  // Which streams the client opens follows its own request (tty=true: no stderr stream).
  spdyChannels(conn, { stdin, stdout, stderr, tty }).then(
    (ch) => runSession(opts.docker, ch, session, { stdin }),
    () => socket.destroy(),
  );
}

/**
 * /portForward/{ns}/{pod}: SPDY streams (portforward.k8s.io), on a plain SPDY/3.1 connection or tunnelled
 * in WebSocket binary messages (subprotocol SPDY/3.1+portforward.k8s.io, kubectl's first try since 1.31).
 */
async function upgradePortForward(opts: AgentServerOptions, wss: WebSocketServer, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  const u = new URL(req.url ?? '/', 'https://agent');
  const segs = u.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  if (segs.length !== 3 || segs.slice(1).some((s) => !s)) throw errors.pageNotFound();
  const [namespace, pod] = [segs[1]!, segs[2]!];
  let spdyProtocol: string | undefined;
  if (isSpdyUpgrade(req)) spdyProtocol = negotiateStreamProtocol(req, [PORT_FORWARD_PROTOCOL]);
  else {
    const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim());
    if (!offered.includes(PORT_FORWARD_TUNNEL)) {
      throw errors.badRequest(`unable to upgrade: none of the requested subprotocols (${offered.join(', ')}) is supported: ${PORT_FORWARD_TUNNEL}`);
    }
    req.headers['sec-websocket-protocol'] = PORT_FORWARD_TUNNEL_TOKEN;
  }
  const podIP = await findPodIP(opts.docker, opts.nodeName, namespace, pod);
  const target = { namespace, pod, podIP };
  if (spdyProtocol !== undefined) {
    servePortForward(acceptSpdyUpgrade(socket, head, spdyProtocol), target);
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    // SPDY frames ride in binary messages: the WebSocket is the SPDY connection's byte stream.
    const tunnel = createWebSocketStream(quietOnError(ws));
    servePortForward(spdyServer(tunnel), target);
  });
}

// ---- errors ----

function statusOf(e: unknown): Status {
  if (e instanceof ApiError) return e.status;
  const code = (e as { statusCode?: number }).statusCode;
  // The engine's own refusals (no such container, not running) are the client's problem, not ours.
  if (code === 404 || code === 409) return new ApiError('BadRequest', (e as Error).message).status;
  console.error('node agent: request failed', e);
  return errors.internal(e instanceof Error ? e.message : String(e)).status;
}

/** A Status as the answer to a plain request (or the end of one whose answer has begun). */
export function sendStatus(res: ServerResponse, st: Status): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(st.code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(st));
}

/** An HTTP answer on a socket that asked to upgrade and will not be. */
export function writeSocketStatus(socket: Duplex, st: Status): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(st);
  const reason = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable' }[st.code] ?? 'Error';
  socket.end(`HTTP/1.1 ${st.code} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}
