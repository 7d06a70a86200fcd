// Joining a deployed cluster: the apiserver's node-credential endpoint (what a bootstrap token may and
// may not do), the agent's join from SSM Parameter Store (moto's SSM) with its credential kept across
// restarts, and `skiff kubeconfig --stack` reading a stack's outputs (moto's CloudFormation) and SSM,
// then used by the machine's kubectl against a real apiserver.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import https from 'node:https';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudFormationClient, CreateStackCommand, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { dynamoTestEndpoint, type DynamoTestEndpoint } from './support/dynamodb.ts';
import { until } from './support/until.ts';
import { BOOTSTRAP_USER, NODE_CREDENTIAL_PATH, newToken, nodeUser, storeToken } from '../lambdas/apiserver/auth.ts';
import { joinCluster, readJoinInfo } from '../node-agent/bootstrap.ts';
import { KubeClient } from '../node-agent/kube-client.ts';
import { kubeconfigForStack } from '../lambdas/local/stack-kubeconfig.ts';
import { ApiError } from '../lambdas/machinery/status.ts';

let c: TestCluster;
// A moto server (it serves SSM and CloudFormation too); skips loudly without one, throws under CI=true.
const aws: DynamoTestEndpoint | undefined = await dynamoTestEndpoint();
let bootstrapToken: string;
const PREFIX = `/skiff/test-${process.pid}`;

beforeAll(async () => {
  c = await startTestCluster();
  bootstrapToken = newToken();
  await storeToken(c.backend, bootstrapToken, BOOTSTRAP_USER);
  if (aws) {
    // The code under test builds its SDK clients from the environment, as on an EC2 node.
    Object.assign(process.env, { AWS_ENDPOINT_URL: aws.endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });
  }
}, 60_000);

afterAll(async () => {
  await aws?.stop();
  await c?.destroy();
});

async function post(path: string, token: string, body: string): Promise<{ status: number; json: any }> {
  const kube = new KubeClient({ server: c.url, caCert: c.caCert, token });
  try {
    return { status: 201, json: await kube.create(path, JSON.parse(body)) };
  } catch (e) {
    if (e instanceof ApiError) return { status: e.code, json: e.status };
    throw e;
  } finally {
    kube.close();
  }
}

