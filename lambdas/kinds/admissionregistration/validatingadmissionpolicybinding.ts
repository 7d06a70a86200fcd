// ValidatingAdmissionPolicyBinding (admissionregistration.k8s.io/v1): binds a policy to resources, with
// its parameters and what a failed validation does (Deny, Warn, Audit). apiserver/admission-policy.ts.

import { ageCol, col, since, str, nameCol } from '../../machinery/table.ts';
import { nameIsDNSSubdomain } from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';
import { defaultMatchResources, validateBindingSpec } from './validation.ts';
import { formatLabelSelector } from '../../machinery/metav1-validation.ts';

export const validatingAdmissionPolicyBinding: KindStrategy = {
  info: resourceInfo('admissionregistration.k8s.io', 'v1', 'ValidatingAdmissionPolicyBinding', 'validatingadmissionpolicybindings', false, {
    categories: ['api-extensions'],
  }),
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: false },
  defaults(o) {
    if (o.spec && typeof o.spec === 'object') defaultMatchResources(o.spec.matchResources);
  },
  validate: validateBindingSpec,
  table: {
    columns: () => [
      nameCol(),
      col('PolicyName', 'string', 'PolicyName indicates the policy definition which the policy binding binded to'),
      col('ParamRef', 'string', 'ParamRef indicates the param resource which sets the configration param'),
      ageCol(),
    ],
    print: (o, now) => {
      const pr = o.spec?.paramRef;
      let ref = '<unset>';
      if (pr?.name) ref = pr.namespace ? `${pr.namespace}/${pr.name}` : `*/${pr.name}`;
      else if (pr?.selector) ref = `${pr.namespace ? pr.namespace : '*'}/${formatLabelSelector(pr.selector)}`;
      return { cells: [str(o.metadata?.name), str(o.spec?.policyName), ref, since(o.metadata?.creationTimestamp, now)] };
    },
  },
};
