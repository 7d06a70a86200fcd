// Ingress (networking.k8s.io/v1): pkg/registry/networking/ingress. Stored and validated; Skiff runs no
// ingress controller, so nothing routes it and its status is only what a client writes (status subresource).

import { ensureObject } from '../../machinery/defaulting.ts';
import { ageCol, col, nameCol, since, str } from '../../machinery/table.ts';
import { objectList as list } from '../../machinery/types.ts';
import {
  arr,
  dns1035LabelErrors,
  dns1123SubdomainErrors,
  nameIsDNSSubdomain,
  obj,
  parseIPSloppy,
  pathSegmentName,
  portNameErrors,
  portNumErrors,
  present,
  regexError,
  maxLenError,
  strOf,
  type ErrorList,
} from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

type Obj = Record<string, any>;

const INGRESS_CLASS_ANNOTATION = 'kubernetes.io/ingress.class';
const PATH_TYPES = ['Exact', 'ImplementationSpecific', 'Prefix'];
const INVALID_PATH_SEQUENCES = ['//', '/./', '/../', '%2f', '%2F'];
const INVALID_PATH_SUFFIXES = ['/..', '/.'];

const DNS1123_SUBDOMAIN_FMT = '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*';
const WILDCARD_FMT = `\\*\\.${DNS1123_SUBDOMAIN_FMT}`;
const wildcardRe = new RegExp(`^${WILDCARD_FMT}$`);

/** validation.IsWildcardDNS1123Subdomain */
export function wildcardDNS1123SubdomainErrors(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 253) errs.push(maxLenError(253));
  if (!wildcardRe.test(v)) {
    errs.push(
      regexError(
        "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character",
        WILDCARD_FMT,
        '*.example.com',
      ),
    );
  }
  return errs;
}

/** A host of a rule or a TLS entry: a DNS subdomain, or a wildcard one. */
function hostErrors(host: string): string[] {
  return host.includes('*') ? wildcardDNS1123SubdomainErrors(host) : dns1123SubdomainErrors(host);
}

/** A TypedLocalObjectReference (a resource backend): apiGroup a subdomain, kind and name path segments. */
export function validateTypedLocalObjectReference(errs: ErrorList, ref: Obj, path: string): void {
  if (present(ref.apiGroup)) errs.each(`${path}.apiGroup`, strOf(ref.apiGroup), dns1123SubdomainErrors(strOf(ref.apiGroup)));
  for (const f of ['kind', 'name']) {
    const v = strOf(ref[f]);
    if (!v) errs.required(`${path}.${f}`);
    else errs.each(`${path}.${f}`, v, pathSegmentName(v, false));
  }
}

function validateIngressBackend(errs: ErrorList, backend: Obj, path: string): void {
  const hasResource = present(backend.resource);
  const hasService = present(backend.service);
  if (hasResource && hasService) return errs.invalid(path, '', 'cannot set both resource and service backends');
  if (hasResource) return validateTypedLocalObjectReference(errs, obj(backend.resource), `${path}.resource`);
  if (!hasService) return errs.invalid(path, '', 'resource or service backend is required');
  const svc = obj(backend.service);
  const name = strOf(svc.name);
  // ValidateServiceName: a DNS-1035 label.
  if (!name) errs.required(`${path}.service.name`);
  else errs.each(`${path}.service.name`, name, dns1035LabelErrors(name));
  const port = obj(svc.port);
  const portName = strOf(port.name);
  const portNumber = typeof port.number === 'number' ? port.number : 0;
  if (portName && portNumber !== 0) errs.invalid(path, '', 'cannot set both port name & port number');
  else if (portName) errs.each(`${path}.service.port.name`, portName, portNameErrors(portName));
  else if (portNumber !== 0) errs.each(`${path}.service.port.number`, portNumber, portNumErrors(portNumber));
  else errs.required(path, 'port name or number is required');
}

function validateHTTPIngressPath(errs: ErrorList, p: Obj, path: string): void {
  if (!present(p.pathType)) return errs.required(`${path}.pathType`, 'pathType must be specified');
  const value = strOf(p.path);
  switch (p.pathType) {
    case 'Exact':
    case 'Prefix':
      if (!value.startsWith('/')) errs.invalid(`${path}.path`, value, 'must be an absolute path');
      if (value) {
        for (const seq of INVALID_PATH_SEQUENCES) if (value.includes(seq)) errs.invalid(`${path}.path`, value, `must not contain '${seq}'`);
        for (const suf of INVALID_PATH_SUFFIXES) if (value.endsWith(suf)) errs.invalid(`${path}.path`, value, `cannot end with '${suf}'`);
      }
      break;
    case 'ImplementationSpecific':
      if (value && !value.startsWith('/')) errs.invalid(`${path}.path`, value, 'must be an absolute path');
      break;
    default:
      errs.notSupported(`${path}.pathType`, p.pathType, PATH_TYPES);
  }
  validateIngressBackend(errs, obj(p.backend), `${path}.backend`);
}

