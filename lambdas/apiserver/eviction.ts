// The pods/eviction subresource (kube's pkg/registry/core/pod/storage/eviction.go): a pod is deleted
// unless a PodDisruptionBudget selecting it has no disruption left to give.
//
// - A pod that has already caused its disruption (Succeeded, Failed, Pending, or being deleted) is deleted
//   without consulting a budget, with its resourceVersion as a precondition (unless the client gave one) so
//   a pod that turned Running meanwhile is looked at again.
// - More than one budget selecting the pod: 500, as kube (the subresource cannot decide between them).
// - An unhealthy (not Ready) pod may go without spending a disruption when the budget's policy is
//   AlwaysAllow, or under IfHealthyBudget (the default) while the budget is satisfied; its delete then
//   carries the pod's resourceVersion, so a pod that became Ready since is a 429 to retry instead.
// - Otherwise the budget is spent first: disruptionsAllowed - 1 and the pod named in status.disruptedPods,
//   written with compare-and-swap on the budget (the registry's guaranteedUpdate re-reads and re-checks on
//   a conflict), so two evictions racing for the last allowed disruption cannot both have it; the loser
//   gets kube's 429. A budget the disruption controller has not yet seen at its generation is a 429 too.
// - The pod then gets the DisruptionTarget condition (EvictionByEvictionAPI) and is deleted with the
//   Eviction's DeleteOptions (grace period, preconditions). A dry run checks everything and writes nothing.
// The answer is a metav1.Status: Success with 201, or the failure (429 TooManyRequests with the
// DisruptionBudget cause; 500 for two budgets; the delete's own 404/409).

import { ApiError, errors, failureStatus, successStatus, type Status } from '../machinery/status.ts';
import { findResource } from '../machinery/resources.ts';
import { labelSelectorFromMetav1 } from '../machinery/selectors.ts';
import { typeErrors } from '../machinery/schema.ts';
import { isObject, type KubeObject } from '../machinery/types.ts';
import { setDisruptionAllowedCondition } from '../kinds/policy/poddisruptionbudget.ts';
import type { DeleteOptions, Registry } from './registry.ts';

const podsRes = findResource('', 'v1', 'pods')!;
const pdbsRes = findResource('policy', 'v1', 'poddisruptionbudgets')!;

/** Kube's MaxDisruptedPodSize: evictions the disruption controller has not confirmed yet, per budget. */
export const MAX_DISRUPTED_POD_SIZE = 2000;
/** Kube's EvictionsRetry: 20 tries, 500 ms apart (here 100 ms: one store, no etcd round trips). */
const RETRIES = 20;
const RETRY_MS = 100;

const EVICTION = { group: 'policy', version: 'v1', kind: 'Eviction' } as const;
const EVICTION_VERSIONS = ['policy/v1', 'policy/v1beta1'];

export type EvictOptions = DeleteOptions & { dryRun?: boolean };

/** podutil.IsPodReady: the Ready condition is True. */
export function isPodReady(pod: KubeObject): boolean {
  return (pod.status?.conditions ?? []).some((c: any) => c?.type === 'Ready' && c.status === 'True');
}

/**
 * The request body as an Eviction (policy/v1, or v1beta1 for old clients): its name must be the URL's;
 * its deleteOptions are returned raw for the caller to decode as a DELETE's body.
 */
export function decodeEviction(body: unknown, urlNamespace: string, urlName: string): { deleteOptions: Record<string, any>; dryRun: boolean } {
  if (!isObject(body)) throw errors.badRequest('the request body must be an Eviction object');
  const bad = typeErrors(EVICTION, body);
  if (bad.length) throw errors.badRequest(`Eviction in version "v1" cannot be handled as a Eviction: ${bad[0]}`);
  if (body.kind !== undefined && body.kind !== 'Eviction') throw errors.badRequest(`not a Eviction object: ${String(body.kind)}`);
  if (body.apiVersion !== undefined && !EVICTION_VERSIONS.includes(body.apiVersion)) {
    throw errors.badRequest(`the API version in the data (${String(body.apiVersion)}) does not match the expected API version (policy/v1)`);
  }
  if (body.metadata?.namespace !== undefined && body.metadata.namespace !== urlNamespace) {
    throw errors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
  }
  if (body.metadata?.name !== urlName) throw errors.badRequest('name in URL does not match name in Eviction object');
  const deleteOptions = isObject(body.deleteOptions) ? body.deleteOptions : {};
  const dryRun: unknown[] = Array.isArray(deleteOptions.dryRun) ? deleteOptions.dryRun : [];
  const unsupported = dryRun.find((v) => v !== 'All');
  if (unsupported !== undefined) {
    throw errors.invalid('DeleteOptions', 'meta.k8s.io', '', [{ reason: 'FieldValueNotSupported', field: 'dryRun', message: `Unsupported value: ${JSON.stringify(unsupported)}: supported values: "All"` }]);
  }
  return { deleteOptions, dryRun: dryRun.length > 0 };
}

