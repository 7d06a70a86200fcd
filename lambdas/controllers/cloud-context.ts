// The ControllerContext of a control-loop Lambda: DynamoDB storage named by the environment, opened
// once per execution environment and reused by every invocation it serves. Pods the loops create pass
// ServiceAccount admission as users' do (their account, the token volume).

import { backendFromEnv } from '../storage/dynamodb.ts';
import { ApiServer } from '../apiserver/app.ts';
import { lambdaUsage } from '../storage/usage-store.ts';
import { eventTtlFromEnv, maxObjectsFromEnv } from '../apiserver/registry.ts';
import { dynamoHistoryFromEnv } from '../storage/history.ts';
import type { ControllerContext } from './controller.ts';
import { meteredResyncLog } from './stream.ts';

let ctx: Promise<ControllerContext> | undefined;

export function cloudContext(): Promise<ControllerContext> {
  return (ctx ??= Promise.resolve().then(() => {
    const backend = backendFromEnv();
    const usage = lambdaUsage().meter;
    const c = new ApiServer({ backend, usage, maxObjectsPerNamespace: maxObjectsFromEnv(), eventTtlSeconds: eventTtlFromEnv(), serviceAccountAdmission: true, shippedPolicyForLoops: true, history: dynamoHistoryFromEnv() }).controllerContext();
    // The scheduled resync reads the log since its last run (stream.ts resyncAll), counted as the store is.
    return { ...c, resyncLog: meteredResyncLog(backend, usage) };
  }));
}
