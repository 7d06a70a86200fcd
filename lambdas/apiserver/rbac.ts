// The RBAC authorizer (kube's plugin/pkg/auth/authorizer/rbac): a request is allowed when a rule of a role
// bound to the user allows it; otherwise RBAC has no opinion (the union's next authorizer, or a 403).
// It is also the RuleResolver (SelfSubjectRulesReview, and the escalation check of admission-rbac.ts).
//
// What a request costs. The authorizer answers from a per-process view of the store's RBAC objects,
// indexed so that a request visits only the requesting user's bindings (those naming the user, one of
// their groups, or their service account), never all bindings:
//   - bindings by subject: ClusterRoleBindings by "u:<user>" / "g:<group>"; RoleBindings by namespace and
//     the same keys (a ServiceAccount subject is indexed under its username,
//     system:serviceaccount:<ns>:<name>, which is how kube matches it);
//   - roles by namespace/name, ClusterRoles by name.
// So a request costs (1 + number of groups) map lookups, plus the rules of the roles its bindings name.
// How the view is kept current (both modes share the code; only the trigger differs, as in crds.ts):
//   - follow() (skiff up, one long-lived process): a watch on /registry/rbac.authorization.k8s.io/ applies
//     each change to the indexes; requests read nothing from storage.
//   - fresh() (each apiserver Lambda instance): when the view is older than maxAgeMs (1 s), a request
//     re-lists the four RBAC kinds (four lists, paged by 1,000) and swaps in a new view; concurrent
//     requests share that read. So: at most one re-list per instance per second, none while idle.
// One view per store per process (policyFor): the authorizer and the escalation check share it.

import type { Backend, KeyValue } from '../storage/backend.ts';
import { errors } from '../machinery/status.ts';
import { goQuote } from '../machinery/validation.ts';
import type { Authorizer, AuthorizationResult, PolicyRule, RequestAttributes, RuleResolver, UserInfo } from './auth.ts';
import { ruleAllows } from './rbac-rules.ts';

const PREFIX = '/registry/rbac.authorization.k8s.io/';
/** One storage prefix per kind (a DynamoDB partition each): listed and watched one by one. */
const PREFIXES = ['roles', 'clusterroles', 'rolebindings', 'clusterrolebindings'].map((r) => `${PREFIX}${r}/`);

export interface RoleRef {
  apiGroup?: string;
  kind: string;
  name: string;
}
interface Subject {
  kind: string;
  name: string;
  namespace?: string;
  apiGroup?: string;
}
interface Binding {
  /** The storage key: identity in the indexes. */
  key: string;
  kind: 'RoleBinding' | 'ClusterRoleBinding';
  name: string;
  namespace?: string;
  roleRef: RoleRef;
}

/** The username a service account authenticates as (serviceaccount.MakeUsername). */
export function serviceAccountUsername(namespace: string, name: string): string {
  return `system:serviceaccount:${namespace}:${name}`;
}

/** The index keys of a subject ("u:" users and service accounts, "g:" groups); none if it names nobody. */
function subjectKey(s: Subject, bindingNamespace: string | undefined): string | undefined {
  if (!s || typeof s.name !== 'string') return undefined;
  switch (s.kind) {
    case 'User':
      return `u:${s.name}`;
    case 'Group':
      return `g:${s.name}`;
    case 'ServiceAccount': {
      // appliesToUser: a RoleBinding's service account without a namespace is in the binding's namespace.
      const ns = s.namespace || bindingNamespace;
      return ns ? `u:${serviceAccountUsername(ns, s.name)}` : undefined;
    }
    default:
      return undefined;
  }
}

/** The index keys a user is found under. */
function userKeys(user: UserInfo): string[] {
  return [`u:${user.username}`, ...user.groups.map((g) => `g:${g}`)];
}

