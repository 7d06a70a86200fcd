// The node agent end to end, as a user sees it: a local cluster with one agent on the real Docker Engine,
// driven with the machine's kubectl. Pods become real containers (a pause container holding the
// namespaces, app containers joined to it); restarts, probes, readiness, init containers, config and
// deletion behave as on Kubernetes; and an agent killed and started again leaves the pods running.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Docker from 'dockerode';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { startLocalAgents } from '../lambdas/local/agents.ts';
import { LABELS } from '../node-agent/runtime.ts';
import { parseLabelSelector } from '../lambdas/machinery/selectors.ts';
import { requireDocker, TEST_IMAGE } from './support/docker.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { until } from './support/until.ts';

const docker = await requireDocker();
const podsRes = findResource('', 'v1', 'pods')!;
const epRes = findResource('', 'v1', 'endpoints')!;
const NODE = `e2e-node-${process.pid}`;
const NETWORK = `skiff-e2e-${process.pid}`;
const AGENT = { nodeName: NODE, network: NETWORK, backoffBaseMs: 1000, backoffMaxMs: 8000, heartbeatMs: 2000, resyncMs: 3000 };


function podYaml(name: string, spec: Record<string, unknown>, labels: Record<string, string> = {}): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, labels }, spec: { terminationGracePeriodSeconds: 2, ...spec } });
}

