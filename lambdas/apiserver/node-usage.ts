// `kubectl top` on a deployed cluster (issue #17 item 1): the nodes' usage, reported on demand.
//
// A deployed apiserver (a Lambda outside the nodes' VPC) cannot ask an agent for its /stats/summary as
// `skiff up` does (node-proxy.ts nodeStats). Agents reporting every minute forever would cost more than
// the idle control plane (3 nodes: 130,000 invocations and writes a month). So usage is reported on
// demand only:
//
// 1. A read of NodeMetrics/PodMetrics (or the HPA controller's read) asks `stats(node)`, which reads the
//    node's usage item, pk "usage#<node>" in the cluster's table (one GetItem).
// 2. When it is missing or stale and no demand was sent to that node in the last `resendSeconds`, it
//    records the demand on the item (a conditional UpdateItem: of concurrent apiserver instances one
//    wins) and the winner sends the node's push queue (node-notifier.ts) "report usage until
//    <now + demandSeconds>". A demand still running is renewed the same way once it is older than
//    `resendSeconds`, so a cluster read steadily (the HPA every 15 s) keeps reports flowing without gaps.
// 3. The agent (node-agent/usage-report.ts) PUTs its summary to /api/v1/nodes/<node>/usage every
//    `reportSeconds` until the deadline. The node authorizer permits it for the node's own name only.
//    `put` stores it on the node's item (UpdateItem: the demand attributes stay), with the table's TTL
//    so a dead node's usage goes. These items are outside the revisioned store: no revision, no log
//    item, no history, and the controllers' stream filters name object partitions only, so they wake
//    no loop.
// 4. A report older than two intervals and a bit is stale: that node has no metrics (as metrics-server
//    skips a node it cannot scrape). The first read after idle waits up to `firstWaitMs` (5 s) for the
//    demanded nodes' first reports, which come as soon as an agent's long poll returns (at once: it is
//    waiting on the queue); a node that does not report in time is left out of that answer. The HPA
//    controller's reads (controllers/lambda.ts) do not wait: a sync is one of many in an invocation, and
//    its next one, 15 s later, finds the reports (kube's HPA treats pods without metrics its own way).

