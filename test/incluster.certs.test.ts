// The local apiserver's serving certificate carries the names and the cluster IP pods reach it by (the
// `kubernetes` Service's), and a data dir whose certificate predates them gets one that does at start;
// the `kubernetes` Service is there from the first start, kept across restarts.

import { afterAll, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCerts, missingNames } from '../lambdas/local/certs.ts';
import { startTestCluster } from './support/cluster.ts';

const POD_NAMES = ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', '10.96.0.1'];
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

it('a data dir from before the kubernetes Service names gets a certificate with them, and kubectl keeps working', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'skiff-incluster-certs-'));
  dirs.push(dataDir);
  const old = await generateCerts(['127.0.0.1', 'localhost', '::1']);
  mkdirSync(join(dataDir, 'pki'));
  writeFileSync(join(dataDir, 'pki', 'ca.crt'), old.caCert);
  writeFileSync(join(dataDir, 'pki', 'apiserver.crt'), old.serverCert);
  writeFileSync(join(dataDir, 'pki', 'apiserver.key'), old.serverKey);
  expect(missingNames(old.serverCert, POD_NAMES)).toEqual(POD_NAMES);

  const c = await startTestCluster({ dataDir, controllers: false });
  try {
    const served = readFileSync(join(dataDir, 'pki', 'apiserver.crt'), 'utf8');
    expect(missingNames(served, [...POD_NAMES, '127.0.0.1', 'localhost', '::1'])).toEqual([]);
    expect(c.caCert).not.toBe(old.caCert);
    // The kubeconfig carries the new CA: kubectl verifies the new certificate.
    const r = await c.kubectl(['-n', 'default', 'get', 'service', 'kubernetes', '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const svc = JSON.parse(r.stdout);
    expect(svc.spec).toMatchObject({ type: 'ClusterIP', clusterIP: '10.96.0.1', ports: [{ name: 'https', protocol: 'TCP', port: 443, targetPort: c.port }] });
  } finally {
    await c.close();
  }

  // Restarted on the same data dir: the same certificate (nothing missing), the same Service.
  const before = readFileSync(join(dataDir, 'pki', 'apiserver.crt'), 'utf8');
  const again = await startTestCluster({ dataDir, controllers: false });
  try {
    expect(readFileSync(join(dataDir, 'pki', 'apiserver.crt'), 'utf8')).toBe(before);
    const r = await again.kubectl(['-n', 'default', 'get', 'service', 'kubernetes', '-o', 'jsonpath={.spec.clusterIP} {.spec.ports[0].targetPort}']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`10.96.0.1 ${again.port}`);
  } finally {
    await again.close();
  }
}, 120_000);
