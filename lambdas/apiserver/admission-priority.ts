// Priority, as kube-apiserver's admission plugin (plugin/pkg/admission/priority): a new pod's
// priorityClassName is resolved to spec.priority and spec.preemptionPolicy (a class that does not exist is
// refused); a pod naming no class gets the globalDefault class, if any (else priority 0). An update keeps
// the priority the create set. A PriorityClass may only be marked globalDefault while no other one is.
// The classes are read from the store on each pod create (a get by name, or a list for the default): kube
// reads an informer's cache instead.

import { findResource } from '../machinery/resources.ts';
import { ApiError, qualifiedResource } from '../machinery/status.ts';
import type { KubeObject } from '../machinery/types.ts';
import type { AdmissionPlugin } from './admission.ts';
import type { Registry } from './registry.ts';

const priorityClasses = () => findResource('scheduling.k8s.io', 'v1', 'priorityclasses');

/** admission.NewForbidden: `<resource> "<name>" is forbidden: <why>`. */
function forbidden(resource: string, group: string, name: string, why: string): ApiError {
  return new ApiError('Forbidden', `${qualifiedResource(resource, group)} "${name}" is forbidden: ${why}`, { name, ...(group ? { group } : {}), kind: resource });
}

/** The globalDefault class; when a race left several, the one with the lowest value. */
async function defaultClass(registry: Registry): Promise<KubeObject | undefined> {
  const res = priorityClasses();
  if (!res) return undefined;
  let found: KubeObject | undefined;
  for (const pc of (await registry.list(res, undefined)).items) {
    if (pc.globalDefault === true && (!found || (found.value ?? 0) > (pc.value ?? 0))) found = pc;
  }
  return found;
}

export const priorityAdmission: AdmissionPlugin = {
  name: 'Priority',
  async admit(req, registry) {
    if (req.subresource || !req.object || (req.operation !== 'CREATE' && req.operation !== 'UPDATE')) return;
    const r = req.resource;
    if (r.group === '' && r.resource === 'pods') {
      const pod = req.object;
      const spec = (pod.spec ??= {}) as Record<string, any>;
      const name = pod.metadata?.name ?? req.name ?? '';
      if (req.operation === 'UPDATE') {
        // The create set them; a client that sends the pod back without them keeps them.
        if (spec.priority === undefined || spec.priority === null || spec.preemptionPolicy === undefined || spec.preemptionPolicy === null) {
          const old = req.oldObject ?? (await registry.get(r, req.namespace, req.name ?? name).catch(() => undefined));
          if (old && (spec.priority === undefined || spec.priority === null) && typeof old.spec?.priority === 'number') spec.priority = old.spec.priority;
          if (old && (spec.preemptionPolicy === undefined || spec.preemptionPolicy === null) && old.spec?.preemptionPolicy) spec.preemptionPolicy = old.spec.preemptionPolicy;
        }
        return;
      }
      let priority = 0;
      let policy: string | undefined = 'PreemptLowerPriority';
      const className = typeof spec.priorityClassName === 'string' ? spec.priorityClassName : '';
      if (!className) {
        // An empty name is Go's zero value, which the pod is written without.
        delete spec.priorityClassName;
        const dpc = await defaultClass(registry);
        if (dpc) {
          spec.priorityClassName = dpc.metadata.name;
          priority = dpc.value ?? 0;
          policy = dpc.preemptionPolicy;
        }
      } else {
        const res = priorityClasses();
        const pc = res ? await registry.get(res, undefined, className).catch((e) => {
          if (e instanceof ApiError && e.code === 404) return undefined;
          throw e;
        }) : undefined;
        if (!pc) throw forbidden('pods', '', name, `no PriorityClass with name ${className} was found`);
        priority = pc.value ?? 0;
        policy = pc.preemptionPolicy;
      }
      if (typeof spec.priority === 'number' && spec.priority !== priority) {
        throw forbidden('pods', '', name, `the integer value of priority (${spec.priority}) must not be provided in pod spec; priority admission controller computed ${priority} from the given PriorityClass name`);
      }
      spec.priority = priority;
      if (policy) {
        if (typeof spec.preemptionPolicy === 'string' && spec.preemptionPolicy !== policy) {
          throw forbidden('pods', '', name, `the string value of PreemptionPolicy (${spec.preemptionPolicy}) must not be provided in pod spec; priority admission controller computed ${policy} from the given PriorityClass name`);
        }
        spec.preemptionPolicy = policy;
      }
      return;
    }
    if (r.group === 'scheduling.k8s.io' && r.resource === 'priorityclasses' && req.object.globalDefault === true) {
      const dpc = await defaultClass(registry);
      const name = req.object.metadata?.name ?? req.name ?? '';
      if (dpc && (req.operation === 'CREATE' || dpc.metadata.name !== name)) {
        throw forbidden(r.resource, r.group, name, `PriorityClass ${dpc.metadata.name} is already marked as default. Only one default can exist`);
      }
    }
  },
};
