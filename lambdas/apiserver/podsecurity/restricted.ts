// The Restricted level's own checks (kube's pod-security-admission/policy/check_*.go with Level
// Restricted), at policy version 1.32, with kube's messages word for word.

import { validSeccomp } from './baseline.ts';
import { ALLOWED, containersPhrase, forbid, joinQuote, sc, sortedSet, visitContainers, type CheckPod } from './checks.ts';

type Obj = Record<string, any>;

/** allowPrivilegeEscalation: every container sets it to false. */
const allowPrivilegeEscalation: CheckPod = (_meta, spec) => {
  const bad: string[] = [];
  visitContainers(spec, (c) => {
    if (sc(c)?.allowPrivilegeEscalation !== false) bad.push(c.name);
  });
  return bad.length ? forbid('allowPrivilegeEscalation != false', `${containersPhrase(bad)} must set securityContext.allowPrivilegeEscalation=false`) : ALLOWED;
};

/** capabilities_restricted: drop ALL, and add nothing but NET_BIND_SERVICE. */
const capabilitiesRestricted: CheckPod = (_meta, spec) => {
  const missingDropAll: string[] = [];
  const adding: string[] = [];
  const caps = new Set<string>();
  visitContainers(spec, (c) => {
    const capabilities = sc(c)?.capabilities;
    if (!capabilities || typeof capabilities !== 'object') {
      missingDropAll.push(c.name);
      return;
    }
    if (!(Array.isArray(capabilities.drop) && capabilities.drop.includes('ALL'))) missingDropAll.push(c.name);
    let forbidden = false;
    for (const cap of Array.isArray(capabilities.add) ? capabilities.add : []) {
      if (cap !== 'NET_BIND_SERVICE') {
        forbidden = true;
        caps.add(String(cap));
      }
    }
    if (forbidden) adding.push(c.name);
  });
  const details: string[] = [];
  if (missingDropAll.length) details.push(`${containersPhrase(missingDropAll)} must set securityContext.capabilities.drop=["ALL"]`);
  if (adding.length) details.push(`${containersPhrase(adding)} must not include ${joinQuote(sortedSet(caps))} in securityContext.capabilities.add`);
  return details.length ? forbid('unrestricted capabilities', details.join('; ')) : ALLOWED;
};

const ALLOWED_VOLUME_SOURCES = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'];

/** restrictedVolumes: only the volume types that do not reach outside the pod's own storage. */
const restrictedVolumes: CheckPod = (_meta, spec) => {
  const names = new Set<string>();
  for (const v of Array.isArray(spec.volumes) ? spec.volumes : []) {
    if (!v || typeof v !== 'object') continue;
    if (!ALLOWED_VOLUME_SOURCES.some((k) => v[k] !== undefined && v[k] !== null)) names.add(String(v.name));
  }
  // Go's %q of a []string: ["a" "b"].
  return names.size ? forbid('restricted volume types', `volumes [${joinQuote(sortedSet(names)).replaceAll('", "', '" "')}] have restricted types`) : ALLOWED;
};

/**
 * A check that the pod or every container sets a field to a good value (runAsNonRoot, seccompProfile):
 * explicit bad values are named first, then containers that leave it unset without a good pod-level value.
 */
function podOrContainers(
  reason: string,
  read: (secCtx: Obj | undefined) => unknown,
  good: (v: unknown) => boolean,
  badMsg: (setters: string, values: string[]) => string,
  unsetMsg: (containers: string) => string,
): CheckPod {
  return (_meta, spec) => {
    const setters: string[] = [];
    const values = new Set<string>();
    let podGood = false;
    const pv = read(sc(spec));
    if (pv !== undefined && pv !== null) {
      if (good(pv)) podGood = true;
      else {
        setters.push('pod');
        values.add(String(pv));
      }
    }
    const explicit: string[] = [];
    const implicit: string[] = [];
    visitContainers(spec, (c) => {
      const v = read(sc(c));
      if (v !== undefined && v !== null) {
        if (!good(v)) {
          explicit.push(c.name);
          values.add(String(v));
        }
      } else if (!podGood) implicit.push(c.name);
    });
    if (explicit.length) setters.push(containersPhrase(explicit));
    if (setters.length) return forbid(reason, badMsg(setters.join(' and '), sortedSet(values)));
    if (implicit.length) return forbid(reason, unsetMsg(containersPhrase(implicit)));
    return ALLOWED;
  };
}

/** runAsNonRoot: the pod, or every container, sets runAsNonRoot=true. */
const runAsNonRoot = podOrContainers(
  'runAsNonRoot != true',
  (s) => s?.runAsNonRoot,
  (v) => v === true,
  (setters) => `${setters} must not set securityContext.runAsNonRoot=false`,
  (containers) => `pod or ${containers} must set securityContext.runAsNonRoot=true`,
);

/** runAsUser: neither the pod nor a container runs as uid 0. */
const runAsUser: CheckPod = (_meta, spec) => {
  const setters: string[] = [];
  if (sc(spec)?.runAsUser === 0) setters.push('pod');
  const bad: string[] = [];
  visitContainers(spec, (c) => {
    if (sc(c)?.runAsUser === 0) bad.push(c.name);
  });
  if (bad.length) setters.push(containersPhrase(bad));
  return setters.length ? forbid('runAsUser=0', `${setters.join(' and ')} must not set runAsUser=0`) : ALLOWED;
};

/** seccompProfile_restricted: the pod, or every container, sets RuntimeDefault or Localhost. */
const seccompProfileRestricted = podOrContainers(
  'seccompProfile',
  (s) => (s?.seccompProfile && typeof s.seccompProfile === 'object' ? (s.seccompProfile.type ?? '') : undefined),
  validSeccomp,
  (setters, values) => `${setters} must not set securityContext.seccompProfile.type to ${joinQuote(values)}`,
  (containers) => `pod or ${containers} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"`,
);

// File name order, as Go registers them.
export const RESTRICTED_CHECKS: CheckPod[] = [allowPrivilegeEscalation, capabilitiesRestricted, restrictedVolumes, runAsNonRoot, runAsUser, seccompProfileRestricted];
