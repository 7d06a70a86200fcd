// The pod worker: one level-triggered sync of one pod, as kubelet's syncPod. It reads what the engine
// has (the pod's containers, found by label) and what the pod asks for, and moves the engine one step
// toward it: sandbox (pause container) first, then init containers one at a time, then the app
// containers, restarting exited ones by the pod's restartPolicy with exponential back-off. Then it
// writes the pod's status if it changed. Running it twice, or after the agent restarted, is harmless:
// every step first looks whether it is done already.

import { runPreStop } from './lifecycle.ts';
import { join } from 'node:path';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { ContainerCreateOptions } from 'dockerode';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { parseQuantity } from '../lambdas/machinery/quantity.ts';
import { ApiError } from '../lambdas/machinery/status.ts';
import { kubeEventWriter, type KubeClient } from './kube-client.ts';
import { recordEvent, type EventWriter } from '../lambdas/controllers/events.ts';
import { PAUSE, type DockerRuntime, type PodRef, type RunRecord } from './runtime.ts';
import { containerEnv, expandArgs, referencedObjects } from './env.ts';
import { claimVolumes, containerBinds, prepareVolumes, readOnlyVolumes, removePodDir, serviceAccountTokens, type VolumeObjects } from './volumes.ts';
import type { TokenManager } from './token-manager.ts';
import type { ProbeSet } from './probing.ts';
import { podDnsConfig, resolvConfText } from './pod-dns.ts';

export interface PodWorkerOptions {
  runtime: DockerRuntime;
  kube: KubeClient;
  nodeName: string;
  hostIP: string;
  /** Root of the pods' directories (volumes): <podsDir>/<uid>. */
  podsDir: string;
  pauseImage: string;
  /** CrashLoopBackOff: the first restart is immediate, then base, 2·base, ... up to max. */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Probe state of running containers (owned by the agent's prober). */
  probes: ProbeSet;
  /** DNS for pods (service networking fills this in). */
  dns?: { servers: string[]; searches: string[]; options: string[] };
  /** Projected service account tokens (token-manager.ts); without it such a volume fails to set up. */
  tokens?: TokenManager;
  /**
   * Where pods reach the apiserver when not through the `kubernetes` Service's cluster IP (a deployed
   * node: the apiserver is a host name, not an address a VIP can lead to; see "In-cluster API access"
   * in ARCHITECTURE.md): KUBERNETES_SERVICE_HOST/PORT name it instead.
   */
  apiServer?: { host: string; port: number };
  now(): number;
  /**
   * The pod as the apiserver stored it after a status write (`written` replaced `basedOn`). The agent
   * keeps it as the desired pod: with a polling informer the next sync would otherwise start from the
   * version just overwritten, and its write would meet a 409 until the next poll.
   */
  statusWritten?(basedOn: KubeObject, written: KubeObject): void;
  /** A pod sandbox was created and started, or failed to (kubelet_started_pods_total, metrics.ts). */
  sandboxStarted?(ok: boolean): void;
}

export interface SyncResult {
  /** Sync this pod again after so many ms (a back-off ends, a start is pending...). */
  requeueMs?: number;
}

/** Why a container is waiting, when the engine has nothing to say (config errors, image errors). */
interface Waiting {
  reason: string;
  message: string;
}

type Container = Record<string, any>;

const rfc3339 = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const TEN_MINUTES = 10 * 60_000;

export class PodWorker {
  /** Per pod uid and container name: why it waits (cleared when it runs). */
  private readonly waiting = new Map<string, Waiting>();

  private readonly events: EventWriter;

  constructor(private readonly o: PodWorkerOptions) {
    this.events = kubeEventWriter(o.kube);
  }

  /** Records an Event about the pod, as the kubelet does; a failure to record never fails the sync. */
  event(pod: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): void {
    void recordEvent(this.events, pod, { type, reason, message, component: 'kubelet', host: this.o.nodeName }).catch(() => {});
  }

  podDir(uid: string): string {
    return join(this.o.podsDir, uid);
  }

