// What the authorization.k8s.io/v1 access reviews share: kube's pkg/apis/authorization/validation (its
// exact messages), the spec → authorizer attributes mapping (pkg/registry/authorization/util), and the
// status built from a decision (pkg/registry/authorization/subjectaccessreview/rest.go). The reviews are
// computed, never stored: each costs what one authorization of a request costs, no more.

import type { AuthorizationResult, RequestAttributes, UserInfo } from '../../apiserver/auth.ts';
import type { StatusCause } from '../../machinery/status.ts';
import { errors } from '../../machinery/status.ts';
import { isObject } from '../../machinery/types.ts';

export const GROUP = 'authorization.k8s.io';
type Obj = Record<string, any>;

/** Go's %#v of a value field.Invalid holds, as kube's ErrorBody prints it (nil pointers: "null"). */
export function goValue(v: unknown, goType: string): string {
  if (v === undefined || v === null) return '"null"';
  if (typeof v === 'string') return JSON.stringify(v);
  if (isObject(v)) {
    const fields = Object.entries(v).map(([k, x]) => `${k[0]!.toUpperCase()}${k.slice(1)}:${typeof x === 'string' ? JSON.stringify(x) : JSON.stringify(x)}`);
    return `${goType}{${fields.join(', ')}}`;
  }
  return String(v);
}

function invalid(field: string, value: string, detail: string): StatusCause {
  return { reason: 'FieldValueInvalid', field, message: `Invalid value: ${value}: ${detail}` };
}

/** True when the object's metadata holds nothing (ObjectMeta{} after ManagedFields and, for LSAR, namespace are cleared). */
function metadataEmpty(meta: unknown, exceptNamespace: boolean): boolean {
  if (!isObject(meta)) return true;
  return Object.entries(meta).every(([k, v]) => {
    if (k === 'managedFields' || (exceptNamespace && k === 'namespace')) return true;
    if (v === undefined || v === null || v === '' || v === 0) return true;
    if (Array.isArray(v)) return v.length === 0;
    if (isObject(v)) return Object.keys(v).length === 0;
    return false;
  });
}

/** The ObjectMeta a "must be empty" error names, as Go prints it (the set fields; kube prints every field). */
function goObjectMeta(meta: Obj): string {
  const parts = Object.entries(meta)
    .filter(([k]) => k !== 'managedFields')
    .map(([k, v]) => `${k === 'uid' ? 'UID' : k[0]!.toUpperCase() + k.slice(1)}:${typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v)}`);
  return `v1.ObjectMeta{${parts.join(', ')}}`;
}

/** ValidateSubjectAccessReviewSpec / ValidateSelfSubjectAccessReviewSpec (self: no user or group). */
function specErrors(spec: Obj, self: boolean): StatusCause[] {
  const errs: StatusCause[] = [];
  const ra = spec.resourceAttributes;
  const nra = spec.nonResourceAttributes;
  if (ra != null && nra != null) {
    errs.push(invalid('spec.nonResourceAttributes', goValue(nra, 'authorization.NonResourceAttributes'), 'cannot be specified in combination with resourceAttributes'));
  }
  if (ra == null && nra == null) {
    errs.push(invalid('spec.resourceAttributes', '"null"', 'exactly one of nonResourceAttributes or resourceAttributes must be specified'));
  }
  if (!self && !spec.user && !(Array.isArray(spec.groups) && spec.groups.length)) {
    errs.push(invalid('spec.user', JSON.stringify(spec.user ?? ''), 'at least one of user or group must be specified'));
  }
  return errs;
}

export type ReviewKind = 'SubjectAccessReview' | 'LocalSubjectAccessReview' | 'SelfSubjectAccessReview';

