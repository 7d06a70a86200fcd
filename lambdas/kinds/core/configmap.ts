// ConfigMap (core/v1): pkg/registry/core/configmap. Keys are checked, data and binaryData together hold
// at most 1 MiB, and an immutable ConfigMap keeps its data.

import { Buffer } from 'node:buffer';
import { ageCol, col, CORE, countKeys, doc, nameCol, since, str } from '../../machinery/table.ts';
import {
  configMapKeyErrors,
  decodeBase64,
  MAX_SECRET_SIZE,
  nameIsDNSSubdomain,
  obj,
  strOf,
  validateImmutableData,
  type ErrorList,
} from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

function validateConfigMap(errs: ErrorList, cm: Record<string, any>): void {
  let total = 0;
  const binary = obj(cm.binaryData);
  for (const [k, v] of Object.entries(obj(cm.data))) {
    errs.each(`data[${k}]`, k, configMapKeyErrors(k));
    if (Object.prototype.hasOwnProperty.call(binary, k)) errs.invalid(`data[${k}]`, k, 'duplicate of key present in binaryData');
    total += Buffer.byteLength(strOf(v));
  }
  for (const [k, v] of Object.entries(binary)) {
    errs.each(`binaryData[${k}]`, k, configMapKeyErrors(k));
    total += decodeBase64('ConfigMap', strOf(v)).length;
  }
  // as upstream: the size error names the whole object (an empty field path).
  if (total > MAX_SECRET_SIZE) errs.tooLong('', MAX_SECRET_SIZE);
}

export const configMap: KindStrategy = {
  info: resourceInfo('', 'v1', 'ConfigMap', 'configmaps', true, { shortNames: ['cm'] }),
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: true },
  validate: validateConfigMap,
  validateUpdate: (errs, o, old) => validateImmutableData(errs, o, old, ['data', 'binaryData']),
  table: {
    columns: () => [nameCol(), col('Data', 'string', doc(`${CORE}ConfigMap`, 'data')), ageCol()],
    print: (o, now) => ({ cells: [str(o.metadata?.name), countKeys(o.data) + countKeys(o.binaryData), since(o.metadata?.creationTimestamp, now)] }),
  },
};
