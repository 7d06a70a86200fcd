// The agent's stream listener: where the cloud front door sends kubectl exec, attach and port-forward.
// A deployed apiserver is a Lambda and cannot hold an upgraded connection, so CloudFront's stream router
// (lambdas/edge/stream-router.ts) points these requests at the pod's node, on this plain-HTTP port
// (CloudFront refuses self-signed origin certificates; the security group admits only CloudFront's
// origin-facing addresses). Requests arrive as kubectl sent them to the apiserver:
//   GET|POST /api/v1/namespaces/{ns}/pods/{name}/exec?container=..&command=..&stdin=..&tty=..
//   GET|POST /api/v1/namespaces/{ns}/pods/{name}/attach?container=..
//   GET|POST /api/v1/namespaces/{ns}/pods/{name}/portforward?ports=..
//   GET      /api/v1/namespaces/{ns}/pods/{name}/log?container=..&follow=..  (no upgrade: the apiserver
//            Lambda is outside the VPC and can't reach the agent, so logs come this way too)
// with the user's own bearer token. Before anything is upgraded the listener does the apiserver's part:
// the token must pass the agent's TokenReview (401), the pod must exist and be bound to this node (404),
// the container is the named one or the pod's only one (400, kube-apiserver's messages). Then the
// connection is spliced, as the apiserver splices it (lambdas/apiserver/node-proxy.ts), to the agent's
// own HTTPS server (server.ts) on its kubelet path, over loopback with the pinned certificate, so the
// stream is served by exactly the code that serves it behind a local apiserver: remotecommand over
// WebSocket or SPDY/3.1, port-forward as SPDY in WebSocket or plain SPDY. (Through CloudFront only
// WebSocket upgrades pass; kubectl 1.32 tries WebSocket first for all three.)

import http from 'node:http';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ApiError, errors, type Status } from '../lambdas/machinery/status.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { connectAgent, spliceUpgrade, type AgentTarget } from '../lambdas/apiserver/node-proxy.ts';
import { listenTracked, sendStatus, writeSocketStatus } from './server.ts';

/** The apiserver-style paths served here (the same as the stream router's). */
const STREAM_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/(exec|attach|portforward|log)\/?$/;


export interface StreamListenerOptions {
  nodeName: string;
  /** The port (0 picks one) and address to listen on; default all addresses. */
  port: number;
  host?: string;
  /** Reads the pod (the agent's API client, or anything with its get). */
  kube: { get<T = KubeObject>(path: string): Promise<T> };
  /** The agent's token check (authn.ts, a TokenReview); the agent server checks the same token again, from its cache. */
  authenticate(token: string): Promise<boolean>;
  /** The agent's own HTTPS server (server.ts): loopback address, its port, and its certificate's SHA-256. */
  agent: AgentTarget;
  log?: (msg: string) => void;
}

export interface StreamListener {
  port: number;
  close(): Promise<void>;
}

export async function startStreamListener(o: StreamListenerOptions): Promise<StreamListener> {
  const log = o.log ?? ((m: string) => console.error(`agent: stream listener: ${m}`));
  const server = http.createServer((req, res) => {
    void serveHttp(o, req, res).catch((e) => sendStatus(res, statusOf(e, log)));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    void splice(o, req, socket, head).catch((e) => writeSocketStatus(socket, statusOf(e, log)));
  });
  return listenTracked(server, o.port, o.host);
}

interface Request {
  namespace: string;
  pod: string;
  sub: 'exec' | 'attach' | 'portforward' | 'log';
  query: URLSearchParams;
}

function parse(req: IncomingMessage): Request {
  const u = new URL(req.url ?? '/', 'http://node');
  const m = STREAM_PATH.exec(u.pathname);
  if (!m) throw errors.pageNotFound();
  let namespace: string, pod: string;
  try {
    [namespace, pod] = [decodeURIComponent(m[1]!), decodeURIComponent(m[2]!)];
  } catch {
    throw errors.badRequest(`malformed path: ${u.pathname}`);
  }
  return { namespace, pod, sub: m[3] as Request['sub'], query: u.searchParams };
}

async function checkAuth(o: StreamListenerOptions, req: IncomingMessage): Promise<string> {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (!m || !(await o.authenticate(m[1]!))) throw errors.unauthorized();
  return m[1]!;
}

