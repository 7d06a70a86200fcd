// The `skiff` command. `skiff up` runs a local cluster: the apiserver on HTTPS with the embedded store,
// the controllers, and a node agent on the local Docker Engine. `skiff agent` runs a node agent alone,
// against any Skiff apiserver (a kubeconfig, or a deployed stack's SSM parameters, say where), as on an
// EC2 node. `skiff kubeconfig --stack NAME` writes a kubeconfig for a deployed stack.

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { defaultNodeName, startAgent } from '../../node-agent/agent.ts';
import { configFromKubeconfig, KubeClient } from '../../node-agent/kube-client.ts';
import { startHollowNodes } from '../../node-agent/hollow.ts';
import { cleanupProxyRules } from '../../node-agent/proxy.ts';
import { joinCluster, readJoinInfo } from '../../node-agent/bootstrap.ts';
import { kubeconfigForStack } from './stack-kubeconfig.ts';

const USAGE = `Usage: skiff <command> [options]

Commands:
  up        Run a local cluster (apiserver on HTTPS, embedded SQLite store, a node agent on Docker)
  agent     Run a node agent: registers this host as a Node and runs its pods on the Docker Engine
  kubeconfig --stack NAME [--output PATH] [--iam]
            Write a kubeconfig for a deployed stack (its outputs and SSM parameters, read with your
            AWS credentials); default PATH: NAME.kubeconfig. With --iam, no admin token: kubectl signs
            in as your AWS identity through \`skiff token\` (the cluster's AccessEntries map it)
  token --cluster-name NAME [--region R] [--sts-endpoint URL]
            Print an ExecCredential holding an IAM token for the cluster (a GetCallerIdentity request
            signed with your AWS credentials, valid 15 minutes): a kubeconfig exec plugin
  ui [--kubeconfig PATH]
            Print the web console's address and the token to sign in with (the kubeconfig's);
            the token is never put in a URL
  history TYPE/NAME [-n NAMESPACE] [--limit N] [--kubeconfig PATH]
            Show an object's recorded changes: each revision, when, who, the verb, and a diff of
            its YAML (TYPE as kubectl takes it: deployment, deploy, deployments.apps, a CRD's plural)
  cost [-n NAMESPACE] [--since D] [--kubeconfig PATH]
            What each namespace's control-plane requests cost (requests by kind, DynamoDB request
            units, dollars, the month's projection), priced as deployed; --since 90s, 15m, 1h, 7d

Options for up:
  --port N          HTTPS port (default 6443; 0 picks a free one)
  --host ADDR       address to listen on (default 127.0.0.1)
  --data-dir DIR    where the store, certificates and kubeconfig live (default .skiff)
  --nodes N         node agents to run on the local Docker Engine (default 1)
  --no-agent        run the control plane alone (no node agent)
  --service-cidr CIDR  Service cluster IPs (default 10.96.0.0/16)
  --cluster-cidr CIDR  give nodes without one a pod CIDR from this range (node IPAM; off by default:
                    local agents bring their Docker network's subnet)
  --hollow-nodes N  register N hollow nodes: they report pods Running but run no containers
                    (for trying the scheduler and controllers; not a container runtime)
  --max-objects-per-namespace N  refuse creates (403) in a namespace holding N objects, a guard
                    against runaway writes (default 100000; 0: no limit)
  --audit-policy-file F  audit requests under this audit.k8s.io/v1 Policy (YAML), as kube-apiserver's flag
  --audit-log-path P     ... into this file, one audit.k8s.io/v1 Event a line ("-": standard output)
  --event-ttl D     how long an Event is kept after its last write: 1h (default), 90m, 3600s; 0: for ever
  --history-retention D  keep object history (skiff history) this long: 24h (default), 90m, 3600s, 7d;
                    0: record none. Kept in DATA_DIR/history.db
  --horizontal-pod-autoscaler-sync-period D  how often each HorizontalPodAutoscaler is synced (default 15s)
  --horizontal-pod-autoscaler-downscale-stabilization D  the scale-down window of HPAs that set none (default 5m)

Options for agent:
  --kubeconfig PATH  where the apiserver is and the token to use (default $KUBECONFIG, .skiff/kubeconfig)
  --ssm-prefix P     instead: join a deployed cluster: read P/api-url, P/ca and P/bootstrap-token from
                     SSM Parameter Store and trade the token for this node's own credential
  --poll-seconds N   re-list pods, Services and Endpoints every N s instead of holding watches open
                     (a deployed cluster's apiserver is a Lambda: an open watch is billed all along)
  --push-queue-prefix P  also long-poll this node's SQS queue (P + its name), on which the cluster says
                     when to re-list its pods (a deployed cluster's push channel)
  --push-pod-poll-seconds N  with it, poll the node's pods every N s only, as a safety net (default 300)
  --silence-schedule-group G  keep a dead man's switch in this EventBridge Scheduler group: a schedule
                     moved 40 s ahead every 20 s, which wakes the cluster's node lifecycle if the agent
                     stops (with --silence-role-arn, the role Scheduler invokes the controller manager
                     with, and --silence-target-parameter, the SSM parameter holding its ARN)
  --lease-seconds N  renew the node Lease every N s (default 10; its duration is 4 N)
  --status-report-seconds N  write an unchanged Node status again after N s (default 300)
  --stream-port N    serve exec, attach, port-forward and logs on this plain-HTTP port, for a
                     deployed cluster's front door (CloudFront); published on the Node
  --metrics-log-group G  send the node's metrics to CloudWatch as embedded metric format, once a
                     minute, into its own stream of this log group (a deployed cluster's nodes)
  --name NAME        the node's name (default: the host name)
  --data-dir DIR     pod volumes and the agent's certificate (default .skiff-agent)
  --address IP       the address the node advertises (default: the host's first IPv4 address)
  --port N           the agent's HTTPS port for logs and exec (default 10250; 0 picks one)
  --network NAME     the Docker network pods join (default skiff; created if missing)
  --pod-cidr CIDR    its subnet, when the agent creates it
  --cluster-cidr CIDR  the whole cluster's pod range: pods keep their IPs across nodes (the agent
                     masquerades only traffic leaving it and accepts forwarded pod traffic); routes
                     between nodes come from the route controller
  --pause-image REF  the pod sandbox image (default: built here from busybox-static)
  --no-proxy         do not proxy Service IPs and node ports on this host (iptables)
  --proxy-cleanup    instead: remove the service proxy's iptables rules and exit
  --hollow N         instead: run N hollow nodes (no containers; for benchmarks and controller trials)
`;

