// What a deployed Skiff control plane costs per month (`npm run cost`, scripts/cost.ts prints it).
//
// The bill is built from the requests each operation makes, as counted on the real code by
// test/cost.requests.test.ts (which fails if the code and OPERATIONS below disagree), times how often a
// cluster does each operation, priced at the published us-east-1 rates in PRICES. Three things cost money:
//   1. Requests: every apiserver request is one Lambda invocation (and one CloudFront request when it
//      comes through the front door) plus its DynamoDB reads and writes; every object write that passes
//      a stream function's filter wakes that function (one invocation per write while writes are sparse,
//      fewer once its 1 s batching window gathers several); the scheduler and the controller manager
//      resync on a schedule (every 5 minutes by default).
//   2. Time: Lambda bills every millisecond a function runs. A request is milliseconds; a watch held open
//      through the apiserver is a function running the whole time it is open, which is why agents poll.
//   3. Storage: the table's items and an hour of change log (log items expire by TTL).
// Figures marked "local measurement" were taken on a 2 vCPU shared machine against moto, not AWS.

import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { itemBytes } from '../lambdas/storage/value-codec.ts';

/** AWS prices by the 730-hour month (EKS: $0.10/h × 730 = $73). */
export const MONTH_HOURS = 730;
export const MONTH_SECONDS = MONTH_HOURS * 3600;

/**
 * Published prices, us-east-1, as of 2026-11-29 (the date they were checked against these pages).
 * Lambda: https://aws.amazon.com/lambda/pricing/ (Arm, first 7.5 billion GB-s tier).
 * DynamoDB on-demand: https://aws.amazon.com/dynamodb/pricing/on-demand/ (halved on 2024-11-01);
 *   reads of a table's stream by a Lambda event source mapping are free.
 * CloudFront: https://aws.amazon.com/cloudfront/pricing/ (pay-as-you-go, United States).
 * EventBridge: https://aws.amazon.com/eventbridge/pricing/ (scheduled rule events are not charged;
 *   EventBridge Scheduler, which wakes the controller manager at CronJob fire times: $1.00 per million
 *   invocations after 14 million free per month; its API calls are not charged).
 * CloudWatch: https://aws.amazon.com/cloudwatch/pricing/ (standard logs ingestion, standard alarms).
 * EKS: https://aws.amazon.com/eks/pricing/ (standard support control plane).
 */
export const PRICES = {
  checked: '2026-11-29',
  region: 'us-east-1',
  lambdaPerRequest: 0.2 / 1e6,
  lambdaPerGbSecondArm: 0.0000133334,
  dynamoPerWru: 0.625 / 1e6,
  dynamoPerRru: 0.125 / 1e6,
  dynamoStoragePerGbMonth: 0.25,
  /** Point-in-time recovery is on (infra/skiff-cluster.ts): continuous backup per GB-month of table. */
  dynamoPitrPerGbMonth: 0.2,
  dynamoStreamReadsByLambda: 0,
  cloudFrontPerHttpsRequest: 0.01 / 10_000,
  cloudFrontPerGbOut: 0.085,
  eventBridgeScheduledEvent: 0,
  schedulerPerInvocation: 1.0 / 1e6,
  /** SQS standard queue requests (https://aws.amazon.com/sqs/pricing/): the push channel to nodes. */
  sqsPerRequest: 0.4 / 1e6,
  cloudWatchLogsPerGbIngested: 0.5,
  cloudWatchPerAlarmMonth: 0.1,
  /** A custom metric (what each EMF dimension-value set becomes), first 10,000, prorated by the hour it is sent. */
  cloudWatchPerCustomMetricMonth: 0.3,
  eksControlPlanePerHour: 0.1,
} as const;

/** The always-free monthly allowances (per account, shared with everything else in it). */
export const FREE_TIER = {
  lambdaRequests: 1_000_000,
  lambdaGbSeconds: 400_000,
  cloudFrontRequests: 10_000_000,
  cloudFrontGbOut: 1000,
  dynamoStorageGb: 25,
  cloudWatchLogsGb: 5,
  cloudWatchAlarms: 10,
  schedulerInvocations: 14_000_000,
  sqsRequests: 1_000_000,
} as const;

/** The push channel's long-poll wait (node-agent/push.ts): an idle agent makes one request per wait. */
export const PUSH_WAIT_SECONDS = 20;

/** Memory of every Skiff function (infra/skiff-cluster.ts memorySize; the test checks they agree). */
export const LAMBDA_MEMORY_MB = 512;
/** Longest watch the apiserver serves before the client re-watches (infra/skiff-cluster.ts). */
export const MAX_WATCH_SECONDS = 840;
/** How often an open watch's Lambda reads the revision counter (DynamoBackend pollIntervalMs default). */
export const WATCH_COUNTER_POLL_MS = 150;
/** The stream event source mappings' MaxBatchingWindow (infra/skiff-cluster.ts). */
export const BATCHING_WINDOW_SECONDS = 1;
/** Kubelet's (and a local agent's) Node status report interval: node-agent/node.ts statusReportMs default. */
export const NODE_STATUS_REFRESH_SECONDS = 300;
/** The agent retries a conflicting pod status write after this long (node-agent/pods.ts report()). */
export const STATUS_CONFLICT_RETRY_SECONDS = 0.5;
/**
 * CloudWatch alarms infra/skiff-cluster.ts defines: IteratorAge of the 2 stream functions, Errors of
 * apiserver, scheduler, controller manager and bootstrap, and the table's write rate (the runaway-write
 * guard's alarm). test/infra.test.ts checks the stack makes this many.
 */
export const ALARMS = 7;

/**
 * Lambda time per invocation (local measurement, printed by test/cost.requests.test.ts on moto with
 * SKIFF_COST_PRINT=1; 2026-11-29, 2 vCPU shared machine): about 5 ms per DynamoDB request, which is
 * also a fair in-region DynamoDB round trip, and well under 1 ms for an invocation with no request (billed as 1 ms). Reading large
 * lists also costs parse time: MS_PER_KB_READ is an assumption (about 50 MB/s to page, parse and decode
 * items), not a measurement.
 */
export const MEASURED_HANDLER_MS = { perDynamoRequest: 5, perInvocation: 1 } as const;
export const MS_PER_KB_READ = 0.02;
/**
 * Log lines per invocation: none since the functions log at system level WARN (infra/skiff-cluster.ts:
 * Lambda's START, END and REPORT lines, ~350 bytes, are not written); their own lines are errors, which
 * the model leaves out, and the resync's summary (RESYNC_LOG_BYTES).
 */
export const LOG_BYTES_PER_INVOCATION = 0;
/** The full resync's page (lambdas/controllers/stream.ts RESYNC_PAGE). */
export const RESYNC_PAGE = 500;

/** The resync's summary line (lambdas/controllers/stream.ts) as Lambda's JSON log format writes it: an estimate. */
export const RESYNC_LOG_BYTES = 600;
/**
 * One audit event (apiserver/audit.ts, on by default in the cloud, Metadata level) as CloudWatch Logs bills
 * it: measured 600-850 bytes for a list, a drain watch, a create and a patch (2026-12-05), plus 26 bytes per
 * event. The default policy leaves out some of the nodes' routine requests (OpCount.audited).
 */
export const AUDIT_EVENT_BYTES = 780;

export type Fn = 'apiserver' | 'scheduler' | 'controllerManager';
export const FUNCTIONS: Fn[] = ['apiserver', 'scheduler', 'controllerManager'];

/**
 * What one operation costs in requests, counted by test/cost.requests.test.ts: apiserver requests
 * (Lambda invocations), stream-triggered invocations of each loop function (one per object write that
 * passes its filter), and each function's DynamoDB requests as "Command kind[ write type]", a Query of
 * one workload namespace being "Query kind namespace", of kube-node-lease "Query leases kube-node-lease"
 * (a Query without either reads the whole collection). Kinds:
 * counter (the revision counter), token (bearer token hashes), reservations (the scheduler's per-node
 * Leases), and otherwise the resource (pods, leases = node heartbeats, podcidrs = node IPAM blocks...).
 */
//
// A create or delete of a namespaced object also moves its namespace's object count (the runaway-write
// guard, ApiServerOptions.maxObjectsPerNamespace): one more item in the same TransactWriteItems, written
// "TransactWriteItems kind type +count".
//
// Quota (issue #15, apiserver/admission-quota.ts): every namespaced create first reads two counter items
// ("GetItem count": the namespace's ResourceQuotas, the cluster's ClusterResourceQuotas) and lists quotas
// only where there are some (none in these operations); the quota loops read the same counters once per
// namespace a batch touches, and list the quotas on resync.
export interface OpCount {
  apiRequests: number;
  /**
   * Of those, the requests the default audit policy records (apiserver/audit.ts DEFAULT_AUDIT_POLICY: not
   * the nodes' Lease renewals, their GETs of their own Node, nor their lists and watches of Services and
   * Endpoints, as GCE's policy leaves out kubelet's and kube-proxy's). Default: all of them.
   */
  audited?: number;
  invocations: { scheduler: number; controllerManager: number };
  dynamo: Partial<Record<Fn, Record<string, number>>>;
}

const nothing = { scheduler: 0, controllerManager: 0 };

/**
 * Every operation the bill is made of. The apiserver's token cache is cold (each request reads the token).
 * An update or delete right after a read of the same object in the same process does not read it again
 * (storage/dynamodb.ts `recent`, 2026-12-05: a Lease renewal's PATCH reads its Lease once, not twice).
 */
