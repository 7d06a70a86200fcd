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

/** Go's %#v of an authorization.NonResourceAttributes, as field.Invalid prints it. */
export function goNonResourceAttributes(v: unknown): string {
  const o: Obj = isObject(v) ? v : {};
  const str = (x: unknown) => JSON.stringify(typeof x === 'string' ? x : '');
  return `authorization.NonResourceAttributes{Path:${str(o.path)}, Verb:${str(o.verb)}}`;
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

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** time.Time's GoString (what %#v prints for a metav1.Time): time.Date(2006, time.January, 2, ...). */
function goTime(v: unknown): string {
  const d = typeof v === 'string' ? new Date(v) : undefined;
  if (!d || Number.isNaN(d.getTime())) return 'time.Date(1, time.January, 1, 0, 0, 0, 0, time.UTC)';
  return `time.Date(${d.getUTCFullYear()}, time.${MONTHS[d.getUTCMonth()]}, ${d.getUTCDate()}, ${d.getUTCHours()}, ${d.getUTCMinutes()}, ${d.getUTCSeconds()}, 0, time.UTC)`;
}

const goStrings = (v: unknown) => (Array.isArray(v) && v.length ? `[]string{${v.map((x) => JSON.stringify(String(x))).join(', ')}}` : '[]string(nil)');
const goStringMap = (v: unknown) =>
  isObject(v) && Object.keys(v).length
    ? `map[string]string{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${JSON.stringify(String(v[k]))}`).join(', ')}}`
    : 'map[string]string(nil)';

/** The ObjectMeta a "must be empty" error names, as Go's %#v prints a metav1.ObjectMeta. */
function goObjectMeta(m: Obj): string {
  const str = (v: unknown) => JSON.stringify(typeof v === 'string' ? v : '');
  const refs = Array.isArray(m.ownerReferences) && m.ownerReferences.length ? `[]v1.OwnerReference{...}` : '[]v1.OwnerReference(nil)';
  return (
    `v1.ObjectMeta{Name:${str(m.name)}, GenerateName:${str(m.generateName)}, Namespace:${str(m.namespace)}, SelfLink:${str(m.selfLink)}, ` +
    `UID:${str(m.uid)}, ResourceVersion:${str(m.resourceVersion)}, Generation:${Number.isInteger(m.generation) ? m.generation : 0}, ` +
    `CreationTimestamp:${goTime(m.creationTimestamp)}, DeletionTimestamp:${m.deletionTimestamp ? goTime(m.deletionTimestamp) : '<nil>'}, ` +
    `DeletionGracePeriodSeconds:(*int64)(nil), Labels:${goStringMap(m.labels)}, Annotations:${goStringMap(m.annotations)}, ` +
    `OwnerReferences:${refs}, Finalizers:${goStrings(m.finalizers)}, ManagedFields:[]v1.ManagedFieldsEntry(nil)}`
  );
}

/** ValidateSubjectAccessReviewSpec / ValidateSelfSubjectAccessReviewSpec (self: no user or group). */
function specErrors(spec: Obj, self: boolean): StatusCause[] {
  const errs: StatusCause[] = [];
  const ra = spec.resourceAttributes;
  const nra = spec.nonResourceAttributes;
  if (ra != null && nra != null) {
    errs.push(invalid('spec.nonResourceAttributes', goNonResourceAttributes(nra), 'cannot be specified in combination with resourceAttributes'));
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
      errs.push(invalid('spec.nonResourceAttributes', goNonResourceAttributes(spec.nonResourceAttributes), 'disallowed on this kind of request'));
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
