// Impersonation: kube's WithImpersonation filter (k8s.io/apiserver/pkg/endpoints/filters/impersonation.go),
// run right after authentication. A caller may act as another user (Impersonate-User), uid
// (Impersonate-Uid), groups (Impersonate-Group) and extra attributes (Impersonate-Extra-<key>) when the
// authorizer allows them the verb `impersonate` on each: users, uids, groups, serviceaccounts (a
// system:serviceaccount:<ns>:<name> user is checked as serviceaccounts in <ns>) and userextras/<key>.
// Costs: nothing without the headers; with them, one authorization per impersonated value.

import { dns1123LabelErrors, dns1123SubdomainErrors } from '../machinery/validation.ts';
import { errors } from '../machinery/status.ts';
import { forbiddenError, type Authorizer, type RequestAttributes, type UserInfo } from './auth.ts';

const USER_HEADER = 'impersonate-user';
const UID_HEADER = 'impersonate-uid';
const GROUP_HEADER = 'impersonate-group';
const EXTRA_PREFIX = 'impersonate-extra-';
const AUTHENTICATION_V1 = 'authentication.k8s.io/v1';

export const ALL_AUTHENTICATED = 'system:authenticated';
export const ALL_UNAUTHENTICATED = 'system:unauthenticated';
export const ANONYMOUS = 'system:anonymous';
const SA_PREFIX = 'system:serviceaccount:';

/** One thing asked for, as kube's v1.ObjectReference (its fields also make the 400's wording). */
interface Ref {
  kind: 'ServiceAccount' | 'User' | 'UID' | 'Group' | 'UserExtra';
  namespace?: string;
  name: string;
  apiVersion?: string;
  fieldPath?: string;
}

/** Go's %v of a v1.ObjectReference: its seven fields, space-separated, in braces. */
function goRef(r: Ref): string {
  return `{${[r.kind, r.namespace ?? '', r.name, '', r.apiVersion ?? '', '', r.fieldPath ?? ''].join(' ')}}`;
}

/** serviceaccount.SplitUsername: namespace and name of a service account's user name, if it is one. */
export function splitServiceAccount(username: string): { namespace: string; name: string } | undefined {
  if (!username.startsWith(SA_PREFIX)) return undefined;
  const parts = username.slice(SA_PREFIX.length).split(':');
  if (parts.length !== 2) return undefined;
  const [namespace, name] = parts as [string, string];
  if (dns1123LabelErrors(namespace).length || dns1123SubdomainErrors(name).length) return undefined;
  return { namespace, name };
}

/**
 * A header's values. Repeated headers reach us joined with ", " (Node's HTTP parser, Lambda's events),
 * so a value cannot hold a comma: kubectl's --as-group values are group names, which do not.
 */
function values(v: string | undefined): string[] {
  if (v === undefined) return [];
  return v.split(',').map((s) => s.trim()).filter(Boolean);
}

/** kube's unescapeExtraKey: extra keys travel percent-encoded in header names. */
function unescapeExtraKey(k: string): string {
  try {
    return decodeURIComponent(k);
  } catch {
    return k;
  }
}

function buildRequests(headers: Record<string, string | undefined>): Ref[] {
  const refs: Ref[] = [];
  const user = headers[USER_HEADER] ?? '';
  if (user) {
    const sa = splitServiceAccount(user);
    refs.push(sa ? { kind: 'ServiceAccount', ...sa } : { kind: 'User', name: user });
  }
  const groups = values(headers[GROUP_HEADER]);
  for (const g of groups) refs.push({ kind: 'Group', name: g });
  let hasExtra = false;
  for (const [h, v] of Object.entries(headers)) {
    if (!h.startsWith(EXTRA_PREFIX)) continue;
    hasExtra = true;
    const key = unescapeExtraKey(h.slice(EXTRA_PREFIX.length).toLowerCase());
    for (const value of values(v)) refs.push({ kind: 'UserExtra', name: value, apiVersion: AUTHENTICATION_V1, fieldPath: key });
  }
  const uid = headers[UID_HEADER] ?? '';
  if (uid) refs.push({ kind: 'UID', name: uid, apiVersion: AUTHENTICATION_V1 });
  if ((groups.length || hasExtra || uid) && !user) {
    // kube answers this with a 500 (InternalError); a malformed request is the client's error here: 400.
    throw errors.badRequest(`requested [${refs.map(goRef).join(' ')}] without impersonating a user`);
  }
  return refs;
}

/** True when the request asks to impersonate anyone (any Impersonate-* header). */
export function wantsImpersonation(headers: Record<string, string | undefined>): boolean {
  return Object.keys(headers).some((h) => h.startsWith('impersonate-'));
}

/**
 * The user a request acts as: `requestor` itself without Impersonate-* headers, else the impersonated user,
 * each part authorized (kube's 403 naming the first refused part). Throws 400 for groups, uid or extra
 * without a user.
 */
export async function impersonate(headers: Record<string, string | undefined>, requestor: UserInfo, authz: Authorizer, path: string): Promise<UserInfo> {
  if (!wantsImpersonation(headers)) return requestor;
  const refs = buildRequests(headers);
  if (!refs.length) return requestor;
  // Groups named are the whole list (system:authenticated included or not); otherwise a service account's fixed ones.
  const groupsSpecified = values(headers[GROUP_HEADER]).length > 0;
  let username = '';
  let uid: string | undefined;
  let groups: string[] = [];
  const extra: Record<string, string[]> = {};
  for (const r of refs) {
    const attrs: RequestAttributes = { user: requestor, verb: 'impersonate', resourceRequest: true, path, group: '', name: r.name, resource: '' };
    switch (r.kind) {
      case 'ServiceAccount':
        attrs.resource = 'serviceaccounts';
        attrs.namespace = r.namespace;
        username = `${SA_PREFIX}${r.namespace}:${r.name}`;
        if (!groupsSpecified) groups = ['system:serviceaccounts', `system:serviceaccounts:${r.namespace}`];
        break;
      case 'User':
        attrs.resource = 'users';
        username = r.name;
        break;
      case 'Group':
        attrs.resource = 'groups';
        groups.push(r.name);
        break;
      case 'UserExtra':
        attrs.group = 'authentication.k8s.io';
        attrs.resource = 'userextras';
        attrs.subresource = r.fieldPath;
        (extra[r.fieldPath!] ??= []).push(r.name);
        break;
      case 'UID':
        attrs.group = 'authentication.k8s.io';
        attrs.resource = 'uids';
        uid = r.name;
        break;
    }
    const d = await authz.authorize(attrs);
    if (d.decision !== 'allow') throw forbiddenError(attrs, d.reason);
  }
  if (username !== ANONYMOUS) {
    // A named user is authenticated, unless the caller asked for system:unauthenticated explicitly.
    if (!groups.includes(ALL_AUTHENTICATED) && !groups.includes(ALL_UNAUTHENTICATED)) groups.push(ALL_AUTHENTICATED);
  } else if (!groups.includes(ALL_UNAUTHENTICATED)) {
    groups.push(ALL_UNAUTHENTICATED);
  }
  return { username, ...(uid ? { uid } : {}), groups, ...(Object.keys(extra).length ? { extra } : {}) };
}
