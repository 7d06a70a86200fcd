// What a request or a reconcile carries through its awaits, in one AsyncLocalStorage: the audit record
// (apiserver/audit.ts), the write scope object history reads its writer from (apiserver/history.ts), the
// namespace its storage requests are charged to (machinery/usage.ts). Each concern gets a slot with
// AsyncLocalStorage's own `run`/`getStore`; a slot's `run` keeps the other slots' values.
//
// Why one storage and not one per concern: on Node 20 every AsyncLocalStorage in use adds its own work to
// every promise the process creates (async_hooks' init hook propagates each store), and `skiff up` creates
// several per request. With three, the hooks were ~9% of its CPU scheduling 10,000 pods (measured by
// turning them off in bench:vs-kube's scheduling run: 17.6 -> 16.2 CPU-s).

import { AsyncLocalStorage } from 'node:async_hooks';

type Slots = Readonly<Record<symbol, unknown>>;

const storage = new AsyncLocalStorage<Slots>();

export interface ContextSlot<T> {
  /** Runs fn with this slot set to value (the other slots as they were). */
  run<R>(value: T, fn: () => R): R;
  /** The slot's value in the current async context, if any. */
  getStore(): T | undefined;
}

/** A slot of the shared context, named for debugging. */
export function contextSlot<T>(name: string): ContextSlot<T> {
  const key = Symbol(name);
  return {
    run: (value, fn) => storage.run({ ...storage.getStore(), [key]: value }, fn),
    getStore: () => storage.getStore()?.[key] as T | undefined,
  };
}
