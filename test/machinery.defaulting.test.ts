import { describe, expect, it } from 'vitest';
import { kinds } from '../lambdas/kinds/index.ts';
import type { KindStrategy } from '../lambdas/kinds/kind.ts';
import { podQOSClass } from '../lambdas/kinds/core/pod.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';

const strategy = (kind: string): KindStrategy => kinds.all().find((k) => k.info.kind === kind)!;

function defaulted(kind: string, o: KubeObject): KubeObject {
  const copy = structuredClone(o);
  strategy(kind).defaults?.(copy);
  return copy;
}

const pod = (spec: Record<string, unknown>, extra: Partial<KubeObject> = {}): KubeObject => ({ metadata: { name: 'p', namespace: 'default' }, spec, ...extra });

describe('Pod defaults', () => {
  it('fills exactly what kube-apiserver fills for a minimal pod', () => {
    const p = defaulted('Pod', pod({ containers: [{ name: 'app', image: 'nginx', ports: [{ containerPort: 80 }] }] }));
    expect(p.spec).toEqual({
      containers: [
        {
          name: 'app',
          image: 'nginx',
          ports: [{ containerPort: 80, protocol: 'TCP' }],
          imagePullPolicy: 'Always',
          terminationMessagePath: '/dev/termination-log',
          terminationMessagePolicy: 'File',
          resources: {},
        },
      ],
      dnsPolicy: 'ClusterFirst',
      restartPolicy: 'Always',
      securityContext: {},
      terminationGracePeriodSeconds: 30,
      schedulerName: 'default-scheduler',
      enableServiceLinks: true,
      serviceAccountName: 'default',
      serviceAccount: 'default',
      priority: 0,
      preemptionPolicy: 'PreemptLowerPriority',
    });
    expect(p.status).toEqual({ phase: 'Pending', qosClass: 'BestEffort' });
  });

  it.each([
    ['nginx', 'Always'],
    ['nginx:latest', 'Always'],
    ['nginx:1.27', 'IfNotPresent'],
    ['localhost:5000/team/app', 'Always'],
    ['localhost:5000/team/app:v2', 'IfNotPresent'],
    ['busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', 'IfNotPresent'],
    ['busybox:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', 'Always'],
  ])('image %s pulls %s', (image, policy) => {
    expect(defaulted('Pod', pod({ containers: [{ name: 'c', image }] })).spec.containers[0].imagePullPolicy).toBe(policy);
  });

  it('keeps what the client set', () => {
    const p = defaulted('Pod', pod({ containers: [{ name: 'c', image: 'nginx', imagePullPolicy: 'Never' }], restartPolicy: 'Never', terminationGracePeriodSeconds: 0, serviceAccountName: 'builder', enableServiceLinks: false }));
    expect(p.spec.containers[0].imagePullPolicy).toBe('Never');
    expect(p.spec.restartPolicy).toBe('Never');
    expect(p.spec.terminationGracePeriodSeconds).toBe(0);
    expect(p.spec.serviceAccountName).toBe('builder');
    expect(p.spec.serviceAccount).toBe('builder');
    expect(p.spec.enableServiceLinks).toBe(false);
  });

  it('the deprecated serviceAccount field names the service account when serviceAccountName is unset', () => {
    expect(defaulted('Pod', pod({ containers: [{ name: 'c', image: 'x' }], serviceAccount: 'legacy' })).spec.serviceAccountName).toBe('legacy');
  });

  it('probes, HTTP handlers and downward API references', () => {
    const p = defaulted(
      'Pod',
      pod({
        containers: [
          {
            name: 'c',
            image: 'x:1',
            livenessProbe: { httpGet: { port: 8080 } },
            readinessProbe: { exec: { command: ['true'] }, periodSeconds: 5 },
            env: [{ name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }],
          },
        ],
      }),
    );
    const c = p.spec.containers[0];
    expect(c.livenessProbe).toEqual({ httpGet: { port: 8080, path: '/', scheme: 'HTTP' }, timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3 });
    expect(c.readinessProbe.periodSeconds).toBe(5);
    expect(c.env[0].valueFrom.fieldRef).toEqual({ fieldPath: 'spec.nodeName', apiVersion: 'v1' });
  });

  it('volumes: no source means emptyDir; projected files default to mode 0644', () => {
    const p = defaulted('Pod', pod({ containers: [{ name: 'c', image: 'x' }], volumes: [{ name: 'scratch' }, { name: 'cfg', configMap: { name: 'c' } }, { name: 'h', hostPath: { path: '/tmp' } }] }));
    expect(p.spec.volumes).toEqual([
      { name: 'scratch', emptyDir: {} },
      { name: 'cfg', configMap: { name: 'c', defaultMode: 420 } },
      { name: 'h', hostPath: { path: '/tmp', type: '' } },
    ]);
  });

  it('requests default to limits (pods only) and set the QoS class', () => {
    const p = defaulted('Pod', pod({ containers: [{ name: 'c', image: 'x', resources: { limits: { cpu: '500m', memory: '128Mi' } } }] }));
    expect(p.spec.containers[0].resources).toEqual({ limits: { cpu: '500m', memory: '128Mi' }, requests: { cpu: '500m', memory: '128Mi' } });
    expect(p.status.qosClass).toBe('Guaranteed');
  });

  it('pods on the host network publish container ports on the host', () => {
    const p = defaulted('Pod', pod({ hostNetwork: true, containers: [{ name: 'c', image: 'x', ports: [{ containerPort: 9100 }] }] }));
    expect(p.spec.containers[0].ports[0]).toEqual({ containerPort: 9100, protocol: 'TCP', hostPort: 9100 });
  });

  it('status is only initialised on create: a stored status is left alone', () => {
    const running = defaulted('Pod', pod({ containers: [{ name: 'c', image: 'x', resources: { limits: { cpu: '1', memory: '1Gi' } } }] }, { status: { phase: 'Running', qosClass: 'BestEffort' } }));
    expect(running.status).toEqual({ phase: 'Running', qosClass: 'BestEffort' });
  });

  it('is idempotent', () => {
    const once = defaulted('Pod', pod({ containers: [{ name: 'c', image: 'x', livenessProbe: { tcpSocket: { port: 1 } } }], volumes: [{ name: 'v' }] }));
    expect(defaulted('Pod', once)).toEqual(once);
  });
});

