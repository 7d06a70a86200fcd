// v1 PodTemplate (lambdas/kinds/core/podtemplate.ts): found by the registry, its template defaulted and
// checked by the shared PodSpec rules (as a pod template, not a pod), and the kubectl get columns.

import { describe, expect, it } from 'vitest';
import { apiResourceList } from '../lambdas/apiserver/discovery.ts';
import { findKind } from '../lambdas/kinds/index.ts';
import { create, refusal, strategyOf, table, update } from './support/kinds.ts';

const pts = strategyOf('', 'v1', 'podtemplates');
const pt = (template: Record<string, unknown>, name = 'web') => ({ metadata: { name, namespace: 'default' }, template });
const containers = [
  { name: 'app', image: 'nginx:1.27' },
  { name: 'side', image: 'busybox' },
];

describe('PodTemplate', () => {
  it('is served in core v1', () => {
    expect(findKind('v1', 'PodTemplate')).toBe(pts.info);
    expect(apiResourceList('', 'v1')!.resources.find((r) => r.name === 'podtemplates')).toMatchObject({ namespaced: true, kind: 'PodTemplate', singularName: 'podtemplate' });
  });

  it("defaults its template's pod spec", () => {
    const o = create(pts, pt({ metadata: { labels: { app: 'web' } }, spec: { containers } }));
    expect(o.template.spec).toMatchObject({
      restartPolicy: 'Always',
      dnsPolicy: 'ClusterFirst',
      terminationGracePeriodSeconds: 30,
      containers: [{ name: 'app', imagePullPolicy: 'IfNotPresent' }, { name: 'side', imagePullPolicy: 'Always' }],
    });
  });

  it.each([
    [pt({}), 'template.spec.containers: Required value'],
    [pt({ spec: { containers: [{ name: 'a', image: 'x' }], restartPolicy: 'Sometimes' } }), 'template.spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'],
    [pt({ metadata: { labels: { 'a b': 'x' } }, spec: { containers } }), 'template.labels: Invalid value: "a b"'],
    [pt({ spec: { containers, ephemeralContainers: [{ name: 'dbg', image: 'busybox' }] } }), 'template.spec.ephemeralContainers: Forbidden: ephemeral containers not allowed in pod template'],
  ])('refuses %j', (input, message) => {
    expect(refusal(() => create(pts, input))).toContain(`PodTemplate "web" is invalid: ${message}`);
  });

  it('starts at generation 1 and counts changes of its template, as kube does', async () => {
    const { Registry } = await import('../lambdas/apiserver/registry.ts');
    const { SqliteBackend } = await import('../lambdas/storage/sqlite.ts');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'skiff-podtemplate-'));
    const reg = new Registry(new SqliteBackend(join(dir, 'db')));
    try {
      const made = await reg.create(pts.info, 'default', pt({ spec: { containers } }) as any);
      expect(made.metadata.generation).toBe(1);
      const same = await reg.update(pts.info, 'default', 'web', { ...made, metadata: { ...made.metadata, labels: { a: 'b' } } });
      expect(same.metadata.generation).toBe(1);
      const changed = await reg.update(pts.info, 'default', 'web', { ...same, template: { spec: { containers: [containers[0]] } } });
      expect(changed.metadata.generation).toBe(2);
    } finally {
      await reg.backend.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses names that are no DNS subdomain, and checks the template again on update', () => {
    expect(refusal(() => create(pts, pt({ spec: { containers } }, 'Web')))).toContain('PodTemplate "Web" is invalid: metadata.name: Invalid value: "Web": a lowercase RFC 1123 subdomain');
    const old = create(pts, pt({ spec: { containers } }));
    expect(refusal(() => update(pts, old, pt({ spec: { containers: [{ name: 'app' }] } })))).toBe('PodTemplate "web" is invalid: template.spec.containers[0].image: Required value');
  });

  it('prints Name, Containers, Images and Pod Labels (no Age, as kube)', () => {
    const t = table(pts, [create(pts, pt({ metadata: { labels: { tier: 'front', app: 'web' } }, spec: { containers } })), create(pts, pt({ spec: { containers: [containers[0]] } }, 'bare'))]);
    expect(t.columns).toEqual(['Name', 'Containers', 'Images', 'Pod Labels']);
    expect(t.rows).toEqual([
      ['web', 'app,side', 'nginx:1.27,busybox', 'app=web,tier=front'],
      ['bare', 'app', 'nginx:1.27', '<none>'],
    ]);
  });
});
