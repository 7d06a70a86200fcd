// The CDK app (cdk.json: "app": "npx tsx infra/app.ts").
//
// Context keys (`cdk deploy -c skiff:nodes=false`, or cdk.json "context"):
//   skiff:nodes, skiff:frontDoor, skiff:bootstrap   "false" turns the part off (a control-plane-only or
//                                                   emulator deploy: all three false)
//   skiff:clusterName                               names the SSM parameters (default: the stack name)
//   skiff:maxObjectsPerNamespace                    the runaway-write guard's limit (default 100000; 0: none)
//   skiff:eventTtlSeconds                           how long an Event is kept after its last write (default 3600; 0: for ever)
//   skiff:adminPrincipalArns                        IAM users/roles made cluster admins for IAM sign-in,
//                                                   comma-separated (`skiff kubeconfig --stack NAME --iam`)
//   skiff:adminToken                                "false": no long-lived admin token (IAM sign-in only)
//   skiff:cloudWatchMetrics                         "true": the apiserver's and nodes' metrics to CloudWatch
//                                                   (custom metrics: `npm run cost` shows what they add)
//
// Region: the CLI's (CDK_DEFAULT_REGION). When it is unset, a stack with the front door is pinned to
// us-east-1, because its Lambda@Edge function must be placed in us-east-1 and an environment-agnostic
// stack cannot say where it is; without the front door the stack stays environment-agnostic.

import { App } from 'aws-cdk-lib';
import { SkiffStack } from './skiff-stack.ts';

const app = new App();
const enabled = (key: string) => {
  const v = app.node.tryGetContext(key);
  return !(v === false || String(v).toLowerCase() === 'false');
};
const frontDoor = enabled('skiff:frontDoor');
const clusterName = app.node.tryGetContext('skiff:clusterName') as string | undefined;
const maxObjects = app.node.tryGetContext('skiff:maxObjectsPerNamespace') as string | number | undefined;
const eventTtl = app.node.tryGetContext('skiff:eventTtlSeconds') as string | number | undefined;
const adminArns = app.node.tryGetContext('skiff:adminPrincipalArns') as string | string[] | undefined;

new SkiffStack(app, 'SkiffStack', {
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION ?? (frontDoor ? 'us-east-1' : undefined) },
  cluster: {
    ...(clusterName ? { clusterName: String(clusterName) } : {}),
    ...(maxObjects !== undefined ? { maxObjectsPerNamespace: Number(maxObjects) } : {}),
    ...(eventTtl !== undefined ? { eventTtlSeconds: Number(eventTtl) } : {}),
    ...(enabled('skiff:nodes') ? {} : { nodes: false as const }),
    frontDoor,
    bootstrap: enabled('skiff:bootstrap'),
    adminToken: enabled('skiff:adminToken'),
    cloudWatchMetrics: String(app.node.tryGetContext('skiff:cloudWatchMetrics')).toLowerCase() === 'true',
    ...(adminArns ? { adminPrincipalArns: (Array.isArray(adminArns) ? adminArns : String(adminArns).split(',')).map((a) => a.trim()).filter(Boolean) } : {}),
  },
});
app.synth();
