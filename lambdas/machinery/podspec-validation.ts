// PodSpec validation (pkg/apis/core/validation: ValidatePodSpec, ValidatePodTemplateSpec and what they
// call), shared by every kind that holds a pod: Pod, ReplicationController, and the pod templates to come
// (PodTemplate, Deployment, Job, ...). Texts follow Kubernetes v1.32; quirks users can see are reproduced
// and marked "as upstream".

import { formatQuantity, type ParsedQuantity } from './quantity.ts';
import { isObject } from './types.ts';
import {
  arr,
  configMapKeyErrors,
  dns1123LabelErrors,
  dns1123SubdomainErrors,
  ErrorList,
  has,
  inclusiveRangeError,
  ipErrors,
  labelKeyErrors,
  labelValueErrors,
  nameIsDNSSubdomain,
  obj,
  portNameErrors,
  portNumErrors,
  present,
  PROTOCOLS,
  quantity,
  regexError,
  sortedList,
  strOf,
  TAINT_EFFECTS,
  envVarNameErrors,
  validateAnnotations,
  validateLabels,
  validatePortNumOrName,
} from './validation.ts';

/** VolumeSource members in the order Kubernetes checks them; the second one found is the error. */
const VOLUME_SOURCES: [string, string][] = [
  ['emptyDir', 'emptyDir'],
  ['hostPath', 'hostPath'],
  ['gitRepo', 'gitRepo'],
  ['gcePersistentDisk', 'gcePersistentDisk'],
  ['awsElasticBlockStore', 'awsElasticBlockStore'],
  ['secret', 'secret'],
  ['nfs', 'nfs'],
  ['iscsi', 'iscsi'],
  ['glusterfs', 'glusterfs'],
  ['flocker', 'flocker'],
  ['persistentVolumeClaim', 'persistentVolumeClaim'],
  ['rbd', 'rbd'],
  ['cinder', 'cinder'],
  ['cephfs', 'cephFS'], // as upstream: the error path is spelled cephFS
  ['quobyte', 'quobyte'],
  ['downwardAPI', 'downwarAPI'], // as upstream: the error path has this typo
  ['fc', 'fc'],
  ['flexVolume', 'flexVolume'],
  ['configMap', 'configMap'],
  ['azureFile', 'azureFile'],
  ['vsphereVolume', 'vsphereVolume'],
  ['photonPersistentDisk', 'photonPersistentDisk'],
  ['portworxVolume', 'portworxVolume'],
  ['azureDisk', 'azureDisk'],
  ['storageos', 'storageos'],
  ['projected', 'projected'],
  ['scaleIO', 'scaleIO'],
  ['csi', 'csi'],
  ['ephemeral', 'ephemeral'],
  ['image', 'image'],
];

const HOST_PATH_TYPES = ['', 'BlockDevice', 'CharDevice', 'Directory', 'DirectoryOrCreate', 'File', 'FileOrCreate', 'Socket'];
const FILE_MODE_ERROR = 'must be a number between 0 and 0777 (octal), both inclusive';

function pathNoBacksteps(errs: ErrorList, field: string, p: string): void {
  if (p.replace(/\\/g, '/').split('/').includes('..')) errs.invalid(field, p, "must not contain '..'");
}

function localDescendingPath(errs: ErrorList, field: string, p: string): void {
  if (p.startsWith('/')) errs.invalid(field, p, 'must be a relative path');
  pathNoBacksteps(errs, field, p);
}

function localNonReservedPath(errs: ErrorList, field: string, p: string): void {
  localDescendingPath(errs, field, p);
  if (p.startsWith('..') && !p.startsWith('../')) errs.invalid(field, p, "must not start with '..'");
}

function fileMode(errs: ErrorList, field: string, mode: unknown): void {
  if (typeof mode === 'number' && (mode > 0o777 || mode < 0)) errs.invalid(field, mode, FILE_MODE_ERROR);
}

function keyToPaths(errs: ErrorList, field: string, items: unknown): void {
  arr(items).forEach((kp, i) => {
    const p = `${field}[${i}]`;
    if (!strOf(kp?.key)) errs.required(`${p}.key`);
    if (!strOf(kp?.path)) errs.required(`${p}.path`);
    localNonReservedPath(errs, `${p}.path`, strOf(kp?.path));
    fileMode(errs, `${p}.mode`, kp?.mode);
  });
}

