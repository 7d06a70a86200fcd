// networking.k8s.io/v1 Ingress, IngressClass and NetworkPolicy (lambdas/kinds/networking/): found by the
// registry, defaults, valid objects accepted, invalid ones refused with kube-apiserver's exact messages
// (pkg/apis/networking/validation), and the kubectl get columns (pkg/printers/internalversion).

import { describe, expect, it } from 'vitest';
import { findKind, findResource } from '../lambdas/kinds/index.ts';
import { apiResourceList } from '../lambdas/apiserver/discovery.ts';
import { create, refusal, strategyOf, table, update } from './support/kinds.ts';

const ingresses = strategyOf('networking.k8s.io', 'v1', 'ingresses');
const ingressClasses = strategyOf('networking.k8s.io', 'v1', 'ingressclasses');
const networkPolicies = strategyOf('networking.k8s.io', 'v1', 'networkpolicies');

const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

const backend = (name: string, port: Record<string, unknown> = { number: 80 }) => ({ service: { name, port } });
const ing = (spec: Record<string, unknown>, meta: Record<string, unknown> = {}) => ({ metadata: { name: 'web', namespace: 'default', ...meta }, spec });
const rule = (host: string | undefined, paths: unknown[]) => ({ ...(host !== undefined ? { host } : {}), http: { paths } });
const path = (p: string, pathType: string | null = 'Prefix', b: unknown = backend('web')) => ({ path: p, ...(pathType ? { pathType } : {}), backend: b });

describe('networking.k8s.io/v1 in discovery', () => {
  it('is found by resource and by kind', () => {
    expect(findResource('networking.k8s.io', 'v1', 'ingresses')).toBe(ingresses.info);
    expect(findKind('networking.k8s.io/v1', 'IngressClass')).toBe(ingressClasses.info);
    expect(findKind('networking.k8s.io/v1', 'NetworkPolicy')).toBe(networkPolicies.info);
    expect(apiResourceList('networking.k8s.io', 'v1')!.resources.map((r) => [r.name, r.namespaced, r.kind, r.shortNames ?? []])).toEqual([
      ['ingressclasses', false, 'IngressClass', []],
      ['ingresses', true, 'Ingress', ['ing']],
      ['ingresses/status', true, 'Ingress', []],
      ['networkpolicies', true, 'NetworkPolicy', ['netpol']],
    ]);
  });
});

