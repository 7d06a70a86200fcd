// Watch keep-alive (ApiServerOptions.watchKeepAliveMs; a deployed apiserver sets it, because CloudFront
// ends a response that sends no byte for its origin read timeout): a quiet watch sends bare newlines,
// and the clients users have — kubectl get -w, @kubernetes/client-node's Watch, the agent's informer —
// read through them as if nothing were there. Off by default, as kube-apiserver sends none.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import https from 'node:https';
import { spawn } from 'node:child_process';
import * as k8s from '@kubernetes/client-node';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { until } from './support/until.ts';
import { Informer } from '../node-agent/informer.ts';
import { KubeClient } from '../node-agent/kube-client.ts';

const KEEPALIVE_MS = 200;
let c: TestCluster;
let plain: TestCluster;

beforeAll(async () => {
  // The apiserver alone: nothing else writes, so the watches below are quiet until the test writes.
  [c, plain] = await Promise.all([startTestCluster({ controllers: false, watchKeepAliveMs: KEEPALIVE_MS }), startTestCluster({ controllers: false })]);
  for (const x of [c, plain]) expect((await x.kubectl(['create', 'namespace', 'ka'])).code).toBe(0);
});
afterAll(async () => {
  await Promise.all([c?.destroy(), plain?.destroy()]);
});

/** The raw bytes of a watch for `ms`, while `during` runs. */
function rawWatch(x: TestCluster, ms: number, during: () => Promise<unknown> = async () => {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get(new URL('/api/v1/namespaces/ka/configmaps?watch=1', x.url), { ca: x.caCert, headers: { authorization: `Bearer ${x.token}` } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      void during().then(() => setTimeout(() => (req.destroy(), resolve(text)), ms), reject);
    });
    req.on('error', (e) => (e.message === 'socket hang up' ? undefined : reject(e)));
  });
}

describe('watch keep-alive', () => {
  it('a quiet watch sends a newline every keep-alive interval; events come between them as JSON lines', async () => {
    const text = await rawWatch(c, 1000, async () => {
      await new Promise((r) => setTimeout(r, 700));
      expect((await c.kubectl(['create', 'configmap', 'k1', '-n', 'ka'])).code).toBe(0);
    });
    const lines = text.split('\n').slice(0, -1);
    const blank = lines.filter((l) => l === '').length;
    // About 1.7 s of watch at 200 ms: several keep-alives, never fewer than 3 on any machine.
    expect(blank).toBeGreaterThanOrEqual(3);
    const events = lines.filter((l) => l !== '').map((l) => JSON.parse(l));
    expect(events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual(['ADDED k1']);
  });

  it('is off by default: a quiet watch sends nothing', async () => {
    expect(await rawWatch(plain, 800)).toBe('');
  });

  it('kubectl get -w reads through the keep-alives', async () => {
    const p = spawn('kubectl', ['get', 'configmaps', '-n', 'ka', '-w', '--no-headers', '-o', 'name'], { env: { ...process.env, KUBECONFIG: c.kubeconfigPath } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    try {
      await until('the existing configmap listed', async () => out.includes('configmap/k1'), 15_000);
      await new Promise((r) => setTimeout(r, 5 * KEEPALIVE_MS));
      expect((await c.kubectl(['create', 'configmap', 'k2', '-n', 'ka'])).code).toBe(0);
      await until('the new configmap seen', async () => out.includes('configmap/k2'), 15_000);
      expect(p.exitCode).toBeNull();
      expect(err).toBe('');
    } finally {
      p.kill('SIGKILL');
    }
  });

  it('@kubernetes/client-node Watch and the agent informer read through them', async () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(c.kubeconfigPath);
    const seen: string[] = [];
    let ended: unknown = 'no';
    const ctl = await new k8s.Watch(kc).watch('/api/v1/namespaces/ka/configmaps', {}, (type, obj) => seen.push(`${type} ${obj.metadata.name}`), (e) => (ended = e));
    const kube = new KubeClient({ server: c.url, caCert: c.caCert, token: c.token });
    const inf = new Informer(kube, '/api/v1/namespaces/ka/configmaps').start();
    await inf.synced;
    await new Promise((r) => setTimeout(r, 5 * KEEPALIVE_MS));
    expect((await c.kubectl(['create', 'configmap', 'k3', '-n', 'ka'])).code).toBe(0);
    await until('client-node saw it', async () => seen.includes('ADDED k3'), 10_000);
    await until('the informer has it', async () => inf.items.has('ka/k3'), 10_000);
    expect(ended).toBe('no');
    ctl.abort();
    await inf.stop();
    kube.close();
  });
});
