// PodSecurity admission, as kube-apiserver's built-in plugin (plugin/pkg/admission/security/podsecurity
// over staging/src/k8s.io/pod-security-admission/admission): a namespace's pod-security.kubernetes.io/
// {enforce,audit,warn}[-version] labels choose a Pod Security Standards level for each mode.
//   - pods: enforce refuses (403 `pods "x" is forbidden: violates PodSecurity "restricted:latest": ...`),
//     audit records the audit annotation pod-security.kubernetes.io/audit-violations, warn adds a warning.
//   - workload resources (their pod templates): audit and warn only, never enforce.
//   - namespaces: invalid labels are refused (422); raising the enforce level warns about the existing
//     pods it would refuse.
// Like kube's default configuration, nothing is exempt (no namespaces, users or runtime classes).
//
// Cost per request: a pod or workload write reads its namespace (one get); a pod update whose old object
// the caller did not pass reads the pod (one get); a namespace update reads the namespace when the old
// object is not given, and lists the namespace's pods only when the enforce level is raised.

import { isDeepStrictEqual } from 'node:util';
import { ApiError, errors } from '../machinery/status.ts';
import { findResource } from '../machinery/resources.ts';
import type { KubeObject } from '../machinery/types.ts';
import type { AdmissionPlugin, AdmissionRequest } from './admission.ts';
import type { Registry } from './registry.ts';
import { namespaceOf } from './admission-match.ts';
import {
  AUDIT_ERROR_ANNOTATION,
  AUDIT_VIOLATIONS_ANNOTATION,
  ENFORCE_POLICY_ANNOTATION,
  compareLevels,
  evaluatePod,
  forbiddenDetail,
  forbiddenReason,
  levelVersionString,
  policyToEvaluate,
  type AggregateResult,
  type LevelVersion,
  type Policy,
} from './podsecurity/policy.ts';

type Obj = Record<string, any>;

const pods = findResource('', 'v1', 'pods')!;

/** Where each workload kind keeps its pod template (kube's DefaultPodSpecExtractor). */
const TEMPLATE_OF: Record<string, (o: Obj) => Obj | undefined> = {
  '/replicationcontrollers': (o) => o.spec?.template,
  '/podtemplates': (o) => o.template,
  'apps/replicasets': (o) => o.spec?.template,
  'apps/deployments': (o) => o.spec?.template,
  'apps/statefulsets': (o) => o.spec?.template,
  'apps/daemonsets': (o) => o.spec?.template,
  'batch/jobs': (o) => o.spec?.template,
  'batch/cronjobs': (o) => o.spec?.jobTemplate?.spec?.template,
};

/** Pod subresources that cannot change the pod spec (ignoredPodSubresources). */
const IGNORED_POD_SUBRESOURCES = new Set(['exec', 'attach', 'binding', 'eviction', 'log', 'portforward', 'proxy', 'status']);

async function namespacePolicy(req: AdmissionRequest, registry: Registry): Promise<{ policy: Policy; error?: string }> {
  // The request's one read of its namespace, shared with NamespaceLifecycle and the policies (admission-match.ts).
  const nsObj = await namespaceOf(req, registry);
  if (!nsObj) throw errors.notFound('namespaces', '', req.namespace!);
  const { policy, errors: errs } = policyToEvaluate(nsObj.metadata.labels);
  const error = errs.length ? errs.map((e) => `${e.field}: ${e.message}`).join(', ') : undefined;
  return { policy, error: error && (errs.length > 1 ? `[${error}]` : error) };
}

