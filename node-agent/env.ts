// A container's environment, as kubelet builds it (pkg/kubelet/kubelet_pods.go makeEnvironmentVariables,
// pkg/kubelet/envvars, third_party/forked/golang/expansion, pkg/fieldpath, pkg/api/v1/resource). Pure
// functions over already-fetched objects: the pod worker fetches the ConfigMaps and Secrets that
// referencedObjects() names and the namespace's Services, and gets back "K=V" strings for Docker's Env,
// or kubelet's error text (the worker reports it as waiting reason CreateContainerConfigError).

import os from 'node:os';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { parseQuantityExact } from '../lambdas/machinery/quantity.ts';

export interface EnvObjects {
  configMaps: Map<string, KubeObject>;
  secrets: Map<string, KubeObject>;
  services: KubeObject[];
  /**
   * The node's allocatable cpu and memory: limits.* of a container without limits resolve to these, as
   * kubelet's defaultPodLimitsForDownwardAPI does. Default: this host's CPU count and total memory.
   */
  allocatable?: { cpu?: string; memory?: string };
}

// ---------------------------------------------------------------------------------------------------
// Which ConfigMaps and Secrets a pod needs

type Container = Record<string, any>;

function allContainers(pod: KubeObject): Container[] {
  const s = pod.spec ?? {};
  return [...(s.initContainers ?? []), ...(s.containers ?? []), ...(s.ephemeralContainers ?? [])];
}

/** Names (in the pod's namespace) of every ConfigMap and Secret the pod's env, envFrom and volumes use. */
export function referencedObjects(pod: KubeObject): { configMaps: Set<string>; secrets: Set<string> } {
  const configMaps = new Set<string>();
  const secrets = new Set<string>();
  const add = (set: Set<string>, name: unknown) => {
    if (typeof name === 'string' && name !== '') set.add(name);
  };
  for (const c of allContainers(pod)) {
    for (const e of c.env ?? []) {
      add(configMaps, e?.valueFrom?.configMapKeyRef?.name);
      add(secrets, e?.valueFrom?.secretKeyRef?.name);
    }
    for (const f of c.envFrom ?? []) {
      add(configMaps, f?.configMapRef?.name);
      add(secrets, f?.secretRef?.name);
    }
  }
  for (const v of pod.spec?.volumes ?? []) {
    add(configMaps, v?.configMap?.name);
    add(secrets, v?.secret?.secretName);
    for (const src of v?.projected?.sources ?? []) {
      add(configMaps, src?.configMap?.name);
      add(secrets, src?.secret?.name);
    }
  }
  return { configMaps, secrets };
}

// ---------------------------------------------------------------------------------------------------
// Service environment variables (pkg/kubelet/envvars/envvars.go)

/** kubelet's makeEnvVariableName: upper case, '-' → '_' (nothing else: service names are DNS-1035 labels). */
function envName(s: string): string {
  return s.replaceAll('-', '_').toUpperCase();
}

/** v1helper.IsServiceIPSet: a cluster IP that is set and not "None". */
function hasClusterIP(svc: KubeObject): boolean {
  const ip = svc.spec?.clusterIP;
  return typeof ip === 'string' && ip !== '' && ip !== 'None';
}

/** net.JoinHostPort: IPv6 addresses in brackets. */
function joinHostPort(host: string, port: number | string): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** envvars.FromServices for the services of one namespace (with a cluster IP), in the order given. */
export function serviceEnv(services: KubeObject[], namespace: string): { name: string; value: string }[] {
  const out: { name: string; value: string }[] = [];
  for (const svc of services) {
    if ((svc.metadata?.namespace ?? namespace) !== namespace) continue;
    out.push(...fromService(svc));
  }
  return out;
}