  /** Brings one pod's containers toward its spec, then reports its status. */
  async sync(pod: KubeObject, runs: RunRecord[]): Promise<SyncResult> {
    const ref: PodRef = { uid: pod.metadata.uid!, namespace: pod.metadata.namespace!, name: pod.metadata.name! };
    if (pod.metadata.deletionTimestamp) {
      for (const r of runs) if (r.name !== PAUSE && r.state === 'running') this.event(pod, 'Normal', 'Killing', `Stopping container ${r.name}`);
      await this.terminate(ref, runs, gracePeriod(pod), pod);
      await this.finishDeletion(pod);
      return {};
    }
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') {
      // A finished pod never runs again: stop what is left (the sandbox), keep exited containers for logs.
      for (const r of runs) if (r.state === 'running') await this.o.runtime.stop(r.id, 0);
      return {};
    }

    const spec = pod.spec ?? {};
    const requeue: number[] = [];
    let objects: { configMaps: Map<string, KubeObject>; secrets: Map<string, KubeObject> } | undefined;
    const needObjects = async () => (objects ??= await this.fetchObjects(pod));

    // 1. The sandbox: volumes on the host and the pause container holding the namespaces.
    let sandbox = latest(runs, PAUSE);
    const podKey = (name: string) => `${ref.uid}/${name}`;
    try {
      prepareVolumes(pod, this.podDir(ref.uid), await needObjects());
      this.waiting.delete(podKey(PAUSE));
      // The pod is synced again when one of its tokens is due for refresh, and the volume rewritten.
      const refresh = this.o.tokens?.nextRefreshMs(ref.uid);
      if (refresh !== undefined) requeue.push(refresh);
    } catch (e) {
      this.waiting.set(podKey(PAUSE), { reason: 'ContainerCreating', message: `MountVolume.SetUp failed: ${(e as Error).message}` });
      // As kubelet, which says why a volume cannot be set up in a FailedMount event (repeats are counted).
      this.event(pod, 'Warning', 'FailedMount', `MountVolume.SetUp failed for ${(e as Error).message.replace(/^(volume "[^"]*"): /, '$1 : ')}`.slice(0, 1024));
      return this.report(pod, runs, { requeueMs: 2000 });
    }
    if (!sandbox || sandbox.state !== 'running') {
      if (sandbox?.state === 'exited') {
        // The sandbox died: its namespaces are gone, so every container of the pod starts over in a new one.
        this.event(pod, 'Normal', 'SandboxChanged', 'Pod sandbox changed, it will be killed and re-created.');
        for (const r of runs) if (r.state === 'running') await this.o.runtime.stop(r.id, gracePeriod(pod));
      }
      let id: string;
      try {
        id = sandbox?.state === 'created' ? sandbox.id : await this.o.runtime.create(ref, PAUSE, 'pause', sandbox ? sandbox.restart + 1 : 0, this.pauseConfig(pod));
        await this.o.runtime.start(id);
      } catch (e) {
        this.o.sandboxStarted?.(false);
        throw e;
      }
      this.o.sandboxStarted?.(true);
      sandbox = await this.o.runtime.inspect(id);
      if (!sandbox || sandbox.state !== 'running') return this.report(pod, runs, { requeueMs: 1000 });
      runs = [...runs.filter((r) => r.id !== id), sandbox];
    }
    const restartPolicy: string = spec.restartPolicy ?? 'Always';

    // 2. Init containers, in order, each to successful completion.
    let initialized = true;
    for (const c of (spec.initContainers ?? []) as Container[]) {
      const cur = latest(runs, c.name);
      if (cur?.state === 'exited' && cur.exitCode === 0) continue;
      initialized = false;
      if (cur?.state === 'running') break;
      if (cur?.state === 'exited' && restartPolicy === 'Never') break; // the pod has failed
      const step = await this.advance(pod, ref, c, 'init', cur, sandbox, runs, needObjects);
      if (step.requeueMs !== undefined) requeue.push(step.requeueMs);
      break;
    }

