// The local cluster's control plane: the apiserver (the same ApiServer the Lambda function wraps in its
// middy handler, apiserver/handler.ts) served over HTTPS on loopback, with the embedded SQLite store in the
// data dir, and the controllers run in-process on its change feed. Each HTTP request becomes an ApiRequest;
// a whole answer goes out in one write with its headers, a watch is streamed (handler.ts writeApiResponse).

import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { installLocalLambdaRuntime } from './lambda-runtime.ts';
import { ensureServiceAccountKey, loadOrCreateCerts } from './certs.ts';
import { ServiceAccountTokenAuthenticator, ServiceAccountTokens, storeLookup } from '../apiserver/serviceaccount-tokens.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { SqliteBackend } from '../storage/sqlite.ts';
import { DEFAULT_HISTORY_RETENTION_SECONDS, SqliteHistoryStore, type HistoryStore } from '../storage/history.ts';
import type { Backend } from '../storage/backend.ts';
import { ApiServer, errorResponse } from '../apiserver/app.ts';
import { writeApiResponse } from '../apiserver/handler.ts';
import type { ApiRequest, ApiResponse } from '../apiserver/http.ts';
import { ADMIN_USER, newToken, storeToken, TokenAuthenticator, type Authorizer, type RuleResolver } from '../apiserver/auth.ts';
import { Auditor, FileAuditSink, loadAuditPolicy } from '../apiserver/audit.ts';
import { podUpgradeHandler } from '../apiserver/node-proxy.ts';
import { findResource } from '../machinery/resources.ts';
import { ensureSystemPriorityClasses } from '../kinds/scheduling/priorityclass.ts';
import { ensureDefaultStorageClass } from '../kinds/storage/storageclass.ts';
import { ensureBootstrapPolicy } from '../apiserver/bootstrap-policy.ts';
import { clusterRoleAggregationController } from '../controllers/clusterroleaggregation.ts';
import { ApiError, failureStatus } from '../machinery/status.ts';
import { runControllers } from './controllers.ts';
import { SharedInformers } from '../controllers/informer.ts';
import { agentPodMetrics, createHorizontalController } from '../controllers/horizontal.ts';
import { ApiPriorityGate, isLongRunning } from './api-priority.ts';
import { namespaceController } from '../controllers/namespace.ts';
import { crdController } from '../controllers/crd.ts';
import { createScheduler } from '../scheduler/scheduler.ts';
import { MemoryReservations } from '../scheduler/reservation.ts';
import { SchedulerLock } from './scheduler-lock.ts';
import { replicationController } from '../controllers/replication.ts';
import { replicaSetController } from '../controllers/replicaset.ts';
import { deploymentController } from '../controllers/deployment.ts';
import { daemonSetController } from '../controllers/daemonset.ts';
import { statefulSetController } from '../controllers/statefulset.ts';
import { jobController } from '../controllers/job.ts';
import { cronJobController } from '../controllers/cronjob.ts';
import { garbageCollector } from '../controllers/garbagecollector.ts';
import { endpointsController } from '../controllers/endpoints.ts';
import { persistentVolumeController } from '../controllers/persistentvolume.ts';
import { disruptionController } from '../controllers/disruption.ts';
import { nodeLifecycleController } from '../controllers/nodelifecycle.ts';
import { resourceQuotaController } from '../controllers/resourcequota.ts';
import { clusterResourceQuotaController } from '../controllers/clusterresourcequota.ts';
import { createNodeIpamController } from '../controllers/nodeipam.ts';
import { createRootCACertPublisher, serviceAccountsController } from '../controllers/serviceaccount.ts';
import { startHollowNodes } from '../../node-agent/hollow.ts';
import { startLocalAgents } from './agents.ts';
import type { Agent, AgentOptions } from '../../node-agent/agent.ts';
import { reconcileKubernetesService } from '../apiserver/kubernetes-service.ts';
import { formatIPv4, parseIPv4CIDR } from '../machinery/cidr.ts';

/** The abort reason of every finished request: abort() without one builds a DOMException with a stack
 * trace per request (3% of `skiff up`'s time in a profile of bench:vs-kube's API rows). */
const RESPONSE_CLOSED = Object.freeze(new Error('the response was closed'));

