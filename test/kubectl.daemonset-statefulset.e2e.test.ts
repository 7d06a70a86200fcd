// Stock kubectl against a real local cluster with hollow nodes (the scheduler binds, hollow kubelets mark
// pods Running and Ready): DaemonSets on every eligible node, following a node that joins, honouring
// nodeSelector and taints/tolerations, rolled out, listed and undone with kubectl rollout; StatefulSets
// created in order, scaled down from the highest ordinal, rolled with a partition, with their claims and
// the stable DNS names their headless Service gives them. Then on two real Docker agents: a daemon
// container per node, a rollout, and a StatefulSet's stable names resolved inside those containers by
// each agent's own DNS server.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Resolver } from 'node:dns/promises';
import { startNodeDns } from '../node-agent/dns.ts';
import { ClusterZone } from '../node-agent/dns-zone.ts';
import { KubeClient } from '../node-agent/kube-client.ts';
import { startHollowNodes, type HollowNodes } from '../node-agent/hollow.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { until } from './support/until.ts';
import { execInContainer, requireDocker, TEST_IMAGE } from './support/docker.ts';
import { startLocalAgents } from '../lambdas/local/agents.ts';
import type { Agent } from '../node-agent/agent.ts';
import { LABELS } from '../node-agent/runtime.ts';
import type Docker from 'dockerode';

let c: TestCluster;
let late: HollowNodes | undefined;
const docker = await requireDocker();

