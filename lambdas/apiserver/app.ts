// The apiserver request pipeline, independent of transport:
//   parse path (requestInfo) → authenticate → authorize → decode body → admission → registry → encode.
// handler.ts puts it behind Lambda (Function URL / API Gateway v2 events); the local cluster serves the
// same Lambda handler over HTTPS.

import { nestedDeeperThan, tooDeepMessage } from '../machinery/nesting.ts';
import { parseYamlBody } from '../machinery/yaml-body.ts';
import type { Backend } from '../storage/backend.ts';
import { StorageError } from '../storage/backend.ts';
import { ApiError, errors, successStatus } from '../machinery/status.ts';
import { CONSOLE_PATH, serveConsole } from './console.ts';
import { apiVersionOf, findResource, type ResourceInfo } from '../machinery/resources.ts';
import { kindFor, kinds as builtInKinds, type KindRegistry } from '../kinds/index.ts';
import { CustomResourceServing } from './crds.ts';
import { strictDecodingError, unknownFieldWarnings } from '../apiextensions/index.ts';
import type { ReadContext, ScaleRules } from '../kinds/kind.ts';
import type { KubeObject } from '../machinery/types.ts';
import { isObject } from '../machinery/types.ts';
import { parseFieldSelector, parseLabelSelector } from '../machinery/selectors.ts';
import { toTable } from '../machinery/table.ts';
import { applyPatch } from '../machinery/patch.ts';
import { decodeProtobufObject, PROTOBUF_CONTENT_TYPE } from '../machinery/protobuf.ts';
import { pruneUnknownFields, typeErrors, unknownFields } from '../machinery/schema.ts';
import {
  aggregatedDiscovery,
  discoveryBody,
  apiGroup,
  apiGroupList,
  apiResourceList,
  coreApiVersions,
  negotiateDiscovery,
  versionInfo,
} from './discovery.ts';
import { openapiV3Response } from './openapi.ts';
import { decodeEviction, evictPod } from './eviction.ts';
import { openapiV2Response } from './openapi-v2.ts';
import {
  BOOTSTRAPPERS_GROUP,
  denyBootstrappers,
  forbiddenError,
  newToken,
  NODE_CREDENTIAL_PATH,
  nodeUser,
  privilegedGroupAuthorizer,
  storeToken,
  TokenAuthenticator,
  unionAuthorizer,
  type Authorizer,
  type RequestAttributes,
  type RuleResolver,
  type UserInfo,
} from './auth.ts';
import { dns1123SubdomainErrors } from '../machinery/validation.ts';
import { IamAuthenticator } from './iam-auth.ts';
import { admit, defaultAdmissionChain, withServiceAccountAdmission, type AdmissionPlugin } from './admission.ts';
import { parseRV, Registry, type DeleteOptions, type ListParams, type WatchEventOut } from './registry.ts';
import { jsonResponse, type ApiRequest, type ApiResponse } from './http.ts';
import { nodeProxy, nodeStats, podLogs } from './node-proxy.ts';
import { checkSummary, NODE_USAGE_SUBRESOURCE, type NodeUsageStore } from './node-usage.ts';
import { authorizingRegistry } from '../controllers/identity.ts';
import { createNodeAuthorizer, NodeGraph } from './node-authorizer.ts';
import { policyFor, RbacAuthorizer } from './rbac.ts';
import type { WebhookCaller } from './webhook-post.ts';
import { bootstrapClusterRoleBindings, bootstrapClusterRoles, ensureBootstrapPolicy } from './bootstrap-policy.ts';
import { impersonate } from './impersonation.ts';
import { auditAuthorization, auditUser, pathAttributes, type Auditor } from './audit.ts';
import { ApiMetrics, METRICS_PATH } from './metrics.ts';
import { meteredBackend, meteredHistory, namespaceOfPath, nodeOverhead, UsageMeter } from '../machinery/usage.ts';
import { COST_PATH, serveCost, type UsageSource } from './cost.ts';
import { ServiceAccountTokenAuthenticator, storeLookup, type ServiceAccountTokens } from './serviceaccount-tokens.ts';
import { createToken } from './tokenrequest.ts';
import { actingAs, HISTORY_GROUP, inWriteScope, recordingBackend, serveHistory, setRequestWriter, type HistoryOptions } from './history.ts';

export interface ApiServerOptions {
  /** Where cost per namespace is counted (usage.ts); shared by a second ApiServer over the same cluster. */
  usage?: UsageMeter;
  /** Deployed: where every instance's counts are kept and `skiff cost` reads them (storage/usage-store.ts). */
  usageStore?: UsageSource;
  backend: Backend;
  authorizer?: Authorizer;
  /** What the authorizer allows a user, for SelfSubjectRulesReview (RBAC's rule resolver). */
  ruleResolver?: RuleResolver;
  admission?: AdmissionPlugin[];
  /** How service-based admission webhooks are called when not directly (a deployed apiserver: webhook-post.ts). */
  webhookCaller?: WebhookCaller;
  /** Requests with larger bodies get 413 (Kubernetes' default limit is 3 MiB). */
  maxBodyBytes?: number;
  /** Upper bound on a watch's life; Lambda functions cannot stream longer than their timeout. */
  maxWatchSeconds?: number;
  /** How often an idle watch checks for progress (and sends a bookmark if asked). */
  watchProgressMs?: number;
  /**
   * A watch that has sent nothing for this long sends a bare newline. Off by default (kube-apiserver
   * sends none). A deployed apiserver sits behind CloudFront, which ends a response after its origin
   * read timeout without a byte; JSON watch decoders (kubectl's, client-node's, the agent's) skip
   * whitespace between events, so a quiet `kubectl get -w` stays open.
   */
  watchKeepAliveMs?: number;
  /** The bearer token this apiserver presents to node agents (pods/log); see node-proxy.ts. */
  nodeClientToken?: string;
  /** Deployed: the nodes' usage, reported on demand (node-usage.ts); locally the agents are asked directly. */
  nodeUsage?: NodeUsageStore;
  /** Where Service clusterIPs come from (kube-apiserver --service-cluster-ip-range); default 10.96.0.0/16. */
  serviceCIDR?: string;
  /** Node ports for NodePort Services, "first-last" (--service-node-port-range); default 30000-32767. */
  nodePortRange?: string;
  /** The guard against runaway writes: see RegistryOptions.maxObjectsPerNamespace (default 100,000; 0: off). */
  maxObjectsPerNamespace?: number;
  /** How long an Event lasts after its last write (--event-ttl): see RegistryOptions.eventTtlSeconds (default 1 h). */
  eventTtlSeconds?: number;
  /**
   * Sign-in with AWS IAM identities (iam-auth.ts): the id a token must be bound to (the cluster name), and a
   * test's STS endpoint (default: AWS's). Off when absent.
   */
  iam?: { clusterId: string; stsEndpoint?: string };
  /**
   * Authorize the control loops' identities against the bootstrap policy as shipped, not the store's RBAC
   * objects (the cloud controller manager and scheduler: no watch, so no per-batch re-list). Default false.
   */
  shippedPolicyForLoops?: boolean;
  /** How old this server's view of the CRDs may get before a request re-reads them (crds.ts; default 1000 ms). */
  crdMaxAgeMs?: number;
  /** The audit log (audit.ts): every request answered is an event under its policy. Default: none. */
  audit?: Auditor;
  /**
   * Service-account tokens (serviceaccount-tokens.ts): their keys, issuer and audiences. With it the server
   * answers serviceaccounts/token, authenticates those JWTs and serves OIDC discovery; without it, none.
   */
  serviceAccountTokens?: ServiceAccountTokens;
  /**
   * ServiceAccount admission (admission-serviceaccount.ts) in the chain: pods need their ServiceAccount and
   * get the token volume. On where the serviceaccounts loop runs (skiff up with its controllers, the cloud);
   * a server without that loop would refuse every pod of a new namespace, as kube-apiserver does.
   */
  serviceAccountAdmission?: boolean;
  /**
   * Object history (history.ts): each write of an object recorded with its writer, served read-only under
   * /apis/history.skiff.io/v1. Off when absent.
   */
  history?: HistoryOptions;
}

