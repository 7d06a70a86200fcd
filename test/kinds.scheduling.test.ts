// scheduling.k8s.io/v1 PriorityClass (lambdas/kinds/scheduling/priorityclass.ts): defaults, kube-apiserver's
// validation messages (pkg/apis/scheduling/validation), the kubectl get columns, and the Priority admission
// plugin (apiserver/admission-priority.ts) on a real store: a pod's priorityClassName resolved to its
// priority, an unknown class refused, the globalDefault class applied, one default only.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { priorityAdmission } from '../lambdas/apiserver/admission-priority.ts';
import { Registry } from '../lambdas/apiserver/registry.ts';
import { SYSTEM_PRIORITY_CLASSES, systemPriorityClass } from '../lambdas/kinds/scheduling/priorityclass.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import { ApiError } from '../lambdas/machinery/status.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { SqliteBackend } from '../lambdas/storage/sqlite.ts';
import { create, refusal, strategyOf, table, update } from './support/kinds.ts';

const pcs = strategyOf('scheduling.k8s.io', 'v1', 'priorityclasses');
const pc = (name: string, extra: Record<string, unknown> = {}) => ({ metadata: { name }, ...extra });

describe('PriorityClass', () => {
  it('is cluster-scoped, short name pc', () => {
    expect(pcs.info).toMatchObject({ kind: 'PriorityClass', namespaced: false, shortNames: ['pc'], listKind: 'PriorityClassList' });
  });

  it('defaults preemptionPolicy to PreemptLowerPriority and a missing value to 0', () => {
    expect(create(pcs, pc('low'))).toMatchObject({ value: 0, preemptionPolicy: 'PreemptLowerPriority' });
    expect(create(pcs, pc('np', { value: 5, preemptionPolicy: 'Never' }))).toMatchObject({ value: 5, preemptionPolicy: 'Never' });
  });

  it('accepts the system classes exactly as kube creates them', () => {
    for (const c of SYSTEM_PRIORITY_CLASSES) expect(create(pcs, systemPriorityClass(c))).toMatchObject({ value: c.value });
    expect(SYSTEM_PRIORITY_CLASSES.map((c) => [c.name, c.value])).toEqual([
      ['system-node-critical', 2000001000],
      ['system-cluster-critical', 2000000000],
    ]);
  });

  it.each([
    [pc('high', { value: 1000000001 }), 'PriorityClass.scheduling.k8s.io "high" is invalid: value: Forbidden: maximum allowed value of a user defined priority is 1000000000'],
    [
      pc('system-mine', { value: 10 }),
      "PriorityClass.scheduling.k8s.io \"system-mine\" is invalid: metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class",
    ],
    [
      pc('system-node-critical', { value: 10 }),
      "PriorityClass.scheduling.k8s.io \"system-node-critical\" is invalid: metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: value of system-node-critical PriorityClass must be 2000001000",
    ],
    [
      pc('system-cluster-critical', { value: 2000000000, globalDefault: true }),
      "PriorityClass.scheduling.k8s.io \"system-cluster-critical\" is invalid: metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: globalDefault of system-cluster-critical PriorityClass must be false",
    ],
    [pc('p', { preemptionPolicy: 'Sometimes' }), 'PriorityClass.scheduling.k8s.io "p" is invalid: preemptionPolicy: Unsupported value: "Sometimes": supported values: "PreemptLowerPriority", "Never"'],
    [pc('Bad_Name'), 'PriorityClass.scheduling.k8s.io "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain'],
  ])('refuses %j', (input, message) => {
    expect(refusal(() => create(pcs, input))).toContain(message);
  });

  it('keeps value and preemptionPolicy on update', () => {
    const old = create(pcs, pc('p', { value: 10, description: 'a' }));
    expect(update(pcs, old, pc('p', { value: 10, description: 'b' }))).toMatchObject({ description: 'b' });
    expect(refusal(() => update(pcs, old, pc('p', { value: 11 })))).toBe('PriorityClass.scheduling.k8s.io "p" is invalid: value: Forbidden: may not be changed in an update.');
    expect(refusal(() => update(pcs, old, pc('p', { value: 10, preemptionPolicy: 'Never' })))).toBe(
      'PriorityClass.scheduling.k8s.io "p" is invalid: preemptionPolicy: Invalid value: "Never": field is immutable',
    );
  });

  it('prints Name, Value, Global-Default, Age and PreemptionPolicy', () => {
    const t = table(pcs, [create(pcs, pc('high', { value: 1000, globalDefault: true })), create(pcs, pc('low', { value: -5, preemptionPolicy: 'Never' }))]);
    expect(t.columns).toEqual(['Name', 'Value', 'Global-Default', 'Age', 'PreemptionPolicy']);
    expect(t.types).toEqual(['string', 'integer', 'boolean', 'string', 'string']);
    expect(t.rows).toEqual([
      ['high', 1000, true, '5m', 'PreemptLowerPriority'],
      ['low', -5, false, '5m', 'Never'],
    ]);
  });
});

