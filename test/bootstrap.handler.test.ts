// The bootstrap custom resource's handler (lambdas/bootstrap/lambda.ts), the exported Lambda `handler`
// as deployed (configured by its environment: SKIFF_TABLE, the SDK's endpoint variables), against moto
// (DynamoDB and SSM on one server) with a local HTTP server standing in for CloudFormation's ResponseURL.
// It must: make both tokens as SecureStrings and their hashes in the table, keep them on retries and
// updates (also when a first attempt stopped half-way), delete the parameters on Delete, always answer
// the ResponseURL with a stable PhysicalResourceId, and never let a token out (response, logs).

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DeleteParametersCommand, GetParameterCommand, GetParametersCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { ADMIN_USER, BOOTSTRAP_USER, TokenAuthenticator, newToken } from '../lambdas/apiserver/auth.ts';
import { Registry } from '../lambdas/apiserver/registry.ts';
import { readServiceAccountIssuer, ServiceAccountTokens } from '../lambdas/apiserver/serviceaccount-tokens.ts';
import { findResource, storageKey } from '../lambdas/machinery/resources.ts';
import { DynamoBackend, ensureTable } from '../lambdas/storage/dynamodb.ts';
import { dynamoTestEndpoint, uniqueTableName } from './support/dynamodb.ts';

const ddb = await dynamoTestEndpoint();
const REGION = 'us-east-1';

let tableName: string;
let ssm: SSMClient;
let backend: DynamoBackend;
let responseServer: Server;
let responseUrl: string;
const responses: { path: string; contentType: string | undefined; body: any }[] = [];
let handler: (event: CloudFormationCustomResourceEvent) => Promise<{ status: string; physicalResourceId: string; reason?: string }>;
const logged: string[] = [];

beforeAll(async () => {
  if (!ddb) return;
  tableName = uniqueTableName('skiff-bootstrap');
  await ensureTable(ddb.client, tableName);
  backend = new DynamoBackend({ client: ddb.newClient(), tableName });
  ssm = new SSMClient({ endpoint: ddb.endpoint, region: REGION, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });

  responseServer = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      responses.push({ path: req.url!, contentType: req.headers['content-type'], body: JSON.parse(body) });
      res.end();
    });
  });
  await new Promise<void>((r) => responseServer.listen(0, '127.0.0.1', r));
  responseUrl = `http://127.0.0.1:${(responseServer.address() as AddressInfo).port}`;

  // The function's environment, as the stack sets it (plus the emulator's endpoints and credentials).
  Object.assign(process.env, {
    SKIFF_TABLE: tableName,
    SKIFF_DYNAMODB_ENDPOINT: ddb.endpoint,
    AWS_ENDPOINT_URL_SSM: ddb.endpoint,
    AWS_REGION: REGION,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
  });
  for (const level of ['log', 'error', 'warn', 'info'] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void logged.push(args.map(String).join(' ')));
  }
  ({ handler } = await import('../lambdas/bootstrap/lambda.ts'));
});

afterAll(async () => {
  vi.restoreAllMocks();
  ssm?.destroy();
  await backend?.close();
  await new Promise<void>((r) => (responseServer ? responseServer.close(() => r()) : r()));
  await ddb?.stop();
});

let requestCounter = 0;
function event(type: 'Create' | 'Update' | 'Delete', prefix: string, extra: Record<string, unknown> = {}): CloudFormationCustomResourceEvent {
  const n = ++requestCounter;
  return {
    RequestType: type,
    ServiceToken: 'arn:aws:lambda:us-east-1:123456789012:function:bootstrap',
    ResponseURL: `${responseUrl}/response/${n}?X-Amz-Signature=abc`,
    StackId: 'arn:aws:cloudformation:us-east-1:123456789012:stack/SkiffStack/guid',
    RequestId: `request-${n}`,
    LogicalResourceId: 'ClusterBootstrapTokens',
    ResourceType: 'Custom::SkiffBootstrapTokens',
    ResourceProperties: {
      ServiceToken: 'arn:aws:lambda:us-east-1:123456789012:function:bootstrap',
      BootstrapTokenParameter: `${prefix}/bootstrap-token`,
      AdminTokenParameter: `${prefix}/admin-token`,
    },
    ...(type === 'Create' ? {} : { PhysicalResourceId: `skiff-bootstrap:${prefix}`, ...(type === 'Update' ? { OldResourceProperties: {} } : {}) }),
    ...extra,
  } as CloudFormationCustomResourceEvent;
}