async function up(argv: string[]): Promise<void> {
  // Loaded here: the local cluster's SQLite store is a native addon that a node's bundle doesn't carry.
  const { startLocalCluster } = await import('./server.ts');
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '6443' },
      host: { type: 'string', default: '127.0.0.1' },
      'data-dir': { type: 'string', default: '.skiff' },
      'hollow-nodes': { type: 'string', default: '0' },
      nodes: { type: 'string', default: '1' },
      'no-agent': { type: 'boolean', default: false },
      'service-cidr': { type: 'string' },
      'cluster-cidr': { type: 'string' },
      'max-objects-per-namespace': { type: 'string' },
      'audit-policy-file': { type: 'string' },
      'audit-log-path': { type: 'string' },
      'history-retention': { type: 'string' },
      'event-ttl': { type: 'string' },
      'horizontal-pod-autoscaler-sync-period': { type: 'string' },
      'horizontal-pod-autoscaler-downscale-stabilization': { type: 'string' },
    },
    strict: true,
  });
  const { parseRetention } = await import('../storage/history.ts');
  const historyRetentionSeconds = values['history-retention'] === undefined ? undefined : parseRetention(values['history-retention'], '--history-retention');
  const duration = (flag: string, min: number) => {
    const v = values[flag as 'history-retention'];
    if (v === undefined) return undefined;
    const s = parseRetention(v, `--${flag}`);
    if (s < min) throw new Error(`--${flag} must be at least ${min}s, got ${v}`);
    return s * 1000;
  };
  const hpaSyncPeriodMs = duration('horizontal-pod-autoscaler-sync-period', 1);
  const hpaDownscaleStabilizationMs = duration('horizontal-pod-autoscaler-downscale-stabilization', 0);
  const eventTtlSeconds = values['event-ttl'] === undefined ? undefined : parseRetention(values['event-ttl'], '--event-ttl');
  const maxObjects = values['max-objects-per-namespace'] === undefined ? undefined : Number(values['max-objects-per-namespace']);
  if (maxObjects !== undefined && (!Number.isSafeInteger(maxObjects) || maxObjects < 0)) {
    throw new Error(`--max-objects-per-namespace must be a whole number, got ${values['max-objects-per-namespace']}`);
  }
  const nodes = values['no-agent'] ? 0 : Number(values.nodes);
  if (!Number.isInteger(nodes) || nodes < 0) throw new Error(`--nodes must be a whole number, got ${values.nodes}`);
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0..65535, got ${values.port}`);
  const hollowNodes = Number(values['hollow-nodes']);
  if (!Number.isInteger(hollowNodes) || hollowNodes < 0) throw new Error(`--hollow-nodes must be a whole number, got ${values['hollow-nodes']}`);
  const cluster = await startLocalCluster({
    dataDir: values['data-dir']!,
    port,
    host: values.host,
    hollowNodes,
    agents: nodes,
    serviceCIDR: values['service-cidr'],
    clusterCIDR: values['cluster-cidr'],
    maxObjectsPerNamespace: maxObjects,
    eventTtlSeconds,
    auditPolicyFile: values['audit-policy-file'],
    auditLogPath: values['audit-log-path'],
    historyRetentionSeconds,
    hpaSyncPeriodMs,
    hpaDownscaleStabilizationMs,
  });
  const agentLine = cluster.agentError
    ? `Nodes: NONE - the node agent could not start: ${cluster.agentError}\n       The control plane runs alone; pods stay Pending. (Use --no-agent to run it so on purpose.)`
    : cluster.agents.length
      ? `Nodes: ${cluster.agents.map((a) => a.nodeName).join(', ')} (Docker Engine)`
      : 'Nodes: none (--no-agent)';
  // Handlers first: whoever starts us may stop us as soon as we say we are running.
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
  console.log(`Skiff is running at ${cluster.url}
