// RBAC with stock kubectl against a local cluster: create role / clusterrole --aggregation-rule /
// rolebinding / clusterrolebinding, get them with kube's columns, a user's kubeconfig refused with kube's
// message and then allowed by a binding, the aggregation controller filling a ClusterRole, and
// `kubectl auth reconcile -f`.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { newToken, storeToken } from '../lambdas/apiserver/auth.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { until } from './support/until.ts';

let c: TestCluster;
let bobConfig: string;

beforeAll(async () => {
  c = await startTestCluster({ agents: 0 });
  const token = newToken();
  await storeToken(c.backend, token, { username: 'bob', groups: ['qa'] });
  bobConfig = join(c.dataDir, 'bob.kubeconfig');
  const caFile = c.file('ca.crt', c.caCert);
  writeFileSync(
    bobConfig,
    `apiVersion: v1
kind: Config
clusters: [{name: skiff, cluster: {server: "${c.url}", certificate-authority: "${caFile}"}}]
users: [{name: bob, user: {token: "${token}"}}]
contexts: [{name: bob, context: {cluster: skiff, user: bob}}]
current-context: bob
`,
  );
}, 60_000);
afterAll(async () => {
  await c?.destroy();
});

/** kubectl as bob (his own kubeconfig). */
function bob(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('kubectl', args, { env: { ...process.env, KUBECONFIG: bobConfig, KUBECACHEDIR: join(c.dataDir, 'bob-cache') }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as any).code === 'number' ? (err as any).code : 1) : 0, stdout, stderr });
    });
  });
}

async function ok(args: string[], input?: string): Promise<string> {
  const r = await c.kubectl(args, input);
  expect(r.stderr, args.join(' ')).toBe('');
  expect(r.code, args.join(' ')).toBe(0);
  return r.stdout;
}

