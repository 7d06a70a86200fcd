// NodeRestriction admission (kube's plugin/pkg/admission/noderestriction), with its messages: what a
// node's own credential may write, within what the Node authorizer (node-authorizer.ts) lets through.
// A node may create, update and delete only its own Node (without setting node-restriction.kubernetes.io/*
// or other kubernetes.io / k8s.io labels outside the kubelet's own, nor changing its taints or
// configSource), update only the status of pods bound to it, delete and evict only those pods, create
// only mirror pods (Skiff has none, so no pod create passes), request tokens only for its pods, and
// write only its own Lease.
//
// Cost: nothing for anyone but a node. For a node: updates and deletes are judged against the object the
// write itself reads (AdmissionRequest.oldObject): no read. Evictions and token requests read the pod
// once. Leases, Node creates and Node status writes: nothing.

import { isDeepStrictEqual } from 'node:util';
import type { AdmissionPlugin, AdmissionRequest } from './admission.ts';
import type { Registry } from './registry.ts';
import type { KubeObject } from '../machinery/types.ts';
import { ApiError } from '../machinery/status.ts';
import { findResource } from '../machinery/resources.ts';
import { nodeIdentity, NODE_LEASE_NAMESPACE } from './node-authorizer.ts';
import { LOCAL_PATH_FINALIZER } from '../controllers/local-path.ts';

const podsRes = findResource('', 'v1', 'pods')!;
const MIRROR_POD_ANNOTATION = 'kubernetes.io/config.mirror';

/** kube's admission.NewForbidden: `<resource>[.<group>] "<name>" is forbidden: <why>`. */
function forbidden(req: AdmissionRequest, why: string): ApiError {
  const name = req.name ?? req.object?.metadata?.name ?? '';
  const gr = req.resource.group ? `${req.resource.resource}.${req.resource.group}` : req.resource.resource;
  return new ApiError('Forbidden', `${name ? `${gr} "${name}"` : gr} is forbidden: ${why}`, {
    ...(name ? { name } : {}),
    ...(req.resource.group ? { group: req.resource.group } : {}),
    kind: req.resource.resource,
  });
}

/** The object as stored: the write's own read for an update or delete (oldObject), else one get (evictions). */
async function existing(registry: Registry, req: AdmissionRequest): Promise<KubeObject> {
  return req.oldObject ?? registry.get(req.resource, req.namespace, req.name!);
}

/** Checks the stored object (no read for an update or delete: the write passes what it read). */
async function judgeStored(req: AdmissionRequest, registry: Registry, check: (stored: KubeObject) => void): Promise<void> {
  check(await existing(registry, req));
}

/** The object an update writes. */
async function incoming(req: AdmissionRequest): Promise<KubeObject | undefined> {
  return req.object;
}

// kubelet's own labels (k8s.io/kubelet/pkg/apis: kubeletLabels and kubeletLabelNamespaces).
const KUBELET_LABELS = new Set([
  'kubernetes.io/hostname',
  'topology.kubernetes.io/zone',
  'topology.kubernetes.io/region',
  'failure-domain.beta.kubernetes.io/zone',
  'failure-domain.beta.kubernetes.io/region',
  'beta.kubernetes.io/instance-type',
  'node.kubernetes.io/instance-type',
  'beta.kubernetes.io/os',
  'beta.kubernetes.io/arch',
  'kubernetes.io/os',
  'kubernetes.io/arch',
]);
const KUBELET_LABEL_NAMESPACES = ['kubelet.kubernetes.io', 'node.kubernetes.io'];

const labelNamespace = (key: string) => (key.includes('/') ? key.slice(0, key.indexOf('/')) : '');
const inNamespace = (ns: string, of: string) => ns === of || ns.endsWith(`.${of}`);
const isKubeletLabel = (key: string) => KUBELET_LABELS.has(key) || KUBELET_LABEL_NAMESPACES.some((n) => inNamespace(labelNamespace(key), n));
const isKubernetesLabel = (key: string) => inNamespace(labelNamespace(key), 'kubernetes.io') || inNamespace(labelNamespace(key), 'k8s.io');

/** Label keys added, removed or changed between two label maps (kube's getModifiedLabels). */
function modifiedLabels(a: Record<string, string> | undefined, b: Record<string, string> | undefined): string[] {
  const out = new Set<string>();
  for (const [k, v] of Object.entries(a ?? {})) if (b?.[k] !== v) out.add(k);
  for (const [k, v] of Object.entries(b ?? {})) if (a?.[k] !== v) out.add(k);
  return [...out];
}

