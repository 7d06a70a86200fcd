// `skiff cost` on a running `skiff up` (the built CLI, SQLite): every namespace's requests and dollars,
// priced as if deployed and saying so, the overhead rows and TOTAL their sum; one namespace with --since
// (no overhead); who may read which report; bad input (an unknown namespace, a bad --since, an argument) a clear error and exit 1.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skiffUp, type Skiff } from './support/skiff-up.ts';
import { until } from './support/until.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'skiff-cost-'));
const kubeconfig = join(dataDir, 'kubeconfig');
let skiff: Skiff;

const cost = (...args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((ok) =>
    execFile(process.execPath, ['dist/skiff.mjs', 'cost', '--kubeconfig', kubeconfig, ...args], { timeout: 30_000 }, (err, stdout, stderr) => ok({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })),
  );
const kubectl = (...args: string[]) => execFileSync('kubectl', ['--kubeconfig', kubeconfig, ...args], { encoding: 'utf8' });
/** The row of a namespace: its columns. */
const row = (out: string, ns: string) => out.split('\n').find((l) => l.split(/\s+/)[0] === ns)?.split(/\s+/);
const dollars = (s: string) => Number(s.replace('$', ''));

beforeAll(async () => {
  expect(existsSync('dist/skiff.mjs')).toBe(true); // npm test builds before running tests
  skiff = await skiffUp(dataDir);
}, 60_000);

afterAll(async () => {
  skiff?.proc.kill('SIGTERM');
  await skiff?.exited;
  rmSync(dataDir, { recursive: true, force: true });
});

describe('skiff cost on skiff up', () => {
  it('prints each namespace: requests by kind, units, dollars and the month; a busy namespace costs more', async () => {
    kubectl('create', 'namespace', 'busy');
    kubectl('create', 'namespace', 'idle');
    kubectl('-n', 'busy', 'create', 'deployment', 'web', '--image=nginx:1', '--replicas=3');
    kubectl('-n', 'busy', 'scale', 'deployment', 'web', '--replicas=5');
    for (let i = 0; i < 5; i++) kubectl('-n', 'busy', 'get', 'pods');
    kubectl('-n', 'idle', 'get', 'pods');

    const all = await cost();
    expect(all.stderr).toBe('');
    expect(all.code).toBe(0);
    expect(all.stdout).toContain('priced as if deployed (this is a local cluster on SQLite');
    expect(all.stdout).toMatch(/^NAMESPACE\s+API REQUESTS\s+RECONCILES\s+DDB READS\s+DDB LISTS\s+DDB WRITES\s+RRU\s+WRU\s+COST\s+MONTH$/m);
    const busy = row(all.stdout, 'busy')!;
    const idle = row(all.stdout, 'idle')!;
    expect(busy, all.stdout).toBeDefined();
    expect(idle, all.stdout).toBeDefined();
    // kubectl's requests: 9 in busy (create, scale's get and patch, 5 lists... at least these), 1 in idle.
    expect(Number(busy[1])).toBeGreaterThanOrEqual(8);
    expect(Number(idle[1])).toBeGreaterThanOrEqual(1);
    expect(Number(busy[2])).toBeGreaterThan(0); // the Deployment and ReplicaSet loops' reconciles
    expect(Number(busy[6])).toBeGreaterThan(0);
    expect(dollars(busy[8]!)).toBeGreaterThan(3 * dollars(idle[8]!));
    expect(dollars(busy[9]!)).toBeGreaterThan(dollars(busy[8]!)); // the month's projection of a window of seconds
    // What no namespace caused, as rows of their own; TOTAL is namespaces + overhead.
    expect(row(all.stdout, 'overhead/alarms*'), all.stdout).toBeDefined();
    expect(all.stdout).toContain('TOTAL = namespaces + overhead: compare with `npm run cost`');
    const rows = all.stdout.split('\n').filter((l) => /^\S+\s+\d/.test(l)).map((l) => l.split(/\s+/));
    const total = rows.find((x) => x[0] === 'TOTAL')!;
    expect(total, all.stdout).toBeDefined();
    const summed = rows.filter((x) => x[0] !== 'TOTAL').reduce((n, x) => n + dollars(x[8]!), 0);
    expect(Math.abs(dollars(total[8]!) - summed)).toBeLessThan(1e-5 * rows.length);
    expect(Number(total[1])).toBe(rows.filter((x) => x[0] !== 'TOTAL').reduce((n, x) => n + Number(x[1]), 0));

    const one = await cost('-n', 'idle', '--since', '1h');
    expect(one.code).toBe(0);
    expect(row(one.stdout, 'idle')).toBeDefined();
    expect(row(one.stdout, 'busy')).toBeUndefined();
    // One namespace's report has no overhead.
    expect(one.stdout).not.toContain('overhead/');
  }, 60_000);

  it('who sees what: the whole report needs list pods in all namespaces, not the /apis/* every user may get', async () => {
    kubectl('create', 'namespace', 'team');
    kubectl('-n', 'team', 'create', 'serviceaccount', 'dev');
    const token = kubectl('-n', 'team', 'create', 'token', 'dev').trim();
    const get = (path: string) => {
      try {
        return { ok: true, out: execFileSync('kubectl', ['--kubeconfig', kubeconfig, '--token', token, 'get', '--raw', path], { encoding: 'utf8', stdio: 'pipe' }) };
      } catch (e) {
        return { ok: false, out: String((e as { stderr?: string }).stderr) };
      }
    };
    // kube's default system:discovery binding: a fresh service account may get the report's URL as a non-resource URL.
    expect(kubectl('auth', 'can-i', 'get', '/apis/cost.skiff.io/v1/usage', '--as=system:serviceaccount:team:dev').trim()).toBe('yes');
    const whole = get('/apis/cost.skiff.io/v1/usage');
    expect(whole.ok).toBe(false);
    expect(whole.out).toContain('cannot list resource "pods" in API group "" at the cluster scope');
    expect(get('/apis/cost.skiff.io/v1/namespaces/team/usage').ok).toBe(false);
    // With view in its namespace: that namespace's report, still not the whole one.
    kubectl('-n', 'team', 'create', 'rolebinding', 'dev-view', '--clusterrole=view', '--serviceaccount=team:dev');
    // The binding reaches the authorizer's view through its watch.
    const own = await until('the namespace report allowed', async () => {
      const r = get('/apis/cost.skiff.io/v1/namespaces/team/usage');
      if (!r.ok) throw new Error(r.out);
      return r;
    }, 5_000, 100);
    expect(JSON.parse(own.out)).toMatchObject({ kind: 'UsageReport', namespaces: [{ namespace: 'team' }], overhead: [] });
    expect(get('/apis/cost.skiff.io/v1/usage').ok).toBe(false);
  });

  it('bad input: an unknown namespace, a bad --since, an argument', async () => {
    const missing = await cost('-n', 'nope');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/namespaces "nope" not found/);
    const since = await cost('--since', 'yesterday');
    expect(since.code).toBe(1);
    expect(since.stderr).toContain('invalid since "yesterday": a duration such as 90s, 15m, 1h, 2h30m or 7d');
    const arg = await cost('busy');
    expect(arg.code).toBe(1);
    expect(arg.stderr).toContain('cost takes no arguments');
  });
});
