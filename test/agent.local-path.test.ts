// Persistent volumes end to end on the real Docker Engine, driven with the machine's kubectl: a claim of
// the default class local-path waits for its first pod, is provisioned on that pod's node and bound; the
// pod writes a file into it; after that pod is deleted a new pod of the same claim reads the file; kubectl
// get pv,pvc,sc prints kube's columns; deleting the claim deletes the volume and its directory on the node
// (and a directory whose volume is gone is removed as well); a StatefulSet's claims work the same way.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Docker from 'dockerode';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { requireDocker, TEST_IMAGE } from './support/docker.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { until } from './support/until.ts';
import { containerBinds, prepareVolumes, readOnlyVolumes } from '../node-agent/volumes.ts';

const docker = await requireDocker();
const podsRes = findResource('', 'v1', 'pods')!;
const claimsRes = findResource('', 'v1', 'persistentvolumeclaims')!;
const volumesRes = findResource('', 'v1', 'persistentvolumes')!;
const NODE = `lp-node-${process.pid}`;
const NETWORK = `skiff-lp-${process.pid}`;
const AGENT = { nodeName: NODE, network: NETWORK, backoffBaseMs: 1000, backoffMaxMs: 8000, heartbeatMs: 2000, resyncMs: 3000 };

const podWithClaim = (name: string, script: string) =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 1,
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }],
      containers: [{ name: 'c', image: TEST_IMAGE, command: ['sh', '-c', script], volumeMounts: [{ name: 'data', mountPath: '/data' }] }],
    },
  });

/** kubectl get output as rows of cells (split on runs of 2+ spaces). */
const rows = (out: string) =>
  out
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s{2,}/));

describe('persistentVolumeClaim volumes on the node (no engine)', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-pvc-vol-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const pod = (volumes: any[]): KubeObject => ({ metadata: { name: 'p', namespace: 'default', uid: 'u' }, spec: { containers: [{ name: 'c' }], volumes } });
  const localPathPV = (dir: string): KubeObject => ({
    metadata: { name: 'pvc-1', annotations: { 'pv.kubernetes.io/provisioned-by': 'rancher.io/local-path' } },
    spec: { hostPath: { path: dir, type: 'DirectoryOrCreate' } },
  });
  const objs = (claims: [string, KubeObject][]) => ({ configMaps: new Map(), secrets: new Map(), claims: new Map(claims) });

  it("mounts the bound volume's directory, made writable by anyone on first use; an unbound claim waits", () => {
    const dir = path.join(tmp, 'local-path', 'pvc-1');
    const p = pod([{ name: 'data', persistentVolumeClaim: { claimName: 'www' } }]);
    const v = prepareVolumes(p, path.join(tmp, 'pod'), objs([['www', localPathPV(dir)]]));
    expect(v.get('data')).toBe(dir);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o777);
    expect(() => prepareVolumes(p, path.join(tmp, 'pod'), objs([]))).toThrow('volume "data": PersistentVolumeClaim is not bound: "www"');
  });

  it('a local volume must exist; other volume types are refused by name; readOnly claims bind read-only', () => {
    const local: KubeObject = { metadata: { name: 'disk' }, spec: { local: { path: path.join(tmp, 'no-disk') } } };
    const p = pod([{ name: 'data', persistentVolumeClaim: { claimName: 'c' } }]);
    expect(() => prepareVolumes(p, path.join(tmp, 'pod'), objs([['c', local]]))).toThrow(/hostPath type check failed: .*no-disk is not a directory/);
    const nfs: KubeObject = { metadata: { name: 'share' }, spec: { nfs: { server: 'x', path: '/e' } } };
    expect(() => prepareVolumes(p, path.join(tmp, 'pod'), objs([['c', nfs]]))).toThrow("persistent volume share of type nfs is not supported by Skiff's node agent (it supports hostPath and local)");
    const ro = pod([{ name: 'data', persistentVolumeClaim: { claimName: 'c', readOnly: true } }]);
    const binds = containerBinds({ name: 'c', volumeMounts: [{ name: 'data', mountPath: '/data' }] }, new Map([['data', '/host/d']]), [], readOnlyVolumes(ro));
    expect(binds).toEqual(['/host/d:/data:ro']);
  });
});

