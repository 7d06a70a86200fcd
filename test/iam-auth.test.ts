// Signing in with AWS IAM identities (apiserver/iam-auth.ts, kinds/iam/accessentry.ts, `skiff token`),
// against moto's STS (one moto server also serving DynamoDB): stock kubectl with an exec-plugin
// kubeconfig running `skiff token`, as `skiff kubeconfig --stack NAME --iam` writes it, on both storage
// backends; AccessEntries mapping an assumed role and an IAM user; refusals (no entry, another cluster's
// token, an expired token, a URL that is not STS: nothing sent) as 401s.
//
// moto does not check SigV4 signatures, so a token whose signed parts were changed after signing is
// accepted by moto's STS (AWS's refuses it); what the apiserver itself checks is tested here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { checkIamToken, encodeIamToken, entryKey, principalOf } from '../lambdas/apiserver/iam-auth.ts';
import { iamToken } from '../lambdas/local/iam-token.ts';
import { renderKubeconfig } from '../lambdas/local/kubeconfig.ts';
import { DynamoBackend, ensureTable } from '../lambdas/storage/dynamodb.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { dynamoTestEndpoint, uniqueTableName } from './support/dynamodb.ts';

const ddb = await dynamoTestEndpoint();
afterAll(() => ddb?.stop()); // once both backends' suites are done (its moto server outlived CI runs before)
const CLUSTER = 'iam-test';
const SKIFF = resolve('dist/skiff.mjs');
const creds = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'test' };

/** Temporary credentials of an assumed role, from moto's STS. */
async function assumeRole(roleArn: string, session: string) {
  const sts = new STSClient({ region: 'us-east-1', endpoint: ddb!.endpoint, credentials: creds });
  try {
    const c = (await sts.send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: session }))).Credentials!;
    return { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken! };
  } finally {
    sts.destroy();
  }
}

/** An IAM user with an access key, made in moto with boto3 (moto's own dependency, in .venv-moto). */
function iamUser(name: string) {
  const py = `import boto3,json,sys
iam=boto3.client('iam',endpoint_url=sys.argv[1],region_name='us-east-1',aws_access_key_id='test',aws_secret_access_key='test')
u=iam.create_user(UserName=sys.argv[2])['User']
k=iam.create_access_key(UserName=sys.argv[2])['AccessKey']
print(json.dumps({'arn':u['Arn'],'accessKeyId':k['AccessKeyId'],'secretAccessKey':k['SecretAccessKey']}))`;
  return JSON.parse(execFileSync(resolve('.venv-moto/bin/python'), ['-c', py, ddb!.endpoint, name], { encoding: 'utf8' }));
}

/** A kubeconfig whose user is the exec plugin `skiff token`, with these AWS credentials in its env. */
function iamKubeconfig(c: TestCluster, dir: string, name: string, aws: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }): string {
  const path = join(dir, `${name}.kubeconfig`);
  const env = [
    { name: 'AWS_ACCESS_KEY_ID', value: aws.accessKeyId },
    { name: 'AWS_SECRET_ACCESS_KEY', value: aws.secretAccessKey },
    ...(aws.sessionToken ? [{ name: 'AWS_SESSION_TOKEN', value: aws.sessionToken }] : []),
    { name: 'AWS_REGION', value: 'us-east-1' },
  ];
  writeFileSync(path, renderKubeconfig({ server: c.url, caCert: c.caCert, clusterName: CLUSTER, userName: name, exec: { command: process.execPath, args: [SKIFF, 'token', '--cluster-name', CLUSTER, '--sts-endpoint', ddb!.endpoint], env } }));
  return path;
}

/** kubectl, asynchronously: the apiserver runs in this process and must keep serving meanwhile. */
function kubectlAs(kubeconfig: string, ...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return kubectlIn(kubeconfig, undefined, ...args);
}
function kubectlIn(kubeconfig: string, input: string | undefined, ...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((ok) => {
    const p = spawn('kubectl', ['--kubeconfig', kubeconfig, ...args], { stdio: ['pipe', 'pipe', 'pipe'], timeout: 60_000 });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => ok({ code, out, err }));
    p.stdin.end(input ?? '');
  });
}

