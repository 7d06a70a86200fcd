// What the control loops read: objects by namespace and by index, from a cache rather than the store.
//
// Two implementations, one interface, so each loop is written once:
// - informer.ts (local, `skiff up`): one list+watch cache per kind per process, shared by all loops;
//   a read costs no store access.
// - StoreReader below (the cloud's stream functions, which keep nothing between invocations): lists a
//   kind in a namespace at most once per stream batch and answers everything else from that list, so
//   a batch costs reads in proportion to the namespaces and kinds it touches, never one list per record.
//
// Reads may lag the store by a few events (client-go's listers do too): a loop reads, decides, and
// writes with optimistic concurrency; the event its own write or a later change produces corrects it.

import type { Registry } from '../apiserver/registry.ts';
import { mayHaveDependents } from '../apiserver/dependents.ts';
import { ApiError } from '../machinery/status.ts';
import { labelSelectorFromMetav1 } from '../machinery/selectors.ts';
import { apiVersionOf, type ResourceInfo } from '../machinery/resources.ts';
import type { KubeObject } from '../machinery/types.ts';

/** The indexes a cache keeps, named as client-go's indexers would be. */
export type IndexName =
  /** Pods, ReplicaSets...: the uid of the controller ownerReference. */
  | 'controller'
  /** Pods: spec.nodeName. */
  | 'node'
  /**
   * Services: "namespace/key=value" for each pair of spec.selector; see servicesSelecting. Objects whose
   * spec.selector is a metav1 LabelSelector (PodDisruptionBudgets, ReplicaSets...): each pair of its
   * matchLabels, or "namespace/*" when it has none (it may select anything); see selectorsMatching.
   */
  | 'selector'
  /** Every kind: "namespace/key=value" for each label; see objectsSelectedBy (a Service's pods). */
  | 'label'
  /**
   * Every kind: "namespace/uid" for each ownerReference (controller or not), the garbage collector's
   * dependents of an owner. The namespace is the dependent's own: a namespaced owner's dependents are in
   * its namespace (references never cross namespaces). A cluster-scoped owner (a Node, a Namespace) may
   * have dependents in every namespace: each reference is also indexed with "*" for the namespace, so
   * those are found in one lookup.
   */
  | 'owner';

export const INDEXERS: Record<IndexName, (o: KubeObject) => string[]> = {
  controller: (o) => (o.metadata.ownerReferences ?? []).filter((r: any) => r?.controller === true && typeof r.uid === 'string').map((r: any) => r.uid as string),
  node: (o) => (typeof o.spec?.nodeName === 'string' && o.spec.nodeName ? [o.spec.nodeName] : []),
  selector: (o) => {
    const sel = o.spec?.type !== 'ExternalName' ? o.spec?.selector : undefined;
    if (!sel || typeof sel !== 'object') return [];
    const pairs = isLabelSelector(sel) ? Object.entries(sel.matchLabels ?? {}) : Object.entries(sel);
    // No pair to look it up by: under "*" (an empty Service selector selects nothing; servicesSelecting never asks for "*").
    if (!pairs.length) return [`${o.metadata.namespace}/*`];
    return pairs.map(([k, v]) => `${o.metadata.namespace}/${k}=${v}`);
  },
  label: (o) => Object.entries(o.metadata.labels ?? {}).map(([k, v]) => `${o.metadata.namespace ?? ''}/${k}=${v}`),
  owner: (o) =>
    (o.metadata.ownerReferences ?? [])
      .filter((r: any) => typeof r?.uid === 'string')
      .flatMap((r: any) => [`${o.metadata.namespace ?? ''}/${r.uid}`, `*/${r.uid}`]),
};

/** A metav1 LabelSelector ({matchLabels, matchExpressions}) rather than a Service's map of labels. */
const isLabelSelector = (sel: any) => (sel.matchLabels !== null && typeof sel.matchLabels === 'object') || Array.isArray(sel.matchExpressions);

export interface ObjectReader {
  get(res: ResourceInfo, namespace: string | undefined, name: string): Promise<KubeObject | undefined>;
  /** Every object of the kind in a namespace (undefined: all namespaces). */
  list(res: ResourceInfo, namespace: string | undefined): Promise<KubeObject[]>;
  /** Objects whose indexer gives this value. */
  byIndex(res: ResourceInfo, index: IndexName, value: string): Promise<KubeObject[]>;
  /** How many objects byIndex would give, without making the list. */
  countByIndex(res: ResourceInfo, index: IndexName, value: string): Promise<number>;
  /**
   * Makes the next reads of a kind reflect the store at `revision` or later: a loop's own write (client-go's
   * expectations, by revision). False: not reached in time; the loop reads the store itself.
   */
  caughtUp(res: ResourceInfo, revision: number): Promise<boolean>;
}