const created = (): Status => ({ ...successStatus(), code: 201 });
const isConflict = (e: unknown) => e instanceof ApiError && e.reason === 'Conflict';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms * (0.9 + Math.random() * 0.2)));

const VIOLATES = "Cannot evict pod as it would violate the pod's disruption budget.";

/** createTooManyRequestsError: the budget has not been brought up to date for its spec yet. */
function budgetInProgress(pdbName: string): ApiError {
  return new ApiError('TooManyRequests', VIOLATES, {
    retryAfterSeconds: 10,
    causes: [{ reason: 'DisruptionBudget', message: `The disruption budget ${pdbName} is still being processed by the server.` }],
  });
}

function forbidden(pdbName: string, why: string): ApiError {
  return new ApiError('Forbidden', `poddisruptionbudgets.policy "${pdbName}" is forbidden: ${why}`, { name: pdbName, group: 'policy', kind: 'poddisruptionbudgets' });
}

/** canIgnorePDB: the pod's disruption has already happened (or it never ran). */
const canIgnoreBudget = (pod: KubeObject) => ['Succeeded', 'Failed', 'Pending'].includes(pod.status?.phase) || !!pod.metadata.deletionTimestamp;
/** shouldEnforceResourceVersion: a pod that could still become Ready is deleted only as it was read. */
const shouldEnforceRV = (pod: KubeObject) => !['Succeeded', 'Failed'].includes(pod.status?.phase) && !pod.metadata.deletionTimestamp;
const withRV = (o: EvictOptions, rv: string | undefined): EvictOptions => ({ ...o, preconditions: { ...(o.preconditions ?? {}), resourceVersion: rv } });

/** The budgets selecting the pod (a missing selector selects nothing, an empty one everything; a bad one nothing). */
async function budgetsOf(registry: Registry, pod: KubeObject): Promise<KubeObject[]> {
  const all = (await registry.list(pdbsRes, pod.metadata.namespace)).items;
  return all.filter((pdb) => {
    try {
      return labelSelectorFromMetav1(pdb.spec?.selector).matches(pod.metadata.labels ?? {});
    } catch {
      return false;
    }
  });
}

/**
 * checkAndDecrement, inside the budget's compare-and-swap: throws the refusal, or spends one disruption
 * and records the pod (not on a dry run, which only checks).
 */
async function spendDisruption(registry: Registry, ns: string, pdbName: string, podName: string, dryRun: boolean): Promise<void> {
  const now = new Date();
  await registry.guaranteedUpdate(pdbsRes, ns, pdbName, undefined, { subresource: 'status', dryRun }, (pdb) => {
    const status = (pdb.status ??= {});
    if ((status.observedGeneration ?? 0) < (pdb.metadata.generation ?? 0)) throw budgetInProgress(pdbName);
    const allowed = status.disruptionsAllowed ?? 0;
    if (allowed < 0) throw forbidden(pdbName, 'pdb disruptions allowed is negative');
    if (Object.keys(status.disruptedPods ?? {}).length > MAX_DISRUPTED_POD_SIZE) {
      throw forbidden(pdbName, 'DisruptedPods map too big - too many evictions not confirmed by PDB controller');
    }
    if (allowed === 0) {
      throw new ApiError('TooManyRequests', VIOLATES, {
        causes: [{ reason: 'DisruptionBudget', message: `The disruption budget ${pdbName} needs ${status.desiredHealthy ?? 0} healthy pods and has ${status.currentHealthy ?? 0} currently` }],
      });
    }
    status.disruptionsAllowed = allowed - 1;
    if (status.disruptionsAllowed === 0) setDisruptionAllowedCondition(status, now);
    status.disruptedPods = { ...(status.disruptedPods ?? {}), [podName]: now.toISOString().replace(/\.\d{3}Z$/, 'Z') };
    return pdb;
  });
}