describe('podQOSClass', () => {
  const c = (resources: Record<string, unknown>) => ({ name: 'c', image: 'x', resources });
  it.each([
    [[c({})], 'BestEffort'],
    [[c({ requests: { cpu: '0', memory: '0' } })], 'BestEffort'],
    [[c({ requests: { cpu: '100m' } })], 'Burstable'],
    [[c({ limits: { cpu: '1', memory: '1Gi' } })], 'Guaranteed'],
    [[c({ limits: { cpu: '1', memory: '1Gi' }, requests: { cpu: '1000m', memory: '1024Mi' } })], 'Guaranteed'],
    [[c({ limits: { cpu: '1', memory: '1Gi' }, requests: { cpu: '500m', memory: '1Gi' } })], 'Burstable'],
    [[c({ limits: { cpu: '1' } })], 'Burstable'],
    [[c({ limits: { cpu: '1', memory: '1Gi' } }), c({})], 'Burstable'],
    [[c({ limits: { 'example.com/gpu': '1' } })], 'BestEffort'],
  ])('%j is %s', (containers, qos) => {
    expect(podQOSClass({ spec: { containers } })).toBe(qos);
  });

  it('counts init containers', () => {
    expect(podQOSClass({ spec: { containers: [c({ limits: { cpu: '1', memory: '1Gi' } })], initContainers: [c({ requests: { cpu: '1' } })] } })).toBe('Burstable');
  });
});

describe('Service defaults', () => {
  it('a ClusterIP service', () => {
    const s = defaulted('Service', { metadata: { name: 's', namespace: 'default' }, spec: { selector: { app: 'web' }, ports: [{ port: 80 }, { port: 53, protocol: 'UDP', targetPort: 'dns' }] } });
    expect(s.spec).toEqual({
      selector: { app: 'web' },
      ports: [
        { port: 80, protocol: 'TCP', targetPort: 80 },
        { port: 53, protocol: 'UDP', targetPort: 'dns' },
      ],
      sessionAffinity: 'None',
      type: 'ClusterIP',
      internalTrafficPolicy: 'Cluster',
      ipFamilies: ['IPv4'],
      ipFamilyPolicy: 'SingleStack',
    });
    expect(s.status).toEqual({ loadBalancer: {} });
  });

  it('NodePort and LoadBalancer services are externally accessible', () => {
    const np = defaulted('Service', { metadata: { name: 's' }, spec: { type: 'NodePort', ports: [{ port: 80 }] } });
    expect(np.spec.externalTrafficPolicy).toBe('Cluster');
    expect(np.spec.allocateLoadBalancerNodePorts).toBeUndefined();
    const lb = defaulted('Service', { metadata: { name: 's' }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] } });
    expect(lb.spec.allocateLoadBalancerNodePorts).toBe(true);
    expect(lb.spec.externalTrafficPolicy).toBe('Cluster');
  });

  it('ExternalName services get no IP families; ClientIP affinity gets its timeout', () => {
    const ext = defaulted('Service', { metadata: { name: 's' }, spec: { type: 'ExternalName', externalName: 'example.com' } });
    expect(ext.spec.ipFamilies).toBeUndefined();
    expect(ext.spec.ipFamilyPolicy).toBeUndefined();
    expect(ext.spec.internalTrafficPolicy).toBeUndefined();
    const sticky = defaulted('Service', { metadata: { name: 's' }, spec: { sessionAffinity: 'ClientIP', ports: [{ port: 80 }] } });
    expect(sticky.spec.sessionAffinityConfig).toEqual({ clientIP: { timeoutSeconds: 10800 } });
  });

  it('clusterIP and clusterIPs fill each other', () => {
    expect(defaulted('Service', { metadata: { name: 's' }, spec: { clusterIP: '10.96.0.1', ports: [{ port: 443 }] } }).spec.clusterIPs).toEqual(['10.96.0.1']);
    expect(defaulted('Service', { metadata: { name: 's' }, spec: { clusterIPs: ['None'], ports: [] } }).spec.clusterIP).toBe('None');
  });
});

