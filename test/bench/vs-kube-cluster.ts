// The two control planes `npm run bench:vs-kube` compares, each started as its users run it and each
// leaving a kubeconfig (CA data + admin bearer token) in its directory, so the benchmark drives both
// through the same HTTPS client (test/support/skiff-up.ts's apiClient):
//
// - Skiff: `skiff up --no-agent` from dist/, one Node process (apiserver, scheduler, controllers, SQLite).
// - Kubernetes: etcd, kube-apiserver and kube-scheduler, three processes on loopback, built by
//   vs-kube-build.ts. There is no kube-controller-manager (see startKube for what that changes).
//
// Plus the /proc readings both sides are measured by: CPU time (utime+stime) and RSS of each process.

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import https from 'node:https';
import { join } from 'node:path';
import { generateCerts } from '../../lambdas/local/certs.ts';
import { writeKubeconfig } from '../../lambdas/local/kubeconfig.ts';
import { skiffUp } from '../support/skiff-up.ts';
import type { KubeBinaries } from './vs-kube-build.ts';

export interface Proc {
  name: string;
  pid: number;
}

export interface ControlPlane {
  name: 'Skiff' | 'Kubernetes';
  url: string;
  /** Holds `kubeconfig`, for apiClient(dir, url). */
  dir: string;
  /** The server processes whose CPU and memory count as this side's. */
  procs: Proc[];
  stop(): Promise<void>;
}

// ---------- /proc readings ----------

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** CPU time (user + system) the process has used so far, in ms. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces, so split after its closing paren):
  // state is field 3, utime 14 and stime 15 → indexes 11 and 12 of the rest.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}