function validateVolumeSource(errs: ErrorList, v: Record<string, any>, path: string): void {
  let count = 0;
  for (const [key, errName] of VOLUME_SOURCES) {
    if (!has(v, key)) continue;
    if (count > 0) {
      errs.forbidden(`${path}.${errName}`, 'may not specify more than 1 volume type');
      continue;
    }
    count++;
    const src = obj(v[key]);
    const p = `${path}.${key}`;
    switch (key) {
      case 'emptyDir':
        if (present(src.sizeLimit) && quantity(src.sizeLimit).nanos < 0n) errs.forbidden(`${p}.sizeLimit`, 'SizeLimit field must be a valid resource quantity');
        break;
      case 'hostPath':
        if (!strOf(src.path)) {
          errs.required(`${p}.path`);
          break;
        }
        pathNoBacksteps(errs, `${p}.path`, src.path);
        if (present(src.type) && !HOST_PATH_TYPES.includes(src.type)) errs.notSupported(`${p}.type`, src.type, HOST_PATH_TYPES);
        break;
      case 'secret':
        if (!strOf(src.secretName)) errs.required(`${p}.secretName`);
        fileMode(errs, `${p}.defaultMode`, src.defaultMode);
        keyToPaths(errs, `${p}.items`, src.items);
        break;
      case 'configMap':
        if (!strOf(src.name)) errs.required(`${p}.name`);
        fileMode(errs, `${p}.defaultMode`, src.defaultMode);
        keyToPaths(errs, `${p}.items`, src.items);
        break;
      case 'persistentVolumeClaim':
        if (!strOf(src.claimName)) errs.required(`${p}.claimName`);
        break;
      case 'nfs':
        if (!strOf(src.server)) errs.required(`${p}.server`);
        if (!strOf(src.path)) errs.required(`${p}.path`);
        if (!strOf(src.path).startsWith('/')) errs.invalid(`${p}.path`, strOf(src.path), 'must be an absolute path');
        break;
      case 'downwardAPI':
        fileMode(errs, `${p}.defaultMode`, src.defaultMode);
        break;
      case 'projected':
        fileMode(errs, `${p}.defaultMode`, src.defaultMode);
        arr(src.sources).forEach((source, j) => {
          if (!isObject(source?.serviceAccountToken)) return;
          // A bound token's lifetime: at least 10 minutes, at most 2^32 s (validateProjectionSources).
          const t = source.serviceAccountToken;
          const tp = `${p}.sources[${j}].serviceAccountToken`;
          const exp = t.expirationSeconds ?? 3600;
          if (exp < 600) errs.invalid(`${tp}.expirationSeconds`, exp, 'may not specify a duration less than 10 minutes');
          if (exp > 2 ** 32) errs.invalid(`${tp}.expirationSeconds`, exp, 'may not specify a duration larger than 2^32 seconds');
          if (!strOf(t.path)) errs.required(`${tp}.path`);
        });
        break;
    }
  }
  if (count === 0) errs.required(path, 'must specify a volume type');
}

/** Returns the names of the valid volumes: mounts may only refer to those. */
function validateVolumes(errs: ErrorList, volumes: unknown, path: string): Map<string, Record<string, any>> {
  const names = new Map<string, Record<string, any>>();
  arr(volumes).forEach((vol, i) => {
    const idx = `${path}[${i}]`;
    const own = new ErrorList();
    const v = obj(vol);
    validateVolumeSource(own, v, idx);
    const name = strOf(v.name);
    if (!name) own.required(`${idx}.name`);
    else own.each(`${idx}.name`, name, dns1123LabelErrors(name));
    if (names.has(name)) own.duplicate(`${idx}.name`, name);
    if (own.length === 0) names.set(name, v);
    else errs.list.push(...own.list);
  });
  return names;
}

function validateContainerPorts(errs: ErrorList, ports: unknown, path: string): void {
  const names = new Set<string>();
  arr(ports).forEach((port, i) => {
    const p = `${path}[${i}]`;
    const pt = obj(port);
    const name = strOf(pt.name);
    if (name) {
      const msgs = portNameErrors(name);
      if (msgs.length) errs.each(`${p}.name`, name, msgs);
      else if (names.has(name)) errs.duplicate(`${p}.name`, name);
      else names.add(name);
    }
    if (!pt.containerPort) errs.required(`${p}.containerPort`);
    else errs.each(`${p}.containerPort`, pt.containerPort, portNumErrors(pt.containerPort));
    if (pt.hostPort) errs.each(`${p}.hostPort`, pt.hostPort, portNumErrors(pt.hostPort));
    if (!strOf(pt.protocol)) errs.required(`${p}.protocol`);
    else if (!PROTOCOLS.includes(pt.protocol)) errs.notSupported(`${p}.protocol`, pt.protocol, PROTOCOLS);
  });
}

const ENV_FIELD_PATHS = sortedList([
  'metadata.name',
  'metadata.namespace',
  'metadata.uid',
  'spec.nodeName',
  'spec.serviceAccountName',
  'status.hostIP',
  'status.hostIPs',
  'status.podIP',
  'status.podIPs',
]);
const RESOURCE_FIELD_PATHS = sortedList(['limits.cpu', 'limits.memory', 'limits.ephemeral-storage', 'requests.cpu', 'requests.memory', 'requests.ephemeral-storage']);

function validateObjectFieldSelector(errs: ErrorList, fs: Record<string, any>, path: string): void {
  if (!strOf(fs.apiVersion)) return errs.required(`${path}.apiVersion`);
  const fieldPath = strOf(fs.fieldPath);
  if (!fieldPath) return errs.required(`${path}.fieldPath`);
  const sub = /^(metadata\.(?:labels|annotations))\['(.*)'\]$/.exec(fieldPath);
  if (sub) {
    const key = sub[1] === 'metadata.annotations' ? sub[2]!.toLowerCase() : sub[2]!;
    errs.each(path, key, labelKeyErrors(key));
  } else if (!ENV_FIELD_PATHS.includes(fieldPath)) {
    errs.notSupported(`${path}.fieldPath`, fieldPath, ENV_FIELD_PATHS);
  }
}

function validateKeySelector(errs: ErrorList, s: Record<string, any>, path: string): void {
  errs.each(`${path}.name`, strOf(s.name), dns1123SubdomainErrors(strOf(s.name)));
  if (!strOf(s.key)) errs.required(`${path}.key`);
  else errs.each(`${path}.key`, s.key, configMapKeyErrors(s.key));
}

