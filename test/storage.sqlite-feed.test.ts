// The SQLite change feed's own rules, beyond the contract suite: a watch event's previous value is read
// from the previous row (not stored twice), which compaction must never take away from a replayable
// event; rows written by older versions, which did store it, still read the same; and watches are woken
// in batches, yet a writer that never lets the event loop turn cannot hold them back for long.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { StorageError, type WatchBatch, type WatchEvent } from '../lambdas/storage/backend.ts';
import { SqliteBackend } from '../lambdas/storage/sqlite.ts';

const P = '/registry/core/pods/';
const open: SqliteBackend[] = [];
const dirs: string[] = [];

function fresh(): { b: SqliteBackend; file: string } {
  const dir = mkdtempSync(join(tmpdir(), `skiff-feed-${process.pid}-`));
  dirs.push(dir);
  const file = join(dir, 'db');
  const b = new SqliteBackend(file, { compactIntervalMs: 0 });
  open.push(b);
  return { b, file };
}

afterEach(async () => {
  for (const b of open.splice(0)) await b.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Every event under P after `from`, up to revision `until`. */
async function eventsBetween(b: SqliteBackend, from: number, until: number): Promise<WatchEvent[]> {
  const ac = new AbortController();
  const out: WatchEvent[] = [];
  for await (const batch of b.watch(P, from, ac.signal)) {
    out.push(...batch.events);
    if (batch.revision >= until) break;
  }
  ac.abort();
  return out;
}

describe('SqliteBackend change feed', () => {
  it('an event keeps its previous value across compaction, for updates and deletes', async () => {
    const { b } = fresh();
    await b.create(`${P}ns/a`, 'a1'); // 1
    await b.update(`${P}ns/a`, 'a2', 1); // 2
    await b.create(`${P}ns/b`, 'b1'); // 3
    await b.update(`${P}ns/a`, 'a3', 2); // 4: its previous row (2) is at the compaction point below
    await b.delete(`${P}ns/b`); // 5: its previous row (3) too
    expect(b.compact(3)).toBe(3); // drops row 1 (superseded by 2); keeps 2 and 3, the newest at or below 3
    const evs = await eventsBetween(b, 3, 5);
    expect(evs).toEqual([
      {
        type: 'update',
        kv: { key: `${P}ns/a`, value: 'a3', createRevision: 1, modRevision: 4 },
        prevKv: { key: `${P}ns/a`, value: 'a2', createRevision: 1, modRevision: 2 },
      },
      {
        type: 'delete',
        kv: { key: `${P}ns/b`, value: 'b1', createRevision: 3, modRevision: 5 },
        prevKv: { key: `${P}ns/b`, value: 'b1', createRevision: 3, modRevision: 3 },
      },
    ]);
    // Compacting past them makes them unreplayable, never wrong.
    expect(b.compact(5)).toBe(5);
    await expect(eventsBetween(b, 3, 5)).rejects.toMatchObject({ code: 'Compacted' });
  });

  it('reads the previous value stored in rows written by older versions', async () => {
    const { b, file } = fresh();
    await b.create(`${P}ns/a`, 'a1'); // 1
    // An update row as the previous layout wrote it: the previous value repeated in prev_value.
    const raw = new Database(file);
    raw.pragma('busy_timeout = 5000');
    raw.transaction(() => {
      raw.prepare(`INSERT INTO log (rev, key, value, create_rev, prev_rev, prev_value, deleted) VALUES (2, ?, 'a2', 1, 1, 'as stored', 0)`).run(`${P}ns/a`);
      raw.prepare('INSERT OR REPLACE INTO live (key, rev) VALUES (?, 2)').run(`${P}ns/a`);
    }).immediate();
    raw.close();
    const [ev] = await eventsBetween(b, 1, 2);
    expect(ev!.prevKv).toEqual({ key: `${P}ns/a`, value: 'as stored', createRevision: 1, modRevision: 1 });
    // And the new layout goes on from it.
    await b.update(`${P}ns/a`, 'a3', 2);
    const [ev3] = await eventsBetween(b, 2, 3);
    expect(ev3!.prevKv).toEqual({ key: `${P}ns/a`, value: 'a2', createRevision: 1, modRevision: 2 });
  });

  it('a burst of writes in one turn reaches a watch in one batch', async () => {
    const { b } = fresh();
    const ac = new AbortController();
    const it = b.watch(P, 0, ac.signal)[Symbol.asyncIterator]();
    const first = it.next(); // the watch is reading, then waits for a wake-up
    await new Promise((r) => setTimeout(r, 20));
    await Promise.all(Array.from({ length: 10 }, (_, i) => b.create(`${P}ns/k${i}`, String(i))));
    const batch = (await first).value as WatchBatch;
    expect(batch.events.map((e) => e.kv.modRevision)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    ac.abort();
    await it.return?.();
  });

  // A watch is woken in the commit's own turn, after the writers are answered: waking it a turn later
  // added that turn to every event's delivery (watch delivery at one client, bench:vs-kube).
  it('a watch gets a committed write in the turn its writer is answered', async () => {
    const { b } = fresh();
    const ac = new AbortController();
    // Turns of the event loop, counted by an immediate that queues itself again (one run per check phase).
    let turn = 0;
    let counting = true;
    const count = () => {
      turn++;
      if (counting) setImmediate(count);
    };
    setImmediate(count);
    let seenIn: number | undefined;
    const watching = (async () => {
      for await (const batch of b.watch(P, 0, ac.signal)) {
        if (batch.events.length) return void (seenIn = turn);
      }
    })();
    await new Promise((r) => setTimeout(r, 20));
    const answeredIn = await b.create(`${P}ns/a`, 'a').then(() => turn);
    await watching;
    counting = false;
    ac.abort();
    expect(seenIn).toBe(answeredIn);
  });

  // A commit wakes only the watches with a written key under their prefix; the others are moved past it.
  // Moving one on must never skip what it has not read: here another connection's write under its prefix
  // lands just before this handle's commit of other keys, and the timer that sees other connections is
  // too slow to have noticed it (60 s).
  it('a watch moved past commits of other keys never skips a write it has not read', async () => {
    const dir = mkdtempSync(join(tmpdir(), `skiff-feed-${process.pid}-`));
    dirs.push(dir);
    const file = join(dir, 'db');
    const b = new SqliteBackend(file, { compactIntervalMs: 0, pollIntervalMs: 60_000 });
    const other = new SqliteBackend(file, { compactIntervalMs: 0, pollIntervalMs: 60_000 });
    open.push(b, other);
    const Q = '/registry/core/configmaps/';
    const ac = new AbortController();
    const seen: WatchBatch[] = [];
    const watching = (async () => {
      for await (const batch of b.watch(P, 0, ac.signal, 60_000)) seen.push(batch);
    })();
    await new Promise((r) => setTimeout(r, 20));
    await b.create(`${Q}ns/c1`, 'c1'); // 1: not the watch's; it is moved on
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual([]);
    await other.create(`${P}ns/a`, 'a'); // 2: the watch's, by another connection
    await b.create(`${Q}ns/c2`, 'c2'); // 3: not the watch's, committed here before the timer looks
    await b.create(`${P}ns/b`, 'b'); // 4
    await new Promise((r) => setTimeout(r, 20));
    expect(seen.flatMap((x) => x.events.map((e) => [e.kv.key, e.kv.modRevision]))).toEqual([
      [`${P}ns/a`, 2],
      [`${P}ns/b`, 4],
    ]);
    ac.abort();
    await watching;
  });

  it('group commit: writes of one turn commit together, and a refused one fails alone', async () => {
    const { b, file } = fresh();
    await b.create(`${P}ns/x`, 'x1'); // 1
    const answers = await Promise.allSettled([
      b.create(`${P}ns/a`, 'a'),
      b.create(`${P}ns/x`, 'again'), // KeyExists
      b.update(`${P}ns/x`, 'x2', 99), // Conflict
      b.create(`${P}ns/c`, 'c'),
      b.update(`${P}ns/x`, 'x2', 1),
      b.delete(`${P}ns/missing`), // NotFound
    ]);
    expect(answers.map((a) => (a.status === 'fulfilled' ? a.value.modRevision : (a.reason as StorageError).code))).toEqual([
      2,
      'KeyExists',
      'Conflict',
      3,
      4,
      'NotFound',
    ]);
    // What was answered is in the file, as another connection reads it; what was refused is not.
    const raw = new Database(file, { readonly: true });
    const rows = raw.prepare('SELECT rev, key, value FROM log ORDER BY rev').all();
    raw.close();
    expect(rows).toEqual([
      { rev: 1, key: `${P}ns/x`, value: 'x1' },
      { rev: 2, key: `${P}ns/a`, value: 'a' },
      { rev: 3, key: `${P}ns/c`, value: 'c' },
      { rev: 4, key: `${P}ns/x`, value: 'x2' },
    ]);
  });

  // The commit waits for the next poll phase too: requests that arrive while a batch is answered join
  // the next one (larger batches at 32 clients). So a write asked for in the next turn is answered with one
  // asked for in this turn, not after it.
  it('group commit: a write asked for in the next turn of the event loop joins the commit', async () => {
    const { b } = fresh();
    const order: string[] = [];
    const first = b.create(`${P}ns/a`, 'a').then(() => order.push('a answered'));
    const second = new Promise<void>((resolve) =>
      setImmediate(() => {
        order.push('b asked');
        void b.create(`${P}ns/b`, 'b').then(() => resolve(void order.push('b answered')));
      }),
    );
    await Promise.all([first, second]);
    expect(order).toEqual(['b asked', 'a answered', 'b answered']);
  });

  it('a writer awaiting each write lets watches see its writes as it goes', async () => {
    const { b } = fresh();
    const ac = new AbortController();
    let written = 0;
    let seenAt: number | undefined; // how many writes had been made when the watch first saw one
    const watching = (async () => {
      for await (const batch of b.watch(P, 0, ac.signal)) {
        if (batch.events.length && seenAt === undefined) seenAt = written;
        if (batch.revision >= 500) break;
      }
    })();
    await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 500; i++) {
      await b.create(`${P}ns/k${i}`, String(i));
      written++;
    }
    await watching;
    ac.abort();
    expect(seenAt).toBeDefined();
    expect(seenAt!).toBeLessThan(500);
  });
});
