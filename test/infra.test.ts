// The CDK deployment (infra/): synthesizes SkiffStack and checks the template — the table's schema,
// the apiserver function and its Function URL, least-privilege IAM across the whole template, the
// CloudFront front door's routing, the nodes (VPC, launch template, user data, security groups, the
// route controller's EC2 grants), the bootstrap parameters (no token ever in the template), alarms,
// the props toggles and app.ts's context keys, the outputs — and the apiserver bundle NodejsFunction
// produced with esbuild (size, no better-sqlite3, the AWS SDK left external, and that it loads).
//
// The nodes ship dist/node/ (npm run build): built here first when missing.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { App, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { BUNDLING_STACKS } from 'aws-cdk-lib/cx-api';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { CachePolicy, OriginRequestPolicy } from 'aws-cdk-lib/aws-cloudfront';
import { SkiffStack, type SkiffStackProps } from '../infra/skiff-stack.ts';
import { STREAM_PATH_PATTERNS } from '../infra/front-door.ts';
import { nodeQueuePrefix } from '../lambdas/controllers/node-notifier.ts';
import {
  ALARMS,
  CURRENT_AGENT,
  GUARD_LARGEST_OBJECT_BYTES,
  GUARD_MAX_OBJECTS_PER_NAMESPACE,
  MONTH_SECONDS,
  PRICES,
  SCENARIOS,
  guardCost,
  monthlyBill,
  LOG_BYTES_PER_INVOCATION,
} from '../infra/cost-model.ts';
import { MAX_VALUE_BYTES as DYNAMO_MAX_VALUE_BYTES } from '../lambdas/storage/dynamodb.ts';
import { WRITE_ALARM_UNITS_PER_5_MINUTES } from '../infra/skiff-cluster.ts';
import { DEFAULT_EVENT_TTL_SECONDS, DEFAULT_MAX_OBJECTS_PER_NAMESPACE, EVENT_TTL_ENV, MAX_OBJECTS_ENV } from '../lambdas/apiserver/registry.ts';
import { AGENT_BUNDLE, AGENT_BUNDLE_DIR, agentBundleDir } from '../infra/nodes.ts';

type Json = any;

// 1.75 MB since issue #15 (RBAC, the Node authorizer, admission webhooks and policies, service-account JWTs with jose,
// IAM sign-in, the audit log): 1.57 MB measured then. Cold start is what the limit guards (bench:coldstart).
// 1.8 MB since issue #17 (`kubectl top` deployed, node-usage.ts): 1.749 MB measured before it, 1.754 MB with it.
// 2.1 MB since 2026-12-07 (fifteenth session): user regexes run on RE2 (re2js, 155 KiB minified) so that a
// CRD pattern cannot block the apiserver: 1,817 KiB before, 1,972 KiB with it; importing re2js alone takes
// ~15 ms, and the apiserver's whole import went from 230 to 246 ms (p50 of three noisy bench:coldstart runs each).
const MAX_BUNDLE_BYTES = 2.1 * 1024 * 1024;

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

/** The region the test stacks name: Lambda@Edge functions live there, so the front door stays in the stack. */
const EDGE_ENV = { region: 'us-east-1' };
let synthCount = 0;
/** A SkiffStack in an app of its own (each in its own outdir under the suite's). */
function synth(props: SkiffStackProps = {}, id = 'SkiffStack'): { stack: SkiffStack; template: Template; json: Json } {
  // Only the suite's first synth bundles the functions (the 'apiserver bundle' tests read its assets): the
  // others check templates, and bundling five functions with esbuild was most of each synth's time.
  const context = ++synthCount === 1 ? {} : { [BUNDLING_STACKS]: [] };
  const app = new App({ outdir: join(outdir, `app${synthCount}`), context });
  const stack = new SkiffStack(app, id, { env: EDGE_ENV, ...props });
  const t = Template.fromStack(stack);
  return { stack, template: t, json: t.toJSON() };
}
const stripHash = (id: string) => id.replace(/[0-9A-F]{8}$/, '');
const list = <T>(x: T | T[]): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);
const ofType = (json: Json, type: string): [string, Json][] => Object.entries(json.Resources).filter(([, r]: [string, Json]) => r.Type === type) as [string, Json][];

/** Every policy statement in the template (identity policies, inline role policies, resource policies). */
function allStatements(json: Json): { where: string; s: Json }[] {
  const out: { where: string; s: Json }[] = [];
  for (const [id, r] of Object.entries(json.Resources) as [string, Json][]) {
    const docs: Json[] = [];
    if (r.Properties?.PolicyDocument) docs.push(r.Properties.PolicyDocument);
    for (const p of r.Properties?.Policies ?? []) docs.push(p.PolicyDocument);
    for (const d of docs) for (const s of list(d.Statement)) out.push({ where: id, s });
  }
  return out;
}

/** Statements granted to a role (inline and attached AWS::IAM::Policy). */
function roleStatements(json: Json, roleId: string): Json[] {
  const role = json.Resources[roleId];
  expect(role?.Type).toBe('AWS::IAM::Role');
  const inline: Json[] = (role.Properties.Policies ?? []).flatMap((p: Json) => list(p.PolicyDocument.Statement));
  const attached = ofType(json, 'AWS::IAM::Policy')
    .filter(([, p]) => p.Properties.Roles.some((r: Json) => r.Ref === roleId))
    .flatMap(([, p]) => list(p.Properties.PolicyDocument.Statement));
  return [...inline, ...attached];
}

/** A CloudFormation value with its intrinsics flattened to text: Fn::Join'd, Refs as ${id}. */
function flat(v: Json): string {
  if (typeof v === 'string') return v;
  if (v?.Ref) return `\${${v.Ref}}`;
  if (v?.['Fn::GetAtt']) return `\${${v['Fn::GetAtt'].join('.')}}`;
  if (v?.['Fn::Sub']) return String(v['Fn::Sub']);
  if (v?.['Fn::Base64']) return flat(v['Fn::Base64']);
  if (v?.['Fn::Join']) return v['Fn::Join'][1].map(flat).join(v['Fn::Join'][0]);
  return JSON.stringify(v);
}