/** What the path says: Kubernetes' RequestInfo. */
export interface RequestInfo {
  resource: ResourceInfo;
  namespace?: string;
  name?: string;
  subresource?: string;
  /** nodes/{name}/proxy/{path}: the agent path asked for ("/metrics"). */
  proxyPath?: string;
  /** get, list, watch, create, update, patch, delete, deletecollection */
  verb: string;
}

const PUBLIC_PATHS = new Set(['/version', '/healthz', '/livez', '/readyz']);
/** Service-account issuer discovery (kube's routes.ServiceAccountIssuerDiscovery), non-resource URLs. */
const OIDC_CONFIGURATION_PATH = '/.well-known/openid-configuration';
const OIDC_JWKS_PATH = '/openid/v1/jwks';

export class ApiServer {
  readonly registry: Registry;
  private authn: TokenAuthenticator;
  private authz: Authorizer;
  private ruleResolver?: RuleResolver;
  private chain: AdmissionPlugin[];
  private maxBody: number;
  private maxWatchSeconds: number;
  private watchProgressMs: number;
  private watchKeepAliveMs?: number;
  private nodeClientToken?: string;
  private nodeUsage?: NodeUsageStore;
  private backend: Backend;
  /** This store's RBAC view (rbac.ts): the default authorizer's last word, and its rule resolver. */
  readonly rbac: RbacAuthorizer;
  private audit?: Auditor;
  /** Service-account token issuer and verifier, when configured. */
  readonly serviceAccountTokens?: ServiceAccountTokens;
  /** The custom resources of this server's store (crds.ts); `kinds` is what it serves. */
  readonly crds: CustomResourceServing;
  /** The pods bound to each node and their claims, for the Node authorizer (follow() it in a long-lived process). */
  readonly nodeGraph: NodeGraph;
  /** Request and storage metrics, served at /metrics (metrics.ts). */
  readonly metrics = new ApiMetrics();
  /** Cost per namespace (machinery/usage.ts): each request and its storage requests, charged to its namespace. */
  readonly usage: UsageMeter;
  private readonly usageStore?: UsageSource;
  /** Object history, when on (history.ts). */
  readonly history?: HistoryOptions;

  constructor(opts: ApiServerOptions) {
    // Every store call is timed for /metrics (metrics.ts).
    opts = { ...opts, backend: this.metrics.timed(opts.backend) };
    // ... and counted in DynamoDB's terms, charged to the namespace of the request or reconcile (usage.ts).
    this.usage = opts.usage ?? new UsageMeter();
    this.usageStore = opts.usageStore;
    opts = { ...opts, backend: meteredBackend(opts.backend, this.usage) };
    // Every write of an object is recorded with whoever made it (history.ts), after the write; counted too.
    if (opts.history) opts = { ...opts, history: { ...opts.history, store: meteredHistory(opts.history.store, this.usage) } };
    if (opts.history) opts = { ...opts, backend: recordingBackend(opts.backend, opts.history) };
    this.history = opts.history;
    this.crds = new CustomResourceServing(opts.backend, { maxAgeMs: opts.crdMaxAgeMs });
    this.registry = new Registry(opts.backend, {
      serviceCIDR: opts.serviceCIDR,
      nodePortRange: opts.nodePortRange,
      maxObjectsPerNamespace: opts.maxObjectsPerNamespace,
      eventTtlSeconds: opts.eventTtlSeconds,
    });
    // ResourceQuota admission: charged in the create's storage write, after the chain (admission-quota.ts).
    this.registry.quota = true;
    this.registry.webhookCaller = opts.webhookCaller;
    const accessEntries = findResource('iam.skiff.io', 'v1', 'accessentries')!;
    const iam = opts.iam && new IamAuthenticator({ ...opts.iam, listEntries: async () => (await this.registry.list(accessEntries, undefined)).items });
    this.serviceAccountTokens = opts.serviceAccountTokens;
    const serviceAccounts = opts.serviceAccountTokens ? new ServiceAccountTokenAuthenticator(opts.serviceAccountTokens, storeLookup(opts.backend)) : undefined;
    this.authn = new TokenAuthenticator(opts.backend, undefined, { iam, serviceAccounts });
    this.rbac = policyFor(opts.backend);
    // kube-apiserver's chain (--authorization-mode=Node,RBAC, after the privileged group): every request
    // is authorized; the loops in-process are authorized as their own identities (controllers/identity.ts).
    this.nodeGraph = new NodeGraph(this.registry);
    this.authz = denyBootstrappers(opts.authorizer ?? unionAuthorizer(privilegedGroupAuthorizer, createNodeAuthorizer(this.nodeGraph), this.rbac));
    this.ruleResolver = opts.ruleResolver ?? (opts.authorizer ? undefined : this.rbac);
    this.shippedPolicyForLoops = opts.shippedPolicyForLoops ?? false;
    this.backend = opts.backend;
    this.chain = opts.admission ?? (opts.serviceAccountAdmission ? withServiceAccountAdmission(defaultAdmissionChain) : defaultAdmissionChain);
    this.maxBody = opts.maxBodyBytes ?? 3 * 1024 * 1024;
    this.maxWatchSeconds = opts.maxWatchSeconds ?? 1800;
    this.watchProgressMs = opts.watchProgressMs ?? 5000;
    this.watchKeepAliveMs = opts.watchKeepAliveMs;
    this.nodeClientToken = opts.nodeClientToken;
    this.nodeUsage = opts.nodeUsage;
    this.audit = opts.audit;
    // Each request's audit events, counted to its namespace (usage.ts).
    if (this.audit) this.audit.onWritten ??= (bytes, events) => this.usage.audit(bytes, events);
  }

  /**
   * The context controllers run with: this server's store, and creation through its admission chain,
   * as the controller manager (its shared caches' reads); `as(user)` gives a loop its own identity,
   * every call authorized by this server's authorizer (controllers/identity.ts).
   */
  controllerContext(): import('../controllers/controller.ts').ControllerContext {
    const manager: UserInfo = { username: 'system:kube-controller-manager', groups: ['system:authenticated'] };
    const make = (user: UserInfo, registry: Registry): import('../controllers/controller.ts').ControllerContext => ({
      registry,
      usage: this.usage,
      create: async (res, namespace, obj) => {
        await admit(this.chain, { authorizer: this.authz, operation: 'CREATE', resource: res, namespace, object: obj, user }, this.registry);
        return registry.create(res, namespace, obj);
      },
      now: () => new Date(),
      // A loop asks once per stream batch or resync (stream.ts), and gets the store's CRDs as they are
      // now: one read, unless a watch keeps the view current (skiff up).
      kinds: async () => {
        if (!this.crds.isFollowing) await this.crds.refresh();
        return this.crds.kinds.all().map((k) => k.info);
      },
      onKindsChange: (listener) => this.crds.kinds.onChange(listener),
      // A loop's writes are recorded as its identity's in the objects' history (history.ts actingAs).
      as: (u) => make(u, actingAs(authorizingRegistry(this.registry, u, this.loopAuthorizer), u)),
    });
    return make(manager, actingAs(this.registry, manager));
  }

