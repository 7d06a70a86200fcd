// Pod volumes on the node's filesystem, and the Docker binds that mount them into containers: the parts
// of kubelet's volume manager a Docker node needs. Every pod's volumes live under its directory,
// <podDir>/volumes/<type>/<name>; hostPath volumes are the host path itself.
//
// ConfigMap, Secret, downwardAPI and projected volumes are written as kubelet's AtomicWriter
// (pkg/volume/util/atomic_writer.go) writes them: the files go into a fresh timestamped directory
// `..2026_11_28_19_00_00.NNN`, the symlink `..data` is swapped to it with one rename, and each visible
// top-level name is a symlink into `..data`. A running container (bind-mounted the volume directory)
// therefore sees a whole new version or the old one, never half of each. Rewriting happens only when
// the content or modes differ, so calling prepareVolumes on every sync of a pod changes nothing else.

import fs from 'node:fs';
import path from 'node:path';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { ApiError } from '../lambdas/machinery/status.ts';
import { isLocalPathVolumeOf, LOCAL_PATH_FINALIZER } from '../lambdas/controllers/local-path.ts';
import { expand, fieldRefValue, resourceFieldValue } from './env.ts';
import type { KubeClient } from './kube-client.ts';
import type { TokenManager } from './token-manager.ts';

export interface VolumeObjects {
  configMaps: Map<string, KubeObject>;
  secrets: Map<string, KubeObject>;
  /** The PersistentVolume each bound claim the pod names is bound to, by claim name (claimVolumes). */
  claims?: Map<string, KubeObject>;
  /** The projected serviceAccountToken sources' tokens, by tokenKey(volume, path) (serviceAccountTokens). */
  tokens?: Map<string, string>;
}

/** File projections: relative path → content and mode. */
type Payload = Map<string, { data: Buffer; mode: number }>;

/** The API's default file mode of configMap, secret, downwardAPI and projected volumes (0644). */
const DEFAULT_MODE = 0o644;
const SUPPORTED = 'emptyDir, configMap, secret, downwardAPI, projected, hostPath, persistentVolumeClaim';

/**
 * Creates (or refreshes) every volume of the pod under podDir and returns volume name → host path.
 * Throws an Error naming the volume when one cannot be set up (missing required ConfigMap/Secret/key,
 * hostPath type mismatch, unsupported volume type); the worker reports it and retries.
 */
export function prepareVolumes(pod: KubeObject, podDir: string, objects: VolumeObjects): Map<string, string> {
  const out = new Map<string, string>();
  const root = path.resolve(podDir, 'volumes');
  for (const v of pod.spec?.volumes ?? []) {
    const name: string = v.name;
    try {
      out.set(name, prepareOne(pod, v, root, objects));
    } catch (e) {
      throw new Error(`volume "${name}": ${(e as Error).message}`);
    }
  }
  return out;
}

