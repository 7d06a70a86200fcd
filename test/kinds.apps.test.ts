// apps/v1 kinds (lambdas/kinds/apps/): Deployment, ReplicaSet, DaemonSet, StatefulSet and ControllerRevision
// as kube-apiserver 1.32 defaults them (pkg/apis/apps/v1/defaults.go), refuses them (pkg/apis/apps/validation,
// with its messages and field paths), updates them (pkg/registry/apps/*/strategy.go: the selector is
// immutable, a StatefulSet's spec mostly so, the status subresource has its own rules) and prints them
// for kubectl get (printers.go).

import { describe, expect, it } from 'vitest';
import { apiResourceList } from '../lambdas/apiserver/discovery.ts';
import { create, refusal, strategyOf, table, update } from './support/kinds.ts';

const deployments = strategyOf('apps', 'v1', 'deployments');
const replicaSets = strategyOf('apps', 'v1', 'replicasets');
const daemonSets = strategyOf('apps', 'v1', 'daemonsets');
const statefulSets = strategyOf('apps', 'v1', 'statefulsets');
const revisions = strategyOf('apps', 'v1', 'controllerrevisions');

type Obj = Record<string, any>;
const template = (labels: Record<string, string> = { app: 'web' }, spec: Obj = {}) => ({
  metadata: { labels },
  spec: { containers: [{ name: 'app', image: 'nginx:1.27' }], ...spec },
});
const workload = (spec: Obj, name = 'web') => ({
  metadata: { name, namespace: 'default' },
  spec: { selector: { matchLabels: { app: 'web' } }, template: template(), ...spec },
});
const PERCENT_MSG = "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')";
const MISMATCH = '`selector` does not match template `labels`';

describe('apps/v1 discovery', () => {
  it('serves the five kinds with their short names and subresources, as kube-apiserver does', () => {
    expect(apiResourceList('apps', 'v1')!.resources.map((r) => [r.name, r.shortNames ?? [], r.categories ?? []])).toEqual([
      ['controllerrevisions', [], []],
      ['daemonsets', ['ds'], ['all']],
      ['daemonsets/status', [], []],
      ['deployments', ['deploy'], ['all']],
      ['deployments/scale', [], []],
      ['deployments/status', [], []],
      ['replicasets', ['rs'], ['all']],
      ['replicasets/scale', [], []],
      ['replicasets/status', [], []],
      ['statefulsets', ['sts'], ['all']],
      ['statefulsets/scale', [], []],
      ['statefulsets/status', [], []],
    ]);
  });
});