describe('Ingress', () => {
  const valid = ing({
    ingressClassName: 'nginx',
    rules: [rule('example.com', [path('/'), path('/api', 'Exact', backend('api', { name: 'http' }))]), rule('*.example.org', [path('/', 'ImplementationSpecific')])],
    tls: [{ hosts: ['example.com'], secretName: 'example-tls' }],
  });

  it('accepts rules, TLS and a class; the status reads back as loadBalancer {}; a create drops a status sent', () => {
    const o = create(ingresses, { ...valid, status: { loadBalancer: { ingress: [{ ip: '1.2.3.4' }] } } });
    expect(o.status).toEqual({ loadBalancer: {} });
    expect(o.spec.rules[1].host).toBe('*.example.org');
    expect(create(ingresses, ing({ defaultBackend: { resource: { apiGroup: 'k8s.example.com', kind: 'StorageBucket', name: 'static' } } }))).toBeTruthy();
  });

  it.each([
    [ing({}), 'spec: Invalid value: null: either `defaultBackend` or `rules` must be specified'],
    [ing({ rules: [] }), 'spec: Invalid value: []: either `defaultBackend` or `rules` must be specified'],
    [ing({ rules: [rule('1.2.3.4', [path('/')])] }), 'spec.rules[0].host: Invalid value: "1.2.3.4": must be a DNS name, not an IP address'],
    [ing({ rules: [rule('Example.com', [path('/')])] }), `spec.rules[0].host: Invalid value: "Example.com": ${SUBDOMAIN_MSG}`],
    [
      ing({ rules: [rule('*', [path('/')])] }),
      "spec.rules[0].host: Invalid value: \"*\": a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    ],
    [ing({ rules: [rule('a.com', [])] }), 'spec.rules[0].http.paths: Required value'],
    [ing({ rules: [rule('a.com', [path('/', null)])] }), 'spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified'],
    [ing({ rules: [rule('a.com', [path('/', 'Regex')])] }), 'spec.rules[0].http.paths[0].pathType: Unsupported value: "Regex": supported values: "Exact", "ImplementationSpecific", "Prefix"'],
    [ing({ rules: [rule('a.com', [path('api')])] }), 'spec.rules[0].http.paths[0].path: Invalid value: "api": must be an absolute path'],
    [ing({ rules: [rule('a.com', [path('/a//b', 'Exact')])] }), "spec.rules[0].http.paths[0].path: Invalid value: \"/a//b\": must not contain '//'"],
    [ing({ rules: [rule('a.com', [path('/a/..')])] }), "spec.rules[0].http.paths[0].path: Invalid value: \"/a/..\": cannot end with '/..'"],
    [ing({ rules: [rule('a.com', [path('/', 'Prefix', {})])] }), 'spec.rules[0].http.paths[0].backend: Invalid value: "": resource or service backend is required'],
    [ing({ defaultBackend: backend('web', {}) }), 'spec.defaultBackend: Required value: port name or number is required'],
    [ing({ defaultBackend: backend('web', { name: 'http', number: 80 }) }), 'spec.defaultBackend: Invalid value: "": cannot set both port name & port number'],
    [ing({ defaultBackend: backend('web', { number: 70000 }) }), 'spec.defaultBackend.service.port.number: Invalid value: 70000: must be between 1 and 65535, inclusive'],
    [ing({ defaultBackend: backend('web', { name: 'ht_tp' }) }), 'spec.defaultBackend.service.port.name: Invalid value: "ht_tp": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)'],
    [
      ing({ defaultBackend: backend('1web') }),
      "spec.defaultBackend.service.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
    ],
    [ing({ defaultBackend: { service: { name: 'a', port: { number: 1 } }, resource: { kind: 'K', name: 'n' } } }), 'spec.defaultBackend: Invalid value: "": cannot set both resource and service backends'],
    [ing({ defaultBackend: { resource: { name: 'n' } } }), 'spec.defaultBackend.resource.kind: Required value'],
    [ing({ defaultBackend: backend('web'), tls: [{ hosts: ['Bad.com'] }] }), `spec.tls[0].hosts[0]: Invalid value: "Bad.com": ${SUBDOMAIN_MSG}`],
    [ing({ defaultBackend: backend('web'), tls: [{ secretName: 'Bad_Secret' }] }), `spec.tls[0].secretName: Invalid value: "Bad_Secret": ${SUBDOMAIN_MSG}`],
    [ing({ defaultBackend: backend('web'), ingressClassName: 'Nginx' }), `spec.ingressClassName: Invalid value: "Nginx": ${SUBDOMAIN_MSG}`],
    [
      ing({ defaultBackend: backend('web'), ingressClassName: 'nginx' }, { annotations: { 'kubernetes.io/ingress.class': 'traefik' } }),
      'annotations.kubernetes.io/ingress.class: Invalid value: "traefik": must match `ingressClassName` when both are specified',
    ],
  ])('refuses %j', (input, message) => {
    expect(refusal(() => create(ingresses, input))).toBe(`Ingress.networking.k8s.io "web" is invalid: ${message}`);
  });

  it('an update keeps the stored status; the status subresource writes it and checks it', () => {
    const old = create(ingresses, valid);
    const lb = { loadBalancer: { ingress: [{ ip: '10.0.0.9' }, { hostname: 'lb.example.com' }] } };
    expect(update(ingresses, old, { ...valid, status: lb }).status).toEqual({ loadBalancer: {} });
    const written = update(ingresses, old, { ...valid, status: lb }, 'status');
    expect(written.status).toEqual(lb);
    expect(refusal(() => update(ingresses, old, { status: { loadBalancer: { ingress: [{ hostname: '10.0.0.9' }] } } }, 'status'))).toBe(
      'Ingress.networking.k8s.io "web" is invalid: status.loadBalancer.ingress[0].hostname: Invalid value: "10.0.0.9": must be a DNS name, not an IP address',
    );
    // The ingress.class annotation is checked on create only.
    expect(update(ingresses, old, { ...valid, metadata: { annotations: { 'kubernetes.io/ingress.class': 'other' } } })).toBeTruthy();
  });

  it('prints Name, Class, Hosts, Address, Ports and Age as kube-apiserver does', () => {
    const old = create(ingresses, valid);
    const withLB = update(ingresses, old, { status: { loadBalancer: { ingress: [{ ip: '10.0.0.9' }, { hostname: 'lb.example.com' }, { ip: '10.0.0.9' }] } } }, 'status');
    const many = create(ingresses, ing({ rules: ['a.com', 'b.com', '', 'c.com', 'd.com'].map((h) => rule(h, [path('/')])) }, { name: 'many' }));
    const bare = create(ingresses, ing({ defaultBackend: backend('web') }, { name: 'bare' }));
    const t = table(ingresses, [withLB, many, bare]);
    expect(t.columns).toEqual(['Name', 'Class', 'Hosts', 'Address', 'Ports', 'Age']);
    expect(t.rows).toEqual([
      ['web', 'nginx', 'example.com,*.example.org', '10.0.0.9,lb.example.com', '80, 443', '5m'],
      ['many', '<none>', 'a.com,b.com,c.com + 2 more...', '', '80', '5m'],
      ['bare', '<none>', '*', '', '80', '5m'],
    ]);
  });
});

describe('IngressClass', () => {
  const ic = (spec: Record<string, unknown>) => ({ metadata: { name: 'nginx' }, spec });

  it('defaults parameters.scope to Cluster and accepts a namespaced reference', () => {
    expect(create(ingressClasses, ic({ controller: 'k8s.io/ingress-nginx', parameters: { apiGroup: 'k8s.example.net', kind: 'IngressParameters', name: 'p' } })).spec.parameters.scope).toBe('Cluster');
    expect(create(ingressClasses, ic({ controller: 'example.com/ingress', parameters: { kind: 'ConfigMap', name: 'p', scope: 'Namespace', namespace: 'kube-system' } }))).toBeTruthy();
  });

  it.each([
    [ic({}), 'spec.controller: Required value'],
    [ic({ controller: 'nginx' }), 'spec.controller: Invalid value: "nginx": must be a domain-prefixed path (such as "acme.io/foo")'],
    [ic({ controller: 'Acme.io/foo' }), `spec.controller: Invalid value: "Acme.io": ${SUBDOMAIN_MSG}`],
    [ic({ controller: 'acme.io/f o' }), "spec.controller: Invalid value: \"f o\": Invalid path (regex used for validation is '[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')"],
    [ic({ controller: `acme.io/${'a'.repeat(250)}` }), 'spec.controller: Too long: may not be more than 250 bytes'],
    [ic({ controller: 'acme.io/x', parameters: { kind: 'K', name: 'n', scope: 'Namespace' } }), "spec.parameters.namespace: Required value: `parameters.scope` is set to 'Namespace'"],
    [ic({ controller: 'acme.io/x', parameters: { kind: 'K', name: 'n', scope: 'Cluster', namespace: 'x' } }), "spec.parameters.namespace: Forbidden: `parameters.scope` is set to 'Cluster'"],
    [ic({ controller: 'acme.io/x', parameters: { kind: 'K', name: 'n', scope: 'Galaxy' } }), 'spec.parameters.scope: Unsupported value: "Galaxy": supported values: "Cluster", "Namespace"'],
    [ic({ controller: 'acme.io/x', parameters: { kind: 'a/b', name: 'n' } }), "spec.parameters.kind: Invalid value: \"a/b\": may not contain '/'"],
  ])('refuses %j', (input, message) => {
    expect(refusal(() => create(ingressClasses, input))).toBe(`IngressClass.networking.k8s.io "nginx" is invalid: ${message}`);
  });

  it('keeps its controller', () => {
    const old = create(ingressClasses, ic({ controller: 'k8s.io/ingress-nginx' }));
    expect(refusal(() => update(ingressClasses, old, ic({ controller: 'k8s.io/other' })))).toBe(
      'IngressClass.networking.k8s.io "nginx" is invalid: spec.controller: Invalid value: "k8s.io/other": field is immutable',
    );
  });

  it('prints Name, Controller, Parameters and Age', () => {
    const t = table(ingressClasses, [
      create(ingressClasses, ic({ controller: 'k8s.io/ingress-nginx', parameters: { apiGroup: 'k8s.example.net', kind: 'IngressParameters', name: 'p' } })),
      create(ingressClasses, { metadata: { name: 'plain' }, spec: { controller: 'example.com/x' } }),
    ]);
    expect(t.columns).toEqual(['Name', 'Controller', 'Parameters', 'Age']);
    expect(t.rows).toEqual([
      ['nginx', 'k8s.io/ingress-nginx', 'IngressParameters.k8s.example.net/p', '5m'],
      ['plain', 'example.com/x', '<none>', '5m'],
    ]);
  });
});

describe('NetworkPolicy', () => {
  const np = (spec: Record<string, unknown>) => ({ metadata: { name: 'np', namespace: 'default' }, spec });

  it('defaults policyTypes (Egress when there are egress rules), port protocols and the pod selector', () => {
    expect(create(networkPolicies, np({})).spec).toEqual({ podSelector: {}, policyTypes: ['Ingress'] });
    const o = create(networkPolicies, np({ podSelector: { matchLabels: { app: 'db' } }, ingress: [{ from: [{ podSelector: {} }], ports: [{ port: 5432 }] }], egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } }] }] }));
    expect(o.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(o.spec.ingress[0].ports).toEqual([{ port: 5432, protocol: 'TCP' }]);
    expect(create(networkPolicies, np({ egress: [{}], policyTypes: ['Egress'] })).spec.policyTypes).toEqual(['Egress']);
  });

  it.each([
    [np({ ingress: [{ from: [{}] }] }), 'spec.ingress[0].from[0]: Required value: must specify a peer'],
    [np({ egress: [{ to: [{ podSelector: {}, ipBlock: { cidr: '10.0.0.0/8' } }] }] }), 'spec.egress[0].to[0]: Forbidden: may not specify both ipBlock and another peer'],
    [np({ ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0' } }] }] }), 'spec.ingress[0].from[0].ipBlock.cidr: Invalid value: "10.0.0.0": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)'],
    [np({ ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.1.0.0/24'] } }] }] }), 'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "10.1.0.0/24": must be a strict subset of `cidr`'],
    [np({ ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.0.0.0/16'] } }] }] }), 'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "10.0.0.0/16": must be a strict subset of `cidr`'],
    [np({ ingress: [{ from: [{ ipBlock: {} }] }] }), 'spec.ingress[0].from[0].ipBlock.cidr: Required value'],
    [np({ ingress: [{ ports: [{ protocol: 'ICMP' }] }] }), 'spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"'],
    [np({ ingress: [{ ports: [{ port: 100, endPort: 50 }] }] }), 'spec.ingress[0].ports[0].endPort: Invalid value: 50: must be greater than or equal to `port`'],
    [np({ ingress: [{ ports: [{ port: 'http', endPort: 90 }] }] }), 'spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric'],
    [np({ ingress: [{ ports: [{ endPort: 90 }] }] }), 'spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is not specified'],
    [np({ ingress: [{ ports: [{ port: 0 }] }] }), 'spec.ingress[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive'],
    [np({ podSelector: { matchExpressions: [{ key: 'app', operator: 'In' }] } }), "spec.podSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"],
    [np({ podSelector: { matchExpressions: [{ key: 'app', operator: 'Exists', values: ['x'] }] } }), "spec.podSelector.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"],
    [np({ podSelector: { matchExpressions: [{ key: 'app', operator: 'Equals' }] } }), 'spec.podSelector.matchExpressions[0].operator: Invalid value: "Equals": not a valid selector operator'],
    [np({ policyTypes: ['Ingress', 'Egress', 'Ingress'] }), 'spec.policyTypes: Invalid value: ["Ingress","Egress","Ingress"]: may not specify more than two policyTypes'],
  ])('refuses %j', (input, message) => {
    expect(refusal(() => create(networkPolicies, input))).toBe(`NetworkPolicy.networking.k8s.io "np" is invalid: ${message}`);
  });

  it('checks IPv6 blocks too', () => {
    expect(create(networkPolicies, np({ ingress: [{ from: [{ ipBlock: { cidr: 'fd00::/8', except: ['fd00:1::/32'] } }] }] }))).toBeTruthy();
    expect(refusal(() => create(networkPolicies, np({ ingress: [{ from: [{ ipBlock: { cidr: 'fd00::/8', except: ['fe00::/16'] } }] }] })))).toContain('must be a strict subset of `cidr`');
  });

  it('prints Name, Pod-Selector and Age', () => {
    const t = table(networkPolicies, [
      create(networkPolicies, np({})),
      create(networkPolicies, { metadata: { name: 'db', namespace: 'default' }, spec: { podSelector: { matchLabels: { app: 'db' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['b', 'a'] }] } } }),
    ]);
    expect(t.columns).toEqual(['Name', 'Pod-Selector', 'Age']);
    expect(t.rows).toEqual([
      ['np', '<none>', '5m'],
      ['db', 'app=db,tier in (a,b)', '5m'],
    ]);
  });
});
