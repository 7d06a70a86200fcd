// The Node authorizer (kube's plugin/pkg/auth/authorizer/node): what a node's own credential
// (system:node:<name>, group system:nodes) may do.
//
// TODAY (until the Node authorizer of issue #15 lands here): a node may do everything, as before RBAC.
// This is the one place that changes when it does; the chain that asks it is in app.ts.

import type { Authorizer } from './auth.ts';
import type { Registry } from './registry.ts';

export const NODES_GROUP = 'system:nodes';

export function createNodeAuthorizer(_registry: Registry): Authorizer {
  return {
    async authorize(attrs) {
      if (!attrs.user.groups.includes(NODES_GROUP) || !attrs.user.username.startsWith('system:node:')) return { decision: 'noOpinion' };
      return { decision: 'allow' };
    },
  };
}
