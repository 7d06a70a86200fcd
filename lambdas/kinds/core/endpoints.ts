// Endpoints (core/v1): pkg/registry/core/endpoint. Written by the endpoints controller for each Service
// with a selector, and by users for Services without one.

import { setIfMissing } from '../../machinery/defaulting.ts';
import { ageCol, col, CORE, doc, int, listWithMore, nameCol, since, str } from '../../machinery/table.ts';
import { objectList as list } from '../../machinery/types.ts';
import {
  arr,
  dns1123LabelErrors,
  ipErrors,
  labelKeyErrors,
  nameIsDNSSubdomain,
  nonSpecialIPErrors,
  obj,
  portNumErrors,
  present,
  PROTOCOLS,
  strOf,
  type ErrorList,
} from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

type Obj = Record<string, any>;

function defaultEndpoints(ep: Obj): void {
  for (const ss of list(ep.subsets)) for (const p of list(ss.ports)) setIfMissing(p, 'protocol', 'TCP');
}

function validateEndpoints(errs: ErrorList, ep: Record<string, any>): void {
  arr(ep.subsets).forEach((ss, i) => {
    const p = `subsets[${i}]`;
    const s = obj(ss);
    if (arr(s.addresses).length === 0 && arr(s.notReadyAddresses).length === 0) errs.required(p, 'must specify `addresses` or `notReadyAddresses`');
    for (const list of ['addresses', 'notReadyAddresses']) {
      arr(s[list]).forEach((a, j) => {
        const ap = `${p}.${list}[${j}]`;
        const addr = obj(a);
        const valid = ipErrors(errs, `${ap}.ip`, addr.ip);
        if (strOf(addr.hostname)) errs.each(`${ap}.hostname`, addr.hostname, dns1123LabelErrors(addr.hostname));
        if (present(addr.nodeName)) errs.each(`${ap}.nodeName`, strOf(addr.nodeName), nameIsDNSSubdomain(strOf(addr.nodeName), false));
        if (valid) nonSpecialIPErrors(errs, `${ap}.ip`, addr.ip);
        else errs.invalid(`${ap}.ip`, addr.ip ?? '', 'must be a valid IP address');
      });
    }
    const ports = arr(s.ports);
    ports.forEach((pt, j) => {
      const pp = `${p}.ports[${j}]`;
      const port = obj(pt);
      if (ports.length > 1 && !strOf(port.name)) errs.required(`${pp}.name`);
      else if (strOf(port.name)) errs.each(`${pp}.name`, port.name, dns1123LabelErrors(port.name));
      errs.each(`${pp}.port`, port.port ?? 0, portNumErrors(port.port));
      if (!strOf(port.protocol)) errs.required(`${pp}.protocol`);
      else if (!PROTOCOLS.includes(port.protocol)) errs.notSupported(`${pp}.protocol`, port.protocol, PROTOCOLS);
      if (present(port.appProtocol)) errs.each(`${pp}.appProtocol`, port.appProtocol, labelKeyErrors(strOf(port.appProtocol)));
    });
  });
}

function joinHostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
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

export const endpoints: KindStrategy = {
  info: resourceInfo('', 'v1', 'Endpoints', 'endpoints', true, { shortNames: ['ep'] }),
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: true },
  defaults: defaultEndpoints,
  validate: validateEndpoints,
  table: {
    columns: () => [nameCol(), col('Endpoints', 'string', doc(`${CORE}Endpoints`, 'subsets')), ageCol()],
    print: (o, now) => ({ cells: [str(o.metadata?.name), formatEndpoints(o), since(o.metadata?.creationTimestamp, now)] }),
  },
};
