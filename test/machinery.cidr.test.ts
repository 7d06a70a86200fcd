// IPv4/CIDR arithmetic shared by the ClusterIP allocator and node IPAM (lambdas/machinery/cidr.ts).

import { describe, expect, it } from 'vitest';
import { formatCIDR, formatIPv4, overlaps, parseIPv4, parseIPv4CIDR } from '../lambdas/machinery/cidr.ts';

describe('cidr', () => {
  it('parses and formats IPv4 addresses, strictly', () => {
    expect(parseIPv4('10.244.3.7')).toBe(10 * 2 ** 24 + 244 * 2 ** 16 + 3 * 256 + 7);
    expect(formatIPv4(parseIPv4('255.255.255.255')!)).toBe('255.255.255.255');
    expect(formatIPv4(0)).toBe('0.0.0.0');
    for (const bad of ['10.0.0', '10.0.0.256', '10.0.0.01', '1.2.3.4.5', 'a.b.c.d', '']) expect(parseIPv4(bad)).toBeUndefined();
  });

  it('parses CIDRs to their network, dropping host bits', () => {
    expect(parseIPv4CIDR('10.244.3.7/16')).toEqual({ base: parseIPv4('10.244.0.0'), bits: 16, size: 65536 });
    expect(formatCIDR(parseIPv4CIDR('10.244.3.7/24')!)).toBe('10.244.3.0/24');
    expect(formatCIDR(parseIPv4CIDR('0.0.0.0/0')!)).toBe('0.0.0.0/0');
    expect(parseIPv4CIDR('10.0.0.1/32')!.size).toBe(1);
    for (const bad of ['10.0.0.0', '10.0.0.0/33', '10.0.0.0/-1', 'fd00::/64', '10.0.0.0/1/2']) expect(parseIPv4CIDR(bad)).toBeUndefined();
  });

  it('tells overlapping networks from disjoint ones', () => {
    const n = (s: string) => parseIPv4CIDR(s)!;
    expect(overlaps(n('10.244.0.0/16'), n('10.244.7.0/24'))).toBe(true);
    expect(overlaps(n('10.244.7.0/24'), n('10.0.0.0/8'))).toBe(true);
    expect(overlaps(n('10.244.0.0/24'), n('10.244.1.0/24'))).toBe(false);
    expect(overlaps(n('10.244.0.0/16'), n('10.245.0.0/16'))).toBe(false);
  });
});
