// Starts a real local cluster (HTTPS apiserver + SQLite in a temp dir) for a test file, and runs the
// machine's kubectl against it.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalCluster, type LocalCluster, type LocalClusterOptions } from '../../lambdas/local/server.ts';

export interface TestCluster extends LocalCluster {
  dataDir: string;
  /** Runs kubectl with this cluster's kubeconfig; never throws on a non-zero exit. */
  kubectl(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Starts a long-running kubectl (e.g. get -w); the caller kills it. */
  kubectlSpawn(args: string[]): ChildProcess;
  /** Writes a file in the data dir and returns its path. */
  file(name: string, content: string): string;
  /** Stops the cluster and removes its data dir. */
  destroy(): Promise<void>;
}

export async function startTestCluster(opts: Partial<LocalClusterOptions> = {}): Promise<TestCluster> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'skiff-test-'));
  // Test files run in parallel on one host: an agent's service proxy would share the host's SKIFF chains
  // with every other test's, so agents run without one unless a test asks (with its own chain prefix).
  const agentOptions = { proxy: false, ...opts.agentOptions };
  const c = await startLocalCluster({ port: 0, watchProgressMs: 200, ...opts, agentOptions, dataDir });
  return withKubectl(c, dataDir);
}

export function withKubectl(c: LocalCluster, dataDir: string): TestCluster {
  const env = { ...process.env, KUBECONFIG: c.kubeconfigPath, KUBECACHEDIR: join(dataDir, 'kube-cache') };
  return Object.assign(c, {
    dataDir,
    kubectl(args: string[], input?: string) {
      return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        const p = execFile('kubectl', args, { env, timeout: 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
          const code = err ? (typeof (err as any).code === 'number' ? (err as any).code : 1) : 0;
          resolve({ code, stdout, stderr });
        });
        if (input !== undefined) p.stdin!.end(input);
      });
    },
    kubectlSpawn(args: string[]) {
      return spawn('kubectl', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    },
    file(name: string, content: string) {
      const p = join(dataDir, name);
      writeFileSync(p, content);
      return p;
    },
    async destroy() {
      await c.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  });
}
