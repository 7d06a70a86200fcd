// kubectl 1.32 against a real local cluster (HTTPS + SQLite) with hollow nodes (bound pods become Running
// and Ready): Deployments end to end through the ReplicaSet and Deployment controllers. create deployment,
// rollout status, set image, get rs, rollout history (and --revision), undo (and --to-revision), pause and
// resume, restart, scale, and delete cascading (background, foreground, orphan) through the garbage collector.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { until } from './support/until.ts';
import { findResource } from '../lambdas/machinery/resources.ts';

let c: TestCluster;

beforeAll(async () => {
  c = await startTestCluster({ hollowNodes: 2 });
}, 60_000);
afterAll(async () => {
  await c?.destroy();
});

const NS = ['-n', 'roll'];

function table(out: string): string[][] {
  return out
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s{2,}/));
}

async function k(...args: string[]): Promise<string> {
  const r = await c.kubectl([...args, ...NS]);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.code} ${r.stderr}`);
  return r.stdout;
}

async function json(...args: string[]): Promise<any> {
  return JSON.parse(await k(...args, '-o', 'json'));
}

/** The deployment's ReplicaSets, as kubectl lists them, by name: [desired, image, revision]. */
async function replicaSets(app: string): Promise<Map<string, [number, string, string]>> {
  const l = await json('get', 'rs', '-l', `app=${app}`);
  return new Map(l.items.map((rs: any) => [rs.metadata.name, [rs.spec.replicas, rs.spec.template.spec.containers[0].image, rs.metadata.annotations['deployment.kubernetes.io/revision']]]));
}

async function rolloutStatus(name: string): Promise<void> {
  const r = await c.kubectl(['rollout', 'status', `deployment/${name}`, '--timeout=90s', ...NS]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout.trim().split('\n').pop()).toBe(`deployment "${name}" successfully rolled out`);
}

async function podImages(app: string): Promise<string[]> {
  const l = await json('get', 'pods', '-l', `app=${app}`);
  return l.items.filter((p: any) => !p.metadata.deletionTimestamp).map((p: any) => p.spec.containers[0].image);
}

describe('kubectl rollout against skiff up', () => {
  it('create deployment, rollout status, get rs (hash-named), get deploy columns', async () => {
    expect((await c.kubectl(['create', 'namespace', 'roll'])).code).toBe(0);
    const cr = await c.kubectl(['create', 'deployment', 'web', '--image=busybox:stable', '--replicas=3', ...NS]);
    expect(cr.stderr).toBe('');
    expect(cr.stdout.trim()).toBe('deployment.apps/web created');
    await rolloutStatus('web');
    const rss = await replicaSets('web');
    expect(rss.size).toBe(1);
    const [name, [desired, image, revision]] = [...rss][0]!;
    expect(name).toMatch(/^web-[bcdfghjklmnpqrstvwxz2456789]{6,10}$/);
    expect([desired, image, revision]).toEqual([3, 'busybox:stable', '1']);
    const t = table(await k('get', 'rs'));
    expect(t[0]!.slice(0, 4)).toEqual(['NAME', 'DESIRED', 'CURRENT', 'READY']);
    expect(t[1]!.slice(0, 4)).toEqual([name, '3', '3', '3']);
    const d = table(await k('get', 'deploy', 'web'));
    expect(d[0]!.slice(0, 4)).toEqual(['NAME', 'READY', 'UP-TO-DATE', 'AVAILABLE']);
    expect(d[1]!.slice(0, 4)).toEqual(['web', '3/3', '3', '3']);
    const pods = await json('get', 'pods', '-l', 'app=web');
    expect(pods.items.length).toBe(3);
    expect(pods.items.every((p: any) => p.metadata.name.startsWith(`${name}-`) && p.metadata.labels['pod-template-hash'] === name.slice(4))).toBe(true);
    const ev = await k('get', 'events', '--field-selector', 'reason=ScalingReplicaSet');
    expect(ev).toContain(`Scaled up replica set ${name} from 0 to 3`);
  });

  it('set image rolls out a new ReplicaSet and scales the old one to 0; rollout history lists both revisions', async () => {
    const before = [...(await replicaSets('web')).keys()][0]!;
    const r = await c.kubectl(['set', 'image', 'deployment/web', 'busybox=busybox:1.36', ...NS]);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('deployment.apps/web image updated');
    await rolloutStatus('web');
    const rss = await replicaSets('web');
    expect(rss.size).toBe(2);
    expect(rss.get(before)).toEqual([0, 'busybox:stable', '1']);
    const [, newer] = [...rss].find(([n]) => n !== before)!;
    expect(newer).toEqual([3, 'busybox:1.36', '2']);
    await until('old pods gone', async () => (await podImages('web')).every((i) => i === 'busybox:1.36') && (await podImages('web')).length === 3);

    const h = await k('rollout', 'history', 'deployment/web');
    expect(h.trim().split('\n').map((l) => l.trim().split(/\s+/))).toEqual([['deployment.apps/web'], ['REVISION', 'CHANGE-CAUSE'], ['1', '<none>'], ['2', '<none>']]);
    const h1 = await k('rollout', 'history', 'deployment/web', '--revision=1');
    expect(h1).toContain('deployment.apps/web with revision #1');
    expect(h1).toMatch(/Image:\s+busybox:stable/);
  });

  it('rollout undo goes back to the previous template (revision 3); --to-revision picks one', async () => {
    const u = await c.kubectl(['rollout', 'undo', 'deployment/web', ...NS]);
    expect(u.stderr).toBe('');
    expect(u.stdout.trim()).toBe('deployment.apps/web rolled back');
    await rolloutStatus('web');
    let rss = await replicaSets('web');
    expect(rss.size).toBe(2);
    expect([...rss.values()].sort()).toEqual([
      [0, 'busybox:1.36', '2'],
      [3, 'busybox:stable', '3'],
    ]);
    await until('pods back on busybox:stable', async () => (await podImages('web')).every((i) => i === 'busybox:stable'));
    const d = await json('get', 'deploy', 'web');
    expect(d.metadata.annotations['deployment.kubernetes.io/revision']).toBe('3');
    const rsRev3 = (await json('get', 'rs', '-l', 'app=web')).items.find((rs: any) => rs.metadata.annotations['deployment.kubernetes.io/revision'] === '3');
    expect(rsRev3.metadata.annotations['deployment.kubernetes.io/revision-history']).toBe('1');

    const to = await c.kubectl(['rollout', 'undo', 'deployment/web', '--to-revision=2', ...NS]);
    expect(to.stdout.trim()).toBe('deployment.apps/web rolled back');
    await rolloutStatus('web');
    rss = await replicaSets('web');
    expect([...rss.values()].sort()).toEqual([
      [0, 'busybox:stable', '3'],
      [3, 'busybox:1.36', '4'],
    ]);
    const h = await k('rollout', 'history', 'deployment/web');
    expect(h.trim().split('\n').slice(2).map((l) => l.trim().split(/\s+/)[0])).toEqual(['3', '4']);
    const missing = await c.kubectl(['rollout', 'undo', 'deployment/web', '--to-revision=9', ...NS]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('unable to find specified revision 9 in history');
  });

  it('rollout pause holds a template change; resume rolls it out; restart makes a new ReplicaSet', async () => {
    expect((await k('rollout', 'pause', 'deployment/web')).trim()).toBe('deployment.apps/web paused');
    await k('set', 'image', 'deployment/web', 'busybox=busybox:1.37');
    await until('paused condition', async () => {
      const d = await json('get', 'deploy', 'web');
      return d.status.observedGeneration === d.metadata.generation && d.status.conditions.find((x: any) => x.type === 'Progressing')?.reason === 'DeploymentPaused';
    });
    expect([...(await replicaSets('web')).values()].map((v) => v[1]).sort()).toEqual(['busybox:1.36', 'busybox:stable']);
    const undoPaused = await c.kubectl(['rollout', 'undo', 'deployment/web', ...NS]);
    expect(undoPaused.code).not.toBe(0);
    expect(undoPaused.stderr).toContain("you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again");
    expect((await k('rollout', 'resume', 'deployment/web')).trim()).toBe('deployment.apps/web resumed');
    await rolloutStatus('web');
    expect([...(await replicaSets('web')).values()].find((v) => v[0] === 3)).toEqual([3, 'busybox:1.37', '5']);

    expect((await k('rollout', 'restart', 'deployment/web')).trim()).toBe('deployment.apps/web restarted');
    await rolloutStatus('web');
    const rss = await json('get', 'rs', '-l', 'app=web');
    const current = rss.items.find((rs: any) => rs.spec.replicas === 3);
    expect(current.metadata.annotations['deployment.kubernetes.io/revision']).toBe('6');
    expect(current.spec.template.metadata.annotations['kubectl.kubernetes.io/restartedAt']).toBeTruthy();
    expect(current.spec.template.spec.containers[0].image).toBe('busybox:1.37');
  });

  it('scale deployment resizes its ReplicaSet; desired-replicas follows', async () => {
    expect((await k('scale', 'deployment', 'web', '--replicas=5')).trim()).toBe('deployment.apps/web scaled');
    await rolloutStatus('web');
    const current = (await json('get', 'rs', '-l', 'app=web')).items.find((rs: any) => rs.spec.replicas > 0);
    expect(current.spec.replicas).toBe(5);
    expect(current.metadata.annotations['deployment.kubernetes.io/desired-replicas']).toBe('5');
    await until('5 pods', async () => (await podImages('web')).length === 5);
    const d = table(await k('get', 'deploy', 'web'));
    expect(d[1]!.slice(0, 4)).toEqual(['web', '5/5', '5', '5']);
  });

  it('kubernetes.io/change-cause on the Deployment reaches its current ReplicaSet and rollout history', async () => {
    await k('annotate', 'deployment', 'web', 'kubernetes.io/change-cause=scaled to five');
    const h = await until('history shows the cause', async () => {
      const out = await k('rollout', 'history', 'deployment/web');
      return out.includes('scaled to five') && out;
    });
    expect(h.trim().split('\n').pop()).toMatch(/^6\s+scaled to five$/);
  });

  it('Recreate strategy rolls out through kubectl too', async () => {
    await c.kubectl(['create', 'deployment', 're', '--image=busybox:stable', '--replicas=2', ...NS]);
    await k('patch', 'deployment', 're', '--type=merge', '-p', '{"spec":{"strategy":{"type":"Recreate","rollingUpdate":null}}}');
    await rolloutStatus('re');
    await k('set', 'image', 'deployment/re', 'busybox=busybox:1.36');
    await rolloutStatus('re');
    expect([...(await replicaSets('re')).values()].sort()).toEqual([
      [0, 'busybox:stable', '1'],
      [2, 'busybox:1.36', '2'],
    ]);
  });

  it('maxUnavailable 0 (maxSurge 1): ready pods never below spec.replicas, never more than one extra pod, through set image', async () => {
    const yaml = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: zero
  namespace: roll
spec:
  replicas: 4
  selector:
    matchLabels:
      app: zero
  strategy:
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        app: zero
    spec:
      containers:
      - name: c
        image: busybox:stable
`;
    expect((await c.kubectl(['apply', '-f', c.file('zero.yaml', yaml)])).stdout.trim()).toBe('deployment.apps/zero created');
    await rolloutStatus('zero');
    // Sampled from the store while the rollout runs: live (not terminating) pods, and the Ready ones.
    const podsRes = findResource('', 'v1', 'pods')!;
    let minReady = Infinity;
    let maxLive = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const live = (await c.api.registry.list(podsRes, 'roll')).items.filter((p) => p.metadata.labels?.app === 'zero' && !p.metadata.deletionTimestamp);
        const ready = live.filter((p) => (p.status?.conditions ?? []).some((x: any) => x.type === 'Ready' && x.status === 'True'));
        minReady = Math.min(minReady, ready.length);
        maxLive = Math.max(maxLive, live.length);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await k('set', 'image', 'deployment/zero', 'c=busybox:1.36');
    await rolloutStatus('zero');
    await until('old pods gone', async () => (await podImages('zero')).every((i) => i === 'busybox:1.36'));
    sampling = false;
    await sampler;
    expect(minReady).toBeGreaterThanOrEqual(4);
    expect(maxLive).toBeLessThanOrEqual(5);
    expect(maxLive).toBe(5);
  });

  it('delete deployment cascades to ReplicaSets and pods (background, foreground); --cascade=orphan keeps them', async () => {
    const del = await c.kubectl(['delete', 'deployment', 'web', ...NS]);
    expect(del.stdout.trim()).toBe('deployment.apps "web" deleted');
    await until('web ReplicaSets and pods gone', async () => (await replicaSets('web')).size === 0 && (await podImages('web')).length === 0, 60_000);

    const fg = await c.kubectl(['delete', 'deployment', 're', '--cascade=foreground', ...NS]);
    expect(fg.code).toBe(0);
    await until('re gone with its ReplicaSets', async () => (await c.kubectl(['get', 'deploy', 're', ...NS])).code !== 0 && (await replicaSets('re')).size === 0, 60_000);

    await k('create', 'deployment', 'keep', '--image=busybox:stable', '--replicas=2');
    await rolloutStatus('keep');
    const orphan = await c.kubectl(['delete', 'deployment', 'keep', '--cascade=orphan', ...NS]);
    expect(orphan.code).toBe(0);
    await until('deployment gone', async () => (await c.kubectl(['get', 'deploy', 'keep', ...NS])).code !== 0);
    const rs = (await json('get', 'rs', '-l', 'app=keep')).items;
    expect(rs.length).toBe(1);
    expect(rs[0].metadata.ownerReferences).toBeUndefined();
    expect((await podImages('keep')).length).toBe(2);
  });
});