describe('kubectl and RBAC', () => {
  it('create role, clusterrole (aggregated), rolebinding, clusterrolebinding; get prints kube\'s columns', async () => {
    await ok(['create', 'namespace', 'qa']);
    expect(await ok(['create', 'role', 'pod-reader', '-n', 'qa', '--verb=get,list,watch', '--resource=pods,pods/log'])).toBe('role.rbac.authorization.k8s.io/pod-reader created\n');
    expect(await ok(['create', 'rolebinding', 'bob-reads', '-n', 'qa', '--role=pod-reader', '--user=bob', '--group=qa', '--serviceaccount=qa:robot'])).toBe('rolebinding.rbac.authorization.k8s.io/bob-reads created\n');
    expect(await ok(['create', 'clusterrole', 'qa-aggregate', '--aggregation-rule=qa.example.com/aggregate=true'])).toBe('clusterrole.rbac.authorization.k8s.io/qa-aggregate created\n');
    expect(await ok(['create', 'clusterrole', 'qa-nodes', '--verb=get,list', '--resource=nodes'])).toBe('clusterrole.rbac.authorization.k8s.io/qa-nodes created\n');
    expect(await ok(['create', 'clusterrolebinding', 'bob-nodes', '--clusterrole=qa-aggregate', '--user=bob'])).toBe('clusterrolebinding.rbac.authorization.k8s.io/bob-nodes created\n');

    const roles = await ok(['get', 'roles', '-n', 'qa']);
    expect(roles.split('\n')[0]).toMatch(/^NAME\s+CREATED AT$/);
    expect(roles).toMatch(/\npod-reader\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n/);
    const rbs = await ok(['get', 'rolebindings', '-n', 'qa', '-o', 'wide']);
    expect(rbs.split('\n')[0]).toMatch(/^NAME\s+ROLE\s+AGE\s+USERS\s+GROUPS\s+SERVICEACCOUNTS$/);
    expect(rbs).toMatch(/\nbob-reads\s+Role\/pod-reader\s+\d+s\s+bob\s+qa\s+qa\/robot\n/);
    const crbs = await ok(['get', 'clusterrolebindings', 'bob-nodes', 'cluster-admin']);
    expect(crbs.split('\n')[0]).toMatch(/^NAME\s+ROLE\s+AGE$/);
    expect(crbs).toMatch(/\ncluster-admin\s+ClusterRole\/cluster-admin\s+\S+\n/);
    const crs = await ok(['get', 'clusterroles', 'admin', 'edit', 'view', 'system:discovery']);
    expect(crs.split('\n').filter(Boolean)).toHaveLength(5);

    // The roleRef is fixed: kube's 422 through kubectl.
    const r = await c.kubectl(['patch', 'rolebinding', 'bob-reads', '-n', 'qa', '--type=merge', '-p', '{"roleRef":{"name":"other"}}']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('The RoleBinding "bob-reads" is invalid: roleRef: Invalid value: {"APIGroup":"rbac.authorization.k8s.io","Kind":"Role","Name":"other"}: cannot change roleRef');
  });

  it('a user kubeconfig is refused in kube\'s words, allowed by the binding, and gains what aggregation adds', async () => {
    await until('bob lists pods in qa', async () => (await bob(['get', 'pods', '-n', 'qa'])).code === 0);
    const refused = await bob(['get', 'pods', '-n', 'default']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe('Error from server (Forbidden): pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "default"\n');
    const del = await bob(['delete', 'pod', 'x', '-n', 'qa']);
    expect(del.stderr).toBe('Error from server (Forbidden): pods "x" is forbidden: User "bob" cannot delete resource "pods" in API group "" in the namespace "qa"\n');
    const nodes = await bob(['get', 'nodes']);
    expect(nodes.stderr).toBe('Error from server (Forbidden): nodes is forbidden: User "bob" cannot list resource "nodes" in API group "" at the cluster scope\n');
    // Labelling qa-nodes into the aggregate hands its rules to bob (through bob-nodes).
    await ok(['label', 'clusterrole', 'qa-nodes', 'qa.example.com/aggregate=true']);
    await until('the aggregate holds the nodes rule', async () => JSON.parse(await ok(['get', 'clusterrole', 'qa-aggregate', '-o', 'json'])).rules?.length === 1);
    await until('bob lists nodes', async () => (await bob(['get', 'nodes'])).code === 0);
    // exec is pods/exec: refused before any node is asked (bob may get pods in qa, not exec into them).
    await ok(['run', 'sleeper', '-n', 'qa', '--image=busybox', '--restart=Never']);
    const exec = await bob(['exec', '-n', 'qa', 'sleeper', '--', 'true']);
    expect(exec.code).toBe(1);
    expect(exec.stderr).toContain('pods "sleeper" is forbidden: User "bob" cannot create resource "pods/exec" in API group "" in the namespace "qa"');
    // Escalation: bob may not create a role (no rbac rights at all), admin may.
    const create = await bob(['create', 'role', 'x', '-n', 'qa', '--verb=get', '--resource=pods']);
    expect(create.stderr).toBe('Error from server (Forbidden): roles.rbac.authorization.k8s.io is forbidden: User "bob" cannot create resource "roles" in API group "rbac.authorization.k8s.io" in the namespace "qa"\n');
  });

  it('kubectl auth reconcile creates and then adds missing rules and subjects', async () => {
    const manifest = (verbs: string) => `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reconciled, namespace: qa}
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [${verbs}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reconciled, namespace: qa}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reconciled}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}
`;
    const first = await c.kubectl(['auth', 'reconcile', '-f', '-'], manifest('get'));
    // kubectl reports what it reconciled on stderr ("reconciliation required create", the rules added).
    expect(first.code).toBe(0);
    expect(first.stderr).toContain('missing rules added:');
    expect(first.stdout).toContain('role.rbac.authorization.k8s.io/reconciled reconciled');
    expect(first.stdout).toContain('rolebinding.rbac.authorization.k8s.io/reconciled reconciled');
    const second = await c.kubectl(['auth', 'reconcile', '-f', '-'], manifest('get, list'));
    expect(second.code).toBe(0);
    const role = JSON.parse(await ok(['get', 'role', 'reconciled', '-n', 'qa', '-o', 'json']));
    expect(role.rules.flatMap((r: any) => r.verbs).sort()).toEqual(['get', 'list']);
    await until('bob lists configmaps', async () => (await bob(['get', 'configmaps', '-n', 'qa'])).code === 0);
  });
});
