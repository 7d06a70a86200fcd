// Service clusterIP and node port allocation (lambdas/apiserver/service-alloc.ts) on both real stores
// (SQLite, and DynamoDB through moto), with Kubernetes' Invalid texts; then through the machine's kubectl.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiServer, type ApiServerOptions } from '../lambdas/apiserver/app.ts';
import { NODE_PORT_PREFIX, SERVICE_IP_PREFIX } from '../lambdas/apiserver/service-alloc.ts';
import { ApiError } from '../lambdas/machinery/status.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import type { Backend } from '../lambdas/storage/backend.ts';
import { testBackends } from './support/backends.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';

const svcRes = findResource('', 'v1', 'services')!;
const nsRes = findResource('', 'v1', 'namespaces')!;

const backends = await testBackends('svcalloc');

function svc(name: string, spec: Record<string, any> = {}): KubeObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { ports: [{ port: 80, targetPort: 8080 }], ...spec } };
}

/** The ApiError a promise rejects with (fails the test if it resolves). */
async function apiError(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error('expected an ApiError');
}

function ipNum(ip: string): number {
  return ip.split('.').reduce((a, p) => a * 256 + Number(p), 0);
}

function inCIDR(ip: string, cidr: string): boolean {
  const [net, bits] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipNum(ip) / size) === Math.floor(ipNum(net!) / size);
}

async function keys(backend: Backend, prefix: string): Promise<string[]> {
  return (await backend.list(prefix)).kvs.map((kv) => kv.key.slice(prefix.length));
}

