// kubectl logs and kubectl exec, for real: kubectl → apiserver (pods/log streamed, pods/exec spliced as
// an HTTP upgrade) → the node agent's HTTPS API (pinned certificate, TokenReview-checked token) → Docker.
// The agent core is not started here: the Node object points at an agent server, and the test runs the
// pod's containers itself with the labels the agent puts on them.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import https from 'node:https';
import { execFile } from 'node:child_process';
import type Docker from 'dockerode';
import WebSocket from 'ws';
import { requireDocker, TEST_IMAGE } from './support/docker.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { startServedNode } from './support/agent-server.ts';
import { runLabels } from '../node-agent/runtime.ts';
import { findResource } from '../lambdas/machinery/resources.ts';

const TEST = 'kubectl.logs-exec.test.ts';
const NODE = `logs-exec-${process.pid}`;

const docker = await requireDocker();
const d = describe.skipIf(!docker);

let c: TestCluster;
let served: Awaited<ReturnType<typeof startServedNode>>;
let agentSha = '';

/** A request to the apiserver as the admin. */
function api(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    const u = new URL(path, c.url);
    const req = https.request(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method, ca: c.caCert, headers: { authorization: `Bearer ${token ?? c.token}`, 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (x) => (text += x));
        res.on('end', () => ok({ status: res.statusCode!, body: text }));
      },
    );
    req.on('error', fail);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

async function run(pod: { metadata: { name: string; uid: string } }, container: string, restart: number, cmd: string, stdin = false) {
  const ctr = await docker!.createContainer({
    Image: TEST_IMAGE,
    Cmd: ['sh', '-c', cmd],
    OpenStdin: stdin,
    StdinOnce: stdin,
    Labels: { 'io.skiff.test': TEST, ...runLabels(NODE, { namespace: 'default', name: pod.metadata.name, uid: pod.metadata.uid }, container, 'app', restart) },
    HostConfig: { NetworkMode: 'none' },
  });
  await ctr.start();
  return ctr;
}

function sh(cmd: string, input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    const p = execFile('sh', ['-c', cmd], { env: { ...process.env, KUBECONFIG: c.kubeconfigPath }, timeout: 30_000 }, (err, stdout, stderr) =>
      ok({ code: err ? ((err as any).code ?? 1) : 0, stdout, stderr }),
    );
    if (input !== undefined) p.stdin!.end(input);
  });
}

const lines = (s: string) => s.split('\n').filter(Boolean).sort();

