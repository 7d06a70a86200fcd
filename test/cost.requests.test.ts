// The request counts behind `npm run cost` (infra/cost-model.ts), counted here on the real code: the
// apiserver pipeline, the node agent's own classes (NodeStatusReporter, Informer, PodWorker on the real
// Docker Engine), and the scheduler and controller-manager stream handlers fed the real DynamoDB stream
// records of each write, over the DynamoDB backend on moto. Every DynamoDB request is recorded by an SDK
// middleware (command, item kinds, bytes); request units are worked out from item sizes by DynamoDB's
// rules, since moto's ConsumedCapacity is not DynamoDB's (a 5 KB PutItem reports 1 unit, a strongly
// consistent GetItem 0.5, TransactWriteItems nothing). The recipes (which requests each operation makes)
// must EQUAL the model's table, so the model cannot drift from the code without this test failing.

import { Auditor, DEFAULT_AUDIT_POLICY } from '../lambdas/apiserver/audit.ts';
import { DEFAULT_HISTORY_RETENTION_SECONDS, DynamoHistoryStore } from '../lambdas/storage/history.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SQSClient } from '@aws-sdk/client-sqs';
import { NodeUsageStore, USAGE_PK_PREFIX } from '../lambdas/apiserver/node-usage.ts';
import { DeleteItemCommand, DescribeTableCommand, UpdateItemCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeStreamCommand, DynamoDBStreamsClient, GetRecordsCommand, GetShardIteratorCommand } from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBRecord } from 'aws-lambda';
import type Docker from 'dockerode';
import { dynamoTestEndpoint, uniqueTableName } from './support/dynamodb.ts';
import { requireDocker, TEST_IMAGE } from './support/docker.ts';
import { DynamoBackend, ensureTable } from '../lambdas/storage/dynamodb.ts';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { ADMIN_USER, newToken, nodeUser, storeToken } from '../lambdas/apiserver/auth.ts';
import { ApiError } from '../lambdas/machinery/status.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { createControllerHandlers, FULL_RESYNC_MS, RESYNC_PAGE as STREAM_RESYNC_PAGE, streamFilterPatterns } from '../lambdas/controllers/stream.ts';
import { filterMatches } from './support/lambda-filter.ts';
import type { Controller, ControllerContext } from '../lambdas/controllers/controller.ts';
import { createScheduler } from '../lambdas/scheduler/scheduler.ts';
import { leases, reservationName, RESERVATION_NAMESPACE, RESERVATIONS_ANNOTATION } from '../lambdas/scheduler/reservation.ts';
import { KubeClient, type WatchEvent } from '../node-agent/kube-client.ts';
import { NodeStatusReporter } from '../node-agent/node.ts';
import { Informer } from '../node-agent/informer.ts';
import { PodWorker } from '../node-agent/pods.ts';
import { DockerRuntime, LABELS } from '../node-agent/runtime.ts';
import { ProbeSet } from '../node-agent/probing.ts';
import { DEFAULT_PAUSE_IMAGE, ensureBusyboxImage } from '../node-agent/images.ts';
import { readFileSync } from 'node:fs';
import {
  BATCHING_WINDOW_SECONDS,
  CURRENT_AGENT,
  FUNCTIONS,
  RESYNC_PAGE,
  itemBytes,
  LAMBDA_MEMORY_MB,
  MAX_WATCH_SECONDS,
  LARGE_CLUSTER,
  LOG_PARTITIONS,
  LIST_PAGE,
  MONTH_SECONDS,
  SWITCH_PERIOD_SECONDS,
  monthlyBill,
  scaleLimits,
  MEASURED_HANDLER_MS,
  OPERATIONS,
  recipeCapacity,
  recipeDifference,
  REFERENCE_SIZES,
  type Fn,
  type OpCount,
  type Operation,
  type Sizes,
} from '../infra/cost-model.ts';

const ddb = await dynamoTestEndpoint();
const docker = ddb ? await requireDocker() : undefined;
const ready = !!ddb && !!docker;

type Item = Record<string, AttributeValue>;

// ---- counting DynamoDB requests ----

/** The kind of a table item, as the model names it: counter, log, token, or the resource (pods, leases...). */
function kindOf(it: Item | undefined): string {
  const pk = it?.pk?.S ?? '';
  if (pk === 'meta') {
    const sk = it?.sk?.S ?? '';
    // resync#<function>: how far that function's scheduled resync read the log (stream.ts resyncAll).
    return sk.startsWith('index#') ? 'index-marker' : sk.startsWith('feed#') ? 'feed-marker' : sk.startsWith('resync#') ? 'resync-mark' : sk === 'settled' ? 'settled' : 'counter';
  }
  if (pk.startsWith('idx#pods-by-node#')) return 'pods-by-node'; // index items: a node's pods (storage/indexes.ts)
  if (pk.startsWith('hist#')) return `history:${/^hist#\/registry\/[^/]+\/([^/]+)\//.exec(pk)?.[1] ?? '?'}`; // an object's history entry (storage/history.ts)
  if (pk.startsWith('usage#')) return 'usage'; // a node's usage reports (`kubectl top` deployed, apiserver/node-usage.ts)
  if (pk.startsWith('chg#')) return 'changes'; // a Service's or Endpoints' change, in its collection's feed
  if (pk.startsWith('del#')) return 'tombstone'; // a key's last delete (a create commits only above it)
  if (pk === 'log' || pk.startsWith('log#')) return 'log'; // the change log, in 16 partitions by revision
  if (pk === 'count') return 'count'; // a namespace's object count (the runaway-write guard)
  const m = /^obj#\/registry\/([^/]+)\/([^/]+)\//.exec(pk);
  if (!m) return `?${pk}`;
  if (m[1] === 'skiff.io' && m[2] === 'tokens') return 'token';
  // The scheduler's per-node reservation records are Leases too; their size grows with the pods in flight to the node.
  if (m[2] === 'leases' && it?.sk?.S?.startsWith(`${RESERVATION_NAMESPACE}/${reservationName('')}`)) return 'reservations';
  return m[2]!;
}
const keyOf = (it: Item) => `${it.pk?.S}\0${it.sk?.S}`;

interface Call {
  fn: Fn;
  access: string;
  rru: number;
  wru: number;
}

/** Every item's current size, so a replacing Put or a Delete is charged by DynamoDB's rule (the larger size). */
const stored = new Map<string, number>();
let recording: Call[] | undefined;

/**
 * Records each request a client sends: "Command kind[ type]" and the request units it consumes.
 * Rules (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html):
 * reads 1 unit per 4 KB (strongly consistent; all of Skiff's reads are), a Query sums the items it
 * reads before rounding, an absent item still costs 1; writes 1 unit per 1 KB of the larger of the old
 * and new item; transactional requests cost twice.
 */