/** A request that did not ask to upgrade: pods/log is served (streamed from the agent server); nothing else is. */
async function serveHttp(o: StreamListenerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const r = parse(req);
  const token = await checkAuth(o, req);
  if (r.sub !== 'log') throw errors.badRequest('Upgrade request required');
  if (req.method !== 'GET') throw errors.methodNotAllowed();
  const pod = await podOnThisNode(o, r);
  const q = new URLSearchParams(r.query);
  const container = containerOf(pod, q.get('container'));
  q.delete('container');
  const query = q.toString();
  const path = `/containerLogs/${encodeURIComponent(r.namespace)}/${encodeURIComponent(r.pod)}/${encodeURIComponent(container)}${query ? `?${query}` : ''}`;
  const agent = await connectAgent(o.agent);
  const upstream = await new Promise<IncomingMessage>((ok, fail) => {
    const out = https.request({ createConnection: () => agent, path, headers: { authorization: `Bearer ${token}` } }, ok);
    out.on('error', fail);
    out.end();
  }).catch((e: Error) => {
    agent.destroy();
    throw new ApiError('ServiceUnavailable', `error talking to the node agent: ${e.message}`);
  });
  // The agent server's answer as it is: the log stream (followed as it grows), or its Status.
  res.writeHead(upstream.statusCode ?? 502, { 'content-type': upstream.headers['content-type'] ?? 'text/plain' });
  res.flushHeaders();
  upstream.pipe(res);
  res.on('close', () => upstream.destroy());
}

async function splice(o: StreamListenerOptions, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  const r = parse(req);
  if (req.method !== 'GET' && req.method !== 'POST') throw errors.methodNotAllowed();
  const token = await checkAuth(o, req);
  const upgrade = (req.headers.upgrade ?? '').toLowerCase();
  if (upgrade !== 'websocket' && upgrade !== 'spdy/3.1') {
    throw errors.badRequest(`unable to upgrade: unsupported protocol ${JSON.stringify(req.headers.upgrade ?? '')}: only WebSocket and SPDY/3.1 are served`);
  }
  const pod = await podOnThisNode(o, r);
  // Port-forward's ports travel in the SPDY streams' headers: kubelet's path takes no query.
  const q = r.sub === 'portforward' ? new URLSearchParams() : new URLSearchParams(r.query);
  let path: string;
  if (r.sub === 'portforward') path = `/portForward/${encodeURIComponent(r.namespace)}/${encodeURIComponent(r.pod)}`;
  else {
    const container = containerOf(pod, q.get('container'));
    q.delete('container');
    path = `/${r.sub}/${encodeURIComponent(r.namespace)}/${encodeURIComponent(r.pod)}/${encodeURIComponent(container)}`;
  }
  const query = q.toString();
  // The user's own token: the agent server reviews it too (a hit in the authenticator's cache).
  await spliceUpgrade(o.agent, req, socket, head, `${path}${query ? `?${query}` : ''}`, token);
}

/** The pod, if it is bound to this node; a pod elsewhere is a 404 here, as kubelet answers for pods it does not run. */
async function podOnThisNode(o: StreamListenerOptions, r: Request): Promise<KubeObject> {
  let pod: KubeObject;
  try {
    pod = await o.kube.get<KubeObject>(`/api/v1/namespaces/${encodeURIComponent(r.namespace)}/pods/${encodeURIComponent(r.pod)}`);
  } catch (e) {
    if (e instanceof ApiError && e.code === 404) throw errors.notFound('pods', '', r.pod);
    throw new ApiError('ServiceUnavailable', `the node agent could not read pod ${r.namespace}/${r.pod}: ${(e as Error).message}`);
  }
  if (pod.spec?.nodeName !== o.nodeName) throw new ApiError('NotFound', `pod ${r.namespace}/${r.pod} is not on node ${o.nodeName}`, { name: r.pod, kind: 'pods' });
  return pod;
}

/** The named container, or the pod's only one, with kube-apiserver's messages (as node-proxy.ts). */
function containerOf(pod: KubeObject, name: string | null): string {
  const names: string[] = (pod.spec?.containers ?? []).map((c: { name: string }) => c.name);
  if (!name) {
    if (names.length !== 1) throw errors.badRequest(`a container name must be specified for pod ${pod.metadata.name}, choose one of: [${names.join(' ')}]`);
    return names[0]!;
  }
  if (!names.includes(name) && !(pod.spec?.initContainers ?? []).some((i: { name: string }) => i.name === name)) {
    throw errors.badRequest(`container ${name} is not valid for pod ${pod.metadata.name}`);
  }
  return name;
}

function statusOf(e: unknown, log: (m: string) => void): Status {
  if (e instanceof ApiError) return e.status;
  log(`request failed: ${e instanceof Error ? e.stack : String(e)}`);
  return errors.internal(e instanceof Error ? e.message : String(e)).status;
}
