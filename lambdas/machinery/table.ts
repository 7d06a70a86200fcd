// Server-side printing: the meta.k8s.io/v1 Table that `kubectl get` asks for (Accept: ...;as=Table).
// Columns and cell logic are Kubernetes' pkg/printers/internalversion/printers.go (v1.32): kubectl prints
// the cells as given, so a pod's STATUS, READY or AGE reads exactly as on a real cluster. As in
// kube-apiserver, rows always carry every column (Wide); kubectl hides priority > 0 ones unless -o wide.

import type { ResourceInfo } from './resources.ts';
import type { KubeObject, ListMeta } from './types.ts';
import { isObject } from './types.ts';
import { SCHEMAS } from './schema.ts';
import { formatLabels } from './selectors.ts';

export interface TableColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

export interface TableRowCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface TableRow {
  cells: unknown[];
  conditions?: TableRowCondition[];
  object?: unknown;
}

export interface Table {
  kind: 'Table';
  apiVersion: 'meta.k8s.io/v1';
  metadata: ListMeta;
  columnDefinitions: TableColumnDefinition[];
  rows: TableRow[];
}

export interface TableOptions {
  includeObject?: 'None' | 'Metadata' | 'Object';
  listMeta?: ListMeta;
  now?: Date;
}

// ---------------------------------------------------------------------------------------------------
// duration.HumanDuration

/** Kubernetes' HumanDuration: about two significant units ("5s", "3m2s", "10m", "3h4m", "2d3h", "12d", "2y3d"). */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  // Up to two seconds in the future still reads as "0s" (clock skew between writers).
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 60 * 2) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 60 * 3) return `${minutes}m`;
  const hours = Math.trunc(seconds / 3600);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.trunc(hours / 24)}d` : `${Math.trunc(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.trunc(hours / 24) % 365;
    const y = Math.trunc(hours / 24 / 365);
    return dy === 0 ? `${y}y` : `${y}y${dy}d`;
  }
  return `${Math.trunc(hours / 24 / 365)}y`;
}

function since(ts: unknown, now: Date): string {
  if (typeof ts !== 'string' || !ts) return '<unknown>';
  const t = Date.parse(ts);
  if (Number.isNaN(t)) return '<unknown>';
  return humanDuration(now.getTime() - t);
}

// ---------------------------------------------------------------------------------------------------
// Column definitions (descriptions are the API's own field docs, as SwaggerDoc() gives them)

function doc(schema: string, field: string): string {
  return SCHEMAS[schema]?.properties?.[field]?.description ?? '';
}

const META = 'io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta';
const CORE = 'io.k8s.api.core.v1.';
const SLICE = 'io.k8s.api.discovery.v1.EndpointSlice';

function col(name: string, type: string, description: string, priority = 0, format = ''): TableColumnDefinition {
  return { name, type, format, description, priority };
}
const nameCol = () => col('Name', 'string', doc(META, 'name'), 0, 'name');
const ageCol = () => col('Age', 'string', doc(META, 'creationTimestamp'));
const CONTAINERS_DOC = 'Names of each container in the template.';
const IMAGES_DOC = 'Images referenced by each container in the template.';

