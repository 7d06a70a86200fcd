// Per-node reservations: the record that keeps concurrent schedulers from overcommitting a node.
// One Lease per node, `skiff-alloc-<node>` in kube-node-lease, whose annotation holds the pods the
// schedulers have placed on that node with what they take (requests, hostPorts, owner). Every change
// is a compare-and-swap on the Lease (registry.guaranteedUpdate retries on a concurrent write and runs
// the fit check again on the fresh record), so two schedulers can never both take the last room.
// In the store, an entry whose pod the scheduler's snapshot holds bound there (at a revision the
// snapshot covers) is pruned by the next reservation on that node, and the record says through which
// revision (`skiff.dev/pruned-through`): a scheduler whose snapshot is older reads the node's pods
// before it trusts the record. So the record holds the pods in flight or just bound, not every pod of
// the node: each write of it was ~2 KB and its log item ~4 KB at 30 pods a node.
// See scheduler.ts for how reservations, binding and garbage collection fit together.

import { createHash } from 'node:crypto';
import type { Registry } from '../apiserver/registry.ts';
import { findResource } from '../machinery/resources.ts';
import { ApiError } from '../machinery/status.ts';
import type { KubeObject } from '../machinery/types.ts';
import type { PodResources } from './framework.ts';

export const leases = findResource('coordination.k8s.io', 'v1', 'leases')!;
export const RESERVATION_NAMESPACE = 'kube-node-lease';
export const RESERVATIONS_ANNOTATION = 'skiff.dev/reservations';
export const NODE_ANNOTATION = 'skiff.dev/node';
export const RESERVATION_PREFIX = 'skiff-alloc-';
export const PRUNED_THROUGH_ANNOTATION = 'skiff.dev/pruned-through';

/** One reserved pod: what it takes, and when the reservation was made (epoch ms). */
export interface Entry extends Omit<PodResources, 'uid'> {
  at: number;
}

/** What a change reads and writes: the entries, and the revision through which bound pods' entries were pruned. */
export interface Held {
  entries: Record<string, Entry>;
  /**
   * Every pod whose entry was pruned was bound to the node at or before this revision: only a snapshot
   * holding everything up to it counts them (0: nothing was ever pruned).
   */
  prunedThrough: number;
}

export interface Reservation extends Held {
  node: string;
  /** The Lease's resourceVersion (0 when there is no Lease yet). */
  rv: number;
}

/** A change of a node's record: gets a copy of what is held (and the record's revision), returns what to write. */
export type Change = (held: Held, rv: number) => Held;

const empty = (node: string, rv = 0): Reservation => ({ node, rv, entries: {}, prunedThrough: 0 });

export function reservationName(node: string): string {
  const name = RESERVATION_PREFIX + node;
  // Object names stop at 253 characters: long node names are shortened with a hash.
  if (name.length <= 253) return name;
  return `${RESERVATION_PREFIX}${node.slice(0, 200)}-${createHash('sha256').update(node).digest('hex').slice(0, 16)}`;
}

/** The node a Lease is the reservation record of, read without parsing its entries. */
export function reservationNode(lease: KubeObject): string | undefined {
  const node = lease.metadata.annotations?.[NODE_ANNOTATION];
  return lease.metadata.namespace === RESERVATION_NAMESPACE && node ? node : undefined;
}

export function reservationOf(lease: KubeObject): Reservation | undefined {
  const node = lease.metadata.annotations?.[NODE_ANNOTATION];
  if (lease.metadata.namespace !== RESERVATION_NAMESPACE || !node) return undefined;
  let entries: Record<string, Entry> = {};
  try {
    entries = JSON.parse(lease.metadata.annotations?.[RESERVATIONS_ANNOTATION] ?? '{}');
  } catch {
    entries = {};
  }
  const prunedThrough = Number(lease.metadata.annotations?.[PRUNED_THROUGH_ANNOTATION] ?? 0);
  return { node, rv: Number(lease.metadata.resourceVersion ?? 0), entries, prunedThrough: Number.isSafeInteger(prunedThrough) && prunedThrough > 0 ? prunedThrough : 0 };
}

export function entryResources(uid: string, e: Entry): PodResources {
  const { at: _at, ...rest } = e;
  return { uid, ...rest };
}

