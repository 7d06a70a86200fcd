// ControllerRevision (apps/v1): pkg/registry/apps/controllerrevision. Immutable snapshots of a DaemonSet's
// or StatefulSet's pod template (their revision history, kubectl rollout history/undo): data is required
// and never changes, revision is not negative (ValidateControllerRevision, ValidateControllerRevisionUpdate).
// kubectl's columns name the owning controller as printers.go does ("daemonset.apps/web").

import { ageCol, col, doc, int, nameCol, since, str, type Printed } from '../../machinery/table.ts';
import { objectList } from '../../machinery/types.ts';
import { GoStruct, jsonEqual, nameIsDNSSubdomain, present, type ErrorList } from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';
import { validateNonNegative } from './validation.ts';

type Obj = Record<string, any>;

function validateControllerRevision(errs: ErrorList, cr: Obj): void {
  if (!present(cr.data)) errs.required('data', 'data is mandatory');
  validateNonNegative(errs, cr.revision, 'revision');
}

/** The owning controller as formatResourceName prints it: lower-case kind.group/name, "<none>" without one. */
function controllerOf(cr: Obj): string {
  const ref = objectList(cr.metadata?.ownerReferences).find((r) => r.controller === true);
  if (!ref) return '<none>';
  const apiVersion = str(ref.apiVersion);
  const group = apiVersion.includes('/') ? apiVersion.split('/')[0]! : '';
  const kind = str(ref.kind);
  if (!kind) return str(ref.name);
  return `${(group ? `${kind}.${group}` : kind).toLowerCase()}/${str(ref.name)}`;
}

function printControllerRevision(cr: Obj, now: Date): Printed {
  return { cells: [str(cr.metadata?.name), controllerOf(cr), int(cr.revision), since(cr.metadata?.creationTimestamp, now)] };
}

export const controllerRevision: KindStrategy = {
  info: resourceInfo('apps', 'v1', 'ControllerRevision', 'controllerrevisions', true),
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: true },
  validate: validateControllerRevision,
  validateUpdate: (errs, cr, old) => {
    // The bad value is the internal runtime.Object (a runtime.Unknown), which marshals as the raw data.
    if (!jsonEqual(cr.data, old.data)) errs.invalid('data', new GoStruct(JSON.stringify(cr.data ?? null)), 'field is immutable');
  },
  table: {
    columns: () => [
      nameCol(),
      col('Controller', 'string', 'Controller of the object'),
      col('Revision', 'string', doc('io.k8s.api.apps.v1.ControllerRevision', 'revision')),
      ageCol(),
    ],
    print: printControllerRevision,
  },
};