/** Resident memory now and its peak (VmHWM) over the process's life, in MiB. */
export function rssMiB(pid: number): { rss: number; peak: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

/** The whole machine's busy CPU time so far (all cores, every process), in ms: to show other load. */
export function machineBusyMs(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: busy is everything but idle and iowait.
  const busy = f.slice(0, 8).reduce((a, b) => a + b, 0) - f[3]! - f[4]!;
  return (busy * 1000) / CLK_TCK;
}

export const loadAvg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

// ---------- Skiff ----------

/** `skiff up --no-agent` in a process of its own (dist/skiff.mjs: run `npm run build` first). */
export async function startSkiff(dir: string): Promise<ControlPlane> {
  // SKIFF_UP_ARGS: extra `skiff up` flags, e.g. "--history-retention 0" to see what a feature costs.
  const s = await skiffUp(dir, ...(process.env.SKIFF_UP_ARGS?.split(' ').filter(Boolean) ?? []));
  return {
    name: 'Skiff',
    url: s.url,
    dir,
    procs: [{ name: 'skiff up', pid: s.proc.pid! }],
    async stop() {
      s.proc.kill('SIGTERM');
      const t = setTimeout(() => s.proc.kill('SIGKILL'), 10_000);
      await s.exited;
      clearTimeout(t);
    },
  };
}

// ---------- Kubernetes ----------

/** kube-controller-manager, for a benchmark that needs some of its controllers (bench:rollout). */
export interface KubeControllerManager {
  bin: string;
  /** Its --controllers list, e.g. ["deployment", "replicaset", "garbagecollector"]. */
  controllers: string[];
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

function launch(bin: string, args: string[], logFile: string): ChildProcess {
  // Logs go to a file: kube-apiserver is chatty at startup and a pipe nobody reads would block it.
  const log = createWriteStream(logFile);
  const p = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  p.stdout!.pipe(log);
  p.stderr!.pipe(log);
  return p;
}

async function until(what: string, fn: () => Promise<boolean>, ms: number, logFile: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  let tail = '';
  try {
    tail = readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n');
  } catch {}
  throw new Error(`${what} not ready after ${ms / 1000} s; log tail:\n${tail}`);
}

function httpsGet(url: string, ca: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const r = https.get(url, { ca, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    r.on('error', reject);
  });
}

async function stopProc(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

/**
 * etcd, kube-apiserver and kube-scheduler on loopback, as a kubeadm control plane runs them but for:
 * - etcd is reached over plain HTTP on 127.0.0.1 (kubeadm uses mutual TLS; that would cost the Kubernetes
 *   side some CPU, which we leave out in its favour);
 * - no kube-controller-manager: nothing watches leases or nodes. The TaintNodesByCondition admission
 *   plugin is off because it taints every new Node not-ready and only the controller-manager's node
 *   lifecycle controller would remove the taint; with it on, nothing would ever schedule.
 * Everything else is the default: Node,RBAC authorization, admission plugins, priority and fairness.
 */
export async function startKube(dir: string, bin: KubeBinaries, schedulerQps: number, controllerManager?: KubeControllerManager): Promise<ControlPlane> {
  mkdirSync(dir, { recursive: true });
  const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];

  // The apiserver's serving certificate (our own CA, as for skiff up), the admin token, and the
  // service-account signing key kube-apiserver requires.
  const certs = await generateCerts(['127.0.0.1', 'localhost']);
  writeFileSync(join(dir, 'ca.crt'), certs.caCert);
  writeFileSync(join(dir, 'apiserver.crt'), certs.serverCert);
  writeFileSync(join(dir, 'apiserver.key'), certs.serverKey);
  const token = randomBytes(24).toString('hex');
  writeFileSync(join(dir, 'tokens.csv'), `${token},bench-admin,bench-admin,"system:masters"\n`);
  const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(dir, 'sa.key'), sa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(dir, 'sa.pub'), sa.publicKey.export({ type: 'spki', format: 'pem' }));
  const url = `https://127.0.0.1:${apiPort}`;
  writeKubeconfig(join(dir, 'kubeconfig'), { server: url, caCert: certs.caCert, token, clusterName: 'kube', userName: 'bench-admin' });

  const procs: ChildProcess[] = [];
  const stop = async () => {
    // Scheduler first, etcd last: each depends on the ones after it.
    for (const p of [...procs].reverse()) await stopProc(p);
  };
  try {
    const etcdLog = join(dir, 'etcd.log');
    const etcd = launch(
      bin.etcd,
      [
        '--name=bench',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
        `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=bench=http://127.0.0.1:${etcdPeer}`,
        '--log-level=warn',
      ],
      etcdLog,
    );
    procs.push(etcd);
    await until('etcd', async () => (await fetch(`http://127.0.0.1:${etcdClient}/health`)).ok, 30_000, etcdLog);

    const apiLog = join(dir, 'kube-apiserver.log');
    const apiserver = launch(
      bin.apiserver,
      [
        `--etcd-servers=http://127.0.0.1:${etcdClient}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${apiPort}`,
        `--cert-dir=${join(dir, 'certs')}`,
        `--tls-cert-file=${join(dir, 'apiserver.crt')}`,
        `--tls-private-key-file=${join(dir, 'apiserver.key')}`,
        `--token-auth-file=${join(dir, 'tokens.csv')}`,
        '--authorization-mode=Node,RBAC',
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${join(dir, 'sa.pub')}`,
        `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
        '--service-cluster-ip-range=10.96.0.0/16',
        '--disable-admission-plugins=TaintNodesByCondition',
      ],
      apiLog,
    );
    procs.push(apiserver);
    await until('kube-apiserver', async () => (await httpsGet(`${url}/readyz`, certs.caCert, token)) === 200, 120_000, apiLog);

    const schedLog = join(dir, 'kube-scheduler.log');
    const scheduler = launch(
      bin.scheduler,
      [
        `--kubeconfig=${join(dir, 'kubeconfig')}`,
        '--leader-elect=false',
        // The client-side rate limit (default 50 QPS, burst 100) would cap binding at 50 pods/s: raised.
        `--kube-api-qps=${schedulerQps}`,
        `--kube-api-burst=${schedulerQps}`,
        // No HTTPS endpoint of its own (health, metrics): nothing here scrapes it.
        '--secure-port=0',
      ],
      schedLog,
    );
    procs.push(scheduler);
    let kcm: ChildProcess | undefined;
    const kcmLog = join(dir, 'kube-controller-manager.log');
    if (controllerManager) {
      kcm = launch(
        controllerManager.bin,
        [
          `--kubeconfig=${join(dir, 'kubeconfig')}`,
          '--leader-elect=false',
          `--controllers=${controllerManager.controllers.join(',')}`,
          // Its client's default rate limit (20 QPS, burst 30) would cap pod creation at 20/s: raised as
          // the scheduler's is.
          `--kube-api-qps=${schedulerQps}`,
          `--kube-api-burst=${schedulerQps}`,
          '--secure-port=0',
        ],
        kcmLog,
      );
      procs.push(kcm);
    }
    // Neither has an endpoint now, so "ready" is: still running after their informers had time to sync.
    await new Promise((r) => setTimeout(r, 3000));
    if (scheduler.exitCode !== null) throw new Error(`kube-scheduler exited: ${readFileSync(schedLog, 'utf8').slice(-2000)}`);
    if (kcm && kcm.exitCode !== null) throw new Error(`kube-controller-manager exited: ${readFileSync(kcmLog, 'utf8').slice(-2000)}`);

    return {
      name: 'Kubernetes',
      url,
      dir,
      procs: [
        { name: 'kube-apiserver', pid: apiserver.pid! },
        { name: 'etcd', pid: etcd.pid! },
        { name: 'kube-scheduler', pid: scheduler.pid! },
        ...(kcm ? [{ name: 'kube-controller-manager', pid: kcm.pid! }] : []),
      ],
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