/**
 * addConditionAndDeletePod: marks the pod DisruptionTarget (so its controller and owner see why it went),
 * under the same preconditions as the delete, then deletes it. A resourceVersion precondition follows the
 * condition's own write.
 */
async function markAndDelete(registry: Registry, ns: string, name: string, o: EvictOptions): Promise<void> {
  if (!o.dryRun) {
    const pre = o.preconditions;
    const updated = await registry.guaranteedUpdate(podsRes, ns, name, undefined, { subresource: 'status' }, (pod) => {
      if (pre?.uid && pre.uid !== pod.metadata.uid) {
        throw errors.conflict('Pod', '', name, `the UID in the precondition (${pre.uid}) does not match the UID in record (${pod.metadata.uid}). The object might have been deleted and then recreated`);
      }
      if (pre?.resourceVersion && pre.resourceVersion !== pod.metadata.resourceVersion) {
        throw errors.conflict('Pod', '', name, `the ResourceVersion in the precondition (${pre.resourceVersion}) does not match the ResourceVersion in record (${pod.metadata.resourceVersion}). The object might have been modified`);
      }
      const status = (pod.status ??= {});
      const conds: any[] = (status.conditions ??= []);
      const cur = conds.find((c) => c?.type === 'DisruptionTarget');
      const want = { status: 'True', reason: 'EvictionByEvictionAPI', message: 'Eviction API: evicting' };
      if (!cur) conds.push({ type: 'DisruptionTarget', ...want, lastProbeTime: null, lastTransitionTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') });
      else {
        if (cur.status !== want.status) cur.lastTransitionTime = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
        Object.assign(cur, want);
      }
      return pod;
    });
    if (pre?.resourceVersion) o = withRV(o, updated.metadata.resourceVersion);
  }
  await registry.delete(podsRes, ns, name, o);
}

/** POST pods/{name}/eviction: evicts the pod, or says why not. */
export async function evictPod(registry: Registry, ns: string, name: string, opts: EvictOptions): Promise<Status> {
  const clientRV = !!opts.preconditions?.resourceVersion;
  let pod: KubeObject;
  // A pod whose disruption has already happened goes without a budget. Conflicts (it changed between the
  // read and the delete) are retried unless the client's own resourceVersion was the precondition.
  for (let attempt = 1; ; attempt++) {
    pod = await registry.get(podsRes, ns, name);
    if (!canIgnoreBudget(pod)) break;
    try {
      await markAndDelete(registry, ns, name, shouldEnforceRV(pod) && !clientRV ? withRV(opts, pod.metadata.resourceVersion) : opts);
      return created();
    } catch (e) {
      if (!isConflict(e) || clientRV || attempt >= RETRIES) throw e;
      await sleep(RETRY_MS);
    }
  }

  const budgets = await budgetsOf(registry, pod);
  if (budgets.length > 1) {
    return failureStatus('This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.', 500);
  }
  let guardByRV = false;
  const pdb = budgets[0];
  if (pdb) {
    const s = pdb.status ?? {};
    const spareUnhealthy = !isPodReady(pod) && (pdb.spec?.unhealthyPodEvictionPolicy === 'AlwaysAllow' || ((s.currentHealthy ?? 0) >= (s.desiredHealthy ?? 0) && (s.desiredHealthy ?? 0) > 0));
    // An unhealthy pod counts toward neither currentHealthy nor desiredHealthy: deleting it spends nothing.
    if (spareUnhealthy) guardByRV = true;
    else await spendDisruption(registry, ns, pdb.metadata.name!, name, !!opts.dryRun);
  }
  try {
    await markAndDelete(registry, ns, name, guardByRV ? withRV(opts, pod.metadata.resourceVersion) : opts);
  } catch (e) {
    // The unhealthy pod changed (it may be Ready now): the client retries and it is decided again.
    if (isConflict(e) && guardByRV && !clientRV) throw budgetInProgress(pdb!.metadata.name!);
    throw e;
  }
  return created();
}
