// v1 PersistentVolume and PersistentVolumeClaim (lambdas/kinds/core/persistentvolume*.ts): found by the
// registry, defaults, kube-apiserver's validation messages (pkg/apis/core/validation), update rules and
// the kubectl get columns (printers.go); and the storage admission plugins (DefaultStorageClass,
// StorageObjectInUseProtection) on a real store.

import { describe, expect, it } from 'vitest';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { findKind } from '../lambdas/kinds/index.ts';
import { ensureDefaultStorageClass } from '../lambdas/kinds/storage/storageclass.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import { SqliteBackend } from '../lambdas/storage/sqlite.ts';
import { create, refusal, strategyOf, table, update } from './support/kinds.ts';

const pvs = strategyOf('', 'v1', 'persistentvolumes');
const pvcs = strategyOf('', 'v1', 'persistentvolumeclaims');

const pv = (spec: Record<string, unknown>, name = 'pv1') => ({
  metadata: { name },
  spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], hostPath: { path: '/data/pv1' }, ...spec },
});
const pvc = (spec: Record<string, unknown>, name = 'data') => ({
  metadata: { name, namespace: 'default' },
  spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, ...spec },
});
const affinity = { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['n1'] }] }] } };

describe('PersistentVolume', () => {
  it('is cluster-scoped, short name pv, with a status subresource', () => {
    expect(findKind('v1', 'PersistentVolume')).toBe(pvs.info);
    expect(pvs.info).toMatchObject({ namespaced: false, shortNames: ['pv'], subresources: ['status'] });
  });

  it('defaults reclaim policy Retain, volume mode Filesystem, hostPath type "" and phase Pending', () => {
    const o = create(pvs, pv({}));
    expect(o.spec).toMatchObject({ persistentVolumeReclaimPolicy: 'Retain', volumeMode: 'Filesystem', hostPath: { path: '/data/pv1', type: '' } });
    expect(o.status.phase).toBe('Pending');
    expect(create(pvs, pv({ persistentVolumeReclaimPolicy: 'Delete', volumeMode: 'Block' })).spec).toMatchObject({ persistentVolumeReclaimPolicy: 'Delete', volumeMode: 'Block' });
    // A local volume with node affinity is valid.
    expect(create(pvs, pv({ hostPath: undefined, local: { path: '/mnt/disk' }, nodeAffinity: affinity })).spec.local.path).toBe('/mnt/disk');
  });

  it.each([
    [pv({ accessModes: [] }), 'spec.accessModes: Required value'],
    [pv({ accessModes: ['ReadWriteSometimes'] }), 'spec.accessModes: Unsupported value: "ReadWriteSometimes": supported values: "ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"'],
    [pv({ accessModes: ['ReadWriteOncePod', 'ReadWriteOnce'] }), 'spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes'],
    [pv({ capacity: {} }), '[spec.capacity: Required value, spec.capacity: Unsupported value: {}: supported values: "storage"]'],
    [pv({ capacity: { storage: '1Gi', cpu: '1' } }), 'spec.capacity: Unsupported value: {"cpu":"1","storage":"1Gi"}: supported values: "storage"'],
    [pv({ capacity: { storage: '0' } }), 'spec.capacity[storage]: Invalid value: "0": must be greater than zero'],
    [pv({ persistentVolumeReclaimPolicy: 'Keep' }), 'spec.persistentVolumeReclaimPolicy: Unsupported value: "Keep": supported values: "Delete", "Recycle", "Retain"'],
    [pv({ hostPath: undefined }), 'spec: Required value: must specify a volume type'],
    [pv({ nfs: { server: 'nfs.local', path: '/exports' } }), 'spec.nfs: Forbidden: may not specify more than 1 volume type'],
    [pv({ hostPath: { path: '/data/../etc' } }), 'spec.hostPath.path: Invalid value: "/data/../etc": must not contain \'..\''],
    [pv({ hostPath: { path: '/data', type: 'Folder' } }), 'spec.hostPath.type: Unsupported value: "Folder": supported values: "", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"'],
    [pv({ hostPath: undefined, local: { path: '/mnt/disk' } }), 'spec.nodeAffinity: Required value: Local volume requires node affinity'],
    [pv({ nodeAffinity: {} }), 'spec.nodeAffinity.required: Required value: must specify required node constraints'],
    [pv({ storageClassName: 'Fast' }), `spec.storageClassName: Invalid value: "Fast": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`],
    [pv({ volumeMode: 'Raw' }), 'spec.volumeMode: Unsupported value: "Raw": supported values: "Block", "Filesystem"'],
  ])('refuses %j', (input, message) => {
    expect(refusal(() => create(pvs, input))).toBe(`PersistentVolume "pv1" is invalid: ${message}`);
  });

  it('keeps its volume source and volume mode; the status subresource moves the phase', () => {
    const old = create(pvs, pv({}));
    expect(update(pvs, old, pv({ persistentVolumeReclaimPolicy: 'Delete' })).spec.persistentVolumeReclaimPolicy).toBe('Delete');
    expect(refusal(() => update(pvs, old, pv({ hostPath: { path: '/elsewhere' } })))).toBe(
      'PersistentVolume "pv1" is invalid: spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation',
    );
    expect(refusal(() => update(pvs, old, pv({ volumeMode: 'Block' })))).toBe('PersistentVolume "pv1" is invalid: volumeMode: Invalid value: "Block": field is immutable');
    // Node affinity may be set once, never changed.
    const pinned = update(pvs, old, pv({ nodeAffinity: affinity }));
    expect(pinned.spec.nodeAffinity).toEqual(affinity);
    expect(refusal(() => update(pvs, pinned, pv({ nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['n2'] }] }] } } })))).toMatch(
      /^PersistentVolume "pv1" is invalid: nodeAffinity: Invalid value: .*: field is immutable, except for updating from beta label to GA$/,
    );
    const released = update(pvs, old, { ...old, status: { phase: 'Released' } }, 'status');
    expect(released.status.phase).toBe('Released');
    expect(released.status.lastPhaseTransitionTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  it('prints NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS VOLUMEATTRIBUTESCLASS REASON AGE (and VolumeMode wide)', () => {
    const bound = create(pvs, pv({ capacity: { storage: '1024Mi' }, accessModes: ['ReadWriteOnce', 'ReadOnlyMany'], storageClassName: 'manual', claimRef: { namespace: 'default', name: 'data' } }));
    bound.status = { phase: 'Bound' };
    const t = table(pvs, [bound]);
    expect(t.columns).toEqual(['Name', 'Capacity', 'Access Modes', 'Reclaim Policy', 'Status', 'Claim', 'StorageClass', 'VolumeAttributesClass', 'Reason', 'Age', 'VolumeMode']);
    expect(t.rows).toEqual([['pv1', '1Gi', 'RWO,ROX', 'Retain', 'Bound', 'default/data', 'manual', '<unset>', '', '5m', 'Filesystem']]);
  });
});