describe.each(backends)('service allocation on %s', (_name, makeBackend, enabled) => {
  async function setup(opts: Partial<ApiServerOptions> = {}) {
    const backend = await makeBackend();
    const api = new ApiServer({ backend, ...opts });
    await api.registry.create(nsRes, undefined, { metadata: { name: 'default' } });
    return { backend, reg: api.registry };
  }

  it.runIf(enabled)('allocates a clusterIP from the default range, honours a chosen one and refuses a duplicate', async () => {
    const { backend, reg } = await setup();
    const a = await reg.create(svcRes, 'default', svc('a'));
    expect(inCIDR(a.spec.clusterIP, '10.96.0.0/16')).toBe(true);
    expect(a.spec.clusterIPs).toEqual([a.spec.clusterIP]);
    expect(a.spec.clusterIP).not.toBe('10.96.0.1'); // the kubernetes service's address
    expect(a.spec.ipFamilies).toEqual(['IPv4']);
    expect(a.spec.ipFamilyPolicy).toBe('SingleStack');
    // The allocation is a storage key owned by the service's uid.
    const kv = await backend.get(SERVICE_IP_PREFIX + a.spec.clusterIP);
    expect(JSON.parse(kv!.value)).toMatchObject({ namespace: 'default', name: 'a', uid: a.metadata.uid });

    const b = await reg.create(svcRes, 'default', svc('b', { clusterIP: '10.96.0.10' }));
    expect(b.spec.clusterIP).toBe('10.96.0.10');
    expect(b.spec.clusterIPs).toEqual(['10.96.0.10']);
    const dup = await apiError(reg.create(svcRes, 'default', svc('c', { clusterIP: '10.96.0.10' })));
    expect(dup.code).toBe(422);
    expect(dup.status.reason).toBe('Invalid');
    expect(dup.status.message).toBe(
      'Service "c" is invalid: spec.clusterIPs: Invalid value: ["10.96.0.10"]: failed to allocate IP 10.96.0.10: provided IP is already allocated',
    );
    expect(dup.status.details?.causes?.[0]?.field).toBe('spec.clusterIPs');
    // Nothing of "c" is stored; b still owns its IP.
    await expect(reg.get(svcRes, 'default', 'c')).rejects.toThrow(/not found/);
    expect(JSON.parse((await backend.get(SERVICE_IP_PREFIX + '10.96.0.10'))!.value).uid).toBe(b.metadata.uid);
  });

  it.runIf(enabled)('refuses an IP outside the range, and IPv6 / RequireDualStack on this IPv4 cluster', async () => {
    const { backend, reg } = await setup();
    const out = await apiError(reg.create(svcRes, 'default', svc('x', { clusterIP: '10.0.0.1' })));
    expect(out.code).toBe(422);
    expect(out.status.message).toBe(
      'Service "x" is invalid: spec.clusterIPs: Invalid value: ["10.0.0.1"]: failed to allocate IP 10.0.0.1: provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/16',
    );
    // The network and broadcast addresses are not allocatable either.
    expect((await apiError(reg.create(svcRes, 'default', svc('y', { clusterIP: '10.96.255.255' })))).status.message).toMatch(/not in the valid range/);
    const v6 = await apiError(reg.create(svcRes, 'default', svc('z', { ipFamilies: ['IPv6'] })));
    expect(v6.status.message).toBe('Service "z" is invalid: spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster');
    const ds = await apiError(reg.create(svcRes, 'default', svc('w', { ipFamilyPolicy: 'RequireDualStack' })));
    expect(ds.status.message).toBe('Service "w" is invalid: spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services');
    expect(await keys(backend, SERVICE_IP_PREFIX)).toEqual([]);
  });

  it.runIf(enabled)('headless services get no IP; headless NodePort is invalid', async () => {
    const { backend, reg } = await setup();
    const h = await reg.create(svcRes, 'default', svc('h', { clusterIP: 'None', selector: { app: 'x' } }));
    expect(h.spec.clusterIP).toBe('None');
    expect(h.spec.clusterIPs).toEqual(['None']);
    expect(await keys(backend, SERVICE_IP_PREFIX)).toEqual([]);
    const bad = await apiError(reg.create(svcRes, 'default', svc('hn', { clusterIP: 'None', type: 'NodePort' })));
    expect(bad.status.message).toBe(`Service "hn" is invalid: spec.clusterIPs[0]: Invalid value: "None": may not be set to 'None' for NodePort services`);
    expect(await keys(backend, NODE_PORT_PREFIX)).toEqual([]);
    // Deleting a headless service releases nothing and fails nothing.
    await reg.delete(svcRes, 'default', 'h');
  });

  it.runIf(enabled)('releases the IP on delete so it can be taken again', async () => {
    const { backend, reg } = await setup();
    const a = await reg.create(svcRes, 'default', svc('a', { clusterIP: '10.96.1.1' }));
    expect(a.spec.clusterIP).toBe('10.96.1.1');
    await reg.delete(svcRes, 'default', 'a');
    expect(await keys(backend, SERVICE_IP_PREFIX)).toEqual([]);
    const b = await reg.create(svcRes, 'default', svc('b', { clusterIP: '10.96.1.1' }));
    expect(b.spec.clusterIP).toBe('10.96.1.1');
    // A failed create (name taken) gives back what it allocated.
    const again = await apiError(reg.create(svcRes, 'default', svc('b')));
    expect(again.status.reason).toBe('AlreadyExists');
    expect(await keys(backend, SERVICE_IP_PREFIX)).toEqual(['10.96.1.1']);
  });

  it.runIf(enabled)('50 concurrent creates all get distinct IPs', async () => {
    const { backend, reg } = await setup();
    const created = await Promise.all(Array.from({ length: 50 }, (_, i) => reg.create(svcRes, 'default', svc(`s${i}`))));
    const ips = created.map((s) => s.spec.clusterIP as string);
    expect(new Set(ips).size).toBe(50);
    for (const ip of ips) expect(inCIDR(ip, '10.96.0.0/16')).toBe(true);
    expect((await keys(backend, SERVICE_IP_PREFIX)).sort()).toEqual([...ips].sort());
  }, 60_000);

  it.runIf(enabled)('a tiny range fills up with every address used once, then "range is full" without leaking', async () => {
    // 10.97.0.0/29: .0 network, .7 broadcast, .1 the kubernetes service's: .2-.6 are dynamic.
    const { backend, reg } = await setup({ serviceCIDR: '10.97.0.0/29' });
    const created = await Promise.all(Array.from({ length: 5 }, (_, i) => reg.create(svcRes, 'default', svc(`t${i}`))));
    expect(created.map((s) => s.spec.clusterIP).sort()).toEqual(['10.97.0.2', '10.97.0.3', '10.97.0.4', '10.97.0.5', '10.97.0.6']);
    const full = await apiError(reg.create(svcRes, 'default', svc('t5')));
    expect(full.code).toBe(500);
    expect(full.status.reason).toBe('InternalError');
    expect(full.status.message).toBe('Internal error occurred: failed to allocate a serviceIP: range is full');
    // .1 is reserved from dynamic allocation but may be asked for (by the kubernetes service).
    const k = await reg.create(svcRes, 'default', svc('kubernetes', { clusterIP: '10.97.0.1' }));
    expect(k.spec.clusterIP).toBe('10.97.0.1');
    expect((await keys(backend, SERVICE_IP_PREFIX)).length).toBe(6);
    await expect(reg.get(svcRes, 'default', 't5')).rejects.toThrow(/not found/);
    // Freeing one makes room for exactly one more.
    await reg.delete(svcRes, 'default', 't3');
    const next = await reg.create(svcRes, 'default', svc('t5'));
    expect(next.spec.clusterIP).toBe(created[3]!.spec.clusterIP);
  }, 60_000);

  it.runIf(enabled)('repair reclaims an allocation whose service no longer exists, once the range is full', async () => {
    const { backend, reg } = await setup({ serviceCIDR: '10.98.0.0/29' });
    // Leaks as a crash between allocating and storing the Service would leave them (old enough to be past the grace).
    const old = new Date(Date.now() - 10 * 60_000).toISOString();
    for (const ip of ['10.98.0.2', '10.98.0.3']) {
      await backend.create(SERVICE_IP_PREFIX + ip, JSON.stringify({ namespace: 'default', name: 'gone', uid: 'no-such-uid', allocatedAt: old }));
    }
    // A fresh allocation of a Service not stored yet (a create in flight) is never reclaimed.
    await backend.create(SERVICE_IP_PREFIX + '10.98.0.4', JSON.stringify({ namespace: 'default', name: 'inflight', uid: 'u2', allocatedAt: new Date().toISOString() }));
    const made = await Promise.all(Array.from({ length: 4 }, (_, i) => reg.create(svcRes, 'default', svc(`r${i}`))));
    const ips = made.map((s) => s.spec.clusterIP as string).sort();
    expect(ips).toEqual(['10.98.0.2', '10.98.0.3', '10.98.0.5', '10.98.0.6']);
    for (const s of made) expect(JSON.parse((await backend.get(SERVICE_IP_PREFIX + s.spec.clusterIP))!.value).uid).toBe(s.metadata.uid);
    expect(JSON.parse((await backend.get(SERVICE_IP_PREFIX + '10.98.0.4'))!.value).uid).toBe('u2');
    expect((await apiError(reg.create(svcRes, 'default', svc('r4')))).status.message).toMatch(/range is full/);
    // A user asking for a leaked value gets it too; repair() alone frees the rest.
    await backend.create(NODE_PORT_PREFIX + '30500', JSON.stringify({ namespace: 'default', name: 'gone', uid: 'no-such-uid', allocatedAt: old }));
    await reg.delete(svcRes, 'default', 'r0');
    const np = await reg.create(svcRes, 'default', svc('np', { type: 'NodePort', ports: [{ port: 80, nodePort: 30500 }] }));
    expect(np.spec.ports[0].nodePort).toBe(30500);
    await backend.create(NODE_PORT_PREFIX + '30501', JSON.stringify({ namespace: 'default', name: 'gone', uid: 'no-such-uid', allocatedAt: old }));
    expect(await reg.services.repair()).toEqual([NODE_PORT_PREFIX + '30501']);
  }, 60_000);

  it.runIf(enabled)('allocates node ports; a duplicate or out-of-range nodePort is Invalid', async () => {
    const { backend, reg } = await setup();
    const a = await reg.create(svcRes, 'default', svc('a', { type: 'NodePort' }));
    const np = a.spec.ports[0].nodePort;
    expect(np).toBeGreaterThanOrEqual(30000);
    expect(np).toBeLessThanOrEqual(32767);
    expect(a.spec.externalTrafficPolicy).toBe('Cluster');
    const b = await reg.create(svcRes, 'default', svc('b', { type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }] }));
    expect(b.spec.ports[0].nodePort).toBe(30080);
    const dup = await apiError(reg.create(svcRes, 'default', svc('c', { type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }] })));
    expect(dup.code).toBe(422);
    expect(dup.status.message).toBe('Service "c" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated');
    const out = await apiError(reg.create(svcRes, 'default', svc('d', { type: 'NodePort', ports: [{ port: 80, nodePort: 8080 }] })));
    expect(out.status.message).toBe(
      'Service "d" is invalid: spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767',
    );
    // The failed creates leaked neither their clusterIP nor a node port.
    expect((await keys(backend, SERVICE_IP_PREFIX)).sort()).toEqual([a.spec.clusterIP, b.spec.clusterIP].sort());
    expect((await keys(backend, NODE_PORT_PREFIX)).sort()).toEqual([String(np), '30080'].sort());
    // 53/TCP and 53/UDP share one node port, as upstream; a named targetPort is kept.
    const dns = await reg.create(
      svcRes,
      'default',
      svc('dns', { type: 'NodePort', ports: [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: 'dns' }, { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 'dns-tcp' }] }),
    );
    expect(dns.spec.ports[0].nodePort).toBe(dns.spec.ports[1].nodePort);
    expect(dns.spec.ports[0].targetPort).toBe('dns');
    await reg.delete(svcRes, 'default', 'dns');
    await reg.delete(svcRes, 'default', 'b');
    expect(await keys(backend, NODE_PORT_PREFIX)).toEqual([String(np)]);
  });

  it.runIf(enabled)('port validation and defaults: names, protocol, port range, targetPort by number or name', async () => {
    const { backend, reg } = await setup();
    const bad = await apiError(
      reg.create(svcRes, 'default', svc('p', { ports: [{ port: 70000 }, { port: 81, protocol: 'ICMP', targetPort: 'Web_1' }] })),
    );
    expect(bad.code).toBe(422);
    expect(bad.status.details?.causes?.map((c) => `${c.field}: ${c.message}`)).toEqual([
      'spec.ports[0].name: Required value',
      'spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive',
      'spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive',
      'spec.ports[1].name: Required value',
      'spec.ports[1].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
      'spec.ports[1].targetPort: Invalid value: "Web_1": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
    ]);
    // Invalid objects allocate nothing.
    expect(await keys(backend, SERVICE_IP_PREFIX)).toEqual([]);
    const ok = await reg.create(svcRes, 'default', svc('p', { ports: [{ name: 'web', port: 80, targetPort: 'http' }, { name: 'dns', port: 53, protocol: 'UDP' }] }));
    expect(ok.spec.ports).toEqual([
      { name: 'web', port: 80, targetPort: 'http', protocol: 'TCP' },
      { name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 },
    ]);
    expect(ok.spec.type).toBe('ClusterIP');
    expect(ok.spec.externalTrafficPolicy).toBeUndefined();
  });

  it.runIf(enabled)('dry runs show the allocation and check requested values without taking anything', async () => {
    const { backend, reg } = await setup();
    const d = await reg.create(svcRes, 'default', svc('d', { type: 'NodePort' }), { dryRun: true });
    expect(inCIDR(d.spec.clusterIP, '10.96.0.0/16')).toBe(true);
    expect(d.spec.ports[0].nodePort).toBeGreaterThanOrEqual(30000);
    const a = await reg.create(svcRes, 'default', svc('a', { clusterIP: '10.96.7.7' }));
    expect((await apiError(reg.create(svcRes, 'default', svc('b', { clusterIP: '10.96.7.7' }), { dryRun: true }))).status.message).toMatch(/already allocated/);
    const u = await reg.update(svcRes, 'default', 'a', { ...a, spec: { ...a.spec, type: 'NodePort' } }, { dryRun: true });
    expect(u.spec.ports[0].nodePort).toBeGreaterThanOrEqual(30000);
    expect(await keys(backend, SERVICE_IP_PREFIX)).toEqual(['10.96.7.7']);
    expect(await keys(backend, NODE_PORT_PREFIX)).toEqual([]);
    expect((await reg.get(svcRes, 'default', 'a')).spec.type).toBe('ClusterIP');
  });

  it.runIf(enabled)('a configured node port range and a small one filling up', async () => {
    const { reg } = await setup({ nodePortRange: '31000-31001' });
    const s = await reg.create(svcRes, 'default', svc('a', { type: 'NodePort', ports: [{ name: 'a', port: 80 }, { name: 'b', port: 81 }] }));
    expect(s.spec.ports.map((p: any) => p.nodePort).sort()).toEqual([31000, 31001]);
    const full = await apiError(reg.create(svcRes, 'default', svc('b', { type: 'NodePort' })));
    expect(full.status.message).toBe('Internal error occurred: failed to allocate a nodePort: range is full');
    expect((await apiError(reg.create(svcRes, 'default', svc('c', { type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }] })))).status.message).toMatch(
      /The range of valid ports is 31000-31001$/,
    );
  });

  it.runIf(enabled)('update: clusterIP immutable, ClusterIP→NodePort allocates, NodePort→ClusterIP releases', async () => {
    const { backend, reg } = await setup();
    const a = await reg.create(svcRes, 'default', svc('a'));
    const ip = a.spec.clusterIP;
    const change = await apiError(reg.update(svcRes, 'default', 'a', { ...a, spec: { ...a.spec, clusterIP: '10.96.3.3', clusterIPs: ['10.96.3.3'] } }));
    expect(change.code).toBe(422);
    expect(change.status.message).toMatch(/spec.clusterIPs\[0\]: Invalid value: \["10.96.3.3"\]: may not change once set/);
    expect(await keys(backend, SERVICE_IP_PREFIX)).toEqual([ip]);
    // A replace that leaves clusterIP out keeps it.
    const kept = await reg.update(svcRes, 'default', 'a', { ...a, spec: { ports: a.spec.ports } });
    expect(kept.spec.clusterIP).toBe(ip);

    const np = await reg.update(svcRes, 'default', 'a', { ...kept, spec: { ...kept.spec, type: 'NodePort' } });
    const port = np.spec.ports[0].nodePort;
    expect(port).toBeGreaterThanOrEqual(30000);
    expect(np.spec.clusterIP).toBe(ip);
    expect(await keys(backend, NODE_PORT_PREFIX)).toEqual([String(port)]);
    // Changing the nodePort takes the new one and gives back the old.
    const moved = await reg.update(svcRes, 'default', 'a', { ...np, spec: { ...np.spec, ports: [{ ...np.spec.ports[0], nodePort: 32000 }] } });
    expect(moved.spec.ports[0].nodePort).toBe(32000);
    expect(await keys(backend, NODE_PORT_PREFIX)).toEqual(['32000']);
    // Back to ClusterIP: the node port the client kept is dropped and released (dropTypeDependentFields).
    const back = await reg.update(svcRes, 'default', 'a', { ...moved, spec: { ...moved.spec, type: 'ClusterIP' } });
    expect(back.spec.type).toBe('ClusterIP');
    expect(back.spec.ports[0].nodePort).toBeUndefined();
    expect(back.spec.externalTrafficPolicy).toBeUndefined();
    expect(await keys(backend, NODE_PORT_PREFIX)).toEqual([]);
    // To ExternalName releases the IP; back to ClusterIP allocates one again.
    const ext = await reg.update(svcRes, 'default', 'a', { ...back, spec: { type: 'ExternalName', externalName: 'example.com', ports: back.spec.ports } });
    expect(ext.spec.clusterIP).toBeUndefined();
    expect(await keys(backend, SERVICE_IP_PREFIX)).toEqual([]);
    const again = await reg.update(svcRes, 'default', 'a', { ...ext, spec: { type: 'ClusterIP', ports: ext.spec.ports } });
    expect(inCIDR(again.spec.clusterIP, '10.96.0.0/16')).toBe(true);
    expect(await keys(backend, SERVICE_IP_PREFIX)).toEqual([again.spec.clusterIP]);
    // A taken node port on update is Invalid and the update changes nothing.
    await reg.create(svcRes, 'default', svc('b', { type: 'NodePort', ports: [{ port: 80, nodePort: 30100 }] }));
    const taken = await apiError(reg.update(svcRes, 'default', 'a', { ...again, spec: { ...again.spec, type: 'NodePort', ports: [{ port: 80, nodePort: 30100 }] } }));
    expect(taken.status.message).toBe('Service "a" is invalid: spec.ports[0].nodePort: Invalid value: 30100: provided port is already allocated');
    expect((await reg.get(svcRes, 'default', 'a')).spec.type).toBe('ClusterIP');
    expect(await keys(backend, NODE_PORT_PREFIX)).toEqual(['30100']);
  }, 60_000);
});

