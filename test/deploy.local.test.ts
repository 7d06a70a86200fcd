// `npm run deploy:local` against a moto server standing for an AWS account: cdklocal bootstraps and
// deploys SkiffStack (control plane only: moto cannot run nodes, the front door or the bootstrap custom
// resource, see test/support/moto-account.ts), then the test takes the DEPLOYED apiserver bundle from
// moto's Lambda, runs its handler in this process with the deployed function's environment, and drives it
// with Function URL events against the table the deploy created.

import { itemValue } from '../lambdas/storage/value-codec.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { CloudFormationClient, DescribeStackResourcesCommand, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DescribeTableCommand, DescribeTimeToLiveCommand, DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient, GetRecordsCommand, GetShardIteratorCommand, DescribeStreamCommand } from '@aws-sdk/client-dynamodb-streams';
import { GetFunctionCommand, LambdaClient, ListEventSourceMappingsCommand } from '@aws-sdk/client-lambda';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ADMIN_USER, newToken, storeToken } from '../lambdas/apiserver/auth.ts';
import { controllers } from '../lambdas/controllers/lambda.ts';
import { streamFilterPatterns } from '../lambdas/controllers/stream.ts';
import { installLocalLambdaRuntime } from '../lambdas/local/lambda-runtime.ts';
import { createScheduler } from '../lambdas/scheduler/scheduler.ts';
import { DynamoBackend } from '../lambdas/storage/dynamodb.ts';
import { MOTO_PYTHON, motoAccount } from './support/moto-account.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const STACK = 'SkiffStack';
const CLUSTER = `deploy-${process.pid}`;
const moto = await motoAccount();
const work = mkdtempSync(join(tmpdir(), `skiff-deploy-${process.pid}-`));

let cfn: CloudFormationClient;
let lambda: LambdaClient;
let ddb: DynamoDBClient;
let outputs: Record<string, string> = {};
let savedEnv: NodeJS.ProcessEnv | undefined;
let resources: Map<string, { type: string; physicalId: string }>;

beforeAll(async () => {
  if (!moto) return;
  cfn = new CloudFormationClient(moto.clientConfig);
  lambda = new LambdaClient(moto.clientConfig);
  ddb = new DynamoDBClient(moto.clientConfig);
  const toggles = ['skiff:nodes=false', 'skiff:frontDoor=false', 'skiff:bootstrap=false', `skiff:clusterName=${CLUSTER}`];
  const args = ['scripts/deploy-local.mjs', '--endpoint', moto.endpoint, '-o', join(work, 'cdk.out'), ...toggles.flatMap((t) => ['-c', t])];
  const { code, output } = await run(process.execPath, args);
  if (code !== 0) throw new Error(`npm run deploy:local failed (exit ${code}):\n${output.slice(-6000)}`);
  const stack = (await cfn.send(new DescribeStacksCommand({ StackName: STACK }))).Stacks![0]!;
  outputs = Object.fromEntries((stack.Outputs ?? []).map((o) => [o.OutputKey!, o.OutputValue!]));
  const rs = (await cfn.send(new DescribeStackResourcesCommand({ StackName: STACK }))).StackResources ?? [];
  resources = new Map(rs.map((r) => [r.LogicalResourceId!, { type: r.ResourceType!, physicalId: r.PhysicalResourceId! }]));
}, 240_000);

afterAll(async () => {
  if (savedEnv) process.env = savedEnv;
  rmSync(work, { recursive: true, force: true });
  await moto?.stop();
});

/** The physical id of the stack's one resource of `type` whose logical id starts with `prefix`. */
function physicalId(type: string, prefix: string): string {
  const hits = [...resources].filter(([id, r]) => r.type === type && id.startsWith(prefix));
  expect(hits.map(([id]) => id), `${type} ${prefix}*`).toHaveLength(1);
  return hits[0]![1].physicalId;
}

