// A HorizontalPodAutoscaler on a real local cluster (issue #17 item 2): a node agent on the Docker Engine
// runs a Deployment whose busybox container burns CPU until a set time, with a cpu request far below what
// it uses; `kubectl autoscale` makes the HPA (sent as autoscaling/v1 protobuf), a patch gives it a short
// scale-down window; the controller reads the pods' usage as metrics.k8s.io serves it (the agents'
// samples), scales the Deployment up through its scale subresource, and back down once the burning stops.
// The sync period is 3 s here (--horizontal-pod-autoscaler-sync-period), kube's is 15 s.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Docker from 'dockerode';
import { requireDocker, TEST_IMAGE } from './support/docker.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { until } from './support/until.ts';

const docker = await requireDocker();
const NODE = `hpa-node-${process.pid}`;
const NETWORK = `skiff-hpa-${process.pid}`;

describe.skipIf(!docker)('HorizontalPodAutoscaler scaling a Deployment on CPU (Docker)', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startTestCluster({ agents: 1, requireAgents: true, agentOptions: { nodeName: NODE, network: NETWORK }, hpaSyncPeriodMs: 3000 });
  }, 90_000);
  afterAll(async () => {
    for (const a of c?.agents ?? []) await a.close({ removePods: true });
    await c?.destroy();
    await (docker as Docker | undefined)?.getNetwork(NETWORK).remove().catch(() => {});
  });

  const get = async (args: string[]) => {
    const r = await c.kubectl(args);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };

  it('scales up under load and back down after it stops; kubectl get and describe show it', async () => {
    // Every pod burns (capped at 300m by its limit, so the machine keeps its other cores) until it is told to
    // stop (a file made by kubectl exec, once the scale-up is seen) or END at the latest, then idles.
    const end = Math.floor(Date.now() / 1000) + 80;
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'burn' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'burn' } },
        template: {
          metadata: { labels: { app: 'burn' } },
          spec: {
            terminationGracePeriodSeconds: 1,
            containers: [
              {
                name: 'burn',
                image: TEST_IMAGE,
                command: ['sh', '-c', `while [ ! -e /tmp/stop ] && [ $(date +%s) -lt ${end} ]; do i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; done; exec sleep 3600`],
                resources: { requests: { cpu: '20m' }, limits: { cpu: '300m' } },
              },
            ],
          },
        },
      },
    };
    expect((await c.kubectl(['apply', '-f', '-'], JSON.stringify(deployment))).code).toBe(0);
    const auto = await c.kubectl(['autoscale', 'deployment', 'burn', '--cpu-percent=50', '--min=1', '--max=3']);
    expect(auto.code, auto.stderr).toBe(0);
    expect(auto.stdout).toContain('horizontalpodautoscaler.autoscaling/burn autoscaled');
    // A short scale-down window (kube's default is 300 s); the rest of the behavior is defaulted.
    const patched = await c.kubectl(['patch', 'hpa', 'burn', '--type=merge', '-p', '{"spec":{"behavior":{"scaleDown":{"stabilizationWindowSeconds":5}}}}']);
    expect(patched.code, patched.stderr).toBe(0);
    const hpa = JSON.parse(await get(['get', 'hpa', 'burn', '-o', 'json']));
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec).toMatchObject({
      minReplicas: 1,
      maxReplicas: 3,
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'burn' },
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } }],
      behavior: { scaleDown: { stabilizationWindowSeconds: 5, selectPolicy: 'Max' }, scaleUp: { stabilizationWindowSeconds: 0 } },
    });

    // Up: the pod uses ~300m of a 20m request (~1500%), so the HPA asks for more than max: 3.
    await until('the Deployment scaled up to 3', async () => (await get(['get', 'deploy', 'burn', '-o', 'jsonpath={.spec.replicas}'])) === '3', 70_000, 1000);
    const up = JSON.parse(await get(['get', 'hpa', 'burn', '-o', 'json']));
    const cpu = up.status.currentMetrics.find((m: any) => m.type === 'Resource').resource.current;
    expect(cpu.averageUtilization).toBeGreaterThan(50);
    expect(cpu.averageValue).toMatch(/^\d+m$/);
    expect(up.status.desiredReplicas).toBe(3);
    expect(up.status.lastScaleTime).toMatch(/^\d{4}-\d\d-\d\dT/);
    const cond = Object.fromEntries(up.status.conditions.map((x: any) => [x.type, x]));
    expect(cond.AbleToScale.status).toBe('True');
    expect(cond.ScalingActive).toMatchObject({ status: 'True', reason: 'ValidMetricFound', message: 'the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)' });
    expect(cond.ScalingLimited).toMatchObject({ status: 'True', reason: 'TooManyReplicas' });

    // kubectl get hpa: NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE.
    const table = await get(['get', 'hpa']);
    const [head, row] = table.trim().split('\n');
    expect(head!.split(/\s{2,}/)).toEqual(['NAME', 'REFERENCE', 'TARGETS', 'MINPODS', 'MAXPODS', 'REPLICAS', 'AGE']);
    expect(row).toMatch(/^burn\s+Deployment\/burn\s+cpu: \d+%\/50%\s+1\s+3\s+\d\s+\d+s$/);
    const pct = Number(/cpu: (\d+)%/.exec(row!)![1]);
    expect(pct).toBeGreaterThan(50);

    const described = await get(['describe', 'hpa', 'burn']);
    expect(described).toMatch(/Reference:\s+Deployment\/burn/);
    expect(described).toMatch(/resource cpu on pods\s+\(as a percentage of request\):\s+\d+% \(\d+m\) \/ 50%/);
    expect(described).toMatch(/Min replicas:\s+1/);
    expect(described).toMatch(/Max replicas:\s+3/);
    expect(described).toMatch(/ScalingActive\s+True\s+ValidMetricFound/);
    expect(described).toMatch(/SuccessfulRescale\s.*New size: 3; reason: cpu resource utilization \(percentage of request\) above target/);

    // The same object through autoscaling/v1: the cpu target and current utilization, the rest in annotations.
    const v1 = JSON.parse(await get(['get', '--raw', '/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/burn']));
    expect(v1.spec).toEqual({ scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'burn' }, minReplicas: 1, maxReplicas: 3, targetCPUUtilizationPercentage: 50 });
    expect(v1.status.currentCPUUtilizationPercentage).toBeGreaterThan(0);
    expect(JSON.parse(v1.metadata.annotations['autoscaling.alpha.kubernetes.io/behavior'])).toMatchObject({ ScaleDown: { StabilizationWindowSeconds: 5 } });

    // Down: the pods are told to stop burning (one still starting stops at END); after the 5 s window the
    // HPA goes back to min.
    const names = (await get(['get', 'pods', '-l', 'app=burn', '-o', 'jsonpath={.items[*].metadata.name}'])).trim().split(/\s+/);
    let stopped = 0;
    for (const name of names) if ((await c.kubectl(['exec', name, '--', 'touch', '/tmp/stop'])).code === 0) stopped++;
    expect(stopped).toBeGreaterThan(0);
    await until('the Deployment scaled back down to 1', async () => (await get(['get', 'deploy', 'burn', '-o', 'jsonpath={.spec.replicas}'])) === '1', Math.max(0, end * 1000 - Date.now()) + 80_000, 1000);
    const down = JSON.parse(await get(['get', 'hpa', 'burn', '-o', 'json']));
    expect(down.status.currentMetrics[0].resource.current.averageUtilization).toBeLessThan(50);
    const events = await get(['get', 'events', '--field-selector', 'involvedObject.name=burn,involvedObject.kind=HorizontalPodAutoscaler', '-o', 'jsonpath={range .items[*]}{.reason}:{.message}{"\\n"}{end}']);
    expect(events).toMatch(/SuccessfulRescale:New size: 1; reason: All metrics below target/);
  }, 300_000);
});
