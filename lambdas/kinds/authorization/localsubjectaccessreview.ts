// LocalSubjectAccessReview (authorization.k8s.io/v1): a SubjectAccessReview confined to the namespace of
// its path, so a namespace's admin can be allowed to ask about their own namespace only. Never stored.

import { errors } from '../../machinery/status.ts';
import { isObject } from '../../machinery/types.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';
import { answer, asObject, attributesFor, GROUP, reviewStatus, specUser, validateReview } from './review.ts';

export const localSubjectAccessReview: KindStrategy = {
  info: resourceInfo(GROUP, 'v1', 'LocalSubjectAccessReview', 'localsubjectaccessreviews', true, { verbs: ['create'] }),
  async create(raw, ctx) {
    const body = asObject(raw);
    const ns = ctx.namespace ?? '';
    // The create handler's rule for every namespaced kind: the path's namespace fills an empty one.
    const meta = isObject(body.metadata) ? body.metadata : (body.metadata = {});
    if (!meta.namespace) meta.namespace = ns;
    else if (meta.namespace !== ns) throw errors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
    validateReview('LocalSubjectAccessReview', body);
    if (!ns) throw errors.badRequest(`namespace is required on this type: ${ns}`);
    const attrs = attributesFor(specUser(body.spec), body.spec);
    return answer('LocalSubjectAccessReview', body, await reviewStatus(() => ctx.authorize(attrs)));
  },
};