function prepareOne(pod: KubeObject, v: Record<string, any>, root: string, objects: VolumeObjects): string {
  const name: string = v.name;
  if (v.emptyDir) {
    // medium: Memory would be a tmpfs in kubelet; here it is a plain directory on the node's disk (the
    // agent does not mount filesystems), and sizeLimit is not enforced.
    const dir = path.join(root, 'empty-dir', name);
    if (!fs.existsSync(dir)) {
      fs.mkdirSync(dir, { recursive: true });
      fs.chmodSync(dir, 0o777); // as kubelet: any container user may write to an emptyDir
    }
    return dir;
  }
  if (v.hostPath) return hostPath(v.hostPath.path, v.hostPath.type ?? '');
  if (v.persistentVolumeClaim) return claimVolume(v.persistentVolumeClaim.claimName, objects);
  if (v.configMap) {
    const dir = path.join(root, 'configmap', name);
    writeAtomic(dir, configMapPayload(v.configMap, objects, v.configMap.defaultMode ?? DEFAULT_MODE));
    return dir;
  }
  if (v.secret) {
    const dir = path.join(root, 'secret', name);
    writeAtomic(dir, secretPayload(v.secret, v.secret.secretName, objects, v.secret.defaultMode ?? DEFAULT_MODE));
    return dir;
  }
  if (v.downwardAPI) {
    const dir = path.join(root, 'downward-api', name);
    writeAtomic(dir, downwardPayload(pod, v.downwardAPI.items ?? [], v.downwardAPI.defaultMode ?? DEFAULT_MODE));
    return dir;
  }
  if (v.projected) {
    const dir = path.join(root, 'projected', name);
    const mode = v.projected.defaultMode ?? DEFAULT_MODE;
    const payload: Payload = new Map();
    for (const src of v.projected.sources ?? []) {
      let part: Payload;
      if (src.configMap) part = configMapPayload(src.configMap, objects, mode);
      else if (src.secret) part = secretPayload(src.secret, src.secret.name, objects, mode);
      else if (src.downwardAPI) part = downwardPayload(pod, src.downwardAPI.items ?? [], mode);
      else if (src.serviceAccountToken) part = tokenPayload(name, src.serviceAccountToken, objects, mode);
      else throw new Error(`projected source ${Object.keys(src).join(', ')} is not supported by Skiff's node agent (it supports configMap, secret, downwardAPI, serviceAccountToken)`);
      for (const [p, f] of part) payload.set(p, f);
    }
    writeAtomic(dir, payload);
    return dir;
  }
  const kind = Object.keys(v).filter((k) => k !== 'name').join(', ') || 'none';
  throw new Error(`volume type ${kind} is not supported by Skiff's node agent (it supports ${SUPPORTED})`);
}

// ---------------------------------------------------------------------------------------------------
// Payloads (kubelet's configmap.MakePayload, secret.MakePayload, downwardapi.CollectData)

function configMapPayload(src: Record<string, any>, objects: VolumeObjects, defaultMode: number): Payload {
  const cm = objects.configMaps.get(src.name);
  const payload: Payload = new Map();
  if (!cm) {
    if (src.optional) return payload; // an optional, missing ConfigMap is an empty volume
    throw new Error(`configmap "${src.name}" not found`);
  }
  const lookup = (key: string): Buffer | undefined =>
    cm.data?.[key] !== undefined ? Buffer.from(cm.data[key], 'utf8') : cm.binaryData?.[key] !== undefined ? Buffer.from(cm.binaryData[key], 'base64') : undefined;
  if (!src.items?.length) {
    for (const k of [...Object.keys(cm.data ?? {}), ...Object.keys(cm.binaryData ?? {})]) payload.set(k, { data: lookup(k)!, mode: defaultMode });
    return payload;
  }
  for (const item of src.items) {
    const data = lookup(item.key);
    if (!data) {
      if (src.optional) continue;
      throw new Error(`configmap references non-existent config key: ${item.key}`);
    }
    payload.set(item.path, { data, mode: item.mode ?? defaultMode });
  }
  return payload;
}

function secretPayload(src: Record<string, any>, name: string, objects: VolumeObjects, defaultMode: number): Payload {
  const s = objects.secrets.get(name);
  const payload: Payload = new Map();
  if (!s) {
    if (src.optional) return payload;
    throw new Error(`secret "${name}" not found`);
  }
  const data: Record<string, string> = s.data ?? {};
  if (!src.items?.length) {
    for (const [k, v] of Object.entries(data)) payload.set(k, { data: Buffer.from(v, 'base64'), mode: defaultMode });
    return payload;
  }
  for (const item of src.items) {
    if (data[item.key] === undefined) {
      if (src.optional) continue;
      throw new Error(`references non-existent secret key: ${item.key}`);
    }
    payload.set(item.path, { data: Buffer.from(data[item.key]!, 'base64'), mode: item.mode ?? defaultMode });
  }
  return payload;
}

