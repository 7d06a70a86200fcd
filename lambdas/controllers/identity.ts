// The control loops act under their own identities, as kube-controller-manager's controllers do with
// --use-service-account-credentials: each loop is the service account kube-system/<its identity>, and
// RBAC's system:controller:<identity> ClusterRole (bootstrap-policy.ts) holds exactly what it uses.
// A loop that tries anything else is refused as any client would be (a 403 from its writes), so a bug or
// a compromised loop is confined to what its role allows, not handed the whole store.
//
// What is authorized: the loop's own calls on its registry (get, list, watch, create, update, delete,
// deletecollection, by resource and subresource). What is not: the shared informers' list+watch, which
// run once for all loops (kube's shared informer factory reads with the controller manager's own
// credential too), and the few reads and writes of Skiff's internal keys made on the raw backend (the
// scheduler's per-node reservations, node IPAM's allocations), which are no Kubernetes resources.

import type { Registry } from '../apiserver/registry.ts';
import { forbiddenError, type Authorizer, type RequestAttributes, type UserInfo } from '../apiserver/auth.ts';
import { errors } from '../machinery/status.ts';
import type { ResourceInfo } from '../machinery/resources.ts';
import type { KubeObject } from '../machinery/types.ts';

export const CONTROLLERS_NAMESPACE = 'kube-system';

/** The user a loop acts as: the service account kube-system/<identity>. */
export function controllerUser(identity: string): UserInfo {
  return {
    username: `system:serviceaccount:${CONTROLLERS_NAMESPACE}:${identity}`,
    groups: ['system:serviceaccounts', `system:serviceaccounts:${CONTROLLERS_NAMESPACE}`, 'system:authenticated'],
  };
}

type Call = { verb: string; res: ResourceInfo; namespace: string | undefined; name?: string; subresource?: string };

/** What each Registry method is, as a request (the arguments are the methods' own). */
const CALLS: Record<string, (args: any[]) => Call> = {
  get: ([res, namespace, name]) => ({ verb: 'get', res, namespace, name }),
  list: ([res, namespace]) => ({ verb: 'list', res, namespace }),
  watch: ([res, namespace]) => ({ verb: 'watch', res, namespace }),
  create: ([res, namespace, obj]) => ({ verb: 'create', res, namespace, name: (obj as KubeObject)?.metadata?.name }),
  update: ([res, namespace, name, , opts]) => ({ verb: 'update', res, namespace, name, subresource: opts?.subresource }),
  // A binding is a create of pods/binding; status and finalize are updates of their subresource.
  guaranteedUpdate: ([res, namespace, name, , opts]) =>
    opts?.subresource === 'binding' ? { verb: 'create', res, namespace, name, subresource: 'binding' } : { verb: 'update', res, namespace, name, subresource: opts?.subresource },
  getScale: ([res, namespace, name]) => ({ verb: 'get', res, namespace, name, subresource: 'scale' }),
  updateScale: ([res, namespace, name]) => ({ verb: 'update', res, namespace, name, subresource: 'scale' }),
  delete: ([res, namespace, name]) => ({ verb: 'delete', res, namespace, name }),
  deleteCollection: ([res, namespace]) => ({ verb: 'deletecollection', res, namespace }),
};

/** The attributes kube-apiserver would build for that call over HTTP. */
export function attributesOf(user: UserInfo, c: Call): RequestAttributes {
  return {
    user,
    verb: c.verb,
    resourceRequest: true,
    path: '',
    namespace: c.res.namespaced ? c.namespace : undefined,
    group: c.res.group,
    version: c.res.version,
    resource: c.res.resource,
    subresource: c.subresource,
    name: c.name,
  };
}

/**
 * The registry as `user` sees it: every resource call is authorized first and refused with kube's 403.
 * Anything else (the backend, helpers) passes through unchanged.
 */
export function authorizingRegistry(registry: Registry, user: UserInfo, authorizer: Authorizer): Registry {
  const check = async (c: Call) => {
    const attrs = attributesOf(user, c);
    const d = await authorizer.authorize(attrs);
    if (d.decision !== 'allow') throw forbiddenError(attrs, d.reason);
  };
  return new Proxy(registry, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      const call = typeof prop === 'string' ? CALLS[prop] : undefined;
      if (!call || typeof value !== 'function') return value;
      if (prop === 'watch') {
        // An async generator: authorize before the first event.
        return async function* (...args: unknown[]) {
          await check(call(args));
          yield* (value as (...a: unknown[]) => AsyncGenerator<unknown>).apply(target, args);
        };
      }
      return async (...args: unknown[]) => {
        await check(call(args));
        return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      };
    },
  });
}