/** Runs the handler and returns what it PUT to the ResponseURL. */
async function run(e: CloudFormationCustomResourceEvent) {
  const before = responses.length;
  const out = await handler(e);
  expect(responses.length, 'one response per request').toBe(before + 1);
  const r = responses.at(-1)!;
  expect(r.path).toBe(new URL(e.ResponseURL).pathname + new URL(e.ResponseURL).search);
  expect(r.contentType ?? '', 'the presigned URL is signed without a content type').toBe('');
  expect(r.body).toMatchObject({ StackId: e.StackId, RequestId: e.RequestId, LogicalResourceId: e.LogicalResourceId, Status: out.status });
  return r.body as { Status: string; PhysicalResourceId: string; Reason: string; Data?: unknown };
}

async function readTokens(prefix: string): Promise<{ bootstrap: string; admin: string }> {
  const out = await ssm.send(new GetParametersCommand({ Names: [`${prefix}/bootstrap-token`, `${prefix}/admin-token`], WithDecryption: true }));
  expect(out.InvalidParameters ?? []).toEqual([]);
  const p = (n: string) => out.Parameters!.find((x) => x.Name === `${prefix}/${n}`)!;
  for (const n of ['bootstrap-token', 'admin-token']) expect(p(n).Type, n).toBe('SecureString');
  return { bootstrap: p('bootstrap-token').Value!, admin: p('admin-token').Value! };
}

async function exists(name: string): Promise<boolean> {
  try {
    await ssm.send(new GetParameterCommand({ Name: name }));
    return true;
  } catch (e) {
    if ((e as Error).name === 'ParameterNotFound') return false;
    throw e;
  }
}