/** Thrown out of a reservation attempt when the fresh record shows the pod no longer fits. */
export class NoFit extends Error {
  constructor(
    readonly reasons: string[],
    readonly fresh: Reservation,
  ) {
    super(`pod does not fit: ${reasons.join(', ')}`);
  }
}

function withHeld(lease: KubeObject, node: string, held: Held): KubeObject {
  const { [PRUNED_THROUGH_ANNOTATION]: _old, ...annotations } = lease.metadata.annotations ?? {};
  lease.metadata.annotations = {
    ...annotations,
    [NODE_ANNOTATION]: node,
    [RESERVATIONS_ANNOTATION]: JSON.stringify(held.entries),
    ...(held.prunedThrough > 0 ? { [PRUNED_THROUGH_ANNOTATION]: String(held.prunedThrough) } : {}),
  };
  return lease;
}

const copy = (h: Held): Held => ({ entries: { ...h.entries }, prunedThrough: h.prunedThrough });

/**
 * Read-modify-write of a node's reservation with CAS, creating the Lease on first use. `change` gets
 * what the record holds (a copy) and returns what to write, or throws to abort. Returns the stored state.
 */
export async function updateReservation(registry: Registry, node: string, change: Change, opts: { create?: boolean } = {}): Promise<Reservation> {
  const name = reservationName(node);
  for (;;) {
    try {
      let written: Held = { entries: {}, prunedThrough: 0 };
      const out = await registry.guaranteedUpdate(leases, RESERVATION_NAMESPACE, name, undefined, {}, (cur) => {
        // A Lease of that name without our annotations (made by hand) is taken over as empty.
        const r = reservationOf(cur) ?? empty(node, Number(cur.metadata.resourceVersion ?? 0));
        written = change(copy(r), r.rv);
        return withHeld(cur, node, written);
      });
      // The stored annotations are exactly `written` (serialized by withHeld, not changed since): no
      // need to parse them back. A no-op update returns the stored object with the same entries too.
      return { node, rv: Number(out.metadata.resourceVersion ?? 0), ...written };
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 404)) throw e;
      if (opts.create === false) return empty(node);
    }
    // No Lease yet: create it with the change applied to an empty record. Losing the race to create
    // it means another scheduler did: go round and update that one.
    const held = change({ entries: {}, prunedThrough: 0 }, 0);
    try {
      const out = await registry.create(
        leases,
        RESERVATION_NAMESPACE,
        withHeld(
          {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name, namespace: RESERVATION_NAMESPACE },
            spec: { holderIdentity: 'default-scheduler' },
          },
          node,
          held,
        ),
      );
      return reservationOf(out)!;
    } catch (e) {
      if (!(e instanceof ApiError && e.reason === 'AlreadyExists')) throw e;
    }
  }
}

export async function readReservation(registry: Registry, node: string): Promise<Reservation> {
  try {
    const lease = await registry.get(leases, RESERVATION_NAMESPACE, reservationName(node));
    return reservationOf(lease) ?? empty(node, Number(lease.metadata.resourceVersion ?? 0));
  } catch (e) {
    if (e instanceof ApiError && e.code === 404) return empty(node);
    throw e;
  }
}

/**
 * Where a scheduler keeps its reservation records: in the store (storeReservations), so that schedulers
 * in different processes see each other's, or in its own memory (MemoryReservations), when it is the
 * only scheduler of its store, as kube-scheduler's assume cache is for the one leader.
 */
export interface ReservationRecords {
  /** Read-modify-write of a node's record, atomically (see updateReservation). */
  update(node: string, change: Change, opts?: { create?: boolean }): Promise<Reservation>;
  read(node: string): Promise<Reservation>;
  /** Removes a node's record if it is still the empty one read at `rv`. */
  drop(node: string, rv: number): Promise<void>;
}

type Update = ReservationRecords['update'];

/**
 * One write of a node's record at a time in this process: changes asked for while one is being written
 * wait for it, then go in the next write together, each applied to what the ones before it left (a change
 * that throws, NoFit, is left out of the write and gets its error once the write is done). Without it,
 * concurrent reservations on one node (a scheduler's pods in flight at once) each read the record and all
 * but one lost the compare-and-swap and went round again; on DynamoDB a lost round is four requests more
 * (a read, a revision, the cancelled transaction, the gap it leaves): in the fuzz suite on moto, 55 of
 * the Lease transactions of one 5 s window were cancelled that way. Schedulers in other processes still
 * meet at the compare-and-swap.
 */
