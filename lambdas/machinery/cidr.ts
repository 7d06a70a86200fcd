// IPv4 addresses and CIDR blocks as unsigned 32-bit numbers: the arithmetic the allocators share
// (Service clusterIPs in apiserver/service-alloc.ts, node pod CIDRs in controllers/nodeipam.ts).
// Numbers, not bigint or Buffers: every IPv4 value fits a double exactly, and the callers do + and %.

/** An IPv4 network: `base` is its network address, `size` the number of addresses (2^(32-bits)). */
export interface IPv4Net {
  base: number;
  bits: number;
  size: number;
}

/** "10.0.0.1" -> 167772161; undefined unless four decimal octets without leading zeros. */
export function parseIPv4(s: string): number | undefined {
  const parts = s.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function formatIPv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/**
 * "10.244.3.7/16" -> the network 10.244.0.0/16 (host bits dropped, as net.ParseCIDR does);
 * undefined unless an IPv4 address and a prefix length of 0-32.
 */
export function parseIPv4CIDR(s: string): IPv4Net | undefined {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(s);
  const ip = m ? parseIPv4(m[1]!) : undefined;
  const bits = m ? Number(m[2]) : NaN;
  if (ip === undefined || !(bits >= 0 && bits <= 32)) return undefined;
  const size = 2 ** (32 - bits);
  return { base: ip - (ip % size), bits, size };
}

export function formatCIDR(net: IPv4Net): string {
  return `${formatIPv4(net.base)}/${net.bits}`;
}

/** Whether two networks share any address (CIDR blocks either nest or are disjoint). */
export function overlaps(a: IPv4Net, b: IPv4Net): boolean {
  return a.base < b.base + b.size && b.base < a.base + a.size;
}

/** Whether an IPv4 address (dotted) lies in a network. */
export function containsIPv4(net: IPv4Net, ip: string): boolean {
  const n = parseIPv4(ip);
  return n !== undefined && n >= net.base && n < net.base + net.size;
}
