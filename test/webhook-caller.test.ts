// A deployed apiserver calls service-based admission webhooks through the webhook caller, a function
// inside the nodes' VPC (lambdas/webhook-caller/handler.ts; infra/skiff-cluster.ts puts it there). Here the
// apiserver is given the same remote caller the Lambda entry builds, with the Lambda Invoke replaced by
// a call of the real handler through a JSON round trip (what Invoke carries): the webhook is reached
// through it, URL webhooks are not, and a failure inside keeps kube's wording. (The Invoke itself is
// not exercised: moto runs Lambda functions only in containers from a registry, which this machine
// cannot reach; infra.test.ts checks the function, its network and who may invoke it.)

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { generateCerts } from '../lambdas/local/certs.ts';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { storeToken } from '../lambdas/apiserver/auth.ts';
import { SqliteBackend } from '../lambdas/storage/sqlite.ts';
import { remoteWebhookCaller, type WebhookPost } from '../lambdas/apiserver/webhook-post.ts';
import { handler } from '../lambdas/webhook-caller/handler.ts';

const hostIP = Object.values(networkInterfaces())
  .flat()
  .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;

let dir: string;
let server: Server;
let port: number;
let caBundle: string;
let api: ApiServer;
const posts: WebhookPost[] = [];
const TOKEN = 'caller-admin-token';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'skiff-webhook-caller-'));
  const certs = await generateCerts(['127.0.0.1', 'hook.webhooks.svc', ...(hostIP ? [hostIP] : [])]);
  caBundle = Buffer.from(certs.caCert).toString('base64');
  server = createServer({ cert: `${certs.serverCert.trimEnd()}\n${certs.caCert}`, key: certs.serverKey }, (req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const uid = JSON.parse(body).request.uid;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, allowed: false, status: { code: 403, message: `no, from ${req.url}` } } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
  port = (server.address() as AddressInfo).port;
  const backend = new SqliteBackend(join(dir, 'db.sqlite'));
  await storeToken(backend, TOKEN, { username: 'admin', groups: ['system:masters'] });
  api = new ApiServer({
    backend,
    // As lambda.ts builds it, with Invoke replaced by the handler through JSON.
    webhookCaller: remoteWebhookCaller(async (p) => {
      posts.push(p);
      return JSON.parse(JSON.stringify(await handler(JSON.parse(JSON.stringify(p)))));
    }),
  });
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  rmSync(dir, { recursive: true, force: true });
});

async function call(method: string, path: string, body?: unknown) {
  const r = await api.handle({
    method,
    path,
    query: new URLSearchParams(),
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: Buffer.from(body === undefined ? '' : JSON.stringify(body)),
  });
  const text = typeof r.body === 'string' || Buffer.isBuffer(r.body) ? r.body.toString() : '';
  return { status: r.status, json: text ? JSON.parse(text) : undefined };
}

const webhooks = (name: string, ns: string, clientConfig: unknown) => ({
  apiVersion: 'admissionregistration.k8s.io/v1',
  kind: 'ValidatingWebhookConfiguration',
  metadata: { name },
  webhooks: [
    {
      name: `${name}.skiff.test`,
      clientConfig,
      rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['configmaps'] }],
      namespaceSelector: { matchLabels: { test: ns } },
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
    },
  ],
});

describe('the webhook caller', () => {
  it('makes the call to a service-based webhook; a URL webhook is called directly; a failure keeps kube\'s words', async () => {
    expect(hostIP, 'a non-loopback IPv4 address for the Endpoints').toBeDefined();
    for (const ns of ['webhooks', 'svc', 'url', 'down']) {
      expect((await call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { test: ns } } })).status).toBe(201);
    }
    const svc = (name: string, targetPort: number) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { ports: [{ name: 'https', port: 443, targetPort }] } });
    const eps = (name: string, p: number) => ({ apiVersion: 'v1', kind: 'Endpoints', metadata: { name }, subsets: [{ addresses: [{ ip: hostIP }], ports: [{ name: 'https', port: p }] }] });
    expect((await call('POST', '/api/v1/namespaces/webhooks/services', svc('hook', port))).status).toBe(201);
    expect((await call('POST', '/api/v1/namespaces/webhooks/endpoints', eps('hook', port))).status).toBe(201);
    expect((await call('POST', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations', webhooks('svc', 'svc', { service: { namespace: 'webhooks', name: 'hook', path: '/svc' }, caBundle }))).status).toBe(201);

    const cm = (name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name } });
    const r = await call('POST', '/api/v1/namespaces/svc/configmaps', cm('x'));
    expect(r.status).toBe(403);
    expect(r.json.message).toBe('admission webhook "svc.skiff.test" denied the request: no, from /svc?timeout=10s');
    // Through the caller: to the pod's address, verified as the Service's DNS name.
    expect(posts).toHaveLength(1);
    expect(posts[0]).toMatchObject({ host: hostIP, port, path: '/svc?timeout=10s', hostHeader: 'hook.webhooks.svc:443', servername: 'hook.webhooks.svc', timeoutMs: 10_000 });
    expect(JSON.parse(posts[0]!.body).request.name).toBe('x');

    // A URL webhook: the apiserver calls it itself.
    expect((await call('POST', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations', webhooks('url', 'url', { url: `https://127.0.0.1:${port}/url`, caBundle }))).status).toBe(201);
    const u = await call('POST', '/api/v1/namespaces/url/configmaps', cm('y'));
    expect(u.json.message).toBe('admission webhook "url.skiff.test" denied the request: no, from /url?timeout=10s');
    expect(posts).toHaveLength(1);

    // Nothing listening behind the Service: the caller's error comes back with its code, worded as kube's.
    const closed = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '0.0.0.0', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    expect((await call('POST', '/api/v1/namespaces/webhooks/services', svc('gone', closed))).status).toBe(201);
    expect((await call('POST', '/api/v1/namespaces/webhooks/endpoints', eps('gone', closed))).status).toBe(201);
    expect((await call('POST', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations', webhooks('down', 'down', { service: { namespace: 'webhooks', name: 'gone', path: '/x' }, caBundle }))).status).toBe(201);
    const d = await call('POST', '/api/v1/namespaces/down/configmaps', cm('z'));
    expect(d.status).toBe(500);
    expect(d.json.message).toBe(
      `Internal error occurred: failed calling webhook "down.skiff.test": failed to call webhook: Post "https://gone.webhooks.svc:443/x?timeout=10s": dial tcp ${hostIP}:${closed}: connect: connection refused`,
    );
    expect(posts).toHaveLength(2);
    expect((await call('GET', '/api/v1/namespaces/down/configmaps/z')).status).toBe(404);
  });

  it('answers a malformed invocation with an error, not a call', async () => {
    expect(await handler({} as WebhookPost)).toEqual({ error: { message: 'the webhook caller was given no webhook post' } });
  });
});