/**
 * The Services whose selector matches a pod's labels: candidates from the selector index (those with
 * at least one of the pod's key=value pairs), then checked whole. Costs in proportion to the pod's
 * labels and the Services sharing a pair with it, not to the namespace's Services.
 */
export async function servicesSelecting(reader: ObjectReader, services: ResourceInfo, namespace: string, labels: Record<string, string> | undefined): Promise<KubeObject[]> {
  const found = new Map<string, KubeObject>();
  for (const [k, v] of Object.entries(labels ?? {})) {
    for (const svc of await reader.byIndex(services, 'selector', `${namespace}/${k}=${v}`)) {
      const sel: Record<string, string> = svc.spec.selector;
      if (Object.entries(sel).every(([sk, sv]) => labels![sk] === sv)) found.set(svc.metadata.name!, svc);
    }
  }
  return [...found.values()];
}

/**
 * The objects of a kind whose metav1 LabelSelector (spec.selector: the PodDisruptionBudgets of a pod)
 * selects these labels: candidates from the selector index (a matchLabels pair in common, or no
 * matchLabels at all), then checked whole. A missing selector selects nothing, an empty one everything,
 * an invalid one nothing. Costs in proportion to the labels and those candidates.
 */
export async function selectorsMatching(reader: ObjectReader, res: ResourceInfo, namespace: string, labels: Record<string, string> | undefined): Promise<KubeObject[]> {
  const found = new Map<string, KubeObject>();
  const values = [...Object.entries(labels ?? {}).map(([k, v]) => `${namespace}/${k}=${v}`), `${namespace}/*`];
  for (const value of values) {
    for (const o of await reader.byIndex(res, 'selector', value)) {
      if (found.has(o.metadata.name!)) continue;
      let matches = false;
      try {
        matches = labelSelectorFromMetav1(o.spec?.selector).matches(labels ?? {});
      } catch {
        // An invalid selector selects nothing.
      }
      if (matches) found.set(o.metadata.name!, o);
    }
  }
  return [...found.values()];
}

/**
 * The objects of a kind in a namespace that an equality selector (a Service's spec.selector) matches:
 * the label index's candidates for the selector's rarest pair, then checked whole. Costs in proportion
 * to those candidates, not to the namespace (client-go's lister scans the namespace instead).
 */
export async function objectsSelectedBy(reader: ObjectReader, res: ResourceInfo, namespace: string, selector: Record<string, string>): Promise<KubeObject[]> {
  const pairs = Object.entries(selector);
  if (pairs.length === 0) return [];
  let rarest = '';
  let fewest = Infinity;
  for (const [k, v] of pairs) {
    const n = await reader.countByIndex(res, 'label', `${namespace}/${k}=${v}`);
    if (n === 0) return [];
    if (n < fewest) [rarest, fewest] = [`${namespace}/${k}=${v}`, n];
  }
  return (await reader.byIndex(res, 'label', rarest)).filter((o) => pairs.every(([k, v]) => o.metadata.labels?.[k] === v));
}

/**
 * Reads through the registry, each kind and namespace listed once and kept for the reader's life (one
 * stream batch). An index lookup needs a namespace to list: the selector and owner indexes' values carry
 * it; the controller and node indexes are looked up in a list of all namespaces.
 */
export class StoreReader implements ObjectReader {
  private readonly lists = new Map<string, Promise<KubeObject[]>>();
  /** Index maps built from those lists, by "list id|index name", each at most once per list. */
  private readonly indexed = new Map<string, Promise<Map<string, KubeObject[]>>>();
  /** Whether an owner uid may have dependents (mayOwn), as read in this batch. */
  private readonly owners = new Map<string, Promise<boolean>>();
  /** Store lists made, by "resource namespace" (for tests and the cost model). */
  readonly listed: string[] = [];
  /** pageSize: list in pages of so many items (limit/continue), one Query after another (the full resync). */
  constructor(
    private readonly registry: Registry,
    private readonly pageSize = 0,
  ) {}