/** EvaluatePod: enforce (pods only), then audit and warn, reusing a result for the same level:version. */
function evaluate(req: AdmissionRequest, policy: Policy, policyError: string | undefined, meta: Obj, spec: Obj, enforce: boolean): void {
  const cache = new Map<string, AggregateResult>();
  const run = (lv: LevelVersion): AggregateResult => {
    const key = levelVersionString(lv);
    let r = cache.get(key);
    if (!r) cache.set(key, (r = evaluatePod(lv, meta, spec)));
    return r;
  };
  const annotations: Record<string, string> = {};
  if (policyError) annotations[AUDIT_ERROR_ANNOTATION] = `Failed to parse policy: ${policyError}`;
  let denied: ApiError | undefined;
  if (enforce) {
    annotations[ENFORCE_POLICY_ANNOTATION] = levelVersionString(policy.enforce);
    const r = run(policy.enforce);
    if (!r.allowed) {
      const name = req.name ?? req.object?.metadata?.name ?? '';
      denied = errors.forbidden(`pods "${name}" is forbidden: violates PodSecurity "${levelVersionString(policy.enforce)}": ${forbiddenDetail(r)}`);
      denied.status.details = { name, kind: 'pods' };
    }
  }
  const audit = run(policy.audit);
  if (!audit.allowed) annotations[AUDIT_VIOLATIONS_ANNOTATION] = `would violate PodSecurity "${levelVersionString(policy.audit)}": ${forbiddenDetail(audit)}`;
  if (Object.keys(annotations).length) req.annotations = { ...req.annotations, ...annotations };
  if (denied) throw denied;
  const warn = run(policy.warn);
  if (!warn.allowed) req.warnings?.push(`would violate PodSecurity "${levelVersionString(policy.warn)}": ${forbiddenDetail(warn)}`);
}

/** isSignificantPodUpdate: only images (and containers' seccomp annotations) can change in a pod's spec. */
function significantPodUpdate(pod: Obj, old: Obj): boolean {
  const a = pod.metadata?.annotations ?? {};
  const oa = old.metadata?.annotations ?? {};
  const cs = (p: Obj, k: string): Obj[] => (Array.isArray(p.spec?.[k]) ? p.spec[k] : []);
  const changed = (c: Obj, oc: Obj) => c.image !== oc.image || a[`container.seccomp.security.alpha.kubernetes.io/${c.name}`] !== oa[`container.seccomp.security.alpha.kubernetes.io/${c.name}`];
  for (const k of ['containers', 'initContainers']) {
    const now = cs(pod, k);
    const before = cs(old, k);
    if (now.length !== before.length) return true;
    if (now.some((c, i) => changed(c, before[i]!))) return true;
  }
  const oldEphemeral = cs(old, 'ephemeralContainers');
  return cs(pod, 'ephemeralContainers').some((c) => {
    const oc = oldEphemeral.find((o) => o.name === c.name);
    return !oc || changed(c, oc);
  });
}

async function oldObjectOf(req: AdmissionRequest, registry: Registry): Promise<KubeObject | undefined> {
  if (req.oldObject) return req.oldObject;
  const name = req.name ?? req.object?.metadata?.name;
  if (!name) return undefined;
  return registry.get(req.resource, req.namespace, name).catch((e) => {
    if (e instanceof ApiError && e.code === 404) return undefined;
    throw e;
  });
}

async function validateNamespace(req: AdmissionRequest, registry: Registry): Promise<void> {
  if (req.subresource || !req.object) return;
  const ns = req.object;
  const { policy, errors: errs } = policyToEvaluate(ns.metadata?.labels);
  const invalid = () => errors.invalid('Namespace', '', ns.metadata?.name ?? '', errs);
  if (req.operation === 'CREATE') {
    if (errs.length) throw invalid();
    return;
  }
  if (req.operation !== 'UPDATE') return;
  const old = await oldObjectOf(req, registry);
  if (!old) return;
  const before = policyToEvaluate(old.metadata?.labels);
  // Labels that were already invalid the same way do not block other changes to the namespace.
  if (errs.length && !isDeepStrictEqual(errs, before.errors)) throw invalid();
  const now = policy.enforce;
  const was = before.policy.enforce;
  // No dry run when enforce is unchanged, privileged, or relaxed at the same version.
  if (now.level === was.level && now.version === was.version) return;
  if (now.level === 'privileged') return;
  if (now.version === was.version && compareLevels(now.level, was.level) < 1) return;
  req.warnings?.push(...(await evaluatePodsInNamespace(registry, ns.metadata.name ?? '', now)));
}