describe('Priority admission', () => {
  let dir: string;
  let registry: Registry;
  const pods = findResource('', 'v1', 'pods')!;
  const priorityClasses = findResource('scheduling.k8s.io', 'v1', 'priorityclasses')!;
  const user = { username: 'test', groups: [] };
  const pod = (name: string, spec: Record<string, unknown> = {}): KubeObject => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: { containers: [{ name: 'c', image: 'busybox' }], ...spec },
  });
  const admitPod = async (p: KubeObject) => {
    await priorityAdmission.admit({ operation: 'CREATE', resource: pods, namespace: 'default', object: p, user }, registry);
    return p;
  };
  const admitClass = (operation: 'CREATE' | 'UPDATE', o: KubeObject) =>
    priorityAdmission.admit({ operation, resource: priorityClasses, name: o.metadata.name, object: o, user }, registry);
  const rejection = async (p: Promise<unknown>) => {
    const e = await p.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(ApiError);
    return { code: (e as ApiError).code, reason: (e as ApiError).reason, message: (e as ApiError).message };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'skiff-priority-'));
    registry = new Registry(new SqliteBackend(join(dir, 'db')));
    for (const c of SYSTEM_PRIORITY_CLASSES) await registry.create(priorityClasses, undefined, systemPriorityClass(c));
    await registry.create(priorityClasses, undefined, { metadata: { name: 'batch' }, value: 100, preemptionPolicy: 'Never' } as KubeObject);
  });
  afterAll(async () => {
    await registry.backend.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses to delete a system class, as the PriorityClass storage of kube-apiserver does (403); others go', async () => {
    const e = await registry.delete(priorityClasses, undefined, 'system-node-critical').then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(ApiError);
    expect({ code: (e as ApiError).code, message: (e as ApiError).message }).toEqual({
      code: 403,
      message: 'priorityclasses.scheduling.k8s.io "system-node-critical" is forbidden: this is a system priority class and cannot be deleted',
    });
    expect((await registry.get(priorityClasses, undefined, 'system-node-critical')).value).toBe(2000001000);
    await registry.create(priorityClasses, undefined, { metadata: { name: 'doomed' }, value: 1 } as KubeObject);
    expect((await registry.delete(priorityClasses, undefined, 'doomed')).deleted).toBe(true);
  });

  it('stores a PriorityClass at generation 1, with its defaults', async () => {
    expect(await registry.get(priorityClasses, undefined, 'batch')).toMatchObject({ metadata: { generation: 1 }, value: 100, preemptionPolicy: 'Never' });
    expect(await registry.get(priorityClasses, undefined, 'system-node-critical')).toMatchObject({ metadata: { generation: 1 }, value: 2000001000, preemptionPolicy: 'PreemptLowerPriority' });
  });

  it('resolves priorityClassName to spec.priority and spec.preemptionPolicy', async () => {
    expect((await admitPod(pod('a', { priorityClassName: 'system-node-critical' }))).spec).toMatchObject({ priority: 2000001000, preemptionPolicy: 'PreemptLowerPriority' });
    expect((await admitPod(pod('b', { priorityClassName: 'batch' }))).spec).toMatchObject({ priority: 100, preemptionPolicy: 'Never' });
  });

  it('refuses a pod naming a class that does not exist, as kube-apiserver does (403)', async () => {
    expect(await rejection(admitPod(pod('c', { priorityClassName: 'nope' })))).toEqual({
      code: 403,
      reason: 'Forbidden',
      message: 'pods "c" is forbidden: no PriorityClass with name nope was found',
    });
  });

  it('refuses a priority or preemptionPolicy that differs from the class', async () => {
    expect((await rejection(admitPod(pod('d', { priorityClassName: 'batch', priority: 7 })))).message).toBe(
      'pods "d" is forbidden: the integer value of priority (7) must not be provided in pod spec; priority admission controller computed 100 from the given PriorityClass name',
    );
    expect((await rejection(admitPod(pod('e', { priorityClassName: 'batch', preemptionPolicy: 'PreemptLowerPriority' })))).message).toBe(
      'pods "e" is forbidden: the string value of PreemptionPolicy (PreemptLowerPriority) must not be provided in pod spec; priority admission controller computed Never from the given PriorityClass name',
    );
    // The same values are fine.
    expect((await admitPod(pod('f', { priorityClassName: 'batch', priority: 100 }))).spec?.priority).toBe(100);
  });

  it('gives a pod naming no class priority 0, or the globalDefault class once there is one; only one default', async () => {
    const plain = await admitPod(pod('g'));
    expect(plain.spec).toMatchObject({ priority: 0, preemptionPolicy: 'PreemptLowerPriority' });
    expect(plain.spec?.priorityClassName).toBeUndefined();

    const def = { apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: { name: 'default-tier' }, value: 50, globalDefault: true } as KubeObject;
    await admitClass('CREATE', def);
    await registry.create(priorityClasses, undefined, def);
    expect((await admitPod(pod('h'))).spec).toMatchObject({ priorityClassName: 'default-tier', priority: 50, preemptionPolicy: 'PreemptLowerPriority' });

    const second = { ...def, metadata: { name: 'other' } } as KubeObject;
    expect(await rejection(admitClass('CREATE', second))).toEqual({
      code: 403,
      reason: 'Forbidden',
      message: 'priorityclasses.scheduling.k8s.io "other" is forbidden: PriorityClass default-tier is already marked as default. Only one default can exist',
    });
    await expect(admitClass('UPDATE', second)).rejects.toThrow('PriorityClass default-tier is already marked as default');
    // The default itself may be updated.
    await admitClass('UPDATE', def);
  });

  it('keeps the priority a create set when an update leaves it out; ignores subresources', async () => {
    const stored = await admitPod(pod('k', { priorityClassName: 'batch' }));
    await registry.create(pods, 'default', stored);
    const sent = pod('k', { priorityClassName: 'batch' });
    await priorityAdmission.admit({ operation: 'UPDATE', resource: pods, namespace: 'default', name: 'k', object: sent, user }, registry);
    expect(sent.spec).toMatchObject({ priority: 100, preemptionPolicy: 'Never' });
    const status = pod('k', { priorityClassName: 'nope' });
    await priorityAdmission.admit({ operation: 'CREATE', resource: pods, subresource: 'status', namespace: 'default', object: status, user }, registry);
    expect(status.spec?.priority).toBeUndefined();
  });
});
