// ServiceAccount admission, as kube-apiserver's plugin (plugin/pkg/admission/serviceaccount): a new pod
// runs as spec.serviceAccountName ("default" when unset), which must exist in its namespace, and unless
// automountServiceAccountToken is false (the pod's wins, then the ServiceAccount's) every container and
// init container mounts the projected volume `kube-api-access-<5 chars>` read-only at
// /var/run/secrets/kubernetes.io/serviceaccount: a bound token (expirationSeconds 3607, path token), the
// namespace's kube-root-ca.crt (ca.crt) and the namespace (downward API). The node agent fills it.
// A pod with no imagePullSecrets gets its ServiceAccount's. Mirror pods are left alone.
// Costs one read of the ServiceAccount per pod create (kube reads an informer); for `default`, missing
// right after its namespace was made, up to 10 reads (kube's retry; over about 6.5 s here) while the
// serviceaccounts loop creates it.

import { findResource } from '../machinery/resources.ts';
import { ApiError, qualifiedResource } from '../machinery/status.ts';
import { isObject, type KubeObject } from '../machinery/types.ts';
import type { AdmissionPlugin } from './admission.ts';
import type { Registry } from './registry.ts';
import { WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS } from './serviceaccount-tokens.ts';

export const DEFAULT_SERVICE_ACCOUNT_NAME = 'default';
/** kube's ServiceAccountVolumeName: the token volume is named with this prefix and 5 random characters. */
export const SERVICE_ACCOUNT_VOLUME_NAME = 'kube-api-access';
/** kube's DefaultAPITokenMountPath. */
export const DEFAULT_API_TOKEN_MOUNT_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';
const MIRROR_POD_ANNOTATION = 'kubernetes.io/config.mirror';

/** kube's names.SimpleNameGenerator alphabet (no vowels, no look-alikes). */
const ALPHANUMS = 'bcdfghjklmnpqrstvwxz2456789';
function randomSuffix(n = 5): string {
  let s = '';
  for (let i = 0; i < n; i++) s += ALPHANUMS[Math.floor(Math.random() * ALPHANUMS.length)];
  return s;
}

/** kube's TokenVolumeSource(): exactly the projected source kube-apiserver injects. */
export function tokenVolumeSource(): Record<string, any> {
  return {
    defaultMode: 0o644,
    sources: [
      { serviceAccountToken: { expirationSeconds: WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS, path: 'token' } },
      { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
      { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
    ],
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** kube's getServiceAccount: a read, retried for `default` (its controller may not have made it yet). */
async function getServiceAccount(registry: Registry, namespace: string, name: string): Promise<KubeObject | undefined> {
  const res = findResource('', 'v1', 'serviceaccounts')!;
  const attempts = name === DEFAULT_SERVICE_ACCOUNT_NAME ? 10 : 1;
  for (let i = 0; i < attempts; i++) {
    // 100 ms doubling to 1 s (about 6.5 s in all): a store polled by the loops (DynamoDB) or a loop queue
    // busy with a start-up resync can take seconds to make a new namespace's account.
    if (i) await sleep(Math.min(100 * 2 ** (i - 1), 1000) + Math.floor(Math.random() * 50));
    try {
      return await registry.get(res, namespace, name);
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 404)) throw e;
    }
  }
  return undefined;
}

function shouldAutomount(sa: KubeObject, spec: Record<string, any>): boolean {
  if (typeof spec.automountServiceAccountToken === 'boolean') return spec.automountServiceAccountToken;
  if (typeof sa.automountServiceAccountToken === 'boolean') return sa.automountServiceAccountToken;
  return true;
}

/** kube's mountServiceAccountToken. */
function mountServiceAccountToken(spec: Record<string, any>): void {
  const volumes: any[] = Array.isArray(spec.volumes) ? spec.volumes : [];
  const existing = volumes.find((v) => isObject(v) && typeof v.name === 'string' && v.name.startsWith(`${SERVICE_ACCOUNT_VOLUME_NAME}-`));
  const volumeName: string = existing?.name ?? `${SERVICE_ACCOUNT_VOLUME_NAME}-${randomSuffix()}`;
  const mount = { name: volumeName, readOnly: true, mountPath: DEFAULT_API_TOKEN_MOUNT_PATH };
  let needsTokenVolume = false;
  for (const field of ['initContainers', 'containers']) {
    for (const c of Array.isArray(spec[field]) ? spec[field] : []) {
      if (!isObject(c)) continue;
      const mounts: any[] = Array.isArray(c.volumeMounts) ? c.volumeMounts : [];
      // An existing mount at the path keeps the container's own (kube: no token for it).
      if (mounts.some((m) => isObject(m) && m.mountPath === DEFAULT_API_TOKEN_MOUNT_PATH)) continue;
      c.volumeMounts = [...mounts, { ...mount }];
      needsTokenVolume = true;
    }
  }
  if (!existing && needsTokenVolume) spec.volumes = [...volumes, { name: volumeName, projected: tokenVolumeSource() }];
}

export const serviceAccountAdmission: AdmissionPlugin = {
  name: 'ServiceAccount',
  async admit(req, registry) {
    if (req.operation !== 'CREATE' || req.subresource || !req.object || !req.namespace) return;
    if (req.resource.group !== '' || req.resource.resource !== 'pods') return;
    const pod = req.object;
    if (pod.metadata?.annotations?.[MIRROR_POD_ANNOTATION] !== undefined) return;
    if (!isObject(pod.spec)) return; // the pod's validation says what is wrong
    const spec = pod.spec as Record<string, any>;
    // v1's deprecated serviceAccount is the name when serviceAccountName is unset (conversion does this).
    if (!spec.serviceAccountName) spec.serviceAccountName = typeof spec.serviceAccount === 'string' && spec.serviceAccount ? spec.serviceAccount : DEFAULT_SERVICE_ACCOUNT_NAME;
    const saName = String(spec.serviceAccountName);
    const sa = await getServiceAccount(registry, req.namespace, saName);
    if (!sa) {
      // admission.NewForbidden, naming the pod by name, generateName, or "Unknown".
      const name = pod.metadata?.name || pod.metadata?.generateName || 'Unknown';
      throw new ApiError(
        'Forbidden',
        `${qualifiedResource('pods', '')} "${name}" is forbidden: error looking up service account ${req.namespace}/${saName}: serviceaccount "${saName}" not found`,
        { name, kind: 'pods' },
      );
    }
    if (shouldAutomount(sa, spec)) mountServiceAccountToken(spec);
    if (!Array.isArray(spec.imagePullSecrets) || spec.imagePullSecrets.length === 0) {
      const fromSa = Array.isArray(sa.imagePullSecrets) ? sa.imagePullSecrets.filter(isObject).map((s: any) => ({ name: s.name })) : [];
      if (fromSa.length) spec.imagePullSecrets = fromSa;
    }
  },
};