describe('on hollow nodes', () => {
  beforeAll(async () => {
    c = await startTestCluster({ hollowNodes: 2 });
  });
  afterAll(async () => {
    await late?.stop();
    await c?.destroy();
  });

  const ok = async (args: string[], input?: string) => {
    const r = await c.kubectl(args, input);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  const json = async (args: string[]) => JSON.parse(await ok([...args, '-o', 'json']));

  function ds(name: string, image: string, podSpec = ''): string {
    return `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: ${name}
  namespace: daemons
spec:
  selector:
    matchLabels: {app: ${name}}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {maxUnavailable: 1, maxSurge: 0}
  revisionHistoryLimit: 10
  template:
    metadata:
      labels: {app: ${name}}
    spec:
      containers:
      - name: c
        image: ${image}
        command: ["sleep", "3600"]
${podSpec}`;
  }

  /** node name -> image of the DaemonSet's live pods (bound ones only: the scheduler placed them). */
  async function daemonPods(app: string): Promise<Record<string, string>> {
    const list = await json(['get', 'pods', '-n', 'daemons', '-l', `app=${app}`]);
    const out: Record<string, string> = {};
    for (const p of list.items) if (!p.metadata.deletionTimestamp && p.spec.nodeName) out[p.spec.nodeName] = p.spec.containers[0].image;
    return out;
  }

  describe('DaemonSet with kubectl on hollow nodes', () => {
    it('a pod on every node, one more when a node joins; rollout status, history, a template rollout and undo', async () => {
      await ok(['create', 'namespace', 'daemons']);
      expect((await ok(['apply', '-f', '-'], ds('agent', 'busybox:1'))).trim()).toBe('daemonset.apps/agent created');
      const status = await c.kubectl(['rollout', 'status', 'ds/agent', '-n', 'daemons', '--timeout=60s']);
      expect(status.stderr).toBe('');
      expect(status.stdout.trim().split('\n').pop()).toBe('daemon set "agent" successfully rolled out');
      expect(await daemonPods('agent')).toEqual({ 'hollow-node-0': 'busybox:1', 'hollow-node-1': 'busybox:1' });

      // A node joins: the DaemonSet follows it.
      late = await startHollowNodes({ ctx: c.api.controllerContext(), count: 1, namePrefix: 'late-node-' });
      await until('a daemon pod on the new node', async () => (await daemonPods('agent'))['late-node-0'] === 'busybox:1', 30_000, 200);

      // kubectl get ds: the status columns.
      const got = await json(['get', 'ds', 'agent', '-n', 'daemons']);
      expect(got.status).toMatchObject({ desiredNumberScheduled: 3, currentNumberScheduled: 3, updatedNumberScheduled: 3, numberMisscheduled: 0 });

      // A template change rolls out, one node at a time.
      await ok(['set', 'image', 'ds/agent', 'c=busybox:2', '-n', 'daemons']);
      const rolled = await c.kubectl(['rollout', 'status', 'ds/agent', '-n', 'daemons', '--timeout=90s']);
      expect(rolled.stdout.trim().split('\n').pop()).toBe('daemon set "agent" successfully rolled out');
      await until('every pod at busybox:2', async () => {
        const pods = await daemonPods('agent');
        return Object.keys(pods).length === 3 && Object.values(pods).every((i) => i === 'busybox:2');
      });

      const history = await ok(['rollout', 'history', 'ds/agent', '-n', 'daemons']);
      expect(history.trim().split('\n').map((l) => l.trim().split(/\s+/))).toEqual([['daemonset.apps/agent'], ['REVISION', 'CHANGE-CAUSE'], ['1', '<none>'], ['2', '<none>']]);
      const rev1 = await ok(['rollout', 'history', 'ds/agent', '-n', 'daemons', '--revision=1']);
      expect(rev1).toContain('daemonset.apps/agent with revision #1');
      expect(rev1).toMatch(/Image:\s+busybox:1/);

      expect((await ok(['rollout', 'undo', 'ds/agent', '-n', 'daemons'])).trim()).toBe('daemonset.apps/agent rolled back');
      const undone = await c.kubectl(['rollout', 'status', 'ds/agent', '-n', 'daemons', '--timeout=90s']);
      expect(undone.stdout.trim().split('\n').pop()).toBe('daemon set "agent" successfully rolled out');
      await until('every pod back at busybox:1', async () => {
        const pods = await daemonPods('agent');
        return Object.keys(pods).length === 3 && Object.values(pods).every((i) => i === 'busybox:1');
      });
      // Undo reuses revision 1's ControllerRevision, renumbered 3 (as kube: no duplicate revision).
      const after = await ok(['rollout', 'history', 'ds/agent', '-n', 'daemons']);
      expect(after.trim().split('\n').slice(2).map((l) => l.trim().split(/\s+/)[0])).toEqual(['2', '3']);
      const crs = await json(['get', 'controllerrevisions', '-n', 'daemons', '-l', 'app=agent']);
      expect(crs.items.length).toBe(2);
    });

    it('deleting a DaemonSet deletes its pods and revisions (garbage collector)', async () => {
      await ok(['apply', '-f', '-'], ds('temp', 'busybox:1'));
      await ok(['rollout', 'status', 'ds/temp', '-n', 'daemons', '--timeout=60s']);
      expect((await json(['get', 'controllerrevisions', '-n', 'daemons', '-l', 'app=temp'])).items.length).toBe(1);
      expect((await ok(['delete', 'ds', 'temp', '-n', 'daemons'])).trim()).toBe('daemonset.apps "temp" deleted');
      await until('pods and revisions gone', async () => {
        const pods = (await json(['get', 'pods', '-n', 'daemons', '-l', 'app=temp'])).items;
        const revs = (await json(['get', 'controllerrevisions', '-n', 'daemons', '-l', 'app=temp'])).items;
        return pods.length === 0 && revs.length === 0;
      });
    });

    it('nodeSelector and taints/tolerations decide the nodes', async () => {
      await ok(['label', 'node', 'hollow-node-0', 'disk=ssd']);
      await ok(['taint', 'node', 'hollow-node-1', 'dedicated=db:NoSchedule']);
      await ok(['apply', '-f', '-'], ds('picky', 'busybox:1', '      nodeSelector: {disk: ssd}\n'));
      await ok(['apply', '-f', '-'], ds('plain', 'busybox:1'));
      await ok(['apply', '-f', '-'], ds('tolerant', 'busybox:1', '      tolerations:\n      - {key: dedicated, operator: Equal, value: db, effect: NoSchedule}\n'));
      for (const name of ['picky', 'plain', 'tolerant']) {
        const r = await c.kubectl(['rollout', 'status', `ds/${name}`, '-n', 'daemons', '--timeout=60s']);
        expect(r.stdout.trim().split('\n').pop()).toBe(`daemon set "${name}" successfully rolled out`);
      }
      expect(Object.keys(await daemonPods('picky'))).toEqual(['hollow-node-0']);
      expect(Object.keys(await daemonPods('plain')).sort()).toEqual(['hollow-node-0', 'late-node-0']);
      expect(Object.keys(await daemonPods('tolerant')).sort()).toEqual(['hollow-node-0', 'hollow-node-1', 'late-node-0']);
      // The agent's pod on the tainted node stays (NoSchedule does not evict), counted as misscheduled.
      expect(Object.keys(await daemonPods('agent')).sort()).toEqual(['hollow-node-0', 'hollow-node-1', 'late-node-0']);
      await until('agent status counts the misscheduled pod', async () => (await json(['get', 'ds', 'agent', '-n', 'daemons'])).status.numberMisscheduled === 1);
      // Removing the label takes the picky pod away.
      await ok(['label', 'node', 'hollow-node-0', 'disk-']);
      await until('picky has no pods', async () => Object.keys(await daemonPods('picky')).length === 0);
      await ok(['taint', 'node', 'hollow-node-1', 'dedicated-']);
    });
  });

  const WEB = `apiVersion: v1
kind: Service
metadata:
  name: nginx
  namespace: stateful
spec:
  clusterIP: None
  selector: {app: web}
  ports:
  - {name: web, port: 80}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
  namespace: stateful
spec:
  serviceName: nginx
  replicas: 3
  podManagementPolicy: OrderedReady
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {partition: 0}
  revisionHistoryLimit: 10
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1
        volumeMounts:
        - {name: www, mountPath: /usr/share/nginx/html}
  volumeClaimTemplates:
  - metadata:
      name: www
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 1Gi
`;

  /** Live pod names, sorted by ordinal. */
  async function webPods(): Promise<string[]> {
    const list = await json(['get', 'pods', '-n', 'stateful', '-l', 'app=web']);
    return list.items
      .filter((p: any) => !p.metadata.deletionTimestamp)
      .map((p: any) => p.metadata.name as string)
      .sort((a: string, b: string) => Number(a.split('-')[1]) - Number(b.split('-')[1]));
  }

  /** Polls pod names until `done`, failing if an observation is not a prefix web-0..web-k (ordered creation/removal). */
  async function watchPrefix(done: (names: string[]) => boolean, ms = 60_000): Promise<string[][]> {
    const seen: string[][] = [];
    await until(
      'the StatefulSet to settle',
      async () => {
        const names = await webPods();
        expect(names).toEqual(names.map((_, i) => `web-${i}`));
        if (JSON.stringify(seen[seen.length - 1]) !== JSON.stringify(names)) seen.push(names);
        return done(names);
      },
      ms,
      50,
    );
    return seen;
  }

  describe('StatefulSet with kubectl on hollow nodes', () => {
    it('ordered creation, claims, stable DNS names, scale down from the top, rolling update with a partition', async () => {
      await ok(['create', 'namespace', 'stateful']);
      expect((await ok(['apply', '-f', '-'], WEB)).trim().split('\n')).toEqual(['service/nginx created', 'statefulset.apps/web created']);
      await watchPrefix((n) => n.length === 3);
      const st = await c.kubectl(['rollout', 'status', 'sts/web', '-n', 'stateful', '--timeout=90s']);
      // kubectl reports any RollingUpdate with rollingUpdate set (kube defaults partition: 0) as partitioned.
      expect(st.stdout.trim().split('\n').pop()).toBe('partitioned roll out complete: 3 new pods have been updated...');
      // Created in order: the controller's events, in store order.
      const events = (await json(['get', 'events', '-n', 'stateful', '--field-selector', 'reason=SuccessfulCreate,involvedObject.name=web'])).items
        .sort((a: any, b: any) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion))
        .map((e: any) => e.message);
      expect(events.filter((m: string) => m.startsWith('create Pod'))).toEqual([0, 1, 2].map((i) => `create Pod web-${i} in StatefulSet web successful`));
      expect((await ok(['get', 'pvc', '-n', 'stateful', '-o', 'name'])).trim().split('\n').sort()).toEqual(['persistentvolumeclaim/www-web-0', 'persistentvolumeclaim/www-web-1', 'persistentvolumeclaim/www-web-2']);
      const pod1 = await json(['get', 'pod', 'web-1', '-n', 'stateful']);
      expect(pod1.spec).toMatchObject({ hostname: 'web-1', subdomain: 'nginx' });
      expect(pod1.spec.volumes).toContainEqual({ name: 'www', persistentVolumeClaim: { claimName: 'www-web-1' } });

      // Stable DNS: the headless Service's endpoints carry each pod's hostname; the node DNS zone serves
      // web-N.nginx.stateful.svc.cluster.local from them.
      const ips = await until('three ready endpoints with hostnames', async () => {
        const ep = await json(['get', 'endpoints', 'nginx', '-n', 'stateful']);
        const addrs = (ep.subsets ?? []).flatMap((s: any) => s.addresses ?? []);
        return addrs.length === 3 && addrs.every((a: any) => a.hostname) ? Object.fromEntries(addrs.map((a: any) => [a.hostname, a.ip])) : undefined;
      });
      const zone = new ClusterZone();
      zone.rebuild((await json(['get', 'services', '-n', 'stateful'])).items, (await json(['get', 'endpoints', '-n', 'stateful'])).items);
      for (const i of [0, 1, 2]) {
        const podIP = (await json(['get', 'pod', `web-${i}`, '-n', 'stateful'])).status.podIP;
        expect(ips[`web-${i}`]).toBe(podIP);
        expect(zone.lookup(`web-${i}.nginx.stateful.svc.cluster.local`, 'A')!.answers).toEqual([{ type: 'A', name: `web-${i}.nginx.stateful.svc.cluster.local`, data: podIP }]);
      }
      // And through a node's DNS server (node-agent/dns.ts, following the cluster with its informers), asked over UDP.
      const kube = new KubeClient({ server: c.url, caCert: c.caCert, token: c.token });
      const dns = await startNodeDns({ kube, host: '127.0.0.1', port: 0, upstream: [], log: () => {} });
      try {
        await dns.synced;
        const resolver = new Resolver();
        resolver.setServers([`127.0.0.1:${dns.port}`]);
        for (const i of [0, 1, 2]) expect(await resolver.resolve4(`web-${i}.nginx.stateful.svc.cluster.local`)).toEqual([ips[`web-${i}`]]);
        expect((await resolver.resolve4('nginx.stateful.svc.cluster.local')).sort()).toEqual(Object.values(ips).sort());
      } finally {
        await dns.close();
        kube.close();
      }

      // Scale down: web-2 goes before web-1 (every observation stays a prefix); claims are retained.
      expect((await ok(['scale', 'sts/web', '-n', 'stateful', '--replicas=1'])).trim()).toBe('statefulset.apps/web scaled');
      const down = await watchPrefix((n) => n.length === 1);
      expect(down[down.length - 1]).toEqual(['web-0']);
      expect((await ok(['get', 'pvc', '-n', 'stateful', '-o', 'name'])).trim().split('\n').length).toBe(3);
      await ok(['scale', 'sts/web', '-n', 'stateful', '--replicas=3']);
      await watchPrefix((n) => n.length === 3);
      await c.kubectl(['rollout', 'status', 'sts/web', '-n', 'stateful', '--timeout=90s']);

      // Rolling update with partition 2: only web-2 moves to the new template.
      await ok(['patch', 'sts/web', '-n', 'stateful', '-p', '{"spec":{"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":2}}}}']);
      await ok(['set', 'image', 'sts/web', 'nginx=nginx:2', '-n', 'stateful']);
      const part = await c.kubectl(['rollout', 'status', 'sts/web', '-n', 'stateful', '--timeout=90s']);
      expect(part.stdout.trim().split('\n').pop()).toBe('partitioned roll out complete: 1 new pods have been updated...');
      const images = async () =>
        Object.fromEntries((await json(['get', 'pods', '-n', 'stateful', '-l', 'app=web'])).items.map((p: any) => [p.metadata.name, p.spec.containers[0].image]));
      expect(await images()).toEqual({ 'web-0': 'nginx:1', 'web-1': 'nginx:1', 'web-2': 'nginx:2' });
      const set = await json(['get', 'sts', 'web', '-n', 'stateful']);
      expect(set.status.currentRevision).not.toBe(set.status.updateRevision);
      expect(set.status).toMatchObject({ replicas: 3, readyReplicas: 3, updatedReplicas: 1, currentReplicas: 2 });

      // Partition 0: the rest rolls, highest first, and the update revision becomes current.
      await ok(['patch', 'sts/web', '-n', 'stateful', '-p', '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}']);
      const done = await c.kubectl(['rollout', 'status', 'sts/web', '-n', 'stateful', '--timeout=120s']);
      expect(done.stdout.trim().split('\n').pop()).toBe('partitioned roll out complete: 3 new pods have been updated...');
      await until('currentRevision to become the update revision', async () => {
        const s = (await json(['get', 'sts', 'web', '-n', 'stateful'])).status;
        return s.currentRevision === set.status.updateRevision && s.currentReplicas === 3;
      });
      expect(await images()).toEqual({ 'web-0': 'nginx:2', 'web-1': 'nginx:2', 'web-2': 'nginx:2' });
      const hist = await ok(['rollout', 'history', 'sts/web', '-n', 'stateful']);
      expect(hist.trim().split('\n').slice(2).map((l) => l.trim().split(/\s+/)[0])).toEqual(['1', '2']);

      // kubectl rollout undo: back to revision 1's template (renumbered 3), rolled from the top.
      expect((await ok(['rollout', 'undo', 'sts/web', '-n', 'stateful'])).trim()).toBe('statefulset.apps/web rolled back');
      await until('every pod back at nginx:1', async () => {
        const imgs = await images();
        return Object.keys(imgs).length === 3 && Object.values(imgs).every((i) => i === 'nginx:1');
      }, 60_000);
      const hist2 = await ok(['rollout', 'history', 'sts/web', '-n', 'stateful']);
      expect(hist2.trim().split('\n').slice(2).map((l) => l.trim().split(/\s+/)[0])).toEqual(['2', '3']);

      // Deleting the set deletes its pods; the claims stay (whenDeleted: Retain, the default).
      await ok(['delete', 'sts', 'web', '-n', 'stateful']);
      await until('pods gone', async () => (await webPods()).length === 0);
      expect((await ok(['get', 'pvc', '-n', 'stateful', '-o', 'name'])).trim().split('\n').length).toBe(3);
    });
  });
});

