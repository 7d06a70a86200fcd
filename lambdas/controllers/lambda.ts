// The controller manager's Lambda entry points: `stream` for batches of the table's stream (filtered
// to the kinds these controllers watch by the event source mapping; see streamFilterPatterns) and
// `resync` for the scheduled trigger (every 5 minutes by default), which also drives node lifecycle's clock.

import { flushLambdaUsage } from '../storage/usage-store.ts';
import { createControllerHandlers, dispatchHandler } from './stream.ts';
import { cloudContext } from './cloud-context.ts';
import type { Controller, ControllerContext } from './controller.ts';
import { namespaceController } from './namespace.ts';
import { crdController } from './crd.ts';
import { clusterRoleAggregationController } from './clusterroleaggregation.ts';
import { replicationController } from './replication.ts';
import { replicaSetController } from './replicaset.ts';
import { deploymentController } from './deployment.ts';
import { daemonSetController } from './daemonset.ts';
import { statefulSetController } from './statefulset.ts';
import { createJobController } from './job.ts';
import { createCronJobController } from './cronjob.ts';
import { createHorizontalController, podMetricsFrom } from './horizontal.ts';
import { nodeUsageFromEnv } from '../apiserver/node-usage.ts';
import { handleWakeUp, isWakeUpEvent, wakeUpsFromEnv } from './wakeups.ts';
import { handleInstanceState, isInstanceStateEvent } from './instance-events.ts';
import { garbageCollector } from './garbagecollector.ts';
import { endpointsController } from './endpoints.ts';
import { persistentVolumeController } from './persistentvolume.ts';
import { disruptionController } from './disruption.ts';
import { nodeLifecycleController } from './nodelifecycle.ts';
import { resourceQuotaController } from './resourcequota.ts';
import { clusterResourceQuotaController } from './clusterresourcequota.ts';
import { nodeIpamControllerFromEnv } from './nodeipam.ts';
import { routeControllerFromEnv } from './routes.ts';
import { createRootCACertPublisher, rootCAFromEnv, serviceAccountsController } from './serviceaccount.ts';
import { nodeNotifierFromEnv } from './node-notifier.ts';

// Routes to nodes' pod CIDRs are programmed only when a VPC route table is named (SKIFF_ROUTE_TABLE_ID).
const routeController = routeControllerFromEnv();
const wakeUps = wakeUpsFromEnv();
// The push channel to nodes, when the stack gives them queues (SKIFF_NODE_QUEUE_PREFIX).
const nodeNotifier = nodeNotifierFromEnv();
// The HPAs' pod usage: the nodes' reports on demand, read as the apiserver reads them (apiserver/node-usage.ts;
// SKIFF_NODE_QUEUE_PREFIX, the table, sqs:SendMessage on the node queues). A sync never waits for a first
// report (firstWaitMs 0): it sends the demand and finds no metrics (ScalingActive False, no scaling, as kube
// before metrics-server's first scrape); the next sync, 15 s later, reads the reports.
const nodeUsage = nodeUsageFromEnv(process.env, { firstWaitMs: 0 });
export const controllers: Controller[] = [
  // First: a batch runs its loops one after another (stream.ts), and last, a node heard of its pod only
  // after every other loop of the batch had made its round trips (seconds on moto, in bench:scale). It
  // reads nothing from the table, so its place changes no other loop's reads.
  ...(nodeNotifier ? [nodeNotifier] : []),
  namespaceController,
  crdController,
  clusterRoleAggregationController,
  replicationController,
  replicaSetController,
  deploymentController,
  daemonSetController,
  statefulSetController,
  // Times with no event (a Job's back-off, deadline and TTL; a CronJob's next fire time) come as
  // EventBridge Scheduler wake-ups (wakeups.ts), named in the environment.
  createJobController({ wakeUps }),
  createCronJobController({ wakeUps }),
  // Each HPA asks for a wake-up one sync period (15 s) after its sync, only while it exists. Its reads keep
  // the nodes reporting while HPAs exist (a demand renewed every 3 minutes); without node queues, no usage.
  createHorizontalController({ wakeUps, ...(nodeUsage ? { metrics: podMetricsFrom((node) => nodeUsage.stats(node), true) } : {}) }),
  garbageCollector,
  endpointsController,
  persistentVolumeController,
  disruptionController,
  nodeLifecycleController,
  resourceQuotaController,
  clusterResourceQuotaController,
  nodeIpamControllerFromEnv(),
  serviceAccountsController,
  createRootCACertPublisher({ caCert: rootCAFromEnv() }),
  ...(routeController ? [routeController] : []),
];

const handlers = createControllerHandlers(controllers, cloudContext);
export const stream = handlers.stream;
export const resync = handlers.resync;
const dispatch = dispatchHandler(handlers);
/** One function for all triggers: stream batches, the scheduled resync, wake-ups of one key (wakeups.ts), and instances gone (instance-events.ts). */
export const handler = async (event: Parameters<typeof dispatch>[0] | unknown) => {
  try {
    if (isWakeUpEvent(event)) return await handleWakeUp(controllers, await cloudContext(), event);
    // A node's instance gone (EventBridge): its Node and pods go now, not after lease expiry and a resync.
    if (isInstanceStateEvent(event)) return void console.log('instance', event.detail['instance-id'], event.detail.state, '-> node', await handleInstanceState(nodeLifecycleController, await cloudContext(), event));
    return await dispatch(event as Parameters<typeof dispatch>[0]);
  } finally {
    // Cost per namespace: this instance's counts to the table, every 5 minutes at most (usage-store.ts).
    await flushLambdaUsage();
  }
};
