// ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1): pkg/registry/admissionregistration/
// validatingadmissionpolicy. Enforced by apiserver/admission-policy.ts. Its status subresource is served,
// but status.typeChecking stays empty: Skiff does not type-check expressions against paramKind's or the
// matched kinds' schemas (every variable is dyn), so there are no type warnings to report.

import { ageCol, col, int, since, str, nameCol } from '../../machinery/table.ts';
import { nameIsDNSSubdomain } from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';
import { defaultMatchResources, validatePolicySpec } from './validation.ts';

export const validatingAdmissionPolicy: KindStrategy = {
  info: resourceInfo('admissionregistration.k8s.io', 'v1', 'ValidatingAdmissionPolicy', 'validatingadmissionpolicies', false, {
    categories: ['api-extensions'],
    subresources: ['status'],
  }),
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: false },
  defaults(o) {
    if (!o.spec || typeof o.spec !== 'object') return;
    o.spec.failurePolicy ??= 'Fail';
    defaultMatchResources(o.spec.matchConstraints);
  },
  validate: validatePolicySpec,
  prepareForCreate(o) {
    delete o.status;
  },
  prepareForUpdate(o, old, subresource) {
    if (subresource === 'status') o.spec = old.spec;
    else o.status = old.status;
  },
  table: {
    columns: () => [
      nameCol(),
      col('Validations', 'integer', 'Validations indicates the number of validation rules defined in this configuration'),
      col('ParamKind', 'string', 'ParamKind specifies the kind of resources used to parameterize this policy'),
      ageCol(),
    ],
    print: (o, now) => {
      const pk = o.spec?.paramKind;
      return { cells: [str(o.metadata?.name), int(o.spec?.validations?.length), pk ? `${str(pk.apiVersion)}/${str(pk.kind)}` : '<unset>', since(o.metadata?.creationTimestamp, now)] };
    },
  },
};