d('kubectl logs and exec through the apiserver to the node agent', () => {
  beforeAll(async () => {
    c = await startTestCluster();
    served = await startServedNode(c, docker!, NODE);
    agentSha = served.sha256;
    const pods = findResource('', 'v1', 'pods')!;
    const pod = (name: string, containers: string[], nodeName?: string, stdin = false) =>
      c.api.registry.create(pods, 'default', {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: 'default' },
        spec: { ...(nodeName ? { nodeName } : {}), containers: containers.map((n) => ({ name: n, image: TEST_IMAGE, ...(stdin ? { stdin: true, stdinOnce: true } : {}) })), tolerations: [{ operator: 'Exists' }] },
      }) as Promise<any>;
    const web = await pod('web', ['app', 'side'], NODE);
    const solo = await pod('solo', ['main'], NODE);
    await pod('unbound', ['main'], undefined).catch(() => undefined);
    const first = await run(web, 'app', 0, 'echo first-out; echo first-err >&2; exit 1');
    await first.wait();
    await run(web, 'app', 1, 'echo line1; echo line2 >&2; echo line3; sleep 3600');
    await run(web, 'side', 0, 'i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.3; done');
    await run(solo, 'main', 0, 'echo solo-started; sleep 3600');
    const att = await pod('att', ['main'], NODE, true);
    await run(att, 'main', 0, 'read l; echo got:$l', true);
    await new Promise((r) => setTimeout(r, 1500));
  }, 60_000);

  afterAll(async () => {
    await served?.close();
    await c?.destroy();
    const mine = await docker!.listContainers({ all: true, filters: { label: [`io.skiff.test=${TEST}`] } });
    await Promise.all(mine.map((x) => docker!.getContainer(x.Id).remove({ force: true }).catch(() => {})));
  });

  it('serves TokenReview: authenticated admins, and not unknown tokens; listed in discovery', async () => {
    const good = JSON.parse((await api('POST', '/apis/authentication.k8s.io/v1/tokenreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: c.token } })).body);
    expect(good.status).toMatchObject({ authenticated: true, user: { username: 'skiff-admin' } });
    expect(good.status.user.groups).toContain('system:masters');
    const bad = JSON.parse((await api('POST', '/apis/authentication.k8s.io/v1/tokenreviews', { spec: { token: 'nope' } })).body);
    expect(bad.status.authenticated).toBeUndefined();
    expect((await api('POST', '/apis/authentication.k8s.io/v1/tokenreviews', { spec: {} })).status).toBe(422);
    const r = await c.kubectl(['api-resources', '--api-group=authentication.k8s.io', '-o', 'name']);
    expect(r.stdout.trim().split('\n')).toEqual(['selfsubjectreviews.authentication.k8s.io', 'tokenreviews.authentication.k8s.io']);
    expect((await c.kubectl(['get', 'tokenreviews'])).code).not.toBe(0);
  });

  it('kubectl logs: current, -c, --previous, --tail, --since', async () => {
    expect(lines((await c.kubectl(['logs', 'web', '-c', 'app'])).stdout)).toEqual(['line1', 'line2', 'line3']);
    expect(lines((await c.kubectl(['logs', 'web', '-c', 'app', '--previous'])).stdout)).toEqual(['first-err', 'first-out']);
    expect((await c.kubectl(['logs', 'web', '-c', 'app', '--tail=1'])).stdout.trim().split('\n')).toHaveLength(1);
    expect((await c.kubectl(['logs', 'web', '-c', 'app', '--since=1s'])).stdout).toBe('');
    expect((await c.kubectl(['logs', 'web', '-c', 'app', '--since=1h'])).stdout.trim().split('\n')).toHaveLength(3);
    expect((await c.kubectl(['logs', 'solo'])).stdout).toBe('solo-started\n');
    expect((await c.kubectl(['logs', 'pod/solo', '--timestamps'])).stdout).toMatch(/^\d{4}-\d\d-\d\dT\S+ solo-started\n$/);
  });

  it('kubectl logs errors: unknown container, no previous, unbound pod, no container named', async () => {
    const none = await c.kubectl(['logs', 'web', '-c', 'nope']);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain('container nope is not valid for pod web');
    const prev = await c.kubectl(['logs', 'solo', '--previous']);
    expect(prev.code).not.toBe(0);
    expect(prev.stderr).toContain('previous terminated container "main" in pod "solo" not found');
    const unbound = await api('GET', '/api/v1/namespaces/default/pods/unbound/log');
    expect(unbound.status).toBe(400);
    expect(JSON.parse(unbound.body).message).toBe('pod unbound does not have a host assigned');
    const which = await api('GET', '/api/v1/namespaces/default/pods/web/log');
    expect(which.status).toBe(400);
    expect(JSON.parse(which.body).message).toBe('a container name must be specified for pod web, choose one of: [app side]');
    expect((await api('GET', '/api/v1/namespaces/default/pods/web/log?container=app&tailLines=x')).status).toBe(400);
  });

  it('kubectl logs -f streams until stopped', async () => {
    const p = c.kubectlSpawn(['logs', '-f', 'web', '-c', 'side', '--tail=1']);
    let out = '';
    const seen = await new Promise<string>((ok) => {
      const t = setTimeout(() => ok(out), 15_000);
      p.stdout!.on('data', (x) => {
        out += x;
        // Lines keep coming after the call began: the stream is live.
        if (out.split('\n').filter(Boolean).length >= 4) {
          clearTimeout(t);
          ok(out);
        }
      });
    });
    p.kill();
    const ticks = seen.split('\n').filter(Boolean).map((l) => Number(l.replace('tick', '')));
    expect(ticks.length).toBeGreaterThanOrEqual(4);
    for (let i = 1; i < ticks.length; i++) expect(ticks[i]).toBe(ticks[i - 1]! + 1);
  });

  it('kubectl exec: stdout, stderr and exit codes', async () => {
    const r = await c.kubectl(['exec', 'solo', '--', 'sh', '-c', 'echo out; echo err >&2']);
    expect(r).toMatchObject({ code: 0, stdout: 'out\n' });
    expect(r.stderr).toContain('err\n');
    const fail = await c.kubectl(['exec', 'web', '-c', 'app', '--', 'sh', '-c', 'echo partial; exit 3']);
    expect(fail.code).toBe(3);
    expect(fail.stdout).toBe('partial\n');
    const missing = await c.kubectl(['exec', 'web', '-c', 'nope', '--', 'true']);
    expect(missing.code).not.toBe(0);
  });

  it('kubectl exec -i with stdin piped', async () => {
    const r = await c.kubectl(['exec', '-i', 'solo', '--', 'sh', '-c', 'tr a-z A-Z; echo end'], 'hello from stdin\n');
    expect(r).toMatchObject({ code: 0, stdout: 'HELLO FROM STDIN\nend\n' });
  });

  it('kubectl attach -i joins the container process', async () => {
    const r = await c.kubectl(['attach', '-i', 'att'], 'through attach\n');
    expect(r.stdout).toContain('got:through attach\n');
    expect(r.code).toBe(0);
  });

  it('kubectl exec -it in a pseudo-terminal', async () => {
    const r = await sh(`script -qec "kubectl exec -it solo -- sh -c '[ -t 0 ] && echo is-a-tty; exit 4'" /dev/null`);
    expect(r.stdout).toContain('is-a-tty');
    expect(r.code).toBe(4);
  });

  it('refuses exec upgrades without a valid user token, and pins the agent certificate', async () => {
    const status = await new Promise<number>((ok, fail) => {
      const u = new URL('/api/v1/namespaces/default/pods/solo/exec?command=true&stdout=true', c.url.replace('https', 'wss'));
      const ws = new WebSocket(u, ['v5.channel.k8s.io'], { ca: c.caCert, headers: { authorization: 'Bearer wrong' } });
      ws.on('unexpected-response', (_q, res) => ok(res.statusCode!));
      ws.on('open', () => fail(new Error('upgraded')));
      ws.on('error', fail);
    });
    expect(status).toBe(401);
    // A node whose pin does not match its agent is not talked to.
    const nodes = findResource('', 'v1', 'nodes')!;
    await c.api.registry.guaranteedUpdate(nodes, undefined, NODE, undefined, {}, (n: any) => {
      n.metadata.annotations['skiff.io/kubelet-serving-cert-sha256'] = '0'.repeat(64);
      return n;
    });
    try {
      const r = await c.kubectl(['logs', 'solo']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('not the pinned one');
    } finally {
      await c.api.registry.guaranteedUpdate(nodes, undefined, NODE, undefined, {}, (n: any) => {
        n.metadata.annotations['skiff.io/kubelet-serving-cert-sha256'] = agentSha;
        return n;
      });
    }
  });
});
