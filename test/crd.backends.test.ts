// CustomResourceDefinitions on both stores (SQLite, and DynamoDB through moto): a local cluster (the
// apiserver following its CRDs, the CRD controller running) driven by @kubernetes/client-node's
// ApiextensionsV1Api, CustomObjectsApi and dynamic client (KubernetesObjectApi); name conflicts; cleanup
// of the custom resources when the CRD is deleted; and a second apiserver on the same store that does not
// follow a watch (as each apiserver Lambda instance) and learns the CRD on its next requests. Plus: two
// apiservers on different stores in one process serve only their own store's custom resources.

import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { startLocalCluster } from '../lambdas/local/server.ts';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { testStores } from './support/backends.ts';

const stores = await testStores('crd');
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const GROUP = 'stable.example.com';

function crontabCRD(plural = 'crontabs', kind = 'CronTab', name = `${plural}.${GROUP}`): k8s.V1CustomResourceDefinition {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: { plural, singular: kind.toLowerCase(), kind, shortNames: ['ct'], categories: ['all'] },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          subresources: { status: {}, scale: { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas' } },
          additionalPrinterColumns: [{ name: 'Spec', type: 'string', jsonPath: '.spec.cronSpec' }],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: {
                spec: {
                  type: 'object',
                  properties: {
                    cronSpec: { type: 'string' },
                    image: { type: 'string' },
                    replicas: { type: 'integer', minimum: 0, _default: 1 },
                  },
                  // client-node's typed model: _default and x_kubernetes_validations are sent as default and x-kubernetes-validations.
                  x_kubernetes_validations: [{ rule: "self.cronSpec != ''", message: 'cronSpec must not be empty' }],
                },
                status: { type: 'object', properties: { replicas: { type: 'integer' } } },
              },
            },
          },
        },
      ],
    },
  };
}

async function until<T>(f: () => Promise<T | undefined | false>, ms = 15000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A local cluster on a fresh store (the apiserver following its CRDs, every loop running), a client config
 * for it, and `open` for another handle on the same store.
 */
async function clusterOn(makeStore: (typeof stores)[number][1], prefix: string) {
  const open = await makeStore();
  const dataDir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dataDir);
  const c = await startLocalCluster({ dataDir, port: 0, backend: open(), watchProgressMs: 200, agents: 0 });
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(c.kubeconfigPath);
  return { c, kc, open };
}

const condition = (crd: k8s.V1CustomResourceDefinition, type: string) => crd.status?.conditions?.find((c) => c.type === type);

