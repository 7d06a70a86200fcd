// Service-account tokens: kube-apiserver's pkg/serviceaccount (JWT issuer and validator) and the OIDC
// discovery documents (/.well-known/openid-configuration, /openid/v1/jwks).
//
// Keys: one PEM bundle of RSA keys (PKCS#8 or PKCS#1 private keys, and SPKI public keys). The FIRST private
// key signs (kube's --service-account-signing-key-file); every key in the bundle verifies (kube's
// --service-account-key-file, repeated). Rotation: put a new private key first, keep the old one after it
// until every token it signed has expired, then drop it (README.md, "Service account keys"). Locally the
// bundle is <data-dir>/pki/sa.key (certs.ts); in the cloud the SSM SecureString parameter
// /skiff/<cluster>/service-account-key made by the bootstrap resource, read once per Lambda instance and
// again after keyTtlMs (so a rotation reaches every instance within that time).
//
// What a request costs: verifying a JWT is CPU only (RS256, ~50 µs) plus the validator's lookups (the
// ServiceAccount, and the bound Pod or Secret): one store read each, cached per instance for lookupTtlMs
// (kube's validator reads them from informers; a deleted ServiceAccount or pod stops authenticating
// within that time). A warm instance answers repeat requests with no read at all.

import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { SignJWT, errors as joseErrors, jwtVerify, decodeProtectedHeader, exportJWK, type JWK, type JWTPayload } from 'jose';
import type { UserInfo } from './auth.ts';
import type { Backend } from '../storage/backend.ts';
import { findResource, storageKey } from '../machinery/resources.ts';

/** kube's claim names (pkg/serviceaccount/claims.go): the private claims live under "kubernetes.io". */
interface Ref {
  name: string;
  uid: string;
}
export interface KubernetesClaims {
  namespace: string;
  serviceaccount: Ref;
  pod?: Ref;
  secret?: Ref;
  node?: Ref | { name: string };
  warnafter?: number;
}
export interface ServiceAccountClaims extends JWTPayload {
  'kubernetes.io': KubernetesClaims;
}

/** kube's WarnOnlyBoundTokenExpirationSeconds: what kubelet asks for projected volumes (1 h + 7 s). */
export const WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS = 60 * 60 + 7;
/** kube's ExpirationExtensionSeconds: such tokens really live a year (--service-account-extend-token-expiration). */
export const EXPIRATION_EXTENSION_SECONDS = 24 * 365 * 60 * 60;
/** The issuer kubeadm configures (kube-apiserver --service-account-issuer). */
export const DEFAULT_ISSUER = 'https://kubernetes.default.svc.cluster.local';

export const SERVICE_ACCOUNT_PREFIX = 'system:serviceaccount:';
export const SERVICE_ACCOUNTS_GROUP = 'system:serviceaccounts';

/** A key of the bundle: its public half, its kid, and the private half when it has one. */
interface SAKey {
  kid: string;
  publicKey: KeyObject;
  privateKey?: KeyObject;
}

/**
 * kube's keyIDFromPublicKey: base64url (no padding) of SHA-256 over the public key's PKIX DER, so every
 * apiserver with the same key names it alike.
 */
export function keyIdOf(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64url');
}

/** Parses a PEM bundle (private and public RSA keys, in any order; the first private key signs). */
export function parseKeyBundle(pem: string): SAKey[] {
  const blocks = pem.match(/-----BEGIN ([A-Z ]+)-----[\s\S]+?-----END \1-----/g) ?? [];
  const out: SAKey[] = [];
  for (const b of blocks) {
    if (/PRIVATE KEY/.test(b)) {
      const privateKey = createPrivateKey(b);
      if (privateKey.asymmetricKeyType !== 'rsa') throw new Error('service-account keys must be RSA (RS256, as kube-apiserver signs)');
      const publicKey = createPublicKey(privateKey);
      out.push({ kid: keyIdOf(publicKey), publicKey, privateKey });
    } else if (/PUBLIC KEY/.test(b)) {
      const publicKey = createPublicKey(b);
      if (publicKey.asymmetricKeyType !== 'rsa') throw new Error('service-account keys must be RSA (RS256, as kube-apiserver signs)');
      out.push({ kid: keyIdOf(publicKey), publicKey });
    }
  }
  if (!out.some((k) => k.privateKey)) throw new Error('the service-account key bundle holds no private key to sign with');
  return out;
}