    // 3. App containers, all at once, restarted by the pod's policy.
    if (initialized) {
      for (const c of (spec.containers ?? []) as Container[]) {
        const cur = latest(runs, c.name);
        if (cur?.state === 'running') {
          const verdict = this.o.probes.verdict(cur.id);
          if (verdict === 'liveness' || verdict === 'startup') {
            // Kubernetes kills a container that fails liveness (or never starts up) and restarts it by policy.
            this.waiting.delete(podKey(c.name));
            this.event(pod, 'Normal', 'Killing', `Container ${c.name} failed ${verdict} probe, will be restarted`);
            await this.o.runtime.stop(cur.id, gracePeriod(pod));
            requeue.push(0);
          }
          continue;
        }
        if (cur?.state === 'exited' && !shouldRestart(restartPolicy, cur.exitCode)) continue;
        const step = await this.advance(pod, ref, c, 'app', cur, sandbox, runs, needObjects);
        if (step.requeueMs !== undefined) requeue.push(step.requeueMs);
      }
    }

    const fresh = await this.o.runtime.list(ref.uid);
    return this.report(pod, fresh, { requeueMs: requeue.length ? Math.min(...requeue) : undefined });
  }

  /** Creates and starts the next run of a container, unless it must wait (back-off, config, image). */
  private async advance(
    pod: KubeObject,
    ref: PodRef,
    c: Container,
    kind: 'init' | 'app',
    cur: RunRecord | undefined,
    sandbox: RunRecord,
    runs: RunRecord[],
    needObjects: () => Promise<{ configMaps: Map<string, KubeObject>; secrets: Map<string, KubeObject> }>,
  ): Promise<SyncResult> {
    const key = `${ref.uid}/${c.name}`;
    if (cur?.state === 'created') {
      await this.o.runtime.start(cur.id);
      this.waiting.delete(key);
      return { requeueMs: 0 };
    }
    if (cur?.state === 'exited') {
      const wait = backoffDelay(cur, this.o.backoffBaseMs, this.o.backoffMaxMs) - (this.o.now() - (cur.finishedMs ?? Date.parse(cur.createdAt)));
      if (wait > 0) {
        if (this.waiting.get(key)?.reason !== 'CrashLoopBackOff') {
          this.event(pod, 'Warning', 'BackOff', `Back-off restarting failed container ${c.name} in pod ${ref.name}_${ref.namespace}(${ref.uid})`);
        }
        this.waiting.set(key, {
          reason: 'CrashLoopBackOff',
          message: `back-off ${Math.round(backoffDelay(cur, this.o.backoffBaseMs, this.o.backoffMaxMs) / 1000)}s restarting failed container=${c.name} pod=${ref.name}_${ref.namespace}(${ref.uid})`,
        });
        return { requeueMs: wait };
      }
    }
    // The image.
    const image: string = c.image;
    const policy: string = c.imagePullPolicy ?? 'IfNotPresent';
    const present = await this.o.runtime.hasImage(image);
    if (policy === 'Never' && !present) {
      this.event(pod, 'Warning', 'ErrImageNeverPull', `Container image "${image}" is not present with pull policy of Never`);
      this.waiting.set(key, { reason: 'ErrImageNeverPull', message: `Container image "${image}" is not present with pull policy of Never` });
      return { requeueMs: 5000 };
    }
    if (policy === 'Always' || !present) {
      try {
        this.event(pod, 'Normal', 'Pulling', `Pulling image "${image}"`);
        await this.o.runtime.pull(image);
        this.event(pod, 'Normal', 'Pulled', `Successfully pulled image "${image}"`);
      } catch (e) {
        this.event(pod, 'Warning', 'Failed', `Failed to pull image "${image}": ${(e as Error).message}`);
        if (!present) {
          const before = this.waiting.get(key)?.reason;
          this.waiting.set(key, {
            reason: before === 'ErrImagePull' || before === 'ImagePullBackOff' ? 'ImagePullBackOff' : 'ErrImagePull',
            message: `failed to pull image "${image}": ${(e as Error).message}`,
          });
          return { requeueMs: 5000 };
        }
        // Always, with the image present and no registry answering: run what we have, as the engine would.
      }
    } else {
      this.event(pod, 'Normal', 'Pulled', `Container image "${image}" already present on machine`);
    }
    // Env, command and mounts.
    let createOpts: ContainerCreateOptions;
    try {
      createOpts = await this.containerConfig(pod, c, sandbox, await needObjects());
    } catch (e) {
      this.event(pod, 'Warning', 'Failed', `Error: ${(e as Error).message}`);
      this.waiting.set(key, { reason: 'CreateContainerConfigError', message: (e as Error).message });
      return { requeueMs: 2000 };
    }
    const restart = cur ? cur.restart + 1 : 0;
    const id = await this.o.runtime.create(ref, c.name, kind, restart, createOpts);
    // Keep the run before this one (for `kubectl logs --previous`); older ones go.
    for (const old of runs) if (old.name === c.name && old.restart < restart - 1) await this.o.runtime.remove(old.id);
    this.event(pod, 'Normal', 'Created', `Created container ${c.name}`);
    await this.o.runtime.start(id);
    this.event(pod, 'Normal', 'Started', `Started container ${c.name}`);
    this.waiting.delete(key);
    return {};
  }

