// SubjectAccessReview (authorization.k8s.io/v1): may this user do this? Asked by webhooks and node agents
// on someone else's behalf; create-only and never stored (kube's subjectaccessreview REST).

import { resourceInfo, type KindStrategy } from '../kind.ts';
import { answer, asObject, attributesFor, GROUP, reviewStatus, specUser, validateReview } from './review.ts';

export const subjectAccessReview: KindStrategy = {
  info: resourceInfo(GROUP, 'v1', 'SubjectAccessReview', 'subjectaccessreviews', false, { verbs: ['create'] }),
  async create(raw, ctx) {
    const body = asObject(raw);
    validateReview('SubjectAccessReview', body);
    const attrs = attributesFor(specUser(body.spec), body.spec);
    return answer('SubjectAccessReview', body, await reviewStatus(() => ctx.authorize(attrs)));
  },
};