describe('ReplicationController defaults', () => {
  it('selector, labels and replicas come from the template; its pod spec is defaulted like a template', () => {
    const rc = defaulted('ReplicationController', {
      metadata: { name: 'rc', namespace: 'default' },
      spec: { template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'nginx:1', resources: { limits: { cpu: '1' } } }] } } },
    });
    expect(rc.metadata.labels).toEqual({ app: 'web' });
    expect(rc.spec.selector).toEqual({ app: 'web' });
    expect(rc.spec.replicas).toBe(1);
    const t = rc.spec.template.spec;
    expect(t.restartPolicy).toBe('Always');
    expect(t.dnsPolicy).toBe('ClusterFirst');
    expect(t.containers[0].imagePullPolicy).toBe('IfNotPresent');
    // Pod-only defaults stay off templates.
    expect(t.enableServiceLinks).toBeUndefined();
    expect(t.serviceAccountName).toBeUndefined();
    expect(t.containers[0].resources.requests).toBeUndefined();
    expect(rc.status).toEqual({ replicas: 0 });
  });

  it('an explicit selector, labels and replicas stay', () => {
    const rc = defaulted('ReplicationController', {
      metadata: { name: 'rc', labels: { team: 'a' } },
      spec: { replicas: 0, selector: { app: 'web', track: 'stable' }, template: { metadata: { labels: { app: 'web', track: 'stable' } }, spec: { containers: [] } } },
    });
    expect(rc.spec.replicas).toBe(0);
    expect(rc.spec.selector).toEqual({ app: 'web', track: 'stable' });
    expect(rc.metadata.labels).toEqual({ team: 'a' });
  });
});

describe('other kinds', () => {
  it('a new namespace is Active with the kubernetes finalizer; later writes do not put it back', () => {
    const ns = defaulted('Namespace', { metadata: { name: 'team' } });
    expect(ns.spec).toEqual({ finalizers: ['kubernetes'] });
    expect(ns.status).toEqual({ phase: 'Active' });
    const finalized = structuredClone(ns);
    finalized.spec.finalizers = [];
    expect(defaulted('Namespace', finalized).spec.finalizers).toEqual([]);
    expect(defaulted('Namespace', { metadata: { name: 'x' }, spec: { finalizers: ['example.com/a'] } }).spec.finalizers).toEqual(['example.com/a', 'kubernetes']);
  });

  it('secrets are Opaque; stringData is merged into data and not kept', () => {
    const s = defaulted('Secret', { metadata: { name: 's' }, data: { a: 'MQ==', b: 'Mg==' }, stringData: { b: 'two', c: 'héllo' } });
    expect(s.type).toBe('Opaque');
    expect(s.data).toEqual({ a: 'MQ==', b: Buffer.from('two').toString('base64'), c: Buffer.from('héllo').toString('base64') });
    expect(s.stringData).toBeUndefined();
    expect(defaulted('Secret', { metadata: { name: 's' }, type: 'kubernetes.io/tls' }).type).toBe('kubernetes.io/tls');
  });

  it('node allocatable defaults to capacity; endpoint ports to TCP', () => {
    expect(defaulted('Node', { metadata: { name: 'n' }, status: { capacity: { cpu: '2', pods: '110' } } }).status.allocatable).toEqual({ cpu: '2', pods: '110' });
    const ep = defaulted('Endpoints', { metadata: { name: 'e' }, subsets: [{ addresses: [{ ip: '10.0.0.1' }], ports: [{ port: 80 }] }] });
    expect(ep.subsets[0].ports[0].protocol).toBe('TCP');
  });

  it('endpoint slice ports default to name "" and TCP; given values stay', () => {
    const s = defaulted('EndpointSlice', {
      metadata: { name: 's' },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.0.0.1'] }],
      ports: [{ port: 80 }, { name: 'dns', port: 53, protocol: 'UDP' }],
    });
    expect(s.ports).toEqual([
      { name: '', port: 80, protocol: 'TCP' },
      { name: 'dns', port: 53, protocol: 'UDP' },
    ]);
    expect(s.endpoints).toEqual([{ addresses: ['10.0.0.1'] }]);
  });

  it('kinds without defaults are left untouched', () => {
    for (const kind of ['ConfigMap', 'ServiceAccount', 'Event', 'Lease']) {
      const o: KubeObject = { metadata: { name: 'x' }, data: { a: 'b' } };
      expect(defaulted(kind, o)).toEqual(o);
    }
  });
});
