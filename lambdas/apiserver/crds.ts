// How an apiserver learns which custom resources to serve: the CustomResourceDefinitions in its store.
// Each ApiServer has its own KindRegistry layered over the process-wide one (kinds/index.ts), holding one
// kind per served version of every Established CRD (kinds/apiextensions/customresource.ts); this module
// keeps that layer equal to the store's CRDs.
//
// When it looks (both modes share the code; only the trigger differs):
//   - `follow()` (skiff up): a watch on the CRD prefix of the store; every change re-reads the CRDs. The
//     local apiserver is one long-lived process, so it sees a CRD change within an event-loop turn or two
//     and reads nothing per request.
//   - `fresh()` (every request when not following, i.e. each apiserver Lambda instance): the CRDs are
//     re-read when the instance's view is older than `maxAgeMs` (1 s). Cost: at most one list of the CRD
//     prefix per instance per second, and only on requests (an idle instance reads nothing). Concurrent
//     requests share one read.
//   - `unknown()` (both modes): a request for a group/version/resource this server does not serve re-reads
//     (at most every 250 ms per instance; a request in between waits for the next re-read), so a CRD Established a moment ago is served to the
//     client that waited for it (kubectl wait --for condition=established, then apply).
// A CRD is served as soon as it is Established (the CRD controller sets it once its names are accepted),
// and until it is gone (while Terminating, its custom resources can still be read and deleted).

import type { Backend } from '../storage/backend.ts';
import { KindRegistry, kinds as builtInKinds } from '../kinds/index.ts';
import { customResourceKind } from '../kinds/apiextensions/customresource.ts';
import { customResourceDefinition } from '../kinds/apiextensions/customresourcedefinition.ts';
import { storagePrefix } from '../machinery/resources.ts';
import type { KindStrategy } from '../kinds/kind.ts';
import type { CustomResourceDefinition } from '../apiextensions/index.ts';

const crdPrefix = storagePrefix(customResourceDefinition.info, undefined);

/** kube's version priority (version.CompareKubeAwareVersionStrings): GA > beta > alpha, higher first; others last, by name. */
export function compareKubeVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (!m) return undefined;
    return { major: Number(m[1]), level: m[2] === 'alpha' ? 0 : m[2] === 'beta' ? 1 : 2, minor: m[3] ? Number(m[3]) : 0 };
  };
  const pa = parse(a);
  const pb = parse(b);
  if (pa && !pb) return -1;
  if (!pa && pb) return 1;
  if (!pa || !pb) return a < b ? -1 : a > b ? 1 : 0;
  if (pa.level !== pb.level) return pb.level - pa.level;
  if (pa.major !== pb.major) return pb.major - pa.major;
  return pb.minor - pa.minor;
}

export function isEstablished(crd: CustomResourceDefinition): boolean {
  return (crd.status?.conditions ?? []).some((c) => c.type === 'Established' && c.status === 'True');
}

export interface CustomResourceServingOptions {
  /** How old the view may be before a request re-reads the CRDs (when not following a watch). */
  maxAgeMs?: number;
  /** Least time between two re-reads caused by requests for unknown resources. */
  unknownRefreshMs?: number;
}

export class CustomResourceServing {
  /** The kinds this server serves: the built-in ones and its store's custom resources. */
  readonly kinds = new KindRegistry([], builtInKinds);
  /** The CRD (uid and resourceVersion) each registered kind was built from, by group/version/resource. */
  private built = new Map<string, { from: string; kind: KindStrategy }>();
  private lastRead = -Infinity;
  private lastUnknown = -Infinity;
  private reading: Promise<void> | undefined;
  private unknownRead: Promise<void> | undefined;
  private following = false;
  private readonly maxAgeMs: number;
  private readonly unknownRefreshMs: number;

  constructor(
    private readonly backend: Backend,
    opts: CustomResourceServingOptions = {},
  ) {
    this.maxAgeMs = opts.maxAgeMs ?? 1000;
    this.unknownRefreshMs = opts.unknownRefreshMs ?? 250;
  }

  /** True while a watch keeps the view current (follow()). */
  get isFollowing(): boolean {
    return this.following;
  }

