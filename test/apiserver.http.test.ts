// The apiserver over real HTTPS: authentication, bad input (always a 4xx metav1.Status, store
// unchanged), subresources, watch semantics and dry-run, as raw HTTP clients see them.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import https from 'node:https';
import tls from 'node:tls';
import { startTestCluster, type TestCluster } from './support/cluster.ts';

let c: TestCluster;

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

function call(method: string, path: string, opts: { body?: string | Buffer; contentType?: string; token?: string | null; accept?: string } = {}): Promise<Res> {
  const u = new URL(path, c.url);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    const token = opts.token === undefined ? c.token : opts.token;
    if (token) headers.authorization = `Bearer ${token}`;
    if (opts.body !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
    if (opts.accept) headers.accept = opts.accept;
    const req = https.request(u, { method, headers, ca: c.caCert }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: any;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode!, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/** Opens a watch and collects its events until stopped. */
function watch(path: string) {
  const events: any[] = [];
  const u = new URL(path, c.url);
  let status = 0;
  const req = https.request(u, { headers: { authorization: `Bearer ${c.token}` }, ca: c.caCert }, (res) => {
    status = res.statusCode!;
    let buf = '';
    res.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        events.push(JSON.parse(buf.slice(0, i)));
        buf = buf.slice(i + 1);
      }
    });
    res.on('error', () => {});
  });
  req.on('error', () => {});
  req.end();
  return {
    events,
    status: () => status,
    stop: () => req.destroy(),
    async until(n: number, ms = 5000) {
      const end = Date.now() + ms;
      while (events.length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      return events;
    },
  };
}

const cm = (name: string, extra: Record<string, unknown> = {}) => JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { a: '1' }, ...extra });

beforeAll(async () => {
  // The apiserver alone: no controller writes to what the test inspects.
  c = await startTestCluster({ controllers: false });
  await call('POST', '/api/v1/namespaces', { body: JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 't' } }) });
});
afterAll(async () => {
  await c?.destroy();
});

async function storeSnapshot(): Promise<string> {
  return JSON.stringify((await call('GET', '/api/v1/configmaps')).json.items);
}

describe('authentication', () => {
  it('anonymous and bad tokens get 401; /version and /healthz are public', async () => {
    const anon = await call('GET', '/api/v1/namespaces', { token: null });
    expect(anon.status).toBe(401);
    expect(anon.json).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'Unauthorized', code: 401 });
    expect((await call('GET', '/api/v1/namespaces', { token: 'wrong' })).status).toBe(401);
    expect((await call('GET', '/version', { token: null })).json.major).toBe('1');
    expect((await call('GET', '/healthz', { token: null })).text).toBe('ok');
  });
});

