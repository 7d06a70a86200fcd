// Bounded work per reconcile, as kube-controller-manager's workload controllers bound it: one reconcile
// creates or deletes at most BURST_REPLICAS objects (kube's burstReplicas), in slow-start batches of
// 1, 2, 4, 8, ... (pkg/controller/replicaset's slowStartBatch), and stops after the first batch in which
// a call failed, skipping the rest. A call that fails because of something wrong with the request
// (a quota, an invalid template, a terminating namespace) fails the same way for every pod: slow start
// makes that cost one call instead of hundreds of failing calls and Events. The controller then asks
// to be requeued and continues from a fresh read, so a huge replica count is reached step by step with
// the API and the store answering others in between.

/** The most objects one reconcile creates or deletes (kube's burstReplicas). */
export const BURST_REPLICAS = 500;

/** How many calls of one batch run at once. Kubernetes runs a whole batch at once against etcd; here
 * every write serializes on one revision counter (ARCHITECTURE.md), so more in flight would only add
 * compare-and-swap retries (each one billed on DynamoDB). */
export const BATCH_PARALLELISM = 16;

export interface BatchResult {
  /** Calls that succeeded. */
  successes: number;
  /** Calls made (successes, failures, and the rest of the failing batch). */
  attempted: number;
  /** The first failure, when a batch had one: the batches after it were skipped. */
  error?: unknown;
}

/**
 * Calls fn(0), fn(1), ... fn(count-1) in batches of initialBatchSize, then twice as many, and so on;
 * the calls of a batch run concurrently (at most `parallelism` at a time). After a batch in which a call
 * threw, no more batches start.
 */
export async function slowStartBatch(
  count: number,
  initialBatchSize: number,
  fn: (index: number) => Promise<void>,
  parallelism = BATCH_PARALLELISM,
): Promise<BatchResult> {
  let next = 0;
  let successes = 0;
  for (let size = Math.min(count, initialBatchSize); size > 0; size = Math.min(2 * size, count - next)) {
    const end = next + size;
    let error: unknown;
    let failed = false;
    // `parallelism` runners take the batch's indices in order.
    const runner = async () => {
      while (next < end) {
        const i = next++;
        try {
          await fn(i);
          successes++;
        } catch (e) {
          if (!failed) error = e;
          failed = true;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallelism, size) }, runner));
    if (failed) return { successes, attempted: next, error };
    // Let the event loop turn between batches: with an in-process store (`skiff up`) a whole burst
    // would otherwise run without one, and the apiserver in the same process would wait for it.
    if (next < count) await new Promise<void>((r) => setImmediate(r));
  }
  return { successes, attempted: next };
}