function validateIngressSpec(errs: ErrorList, spec: Obj): void {
  const rules = arr(spec.rules);
  if (rules.length === 0 && !present(spec.defaultBackend)) {
    errs.invalid('spec', Array.isArray(spec.rules) ? [] : null, 'either `defaultBackend` or `rules` must be specified');
  }
  if (present(spec.defaultBackend)) validateIngressBackend(errs, obj(spec.defaultBackend), 'spec.defaultBackend');
  rules.forEach((r, i) => {
    const rule = obj(r);
    const host = strOf(rule.host);
    if (host) {
      if (parseIPSloppy(host)) errs.invalid(`spec.rules[${i}].host`, host, 'must be a DNS name, not an IP address');
      errs.each(`spec.rules[${i}].host`, host, hostErrors(host));
    }
    if (present(rule.http)) {
      const paths = arr(rule.http.paths);
      if (paths.length === 0) errs.required(`spec.rules[${i}].http.paths`);
      paths.forEach((p, j) => validateHTTPIngressPath(errs, obj(p), `spec.rules[${i}].http.paths[${j}]`));
    }
  });
  arr(spec.tls).forEach((t, i) => {
    const tls = obj(t);
    arr(tls.hosts).forEach((h, j) => errs.each(`spec.tls[${i}].hosts[${j}]`, strOf(h), hostErrors(strOf(h))));
    // ValidateSecretName; an empty one is allowed (the controller's default certificate).
    const secret = strOf(tls.secretName);
    if (secret) errs.each(`spec.tls[${i}].secretName`, secret, nameIsDNSSubdomain(secret, false));
  });
  if (present(spec.ingressClassName)) {
    const c = strOf(spec.ingressClassName);
    errs.each('spec.ingressClassName', c, nameIsDNSSubdomain(c, false));
  }
}

function validateIngressCreate(errs: ErrorList, ing: Obj): void {
  const annotation = ing.metadata?.annotations?.[INGRESS_CLASS_ANNOTATION];
  // as upstream: the path is "annotations.kubernetes.io/ingress.class", without "metadata".
  if (typeof annotation === 'string' && present(ing.spec?.ingressClassName) && annotation !== ing.spec.ingressClassName) {
    errs.invalid(`annotations.${INGRESS_CLASS_ANNOTATION}`, annotation, 'must match `ingressClassName` when both are specified');
  }
}

/** ValidateIngressLoadBalancerStatus: on status writes. */
function validateIngressStatus(errs: ErrorList, ing: Obj): void {
  list(ing.status?.loadBalancer?.ingress).forEach((lb, i) => {
    const p = `status.loadBalancer.ingress[${i}]`;
    const ip = strOf(lb.ip);
    if (ip && !parseIPSloppy(ip)) errs.invalid(`${p}.ip`, ip, 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)');
    const hostname = strOf(lb.hostname);
    if (hostname) {
      errs.each(`${p}.hostname`, hostname, dns1123SubdomainErrors(hostname));
      if (parseIPSloppy(hostname)) errs.invalid(`${p}.hostname`, hostname, 'must be a DNS name, not an IP address');
    }
  });
}

/** The Hosts column: the first three rule hosts, "*" when no rule names one. */
function formatHosts(rules: unknown): string {
  const rs = list(rules);
  const hosts: string[] = [];
  let more = false;
  for (const r of rs) {
    if (hosts.length === 3) more = true;
    if (!more && str(r.host)) hosts.push(r.host);
  }
  if (hosts.length === 0) return '*';
  return more ? `${hosts.join(',')} + ${rs.length - 3} more...` : hosts.join(',');
}

/** The Address column: the load balancer's IPs (else hostnames), sorted and deduplicated. */
function formatAddress(status: unknown): string {
  const set = new Set<string>();
  for (const lb of list(obj(obj(status).loadBalancer).ingress)) {
    if (str(lb.ip)) set.add(lb.ip);
    else if (str(lb.hostname)) set.add(lb.hostname);
  }
  return [...set].sort().join(',');
}

export const ingress: KindStrategy = {
  info: resourceInfo('networking.k8s.io', 'v1', 'Ingress', 'ingresses', true, { shortNames: ['ing'], subresources: ['status'] }),
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: false },
  // The status is a struct in Go: a new Ingress reads back with status.loadBalancer {}.
  defaults: (ing) => {
    ensureObject(ensureObject(ing, 'status'), 'loadBalancer');
  },
  validate: (errs, ing) => validateIngressSpec(errs, obj(ing.spec)),
  validateCreate: validateIngressCreate,
  validateUpdate: (errs, ing, _old, opts) => {
    if (opts.subresource === 'status') validateIngressStatus(errs, ing);
  },
  prepareForCreate: (o) => {
    delete o.status;
  },
  prepareForUpdate: (o, old, subresource) => {
    if (!subresource) o.status = old.status;
  },
  table: {
    columns: () => [
      nameCol(),
      col('Class', 'string', 'The name of the IngressClass resource that should be used for additional configuration'),
      col('Hosts', 'string', 'Hosts that incoming requests are matched against before the ingress rule'),
      col('Address', 'string', 'Address is a list containing ingress points for the load-balancer'),
      col('Ports', 'string', 'Ports of TLS configurations that open'),
      ageCol(),
    ],
    print: (o, now) => ({
      cells: [
        str(o.metadata?.name),
        typeof o.spec?.ingressClassName === 'string' ? o.spec.ingressClassName : '<none>',
        formatHosts(o.spec?.rules),
        formatAddress(o.status),
        arr(o.spec?.tls).length ? '80, 443' : '80',
        since(o.metadata?.creationTimestamp, now),
      ],
    }),
  },
};
