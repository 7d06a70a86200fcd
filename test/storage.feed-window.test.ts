// A change feed's window (storage/dynamodb.ts FeedWindow): the catch-ups of every deployed node, each from
// its own last revision, read through one window per process. Checked against the feed itself over random
// reads (behind, inside, at and past the window; a window trimmed to a few entries), and for what it reads.

import { describe, expect, it } from 'vitest';
import { FeedWindow } from '../lambdas/storage/dynamodb.ts';

type Entry = { type: 'create' | 'update' | 'delete'; kv: { key: string; value: string; createRevision: number; modRevision: number } };

/** A feed with a change at some revisions of 1..n (seeded), and a reader of it that counts its reads. */
function feed(n: number, seed: number) {
  let x = seed;
  const rand = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const entries: Entry[] = [];
  for (let rev = 1; rev <= n; rev++) if (rand() < 0.3) entries.push({ type: 'update', kv: { key: `/registry/core/endpoints/ns/e${rev % 7}`, value: `v${rev}`, createRevision: 1, modRevision: rev } });
  const reads: [number, number][] = [];
  const readRange = async (after: number, upTo: number) => {
    reads.push([after, upTo]);
    return entries.filter((e) => e.kv.modRevision > after && e.kv.modRevision <= upTo);
  };
  return { entries, reads, readRange, rand };
}

const revs = (es: Entry[]) => es.map((e) => e.kv.modRevision);

describe('FeedWindow', () => {
  it('answers every read as the feed would, behind, inside, at and past the window, trimmed or not', async () => {
    // [entries, bytes of values]: values here are 2 to 4 bytes ("v" and the revision).
    for (const [capacity, bytes] of [[3, 1000], [10, 1000], [2000, 10], [2000, 1e6]] as const) {
      for (let seed = 1; seed <= 20; seed++) {
        const f = feed(400, seed);
        const w = new FeedWindow(f.readRange, capacity, bytes);
        let settled = 0;
        for (let i = 0; i < 300; i++) {
          settled = Math.min(400, settled + Math.floor(f.rand() * 4));
          // Nodes at various distances behind: most near the head, a few far (a fresh or slow one).
          const behind = f.rand() < 0.1 ? Math.floor(f.rand() * settled) : Math.floor(f.rand() * 12);
          const after = Math.max(0, settled - behind);
          const got = await w.read(after, settled);
          expect(revs(got), `capacity ${capacity} (${bytes} B), seed ${seed}, read ${i}: (${after}, ${settled}]`).toEqual(revs(f.entries.filter((e) => e.kv.modRevision > after && e.kv.modRevision <= settled)));
        }
      }
    }
  });

  it('reads each revision once for nodes catching up from different places, and nothing when none is new', async () => {
    const f = feed(100, 7);
    const w = new FeedWindow(f.readRange);
    // Five nodes, each last looked at a different revision; the head is at 50.
    for (const after of [30, 35, 40, 45, 50]) await w.read(after, 50);
    expect(f.reads).toEqual([[30, 50]]); // the first reads its range; the rest are inside it
    // The head moves to 60: the first node to ask reads 50..60, the others nothing.
    for (const after of [50, 40, 45]) await w.read(after, 60);
    expect(f.reads).toEqual([[30, 50], [50, 60]]);
    // A node far behind the window reads its own range; the window then reaches back to it.
    await w.read(10, 60);
    await w.read(20, 60);
    expect(f.reads).toEqual([[30, 50], [50, 60], [10, 60]]);
    // Reads in flight at once each take what they read; the window stays right (checked by the test above).
    await Promise.all([w.read(55, 70), w.read(58, 70), w.read(60, 72)]);
    expect(revs(await w.read(0 + 10, 72))).toEqual(revs(f.entries.filter((e) => e.kv.modRevision > 10 && e.kv.modRevision <= 72)));
  });
});