function validateEnv(errs: ErrorList, env: unknown, path: string): void {
  arr(env).forEach((ev, i) => {
    const p = `${path}[${i}]`;
    const e = obj(ev);
    if (!strOf(e.name)) errs.required(`${p}.name`);
    else errs.each(`${p}.name`, e.name, envVarNameErrors(e.name));
    if (!present(e.valueFrom)) return;
    const vf = obj(e.valueFrom);
    const vp = `${p}.valueFrom`;
    let sources = 0;
    if (has(vf, 'fieldRef')) {
      sources++;
      validateObjectFieldSelector(errs, obj(vf.fieldRef), `${vp}.fieldRef`);
    }
    if (has(vf, 'resourceFieldRef')) {
      sources++;
      const r = obj(vf.resourceFieldRef);
      if (!strOf(r.resource)) errs.required(`${vp}.resourceFieldRef.resource`);
      else if (!RESOURCE_FIELD_PATHS.includes(r.resource) && !/^(requests|limits)\.hugepages-/.test(r.resource)) {
        errs.notSupported(`${vp}.resourceFieldRef.resource`, r.resource, RESOURCE_FIELD_PATHS);
      }
    }
    if (has(vf, 'configMapKeyRef')) {
      sources++;
      validateKeySelector(errs, obj(vf.configMapKeyRef), `${vp}.configMapKeyRef`);
    }
    if (has(vf, 'secretKeyRef')) {
      sources++;
      validateKeySelector(errs, obj(vf.secretKeyRef), `${vp}.secretKeyRef`);
    }
    if (sources === 0) errs.invalid(vp, '', 'must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`');
    else if (strOf(e.value)) errs.invalid(vp, '', 'may not be specified when `value` is not empty');
    else if (sources > 1) errs.invalid(vp, '', 'may not have more than one field specified at a time');
  });
}

function validateEnvFrom(errs: ErrorList, envFrom: unknown, path: string): void {
  arr(envFrom).forEach((ef, i) => {
    const p = `${path}[${i}]`;
    const e = obj(ef);
    if (strOf(e.prefix)) errs.each(`${p}.prefix`, e.prefix, envVarNameErrors(e.prefix));
    let sources = 0;
    for (const key of ['configMapRef', 'secretRef']) {
      if (!has(e, key)) continue;
      sources++;
      const name = strOf(e[key].name);
      if (!name) errs.required(`${p}.${key}.name`);
      else errs.each(`${p}.${key}.name`, name, nameIsDNSSubdomain(name, true));
    }
    if (sources === 0) errs.invalid(path, '', 'must specify one of: `configMapRef` or `secretRef`');
    else if (sources > 1) errs.invalid(path, '', 'may not have more than one field specified at a time');
  });
}

function validateVolumeMounts(errs: ErrorList, mounts: unknown, volumes: Map<string, Record<string, any>>, container: Record<string, any>, path: string): void {
  const mountPaths = new Set<string>();
  arr(mounts).forEach((mnt, i) => {
    const p = `${path}[${i}]`;
    const m = obj(mnt);
    const name = strOf(m.name);
    if (!name) errs.required(`${p}.name`);
    if (!volumes.has(name)) errs.notFound(`${p}.name`, name);
    const mountPath = strOf(m.mountPath);
    if (!mountPath) errs.required(`${p}.mountPath`);
    if (mountPaths.has(mountPath)) errs.invalid(`${p}.mountPath`, mountPath, 'must be unique');
    mountPaths.add(mountPath);
    // as upstream: subPath and mountPropagation errors carry the list path, not the item's.
    if (strOf(m.subPath)) localDescendingPath(errs, `${path}.subPath`, m.subPath);
    if (strOf(m.subPathExpr)) {
      if (strOf(m.subPath)) errs.invalid(`${p}.subPathExpr`, m.subPathExpr, 'subPathExpr and subPath are mutually exclusive');
      localDescendingPath(errs, `${path}.subPathExpr`, m.subPathExpr);
    }
    if (present(m.mountPropagation)) {
      const supported = ['Bidirectional', 'HostToContainer', 'None'];
      if (!supported.includes(m.mountPropagation)) errs.notSupported(`${path}.mountPropagation`, m.mountPropagation, supported);
      if (m.mountPropagation === 'Bidirectional' && container.securityContext?.privileged !== true) {
        errs.forbidden(`${path}.mountPropagation`, 'Bidirectional mount propagation is available only to privileged containers');
      }
    }
  });
}

// Resource names (pkg/apis/core/helper): what containers may request.
const STANDARD_CONTAINER_RESOURCES = new Set(['cpu', 'memory', 'ephemeral-storage']);
const STANDARD_RESOURCES = new Set([
  'cpu',
  'memory',
  'ephemeral-storage',
  'requests.cpu',
  'requests.memory',
  'requests.ephemeral-storage',
  'limits.cpu',
  'limits.memory',
  'limits.ephemeral-storage',
  'pods',
  'resourcequotas',
  'services',
  'replicationcontrollers',
  'secrets',
  'persistentvolumeclaims',
  'configmaps',
  'services.nodeports',
  'services.loadbalancers',
  'requests.storage',
  'storage',
]);

const isHugePages = (n: string) => n.startsWith('hugepages-');
const isNativeResource = (n: string) => !n.includes('/') || n.startsWith('kubernetes.io/');
const isExtendedResource = (n: string) => !isNativeResource(n) && !n.startsWith('requests.') && labelKeyErrors(`requests.${n}`).length === 0;
export const isOvercommitAllowed = (n: string) => isNativeResource(n) && !isHugePages(n);

