// What a kind is: one KindStrategy per served kind, in lambdas/kinds/<group or core>/<kind>.ts, holding
// everything specific to that kind, as kube-apiserver's per-kind strategy.go does (pkg/registry/<group>/
// <kind>/strategy.go). The generic store (apiserver/registry.ts), the request pipeline (apiserver/app.ts),
// discovery and OpenAPI know no kind by name: they ask the kind's strategy, found through the one list in
// lambdas/kinds/index.ts. Every hook is optional; a kind that is only data needs `info` alone.
//
// What stays generic, and so is not here: decoding and wrong JSON types (schema.ts, from the OpenAPI
// schemas), ObjectMeta validation (machinery/validation.ts, with the kind's name rule), metadata.generation,
// finalizers and deletionTimestamp, optimistic concurrency, selectors' grammar, watch and paging.

import type { AuthorizationResult, RequestAttributes, RuleResolver, UserInfo } from '../apiserver/auth.ts';
import type { ServiceAllocator } from '../apiserver/service-alloc.ts';
import type { KindTable } from '../machinery/table.ts';
import type { SelectableFields } from '../machinery/selectors.ts';
import type { KubeObject } from '../machinery/types.ts';
import type { ErrorList, NameFn, ValidateOptions } from '../machinery/validation.ts';

/** The facts discovery, routing, storage keys and kubectl need about a kind. */
export interface ResourceInfo {
  group: string; // '' for the core group
  version: string;
  kind: string;
  listKind: string;
  /** The plural, lower-case resource name used in URLs ("pods"). */
  resource: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  verbs: string[];
  /** Subresources served under /{name}/{sub}. */
  subresources: string[];
}

const CRUD = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

/** A ResourceInfo with the usual defaults: listKind "<Kind>List", singular the lower-case kind, every verb. */
export function resourceInfo(
  group: string,
  version: string,
  kind: string,
  resource: string,
  namespaced: boolean,
  extra: Partial<Pick<ResourceInfo, 'shortNames' | 'categories' | 'verbs' | 'subresources'>> = {},
): ResourceInfo {
  return {
    group,
    version,
    kind,
    listKind: `${kind}List`,
    resource,
    singular: kind.toLowerCase(),
    namespaced,
    shortNames: extra.shortNames ?? [],
    categories: extra.categories ?? [],
    verbs: extra.verbs ?? CRUD,
    subresources: extra.subresources ?? [],
  };
}

/** "v1" for the core group, "group/version" otherwise. */
export function apiVersionOf(r: Pick<ResourceInfo, 'group' | 'version'>): string {
  return r.group ? `${r.group}/${r.version}` : r.version;
}

type Obj = Record<string, any>;

/** What the generic store lends a kind's storage hooks (kube's REST storage wrappers). */
export interface StoreContext {
  /** ClusterIPs and node ports (service-alloc.ts). */
  services: ServiceAllocator;
}

/** What a kind whose create is computed rather than stored (TokenReview) may ask of the server. */
export interface CreateContext {
  /** The user a bearer token stands for; undefined when it is not valid. */
  authenticate(token: string): Promise<UserInfo | undefined>;
  /** Who is asking (SelfSubjectReview answers with it; SelfSubjectAccessReview asks about them). */
  user: UserInfo;
  /** The server's authorizer (SubjectAccessReview and friends ask it). */
  authorize(attrs: RequestAttributes): Promise<AuthorizationResult>;
  /** What a user may do in a namespace (SelfSubjectRulesReview); undefined when no authorizer resolves rules. */
  rules?: RuleResolver;
  /** The namespace of the request's path, for a namespaced kind (LocalSubjectAccessReview). */
  namespace?: string;
}

/** The autoscaling/v1 Scale of a kind with a scale subresource. */
export interface ScaleRules {
  /** The object as a Scale. */
  toScale(obj: KubeObject): Obj;
  /** Sets the desired replicas on the object (validated by the caller: a whole number >= 0). */
  setReplicas(obj: KubeObject, replicas: number): void;
}

/** What only custom resources have (served from a CustomResourceDefinition: apiserver/crds.ts). */
export interface CustomResourceRules {
  /** Drops the fields the version's schema does not know (pruning) and returns their paths (fieldValidation). */
  prune(obj: Obj): string[];
  /** The OpenAPI v3 component schemas the kind publishes, by name: `kind` and `list` name its own two. */
  schemas: { kind: string; list: string; all: Record<string, Obj> };
  /** Its CRD is being deleted: creates are refused (405), as kube's crdHandler does. */
  terminating: boolean;
}

/** What a read-from-elsewhere kind may read: core objects (as the requester may not: the server does), and a node's usage. */
export interface ReadContext {
  get(resource: 'nodes' | 'pods', namespace: string | undefined, name: string): Promise<KubeObject>;
  list(resource: 'nodes' | 'pods', namespace: string | undefined, labelSelector: string | undefined): Promise<KubeObject[]>;
  nodeStats(node: KubeObject): Promise<import('../../node-agent/stats.ts').StatsSummary | undefined>;
}

