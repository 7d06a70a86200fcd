// Probes against real endpoints: loopback HTTP/HTTPS and TCP servers, a closed port, a server too slow
// for the timeout, local processes, and an exec probe run with `docker exec` in a real container.
// ProbeTracker's thresholds, period and initial delay with explicit times.

import { execFile, spawn } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateCerts } from '../lambdas/local/certs.ts';
import { ProbeTracker, runProbe, type ProbeTarget } from '../node-agent/probes.ts';
import { DockerRuntime } from '../node-agent/runtime.ts';
import { requireDocker, TEST_IMAGE } from './support/docker.ts';

/** exec runs a real local process, killed after the timeout. */
function localExec(cmd: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }> {
  return new Promise((resolve) => {
    execFile(cmd[0]!, cmd.slice(1), { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as any).code === 'number' ? (err as any).code : -1) : 0;
      resolve({ exitCode: code, output: stdout + stderr });
    });
  });
}

const target = (ports: ProbeTarget['containerPorts'] = [], exec: ProbeTarget['exec'] = localExec): ProbeTarget => ({
  podIP: '127.0.0.1',
  containerPorts: ports,
  exec,
});

function handler(req: http.IncomingMessage, res: http.ServerResponse) {
  const url = new URL(req.url!, 'http://x');
  if (url.pathname === '/healthz') return res.end('ok');
  if (url.pathname === '/status') {
    res.statusCode = Number(url.searchParams.get('code'));
    if (res.statusCode >= 300 && res.statusCode < 400) res.setHeader('Location', '/healthz');
    return res.end(`status ${res.statusCode}`);
  }
  if (url.pathname === '/headers') {
    const ok = req.headers['x-probe'] === 'yes' && req.headers['user-agent'] === 'custom' && req.headers.host === 'example.test';
    res.statusCode = ok ? 200 : 401;
    return res.end(JSON.stringify(req.headers));
  }
  if (url.pathname === '/ua') {
    res.statusCode = String(req.headers['user-agent']).startsWith('kube-probe/') ? 200 : 400;
    return res.end();
  }
  if (url.pathname === '/slow') {
    setTimeout(() => res.end('late'), 3000).unref();
    return;
  }
  res.statusCode = 404;
  res.end();
}

let httpServer: http.Server;
let httpsServer: https.Server;
let tcpServer: net.Server;
let slowTcp: net.Server;
let httpPort: number;
let httpsPort: number;
let tcpPort: number;
let closedPort: number;

beforeAll(async () => {
  const listen = (s: net.Server) => new Promise<number>((ok) => s.listen(0, '127.0.0.1', () => ok((s.address() as AddressInfo).port)));
  httpServer = http.createServer(handler);
  httpPort = await listen(httpServer);
  // Signed by a CA nobody trusts: the probe must not verify it.
  const certs = await generateCerts(['127.0.0.1']);
  httpsServer = https.createServer({ cert: certs.serverCert, key: certs.serverKey }, handler);
  httpsPort = await listen(httpsServer);
  tcpServer = net.createServer((s) => s.end());
  tcpPort = await listen(tcpServer);
  // A port that was free a moment ago and nobody listens on now.
  slowTcp = net.createServer();
  closedPort = await listen(slowTcp);
  await new Promise((ok) => slowTcp.close(ok));
});

afterAll(async () => {
  httpServer.closeAllConnections();
  httpsServer.closeAllConnections();
  await Promise.all([httpServer, httpsServer, tcpServer].map((s) => new Promise((ok) => s.close(ok))));
});