const COLUMNS: Record<string, () => TableColumnDefinition[]> = {
  Pod: () => [
    nameCol(),
    col('Ready', 'string', 'The aggregate readiness state of this pod for accepting traffic.'),
    col('Status', 'string', 'The aggregate status of the containers in this pod.'),
    col('Restarts', 'string', 'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.'),
    ageCol(),
    col('IP', 'string', doc(`${CORE}PodStatus`, 'podIP'), 1),
    col('Node', 'string', doc(`${CORE}PodSpec`, 'nodeName'), 1),
    col('Nominated Node', 'string', doc(`${CORE}PodStatus`, 'nominatedNodeName'), 1),
    col('Readiness Gates', 'string', doc(`${CORE}PodSpec`, 'readinessGates'), 1),
  ],
  ReplicationController: () => [
    nameCol(),
    col('Desired', 'integer', doc(`${CORE}ReplicationControllerSpec`, 'replicas')),
    col('Current', 'integer', doc(`${CORE}ReplicationControllerStatus`, 'replicas')),
    col('Ready', 'integer', doc(`${CORE}ReplicationControllerStatus`, 'readyReplicas')),
    ageCol(),
    col('Containers', 'string', CONTAINERS_DOC, 1),
    col('Images', 'string', IMAGES_DOC, 1),
    col('Selector', 'string', doc(`${CORE}ReplicationControllerSpec`, 'selector'), 1),
  ],
  Service: () => [
    nameCol(),
    col('Type', 'string', doc(`${CORE}ServiceSpec`, 'type')),
    col('Cluster-IP', 'string', doc(`${CORE}ServiceSpec`, 'clusterIP')),
    col('External-IP', 'string', doc(`${CORE}ServiceSpec`, 'externalIPs')),
    col('Port(s)', 'string', doc(`${CORE}ServiceSpec`, 'ports')),
    ageCol(),
    col('Selector', 'string', doc(`${CORE}ServiceSpec`, 'selector'), 1),
  ],
  Endpoints: () => [nameCol(), col('Endpoints', 'string', doc(`${CORE}Endpoints`, 'subsets')), ageCol()],
  Node: () => [
    nameCol(),
    col('Status', 'string', 'The status of the node'),
    col('Roles', 'string', 'The roles of the node'),
    ageCol(),
    col('Version', 'string', doc(`${CORE}NodeSystemInfo`, 'kubeletVersion')),
    col('Internal-IP', 'string', doc(`${CORE}NodeStatus`, 'addresses'), 1),
    col('External-IP', 'string', doc(`${CORE}NodeStatus`, 'addresses'), 1),
    col('OS-Image', 'string', doc(`${CORE}NodeSystemInfo`, 'osImage'), 1),
    col('Kernel-Version', 'string', doc(`${CORE}NodeSystemInfo`, 'kernelVersion'), 1),
    col('Container-Runtime', 'string', doc(`${CORE}NodeSystemInfo`, 'containerRuntimeVersion'), 1),
  ],
  Event: () => [
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
  Namespace: () => [nameCol(), col('Status', 'string', 'The status of the namespace'), ageCol()],
  Secret: () => [nameCol(), col('Type', 'string', doc(`${CORE}Secret`, 'type')), col('Data', 'string', doc(`${CORE}Secret`, 'data')), ageCol()],
  ConfigMap: () => [nameCol(), col('Data', 'string', doc(`${CORE}ConfigMap`, 'data')), ageCol()],
  ServiceAccount: () => [nameCol(), col('Secrets', 'string', doc(`${CORE}ServiceAccount`, 'secrets')), ageCol()],
  Lease: () => [nameCol(), col('Holder', 'string', doc('io.k8s.api.coordination.v1.LeaseSpec', 'holderIdentity')), ageCol()],
  EndpointSlice: () => [
    nameCol(),
    col('AddressType', 'string', doc(SLICE, 'addressType')),
    col('Ports', 'string', doc(SLICE, 'ports')),
    col('Endpoints', 'string', doc(SLICE, 'endpoints')),
    ageCol(),
  ],
};

/** The default table of kinds without a printer (the generic store's): Name and Created At. */
const DEFAULT_COLUMNS = (): TableColumnDefinition[] => [nameCol(), col('Created At', 'date', doc(META, 'creationTimestamp'))];

// ---------------------------------------------------------------------------------------------------
// Cells

type Obj = Record<string, any>;
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObject) : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const int = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? Math.trunc(v) : 0);

interface Printed {
  cells: unknown[];
  conditions?: TableRowCondition[];
}

function isRestartableInit(c: Obj | undefined): boolean {
  return c?.restartPolicy === 'Always';
}

