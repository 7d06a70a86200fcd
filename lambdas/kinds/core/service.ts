// Service (core/v1): pkg/registry/core/service (strategy.go and the storage that allocates). Defaults
// (type ClusterIP, single-stack IPv4, traffic policies), validation, what an update keeps from the stored
// Service (its clusterIP and node ports), the allocation of clusterIPs and node ports around each write
// (service-alloc.ts does the allocating), the table kubectl prints and the selectable fields.

import { ensureObject, setIfMissing } from '../../machinery/defaulting.ts';
import { fieldString, formatLabels, nameField, namespaceField } from '../../machinery/selectors.ts';
import { ageCol, col, CORE, doc, int, nameCol, since, str, type Printed } from '../../machinery/table.ts';
import { isObject, objectList as list } from '../../machinery/types.ts';
import {
  arr,
  dns1035LabelErrors,
  dns1123LabelErrors,
  dns1123SubdomainErrors,
  GoStruct,
  ipErrors,
  labelKeyErrors,
  nameIsDNS1035Label,
  nonSpecialIPErrors,
  obj,
  parseIPSloppy,
  portNumErrors,
  present,
  PROTOCOLS,
  strOf,
  validateLabels,
  validatePortNumOrName,
  validCIDR,
  type ErrorList,
} from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

type Obj = Record<string, any>;

/** NodePort, and LoadBalancer unless allocateLoadBalancerNodePorts is false (Skiff has no cloud LB). */
export function needsNodePorts(spec: Record<string, any> | undefined): boolean {
  return spec?.type === 'NodePort' || (spec?.type === 'LoadBalancer' && spec.allocateLoadBalancerNodePorts !== false);
}

// ---------------------------------------------------------------------------------------------------
// Defaults (SetDefaults_Service)

function defaultService(svc: Obj): void {
  const spec = ensureObject(svc, 'spec');
  setIfMissing(spec, 'sessionAffinity', 'None');
  if (spec.sessionAffinity === 'None') delete spec.sessionAffinityConfig;
  if (spec.sessionAffinity === 'ClientIP' && typeof spec.sessionAffinityConfig?.clientIP?.timeoutSeconds !== 'number') {
    spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: 10800 } };
  }
  setIfMissing(spec, 'type', 'ClusterIP');
  for (const p of list(spec.ports)) {
    setIfMissing(p, 'protocol', 'TCP');
    if (p.targetPort === undefined || p.targetPort === null || p.targetPort === 0 || p.targetPort === '') p.targetPort = p.port;
  }
  const type = spec.type;
  const externallyAccessible =
    type === 'LoadBalancer' || type === 'NodePort' || (type === 'ClusterIP' && Array.isArray(spec.externalIPs) && spec.externalIPs.length > 0);
  if (externallyAccessible) setIfMissing(spec, 'externalTrafficPolicy', 'Cluster');
  if (type === 'NodePort' || type === 'LoadBalancer' || type === 'ClusterIP') setIfMissing(spec, 'internalTrafficPolicy', 'Cluster');
  if (type === 'LoadBalancer' && (spec.allocateLoadBalancerNodePorts === undefined || spec.allocateLoadBalancerNodePorts === null)) {
    spec.allocateLoadBalancerNodePorts = true;
  }
  if (type !== 'ExternalName') {
    // clusterIP and clusterIPs name the same address; whichever was given fills the other.
    const ips = Array.isArray(spec.clusterIPs) ? spec.clusterIPs : [];
    if (spec.clusterIP && ips.length === 0) spec.clusterIPs = [spec.clusterIP];
    else if (!spec.clusterIP && ips.length > 0) spec.clusterIP = ips[0];
    // Single-stack IPv4, the family of Skiff's service range.
    if (!Array.isArray(spec.ipFamilies) || spec.ipFamilies.length === 0) spec.ipFamilies = ['IPv4'];
    setIfMissing(spec, 'ipFamilyPolicy', 'SingleStack');
  }
  // A service without a status reads back with an empty load balancer status.
  const status = ensureObject(svc, 'status');
  ensureObject(status, 'loadBalancer');
}

// ---------------------------------------------------------------------------------------------------
// Validation (ValidateService, ValidateServiceUpdate)

const SERVICE_TYPES = ['ClusterIP', 'ExternalName', 'LoadBalancer', 'NodePort'];

