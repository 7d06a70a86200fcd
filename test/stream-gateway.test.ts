// kubectl exec, attach and port-forward with ONE server URL, as on a deployed cluster whose apiserver is a
// Lambda: the URL is a front door (CloudFront in the cloud) that sends every request to the apiserver
// except the three stream paths, for which the stream router (lambdas/edge/stream-router.ts, the real
// Lambda@Edge handler, called with a CloudFront origin-request event) asks the apiserver where the pod
// runs and sends the upgrade to that node's stream listener (node-agent/stream-listener.ts), which checks
// the user's token and splices it to the agent server. Real parts throughout: a local cluster, the agent
// server on the Docker Engine, the machine's kubectl; the only stand-ins are the front door itself (a
// small HTTPS server doing what CloudFront does: call the origin-request function, then forward to the
// origin it chose) and the apiserver's origin, a plain-HTTP relay to the local HTTPS apiserver playing
// the Function URL (so the handler's global fetch needs no private CA).
// As in kubectl.portforward.test.ts the agent core is not started: the test runs the pods' containers
// with the labels the agent puts on them, and the Node carries what a cloud agent publishes (ExternalDNS,
// skiff.io/stream-port), here `localhost` and the listener's port.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { until } from './support/until.ts';
import { httpGet, portForward, untilHttpAnswers } from './support/port-forward.ts';
import { join } from 'node:path';
import type { CloudFrontHeaders, CloudFrontRequest, CloudFrontRequestEvent, CloudFrontResultResponse } from 'aws-lambda';
import WebSocket from 'ws';
import { requireDocker, TEST_IMAGE } from './support/docker.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { startServedNode } from './support/agent-server.ts';
import { PAUSE, runLabels } from '../node-agent/runtime.ts';
import { KubeClient } from '../node-agent/kube-client.ts';
import { tokenReviewAuthenticator } from '../node-agent/authn.ts';
import { STREAM_PORT_ANNOTATION } from '../node-agent/node.ts';
import { startStreamListener, type StreamListener } from '../node-agent/stream-listener.ts';
import { STREAM_PATH, handler } from '../lambdas/edge/stream-router.ts';
import { generateCerts } from '../lambdas/local/certs.ts';
import { writeKubeconfig } from '../lambdas/local/kubeconfig.ts';
import { findResource } from '../lambdas/machinery/resources.ts';

const TEST = 'stream-gateway.test.ts';
const NODE = `gateway-${process.pid}`;
const NO_DNS = `gateway-nodns-${process.pid}`;
const NO_PORT = `gateway-noport-${process.pid}`;
const INDEX = `hello through the front door from ${NODE}\n`;
const BIG_LINES = 40_000;
const big = () => Array.from({ length: BIG_LINES }, (_, i) => `${i + 1}\n`).join('');

const docker = await requireDocker();
const d = describe.skipIf(!docker);

let c: TestCluster;
let served: Awaited<ReturnType<typeof startServedNode>>;
let kube: KubeClient;
let listener: StreamListener;
let relay: http.Server;
let frontDoor: https.Server;
let fdCerts: Awaited<ReturnType<typeof generateCerts>>;
let kubeconfig = '';
/** Where the front door sent each stream request: `host:port` of the origin the router chose, or the status it answered. */
const routed: string[] = [];
const children = new Set<ChildProcess>();
const sockets = new Set<Duplex>();

const pods = () => findResource('', 'v1', 'pods')!;
const nodes = () => findResource('', 'v1', 'nodes')!;
const portOf = (s: net.Server) => (s.address() as AddressInfo).port;

// ---- the front door and the apiserver's origin ----

/** The CloudFront origin-request event for a viewer request, its origin being the apiserver relay. */
function originRequestEvent(method: string, url: string, rawHeaders: string[], clientIp = '127.0.0.1'): CloudFrontRequestEvent {
  const origin = { host: '127.0.0.1', port: portOf(relay) };
  const headers: CloudFrontHeaders = {};
  // ALL_VIEWER_EXCEPT_HOST_HEADER: every viewer header, Host being the origin's.
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const key = rawHeaders[i]!;
    if (key.toLowerCase() === 'host') continue;
    (headers[key.toLowerCase()] ??= []).push({ key, value: rawHeaders[i + 1]! });
  }
  headers.host = [{ key: 'Host', value: origin.host }];
  const u = new URL(url, 'https://front-door');
  const request: CloudFrontRequest = {
    clientIp,
    headers,
    method,
    querystring: u.search.replace(/^\?/, ''),
    uri: u.pathname,
    origin: { custom: { customHeaders: {}, domainName: origin.host, keepaliveTimeout: 5, path: '', port: origin.port, protocol: 'http', readTimeout: 30, sslProtocols: ['TLSv1.2'] } },
  };
  return { Records: [{ cf: { config: { distributionDomainName: 'd111111abcdef8.cloudfront.net', distributionId: 'EDFDVBD6EXAMPLE', eventType: 'origin-request', requestId: 'test' }, request } }] };
}