import { DynamoDBClient, GetItemCommand, UpdateItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { GetQueueUrlCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { KubeObject } from '../machinery/types.ts';
import { errors } from '../machinery/status.ts';
import type { StatsSummary, Usage, PodStats } from '../../node-agent/stats.ts';
import { itemValue, valueAttribute } from '../storage/value-codec.ts';
import { nodeQueueName, type PushMessage } from '../controllers/node-notifier.ts';

/** The subresource agents PUT their reports to: /api/v1/nodes/<node>/usage. */
export const NODE_USAGE_SUBRESOURCE = 'usage';
/** The partition of a node's usage item in the cluster's table. */
export const USAGE_PK_PREFIX = 'usage#';
const SK = { S: 'usage' };

/** How often a told agent reports (s); how long a demand lasts (s); how soon it may be renewed (s). */
export const USAGE_REPORT_SECONDS = 30;
export const USAGE_DEMAND_SECONDS = 15 * 60;
export const USAGE_RESEND_SECONDS = 3 * 60;

export interface NodeUsageOptions {
  client: DynamoDBClient;
  tableName: string;
  sqs: SQSClient;
  /** The cluster's node queue prefix (SKIFF_NODE_QUEUE_PREFIX). */
  queuePrefix: string;
  reportSeconds?: number;
  demandSeconds?: number;
  resendSeconds?: number;
  /** How long a read waits for the first reports of the nodes it demanded (default 5 s). */
  firstWaitMs?: number;
  now?: () => number;
}

/** The operations it made (tests and the cost model count them). */
export interface NodeUsageCounts {
  gets: number;
  puts: number;
  demandWrites: number;
  messages: number;
}

export class NodeUsageStore {
  readonly counts: NodeUsageCounts = { gets: 0, puts: 0, demandWrites: 0, messages: 0 };
  private readonly urls = new Map<string, string>();
  /** Per instance: when this instance last recorded (or saw) a demand for a node, so a read makes no write before it is due. */
  private readonly demandedAt = new Map<string, number>();
  private readonly now: () => number;
  readonly reportSeconds: number;
  readonly demandSeconds: number;
  readonly resendSeconds: number;

  constructor(private readonly o: NodeUsageOptions) {
    this.now = o.now ?? Date.now;
    this.reportSeconds = o.reportSeconds ?? USAGE_REPORT_SECONDS;
    this.demandSeconds = o.demandSeconds ?? USAGE_DEMAND_SECONDS;
    this.resendSeconds = o.resendSeconds ?? USAGE_RESEND_SECONDS;
  }

  private key(node: string): Record<string, AttributeValue> {
    return { pk: { S: USAGE_PK_PREFIX + node }, sk: SK };
  }

  /** Stores a node's report (already checked: checkSummary). */
  async put(node: string, summary: StatsSummary): Promise<void> {
    const now = this.now();
    const v = valueAttribute(JSON.stringify(summary));
    const [name, value] = Object.entries(v)[0]!;
    this.counts.puts++;
    await this.o.client.send(
      new UpdateItemCommand({
        TableName: this.o.tableName,
        Key: this.key(node),
        // The item goes a day after the node's last report (or demand).
        UpdateExpression: 'SET #v = :v, #at = :at, #ttl = :ttl',
        ExpressionAttributeNames: { '#v': name, '#at': 'at', '#ttl': 'ttl' },
        ExpressionAttributeValues: { ':v': value!, ':at': { N: String(now) }, ':ttl': { N: String(Math.floor(now / 1000) + 86400) } },
      }),
    );
  }

  /**
   * The node's latest report if fresh, demanding reports when there are none (see above): what
   * ReadContext.nodeStats is deployed, in the apiserver and in the controller function for the HPA
   * controller (controllers/lambda.ts: it reads PodMetrics through metrics.ts as the apiserver does,
   * with firstWaitMs 0, so a sync never waits: a node not yet reporting has no metrics in that sync).
   */
  async stats(node: KubeObject): Promise<StatsSummary | undefined> {
    const name = node.metadata.name!;
    const item = await this.read(name);
    const fresh = this.freshIn(item);
    if (fresh) {
      // Reports are flowing; renew the demand when it is due, so they go on while reads go on.
      if (this.due(name, item)) await this.demand(name, item);
      return fresh;
    }
    // The first read after idle: demand, then wait a little for the first report. A demand another
    // instance sent a moment ago is waited for too; an older one unanswered means the node is silent.
    const sentByOther = this.now() - Number(item?.demandedAt?.N ?? 0) < (this.o.firstWaitMs ?? 5000);
    if (!sentByOther && (!this.due(name, item) || !(await this.demand(name, item)))) return undefined;
    const deadline = Date.now() + (this.o.firstWaitMs ?? 5000);
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      const got = this.freshIn(await this.read(name));
      if (got) return got;
    }
    return undefined;
  }

  private async read(node: string): Promise<Record<string, AttributeValue> | undefined> {
    this.counts.gets++;
    // Eventually consistent: half a read unit; a report a moment old is as good.
    return (await this.o.client.send(new GetItemCommand({ TableName: this.o.tableName, Key: this.key(node) }))).Item;
  }

  /** The item's report if it came within two intervals and a bit (a late report is not yet missing). */
  private freshIn(item: Record<string, AttributeValue> | undefined): StatsSummary | undefined {
    const at = Number(item?.at?.N ?? 0);
    if (!item || this.now() - at > (this.reportSeconds * 2 + 15) * 1000) return undefined;
    const text = itemValue(item);
    return text ? (JSON.parse(text) as StatsSummary) : undefined;
  }

  /** Whether a demand may be sent now: none recorded on the item, or by this instance, within resendSeconds. */
  private due(node: string, item: Record<string, AttributeValue> | undefined): boolean {
    const last = Math.max(Number(item?.demandedAt?.N ?? 0), this.demandedAt.get(node) ?? 0);
    return this.now() - last >= this.resendSeconds * 1000;
  }

  /** Records a demand (one instance of many wins) and tells the node; true when this call sent it. */
  private async demand(node: string, item: Record<string, AttributeValue> | undefined): Promise<boolean> {
    const now = this.now();
    const prev = item?.demandedAt?.N;
    this.demandedAt.set(node, now);
    this.counts.demandWrites++;
    try {
      await this.o.client.send(
        new UpdateItemCommand({
          TableName: this.o.tableName,
          Key: this.key(node),
          UpdateExpression: 'SET demandedAt = :now, #ttl = :ttl',
          // The demand this instance saw is still the item's: no other instance sent one since.
          ConditionExpression: prev === undefined ? 'attribute_not_exists(demandedAt)' : 'demandedAt = :prev',
          ExpressionAttributeNames: { '#ttl': 'ttl' },
          ExpressionAttributeValues: { ':now': { N: String(now) }, ':ttl': { N: String(Math.floor(now / 1000) + 86400) }, ...(prev === undefined ? {} : { ':prev': { N: prev } }) },
        }),
      );
    } catch (e) {
      if ((e as Error).name === 'ConditionalCheckFailedException') return false; // another instance sent it
      throw e;
    }
    const until = new Date(now + this.demandSeconds * 1000).toISOString();
    return this.send(node, { reportUsage: { until } });
  }

  private async send(node: string, message: PushMessage): Promise<boolean> {
    const name = nodeQueueName(this.o.queuePrefix, node);
    try {
      let url = this.urls.get(name);
      if (!url) {
        url = (await this.o.sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!;
        this.urls.set(name, url);
      }
      this.counts.messages++;
      await this.o.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: JSON.stringify(message) }));
      return true;
    } catch (e) {
      // No queue (a hollow node, an agent without the channel, one gone): no metrics for it.
      this.urls.delete(name);
      const n = (e as Error).name;
      if (n === 'QueueDoesNotExist' || n === 'AWS.SimpleQueueService.NonExistentQueue') return false;
      throw e;
    }
  }
}