describe.each(stores)('custom resources on %s', (_name, makeStore, enabled) => {
  it.skipIf(!enabled)(
    'serves a CRD end to end through client-node, and a non-following apiserver learns it',
    async () => {
      const { c, kc, open } = await clusterOn(makeStore, 'skiff-crd-');
      try {
        const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
        const objs = kc.makeApiClient(k8s.CustomObjectsApi);
        const dyn = k8s.KubernetesObjectApi.makeApiClient(kc);

        const created = await ext.createCustomResourceDefinition({ body: crontabCRD() });
        expect(created.status?.storedVersions).toEqual(['v1']);
        const est = await until(async () => {
          const crd = await ext.readCustomResourceDefinition({ name: `crontabs.${GROUP}` });
          return condition(crd, 'Established')?.status === 'True' && crd;
        });
        expect(condition(est, 'NamesAccepted')).toMatchObject({ status: 'True', reason: 'NoConflicts', message: 'no conflicts found' });
        expect(est.status?.acceptedNames).toMatchObject({ plural: 'crontabs', kind: 'CronTab', shortNames: ['ct'], categories: ['all'] });

        // CustomObjectsApi: create (defaults applied, status dropped), list, patch, status, scale.
        const a = (await objs.createNamespacedCustomObject({
          group: GROUP,
          version: 'v1',
          namespace: 'default',
          plural: 'crontabs',
          body: { apiVersion: `${GROUP}/v1`, kind: 'CronTab', metadata: { name: 'a' }, spec: { cronSpec: '* * * * */5', image: 'x' }, status: { replicas: 9 } },
        })) as any;
        expect(a.spec.replicas).toBe(1);
        expect(a.status).toBeUndefined();
        expect(a.metadata.generation).toBe(1);
        const list = (await objs.listNamespacedCustomObject({ group: GROUP, version: 'v1', namespace: 'default', plural: 'crontabs' })) as any;
        expect(list.kind).toBe('CronTabList');
        expect(list.items.map((i: any) => i.metadata.name)).toEqual(['a']);

        // Watch through client-node's Watch, then a merge patch shows as MODIFIED.
        const events: string[] = [];
        const w = new k8s.Watch(kc);
        const req = await w.watch(`/apis/${GROUP}/v1/namespaces/default/crontabs`, {}, (type, obj) => events.push(`${type} ${obj.metadata.name} ${obj.spec?.image}`), () => {});
        await until(async () => events.includes('ADDED a x'));
        const patched = (await objs.patchNamespacedCustomObject(
          { group: GROUP, version: 'v1', namespace: 'default', plural: 'crontabs', name: 'a', body: { spec: { image: 'y' } } },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        )) as any;
        expect(patched.spec.image).toBe('y');
        expect(patched.metadata.generation).toBe(2);
        await until(async () => events.includes('MODIFIED a y'));
        req.abort();

        // Status subresource: only status changes, generation stays.
        const st = (await objs.patchNamespacedCustomObjectStatus(
          { group: GROUP, version: 'v1', namespace: 'default', plural: 'crontabs', name: 'a', body: { status: { replicas: 3 }, spec: { image: 'ignored' } } },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        )) as any;
        expect(st.status.replicas).toBe(3);
        expect(st.spec.image).toBe('y');
        expect(st.metadata.generation).toBe(2);
        const scale = (await objs.getNamespacedCustomObjectScale({ group: GROUP, version: 'v1', namespace: 'default', plural: 'crontabs', name: 'a' })) as any;
        expect(scale).toMatchObject({ kind: 'Scale', apiVersion: 'autoscaling/v1', spec: { replicas: 1 }, status: { replicas: 3 } });

        // Validation (CEL rule, schema minimum): 422 with kube's causes; nothing written.
        const bad = await objs
          .createNamespacedCustomObject({
            group: GROUP,
            version: 'v1',
            namespace: 'default',
            plural: 'crontabs',
            body: { apiVersion: `${GROUP}/v1`, kind: 'CronTab', metadata: { name: 'bad' }, spec: { cronSpec: '', replicas: -1 } },
          })
          .catch((e) => e);
        expect(bad).toBeInstanceOf(k8s.ApiException);
        expect(bad.code).toBe(422);
        const status = JSON.parse(bad.body);
        expect(status.reason).toBe('Invalid');
        expect(status.details.causes).toEqual(
          expect.arrayContaining([
            expect.objectContaining({ field: 'spec.replicas', message: expect.stringContaining('should be greater than or equal to 0') }),
            expect.objectContaining({ field: 'spec', message: expect.stringContaining('cronSpec must not be empty') }),
          ]),
        );

        // The dynamic client (KubernetesObjectApi): create, read, delete.
        await dyn.create({ apiVersion: `${GROUP}/v1`, kind: 'CronTab', metadata: { name: 'b', namespace: 'default' }, spec: { cronSpec: '@daily' } } as any);
        const b = (await dyn.read({ apiVersion: `${GROUP}/v1`, kind: 'CronTab', metadata: { name: 'b', namespace: 'default' } })) as any;
        expect(b.spec.replicas).toBe(1);
        await dyn.delete({ apiVersion: `${GROUP}/v1`, kind: 'CronTab', metadata: { name: 'b', namespace: 'default' } });

        // A second CRD claiming the same plural in the group: NamesAccepted=False, never Established, not served.
        // (metadata.name must be plural.group: a CRD named otherwise is refused with kube's message)
        const dupErr = await ext.createCustomResourceDefinition({ body: crontabCRD('crontabs', 'OtherTab', `crontabs2.${GROUP}`) }).catch((e) => e);
        expect(JSON.parse(dupErr.body).message).toContain('must be spec.names.plural+"."+spec.group');
        const clash = crontabCRD('crontabz', 'CronTab');
        await ext.createCustomResourceDefinition({ body: clash });
        const refused = await until(async () => {
          const crd = await ext.readCustomResourceDefinition({ name: `crontabz.${GROUP}` });
          return condition(crd, 'NamesAccepted')?.status === 'False' && crd;
        });
        expect(condition(refused, 'NamesAccepted')).toMatchObject({ reason: 'ListKindConflict', message: '"CronTabList" is already in use' });
        expect(condition(refused, 'Established')).toMatchObject({ status: 'False', reason: 'NotAccepted' });
        const notServed = await objs.listNamespacedCustomObject({ group: GROUP, version: 'v1', namespace: 'default', plural: 'crontabz' }).catch((e) => e);
        expect(notServed.code).toBe(404);

        // An apiserver on the same store that follows no watch (a Lambda instance) sees the CRD.
        const lambdaLike = new ApiServer({ backend: open(), crdMaxAgeMs: 1000 });
        const get = (path: string) =>
          lambdaLike.handle({ method: 'GET', path, query: new URLSearchParams(), headers: { authorization: `Bearer ${c.token}` }, body: Buffer.alloc(0) } as any);
        const r = await get(`/apis/${GROUP}/v1/namespaces/default/crontabs/a`);
        expect(r.status).toBe(200);
        expect(JSON.parse(String(r.body)).spec.image).toBe('y');

        // Deleting the CRD deletes its custom resources (Terminating meanwhile), then the CRD itself.
        await ext.deleteCustomResourceDefinition({ name: `crontabs.${GROUP}` });
        await until(async () => {
          const e = await ext.readCustomResourceDefinition({ name: `crontabs.${GROUP}` }).catch((e) => e);
          return e instanceof k8s.ApiException && e.code === 404;
        });
        // The apiserver stops serving it once its watch has delivered the deletion (a poll away on DynamoDB).
        await until(async () => (await objs.listClusterCustomObject({ group: GROUP, version: 'v1', plural: 'crontabs' }).catch((e) => e)).code === 404, 5000);
        // Its names are free now: the conflicting CRD gets them and is served.
        await until(async () => {
          const crd = await ext.readCustomResourceDefinition({ name: `crontabz.${GROUP}` });
          return condition(crd, 'Established')?.status === 'True';
        });
        expect(((await objs.listNamespacedCustomObject({ group: GROUP, version: 'v1', namespace: 'default', plural: 'crontabz' })) as any).items).toEqual([]);
        // The non-following apiserver stops serving the deleted kind after its view expires.
        await until(async () => (await get(`/apis/${GROUP}/v1/namespaces/default/crontabs`)).status === 404, 5000);
      } finally {
        await c.close();
      }
    },
    120_000,
  );
});

