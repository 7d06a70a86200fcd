// Admission webhooks end to end: a real HTTPS webhook server started here (its own CA, given to the
// apiserver as caBundle) and a real HTTPS apiserver (skiff up's code, in-process). Validating webhooks that
// deny (kube's message, also through stock kubectl) and allow (with a warning), a mutating webhook's
// JSONPatch (and IfNeeded reinvocation), timeouts and unreachable webhooks under failurePolicy Fail and
// Ignore (kube-apiserver's Internal error text), namespaceSelector, dry run, and a service-based webhook
// resolved through its Service's Endpoints.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, request, type Server } from 'node:https';
import { networkInterfaces } from 'node:os';
import type { AddressInfo } from 'node:net';
import { generateCerts } from '../lambdas/local/certs.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';

let c: TestCluster;
let server: Server;
let port: number;
let caBundle: string;
/** The host's own non-loopback IPv4 address (an Endpoints address may not be loopback). */
const hostIP = Object.values(networkInterfaces())
  .flat()
  .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
/** Every AdmissionReview the server received, by path. */
const received: Record<string, any[]> = {};

beforeAll(async () => {
  const certs = await generateCerts(['127.0.0.1', 'hook.webhooks.svc', ...(hostIP ? [hostIP] : [])]);
  caBundle = Buffer.from(certs.caCert).toString('base64');
  server = createServer({ cert: `${certs.serverCert.trimEnd()}\n${certs.caCert}`, key: certs.serverKey }, (req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', async () => {
      const review = JSON.parse(body);
      const path = new URL(req.url!, 'https://x').pathname;
      (received[path] ??= []).push({ review, query: new URL(req.url!, 'https://x').search });
      const uid = review.request.uid;
      let response: any = { uid, allowed: true };
      if (path === '/deny') response = { uid, allowed: false, status: { code: 403, message: 'no thanks' } };
      if (path === '/warn') response = { uid, allowed: true, warnings: ['be careful'] };
      if (path === '/mutate') {
        const patch = [{ op: 'add', path: '/metadata/labels', value: { ...(review.request.object.metadata.labels ?? {}), mutated: 'yes' } }];
        response = { uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') };
      }
      if (path === '/annotate') {
        // How many times this object was sent here (namespaces' kube-root-ca.crt ConfigMaps come here too).
        const seen = received[path]!.filter((r) => r.review.request.object?.metadata?.name === review.request.object?.metadata?.name).length;
        const patch = [{ op: 'add', path: '/data/seen', value: String(seen) }];
        response = { uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') };
      }
      if (path === '/slow') await new Promise((r) => setTimeout(r, 3000));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
  port = (server.address() as AddressInfo).port;
  c = await startTestCluster({ agents: 0 });
});
afterAll(async () => {
  await c?.destroy();
  if (server?.listening) {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

function api(method: string, path: string, body?: unknown): Promise<Res> {
  const u = new URL(c.url);
  const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const r = request(
      {
        host: u.hostname,
        port: u.port,
        path,
        method,
        ca: c.caCert,
        headers: { authorization: `Bearer ${c.token}`, 'content-type': 'application/json', ...(data ? { 'content-length': data.length } : {}) },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text ? JSON.parse(text) : undefined }));
      },
    );
    r.on('error', reject);
    r.end(data);
  });
}

async function namespace(name: string, labels: Record<string, string> = {}) {
  const r = await api('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { test: name, ...labels } } });
  expect(r.status).toBe(201);
}

const configMap = (name: string, labels: Record<string, string> = {}) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels }, data: { a: 'b' } });

/** One webhook on ConfigMap creates in namespaces labelled test=<ns> (or by `selector`). */
function webhook(name: string, ns: string, path: string, extra: Record<string, unknown> = {}, selector?: Record<string, string>) {
  return {
    name,
    clientConfig: { url: `https://127.0.0.1:${port}${path}`, caBundle },
    rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['configmaps'] }],
    namespaceSelector: { matchLabels: selector ?? { test: ns } },
    sideEffects: 'None',
    admissionReviewVersions: ['v1'],
    ...extra,
  };
}

