// Defaulting of the served kinds: what Kubernetes fills in when a field is left out, so objects read back
// exactly as a real cluster returns them (kubectl get -o yaml shows the same fields). Sources:
// pkg/apis/core/v1/defaults.go (SetDefaults_*), the registries' PrepareForCreate (pod status, namespace
// finalizer), and admission plugins every cluster runs (ServiceAccount: serviceAccountName "default";
// Priority: priority 0 / PreemptLowerPriority).
//
// applyDefaults runs on every write (create and update), as Kubernetes defaults every decoded object; it
// only fills what is missing, so applying it twice changes nothing. A few things happen only when an
// object is created; they are keyed on the status being empty, because the registry resets the status
// of kinds with a status subresource on create and carries the stored one over on every other write.

import { Buffer } from 'node:buffer';
import type { ResourceInfo } from './resources.ts';
import type { KubeObject } from './types.ts';
import { isObject } from './types.ts';
import { parseQuantityExact, QuantityError } from './quantity.ts';

type Obj = Record<string, any>;

const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObject) : []);

function setIfMissing(o: Obj, key: string, value: unknown): void {
  if (o[key] === undefined || o[key] === null || o[key] === '') o[key] = value;
}

function ensureObject(o: Obj, key: string): Obj {
  if (!isObject(o[key])) o[key] = {};
  return o[key];
}

/** The tag of an image reference, "latest" when neither tag nor digest is given (parsers.ParseImageName). */
function imageTag(image: string): string {
  const at = image.indexOf('@');
  const name = at >= 0 ? image.slice(0, at) : image;
  const colon = name.lastIndexOf(':');
  const tag = colon > name.lastIndexOf('/') ? name.slice(colon + 1) : '';
  if (tag) return tag;
  return at >= 0 ? '' : 'latest';
}

function defaultProbe(probe: unknown): void {
  if (!isObject(probe)) return;
  setIfMissing(probe, 'timeoutSeconds', 1);
  setIfMissing(probe, 'periodSeconds', 10);
  setIfMissing(probe, 'successThreshold', 1);
  setIfMissing(probe, 'failureThreshold', 3);
  defaultHandler(probe);
}

function defaultHandler(h: Obj): void {
  if (isObject(h.httpGet)) {
    setIfMissing(h.httpGet, 'path', '/');
    setIfMissing(h.httpGet, 'scheme', 'HTTP');
  }
}

function defaultContainer(c: Obj, hostNetwork: boolean): void {
  if (!c.imagePullPolicy) {
    // An image reference that does not parse has no tag: IfNotPresent (validation reports the image).
    const image = typeof c.image === 'string' ? c.image : '';
    c.imagePullPolicy = image && imageTag(image) === 'latest' ? 'Always' : 'IfNotPresent';
  }
  setIfMissing(c, 'terminationMessagePath', '/dev/termination-log');
  setIfMissing(c, 'terminationMessagePolicy', 'File');
  ensureObject(c, 'resources');
  for (const p of list(c.ports)) {
    setIfMissing(p, 'protocol', 'TCP');
    // With the host's network a container port is also the host port.
    if (hostNetwork && !p.hostPort) p.hostPort = p.containerPort;
  }
  for (const e of list(c.env)) {
    if (isObject(e.valueFrom) && isObject(e.valueFrom.fieldRef)) setIfMissing(e.valueFrom.fieldRef, 'apiVersion', 'v1');
  }
  defaultProbe(c.livenessProbe);
  defaultProbe(c.readinessProbe);
  defaultProbe(c.startupProbe);
  if (isObject(c.lifecycle)) {
    for (const hook of ['postStart', 'preStop']) if (isObject(c.lifecycle[hook])) defaultHandler(c.lifecycle[hook]);
  }
}

