// How the agent checks a bearer token, as kubelet's webhook authenticator does: a TokenReview to the
// apiserver. Only cluster admins (group system:masters, which the apiserver's own node client token
// carries) may read logs or exec. Answers are cached both ways for a short while, so a burst of log
// requests is not a burst of reviews, and a revoked token stops working within cacheMs.

export function tokenReviewAuthenticator(
  createTokenReview: (body: unknown) => Promise<any>,
  opts: { cacheMs?: number; group?: string } = {},
): (token: string) => Promise<boolean> {
  const ttl = opts.cacheMs ?? 10_000;
  const group = opts.group ?? 'system:masters';
  const cache = new Map<string, { ok: boolean; until: number }>();
  return async (token: string) => {
    if (!token) return false;
    const now = Date.now();
    const hit = cache.get(token);
    if (hit && hit.until > now) return hit.ok;
    const review = await createTokenReview({
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token },
    });
    const st = review?.status;
    const ok = st?.authenticated === true && Array.isArray(st.user?.groups) && st.user.groups.includes(group);
    if (cache.size > 1000) cache.clear();
    cache.set(token, { ok, until: now + ttl });
    return ok;
  };
}