function fromService(svc: KubeObject): { name: string; value: string }[] {
  const ports: { name?: string; port: number; protocol?: string }[] = svc.spec?.ports ?? [];
  if (!hasClusterIP(svc) || ports.length === 0) return [];
  const ip: string = svc.spec.clusterIP;
  const prefix = envName(svc.metadata.name ?? '');
  const out: { name: string; value: string }[] = [];
  out.push({ name: `${prefix}_SERVICE_HOST`, value: ip });
  out.push({ name: `${prefix}_SERVICE_PORT`, value: String(ports[0]!.port) });
  for (const p of ports) {
    if (p.name) out.push({ name: `${prefix}_SERVICE_PORT_${envName(p.name)}`, value: String(p.port) });
  }
  // makeLinkVariables: the Docker links compatible ones.
  ports.forEach((p, i) => {
    const proto = p.protocol || 'TCP';
    const url = `${proto.toLowerCase()}://${joinHostPort(ip, p.port)}`;
    if (i === 0) out.push({ name: `${prefix}_PORT`, value: url });
    const pp = `${prefix}_PORT_${p.port}_${proto.toUpperCase()}`;
    out.push({ name: pp, value: url });
    out.push({ name: `${pp}_PROTO`, value: proto.toLowerCase() });
    out.push({ name: `${pp}_PORT`, value: String(p.port) });
    out.push({ name: `${pp}_ADDR`, value: ip });
  });
  return out;
}

/**
 * kubelet's getServiceEnvVarMap: the "kubernetes" service of the default namespace always (the master
 * service, even with enableServiceLinks false), and the pod namespace's services when links are enabled.
 */
function serviceEnvMap(services: KubeObject[], namespace: string, links: boolean): Map<string, string> {
  const chosen = new Map<string, KubeObject>();
  for (const svc of services) {
    if (!hasClusterIP(svc)) continue;
    const ns = svc.metadata?.namespace ?? namespace;
    const name = svc.metadata?.name ?? '';
    if (ns === 'default' && name === 'kubernetes') {
      if (!chosen.has(name)) chosen.set(name, svc);
    } else if (ns === namespace && links) {
      chosen.set(name, svc);
    }
  }
  const m = new Map<string, string>();
  for (const svc of chosen.values()) for (const e of fromService(svc)) m.set(e.name, e.value);
  return m;
}

// ---------------------------------------------------------------------------------------------------
// $(VAR) expansion (third_party/forked/golang/expansion/expand.go)

/**
 * Replaces $(NAME) with lookup(NAME); `$$` is an escaped `$`; a reference lookup does not know, a `$`
 * not followed by `(` or `$`, and an unterminated `$(` are all left as written.
 */
export function expand(input: string, lookup: (name: string) => string | undefined): string {
  let out = '';
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== '$' || cursor + 1 >= input.length) continue;
    out += input.slice(checkpoint, cursor);
    const next = input[cursor + 1];
    let advance = 1;
    if (next === '$') {
      out += '$'; // escaped operator
    } else if (next === '(') {
      const close = input.indexOf(')', cursor + 2);
      if (close < 0) {
        out += '$('; // incomplete reference: kept, scanning resumes after the '('
      } else {
        const name = input.slice(cursor + 2, close);
        out += lookup(name) ?? `$(${name})`;
        advance = close - cursor;
      }
    } else {
      out += '$' + next; // a bare operator
    }
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return out + input.slice(checkpoint);
}

function envLookup(env: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const kv of env) {
    const i = kv.indexOf('=');
    if (i > 0) m.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return m;
}

/** $(VAR) expansion of a container's command or args against its final environment ("K=V" strings). */
export function expandArgs(list: string[], env: string[]): string[] {
  const vars = envLookup(env);
  return list.map((s) => expand(s, (n) => vars.get(n)));
}

// ---------------------------------------------------------------------------------------------------
// Downward API values (pkg/fieldpath, pkg/api/v1/resource); volumes.ts uses them too.

/** fieldpath.FormatMap: sorted `key="value"` lines (Go's %q; JSON quoting is the same for printable text). */
function formatMap(m: Record<string, string> | undefined): string {
  return Object.keys(m ?? {})
    .sort()
    .map((k) => `${k}=${JSON.stringify(m![k])}`)
    .join('\n');
}

const SUBSCRIPT = /^(metadata\.(?:labels|annotations))\['(.*)'\]$/;

/**
 * The value of a fieldRef (kubelet's podFieldSelectorRuntimeValue + fieldpath.ExtractFieldPathAsString).
 * Throws kubelet's error text on a path it does not support.
 */
