// Cost per namespace, deployed (machinery/usage.ts counts, apiserver/cost.ts serves): each Lambda instance
// counts in memory and adds its counts to one item per namespace per hour in the cluster's table,
//   pk = "usage#<epoch hour>"  sk = "<namespace>" ("" is stored as "~cluster"; overhead buckets as their
//   "@name")  ADD each of usage.ts COUNT_FIELDS and read, list, write, history that is not 0; ttl 35 days
// at the end of an invocation when SKIFF_USAGE_FLUSH_SECONDS (300) have passed since its last flush: one
// UpdateItem (1 WRU) per namespace it touched, at most every 5 minutes per instance. Why items and not EMF
// lines: the apiserver answers `skiff cost` from them with one Query per hour of the window (EMF would need
// CloudWatch GetMetricData, $0.01 per 1,000 metrics requested, and a custom metric per namespace, $0.30 a
// month each). Keys outside "obj#" pass no stream filter: the items wake no function. What an instance
// counted after its last flush is lost when Lambda retires it (at most 5 minutes of its work).
// The counting's own cost, priced in `npm run cost` ("cost per namespace counting") and counted as the
// report's overhead line of that name (one more item per flush holds the flush's writes): an idle 3-node
// cluster's apiserver instance flushes 3 items (heartbeats, agent polls, the counting) and the controller
// manager 2 (its resync, the counting), every 5 minutes: ~61,000 WRU a month, ~$0.04; and a Query per
// hour of a report.

import { DynamoDBClient, QueryCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { USAGE_FLUSH_SECONDS } from '../../infra/cost-model.ts';
import { addCounts, COUNT_FIELDS, emptyCounts, OVERHEAD, UsageMeter, type UsageCounts } from '../machinery/usage.ts';

const HOUR_MS = 3600_000;
const TTL_SECONDS = 35 * 86400;
const CLUSTER_SK = '~cluster';
const FIELDS = COUNT_FIELDS;
const KINDS = ['read', 'list', 'write', 'history'] as const;

export class DynamoUsageStore {
  constructor(private readonly client: DynamoDBClient, private readonly table: string) {}

  /**
   * Adds what meter counted since its last flush, when everyMs have passed; returns the items written. The
   * flush's own UpdateItems (1 WRU each) are counted in one more item, OVERHEAD.counting's, in the same flush.
   */
  async flush(meter: UsageMeter, everyMs: number): Promise<number> {
    const items: { hour: number; ns: string; c: UsageCounts }[] = [];
    for (const [hour, byNs] of meter.drain(everyMs) ?? []) for (const [ns, c] of byNs) if (FIELDS.some((f) => c[f]) || KINDS.some((k) => c.byKind[k])) items.push({ hour, ns, c });
    if (!items.length) return 0;
    const counting = emptyCounts();
    counting.dynamoRequests = counting.wru = counting.byKind.write = items.length + 1;
    items.push({ hour: Math.max(...items.map((i) => i.hour)), ns: OVERHEAD.counting, c: counting });
    for (const { hour, ns, c } of items) {
      const values: Record<string, { N: string }> = {};
      const adds: string[] = [];
      for (const f of FIELDS) if (c[f]) (adds.push(`${f} :${f}`), (values[`:${f}`] = { N: String(c[f]) }));
      for (const k of KINDS) if (c.byKind[k]) (adds.push(`#${k} :${k}`), (values[`:${k}`] = { N: String(c.byKind[k]) }));
      const names = Object.fromEntries(KINDS.filter((k) => c.byKind[k]).map((k) => [`#${k}`, k]));
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { pk: { S: `usage#${hour}` }, sk: { S: ns || CLUSTER_SK } },
          UpdateExpression: `ADD ${adds.join(', ')} SET #ttl = :ttl`,
          ExpressionAttributeNames: { ...names, '#ttl': 'ttl' },
          ExpressionAttributeValues: { ...values, ':ttl': { N: String(Math.floor(hour * 3600 + TTL_SECONDS)) } },
        }),
      );
    }
    return items.length;
  }

  /** Every namespace's counts in the hours from sinceMs's through untilMs's (whole hours). */
  async read(sinceMs: number, untilMs: number, namespace?: string): Promise<Map<string, UsageCounts>> {
    const out = new Map<string, UsageCounts>();
    for (let hour = Math.floor(sinceMs / HOUR_MS); hour <= Math.floor(untilMs / HOUR_MS); hour++) {
      let start: Record<string, any> | undefined;
      do {
        const r = await this.client.send(
          new QueryCommand({
            TableName: this.table,
            KeyConditionExpression: namespace === undefined ? 'pk = :pk' : 'pk = :pk AND sk = :sk',
            ExpressionAttributeValues: { ':pk': { S: `usage#${hour}` }, ...(namespace === undefined ? {} : { ':sk': { S: namespace || CLUSTER_SK } }) },
            ConsistentRead: true,
            ExclusiveStartKey: start,
          }),
        );
        for (const it of r.Items ?? []) {
          const sk = it.sk!.S!;
          const c = emptyCounts();
          for (const f of FIELDS) c[f] = Number(it[f]?.N ?? 0);
          for (const k of KINDS) if (it[k]) c.byKind[k] = Number(it[k]!.N);
          const ns = sk === CLUSTER_SK ? '' : sk;
          addCounts(out.get(ns) ?? out.set(ns, emptyCounts()).get(ns)!, c);
        }
        start = r.LastEvaluatedKey;
      } while (start);
    }
    return out;
  }
}

/** The Lambda instance's meter (shared by its ApiServer and loops) and the table it flushes to. */
let instance: { meter: UsageMeter; store: DynamoUsageStore; everyMs: number } | undefined;

/** The deployed instance's usage (SKIFF_TABLE; SKIFF_USAGE_FLUSH_SECONDS, default 300). */
export function lambdaUsage(env: NodeJS.ProcessEnv = process.env): { meter: UsageMeter; store: DynamoUsageStore; everyMs: number } {
  if (!instance) {
    const tableName = env.SKIFF_TABLE;
    if (!tableName) throw new Error('SKIFF_TABLE is not set');
    const endpoint = env.SKIFF_DYNAMODB_ENDPOINT;
    instance = { meter: new UsageMeter(Date.now, true), store: new DynamoUsageStore(new DynamoDBClient(endpoint ? { endpoint } : {}), tableName), everyMs: Number(env.SKIFF_USAGE_FLUSH_SECONDS ?? USAGE_FLUSH_SECONDS) * 1000 };
    // Nodes long-poll queues when the stack gives them some: a report prices their idle polls.
    instance.meter.pushChannel = !!env.SKIFF_NODE_QUEUE_PREFIX;
  }
  return instance;
}

/** At the end of an invocation: the instance's counts to the table when their period has passed. Never fails the invocation. */
export async function flushLambdaUsage(): Promise<void> {
  if (!instance) return;
  await instance.store.flush(instance.meter, instance.everyMs).catch((e: Error) => console.error(`usage: flush failed: ${e.message}`));
}