export interface LocalClusterOptions {
  dataDir: string;
  port?: number; // 0 picks a free port
  host?: string;
  /** Largest request body accepted (bytes). */
  maxBodyBytes?: number;
  maxWatchSeconds?: number;
  watchProgressMs?: number;
  /** See ApiServerOptions.watchKeepAliveMs (off by default). */
  watchKeepAliveMs?: number;
  /** Run the controllers and scheduler in-process (default true; tests of the apiserver alone turn it off). */
  controllers?: boolean;
  /** Register this many hollow nodes (kubemark-style: no containers run). */
  hollowNodes?: number;
  /** Storage to serve from; default: SQLite at <dataDir>/skiff.db. */
  backend?: Backend;
  /**
   * A second handle on the same store for the controllers, scheduler and hollow nodes (default: the
   * API's). Deployed, the apiserver and the loops are separate functions, each with its own DynamoDB
   * write queue; a test of the deployed shape gives them separate handles the same way.
   */
  controlPlaneBackend?: Backend;
  /** Node agents to run on the local Docker Engine (default 0). */
  agents?: number;
  /** Overrides for those agents (tests shorten back-off...). */
  agentOptions?: Partial<AgentOptions>;
  /** Fail when the agents cannot start (default: run the control plane alone and say why in agentError). */
  requireAgents?: boolean;
  /** Service clusterIP range (default 10.96.0.0/16) and node port range (default 30000-32767). */
  serviceCIDR?: string;
  nodePortRange?: string;
  /**
   * Pod range for node IPAM (a podCIDR per node without one). Off by default locally: local agents
   * bring their Docker network's subnet as their podCIDR, which is where their pods' IPs really come from.
   */
  clusterCIDR?: string;
  nodeCIDRMaskSize?: number;
  /** Most objects one namespace may hold (see ApiServerOptions; default 100,000, 0: no limit). */
  maxObjectsPerNamespace?: number;
  /** How long an Event lasts after its last write (--event-ttl; default 1 h, 0: for ever). */
  eventTtlSeconds?: number;
  /** Sign-in with AWS IAM identities (ApiServerOptions.iam): a deployed cluster's, or a test's against moto. */
  iam?: { clusterId: string; stsEndpoint?: string };
  /** The audit log: an audit.k8s.io/v1 Policy file and the file events go to (both or neither). */
  auditPolicyFile?: string;
  auditLogPath?: string;
  /** The API's authorizer and rule resolver (default: every authenticated user may do everything). */
  authorizer?: Authorizer;
  ruleResolver?: RuleResolver;
  /** --service-account-issuer (default https://kubernetes.default.svc.cluster.local, as kubeadm's). */
  serviceAccountIssuer?: string;
  /** --service-account-max-token-expiration, seconds (default: no cap). */
  serviceAccountMaxTokenExpirationSeconds?: number;
  /** --history-retention: how long object history is kept, seconds (default a day; 0: no history). */
  historyRetentionSeconds?: number;
  /** --horizontal-pod-autoscaler-sync-period (default 15 s) and -downscale-stabilization (default 5 minutes). */
  hpaSyncPeriodMs?: number;
  hpaDownscaleStabilizationMs?: number;
  /** Where history is kept (default: <data dir>/history.db); closed with the cluster. */
  historyStore?: HistoryStore;
}

export interface LocalCluster {
  url: string;
  port: number;
  kubeconfigPath: string;
  token: string;
  caCert: string;
  backend: Backend;
  api: ApiServer;
  /** The process's caches, one per kind, shared by the loops and the Node authorizer. */
  informers: SharedInformers;
  agents: Agent[];
  /** Why no agent runs, when agents were asked for and could not start (e.g. no Docker Engine). */
  agentError?: string;
  close(): Promise<void>;
}

/** The names the `kubernetes` Service is reached by from a pod, all on the apiserver's certificate. */
const KUBERNETES_SERVICE_NAMES = ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'];

/** Namespaces every cluster starts with, as kube-apiserver creates them. */
const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