const VOLUME_SOURCE_KEYS = [
  'hostPath', 'emptyDir', 'gcePersistentDisk', 'awsElasticBlockStore', 'gitRepo', 'secret', 'nfs', 'iscsi', 'glusterfs',
  'persistentVolumeClaim', 'rbd', 'flexVolume', 'cinder', 'cephfs', 'flocker', 'downwardAPI', 'fc', 'azureFile',
  'configMap', 'vsphereVolume', 'quobyte', 'azureDisk', 'photonPersistentDisk', 'projected', 'portworxVolume',
  'scaleIO', 'storageos', 'csi', 'ephemeral', 'image',
];

function defaultVolume(v: Obj): void {
  // A volume that names no source is an emptyDir.
  if (!VOLUME_SOURCE_KEYS.some((k) => v[k] !== undefined && v[k] !== null)) v.emptyDir = {};
  if (isObject(v.hostPath)) setIfMissing(v.hostPath, 'type', '');
  // 0644: the file mode of projected keys.
  for (const k of ['secret', 'configMap', 'downwardAPI', 'projected']) {
    if (isObject(v[k]) && v[k].defaultMode === undefined) v[k].defaultMode = 0o644;
  }
  if (isObject(v.downwardAPI)) {
    for (const item of list(v.downwardAPI.items)) if (isObject(item.fieldRef)) setIfMissing(item.fieldRef, 'apiVersion', 'v1');
  }
}

/** SetDefaults_PodSpec and what it reaches: shared by pods and pod templates. */
function defaultPodSpec(spec: Obj): void {
  setIfMissing(spec, 'dnsPolicy', 'ClusterFirst');
  setIfMissing(spec, 'restartPolicy', 'Always');
  ensureObject(spec, 'securityContext');
  if (spec.terminationGracePeriodSeconds === undefined || spec.terminationGracePeriodSeconds === null) spec.terminationGracePeriodSeconds = 30;
  setIfMissing(spec, 'schedulerName', 'default-scheduler');
  const hostNetwork = spec.hostNetwork === true;
  for (const c of list(spec.containers)) defaultContainer(c, hostNetwork);
  for (const c of list(spec.initContainers)) defaultContainer(c, hostNetwork);
  for (const v of list(spec.volumes)) defaultVolume(v);
}

function defaultPod(pod: Obj): void {
  const spec = ensureObject(pod, 'spec');
  defaultPodSpec(spec);
  // SetDefaults_Pod (pods only, not templates): requests default to limits.
  for (const c of [...list(spec.containers), ...list(spec.initContainers)]) {
    const r = ensureObject(c, 'resources');
    if (isObject(r.limits)) {
      const requests = ensureObject(r, 'requests');
      for (const [k, v] of Object.entries(r.limits)) if (requests[k] === undefined) requests[k] = v;
    }
  }
  if (spec.enableServiceLinks === undefined || spec.enableServiceLinks === null) spec.enableServiceLinks = true;
  // ServiceAccount admission; the deprecated serviceAccount field mirrors it in v1.
  setIfMissing(spec, 'serviceAccountName', typeof spec.serviceAccount === 'string' && spec.serviceAccount ? spec.serviceAccount : 'default');
  spec.serviceAccount = spec.serviceAccountName;
  // Priority admission without a priorityClassName.
  if (!spec.priorityClassName && (spec.priority === undefined || spec.priority === null)) spec.priority = 0;
  setIfMissing(spec, 'preemptionPolicy', 'PreemptLowerPriority');
  // PrepareForCreate: a new pod is Pending with its QoS class.
  const status = ensureObject(pod, 'status');
  if (!status.phase) {
    status.phase = 'Pending';
    if (!status.qosClass) status.qosClass = podQOSClass(pod as KubeObject);
  }
}

