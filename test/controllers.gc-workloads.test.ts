// Cascading deletion of the workload kinds, with kubectl delete --cascade=background|foreground|orphan
// against a real local cluster running only the garbage collector (the workload controllers are off, so
// the dependents are exactly the ones made here, with their ownerReferences, as the controllers would
// make them): an apps/v1 ReplicaSet's pods, a Deployment's ReplicaSet and its pods (two levels), a
// batch/v1 Job's pods, and a DaemonSet's ControllerRevisions. Foreground deletion is seen blocked on a
// dependent that is still terminating, and completing once it is gone.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { garbageCollector } from '../lambdas/controllers/garbagecollector.ts';
import { runControllers, type ControllerRunner } from '../lambdas/local/controllers.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { until } from './support/until.ts';

let c: TestCluster;
let runner: ControllerRunner;

beforeAll(async () => {
  c = await startTestCluster({ controllers: false });
  runner = runControllers(c.api.controllerContext(), [garbageCollector], { resyncMs: 1000 });
});
afterAll(async () => {
  await runner?.stop();
  await c?.destroy();
});

async function apply(yaml: string): Promise<any> {
  const r = await c.kubectl(['apply', '-f', '-', '-o', 'json'], yaml);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}
async function getJson(args: string[]): Promise<any | undefined> {
  const r = await c.kubectl([...args, '-o', 'json']);
  if (r.code !== 0) {
    expect(r.stderr).toContain('NotFound');
    return undefined;
  }
  return JSON.parse(r.stdout);
}
const ref = (o: any, block = true) => ({ apiVersion: o.apiVersion, kind: o.kind, name: o.metadata.name, uid: o.metadata.uid, controller: true, blockOwnerDeletion: block });
const template = (labels: Record<string, string>) => ({ metadata: { labels }, spec: { containers: [{ name: 'c', image: 'busybox' }] } });

/** Pods as the owner's controller makes them: its labels, a controller reference (and finalizers, if asked). */
async function podsOwnedBy(owner: any, labels: Record<string, string>, n: number, finalizers?: string[]): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = `${owner.metadata.name}-${i}`;
    await apply(JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, labels, ownerReferences: [ref(owner)], ...(finalizers ? { finalizers } : {}) }, spec: template(labels).spec }));
    names.push(name);
  }
  return names;
}
const podNames = async (selector: string) => ((await getJson(['get', 'pods', '-l', selector]))?.items ?? []).map((p: any) => p.metadata.name).sort();
const gone = (args: string[]) => until(`${args.join(' ')} gone`, async () => (await getJson(['get', ...args])) === undefined || undefined, 30_000);

function replicaSet(name: string, labels: Record<string, string>, ownerRefs?: unknown[]) {
  return JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name, labels, ...(ownerRefs ? { ownerReferences: ownerRefs } : {}) },
    spec: { replicas: 2, selector: { matchLabels: labels }, template: template(labels) },
  });
}

