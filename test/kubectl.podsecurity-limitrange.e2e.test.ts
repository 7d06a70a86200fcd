// Pod Security admission and LimitRange through the machine's stock kubectl and the official JavaScript
// client against a real local cluster (HTTPS + SQLite): `kubectl label ns` raising enforce prints kube's
// warnings about existing pods, `kubectl run` is refused with kube's text, `kubectl apply` of a Deployment
// prints `Warning: would violate PodSecurity ...` and creates it, a LimitRange's defaults show in
// `kubectl get pod -o yaml`, and @kubernetes/client-node sees a LimitRanger refusal as kube's Status.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as k8s from '@kubernetes/client-node';
import { startTestCluster, type TestCluster } from './support/cluster.ts';

let c: TestCluster;

beforeAll(async () => {
  c = await startTestCluster({ controllers: false });
}, 60_000);
afterAll(async () => {
  await c?.destroy();
});

const RESTRICTED_DETAIL =
  'allowPrivilegeEscalation != false (container "x" must set securityContext.allowPrivilegeEscalation=false), ' +
  'unrestricted capabilities (container "x" must set securityContext.capabilities.drop=["ALL"]), ' +
  'runAsNonRoot != true (pod or container "x" must set securityContext.runAsNonRoot=true), ' +
  'seccompProfile (pod or container "x" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")';

describe('PodSecurity with kubectl', () => {
  it('labels a namespace restricted with warnings about its pods, then refuses kubectl run with kube\'s text', async () => {
    expect((await c.kubectl(['create', 'namespace', 'x'])).code).toBe(0);
    expect((await c.kubectl(['run', 'old', '-n', 'x', '--image=busybox', '--restart=Never'])).code).toBe(0);
    const label = await c.kubectl(['label', 'ns', 'x', 'pod-security.kubernetes.io/enforce=restricted']);
    expect(label.code).toBe(0);
    expect(label.stdout).toContain('namespace/x labeled');
    expect(label.stderr).toContain('Warning: existing pods in namespace "x" violate the new PodSecurity enforce level "restricted:latest"');
    expect(label.stderr).toContain('Warning: old: allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile');

    const run = await c.kubectl(['run', 'x', '-n', 'x', '--image=busybox', '--restart=Never']);
    expect(run.code).not.toBe(0);
    expect(run.stderr.trim()).toBe(`Error from server (Forbidden): pods "x" is forbidden: violates PodSecurity "restricted:latest": ${RESTRICTED_DETAIL}`);
    expect((await c.kubectl(['get', 'pod', 'x', '-n', 'x'])).stderr).toContain('NotFound');

    const bad = await c.kubectl(['label', 'ns', 'x', '--overwrite', 'pod-security.kubernetes.io/warn=loose']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain(
      'Namespace "x" is invalid: metadata.labels[pod-security.kubernetes.io/warn]: Invalid value: "loose": must be one of privileged, baseline, restricted',
    );
  });

  it('applies a Deployment with kube\'s PodSecurity warning and creates it', async () => {
    await c.kubectl(['create', 'namespace', 'w']);
    await c.kubectl(['label', 'ns', 'w', 'pod-security.kubernetes.io/enforce=restricted', 'pod-security.kubernetes.io/warn=restricted']);
    const manifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: w
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: x
        image: busybox
`;
    const r = await c.kubectl(['apply', '-f', '-'], manifest);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`Warning: would violate PodSecurity "restricted:latest": ${RESTRICTED_DETAIL}`);
    expect(r.stdout).toContain('deployment.apps/web created');
    // Applying again (a server-side patch of the stored object) warns again, as kube does.
    const again = await c.kubectl(['apply', '-f', '-'], manifest.replace('image: busybox', 'image: busybox:stable'));
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('Warning: would violate PodSecurity "restricted:latest"');
  });
});

describe('LimitRange with kubectl and the JS client', () => {
  it('shows a LimitRange\'s defaults in kubectl get pod -o yaml', async () => {
    await c.kubectl(['create', 'namespace', 'lim']);
    const lr = `apiVersion: v1
kind: LimitRange
metadata:
  name: limits
  namespace: lim
spec:
  limits:
  - type: Container
    default: {cpu: 500m, memory: 256Mi}
    defaultRequest: {cpu: 250m, memory: 128Mi}
    max: {cpu: "1"}
`;
    expect((await c.kubectl(['apply', '-f', '-'], lr)).code).toBe(0);
    expect((await c.kubectl(['get', 'limits', '-n', 'lim'])).stdout).toMatch(/^NAME\s+CREATED AT\nlimits\s+\d{4}-/);
    const described = (await c.kubectl(['describe', 'limitrange', 'limits', '-n', 'lim'])).stdout;
    expect(described).toMatch(/Container\s+cpu\s+-\s+1\s+250m\s+500m\s+-/);
    expect((await c.kubectl(['run', 'p', '-n', 'lim', '--image=busybox', '--restart=Never'])).code).toBe(0);
    const yaml = (await c.kubectl(['get', 'pod', 'p', '-n', 'lim', '-o', 'yaml'])).stdout;
    // kubectl's YAML folds the long annotation: read it back unfolded.
    expect(yaml).toContain('kubernetes.io/limit-ranger:');
    const note = await c.kubectl(['get', 'pod', 'p', '-n', 'lim', '-o', 'jsonpath={.metadata.annotations.kubernetes\\.io/limit-ranger}']);
    expect(note.stdout).toBe('LimitRanger plugin set: cpu, memory request for container p; cpu, memory limit for container p');
    expect(yaml).toMatch(/resources:\n\s+limits:\n\s+cpu: 500m\n\s+memory: 256Mi\n\s+requests:\n\s+cpu: 250m\n\s+memory: 128Mi/);

    const refused = await c.kubectl(['run', 'big', '-n', 'lim', '--image=busybox', '--restart=Never', '--overrides={"spec":{"containers":[{"name":"big","image":"busybox","resources":{"limits":{"cpu":"2"}}}]}}']);
    expect(refused.stderr.trim()).toBe('Error from server (Forbidden): pods "big" is forbidden: maximum cpu usage per Container is 1, but limit is 2');
  });

  it('gives @kubernetes/client-node kube\'s Status for a LimitRanger refusal', async () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(c.kubeconfigPath);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const err = await core
      .createNamespacedPod({ namespace: 'lim', body: { metadata: { name: 'js' }, spec: { containers: [{ name: 'js', image: 'busybox', resources: { limits: { cpu: '1500m' } } }] } } })
      .catch((e) => e);
    expect(err).toBeInstanceOf(k8s.ApiException);
    expect(err.code).toBe(403);
    expect(JSON.parse(err.body)).toMatchObject({
      kind: 'Status',
      status: 'Failure',
      reason: 'Forbidden',
      code: 403,
      message: 'pods "js" is forbidden: maximum cpu usage per Container is 1, but limit is 1500m',
    });
  });
});
