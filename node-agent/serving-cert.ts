// The agent's HTTPS serving certificate: self-signed, kept in the agent's data dir. No CA signs it:
// the apiserver pins its SHA-256 (the Node annotation skiff.io/kubelet-serving-cert-sha256), which is
// all the trust a single-tenant cluster needs and needs no certificate signing flow.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, webcrypto, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { keyPem } from '../lambdas/local/certs.ts'; // also sets @peculiar/x509's crypto provider

export interface ServingCert {
  cert: string; // PEM
  key: string; // PEM (PKCS#8)
  /** Lowercase hex SHA-256 of the certificate's DER: what the apiserver pins. */
  sha256: string;
}

const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export function certSha256(pem: string): string {
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
}

/** names: DNS names and IP addresses the certificate is for (the node's addresses). */
export async function createServingCert(names: string[]): Promise<ServingCert> {
  const now = new Date(Date.now() - 60_000);
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const sans = names.map((h) => (/^[\d.]+$|:/.test(h) ? { type: 'ip' as const, value: h } : { type: 'dns' as const, value: h }));
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${names[0] ?? 'skiff-node'}@skiff-agent`,
    notBefore: now,
    notAfter: new Date(now.getTime() + 10 * 365 * 24 * 3600 * 1000),
    signingAlgorithm: alg,
    keys: keys as any,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      ...(sans.length ? [new x509.SubjectAlternativeNameExtension(sans)] : []),
    ],
  });
  const pem = cert.toString('pem');
  return { cert: pem, key: await keyPem(keys.privateKey), sha256: certSha256(pem) };
}

/** Loads kubelet.crt/kubelet.key from dir, creating them on first start (the pin survives restarts). */
export async function loadOrCreateServingCert(dir: string, names: string[]): Promise<ServingCert> {
  const crt = join(dir, 'kubelet.crt');
  const key = join(dir, 'kubelet.key');
  if (existsSync(crt) && existsSync(key)) {
    const cert = readFileSync(crt, 'utf8');
    return { cert, key: readFileSync(key, 'utf8'), sha256: certSha256(cert) };
  }
  mkdirSync(dir, { recursive: true });
  const c = await createServingCert(names);
  writeFileSync(key, c.key, { mode: 0o600 });
  writeFileSync(crt, c.cert);
  return c;
}
