// `skiff up` (the built CLI, in its own process) answering requests of every size one after another on one
// keep-alive connection, as kubectl and client libraries send them. A small answer goes out with its headers
// in one write; a large one flushes its headers first (apiserver/handler.ts writeApiResponse): with large
// answers in one write too, 9 of 200 creates of 200 KB in a row here were reset (ECONNRESET: Node's server
// refused the next request's body, "Parse Error: Paused").

import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiClient, skiffUp, killLeftovers } from './support/skiff-up.ts';

const dirs: string[] = [];
afterAll(async () => {
  await killLeftovers();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('skiff up on one keep-alive connection', () => {
  it('answers creates of 200 KB, 14 KB and 1 KB in a row, then GETs of them, with none reset', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'skiff-keepalive-'));
    dirs.push(dataDir);
    const up = await skiffUp(dataDir);
    const api = apiClient(dataDir, up.url, { maxSockets: 1 });
    const failures: string[] = [];
    try {
      let n = 0;
      for (const [size, count] of [
        [200_000, 150],
        [14_000, 150], // just under one write's limit with its headers
        [1_000, 150],
      ] as const) {
        const data = { v: 'x'.repeat(size) };
        const names = Array.from({ length: count }, () => `cm-${n++}`);
        // The creates in a row (a request with a body right after a large answer was what failed), then the GETs.
        for (const name of names) {
          try {
            const r = await api.request('POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data });
            if (r.status !== 201) failures.push(`${name}: create ${r.status}`);
          } catch (e) {
            failures.push(`${name} (${size} bytes): create: ${(e as Error).message}`);
          }
        }
        for (const name of names) {
          try {
            const g = await api.request('GET', `/api/v1/namespaces/default/configmaps/${name}`);
            if (g.status !== 200 || g.body.data?.v !== data.v) failures.push(`${name}: get ${g.status}`);
          } catch (e) {
            failures.push(`${name} (${size} bytes): get: ${(e as Error).message}`);
          }
        }
      }
    } finally {
      api.close();
      up.proc.kill('SIGTERM');
      await up.exited;
    }
    expect(failures).toEqual([]);
  }, 120_000);
});
