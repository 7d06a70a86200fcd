// serviceaccounts/token: authentication.k8s.io/v1 TokenRequest, kube's TokenREST
// (pkg/registry/core/serviceaccount/storage/token.go): a signed JWT for a ServiceAccount, with audiences
// (default: the apiserver's), a lifetime (default 3600 s, at least 600 s, at most the server's cap) and
// optionally bound to a Pod (its node named too) or a Secret, so the token dies with that object.
// Never stored. Costs one read of the ServiceAccount, plus the bound object and its Node when bound.

import { ApiError, errors } from '../machinery/status.ts';
import { findResource } from '../machinery/resources.ts';
import { isObject, type KubeObject } from '../machinery/types.ts';
import type { Registry } from './registry.ts';
import { WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS, EXPIRATION_EXTENSION_SECONDS, type ServiceAccountTokens } from './serviceaccount-tokens.ts';

const GROUP = 'authentication.k8s.io';
const API_VERSION = `${GROUP}/v1`;
/** SetDefaults_TokenRequestSpec. */
const DEFAULT_EXPIRATION_SECONDS = 60 * 60;

const res = (resource: string) => findResource('', 'v1', resource)!;

/** Go's encoding/json words for a wrong type in the body (the decoder's 400). */
function undecodable(why: string): ApiError {
  return errors.badRequest(`TokenRequest in version "v1" cannot be handled as a TokenRequest: ${why}`);
}

function jsonType(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'object' ? 'object' : typeof v;
}

/** Decodes the body as Go would decode it into a TokenRequest (wrong JSON types are a 400). */
function decode(body: unknown): { metadata: Record<string, any>; spec: { audiences?: string[]; expirationSeconds?: number; boundObjectRef?: Record<string, string> } } {
  if (!isObject(body)) throw undecodable(`json: cannot unmarshal ${jsonType(body)} into Go value of type v1.TokenRequest`);
  if (body.kind !== undefined && body.kind !== '' && body.kind !== 'TokenRequest') {
    throw errors.badRequest(`the kind in the data (${String(body.kind)}) does not match the expected kind (TokenRequest) for resource serviceaccounts/token`);
  }
  if (body.apiVersion !== undefined && body.apiVersion !== '' && body.apiVersion !== API_VERSION) {
    throw errors.badRequest(`the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${API_VERSION})`);
  }
  const metadata = body.metadata ?? {};
  if (!isObject(metadata)) throw undecodable(`json: cannot unmarshal ${jsonType(metadata)} into Go struct field TokenRequest.metadata of type v1.ObjectMeta`);
  const spec = body.spec ?? {};
  if (!isObject(spec)) throw undecodable(`json: cannot unmarshal ${jsonType(spec)} into Go struct field TokenRequest.spec of type v1.TokenRequestSpec`);
  const field = (f: string, t: string) => `Go struct field TokenRequestSpec.spec.${f} of type ${t}`;
  if (spec.audiences != null && (!Array.isArray(spec.audiences) || spec.audiences.some((a: unknown) => typeof a !== 'string'))) {
    const bad = Array.isArray(spec.audiences) ? spec.audiences.find((a: unknown) => typeof a !== 'string') : spec.audiences;
    throw undecodable(`json: cannot unmarshal ${jsonType(bad)} into ${field('audiences', Array.isArray(spec.audiences) ? 'string' : '[]string')}`);
  }
  const exp = spec.expirationSeconds;
  if (exp != null && (typeof exp !== 'number' || !Number.isInteger(exp) || !Number.isSafeInteger(exp))) {
    throw undecodable(
      typeof exp === 'number' ? `json: cannot unmarshal number ${exp} into ${field('expirationSeconds', 'int64')}` : `json: cannot unmarshal ${jsonType(exp)} into ${field('expirationSeconds', 'int64')}`,
    );
  }
  const ref = spec.boundObjectRef;
  if (ref != null) {
    if (!isObject(ref)) throw undecodable(`json: cannot unmarshal ${jsonType(ref)} into ${field('boundObjectRef', 'v1.BoundObjectReference')}`);
    for (const k of ['kind', 'apiVersion', 'name', 'uid']) {
      if (ref[k] != null && typeof ref[k] !== 'string') throw undecodable(`json: cannot unmarshal ${jsonType(ref[k])} into Go struct field BoundObjectReference.spec.boundObjectRef.${k} of type string`);
    }
  }
  return { metadata, spec: { audiences: spec.audiences ?? undefined, expirationSeconds: exp ?? undefined, boundObjectRef: ref ?? undefined } };
}

/** kube's GroupVersionKind.String() ("/v1, Kind=Pod") for the refusal of other kinds. */
function gvkString(apiVersion: string | undefined, kind: string | undefined): string {
  const av = apiVersion ?? '';
  const [group, version] = av.includes('/') ? av.split('/', 2) : ['', av];
  return `${group}/${version}, Kind=${kind ?? ''}`;
}

async function getOrNull(registry: Registry, resource: string, ns: string | undefined, name: string): Promise<KubeObject | null> {
  try {
    return await registry.get(res(resource), ns, name);
  } catch (e) {
    if (e instanceof ApiError && e.code === 404) return null;
    throw e;
  }
}

/** POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token → the TokenRequest with status.token (201). */
export async function createToken(registry: Registry, tokens: ServiceAccountTokens, namespace: string, name: string, body: unknown, now = new Date()): Promise<{ object: Record<string, any>; warnings: string[] }> {
  const req = decode(body);
  const warnings: string[] = [];
  if (req.metadata.name !== undefined && req.metadata.name !== '' && req.metadata.name !== name) {
    throw errors.invalid('TokenRequest', GROUP, name, [
      { reason: 'FieldValueInvalid', field: 'metadata.name', message: `Invalid value: ${JSON.stringify(req.metadata.name)}: must match the service account name if specified` },
    ]);
  }
  if (req.metadata.namespace !== undefined && req.metadata.namespace !== '' && req.metadata.namespace !== namespace) {
    throw errors.invalid('TokenRequest', GROUP, name, [
      { reason: 'FieldValueInvalid', field: 'metadata.namespace', message: `Invalid value: ${JSON.stringify(req.metadata.namespace)}: must match the service account namespace if specified` },
    ]);
  }
  let expirationSeconds = req.spec.expirationSeconds ?? DEFAULT_EXPIRATION_SECONDS;
  // ValidateTokenRequest (pkg/apis/authentication/validation).
  const causes = [];
  if (expirationSeconds < 10 * 60) {
    causes.push({ reason: 'FieldValueInvalid', field: 'spec.expirationSeconds', message: `Invalid value: ${expirationSeconds}: may not specify a duration less than 10 minutes` });
  }
  if (expirationSeconds > 2 ** 32) {
    causes.push({ reason: 'FieldValueInvalid', field: 'spec.expirationSeconds', message: `Invalid value: ${expirationSeconds}: may not specify a duration larger than 2^32 seconds` });
  }
  if (causes.length) throw errors.invalid('TokenRequest', GROUP, '', causes);

  const sa = await registry.get(res('serviceaccounts'), namespace, name);

  let pod: KubeObject | undefined;
  let secret: KubeObject | undefined;
  let node: { name: string; uid?: string } | undefined;
  const ref = req.spec.boundObjectRef;
  if (ref) {
    const group = (ref.apiVersion ?? '').includes('/') ? ref.apiVersion!.split('/')[0] : '';
    let uid: string | undefined;
    if (group === '' && ref.kind === 'Pod') {
      pod = await registry.get(res('pods'), namespace, ref.name ?? '');
      if (name !== pod.spec?.serviceAccountName) {
        throw errors.badRequest(`cannot bind token for serviceaccount ${JSON.stringify(name)} to pod running with different serviceaccount name.`);
      }
      uid = pod.metadata.uid;
      // ServiceAccountTokenPodNodeInfo (on in 1.32): the pod's node, its uid when the Node can be read.
      const nodeName = pod.spec?.nodeName;
      if (nodeName) {
        const n = await getOrNull(registry, 'nodes', undefined, nodeName);
        node = n?.metadata.uid ? { name: nodeName, uid: n.metadata.uid } : { name: nodeName };
      }
    } else if (group === '' && ref.kind === 'Secret') {
      secret = await registry.get(res('secrets'), namespace, ref.name ?? '');
      uid = secret.metadata.uid;
    } else {
      throw errors.badRequest(`cannot bind token to object of type ${gvkString(ref.apiVersion, ref.kind)}`);
    }
    if (ref.uid && ref.uid !== uid) {
      throw errors.conflict(
        ref.kind,
        '',
        ref.name ?? '',
        `the UID in the bound object reference (${ref.uid}) does not match the UID in record. The object might have been deleted and then recreated`,
      );
    }
  }
  const audiences = req.spec.audiences?.length ? req.spec.audiences : tokens.audiences;
  if (tokens.maxExpirationSeconds > 0 && expirationSeconds > tokens.maxExpirationSeconds) {
    warnings.push(`requested expiration of ${expirationSeconds} seconds shortened to ${tokens.maxExpirationSeconds} seconds`);
    expirationSeconds = tokens.maxExpirationSeconds;
  }
  // kube's safe transition for projected tokens: a pod-bound token asked for with kubelet's 3607 s for
  // the apiserver's own audiences lives a year, with warnafter at the asked time.
  let exp = expirationSeconds;
  let warnAfter = 0;
  if (tokens.extendExpiration && pod && expirationSeconds === WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS && tokens.isApiAudiences(audiences)) {
    warnAfter = expirationSeconds;
    exp = EXPIRATION_EXTENSION_SECONDS;
  }
  const nowSeconds = Math.floor(now.getTime() / 1000);
  const { token } = await tokens.issue(
    {
      namespace,
      serviceAccount: { name, uid: sa.metadata.uid! },
      audiences,
      expirationSeconds: exp,
      ...(pod ? { pod: { name: pod.metadata.name!, uid: pod.metadata.uid! } } : {}),
      ...(secret ? { secret: { name: secret.metadata.name!, uid: secret.metadata.uid! } } : {}),
      ...(node ? { node } : {}),
    },
    warnAfter,
    new Date(nowSeconds * 1000),
  );
  const ts = (s: number) => new Date(s * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    object: {
      kind: 'TokenRequest',
      apiVersion: API_VERSION,
      metadata: { name, namespace, creationTimestamp: ts(nowSeconds) },
      spec: { audiences, expirationSeconds, ...(ref ? { boundObjectRef: ref } : {}) },
      // status.expirationTimestamp: the asked lifetime (kube: nowTime + spec.expirationSeconds), never later than exp.
      status: { token, expirationTimestamp: ts(nowSeconds + expirationSeconds) },
    },
    warnings,
  };
}
