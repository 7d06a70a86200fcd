// storage.k8s.io/v1 StorageClass (lambdas/kinds/storage/storageclass.ts): found by the registry, defaults,
// kube-apiserver's validation messages (pkg/apis/storage/validation) and the kubectl get columns.

import { describe, expect, it } from 'vitest';
import { findKind } from '../lambdas/kinds/index.ts';
import { create, refusal, strategyOf, table, update } from './support/kinds.ts';

const scs = strategyOf('storage.k8s.io', 'v1', 'storageclasses');
const sc = (extra: Record<string, unknown>, name = 'fast') => ({ metadata: { name }, provisioner: 'ebs.csi.aws.com', ...extra });

describe('StorageClass', () => {
  it('is cluster-scoped, short name sc, found by kind', () => {
    expect(findKind('storage.k8s.io/v1', 'StorageClass')).toBe(scs.info);
    expect(scs.info).toMatchObject({ namespaced: false, shortNames: ['sc'] });
  });

  it('defaults reclaimPolicy Delete and volumeBindingMode Immediate', () => {
    expect(create(scs, sc({}))).toMatchObject({ reclaimPolicy: 'Delete', volumeBindingMode: 'Immediate' });
    const o = create(scs, sc({ reclaimPolicy: 'Retain', volumeBindingMode: 'WaitForFirstConsumer', parameters: { type: 'gp3' }, allowedTopologies: [{ matchLabelExpressions: [{ key: 'topology.kubernetes.io/zone', values: ['a', 'b'] }] }] }));
    expect(o).toMatchObject({ reclaimPolicy: 'Retain', volumeBindingMode: 'WaitForFirstConsumer' });
  });

  it.each([
    [sc({ provisioner: undefined }), 'provisioner: Required value'],
    [
      sc({ provisioner: 'a/b/c' }),
      "provisioner: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
    ],
    [sc({ reclaimPolicy: 'Recycle' }), 'reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain"'],
    [sc({ volumeBindingMode: 'Later' }), 'volumeBindingMode: Unsupported value: "Later": supported values: "Immediate", "WaitForFirstConsumer"'],
    [sc({ parameters: { '': 'x' } }), 'parameters: Invalid value: "": field can not be empty.'],
    [sc({ parameters: Object.fromEntries(Array.from({ length: 513 }, (_, i) => [`k${i}`, 'v'])) }), 'parameters: Too long: may not be more than 512 bytes'],
    [sc({ allowedTopologies: [{ matchLabelExpressions: [{ key: 'zone', values: [] }] }] }), 'allowedTopologies[0].matchLabelExpressions[0].values: Required value'],
    [sc({ allowedTopologies: [{ matchLabelExpressions: [{ key: 'zone', values: ['a', 'a'] }] }] }), 'allowedTopologies[0].matchLabelExpressions[0].values[1]: Duplicate value: "a"'],
    [
      sc({ allowedTopologies: [{ matchLabelExpressions: [{ key: 'zone', values: ['a'] }] }, { matchLabelExpressions: [{ key: 'zone', values: ['a'] }] }] }),
      'allowedTopologies[1].matchLabelExpressions: Duplicate value: ""',
    ],
  ])('refuses %j', (input, message) => {
    expect(refusal(() => create(scs, input))).toBe(`StorageClass.storage.k8s.io "fast" is invalid: ${message}`);
  });

  it('keeps provisioner, parameters, reclaimPolicy and volumeBindingMode; other fields may change', () => {
    const old = create(scs, sc({ parameters: { type: 'gp3' } }));
    expect(update(scs, old, sc({ parameters: { type: 'gp3' }, allowVolumeExpansion: true, reclaimPolicy: 'Delete', volumeBindingMode: 'Immediate' })).allowVolumeExpansion).toBe(true);
    expect(refusal(() => update(scs, old, sc({ parameters: { type: 'io2' }, provisioner: 'x.io', reclaimPolicy: 'Retain', volumeBindingMode: 'WaitForFirstConsumer' })))).toBe(
      'StorageClass.storage.k8s.io "fast" is invalid: [parameters: Forbidden: updates to parameters are forbidden., provisioner: Forbidden: updates to provisioner are forbidden., reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden., volumeBindingMode: Invalid value: "WaitForFirstConsumer": field is immutable]',
    );
  });

  it('prints Name (marked "(default)"), Provisioner, ReclaimPolicy, VolumeBindingMode, AllowVolumeExpansion and Age', () => {
    const def = create(scs, { ...sc({ allowVolumeExpansion: true }, 'standard'), metadata: { name: 'standard', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } } });
    const t = table(scs, [def, create(scs, sc({ reclaimPolicy: 'Retain', volumeBindingMode: 'WaitForFirstConsumer' }))]);
    expect(t.columns).toEqual(['Name', 'Provisioner', 'ReclaimPolicy', 'VolumeBindingMode', 'AllowVolumeExpansion', 'Age']);
    expect(t.rows).toEqual([
      ['standard (default)', 'ebs.csi.aws.com', 'Delete', 'Immediate', true, '5m'],
      ['fast', 'ebs.csi.aws.com', 'Retain', 'WaitForFirstConsumer', false, '5m'],
    ]);
  });
});
