// NodePorts: a pod cannot go where one of its hostPorts is already taken. Two host ports conflict when
// protocol and port are equal and the host IPs are equal or either is the wildcard 0.0.0.0 (upstream's
// HostPortInfo.CheckConflict).

import { fail, OK, type FilterPlugin } from '../framework.ts';

export function portsConflict(wanted: string[], used: Set<string>): boolean {
  if (!wanted.length || !used.size) return false;
  for (const w of wanted) {
    const [proto, ip, port] = w.split('/');
    if (used.has(w)) return true;
    if (ip === '0.0.0.0') {
      for (const u of used) {
        const [p2, , port2] = u.split('/');
        if (p2 === proto && port2 === port) return true;
      }
    } else if (used.has(`${proto}/0.0.0.0/${port}`)) return true;
  }
  return false;
}

export const nodePorts: FilterPlugin = {
  name: 'NodePorts',
  filter(_pod, res, info) {
    return portsConflict(res.hostPorts, info.usedPorts) ? fail("node(s) didn't have free ports for the requested pod ports") : OK;
  },
};