/** A new signing key as PKCS#8 PEM (RSA 2048, as kubeadm's sa.key). */
export function newServiceAccountKeyPem(): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** The parsed keys and what is derived from them (JWKS), kept until the source is read again. */
class KeySet {
  readonly signer: SAKey;
  readonly byKid: Map<string, SAKey>;
  jwks?: Promise<{ keys: JWK[] }>;
  constructor(readonly keys: SAKey[]) {
    this.signer = keys.find((k) => k.privateKey)!;
    this.byKid = new Map(keys.map((k) => [k.kid, k]));
  }
}

export interface ServiceAccountTokenOptions {
  /** The PEM bundle (see the top of this file); called again after keyTtlMs. */
  keys: () => Promise<string> | string;
  /** How long a read of the keys is kept (default 60 s; locally the file, in the cloud SSM). */
  keyTtlMs?: number;
  /** iss of issued tokens, and the one accepted (--service-account-issuer; default DEFAULT_ISSUER). */
  issuer?: string;
  /** The apiserver's audiences (--api-audiences; default [issuer]); a token must name one of them. */
  audiences?: string[];
  /** Where the JWKS is served, for the discovery document (default `${issuer}/openid/v1/jwks`). */
  jwksUri?: string;
  /** --service-account-max-token-expiration in seconds (0 or unset: no cap). */
  maxExpirationSeconds?: number;
  /** --service-account-extend-token-expiration (default true, as kube). */
  extendExpiration?: boolean;
}

export interface IssueRequest {
  namespace: string;
  serviceAccount: Ref;
  audiences: string[];
  expirationSeconds: number;
  pod?: Ref;
  secret?: Ref;
  /** The bound pod's node: name, and uid when the Node could be read. */
  node?: { name: string; uid?: string };
}

/** What a verified token says (before the validator's lookups). */
export interface VerifiedToken {
  claims: ServiceAccountClaims;
  namespace: string;
  name: string;
}

/** Why a token was refused; the authenticator answers 401 for all of them, as kube does. */
export class InvalidTokenError extends Error {}

export class ServiceAccountTokens {
  readonly issuer: string;
  readonly audiences: string[];
  readonly jwksUri: string;
  readonly maxExpirationSeconds: number;
  readonly extendExpiration: boolean;
  private keyTtlMs: number;
  private current?: { set: Promise<KeySet>; until: number };

  constructor(private opts: ServiceAccountTokenOptions) {
    this.issuer = opts.issuer ?? DEFAULT_ISSUER;
    this.audiences = opts.audiences?.length ? opts.audiences : [this.issuer];
    this.jwksUri = opts.jwksUri ?? `${this.issuer.replace(/\/$/, '')}/openid/v1/jwks`;
    this.maxExpirationSeconds = opts.maxExpirationSeconds ?? 0;
    this.extendExpiration = opts.extendExpiration ?? true;
    this.keyTtlMs = opts.keyTtlMs ?? 60_000;
  }

  /** The keys, read again when older than keyTtlMs (a failed read is not kept). */
  private keySet(): Promise<KeySet> {
    const now = Date.now();
    if (!this.current || this.current.until <= now) {
      const set = Promise.resolve()
        .then(() => this.opts.keys())
        .then((pem) => new KeySet(parseKeyBundle(pem)));
      this.current = { set, until: now + this.keyTtlMs };
      set.catch(() => {
        if (this.current?.set === set) this.current = undefined;
      });
    }
    return this.current.set;
  }

  /** Forget the keys read, so the next use reads them again (after a rotation, in tests and tools). */
  reloadKeys(): void {
    this.current = undefined;
  }

  /** kube's isKubeAudiences: every requested audience is one of the apiserver's. */
  isApiAudiences(audiences: string[]): boolean {
    return audiences.every((a) => this.audiences.includes(a));
  }

