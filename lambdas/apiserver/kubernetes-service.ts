// The `kubernetes` Service of the `default` namespace: kube-apiserver's master endpoint reconciler
// (pkg/controlplane/controller/kubernetesservice and pkg/controlplane/reconcilers). The Service has the
// first address of the service range (10.96.0.1), port 443 named https whose targetPort is the
// apiserver's port; its Endpoints and EndpointSlice (both named `kubernetes`, written here, not by the
// endpoints controller: the Service has no selector) hold the address pods reach the apiserver at.
// Pods get KUBERNETES_SERVICE_HOST/PORT from it (node-agent/env.ts) and resolve
// kubernetes.default.svc to it (the node DNS), so in-cluster clients find the apiserver.
//
// Where that address is differs by deployment (see "In-cluster API access" in ARCHITECTURE.md): locally
// it is the node agent's relay on the pod network's gateway (node-agent/api-relay.ts); without one
// (no agent) only the Service is written.
//
// Cost: three reads (Service, Endpoints, EndpointSlice) per reconcile, and a write only for what differs.

import type { Registry } from './registry.ts';
import { findResource } from '../machinery/resources.ts';
import { ApiError } from '../machinery/status.ts';
import type { KubeObject } from '../machinery/types.ts';

export interface ApiEndpoint {
  ip: string;
  port: number;
}

const NAME = 'kubernetes';
const NS = 'default';

/** Creates or corrects the `kubernetes` Service and, given the apiserver's endpoint, its Endpoints and EndpointSlice. */
export async function reconcileKubernetesService(registry: Registry, o: { clusterIP: string; endpoint?: ApiEndpoint; servicePort?: number }): Promise<void> {
  const port = o.endpoint?.port ?? o.servicePort ?? 443;
  const ports = [{ name: 'https', protocol: 'TCP', port: 443, targetPort: port }];
  await ensure(registry, findResource('', 'v1', 'services')!, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: NAME, namespace: NS, labels: { component: 'apiserver', provider: 'kubernetes' } },
    spec: { type: 'ClusterIP', clusterIP: o.clusterIP, clusterIPs: [o.clusterIP], ports, sessionAffinity: 'None' },
  }, (cur) => JSON.stringify(cur.spec?.ports?.map((p: any) => [p.name, p.port, p.targetPort])) === JSON.stringify(ports.map((p) => [p.name, p.port, p.targetPort])),
  (cur, want) => ({ ...cur, spec: { ...cur.spec, ports: want.spec.ports } }));
  if (!o.endpoint) return;
  const { ip } = o.endpoint;
  const epPorts = [{ name: 'https', port, protocol: 'TCP' }];
  await ensure(registry, findResource('', 'v1', 'endpoints')!, {
    apiVersion: 'v1',
    kind: 'Endpoints',
    // As kube: the reconciler's Endpoints are not mirrored into a second slice (it writes its own).
    metadata: { name: NAME, namespace: NS, labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true' } },
    subsets: [{ addresses: [{ ip }], ports: epPorts }],
  }, (cur) => JSON.stringify(cur.subsets) === JSON.stringify([{ addresses: [{ ip }], ports: epPorts }]),
  (cur, want) => ({ ...cur, subsets: want.subsets }));
  await ensure(registry, findResource('discovery.k8s.io', 'v1', 'endpointslices')!, {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: NAME, namespace: NS, labels: { 'kubernetes.io/service-name': NAME } },
    addressType: 'IPv4',
    endpoints: [{ addresses: [ip], conditions: { ready: true } }],
    ports: epPorts,
  }, (cur) => JSON.stringify([cur.endpoints?.map((e: any) => e.addresses), cur.ports]) === JSON.stringify([[[ip]], epPorts]),
  (cur, want) => ({ ...cur, endpoints: want.endpoints, ports: want.ports }));
}

/** Creates `want`, or, when the stored object is not `fine`, replaces it with `fix(stored, want)`. */
async function ensure(
  registry: Registry,
  res: NonNullable<ReturnType<typeof findResource>>,
  want: KubeObject,
  fine: (cur: KubeObject) => boolean,
  fix: (cur: KubeObject, want: KubeObject) => KubeObject,
): Promise<void> {
  let cur: KubeObject | undefined;
  try {
    cur = await registry.get(res, NS, NAME);
  } catch (e) {
    if (!(e instanceof ApiError && e.code === 404)) throw e;
  }
  if (!cur) {
    try {
      await registry.create(res, NS, want);
      return;
    } catch (e) {
      if (!(e instanceof ApiError && e.reason === 'AlreadyExists')) throw e; // another apiserver made it meanwhile
      cur = await registry.get(res, NS, NAME);
    }
  }
  if (fine(cur)) return;
  await registry.guaranteedUpdate(res, NS, NAME, undefined, {}, (c) => fix(c, want));
}