describe.skipIf(!moto)('npm run deploy:local against moto', () => {
  it('creates the stack with its outputs', async () => {
    const stack = (await cfn.send(new DescribeStacksCommand({ StackName: STACK }))).Stacks![0]!;
    expect(stack.StackStatus).toBe('CREATE_COMPLETE');
    expect(outputs.TableName).toBe(physicalId('AWS::DynamoDB::GlobalTable', 'ClusterTable'));
    // moto's URL for the apiserver's function URL (which moto itself cannot serve).
    expect(outputs.ApiEndpoint).toMatch(/^https:\/\/[0-9a-f]+\.lambda-url\.us-east-1\.on\.aws\/?$/);
    expect(outputs.ClusterName).toBe(CLUSTER);
  });

  it('creates the table with its stream (new and old images) and TTL', async () => {
    const t = (await ddb.send(new DescribeTableCommand({ TableName: outputs.TableName }))).Table!;
    expect(t.KeySchema).toEqual([
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ]);
    expect(t.BillingModeSummary?.BillingMode).toBe('PAY_PER_REQUEST');
    expect(t.StreamSpecification).toEqual({ StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' });
    const ttl = (await ddb.send(new DescribeTimeToLiveCommand({ TableName: outputs.TableName }))).TimeToLiveDescription;
    expect(ttl).toEqual({ TimeToLiveStatus: 'ENABLED', AttributeName: 'ttl' });
  });

  it('maps the table stream to the scheduler and the controller manager, filtered by kind', async () => {
    const streamArn = (await ddb.send(new DescribeTableCommand({ TableName: outputs.TableName }))).Table!.LatestStreamArn!;
    const mappings = (await lambda.send(new ListEventSourceMappingsCommand({ EventSourceArn: streamArn }))).EventSourceMappings ?? [];
    const byFunction = new Map(mappings.map((m) => [m.FunctionArn!.split(':').pop()!, m]));
    const expected = [
      [physicalId('AWS::Lambda::Function', 'ClusterScheduler'), streamFilterPatterns(createScheduler())],
      [physicalId('AWS::Lambda::Function', 'ClusterControllerManager'), streamFilterPatterns(...controllers)],
    ] as const;
    expect([...byFunction.keys()].sort()).toEqual(expected.map(([fn]) => fn).sort());
    for (const [fn, patterns] of expected) {
      const m = byFunction.get(fn)!;
      expect(m.FilterCriteria?.Filters?.map((f) => f.Pattern)).toEqual(patterns);
      expect(m.StartingPosition).toBe('LATEST');
      expect(m.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
      expect(m.BisectBatchOnFunctionError).toBe(true);
    }
  });

  it('the deployed apiserver handler creates and reads a namespace and a pod in the deployed table', async () => {
    const fnName = physicalId('AWS::Lambda::Function', 'ClusterApiServer');
    const handler = await importDeployedHandler(fnName);
    const token = newToken();
    await storeToken(new DynamoBackend({ client: ddb, tableName: outputs.TableName! }), token, ADMIN_USER);
    const call = (method: string, path: string, body?: unknown, auth = `Bearer ${token}`) =>
      invoke(handler, method, path, body, auth);

    expect((await call('GET', '/api/v1/namespaces', undefined, 'Bearer not-a-token')).status).toBe(401);
    const ns = await call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'smoke' } });
    expect(ns.status, JSON.stringify(ns.body)).toBe(201);
    // ServiceAccount admission wants the namespace's default account, which the controller manager's
    // stream function makes in a deployed cluster; no stream runs here, so it is made as that loop would.
    const sa = await call('POST', '/api/v1/namespaces/smoke/serviceaccounts', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } });
    expect(sa.status, JSON.stringify(sa.body)).toBe(201);
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web', namespace: 'smoke', labels: { app: 'web' } },
      spec: { containers: [{ name: 'web', image: 'skiff.local/pause:busybox' }] },
    };
    const created = await call('POST', '/api/v1/namespaces/smoke/pods', pod);
    expect(created.status, JSON.stringify(created.body)).toBe(201);

    const gotNs = await call('GET', '/api/v1/namespaces/smoke');
    expect(gotNs.status).toBe(200);
    expect(gotNs.body.metadata.name).toBe('smoke');
    const gotPod = await call('GET', '/api/v1/namespaces/smoke/pods/web');
    expect(gotPod.status).toBe(200);
    expect(gotPod.body.metadata.uid).toBe(created.body.metadata.uid);
    expect(gotPod.body.spec.containers[0].image).toBe('skiff.local/pause:busybox');
    const list = await call('GET', '/api/v1/namespaces/smoke/pods?labelSelector=app%3Dweb');
    expect(list.status).toBe(200);
    expect(list.body.kind).toBe('PodList');
    expect(list.body.items.map((p: any) => p.metadata.name)).toEqual(['web']);
    // The deployed apiserver reaches no node agent: pods/log says where it is served instead.
    const log = await call('GET', '/api/v1/namespaces/smoke/pods/web/log');
    expect(log.status).toBe(503);
    expect(log.body).toMatchObject({ kind: 'Status', reason: 'ServiceUnavailable' });
    expect(log.body.message).toContain('go through its front door');

    // The objects are items of the deployed table, as lambdas/storage/dynamodb.ts lays them out (values compressed).
    const item = async (pk: string, sk: string) =>
      (await ddb.send(new GetItemCommand({ TableName: outputs.TableName, Key: { pk: { S: pk }, sk: { S: sk } }, ConsistentRead: true }))).Item;
    const nsItem = await item('obj#/registry/core/namespaces/', 'smoke');
    expect(JSON.parse(itemValue(nsItem!)!).metadata.uid).toBe(ns.body.metadata.uid);
    const podItem = await item('obj#/registry/core/pods/', 'smoke/web');
    expect(JSON.parse(itemValue(podItem!)!).metadata.uid).toBe(created.body.metadata.uid);

    // ... and their writes are on the table's stream, where the event source mappings read them.
    const streams = new DynamoDBStreamsClient(moto!.clientConfig);
    const streamArn = (await ddb.send(new DescribeTableCommand({ TableName: outputs.TableName }))).Table!.LatestStreamArn!;
    const shard = (await streams.send(new DescribeStreamCommand({ StreamArn: streamArn }))).StreamDescription!.Shards![0]!;
    const it0 = await streams.send(new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shard.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }));
    const records = (await streams.send(new GetRecordsCommand({ ShardIterator: it0.ShardIterator! }))).Records ?? [];
    const inserted = records.filter((r) => r.eventName === 'INSERT').map((r) => `${r.dynamodb!.Keys!.pk!.S}${r.dynamodb!.Keys!.sk!.S}`);
    expect(inserted).toEqual(expect.arrayContaining(['obj#/registry/core/namespaces/smoke', 'obj#/registry/core/pods/smoke/web']));
    streams.destroy();
  });
});