/** Raw request (malformed bodies, other methods). */
function raw(method: string, path: string, token: string, body?: string): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(path, c.url), { method, ca: c.caCert, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function whoIs(token: string): Promise<string | undefined> {
  const kube = new KubeClient({ server: c.url, caCert: c.caCert, token: c.token });
  try {
    const r: any = await kube.create('/apis/authentication.k8s.io/v1/tokenreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } });
    return r.status.authenticated ? `${r.status.user.username} ${r.status.user.groups.join(',')}` : undefined;
  } finally {
    kube.close();
  }
}

describe('node credential endpoint', () => {
  it('a bootstrap token buys a node credential: a token for system:node:<name>', async () => {
    const r = await post(NODE_CREDENTIAL_PATH, bootstrapToken, JSON.stringify({ nodeName: 'ip-10-0-1-5.ec2.internal' }));
    expect(r.status).toBe(201);
    expect(r.json.nodeName).toBe('ip-10-0-1-5.ec2.internal');
    expect(r.json.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await whoIs(r.json.token)).toBe('system:node:ip-10-0-1-5.ec2.internal system:nodes,system:authenticated');
  });

  it('a bootstrap token opens nothing else: 403 Status for reads, discovery and writes', async () => {
    const kube = new KubeClient({ server: c.url, caCert: c.caCert, token: bootstrapToken });
    try {
      for (const call of [() => kube.get('/api/v1/pods'), () => kube.get('/api'), () => kube.create('/api/v1/namespaces', { metadata: { name: 'boot' } })]) {
        const e = await call().then(() => undefined, (x: unknown) => x);
        expect(e).toBeInstanceOf(ApiError);
        expect((e as ApiError).code).toBe(403);
        expect((e as ApiError).status.message).toContain('bootstrap tokens may only request a node credential');
      }
    } finally {
      kube.close();
    }
    expect((await c.kubectl(['get', 'ns', 'boot'])).code).not.toBe(0);
  });

  it('bad requests get a 4xx Status and store nothing', async () => {
    expect((await raw('POST', NODE_CREDENTIAL_PATH, bootstrapToken, '{"nodeName":')).status).toBe(400);
    const invalid = await raw('POST', NODE_CREDENTIAL_PATH, bootstrapToken, JSON.stringify({ nodeName: 'Not_A_Name' }));
    expect(invalid.status).toBe(422);
    expect(invalid.json).toMatchObject({ kind: 'Status', reason: 'Invalid', details: { causes: [{ field: 'nodeName' }] } });
    expect((await raw('POST', NODE_CREDENTIAL_PATH, bootstrapToken, '{}')).status).toBe(422);
    expect((await raw('GET', NODE_CREDENTIAL_PATH, bootstrapToken)).status).toBe(405);
    expect((await raw('POST', NODE_CREDENTIAL_PATH, 'not-a-token', '{"nodeName":"x"}')).status).toBe(401);
    // A node's own credential cannot mint others (only bootstrap tokens and admins may).
    const nodeToken = newToken();
    await storeToken(c.backend, nodeToken, nodeUser('n1'));
    const fromNode = await raw('POST', NODE_CREDENTIAL_PATH, nodeToken, '{"nodeName":"n2"}');
    expect(fromNode.status).toBe(403);
    expect(fromNode.json.kind).toBe('Status');
  });
});

describe.skipIf(!aws)('joining from SSM Parameter Store (moto)', () => {
  it('reads api-url, ca and bootstrap-token, gets and keeps a node credential, and re-bootstraps when it is refused', async () => {
    if (!aws) throw new Error('no moto endpoint');
    const ssm = new SSMClient({});
    await ssm.send(new PutParameterCommand({ Name: `${PREFIX}/api-url`, Type: 'String', Value: c.url }));
    await ssm.send(new PutParameterCommand({ Name: `${PREFIX}/ca`, Type: 'String', Value: c.caCert }));
    await ssm.send(new PutParameterCommand({ Name: `${PREFIX}/bootstrap-token`, Type: 'SecureString', Value: bootstrapToken }));
    ssm.destroy();

    const info = await readJoinInfo(PREFIX);
    expect(info).toEqual({ server: c.url, caCert: c.caCert, bootstrapToken });
    const dataDir = join(c.dataDir, 'agent-join');
    const first = await joinCluster(info, 'joiner', dataDir);
    expect(await whoIs(first.token)).toBe('system:node:joiner system:nodes,system:authenticated');
    const file = join(dataDir, 'node-credential.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // The credential works for what a node does.
    const kube = new KubeClient(first);
    await kube.create('/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'joiner' } });
    kube.close();

    // A restarted agent keeps its credential.
    expect((await joinCluster(info, 'joiner', dataDir)).token).toBe(first.token);
    // One the apiserver refuses (say, the table was restored without it) is replaced.
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), token: 'revoked' }));
    const again = await joinCluster(info, 'joiner', dataDir);
    expect(again.token).not.toBe(first.token);
    expect(await whoIs(again.token)).toMatch(/^system:node:joiner /);

    // A wrong bootstrap token: a clear error naming the server.
    await expect(joinCluster({ ...info, bootstrapToken: 'wrong' }, 'other', join(c.dataDir, 'agent-other'))).rejects.toThrow(
      new RegExp(`could not obtain a node credential from ${c.url.replace(/[.]/g, '\\.')}.*Unauthorized`),
    );
    // Missing parameters: named.
    await expect(readJoinInfo('/skiff/nope')).rejects.toThrow(/SSM parameters missing: \/skiff\/nope\/api-url/);
  });

  it('skiff kubeconfig --stack: outputs + SSM admin token → a kubeconfig kubectl uses', async () => {
    if (!aws) throw new Error('no moto endpoint');
    const stackName = `skiff-kc-${process.pid}`;
    const clusterName = `kc-${process.pid}`;
    const adminToken = newToken();
    await storeToken(c.backend, adminToken, { username: 'stack-admin', groups: ['system:masters'] });
    const ssm = new SSMClient({});
    await ssm.send(new PutParameterCommand({ Name: `/skiff/${clusterName}/admin-token`, Type: 'SecureString', Value: adminToken }));
    await ssm.send(new PutParameterCommand({ Name: `/skiff/${clusterName}/ca`, Type: 'String', Value: c.caCert }));
    ssm.destroy();
    // A stand-in stack with the outputs a SkiffStack has (its resources are another test's business).
    const cfn = new CloudFormationClient({});
    await cfn.send(
      new CreateStackCommand({
        StackName: stackName,
        TemplateBody: JSON.stringify({
          Resources: { Marker: { Type: 'AWS::SSM::Parameter', Properties: { Name: `/skiff/${clusterName}/marker`, Type: 'String', Value: 'x' } } },
          Outputs: { ApiEndpoint: { Value: `${c.url}/` }, ClusterName: { Value: clusterName } },
        }),
      }),
    );
    await until('stack created', async () => (await cfn.send(new DescribeStacksCommand({ StackName: stackName }))).Stacks?.[0]?.StackStatus === 'CREATE_COMPLETE');
    cfn.destroy();

    const out = join(c.dataDir, 'stack.kubeconfig');
    writeFileSync(out, await kubeconfigForStack(stackName), { mode: 0o600 });
    const kubectl = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
        execFile('kubectl', ['--kubeconfig', out, ...args], { timeout: 30_000 }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr })),
      );
    const r = await kubectl(['get', 'ns', 'default', '-o', 'name']);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('namespace/default');
    expect((await kubectl(['config', 'current-context'])).stdout.trim()).toBe(clusterName);

    await expect(kubeconfigForStack('no-such-stack')).rejects.toThrow(/no-such-stack/);
  });
});