/** printPod: READY, STATUS and RESTARTS the way kubectl shows them. */
function printPod(pod: Obj, now: Date): Printed {
  const spec: Obj = isObject(pod.spec) ? pod.spec : {};
  const status: Obj = isObject(pod.status) ? pod.status : {};
  const containers = list(spec.containers);
  const initContainers = list(spec.initContainers);
  let restarts = 0;
  let restartableInitRestarts = 0;
  let totalContainers = containers.length;
  let readyContainers = 0;
  let lastRestart = 0;
  let lastRestartableInitRestart = 0;
  const phase = str(status.phase);
  let reason = str(status.reason) || phase;
  const conditions = list(status.conditions);
  for (const c of conditions) {
    if (c.type === 'PodScheduled' && c.reason === 'SchedulingGated') reason = 'SchedulingGated';
  }
  let rowConditions: TableRowCondition[] | undefined;
  if (phase === 'Succeeded') rowConditions = [{ type: 'Completed', status: 'True', reason: 'Succeeded', message: 'The pod has completed successfully.' }];
  else if (phase === 'Failed') rowConditions = [{ type: 'Completed', status: 'True', reason: 'Failed', message: 'The pod failed.' }];

  const initByName = new Map<string, Obj>();
  for (const c of initContainers) {
    initByName.set(str(c.name), c);
    if (isRestartableInit(c)) totalContainers++;
  }
  const finishedAt = (cs: Obj): number => {
    const t = Date.parse(str(cs.lastState?.terminated?.finishedAt));
    return Number.isNaN(t) ? 0 : t;
  };

  let initializing = false;
  const initStatuses = list(status.initContainerStatuses);
  for (let i = 0; i < initStatuses.length; i++) {
    const cs = initStatuses[i]!;
    restarts += int(cs.restartCount);
    if (cs.lastState?.terminated) lastRestart = Math.max(lastRestart, finishedAt(cs));
    const restartable = isRestartableInit(initByName.get(str(cs.name)));
    if (restartable) {
      restartableInitRestarts += int(cs.restartCount);
      if (cs.lastState?.terminated) lastRestartableInitRestart = Math.max(lastRestartableInitRestart, finishedAt(cs));
    }
    const term = cs.state?.terminated;
    const waiting = cs.state?.waiting;
    if (term && int(term.exitCode) === 0) continue;
    if (restartable && cs.started === true) {
      if (cs.ready === true) readyContainers++;
      continue;
    }
    if (term) {
      if (!str(term.reason)) reason = int(term.signal) !== 0 ? `Init:Signal:${int(term.signal)}` : `Init:ExitCode:${int(term.exitCode)}`;
      else reason = `Init:${term.reason}`;
    } else if (waiting && str(waiting.reason) && waiting.reason !== 'PodInitializing') {
      reason = `Init:${waiting.reason}`;
    } else {
      reason = `Init:${i}/${initContainers.length}`;
    }
    initializing = true;
    break;
  }

  const initialized = conditions.some((c) => c.type === 'Initialized' && c.status === 'True');
  if (!initializing || initialized) {
    restarts = restartableInitRestarts;
    lastRestart = lastRestartableInitRestart;
    let hasRunning = false;
    const statuses = list(status.containerStatuses);
    for (let i = statuses.length - 1; i >= 0; i--) {
      const cs = statuses[i]!;
      restarts += int(cs.restartCount);
      if (cs.lastState?.terminated) lastRestart = Math.max(lastRestart, finishedAt(cs));
      const waiting = cs.state?.waiting;
      const term = cs.state?.terminated;
      if (waiting && str(waiting.reason)) reason = waiting.reason;
      else if (term && str(term.reason)) reason = term.reason;
      else if (term) reason = int(term.signal) !== 0 ? `Signal:${int(term.signal)}` : `ExitCode:${int(term.exitCode)}`;
      else if (cs.ready === true && cs.state?.running) {
        hasRunning = true;
        readyContainers++;
      }
    }
    // A completed container next to a running one: the pod is still running.
    if (reason === 'Completed' && hasRunning) {
      reason = conditions.some((c) => c.type === 'Ready' && c.status === 'True') ? 'Running' : 'NotReady';
    }
  }

  const deleting = !!pod.metadata?.deletionTimestamp;
  if (deleting && status.reason === 'NodeLost') reason = 'Unknown';
  else if (deleting && phase !== 'Succeeded' && phase !== 'Failed') reason = 'Terminating';

  let restartsCell = String(restarts);
  if (restarts !== 0 && lastRestart > 0) restartsCell = `${restarts} (${humanDuration(now.getTime() - lastRestart)} ago)`;

  const podIP = str(list(status.podIPs)[0]?.ip) || '<none>';
  const nodeName = str(spec.nodeName) || '<none>';
  const nominated = str(status.nominatedNodeName) || '<none>';
  let readinessGates = '<none>';
  const gates = list(spec.readinessGates);
  if (gates.length > 0) {
    let trueConditions = 0;
    for (const g of gates) {
      const c = conditions.find((x) => x.type === g.conditionType);
      if (c?.status === 'True') trueConditions++;
    }
    readinessGates = `${trueConditions}/${gates.length}`;
  }
  return {
    cells: [str(pod.metadata?.name), `${readyContainers}/${totalContainers}`, reason, restartsCell, since(pod.metadata?.creationTimestamp, now), podIP, nodeName, nominated, readinessGates],
    conditions: rowConditions,
  };
}

