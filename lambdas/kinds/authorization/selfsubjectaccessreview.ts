// SelfSubjectAccessReview (authorization.k8s.io/v1): may I do this? `kubectl auth can-i` asks it. Anyone
// authenticated may ask about themselves (system:basic-user); never stored.

import { resourceInfo, type KindStrategy } from '../kind.ts';
import { answer, asObject, attributesFor, GROUP, reviewStatus, validateReview } from './review.ts';

export const selfSubjectAccessReview: KindStrategy = {
  info: resourceInfo(GROUP, 'v1', 'SelfSubjectAccessReview', 'selfsubjectaccessreviews', false, { verbs: ['create'] }),
  async create(raw, ctx) {
    const body = asObject(raw);
    validateReview('SelfSubjectAccessReview', body);
    const attrs = attributesFor(ctx.user, body.spec);
    return answer('SelfSubjectAccessReview', body, await reviewStatus(() => ctx.authorize(attrs)));
  },
};