  /** kube's token.Claims + GenerateToken: a signed RS256 JWT. Returns the token and its claims. */
  async issue(r: IssueRequest, warnAfterSeconds = 0, now = new Date()): Promise<{ token: string; claims: ServiceAccountClaims }> {
    const set = await this.keySet();
    const iat = Math.floor(now.getTime() / 1000);
    const k8s: KubernetesClaims = { namespace: r.namespace, serviceaccount: r.serviceAccount };
    if (r.pod) k8s.pod = r.pod;
    if (r.secret) k8s.secret = r.secret;
    if (r.node) k8s.node = r.node.uid ? { name: r.node.name, uid: r.node.uid } : { name: r.node.name };
    if (warnAfterSeconds) k8s.warnafter = iat + warnAfterSeconds;
    const claims: ServiceAccountClaims = {
      aud: r.audiences,
      exp: iat + r.expirationSeconds,
      iat,
      iss: this.issuer,
      jti: randomUUID(),
      'kubernetes.io': k8s,
      nbf: iat,
      sub: `${SERVICE_ACCOUNT_PREFIX}${r.namespace}:${r.serviceAccount.name}`,
    };
    const token = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: set.signer.kid }).sign(set.signer.privateKey!);
    return { token, claims };
  }

  /**
   * Checks a JWT's signature (any current key, by kid; without a kid, each key), issuer, audience and
   * times, and its claims' shape (kube's jwtTokenAuthenticator and validator.Validate before lookups).
   */
  async verify(token: string): Promise<VerifiedToken> {
    const set = await this.keySet();
    let kid: string | undefined;
    try {
      kid = decodeProtectedHeader(token).kid;
    } catch {
      throw new InvalidTokenError('token is malformed');
    }
    const candidates = kid !== undefined ? [set.byKid.get(kid)].filter((k): k is SAKey => !!k) : set.keys;
    if (!candidates.length) throw new InvalidTokenError('token signed by an unknown key');
    let lastErr: unknown;
    for (const k of candidates) {
      try {
        const { payload } = await jwtVerify(token, k.publicKey, { algorithms: ['RS256'], issuer: this.issuer, audience: this.audiences, clockTolerance: 0 });
        return shapeOf(payload);
      } catch (e) {
        lastErr = e;
        if (!(e instanceof joseErrors.JWSSignatureVerificationFailed)) break;
      }
    }
    throw new InvalidTokenError(lastErr instanceof Error ? lastErr.message : 'token is invalid');
  }

  /** GET /openid/v1/jwks: the public keys (kube's publicJWKSFromKeys: use "sig", alg RS256, kid). */
  async jwks(): Promise<{ keys: JWK[] }> {
    const set = await this.keySet();
    return (set.jwks ??= Promise.all(
      set.keys.map(async (k) => ({ use: 'sig', kty: 'RSA', kid: k.kid, alg: 'RS256', ...pick(await exportJWK(k.publicKey), ['n', 'e']) })),
    ).then((keys) => ({ keys })));
  }

  /** GET /.well-known/openid-configuration, as kube's serviceaccount.openIDMetadata words it. */
  openidConfiguration(): Record<string, unknown> {
    return {
      issuer: this.issuer,
      jwks_uri: this.jwksUri,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
    };
  }
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, o[k]]));
}

/** The claims a Kubernetes service-account token must carry (kube's validator refuses others). */
function shapeOf(payload: JWTPayload): VerifiedToken {
  const claims = payload as ServiceAccountClaims;
  const k8s = claims['kubernetes.io'];
  const sub = typeof claims.sub === 'string' ? claims.sub : '';
  const parts = sub.startsWith(SERVICE_ACCOUNT_PREFIX) ? sub.slice(SERVICE_ACCOUNT_PREFIX.length).split(':') : [];
  if (!k8s || typeof k8s !== 'object' || !k8s.serviceaccount || parts.length !== 2) throw new InvalidTokenError('service account token claims are malformed');
  const [namespace, name] = parts as [string, string];
  if (k8s.namespace !== namespace || k8s.serviceaccount.name !== name) throw new InvalidTokenError('service account token claims do not match the subject');
  if (typeof claims.exp !== 'number') throw new InvalidTokenError('service account token has no expiry');
  return { claims, namespace, name };
}

/** The user a validated token stands for (kube's serviceaccount.UserInfo with its extra). */
export function serviceAccountUser(v: VerifiedToken): UserInfo & { extra: Record<string, string[]> } {
  const k8s = v.claims['kubernetes.io'];
  const extra: Record<string, string[]> = {};
  if (k8s.pod) {
    extra['authentication.kubernetes.io/pod-name'] = [k8s.pod.name];
    extra['authentication.kubernetes.io/pod-uid'] = [k8s.pod.uid];
  }
  if (k8s.node) {
    extra['authentication.kubernetes.io/node-name'] = [k8s.node.name];
    if ('uid' in k8s.node && k8s.node.uid) extra['authentication.kubernetes.io/node-uid'] = [k8s.node.uid];
  }
  if (typeof v.claims.jti === 'string') extra['authentication.kubernetes.io/credential-id'] = [`JTI=${v.claims.jti}`];
  return {
    username: `${SERVICE_ACCOUNT_PREFIX}${v.namespace}:${v.name}`,
    uid: k8s.serviceaccount.uid,
    groups: [SERVICE_ACCOUNTS_GROUP, `${SERVICE_ACCOUNTS_GROUP}:${v.namespace}`],
    extra,
  };
}

/** Reads one object by resource, namespace and name (the raw store: no registry needed); null when absent. */
export type ObjectLookup = (resource: 'serviceaccounts' | 'pods' | 'secrets', namespace: string, name: string) => Promise<Record<string, any> | null>;