function layoutContainers(containers: unknown): [string, string] {
  const cs = list(containers);
  return [cs.map((c) => str(c.name)).join(','), cs.map((c) => str(c.image)).join(',')];
}

function printReplicationController(rc: Obj, now: Date): Printed {
  const [names, images] = layoutContainers(rc.spec?.template?.spec?.containers);
  const selector = isObject(rc.spec?.selector) ? (rc.spec.selector as Record<string, string>) : undefined;
  return {
    cells: [str(rc.metadata?.name), int(rc.spec?.replicas), int(rc.status?.replicas), int(rc.status?.readyReplicas), since(rc.metadata?.creationTimestamp, now), names, images, formatLabels(selector)],
  };
}

function serviceExternalIP(spec: Obj, status: Obj): string {
  const externalIPs: string[] = Array.isArray(spec.externalIPs) ? spec.externalIPs.filter((x: unknown) => typeof x === 'string') : [];
  switch (spec.type) {
    case 'ClusterIP':
    case 'NodePort':
      return externalIPs.length ? externalIPs.join(',') : '<none>';
    case 'LoadBalancer': {
      const lb = [...new Set(list(status.loadBalancer?.ingress).map((i) => str(i.ip) || str(i.hostname)).filter(Boolean))].join(',');
      if (externalIPs.length) return [...(lb ? lb.split(',') : []), ...externalIPs].join(',');
      return lb || '<pending>';
    }
    case 'ExternalName':
      return str(spec.externalName);
  }
  return '<unknown>';
}

function printService(svc: Obj, now: Date): Printed {
  const spec: Obj = isObject(svc.spec) ? svc.spec : {};
  const ips = Array.isArray(spec.clusterIPs) ? spec.clusterIPs : [];
  const ports = list(spec.ports)
    .map((p) => (int(p.nodePort) > 0 ? `${int(p.port)}:${int(p.nodePort)}/${str(p.protocol)}` : `${int(p.port)}/${str(p.protocol)}`))
    .join(',');
  return {
    cells: [
      str(svc.metadata?.name),
      str(spec.type),
      ips.length ? String(ips[0]) : '<none>',
      serviceExternalIP(spec, isObject(svc.status) ? svc.status : {}),
      ports || '<none>',
      since(svc.metadata?.creationTimestamp, now),
      formatLabels(isObject(spec.selector) ? (spec.selector as Record<string, string>) : undefined),
    ],
  };
}

function joinHostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** listWithMoreString: the first three, then " + N more..."; "<unset>" for none. */
function listWithMore(items: string[], max = 3): string {
  if (items.length > max) return `${items.slice(0, max).join(',')} + ${items.length - max} more...`;
  return items.join(',') || '<unset>';
}

/**
 * formatEndpoints: every address:port (addresses alone for a headless Service without ports), at most
 * three shown; "<none>" without subsets, "" when the subsets hold no address.
 */
function formatEndpoints(ep: Obj): string {
  const subsets = list(ep.subsets);
  if (subsets.length === 0) return '<none>';
  const all = subsets.flatMap((ss) => {
    const ips = list(ss.addresses).map((a) => str(a.ip));
    const ports = list(ss.ports);
    return ports.length === 0 ? ips : ports.flatMap((p) => ips.map((ip) => joinHostPort(ip, int(p.port))));
  });
  return all.length ? listWithMore(all) : '';
}

/** formatDiscoveryPorts: the port number, else its name, else "*" (all ports). */
function formatDiscoveryPorts(ports: unknown): string {
  return listWithMore(list(ports).map((p) => (typeof p.port === 'number' ? String(p.port) : typeof p.name === 'string' ? p.name : '*')));
}

/** formatDiscoveryEndpoints: every address of every endpoint, ready or not. */
function formatDiscoveryEndpoints(endpoints: unknown): string {
  return listWithMore(list(endpoints).flatMap((e) => (Array.isArray(e.addresses) ? e.addresses.map(str) : [])));
}