export const OPERATIONS = {
  /** node-agent/node.ts renewLease: a merge PATCH of the node's Lease. Wakes both loops (Leases are watched). */
  leaseRenewal: {
    apiRequests: 1,
    audited: 0,
    // Heartbeat Leases pass neither stream filter (streamFilterPatterns): node lifecycle reads them on resync.
    invocations: nothing,
    dynamo: {
      // GetItem count: whether any admission webhook or policy exists (admission-match.ts; one counter).
      apiserver: { 'GetItem token': 1, 'GetItem leases': 1, 'GetItem count': 1, 'UpdateItem counter': 1, 'TransactWriteItems leases update': 1, 'UpdateItem settled': 1 },
    },
  },
  /** `kubectl top` deployed: an agent's usage report while demanded (node-usage.ts): PUT nodes/<node>/usage, no revision, no history. */
  usageReport: {
    apiRequests: 1,
    // The deployed audit policy leaves them out, as it does Lease renewals (audit.ts).
    audited: 0,
    invocations: nothing,
    dynamo: {
      apiserver: { 'GetItem token': 1, 'UpdateItem usage': 1 },
    },
  },
  /** A NodeMetrics read of one node while its reports are fresh and the demand recent: its usage item, no write. */
  usageRead: {
    apiRequests: 1,
    invocations: nothing,
    dynamo: {
      apiserver: { 'GetItem token': 1, 'GetItem nodes': 1, 'GetItem usage': 1 },
    },
  },
  /**
   * What a heartbeat would add if it woke both loops (it did until the filters left heartbeat Leases out;
   * counted by this test on 2026-11-29 before that change): node lifecycle gets the node and the lease and
   * makes a no-op update; the scheduler reads nothing. Only the `leaseWakes` comparison uses it.
   */
  leaseWake: {
    apiRequests: 0,
    invocations: { scheduler: 1, controllerManager: 1 },
    dynamo: {
      controllerManager: { 'GetItem nodes': 2, 'GetItem leases': 1 },
    },
  },
  /** node.ts writeStatus with nothing changed: the GET of its Node every heartbeat. */
  nodeStatusCheck: {
    apiRequests: 1,
    audited: 0,
    invocations: nothing,
    dynamo: {
      apiserver: { 'GetItem token': 1, 'GetItem nodes': 1 },
    },
  },
  /** node.ts writeStatus writing (conditions changed, or every status report interval): GET, then PUT nodes/status. */
  nodeStatusWrite: {
    apiRequests: 2,
    audited: 1,
    invocations: { scheduler: 1, controllerManager: 1 },
    dynamo: {
      apiserver: { 'PutItem history:nodes': 1, 'GetItem token': 2, 'GetItem nodes': 2, 'GetItem count': 1, 'UpdateItem counter': 1, 'TransactWriteItems nodes update': 1, 'UpdateItem settled': 1 },
      controllerManager: { 'GetItem nodes': 3, 'GetItem leases': 1, 'GetItem podcidrs': 1 },
    },
  },
  /**
   * One poll of the agent's pod informer: LIST pods with fieldSelector spec.nodeName, served from the
   * pods-by-node index (storage/indexes.ts): one Query of the node's index partition, whose items carry
   * the pods' values (it read every pod of the cluster before; until 2026-12-07 a BatchGetItem of its
   * pods followed, a read unit for each pod). The index's completeness marker is read once per
   * apiserver instance; counted here per request, as the token (a cold instance each time).
   */
  pollPods: {
    apiRequests: 1,
    invocations: nothing,
    dynamo: {
      apiserver: { 'GetItem token': 1, 'GetItem index-marker': 1, 'Query counter': 2, 'Query pods-by-node': 1 },
    },
  },
  /** One poll of a Services informer (the proxy and DNS share one; AgentSettings.informers). */
  pollServices: {
    apiRequests: 1,
    audited: 0,
    invocations: nothing,
    dynamo: {
      apiserver: { 'GetItem token': 1, 'Query counter': 2, 'Query services': 1 },
    },
  },
  /** One poll of an Endpoints informer (the proxy and DNS share one; AgentSettings.informers). */
  pollEndpoints: {
    apiRequests: 1,
    audited: 0,
    invocations: nothing,
    dynamo: {
      apiserver: { 'GetItem token': 1, 'Query counter': 2, 'Query endpoints': 1 },
    },
  },
  /**
   * What a deployed agent does after its first list of Services or Endpoints (Informer changesOnly): a
   * watch from its last resourceVersion that the apiserver ends once caught up. Nothing changed: the
   * token and the counter, one request.
   */
  catchUpUnchanged: {
    apiRequests: 1,
    audited: 0,
    invocations: nothing,
    dynamo: {
      apiserver: { 'GetItem token': 1, 'Query counter': 1 },
    },
  },
  /**
   * What a catch-up that finds changes adds (measured with one Endpoints change): the revision it must
   * reach, whether the log still holds where it starts, the feed's marker (cached by a warm function;
   * each request here is a fresh one) and the collection's changes: one Query of its feed, whose items
   * carry the changes (storage/dynamodb.ts, 2026-12-06; until then a BatchGetItem of their log items
   * followed). Each further change in the same catch-up adds its item's bytes to the Query. This is the
   * first catch-up past the function's window of the feed (FeedWindow, 2026-12-07: until then every one).
   */
  catchUpPerChange: {
    apiRequests: 0,
    invocations: nothing,
    dynamo: {
      apiserver: { 'Query counter': 1, 'GetItem log': 1, 'GetItem feed-marker': 1, 'Query changes': 1 },
    },
  },
  /**
   * Another node's catch-up of the same change on the same warm function: the change is in the function's
   * window of the feed (storage/dynamodb.ts FeedWindow), so it reads no change, only the revision it must
   * reach and whether the log still holds where it starts.
   */
  catchUpPerChangeShared: {
    apiRequests: 0,
    invocations: nothing,
    dynamo: {
      apiserver: { 'Query counter': 1, 'GetItem log': 1 },
    },
  },
  /** A user creates a bare pod; the scheduler reserves room and binds it, recording an event. */
  podCreate: {
    apiRequests: 1,
    invocations: { scheduler: 3, controllerManager: 3 },
    dynamo: {
      // Priority admission: a pod naming no PriorityClass gets the globalDefault one, found by a list
      // (kube reads an informer's cache); a pod naming one costs a GetItem priorityclasses instead.
      // Admission reads the namespace once (NamespaceLifecycle and PodSecurity share it) and four counters
      // (GetItem count): whether the namespace has LimitRanges or ResourceQuotas, the cluster
      // ClusterResourceQuotas, or any admission webhook or policy; a list only of what exists.
      apiserver: { 'PutItem history:pods': 1, 'GetItem token': 1, 'GetItem namespaces': 1, 'GetItem count': 4, 'Query counter': 2, 'Query priorityclasses': 1, 'GetItem pods': 1, 'BatchGetItem count': 1, 'UpdateItem counter': 1, 'TransactWriteItems pods create +count': 1, 'UpdateItem settled': 1 },
      scheduler: { 'PutItem history:pods': 1, 'GetItem pods': 2, 'GetItem reservations': 2, 'GetItem count': 4, 'BatchGetItem count': 1, 'UpdateItem counter': 3, 'TransactWriteItems reservations create +count': 1, 'UpdateItem settled': 3, 'TransactWriteItems pods update +index': 1, 'GetItem events': 1, 'TransactWriteItems events create': 1 },
      // The endpoints loop reads nothing: a pod without an IP (created, then scheduled) is no Service's
      // endpoint, so its records reach no Service (kube's podEndpointsChanged). Until issue #12 it
      // listed the namespace's pods (12 counter reads, 2 pod Queries), then its Services (8, 2 Service
      // Queries). The pod's IP (podStart) is what reaches its Services.
      // An orphan pod may be adopted by a ReplicationController or a ReplicaSet whose selector matches:
      // each loop lists its kind in the pod's namespace once per batch that carries an orphan's record
      // (kube's controllers look in their listers), and the disruption controller finds the budgets
      // selecting the pod in one list of the namespace's PodDisruptionBudgets (in the batch where the
      // pod's readiness can change). Each Query reads the revision counter twice. The bind (an update with
      // the same labels and no controller) looks for no adopter, as kube's updatePod (2 more Queries each
      // until 2026-12-05). The quota loops read their two counters for the create only: the bind leaves
      // what quota sees as it was (chargesMayMove; 2 more reads until 2026-12-05).
      controllerManager: { 'Query counter': 6, 'Query replicationcontrollers namespace': 1, 'Query replicasets namespace': 1, 'Query poddisruptionbudgets namespace': 1, 'GetItem count': 2, 'GetItem nodes': 1 },
    },
  },
  /**
   * The agent starts it (node-agent/pods.ts sync on the real Docker Engine): events Pulled, Created,
   * Started; the namespace's Services for the container's environment; ONE status write.
   */
  podStart: {
    apiRequests: 5,
    audited: 4, // the Services list for the environment is a node's list of Services: not audited
    invocations: { scheduler: 1, controllerManager: 1 },
    dynamo: {
      // No Service selects the pod: no pod Query (one, and 2 more counter reads, until issue #12). The
      // budgets selecting it (its readiness changed); a status write asks no RC or ReplicaSet to adopt
      // the orphan (its labels and controller are unchanged: kube's updatePod; 4 more reads until 2026-12-05),
      // nor the quota loops to read their counters (its charges are unchanged: 2 more until 2026-12-05).
      apiserver: { 'PutItem history:pods': 1, 'GetItem token': 5, 'GetItem namespaces': 3, 'GetItem count': 10, 'GetItem events': 3, 'UpdateItem counter': 4, 'TransactWriteItems events create': 3, 'UpdateItem settled': 4, 'Query counter': 2, 'Query services namespace': 1, 'GetItem pods': 1, 'TransactWriteItems pods update +index': 1 },
      controllerManager: { 'Query counter': 4, 'Query services namespace': 1, 'Query poddisruptionbudgets namespace': 1 },
    },
  },
  /**
   * A sync from a stale cached pod, lacking the agent's own status write until the next poll: the PUT is
   * a 409 Conflict, retried every 0.5 s until the poll refreshes the cache. The agent now keeps the pod
   * its write returned (AgentSettings.staleStatusConflicts false); NAIVE_AGENT prices the old behaviour.
   */
  podStatusConflict: {
    apiRequests: 1,
    invocations: nothing,
    dynamo: {
      apiserver: { 'GetItem token': 1, 'GetItem pods': 1 },
    },
  },
  /** A user deletes the pod (graceful: deletionTimestamp is set). */
  podDelete: {
    apiRequests: 1,
    invocations: { scheduler: 1, controllerManager: 1 },
    dynamo: {
      // No Service selects the pod: no pod Query (one, and 2 more counter reads, until issue #12). A
      // terminating pod leaves its budgets' healthy count: one PodDisruptionBudget Query. Its charges stay
      // until it is gone: the quota loops read nothing (2 counter reads until 2026-12-05).
      apiserver: { 'PutItem history:pods': 1, 'GetItem token': 1, 'GetItem pods': 1, 'GetItem count': 1, 'UpdateItem counter': 1, 'TransactWriteItems pods update +index': 1, 'UpdateItem settled': 1 },
      controllerManager: { 'Query counter': 4, 'Query services namespace': 1, 'Query poddisruptionbudgets namespace': 1 },
    },
  },
  /**
   * What a unit's pod (an RC's, behind a Service: the scenarios' pods) adds to a bare pod's start: its
   * Service's Endpoints and EndpointSlice take it in and its RC's status counts it ready; the RC loop
   * lists the namespace's pods once per batch. Measured as the same agent sync of the second pod of an
   * RC whose first already serves (as in a unit of ten: a Service's first pod makes its slice anew
   * instead), less podStart's (2026-12-06; priced from then on: before, pod churn left these writes out).
   * Since 2026-12-06 a pod change that moves nothing the RC counts (a bind, a status write that keeps it
   * as ready as it was) and the RC's own status write ask nothing of the RC loop: 3 lists of the pods
   * were 2 here, and 6 were 4 at the pod's end.
   */
  unitPodStart: {
    apiRequests: 0,
    invocations: { scheduler: 0, controllerManager: 2 },
    dynamo: {
      controllerManager: { 'GetItem replicationcontrollers': 3, 'Query counter': 8, 'Query pods namespace': 2, 'UpdateItem counter': 3, 'TransactWriteItems replicationcontrollers update': 1, 'UpdateItem settled': 3, 'PutItem history:replicationcontrollers': 1, 'GetItem endpoints': 3, 'TransactWriteItems endpoints update +change': 1, 'PutItem history:endpoints': 1, 'Query endpointslices namespace': 2, 'GetItem endpointslices': 1, 'TransactWriteItems endpointslices update': 1, 'PutItem history:endpointslices': 1, 'GetItem services': 1 },
    },
  },
  /**
   * And to its end: deleted by a user, stopped by its agent, and replaced by its RC, less a bare pod's
   * podDelete, podTerminate and podCreate (the replacement is the next life's creation). The RC loop's
   * create (and its Event, and the RC's status) stands in for the user's; the Endpoints and slice let the
   * pod go. Negative counts are what the bare path does and this one does not.
   */
  unitPodEnd: {
    apiRequests: -1,
    audited: -1,
    invocations: { scheduler: 0, controllerManager: 2 },
    dynamo: {
      apiserver: { 'GetItem token': -1, 'GetItem count': -4, 'UpdateItem counter': -1, 'UpdateItem settled': -1, 'PutItem history:pods': -1, 'GetItem namespaces': -1, 'BatchGetItem count': -1, 'Query counter': -2, 'Query priorityclasses': -1, 'TransactWriteItems pods create +count': -1, 'TransactWriteItems pods delete +count +charge +index': 1, 'TransactWriteItems pods delete +count +index': -1 },
      controllerManager: { 'GetItem replicationcontrollers': 10, 'Query counter': 12, 'Query pods namespace': 5, 'GetItem namespaces': 1, 'GetItem serviceaccounts': 1, 'GetItem count': 6, 'Query priorityclasses': 1, 'GetItem pods': 1, 'BatchGetItem count': 1, 'UpdateItem counter': 5, 'TransactWriteItems pods create +count +charge': 1, 'UpdateItem settled': 5, 'PutItem history:pods': 1, 'GetItem events': 1, 'TransactWriteItems events create': 1, 'TransactWriteItems replicationcontrollers update': 1, 'PutItem history:replicationcontrollers': 1, 'GetItem endpoints': 3, 'TransactWriteItems endpoints update +change': 1, 'PutItem history:endpoints': 1, 'Query endpointslices namespace': 2, 'GetItem endpointslices': 1, 'TransactWriteItems endpointslices update': 1, 'PutItem history:endpointslices': 1, 'GetItem services': 1, 'Query replicationcontrollers namespace': -1, 'Query replicasets namespace': -1 },
      scheduler: { 'GetItem reservations': -1, 'TransactWriteItems reservations update': 1, 'GetItem count': -2, 'BatchGetItem count': -1, 'TransactWriteItems reservations create +count': -1 },
    },
  },
  /**
   * The agent stops it (event Killing) and deletes the pod object. Its room is counted from the scheduler's
   * snapshot: its reservation entry was pruned by a later reservation on its node (measured so, after a
   * neighbour's), so the scheduler reads the record and writes nothing. Until 2026-12-07 it released the
   * entry: a write of the node's whole record, whose stream record woke both loops once more.
   */
  podTerminate: {
    apiRequests: 2,
    invocations: { scheduler: 1, controllerManager: 1 },
    dynamo: {
        // The endpoints loop's pod Query is gone (issue #12). The garbage collector asks which kinds are
        // served, custom resources included: the CRDs, read at most once a second per function instance (a
        // Query and 2 counter reads). For the deleted pod's dependents it reads their count (one GetItem
        // count: apiserver/dependents.ts); until 2026-12-06 it listed each namespaced kind that can be a
        // dependent (27 Queries and 54 counter reads), and the pod Query and the Services list with them.
      apiserver: { 'PutItem history:pods': 1, 'GetItem token': 2, 'GetItem namespaces': 1, 'GetItem count': 4, 'GetItem events': 1, 'UpdateItem counter': 2, 'TransactWriteItems events create': 1, 'UpdateItem settled': 2, 'GetItem pods': 1, 'TransactWriteItems pods delete +count +index': 1 },
      scheduler: { 'GetItem reservations': 1 },
      controllerManager: { 'GetItem pods': 1, 'Query counter': 4, 'Query customresourcedefinitions': 1, 'Query poddisruptionbudgets namespace': 1, 'GetItem count': 3 },
    },
  },
  /**
   * The scheduler's full re-read (hourly; lambdas/controllers/stream.ts resyncAll) on an idle 3-node cluster
   * (lists nodes, pods, kube-node-lease Leases), with its mark read and moved (`resync-mark`, meta/resync#<fn>)
   * and the revision it starts from. Every resync was one until 2026-12-05.
   */
  resyncScheduler: {
    apiRequests: 0,
    invocations: nothing,
    dynamo: {
      scheduler: { 'GetItem resync-mark': 1, 'Query counter': 7, 'Query nodes': 1, 'Query pods': 1, 'Query leases kube-node-lease': 1, 'UpdateItem resync-mark': 1 },
    },
  },
  /** The controller manager's full re-read (hourly) on an idle 3-node cluster, its mark read and moved. */
  resyncControllerManager: {
    apiRequests: 0,
    invocations: nothing,
    dynamo: {
        // The CRD controller's resync, and the served kinds the garbage collector asks for (once a batch).
        // The namespace controller's, and the serviceaccounts and root-ca-cert-publisher loops' keys, which
        // then read each namespace's `default` ServiceAccount and kube-root-ca.crt (4 namespaces here).
        // Every kind once: each loop's keys and the garbage collector's scan of every dependent kind read
        // through the resync's one reader (until issue #14 each loop listed its own kind again: 2 Queries
        // for most kinds, 84 counter reads with the workload kinds' loops).
      controllerManager: { 'GetItem resync-mark': 1, 'UpdateItem resync-mark': 1, 'Query counter': 73, 'Query namespaces': 2, 'Query customresourcedefinitions': 2, 'Query clusterroles': 1, 'Query replicationcontrollers': 1, 'Query replicasets': 1, 'Query deployments': 1, 'Query daemonsets': 1, 'Query statefulsets': 1, 'Query jobs': 1, 'Query cronjobs': 1, 'Query pods': 1, 'Query podtemplates': 1, 'Query services': 1, 'Query endpoints': 1, 'Query limitranges': 1, 'Query configmaps': 1, 'Query secrets': 1, 'Query serviceaccounts': 1, 'Query resourcequotas': 1, 'Query persistentvolumeclaims': 1, 'Query controllerrevisions': 1, 'Query ingresses': 1, 'Query networkpolicies': 1, 'Query poddisruptionbudgets': 1, 'Query rolebindings': 1, 'Query roles': 1, 'Query leases': 1, 'Query endpointslices': 1, 'Query horizontalpodautoscalers': 1, 'Query persistentvolumes': 1, 'Query nodes': 2, 'GetItem nodes': 9, 'GetItem leases': 3, 'Query clusterresourcequotas': 1, 'GetItem podcidrs': 3, 'Query podcidrs': 1, 'GetItem serviceaccounts': 4, 'GetItem configmaps': 4 },
    },
  },
  /**
   * The every-5-minutes resync between full re-reads, with nothing changed since the last (stream.ts
   * resyncAll from the log): its mark, the revision, the mark moved. The scheduler's pending pods are
   * the keys it asked to see again (none here).
   */
  resyncChangedScheduler: {
    apiRequests: 0,
    invocations: nothing,
    dynamo: {
      scheduler: { 'GetItem resync-mark': 1, 'Query counter': 1, 'UpdateItem resync-mark': 1 },
    },
  },
  /** ... the controller manager's: node lifecycle's clock (every node and its Lease: resyncAlways). */
  resyncChangedControllerManager: {
    apiRequests: 0,
    invocations: nothing,
    dynamo: {
      controllerManager: { 'GetItem resync-mark': 1, 'Query counter': 3, 'Query nodes': 1, 'GetItem nodes': 6, 'GetItem leases': 3, 'UpdateItem resync-mark': 1 },
    },
  },
  /** What each node beyond three adds to that resync (node lifecycle's look at it and its Lease). */
  resyncChangedPerNode: {
    apiRequests: 0,
    invocations: nothing,
    dynamo: {
      controllerManager: { 'GetItem nodes': 2, 'GetItem leases': 1 },
    },
  },
  /**
   * A heartbeat since the last run: its log item read by each function (the log's first revision checked,
   * one Query of its partition); its Lease's keys are node lifecycle's, looked at anyway. The bill sums a
   * run's log reads by bytes (monthlyBill): one Query per partition, not per change.
   */
  resyncChangedPerHeartbeat: {
    apiRequests: 0,
    invocations: nothing,
    dynamo: {
      scheduler: { 'GetItem log': 1, 'Query log': 1 },
      controllerManager: { 'GetItem log': 1, 'Query log': 1 },
    },
  },
  /**
   * A pod's life (created, bound, started, deleted, gone: 11 revisions with its Events) as the runs that
   * follow it read it: the log read, then its keys reconciled again, no-ops where the stream did the work.
   * A pod lives for hours, so its start and its end fall in two runs (measured so since 2026-12-07; one run
   * read both before, and its release of its reservation was a 12th revision): its key is reconciled in
   * each. The garbage collector's look for the deleted pod's dependents is one read of their count
   * (apiserver/dependents.ts; until 2026-12-06 a Query of each dependent kind of the namespace).
   */
  resyncChangedPerPodLife: {
    apiRequests: 0,
    invocations: nothing,
    dynamo: {
      scheduler: { 'GetItem log': 2, 'Query log': 11, 'GetItem pods': 1 },
      controllerManager: {
        'GetItem log': 2,
        'Query log': 11,
        'Query counter': 14,
        'Query replicationcontrollers namespace': 1,
        'Query replicasets namespace': 1,
        'GetItem pods': 1,
        'Query customresourcedefinitions': 1,
        'Query services namespace': 2,
        'Query poddisruptionbudgets namespace': 2,
        'GetItem nodes': 1,
        'GetItem count': 5,
      },
    },
  },
  /** What each node beyond three adds to the scheduler's resync: nothing (its snapshot lists are paid for by size). */
  resyncSchedulerPerNode: {
    apiRequests: 0,
    invocations: nothing,
    dynamo: {},
  },
  /** A node's reservation record, kept once the node has held a pod, costs the scheduler's resync one read. */
  resyncSchedulerPerReservation: {
    apiRequests: 0,
    invocations: nothing,
    dynamo: {
      scheduler: { 'GetItem reservations': 1 },
    },
  },
  /** What each node beyond three adds to the controller manager's resync (node lifecycle, IPAM). */
  resyncControllerManagerPerNode: {
    apiRequests: 0,
    invocations: nothing,
    dynamo: {
      controllerManager: { 'GetItem nodes': 3, 'GetItem leases': 1, 'GetItem podcidrs': 1 },
    },
  },
  /** What a workload unit (a ReplicationController, its pods, a Service, its Endpoints) adds to the scheduler's resync: nothing. */
  resyncSchedulerPerUnit: {
    apiRequests: 0,
    invocations: nothing,
    dynamo: {},
  },
  /**
   * ... and to the controller manager's (the RC's and the Service's reconciles read the namespace's pods
   * through the resync's reader: one pod Query shared by both; two until the RC read its pods from it,
   * issue #12). The garbage collector reads each owner (the RC; the Service, which owns its EndpointSlice) and, while
   * it is alive and not being deleted, lists none of its dependents (it listed every dependent kind of the
   * namespace per owner until 2026-11-29: 40 counter reads and 20 Queries per unit, now 4 and 2).
   */
  resyncControllerManagerPerUnit: {
    apiRequests: 0,
    invocations: nothing,
    dynamo: {
      controllerManager: {
        'Query counter': 4,
        'GetItem replicationcontrollers': 3,
        'Query pods namespace': 1,
        'GetItem services': 2,
        // An unchanged Endpoints is read once (it was read twice, the second time to update it). Slices
        // have generated names, as kube's: a Service's are found in one Query of the namespace's slices
        // per batch, shared by the namespace's Services (the unit's 2 more counter reads); unchanged
        // slices are not written.
        'GetItem endpoints': 1,
        'Query endpointslices namespace': 1,
      },
    },
  },
} satisfies Record<string, OpCount>;