describe('Deployment', () => {
  it('defaults a RollingUpdate strategy of 25%/25%, 10 revisions, a 600 s deadline, one replica and the pod template', () => {
    const d = create(deployments, workload({}));
    expect(d.spec).toEqual({
      replicas: 1,
      selector: { matchLabels: { app: 'web' } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } },
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 600,
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          containers: [{ name: 'app', image: 'nginx:1.27', imagePullPolicy: 'IfNotPresent', terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File', resources: {} }],
          restartPolicy: 'Always',
          terminationGracePeriodSeconds: 30,
          dnsPolicy: 'ClusterFirst',
          securityContext: {},
          schedulerName: 'default-scheduler',
        },
      },
    });
    // Every DeploymentStatus field is omitempty: a new Deployment reads back `status: {}`, whatever it sent.
    expect(create(deployments, { ...workload({}), status: { replicas: 9 } }).status).toEqual({});
    // Recreate gets no rollingUpdate; what is set is kept.
    expect(create(deployments, workload({ strategy: { type: 'Recreate' }, replicas: 0 })).spec).toMatchObject({ strategy: { type: 'Recreate' }, replicas: 0 });
    expect(create(deployments, workload({ strategy: { rollingUpdate: { maxSurge: 2 } } })).spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 2, maxUnavailable: '25%' } });
  });

  it.each([
    [workload({ selector: undefined }), `[spec.selector: Required value, spec.template.metadata.labels: Invalid value: {"app":"web"}: ${MISMATCH}]`],
    [workload({ selector: {} }), 'spec.selector: Invalid value: {}: empty selector is invalid for deployment'],
    [workload({ template: template({ app: 'other' }) }), `spec.template.metadata.labels: Invalid value: {"app":"other"}: ${MISMATCH}`],
    [workload({ selector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['api'] }] } }), `spec.template.metadata.labels: Invalid value: {"app":"web"}: ${MISMATCH}`],
    [
      workload({ selector: { matchExpressions: [{ key: 'app', operator: 'Near' }] } }),
      '[spec.selector.matchExpressions[0].operator: Invalid value: "Near": not a valid selector operator, spec.selector: Invalid value: {"matchExpressions":[{"key":"app","operator":"Near"}]}: invalid label selector]',
    ],
    [workload({ replicas: -1 }), 'spec.replicas: Invalid value: -1: must be greater than or equal to 0'],
    [workload({ template: template({ app: 'web' }, { restartPolicy: 'Never' }) }), 'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"'],
    [workload({ template: template({ app: 'web' }, { activeDeadlineSeconds: 60 }) }), 'spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported'],
    [workload({ template: template({ app: 'web' }, { containers: [{ name: 'app' }] }) }), 'spec.template.spec.containers[0].image: Required value'],
    [workload({ strategy: { rollingUpdate: { maxSurge: 0, maxUnavailable: 0 } } }), 'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0'],
    [workload({ strategy: { rollingUpdate: { maxSurge: '0%', maxUnavailable: '0%' } } }), 'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "0%": may not be 0 when `maxSurge` is 0'],
    [workload({ strategy: { rollingUpdate: { maxUnavailable: '110%' } } }), 'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "110%": must not be greater than 100%'],
    [workload({ strategy: { rollingUpdate: { maxSurge: 'lots' } } }), `spec.strategy.rollingUpdate.maxSurge: Invalid value: "lots": ${PERCENT_MSG}`],
    [workload({ strategy: { rollingUpdate: { maxSurge: -1 } } }), 'spec.strategy.rollingUpdate.maxSurge: Invalid value: -1: must be greater than or equal to 0'],
    [workload({ strategy: { type: 'Recreate', rollingUpdate: { maxSurge: 1 } } }), "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"],
    [workload({ strategy: { type: 'BlueGreen' } }), 'spec.strategy: Unsupported value: {"Type":"BlueGreen","RollingUpdate":null}: supported values: "Recreate", "RollingUpdate"'],
    [workload({ revisionHistoryLimit: -1 }), 'spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0'],
    [workload({ minReadySeconds: -5 }), 'spec.minReadySeconds: Invalid value: -5: must be greater than or equal to 0'],
    [workload({ minReadySeconds: 30, progressDeadlineSeconds: 30 }), 'spec.progressDeadlineSeconds: Invalid value: 30: must be greater than minReadySeconds'],
    [workload({}, 'Web'), "metadata.name: Invalid value: \"Web\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"],
  ])('refuses %j', (input, message) => {
    expect(refusal(() => create(deployments, input))).toBe(`Deployment.apps "${input.metadata.name}" is invalid: ${message}`);
  });

  it('takes a selector that selects more than the template names (expressions, Exists)', () => {
    const d = create(deployments, workload({ selector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['web', 'api'] }, { key: 'app', operator: 'Exists' }] } }));
    expect(d.spec.selector.matchExpressions).toHaveLength(2);
  });

  it('refuses a changed selector on update (apps/v1), keeps its status, and checks the status subresource', () => {
    const old = create(deployments, workload({ template: template({ app: 'web', tier: 'front' }) }));
    expect(refusal(() => update(deployments, old, { ...old, spec: { ...old.spec, selector: { matchLabels: { app: 'web', tier: 'front' } } } }))).toBe(
      'Deployment.apps "web" is invalid: spec.selector: Invalid value: {"matchLabels":{"app":"web","tier":"front"}}: field is immutable',
    );
    // A main-resource write keeps the stored status, whatever it carries.
    const scaled = update(deployments, old, { ...old, spec: { ...old.spec, replicas: 5 }, status: { replicas: 99 } });
    expect([scaled.spec.replicas, scaled.status]).toEqual([5, {}]);
    // A status write keeps the stored spec.
    const status = { observedGeneration: 1, replicas: 3, updatedReplicas: 3, readyReplicas: 2, availableReplicas: 2, unavailableReplicas: 1, collisionCount: 1 };
    const written = update(deployments, old, { spec: { replicas: 7 }, status }, 'status');
    expect([written.spec.replicas, written.status]).toEqual([1, status]);
    expect(refusal(() => update(deployments, old, { status: { replicas: 1, updatedReplicas: 2, readyReplicas: -1 } }, 'status'))).toBe(
      'Deployment.apps "web" is invalid: [status.readyReplicas: Invalid value: -1: must be greater than or equal to 0, status.updatedReplicas: Invalid value: 2: cannot be greater than status.replicas, status.availableReplicas: Invalid value: 0: cannot be greater than readyReplicas]',
    );
    expect(refusal(() => update(deployments, old, { status: { replicas: 2, readyReplicas: 1, availableReplicas: 2 } }, 'status'))).toBe(
      'Deployment.apps "web" is invalid: status.availableReplicas: Invalid value: 2: cannot be greater than readyReplicas',
    );
    expect(refusal(() => update(deployments, written, { status: { ...status, collisionCount: 0 } }, 'status'))).toBe(
      'Deployment.apps "web" is invalid: status.collisionCount: Invalid value: 0: cannot be decremented',
    );
  });

  it('prints NAME READY UP-TO-DATE AVAILABLE AGE, and CONTAINERS IMAGES SELECTOR wide', () => {
    const d = create(deployments, workload({ replicas: 3, template: template({ app: 'web' }, { containers: [{ name: 'app', image: 'nginx:1.27' }, { name: 'log', image: 'busybox' }] }) }));
    d.status = { replicas: 3, updatedReplicas: 3, readyReplicas: 2, availableReplicas: 1 };
    expect(table(deployments, [d])).toEqual({
      columns: ['Name', 'Ready', 'Up-to-date', 'Available', 'Age', 'Containers', 'Images', 'Selector'],
      types: ['string', 'string', 'string', 'string', 'string', 'string', 'string', 'string'],
      rows: [['web', '2/3', 3, 1, '5m', 'app,log', 'nginx:1.27,busybox', 'app=web']],
    });
  });

  it('scales through its strategy: the Scale names its selector as a string', () => {
    const d = create(deployments, workload({ selector: { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['db'] }] } }));
    deployments.scale!.setReplicas(d, 4);
    expect(deployments.scale!.toScale(d)).toMatchObject({ kind: 'Scale', apiVersion: 'autoscaling/v1', spec: { replicas: 4 }, status: { replicas: 0, selector: 'app=web,tier notin (db)' } });
  });
});

