// ServiceAccount (core/v1): pkg/registry/core/serviceaccount. Data, plus the token subresource
// (TokenRequest: apiserver/tokenrequest.ts, served by app.ts); pods name theirs in spec.serviceAccountName
// ("default" when left out: admission-serviceaccount.ts).

import { ageCol, col, CORE, doc, nameCol, since, str } from '../../machinery/table.ts';
import { nameIsDNSSubdomain } from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

export const serviceAccount: KindStrategy = {
  info: resourceInfo('', 'v1', 'ServiceAccount', 'serviceaccounts', true, { shortNames: ['sa'], subresources: ['token'] }),
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: true },
  table: {
    columns: () => [nameCol(), col('Secrets', 'string', doc(`${CORE}ServiceAccount`, 'secrets')), ageCol()],
    print: (o, now) => ({ cells: [str(o.metadata?.name), Array.isArray(o.secrets) ? o.secrets.length : 0, since(o.metadata?.creationTimestamp, now)] }),
  },
};