/**
 * kube's validator.Validate after the signature: the ServiceAccount still exists with the token's uid and
 * is not being deleted, and so does the bound Pod or Secret. Lookups are cached per instance for
 * lookupTtlMs (default 10 s, as long as a revoked static token lives), keyed by object, so many tokens of
 * one service account cost one read per 10 s.
 */
export class ServiceAccountTokenAuthenticator {
  private cache = new Map<string, { obj: Promise<Record<string, any> | null>; until: number }>();
  constructor(
    readonly tokens: ServiceAccountTokens,
    private lookup: ObjectLookup,
    private lookupTtlMs = 10_000,
  ) {}

  /** A token that looks like a JWT (three base64url parts) is ours to judge; anything else is not. */
  static looksLikeJWT(token: string): boolean {
    return /^[\w-]+\.[\w-]+\.[\w-]+$/.test(token);
  }

  private get(resource: 'serviceaccounts' | 'pods' | 'secrets', ns: string, name: string) {
    const key = `${resource}/${ns}/${name}`;
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit && hit.until > now) return hit.obj;
    if (this.cache.size > 5000) this.cache.clear();
    const obj = this.lookup(resource, ns, name);
    this.cache.set(key, { obj, until: now + this.lookupTtlMs });
    obj.catch(() => this.cache.delete(key));
    return obj;
  }

  /** The user, or InvalidTokenError (a 401). */
  async authenticate(token: string, now = new Date()): Promise<UserInfo> {
    const v = await this.tokens.verify(token);
    const k8s = v.claims['kubernetes.io'];
    const alive = (o: Record<string, any> | null, uid: string | undefined) => !!o && (!uid || o.metadata?.uid === uid);
    const deleted = (o: Record<string, any>) => {
      const dt = o.metadata?.deletionTimestamp;
      return typeof dt === 'string' && Date.parse(dt) < now.getTime();
    };
    const sa = await this.get('serviceaccounts', v.namespace, v.name);
    if (!alive(sa, k8s.serviceaccount.uid)) throw new InvalidTokenError(`service account ${v.namespace}/${v.name} has been deleted`);
    if (deleted(sa!)) throw new InvalidTokenError(`service account ${v.namespace}/${v.name} is being deleted`);
    if (k8s.pod) {
      const pod = await this.get('pods', v.namespace, k8s.pod.name);
      if (!alive(pod, k8s.pod.uid)) throw new InvalidTokenError(`pod ${v.namespace}/${k8s.pod.name} has been deleted`);
      if (deleted(pod!)) throw new InvalidTokenError(`pod ${v.namespace}/${k8s.pod.name} is being deleted`);
    }
    if (k8s.secret) {
      const secret = await this.get('secrets', v.namespace, k8s.secret.name);
      if (!alive(secret, k8s.secret.uid)) throw new InvalidTokenError(`secret ${v.namespace}/${k8s.secret.name} has been deleted`);
      if (deleted(secret!)) throw new InvalidTokenError(`secret ${v.namespace}/${k8s.secret.name} is being deleted`);
    }
    return serviceAccountUser(v);
  }
}

/** An ObjectLookup reading the store directly: one Backend.get (a DynamoDB GetItem) per call. */
export function storeLookup(backend: Backend): ObjectLookup {
  return async (resource, namespace, name) => {
    const kv = await backend.get(storageKey(findResource('', 'v1', resource)!, namespace, name));
    return kv ? (JSON.parse(kv.value) as Record<string, any>) : null;
  };
}

/**
 * Where a deployed cluster keeps its issuer (the stack's public API URL), written by the bootstrap resource
 * (which runs once the URL exists: the apiserver function cannot name its own front door's URL in its
 * environment without a dependency cycle). Read once per apiserver instance, at its start.
 */
export const ISSUER_KEY = '/registry/skiff.io/serviceaccount-issuer/cluster';

export async function readServiceAccountIssuer(backend: Backend): Promise<string | undefined> {
  const kv = await backend.get(ISSUER_KEY);
  if (!kv) return undefined;
  const v = JSON.parse(kv.value) as { issuer?: unknown };
  return typeof v.issuer === 'string' && v.issuer ? v.issuer : undefined;
}

/** Stores the issuer (idempotent; a changed URL replaces it: tokens of the old issuer then stop verifying). */
export async function storeServiceAccountIssuer(backend: Backend, issuer: string): Promise<void> {
  const value = JSON.stringify({ issuer });
  const kv = await backend.get(ISSUER_KEY);
  if (!kv) await backend.create(ISSUER_KEY, value);
  else if (kv.value !== value) await backend.update(ISSUER_KEY, value, kv.modRevision);
}
