// Service accounts end to end against a real HTTPS apiserver (skiff up's server with its loops), on both
// stores: the default ServiceAccount and kube-root-ca.crt in every namespace; TokenRequest answers and
// kube's refusals; JWTs authenticating as system:serviceaccount:<ns>:<name> (and reaching the authorizer
// as that user); expired, wrong-audience, tampered, unknown-key, deleted-SA and deleted-bound-pod tokens
// refused with 401; OIDC discovery verifying a token with jose; key rotation; ServiceAccount admission;
// stock kubectl's `create token`; the Python client's create_namespaced_service_account_token.

import https from 'node:https';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt, decodeProtectedHeader, importJWK, jwtVerify, SignJWT } from 'jose';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import type { Authorizer, RequestAttributes } from '../lambdas/apiserver/auth.ts';
import { keyIdOf, newServiceAccountKeyPem, DEFAULT_ISSUER, ServiceAccountTokens } from '../lambdas/apiserver/serviceaccount-tokens.ts';
import { DEFAULT_API_TOKEN_MOUNT_PATH } from '../lambdas/apiserver/admission-serviceaccount.ts';
import { testStores } from './support/backends.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { pythonClient } from './support/python-client.ts';

const stores = await testStores('serviceaccounts');

interface Res {
  status: number;
  json: any;
  headers: Record<string, string | string[] | undefined>;
}

function call(c: TestCluster, method: string, path: string, body?: unknown, token = c.token): Promise<Res> {
  const u = new URL(path, c.url);
  return new Promise((resolve, reject) => {
    const req = https.request(
      u,
      { method, ca: c.caCert, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' } },
      (res) => {
        let data = '';
        res.on('data', (d: Buffer) => (data += d.toString()));
        res.on('end', () => {
          let json: any;
          try {
            json = JSON.parse(data);
          } catch {
            json = data;
          }
          resolve({ status: res.statusCode!, json, headers: res.headers });
        });
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body));
  });
}

async function until<T>(f: () => Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}

const tokenPath = (ns: string, sa: string) => `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`;
const pod = (name: string, extra: Record<string, any> = {}, spec: Record<string, any> = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, ...extra },
  spec: { containers: [{ name: 'c', image: 'busybox' }], ...spec },
});

