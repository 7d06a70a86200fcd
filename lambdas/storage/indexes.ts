// Secondary indexes a backend may keep so that a hot filtered list reads only what can match (issue #16:
// every node's agent lists `pods?fieldSelector=spec.nodeName=<node>`, which on DynamoDB was a Query of
// every pod of the cluster, per node, per poll). An index names the keys under a prefix by one value
// read from the stored object. A list that passes ListOptions.index promises that only keys whose
// indexed value is the one given can pass its filter; a backend may read just those (DynamoDB does,
// storage/dynamodb.ts) or ignore the hint (SQLite, where a list of the prefix is cheap). The result is
// the same either way: the filter still decides.
//
// Kubernetes-specific, as kine's field indexes are not: the backend stays opaque bytes except here,
// where an index reads one field of the JSON value.

export interface KeyIndex {
  name: string;
  /** The keys it covers (one DynamoDB collection). */
  prefix: string;
  /** The indexed value of a stored value (undefined: the key is in no index entry). */
  valueOf(value: string): string | undefined;
}

/** Pods by the node they are bound to (the agents' list; kube's `spec.nodeName` field selector). */
export const PODS_BY_NODE: KeyIndex = {
  name: 'pods-by-node',
  prefix: '/registry/core/pods/',
  valueOf(value) {
    try {
      const n = (JSON.parse(value) as { spec?: { nodeName?: unknown } }).spec?.nodeName;
      return typeof n === 'string' && n !== '' ? n : undefined;
    } catch {
      return undefined;
    }
  },
};

export const INDEXES: readonly KeyIndex[] = [PODS_BY_NODE];

/** The index covering a key, if any. */
export function indexOfKey(key: string): KeyIndex | undefined {
  return INDEXES.find((i) => key.startsWith(i.prefix));
}

/**
 * Change feeds: collections whose writes a backend also records by collection, so that a watch of the
 * collection reads its own changes rather than every write of the cluster (DynamoDB: an item
 * `chg#<prefix>` / revision per write, in the write's transaction). Every node follows every Service
 * and Endpoints; a deployed node asks what changed since its last look (a short watch) instead of
 * listing them all, and that read costs what changed. Kubernetes-specific, like the indexes above.
 */
export const FEEDS: readonly string[] = ['/registry/core/services/', '/registry/core/endpoints/'];

/** The feed a key's writes go to, if any. */
export function feedOfKey(key: string): string | undefined {
  return FEEDS.find((f) => key.startsWith(f));
}