describe('services through kubectl', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startTestCluster({ controllers: false });
    await c.api.registry.create(nsRes, undefined, { metadata: { name: 'default' } }).catch(() => undefined);
  }, 60_000);
  afterAll(async () => {
    await c?.destroy();
  });

  it('kubectl create service clusterip / nodeport show a CLUSTER-IP and a node port', async () => {
    const cr = await c.kubectl(['create', 'service', 'clusterip', 'x', '--tcp=80:8080']);
    expect(cr.stderr).toBe('');
    expect(cr.stdout).toContain('service/x created');
    const get = await c.kubectl(['get', 'svc', 'x']);
    expect(get.code).toBe(0);
    const row = get.stdout.split('\n')[1]!.split(/\s+/);
    expect(row[0]).toBe('x');
    expect(row[1]).toBe('ClusterIP');
    expect(inCIDR(row[2]!, '10.96.0.0/16')).toBe(true);
    expect(row[4]).toBe('80/TCP');

    const np = await c.kubectl(['create', 'service', 'nodeport', 'y', '--tcp=80:8080']);
    expect(np.code).toBe(0);
    const gy = await c.kubectl(['get', 'svc', 'y', '-o', 'jsonpath={.spec.ports[0].nodePort} {.spec.clusterIP}']);
    const [port, ip] = gy.stdout.split(' ');
    expect(Number(port)).toBeGreaterThanOrEqual(30000);
    expect(Number(port)).toBeLessThanOrEqual(32767);
    expect(inCIDR(ip!, '10.96.0.0/16')).toBe(true);
    const wide = await c.kubectl(['get', 'svc', 'y']);
    expect(wide.stdout).toContain(`80:${port}/TCP`);

    // A duplicate node port is refused with Kubernetes' text.
    const dup = await c.kubectl(['create', 'service', 'nodeport', 'z', '--tcp=80:8080', `--node-port=${port}`]);
    expect(dup.code).not.toBe(0);
    // kubectl's typed create prefixes "error: failed to create NodePort service: ".
    expect(dup.stderr).toContain(`Service "z" is invalid: spec.ports[0].nodePort: Invalid value: ${port}: provided port is already allocated`);
    // Deleting y frees its node port for z.
    expect((await c.kubectl(['delete', 'svc', 'y'])).code).toBe(0);
    const z = await c.kubectl(['create', 'service', 'nodeport', 'z', '--tcp=80:8080', `--node-port=${port}`]);
    expect(z.stderr).toBe('');
    expect(z.code).toBe(0);
    // A patch of type alone back to ClusterIP drops and releases the node port (dropTypeDependentFields).
    const patch = await c.kubectl(['patch', 'svc', 'z', '-p', '{"spec":{"type":"ClusterIP"}}']);
    expect(patch.stderr).toBe('');
    const gz = await c.kubectl(['get', 'svc', 'z', '-o', 'jsonpath={.spec.type} {.spec.ports[0].nodePort}|{.spec.externalTrafficPolicy}|']);
    expect(gz.stdout).toBe('ClusterIP ||');
    const w = await c.kubectl(['create', 'service', 'nodeport', 'w', '--tcp=80:8080', `--node-port=${port}`]);
    expect(w.stderr).toBe('');
  }, 60_000);
});
