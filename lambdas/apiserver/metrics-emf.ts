// The apiserver function's /metrics series published to CloudWatch as embedded metric format (EMF, see
// machinery/emf.ts for the format and the cost): nobody can scrape a Lambda instance, so at the end of an
// invocation, when a minute has passed since its last flush, each instance writes its increases since then
// to stdout (the function's log group, from which CloudWatch extracts the metrics). Not per request: a busy
// instance writes one set of lines a minute. Long invocations (watches) flush from a timer as well. What an
// instance counted after its last flush is lost when Lambda retires it (at most a minute of its requests).
//
// Dimension sets (each set of values is a custom metric, $0.30/month): ClusterName plus verb and code for
// request counts, verb for latency and open watches, operation for the store: a few dozen metrics per
// cluster, billed only for the hours the apiserver was called. Not by resource, scope or group, as
// /metrics has them: that would multiply the count by every resource served.

import type middy from '@middy/core';
import { EMF_NAMESPACE, EmfPublisher, type EmfSeries } from '../machinery/emf.ts';
import type { ApiServer } from './app.ts';

export const APISERVER_EMF_SERIES: EmfSeries[] = [
  { metric: 'apiserver_request_total', dimensions: ['verb', 'code'], unit: 'Count' },
  { metric: 'apiserver_request_duration_seconds', dimensions: ['verb'], unit: 'Seconds' },
  { metric: 'apiserver_longrunning_requests', dimensions: ['verb'], unit: 'Count' },
  { metric: 'skiff_storage_request_duration_seconds', dimensions: ['operation'], unit: 'Seconds' },
];

/**
 * A middy middleware for the apiserver function: after each invocation, the instance's series as EMF
 * lines when `everyMs` (SKIFF_METRICS_FLUSH_SECONDS) have passed. Unset or 0: off (the stack sets 60 when its
 * cloudWatchMetrics option is on: custom metrics cost, see machinery/emf.ts).
 */
export function apiserverEmf(
  server: () => Promise<ApiServer>,
  env: NodeJS.ProcessEnv = process.env,
  write: (line: string) => void = (line) => void process.stdout.write(line + '\n'),
): middy.MiddlewareObj {
  const everyMs = Number(env.SKIFF_METRICS_FLUSH_SECONDS ?? 0) * 1000;
  let publisher: EmfPublisher | undefined;
  const flush = async () => {
    if (!(everyMs > 0)) return;
    if (!publisher) {
      const api = await server();
      publisher = new EmfPublisher([api.metrics.registry], { namespace: EMF_NAMESPACE, dimensions: { ClusterName: env.SKIFF_CLUSTER_NAME || 'skiff' }, series: APISERVER_EMF_SERIES, write });
      // Watches hold an invocation open for up to 14 minutes: their instance flushes meanwhile too.
      setInterval(() => void publisher!.maybeFlush(everyMs).catch(() => {}), everyMs).unref();
    }
    await publisher.maybeFlush(everyMs);
  };
  return {
    after: async () => {
      // Metrics must never fail a request.
      await flush().catch((e: Error) => console.error(`metrics: EMF flush failed: ${e.message}`));
    },
  };
}
