// The ControllerContext of a control-loop Lambda: DynamoDB storage named by the environment, opened
// once per execution environment and reused by every invocation it serves.

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoBackend } from '../storage/dynamodb.ts';
import { ApiServer } from '../apiserver/app.ts';
import type { ControllerContext } from './controller.ts';

let ctx: Promise<ControllerContext> | undefined;

export function cloudContext(): Promise<ControllerContext> {
  return (ctx ??= (async () => {
    const tableName = process.env.SKIFF_TABLE;
    if (!tableName) throw new Error('SKIFF_TABLE is not set');
    const client = new DynamoDBClient(process.env.SKIFF_DYNAMODB_ENDPOINT ? { endpoint: process.env.SKIFF_DYNAMODB_ENDPOINT } : {});
    return new ApiServer({ backend: new DynamoBackend({ client, tableName }) }).controllerContext();
  })());
}
