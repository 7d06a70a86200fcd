// The local cluster's PKI: a self-signed CA and a serving certificate (127.0.0.1, localhost and the
// `kubernetes` Service's names and cluster IP, which pods verify) signed
// by it, made at first start and kept in the data dir (kubectl verifies the server with the CA).

import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { newServiceAccountKeyPem } from '../apiserver/serviceaccount-tokens.ts';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface ClusterCerts {
  caCert: string; // PEM
  serverCert: string; // PEM
  serverKey: string; // PEM (PKCS#8)
}

export async function keyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key as any);
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN PRIVATE KEY-----\n${b64.trimEnd()}\n-----END PRIVATE KEY-----\n`;
}

export async function generateCerts(hosts: string[]): Promise<ClusterCerts> {
  const now = new Date(Date.now() - 60_000);
  const tenYears = new Date(now.getTime() + 10 * 365 * 24 * 3600 * 1000);
  const caKeys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=skiff-ca',
    notBefore: now,
    notAfter: tenYears,
    signingAlgorithm: alg,
    keys: caKeys as any,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const srvKeys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const names = hosts.map((h) => (/^[\d.]+$|:/.test(h) ? { type: 'ip' as const, value: h } : { type: 'dns' as const, value: h }));
  const srv = await x509.X509CertificateGenerator.create({
    subject: 'CN=skiff-apiserver',
    issuer: ca.subject,
    notBefore: now,
    notAfter: tenYears,
    signingAlgorithm: alg,
    publicKey: srvKeys.publicKey,
    signingKey: caKeys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  return { caCert: ca.toString('pem'), serverCert: srv.toString('pem'), serverKey: await keyPem(srvKeys.privateKey) };
}

/** Loads the certificates from dir, creating them on first start. */
export async function loadOrCreateCerts(dir: string, hosts = ['127.0.0.1', 'localhost', '::1']): Promise<ClusterCerts> {
  const p = (f: string) => join(dir, f);
  if (existsSync(p('ca.crt')) && existsSync(p('apiserver.crt')) && existsSync(p('apiserver.key'))) {
    const c = {
      caCert: readFileSync(p('ca.crt'), 'utf8'),
      serverCert: readFileSync(p('apiserver.crt'), 'utf8'),
      serverKey: readFileSync(p('apiserver.key'), 'utf8'),
    };
    // A damaged file (e.g. empty: written, then lost from the page cache before it reached the disk)
    // would serve TLS that every client fails at the handshake; say so instead.
    for (const [f, pem] of [['ca.crt', c.caCert], ['apiserver.crt', c.serverCert], ['apiserver.key', c.serverKey]] as const) {
      if (!/^-----BEGIN [A-Z ]+-----\n[\s\S]+\n-----END [A-Z ]+-----\n?$/.test(pem)) {
        throw new Error(`${p(f)} is empty or damaged: remove ${dir} to make new certificates (the kubeconfig is rewritten with them)`);
      }
    }
    // A data dir from before the serving certificate carried every name it must (e.g. the `kubernetes`
    // Service's, which pods verify): issued again below, with a new CA (its key is not kept), which the
    // kubeconfig written at each start carries.
    if (missingNames(c.serverCert, hosts).length === 0) return c;
  }
  mkdirSync(dir, { recursive: true });
  const c = await generateCerts(hosts);
  writeDurably(p('ca.crt'), c.caCert, 0o644);
  writeDurably(p('apiserver.crt'), c.serverCert, 0o644);
  writeDurably(p('apiserver.key'), c.serverKey, 0o600);
  syncDir(dirname(dir)); // the pki directory's own entry
  return c;
}

/**
 * The service-account signing key bundle, <dir>/sa.key (beside the CA, as kubeadm keeps sa.key), made at
 * first start: one RSA key, PKCS#8 PEM. Returns its path; the apiserver re-reads it (serviceaccount-tokens.ts),
 * so a rotation (a new key put first, the old kept after it) needs no restart.
 */
export function ensureServiceAccountKey(dir: string): string {
  const path = join(dir, 'sa.key');
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true });
    writeDurably(path, newServiceAccountKeyPem(), 0o600);
  }
  return path;
}

/** The hosts (DNS names and IPs) the certificate's subjectAltName lacks. */
export function missingNames(certPem: string, hosts: string[]): string[] {
  const san = new x509.X509Certificate(certPem).getExtension(x509.SubjectAlternativeNameExtension);
  const have = new Set((san?.names.items ?? []).map((n) => `${n.type}:${n.value}`));
  return hosts.filter((h) => !have.has(`${/^[\d.]+$|:/.test(h) ? 'ip' : 'dns'}:${h}`));
}

/** Writes a file whole or not at all, on the disk before returning (temp file, fsync, rename, fsync dir). */
function writeDurably(path: string, data: string, mode: number): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, data, { mode });
  const fd = openSync(tmp, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  syncDir(dirname(path));
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
