// ValidatingWebhookConfiguration and MutatingWebhookConfiguration (admissionregistration.k8s.io/v1):
// pkg/registry/admissionregistration/{validating,mutating}webhookconfiguration. Called by
// apiserver/admission-webhooks.ts.

import { ageCol, col, since, str, nameCol } from '../../machinery/table.ts';
import { arr, nameIsDNSSubdomain } from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';
import { defaultWebhook, validateWebhooks } from './validation.ts';

function webhookConfiguration(kind: string, resource: string, mutating: boolean): KindStrategy {
  return {
    info: resourceInfo('admissionregistration.k8s.io', 'v1', kind, resource, false, { categories: ['api-extensions'] }),
    meta: { name: nameIsDNSSubdomain, kubeFinalizers: false },
    defaults(o) {
      for (const w of arr(o.webhooks)) if (w && typeof w === 'object') defaultWebhook(w, mutating);
    },
    validate: (errs, o) => validateWebhooks(errs, o, mutating),
    table: {
      columns: () => [nameCol(), col('Webhooks', 'integer', 'Webhooks indicates the number of webhooks registered in this configuration'), ageCol()],
      print: (o, now) => ({ cells: [str(o.metadata?.name), arr(o.webhooks).length, since(o.metadata?.creationTimestamp, now)] }),
    },
  };
}

export const validatingWebhookConfiguration = webhookConfiguration('ValidatingWebhookConfiguration', 'validatingwebhookconfigurations', false);
export const mutatingWebhookConfiguration = webhookConfiguration('MutatingWebhookConfiguration', 'mutatingwebhookconfigurations', true);