type StreamingHandler = (event: APIGatewayProxyEventV2, stream: Writable, context: object) => Promise<void>;

/**
 * Downloads the function's code as deployed, unzips it next to a link to this repository's node_modules
 * (the bundle leaves @aws-sdk/* to the Lambda runtime, which provides them), sets the function's
 * environment with moto as the DynamoDB endpoint, and imports its handler.
 */
async function importDeployedHandler(functionName: string): Promise<StreamingHandler> {
  const fn = await lambda.send(new GetFunctionCommand({ FunctionName: functionName }));
  // moto's Code.Location names the S3 key the function was created from, under a host it does not serve;
  // the object is in the assets bucket of the CDK bootstrap stack.
  const key = new URL(fn.Code!.Location!).pathname.slice(1);
  const toolkit = (await cfn.send(new DescribeStacksCommand({ StackName: 'CDKToolkit' }))).Stacks![0]!;
  const bucket = toolkit.Outputs!.find((o) => o.OutputKey === 'BucketName')!.OutputValue!;
  const s3 = new S3Client({ ...moto!.clientConfig, forcePathStyle: true });
  const zip = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToByteArray());
  s3.destroy();
  expect(createHash('sha256').update(zip).digest('base64')).toBe(fn.Configuration!.CodeSha256);

  const dir = mkdtempSync(join(work, 'apiserver-'));
  writeFileSync(join(dir, 'code.zip'), zip);
  const { code, output } = await run(MOTO_PYTHON, ['-m', 'zipfile', '-e', join(dir, 'code.zip'), join(dir, 'task')]);
  if (code !== 0) throw new Error(`unzip failed: ${output}`);
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'), 'dir');

  const [file, exportName] = fn.Configuration!.Handler!.split('.') as [string, string];
  const vars = fn.Configuration!.Environment!.Variables!;
  expect(vars.SKIFF_TABLE).toBe(outputs.TableName);
  const { NODE_OPTIONS: _nodeOptions, ...env } = vars; // source maps are on in vitest already
  savedEnv ??= { ...process.env };
  Object.assign(process.env, env, {
    SKIFF_DYNAMODB_ENDPOINT: moto!.endpoint,
    AWS_REGION: moto!.region,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
  });
  installLocalLambdaRuntime(); // before the import: middy reads `awslambda` when the handler is built
  const mod = await import(pathToFileURL(join(dir, 'task', `${file}.mjs`)).href);
  expect(typeof mod[exportName]).toBe('function');
  return mod[exportName] as StreamingHandler;
}

/** One Function URL event through the handler; the response stream collects status, headers and body. */
async function invoke(handler: StreamingHandler, method: string, path: string, body: unknown, authorization: string) {
  const u = new URL(path, 'https://function-url');
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const event = {
    version: '2.0',
    routeKey: '$default',
    rawPath: u.pathname,
    rawQueryString: u.search.slice(1),
    headers: { authorization, accept: 'application/json', ...(payload ? { 'content-type': 'application/json' } : {}) },
    requestContext: { http: { method, path: u.pathname, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'deploy-test' }, timeEpoch: Date.now() },
    body: payload?.toString('base64'),
    isBase64Encoded: payload !== undefined,
  } as unknown as APIGatewayProxyEventV2;
  const chunks: Buffer[] = [];
  let status = 0;
  const stream = Object.assign(
    new Writable({
      write(chunk, _enc, cb) {
        chunks.push(Buffer.from(chunk));
        cb();
      },
    }),
    // What lambdas/local/lambda-runtime.ts's HttpResponseStream.from calls on a response.
    { writeHead: (code: number) => void (status = code), flushHeaders: () => {} },
  );
  await handler(event, stream, {});
  const text = Buffer.concat(chunks).toString();
  return { status, body: text ? JSON.parse(text) : undefined };
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolveRun, reject) => {
    const p = spawn(cmd, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    p.stdout.on('data', (d) => (output += d));
    p.stderr.on('data', (d) => (output += d));
    p.on('error', reject);
    p.on('close', (code) => resolveRun({ code, output }));
  });
}
