// The scheduler's Lambda entry points: `stream` for batches of the table's stream (filtered to pods,
// nodes and leases by the event source mapping) and `resync` for the scheduled trigger. One scheduler
// instance per execution environment keeps its cached snapshot warm across invocations.

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoBackend } from '../storage/dynamodb.ts';
import { ApiServer } from '../apiserver/app.ts';
import { createControllerHandlers, dispatchHandler } from '../controllers/stream.ts';
import type { ControllerContext } from '../controllers/controller.ts';
import { createScheduler } from './scheduler.ts';

let ctx: Promise<ControllerContext> | undefined;

function open(): Promise<ControllerContext> {
  const tableName = process.env.SKIFF_TABLE;
  if (!tableName) throw new Error('SKIFF_TABLE is not set');
  const client = new DynamoDBClient(process.env.SKIFF_DYNAMODB_ENDPOINT ? { endpoint: process.env.SKIFF_DYNAMODB_ENDPOINT } : {});
  return Promise.resolve(new ApiServer({ backend: new DynamoBackend({ client, tableName }) }).controllerContext());
}

export const scheduler = createScheduler();
const handlers = createControllerHandlers([scheduler], () => (ctx ??= open()));
export const stream = handlers.stream;
export const resync = handlers.resync;
/** One function for both triggers: stream batches and the one-minute resync schedule. */
export const handler = dispatchHandler(handlers);
