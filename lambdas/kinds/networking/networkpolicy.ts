// NetworkPolicy (networking.k8s.io/v1): pkg/registry/networking/networkpolicy. Stored and validated; not
// enforced (the node agent's proxy programs Services only), as on a cluster whose network plugin has no
// policy support.

import { ensureObject } from '../../machinery/defaulting.ts';
import { formatLabelSelector, validateLabelSelector } from '../../machinery/metav1-validation.ts';
import { ageCol, col, nameCol, since, str } from '../../machinery/table.ts';
import { isObject, objectList as list } from '../../machinery/types.ts';
import { arr, nameIsDNSSubdomain, obj, parseIPSloppy, portNameErrors, portNumErrors, present, strOf, type ErrorList } from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

type Obj = Record<string, any>;

const POLICY_TYPES = ['Ingress', 'Egress'];
const CIDR_MSG = 'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)';

/** SetDefaults_NetworkPolicy and SetDefaults_NetworkPolicyPort. */
function defaultNetworkPolicy(np: Obj): void {
  const spec = ensureObject(np, 'spec');
  // podSelector is a struct in Go: always there ({} selects every pod of the namespace).
  ensureObject(spec, 'podSelector');
  for (const dir of ['ingress', 'egress']) for (const rule of list(spec[dir])) for (const p of list(rule.ports)) if (!present(p.protocol)) p.protocol = 'TCP';
  if (arr(spec.policyTypes).length === 0) spec.policyTypes = arr(spec.egress).length ? ['Ingress', 'Egress'] : ['Ingress'];
}