async function configuration(kind: 'ValidatingWebhookConfiguration' | 'MutatingWebhookConfiguration', name: string, webhooks: unknown[]) {
  const resource = kind === 'ValidatingWebhookConfiguration' ? 'validatingwebhookconfigurations' : 'mutatingwebhookconfigurations';
  const r = await api('POST', `/apis/admissionregistration.k8s.io/v1/${resource}`, { apiVersion: 'admissionregistration.k8s.io/v1', kind, metadata: { name }, webhooks });
  expect(r.body?.message).toBeUndefined();
  expect(r.status).toBe(201);
  return r.body;
}

describe('validating webhooks', () => {
  it('a denial is kube-apiserver\'s message, from the API and through stock kubectl, and nothing is written', async () => {
    await namespace('wh-deny');
    await configuration('ValidatingWebhookConfiguration', 'deny', [webhook('deny.skiff.test', 'wh-deny', '/deny')]);
    const r = await api('POST', '/api/v1/namespaces/wh-deny/configmaps', configMap('x'));
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({ kind: 'Status', status: 'Failure', code: 403, message: 'admission webhook "deny.skiff.test" denied the request: no thanks' });
    expect((await api('GET', '/api/v1/namespaces/wh-deny/configmaps/x')).status).toBe(404);
    const k = await c.kubectl(['apply', '-n', 'wh-deny', '-f', '-'], JSON.stringify(configMap('y')));
    expect(k.code).not.toBe(0);
    expect(k.stderr).toContain('admission webhook "deny.skiff.test" denied the request: no thanks');

    // The webhook got an admission.k8s.io/v1 AdmissionReview, with kube's timeout parameter.
    // (Its first may be the root-CA publisher's kube-root-ca.crt for the new namespace, refused and retried.)
    const { review, query } = received['/deny']!.find((r) => r.review.request.name === 'x')!;
    expect(query).toBe('?timeout=10s');
    expect(review).toMatchObject({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        kind: { group: '', version: 'v1', kind: 'ConfigMap' },
        resource: { group: '', version: 'v1', resource: 'configmaps' },
        name: 'x',
        namespace: 'wh-deny',
        operation: 'CREATE',
        userInfo: { username: 'skiff-admin' },
        object: { metadata: { name: 'x' }, data: { a: 'b' } },
        oldObject: null,
        dryRun: false,
        options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' },
      },
    });
    expect(review.request.uid).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('an allowing webhook admits the write and its warnings reach the client; namespaceSelector picks the namespaces', async () => {
    await namespace('wh-allow');
    await namespace('wh-sel-on', { guarded: 'true' });
    await namespace('wh-sel-off');
    await configuration('ValidatingWebhookConfiguration', 'allow', [
      webhook('warn.skiff.test', 'wh-allow', '/warn'),
      webhook('guard.skiff.test', '', '/deny', {}, { guarded: 'true' }),
    ]);
    const r = await api('POST', '/api/v1/namespaces/wh-allow/configmaps', configMap('ok'));
    expect(r.status).toBe(201);
    expect(r.headers.warning).toBe('299 - "be careful"');
    const k = await c.kubectl(['create', 'configmap', 'ok2', '-n', 'wh-allow']);
    expect(k.code).toBe(0);
    expect(k.stderr).toContain('Warning: be careful');

    expect((await api('POST', '/api/v1/namespaces/wh-sel-off/configmaps', configMap('free'))).status).toBe(201);
    const d = await api('POST', '/api/v1/namespaces/wh-sel-on/configmaps', configMap('held'));
    expect(d.status).toBe(403);
    expect(d.body.message).toBe('admission webhook "guard.skiff.test" denied the request: no thanks');
  });

  it('a webhook that answers too late fails the write under Fail and is skipped under Ignore', async () => {
    await namespace('wh-slow');
    await namespace('wh-slow-ignore');
    await configuration('ValidatingWebhookConfiguration', 'slow', [
      webhook('slow.skiff.test', 'wh-slow', '/slow', { timeoutSeconds: 1, failurePolicy: 'Fail' }),
      webhook('slow-ignored.skiff.test', 'wh-slow-ignore', '/slow', { timeoutSeconds: 1, failurePolicy: 'Ignore' }),
    ]);
    const t0 = Date.now();
    const r = await api('POST', '/api/v1/namespaces/wh-slow/configmaps', configMap('late'));
    expect(Date.now() - t0).toBeLessThan(2900);
    expect(r.status).toBe(500);
    expect(r.body).toMatchObject({
      reason: 'InternalError',
      message: `Internal error occurred: failed calling webhook "slow.skiff.test": failed to call webhook: Post "https://127.0.0.1:${port}/slow?timeout=1s": context deadline exceeded`,
    });
    expect((await api('GET', '/api/v1/namespaces/wh-slow/configmaps/late')).status).toBe(404);
    expect((await api('POST', '/api/v1/namespaces/wh-slow-ignore/configmaps', configMap('late'))).status).toBe(201);
  });

  it('an unreachable webhook fails the write under Fail and is skipped under Ignore', async () => {
    await namespace('wh-down');
    await namespace('wh-down-ignore');
    const down = (name: string, ns: string, failurePolicy: string) => ({ ...webhook(name, ns, '/'), clientConfig: { url: 'https://127.0.0.1:1/hook', caBundle }, failurePolicy });
    await configuration('ValidatingWebhookConfiguration', 'down', [down('down.skiff.test', 'wh-down', 'Fail'), down('down-ignored.skiff.test', 'wh-down-ignore', 'Ignore')]);
    const r = await api('POST', '/api/v1/namespaces/wh-down/configmaps', configMap('x'));
    expect(r.status).toBe(500);
    expect(r.body.message).toBe(
      'Internal error occurred: failed calling webhook "down.skiff.test": failed to call webhook: Post "https://127.0.0.1:1/hook?timeout=10s": dial tcp 127.0.0.1:1: connect: connection refused',
    );
    expect((await api('POST', '/api/v1/namespaces/wh-down-ignore/configmaps', configMap('x'))).status).toBe(201);
  });

  it('a dry run is sent to a webhook declaring NoneOnDryRun, with dryRun true, and nothing is stored', async () => {
    await namespace('wh-dry');
    await configuration('ValidatingWebhookConfiguration', 'dry', [webhook('dry.skiff.test', 'wh-dry', '/dry', { sideEffects: 'NoneOnDryRun' })]);
    const r = await api('POST', '/api/v1/namespaces/wh-dry/configmaps?dryRun=All', configMap('x'));
    expect(r.status).toBe(201);
    // By name: the root CA publisher's ConfigMap in wh-dry goes to this webhook too, at a time of its own.
    expect(received['/dry']!.filter((r) => r.review.request.name === 'x').at(-1)!.review.request.dryRun).toBe(true);
    expect((await api('GET', '/api/v1/namespaces/wh-dry/configmaps/x')).status).toBe(404);
  });

  it('sees deletes, with the stored object as oldObject, and can refuse them', async () => {
    await namespace('wh-delete');
    expect((await api('POST', '/api/v1/namespaces/wh-delete/configmaps', configMap('keep'))).status).toBe(201);
    await configuration('ValidatingWebhookConfiguration', 'delete', [
      webhook('nodelete.skiff.test', 'wh-delete', '/deny', { rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['DELETE'], resources: ['configmaps'] }] }),
    ]);
    const r = await api('DELETE', '/api/v1/namespaces/wh-delete/configmaps/keep');
    expect(r.status).toBe(403);
    expect(r.body.message).toBe('admission webhook "nodelete.skiff.test" denied the request: no thanks');
    expect((await api('GET', '/api/v1/namespaces/wh-delete/configmaps/keep')).status).toBe(200);
    // The last review from this namespace: the "deny" webhook of an earlier test still refuses writes in
    // wh-deny, where the root CA publisher may be retrying its ConfigMap while this test runs.
    const { review } = received['/deny']!.filter((r) => r.review.request.namespace === 'wh-delete').at(-1)!;
    expect(review.request).toMatchObject({ operation: 'DELETE', name: 'keep', object: null, oldObject: { metadata: { name: 'keep' } }, options: { kind: 'DeleteOptions' } });
  });

  it('refuses configurations kube refuses, with its messages', async () => {
    const r = await api('POST', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations', {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata: { name: 'bad' },
      webhooks: [{ name: 'short', clientConfig: { url: 'http://example.com/x' }, timeoutSeconds: 31, admissionReviewVersions: ['v1'], sideEffects: 'Some' }],
    });
    expect(r.status).toBe(422);
    expect(r.body.message).toBe(
      'ValidatingWebhookConfiguration.admissionregistration.k8s.io "bad" is invalid: [webhooks[0].name: Invalid value: "short": should be a domain with at least three segments separated by dots, webhooks[0].sideEffects: Unsupported value: "Some": supported values: "None", "NoneOnDryRun", webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds, webhooks[0].clientConfig.url: Invalid value: "http://example.com/x": \'https\' is the only allowed URL scheme]',
    );
  });
});

