// Namespace (core/v1): pkg/registry/core/namespace. A new namespace is Active with the "kubernetes"
// finalizer; spec.finalizers changes only through /finalize and status only through /status; a delete
// makes it Terminating, and it stays until the namespace controller has emptied it and cleared
// spec.finalizers.

import { ensureObject } from '../../machinery/defaulting.ts';
import { fieldString, nameField } from '../../machinery/selectors.ts';
import { ageCol, col, nameCol, since, str } from '../../machinery/table.ts';
import type { KubeObject } from '../../machinery/types.ts';
import { arr, jsonEqual, labelKeyErrors, nameIsDNSLabel, present, STANDARD_FINALIZERS, strOf, type ErrorList } from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

type Obj = Record<string, any>;

function defaultNamespace(ns: Obj): void {
  const spec = ensureObject(ns, 'spec');
  const status = ensureObject(ns, 'status');
  if (!status.phase) {
    // PrepareForCreate: a new namespace is Active and carries the "kubernetes" finalizer. This is not a
    // default on later writes: the namespace controller removes the finalizer to finish a deletion.
    status.phase = 'Active';
    const finalizers: unknown[] = Array.isArray(spec.finalizers) ? spec.finalizers : [];
    if (!finalizers.includes('kubernetes')) spec.finalizers = [...finalizers, 'kubernetes'];
  }
}

function validateNamespaceFinalizers(errs: ErrorList, finalizers: unknown, indexed: boolean): void {
  arr(finalizers).forEach((f, i) => {
    const field = indexed ? `spec.finalizers[${i}]` : 'spec.finalizers';
    const name = strOf(f);
    errs.each(field, name, labelKeyErrors(name));
    if (name.split('/').length === 1 && !STANDARD_FINALIZERS.has(name)) errs.invalid(field, name, 'name is neither a standard finalizer name nor is it fully qualified');
  });
}

export const namespace: KindStrategy = {
  info: resourceInfo('', 'v1', 'Namespace', 'namespaces', false, {
    shortNames: ['ns'],
    verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
    subresources: ['status', 'finalize'],
  }),
  meta: { name: nameIsDNSLabel, kubeFinalizers: true },
  defaults: defaultNamespace,
  validateCreate: (errs, o) => validateNamespaceFinalizers(errs, o.spec?.finalizers, false),
  validateUpdate: (errs, o, old, opts) => {
    if (opts.subresource === 'finalize') validateNamespaceFinalizers(errs, o.spec?.finalizers, true);
    if (opts.subresource === 'status' || !jsonEqual(o.status, old.status)) {
      const phase = strOf(o.status?.phase);
      if (!present(o.metadata?.deletionTimestamp)) {
        if (phase !== 'Active') errs.invalid('status.Phase', phase, "may only be 'Active' if `deletionTimestamp` is empty");
      } else if (phase !== 'Terminating') {
        errs.invalid('status.Phase', phase, "may only be 'Terminating' if `deletionTimestamp` is not empty");
      }
    }
  },
  prepareForCreate: (o) => {
    delete o.status;
  },
  prepareForUpdate: (o, old, subresource) => {
    if (subresource) return;
    // spec.finalizers changes only through /finalize; status only through /status.
    o.spec = { ...(o.spec ?? {}), finalizers: old.spec?.finalizers };
    if (o.spec.finalizers === undefined) delete o.spec.finalizers;
    o.status = old.status;
  },
  prepareForDelete: (o) => {
    o.status = { ...(o.status ?? {}), phase: 'Terminating' };
  },
  // Namespaces stay Terminating until the namespace controller empties them and clears spec.finalizers.
  finalizing: (o: KubeObject) => Array.isArray(o.spec?.finalizers) && o.spec.finalizers.length > 0,
  table: {
    columns: () => [nameCol(), col('Status', 'string', 'The status of the namespace'), ageCol()],
    print: (o, now) => ({ cells: [str(o.metadata?.name), str(o.status?.phase), since(o.metadata?.creationTimestamp, now)] }),
  },
  fieldSelectors: {
    fields: {
    'status.phase': (o) => fieldString(o.status?.phase),
    'metadata.name': nameField,
    },
  },
};