/** The labels a node may not add, remove or change (kube's getForbiddenLabels), sorted. */
export function forbiddenNodeLabels(modified: string[]): string[] {
  return modified.filter((k) => inNamespace(labelNamespace(k), 'node-restriction.kubernetes.io') || (isKubernetesLabel(k) && !isKubeletLabel(k))).sort();
}

/** Semantic equality (apiequality.Semantic.DeepEqual): key order is no difference, nor nil against empty. */
const empty = (v: unknown) => v === undefined || v === null || (Array.isArray(v) && !v.length) || (typeof v === 'object' && !Object.keys(v as object).length);
const same = (a: unknown, b: unknown) => (empty(a) && empty(b)) || isDeepStrictEqual(a, b);

async function admitNode(node: string, req: AdmissionRequest, registry: Registry): Promise<void> {
  const requested = req.name ?? req.object?.metadata?.name ?? '';
  if (requested !== node) throw forbidden(req, `node "${node}" is not allowed to modify node "${requested}"`);
  if (req.operation === 'CREATE') {
    if (req.object?.spec?.configSource != null) throw forbidden(req, `node "${node}" is not allowed to create pods with a non-nil configSource`);
    const bad = forbiddenNodeLabels(modifiedLabels(req.object?.metadata?.labels, undefined));
    if (bad.length) throw forbidden(req, `node "${node}" is not allowed to set the following labels: ${bad.join(', ')}`);
  }
  // A status write keeps the stored spec and labels (the registry puts everything but the status
  // back), so it cannot change what is checked below: no read for a node's heartbeat.
  if (req.operation === 'UPDATE' && req.subresource !== 'status') {
    const [old, obj] = await Promise.all([existing(registry, req), incoming(req)]);
    if (!obj) return;
    const cs = obj.spec?.configSource;
    if (cs != null && !same(cs, old.spec?.configSource)) throw forbidden(req, `node "${node}" is not allowed to update configSource to a new non-nil configSource`);
    if (!same(obj.spec?.taints, old.spec?.taints)) throw forbidden(req, `node "${node}" is not allowed to modify taints`);
    const bad = forbiddenNodeLabels(modifiedLabels(obj.metadata?.labels, old.metadata?.labels));
    if (bad.length) throw forbidden(req, `is not allowed to modify labels: ${bad.join(', ')}`);
  }
}

async function admitPod(node: string, req: AdmissionRequest, registry: Registry): Promise<void> {
  switch (req.subresource ?? '') {
    case '':
      if (req.operation === 'CREATE') {
        // Skiff's agent makes no mirror pods (it has no static pods): kube's first check refuses the rest.
        if (!(MIRROR_POD_ANNOTATION in (req.object?.metadata?.annotations ?? {}))) {
          throw forbidden(req, `pod does not have "${MIRROR_POD_ANNOTATION}" annotation, node "${node}" can only create mirror pods`);
        }
        throw forbidden(req, `node "${node}" can only create pods with an owner reference set to itself`);
      }
      if (req.operation === 'DELETE') {
        return judgeStored(req, registry, (pod) => {
          if (pod.spec?.nodeName !== node) throw forbidden(req, `node "${node}" can only delete pods with spec.nodeName set to itself`);
        });
      }
      throw forbidden(req, `unexpected operation "${req.operation}", node "${node}" can only create and delete mirror pods`);
    case 'status': {
      if (req.operation !== 'UPDATE') throw forbidden(req, `unexpected operation "${req.operation}"`);
      const obj = req.object;
      return judgeStored(req, registry, (old) => {
        if (old.spec?.nodeName !== node) throw forbidden(req, `node "${node}" can only update pod status for pods with spec.nodeName set to itself`);
        // (Skiff's status writes keep the stored labels anyway; kube's check, for its message.)
        if (obj && !same(old.metadata.labels, obj.metadata?.labels)) throw forbidden(req, `node "${node}" cannot update labels through pod status`);
      });
    }
    case 'eviction': {
      if (req.operation !== 'CREATE') throw forbidden(req, `unexpected operation ${req.operation}`);
      const pod = await existing(registry, req);
      if (pod.spec?.nodeName !== node) throw forbidden(req, `node ${node} can only evict pods with spec.nodeName set to itself`);
      return;
    }
    default:
      throw forbidden(req, `unexpected pod subresource "${req.subresource}", only 'status' and 'eviction' are allowed`);
  }
}