export async function startLocalCluster(opts: LocalClusterOptions): Promise<LocalCluster> {
  installLocalLambdaRuntime();
  const dataDir = resolve(opts.dataDir);
  assertWritableDir(dataDir);
  const host = opts.host ?? '127.0.0.1';
  const maxBody = opts.maxBodyBytes ?? 3 * 1024 * 1024;
  // Pods verify the apiserver by the `kubernetes` Service's names and cluster IP (its first address).
  const kubernetesIP = formatIPv4((parseIPv4CIDR(opts.serviceCIDR ?? '10.96.0.0/16')?.base ?? 0) + 1);
  const certs = await loadOrCreateCerts(join(dataDir, 'pki'), [...new Set([host, '127.0.0.1', 'localhost', '::1', ...KUBERNETES_SERVICE_NAMES, kubernetesIP])]);
  const backend = opts.backend ?? new SqliteBackend(join(dataDir, 'skiff.db'));
  // What the apiserver presents to node agents (logs, exec): new at each start, known only in memory.
  const nodeClientToken = newToken();
  await storeToken(backend, nodeClientToken, { username: 'system:apiserver', groups: ['system:masters'] });
  // Service-account tokens: signed with <data-dir>/pki/sa.key, re-read every minute (a rotation needs no restart).
  const saKeyPath = ensureServiceAccountKey(join(dataDir, 'pki'));
  const serviceAccountTokens = new ServiceAccountTokens({
    keys: () => readFileSync(saKeyPath, 'utf8'),
    issuer: opts.serviceAccountIssuer,
    maxExpirationSeconds: opts.serviceAccountMaxTokenExpirationSeconds,
  });
  // Object history (apiserver/history.ts): in its own SQLite file beside the store, swept every minute.
  const historyRetention = opts.historyRetentionSeconds ?? DEFAULT_HISTORY_RETENTION_SECONDS;
  const historyStore = historyRetention > 0 ? (opts.historyStore ?? new SqliteHistoryStore(join(dataDir, 'history.db'))) : undefined;
  const apiOptions = {
    history: historyStore && { store: historyStore, retentionSeconds: historyRetention },
    serviceAccountTokens,
    // Pods need their ServiceAccount, which the serviceaccounts loop makes: on when the loops run.
    serviceAccountAdmission: opts.controllers !== false,
    nodeClientToken,
    maxBodyBytes: maxBody,
    maxWatchSeconds: opts.maxWatchSeconds,
    watchProgressMs: opts.watchProgressMs,
    watchKeepAliveMs: opts.watchKeepAliveMs,
    serviceCIDR: opts.serviceCIDR,
    nodePortRange: opts.nodePortRange,
    maxObjectsPerNamespace: opts.maxObjectsPerNamespace,
    eventTtlSeconds: opts.eventTtlSeconds,
    iam: opts.iam,
    authorizer: opts.authorizer,
    ruleResolver: opts.ruleResolver,
  };
  const api = new ApiServer({ ...apiOptions, backend, audit: localAuditor(opts) });
  // The custom resources it serves follow the store's CRDs through a watch (apiserver/crds.ts).
  const crdFeed = new AbortController();
  const followingCRDs = api.crds.follow(crdFeed.signal);
  // So does its RBAC view (apiserver/rbac.ts): authorizing a request reads nothing from the store.
  const followingRBAC = api.rbac.follow(crdFeed.signal);
  // A data dir from before objects were counted per namespace: count them once (one read afterwards).
  await api.registry.countExistingObjects();
  // And from before dependents were counted per owner (apiserver/dependents.ts): the same, once.
  await api.registry.countExistingDependents();

  // The admin token lives in plain text only in the kubeconfig; the store keeps its hash.
  const kubeconfigPath = join(dataDir, 'kubeconfig');
  const token = existingToken(kubeconfigPath) ?? newToken();
  await storeToken(backend, token, ADMIN_USER);
  await ensureNamespaces(api);
  await ensureSystemPriorityClasses(api.registry);
  await ensureBootstrapPolicy(api.registry);
  await ensureDefaultStorageClass(api.registry);
  // The loops' apiserver (a second one on its own store handle, when asked for) follows the CRDs too:
  // the loops ask it which kinds are served (custom resources included) without reading the store.
  const loopsApi = opts.controlPlaneBackend ? new ApiServer({ ...apiOptions, backend: opts.controlPlaneBackend }) : api;
  const followingCRDsForLoops = loopsApi === api ? followingCRDs : loopsApi.crds.follow(crdFeed.signal);
  // One cache per kind for the whole process (controllers/informer.ts): the loops' and the Node
  // authorizer's view of which pods (and claims) each node has (node-authorizer.ts).
  const informers = new SharedInformers(loopsApi.registry);
  const ctx = { ...loopsApi.controllerContext(), cache: informers };
  const followingNodeGraph = api.nodeGraph.follow(crdFeed.signal, informers);
  // The scheduler keeps its reservation records in memory when the store is this data dir's SQLite file
  // and it holds the data dir's scheduler lock (scheduler-lock.ts); on a store given from outside (a
  // DynamoDB table other processes may share) they stay in the store.
  const schedulerLock = opts.backend ? undefined : new SchedulerLock(join(dataDir, 'scheduler.lock'));
  const scheduler = schedulerLock ? createScheduler({ reservations: new MemoryReservations(), active: () => schedulerLock.held() }) : createScheduler();
  // API requests in flight hold back the in-process loops' next slice of work (api-priority.ts).
  const gate = new ApiPriorityGate();
  const controllers = runControllers(ctx, opts.controllers === false ? [] : [
    namespaceController,
    crdController,
    clusterRoleAggregationController,
    scheduler,
    replicationController,
    replicaSetController,
    deploymentController,
    daemonSetController,
    statefulSetController,
    jobController,
    cronJobController,
    // Pod usage as metrics.k8s.io serves it: the agents' samples, read with the apiserver's node credential.
    createHorizontalController({ metrics: agentPodMetrics(nodeClientToken), syncPeriodMs: opts.hpaSyncPeriodMs, downscaleStabilizationMs: opts.hpaDownscaleStabilizationMs }),
    garbageCollector,
    endpointsController,
    persistentVolumeController,
    disruptionController,
    nodeLifecycleController,
    resourceQuotaController,
    clusterResourceQuotaController,
    serviceAccountsController,
    createRootCACertPublisher({ caCert: certs.caCert }),
    ...(opts.clusterCIDR ? [createNodeIpamController({ clusterCIDR: opts.clusterCIDR, nodeCIDRMaskSize: opts.nodeCIDRMaskSize })] : []),
  ], { gate });
  // Hollow nodes (no containers; for trying the scheduler and controllers, and for benchmarks).
  const hollow = opts.hollowNodes ? await startHollowNodes({ ctx, count: opts.hollowNodes }) : undefined;

  // Requests go to the ApiServer itself (the Lambda's middy handler wraps the same ApiServer.handle).
  const handler = async (req: ApiRequest): Promise<ApiResponse> => {
    try {
      return await api.handle(req);
    } catch (e) {
      return errorResponse(e); // as the Lambda handler's onError: a Status, never a crash
    }
  };

  const sockets = new Set<{ destroy(): void }>();
  // Requests being answered, by the end of their response, with an abort for those that wait on the
  // client (watches): close() ends them.
  const inflight = new Map<Promise<void>, InFlight>();
  const server = https.createServer({ cert: certs.serverCert, key: certs.serverKey }, (req, res) => {
    const ended = new Promise<void>((ok) => res.once('close', () => ok()));
    const entry: InFlight = {};
    inflight.set(ended, entry);
    void ended.then(() => inflight.delete(ended));
    void serve(req, res, handler, maxBody, gate, entry);
  });
  // A request Node's HTTP parser refuses never reaches serve(): a method it does not know (FOO; Go's server,
  // and so kube-apiserver, takes any token), a malformed head, a head over the limit. Node's own answer is
  // an empty 400 (431, 408) and a destroyed socket, which resets a client still sending its body (the fuzz
  // run saw ECONNRESET). Answered here reading and dropping the rest, and ended.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    const answering = (socket as unknown as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || answering?.headersSent) {
      socket.destroy();
      return;
    }
    const code = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const text = code === 431 ? 'Request Header Fields Too Large' : code === 408 ? 'Request Timeout' : 'Bad Request';
    // A Status body only when the method is known not to be HEAD (an answer to HEAD has none, and a client
    // reads one as garbage): when the method itself was refused. Otherwise Node's empty answer.
    const body = err.code === 'HPE_INVALID_METHOD' ? JSON.stringify({ ...failureStatus(`the server could not parse the request: unsupported method`, 400), reason: 'BadRequest' }) : '';
    const type = body ? 'Content-Type: application/json\r\n' : '';
    socket.on('data', () => {}); // drained, not answered
    socket.end(`HTTP/1.1 ${code} ${text}\r\n${type}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    // A client that keeps sending is not waited for.
    setTimeout(() => socket.destroy(), 5_000).unref();
  });
  server.on('upgrade', podUpgradeHandler({ registry: api.registry, authn: new TokenAuthenticator(backend, undefined, { serviceAccounts: new ServiceAccountTokenAuthenticator(serviceAccountTokens, storeLookup(backend)) }), nodeClientToken, authorizer: api.authorizer }));
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 6443, host, () => ok());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  writeKubeconfig(kubeconfigPath, { server: url, caCert: certs.caCert, token });

  let agents: Agent[] = [];
  let agentError: string | undefined;
  if (opts.agents) {
    try {
      agents = await startLocalAgents({ count: opts.agents, backend, server: url, caCert: certs.caCert, dataDir, agent: opts.agentOptions });
    } catch (e) {
      if (opts.requireAgents) {
        for (const s of sockets) s.destroy();
        await new Promise<void>((ok) => server.close(() => ok()));
        await hollow?.stop();
        await controllers.stop();
        schedulerLock?.release();
        crdFeed.abort();
        await followingCRDs;
        await followingRBAC;
        await followingNodeGraph;
        await followingCRDsForLoops;
        await opts.controlPlaneBackend?.close();
        await backend.close();
        await historyStore?.close();
        throw e;
      }
      agentError = (e as Error).message;
    }
  }

  // The `kubernetes` Service, pointing at the first agent's relay of the apiserver (api-relay.ts), kept
  // as kube's master endpoint reconciler keeps it: checked again every 10 s (three reads).
  const apiEndpoint = agents.find((a) => a.apiEndpoint)?.apiEndpoint;
  const reconcileService = () => reconcileKubernetesService(api.registry, { clusterIP: kubernetesIP, endpoint: apiEndpoint, servicePort: port });
  const keepService = () => reconcileService().catch((e: Error) => console.error(`skiff: the kubernetes service: ${e.message}`));
  await keepService(); // a failure (e.g. default already at --max-objects-per-namespace) must not stop the cluster
  const serviceTimer = setInterval(() => void keepService(), 10_000);
  serviceTimer.unref();

  let closed = false;
  return {
    url,
    port,
    kubeconfigPath,
    token,
    caCert: certs.caCert,
    backend,
    api,
    informers,
    agents,
    agentError,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(serviceTimer);
      await Promise.all(agents.map((a) => a.close()));
      // Stop listening, and end every request in progress through its abort signal: a watch then ends
      // its chunked response after its last whole event, so a client sees a clean end of the stream and
      // re-watches from its last resourceVersion, rather than a connection reset in the middle of an
      // event; a write in progress finishes before the store closes. What has not ended within 2 s, and
      // idle keep-alive connections, are cut.
      const stopped = new Promise<void>((ok) => server.close(() => ok()));
      for (const r of inflight.values()) r.abort?.();
      await Promise.race([Promise.all(inflight.keys()), new Promise((ok) => setTimeout(ok, 2000).unref())]);
      for (const s of sockets) s.destroy();
      await stopped;
      await hollow?.stop();
      await controllers.stop();
      schedulerLock?.release();
      crdFeed.abort();
      await followingCRDs;
      await followingRBAC;
      await followingCRDsForLoops;
      await followingNodeGraph;
      await opts.controlPlaneBackend?.close();
      await backend.close();
      await historyStore?.close();
    },
  };
}

/**
 * Creates the data dir if needed and refuses to start when it cannot be written, saying which directory
 * and why: the store could take no write, and SQLite's own words ("unable to open database file") name
 * neither the file nor the cause.
 */
/** kube-apiserver's --audit-policy-file and --audit-log-path: both, or no audit log. A bad policy stops the start. */
function localAuditor(opts: LocalClusterOptions): Auditor | undefined {
  if (!opts.auditPolicyFile && !opts.auditLogPath) return undefined;
  if (!opts.auditPolicyFile || !opts.auditLogPath) throw new Error('the audit log needs both an audit policy file and an audit log path');
  return new Auditor(loadAuditPolicy(opts.auditPolicyFile), new FileAuditSink(opts.auditLogPath));
}

function assertWritableDir(dir: string): void {
  const probe = join(dir, `.write-test-${process.pid}`);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(probe, 'skiff');
    rmSync(probe);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why =
      err.code === 'EROFS'
        ? 'it is on a read-only filesystem'
        : err.code === 'ENOSPC' || err.code === 'EDQUOT'
          ? 'no space left on device (the disk is full)'
          : err.code === 'EACCES' || err.code === 'EPERM'
            ? 'permission denied'
            : err.message;
    throw new Error(`the data dir ${dir} is not writable: ${why}`);
  }
}

function existingToken(kubeconfigPath: string): string | undefined {
  if (!existsSync(kubeconfigPath)) return undefined;
  try {
    const cfg = parseYaml(readFileSync(kubeconfigPath, 'utf8'));
    const t = cfg?.users?.[0]?.user?.token;
    return typeof t === 'string' && t ? t : undefined;
  } catch {
    return undefined;
  }
}

async function ensureNamespaces(api: ApiServer): Promise<void> {
  const ns = findResource('', 'v1', 'namespaces')!;
  for (const name of SYSTEM_NAMESPACES) {
    try {
      await api.registry.create(ns, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    } catch (e) {
      if (!(e instanceof ApiError && e.reason === 'AlreadyExists')) throw e;
    }
  }
}

/** A request being answered: how to end it early (set for those that wait on their client). */
interface InFlight {
  abort?: () => void;
}

/** One HTTP request → one ApiRequest → the ApiServer's answer written to the response. */
async function serve(
  req: IncomingMessage,
  res: ServerResponse,
  handler: (req: ApiRequest) => Promise<ApiResponse>,
  maxBody: number,
  gate: ApiPriorityGate,
  inflight: InFlight,
): Promise<void> {
  // The request target is a path: '//' or an absolute-form URL must be a 400, not a throw (outside the
  // try below, a throw here ended the whole process).
  let u: URL;
  try {
    u = new URL(`https://local${req.url?.startsWith('/') ? req.url : '/'}`);
    if (!req.url?.startsWith('/')) throw new Error('not a path');
  } catch {
    res.writeHead(400, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `invalid request path: ${JSON.stringify(req.url ?? '')}`, reason: 'BadRequest', code: 400 }));
    return;
  }
  const long = isLongRunning(req.method, u);
  // An abort signal only for what waits on the client (watches, followed logs; logs and node proxies
  // stream from an agent): an AbortController per request was ~5% of the CPU of serving GETs.
  const ctl = long || /\/(log|proxy)(\/|$)/.test(u.pathname) ? new AbortController() : undefined;
  if (ctl) inflight.abort = () => ctl.abort();
  const answered = long ? undefined : gate.enter();
  res.on('close', () => {
    answered?.();
    ctl?.abort(RESPONSE_CLOSED);
  });
  try {
    // Read at most maxBody+1 bytes: enough for the apiserver to answer 413, without buffering a flood.
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      if (size <= maxBody) {
        chunks.push(c as Buffer);
        size += (c as Buffer).length;
      }
    }
    const body = Buffer.concat(chunks);
    // Node gives header names lower-cased, as ApiRequest wants them; repeated ones joined as a Function URL does.
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(',') : v;
    const apiReq: ApiRequest = { method: (req.method ?? 'GET').toUpperCase(), path: u.pathname, query: u.searchParams, headers, body, sourceIp: req.socket.remoteAddress ?? '', signal: ctl?.signal };
    await writeApiResponse(res, await handler(apiReq));
  } catch (e) {
    // A client that went away mid-stream is normal for watches; anything else is logged.
    if (!(ctl ? ctl.signal.aborted : res.destroyed)) console.error('skiff: request failed', e);
    if (!res.headersSent) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'internal error', reason: 'InternalError', code: 500 }));
    } else {
      res.destroy();
    }
  }
}
