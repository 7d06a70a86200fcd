// apps/v1 through the machine's stock kubectl (1.32) and @kubernetes/client-node's AppsV1Api, against a real
// local apiserver with its controllers off (what is read back is what the API did, not a controller):
// kubectl's typed create (a protobuf body), its columns for deploy,rs,ds,sts, explain, apply, scale, the
// status subresource, and the messages kubectl prints for what kube-apiserver refuses.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as k8s from '@kubernetes/client-node';
import { startTestCluster, type TestCluster } from './support/cluster.ts';

let c: TestCluster;

beforeAll(async () => {
  c = await startTestCluster({ controllers: false });
});
afterAll(async () => {
  await c?.destroy();
});

async function ok(...args: string[]): Promise<string> {
  const r = await c.kubectl(args);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout;
}

async function refused(args: string[], input?: string): Promise<string> {
  const r = await c.kubectl(args, input);
  expect(r.code).not.toBe(0);
  return r.stderr.trim();
}

/** kubectl's table output as cells (columns are two or more spaces apart), AGE cells replaced by "AGE". */
function cells(out: string): string[][] {
  return out
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s{2,}/).map((cell) => (/^\d+s$/.test(cell) ? 'AGE' : cell)));
}

const WORKLOADS = `apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: cache}
spec:
  replicas: 2
  selector: {matchLabels: {app: cache}}
  template:
    metadata: {labels: {app: cache}}
    spec:
      containers: [{name: redis, image: redis:7}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      nodeSelector: {kubernetes.io/os: linux}
      containers: [{name: agent, image: busybox}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: postgres:17}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
`;

const api = (replicas: number, selector = 'app: api', labels = 'app: api') => `apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: ${replicas}
  selector:
    matchLabels: {${selector}}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels: {${labels}}
    spec:
      containers:
      - name: api
        image: nginx:1.27
        ports: [{containerPort: 80}]
`;