/** The indexes: one instance is either followed by a watch or rebuilt whole by a re-list. */
class PolicyIndex {
  private roles = new Map<string, PolicyRule[]>(); // "ns/name"
  private clusterRoles = new Map<string, PolicyRule[]>(); // name
  private clusterBindings = new Map<string, Map<string, Binding>>(); // subject key → bindings by storage key
  private nsBindings = new Map<string, Map<string, Binding>>(); // "ns\0subject key" → bindings
  private indexedUnder = new Map<string, string[]>(); // binding storage key → where it is indexed

  /** Applies one stored object (or its removal: value undefined). */
  apply(key: string, value: string | undefined): void {
    const rest = key.slice(PREFIX.length).split('/');
    const resource = rest[0];
    this.removeBinding(key);
    if (resource === 'roles' && rest.length === 3) {
      const k = `${rest[1]}/${rest[2]}`;
      if (value === undefined) this.roles.delete(k);
      else this.roles.set(k, rulesOf(value));
    } else if (resource === 'clusterroles' && rest.length === 2) {
      if (value === undefined) this.clusterRoles.delete(rest[1]!);
      else this.clusterRoles.set(rest[1]!, rulesOf(value));
    } else if (value !== undefined && resource === 'rolebindings' && rest.length === 3) {
      this.addBinding(key, 'RoleBinding', rest[1], rest[2]!, value);
    } else if (value !== undefined && resource === 'clusterrolebindings' && rest.length === 2) {
      this.addBinding(key, 'ClusterRoleBinding', undefined, rest[1]!, value);
    }
  }

  private addBinding(key: string, kind: Binding['kind'], namespace: string | undefined, name: string, value: string): void {
    let o: any;
    try {
      o = JSON.parse(value);
    } catch {
      return;
    }
    if (!o?.roleRef || typeof o.roleRef.name !== 'string') return;
    const b: Binding = { key, kind, name, namespace, roleRef: o.roleRef };
    const under: string[] = [];
    for (const s of Array.isArray(o.subjects) ? o.subjects : []) {
      const sk = subjectKey(s, namespace);
      if (!sk) continue;
      const ik = namespace === undefined ? sk : `${namespace}\0${sk}`;
      const map = namespace === undefined ? this.clusterBindings : this.nsBindings;
      let m = map.get(ik);
      if (!m) map.set(ik, (m = new Map()));
      m.set(key, b);
      under.push(ik);
    }
    this.indexedUnder.set(key, under);
  }

  private removeBinding(key: string): void {
    const under = this.indexedUnder.get(key);
    if (!under) return;
    const map = key.startsWith(`${PREFIX}clusterrolebindings/`) ? this.clusterBindings : this.nsBindings;
    for (const ik of under) {
      const m = map.get(ik);
      m?.delete(key);
      if (m && !m.size) map.delete(ik);
    }
    this.indexedUnder.delete(key);
  }

  /** The user's bindings: ClusterRoleBindings first, then RoleBindings of `namespace` (kube's visit order). */
  bindingsFor(user: UserInfo, namespace: string | undefined): Binding[] {
    const seen = new Map<string, Binding>();
    const keys = userKeys(user);
    for (const k of keys) for (const b of this.clusterBindings.get(k)?.values() ?? []) seen.set(b.key, b);
    if (namespace) for (const k of keys) for (const b of this.nsBindings.get(`${namespace}\0${k}`)?.values() ?? []) seen.set(b.key, b);
    return [...seen.values()];
  }

  /** GetRoleReferenceRules: a ClusterRole's rules, or a Role's in `namespace`; undefined when it does not exist. */
  roleRules(ref: RoleRef, namespace: string | undefined): PolicyRule[] | undefined {
    if (ref.kind === 'ClusterRole') return this.clusterRoles.get(ref.name);
    if (ref.kind === 'Role' && namespace) return this.roles.get(`${namespace}/${ref.name}`);
    return undefined;
  }
}

function rulesOf(value: string): PolicyRule[] {
  try {
    const o = JSON.parse(value);
    return Array.isArray(o?.rules) ? o.rules.filter((r: unknown) => r && typeof r === 'object') : [];
  } catch {
    return [];
  }
}