/** An IPv4 or IPv6 address as a number, for CIDR containment (netutils.ParseIPSloppy). */
function ipBits(ip: string): { family: 4 | 6; n: bigint } | undefined {
  const family = parseIPSloppy(ip);
  if (family === 4) return { family, n: ip.split('.').reduce((acc, o) => acc * 256n + BigInt(Number(o)), 0n) };
  if (family !== 6) return undefined;
  let s = ip.toLowerCase();
  // An embedded IPv4 tail ("::ffff:1.2.3.4") becomes two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const o = v4[1]!.split('.').map(Number);
    s = s.slice(0, -v4[1]!.length) + `${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const [head, tail] = s.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return { family, n: groups.reduce((acc, g) => acc * 65536n + BigInt(parseInt(g, 16)), 0n) };
}

/** netutils.ParseCIDRSloppy: the network (host bits cleared) and its prefix length. */
function parseCIDR(s: string): { family: 4 | 6; net: bigint; bits: number } | undefined {
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const ip = ipBits(s.slice(0, slash));
  const bitsStr = s.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(bitsStr)) return undefined;
  const bits = Number(bitsStr);
  const width = ip.family === 4 ? 32 : 128;
  if (bits > width) return undefined;
  const host = (1n << BigInt(width - bits)) - 1n;
  return { family: ip.family, net: ip.n & ~host, bits };
}

function validateIPBlock(errs: ErrorList, block: Obj, path: string): void {
  const cidr = strOf(block.cidr);
  if (!cidr) return errs.required(`${path}.cidr`);
  const outer = parseCIDR(cidr);
  if (!outer) return errs.invalid(`${path}.cidr`, cidr, CIDR_MSG);
  arr(block.except).forEach((e, i) => {
    const p = `${path}.except[${i}]`;
    const except = strOf(e);
    const inner = parseCIDR(except);
    if (!inner) return errs.invalid(p, except, CIDR_MSG);
    const width = outer.family === 4 ? 32 : 128;
    const mask = ~((1n << BigInt(width - outer.bits)) - 1n);
    const contained = inner.family === outer.family && (inner.net & mask) === outer.net;
    if (!contained || outer.bits >= inner.bits) errs.invalid(p, except, 'must be a strict subset of `cidr`');
  });
}

function validatePeer(errs: ErrorList, peer: Obj, path: string): void {
  let n = 0;
  if (present(peer.podSelector)) {
    n++;
    validateLabelSelector(errs, peer.podSelector, `${path}.podSelector`);
  }
  if (present(peer.namespaceSelector)) {
    n++;
    validateLabelSelector(errs, peer.namespaceSelector, `${path}.namespaceSelector`);
  }
  if (present(peer.ipBlock)) {
    n++;
    validateIPBlock(errs, obj(peer.ipBlock), `${path}.ipBlock`);
  }
  if (n === 0) errs.required(path, 'must specify a peer');
  else if (n > 1 && present(peer.ipBlock)) errs.forbidden(path, 'may not specify both ipBlock and another peer');
}

function validatePort(errs: ErrorList, port: Obj, path: string): void {
  if (present(port.protocol) && !['TCP', 'UDP', 'SCTP'].includes(port.protocol)) errs.notSupported(`${path}.protocol`, port.protocol, ['TCP', 'UDP', 'SCTP']);
  if (present(port.port)) {
    if (typeof port.port === 'number') {
      errs.each(`${path}.port`, port.port, portNumErrors(port.port));
      if (present(port.endPort)) {
        if (port.endPort < port.port) errs.invalid(`${path}.endPort`, port.endPort, 'must be greater than or equal to `port`');
        errs.each(`${path}.endPort`, port.endPort, portNumErrors(port.endPort));
      }
    } else {
      if (present(port.endPort)) errs.invalid(`${path}.endPort`, port.endPort, 'may not be specified when `port` is non-numeric');
      errs.each(`${path}.port`, strOf(port.port), portNameErrors(strOf(port.port)));
    }
  } else if (present(port.endPort)) {
    errs.invalid(`${path}.endPort`, port.endPort, 'may not be specified when `port` is not specified');
  }
}

function validateNetworkPolicy(errs: ErrorList, np: Obj): void {
  const spec = obj(np.spec);
  validateLabelSelector(errs, spec.podSelector ?? {}, 'spec.podSelector');
  for (const [dir, peers] of [['ingress', 'from'], ['egress', 'to']] as const) {
    arr(spec[dir]).forEach((r, i) => {
      const rule = obj(r);
      arr(rule.ports).forEach((p, j) => validatePort(errs, obj(p), `spec.${dir}[${i}].ports[${j}]`));
      arr(rule[peers]).forEach((p, j) => validatePeer(errs, obj(p), `spec.${dir}[${i}].${peers}[${j}]`));
    });
  }
  const types = arr(spec.policyTypes);
  if (types.length > POLICY_TYPES.length) return errs.invalid('spec.policyTypes', types, 'may not specify more than two policyTypes');
  types.forEach((t, i) => {
    if (!POLICY_TYPES.includes(t)) errs.notSupported(`spec.policyTypes[${i}]`, t, POLICY_TYPES);
  });
}

// printers.go describes the column with extensions/v1beta1's field doc.
const POD_SELECTOR_DOC =
  'Selects the pods to which this NetworkPolicy object applies.  The array of ingress rules is applied to any pods selected by this field. Multiple network policies can select the same set of pods.  In this case, the ingress rules for each are combined additively. This field is NOT optional and follows standard label selector semantics. An empty podSelector matches all pods in this namespace.';

export const networkPolicy: KindStrategy = {
  info: resourceInfo('networking.k8s.io', 'v1', 'NetworkPolicy', 'networkpolicies', true, { shortNames: ['netpol'] }),
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: false },
  defaults: defaultNetworkPolicy,
  validate: validateNetworkPolicy,
  table: {
    columns: () => [nameCol(), col('Pod-Selector', 'string', POD_SELECTOR_DOC), ageCol()],
    print: (o, now) => ({ cells: [str(o.metadata?.name), formatLabelSelector(isObject(o.spec) ? (o.spec.podSelector ?? {}) : {}), since(o.metadata?.creationTimestamp, now)] }),
  },
};