function downwardPayload(pod: KubeObject, items: Record<string, any>[], defaultMode: number): Payload {
  const payload: Payload = new Map();
  for (const item of items) {
    let value: string;
    if (item.fieldRef) value = fieldRefValue(pod, item.fieldRef.fieldPath, item.fieldRef.apiVersion ?? 'v1');
    else if (item.resourceFieldRef) value = resourceFieldValue(pod, {}, item.resourceFieldRef);
    else continue;
    payload.set(item.path, { data: Buffer.from(value, 'utf8'), mode: item.mode ?? defaultMode });
  }
  return payload;
}

/** Where a projected volume's token lives in VolumeObjects.tokens. */
function tokenKey(volume: string, path: string): string {
  return `${volume}/${path}`;
}

/** kubelet's projected serviceAccountToken: the token, written with the other files of the volume. */
function tokenPayload(volume: string, src: Record<string, any>, objects: VolumeObjects, mode: number): Payload {
  const token = objects.tokens?.get(tokenKey(volume, src.path));
  if (token === undefined) throw new Error(`no token for service account token source ${JSON.stringify(src.path)}`);
  return new Map([[src.path, { data: Buffer.from(token, 'utf8'), mode }]]);
}

/**
 * The tokens of the pod's projected serviceAccountToken sources, from the token manager (cached, a
 * TokenRequest only when one is new or due for refresh: token-manager.ts). Throws when one cannot be had.
 */
export async function serviceAccountTokens(tm: TokenManager, pod: KubeObject): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const v of pod.spec?.volumes ?? []) {
    for (const src of v?.projected?.sources ?? []) {
      const t = src?.serviceAccountToken;
      if (!t) continue;
      try {
        out.set(tokenKey(v.name, t.path), await tm.token(pod, { audience: t.audience, expirationSeconds: t.expirationSeconds, path: t.path }));
      } catch (e) {
        throw new Error(`volume "${v.name}": ${(e as Error).message}`); // as prepareVolumes names it
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// The atomic writer

const DATA = '..data';

/** AtomicWriter's validatePath: relative, no '..' element, not starting with '..'. */
function checkPayloadPath(p: string): void {
  if (p === '' || path.isAbsolute(p) || p.split('/').includes('..') || p.startsWith('..')) {
    throw new Error(`invalid path ${JSON.stringify(p)}: must be relative and may not contain '..'`);
  }
}

/** Every file under dir, as relative path → absolute path. */
function filesUnder(dir: string, rel = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) for (const [k, v] of filesUnder(dir, r)) out.set(k, v);
    else out.set(r, path.join(dir, r));
  }
  return out;
}

/** Whether the version dir holds exactly the payload (same files, bytes and modes). */
function sameContent(versionDir: string, payload: Payload): boolean {
  let files: Map<string, string>;
  try {
    files = filesUnder(versionDir);
  } catch {
    return false;
  }
  if (files.size !== payload.size) return false;
  for (const [rel, f] of payload) {
    const abs = files.get(path.posix.normalize(rel));
    if (!abs) return false;
    if ((fs.statSync(abs).mode & 0o7777) !== f.mode) return false;
    if (!fs.readFileSync(abs).equals(f.data)) return false;
  }
  return true;
}

function timestampName(): string {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, '0');
  return `..${d.getUTCFullYear()}_${p(d.getUTCMonth() + 1)}_${p(d.getUTCDate())}_${p(d.getUTCHours())}_${p(d.getUTCMinutes())}_${p(d.getUTCSeconds())}.`;
}

function topLevel(p: string): string {
  return path.posix.normalize(p).split('/')[0]!;
}