describe('ReplicaSet', () => {
  it('defaults one replica, the pod template and `status: {replicas: 0}`', () => {
    const rs = create(replicaSets, workload({}));
    expect(rs.spec.replicas).toBe(1);
    expect(rs.spec.template.spec.restartPolicy).toBe('Always');
    expect(rs.status).toEqual({ replicas: 0 });
  });

  it.each([
    [workload({ selector: {} }), 'spec.selector: Invalid value: {}: empty selector is invalid for deployment'],
    [workload({ template: template({ app: 'other' }) }), `spec.template.metadata.labels: Invalid value: {"app":"other"}: ${MISMATCH}`],
    [workload({ replicas: -2 }), 'spec.replicas: Invalid value: -2: must be greater than or equal to 0'],
    [workload({ minReadySeconds: -1 }), 'spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0'],
    [workload({ template: template({ app: 'web' }, { restartPolicy: 'OnFailure' }) }), 'spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported values: "Always"'],
    [workload({ template: template({ app: 'web' }, { activeDeadlineSeconds: 1 }) }), 'spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported'],
  ])('refuses %j', (input, message) => {
    expect(refusal(() => create(replicaSets, input))).toBe(`ReplicaSet.apps "web" is invalid: ${message}`);
  });

  it('refuses a changed selector; its status subresource checks the counts', () => {
    const old = create(replicaSets, workload({}));
    expect(refusal(() => update(replicaSets, old, { ...old, spec: { ...old.spec, selector: { matchExpressions: [{ key: 'app', operator: 'Exists' }] } } }))).toBe(
      'ReplicaSet.apps "web" is invalid: spec.selector: Invalid value: {"matchExpressions":[{"key":"app","operator":"Exists"}]}: field is immutable',
    );
    const status = { replicas: 2, fullyLabeledReplicas: 2, readyReplicas: 2, availableReplicas: 1, observedGeneration: 1 };
    expect(update(replicaSets, old, { status }, 'status').status).toEqual(status);
    expect(refusal(() => update(replicaSets, old, { status: { replicas: 1, fullyLabeledReplicas: 2, observedGeneration: -1 } }, 'status'))).toBe(
      'ReplicaSet.apps "web" is invalid: [status.observedGeneration: Invalid value: -1: must be greater than or equal to 0, status.fullyLabeledReplicas: Invalid value: 2: cannot be greater than status.replicas]',
    );
  });

  it('prints NAME DESIRED CURRENT READY AGE, and CONTAINERS IMAGES SELECTOR wide', () => {
    const rs = create(replicaSets, workload({ replicas: 3 }));
    rs.status = { replicas: 2, readyReplicas: 1 };
    expect(table(replicaSets, [rs])).toEqual({
      columns: ['Name', 'Desired', 'Current', 'Ready', 'Age', 'Containers', 'Images', 'Selector'],
      types: ['string', 'integer', 'integer', 'integer', 'string', 'string', 'string', 'string'],
      rows: [['web', 3, 2, 1, '5m', 'app', 'nginx:1.27', 'app=web']],
    });
  });
});