/**
 * A version of a kind whose objects are stored as another served version of the same group and resource
 * (kube-apiserver's storage version and conversion: autoscaling/v1 HorizontalPodAutoscalers are stored as
 * autoscaling/v2). The generic store converts at its edges: what a request sends goes `toStorage` and is
 * then defaulted, validated, prepared and stored by the storage version's strategy (so its rules and field
 * paths apply, as kube validates the internal version); what it reads, writes back or watches comes
 * `fromStorage`. A patch applies to this version's form. Both must take any object (a malformed one, after
 * decoding, too) and not share structure with their input.
 */
export interface Conversion {
  /** The version objects are stored as (its strategy is found from it). */
  storage: ResourceInfo;
  toStorage(obj: Obj): Obj;
  fromStorage(obj: Obj): Obj;
}

export interface KindStrategy {
  info: ResourceInfo;

  /** Set when this version is served by converting to and from another one's storage (see Conversion). */
  conversion?: Conversion;

  /** Set for custom resources: pruning, their published schemas, their CRD's state. */
  custom?: CustomResourceRules;

  /**
   * ObjectMeta rules: how metadata.name is validated, and whether unqualified finalizers must be
   * Kubernetes' standard ones (core kinds). Without it, the generic store's: a path segment name.
   */
  meta?: { name: NameFn; kubeFinalizers: boolean };

  /** SetDefaults_<Kind>: fills what is missing, on every write; applying it twice changes nothing. */
  defaults?(obj: Obj): void;

  /** Validate: the whole object, on create and again on every update. */
  validate?(errs: ErrorList, obj: Obj): void;
  /** Checks only a create can fail. */
  validateCreate?(errs: ErrorList, obj: Obj): void;
  /** ValidateUpdate (and the status and other subresources' rules: see opts.subresource). */
  validateUpdate?(errs: ErrorList, obj: Obj, old: Obj, opts: ValidateOptions): void;

  /** PrepareForCreate: before defaulting, e.g. a status set by the client is dropped. */
  prepareForCreate?(obj: KubeObject): void;
  /**
   * PrepareForUpdate: before defaulting, what an update carries over from the stored object (the
   * stored status on a main-resource write). `subresource` is the one written, if any.
   */
  prepareForUpdate?(obj: KubeObject, old: KubeObject, subresource?: string): void;
  /**
   * A delete the kind refuses whatever the object holds, before it is read (kube's REST storage
   * overriding Delete: a system PriorityClass). Throws the refusal.
   */
  checkDelete?(name: string): void;
  /** When a delete marks the object deleted (deletionTimestamp set), before it is written. */
  prepareForDelete?(obj: KubeObject): void;
  /** True while the kind's own finalization holds a deleted object (a namespace's spec.finalizers). */
  finalizing?(obj: KubeObject): boolean;
  /** CheckGracefulDeletion: the grace period of a delete, in seconds (0: delete now). */
  gracePeriodSeconds?(obj: KubeObject, requested: number | undefined): number;
  /**
   * DefaultGarbageCollectionPolicy: what a delete naming no propagationPolicy (nor orphanDependents) does
   * to the object's dependents. Default Background; 'Orphan' for batch/v1 Jobs, as kube keeps their pods.
   */
  defaultPropagationPolicy?: 'Orphan' | 'Background';

  /**
   * TTLFunc: the kind's objects expire this long after each write (Backend's Expiry), from the cluster's
   * settings: Events last --event-ttl (1 h by default), as in kube-apiserver's event storage. Objects that
   * expire do not count against their namespace's object limit, since they leave without a delete.
   */
  ttlSeconds?(settings: { eventTtlSeconds: number }): number;

  /**
   * Storage hooks around the store's write (kube's BeginCreate, BeginUpdate, AfterDelete), for kinds
   * whose objects hold something outside themselves (a Service's clusterIP and node ports).
   */
  beginCreate?(ctx: StoreContext, obj: KubeObject, dryRun: boolean | undefined): Promise<(() => Promise<void>) | undefined>;
  beginUpdate?(
    ctx: StoreContext,
    obj: KubeObject,
    old: KubeObject,
    opts: { dryRun?: boolean; subresource?: string },
  ): Promise<{ commit(): Promise<void>; abort(): Promise<void> } | undefined>;
  afterDelete?(ctx: StoreContext, obj: KubeObject): Promise<void>;

  /** A kind that is never stored answers create itself (TokenReview). */
  create?(body: unknown, ctx: CreateContext): Promise<Obj>;

  /** A kind that is never stored and is read from elsewhere (metrics.k8s.io: from the nodes' agents). */
  read?: {
    get(ctx: ReadContext, namespace: string | undefined, name: string): Promise<Obj>;
    list(ctx: ReadContext, namespace: string | undefined, labelSelector: string | undefined): Promise<Obj[]>;
  };

  /** The scale subresource. */
  scale?: ScaleRules;

  /** Table columns and cells for kubectl get (printers.go). Without it: Name and Created At. */
  table?: KindTable;

  /** Fields the kind can be selected by (GetAttrs). Without it: metadata.name and metadata.namespace. */
  fieldSelectors?: SelectableFields;
}
