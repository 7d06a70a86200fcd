// What the apiserver answers once history is gone (410 Expired, as after etcd compaction), watch
// timeouts, and how tokens are kept, against a real HTTPS cluster on SQLite.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import https from 'node:https';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteBackend } from '../lambdas/storage/sqlite.ts';
import { hashToken } from '../lambdas/apiserver/auth.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';

let c: TestCluster;
let backend: SqliteBackend;

function get(path: string): Promise<{ status: number; text: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    https
      .get(new URL(path, c.url), { headers: { authorization: `Bearer ${c.token}` }, ca: c.caCert }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, text, ms: Date.now() - t0 }));
      })
      .on('error', reject);
  });
}

function post(path: string, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(path, c.url), { method: 'POST', headers: { authorization: `Bearer ${c.token}`, 'content-type': 'application/json' }, ca: c.caCert }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

beforeAll(async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'skiff-history-'));
  backend = new SqliteBackend(join(dataDir, 'skiff.db'), { compactIntervalMs: 0 });
  c = await startTestCluster({ dataDir, backend });
});
afterAll(async () => {
  await c?.destroy();
});

describe('history and time limits', () => {
  it('a watch or a continue from a compacted resourceVersion is 410 Expired', async () => {
    for (let i = 0; i < 5; i++) expect(await post('/api/v1/namespaces/default/configmaps', { metadata: { name: `h${i}` } })).toBe(201);
    const page = JSON.parse((await get('/api/v1/namespaces/default/configmaps?limit=2')).text);
    expect(page.metadata.continue).toBeTruthy();
    const oldRV = 2;
    for (let i = 5; i < 8; i++) await post('/api/v1/namespaces/default/configmaps', { metadata: { name: `h${i}` } });
    backend.compact(await backend.currentRevision());

    const w = await get(`/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${oldRV}&timeoutSeconds=5`);
    expect(w.status).toBe(200);
    const ev = JSON.parse(w.text.trim().split('\n')[0]!);
    expect(ev.type).toBe('ERROR');
    expect(ev.object).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'Expired', code: 410 });
    expect(ev.object.message).toMatch(/^too old resource version: 2 \(\d+\)$/);

    const cont = await get(`/api/v1/namespaces/default/configmaps?limit=2&continue=${encodeURIComponent(page.metadata.continue)}`);
    expect(cont.status).toBe(410);
    expect(JSON.parse(cont.text)).toMatchObject({ kind: 'Status', reason: 'Expired', code: 410 });
  });

  it('timeoutSeconds ends a watch', async () => {
    const r = await get('/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1&resourceVersion=' + (await backend.currentRevision()));
    expect(r.status).toBe(200);
    expect(r.ms).toBeGreaterThanOrEqual(900);
    expect(r.ms).toBeLessThan(5000);
  });

  it('the store keeps only a hash of the admin token', () => {
    const db = readFileSync(join(c.dataDir, 'skiff.db'));
    const wal = (() => {
      try {
        return readFileSync(join(c.dataDir, 'skiff.db-wal'));
      } catch {
        return Buffer.alloc(0);
      }
    })();
    const all = Buffer.concat([db, wal]);
    expect(all.includes(Buffer.from(c.token))).toBe(false);
    expect(all.includes(Buffer.from(hashToken(c.token)))).toBe(true);
  });
});
