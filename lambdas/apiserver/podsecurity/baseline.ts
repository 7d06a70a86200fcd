// The Baseline level's checks (kube's pod-security-admission/policy/check_*.go with Level Baseline),
// at policy version 1.32. Messages are kube's, word for word. `overlap` marks the checks the
// Restricted level replaces with a stricter one of its own (capabilities, volumes, seccomp).

import { ALLOWED, containersPhrase, forbid, joinQuote, pluralize, sc, sortedSet, visitContainers, type CheckPod } from './checks.ts';

type Obj = Record<string, any>;

const APPARMOR_CONTAINER_PREFIX = 'container.apparmor.security.beta.kubernetes.io/';

/** appArmorProfile: the beta annotations may only ask for runtime/default or localhost/* profiles. */
const appArmorProfile: CheckPod = (meta) => {
  const bad: string[] = [];
  for (const [k, v] of Object.entries((meta?.annotations ?? {}) as Record<string, string>)) {
    if (k.startsWith(APPARMOR_CONTAINER_PREFIX) && !(v === '' || v === 'runtime/default' || String(v).startsWith('localhost/'))) {
      bad.push(`${k}=${JSON.stringify(v)}`);
    }
  }
  if (!bad.length) return ALLOWED;
  bad.sort();
  return forbid(pluralize('forbidden AppArmor profile', 'forbidden AppArmor profiles', bad.length), bad.join(', '));
};

/** hostNamespaces: no hostNetwork, hostPID or hostIPC. */
const hostNamespaces: CheckPod = (_meta, spec) => {
  const used: string[] = [];
  if (spec.hostNetwork === true) used.push('hostNetwork=true');
  if (spec.hostPID === true) used.push('hostPID=true');
  if (spec.hostIPC === true) used.push('hostIPC=true');
  return used.length ? forbid('host namespaces', used.join(', ')) : ALLOWED;
};

/** hostPorts: no container port binds a host port. */
const hostPorts: CheckPod = (_meta, spec) => {
  const bad: string[] = [];
  const ports = new Set<string>();
  visitContainers(spec, (c) => {
    let valid = true;
    for (const p of Array.isArray(c.ports) ? c.ports : []) {
      if (p?.hostPort) {
        valid = false;
        ports.add(String(p.hostPort));
      }
    }
    if (!valid) bad.push(c.name);
  });
  if (!bad.length) return ALLOWED;
  const list = sortedSet(ports);
  return forbid('hostPort', `${containersPhrase(bad)} ${pluralize('uses', 'use', bad.length)} ${pluralize('hostPort', 'hostPorts', list.length)} ${list.join(', ')}`);
};

/** privileged: no container sets securityContext.privileged=true. */
const privileged: CheckPod = (_meta, spec) => {
  const bad: string[] = [];
  visitContainers(spec, (c) => {
    if (sc(c)?.privileged === true) bad.push(c.name);
  });
  return bad.length ? forbid('privileged', `${containersPhrase(bad)} must not set securityContext.privileged=true`) : ALLOWED;
};

/** procMount: only the Default /proc masks. */
const procMount: CheckPod = (_meta, spec) => {
  const bad: string[] = [];
  const types: string[] = [];
  visitContainers(spec, (c) => {
    const pm = sc(c)?.procMount;
    if (pm !== undefined && pm !== null && pm !== 'Default') {
      bad.push(c.name);
      types.push(String(pm));
    }
  });
  return bad.length ? forbid('procMount', `${containersPhrase(bad)} must not set securityContext.procMount to ${joinQuote(sortedSet(types))}`) : ALLOWED;
};

const SELINUX_TYPES = new Set(['', 'container_t', 'container_init_t', 'container_kvm_t']);

/** seLinuxOptions: only the container types, and no user or role. */
const seLinuxOptions: CheckPod = (_meta, spec) => {
  const setters: string[] = [];
  const badTypes = new Set<string>();
  let setUser = false;
  let setRole = false;
  const valid = (o: Obj): boolean => {
    let ok = true;
    const type = typeof o.type === 'string' ? o.type : '';
    if (!SELINUX_TYPES.has(type)) {
      ok = false;
      badTypes.add(type);
    }
    if (o.user) (ok = false), (setUser = true);
    if (o.role) (ok = false), (setRole = true);
    return ok;
  };
  const podOpts = sc(spec)?.seLinuxOptions;
  if (podOpts && typeof podOpts === 'object' && !valid(podOpts)) setters.push('pod');
  const bad: string[] = [];
  visitContainers(spec, (c) => {
    const o = sc(c)?.seLinuxOptions;
    if (o && typeof o === 'object' && !valid(o)) bad.push(c.name);
  });
  if (bad.length) setters.push(containersPhrase(bad));
  if (!setters.length) return ALLOWED;
  // kube reports user and role only alongside a bad type (its code nests them so).
  const data: string[] = [];
  if (badTypes.size) {
    const types = sortedSet(badTypes);
    data.push(`${pluralize('type', 'types', types.length)} ${joinQuote(types)}`);
    if (setUser) data.push('user may not be set');
    if (setRole) data.push('role may not be set');
  }
  return forbid('seLinuxOptions', `${setters.join(' and ')} set forbidden securityContext.seLinuxOptions: ${data.join('; ')}`);
};