  list(res: ResourceInfo, namespace: string | undefined): Promise<KubeObject[]> {
    const id = `${res.group}/${res.resource} ${namespace ?? '*'}`;
    let l = this.lists.get(id);
    if (!l) {
      this.listed.push(id);
      // Items of a list carry no apiVersion/kind; objects read one by one, and the informers', do. A
      // loop may get() an object from this list and make it an owner (controllerRefTo needs its kind).
      const head = { apiVersion: apiVersionOf(res), kind: res.kind };
      l = this.listAll(res, res.namespaced ? namespace : undefined).then((items) => items.map((o) => ({ ...head, ...o })));
      this.lists.set(id, l);
      // A failed list is not kept: the next read tries again.
      l.catch(() => this.lists.delete(id));
    }
    return l;
  }

  private async listAll(res: ResourceInfo, namespace: string | undefined): Promise<KubeObject[]> {
    if (!this.pageSize) return (await this.registry.list(res, namespace)).items;
    const items: KubeObject[] = [];
    let next: string | undefined;
    do {
      const page = await this.registry.list(res, namespace, { limit: this.pageSize, ...(next ? { continue: next } : {}) });
      items.push(...page.items);
      next = page.metadata.continue || undefined;
    } while (next);
    return items;
  }

  /** Forgets this batch's lists of the kind: they may predate the write, and the next read lists again. */
  async caughtUp(res: ResourceInfo, _revision: number): Promise<boolean> {
    this.owners.clear(); // a write of the loop's may have named an owner
    for (const id of [...this.lists.keys()]) if (id.startsWith(`${res.group}/${res.resource} `)) this.lists.delete(id);
    for (const id of [...this.indexed.keys()]) if (id.startsWith(`${res.group}/${res.resource} `)) this.indexed.delete(id);
    return true;
  }

  async get(res: ResourceInfo, namespace: string | undefined, name: string): Promise<KubeObject | undefined> {
    // From the namespace's list when this reader has made it; otherwise one get, not a list.
    const listed = this.lists.get(`${res.group}/${res.resource} ${namespace ?? '*'}`);
    if (listed) return (await listed).find((o) => o.metadata.name === name);
    try {
      return await this.registry.get(res, namespace, name);
    } catch (e) {
      if (e instanceof ApiError && e.code === 404) return undefined;
      throw e;
    }
  }

  async byIndex(res: ResourceInfo, index: IndexName, value: string): Promise<KubeObject[]> {
    if (index === 'owner' && !(await this.mayOwn(value))) return [];
    return [...((await this.indexMap(res, index, value)).get(value) ?? [])];
  }

  async countByIndex(res: ResourceInfo, index: IndexName, value: string): Promise<number> {
    if (index === 'owner' && !(await this.mayOwn(value))) return 0;
    return (await this.indexMap(res, index, value)).get(value)?.length ?? 0;
  }

  /**
   * Whether any object may name the owner of an owner index value ("namespace/uid"): the store's count of
   * its dependents (apiserver/dependents.ts), read once per uid and batch, so the garbage collector lists
   * no dependent kind for an object that owns nothing (every deleted pod asked for 27 lists).
   */
  private mayOwn(value: string): Promise<boolean> {
    const uid = value.slice(value.indexOf('/') + 1);
    let m = this.owners.get(uid);
    if (!m) {
      m = mayHaveDependents(this.registry.backend, uid);
      this.owners.set(uid, m);
      m.catch(() => this.owners.delete(uid));
    }
    return m;
  }

  private indexMap(res: ResourceInfo, index: IndexName, value: string): Promise<Map<string, KubeObject[]>> {
    const namespaced = index === 'selector' || index === 'owner' || index === 'label';
    // "*": any namespace (the owner index's values for cluster-scoped owners), from one list of all.
    const inValue = namespaced ? value.slice(0, value.indexOf('/')) : undefined;
    const ns = inValue === '*' ? undefined : inValue;
    const id = `${res.group}/${res.resource} ${ns ?? '*'}|${index}`;
    let m = this.indexed.get(id);
    if (!m) {
      m = this.list(res, ns).then((items) => {
        const byValue = new Map<string, KubeObject[]>();
        for (const o of items)
          for (const v of new Set(INDEXERS[index](o))) {
            const l = byValue.get(v);
            if (l) l.push(o);
            else byValue.set(v, [o]);
          }
        return byValue;
      });
      this.indexed.set(id, m);
      m.catch(() => this.indexed.delete(id));
    }
    return m;
  }
}
