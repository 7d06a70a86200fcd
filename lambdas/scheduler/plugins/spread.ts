// SelectorSpread, lite: pods with the same controlling owner (ownerReferences[controller].uid, e.g. one
// ReplicationController's replicas) are spread across nodes. A node's score is
// 100 * (max - count) / max, where count is how many of the owner's pods it holds and max is the largest
// count over the feasible nodes; with no such pods anywhere every node scores 100 (no preference).

import type { NodeInfo, ScorePlugin } from '../framework.ts';

function countOwned(info: NodeInfo, ownerUid: string): number {
  let n = 0;
  for (const p of info.pods) if (p.ownerUid === ownerUid) n++;
  return n;
}

const maxByCycle = new WeakMap<NodeInfo[], { owner: string; max: number }>();

export const selectorSpread: ScorePlugin = {
  name: 'SelectorSpread',
  // kube-scheduler weighs PodTopologySpread 2 against NodeResourcesFit's 1: spreading wins ties of room.
  weight: 2,
  score(_pod, res, info, all) {
    if (!res.ownerUid) return 100;
    // The largest count is the same for every node of one cycle: computed once per (cycle, owner).
    let memo = maxByCycle.get(all);
    if (!memo || memo.owner !== res.ownerUid) {
      let m = 0;
      for (const other of all) m = Math.max(m, countOwned(other, res.ownerUid));
      memo = { owner: res.ownerUid, max: m };
      maxByCycle.set(all, memo);
    }
    const max = memo.max;
    if (max === 0) return 100;
    return Math.floor((100 * (max - countOwned(info, res.ownerUid))) / max);
  },
};