function headerLines(h: CloudFrontHeaders | undefined): string[] {
  return Object.values(h ?? {}).flatMap((vs) => vs.map((v) => `${v.key ?? ''}: ${v.value}`));
}

/** Plain request → origin (http), response streamed back (watches too). */
function forwardHttp(req: IncomingMessage, res: ServerResponse, host: string, port: number, path: string, headerList: string[]): void {
  const headers: Record<string, string | string[]> = {};
  for (const line of headerList) {
    const i = line.indexOf(': ');
    const [k, v] = [line.slice(0, i), line.slice(i + 2)];
    const had = headers[k];
    headers[k] = had === undefined ? v : [...(Array.isArray(had) ? had : [had]), v];
  }
  const out = http.request({ host, port, method: req.method, path, headers }, (r) => {
    res.writeHead(r.statusCode!, r.rawHeaders);
    r.pipe(res);
  });
  out.on('error', () => res.destroy());
  res.on('close', () => out.destroy());
  req.pipe(out);
}

/** CloudFront's part for the stream behaviours: run the origin-request function, answer its response or go where it says. */
async function routeThroughEdge(req: IncomingMessage): Promise<{ response: CloudFrontResultResponse } | { host: string; port: number; path: string; headers: string[] }> {
  const result = await handler(originRequestEvent(req.method!, req.url!, req.rawHeaders));
  if (result && 'status' in result) {
    routed.push(result.status);
    return { response: result };
  }
  const r = result as CloudFrontRequest;
  const o = r.origin!.custom!;
  routed.push(`${o.domainName}:${o.port}`);
  return { host: o.domainName, port: o.port, path: `${o.path}${r.uri}${r.querystring ? `?${r.querystring}` : ''}`, headers: headerLines(r.headers) };
}

async function serveFrontDoor(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url!, 'https://x').pathname;
  if (!STREAM_PATH.test(path)) {
    const list: string[] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() !== 'host') list.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    return forwardHttp(req, res, '127.0.0.1', portOf(relay), req.url!, list);
  }
  const to = await routeThroughEdge(req);
  if ('response' in to) {
    res.writeHead(Number(to.response.status), Object.fromEntries(Object.entries(to.response.headers ?? {}).map(([k, v]) => [k, v[0]!.value])));
    res.end(to.response.body);
    return;
  }
  forwardHttp(req, res, to.host, to.port, to.path, to.headers);
}