describe('bad input gets a 4xx Status and changes nothing', () => {
  const cases: [string, string, string, { body?: string; contentType?: string }, number, string][] = [
    ['malformed JSON', 'POST', '/api/v1/namespaces/t/configmaps', { body: '{"apiVersion": "v1", kind: }' }, 400, 'BadRequest'],
    ['malformed YAML', 'POST', '/api/v1/namespaces/t/configmaps', { body: 'kind: [unclosed', contentType: 'application/yaml' }, 400, 'BadRequest'],
    ['a JSON array', 'POST', '/api/v1/namespaces/t/configmaps', { body: '[1,2]' }, 400, 'BadRequest'],
    ['wrong kind for the path', 'POST', '/api/v1/namespaces/t/configmaps', { body: '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}' }, 400, 'BadRequest'],
    ['wrong apiVersion', 'POST', '/api/v1/namespaces/t/configmaps', { body: '{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"x"}}' }, 400, 'BadRequest'],
    ['unknown resource', 'POST', '/api/v1/namespaces/t/widgets', { body: cm('x') }, 404, 'NotFound'],
    ['unknown group', 'GET', '/apis/example.com/v1/widgets', {}, 404, 'NotFound'],
    ['a value of the wrong type', 'POST', '/api/v1/namespaces/t/configmaps', { body: '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":"flat"}' }, 400, 'BadRequest'],
    ['an unknown field with fieldValidation=Strict', 'POST', '/api/v1/namespaces/t/configmaps?fieldValidation=Strict', { body: '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"datta":{}}' }, 400, 'BadRequest'],
    ['invalid name', 'POST', '/api/v1/namespaces/t/configmaps', { body: cm('Not_Valid') }, 422, 'Invalid'],
    // A misspelt dry run must not become a real write (kube-apiserver's ValidateDryRun).
    ['an unknown dryRun value', 'POST', '/api/v1/namespaces/t/configmaps?dryRun=all', { body: cm('x') }, 422, 'Invalid'],
    ['unsupported media type', 'POST', '/api/v1/namespaces/t/configmaps', { body: cm('x'), contentType: 'text/plain' }, 415, 'UnsupportedMediaType'],
    ['method not allowed', 'POST', '/api/v1/namespaces/t/configmaps/x', { body: cm('x') }, 405, 'MethodNotAllowed'],
    ['bad label selector', 'GET', '/api/v1/configmaps?labelSelector=a%20in%20(', {}, 400, 'BadRequest'],
    // Refused before the stream starts (it was a 200 whose stream ended at once).
    ['a watch from a malformed resourceVersion', 'GET', '/api/v1/configmaps?watch=true&resourceVersion=abc', {}, 400, 'BadRequest'],
    ['unsupported field selector', 'GET', '/api/v1/configmaps?fieldSelector=spec.nothing%3Dx', {}, 400, 'BadRequest'],
    ['malformed patch', 'PATCH', '/api/v1/namespaces/default/configmaps/x', { body: '{', contentType: 'application/merge-patch+json' }, 404, 'NotFound'],
  ];
  for (const [what, method, path, opts, code, reason] of cases) {
    it(what, async () => {
      const before = await storeSnapshot();
      const r = await call(method, path, opts);
      expect(r.status).toBe(code);
      expect(r.json).toMatchObject({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, code });
      expect(typeof r.json.message).toBe('string');
      expect(await storeSnapshot()).toBe(before);
    });
  }

  it('a body over the limit gets 413', async () => {
    const big = cm('big', { data: { a: 'x'.repeat(4 * 1024 * 1024) } });
    const r = await call('POST', '/api/v1/namespaces/t/configmaps', { body: big });
    expect({ status: r.status, reason: r.json?.reason, code: r.json?.code }).toEqual({ status: 413, reason: 'RequestEntityTooLarge', code: 413 });
    expect((await call('GET', '/api/v1/namespaces/t/configmaps/big')).status).toBe(404);
  });

  it('a malformed patch of an existing object is 400 and leaves it as it was', async () => {
    await call('POST', '/api/v1/namespaces/t/configmaps', { body: cm('p') });
    const before = (await call('GET', '/api/v1/namespaces/t/configmaps/p')).json;
    for (const [ct, body] of [
      ['application/merge-patch+json', '{'],
      ['application/json-patch+json', '{"op":"add"}'],
      ['application/json-patch+json', '[{"op":"explode","path":"/x"}]'],
      ['application/strategic-merge-patch+json', '[1]'],
      ['application/strategic-merge-patch+json', '{"data":"not a map"}'],
    ] as const) {
      const r = await call('PATCH', '/api/v1/namespaces/t/configmaps/p', { body, contentType: ct });
      expect(r.status, `${ct} ${body}`).toBeGreaterThanOrEqual(400);
      expect(r.status, `${ct} ${body}`).toBeLessThan(500);
      expect(r.json.kind).toBe('Status');
    }
    expect((await call('GET', '/api/v1/namespaces/t/configmaps/p')).json).toEqual(before);
  });
});