describe('DaemonSet', () => {
  const TG = 'deprecated.daemonset.template.generation';

  it('defaults a RollingUpdate of maxUnavailable 1, maxSurge 0, 10 revisions, and the counts Go always writes', () => {
    const ds = create(daemonSets, workload({}));
    expect(ds.spec.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } });
    expect(ds.spec.revisionHistoryLimit).toBe(10);
    expect(ds.spec.template.spec.dnsPolicy).toBe('ClusterFirst');
    expect(ds.status).toEqual({ currentNumberScheduled: 0, numberMisscheduled: 0, desiredNumberScheduled: 0, numberReady: 0 });
    expect(create(daemonSets, workload({ updateStrategy: { type: 'OnDelete' } })).spec.updateStrategy).toEqual({ type: 'OnDelete' });
  });

  it('carries its template generation in the deprecated.daemonset.template.generation annotation, moved on by template changes only', () => {
    const ds = create(daemonSets, workload({}));
    expect(ds.metadata.annotations).toEqual({ [TG]: '1' });
    // A client cannot set it: on update it is the stored one, plus one when the template changed.
    const same = update(daemonSets, ds, { ...ds, metadata: { ...ds.metadata, annotations: { [TG]: '7', note: 'x' } }, spec: { ...ds.spec, minReadySeconds: 5 } });
    expect(same.metadata.annotations).toEqual({ [TG]: '1', note: 'x' });
    const changed = update(daemonSets, same, { ...same, spec: { ...same.spec, template: template({ app: 'web' }, { containers: [{ name: 'app', image: 'nginx:1.28' }] }) } });
    expect(changed.metadata.annotations![TG]).toBe('2');
    // A PUT leaving out the template's defaulted fields is no change.
    expect(update(daemonSets, changed, { ...changed, spec: { ...changed.spec, template: template({ app: 'web' }, { containers: [{ name: 'app', image: 'nginx:1.28' }] }) } }).metadata.annotations![TG]).toBe('2');
    // A status write leaves metadata alone.
    expect(update(daemonSets, changed, { status: { ...changed.status, numberReady: 0 } }, 'status').metadata.annotations![TG]).toBe('2');
  });

  it.each([
    // A DaemonSet's selector is not "Required": a missing one selects nothing, so its template never matches.
    [workload({ selector: undefined }), `spec.template.metadata.labels: Invalid value: {"app":"web"}: ${MISMATCH}`],
    [workload({ selector: {} }), 'spec.selector: Invalid value: {}: empty selector is invalid for daemonset'],
    [workload({ template: template({ app: 'other' }) }), `spec.template.metadata.labels: Invalid value: {"app":"other"}: ${MISMATCH}`],
    [workload({ template: template({ app: 'web' }, { restartPolicy: 'Never' }) }), 'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"'],
    [workload({ template: template({ app: 'web' }, { activeDeadlineSeconds: 9 }) }), 'spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in DaemonSet is not Supported'],
    [workload({ updateStrategy: { rollingUpdate: { maxUnavailable: 1, maxSurge: 1 } } }), 'spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when maxUnavailable is non-zero'],
    [workload({ updateStrategy: { rollingUpdate: { maxUnavailable: 0, maxSurge: '0%' } } }), 'spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0'],
    [workload({ updateStrategy: { rollingUpdate: { maxUnavailable: 0, maxSurge: '101%' } } }), 'spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: "101%": must not be greater than 100%'],
    // "one" is not a percent, so its value counts as 0 (IntValue), as maxSurge's 0 does.
    [
      workload({ updateStrategy: { rollingUpdate: { maxUnavailable: 'one' } } }),
      `[spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: "one": ${PERCENT_MSG}, spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0]`,
    ],
    [workload({ updateStrategy: { type: 'Always' } }), 'spec.updateStrategy: Unsupported value: {"Type":"Always","RollingUpdate":null}: supported values: "RollingUpdate", "OnDelete"'],
    [workload({ minReadySeconds: -1 }), 'spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0'],
    [workload({ revisionHistoryLimit: -3 }), 'spec.revisionHistoryLimit: Invalid value: -3: must be greater than or equal to 0'],
  ])('refuses %j', (input, message) => {
    expect(refusal(() => create(daemonSets, input))).toBe(`DaemonSet.apps "web" is invalid: ${message}`);
  });

  it('takes OnDelete with a rollingUpdate (only RollingUpdate checks it) and surge-only rolling updates', () => {
    expect(create(daemonSets, workload({ updateStrategy: { type: 'OnDelete', rollingUpdate: { maxUnavailable: 0 } } })).spec.updateStrategy.type).toBe('OnDelete');
    expect(create(daemonSets, workload({ updateStrategy: { rollingUpdate: { maxUnavailable: 0, maxSurge: '10%' } } })).spec.updateStrategy.rollingUpdate).toEqual({ maxUnavailable: 0, maxSurge: '10%' });
  });

  it('refuses a changed selector; its status subresource checks the counts and the collision count', () => {
    const old = create(daemonSets, workload({}));
    expect(refusal(() => update(daemonSets, old, { ...old, spec: { ...old.spec, selector: { matchLabels: { app: 'web', x: 'y' } }, template: template({ app: 'web', x: 'y' }) } }))).toBe(
      'DaemonSet.apps "web" is invalid: spec.selector: Invalid value: {"matchLabels":{"app":"web","x":"y"}}: field is immutable',
    );
    const status = { currentNumberScheduled: 2, numberMisscheduled: 0, desiredNumberScheduled: 2, numberReady: 1, observedGeneration: 1, updatedNumberScheduled: 2, numberAvailable: 1, numberUnavailable: 1, collisionCount: 2 };
    const written = update(daemonSets, old, { status }, 'status');
    expect(written.status).toEqual(status);
    expect(refusal(() => update(daemonSets, written, { status: { ...status, numberUnavailable: -1, collisionCount: undefined } }, 'status'))).toBe(
      'DaemonSet.apps "web" is invalid: [status.numberUnavailable: Invalid value: -1: must be greater than or equal to 0, status.collisionCount: Invalid value: 0: cannot be decremented]',
    );
  });

  it('prints NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE, and CONTAINERS IMAGES SELECTOR wide', () => {
    const plain = create(daemonSets, workload({}, 'plain'));
    const linux = create(daemonSets, workload({ template: template({ app: 'web' }, { nodeSelector: { 'kubernetes.io/os': 'linux', disk: 'ssd' } }) }, 'linux'));
    linux.status = { desiredNumberScheduled: 3, currentNumberScheduled: 3, numberReady: 2, updatedNumberScheduled: 3, numberAvailable: 2, numberMisscheduled: 0 };
    expect(table(daemonSets, [plain, linux])).toEqual({
      columns: ['Name', 'Desired', 'Current', 'Ready', 'Up-to-date', 'Available', 'Node Selector', 'Age', 'Containers', 'Images', 'Selector'],
      types: ['string', 'integer', 'integer', 'integer', 'integer', 'integer', 'string', 'string', 'string', 'string', 'string'],
      rows: [
        ['plain', 0, 0, 0, 0, 0, '<none>', '5m', 'app', 'nginx:1.27', 'app=web'],
        ['linux', 3, 3, 2, 3, 2, 'disk=ssd,kubernetes.io/os=linux', '5m', 'app', 'nginx:1.27', 'app=web'],
      ],
    });
  });
});

