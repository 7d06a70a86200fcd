// The web console (issue #17 item 4) driven by a real headless browser: Debian's chromium through
// playwright-core, against a local cluster whose node agent runs a pod on the real Docker Engine. It signs
// in (a wrong token first: a clear error), sees the pod in the cluster picture, opens it, sees a label
// added by kubectl arrive through the watch without a reload, reads the container's logs, opens the pod's
// history, checks the page with axe-core, and keeps screenshots in test-artifacts/ (git-ignored). The Cost
// view after a scripted load: the figures the API answered, another window, and a namespace viewer's part.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { gzipSync } from 'node:zlib';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import type Docker from 'dockerode';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from './support/chromium.ts';
import { requireDocker, TEST_IMAGE } from './support/docker.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { until } from './support/until.ts';

const docker = await requireDocker();
const NODE = `ui-node-${process.pid}`;
const NETWORK = `skiff-ui-${process.pid}`;
const ARTIFACTS = resolve('test-artifacts');

describe.skipIf(!docker)('web console in headless chromium', () => {
  let c: TestCluster;
  let browser: Browser;
  let page: Page;
  beforeAll(async () => {
    // Watches end after 2 s (kube's --min-request-timeout, short): the page must resume them.
    c = await startTestCluster({ agents: 1, requireAgents: true, maxWatchSeconds: 2, agentOptions: { nodeName: NODE, network: NETWORK } });
    browser = await launchChromium();
    // The local apiserver's certificate is signed by the cluster's own CA, which this profile does not trust.
    page = await (await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } })).newPage();
    mkdirSync(ARTIFACTS, { recursive: true });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    for (const a of c?.agents ?? []) await a.close({ removePods: true });
    await c?.destroy();
    await (docker as Docker).getNetwork(NETWORK).remove().catch(() => {});
  });

  it('serves its files without a token, small (<= 300 KB gzipped), and nothing else without one', async () => {
    let gz = 0;
    for (const f of ['/ui/', '/ui/app.js', '/ui/app.css']) {
      const r = await page.request.get(c.url + f);
      expect(r.status(), f).toBe(200);
      gz += gzipSync(await r.body()).length;
    }
    console.log(`console: ${(gz / 1024).toFixed(1)} KB gzipped`);
    expect(gz).toBeLessThan(300 * 1024);
    expect((await page.request.get(c.url + '/api/v1/pods')).status()).toBe(401);
    const bare = await page.request.get(c.url + '/ui', { maxRedirects: 0 });
    expect([bare.status(), bare.headers()['location']]).toEqual([301, '/ui/']);
    expect((await page.request.post(c.url + '/ui/', { data: 'x' })).status()).toBe(405);
    // Any other path under /ui/ is the page (its own routes are in the fragment).
    expect(await (await page.request.get(c.url + '/ui/nodes')).text()).toContain('/ui/app.js');

    // `skiff ui` prints where to go and the token, never the token in the URL.
    const out = execFileSync(process.execPath, ['dist/skiff.mjs', 'ui', '--kubeconfig', c.kubeconfigPath], { encoding: 'utf8' });
    const urlLine = out.split('\n').find((l) => l.startsWith('Console: '))!;
    expect(urlLine).toBe(`Console: ${c.url}/ui/`);
    expect(out.split('\n')).toContain(c.token);
  });

  it('is served by the built `skiff up` from dist/console/ (what users run; this file runs the source)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-ui-dist-'));
    const up = spawn(process.execPath, ['dist/skiff.mjs', 'up', '--port', '0', '--data-dir', dir, '--no-agent'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      let out = '';
      up.stdout!.on('data', (d: Buffer) => (out += d));
      const url = await until('skiff up running', async () => /Skiff is running at (\S+)/.exec(out)?.[1], 30_000, 100);
      expect(out).toContain(`Web console: ${url}/ui/`);
      const r = await page.request.get(`${url}/ui/app.js`);
      expect(r.status()).toBe(200);
      expect(await r.text()).toBe(readFileSync('dist/console/app.js', 'utf8'));
    } finally {
      up.kill('SIGTERM');
      await new Promise((r) => up.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('signs in, shows a pod live, its logs and history', async () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web', labels: { app: 'web' } },
      spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: TEST_IMAGE, command: ['sh', '-c', 'echo hello-from-console; sleep 3600'] }] },
    };
    expect((await c.kubectl(['apply', '-f', '-'], JSON.stringify(pod))).code).toBe(0);
    await until('web Running', async () => (await c.kubectl(['get', 'pod', 'web', '-o', 'jsonpath={.status.phase}'])).stdout === 'Running', 60_000, 250);

    await page.goto(c.url + '/ui/');
    // A wrong token: a clear error, and still the sign-in form.
    await page.getByLabel('Bearer token').fill('not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByTestId('signin-error').textContent()).toMatch(/not accepted \(401 Unauthorized\)/);

    await page.getByLabel('Bearer token').fill(c.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    // The cluster picture: the node's box holds the pod, coloured (and named) by its phase.
    const square = page.getByRole('link', { name: 'default/web: Running' });
    await square.waitFor({ timeout: 15_000 });
    expect(await page.getByRole('navigation', { name: 'Views' }).getByRole('link', { name: 'Cluster' }).getAttribute('aria-current')).toBe('page');
    expect(await page.getByRole('list', { name: `Pods on ${NODE}` }).getByRole('link').count()).toBeGreaterThanOrEqual(1);
    await page.screenshot({ path: `${ARTIFACTS}/ui-cluster.png`, fullPage: true });

    // Accessibility: axe-core finds no violations in the cluster view.
    const axe = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
    await page.evaluate(axe); // through the DevTools protocol: the page's CSP allows no inline script
    const violations = await page.evaluate(async () => (await (globalThis as any).axe.run()).violations.map((v: any) => `${v.id}: ${v.help} (${v.nodes.map((n: any) => n.target.join(" ")).join(", ")})`));
    expect(violations).toEqual([]);

    // Keyboard: the pod's square is reachable and opens with Enter.
    await square.focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByTestId('phase').textContent(), { timeout: 10_000 }).toBe('Running');
    expect(await page.getByTestId('labels').textContent()).not.toContain('tier=frontend');

    // A change made elsewhere arrives through the watch: no reload (the marker survives). The label is
    // added after the first watch has ended: the page resumed it from its resourceVersion, listing once.
    const podReads: string[] = [];
    page.on('request', (r) => r.url().includes('/namespaces/default/pods?fieldSelector=metadata.name%3Dweb') && podReads.push(r.url()));
    await page.evaluate(() => ((globalThis as any).__noReload = true));
    await until('a watch of the pod resumed', async () => podReads.filter((u) => /watch=1.*resourceVersion=\d+/.test(u)).length >= 2, 10_000, 100);
    expect((await c.kubectl(['label', 'pod', 'web', 'tier=frontend'])).code).toBe(0);
    await expect.poll(() => page.getByTestId('labels').textContent(), { timeout: 10_000 }).toContain('tier=frontend');
    expect(await page.evaluate(() => (globalThis as any).__noReload)).toBe(true);
    expect(podReads.filter((u) => !u.includes('watch=1'))).toEqual([]); // no list again: resumed watches only

    // The container's logs (pods/log through the agent).
    await page.getByRole('link', { name: 'Logs of main' }).click();
    await expect.poll(() => page.getByRole('log', { name: 'Logs of main' }).textContent(), { timeout: 15_000 }).toContain('hello-from-console');
    // ... beside the pod's details, still watched (a browser's 6 HTTP/1.1 connections are not used up).
    expect(await page.getByTestId('phase').textContent()).toBe('Running');
    await expect.poll(() => page.getByRole('table', { name: /Events of this pod/ }).textContent(), { timeout: 10_000 }).toMatch(/Scheduled|Pulled|Started/);

    // Its history: the label change, by the admin, with its diff.
    await page.getByRole('button', { name: 'Refresh' }).click();
    const change = page.locator('section[aria-labelledby="history-h"] li', { hasText: 'update by skiff-admin' }).first();
    await change.waitFor({ timeout: 10_000 });
    await change.locator('summary').click();
    await expect.poll(() => change.locator('pre').textContent()).toContain('+    tier: frontend');
    await page.screenshot({ path: `${ARTIFACTS}/ui-pod.png`, fullPage: true });

    // Workloads, nodes, services and events views render with the signed-in user's reads.
    for (const [view, heading] of [['workloads', 'Workloads'], ['nodes', 'Nodes'], ['services', 'Services and endpoints'], ['events', 'Events']]) {
      await page.goto(`${c.url}/ui/#/${view}`);
      await page.getByRole('heading', { name: heading, level: 1 }).waitFor();
      expect(await page.getByRole('alert').count(), view).toBe(0);
    }
    await expect.poll(() => page.getByRole('table', { name: /Events/ }).textContent(), { timeout: 10_000 }).toMatch(/Pod\/web/);
    // The workloads view's seven lists (more than its watch slots: the rest are listed again every 3 s).
    await page.goto(`${c.url}/ui/#/workloads`);
    await expect.poll(() => page.getByRole('table', { name: /^Pods/ }).textContent(), { timeout: 10_000 }).toContain('web');
    await expect.poll(() => page.getByRole('table', { name: /^Deployments/ }).textContent(), { timeout: 10_000 }).toContain('None.');

    // A Deployment's page: its pods, live, and its history (created, then scaled by the admin).
    expect((await c.kubectl(['create', 'deployment', 'api', `--image=${TEST_IMAGE}`, '--', 'sleep', '3600'])).code).toBe(0);
    expect((await c.kubectl(['scale', 'deployment', 'api', '--replicas=2'])).code).toBe(0);
    await page.goto(`${c.url}/ui/#/workloads`);
    await page.getByRole('link', { name: 'api', exact: true }).click();
    await expect.poll(async () => (await page.getByRole('table', { name: /^Its pods/ }).textContent())?.match(/api-[a-z0-9]+-[a-z0-9]+/g)?.length ?? 0, { timeout: 20_000 }).toBe(2);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.locator('section[aria-labelledby="history-h"] li', { hasText: /update \(scale\) by skiff-admin/ }).first().waitFor({ timeout: 10_000 });
    await page.screenshot({ path: `${ARTIFACTS}/ui-deployment.png`, fullPage: true });
    console.log(`screenshots: ${ARTIFACTS}/ui-cluster.png, ${ARTIFACTS}/ui-pod.png, ${ARTIFACTS}/ui-deployment.png`);

    // Services and endpoints: a Service over the pod, its endpoint the pod's IP (arriving through the watch).
    const podIP = (await c.kubectl(['get', 'pod', 'web', '-o', 'jsonpath={.status.podIP}'])).stdout;
    expect(podIP).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    await page.goto(`${c.url}/ui/#/services`);
    await page.getByRole('heading', { name: 'Services and endpoints', level: 1 }).waitFor();
    expect((await c.kubectl(['expose', 'pod', 'web', '--port=80', '--target-port=8080', '--name=web-svc'])).code).toBe(0);
    await expect.poll(() => page.getByRole('table', { name: /^Services/ }).textContent(), { timeout: 10_000 }).toContain('web-svc');
    await expect.poll(() => page.getByRole('table', { name: /^Endpoints/ }).getByRole('row', { name: /web-svc/ }).textContent(), { timeout: 15_000 }).toContain(`${podIP}:8080`);

    // Nodes with usage: once the agent has two samples (10 s apart) its NodeMetrics fill the CPU column.
    await page.goto(`${c.url}/ui/#/nodes`);
    const nodeRow = page.getByRole('table', { name: /^Nodes/ }).getByRole('row', { name: new RegExp(NODE) });
    await expect.poll(async () => (await nodeRow.getByRole('cell').nth(2).textContent()) ?? '', { timeout: 40_000, interval: 1000 }).toMatch(/^\d+(\.\d+)?m?$/);
    expect(await nodeRow.getByRole('cell').nth(4).textContent()).toMatch(/^\d+Mi$/);

    // A token revoked mid-session (here: the tab's token replaced by a wrong one) returns to sign-in with the reason.
    await page.evaluate(() => (globalThis as any).sessionStorage.setItem('skiff.token', 'revoked'));
    await page.reload();
    await expect.poll(() => page.getByTestId('signin-error').textContent(), { timeout: 10_000 }).toMatch(/not accepted/);
  }, 180_000);

  it('shows cost per namespace: a loaded namespace over an idle one, the API total, another window, and what a namespace viewer may see', async () => {
    // A scripted load in cost-busy (20 ConfigMaps created, then deleted); cost-idle read once.
    for (const ns of ['cost-busy', 'cost-idle']) expect((await c.kubectl(['create', 'namespace', ns])).code).toBe(0);
    const maps = { apiVersion: 'v1', kind: 'List', items: Array.from({ length: 20 }, (_, i) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `load-${i}` }, data: { n: String(i) } })) };
    expect((await c.kubectl(['apply', '-n', 'cost-busy', '-f', '-'], JSON.stringify(maps))).code).toBe(0);
    expect((await c.kubectl(['delete', 'configmap', '-n', 'cost-busy', ...maps.items.map((m) => m.metadata.name)])).code).toBe(0);
    expect((await c.kubectl(['get', 'pods', '-n', 'cost-idle'])).code).toBe(0);

    const signInAs = async (t: string, hash: string) => {
      await page.goto(`${c.url}/ui/`);
      await page.evaluate((t) => (globalThis as any).sessionStorage.setItem('skiff.token', t), t);
      await page.evaluate(() => (globalThis as any).sessionStorage.removeItem('skiff.namespace'));
      await page.goto(`${c.url}/ui/${hash}`);
      await page.reload();
    };
    const report = (since: string) => page.waitForResponse((r) => r.url().endsWith(`/apis/cost.skiff.io/v1/usage?since=${since}`) && r.status() === 200);
    const cells = async (row: ReturnType<Page['locator']>) => (await row.locator('td').allTextContents()).map((t) => Number(t.replace(/[$,]/g, '')));
    /** A line's columns as the API has them: requests, reconciles, DynamoDB reads and writes, then dollars in the window and a month. */
    const line = (l: any) => [l.apiRequests, l.reconciles, l.dynamoRequests.read + l.dynamoRequests.list, l.dynamoRequests.write + l.dynamoRequests.history, l.usd.total, l.monthlyUsd] as number[];
    /** What the page shows against the API's exact figures: counts to 0.1, dollars to three significant digits (cents from $1). */
    const expectShown = (got: number[], want: number[]) =>
      want.forEach((w, i) => expect(Math.abs(got[i]! - w) <= (i < 4 ? 0.05 : Math.max(w >= 1 ? 0.005 : 0, w * 0.005)) + 1e-12, `column ${i}: ${got[i]} shown for ${w}`).toBe(true));
    const cost = page.getByTestId('cost');

    const first = report('1h');
    await signInAs(c.token, '#/cost/1h');
    const shown1h = await (await first).json();
    await expect.poll(() => cost.getAttribute('data-loaded'), { timeout: 10_000 }).toBe('true');
    expect(shown1h).toMatchObject({ kind: 'UsageReport', apiVersion: 'cost.skiff.io/v1' });
    expect(await page.getByRole('heading', { name: 'Cost per namespace', level: 1 }).count()).toBe(1);
    const busy = cost.locator('tr[data-namespace="cost-busy"]');
    const idle = cost.locator('tr[data-namespace="cost-idle"]');
    const [busyCells, idleCells] = [await cells(busy), await cells(idle)];
    expect(busyCells[0]).toBeGreaterThanOrEqual(40); // the 20 creates and 20 deletes at least
    expect(busyCells[4]).toBeGreaterThan(0);
    expect(busyCells[4]).toBeGreaterThan(idleCells[4]!);
    expect(busyCells[5]).toBeGreaterThan(idleCells[5]!);
    const api = (r: any, ns: string) => r.namespaces.find((n: any) => n.namespace === ns);
    expectShown(busyCells, line(api(shown1h, 'cost-busy')));
    expectShown(idleCells, line(api(shown1h, 'cost-idle')));
    // The namespace links to its page; requests no namespace caused are their own line.
    expect(await busy.getByRole('link', { name: 'cost-busy' }).getAttribute('href')).toBe('#/o/core/v1/namespaces/_/cost-busy');
    if (api(shown1h, '')) expect(await cost.locator('tr[data-namespace=""] th').textContent()).toBe('(cluster-scoped)');
    // The total row is the API's total (namespaces and overhead), and the rows are the API's, in its order.
    expectShown(await cells(cost.getByTestId('cost-total')), line(shown1h.total));
    expect(await cost.locator('tr[data-namespace]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-namespace')))).toEqual(shown1h.namespaces.map((n: any) => n.namespace));
    expect(await cost.locator('tr[data-overhead]').count()).toBe(shown1h.overhead.length);
    expect(await cost.textContent()).toContain(`${shown1h.pricing.region} prices checked ${shown1h.pricing.checked}`);
    // Fetched again by the test: cost-busy has had nothing since, so the API still says what the page shows.
    const again = await (await page.request.get(`${c.url}/apis/cost.skiff.io/v1/usage?since=1h`, { headers: { authorization: `Bearer ${c.token}` } })).json();
    expect(api(again, 'cost-busy').apiRequests).toBe(busyCells[0]);
    expect(again.total.apiRequests).toBeGreaterThanOrEqual(shown1h.total.apiRequests);

    // Accessibility of the view, then a screenshot.
    const axe = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
    const violations = async () => {
      if (!(await page.evaluate(() => !!(globalThis as any).axe))) await page.evaluate(axe);
      return page.evaluate(async () => (await (globalThis as any).axe.run()).violations.map((v: any) => `${v.id}: ${v.help} (${v.nodes.map((n: any) => n.target.join(' ')).join(', ')})`));
    };
    await page.locator('summary', { hasText: 'By service' }).click(); // the dollars by service, opened for the check and the picture
    expect(await violations()).toEqual([]);
    await page.screenshot({ path: `${ARTIFACTS}/ui-cost.png`, fullPage: true });
    console.log(`screenshot: ${ARTIFACTS}/ui-cost.png`);

    // Another window, by keyboard (the radio group's arrow keys): fetched again for it, and shown.
    const day = report('1d');
    await page.getByRole('radio', { name: 'Last hour' }).focus();
    await page.keyboard.press('ArrowRight');
    const shown1d = await (await day).json();
    expect(await page.getByRole('radio', { name: 'Last day' }).isChecked()).toBe(true);
    expect(page.url()).toMatch(/#\/cost\/1d$/);
    await expect.poll(() => cost.getAttribute('data-since')).toBe('1d');
    await expect.poll(() => cost.getAttribute('data-loaded')).toBe('true');
    expectShown(await cells(cost.getByTestId('cost-total')), line(shown1d.total));
    expect(await page.getByRole('alert').count()).toBe(0);

    // A viewer of cost-busy who may list namespaces but not read the cluster-wide report: the namespaces
    // they may get pods in, and why only those. One who may not list namespaces names one.
    expect((await c.kubectl(['create', 'serviceaccount', 'viewer', '-n', 'cost-busy'])).code).toBe(0);
    expect((await c.kubectl(['create', 'serviceaccount', 'narrow', '-n', 'cost-busy'])).code).toBe(0);
    expect((await c.kubectl(['create', 'rolebinding', 'cost-view', '--clusterrole=view', '--serviceaccount=cost-busy:viewer', '--serviceaccount=cost-busy:narrow', '-n', 'cost-busy'])).code).toBe(0);
    expect((await c.kubectl(['create', 'clusterrole', 'namespace-lister', '--verb=list', '--resource=namespaces'])).code).toBe(0);
    expect((await c.kubectl(['create', 'clusterrolebinding', 'cost-viewer-lists', '--clusterrole=namespace-lister', '--serviceaccount=cost-busy:viewer'])).code).toBe(0);
    await until('the grants in effect', async () => (await c.kubectl(['auth', 'can-i', 'list', 'namespaces', '--as=system:serviceaccount:cost-busy:viewer'])).stdout.trim() === 'yes' && (await c.kubectl(['auth', 'can-i', 'get', 'pods', '-n', 'cost-busy', '--as=system:serviceaccount:cost-busy:narrow'])).stdout.trim() === 'yes', 10_000, 200);
    // The cluster-wide report is for who may list pods in all namespaces: with kube's default bindings
    // (system:discovery lets every authenticated user get /apis/*) a namespace viewer is refused it.
    expect((await c.kubectl(['auth', 'can-i', 'get', '/apis/cost.skiff.io/v1/usage', '--as=system:serviceaccount:cost-busy:viewer'])).stdout.trim()).toBe('yes');
    expect((await c.kubectl(['auth', 'can-i', 'list', 'pods', '-A', '--as=system:serviceaccount:cost-busy:viewer'])).stdout.trim()).toBe('no');
    const viewer = (await c.kubectl(['create', 'token', 'viewer', '-n', 'cost-busy'])).stdout.trim();
    await signInAs(viewer, '#/cost/1h');
    await expect.poll(() => page.getByTestId('cost-partial').textContent(), { timeout: 10_000 }).toMatch(/may not read the cluster-wide report \(.*forbidden.*\): shown are the namespaces you may get pods in \(1\)/);
    await expect.poll(() => cost.getAttribute('data-loaded')).toBe('true');
    expect(await cost.locator('tr[data-namespace]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-namespace')))).toEqual(['cost-busy']);
    expect(await cost.getByTestId('cost-total').locator('th').textContent()).toBe('Total of these namespaces');
    expect(await cells(cost.getByTestId('cost-total'))).toEqual(await cells(busy));
    expect(await violations()).toEqual([]);

    const narrow = (await c.kubectl(['create', 'token', 'narrow', '-n', 'cost-busy'])).stdout.trim();
    await signInAs(narrow, '#/cost/1h');
    await expect.poll(() => page.getByTestId('cost-partial').textContent(), { timeout: 10_000 }).toMatch(/nor list namespaces/);
    // A namespace it may not see: the Status message; then its own.
    await page.getByLabel('Namespace to show').fill('cost-idle');
    await page.getByRole('button', { name: 'Show its cost' }).click();
    await expect.poll(() => page.getByRole('alert').textContent(), { timeout: 10_000 }).toContain('User "system:serviceaccount:cost-busy:narrow" cannot get resource "pods" in API group "" in the namespace "cost-idle"');
    await page.getByLabel('Namespace to show').fill('cost-busy');
    await page.getByRole('button', { name: 'Show its cost' }).click();
    await expect.poll(() => cost.locator('tr[data-namespace]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-namespace'))), { timeout: 10_000 }).toEqual(['cost-busy']);
    expect(await page.getByRole('heading', { name: 'Cost of cost-busy', level: 1 }).count()).toBe(1);
    expect(await page.getByRole('alert').count()).toBe(0);
  }, 120_000);
});
