// TokenReview (authentication.k8s.io/v1): create-only and never stored; the answer is computed, as
// kube-apiserver's tokenreview REST does. Node agents check users' bearer tokens with it (kubelet's
// webhook authentication).

import { errors } from '../../machinery/status.ts';
import { isObject } from '../../machinery/types.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

export const tokenReview: KindStrategy = {
  info: resourceInfo('authentication.k8s.io', 'v1', 'TokenReview', 'tokenreviews', false, { verbs: ['create'] }),
  async create(body, ctx) {
    const spec = isObject(body) && isObject(body.spec) ? body.spec : {};
    if (typeof spec.token !== 'string' || !spec.token) {
      throw errors.invalid('TokenReview', 'authentication.k8s.io', '', [{ reason: 'FieldValueRequired', field: 'spec.token', message: 'Required value' }]);
    }
    const user = await ctx.authenticate(spec.token);
    return {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      metadata: { creationTimestamp: null },
      spec,
      status: user
        ? { authenticated: true, user: { username: user.username, ...(user.uid ? { uid: user.uid } : {}), groups: user.groups, ...(user.extra && Object.keys(user.extra).length ? { extra: user.extra } : {}) } }
        : { user: {} },
    };
  },
};