// ---- what a report may hold ----

// Bounds that keep the item far under DynamoDB's 400 KB (~40 bytes a container deflated): kube's
// default is 110 pods a node.
const MAX_PODS = 1000;
const MAX_CONTAINERS = 100;
const MAX_CONTAINERS_IN_ALL = 2000;
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown, max = 253): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;
const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** A report's usage, only its known fields; undefined when malformed. */
function usageOf(v: unknown): Usage | undefined {
  if (!isObj(v) || !str(v.time, 64) || Number.isNaN(Date.parse(v.time)) || !num(v.window) || !num(v.workingSetBytes)) return undefined;
  if (v.usageNanoCores !== undefined && !num(v.usageNanoCores)) return undefined;
  if (v.usageCoreNanoSeconds !== undefined && !num(v.usageCoreNanoSeconds)) return undefined;
  return {
    time: v.time,
    window: v.window,
    workingSetBytes: v.workingSetBytes,
    ...(v.usageNanoCores !== undefined ? { usageNanoCores: v.usageNanoCores as number } : {}),
    ...(v.usageCoreNanoSeconds !== undefined ? { usageCoreNanoSeconds: v.usageCoreNanoSeconds as number } : {}),
  };
}

/**
 * A node's report (the agent's /stats/summary, node-agent/stats.ts) checked for the node `name`: a 400
 * Status for anything else (another node's name, a malformed figure), so nothing malformed is stored.
 * Only the fields metrics.ts reads are kept.
 */
export function checkSummary(name: string, body: unknown): StatsSummary {
  const bad = (why: string) => errors.badRequest(`node usage for "${name}": ${why}`);
  if (!isObj(body) || !isObj(body.node) || !Array.isArray(body.pods)) throw bad('expected {"node": {...}, "pods": [...]}');
  if (body.node.nodeName !== name) throw bad(`node.nodeName must be "${name}"`);
  const nodeUsage = body.node.usage === undefined ? undefined : usageOf(body.node.usage);
  if (body.node.usage !== undefined && !nodeUsage) throw bad('node.usage is malformed');
  if (body.pods.length > MAX_PODS) throw bad(`at most ${MAX_PODS} pods`);
  const containers = body.pods.reduce((n: number, p) => n + (isObj(p) && Array.isArray(p.containers) ? p.containers.length : 0), 0);
  if (containers > MAX_CONTAINERS_IN_ALL) throw bad(`at most ${MAX_CONTAINERS_IN_ALL} containers in all`);
  const pods: PodStats[] = body.pods.map((p, i) => {
    if (!isObj(p) || !isObj(p.podRef) || !str(p.podRef.namespace, 63) || !str(p.podRef.name) || !str(p.podRef.uid, 64) || !Array.isArray(p.containers) || p.containers.length > MAX_CONTAINERS) {
      throw bad(`pods[${i}] is malformed`);
    }
    const containers = p.containers.map((c, j) => {
      const usage = isObj(c) && str(c.name, 63) ? usageOf(c.usage) : undefined;
      if (!usage) throw bad(`pods[${i}].containers[${j}] is malformed`);
      return { name: (c as Obj).name as string, usage };
    });
    return { podRef: { namespace: p.podRef.namespace, name: p.podRef.name, uid: p.podRef.uid }, containers };
  });
  return { node: { nodeName: name, ...(nodeUsage ? { usage: nodeUsage } : {}) }, pods };
}

/**
 * The deployed apiserver's (and controller function's) usage store: the cluster's table and node queues
 * (SKIFF_NODE_QUEUE_PREFIX); undefined without nodes. `opts`: the timings (the controller function's
 * reads do not wait for first reports).
 */
export function nodeUsageFromEnv(env: NodeJS.ProcessEnv = process.env, opts: Pick<NodeUsageOptions, 'firstWaitMs'> = {}): NodeUsageStore | undefined {
  const queuePrefix = env.SKIFF_NODE_QUEUE_PREFIX;
  const tableName = env.SKIFF_TABLE;
  if (!queuePrefix || !tableName) return undefined;
  const endpoint = env.SKIFF_DYNAMODB_ENDPOINT;
  const sqsEndpoint = env.SKIFF_SQS_ENDPOINT;
  return new NodeUsageStore({ client: new DynamoDBClient(endpoint ? { endpoint } : {}), tableName, sqs: new SQSClient(sqsEndpoint ? { endpoint: sqsEndpoint } : {}), queuePrefix, ...opts });
}
