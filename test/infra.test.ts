// The CDK deployment (infra/): synthesizes SkiffStack and checks the template — the table's schema,
// the apiserver function and its Function URL, least-privilege IAM, the outputs — and the apiserver
// bundle NodejsFunction produced with esbuild (size, no better-sqlite3, the AWS SDK left external, and
// that it loads and exports the handler).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { App, RemovalPolicy } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { SkiffStack } from '../infra/skiff-stack.ts';

type Json = any;

const MAX_BUNDLE_BYTES = 1.5 * 1024 * 1024;

let outdir: string;
let template: Template;
let tableId: string;
let fnId: string;
let fn: Json;

function onlyResource(t: Template, type: string): [string, Json] {
  const found = Object.entries(t.findResources(type));
  expect(found, `${type} resources`).toHaveLength(1);
  return found[0]!;
}

beforeAll(() => {
  outdir = mkdtempSync(join(tmpdir(), 'skiff-cdk-'));
  const app = new App({ outdir });
  const stack = new SkiffStack(app, 'SkiffStack');
  template = Template.fromStack(stack);
  [tableId] = onlyResource(template, 'AWS::DynamoDB::GlobalTable');
  // Three functions: the apiserver, the scheduler and the controller manager.
  const fns = Object.entries(template.findResources('AWS::Lambda::Function'));
  expect(fns.map(([id]) => id.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual([
    'ClusterApiServer',
    'ClusterControllerManager',
    'ClusterScheduler',
  ]);
  [fnId, fn] = fns.find(([id]) => id.startsWith('ClusterApiServer'))!;
});

afterAll(() => {
  if (outdir) rmSync(outdir, { recursive: true, force: true });
});

describe('table', () => {
  it('has the storage layer schema: pk/sk strings, on-demand, NEW_AND_OLD_IMAGES stream, ttl, PITR', () => {
    template.hasResource('AWS::DynamoDB::GlobalTable', {
      Properties: {
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        AttributeDefinitions: Match.arrayEquals([
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
        ]),
        BillingMode: 'PAY_PER_REQUEST',
        StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
        TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
        Replicas: [
          Match.objectLike({
            PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
            DeletionProtectionEnabled: false,
          }),
        ],
        GlobalSecondaryIndexes: Match.absent(),
        TableName: Match.absent(),
      },
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
  });

  it('takes tableName, deletionProtection and removalPolicy from the construct props', () => {
    const app = new App({ outdir: join(outdir, 'props') });
    const stack = new SkiffStack(app, 'Props', {
      cluster: { tableName: 'my-skiff', deletionProtection: true, removalPolicy: RemovalPolicy.DESTROY },
    });
    Template.fromStack(stack).hasResource('AWS::DynamoDB::GlobalTable', {
      Properties: Match.objectLike({
        TableName: 'my-skiff',
        Replicas: [Match.objectLike({ DeletionProtectionEnabled: true })],
      }),
      DeletionPolicy: 'Delete',
    });
  });
});

describe('apiserver function', () => {
  it('is an arm64 Node.js (>= 22) function, 512 MB, 15 minutes, with SKIFF_TABLE naming the table', () => {
    const p = fn.Properties;
    expect(p.Architectures).toEqual(['arm64']);
    const m = /^nodejs(\d+)\.x$/.exec(p.Runtime);
    expect(m, `runtime ${p.Runtime}`).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(22);
    expect(p.Handler).toBe('index.handler');
    expect(p.MemorySize).toBe(512);
    expect(p.Timeout).toBe(900);
    expect(p.Environment.Variables.SKIFF_TABLE).toEqual({ Ref: tableId });
    // Watches must end before the function times out.
    expect(Number(p.Environment.Variables.SKIFF_MAX_WATCH_SECONDS)).toBeLessThan(p.Timeout);
  });

  it('has a response-streaming Function URL without IAM auth or CORS', () => {
    template.hasResourceProperties('AWS::Lambda::Url', {
      TargetFunctionArn: { 'Fn::GetAtt': [fnId, 'Arn'] },
      InvokeMode: 'RESPONSE_STREAM',
      AuthType: 'NONE',
      Cors: Match.absent(),
    });
  });
});

describe('IAM', () => {
  // Every resource the role's policies name, by the statement that names it.
  function roleStatements(): Json[] {
    const roleId = fn.Properties.Role['Fn::GetAtt'][0] as string;
    const role = template.toJSON().Resources[roleId];
    expect(role.Type).toBe('AWS::IAM::Role');
    expect(role.Properties.ManagedPolicyArns, 'no managed policies (AWSLambdaBasicExecutionRole is on "*")').toBeUndefined();
    const inline: Json[] = (role.Properties.Policies ?? []).flatMap((p: Json) => p.PolicyDocument.Statement);
    const attached = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((p: Json) => p.Properties.Roles.some((r: Json) => r.Ref === roleId))
      .flatMap((p: Json) => p.Properties.PolicyDocument.Statement);
    const all = [...inline, ...attached];
    expect(all.length).toBeGreaterThan(0);
    return all;
  }
  const list = <T>(x: T | T[]): T[] => (Array.isArray(x) ? x : [x]);

  /** The table's ARN, or the table's ARN + "/index/*" or "/stream/*". */
  function isTableResource(r: Json): boolean {
    const tableArn = { 'Fn::GetAtt': [tableId, 'Arn'] };
    if (JSON.stringify(r) === JSON.stringify(tableArn)) return true;
    if (JSON.stringify(r) === JSON.stringify({ 'Fn::GetAtt': [tableId, 'StreamArn'] })) return true;
    const parts = r?.['Fn::Join']?.[1];
    return (
      Array.isArray(parts) &&
      parts.length === 2 &&
      JSON.stringify(parts[0]) === JSON.stringify(tableArn) &&
      (parts[1] === '/index/*' || parts[1] === '/stream/*')
    );
  }

  it('grants dynamodb actions only on the table, never on "*" and never dynamodb:*', () => {
    const dynamo = roleStatements().filter((s) => list(s.Action).some((a: string) => a.startsWith('dynamodb:')));
    expect(dynamo.length).toBeGreaterThan(0);
    const actions = new Set<string>();
    for (const s of dynamo) {
      expect(s.Effect).toBe('Allow');
      for (const a of list<string>(s.Action)) {
        expect(a).not.toBe('dynamodb:*');
        expect(a.startsWith('dynamodb:'), `${a} shares a statement with dynamodb actions`).toBe(true);
        actions.add(a);
      }
      for (const r of list(s.Resource)) {
        expect(r).not.toBe('*');
        expect(isTableResource(r), `dynamodb resource ${JSON.stringify(r)}`).toBe(true);
      }
    }
    // What DynamoBackend needs: consistent reads, queries and TransactWriteItems (authorized per item as
    // ConditionCheckItem / PutItem / UpdateItem / DeleteItem).
    for (const a of ['GetItem', 'Query', 'ConditionCheckItem', 'PutItem', 'UpdateItem', 'DeleteItem']) {
      expect(actions, `dynamodb:${a}`).toContain(`dynamodb:${a}`);
    }
    // Data access only: the function cannot change or delete the table.
    for (const a of actions) expect(a).not.toMatch(/^dynamodb:(DeleteTable|UpdateTable|CreateTable|\w*TimeToLive)$/);
  });

  it('names no "*" resource and no wildcard action anywhere; the rest is writing its own log group', () => {
    const logGroups = [fn.Properties.LoggingConfig?.LogGroup?.Ref as string];
    expect(Object.keys(template.findResources('AWS::Logs::LogGroup'))).toContain(logGroups[0]);
    for (const s of roleStatements()) {
      for (const a of list<string>(s.Action)) expect(a).not.toMatch(/\*$/);
      for (const r of list(s.Resource)) {
        expect(r).not.toBe('*');
        const onLogGroup = JSON.stringify(r) === JSON.stringify({ 'Fn::GetAtt': [logGroups[0], 'Arn'] });
        expect(onLogGroup || isTableResource(r), `resource ${JSON.stringify(r)}`).toBe(true);
        if (onLogGroup) expect(list(s.Action).sort()).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
      }
    }
  });
});

describe('control loops', () => {
  const mappings = () => Object.values(template.findResources('AWS::Lambda::EventSourceMapping')) as Json[];

  it('the scheduler and the controller manager read the table stream, filtered to their kinds, with partial batch failures', () => {
    const m = mappings();
    expect(m).toHaveLength(2);
    for (const e of m) {
      const p = e.Properties;
      expect(p.EventSourceArn).toEqual({ 'Fn::GetAtt': [tableId, 'StreamArn'] });
      expect(p.BisectBatchOnFunctionError).toBe(true);
      expect(p.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
      expect(p.MaximumBatchingWindowInSeconds).toBe(1);
      expect(p.DestinationConfig.OnFailure.Destination).toBeDefined();
      expect(p.FilterCriteria.Filters).toHaveLength(1);
    }
    const pks = (fnPrefix: string) => {
      const e = m.find((x) => x.Properties.FunctionName.Ref.startsWith(fnPrefix))!;
      return JSON.parse(e.Properties.FilterCriteria.Filters[0].Pattern).dynamodb.Keys.pk.S as string[];
    };
    expect(pks('ClusterScheduler').sort()).toEqual(['obj#/registry/coordination.k8s.io/leases/', 'obj#/registry/core/nodes/', 'obj#/registry/core/pods/']);
    expect(pks('ClusterControllerManager')).toEqual(
      expect.arrayContaining(['obj#/registry/core/namespaces/', 'obj#/registry/core/replicationcontrollers/', 'obj#/registry/core/services/', 'obj#/registry/core/pods/']),
    );
  });

  it('a rule resyncs both every minute', () => {
    const rules = Object.values(template.findResources('AWS::Events::Rule')) as Json[];
    expect(rules).toHaveLength(1);
    expect(rules[0].Properties.ScheduleExpression).toBe('rate(1 minute)');
    const targets = rules[0].Properties.Targets.map((t: Json) => t.Arn['Fn::GetAtt'][0] as string).sort();
    expect(targets.map((t: string) => t.replace(/[0-9A-F]{8}$/, ''))).toEqual(['ClusterControllerManager', 'ClusterScheduler']);
  });
});

describe('outputs', () => {
  it('outputs the API endpoint (the Function URL) and the table name', () => {
    const [urlId] = onlyResource(template, 'AWS::Lambda::Url');
    template.hasOutput('ApiEndpoint', { Value: { 'Fn::GetAtt': [urlId, 'FunctionUrl'] } });
    template.hasOutput('TableName', { Value: { Ref: tableId } });
  });
});

describe('apiserver bundle', () => {
  function assetDir(): string {
    const key: string = fn.Properties.Code.S3Key;
    expect(key).toMatch(/^[0-9a-f]{64}\.zip$/);
    const dir = join(outdir, `asset.${key.slice(0, -'.zip'.length)}`);
    expect(existsSync(dir), dir).toBe(true);
    return dir;
  }

  it('is an ESM bundle under 1.5 MB without better-sqlite3, the AWS SDK left to the runtime', () => {
    const file = join(assetDir(), 'index.mjs');
    const size = statSync(file).size;
    console.log(`apiserver bundle: ${size} bytes (${(size / 1024).toFixed(1)} KiB)`);
    expect(size).toBeGreaterThan(100 * 1024); // really the apiserver, not an empty stub
    expect(size).toBeLessThan(MAX_BUNDLE_BYTES);
    const code = readFileSync(file, 'utf8');
    // (booleans, not toContain: a failure would otherwise print the whole bundle)
    expect(/better[-_]sqlite3/.test(code), 'the bundle mentions better-sqlite3').toBe(false);
    expect(code.startsWith("import { createRequire as __skiffCreateRequire } from 'node:module';"), 'createRequire banner').toBe(true);
    expect(/from\s*["']@aws-sdk\/client-dynamodb["']/.test(code), 'the AWS SDK is imported, not inlined').toBe(true);
    expect(existsSync(`${file}.map`)).toBe(true);
  });

  it('loads in Node and exports the handler', () => {
    const dir = assetDir();
    // The SDK is external: let the bundle resolve it from the repository's node_modules.
    symlinkSync(resolve('node_modules'), join(outdir, 'node_modules'), 'dir');
    const script = `
      globalThis.awslambda = { streamifyResponse: (f) => f, HttpResponseStream: { from: (s) => s } };
      const m = await import(${JSON.stringify(join(dir, 'index.mjs'))});
      process.stdout.write(typeof m.handler);`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(out).toBe('function');
  });
});
