// The agent's HTTPS API, the part of kubelet's server the apiserver calls:
//   GET /containerLogs/{ns}/{pod}/{container}   container logs, streamed (kubectl logs)
//   GET /exec/{ns}/{pod}/{container}?command=.. an upgrade to WebSocket speaking Kubernetes'
//                                              remotecommand protocol v5/v4 (kubectl exec)
//   GET /attach/{ns}/{pod}/{container}           the same, joined to the container's process (kubectl attach)
// Every request carries a bearer token; `authenticate` (a TokenReview, see authn.ts) decides.
// SPDY, kubelet's older upgrade protocol, is not served: clients fall back to it only when WebSocket fails.

import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { PassThrough, Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import type Docker from 'dockerode';
import { WebSocketServer, type WebSocket } from 'ws';
import { ApiError, errors, type Status } from '../lambdas/machinery/status.ts';

export interface AgentServerOptions {
  docker: Docker;
  nodeName: string;
  host: string;
  /** 0 picks a free port. */
  port: number;
  tls: { cert: string; key: string };
  authenticate(token: string): Promise<boolean>;
}

export interface AgentServer {
  port: number;
  close(): Promise<void>;
}

/** Remotecommand subprotocols, newest first (k8s.io/apimachinery/pkg/util/remotecommand). */
export const EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];
const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
const RESIZE = 4;
/** v5: [255, stream] says the peer closed that stream (stdin EOF). */
const CLOSE = 255;

export async function startAgentServer(opts: AgentServerOptions): Promise<AgentServer> {
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => EXEC_PROTOCOLS.find((p) => offered.has(p)) ?? false,
  });
  const server = https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, (req, res) => {
    void serveHttp(opts, req, res).catch((e) => sendStatus(res, statusOf(e)));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    void serveUpgrade(opts, wss, req, socket, head).catch((e) => writeSocketStatus(socket, statusOf(e)));
  });
  const sockets = new Set<Duplex>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port, opts.host, () => ok());
  });
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      for (const c of wss.clients) c.terminate();
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
  await checkAuth(opts, req);
  const path = (req.url ?? '/').split('?')[0]!;
  if (path.startsWith('/exec/') || path.startsWith('/attach/')) throw errors.badRequest('Upgrade request required');
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

// ---- exec and attach ----

async function serveUpgrade(opts: AgentServerOptions, wss: WebSocketServer, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  socket.on('error', () => {});
  await checkAuth(opts, req);
  const kind = (req.url ?? '').startsWith('/attach/') ? 'attach' : 'exec';
  const t = parseTarget(req, kind);
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
    throw errors.badRequest('unable to upgrade: only WebSocket is served (SPDY is not supported)');
  }
  const q = t.query;
  const command = q.getAll('command');
  if (kind === 'exec' && !command.length) throw errors.badRequest('you must specify at least 1 command');
  const stdin = bool(q.get('stdin') ?? q.get('input'));
  const stdout = bool(q.get('stdout') ?? q.get('output'));
  const stderr = bool(q.get('stderr') ?? q.get('error'));
  const tty = bool(q.get('tty'));
  if (!stdin && !stdout && !stderr) throw errors.badRequest('you must specify at least one of stdin, stdout, stderr');
  const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim());
  if (!EXEC_PROTOCOLS.some((p) => offered.includes(p))) {
    throw errors.badRequest(`unable to upgrade: none of the requested subprotocols (${offered.join(', ')}) is supported: ${EXEC_PROTOCOLS.join(', ')}`);
  }
  const found = await findContainer(opts.docker, opts.nodeName, t, false);
  if (!found.running) throw errors.badRequest(`container ${t.container} is not running`);
  const container = opts.docker.getContainer(found.id);
  if (kind === 'attach') {
    // Attach joins the container's own process: its TTY is the container's, and the session just ends
    // when the process does (kubelet reports no exit status for attach).
    const session: Session = {
      tty: found.tty,
      start: async () => (await container.attach({ stream: true, hijack: true, stdin, stdout, stderr, logs: false })) as unknown as Duplex,
      resize: (w, h) => container.resize({ w, h }),
      finish: async () => undefined,
    };
    wss.handleUpgrade(req, socket, head, (ws) => void runSession(opts.docker, ws, session, { stdin }));
    return;
  }
  // Created before the upgrade, so that a refusal from the engine is still an HTTP error.
  const exec = await container.exec({
    Cmd: command,
    AttachStdin: stdin,
    AttachStdout: stdout,
    AttachStderr: stderr && !tty,
    Tty: tty,
  });
  const session: Session = {
    tty,
    start: async () => (await exec.start({ hijack: true, stdin, Tty: tty })) as unknown as Duplex,
    resize: (w, h) => exec.resize({ w, h }),
    finish: () => execResult(exec),
  };
  wss.handleUpgrade(req, socket, head, (ws) => void runSession(opts.docker, ws, session, { stdin }));
}