function defaultReplicationController(rc: Obj): void {
  const spec = ensureObject(rc, 'spec');
  const template = isObject(spec.template) ? spec.template : undefined;
  const labels = template && isObject(template.metadata) && isObject(template.metadata.labels) ? template.metadata.labels : undefined;
  if (labels) {
    if (!isObject(spec.selector) || Object.keys(spec.selector).length === 0) spec.selector = { ...labels };
    const meta = rc.metadata as Obj;
    if (!isObject(meta.labels) || Object.keys(meta.labels).length === 0) meta.labels = { ...labels };
  }
  if (spec.replicas === undefined || spec.replicas === null) spec.replicas = 1;
  if (template) defaultPodSpec(ensureObject(template, 'spec'));
  const status = ensureObject(rc, 'status');
  if (status.replicas === undefined) status.replicas = 0;
}

function defaultService(svc: Obj): void {
  const spec = ensureObject(svc, 'spec');
  setIfMissing(spec, 'sessionAffinity', 'None');
  if (spec.sessionAffinity === 'None') delete spec.sessionAffinityConfig;
  if (spec.sessionAffinity === 'ClientIP' && typeof spec.sessionAffinityConfig?.clientIP?.timeoutSeconds !== 'number') {
    spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: 10800 } };
  }
  setIfMissing(spec, 'type', 'ClusterIP');
  for (const p of list(spec.ports)) {
    setIfMissing(p, 'protocol', 'TCP');
    if (p.targetPort === undefined || p.targetPort === null || p.targetPort === 0 || p.targetPort === '') p.targetPort = p.port;
  }
  const type = spec.type;
  const externallyAccessible =
    type === 'LoadBalancer' || type === 'NodePort' || (type === 'ClusterIP' && Array.isArray(spec.externalIPs) && spec.externalIPs.length > 0);
  if (externallyAccessible) setIfMissing(spec, 'externalTrafficPolicy', 'Cluster');
  if (type === 'NodePort' || type === 'LoadBalancer' || type === 'ClusterIP') setIfMissing(spec, 'internalTrafficPolicy', 'Cluster');
  if (type === 'LoadBalancer' && (spec.allocateLoadBalancerNodePorts === undefined || spec.allocateLoadBalancerNodePorts === null)) {
    spec.allocateLoadBalancerNodePorts = true;
  }
  if (type !== 'ExternalName') {
    // clusterIP and clusterIPs name the same address; whichever was given fills the other.
    const ips = Array.isArray(spec.clusterIPs) ? spec.clusterIPs : [];
    if (spec.clusterIP && ips.length === 0) spec.clusterIPs = [spec.clusterIP];
    else if (!spec.clusterIP && ips.length > 0) spec.clusterIP = ips[0];
    // Single-stack IPv4, the family of Skiff's service range.
    if (!Array.isArray(spec.ipFamilies) || spec.ipFamilies.length === 0) spec.ipFamilies = ['IPv4'];
    setIfMissing(spec, 'ipFamilyPolicy', 'SingleStack');
  }
  // A service without a status reads back with an empty load balancer status.
  const status = ensureObject(svc, 'status');
  ensureObject(status, 'loadBalancer');
}

function defaultNamespace(ns: Obj): void {
  const spec = ensureObject(ns, 'spec');
  const status = ensureObject(ns, 'status');
  if (!status.phase) {
    // PrepareForCreate: a new namespace is Active and carries the "kubernetes" finalizer. This is not a
    // default on later writes: the namespace controller removes the finalizer to finish a deletion.
    status.phase = 'Active';
    const finalizers: unknown[] = Array.isArray(spec.finalizers) ? spec.finalizers : [];
    if (!finalizers.includes('kubernetes')) spec.finalizers = [...finalizers, 'kubernetes'];
  }
}

function defaultSecret(secret: Obj): void {
  setIfMissing(secret, 'type', 'Opaque');
  // stringData is write-only: it is merged into data (overriding it) and never stored.
  if (isObject(secret.stringData)) {
    const data = ensureObject(secret, 'data');
    for (const [k, v] of Object.entries(secret.stringData)) data[k] = Buffer.from(String(v), 'utf8').toString('base64');
  }
  delete secret.stringData;
}