export type Operation = keyof typeof OPERATIONS;

// ---- sizes ----

/**
 * Bytes of one item of each kind, by DynamoDB's item size rules. Measured in test/cost.requests.test.ts
 * (a running one-container pod, a 3-node cluster's Nodes and Leases, a one-replica RC with its Service,
 * Endpoints and EndpointSlice); endpoints and slices grow per pod, by the per-pod figures.
 */
export interface ItemSizes {
  counter: number;
  token: number;
  namespaces: number;
  nodes: number;
  leases: number;
  reservations: number;
  podcidrs: number;
  pods: number;
  events: number;
  services: number;
  endpoints: number;
  endpointsPerPod: number;
  endpointslices: number;
  endpointSlicesPerPod: number;
  replicationcontrollers: number;
  serviceips: number;
}

/**
 * Item bytes as stored, taken from test/cost.requests.test.ts's objects (it checks them: SKIFF_COST_PRINT=1
 * prints them). Values are deflated with a preset dictionary (storage/value-codec.ts, 2026-12-05): a pod
 * went from 2,145 to 473 bytes, a node from 2,073 to 587. The per-pod growth of Endpoints and
 * EndpointSlices is measured on the codec with generated addresses (random uids, names, IPs), not by
 * the test: ~34 bytes an address, rounded up.
 */
/**
 * The same objects' JSON (what a list's answer and a function's memory hold, where compression does not
 * reach): the stored sizes before value-codec.ts, less ~70 bytes of item attributes.
 */
export const JSON_BYTES = { pods: 2075, services: 488, endpoints: 251, endpointsPerPod: 150 } as const;

export const REFERENCE_SIZES: ItemSizes = {
  counter: 21,
  token: 182,
  namespaces: 150,
  nodes: 587,
  leases: 233,
  reservations: 337,
  podcidrs: 151,
  pods: 473,
  events: 295,
  services: 205,
  endpoints: 180,
  endpointsPerPod: 40,
  endpointslices: 329,
  endpointSlicesPerPod: 40,
  replicationcontrollers: 292,
  serviceips: 152,
};

export { itemBytes };

/** A cluster: its size and its pod churn (creations + deletions per hour). */
export interface ClusterProfile {
  name: string;
  nodes: number;
  pods: number;
  churnPerHour: number;
  /** Pods per ReplicationController/Service pair (workload unit). Default 10. */
  podsPerUnit?: number;
  /** Namespaces the workload is spread over (a namespace's lists read only its share). Default 1. */
  namespaces?: number;
  /** CronJob fire times per hour, all CronJobs together (a `*\/1 * * * *` CronJob is 60). Default 0. */
  cronJobFiresPerHour?: number;
  /** HorizontalPodAutoscalers, each synced every HPA_SYNC_SECONDS. Default 0. */
  hpas?: number;
}

/**
 * What one CronJob wake-up costs the controller manager (lambdas/controllers/cronjob.ts under the cloud's
 * per-invocation StoreReader): the CronJobs and the Jobs of its namespace (2 Queries), the revision
 * counter (3 reads), the Job's create and the status write (2 TransactWriteItems, about 3 KB each).
 * Counted from the code path, not measured by test/cost.requests.test.ts. The Job's pods are workload
 * churn (ClusterProfile.churnPerHour).
 */
export const CRONJOB_WAKE_UP = { dynamoRequests: 7, rru: 7, wru: 12 } as const;

/** --horizontal-pod-autoscaler-sync-period: each HPA is woken this often (lambdas/controllers/horizontal.ts). */
export const HPA_SYNC_SECONDS = 15;
/**
 * What one HPA sync costs the controller manager as deployed (horizontal.ts under the per-invocation
 * StoreReader), counted from the code path, not measured by test/cost.requests.test.ts: the HPA (GetItem),
 * the served kinds (Query customresourcedefinitions), the target's scale (GetItem), the namespace's pods
 * twice (the selector's pods, and the PodMetrics read: 2 Queries, 2 counter reads), ~2 KB of pods a
 * namespace: 10 read units; the UpdateSchedule moving its wake-up on is one more AWS call. Its usage
 * (the usage item of each node its pods run on, HPA_USAGE_READ) and the nodes' reports and
 * demands while HPAs exist (usageDemandHour) are added by monthlyBill. A sync whose usage figures moved
 * also writes the HPA's status (and a scale when it scales): not counted.
 */
export const HPA_SYNC = { dynamoRequests: 7, awsCalls: 1, rru: 10, wru: 0 } as const;
/** An HPA sync's PodMetrics read, per node its pods run on (controllers/lambda.ts: node-usage.ts stats by the node's name; eventually consistent: half a read unit, counted here as one). */
export const HPA_USAGE_READ: OpCount = { apiRequests: 0, invocations: nothing, dynamo: { controllerManager: { 'GetItem usage': 1 } } };

/**
 * `kubectl top` deployed (lambdas/apiserver/node-usage.ts): usage is reported only on demand, so an idle
 * cluster pays nothing for it. While NodeMetrics/PodMetrics are read (a person's `kubectl top`, an HPA's
 * sync), each node's agent PUTs its usage every USAGE_REPORT_SECONDS (OPERATIONS.usageReport: an apiserver
 * invocation, the token read, one UpdateItem of its usage item; not audited), and each node is told again every
 * USAGE_RESEND_SECONDS (one conditional UpdateItem of 1 WRU and one SendMessage, inside a read; the agent's
 * long poll returns early: one more ReceiveMessage and a DeleteMessageBatch). Each read reads one usage
 * item per node it names (OPERATIONS.usageRead). The demand's writes and messages are counted from the
 * code path (test/top.deployed.test.ts checks one message per node per resend period).
 */