describe('semantics', () => {
  it('optimistic concurrency: a stale resourceVersion is a 409 Conflict', async () => {
    const created = (await call('POST', '/api/v1/namespaces/t/configmaps', { body: cm('occ') })).json;
    const upd = { ...created, data: { a: '2' } };
    const ok = await call('PUT', '/api/v1/namespaces/t/configmaps/occ', { body: JSON.stringify(upd) });
    expect(ok.status).toBe(200);
    expect(Number(ok.json.metadata.resourceVersion)).toBeGreaterThan(Number(created.metadata.resourceVersion));
    const stale = await call('PUT', '/api/v1/namespaces/t/configmaps/occ', { body: JSON.stringify({ ...created, data: { a: '3' } }) });
    expect(stale.status).toBe(409);
    expect(stale.json.reason).toBe('Conflict');
    expect((await call('GET', '/api/v1/namespaces/t/configmaps/occ')).json.data).toEqual({ a: '2' });
  });

  it('apiVersion and kind default from the path, as in Kubernetes', async () => {
    const r = await call('POST', '/api/v1/namespaces/t/configmaps', { body: '{"metadata":{"name":"nokind"},"data":{"a":"1"}}' });
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'nokind' } });
  });

  it('generateName, dry run, and creation in a missing namespace', async () => {
    const g = await call('POST', '/api/v1/namespaces/t/configmaps', { body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { generateName: 'gen-' } }) });
    expect(g.status).toBe(201);
    expect(g.json.metadata.name).toMatch(/^gen-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    const dry = await call('POST', '/api/v1/namespaces/t/configmaps?dryRun=All', { body: cm('dry') });
    expect(dry.status).toBe(201);
    expect((await call('GET', '/api/v1/namespaces/t/configmaps/dry')).status).toBe(404);
    const missing = await call('POST', '/api/v1/namespaces/nope/configmaps', { body: cm('x') });
    expect(missing.status).toBe(404);
    expect(missing.json.message).toBe('namespaces "nope" not found');
  });

  it('status subresource: the main resource ignores status, /status ignores spec', async () => {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } };
    const created = (await call('POST', '/api/v1/namespaces/t/pods', { body: JSON.stringify(pod) })).json;
    expect(created.status.phase).toBe('Pending');
    const st = await call('PUT', '/api/v1/namespaces/t/pods/p/status', {
      body: JSON.stringify({ ...created, metadata: { ...created.metadata, labels: { ignored: 'yes' } }, status: { phase: 'Running', podIP: '10.0.0.9' } }),
    });
    expect(st.status).toBe(200);
    expect(st.json.status.phase).toBe('Running');
    expect(st.json.metadata.labels).toBeUndefined();
    const main = await call('PATCH', '/api/v1/namespaces/t/pods/p', { body: '{"status":{"phase":"Failed"},"metadata":{"labels":{"a":"b"}}}', contentType: 'application/merge-patch+json' });
    expect(main.json.status.phase).toBe('Running');
    expect(main.json.metadata.labels).toEqual({ a: 'b' });
  });

  it('binding assigns a pod once', async () => {
    const b = { apiVersion: 'v1', kind: 'Binding', metadata: { name: 'p' }, target: { apiVersion: 'v1', kind: 'Node', name: 'n1' } };
    const r = await call('POST', '/api/v1/namespaces/t/pods/p/binding', { body: JSON.stringify(b) });
    expect(r.status).toBe(201);
    const pod = (await call('GET', '/api/v1/namespaces/t/pods/p')).json;
    expect(pod.spec.nodeName).toBe('n1');
    expect(pod.status.conditions).toContainEqual(expect.objectContaining({ type: 'PodScheduled', status: 'True' }));
    const again = await call('POST', '/api/v1/namespaces/t/pods/p/binding', { body: JSON.stringify({ ...b, target: { ...b.target, name: 'n2' } }) });
    expect(again.status).toBe(409);
  });

  // A write answers with the object it wrote (WriteOptions.owned), not a parse of the stored value: the
  // answer must be what a read gives, byte for byte, whatever the body held (the request's own
  // resourceVersion, fields defaulting fills in, a field sent as null).
  it("each write's answer is the stored object as a GET returns it, byte for byte", async () => {
    const path = '/api/v1/namespaces/t/pods/echo';
    const pod = { metadata: { name: 'echo', labels: { a: 'b' }, annotations: null }, spec: { containers: [{ name: 'c', image: 'busybox', ports: [{ containerPort: 80 }] }] } };
    const created = await call('POST', '/api/v1/namespaces/t/pods', { body: JSON.stringify(pod) });
    expect(created.status).toBe(201);
    expect(created.text).toBe((await call('GET', path)).text);
    // The precondition first among the metadata's fields, where a stored object's is last.
    const { resourceVersion, ...meta } = created.json.metadata;
    const put = await call('PUT', path, { body: JSON.stringify({ ...created.json, metadata: { resourceVersion, ...meta, labels: { a: 'c' } } }) });
    expect(put.status).toBe(200);
    expect(put.json.metadata.resourceVersion).not.toBe(created.json.metadata.resourceVersion);
    expect(put.text).toBe((await call('GET', path)).text);
    const status = await call('PUT', `${path}/status`, { body: JSON.stringify({ ...put.json, status: { phase: 'Running', podIP: '10.0.0.7' } }) });
    expect(status.text).toBe((await call('GET', path)).text);
    const patched = await call('PATCH', path, { body: '{"metadata":{"labels":{"x":"y"}}}', contentType: 'application/merge-patch+json' });
    expect(patched.json.metadata.labels).toEqual({ a: 'c', x: 'y' });
    expect(patched.text).toBe((await call('GET', path)).text);
    const applied = await call('PATCH', '/api/v1/namespaces/t/configmaps/echo?fieldManager=t', {
      body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'echo' }, data: { k: 'v' } }),
      contentType: 'application/apply-patch+yaml',
    });
    expect(applied.status).toBe(201);
    expect(applied.text).toBe((await call('GET', '/api/v1/namespaces/t/configmaps/echo')).text);
  });

  it('finalizers hold a deleted object until removed', async () => {
    await call('POST', '/api/v1/namespaces/t/configmaps', { body: cm('fin', { metadata: { name: 'fin', finalizers: ['example.com/hold'] } }) });
    const d = await call('DELETE', '/api/v1/namespaces/t/configmaps/fin');
    expect(d.status).toBe(200);
    const held = (await call('GET', '/api/v1/namespaces/t/configmaps/fin')).json;
    expect(held.metadata.deletionTimestamp).toBeTruthy();
    const rm = await call('PATCH', '/api/v1/namespaces/t/configmaps/fin', { body: '{"metadata":{"finalizers":null}}', contentType: 'application/merge-patch+json' });
    expect(rm.status).toBe(200);
    expect((await call('GET', '/api/v1/namespaces/t/configmaps/fin')).status).toBe(404);
  });

  it('watch: from a list resourceVersion, with selectors and bookmarks', async () => {
    const list = (await call('GET', '/api/v1/namespaces/t/configmaps')).json;
    const w = watch(`/api/v1/namespaces/t/configmaps?watch=true&resourceVersion=${list.metadata.resourceVersion}&labelSelector=w%3Dyes&allowWatchBookmarks=true`);
    await call('POST', '/api/v1/namespaces/t/configmaps', { body: cm('w1', { metadata: { name: 'w1', labels: { w: 'yes' } } }) });
    await call('POST', '/api/v1/namespaces/t/configmaps', { body: cm('w2') }); // not selected
    await call('PATCH', '/api/v1/namespaces/t/configmaps/w1', { body: '{"metadata":{"labels":{"w":"no"}}}', contentType: 'application/merge-patch+json' });
    const evs = await w.until(3);
    const typed = evs.filter((e) => e.type !== 'BOOKMARK').map((e) => `${e.type} ${e.object.metadata.name}`);
    expect(typed).toEqual(['ADDED w1', 'DELETED w1']); // leaving the selector reads as DELETED
    await new Promise((r) => setTimeout(r, 600));
    const bm = w.events.find((e) => e.type === 'BOOKMARK');
    expect(bm?.object.metadata.resourceVersion).toMatch(/^\d+$/);
    w.stop();
  });
});