/** Writes the payload into dir as kubelet's AtomicWriter does; does nothing if dir already holds it. */
function writeAtomic(dir: string, payload: Payload): void {
  for (const p of payload.keys()) checkPayloadPath(p);
  fs.mkdirSync(dir, { recursive: true });
  const dataLink = path.join(dir, DATA);
  let oldVersion: string | undefined;
  try {
    oldVersion = fs.readlinkSync(dataLink);
  } catch {
    oldVersion = undefined;
  }
  const oldFiles = oldVersion ? [...filesUnder(path.join(dir, oldVersion)).keys()] : [];
  if (oldVersion && sameContent(path.join(dir, oldVersion), payload)) return;

  // 1. The new version, complete, in its own directory.
  const version = fs.mkdtempSync(path.join(dir, timestampName()));
  fs.chmodSync(version, 0o755);
  for (const [rel, f] of payload) {
    const file = path.join(version, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
    fs.writeFileSync(file, f.data);
    fs.chmodSync(file, f.mode); // explicit: writeFileSync's mode is subject to the umask
  }
  // 2. The swap: a temporary symlink renamed over ..data (rename is atomic).
  const tmp = path.join(dir, '..data_tmp');
  fs.rmSync(tmp, { force: true });
  fs.symlinkSync(path.basename(version), tmp);
  fs.renameSync(tmp, dataLink);
  // 3. Visible names: one symlink per top-level entry into ..data; names the new version lacks go.
  const wanted = new Set([...payload.keys()].map(topLevel));
  for (const name of wanted) {
    const link = path.join(dir, name);
    if (!fs.existsSync(link)) {
      fs.rmSync(link, { force: true }); // a dangling link left by an interrupted run
      fs.symlinkSync(path.join(DATA, name), link);
    }
  }
  for (const name of new Set(oldFiles.map(topLevel))) {
    if (!wanted.has(name)) fs.rmSync(path.join(dir, name), { force: true });
  }
  // 4. Old versions (normally one) go once nothing points at them.
  for (const e of fs.readdirSync(dir)) {
    if (e.startsWith('..') && e !== DATA && e !== path.basename(version)) fs.rmSync(path.join(dir, e), { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------
// hostPath (pkg/volume/hostpath: checkType)

function hostPath(p: string, type: string): string {
  if (typeof p !== 'string' || !path.isAbsolute(p)) throw new Error(`hostPath path ${JSON.stringify(p)} must be absolute`);
  const stat = () => {
    try {
      return fs.statSync(p);
    } catch {
      return undefined;
    }
  };
  const fail = (what: string) => new Error(`hostPath type check failed: ${p} is not ${what}`);
  switch (type) {
    case '':
      return p; // no check, as Kubernetes
    case 'DirectoryOrCreate':
      if (!stat()) {
        fs.mkdirSync(p, { recursive: true });
        fs.chmodSync(p, 0o755);
      }
      if (!stat()!.isDirectory()) throw fail('a directory');
      return p;
    case 'Directory':
      if (!stat()?.isDirectory()) throw fail('a directory');
      return p;
    case 'FileOrCreate':
      // As Kubernetes: the file is created, its parent directory is not.
      if (!stat()) {
        fs.writeFileSync(p, '', { flag: 'a' });
        fs.chmodSync(p, 0o644);
      }
      if (!stat()!.isFile()) throw fail('a file');
      return p;
    case 'File':
      if (!stat()?.isFile()) throw fail('a file');
      return p;
    case 'Socket':
      if (!stat()?.isSocket()) throw fail('a socket');
      return p;
    case 'CharDevice':
      if (!stat()?.isCharacterDevice()) throw fail('a character device');
      return p;
    case 'BlockDevice':
      if (!stat()?.isBlockDevice()) throw fail('a block device');
      return p;
  }
  throw new Error(`hostPath type ${JSON.stringify(type)} is not valid`);
}

// ---------------------------------------------------------------------------------------------------
// persistentVolumeClaim: the bound volume's directory on this node

/**
 * The claims the pod names and the volumes they are bound to (kubelet's volume manager reads the claim,
 * then its volume). A claim not yet bound is simply missing: its volume's set-up fails and is retried.
 */
export async function claimVolumes(kube: KubeClient, pod: KubeObject): Promise<Map<string, KubeObject>> {
  const ns = encodeURIComponent(pod.metadata.namespace!);
  const names = new Set<string>((pod.spec?.volumes ?? []).map((v: any) => v?.persistentVolumeClaim?.claimName).filter((n: unknown) => typeof n === 'string' && n));
  const out = new Map<string, KubeObject>();
  await Promise.all(
    [...names].map(async (name) => {
      const claim = await kube.getOptional(`/api/v1/namespaces/${ns}/persistentvolumeclaims/${encodeURIComponent(name)}`);
      const volumeName = claim?.spec?.volumeName;
      if (!volumeName || claim.status?.phase !== 'Bound') return;
      const pv = await kube.getOptional(`/api/v1/persistentvolumes/${encodeURIComponent(volumeName)}`);
      if (pv && pv.spec?.claimRef?.uid === claim.metadata.uid) out.set(name, pv);
    }),
  );
  return out;
}

/**
 * A claim's volume: its hostPath or local directory. A local-path volume's directory is made on first
 * use, writable by any container user (0777, as rancher's provisioner makes it).
 */
function claimVolume(claimName: string, objects: VolumeObjects): string {
  const pv = objects.claims?.get(claimName);
  if (!pv) throw new Error(`PersistentVolumeClaim is not bound: ${JSON.stringify(claimName)}`);
  const spec = pv.spec ?? {};
  if (spec.hostPath) {
    if (pv.metadata.annotations?.['pv.kubernetes.io/provisioned-by'] === 'rancher.io/local-path' && !fs.existsSync(spec.hostPath.path)) {
      fs.mkdirSync(spec.hostPath.path, { recursive: true });
      fs.chmodSync(spec.hostPath.path, 0o777);
    }
    return hostPath(spec.hostPath.path, spec.hostPath.type ?? '');
  }
  // A local volume's directory must exist (it is the administrator's disk).
  if (spec.local) return hostPath(spec.local.path, 'Directory');
  const kind = Object.keys(spec).find((k) => !['capacity', 'accessModes', 'claimRef', 'persistentVolumeReclaimPolicy', 'storageClassName', 'volumeMode', 'nodeAffinity', 'mountOptions'].includes(k));
  throw new Error(`persistent volume ${pv.metadata.name} of type ${kind ?? 'none'} is not supported by Skiff's node agent (it supports hostPath and local)`);
}

/**
 * The node's half of the local-path provisioner: removes the directories of this node's local-path
 * volumes that are being deleted and no longer bound, then drops their LOCAL_PATH_FINALIZER so the
 * objects go; and directories whose volume is gone altogether (its finalizer removed by hand). It is
 * driven by what is on disk: a node with no local-path directory asks nothing, and one with some reads
 * each directory's volume once a period (one get per directory: the poll period of an agent that polls, else `everyMs`), so a
 * deployed cluster's idle nodes pay no request for it. A volume's directory is only ever made after its
 * object was read (claimVolumes), so a directory listed before the volumes were is never taken for an
 * orphan of a volume just made.
 */
export function startLocalPathCleaner(o: { kube: KubeClient; nodeName: string; dir: string; log: (m: string) => void; everyMs?: number }): { stop(): Promise<void> } {
  const root = path.resolve(o.dir);
  let stopped = false;
  let running: Promise<void> | undefined;
  const removeDir = (name: string) => fs.rmSync(path.join(root, name), { recursive: true, force: true });
  const tick = async (): Promise<void> => {
    let names: string[];
    try {
      names = fs.readdirSync(root);
    } catch {
      return; // no local-path volume was ever mounted here
    }
    if (!names.length) return;
    for (const name of names) {
      // One get per directory (named for its volume): a node may read only its own local-path volumes
      // (node-authorizer.ts), not list them all. Refused: not a volume of this node, left alone.
      let pv: KubeObject | undefined;
      try {
        pv = await o.kube.getOptional(`/api/v1/persistentvolumes/${encodeURIComponent(name)}`);
      } catch (e) {
        if (e instanceof ApiError && e.code === 403) continue;
        throw e;
      }
      if (!pv) {
        o.log(`local-path volume ${name} is gone: removing its directory`);
        removeDir(name);
        continue;
      }
      if (!pv.metadata.deletionTimestamp || pv.status?.phase === 'Bound') continue;
      if (!(pv.metadata.finalizers ?? []).includes(LOCAL_PATH_FINALIZER) || !isLocalPathVolumeOf(pv, o.nodeName)) continue;
      if (path.resolve(String(pv.spec?.hostPath?.path ?? '')) !== path.join(root, name)) continue; // not this directory's volume
      removeDir(name);
      try {
        await o.kube.patch(`/api/v1/persistentvolumes/${encodeURIComponent(name)}`, {
          metadata: { resourceVersion: pv.metadata.resourceVersion, finalizers: (pv.metadata.finalizers ?? []).filter((f: string) => f !== LOCAL_PATH_FINALIZER) },
        });
      } catch (e) {
        // Gone already, or changed since read: the next period looks again (the directory is gone now).
        if (!(e instanceof ApiError && (e.code === 404 || e.code === 409))) throw e;
      }
    }
  };
  const timer = setInterval(() => {
    if (stopped || running) return;
    running = tick()
      .catch((e: Error) => o.log(`local-path volumes: ${e.message}`))
      .finally(() => (running = undefined));
  }, o.kube.pollMs ?? o.everyMs ?? 2000);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Binds

/** The pod's volumes every mount of which is read-only: persistentVolumeClaim volumes with readOnly set. */
export function readOnlyVolumes(pod: KubeObject): Set<string> {
  return new Set<string>((pod.spec?.volumes ?? []).filter((v: any) => v?.persistentVolumeClaim?.readOnly === true).map((v: any) => v.name));
}

/**
 * Docker HostConfig.Binds for the container's volumeMounts: `host:container[:ro]`. A subPath binds that
 * path inside the volume, created as a directory (with the volume's mode) when missing, as kubelet
 * does. subPathExpr is expanded with $(VAR) from the container's env ("K=V" strings, containerEnv's
 * result): pass it, or a subPathExpr that names a variable fails. Volumes in `readOnly` (readOnlyVolumes)
 * are bound read-only whatever the mount says.
 */
export function containerBinds(container: Record<string, any>, volumes: Map<string, string>, env: string[] = [], readOnly: ReadonlySet<string> = new Set()): string[] {
  const binds: string[] = [];
  for (const m of container.volumeMounts ?? []) {
    const host = volumes.get(m.name);
    if (host === undefined) throw new Error(`cannot find volume "${m.name}" to mount into container "${container.name}"`);
    let sub: string = m.subPath ?? '';
    if (m.subPathExpr) sub = expandSubPath(m.subPathExpr, env);
    let source = host;
    if (sub) {
      if (path.isAbsolute(sub) || sub.split('/').includes('..')) {
        throw new Error(`subPath ${JSON.stringify(sub)} of volume "${m.name}" must be a relative path without '..'`);
      }
      source = path.join(host, sub);
      if (!fs.existsSync(source)) {
        fs.mkdirSync(source, { recursive: true });
        fs.chmodSync(source, fs.statSync(host).mode & 0o7777);
      }
    }
    if (source.includes(':') || String(m.mountPath).includes(':')) {
      throw new Error(`cannot bind ${source} to ${m.mountPath}: Docker binds cannot hold ':' in a path`);
    }
    binds.push(`${source}:${m.mountPath}${m.readOnly || readOnly.has(m.name) ? ':ro' : ''}`);
  }
  return binds;
}

/** kubelet's ExpandContainerVolumeMounts: every referenced variable must have a non-empty value. */
function expandSubPath(expr: string, env: string[]): string {
  const vars = new Map(env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const missing = new Set<string>();
  const out = expand(expr, (k) => {
    const v = vars.get(k);
    if (!v) missing.add(k);
    return v ?? '';
  });
  if (missing.size) throw new Error(`missing value for ${[...missing].sort().join(', ')}`);
  return out;
}

/** Removes everything the pod's volumes put under podDir (hostPath volumes live elsewhere and stay). */
export function removePodDir(podDir: string): void {
  fs.rmSync(podDir, { recursive: true, force: true });
}
