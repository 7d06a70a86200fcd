// The local cluster's PKI: a self-signed CA and a serving certificate for 127.0.0.1/localhost signed
// by it, made at first start and kept in the data dir (kubectl verifies the server with the CA).

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

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
    return {
      caCert: readFileSync(p('ca.crt'), 'utf8'),
      serverCert: readFileSync(p('apiserver.crt'), 'utf8'),
      serverKey: readFileSync(p('apiserver.key'), 'utf8'),
    };
  }
  mkdirSync(dir, { recursive: true });
  const c = await generateCerts(hosts);
  writeFileSync(p('ca.crt'), c.caCert);
  writeFileSync(p('apiserver.crt'), c.serverCert);
  writeFileSync(p('apiserver.key'), c.serverKey, { mode: 0o600 });
  return c;
}
