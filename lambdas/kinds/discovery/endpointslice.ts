// EndpointSlice (discovery.k8s.io/v1): pkg/registry/discovery/endpointslice. Written by the endpoints
// controller next to each Service's Endpoints (kubectl 1.32 describes Services from slices); users may
// write their own for selectorless Services.

import { setIfMissing } from '../../machinery/defaulting.ts';
import { ageCol, col, doc, listWithMore, nameCol, since, str } from '../../machinery/table.ts';
import { objectList as list } from '../../machinery/types.ts';
import {
  arr,
  dns1123LabelErrors,
  dns1123SubdomainErrors,
  inclusiveRangeError,
  labelKeyErrors,
  labelValueErrors,
  nameIsDNSSubdomain,
  nonSpecialIPErrors,
  obj,
  parseIPSloppy,
  present,
  PROTOCOLS,
  strOf,
  validateLabels,
  type ErrorList,
} from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

type Obj = Record<string, any>;

/** discovery/v1 SetDefaults_EndpointPort: an unnamed port is named "", protocol TCP. */
function defaultEndpointSlice(slice: Obj): void {
  for (const p of list(slice.ports)) {
    setIfMissing(p, 'name', '');
    setIfMissing(p, 'protocol', 'TCP');
  }
}

// Validation (pkg/apis/discovery/validation)
const ADDRESS_TYPES = ['FQDN', 'IPv4', 'IPv6'];
const MAX_SLICE_ENDPOINTS = 1000;
const MAX_SLICE_ADDRESSES = 100;
const MAX_SLICE_PORTS = 100;
const MAX_TOPOLOGY_LABELS = 16;

/** IsFullyQualifiedDomainName: a subdomain of at least two labels (a trailing dot allowed). */
function fqdnErrors(errs: ErrorList, field: string, name: string): void {
  const s = name.toLowerCase().replace(/\.$/, '');
  if (!s) return errs.required(field);
  if (s.split('.').length < 2) errs.invalid(field, name, 'should be a domain with at least two segments separated by dots');
  errs.each(field, name, dns1123SubdomainErrors(s));
}

function validateSliceAddress(errs: ErrorList, field: string, addressType: string, address: unknown): void {
  const a = strOf(address);
  // Unknown address types were refused above; their addresses are not checked further, as upstream.
  if (addressType === 'IPv4' || addressType === 'IPv6') {
    const want = addressType === 'IPv4' ? 4 : 6;
    if (parseIPSloppy(a) !== want) errs.invalid(field, a, `must be a valid ${addressType} address`);
    else nonSpecialIPErrors(errs, field, a);
  } else if (addressType === 'FQDN') {
    fqdnErrors(errs, field, a);
  }
}

function validateEndpointSlice(errs: ErrorList, slice: Record<string, any>): void {
  const addressType = strOf(slice.addressType);
  if (!addressType) errs.required('addressType');
  else if (!ADDRESS_TYPES.includes(addressType)) errs.notSupported('addressType', addressType, ADDRESS_TYPES);

  const endpoints = arr(slice.endpoints);
  if (endpoints.length > MAX_SLICE_ENDPOINTS) errs.tooMany('endpoints', endpoints.length, MAX_SLICE_ENDPOINTS);
  else {
    endpoints.forEach((e, i) => {
      const p = `endpoints[${i}]`;
      const ep = obj(e);
      const addrs = arr(ep.addresses);
      if (addrs.length === 0) errs.required(`${p}.addresses`, 'must contain at least 1 address');
      else if (addrs.length > MAX_SLICE_ADDRESSES) errs.tooMany(`${p}.addresses`, addrs.length, MAX_SLICE_ADDRESSES);
      addrs.forEach((a, j) => validateSliceAddress(errs, `${p}.addresses[${j}]`, addressType, a));
      if (present(ep.nodeName)) errs.each(`${p}.nodeName`, strOf(ep.nodeName), nameIsDNSSubdomain(strOf(ep.nodeName), false));
      const topology = obj(ep.deprecatedTopology);
      if (Object.keys(topology).length > MAX_TOPOLOGY_LABELS) errs.tooMany(`${p}.deprecatedTopology`, Object.keys(topology).length, MAX_TOPOLOGY_LABELS);
      validateLabels(errs, ep.deprecatedTopology, `${p}.deprecatedTopology`);
      if (present(ep.zone)) errs.each(`${p}.zone`, ep.zone, labelValueErrors(strOf(ep.zone)));
      if (present(ep.hostname)) errs.each(`${p}.hostname`, ep.hostname, dns1123LabelErrors(strOf(ep.hostname)));
    });
  }

  const ports = arr(slice.ports);
  if (ports.length > MAX_SLICE_PORTS) return errs.tooMany('ports', ports.length, MAX_SLICE_PORTS);
  const names = new Set<string>();
  ports.forEach((pt, i) => {
    const p = `ports[${i}]`;
    const port = obj(pt);
    const name = strOf(port.name);
    if (name) errs.each(`${p}.name`, name, dns1123LabelErrors(name));
    if (names.has(name)) errs.duplicate(`${p}.name`, name);
    names.add(name);
    // A port left out means "all ports"; a given one is a port number (0 as upstream's int32 allows).
    if (present(port.port) && !(typeof port.port === 'number' && Number.isInteger(port.port) && port.port >= 0 && port.port <= 65535)) {
      errs.invalid(`${p}.port`, port.port, inclusiveRangeError(0, 65535));
    }
    if (!strOf(port.protocol)) errs.required(`${p}.protocol`);
    else if (!PROTOCOLS.includes(port.protocol)) errs.notSupported(`${p}.protocol`, port.protocol, PROTOCOLS);
    if (present(port.appProtocol)) errs.each(`${p}.appProtocol`, port.appProtocol, labelKeyErrors(strOf(port.appProtocol)));
  });
}

const SLICE = 'io.k8s.api.discovery.v1.EndpointSlice';

/** formatDiscoveryPorts: the port number, else its name, else "*" (all ports). */
function formatDiscoveryPorts(ports: unknown): string {
  return listWithMore(list(ports).map((p) => (typeof p.port === 'number' ? String(p.port) : typeof p.name === 'string' ? p.name : '*')));
}

/** formatDiscoveryEndpoints: every address of every endpoint, ready or not. */
function formatDiscoveryEndpoints(endpoints: unknown): string {
  return listWithMore(list(endpoints).flatMap((e) => (Array.isArray(e.addresses) ? e.addresses.map(str) : [])));
}

export const endpointSlice: KindStrategy = {
  info: resourceInfo('discovery.k8s.io', 'v1', 'EndpointSlice', 'endpointslices', true),
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: true },
  defaults: defaultEndpointSlice,
  validate: validateEndpointSlice,
  validateUpdate: (errs, o, old) => {
    if (strOf(o.addressType) !== strOf(old.addressType)) errs.invalid('addressType', strOf(o.addressType), 'field is immutable');
  },
  table: {
    columns: () => [
      nameCol(),
      col('AddressType', 'string', doc(SLICE, 'addressType')),
      col('Ports', 'string', doc(SLICE, 'ports')),
      col('Endpoints', 'string', doc(SLICE, 'endpoints')),
      ageCol(),
    ],
    print: (o, now) => ({
      cells: [str(o.metadata?.name), str(o.addressType), formatDiscoveryPorts(o.ports), formatDiscoveryEndpoints(o.endpoints), since(o.metadata?.creationTimestamp, now)],
    }),
  },
};