/** An upgrade: through the origin-request function, then spliced to the chosen origin as CloudFront holds a WebSocket. */
async function upgradeFrontDoor(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  socket.on('error', () => {});
  const path = new URL(req.url!, 'https://x').pathname;
  if (!STREAM_PATH.test(path)) {
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    return;
  }
  const to = await routeThroughEdge(req);
  if ('response' in to) {
    const body = to.response.body ?? '';
    socket.end(
      [`HTTP/1.1 ${to.response.status} ${to.response.statusDescription ?? ''}`, ...headerLines(to.response.headers), `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close', '', body].join('\r\n'),
    );
    return;
  }
  const origin = net.connect(to.port, to.host);
  sockets.add(origin);
  origin.on('close', () => (sockets.delete(origin), socket.destroy()));
  origin.on('error', () => socket.destroy());
  socket.on('close', () => origin.destroy());
  origin.write([`${req.method} ${to.path} HTTP/1.1`, ...to.headers, '', ''].join('\r\n'));
  if (head.length) origin.write(head);
  origin.pipe(socket);
  socket.pipe(origin);
}

/** The Function URL's stand-in: plain HTTP in, the local HTTPS apiserver behind. */
function relayToApiserver(req: IncomingMessage, res: ServerResponse): void {
  const u = new URL(c.url);
  const headers = { ...req.headers, host: u.host };
  const out = https.request({ host: u.hostname, port: u.port, method: req.method, path: req.url, headers, ca: c.caCert }, (r) => {
    res.writeHead(r.statusCode!, r.rawHeaders);
    r.pipe(res);
  });
  out.on('error', () => res.destroy());
  res.on('close', () => out.destroy());
  req.pipe(out);
}

function listen(s: net.Server): Promise<void> {
  s.on('connection', (x: net.Socket) => (sockets.add(x), x.on('close', () => sockets.delete(x))));
  return new Promise((ok) => s.listen(0, '127.0.0.1', () => ok()));
}

// ---- kubectl and requests ----

function kubectl(args: string[], env: Record<string, string> = {}, input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    const p = execFile('kubectl', args, { env: { ...process.env, KUBECONFIG: kubeconfig, KUBECACHEDIR: join(c.dataDir, 'kube-cache-fd'), ...env }, timeout: 30_000 }, (err, stdout, stderr) =>
      ok({ code: err ? (typeof (err as any).code === 'number' ? (err as any).code : 1) : 0, stdout, stderr }),
    );
    if (input !== undefined) p.stdin!.end(input);
  });
}

const forward = (pod: string, remote: number, extra: string[] = []) =>
  portForward({ ...process.env, KUBECONFIG: kubeconfig, KUBECACHEDIR: join(c.dataDir, 'kube-cache-fd') }, children, pod, remote, extra);

/** The router's answer for a viewer request on `path` with this token. */
async function route(path: string, token?: string): Promise<{ status: number; body: any; origin?: string }> {
  const raw = ['Upgrade', 'websocket', 'Connection', 'Upgrade', 'Sec-WebSocket-Protocol', 'v5.channel.k8s.io', ...(token ? ['Authorization', `Bearer ${token}`] : [])];
  const r = await handler(originRequestEvent('GET', path, raw));
  if (r && 'status' in r) {
    expect(r.headers?.['content-type']?.[0]?.value).toBe('application/json');
    return { status: Number(r.status), body: JSON.parse(r.body!) };
  }
  const q = r as CloudFrontRequest;
  return { status: 0, body: undefined, origin: `${q.origin!.custom!.protocol}://${q.origin!.custom!.domainName}:${q.origin!.custom!.port} host=${q.headers.host![0]!.value}` };
}

/** An upgrade (WebSocket, or what `upgrade` says) straight to the stream listener: the HTTP answer's code and body. */
function upgradeToListener(path: string, headers: Record<string, string>): Promise<{ status: number; body: any }> {
  return new Promise((ok, fail) => {
    const req = http.request({ host: '127.0.0.1', port: listener.port, path, method: 'GET', headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-protocol': 'v5.channel.k8s.io', ...headers } });
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      fail(new Error('upgraded'));
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (x) => (text += x));
      res.on('end', () => ok({ status: res.statusCode!, body: JSON.parse(text) }));
    });
    req.on('error', fail);
    req.end();
  });
}

function labels(pod: { metadata: { name: string; uid: string } }, container: string) {
  const ref = { namespace: 'default', name: pod.metadata.name, uid: pod.metadata.uid };
  return { 'io.skiff.test': TEST, ...runLabels(NODE, ref, container, container === PAUSE ? 'pause' : 'app', 0) };
}

function createPod(name: string, containers: string[], nodeName?: string, stdin = false): Promise<any> {
  return c.api.registry.create(pods(), 'default', {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: {
      ...(nodeName ? { nodeName } : {}),
      containers: containers.map((n) => ({ name: n, image: TEST_IMAGE, ...(stdin ? { stdin: true, stdinOnce: true } : {}) })),
      tolerations: [{ operator: 'Exists' }],
    },
  });
}

function createNode(name: string, annotations: Record<string, string>, addresses: { type: string; address: string }[]): Promise<unknown> {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return c.api.registry.create(nodes(), undefined, {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, annotations },
    status: { addresses, conditions: [{ type: 'Ready', status: 'True', lastHeartbeatTime: now, lastTransitionTime: now, reason: 'KubeletReady', message: 'ready' }] },
  });
}

d('exec, attach and port-forward through one front door URL: edge stream router → node stream listener', () => {
  beforeAll(async () => {
    c = await startTestCluster();
    served = await startServedNode(c, docker!, NODE);
    kube = new KubeClient({ server: c.url, caCert: c.caCert, token: c.token });
    listener = await startStreamListener({
      nodeName: NODE,
      host: '127.0.0.1',
      port: 0,
      kube,
      authenticate: tokenReviewAuthenticator((body) => kube.create('/apis/authentication.k8s.io/v1/tokenreviews', body)),
      agent: { host: '127.0.0.1', port: served.agent.port, sha256: served.sha256 },
    });
    // What a cloud agent publishes: its public DNS name and its stream port.
    await c.api.registry.guaranteedUpdate(nodes(), undefined, NODE, undefined, {}, (n: any) => {
      n.metadata.annotations[STREAM_PORT_ANNOTATION] = String(listener.port);
      return n;
    });
    await c.api.registry.guaranteedUpdate(nodes(), undefined, NODE, undefined, { subresource: 'status' }, (n: any) => {
      n.status.addresses.push({ type: 'ExternalDNS', address: 'localhost' });
      return n;
    });
    await createNode(NO_DNS, { [STREAM_PORT_ANNOTATION]: '10255' }, [{ type: 'InternalIP', address: '10.0.0.9' }, { type: 'ExternalIP', address: '203.0.113.9' }]);
    await createNode(NO_PORT, {}, [{ type: 'ExternalDNS', address: 'ec2-203-0-113-10.compute-1.amazonaws.com' }]);

    relay = http.createServer(relayToApiserver);
    await listen(relay);
    fdCerts = await generateCerts(['127.0.0.1']);
    frontDoor = https.createServer({ cert: fdCerts.serverCert, key: fdCerts.serverKey }, (req, res) => {
      void serveFrontDoor(req, res).catch((e) => (res.writeHead(502), res.end(String(e))));
    });
    frontDoor.on('upgrade', (req, socket, head) => void upgradeFrontDoor(req, socket, head).catch(() => socket.destroy()));
    await listen(frontDoor);
    // ONE server URL, as `skiff kubeconfig --stack` writes for a deployed cluster.
    kubeconfig = c.file('front-door.kubeconfig', '');
    writeKubeconfig(kubeconfig, { server: `https://127.0.0.1:${portOf(frontDoor)}`, caCert: fdCerts.caCert, token: c.token });

    // pf: httpd in a pod network (pause + app); solo: a shell; att: a process reading one line.
    const pf = await createPod('pf', ['web'], NODE);
    const pause = await docker!.createContainer({ Image: TEST_IMAGE, Cmd: ['sleep', '3600'], Labels: labels(pf, PAUSE), HostConfig: { NetworkMode: 'bridge' } });
    await pause.start();
    await (
      await docker!.createContainer({
        Image: TEST_IMAGE,
        Cmd: ['sh', '-c', `mkdir -p /www && printf '${INDEX.replace('\n', '\\n')}' > /www/index.html && seq 1 ${BIG_LINES} > /www/big.txt && exec httpd -f -p 8080 -h /www`],
        Labels: labels(pf, 'web'),
        HostConfig: { NetworkMode: `container:${pause.id}` },
      })
    ).start();
    const ip = Object.values((await pause.inspect()).NetworkSettings.Networks).map((n) => n.IPAddress).find(Boolean);
    await c.api.registry.guaranteedUpdate(pods(), 'default', 'pf', undefined, { subresource: 'status' }, (p: any) => ({
      ...p,
      status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], conditions: [{ type: 'Ready', status: 'True' }] },
    }));
    const solo = await createPod('solo', ['main'], NODE);
    await (await docker!.createContainer({ Image: TEST_IMAGE, Cmd: ['sleep', '3600'], Labels: labels(solo, 'main'), HostConfig: { NetworkMode: 'none' } })).start();
    const att = await createPod('att', ['main'], NODE, true);
    await (
      await docker!.createContainer({ Image: TEST_IMAGE, Cmd: ['sh', '-c', 'read l; echo got:$l'], OpenStdin: true, StdinOnce: true, Labels: labels(att, 'main'), HostConfig: { NetworkMode: 'none' } })
    ).start();
    await createPod('two', ['a', 'b'], NODE);
    const chatty = await createPod('chatty', ['main'], NODE);
    await (
      await docker!.createContainer({ Image: TEST_IMAGE, Cmd: ['sh', '-c', 'echo line1; echo line2; sleep 3600'], Labels: labels(chatty, 'main'), HostConfig: { NetworkMode: 'none' } })
    ).start();
    await createPod('unbound', ['main']);
    await createPod('nodns', ['main'], NO_DNS);
    await createPod('noport', ['main'], NO_PORT);
    await untilHttpAnswers(ip!, 8080, '/index.html');
  }, 60_000);

  afterAll(async () => {
    for (const p of children) p.kill('SIGKILL');
    for (const s of sockets) s.destroy();
    await Promise.all([frontDoor, relay].map((s) => s && new Promise((ok) => s.close(ok))));
    await listener?.close();
    await served?.close();
    kube?.close();
    await c?.destroy();
    const mine = await docker!.listContainers({ all: true, filters: { label: [`io.skiff.test=${TEST}`] } });
    await Promise.all(mine.map((x) => docker!.getContainer(x.Id).remove({ force: true }).catch(() => {})));
  });

  it('kubectl exec through the front door: stdout, stderr, exit code, over the WebSocket to the node', async () => {
    routed.length = 0;
    const r = await kubectl(['exec', 'solo', '-v=6', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toContain('err\n');
    expect(r.code).toBe(3);
    // One server URL: the upgrade went to the front door, and the router sent it to the node's listener.
    expect(r.stderr).toMatch(new RegExp(`GET https://127\\.0\\.0\\.1:${portOf(frontDoor)}/api/v1/namespaces/default/pods/solo/exec\\?\\S+ 101 Switching Protocols`));
    expect(r.stderr).toContain('The subprotocol is v5.channel.k8s.io');
    expect(routed).toEqual([`localhost:${listener.port}`]);
  });

  it('kubectl logs through the front door: the router sends pods/log to the node (the apiserver Lambda does not reach agents)', async () => {
    routed.length = 0;
    const r = await kubectl(['logs', 'chatty', '-v=6']);
    expect(r.stdout).toBe('line1\nline2\n');
    expect(r.stderr).toMatch(new RegExp(`GET https://127\\.0\\.0\\.1:${portOf(frontDoor)}/api/v1/namespaces/default/pods/chatty/log\\S* 200 OK`));
    expect(routed).toEqual([`localhost:${listener.port}`]);
    expect((await kubectl(['logs', 'chatty', '--tail=1'])).stdout).toBe('line2\n');
    // A pod of two containers and no container named: kube-apiserver's 400, from the listener.
    const two = await new Promise<{ status: number; body: any }>((ok, fail) =>
      https
        .get(`https://127.0.0.1:${portOf(frontDoor)}/api/v1/namespaces/default/pods/two/log`, { ca: fdCerts.caCert, headers: { authorization: `Bearer ${c.token}` } }, (res) => {
          let t = '';
          res.on('data', (d) => (t += d)).on('end', () => ok({ status: res.statusCode!, body: JSON.parse(t) }));
        })
        .on('error', fail),
    );
    expect(two).toMatchObject({ status: 400, body: { kind: 'Status', message: 'a container name must be specified for pod two, choose one of: [a b]' } });
  });

  it('kubectl logs -f streams through the front door', async () => {
    const p = spawn('kubectl', ['logs', '-f', 'chatty'], { env: { ...process.env, KUBECONFIG: kubeconfig, KUBECACHEDIR: join(c.dataDir, 'kube-cache-fd') } });
    children.add(p);
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    await until('followed lines', async () => out === 'line1\nline2\n', 15_000);
    // Still following (the stream stays open), not ended.
    expect(p.exitCode).toBeNull();
    p.kill('SIGKILL');
  });

  it('kubectl exec -i: stdin through the front door', async () => {
    const r = await kubectl(['exec', '-i', 'solo', '--', 'sh', '-c', 'tr a-z A-Z; echo end'], {}, 'hello from stdin\n');
    expect(r).toMatchObject({ code: 0, stdout: 'HELLO FROM STDIN\nend\n' });
  });

  it('kubectl exec -it in a pseudo-terminal through the front door', async () => {
    const r = await new Promise<{ code: number; stdout: string }>((ok) =>
      execFile('script', ['-qec', `kubectl exec -it solo -- sh -c '[ -t 0 ] && echo is-a-tty; exit 4'`, '/dev/null'], { env: { ...process.env, KUBECONFIG: kubeconfig }, timeout: 30_000 }, (err, stdout) =>
        ok({ code: err ? ((err as any).code ?? 1) : 0, stdout }),
      ),
    );
    expect(r.stdout).toContain('is-a-tty');
    expect(r.code).toBe(4);
  });

  it('kubectl attach -i joins the container process through the front door', async () => {
    const r = await kubectl(['attach', '-i', 'att'], {}, 'through the edge\n');
    expect(r.stdout).toContain('got:through the edge\n');
    expect(r.code).toBe(0);
  });

  it('kubectl port-forward through the front door, then HTTP to the pod through it', async () => {
    routed.length = 0;
    const f = await forward('pf', 8080, ['-v=6']);
    try {
      expect(await httpGet(f.port, '/index.html')).toEqual({ status: 200, body: INDEX });
      const b = await httpGet(f.port, '/big.txt');
      expect(b.status).toBe(200);
      expect(b.body === big()).toBe(true);
    } finally {
      f.proc.kill('SIGINT');
      await f.exited;
    }
    expect(f.stderr()).toMatch(new RegExp(`https://127\\.0\\.0\\.1:${portOf(frontDoor)}/api/v1/namespaces/default/pods/pf/portforward 101 Switching Protocols`));
    expect(routed).toEqual([`localhost:${listener.port}`]);
  });

  it('the listener serves kubectl\'s SPDY/3.1 fallback too, for a front door that passes it (CloudFront passes only WebSocket)', async () => {
    routed.length = 0;
    const r = await kubectl(['exec', '-i', 'solo', '-v=6', '--', 'sh', '-c', 'cat; echo done'], { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' }, 'over spdy\n');
    expect(r).toMatchObject({ code: 0, stdout: 'over spdy\ndone\n' });
    expect(r.stderr).toMatch(/POST https:\/\/127\.0\.0\.1:\d+\/api\/v1\/namespaces\/default\/pods\/solo\/exec\?\S+ 101 Switching Protocols/);
    expect(routed).toEqual([`localhost:${listener.port}`]);
  });

  it('kubectl exec errors come back as the apiserver or the node says them', async () => {
    const missing = await kubectl(['exec', 'solo', '-c', 'nope', '--', 'true']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('container nope is not valid for pod solo');
    const unbound = await kubectl(['exec', 'unbound', '--', 'true']);
    expect(unbound.code).not.toBe(0);
    expect(unbound.stderr).toContain('pod unbound does not have a host assigned');
    const noport = await kubectl(['exec', 'noport', '--', 'true']);
    expect(noport.code).not.toBe(0);
    expect(noport.stderr).toContain(`node "${NO_PORT}" has no usable stream port`);
  });

  it('router: points the request at the node (ExternalDNS, stream port, http, Host)', async () => {
    const r = await route('/api/v1/namespaces/default/pods/solo/exec', c.token);
    expect(r.origin).toBe(`http://localhost:${listener.port} host=localhost`);
  });

  it('router: relays the apiserver Status for an unauthenticated viewer (401) and a missing pod (404)', async () => {
    const none = await route('/api/v1/namespaces/default/pods/solo/exec');
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ kind: 'Status', reason: 'Unauthorized', code: 401 });
    const wrong = await route('/api/v1/namespaces/default/pods/solo/exec', 'not-a-token');
    expect(wrong.status).toBe(401);
    expect(wrong.body).toMatchObject({ kind: 'Status', reason: 'Unauthorized', code: 401 });
    const missing = await route('/api/v1/namespaces/default/pods/nope/portforward', c.token);
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ kind: 'Status', reason: 'NotFound', message: 'pods "nope" not found', code: 404 });
  });

  it('router: an unscheduled pod is kube-apiserver\'s 400; a node without public DNS or stream port is a 503', async () => {
    const unbound = await route('/api/v1/namespaces/default/pods/unbound/attach', c.token);
    expect(unbound.status).toBe(400);
    expect(unbound.body).toMatchObject({ kind: 'Status', reason: 'BadRequest', message: 'pod unbound does not have a host assigned' });
    const nodns = await route('/api/v1/namespaces/default/pods/nodns/exec', c.token);
    expect(nodns.status).toBe(503);
    expect(nodns.body).toMatchObject({ kind: 'Status', reason: 'ServiceUnavailable', code: 503 });
    expect(nodns.body.message).toContain(`node "${NO_DNS}" has no public DNS name`);
    const noport = await route('/api/v1/namespaces/default/pods/noport/exec', c.token);
    expect(noport.status).toBe(503);
    expect(noport.body.message).toContain(`node "${NO_PORT}" has no usable stream port`);
    const other = await route('/api/v1/namespaces/default/pods/solo/status', c.token);
    expect(other.status).toBe(404);
  });

  it('router: an apiserver that cannot be reached is a 503 Status, not a crash', async () => {
    const ev = originRequestEvent('GET', '/api/v1/namespaces/default/pods/solo/exec', ['Authorization', `Bearer ${c.token}`]);
    const closed = net.createServer();
    await new Promise<void>((ok) => closed.listen(0, '127.0.0.1', () => ok()));
    const port = portOf(closed);
    await new Promise((ok) => closed.close(ok));
    ev.Records[0]!.cf.request.origin!.custom!.port = port;
    const r = (await handler(ev)) as CloudFrontResultResponse;
    expect(r.status).toBe('503');
    expect(JSON.parse(r.body!)).toMatchObject({ kind: 'Status', reason: 'ServiceUnavailable' });
  });

  it('listener: 401 without a valid token, before any upgrade', async () => {
    const path = '/api/v1/namespaces/default/pods/solo/exec?command=true&stdout=true';
    const none = await upgradeToListener(path, {});
    expect(none).toMatchObject({ status: 401, body: { kind: 'Status', reason: 'Unauthorized', code: 401 } });
    const wrong = await upgradeToListener(path, { authorization: 'Bearer not-a-token' });
    expect(wrong).toMatchObject({ status: 401, body: { reason: 'Unauthorized' } });
  });

  it('listener: 404 for pods that are not on this node or do not exist, and for other paths', async () => {
    const auth = { authorization: `Bearer ${c.token}` };
    const elsewhere = await upgradeToListener('/api/v1/namespaces/default/pods/noport/exec?command=true&stdout=true', auth);
    expect(elsewhere).toMatchObject({ status: 404, body: { kind: 'Status', reason: 'NotFound', message: `pod default/noport is not on node ${NODE}` } });
    const unbound = await upgradeToListener('/api/v1/namespaces/default/pods/unbound/portforward', auth);
    expect(unbound.status).toBe(404);
    const missing = await upgradeToListener('/api/v1/namespaces/default/pods/nope/attach', auth);
    expect(missing).toMatchObject({ status: 404, body: { reason: 'NotFound', message: 'pods "nope" not found' } });
    const other = await upgradeToListener('/exec/default/solo/main?command=true&stdout=true', auth);
    expect(other).toMatchObject({ status: 404, body: { reason: 'NotFound' } });
  });

  it('listener: 400 for plain requests, unknown upgrades and an ambiguous container', async () => {
    const auth = { authorization: `Bearer ${c.token}` };
    const plain = await new Promise<{ status: number; body: any }>((ok, fail) => {
      http
        .get({ host: '127.0.0.1', port: listener.port, path: '/api/v1/namespaces/default/pods/solo/exec?command=true&stdout=true', headers: auth }, (res) => {
          let t = '';
          res.on('data', (x) => (t += x));
          res.on('end', () => ok({ status: res.statusCode!, body: JSON.parse(t) }));
        })
        .on('error', fail);
    });
    expect(plain).toMatchObject({ status: 400, body: { kind: 'Status', reason: 'BadRequest', message: 'Upgrade request required' } });
    const h2c = await upgradeToListener('/api/v1/namespaces/default/pods/solo/exec?command=true&stdout=true', { ...auth, upgrade: 'h2c' });
    expect(h2c.status).toBe(400);
    const two = await upgradeToListener('/api/v1/namespaces/default/pods/two/exec?command=true&stdout=true', auth);
    expect(two).toMatchObject({ status: 400, body: { message: 'a container name must be specified for pod two, choose one of: [a b]' } });
  });

  it('listener: a WebSocket exec straight to it runs the command (the protocol is the agent server\'s own)', async () => {
    const out = await new Promise<string>((ok, fail) => {
      const ws = new WebSocket(`ws://127.0.0.1:${listener.port}/api/v1/namespaces/default/pods/solo/exec?command=echo&command=direct&stdout=true`, ['v5.channel.k8s.io'], {
        headers: { authorization: `Bearer ${c.token}` },
      });
      let text = '';
      ws.on('message', (m: Buffer) => {
        if (m[0] === 1) text += m.subarray(1).toString();
      });
      ws.on('close', () => ok(text));
      ws.on('error', fail);
    });
    expect(out).toBe('direct\n');
  });
});