export function validateContainerResourceName(errs: ErrorList, name: string, field: string): void {
  const msgs = labelKeyErrors(name);
  if (msgs.length) return errs.each(field, name, msgs);
  if (!name.includes('/')) {
    if (!STANDARD_RESOURCES.has(name) && !isHugePages(name) && !/^requests\.hugepages-/.test(name)) {
      errs.invalid(field, name, 'must be a standard resource type or fully qualified');
    }
    if (!STANDARD_CONTAINER_RESOURCES.has(name) && !isHugePages(name)) errs.invalid(field, name, 'must be a standard resource for containers');
  } else if (!isNativeResource(name) && !isExtendedResource(name)) {
    errs.invalid(field, name, "doesn't follow extended resource name standard");
  }
}

/** validateResourceName: a standard resource (of any kind, not only a container's) or a qualified name. */
export function validateResourceName(errs: ErrorList, name: string, field: string): void {
  const msgs = labelKeyErrors(name);
  if (msgs.length) return errs.each(field, name, msgs);
  if (!name.includes('/') && !STANDARD_RESOURCES.has(name) && !isHugePages(name) && !/^requests\.hugepages-/.test(name)) {
    errs.invalid(field, name, 'must be a standard resource type or fully qualified');
  }
}

function validateResourceQuantity(errs: ErrorList, name: string, q: ParsedQuantity, field: string): void {
  const text = formatQuantity(q);
  if (q.nanos < 0n) errs.invalid(field, text, 'must be greater than or equal to 0');
  // Extended resources are counted in whole units.
  if (isExtendedResource(name) && q.nanos % 1_000_000_000n !== 0n) errs.invalid(field, text, 'must be an integer');
}

function validateResources(errs: ErrorList, resources: unknown, path: string): void {
  const r = obj(resources);
  const limits = obj(r.limits);
  const requests = obj(r.requests);
  const limPath = `${path}.limits`;
  const reqPath = `${path}.requests`;
  const parsedLimits = new Map<string, ParsedQuantity>();
  for (const [name, value] of Object.entries(limits)) {
    const field = `${limPath}[${name}]`;
    validateContainerResourceName(errs, name, field);
    const q = quantity(value);
    parsedLimits.set(name, q);
    validateResourceQuantity(errs, name, q, field);
  }
  for (const [name, value] of Object.entries(requests)) {
    const field = `${reqPath}[${name}]`;
    validateContainerResourceName(errs, name, field);
    const q = quantity(value);
    validateResourceQuantity(errs, name, q, field);
    const lim = parsedLimits.get(name);
    if (lim) {
      if (q.nanos !== lim.nanos && !isOvercommitAllowed(name)) {
        errs.invalid(reqPath, formatQuantity(q), `must be equal to ${name} limit of ${formatQuantity(lim)}`);
      } else if (q.nanos > lim.nanos) {
        errs.invalid(reqPath, formatQuantity(q), `must be less than or equal to ${name} limit of ${formatQuantity(lim)}`);
      }
    } else if (!isOvercommitAllowed(name)) {
      errs.required(limPath, 'Limit must be set for non overcommitable resources');
    }
  }
  const cpuOrMemory = ['cpu', 'memory'].some((n) => n in limits || n in requests);
  const huge = [...Object.keys(limits), ...Object.keys(requests)].some(isHugePages);
  if (huge && !cpuOrMemory) errs.forbidden(path, 'HugePages require cpu or memory');
}

interface Handlers {
  exec?: unknown;
  httpGet?: unknown;
  tcpSocket?: unknown;
  grpc?: unknown;
  sleep?: unknown;
}

function validateHandler(errs: ErrorList, h: Handlers & Record<string, any>, path: string, allowed: (keyof Handlers)[]): void {
  let n = 0;
  for (const key of allowed) {
    if (!has(h, key)) continue;
    if (n > 0) {
      errs.forbidden(`${path}.${key}`, 'may not specify more than 1 handler type');
      continue;
    }
    n++;
    const a = obj(h[key]);
    const p = `${path}.${key}`;
    switch (key) {
      case 'exec':
        if (arr(a.command).length === 0) errs.required(`${p}.command`);
        break;
      case 'httpGet': {
        if (!strOf(a.path)) errs.required(`${p}.path`);
        validatePortNumOrName(errs, a.port, `${p}.port`);
        if (!['HTTP', 'HTTPS'].includes(a.scheme)) errs.notSupported(`${p}.scheme`, a.scheme ?? '', ['HTTP', 'HTTPS']);
        for (const hd of arr(a.httpHeaders)) {
          const name = strOf(hd?.name);
          if (!/^[-A-Za-z0-9]+$/.test(name)) {
            errs.invalid(`${p}.httpHeaders`, name, regexError("a valid HTTP header must consist of alphanumeric characters or '-'", '[-A-Za-z0-9]+', 'X-Header-Name'));
          }
        }
        break;
      }
      case 'tcpSocket':
        validatePortNumOrName(errs, a.port, `${p}.port`);
        break;
      case 'grpc':
        errs.each(`${p}.port`, a.port ?? 0, portNumErrors(a.port));
        break;
    }
  }
  if (n === 0) errs.required(path, 'must specify a handler type');
}

