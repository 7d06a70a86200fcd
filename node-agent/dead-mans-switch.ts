// A deployed agent's dead man's switch (issue #16: a node that stops, noticed within 40 s, at no cost
// while it runs). Its Lease is renewed only every 300 s (each renewal is an apiserver call and a table
// write, which was most of an idle cluster's bill), and Leases wake no loop, so an agent that died on a
// live instance would be noticed only after its 1,200 s lease and the next 5-minute resync.
//
// So every 20 s the agent moves a one-time EventBridge Scheduler schedule of its own to 40 s from now
// (wakeups.ts: UpdateSchedule, a free API call). While the agent lives the schedule never comes due;
// once it stops, the schedule fires within 40 s and invokes the controller manager with the node
// lifecycle key `silent:<node>` (nodelifecycle.ts), which marks the node unreachable as an expired
// lease would, until the agent renews its Lease again. A missed update (throttled, the network down
// for 40 s, the agent stalled) may have let the schedule fire: so after a failed or late move, the first
// move that succeeds calls onLapse, and the agent heartbeats at once (not at its next renewal, up to
// 300 s later). A false alarm then lasts the outage and one move (20 s), well within every pod's
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
  /** Called after a move that followed a failed one, or came more than silentAfterMs after the last: the schedule may have fired. */
  onLapse?: () => void;
}

export function startDeadMansSwitch(o: DeadMansSwitchOptions): { stop(): void } {
  const silentAfterMs = o.silentAfterMs ?? 40_000;
  let lastMoved: number | undefined; // when the schedule was last moved ahead
  let missed = false; // a move failed since
  const tick = async () => {
    try {
      await o.wakeUps.wakeAt(NODE_LIFECYCLE_CONTROLLER, silentNodeKey(o.nodeName), new Date(Date.now() + silentAfterMs));
    } catch (e) {
      missed = true;
      o.log?.(`dead man's switch: ${(e as Error).message}`);
      return;
    }
    const lapsed = missed || (lastMoved !== undefined && Date.now() - lastMoved > silentAfterMs);
    lastMoved = Date.now();
    missed = false;
    if (lapsed) o.onLapse?.();
  };
  void tick();
  const timer = setInterval(() => void tick(), o.everyMs ?? 20_000);
  return { stop: () => clearInterval(timer) };
}