function defaultNode(node: Obj): void {
  const status = ensureObject(node, 'status');
  if (status.allocatable === undefined && isObject(status.capacity)) status.allocatable = { ...status.capacity };
}

function defaultEndpoints(ep: Obj): void {
  for (const ss of list(ep.subsets)) for (const p of list(ss.ports)) setIfMissing(p, 'protocol', 'TCP');
}

/** discovery/v1 SetDefaults_EndpointPort: an unnamed port is named "", protocol TCP. */
function defaultEndpointSlice(slice: Obj): void {
  for (const p of list(slice.ports)) {
    setIfMissing(p, 'name', '');
    setIfMissing(p, 'protocol', 'TCP');
  }
}

/** Fills in Kubernetes' defaults for `obj` in place. Metadata (uid, timestamps, namespace) is the registry's. */
export function applyDefaults(res: ResourceInfo, obj: KubeObject): void {
  if (res.group === 'discovery.k8s.io' && res.kind === 'EndpointSlice') return defaultEndpointSlice(obj);
  if (res.group !== '') return; // Lease (coordination.k8s.io) has no defaults
  switch (res.kind) {
    case 'Pod':
      return defaultPod(obj);
    case 'ReplicationController':
      return defaultReplicationController(obj);
    case 'Service':
      return defaultService(obj);
    case 'Namespace':
      return defaultNamespace(obj);
    case 'Secret':
      return defaultSecret(obj);
    case 'Node':
      return defaultNode(obj);
    case 'Endpoints':
      return defaultEndpoints(obj);
  }
}

// ---------------------------------------------------------------------------------------------------
// QoS class (pkg/apis/core/helper/qos ComputePodQOS)

/** Sum of positive cpu/memory quantities, in nano-units; unparsable values count as nothing. */
function add(acc: Map<string, bigint>, name: string, value: unknown): boolean {
  if (name !== 'cpu' && name !== 'memory') return false;
  let nanos: bigint;
  try {
    if (typeof value !== 'string' && typeof value !== 'number') return false;
    nanos = parseQuantityExact(value).nanos;
  } catch (e) {
    if (e instanceof QuantityError) return false;
    throw e;
  }
  if (nanos <= 0n) return false;
  acc.set(name, (acc.get(name) ?? 0n) + nanos);
  return true;
}

/**
 * The pod's QoS class: Guaranteed when every container limits cpu and memory and requests equal limits,
 * BestEffort when nothing is requested or limited, Burstable otherwise. Requests left out count as equal
 * to the limits, as defaulting makes them.
 */
export function podQOSClass(pod: Pick<KubeObject, 'spec'>): 'Guaranteed' | 'Burstable' | 'BestEffort' {
  const requests = new Map<string, bigint>();
  const limits = new Map<string, bigint>();
  let guaranteed = true;
  const containers = [...list(pod.spec?.containers), ...list(pod.spec?.initContainers)];
  for (const c of containers) {
    const r = isObject(c.resources) ? c.resources : {};
    const lim = isObject(r.limits) ? r.limits : {};
    const req = { ...lim, ...(isObject(r.requests) ? r.requests : {}) };
    for (const [k, v] of Object.entries(req)) add(requests, k, v);
    const found = new Set<string>();
    for (const [k, v] of Object.entries(lim)) if (add(limits, k, v)) found.add(k);
    if (!found.has('cpu') || !found.has('memory')) guaranteed = false;
  }
  if (requests.size === 0 && limits.size === 0) return 'BestEffort';
  if (guaranteed) {
    for (const [k, v] of requests) {
      if (limits.get(k) !== v) {
        guaranteed = false;
        break;
      }
    }
  }
  return guaranteed && requests.size === limits.size ? 'Guaranteed' : 'Burstable';
}