function validateProbe(errs: ErrorList, probe: unknown, path: string, kind: 'liveness' | 'readiness' | 'startup'): void {
  if (!present(probe)) return;
  const p = obj(probe);
  validateHandler(errs, p, path, ['exec', 'httpGet', 'tcpSocket', 'grpc']);
  for (const f of ['initialDelaySeconds', 'timeoutSeconds', 'periodSeconds', 'successThreshold', 'failureThreshold']) {
    if (typeof p[f] === 'number' && p[f] < 0) errs.invalid(`${path}.${f}`, p[f], 'must be greater than or equal to 0');
  }
  if (present(p.terminationGracePeriodSeconds) && p.terminationGracePeriodSeconds <= 0) {
    errs.invalid(`${path}.terminationGracePeriodSeconds`, p.terminationGracePeriodSeconds, 'must be greater than 0');
  }
  if (kind === 'readiness' && present(p.terminationGracePeriodSeconds)) {
    errs.invalid(`${path}.terminationGracePeriodSeconds`, p.terminationGracePeriodSeconds, 'must not be set for readinessProbes');
  }
  if (kind !== 'readiness' && typeof p.successThreshold === 'number' && p.successThreshold !== 1) {
    errs.invalid(`${path}.successThreshold`, p.successThreshold, 'must be 1');
  }
}

function validateLifecycle(errs: ErrorList, lifecycle: unknown, path: string): void {
  const l = obj(lifecycle);
  for (const hook of ['postStart', 'preStop']) {
    if (has(l, hook)) validateHandler(errs, obj(l[hook]), `${path}.${hook}`, ['exec', 'httpGet', 'tcpSocket', 'sleep']);
  }
}

const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'];

function validateSecurityContextIDs(errs: ErrorList, sc: Record<string, any>, path: string): void {
  for (const f of ['runAsUser', 'runAsGroup', 'fsGroup']) {
    const v = sc[f];
    if (typeof v === 'number' && (v < 0 || v > 4294967295)) errs.invalid(`${path}.${f}`, v, inclusiveRangeError(0, 4294967295));
  }
}

function validateContainerCommon(errs: ErrorList, c: Record<string, any>, volumes: Map<string, Record<string, any>>, path: string): void {
  const name = strOf(c.name);
  if (!name) errs.required(`${path}.name`);
  else errs.each(`${path}.name`, name, dns1123LabelErrors(name));
  if (!strOf(c.image)) errs.required(`${path}.image`);
  const tmp = c.terminationMessagePolicy;
  if (!strOf(tmp)) errs.required(`${path}.terminationMessagePolicy`);
  else if (tmp !== 'File' && tmp !== 'FallbackToLogsOnError') errs.notSupported(`${path}.terminationMessagePolicy`, tmp, ['File', 'FallbackToLogsOnError']);
  validateContainerPorts(errs, c.ports, `${path}.ports`);
  validateEnv(errs, c.env, `${path}.env`);
  validateEnvFrom(errs, c.envFrom, `${path}.envFrom`);
  validateVolumeMounts(errs, c.volumeMounts, volumes, c, `${path}.volumeMounts`);
  if (!strOf(c.imagePullPolicy)) errs.required(`${path}.imagePullPolicy`);
  else if (!PULL_POLICIES.includes(c.imagePullPolicy)) errs.notSupported(`${path}.imagePullPolicy`, c.imagePullPolicy, PULL_POLICIES);
  validateResources(errs, c.resources, `${path}.resources`);
  if (isObject(c.securityContext)) {
    const sc = c.securityContext;
    validateSecurityContextIDs(errs, sc, `${path}.securityContext`);
    if (sc.allowPrivilegeEscalation === false && sc.privileged === true) {
      errs.invalid(`${path}.securityContext`, sc, 'cannot set `allowPrivilegeEscalation` to false and `privileged` to true');
    }
  }
}

/** Host ports must not collide: "protocol/hostIP/port" is the key. */
function checkHostPortConflicts(errs: ErrorList, containers: any[], path: string, seen = new Set<string>()): void {
  containers.forEach((c, ci) => {
    arr(c?.ports).forEach((pt, pi) => {
      if (!pt?.hostPort) return;
      const key = `${strOf(pt.protocol)}/${strOf(pt.hostIP)}/${pt.hostPort}`;
      if (seen.has(key)) errs.duplicate(`${path}[${ci}].ports[${pi}].hostPort`, key);
      else seen.add(key);
    });
  });
}

function validateContainers(errs: ErrorList, containers: unknown, volumes: Map<string, Record<string, any>>, path: string): void {
  const list = arr(containers);
  if (list.length === 0) return errs.required(path);
  const names = new Set<string>();
  list.forEach((ctr, i) => {
    const c = obj(ctr);
    const p = `${path}[${i}]`;
    validateContainerCommon(errs, c, volumes, p);
    const name = strOf(c.name);
    if (names.has(name)) errs.duplicate(`${p}.name`, name);
    else names.add(name);
    if (present(c.lifecycle)) validateLifecycle(errs, c.lifecycle, `${p}.lifecycle`);
    validateProbe(errs, c.livenessProbe, `${p}.livenessProbe`, 'liveness');
    validateProbe(errs, c.readinessProbe, `${p}.readinessProbe`, 'readiness');
    validateProbe(errs, c.startupProbe, `${p}.startupProbe`, 'startup');
    if (present(c.restartPolicy)) errs.forbidden(`${p}.restartPolicy`, 'may not be set for non-init containers');
  });
  checkHostPortConflicts(errs, list, path);
}

