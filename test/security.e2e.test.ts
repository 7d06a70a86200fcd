// Issue #15 end to end, the parts together as a user meets them on `skiff up` (SQLite) and on the
// DynamoDB store: a team's service account confined to its namespace by a RoleBinding, through stock
// kubectl (`auth can-i`, `--as`, `create token`, `auth whoami`) and the official JS client signed in with
// the account's own token; the default RBAC roles, the service-account JWT, the authorizer and the 403
// wording all real (no test authorizer).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as k8s from '@kubernetes/client-node';
import { DynamoBackend, ensureTable } from '../lambdas/storage/dynamodb.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { dynamoTestEndpoint, uniqueTableName } from './support/dynamodb.ts';

const ddb = await dynamoTestEndpoint();
afterAll(async () => {
  await ddb?.stop();
});

describe.each(['SQLite', 'DynamoDB'])('a team confined to its namespace (%s)', (store) => {
  let c: TestCluster;
  beforeAll(async () => {
    if (store === 'DynamoDB' && !ddb) {
      if (process.env.CI === 'true') throw new Error('no DynamoDB endpoint under CI');
      return;
    }
    let backend;
    if (store === 'DynamoDB') {
      const tableName = uniqueTableName('skiff-sec');
      await ensureTable(ddb!.client, tableName);
      backend = new DynamoBackend({ client: ddb!.newClient(), tableName });
    }
    c = await startTestCluster(backend ? { backend } : {});
  }, 120_000);
  afterAll(async () => {
    await c?.destroy();
  });

  it('kubectl: a service account bound to edit in team-a may work there and nowhere else', async (ctx) => {
    if (!c) return ctx.skip();
    const k = async (...args: string[]) => c.kubectl(args);
    expect((await k('create', 'namespace', 'team-a')).code).toBe(0);
    expect((await k('create', 'serviceaccount', 'ci', '-n', 'team-a')).code).toBe(0);
    expect((await k('create', 'rolebinding', 'ci-edit', '--clusterrole=edit', '--serviceaccount=team-a:ci', '-n', 'team-a')).code).toBe(0);
    const as = ['--as=system:serviceaccount:team-a:ci'];
    // A new binding takes effect when this apiserver's RBAC view has it (a watch: within moments).
    let yes = '';
    for (const end = Date.now() + 10_000; yes !== 'yes' && Date.now() < end; ) {
      yes = (await k('auth', 'can-i', 'create', 'deployments', '-n', 'team-a', ...as)).stdout.trim();
      if (yes !== 'yes') await new Promise((ok) => setTimeout(ok, 200));
    }
    expect(yes).toBe('yes');
    const no = await k('auth', 'can-i', 'get', 'secrets', '-n', 'default', ...as);
    expect([no.code, no.stdout.trim()]).toEqual([1, 'no']);
    const token = (await k('create', 'token', 'ci', '-n', 'team-a')).stdout.trim();
    expect(token.split('.')).toHaveLength(3);
    const whoami = JSON.parse((await k('--token', token, 'auth', 'whoami', '-o', 'json')).stdout);
    expect(whoami.status.userInfo.username).toBe('system:serviceaccount:team-a:ci');
    expect(whoami.status.userInfo.groups).toEqual(['system:serviceaccounts', 'system:serviceaccounts:team-a', 'system:authenticated']);
    expect((await k('--token', token, 'create', 'configmap', 'x', '-n', 'team-a')).code).toBe(0);
    const refused = await k('--token', token, 'get', 'pods', '-n', 'default');
    expect(refused.stderr.trim()).toBe(
      'Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:team-a:ci" cannot list resource "pods" in API group "" in the namespace "default"',
    );
    // Escalation: edit may not grant itself admin.
    const grab = await k('--token', token, 'create', 'rolebinding', 'grab', '--clusterrole=admin', '--serviceaccount=team-a:ci', '-n', 'team-a');
    expect(grab.stderr).toContain('is forbidden: User "system:serviceaccount:team-a:ci" cannot create resource "rolebindings" in API group "rbac.authorization.k8s.io" in the namespace "team-a"');
    // A garbled token is a 401.
    expect((await k('--token', `${token.slice(0, -4)}AAAA`, 'get', 'configmaps', '-n', 'team-a')).stderr).toContain('error: You must be logged in to the server (Unauthorized)');
  });

  it('the JS client signed in with the account token lists its namespace and gets a 403 Status elsewhere', async (ctx) => {
    if (!c) return ctx.skip();
    const token = (await c.kubectl(['create', 'token', 'ci', '-n', 'team-a'])).stdout.trim();
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: c.url, caData: Buffer.from(c.caCert).toString('base64') }],
      users: [{ name: 'ci', token }],
      contexts: [{ name: 'c', cluster: 'c', user: 'ci' }],
      currentContext: 'c',
    });
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const cms = await core.listNamespacedConfigMap({ namespace: 'team-a' });
    expect(cms.items.map((m) => m.metadata?.name)).toContain('x');
    const err = await core.listNamespacedSecret({ namespace: 'default' }).then(
      () => undefined,
      (e: { code?: number; body?: string }) => e,
    );
    expect(err?.code).toBe(403);
    const status = JSON.parse(err!.body!);
    expect(status).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'Forbidden', code: 403, details: { kind: 'secrets' } });
    expect(status.message).toBe('secrets is forbidden: User "system:serviceaccount:team-a:ci" cannot list resource "secrets" in API group "" in the namespace "default"');
  });
});
