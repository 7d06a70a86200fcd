// The ControllerContext of a control-loop Lambda: DynamoDB storage named by the environment, opened
// once per execution environment and reused by every invocation it serves.

import { backendFromEnv } from '../storage/dynamodb.ts';
import { ApiServer } from '../apiserver/app.ts';
import { maxObjectsFromEnv } from '../apiserver/registry.ts';
import type { ControllerContext } from './controller.ts';

let ctx: Promise<ControllerContext> | undefined;

export function cloudContext(): Promise<ControllerContext> {
  return (ctx ??= Promise.resolve().then(() => new ApiServer({ backend: backendFromEnv(), maxObjectsPerNamespace: maxObjectsFromEnv() }).controllerContext()));
}
