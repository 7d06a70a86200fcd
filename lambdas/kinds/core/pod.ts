// Pod (core/v1): pkg/registry/core/pod/strategy.go and what it uses. PodSpec defaulting and validation
// are shared with pod templates (machinery/defaulting.ts, machinery/podspec-validation.ts); what only pods
// have is here: their defaults (requests from limits, the service account, priority, the QoS class), the
// update rules (a pod's spec is immutable but for images, tolerations and a few more), status rules,
// graceful deletion, the table kubectl prints and the fields pods are selected by.

import { defaultPodSpec, ensureObject, setIfMissing } from '../../machinery/defaulting.ts';
import { parseQuantityExact, QuantityError } from '../../machinery/quantity.ts';
import { validatePodSpec } from '../../machinery/podspec-validation.ts';
import { fieldString, nameField, namespaceField } from '../../machinery/selectors.ts';
import { ageCol, col, CORE, doc, humanDuration, int, nameCol, since, str, type Printed, type TableRowCondition } from '../../machinery/table.ts';
import { isObject, objectList as list, type KubeObject } from '../../machinery/types.ts';
import {
  arr,
  goJSON,
  inclusiveRangeError,
  ipErrors,
  jsonEqual,
  labelKeyErrors,
  nameIsDNSSubdomain,
  obj,
  present,
  sortedList,
  strOf,
  type ErrorList,
  type ValidateOptions,
} from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

type Obj = Record<string, any>;

// ---------------------------------------------------------------------------------------------------
// Defaults (SetDefaults_Pod, the ServiceAccount and Priority admission plugins every cluster runs, and
// PrepareForCreate's initial status, keyed on the status being empty: the registry drops a status sent
// on create and carries the stored one over on every other write)

function defaultPod(pod: Obj): void {
  const spec = ensureObject(pod, 'spec');
  defaultPodSpec(spec);
  // SetDefaults_Pod (pods only, not templates): requests default to limits.
  for (const c of [...list(spec.containers), ...list(spec.initContainers)]) {
    const r = ensureObject(c, 'resources');
    if (isObject(r.limits)) {
      const requests = ensureObject(r, 'requests');
      for (const [k, v] of Object.entries(r.limits)) if (requests[k] === undefined) requests[k] = v;
    }
  }
  if (spec.enableServiceLinks === undefined || spec.enableServiceLinks === null) spec.enableServiceLinks = true;
  // ServiceAccount admission; the deprecated serviceAccount field mirrors it in v1.
  setIfMissing(spec, 'serviceAccountName', typeof spec.serviceAccount === 'string' && spec.serviceAccount ? spec.serviceAccount : 'default');
  spec.serviceAccount = spec.serviceAccountName;
  // Priority admission without a priorityClassName.
  if (!spec.priorityClassName && (spec.priority === undefined || spec.priority === null)) spec.priority = 0;
  setIfMissing(spec, 'preemptionPolicy', 'PreemptLowerPriority');
  // PrepareForCreate: a new pod is Pending with its QoS class.
  const status = ensureObject(pod, 'status');
  if (!status.phase) {
    status.phase = 'Pending';
    if (!status.qosClass) status.qosClass = podQOSClass(pod as KubeObject);
  }
}

// QoS class (pkg/apis/core/helper/qos ComputePodQOS)

/** Sum of positive cpu/memory quantities, in nano-units; unparsable values count as nothing. */
function add(acc: Map<string, bigint>, name: string, value: unknown): boolean {
  if (name !== 'cpu' && name !== 'memory') return false;
  let nanos: bigint;
  try {
    if (typeof value !== 'string' && typeof value !== 'number') return false;
    nanos = parseQuantityExact(value).nanos;
  } catch (e) {
    if (e instanceof QuantityError) return false;
    throw e;
  }
  if (nanos <= 0n) return false;
  acc.set(name, (acc.get(name) ?? 0n) + nanos);
  return true;
}

/**
 * The pod's QoS class: Guaranteed when every container limits cpu and memory and requests equal limits,
 * BestEffort when nothing is requested or limited, Burstable otherwise. Requests left out count as equal
 * to the limits, as defaulting makes them.
 */
export function podQOSClass(pod: Pick<KubeObject, 'spec'>): 'Guaranteed' | 'Burstable' | 'BestEffort' {
  const requests = new Map<string, bigint>();
  const limits = new Map<string, bigint>();
  let guaranteed = true;
  const containers = [...list(pod.spec?.containers), ...list(pod.spec?.initContainers)];
  for (const c of containers) {
    const r = isObject(c.resources) ? c.resources : {};
    const lim = isObject(r.limits) ? r.limits : {};
    const req = { ...lim, ...(isObject(r.requests) ? r.requests : {}) };
    for (const [k, v] of Object.entries(req)) add(requests, k, v);
    const found = new Set<string>();
    for (const [k, v] of Object.entries(lim)) if (add(limits, k, v)) found.add(k);
    if (!found.has('cpu') || !found.has('memory')) guaranteed = false;
  }
  if (requests.size === 0 && limits.size === 0) return 'BestEffort';
  if (guaranteed) {
    for (const [k, v] of requests) {
      if (limits.get(k) !== v) {
        guaranteed = false;
        break;
      }
    }
  }
  return guaranteed && requests.size === limits.size ? 'Guaranteed' : 'Burstable';
}

