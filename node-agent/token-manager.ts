// The node's service-account token manager: kubelet's pkg/kubelet/token/token_manager.go. A pod's
// projected `serviceAccountToken` source becomes a TokenRequest (authentication.k8s.io/v1) the agent
// makes with its own node credential for the pod's service account, with the source's audience and
// expirationSeconds, bound to the Pod (name + uid), so the apiserver invalidates the token when the pod
// goes. Tokens are cached per (namespace, service account, audiences, expiry, bound pod); a cached
// token is re-requested once 80% of its lifetime has passed or it is older than 24 h, whichever comes
// first (kubelet's requiresRefresh). A failed request keeps the cached token while it is still valid
// (kubelet does the same) and is not retried before a back-off (1 s doubling to 2 min) has passed, so a
// broken apiserver is not asked again on every pod sync. forgetPod drops a pod's tokens when it goes.
//
// Cost: one TokenRequest (a POST: one ServiceAccount read, one Pod read and no write in kube's
// registry) per token per refresh; every other sync of the pod reads nothing.

import type { KubeObject } from '../lambdas/machinery/types.ts';
import type { KubeClient } from './kube-client.ts';

/** kubelet's maxTTL: a token is refreshed after a day at the latest, whatever its expiry. */
const MAX_TTL_MS = 24 * 3600 * 1000;
const BACKOFF_BASE_MS = 1000;
const BACKOFF_MAX_MS = 120_000;

export interface TokenManagerOptions {
  kube: KubeClient;
  /**
   * The fraction of its lifetime after which a token is refreshed (kubelet: 0.8). Tests lower it so a
   * refresh happens within seconds of a short-lived token's issue.
   */
  refreshFraction?: number;
  now?: () => number;
}

interface Cached {
  token: string;
  /** When it was issued and when it expires (ms since the epoch). */
  issuedAt: number;
  expiresAt: number;
  podUid: string;
}

interface Failure {
  count: number;
  retryAt: number;
  error: Error;
}

/** A projected volume's serviceAccountToken source (core/v1 ServiceAccountTokenProjection). */
export interface TokenSource {
  audience?: string;
  expirationSeconds?: number;
  path: string;
}

export class TokenManager {
  private readonly cache = new Map<string, Cached>();
  private readonly failures = new Map<string, Failure>();
  private readonly inflight = new Map<string, Promise<string>>();
  private readonly fraction: number;
  private readonly now: () => number;

  constructor(private readonly o: TokenManagerOptions) {
    this.fraction = o.refreshFraction ?? 0.8;
    this.now = o.now ?? Date.now;
  }

  /** The token for a pod's source: the cached one unless it needs refreshing (then one TokenRequest). */
  async token(pod: KubeObject, src: TokenSource): Promise<string> {
    const key = cacheKey(pod, src);
    const cached = this.cache.get(key);
    if (cached && !this.requiresRefresh(cached)) return cached.token;
    const failed = this.failures.get(key);
    if (failed && this.now() < failed.retryAt) {
      if (cached && this.now() < cached.expiresAt) return cached.token;
      throw failed.error;
    }
    let p = this.inflight.get(key);
    if (!p) {
      p = this.request(pod, src, key).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    try {
      return await p;
    } catch (e) {
      // kubelet: "couldn't update token", and the still-valid cached token is used meanwhile.
      if (cached && this.now() < cached.expiresAt) return cached.token;
      throw e;
    }
  }

  /** Milliseconds until the first of the pod's tokens needs a refresh (undefined: it holds none). */
  nextRefreshMs(podUid: string): number | undefined {
    let next: number | undefined;
    for (const [key, c] of this.cache) {
      if (c.podUid !== podUid) continue;
      const failed = this.failures.get(key);
      const at = failed ? failed.retryAt : this.refreshAt(c);
      next = Math.min(next ?? Infinity, Math.max(0, at - this.now()));
    }
    return next;
  }

  /** The pod is gone: its tokens are no longer refreshed (kubelet's DeleteServiceAccountToken). */
  forgetPod(podUid: string): void {
    for (const [key, c] of this.cache) if (c.podUid === podUid) this.cache.delete(key);
    for (const key of this.failures.keys()) if (key.endsWith(`/${podUid}`)) this.failures.delete(key);
  }

  private refreshAt(c: Cached): number {
    const life = c.expiresAt - c.issuedAt;
    return Math.min(c.issuedAt + life * this.fraction, c.issuedAt + MAX_TTL_MS);
  }

  private requiresRefresh(c: Cached): boolean {
    return this.now() >= c.expiresAt || this.now() >= this.refreshAt(c);
  }

  private async request(pod: KubeObject, src: TokenSource, key: string): Promise<string> {
    const ns = pod.metadata.namespace!;
    const sa = serviceAccountName(pod);
    const body = {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      metadata: { name: sa, namespace: ns },
      spec: {
        // As kubelet: an empty audience asks for the apiserver's own audiences (none given).
        ...(src.audience ? { audiences: [src.audience] } : {}),
        ...(src.expirationSeconds !== undefined ? { expirationSeconds: src.expirationSeconds } : {}),
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid },
      },
    };
    const issuedAt = this.now();
    try {
      const tr = await this.o.kube.create<KubeObject>(`/api/v1/namespaces/${encodeURIComponent(ns)}/serviceaccounts/${encodeURIComponent(sa)}/token`, body);
      const token = tr.status?.token;
      const expiresAt = Date.parse(tr.status?.expirationTimestamp ?? '');
      if (typeof token !== 'string' || !token || !Number.isFinite(expiresAt)) throw new Error('the TokenRequest answer holds no status.token and expirationTimestamp');
      // As kubelet: the token's lifetime is the one the answer states (spec.expirationSeconds before its
      // expiry); a kube-apiserver may extend the JWT's own exp beyond it, and refreshes follow the stated one.
      const stated = Number(tr.spec?.expirationSeconds);
      const iat = Number.isFinite(stated) && stated > 0 ? expiresAt - stated * 1000 : issuedAt;
      this.cache.set(key, { token, issuedAt: iat, expiresAt, podUid: pod.metadata.uid! });
      this.failures.delete(key);
      return token;
    } catch (e) {
      const count = (this.failures.get(key)?.count ?? 0) + 1;
      const error = new Error(`failed to fetch token: ${(e as Error).message}`); // kubelet's words
      this.failures.set(key, { count, retryAt: this.now() + Math.min(BACKOFF_BASE_MS * 2 ** (count - 1), BACKOFF_MAX_MS), error });
      throw error;
    }
  }
}

/** The pod's service account: spec.serviceAccountName, its deprecated alias, or `default`. */
function serviceAccountName(pod: KubeObject): string {
  return pod.spec?.serviceAccountName || pod.spec?.serviceAccount || 'default';
}

/** kubelet's keyFunc: the request's namespace, name, audiences, expiry and bound object (uid last). */
function cacheKey(pod: KubeObject, src: TokenSource): string {
  return JSON.stringify([pod.metadata.namespace, serviceAccountName(pod), src.audience ?? '', src.expirationSeconds ?? null]) + `/${pod.metadata.uid}`;
}
