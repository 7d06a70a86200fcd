// Authorization of the agent's /metrics paths as kubelet's webhook authorizer does it: the token's user
// from a TokenReview, then a SubjectAccessReview asking whether that user may `get` the node's
// nodes/metrics subresource (kubelet maps /metrics and /metrics/* there). RBAC decides: the cluster
// admins may; Prometheus needs a ClusterRole with `get` on nodes/metrics. Answers are cached both ways
// for cacheMs, so a scrape every 15 s costs at most two reviews a scrape, and a revoked grant stops
// within cacheMs. (Logs, exec and /stats/summary keep authn.ts's rule: the group system:masters.)

export interface Decision {
  /** The authenticated user's name; undefined: the token is not valid (401). */
  user?: string;
  allowed: boolean;
}

export function nodeMetricsAuthorizer(
  create: (path: string, body: unknown) => Promise<any>,
  nodeName: string,
  opts: { cacheMs?: number } = {},
): (token: string) => Promise<Decision> {
  const ttl = opts.cacheMs ?? 10_000;
  const cache = new Map<string, { d: Decision; until: number }>();
  return async (token) => {
    if (!token) return { allowed: false };
    const now = Date.now();
    const hit = cache.get(token);
    if (hit && hit.until > now) return hit.d;
    const review = await create('/apis/authentication.k8s.io/v1/tokenreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } });
    const st = review?.status;
    let d: Decision = { allowed: false };
    if (st?.authenticated === true && typeof st.user?.username === 'string') {
      const u = st.user;
      const sar = await create('/apis/authorization.k8s.io/v1/subjectaccessreviews', {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: u.username,
          uid: u.uid,
          groups: u.groups ?? [],
          extra: u.extra,
          resourceAttributes: { verb: 'get', group: '', version: 'v1', resource: 'nodes', subresource: 'metrics', name: nodeName },
        },
      });
      d = { user: u.username, allowed: sar?.status?.allowed === true };
    }
    if (cache.size > 1000) cache.clear();
    cache.set(token, { d, until: now + ttl });
    return d;
  };
}
