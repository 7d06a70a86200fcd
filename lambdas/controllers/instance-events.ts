// A node's EC2 instance going away, as EventBridge tells it ("EC2 Instance State-change Notification":
// shutting-down, terminated), deletes its Node at once, as kube's cloud node lifecycle controller deletes
// a Node whose instance is gone; the node lifecycle loop then deletes the Node's pods (orphans), so their
// owners replace them on the other nodes. Without it a terminated instance (an Auto Scaling replacement,
// a Spot reclaim) was noticed only once its lease had run out and a resync came round: minutes.
// Instances that are no Node's (the rule sees every instance of the account and region) change nothing.

import { findResource } from '../machinery/resources.ts';
import { ApiError } from '../machinery/status.ts';
import { contextFor, readerOf, type Controller, type ControllerContext } from './controller.ts';
import { instanceIdFromProviderID } from './routes.ts';
import { goneNodeKey } from './nodelifecycle.ts';

const nodes = findResource('', 'v1', 'nodes')!;

export const INSTANCE_STATE_DETAIL_TYPE = 'EC2 Instance State-change Notification';
/** The states after which an instance never runs again. (A stopped one may start again; its lease says.) */
export const INSTANCE_GONE_STATES = ['shutting-down', 'terminated'];

export interface InstanceStateEvent {
  source: 'aws.ec2';
  'detail-type': typeof INSTANCE_STATE_DETAIL_TYPE;
  detail: { 'instance-id': string; state: string };
}

export function isInstanceStateEvent(e: unknown): e is InstanceStateEvent {
  const x = e as InstanceStateEvent | undefined;
  return x?.source === 'aws.ec2' && x['detail-type'] === INSTANCE_STATE_DETAIL_TYPE && typeof x.detail?.['instance-id'] === 'string' && typeof x.detail?.state === 'string';
}

/**
 * Deletes the Node of a gone instance and reconciles it with the node lifecycle loop (which deletes its
 * pods), as that loop's identity. Returns the Node's name, or undefined when no Node is the instance's.
 */
export async function handleInstanceState(nodeLifecycle: Controller, ctx: ControllerContext, e: InstanceStateEvent): Promise<string | undefined> {
  if (!INSTANCE_GONE_STATES.includes(e.detail.state)) return undefined;
  const c = contextFor(nodeLifecycle, ctx);
  const node = (await readerOf(c).list(nodes, undefined)).find((n) => instanceIdFromProviderID(n.spec?.providerID) === e.detail['instance-id']);
  if (!node) return undefined;
  const name = node.metadata.name!;
  try {
    await c.registry.delete(nodes, undefined, name, { preconditions: { uid: node.metadata.uid } });
  } catch (err) {
    // Gone already, or a new Node of the same name (another instance): nothing of this one to delete.
    if (!(err instanceof ApiError && (err.code === 404 || err.code === 409))) throw err;
  }
  await nodeLifecycle.reconcile(goneNodeKey(name), c);
  return name;
}
