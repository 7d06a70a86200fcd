// Authentication and authorization: the first two stages of the request pipeline.
// Bearer tokens are stored only as SHA-256 hashes (a leaked database reveals no usable token), under
// /registry/skiff.io/tokens/<hash> in the same Backend as everything else.

import { createHash, randomBytes } from 'node:crypto';
import type { Backend } from '../storage/backend.ts';
import { StorageError } from '../storage/backend.ts';
import { ApiError, errors } from '../machinery/status.ts';
import { IAM_TOKEN_PREFIX, type IamAuthenticator } from './iam-auth.ts';
import { InvalidTokenError, ServiceAccountTokenAuthenticator } from './serviceaccount-tokens.ts';

export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
  /** Extra attributes (kube's user.Info.GetExtra): a service-account token's pod-name, credential-id...; Impersonate-Extra-<key>. */
  extra?: Record<string, string[]>;
}

/**
 * What an authorizer is asked (kube's authorizer.Attributes). A resource request names a resource (and
 * maybe a subresource, namespace and name); any other path is a non-resource URL (/healthz, /api, /metrics).
 */
export interface RequestAttributes {
  user: UserInfo;
  /** get, list, watch, create, update, patch, delete, deletecollection; for non-resource URLs the
   * lower-case HTTP method (get, post, put, delete); impersonate, bind, escalate, use for those checks. */
  verb: string;
  resourceRequest: boolean;
  path: string;
  namespace?: string;
  group?: string;
  version?: string;
  resource?: string;
  subresource?: string;
  name?: string;
  /** The request's fieldSelector and labelSelector, as sent (list/watch; kube 1.32's selector-aware authorization). */
  fieldSelector?: string;
  labelSelector?: string;
}

/** An authorizer allows, denies, or has no opinion (the next one in a union is asked): kube's Decision. */
export type Decision = 'allow' | 'deny' | 'noOpinion';
export interface AuthorizationResult {
  decision: Decision;
  /** Why (appended to the 403's message after ": "; kube's RBAC gives none for a plain no). */
  reason?: string;
}

/** Authorizer decides whether an authenticated request may proceed (Kubernetes' authorizer.Authorizer). */
export interface Authorizer {
  authorize(attrs: RequestAttributes): Promise<AuthorizationResult>;
}

/** One rule of a Role or ClusterRole (rbac.authorization.k8s.io/v1 PolicyRule). */
export interface PolicyRule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

/**
 * What a user may do in a namespace (cluster-wide rules included), as SelfSubjectRulesReview reports it:
 * kube's authorizer.RuleResolver. RBAC implements it; incomplete when some rules could not be read.
 */
export interface RuleResolver {
  rulesFor(user: UserInfo, namespace: string): Promise<{ rules: PolicyRule[]; incomplete: boolean; evaluationError?: string }>;
}

/** The group whose members may do everything (kube's privileged-group authorizer, first in its chain). */
export const MASTERS_GROUP = 'system:masters';

/** Allows system:masters, has no opinion on anyone else. */
export const privilegedGroupAuthorizer: Authorizer = {
  async authorize(attrs) {
    return { decision: attrs.user.groups.includes(MASTERS_GROUP) ? 'allow' : 'noOpinion' };
  },
};

/** The first authorizer with an opinion decides (kube's union authorizer); none: no opinion (a 403). */
export function unionAuthorizer(...authorizers: Authorizer[]): Authorizer {
  return {
    async authorize(attrs) {
      const reasons: string[] = [];
      for (const a of authorizers) {
        const d = await a.authorize(attrs);
        if (d.decision !== 'noOpinion') return d;
        if (d.reason) reasons.push(d.reason);
      }
      return { decision: 'noOpinion', ...(reasons.length ? { reason: reasons.join(', ') } : {}) };
    },
  };
}

/** Every authenticated user may do everything (Kubernetes' AlwaysAllow for authenticated users). */
export const allowAuthenticated: Authorizer = {
  async authorize() {
    return { decision: 'allow' };
  },
};

/**
 * kube-apiserver's words for a refusal (endpoints/handlers/responsewriters.forbiddenMessage wrapped in
 * NewForbidden): `pods "x" is forbidden: User "u" cannot get resource "pods" in API group "" in the
 * namespace "ns"`, `deployments.apps is forbidden: ... at the cluster scope`, `forbidden: User "u" cannot
 * get path "/metrics"`. One place, for every 403 an authorizer causes.
 */
export function forbiddenMessage(a: RequestAttributes, reason?: string): string {
  let what: string;
  let prefix: string;
  if (!a.resourceRequest) {
    what = `cannot ${a.verb} path "${a.path}"`;
    prefix = 'forbidden';
  } else {
    const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
    const scope = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
    what = `cannot ${a.verb} resource "${resource}" in API group "${a.group ?? ''}" ${scope}`;
    const gr = a.group ? `${a.resource}.${a.group}` : `${a.resource}`;
    prefix = a.name ? `${gr} "${a.name}" is forbidden` : `${gr} is forbidden`;
  }
  return `${prefix}: User "${a.user.username}" ${what}${reason ? `: ${reason}` : ''}`;
}

/** The 403 for a refusal, as kube's NewForbidden builds it: the message above, details naming the resource. */
export function forbiddenError(a: RequestAttributes, reason?: string): ApiError {
  const details = a.resourceRequest ? { ...(a.name ? { name: a.name } : {}), ...(a.group ? { group: a.group } : {}), kind: a.resource } : {};
  return new ApiError('Forbidden', forbiddenMessage(a, reason), details);
}