function validateInitContainers(errs: ErrorList, inits: unknown, regular: unknown, volumes: Map<string, Record<string, any>>, path: string): void {
  const names = new Set(arr(regular).map((c) => strOf(c?.name)));
  arr(inits).forEach((ctr, i) => {
    const c = obj(ctr);
    const p = `${path}[${i}]`;
    validateContainerCommon(errs, c, volumes, p);
    let restartAlways = false;
    if (present(c.restartPolicy)) {
      if (c.restartPolicy !== 'Always') errs.notSupported(`${p}.restartPolicy`, c.restartPolicy, ['Always']);
      restartAlways = c.restartPolicy === 'Always';
    }
    const name = strOf(c.name);
    if (names.has(name)) errs.duplicate(`${p}.name`, name);
    else if (name) names.add(name);
    // Init containers run one by one, so only ports within one of them can collide.
    checkHostPortConflicts(errs, [c], path);
    if (restartAlways) {
      if (present(c.lifecycle)) validateLifecycle(errs, c.lifecycle, `${p}.lifecycle`);
      validateProbe(errs, c.livenessProbe, `${p}.livenessProbe`, 'liveness');
      validateProbe(errs, c.readinessProbe, `${p}.readinessProbe`, 'readiness');
      validateProbe(errs, c.startupProbe, `${p}.startupProbe`, 'startup');
    } else {
      for (const f of ['lifecycle', 'livenessProbe', 'readinessProbe', 'startupProbe']) {
        if (present(c[f])) errs.forbidden(`${p}.${f}`, 'may not be set for init containers without restartPolicy=Always');
      }
    }
  });
}

const RESTART_POLICIES = ['Always', 'OnFailure', 'Never'];
const DNS_POLICIES = ['ClusterFirstWithHostNet', 'ClusterFirst', 'Default', 'None'];

function validateTolerations(errs: ErrorList, tolerations: unknown, path: string): void {
  arr(tolerations).forEach((tol, i) => {
    const t = obj(tol);
    const p = `${path}[${i}]`;
    const key = strOf(t.key);
    if (key) errs.each(`${p}.key`, key, labelKeyErrors(key));
    const op = strOf(t.operator);
    if (!key && op !== 'Exists') errs.invalid(`${p}.operator`, op, 'operator must be Exists when `key` is empty, which means "match all values and all keys"');
    if (present(t.tolerationSeconds) && t.effect !== 'NoExecute') errs.invalid(`${p}.effect`, strOf(t.effect), "effect must be 'NoExecute' when `tolerationSeconds` is set");
    if (op === 'Equal' || op === '') {
      const msgs = labelValueErrors(strOf(t.value));
      if (msgs.length) errs.invalid(`${p}.operator`, strOf(t.value), msgs.join(';'));
    } else if (op === 'Exists') {
      if (strOf(t.value)) errs.invalid(`${p}.operator`, t.value, "value must be empty when `operator` is 'Exists'");
    } else {
      errs.notSupported(`${p}.operator`, op, ['Equal', 'Exists']);
    }
    if (strOf(t.effect) && !TAINT_EFFECTS.includes(t.effect)) errs.notSupported(`${p}.effect`, t.effect, TAINT_EFFECTS);
  });
}

function validateDNSConfig(errs: ErrorList, dnsConfig: unknown, dnsPolicy: unknown, path: string): void {
  if (dnsPolicy === 'None') {
    if (!present(dnsConfig)) return errs.required(path, 'must provide `dnsConfig` when `dnsPolicy` is None');
    if (arr(obj(dnsConfig).nameservers).length === 0) return errs.required(`${path}.nameservers`, 'must provide at least one DNS nameserver when `dnsPolicy` is None');
  }
  if (!present(dnsConfig)) return;
  const c = obj(dnsConfig);
  const ns = arr(c.nameservers);
  if (ns.length > 3) errs.invalid(`${path}.nameservers`, ns, 'must not have more than 3 nameservers');
  ns.forEach((n, i) => ipErrors(errs, `${path}.nameservers[${i}]`, n));
  const searches = arr(c.searches).map(strOf);
  if (searches.length > 32) errs.invalid(`${path}.searches`, searches, 'must not have more than 32 search paths');
  if (searches.join(' ').length > 2048) errs.invalid(`${path}.searches`, searches, 'must not have more than 2048 characters (including spaces) in the search list');
  searches.forEach((s, i) => {
    const trimmed = s.replace(/\.$/, '');
    errs.each(`${path}.searches[${i}]`, trimmed, dns1123SubdomainErrors(trimmed));
  });
  arr(c.options).forEach((o, i) => {
    if (!strOf(o?.name)) errs.required(`${path}.options[${i}]`, 'must not be empty');
  });
}

export interface PodSpecOptions {
  /** Pods (not templates) also refuse images with surrounding whitespace. */
  isPod: boolean;
}

// Scheduling constraints (core/validation: validateAffinity, validateTopologySpreadConstraints). The
// scheduler acts on these, so their numbers are held to Kubernetes' ranges: weights 1-100, maxSkew and
// minDomains positive.

