// Node (core/v1): pkg/registry/core/node. Node agents create their Node with its status (Node is the one
// kind with a status subresource whose create keeps the status) and heartbeat through Leases; a node's
// podCIDRs and providerID are set once.

import { ensureObject } from '../../machinery/defaulting.ts';
import { formatQuantity } from '../../machinery/quantity.ts';
import { nameField } from '../../machinery/selectors.ts';
import { ageCol, col, CORE, doc, nameCol, since, str, type Printed } from '../../machinery/table.ts';
import { isObject, objectList as list } from '../../machinery/types.ts';
import {
  arr,
  GoStruct,
  labelKeyErrors,
  labelValueErrors,
  nameIsDNSSubdomain,
  obj,
  quantity,
  strOf,
  TAINT_EFFECTS,
  validCIDR,
  type ErrorList,
} from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

type Obj = Record<string, any>;

function defaultNode(node: Obj): void {
  const status = ensureObject(node, 'status');
  if (status.allocatable === undefined && isObject(status.capacity)) status.allocatable = { ...status.capacity };
}

function validateNode(errs: ErrorList, node: Record<string, any>): void {
  const spec = obj(node.spec);
  const seen = new Map<string, Set<string>>();
  arr(spec.taints).forEach((t, i) => {
    // as upstream: taints are reported under "metadata.taints".
    const p = `metadata.taints[${i}]`;
    const taint = obj(t);
    errs.each(`${p}.key`, strOf(taint.key), labelKeyErrors(strOf(taint.key)));
    const vmsgs = labelValueErrors(strOf(taint.value));
    if (vmsgs.length) errs.invalid(`${p}.value`, strOf(taint.value), vmsgs.join(';'));
    if (!strOf(taint.effect)) errs.required(`${p}.effect`);
    else if (!TAINT_EFFECTS.includes(taint.effect)) errs.notSupported(`${p}.effect`, taint.effect, TAINT_EFFECTS);
    const keys = seen.get(strOf(taint.effect)) ?? new Set<string>();
    if (keys.has(strOf(taint.key))) {
      const v = new GoStruct(`{"Key":${JSON.stringify(strOf(taint.key))},"Value":${JSON.stringify(strOf(taint.value))},"Effect":${JSON.stringify(strOf(taint.effect))},"TimeAdded":${JSON.stringify(taint.timeAdded ?? null)}}`);
      errs.duplicate(p, v, 'taints must be unique by key and effect pair');
      return;
    }
    keys.add(strOf(taint.key));
    seen.set(strOf(taint.effect), keys);
  });
  for (const list of ['capacity', 'allocatable']) {
    for (const [k, v] of Object.entries(obj(node.status?.[list]))) {
      const q = quantity(v);
      if (q.nanos < 0n) errs.invalid(`status.${list}.${k}`, formatQuantity(q), 'must be greater than or equal to 0');
    }
  }
  const cidrs = podCIDRsOf(spec);
  cidrs.forEach((c, i) => {
    if (!validCIDR(c)) errs.invalid(`spec.podCIDRs[${i}]`, c, 'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)');
  });
}

/**
 * The pod CIDRs a v1 NodeSpec stands for, as Kubernetes' v1->internal conversion reads them: podCIDRs,
 * or else the legacy single podCIDR (which is what older clients, and our hollow nodes, set alone).
 */
function podCIDRsOf(spec: Record<string, any> | undefined): unknown[] {
  const list = arr(spec?.podCIDRs);
  if (list.length) return list;
  return strOf(spec?.podCIDR) ? [spec!.podCIDR] : [];
}

function validateNodeUpdate(errs: ErrorList, node: Record<string, any>, old: Record<string, any>): void {
  const seen = new Set<string>();
  arr(node.status?.addresses).forEach((a, i) => {
    const key = `${strOf(a?.type)}/${strOf(a?.address)}`;
    if (seen.has(key)) errs.duplicate(`status.addresses[${i}]`, { address: strOf(a?.address), type: strOf(a?.type) });
    seen.add(key);
  });
  // Set once (by the node IPAM controller or the node itself), then fixed: routes and pod IPs hang on it.
  // Both fields count, so a client writing only the legacy podCIDR cannot move it either.
  const oldCIDRs = podCIDRsOf(old.spec);
  const cidrs = podCIDRsOf(node.spec);
  const legacy = strOf(node.spec?.podCIDR);
  // podCIDRs wins when both are given (as in conversion), but a legacy value that disagrees is a move.
  const legacyMoved = !!legacy && legacy !== cidrs[0];
  if (oldCIDRs.length && (legacyMoved || oldCIDRs.length !== cidrs.length || oldCIDRs.some((c, i) => c !== cidrs[i]))) {
    errs.forbidden('spec.podCIDRs', 'node updates may not change podCIDR except from "" to valid');
  }
  const oldProvider = strOf(old.spec?.providerID);
  if (oldProvider && oldProvider !== strOf(node.spec?.providerID)) {
    errs.forbidden('spec.providerID', 'node updates may not change providerID except from "" to valid');
  }
  if (strOf(node.spec?.externalID) !== strOf(old.spec?.externalID)) errs.forbidden('spec.externalID', 'may not be updated');
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

export const node: KindStrategy = {
  info: resourceInfo('', 'v1', 'Node', 'nodes', false, { shortNames: ['no'], subresources: ['status', 'proxy'] }),
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: true },
  defaults: defaultNode,
  validate: validateNode,
  validateUpdate: validateNodeUpdate,
  // Unlike Kubernetes, a main-resource write may set the status; one that leaves it out keeps the stored one.
  prepareForUpdate: (o, old, subresource) => {
    if (!subresource && o.status === undefined) o.status = old.status;
  },
  table: {
    columns: () => [
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
    print: printNode,
  },
  fieldSelectors: {
    fields: {
      'metadata.name': nameField,
      'spec.unschedulable': (o) => String(o.spec?.unschedulable === true),
    },
  },
};
