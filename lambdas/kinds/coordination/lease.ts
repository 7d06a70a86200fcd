// Lease (coordination.k8s.io/v1): pkg/registry/coordination/lease. Node heartbeats, and the scheduler's
// per-node reservations (skiff-alloc-<node> in kube-node-lease).

import { ageCol, col, doc, nameCol, since, str } from '../../machinery/table.ts';
import { nameIsDNSSubdomain, obj, present, strOf, type ErrorList } from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

// pkg/apis/coordination/validation
function validateLease(errs: ErrorList, lease: Record<string, any>): void {
  const spec = obj(lease.spec);
  if (present(spec.leaseDurationSeconds) && !(spec.leaseDurationSeconds > 0)) errs.invalid('spec.leaseDurationSeconds', spec.leaseDurationSeconds, 'must be greater than 0');
  if (present(spec.leaseTransitions) && !(spec.leaseTransitions >= 0)) errs.invalid('spec.leaseTransitions', spec.leaseTransitions, 'must be greater than or equal to 0');
  if (present(spec.strategy)) {
    if (spec.strategy !== 'OldestEmulationVersion') errs.notSupported('spec.strategy', spec.strategy, ['OldestEmulationVersion']);
  }
  if (strOf(spec.preferredHolder) && !strOf(spec.strategy)) errs.forbidden('spec.preferredHolder', 'may only be specified if `strategy` is defined');
}

export const lease: KindStrategy = {
  info: resourceInfo('coordination.k8s.io', 'v1', 'Lease', 'leases', true),
  // Not a core kind: unqualified finalizers need not be Kubernetes' standard ones.
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: false },
  validate: validateLease,
  table: {
    columns: () => [nameCol(), col('Holder', 'string', doc('io.k8s.api.coordination.v1.LeaseSpec', 'holderIdentity')), ageCol()],
    print: (o, now) => ({ cells: [str(o.metadata?.name), str(o.spec?.holderIdentity), since(o.metadata?.creationTimestamp, now)] }),
  },
};
