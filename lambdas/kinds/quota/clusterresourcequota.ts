// ClusterResourceQuota (quota.skiff.io/v1, cluster-scoped), modelled on OpenShift's
// quota.openshift.io/v1 ClusterResourceQuota: one quota shared by every namespace its spec.selector
// picks (a label selector on namespaces, and/or annotations they must carry), with spec.quota a
// ResourceQuotaSpec. status.total is the quota over all of them, status.namespaces[] each namespace's
// part ({namespace, status: {hard, used}}). Charged in the create's own write as ResourceQuota is
// (apiserver/admission-quota.ts); the controller (controllers/clusterresourcequota.ts) keeps status.

import { labelSelectorFromMetav1 } from '../../machinery/selectors.ts';
import { ageCol, col, nameCol, since, str } from '../../machinery/table.ts';
import { isObject, type KubeObject } from '../../machinery/types.ts';
import { nameIsDNSSubdomain, obj, type ErrorList } from '../../machinery/validation.ts';
import { quotaCells, validateResourceList, validateResourceQuotaSpec } from '../core/resourcequota.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

/** Whether the quota's selector picks this namespace (labels and annotations both, where given). */
export function selectsNamespace(crq: KubeObject, ns: KubeObject): boolean {
  const sel = obj(crq.spec?.selector);
  const hasLabels = isObject(sel.labels);
  const annotations = isObject(sel.annotations) ? (sel.annotations as Record<string, string>) : undefined;
  if (!hasLabels && !annotations) return false;
  if (hasLabels) {
    try {
      if (!labelSelectorFromMetav1(sel.labels).matches(ns.metadata.labels ?? {})) return false;
    } catch {
      return false;
    }
  }
  const have = ns.metadata.annotations ?? {};
  return !annotations || Object.entries(annotations).every(([k, v]) => have[k] === v);
}

export const clusterResourceQuota: KindStrategy = {
  info: resourceInfo('quota.skiff.io', 'v1', 'ClusterResourceQuota', 'clusterresourcequotas', false, { shortNames: ['clusterquota'], subresources: ['status'] }),
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: false },
  validate: (errs: ErrorList, o) => {
    const sel = obj(o.spec?.selector);
    // OpenShift's ValidateClusterResourceQuota.
    if (!isObject(sel.labels) && !isObject(sel.annotations)) errs.required('spec.selector', 'must restrict the selected projects');
    if (isObject(sel.labels)) {
      try {
        labelSelectorFromMetav1(sel.labels);
      } catch (e) {
        errs.invalid('spec.selector.labels', sel.labels, (e as Error).message);
      }
    }
    validateResourceQuotaSpec(errs, obj(o.spec?.quota), 'spec.quota');
    validateResourceList(errs, o.status?.total?.hard, 'status.total.hard');
    validateResourceList(errs, o.status?.total?.used, 'status.total.used');
  },
  prepareForCreate: (o) => {
    delete o.status;
  },
  prepareForUpdate: (o, old, subresource) => {
    if (!subresource) o.status = old.status;
    else if (subresource === 'status') o.spec = old.spec;
  },
  table: {
    columns: () => [
      nameCol(),
      col('Namespaces', 'integer', 'How many namespaces the selector picks'),
      ageCol(),
      col('Request', 'string', 'Usage and limits of the resources that are not limits.*, over all selected namespaces.'),
      col('Limit', 'string', 'Usage and limits of limits.* over all selected namespaces.'),
    ],
    print: (o, now) => {
      const [req, lim] = quotaCells({ status: obj(o.status?.total) });
      return { cells: [str(o.metadata?.name), Array.isArray(o.status?.namespaces) ? o.status.namespaces.length : 0, since(o.metadata?.creationTimestamp, now), req, lim] };
    },
  },
};
