// Event (core/v1): pkg/registry/core/event. Only the legacy checks (events.k8s.io is stricter); names are
// checked as the generic store checks them (path segments), since event names carry dots and more.

import { fieldString, nameField, namespaceField } from '../../machinery/selectors.ts';
import { col, CORE, doc, int, META, since, str, type Printed } from '../../machinery/table.ts';
import { isObject } from '../../machinery/types.ts';
import { dns1123SubdomainErrors, labelKeyErrors, obj, pathSegmentName, present, strOf, type ErrorList } from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

type Obj = Record<string, any>;

/** core/v1 Events get only the legacy checks (events.k8s.io is stricter). */
function validateEvent(errs: ErrorList, ev: Record<string, any>): void {
  const ns = strOf(ev.metadata?.namespace);
  const io = obj(ev.involvedObject);
  const ioNs = strOf(io.namespace);
  if (!present(ev.eventTime)) {
    if (!ioNs) {
      if (ns !== '' && ns !== 'default') errs.invalid('involvedObject.namespace', ioNs, 'does not match event.namespace');
    } else if (ns !== ioNs) {
      errs.invalid('involvedObject.namespace', ioNs, 'does not match event.namespace');
    }
  } else {
    if (!ioNs && ns !== 'default' && ns !== 'kube-system') errs.invalid('involvedObject.namespace', ioNs, 'does not match event.namespace');
    const rc = strOf(ev.reportingComponent);
    if (!rc) errs.required('reportingController');
    errs.each('reportingController', rc, labelKeyErrors(rc));
    const ri = strOf(ev.reportingInstance);
    if (!ri) errs.required('reportingInstance');
    if (ri.length > 128) errs.invalid('reportingInstance', '', 'can have at most 128 characters');
    if (!strOf(ev.action)) errs.required('action');
    if (strOf(ev.action).length > 128) errs.invalid('action', '', 'can have at most 128 characters');
    if (!strOf(ev.reason)) errs.required('reason');
    if (strOf(ev.reason).length > 128) errs.invalid('reason', '', 'can have at most 128 characters');
    if (strOf(ev.message).length > 1024) errs.invalid('message', '', 'can have at most 1024 characters');
  }
  errs.each('namespace', ns, dns1123SubdomainErrors(ns));
}

function printEvent(ev: Obj, now: Date): Printed {
  let first = since(ev.firstTimestamp, now);
  if (!ev.firstTimestamp) first = since(ev.eventTime, now);
  let last = ev.lastTimestamp ? since(ev.lastTimestamp, now) : first;
  let count = int(ev.count);
  if (isObject(ev.series)) {
    last = since(ev.series.lastObservedTime, now);
    count = int(ev.series.count);
  } else if (count === 0) {
    count = 1; // singleton events of the new API carry no count
  }
  const io: Obj = isObject(ev.involvedObject) ? ev.involvedObject : {};
  const kind = str(io.kind).toLowerCase();
  const target = str(io.name) ? `${kind}/${str(io.name)}` : kind;
  const component = str(ev.source?.component) || str(ev.reportingComponent);
  const instance = str(ev.source?.host) || str(ev.reportingInstance);
  return {
    cells: [last, str(ev.type), str(ev.reason), target, str(io.fieldPath), instance ? `${component}, ${instance}` : component, str(ev.message).trim(), first, count, str(ev.metadata?.name)],
  };
}

export const event: KindStrategy = {
  info: resourceInfo('', 'v1', 'Event', 'events', true, { shortNames: ['ev'] }),
  meta: { name: pathSegmentName, kubeFinalizers: false },
  validate: validateEvent,
  // Events are a recent record, not state: each expires --event-ttl after its last write.
  ttlSeconds: ({ eventTtlSeconds }) => eventTtlSeconds,
  table: {
    columns: () => [
      col('Last Seen', 'string', doc(`${CORE}Event`, 'lastTimestamp')),
      col('Type', 'string', doc(`${CORE}Event`, 'type')),
      col('Reason', 'string', doc(`${CORE}Event`, 'reason')),
      col('Object', 'string', doc(`${CORE}Event`, 'involvedObject')),
      col('Subobject', 'string', doc(`${CORE}ObjectReference`, 'fieldPath'), 1),
      col('Source', 'string', doc(`${CORE}Event`, 'source'), 1),
      col('Message', 'string', doc(`${CORE}Event`, 'message')),
      col('First Seen', 'string', doc(`${CORE}Event`, 'firstTimestamp'), 1),
      col('Count', 'string', doc(`${CORE}Event`, 'count'), 1),
      col('Name', 'string', doc(META, 'name'), 1, 'name'),
    ],
    print: printEvent,
  },
  fieldSelectors: {
    fields: {
      'involvedObject.kind': (o) => fieldString(o.involvedObject?.kind),
      'involvedObject.namespace': (o) => fieldString(o.involvedObject?.namespace),
      'involvedObject.name': (o) => fieldString(o.involvedObject?.name),
      'involvedObject.uid': (o) => fieldString(o.involvedObject?.uid),
      'involvedObject.apiVersion': (o) => fieldString(o.involvedObject?.apiVersion),
      'involvedObject.resourceVersion': (o) => fieldString(o.involvedObject?.resourceVersion),
      'involvedObject.fieldPath': (o) => fieldString(o.involvedObject?.fieldPath),
      reason: (o) => fieldString(o.reason),
      reportingComponent: (o) => fieldString(o.reportingComponent),
      // The event registry falls back to reportingComponent when source.component is empty.
      source: (o) => fieldString(o.source?.component) || fieldString(o.reportingComponent),
      type: (o) => fieldString(o.type),
      'metadata.namespace': namespaceField,
      'metadata.name': nameField,
    },
  },
};