describe('integer fields hold their full range and no more', () => {
  const rc = (replicas: unknown) =>
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'ReplicationController',
      metadata: { name: 'big' },
      spec: { replicas, selector: { app: 'big' }, template: { metadata: { labels: { app: 'big' } }, spec: { containers: [{ name: 'c', image: 'i' }] } } },
    });

  it('replicas 1e308 (the request that once made pods without end) is a 400 and stores nothing', async () => {
    const r = await call('POST', '/api/v1/namespaces/t/replicationcontrollers', { body: '{"apiVersion":"v1","kind":"ReplicationController","metadata":{"name":"big"},"spec":{"replicas":1e308,"selector":{"app":"big"},"template":{"metadata":{"labels":{"app":"big"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}' });
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ kind: 'Status', reason: 'BadRequest' });
    expect(r.json.message).toBe(
      'ReplicationController in version "v1" cannot be handled as a ReplicationController: json: cannot unmarshal number 1e+308 into Go struct field ReplicationControllerSpec.spec.replicas of type int32',
    );
    expect((await call('GET', '/api/v1/namespaces/t/replicationcontrollers/big')).status).toBe(404);
  });

  it('the scale subresource and patches are held to the same range', async () => {
    expect((await call('POST', '/api/v1/namespaces/t/replicationcontrollers', { body: rc(0) })).status).toBe(201);
    const scale = (await call('GET', '/api/v1/namespaces/t/replicationcontrollers/big/scale')).json;
    const put = await call('PUT', '/api/v1/namespaces/t/replicationcontrollers/big/scale', { body: JSON.stringify({ ...scale, spec: { replicas: 2 ** 31 } }) });
    expect(put.status).toBe(400);
    expect(put.json.message).toBe('Scale in version "v1" cannot be handled as a Scale: json: cannot unmarshal number 2147483648 into Go struct field ScaleSpec.spec.replicas of type int32');
    const patch = await call('PATCH', '/api/v1/namespaces/t/replicationcontrollers/big/scale', { body: '{"spec":{"replicas":1.5}}', contentType: 'application/merge-patch+json' });
    expect(patch.status).toBe(400);
    const main = await call('PATCH', '/api/v1/namespaces/t/replicationcontrollers/big', { body: '{"spec":{"replicas":-1e308}}', contentType: 'application/merge-patch+json' });
    expect(main.status).toBe(400);
    expect((await call('GET', '/api/v1/namespaces/t/replicationcontrollers/big')).json.spec.replicas).toBe(0);
    // The largest int32 is a valid request (what it costs is bounded by the loops and the object limit).
    const max = await call('PATCH', '/api/v1/namespaces/t/replicationcontrollers/big/scale', { body: '{"spec":{"replicas":2147483647}}', contentType: 'application/merge-patch+json' });
    expect(max.status).toBe(200);
    expect(max.json.spec.replicas).toBe(2147483647);
  });
});