describe('kubectl and apps/v1', () => {
  it('kubectl create deployment web --image=busybox --replicas=3 creates it with kube defaults, generation 1 and an empty status', async () => {
    expect(await ok('create', 'deployment', 'web', '--image=busybox', '--replicas=3')).toBe('deployment.apps/web created\n');
    const d = JSON.parse(await ok('get', 'deployment', 'web', '-o', 'json'));
    expect(d.metadata).toMatchObject({ name: 'web', namespace: 'default', generation: 1, labels: { app: 'web' } });
    expect(d.spec).toEqual({
      replicas: 3,
      selector: { matchLabels: { app: 'web' } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } },
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 600,
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          containers: [{ name: 'busybox', image: 'busybox', imagePullPolicy: 'Always', terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File', resources: {} }],
          restartPolicy: 'Always',
          terminationGracePeriodSeconds: 30,
          dnsPolicy: 'ClusterFirst',
          securityContext: {},
          schedulerName: 'default-scheduler',
        },
      },
    });
    expect(d.status).toEqual({});
    // kubectl describe reads the defaulted strategy and the (empty) counts.
    const described = await ok('describe', 'deployment', 'web');
    expect(described).toMatch(/\nReplicas:\s+3 desired \| 0 updated \| 0 total \| 0 available \| 0 unavailable\n/);
    expect(described).toMatch(/\nRollingUpdateStrategy:\s+25% max unavailable, 25% max surge\n/);
  });

  it('kubectl get deploy,rs,ds,sts prints each kind with the columns kubectl shows against Kubernetes', async () => {
    expect(await ok('apply', '-f', c.file('workloads.yaml', WORKLOADS))).toBe('replicaset.apps/cache created\ndaemonset.apps/agent created\nstatefulset.apps/db created\n');
    expect(cells(await ok('get', 'deploy,rs,ds,sts'))).toEqual([
      ['NAME', 'READY', 'UP-TO-DATE', 'AVAILABLE', 'AGE'],
      ['deployment.apps/web', '0/3', '0', '0', 'AGE'],
      [''],
      ['NAME', 'DESIRED', 'CURRENT', 'READY', 'AGE'],
      ['replicaset.apps/cache', '2', '0', '0', 'AGE'],
      [''],
      ['NAME', 'DESIRED', 'CURRENT', 'READY', 'UP-TO-DATE', 'AVAILABLE', 'NODE SELECTOR', 'AGE'],
      ['daemonset.apps/agent', '0', '0', '0', '0', '0', 'kubernetes.io/os=linux', 'AGE'],
      [''],
      ['NAME', 'READY', 'AGE'],
      ['statefulset.apps/db', '0/2', 'AGE'],
    ]);
    expect(cells(await ok('get', 'deploy,rs,ds,sts', '-o', 'wide'))).toEqual([
      ['NAME', 'READY', 'UP-TO-DATE', 'AVAILABLE', 'AGE', 'CONTAINERS', 'IMAGES', 'SELECTOR'],
      ['deployment.apps/web', '0/3', '0', '0', 'AGE', 'busybox', 'busybox', 'app=web'],
      [''],
      ['NAME', 'DESIRED', 'CURRENT', 'READY', 'AGE', 'CONTAINERS', 'IMAGES', 'SELECTOR'],
      ['replicaset.apps/cache', '2', '0', '0', 'AGE', 'redis', 'redis:7', 'app=cache'],
      [''],
      ['NAME', 'DESIRED', 'CURRENT', 'READY', 'UP-TO-DATE', 'AVAILABLE', 'NODE SELECTOR', 'AGE', 'CONTAINERS', 'IMAGES', 'SELECTOR'],
      ['daemonset.apps/agent', '0', '0', '0', '0', '0', 'kubernetes.io/os=linux', 'AGE', 'agent', 'busybox', 'app=agent'],
      [''],
      ['NAME', 'READY', 'AGE', 'CONTAINERS', 'IMAGES'],
      ['statefulset.apps/db', '0/2', 'AGE', 'db', 'postgres:17'],
    ]);
    // The StatefulSet's claim template reads back with the PersistentVolumeClaim defaults.
    expect(JSON.parse(await ok('get', 'sts', 'db', '-o', 'jsonpath={.spec.volumeClaimTemplates[0]}'))).toMatchObject({ spec: { volumeMode: 'Filesystem' }, status: { phase: 'Pending' } });
    // A DaemonSet carries its template generation; a changed image moves it on.
    expect(await ok('get', 'ds', 'agent', '-o', 'jsonpath={.metadata.annotations.deprecated\\.daemonset\\.template\\.generation}')).toBe('1');
    expect(await ok('set', 'image', 'ds/agent', 'agent=busybox:1.36')).toBe('daemonset.apps/agent image updated\n');
    expect(await ok('get', 'ds', 'agent', '-o', 'jsonpath={.metadata.annotations.deprecated\\.daemonset\\.template\\.generation} {.metadata.generation}')).toBe('2 2');
  });

  it('kubectl explain deployment.spec.strategy', async () => {
    const out = await ok('explain', 'deployment.spec.strategy');
    expect(out).toMatch(/^GROUP:\s+apps\nKIND:\s+Deployment\nVERSION:\s+v1\n\nFIELD: strategy <DeploymentStrategy>\n/);
    expect(out).toContain('DeploymentStrategy describes how to replace existing pods with new ones.');
    expect(out).toMatch(/\n {2}rollingUpdate\t<RollingUpdateDeployment>\n/);
    expect(out).toMatch(/\n {2}type\t<string>\n/);
  });

  it('kubectl apply -f creates, configures (generation 2) and leaves unchanged; scale bumps the generation, a status write does not', async () => {
    const f = c.file('api.yaml', api(2));
    expect(await ok('apply', '-f', f)).toBe('deployment.apps/api created\n');
    expect(await ok('apply', '-f', c.file('api.yaml', api(4)))).toBe('deployment.apps/api configured\n');
    expect(await ok('apply', '-f', f)).toBe('deployment.apps/api unchanged\n');
    expect(await ok('get', 'deploy', 'api', '-o', 'jsonpath={.metadata.generation} {.spec.replicas} {.spec.strategy.rollingUpdate}')).toBe('2 4 {"maxSurge":1,"maxUnavailable":0}');
    // A PUT of the manifest as written (no defaulted fields) changes no spec: the generation stays.
    expect(await ok('replace', '--save-config', '-f', f)).toBe('deployment.apps/api replaced\n');
    expect(await ok('get', 'deploy', 'api', '-o', 'jsonpath={.metadata.generation} {.spec.revisionHistoryLimit}')).toBe('2 10');
    expect(await ok('scale', 'deployment', 'api', '--replicas=6')).toBe('deployment.apps/api scaled\n');
    expect(await ok('get', 'deploy', 'api', '-o', 'jsonpath={.metadata.generation} {.spec.replicas}')).toBe('3 6');
    // The status subresource: its rules, and no generation bump; the spec it carries is ignored.
    expect(await refused(['patch', 'deploy', 'api', '--subresource=status', '--type=merge', '-p', '{"status":{"replicas":-1}}'])).toBe(
      [
        'The Deployment "api" is invalid: ',
        '* status.replicas: Invalid value: -1: must be greater than or equal to 0',
        '* status.updatedReplicas: Invalid value: 0: cannot be greater than status.replicas',
        '* status.readyReplicas: Invalid value: 0: cannot be greater than status.replicas',
        '* status.availableReplicas: Invalid value: 0: cannot be greater than status.replicas',
      ].join('\n'),
    );
    await ok('patch', 'deploy', 'api', '--subresource=status', '--type=merge', '-p', '{"spec":{"replicas":1},"status":{"replicas":6,"readyReplicas":5,"availableReplicas":5,"observedGeneration":3}}');
    expect(await ok('get', 'deploy', 'api', '-o', 'jsonpath={.metadata.generation} {.spec.replicas} {.status.readyReplicas}')).toBe('3 6 5');
    expect(cells(await ok('get', 'deploy', 'api'))).toEqual([
      ['NAME', 'READY', 'UP-TO-DATE', 'AVAILABLE', 'AGE'],
      ['api', '5/6', '0', '5', 'AGE'],
    ]);
    // The scale subresource of a StatefulSet, and its selector as a string.
    expect(await ok('scale', 'sts', 'db', '--replicas=3')).toBe('statefulset.apps/db scaled\n');
    const scale = JSON.parse(await ok('get', '--raw', '/apis/apps/v1/namespaces/default/statefulsets/db/scale'));
    expect(scale).toMatchObject({ kind: 'Scale', apiVersion: 'autoscaling/v1', spec: { replicas: 3 }, status: { replicas: 0, selector: 'app=db' } });
  });

  it('kubectl prints kube-apiserver\'s message for an invalid Deployment and for a changed selector', async () => {
    expect(await refused(['create', '-f', c.file('bad.yaml', api(1, 'app: api', 'app: other').replace('name: api', 'name: bad'))])).toBe(
      'The Deployment "bad" is invalid: spec.template.metadata.labels: Invalid value: {"app":"other"}: `selector` does not match template `labels`',
    );
    expect(await refused(['apply', '-f', c.file('api.yaml', api(2, 'app: api, track: stable', 'app: api, track: stable'))])).toBe(
      'The Deployment "api" is invalid: spec.selector: Invalid value: {"matchLabels":{"app":"api","track":"stable"}}: field is immutable',
    );
    expect(await refused(['patch', 'deploy', 'api', '--type=merge', '-p', '{"spec":{"strategy":{"rollingUpdate":{"maxSurge":0}}}}'])).toBe(
      'The Deployment "api" is invalid: spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0',
    );
    expect(await refused(['patch', 'sts', 'db', '--type=merge', '-p', '{"spec":{"serviceName":"other"}}'])).toBe(
      "The StatefulSet \"db\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
    );
    // apps/v1 ReplicaSets are selectable by name and namespace only (no field label conversion for status.replicas).
    expect(await refused(['get', 'rs', '--field-selector', 'status.replicas=0'])).toBe(
      'Error from server (BadRequest): Unable to find "apps/v1, Resource=replicasets" that match label selector "", field selector "status.replicas=0": "status.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"',
    );
  });

  it('kubectl get controllerrevisions names the controller as kind.group/name', async () => {
    const uid = (await ok('get', 'ds', 'agent', '-o', 'jsonpath={.metadata.uid}')).trim();
    const rev = `apiVersion: apps/v1
kind: ControllerRevision
metadata:
  name: agent-6b7c
  ownerReferences: [{apiVersion: apps/v1, kind: DaemonSet, name: agent, uid: ${uid}, controller: true}]
data: {spec: {template: {$patch: replace}}}
revision: 1
`;
    expect(await ok('create', '-f', c.file('rev.yaml', rev))).toBe('controllerrevision.apps/agent-6b7c created\n');
    expect(cells(await ok('get', 'controllerrevisions'))).toEqual([
      ['NAME', 'CONTROLLER', 'REVISION', 'AGE'],
      ['agent-6b7c', 'daemonset.apps/agent', '1', 'AGE'],
    ]);
    expect(await refused(['patch', 'controllerrevision', 'agent-6b7c', '--type=merge', '-p', '{"data":{"spec":null}}'])).toBe(
      'The ControllerRevision "agent-6b7c" is invalid: data: Invalid value: {}: field is immutable',
    );
  });
});

