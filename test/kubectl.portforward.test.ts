// kubectl port-forward, for real: kubectl → apiserver (pods/portforward spliced as an HTTP upgrade) → the
// node agent's HTTPS API (pinned certificate, TokenReview-checked token) → the pod's IP on a Docker
// network. kubectl 1.32 first tunnels SPDY in a WebSocket (subprotocol SPDY/3.1+portforward.k8s.io);
// with KUBECTL_PORT_FORWARD_WEBSOCKETS=false it speaks plain SPDY/3.1, and with
// KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false exec falls back to SPDY too: all of them are checked here.
// As in kubectl.logs-exec.test.ts the agent core is not started: the Node object points at an agent
// server, and the test runs the pod's pause and app containers with the labels the agent puts on them.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import tls from 'node:tls';
import net from 'node:net';
import { execFile, type ChildProcess } from 'node:child_process';
import { requireDocker, TEST_IMAGE } from './support/docker.ts';
import { httpGet, portForward, untilHttpAnswers, type Forward } from './support/port-forward.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { startServedNode } from './support/agent-server.ts';
import { PAUSE, runLabels } from '../node-agent/runtime.ts';
import { findResource } from '../lambdas/machinery/resources.ts';

const TEST = 'kubectl.portforward.test.ts';
const NODE = `portforward-${process.pid}`;
/** What the pod serves: a small page, and a file far larger than one SPDY window (64 KiB). */
const INDEX = `hello from ${NODE}\n`;
const BIG_LINES = 60_000;
const big = () => Array.from({ length: BIG_LINES }, (_, i) => `${i + 1}\n`).join('');

const docker = await requireDocker();
const d = describe.skipIf(!docker);

let c: TestCluster;
let served: Awaited<ReturnType<typeof startServedNode>>;
const children = new Set<ChildProcess>();

function labels(pod: { metadata: { name: string; uid: string } }, container: string) {
  const ref = { namespace: 'default', name: pod.metadata.name, uid: pod.metadata.uid };
  return { 'io.skiff.test': TEST, ...runLabels(NODE, ref, container, container === PAUSE ? 'pause' : 'app', 0) };
}

/** kubectl with this cluster's kubeconfig and extra environment; never throws on a non-zero exit. */
function kubectl(args: string[], env: Record<string, string> = {}, input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    const p = execFile('kubectl', args, { env: { ...process.env, KUBECONFIG: c.kubeconfigPath, ...env }, timeout: 30_000 }, (err, stdout, stderr) =>
      ok({ code: err ? (typeof (err as any).code === 'number' ? (err as any).code : 1) : 0, stdout, stderr }),
    );
    if (input !== undefined) p.stdin!.end(input);
  });
}

const forward = (pod: string, remote: number, env: Record<string, string> = {}, extra: string[] = []) =>
  portForward({ ...process.env, KUBECONFIG: c.kubeconfigPath, ...env }, children, pod, remote, extra);

function stop(f: Forward): Promise<number> {
  f.proc.kill('SIGINT');
  return f.exited;
}

