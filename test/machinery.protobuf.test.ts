// Protobuf request bodies: messages encoded here with protobufjs from our schema, and the real bodies
// the machine's kubectl sends (recorded by a plain-HTTP proxy in front of a real local cluster), each
// decoded and compared with the JSON kubectl prints for the same command with --dry-run=client.

import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeProtobufObject, protobufTypes, PROTOBUF_CONTENT_TYPE } from '../lambdas/machinery/protobuf.ts';
import { ApiError } from '../lambdas/machinery/status.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';

const MAGIC = Buffer.from('k8s\0', 'latin1');

/** An object message as raw bytes, from a protobufjs plain object. */
function raw(message: string, obj: Record<string, unknown>): Uint8Array {
  const t = protobufTypes().lookupType(message);
  return t.encode(t.fromObject(obj)).finish();
}

/** A full request body: magic + runtime.Unknown around the raw object bytes. */
function envelope(apiVersion: string, kind: string, rawBytes: Uint8Array, extra: Record<string, unknown> = {}): Buffer {
  const u = protobufTypes().lookupType('Unknown');
  const bytes = u.encode(u.fromObject({ typeMeta: { apiVersion, kind }, raw: rawBytes, contentEncoding: '', contentType: '', ...extra })).finish();
  return Buffer.concat([MAGIC, bytes]);
}

function body(kind: string, message: string, obj: Record<string, unknown>, apiVersion = 'v1'): Buffer {
  return envelope(apiVersion, kind, raw(message, obj));
}

function apiError(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ApiError);
    return e as ApiError;
  }
  throw new Error('expected an ApiError');
}

// gogo-protobuf writes every non-pointer field, zero or not; this is how kubectl's ObjectMeta looks.
const gogoMeta = (name: string, namespace = '') => ({
  name, generateName: '', namespace, selfLink: '', uid: '', resourceVersion: '', generation: 0, creationTimestamp: {},
});

