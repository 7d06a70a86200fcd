// SkiffNodes: the cluster's EC2 nodes. A VPC, an Auto Scaling group of Amazon Linux 2023 arm64
// instances, and on each a systemd unit running `skiff agent`, which joins the cluster through SSM
// (api-url, ca, bootstrap-token under /skiff/<clusterName>; see node-agent/bootstrap.ts).
//
//   CloudFront (exec/attach/portforward/log) ─:10255─> node stream listener   (origin-facing prefix list only)
//   node ─:10250─ node, pod ─ pod (cluster CIDR, routed by the controller manager's route controller)
//
// Pods keep their cluster-CIDR addresses across nodes: the route controller (lambdas/controllers/
// routes.ts) writes one route per node's pod CIDR into ONE route table, so every node subnet shares
// that table (see sharedRouteTable below).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ArnFormat, Aws, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { AutoScalingGroup, UpdatePolicy } from 'aws-cdk-lib/aws-autoscaling';
import {
  AmazonLinuxCpuType,
  CfnSubnetRouteTableAssociation,
  GatewayVpcEndpointAwsService,
  InstanceType,
  IpAddresses,
  LaunchTemplate,
  LaunchTemplateHttpTokens,
  MachineImage,
  Peer,
  Port,
  SecurityGroup,
  SubnetType,
  UserData,
  Vpc,
  type ISubnet,
} from 'aws-cdk-lib/aws-ec2';
import { Effect, ManagedPolicy, PolicyStatement, Role, ServicePrincipal, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { Asset } from 'aws-cdk-lib/aws-s3-assets';
import { AwsCustomResource, AwsCustomResourcePolicy, PhysicalResourceId } from 'aws-cdk-lib/custom-resources';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { overlaps, parseIPv4CIDR } from '../lambdas/machinery/cidr.ts';
import { SSM_PARAMETERS } from '../node-agent/bootstrap.ts';

/** The agent's port for logs, exec and port-forward from inside the VPC (kubelet's 10250). */
export const AGENT_PORT = 10250;
/** The agent's stream listener, reached by CloudFront's stream router (lambdas/edge/stream-router.ts). */
export const STREAM_PORT = 10255;
/** The AWS-managed prefix list of CloudFront's origin-facing addresses. */
export const CLOUDFRONT_ORIGIN_FACING = 'com.amazonaws.global.cloudfront.origin-facing';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
/** `npm run build` writes the nodes' CLI bundle here (scripts/build.mjs: self-contained but for native addons). */
export const AGENT_BUNDLE_DIR = fileURLToPath(new URL('../dist/node/', import.meta.url));
export const AGENT_BUNDLE = 'skiff.mjs';

export interface SkiffNodesProps {
  /** Names the SSM parameters the agent reads: /skiff/<clusterName>/... */
  readonly clusterName: string;
  /** The pod range (every node's podCIDR comes from it). Default 10.244.0.0/16. */
  readonly clusterCidr?: string;
  /** The VPC's range; must not overlap clusterCidr. Default 10.0.0.0/16. */
  readonly vpcCidr?: string;
  /** Availability zones the nodes spread over. Default 2. */
  readonly maxAzs?: number;
  /**
   * NAT gateways (with private subnets). Default 0. The nodes stay in the public subnets either way:
   * CloudFront reaches their stream listener on their public DNS names.
   */
  readonly natGateways?: number;
  readonly instanceType?: string;
  readonly minNodes?: number;
  readonly maxNodes?: number;
  /** Default: minNodes at creation, then left to whoever scales the group. */
  readonly desiredNodes?: number;
  /** The agent re-lists every N s instead of holding watches open through Lambda. Default 60. */
  readonly pollSeconds?: number;
  /**
   * The push channel's queue prefix (SkiffCluster sets it): agents long-poll a queue of their own and
   * re-list their pods at once when told; their pods' poll is then a safety net, every pushPodPollSeconds.
   */
  readonly pushQueuePrefix?: string;
  /** Each node's metrics to CloudWatch as EMF (a log group of the cluster's; SkiffClusterProps.cloudWatchMetrics). Default false. */
  readonly cloudWatchMetrics?: boolean;
  /** With the push channel, how often an agent polls its pods anyway (default 300). */
  readonly pushPodPollSeconds?: number;
  /**
   * The agents' dead man's switch (node-agent/dead-mans-switch.ts; SkiffCluster sets it): the controller
   * manager's wake-up schedule group and the role EventBridge Scheduler invokes it with. The function's
   * ARN is read from the SSM parameter SILENCE_TARGET_PARAMETER (naming it here would be a cycle: the
   * controller manager's policy names the Auto Scaling group).
   */
  readonly silence?: { scheduleGroup: string; roleArn: string };
  /**
   * The agent renews its node Lease every N s (declaring 4 N). Default 300: liveness comes from the
   * dead man's switch (within 40 s), and after a lapse of it the agent renews at once.
   */
  readonly leaseSeconds?: number;
  /** The agent rewrites an unchanged Node status every N s. Default 3600. */
  readonly statusReportSeconds?: number;
  /** Attach AmazonSSMManagedInstanceCore (Session Manager shell access). Default false. */
  readonly ssmSessionManager?: boolean;
  /**
   * The id of the CloudFront origin-facing prefix list in the stack's region. Default: looked up at
   * deploy time (ec2:DescribeManagedPrefixLists through a custom resource), since a synth-time lookup
   * needs a concrete account and region.
   */
  readonly cloudFrontPrefixListId?: string;
}

export class SkiffNodes extends Construct {
  public readonly vpc: Vpc;
  /** The one route table of the node subnets: the route controller's SKIFF_ROUTE_TABLE_ID. */
  public readonly routeTableId: string;
  public readonly clusterCidr: string;
  public readonly autoScalingGroup: AutoScalingGroup;
  public readonly instanceRole: Role;
  public readonly securityGroup: SecurityGroup;
  /** Only the CloudFront prefix list rule: it counts as one rule per prefix (~55) against the group's quota. */
  public readonly streamSecurityGroup: SecurityGroup;
  public readonly launchTemplate: LaunchTemplate;

  constructor(scope: Construct, id: string, props: SkiffNodesProps) {
    super(scope, id);
    const clusterCidr = (this.clusterCidr = props.clusterCidr ?? '10.244.0.0/16');
    const vpcCidr = props.vpcCidr ?? '10.0.0.0/16';
    const cluster = parseIPv4CIDR(clusterCidr);
    const vpcNet = parseIPv4CIDR(vpcCidr);
    if (!cluster) throw new Error(`SkiffNodes: clusterCidr ${JSON.stringify(clusterCidr)} is not an IPv4 CIDR`);
    if (!vpcNet) throw new Error(`SkiffNodes: vpcCidr ${JSON.stringify(vpcCidr)} is not an IPv4 CIDR`);
    if (overlaps(cluster, vpcNet)) throw new Error(`SkiffNodes: clusterCidr ${clusterCidr} overlaps the VPC's ${vpcCidr}`);
    const minNodes = props.minNodes ?? 1;
    const maxNodes = props.maxNodes ?? 3;
    // Defaults that keep an idle 3-node cluster under $1 a month (`npm run cost`, BENCHMARKS.md): a new pod
    // is seen at once through the push channel (its pods' poll, the safety net, every 5 minutes),
    // Services and Endpoints within 75 s (60 s without the channel: its long polls cost the 15 s), a
    // node that stops within 8 minutes (lease) + the resync.
    const pollSeconds = props.pollSeconds ?? (props.pushQueuePrefix ? 75 : 60);
    const pushPodPollSeconds = props.pushPodPollSeconds ?? 300;
    const leaseSeconds = props.leaseSeconds ?? 300;
    const statusReportSeconds = props.statusReportSeconds ?? 3600;
    for (const [k, v] of Object.entries({ minNodes, maxNodes, pollSeconds, leaseSeconds, statusReportSeconds, pushPodPollSeconds })) {
      if (!Number.isInteger(v) || v < (k === 'minNodes' ? 0 : 1)) throw new Error(`SkiffNodes: ${k} must be a whole number, got ${v}`);
    }
    if (minNodes > maxNodes) throw new Error(`SkiffNodes: minNodes ${minNodes} exceeds maxNodes ${maxNodes}`);

    const natGateways = props.natGateways ?? 0;
    this.vpc = new Vpc(this, 'Vpc', {
      ipAddresses: IpAddresses.cidr(vpcCidr),
      maxAzs: props.maxAzs ?? 2,
      natGateways,
      subnetConfiguration: [
        { name: 'Nodes', subnetType: SubnetType.PUBLIC, cidrMask: 20 },
        ...(natGateways > 0 ? [{ name: 'Private', subnetType: SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 }] : []),
      ],
      // The default security group is unused; restricting it would add a custom-resource Lambda.
      restrictDefaultSecurityGroup: false,
    });
    const nodeSubnets = this.vpc.publicSubnets;
    this.routeTableId = sharedRouteTable(nodeSubnets);
    // Nodes reach the table without leaving the VPC (a gateway endpoint is free). Only the shared table
    // carries traffic for the node subnets.
    this.vpc.addGatewayEndpoint('DynamoDb', { service: GatewayVpcEndpointAwsService.DYNAMODB, subnets: [{ subnets: [nodeSubnets[0]!] }] });

    // ---- security groups ----
    this.securityGroup = new SecurityGroup(this, 'NodeSecurityGroup', { vpc: this.vpc, description: 'Skiff nodes', allowAllOutbound: true });
    this.securityGroup.addIngressRule(Peer.ipv4(this.vpc.vpcCidrBlock), Port.tcp(AGENT_PORT), 'agent API (logs, exec, port-forward) from the VPC');
    // Pod traffic: pods' own addresses (routed, not masqueraded, inside the cluster range) and node to
    // node (a Service's traffic from a node's host network to a pod elsewhere leaves with the node's IP).
    this.securityGroup.addIngressRule(Peer.ipv4(clusterCidr), Port.allTraffic(), 'pod traffic (cluster CIDR)');
    this.securityGroup.addIngressRule(this.securityGroup, Port.allTraffic(), 'node to node');
    this.streamSecurityGroup = new SecurityGroup(this, 'StreamSecurityGroup', {
      vpc: this.vpc,
      description: 'Skiff node stream listener, from CloudFront only',
      allowAllOutbound: false,
    });
    const prefixListId = props.cloudFrontPrefixListId ?? this.lookUpCloudFrontPrefixList();
    this.streamSecurityGroup.addIngressRule(Peer.prefixList(prefixListId), Port.tcp(STREAM_PORT), 'exec/attach/port-forward from CloudFront');

    // ---- the agent bundle and the instance role ----
    // The source map (4x the bundle) stays behind: the agent does not run with --enable-source-maps.
    const bundle = new Asset(this, 'AgentBundle', { path: agentBundleDir(), exclude: ['*.map'] });
    this.instanceRole = new Role(this, 'InstanceRole', {
      assumedBy: new ServicePrincipal('ec2.amazonaws.com'),
      description: 'Skiff node: read its join parameters and the agent bundle',
    });
    // The asset's object only (Asset.grantRead would grant the whole staging bucket).
    this.instanceRole.addToPolicy(new PolicyStatement({ actions: ['s3:GetObject'], resources: [bundle.bucket.arnForObjects(bundle.s3ObjectKey)] }));
    this.instanceRole.addToPolicy(
      new PolicyStatement({
        actions: ['ssm:GetParameters', 'ssm:GetParameter'],
        // Not the admin token: a node (or a pod that reached the instance role) must never become admin.
        // (and, for the dead man's switch, the controller manager's ARN)
        resources: [SSM_PARAMETERS.apiUrl, SSM_PARAMETERS.ca, SSM_PARAMETERS.bootstrapToken, ...(props.silence ? [SILENCE_TARGET_PARAMETER] : [])].map((name) =>
          parameterArn(this, props.clusterName, name),
        ),
      }),
    );
    if (props.pushQueuePrefix) {
      // The push channel: a node makes, reads and empties queues of this cluster's prefix only.
      this.instanceRole.addToPolicy(
        new PolicyStatement({
          actions: ['sqs:CreateQueue', 'sqs:ReceiveMessage', 'sqs:DeleteMessage'],
          resources: [Stack.of(this).formatArn({ service: 'sqs', resource: `${props.pushQueuePrefix}*` })],
        }),
      );
    }
    if (props.silence) {
      // The dead man's switch: a node moves the node lifecycle's one-time schedules of this group (their
      // names start with the controller's) and hands Scheduler the role that invokes the controller manager.
      this.instanceRole.addToPolicy(
        new PolicyStatement({
          actions: ['scheduler:CreateSchedule', 'scheduler:UpdateSchedule'],
          resources: [Stack.of(this).formatArn({ service: 'scheduler', resource: 'schedule', resourceName: `${props.silence.scheduleGroup}/node-lifecycle-contr-*` })],
        }),
      );
      this.instanceRole.addToPolicy(new PolicyStatement({ actions: ['iam:PassRole'], resources: [props.silence.roleArn] }));
    }
    // The nodes' metrics as EMF lines (node-agent/metrics.ts publishEmf), a stream per node; CloudWatch
    // extracts the metrics (custom metrics: see lambdas/machinery/emf.ts for what they cost).
    if (props.cloudWatchMetrics) {
      const metricsLogs = new LogGroup(this, 'NodeMetricsLogs', { logGroupName: nodeMetricsLogGroup(props.clusterName), retention: RetentionDays.ONE_WEEK, removalPolicy: RemovalPolicy.DESTROY });
      metricsLogs.grantWrite(this.instanceRole);
    }
    if (props.ssmSessionManager) this.instanceRole.addManagedPolicy(ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore'));

    // ---- user data ----
    const userData = UserData.forLinux();
    userData.addCommands(
      'set -euxo pipefail',
      // strict=0: a name this release packages differently (iptables is provided by iptables-nft) must
      // not stop the rest; the check after it fails loudly (cloud-init log) if a command is really missing.
      'dnf install -y --setopt=strict=0 docker nodejs20 iptables conntrack-tools unzip',
      'for c in docker node-20 iptables conntrack unzip; do command -v "$c"; done',
      'systemctl enable --now docker',
      'mkdir -p /opt/skiff /var/lib/skiff',
    );
    const zip = userData.addS3DownloadCommand({ bucket: bundle.bucket, bucketKey: bundle.s3ObjectKey, localFile: '/opt/skiff/agent.zip' });
    userData.addCommands(
      `unzip -o ${zip} -d /opt/skiff`,
      `cat > /etc/systemd/system/skiff-agent.service <<'EOF'\n${agentUnit({ clusterName: props.clusterName, clusterCidr, pollSeconds, leaseSeconds, statusReportSeconds, pushQueuePrefix: props.pushQueuePrefix, pushPodPollSeconds, silence: props.silence, ...(props.cloudWatchMetrics ? { metricsLogGroup: nodeMetricsLogGroup(props.clusterName) } : {}) })}\nEOF`,
      'systemctl daemon-reload',
      'systemctl enable --now skiff-agent',
    );

    this.launchTemplate = new LaunchTemplate(this, 'LaunchTemplate', {
      machineImage: MachineImage.latestAmazonLinux2023({ cpuType: AmazonLinuxCpuType.ARM_64 }),
      instanceType: new InstanceType(props.instanceType ?? 't4g.small'),
      role: this.instanceRole,
      userData,
      securityGroup: this.securityGroup,
      // IMDSv2 with one hop: containers behind Docker's bridge cannot reach the instance role's
      // credentials (which can read the bootstrap token).
      httpTokens: LaunchTemplateHttpTokens.REQUIRED,
      httpPutResponseHopLimit: 1,
    });
    this.launchTemplate.connections.addSecurityGroup(this.streamSecurityGroup);

    this.autoScalingGroup = new AutoScalingGroup(this, 'Nodes', {
      vpc: this.vpc,
      vpcSubnets: { subnets: nodeSubnets },
      launchTemplate: this.launchTemplate,
      minCapacity: minNodes,
      maxCapacity: maxNodes,
      desiredCapacity: props.desiredNodes,
      // A new agent bundle or launch template replaces the nodes one at a time.
      updatePolicy: UpdatePolicy.rollingUpdate({ maxBatchSize: 1, minInstancesInService: Math.min(minNodes, Math.max(maxNodes - 1, 0)) }),
    });
  }

  /**
   * Lets the controller manager's route controller program the node subnets' route table and turn off
   * the source/destination check of the group's instances — exactly the calls Ec2RouteProvider makes.
   */
  grantRouteControl(fn: IFunction & IGrantable): void {
    const stack = Stack.of(this);
    fn.grantPrincipal.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['ec2:CreateRoute', 'ec2:ReplaceRoute', 'ec2:DeleteRoute'],
        resources: [stack.formatArn({ service: 'ec2', resource: 'route-table', resourceName: this.routeTableId })],
      }),
    );
    fn.grantPrincipal.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['ec2:ModifyInstanceAttribute'],
        resources: [stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' })],
        conditions: { StringEquals: { 'aws:ResourceTag/aws:autoscaling:groupName': this.autoScalingGroup.autoScalingGroupName } },
      }),
    );
    // Describe* calls support no resource-level permissions: "*" is the only resource they take.
    fn.grantPrincipal.addToPrincipalPolicy(new PolicyStatement({ actions: ['ec2:DescribeRouteTables'], resources: ['*'] }));
  }

  /** The prefix list's id in this region, read at deploy time. */
  private lookUpCloudFrontPrefixList(): string {
    const call = {
      service: 'EC2',
      action: 'describeManagedPrefixLists',
      parameters: { Filters: [{ Name: 'prefix-list-name', Values: [CLOUDFRONT_ORIGIN_FACING] }] },
      physicalResourceId: PhysicalResourceId.of(CLOUDFRONT_ORIGIN_FACING),
      outputPaths: ['PrefixLists.0.PrefixListId'],
    };
    // Its own role and log group: the provider's default role carries AWSLambdaBasicExecutionRole (logs on "*").
    const logGroup = new LogGroup(this, 'PrefixListLookupLogs', { retention: RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
    const role = new Role(this, 'PrefixListLookupRole', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    logGroup.grantWrite(role);
    const lookup = new AwsCustomResource(this, 'CloudFrontPrefixList', {
      role,
      logGroup,
      onCreate: call,
      onUpdate: call,
      installLatestAwsSdk: false,
      policy: AwsCustomResourcePolicy.fromStatements([
        new PolicyStatement({ effect: Effect.ALLOW, actions: ['ec2:DescribeManagedPrefixLists'], resources: ['*'] }),
      ]),
    });
    return lookup.getResponseField('PrefixLists.0.PrefixListId');
  }
}

/**
 * Every node subnet uses the first one's route table: the route controller programs one table
 * (SKIFF_ROUTE_TABLE_ID), and traffic from a node to another node's pods follows the route table of
 * the sender's subnet. (The other subnets' own tables stay, unused, with their default route.)
 */
function sharedRouteTable(subnets: ISubnet[]): string {
  const shared = subnets[0]!.routeTable.routeTableId;
  for (const s of subnets.slice(1)) {
    const assoc = s.node.findChild('RouteTableAssociation') as CfnSubnetRouteTableAssociation;
    assoc.routeTableId = shared;
  }
  return shared;
}

/** The SSM parameter (under /skiff/<cluster>/) holding the controller manager's ARN, for the dead man's switch. */
export const SILENCE_TARGET_PARAMETER = 'controller-manager-arn';

export function parameterArn(scope: Construct, clusterName: string, name: string): string {
  return Stack.of(scope).formatArn({
    service: 'ssm',
    resource: 'parameter',
    resourceName: `skiff/${clusterName}/${name}`,
    arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
  });
}

/** The agent bundle's directory; synth fails here, clearly, when it has not been built. */
export function agentBundleDir(dir = AGENT_BUNDLE_DIR): string {
  if (!existsSync(join(dir, AGENT_BUNDLE))) {
    throw new Error(`SkiffNodes: ${join(dir, AGENT_BUNDLE)} is missing: run \`npm run build\` before synth (the nodes run that bundle)`);
  }
  return dir;
}

export interface AgentUnitOptions {
  clusterName: string;
  clusterCidr: string;
  pollSeconds: number;
  leaseSeconds: number;
  statusReportSeconds: number;
  pushQueuePrefix?: string;
  pushPodPollSeconds?: number;
  silence?: { scheduleGroup: string; roleArn: string };
  /** The log group of the nodes' EMF metrics (`--metrics-log-group`). */
  metricsLogGroup?: string;
}

/** Where a cluster's nodes write their metrics (EMF lines). */
export function nodeMetricsLogGroup(clusterName: string): string {
  return `/skiff/${clusterName}/node-metrics`;
}

/** The systemd unit that runs the agent as root (it drives Docker and iptables), restarted always. */
export function agentUnit(o: AgentUnitOptions): string {
  return [
    '[Unit]',
    'Description=Skiff node agent',
    'After=docker.service network-online.target',
    'Wants=network-online.target',
    'Requires=docker.service',
    '',
    '[Service]',
    'User=root',
    // The SDK takes its region from the environment (it does not ask the instance metadata).
    `Environment=AWS_REGION=${Aws.REGION}`,
    `ExecStart=/usr/bin/node-20 /opt/skiff/${AGENT_BUNDLE} agent --ssm-prefix /skiff/${o.clusterName} --cluster-cidr ${o.clusterCidr} ` +
      `--poll-seconds ${o.pollSeconds} --lease-seconds ${o.leaseSeconds} --status-report-seconds ${o.statusReportSeconds} --stream-port ${STREAM_PORT} --data-dir /var/lib/skiff` +
      (o.pushQueuePrefix ? ` --push-queue-prefix ${o.pushQueuePrefix} --push-pod-poll-seconds ${o.pushPodPollSeconds ?? 300}` : '') +
      (o.silence
        ? ` --silence-schedule-group ${o.silence.scheduleGroup} --silence-role-arn ${o.silence.roleArn} --silence-target-parameter /skiff/${o.clusterName}/${SILENCE_TARGET_PARAMETER}`
        : '') +
      (o.metricsLogGroup ? ` --metrics-log-group ${o.metricsLogGroup}` : ''),
    'Restart=always',
    'RestartSec=5',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
  ].join('\n');
}