  /**
   * What the loops' calls are authorized by: this server's authorizer, once the bootstrap policy (their
   * system:controller:* roles) is in the store. `skiff up` and the cloud bootstrap write it at start;
   * a context made on a fresh store (tests, a deploy with bootstrap off) writes it on first use, once
   * per process (ensureBootstrapPolicy is idempotent: reads, and writes only what is missing).
   */
  private get loopAuthorizer(): Authorizer {
    if (this.shippedPolicyForLoops) {
      // A control-loop Lambda keeps no watch: re-listing RBAC per stream batch would cost the idle cluster
      // reads on every wake. Its loops are authorized against the bootstrap policy as shipped (the roles the
      // bootstrap writes to the store), read from nowhere; an edit of a system:controller role in the store
      // does not reach them (it does reach skiff up's loops, whose RBAC view a watch keeps).
      return (this.shippedLoopAuthz ??= unionAuthorizer(privilegedGroupAuthorizer, RbacAuthorizer.ofObjects([...bootstrapClusterRoles(), ...bootstrapClusterRoleBindings()] as never)));
    }
    return {
      authorize: async (attrs) => {
        await (this.policyReady ??= ensureBootstrapPolicy(this.registry).catch((e) => {
          this.policyReady = undefined;
          throw e;
        }));
        return this.authz.authorize(attrs);
      },
    };
  }
  private shippedLoopAuthz?: Authorizer;
  private policyReady?: Promise<void>;
  private shippedPolicyForLoops: boolean;

  async handle(req: ApiRequest): Promise<ApiResponse> {
    // Charged to the path's namespace, or once the user is known to a node's overhead (route()).
    return this.usage.request(namespaceOfPath(req.path), req.headers['x-amz-cf-id'] !== undefined, () => this.handleCharged(req));
  }

  private async handleCharged(req: ApiRequest): Promise<ApiResponse> {
    const t0 = performance.now();
    // Audited where requests are answered, so refusals (401, 403) and failures are events too.
    const res = await (this.audit ? this.audit.run(req, () => this.answer(req)) : this.answer(req));
    // Counted the same way (by what the path says, as kube's RequestInfo before authentication).
    const { ended } = this.metrics.request(pathAttributes(req, METRICS_USER), res.status, (performance.now() - t0) / 1000);
    if (ended && typeof res.body !== 'string' && !(res.body instanceof Uint8Array)) res.body = endsWith(res.body, ended);
    // Cost per namespace: the time a watch (or a followed log) stays open (usage.ts).
    if (typeof res.body !== 'string' && !(res.body instanceof Uint8Array)) res.body = this.usage.streamed(res.body, req.path.includes('/watch/') || ['true', '1'].includes(req.query.get('watch') ?? ''));
    return res;
  }

  private async answer(req: ApiRequest): Promise<ApiResponse> {
    try {
      // A scope for the request's writes: route() names their user for the objects' history (history.ts).
      return await inWriteScope(() => this.route(req));
    } catch (e) {
      return errorResponse(e);
    }
  }