/** An attached process: exec'd, or the container's own (attach). */
interface Session {
  tty: boolean;
  start(): Promise<Duplex>;
  resize(w: number, h: number): Promise<unknown>;
  /** The error channel's last message, if any. */
  finish(): Promise<object | undefined>;
}

async function execResult(exec: Docker.Exec): Promise<object> {
  // The engine closes the stream as the process exits; its exit code may take a moment to be recorded.
  let code: number | null = null;
  for (let i = 0; i < 50; i++) {
    const info = await exec.inspect().catch(() => undefined);
    if (info && !info.Running) {
      code = info.ExitCode;
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return exitStatus(code);
}

function send(ws: WebSocket, channel: number, data: Buffer | string): void {
  if (ws.readyState !== ws.OPEN) return;
  const body = typeof data === 'string' ? Buffer.from(data) : data;
  ws.send(Buffer.concat([Buffer.from([channel]), body]));
}

async function runSession(docker: Docker, ws: WebSocket, session: Session, o: { stdin: boolean }): Promise<void> {
  // Messages may arrive before the engine has attached: keep them until it has.
  const early: Buffer[] = [];
  let stream: Duplex | undefined;
  const onMessage = (m: Buffer) => {
    if (!m.length) return;
    const ch = m[0]!;
    const data = m.subarray(1);
    if (ch === STDIN && o.stdin) stream!.write(data);
    else if (ch === RESIZE && session.tty) {
      try {
        const { Width, Height } = JSON.parse(data.toString('utf8'));
        if (Width > 0 && Height > 0) session.resize(Width, Height).catch(() => {});
      } catch {
        /* a malformed resize is ignored, as kubelet does */
      }
    } else if (ch === CLOSE && data[0] === STDIN && o.stdin) stream!.end();
  };
  ws.on('message', (m: Buffer, isBinary: boolean) => {
    if (!isBinary) return;
    if (stream) onMessage(m);
    else early.push(m);
  });
  try {
    stream = await session.start();
  } catch (e) {
    send(ws, ERROR, JSON.stringify(failure(`error executing command: ${(e as Error).message}`)));
    ws.close(1000);
    return;
  }
  ws.on('close', () => stream!.destroy());
  stream.on('error', () => {});
  for (const m of early.splice(0)) onMessage(m);
  const chan = (ch: number) =>
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        send(ws, ch, chunk);
        cb();
      },
    });
  if (session.tty) stream.on('data', (d: Buffer) => send(ws, STDOUT, d));
  else docker.modem.demuxStream(stream, chan(STDOUT), chan(STDERR));
  await new Promise<void>((ok) => {
    stream!.on('end', ok);
    stream!.on('close', ok);
  });
  if (ws.readyState !== ws.OPEN) return;
  const last = await session.finish();
  if (last) send(ws, ERROR, JSON.stringify(last));
  ws.close(1000);
}

function failure(message: string, extra: Partial<Status> = {}) {
  return { metadata: {}, status: 'Failure', message, ...extra };
}

/** The error channel's last word, as kubelet writes it (client-go turns NonZeroExitCode into the exit code). */
export function exitStatus(code: number | null) {
  if (code === 0) return { metadata: {}, status: 'Success' };
  if (code === null) return failure('error executing command: the exit code is unknown', { reason: 'InternalError' });
  return failure(`command terminated with non-zero exit code: exit status ${code}`, {
    reason: 'NonZeroExitCode' as Status['reason'],
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
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

function sendStatus(res: ServerResponse, st: Status): void {
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