describe('objects the store will not hold', () => {
  it('a patch that grows an object past the storage limit is a 413 and leaves it as it was', async () => {
    // An RC's template args have no size rule of their own and may change (a ConfigMap's data would be a
    // 422 at 1 MiB first; a pod's spec is immutable).
    const rc = {
      apiVersion: 'v1',
      kind: 'ReplicationController',
      metadata: { name: 'huge' },
      spec: { replicas: 0, selector: { a: 'b' }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i', args: ['x'.repeat(1024 * 1024)] }] } } },
    };
    expect((await call('POST', '/api/v1/namespaces/t/replicationcontrollers', { body: JSON.stringify(rc) })).status).toBe(201);
    // Each request is under the 3 MiB body limit; the object it would make is not under 1.5 MiB.
    const r = await call('PATCH', '/api/v1/namespaces/t/replicationcontrollers/huge', {
      body: '[{"op":"copy","from":"/spec/template/spec/containers/0/args/0","path":"/spec/template/spec/containers/0/args/-"}]',
      contentType: 'application/json-patch+json',
    });
    expect({ status: r.status, reason: r.json?.reason, code: r.json?.code }).toEqual({ status: 413, reason: 'RequestEntityTooLarge', code: 413 });
    expect(r.json.message).toMatch(/^Request entity too large: the object is \d+ bytes, over the SQLite backend's limit of 1572864 bytes$/);
    const after = (await call('GET', '/api/v1/namespaces/t/replicationcontrollers/huge')).json;
    expect(after.spec.template.spec.containers[0].args).toHaveLength(1);
  });
});

describe('odd request targets', () => {
  /** Sends the request target as given (URL() would normalise it). */
  function raw(target: string): Promise<number> {
    const u = new URL(c.url);
    return new Promise((resolve, reject) => {
      https
        .request({ host: u.hostname, port: u.port, path: target, ca: c.caCert, headers: { authorization: `Bearer ${c.token}` } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        })
        .on('error', reject)
        .end();
    });
  }

  it("'//' and a target that is not a path get a 4xx Status, and the server keeps answering", async () => {
    // '//' once threw outside the request's error handling and ended the whole process.
    expect(await raw('//')).toBe(404);
    expect(await raw('*')).toBe(400);
    expect((await call('GET', '/api/v1/namespaces/t/configmaps')).status).toBe(200);
  });

  it('a method the HTTP parser does not know gets a 400 Status, a broken head an empty 400, and the socket is ended, not reset', async () => {
    const u = new URL(c.url);
    const send = (head: string, body = '') =>
      new Promise<string>((resolve, reject) => {
        const s = tls.connect({ host: u.hostname, port: Number(u.port), ca: c.caCert, servername: 'localhost' }, () => s.write(head + body));
        let got = '';
        s.on('data', (d) => (got += d));
        s.on('end', () => resolve(got));
        s.on('error', reject);
      });
    const answer = await send(`FOO /api HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n`, 'x'.repeat(6));
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
    const status = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
    expect(status).toMatchObject({ kind: 'Status', status: 'Failure', code: 400, reason: 'BadRequest', message: 'the server could not parse the request: unsupported method' });
    // A broken head may be a HEAD request's, whose answer has no body: the 400 has none (as Node's own).
    for (const method of ['GET', 'HEAD']) {
      const broken = await send(`${method} /api HTTP/1.1\r\nHo st: x\r\n\r\n`);
      expect(broken).toBe('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    }
    expect((await call('GET', '/api/v1/namespaces/t/configmaps')).status).toBe(200);
  });
});

describe('patches that remove metadata', () => {
  it('a server-side apply creating with metadata: null is a 422 naming the missing name, not a 500', async () => {
    const r = await call('PATCH', '/api/v1/namespaces/t/configmaps/nometa?fieldManager=fuzz', {
      body: '{"apiVersion":"v1","kind":"ConfigMap","metadata":null}',
      contentType: 'application/apply-patch+yaml',
    });
    expect(r.status).toBe(422);
    expect(r.json.message).toBe('ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required');
    expect((await call('GET', '/api/v1/namespaces/t/configmaps/nometa')).status).toBe(404);
  });
});

describe('bodies nested too deep', () => {
  const nest = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
  const review = (spec: string) => `{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":${spec}}`;

  it('JSON nested past 200 levels is a 400 (a TokenReview echoing it once overflowed the stack: 500)', async () => {
    const r = await call('POST', '/apis/authentication.k8s.io/v1/tokenreviews', { body: review(nest(5_000)) });
    expect(r.status).toBe(400);
    expect(r.json.message).toBe("couldn't get version/kind; json parse error: exceeded max depth (more than 200 levels of nested objects and arrays)");
    // Up to the limit is decoded as before (the unknown spec.a is dropped; the token is required).
    expect((await call('POST', '/apis/authentication.k8s.io/v1/tokenreviews', { body: review(nest(150)) })).status).toBe(422);
  });

  it('YAML nested 100,000 levels is a 400 before it is parsed, and the server keeps answering', async () => {
    // Parsing it overflowed the stack inside V8's regular expression compiler, which ended the process.
    const before = await storeSnapshot();
    const r = await call('POST', '/api/v1/namespaces/t/configmaps', { body: '['.repeat(100_000) + ']'.repeat(100_000), contentType: 'application/yaml' });
    expect(r.status).toBe(400);
    expect(r.json.message).toBe('error converting YAML to JSON: exceeded max depth (more than 200 levels of nested objects and arrays)');
    const block = await call('PATCH', '/api/v1/namespaces/t/configmaps/x?fieldManager=t', { body: '- '.repeat(20_000) + 'x', contentType: 'application/apply-patch+yaml' });
    expect(block.status).toBe(400);
    expect(block.json.message).toMatch(/^error decoding YAML: exceeded max depth/);
    // A real manifest in YAML still decodes.
    const ok = await call('POST', '/api/v1/namespaces/t/configmaps', { body: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: yaml-ok\ndata:\n  k: "[{not nested}]"\n', contentType: 'application/yaml' });
    expect(ok.status).toBe(201);
    expect(JSON.parse(await storeSnapshot()).filter((o: any) => o.metadata.name !== 'yaml-ok')).toEqual(JSON.parse(before));
  });

  it('a merge patch nested past the limit is a 400 and leaves the object as it was', async () => {
    expect((await call('POST', '/api/v1/namespaces/t/configmaps', { body: cm('deep-patch') })).status).toBe(201);
    const r = await call('PATCH', '/api/v1/namespaces/t/configmaps/deep-patch', { body: `{"data":${nest(300)}}`, contentType: 'application/merge-patch+json' });
    expect(r.status).toBe(400);
    expect(r.json.message).toMatch(/exceeded max depth/);
    expect((await call('GET', '/api/v1/namespaces/t/configmaps/deep-patch')).json.data).toEqual({ a: '1' });
  });
});
