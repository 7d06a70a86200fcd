// In-cluster API access end to end, with real containers on a node agent: the `kubernetes` Service the
// control plane keeps in `default` leads pods to the apiserver (through the agent's relay on the pod
// network's gateway, api-relay.ts) with TLS that verifies against the cluster CA by every name a pod
// uses; @kubernetes/client-node's KubeConfig.loadFromCluster() and the Python client's
// config.load_incluster_config() list their own namespace's pods with the projected service account
// token the agent requested (TokenRequest) for them; and the agent refreshes that token before expiry.
//
// The client images are the host's node and python with the clients copied in (incluster-images.ts).
// The test's cluster uses a service range of its own (10.123.0.0/16) and its own proxy chains, so its
// `kubernetes` VIP never meets another test cluster's 10.96.0.1 in the host's iptables.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupProxyRules } from '../node-agent/proxy.ts';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import type Docker from 'dockerode';
import { LABELS } from '../node-agent/runtime.ts';
import { requireDocker, TEST_IMAGE } from './support/docker.ts';
import { pythonClient } from './support/python-client.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { nodeClientImage, pythonClientImage } from './support/incluster-images.ts';
import { until } from './support/until.ts';

const docker = await requireDocker();
const python = docker ? await pythonClient() : undefined;

const NS = 'incluster';
const SERVICE_CIDR = '10.123.0.0/16';
const PROXY_PREFIX = `SKIC${process.pid % 10000}`;
const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** Reaches the apiserver by each name a pod may use, verifying TLS against the mounted CA only. */
const REACH_SCRIPT = `
import https from 'node:https';
import { readFileSync } from 'node:fs';
const ca = readFileSync('/ca/ca.crt');
const urls = ['https://kubernetes.default.svc/version', 'https://kubernetes.default.svc.cluster.local/version', 'https://kubernetes.default/version',
  'https://' + process.env.KUBERNETES_SERVICE_HOST + ':' + process.env.KUBERNETES_SERVICE_PORT + '/version'];
for (const u of urls) {
  try {
    const r = await new Promise((ok, fail) => https.get(u, { ca, timeout: 10000 }, (res) => {
      let b = '';
      res.on('data', (d) => (b += d));
      res.on('end', () => ok({ status: res.statusCode, body: b }));
    }).on('error', fail));
    console.log('REACHED ' + u + ' ' + r.status + ' ' + JSON.parse(r.body).gitVersion);
  } catch (e) {
    console.log('FAILED ' + u + ' ' + e.message);
  }
}
`;

const NODE_CLIENT_SCRIPT = `
import { KubeConfig, CoreV1Api } from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
const kc = new KubeConfig();
kc.loadFromCluster();
const ns = readFileSync('${SA_DIR}/namespace', 'utf8');
const list = await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: ns });
console.log('SERVER ' + kc.getCurrentCluster().server);
console.log('PODS ' + ns + ' ' + list.items.map((p) => p.metadata.name).sort().join(','));
`;

const PYTHON_CLIENT_SCRIPT = `
from kubernetes import client, config
config.load_incluster_config()
ns = open('${SA_DIR}/namespace').read()
pods = client.CoreV1Api().list_namespaced_pod(ns)
print('SERVER ' + client.Configuration.get_default_copy().host)
print('PODS %s %s' % (ns, ','.join(sorted(p.metadata.name for p in pods.items))), flush=True)
`;

/** kube's ServiceAccount admission volume: the token, the cluster CA and the namespace, projected. */
function apiAccessVolume(expirationSeconds = 3607) {
  return {
    name: 'kube-api-access-e2e',
    projected: {
      defaultMode: 0o644,
      sources: [
        { serviceAccountToken: { expirationSeconds, path: 'token' } },
        { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
      ],
    },
  };
}

function pod(name: string, image: string, command: string[], o: { serviceAccountName?: string; volumes?: any[]; mounts?: any[]; restartPolicy?: string } = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS },
    spec: {
      restartPolicy: o.restartPolicy ?? 'Never',
      terminationGracePeriodSeconds: 1,
      ...(o.serviceAccountName ? { serviceAccountName: o.serviceAccountName } : {}),
      containers: [{ name: 'main', image, imagePullPolicy: 'Never', command, volumeMounts: o.mounts ?? [{ name: 'kube-api-access-e2e', mountPath: SA_DIR, readOnly: true }] }],
      volumes: o.volumes ?? [apiAccessVolume()],
    },
  };
}