export function fieldRefValue(pod: KubeObject, fieldPath: string, apiVersion = 'v1'): string {
  if (apiVersion !== 'v1') throw new Error(`unsupported pod version: ${apiVersion}`);
  const m = pod.metadata ?? {};
  const sub = SUBSCRIPT.exec(fieldPath);
  if (sub) {
    const map = (sub[1] === 'metadata.labels' ? m.labels : m.annotations) ?? {};
    return map[sub[2]!] ?? '';
  }
  const podIPs: string[] = (pod.status?.podIPs ?? []).map((p: { ip: string }) => p.ip).filter(Boolean);
  const hostIPs: string[] = (pod.status?.hostIPs ?? []).map((p: { ip: string }) => p.ip).filter(Boolean);
  switch (fieldPath) {
    case 'metadata.name':
      return m.name ?? '';
    case 'metadata.namespace':
      return m.namespace ?? '';
    case 'metadata.uid':
      return m.uid ?? '';
    case 'metadata.labels':
      return formatMap(m.labels);
    case 'metadata.annotations':
      return formatMap(m.annotations);
    case 'spec.nodeName':
      return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? '';
    case 'status.hostIP':
      return pod.status?.hostIP ?? hostIPs[0] ?? '';
    case 'status.hostIPs':
      return (hostIPs.length ? hostIPs : [pod.status?.hostIP].filter(Boolean)).join(',');
    case 'status.podIP':
      return podIPs[0] ?? pod.status?.podIP ?? '';
    case 'status.podIPs':
      return (podIPs.length ? podIPs : [pod.status?.podIP].filter(Boolean)).join(',');
  }
  throw new Error(`unsupported fieldPath: ${fieldPath}`);
}

/**
 * The value of a resourceFieldRef (resource.ExtractContainerResourceValue): the container's request or
 * limit divided by the divisor (default 1), rounded up. cpu compares milli-values and memory whole
 * bytes, as Kubernetes does. An unset limit is the node's allocatable (defaultPodLimitsForDownwardAPI);
 * an unset request is the limit when one is set (API defaulting), else 0.
 */
export function resourceFieldValue(
  pod: KubeObject,
  container: Container,
  ref: { containerName?: string; resource: string; divisor?: string | number },
  allocatable?: { cpu?: string; memory?: string },
): string {
  const c = ref.containerName ? allContainers(pod).find((x) => x.name === ref.containerName) : container;
  if (!c) throw new Error(`container ${ref.containerName} not found`);
  const [kind, res] = ref.resource.split('.', 2) as [string, string];
  if ((kind !== 'limits' && kind !== 'requests') || (res !== 'cpu' && res !== 'memory')) {
    throw new Error(`unsupported container resource : ${ref.resource}`);
  }
  const node = {
    cpu: allocatable?.cpu ?? String(os.cpus().length),
    memory: allocatable?.memory ?? String(os.totalmem()),
  };
  const limits = c.resources?.limits ?? {};
  const requests = c.resources?.requests ?? {};
  const value = kind === 'limits' ? (limits[res] ?? node[res]) : (requests[res] ?? limits[res] ?? '0');
  const divisor = ref.divisor === undefined || parseQuantityExact(ref.divisor).nanos === 0n ? '1' : ref.divisor;
  // Quantity.MilliValue() / Value(): rounded up to whole milli-units / units.
  const unit = res === 'cpu' ? 1_000_000n : 1_000_000_000n;
  const scaled = (q: string | number) => {
    const n = parseQuantityExact(q).nanos;
    return Number(n / unit + (n % unit > 0n ? 1n : 0n));
  };
  return String(Math.ceil(scaled(value) / scaled(divisor)));
}

// ---------------------------------------------------------------------------------------------------
// The container's environment (makeEnvironmentVariables)

/** validation.IsEnvVarName */
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

function secretValue(b64: string): string {
  return Buffer.from(b64, 'base64').toString('utf8');
}

export interface ContainerEnvResult {
  /** "K=V" strings for Docker's Env. */
  env: string[];
  /** kubelet's error text when a required ConfigMap, Secret or key is missing (CreateContainerConfigError). */
  error?: string;
  /** kubelet's InvalidEnvironmentVariableNames warnings (envFrom keys skipped). */
  warnings?: string[];
}

