// The SQLite store's read memo (ReadMemo in storage/sqlite.ts) looks at PRAGMA data_version once per turn
// of the event loop, not on every answer. These check the two rules that keep that exact: a read the memo
// cannot answer looks first (so a later answer from memory is never older than a read from the store),
// and the next turn looks again. The "other process" is a raw connection that changes a row in place.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, expect, it } from 'vitest';
import { SqliteBackend } from '../lambdas/storage/sqlite.ts';

const NS = '/registry/core/namespaces/';
const cleanup: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function fresh(): Promise<{ b: SqliteBackend; other: Database.Database; rev: number }> {
  const dir = mkdtempSync(join(tmpdir(), `skiff-memo-${process.pid}-`));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const b = new SqliteBackend(join(dir, 'db'), { compactIntervalMs: 0 });
  cleanup.push(() => b.close());
  const { modRevision: rev } = await b.create(`${NS}one`, '{"v":1}');
  const other = new Database(join(dir, 'db'));
  cleanup.push(() => {
    other.close();
  });
  return { b, other, rev };
}

it('a read the memo cannot answer looks at data_version first, so the answers after it are as new as the store', async () => {
  const { b, other, rev } = await fresh();
  expect((await b.get(`${NS}one`))?.value).toBe('{"v":1}'); // remembered, in this turn
  other.prepare('UPDATE log SET value = ? WHERE rev = ?').run('{"v":2}', rev); // another process commits
  // Still the same turn (only microtasks since the look). A miss goes to the store, which has the commit...
  expect(await b.get(`${NS}absent`)).toBeUndefined();
  // ...so the memo must have forgotten what it held: this answer may not be older than that read.
  expect((await b.get(`${NS}one`))?.value).toBe('{"v":2}');
});

it('the next turn of the event loop looks again', async () => {
  const { b, other, rev } = await fresh();
  expect((await b.get(`${NS}one`))?.value).toBe('{"v":1}');
  expect((await b.list(NS)).kvs.map((kv) => kv.value)).toEqual(['{"v":1}']);
  other.prepare('UPDATE log SET value = ? WHERE rev = ?').run('{"v":2}', rev);
  await new Promise((r) => setImmediate(r));
  expect((await b.get(`${NS}one`))?.value).toBe('{"v":2}');
  expect((await b.list(NS)).kvs.map((kv) => kv.value)).toEqual(['{"v":2}']);
});