describe('@kubernetes/client-node AppsV1Api', () => {
  it('creates a Deployment, reads it back with its defaults, scales it and is refused with a 422 Status', async () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(c.kubeconfigPath);
    const apps = kc.makeApiClient(k8s.AppsV1Api);
    const body: k8s.V1Deployment = {
      metadata: { name: 'node-client', labels: { app: 'node-client' } },
      spec: {
        selector: { matchLabels: { app: 'node-client' } },
        template: { metadata: { labels: { app: 'node-client' } }, spec: { containers: [{ name: 'main', image: 'busybox:stable' }] } },
      },
    };
    const created = await apps.createNamespacedDeployment({ namespace: 'default', body });
    expect(created.metadata?.generation).toBe(1);
    const read = await apps.readNamespacedDeployment({ namespace: 'default', name: 'node-client' });
    expect(read.spec?.replicas).toBe(1);
    expect(read.spec?.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } });
    expect([read.spec?.revisionHistoryLimit, read.spec?.progressDeadlineSeconds]).toEqual([10, 600]);
    expect(read.spec?.template.spec?.containers[0]?.imagePullPolicy).toBe('IfNotPresent');

    const scale = await apps.replaceNamespacedDeploymentScale({ namespace: 'default', name: 'node-client', body: { metadata: { name: 'node-client' }, spec: { replicas: 4 } } });
    expect(scale.spec?.replicas).toBe(4);
    expect(scale.status?.selector).toBe('app=node-client');
    expect((await apps.listNamespacedDeployment({ namespace: 'default', labelSelector: 'app=node-client' })).items.map((d) => [d.metadata?.name, d.spec?.replicas])).toEqual([['node-client', 4]]);

    const err = await apps
      .createNamespacedDeployment({ namespace: 'default', body: { ...body, metadata: { name: 'no-selector' }, spec: { ...body.spec!, selector: { matchLabels: { app: 'other' } } } } })
      .catch((e) => e);
    expect(err).toBeInstanceOf(k8s.ApiException);
    expect(err.code).toBe(422);
    const status = JSON.parse(err.body);
    expect(status).toMatchObject({
      kind: 'Status',
      reason: 'Invalid',
      message: 'Deployment.apps "no-selector" is invalid: spec.template.metadata.labels: Invalid value: {"app":"node-client"}: `selector` does not match template `labels`',
      details: { name: 'no-selector', group: 'apps', kind: 'Deployment', causes: [{ reason: 'FieldValueInvalid', field: 'spec.template.metadata.labels' }] },
    });
  });
});