// ---------------------------------------------------------------------------------------------------
// Validation (ValidatePodCreate, ValidatePodUpdate, ValidatePodStatusUpdate)

const UPDATABLE_POD_SPEC_FIELDS = [
  '`spec.containers[*].image`',
  '`spec.initContainers[*].image`',
  '`spec.activeDeadlineSeconds`',
  '`spec.tolerations` (only additions to existing tolerations)',
  '`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)',
];

/** A short listing of what differs, standing in for the go-cmp diff Kubernetes appends. */
function specDiff(oldSpec: unknown, newSpec: unknown, path = 'spec'): string[] {
  if (jsonEqual(oldSpec, newSpec)) return [];
  if (isObject(oldSpec) && isObject(newSpec)) {
    const keys = sortedList(new Set([...Object.keys(oldSpec), ...Object.keys(newSpec)]));
    return keys.flatMap((k) => specDiff(oldSpec[k], newSpec[k], `${path}.${k}`));
  }
  if (Array.isArray(oldSpec) && Array.isArray(newSpec) && oldSpec.length === newSpec.length) {
    return oldSpec.flatMap((x, i) => specDiff(x, newSpec[i], `${path}[${i}]`));
  }
  return [`-\t${path}: ${goJSON(oldSpec)}`, `+\t${path}: ${goJSON(newSpec)}`];
}

function validatePodUpdate(errs: ErrorList, pod: Record<string, any>, old: Record<string, any>, opts: ValidateOptions): void {
  const spec = obj(pod.spec);
  const oldSpec = obj(old.spec);
  for (const list of ['containers', 'initContainers']) {
    const now = arr(spec[list]);
    if (now.length !== arr(oldSpec[list]).length) {
      errs.forbidden(`spec.${list}`, 'pod updates may not add or remove containers');
      return;
    }
    now.forEach((c, i) => {
      if (!strOf(c?.image)) errs.required(`spec.${list}[${i}].image`);
    });
  }
  const ads = spec.activeDeadlineSeconds;
  if (present(ads)) {
    if (typeof ads !== 'number' || ads < 0 || ads > 2147483647) {
      errs.invalid('spec.activeDeadlineSeconds', ads, inclusiveRangeError(0, 2147483647));
      return;
    }
    if (typeof oldSpec.activeDeadlineSeconds === 'number' && oldSpec.activeDeadlineSeconds < ads) {
      errs.invalid('spec.activeDeadlineSeconds', ads, 'must be less than or equal to previous value');
      return;
    }
  } else if (present(oldSpec.activeDeadlineSeconds)) {
    errs.invalid('spec.activeDeadlineSeconds', null, 'must not update from a positive integer to nil value');
  }
  // Tolerations may only be added; an existing one may change only its tolerationSeconds.
  const newTols = arr(spec.tolerations);
  for (const t of arr(oldSpec.tolerations)) {
    const found = newTols.some((n) => jsonEqual({ ...obj(t), tolerationSeconds: n?.tolerationSeconds }, n));
    if (!found) {
      errs.forbidden('spec.tolerations', 'existing toleration can not be modified except its tolerationSeconds');
      break;
    }
  }
  // Scheduling gates may only be removed.
  const oldGates = new Set(arr(oldSpec.schedulingGates).map((g) => strOf(g?.name)));
  arr(spec.schedulingGates).forEach((g, i) => {
    if (!oldGates.has(strOf(g?.name))) errs.forbidden(`spec.schedulingGates[${i}].name`, `only deletion is allowed, but found new scheduling gate '${strOf(g?.name)}'`);
  });
  if (jsonEqual(spec, oldSpec)) return;
  // The spec is immutable except for the fields above: copy those from the old spec and compare. (A
  // shallow copy: only its top-level fields and the containers' images are replaced, never changed in place.)
  const munged: Record<string, any> = { ...spec };
  for (const list of ['containers', 'initContainers']) {
    if (Array.isArray(munged[list])) munged[list] = munged[list].map((c: any, i: number) => ({ ...obj(c), image: oldSpec[list]?.[i]?.image }));
  }
  munged.activeDeadlineSeconds = oldSpec.activeDeadlineSeconds;
  munged.schedulingGates = oldSpec.schedulingGates;
  munged.tolerations = oldSpec.tolerations;
  if (typeof oldSpec.terminationGracePeriodSeconds === 'number' && oldSpec.terminationGracePeriodSeconds < 0 && munged.terminationGracePeriodSeconds === 1) {
    munged.terminationGracePeriodSeconds = oldSpec.terminationGracePeriodSeconds;
  }
  // Binding is the one write that assigns a node (once).
  if (opts.subresource === 'binding' && !strOf(oldSpec.nodeName)) munged.nodeName = oldSpec.nodeName;
  if (!jsonEqual(munged, oldSpec)) {
    errs.forbidden('spec', `pod updates may not change fields other than ${UPDATABLE_POD_SPEC_FIELDS.join(',')}\n${specDiff(oldSpec, munged).join('\n')}`);
  }
}