describe('IAM tokens: what the apiserver checks before asking STS', () => {
  const signed = (headers: Record<string, string>, url = 'https://sts.us-east-1.amazonaws.com/') =>
    encodeIamToken({
      url,
      body: 'Action=GetCallerIdentity&Version=2011-06-15',
      headers: {
        authorization: `AWS4-HMAC-SHA256 Credential=AKID/20261204/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date;x-k8s-aws-id, Signature=${'a'.repeat(64)}`,
        'x-amz-date': new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, ''),
        'x-k8s-aws-id': CLUSTER,
        ...headers,
      },
    });
  it('accepts a fresh token for this cluster at an AWS STS endpoint, forwarding only the signed headers', () => {
    const c = checkIamToken(signed({ 'x-evil': 'no' }), { clusterId: CLUSTER });
    expect(c.problem).toBeUndefined();
    expect(Object.keys(c.req!.headers).sort()).toEqual(['authorization', 'x-amz-date', 'x-k8s-aws-id']);
  });
  it('refuses another cluster, an old token, a host that is not STS, another action, a signature without the cluster id', () => {
    expect(checkIamToken(signed({ 'x-k8s-aws-id': 'other' }), { clusterId: CLUSTER }).problem).toBe('the token is for another cluster');
    expect(checkIamToken(signed({ 'x-amz-date': '20261101T000000Z' }), { clusterId: CLUSTER }).problem).toBe('the token has expired');
    for (const url of ['https://evil.example.com/', 'http://sts.amazonaws.com/', 'https://sts.amazonaws.com.evil.com/', 'https://169.254.169.254/', 'https://sts.amazonaws.com:8443/', 'https://sts.amazonaws.com/x']) {
      expect(checkIamToken(signed({}, url), { clusterId: CLUSTER }).problem, url).toBe(`the token's URL is not an STS endpoint`);
    }
    const other = JSON.parse(Buffer.from(signed({}).slice('skiff-aws-v1.'.length), 'base64url').toString());
    expect(checkIamToken(encodeIamToken({ ...other, body: 'Action=AssumeRole&Version=2011-06-15' }), { clusterId: CLUSTER }).problem).toBe('the token is not a GetCallerIdentity request');
    const unsigned = signed({ authorization: `AWS4-HMAC-SHA256 Credential=AKID/20261204/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'a'.repeat(64)}` });
    expect(checkIamToken(unsigned, { clusterId: CLUSTER }).problem).toBe(`the token's signature does not cover x-k8s-aws-id`);
    expect(checkIamToken('skiff-aws-v1.%%%', { clusterId: CLUSTER }).problem).toBe('the token does not decode');
  });
  it('names the principal an AccessEntry matches: a user is itself, an assumed role its role (path dropped)', () => {
    expect(principalOf('arn:aws:iam::123456789012:user/ops/bob')).toEqual({ principal: 'arn:aws:iam::123456789012:user/ops/bob' });
    expect(principalOf('arn:aws:sts::123456789012:assumed-role/dev/alice')).toEqual({ principal: 'arn:aws:iam::123456789012:role/dev', sessionName: 'alice' });
    expect(entryKey('arn:aws:iam::123456789012:role/team/dev')).toBe('arn:aws:iam::123456789012:role/dev');
    expect(principalOf('arn:aws:sts::123456789012:federated-user/x')).toBeUndefined();
  });
});