d('kubectl port-forward, and the SPDY fallbacks, through the apiserver to the node agent', () => {
  beforeAll(async () => {
    c = await startTestCluster();
    served = await startServedNode(c, docker!, NODE);
    const pods = findResource('', 'v1', 'pods')!;
    const pod = (await c.api.registry.create(pods, 'default', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'pf', namespace: 'default' },
      spec: { nodeName: NODE, containers: [{ name: 'web', image: TEST_IMAGE, ports: [{ containerPort: 8080 }] }], tolerations: [{ operator: 'Exists' }] },
    })) as any;
    // The pod's network namespace is the pause container's, on Docker's default bridge.
    const pause = await docker!.createContainer({ Image: TEST_IMAGE, Cmd: ['sleep', '3600'], Labels: labels(pod, 'POD'), HostConfig: { NetworkMode: 'bridge' } });
    await pause.start();
    const web = await docker!.createContainer({
      Image: TEST_IMAGE,
      Cmd: ['sh', '-c', `mkdir -p /www && printf '${INDEX.replace('\n', '\\n')}' > /www/index.html && seq 1 ${BIG_LINES} > /www/big.txt && exec httpd -f -p 8080 -h /www`],
      Labels: labels(pod, 'web'),
      HostConfig: { NetworkMode: `container:${pause.id}` },
    });
    await web.start();
    // A pod whose process reads a line from stdin, for kubectl attach.
    const att = (await c.api.registry.create(pods, 'default', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'att', namespace: 'default' },
      spec: { nodeName: NODE, containers: [{ name: 'main', image: TEST_IMAGE, stdin: true, stdinOnce: true }], tolerations: [{ operator: 'Exists' }] },
    })) as any;
    await (
      await docker!.createContainer({ Image: TEST_IMAGE, Cmd: ['sh', '-c', 'read l; echo got:$l'], OpenStdin: true, StdinOnce: true, Labels: labels(att, 'main'), HostConfig: { NetworkMode: 'none' } })
    ).start();
    const ip = Object.values((await pause.inspect()).NetworkSettings.Networks).map((n) => n.IPAddress).find(Boolean);
    // kubectl port-forward refuses pods that are not Running.
    await c.api.registry.guaranteedUpdate(pods, 'default', 'pf', undefined, { subresource: 'status' }, (p: any) => ({
      ...p,
      status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], conditions: [{ type: 'Ready', status: 'True' }] },
    }));
    // httpd is up once it answers on the pod IP.
    await untilHttpAnswers(ip!, 8080, '/index.html');
  }, 60_000);

  afterAll(async () => {
    for (const p of children) p.kill('SIGKILL');
    await served?.close();
    await c?.destroy();
    const mine = await docker!.listContainers({ all: true, filters: { label: [`io.skiff.test=${TEST}`] } });
    await Promise.all(mine.map((x) => docker!.getContainer(x.Id).remove({ force: true }).catch(() => {})));
  });

  it('forwards a local port to the pod over SPDY tunnelled in a WebSocket', async () => {
    const f = await forward('pf', 8080, {}, ['-v=6']);
    try {
      const r = await httpGet(f.port, '/index.html');
      expect(r).toEqual({ status: 200, body: INDEX });
      // More than the 64 KiB a SPDY/3 stream may carry before a WINDOW_UPDATE (client-go sends none).
      const b = await httpGet(f.port, '/big.txt');
      expect(b.status).toBe(200);
      expect(b.body.length).toBe(big().length);
      expect(b.body === big()).toBe(true);
    } finally {
      await stop(f);
    }
    // -v=6 logs the requests: the upgrade that carried the streams was the WebSocket one.
    expect(f.stderr()).toMatch(/GET https:\/\/127\.0\.0\.1:\d+\/api\/v1\/namespaces\/default\/pods\/pf\/portforward 101 Switching Protocols/);
    expect(f.stderr()).not.toMatch(/fallback/i);
  });

  it('carries concurrent connections on one forward', async () => {
    const f = await forward('pf', 8080);
    try {
      const rs = await Promise.all([httpGet(f.port, '/big.txt'), httpGet(f.port, '/index.html'), httpGet(f.port, '/big.txt'), httpGet(f.port, '/nope')]);
      expect(rs.map((r) => r.status)).toEqual([200, 200, 200, 404]);
      expect(rs[0]!.body === big() && rs[2]!.body === big()).toBe(true);
      expect(rs[1]!.body).toBe(INDEX);
    } finally {
      await stop(f);
    }
  });

  it('reports a port nothing listens on as kubectl does: an error, then the forward ends', async () => {
    const f = await forward('pf', 9);
    // The local connection is accepted, then closed once the agent's dial has failed.
    await new Promise<void>((ok) => {
      const s = net.connect(f.port, '127.0.0.1');
      s.on('close', () => ok());
      s.on('error', () => ok());
    });
    const code = await Promise.race([f.exited, new Promise<number>((r) => setTimeout(() => r(-1), 15_000))]);
    expect(code).not.toBe(0);
    expect(code).not.toBe(-1);
    expect(f.stderr()).toMatch(/an error occurred forwarding \d+ -> 9: error forwarding port 9 to pod default\/pf: dial tcp [\d.]+:9: /);
    expect(f.stderr()).toContain('lost connection to pod');
  });

  it('forwards over plain SPDY/3.1 when WebSockets are off (KUBECTL_PORT_FORWARD_WEBSOCKETS=false)', async () => {
    const f = await forward('pf', 8080, { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' }, ['-v=6']);
    try {
      const [a, b] = await Promise.all([httpGet(f.port, '/index.html'), httpGet(f.port, '/big.txt')]);
      expect(a).toEqual({ status: 200, body: INDEX });
      expect(b.body === big()).toBe(true);
    } finally {
      await stop(f);
    }
    expect(f.stderr()).toMatch(/POST https:\/\/127\.0\.0\.1:\d+\/api\/v1\/namespaces\/default\/pods\/pf\/portforward 101 Switching Protocols/);
  });

  it('kubectl exec over SPDY (KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false): stdout, stderr, stdin, exit codes', async () => {
    const env = { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' };
    const r = await kubectl(['exec', 'pf', '-v=6', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3'], env);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toContain('err\n');
    // The request was SPDY's (POST), not the WebSocket one (GET).
    expect(r.stderr).toMatch(/POST https:\/\/127\.0\.0\.1:\d+\/api\/v1\/namespaces\/default\/pods\/pf\/exec\?\S+ 101 Switching Protocols/);
    const ok = await kubectl(['exec', 'pf', '--', 'cat', '/www/index.html'], env);
    expect(ok).toMatchObject({ code: 0, stdout: INDEX });
    const piped = await kubectl(['exec', '-i', 'pf', '--', 'sh', '-c', 'tr a-z A-Z; echo end'], env, 'through spdy\n');
    expect(piped).toMatchObject({ code: 0, stdout: 'THROUGH SPDY\nend\n' });
    const big64k = await kubectl(['exec', 'pf', '--', 'cat', '/www/big.txt'], env);
    expect(big64k.code).toBe(0);
    expect(big64k.stdout === big()).toBe(true);
  });

  it('kubectl attach -i over SPDY joins the container process', async () => {
    const r = await kubectl(['attach', '-i', 'att', '-v=6'], { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' }, 'through spdy attach\n');
    expect(r.stdout).toContain('got:through spdy attach\n');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/POST https:\/\/127\.0\.0\.1:\d+\/api\/v1\/namespaces\/default\/pods\/att\/attach\?\S+ 101 Switching Protocols/);
  });

  it('kubectl exec -it over SPDY, in a pseudo-terminal', async () => {
    const r = await new Promise<{ code: number; stdout: string }>((ok) =>
      execFile(
        'script',
        ['-qec', `kubectl exec -it pf -- sh -c '[ -t 0 ] && echo is-a-tty; exit 4'`, '/dev/null'],
        { env: { ...process.env, KUBECONFIG: c.kubeconfigPath, KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' }, timeout: 30_000 },
        (err, stdout) => ok({ code: err ? ((err as any).code ?? 1) : 0, stdout }),
      ),
    );
    expect(r.stdout).toContain('is-a-tty');
    expect(r.code).toBe(4);
  });

  it('refuses port-forward upgrades without a valid user token, over WebSocket and SPDY', async () => {
    // Raw upgrades: ws's client will not even send a subprotocol with a '/' in it, and kubectl needs a pod
    // to say it is running before it asks.
    const u = new URL(c.url);
    const upgrades = [
      'GET /api/v1/namespaces/default/pods/pf/portforward HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io\r\n',
      'POST /api/v1/namespaces/default/pods/pf/portforward HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\nContent-Length: 0\r\n',
      'POST /api/v1/namespaces/default/pods/pf/exec?command=true&stdout=true HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n',
    ];
    for (const request of upgrades) {
      for (const auth of ['', 'Authorization: Bearer wrong\r\n']) {
        const answer = await new Promise<string>((ok, fail) => {
          const s = tls.connect({ host: u.hostname, port: Number(u.port), ca: c.caCert }, () => s.write(`${request}Host: ${u.host}\r\n${auth}\r\n`));
          let text = '';
          s.setEncoding('utf8');
          s.on('data', (x) => (text += x));
          s.on('end', () => ok(text));
          s.on('error', fail);
        });
        expect(answer).toMatch(/^HTTP\/1\.1 401 /);
        expect(answer).toContain('"reason":"Unauthorized"');
      }
    }
  });
});
