// The audit log: an audit.k8s.io/v1 Policy's levels and stages, written by a real local cluster (HTTPS,
// kubectl) to a file of audit.k8s.io/v1 Event lines, parsed here; refusals (401, 403) and watches audited
// too; and the CloudWatch Logs sink of the apiserver Lambda against moto, including a log group that is
// not there yet (requests go on; the events follow once it is).

import https from 'node:https';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudWatchLogsClient, CreateLogGroupCommand, DescribeLogStreamsCommand, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { storeToken } from '../lambdas/apiserver/auth.ts';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { Auditor, CloudWatchAuditSink, evaluatePolicy, parseAuditPolicy, type AuditEvent } from '../lambdas/apiserver/audit.ts';
import { SqliteBackend } from '../lambdas/storage/sqlite.ts';
import { startLocalCluster } from '../lambdas/local/server.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { applyGrants } from './support/grants.ts';
import { motoAccount, type MotoAccount } from './support/moto-account.ts';
import { until } from './support/until.ts';
import { call } from './support/api-call.ts';

const c0 = (url: string, caCert: string, token: string) => ({ url, caCert, token });

const POLICY = `
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
# discovery and OpenAPI: nothing
- level: None
  nonResourceURLs: ["/api", "/api/*", "/apis", "/apis/*", "/openapi/*", "/version"]
# ConfigMaps in "audited": everything, both ways
- level: RequestResponse
  namespaces: ["audited"]
  resources: [{group: "", resources: ["configmaps"]}]
# one Secret by name: the request too
- level: Request
  resources: [{group: "", resources: ["secrets"], resourceNames: ["s1"]}]
# status writes of any kind: nothing
- level: None
  resources: [{group: "", resources: ["*/status"]}]
- level: Metadata
  verbs: [get, list, watch, create, delete, deletecollection]
# the rest (update, patch): nothing
- level: None
`;

let c: TestCluster;
let logPath: string;
const ALICE = 'alice-token-0123456789';

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-audit-'));
  logPath = join(dir, 'logs', 'audit.log');
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, POLICY);
  c = await startTestCluster({ dataDir: dir, controllers: false, auditPolicyFile: policyFile, auditLogPath: logPath, ...applyGrants() });
  await storeToken(c.backend, ALICE, { username: 'alice', groups: [] });
  await storeToken(c.backend, 'carol-token-0123456789', { username: 'carol', groups: [] });
  expect((await c.kubectl(['create', 'namespace', 'audited'])).code).toBe(0);
}, 60_000);
afterAll(async () => {
  await c?.destroy();
});

function events(): AuditEvent[] {
  if (!existsSync(logPath)) return [];
  return readFileSync(logPath, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditEvent);
}

const MICRO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

function eventsFor(pred: (e: AuditEvent) => boolean): AuditEvent[] {
  return events().filter(pred);
}