describe('StatefulSet', () => {
  const sts = (spec: Obj, name = 'db') => workload({ serviceName: 'db', ...spec }, name);

  it('defaults OrderedReady, a RollingUpdate from partition 0, Retain/Retain, one replica, 10 revisions and its claim templates', () => {
    const ss = create(statefulSets, sts({ volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }] }));
    expect(ss.spec).toMatchObject({
      replicas: 1,
      podManagementPolicy: 'OrderedReady',
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } },
      persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
      revisionHistoryLimit: 10,
      template: { spec: { restartPolicy: 'Always', schedulerName: 'default-scheduler' } },
    });
    // SetDefaults_PersistentVolumeClaim and ...ClaimSpec on each claim template, as kube shows them.
    expect(ss.spec.volumeClaimTemplates).toEqual([
      { metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, volumeMode: 'Filesystem' }, status: { phase: 'Pending' } },
    ]);
    expect(ss.status).toEqual({ replicas: 0, availableReplicas: 0 });
    // OnDelete gets no rollingUpdate; an explicit RollingUpdate without one gets none either (kube defaults it only with the type).
    expect(create(statefulSets, sts({ updateStrategy: { type: 'OnDelete' } })).spec.updateStrategy).toEqual({ type: 'OnDelete' });
    expect(create(statefulSets, sts({ updateStrategy: { type: 'RollingUpdate' } })).spec.updateStrategy).toEqual({ type: 'RollingUpdate' });
  });

  it('drops rollingUpdate.maxUnavailable (MaxUnavailableStatefulSet is an alpha gate, off)', () => {
    expect(create(statefulSets, sts({ updateStrategy: { rollingUpdate: { partition: 2, maxUnavailable: 2 } } })).spec.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { partition: 2 } });
  });

  it.each([
    // A DNS label, not a subdomain: the name becomes its pods' hostnames.
    [sts({}, 'db.main'), 'metadata.name: Invalid value: "db.main": must not contain dots'],
    [sts({ podManagementPolicy: 'Random' }), "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'"],
    [sts({ updateStrategy: { type: 'Canary' } }), 'spec.updateStrategy: Invalid value: {"Type":"Canary","RollingUpdate":null}: must be \'RollingUpdate\' or \'OnDelete\''],
    [sts({ updateStrategy: { type: 'OnDelete', rollingUpdate: { partition: 1 } } }), 'spec.updateStrategy.rollingUpdate: Invalid value: {"Partition":1,"MaxUnavailable":null}: only allowed for updateStrategy \'RollingUpdate\''],
    [sts({ updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: -1 } } }), 'spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or equal to 0'],
    [sts({ persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Keep' } }), 'spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: "Keep": supported values: "Retain", "Delete"'],
    [sts({ replicas: -1 }), 'spec.replicas: Invalid value: -1: must be greater than or equal to 0'],
    [sts({ minReadySeconds: -1 }), 'spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0'],
    [sts({ ordinals: { start: -1 } }), 'spec.ordinals.start: Invalid value: -1: must be greater than or equal to 0'],
    [sts({ selector: undefined }), `[spec.selector: Required value, spec.template.metadata.labels: Invalid value: {"app":"web"}: ${MISMATCH}]`],
    [sts({ selector: {} }), 'spec.selector: Invalid value: {}: empty selector is invalid for statefulset'],
    [sts({ template: template({ app: 'other' }) }), `spec.template.metadata.labels: Invalid value: {"app":"other"}: ${MISMATCH}`],
    [sts({ template: template({ app: 'web' }, { restartPolicy: 'Never' }) }), 'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"'],
    [sts({ template: template({ app: 'web' }, { activeDeadlineSeconds: 5 }) }), 'spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in StatefulSet is not Supported'],
  ])('refuses %j', (input, message) => {
    expect(refusal(() => create(statefulSets, input))).toBe(`StatefulSet.apps "${input.metadata.name}" is invalid: ${message}`);
  });

  it('does not check its pod template as a PodSpec, nor its serviceName (as Kubernetes 1.32)', () => {
    expect(create(statefulSets, sts({ serviceName: 'Not_A_Label', template: template({ app: 'web' }, { containers: [{ name: 'app' }] }) })).spec.serviceName).toBe('Not_A_Label');
  });

  it('updates replicas, ordinals, template, updateStrategy, the retention policy and minReadySeconds only', () => {
    const old = create(statefulSets, sts({}));
    const next = update(statefulSets, old, {
      ...old,
      spec: {
        ...old.spec,
        replicas: 3,
        ordinals: { start: 1 },
        minReadySeconds: 5,
        updateStrategy: { type: 'OnDelete' },
        persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Delete', whenScaled: 'Retain' },
        template: template({ app: 'web' }, { containers: [{ name: 'app', image: 'nginx:1.28' }] }),
      },
    });
    expect(next.spec).toMatchObject({ replicas: 3, ordinals: { start: 1 }, minReadySeconds: 5, updateStrategy: { type: 'OnDelete' } });
    for (const change of [{ serviceName: 'other' }, { podManagementPolicy: 'Parallel' }, { revisionHistoryLimit: 3 }, { selector: { matchLabels: { app: 'web', v: '2' } }, template: template({ app: 'web', v: '2' }) }]) {
      expect(refusal(() => update(statefulSets, old, { ...old, spec: { ...old.spec, ...change } }))).toBe(
        "StatefulSet.apps \"db\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
      );
    }
  });

  it('keeps maxUnavailable on update only where the stored object has it', () => {
    const old = create(statefulSets, sts({}));
    const next = update(statefulSets, old, { ...old, spec: { ...old.spec, updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0, maxUnavailable: 2 } } } });
    expect(next.spec.updateStrategy.rollingUpdate).toEqual({ partition: 0 });
  });

  it('checks the status subresource', () => {
    const old = create(statefulSets, sts({ replicas: 3 }));
    const status = { replicas: 3, readyReplicas: 3, currentReplicas: 3, updatedReplicas: 3, availableReplicas: 2, observedGeneration: 1, collisionCount: 0, currentRevision: 'db-1', updateRevision: 'db-1' };
    expect(update(statefulSets, old, { status }, 'status').status).toEqual(status);
    expect(refusal(() => update(statefulSets, old, { status: { replicas: 1, readyReplicas: 1, availableReplicas: 2, currentReplicas: -1 } }, 'status'))).toBe(
      'StatefulSet.apps "db" is invalid: [status.currentReplicas: Invalid value: -1: must be greater than or equal to 0, status.availableReplicas: Invalid value: 2: cannot be greater than status.replicas, status.availableReplicas: Invalid value: 2: cannot be greater than status.readyReplicas]',
    );
  });

  it('prints NAME READY AGE, and CONTAINERS IMAGES wide', () => {
    const ss = create(statefulSets, sts({ replicas: 3 }));
    ss.status = { replicas: 3, readyReplicas: 1, availableReplicas: 1 };
    expect(table(statefulSets, [ss])).toEqual({
      columns: ['Name', 'Ready', 'Age', 'Containers', 'Images'],
      types: ['string', 'string', 'string', 'string', 'string'],
      rows: [['db', '1/3', '5m', 'app', 'nginx:1.27']],
    });
  });
});