const TOKEN_PREFIX = '/registry/skiff.io/tokens/';

/** Group of bootstrap tokens: they may only obtain a node credential (Kubernetes' system:bootstrappers). */
export const BOOTSTRAPPERS_GROUP = 'system:bootstrappers';
/** Who a deployed cluster's bootstrap token authenticates as (made by the stack's bootstrap resource). */
export const BOOTSTRAP_USER: UserInfo = { username: 'system:bootstrap:skiff', groups: [BOOTSTRAPPERS_GROUP] };
/** Who the admin token (local kubeconfig, or SSM admin-token of a deployed stack) authenticates as. */
export const ADMIN_USER: UserInfo = { username: 'skiff-admin', groups: [MASTERS_GROUP] };
/** The user a node credential names: the node's own identity, as kubelet's client certificate does. */
export function nodeUser(nodeName: string): UserInfo {
  return { username: `system:node:${nodeName}`, groups: ['system:nodes'] };
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Where a node agent trades the cluster's bootstrap token for its own credential (kubelet's TLS
 * bootstrap, with a bearer token for the certificate): POST {"nodeName": "..."} → {"nodeName", "token"}.
 */
export const NODE_CREDENTIAL_PATH = '/skiff/v1/node-credentials';

/**
 * Bootstrap tokens open one door only: a request from a system:bootstrappers member is refused here for
 * every path but NODE_CREDENTIAL_PATH (served before authorization), whatever the inner authorizer says.
 */
export function denyBootstrappers(inner: Authorizer): Authorizer {
  return {
    async authorize(attrs) {
      if (attrs.user.groups.includes(BOOTSTRAPPERS_GROUP)) return { decision: 'deny', reason: 'bootstrap tokens may only request a node credential' };
      return inner.authorize(attrs);
    },
  };
}

/** Stores a token (hashed) for a user. Idempotent for the same token. */
export async function storeToken(backend: Backend, token: string, user: UserInfo): Promise<void> {
  try {
    await backend.create(TOKEN_PREFIX + hashToken(token), JSON.stringify(user));
  } catch (e) {
    if (!(e instanceof StorageError && e.code === 'KeyExists')) throw e;
  }
}

/** Removes a token: it no longer authenticates (after the authenticators' cache time). Idempotent. */
export async function revokeToken(backend: Backend, token: string): Promise<void> {
  try {
    await backend.delete(TOKEN_PREFIX + hashToken(token));
  } catch (e) {
    if (!(e instanceof StorageError && e.code === 'NotFound')) throw e;
  }
}

/** The user as answered: its groups and system:authenticated, each once (as kube-apiserver adds it). */
function authenticated(user: UserInfo): UserInfo {
  return { ...user, groups: [...new Set([...(user.groups ?? []), 'system:authenticated'])] };
}

export class TokenAuthenticator {
  // Warm Lambdas answer repeat requests without a storage read; a revoked token lives at most ttlMs. Keyed
  // by the token as sent (up to 256 characters), holding the user as answered: a hit hashes nothing and builds
  // nothing (the SHA-256 and the groups' copy were ~1.5% of `skiff up`'s CPU under creates at one client).
  // Callers only read the user.
  private cache = new Map<string, { user: UserInfo | null; until: number }>();
  constructor(
    private backend: Backend,
    private ttlMs = 10_000,
    /** Signing in with AWS IAM identities and service-account JWTs, when configured (iam-auth.ts, serviceaccount-tokens.ts). */
    private more: { iam?: IamAuthenticator; serviceAccounts?: ServiceAccountTokenAuthenticator } = {},
  ) {}

  /** Returns the user for an Authorization header, or throws 401 Unauthorized. */
  async authenticate(authorization: string | undefined): Promise<UserInfo> {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!m) throw errors.unauthorized();
    if (this.more.iam && m[1]!.startsWith(IAM_TOKEN_PREFIX)) {
      const user = await this.more.iam.authenticate(m[1]!);
      if (!user) throw errors.unauthorized();
      return authenticated(user);
    }
    // A JWT (three base64url parts) is a service-account token: its signature and lookups decide (no token
    // key is read; stored tokens are never JWTs). Any refusal is the same 401 as an unknown token.
    if (this.more.serviceAccounts && ServiceAccountTokenAuthenticator.looksLikeJWT(m[1]!)) {
      const sa = this.more.serviceAccounts;
      const user = await sa.authenticate(m[1]!).catch((e) => {
        if (e instanceof InvalidTokenError) throw errors.unauthorized();
        throw e;
      });
      return authenticated(user);
    }
    const token = m[1]!;
    // A long token (not one of ours: they are 43 characters) is keyed by its hash, so a flood of large bogus
    // ones (TokenReview bodies take megabytes) cannot fill memory through the cache.
    const key = token.length <= 256 ? token : hashToken(token);
    const now = Date.now();
    const hit = this.cache.get(key);
    let user: UserInfo | null;
    if (hit && hit.until > now) {
      user = hit.user;
    } else {
      const kv = await this.backend.get(TOKEN_PREFIX + hashToken(token));
      user = kv ? authenticated(JSON.parse(kv.value) as UserInfo) : null;
      if (this.cache.size > 1000) this.cache.clear();
      this.cache.set(key, { user, until: now + this.ttlMs });
    }
    if (!user) throw errors.unauthorized();
    return user;
  }
}