export function coalescedUpdates(update: Update): Update {
  interface Waiter {
    change: Change;
    create: boolean;
    resolve: (r: Reservation) => void;
    reject: (e: unknown) => void;
  }
  const waiting = new Map<string, Waiter[]>();
  const drain = async (node: string): Promise<void> => {
    for (let queue = waiting.get(node)!; queue.length > 0; queue = waiting.get(node)!) {
      // Changes that may create the record go apart from those that may not (a release must not make one).
      const create = queue[0]!.create;
      const batch = queue.filter((w) => w.create === create);
      waiting.set(node, queue.filter((w) => w.create !== create));
      let refused = new Map<Waiter, unknown>();
      try {
        const out = await update(
          node,
          (held, rv) => {
            refused = new Map(); // the write may read the record again and call this again
            let next = held;
            for (const w of batch) {
              try {
                next = w.change(copy(next), rv);
              } catch (e) {
                refused.set(w, e);
              }
            }
            return next;
          },
          { create },
        );
        for (const w of batch) (refused.has(w) ? w.reject(refused.get(w)) : w.resolve(out));
      } catch (e) {
        for (const w of batch) w.reject(e);
      }
    }
    waiting.delete(node);
  };
  return (node, change, opts = {}) =>
    new Promise<Reservation>((resolve, reject) => {
      const w: Waiter = { change, create: opts.create !== false, resolve, reject };
      const queue = waiting.get(node);
      if (queue) return void queue.push(w);
      waiting.set(node, [w]);
      void drain(node);
    });
}

/** One coalescing updater per registry, so every caller of storeReservations on it shares the queues. */
const updaters = new WeakMap<Registry, Update>();

/** The records as Leases in the store: what several schedulers on one store need (Lambda instances). */
export function storeReservations(registry: Registry): ReservationRecords {
  let update = updaters.get(registry);
  if (!update) updaters.set(registry, (update = coalescedUpdates((node, change, opts) => updateReservation(registry, node, change, opts))));
  return {
    update,
    read: (node) => readReservation(registry, node),
    async drop(node, rv) {
      try {
        await registry.delete(leases, RESERVATION_NAMESPACE, reservationName(node), { preconditions: { resourceVersion: String(rv) } });
      } catch (e) {
        // Written meanwhile (a scheduler with a stale snapshot reserved there) or already gone: leave it.
        if (!(e instanceof ApiError && (e.code === 404 || e.code === 409))) throw e;
      }
    },
  };
}

/**
 * The records in this process's memory, for a scheduler that is the only one of its store (`skiff up`
 * holding its data dir's scheduler lock): the same protocol without a store write per pod. A change is
 * atomic because it runs synchronously; revisions are this object's own counter. What is in flight
 * when the process stops is lost with it, as kube-scheduler's assumed pods are: those pods are still
 * unbound, and the next scheduler places them again.
 */
export class MemoryReservations implements ReservationRecords {
  private readonly records = new Map<string, Reservation>();
  private rv = 0;

  async update(node: string, change: Change, opts: { create?: boolean } = {}): Promise<Reservation> {
    const cur = this.records.get(node);
    if (!cur && opts.create === false) return empty(node);
    const held = change(copy(cur ?? empty(node)), cur?.rv ?? 0);
    const r = { node, rv: ++this.rv, ...held };
    this.records.set(node, r);
    return r;
  }

  async read(node: string): Promise<Reservation> {
    const r = this.records.get(node);
    return r ? { ...r, ...copy(r) } : empty(node);
  }

  async drop(node: string, rv: number): Promise<void> {
    const r = this.records.get(node);
    if (r && r.rv === rv && Object.keys(r.entries).length === 0) this.records.delete(node);
  }

  /** Every record: the scheduler's snapshot takes them from here, not from the store. */
  held(): Reservation[] {
    return [...this.records.values()];
  }
}

/** Removes the given pods' reservations (missing ones are fine). */
export async function release(records: ReservationRecords, node: string, uids: string[]): Promise<Reservation> {
  return records.update(node, (held) => {
    for (const u of uids) delete held.entries[u];
    return held;
  }, { create: false });
}