describe.skipIf(!docker)('in-cluster API access from pods (Docker agent, kubectl, JS and Python clients)', () => {
  let c: TestCluster;
  const engine = docker as Docker;
  const nodeName = `incluster-${process.pid}`;
  const network = `skiff-ic-${process.pid}`;
  let nodeImage: string;

  const kubectl = async (...args: string[]) => {
    const r = await c.kubectl(args);
    expect(r.code, `kubectl ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.stdout;
  };
  const apply = async (obj: unknown) => {
    const r = await c.kubectl(['apply', '-f', '-'], JSON.stringify(obj));
    expect(r.code, r.stderr).toBe(0);
  };
  /** Waits for the pod to finish and returns its log; a failed pod's log is in the error. */
  const finishedLog = async (name: string) => {
    const phase = await until(`pod ${name} finished`, async () => {
      const p = JSON.parse(await kubectl('-n', NS, 'get', 'pod', name, '-o', 'json'));
      return ['Succeeded', 'Failed'].includes(p.status?.phase) && p.status.phase;
    }, 120_000, 500);
    const log = await kubectl('-n', NS, 'logs', name);
    expect(phase, `pod ${name}: ${log}`).toBe('Succeeded');
    return log;
  };

  beforeAll(async () => {
    c = await startTestCluster({
      agents: 1,
      requireAgents: true,
      serviceCIDR: SERVICE_CIDR,
      agentOptions: {
        nodeName,
        network,
        proxy: { chainPrefix: PROXY_PREFIX, serviceCIDR: SERVICE_CIDR, resyncMs: 3000 },
        // A 600 s token (the least TokenRequest allows) is refreshed after 6 s instead of 480 s.
        tokenRefreshFraction: 0.01,
        resyncMs: 3000,
      },
    });
    nodeImage = nodeClientImage(NODE_CLIENT_SCRIPT);
    await kubectl('create', 'namespace', NS);
    // What the ServiceAccount controller and the root-CA publisher keep in every namespace; made here
    // when they are not (yet) there, with the CA the apiserver's certificate is signed by.
    const ca = c.file('ca.crt', c.caCert);
    const cm = await c.kubectl(['-n', NS, 'create', 'configmap', 'kube-root-ca.crt', `--from-file=ca.crt=${ca}`]);
    expect(cm.code === 0 || cm.stderr.includes('already exists'), cm.stderr).toBe(true);
  }, 300_000);

  afterAll(async () => {
    await c?.destroy();
    // The proxy's rules outlive its agent (as kube-proxy's do). Left behind, a later run's pods (the same
    // VIP, 10.123.0.1, on a bridge that may reuse the address) could meet this run's DNAT to a relay
    // that is gone: a CI run on a machine that had run this file before saw ECONNREFUSED from every pod.
    await cleanupProxyRules(PROXY_PREFIX).catch(() => {});
    const left = await engine.listContainers({ all: true, filters: { label: [`${LABELS.node}=${nodeName}`] } });
    for (const x of left) await engine.getContainer(x.Id).remove({ force: true }).catch(() => {});
    await engine.getNetwork(network).remove().catch(() => {});
  });

  it('the kubernetes Service in default points at the apiserver, reached from a pod over TLS by every name', async () => {
    const svc = JSON.parse(await kubectl('-n', 'default', 'get', 'service', 'kubernetes', '-o', 'json'));
    expect(svc.spec.clusterIP).toBe('10.123.0.1');
    expect(svc.spec.ports).toEqual([{ name: 'https', protocol: 'TCP', port: 443, targetPort: c.port }]);
    expect(svc.metadata.labels).toEqual({ component: 'apiserver', provider: 'kubernetes' });
    const relay = c.agents[0]!.apiEndpoint!;
    expect(relay.port).toBe(c.port);
    const ep = JSON.parse(await kubectl('-n', 'default', 'get', 'endpoints', 'kubernetes', '-o', 'json'));
    expect(ep.subsets).toEqual([{ addresses: [{ ip: relay.ip }], ports: [{ name: 'https', port: c.port, protocol: 'TCP' }] }]);
    const slice = JSON.parse(await kubectl('-n', 'default', 'get', 'endpointslices', 'kubernetes', '-o', 'json'));
    expect(slice.endpoints.map((e: any) => e.addresses)).toEqual([[relay.ip]]);
    // The node's proxy has the VIP's DNAT to the relay (a pod started before its first sync of the
    // Endpoints meets the service range's REJECT, as one would meet a kube-proxy that lags).
    await until('the proxy routing the kubernetes VIP to the relay', async () =>
      execFileSync('iptables-save', ['-t', 'nat']).toString().split('\n').some((l) => l.startsWith(`-A ${PROXY_PREFIX}-SEP-`) && l.includes(`--to-destination ${relay.ip}:${relay.port}`)),
    );

    // A pod with only the CA mounted: TLS to kubernetes.default.svc (node DNS → the VIP → the relay →
    // the apiserver) and to KUBERNETES_SERVICE_HOST:PORT verifies against it.
    const reach = pod('reach', nodeImage, ['node', '/app/reach.mjs'], {
      volumes: [{ name: 'ca', configMap: { name: 'kube-root-ca.crt' } }, { name: 'script', configMap: { name: 'reach-script' } }],
      mounts: [{ name: 'ca', mountPath: '/ca' }, { name: 'script', mountPath: '/app/reach.mjs', subPath: 'reach.mjs' }],
    });
    await apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'reach-script', namespace: NS }, data: { 'reach.mjs': REACH_SCRIPT } });
    await apply(reach);
    const log = await finishedLog('reach');
    const version = JSON.parse(await kubectl('version', '-o', 'json')).serverVersion.gitVersion;
    expect(log.trim().split('\n').sort()).toEqual(
      [
        `REACHED https://10.123.0.1:443/version 200 ${version}`,
        `REACHED https://kubernetes.default.svc.cluster.local/version 200 ${version}`,
        `REACHED https://kubernetes.default.svc/version 200 ${version}`,
        `REACHED https://kubernetes.default/version 200 ${version}`,
      ].sort(),
    );
  }, 240_000);

  it('a pod whose service account has no token says why it cannot start (FailedMount)', async () => {
    // Admission wants the service account to exist when the pod is created: it goes while the pod
    // waits for a node (cordoned), so the agent's TokenRequest meets a service account that is gone.
    await kubectl('-n', NS, 'create', 'serviceaccount', 'nobody');
    await kubectl('cordon', nodeName);
    try {
      await apply(pod('no-account', TEST_IMAGE, ['sleep', '3600'], { serviceAccountName: 'nobody' }));
      await kubectl('-n', NS, 'delete', 'serviceaccount', 'nobody');
    } finally {
      await kubectl('uncordon', nodeName);
    }
    const ev = await until('a FailedMount event', async () => {
      const list = JSON.parse(await kubectl('-n', NS, 'get', 'events', '--field-selector', 'involvedObject.name=no-account,reason=FailedMount', '-o', 'json'));
      return list.items[0];
    }, 60_000, 500);
    expect(ev.type).toBe('Warning');
    expect(ev.source?.component ?? ev.reportingComponent).toBe('kubelet');
    expect(ev.message).toMatch(/^MountVolume\.SetUp failed for volume "kube-api-access-e2e" : failed to fetch token: /);
    const p = JSON.parse(await kubectl('-n', NS, 'get', 'pod', 'no-account', '-o', 'json'));
    expect(p.status.phase).toBe('Pending');
    expect(p.status.containerStatuses?.[0]?.state?.waiting?.reason).toBe('ContainerCreating');
    await kubectl('-n', NS, 'delete', 'pod', 'no-account', '--wait=false');
  }, 120_000);

  // The tests below need TokenRequest (serviceaccounts/token) and RBAC in the apiserver.

  describe('with a service account allowed to list pods in its namespace', () => {
    beforeAll(async () => {
      await kubectl('-n', NS, 'create', 'serviceaccount', 'lister');
      await kubectl('-n', NS, 'create', 'role', 'pod-lister', '--verb=get,list,watch', '--resource=pods');
      await kubectl('-n', NS, 'create', 'rolebinding', 'pod-lister', '--role=pod-lister', `--serviceaccount=${NS}:lister`);
    }, 60_000);

    it("@kubernetes/client-node's loadFromCluster() lists its namespace's pods through the kubernetes Service", async () => {
      await apply(pod('js-client', nodeImage, ['node', '/app/main.mjs'], { serviceAccountName: 'lister' }));
      const log = await finishedLog('js-client');
      expect(log).toContain('SERVER https://10.123.0.1:443');
      expect(log).toMatch(new RegExp(`^PODS ${NS} (.*,)?js-client(,.*)?$`, 'm'));
    }, 180_000);

    it.skipIf(!python)("the Python client's load_incluster_config() lists its namespace's pods", async () => {
      const image = pythonClientImage(PYTHON_CLIENT_SCRIPT);
      await apply(pod('py-client', image, ['python3', '/app/main.py'], { serviceAccountName: 'lister' }));
      const log = await finishedLog('py-client');
      expect(log).toContain('SERVER https://10.123.0.1:443');
      expect(log).toMatch(new RegExp(`^PODS ${NS} (.*,)?py-client(,.*)?$`, 'm'));
    }, 300_000);

    it('the agent refreshes the projected token before it expires, bound to the pod', async () => {
      await apply(pod('refresh', TEST_IMAGE, ['sleep', '3600'], { serviceAccountName: 'lister', restartPolicy: 'Always', volumes: [apiAccessVolume(600)] }));
      await kubectl('-n', NS, 'wait', '--for=condition=Ready', 'pod/refresh', '--timeout=120s');
      const uid = JSON.parse(await kubectl('-n', NS, 'get', 'pod', 'refresh', '-o', 'json')).metadata.uid;
      const read = async () => (await kubectl('-n', NS, 'exec', 'refresh', '--', 'cat', `${SA_DIR}/token`)).trim();
      const first = await read();
      const claims = (t: string) => JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString('utf8'));
      expect(claims(first)['kubernetes.io']).toMatchObject({ namespace: NS, pod: { name: 'refresh', uid }, serviceaccount: { name: 'lister' } });
      // 1% of 600 s: a new token within seconds, in the same file (the volume rewritten atomically).
      const second = await until('a refreshed token', async () => {
        const t = await read();
        return t !== first && t;
      }, 60_000, 1000);
      expect(claims(second)['kubernetes.io'].pod.uid).toBe(uid);
      expect(claims(second).iat).toBeGreaterThanOrEqual(claims(first).iat);
      // The refreshed token works: the apiserver accepts it as the service account.
      const review = await c.kubectl(['create', '-o', 'json', '-f', '-'], JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: second } }));
      expect(review.code, review.stderr).toBe(0);
      expect(JSON.parse(review.stdout).status).toMatchObject({ authenticated: true, user: { username: `system:serviceaccount:${NS}:lister` } });
    }, 180_000);
  });
});

