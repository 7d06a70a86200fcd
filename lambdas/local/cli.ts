// The `skiff` command. `skiff up` runs a local cluster: the apiserver on HTTPS with the embedded store.

import { parseArgs } from 'node:util';
import { startLocalCluster } from './server.ts';

const USAGE = `Usage: skiff <command> [options]

Commands:
  up        Run a local cluster (apiserver on HTTPS, embedded SQLite store)

Options for up:
  --port N          HTTPS port (default 6443; 0 picks a free one)
  --host ADDR       address to listen on (default 127.0.0.1)
  --data-dir DIR    where the store, certificates and kubeconfig live (default .skiff)
  --hollow-nodes N  register N hollow nodes: they report pods Running but run no containers
                    (for trying the scheduler and controllers; not a container runtime)
`;

async function up(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '6443' },
      host: { type: 'string', default: '127.0.0.1' },
      'data-dir': { type: 'string', default: '.skiff' },
      'hollow-nodes': { type: 'string', default: '0' },
    },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0..65535, got ${values.port}`);
  const hollowNodes = Number(values['hollow-nodes']);
  if (!Number.isInteger(hollowNodes) || hollowNodes < 0) throw new Error(`--hollow-nodes must be a whole number, got ${values['hollow-nodes']}`);
  const cluster = await startLocalCluster({ dataDir: values['data-dir']!, port, host: values.host, hollowNodes });
  console.log(`Skiff is running at ${cluster.url}
Store: ${values['data-dir']}/skiff.db (SQLite)

  export KUBECONFIG=${cluster.kubeconfigPath}
  kubectl get namespaces

Press Ctrl-C to stop; objects are kept for the next start.`);
  let stopping = false;
  const stop = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${sig}: stopping Skiff...`);
    await cluster.close();
    console.log('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  switch (cmd) {
    case 'up':
      return up(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    default:
      process.stderr.write(`skiff: unknown command ${JSON.stringify(cmd)}\n\n${USAGE}`);
      process.exit(2);
  }
}

main().catch((e) => {
  console.error(`skiff: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
