// The apiserver Lambda's entry point in the cloud: DynamoDB storage named by the environment, opened
// once per execution environment and reused by every invocation it serves.

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoBackend } from '../storage/dynamodb.ts';
import { ApiServer } from './app.ts';
import { createHandler } from './handler.ts';

let server: Promise<ApiServer> | undefined;

function open(): Promise<ApiServer> {
  const tableName = process.env.SKIFF_TABLE;
  if (!tableName) throw new Error('SKIFF_TABLE is not set');
  const client = new DynamoDBClient(process.env.SKIFF_DYNAMODB_ENDPOINT ? { endpoint: process.env.SKIFF_DYNAMODB_ENDPOINT } : {});
  const backend = new DynamoBackend({ client, tableName });
  // A watch must end before the function's own timeout; the function is configured with 15 minutes.
  const maxWatchSeconds = Number(process.env.SKIFF_MAX_WATCH_SECONDS ?? 840);
  return Promise.resolve(new ApiServer({ backend, maxWatchSeconds }));
}

export const handler = createHandler(() => (server ??= open()));