export const USAGE_REPORT_SECONDS = 30;
export const USAGE_RESEND_SECONDS = 180;
/** A node's usage item: its summary deflated (~40 bytes a pod: 1,218 bytes for 30 pods measured) and the keys. */
export const usageItemBytes = (podsPerNode: number) => 200 + 40 * podsPerNode;

/** What an hour of continuous `kubectl top`/HPA demand costs a cluster of `nodes` (reads not included: `readsPerHour` prices them). */
export function usageDemandHour(nodes: number, podsPerNode: number, readsPerHour = 0): { usd: number; reports: number; messages: number } {
  const reports = (nodes * 3600) / USAGE_REPORT_SECONDS;
  const demands = (nodes * 3600) / USAGE_RESEND_SECONDS;
  const reportOp = OPERATIONS.usageReport.dynamo.apiserver;
  const reportSeconds = (MEASURED_HANDLER_MS.perInvocation + Object.values(reportOp).reduce((a, b) => a + b, 0) * MEASURED_HANDLER_MS.perDynamoRequest) / 1000;
  const reportUsd =
    reports *
    (PRICES.lambdaPerRequest +
      reportSeconds * (LAMBDA_MEMORY_MB / 1024) * PRICES.lambdaPerGbSecondArm +
      PRICES.dynamoPerRru +
      Math.ceil(usageItemBytes(podsPerNode) / 1024) * PRICES.dynamoPerWru);
  // The demand: a conditional write and a message; the agent's early receive and its delete.
  const demandUsd = demands * (PRICES.dynamoPerWru + 3 * PRICES.sqsPerRequest);
  // Each read: the usage item of each node it names (eventually consistent: half a unit per 4 KB).
  const readUsd = readsPerHour * nodes * 0.5 * Math.max(1, Math.ceil(usageItemBytes(podsPerNode) / 4096)) * PRICES.dynamoPerRru;
  return { usd: reportUsd + demandUsd + readUsd, reports, messages: demands };
}

/** Bytes of one item of a kind in this cluster, and of each collection a Query reads (all in one namespace: the worst case). */
/** An index item of the pods-by-node index, less the pod's value it carries: pk "idx#pods-by-node#<node>", the pod's key, its revisions (storage/dynamodb.ts). */
const INDEX_ITEM_BYTES = 100;

export function clusterSizes(c: ClusterProfile, s: ItemSizes = REFERENCE_SIZES) {
  const units = c.pods ? Math.ceil(c.pods / (c.podsPerUnit ?? 10)) : 0;
  const podsPerNode = c.nodes ? c.pods / c.nodes : 0;
  // A node's reservation record holds the pods in flight to it, not its bound pods: the next reservation
  // there prunes those (scheduler/reservation.ts; until 2026-12-07 it grew ~50 bytes a pod of the node).
  // At this churn a node takes one pod at a time: the record is written with one entry, as measured.
  const reservation = s.reservations;
  const endpoints = s.endpoints + s.endpointsPerPod * Math.max(0, (c.podsPerUnit ?? 10) - 1);
  const endpointslices = s.endpointslices + s.endpointSlicesPerPod * Math.max(0, (c.podsPerUnit ?? 10) - 1);
  // A pod's index item carries its stored value (a covering index).
  const indexItem = INDEX_ITEM_BYTES + s.pods;
  const item: Record<string, number> = {
    counter: s.counter,
    token: s.token,
    namespaces: s.namespaces,
    nodes: s.nodes,
    leases: s.leases,
    reservations: reservation,
    podcidrs: s.podcidrs,
    pods: s.pods,
    events: s.events,
    services: s.services,
    endpoints,
    endpointslices,
    replicationcontrollers: s.replicationcontrollers,
    serviceips: s.serviceips,
  };
  const collection: Record<string, number> = {
    namespaces: 4 * s.namespaces,
    nodes: c.nodes * s.nodes,
    leases: c.nodes * (s.leases + reservation),
    podcidrs: c.nodes * s.podcidrs,
    pods: c.pods * s.pods,
    services: units * s.services,
    endpoints: units * endpoints,
    endpointslices: units * endpointslices,
    replicationcontrollers: units * s.replicationcontrollers,
    // One node's partition of the pods-by-node index: an item per pod, with its value.
    'pods-by-node': podsPerNode * indexItem,
  };
  // A workload namespace's share of each workload collection. All Leases live in kube-node-lease, read
  // by "Query leases kube-node-lease"; workload namespaces hold none.
  const ns = Math.max(1, c.namespaces ?? 1);
  const namespaceCollection: Record<string, number> = Object.fromEntries(
    Object.entries(collection).map(([k, v]) => [k, ['pods', 'services', 'endpoints', 'endpointslices', 'replicationcontrollers'].includes(k) ? v / ns : 0]),
  );
  namespaceCollection['leases kube-node-lease'] = collection.leases!;
  const objects = {
    count: 1 + (c.nodes + 2) + 4 + 4 * c.nodes + c.pods + 5 * units,
    bytes: s.counter + (c.nodes + 2) * s.token + Object.values(collection).reduce((a, b) => a + b, 0) + units * s.serviceips + (c.pods - podsPerNode) * indexItem,
  };
  return { item, collection, namespaceCollection, units, objects, podsPerNode };
}

export type Sizes = Pick<ReturnType<typeof clusterSizes>, 'item' | 'collection' | 'namespaceCollection'> & { podsPerNode?: number };

/** What a history entry holds beyond its object's item (its key as partition, writer, verb, time, expiry). */
export const HISTORY_ITEM_EXTRA_BYTES = 250;

/**
 * Read units of a create's ConditionCheck of its key's tombstone (storage/dynamodb.ts writeItems): priced as
 * a transactional read of a small item, 2 units, as IAM and the CDK class it a read; not measured on AWS.
 */
export const CREATE_TOMBSTONE_CHECK_RRU = 2;

/**
 * Write units of a write's one TransactWriteItems: 2 a KB of each item, rounded up item by item: the
 * object (at least 1), its log item, and `smallItems` of under 1 KB (count, charges, index, change,
 * tombstone). Also the per-namespace meter's (machinery/usage.ts).
 */
export function transactionWriteUnits(objectBytes: number, logItemBytes: number, smallItems: number): number {
  return 2 * (Math.max(1, Math.ceil(objectBytes / 1024)) + Math.ceil(logItemBytes / 1024) + smallItems);
}

/** Warm apiserver instances for the feed window's reads: 3x the average concurrency, at least 2. */
export function feedWindowInstances(apiserverSecondsPerMonth: number): number {
  return Math.max(2, Math.ceil((3 * apiserverSecondsPerMonth) / MONTH_SECONDS));
}

/**
 * What recipe `a` reads and writes beyond `b`, function by function: negative where `b` does more, accesses
 * the same in both left out. Also the measurements' (test/cost.requests: one operation less another).
 */
export function recipeDifference(a: OpCount['dynamo'], b: OpCount['dynamo']): OpCount['dynamo'] {
  const out: OpCount['dynamo'] = {};
  for (const fn of FUNCTIONS) {
    const m: Record<string, number> = {};
    for (const k of new Set([...Object.keys(a[fn] ?? {}), ...Object.keys(b[fn] ?? {})])) {
      const d = (a[fn]?.[k] ?? 0) - (b[fn]?.[k] ?? 0);
      if (d !== 0) m[k] = d;
    }
    if (Object.keys(m).length) out[fn] = m;
  }
  return out;
}

/** What `op` does beyond `base` (both measured): the first reader's part of an operation others share. */
function diffOp(op: OpCount, base: OpCount): OpCount {
  return { apiRequests: op.apiRequests - base.apiRequests, invocations: nothing, dynamo: recipeDifference(op.dynamo, base.dynamo) };
}

/** A log item's bytes for a write of an object of `bytes` (the value, plus the previous value for updates and deletes). */
export function logBytes(bytes: number, type: string): number {
  const value = Math.max(0, bytes - 70);
  return type === 'create' ? value + 100 : 2 * value + 120;
}

/**
 * Request units and DynamoDB requests of one access, by DynamoDB's rules: strongly consistent reads
 * (all of Skiff's) cost 1 RRU per 4 KB (a Query sums its items before rounding; an absent item still
 * costs 1; a Query reads at most 1 MB per request); a write costs 1 WRU per 1 KB (the counter's ADD, the
 * watermark's SET), a transactional one 2 WRU per 1 KB of each item (object, log item).
 */
export function accessCapacity(access: string, sizes: Sizes): { rru: number; wru: number; requests: number; kbRead: number } {
  const [command, kind = '', type = ''] = access.split(' ');
  const item = sizes.item[kind] ?? 0;
  if (command === 'GetItem') return { rru: Math.max(1, Math.ceil(item / 4096)), wru: 0, requests: 1, kbRead: item / 1024 };
  if (command === 'Query' && kind === 'changes' && type === 'more') {
    // One more change in a feed's Query, riding on its feed item: an Endpoints update's log attributes
    // but its previous value (storage/dynamodb.ts feedItem; with it until 2026-12-06), added to the
    // Query's sum before rounding; no request of its own.
    const bytes = logBytes(sizes.item.endpoints ?? 0, 'create');
    return { rru: bytes / 4096, wru: 0, requests: 0, kbRead: bytes / 1024 };
  }
  if (command === 'Query' && kind === 'log') {
    // A resync's read of one revision's log item (its partition's Query, when a run has few): the item.
    return { rru: Math.max(1, Math.ceil(item / 4096)), wru: 0, requests: 1, kbRead: item / 1024 };
  }
  if (command === 'Query') {
    const bytes = (type === 'namespace' ? sizes.namespaceCollection[kind] : type ? sizes.namespaceCollection[`${kind} ${type}`] : sizes.collection[kind]) ?? 0;
    return { rru: Math.max(1, Math.ceil(bytes / 4096)), wru: 0, requests: Math.max(1, Math.ceil(bytes / 1048576)), kbRead: bytes / 1024 };
  }
  if (command === 'BatchGetItem' && kind === 'pods') {
    // A node's pods (the one BatchGetItem of pollPods): each item read and rounded up on its own, 100 a request.
    const n = sizes.podsPerNode ?? 1;
    return { rru: n * Math.max(1, Math.ceil(item / 4096)), wru: 0, requests: Math.max(1, Math.ceil(n / 100)), kbRead: (n * item) / 1024 };
  }
  if (command === 'BatchGetItem') {
    // One item of each kind named ("counter,settled": the revision counter and the settled watermark every
    // list reads; "count": the group a create joins, read before it takes a revision), each rounded up.
    const kinds = kind.split(',');
    const bytes = kinds.map((k) => sizes.item[k] ?? 0);
    return { rru: bytes.reduce((u, b) => u + Math.max(1, Math.ceil(b / 4096)), 0), wru: 0, requests: 1, kbRead: bytes.reduce((a, b) => a + b, 0) / 1024 };
  }
  if (command === 'PutItem') {
    // An object's history entry (storage/history.ts, on by default in the cloud): the object's value and
    // who wrote it, verb, time, expiry: ~250 bytes more than the object item (an estimate).
    const resource = kind.startsWith('history:') ? kind.slice('history:'.length) : kind;
    return { rru: 0, wru: Math.ceil(((sizes.item[resource] ?? 0) + HISTORY_ITEM_EXTRA_BYTES) / 1024), requests: 1, kbRead: 0 };
  }
  if (command === 'UpdateItem') {
    // The revision counter's ADD and the settled watermark's SET: a small item, one unit each.
    return { rru: 0, wru: Math.max(1, Math.ceil(item / 1024)), requests: 1, kbRead: 0 };
  }
  if (command === 'TransactWriteItems') {
    // The namespace's count item, each charge (an owner's count of its dependents: apiserver/dependents.ts),
    // a pod's index item (every write of a bound pod: its key and value, ~570 bytes) and a Service's or
    // Endpoints' change item (the change without its previous value, under 1 KB for a 10-address
    // Endpoints) are under 1 KB: one unit each.
    const charges = access.split(' +charge').length - 1;
    // A delete also puts its key's tombstone (~100 bytes: one unit), and a create checks it
    // (CREATE_TOMBSTONE_CHECK_RRU): storage/dynamodb.ts writeItems.
    const count = (access.includes(' +count') ? 1 : 0) + charges + (access.includes(' +index') ? 1 : 0) + (access.includes(' +change') ? 1 : 0) + (type === 'delete' ? 1 : 0);
    return { rru: type === 'create' ? CREATE_TOMBSTONE_CHECK_RRU : 0, wru: transactionWriteUnits(item, logBytes(item, type), count), requests: 1, kbRead: 0 };
  }
  throw new Error(`cost model: unknown access ${access}`);
}

/** Sums accessCapacity over a function's recipe. */
export function recipeCapacity(recipe: Record<string, number> | undefined, sizes: Sizes) {
  const out = { rru: 0, wru: 0, requests: 0, kbRead: 0 };
  for (const [access, n] of Object.entries(recipe ?? {})) {
    const c = accessCapacity(access, sizes);
    out.rru += n * c.rru;
    out.wru += n * c.wru;
    out.requests += n * c.requests;
    out.kbRead += n * c.kbRead;
  }
  return out;
}