  private pauseConfig(pod: KubeObject): ContainerCreateOptions {
    const spec = pod.spec ?? {};
    const exposed: Record<string, object> = {};
    const bindings: Record<string, { HostPort: string; HostIp?: string }[]> = {};
    for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])] as Container[]) {
      for (const p of c.ports ?? []) {
        if (!p.hostPort) continue;
        const k = `${p.containerPort}/${(p.protocol ?? 'TCP').toLowerCase()}`;
        exposed[k] = {};
        (bindings[k] ??= []).push({ HostPort: String(p.hostPort), ...(p.hostIP ? { HostIp: p.hostIP } : {}) });
      }
    }
    return {
      Image: this.o.pauseImage,
      Hostname: (spec.hostname ?? pod.metadata.name!).slice(0, 63),
      ...(spec.subdomain ? { Domainname: `${spec.subdomain}.${pod.metadata.namespace}.svc.cluster.local` } : {}),
      ExposedPorts: exposed,
      HostConfig: {
        NetworkMode: spec.hostNetwork ? 'host' : this.o.runtime.network,
        IpcMode: 'shareable',
        PortBindings: bindings,
      },
    };
  }

  /**
   * Writes the pod's resolv.conf (pod-dns.ts: kubelet's rules for dnsPolicy and dnsConfig) into its
   * directory and returns the file, bind-mounted at /etc/resolv.conf in each of its containers; undefined
   * when the engine's own configuration is what the pod asked for (Default policy, no dnsConfig).
   */
  private podDns(pod: KubeObject): string | undefined {
    const cfg = podDnsConfig(pod, this.o.dns, () => {
      try {
        return readFileSync('/etc/resolv.conf', 'utf8');
      } catch {
        return '';
      }
    });
    if (!cfg) return undefined;
    const file = join(this.podDir(pod.metadata.uid!), 'resolv.conf');
    mkdirSync(this.podDir(pod.metadata.uid!), { recursive: true });
    writeFileSync(file, resolvConfText(cfg));
    return file;
  }

  private async containerConfig(
    pod: KubeObject,
    c: Container,
    sandbox: RunRecord,
    objects: { configMaps: Map<string, KubeObject>; secrets: Map<string, KubeObject> },
  ): Promise<ContainerCreateOptions> {
    const spec = pod.spec ?? {};
    const services = await this.services(pod.metadata.namespace!, spec.enableServiceLinks !== false);
    const withIPs = { ...pod, status: { ...(pod.status ?? {}), podIP: sandbox.ip, podIPs: sandbox.ip ? [{ ip: sandbox.ip }] : [], hostIP: this.o.hostIP } };
    const { env, error, warnings } = containerEnv(withIPs, c, { ...objects, services });
    if (error) throw new Error(error);
    for (const w of warnings ?? []) this.event(pod, 'Warning', 'InvalidEnvironmentVariableNames', w);
    const volumes = prepareVolumes(pod, this.podDir(pod.metadata.uid!), objects);
    const binds = containerBinds(c, volumes, env, readOnlyVolumes(pod));
    const sc = { ...(spec.securityContext ?? {}), ...(c.securityContext ?? {}) };
    // As containerd: the pod's resolv.conf, read-only when the root filesystem is (a volume mounted at
    // /etc/resolv.conf by the pod itself wins).
    const resolvConf = this.podDns(pod);
    if (resolvConf && !binds.some((b) => b.split(':')[1] === '/etc/resolv.conf')) binds.push(`${resolvConf}:/etc/resolv.conf${sc.readOnlyRootFilesystem ? ':ro' : ''}`);
    const user = sc.runAsUser !== undefined ? `${sc.runAsUser}${sc.runAsGroup !== undefined ? `:${sc.runAsGroup}` : ''}` : undefined;
    const join = `container:${sandbox.id}`;
    return {
      Image: c.image,
      ...(c.command ? { Entrypoint: expandArgs(c.command, env) } : {}),
      ...(c.args ? { Cmd: expandArgs(c.args, env) } : c.command ? { Cmd: [] } : {}),
      Env: env,
      ...(c.workingDir ? { WorkingDir: c.workingDir } : {}),
      ...(user ? { User: user } : {}),
      Tty: !!c.tty,
      OpenStdin: !!c.stdin,
      StdinOnce: !!c.stdinOnce,
      AttachStdin: false,
      HostConfig: {
        NetworkMode: spec.hostNetwork ? 'host' : join,
        IpcMode: join,
        ...(spec.shareProcessNamespace ? { PidMode: join } : {}),
        Binds: binds,
        ...resourceLimits(c),
        ...(sc.privileged ? { Privileged: true } : {}),
        ...(sc.readOnlyRootFilesystem ? { ReadonlyRootfs: true } : {}),
        ...(sc.capabilities?.add ? { CapAdd: sc.capabilities.add } : {}),
        ...(sc.capabilities?.drop ? { CapDrop: sc.capabilities.drop } : {}),
      },
    };
  }

  /** The services whose variables a container gets: its namespace's (service links), and always `kubernetes`. */
  private async services(namespace: string, links: boolean): Promise<KubeObject[]> {
    const out: KubeObject[] = [];
    if (links) out.push(...((await this.o.kube.get<{ items: KubeObject[] }>(`/api/v1/namespaces/${encodeURIComponent(namespace)}/services`)).items ?? []));
    if (!links || namespace !== 'default') {
      const k = await this.o.kube.getOptional('/api/v1/namespaces/default/services/kubernetes');
      if (k) out.push(k);
    }
    const api = this.o.apiServer;
    if (!api) return out;
    // The in-cluster clients read KUBERNETES_SERVICE_HOST/PORT only: those of a `kubernetes` service
    // whose address is the apiserver's own host and port.
    const others = out.filter((s) => !(s.metadata?.name === 'kubernetes' && (s.metadata?.namespace ?? namespace) === 'default'));
    const kubernetes = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'kubernetes', namespace: 'default' }, spec: { type: 'ClusterIP', clusterIP: api.host, ports: [{ name: 'https', protocol: 'TCP', port: api.port }] } };
    return [...others, kubernetes];
  }

  /** The ConfigMaps and Secrets the pod refers to (absent ones are simply missing from the maps). */
  private async fetchObjects(pod: KubeObject): Promise<VolumeObjects> {
    const ns = encodeURIComponent(pod.metadata.namespace!);
    const refs = referencedObjects(pod);
    const configMaps = new Map<string, KubeObject>();
    const secrets = new Map<string, KubeObject>();
    await Promise.all([
      ...[...refs.configMaps].map(async (n) => {
        const o = await this.o.kube.getOptional(`/api/v1/namespaces/${ns}/configmaps/${encodeURIComponent(n)}`);
        if (o) configMaps.set(n, o);
      }),
      ...[...refs.secrets].map(async (n) => {
        const o = await this.o.kube.getOptional(`/api/v1/namespaces/${ns}/secrets/${encodeURIComponent(n)}`);
        if (o) secrets.set(n, o);
      }),
    ]);
    // persistentVolumeClaim volumes: the volume each claim is bound to (volumes.ts).
    const claims = await claimVolumes(this.o.kube, pod);
    // projected serviceAccountToken sources: cached tokens, a TokenRequest when one is due.
    const tokens = this.o.tokens ? await serviceAccountTokens(this.o.tokens, pod) : undefined;
    return { configMaps, secrets, claims, tokens };
  }

  /**
   * Stops every container of a pod (its preStop hook, then SIGTERM, then SIGKILL after what is left of the
   * grace period: lifecycle.ts) and removes them. Without the pod (an orphaned container) there are no hooks.
   */
  async terminate(ref: PodRef, runs: RunRecord[], graceSeconds: number, pod?: KubeObject): Promise<void> {
    const apps = runs.filter((r) => r.name !== PAUSE && r.state === 'running');
    const specs = new Map<string, Record<string, any>>((pod?.spec?.containers ?? []).map((c: Record<string, any>) => [c.name, c]));
    await Promise.all(
      apps.map(async (r) => {
        const spec = specs.get(r.name);
        const target = { podIP: pod?.status?.podIP ?? '', containerPorts: spec?.ports ?? [], exec: (cmd: string[], ms: number) => this.o.runtime.exec(r.id, cmd, ms) };
        const hook = await runPreStop(spec, graceSeconds, target);
        if (hook.error && pod) this.event(pod, 'Warning', 'FailedPreStopHook', `PreStopHook failed: ${hook.error}`);
        await this.o.runtime.stop(r.id, hook.graceLeft);
      }),
    );
    await Promise.all(runs.map((r) => this.o.runtime.remove(r.id)));
    for (const r of runs) this.o.probes.forget(r.id);
    for (const k of this.waiting.keys()) if (k.startsWith(`${ref.uid}/`)) this.waiting.delete(k);
    removePodDir(this.podDir(ref.uid));
    this.o.tokens?.forgetPod(ref.uid);
  }

  /** With every container gone, the pod object itself goes (as the kubelet does: delete with grace 0). */
  private async finishDeletion(pod: KubeObject): Promise<void> {
    const m = pod.metadata;
    try {
      await this.o.kube.delete(`/api/v1/namespaces/${encodeURIComponent(m.namespace!)}/pods/${encodeURIComponent(m.name!)}`, {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        gracePeriodSeconds: 0,
        preconditions: { uid: m.uid },
      });
    } catch (e) {
      if (!(e instanceof ApiError && (e.code === 404 || e.code === 409))) throw e;
    }
  }

  /** Writes the pod's status if it differs from what the API has. */
  private async report(pod: KubeObject, runs: RunRecord[], result: SyncResult): Promise<SyncResult> {
    const status = this.podStatus(pod, runs);
    if (sameStatus(pod.status ?? {}, status)) return result;
    const m = pod.metadata;
    try {
      const written = await this.o.kube.update(`/api/v1/namespaces/${encodeURIComponent(m.namespace!)}/pods/${encodeURIComponent(m.name!)}/status`, {
        ...pod,
        status,
      });
      this.o.statusWritten?.(pod, written);
    } catch (e) {
      if (!(e instanceof ApiError && (e.code === 409 || e.code === 404))) throw e;
      // A newer version exists (its event is on the way) or the pod is gone: the next sync reports.
      return { requeueMs: Math.min(result.requeueMs ?? 500, 500) };
    }
    return result;
  }

  /** The pod's status from its containers, as kubelet's generateAPIPodStatus. */
  podStatus(pod: KubeObject, runs: RunRecord[]): Record<string, any> {
    const spec = pod.spec ?? {};
    const old = pod.status ?? {};
    const now = this.o.now();
    const restartPolicy: string = spec.restartPolicy ?? 'Always';
    const sandbox = latest(runs, PAUSE);
    const uid = pod.metadata.uid!;

    const inits = ((spec.initContainers ?? []) as Container[]).map((c) => this.containerStatus(uid, c, runs, restartPolicy, 'init'));
    const initDone = inits.every((s) => s.state.terminated?.exitCode === 0);
    const initFailed = restartPolicy === 'Never' && inits.some((s) => s.state.terminated && s.state.terminated.exitCode !== 0);
    const apps = ((spec.containers ?? []) as Container[]).map((c) => {
      const s = this.containerStatus(uid, c, runs, restartPolicy, 'app');
      if (!initDone && s.state.waiting?.reason === 'ContainerCreating') s.state.waiting.reason = 'PodInitializing';
      return s;
    });

    let phase = 'Pending';
    if (initFailed) phase = 'Failed';
    else if (initDone && apps.every((s) => s.state.running || s.state.terminated || s.lastState.terminated)) {
      const terminated = apps.every((s) => s.state.terminated && !s.state.running);
      const allOk = apps.every((s) => s.state.terminated?.exitCode === 0);
      if (terminated && restartPolicy === 'Never') phase = allOk ? 'Succeeded' : 'Failed';
      else if (terminated && restartPolicy === 'OnFailure' && allOk) phase = 'Succeeded';
      else phase = 'Running';
    }
    const containersReady = apps.length > 0 && apps.every((s) => s.ready);
    const conditionTime = (type: string, status: string) => {
      const prev = (old.conditions ?? []).find((c: any) => c.type === type);
      return prev && prev.status === status ? prev.lastTransitionTime : rfc3339(now);
    };
    const cond = (type: string, ok: boolean, reason?: string) => {
      const status = ok ? 'True' : 'False';
      return { type, status, lastProbeTime: null, lastTransitionTime: conditionTime(type, status), ...(ok || !reason ? {} : { reason }) };
    };
    const kept = (old.conditions ?? []).filter((c: any) => !['Initialized', 'ContainersReady', 'Ready', 'PodReadyToStartContainers'].includes(c.type));
    if (!kept.some((c: any) => c.type === 'PodScheduled')) kept.unshift({ type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: conditionTime('PodScheduled', 'True') });
    const terminal = phase === 'Succeeded' || phase === 'Failed';
    const conditions = [
      cond('PodReadyToStartContainers', sandbox?.state === 'running' || terminal),
      cond('Initialized', initDone, 'ContainersNotInitialized'),
      cond('Ready', containersReady && !terminal, terminal ? 'PodCompleted' : 'ContainersNotReady'),
      cond('ContainersReady', containersReady && !terminal, terminal ? 'PodCompleted' : 'ContainersNotReady'),
      ...kept,
    ];
    const podIP = sandbox?.ip ?? old.podIP;
    return {
      ...old,
      phase,
      conditions,
      hostIP: this.o.hostIP,
      hostIPs: [{ ip: this.o.hostIP }],
      ...(podIP ? { podIP, podIPs: [{ ip: podIP }] } : {}),
      startTime: old.startTime ?? rfc3339(now),
      ...(inits.length ? { initContainerStatuses: inits } : {}),
      containerStatuses: apps,
      qosClass: old.qosClass ?? qosClass(spec),
    };
  }

  private containerStatus(uid: string, c: Container, runs: RunRecord[], restartPolicy: string, kind: 'init' | 'app'): Record<string, any> {
    const mine = runs.filter((r) => r.name === c.name).sort((a, b) => b.restart - a.restart);
    const [cur, prev] = mine;
    const waiting = this.waiting.get(`${uid}/${c.name}`);
    const terminated = (r: RunRecord) => ({
      terminated: {
        exitCode: r.exitCode,
        reason: r.oomKilled ? 'OOMKilled' : r.error ? 'StartError' : r.exitCode === 0 ? 'Completed' : 'Error',
        ...(r.error ? { message: r.error } : {}),
        startedAt: r.startedAt ?? null,
        finishedAt: r.finishedAt ?? null,
        containerID: `docker://${r.id}`,
      },
    });
    let state: Record<string, any>;
    let lastState: Record<string, any> = prev ? terminated(prev) : {};
    if (!cur) state = { waiting: waiting ?? { reason: 'ContainerCreating' } };
    else if (cur.state === 'running') state = { running: { startedAt: cur.startedAt } };
    else if (cur.state === 'exited') {
      const restarting = kind === 'app' ? shouldRestart(restartPolicy, cur.exitCode) : cur.exitCode !== 0 && restartPolicy !== 'Never';
      if (restarting && waiting) {
        state = { waiting };
        lastState = terminated(cur);
      } else state = terminated(cur);
    } else state = { waiting: waiting ?? { reason: 'ContainerCreating' } };
    const running = cur?.state === 'running';
    const probe = cur ? this.o.probes.status(cur.id, c) : { ready: false, started: false };
    return {
      name: c.name,
      state,
      lastState,
      ready: kind === 'init' ? cur?.state === 'exited' && cur.exitCode === 0 : running && probe.ready && probe.started,
      restartCount: cur?.restart ?? 0,
      image: c.image,
      imageID: cur ? `docker://${cur.imageID}` : '',
      ...(cur ? { containerID: `docker://${cur.id}` } : {}),
      ...(kind === 'app' ? { started: running && probe.started } : {}),
    };
  }
}