function printNode(node: Obj, now: Date): Printed {
  const status: Obj = isObject(node.status) ? node.status : {};
  const ready = list(status.conditions).find((c) => c.type === 'Ready');
  const parts: string[] = [];
  if (ready) parts.push(ready.status === 'True' ? 'Ready' : 'NotReady');
  if (parts.length === 0) parts.push('Unknown');
  if (node.spec?.unschedulable === true) parts.push('SchedulingDisabled');
  const roles = new Set<string>();
  for (const [k, v] of Object.entries(isObject(node.metadata?.labels) ? node.metadata.labels : {})) {
    if (k.startsWith('node-role.kubernetes.io/')) {
      const role = k.slice('node-role.kubernetes.io/'.length);
      if (role) roles.add(role);
    } else if (k === 'kubernetes.io/role' && v) {
      roles.add(String(v));
    }
  }
  const addr = (type: string) => str(list(status.addresses).find((a) => a.type === type)?.address) || '<none>';
  const info: Obj = isObject(status.nodeInfo) ? status.nodeInfo : {};
  return {
    cells: [
      str(node.metadata?.name),
      parts.join(','),
      roles.size ? [...roles].sort().join(',') : '<none>',
      since(node.metadata?.creationTimestamp, now),
      str(info.kubeletVersion),
      addr('InternalIP'),
      addr('ExternalIP'),
      str(info.osImage) || '<unknown>',
      str(info.kernelVersion) || '<unknown>',
      str(info.containerRuntimeVersion) || '<unknown>',
    ],
  };
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

function countKeys(v: unknown): number {
  return isObject(v) ? Object.keys(v).length : 0;
}

type Printer = (o: Obj, now: Date) => Printed;

const PRINTERS: Record<string, Printer> = {
  Pod: printPod,
  ReplicationController: printReplicationController,
  Service: printService,
  Endpoints: (o, now) => ({ cells: [str(o.metadata?.name), formatEndpoints(o), since(o.metadata?.creationTimestamp, now)] }),
  Node: printNode,
  Event: printEvent,
  Namespace: (o, now) => ({ cells: [str(o.metadata?.name), str(o.status?.phase), since(o.metadata?.creationTimestamp, now)] }),
  Secret: (o, now) => ({ cells: [str(o.metadata?.name), str(o.type), countKeys(o.data), since(o.metadata?.creationTimestamp, now)] }),
  ConfigMap: (o, now) => ({ cells: [str(o.metadata?.name), countKeys(o.data) + countKeys(o.binaryData), since(o.metadata?.creationTimestamp, now)] }),
  ServiceAccount: (o, now) => ({ cells: [str(o.metadata?.name), Array.isArray(o.secrets) ? o.secrets.length : 0, since(o.metadata?.creationTimestamp, now)] }),
  Lease: (o, now) => ({ cells: [str(o.metadata?.name), str(o.spec?.holderIdentity), since(o.metadata?.creationTimestamp, now)] }),
  EndpointSlice: (o, now) => ({
    cells: [str(o.metadata?.name), str(o.addressType), formatDiscoveryPorts(o.ports), formatDiscoveryEndpoints(o.endpoints), since(o.metadata?.creationTimestamp, now)],
  }),
};

const DEFAULT_PRINTER: Printer = (o) => ({ cells: [str(o.metadata?.name), str(o.metadata?.creationTimestamp)] });

/**
 * Renders objects of one kind as a meta.k8s.io/v1 Table. `includeObject` decides what each row carries:
 * nothing, PartialObjectMetadata (kubectl's default, enough for --show-labels and -L), or the object.
 */
export function toTable(res: ResourceInfo, objects: KubeObject[], opts: TableOptions = {}): Table {
  const now = opts.now ?? new Date();
  const include = opts.includeObject ?? 'Metadata';
  const printer = PRINTERS[res.kind] ?? DEFAULT_PRINTER;
  const rows = objects.map((o): TableRow => {
    const printed = printer(o, now);
    const row: TableRow = { cells: printed.cells };
    if (printed.conditions) row.conditions = printed.conditions;
    if (include === 'Object') row.object = o;
    else if (include === 'Metadata') row.object = { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata };
    else row.object = null;
    return row;
  });
  // A table of one object carries that object's resourceVersion, as for a GET.
  const metadata: ListMeta = opts.listMeta
    ? { ...opts.listMeta }
    : objects.length === 1 && objects[0]!.metadata?.resourceVersion
      ? { resourceVersion: objects[0]!.metadata.resourceVersion }
      : {};
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata,
    columnDefinitions: (COLUMNS[res.kind] ?? DEFAULT_COLUMNS)(),
    rows,
  };
}