/** The lister's NotFound of a missing role, as kube's authorizer reports it ("role.rbac.authorization.k8s.io"). */
function missingRoleError(ref: RoleRef): string {
  return `${ref.kind === 'Role' ? 'role' : 'clusterrole'}.rbac.authorization.k8s.io ${goQuote(ref.name)} not found`;
}

/** utilerrors.NewAggregate's Error(): one message alone, several in brackets. */
function aggregate(msgs: string[]): string {
  return msgs.length === 1 ? msgs[0]! : `[${msgs.join(', ')}]`;
}

export interface RbacOptions {
  /** How old a view may get before a request re-lists (when no watch keeps it current); default 1000 ms. */
  maxAgeMs?: number;
}

export class RbacAuthorizer implements Authorizer, RuleResolver {
  private index = new PolicyIndex();
  private lastRead = -Infinity;
  private reading: Promise<void> | undefined;
  private following = false;
  private readonly maxAgeMs: number;
  /** What the view has cost: storage lists, and bindings visited by requests (tests assert on these). */
  readonly stats = { relists: 0, lists: 0, bindingsVisited: 0 };

  constructor(
    private readonly backend: Backend,
    opts: RbacOptions = {},
  ) {
    this.maxAgeMs = opts.maxAgeMs ?? 1000;
  }

  /**
   * A view of fixed objects (never read from a store): the bootstrap policy as shipped, for the cloud
   * control loops, whose identities are then authorized with no read per batch (app.ts loopAuthorizer).
   */
  static ofObjects(objects: { kind: string; metadata: { name?: string; namespace?: string } }[]): RbacAuthorizer {
    const a = new RbacAuthorizer(undefined as unknown as Backend);
    const plural: Record<string, string> = { Role: 'roles', ClusterRole: 'clusterroles', RoleBinding: 'rolebindings', ClusterRoleBinding: 'clusterrolebindings' };
    for (const o of objects) {
      const ns = o.metadata.namespace ? `${o.metadata.namespace}/` : '';
      a.index.apply(`${PREFIX}${plural[o.kind]}/${ns}${o.metadata.name}`, JSON.stringify(o));
    }
    a.following = true; // nothing to re-read
    return a;
  }

  get isFollowing(): boolean {
    return this.following;
  }

  /** Before answering: a view older than maxAgeMs is re-listed, unless a watch keeps it current. */
  async fresh(): Promise<void> {
    if (this.following) return;
    if (performance.now() - this.lastRead < this.maxAgeMs) return;
    await this.refresh();
  }

  /** Re-lists the RBAC objects into a new view; concurrent callers share the read. */
  refresh(): Promise<void> {
    this.reading ??= (async () => {
      const started = performance.now();
      await this.readAt();
      this.lastRead = started;
    })().finally(() => (this.reading = undefined));
    return this.reading;
  }

  /** Lists the four kinds into a new view; returns the revision each list reflects (a watch starts there). */
  private async readAt(): Promise<number[]> {
    this.stats.relists++;
    const kvs: KeyValue[] = [];
    const revisions: number[] = [];
    for (const prefix of PREFIXES) {
      let startAfter: string | undefined;
      let revision = 0;
      // Paged, as one snapshot of the kind (every page at the first page's revision).
      for (;;) {
        const page = await this.backend.list(prefix, { limit: 1000, startAfter, ...(revision ? { revision } : {}) });
        this.stats.lists++;
        revision ||= page.revision;
        kvs.push(...page.kvs);
        if (!page.more || !page.kvs.length) break;
        startAfter = page.kvs[page.kvs.length - 1]!.key;
      }
      revisions.push(revision);
    }
    const index = new PolicyIndex();
    for (const kv of kvs) index.apply(kv.key, kv.value);
    this.index = index;
    return revisions;
  }