describe.skipIf(!docker)('DaemonSet on two Docker agents', () => {
  let d: TestCluster;
  const agents: Agent[] = [];
  const engine = docker as Docker;
  const names = [`ds-a-${process.pid}`, `ds-b-${process.pid}`];
  const nets = names.map((n) => `skiff-${n}`);

  beforeAll(async () => {
    d = await startTestCluster({ agents: 0 });
    // Two real agents (each its own node name, Docker network and pod subnet), as two `skiff agent`s would be.
    for (const [i, nodeName] of names.entries()) {
      const [a] = await startLocalAgents({
        count: 1,
        backend: d.backend,
        server: d.url,
        caCert: d.caCert,
        dataDir: d.dataDir,
        agent: { nodeName, network: nets[i], backoffBaseMs: 1000, backoffMaxMs: 8000, heartbeatMs: 2000, resyncMs: 3000, proxy: false },
      });
      agents.push(a!);
    }
  }, 120_000);
  afterAll(async () => {
    for (const a of agents) await a.close({ removePods: true });
    await d?.destroy();
    for (const n of nets) await engine.getNetwork(n).remove().catch(() => {});
  });

  it('runs one real container per node, and rolls a new template out to both', async () => {
    const manifest = (version: string) =>
      JSON.stringify({
        apiVersion: 'apps/v1',
        kind: 'DaemonSet',
        metadata: { name: 'node-agent' },
        spec: {
          selector: { matchLabels: { app: 'node-agent' } },
          updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } },
          template: {
            metadata: { labels: { app: 'node-agent' } },
            spec: {
              terminationGracePeriodSeconds: 1,
              containers: [{ name: 'c', image: TEST_IMAGE, command: ['sh', '-c', `echo ${version}; exec sleep 3600`], env: [{ name: 'VERSION', value: version }] }],
            },
          },
        },
      });
    const r = await d.kubectl(['apply', '-f', '-'], manifest('v1'));
    expect(r.stderr).toBe('');
    const st = await d.kubectl(['rollout', 'status', 'ds/node-agent', '--timeout=120s']);
    expect(st.stdout.trim().split('\n').pop()).toBe('daemon set "node-agent" successfully rolled out');
    const running = async () => {
      const pods = JSON.parse((await d.kubectl(['get', 'pods', '-l', 'app=node-agent', '-o', 'json'])).stdout).items.filter((p: any) => !p.metadata.deletionTimestamp);
      return pods.map((p: any) => ({ node: p.spec.nodeName, phase: p.status.phase, uid: p.metadata.uid, version: p.spec.containers[0].env[0].value }));
    };
    let pods = await running();
    expect(pods.map((p: any) => p.node).sort()).toEqual([...names].sort());
    expect(pods.every((p: any) => p.phase === 'Running')).toBe(true);
    // Real containers, one on each node's engine side.
    for (const p of pods) {
      const cs = await engine.listContainers({ filters: { label: [`${LABELS.node}=${p.node}`, `${LABELS.uid}=${p.uid}`] } });
      expect(cs.length).toBeGreaterThanOrEqual(1);
    }
    expect((await d.kubectl(['logs', 'ds/node-agent'])).stdout.trim()).toBe('v1');

    await d.kubectl(['apply', '-f', '-'], manifest('v2'));
    const rolled = await d.kubectl(['rollout', 'status', 'ds/node-agent', '--timeout=120s']);
    expect(rolled.stdout.trim().split('\n').pop()).toBe('daemon set "node-agent" successfully rolled out');
    await until('both nodes at v2, Running', async () => {
      pods = await running();
      return pods.length === 2 && pods.every((p: any) => p.version === 'v2' && p.phase === 'Running');
    }, 60_000, 300);
    expect(pods.map((p: any) => p.node).sort()).toEqual([...names].sort());
  }, 240_000);

  it("a StatefulSet's pods resolve by their stable names from a daemon pod, through the node's DNS", async () => {
    const web = [
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'db' }, spec: { clusterIP: 'None', selector: { app: 'db' }, ports: [{ name: 'x', port: 80 }] } },
      {
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        metadata: { name: 'db' },
        spec: {
          serviceName: 'db',
          replicas: 2,
          selector: { matchLabels: { app: 'db' } },
          template: { metadata: { labels: { app: 'db' } }, spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'c', image: TEST_IMAGE, command: ['sleep', '3600'] }] } },
        },
      },
    ];
    for (const o of web) expect((await d.kubectl(['apply', '-f', '-'], JSON.stringify(o))).code).toBe(0);
    const st = await d.kubectl(['rollout', 'status', 'sts/db', '--timeout=120s']);
    expect(st.code, st.stderr).toBe(0);
    const podIP = async (name: string) => JSON.parse((await d.kubectl(['get', 'pod', name, '-o', 'json'])).stdout).status.podIP as string;
    const ips = { 'db-0': await podIP('db-0'), 'db-1': await podIP('db-1') };
    // From the daemon pod on each node: its node's DNS server answers db-N.db.default.svc.cluster.local.
    const daemons = JSON.parse((await d.kubectl(['get', 'pods', '-l', 'app=node-agent', '-o', 'json'])).stdout).items.filter((p: any) => !p.metadata.deletionTimestamp);
    expect(daemons.length).toBe(2);
    for (const p of daemons) {
      const [box] = await engine.listContainers({ filters: { label: [`${LABELS.node}=${p.spec.nodeName}`, `${LABELS.pod}=${p.metadata.name}`, `${LABELS.container}=c`], status: ['running'] } });
      expect(box, `container of ${p.metadata.name}`).toBeDefined();
      for (const [name, ip] of Object.entries(ips)) {
        await until(`${name} resolved on ${p.spec.nodeName}`, async () => {
          const r = await execInContainer(engine, box!.Id, ['nslookup', '-type=a', `${name}.db.default.svc.cluster.local`]);
          return new RegExp(`Name:\\s+${name}\\.db\\.default\\.svc\\.cluster\\.local\\s+Address: ${ip.replace(/\./g, '\\.')}\\b`).test(r.stdout);
        }, 30_000, 500);
      }
    }
  }, 240_000);
});