function validatePodStatusUpdate(errs: ErrorList, pod: Record<string, any>, old: Record<string, any>): void {
  const st = obj(pod.status);
  const oldSt = obj(old.status);
  // The apiserver backfills an empty qosClass from the old pod, so only a different value is an error.
  if (strOf(st.qosClass) && strOf(oldSt.qosClass) && st.qosClass !== oldSt.qosClass) errs.invalid('status.qosClass', st.qosClass, 'field is immutable');
  if (strOf(st.nominatedNodeName) && st.nominatedNodeName !== oldSt.nominatedNodeName) {
    errs.each('status.nominatedNodeName', st.nominatedNodeName, nameIsDNSSubdomain(st.nominatedNodeName, false));
  }
  arr(st.podIPs).forEach((p, i) => ipErrors(errs, `status.podIPs[${i}]`, p?.ip));
  arr(st.conditions).forEach((c, i) => {
    const t = strOf(c?.type);
    if (!['PodScheduled', 'Ready', 'Initialized'].includes(t)) errs.each(`status.conditions[${i}].Type`, t, labelKeyErrors(t));
  });
  // Containers that will not restart may not come back from terminated.
  const rp = old.spec?.restartPolicy;
  if (rp !== 'Always') {
    arr(oldSt.containerStatuses).forEach((os, i) => {
      const term = os?.state?.terminated;
      if (!term || (term.exitCode !== 0 && rp === 'OnFailure')) return;
      for (const ns of arr(st.containerStatuses)) {
        if (ns?.name === os.name && !ns?.state?.terminated) errs.forbidden(`status.containerStatuses[${i}].state`, 'may not be transitioned to non-terminated state');
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------------
// Table (printPod)

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

/**
 * Graceful deletion applies to pods bound to a node: the kubelet stops the containers and then deletes
 * with grace period 0. Unbound pods, and finished ones, are deleted at once.
 */
function gracePeriodSeconds(pod: KubeObject, requested: number | undefined): number {
  if (!pod.spec?.nodeName) return 0;
  if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return 0;
  const g = requested ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
  return Math.max(0, g);
}

export const pod: KindStrategy = {
  info: resourceInfo('', 'v1', 'Pod', 'pods', true, { shortNames: ['po'], categories: ['all'], subresources: ['status', 'binding', 'eviction', 'log'] }),
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: true },
  defaults: defaultPod,
  validate: (errs, o) => validatePodSpec(errs, obj(o.spec), 'spec', { isPod: true }),
  validateCreate: (errs, o) => {
    if (arr(o.spec?.ephemeralContainers).length) errs.forbidden('spec.ephemeralContainers', 'cannot be set on create');
    if (strOf(o.spec?.nodeName) && arr(o.spec?.schedulingGates).length) errs.forbidden('spec.nodeName', 'cannot be set until all schedulingGates have been cleared');
  },
  validateUpdate: (errs, o, old, opts) => {
    // A first binding: the binding's own code set spec.nodeName and PodScheduled, nothing else (as kube's
    // binding storage, which runs no pod validation; comparing the specs was ~1% of scheduling's CPU).
    // A second one goes on to the rule below, which refuses it.
    if (opts.subresource === 'binding' && !strOf(old.spec?.nodeName)) return;
    validatePodUpdate(errs, o, old, opts);
    if (opts.subresource === 'status' || !jsonEqual(o.status, old.status)) validatePodStatusUpdate(errs, o, old);
  },
  // The status is the node agent's, written through /status.
  prepareForCreate: (o) => {
    delete o.status;
  },
  prepareForUpdate: (o, old, subresource) => {
    if (!subresource) o.status = old.status;
    // A status write without a qosClass keeps the one the pod was created with.
    if (subresource === 'status' && o.status && !o.status.qosClass && old.status?.qosClass) o.status.qosClass = old.status.qosClass;
  },
  gracePeriodSeconds,
  table: {
    columns: () => [
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
    print: printPod,
  },
  fieldSelectors: {
    fields: {
    'metadata.name': nameField,
    'metadata.namespace': namespaceField,
    'spec.nodeName': (o) => fieldString(o.spec?.nodeName),
    'spec.restartPolicy': (o) => fieldString(o.spec?.restartPolicy),
    'spec.schedulerName': (o) => fieldString(o.spec?.schedulerName),
    'spec.serviceAccountName': (o) => fieldString(o.spec?.serviceAccountName),
    'spec.hostNetwork': (o) => String(o.spec?.hostNetwork === true),
    'status.phase': (o) => fieldString(o.status?.phase),
    'status.podIP': (o) => fieldString(o.status?.podIPs?.[0]?.ip ?? o.status?.podIP),
    // Accepted by the conversion, but the pod's field set holds no such key: it reads as "".
    'status.podIPs': () => '',
    'status.nominatedNodeName': (o) => fieldString(o.status?.nominatedNodeName),
    },
    // Field labels older clients send, rewritten as the core/v1 conversion does.
    aliases: { 'spec.host': 'spec.nodeName' },
  },
};