describe.each(stores)('custom resources in the namespace and garbage collection loops, on %s', (_name, makeStore, enabled) => {
  it.skipIf(!enabled)(
    'a custom resource owns and is owned (cascading deletes both ways), and goes with its namespace',
    async () => {
      const { c, kc } = await clusterOn(makeStore, 'skiff-crd-gc-');
      try {
        const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
        const objs = kc.makeApiClient(k8s.CustomObjectsApi);
        const core = kc.makeApiClient(k8s.CoreV1Api);
        await ext.createCustomResourceDefinition({ body: crontabCRD() });
        await until(async () => condition(await ext.readCustomResourceDefinition({ name: `crontabs.${GROUP}` }), 'Established')?.status === 'True');
        const ns = 'team';
        await core.createNamespace({ body: { metadata: { name: ns } } });
        const crontab = (name: string, ownerReferences?: k8s.V1OwnerReference[]) =>
          objs.createNamespacedCustomObject({
            group: GROUP,
            version: 'v1',
            namespace: ns,
            plural: 'crontabs',
            body: { apiVersion: `${GROUP}/v1`, kind: 'CronTab', metadata: { name, ownerReferences }, spec: { cronSpec: '* * * * *' } },
          }) as Promise<any>;
        const crontabs = async () =>
          ((await objs.listNamespacedCustomObject({ group: GROUP, version: 'v1', namespace: ns, plural: 'crontabs' })) as any).items.map((i: any) => i.metadata.name).sort();
        const configMaps = async () => (await core.listNamespacedConfigMap({ namespace: ns })).items.map((i) => i.metadata!.name!).filter((n) => n !== 'kube-root-ca.crt').sort();

        // A custom resource owns a ConfigMap: deleting the owner deletes the dependent.
        const owner = await crontab('owner');
        const ref = { apiVersion: `${GROUP}/v1`, kind: 'CronTab', name: 'owner', uid: owner.metadata.uid };
        await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'dep', ownerReferences: [ref] } } });
        // A ConfigMap owns a custom resource: likewise.
        const cm = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'cm-owner' } } });
        await crontab('owned', [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'cm-owner', uid: cm.metadata!.uid! }]);
        await crontab('left');
        expect(await crontabs()).toEqual(['left', 'owned', 'owner']);
        await objs.deleteNamespacedCustomObject({ group: GROUP, version: 'v1', namespace: ns, plural: 'crontabs', name: 'owner' });
        await until(async () => !(await configMaps()).includes('dep'));
        await core.deleteNamespacedConfigMap({ namespace: ns, name: 'cm-owner' });
        await until(async () => !(await crontabs()).includes('owned'));
        expect(await crontabs()).toEqual(['left']);

        // The namespace goes only once its custom resources are gone; made again, it is empty.
        await core.deleteNamespace({ name: ns });
        await until(async () => (await core.listNamespace()).items.every((n) => n.metadata!.name !== ns), 30_000);
        await core.createNamespace({ body: { metadata: { name: ns } } });
        expect(await crontabs()).toEqual([]);
      } finally {
        await c.close();
      }
    },
    120_000,
  );
});