describe('decodeProtobufObject: encoded from the schema', () => {
  it('drops gogo zero values of omitempty fields and empty non-pointer structs', () => {
    const b = body('Namespace', 'Namespace', { metadata: gogoMeta('demo'), spec: {}, status: { phase: '' } });
    expect(decodeProtobufObject(b)).toEqual({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'demo' } });
  });

  it('keeps zero values of pointers and of fields without omitempty', () => {
    const pod = decodeProtobufObject(
      body('Pod', 'Pod', {
        metadata: gogoMeta('p', 'ns'),
        spec: {
          containers: [{ name: '', image: 'busybox', stdin: false, ports: [{ containerPort: 0, hostPort: 0, name: '' }] }],
          volumes: [{ name: 'scratch', volumeSource: { emptyDir: {} } }],
          securityContext: {},
          priority: 0,
          terminationGracePeriodSeconds: 0,
          automountServiceAccountToken: false,
          hostNetwork: false,
          nodeName: '',
        },
      }),
    );
    expect(pod).toEqual({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', namespace: 'ns' },
      spec: {
        containers: [{ name: '', image: 'busybox', ports: [{ containerPort: 0 }] }],
        volumes: [{ name: 'scratch', emptyDir: {} }],
        securityContext: {},
        priority: 0,
        terminationGracePeriodSeconds: 0,
        automountServiceAccountToken: false,
      },
    });
  });

  it('inlines embedded structs (volume sources, key selectors, probe handlers, ephemeral containers)', () => {
    const pod = decodeProtobufObject(
      body('Pod', 'Pod', {
        metadata: { name: 'p' },
        spec: {
          volumes: [{ name: 'cfg', volumeSource: { configMap: { localObjectReference: { name: 'app' }, defaultMode: 420 } } }],
          containers: [
            {
              name: 'c',
              env: [{ name: 'K', valueFrom: { secretKeyRef: { localObjectReference: { name: 's' }, key: 'k', optional: true } } }],
              envFrom: [{ configMapRef: { localObjectReference: { name: 'env' } } }],
              livenessProbe: { handler: { httpGet: { path: '/healthz', port: { type: 1, strVal: 'http' } } }, periodSeconds: 5 },
              readinessProbe: { handler: { tcpSocket: { port: { type: 0, intVal: 0 } } } },
            },
          ],
          ephemeralContainers: [{ ephemeralContainerCommon: { name: 'dbg', image: 'busybox', tty: true }, targetContainerName: 'c' }],
        },
      }),
    );
    expect(pod.spec).toEqual({
      volumes: [{ name: 'cfg', configMap: { name: 'app', defaultMode: 420 } }],
      containers: [
        {
          name: 'c',
          env: [{ name: 'K', valueFrom: { secretKeyRef: { name: 's', key: 'k', optional: true } } }],
          envFrom: [{ configMapRef: { name: 'env' } }],
          livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 5 },
          // HTTPGetAction/TCPSocketAction.port has no omitempty: a zero port stays 0
          readinessProbe: { tcpSocket: { port: 0 } },
        },
      ],
      ephemeralContainers: [{ name: 'dbg', image: 'busybox', tty: true, targetContainerName: 'c' }],
    });
  });

  it('encodes bytes as base64, quantities and int-or-strings as JSON scalars', () => {
    const cm = decodeProtobufObject(
      body('ConfigMap', 'ConfigMap', {
        metadata: { name: 'c' },
        data: { a: '1', empty: '' },
        binaryData: { bin: Buffer.from([0, 1, 0xff]) },
        immutable: false,
      }),
    );
    expect(cm).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'c' },
      data: { a: '1', empty: '' },
      binaryData: { bin: 'AAH/' },
      immutable: false,
    });

    const svc = decodeProtobufObject(
      body('Service', 'Service', {
        metadata: { name: 'web' },
        spec: {
          ports: [
            { name: 'http', protocol: 'TCP', port: 80, targetPort: { type: 1, strVal: 'http' }, nodePort: 0 },
            { name: '', protocol: 'UDP', port: 53, targetPort: { type: 0, intVal: 5353 } },
            { port: 0, targetPort: { type: 0, intVal: 0, strVal: '' } },
          ],
          sessionAffinityConfig: { clientIP: { timeoutSeconds: 0 } },
          healthCheckNodePort: 0,
          allocateLoadBalancerNodePorts: false,
        },
        status: { loadBalancer: {} },
      }),
    );
    expect(svc.spec).toEqual({
      ports: [
        { name: 'http', protocol: 'TCP', port: 80, targetPort: 'http' },
        { protocol: 'UDP', port: 53, targetPort: 5353 },
        { port: 0 },
      ],
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 0 } },
      allocateLoadBalancerNodePorts: false,
    });
    expect(svc.status).toBeUndefined();

    const pod = decodeProtobufObject(
      body('Pod', 'Pod', {
        metadata: { name: 'p' },
        spec: {
          containers: [{ name: 'c', resources: { limits: { cpu: { string: '500m' }, memory: { string: '1Gi' } }, requests: {} } }],
          volumes: [{ name: 'tmp', volumeSource: { emptyDir: { medium: 'Memory', sizeLimit: { string: '64Mi' } } } }],
          overhead: { cpu: {} },
        },
      }),
    );
    expect(pod.spec).toEqual({
      containers: [{ name: 'c', resources: { limits: { cpu: '500m', memory: '1Gi' } } }],
      volumes: [{ name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } }],
      overhead: { cpu: '0' },
    });
  });

  it('formats metav1.Time as RFC 3339 in seconds and drops the zero time', () => {
    const ns = decodeProtobufObject(
      body('Namespace', 'Namespace', {
        metadata: {
          name: 'n',
          creationTimestamp: {},
          deletionTimestamp: { seconds: 1_700_000_000, nanos: 123_456_789 },
          deletionGracePeriodSeconds: 0,
          ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: 'n1', uid: 'u1', controller: false }],
          managedFields: [
            {
              manager: 'kubectl',
              operation: 'Update',
              apiVersion: 'v1',
              time: { seconds: 0, nanos: 0 },
              fieldsType: 'FieldsV1',
              fieldsV1: { Raw: Buffer.from('{"f:metadata":{"f:labels":{}}}') },
            },
          ],
        },
        status: { conditions: [{ type: 'NamespaceDeletionContentFailure', status: 'False', lastTransitionTime: {} }] },
      }),
    );
    expect(ns.metadata).toEqual({
      name: 'n',
      deletionTimestamp: '2023-11-14T22:13:20Z',
      deletionGracePeriodSeconds: 0,
      ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: 'n1', uid: 'u1', controller: false }],
      managedFields: [
        {
          manager: 'kubectl',
          operation: 'Update',
          apiVersion: 'v1',
          time: '1970-01-01T00:00:00Z',
          fieldsType: 'FieldsV1',
          fieldsV1: { 'f:metadata': { 'f:labels': {} } },
        },
      ],
    });
    expect(ns.status).toEqual({ conditions: [{ type: 'NamespaceDeletionContentFailure', status: 'False' }] });
  });

  it('decodes DeleteOptions in any group version, keeping a zero grace period', () => {
    expect(decodeProtobufObject(body('DeleteOptions', 'DeleteOptions', {}))).toEqual({ apiVersion: 'v1', kind: 'DeleteOptions' });
    expect(
      decodeProtobufObject(
        body('DeleteOptions', 'DeleteOptions', { gracePeriodSeconds: 0, propagationPolicy: 'Foreground', preconditions: { uid: 'u' }, dryRun: ['All'] }, 'coordination.k8s.io/v1'),
      ),
    ).toEqual({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'DeleteOptions',
      gracePeriodSeconds: 0,
      propagationPolicy: 'Foreground',
      preconditions: { uid: 'u' },
      dryRun: ['All'],
    });
  });

  it('decodes a Binding (what schedulers post to pods/binding)', () => {
    const b = body('Binding', 'Binding', { metadata: gogoMeta('p', 'ns'), target: { kind: 'Node', name: 'n1', namespace: '', apiVersion: '' } });
    expect(decodeProtobufObject(b)).toEqual({
      apiVersion: 'v1',
      kind: 'Binding',
      metadata: { name: 'p', namespace: 'ns' },
      target: { kind: 'Node', name: 'n1' },
    });
  });

  it('answers 400 for a Time outside the years JSON can carry', () => {
    const b = body('Namespace', 'Namespace', { metadata: { name: 'n', deletionTimestamp: { seconds: 400_000_000_000 } } });
    expect(apiError(() => decodeProtobufObject(b)).code).toBe(400);
  });

  it('ignores field numbers it does not know, at the top level and nested', () => {
    const meta = raw('ObjectMeta', { name: 'fwd' });
    // field 99 varint, field 100 length-delimited, field 101 fixed64, field 102 fixed32
    const unknownFields = Buffer.from([0x98, 0x06, 0x2a, 0xa2, 0x06, 0x03, 0x61, 0x62, 0x63, 0xa9, 0x06, 1, 2, 3, 4, 5, 6, 7, 8, 0xb5, 0x06, 1, 2, 3, 4]);
    const metaWithUnknown = Buffer.concat([meta, unknownFields]);
    const nsRaw = Buffer.concat([Buffer.from([0x0a, metaWithUnknown.length]), metaWithUnknown, unknownFields]);
    expect(decodeProtobufObject(envelope('v1', 'Namespace', nsRaw))).toEqual({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'fwd' } });
  });

  it('keeps map keys named __proto__ as plain data', () => {
    const cm = decodeProtobufObject(body('ConfigMap', 'ConfigMap', { metadata: { name: 'c' }, data: { __proto__x: '1' } }));
    expect(cm.data).toEqual({ __proto__x: '1' });
    // a literal "__proto__" key, written by hand as a map entry {1: key, 2: value}
    const entry = Buffer.concat([Buffer.from([0x0a, 9]), Buffer.from('__proto__'), Buffer.from([0x12, 1]), Buffer.from('v')]);
    const cmRaw = Buffer.concat([Buffer.from([0x12, entry.length]), entry]);
    const out = decodeProtobufObject(envelope('v1', 'ConfigMap', cmRaw)) as { data: Record<string, unknown> };
    expect(Object.getPrototypeOf(out.data)).toBe(Object.prototype);
    expect(Object.keys(out.data)).toEqual(['__proto__']);
    expect(JSON.parse(JSON.stringify(out.data))).toEqual(JSON.parse('{"__proto__":"v"}'));
  });

  it('answers 400 for bodies that are not Kubernetes protobuf', () => {
    expect(apiError(() => decodeProtobufObject(Buffer.from('{"kind":"Namespace"}'))).code).toBe(400);
    expect(apiError(() => decodeProtobufObject(Buffer.alloc(0))).code).toBe(400);
    const good = body('Namespace', 'Namespace', { metadata: { name: 'demo' } });
    // cut inside the name string, and inside the last tag (no length after it)
    for (const cut of [good.indexOf('demo') + 2, good.length - 1]) {
      const err = apiError(() => decodeProtobufObject(good.subarray(0, cut)));
      expect(err.code).toBe(400);
      expect(err.reason).toBe('BadRequest');
    }
    // every other truncation is either a shorter valid message (cut at a field boundary) or a 400
    let failures = 0;
    for (let cut = MAGIC.length + 1; cut < good.length; cut++) {
      try {
        decodeProtobufObject(good.subarray(0, cut));
      } catch (e) {
        expect(e).toBeInstanceOf(ApiError);
        expect((e as ApiError).code).toBe(400);
        failures++;
      }
    }
    expect(failures).toBeGreaterThan((good.length - MAGIC.length) / 2);
    // a missing kind
    expect(apiError(() => decodeProtobufObject(envelope('v1', '', raw('Namespace', {})))).code).toBe(400);
    // fieldsV1 that is not JSON
    const badFields = body('Namespace', 'Namespace', { metadata: { managedFields: [{ fieldsV1: { Raw: Buffer.from('{nope') } }] } });
    expect(apiError(() => decodeProtobufObject(badFields)).code).toBe(400);
  });

  it('answers only ApiErrors (400/415) or objects for random bytes after the magic', () => {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    const good = body('Service', 'Service', { metadata: { name: 'web', labels: { a: 'b' } }, spec: { ports: [{ port: 80 }] } });
    for (let i = 0; i < 400; i++) {
      const b = Buffer.from(good);
      if (i % 2 === 0) {
        for (let j = MAGIC.length; j < b.length; j++) if (rand() < 16) b[j] = rand();
      } else {
        for (let j = MAGIC.length; j < b.length; j++) b[j] = rand();
      }
      try {
        const out = decodeProtobufObject(b);
        expect(typeof out.kind).toBe('string');
      } catch (e) {
        expect(e).toBeInstanceOf(ApiError);
        expect([400, 415]).toContain((e as ApiError).code);
      }
    }
  });

  it('decodes a TokenRequest (kubectl create token): audiences, expirationSeconds, boundObjectRef', () => {
    const spec = { audiences: ['a', 'b'], expirationSeconds: 7200, boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'p', uid: 'u' } };
    expect(decodeProtobufObject(envelope('authentication.k8s.io/v1', 'TokenRequest', raw('TokenRequest', { metadata: {}, spec })))).toEqual({
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec,
    });
  });

  it('answers 415 for kinds and encodings it does not decode', () => {
    const err = apiError(() => decodeProtobufObject(envelope('authentication.k8s.io/v1', 'TokenReview', new Uint8Array(0))));
    expect(err.code).toBe(415);
    expect(err.message).toContain('TokenReview');
    expect(apiError(() => decodeProtobufObject(envelope('apps/v1', 'Namespace', raw('Namespace', {})))).code).toBe(415);
    const gz = envelope('v1', 'Namespace', raw('Namespace', {}), { contentEncoding: 'gzip' });
    expect(apiError(() => decodeProtobufObject(gz)).code).toBe(415);
  });
});