function validateNodeSelectorTerm(errs: ErrorList, term: unknown, path: string): void {
  const t = obj(term);
  arr(t.matchExpressions).forEach((r, i) => {
    const p = `${path}.matchExpressions[${i}]`;
    const values = arr(r?.values);
    switch (r?.operator) {
      case 'In':
      case 'NotIn':
        if (!values.length) errs.required(`${p}.values`, "must be specified when `operator` is 'In' or 'NotIn'");
        break;
      case 'Exists':
      case 'DoesNotExist':
        if (values.length) errs.forbidden(`${p}.values`, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
        break;
      case 'Gt':
      case 'Lt':
        if (values.length !== 1) errs.required(`${p}.values`, "must be specified single value when `operator` is 'Lt' or 'Gt'");
        break;
      default:
        errs.invalid(`${p}.operator`, r?.operator, 'not a valid selector operator');
    }
    const key = strOf(r?.key);
    errs.each(`${p}.key`, key, labelKeyErrors(key));
  });
  arr(t.matchFields).forEach((r, i) => {
    const p = `${path}.matchFields[${i}]`;
    if (r?.key !== 'metadata.name') errs.invalid(`${p}.key`, r?.key, 'not a valid field selector key');
    if (r?.operator !== 'In' && r?.operator !== 'NotIn') errs.invalid(`${p}.operator`, r?.operator, 'not a valid selector operator');
    else if (arr(r?.values).length !== 1) errs.required(`${p}.values`, 'must be only one value when `operator` is \'In\' or \'NotIn\' for node field selector');
  });
}

function validateWeight(errs: ErrorList, w: unknown, path: string): void {
  if (typeof w !== 'number' || w <= 0 || w > 100) errs.invalid(path, w ?? 0, 'must be in the range 1-100');
}

function validatePodAffinityTerms(errs: ErrorList, pa: Record<string, any>, path: string): void {
  const term = (t: unknown, p: string) => {
    const key = strOf(obj(t).topologyKey);
    if (!key) errs.required(`${p}.topologyKey`, 'can not be empty');
    else errs.each(`${p}.topologyKey`, key, labelKeyErrors(key));
  };
  arr(pa.requiredDuringSchedulingIgnoredDuringExecution).forEach((t, i) => term(t, `${path}.requiredDuringSchedulingIgnoredDuringExecution[${i}]`));
  arr(pa.preferredDuringSchedulingIgnoredDuringExecution).forEach((t, i) => {
    const p = `${path}.preferredDuringSchedulingIgnoredDuringExecution[${i}]`;
    validateWeight(errs, t?.weight, `${p}.weight`);
    term(t?.podAffinityTerm, `${p}.podAffinityTerm`);
  });
}

function validateAffinity(errs: ErrorList, a: Record<string, any>, path: string): void {
  const na = obj(a.nodeAffinity);
  const required = na.requiredDuringSchedulingIgnoredDuringExecution;
  if (isObject(required)) {
    const p = `${path}.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms`;
    const terms = arr(required.nodeSelectorTerms);
    if (!terms.length) errs.required(p, 'must have at least one node selector term');
    terms.forEach((t, i) => validateNodeSelectorTerm(errs, t, `${p}[${i}]`));
  }
  arr(na.preferredDuringSchedulingIgnoredDuringExecution).forEach((t, i) => {
    const p = `${path}.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[${i}]`;
    validateWeight(errs, t?.weight, `${p}.weight`);
    validateNodeSelectorTerm(errs, t?.preference, `${p}.preference`);
  });
  if (isObject(a.podAffinity)) validatePodAffinityTerms(errs, a.podAffinity, `${path}.podAffinity`);
  if (isObject(a.podAntiAffinity)) validatePodAffinityTerms(errs, a.podAntiAffinity, `${path}.podAntiAffinity`);
}

const SCHEDULE_ACTIONS = ['DoNotSchedule', 'ScheduleAnyway'];

function validateTopologySpreadConstraints(errs: ErrorList, list: unknown, path: string): void {
  const seen = new Set<string>();
  arr(list).forEach((c, i) => {
    const p = `${path}[${i}]`;
    const skew = c?.maxSkew ?? 0;
    if (typeof skew !== 'number' || skew <= 0) errs.invalid(`${p}.maxSkew`, skew, 'must be greater than zero');
    const key = strOf(c?.topologyKey);
    if (!key) errs.required(`${p}.topologyKey`, 'can not be empty');
    else errs.each(`${p}.topologyKey`, key, labelKeyErrors(key));
    const action = strOf(c?.whenUnsatisfiable);
    if (!SCHEDULE_ACTIONS.includes(action)) errs.notSupported(`${p}.whenUnsatisfiable`, action, SCHEDULE_ACTIONS);
    const pair = `{${key}, ${action}}`;
    if (seen.has(pair)) errs.duplicate(`${p}.{topologyKey, whenUnsatisfiable}`, pair);
    seen.add(pair);
    if (present(c?.minDomains)) {
      if (c.minDomains <= 0) errs.invalid(`${p}.minDomains`, c.minDomains, 'must be greater than zero');
      if (action !== 'DoNotSchedule') errs.invalid(`${p}.minDomains`, c.minDomains, `can only use minDomains if whenUnsatisfiable=DoNotSchedule, not ${action}`);
    }
  });
}

export function validatePodSpec(errs: ErrorList, spec: Record<string, any>, path: string, opts: PodSpecOptions): void {
  if (!present(spec.terminationGracePeriodSeconds)) errs.required(`${path}.terminationGracePeriodSeconds`);
  const volumes = validateVolumes(errs, spec.volumes, `${path}.volumes`);
  validateContainers(errs, spec.containers, volumes, `${path}.containers`);
  validateInitContainers(errs, spec.initContainers, spec.containers, volumes, `${path}.initContainers`);
  const sc = obj(spec.securityContext);
  if (spec.hostNetwork === true || sc.hostNetwork === true) {
    arr(spec.containers).forEach((c, ci) =>
      arr(c?.ports).forEach((pt, pi) => {
        const hp = pt?.hostPort ?? 0;
        if ((opts.isPod || hp !== 0) && hp !== pt?.containerPort) {
          errs.invalid(`${path}.containers[${ci}].ports[${pi}].hostPort`, hp, 'must match `containerPort` when `hostNetwork` is true');
        }
      }),
    );
  }
  const rp = spec.restartPolicy;
  if (!strOf(rp)) errs.required(`${path}.restartPolicy`);
  else if (!RESTART_POLICIES.includes(rp)) errs.notSupported(`${path}.restartPolicy`, rp, RESTART_POLICIES);
  const dp = spec.dnsPolicy;
  if (!strOf(dp)) errs.required(`${path}.dnsPolicy`);
  else if (!DNS_POLICIES.includes(dp)) errs.notSupported(`${path}.dnsPolicy`, dp, DNS_POLICIES);
  validateLabels(errs, spec.nodeSelector, `${path}.nodeSelector`);
  validateSecurityContextIDs(errs, sc, `${path}.securityContext`);
  arr(sc.supplementalGroups).forEach((g, i) => {
    if (typeof g === 'number' && (g < 0 || g > 4294967295)) errs.invalid(`${path}.securityContext.supplementalGroups[${i}]`, g, inclusiveRangeError(0, 4294967295));
  });
  validateDNSConfig(errs, spec.dnsConfig, dp, `${path}.dnsConfig`);
  arr(spec.readinessGates).forEach((g, i) => {
    const t = strOf(g?.conditionType);
    errs.each(`${path}.readinessGates[${i}].conditionType`, t, labelKeyErrors(t));
  });
  const gates = new Set<string>();
  arr(spec.schedulingGates).forEach((g, i) => {
    const n = strOf(g?.name);
    errs.each(`${path}.schedulingGates[${i}]`, n, labelKeyErrors(n));
    if (gates.has(n)) errs.duplicate(`${path}.schedulingGates[${i}]`, n);
    gates.add(n);
  });
  if (strOf(spec.serviceAccountName)) errs.each(`${path}.serviceAccountName`, spec.serviceAccountName, nameIsDNSSubdomain(spec.serviceAccountName, false));
  if (strOf(spec.nodeName)) errs.each(`${path}.nodeName`, spec.nodeName, nameIsDNSSubdomain(spec.nodeName, false));
  if (present(spec.activeDeadlineSeconds)) {
    const v = spec.activeDeadlineSeconds;
    if (typeof v !== 'number' || v < 1 || v > 2147483647) errs.invalid(`${path}.activeDeadlineSeconds`, v, inclusiveRangeError(1, 2147483647));
  }
  if (strOf(spec.hostname)) errs.each(`${path}.hostname`, spec.hostname, dns1123LabelErrors(spec.hostname));
  if (strOf(spec.subdomain)) errs.each(`${path}.subdomain`, spec.subdomain, dns1123LabelErrors(spec.subdomain));
  validateTolerations(errs, spec.tolerations, `${path}.tolerations`);
  if (isObject(spec.affinity)) validateAffinity(errs, spec.affinity, `${path}.affinity`);
  validateTopologySpreadConstraints(errs, spec.topologySpreadConstraints, `${path}.topologySpreadConstraints`);
  arr(spec.hostAliases).forEach((ha, i) => {
    ipErrors(errs, `${path}.hostAliases[${i}].ip`, ha?.ip);
    arr(ha?.hostnames).forEach((h, j) => errs.each(`${path}.hostAliases[${i}].hostnames[${j}]`, strOf(h), dns1123SubdomainErrors(strOf(h))));
  });
  if (strOf(spec.priorityClassName)) errs.each(`${path}.priorityClassName`, spec.priorityClassName, nameIsDNSSubdomain(spec.priorityClassName, false));
  if (present(spec.preemptionPolicy) && !['PreemptLowerPriority', 'Never'].includes(spec.preemptionPolicy)) {
    errs.notSupported(`${path}.preemptionPolicy`, spec.preemptionPolicy, ['PreemptLowerPriority', 'Never']);
  }
  if (opts.isPod) {
    for (const list of ['containers', 'initContainers']) {
      arr(spec[list]).forEach((c, i) => {
        const image = strOf(c?.image);
        if (image.length !== image.trim().length) errs.invalid(`${path}.${list}[${i}].image`, image, 'must not have leading or trailing whitespace');
      });
    }
  }
}

export function validatePodTemplateSpec(errs: ErrorList, template: Record<string, any>, path: string): void {
  const meta = obj(template.metadata);
  // as upstream: template labels are reported at <template>.labels, without "metadata".
  validateLabels(errs, meta.labels, `${path}.labels`);
  validateAnnotations(errs, meta.annotations, `${path}.annotations`);
  validatePodSpec(errs, obj(template.spec), `${path}.spec`, { isPod: false });
  if (arr(template.spec?.ephemeralContainers).length) errs.forbidden(`${path}.spec.ephemeralContainers`, 'ephemeral containers not allowed in pod template');
}
