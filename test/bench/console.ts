// npm run bench:console — the web console's first paint on a 1,000-pod cluster (issue #17 item 4):
// `skiff up` as its own process (dist/skiff.mjs, --no-agent with BENCH_NODES hollow nodes, which report
// their pods Running and run no containers), BENCH_PODS pods created through the API, then Debian's
// headless chromium (playwright-core) opening /ui/ signed in (the token put in sessionStorage first).
// Measured per load, in a new tab each time: first contentful paint (the browser's paint timing) and the
// time from navigation until the cluster picture holds every pod (BENCH_RUNS loads; median and worst).

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { configFromKubeconfig, KubeClient } from '../../node-agent/kube-client.ts';
import { launchChromium } from '../support/chromium.ts';
import { drive } from './drive.ts';

const NODES = Number(process.env.BENCH_NODES ?? 20);
const PODS = Number(process.env.BENCH_PODS ?? 1000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-console-'));
const up = spawn(process.execPath, ['dist/skiff.mjs', 'up', '--port', '0', '--data-dir', dir, '--no-agent', '--hollow-nodes', String(NODES)], { stdio: ['ignore', 'pipe', 'inherit'] });
const url = await new Promise<string>((resolve, reject) => {
  let out = '';
  up.stdout!.on('data', (d: Buffer) => {
    out += d;
    const m = /Skiff is running at (\S+)/.exec(out);
    if (m) resolve(m[1]!);
  });
  up.on('exit', (code) => reject(new Error(`skiff up exited ${code}: ${out}`)));
});
const stop = () => {
  up.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
};

try {
  const cfg = configFromKubeconfig(join(dir, 'kubeconfig'));
  const kube = new KubeClient(cfg);
  await kube.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench' } }).catch(() => {});
  const created = await drive(PODS, 16, async (i) => {
    await kube.request('POST', '/api/v1/namespaces/bench/pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `p-${i}`, labels: { app: `a${i % 10}` } },
      spec: { containers: [{ name: 'c', image: 'skiff.local/busybox:test' }] },
    });
  });
  console.log(`${PODS} pods created in ${(created.wall / 1000).toFixed(1)} s on ${NODES} hollow nodes`);
  // Until the scheduler has bound them (the picture puts each on its node's box).
  for (let t0 = Date.now(); ; ) {
    const list = await kube.request<{ items: { spec: { nodeName?: string } }[] }>('GET', '/api/v1/namespaces/bench/pods');
    const bound = list.items.filter((p) => p.spec.nodeName).length;
    if (bound === PODS) break;
    if (Date.now() - t0 > 120_000) throw new Error(`only ${bound} of ${PODS} pods bound after 2 minutes`);
    await new Promise((r) => setTimeout(r, 1000));
  }

  const browser = await launchChromium();
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  await context.addInitScript((t: string) => (globalThis as any).sessionStorage.setItem("skiff.token", t), cfg.token);
  const fcp: number[] = [];
  const ready: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const page = await context.newPage();
    await page.goto(`${url}/ui/#/cluster`);
    // Every pod's square drawn, on its node's box.
    await page.waitForFunction((n: number) => (globalThis as any).document.querySelectorAll('.nodes .pod').length >= n, PODS, { timeout: 30_000, polling: 'raf' });
    const t = await page.evaluate(() => ({
      fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN,
      now: performance.now(),
    }));
    fcp.push(t.fcp);
    ready.push(t.now);
    await page.close();
  }
  await browser.close();
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  const ms = (x: number) => `${Math.round(x)} ms`;
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, chromium headless (Debian)`);
  console.log(`first contentful paint: median ${ms(med(fcp))}, worst ${ms(Math.max(...fcp))} (${RUNS} loads)`);
  console.log(`cluster picture with all ${PODS} pods: median ${ms(med(ready))}, worst ${ms(Math.max(...ready))}`);
} finally {
  stop();
}
process.exit(0);