/** The operation without its reads of the log (a resync's, summed per run by monthlyBill). */
function withoutLog(op: OpCount): OpCount {
  const dynamo: OpCount['dynamo'] = {};
  for (const [fn, recipe] of Object.entries(op.dynamo) as [Fn, Record<string, number>][]) dynamo[fn] = Object.fromEntries(Object.entries(recipe).filter(([k]) => !k.endsWith(' log')));
  return { ...op, dynamo };
}

/** The log revisions a resync operation reads (its scheduler's Queries of the log: one per revision when few). */
function logAccesses(op: OpCount): number {
  return op.dynamo.scheduler?.['Query log'] ?? 0;
}

// ---- the agents ----

export interface AgentSettings {
  /** poll: informers re-list every pollSeconds (design §5); watch: each holds a watch open through the apiserver. */
  follow: 'poll' | 'watch';
  pollSeconds: number;
  /** Lease renewal (heartbeat) interval; the Lease's declared duration is 4× this (node-agent/node.ts). */
  leaseSeconds: number;
  /**
   * Informers per collection (node-agent/agent.ts, proxy.ts, dns.ts): one for the node's pods, and one
   * each for Services and Endpoints, shared by the proxy and DNS (two each before they were shared).
   */
  informers: { pods: number; services: number; endpoints: number };
  /** Where agents' (and users') requests enter: the CloudFront front door (design §3), or the Function URL. */
  via: 'frontDoor' | 'functionUrl';
  /** Whether a node's heartbeat Lease write wakes each loop function (neither: streamFilterPatterns leaves them out). */
  leaseWakes: { scheduler: boolean; controllerManager: boolean };
  /** The loops' scheduled resync (EventBridge rule; 5 minutes by default). */
  resyncSeconds: number;
  /**
   * How often a resync reads everything (stream.ts FULL_RESYNC_MS); the others read the log since the
   * last. Absent: every resync reads everything (as before 2026-12-05).
   */
  fullResyncSeconds?: number;
  /** The agent rewrites its unchanged Node status this often (--status-report-seconds; kubelet's is NODE_STATUS_REFRESH_SECONDS). */
  statusRefreshSeconds: number;
  /** Whether a pod status write is retried from a stale cache until the next poll (see podStatusConflict). */
  staleStatusConflicts: boolean;
  /**
   * The push channel (lambdas/controllers/node-notifier.ts): each agent long-polls its SQS queue and
   * re-lists its pods when told; its pods are then polled every podPollSeconds only (the safety net),
   * Services and Endpoints every pollSeconds as before. False: the poll alone.
   */
  push: false | { podPollSeconds: number };
  /**
   * After their first list, agents ask only what changed in Services and Endpoints since their last look
   * (node-agent/informer.ts changesOnly, served from the store's change feeds); false: a full list each poll.
   */
  changesOnly: boolean;
}

/**
 * What a deployed cluster does by default (infra/nodes.ts, infra/skiff-cluster.ts): agents are told of
 * their pods' changes through the push channel (their pods' poll, every 300 s, is its safety net), poll
 * Services and Endpoints every 75 s (the channel's idle long polls cost what 60 s would), renew their Lease every 300 s, the proxy and DNS share one Services and one Endpoints
 * informer, agents call the Function URL, heartbeat Leases wake no loop (streamFilterPatterns), the
 * loops resync every 5 minutes, an unchanged Node status is rewritten hourly, and a pod's status write
 * keeps the written object (no stale-cache conflicts).
 */
export const CURRENT_AGENT: AgentSettings = {
  follow: 'poll',
  pollSeconds: 75,
  leaseSeconds: 300,
  informers: { pods: 1, services: 1, endpoints: 1 },
  via: 'functionUrl',
  leaseWakes: { scheduler: false, controllerManager: false },
  resyncSeconds: 300,
  fullResyncSeconds: 3600,
  statusRefreshSeconds: 3600,
  staleStatusConflicts: false,
  push: { podPollSeconds: 300 },
  changesOnly: true,
};

/** Before the cost work: 10 s polls, 60 s leases, five informers, through CloudFront, leases waking both loops, 1-minute resync. */
export const NAIVE_AGENT: AgentSettings = {
  follow: 'poll',
  pollSeconds: 10,
  leaseSeconds: 60,
  informers: { pods: 1, services: 2, endpoints: 2 },
  via: 'frontDoor',
  leaseWakes: { scheduler: true, controllerManager: true },
  resyncSeconds: 60,
  statusRefreshSeconds: NODE_STATUS_REFRESH_SECONDS,
  staleStatusConflicts: true,
  push: false,
  changesOnly: false,
};

// ---- the bill ----

export interface Usage {
  lambdaRequests: Record<Fn, number>;
  lambdaSeconds: Record<Fn, number>;
  rru: number;
  wru: number;
  cloudFrontRequests: number;
  cloudFrontBytes: number;
  storageGb: number;
  logBytes: number;
  /** Audit events written to the audit log group (CloudWatch Logs ingestion). */
  auditBytes: number;
  /** EventBridge Scheduler invocations (CronJob wake-ups). */
  schedulerInvocations: number;
  /** SQS requests of the push channel (long polls, sends, deletes). */
  sqsRequests: number;
  /** Object writes (transactions), all functions together. */
  writes: number;
}

export interface BillLine {
  item: string;
  quantity: string;
  usd: number;
}

export interface Bill {
  cluster: ClusterProfile;
  agent: AgentSettings;
  usage: Usage;
  lines: BillLine[];
  /** Everything that grows with use (all lines but the fixed alarms). */
  usageUsd: number;
  /** usageUsd plus the alarms. */
  totalUsd: number;
  /** totalUsd less the always-free allowances (if the account has nothing else using them). */
  afterFreeTierUsd: number;
  /** Where the money goes: usd per source (agent polls, heartbeats, resync, churn, watches). */
  bySource: Record<string, number>;
  eksUsd: number;
}

const GB = 1024 ** 3;

