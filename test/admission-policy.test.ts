// ValidatingAdmissionPolicy end to end against a real HTTPS apiserver (skiff up's code, in-process), with
// stock kubectl and raw HTTPS: a policy denying Deployments with more than 5 replicas (kube's message and
// reason), the Warn action as a Warning header, params from a ConfigMap (and a missing one under Deny),
// matchConditions, messageExpression, variables, CEL that does not compile refused at create, and CEL that
// cannot run away (every evaluation step charged, matches() on RE2).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:https';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { until } from './support/until.ts';

let c: TestCluster;
beforeAll(async () => {
  c = await startTestCluster({ agents: 0 });
});
afterAll(async () => {
  await c?.destroy();
});

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

function api(method: string, path: string, body?: unknown): Promise<Res> {
  const u = new URL(c.url);
  const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const r = request(
      {
        host: u.hostname,
        port: u.port,
        path,
        method,
        ca: c.caCert,
        headers: { authorization: `Bearer ${c.token}`, 'content-type': 'application/json', ...(data ? { 'content-length': data.length } : {}) },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text ? JSON.parse(text) : undefined }));
      },
    );
    r.on('error', reject);
    r.end(data);
  });
}

function deployment(name: string, replicas: number, labels: Record<string, string> = {}) {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, labels },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } },
    },
  };
}