function instrument(client: DynamoDBClient, fn: Fn): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = String((context as { commandName?: string }).commandName ?? '').replace(/Command$/, '');
      const input = args.input as Record<string, any>;
      const out = await next(args).catch((e: unknown) => {
        if (recording && command === 'TransactWriteItems') recording.push({ fn, access: `${command} FAILED ${(e as Error).name}`, rru: 0, wru: 0 });
        throw e;
      });
      const output = out.output as Record<string, any>;
      // BatchGetItem says it per table.
      const strong = input.ConsistentRead === true || Object.values((input.RequestItems ?? {}) as Record<string, { ConsistentRead?: boolean }>).some((r) => r.ConsistentRead === true);
      const readUnits = (bytes: number) => Math.max(1, Math.ceil(bytes / 4096)) * (strong ? 1 : 0.5);
      if (command === 'GetItem') {
        const bytes = stored.get(keyOf(input.Key)) ?? (output.Item ? itemBytes(output.Item) : 0);
        recording?.push({ fn, access: `GetItem ${kindOf(input.Key)}`, rru: readUnits(bytes), wru: 0 });
      } else if (command === 'Query') {
        const items: Item[] = output.Items ?? [];
        const bytes = items.reduce((s, it) => s + (stored.get(keyOf(it)) ?? itemBytes(it)), 0);
        const pk = String(input.ExpressionAttributeValues?.[':pk']?.S ?? '');
        // A Query narrowed by a sort key prefix reads one namespace of the collection, not all of it.
        // kube-node-lease (node heartbeats, reservation records) is named: it is not a workload namespace.
        const rest = String(input.ExpressionAttributeValues?.[':rest']?.S ?? input.ExpressionAttributeValues?.[':lo']?.S ?? '');
        const scope = rest ? (rest.startsWith(`${RESERVATION_NAMESPACE}/`) ? ` ${RESERVATION_NAMESPACE}` : ' namespace') : '';
        const kind = kindOf({ pk: { S: pk } });
        // "Query counter": the revision counter and the settled watermark next to it, read together.
        recording?.push({ fn, access: `Query ${kind}${['log', 'counter', 'changes'].includes(kind) ? '' : scope}`, rru: readUnits(bytes), wru: 0 });
      } else if (command === 'BatchGetItem') {
        // Each item is read (and rounded up) on its own.
        const items: Item[] = Object.values(output.Responses ?? {}).flat() as Item[];
        const kinds = [...new Set(Object.values(input.RequestItems as Record<string, { Keys: Item[] }>).flatMap((r) => r.Keys.map((k) => kindOf(k))))];
        recording?.push({ fn, access: `BatchGetItem ${kinds.join(',')}`, rru: items.reduce((u, it) => u + readUnits(stored.get(keyOf(it)) ?? itemBytes(it)), 0), wru: 0 });
      } else if (command === 'TransactWriteItems') {
        let units = 0;
        let readUnitsOf = 0;
        let object = '';
        let counted = '';
        let indexed = '';
        let fed = '';
        for (const t of input.TransactItems as Record<string, any>[]) {
          if (t.Put) {
            const item = t.Put.Item as Item;
            const bytes = Math.max(itemBytes(item), stored.get(keyOf(item)) ?? 0);
            units += 2 * Math.ceil(bytes / 1024);
            if (kindOf(item) === 'log') object += ` ${item.type?.S}`;
            else if (kindOf(item) === 'pods-by-node') indexed = ' +index';
            else if (kindOf(item) === 'changes') fed = ' +change';
            else if (kindOf(item) === 'tombstone') expect(object.endsWith(' delete')).toBe(true); // every delete's, priced by accessCapacity
            else if (kindOf(item) !== 'counter') object = kindOf(item) + object;
            stored.set(keyOf(item), itemBytes(item));
          } else if (t.Delete) {
            const key = t.Delete.Key as Item;
            units += 2 * Math.max(1, Math.ceil((stored.get(keyOf(key)) ?? 0) / 1024));
            if (kindOf(key) === 'pods-by-node') indexed = ' +index';
            else object = kindOf(key) + object;
            stored.delete(keyOf(key));
          } else if (t.Update) {
            // Only count items are updated in place (the namespace's object count, charges): pk, sk and a number.
            const key = t.Update.Key as Item;
            expect(kindOf(key)).toBe('count');
            const bytes = itemBytes({ ...key, n: { N: '100000' } });
            units += 2 * Math.ceil(Math.max(bytes, stored.get(keyOf(key)) ?? 0) / 1024);
            stored.set(keyOf(key), bytes);
            // The first is the namespace's object count; any more are charges (an owner's dependents, quota).
            counted = counted ? `${counted} +charge` : ' +count';
          } else if (t.ConditionCheck) {
            // Every create's look at its key's tombstone: a transactional read, 2 units per 4 KB (an absent item: 1 x 2).
            const key = t.ConditionCheck.Key as Item;
            expect(kindOf(key)).toBe('tombstone');
            readUnitsOf += 2 * Math.max(1, Math.ceil((stored.get(keyOf(key)) ?? 0) / 4096));
          }
        }
        recording?.push({ fn, access: `TransactWriteItems ${object}${counted}${indexed}${fed}`, rru: readUnitsOf, wru: units });
      } else if (command === 'PutItem') {
        // Object history entries (storage/history.ts): a new item each, 1 unit per KB.
        const item = input.Item as Item;
        recording?.push({ fn, access: `PutItem ${kindOf(item)}`, rru: 0, wru: Math.ceil(itemBytes(item) / 1024) });
        stored.set(keyOf(item), itemBytes(item));
      } else if (command === 'UpdateItem') {
        // The revision counter (ADD) and the settled watermark (SET): pk, sk and a number each.
        const key = input.Key as Item;
        const bytes = itemBytes({ ...key, rev: { N: '1000000000' } });
        recording?.push({ fn, access: `UpdateItem ${kindOf(key)}`, rru: 0, wru: Math.ceil(Math.max(bytes, stored.get(keyOf(key)) ?? 0) / 1024) });
        stored.set(keyOf(key), bytes);
      } else if (recording) {
        recording.push({ fn, access: command, rru: 0, wru: 0 });
      }
      return out;
    },
    { step: 'initialize', name: 'skiffCostCounter' },
  );
}

// ---- the cluster ----

let tableName: string;
let setupBackend: DynamoBackend;
let apiClient: DynamoDBClient;
const workDir = mkdtempSync(join(tmpdir(), 'skiff-cost-'));
const NODE_PREFIX = `c${process.pid}-n`;
const nodeNames = [1, 2, 3, 4].map((i) => `${NODE_PREFIX}${i}`);
const adminToken = newToken();
const nodeTokens = new Map(nodeNames.map((n) => [n, newToken()]));