describe('mutating webhooks', () => {
  it('applies the JSONPatch of the response before validation and storage; IfNeeded webhooks see later changes once more', async () => {
    await namespace('wh-mutate');
    await configuration('MutatingWebhookConfiguration', 'a-mutate', [
      webhook('annotate.skiff.test', 'wh-mutate', '/annotate', { reinvocationPolicy: 'IfNeeded' }),
      webhook('mutate.skiff.test', 'wh-mutate', '/mutate'),
    ]);
    const r = await api('POST', '/api/v1/namespaces/wh-mutate/configmaps', configMap('m', { own: 'label' }));
    expect(r.status).toBe(201);
    expect(r.body.metadata.labels).toEqual({ own: 'label', mutated: 'yes' });
    // annotate ran first, then mutate changed the object, so annotate ran again (seen: "2").
    expect(r.body.data).toEqual({ a: 'b', seen: '2' });
    const stored = await api('GET', '/api/v1/namespaces/wh-mutate/configmaps/m');
    expect(stored.body.metadata.labels.mutated).toBe('yes');
    // The reinvoked call saw the other webhook's change.
    const annotated = received['/annotate']!.filter((r) => r.review.request.object.metadata.name === 'm');
    expect(annotated[1]!.review.request.object.metadata.labels.mutated).toBe('yes');
  });
});