Store: ${values['data-dir']}/skiff.db (SQLite)
${agentLine}

  export KUBECONFIG=${cluster.kubeconfigPath}
  kubectl get namespaces

Web console: ${cluster.url}/ui/  (\`skiff ui\` prints the token to sign in with)

Press Ctrl-C to stop; objects are kept for the next start.`);
}

/** `skiff ui`: where the console is and the kubeconfig's token to paste into its sign-in form. */
function ui(argv: string[]): void {
  const { values } = parseArgs({ args: argv, options: { kubeconfig: { type: 'string', default: process.env.KUBECONFIG ?? '.skiff/kubeconfig' } }, strict: true });
  const cfg = configFromKubeconfig(values.kubeconfig!);
  console.log(`Console: ${cfg.server.replace(/\/+$/, '')}/ui/
Sign in with this bearer token (the page keeps it in the tab's sessionStorage only):
${cfg.token}
The local apiserver's certificate is signed by the cluster's own CA (in ${values.kubeconfig}): the browser
warns once unless that CA is trusted.`);
}

async function agent(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: 'string', default: process.env.KUBECONFIG ?? '.skiff/kubeconfig' },
      name: { type: 'string' },
      'data-dir': { type: 'string', default: '.skiff-agent' },
      address: { type: 'string' },
      port: { type: 'string', default: '10250' },
      network: { type: 'string', default: 'skiff' },
      'pod-cidr': { type: 'string' },
      'cluster-cidr': { type: 'string' },
      'pause-image': { type: 'string' },
      hollow: { type: 'string', default: '0' },
      'no-proxy': { type: 'boolean', default: false },
      'proxy-cleanup': { type: 'boolean', default: false },
      'ssm-prefix': { type: 'string' },
      'poll-seconds': { type: 'string', default: '0' },
      'push-queue-prefix': { type: 'string' },
      'push-pod-poll-seconds': { type: 'string', default: '300' },
      'silence-schedule-group': { type: 'string' },
      'silence-target-parameter': { type: 'string' },
      'silence-role-arn': { type: 'string' },
      'lease-seconds': { type: 'string', default: '10' },
      'status-report-seconds': { type: 'string', default: '300' },
      'stream-port': { type: 'string' },
      'metrics-log-group': { type: 'string' },
    },
    strict: true,
  });
  const whole = (flag: string, v: string | undefined, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${flag} must be a whole number >= ${min}, got ${v}`);
    return n;
  };
  const pollSeconds = whole('poll-seconds', values['poll-seconds'], 0);
  const leaseSeconds = whole('lease-seconds', values['lease-seconds'], 1);
  const statusReportSeconds = whole('status-report-seconds', values['status-report-seconds'], 1);
  const streamPort = values['stream-port'] === undefined ? undefined : whole('stream-port', values['stream-port'], 0);
  if (values['proxy-cleanup']) {
    await cleanupProxyRules();
    console.log('skiff agent: service proxy rules removed');
    return;
  }
  const nodeName = values.name ?? defaultNodeName();
  const api = values['ssm-prefix']
    ? await joinCluster(await readJoinInfo(values['ssm-prefix']), nodeName, values['data-dir']!)
    : configFromKubeconfig(values.kubeconfig!);
  if (pollSeconds) api.pollMs = pollSeconds * 1000;
  const hollow = Number(values.hollow);
  if (!Number.isInteger(hollow) || hollow < 0) throw new Error(`--hollow must be a whole number, got ${values.hollow}`);
  let close: () => Promise<void>;
  if (hollow > 0) {
    const kube = new KubeClient(api);
    const nodes = await startHollowNodes({ kube, count: hollow, namePrefix: values.name ? `${values.name}-` : undefined });
    console.log(`skiff agent: ${hollow} hollow nodes registered (${nodes.nodes[0]} ... ${nodes.nodes.at(-1)}); they run no containers`);
    close = async () => {
      await nodes.stop();
      kube.close();
    };
  } else {
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0..65535, got ${values.port}`);
    const a = await startAgent({
      api,
      nodeName,
      heartbeatMs: leaseSeconds * 1000,
      leaseDurationSeconds: leaseSeconds * 4,
      nodeStatusReportMs: statusReportSeconds * 1000,
      streamPort,
      dataDir: values['data-dir']!,
      address: values.address,
      port,
      network: values.network,
      podSubnet: values['pod-cidr'],
      ...(values['cluster-cidr'] ? { podNetworkRules: { clusterCIDR: values['cluster-cidr'] } } : {}),
      pauseImage: values['pause-image'],
      proxy: !values['no-proxy'],
      ...(values['push-queue-prefix']
        ? { push: { sqs: new (await import('@aws-sdk/client-sqs')).SQSClient({}), queuePrefix: values['push-queue-prefix'], podPollMs: whole('push-pod-poll-seconds', values['push-pod-poll-seconds'], 1) * 1000 } }
        : {}),
      ...(values['silence-schedule-group'] ? { deadMansSwitch: { wakeUps: await silenceWakeUps(values) } } : {}),
      ...(values['metrics-log-group'] ? { emf: await agentEmf(values['metrics-log-group'], nodeName, values['ssm-prefix']) } : {}),
    });
    console.log(`skiff agent: node ${a.nodeName} registered with ${api.server}; serving logs and exec on port ${a.port}`);
    close = () => a.close();
  }
  let stopping = false;
  const stop = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${sig}: stopping the agent (pods keep running)...`);
    await close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

/** A deployed node's metrics to CloudWatch (`--metrics-log-group`): EMF lines into its stream of that group. */
async function agentEmf(logGroupName: string, nodeName: string, ssmPrefix?: string) {
  const { cloudWatchLogsWriter } = await import('../../node-agent/emf-sink.ts');
  // The cluster's name is the last part of its SSM prefix (/skiff/<cluster>).
  const clusterName = ssmPrefix?.split('/').filter(Boolean).at(-1) ?? 'skiff';
  return { clusterName, write: cloudWatchLogsWriter({ logGroupName, logStreamName: nodeName, log: (m: string) => console.error(`agent: ${m}`) }) };
}

/** The dead man's switch's schedules (`--silence-*`): the controller manager's wake-ups, set by this node. */
async function silenceWakeUps(v: { 'silence-schedule-group'?: string; 'silence-target-parameter'?: string; 'silence-role-arn'?: string }) {
  if (!v['silence-target-parameter'] || !v['silence-role-arn']) throw new Error('--silence-schedule-group needs --silence-target-parameter and --silence-role-arn');
  const { EventBridgeWakeUps } = await import('../controllers/wakeups.ts');
  const { SchedulerClient } = await import('@aws-sdk/client-scheduler');
  const { SSMClient, GetParameterCommand } = await import('@aws-sdk/client-ssm');
  const ssm = new SSMClient({});
  const targetArn = (await ssm.send(new GetParameterCommand({ Name: v['silence-target-parameter'] }))).Parameter?.Value;
  ssm.destroy();
  if (!targetArn) throw new Error(`SSM parameter ${v['silence-target-parameter']} is empty`);
  return new EventBridgeWakeUps({ client: new SchedulerClient({}), group: v['silence-schedule-group']!, targetArn, roleArn: v['silence-role-arn'] });
}

async function kubeconfig(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { stack: { type: 'string' }, output: { type: 'string' }, iam: { type: 'boolean', default: false } }, strict: true });
  if (!values.stack) throw new Error('kubeconfig needs --stack NAME (the deployed CloudFormation stack)');
  const path = values.output ?? `${values.stack}.kubeconfig`;
  writeFileSync(path, await kubeconfigForStack(values.stack, { iam: values.iam }), { mode: 0o600 });
  console.log(`skiff: wrote ${path} for stack ${values.stack}\n  export KUBECONFIG=${path}\n  kubectl get nodes`);
}

async function token(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { 'cluster-name': { type: 'string' }, region: { type: 'string' }, 'sts-endpoint': { type: 'string' } },
    strict: true,
  });
  if (!values['cluster-name']) throw new Error('token needs --cluster-name NAME (the ClusterName output of the stack)');
  const { iamToken, execCredential } = await import('./iam-token.ts');
  const t = await iamToken({ clusterId: values['cluster-name'], region: values.region, endpoint: values['sts-endpoint'] });
  process.stdout.write(execCredential(t) + '\n');
}

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  switch (cmd) {
    case 'up':
      return up(rest);
    case 'agent':
      return agent(rest);
    case 'kubeconfig':
      return kubeconfig(rest);
    case 'token':
      return token(rest);
    case 'ui':
      return ui(rest);
    case 'history':
      return (await import('./history-cli.ts')).history(rest);
    case 'cost':
      return (await import('./cost-cli.ts')).cost(rest);
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