beforeAll(() => {
  outdir = mkdtempSync(join(tmpdir(), 'skiff-cdk-'));
  // The nodes' asset: the agent bundle (scripts/build.mjs).
  if (!existsSync(join(AGENT_BUNDLE_DIR, AGENT_BUNDLE))) {
    execFileSync('npm', ['run', 'build', '--silent'], { stdio: 'inherit' });
  }
  ({ template } = synth());
  [tableId] = onlyResource(template, 'AWS::DynamoDB::GlobalTable');
  // The apiserver, the scheduler, the controller manager, the bootstrap custom resource's function, the
  // front door's stream router, the webhook caller, and CDK's AwsCustomResource provider (the prefix-list lookup).
  const fns = Object.entries(template.findResources('AWS::Lambda::Function'));
  expect(fns.map(([id]) => stripHash(id)).sort()).toEqual([
    'AWS679f53fac002430cb0da5b7982bd2287',
    'ClusterApiServer',
    'ClusterBootstrapFunction',
    'ClusterControllerManager',
    'ClusterFrontDoorStreamRouterFn',
    'ClusterScheduler',
    'ClusterWebhookCaller',
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
    const { template: t } = synth({ cluster: { tableName: 'my-skiff', deletionProtection: true, removalPolicy: RemovalPolicy.DESTROY } }, 'Props');
    t.hasResource('AWS::DynamoDB::GlobalTable', {
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
    // A quiet watch sends a newline well inside the front door's origin read timeout.
    const [, dist] = onlyResource(template, 'AWS::CloudFront::Distribution');
    const readTimeout = dist.Properties.DistributionConfig.Origins[0].CustomOriginConfig.OriginReadTimeout;
    expect(Number(p.Environment.Variables.SKIFF_WATCH_KEEPALIVE_SECONDS)).toBeGreaterThan(0);
    expect(Number(p.Environment.Variables.SKIFF_WATCH_KEEPALIVE_SECONDS)).toBeLessThanOrEqual(readTimeout / 2);
  });

  it("the cluster's functions log as JSON without Lambda's START/END/REPORT lines (the cost model counts none)", () => {
    // The functions invoked by the cluster's traffic (one-off deploy-time custom resources aside).
    const fns = Object.entries(template.findResources('AWS::Lambda::Function')).filter(([id]) => /^Cluster(ApiServer|Scheduler|ControllerManager|WebhookCaller)/.test(id)).map(([, f]) => f);
    expect(fns).toHaveLength(4);
    for (const f of fns as Json[]) expect(f.Properties.LoggingConfig).toMatchObject({ LogFormat: 'JSON', SystemLogLevel: 'WARN', ApplicationLogLevel: 'INFO' });
    expect(LOG_BYTES_PER_INVOCATION).toBe(0);
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
  function apiRoleStatements(): Json[] {
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
    const dynamo = apiRoleStatements().filter((s) => list(s.Action).some((a: string) => a.startsWith('dynamodb:')));
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

  it('names no "*" resource and no wildcard action anywhere; the rest is writing its own log group and the audit log, reading the service-account key, and invoking the webhook caller', () => {
    const logGroups = [fn.Properties.LoggingConfig?.LogGroup?.Ref as string, auditLogGroupId()];
    expect(Object.keys(template.findResources('AWS::Logs::LogGroup'))).toContain(logGroups[0]);
    const saKeyArn = `arn:\${AWS::Partition}:ssm:us-east-1:\${AWS::AccountId}:parameter/skiff/SkiffStack/service-account-key`;
    const [callerId] = Object.entries(template.findResources('AWS::Lambda::Function')).find(([id]) => id.startsWith('ClusterWebhookCaller'))!;
    let readsKey = 0;
    let invokes = 0;
    let sendsToNodes = 0;
    for (const s of apiRoleStatements()) {
      for (const a of list<string>(s.Action)) expect(a).not.toMatch(/\*$/);
      for (const r of list(s.Resource)) {
        expect(r).not.toBe('*');
        const onLogGroup = logGroups.some((g) => JSON.stringify(r) === JSON.stringify({ 'Fn::GetAtt': [g, 'Arn'] }));
        const onKey = flat(r) === saKeyArn;
        const onCaller = JSON.stringify(r) === JSON.stringify({ 'Fn::GetAtt': [callerId, 'Arn'] });
        // `kubectl top`: it tells nodes to report usage through their push queues, and may do nothing else there.
        if (new RegExp(`:sqs:.*:${nodeQueuePrefix('SkiffStack')}\\*$`).test(flat(r))) {
          expect(list(s.Action).sort()).toEqual(['sqs:GetQueueUrl', 'sqs:SendMessage']);
          sendsToNodes++;
          continue;
        }
        if (onCaller) {
          expect(list(s.Action)).toEqual(['lambda:InvokeFunction']);
          invokes++;
          continue;
        }
        expect(onLogGroup || onKey || isTableResource(r), `resource ${JSON.stringify(r)}`).toBe(true);
        if (onLogGroup) expect(list(s.Action).sort()).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
        if (onKey) readsKey++;
      }
      // SSM: GetParameter of the service-account key bundle, one parameter, nothing else (never a token).
      if (list<string>(s.Action).some((a) => a.startsWith('ssm:'))) {
        expect(list(s.Action)).toEqual(['ssm:GetParameter']);
        expect(list(s.Resource).map(flat)).toEqual([saKeyArn]);
      }
    }
    expect(readsKey).toBe(1);
    expect(invokes).toBe(1);
    expect(sendsToNodes).toBe(1);
    expect(fn.Properties.Environment.Variables.SKIFF_SA_KEY_PARAMETER).toBe('/skiff/SkiffStack/service-account-key');
  });
});

describe('webhook caller', () => {
  it('runs in the node subnets with a security group the nodes admit TCP from; no table, no key; the apiserver names it', () => {
    const resources = template.toJSON().Resources;
    const [callerId, caller] = Object.entries(template.findResources('AWS::Lambda::Function')).find(([id]) => id.startsWith('ClusterWebhookCaller'))! as [string, Json];
    expect(fn.Properties.Environment.Variables.SKIFF_WEBHOOK_CALLER).toEqual({ Ref: callerId });
    const vpc = caller.Properties.VpcConfig;
    expect(vpc.SubnetIds.length).toBeGreaterThan(0);
    expect(vpc.SecurityGroupIds).toHaveLength(1);
    const sgId = vpc.SecurityGroupIds[0]['Fn::GetAtt'][0];
    expect(resources[sgId].Type).toBe('AWS::EC2::SecurityGroup');
    // The nodes admit TCP (any port: the webhook pod's) from it.
    const ingress = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress')).filter(
      (r: Json) => JSON.stringify(r.Properties.SourceSecurityGroupId) === JSON.stringify({ 'Fn::GetAtt': [sgId, 'GroupId'] }),
    ) as Json[];
    expect(ingress).toHaveLength(1);
    expect(ingress[0].Properties).toMatchObject({ IpProtocol: 'tcp', FromPort: 0, ToPort: 65535 });
    expect(resources[ingress[0].Properties.GroupId['Fn::GetAtt'][0]].Properties.GroupDescription).toBe('Skiff nodes');
    // Its role reads nothing of the cluster: no table, no parameter.
    const roleId = caller.Properties.Role['Fn::GetAtt'][0];
    const statements = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((p: Json) => p.Properties.Roles.some((r: Json) => r.Ref === roleId))
      .flatMap((p: Json) => p.Properties.PolicyDocument.Statement);
    // Logs, and what Lambda needs to put it in the VPC (network interfaces: EC2 has no narrower resource).
    for (const st of statements) {
      for (const a of list<string>(st.Action)) expect(a).toMatch(/^(logs:(CreateLogStream|PutLogEvents)|ec2:(Create|Describe|Delete)NetworkInterfaces?|ec2:DescribeSubnets|ec2:(Assign|Unassign)PrivateIpAddresses)$/);
    }
    expect(JSON.stringify(statements)).not.toContain(tableId);
  });
});

/** The audit log's group: the one log group no function logs to. */
function auditLogGroupId(): string {
  const functionGroups = Object.values(template.findResources('AWS::Lambda::Function')).map((f: Json) => f.Properties.LoggingConfig?.LogGroup?.Ref);
  const ids = Object.keys(template.findResources('AWS::Logs::LogGroup')).filter((id) => !functionGroups.includes(id) && id.includes('AuditLogs'));
  expect(ids).toHaveLength(1);
  return ids[0]!;
}

describe('audit log', () => {
  it('has a log group of its own, kept with the data, named to the apiserver; only the apiserver may write it', () => {
    const id = auditLogGroupId();
    const group = template.toJSON().Resources[id];
    expect(group.Properties.RetentionInDays).toBe(365);
    expect(group.DeletionPolicy).toBe('Retain');
    expect(fn.Properties.Environment.Variables.SKIFF_AUDIT_LOG_GROUP).toEqual({ Ref: id });
    // No policy given: the function's default (audit.ts DEFAULT_AUDIT_POLICY), nothing in the environment.
    expect(fn.Properties.Environment.Variables.SKIFF_AUDIT_POLICY).toBeUndefined();
    const writers = Object.values(template.findResources('AWS::IAM::Policy')).filter((p: Json) =>
      p.Properties.PolicyDocument.Statement.some((st: Json) => list(st.Resource).some((r) => JSON.stringify(r) === JSON.stringify({ 'Fn::GetAtt': [id, 'Arn'] }))),
    ) as Json[];
    expect(writers).toHaveLength(1);
    expect(writers[0].Properties.Roles).toEqual([{ Ref: fn.Properties.Role['Fn::GetAtt'][0] }]);
    const st = writers[0].Properties.PolicyDocument.Statement.filter((x: Json) => list(x.Resource).some((r) => JSON.stringify(r).includes(id)));
    expect(st.flatMap((x: Json) => list<string>(x.Action)).sort()).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
  });

  it('takes a policy (checked at synth), or none at all', () => {
    const policy = { apiVersion: 'audit.k8s.io/v1', kind: 'Policy', rules: [{ level: 'RequestResponse' as const }] };
    const withPolicy = synth({ cluster: { auditPolicy: policy, nodes: false, bootstrap: false, frontDoor: false } });
    const [, f] = Object.entries(withPolicy.template.findResources('AWS::Lambda::Function')).find(([id]) => id.includes('ApiServer'))! as [string, Json];
    expect(JSON.parse(f.Properties.Environment.Variables.SKIFF_AUDIT_POLICY)).toEqual(policy);
    expect(() => synth({ cluster: { auditPolicy: { ...policy, rules: [{ level: 'All' as any }] }, nodes: false, bootstrap: false, frontDoor: false } })).toThrow(
      'SkiffCluster: auditPolicy: rules[0].level: Unsupported value: "All"',
    );
    const none = synth({ cluster: { auditPolicy: false, nodes: false, bootstrap: false, frontDoor: false } });
    expect(Object.keys(none.template.findResources('AWS::Logs::LogGroup')).some((k) => k.includes('AuditLogs'))).toBe(false);
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
    }
    const patterns = (fnPrefix: string) => {
      const e = m.find((x) => x.Properties.FunctionName.Ref.startsWith(fnPrefix))!;
      return e.Properties.FilterCriteria.Filters.map((f: Json) => JSON.parse(f.Pattern).dynamodb.Keys);
    };
    const pks = (fnPrefix: string) => patterns(fnPrefix)[0].pk.S as string[];
    // Leases pass only as the scheduler's reservations: node heartbeats wake no function.
    const leaseOnly = { pk: { S: ['obj#/registry/coordination.k8s.io/leases/'] }, sk: { S: [{ prefix: 'kube-node-lease/skiff-alloc-' }] } };
    expect(patterns('ClusterScheduler')).toEqual([{ pk: { S: ['obj#/registry/core/pods/', 'obj#/registry/core/nodes/'] } }, leaseOnly]);
    expect(patterns('ClusterControllerManager')).toHaveLength(2);
    expect(patterns('ClusterControllerManager')[1]).toEqual(leaseOnly);
    expect(pks('ClusterControllerManager')).toEqual(
      expect.arrayContaining(['obj#/registry/core/namespaces/', 'obj#/registry/core/replicationcontrollers/', 'obj#/registry/core/services/', 'obj#/registry/core/pods/']),
    );
    // The endpoints controller's own slice writes wake nothing (the garbage collector, which would pass
    // them, acts on slices through their Service's events).
    expect(pks('ClusterControllerManager')).toContain('obj#/registry/core/endpoints/');
    expect(pks('ClusterControllerManager')).not.toContain('obj#/registry/discovery.k8s.io/endpointslices/');
  });

  it('a rule resyncs both every 5 minutes (a prop)', () => {
    const rules = (Object.values(template.findResources('AWS::Events::Rule')) as Json[]).filter((r) => r.Properties.ScheduleExpression);
    expect(rules).toHaveLength(1);
    expect(rules[0].Properties.ScheduleExpression).toBe('rate(5 minutes)');
    const { json: j } = synth({ cluster: { resyncInterval: Duration.minutes(1), nodes: false, frontDoor: false, bootstrap: false } });
    expect(ofType(j, 'AWS::Events::Rule')[0]![1].Properties.ScheduleExpression).toBe('rate(1 minute)');
    const targets = rules[0].Properties.Targets.map((t: Json) => t.Arn['Fn::GetAtt'][0] as string).sort();
    expect(targets.map((t: string) => t.replace(/[0-9A-F]{8}$/, ''))).toEqual(['ClusterControllerManager', 'ClusterScheduler']);
  });

  it('a node\'s instance shutting down or terminated wakes the controller manager (and only it); no rule without nodes', () => {
    const rules = (Object.values(template.findResources('AWS::Events::Rule')) as Json[]).filter((r) => r.Properties.EventPattern);
    expect(rules).toHaveLength(1);
    expect(rules[0].Properties.EventPattern).toEqual({
      source: ['aws.ec2'],
      'detail-type': ['EC2 Instance State-change Notification'],
      detail: { state: ['shutting-down', 'terminated'] },
    });
    expect(rules[0].Properties.Targets.map((t: Json) => stripHash(t.Arn['Fn::GetAtt'][0]))).toEqual(['ClusterControllerManager']);
    const { json: j } = synth({ cluster: { nodes: false, frontDoor: false, bootstrap: false } }, 'NoNodes');
    expect(ofType(j, 'AWS::Events::Rule').filter(([, r]) => r.Properties.EventPattern)).toHaveLength(0);
  });

  it('CronJob wake-ups: a Scheduler group, a role Scheduler assumes to invoke the controller manager, and the function may manage only that group\'s schedules', () => {
    const json = template.toJSON();
    const [groupId] = onlyResource(template, 'AWS::Scheduler::ScheduleGroup');
    const [fnId, fn] = ofType(json, 'AWS::Lambda::Function').find(([id]) => id.startsWith('ClusterControllerManager'))!;
    const env = fn.Properties.Environment.Variables;
    expect(env.SKIFF_WAKEUP_GROUP).toEqual({ Ref: groupId });
    const roleId = env.SKIFF_WAKEUP_ROLE_ARN['Fn::GetAtt'][0] as string;
    const role = json.Resources[roleId];
    expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
      { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'scheduler.amazonaws.com' } },
    ]);
    const invoke = roleStatements(json, roleId);
    expect(invoke.flatMap((s) => list<string>(s.Action))).toEqual(['lambda:InvokeFunction']);
    expect(JSON.stringify(invoke[0]!.Resource)).toContain(fnId);
    const fnStatements = roleStatements(json, fn.Properties.Role['Fn::GetAtt'][0]);
    const sched = fnStatements.find((s) => list<string>(s.Action).includes('scheduler:CreateSchedule'))!;
    expect(list<string>(sched.Action).sort()).toEqual(['scheduler:CreateSchedule', 'scheduler:DeleteSchedule', 'scheduler:UpdateSchedule']);
    expect(JSON.stringify(sched.Resource)).toContain(`:schedule/",{"Ref":"${groupId}"},"/*"`);
    const pass = fnStatements.find((s) => list<string>(s.Action).includes('iam:PassRole'))!;
    expect(pass.Resource).toEqual({ 'Fn::GetAtt': [roleId, 'Arn'] });
  });
});