/** A new apiserver per request: a Lambda instance whose token cache is cold (the conservative case). */
function freshApi(): ApiServer {
  return new ApiServer({ backend: new DynamoBackend({ client: apiClient, tableName }), history: deployedHistory(apiClient), audit: countingAuditor, nodeUsage: deployedUsage() });
}

/**
 * The nodes' usage as the deployed apiserver keeps it (node-usage.ts). The operations measured here make
 * no SQS request (a read while reports are fresh and the demand recent), so its SQS endpoint is nowhere:
 * a request there would fail the test.
 */
function deployedUsage(): NodeUsageStore {
  return new NodeUsageStore({ client: apiClient, tableName, queuePrefix: 'cost-', sqs: new SQSClient({ endpoint: 'http://127.0.0.1:9', region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }) });
}

/** The deployed default audit policy; its events counted (the model prices each as AUDIT_EVENT_BYTES of logs). */
let auditEvents = 0;
const countingAuditor = new Auditor(DEFAULT_AUDIT_POLICY, { write: (events) => void (auditEvents += events.length) });

/** Object history as the deployed functions keep it (dynamoHistoryFromEnv's default): a PutItem per recorded write. */
function deployedHistory(client: DynamoDBClient) {
  return { store: new DynamoHistoryStore({ client, tableName }), retentionSeconds: DEFAULT_HISTORY_RETENTION_SECONDS };
}

let apiRequests = 0;
const inFlight = new Set<Promise<unknown>>();
/**
 * The agent's requests go one at a time here (its events are fire-and-forget): concurrent writes from
 * separate apiserver instances would race for the revision counter and add retries that depend on
 * timing. Which requests are made does not change; the model notes the retries it leaves out.
 */
let queue: Promise<unknown> = Promise.resolve();

/** The agent's KubeClient with the network hop taken out: each request goes to the apiserver pipeline. */
class DirectClient extends KubeClient {
  /** `api`: one warm apiserver instance for all this client's requests (by default each gets a fresh one). */
  constructor(
    token: string,
    pollMs?: number,
    private readonly api?: ApiServer,
  ) {
    super({ server: 'http://skiff.invalid', token, pollMs });
  }

  override request<T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    const p = queue.then(() => this.direct<T>(method, path, body, contentType));
    queue = p.catch(() => undefined);
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p)).catch(() => {});
    return p;
  }

  private async direct<T>(method: string, path: string, body: unknown, contentType: string): Promise<T> {
    const u = new URL(path, 'http://skiff.invalid');
    if (recording) apiRequests++;
    const t0 = performance.now();
    const before = recording?.length ?? 0;
    const res = await (this.api ?? freshApi()).handle({
      method,
      path: u.pathname,
      query: u.searchParams,
      headers: { authorization: `Bearer ${this.token}`, 'content-type': contentType, accept: 'application/json' },
      body: Buffer.from(body === undefined ? '' : JSON.stringify(body)),
    });
    if (recording) timings.push({ fn: 'apiserver', ms: performance.now() - t0, calls: recording.length - before });
    const text = typeof res.body === 'string' ? res.body : '';
    const parsed = text ? JSON.parse(text) : undefined;
    if (res.status >= 400) throw new ApiError(parsed?.reason ?? 'Unknown', parsed?.message ?? `HTTP ${res.status}`, parsed?.details, res.status);
    return parsed as T;
  }

  /** A watch through the same in-process apiserver; its answer streams as the Lambda's would. */
  override async *watch(path: string, resourceVersion: string): AsyncGenerator<WatchEvent> {
    const sep = path.includes('?') ? '&' : '?';
    const u = new URL(`${path}${sep}watch=1&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(resourceVersion)}`, 'http://skiff.invalid');
    if (recording) apiRequests++;
    const t0 = performance.now();
    const before = recording?.length ?? 0;
    const res = await (this.api ?? freshApi()).handle({
      method: 'GET',
      path: u.pathname,
      query: u.searchParams,
      headers: { authorization: `Bearer ${this.token}`, accept: 'application/json' },
      body: Buffer.from(''),
    });
    if (res.status >= 400) throw new ApiError('InternalError', `watch: HTTP ${res.status}`, undefined, res.status);
    let buf = '';
    for await (const chunk of res.body as AsyncIterable<string>) {
      buf += chunk;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) yield JSON.parse(line) as WatchEvent;
      }
    }
    if (recording) timings.push({ fn: 'apiserver', ms: performance.now() - t0, calls: recording.length - before });
  }

  private get token(): string {
    return (this as unknown as { config: { token: string } }).config.token;
  }
}

async function settleRequests(): Promise<void> {
  while (inFlight.size) await Promise.allSettled([...inFlight]);
}

// ---- the control loops, as their Lambda functions run them ----

interface LoopFn {
  name: Fn;
  patterns: unknown[];
  handlers: ReturnType<typeof createControllerHandlers>;
}
const loops: LoopFn[] = [];
const invocations: Record<Fn, number> = { apiserver: 0, scheduler: 0, controllerManager: 0 };
/** The scheduler function's one instance (its snapshot stays warm across its invocations, as on Lambda). */
const scheduler = createScheduler();
/** Handler times (local: this machine, moto) with the DynamoDB requests each made. */
const timings: { fn: string; ms: number; calls: number }[] = [];

function loopFn(name: Fn, controllers: Controller[], client: DynamoDBClient): LoopFn {
  instrument(client, name);
  // As cloud-context.ts makes it: the backend is also the resync's log.
  const backend = new DynamoBackend({ client, tableName });
  const ctx: Promise<ControllerContext> = Promise.resolve({ ...new ApiServer({ backend, shippedPolicyForLoops: true, serviceAccountAdmission: true, history: deployedHistory(client) }).controllerContext(), resyncLog: backend });
  return {
    name,
    patterns: streamFilterPatterns(...controllers).map((p) => JSON.parse(p)),
    handlers: createControllerHandlers(controllers, () => ctx),
  };
}

/**
 * The next resync of each function reads everything (as hourly, or with no mark): its mark forgotten,
 * with the keys it holds to see again (none here: the test's loops ask for no requeue).
 */
async function forgetMarks(): Promise<void> {
  for (const name of ['scheduler', 'controller-manager']) await plainClient.send(new DeleteItemCommand({ TableName: tableName, Key: { pk: { S: 'meta' }, sk: { S: `resync#${name}` } } }));
}
const fullResync = (i: number) => async () => {
  await forgetMarks();
  await loops[i]!.handlers.resync();
};
const resyncBoth = async () => {
  for (const f of loops) await f.handlers.resync();
};

