// The agent's HTTPS API (logs, exec) against the real Docker Engine, with containers labelled as the
// agent labels them.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import https from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import WebSocket from 'ws';
import { requireDocker, TEST_IMAGE } from './support/docker.ts';
import { startAgentServer, WS_MAX_MESSAGE_BYTES, type AgentServer } from '../node-agent/server.ts';
import { loadOrCreateServingCert, type ServingCert } from '../node-agent/serving-cert.ts';
import { tokenReviewAuthenticator } from '../node-agent/authn.ts';

const TEST = 'agent.server.test.ts';
const NODE = `srv-test-${process.pid}`;
const TOKEN = 'good-token';

const docker = await requireDocker();
const d = describe.skipIf(!docker);

let server: AgentServer;
let cert: ServingCert;
let dir: string;
let reviews = 0;

async function run(pod: string, container: string, restart: number, cmd: string, opts: { tty?: boolean; uid?: string; stdin?: boolean } = {}) {
  const c = await docker!.createContainer({
    Image: TEST_IMAGE,
    Cmd: ['sh', '-c', cmd],
    Tty: !!opts.tty,
    OpenStdin: !!opts.stdin,
    StdinOnce: !!opts.stdin,
    Labels: {
      'io.skiff.test': TEST,
      'io.skiff.node': NODE,
      'io.skiff.pod.namespace': 'default',
      'io.skiff.pod.name': pod,
      'io.skiff.pod.uid': opts.uid ?? `uid-${pod}`,
      'io.skiff.container': container,
      'io.skiff.restart': String(restart),
    },
    HostConfig: { NetworkMode: 'none' },
  });
  await c.start();
  return c;
}

async function waitExited(c: Docker.Container) {
  await c.wait();
}

function get(path: string, token = TOKEN): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    const req = https.request(
      { host: '127.0.0.1', port: server.port, path, ca: cert.cert, headers: token ? { authorization: `Bearer ${token}` } : {} },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => ok({ status: res.statusCode!, body }));
      },
    );
    req.on('error', fail);
    req.end();
  });
}

interface ExecResult {
  protocol: string;
  stdout: string;
  stderr: string;
  status: any;
}

function exec(path: string, opts: { stdin?: string; protocol?: string; resize?: boolean; token?: string } = {}): Promise<ExecResult> {
  return new Promise((ok, fail) => {
    const ws = new WebSocket(`wss://127.0.0.1:${server.port}${path}`, [opts.protocol ?? 'v5.channel.k8s.io'], {
      ca: cert.cert,
      headers: { authorization: `Bearer ${opts.token ?? TOKEN}` },
    });
    const r: ExecResult = { protocol: '', stdout: '', stderr: '', status: undefined };
    ws.on('open', () => {
      r.protocol = ws.protocol;
      if (opts.resize) ws.send(Buffer.concat([Buffer.from([4]), Buffer.from(JSON.stringify({ Width: 123, Height: 45 }))]));
      if (opts.stdin !== undefined) {
        ws.send(Buffer.concat([Buffer.from([0]), Buffer.from(opts.stdin)]));
        ws.send(Buffer.from([255, 0])); // v5: stdin closed
      }
    });
    ws.on('message', (m: Buffer) => {
      const data = m.subarray(1).toString('utf8');
      if (m[0] === 1) r.stdout += data;
      else if (m[0] === 2) r.stderr += data;
      else if (m[0] === 3) r.status = JSON.parse(data);
    });
    ws.on('unexpected-response', (_req, res) => fail(new Error(`HTTP ${res.statusCode}`)));
    ws.on('error', fail);
    ws.on('close', () => ok(r));
  });
}

