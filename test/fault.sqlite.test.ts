// Fault suite, local cluster: `skiff up` (the built CLI, in its own process, as a user runs it) killed
// with SIGKILL during a burst of writes, and stopped with SIGTERM under open watches. After a restart on
// the same data dir, every write the apiserver acknowledged (2xx) is there with the acknowledged content,
// the SQLite file passes integrity_check, and watchers resume from their last resourceVersion seeing
// every change exactly once.

import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import * as k8s from '@kubernetes/client-node';
import { until } from './support/until.ts';
import { apiClient, skiffUp, spawnSkiffUp, killLeftovers } from './support/skiff-up.ts';

const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;

const dirs: string[] = [];
afterAll(async () => {
  await killLeftovers();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function newDataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'skiff-fault-'));
  dirs.push(d);
  return d;
}

const cm = (name: string, data: Record<string, string>) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data });
const CMS = '/api/v1/namespaces/default/configmaps';

describe('skiff up under faults', () => {
  it('SIGKILL during a burst of writes: every acknowledged write is there after restart, integrity_check ok', async () => {
    expect(existsSync('dist/skiff.mjs')).toBe(true); // npm test builds before running tests
    const dataDir = newDataDir();
    const first = await skiffUp(dataDir);
    const api = apiClient(dataDir, first.url);
    // name -> the data the apiserver acknowledged last, and the data of a write still unanswered.
    const acked = new Map<string, string>();
    const inflight = new Map<string, string>();
    let stop = false;
    const writer = async (w: number) => {
      // Creates of new names, and updates of one name per writer (each with its resourceVersion).
      let rv: string | undefined;
      for (let j = 0; !stop; j++) {
        const name = j % 2 === 0 ? `burst-${w}-${j}` : `counter-${w}`;
        const v = String(j);
        inflight.set(name, v);
        try {
          const r =
            name.startsWith('counter') && rv
              ? await api.request('PUT', `${CMS}/${name}`, { ...cm(name, { v }), metadata: { name, resourceVersion: rv } })
              : await api.request('POST', CMS, cm(name, { v }));
          if (r.status >= 200 && r.status < 300) {
            acked.set(name, v);
            if (name.startsWith('counter')) rv = r.body.metadata.resourceVersion;
          } else if (!stop) throw new Error(`${name}: ${r.status} ${JSON.stringify(r.body)}`);
        } catch (e) {
          if (!stop) throw e;
          return; // the server died under this request: its outcome is unknown
        }
        inflight.delete(name);
      }
    };
    const writers = Array.from({ length: 8 }, (_, w) => writer(w));
    await until('200 acknowledged writes', async () => acked.size >= 200, 30_000, 10);
    stop = true;
    expect(inflight.size).toBeGreaterThan(0); // the kill lands with writes in flight
    first.proc.kill('SIGKILL');
    expect(await first.exited).toBe(null); // killed, not exited
    await Promise.all(writers);
    api.close();

    // The file as the killed process left it (its WAL included) passes SQLite's own check.
    const db = new Database(join(dataDir, 'skiff.db'));
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();

    const second = await skiffUp(dataDir);
    const api2 = apiClient(dataDir, second.url);
    try {
      const list = await api2.request('GET', CMS);
      expect(list.status).toBe(200);
      const stored = new Map<string, string>(list.body.items.map((i: any) => [i.metadata.name, i.data.v]));
      for (const [name, v] of acked) {
        // An update still unanswered at the kill may have committed too: then it is the stored value.
        const got = stored.get(name);
        if (got !== v) expect(got, name).toBe(inflight.get(name));
      }
      // The restarted cluster takes writes again.
      expect((await api2.request('POST', CMS, cm('after-restart', { v: 'x' }))).status).toBe(201);
    } finally {
      api2.close();
      second.proc.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    }
  }, 60_000);

  it('SIGTERM with open watches: a clean end of every stream, then each watcher resumes without a gap', async () => {
    const dataDir = newDataDir();
    const first = await skiffUp(dataDir);
    let api = apiClient(dataDir, first.url);
    // Every write, as acknowledged: "TYPE name resourceVersion". Only this test writes f-* config maps.
    const written: string[] = [];
    const write = async (method: string, name: string, body?: unknown) => {
      const r = await api.request(method, method === 'POST' ? CMS : `${CMS}/${name}`, body);
      expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
      const type = method === 'POST' ? 'ADDED' : method === 'DELETE' ? 'DELETED' : 'MODIFIED';
      // A delete answers with the object as deleted; its resourceVersion is the delete's revision.
      written.push(`${type} ${name} ${r.body.metadata.resourceVersion}`);
    };
    const start = (await api.request('GET', CMS)).body.metadata.resourceVersion as string;

    // Three watchers from the same resourceVersion: a raw HTTPS watch, client-node's Watch, stock kubectl.
    const seen = { raw: [] as string[], node: [] as string[] };
    const last = { raw: start, node: start };
    const record = (who: 'raw' | 'node', type: string, obj: any) => {
      if (type === 'BOOKMARK') return;
      last[who] = obj.metadata.resourceVersion;
      if (obj.metadata.name.startsWith('f-')) seen[who].push(`${type} ${obj.metadata.name} ${obj.metadata.resourceVersion}`);
    };
    const rawWatch = (from: string) => api.watch(`${CMS}?watch=true&allowWatchBookmarks=true&resourceVersion=${from}`, (e) => record('raw', e.type, e.object));
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(join(dataDir, 'kubeconfig'));
    const nodeWatch = (from: string) =>
      new Promise<unknown>((resolve) => {
        void new k8s.Watch(kc).watch(CMS, { resourceVersion: from, allowWatchBookmarks: true }, (type, obj) => record('node', type, obj), (err) => resolve(err ?? 'clean'));
      });
    const kubectl = spawn('kubectl', ['--kubeconfig', join(dataDir, 'kubeconfig'), 'get', 'configmaps', '-n', 'default', '-w', '-o', 'name'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let kubectlOut = '';
    let kubectlErr = '';
    kubectl.stdout!.on('data', (d) => (kubectlOut += d));
    kubectl.stderr!.on('data', (d) => (kubectlErr += d));
    const kubectlExit = new Promise<number | null>((r) => kubectl.once('exit', (code) => r(code)));

    const rawEnd = rawWatch(start);
    const nodeEnd = nodeWatch(start);
    for (let i = 0; i < 6; i++) await write('POST', `f-${i}`, cm(`f-${i}`, { v: '0' }));
    await write('PUT', 'f-0', cm('f-0', { v: '1' }));
    await write('DELETE', 'f-1');
    await until('every watcher saw the first writes', async () =>
      seen.raw.length === written.length && seen.node.length === written.length && kubectlOut.includes('configmap/f-5'),
    );

    first.proc.kill('SIGTERM');
    expect(await rawEnd).toBe('end');
    expect(await nodeEnd).toBe('clean');
    expect(await kubectlExit).toBe(0);
    expect(kubectlErr).toBe('');
    expect(await first.exited).toBe(0);
    api.close();

    // Restarted: each watcher re-watches from the last resourceVersion it saw; writes go on.
    const second = await skiffUp(dataDir);
    api = apiClient(dataDir, second.url);
    kc.loadFromFile(join(dataDir, 'kubeconfig')); // the port is new
    const rawEnd2 = rawWatch(last.raw);
    const nodeEnd2 = nodeWatch(last.node);
    for (let i = 6; i < 9; i++) await write('POST', `f-${i}`, cm(`f-${i}`, { v: '0' }));
    await write('PUT', 'f-2', cm('f-2', { v: '1' }));
    await write('DELETE', 'f-3');
    await until('every watcher saw the later writes', async () => seen.raw.length >= written.length && seen.node.length >= written.length);
    expect(seen.raw).toEqual(written);
    expect(seen.node).toEqual(written);
    second.proc.kill('SIGTERM');
    expect(await rawEnd2).toBe('end');
    expect(await nodeEnd2).toBe('clean');
    expect(await second.exited).toBe(0);
    api.close();
  }, 60_000);

  it('a certificate file lost before it reached the disk (empty): a clear error naming it, not a server every client fails', async () => {
    const dataDir = newDataDir();
    const first = await skiffUp(dataDir);
    first.proc.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    writeFileSync(join(dataDir, 'pki', 'apiserver.crt'), '');
    const proc = spawnSkiffUp(dataDir);
    let output = '';
    proc.stdout!.on('data', (d) => (output += d));
    proc.stderr!.on('data', (d) => (output += d));
    expect(await new Promise((r) => proc.once('exit', r))).toBe(1);
    expect(output).toContain(`${join(dataDir, 'pki', 'apiserver.crt')} is empty or damaged`);
  }, 30_000);
});