function isHeadless(spec: Record<string, any>): boolean {
  const ips = arr(spec.clusterIPs);
  return ips.length === 1 && ips[0] === 'None';
}

/** core.ServicePort{Protocol, Port} as Go's json.Marshal prints the internal struct. */
function servicePortKey(protocol: string, port: unknown): GoStruct {
  return new GoStruct(`{"Name":"","Protocol":${JSON.stringify(protocol)},"AppProtocol":null,"Port":${Number(port) || 0},"TargetPort":0,"NodePort":0}`);
}

function validateService(errs: ErrorList, svc: Record<string, any>): void {
  const spec = obj(svc.spec);
  const type = spec.type;
  const ports = arr(spec.ports);
  const headless = isHeadless(spec);
  if (ports.length === 0 && !headless && type !== 'ExternalName') errs.required('spec.ports');
  if ((type === 'LoadBalancer' || type === 'NodePort') && headless) {
    errs.invalid('spec.clusterIPs[0]', 'None', `may not be set to 'None' for ${type} services`);
  }
  if (type === 'ExternalName') {
    if (arr(spec.clusterIPs).length) errs.forbidden('spec.clusterIPs', 'may not be set for ExternalName services');
    if (arr(spec.ipFamilies).length) errs.forbidden('spec.ipFamilies', 'may not be set for ExternalName services');
    if (present(spec.ipFamilyPolicy)) errs.forbidden('spec.ipFamilyPolicy', 'may not be set for ExternalName services');
    const cname = strOf(spec.externalName).replace(/\.$/, '');
    if (cname) errs.each('spec.externalName', cname, dns1123SubdomainErrors(cname));
    else errs.required('spec.externalName');
  }
  const names = new Set<string>();
  ports.forEach((port, i) => {
    const p = `spec.ports[${i}]`;
    const sp = obj(port);
    const name = strOf(sp.name);
    if (ports.length > 1 && !name) errs.required(`${p}.name`);
    else if (name) {
      errs.each(`${p}.name`, name, dns1123LabelErrors(name));
      if (names.has(name)) errs.duplicate(`${p}.name`, name);
      else names.add(name);
    }
    errs.each(`${p}.port`, sp.port ?? 0, portNumErrors(sp.port));
    if (!strOf(sp.protocol)) errs.required(`${p}.protocol`);
    else if (!PROTOCOLS.includes(sp.protocol)) errs.notSupported(`${p}.protocol`, sp.protocol, PROTOCOLS);
    validatePortNumOrName(errs, sp.targetPort, `${p}.targetPort`);
    if (present(sp.appProtocol)) errs.each(`${p}.appProtocol`, sp.appProtocol, labelKeyErrors(strOf(sp.appProtocol)));
  });
  if (present(spec.selector)) validateLabels(errs, spec.selector, 'spec.selector');
  const sa = spec.sessionAffinity;
  if (!strOf(sa)) errs.required('spec.sessionAffinity');
  else if (sa !== 'ClientIP' && sa !== 'None') errs.notSupported('spec.sessionAffinity', sa, ['ClientIP', 'None']);
  if (sa === 'ClientIP') {
    const t = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds;
    if (!present(spec.sessionAffinityConfig)) errs.required('spec.sessionAffinityConfig', 'when session affinity type is ClientIP');
    else if (!present(spec.sessionAffinityConfig.clientIP)) errs.required('spec.sessionAffinityConfig.clientIP', 'when session affinity type is ClientIP');
    else if (!present(t)) errs.required('spec.sessionAffinityConfig.clientIP.timeoutSeconds', 'when session affinity type is ClientIP');
    else if (t <= 0 || t > 86400) errs.invalid('spec.sessionAffinityConfig.clientIP.timeoutSeconds', t, 'must be greater than 0 and less than 86400');
  } else if (sa === 'None' && present(spec.sessionAffinityConfig)) {
    errs.forbidden('spec.sessionAffinityConfig', 'must not be set when session affinity is None');
  }
  validateClusterIPFields(errs, spec);
  arr(spec.externalIPs).forEach((ip, i) => {
    if (ipErrors(errs, `spec.externalIPs[${i}]`, ip)) nonSpecialIPErrors(errs, `spec.externalIPs[${i}]`, ip);
  });
  if (!strOf(type)) errs.required('spec.type');
  else if (!SERVICE_TYPES.includes(type)) errs.notSupported('spec.type', type, SERVICE_TYPES);
  if (type === 'ClusterIP') {
    ports.forEach((sp, i) => {
      if (sp?.nodePort) errs.forbidden(`spec.ports[${i}].nodePort`, "may not be used when `type` is 'ClusterIP'");
    });
  }
  const nodePorts = new Set<string>();
  const seenPorts = new Set<string>();
  ports.forEach((sp, i) => {
    if (sp?.nodePort) {
      const key = `${sp.protocol}/${sp.nodePort}`;
      if (nodePorts.has(key)) errs.duplicate(`spec.ports[${i}].nodePort`, sp.nodePort);
      nodePorts.add(key);
    }
    const key = `${strOf(sp?.protocol)}/${sp?.port}`;
    if (seenPorts.has(key)) errs.duplicate(`spec.ports[${i}]`, servicePortKey(strOf(sp?.protocol), sp?.port));
    seenPorts.add(key);
  });
  if (arr(spec.loadBalancerSourceRanges).length) {
    if (type !== 'LoadBalancer') errs.forbidden('spec.LoadBalancerSourceRanges', "may only be used when `type` is 'LoadBalancer'");
    arr(spec.loadBalancerSourceRanges).forEach((r, i) => {
      if (!validCIDR(strOf(r).trim())) errs.invalid(`spec.LoadBalancerSourceRanges[${i}]`, strOf(r).trim(), 'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)');
    });
  }
  if (present(spec.allocateLoadBalancerNodePorts) && type !== 'LoadBalancer') {
    errs.forbidden('spec.allocateLoadBalancerNodePorts', "may only be used when `type` is 'LoadBalancer'");
  }
  // as upstream: this path lacks "spec.".
  if (type === 'LoadBalancer' && !present(spec.allocateLoadBalancerNodePorts)) errs.required('allocateLoadBalancerNodePorts');
  if (present(spec.loadBalancerClass) && type !== 'LoadBalancer') errs.forbidden('spec.loadBalancerClass', "may only be used when `type` is 'LoadBalancer'");
  const externallyAccessible = type === 'LoadBalancer' || type === 'NodePort' || (type === 'ClusterIP' && arr(spec.externalIPs).length > 0);
  if (!externallyAccessible) {
    if (strOf(spec.externalTrafficPolicy)) errs.invalid('spec.externalTrafficPolicy', spec.externalTrafficPolicy, 'may only be set for externally-accessible services');
  } else if (!strOf(spec.externalTrafficPolicy)) {
    errs.required('spec.externalTrafficPolicy');
  } else if (!['Cluster', 'Local'].includes(spec.externalTrafficPolicy)) {
    errs.notSupported('spec.externalTrafficPolicy', spec.externalTrafficPolicy, ['Cluster', 'Local']);
  }
  const needsHealthCheck = type === 'LoadBalancer' && spec.externalTrafficPolicy === 'Local';
  if (!needsHealthCheck && spec.healthCheckNodePort) {
    errs.invalid('spec.healthCheckNodePort', spec.healthCheckNodePort, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'");
  }
  if (!present(spec.internalTrafficPolicy)) {
    if (['NodePort', 'LoadBalancer', 'ClusterIP'].includes(type)) errs.required('spec.internalTrafficPolicy');
  } else if (!['Cluster', 'Local'].includes(spec.internalTrafficPolicy)) {
    errs.notSupported('spec.internalTrafficPolicy', spec.internalTrafficPolicy, ['Cluster', 'Local']);
  }
  if (present(spec.trafficDistribution) && spec.trafficDistribution !== 'PreferClose') {
    errs.notSupported('spec.trafficDistribution', spec.trafficDistribution, ['PreferClose']);
  }
}

function validateClusterIPFields(errs: ErrorList, spec: Record<string, any>): void {
  if (spec.type === 'ExternalName') return;
  const clusterIP = strOf(spec.clusterIP);
  const ips = arr(spec.clusterIPs);
  if (clusterIP) {
    if (ips.length === 0) errs.required('spec.clusterIPs');
    else if (ips[0] !== clusterIP) errs.invalid('spec.clusterIPs', ips, 'first value must match `clusterIP`');
  } else if (ips.length) {
    errs.invalid('spec.clusterIPs', ips, 'must be empty when `clusterIP` is not specified');
  }
  const families = arr(spec.ipFamilies);
  const seen = new Set<string>();
  families.forEach((f, i) => {
    if (f !== 'IPv4' && f !== 'IPv6') errs.notSupported(`spec.ipFamilies[${i}]`, f, ['IPv4', 'IPv6']);
    if (seen.has(f)) errs.duplicate(`spec.ipFamilies[${i}]`, f);
    seen.add(f);
  });
  const policies = ['PreferDualStack', 'RequireDualStack', 'SingleStack'];
  if (present(spec.ipFamilyPolicy) && !policies.includes(spec.ipFamilyPolicy)) errs.notSupported('spec.ipFamilyPolicy', spec.ipFamilyPolicy, policies);
  let badIPs = false;
  ips.forEach((ip, i) => {
    if (i === 0 && ip === 'None') {
      if (ips.length > 1) {
        badIPs = true;
        errs.invalid('spec.clusterIPs', ips, "'None' must be the first and only value");
      }
      return;
    }
    if (!ipErrors(errs, `spec.clusterIPs[${i}]`, ip)) badIPs = true;
  });
  if (ips.length > 2) errs.invalid('spec.clusterIPs', ips, 'may only hold up to 2 values');
  if (badIPs) return;
  if (ips.length > 1 && parseIPSloppy(ips[0]) === parseIPSloppy(ips[1])) {
    errs.invalid('spec.clusterIPs', ips, 'may specify no more than one IP for each IP family');
  }
  if (!isHeadless(spec)) {
    ips.forEach((ip, i) => {
      const fam = families[i];
      if (fam === 'IPv4' && parseIPSloppy(ip) === 6) errs.invalid(`spec.clusterIPs[${i}]`, ip, `expected an IPv4 value as indicated by \`ipFamilies[${i}]\``);
      if (fam === 'IPv6' && parseIPSloppy(ip) !== 6) errs.invalid(`spec.clusterIPs[${i}]`, ip, `expected an IPv6 value as indicated by \`ipFamilies[${i}]\``);
    });
  }
}

function validateServiceUpdate(errs: ErrorList, svc: Record<string, any>, old: Record<string, any>): void {
  const spec = obj(svc.spec);
  const oldSpec = obj(old.spec);
  if (spec.type === 'ExternalName' || oldSpec.type === 'ExternalName') return;
  if (isHeadless(spec) && isHeadless(oldSpec)) return;
  const ips = arr(spec.clusterIPs);
  const oldIPs = arr(oldSpec.clusterIPs);
  if (ips.length === oldIPs.length) {
    oldIPs.forEach((ip, i) => {
      if (ip !== ips[i]) errs.invalid(`spec.clusterIPs[${i}]`, ips, 'may not change once set');
    });
  } else if (oldIPs.length > ips.length) {
    if (ips.length === 0) errs.invalid('spec.clusterIPs[0]', ips, 'primary clusterIP can not be unset');
    if (ips.length > 0 && ips[0] !== oldIPs[0]) errs.invalid('spec.clusterIPs[0]', ips, 'may not change once set');
    if (ips.length === 1 && spec.ipFamilyPolicy !== 'SingleStack') {
      errs.invalid('spec.ipFamilyPolicy', spec.ipFamilyPolicy ?? null, "must be set to 'SingleStack' when releasing the secondary clusterIP");
    }
  } else if (oldIPs.length > 0 && ips[0] !== oldIPs[0]) {
    errs.invalid('spec.clusterIPs[0]', ips, 'may not change once set');
  }
  const fams = arr(spec.ipFamilies);
  const oldFams = arr(oldSpec.ipFamilies);
  if (fams.length === oldFams.length && oldFams.some((f, i) => f !== fams[i])) {
    errs.invalid('spec.ipFamilies[0]', fams, 'may not change once set');
  }
}

// ---------------------------------------------------------------------------------------------------
// Table (printService)

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

export const service: KindStrategy = {
  info: resourceInfo('', 'v1', 'Service', 'services', true, {
    shortNames: ['svc'],
    categories: ['all'],
    verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
    subresources: ['status'],
  }),
  meta: { name: nameIsDNS1035Label, kubeFinalizers: true },
  defaults: defaultService,
  validate: validateService,
  validateUpdate: validateServiceUpdate,
  prepareForCreate: (obj) => {
    delete obj.status;
  },
  prepareForUpdate: (obj, old, subresource) => {
    if (subresource) return;
    obj.status = old.status;
    if (!obj.spec || !old.spec) return;
    // An allocated clusterIP (and node ports) survive an update that leaves them out (kubectl replace).
    if (obj.spec.type !== 'ExternalName') {
      if (obj.spec.clusterIP === undefined || obj.spec.clusterIP === '') obj.spec.clusterIP = old.spec.clusterIP;
      if (obj.spec.clusterIPs === undefined && old.spec.clusterIPs) obj.spec.clusterIPs = old.spec.clusterIPs;
    } else {
      delete obj.spec.clusterIP;
      delete obj.spec.clusterIPs;
      delete obj.spec.ipFamilies;
      delete obj.spec.ipFamilyPolicy;
    }
    const ports: any[] = Array.isArray(obj.spec.ports) ? obj.spec.ports : [];
    const oldPorts: any[] = Array.isArray(old.spec.ports) ? old.spec.ports : [];
    if (needsNodePorts(old.spec) && needsNodePorts(obj.spec)) {
      for (const p of ports) {
        if (p.nodePort) continue;
        const prev = oldPorts.find((o: any) => o.port === p.port && (o.protocol ?? 'TCP') === (p.protocol ?? 'TCP'));
        if (prev?.nodePort) p.nodePort = prev.nodePort;
      }
    } else if (needsNodePorts(old.spec)) {
      // dropTypeDependentFields: leaving NodePort, node ports the client merely kept (e.g. a patch of
      // type only) are dropped rather than rejected; a changed nodePort is still an error.
      const same = ports.every((p) => !p.nodePort || oldPorts.some((o: any) => o.nodePort === p.nodePort));
      if (same) for (const p of ports) delete p.nodePort;
    }
    // Likewise externalTrafficPolicy, kept unchanged by a client, when the Service stops being reachable
    // from outside (it is only valid for NodePort, LoadBalancer and ClusterIP with externalIPs).
    const external = (spec: any) =>
      spec.type === 'NodePort' || spec.type === 'LoadBalancer' || (spec.type === 'ClusterIP' && Array.isArray(spec.externalIPs) && spec.externalIPs.length > 0);
    if (external(old.spec) && !external(obj.spec) && obj.spec.externalTrafficPolicy === old.spec.externalTrafficPolicy) {
      delete obj.spec.externalTrafficPolicy;
    }
  },
  // ClusterIPs and node ports are taken before the write and given back if it fails, when an update
  // stops needing them, and when the Service is deleted.
  beginCreate: async (ctx, obj, dryRun) => {
    const taken = await ctx.services.allocateCreate(obj, dryRun);
    return async () => ctx.services.release(taken, obj.metadata.uid);
  },
  beginUpdate: async (ctx, obj, old, { dryRun, subresource }) => {
    if (subresource) return undefined;
    // A dry run shows what would be allocated, and checks requested values, without taking them.
    const { taken, release } = await ctx.services.allocateUpdate(obj, old, dryRun);
    return {
      commit: () => ctx.services.release(release, old.metadata.uid),
      abort: () => ctx.services.release(taken, old.metadata.uid),
    };
  },
  afterDelete: (ctx, obj) => ctx.services.release(ctx.services.held(obj), obj.metadata.uid),
  table: {
    columns: () => [
    nameCol(),
    col('Type', 'string', doc(`${CORE}ServiceSpec`, 'type')),
    col('Cluster-IP', 'string', doc(`${CORE}ServiceSpec`, 'clusterIP')),
    col('External-IP', 'string', doc(`${CORE}ServiceSpec`, 'externalIPs')),
    col('Port(s)', 'string', doc(`${CORE}ServiceSpec`, 'ports')),
    ageCol(),
    col('Selector', 'string', doc(`${CORE}ServiceSpec`, 'selector'), 1),
    ],
    print: printService,
  },
  fieldSelectors: {
    fields: {
    'metadata.namespace': namespaceField,
    'metadata.name': nameField,
    'spec.clusterIP': (o) => fieldString(o.spec?.clusterIP),
    'spec.type': (o) => fieldString(o.spec?.type),
    },
  },
};