d('agent server', () => {
  let app: Docker.Container[] = [];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'agent-srv-'));
    cert = await loadOrCreateServingCert(dir, ['127.0.0.1', 'localhost']);
    // The authenticator is the real TokenReview client, over a reviewer that knows one admin token.
    const authenticate = tokenReviewAuthenticator(async (body: any) => {
      reviews++;
      const ok = body.spec.token === TOKEN;
      return { ...body, status: ok ? { authenticated: true, user: { username: 'system:apiserver', groups: ['system:masters'] } } : { authenticated: false } };
    });
    server = await startAgentServer({ docker: docker!, nodeName: NODE, host: '127.0.0.1', port: 0, tls: cert, authenticate });
    // Restart 0 exited; restart 1 is the current instance.
    const first = await run('p1', 'app', 0, 'echo first-out; echo first-err >&2; exit 1');
    await waitExited(first);
    app = [first, await run('p1', 'app', 1, 'echo line1; echo line2 >&2; echo line3; sleep 3600')];
    await run('p1', 'POD', 0, 'sleep 3600');
    await run('p1', 'side', 0, 'for i in 1 2 3; do echo tick$i; sleep 1; done');
    await run('p1', 'term', 0, 'echo on-a-tty; sleep 3600', { tty: true });
    await run('p1', 'reader', 0, 'read l; echo got:$l; echo bye >&2', { stdin: true });
    // Another node's container of the same pod name is never this node's.
    await docker!.createContainer({ Image: TEST_IMAGE, Cmd: ['true'], Labels: { 'io.skiff.test': TEST, 'io.skiff.node': 'other', 'io.skiff.pod.namespace': 'default', 'io.skiff.pod.name': 'p1', 'io.skiff.pod.uid': 'x', 'io.skiff.container': 'other', 'io.skiff.restart': '0' } });
    await new Promise((r) => setTimeout(r, 1500));
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    const mine = await docker!.listContainers({ all: true, filters: { label: [`io.skiff.test=${TEST}`] } });
    await Promise.all(mine.map((c) => docker!.getContainer(c.Id).remove({ force: true }).catch(() => {})));
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps its serving certificate and fingerprint across restarts', async () => {
    const again = await loadOrCreateServingCert(dir, ['127.0.0.1']);
    expect(again.sha256).toBe(cert.sha256);
    expect(cert.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses requests without a token or with a bad one (401 Status), and caches reviews', async () => {
    for (const t of ['', 'bad-token']) {
      const r = await get('/containerLogs/default/p1/app', t);
      expect(r.status).toBe(401);
      expect(JSON.parse(r.body)).toMatchObject({ kind: 'Status', reason: 'Unauthorized', code: 401 });
    }
    const before = reviews;
    await get('/containerLogs/default/p1/app', 'bad-token');
    await get('/containerLogs/default/p1/app');
    await get('/containerLogs/default/p1/app');
    expect(reviews - before).toBeLessThanOrEqual(1);
    await expect(exec('/exec/default/p1/app?command=true&stdout=1', { token: 'bad-token' }).catch((e) => e.message)).resolves.toBe('HTTP 401');
  });

  it('serves the current logs, stdout and stderr together', async () => {
    const r = await get('/containerLogs/default/p1/app');
    expect(r.status).toBe(200);
    expect(r.body.split('\n').filter(Boolean).sort()).toEqual(['line1', 'line2', 'line3']);
  });

  it('serves the previous instance, tail, since, limitBytes, timestamps and a TTY container', async () => {
    expect((await get('/containerLogs/default/p1/app?previous=true')).body.split('\n').filter(Boolean).sort()).toEqual(['first-err', 'first-out']);
    expect((await get('/containerLogs/default/p1/app?tailLines=1')).body.trim().split('\n')).toHaveLength(1);
    expect((await get('/containerLogs/default/p1/app?sinceSeconds=1')).body).toBe('');
    expect((await get('/containerLogs/default/p1/app?sinceSeconds=3600')).body.trim().split('\n')).toHaveLength(3);
    expect((await get(`/containerLogs/default/p1/app?sinceTime=${new Date(Date.now() + 60_000).toISOString()}`)).body).toBe('');
    expect((await get('/containerLogs/default/p1/app?limitBytes=3')).body).toHaveLength(3);
    expect((await get('/containerLogs/default/p1/app?timestamps=true')).body).toMatch(/^\d{4}-\d\d-\d\dT\S+Z line/m);
    expect((await get('/containerLogs/default/p1/term')).body).toBe('on-a-tty\r\n');
  });

  it('answers unknown containers and bad parameters with a 4xx Status', async () => {
    const none = await get('/containerLogs/default/p1/nope');
    expect(none.status).toBe(404);
    expect(JSON.parse(none.body).message).toBe('container nope is not valid for pod p1');
    const prev = await get('/containerLogs/default/p1/side?previous=1');
    expect(JSON.parse(prev.body).message).toBe('previous terminated container "side" in pod "p1" not found');
    expect((await get('/containerLogs/default/p1/other')).status).toBe(404);
    expect((await get('/containerLogs/default/p1/app?tailLines=x')).status).toBe(400);
    expect((await get('/containerLogs/default/p1')).status).toBe(404);
    expect((await get('/exec/default/p1/app?command=true')).status).toBe(400);
  });

  it('follows logs until the container stops', async () => {
    const t0 = Date.now();
    const r = await get('/containerLogs/default/p1/side?follow=true');
    expect(r.body).toBe('tick1\ntick2\ntick3\n');
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('execs with stdout, stderr and exit codes (v5 and v4)', async () => {
    const q = (cmd: string) => `command=sh&command=-c&command=${encodeURIComponent(cmd)}&stdout=1&stderr=1`;
    const ok = await exec(`/exec/default/p1/app?${q('echo hi; echo oops >&2')}`);
    expect(ok).toMatchObject({ protocol: 'v5.channel.k8s.io', stdout: 'hi\n', stderr: 'oops\n', status: { status: 'Success' } });
    const bad = await exec(`/exec/default/p1/app?${q('exit 7')}`, { protocol: 'v4.channel.k8s.io' });
    expect(bad.protocol).toBe('v4.channel.k8s.io');
    expect(bad.status).toMatchObject({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '7' }] } });
  });

  it('attaches to the container process (stdin, stdout, stderr), ending when it exits', async () => {
    const r = await exec('/attach/default/p1/reader?stdin=1&stdout=1&stderr=1', { stdin: 'hello\n' });
    expect(r).toMatchObject({ stdout: 'got:hello\n', stderr: 'bye\n', status: undefined });
  });

  it('a WebSocket message over 8 MiB closes the connection (1009) instead of sitting whole in the agent', async () => {
    const code = await new Promise<number>((ok, fail) => {
      const ws = new WebSocket(`wss://127.0.0.1:${server.port}/exec/default/p1/app?command=cat&stdin=1&stdout=1`, ['v5.channel.k8s.io'], { ca: cert.cert, headers: { authorization: `Bearer ${TOKEN}` } });
      ws.on('open', () => ws.send(Buffer.concat([Buffer.from([0]), Buffer.alloc(WS_MAX_MESSAGE_BYTES + 1)])));
      ws.on('close', (c) => ok(c));
      ws.on('error', () => {}); // the close code says it
      ws.on('unexpected-response', (_req, res) => fail(new Error(`HTTP ${res.statusCode}`)));
    });
    expect(code).toBe(1009);
    // The agent goes on serving.
    expect((await exec(`/exec/default/p1/app?command=true&stdout=1`)).status).toMatchObject({ status: 'Success' });
  });

  it('execs with stdin until it is closed, and with a TTY', async () => {
    const r = await exec('/exec/default/p1/app?command=sh&command=-c&command=cat%3Becho%20done&stdin=1&stdout=1', { stdin: 'from stdin\n' });
    expect(r.stdout).toBe('from stdin\ndone\n');
    const t = await exec('/exec/default/p1/app?command=sh&command=-c&command=sleep%200.3%3Bstty%20size%3B%5B%20-t%200%20%5D%20%26%26%20echo%20tty&stdin=1&stdout=1&tty=1', { resize: true });
    expect(t.stdout).toBe('45 123\r\ntty\r\n');
    expect(t.status).toEqual({ metadata: {}, status: 'Success' });
  });
});