/** kube checks at most this many pods when a namespace's enforce level is raised. */
const MAX_PODS_TO_CHECK = 3000;

/** prioritizePods: one pod per controller first, the other replicas after them (checked only if room is left). */
function prioritizePods(list: KubeObject[]): KubeObject[] {
  const first: KubeObject[] = [];
  const replicas: KubeObject[] = [];
  const seen = new Set<string>();
  for (const pod of list) {
    const owner = (pod.metadata.ownerReferences ?? []).find((r: Obj) => r.controller === true);
    if (!owner) first.push(pod);
    else if (seen.has(owner.uid)) replicas.push(pod);
    else {
      seen.add(owner.uid);
      first.push(pod);
    }
  }
  return [...first, ...replicas];
}

/** EvaluatePodsInNamespace: one warning per distinct violation, naming the first pod and how many others. */
export async function evaluatePodsInNamespace(registry: Registry, namespace: string, enforce: LevelVersion): Promise<string[]> {
  const all = prioritizePods((await registry.list(pods, namespace)).items);
  const checked = all.slice(0, MAX_PODS_TO_CHECK);
  const byWarning = new Map<string, { podName: string; count: number }>();
  for (const pod of checked) {
    const podName = pod.metadata.name ?? '';
    const r = evaluatePod(enforce, pod.metadata ?? {}, (pod as Obj).spec ?? {});
    if (r.allowed) continue;
    const w = forbiddenReason(r);
    const c = byWarning.get(w);
    if (!c) byWarning.set(w, { podName, count: 1 });
    else {
      c.count++;
      if (podName < c.podName) c.podName = podName;
    }
  }
  const warnings: string[] = [];
  if (checked.length < all.length) warnings.push(`new PodSecurity enforce level only checked against the first ${checked.length} of ${all.length} existing pods`);
  if (byWarning.size) warnings.push(`existing pods in namespace "${namespace}" violate the new PodSecurity enforce level "${levelVersionString(enforce)}"`);
  const podWarnings = [...byWarning].map(([w, { podName, count }]) =>
    count === 1 ? `${podName}: ${w}` : count === 2 ? `${podName} (and 1 other pod): ${w}` : `${podName} (and ${count - 1} other pods): ${w}`,
  );
  return [...warnings, ...podWarnings.sort()];
}

export const podSecurityAdmission: AdmissionPlugin = {
  name: 'PodSecurity',
  async admit(req, registry) {
    if (req.operation !== 'CREATE' && req.operation !== 'UPDATE') return;
    const { group, resource } = req.resource;
    if (group === '' && resource === 'namespaces') return validateNamespace(req, registry);
    const isPod = group === '' && resource === 'pods';
    const template = TEMPLATE_OF[`${group}/${resource}`];
    if (!isPod && !template) return;
    if (!req.object || !req.namespace) return;
    if (isPod ? IGNORED_POD_SUBRESOURCES.has(req.subresource ?? '') : req.subresource) return;
    const { policy, error } = await namespacePolicy(req, registry);
    if (isPod) {
      if (!error && policy.enforce.level === 'privileged' && policy.warn.level === 'privileged' && policy.audit.level === 'privileged') {
        // kube's shared "privileged" answer still records the policy it enforced.
        req.annotations = { ...req.annotations, [ENFORCE_POLICY_ANNOTATION]: 'privileged:latest' };
        return;
      }
      if (req.operation === 'UPDATE') {
        const old = await oldObjectOf(req, registry);
        if (old && !significantPodUpdate(req.object, old)) return;
      }
      return evaluate(req, policy, error, req.object.metadata ?? {}, (req.object as Obj).spec ?? {}, true);
    }
    if (!error && policy.warn.level === 'privileged' && policy.audit.level === 'privileged') return;
    const tpl = template!(req.object as Obj);
    // A controller without a pod template (yet) has nothing to check.
    if (!tpl || typeof tpl !== 'object') return;
    return evaluate(req, policy, error, tpl.metadata ?? {}, tpl.spec ?? {}, false);
  },
};
