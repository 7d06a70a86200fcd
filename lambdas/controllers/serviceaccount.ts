// Two of kube-controller-manager's per-namespace loops, keyed by namespace name:
//   serviceaccounts (pkg/controller/serviceaccount/serviceaccounts_controller.go): every active namespace
//     has a ServiceAccount `default`; deleted, it comes back.
//   root-ca-cert-publisher (pkg/controller/certificates/rootcacertpublisher): every active namespace has the
//     ConfigMap `kube-root-ca.crt` whose `ca.crt` is the bundle that verifies the apiserver; edited or
//     deleted, it is put back. Pods' projected token volumes mount it (admission-serviceaccount.ts).
// A reconcile reads the namespace and its one object through the cache (locally the informers; in the
// cloud one read each) and writes only when something is missing or differs, so replays are no-ops.
// Which CA: locally the cluster CA of <data-dir>/pki/ca.crt (it signs the apiserver's certificate);
// deployed, what node agents verify the apiserver with: the stack's `ca` parameter, which by default is
// "system" (the Function URL's certificate is publicly trusted, issued by Amazon), so the publisher then
// publishes Amazon's root certificates (rootCAFromEnv), or SKIFF_ROOT_CA when the stack sets a PEM bundle.

import { X509Certificate } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import { findResource } from '../machinery/resources.ts';
import { ApiError } from '../machinery/status.ts';
import type { KubeObject } from '../machinery/types.ts';
import { readerOf, type ChangeEvent, type Controller, type ControllerContext } from './controller.ts';
import { controllerUser } from './identity.ts';

const namespaces = findResource('', 'v1', 'namespaces')!;
const serviceAccounts = findResource('', 'v1', 'serviceaccounts')!;
const configMaps = findResource('', 'v1', 'configmaps')!;

export const DEFAULT_SERVICE_ACCOUNT = 'default';
export const ROOT_CA_CONFIGMAP = 'kube-root-ca.crt';
/** kube's DescriptionAnnotation value on the published ConfigMap. */
const ROOT_CA_DESCRIPTION =
  'Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.';

/** A namespace's key when it, or its object of the given name, changes. */
function namespaceKeys(objectName: string) {
  return (ev: ChangeEvent): string[] => {
    if (ev.resource.resource === 'namespaces') return ev.type === 'DELETED' ? [] : [ev.object.metadata.name!];
    // Only a deletion or change of our object matters (kube's serviceAccountDeleted / configMapUpdated).
    return ev.object.metadata.name === objectName && ev.object.metadata.namespace ? [ev.object.metadata.namespace] : [];
  };
}

/** The namespace, when it exists and may take new objects (not terminating). */
async function activeNamespace(ctx: ControllerContext, name: string): Promise<KubeObject | undefined> {
  const ns = await readerOf(ctx).get(namespaces, undefined, name);
  if (!ns || ns.metadata.deletionTimestamp || ns.status?.phase === 'Terminating') return undefined;
  return ns;
}

async function allNamespaces(ctx: ControllerContext): Promise<string[]> {
  return (await readerOf(ctx).list(namespaces, undefined)).map((n) => n.metadata.name!);
}

/** Creation races (another instance, a user) and a namespace ending meanwhile are not failures. */
function ignorable(e: unknown): boolean {
  return e instanceof ApiError && (e.reason === 'AlreadyExists' || e.code === 404 || (e.code === 403 && /being terminated/.test(e.message)));
}

export const serviceAccountsController: Controller = {
  name: 'serviceaccounts',
  identity: controllerUser('serviceaccount-controller'),
  watches: [namespaces, serviceAccounts],
  keys: namespaceKeys(DEFAULT_SERVICE_ACCOUNT),
  async reconcile(ns, ctx) {
    if (!(await activeNamespace(ctx, ns))) return;
    if (await readerOf(ctx).get(serviceAccounts, ns, DEFAULT_SERVICE_ACCOUNT)) return;
    try {
      await ctx.create(serviceAccounts, ns, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: DEFAULT_SERVICE_ACCOUNT, namespace: ns } });
    } catch (e) {
      if (!ignorable(e)) throw e;
    }
  },
  allKeys: allNamespaces,
};

/** kube's root-ca-cert-publisher for the given PEM bundle. */
export function createRootCACertPublisher(opts: { caCert: string }): Controller {
  const data = { 'ca.crt': opts.caCert };
  return {
    name: 'root-ca-cert-publisher',
    identity: controllerUser('root-ca-cert-publisher'),
    watches: [namespaces, configMaps],
    keys: namespaceKeys(ROOT_CA_CONFIGMAP),
    async reconcile(ns, ctx) {
      if (!(await activeNamespace(ctx, ns))) return;
      const cm = await readerOf(ctx).get(configMaps, ns, ROOT_CA_CONFIGMAP);
      if (!cm) {
        try {
          await ctx.create(configMaps, ns, {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: { name: ROOT_CA_CONFIGMAP, namespace: ns, annotations: { 'kubernetes.io/description': ROOT_CA_DESCRIPTION } },
            data,
          });
        } catch (e) {
          if (!ignorable(e)) throw e;
        }
        return;
      }
      const same = cm.data?.['ca.crt'] === opts.caCert && Object.keys(cm.data ?? {}).length === 1 && !cm.binaryData;
      if (same && cm.metadata.annotations?.['kubernetes.io/description'] === ROOT_CA_DESCRIPTION) return;
      // kube's publisher replaces data (and binaryData) and sets the description annotation.
      await ctx.registry
        .guaranteedUpdate(configMaps, ns, ROOT_CA_CONFIGMAP, undefined, {}, (cur) => {
          const next: KubeObject = { ...cur, data: { ...data } };
          delete next.binaryData;
          next.metadata = { ...cur.metadata, annotations: { ...(cur.metadata.annotations ?? {}), 'kubernetes.io/description': ROOT_CA_DESCRIPTION } };
          return next;
        })
        .catch((e) => {
          if (!ignorable(e)) throw e;
        });
    },
    allKeys: allNamespaces,
  };
}

/**
 * The deployed bundle (see the top of this file): SKIFF_ROOT_CA (a PEM bundle) when set, else Amazon's
 * roots among those Node.js trusts (Amazon Root CA 1-4 and Starfield Services Root G2, which cross-signs
 * them): the Function URL's and CloudFront's certificates chain to them. Not the whole system bundle: it
 * is 220 KB, stored once per namespace and read by every list of a namespace's ConfigMaps.
 */
export function rootCAFromEnv(env = process.env): string {
  const pem = env.SKIFF_ROOT_CA?.trim();
  if (pem && pem !== 'system') return `${pem}\n`;
  const amazon = rootCertificates.filter((c) => /\bO=Amazon\b|Starfield Services Root Certificate Authority - G2/.test(new X509Certificate(c).subject));
  return `${amazon.join('\n')}\n`;
}
