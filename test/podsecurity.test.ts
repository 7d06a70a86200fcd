// PodSecurity admission (lambdas/apiserver/admission-podsecurity.ts, podsecurity/*): the Pod Security
// Standards' checks with kube's exact messages (cases from kube's policy/check_*_test.go), then a real
// apiserver over HTTPS on both storage backends: enforce refuses pods with kube's 403, warn adds
// `Warning` headers, audit records the audit annotation, workload templates are warned but never
// refused, a raised enforce level warns about existing pods, and bad labels are kube's 422.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalCluster, type LocalCluster } from '../lambdas/local/server.ts';
import { evaluatePod, forbiddenDetail, policyToEvaluate } from '../lambdas/apiserver/podsecurity/policy.ts';
import { podSecurityAdmission } from '../lambdas/apiserver/admission-podsecurity.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { AdmissionRequest } from '../lambdas/apiserver/admission.ts';
import { ADMIN_USER } from '../lambdas/apiserver/auth.ts';
import { testStores } from './support/backends.ts';
import { call, warningsOf } from './support/api-call.ts';

const RESTRICTED = { level: 'restricted' as const, version: 'latest' };
const BASELINE = { level: 'baseline' as const, version: 'latest' };
const detail = (lv: typeof RESTRICTED | typeof BASELINE, spec: any, meta: any = {}) => forbiddenDetail(evaluatePod(lv, meta, spec));

/** A container that passes Restricted. */
const good = (name = 'c') => ({
  name,
  image: 'busybox',
  securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
});

describe('Pod Security Standards checks (kube policy tests)', () => {
  it('restricted: a bare container fails the four restricted checks, in kube order and words', () => {
    expect(detail(RESTRICTED, { containers: [{ name: 'c', image: 'busybox' }] })).toBe(
      'allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), ' +
        'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), ' +
        'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), ' +
        'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")',
    );
    expect(evaluatePod(RESTRICTED, {}, { containers: [good()] }).allowed).toBe(true);
  });

  it.each([
    ['host namespaces', { hostNetwork: true, hostIPC: true, hostPID: true, containers: [good()] }, 'host namespaces (hostNetwork=true, hostPID=true, hostIPC=true)'],
    ['privileged', { containers: [{ ...good('a'), securityContext: { ...good().securityContext, privileged: true } }] }, 'privileged (container "a" must not set securityContext.privileged=true)'],
    ['host ports', { containers: [{ ...good('a'), ports: [{ containerPort: 80, hostPort: 8080 }, { containerPort: 81, hostPort: 9090 }] }] }, 'hostPort (container "a" uses hostPorts 8080, 9090)'],
    ['hostPath (restricted types)', { volumes: [{ name: 'b', hostPath: { path: '/' } }, { name: 'a', nfs: {} }, { name: 'ok', emptyDir: {} }], containers: [good()] }, 'restricted volume types (volumes ["a" "b"] have restricted types)'],
    ['sysctls', { securityContext: { sysctls: [{ name: 'kernel.msgmax', value: '1' }, { name: 'net.ipv4.tcp_syncookies', value: '1' }] }, containers: [good()] }, 'forbidden sysctls (kernel.msgmax)'],
    ['runAsUser=0', { securityContext: { runAsUser: 0 }, containers: [{ ...good('a'), securityContext: { ...good().securityContext, runAsUser: 0 } }] }, 'runAsUser=0 (pod and container "a" must not set runAsUser=0)'],
    ['runAsNonRoot=false', { securityContext: { runAsNonRoot: false }, containers: [good('a')] }, 'runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)'],
    [
      'capabilities added',
      { containers: [{ ...good('a'), securityContext: { ...good().securityContext, capabilities: { drop: ['ALL'], add: ['SYS_ADMIN', 'NET_BIND_SERVICE', 'CHOWN'] } } }] },
      'unrestricted capabilities (container "a" must not include "CHOWN", "SYS_ADMIN" in securityContext.capabilities.add)',
    ],
    [
      'seccomp Unconfined',
      { securityContext: { seccompProfile: { type: 'Unconfined' } }, containers: [good('a')] },
      'seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")',
    ],
  ])('restricted: %s', (_name, spec, message) => {
    expect(detail(RESTRICTED, spec)).toBe(message);
  });

  it('baseline: allows what restricted refuses, refuses what it must, with the overlapping baseline checks', () => {
    expect(evaluatePod(BASELINE, {}, { containers: [{ name: 'c', image: 'busybox' }] }).allowed).toBe(true);
    expect(
      detail(BASELINE, {
        hostPID: true,
        volumes: [{ name: 'host', hostPath: { path: '/' } }],
        containers: [
          { name: 'a', securityContext: { privileged: true, capabilities: { add: ['NET_RAW', 'CHOWN'] }, seLinuxOptions: { type: 'spc_t', user: 'root' } } },
          { name: 'b', securityContext: { procMount: 'Unmasked', seccompProfile: { type: 'Unconfined' } } },
        ],
      }),
    ).toBe(
      'host namespaces (hostPID=true), privileged (container "a" must not set securityContext.privileged=true), ' +
        'procMount (container "b" must not set securityContext.procMount to "Unmasked"), ' +
        'seLinuxOptions (container "a" set forbidden securityContext.seLinuxOptions: type "spc_t"; user may not be set), ' +
        'non-default capabilities (container "a" must not include "NET_RAW" in securityContext.capabilities.add), ' +
        'hostPath volumes (volume "host"), seccompProfile (container "b" must not set securityContext.seccompProfile.type to "Unconfined")',
    );
    expect(detail(BASELINE, { containers: [{ name: 'c' }] }, { annotations: { 'container.apparmor.security.beta.kubernetes.io/c': 'unconfined' } })).toBe(
      'forbidden AppArmor profile (container.apparmor.security.beta.kubernetes.io/c="unconfined")',
    );
    // check_appArmorProfile_test.go's "multiple containers".
    const annotations = Object.fromEntries(
      [['', 'bogus'], ['a', ''], ['b', 'runtime/default'], ['c', 'localhost/'], ['d', 'localhost/foo'], ['e', 'unconfined'], ['f', 'unknown']].map(([k, v]) => [`container.apparmor.security.beta.kubernetes.io/${k}`, v]),
    );
    expect(detail(BASELINE, {}, { annotations })).toBe(
      'forbidden AppArmor profiles (container.apparmor.security.beta.kubernetes.io/="bogus", container.apparmor.security.beta.kubernetes.io/e="unconfined", container.apparmor.security.beta.kubernetes.io/f="unknown")',
    );
  });

  it('labels: levels and versions as kube parses them, bad values fail closed for enforce and open for warn', () => {
    const { policy, errors } = policyToEvaluate({
      'pod-security.kubernetes.io/enforce': 'strict',
      'pod-security.kubernetes.io/warn': 'nope',
      'pod-security.kubernetes.io/audit': 'baseline',
      'pod-security.kubernetes.io/audit-version': 'v1.32',
    });
    expect(policy).toEqual({ enforce: { level: 'restricted', version: 'latest' }, audit: { level: 'baseline', version: 'v1.32' }, warn: { level: 'privileged', version: 'latest' } });
    expect(errors.map((e) => `${e.field}: ${e.message}`)).toEqual([
      'metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted',
      'metadata.labels[pod-security.kubernetes.io/warn]: Invalid value: "nope": must be one of privileged, baseline, restricted',
    ]);
  });
});

