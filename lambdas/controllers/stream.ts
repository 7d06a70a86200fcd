// Controllers in the cloud: a Lambda handler for batches of DynamoDB stream records, and one for the
// scheduled resync. Both drive the same Controller objects `skiff up` runs locally.
//
// A batch becomes ChangeEvents (object items only; the counter and log items are skipped), each
// controller turns its events into keys, and each distinct key is reconciled once per batch: a key
// changed ten times in a batch costs one reconcile, and a redelivered batch costs no-op reconciles.
// A key whose reconcile fails is reported as a batch item failure at the sequence number of the first
// record that produced it, so Lambda retries the batch from there (ReportBatchItemFailures); records
// before it are done. Work a controller asks to requeue is picked up by the next scheduled resync.
//
// Why a failing or busy loop cannot spin here (issue #11): a failed key's batch is retried by Lambda
// at most retryAttempts (10) times, split in halves on error (bisectBatchOnError), and then goes to
// the dead-letter queue (infra/skiff-cluster.ts), so one poisonous key costs a bounded number of
// invocations, not a loop; the resync retries it once per period. A requeue is never re-invoked on its
// own. A reconcile does bounded work (at most 500 pods, batch.ts); the rest of a large scale-up is
// reached because its own writes come back on the stream (each created pod maps to its RC's key), one
// bounded reconcile per batch: progress, each step paid for by the pods it made. Unbounded growth of a
// valid spec (replicas 2147483647) is for the guard against runaway writes (a per-namespace object
// limit in storage, issue #11 item 3) to stop, not for the loops.