  /** Before serving a request: a view older than maxAgeMs is refreshed (unless a watch keeps it current). */
  async fresh(): Promise<void> {
    if (this.following) return;
    if (performance.now() - this.lastRead < this.maxAgeMs) return;
    await this.refresh();
  }

  /**
   * A request named a resource this server does not serve: re-read, so the caller can look again. Re-reads
   * of this kind are at least unknownRefreshMs apart (a request waits for the next one rather than being
   * refused), and a re-read that began after the request arrived answers it too.
   */
  async unknown(): Promise<void> {
    const arrived = performance.now();
    const wait = this.lastUnknown + this.unknownRefreshMs - arrived;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (this.lastUnknown >= arrived) return this.unknownRead;
    this.lastUnknown = performance.now();
    // After a read in flight (it may have begun before this request arrived), one more.
    this.unknownRead = (this.reading ?? Promise.resolve()).catch(() => {}).then(() => this.refresh());
    return this.unknownRead;
  }

  /** Re-reads the CRDs (one list of their prefix); concurrent callers share the read. */
  refresh(): Promise<void> {
    this.reading ??= this.read().finally(() => (this.reading = undefined));
    return this.reading;
  }

  /**
   * Keeps the view current from a watch on the CRD prefix until `signal` aborts (skiff up). Requests then
   * read nothing; a watch that fails falls back to per-request refreshes until it is back.
   */
  async follow(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        const rev = await this.readAt();
        this.following = true;
        for await (const _batch of this.backend.watch(crdPrefix, rev, signal)) {
          if (_batch.events.length) await this.refresh();
        }
      } catch (e) {
        if (signal.aborted) break;
        console.error('apiserver: following CustomResourceDefinitions failed, retrying', e);
      } finally {
        this.following = false;
      }
      // Stopped (the watch ended because the signal aborted): done. Otherwise retry after a second; the
      // timer is unref'd, so an abort here would leave close() awaiting a promise nothing keeps alive.
      if (signal.aborted) break;
      await new Promise((r) => setTimeout(r, 1000).unref());
    }
  }

  private async readAt(): Promise<number> {
    const list = await this.backend.list(crdPrefix, {});
    this.apply(list.kvs.map((kv) => JSON.parse(kv.value) as CustomResourceDefinition), list.kvs.map((kv) => kv.modRevision));
    return list.revision;
  }

  private async read(): Promise<void> {
    const started = performance.now();
    await this.readAt();
    this.lastRead = started;
  }

  /** Makes the registered kinds those of `crds`: kinds of changed CRDs are rebuilt, of removed ones dropped. */
  private apply(crds: CustomResourceDefinition[], revisions: number[]): void {
    const want = new Map<string, { from: string; crd: CustomResourceDefinition; version: string }>();
    crds.forEach((crd, i) => {
      if (!isEstablished(crd)) return;
      const from = `${String(crd.metadata?.uid)}@${revisions[i]}`;
      const names = crd.status?.acceptedNames?.plural ? crd.status.acceptedNames : crd.spec.names;
      const versions = (crd.spec.versions ?? []).filter((v) => v.served).map((v) => v.name).sort(compareKubeVersions);
      for (const version of versions) want.set(`${crd.spec.group}/${version}/${names.plural}`, { from, crd, version });
    });
    for (const [key, b] of this.built) {
      if (want.get(key)?.from === b.from) continue;
      const { group, version, resource } = b.kind.info;
      this.kinds.unregister(group, version, resource);
      this.built.delete(key);
    }
    for (const [key, w] of want) {
      if (this.built.has(key)) continue;
      let kind: KindStrategy;
      try {
        kind = customResourceKind(w.crd, w.version);
        this.kinds.register(kind);
      } catch (e) {
        // A CRD accepted before a rule changed, or a kind a built-in one already serves: not served.
        console.error(`apiserver: cannot serve ${key} of CustomResourceDefinition ${String(w.crd.metadata?.name)}: ${(e as Error).message}`);
        continue;
      }
      this.built.set(key, { from: w.from, kind });
    }
  }
}