// ---------------------------------------------------------------------------------------------
// Real kubectl bodies.

interface Recorded {
  method: string;
  url: string;
  contentType: string;
  body: Buffer;
}

/** A plain-HTTP proxy to the cluster that adds its token and records every write request body. */
function recordingProxy(target: string, token: string, log: Recorded[]): Promise<Server> {
  const u = new URL(target);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const b = Buffer.concat(chunks);
      if (req.method !== 'GET') log.push({ method: req.method!, url: req.url!, contentType: String(req.headers['content-type'] ?? ''), body: b });
      const up = httpsRequest(
        {
          host: u.hostname,
          port: u.port,
          path: req.url,
          method: req.method,
          headers: { ...req.headers, host: u.host, authorization: `Bearer ${token}` },
          rejectUnauthorized: false,
        },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', (e) => {
        res.writeHead(502);
        res.end(String(e));
      });
      up.end(b);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Removes what kubectl's client-side JSON has only because of Go's encoding: creationTimestamp: null, spec: {}, status: {}. */
function normalize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalize);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (x === null) continue;
      const n = normalize(x);
      if (n && typeof n === 'object' && !Array.isArray(n) && Object.keys(n).length === 0) continue;
      out[k] = n;
    }
    return out;
  }
  return v;
}

/** Server-assigned and per-namespace fields, removed to compare an object created from protobuf with one created from JSON. */
function comparable(obj: any): any {
  const o = structuredClone(obj);
  for (const k of ['uid', 'resourceVersion', 'creationTimestamp', 'managedFields', 'namespace', 'generation']) delete o.metadata[k];
  if (o.spec) for (const k of ['clusterIP', 'clusterIPs']) delete o.spec[k];
  for (const p of o.spec?.ports ?? []) delete p.nodePort;
  if (o.kind === 'ServiceAccount') delete o.secrets;
  return o;
}

