// Secret (core/v1): pkg/registry/core/secret. stringData is write-only (merged into data, never stored);
// each well-known type requires its keys; type is immutable, and so is the data of an immutable Secret.

import { Buffer } from 'node:buffer';
import { ensureObject, setIfMissing } from '../../machinery/defaulting.ts';
import { fieldString, nameField, namespaceField } from '../../machinery/selectors.ts';
import { ageCol, col, CORE, countKeys, doc, nameCol, since, str } from '../../machinery/table.ts';
import { isObject } from '../../machinery/types.ts';
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

type Obj = Record<string, any>;

function defaultSecret(secret: Obj): void {
  setIfMissing(secret, 'type', 'Opaque');
  // stringData is write-only: it is merged into data (overriding it) and never stored.
  if (isObject(secret.stringData)) {
    const data = ensureObject(secret, 'data');
    for (const [k, v] of Object.entries(secret.stringData)) data[k] = Buffer.from(String(v), 'utf8').toString('base64');
  }
  delete secret.stringData;
}

function validateSecret(errs: ErrorList, secret: Record<string, any>): void {
  const data = new Map<string, Buffer>();
  let total = 0;
  for (const [k, v] of Object.entries(obj(secret.data))) {
    errs.each(`data[${k}]`, k, configMapKeyErrors(k));
    const bytes = decodeBase64('Secret', strOf(v));
    data.set(k, bytes);
    total += bytes.length;
  }
  if (total > MAX_SECRET_SIZE) errs.tooLong('data', MAX_SECRET_SIZE);
  const need = (key: string) => {
    if (!data.has(key)) errs.required(`data[${key}]`);
  };
  switch (secret.type) {
    case 'kubernetes.io/service-account-token':
      if (!strOf(secret.metadata?.annotations?.['kubernetes.io/service-account.name'])) errs.required('metadata.annotations[kubernetes.io/service-account.name]');
      break;
    case 'kubernetes.io/dockercfg':
    case 'kubernetes.io/dockerconfigjson': {
      const key = secret.type === 'kubernetes.io/dockercfg' ? '.dockercfg' : '.dockerconfigjson';
      if (!data.has(key)) {
        need(key);
        break;
      }
      try {
        const parsed = JSON.parse(data.get(key)!.toString('utf8'));
        if (!isObject(parsed)) throw new Error('json: cannot unmarshal into Go value of type map[string]interface {}');
      } catch (e) {
        errs.invalid(`data[${key}]`, '<secret contents redacted>', (e as Error).message);
      }
      break;
    }
    case 'kubernetes.io/basic-auth':
      if (!data.has('username') && !data.has('password')) {
        errs.required('data[username]');
        errs.required('data[password]');
      }
      break;
    case 'kubernetes.io/ssh-auth':
      if (!data.get('ssh-privatekey')?.length) errs.required('data[ssh-privatekey]');
      break;
    case 'kubernetes.io/tls':
      need('tls.crt');
      need('tls.key');
      break;
  }
}

export const secret: KindStrategy = {
  info: resourceInfo('', 'v1', 'Secret', 'secrets', true),
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: true },
  defaults: defaultSecret,
  validate: validateSecret,
  validateUpdate: (errs, o, old) => {
    if (strOf(o.type) !== strOf(old.type)) errs.invalid('type', strOf(o.type), 'field is immutable');
    validateImmutableData(errs, o, old, ['data']);
  },
  table: {
    columns: () => [nameCol(), col('Type', 'string', doc(`${CORE}Secret`, 'type')), col('Data', 'string', doc(`${CORE}Secret`, 'data')), ageCol()],
    print: (o, now) => ({ cells: [str(o.metadata?.name), str(o.type), countKeys(o.data), since(o.metadata?.creationTimestamp, now)] }),
  },
  fieldSelectors: {
    fields: {
      type: (o) => fieldString(o.type),
      'metadata.namespace': namespaceField,
      'metadata.name': nameField,
    },
  },
};
