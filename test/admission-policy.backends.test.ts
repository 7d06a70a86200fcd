// ValidatingAdmissionPolicy on both storage backends, through the apiserver's request pipeline, with two
// apiserver instances on one store (as two Lambda instances): the instance that stored a policy enforces it
// on the very next request; the other within its configuration cache's age (1 s), never later.

import { describe, expect, it } from 'vitest';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { ADMIN_USER, newToken, storeToken } from '../lambdas/apiserver/auth.ts';
import type { ApiRequest } from '../lambdas/apiserver/http.ts';
import type { Backend } from '../lambdas/storage/backend.ts';
import { CONFIG_MAX_AGE_MS } from '../lambdas/apiserver/admission-match.ts';
import { testStores } from './support/backends.ts';

const stores = await testStores('admission-policy');

function client(backend: Backend, token: string) {
  const api = new ApiServer({ backend });
  return async (method: string, path: string, body?: unknown) => {
    const req: ApiRequest = {
      method,
      path,
      query: new URLSearchParams(),
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: Buffer.from(body === undefined ? '' : JSON.stringify(body)),
    };
    const r = await api.handle(req);
    return { status: r.status, headers: r.headers, json: JSON.parse(String(r.body)) };
  };
}

const deployment = (name: string, replicas: number) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name },
  spec: { replicas, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } },
});

for (const [label, makeStore, enabled] of stores) {
  describe.skipIf(!enabled)(`ValidatingAdmissionPolicy on ${label}`, () => {
    it('one instance enforces what it stored at once, another within the cache age; params are read from the store', async () => {
      const open = await makeStore();
      const token = newToken();
      await storeToken(open(), token, ADMIN_USER);
      const a = client(open(), token);
      const b = client(open(), token);
      expect((await a('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } })).status).toBe(201);
      // b has read the (empty) configurations: its cache is warm before the policy exists.
      expect((await b('POST', '/apis/apps/v1/namespaces/team/deployments', deployment('before', 9))).status).toBe(201);

      expect((await a('POST', '/api/v1/namespaces/team/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'limits' }, data: { max: '4' } })).status).toBe(201);
      const policy = await a('POST', '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies', {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'ValidatingAdmissionPolicy',
        metadata: { name: 'limit' },
        spec: {
          paramKind: { apiVersion: 'v1', kind: 'ConfigMap' },
          matchConstraints: { resourceRules: [{ apiGroups: ['apps'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['deployments'] }] },
          validations: [{ expression: 'object.spec.replicas <= int(params.data.max)', messageExpression: "'at most ' + params.data.max + ' replicas'" }],
        },
      });
      expect(policy.status).toBe(201);
      const binding = await a('POST', '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings', {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'ValidatingAdmissionPolicyBinding',
        metadata: { name: 'limit-team' },
        spec: { policyName: 'limit', validationActions: ['Deny'], paramRef: { name: 'limits', parameterNotFoundAction: 'Deny' } },
      });
      expect(binding.status).toBe(201);

      const denied = await a('POST', '/apis/apps/v1/namespaces/team/deployments', deployment('big', 5));
      expect(denied.status).toBe(422);
      expect(denied.json.message).toBe(`deployments.apps "big" is forbidden: ValidatingAdmissionPolicy 'limit' with binding 'limit-team' denied request: at most 4 replicas`);
      expect((await a('POST', '/apis/apps/v1/namespaces/team/deployments', deployment('ok', 4))).status).toBe(201);

      // The other instance: refused as soon as its view is older than the cache age.
      await new Promise((r) => setTimeout(r, CONFIG_MAX_AGE_MS + 50));
      const viaB = await b('POST', '/apis/apps/v1/namespaces/team/deployments', deployment('big2', 5));
      expect(viaB.status).toBe(422);
      expect(viaB.json.message).toContain("ValidatingAdmissionPolicy 'limit' with binding 'limit-team' denied request: at most 4 replicas");
      // Nothing refused was stored.
      expect((await a('GET', '/apis/apps/v1/namespaces/team/deployments/big')).status).toBe(404);
      expect((await a('GET', '/apis/apps/v1/namespaces/team/deployments/big2')).status).toBe(404);

      // Params are read per request: raising the limit in the ConfigMap admits at once.
      const cm = (await a('GET', '/api/v1/namespaces/team/configmaps/limits')).json;
      cm.data.max = '10';
      expect((await a('PUT', '/api/v1/namespaces/team/configmaps/limits', cm)).status).toBe(200);
      expect((await b('POST', '/apis/apps/v1/namespaces/team/deployments', deployment('big3', 5))).status).toBe(201);
    });
  });
}