describe.skipIf(!ddb)('bootstrap custom resource handler', () => {
  const prefix = `/skiff/c${process.pid}`;
  let first: { bootstrap: string; admin: string };

  it('Create: two SecureString tokens whose hashes in the table authenticate as the bootstrap and admin users', async () => {
    const r = await run(event('Create', prefix));
    expect(r.Status).toBe('SUCCESS');
    expect(r.PhysicalResourceId).toBe(`skiff-bootstrap:${prefix}`);
    expect(r.Data).toBeUndefined();
    first = await readTokens(prefix);
    expect(first.bootstrap).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(first.admin).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(first.admin).not.toBe(first.bootstrap);

    const authn = new TokenAuthenticator(backend, 0);
    const boot = await authn.authenticate(`Bearer ${first.bootstrap}`);
    expect(boot.username).toBe(BOOTSTRAP_USER.username);
    expect(boot.groups).toEqual(expect.arrayContaining(BOOTSTRAP_USER.groups));
    const admin = await authn.authenticate(`Bearer ${first.admin}`);
    expect(admin.username).toBe(ADMIN_USER.username);
    expect(admin.groups).toEqual(expect.arrayContaining(ADMIN_USER.groups));
    await expect(authn.authenticate(`Bearer ${newToken()}`)).rejects.toMatchObject({ status: expect.objectContaining({ code: 401 }) });
  });

  it('Create makes the system PriorityClasses, as kube-apiserver does at startup; an Update makes a deleted one again', async () => {
    const registry = new Registry(backend);
    const pcs = findResource('scheduling.k8s.io', 'v1', 'priorityclasses')!;
    const list = async () => (await registry.list(pcs, undefined)).items.map((o) => [o.metadata.name, o.value, o.preemptionPolicy]);
    expect(await list()).toEqual([
      ['system-cluster-critical', 2000000000, 'PreemptLowerPriority'],
      ['system-node-critical', 2000001000, 'PreemptLowerPriority'],
    ]);
    // The API refuses to delete a system class (403): gone from the store as if by hand.
    await expect(registry.delete(pcs, undefined, 'system-node-critical')).rejects.toMatchObject({ code: 403 });
    await backend.delete(storageKey(pcs, undefined, 'system-node-critical'));
    expect((await run(event('Update', prefix))).Status).toBe('SUCCESS');
    expect((await list()).map((r) => r[0])).toEqual(['system-cluster-critical', 'system-node-critical']);
  });

  it('a repeated Create and an Update keep the same tokens and the same PhysicalResourceId', async () => {
    expect((await run(event('Create', prefix))).PhysicalResourceId).toBe(`skiff-bootstrap:${prefix}`);
    expect(await readTokens(prefix)).toEqual(first);
    const u = await run(event('Update', prefix));
    expect(u).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: `skiff-bootstrap:${prefix}` });
    expect(await readTokens(prefix)).toEqual(first);
  });

  it('a retry after a first attempt stopped between SSM and the table finishes with the stored token', async () => {
    const p = `${prefix}-half`;
    const stored = newToken(); // the first attempt wrote this parameter, then died before the table write
    await ssm.send(new PutParameterCommand({ Name: `${p}/bootstrap-token`, Value: stored, Type: 'SecureString' }));
    const authn = new TokenAuthenticator(backend, 0);
    await expect(authn.authenticate(`Bearer ${stored}`)).rejects.toMatchObject({ status: expect.objectContaining({ code: 401 }) });
    expect((await run(event('Create', p))).Status).toBe('SUCCESS');
    const t = await readTokens(p);
    expect(t.bootstrap).toBe(stored);
    expect((await authn.authenticate(`Bearer ${stored}`)).username).toBe(BOOTSTRAP_USER.username);
    expect((await authn.authenticate(`Bearer ${t.admin}`)).username).toBe(ADMIN_USER.username);
    await ssm.send(new DeleteParametersCommand({ Names: [`${p}/bootstrap-token`, `${p}/admin-token`] }));
  });

  it('Delete revokes both tokens in the table and removes both parameters, and a repeated Delete still succeeds', async () => {
    const before = await readTokens(prefix);
    const authn = new TokenAuthenticator(backend, 0);
    expect((await authn.authenticate(`Bearer ${before.admin}`)).username).toBe(ADMIN_USER.username);
    const d = await run(event('Delete', prefix));
    await expect(authn.authenticate(`Bearer ${before.admin}`)).rejects.toThrow(/Unauthorized/);
    await expect(authn.authenticate(`Bearer ${before.bootstrap}`)).rejects.toThrow(/Unauthorized/);
    expect(d).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: `skiff-bootstrap:${prefix}` });
    expect(await exists(`${prefix}/bootstrap-token`)).toBe(false);
    expect(await exists(`${prefix}/admin-token`)).toBe(false);
    expect((await run(event('Delete', prefix))).Status).toBe('SUCCESS');
  });

  it('AdminPrincipalArns become system:masters AccessEntries; AdminToken false revokes the admin token and removes its parameter', async () => {
    const p = `/skiff/iam${process.pid}`;
    const accessEntries = findResource('iam.skiff.io', 'v1', 'accessentries')!;
    const registry = new Registry(backend);
    const admins = () => registry.list(accessEntries, undefined).then((l) => l.items.map((e) => e.spec).sort((a, b) => a.principalArn.localeCompare(b.principalArn)));
    const withProps = (e: CloudFormationCustomResourceEvent, props: Record<string, unknown>) => ({ ...e, ResourceProperties: { ...e.ResourceProperties, ...props } }) as CloudFormationCustomResourceEvent;
    const roles = ['arn:aws:iam::123456789012:role/admins', 'arn:aws:iam::123456789012:user/ops/root-user'];
    expect((await run(withProps(event('Create', p), { AdminPrincipalArns: roles }))).Status).toBe('SUCCESS');
    expect(await admins()).toEqual([
      { principalArn: roles[0], groups: ['system:masters'] },
      { principalArn: roles[1], groups: ['system:masters'] },
    ]);
    const { admin } = await readTokens(p);
    const authn = new TokenAuthenticator(backend, 0);
    expect((await authn.authenticate(`Bearer ${admin}`)).username).toBe(ADMIN_USER.username);
    // Redelivered: the same entries, not twice.
    expect((await run(withProps(event('Create', p), { AdminPrincipalArns: roles }))).Status).toBe('SUCCESS');
    expect(await admins()).toHaveLength(2);

    // The admin token turned off, one admin dropped: the token no longer authenticates, its parameter is
    // gone, the bootstrap token stays, the dropped admin's entry is removed.
    expect((await run(withProps(event('Update', p), { AdminToken: 'false', AdminPrincipalArns: [roles[0]] }))).Status).toBe('SUCCESS');
    await expect(authn.authenticate(`Bearer ${admin}`)).rejects.toThrow(/Unauthorized/);
    expect(await exists(`${p}/admin-token`)).toBe(false);
    expect(await exists(`${p}/bootstrap-token`)).toBe(true);
    expect(await admins()).toEqual([{ principalArn: roles[0], groups: ['system:masters'] }]);
    // An entry someone made by hand is not the bootstrap's to remove.
    await registry.create(accessEntries, undefined, { apiVersion: 'iam.skiff.io/v1', kind: 'AccessEntry', metadata: { name: 'by-hand' }, spec: { principalArn: 'arn:aws:iam::123456789012:role/dev', groups: ['devs'] } });
    expect((await run(event('Delete', p))).Status).toBe('SUCCESS');
    expect(await admins()).toEqual([{ principalArn: 'arn:aws:iam::123456789012:role/dev', groups: ['devs'] }]);
    await registry.delete(accessEntries, undefined, 'by-hand', {});

    const bad = await run(withProps(event('Create', p), { AdminPrincipalArns: ['arn:aws:iam::123456789012:root'] }));
    expect(bad.Status).toBe('FAILED');
    expect(bad.Reason).toContain('AdminPrincipalArns: "arn:aws:iam::123456789012:root" is not an IAM user or role ARN');
    await run(event('Delete', p));
  });

  it('the service-account key: an RSA SecureString made once and kept, the issuer in the table, both signing and verifying; Delete removes it', async () => {
    const p = `${prefix}-sa`;
    const props = { ServiceAccountKeyParameter: `${p}/service-account-key`, ServiceAccountIssuer: 'https://d111.cloudfront.net' };
    const withKey = (type: 'Create' | 'Update' | 'Delete') => {
      const e = event(type, p);
      Object.assign(e.ResourceProperties, props);
      return e;
    };
    const created = await run(withKey('Create'));
    expect(created.Status, created.Reason).toBe('SUCCESS');
    const read = async () => (await ssm.send(new GetParameterCommand({ Name: props.ServiceAccountKeyParameter, WithDecryption: true }))).Parameter!;
    const key = await read();
    expect(key.Type).toBe('SecureString');
    expect(key.Value).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);
    expect(await readServiceAccountIssuer(backend)).toBe('https://d111.cloudfront.net');
    // What the deployed apiserver does with them (lambdas/apiserver/lambda.ts): sign, then verify.
    const tokens = new ServiceAccountTokens({ keys: async () => (await read()).Value!, issuer: await readServiceAccountIssuer(backend) });
    const { token } = await tokens.issue({ namespace: 'n', serviceAccount: { name: 'a', uid: 'u' }, audiences: tokens.audiences, expirationSeconds: 600 });
    expect((await tokens.verify(token)).claims.iss).toBe('https://d111.cloudfront.net');
    // A repeated Create and an Update keep the key (an operator's rotation is never undone).
    expect((await run(withKey('Create'))).Status).toBe('SUCCESS');
    expect((await run(withKey('Update'))).Status).toBe('SUCCESS');
    expect((await read()).Value).toBe(key.Value);
    expect((await run(withKey('Delete'))).Status).toBe('SUCCESS');
    expect(await exists(props.ServiceAccountKeyParameter)).toBe(false);
  });

  it('malformed properties answer FAILED (with a reason) and keep the physical id CloudFormation has', async () => {
    const e = event('Update', prefix);
    (e.ResourceProperties as any).AdminTokenParameter = 'not a parameter name';
    (e as any).ResourceProperties.BootstrapTokenParameter = undefined;
    const r = await run(e);
    expect(r.Status).toBe('FAILED');
    expect(r.Reason).toMatch(/invalid parameter name/);
    expect(r.PhysicalResourceId).toBe(`skiff-bootstrap:${prefix}`);
  });

  it('never lets a token out: not in any response, not in the logs', () => {
    expect(logged.length).toBeGreaterThan(0); // it does log (request type and parameter names)
    const everything = JSON.stringify(responses) + logged.join('\n');
    expect(everything.includes(first.bootstrap), 'bootstrap token leaked').toBe(false);
    expect(everything.includes(first.admin), 'admin token leaked').toBe(false);
    expect(/[A-Za-z0-9_-]{43}/.test(everything), 'something token-shaped leaked').toBe(false);
  });
});
