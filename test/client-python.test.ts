// The official Python client (PyPI `kubernetes`) against `skiff up` as a user runs it (the built CLI, its
// own process, with two hollow nodes): a CustomResourceDefinition made through ApiextensionsV1Api, then its
// custom resources through the dynamic client, which finds them by discovery (test/python/dynamic_crd.py);
// and the workload kinds through AppsV1Api, BatchV1Api, CoreV1Api and PolicyV1 (test/python/workloads.py).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killLeftovers, skiffUp, type Skiff } from './support/skiff-up.ts';
import { pythonClient, type PythonClient } from './support/python-client.ts';

const py = await pythonClient();
const dataDir = mkdtempSync(join(tmpdir(), 'skiff-py-'));
let skiff: Skiff | undefined;

beforeAll(async () => {
  if (py) skiff = await skiffUp(dataDir, '--hollow-nodes', '2');
});
afterAll(async () => {
  skiff?.proc.kill('SIGTERM');
  await skiff?.exited;
  await killLeftovers();
  rmSync(dataDir, { recursive: true, force: true });
});

describe.skipIf(!py)('the Python client', () => {
  it(`kubernetes ${py?.version ?? ''}: a CRD, then its custom resources through the dynamic client`, async () => {
    const out = await (py as PythonClient).run('dynamic_crd.py', join(dataDir, 'kubeconfig'), 'default');
    expect(out.established).toBe(true);
    expect(out.discovered).toEqual({ name: 'crontabs', namespaced: true, shortNames: ['ct'] });
    // The schema's default filled in; generation 1.
    expect(out.created).toEqual({ name: 'py', replicas: 1, generation: 1 });
    expect(out.got).toBe('*/5 * * * *');
    expect(out.list).toEqual({ kind: 'CronTabList', names: ['py'] });
    expect(out.patched).toEqual({ image: 'y', generation: 2 });
    // The status subresource changes status only, and not the generation.
    expect(out.status).toEqual({ active: 2, generation: 2 });
    expect(out.invalid).toEqual({
      status: 422,
      reason: 'Invalid',
      message: 'CronTab.stable.example.com "bad" is invalid: spec: Invalid value: "object": at most 10 replicas',
    });
    expect(out.watch).toEqual(['ADDED py x', 'MODIFIED py y', 'MODIFIED py y']);
    expect(out.deleted).toBe(true);
  }, 120_000);

  it(`kubernetes ${py?.version ?? ''}: Deployments, DaemonSets, StatefulSets, Jobs, CronJobs, claims and eviction`, async () => {
    const out = await (py as PythonClient).run('workloads.py', join(dataDir, 'kubeconfig'), 'workloads');
    expect(out.deploymentDefaults).toEqual({ strategy: 'RollingUpdate', maxSurge: '25%', revisionHistoryLimit: 10, progressDeadlineSeconds: 600 });
    expect(out.available).toEqual({ Available: 'True', Progressing: 'True' });
    expect(out.scale).toBe(3);
    // Rolled to busybox:2: the new ReplicaSet (revision 2) holds the 3 replicas, the old one none.
    expect(out.replicaSets).toEqual([
      ['1', 0, 'busybox:1'],
      ['2', 3, 'busybox:2'],
    ]);
    expect(out.deploymentRevision).toBe('2');
    expect(out.watch).toEqual(['MODIFIED', 'web', 'front']);
    expect(out.invalid).toEqual({ status: 422, reason: 'Invalid', causes: ['spec.template.metadata.labels'] });
    expect(out.daemonSet).toEqual({ nodes: 2, ready: 2, distinctNodes: 2 });
    expect(out.statefulSet).toEqual({ pods: ['db-0', 'db-1'], claims: ['data-db-0', 'data-db-1'] });
    expect(out.job).toEqual({ succeeded: 2, completionTime: true });
    expect(out.cronJob).toEqual({ concurrencyPolicy: 'Allow', successfulJobsHistoryLimit: 3 });
    expect(out.evicted).toBe(true);
    expect(out.afterDelete).toEqual({ replicaSets: 0, pods: 0 });
  }, 300_000);
});