/** The monthly bill of a cluster whose agents run with the given settings. */
export function monthlyBill(cluster: ClusterProfile, agent: AgentSettings = CURRENT_AGENT, sizes: ItemSizes = REFERENCE_SIZES): Bill {
  const cs = clusterSizes(cluster, sizes);
  const memGb = LAMBDA_MEMORY_MB / 1024;
  const usage: Usage = {
    lambdaRequests: { apiserver: 0, scheduler: 0, controllerManager: 0 },
    lambdaSeconds: { apiserver: 0, scheduler: 0, controllerManager: 0 },
    rru: 0,
    wru: 0,
    cloudFrontRequests: 0,
    cloudFrontBytes: 0,
    storageGb: 0,
    logBytes: 0,
    auditBytes: 0,
    schedulerInvocations: 0,
    sqsRequests: 0,
    writes: 0,
  };
  const bySource: Record<string, number> = {};
  // Object writes reaching each loop function's filter, per month (invocations are derived below).
  const matchingWrites = { scheduler: 0, controllerManager: 0 };
  let writesPerMonth = 0;

  const cost = (u: Partial<{ req: number; gbs: number; rru: number; wru: number; cf: number; cfBytes: number }>) =>
    (u.req ?? 0) * PRICES.lambdaPerRequest +
    (u.gbs ?? 0) * PRICES.lambdaPerGbSecondArm +
    (u.rru ?? 0) * PRICES.dynamoPerRru +
    (u.wru ?? 0) * PRICES.dynamoPerWru +
    (u.cf ?? 0) * PRICES.cloudFrontPerHttpsRequest +
    ((u.cfBytes ?? 0) / GB) * PRICES.cloudFrontPerGbOut;

  /** Adds `perMonth` runs of an operation; `wakes` drops stream work a filter would no longer deliver. */
  function add(source: string, op: OpCount, perMonth: number, wakes = { scheduler: true, controllerManager: true }): void {
    if (perMonth <= 0) return;
    let usd = 0;
    const api = op.apiRequests * perMonth;
    if (api) {
      usage.lambdaRequests.apiserver += api;
      usage.logBytes += api * LOG_BYTES_PER_INVOCATION;
      // Each request's audit event, but those the default policy leaves out.
      usage.auditBytes += (op.audited ?? op.apiRequests) * perMonth * AUDIT_EVENT_BYTES;
      // A response: the objects a list returns (a pod poll returns only the node's pods), plus about 1 KB.
      const listed =
        op === OPERATIONS.pollPods ? cs.podsPerNode * cs.item.pods! : op === OPERATIONS.pollServices ? cs.collection.services! : op === OPERATIONS.pollEndpoints ? cs.collection.endpoints! : 0;
      const bytes = (op.apiRequests * 1024 + listed) * perMonth;
      const cf = agent.via === 'frontDoor' ? api : 0;
      usage.cloudFrontRequests += cf;
      usage.cloudFrontBytes += agent.via === 'frontDoor' ? bytes : 0;
      usd += cost({ req: api, cf, cfBytes: agent.via === 'frontDoor' ? bytes : 0 });
    }
    for (const fn of FUNCTIONS) {
      if (fn !== 'apiserver' && !wakes[fn as 'scheduler' | 'controllerManager']) continue;
      const cap = recipeCapacity(op.dynamo[fn], cs);
      const seconds =
        ((fn === 'apiserver' ? op.apiRequests * MEASURED_HANDLER_MS.perInvocation : 0) + cap.requests * MEASURED_HANDLER_MS.perDynamoRequest + cap.kbRead * MS_PER_KB_READ) / 1000;
      usage.lambdaSeconds[fn] += seconds * perMonth;
      usage.rru += cap.rru * perMonth;
      usage.wru += cap.wru * perMonth;
      usd += cost({ gbs: seconds * perMonth * memGb, rru: cap.rru * perMonth, wru: cap.wru * perMonth });
      if (fn !== 'apiserver') {
        matchingWrites[fn] += op.invocations[fn] * perMonth;
        // Each invocation's own cost is added with the batching below; count it here for the source.
        usd += cost({ req: op.invocations[fn] * perMonth, gbs: (op.invocations[fn] * perMonth * MEASURED_HANDLER_MS.perInvocation * memGb) / 1000 });
      }
    }
    writesPerMonth += Object.values(op.dynamo).reduce((n, r) => n + Object.entries(r ?? {}).filter(([a]) => a.startsWith('TransactWriteItems')).reduce((m, [, k]) => m + k, 0), 0) * perMonth;
    bySource[source] = (bySource[source] ?? 0) + usd;
  }

  const O = OPERATIONS;
  const perSecond = (s: number) => MONTH_SECONDS / s;
  /** Catch-ups a month that find Endpoints changes (the agents' changesOnly polls). */
  let feedCatchUps = 0;

  // Node heartbeats: the Lease every leaseSeconds; the Node GET each time; its status every statusRefreshSeconds.
  const L = agent.leaseSeconds;
  const statusEvery = Math.ceil(agent.statusRefreshSeconds / L) * L;
  add('heartbeats', O.leaseRenewal, cluster.nodes * perSecond(L));
  add('heartbeats', O.leaseWake, cluster.nodes * perSecond(L), agent.leaseWakes);
  add('heartbeats', O.nodeStatusCheck, cluster.nodes * (perSecond(L) - perSecond(statusEvery)));
  add('heartbeats', O.nodeStatusWrite, cluster.nodes * perSecond(statusEvery));

  // Following pods, Services and Endpoints.
  const informers = agent.informers.pods + agent.informers.services + agent.informers.endpoints;
  if (agent.follow === 'poll') {
    const polls = cluster.nodes * perSecond(agent.pollSeconds);
    const podPolls = cluster.nodes * perSecond(agent.push ? agent.push.podPollSeconds : agent.pollSeconds);
    add('agent polls', O.pollPods, podPolls * agent.informers.pods);
    // A list of more than LIST_PAGE objects is that many pages, each one apiserver request (the table
    // reads the same bytes; each page's two counter reads are left out).
    const paged = (op: OpCount, objects: number): OpCount => ({ ...op, apiRequests: op.apiRequests * Math.max(1, Math.ceil(objects / LIST_PAGE)) });
    if (agent.changesOnly) {
      // Each poll is a catch-up. Services change rarely (none here). Endpoints change with pod churn: a
      // pod's creation (once ready) or deletion changes its Service's Endpoints once (the operations above
      // measure a pod no Service selects; this assumes every churned pod has one). k changes per poll
      // (Poisson): a poll finds some with probability 1 - e^-k. Until 2026-12-07 each such poll read the
      // changes itself (each past the first adding its feed item's bytes to the Query; before 2026-12-06 a
      // log item of one read unit each).
      const k = (cluster.churnPerHour / 3600) * agent.pollSeconds;
      const withChanges = 1 - Math.exp(-k);
      add('agent polls', O.catchUpUnchanged, polls * (agent.informers.services + agent.informers.endpoints));
      // Every catch-up that finds changes checks where it stands; the changes themselves are read by the
      // function, through its window of the feed, once for all the nodes it serves (priced below, once the
      // apiserver's time is known: it sets how many instances there are).
      add('agent polls', O.catchUpPerChangeShared, polls * agent.informers.endpoints * withChanges);
      feedCatchUps = polls * agent.informers.endpoints * withChanges;
    } else {
      add('agent polls', paged(O.pollServices, cs.units), polls * agent.informers.services);
      add('agent polls', paged(O.pollEndpoints, cs.units), polls * agent.informers.endpoints);
    }
  }

  // Pod churn: half creations (create, bind, start), half deletions (delete, terminate).
  const starts = (cluster.churnPerHour / 2) * MONTH_HOURS;
  if (agent.push) {
    // The push channel: each agent's long poll returns empty every PUSH_WAIT_SECONDS while idle. A pod
    // bound and a pod deleted each send its node one message (send, receive, delete) and cost it one
    // list of its pods; status writes send nothing.
    const idlePolls = cluster.nodes * perSecond(PUSH_WAIT_SECONDS);
    const nudges = 2 * starts;
    usage.sqsRequests += idlePolls + 3 * nudges;
    bySource['push channel (SQS)'] = (idlePolls + 3 * nudges) * PRICES.sqsPerRequest;
    add('push channel lists', O.pollPods, nudges);
  }
  add('pod churn', O.podCreate, starts);
  add('pod churn', O.podStart, starts);
  if (agent.follow === 'poll' && agent.staleStatusConflicts) {
    // After its status write the agent's cache is stale until its next poll (uniform in [0, poll)):
    // one conflict at once (the container start event re-syncs the pod), then one per retry interval.
    add('pod status conflicts', O.podStatusConflict, starts * (1 + agent.pollSeconds / 2 / STATUS_CONFLICT_RETRY_SECONDS));
  }
  add('pod churn', O.podDelete, starts);
  add('pod churn', O.podTerminate, starts);
  // The pods of units (an RC and a Service each) move their Endpoints, EndpointSlice and RC status when
  // they start and end; a CronJob's pods (a Job's, no Service) do not.
  const unitLives = Math.max(0, (cluster.churnPerHour - 2 * (cluster.cronJobFiresPerHour ?? 0)) / 2) * MONTH_HOURS;
  add('pod churn', O.unitPodStart, unitLives);
  add('pod churn', O.unitPodEnd, unitLives);

  // The scheduled resync of both loops: everything every fullResyncSeconds (an hour), else what changed.
  const resyncs = perSecond(agent.resyncSeconds);
  const fulls = perSecond(Math.max(agent.resyncSeconds, agent.fullResyncSeconds ?? agent.resyncSeconds));
  const fromLog = resyncs - fulls;
  const extraNodes = Math.max(0, cluster.nodes - 3);
  add('resync', O.resyncScheduler, fulls);
  add('resync', O.resyncControllerManager, fulls);
  add('resync', O.resyncSchedulerPerNode, fulls * extraNodes);
  add('resync', O.resyncSchedulerPerReservation, fulls * Math.min(cluster.nodes, cluster.pods));
  add('resync', O.resyncControllerManagerPerNode, fulls * extraNodes);
  add('resync', O.resyncSchedulerPerUnit, fulls * cs.units);
  add('resync', O.resyncControllerManagerPerUnit, fulls * cs.units);
  if (fromLog > 0) {
    add('resync', O.resyncChangedScheduler, fromLog);
    add('resync', O.resyncChangedControllerManager, fromLog);
    add('resync', O.resyncChangedPerNode, fromLog * extraNodes);
    // What changed in one period: heartbeats and pod lives (a life's writes read by the next run or two).
    const beats = (cluster.nodes * agent.resyncSeconds) / agent.leaseSeconds;
    const lives = ((cluster.churnPerHour / 2) * agent.resyncSeconds) / 3600;
    add('resync', withoutLog(O.resyncChangedPerPodLife), fromLog * lives);
    // Their log items, read by each function in one Query per partition the run's revisions touch (and
    // one GetItem: is the log still there): the units by bytes, every item taken as a pod update's.
    const revisions = beats * logAccesses(O.resyncChangedPerHeartbeat) + lives * logAccesses(O.resyncChangedPerPodLife);
    if (revisions > 0) {
      const queries = Math.min(LOG_PARTITIONS, Math.ceil(revisions));
      const units = Math.max(queries, Math.ceil((revisions * logBytes(sizes.pods, 'update')) / 4096));
      // Counted as that many one-unit Queries: the units right, the requests (Lambda time) a little over.
      const log = { 'GetItem log': 1, 'Query log': units };
      add('resync', { apiRequests: 0, invocations: nothing, dynamo: { scheduler: log, controllerManager: log } }, fromLog);
    }
  }
  for (const fn of ['scheduler', 'controllerManager'] as const) {
    usage.lambdaRequests[fn] += resyncs;
    usage.lambdaSeconds[fn] += (resyncs * MEASURED_HANDLER_MS.perInvocation) / 1000;
    usage.logBytes += resyncs * (LOG_BYTES_PER_INVOCATION + RESYNC_LOG_BYTES);
  }
  bySource.resync = (bySource.resync ?? 0) + cost({ req: 2 * resyncs, gbs: (2 * resyncs * MEASURED_HANDLER_MS.perInvocation * memGb) / 1000 });

  // CronJob wake-ups (lambdas/controllers/wakeups.ts): each fire time is one EventBridge Scheduler
  // invocation of the controller manager, which reconciles that one CronJob.
  const wakeUps = (cluster.cronJobFiresPerHour ?? 0) * MONTH_HOURS;
  if (wakeUps > 0) {
    const seconds = (MEASURED_HANDLER_MS.perInvocation + CRONJOB_WAKE_UP.dynamoRequests * MEASURED_HANDLER_MS.perDynamoRequest) / 1000;
    usage.schedulerInvocations += wakeUps;
    usage.lambdaRequests.controllerManager += wakeUps;
    usage.lambdaSeconds.controllerManager += wakeUps * seconds;
    usage.logBytes += wakeUps * LOG_BYTES_PER_INVOCATION;
    usage.rru += wakeUps * CRONJOB_WAKE_UP.rru;
    usage.wru += wakeUps * CRONJOB_WAKE_UP.wru;
    bySource['cronjob wake-ups'] =
      cost({ req: wakeUps, gbs: wakeUps * seconds * memGb, rru: wakeUps * CRONJOB_WAKE_UP.rru, wru: wakeUps * CRONJOB_WAKE_UP.wru }) + wakeUps * PRICES.schedulerPerInvocation;
  }

  // HPA syncs (lambdas/controllers/horizontal.ts): each HPA's EventBridge Scheduler one-time schedule
  // wakes the controller manager every HPA_SYNC_SECONDS while the HPA exists (wakeups.ts).
  const hpaSyncs = ((cluster.hpas ?? 0) * MONTH_HOURS * 3600) / HPA_SYNC_SECONDS;
  if (hpaSyncs > 0) {
    const seconds = (MEASURED_HANDLER_MS.perInvocation + (HPA_SYNC.dynamoRequests + HPA_SYNC.awsCalls) * MEASURED_HANDLER_MS.perDynamoRequest) / 1000;
    usage.schedulerInvocations += hpaSyncs;
    usage.lambdaRequests.controllerManager += hpaSyncs;
    usage.lambdaSeconds.controllerManager += hpaSyncs * seconds;
    usage.logBytes += hpaSyncs * LOG_BYTES_PER_INVOCATION;
    usage.rru += hpaSyncs * HPA_SYNC.rru;
    usage.wru += hpaSyncs * HPA_SYNC.wru;
    bySource['hpa syncs'] = cost({ req: hpaSyncs, gbs: hpaSyncs * seconds * memGb, rru: hpaSyncs * HPA_SYNC.rru, wru: hpaSyncs * HPA_SYNC.wru }) + hpaSyncs * PRICES.schedulerPerInvocation;
    // Their usage (node-usage.ts): each sync reads the nodes its pods run on (spread over all, at most one a
    // pod); while HPAs exist (here all month) every node reports every USAGE_REPORT_SECONDS and is told
    // again every USAGE_RESEND_SECONDS (a conditional write, a message, the agent's early receive and delete).
    add('hpa usage reads', HPA_USAGE_READ, hpaSyncs * Math.min(cluster.nodes, Math.ceil(cluster.pods / cluster.hpas!)));
    const demand = usageDemandHour(cluster.nodes, cs.podsPerNode);
    add('hpa usage reports', O.usageReport, demand.reports * MONTH_HOURS);
    const demands = demand.messages * MONTH_HOURS;
    usage.wru += demands;
    usage.sqsRequests += 3 * demands;
    usage.lambdaSeconds.controllerManager += (demands * 2 * MEASURED_HANDLER_MS.perDynamoRequest) / 1000;
    bySource['hpa usage demands'] = cost({ wru: demands, gbs: (demands * 2 * MEASURED_HANDLER_MS.perDynamoRequest * memGb) / 1000 }) + 3 * demands * PRICES.sqsPerRequest;
  }

  if (feedCatchUps > 0) {
    // The Endpoints changes the catch-ups find, read by each apiserver instance through its window of the
    // feed (storage/dynamodb.ts FeedWindow). An instance reads the feed when a catch-up comes after a
    // change it has not read (the feed Query, and the marker a fresh instance reads), and reads each change
    // once. With catch-ups at rate L spread over I instances and changes at rate c, a catch-up finds one
    // unread with probability 1 - e^(-c I / L): L (1 - e^(-cI/L)) reads a month, at most I c.
    // I, the warm instances: 3x the apiserver's average concurrency, at least 2 (an assumption: Lambda
    // keeps about the peak concurrency warm; more instances read more).
    const instances = feedWindowInstances(usage.lambdaSeconds.apiserver);
    const changes = cluster.churnPerHour * MONTH_HOURS;
    const reads = feedCatchUps * (1 - Math.exp(-(changes * instances) / feedCatchUps));
    add('agent polls', diffOp(O.catchUpPerChange, O.catchUpPerChangeShared), reads);
    add('agent polls', { apiRequests: 0, invocations: nothing, dynamo: { apiserver: { 'Query changes more': 1 } } }, Math.max(0, changes * instances - reads));
  }

  // Cost per namespace (lambdas/storage/usage-store.ts): each function instance adds what it counted to one
  // table item per namespace it touched (an UpdateItem ADD, 1 WRU), every USAGE_FLUSH_SECONDS at most. The
  // apiserver is called every few seconds (heartbeats): kube-node-lease, the cluster and the namespaces
  // with requests; the controller manager's resync reconciles in every namespace and its own few.
  const usageFlushes = MONTH_SECONDS / USAGE_FLUSH_SECONDS;
  const usageWrites = usageFlushes * (USAGE_FLUSH_BASE_ITEMS + 2 * (cluster.namespaces ?? 1));
  {
    const seconds = (usageWrites * MEASURED_HANDLER_MS.perDynamoRequest) / 1000;
    usage.lambdaSeconds.apiserver += seconds / 2;
    usage.lambdaSeconds.controllerManager += seconds / 2;
    usage.wru += usageWrites;
    bySource['cost per namespace counting'] = cost({ gbs: seconds * memGb, wru: usageWrites });
  }

  if (agent.follow === 'watch') {
    // Each informer holds a watch through the apiserver: a function running the whole month, reading the
    // revision counter every 150 ms and the log after every write; it is re-opened (and re-listed) every
    // MAX_WATCH_SECONDS.
    const watches = cluster.nodes * informers;
    const reopen = perSecond(MAX_WATCH_SECONDS);
    add('agent watches (re-lists)', O.pollPods, cluster.nodes * agent.informers.pods * reopen);
    add('agent watches (re-lists)', O.pollServices, cluster.nodes * agent.informers.services * reopen);
    add('agent watches (re-lists)', O.pollEndpoints, cluster.nodes * agent.informers.endpoints * reopen);
    const gbs = watches * MONTH_SECONDS * memGb;
    const counterReads = watches * (MONTH_SECONDS * 1000) / WATCH_COUNTER_POLL_MS;
    usage.lambdaRequests.apiserver += watches * reopen;
    usage.lambdaSeconds.apiserver += watches * MONTH_SECONDS;
    usage.rru += counterReads;
    const cf = agent.via === 'frontDoor' ? watches * reopen : 0;
    // A bookmark (~200 bytes) every 5 s keeps each watch's response flowing.
    const cfBytes = agent.via === 'frontDoor' ? watches * (MONTH_SECONDS / 5) * 200 : 0;
    usage.cloudFrontRequests += cf;
    usage.cloudFrontBytes += cfBytes;
    bySource['agent watches (held open)'] = cost({ req: watches * reopen, gbs, rru: counterReads, cf, cfBytes });
    // Every write in the cluster is read from the log by every open watch (at least 1 RRU each).
    const logReads = watches * writesPerMonth;
    usage.rru += logReads;
    bySource['agent watches (held open)'] += cost({ rru: logReads });
  }

  // Stream invocations: one per matching write while writes are sparse; with a batching window w, a
  // function woken at rate r is invoked r / (1 + r·w) times per second (each invocation takes the
  // window's writes with it). The DynamoDB work per write was added above, unbatched (conservative).
  for (const fn of ['scheduler', 'controllerManager'] as const) {
    const r = matchingWrites[fn] / MONTH_SECONDS;
    const invocations = (r / (1 + r * BATCHING_WINDOW_SECONDS)) * MONTH_SECONDS;
    usage.lambdaRequests[fn] += invocations;
    usage.lambdaSeconds[fn] += (invocations * MEASURED_HANDLER_MS.perInvocation) / 1000;
    usage.logBytes += invocations * LOG_BYTES_PER_INVOCATION;
    // The sources were charged one invocation per write; give back what batching saves.
    const saved = matchingWrites[fn] - invocations;
    bySource['stream batching (saved)'] =
      (bySource['stream batching (saved)'] ?? 0) - cost({ req: saved, gbs: (saved * MEASURED_HANDLER_MS.perInvocation * memGb) / 1000 });
  }

  usage.writes = writesPerMonth;
  // Storage: the objects, plus an hour of log items (TTL), plus 100 bytes of per-item overhead each.
  const logItems = Math.min(writesPerMonth, (writesPerMonth / MONTH_HOURS) * 1);
  usage.storageGb = (cs.objects.bytes + cs.objects.count * 100 + logItems * (1200 + 100)) / GB;

  const lambdaRequests = FUNCTIONS.reduce((n, f) => n + usage.lambdaRequests[f], 0);
  const lambdaGbs = FUNCTIONS.reduce((n, f) => n + usage.lambdaSeconds[f], 0) * memGb;
  const storageUsd = usage.storageGb * (PRICES.dynamoStoragePerGbMonth + PRICES.dynamoPitrPerGbMonth);
  const cfUsd = usage.cloudFrontRequests * PRICES.cloudFrontPerHttpsRequest + (usage.cloudFrontBytes / GB) * PRICES.cloudFrontPerGbOut;
  const logsUsd = (usage.logBytes / GB) * PRICES.cloudWatchLogsPerGbIngested;
  const auditUsd = (usage.auditBytes / GB) * PRICES.cloudWatchLogsPerGbIngested;
  bySource['audit log'] = auditUsd;
  const alarmsUsd = ALARMS * PRICES.cloudWatchPerAlarmMonth;
  bySource['storage, logs'] = storageUsd + logsUsd;
  const fmt = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(n < 10 ? 2 : 0));
  const lines: BillLine[] = [
    { item: 'Lambda requests', quantity: fmt(lambdaRequests), usd: lambdaRequests * PRICES.lambdaPerRequest },
    { item: 'Lambda GB-s (arm64)', quantity: fmt(lambdaGbs), usd: lambdaGbs * PRICES.lambdaPerGbSecondArm },
    { item: 'DynamoDB WRU', quantity: fmt(usage.wru), usd: usage.wru * PRICES.dynamoPerWru },
    { item: 'DynamoDB RRU', quantity: fmt(usage.rru), usd: usage.rru * PRICES.dynamoPerRru },
    { item: 'DynamoDB storage + PITR', quantity: `${(usage.storageGb * 1024).toFixed(1)} MB`, usd: storageUsd },
    { item: 'CloudFront', quantity: `${fmt(usage.cloudFrontRequests)} req, ${(usage.cloudFrontBytes / GB).toFixed(2)} GB`, usd: cfUsd },
    { item: 'CloudWatch Logs', quantity: `${(usage.logBytes / GB).toFixed(2)} GB`, usd: logsUsd },
    { item: 'CloudWatch Logs (audit log)', quantity: `${(usage.auditBytes / GB).toFixed(2)} GB`, usd: auditUsd },
    { item: 'EventBridge schedule', quantity: fmt(2 * resyncs), usd: 2 * resyncs * PRICES.eventBridgeScheduledEvent },
    { item: 'EventBridge Scheduler (CronJob wake-ups)', quantity: fmt(usage.schedulerInvocations), usd: usage.schedulerInvocations * PRICES.schedulerPerInvocation },
    { item: 'SQS (push channel to nodes)', quantity: fmt(usage.sqsRequests), usd: usage.sqsRequests * PRICES.sqsPerRequest },
  ];
  const usageUsd = lines.reduce((n, l) => n + l.usd, 0);
  lines.push({ item: 'CloudWatch alarms (fixed)', quantity: String(ALARMS), usd: alarmsUsd });
  const totalUsd = usageUsd + alarmsUsd;
  const free =
    Math.min(lambdaRequests, FREE_TIER.lambdaRequests) * PRICES.lambdaPerRequest +
    Math.min(lambdaGbs, FREE_TIER.lambdaGbSeconds) * PRICES.lambdaPerGbSecondArm +
    Math.min(usage.cloudFrontRequests, FREE_TIER.cloudFrontRequests) * PRICES.cloudFrontPerHttpsRequest +
    Math.min(usage.cloudFrontBytes / GB, FREE_TIER.cloudFrontGbOut) * PRICES.cloudFrontPerGbOut +
    Math.min(usage.storageGb, FREE_TIER.dynamoStorageGb) * PRICES.dynamoStoragePerGbMonth +
    Math.min((usage.logBytes + usage.auditBytes) / GB, FREE_TIER.cloudWatchLogsGb) * PRICES.cloudWatchLogsPerGbIngested +
    Math.min(ALARMS, FREE_TIER.cloudWatchAlarms) * PRICES.cloudWatchPerAlarmMonth +
    Math.min(usage.schedulerInvocations, FREE_TIER.schedulerInvocations) * PRICES.schedulerPerInvocation +
    Math.min(usage.sqsRequests, FREE_TIER.sqsRequests) * PRICES.sqsPerRequest;
  return {
    cluster,
    agent,
    usage,
    lines,
    usageUsd,
    totalUsd,
    afterFreeTierUsd: totalUsd - free,
    bySource,
    eksUsd: PRICES.eksControlPlanePerHour * MONTH_HOURS,
  };
}

