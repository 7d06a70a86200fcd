// The apiserver Lambda's entry point in the cloud: DynamoDB storage named by the environment, opened
// once per execution environment and reused by every invocation it serves.

import { backendFromEnv } from '../storage/dynamodb.ts';
import { ApiServer } from './app.ts';
import { maxObjectsFromEnv } from './registry.ts';
import { createHandler } from './handler.ts';
import { auditorFromEnv } from './audit.ts';

let server: Promise<ApiServer> | undefined;

function open(): Promise<ApiServer> {
  // A watch must end before the function's own timeout; the function is configured with 15 minutes.
  const maxWatchSeconds = Number(process.env.SKIFF_MAX_WATCH_SECONDS ?? 840);
  // Behind CloudFront a quiet watch needs a byte before the origin read timeout (infra/front-door.ts).
  const keepAlive = Number(process.env.SKIFF_WATCH_KEEPALIVE_SECONDS ?? 0);
  return Promise.resolve(
    new ApiServer({
      backend: backendFromEnv(),
      maxWatchSeconds,
      watchKeepAliveMs: keepAlive > 0 ? keepAlive * 1000 : undefined,
      maxObjectsPerNamespace: maxObjectsFromEnv(),
      // IAM sign-in: tokens bound to this cluster's name (infra sets it); STS_ENDPOINT only for emulators.
      iam: process.env.SKIFF_CLUSTER_NAME ? { clusterId: process.env.SKIFF_CLUSTER_NAME, stsEndpoint: process.env.SKIFF_STS_ENDPOINT || undefined } : undefined,
      // CloudWatch Logs, when the stack gives the function an audit log group (infra/skiff-cluster.ts).
      audit: auditorFromEnv(),
    }),
  );
}

export const handler = createHandler(() => (server ??= open()));
