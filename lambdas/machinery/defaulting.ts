// Defaulting shared by several kinds: the helpers every kind's defaults use, and SetDefaults_PodSpec with
// what it reaches (containers, probes, volumes), shared by pods and pod templates (Pod,
// ReplicationController). What Kubernetes fills in when a field is left out, so objects read back exactly
// as a real cluster returns them (kubectl get -o yaml shows the same fields). Sources:
// pkg/apis/core/v1/defaults.go (SetDefaults_*). Each kind's own defaults are in its module (lambdas/kinds/).
//
// Defaults run on every write (create and update), as Kubernetes defaults every decoded object; they only
// fill what is missing, so applying them twice changes nothing.

import { isObject, objectList as list } from './types.ts';

type Obj = Record<string, any>;

export function setIfMissing(o: Obj, key: string, value: unknown): void {
  if (o[key] === undefined || o[key] === null || o[key] === '') o[key] = value;
}

export function ensureObject(o: Obj, key: string): Obj {
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
export function defaultPodSpec(spec: Obj): void {
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
