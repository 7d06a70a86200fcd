// The apiserver Lambda's entry point in the cloud: DynamoDB storage named by the environment, opened
// once per execution environment and reused by every invocation it serves.

import { backendFromEnv } from '../storage/dynamodb.ts';
import { ApiServer } from './app.ts';
import { createHandler } from './handler.ts';

let server: Promise<ApiServer> | undefined;

function open(): Promise<ApiServer> {
  // A watch must end before the function's own timeout; the function is configured with 15 minutes.
  const maxWatchSeconds = Number(process.env.SKIFF_MAX_WATCH_SECONDS ?? 840);
  return Promise.resolve(new ApiServer({ backend: backendFromEnv(), maxWatchSeconds }));
}

export const handler = createHandler(() => (server ??= open()));
