// Signing in with an AWS IAM identity, as EKS does: the client proves who it is to STS, not to us.
//
// The token is an STS GetCallerIdentity request the client signed with its own AWS credentials (SigV4),
// with the cluster's id in a signed header x-k8s-aws-id, so a token for one cluster is refused by
// another. The apiserver sends that request, unchanged, to STS; STS answers with the caller's ARN only
// if the signature is good and fresh (SigV4 requests are accepted for 15 minutes). The ARN is then mapped
// to a Kubernetes user and groups by the cluster's AccessEntry objects (kinds/iam/accessentry.ts).
//
// Why a header-signed POST (`skiff-aws-v1.` + base64url JSON {url, headers, body}) and not EKS's
// presigned GET URL (`k8s-aws-v1.`): both are replayed to STS as they are; the signed headers travel in
// the token either way. A POST with an Authorization header is also what DynamoDB-style emulators route
// by service, so the same code path is tested against moto's STS.
//
// What the apiserver checks before sending anything (it must never be a proxy to anywhere): the URL is
// an STS endpoint (sts.amazonaws.com, sts.<region>.amazonaws.com[.cn], or exactly the configured
// endpoint), the body is exactly GetCallerIdentity, the Authorization header is SigV4 for service sts and
// signs host, x-amz-date and x-k8s-aws-id, x-k8s-aws-id is this cluster's id, and x-amz-date is within
// 15 minutes. Only the signed headers are forwarded.
//
// Cost: one STS call per new token (a token is reused by kubectl for about 14 minutes: the answer is
// cached per token until then), and one list of the AccessEntries per instance at most every 10 s.

import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { KubeObject } from '../machinery/types.ts';
import type { UserInfo } from './auth.ts';

export const IAM_TOKEN_PREFIX = 'skiff-aws-v1.';
/** The header that binds a token to one cluster (EKS's name for it). */
export const CLUSTER_ID_HEADER = 'x-k8s-aws-id';
export const GET_CALLER_IDENTITY_BODY = 'Action=GetCallerIdentity&Version=2011-06-15';
/** SigV4 requests are valid this long after their x-amz-date. */
export const TOKEN_LIFETIME_MS = 15 * 60_000;
const MAX_TOKEN_BYTES = 8192;
const STS_HOST = /^sts(\.[a-z0-9-]+)?\.amazonaws\.com(\.cn)?$/;

export interface SignedStsRequest {
  url: string;
  /** Lower-case names: the signed headers and authorization. */
  headers: Record<string, string>;
  body: string;
}

export function encodeIamToken(req: SignedStsRequest): string {
  return IAM_TOKEN_PREFIX + Buffer.from(JSON.stringify(req), 'utf8').toString('base64url');
}

/** When a token stops being accepted: 15 minutes after it was signed. */
export function iamTokenExpiry(req: SignedStsRequest): Date {
  return new Date(amzDate(req.headers['x-amz-date'] ?? '') + TOKEN_LIFETIME_MS);
}

function amzDate(s: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : NaN;
}

/** Why a token is not even worth sending to STS (undefined: it is well formed for this cluster). */
export function checkIamToken(token: string, opts: { clusterId: string; stsEndpoint?: string; now?: number }): { req?: SignedStsRequest; problem?: string } {
  if (!token.startsWith(IAM_TOKEN_PREFIX) || token.length > MAX_TOKEN_BYTES) return { problem: 'not an IAM token' };
  let req: SignedStsRequest;
  try {
    req = JSON.parse(Buffer.from(token.slice(IAM_TOKEN_PREFIX.length), 'base64url').toString('utf8'));
  } catch {
    return { problem: 'the token does not decode' };
  }
  if (!req || typeof req.url !== 'string' || typeof req.body !== 'string' || !req.headers || typeof req.headers !== 'object') return { problem: 'the token does not decode' };
  let u: URL;
  try {
    u = new URL(req.url);
  } catch {
    return { problem: 'the token names no URL' };
  }
  const endpoint = opts.stsEndpoint ? new URL(opts.stsEndpoint) : undefined;
  const allowed = endpoint ? u.origin === endpoint.origin : u.protocol === 'https:' && STS_HOST.test(u.hostname) && !u.port;
  if (!allowed || u.pathname !== '/' || u.search || u.username || u.password) return { problem: `the token's URL is not an STS endpoint` };
  if (req.body !== GET_CALLER_IDENTITY_BODY) return { problem: 'the token is not a GetCallerIdentity request' };
  for (const [k, v] of Object.entries(req.headers)) {
    if (typeof v !== 'string' || k !== k.toLowerCase() || /[\r\n]/.test(v)) return { problem: 'the token has malformed headers' };
  }
  const auth = req.headers['authorization'] ?? '';
  const m = /^AWS4-HMAC-SHA256 Credential=[^/\s]+\/\d{8}\/[a-z0-9-]+\/sts\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=[0-9a-f]{64}$/.exec(auth);
  if (!m) return { problem: 'the token is not signed with SigV4 for STS' };
  const signed = m[1]!.split(';');
  for (const h of ['host', 'x-amz-date', CLUSTER_ID_HEADER]) if (!signed.includes(h)) return { problem: `the token's signature does not cover ${h}` };
  if (req.headers[CLUSTER_ID_HEADER] !== opts.clusterId) return { problem: 'the token is for another cluster' };
  const at = amzDate(req.headers['x-amz-date'] ?? '');
  const now = opts.now ?? Date.now();
  if (!Number.isFinite(at) || now > at + TOKEN_LIFETIME_MS || at > now + 5 * 60_000) return { problem: 'the token has expired' };
  // Forward exactly the signed headers (host comes from the URL).
  const headers: Record<string, string> = { authorization: auth };
  for (const h of signed) if (h !== 'host' && req.headers[h] !== undefined) headers[h] = req.headers[h]!;
  return { req: { url: req.url, headers, body: req.body } };
}