describe('decodeProtobufObject: bodies the real kubectl sends', () => {
  let cluster: TestCluster;
  let proxy: Server;
  let proxyUrl: string;
  const log: Recorded[] = [];

  function kubectl(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
    const flags = ['--kubeconfig', '/dev/null', '--server', proxyUrl, '--cache-dir', join(cluster.dataDir, 'proxy-cache')];
    return new Promise((resolve) => {
      const p = execFile('kubectl', [...flags, ...args], { timeout: 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof (err as any).code === 'number' ? (err as any).code : 1) : 0, stdout, stderr });
      });
      if (input !== undefined) p.stdin!.end(input);
    });
  }

  /** Runs a kubectl command and returns the protobuf bodies it sent. */
  async function protobufBodies(args: string[]): Promise<Recorded[]> {
    log.length = 0;
    const r = await kubectl(args);
    expect(r.stderr).not.toContain('UnsupportedMediaType');
    expect(r.code, r.stderr).toBe(0);
    return log.filter((x) => x.contentType === PROTOBUF_CONTENT_TYPE);
  }

  async function dryRun(args: string[]): Promise<Record<string, unknown>> {
    const r = await kubectl([...args, '--dry-run=client', '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout);
  }

  async function getJson(kind: string, name: string, ns: string): Promise<any> {
    const r = await cluster.kubectl(['get', kind, name, '-n', ns, '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout);
  }

  beforeAll(async () => {
    cluster = await startTestCluster();
    proxy = await recordingProxy(cluster.url, cluster.token, log);
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    for (const ns of ['pb', 'pb-json']) expect((await cluster.kubectl(['create', 'namespace', ns])).code).toBe(0);
  });

  afterAll(async () => {
    await new Promise((r) => proxy?.close(r));
    await cluster?.destroy();
  });

  it('kubectl create namespace: decodes to the dry-run JSON, and the server stores it', async () => {
    const args = ['create', 'namespace', 'pb-demo'];
    const [sent, ...more] = await protobufBodies(args);
    expect(more).toHaveLength(0);
    expect(sent!.method).toBe('POST');
    expect(sent!.url).toMatch(/^\/api\/v1\/namespaces\?/);
    const decoded = decodeProtobufObject(sent!.body);
    expect(decoded).toEqual(normalize(await dryRun(args)));
    expect(decoded).toEqual({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'pb-demo' } });
    const stored = await getJson('namespace', 'pb-demo', '');
    expect(stored.status.phase).toBe('Active');
  });

  const binary = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff, 0xfe, 0x0a, 0x80]);

  const cases: { what: string; kind: string; name: string; args: (dir: string) => string[] }[] = [
    {
      what: 'configmap with literals and a binary file',
      kind: 'configmap',
      name: 'cm',
      args: (dir) => ['create', 'configmap', 'cm', '--from-literal=a=1', '--from-literal=empty=', `--from-file=bin=${join(dir, 'blob.bin')}`, `--from-file=${join(dir, 'note.txt')}`],
    },
    {
      what: 'secret generic',
      kind: 'secret',
      name: 'sec',
      args: (dir) => ['create', 'secret', 'generic', 'sec', '--from-literal=password=s3cr3t', `--from-file=blob=${join(dir, 'blob.bin')}`],
    },
    {
      what: 'secret docker-registry',
      kind: 'secret',
      name: 'regcred',
      args: () => ['create', 'secret', 'docker-registry', 'regcred', '--docker-server=registry.example', '--docker-username=u', '--docker-password=p'],
    },
    { what: 'serviceaccount', kind: 'serviceaccount', name: 'bot', args: () => ['create', 'serviceaccount', 'bot'] },
    {
      what: 'service clusterip with two ports',
      kind: 'service',
      name: 'web',
      args: () => ['create', 'service', 'clusterip', 'web', '--tcp=80:8080', '--tcp=443'],
    },
    {
      what: 'service nodeport with a fixed node port',
      kind: 'service',
      name: 'np',
      args: () => ['create', 'service', 'nodeport', 'np', '--tcp=80:8080', '--node-port=30123'],
    },
    {
      what: 'service externalname',
      kind: 'service',
      name: 'ext',
      args: () => ['create', 'service', 'externalname', 'ext', '--external-name=db.example.com'],
    },
  ];

  for (const c of cases) {
    it(`kubectl create ${c.what}: decodes to the dry-run JSON and is stored like the JSON-created object`, async () => {
      writeFileSync(join(cluster.dataDir, 'blob.bin'), binary);
      writeFileSync(join(cluster.dataDir, 'note.txt'), 'hello\nworld\n');
      const args = [...c.args(cluster.dataDir), '-n', 'pb'];
      const sent = await protobufBodies(args);
      expect(sent).toHaveLength(1);
      const decoded = decodeProtobufObject(sent[0]!.body);
      const expected = await dryRun(args);
      expect(decoded).toEqual(normalize(expected));

      // The same object created from JSON in another namespace is stored identically. A Service's
      // nodePort is cluster-wide, so a protobuf-made Service is read and deleted first, letting the copy
      // take the same port (later tests read the other kinds in 'pb').
      const fromProtobuf = comparable(await getJson(c.kind, c.name, 'pb'));
      if (c.kind === 'service') {
        const removed = await cluster.kubectl(['delete', c.kind, c.name, '-n', 'pb', '--wait=false']);
        expect(removed.code, removed.stderr).toBe(0);
      }
      const asJson = structuredClone(expected) as any;
      asJson.metadata.namespace = 'pb-json';
      const created = await cluster.kubectl(['create', '-f', '-'], JSON.stringify(asJson));
      expect(created.code, created.stderr).toBe(0);
      expect(fromProtobuf).toEqual(comparable(await getJson(c.kind, c.name, 'pb-json')));
    });
  }

  it('the binary configmap file arrives as binaryData, byte for byte', async () => {
    const cm = await getJson('configmap', 'cm', 'pb');
    expect(Buffer.from(cm.binaryData.bin, 'base64')).toEqual(binary);
    expect(cm.data).toEqual({ a: '1', empty: '', 'note.txt': 'hello\nworld\n' });
  });

  it('kubectl debug node/…: the debugging pod arrives as protobuf and is created', async () => {
    const node = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'pb-node' } };
    expect((await cluster.kubectl(['create', '-f', '-'], JSON.stringify(node))).code).toBe(0);
    const sent = await protobufBodies(['debug', 'node/pb-node', '-n', 'pb', '--image=busybox', '--profile=general']);
    expect(sent).toHaveLength(1);
    const pod = decodeProtobufObject(sent[0]!.body) as any;
    expect(pod.kind).toBe('Pod');
    expect(pod.metadata.name).toMatch(/^node-debugger-pb-node-/);
    expect(pod.spec).toMatchObject({
      nodeName: 'pb-node',
      hostNetwork: true,
      hostPID: true,
      hostIPC: true,
      restartPolicy: 'Never',
      tolerations: [{ operator: 'Exists' }],
      volumes: [{ name: 'host-root', hostPath: { path: '/' } }],
      containers: [{ name: 'debugger', image: 'busybox', volumeMounts: [{ name: 'host-root', mountPath: '/host' }] }],
    });
    // Go's zero values kubectl also sends (dnsPolicy "", stdin false, …) are gone.
    expect(JSON.stringify(pod)).not.toMatch(/:""|:false/);
    const stored = await getJson('pod', pod.metadata.name, 'pb');
    expect(stored.spec.nodeName).toBe('pb-node');
  });

  it('kubectl drain: pods are evicted (policy/v1 Eviction with the DeleteOptions), and Evictions decode from protobuf', async () => {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'victim', namespace: 'pb' }, spec: { nodeName: 'pb-node', containers: [{ name: 'c', image: 'busybox' }] } };
    expect((await cluster.kubectl(['create', '-f', '-'], JSON.stringify(pod))).code).toBe(0);
    await protobufBodies(['drain', 'pb-node', '--force', '--ignore-daemonsets', '--grace-period=0', '--timeout=30s']);
    // Discovery lists pods/eviction (policy/v1 Eviction), so drain evicts rather than deletes. kubectl 1.32
    // posts the Eviction as JSON; other clientsets may send it as protobuf, which decodes to the same object.
    const evictions = log.filter((s) => s.method === 'POST' && s.url.startsWith('/api/v1/namespaces/pb/pods/victim/eviction'));
    expect(evictions.length).toBeGreaterThanOrEqual(1);
    const eviction = { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'victim', namespace: 'pb' }, deleteOptions: { gracePeriodSeconds: 0 } };
    const sentBody = evictions[0]!.contentType === PROTOBUF_CONTENT_TYPE ? decodeProtobufObject(evictions[0]!.body) : JSON.parse(evictions[0]!.body.toString('utf8'));
    expect(sentBody).toMatchObject(eviction);
    expect(log.filter((s) => s.method === 'DELETE' && s.url.startsWith('/api/v1/namespaces/pb/pods/victim'))).toEqual([]);
    const pb = body('Eviction', 'Eviction', { metadata: gogoMeta('victim', 'pb'), deleteOptions: { gracePeriodSeconds: 0 } }, 'policy/v1');
    expect(decodeProtobufObject(pb)).toEqual(eviction);
    const gone = await cluster.kubectl(['get', 'pod', 'victim', '-n', 'pb']);
    expect(gone.stderr).toContain('NotFound');
  });
});