import type { AttributeValue as LambdaAttributeValue, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { objectFromImage, OBJECT_PK_PREFIX } from '../storage/dynamodb.ts';
import { decode } from '../apiserver/registry.ts';
import { apiVersionOf, findResource, RESOURCES, resourcePrefix, type ResourceInfo } from '../machinery/resources.ts';
import { RESERVATION_NAMESPACE, RESERVATION_PREFIX } from '../scheduler/reservation.ts';
import { StoreReader } from './cache.ts';
import { contextFor, type ChangeEvent, type Controller, type ControllerContext } from './controller.ts';
import { asOverhead, namespaceOfRecordKey, OVERHEAD, reconcileCharged } from '../machinery/usage.ts';

/** The resource a storage key belongs to: /registry/{group|core}/{resource}/... */
export function resourceOfKey(key: string): ResourceInfo | undefined {
  return RESOURCES.find((r) => key.startsWith(resourcePrefix(r)));
}

type Image = Record<string, AttributeValue>;
const image = (i: { [k: string]: LambdaAttributeValue } | undefined) => i as unknown as Image | undefined;

/** One stream record as a ChangeEvent, or undefined for items that are not objects. */
export function changeEventOf(record: DynamoDBRecord): ChangeEvent | undefined {
  const next = objectFromImage(image(record.dynamodb?.NewImage));
  const prev = objectFromImage(image(record.dynamodb?.OldImage));
  const kv = next ?? prev;
  if (!kv) return undefined;
  const resource = resourceOfKey(kv.key);
  if (!resource) return undefined;
  const typeMeta = { apiVersion: apiVersionOf(resource), kind: resource.kind };
  const object = { ...typeMeta, ...decode(kv) };
  const type = record.eventName === 'REMOVE' ? 'DELETED' : record.eventName === 'INSERT' ? 'ADDED' : 'MODIFIED';
  // The old image: loops that index by a field (a pod's labels) also reach what it used to match.
  const oldObject = type === 'MODIFIED' && prev ? { ...typeMeta, ...decode(prev) } : undefined;
  return { type, resource, object, ...(oldObject ? { oldObject } : {}) };
}

/** A context whose reads (objects, and which kinds are served) are made at most once in one batch. */
function forOneBatch(ctx: ControllerContext): ControllerContext {
  let kinds: Promise<readonly ResourceInfo[]> | undefined;
  return {
    ...ctx,
    cache: new StoreReader(ctx.registry),
    ...(ctx.kinds ? { kinds: () => (kinds ??= ctx.kinds!()) } : {}),
  };
}

export interface BatchResult extends DynamoDBBatchResponse {
  /** For logs and tests: how many distinct keys each controller reconciled. */
  reconciled: Record<string, number>;
}

/** Runs every controller over one batch of stream records. */
export async function handleStreamBatch(controllers: Controller[], ctx: ControllerContext, records: DynamoDBRecord[]): Promise<BatchResult> {
  // One reader for the batch: each kind and namespace a loop reads is listed once, whatever the records.
  ctx = forOneBatch(ctx);
  // The invocation (its request and base time) is shared by the namespaces of its records, one share each.
  ctx.usage?.invocation(records.map((r) => namespaceOfRecordKey(r.dynamodb?.Keys?.sk?.S)));
  const failures = new Map<string, string>(); // sequence number → (kept once)
  const reconciled: Record<string, number> = {};
  for (const c of controllers) {
    // key → the sequence number of the first record that asked for it
    const keys = new Map<string, string>();
    for (const r of records) {
      const ev = changeEventOf(r);
      if (!ev || !c.watches.includes(ev.resource)) continue;
      for (const k of c.keys(ev)) if (!keys.has(k)) keys.set(k, r.dynamodb?.SequenceNumber ?? '');
    }
    reconciled[c.name] = keys.size;
    const cctx = contextFor(c, ctx);
    for (const [key, seq] of keys) {
      try {
        await reconcileCharged(cctx.usage, key, () => c.reconcile(key, cctx));
      } catch (e) {
        console.error(`controller ${c.name}: reconcile ${key} failed`, e);
        failures.set(seq, seq);
      }
    }
  }
  // Lambda restarts from the lowest failed sequence number; report them all, lowest first.
  const batchItemFailures = [...failures.keys()].sort(compareSequence).map((itemIdentifier) => ({ itemIdentifier }));
  return { batchItemFailures, reconciled };
}

function compareSequence(a: string, b: string): number {
  // Sequence numbers are decimal strings of up to 40 digits: compare by length, then lexically.
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/**
 * A full resync: every key of every controller (the scheduled trigger, so nothing missed stays missed).
 * Its cost, the invocation and every read and reconcile in it, is overhead (usage.ts OVERHEAD.resync):
 * it runs on a clock, whatever the namespaces did.
 */
export function resyncAll(controllers: Controller[], ctx: ControllerContext): Promise<Record<string, number>> {
  return asOverhead(OVERHEAD.resync, () => {
    ctx.usage?.invocation();
    return resyncEvery(controllers, ctx);
  });
}

async function resyncEvery(controllers: Controller[], ctx: ControllerContext): Promise<Record<string, number>> {
  ctx = forOneBatch(ctx);
  const done: Record<string, number> = {};
  for (const c of controllers) {
    const cctx = contextFor(c, ctx);
    const keys = [...new Set(await c.allKeys(cctx))];
    for (const k of keys) {
      try {
        await reconcileCharged(cctx.usage, k, () => c.reconcile(k, cctx));
      } catch (e) {
        console.error(`controller ${c.name}: resync of ${k} failed`, e);
      }
    }
    done[c.name] = keys.length;
  }
  return done;
}

/**
 * The event source mapping filter for controllers: only object items of the kinds they watch (one
 * Lambda FilterCriteria pattern lists them all: a mapping allows few patterns), so a pod write never
 * wakes the namespace controller.
 * Leases are the exception. Node heartbeats are most of an idle cluster's writes, and waking two functions
 * for each would be most of its bill (`npm run cost`), so only the scheduler's reservation Leases pass
 * (`kube-node-lease/skiff-alloc-*`). Whoever watches Leases for anything else sees them on the scheduled
 * resync instead: node lifecycle (its clock is the resync anyway), and garbage collection of Leases.
 * EndpointSlices wake nothing: the endpoints controller writes them on Service and pod changes (two
 * writes per change with Endpoints, and the second would only wake the garbage collector for a Service
 * it has just read as live); the garbage collector deletes them through their Service's own DELETED or
 * foreground-deletion events, and finds a user's slice with a vanished owner on the resync.
 */
export function streamFilterPatterns(...cs: Pick<Controller, 'watches'>[]): string[] {
  const leasesPk = `${OBJECT_PK_PREFIX}${resourcePrefix(leases)}`;
  const slicesPk = `${OBJECT_PK_PREFIX}${resourcePrefix(endpointSlices)}`;
  const pks = [...new Set(cs.flatMap((c) => c.watches.map((r) => `${OBJECT_PK_PREFIX}${resourcePrefix(r)}`)))].filter((pk) => pk !== slicesPk);
  const others = pks.filter((pk) => pk !== leasesPk);
  return [
    ...(others.length ? [JSON.stringify({ dynamodb: { Keys: { pk: { S: others } } } })] : []),
    ...(pks.includes(leasesPk)
      ? [JSON.stringify({ dynamodb: { Keys: { pk: { S: [leasesPk] }, sk: { S: [{ prefix: `${RESERVATION_NAMESPACE}/${RESERVATION_PREFIX}` }] } } } })]
      : []),
  ];
}

const leases = findResource('coordination.k8s.io', 'v1', 'leases')!;
const endpointSlices = findResource('discovery.k8s.io', 'v1', 'endpointslices')!;

/** A Lambda entry that takes both a stream batch and the scheduled resync (an EventBridge event). */
export function dispatchHandler(h: ReturnType<typeof createControllerHandlers>) {
  return async (event: DynamoDBStreamEvent | { source?: string }): Promise<DynamoDBBatchResponse | void> =>
    'Records' in event && Array.isArray(event.Records) ? h.stream(event) : h.resync();
}

/** Builds the two Lambda handlers for a set of controllers over a context made once per cold start. */
export function createControllerHandlers(controllers: Controller[], context: () => Promise<ControllerContext>) {
  return {
    async stream(event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> {
      const { batchItemFailures } = await handleStreamBatch(controllers, await context(), event.Records);
      return { batchItemFailures };
    },
    async resync(): Promise<void> {
      const ctx = await context();
      const line = `resync ${JSON.stringify(await resyncAll(controllers, ctx))}`;
      console.log(line);
      asOverhead(OVERHEAD.resync, () => ctx.usage?.log(line.length));
    },
  };
}