describe.each(stores)('service accounts on %s', (_name, makeStore, enabled) => {
  let c: TestCluster;
  beforeAll(async () => {
    if (!enabled) return;
    c = await startTestCluster({ backend: (await makeStore())() });
    // RBAC decides what a token may do: service accounts may read (view) everywhere in these tests, so a
    // token that authenticates is served (what an authenticated account may not do: test/security.e2e).
    const crb = await call(c, 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      metadata: { name: 'sa-view' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:serviceaccounts' }],
    });
    expect(crb.status, JSON.stringify(crb.json)).toBe(201);
  }, 60_000);
  afterAll(async () => {
    await c?.destroy();
  });

  const ns = async (name: string) => {
    expect((await call(c, 'POST', '/api/v1/namespaces', { metadata: { name } })).status).toBe(201);
    // The serviceaccounts loop makes `default`.
    await until(async () => (await call(c, 'GET', `/api/v1/namespaces/${name}/serviceaccounts/default`)).status === 200);
  };
  const sa = async (namespace: string, name: string) => {
    const r = await call(c, 'POST', `/api/v1/namespaces/${namespace}/serviceaccounts`, { metadata: { name } });
    expect(r.status).toBe(201);
    return r.json;
  };
  const token = async (namespace: string, name: string, spec: Record<string, unknown> = {}) => {
    const r = await call(c, 'POST', tokenPath(namespace, name), { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec });
    expect(r.status, JSON.stringify(r.json)).toBe(201);
    return r.json;
  };
  /** Who the token is, by TokenReview (asked with the admin token). */
  const review = async (t: string) => (await call(c, 'POST', '/apis/authentication.k8s.io/v1/tokenreviews', { spec: { token: t } })).json.status;

  it.runIf(enabled)('every namespace gets the default ServiceAccount and kube-root-ca.crt with the cluster CA', async () => {
    await ns('fresh');
    const cm = await until(async () => {
      const r = await call(c, 'GET', '/api/v1/namespaces/fresh/configmaps/kube-root-ca.crt');
      return r.status === 200 ? r.json : undefined;
    });
    expect(cm.data).toEqual({ 'ca.crt': c.caCert });
    expect(cm.metadata.annotations['kubernetes.io/description']).toMatch(/^Contains a CA bundle that can be used to verify the kube-apiserver/);
    // The system namespaces too.
    for (const n of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
      await until(async () => (await call(c, 'GET', `/api/v1/namespaces/${n}/serviceaccounts/default`)).status === 200);
    }
    // Deleted, both come back; an edited ConfigMap is put right.
    expect((await call(c, 'DELETE', '/api/v1/namespaces/fresh/serviceaccounts/default')).status).toBe(200);
    await until(async () => (await call(c, 'GET', '/api/v1/namespaces/fresh/serviceaccounts/default')).status === 200);
    expect((await call(c, 'PUT', '/api/v1/namespaces/fresh/configmaps/kube-root-ca.crt', { ...cm, data: { 'ca.crt': 'x' } })).status).toBe(200);
    await until(async () => (await call(c, 'GET', '/api/v1/namespaces/fresh/configmaps/kube-root-ca.crt')).json.data?.['ca.crt'] === c.caCert);
  });

  it.runIf(enabled)('TokenRequest issues an RS256 JWT with kube 1.32 claims that authenticates as the service account', async () => {
    await ns('tr');
    const acct = await sa('tr', 'robot');
    const before = Math.floor(Date.now() / 1000);
    const out = await token('tr', 'robot');
    expect(out).toMatchObject({ kind: 'TokenRequest', apiVersion: 'authentication.k8s.io/v1', spec: { audiences: [DEFAULT_ISSUER], expirationSeconds: 3600 } });
    const header = decodeProtectedHeader(out.status.token);
    const keyPem = readFileSync(join(c.dataDir, 'pki', 'sa.key'), 'utf8');
    expect(header).toEqual({ alg: 'RS256', kid: keyIdOf(createPublicKey(createPrivateKey(keyPem))) });
    const claims = decodeJwt(out.status.token);
    expect(claims).toMatchObject({
      iss: DEFAULT_ISSUER,
      sub: 'system:serviceaccount:tr:robot',
      aud: [DEFAULT_ISSUER],
      'kubernetes.io': { namespace: 'tr', serviceaccount: { name: 'robot', uid: acct.metadata.uid } },
    });
    expect(claims.exp! - claims.iat!).toBe(3600);
    expect(claims.nbf).toBe(claims.iat);
    expect(claims.iat).toBeGreaterThanOrEqual(before - 1);
    expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(out.status.expirationTimestamp) / 1000).toBe(claims.exp);

    // The token is a credential: a request with it is served, and TokenReview names the user.
    expect((await call(c, 'GET', '/api/v1/namespaces/tr/pods', undefined, out.status.token)).status).toBe(200);
    expect(await review(out.status.token)).toMatchObject({
      authenticated: true,
      user: {
        username: 'system:serviceaccount:tr:robot',
        uid: acct.metadata.uid,
        groups: ['system:serviceaccounts', 'system:serviceaccounts:tr', 'system:authenticated'],
        extra: { 'authentication.kubernetes.io/credential-id': [`JTI=${claims.jti}`] },
      },
    });

    // It reaches the authorizer as that user: a server on the same store with a recording authorizer.
    const seen: RequestAttributes[] = [];
    const recording: Authorizer = { authorize: async (a) => (seen.push(a), { decision: a.user.username.startsWith('system:serviceaccount:') ? 'deny' : 'allow' }) };
    const api = new ApiServer({ backend: c.backend, authorizer: recording, serviceAccountTokens: c.api.serviceAccountTokens });
    const r = await api.handle({ method: 'GET', path: '/api/v1/namespaces/tr/secrets', query: new URLSearchParams(), headers: { authorization: `Bearer ${out.status.token}` }, body: Buffer.alloc(0) });
    expect(r.status).toBe(403);
    expect(JSON.parse(String(r.body)).message).toBe('secrets is forbidden: User "system:serviceaccount:tr:robot" cannot list resource "secrets" in API group "" in the namespace "tr"');
    expect(seen[0]!.user).toMatchObject({ username: 'system:serviceaccount:tr:robot', groups: ['system:serviceaccounts', 'system:serviceaccounts:tr', 'system:authenticated'] });
  });

  it.runIf(enabled)('TokenRequest with audiences, duration and a bound pod: node claims, extra, and the pod binding', async () => {
    await ns('bound');
    await sa('bound', 'worker');
    const p = await call(c, 'POST', '/api/v1/namespaces/bound/pods', pod('p1', {}, { serviceAccountName: 'worker', nodeName: 'node-x' }));
    expect(p.status).toBe(201);
    const out = await token('bound', 'worker', {
      audiences: ['vault', DEFAULT_ISSUER],
      expirationSeconds: 7200,
      boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: 'p1', uid: p.json.metadata.uid },
    });
    const claims = decodeJwt(out.status.token) as any;
    expect(claims.aud).toEqual(['vault', DEFAULT_ISSUER]);
    expect(claims.exp - claims.iat).toBe(7200);
    expect(claims['kubernetes.io'].pod).toEqual({ name: 'p1', uid: p.json.metadata.uid });
    // No Node object named node-x: its name only (kube does the same).
    expect(claims['kubernetes.io'].node).toEqual({ name: 'node-x' });
    expect((await review(out.status.token)).user.extra).toMatchObject({
      'authentication.kubernetes.io/pod-name': ['p1'],
      'authentication.kubernetes.io/pod-uid': [p.json.metadata.uid],
      'authentication.kubernetes.io/node-name': ['node-x'],
    });
    // kubelet's 3607 s for the apiserver's audience: the token lives a year with warnafter at 3607 s.
    const projected = await token('bound', 'worker', { expirationSeconds: 3607, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: 'p1' } });
    const pc = decodeJwt(projected.status.token) as any;
    expect(pc.exp - pc.iat).toBe(365 * 24 * 3600);
    expect(pc['kubernetes.io'].warnafter).toBe(pc.iat + 3607);
    expect(Date.parse(projected.status.expirationTimestamp) / 1000).toBe(pc.iat + 3607);

    // Deleting the bound pod ends the token (a pod no request has looked up yet: no cached lookup).
    expect((await call(c, 'POST', '/api/v1/namespaces/bound/pods', pod('p2', {}, { serviceAccountName: 'worker' }))).status).toBe(201);
    const fresh = await token('bound', 'worker', { boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: 'p2' } });
    expect((await call(c, 'DELETE', '/api/v1/namespaces/bound/pods/p2?gracePeriodSeconds=0')).status).toBe(200);
    await until(async () => (await call(c, 'GET', '/api/v1/namespaces/bound/pods/p2')).status === 404);
    expect((await call(c, 'GET', '/api/v1/namespaces/bound/pods', undefined, fresh.status.token)).status).toBe(401);

    // Bound to a Secret: works while it exists; deleted, its tokens end.
    const s = await call(c, 'POST', '/api/v1/namespaces/bound/secrets', { metadata: { name: 's1' }, stringData: { a: 'b' } });
    const st = await token('bound', 'worker', { boundObjectRef: { apiVersion: 'v1', kind: 'Secret', name: 's1' } });
    expect((decodeJwt(st.status.token) as any)['kubernetes.io'].secret).toEqual({ name: 's1', uid: s.json.metadata.uid });
    expect((await call(c, 'GET', '/api/v1/namespaces/bound/pods', undefined, st.status.token)).status).toBe(200);
    expect((await call(c, 'POST', '/api/v1/namespaces/bound/secrets', { metadata: { name: 's2' }, stringData: { a: 'b' } })).status).toBe(201);
    const st2 = await token('bound', 'worker', { boundObjectRef: { apiVersion: 'v1', kind: 'Secret', name: 's2' } });
    expect((await call(c, 'DELETE', '/api/v1/namespaces/bound/secrets/s2')).status).toBe(200);
    expect((await call(c, 'GET', '/api/v1/namespaces/bound/pods', undefined, st2.status.token)).status).toBe(401);
    // A pod whose lookup the server has cached: refused within the lookup cache's 10 s.
    expect((await call(c, 'DELETE', '/api/v1/namespaces/bound/pods/p1?gracePeriodSeconds=0')).status).toBe(200);
    const started = Date.now();
    await until(async () => (await call(c, 'GET', '/api/v1/namespaces/bound/pods', undefined, out.status.token)).status === 401, 15_000);
    expect(Date.now() - started).toBeLessThan(11_000);
  });

  it.runIf(enabled)("TokenRequest refusals in kube's words, writing nothing", async () => {
    await ns('bad');
    await sa('bad', 'bot');
    await sa('bad', 'other');
    const post = (name: string, body: unknown) => call(c, 'POST', tokenPath('bad', name), body);
    let r = await post('bot', { spec: { expirationSeconds: 60 } });
    expect(r.status).toBe(422);
    expect(r.json.message).toBe('TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes');
    r = await post('bot', { spec: { expirationSeconds: 2 ** 33 } });
    expect(r.status).toBe(422);
    expect(r.json.message).toMatch(/may not specify a duration larger than 2\^32 seconds$/);
    r = await post('nobody', { spec: {} });
    expect(r.status).toBe(404);
    expect(r.json.message).toBe('serviceaccounts "nobody" not found');
    r = await post('bot', { spec: { expirationSeconds: 'soon' } });
    expect(r.status).toBe(400);
    expect(r.json.message).toMatch(/^TokenRequest in version "v1" cannot be handled as a TokenRequest: json: cannot unmarshal string into Go struct field TokenRequestSpec.spec.expirationSeconds of type int64/);
    r = await post('bot', 'not json');
    expect(r.status).toBe(400);
    r = await post('bot', { metadata: { name: 'other' }, spec: {} });
    expect(r.status).toBe(422);
    expect(r.json.message).toBe('TokenRequest.authentication.k8s.io "bot" is invalid: metadata.name: Invalid value: "other": must match the service account name if specified');
    r = await post('bot', { spec: { boundObjectRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'd' } } });
    expect(r.status).toBe(400);
    expect(r.json.message).toBe('cannot bind token to object of type apps/v1, Kind=Deployment');
    expect((await call(c, 'POST', '/api/v1/namespaces/bad/pods', pod('runs-other', {}, { serviceAccountName: 'other' }))).status).toBe(201);
    r = await post('bot', { spec: { boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: 'runs-other' } } });
    expect(r.status).toBe(400);
    expect(r.json.message).toBe('cannot bind token for serviceaccount "bot" to pod running with different serviceaccount name.');
    r = await post('other', { spec: { boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: 'runs-other', uid: 'not-its-uid' } } });
    expect(r.status).toBe(409);
    expect(r.json.message).toBe(
      'Operation cannot be fulfilled on Pod "runs-other": the UID in the bound object reference (not-its-uid) does not match the UID in record. The object might have been deleted and then recreated',
    );
    r = await post('other', { spec: { boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: 'ghost' } } });
    expect(r.status).toBe(404);
    expect(r.json.message).toBe('pods "ghost" not found');
    // GET on the subresource is not served (create only).
    expect((await call(c, 'GET', tokenPath('bad', 'bot'))).status).toBe(405);
  });

  it.runIf(enabled)('expired, wrong-audience, tampered, garbled, unknown-key and deleted-SA tokens are 401', async () => {
    await ns('deny');
    const acct = await sa('deny', 'gone');
    const tokens = c.api.serviceAccountTokens!;
    const unauthorized = async (t: string) => {
      const r = await call(c, 'GET', '/api/v1/namespaces/deny/pods', undefined, t);
      expect(r.status).toBe(401);
      expect(r.json).toMatchObject({ kind: 'Status', reason: 'Unauthorized', code: 401 });
      expect((await review(t)).authenticated).toBeUndefined();
    };
    const ref = { namespace: 'deny', serviceAccount: { name: 'gone', uid: acct.metadata.uid }, audiences: tokens.audiences };
    // Issued two hours ago for 10 minutes.
    const expired = await tokens.issue({ ...ref, expirationSeconds: 600 }, 0, new Date(Date.now() - 2 * 3600_000));
    await unauthorized(expired.token);
    // Not yet valid.
    const future = await tokens.issue({ ...ref, expirationSeconds: 600 }, 0, new Date(Date.now() + 3600_000));
    await unauthorized(future.token);
    await unauthorized((await token('deny', 'gone', { audiences: ['someone-else'] })).status.token);
    const good = (await token('deny', 'gone')).status.token;
    const [h, p, s] = good.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    claims.sub = 'system:serviceaccount:kube-system:default';
    await unauthorized(`${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`);
    await unauthorized(`${h}.${p}.${s.slice(0, -4)}AAAA`);
    await unauthorized('not.a.jwt');
    // Signed with a key the server does not hold (same kid header as the real one, and none).
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const forged = decodeJwt(good);
    await unauthorized(await new SignJWT(forged).setProtectedHeader({ alg: 'RS256', kid: decodeProtectedHeader(good).kid! }).sign(privateKey));
    await unauthorized(await new SignJWT(forged).setProtectedHeader({ alg: 'RS256' }).sign(privateKey));
    // The service account deleted (and made again: another uid) ends its tokens: at once for an account no
    // request has looked up yet, within the lookup cache's 10 s for one looked up.
    await sa('deny', 'unseen');
    const other = (await token('deny', 'unseen')).status.token;
    expect((await call(c, 'DELETE', '/api/v1/namespaces/deny/serviceaccounts/unseen')).status).toBe(200);
    await sa('deny', 'unseen');
    await unauthorized(other);
    expect((await call(c, 'GET', '/api/v1/namespaces/deny/pods', undefined, good)).status).toBe(200);
    expect((await call(c, 'DELETE', '/api/v1/namespaces/deny/serviceaccounts/gone')).status).toBe(200);
    await until(async () => (await call(c, 'GET', '/api/v1/namespaces/deny/pods', undefined, good)).status === 401, 15_000);
    await unauthorized(good);
  });

  it.runIf(enabled)('OIDC discovery serves the issuer and the JWKS, which verify the tokens', async () => {
    await ns('oidc');
    await sa('oidc', 'app');
    const cfg = await call(c, 'GET', '/.well-known/openid-configuration');
    expect(cfg.status).toBe(200);
    expect(cfg.json).toEqual({
      issuer: DEFAULT_ISSUER,
      jwks_uri: `${DEFAULT_ISSUER}/openid/v1/jwks`,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
    });
    const jwks = await call(c, 'GET', '/openid/v1/jwks');
    expect(jwks.status).toBe(200);
    expect(jwks.headers['content-type']).toBe('application/jwk-set+json');
    expect(jwks.json.keys).toHaveLength(1);
    const jwk = jwks.json.keys[0];
    expect(Object.keys(jwk).sort()).toEqual(['alg', 'e', 'kid', 'kty', 'n', 'use']);
    const t = (await token('oidc', 'app', { audiences: ['my-cloud'] })).status.token;
    const { payload } = await jwtVerify(t, await importJWK(jwk, 'RS256'), { issuer: cfg.json.issuer, audience: 'my-cloud' });
    expect(payload.sub).toBe('system:serviceaccount:oidc:app');
    expect(decodeProtectedHeader(t).kid).toBe(jwk.kid);
    // Without credentials: 401, as every non-public path.
    expect((await call(c, 'GET', '/openid/v1/jwks', undefined, 'nope')).status).toBe(401);
  });

  it.runIf(enabled)('key rotation: a new key signs, the old one verifies until it is removed', async () => {
    await ns('rot');
    await sa('rot', 'app');
    const keyFile = join(c.dataDir, 'pki', 'sa.key');
    const oldPem = readFileSync(keyFile, 'utf8');
    const before = (await token('rot', 'app')).status.token;
    const newPem = newServiceAccountKeyPem();
    try {
      writeFileSync(keyFile, newPem + oldPem);
      c.api.serviceAccountTokens!.reloadKeys(); // else within the key TTL (60 s)
      const after = (await token('rot', 'app')).status.token;
      const newKid = keyIdOf(createPublicKey(createPrivateKey(newPem)));
      expect(decodeProtectedHeader(after).kid).toBe(newKid);
      expect(decodeProtectedHeader(before).kid).not.toBe(newKid);
      for (const t of [before, after]) expect((await call(c, 'GET', '/api/v1/namespaces/rot/pods', undefined, t)).status).toBe(200);
      const jwks = (await call(c, 'GET', '/openid/v1/jwks')).json;
      expect(jwks.keys.map((k: any) => k.kid)).toEqual([newKid, decodeProtectedHeader(before).kid]);
      // The old key removed: its tokens stop working, the new ones go on.
      writeFileSync(keyFile, newPem);
      c.api.serviceAccountTokens!.reloadKeys();
      expect((await call(c, 'GET', '/api/v1/namespaces/rot/pods', undefined, before)).status).toBe(401);
      expect((await call(c, 'GET', '/api/v1/namespaces/rot/pods', undefined, after)).status).toBe(200);
    } finally {
      writeFileSync(keyFile, oldPem);
      c.api.serviceAccountTokens!.reloadKeys();
    }
  });

  it.runIf(enabled)('ServiceAccount admission: default account, the kube-api-access volume, automount opt-outs, a missing account refused', async () => {
    await ns('adm');
    const r = await call(c, 'POST', '/api/v1/namespaces/adm/pods', {
      ...pod('p'),
      spec: {
        initContainers: [{ name: 'init', image: 'busybox' }],
        containers: [
          { name: 'a', image: 'busybox' },
          { name: 'own', image: 'busybox', volumeMounts: [{ name: 'mine', mountPath: DEFAULT_API_TOKEN_MOUNT_PATH }] },
        ],
        volumes: [{ name: 'mine', emptyDir: {} }],
      },
    });
    expect(r.status, JSON.stringify(r.json)).toBe(201);
    const spec = r.json.spec;
    expect(spec.serviceAccountName).toBe('default');
    expect(spec.serviceAccount).toBe('default');
    const vol = spec.volumes.find((v: any) => v.name.startsWith('kube-api-access-'));
    expect(vol.name).toMatch(/^kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    expect(vol.projected).toEqual({
      defaultMode: 420,
      sources: [
        { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
        { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
      ],
    });
    const mount = { name: vol.name, readOnly: true, mountPath: DEFAULT_API_TOKEN_MOUNT_PATH };
    expect(spec.initContainers[0].volumeMounts).toEqual([mount]);
    expect(spec.containers[0].volumeMounts).toEqual([mount]);
    expect(spec.containers[1].volumeMounts).toEqual([{ name: 'mine', mountPath: DEFAULT_API_TOKEN_MOUNT_PATH }]);

    // The pod's automountServiceAccountToken: false, or its account's.
    const off = await call(c, 'POST', '/api/v1/namespaces/adm/pods', pod('off', {}, { automountServiceAccountToken: false }));
    expect(off.status).toBe(201);
    expect(off.json.spec.volumes ?? []).toEqual([]);
    expect(off.json.spec.containers[0].volumeMounts).toBeUndefined();
    expect((await call(c, 'POST', '/api/v1/namespaces/adm/serviceaccounts', { metadata: { name: 'quiet' }, automountServiceAccountToken: false, imagePullSecrets: [{ name: 'regcred' }] })).status).toBe(201);
    const quiet = await call(c, 'POST', '/api/v1/namespaces/adm/pods', pod('quiet', {}, { serviceAccountName: 'quiet' }));
    expect(quiet.json.spec.volumes ?? []).toEqual([]);
    expect(quiet.json.spec.imagePullSecrets).toEqual([{ name: 'regcred' }]);
    // ... which the pod's own true overrides.
    const on = await call(c, 'POST', '/api/v1/namespaces/adm/pods', pod('on', {}, { serviceAccountName: 'quiet', automountServiceAccountToken: true }));
    expect(on.json.spec.volumes.map((v: any) => v.name)).toEqual([expect.stringMatching(/^kube-api-access-/)]);

    // A missing account: kube's 403, nothing written.
    const missing = await call(c, 'POST', '/api/v1/namespaces/adm/pods', pod('lost', {}, { serviceAccountName: 'nobody' }));
    expect(missing.status).toBe(403);
    expect(missing.json.message).toBe('pods "lost" is forbidden: error looking up service account adm/nobody: serviceaccount "nobody" not found');
    expect((await call(c, 'GET', '/api/v1/namespaces/adm/pods/lost')).status).toBe(404);
    const gen = await call(c, 'POST', '/api/v1/namespaces/adm/pods', { ...pod(''), metadata: { generateName: 'gen-' }, spec: { serviceAccount: 'nobody', containers: [{ name: 'c', image: 'busybox' }] } });
    expect(gen.status).toBe(403);
    expect(gen.json.message).toBe('pods "gen-" is forbidden: error looking up service account adm/nobody: serviceaccount "nobody" not found');
  });
});

describe('stock kubectl and the Python client', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startTestCluster();
    await until(async () => (await call(c, 'GET', '/api/v1/namespaces/default/serviceaccounts/default')).status === 200);
  }, 60_000);
  afterAll(async () => {
    await c?.destroy();
  });

  it('kubectl create token NAME [--audience] [--duration] [--bound-object-kind Pod --bound-object-name X]', async () => {
    expect((await c.kubectl(['create', 'serviceaccount', 'builder'])).code).toBe(0);
    // What the token may do is RBAC's: builder may read in default.
    expect((await c.kubectl(['create', 'rolebinding', 'builder-view', '--clusterrole=view', '--serviceaccount=default:builder'])).code).toBe(0);
    let r = await c.kubectl(['create', 'token', 'builder']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    let claims = decodeJwt(r.stdout.trim()) as any;
    expect(claims.sub).toBe('system:serviceaccount:default:builder');
    expect(claims.aud).toEqual([DEFAULT_ISSUER]);

    r = await c.kubectl(['create', 'token', 'builder', '--audience', 'a1', '--audience', 'a2', '--duration', '2h']);
    expect(r.code).toBe(0);
    claims = decodeJwt(r.stdout.trim());
    expect(claims.aud).toEqual(['a1', 'a2']);
    expect(claims.exp - claims.iat).toBe(7200);

    expect((await c.kubectl(['run', 'bp', '--image', 'busybox', '--overrides', JSON.stringify({ spec: { serviceAccountName: 'builder' } })])).code).toBe(0);
    r = await c.kubectl(['create', 'token', 'builder', '--bound-object-kind', 'Pod', '--bound-object-name', 'bp']);
    expect(r.stderr).toBe('');
    claims = decodeJwt(r.stdout.trim());
    expect(claims['kubernetes.io'].pod.name).toBe('bp');

    // kubectl uses it: the token is a working credential (`kubectl --token`).
    const whoami = await c.kubectl(['get', 'pods', '--token', r.stdout.trim(), '-o', 'name']);
    expect(whoami.code).toBe(0);
    expect(whoami.stdout).toContain('pod/bp');

    r = await c.kubectl(['create', 'token', 'builder', '--duration', '1m']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('may not specify a duration less than 10 minutes');
    r = await c.kubectl(['create', 'token', 'nobody']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('serviceaccounts "nobody" not found');
  });

  it('the Python client: CoreV1Api.create_namespaced_service_account_token', async () => {
    const py = await pythonClient();
    if (!py) return;
    expect((await c.kubectl(['create', 'serviceaccount', 'pyclient'])).code).toBe(0);
    const out = await py.run('serviceaccount_token.py', c.kubeconfigPath, 'default', 'pyclient');
    const claims = decodeJwt(out.token) as any;
    expect(claims.sub).toBe('system:serviceaccount:default:pyclient');
    expect(claims.aud).toEqual(['py-audience']);
    expect(claims.exp - claims.iat).toBe(1200);
    expect(out.expiration_seconds).toBe(1200);
    expect(out.review).toMatchObject({ authenticated: true, username: 'system:serviceaccount:default:pyclient' });
  });
});