  private async route(req: ApiRequest): Promise<ApiResponse> {
    const path = req.path.length > 1 ? req.path.replace(/\/+$/, '') : req.path;
    if (PUBLIC_PATHS.has(path)) {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw errors.methodNotAllowed();
      if (path === '/version') return jsonResponse(200, versionInfo());
      return { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'ok' };
    }
    // The web console's files (console.ts): public, as the page signs in with a token of its own.
    if (path === CONSOLE_PATH || path.startsWith(CONSOLE_PATH + '/')) return serveConsole(req, req.path);
    const authenticated = await this.authn.authenticate(req.headers['authorization']);
    // A node's heartbeats and polls are overhead, not the cluster's nor kube-node-lease's (usage.ts).
    this.usage.settle(nodeOverhead(authenticated.groups, namespaceOfPath(req.path), path));
    auditUser(authenticated);
    // kube's WithImpersonation: Impersonate-* headers make the request act as someone else, if allowed.
    const user = await impersonate(req.headers, authenticated, this.authz, path);
    auditUser(authenticated, user);
    if (path === NODE_CREDENTIAL_PATH) return this.nodeCredential(req, user);
    if (path.startsWith(COST_PATH)) {
      const nodes = async () => (await this.registry.list(findResource('', 'v1', 'nodes')!, undefined)).items.length;
      return serveCost(req, path, this.usage, (a) => this.authorize(user, a), (ns) => this.registry.get(findResource('', 'v1', 'namespaces')!, undefined, ns), this.usageStore, nodes);
    }
    if (path === OIDC_CONFIGURATION_PATH || path === OIDC_JWKS_PATH) return this.oidcDiscovery(req, user, path);
    const segs = path.split('/').filter(Boolean);

    // Discovery and OpenAPI: read-only documents.
    if (segs[0] === 'openapi' || (segs[0] === 'api' && segs.length <= 2) || (segs[0] === 'apis' && segs.length <= 3)) {
      if (req.method !== 'GET') throw errors.methodNotAllowed();
      await this.crds.fresh();
      await this.authorize(user, { verb: 'get', resourceRequest: false, path });
      try {
        return this.discovery(segs, req);
      } catch (e) {
        // A group or version this server does not know yet may be a CRD Established a moment ago.
        if (!(e instanceof ApiError && e.code === 404)) throw e;
        await this.crds.unknown();
        return this.discovery(segs, req);
      }
    }

    // Object history: read-only, authorized as a `get` of the object itself (history.ts).
    if (segs[0] === 'apis' && segs[1] === HISTORY_GROUP && segs.length > 3) {
      return serveHistory(req, segs.slice(2), {
        store: this.history?.store,
        kinds: () => this.kinds,
        refreshKinds: () => this.crds.unknown(),
        authorize: (a) => this.authorize(user, a),
      });
    }

    let group: string;
    let version: string;
    let rest: string[];
    if (segs[0] === 'api') {
      group = '';
      version = segs[1]!;
      rest = segs.slice(2);
    } else if (segs[0] === 'apis') {
      group = segs[1]!;
      version = segs[2]!;
      rest = segs.slice(3);
    } else if (path === METRICS_PATH) {
      // kube's rule: `get` on the non-resource URL (system:monitoring has it).
      await this.authorize(user, { verb: req.method.toLowerCase(), resourceRequest: false, path });
      if (req.method !== 'GET') throw errors.methodNotAllowed();
      const { contentType, body } = await this.metrics.text();
      return { status: 200, headers: { 'content-type': contentType }, body };
    } else {
      // Any other path is a non-resource URL: authorized before it is found (or not), as kube does.
      await this.authorize(user, { verb: req.method.toLowerCase(), resourceRequest: false, path });
      throw errors.pageNotFound();
    }
    // A built-in kind needs no view of the CRDs; anything else is read with a fresh one (crds.ts), so a
    // request for a Pod or a node's Lease (most of an idle cluster's requests) never reads the CRDs.
    let info: RequestInfo | undefined;
    try {
      info = requestInfo(req, group, version, rest, builtInKinds);
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 404)) throw e;
    }
    if (!info) {
      await this.crds.fresh();
      try {
        info = requestInfo(req, group, version, rest, this.kinds);
      } catch (e) {
        // An unknown resource may be a custom resource whose CRD this server has not seen yet.
        if (!(e instanceof ApiError && e.code === 404)) throw e;
        await this.crds.unknown();
        info = requestInfo(req, group, version, rest, this.kinds);
      }
    }
    setRequestWriter(user, authenticated, info.verb, info.subresource);
    await this.authorize(user, {
      verb: info.verb,
      resourceRequest: true,
      path,
      version,
      namespace: info.namespace,
      group,
      resource: info.resource.resource,
      subresource: info.subresource,
      name: info.name,
      fieldSelector: req.query.get('fieldSelector') ?? undefined,
      labelSelector: req.query.get('labelSelector') ?? undefined,
    });
    if (req.body.length > this.maxBody) throw errors.tooLarge(this.maxBody);
    return this.serveResource(req, info, user);
  }

  /** Asks the authorizer; anything but allow is kube's 403 (forbiddenMessage). */
  private async authorize(user: UserInfo, a: Omit<RequestAttributes, 'user'>) {
    const attrs = { user, ...a };
    const d = await this.authz.authorize(attrs);
    auditAuthorization(attrs, d);
    if (d.decision !== 'allow') throw forbiddenError(attrs, d.reason);
  }

  /** The authorizer this server asks (SubjectAccessReview and friends ask it too). */
  get authorizer(): Authorizer {
    return this.authz;
  }

  // ---- discovery ----

  /** The kinds this server serves: the built-in ones and the custom resources of its store. */
  get kinds(): KindRegistry {
    return this.crds.kinds;
  }

  private discovery(segs: string[], req: ApiRequest): ApiResponse {
    const accept = req.headers['accept'] ?? '';
    const reg = this.kinds;
    if (segs[0] === 'openapi') {
      if (segs[1] === 'v2' && segs.length === 2) return openapiV2Response(req.headers, reg);
      const res = segs[1] === 'v3' ? openapiV3Response(segs.slice(2).join('/'), req.query, req.headers, reg) : undefined;
      if (res) return res;
      throw errors.pageNotFound();
    }
    if (segs.length === 1) {
      const which = segs[0] === 'api' ? 'api' : 'apis';
      const mode = negotiateDiscovery(accept);
      if (mode.kind !== 'legacy') {
        const format = mode.kind;
        return {
          status: 200,
          headers: { 'content-type': mode.contentType, vary: 'Accept' },
          body: discoveryBody(reg, `${which} ${format}`, () => aggregatedDiscovery(which, format, reg)),
        };
      }
      if (which === 'api') return jsonResponse(200, coreApiVersions(), { vary: 'Accept' });
      return { status: 200, headers: { 'content-type': 'application/json', vary: 'Accept' }, body: discoveryBody(reg, 'apis', () => apiGroupList(reg)) };
    }
    if (segs[0] === 'api') {
      if (segs[1] !== 'v1') throw errors.pageNotFound();
      return jsonResponse(200, apiResourceList('', 'v1', reg));
    }
    const g = apiGroup(segs[1]!, reg);
    if (!g) throw errors.pageNotFound();
    if (segs.length === 2) return jsonResponse(200, g);
    const list = apiResourceList(segs[1]!, segs[2]!, reg);
    if (!list) throw errors.pageNotFound();
    return jsonResponse(200, list);
  }

  // ---- resources ----

  /** What a kind read from elsewhere reads (metrics.k8s.io): nodes and pods as the server, and agents' usage. */
  private readContext(): ReadContext {
    const core = (r: 'nodes' | 'pods') => findResource('', 'v1', r)!;
    return {
      get: (r, ns, name) => this.registry.get(core(r), ns, name),
      list: async (r, ns, ls) => (await this.registry.list(core(r), ns, { labelSelector: ls ? parseLabelSelector(ls) : undefined })).items,
      nodeStats: (node) => (this.nodeUsage ? this.nodeUsage.stats(node) : nodeStats(node, this.nodeClientToken)),
    };
  }

  private async serveResource(req: ApiRequest, info: RequestInfo, user: UserInfo): Promise<ApiResponse> {
    const { resource: res, namespace: ns, name, subresource: sub } = info;
    const reg = this.registry;
    const dryRun = dryRunOf(req, info.verb);
    const warnings: string[] = [];
    switch (info.verb) {
      case 'get': {
        if (sub === 'scale') return jsonResponse(200, scaleOf(res).toScale(await reg.get(res, ns, name!)));
        if (sub === 'log') return podLogs(reg, req, ns!, name!, this.nodeClientToken);
        if (sub === 'proxy') return nodeProxy(reg, req, name!, info.proxyPath!, this.nodeClientToken);
        const read = kindFor(res).read;
        if (read) return jsonResponse(200, await read.get(this.readContext(), ns, name!));
        const obj = await reg.get(res, ns, name!);
        return this.render(req, res, obj);
      }
      case 'list': {
        const read = kindFor(res).read;
        if (read) {
          const items = await read.list(this.readContext(), ns, req.query.get('labelSelector') ?? undefined);
          return jsonResponse(200, { kind: res.listKind, apiVersion: apiVersionOf(res), metadata: {}, items });
        }
        const list = await reg.list(res, ns, listParams(req, res));
        return this.renderList(req, res, list);
      }
      case 'watch':
        return this.watch(req, res, ns, name);
      case 'create': {
        if (sub === 'binding') return jsonResponse(201, await this.bind(req, res, ns!, name!));
        if (sub === 'token') {
          if (!this.serviceAccountTokens) throw errors.pageNotFound();
          const body = parseBody(req);
          // NodeRestriction: a node asks only for tokens bound to its own pods.
          if (isObject(body)) await admit(this.chain, { authorizer: this.authz, operation: 'CREATE', resource: res, subresource: sub, namespace: ns, name, object: body as KubeObject, user, dryRun }, reg);
          const { object, warnings: w } = await createToken(reg, this.serviceAccountTokens, ns!, name!, body);
          return jsonResponse(201, object, warningHeader(w));
        }
        if (sub === 'eviction') {
          // The Eviction's DeleteOptions decode as a DELETE's body would; the answer is a Status (201, or 429/500).
          const ev = decodeEviction(parseBody(req), ns!, name!);
          await admit(this.chain, { authorizer: this.authz, operation: 'CREATE', resource: res, subresource: sub, namespace: ns, name, user }, reg);
          const status = await evictPod(reg, ns!, name!, { ...deleteOptionsFrom(ev.deleteOptions), dryRun: dryRun || ev.dryRun });
          return jsonResponse(status.code, status);
        }
        // A kind that is never stored (TokenReview) computes its answer.
        const computed = kindFor(res).create;
        if (computed) {
          // Decoded and type-checked as any body (kube decodes a review before its REST sees it).
          const body = checkFields(req, res, decodeBody(req, res), warnings);
          const ctx = { authenticate: (token: string) => this.userOf(token), user, authorize: (a: RequestAttributes) => this.authz.authorize(a), rules: this.ruleResolver, namespace: ns };
          return jsonResponse(201, await computed(body, ctx), warningHeader(warnings));
        }
        // kube's crdHandler: no new custom resources while their CRD is being deleted.
        if (kindFor(res).custom?.terminating) throw errors.methodNotAllowed('create is not allowed while custom resource definition is terminating');
        const obj = checkFields(req, res, decodeBody(req, res), warnings);
        if (res.namespaced && obj.metadata.namespace !== undefined && obj.metadata.namespace !== ns) {
          throw errors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
        }
        await admit(this.chain, { authorizer: this.authz, operation: 'CREATE', resource: res, namespace: ns, object: obj, user, dryRun, warnings }, reg);
        const created = await reg.create(res, ns, obj, { dryRun, owned: true });
        return jsonResponse(201, created, warningHeader(warnings));
      }
      case 'update': {
        if (sub === NODE_USAGE_SUBRESOURCE) {
          // Not a stored object: no admission, revision or history (the node authorizer allows a node its own only).
          if (!this.nodeUsage) throw errors.pageNotFound();
          await this.nodeUsage.put(name!, checkSummary(name!, parseBody(req)));
          return jsonResponse(200, successStatus({ name: name!, kind: 'nodes' }));
        }
        if (sub === 'scale') return jsonResponse(200, await this.updateScale(res, ns, name!, () => decodeScale(req)));
        const obj = checkFields(req, res, decodeBody(req, res), warnings);
        const status = sub === 'status' || sub === 'finalize' ? sub : undefined;
        const admitUpdate = this.admitInWrite('UPDATE', res, sub, ns, name!, user, warnings, dryRun);
        if (status === 'finalize') {
          // Namespace finalize: only spec.finalizers changes (the namespace controller's last step).
          const out = await reg.guaranteedUpdate(res, ns, name!, rvOf(obj), { dryRun, subresource: 'finalize', admit: admitUpdate, owned: true }, (cur) => ({
            ...cur,
            spec: { ...(cur.spec ?? {}), finalizers: obj.spec?.finalizers ?? [] },
          }));
          return jsonResponse(200, out);
        }
        const out = await reg.update(res, ns, name!, obj, { dryRun, subresource: status as 'status' | undefined, admit: admitUpdate, owned: true });
        return jsonResponse(200, out, warningHeader(warnings));
      }
      case 'patch': {
        const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
        const body = req.body.toString('utf8');
        if (kindFor(res).custom && ct.toLowerCase() === 'application/strategic-merge-patch+json') {
          // Custom resources have no patch strategies: kube's crdHandler accepts these three only.
          throw new ApiError(
            'UnsupportedMediaType',
            'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml',
          );
        }
        if (sub === 'scale') {
          return jsonResponse(200, await this.updateScale(res, ns, name!, (cur) => applyPatch(ct, res, cur as KubeObject, body) as any));
        }
        if (ct === 'application/apply-patch+yaml' && !sub) {
          // Server-side apply creates what does not exist yet.
          const existing = await reg.get(res, ns, name!).catch((e) => {
            if (e instanceof ApiError && e.code === 404) return undefined;
            throw e;
          });
          if (!existing) {
            const skeleton: KubeObject = { apiVersion: apiVersionOf(res), kind: res.kind, metadata: { name, ...(ns ? { namespace: ns } : {}) } };
            const obj = checkFields(req, res, applyPatch(ct, res, skeleton, body), warnings);
            await admit(this.chain, { authorizer: this.authz, operation: 'CREATE', resource: res, namespace: ns, object: obj, user, dryRun, warnings }, reg);
            return jsonResponse(201, await reg.create(res, ns, obj, { dryRun, owned: true }), warningHeader(warnings));
          }
        }
        // kube admits a patch as an UPDATE of the patched object, judged against the stored one: here
        // inside the write, on the object it read (no read of its own).
        const out = await reg.guaranteedUpdate(
          res,
          ns,
          name!,
          undefined,
          { dryRun, subresource: sub === 'status' ? 'status' : undefined, admit: this.admitInWrite('UPDATE', res, sub, ns, name!, user, warnings, dryRun), owned: true },
          (cur) => {
            warnings.length = 0;
            const patched = checkFields(req, res, applyPatch(ct, res, cur, body), warnings);
            if (patched.metadata?.resourceVersion !== undefined && patched.metadata.resourceVersion !== cur.metadata.resourceVersion) {
              throw errors.staleResourceVersion(res.resource, res.group, name!);
            }
            // The main resource keeps the stored status of kinds with a status subresource: their
            // strategy's prepareForUpdate puts it back.
            if (sub === 'status') return { ...cur, status: patched.status };
            return patched;
          },
        );
        return jsonResponse(200, out, warningHeader(warnings));
      }
      case 'delete': {
        const opts = deleteOptions(req);
        // Gone now or pending (finalizers, graceful pod deletion): 200 with the object either way.
        const admitDelete = this.admitInWrite('DELETE', res, sub, ns, name!, user, warnings, dryRun);
        const { object } = await reg.delete(res, ns, name!, { ...opts, dryRun, admit: (stored) => admitDelete(undefined, stored) });
        return jsonResponse(200, object, warningHeader(warnings));
      }
      case 'deletecollection': {
        const opts = deleteOptions(req);
        const list = await reg.deleteCollection(res, ns, listParams(req, res), { ...opts, dryRun });
        return jsonResponse(200, list);
      }
    }
    throw errors.methodNotAllowed();
  }

  /**
   * Admission of an UPDATE or DELETE, run by the write itself on the object it read (Registry's
   * WriteOptions.admit): plugins see the stored object as oldObject and, for an update, the object to be
   * written (which they may change), with no read of their own and no window between judging and writing.
   * A write retried on a conflict is admitted again, on what it then read.
   */
  private admitInWrite(operation: 'UPDATE' | 'DELETE', res: ResourceInfo, sub: string | undefined, ns: string | undefined, name: string, user: UserInfo, warnings?: string[], dryRun?: boolean) {
    return (next: KubeObject | undefined, stored: KubeObject) =>
      admit(this.chain, { authorizer: this.authz, operation, resource: res, subresource: sub, namespace: ns, name, object: next, oldObject: stored, user, warnings, dryRun }, this.registry);
  }

  /**
   * A node's own credential, for the holder of a bootstrap token (or an admin): a new token for
   * system:node:<nodeName>, stored hashed like every token. Asking again mints another; the old one stays
   * valid (a rebooted node that lost its data dir must still be able to join).
   */
  private async nodeCredential(req: ApiRequest, user: UserInfo): Promise<ApiResponse> {
    if (req.method !== 'POST') throw errors.methodNotAllowed();
    if (!user.groups.includes(BOOTSTRAPPERS_GROUP) && !user.groups.includes('system:masters')) {
      throw errors.forbidden(`User "${user.username}" cannot request a node credential: only bootstrap tokens and cluster admins may`);
    }
    if (req.body.length > 4096) throw errors.tooLarge(4096);
    const body = parseBody(req);
    const nodeName = isObject(body) ? body.nodeName : undefined;
    const problems = typeof nodeName === 'string' ? dns1123SubdomainErrors(nodeName) : ['Required value'];
    if (problems.length) {
      throw errors.invalid('NodeCredential', 'skiff.io', typeof nodeName === 'string' ? nodeName : '', [
        { reason: 'FieldValueInvalid', field: 'nodeName', message: problems.join('; ') },
      ]);
    }
    const token = newToken();
    await storeToken(this.backend, token, nodeUser(nodeName as string));
    return jsonResponse(201, { nodeName, token });
  }

  /**
   * GET /.well-known/openid-configuration and /openid/v1/jwks, authorized as non-resource URLs (RBAC's
   * system:service-account-issuer-discovery role grants them), with kube's content types and caching.
   * Costs no storage read (the keys are cached; see serviceaccount-tokens.ts).
   */
  private async oidcDiscovery(req: ApiRequest, user: UserInfo, path: string): Promise<ApiResponse> {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw errors.methodNotAllowed();
    await this.authorize(user, { verb: 'get', resourceRequest: false, path });
    const tokens = this.serviceAccountTokens;
    if (!tokens) throw errors.pageNotFound();
    const body = path === OIDC_JWKS_PATH ? await tokens.jwks() : tokens.openidConfiguration();
    return {
      status: 200,
      headers: { 'content-type': path === OIDC_JWKS_PATH ? 'application/jwk-set+json' : 'application/json', 'cache-control': 'public, max-age=3600' },
      body: JSON.stringify(body),
    };
  }

  /** The user a bearer token stands for, or undefined when it is not valid (for TokenReview). */
  private async userOf(token: string): Promise<UserInfo | undefined> {
    return this.authn.authenticate(`Bearer ${token}`).catch((e) => {
      if (e instanceof ApiError && e.code === 401) return undefined;
      throw e;
    });
  }

  /** pods/binding: assigns a pod to a node, once (the scheduler's only write to pods). */
  private async bind(req: ApiRequest, res: ResourceInfo, ns: string, name: string): Promise<unknown> {
    const body = parseBody(req);
    const target = isObject(body) && isObject(body.target) ? body.target : undefined;
    if (!target || typeof target.name !== 'string' || !target.name) {
      throw errors.invalid('Binding', '', name, [{ reason: 'FieldValueRequired', field: 'target.name', message: 'Required value' }]);
    }
    await this.registry.guaranteedUpdate(res, ns, name, undefined, { subresource: 'binding', owned: true }, (pod) => {
      if (pod.metadata.deletionTimestamp) throw errors.conflict(res.resource, '', name, 'pod is being deleted, cannot be assigned to a host');
      if (pod.spec?.nodeName) {
        throw errors.conflict(res.resource, '', name, `pod ${name} is already assigned to node "${pod.spec.nodeName}"`);
      }
      const uid = isObject(body) && isObject(body.metadata) ? body.metadata.uid : undefined;
      if (uid && uid !== pod.metadata.uid) throw errors.conflict(res.resource, '', name, 'the UID in the binding does not match the pod');
      pod.spec.nodeName = target.name;
      const conds: any[] = (pod.status?.conditions ?? []).filter((c: any) => c.type !== 'PodScheduled');
      conds.push({ type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') });
      pod.status = { ...(pod.status ?? {}), conditions: conds };
      return pod;
    });
    return { ...successStatus(), code: 201 };
  }

  private async updateScale(res: ResourceInfo, ns: string | undefined, name: string, next: (cur: unknown) => any): Promise<unknown> {
    const rules = scaleOf(res);
    const out = await this.registry.guaranteedUpdate(res, ns, name, undefined, {}, (obj) => {
      const scale = next(rules.toScale(obj));
      // The Scale body decodes into autoscaling/v1 Scale first: replicas 1e308 or "3" is a 400 there.
      const undecodable = typeErrors(SCALE, scale);
      if (undecodable.length) throw errors.badRequest(`Scale in version "v1" cannot be handled as a Scale: ${undecodable[0]}`);
      const replicas = scale?.spec?.replicas ?? 0;
      if (!Number.isInteger(replicas) || replicas < 0) {
        throw errors.invalid('Scale', 'autoscaling', name, [
          { reason: 'FieldValueInvalid', field: 'spec.replicas', message: `Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0` },
        ]);
      }
      const rv = scale?.metadata?.resourceVersion;
      if (rv && rv !== obj.metadata.resourceVersion) throw errors.staleResourceVersion(res.resource, res.group, name);
      rules.setReplicas(obj, replicas);
      return obj;
    });
    return rules.toScale(out);
  }

  private async watch(req: ApiRequest, res: ResourceInfo, ns: string | undefined, name: string | undefined): Promise<ApiResponse> {
    const p = listParams(req, res);
    // A watch on one name (kubectl get pod x -w, or /watch/.../name) is a field selector on the name.
    if (name) p.fieldSelector = parseFieldSelector(`metadata.name=${name}`, kindFor(res));
    // Checked before the headers go out: once the stream has begun, a bad version could only end it.
    parseRV(req.query.get('resourceVersion') ?? undefined);
    const timeoutParam = req.query.get('timeoutSeconds');
    // 0, as unset, is the server's choice (kube-apiserver's too).
    const timeout = Math.min(timeoutParam && /^\d+$/.test(timeoutParam) && Number(timeoutParam) > 0 ? Number(timeoutParam) : this.maxWatchSeconds, this.maxWatchSeconds);
    const asTable = wantsTable(req.headers['accept']);
    const includeObject = (req.query.get('includeObject') as 'None' | 'Metadata' | 'Object' | null) ?? 'Metadata';
    const ctl = new AbortController();
    const stop = () => ctl.abort();
    req.signal?.addEventListener('abort', stop, { once: true });
    const timer = setTimeout(stop, timeout * 1000);
    const events = this.registry.watch(
      res,
      ns,
      {
        labelSelector: p.labelSelector,
        fieldSelector: p.fieldSelector,
        resourceVersion: req.query.get('resourceVersion') ?? undefined,
        allowBookmarks: req.query.get('allowWatchBookmarks') === 'true',
        progressIntervalMs: this.watchProgressMs,
        // drain=true (Skiff's, not kube's; kube-apiserver ignores it and holds the watch its timeout): end
        // the watch as soon as it has caught up (a server may end a watch at any time; the client watches
        // again from its last resourceVersion). How deployed agents ask what changed since their last look
        // without holding a Lambda function open.
        drain: req.query.get('drain') === 'true',
      },
      ctl.signal,
    );
    // Headers go out at once (clients wait for them before creating what they watch); problems found
    // later, such as a compacted resourceVersion, arrive as an ERROR event, as from kube-apiserver.
    const keepAliveMs = this.watchKeepAliveMs;
    let keepAliveTimer: NodeJS.Timeout | undefined;
    const quiet = Symbol('quiet');
    const nextOrQuiet = (p: Promise<IteratorResult<WatchEventOut>>) =>
      keepAliveMs ? Promise.race([p, new Promise<typeof quiet>((ok) => (keepAliveTimer = setTimeout(() => ok(quiet), keepAliveMs)))]) : p;
    const body = (async function* () {
      try {
        let pending = events.next();
        for (;;) {
          const r = await nextOrQuiet(pending);
          clearTimeout(keepAliveTimer);
          if (r === quiet) {
            yield '\n';
            continue;
          }
          if (r.done) break;
          yield encodeEvent(r.value, res, asTable, includeObject) + '\n';
          if (ctl.signal.aborted) break;
          pending = events.next();
        }
      } finally {
        clearTimeout(keepAliveTimer);
        clearTimeout(timer);
        req.signal?.removeEventListener('abort', stop);
        ctl.abort();
        await events.return(undefined);
      }
    })();
    return { status: 200, headers: { 'content-type': 'application/json', 'cache-control': 'no-cache, private' }, body };
  }

  private render(req: ApiRequest, res: ResourceInfo, obj: KubeObject): ApiResponse {
    if (wantsTable(req.headers['accept'])) {
      return jsonResponse(200, toTable(kindFor(res), [obj], { includeObject: includeObjectParam(req) }));
    }
    return jsonResponse(200, obj);
  }

  private renderList(req: ApiRequest, res: ResourceInfo, list: import('../machinery/types.ts').KubeList): ApiResponse {
    if (wantsTable(req.headers['accept'])) {
      // Table rows carry their object with apiVersion/kind, as Kubernetes sends them.
      const items = list.items.map((it) => ({ apiVersion: apiVersionOf(res), kind: res.kind, ...it }) as KubeObject);
      return jsonResponse(200, toTable(kindFor(res), items, { includeObject: includeObjectParam(req), listMeta: list.metadata }));
    }
    return jsonResponse(200, list);
  }
}

// ---- request parsing ----

function requestInfo(req: ApiRequest, group: string, version: string, rest: string[], kinds: KindRegistry): RequestInfo {
  let watchPath = false;
  if (rest[0] === 'watch') {
    watchPath = true;
    rest = rest.slice(1);
  }
  let namespace: string | undefined;
  let resourceName: string | undefined;
  let name: string | undefined;
  let subresource: string | undefined;
  // /namespaces/{ns}/{resource}/... is a namespaced path, except /namespaces/{name}/{status|finalize}.
  if (rest[0] === 'namespaces' && rest.length >= 3 && !(rest.length === 3 && (rest[2] === 'status' || rest[2] === 'finalize') && group === '')) {
    namespace = rest[1];
    [resourceName, name, subresource] = rest.slice(2);
    if (rest.length > 5) throw errors.pageNotFound();
  } else {
    [resourceName, name, subresource] = rest;
    // nodes/{name}/proxy/{path...}: the path goes to the node's agent (node-proxy.ts nodeProxy).
    if (rest.length > 3 && !(group === '' && resourceName === 'nodes' && subresource === 'proxy')) throw errors.pageNotFound();
  }
  const proxyPath = subresource === 'proxy' ? `/${rest.slice(3).join('/')}` : undefined;
  if (!resourceName) throw errors.pageNotFound();
  const res = kinds.forResource(group, version, resourceName)?.info;
  if (!res) throw errors.pageNotFound();
  if (res.namespaced && namespace === undefined && name !== undefined) throw errors.pageNotFound();
  if (!res.namespaced && namespace !== undefined) throw errors.pageNotFound();
  // nodes/usage: Skiff's own, agents' usage reports (node-usage.ts); not in discovery, PUT only.
  const nodeUsage = subresource === NODE_USAGE_SUBRESOURCE && group === '' && res.resource === 'nodes';
  if (subresource && !res.subresources.includes(subresource) && !nodeUsage) throw errors.pageNotFound();
  if (nodeUsage && req.method !== 'PUT') throw errors.methodNotAllowed();
  const m = req.method;
  let verb: string;
  const isWatch = watchPath || req.query.get('watch') === 'true' || req.query.get('watch') === '1';
  if (name === undefined) {
    if (m === 'GET') verb = isWatch ? 'watch' : 'list';
    else if (m === 'POST') verb = 'create';
    else if (m === 'DELETE') verb = 'deletecollection';
    else throw errors.methodNotAllowed();
  } else if (subresource === 'proxy') {
    if (m !== 'GET') throw errors.methodNotAllowed(); // kube proxies every method; Skiff's agents serve reads only
    verb = 'get';
  } else if (subresource === 'binding' || subresource === 'eviction' || subresource === 'token') {
    if (m !== 'POST') throw errors.methodNotAllowed();
    verb = 'create';
  } else {
    if (m === 'GET') verb = isWatch ? 'watch' : 'get';
    else if (m === 'PUT') verb = 'update';
    else if (m === 'PATCH') verb = 'patch';
    else if (m === 'DELETE' && !subresource) verb = 'delete';
    else throw errors.methodNotAllowed();
  }
  if (!res.verbs.includes(verb) && !subresource) throw errors.methodNotAllowed();
  if (verb === 'watch' && subresource) throw errors.methodNotAllowed();
  return { resource: res, namespace, name, subresource, verb, ...(proxyPath !== undefined ? { proxyPath } : {}) };
}

function parseBody(req: ApiRequest): unknown {
  const body = decodeBodyText(req);
  if (nestedDeeperThan(body)) throw errors.badRequest(`couldn't get version/kind; json parse error: ${tooDeepMessage}`);
  return body;
}

function decodeBodyText(req: ApiRequest): unknown {
  const ct = (req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase();
  // kubectl's typed commands (create namespace/configmap/secret/serviceaccount/service, debug, drain) send protobuf.
  if (ct === PROTOBUF_CONTENT_TYPE) return decodeProtobufObject(req.body);
  const text = req.body.toString('utf8');
  if (!text.trim()) throw errors.badRequest('the request body is empty; an object is required');
  if (ct === 'application/json' || ct === '' || ct === '*/*') {
    try {
      return JSON.parse(text);
    } catch (e) {
      throw errors.badRequest(`couldn't get version/kind; json parse error: ${(e as Error).message}`);
    }
  }
  if (ct === 'application/yaml' || ct === 'application/x-yaml' || ct === 'text/yaml') {
    try {
      return parseYamlBody(text);
    } catch (e) {
      throw errors.badRequest(`error converting YAML to JSON: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw errors.unsupportedMediaType(ct);
}

/** Decodes a write body and checks it is the kind this path serves. */
function decodeBody(req: ApiRequest, res: ResourceInfo): KubeObject {
  const body = parseBody(req);
  if (!isObject(body)) throw errors.badRequest('the request body must be a JSON object');
  const want = apiVersionOf(res);
  // Like kube-apiserver's decoder, the path supplies a missing apiVersion/kind (client libraries omit them).
  if (body.kind === undefined || body.kind === '') body.kind = res.kind;
  if (body.apiVersion === undefined || body.apiVersion === '') body.apiVersion = want;
  if (body.apiVersion !== want) {
    throw errors.badRequest(`the API version in the data (${body.apiVersion}) does not match the expected API version (${want})`);
  }
  if (body.kind !== res.kind) {
    throw errors.badRequest(`the kind in the data (${String(body.kind)}) does not match the expected kind (${res.kind}) for resource ${res.resource}`);
  }
  if (body.metadata === undefined) body.metadata = {};
  if (!isObject(body.metadata)) throw errors.badRequest('metadata must be an object');
  return body as KubeObject;
}

/**
 * Decoding checks: values of the wrong JSON type are a 400, as Go's decoder makes them. Then server-side
 * field validation (the fieldValidation parameter): fields the kind's schema does not know
 * are an error with Strict, a warning with Warn (Kubernetes' default), and dropped silently with Ignore.
 * They are never stored.
 */
function checkFields(req: ApiRequest, res: ResourceInfo, obj: KubeObject, warnings: string[]): KubeObject {
  const mode = req.query.get('fieldValidation') ?? 'Warn';
  if (mode !== 'Strict' && mode !== 'Warn' && mode !== 'Ignore') {
    throw errors.badRequest(`fieldValidation parameter unsupported: ${mode}`);
  }
  // Custom resources: pruning by the CRD's structural schema (kube's decoder for CRs).
  const custom = kindFor(res).custom;
  if (custom) {
    const pruned = custom.prune(obj);
    if (pruned.length && mode === 'Strict') throw strictDecodingError(res.kind, res.version, pruned);
    if (pruned.length && mode === 'Warn') warnings.push(...unknownFieldWarnings(pruned));
    return obj;
  }
  const wrongType = typeErrors(res, obj);
  if (wrongType.length) {
    throw errors.badRequest(`${res.kind} in version "${res.version}" cannot be handled as a ${res.kind}: ${wrongType[0]}`);
  }
  const unknown = unknownFields(res, obj);
  if (!unknown.length) return obj;
  if (mode === 'Strict') {
    throw errors.badRequest(
      `${res.kind} in version "${res.version}" cannot be handled as a ${res.kind}: strict decoding error: ${unknown.map((f) => `unknown field "${f}"`).join(', ')}`,
    );
  }
  if (mode === 'Warn') warnings.push(...unknown.map((f) => `unknown field "${f}"`));
  return pruneUnknownFields(res, obj);
}

/** Warnings travel in the standard Warning header (code 299), which kubectl prints. */
function warningHeader(warnings: string[]): Record<string, string> {
  if (!warnings.length) return {};
  return { warning: warnings.map((w) => `299 - ${JSON.stringify(w)}`).join(', ') };
}

function rvOf(obj: KubeObject): number | undefined {
  const rv = obj.metadata?.resourceVersion;
  return rv && /^\d+$/.test(rv) ? Number(rv) : undefined;
}

function listParams(req: ApiRequest, res: ResourceInfo): ListParams {
  const q = req.query;
  const limit = q.get('limit');
  if (limit !== null && !/^\d+$/.test(limit)) throw errors.badRequest(`invalid limit: ${JSON.stringify(limit)}`);
  const ls = q.get('labelSelector');
  const fs = q.get('fieldSelector');
  return {
    labelSelector: ls ? parseLabelSelector(ls) : undefined,
    fieldSelector: fs ? parseFieldSelector(fs, kindFor(res)) : undefined,
    limit: limit ? Number(limit) : undefined,
    continue: q.get('continue') ?? undefined,
    resourceVersion: q.get('resourceVersion') ?? undefined,
  };
}

function deleteOptions(req: ApiRequest): DeleteOptions {
  let body: Record<string, any> = {};
  if (req.body.length && req.body.toString('utf8').trim()) {
    const b = parseBody(req);
    if (!isObject(b)) throw errors.badRequest('DeleteOptions must be an object');
    body = b;
  }
  return deleteOptionsFrom(body, req.query);
}

/** DeleteOptions from a body (a DELETE's, or an Eviction's deleteOptions) and the query's parameters. */
function deleteOptionsFrom(body: Record<string, any>, q = new URLSearchParams()): DeleteOptions {
  const grace = q.get('gracePeriodSeconds') ?? body.gracePeriodSeconds;
  let policy = q.get('propagationPolicy') ?? body.propagationPolicy;
  if (policy === undefined && body.orphanDependents !== undefined) policy = body.orphanDependents ? 'Orphan' : 'Background';
  if (policy !== undefined && !['Orphan', 'Background', 'Foreground'].includes(policy)) {
    throw errors.badRequest(`DeleteOptions.propagationPolicy: Unsupported value: "${policy}": supported values: "Foreground", "Background", "Orphan"`);
  }
  if (grace !== undefined && grace !== null && !/^-?\d+$/.test(String(grace))) throw errors.badRequest(`invalid gracePeriodSeconds: ${grace}`);
  return {
    preconditions: isObject(body.preconditions) ? body.preconditions : undefined,
    gracePeriodSeconds: grace !== undefined && grace !== null ? Number(grace) : undefined,
    propagationPolicy: policy,
  };
}

function wantsTable(accept: string | undefined): boolean {
  return !!accept && /as=Table/.test(accept) && /g=meta\.k8s\.io/.test(accept);
}

function includeObjectParam(req: ApiRequest): 'None' | 'Metadata' | 'Object' {
  const v = req.query.get('includeObject');
  return v === 'None' || v === 'Object' ? v : 'Metadata';
}

function encodeEvent(ev: WatchEventOut, res: ResourceInfo, asTable: boolean, includeObject: 'None' | 'Metadata' | 'Object'): string {
  if (asTable && (ev.type === 'ADDED' || ev.type === 'MODIFIED' || ev.type === 'DELETED')) {
    return JSON.stringify({ type: ev.type, object: toTable(kindFor(res), [ev.object as KubeObject], { includeObject }) });
  }
  return JSON.stringify(ev);
}

/** The scale subresource's rules; only kinds that serve it get here (requestInfo checks). */
function scaleOf(res: ResourceInfo): ScaleRules {
  const rules = kindFor(res).scale;
  if (!rules) throw errors.pageNotFound();
  return rules;
}

function decodeScale(req: ApiRequest): any {
  const b = parseBody(req);
  if (!isObject(b)) throw errors.badRequest('the request body must be a Scale object');
  return b;
}

export function errorResponse(e: unknown): ApiResponse {
  if (e instanceof ApiError) {
    // As kube-apiserver's ErrorNegotiated: a Status that asks for a delay says so in Retry-After too (client-go
    // then retries by itself; a 429 without it, an eviction blocked by a PDB, is the caller's to retry).
    const after = e.status.details?.retryAfterSeconds;
    return jsonResponse(e.code, e.status, after && after > 0 ? { 'retry-after': String(after) } : undefined);
  }
  if (e instanceof StorageError && e.code === 'TooLarge') {
    // kube-apiserver answers an object etcd will not hold (request is too large) with 413 too.
    return jsonResponse(413, new ApiError('RequestEntityTooLarge', `Request entity too large: ${e.message}`).status);
  }
  if (e instanceof StorageError && e.code === 'Unavailable') {
    // Storage is busy: 429 with Retry-After, which client-go and kubectl retry on their own.
    const err = new ApiError('TooManyRequests', 'storage is busy, please retry', { retryAfterSeconds: 1 });
    return jsonResponse(429, err.status, { 'retry-after': '1' });
  }
  // Anything else is our bug: log it, answer with a Status (never a bare crash).
  console.error('apiserver: internal error', e);
  const err = errors.internal(e instanceof Error ? e.message : String(e));
  return jsonResponse(500, err.status);
}


/** Thrown out of a patch's mutation when the patched object has not been admitted yet (the patch case). */


/** The type of the scale subresource's body (its schema is autoscaling/v1's). */
const SCALE = { group: 'autoscaling', version: 'v1', kind: 'Scale' } as const;

// The options kind each write verb's query parameters decode into (kube-apiserver names it in errors).
const OPTIONS_KIND: Readonly<Record<string, string>> = { create: 'CreateOptions', update: 'UpdateOptions', patch: 'PatchOptions', delete: 'DeleteOptions', deletecollection: 'DeleteOptions' };

/**
 * ?dryRun=All on a write: validate, admit, answer, persist nothing. Any other value is refused (422) as
 * kube-apiserver's ValidateDryRun does, rather than ignored: a typo must not turn a dry run into a write.
 */
function dryRunOf(req: ApiRequest, verb: string): boolean {
  const values = req.query.getAll('dryRun');
  const kind = OPTIONS_KIND[verb];
  const bad = values.find((v) => v !== 'All');
  if (kind && bad !== undefined) {
    throw errors.invalid(kind, 'meta.k8s.io', '', [{ reason: 'FieldValueNotSupported', field: 'dryRun', message: `Unsupported value: "${bad}": supported values: "All"` }]);
  }
  return values.length > 0;
}

/** Who a request is counted as in /metrics: nobody (the labels come from the path alone). */
const METRICS_USER: UserInfo = { username: '', groups: [] };

/** A streamed body that calls `ended` once when it ends, however it ends (a watch closed by either side). */
async function* endsWith(body: AsyncIterable<string>, ended: () => void): AsyncIterable<string> {
  try {
    yield* body;
  } finally {
    ended();
  }
}