// ---- the runaway-write guard ----

/** The apiserver's default per-namespace object limit (lambdas/apiserver/registry.ts; the test checks they agree). */
export const GUARD_MAX_OBJECTS_PER_NAMESPACE = 100_000;
/** The largest object the DynamoDB backend stores (MAX_VALUE_BYTES in lambdas/storage/dynamodb.ts). */
export const GUARD_LARGEST_OBJECT_BYTES = 350 * 1024;

export interface GuardCost {
  what: string;
  creates: number;
  /** Lambda, DynamoDB reads and writes of filling the namespace: paid once. */
  fillUsd: number;
  /** Storing what it wrote (and its point-in-time recovery), while it stays. */
  storagePerMonthUsd: number;
}

/**
 * What the per-namespace object limit bounds: the cost of filling one namespace to it, the most a
 * runaway loop or client can write there before its creates are refused (403, nothing written; the
 * refused attempts still cost a request and its reads each, as any refused request does).
 *  - pods: `limit` bare pods, each with its Scheduled Event (Events do not count: they expire an hour
 *    after their last write, and until 2026-12-07 they counted, so half the limit was pods), every one the
 *    podCreate operation at the namespace's mean size during the fill (until issue #12 the loops listed
 *    the namespace's pods on each one, and the bill grew with the square of the limit; a create now reads
 *    no list that grows with the namespace, so it grows linearly);
 *  - largest: `limit` objects of the largest size stored, through the apiserver alone (no loop wakes).
 * A client allowed to create namespaces can fill each of them: the limit bounds one namespace, the
 * TableWriteRate alarm tells of any runaway.
 */
export function guardCost(limit = GUARD_MAX_OBJECTS_PER_NAMESPACE, s: ItemSizes = REFERENCE_SIZES): GuardCost[] {
  const memGb = LAMBDA_MEMORY_MB / 1024;
  const price = (req: number, seconds: number, rru: number, wru: number) =>
    req * PRICES.lambdaPerRequest + seconds * memGb * PRICES.lambdaPerGbSecondArm + rru * PRICES.dynamoPerRru + wru * PRICES.dynamoPerWru;
  const run = (op: OpCount, n: number, sizes: Sizes) => {
    let usd = 0;
    for (const fn of FUNCTIONS) {
      const cap = recipeCapacity(op.dynamo[fn], sizes);
      const req = fn === 'apiserver' ? op.apiRequests : op.invocations[fn];
      const seconds = (req * MEASURED_HANDLER_MS.perInvocation + cap.requests * MEASURED_HANDLER_MS.perDynamoRequest + cap.kbRead * MS_PER_KB_READ) / 1000;
      usd += price(req * n, seconds * n, cap.rru * n, cap.wru * n);
    }
    return usd;
  };
  const perGbMonth = PRICES.dynamoStoragePerGbMonth + PRICES.dynamoPitrPerGbMonth;
  const GB = 1024 ** 3;

  const pods = limit;
  const base = clusterSizes({ name: 'guard', nodes: 3, pods: 0, churnPerHour: 0 }, s);
  const mid: Sizes = { ...base, namespaceCollection: { ...base.namespaceCollection, pods: (pods / 2) * s.pods } };
  const largest: Sizes = { item: { ...base.item, objects: GUARD_LARGEST_OBJECT_BYTES }, collection: {}, namespaceCollection: {} };
  // The create reads its key first (absent: 1 unit), as every create does.
  const createLargest: OpCount = {
    apiRequests: 1,
    invocations: { scheduler: 0, controllerManager: 0 },
    dynamo: {
      apiserver: { 'GetItem token': 1, 'GetItem namespaces': 1, 'GetItem absent': 1, 'BatchGetItem count': 1, 'UpdateItem counter': 1, 'TransactWriteItems objects create +count': 1, 'UpdateItem settled': 1 },
    },
  };
  return [
    {
      what: `${pods} pods + their Events (kept an hour)`,
      creates: 2 * limit,
      fillUsd: run(OPERATIONS.podCreate, pods, mid),
      storagePerMonthUsd: ((pods * (s.pods + 200)) / GB) * perGbMonth,
    },
    {
      what: `${limit} objects of ${GUARD_LARGEST_OBJECT_BYTES / 1024} KiB`,
      creates: limit,
      fillUsd: run(createLargest, limit, largest),
      storagePerMonthUsd: ((limit * (GUARD_LARGEST_OBJECT_BYTES + 100)) / GB) * perGbMonth,
    },
  ];
}

// ---- the scenarios `npm run cost` prints ----

/**
 * AWS's published default limits that a cluster's load meets first (most are adjustable on request).
 * Lambda: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html (6 MB response to a
 * synchronous invocation, which a Function URL's buffered answer is; 1,000 concurrent executions).
 * DynamoDB: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode-max-throughput.html
 * (40,000 read and 40,000 write units a second per on-demand table) and its partition limits (1,000 write
 * units a second on one partition, so on one item). EventBridge Scheduler: UpdateSchedule's request rate
 * (50 a second in the quotas page's older revision; the current one lists far more in us-east-1: the
 * conservative figure is used).
 */
export const AWS_LIMITS = {
  lambdaResponseBytes: 6 * 1024 * 1024,
  lambdaConcurrency: 1000,
  tableRruPerSecond: 40_000,
  tableWruPerSecond: 40_000,
  partitionWruPerSecond: 1000,
  schedulerUpdatesPerSecond: 50,
} as const;

/** The log's partitions (storage/dynamodb.ts LOG_SHARDS; test/cost.requests checks they agree). */
export const LOG_PARTITIONS = 16;
/** Objects per page of an agent's list (node-agent/kube-client.ts list(); checked likewise). */
export const LIST_PAGE = 500;
/** How often a deployed agent moves its dead man's switch (node-agent/dead-mans-switch.ts; checked likewise). */
export const SWITCH_PERIOD_SECONDS = 20;

export interface LimitRow {
  what: string;
  needed: number;
  limit: number;
  unit: string;
  note: string;
}

/**
 * What a cluster's steady load needs of each AWS limit, from the bill's usage (the counted requests per
 * operation) and the cluster's item sizes: "where it would first break" is the row with the largest
 * needed / limit. Averages over the month, except where a row says otherwise.
 */
