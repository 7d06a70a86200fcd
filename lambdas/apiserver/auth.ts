// Authentication and authorization: the first two stages of the request pipeline.
// Bearer tokens are stored only as SHA-256 hashes (a leaked database reveals no usable token), under
// /registry/skiff.io/tokens/<hash> in the same Backend as everything else.

import { createHash, randomBytes } from 'node:crypto';
import type { Backend } from '../storage/backend.ts';
import { StorageError } from '../storage/backend.ts';
import { errors } from '../machinery/status.ts';

export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
}

export interface RequestAttributes {
  user: UserInfo;
  verb: string; // get, list, watch, create, update, patch, delete, deletecollection
  namespace?: string;
  group?: string;
  resource?: string;
  subresource?: string;
  name?: string;
  path: string;
}

/** Authorizer decides whether an authenticated request may proceed (Kubernetes' authorizer.Authorizer). */
export interface Authorizer {
  authorize(attrs: RequestAttributes): Promise<{ allowed: boolean; reason?: string }>;
}

/** For now every authenticated user may do everything (Kubernetes' AlwaysAllow for authenticated). */
export const allowAuthenticated: Authorizer = {
  async authorize() {
    return { allowed: true };
  },
};

const TOKEN_PREFIX = '/registry/skiff.io/tokens/';

/** Group of bootstrap tokens: they may only obtain a node credential (Kubernetes' system:bootstrappers). */
export const BOOTSTRAPPERS_GROUP = 'system:bootstrappers';
/** Who a deployed cluster's bootstrap token authenticates as (made by the stack's bootstrap resource). */
export const BOOTSTRAP_USER: UserInfo = { username: 'system:bootstrap:skiff', groups: [BOOTSTRAPPERS_GROUP] };
/** Who the admin token (local kubeconfig, or SSM admin-token of a deployed stack) authenticates as. */
export const ADMIN_USER: UserInfo = { username: 'skiff-admin', groups: ['system:masters'] };
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
      if (attrs.user.groups.includes(BOOTSTRAPPERS_GROUP)) return { allowed: false, reason: 'bootstrap tokens may only request a node credential' };
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

export class TokenAuthenticator {
  // Warm Lambdas answer repeat requests without a storage read; a revoked token lives at most ttlMs.
  private cache = new Map<string, { user: UserInfo | null; until: number }>();
  constructor(
    private backend: Backend,
    private ttlMs = 10_000,
  ) {}

  /** Returns the user for an Authorization header, or throws 401 Unauthorized. */
  async authenticate(authorization: string | undefined): Promise<UserInfo> {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!m) throw errors.unauthorized();
    const h = hashToken(m[1]!);
    const now = Date.now();
    const hit = this.cache.get(h);
    let user: UserInfo | null;
    if (hit && hit.until > now) {
      user = hit.user;
    } else {
      const kv = await this.backend.get(TOKEN_PREFIX + h);
      user = kv ? (JSON.parse(kv.value) as UserInfo) : null;
      if (this.cache.size > 1000) this.cache.clear();
      this.cache.set(h, { user, until: now + this.ttlMs });
    }
    if (!user) throw errors.unauthorized();
    return { ...user, groups: [...new Set([...(user.groups ?? []), 'system:authenticated'])] };
  }
}
