// A deployed agent's dead man's switch (issue #16: a node that stops, noticed within 40 s, at no cost
// while it runs). Its Lease is renewed only every 120 s (each renewal is an apiserver call and a table
// write, which is most of an idle cluster's bill), and Leases wake no loop, so an agent that died on a
// live instance was noticed after its 480 s lease and the next 5-minute resync: about 13 minutes.
//
// So every 20 s the agent moves a one-time EventBridge Scheduler schedule of its own to 40 s from now
// (wakeups.ts: UpdateSchedule, a free API call). While the agent lives the schedule never comes due;
// once it stops, the schedule fires within 40 s and invokes the controller manager with the node
// lifecycle key `silent:<node>` (nodelifecycle.ts), which marks the node unreachable as an expired
// lease would, until the agent renews its Lease again. A missed update (throttled, the network down
// for 40 s) makes a false alarm that lasts until the next renewal (at most 120 s), within every pod's
// default 300 s toleration of the unreachable taint: nothing is evicted by it.

import type { WakeUps } from '../lambdas/controllers/wakeups.ts';
import { NODE_LIFECYCLE_CONTROLLER, silentNodeKey } from '../lambdas/controllers/nodelifecycle.ts';

export interface DeadMansSwitchOptions {
  wakeUps: WakeUps;
  nodeName: string;
  /** How often the schedule is moved (default 20 s). */
  everyMs?: number;
  /** How far ahead it is moved: the longest an agent may be silent before its node is unreachable (default 40 s). */
  silentAfterMs?: number;
  log?: (msg: string) => void;
}

export function startDeadMansSwitch(o: DeadMansSwitchOptions): { stop(): void } {
  const silentAfterMs = o.silentAfterMs ?? 40_000;
  const tick = () =>
    o.wakeUps.wakeAt(NODE_LIFECYCLE_CONTROLLER, silentNodeKey(o.nodeName), new Date(Date.now() + silentAfterMs)).catch((e: Error) => o.log?.(`dead man's switch: ${e.message}`));
  void tick();
  const timer = setInterval(() => void tick(), o.everyMs ?? 20_000);
  return { stop: () => clearInterval(timer) };
}