const seen = new Set<string>();
let streams: DynamoDBStreamsClient;
let plainClient: DynamoDBClient; // uninstrumented: the test's own look at the table's stream ARN

async function newStreamRecords(): Promise<DynamoDBRecord[]> {
  const arn = (await plainClient.send(new DescribeTableCommand({ TableName: tableName }))).Table!.LatestStreamArn!;
  const shards = (await streams.send(new DescribeStreamCommand({ StreamArn: arn }))).StreamDescription!.Shards!;
  const out: DynamoDBRecord[] = [];
  for (const s of shards) {
    let it = (await streams.send(new GetShardIteratorCommand({ StreamArn: arn, ShardId: s.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
    for (let i = 0; it && i < 1000; i++) {
      const r = await streams.send(new GetRecordsCommand({ ShardIterator: it, Limit: 1000 }));
      for (const rec of (r.Records ?? []) as unknown as DynamoDBRecord[]) {
        const seq = rec.dynamodb!.SequenceNumber!;
        if (!seen.has(seq)) {
          seen.add(seq);
          out.push(rec);
        }
      }
      if (!r.Records?.length) break;
      it = r.NextShardIterator;
    }
  }
  return out;
}

/**
 * Delivers every new stream record to each function whose filter it passes, one record per invocation
 * (writes far apart, so each lands in its own 1 s batching window), until the writes the handlers make
 * in turn have been delivered too.
 */
/** Deliver every object record to every function, whatever the filters say (to count what a filtered-out kind would cost). */
let ignoreFilters = false;

async function drainStream(): Promise<void> {
  for (let round = 0; round < 50; round++) {
    const records = await newStreamRecords();
    if (!records.length) return;
    for (const rec of records) {
      for (const f of loops) {
        const passes = ignoreFilters ? !!rec.dynamodb?.Keys?.pk?.S?.startsWith('obj#') : f.patterns.some((p) => filterMatches(p, rec));
        if (!passes) continue;
        if (recording) invocations[f.name]++;
        const t0 = performance.now();
        const before = recording?.length ?? 0;
        await f.handlers.stream({ Records: [rec] });
        if (recording) timings.push({ fn: f.name, ms: performance.now() - t0, calls: recording.length - before });
      }
    }
  }
  throw new Error('the stream did not go quiet after 50 rounds');
}

interface Measured {
  count: OpCount;
  rru: Record<Fn, number>;
  wru: Record<Fn, number>;
  calls: Call[];
  /** The table's item sizes right after the operation, in the model's terms. */
  sizes?: Sizes;
}

/** Runs `work` and every stream-driven reaction to it, recording requests, units and invocations. */
async function measure(work: () => Promise<void>): Promise<Measured> {
  await drainStream();
  const before = modelSizesNow();
  const calls: Call[] = [];
  recording = calls;
  apiRequests = 0;
  auditEvents = 0;
  for (const k of Object.keys(invocations) as Fn[]) invocations[k] = 0;
  try {
    await work();
    await settleRequests();
    await drainStream();
  } finally {
    recording = undefined;
  }
  const dynamo: OpCount['dynamo'] = {};
  const rru = { apiserver: 0, scheduler: 0, controllerManager: 0 };
  const wru = { apiserver: 0, scheduler: 0, controllerManager: 0 };
  for (const c of calls) {
    const m = (dynamo[c.fn] ??= {});
    m[c.access] = (m[c.access] ?? 0) + 1;
    rru[c.fn] += c.rru;
    wru[c.fn] += c.wru;
  }
  const count: OpCount = {
    apiRequests,
    audited: auditEvents,
    invocations: { scheduler: invocations.scheduler, controllerManager: invocations.controllerManager },
    dynamo,
  };
  // Items the operation created or deleted exist on one side only: take each kind at its larger size.
  const after = modelSizesNow();
  const larger = (x: Record<string, number>, y: Record<string, number>) =>
    Object.fromEntries([...new Set([...Object.keys(x), ...Object.keys(y)])].map((k) => [k, Math.max(x[k] ?? 0, y[k] ?? 0)]));
  return {
    count,
    rru,
    wru,
    calls,
    sizes: { item: larger(before.item, after.item), collection: larger(before.collection, after.collection), namespaceCollection: larger(before.namespaceCollection, after.namespaceCollection) },
  };
}

/** The model's Sizes for the table as it is now: mean item bytes per kind, total bytes per collection. */
function modelSizesNow(): Sizes {
  const item: Record<string, number> = {};
  const collection: Record<string, number> = {};
  for (const [k, v] of Object.entries(sizesNow())) {
    item[k] = v.mean;
    collection[k] = v.n * v.mean;
  }
  // Reservations are Leases in kube-node-lease: a Query of leases reads both.
  collection.leases = (collection.leases ?? 0) + (collection.reservations ?? 0);
  // Everything of the test's workload is in one namespace; its Leases are all in kube-node-lease.
  return { item, collection, namespaceCollection: { ...collection, leases: 0, 'leases kube-node-lease': collection.leases } };
}

const results: Record<string, Measured> = {};
const agents = new Map<string, { kube: DirectClient; reporter: NodeStatusReporter }>();
const pods = findResource('', 'v1', 'pods')!;
const namespaces = findResource('', 'v1', 'namespaces')!;
let runtime: DockerRuntime;
let worker: PodWorker;

async function registerNode(name: string): Promise<void> {
  const kube = new DirectClient(nodeTokens.get(name)!, 10_000);
  const reporter = new NodeStatusReporter(kube, {
    name,
    internalIP: '10.0.0.1',
    port: 10250,
    servingCertSha256: 'f'.repeat(64),
    dataDir: workDir,
    runtimeVersion: 'docker://28.0.0',
    pods: 110,
    leaseDurationSeconds: 240,
    runtimeUp: async () => true,
  });
  await reporter.register();
  await settleRequests();
  agents.set(name, { kube, reporter });
}

beforeAll(async () => {
  if (!ready) return;
  tableName = uniqueTableName('skiff-cost');
  await ensureTable(ddb!.client, tableName);
  apiClient = ddb!.newClient();
  plainClient = ddb!.newClient();
  instrument(apiClient, 'apiserver');
  streams = new DynamoDBStreamsClient({ endpoint: ddb!.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  setupBackend = new DynamoBackend({ client: apiClient, tableName });
  await storeToken(setupBackend, adminToken, ADMIN_USER);
  for (const [n, t] of nodeTokens) await storeToken(setupBackend, t, nodeUser(n));
  const api = freshApi();
  for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) await api.registry.create(namespaces, undefined, { metadata: { name: ns } });
  // As the deployed bootstrap does: the table's dependents are counted (apiserver/dependents.ts).
  await api.registry.countExistingDependents();

  // The controller manager's controllers exactly as its Lambda builds them, with node IPAM on (a cloud
  // cluster with nodes sets SKIFF_CLUSTER_CIDR); the route controller needs a VPC and is left out.
  process.env.SKIFF_CLUSTER_CIDR ??= '10.244.0.0/16';
  const { controllers } = await import('../lambdas/controllers/lambda.ts');
  loops.push(loopFn('scheduler', [scheduler], ddb!.newClient()));
  loops.push(loopFn('controllerManager', controllers, ddb!.newClient()));

  for (const n of nodeNames.slice(0, 3)) await registerNode(n);
  // A warm controller manager has read, once per instance, that the dependents' counts are complete (the
  // garbage collector's first deleted object asks): a ConfigMap created and deleted does that here.
  const configmaps = findResource('', 'v1', 'configmaps')!;
  await api.registry.create(configmaps, 'default', { metadata: { name: 'warm-up' } });
  await api.registry.delete(configmaps, 'default', 'warm-up', {});
  await drainStream();
  for (const f of loops) await f.handlers.resync(); // warm instances: the scheduler's snapshot is built
  await drainStream();

  runtime = new DockerRuntime(docker!, nodeNames[0]!, 'bridge');
  // With the agent's pause command (node-agent/agent.ts): built with the default /bin/sh, the image
  // would exit at once and break every pod on this Engine, in this test and in any other that finds it.
  await ensureBusyboxImage(docker!, DEFAULT_PAUSE_IMAGE, { cmd: ['/bin/sleep', '2147483647'] });
  worker = new PodWorker({
    runtime,
    kube: agents.get(nodeNames[0]!)!.kube,
    nodeName: nodeNames[0]!,
    hostIP: '10.0.0.1',
    podsDir: join(workDir, 'pods'),
    pauseImage: DEFAULT_PAUSE_IMAGE,
    backoffBaseMs: 10_000,
    backoffMaxMs: 300_000,
    probes: new ProbeSet(runtime, () => {}),
    now: Date.now,
  });
}, 120_000);

afterAll(async () => {
  if (docker) await removeContainers(docker);
  streams?.destroy();
  await ddb?.stop();
  rmSync(workDir, { recursive: true, force: true });
});

async function removeContainers(engine: Docker): Promise<void> {
  for (const n of nodeNames) {
    const cs = await engine.listContainers({ all: true, filters: { label: [`${LABELS.node}=${n}`] } });
    for (const c of cs) await engine.getContainer(c.Id).remove({ force: true }).catch(() => {});
  }
}

const POD: KubeObject = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web-1', namespace: 'default', labels: { app: 'web' } },
  // On the first node, so every run places its pods alike (the scheduler breaks ties at random).
  spec: {
    containers: [{ name: 'web', image: TEST_IMAGE, command: ['sleep', '3600'] }],
    terminationGracePeriodSeconds: 1,
    nodeSelector: { 'kubernetes.io/hostname': nodeNames[0] },
  },
};

const RC: KubeObject = {
  apiVersion: 'v1',
  kind: 'ReplicationController',
  metadata: { name: 'app', namespace: 'default' },
  // No service account token mounted: the test's agent has no token source (the bare pod above was made
  // before the default ServiceAccount, so it has none either).
  spec: { replicas: 1, selector: { app: 'app' }, template: { metadata: { labels: { app: 'app' } }, spec: { ...POD.spec, automountServiceAccountToken: false } } },
};

const SERVICE: KubeObject = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'app', namespace: 'default' },
  spec: { selector: { app: 'app' }, ports: [{ port: 80, targetPort: 8080 }] },
};

async function podNow(): Promise<KubeObject> {
  return freshApi().registry.get(pods, 'default', 'web-1');
}

describe.skipIf(!ready)('requests per operation (the cost model counts)', () => {
  const agent = () => agents.get(nodeNames[0]!)!;

  it('counts every operation of the model on the real code', async () => {
    results.leaseRenewal = await measure(() => agent().reporter.renewLease());
    // The same renewal delivered past the filters: what waking both loops with heartbeats would cost.
    ignoreFilters = true;
    try {
      results.leaseWake = diff(await measure(() => agent().reporter.renewLease()), results.leaseRenewal);
    } finally {
      ignoreFilters = false;
    }
    results.nodeStatusCheck = await measure(() => agent().reporter.writeStatus(false));
    results.nodeStatusWrite = await measure(() => agent().reporter.writeStatus(true));
    // `kubectl top` deployed: a node's usage report, then a read of it while the demand is recent (a demand
    // recorded a moment ago, as the first read would have: its write and message are the model's usageDemandHour).
    const usage = { time: new Date().toISOString(), window: 10, usageNanoCores: 1e8, workingSetBytes: 1 << 26 };
    results.usageReport = await measure(async () => void (await new DirectClient(nodeTokens.get(nodeNames[0]!)!).update(`/api/v1/nodes/${nodeNames[0]}/usage`, { node: { nodeName: nodeNames[0], usage }, pods: [] })));
    await plainClient.send(new UpdateItemCommand({ TableName: tableName, Key: { pk: { S: `${USAGE_PK_PREFIX}${nodeNames[0]}` }, sk: { S: 'usage' } }, UpdateExpression: 'SET demandedAt = :now', ExpressionAttributeValues: { ':now': { N: String(Date.now()) } } }));
    results.usageRead = await measure(async () => expect((await new DirectClient(adminToken).get<KubeObject>(`/apis/metrics.k8s.io/v1beta1/nodes/${nodeNames[0]}`)).metadata.name).toBe(nodeNames[0]));
    const poll = (path: string) => async () => {
      const inf = new Informer(agent().kube, path).start();
      await inf.synced;
      await inf.stop();
    };
    results.pollServices = await measure(poll('/api/v1/services'));
    results.pollEndpoints = await measure(poll('/api/v1/endpoints'));
    // What a deployed agent does instead after its first list (Informer changesOnly): ask what changed
    // since its last look, a watch the apiserver ends once caught up. Nothing changed...
    const kube = agent().kube;
    let endpointsAt = (await kube.list('/api/v1/endpoints')).metadata.resourceVersion;
    const catchUp = async () => {
      for await (const ev of kube.watch('/api/v1/endpoints?timeoutSeconds=1&drain=true', endpointsAt)) endpointsAt = ev.object.metadata.resourceVersion ?? endpointsAt;
    };
    results.catchUpUnchanged = await measure(catchUp);
    // ...and one Endpoints changed since: what each change adds (the model multiplies it by changes and nodes).
    const probe = { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'cost-probe', namespace: 'default' }, subsets: [{ addresses: [{ ip: '10.1.2.3' }], ports: [{ port: 80 }] }] };
    const beforeProbe = endpointsAt;
    await new DirectClient(adminToken).create('/api/v1/namespaces/default/endpoints', probe);
    await settleRequests();
    await drainStream();
    results.catchUpPerChange = diff(await measure(catchUp), results.catchUpUnchanged);
    // ...and the same change found by another node on a warm function that read it for a first node: it is
    // in the function's window of the feed (storage/dynamodb.ts FeedWindow), so no change is read again.
    const warm = freshApi();
    const catchUpOnWarm = (node: string) => async () => {
      const k = new DirectClient(nodeTokens.get(node)!, undefined, warm);
      let events = 0;
      for await (const ev of k.watch('/api/v1/endpoints?timeoutSeconds=1&drain=true', beforeProbe)) if (ev.type !== 'BOOKMARK') events++;
      expect(events).toBe(1); // the probe, for both nodes
    };
    await catchUpOnWarm(nodeNames[1]!)();
    results.catchUpPerChangeShared = diff(await measure(catchUpOnWarm(nodeNames[2]!)), results.catchUpUnchanged);
    results.resyncScheduler = await measure(() => timed('scheduler resync', fullResync(0)));
    results.resyncControllerManager = await measure(() => timed('controllerManager resync', fullResync(1)));
    // The every-5-minutes resync, from the log since the last one: nothing changed...
    await resyncBoth();
    results.resyncChangedScheduler = await measure(() => loops[0]!.handlers.resync());
    results.resyncChangedControllerManager = await measure(() => loops[1]!.handlers.resync());
    // ...and a heartbeat since (a Lease renewed: a log item each function reads, and the keys it names).
    await agent().reporter.renewLease();
    await drainStream();
    results.resyncChangedPerHeartbeat = diff(await measure(resyncBoth), await measure(resyncBoth));

    // A pod: created by a user, bound by the scheduler (stream), started by its node's agent.
    const admin = new DirectClient(adminToken);
    results.podCreate = await measure(async () => void (await admin.create('/api/v1/namespaces/default/pods', POD)));
    const bound = await podNow();
    expect(bound.spec?.nodeName).toBeTruthy();
    // The scheduler chose a node; the pod is started by that node's agent (same recipe on any node).
    (worker as unknown as { o: { nodeName: string } }).o.nodeName = bound.spec!.nodeName;
    runtime = new DockerRuntime(docker!, bound.spec!.nodeName, 'bridge');
    (worker as unknown as { o: { runtime: DockerRuntime } }).o.runtime = runtime;
    results.podStart = await measure(async () => void (await worker.sync(bound, await runtime.list(bound.metadata.uid))));
    // The node's poll of its pods, with its one pod on it (the index names it; the model scales it by
    // the pods a node has).
    results.pollPods = await measure(poll(`/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${nodeNames[0]}`)}`));
    const running = await podNow();
    expect(running.status?.phase, JSON.stringify(running.status)).toBe('Running');
    console.log('sizes', JSON.stringify(sizesNow()));
    // The same sync again from the cached pod the agent holds until its next poll (its own status write is not in it).
    results.podStatusConflict = await measure(async () => void (await worker.sync(bound, await runtime.list(bound.metadata.uid))));
    results.podResyncUnchanged = await measure(async () => void (await worker.sync(running, await runtime.list(running.metadata.uid))));

    // What the pod's life adds to the next resync of each (its writes read from the log, their keys
    // reconciled again: no-ops, the stream did the work) is measured in two parts around the neighbour below.
    const lifeSoFar = await measure(resyncBoth);
    const nothing = await measure(resyncBoth);

    // In a cluster each node takes pods all the time, and a node's next reservation prunes the entries of
    // its pods bound at a revision the scheduler's snapshot covers (scheduler/reservation.ts): a pod lives
    // for hours, its scheduler catches up every minute, so by the time the pod ends its entry is long gone.
    // So the snapshot catches up (here: built again) and a neighbour is scheduled to the same node, and
    // web-1's end releases nothing.
    scheduler.cache.invalidate();
    await admin.create('/api/v1/namespaces/default/pods', { ...POD, metadata: { ...POD.metadata, name: 'web-0' } });
    await settleRequests();
    await drainStream();
    const record = async () => (await freshApi().registry.get(leases, RESERVATION_NAMESPACE, reservationName(bound.spec!.nodeName!))).metadata.annotations?.[RESERVATIONS_ANNOTATION];
    expect(await record()).not.toContain(bound.metadata.uid);
    expect(await record()).toContain('default/web-0');
    await resyncBoth();

    results.podDelete = await measure(async () => void (await admin.delete('/api/v1/namespaces/default/pods/web-1')));
    const deleting = await podNow();
    expect(deleting.metadata.deletionTimestamp).toBeTruthy();
    results.podTerminate = await measure(async () => void (await worker.sync(deleting, await runtime.list(deleting.metadata.uid))));
    await expect(podNow()).rejects.toThrow(/not found/);
    results.resyncChangedPerPodLife = diff(sum(lifeSoFar, await measure(resyncBoth)), sum(nothing, await measure(resyncBoth)));
    // The neighbour goes (never started: no grace), and its entry with it.
    await admin.delete('/api/v1/namespaces/default/pods/web-0?gracePeriodSeconds=0');
    await settleRequests();
    await drainStream();
    expect(await record()).toBe('{}');

    // The pod's node kept its (now empty) reservation record: what that adds to the scheduler's resync.
    const s3 = await measure(fullResync(0));
    const c3 = await measure(fullResync(1));
    results.resyncSchedulerPerReservation = diff(s3, results.resyncScheduler);

    // What one more node adds to each resync.
    await registerNode(nodeNames[3]!);
    await drainStream();
    const s4 = await measure(fullResync(0));
    const c4 = await measure(fullResync(1));
    results.resyncSchedulerPerNode = diff(s4, s3);
    results.resyncControllerManagerPerNode = diff(c4, c3);
    // And to each resync from the log (node lifecycle looks at every node each time: its clock).
    await resyncBoth();
    results.resyncChangedPerNode = diff(await measure(resyncBoth), sum(results.resyncChangedScheduler!, results.resyncChangedControllerManager!));

    // What one workload unit adds to each resync: a ReplicationController with its pod, and a Service
    // selecting it with its Endpoints (made by the controllers themselves, from the stream).
    await admin.create('/api/v1/namespaces/default/replicationcontrollers', RC);
    await admin.create('/api/v1/namespaces/default/services', SERVICE);
    await settleRequests();
    await drainStream();
    await drainStream();
    const s5 = await measure(fullResync(0));
    const c5 = await measure(fullResync(1));
    results.resyncSchedulerPerUnit = diff(s5, s4);
    results.resyncControllerManagerPerUnit = diff(c5, c4);
    console.log('sizes with a unit', JSON.stringify(sizesNow()));

    // The scenario's pods are a unit's: an RC's, behind a Service. When one starts (Ready, with an IP) its
    // Service's Endpoints and EndpointSlice take it in and its RC's status counts it; the bare pod above
    // moves none of them. Measured on a unit of two whose first pod already serves, so the measured one
    // joins Endpoints and a slice that exist (as in a unit of ten; a Service's first pod makes its slice).
    const rcRes = findResource('', 'v1', 'replicationcontrollers')!;
    const endpointsRes = findResource('', 'v1', 'endpoints')!;
    await freshApi().registry.guaranteedUpdate(rcRes, 'default', 'app', undefined, {}, (rc) => ({ ...rc, spec: { ...rc.spec, replicas: 2 } }));
    await drainStream();
    await drainStream();
    const unitOf = async () => (await freshApi().registry.list(pods, 'default')).items.filter((p) => p.metadata.labels?.app === 'app');
    const [first, unitPod] = await unitOf();
    expect([first?.spec?.nodeName, unitPod?.spec?.nodeName]).toEqual([nodeNames[0], nodeNames[0]]);
    await worker.sync(first!, await runtime.list(first!.metadata.uid));
    await settleRequests();
    await drainStream();
    const addresses = async () => (await freshApi().registry.get(endpointsRes, 'default', 'app')).subsets?.[0]?.addresses?.length ?? 0;
    expect(await addresses()).toBe(1);
    // What the unit's pod adds to a start (the same agent's sync; its loops on the stream).
    results.unitPodStart = diff(await measure(async () => void (await worker.sync(unitPod!, await runtime.list(unitPod!.metadata.uid)))), results.podStart!);
    expect(await addresses()).toBe(2);
    // ...and when it goes: deleted by a user, stopped by its agent, replaced by its RC (a unit's churned pod).
    // What that adds to a bare pod's delete, termination and creation: the loops' writes again.
    // As for web-1: by the time a unit's pod ends, a later reservation on its node has pruned its entry
    // (without this, whether the measured end releases it depends on the order of two stream batches).
    scheduler.cache.invalidate();
    await admin.create('/api/v1/namespaces/default/pods', { ...POD, metadata: { ...POD.metadata, name: 'web-2' } });
    await settleRequests();
    await drainStream();
    expect(await record()).not.toContain(unitPod!.metadata.uid);
    await admin.delete('/api/v1/namespaces/default/pods/web-2?gracePeriodSeconds=0');
    await settleRequests();
    await drainStream();
    await drainStream();
    expect(await record()).not.toContain('default/web-2');
    const unitEnd = await measure(async () => {
      await admin.delete(`/api/v1/namespaces/default/pods/${unitPod!.metadata.name}`);
      await settleRequests();
      await drainStream();
      const deleting = await freshApi().registry.get(pods, 'default', unitPod!.metadata.name!);
      await worker.sync(deleting, await runtime.list(deleting.metadata.uid));
    });
    results.unitPodEnd = diff(unitEnd, sum(sum(results.podDelete!, results.podTerminate!), results.podCreate!));
    const after = await unitOf();
    expect(after.map((p) => p.metadata.name)).not.toContain(unitPod!.metadata.name);
    expect(after).toHaveLength(2); // the first, and the replacement
    expect(await addresses()).toBe(1);

    if (process.env.SKIFF_COST_PRINT) console.log(JSON.stringify(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, { ...v.count, rru: v.rru, wru: v.wru }])), null, 1));
  }, 300_000);

  it('each operation makes exactly the requests infra/cost-model.ts says', () => {
    expect(Object.keys(results).sort()).toEqual(Object.keys(OPERATIONS).concat('podResyncUnchanged').sort());
    // A pod already reported, synced again from a fresh cache, costs nothing.
    expect(results.podResyncUnchanged!.count).toEqual({ apiRequests: 0, audited: 0, invocations: { scheduler: 0, controllerManager: 0 }, dynamo: {} });
    for (const op of Object.keys(OPERATIONS) as Operation[]) {
      // `audited` defaults to every request.
      const model: OpCount = OPERATIONS[op];
      expect({ op, ...results[op]!.count }).toEqual({ op, ...model, audited: model.audited ?? model.apiRequests });
    }
  });

  it("the model's request units match DynamoDB's rules applied to the real items", () => {
    // Units counted from the exact bytes of every request, against the model's units for the same recipe
    // at this cluster's item sizes (one mean size per kind, so a pod written small and read large differs
    // a little): within 2 units or 25 %.
    const rows: string[] = [];
    for (const op of Object.keys(OPERATIONS) as Operation[]) {
      // Differences of runs: sizes moved in between (unitPodEnd subtracts three other operations' runs).
      if (op.endsWith('PerNode') || op.endsWith('PerUnit') || op === 'unitPodEnd') continue;
      const m = results[op]!;
      for (const fn of FUNCTIONS) {
        const model = recipeCapacity((OPERATIONS[op] as OpCount).dynamo[fn], m.sizes!);
        rows.push(`${op} ${fn}: rru ${m.rru[fn]} (model ${model.rru}), wru ${m.wru[fn]} (model ${model.wru})`);
        for (const [counted, modelled] of [
          [m.rru[fn], model.rru],
          [m.wru[fn], model.wru],
        ] as const) {
          expect(Math.abs(counted - modelled), `${op} ${fn}: counted ${counted}, model ${modelled}`).toBeLessThanOrEqual(Math.max(2, 0.25 * counted));
        }
      }
    }
    if (process.env.SKIFF_COST_PRINT) console.log(rows.join('\n'));
  });

  it("the model's item sizes are this cluster's", () => {
    // REFERENCE_SIZES were taken from this test's objects; node and pod contents vary a little by host.
    const s = results.podStart!.sizes!.item;
    for (const kind of ['counter', 'namespaces', 'nodes', 'leases', 'reservations', 'podcidrs', 'pods', 'events'] as const) {
      expect(Math.abs(s[kind]! - REFERENCE_SIZES[kind]), `${kind}: ${s[kind]} bytes here, model ${REFERENCE_SIZES[kind]}`).toBeLessThanOrEqual(0.15 * REFERENCE_SIZES[kind]);
    }
    const u = results.resyncControllerManagerPerUnit!.sizes!.item;
    for (const kind of ['services', 'endpoints', 'endpointslices', 'replicationcontrollers'] as const) {
      expect(Math.abs(u[kind]! - REFERENCE_SIZES[kind]), `${kind}: ${u[kind]} bytes here, model ${REFERENCE_SIZES[kind]}`).toBeLessThanOrEqual(0.15 * REFERENCE_SIZES[kind]);
    }
  });

  // The model's Lambda time per DynamoDB request (MEASURED_HANDLER_MS) is a local measurement: printed
  // here with SKIFF_COST_PRINT=1, not asserted. It was asserted within 4x of the model's until 2026-12-06,
  // a timed check that a loaded CI machine failed (moto answers more slowly when other suites use it).
  afterAll(() => {
    const api = timings.filter((t) => t.fn === 'apiserver');
    const msPerCall = api.reduce((n, t) => n + t.ms, 0) / api.reduce((n, t) => n + t.calls, 0);
    if (process.env.SKIFF_COST_PRINT) console.log(`apiserver: ${msPerCall.toFixed(2)} ms per DynamoDB request over ${api.length} requests (model: ${MEASURED_HANDLER_MS.perDynamoRequest})`);
  });

  it("the model's deployment constants are the stack's", () => {
    const src = readFileSync(new URL('../infra/skiff-cluster.ts', import.meta.url), 'utf8');
    expect(src).toContain(`memorySize: ${LAMBDA_MEMORY_MB},`);
    expect(src).toContain(`const MAX_WATCH_SECONDS = ${MAX_WATCH_SECONDS};`);
    expect(src).toContain(`maxBatchingWindow: Duration.seconds(${BATCHING_WINDOW_SECONDS})`);
    // And the figures the scale limits use.
    expect(readFileSync(new URL('../lambdas/storage/dynamodb.ts', import.meta.url), 'utf8')).toContain(`const LOG_SHARDS = ${LOG_PARTITIONS};`);
    expect(readFileSync(new URL('../node-agent/dead-mans-switch.ts', import.meta.url), 'utf8')).toContain(`o.everyMs ?? ${SWITCH_PERIOD_SECONDS}_000`);
    expect(readFileSync(new URL('../node-agent/kube-client.ts', import.meta.url), 'utf8')).toContain(`pageSize = ${LIST_PAGE}`);
    // The resync's full re-read: how often, and its page.
    expect(CURRENT_AGENT.fullResyncSeconds! * 1000).toBe(FULL_RESYNC_MS);
    expect(RESYNC_PAGE).toBe(STREAM_RESYNC_PAGE);
  });

  it('the scale limits: each row is needed / limit from the bill, the first to break first', () => {
    const rows = scaleLimits(LARGE_CLUSTER);
    const ratios = rows.map((r) => r.needed / r.limit);
    expect(ratios).toEqual([...ratios].sort((a, b) => b - a));
    const bill = monthlyBill(LARGE_CLUSTER);
    expect(rows.find((r) => r.what.startsWith('table reads'))!.needed).toBeCloseTo(bill.usage.rru / MONTH_SECONDS, 6);
    expect(rows.find((r) => r.what.startsWith('the revision counter'))!.needed).toBeCloseTo(bill.usage.writes / MONTH_SECONDS, 6);
    expect(rows.find((r) => r.what.includes('dead man'))!.needed).toBe(LARGE_CLUSTER.nodes / SWITCH_PERIOD_SECONDS);
    // A 3-node cluster is far from every limit.
    expect(scaleLimits({ name: 'idle', nodes: 3, pods: 0, churnPerHour: 0 }).every((r) => r.needed < r.limit / 10)).toBe(true);
  });
});

async function timed(label: string, f: () => Promise<void>): Promise<void> {
  const t0 = performance.now();
  const before = recording?.length ?? 0;
  await f();
  timings.push({ fn: label, ms: performance.now() - t0, calls: (recording?.length ?? 0) - before });
}

/** Item bytes by kind in the table now: count and mean. */
function sizesNow(): Record<string, { n: number; mean: number }> {
  const by: Record<string, number[]> = {};
  for (const [k, v] of stored) {
    const [pk, sk] = k.split('\0');
    (by[kindOf({ pk: { S: pk! }, sk: { S: sk! } })] ??= []).push(v);
  }
  return Object.fromEntries(Object.entries(by).map(([k, v]) => [k, { n: v.length, mean: Math.round(v.reduce((a, b) => a + b, 0) / v.length) }]));
}

/** Two measurements added (two functions' resyncs as one, or operations in a row): each function's counts, units and invocations summed. */
function sum(a: Measured, b: Measured): Measured {
  const dynamo: OpCount['dynamo'] = {};
  for (const fn of new Set([...Object.keys(a.count.dynamo), ...Object.keys(b.count.dynamo)]) as Set<Fn>) {
    const m: Record<string, number> = { ...a.count.dynamo[fn] };
    for (const [k, n] of Object.entries(b.count.dynamo[fn] ?? {})) m[k] = (m[k] ?? 0) + n;
    dynamo[fn] = m;
  }
  const add = (x: Record<Fn, number>, y: Record<Fn, number>) => Object.fromEntries(Object.keys(x).map((k) => [k, x[k as Fn] + y[k as Fn]])) as Record<Fn, number>;
  return {
    count: {
      apiRequests: a.count.apiRequests + b.count.apiRequests,
      audited: (a.count.audited ?? 0) + (b.count.audited ?? 0),
      invocations: { scheduler: a.count.invocations.scheduler + b.count.invocations.scheduler, controllerManager: a.count.invocations.controllerManager + b.count.invocations.controllerManager },
      dynamo,
    },
    rru: add(a.rru, b.rru),
    wru: add(a.wru, b.wru),
    calls: [],
    sizes: a.sizes,
  };
}

function diff(a: Measured, b: Measured): Measured {
  const dynamo = recipeDifference(a.count.dynamo, b.count.dynamo);
  // A resync reads the settled watermark once when anything was written since the function last
  // settled (a heartbeat between the two runs, or not): once per resync, never per node or unit.
  for (const fn of Object.keys(dynamo) as Fn[]) {
    delete dynamo[fn]!['GetItem settled'];
    if (!Object.keys(dynamo[fn]!).length) delete dynamo[fn];
  }
  const sub = (x: Record<Fn, number>, y: Record<Fn, number>) =>
    Object.fromEntries(Object.keys(x).map((k) => [k, x[k as Fn] - y[k as Fn]])) as Record<Fn, number>;
  return {
    count: {
      apiRequests: a.count.apiRequests - b.count.apiRequests,
      audited: (a.count.audited ?? 0) - (b.count.audited ?? 0),
      invocations: {
        scheduler: a.count.invocations.scheduler - b.count.invocations.scheduler,
        controllerManager: a.count.invocations.controllerManager - b.count.invocations.controllerManager,
      },
      dynamo,
    },
    rru: sub(a.rru, b.rru),
    wru: sub(a.wru, b.wru),
    calls: [],
    sizes: a.sizes,
  };
}