  /**
   * Keeps the view current from a watch on the RBAC prefix until `signal` aborts (skiff up): each event
   * updates the indexes in place. A failed watch falls back to per-request re-lists until it is back.
   */
  async follow(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        const revs = await this.readAt();
        this.following = true;
        // One watch per kind, each from its list's revision; the first to fail restarts them all.
        const ctl = new AbortController();
        const stop = () => ctl.abort();
        signal.addEventListener('abort', stop);
        try {
          await Promise.all(
            PREFIXES.map(async (prefix, i) => {
              try {
                for await (const batch of this.backend.watch(prefix, revs[i]!, ctl.signal)) {
                  for (const ev of batch.events) this.index.apply(ev.kv.key, ev.type === 'delete' ? undefined : ev.kv.value);
                }
                if (!ctl.signal.aborted) throw new Error(`watch of ${prefix} ended`);
              } finally {
                ctl.abort();
              }
            }),
          );
        } finally {
          signal.removeEventListener('abort', stop);
        }
      } catch (e) {
        if (signal.aborted) break;
        console.error('apiserver: following RBAC objects failed, retrying', e);
      } finally {
        this.following = false;
      }
      // Stopped (the watch ended because the signal aborted): done. Otherwise retry after a second; the
      // timer is unref'd, so an abort here would leave close() awaiting a promise nothing keeps alive.
      if (signal.aborted) break;
      await new Promise((r) => setTimeout(r, 1000).unref());
    }
  }

  async authorize(attrs: RequestAttributes): Promise<AuthorizationResult> {
    await this.fresh();
    const missing: string[] = [];
    for (const b of this.index.bindingsFor(attrs.user, attrs.namespace)) {
      this.stats.bindingsVisited++;
      const rules = this.index.roleRules(b.roleRef, b.namespace);
      if (!rules) {
        missing.push(missingRoleError(b.roleRef));
        continue;
      }
      if (rules.some((r) => ruleAllows(attrs, r))) return { decision: 'allow' };
    }
    // kube's RBAC says why only when a binding named a role it could not find.
    return { decision: 'noOpinion', ...(missing.length ? { reason: `RBAC: ${aggregate(missing)}` } : {}) };
  }

  /** RulesFor: every rule the user holds in `namespace` (cluster-wide ones included). */
  async rulesFor(user: UserInfo, namespace: string): Promise<{ rules: PolicyRule[]; incomplete: boolean; evaluationError?: string }> {
    await this.fresh();
    const rules: PolicyRule[] = [];
    const missing: string[] = [];
    for (const b of this.index.bindingsFor(user, namespace || undefined)) {
      const r = this.index.roleRules(b.roleRef, b.namespace);
      if (r) rules.push(...r);
      else missing.push(missingRoleError(b.roleRef));
    }
    return { rules, incomplete: missing.length > 0, ...(missing.length ? { evaluationError: aggregate(missing) } : {}) };
  }

  /**
   * GetRoleReferenceRules, as the binding storage's resolver reads it: the store's NotFound (404,
   * "roles.rbac.authorization.k8s.io \"x\" not found") for a role that does not exist.
   */
  async roleReferenceRules(ref: RoleRef, namespace: string | undefined): Promise<PolicyRule[]> {
    await this.fresh();
    const rules = this.index.roleRules(ref, namespace);
    if (rules) return rules;
    // Not in the view: maybe created a moment ago (the view lags by up to maxAgeMs). One read of the store.
    const key = ref.kind === 'Role' ? `${PREFIX}roles/${namespace}/${ref.name}` : `${PREFIX}clusterroles/${ref.name}`;
    const kv = ref.kind === 'Role' && !namespace ? undefined : await this.backend.get(key);
    if (!kv) throw errors.notFound(ref.kind === 'Role' ? 'roles' : 'clusterroles', 'rbac.authorization.k8s.io', ref.name);
    return rulesOf(kv.value);
  }
}

const views = new WeakMap<Backend, RbacAuthorizer>();

/** The RBAC view of a store in this process (one per Backend handle; the authorizer and admission share it). */
export function policyFor(backend: Backend): RbacAuthorizer {
  let v = views.get(backend);
  if (!v) views.set(backend, (v = new RbacAuthorizer(backend)));
  return v;
}