/** The caller as STS names it. */
export interface CallerIdentity {
  arn: string;
  account: string;
  userId: string;
}

/** Sends the signed request to STS; undefined when STS refuses it (bad signature, expired, unknown key). */
export async function callSts(req: SignedStsRequest, timeoutMs = 5000): Promise<CallerIdentity | undefined> {
  const u = new URL(req.url);
  const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
  const { status, text } = await new Promise<{ status: number; text: string }>((ok, fail) => {
    const r = send(u, { method: 'POST', headers: { ...req.headers, 'content-length': String(Buffer.byteLength(req.body)) }, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', fail);
    });
    r.on('timeout', () => r.destroy(new Error(`STS did not answer within ${timeoutMs} ms`)));
    r.on('error', fail);
    r.end(req.body);
  });
  if (status === 403 || status === 400 || status === 401) return undefined;
  if (status !== 200) throw new Error(`STS answered ${status}`);
  // STS answers XML (GetCallerIdentityResponse/GetCallerIdentityResult/{Arn,UserId,Account}).
  const field = (name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(text)?.[1];
  const arn = field('Arn');
  const account = field('Account');
  const userId = field('UserId');
  if (!arn || !account || !userId) throw new Error('STS answered without an identity');
  return { arn, account, userId };
}

/**
 * The principal an access entry names for a caller: an IAM user's ARN is itself; an assumed role's STS
 * ARN (arn:aws:sts::<acct>:assumed-role/<role>/<session>) names the role arn:aws:iam::<acct>:role/<role>.
 * Role ARNs are compared without their path (STS does not report it), as EKS does.
 */
export function principalOf(arn: string): { principal: string; sessionName?: string } | undefined {
  const user = /^arn:(aws[a-z-]*):iam::(\d{12}):user\/(.+)$/.exec(arn);
  if (user) return { principal: arn };
  const role = /^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role\/([^/]+)\/(.+)$/.exec(arn);
  if (role) return { principal: `arn:${role[1]}:iam::${role[2]}:role/${role[3]}`, sessionName: role[4] };
  return undefined;
}

/** An entry's principalArn as principalOf() names it: role paths dropped. */
export function entryKey(principalArn: string): string {
  const m = /^arn:(aws[a-z-]*):iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/.exec(principalArn);
  return m ? `arn:${m[1]}:iam::${m[2]}:role/${m[3]}` : principalArn;
}

export interface IamAuthenticatorOptions {
  /** This cluster's id: the value a token's x-k8s-aws-id must carry (the cluster name). */
  clusterId: string;
  /** The AccessEntry objects (read at most every entriesTtlMs). */
  listEntries(): Promise<KubeObject[]>;
  /** A test's STS endpoint (moto); default: AWS's STS endpoints only. */
  stsEndpoint?: string;
  entriesTtlMs?: number;
  /** How a signed request reaches STS (tests may count calls). */
  sts?: (req: SignedStsRequest) => Promise<CallerIdentity | undefined>;
}

export class IamAuthenticator {
  private identities = new Map<string, { id: CallerIdentity | undefined; until: number }>();
  private entries?: { byPrincipal: Map<string, KubeObject>; at: number };
  private loading?: Promise<Map<string, KubeObject>>;

  constructor(private opts: IamAuthenticatorOptions) {}

  /** The user an IAM token stands for; undefined when it is not valid or no access entry names it. */
  async authenticate(token: string): Promise<UserInfo | undefined> {
    const now = Date.now();
    const h = createHash('sha256').update(token).digest('hex');
    let hit = this.identities.get(h);
    if (!hit || hit.until <= now) {
      const { req } = checkIamToken(token, { clusterId: this.opts.clusterId, stsEndpoint: this.opts.stsEndpoint, now });
      if (!req) return undefined;
      const id = await (this.opts.sts ?? callSts)(req);
      if (this.identities.size > 10_000) this.identities.clear();
      // A good answer holds while STS would still accept the token; a refusal is remembered briefly.
      hit = { id, until: id ? iamTokenExpiry(req).getTime() : now + 10_000 };
      this.identities.set(h, hit);
    }
    if (!hit.id) return undefined;
    const who = principalOf(hit.id.arn);
    if (!who) return undefined;
    const entry = (await this.entriesByPrincipal()).get(who.principal);
    if (!entry) return undefined;
    const fill = (s: string) => s.replaceAll('{{AccountID}}', hit!.id!.account).replaceAll('{{SessionName}}', who.sessionName ?? '');
    const username = typeof entry.spec?.username === 'string' ? fill(entry.spec.username) : hit.id.arn;
    const groups = Array.isArray(entry.spec?.groups) ? entry.spec.groups.filter((g: unknown): g is string => typeof g === 'string') : [];
    // The uid EKS gives IAM users (aws-iam-authenticator's): stable across sessions of one principal.
    return { username, uid: `aws-iam-authenticator:${hit.id.account}:${hit.id.userId}`, groups };
  }

  private async entriesByPrincipal(): Promise<Map<string, KubeObject>> {
    const ttl = this.opts.entriesTtlMs ?? 10_000;
    if (this.entries && Date.now() - this.entries.at < ttl) return this.entries.byPrincipal;
    this.loading ??= this.opts
      .listEntries()
      .then((items) => {
        const byPrincipal = new Map<string, KubeObject>();
        for (const e of items) if (typeof e.spec?.principalArn === 'string') byPrincipal.set(entryKey(e.spec.principalArn), e);
        this.entries = { byPrincipal, at: Date.now() };
        return byPrincipal;
      })
      .finally(() => (this.loading = undefined));
    return this.loading;
  }
}