describe('garbage collection of workload kinds through kubectl delete --cascade', () => {
  it('ReplicaSet: background deletes its pods, orphan keeps them without the reference', async () => {
    const bg = await apply(replicaSet('rs-bg', { app: 'rs-bg' }));
    await podsOwnedBy(bg, { app: 'rs-bg' }, 2);
    const del = await c.kubectl(['delete', 'rs', 'rs-bg', '--cascade=background']);
    expect(del.stdout.trim(), del.stderr).toBe('replicaset.apps "rs-bg" deleted');
    await until('rs-bg pods gone', async () => ((await podNames('app=rs-bg')).length === 0 ? true : undefined));

    const orphan = await apply(replicaSet('rs-orphan', { app: 'rs-orphan' }));
    const names = await podsOwnedBy(orphan, { app: 'rs-orphan' }, 2);
    expect((await c.kubectl(['delete', 'rs', 'rs-orphan', '--cascade=orphan'])).stdout.trim()).toBe('replicaset.apps "rs-orphan" deleted');
    await gone(['rs', 'rs-orphan']);
    const left = await until('references removed', async () => {
      const items = (await getJson(['get', 'pods', '-l', 'app=rs-orphan'])).items;
      return items.every((p: any) => !p.metadata.ownerReferences) ? items : undefined;
    });
    expect(left.map((p: any) => p.metadata.name).sort()).toEqual(names);
  });

  it('ReplicaSet, foreground: held by a dependent still terminating, gone after it', async () => {
    const fg = await apply(replicaSet('rs-fg', { app: 'rs-fg' }));
    // One pod holds a finalizer of its own: it stays terminating, so the ReplicaSet must wait.
    await podsOwnedBy(fg, { app: 'rs-fg' }, 1, ['skiff.test/hold']);
    await apply(JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'rs-fg-free', labels: { app: 'rs-fg' }, ownerReferences: [ref(fg)] }, spec: template({}).spec }));
    const del = await c.kubectl(['delete', 'rs', 'rs-fg', '--cascade=foreground', '--wait=false']);
    expect(del.code, del.stderr).toBe(0);
    const held = await until('the free pod gone, the held one terminating', async () => {
      const pods = (await getJson(['get', 'pods', '-l', 'app=rs-fg'])).items;
      return pods.length === 1 && pods[0].metadata.deletionTimestamp ? pods[0] : undefined;
    });
    expect(held.metadata.name).toBe('rs-fg-0');
    const rs = await getJson(['get', 'rs', 'rs-fg']);
    expect(rs.metadata.deletionTimestamp).toBeDefined();
    expect(rs.metadata.finalizers).toEqual(['foregroundDeletion']);
    // The dependent finishes: the ReplicaSet follows.
    expect((await c.kubectl(['patch', 'pod', 'rs-fg-0', '--type=json', '-p', '[{"op":"remove","path":"/metadata/finalizers"}]'])).code).toBe(0);
    await gone(['rs', 'rs-fg']);
    expect(await podNames('app=rs-fg')).toEqual([]);
  });

  it('Deployment: its ReplicaSet and the ReplicaSet pods go, in the background and in the foreground', async () => {
    for (const cascade of ['background', 'foreground'] as const) {
      const name = `dep-${cascade}`;
      const labels = { app: name };
      const dep = await apply(JSON.stringify({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name }, spec: { replicas: 2, selector: { matchLabels: labels }, template: template(labels) } }));
      const rs = await apply(replicaSet(`${name}-5d8f7`, labels, [ref(dep)]));
      await podsOwnedBy(rs, labels, 2);
      const del = await c.kubectl(['delete', 'deployment', name, `--cascade=${cascade}`]);
      expect(del.stdout.trim(), del.stderr).toBe(`deployment.apps "${name}" deleted`);
      await gone(['rs', `${name}-5d8f7`]);
      await until(`${name} pods gone`, async () => ((await podNames(`app=${name}`)).length === 0 ? true : undefined));
      expect(await getJson(['get', 'deployment', name])).toBeUndefined();
    }
  });

  it('Job: background and foreground take its pods; orphan, and an API delete naming no policy (batch/v1), leave them', async () => {
    for (const cascade of ['background', 'foreground', 'orphan', 'default'] as const) {
      const name = `job-${cascade}`;
      const job = await apply(JSON.stringify({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name }, spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox' }] } } } }));
      // The Job's generated selector labels, as its pods carry them.
      const labels = job.spec.template.metadata.labels as Record<string, string>;
      expect(labels['batch.kubernetes.io/controller-uid']).toBe(job.metadata.uid);
      const names = await podsOwnedBy(job, labels, 2);
      if (cascade === 'default') {
        // A client's DELETE without DeleteOptions: kube's jobStrategy orphans the pods of a batch/v1 Job.
        const del = await c.kubectl(['delete', '--raw', `/apis/batch/v1/namespaces/default/jobs/${name}`]);
        expect(del.code, del.stderr).toBe(0);
      } else {
        const del = await c.kubectl(['delete', 'job', name, `--cascade=${cascade}`]);
        expect(del.stdout.trim(), del.stderr).toBe(`job.batch "${name}" deleted`);
      }
      await gone(['job', name]);
      const sel = `batch.kubernetes.io/controller-uid=${job.metadata.uid}`;
      if (cascade === 'orphan' || cascade === 'default') {
        const left = await until('references removed', async () => {
          const items = (await getJson(['get', 'pods', '-l', sel])).items;
          return items.length === 2 && items.every((p: any) => !p.metadata.ownerReferences) ? items : undefined;
        });
        expect(left.map((p: any) => p.metadata.name).sort()).toEqual(names);
      } else {
        await until(`${name} pods gone`, async () => ((await podNames(sel)).length === 0 ? true : undefined));
      }
    }
  });

  it('DaemonSet: its ControllerRevisions go with it (foreground and background)', async () => {
    for (const cascade of ['foreground', 'background'] as const) {
      const name = `ds-${cascade}`;
      const labels = { app: name };
      const ds = await apply(JSON.stringify({ apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name }, spec: { selector: { matchLabels: labels }, template: template(labels) } }));
      for (const rev of [1, 2]) {
        await apply(
          JSON.stringify({
            apiVersion: 'apps/v1',
            kind: 'ControllerRevision',
            metadata: { name: `${name}-${rev}`, labels, ownerReferences: [ref(ds)] },
            data: { spec: { template: { ...template(labels), $patch: 'replace' } } },
            revision: rev,
          }),
        );
      }
      const revs = await getJson(['get', 'controllerrevisions', '-l', `app=${name}`]);
      expect(revs.items.map((r: any) => r.metadata.name).sort()).toEqual([`${name}-1`, `${name}-2`]);
      const del = await c.kubectl(['delete', 'ds', name, `--cascade=${cascade}`]);
      expect(del.stdout.trim(), del.stderr).toBe(`daemonset.apps "${name}" deleted`);
      await gone(['ds', name]);
      await until(`${name} revisions gone`, async () => ((await getJson(['get', 'controllerrevisions', '-l', `app=${name}`])).items.length === 0 ? true : undefined));
    }
  });
});
