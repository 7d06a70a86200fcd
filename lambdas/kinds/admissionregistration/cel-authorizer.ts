// The `authorizer` variable of admission CEL (k8s.io/apiserver/pkg/cel/library/authz.go): a policy asks
// whether the requesting user (or a service account) may do something else, through the server's own
// authorizer chain (privileged groups, Node, RBAC), as kube's does:
//
//   authorizer.group('apps').resource('deployments').namespace('ns').name('web').check('update').allowed()
//   authorizer.path('/healthz').check('get').allowed()
//   authorizer.serviceAccount('ns', 'sa').group('').resource('pods').check('list').allowed()
//   authorizer.requestResource.subresource('status').check('update').reason()
//
// A check is a call to the authorizer, which is asynchronous here: the CEL library awaits async
// functions (the evaluation becomes a promise). As in kube, a check costs a fixed 350,000 of the
// 1,000,000 per-expression budget, so an expression makes at most two.

import type { Environment } from '@marcbachmann/cel-js';
import { CostExceeded, type Budget } from '../../apiextensions/cel.ts';
import type { Authorizer, RequestAttributes, UserInfo } from '../../apiserver/auth.ts';

const T = 'kubernetes.authorization.';
/** kube's authorizationCheckCost (library/cost.go). */
const CHECK_COST = 350_000;

interface Asking {
  authorizer: Authorizer | undefined;
  user: UserInfo;
  budget: Budget;
}

class AuthorizerValue {
  constructor(
    readonly asking: Asking,
    readonly requestResource: ResourceCheck,
  ) {}
}
class PathCheck {
  constructor(
    readonly asking: Asking,
    readonly path: string,
  ) {}
}
class GroupCheck {
  constructor(
    readonly asking: Asking,
    readonly group: string,
  ) {}
}
type ResourceAttrs = Pick<RequestAttributes, 'group' | 'version' | 'resource' | 'subresource' | 'namespace' | 'name'>;
class ResourceCheck {
  constructor(
    readonly asking: Asking,
    readonly attrs: ResourceAttrs,
  ) {}
}
class Decision {
  constructor(
    readonly decision: string,
    readonly why: string,
    readonly err?: string,
  ) {}
}

async function check(asking: Asking, attrs: Omit<RequestAttributes, 'user' | 'verb'>, verb: string): Promise<Decision> {
  asking.budget.used += CHECK_COST;
  if (asking.budget.used > asking.budget.limit) {
    asking.budget.exceeded = true;
    throw new CostExceeded();
  }
  if (!asking.authorizer) return new Decision('noOpinion', '', 'no authorizer');
  try {
    const r = await asking.authorizer.authorize({ ...attrs, user: asking.user, verb });
    return new Decision(r.decision, r.reason ?? '');
  } catch (e) {
    return new Decision('noOpinion', '', (e as Error).message);
  }
}

const method = (e: Environment, receiver: string, name: string, params: string[], returns: string, handler: (...a: any[]) => unknown) =>
  e.registerFunction({ name, receiverType: receiver, returnType: returns, params: params.map((type, i) => ({ name: `p${i}`, type })), handler } as never);

/** Declares `authorizer` (and its types and methods) in an admission CEL environment. */
export function registerAuthorizerLibrary(e: Environment): void {
  e.registerType(`${T}Authorizer`, { ctor: AuthorizerValue, fields: { requestResource: `${T}ResourceCheck` } } as never);
  e.registerType(`${T}PathCheck`, PathCheck as never);
  e.registerType(`${T}GroupCheck`, GroupCheck as never);
  e.registerType(`${T}ResourceCheck`, ResourceCheck as never);
  e.registerType(`${T}Decision`, Decision as never);
  const A = `${T}Authorizer`;
  const R = `${T}ResourceCheck`;
  const D = `${T}Decision`;
  method(e, A, 'path', ['string'], `${T}PathCheck`, (a: AuthorizerValue, path: string) => new PathCheck(a.asking, path));
  method(e, A, 'group', ['string'], `${T}GroupCheck`, (a: AuthorizerValue, group: string) => new GroupCheck(a.asking, group));
  // The same checks asked as the service account (serviceaccount.UserInfo: its user and its two groups).
  method(e, A, 'serviceAccount', ['string', 'string'], A, (a: AuthorizerValue, namespace: string, name: string) => {
    const asking = { ...a.asking, user: { username: `system:serviceaccount:${namespace}:${name}`, groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`] } };
    return new AuthorizerValue(asking, new ResourceCheck(asking, a.requestResource.attrs));
  });
  // Any version: a check names a group and a resource, not a version (kube asks with APIVersion "*").
  method(e, `${T}GroupCheck`, 'resource', ['string'], R, (g: GroupCheck, resource: string) => new ResourceCheck(g.asking, { group: g.group, version: '*', resource }));
  for (const field of ['subresource', 'namespace', 'name'] as const) {
    method(e, R, field, ['string'], R, (r: ResourceCheck, v: string) => new ResourceCheck(r.asking, { ...r.attrs, [field]: v }));
  }
  method(e, R, 'check', ['string'], D, (r: ResourceCheck, verb: string) => check(r.asking, { resourceRequest: true, path: '', ...r.attrs }, verb));
  method(e, `${T}PathCheck`, 'check', ['string'], D, (p: PathCheck, verb: string) => check(p.asking, { resourceRequest: false, path: p.path }, verb));
  method(e, D, 'allowed', [], 'bool', (d: Decision) => d.decision === 'allow');
  method(e, D, 'reason', [], 'string', (d: Decision) => d.why);
  method(e, D, 'errored', [], 'bool', (d: Decision) => d.err !== undefined);
  method(e, D, 'error', [], 'string', (d: Decision) => d.err ?? '');
}

/** The `authorizer` of one evaluation: the requesting user, and the request's own resource. */
export function authorizerVariable(authorizer: Authorizer | undefined, user: UserInfo, request: ResourceAttrs, budget: Budget): AuthorizerValue {
  const asking = { authorizer, user, budget };
  return new AuthorizerValue(asking, new ResourceCheck(asking, request));
}
