// The two real backends a controller test runs on: SQLite in a temp file, and DynamoDB on the endpoint
// the harness provides (moto, or SKIFF_DYNAMODB_ENDPOINT). Each entry makes a fresh store and returns
// a function that opens a handle on it (call it twice for "two processes" on one store). Call at module
// level with top-level await: it registers the endpoint's shutdown and the temp dir's removal.

import { afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../../lambdas/storage/backend.ts';
import { SqliteBackend } from '../../lambdas/storage/sqlite.ts';
import { DynamoBackend, ensureTable } from '../../lambdas/storage/dynamodb.ts';
import { dynamoTestEndpoint, uniqueTableName } from './dynamodb.ts';

/** [name, make a fresh store (returns its handle opener), enabled] */
export type TestStore = [string, () => Promise<() => Backend>, boolean];

export async function testStores(label: string): Promise<TestStore[]> {
  const ddb = await dynamoTestEndpoint();
  const dir = mkdtempSync(join(tmpdir(), `skiff-${label}-`));
  afterAll(async () => {
    await ddb?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  if (!ddb) console.warn(`${label}: no DynamoDB endpoint, DynamoDB suite SKIPPED`);
  let fileNo = 0;
  return [
    [
      'SQLite',
      async () => {
        const file = join(dir, `s${fileNo++}.db`);
        return () => new SqliteBackend(file);
      },
      true,
    ],
    [
      'DynamoDB',
      async () => {
        const tableName = uniqueTableName(`skiff-${label}`);
        await ensureTable(ddb!.client, tableName);
        return () => new DynamoBackend({ client: ddb!.newClient(), tableName, pollIntervalMs: 50 });
      },
      !!ddb,
    ],
  ];
}

/** The same stores, each opened once: [name, make a fresh backend, enabled]. */
export async function testBackends(label: string): Promise<[string, () => Promise<Backend>, boolean][]> {
  return (await testStores(label)).map(([name, make, enabled]) => [name, async () => (await make())(), enabled]);
}
