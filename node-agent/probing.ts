// The agent's prober, as kubelet's prober manager: one tracker per probe of each running container,
// probes run when due (never two of one probe at once), and a settled result that changes wakes the pod's
// worker. Until a startup probe succeeds, liveness and readiness are not run; a failed startup or
// liveness probe makes the worker restart the container; readiness drives the container's `ready`.

import type { KubeObject } from '../lambdas/machinery/types.ts';
import { ProbeTracker, runProbe } from './probes.ts';
import { PAUSE, type DockerRuntime, type RunRecord } from './runtime.ts';

export type Kind = 'startup' | 'liveness' | 'readiness';

interface Entry {
  uid: string;
  container: string;
  trackers: Partial<Record<Kind, ProbeTracker>>;
  inflight: Set<Kind>;
  target: { podIP: string; containerPorts: { name?: string; containerPort: number }[] };
}

export class ProbeSet {
  private readonly entries = new Map<string, Entry>();
  /** Called with every probe attempt's result (metrics.ts's prober_probe_total). */
  onResult?: (uid: string, container: string, kind: Kind, ok: boolean) => void;

  constructor(
    private readonly runtime: DockerRuntime,
    /** Called with a pod uid when one of its containers' probe results changes. */
    private readonly onChange: (uid: string) => void,
    /** Called on every failed probe (the kubelet's Unhealthy event). */
    private readonly onFailure: (uid: string, container: string, kind: Kind, message: string) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  /** Keeps a tracker set for each running container with probes; forgets the rest. */
  update(pods: Map<string, KubeObject>, runs: RunRecord[]): void {
    const live = new Set<string>();
    const sandboxes = new Map(runs.filter((r) => r.name === PAUSE && r.state === 'running').map((r) => [r.uid, r]));
    for (const r of runs) {
      if (r.state !== 'running' || r.kind !== 'app') continue;
      const pod = pods.get(r.uid);
      const c = pod?.spec?.containers?.find((x: { name: string }) => x.name === r.name);
      if (!c || !(c.startupProbe || c.livenessProbe || c.readinessProbe)) continue;
      live.add(r.id);
      if (this.entries.has(r.id)) continue;
      const started = r.startedMs ?? this.now();
      const trackers: Entry['trackers'] = {};
      if (c.startupProbe) trackers.startup = new ProbeTracker(c.startupProbe, 'startup', started);
      if (c.livenessProbe) trackers.liveness = new ProbeTracker(c.livenessProbe, 'liveness', started);
      if (c.readinessProbe) trackers.readiness = new ProbeTracker(c.readinessProbe, 'readiness', started);
      this.entries.set(r.id, { uid: r.uid, container: r.name, trackers, inflight: new Set(), target: { podIP: sandboxes.get(r.uid)?.ip ?? '127.0.0.1', containerPorts: c.ports ?? [] } });
    }
    for (const id of this.entries.keys()) if (!live.has(id)) this.entries.delete(id);
  }

  /** Runs every probe that is due. */
  tick(): void {
    const now = this.now();
    for (const [id, e] of this.entries) {
      const startupPending = e.trackers.startup && e.trackers.startup.result !== 'success';
      for (const kind of ['startup', 'liveness', 'readiness'] as Kind[]) {
        const t = e.trackers[kind];
        if (!t || e.inflight.has(kind) || !t.due(now)) continue;
        if (kind !== 'startup' && startupPending) continue;
        if (kind === 'startup' && !startupPending) continue; // done: startup probes stop once they succeed
        e.inflight.add(kind);
        void runProbe(t.probe, { ...e.target, exec: (cmd: string[], timeoutMs: number) => this.runtime.exec(id, cmd, timeoutMs) })
          .catch((err: Error) => ({ ok: false, message: err.message }))
          .then((r) => {
            e.inflight.delete(kind);
            if (this.entries.get(id) !== e) return; // the container went meanwhile
            this.onResult?.(e.uid, e.container, kind, r.ok);
            if (!r.ok) this.onFailure(e.uid, e.container, kind, r.message);
            if (t.record(r.ok, this.now()) !== undefined) this.onChange(e.uid);
          });
      }
    }
  }

  /** Which failed probe means the container must be restarted, if any. */
  verdict(id: string): 'startup' | 'liveness' | undefined {
    const e = this.entries.get(id);
    if (!e) return undefined;
    if (e.trackers.startup?.result === 'failure') return 'startup';
    if (e.trackers.liveness?.result === 'failure') return 'liveness';
    return undefined;
  }

  /** The container's `started` and `ready` as its probes say (no probe: true; not probed yet: false). */
  status(id: string, c: { startupProbe?: unknown; readinessProbe?: unknown }): { started: boolean; ready: boolean } {
    const e = this.entries.get(id);
    if (!e) return { started: !c.startupProbe, ready: !c.startupProbe && !c.readinessProbe };
    const started = !e.trackers.startup || e.trackers.startup.result === 'success';
    const ready = started && (!e.trackers.readiness || e.trackers.readiness.result === 'success');
    return { started, ready };
  }

  forget(id: string): void {
    this.entries.delete(id);
  }
}