describe('service-based webhooks', () => {
  it('resolves the Service through its Endpoints and verifies the server as <service>.<namespace>.svc', async () => {
    expect(hostIP, 'a non-loopback IPv4 address for the Endpoints').toBeDefined();
    await namespace('webhooks');
    await namespace('wh-svc');
    expect((await api('POST', '/api/v1/namespaces/webhooks/services', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'hook' }, spec: { ports: [{ name: 'https', port: 443, targetPort: port }] } })).status).toBe(201);
    expect(
      (
        await api('POST', '/api/v1/namespaces/webhooks/endpoints', {
          apiVersion: 'v1',
          kind: 'Endpoints',
          metadata: { name: 'hook' },
          subsets: [{ addresses: [{ ip: hostIP }], ports: [{ name: 'https', port }] }],
        })
      ).status,
    ).toBe(201);
    await configuration('ValidatingWebhookConfiguration', 'svc', [
      { ...webhook('svc.skiff.test', 'wh-svc', '/svc-deny'), clientConfig: { service: { namespace: 'webhooks', name: 'hook', path: '/deny' }, caBundle } },
    ]);
    const r = await api('POST', '/api/v1/namespaces/wh-svc/configmaps', configMap('x'));
    expect(r.body.message).toBe('admission webhook "svc.skiff.test" denied the request: no thanks');
    expect(r.status).toBe(403);

    // A Service without endpoints: kube's words, under Fail.
    await namespace('wh-svc-missing');
    await configuration('ValidatingWebhookConfiguration', 'svc-missing', [
      { ...webhook('missing.skiff.test', 'wh-svc-missing', '/'), clientConfig: { service: { namespace: 'webhooks', name: 'nothing', path: '/x' }, caBundle } },
    ]);
    const m = await api('POST', '/api/v1/namespaces/wh-svc-missing/configmaps', configMap('y'));
    expect(m.status).toBe(500);
    expect(m.body.message).toContain('Internal error occurred: failed calling webhook "missing.skiff.test": failed to call webhook: service "nothing" not found');
  });
});
