// The scheduler's Lambda entry points: `stream` for batches of the table's stream (filtered to pods,
// nodes and leases by the event source mapping) and `resync` for the scheduled trigger. One scheduler
// instance per execution environment keeps its cached snapshot warm across invocations.

import { createControllerHandlers, dispatchHandler } from '../controllers/stream.ts';
import { cloudContext } from '../controllers/cloud-context.ts';
import { createScheduler } from './scheduler.ts';

export const scheduler = createScheduler();
const handlers = createControllerHandlers([scheduler], cloudContext);
export const stream = handlers.stream;
export const resync = handlers.resync;
/** One function for both triggers: stream batches and the scheduled resync. */
export const handler = dispatchHandler(handlers);