const stores = await testStores('podsecurity');

describe.each(stores)('PodSecurity admission over HTTPS (%s)', (_name, makeStore, enabled) => {
  let c: LocalCluster;
  let dataDir: string;
  beforeAll(async () => {
    if (!enabled) return;
    dataDir = mkdtempSync(join(tmpdir(), 'skiff-psa-'));
    const open = await makeStore();
    c = await startLocalCluster({ port: 0, dataDir, controllers: false, backend: open() });
  }, 60_000);
  afterAll(async () => {
    await c?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const ns = (name: string, labels: Record<string, string>) => call(c, 'POST', '/api/v1/namespaces', { metadata: { name, labels } });
  const pod = (name: string, containers: any[], extra: any = {}) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { containers, ...extra } });

  it.runIf(enabled)('enforce refuses a violating pod with kube\'s 403 and writes nothing; a compliant pod is created', async () => {
    expect((await ns('enf', { 'pod-security.kubernetes.io/enforce': 'restricted' })).status).toBe(201);
    const r = await call(c, 'POST', '/api/v1/namespaces/enf/pods', pod('x', [{ name: 'c', image: 'busybox' }]));
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({
      kind: 'Status',
      status: 'Failure',
      reason: 'Forbidden',
      code: 403,
      details: { name: 'x', kind: 'pods' },
      message:
        'pods "x" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), ' +
        'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), ' +
        'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")',
    });
    expect((await call(c, 'GET', '/api/v1/namespaces/enf/pods/x')).status).toBe(404);
    const ok = await call(c, 'POST', '/api/v1/namespaces/enf/pods', pod('y', [good()]));
    expect(ok.status).toBe(201);
    expect(warningsOf(ok)).toEqual([]);
  });

  it.runIf(enabled)('enforce at a pinned version names it; warn adds kube\'s Warning header and admits', async () => {
    await ns('ver', { 'pod-security.kubernetes.io/enforce': 'baseline', 'pod-security.kubernetes.io/enforce-version': 'v1.32', 'pod-security.kubernetes.io/warn': 'restricted' });
    const priv = await call(c, 'POST', '/api/v1/namespaces/ver/pods', pod('p', [{ name: 'c', image: 'busybox', securityContext: { privileged: true } }]));
    expect(priv.status).toBe(403);
    expect(priv.body.message).toBe('pods "p" is forbidden: violates PodSecurity "baseline:v1.32": privileged (container "c" must not set securityContext.privileged=true)');
    const warned = await call(c, 'POST', '/api/v1/namespaces/ver/pods', pod('w', [{ name: 'c', image: 'busybox', securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }]));
    expect(warned.status).toBe(201);
    expect(warningsOf(warned)).toEqual([
      'would violate PodSecurity "restricted:latest": seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")',
    ]);
  });

  it.runIf(enabled)('workload templates are warned, never refused, under enforce=restricted', async () => {
    await ns('wl', { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/warn': 'restricted' });
    const template = { metadata: { labels: { app: 'w' } }, spec: { containers: [{ name: 'c', image: 'busybox', securityContext: { ...good().securityContext, runAsNonRoot: undefined } }] } };
    const dep = await call(c, 'POST', '/apis/apps/v1/namespaces/wl/deployments', { metadata: { name: 'd' }, spec: { selector: { matchLabels: { app: 'w' } }, template } });
    expect(dep.status).toBe(201);
    expect(warningsOf(dep)).toEqual(['would violate PodSecurity "restricted:latest": runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true)']);
    const cj = await call(c, 'POST', '/apis/batch/v1/namespaces/wl/cronjobs', {
      metadata: { name: 'cj' },
      spec: { schedule: '* * * * *', jobTemplate: { spec: { template: { spec: { ...template.spec, restartPolicy: 'Never' } } } } },
    });
    expect(cj.status).toBe(201);
    expect(warningsOf(cj)).toHaveLength(1);
  });

  it.runIf(enabled)('audit records kube\'s audit-violations annotation on the admission request', async () => {
    await ns('aud', { 'pod-security.kubernetes.io/audit': 'baseline' });
    const req: AdmissionRequest = {
      operation: 'CREATE',
      resource: findResource('', 'v1', 'pods')!,
      namespace: 'aud',
      object: pod('a', [{ name: 'c', image: 'busybox' }], { hostNetwork: true }) as any,
      user: ADMIN_USER,
      warnings: [],
    };
    await podSecurityAdmission.admit(req, c.api.registry);
    expect(req.annotations).toEqual({
      'pod-security.kubernetes.io/enforce-policy': 'privileged:latest',
      'pod-security.kubernetes.io/audit-violations': 'would violate PodSecurity "baseline:latest": host namespaces (hostNetwork=true)',
    });
    expect(req.warnings).toEqual([]);
  });

  it.runIf(enabled)('raising enforce on a namespace warns about its existing pods (kubectl label\'s PATCH), and relaxing it does not', async () => {
    await ns('relabel', {});
    for (const n of ['b', 'a', 'c']) expect((await call(c, 'POST', '/api/v1/namespaces/relabel/pods', pod(n, [{ name: 'c', image: 'busybox' }]))).status).toBe(201);
    expect((await call(c, 'POST', '/api/v1/namespaces/relabel/pods', pod('hostnet', [{ name: 'c', image: 'busybox' }], { hostNetwork: true }))).status).toBe(201);
    expect((await call(c, 'POST', '/api/v1/namespaces/relabel/pods', pod('fine', [good()]))).status).toBe(201);
    const patch = (labels: Record<string, string | null>) => call(c, 'PATCH', '/api/v1/namespaces/relabel', { metadata: { labels } }, 'application/merge-patch+json');
    const r = await patch({ 'pod-security.kubernetes.io/enforce': 'restricted' });
    expect(r.status).toBe(200);
    expect(r.body.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
    expect(warningsOf(r)).toEqual([
      'existing pods in namespace "relabel" violate the new PodSecurity enforce level "restricted:latest"',
      'a (and 2 other pods): allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile',
      'hostnet: host namespaces, allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile',
    ]);
    const relaxed = await patch({ 'pod-security.kubernetes.io/enforce': 'baseline' });
    expect(relaxed.status).toBe(200);
    expect(warningsOf(relaxed)).toEqual([]);
  });

  it.runIf(enabled)('invalid labels are kube\'s 422 on create and on update, and write nothing', async () => {
    const bad = await ns('badlabel', { 'pod-security.kubernetes.io/enforce': 'strict' });
    expect(bad.status).toBe(422);
    expect(bad.body).toMatchObject({
      reason: 'Invalid',
      code: 422,
      message: 'Namespace "badlabel" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted',
    });
    expect((await call(c, 'GET', '/api/v1/namespaces/badlabel')).status).toBe(404);
    await ns('goodlabel', {});
    const upd = await call(c, 'PATCH', '/api/v1/namespaces/goodlabel', { metadata: { labels: { 'pod-security.kubernetes.io/warn-version': '1.32' } } }, 'application/merge-patch+json');
    expect(upd.status).toBe(422);
    expect(upd.body.message).toBe('Namespace "goodlabel" is invalid: metadata.labels[pod-security.kubernetes.io/warn-version]: Invalid value: "1.32": must be "latest" or "v1.x"');
    expect((await call(c, 'GET', '/api/v1/namespaces/goodlabel')).body.metadata.labels?.['pod-security.kubernetes.io/warn-version']).toBeUndefined();
  });
});