/** The host's address on its own network (not loopback, not a Docker bridge): what a deployed node's apiserver host stands for. */
function hostAddress(): string | undefined {
  for (const [name, addrs] of Object.entries(os.networkInterfaces())) {
    if (/^(docker|br-|veth)/.test(name)) continue;
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

// A deployed node's shape: the apiserver is not on this host's loopback (in the cloud, a Function URL
// host name), so no relay and no VIP lead to it; pods are told the host and port the node itself uses.
describe.skipIf(!docker)('in-cluster API access when the apiserver is not on loopback (a deployed node)', () => {
  let c: TestCluster;
  const engine = docker as Docker;
  const nodeName = `incluster-far-${process.pid}`;
  const network = `skiff-icf-${process.pid}`;
  const host = hostAddress();

  beforeAll(async () => {
    if (!host) throw new Error('this host has no IPv4 address besides loopback and Docker bridges');
    c = await startTestCluster({ host, agents: 1, requireAgents: true, agentOptions: { nodeName, network } });
  }, 300_000);
  afterAll(async () => {
    await c?.destroy();
    const left = await engine.listContainers({ all: true, filters: { label: [`${LABELS.node}=${nodeName}`] } });
    for (const x of left) await engine.getContainer(x.Id).remove({ force: true }).catch(() => {});
    await engine.getNetwork(network).remove().catch(() => {});
  });

  it("pods get the apiserver's own host and port in KUBERNETES_SERVICE_HOST/PORT, and reach it over TLS", async () => {
    expect(c.agents[0]!.apiEndpoint).toBeUndefined(); // no relay
    const image = nodeClientImage(NODE_CLIENT_SCRIPT);
    const script = `
import https from 'node:https';
import { readFileSync } from 'node:fs';
const u = 'https://' + process.env.KUBERNETES_SERVICE_HOST + ':' + process.env.KUBERNETES_SERVICE_PORT + '/version';
https.get(u, { ca: readFileSync('/ca/ca.crt') }, (res) => {
  let b = '';
  res.on('data', (d) => (b += d));
  res.on('end', () => console.log('REACHED ' + u + ' ' + res.statusCode + ' ' + JSON.parse(b).gitVersion));
}).on('error', (e) => { console.log('FAILED ' + u + ' ' + e.message); process.exitCode = 1; });
`;
    const run = async (args: string[], input?: string) => {
      const r = await c.kubectl(args, input);
      expect(r.code, `kubectl ${args.join(' ')}: ${r.stderr}`).toBe(0);
      return r.stdout;
    };
    await run(['create', 'configmap', 'far', `--from-file=ca.crt=${c.file('ca.crt', c.caCert)}`, `--from-file=reach.mjs=${c.file('reach.mjs', script)}`]);
    await run(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'far' },
      spec: {
        restartPolicy: 'Never',
        containers: [{ name: 'main', image, imagePullPolicy: 'Never', command: ['node', '/ca/reach.mjs'], volumeMounts: [{ name: 'ca', mountPath: '/ca' }] }],
        volumes: [{ name: 'ca', configMap: { name: 'far' } }],
      },
    }));
    const phase = await until('pod far finished', async () => {
      const p = JSON.parse(await run(['get', 'pod', 'far', '-o', 'json']));
      return ['Succeeded', 'Failed'].includes(p.status?.phase) && p.status.phase;
    }, 120_000, 500);
    const log = (await run(['logs', 'far'])).trim();
    expect(phase, log).toBe('Succeeded');
    const version = JSON.parse(await run(['version', '-o', 'json'])).serverVersion.gitVersion;
    expect(log).toBe(`REACHED https://${host}:${c.port}/version 200 ${version}`);
  }, 240_000);
});