describe('ControllerRevision', () => {
  const rev = (extra: Obj, name = 'web-5d8f') => ({ metadata: { name, namespace: 'default' }, ...extra });
  const data = { spec: { template: { $patch: 'replace', spec: { containers: [{ name: 'app', image: 'nginx' }] } } } };

  it.each([
    [rev({ revision: 1 }), 'data: Required value: data is mandatory'],
    [rev({ data, revision: -1 }), 'revision: Invalid value: -1: must be greater than or equal to 0'],
    [
      rev({ data, revision: 1 }, 'Web'),
      "metadata.name: Invalid value: \"Web\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    ],
  ])('refuses %j', (input, message) => {
    expect(refusal(() => create(revisions, input))).toBe(`ControllerRevision.apps "${input.metadata.name}" is invalid: ${message}`);
  });

  it('never changes its data; its revision and metadata may change', () => {
    const old = create(revisions, rev({ data, revision: 1 }));
    expect(update(revisions, old, { ...old, revision: 4, metadata: { ...old.metadata, labels: { a: 'b' } } }).revision).toBe(4);
    expect(refusal(() => update(revisions, old, { ...old, data: { spec: {} } }))).toBe('ControllerRevision.apps "web-5d8f" is invalid: data: Invalid value: {"spec":{}}: field is immutable');
  });

  it('prints NAME CONTROLLER REVISION AGE, the controller as kind.group/name', () => {
    const owned = create(
      revisions,
      rev({ data, revision: 3, metadata: { name: 'agent-7c9', namespace: 'default', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'agent', uid: 'u', controller: true }] } }),
    );
    const orphan = create(revisions, rev({ data, revision: 1 }, 'orphan-1'));
    expect(table(revisions, [owned, orphan])).toEqual({
      columns: ['Name', 'Controller', 'Revision', 'Age'],
      types: ['string', 'string', 'string', 'string'],
      rows: [
        ['agent-7c9', 'daemonset.apps/agent', 3, '5m'],
        ['orphan-1', '<none>', 1, '5m'],
      ],
    });
  });
});