describe('custom resources belong to their store', () => {
  it('a CRD in one apiserver is not served by another in the same process', async () => {
    const [[, makeA], [, makeB]] = [stores[0]!, stores[0]!];
    const a = (await makeA())();
    const b = (await makeB())();
    const token = 'x'.repeat(40);
    const { storeToken, ADMIN_USER } = await import('../lambdas/apiserver/auth.ts');
    await storeToken(a, token, ADMIN_USER);
    await storeToken(b, token, ADMIN_USER);
    const sa = new ApiServer({ backend: a });
    const sb = new ApiServer({ backend: b });
    const req = (method: string, path: string, body?: unknown) =>
      ({ method, path, query: new URLSearchParams(), headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: Buffer.from(body ? JSON.stringify(body) : '') }) as any;
    const crd = crontabCRD();
    expect((await sa.handle(req('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd))).status).toBe(201);
    // Established by hand (no controller here): what the CRD controller writes.
    const ctx = sa.controllerContext();
    const { crdController } = await import('../lambdas/controllers/crd.ts');
    await crdController.reconcile(`crontabs.${GROUP}`, ctx);
    await sa.crds.refresh();
    expect((await sa.handle(req('GET', `/apis/${GROUP}/v1/namespaces/default/crontabs`))).status).toBe(200);
    expect((await sb.handle(req('GET', `/apis/${GROUP}/v1/namespaces/default/crontabs`))).status).toBe(404);
    expect(JSON.parse(String((await sa.handle(req('GET', '/apis'))).body)).groups.map((g: any) => g.name)).toContain(GROUP);
    expect(JSON.parse(String((await sb.handle(req('GET', '/apis'))).body)).groups.map((g: any) => g.name)).not.toContain(GROUP);
    await a.close();
    await b.close();
  });
});
