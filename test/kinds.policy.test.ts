// policy/v1 PodDisruptionBudget (lambdas/kinds/policy/poddisruptionbudget.ts): found by the registry, its
// status (all zero on create, written through the status subresource), kube-apiserver's validation
// messages (pkg/apis/policy/validation) and the kubectl get columns.

import { describe, expect, it } from 'vitest';
import { apiResourceList } from '../lambdas/apiserver/discovery.ts';
import { findKind } from '../lambdas/kinds/index.ts';
import { create, refusal, strategyOf, table, update } from './support/kinds.ts';

const pdbs = strategyOf('policy', 'v1', 'poddisruptionbudgets');
const pdb = (spec: Record<string, unknown>, name = 'web') => ({ metadata: { name, namespace: 'default' }, spec });
const ZERO = { currentHealthy: 0, desiredHealthy: 0, disruptionsAllowed: 0, expectedPods: 0 };

describe('PodDisruptionBudget', () => {
  it('is found by kind and served with its status subresource', () => {
    expect(findKind('policy/v1', 'PodDisruptionBudget')).toBe(pdbs.info);
    expect(apiResourceList('policy', 'v1')!.resources.map((r) => [r.name, r.namespaced, r.shortNames ?? []])).toEqual([
      ['poddisruptionbudgets', true, ['pdb']],
      ['poddisruptionbudgets/status', true, []],
    ]);
  });

  it('starts with an all-zero status, whatever the create sent', () => {
    const o = create(pdbs, { ...pdb({ minAvailable: 2, selector: { matchLabels: { app: 'web' } } }), status: { disruptionsAllowed: 5 } });
    expect(o.status).toEqual(ZERO);
    expect(create(pdbs, pdb({ maxUnavailable: '25%', unhealthyPodEvictionPolicy: 'AlwaysAllow' })).spec.maxUnavailable).toBe('25%');
  });

  it('takes names the generic store allows (no DNS rule of its own)', () => {
    expect(create(pdbs, pdb({}, 'Web_1')).metadata.name).toBe('Web_1');
    expect(refusal(() => create(pdbs, pdb({}, 'a/b')))).toBe('PodDisruptionBudget.policy "a/b" is invalid: metadata.name: Invalid value: "a/b": may not contain \'/\'');
  });

  it.each([
    [pdb({ minAvailable: -1 }), 'spec.minAvailable: Invalid value: -1: must be greater than or equal to 0'],
    [pdb({ maxUnavailable: '101%' }), 'spec.maxUnavailable: Invalid value: "101%": must not be greater than 100%'],
    [
      pdb({ minAvailable: 'half' }),
      "spec.minAvailable: Invalid value: \"half\": a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
    ],
    [
      pdb({ minAvailable: 1, maxUnavailable: '10%', selector: { matchLabels: { app: 'web' } } }),
      'spec: Invalid value: {"MinAvailable":1,"Selector":{"matchLabels":{"app":"web"}},"MaxUnavailable":"10%","UnhealthyPodEvictionPolicy":null}: minAvailable and maxUnavailable cannot be both set',
    ],
    [pdb({ unhealthyPodEvictionPolicy: 'Sometimes' }), 'spec.unhealthyPodEvictionPolicy: Unsupported value: "Sometimes": supported values: "AlwaysAllow", "IfHealthyBudget"'],
    [
      pdb({ selector: { matchLabels: { app: 'web app' } } }),
      "spec.selector.matchLabels: Invalid value: \"web app\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
    ],
  ])('refuses %j', (input, message) => {
    expect(refusal(() => create(pdbs, input))).toBe(`PodDisruptionBudget.policy "web" is invalid: ${message}`);
  });

  it('keeps its status on a spec update; the status subresource writes and checks it', () => {
    const old = create(pdbs, pdb({ minAvailable: 1 }));
    const status = { ...ZERO, currentHealthy: 3, desiredHealthy: 2, disruptionsAllowed: 1, expectedPods: 3, observedGeneration: 1 };
    expect(update(pdbs, old, { ...pdb({ minAvailable: 2 }), status }).status).toEqual(ZERO);
    const written = update(pdbs, old, { status }, 'status');
    expect(written.status).toEqual(status);
    expect(written.spec).toEqual({ minAvailable: 1 });
    expect(refusal(() => update(pdbs, old, { status: { ...status, disruptionsAllowed: -1 } }, 'status'))).toBe(
      'PodDisruptionBudget.policy "web" is invalid: status.disruptionsAllowed: Invalid value: -1: must be greater than or equal to 0',
    );
    expect(refusal(() => update(pdbs, old, { status: { ...status, conditions: [{ type: 'DisruptionAllowed', status: 'Maybe', reason: 'Ok', lastTransitionTime: '2026-01-01T00:00:00Z' }] } }, 'status'))).toBe(
      'PodDisruptionBudget.policy "web" is invalid: status.conditions[0].status: Unsupported value: "Maybe": supported values: "False", "True", "Unknown"',
    );
    expect(refusal(() => update(pdbs, old, { status: { ...status, conditions: [{ type: 'DisruptionAllowed', status: 'True' }] } }, 'status'))).toBe(
      'PodDisruptionBudget.policy "web" is invalid: [status.conditions[0].lastTransitionTime: Required value, status.conditions[0].reason: Required value]',
    );
  });

  it('prints Name, Min Available, Max Unavailable, Allowed Disruptions and Age', () => {
    const a = create(pdbs, pdb({ minAvailable: 2 }, 'a'));
    const b = update(pdbs, create(pdbs, pdb({ maxUnavailable: '25%' }, 'b')), { status: { ...ZERO, disruptionsAllowed: 1 } }, 'status');
    const t = table(pdbs, [a, b]);
    expect(t.columns).toEqual(['Name', 'Min Available', 'Max Unavailable', 'Allowed Disruptions', 'Age']);
    expect(t.types).toEqual(['string', 'string', 'string', 'integer', 'string']);
    expect(t.rows).toEqual([
      ['a', '2', 'N/A', 0, '5m'],
      ['b', 'N/A', '25%', 1, '5m'],
    ]);
  });
});