/** The newest run of a container (highest run number). */
export function latest(runs: RunRecord[], name: string): RunRecord | undefined {
  let best: RunRecord | undefined;
  for (const r of runs) if (r.name === name && (!best || r.restart > best.restart)) best = r;
  return best;
}

function shouldRestart(policy: string, exitCode: number): boolean {
  return policy === 'Always' || (policy === 'OnFailure' && exitCode !== 0);
}

/** kubelet's CrashLoopBackOff: restart 1 at once, then base·2^(n-2) up to max; reset after 10 min of running. */
function backoffDelay(cur: RunRecord, baseMs: number, maxMs: number): number {
  const ran = (cur.finishedMs ?? 0) - (cur.startedMs ?? 0);
  if (cur.restart === 0 || ran >= TEN_MINUTES) return 0;
  return Math.min(maxMs, baseMs * 2 ** (cur.restart - 1));
}

function gracePeriod(pod: KubeObject): number {
  const g = pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
  return Math.max(0, Number(g));
}

/** cpu requests → CPU shares, cpu limits → CFS quota, memory limits → the cgroup's memory limit. */
export function resourceLimits(c: Container): Record<string, number> {
  const req = c.resources?.requests ?? {};
  const lim = c.resources?.limits ?? {};
  const out: Record<string, number> = {};
  const cpuReq = req.cpu ?? lim.cpu;
  // As kubelet: shares = millicores·1024/1000, at least 2 (best-effort containers get the minimum).
  out.CpuShares = cpuReq ? Math.max(2, Math.floor((parseQuantity(String(cpuReq)) * 1000 * 1024) / 1000)) : 2;
  if (lim.cpu) {
    out.CpuPeriod = 100_000;
    out.CpuQuota = Math.max(1000, Math.floor(parseQuantity(String(lim.cpu)) * 100_000));
  }
  if (lim.memory) out.Memory = Math.floor(parseQuantity(String(lim.memory)));
  return out;
}

function qosClass(spec: Record<string, any>): string {
  const cs = [...(spec.initContainers ?? []), ...(spec.containers ?? [])] as Container[];
  const has = (c: Container) => Object.keys(c.resources?.requests ?? {}).length + Object.keys(c.resources?.limits ?? {}).length > 0;
  if (!cs.some(has)) return 'BestEffort';
  const guaranteed = cs.every((c) =>
    ['cpu', 'memory'].every((r) => c.resources?.limits?.[r] && (c.resources?.requests?.[r] ?? c.resources.limits[r]) === c.resources.limits[r]),
  );
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

/** Equal, ignoring key order. */
function sameStatus(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}
