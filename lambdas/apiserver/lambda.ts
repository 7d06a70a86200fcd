// The apiserver Lambda's entry point in the cloud: DynamoDB storage named by the environment, opened
// once per execution environment and reused by every invocation it serves.
// Service-account tokens (SKIFF_SA_KEY_PARAMETER, set by infra/skiff-cluster.ts): the key bundle is the
// SSM SecureString the bootstrap resource made, read with GetParameter once per instance and again every
// 5 minutes (a rotation reaches every instance within that); the issuer is read from the table once per
// instance (serviceaccount-tokens.ts ISSUER_KEY).

import { flushLambdaUsage, lambdaUsage } from '../storage/usage-store.ts';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { backendFromEnv } from '../storage/dynamodb.ts';
import { ApiServer } from './app.ts';
import { eventTtlFromEnv, maxObjectsFromEnv } from './registry.ts';
import { createHandler } from './handler.ts';
import { apiserverEmf } from './metrics-emf.ts';
import { auditorFromEnv } from './audit.ts';
import { dynamoHistoryFromEnv } from '../storage/history.ts';
import { nodeUsageFromEnv } from './node-usage.ts';
import { DEFAULT_ISSUER, readServiceAccountIssuer, ServiceAccountTokens } from './serviceaccount-tokens.ts';
import { remoteWebhookCaller, type CallerResult, type WebhookPost } from './webhook-post.ts';

let server: Promise<ApiServer> | undefined;
let ssm: Promise<SSMClient> | undefined;

/** A SecureString's value (the function's role may read exactly this one parameter). */
async function secureParameter(name: string): Promise<string> {
  const client = await (ssm ??= import('@aws-sdk/client-ssm').then((m) => new m.SSMClient({})));
  const { GetParameterCommand } = await import('@aws-sdk/client-ssm');
  const out = await client.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
  if (!out.Parameter?.Value) throw new Error(`parameter ${name} has no value`);
  return out.Parameter.Value;
}

let lambdaClient: Promise<import('@aws-sdk/client-lambda').LambdaClient> | undefined;
/** Invokes the webhook caller function (infra/skiff-cluster.ts) and returns what it answered. */
function invokeCaller(functionName: string): (p: WebhookPost) => Promise<CallerResult> {
  return async (p) => {
    const client = await (lambdaClient ??= import('@aws-sdk/client-lambda').then((m) => new m.LambdaClient({})));
    const { InvokeCommand } = await import('@aws-sdk/client-lambda');
    const out = await client.send(new InvokeCommand({ FunctionName: functionName, Payload: Buffer.from(JSON.stringify(p)) }));
    const text = Buffer.from(out.Payload ?? new Uint8Array()).toString('utf8');
    if (out.FunctionError) return { error: { message: `the webhook caller failed: ${text}` } };
    return JSON.parse(text) as CallerResult;
  };
}

async function open(): Promise<ApiServer> {
  // A watch must end before the function's own timeout; the function is configured with 15 minutes.
  const maxWatchSeconds = Number(process.env.SKIFF_MAX_WATCH_SECONDS ?? 840);
  // Behind CloudFront a quiet watch needs a byte before the origin read timeout (infra/front-door.ts).
  const keepAlive = Number(process.env.SKIFF_WATCH_KEEPALIVE_SECONDS ?? 0);
  const backend = backendFromEnv();
  const keyParameter = process.env.SKIFF_SA_KEY_PARAMETER;
  const serviceAccountTokens = keyParameter
    ? new ServiceAccountTokens({
        keys: () => secureParameter(keyParameter),
        keyTtlMs: 5 * 60_000,
        issuer: (await readServiceAccountIssuer(backend)) ?? DEFAULT_ISSUER,
      })
    : undefined;
  return new ApiServer({
    backend,
    // Cost per namespace: counted by the instance, kept in the table (usage-store.ts).
    usage: lambdaUsage().meter,
    usageStore: lambdaUsage().store,
    maxWatchSeconds,
    watchKeepAliveMs: keepAlive > 0 ? keepAlive * 1000 : undefined,
    maxObjectsPerNamespace: maxObjectsFromEnv(),
    eventTtlSeconds: eventTtlFromEnv(),
    serviceAccountTokens,
    // IAM sign-in: tokens bound to this cluster's name (infra sets it); STS_ENDPOINT only for emulators.
    iam: process.env.SKIFF_CLUSTER_NAME ? { clusterId: process.env.SKIFF_CLUSTER_NAME, stsEndpoint: process.env.SKIFF_STS_ENDPOINT || undefined } : undefined,
    // CloudWatch Logs, when the stack gives the function an audit log group (infra/skiff-cluster.ts).
    audit: auditorFromEnv(),
    // Object history in the cluster's table, kept SKIFF_HISTORY_RETENTION (default 24h; "0" off).
    history: dynamoHistoryFromEnv(),
    // The controller manager runs the serviceaccounts loop that makes each namespace's `default`.
    serviceAccountAdmission: true,
    // Service-based admission webhooks are called by the webhook caller, inside the nodes' VPC.
    // `kubectl top`: the nodes' usage, reported on demand through their push queues (node-usage.ts).
    nodeUsage: nodeUsageFromEnv(),
    webhookCaller: process.env.SKIFF_WEBHOOK_CALLER ? remoteWebhookCaller(invokeCaller(process.env.SKIFF_WEBHOOK_CALLER)) : undefined,
  });
}

function getServer(): Promise<ApiServer> {
  server ??= open();
  // A failed start (the table unreachable) is tried again by the next request.
  server.catch(() => (server = undefined));
  return server;
}

// Its /metrics series go to CloudWatch as EMF lines, once a minute per instance (metrics-emf.ts).
export const handler = createHandler(getServer)
  .use(apiserverEmf(getServer))
  .use({ after: () => flushLambdaUsage() });