/** A namespace labelled for one test, so each test's policy sees only its own writes. */
async function namespace(name: string) {
  const r = await api('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { test: name } } });
  expect(r.status).toBe(201);
}

async function apply(yaml: string) {
  const r = await c.kubectl(['apply', '-f', '-'], yaml);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
}

function policyYaml(name: string, ns: string, extra: string, validations: string) {
  return `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: ${name}
spec:
  failurePolicy: Fail
  matchConstraints:
    namespaceSelector: {matchLabels: {test: ${ns}}}
    resourceRules:
    - apiGroups: [apps]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [deployments]
${extra}  validations:
${validations}`;
}

function bindingYaml(name: string, policy: string, actions: string, paramRef = '') {
  return `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: ${name}
spec:
  policyName: ${policy}
  validationActions: [${actions}]
${paramRef}`;
}

describe('ValidatingAdmissionPolicy', () => {
  it('denies a Deployment with more than 5 replicas with kube-apiserver\'s message, and admits one within it', async () => {
    await namespace('vap-deny');
    await apply(policyYaml('max-replicas', 'vap-deny', '', '  - expression: "object.spec.replicas <= 5"\n'));
    await apply(bindingYaml('max-replicas-binding', 'max-replicas', 'Deny'));

    const denied = await api('POST', '/apis/apps/v1/namespaces/vap-deny/deployments', deployment('big', 6));
    const message =
      "deployments.apps \"big\" is forbidden: ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-binding' denied request: failed expression: object.spec.replicas <= 5";
    expect(denied.status).toBe(422);
    expect(denied.body).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'Invalid', code: 422, message });
    expect(denied.body.details.causes).toEqual([{ message: message.slice(message.indexOf('ValidatingAdmissionPolicy')) }]);
    // Nothing was written.
    expect((await api('GET', '/apis/apps/v1/namespaces/vap-deny/deployments/big')).status).toBe(404);

    expect((await api('POST', '/apis/apps/v1/namespaces/vap-deny/deployments', deployment('small', 5))).status).toBe(201);
    // An update past the limit is refused too.
    const cur = (await api('GET', '/apis/apps/v1/namespaces/vap-deny/deployments/small')).body;
    cur.spec.replicas = 9;
    const upd = await api('PUT', '/apis/apps/v1/namespaces/vap-deny/deployments/small', cur);
    expect(upd.status).toBe(422);
    expect(upd.body.message).toContain(`deployments.apps "small" is forbidden: ValidatingAdmissionPolicy 'max-replicas'`);

    // A patch is admitted as the update it makes (kubectl apply of an existing object patches it).
    const patch = await c.kubectl(['patch', 'deployment', 'small', '-n', 'vap-deny', '--type=merge', '-p', '{"spec":{"replicas":8}}']);
    expect(patch.code).not.toBe(0);
    // kubectl words a 422 from its causes, as it does against kube-apiserver.
    expect(patch.stderr).toContain(`The deployments "small" is invalid: : ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-binding' denied request: failed expression: object.spec.replicas <= 5`);
    expect((await api('GET', '/apis/apps/v1/namespaces/vap-deny/deployments/small')).body.spec.replicas).toBe(5);

    // Stock kubectl prints the server's words.
    const k = await c.kubectl(['apply', '-n', 'vap-deny', '-f', '-'], JSON.stringify(deployment('big', 7)));
    expect(k.code).not.toBe(0);
    expect(k.stderr).toContain("ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-binding' denied request: failed expression: object.spec.replicas <= 5");
  });

  it('Warn admits the write and says why in a Warning header (kubectl prints it); a reason sets the status code', async () => {
    await namespace('vap-warn');
    await apply(policyYaml('warn-replicas', 'vap-warn', '', '  - expression: "object.spec.replicas <= 2"\n    message: "more than 2 replicas"\n    reason: Forbidden\n'));
    await apply(bindingYaml('warn-replicas-binding', 'warn-replicas', 'Warn'));
    const r = await api('POST', '/apis/apps/v1/namespaces/vap-warn/deployments', deployment('w', 3));
    expect(r.status).toBe(201);
    expect(r.headers.warning).toBe(`299 - "Validation failed for ValidatingAdmissionPolicy 'warn-replicas' with binding 'warn-replicas-binding': more than 2 replicas"`);
    const k = await c.kubectl(['apply', '-n', 'vap-warn', '-f', '-'], JSON.stringify(deployment('w2', 4)));
    expect(k.code).toBe(0);
    expect(k.stderr).toContain("Warning: Validation failed for ValidatingAdmissionPolicy 'warn-replicas' with binding 'warn-replicas-binding': more than 2 replicas");

    // The same policy bound with Deny: the validation's reason (Forbidden) makes it a 403.
    await apply(bindingYaml('warn-replicas-deny', 'warn-replicas', 'Deny'));
    const d = await api('POST', '/apis/apps/v1/namespaces/vap-warn/deployments', deployment('w3', 3));
    expect(d.status).toBe(403);
    expect(d.body).toMatchObject({ reason: 'Forbidden', code: 403 });
    expect(d.body.message).toBe(`deployments.apps "w3" is forbidden: ValidatingAdmissionPolicy 'warn-replicas' with binding 'warn-replicas-deny' denied request: more than 2 replicas`);
  });

  it('takes its limit from a ConfigMap named by the binding, with messageExpression and variables; a missing param denies under Deny', async () => {
    await namespace('vap-params');
    const policy = policyYaml(
      'param-replicas',
      'vap-params',
      '  paramKind: {apiVersion: v1, kind: ConfigMap}\n  variables:\n  - name: max\n    expression: "int(params.data.maxReplicas)"\n',
      '  - expression: "object.spec.replicas <= variables.max"\n    messageExpression: "\'replicas \' + string(object.spec.replicas) + \' exceed the limit of \' + params.data.maxReplicas"\n',
    );
    await apply(policy);
    await apply(bindingYaml('param-replicas-binding', 'param-replicas', 'Deny', '  paramRef: {name: replica-limit, namespace: vap-params, parameterNotFoundAction: Deny}\n'));

    // No ConfigMap yet: parameterNotFoundAction Deny refuses (failurePolicy Fail).
    const missing = await api('POST', '/apis/apps/v1/namespaces/vap-params/deployments', deployment('p0', 1));
    expect(missing.status).toBe(422);
    expect(missing.body.message).toBe(
      "deployments.apps \"p0\" is forbidden: ValidatingAdmissionPolicy 'param-replicas' with binding 'param-replicas-binding' denied request: failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction",
    );

    await apply('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: replica-limit, namespace: vap-params}\ndata: {maxReplicas: "3"}\n');
    expect((await api('POST', '/apis/apps/v1/namespaces/vap-params/deployments', deployment('p1', 3))).status).toBe(201);
    const over = await api('POST', '/apis/apps/v1/namespaces/vap-params/deployments', deployment('p2', 4));
    expect(over.status).toBe(422);
    expect(over.body.message).toBe(
      "deployments.apps \"p2\" is forbidden: ValidatingAdmissionPolicy 'param-replicas' with binding 'param-replicas-binding' denied request: replicas 4 exceed the limit of 3",
    );
  });

  it('applies only where its matchConditions hold', async () => {
    await namespace('vap-conds');
    await apply(
      policyYaml(
        'cond-replicas',
        'vap-conds',
        "  matchConditions:\n  - name: enforced\n    expression: \"has(object.metadata.labels) && 'enforce' in object.metadata.labels\"\n",
        '  - expression: "object.spec.replicas <= 1"\n',
      ),
    );
    await apply(bindingYaml('cond-replicas-binding', 'cond-replicas', 'Deny'));
    expect((await api('POST', '/apis/apps/v1/namespaces/vap-conds/deployments', deployment('free', 4))).status).toBe(201);
    const r = await api('POST', '/apis/apps/v1/namespaces/vap-conds/deployments', deployment('held', 4, { enforce: 'yes' }));
    expect(r.status).toBe(422);
    expect(r.body.message).toContain("ValidatingAdmissionPolicy 'cond-replicas' with binding 'cond-replicas-binding' denied request: failed expression: object.spec.replicas <= 1");
  });

  it('sees the stored object as oldObject on updates and the namespace as namespaceObject', async () => {
    await namespace('vap-old');
    await apply(
      policyYaml(
        'no-shrink',
        'vap-old',
        '',
        '  - expression: "oldObject == null || object.spec.replicas >= oldObject.spec.replicas"\n    messageExpression: "\'deployments in \' + namespaceObject.metadata.name + \' may not shrink below \' + string(oldObject.spec.replicas)"\n',
      ),
    );
    await apply(bindingYaml('no-shrink-binding', 'no-shrink', 'Deny'));
    expect((await api('POST', '/apis/apps/v1/namespaces/vap-old/deployments', deployment('d', 3))).status).toBe(201);
    const up = await c.kubectl(['scale', 'deployment', 'd', '-n', 'vap-old', '--replicas=4']);
    expect(up.code).toBe(0);
    const r = await c.kubectl(['patch', 'deployment', 'd', '-n', 'vap-old', '--type=merge', '-p', '{"spec":{"replicas":2}}']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("ValidatingAdmissionPolicy 'no-shrink' with binding 'no-shrink-binding' denied request: deployments in vap-old may not shrink below 4");
  });

  it('asks the authorizer: a custom verb lets one user past the limit, the request resource, other resources, a path and a service account', async () => {
    /** A Role in vap-authz holding one verb on Deployments, bound to one user. */
    const deploymentsVerb = (role: string, verb: string, user: string) => `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: ${role}, namespace: vap-authz}
rules:
- {apiGroups: [apps], resources: [deployments], verbs: [${verb}]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: ${role}s, namespace: vap-authz}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: ${role}}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: ${user}}
`;
    await namespace('vap-authz');
    // dev may edit in the namespace; lead may edit, and "override" Deployments (a verb RBAC only stores).
    await apply(`apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: editors, namespace: vap-authz}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: dev}
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: lead}
---
${deploymentsVerb('overrider', 'override', 'lead')}`);
    await apply(
      policyYaml(
        'override-replicas',
        'vap-authz',
        '',
        `  - expression: "object.spec.replicas <= 5 || authorizer.requestResource.check('override').allowed()"
    messageExpression: "'user ' + request.userInfo.username + ' may not run more than 5 replicas'"
  - expression: "authorizer.group('').resource('configmaps').namespace(object.metadata.namespace).check('delete').allowed() && authorizer.path('/healthz').check('get').allowed()"
    message: "only those who may delete ConfigMaps here"
  - expression: "!authorizer.serviceAccount('vap-authz', 'default').group('apps').resource('deployments').namespace('vap-authz').check('create').allowed()"
    message: "the default service account may create Deployments"
`,
      ),
    );
    await apply(bindingYaml('override-replicas-binding', 'override-replicas', 'Deny'));

    const create = (name: string, replicas: number, as?: string) =>
      c.kubectl(['create', 'deployment', name, '--image=busybox', `--replicas=${replicas}`, '-n', 'vap-authz', ...(as ? [`--as=${as}`] : [])]);
    expect((await create('small', 3, 'dev')).code).toBe(0);
    const refused = await create('big', 8, 'dev');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("ValidatingAdmissionPolicy 'override-replicas' with binding 'override-replicas-binding' denied request: user dev may not run more than 5 replicas");
    expect((await api('GET', '/apis/apps/v1/namespaces/vap-authz/deployments/big')).status).toBe(404);
    // lead holds the custom verb on the request's resource; the cluster admin (system:masters) holds every verb.
    const lead = await create('big', 8, 'lead');
    expect(lead.stderr).toBe('');
    expect(lead.code).toBe(0);
    expect((await create('bigger', 9)).code).toBe(0);
    // Someone who may create Deployments but not delete ConfigMaps (a Role of create only) is refused by the second.
    await apply(deploymentsVerb('creator', 'create', 'maker'));
    const maker = await create('m', 1, 'maker');
    expect(maker.code).not.toBe(0);
    expect(maker.stderr).toContain("denied request: only those who may delete ConfigMaps here");
    // The service account is asked as itself: once it may create Deployments, the third refuses everyone.
    await apply(`apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: sa-editor, namespace: vap-authz}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects:
- {kind: ServiceAccount, name: default, namespace: vap-authz}
`);
    await until('the account may create', async () => {
      const r = await create('after', 1);
      return r.code !== 0 && r.stderr.includes('denied request: the default service account may create Deployments');
    });
  });

  it('cannot run away: comprehensions over a list literal are charged, and matches() runs on RE2', async () => {
    await namespace('vap-cost');
    const L = `[${Array.from({ length: 40 }, (_, i) => i + 1).join(', ')}]`;
    const deep = `${L}.all(a, ${L}.all(b, ${L}.all(c, ${L}.all(d, ${L}.all(e, a+b+c+d+e != object.spec.replicas)))))`;
    const name = "!has(object.metadata.annotations) || !('name' in object.metadata.annotations) || object.metadata.annotations['name'].matches('^([a-z0-9]+-?)*$')";
    await apply(policyYaml('runaway', 'vap-cost', '', `  - expression: "${deep}"\n  - expression: "${name}"\n`));
    await apply(bindingYaml('runaway-binding', 'runaway', 'Deny'));
    const denied = await api('POST', '/apis/apps/v1/namespaces/vap-cost/deployments', deployment('d', 1));
    expect(denied.status).toBe(422);
    expect(denied.body.message).toBe(
      `deployments.apps "d" is forbidden: ValidatingAdmissionPolicy 'runaway' with binding 'runaway-binding' denied request: expression '${deep}' resulted in error: operation cancelled: actual cost limit exceeded`,
    );

    // The annotation check alone: 33 characters that backtracking takes minutes over are answered at once.
    await apply(policyYaml('runaway', 'vap-cost', '', `  - expression: "${name}"\n`));
    const evil = deployment('e', 1) as any;
    evil.metadata.annotations = { name: 'a'.repeat(33) + '!' };
    await until('the updated policy', async () => (await api('POST', '/apis/apps/v1/namespaces/vap-cost/deployments', evil)).body.message?.includes('failed expression'));
    const r = await api('POST', '/apis/apps/v1/namespaces/vap-cost/deployments', evil);
    expect(r.status).toBe(422);
    expect(r.body.message).toBe(`deployments.apps "e" is forbidden: ValidatingAdmissionPolicy 'runaway' with binding 'runaway-binding' denied request: failed expression: ${name}`);
    evil.metadata.annotations.name = 'abc-def-1';
    expect((await api('POST', '/apis/apps/v1/namespaces/vap-cost/deployments', evil)).status).toBe(201);

    // A regex literal RE2 refuses does not compile (cel.ValidateRegexLiterals).
    const bad = await c.kubectl(['apply', '-f', '-'], policyYaml('bad-regex', 'nowhere', '', `  - expression: "object.metadata.name.matches('(?=a)')"\n`));
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain(
      `The ValidatingAdmissionPolicy "bad-regex" is invalid: spec.validations[0].expression: Invalid value: "object.metadata.name.matches('(?=a)')": compilation failed: ERROR: <input>:1:30: invalid matches argument`,
    );
  });

  it('refuses CEL that does not compile at create, with kube-apiserver\'s field error', async () => {
    const bad = policyYaml('bad-cel', 'nowhere', '', '  - expression: "object.spec.replicas <"\n');
    const r = await c.kubectl(['apply', '-f', '-'], bad);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(
      'The ValidatingAdmissionPolicy "bad-cel" is invalid: spec.validations[0].expression: Invalid value: "object.spec.replicas <": compilation failed: ERROR: <input>:1:',
    );
    const undeclared = await api('POST', '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies', {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name: 'undeclared' },
      spec: { matchConstraints: { resourceRules: [{ apiGroups: ['apps'], apiVersions: ['v1'], operations: ['CREATE'], resources: ['deployments'] }] }, validations: [{ expression: 'nope.spec' }] },
    });
    expect(undeclared.status).toBe(422);
    expect(undeclared.body.message).toBe(
      "ValidatingAdmissionPolicy.admissionregistration.k8s.io \"undeclared\" is invalid: spec.validations[0].expression: Invalid value: \"nope.spec\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'nope' (in container '')\n | nope.spec\n | ^",
    );
    // Defaults as kube's: failurePolicy Fail, matchPolicy Equivalent, empty selectors, scope "*".
    const ok = await api('POST', '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies', {
      metadata: { name: 'defaults' },
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      spec: { matchConstraints: { resourceRules: [{ apiGroups: ['apps'], apiVersions: ['v1'], operations: ['CREATE'], resources: ['deployments'] }] }, validations: [{ expression: 'true' }] },
    });
    expect(ok.status).toBe(201);
    expect(ok.body.spec).toMatchObject({ failurePolicy: 'Fail', matchConstraints: { matchPolicy: 'Equivalent', namespaceSelector: {}, objectSelector: {}, resourceRules: [{ scope: '*' }] } });
    const binding = await api('POST', '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings', {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: 'both' },
      spec: { policyName: 'defaults', validationActions: ['Deny', 'Warn'] },
    });
    expect(binding.status).toBe(422);
    expect(binding.body.message).toBe(
      'ValidatingAdmissionPolicyBinding.admissionregistration.k8s.io "both" is invalid: spec.validationActions: Invalid value: []admissionregistration.ValidationAction{"Deny", "Warn"}: must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)',
    );
    // The status subresource: written on its own, never by a main-resource write.
    const st = await api('PUT', '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/defaults/status', { ...ok.body, status: { observedGeneration: 1, typeChecking: {} } });
    expect(st.status).toBe(200);
    expect(st.body.status).toEqual({ observedGeneration: 1, typeChecking: {} });
    const main = await api('PUT', '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/defaults', { ...st.body, status: { observedGeneration: 7 } });
    expect(main.status).toBe(200);
    expect(main.body.status).toEqual({ observedGeneration: 1, typeChecking: {} });
    // kubectl get shows the kinds' columns.
    const g = await c.kubectl(['get', 'validatingadmissionpolicies']);
    expect(g.stdout).toMatch(/NAME\s+VALIDATIONS\s+PARAMKIND\s+AGE/);
    expect(g.stdout).toMatch(/param-replicas\s+1\s+v1\/ConfigMap/);
  });
});
