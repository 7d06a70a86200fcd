// SelfSubjectReview (authentication.k8s.io/v1): who am I, as the apiserver sees me (after impersonation);
// `kubectl auth whoami` asks it. Never stored, and costs no storage read.

import { resourceInfo, type KindStrategy } from '../kind.ts';

export const selfSubjectReview: KindStrategy = {
  info: resourceInfo('authentication.k8s.io', 'v1', 'SelfSubjectReview', 'selfsubjectreviews', false, { verbs: ['create'] }),
  async create(_body, ctx) {
    const u = ctx.user;
    return {
      kind: 'SelfSubjectReview',
      apiVersion: 'authentication.k8s.io/v1',
      metadata: { creationTimestamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') },
      status: {
        userInfo: {
          username: u.username,
          ...(u.uid ? { uid: u.uid } : {}),
          ...(u.groups.length ? { groups: u.groups } : {}),
          ...(u.extra && Object.keys(u.extra).length ? { extra: u.extra } : {}),
        },
      },
    };
  },
};