describe('PersistentVolumeClaim', () => {
  it('is namespaced, short name pvc, with a status subresource', () => {
    expect(findKind('v1', 'PersistentVolumeClaim')).toBe(pvcs.info);
    expect(pvcs.info).toMatchObject({ namespaced: true, shortNames: ['pvc'], subresources: ['status'] });
  });

  it('defaults volume mode Filesystem and phase Pending', () => {
    const o = create(pvcs, pvc({}));
    expect(o.spec.volumeMode).toBe('Filesystem');
    expect(o.status).toEqual({ phase: 'Pending' });
  });

  it.each([
    [pvc({ accessModes: [] }), 'spec.accessModes: Required value: at least 1 access mode is required'],
    [pvc({ accessModes: ['Sometimes'] }), 'spec.accessModes: Unsupported value: "Sometimes": supported values: "ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"'],
    [pvc({ accessModes: ['ReadWriteOncePod', 'ReadWriteMany'] }), 'spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes'],
    [pvc({ resources: {} }), 'spec.resources[storage]: Required value'],
    [pvc({ resources: { requests: { storage: '0' } } }), 'spec.resources[storage]: Invalid value: "0": must be greater than zero'],
    [pvc({ resources: { requests: { storage: '-1Gi' } } }), 'spec.resources[storage]: Invalid value: "-1Gi": must be greater than zero'],
    [pvc({ storageClassName: 'Fast_' }), `spec.storageClassName: Invalid value: "Fast_": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`],
    [pvc({ volumeMode: 'Raw' }), 'spec.volumeMode: Unsupported value: "Raw": supported values: "Block", "Filesystem"'],
    [pvc({ dataSource: { kind: 'Snapshot', name: 's' } }), 'spec.dataSource: Invalid value: "Snapshot": must be \'PersistentVolumeClaim\' when referencing the default apiGroup'],
    [pvc({ selector: { matchExpressions: [{ key: 'tier', operator: 'In' }] } }), 'spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is \'In\' or \'NotIn\''],
  ])('refuses %j', (input, message) => {
    expect(refusal(() => create(pvcs, input))).toBe(`PersistentVolumeClaim "data" is invalid: ${message}`);
  });

  it('is immutable after creation but for volumeName once, storageClassName from unset, and a larger request once bound', () => {
    const old = create(pvcs, pvc({}));
    expect(update(pvcs, old, pvc({ volumeName: 'pv1' })).spec.volumeName).toBe('pv1');
    expect(update(pvcs, old, pvc({ storageClassName: 'local-path' })).spec.storageClassName).toBe('local-path');
    expect(refusal(() => update(pvcs, old, pvc({ accessModes: ['ReadWriteMany'] })))).toBe(
      'PersistentVolumeClaim "data" is invalid: spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims',
    );
    // Pending: even a larger request is refused.
    expect(refusal(() => update(pvcs, old, pvc({ resources: { requests: { storage: '2Gi' } } })))).toMatch(/spec: Forbidden: spec is immutable after creation/);
    const bound = update(pvcs, update(pvcs, old, pvc({ volumeName: 'pv1' })), { ...old, spec: { ...old.spec, volumeName: 'pv1' }, status: { phase: 'Bound' } }, 'status');
    expect(update(pvcs, bound, pvc({ volumeName: 'pv1', resources: { requests: { storage: '2Gi' } } })).spec.resources.requests.storage).toBe('2Gi');
    expect(refusal(() => update(pvcs, bound, pvc({ volumeName: 'pv1', resources: { requests: { storage: '500Mi' } } })))).toBe(
      'PersistentVolumeClaim "data" is invalid: spec.resources.requests.storage: Forbidden: field can not be less than previous value',
    );
    expect(refusal(() => update(pvcs, bound, pvc({ volumeName: 'pv2' })))).toMatch(/spec: Forbidden: spec is immutable after creation/);
    // The VolumeAttributesClass gate is off in 1.32: a bound claim's class change is refused for that alone.
    expect(refusal(() => update(pvcs, bound, pvc({ volumeName: 'pv1', volumeAttributesClassName: 'gold' })))).toBe(
      'PersistentVolumeClaim "data" is invalid: spec.volumeAttributesClassName: Forbidden: update is forbidden when the VolumeAttributesClass feature gate is disabled',
    );
  });

  it('prints NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS VOLUMEATTRIBUTESCLASS AGE (and VolumeMode wide)', () => {
    const pending = create(pvcs, pvc({ storageClassName: 'local-path' }));
    const bound = create(pvcs, pvc({ storageClassName: 'local-path', volumeName: 'pvc-1' }, 'db'));
    bound.status = { phase: 'Bound', accessModes: ['ReadWriteOnce'], capacity: { storage: '2Gi' } };
    const t = table(pvcs, [pending, bound]);
    expect(t.columns).toEqual(['Name', 'Status', 'Volume', 'Capacity', 'Access Modes', 'StorageClass', 'VolumeAttributesClass', 'Age', 'VolumeMode']);
    expect(t.rows).toEqual([
      ['data', 'Pending', '', '', '', 'local-path', '<unset>', '5m', 'Filesystem'],
      ['db', 'Bound', 'pvc-1', '2Gi', 'RWO', 'local-path', '<unset>', '5m', 'Filesystem'],
    ]);
  });
});