describe.skipIf(!docker)('node agent on Docker (kubectl end to end)', () => {
  let c: TestCluster;
  const engine = docker as Docker;
  const get = (name: string) => c.api.registry.get(podsRes, 'default', name).catch(() => undefined) as Promise<KubeObject | undefined>;
  const status = (p: KubeObject | undefined, container: string) => p?.status?.containerStatuses?.find((s: any) => s.name === container);
  const apply = async (doc: string) => {
    const r = await c.kubectl(['apply', '-f', '-'], doc);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  };
  const containersOf = async (uid: string | undefined) =>
    engine.listContainers({ all: true, filters: { label: [`${LABELS.node}=${NODE}`, `${LABELS.uid}=${uid}`] } });

  beforeAll(async () => {
    c = await startTestCluster({ agents: 1, requireAgents: true, agentOptions: AGENT });
  }, 60_000);
  afterAll(async () => {
    for (const a of c?.agents ?? []) await a.close({ removePods: true });
    await c?.destroy();
    await engine.getNetwork(NETWORK).remove().catch(() => {});
  });

  it('registers a Ready node with capacity, addresses and a heartbeat lease', async () => {
    const r = await c.kubectl(['get', 'node', NODE, '-o', 'json']);
    expect(r.code).toBe(0);
    const node = JSON.parse(r.stdout);
    expect(node.status.conditions.find((x: any) => x.type === 'Ready').status).toBe('True');
    expect(node.status.conditions.map((x: any) => x.type).sort()).toEqual(['DiskPressure', 'MemoryPressure', 'PIDPressure', 'Ready']);
    expect(Number(node.status.capacity.cpu)).toBeGreaterThan(0);
    expect(node.status.capacity.memory).toMatch(/^\d+Ki$/);
    expect(node.status.addresses.find((a: any) => a.type === 'InternalIP').address).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(node.metadata.labels['kubernetes.io/hostname']).toBe(NODE);
    expect(node.metadata.labels['kubernetes.io/os']).toBe('linux');
    expect(node.status.nodeInfo.containerRuntimeVersion).toMatch(/^docker:\/\//);
    expect(node.status.daemonEndpoints.kubeletEndpoint.Port).toBeGreaterThan(0);
    // The node's pod CIDR is the subnet its pods get addresses from: the Docker network's.
    const net = await engine.getNetwork(NETWORK).inspect();
    expect(node.spec.podCIDR).toBe(net.IPAM?.Config?.[0]?.Subnet);
    expect(node.spec.podCIDRs).toEqual([node.spec.podCIDR]);
    const lease = await c.kubectl(['get', 'lease', '-n', 'kube-node-lease', NODE, '-o', 'jsonpath={.spec.renewTime}']);
    expect(Date.parse(lease.stdout)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('runs a replication controller: its pods are Running in real containers, with pod IPs and status', async () => {
    await apply(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'ReplicationController',
        metadata: { name: 'web' },
        spec: {
          replicas: 2,
          selector: { app: 'web' },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'httpd', image: TEST_IMAGE, command: ['httpd', '-f', '-p', '8080'], ports: [{ containerPort: 8080 }] }] },
          },
        },
      }),
    );
    const pods = await until('2 running web pods', async () => {
      const list = await c.api.registry.list(podsRes, 'default', { labelSelector: parseLabelSelector('app=web') });
      const running = list.items.filter((p: KubeObject) => p.status?.phase === 'Running' && status(p, 'httpd')?.ready);
      return running.length === 2 && running;
    });
    for (const p of pods) {
      expect(p.spec.nodeName).toBe(NODE);
      expect(p.status.podIP).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      expect(p.status.conditions.find((x: any) => x.type === 'Ready').status).toBe('True');
      const cs = status(p, 'httpd');
      expect(cs.state.running.startedAt).toBeTruthy();
      expect(cs.containerID).toMatch(/^docker:\/\/[0-9a-f]{64}$/);
      expect(cs.restartCount).toBe(0);
      // Really there: a pause container and the app container, the app in the pause's network namespace.
      const cs2 = await containersOf(p.metadata.uid);
      const pause = cs2.find((x) => x.Labels[LABELS.container] === 'POD')!;
      const app = cs2.find((x) => x.Labels[LABELS.container] === 'httpd')!;
      expect(pause.State).toBe('running');
      expect(app.State).toBe('running');
      expect((await engine.getContainer(app.Id).inspect()).HostConfig.NetworkMode).toBe(`container:${pause.Id}`);
    }
    const table = await c.kubectl(['get', 'pods', '-l', 'app=web']);
    expect(table.stdout).toMatch(/web-\S+\s+1\/1\s+Running\s+0/);
    // Deleting a pod brings a replacement (replication controller + agent).
    const victim = pods[0]!.metadata.name!;
    expect((await c.kubectl(['delete', 'pod', victim, '--wait=true'])).code).toBe(0);
    expect(await get(victim)).toBeUndefined();
    expect(await containersOf(pods[0]!.metadata.uid)).toEqual([]);
    await until('a replacement pod running', async () => {
      const list = await c.api.registry.list(podsRes, 'default', { labelSelector: parseLabelSelector('app=web') });
      return list.items.filter((p: KubeObject) => p.status?.phase === 'Running').length === 2;
    });
    expect((await c.kubectl(['delete', 'rc', 'web'])).code).toBe(0);
  });

  it('containers of a pod share localhost and an emptyDir', async () => {
    await apply(
      podYaml('shared', {
        restartPolicy: 'Never',
        volumes: [{ name: 'www', emptyDir: {} }],
        containers: [
          { name: 'server', image: TEST_IMAGE, command: ['httpd', '-f', '-p', '8080', '-h', '/www'], volumeMounts: [{ name: 'www', mountPath: '/www' }] },
          {
            name: 'client',
            image: TEST_IMAGE,
            command: ['sh', '-c', 'echo hello-from-emptydir > /data/index.html; for i in 1 2 3 4 5 6 7 8 9 10; do timeout 2 wget -qO- http://127.0.0.1:8080/index.html | grep -q hello-from-emptydir && exit 0; sleep 0.5; done; exit 1'],
            volumeMounts: [{ name: 'www', mountPath: '/data' }],
          },
        ],
      }),
    );
    const p = await until('client finished', async () => {
      const p = await get('shared');
      return status(p, 'client')?.state?.terminated && p;
    });
    expect(status(p, 'client').state.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    expect(status(p, 'server').state.running).toBeTruthy();
    expect(p!.status.phase).toBe('Running'); // one container still runs
  });

  it('a crashing container restarts with exponential back-off (CrashLoopBackOff)', async () => {
    await apply(podYaml('crasher', { containers: [{ name: 'crash', image: TEST_IMAGE, command: ['sh', '-c', 'echo dying; exit 3'] }] }));
    const p = await until('3 restarts', async () => {
      const p = await get('crasher');
      return status(p, 'crash')?.restartCount >= 3 && p;
    }, 40_000);
    const cs = status(p, 'crash');
    expect(cs.lastState.terminated).toMatchObject({ exitCode: 3, reason: 'Error' });
    await until('CrashLoopBackOff shown', async () => status(await get('crasher'), 'crash')?.state?.waiting?.reason === 'CrashLoopBackOff');
    // The engine's own record of the runs: each start waited longer than the one before (1 s, 2 s, 4 s...).
    const runs = (await Promise.all((await containersOf(p!.metadata.uid)).filter((x) => x.Labels[LABELS.container] === 'crash').map((x) => engine.getContainer(x.Id).inspect())))
      .sort((a, b) => Number(a.Config.Labels[LABELS.restart]) - Number(b.Config.Labels[LABELS.restart]));
    expect(runs.length).toBe(2); // the current run and the previous one are kept, older ones removed
    const [prev, cur] = runs;
    const gap = Date.parse(cur!.State.StartedAt) - Date.parse(prev!.State.FinishedAt);
    const n = Number(cur!.Config.Labels[LABELS.restart]);
    expect(gap).toBeGreaterThanOrEqual(1000 * 2 ** (n - 2) - 200);
    expect(p!.status.phase).toBe('Running');
    // What the kubelet tells the user about it: kubectl describe shows the agent's Events.
    const described = await c.kubectl(['describe', 'pod', 'crasher']);
    for (const line of [/Normal\s+Scheduled/, /Normal\s+Pulled\s.*already present on machine/, /Normal\s+Created\s.*Created container crash/, /Normal\s+Started\s.*Started container crash/, /Warning\s+BackOff\s.*Back-off restarting failed container crash/]) {
      expect(described.stdout).toMatch(line);
    }
    await c.kubectl(['delete', 'pod', 'crasher', '--wait=false']);
  }, 60_000);

  it('kubectl logs (--tail, --previous) and kubectl exec (-i) reach the containers the agent runs', async () => {
    await apply(podYaml('talker', { containers: [{ name: 'talk', image: TEST_IMAGE, command: ['sh', '-c', 'echo run-$(cat /proc/sys/kernel/random/uuid | cut -c1-8); i=0; while [ ! -f /tmp/stop ]; do i=$((i+1)); echo tick$i; sleep 0.2; done; exit 1'] }] }));
    const p = await until('talker running', async () => {
      const p = await get('talker');
      return status(p, 'talk')?.state?.running && p;
    });
    await until('some ticks logged', async () => /tick2/.test((await c.kubectl(['logs', 'talker'])).stdout));
    const tail = await c.kubectl(['logs', 'talker', '--tail=1']);
    expect(tail.stdout.trim()).toMatch(/^tick\d+$/);
    const ex = await c.kubectl(['exec', 'talker', '--', 'sh', '-c', 'echo out-$HOSTNAME; echo err >&2; exit 4']);
    expect(ex.stdout.trim()).toBe('out-talker');
    expect(ex.stderr).toContain('err');
    expect(ex.code).not.toBe(0);
    const piped = await c.kubectl(['exec', '-i', 'talker', '--', 'tr', 'a-z', 'A-Z'], 'shout\n');
    expect(piped.stdout).toBe('SHOUT\n');
    // Stop the process: the restarted container writes a new first line; --previous shows the old run's.
    const first = (await c.kubectl(['logs', 'talker'])).stdout.split('\n')[0];
    expect((await c.kubectl(['exec', 'talker', '--', 'touch', '/tmp/stop'])).code).toBe(0);
    await until('a restart', async () => status(await get('talker'), 'talk')?.restartCount >= 1 && status(await get('talker'), 'talk')?.state?.running);
    expect((await c.kubectl(['logs', 'talker', '--previous'])).stdout.split('\n')[0]).toBe(first);
    await until('the new run logs', async () => /^run-/.test((await c.kubectl(['logs', 'talker'])).stdout));
    expect((await c.kubectl(['logs', 'talker'])).stdout.split('\n')[0]).not.toBe(first);
    void p;
    await c.kubectl(['delete', 'pod', 'talker', '--wait=false']);
  }, 40_000);

  it("pods resolve Services by name through the agent's own cluster DNS", async () => {
    await apply(JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'named' }, spec: { selector: { app: 'nobody' }, ports: [{ port: 80 }] } }));
    const ip = (await c.kubectl(['get', 'svc', 'named', '-o', 'jsonpath={.spec.clusterIP}'])).stdout;
    expect(ip).toMatch(/^10\.96\./);
    await apply(podYaml('resolver', { restartPolicy: 'Never', containers: [{ name: 'c', image: TEST_IMAGE, command: ['sh', '-c', 'cat /etc/resolv.conf; nslookup named; nslookup named.default.svc.cluster.local'] }] }));
    await until('resolver done', async () => status(await get('resolver'), 'c')?.state?.terminated);
    const out = (await c.kubectl(['logs', 'resolver'])).stdout;
    expect(out).toContain('search default.svc.cluster.local svc.cluster.local cluster.local');
    expect(out.split(ip).length - 1).toBeGreaterThanOrEqual(2); // both lookups answered with the clusterIP
    expect(status(await get('resolver'), 'c').state.terminated.exitCode).toBe(0);
    await c.kubectl(['delete', 'pod', 'resolver', '--wait=false']);
    await c.kubectl(['delete', 'svc', 'named']);
  });

  it('restartPolicy Never and OnFailure end in Succeeded / Failed', async () => {
    await apply(podYaml('ok-once', { restartPolicy: 'Never', containers: [{ name: 'c', image: TEST_IMAGE, command: ['true'] }] }));
    await apply(podYaml('fail-once', { restartPolicy: 'Never', containers: [{ name: 'c', image: TEST_IMAGE, command: ['sh', '-c', 'exit 7'] }] }));
    await apply(podYaml('retry', { restartPolicy: 'OnFailure', containers: [{ name: 'c', image: TEST_IMAGE, command: ['sh', '-c', 'test -f /tmp/x/done || { mkdir -p /tmp/x; exit 1; }'] }] }));
    await until('Succeeded', async () => (await get('ok-once'))?.status?.phase === 'Succeeded');
    const failed = await until('Failed', async () => {
      const p = await get('fail-once');
      return p?.status?.phase === 'Failed' && p;
    });
    expect(status(failed, 'c').state.terminated.exitCode).toBe(7);
    expect(status(failed, 'c').restartCount).toBe(0);
    // OnFailure restarts a failing container (the marker file does not survive a new container).
    await until('OnFailure restarts', async () => status(await get('retry'), 'c')?.restartCount >= 1);
    for (const n of ['ok-once', 'fail-once', 'retry']) await c.kubectl(['delete', 'pod', n, '--wait=false']);
  }, 40_000);

  it('a failing liveness probe restarts the container; readiness drives Ready and the Endpoints', async () => {
    await apply(
      podYaml('live', {
        containers: [
          {
            name: 'c',
            image: TEST_IMAGE,
            command: ['sh', '-c', 'touch /tmp/alive; sleep 2; rm /tmp/alive; sleep 3600'],
            livenessProbe: { exec: { command: ['test', '-f', '/tmp/alive'] }, periodSeconds: 1, failureThreshold: 2 },
          },
        ],
      }),
    );
    await until('liveness restart', async () => status(await get('live'), 'c')?.restartCount >= 1, 30_000);

    await apply(
      JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'ready-svc' }, spec: { selector: { app: 'ready' }, ports: [{ port: 80, targetPort: 8080 }] } }),
    );
    await apply(
      podYaml(
        'ready',
        {
          containers: [
            {
              name: 'c',
              image: TEST_IMAGE,
              command: ['httpd', '-f', '-p', '8080', '-h', '/tmp'],
              readinessProbe: { httpGet: { path: '/ready', port: 8080 }, periodSeconds: 1 },
            },
          ],
        },
        { app: 'ready' },
      ),
    );
    const notReady = await until('running, not ready', async () => {
      const p = await get('ready');
      return p?.status?.phase === 'Running' && p.status.podIP && p;
    });
    expect(status(notReady, 'c').ready).toBe(false);
    const ip = notReady!.status.podIP;
    await until('endpoints: not ready', async () => {
      const ep = await c.api.registry.get(epRes, 'default', 'ready-svc');
      return ep.subsets?.[0]?.notReadyAddresses?.some((a: any) => a.ip === ip);
    });
    // Make the probe pass from inside the container (through the engine), and watch it flip.
    const cid: string = status(notReady, 'c').containerID.replace('docker://', '');
    const ex = await engine.getContainer(cid).exec({ Cmd: ['touch', '/tmp/ready'] });
    await ex.start({});
    await until('endpoints: ready', async () => {
      const ep = await c.api.registry.get(epRes, 'default', 'ready-svc');
      return ep.subsets?.[0]?.addresses?.some((a: any) => a.ip === ip);
    }, 10_000);
    expect(status(await get('ready'), 'c').ready).toBe(true);
    const ex2 = await engine.getContainer(cid).exec({ Cmd: ['rm', '/tmp/ready'] });
    await ex2.start({});
    await until('endpoints: not ready again', async () => {
      const ep = await c.api.registry.get(epRes, 'default', 'ready-svc');
      return ep.subsets?.[0]?.notReadyAddresses?.some((a: any) => a.ip === ip);
    }, 10_000);
    for (const n of ['live', 'ready']) await c.kubectl(['delete', 'pod', n, '--wait=false']);
  }, 60_000);

  it('init containers run in order before the app; env and volumes come from ConfigMaps and Secrets', async () => {
    await apply(JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg' }, data: { greeting: 'hi', 'file.txt': 'from-configmap' } }));
    await apply(JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'sec' }, stringData: { password: 's3cret' } }));
    await apply(
      podYaml('configured', {
        restartPolicy: 'Never',
        volumes: [
          { name: 'work', emptyDir: {} },
          { name: 'cfg', configMap: { name: 'cfg' } },
          { name: 'sec', secret: { secretName: 'sec' } },
        ],
        initContainers: [
          { name: 'one', image: TEST_IMAGE, command: ['sh', '-c', 'echo one > /work/order'], volumeMounts: [{ name: 'work', mountPath: '/work' }] },
          { name: 'two', image: TEST_IMAGE, command: ['sh', '-c', 'echo two >> /work/order'], volumeMounts: [{ name: 'work', mountPath: '/work' }] },
        ],
        containers: [
          {
            name: 'check',
            image: TEST_IMAGE,
            env: [
              { name: 'GREETING', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'greeting' } } },
              { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'sec', key: 'password' } } },
              { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            ],
            command: [
              'sh',
              '-c',
              'test "$(cat /work/order | tr "\\n" " ")" = "one two " && test "$GREETING" = hi && test "$PASSWORD" = s3cret && test "$POD_NAME" = configured && test "$(cat /cfg/file.txt)" = from-configmap && test "$(cat /sec/password)" = s3cret',
            ],
            volumeMounts: [
              { name: 'work', mountPath: '/work' },
              { name: 'cfg', mountPath: '/cfg' },
              { name: 'sec', mountPath: '/sec', readOnly: true },
            ],
          },
        ],
      }),
    );
    const p = await until('configured pod finished', async () => {
      const p = await get('configured');
      return (p?.status?.phase === 'Succeeded' || p?.status?.phase === 'Failed') && p;
    });
    expect(status(p, 'check').state.terminated.exitCode).toBe(0);
    expect(p!.status.phase).toBe('Succeeded');
    expect(p!.status.initContainerStatuses.map((s: any) => [s.name, s.state.terminated?.reason])).toEqual([
      ['one', 'Completed'],
      ['two', 'Completed'],
    ]);
    expect(p!.status.conditions.find((x: any) => x.type === 'Initialized').status).toBe('True');
    // A missing ConfigMap key is a config error the user sees, not a crash.
    await apply(
      podYaml('misconfigured', {
        containers: [{ name: 'c', image: TEST_IMAGE, command: ['true'], env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'nope' } } }] }],
      }),
    );
    const bad = await until('CreateContainerConfigError', async () => {
      const p = await get('misconfigured');
      return status(p, 'c')?.state?.waiting?.reason === 'CreateContainerConfigError' && p;
    });
    expect(status(bad, 'c').state.waiting.message).toMatch(/nope/);
    for (const n of ['configured', 'misconfigured']) await c.kubectl(['delete', 'pod', n, '--wait=false']);
  }, 40_000);

  it('resources become cgroup limits; deletion stops containers with SIGTERM first', async () => {
    await apply(
      podYaml('limited', {
        terminationGracePeriodSeconds: 10,
        containers: [
          {
            name: 'c',
            image: TEST_IMAGE,
            // Exits at once on SIGTERM: deletion must not wait for the 10 s grace period.
            command: ['sh', '-c', 'trap "exit 0" TERM; while true; do sleep 0.2; done'],
            resources: { requests: { cpu: '250m', memory: '32Mi' }, limits: { cpu: '500m', memory: '64Mi' } },
          },
        ],
      }),
    );
    const p = await until('limited running', async () => {
      const p = await get('limited');
      return status(p, 'c')?.state?.running && p;
    });
    const info = await engine.getContainer(status(p, 'c').containerID.replace('docker://', '')).inspect();
    expect(info.HostConfig.Memory).toBe(64 * 1024 * 1024);
    expect(info.HostConfig.CpuQuota).toBe(50_000);
    expect(info.HostConfig.CpuPeriod).toBe(100_000);
    expect(info.HostConfig.CpuShares).toBe(256);
    expect(p!.status.qosClass).toBe('Burstable');
    const t0 = Date.now();
    expect((await c.kubectl(['delete', 'pod', 'limited', '--wait=true'])).code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(9000);
    expect(await containersOf(p!.metadata.uid)).toEqual([]);
  }, 40_000);

  it('an image no registry serves is ErrImagePull / ImagePullBackOff; a container ignoring SIGTERM is killed after the grace period', async () => {
    await apply(podYaml('no-image', { containers: [{ name: 'c', image: 'skiff.local/does-not-exist:1', imagePullPolicy: 'IfNotPresent' }] }));
    const p = await until('image pull error', async () => {
      const p = await get('no-image');
      return ['ErrImagePull', 'ImagePullBackOff'].includes(status(p, 'c')?.state?.waiting?.reason) && p;
    });
    expect(status(p, 'c').state.waiting.message).toMatch(/skiff\.local\/does-not-exist/);
    expect(p!.status.phase).toBe('Pending');
    await until('ImagePullBackOff after a retry', async () => status(await get('no-image'), 'c')?.state?.waiting?.reason === 'ImagePullBackOff', 20_000);
    await c.kubectl(['delete', 'pod', 'no-image', '--wait=false']);

    await apply(
      podYaml('stubborn', {
        terminationGracePeriodSeconds: 2,
        containers: [{ name: 'c', image: TEST_IMAGE, command: ['sh', '-c', 'trap "" TERM; while true; do sleep 0.2; done'] }],
      }),
    );
    const s = await until('stubborn running', async () => {
      const p = await get('stubborn');
      return status(p, 'c')?.state?.running && p;
    });
    const t0 = Date.now();
    expect((await c.kubectl(['delete', 'pod', 'stubborn', '--wait=true'])).code).toBe(0);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(1800); // SIGTERM was ignored: the grace period ran out...
    expect(took).toBeLessThan(15_000); // ...then SIGKILL
    expect(await containersOf(s!.metadata.uid)).toEqual([]);
  }, 60_000);

  it('hostPort publishes a container port on the node; status is written only when it changes', async () => {
    const hostPort = 20000 + (process.pid % 10000);
    await apply(
      podYaml('published', {
        containers: [
          { name: 'web', image: TEST_IMAGE, command: ['sh', '-c', 'echo published-ok > /tmp/index.html; httpd -f -p 8080 -h /tmp'], ports: [{ containerPort: 8080, hostPort }] },
        ],
      }),
    );
    const p = await until('published running', async () => {
      const p = await get('published');
      return status(p, 'web')?.ready && p;
    });
    const body = await until('reachable through the host port', async () => {
      const r = await fetch(`http://127.0.0.1:${hostPort}/index.html`, { signal: AbortSignal.timeout(2000) });
      return r.ok && (await r.text());
    });
    expect(body.trim()).toBe('published-ok');
    // Steady state: the agent resyncs every 3 s here, and must not rewrite an unchanged status.
    const rv = p!.metadata.resourceVersion;
    await new Promise((r) => setTimeout(r, 7000));
    expect((await get('published'))!.metadata.resourceVersion).toBe(rv);
    await c.kubectl(['delete', 'pod', 'published', '--wait=false']);
  }, 40_000);

  it('a pod whose sandbox dies gets a new one, and its containers start again in it', async () => {
    await apply(podYaml('phoenix', { containers: [{ name: 'c', image: TEST_IMAGE, command: ['sleep', '3600'] }] }));
    const p = await until('phoenix running', async () => {
      const p = await get('phoenix');
      return status(p, 'c')?.state?.running && p;
    });
    const pause = (await containersOf(p!.metadata.uid)).find((x) => x.Labels[LABELS.container] === 'POD')!;
    await engine.getContainer(pause.Id).kill();
    const again = await until('a new sandbox and the container restarted', async () => {
      const q = await get('phoenix');
      return status(q, 'c')?.state?.running && status(q, 'c').restartCount >= 1 && q;
    });
    const sandboxes = (await containersOf(p!.metadata.uid)).filter((x) => x.Labels[LABELS.container] === 'POD' && x.State === 'running');
    expect(sandboxes.length).toBe(1);
    expect(sandboxes[0]!.Id).not.toBe(pause.Id);
    const app = (await containersOf(p!.metadata.uid)).find((x) => x.Labels[LABELS.container] === 'c' && x.State === 'running')!;
    expect((await engine.getContainer(app.Id).inspect()).HostConfig.NetworkMode).toBe(`container:${sandboxes[0]!.Id}`);
    expect(again!.status.phase).toBe('Running');
    await c.kubectl(['delete', 'pod', 'phoenix', '--wait=false']);
  }, 40_000);

  it('an agent stopped and started again leaves running pods alone and removes pods deleted meanwhile', async () => {
    await apply(podYaml('survivor', { containers: [{ name: 'c', image: TEST_IMAGE, command: ['sleep', '3600'] }] }));
    await apply(podYaml('goner', { containers: [{ name: 'c', image: TEST_IMAGE, command: ['sleep', '3600'] }] }));
    const before = await until('both running', async () => {
      const a = await get('survivor');
      const b = await get('goner');
      return status(a, 'c')?.state?.running && status(b, 'c')?.state?.running && [a!, b!];
    });
    const [survivor, goner] = before;
    // Kill the agent (its containers stay), and force-delete one pod while it is down.
    await c.agents[0]!.close();
    expect((await c.kubectl(['delete', 'pod', 'goner', '--force', '--grace-period=0'])).code).toBe(0);
    expect((await containersOf(goner!.metadata.uid)).filter((x) => x.State === 'running').length).toBe(2);
    // A new agent for the same node, same data dir.
    c.agents[0] = (await startLocalAgents({ count: 1, backend: c.backend, server: c.url, caCert: c.caCert, dataDir: c.dataDir, agent: AGENT }))[0]!;
    await until('the deleted pod’s containers removed', async () => (await containersOf(goner!.metadata.uid)).length === 0);
    const after = await get('survivor');
    expect(status(after, 'c').containerID).toBe(status(survivor, 'c').containerID); // the same container, not a new one
    expect(status(after, 'c').restartCount).toBe(0);
    expect(after!.status.phase).toBe('Running');
    await c.kubectl(['delete', 'pod', 'survivor', '--wait=false']);
  }, 60_000);
});