const backends = ['sqlite', 'dynamodb'] as const;
describe.skipIf(!ddb).each(backends)('IAM sign-in with stock kubectl (%s)', (kind) => {
  let c: TestCluster;
  let dir: string;
  let dynamo: DynamoBackend | undefined;
  const stsCalls: string[] = [];
  let trap: Server;
  let trapUrl: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'skiff-iam-'));
    if (kind === 'dynamodb') {
      const tableName = uniqueTableName('skiff-iam');
      await ensureTable(ddb!.client, tableName);
      dynamo = new DynamoBackend({ client: ddb!.newClient(), tableName });
    }
    c = await startTestCluster({ controllers: false, iam: { clusterId: CLUSTER, stsEndpoint: ddb!.endpoint }, ...(dynamo ? { backend: dynamo } : {}) });
    // A server that must never be called: the apiserver may only send tokens to STS.
    trap = createServer((req, res) => {
      stsCalls.push(req.url ?? '');
      res.end();
    });
    await new Promise<void>((ok) => trap.listen(0, '127.0.0.1', ok));
    trapUrl = `http://127.0.0.1:${(trap.address() as AddressInfo).port}`;
    writeFileSync(
      join(dir, 'entries.yaml'),
      `apiVersion: iam.skiff.io/v1
kind: AccessEntry
metadata: {name: dev-role}
spec: {principalArn: "arn:aws:iam::123456789012:role/team/dev", username: "dev:{{SessionName}}@{{AccountID}}", groups: [system:masters, devs]}
---
apiVersion: iam.skiff.io/v1
kind: AccessEntry
metadata: {name: ops-user}
spec: {principalArn: "arn:aws:iam::123456789012:user/ops-${kind}", groups: [system:masters]}
`,
    );
    const applied = await kubectlAs(c.kubeconfigPath, 'apply', '-f', join(dir, 'entries.yaml'));
    expect(applied.err).toBe('');
  }, 120_000);

  afterAll(async () => {
    await c?.close();
    await new Promise<void>((ok) => (trap ? trap.close(() => ok()) : ok()));
  });

  it('an assumed role signs in through the exec plugin as its entry names it', async () => {
    const kc = iamKubeconfig(c, dir, 'alice', await assumeRole('arn:aws:iam::123456789012:role/team/dev', 'alice'));
    const r = await kubectlAs(kc, 'get', 'namespaces', '-o', 'name');
    expect(r.err).toBe('');
    expect(r.out).toContain('namespace/default');
    // Who the apiserver thinks it is: a TokenReview of the same token, by the admin.
    const token = (await iamToken({ clusterId: CLUSTER, endpoint: ddb!.endpoint, credentials: await assumeRole('arn:aws:iam::123456789012:role/team/dev', 'carol') })).token;
    const review = JSON.parse(
      (await kubectlIn(c.kubeconfigPath, JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } }), 'create', '-o', 'json', '-f', '-')).out,
    );
    expect(review.status.authenticated).toBe(true);
    expect(review.status.user.username).toBe('dev:carol@123456789012');
    expect(review.status.user.groups).toEqual(['system:masters', 'devs', 'system:authenticated']);
    expect(review.status.user.uid).toMatch(/^aws-iam-authenticator:123456789012:AROA/);
  });

  it('an IAM user signs in by its user ARN', async () => {
    const u = iamUser(`ops-${kind}`);
    expect(u.arn).toBe(`arn:aws:iam::123456789012:user/ops-${kind}`);
    const r = await kubectlAs(iamKubeconfig(c, dir, 'ops', u), 'get', 'accessentries');
    expect(r.err).toBe('');
    expect(r.out).toMatch(/NAME\s+PRINCIPAL\s+USERNAME\s+GROUPS\s+AGE/);
    expect(r.out).toMatch(/dev-role\s+arn:aws:iam::123456789012:role\/team\/dev\s+dev:\{\{SessionName\}\}@\{\{AccountID\}\}\s+system:masters,devs/);
  });

  it('a principal without an AccessEntry, and a role whose entry was deleted, are 401 Unauthorized', async () => {
    const nobody = await kubectlAs(iamKubeconfig(c, dir, 'nobody', await assumeRole('arn:aws:iam::123456789012:role/other', 'x')), 'get', 'pods');
    expect(nobody.code).toBe(1);
    expect(nobody.err).toContain('error: You must be logged in to the server (Unauthorized)');
    // Deleting the entry ends the role's access within the entries' cache time (10 s per instance).
    const kc = iamKubeconfig(c, dir, 'dave', await assumeRole('arn:aws:iam::123456789012:role/team/dev', 'dave'));
    expect((await kubectlAs(kc, 'get', 'namespaces', '-o', 'name')).code).toBe(0);
    expect((await kubectlAs(c.kubeconfigPath, 'delete', 'accessentry', 'dev-role')).code).toBe(0);
    const deadline = Date.now() + 20_000;
    let r = await kubectlAs(kc, 'get', 'namespaces', '-o', 'name');
    while (r.code === 0 && Date.now() < deadline) {
      await new Promise((ok) => setTimeout(ok, 1000));
      r = await kubectlAs(kc, 'get', 'namespaces', '-o', 'name');
    }
    expect(r.err).toContain('error: You must be logged in to the server (Unauthorized)');
  }, 60_000);

  it('a token for another cluster, an expired one, and one aimed at another server are 401, and nothing reaches that server', async () => {
    const other = (await iamToken({ clusterId: 'other-cluster', endpoint: ddb!.endpoint, credentials: creds })).token;
    const decoded = JSON.parse(Buffer.from(other.slice('skiff-aws-v1.'.length), 'base64url').toString());
    const old = encodeIamToken({ ...decoded, headers: { ...decoded.headers, 'x-k8s-aws-id': CLUSTER, 'x-amz-date': '20200101T000000Z' } });
    const elsewhere = encodeIamToken({ ...decoded, url: `${trapUrl}/`, headers: { ...decoded.headers, 'x-k8s-aws-id': CLUSTER } });
    for (const token of [other, old, elsewhere, 'skiff-aws-v1.garbage']) {
      const kc = join(dir, 'raw.kubeconfig');
      writeFileSync(kc, renderKubeconfig({ server: c.url, caCert: c.caCert, token }));
      const r = await kubectlAs(kc, 'get', 'namespaces');
      expect(r.err, token.slice(0, 40)).toContain('error: You must be logged in to the server (Unauthorized)');
    }
    expect(stsCalls).toEqual([]);
  });

  it('an AccessEntry with a malformed ARN or an unknown template is refused with field errors', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, `apiVersion: iam.skiff.io/v1\nkind: AccessEntry\nmetadata: {name: bad}\nspec: {principalArn: "arn:aws:iam::12:root", username: "{{Nope}}"}\n`);
    const r = await kubectlAs(c.kubeconfigPath, 'apply', '-f', bad);
    // kubectl prints a 422 with several causes one per line.
    expect(r.err).toBe(
      'The AccessEntry "bad" is invalid: \n' +
        '* spec.principalArn: Invalid value: "arn:aws:iam::12:root": must be an IAM user or role ARN: arn:aws:iam::<12-digit account>:user/<name> or arn:aws:iam::<12-digit account>:role/<name>\n' +
        '* spec.username: Invalid value: "{{Nope}}": unknown template variable {{Nope}}: only {{AccountID}} and {{SessionName}}\n',
    );
  });
});