export function scaleLimits(cluster: ClusterProfile, agent: AgentSettings = CURRENT_AGENT, sizes: ItemSizes = REFERENCE_SIZES): LimitRow[] {
  const b = monthlyBill(cluster, agent, sizes);
  const cs = clusterSizes(cluster, sizes);
  const perSecond = (perMonth: number) => perMonth / MONTH_SECONDS;
  const writes = perSecond(b.usage.writes);
  // Every write puts one log item (an update carries the previous value too): a pod update's, in a transaction.
  const logWruPerWrite = 2 * Math.ceil(logBytes(sizes.pods, 'update') / 1024);
  // The full re-read lists each kind in pages of RESYNC_PAGE items, one Query after another: its burst is
  // the largest kind's page (pods) at the rate pages follow each other (one request's time apiece).
  const pageRru = Math.ceil((Math.min(RESYNC_PAGE, cluster.pods) * sizes.pods) / 4096);
  const resyncRru = pageRru * (1000 / MEASURED_HANDLER_MS.perDynamoRequest);
  // Answers and memory hold JSON, not the stored (compressed) bytes.
  const endpointsJson = JSON_BYTES.endpoints + JSON_BYTES.endpointsPerPod * Math.max(0, (cluster.podsPerUnit ?? 10) - 1);
  const rows: LimitRow[] = [
    // Agents list in pages of LIST_PAGE (node-agent/kube-client.ts), each page one Lambda answer.
    { what: "a page of an agent's list of Endpoints", needed: Math.min(cs.units, LIST_PAGE) * endpointsJson, limit: AWS_LIMITS.lambdaResponseBytes, unit: 'bytes', note: `${LIST_PAGE} objects; a Lambda answer is at most 6 MB` },
    { what: "a page of an agent's list of Services", needed: Math.min(cs.units, LIST_PAGE) * JSON_BYTES.services, limit: AWS_LIMITS.lambdaResponseBytes, unit: 'bytes', note: `${LIST_PAGE} objects; a Lambda answer is at most 6 MB` },
    { what: "the hourly full resync's list of every pod, held by one function", needed: cluster.pods * JSON_BYTES.pods, limit: LAMBDA_MEMORY_MB * 1024 * 1024, unit: 'bytes', note: `raw JSON against the function's ${LAMBDA_MEMORY_MB} MB; parsed objects take several times that` },
    { what: "the hourly full resync's pages, one after another", needed: resyncRru, limit: AWS_LIMITS.tableRruPerSecond, unit: 'RRU/s', note: `pages of ${RESYNC_PAGE} pods (${pageRru} RRU) at one per ${MEASURED_HANDLER_MS.perDynamoRequest} ms; the 5-minute runs read the log since the last` },
    { what: 'table reads, the month\'s average', needed: perSecond(b.usage.rru), limit: AWS_LIMITS.tableRruPerSecond, unit: 'RRU/s', note: 'on-demand table default' },
    { what: 'table writes, the month\'s average', needed: perSecond(b.usage.wru), limit: AWS_LIMITS.tableWruPerSecond, unit: 'WRU/s', note: 'on-demand table default' },
    { what: 'the revision counter item', needed: writes, limit: AWS_LIMITS.partitionWruPerSecond, unit: 'writes/s', note: 'one ADD per write; the settled watermark beside it takes at most as many' },
    { what: 'one of the 16 log partitions', needed: (writes * logWruPerWrite) / LOG_PARTITIONS, limit: AWS_LIMITS.partitionWruPerSecond, unit: 'WRU/s', note: 'every write as large as a pod update' },
    { what: 'Lambda concurrency (the three functions)', needed: FUNCTIONS.reduce((n, f) => n + b.usage.lambdaSeconds[f], 0) / MONTH_SECONDS, limit: AWS_LIMITS.lambdaConcurrency, unit: 'executions', note: 'average; account default' },
    { what: "the agents' dead man's switches", needed: cluster.nodes / SWITCH_PERIOD_SECONDS, limit: AWS_LIMITS.schedulerUpdatesPerSecond, unit: 'UpdateSchedule/s', note: `each agent every ${SWITCH_PERIOD_SECONDS} s` },
  ];
  return rows.sort((x, y) => y.needed / y.limit - x.needed / x.limit);
}

/** The cluster issue #16 asks about: 5,000 nodes and 150,000 pods, churn and namespaces as the 100-node scenario's, times 50. */
export const LARGE_CLUSTER: ClusterProfile = { name: '5000 nodes, 150000 pods', nodes: 5000, pods: 150_000, churnPerHour: 30_000, namespaces: 1500 };

/**
 * What the opt-in CloudWatch metrics (SkiffClusterProps.cloudWatchMetrics, off by default) add: each
 * (metric, dimension values) the apiserver instances or the nodes send in an hour is a custom metric for that
 * hour (lambdas/machinery/emf.ts; the series and their dimensions are APISERVER_EMF_SERIES in
 * apiserver/metrics-emf.ts and AGENT_EMF_SERIES in node-agent/metrics.ts). Counted from those definitions,
 * not measured on AWS:
 * - apiserver: a request count per (verb, code) seen, a latency _count, _sum and distribution (for
 *   percentiles) per verb, the open-watch gauge per verb with watches, a latency _count, _sum and
 *   distribution per store operation. Idle, the nodes' polls, watches, Lease renewals and status writes
 *   keep LIST, WATCH, GET, PUT and PATCH (200) and 4 store operations (get, list, update, watch) moving:
 *   5 + 15 + 1 + 12 = 33, every hour. With pod churn add CREATE and DELETE (201, 200), some 404s and
 *   409s, the create/delete store operations: about 53.
 * - nodes: the proxy sync time (_count, _sum, distribution) moves at every poll; the memory gauge per
 *   namespace with pods is always sent; with pods, CPU per namespace, pod starts and their duration
 *   (with its distribution), probes by type and result (up to 3 x 2): 3 + 2 per namespace idle,
 *   3 + 5 + 6 + 2 per namespace busy.
 */
export function cloudWatchMetricsCost(c: ClusterProfile): { metrics: number; usd: number } {
  const busy = c.pods > 0 || c.churnPerHour > 0;
  const namespaces = c.pods > 0 ? (c.namespaces ?? 1) : 0;
  const apiserver = busy ? 53 : 33;
  const nodes = busy ? 3 + 5 + 6 + 2 * namespaces : 3 + 2 * namespaces;
  const metrics = apiserver + nodes;
  return { metrics, usd: metrics * PRICES.cloudWatchPerCustomMetricMonth };
}

export const SCENARIOS: { cluster: ClusterProfile; agent: AgentSettings; note: string }[] = [
  { cluster: { name: 'idle 3 nodes', nodes: 3, pods: 0, churnPerHour: 0 }, agent: CURRENT_AGENT, note: 'the deployed defaults' },
  { cluster: { name: 'idle 3 nodes, 10 s polls', nodes: 3, pods: 0, churnPerHour: 0 }, agent: { ...CURRENT_AGENT, pollSeconds: 10 }, note: 'the defaults, agents polling every 10 s (new pods start sooner)' },
  { cluster: { name: 'idle 3 nodes, naive', nodes: 3, pods: 0, churnPerHour: 0 }, agent: NAIVE_AGENT, note: 'before the cost work: 10 s polls, 60 s leases, 5 informers, via CloudFront, leases wake both loops, 1 min resync' },
  { cluster: { name: 'idle 3 nodes, watches', nodes: 3, pods: 0, churnPerHour: 0 }, agent: { ...CURRENT_AGENT, follow: 'watch' }, note: 'agents hold their watches through the Lambda apiserver' },
  { cluster: { name: '10 nodes, 100 pods', nodes: 10, pods: 100, churnPerHour: 60 }, agent: CURRENT_AGENT, note: 'the defaults; 60 pod creations+deletions per hour' },
  { cluster: { name: '100 nodes, 3000 pods', nodes: 100, pods: 3000, churnPerHour: 600, namespaces: 30 }, agent: CURRENT_AGENT, note: 'the defaults; 600 pod creations+deletions per hour' },
  {
    cluster: { name: '10 nodes, 100 pods, 10 CronJobs', nodes: 10, pods: 100, churnPerHour: 60 + 10 * 60 * 2, cronJobFiresPerHour: 10 * 60 },
    agent: CURRENT_AGENT,
    note: 'the defaults; 10 CronJobs firing every minute (EventBridge Scheduler wake-ups), each run one pod',
  },
  {
    cluster: { name: '10 nodes, 100 pods, 10 HPAs', nodes: 10, pods: 100, churnPerHour: 60, hpas: 10 },
    agent: CURRENT_AGENT,
    note: 'the defaults; 10 HorizontalPodAutoscalers, each woken every 15 s (EventBridge Scheduler wake-ups), its nodes reporting usage every 30 s',
  },
];

export interface Candidate {
  agent: AgentSettings;
  bill: Bill;
  /** What differs from CURRENT_AGENT, in words. */
  changes: string[];
}

/** Every combination of the knobs the lead can turn, billed for `cluster`. */
export function candidateSettings(cluster: ClusterProfile): Candidate[] {
  const out: Candidate[] = [];
  for (const sharedInformers of [false, true])
    for (const via of ['frontDoor', 'functionUrl'] as const)
      for (const wakes of [
        { scheduler: true, controllerManager: true },
        { scheduler: false, controllerManager: true },
        { scheduler: false, controllerManager: false },
      ])
        for (const resyncSeconds of [60, 300])
          for (const statusRefreshSeconds of [300, 3600])
            for (const leaseSeconds of [10, 30, 60, 120, 300])
              for (const pollSeconds of [10, 20, 30, 60, 120, 300]) {
                const agent: AgentSettings = {
                  ...NAIVE_AGENT,
                  staleStatusConflicts: false,
                  pollSeconds,
                  leaseSeconds,
                  via,
                  leaseWakes: wakes,
                  resyncSeconds,
                  statusRefreshSeconds,
                  informers: sharedInformers ? { pods: 1, services: 1, endpoints: 1 } : NAIVE_AGENT.informers,
                };
                const changes = [
                  `poll ${pollSeconds} s`,
                  `lease ${leaseSeconds} s`,
                  ...(sharedInformers ? ['proxy+DNS share informers'] : []),
                  ...(via === 'functionUrl' ? ['agents use the Function URL'] : []),
                  ...(!wakes.scheduler ? ['leases do not wake the scheduler'] : []),
                  ...(!wakes.controllerManager ? ['leases do not wake the controller manager'] : []),
                  ...(resyncSeconds !== 60 ? [`resync ${resyncSeconds} s`] : []),
                  ...(statusRefreshSeconds !== NODE_STATUS_REFRESH_SECONDS ? [`node status refresh ${statusRefreshSeconds} s`] : []),
                  'status writes keep the written pod',
                ];
                out.push({ agent, bill: monthlyBill(cluster, agent), changes });
              }
  return out;
}

// ---- cost per namespace (lambdas/machinery/usage.ts counts, `skiff cost` and /apis/cost.skiff.io serve) ----

/** How often a Lambda instance adds its per-namespace counts to the table (SKIFF_USAGE_FLUSH_SECONDS default). */
export const USAGE_FLUSH_SECONDS = 300;
/** Items a flush writes besides the workload namespaces: the apiserver's heartbeats, agent polls and counting, the loops' resync and counting. */
export const USAGE_FLUSH_BASE_ITEMS = 5;

/**
 * What a namespace (or a line of overhead) caused: apiserver requests (one Lambda invocation each), its
 * DynamoDB requests and units, and (each 0 when left out) the other Lambda invocations it had a share of,
 * push-channel SQS requests, audit and function log bytes, EventBridge Scheduler invocations, and requests
 * through CloudFront.
 */
export interface NamespaceUsage {
  apiRequests: number;
  dynamoRequests: number;
  rru: number;
  wru: number;
  invocations?: number;
  sqsRequests?: number;
  auditBytes?: number;
  logBytes?: number;
  schedulerInvocations?: number;
  cloudFrontRequests?: number;
  /** Seconds apiserver answers stayed open (watches): Lambda time, billed all along. */
  watchSeconds?: number;
}

export interface UsagePrice {
  lambda: number;
  dynamo: number;
  cloudFront: number;
  sqs: number;
  /** CloudWatch Logs ingestion: audit events and the functions' own lines. */
  logs: number;
  scheduler: number;
  total: number;
}

/**
 * Dollars at list prices (no free tier: it is the account's, not a namespace's), priced as monthlyBill
 * prices its usage: each Lambda invocation (apiserver requests and the rest) a request and, from
 * MEASURED_HANDLER_MS, 1 ms, plus 5 ms per DynamoDB request, plus the seconds watches were open, at
 * LAMBDA_MEMORY_MB; DynamoDB request units;
 * CloudFront, SQS and Scheduler requests; log bytes ingested.
 */
export function priceUsage(u: NamespaceUsage): UsagePrice {
  const invocations = u.apiRequests + (u.invocations ?? 0);
  const seconds = (invocations * MEASURED_HANDLER_MS.perInvocation + u.dynamoRequests * MEASURED_HANDLER_MS.perDynamoRequest) / 1000 + (u.watchSeconds ?? 0);
  const lambda = invocations * PRICES.lambdaPerRequest + seconds * (LAMBDA_MEMORY_MB / 1024) * PRICES.lambdaPerGbSecondArm;
  const dynamo = u.rru * PRICES.dynamoPerRru + u.wru * PRICES.dynamoPerWru;
  const cloudFront = (u.cloudFrontRequests ?? 0) * PRICES.cloudFrontPerHttpsRequest;
  const sqs = (u.sqsRequests ?? 0) * PRICES.sqsPerRequest;
  const logs = (((u.auditBytes ?? 0) + (u.logBytes ?? 0)) / 1024 ** 3) * PRICES.cloudWatchLogsPerGbIngested;
  const scheduler = (u.schedulerInvocations ?? 0) * PRICES.schedulerPerInvocation;
  return { lambda, dynamo, cloudFront, sqs, logs, scheduler, total: lambda + dynamo + cloudFront + sqs + logs + scheduler };
}

/**
 * What no namespace causes and nothing counts, for a window of `seconds` (the report's estimated overhead
 * lines): the CloudWatch alarms (ALARMS, billed by the month) and, with the push channel, each node's idle
 * long polls of its queue (one ReceiveMessage per PUSH_WAIT_SECONDS), as monthlyBill prices them.
 */
export function fixedOverhead(seconds: number, nodes: number, pushChannel: boolean): { name: string; description: string; quantity: number; usd: number }[] {
  const polls = pushChannel ? (nodes * seconds) / PUSH_WAIT_SECONDS : 0;
  return [
    { name: 'alarms', description: `${ALARMS} CloudWatch alarms, billed by the month`, quantity: ALARMS, usd: (ALARMS * PRICES.cloudWatchPerAlarmMonth * seconds) / MONTH_SECONDS },
    { name: 'push channel idle polls', description: `each node's long poll of its SQS queue, one per ${PUSH_WAIT_SECONDS} s (${nodes} nodes now)`, quantity: polls, usd: polls * PRICES.sqsPerRequest },
  ];
}
