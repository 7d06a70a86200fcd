// The scheduler's Lambda entry points: `stream` for batches of the table's stream (filtered to pods,
// nodes and leases by the event source mapping) and `resync` for the scheduled trigger. One scheduler
// instance per execution environment keeps its cached snapshot warm across invocations.

import { createControllerHandlers, dispatchHandler } from '../controllers/stream.ts';
import { cloudContext } from '../controllers/cloud-context.ts';
import { createScheduler } from './scheduler.ts';
import { flushLambdaUsage } from '../storage/usage-store.ts';
import { schedulerTellerFromEnv } from '../controllers/node-notifier.ts';

// With the push channel (SKIFF_NODE_QUEUE_PREFIX), each bind is told to its node at once.
export const scheduler = createScheduler({ onBound: schedulerTellerFromEnv() });
const handlers = createControllerHandlers([scheduler], cloudContext);
export const stream = handlers.stream;
export const resync = handlers.resync;
const dispatch = dispatchHandler(handlers);
/** One function for both triggers: stream batches and the scheduled resync. */
export const handler = async (event: Parameters<typeof dispatch>[0]) => {
  try {
    return await dispatch(event);
  } finally {
    // Cost per namespace: this instance's counts to the table, every 5 minutes at most (usage-store.ts).
    await flushLambdaUsage();
  }
};