describe('runProbe httpGet', () => {
  it('succeeds on 2xx and 3xx (redirects not followed), fails on 4xx/5xx with the status', async () => {
    const probe = (path: string) => runProbe({ httpGet: { path, port: httpPort } }, target());
    expect(await probe('/healthz')).toEqual({ ok: true, message: 'ok' });
    expect((await probe('/status?code=204')).ok).toBe(true);
    expect((await probe('/status?code=302')).ok).toBe(true);
    expect((await probe('/status?code=399')).ok).toBe(true);
    expect(await probe('/status?code=400')).toEqual({ ok: false, message: 'HTTP probe failed with statuscode: 400' });
    expect(await probe('/status?code=503')).toEqual({ ok: false, message: 'HTTP probe failed with statuscode: 503' });
    expect((await probe('/nothing')).ok).toBe(false);
  });

  it("sends kubelet's User-Agent, or the probe's headers including Host", async () => {
    expect((await runProbe({ httpGet: { path: '/ua', port: httpPort } }, target())).ok).toBe(true);
    const headers = [{ name: 'X-Probe', value: 'yes' }, { name: 'User-Agent', value: 'custom' }, { name: 'Host', value: 'example.test' }];
    expect((await runProbe({ httpGet: { path: '/headers', port: httpPort, httpHeaders: headers } }, target())).ok).toBe(true);
    expect((await runProbe({ httpGet: { path: '/headers', port: httpPort } }, target())).ok).toBe(false);
  });

  it('resolves named ports from the container and defaults the host to the pod IP', async () => {
    const t = target([{ name: 'web', containerPort: httpPort }]);
    expect((await runProbe({ httpGet: { path: '/healthz', port: 'web' } }, t)).ok).toBe(true);
    expect((await runProbe({ httpGet: { path: '/healthz', port: String(httpPort) } }, t)).ok).toBe(true);
    const r = await runProbe({ httpGet: { path: '/healthz', port: 'metrics' } }, t);
    expect(r.ok).toBe(false);
    expect(r.message).toMatch(/^couldn't find port: metrics/);
    // host given explicitly: a target whose pod IP is wrong still reaches it
    expect((await runProbe({ httpGet: { host: '127.0.0.1', path: '/healthz', port: httpPort } }, { ...t, podIP: '192.0.2.1' })).ok).toBe(true);
  });

  it('speaks HTTPS without verifying the certificate', async () => {
    expect(await runProbe({ httpGet: { scheme: 'HTTPS', path: '/healthz', port: httpsPort } }, target())).toEqual({ ok: true, message: 'ok' });
    expect((await runProbe({ httpGet: { scheme: 'HTTPS', path: '/status?code=500', port: httpsPort } }, target())).ok).toBe(false);
  });

  it('fails on a closed port', async () => {
    const r = await runProbe({ httpGet: { path: '/', port: closedPort } }, target());
    expect(r.ok).toBe(false);
    expect(r.message).toContain('ECONNREFUSED');
  });

  it('gives up after timeoutSeconds (default 1) on a slow server', async () => {
    let t0 = Date.now();
    const r = await runProbe({ httpGet: { path: '/slow', port: httpPort } }, target());
    let took = Date.now() - t0;
    expect(r.ok).toBe(false);
    expect(r.message).toContain('context deadline exceeded');
    expect(took).toBeGreaterThanOrEqual(950);
    expect(took).toBeLessThan(2000);
    t0 = Date.now();
    expect((await runProbe({ timeoutSeconds: 2, httpGet: { path: '/slow', port: httpPort } }, target())).ok).toBe(false);
    took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(1950);
    expect(took).toBeLessThan(2900);
  });
});

describe('runProbe tcpSocket', () => {
  it('succeeds when a connection is accepted, fails on a closed port', async () => {
    expect((await runProbe({ tcpSocket: { port: tcpPort } }, target())).ok).toBe(true);
    expect((await runProbe({ tcpSocket: { port: 'db' } }, target([{ name: 'db', containerPort: tcpPort }]))).ok).toBe(true);
    expect(await runProbe({ tcpSocket: { port: closedPort } }, target())).toEqual({
      ok: false,
      message: `dial tcp 127.0.0.1:${closedPort}: connect: connection refused`,
    });
    expect((await runProbe({ tcpSocket: { port: 70000 } }, target())).message).toBe('invalid port number: 70000');
  });

  it('times out after timeoutSeconds on a listener whose accept queue is full', async () => {
    // A socket that listens with a backlog of 0 and never accepts; once its queue is full the kernel
    // drops further SYNs, so a connect neither succeeds nor is refused: only the timeout ends it.
    const py = spawn('python3', ['-c', "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)"]);
    try {
      const port = Number(await new Promise<string>((ok, fail) => py.stdout.once('data', (b) => ok(String(b))).once('error', fail)));
      const fillers = [0, 1, 2].map(() => net.connect(port, '127.0.0.1').on('error', () => {}));
      await new Promise((r) => setTimeout(r, 200));
      const t0 = Date.now();
      const r = await runProbe({ tcpSocket: { port } }, target());
      const took = Date.now() - t0;
      for (const f of fillers) f.destroy();
      expect(r).toEqual({ ok: false, message: `dial tcp 127.0.0.1:${port}: i/o timeout` });
      expect(took).toBeGreaterThanOrEqual(950);
      expect(took).toBeLessThan(2000);
    } finally {
      py.kill();
    }
  });
});

describe('runProbe exec', () => {
  it('succeeds on exit code 0 and fails otherwise, with the output', async () => {
    expect(await runProbe({ exec: { command: ['sh', '-c', 'echo fine'] } }, target())).toEqual({ ok: true, message: 'fine\n' });
    expect(await runProbe({ exec: { command: ['sh', '-c', 'echo broken >&2; exit 3'] } }, target())).toEqual({ ok: false, message: 'broken' });
    expect(await runProbe({ exec: { command: ['sh', '-c', 'exit 1'] } }, target())).toEqual({ ok: false, message: 'command "sh -c exit 1" exited with 1' });
  });

  it('times out, even when the target does not', async () => {
    const hung: ProbeTarget['exec'] = (cmd) => localExec(cmd, 60_000); // ignores the timeout it is given
    const t0 = Date.now();
    const r = await runProbe({ timeoutSeconds: 1, exec: { command: ['sleep', '3'] } }, target([], hung));
    expect(r).toEqual({ ok: false, message: 'command "sleep 3" timed out' });
    expect(Date.now() - t0).toBeLessThan(1800);
  });

  it('reports gRPC probes and probes without a handler as failures', async () => {
    expect(await runProbe({ grpc: { port: 9000 } }, target())).toEqual({ ok: false, message: "gRPC probes are not supported by Skiff's node agent" });
    expect((await runProbe({}, target())).ok).toBe(false);
  });
});

describe('runProbe exec with docker exec', () => {
  const made: string[] = [];
  afterAll(async () => {
    const docker = await requireDocker();
    for (const id of made) await docker?.getContainer(id).remove({ force: true });
  });

  it('runs the command in the container through the runtime and honours the timeout', async () => {
    const docker = await requireDocker();
    if (!docker) return;
    const c = await docker.createContainer({
      Image: TEST_IMAGE,
      Cmd: ['sh', '-c', 'touch /tmp/ready; sleep 120'],
      Labels: { 'io.skiff.test': 'agent.probes.test.ts' },
    });
    made.push(c.id);
    await c.start();
    const runtime = new DockerRuntime(docker, 'probe-test-node', 'unused');
    const t = target([], (cmd, ms) => runtime.exec(c.id, cmd, ms));
    let ok = false;
    for (let i = 0; i < 50 && !ok; i++) ok = (await runProbe({ exec: { command: ['test', '-f', '/tmp/ready'] } }, t)).ok;
    expect(ok).toBe(true);
    expect(await runProbe({ exec: { command: ['cat', '/etc/hostname'] } }, t)).toEqual({ ok: true, message: `${c.id.slice(0, 12)}\n` });
    expect(await runProbe({ exec: { command: ['sh', '-c', 'echo missing; test -f /tmp/absent'] } }, t)).toEqual({ ok: false, message: 'missing' });
    const t0 = Date.now();
    const slow = await runProbe({ timeoutSeconds: 1, exec: { command: ['sleep', '5'] } }, t);
    expect(slow.ok).toBe(false);
    expect(Date.now() - t0).toBeLessThan(2500);
  });
});

describe('ProbeTracker', () => {
  const T0 = 1_000_000;
  const s = (n: number) => T0 + n * 1000;

  it('starts from kubelet initial results: readiness failure, liveness success, startup unknown', () => {
    expect(new ProbeTracker({}, 'readiness', T0).result).toBe('failure');
    expect(new ProbeTracker({}, 'liveness', T0).result).toBe('success');
    expect(new ProbeTracker({}, 'startup', T0).result).toBeUndefined();
  });

  it('waits initialDelaySeconds, then probes every periodSeconds (default 10)', () => {
    const t = new ProbeTracker({ initialDelaySeconds: 5 }, 'readiness', T0);
    expect(t.due(s(0))).toBe(false);
    expect(t.due(s(4.999))).toBe(false);
    expect(t.due(s(5))).toBe(true);
    expect(t.record(true, s(5))).toBe('success');
    expect(t.due(s(14.9))).toBe(false);
    expect(t.due(s(15))).toBe(true);
    const fast = new ProbeTracker({ periodSeconds: 2 }, 'readiness', T0);
    expect(fast.due(s(0))).toBe(true);
    fast.record(false, s(0));
    expect(fast.due(s(1.5))).toBe(false);
    expect(fast.due(s(2))).toBe(true);
  });

  it('flips only after failureThreshold consecutive failures (default 3)', () => {
    const t = new ProbeTracker({ periodSeconds: 1 }, 'readiness', T0);
    expect(t.record(true, s(0))).toBe('success');
    expect(t.record(false, s(1))).toBeUndefined();
    expect(t.record(false, s(2))).toBeUndefined();
    expect(t.record(true, s(3))).toBeUndefined(); // the run of failures is broken
    expect(t.record(false, s(4))).toBeUndefined();
    expect(t.record(false, s(5))).toBeUndefined();
    expect(t.result).toBe('success');
    expect(t.record(false, s(6))).toBe('failure');
    expect(t.result).toBe('failure');
    expect(t.record(false, s(7))).toBeUndefined(); // already failed: nothing changes
    expect(t.due(s(8))).toBe(true); // readiness keeps probing
    expect(t.record(true, s(8))).toBe('success');
  });

  it('needs successThreshold consecutive successes to become ready', () => {
    const t = new ProbeTracker({ successThreshold: 2, failureThreshold: 1 }, 'readiness', T0);
    expect(t.record(true, s(0))).toBeUndefined();
    expect(t.result).toBe('failure');
    expect(t.record(true, s(10))).toBe('success');
    expect(t.record(false, s(20))).toBe('failure'); // failureThreshold 1
    expect(t.record(true, s(30))).toBeUndefined();
    expect(t.record(true, s(40))).toBe('success');
  });

  it('liveness: fails after the threshold, then holds (no more probes) until the container is replaced', () => {
    const t = new ProbeTracker({ failureThreshold: 2, periodSeconds: 1 }, 'liveness', T0);
    expect(t.record(false, s(0))).toBeUndefined();
    expect(t.result).toBe('success');
    expect(t.record(false, s(1))).toBe('failure');
    expect(t.due(s(100))).toBe(false);
  });

  it('startup: succeeds once and stops; fails after failureThreshold and holds', () => {
    const ok = new ProbeTracker({ periodSeconds: 1 }, 'startup', T0);
    expect(ok.record(false, s(0))).toBeUndefined();
    expect(ok.result).toBeUndefined();
    expect(ok.record(true, s(1))).toBe('success');
    expect(ok.due(s(5))).toBe(false);
    const bad = new ProbeTracker({ periodSeconds: 1, failureThreshold: 3 }, 'startup', T0);
    expect(bad.record(false, s(0))).toBeUndefined();
    expect(bad.record(false, s(1))).toBeUndefined();
    expect(bad.record(false, s(2))).toBe('failure');
    expect(bad.due(s(10))).toBe(false);
  });
});