/**
 * The environment of one container. Precedence is kubelet's: service variables, overridden by envFrom
 * (in order), overridden by env (in order); a value's $(VAR) references see envFrom, the env entries
 * declared before it, and the service variables. kubelet returns them in Go map order; here the order
 * is deterministic: service variables first, then envFrom keys (sorted per source), then env as
 * declared, each name at the place of the source that set it last.
 */
export function containerEnv(pod: KubeObject, container: Container, objects: EnvObjects): ContainerEnvResult {
  const ns = pod.metadata?.namespace ?? 'default';
  const services = serviceEnvMap(objects.services ?? [], ns, pod.spec?.enableServiceLinks !== false);
  const vars = new Map<string, string>(); // envFrom and env, in the order set
  const set = (k: string, v: string) => {
    vars.delete(k);
    vars.set(k, v);
  };
  const warnings: string[] = [];
  const result = (error?: string): ContainerEnvResult => {
    const env: string[] = [];
    for (const [k, v] of services) if (!vars.has(k)) env.push(`${k}=${v}`);
    for (const [k, v] of vars) env.push(`${k}=${v}`);
    return { env, ...(error ? { error } : {}), ...(warnings.length ? { warnings } : {}) };
  };

  for (const from of container.envFrom ?? []) {
    const prefix: string = from.prefix ?? '';
    let data: Record<string, string>;
    let name: string;
    let kind: string;
    if (from.configMapRef) {
      ({ name } = from.configMapRef);
      kind = 'configMap';
      const cm = objects.configMaps.get(name);
      if (!cm) {
        if (from.configMapRef.optional) continue;
        return result(`configmap "${name}" not found`);
      }
      data = cm.data ?? {};
    } else if (from.secretRef) {
      ({ name } = from.secretRef);
      kind = 'secret';
      const s = objects.secrets.get(name);
      if (!s) {
        if (from.secretRef.optional) continue;
        return result(`secret "${name}" not found`);
      }
      data = Object.fromEntries(Object.entries<string>(s.data ?? {}).map(([k, v]) => [k, secretValue(v)]));
    } else {
      continue;
    }
    const invalid: string[] = [];
    for (const k of Object.keys(data).sort()) {
      const key = prefix + k;
      if (!ENV_NAME.test(key)) invalid.push(key);
      else set(key, data[k]!);
    }
    if (invalid.length) {
      warnings.push(
        `Keys [${invalid.join(', ')}] from the EnvFrom ${kind} ${ns}/${name} were skipped since they are considered invalid environment variable names.`,
      );
    }
  }

  const lookup = (n: string) => vars.get(n) ?? services.get(n);
  for (const e of container.env ?? []) {
    let value: string = e.value ?? '';
    const from = e.valueFrom;
    if (value !== '') {
      value = expand(value, lookup);
    } else if (from) {
      try {
        if (from.fieldRef) {
          value = fieldRefValue(pod, from.fieldRef.fieldPath, from.fieldRef.apiVersion ?? 'v1');
        } else if (from.resourceFieldRef) {
          value = resourceFieldValue(pod, container, from.resourceFieldRef, objects.allocatable);
        } else if (from.configMapKeyRef) {
          const { name, key, optional } = from.configMapKeyRef;
          const cm = objects.configMaps.get(name);
          if (!cm) {
            if (optional) continue;
            return result(`configmap "${name}" not found`);
          }
          const v = cm.data?.[key];
          if (v === undefined) {
            if (optional) continue;
            return result(`couldn't find key ${key} in ConfigMap ${ns}/${name}`);
          }
          value = v;
        } else if (from.secretKeyRef) {
          const { name, key, optional } = from.secretKeyRef;
          const s = objects.secrets.get(name);
          if (!s) {
            if (optional) continue;
            return result(`secret "${name}" not found`);
          }
          const v = s.data?.[key];
          if (v === undefined) {
            if (optional) continue;
            return result(`couldn't find key ${key} in Secret ${ns}/${name}`);
          }
          value = secretValue(v);
        }
      } catch (err) {
        return result((err as Error).message);
      }
    }
    set(e.name, value);
  }
  return result();
}