async function admitTokenRequest(node: string, req: AdmissionRequest, registry: Registry): Promise<void> {
  if (req.operation !== 'CREATE' || req.subresource !== 'token') return;
  const ref = req.object?.spec?.boundObjectRef;
  if (!ref || ref.apiVersion !== 'v1' || ref.kind !== 'Pod' || !ref.name) throw forbidden(req, 'node requested token not bound to a pod');
  if (!ref.uid) throw forbidden(req, 'node requested token with a pod binding without a uid');
  const pod = await registry.get(podsRes, req.namespace, ref.name);
  if (ref.uid !== pod.metadata.uid) {
    throw forbidden(req, `the UID in the bound object reference (${ref.uid}) does not match the UID in record. The object might have been deleted and then recreated`);
  }
  if (pod.spec?.nodeName !== node) throw forbidden(req, 'node requested token bound to a pod scheduled on a different node');
}

function admitLease(node: string, req: AdmissionRequest): void {
  if (req.namespace !== NODE_LEASE_NAMESPACE) throw forbidden(req, `can only access leases in the "${NODE_LEASE_NAMESPACE}" system namespace`);
  const name = req.operation === 'CREATE' ? req.object?.metadata?.name : req.name;
  if (name !== node) throw forbidden(req, 'can only access node lease with the same name as the requesting node');
}

export const nodeRestriction: AdmissionPlugin = {
  name: 'NodeRestriction',
  async admit(req, registry) {
    const node = nodeIdentity(req.user);
    if (node === undefined) return;
    if (!node) throw forbidden(req, `could not determine node from user "${req.user.username}"`);
    const gr = `${req.resource.group}/${req.resource.resource}`;
    switch (gr) {
      case '/pods':
        return admitPod(node, req, registry);
      case '/nodes':
        return admitNode(node, req, registry);
      case '/persistentvolumeclaims':
        if (req.subresource !== 'status') throw forbidden(req, 'may only update PVC status');
        return admitClaimStatus(node, req, registry);
      case '/serviceaccounts':
        return admitTokenRequest(node, req, registry);
      case 'coordination.k8s.io/leases':
        return admitLease(node, req);
      case '/persistentvolumes':
        return admitLocalPathVolume(node, req, registry);
    }
  },
};

/** A node may change a claim's status.capacity and status.conditions (and the allocated resources), nothing else. */
async function admitClaimStatus(node: string, req: AdmissionRequest, registry: Registry): Promise<void> {
  if (req.operation !== 'UPDATE') throw forbidden(req, `unexpected operation "${req.operation}"`);
  const strip = (o: KubeObject | undefined) => {
    const { resourceVersion: _rv, managedFields: _mf, ...metadata } = o?.metadata ?? {};
    const { capacity: _c, conditions: _k, allocatedResources: _a, allocatedResourceStatuses: _s, ...status } = o?.status ?? {};
    return { ...o, metadata, status };
  };
  const [old, obj] = await Promise.all([existing(registry, req), incoming(req)]);
  if (!same(strip(old), strip(obj))) throw forbidden(req, `node "${node}" is not allowed to update fields other than status.capacity and status.conditions`);
}

/**
 * Skiff's own rule (kube's nodes write no volumes): the Node authorizer lets a node write its own
 * local-path volumes only so that it can drop LOCAL_PATH_FINALIZER once their directory is gone; any
 * other change is refused. One get of the volume.
 */
async function admitLocalPathVolume(node: string, req: AdmissionRequest, registry: Registry): Promise<void> {
  const why = `node "${node}" may only remove the ${LOCAL_PATH_FINALIZER} finalizer of its own local-path volumes`;
  if (req.operation !== 'UPDATE' || req.subresource) throw forbidden(req, why);
  const [old, obj] = await Promise.all([existing(registry, req), incoming(req)]);
  const rest = (o: KubeObject | undefined) => {
    const { resourceVersion: _rv, managedFields: _mf, finalizers: _f, ...metadata } = o?.metadata ?? {};
    return { ...o, metadata };
  };
  const expected = (old.metadata.finalizers ?? []).filter((f: string) => f !== LOCAL_PATH_FINALIZER);
  if (!same(rest(old), rest(obj)) || !same(obj?.metadata?.finalizers, expected)) throw forbidden(req, why);
}
