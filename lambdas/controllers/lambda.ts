// The controller manager's Lambda entry points: `stream` for batches of the table's stream (filtered
// to the kinds these controllers watch by the event source mapping; see streamFilterPatterns) and
// `resync` for the scheduled trigger every minute, which also drives node lifecycle's clock.

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoBackend } from '../storage/dynamodb.ts';
import { ApiServer } from '../apiserver/app.ts';
import { createControllerHandlers, dispatchHandler } from './stream.ts';
import type { Controller, ControllerContext } from './controller.ts';
import { namespaceController } from './namespace.ts';
import { replicationController } from './replication.ts';
import { garbageCollector } from './garbagecollector.ts';
import { endpointsController } from './endpoints.ts';
import { nodeLifecycleController } from './nodelifecycle.ts';

export const controllers: Controller[] = [namespaceController, replicationController, garbageCollector, endpointsController, nodeLifecycleController];

let ctx: Promise<ControllerContext> | undefined;

function open(): Promise<ControllerContext> {
  const tableName = process.env.SKIFF_TABLE;
  if (!tableName) throw new Error('SKIFF_TABLE is not set');
  const client = new DynamoDBClient(process.env.SKIFF_DYNAMODB_ENDPOINT ? { endpoint: process.env.SKIFF_DYNAMODB_ENDPOINT } : {});
  return Promise.resolve(new ApiServer({ backend: new DynamoBackend({ client, tableName }) }).controllerContext());
}

const handlers = createControllerHandlers(controllers, () => (ctx ??= open()));
export const stream = handlers.stream;
export const resync = handlers.resync;
/** One function for both triggers: stream batches and the one-minute resync schedule. */
export const handler = dispatchHandler(handlers);