describe('outputs', () => {
  it('outputs the API endpoint (the front door), the table name, the cluster name and its SSM prefix', () => {
    const [distId] = onlyResource(template, 'AWS::CloudFront::Distribution');
    const frontDoorUrl = { 'Fn::Join': ['', ['https://', { 'Fn::GetAtt': [distId, 'DomainName'] }]] };
    template.hasOutput('ApiEndpoint', { Value: frontDoorUrl });
    template.hasOutput('TableName', { Value: { Ref: tableId } });
    template.hasOutput('ClusterName', { Value: 'SkiffStack' });
    template.hasOutput('ParameterPrefix', { Value: '/skiff/SkiffStack' });
    // The agents' api-url is the Function URL: their own requests need no front door (and cost less without).
    const [urlId] = onlyResource(template, 'AWS::Lambda::Url');
    template.hasResourceProperties('AWS::SSM::Parameter', { Name: '/skiff/SkiffStack/api-url', Type: 'String', Value: { 'Fn::GetAtt': [urlId, 'FunctionUrl'] } });
  });

  it('without the front door, the API endpoint and api-url are the Function URL', () => {
    const { template: t } = synth({ cluster: { frontDoor: false } });
    const [urlId] = onlyResource(t, 'AWS::Lambda::Url');
    t.hasOutput('ApiEndpoint', { Value: { 'Fn::GetAtt': [urlId, 'FunctionUrl'] } });
    t.hasResourceProperties('AWS::SSM::Parameter', { Name: '/skiff/SkiffStack/api-url', Value: { 'Fn::GetAtt': [urlId, 'FunctionUrl'] } });
  });
});