// check_sysctls.go at 1.32: the 1.0 set, ip_local_reserved_ports (1.27), the TCP keepalive and FIN
// timeouts (1.29), tcp_rmem and tcp_wmem (1.32).
const SAFE_SYSCTLS = new Set([
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
  'net.ipv4.tcp_rmem',
  'net.ipv4.tcp_wmem',
]);

/** sysctls: only the namespaced, isolated ("safe") ones. */
const sysctls: CheckPod = (_meta, spec) => {
  const bad: string[] = [];
  for (const s of Array.isArray(sc(spec)?.sysctls) ? sc(spec)!.sysctls : []) {
    if (!SAFE_SYSCTLS.has(s?.name)) bad.push(String(s?.name ?? ''));
  }
  return bad.length ? forbid('forbidden sysctls', bad.join(', ')) : ALLOWED;
};

/** windowsHostProcess: neither the pod nor a container runs as a Windows host process. */
const windowsHostProcess: CheckPod = (_meta, spec) => {
  const bad: string[] = [];
  visitContainers(spec, (c) => {
    if (sc(c)?.windowsOptions?.hostProcess === true) bad.push(c.name);
  });
  const setters: string[] = [];
  if (sc(spec)?.windowsOptions?.hostProcess === true) setters.push('pod');
  if (bad.length) setters.push(containersPhrase(bad));
  return setters.length ? forbid('hostProcess', `${setters.join(' and ')} must not set securityContext.windowsOptions.hostProcess=true`) : ALLOWED;
};

const DEFAULT_CAPABILITIES = new Set(['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT']);

/** capabilities_baseline (overlap): only the container runtime's default capabilities may be added. */
const capabilitiesBaseline: CheckPod = (_meta, spec) => {
  const bad: string[] = [];
  const caps = new Set<string>();
  visitContainers(spec, (c) => {
    const add = sc(c)?.capabilities?.add;
    let valid = true;
    for (const cap of Array.isArray(add) ? add : []) {
      if (!DEFAULT_CAPABILITIES.has(cap)) {
        valid = false;
        caps.add(String(cap));
      }
    }
    if (!valid) bad.push(c.name);
  });
  return bad.length
    ? forbid('non-default capabilities', `${containersPhrase(bad)} must not include ${joinQuote(sortedSet(caps))} in securityContext.capabilities.add`)
    : ALLOWED;
};

/** hostPathVolumes (overlap): no hostPath volumes. */
const hostPathVolumes: CheckPod = (_meta, spec) => {
  const names = (Array.isArray(spec.volumes) ? spec.volumes : []).filter((v: Obj) => v?.hostPath).map((v: Obj) => String(v.name));
  return names.length ? forbid('hostPath volumes', `${pluralize('volume', 'volumes', names.length)} ${joinQuote(names)}`) : ALLOWED;
};

export const validSeccomp = (t: unknown): boolean => t === 'Localhost' || t === 'RuntimeDefault';

/** seccompProfile_baseline (overlap, 1.19+): a seccomp profile, if set, is RuntimeDefault or Localhost. */
const seccompProfileBaseline: CheckPod = (_meta, spec) => {
  const setters: string[] = [];
  const values = new Set<string>();
  const pod = sc(spec)?.seccompProfile;
  if (pod && typeof pod === 'object' && !validSeccomp(pod.type)) {
    setters.push('pod');
    values.add(String(pod.type ?? ''));
  }
  const bad: string[] = [];
  visitContainers(spec, (c) => {
    const p = sc(c)?.seccompProfile;
    if (p && typeof p === 'object' && !validSeccomp(p.type)) {
      bad.push(c.name);
      values.add(String(p.type ?? ''));
    }
  });
  if (bad.length) setters.push(containersPhrase(bad));
  return setters.length ? forbid('seccompProfile', `${setters.join(' and ')} must not set securityContext.seccompProfile.type to ${joinQuote(sortedSet(values))}`) : ALLOWED;
};

// Go runs the checks in the order their files register them (file name order).
/** Baseline checks the Restricted level also runs. */
export const BASELINE_CHECKS: CheckPod[] = [appArmorProfile, hostNamespaces, hostPorts, privileged, procMount, seLinuxOptions, sysctls, windowsHostProcess];
/** Baseline checks that Restricted replaces with its own. */
export const OVERLAPPING_BASELINE_CHECKS: CheckPod[] = [capabilitiesBaseline, hostPathVolumes, seccompProfileBaseline];