describe('storage admission', () => {
  it('gives a claim naming no class the default class, leaves "" and named classes alone, and adds the protection finalizers', async () => {
    const api = new ApiServer({ backend: new SqliteBackend(':memory:') });
    const ctx = api.controllerContext();
    const claims = findResource('', 'v1', 'persistentvolumeclaims')!;
    const volumes = findResource('', 'v1', 'persistentvolumes')!;
    const scs = findResource('storage.k8s.io', 'v1', 'storageclasses')!;
    await ctx.registry.create(findResource('', 'v1', 'namespaces')!, undefined, { metadata: { name: 'default' } });
    // No default class yet: nothing is filled in.
    expect((await ctx.create(claims, 'default', pvc({}, 'before'))).spec.storageClassName).toBeUndefined();
    await ensureDefaultStorageClass(ctx.registry);
    await ensureDefaultStorageClass(ctx.registry); // a restart: already there
    const c = await ctx.create(claims, 'default', pvc({}, 'after'));
    expect(c.spec.storageClassName).toBe('local-path');
    expect(c.metadata.finalizers).toEqual(['kubernetes.io/pvc-protection']);
    expect((await ctx.create(claims, 'default', pvc({ storageClassName: '' }, 'none'))).spec.storageClassName).toBe('');
    expect((await ctx.create(claims, 'default', pvc({ storageClassName: 'missing' }, 'named'))).spec.storageClassName).toBe('missing');
    // Of two defaults, the newer one.
    await new Promise((r) => setTimeout(r, 1100));
    await ctx.registry.create(scs, undefined, { metadata: { name: 'newer', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } }, provisioner: 'example.com/x' });
    expect((await ctx.create(claims, 'default', pvc({}, 'latest'))).spec.storageClassName).toBe('newer');
    const v = await ctx.create(volumes, undefined, pv({}) as any);
    expect(v.metadata.finalizers).toEqual(['kubernetes.io/pv-protection']);
    const sc = await ctx.registry.get(scs, undefined, 'local-path');
    expect(sc).toMatchObject({ provisioner: 'rancher.io/local-path', reclaimPolicy: 'Delete', volumeBindingMode: 'WaitForFirstConsumer', metadata: { annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } } });
  });
});