describe('a file audit log under a policy', () => {
  it('RequestResponse: the request and response objects, on the ResponseComplete stage only (RequestReceived omitted)', async () => {
    expect((await c.kubectl(['create', 'configmap', 'cm1', '-n', 'audited', '--from-literal=k=v'])).code).toBe(0);
    const evs = eventsFor((e) => e.verb === 'create' && e.objectRef?.resource === 'configmaps');
    expect(evs).toHaveLength(1);
    const e = evs[0]!;
    expect(e).toMatchObject({
      kind: 'Event',
      apiVersion: 'audit.k8s.io/v1',
      level: 'RequestResponse',
      stage: 'ResponseComplete',
      requestURI: expect.stringMatching(/^\/api\/v1\/namespaces\/audited\/configmaps/),
      verb: 'create',
      user: { username: 'skiff-admin', groups: ['system:masters', 'system:authenticated'] },
      sourceIPs: ['127.0.0.1'],
      userAgent: expect.stringMatching(/^kubectl\//),
      objectRef: { resource: 'configmaps', namespace: 'audited', name: 'cm1', apiVersion: 'v1' },
      responseStatus: { metadata: {}, code: 201 },
      annotations: { 'authorization.k8s.io/decision': 'allow', 'authorization.k8s.io/reason': '' },
    });
    expect(e.auditID).toMatch(/^[0-9a-f-]{36}$/);
    expect(e.requestReceivedTimestamp).toMatch(MICRO);
    expect(e.stageTimestamp).toMatch(MICRO);
    expect(e.stageTimestamp >= e.requestReceivedTimestamp).toBe(true);
    // kubectl sent it as protobuf; the log has it as JSON.
    expect(e.requestObject).toMatchObject({ kind: 'ConfigMap', metadata: { name: 'cm1' }, data: { k: 'v' } });
    expect(e.responseObject).toMatchObject({ kind: 'ConfigMap', metadata: { name: 'cm1', namespace: 'audited', uid: expect.any(String) } });
    // Discovery matched the None rule: no event for it.
    expect(events().some((x) => x.requestURI.startsWith('/api?') || x.requestURI === '/api' || x.requestURI.startsWith('/apis'))).toBe(false);
  });

  it('Request: the request object but no response object; Metadata: neither; None: no event', async () => {
    expect((await c.kubectl(['create', 'secret', 'generic', 's1', '-n', 'audited', '--from-literal=a=b'])).code).toBe(0);
    expect((await c.kubectl(['get', 'secret', 's1', '-n', 'audited'])).code).toBe(0);
    expect((await c.kubectl(['label', 'secret', 's1', '-n', 'audited', 'x=y'])).code).toBe(0);
    expect((await c.kubectl(['delete', 'secret', 's1', '-n', 'audited'])).code).toBe(0);
    expect((await c.kubectl(['label', 'namespace', 'audited', 'x=y'])).code).toBe(0);
    const secrets = eventsFor((e) => e.objectRef?.resource === 'secrets');
    // create names no Secret yet (the rule's resourceNames cannot match it): Metadata, as in kube. Every
    // later request names s1 (kubectl's own reads around label and delete included): Request.
    const [create, ...named] = secrets;
    expect(create).toMatchObject({ verb: 'create', level: 'Metadata', objectRef: { resource: 'secrets', namespace: 'audited', name: 's1', apiVersion: 'v1' } });
    expect(create!.requestObject).toBeUndefined();
    expect(create!.responseObject).toBeUndefined();
    expect(named.map((e) => e.level)).toEqual(named.map(() => 'Request'));
    expect(named.map((e) => e.objectRef?.name)).toEqual(named.map(() => 's1'));
    const get = named.find((e) => e.verb === 'get')!;
    expect(get.requestObject).toBeUndefined(); // a get has no body
    expect(get.responseObject).toBeUndefined(); // the Secret's data stays out of the log at Request level
    expect(named.find((e) => e.verb === 'patch')!.requestObject).toEqual({ metadata: { labels: { x: 'y' } } });
    const del = named.find((e) => e.verb === 'delete')!;
    expect(del.requestObject).toMatchObject({ propagationPolicy: 'Background' }); // kubectl's DeleteOptions
    expect(del.responseObject).toBeUndefined();
    // The namespace's patch matched the final None rule: no event.
    expect(eventsFor((e) => e.objectRef?.resource === 'namespaces' && e.verb === 'patch')).toEqual([]);
    expect(eventsFor((e) => e.objectRef?.resource === 'namespaces' && e.verb === 'create')).toHaveLength(1);
  });

  it('a refusal (403) is audited with the decision, the Status and the user', async () => {
    const r = await c.kubectl(['--token', ALICE, 'get', 'secrets', '-n', 'audited']);
    expect(r.code).toBe(1);
    const e = eventsFor((x) => x.user.username === 'alice' && x.objectRef?.resource === 'secrets').at(-1)!;
    expect(e).toMatchObject({
      level: 'Metadata',
      stage: 'ResponseComplete',
      verb: 'list',
      objectRef: { resource: 'secrets', namespace: 'audited', apiVersion: 'v1' },
      annotations: { 'authorization.k8s.io/decision': 'forbid', 'authorization.k8s.io/reason': '' },
      responseStatus: {
        metadata: {},
        status: 'Failure',
        reason: 'Forbidden',
        code: 403,
        message: 'secrets is forbidden: User "alice" cannot list resource "secrets" in API group "" in the namespace "audited"',
      },
    });
  });

  it('a failed authentication (401) is one ResponseStarted event with no user', async () => {
    const r = await c.kubectl(['--token', 'not-a-token', 'get', 'pods', '-n', 'audited']);
    expect(r.code).toBe(1);
    const e = eventsFor((x) => x.responseStatus?.code === 401).at(-1)!;
    expect(e).toMatchObject({
      level: 'Metadata',
      stage: 'ResponseStarted',
      user: {},
      verb: 'list',
      objectRef: { resource: 'pods', namespace: 'audited' },
      responseStatus: { metadata: {}, code: 401, message: 'Authentication failed, attempted: bearer' },
    });
    expect(e.annotations).toBeUndefined();
  });

  it('an impersonated request names both users', async () => {
    const r = await c.kubectl(['--token', 'carol-token-0123456789', 'get', 'pods', '-n', 'team-a', '--as', 'alice']);
    expect(r.code).toBe(0);
    const e = eventsFor((x) => x.user.username === 'carol' && x.objectRef?.resource === 'pods').at(-1)!;
    expect(e.impersonatedUser).toEqual({ username: 'alice', groups: ['system:authenticated'] });
    expect(e.annotations?.['authorization.k8s.io/reason']).toMatch(/^allowed by test grant/);
  });

  it('a watch: ResponseStarted when it opens, ResponseComplete when it ends, one audit ID (also the Audit-Id header)', async () => {
    const auditId = await new Promise<string>((resolve, reject) => {
      const u = new URL('/api/v1/namespaces/audited/configmaps?watch=1&timeoutSeconds=1', c.url);
      const req = https.get(u, { ca: c.caCert, headers: { authorization: `Bearer ${c.token}` } }, (res) => {
        res.resume();
        res.on('end', () => resolve(String(res.headers['audit-id'])));
      });
      req.on('error', reject);
    });
    const evs = await until('both stages', async () => {
      const w = eventsFor((e) => e.auditID === auditId);
      return w.length === 2 ? w : undefined;
    });
    expect(evs.map((e) => [e.stage, e.verb, e.level])).toEqual([
      ['ResponseStarted', 'watch', 'RequestResponse'],
      ['ResponseComplete', 'watch', 'RequestResponse'],
    ]);
    expect(evs[0]!.responseStatus).toEqual({ metadata: {}, code: 200 });
    expect(evs[1]!.stageTimestamp > evs[0]!.stageTimestamp).toBe(true);
  });

  it('a client-supplied Audit-ID is kept', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const u = new URL('/api/v1/namespaces/audited/configmaps/cm1', c.url);
      const req = https.get(u, { ca: c.caCert, headers: { authorization: `Bearer ${c.token}`, 'audit-id': 'my-trace-1' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
    });
    expect(status).toBe(200);
    expect(eventsFor((e) => e.auditID === 'my-trace-1').map((e) => [e.verb, e.objectRef?.name])).toEqual([['get', 'cm1']]);
  });
});

describe('policy', () => {
  const user = { username: 'u', groups: ['g'] };
  const attrs = (o: object) => ({ user, verb: 'get', resourceRequest: true, path: '/x', group: '', ...o });

  it('matches resources as kube does: "*", "*/sub", "res/*", names, groups, namespaces ("" for cluster scope)', () => {
    const p = parseAuditPolicy(`
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- {level: RequestResponse, resources: [{group: "", resources: ["pods/*"]}]}
- {level: Request, resources: [{group: "apps", resources: ["*/scale"]}]}
- {level: Metadata, namespaces: [""], resources: [{group: ""}]}
- {level: None, userGroups: ["g"], nonResourceURLs: ["/healthz*"]}
- {level: Metadata, omitStages: [ResponseStarted]}
`);
    expect(evaluatePolicy(p, attrs({ resource: 'pods', subresource: 'log', namespace: 'a' }), user).level).toBe('RequestResponse');
    expect(evaluatePolicy(p, attrs({ resource: 'deployments', subresource: 'scale', group: 'apps', namespace: 'a' }), user).level).toBe('Request');
    expect(evaluatePolicy(p, attrs({ resource: 'deployments', group: 'apps', namespace: 'a' }), user).level).toBe('Metadata');
    expect(evaluatePolicy(p, attrs({ resource: 'nodes' }), user).level).toBe('Metadata');
    expect(evaluatePolicy(p, attrs({ resourceRequest: false, path: '/healthz/ready' }), user).level).toBe('None');
    const last = evaluatePolicy(p, attrs({ resourceRequest: false, path: '/metrics' }), user);
    expect([last.level, [...last.omitStages]]).toEqual(['Metadata', ['ResponseStarted']]);
    // No rule matches: None.
    expect(evaluatePolicy(parseAuditPolicy('{apiVersion: audit.k8s.io/v1, kind: Policy, rules: [{level: Metadata, users: [x]}]}'), attrs({}), user).level).toBe('None');
  });

  it('a bad policy stops the start, naming the field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-audit-bad-'));
    try {
      const policy = join(dir, 'p.yaml');
      writeFileSync(policy, 'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Everything\n');
      await expect(startLocalCluster({ dataDir: dir, port: 0, controllers: false, auditPolicyFile: policy, auditLogPath: join(dir, 'a.log') })).rejects.toThrow(
        `${policy}: rules[0].level: Unsupported value: "Everything": supported values: "None", "Metadata", "Request", "RequestResponse"`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('skiff up --audit-policy-file --audit-log-path', () => {
  /** The CLI from source (dist/ may predate it), as `skiff up` runs; resolves with its output once it runs or exits. */
  function up(dir: string, ...args: string[]) {
    const proc = spawn(process.execPath, ['--import', 'tsx', 'lambdas/local/cli.ts', 'up', '--no-agent', '--port', '0', '--data-dir', dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    const started = new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`skiff up did not start: ${out}`)), 60_000);
      const seen = (d: Buffer) => {
        out += d;
        const m = /Skiff is running at (https:\/\/\S+)/.exec(out);
        if (m) (clearTimeout(t), resolve(m[1]!));
      };
      proc.stdout!.on('data', seen);
      proc.stderr!.on('data', (d) => (out += d));
      void exited.then(() => (clearTimeout(t), resolve('')));
    });
    return { proc, started, exited, output: () => out };
  }

  it('audits requests into the file under the policy; one flag without the other is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-audit-up-'));
    try {
      const policy = join(dir, 'policy.yaml');
      writeFileSync(policy, 'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n  resources: [{group: ""}]\n');
      const log = join(dir, 'audit', 'audit.log');
      const s = up(dir, '--audit-policy-file', policy, '--audit-log-path', log);
      const url = await s.started;
      expect(url, s.output()).toMatch(/^https:/);
      const ca = readFileSync(join(dir, 'pki', 'ca.crt'), 'utf8');
      const kubeconfig = readFileSync(join(dir, 'kubeconfig'), 'utf8');
      const admin = /token: (\S+)/.exec(kubeconfig)![1]!;
      const status = await new Promise<number>((resolve, reject) => {
        https.get(new URL('/api/v1/namespaces/default/configmaps', url), { ca, headers: { authorization: `Bearer ${admin}` } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        }).on('error', reject);
      });
      expect(status).toBe(200);
      const evs = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as AuditEvent);
      expect(evs.map((e) => [e.stage, e.verb, e.objectRef?.resource, e.objectRef?.namespace])).toEqual([['ResponseComplete', 'list', 'configmaps', 'default']]);
      // A YAML body nested past the limit is a 400, and the server goes on (the audit decodes the body again,
      // with the same guarded decoder as the request).
      const deep = await call(c0(url, ca, admin), 'POST', '/api/v1/namespaces/default/configmaps', `${'['.repeat(1000)}${']'.repeat(1000)}`, 'application/yaml');
      expect(deep.status).toBe(400);
      expect((await call(c0(url, ca, admin), 'GET', '/api/v1/namespaces/default/configmaps')).status).toBe(200);
      s.proc.kill('SIGTERM');
      expect(await s.exited).toBe(0);

      const half = up(dir, '--audit-log-path', log);
      await half.started;
      expect(await half.exited).toBe(1);
      expect(half.output()).toContain('skiff: the audit log needs both an audit policy file and an audit log path');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('CloudWatch Logs sink (moto)', () => {
  let moto: MotoAccount | undefined;
  let logs: CloudWatchLogsClient;
  let dir: string;
  beforeAll(async () => {
    moto = await motoAccount();
    if (moto) logs = new CloudWatchLogsClient(moto.clientConfig);
    dir = mkdtempSync(join(tmpdir(), 'skiff-audit-cw-'));
  }, 60_000);
  afterAll(async () => {
    logs?.destroy();
    await moto?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function messages(group: string): Promise<AuditEvent[]> {
    const streams = await logs.send(new DescribeLogStreamsCommand({ logGroupName: group }));
    const out: AuditEvent[] = [];
    for (const s of streams.logStreams ?? []) {
      const r = await logs.send(new GetLogEventsCommand({ logGroupName: group, logStreamName: s.logStreamName!, startFromHead: true }));
      for (const e of r.events ?? []) out.push(JSON.parse(e.message!));
    }
    return out;
  }

  it('puts each request\'s events before answering; a missing log group fails no request, and its events follow later', async () => {
    if (!moto) return;
    const group = '/skiff/audit-test';
    const backend = new SqliteBackend(join(dir, 'cw.db'));
    const policy = parseAuditPolicy('{apiVersion: audit.k8s.io/v1, kind: Policy, omitStages: [RequestReceived], rules: [{level: Metadata}]}');
    const api = new ApiServer({ backend, audit: new Auditor(policy, new CloudWatchAuditSink({ logGroupName: group, client: logs })) });
    await storeToken(backend, 'cw-admin-token', { username: 'cw-admin', groups: ['system:masters'] });
    const get = (path: string, token = 'cw-admin-token') =>
      api.handle({ method: 'GET', path, query: new URLSearchParams(), headers: { authorization: `Bearer ${token}`, 'user-agent': 'audit-test' }, body: Buffer.alloc(0), sourceIp: '203.0.113.7' });

    // The group is not there: the request is answered all the same (the error goes to stderr).
    const first = await get('/api/v1/namespaces/default/configmaps');
    expect(first.status).toBe(200);
    await logs.send(new CreateLogGroupCommand({ logGroupName: group }));
    const second = await get('/api/v1/namespaces');
    expect(second.status).toBe(200);
    const third = await get('/api/v1/namespaces', 'bad-token');
    expect(third.status).toBe(401);
    // Each request's flush put its events (and the earlier ones kept) before it answered.
    const evs = await messages(group);
    expect(evs.map((e) => [e.verb, e.objectRef?.resource, e.responseStatus?.code, e.stage])).toEqual([
      ['list', 'configmaps', 200, 'ResponseComplete'],
      ['list', 'namespaces', 200, 'ResponseComplete'],
      ['list', 'namespaces', 401, 'ResponseStarted'],
    ]);
    expect(evs[0]).toMatchObject({ user: { username: 'cw-admin' }, sourceIPs: ['203.0.113.7'], userAgent: 'audit-test', level: 'Metadata' });
    expect(evs[0]!.auditID).toBe(first.headers['audit-id']);
    await backend.close();
  }, 60_000);
});