describe.skipIf(!docker)('local-path volumes on Docker (kubectl end to end)', () => {
  let c: TestCluster;
  const engine = docker as Docker;
  const get = (res: typeof podsRes, name: string, ns: string | undefined = 'default') => c.api.registry.get(res, ns, name).catch(() => undefined) as Promise<KubeObject | undefined>;
  const kubectl = async (args: string[], stdin?: string) => {
    const r = await c.kubectl(args, stdin);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return r.stdout;
  };

  beforeAll(async () => {
    c = await startTestCluster({ agents: 1, requireAgents: true, agentOptions: AGENT });
  }, 60_000);
  afterAll(async () => {
    for (const a of c?.agents ?? []) await a.close({ removePods: true });
    await c?.destroy();
    await engine.getNetwork(NETWORK).remove().catch(() => {});
  });

  it('the default class local-path is there at start', async () => {
    const t = rows(await kubectl(['get', 'sc']));
    expect(t[0]).toEqual(['NAME', 'PROVISIONER', 'RECLAIMPOLICY', 'VOLUMEBINDINGMODE', 'ALLOWVOLUMEEXPANSION', 'AGE']);
    expect(t[1]!.slice(0, 5)).toEqual(['local-path (default)', 'rancher.io/local-path', 'Delete', 'WaitForFirstConsumer', 'false']);
  });

  it('a claim is provisioned on its first pod\'s node; a file written by one pod is read by the next; deleting the claim removes the volume and its directory', async () => {
    await kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }));
    const pending = rows(await kubectl(['get', 'pvc']));
    expect(pending[0]).toEqual(['NAME', 'STATUS', 'VOLUME', 'CAPACITY', 'ACCESS MODES', 'STORAGECLASS', 'VOLUMEATTRIBUTESCLASS', 'AGE']);
    // Empty cells collapse in the split: Pending, no volume, no capacity or modes yet.
    expect(pending[1]!.slice(0, 4)).toEqual(['data', 'Pending', 'local-path', '<unset>']);

    await kubectl(['apply', '-f', '-'], podWithClaim('writer', 'echo hello-from-writer > /data/msg'));
    const writer = await until('writer Succeeded', async () => {
      const p = await get(podsRes, 'writer');
      return p?.status?.phase === 'Succeeded' && p;
    }, 60_000);
    expect(writer.spec.nodeName).toBe(NODE);
    const claim = (await get(claimsRes, 'data'))!;
    expect(claim.status.phase).toBe('Bound');
    expect(claim.metadata.annotations?.['volume.kubernetes.io/selected-node']).toBe(NODE);
    const pvName = `pvc-${claim.metadata.uid}`;
    expect(claim.spec.volumeName).toBe(pvName);
    const pv = (await get(volumesRes, pvName, undefined))!;
    const dir = path.join(c.dataDir, 'nodes', NODE, 'local-path', pvName);
    expect(pv.spec.hostPath.path).toBe(dir);
    expect(fs.readFileSync(path.join(dir, 'msg'), 'utf8')).toBe('hello-from-writer\n');

    await kubectl(['delete', 'pod', 'writer']);
    await kubectl(['apply', '-f', '-'], podWithClaim('reader', 'cat /data/msg'));
    await until('reader Succeeded', async () => (await get(podsRes, 'reader'))?.status?.phase === 'Succeeded', 60_000);
    expect(await kubectl(['logs', 'reader'])).toBe('hello-from-writer\n');

    const pvRows = rows(await kubectl(['get', 'pv']));
    expect(pvRows[0]).toEqual(['NAME', 'CAPACITY', 'ACCESS MODES', 'RECLAIM POLICY', 'STATUS', 'CLAIM', 'STORAGECLASS', 'VOLUMEATTRIBUTESCLASS', 'REASON', 'AGE']);
    expect(pvRows[1]!.slice(0, 8)).toEqual([pvName, '1Gi', 'RWO', 'Delete', 'Bound', 'default/data', 'local-path', '<unset>']);
    const pvcRows = rows(await kubectl(['get', 'pvc']));
    expect(pvcRows[1]!.slice(0, 7)).toEqual(['data', 'Bound', pvName, '1Gi', 'RWO', 'local-path', '<unset>']);
    const describedClaim = await kubectl(['describe', 'pvc', 'data']);
    for (const re of [/Status:\s+Bound/, /Volume:\s+pvc-/, /StorageClass:\s+local-path/, /Used By:\s+reader/, /ProvisioningSucceeded\s+.*Successfully provisioned volume pvc-/, /WaitForFirstConsumer\s+.*waiting for first consumer/]) {
      expect(describedClaim).toMatch(re);
    }
    const describedVolume = await kubectl(['describe', 'pv', pvName]);
    for (const re of [/Claim:\s+default\/data/, /Reclaim Policy:\s+Delete/, /Required Terms:\s+Term 0:\s+kubernetes.io\/hostname in \[/, /Type:\s+HostPath/]) expect(describedVolume).toMatch(re);
    const both = await kubectl(['get', 'pv,pvc,sc', '-o', 'name']);
    expect(both.trim().split('\n')).toEqual([`persistentvolume/${pvName}`, 'persistentvolumeclaim/data', 'storageclass.storage.k8s.io/local-path']);

    // The claim is protected while a pod uses it; then it goes, and its volume and directory with it.
    await kubectl(['delete', 'pod', 'reader']);
    await kubectl(['delete', 'pvc', 'data', '--wait=false']);
    await until('volume deleted', async () => !(await get(volumesRes, pvName, undefined)), 60_000);
    expect(await get(claimsRes, 'data')).toBeUndefined();
    await until('directory removed', async () => !fs.existsSync(dir), 30_000);

    // A directory whose volume is gone altogether (its finalizer removed by hand) is removed too.
    const orphan = path.join(c.dataDir, 'nodes', NODE, 'local-path', 'pvc-orphan');
    fs.mkdirSync(orphan, { recursive: true });
    fs.writeFileSync(path.join(orphan, 'left'), 'x');
    await until('orphan directory removed', async () => !fs.existsSync(orphan), 30_000);
  }, 180_000);

  it("a StatefulSet's claim from its volumeClaimTemplates is provisioned and keeps its data across the pod's replacement", async () => {
    await kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        metadata: { name: 'web' },
        spec: {
          serviceName: 'web',
          replicas: 1,
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: {
              terminationGracePeriodSeconds: 1,
              containers: [{ name: 'c', image: TEST_IMAGE, command: ['sh', '-c', 'test -f /www/first || echo "$(hostname) $RANDOM" > /www/first; cat /www/first; sleep 3600'], volumeMounts: [{ name: 'www', mountPath: '/www' }] }],
            },
          },
          volumeClaimTemplates: [{ metadata: { name: 'www' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '100Mi' } } } }],
        },
      }),
    );
    const first = await until('web-0 Running', async () => {
      const p = await get(podsRes, 'web-0');
      return p?.status?.phase === 'Running' && p;
    }, 60_000);
    const claim = (await get(claimsRes, 'www-web-0'))!;
    expect(claim.status.phase).toBe('Bound');
    expect(claim.spec.storageClassName).toBe('local-path');
    const written = await until('first line', async () => (await c.kubectl(['logs', 'web-0'])).stdout.trim());
    expect(written).toMatch(/^web-0 \d+$/);

    await kubectl(['delete', 'pod', 'web-0']);
    await until('web-0 replaced and Running', async () => {
      const p = await get(podsRes, 'web-0');
      return p?.metadata.uid !== first.metadata.uid && p?.status?.phase === 'Running';
    }, 60_000);
    expect(await until('replacement log', async () => (await c.kubectl(['logs', 'web-0'])).stdout.trim())).toBe(written);
    expect((await get(claimsRes, 'www-web-0'))!.metadata.uid).toBe(claim.metadata.uid);
    await kubectl(['delete', 'statefulset', 'web']);
  }, 180_000);
});