describe('apiserver bundle', () => {
  function assetDir(): string {
    const key: string = fn.Properties.Code.S3Key;
    expect(key).toMatch(/^[0-9a-f]{64}\.zip$/);
    const dir = join(outdir, 'app1', `asset.${key.slice(0, -'.zip'.length)}`); // the suite's first synth
    expect(existsSync(dir), dir).toBe(true);
    return dir;
  }

  it('is an ESM bundle under 2.1 MB without better-sqlite3, the AWS SDK left to the runtime', () => {
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
    // The web console's files beside the bundle for /ui/ (lambdas/apiserver/console.ts), not inside it.
    expect(readFileSync(join(assetDir(), 'console', 'index.html'), 'utf8')).toContain('/ui/app.js');
    expect(statSync(join(assetDir(), 'console', 'app.js')).size).toBeGreaterThan(10_000);
    expect(code.includes('Sign in to Skiff'), 'the console is not in the bundle').toBe(false);
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

/** The table's ARN, its stream ARN, or the table's ARN + "/index/*" or "/stream/*". */
function isTableOrStream(r: Json): boolean {
  const tableArn = { 'Fn::GetAtt': [tableId, 'Arn'] };
  if (JSON.stringify(r) === JSON.stringify(tableArn)) return true;
  if (JSON.stringify(r) === JSON.stringify({ 'Fn::GetAtt': [tableId, 'StreamArn'] })) return true;
  const parts = r?.['Fn::Join']?.[1];
  return Array.isArray(parts) && parts.length === 2 && JSON.stringify(parts[0]) === JSON.stringify(tableArn) && (parts[1] === '/index/*' || parts[1] === '/stream/*');
}

describe('IAM across the whole template', () => {
  it('no statement allows a wildcard action, and "*" resources only for ec2:Describe*', () => {
    const statements = allStatements(template.toJSON());
    expect(statements.length).toBeGreaterThan(10);
    for (const { where, s } of statements) {
      // A Deny may be broad (the dead-letter queue's enforceSSL denies sqs:* without TLS): it grants nothing.
      if (s.Effect === 'Deny') continue;
      expect(s.Effect, where).toBe('Allow');
      const actions = list<string>(s.Action);
      for (const a of actions) {
        expect(a, `${where}: action ${a}`).not.toBe('*');
        expect(a, `${where}: action ${a}`).not.toMatch(/^[\w-]+:\*$/);
      }
      if (list(s.Resource).includes('*')) {
        for (const a of actions) expect(a, `${where}: ${a} on "*"`).toMatch(/^ec2:Describe\w+$/);
      }
    }
  });

  it("each function's role reaches DynamoDB only on its table and the table's stream", () => {
    const json = template.toJSON();
    const roles = new Set<string>();
    for (const [, f] of ofType(json, 'AWS::Lambda::Function')) roles.add(f.Properties.Role['Fn::GetAtt'][0]);
    expect(roles.size).toBe(7);
    let withTable = 0;
    for (const roleId of roles) {
      const dynamo = roleStatements(json, roleId).filter((s) => list<string>(s.Action).some((a) => a.startsWith('dynamodb:')));
      if (dynamo.length) withTable++;
      for (const s of dynamo) {
        for (const a of list<string>(s.Action)) expect(a.startsWith('dynamodb:'), `${roleId}: ${a} shares a statement with dynamodb actions`).toBe(true);
        for (const r of list(s.Resource)) expect(isTableOrStream(r), `${roleId}: dynamodb on ${JSON.stringify(r)}`).toBe(true);
      }
    }
    // The apiserver, the scheduler, the controller manager and the bootstrap function; not the stream
    // router, the webhook caller nor the prefix-list lookup.
    expect(withTable).toBe(4);
  });

  it('no role carries a managed policy (AWSLambdaBasicExecutionRole and the like are on "*")', () => {
    for (const [id, r] of ofType(template.toJSON(), 'AWS::IAM::Role')) expect(r.Properties.ManagedPolicyArns, id).toBeUndefined();
  });
});

describe('front door', () => {
  const dist = () => onlyResource(template, 'AWS::CloudFront::Distribution')[1].Properties.DistributionConfig;
  const edgeFn = () => ofType(template.toJSON(), 'AWS::Lambda::Function').find(([id]) => id.startsWith('ClusterFrontDoorStreamRouterFn'))!;

  it('the default behaviour goes to the Function URL: all methods, caching disabled, all viewer headers but Host, no compression', () => {
    const d = dist();
    const [urlId] = onlyResource(template, 'AWS::Lambda::Url');
    expect(d.Origins).toHaveLength(1);
    expect(d.Origins[0].DomainName).toEqual({ 'Fn::Select': [2, { 'Fn::Split': ['/', { 'Fn::GetAtt': [urlId, 'FunctionUrl'] }] }] });
    expect(d.Origins[0].CustomOriginConfig.OriginProtocolPolicy).toBe('https-only');
    const b = d.DefaultCacheBehavior;
    expect(b.TargetOriginId).toBe(d.Origins[0].Id);
    expect(b.AllowedMethods.sort()).toEqual(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT']);
    expect(b.CachePolicyId).toBe(CachePolicy.CACHING_DISABLED.cachePolicyId);
    expect(b.OriginRequestPolicyId).toBe(OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER.originRequestPolicyId);
    expect(b.Compress).toBe(false);
    expect(b.LambdaFunctionAssociations).toBeUndefined();
  });

  it('exec, attach and portforward go through the stream router as an ORIGIN_REQUEST Lambda@Edge function', () => {
    const d = dist();
    const [edgeId] = edgeFn();
    const versions = ofType(template.toJSON(), 'AWS::Lambda::Version').filter(([, v]) => v.Properties.FunctionName.Ref === edgeId);
    expect(versions).toHaveLength(1);
    const behaviours = d.CacheBehaviors as Json[];
    expect(behaviours.map((b) => b.PathPattern).sort()).toEqual([...STREAM_PATH_PATTERNS].sort());
    expect(STREAM_PATH_PATTERNS.map((p) => p.split('/').at(-1))).toEqual(['exec', 'attach', 'portforward', 'log']);
    for (const b of behaviours) {
      expect(b.TargetOriginId).toBe(d.Origins[0].Id);
      expect(b.CachePolicyId).toBe(CachePolicy.CACHING_DISABLED.cachePolicyId);
      expect(b.OriginRequestPolicyId).toBe(OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER.originRequestPolicyId);
      expect(b.AllowedMethods).toContain('POST');
      expect(b.Compress).toBe(false);
      expect(b.LambdaFunctionAssociations).toEqual([{ EventType: 'origin-request', IncludeBody: false, LambdaFunctionARN: { Ref: versions[0]![0] } }]);
    }
  });

  it('the stream router is an x86_64 Node.js 22 function without environment, assumable by Lambda@Edge, logging only to its own log groups', () => {
    const [, f] = edgeFn();
    expect(f.Properties.Runtime).toBe('nodejs22.x');
    expect(f.Properties.Architectures).toEqual(['x86_64']);
    expect(f.Properties.Environment).toBeUndefined(); // Lambda@Edge refuses environment variables
    const json = template.toJSON();
    const roleId = f.Properties.Role['Fn::GetAtt'][0];
    const principals = list(json.Resources[roleId].Properties.AssumeRolePolicyDocument.Statement).map((s: Json) => s.Principal.Service);
    expect(principals).toEqual(expect.arrayContaining(['lambda.amazonaws.com', 'edgelambda.amazonaws.com']));
    const st = roleStatements(json, roleId);
    expect(st).toHaveLength(1);
    expect(flat(st[0].Resource)).toBe(`arn:\${AWS::Partition}:logs:*:\${AWS::AccountId}:log-group:/aws/lambda/us-east-1.${f.Properties.FunctionName}:*`);
  });

  it('the stream router bundle is CommonJS and exports the handler', () => {
    const [, f] = edgeFn();
    const dir = join(outdir, 'app1', `asset.${f.Properties.Code.S3Key.slice(0, -'.zip'.length)}`);
    const out = execFileSync(process.execPath, ['-e', `process.stdout.write(typeof require(${JSON.stringify(join(dir, 'index.js'))}).handler)`], { encoding: 'utf8' });
    expect(out).toBe('function');
  });

  it('in another region, the stream router and its role live in a us-east-1 support stack', () => {
    const app = new App({ outdir: join(outdir, 'eu') });
    const stack = new SkiffStack(app, 'Eu', { env: { region: 'eu-west-1' } });
    const main = Template.fromStack(stack).toJSON();
    expect(ofType(main, 'AWS::Lambda::Function').filter(([id]) => id.includes('StreamRouter'))).toHaveLength(0);
    const edge = app.node.findAll().find((c): c is Stack => Stack.isStack(c) && c !== stack)!;
    expect(edge.region).toBe('us-east-1');
    const e = Template.fromStack(edge).toJSON();
    const fns = ofType(e, 'AWS::Lambda::Function');
    expect(fns).toHaveLength(1);
    expect(e.Resources[fns[0]![1].Properties.Role['Fn::GetAtt'][0]].Properties.ManagedPolicyArns).toBeUndefined();
  });
});

describe('nodes', () => {
  const json = () => template.toJSON();
  const launchTemplate = () => onlyResource(template, 'AWS::EC2::LaunchTemplate')[1].Properties.LaunchTemplateData;
  const userData = () => flat(launchTemplate().UserData);
  const controller = () => ofType(json(), 'AWS::Lambda::Function').find(([id]) => id.startsWith('ClusterControllerManager'))!;

  it('Amazon Linux 2023 arm64 t4g.small with IMDSv2 and one hop (pods cannot reach the instance role)', () => {
    const lt = launchTemplate();
    const param = lt.ImageId.Ref as string;
    expect(json().Parameters[param].Default).toMatch(/^\/aws\/service\/ami-amazon-linux-latest\/al2023-ami-kernel-[\w.-]*arm64$/);
    expect(lt.InstanceType).toBe('t4g.small');
    expect(lt.MetadataOptions).toMatchObject({ HttpTokens: 'required', HttpPutResponseHopLimit: 1 });
  });

  it('the cost model prices what the stack deploys: poll, lease, Node status and resync intervals, agents on the Function URL', () => {
    const flag = (name: string) => Number(new RegExp(`--${name} (\\d+)`).exec(userData())?.[1]);
    expect(flag('poll-seconds')).toBe(CURRENT_AGENT.pollSeconds);
    expect(flag('lease-seconds')).toBe(CURRENT_AGENT.leaseSeconds);
    expect(flag('status-report-seconds')).toBe(CURRENT_AGENT.statusRefreshSeconds);
    const rate = /^rate\((\d+) minutes?\)$/.exec(ofType(json(), 'AWS::Events::Rule')[0]![1].Properties.ScheduleExpression);
    expect(Number(rate?.[1]) * 60).toBe(CURRENT_AGENT.resyncSeconds);
    const [urlId] = onlyResource(template, 'AWS::Lambda::Url');
    expect(CURRENT_AGENT.via).toBe('functionUrl');
    template.hasResourceProperties('AWS::SSM::Parameter', { Name: '/skiff/SkiffStack/api-url', Value: { 'Fn::GetAtt': [urlId, 'FunctionUrl'] } });
  });

  it('the push channel: agents make, read and empty their cluster\'s queues; the controller manager sends to them and deletes them; the scheduler and the apiserver only send', () => {
    const prefix = nodeQueuePrefix('SkiffStack');
    // Granted on the queues of this prefix only (an ARN ending `:<prefix>*`).
    const grants = allStatements(template.toJSON()).filter(({ s }) => list<string>(s.Action).some((a) => a.startsWith('sqs:')) && !JSON.stringify(s.Resource).includes('StreamDeadLetters'));
    for (const { s } of grants) expect(JSON.stringify(s.Resource)).toMatch(new RegExp(`:sqs:.*:${prefix}\\*"`));
    expect(grants.map(({ s }) => list<string>(s.Action).sort().join(' ')).sort()).toEqual(['sqs:CreateQueue sqs:DeleteMessage sqs:ReceiveMessage', 'sqs:DeleteQueue sqs:GetQueueUrl sqs:SendMessage', 'sqs:GetQueueUrl sqs:SendMessage', 'sqs:GetQueueUrl sqs:SendMessage']);
    const withPrefix = Object.values(template.findResources('AWS::Lambda::Function')).filter((f: any) => f.Properties.Environment?.Variables?.SKIFF_NODE_QUEUE_PREFIX === prefix);
    // The controller manager's, the scheduler's (binds: node-notifier.ts schedulerTeller) and the apiserver's
    // (usage reports on demand, `kubectl top`: node-usage.ts).
    expect(withPrefix).toHaveLength(3);
    for (const fn of ['ApiServer', 'Scheduler']) {
      expect(Object.entries(template.findResources('AWS::Lambda::Function')).some(([id, f]: [string, any]) => id.includes(fn) && f.Properties.Environment.Variables.SKIFF_NODE_QUEUE_PREFIX === prefix)).toBe(true);
    }
    expect(CURRENT_AGENT.push).toEqual({ podPollSeconds: 300 });
  });

  it('the dead man\'s switch: nodes may create and move only the node lifecycle\'s schedules of the wake-up group, and pass only its role', () => {
    const lt = launchTemplate();
    const instanceRole = json().Resources[lt.IamInstanceProfile.Arn['Fn::GetAtt'][0]].Properties.Roles[0].Ref;
    const st = roleStatements(json(), instanceRole);
    const sched = st.filter((x) => list<string>(x.Action).some((a) => a.startsWith('scheduler:')));
    expect(sched).toHaveLength(1);
    expect(list<string>(sched[0].Action).sort()).toEqual(['scheduler:CreateSchedule', 'scheduler:UpdateSchedule']);
    expect(list(sched[0].Resource).map(flat)).toEqual(['arn:${AWS::Partition}:scheduler:us-east-1:${AWS::AccountId}:schedule/${ClusterWakeUps555840DA}/node-lifecycle-contr-*']);
    const pass = st.filter((x) => list<string>(x.Action).includes('iam:PassRole'));
    expect(pass.map((x) => list(x.Resource).map(flat))).toEqual([['${ClusterWakeUpRole197E33C0.Arn}']]);
  });

  it('user data installs the runtime, fetches the agent bundle and runs the agent as a systemd unit', () => {
    const u = userData();
    expect(u).toMatch(/dnf install -y (--setopt=strict=0 )?docker nodejs20 .*iptables conntrack-tools/);
    expect(u).toContain('systemctl enable --now docker');
    const exec = /ExecStart=(.*)/.exec(u)?.[1];
    expect(exec).toBe(
      '/usr/bin/node-20 /opt/skiff/skiff.mjs agent --ssm-prefix /skiff/SkiffStack --cluster-cidr 10.244.0.0/16 ' +
        `--poll-seconds 75 --lease-seconds 300 --status-report-seconds 3600 --stream-port 10255 --data-dir /var/lib/skiff --push-queue-prefix ${nodeQueuePrefix('SkiffStack')} --push-pod-poll-seconds 300 ` +
        `--silence-schedule-group \${ClusterWakeUps555840DA} --silence-role-arn \${ClusterWakeUpRole197E33C0.Arn} --silence-target-parameter /skiff/SkiffStack/controller-manager-arn`,
    );
    expect(u).toContain('Restart=always');
    expect(u).toContain('User=root');
    expect(u).toContain('systemctl enable --now skiff-agent');
    // The bundle it downloads is the asset the instance role may read, and nothing else.
    const key = /aws s3 cp 's3:\/\/[^/]+\/([0-9a-f]{64}\.zip)'/.exec(u)?.[1];
    expect(key).toBeDefined();
    const roleId = launchTemplate().IamInstanceProfile.Arn['Fn::GetAtt'][0];
    const profile = json().Resources[roleId];
    const instanceRole = profile.Properties.Roles[0].Ref;
    const s3 = roleStatements(json(), instanceRole).filter((s) => list<string>(s.Action).some((a) => a.startsWith('s3:')));
    expect(s3).toHaveLength(1);
    expect(s3[0].Action).toBe('s3:GetObject');
    expect(flat(s3[0].Resource).endsWith(`/${key}`)).toBe(true);
  });

  it('metrics to CloudWatch only when asked (custom metrics cost): then a node-metrics log group the nodes may write, the agents\' flag and the apiserver\'s flush period', () => {
    const fnEnv = (t: Template) => (Object.entries(t.findResources('AWS::Lambda::Function')).find(([id]) => id.includes('ApiServer'))![1] as Json).Properties.Environment.Variables;
    const groups = (t: Template) => Object.values(t.findResources('AWS::Logs::LogGroup')).filter((g: Json) => g.Properties.LogGroupName === '/skiff/SkiffStack/node-metrics');
    // The default stack sends none.
    expect(groups(template)).toHaveLength(0);
    expect(userData()).not.toContain('--metrics-log-group');
    expect(fnEnv(template).SKIFF_METRICS_FLUSH_SECONDS).toBeUndefined();
    const on = synth({ cluster: { cloudWatchMetrics: true } });
    expect(groups(on.template)).toHaveLength(1);
    expect(fnEnv(on.template).SKIFF_METRICS_FLUSH_SECONDS).toBe('60');
    const lt = onlyResource(on.template, 'AWS::EC2::LaunchTemplate')[1].Properties.LaunchTemplateData;
    expect(/ExecStart=(.*)/.exec(flat(lt.UserData))?.[1]).toMatch(/ --metrics-log-group \/skiff\/SkiffStack\/node-metrics$/);
    const instanceRole = on.json.Resources[lt.IamInstanceProfile.Arn['Fn::GetAtt'][0]].Properties.Roles[0].Ref;
    const [groupId] = Object.entries(on.template.findResources('AWS::Logs::LogGroup')).find(([, g]: [string, Json]) => g.Properties.LogGroupName === '/skiff/SkiffStack/node-metrics')!;
    const st = roleStatements(on.json, instanceRole).filter((x) => JSON.stringify(x.Resource).includes(groupId));
    expect(st.flatMap((x) => list<string>(x.Action)).sort()).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
  });

  it('the agent bundle is self-contained: copied where no node_modules can be found, it starts; user data installs no npm packages', () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-agent-bundle-'));
    try {
      execFileSync('cp', [join(AGENT_BUNDLE_DIR, AGENT_BUNDLE), dir]);
      const out = execFileSync(process.execPath, [join(dir, AGENT_BUNDLE), 'help'], { encoding: 'utf8', cwd: dir });
      expect(out).toMatch(/^Usage: skiff/);
      expect(out).toContain('--ssm-prefix');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(userData()).not.toMatch(/npm/);
  });

  it('synth fails with a clear message when the agent bundle is not built', () => {
    const empty = mkdtempSync(join(tmpdir(), 'skiff-no-bundle-'));
    expect(() => agentBundleDir(empty)).toThrow(/skiff\.mjs is missing: run `npm run build`/);
    rmSync(empty, { recursive: true, force: true });
  });

  it('the instance role reads api-url, ca, bootstrap-token and the controller manager\'s ARN, never admin-token, and has no EC2 or managed policy', () => {
    const lt = launchTemplate();
    const instanceRole = json().Resources[lt.IamInstanceProfile.Arn['Fn::GetAtt'][0]].Properties.Roles[0].Ref;
    const st = roleStatements(json(), instanceRole);
    const ssm = st.filter((s) => list<string>(s.Action).some((a) => a.startsWith('ssm:')));
    expect(ssm).toHaveLength(1);
    expect(list<string>(ssm[0].Action).sort()).toEqual(['ssm:GetParameter', 'ssm:GetParameters']);
    expect(list(ssm[0].Resource).map(flat).sort()).toEqual(
      ['api-url', 'bootstrap-token', 'ca', 'controller-manager-arn'].map((n) => `arn:\${AWS::Partition}:ssm:us-east-1:\${AWS::AccountId}:parameter/skiff/SkiffStack/${n}`),
    );
    expect(JSON.stringify(st)).not.toContain('admin-token');
    expect(JSON.stringify(st)).not.toMatch(/"ec2:/);
    expect(json().Resources[instanceRole].Properties.ManagedPolicyArns).toBeUndefined();
    const withSession = synth({ cluster: { nodes: { ssmSessionManager: true } } }).json;
    const roles = ofType(withSession, 'AWS::IAM::Role').filter(([, r]) => r.Properties.ManagedPolicyArns);
    expect(roles).toHaveLength(1);
    expect(flat(roles[0]![1].Properties.ManagedPolicyArns[0])).toContain('AmazonSSMManagedInstanceCore');
  });

  it('a public-subnet VPC without NAT, one route table for every node subnet, a DynamoDB gateway endpoint on it', () => {
    const j = json();
    expect(ofType(j, 'AWS::EC2::NatGateway')).toHaveLength(0);
    const subnets = ofType(j, 'AWS::EC2::Subnet');
    expect(subnets.length).toBeGreaterThanOrEqual(2);
    for (const [, s] of subnets) expect(s.Properties.MapPublicIpOnLaunch).toBe(true);
    const assoc = ofType(j, 'AWS::EC2::SubnetRouteTableAssociation');
    expect(assoc).toHaveLength(subnets.length);
    const tables = new Set(assoc.map(([, a]) => a.Properties.RouteTableId.Ref));
    expect(tables.size).toBe(1);
    const [shared] = [...tables];
    expect(ofType(j, 'AWS::EC2::Route').some(([, r]) => r.Properties.RouteTableId.Ref === shared && r.Properties.DestinationCidrBlock === '0.0.0.0/0' && r.Properties.GatewayId)).toBe(true);
    const [, endpoint] = onlyResource(template, 'AWS::EC2::VPCEndpoint');
    expect(endpoint.Properties.VpcEndpointType).toBe('Gateway');
    expect(flat(endpoint.Properties.ServiceName)).toBe('com.amazonaws.${AWS::Region}.dynamodb');
    expect(endpoint.Properties.RouteTableIds).toEqual([{ Ref: shared }]);
    const [, asg] = onlyResource(template, 'AWS::AutoScaling::AutoScalingGroup');
    expect(asg.Properties).toMatchObject({ MinSize: '1', MaxSize: '3' });
    expect(asg.Properties.VPCZoneIdentifier.map((s: Json) => s.Ref).sort()).toEqual(subnets.map(([id]) => id).sort());
    // Agents find their join parameters when they start.
    const tokens = ofType(j, 'Custom::SkiffBootstrapTokens')[0]![0];
    expect(asg.DependsOn).toContain(tokens);
    // The controller manager programs that table.
    const env = controller()[1].Properties.Environment.Variables;
    expect(env.SKIFF_ROUTE_TABLE_ID).toEqual({ Ref: shared });
    expect(env.SKIFF_CLUSTER_CIDR).toBe('10.244.0.0/16');
  });

  it('security groups: agent port from the VPC, stream port from the CloudFront prefix list only, pod traffic inside', () => {
    const j = json();
    const rules: Json[] = [];
    for (const [id, g] of ofType(j, 'AWS::EC2::SecurityGroup')) for (const r of g.Properties.SecurityGroupIngress ?? []) rules.push({ ...r, GroupId: { Ref: id } });
    for (const [, r] of ofType(j, 'AWS::EC2::SecurityGroupIngress')) rules.push(r.Properties);
    const vpcId = onlyResource(template, 'AWS::EC2::VPC')[0];
    // (The webhook caller's all-TCP rule is the webhook caller test's.)
    const fromCaller = (r: Json) => JSON.stringify(r.SourceSecurityGroupId ?? '').includes('WebhookCallerSecurityGroup');
    const onPort = (p: number) => rules.filter((r) => r.IpProtocol === 'tcp' && r.FromPort <= p && r.ToPort >= p && !fromCaller(r));
    expect(onPort(10250)).toEqual([expect.objectContaining({ CidrIp: { 'Fn::GetAtt': [vpcId, 'CidrBlock'] }, FromPort: 10250, ToPort: 10250 })]);
    const stream = onPort(10255);
    expect(stream).toHaveLength(1);
    expect(stream[0].CidrIp).toBeUndefined();
    const [lookupId, lookup] = ofType(j, 'Custom::AWS')[0]!;
    expect(JSON.parse(lookup.Properties.Create).parameters.Filters[0].Values).toEqual(['com.amazonaws.global.cloudfront.origin-facing']);
    expect(stream[0].SourcePrefixListId).toEqual({ 'Fn::GetAtt': [lookupId, 'PrefixLists.0.PrefixListId'] });
    // All protocols only from the pod range and from the nodes themselves; nothing from the internet.
    const all = rules.filter((r) => r.IpProtocol === '-1');
    expect(all.map((r) => r.CidrIp ?? 'self').sort()).toEqual(['10.244.0.0/16', 'self']);
    for (const r of rules) expect(r.CidrIp).not.toBe('0.0.0.0/0');
    // Both groups are on the launch template.
    expect(launchTemplate().SecurityGroupIds).toHaveLength(2);
    // A given prefix list id replaces the lookup.
    const given = synth({ cluster: { nodes: { cloudFrontPrefixListId: 'pl-3b927c52' } } }).json;
    expect(ofType(given, 'Custom::AWS')).toHaveLength(0);
    expect(ofType(given, 'AWS::EC2::SecurityGroupIngress').map(([, r]) => r.Properties.SourcePrefixListId).filter(Boolean)).toEqual(['pl-3b927c52']);
  });

  it('the controller manager may make exactly the EC2 calls the route controller makes, on the route table and the group\'s instances', () => {
    // The calls in lambdas/controllers/routes.ts (Ec2RouteProvider).
    const src = readFileSync(resolve('lambdas/controllers/routes.ts'), 'utf8');
    const calls = [...new Set([...src.matchAll(/\b(\w+)Command\(/g)].map((m) => `ec2:${m[1]}`))].sort();
    expect(calls).toEqual(['ec2:CreateRoute', 'ec2:DeleteRoute', 'ec2:DescribeRouteTables', 'ec2:ModifyInstanceAttribute', 'ec2:ReplaceRoute']);
    const [, f] = controller();
    const j = json();
    const ec2 = roleStatements(j, f.Properties.Role['Fn::GetAtt'][0]).filter((s) => list<string>(s.Action).some((a) => a.startsWith('ec2:')));
    expect(ec2.flatMap((s) => list<string>(s.Action)).sort()).toEqual(calls);
    const shared = f.Properties.Environment.Variables.SKIFF_ROUTE_TABLE_ID.Ref;
    const asgId = onlyResource(template, 'AWS::AutoScaling::AutoScalingGroup')[0];
    for (const s of ec2) {
      const actions = list<string>(s.Action);
      if (actions.includes('ec2:CreateRoute')) {
        expect(actions.sort()).toEqual(['ec2:CreateRoute', 'ec2:DeleteRoute', 'ec2:ReplaceRoute']);
        expect(flat(s.Resource)).toBe(`arn:\${AWS::Partition}:ec2:us-east-1:\${AWS::AccountId}:route-table/\${${shared}}`);
      } else if (actions.includes('ec2:ModifyInstanceAttribute')) {
        expect(flat(s.Resource)).toBe('arn:${AWS::Partition}:ec2:us-east-1:${AWS::AccountId}:instance/*');
        expect(s.Condition).toEqual({ StringEquals: { 'aws:ResourceTag/aws:autoscaling:groupName': { Ref: asgId } } });
      } else {
        expect(actions).toEqual(['ec2:DescribeRouteTables']);
        expect(s.Resource).toBe('*');
      }
    }
  });

  it('cluster name, pod range, poll and lease intervals and group size come from the props', () => {
    const { json: j } = synth({ cluster: { clusterName: 'demo', clusterCidr: '10.200.0.0/16', nodes: { pollSeconds: 30, leaseSeconds: 20, statusReportSeconds: 600, minNodes: 2, maxNodes: 5, instanceType: 't4g.medium' } } });
    const [, lt] = ofType(j, 'AWS::EC2::LaunchTemplate')[0]!;
    const u = flat(lt.Properties.LaunchTemplateData.UserData);
    expect(u).toContain('--ssm-prefix /skiff/demo --cluster-cidr 10.200.0.0/16 --poll-seconds 30 --lease-seconds 20 --status-report-seconds 600 --stream-port 10255');
    expect(lt.Properties.LaunchTemplateData.InstanceType).toBe('t4g.medium');
    expect(ofType(j, 'AWS::AutoScaling::AutoScalingGroup')[0]![1].Properties).toMatchObject({ MinSize: '2', MaxSize: '5' });
    const cm = ofType(j, 'AWS::Lambda::Function').find(([id]) => id.startsWith('ClusterControllerManager'))![1];
    expect(cm.Properties.Environment.Variables.SKIFF_CLUSTER_CIDR).toBe('10.200.0.0/16');
    expect(() => synth({ cluster: { clusterCidr: '10.0.128.0/17' } })).toThrow(/overlaps the VPC/);
    expect(() => synth({ cluster: { clusterName: 'has space' } })).toThrow(/clusterName/);
  });
});

describe('bootstrap parameters', () => {
  it('api-url, ca and the controller manager\'s ARN are String parameters; the tokens are no AWS::SSM::Parameter at all', () => {
    const params = ofType(template.toJSON(), 'AWS::SSM::Parameter').map(([, p]) => p.Properties);
    expect(params.map((p) => p.Name).sort()).toEqual(['/skiff/SkiffStack/api-url', '/skiff/SkiffStack/ca', '/skiff/SkiffStack/controller-manager-arn']);
    for (const p of params) expect(p.Type).toBe('String');
    expect(params.find((p) => p.Name.endsWith('/ca'))!.Value).toBe('system');
  });

  it('the custom resource carries parameter names and its code\'s key only; its function may write exactly the two token parameters and the service-account key', () => {
    const j = template.toJSON();
    const [, cr] = ofType(j, 'Custom::SkiffBootstrapTokens')[0]!;
    const [fnId2, f] = ofType(j, 'AWS::Lambda::Function').find(([id]) => id.startsWith('ClusterBootstrapFunction'))!;
    expect(cr.Properties).toEqual({
      ServiceToken: { 'Fn::GetAtt': [fnId2, 'Arn'] },
      BootstrapTokenParameter: '/skiff/SkiffStack/bootstrap-token',
      AdminTokenParameter: '/skiff/SkiffStack/admin-token',
      AdminToken: 'true',
      AdminPrincipalArns: [],
      ServiceAccountKeyParameter: '/skiff/SkiffStack/service-account-key',
      ServiceAccountIssuer: expect.anything(),
      // The bundle's key: new code is a new key, so a deploy of it calls the custom resource again (an
      // Update: the table upgraded, system objects and RBAC reconciled).
      CodeKey: f.Properties.Code.S3Key,
    });
    expect(cr.Properties.CodeKey).toMatch(/^[0-9a-f]{64}\.zip$/);
    expect(Object.keys(f.Properties.Environment.Variables).sort()).toEqual(['NODE_OPTIONS', 'SKIFF_TABLE']);
    const ssm = roleStatements(j, f.Properties.Role['Fn::GetAtt'][0]).filter((s) => list<string>(s.Action).some((a) => a.startsWith('ssm:')));
    expect(ssm).toHaveLength(1);
    // The actions are exactly the SSM calls the handler makes.
    const calls = [...readFileSync(resolve('lambdas/bootstrap/lambda.ts'), 'utf8').matchAll(/new (\w+)Command\(/g)].map((m) => `ssm:${m[1]}`);
    expect(list<string>(ssm[0].Action).sort()).toEqual([...new Set(calls)].sort());
    expect(list(ssm[0].Resource).map(flat).sort()).toEqual(
      ['admin-token', 'bootstrap-token', 'service-account-key'].map((n) => `arn:\${AWS::Partition}:ssm:us-east-1:\${AWS::AccountId}:parameter/skiff/SkiffStack/${n}`),
    );
  });

  it('IAM sign-in: admins and the admin token switch reach the custom resource; the apiserver knows its cluster name and needs no IAM permission for it', () => {
    const admins = ['arn:aws:iam::123456789012:role/admins'];
    const { json: j } = synth({ cluster: { adminToken: false, adminPrincipalArns: admins } }, 'IamStack');
    const [, cr] = ofType(j, 'Custom::SkiffBootstrapTokens')[0]!;
    expect(cr.Properties).toMatchObject({ AdminToken: 'false', AdminPrincipalArns: admins });
    const [, api] = ofType(j, 'AWS::Lambda::Function').find(([id]) => id.startsWith('ClusterApiServer'))!;
    expect(api.Properties.Environment.Variables.SKIFF_CLUSTER_NAME).toBe('IamStack');
    // Replaying a caller's signed GetCallerIdentity needs no sts: permission of the function's own.
    expect(allStatements(j).filter(({ s }) => list<string>(s.Action).some((a) => a.startsWith('sts:') || a.startsWith('iam:Get')))).toEqual([]);
    expect(() => synth({ cluster: { adminPrincipalArns: ['arn:aws:iam::123456789012:root'] } }, 'BadIamStack')).toThrow(
      'SkiffCluster: adminPrincipalArns: arn:aws:iam::123456789012:root is not an IAM user or role ARN',
    );
  });

  it('no token-looking value anywhere near the token parameters\' names in the template', () => {
    const text = JSON.stringify(template.toJSON());
    const tokenShaped = /(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/g;
    let seen = 0;
    for (const name of ['bootstrap-token', 'admin-token']) {
      for (const m of text.matchAll(new RegExp(name, 'g'))) {
        seen++;
        const around = text.slice(Math.max(0, m.index! - 400), m.index! + name.length + 400);
        expect(around.match(tokenShaped), `near ${name}`).toBeNull();
      }
    }
    expect(seen).toBeGreaterThanOrEqual(4); // the custom resource's two properties and the two grants
  });
});

describe('alarms', () => {
  const alarms = () => ofType(template.toJSON(), 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
  const fnIds = (prefix: string) => ofType(template.toJSON(), 'AWS::Lambda::Function').find(([id]) => id.startsWith(prefix))![0];

  it('iterator age (Maximum > 60 s) of the scheduler and the controller manager', () => {
    const age = alarms().filter((a) => a.MetricName === 'IteratorAge');
    expect(age.map((a) => a.Dimensions[0].Value.Ref).sort()).toEqual([fnIds('ClusterControllerManager'), fnIds('ClusterScheduler')].sort());
    for (const a of age) {
      expect(a).toMatchObject({ Namespace: 'AWS/Lambda', Statistic: 'Maximum', Threshold: 60_000, ComparisonOperator: 'GreaterThanThreshold' });
      expect(a.Dimensions[0].Name).toBe('FunctionName');
    }
  });

  it('write rate: the table\'s consumed write units (Sum over 5 minutes) above the default, or the prop', () => {
    const write = alarms().filter((a) => a.MetricName === 'ConsumedWriteCapacityUnits');
    expect(write).toHaveLength(1);
    expect(write[0]).toMatchObject({
      Namespace: 'AWS/DynamoDB',
      Statistic: 'Sum',
      Period: 300,
      Threshold: WRITE_ALARM_UNITS_PER_5_MINUTES,
      ComparisonOperator: 'GreaterThanThreshold',
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
    });
    expect(write[0].Dimensions).toEqual([{ Name: 'TableName', Value: { Ref: tableId } }]);
    // The default sits well above what the busiest modelled cluster writes (npm run cost).
    const busiest = SCENARIOS.map((sc) => monthlyBill(sc.cluster, sc.agent).usage.wru / (MONTH_SECONDS / 300));
    expect(WRITE_ALARM_UNITS_PER_5_MINUTES).toBeGreaterThan(3 * Math.max(...busiest));
    const { json: j } = synth({ cluster: { nodes: false, writeAlarmUnitsPer5Minutes: 1234 } });
    const set = ofType(j, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties).filter((a) => a.MetricName === 'ConsumedWriteCapacityUnits');
    expect(set.map((a) => a.Threshold)).toEqual([1234]);
  });

  it('the alarms the cost model prices are the alarms the stack makes', () => {
    expect(alarms()).toHaveLength(ALARMS);
  });

  it('errors (Sum >= 1 over 5 minutes) of every Skiff function', () => {
    const errs = alarms().filter((a) => a.MetricName === 'Errors');
    const want = ['ClusterApiServer', 'ClusterScheduler', 'ClusterControllerManager', 'ClusterBootstrapFunction'].map(fnIds).sort();
    expect(errs.map((a) => a.Dimensions[0].Value.Ref).sort()).toEqual(want);
    for (const a of errs) expect(a).toMatchObject({ Namespace: 'AWS/Lambda', Statistic: 'Sum', Period: 300, Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' });
  });
});

describe('runaway-write guard', () => {
  const limits = (j: Json) =>
    Object.fromEntries(
      ofType(j, 'AWS::Lambda::Function')
        .filter(([id]) => /^Cluster(ApiServer|Scheduler|ControllerManager)/.test(id))
        .map(([id, f]) => [stripHash(id), f.Properties.Environment.Variables[MAX_OBJECTS_ENV]]),
    );

  it('the apiserver and both loops hold the same per-namespace object limit: the default, or the prop', () => {
    const want = String(DEFAULT_MAX_OBJECTS_PER_NAMESPACE);
    expect(limits(template.toJSON())).toEqual({ ClusterApiServer: want, ClusterScheduler: want, ClusterControllerManager: want });
    const { json: j } = synth({ cluster: { nodes: false, maxObjectsPerNamespace: 2000 } });
    expect(limits(j)).toEqual({ ClusterApiServer: '2000', ClusterScheduler: '2000', ClusterControllerManager: '2000' });
    expect(() => synth({ cluster: { nodes: false, maxObjectsPerNamespace: -1 } })).toThrow(/maxObjectsPerNamespace must be a whole number/);
  });

  it('the apiserver and both loops keep Events equally long: --event-ttl\'s default, or the prop', async () => {
    const ttls = (j: Json) =>
      Object.fromEntries(
        ofType(j, 'AWS::Lambda::Function')
          .filter(([id]) => /^Cluster(ApiServer|Scheduler|ControllerManager)/.test(id))
          .map(([id, f]) => [stripHash(id), f.Properties.Environment.Variables[EVENT_TTL_ENV]]),
      );
    const want = String(DEFAULT_EVENT_TTL_SECONDS);
    expect(ttls(template.toJSON())).toEqual({ ClusterApiServer: want, ClusterScheduler: want, ClusterControllerManager: want });
    const { json: j } = synth({ cluster: { nodes: false, eventTtlSeconds: 600 } });
    expect(ttls(j)).toEqual({ ClusterApiServer: '600', ClusterScheduler: '600', ClusterControllerManager: '600' });
    expect(() => synth({ cluster: { nodes: false, eventTtlSeconds: 1.5 } })).toThrow(/eventTtlSeconds must be a whole number/);
    const { eventTtlFromEnv } = await import('../lambdas/apiserver/registry.ts');
    expect(eventTtlFromEnv({ [EVENT_TTL_ENV]: '600' })).toBe(600);
    expect(eventTtlFromEnv({})).toBeUndefined();
    expect(() => eventTtlFromEnv({ [EVENT_TTL_ENV]: 'an hour' })).toThrow(EVENT_TTL_ENV);
  });

  it('the cost model prices the guard with the limit and the largest object the code has', () => {
    expect(GUARD_MAX_OBJECTS_PER_NAMESPACE).toBe(DEFAULT_MAX_OBJECTS_PER_NAMESPACE);
    expect(GUARD_LARGEST_OBJECT_BYTES).toBe(DYNAMO_MAX_VALUE_BYTES);
    // Filling a namespace with the largest objects writes them (and their log items) once each.
    const [, largest] = guardCost();
    const wru = 2 * 2 * (DYNAMO_MAX_VALUE_BYTES / 1024) * DEFAULT_MAX_OBJECTS_PER_NAMESPACE;
    expect(largest!.fillUsd).toBeGreaterThan(wru * PRICES.dynamoPerWru);
    expect(largest!.fillUsd).toBeLessThan(1.2 * wru * PRICES.dynamoPerWru);
  });

  it('the deployed apiserver reads the limit from its environment', async () => {
    const { maxObjectsFromEnv } = await import('../lambdas/apiserver/registry.ts');
    expect(maxObjectsFromEnv({ [MAX_OBJECTS_ENV]: '2000' })).toBe(2000);
    expect(maxObjectsFromEnv({})).toBeUndefined();
    expect(() => maxObjectsFromEnv({ [MAX_OBJECTS_ENV]: 'lots' })).toThrow(MAX_OBJECTS_ENV);
  });
});

describe('toggles', () => {
  const types = (j: Json) => new Set(Object.values(j.Resources).map((r: Json) => r.Type as string));

  it('nodes: false removes the VPC, the group, the prefix-list lookup and every EC2 grant and route setting', () => {
    const { json: j } = synth({ cluster: { nodes: false } });
    for (const t of ['AWS::EC2::VPC', 'AWS::EC2::LaunchTemplate', 'AWS::AutoScaling::AutoScalingGroup', 'AWS::EC2::SecurityGroup', 'Custom::AWS']) expect(types(j).has(t), t).toBe(false);
    expect(JSON.stringify(allStatements(j))).not.toMatch(/"ec2:/);
    const cm = ofType(j, 'AWS::Lambda::Function').find(([id]) => id.startsWith('ClusterControllerManager'))![1];
    expect(cm.Properties.Environment.Variables.SKIFF_ROUTE_TABLE_ID).toBeUndefined();
    expect(types(j).has('Custom::SkiffBootstrapTokens')).toBe(true); // still joinable by agents elsewhere
  });

  it('frontDoor: false removes CloudFront and the edge function, and needs no region', () => {
    const app = new App({ outdir: join(outdir, 'agnostic') });
    const stack = new SkiffStack(app, 'Agnostic', { cluster: { frontDoor: false } });
    const j = Template.fromStack(stack).toJSON();
    expect(types(j).has('AWS::CloudFront::Distribution')).toBe(false);
    expect(ofType(j, 'AWS::Lambda::Function').some(([id]) => id.includes('StreamRouter'))).toBe(false);
    expect(() => new SkiffStack(new App({ outdir: join(outdir, 'agnostic2') }), 'X')).toThrow(/explicit region/);
  });

  it('bootstrap: false (with nodes: false) removes the custom resource, its function and the parameters; with nodes it is refused', () => {
    const { json: j } = synth({ cluster: { nodes: false, bootstrap: false } });
    expect(types(j).has('Custom::SkiffBootstrapTokens')).toBe(false);
    expect(types(j).has('AWS::SSM::Parameter')).toBe(false);
    expect(ofType(j, 'AWS::Lambda::Function').some(([id]) => id.startsWith('ClusterBootstrap'))).toBe(false);
    expect(() => synth({ cluster: { bootstrap: false } })).toThrow(/bootstrap: false set nodes: false/);
  });

  it('all three off: the control plane alone (three functions, a table, a queue, a rule, a wake-up schedule group, alarms)', () => {
    const { json: j } = synth({ cluster: { nodes: false, frontDoor: false, bootstrap: false } });
    expect(ofType(j, 'AWS::Lambda::Function').map(([id]) => stripHash(id)).sort()).toEqual(['ClusterApiServer', 'ClusterControllerManager', 'ClusterScheduler']);
    expect([...types(j)].sort()).toEqual([
      'AWS::CloudWatch::Alarm',
      'AWS::DynamoDB::GlobalTable',
      'AWS::Events::Rule',
      'AWS::IAM::Policy',
      'AWS::IAM::Role',
      'AWS::Lambda::EventSourceMapping',
      'AWS::Lambda::Function',
      'AWS::Lambda::Permission',
      'AWS::Lambda::Url',
      'AWS::Logs::LogGroup',
      'AWS::SQS::Queue',
      'AWS::SQS::QueuePolicy',
      'AWS::Scheduler::ScheduleGroup',
    ]);
  });
});

describe('app.ts', () => {
  /** Runs the CDK app as `cdk synth` does (context and outdir through the environment) and reads its template. */
  function runApp(context: Record<string, string>): { template: Json; environment: string } {
    const out = mkdtempSync(join(outdir, 'appts-'));
    const env: NodeJS.ProcessEnv = { ...process.env, CDK_OUTDIR: out, CDK_CONTEXT_JSON: JSON.stringify({ [BUNDLING_STACKS]: [], ...context }) }; // templates only: no bundling
    delete env.CDK_DEFAULT_REGION;
    delete env.CDK_DEFAULT_ACCOUNT;
    execFileSync(process.execPath, ['--import', 'tsx', resolve('infra/app.ts')], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    return { template: JSON.parse(readFileSync(join(out, 'SkiffStack.template.json'), 'utf8')), environment: manifest.artifacts.SkiffStack.environment };
  }

  it('without CDK_DEFAULT_REGION the whole cluster is pinned to us-east-1 (for its Lambda@Edge function)', () => {
    const { template: t, environment } = runApp({});
    expect(environment).toBe('aws://unknown-account/us-east-1');
    const ty = new Set(Object.values(t.Resources).map((r: Json) => r.Type));
    for (const x of ['AWS::CloudFront::Distribution', 'AWS::AutoScaling::AutoScalingGroup', 'Custom::SkiffBootstrapTokens']) expect(ty.has(x), x).toBe(true);
  }, 120_000);

  it('context skiff:nodes/frontDoor/bootstrap "false", skiff:clusterName, skiff:maxObjectsPerNamespace and skiff:eventTtlSeconds: an environment-agnostic control plane', () => {
    const { template: t, environment } = runApp({
      'skiff:nodes': 'false',
      'skiff:frontDoor': 'false',
      'skiff:bootstrap': 'false',
      'skiff:clusterName': 'demo',
      'skiff:maxObjectsPerNamespace': '2000',
      'skiff:eventTtlSeconds': '600',
    });
    const api = Object.entries(t.Resources).find(([id, r]: [string, Json]) => id.startsWith('ClusterApiServer') && r.Type === 'AWS::Lambda::Function')![1] as Json;
    expect(api.Properties.Environment.Variables[MAX_OBJECTS_ENV]).toBe('2000');
    expect(api.Properties.Environment.Variables[EVENT_TTL_ENV]).toBe('600');
    expect(environment).toBe('aws://unknown-account/unknown-region');
    const ty = new Set(Object.values(t.Resources).map((r: Json) => r.Type));
    for (const x of ['AWS::CloudFront::Distribution', 'AWS::EC2::VPC', 'Custom::SkiffBootstrapTokens']) expect(ty.has(x), x).toBe(false);
    expect(t.Outputs.ClusterName.Value).toBe('demo');
  }, 120_000);
});