/** Validates a review (kube's Validate<Kind>); throws kube's 422 naming every problem. */
export function validateReview(kind: ReviewKind, body: Obj): void {
  const spec: Obj = isObject(body.spec) ? body.spec : {};
  const errs = specErrors(spec, kind === 'SelfSubjectAccessReview');
  const meta: Obj = isObject(body.metadata) ? body.metadata : {};
  if (kind === 'LocalSubjectAccessReview') {
    if (!metadataEmpty(meta, true)) errs.push(invalid('metadata', goObjectMeta(meta), 'must be empty except for namespace'));
    const ra = spec.resourceAttributes;
    if (isObject(ra) && (ra.namespace ?? '') !== (meta.namespace ?? '')) {
      errs.push(invalid('spec.resourceAttributes.namespace', JSON.stringify(ra.namespace ?? ''), 'must match metadata.namespace'));
    }
    if (spec.nonResourceAttributes != null) {
      errs.push(invalid('spec.nonResourceAttributes', goValue(spec.nonResourceAttributes, 'authorization.NonResourceAttributes'), 'disallowed on this kind of request'));
    }
  } else if (!metadataEmpty(meta, false)) {
    errs.push(invalid('metadata', goObjectMeta(meta), 'must be empty'));
  }
  if (errs.length) throw errors.invalid(kind, GROUP, '', errs);
}

/** ResourceAttributesFrom / NonResourceAttributesFrom: what the authorizer is asked for `user`. */
export function attributesFor(user: UserInfo, spec: Obj): RequestAttributes {
  const ra = spec.resourceAttributes;
  if (isObject(ra)) {
    const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
    return {
      user,
      verb: str(ra.verb) ?? '',
      resourceRequest: true,
      path: '',
      namespace: str(ra.namespace),
      group: typeof ra.group === 'string' ? ra.group : '',
      version: str(ra.version),
      resource: str(ra.resource),
      subresource: str(ra.subresource),
      name: str(ra.name),
    };
  }
  const nra: Obj = isObject(spec.nonResourceAttributes) ? spec.nonResourceAttributes : {};
  return { user, verb: String(nra.verb ?? ''), resourceRequest: false, path: String(nra.path ?? '') };
}

/** The user a SubjectAccessReview's spec names (user, uid, groups, extra), as authorizationutil builds it. */
export function specUser(spec: Obj): UserInfo {
  return {
    username: typeof spec.user === 'string' ? spec.user : '',
    ...(typeof spec.uid === 'string' && spec.uid ? { uid: spec.uid } : {}),
    groups: Array.isArray(spec.groups) ? spec.groups.filter((g: unknown): g is string => typeof g === 'string') : [],
    ...(isObject(spec.extra) ? { extra: spec.extra as Record<string, string[]> } : {}),
  };
}

/**
 * SubjectAccessReviewStatus from a decision: allowed / denied (an explicit deny; no opinion is neither),
 * the authorizer's reason, and its evaluation error. A failing authorizer is answered with the error,
 * not a 500, as kube's authorizers return (decision, reason, err).
 */
export async function reviewStatus(authorize: () => Promise<AuthorizationResult>): Promise<Obj> {
  let d: AuthorizationResult;
  try {
    d = await authorize();
  } catch (e) {
    return { allowed: false, evaluationError: e instanceof Error ? e.message : String(e) };
  }
  return {
    allowed: d.decision === 'allow',
    ...(d.decision === 'deny' ? { denied: true } : {}),
    ...(d.reason ? { reason: d.reason } : {}),
  };
}

/** The review as answered: what was sent, apiVersion/kind set, with its status. */
export function answer(kind: string, body: Obj, status: Obj): Obj {
  const meta: Obj = isObject(body.metadata) ? { ...body.metadata } : {};
  return { kind, apiVersion: `${GROUP}/v1`, metadata: { ...meta, creationTimestamp: null }, spec: isObject(body.spec) ? body.spec : {}, status };
}

/** The body a review kind received, as an object (the pipeline has decoded and type-checked it). */
export function asObject(body: unknown): Obj {
  return isObject(body) ? body : {};
}
