// SkiffFrontDoor: one CloudFront distribution whose domain is the cluster's one server URL.
//   default behaviour           → the apiserver Function URL (nothing cached, every viewer header but Host)
//   .../pods/*/exec|attach|portforward|log → the same, plus a Lambda@Edge origin-request function
//     (lambdas/edge/stream-router.ts) that sends the request to the pod's node instead (its stream
//     listener on skiff.io/stream-port), since a Lambda cannot hold an interactive stream and the
//     apiserver Lambda, outside the VPC, does not reach the agents for logs.
//
// Lambda@Edge functions live in us-east-1. In a us-east-1 stack the function and its role are in the
// stack itself; elsewhere EdgeFunction puts the function in a support stack in us-east-1, and the role
// is made in that same support stack (a role in this stack would be a cross-region reference).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { ArnFormat, Duration, Stack, Stage, Token } from 'aws-cdk-lib';
import {
  AllowedMethods,
  CachePolicy,
  Distribution,
  LambdaEdgeEventType,
  OriginRequestPolicy,
  ViewerProtocolPolicy,
  experimental,
  type BehaviorOptions,
} from 'aws-cdk-lib/aws-cloudfront';
import { FunctionUrlOrigin } from 'aws-cdk-lib/aws-cloudfront-origins';
import { PolicyStatement, Role, ServicePrincipal, CompositePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Code, Runtime, type IFunctionUrl } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';

/** The pod subresources served by the pod's node (see lambdas/edge/stream-router.ts), as CloudFront path patterns (`*` also matches `/`, never a problem here). */
export const STREAM_PATH_PATTERNS = [
  '/api/v1/namespaces/*/pods/*/exec',
  '/api/v1/namespaces/*/pods/*/attach',
  '/api/v1/namespaces/*/pods/*/portforward',
  // Not an upgrade, but served by the node too: the apiserver Lambda doesn't reach the agents.
  '/api/v1/namespaces/*/pods/*/log',
] as const;

const EDGE_REGION = 'us-east-1';
const ROUTER_ENTRY = fileURLToPath(new URL('../lambdas/edge/stream-router.ts', import.meta.url));

export interface SkiffFrontDoorProps {
  /** The apiserver's Function URL. */
  readonly url: IFunctionUrl;
  /** Names the edge function (`<clusterName>-stream-router`), so its role can name its log groups. */
  readonly clusterName: string;
}

export class SkiffFrontDoor extends Construct {
  public readonly distribution: Distribution;
  public readonly streamRouter: experimental.EdgeFunction;
  /** https://<distribution domain> (no trailing slash): a kubeconfig cluster.server. */
  public readonly url: string;

  constructor(scope: Construct, id: string, props: SkiffFrontDoorProps) {
    super(scope, id);
    const stack = Stack.of(this);
    if (Token.isUnresolved(stack.region)) {
      throw new Error('SkiffFrontDoor: the stack needs an explicit region (env.region): its Lambda@Edge function must be placed in us-east-1');
    }
    const functionName = `${props.clusterName.replace(/[^A-Za-z0-9_-]/g, '-')}-stream-router`.slice(0, 64);
    const edgeStackId = `${stack.stackName}-edge`;
    const roleScope = stack.region === EDGE_REGION ? this : edgeSupportStack(this, edgeStackId, stack);

    // Lambda@Edge writes its logs in every region it runs in, to /aws/lambda/us-east-1.<name>.
    const role = new Role(roleScope, stack.region === EDGE_REGION ? 'StreamRouterRole' : `StreamRouterRole${this.node.addr}`, {
      assumedBy: new CompositePrincipal(new ServicePrincipal('lambda.amazonaws.com'), new ServicePrincipal('edgelambda.amazonaws.com')),
    });
    role.addToPolicy(
      new PolicyStatement({
        actions: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [
          Stack.of(roleScope).formatArn({ service: 'logs', region: '*', resource: 'log-group', resourceName: `/aws/lambda/${EDGE_REGION}.${functionName}:*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME }),
        ],
      }),
    );

    const bundle = bundleStreamRouter();
    this.streamRouter = new experimental.EdgeFunction(this, 'StreamRouter', {
      functionName,
      code: Code.fromAsset(bundle),
      handler: 'index.handler',
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.X86_64, // Lambda@Edge runs x86_64 only
      memorySize: 128,
      timeout: Duration.seconds(10), // two apiserver GETs (pod, node); origin-request allows up to 30 s
      role,
      stackId: stack.region === EDGE_REGION ? undefined : edgeStackId,
    });
    // The function has staged its copy (unless staging is off, when the asset stays where it is).
    if (!this.node.tryGetContext('aws:cdk:disable-asset-staging')) rmSync(bundle, { recursive: true, force: true });

    const origin = new FunctionUrlOrigin(props.url, {
      // Longest idle gap CloudFront allows without a quota increase: a watch must see a byte at least this
      // often, so the apiserver sends a newline on a quiet watch every 20 s (SKIFF_WATCH_KEEPALIVE_SECONDS).
      readTimeout: Duration.seconds(60),
      keepaliveTimeout: Duration.seconds(60),
    });
    const behavior: BehaviorOptions = {
      origin,
      allowedMethods: AllowedMethods.ALLOW_ALL,
      viewerProtocolPolicy: ViewerProtocolPolicy.HTTPS_ONLY,
      cachePolicy: CachePolicy.CACHING_DISABLED,
      // With caching disabled, the all-viewer policies forward Authorization too. Host must be the
      // Function URL's own, or Lambda refuses the request.
      originRequestPolicy: OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
      compress: false, // watch streams must not be buffered for compression
    };
    this.distribution = new Distribution(this, 'Distribution', {
      comment: `Skiff ${props.clusterName} apiserver`,
      defaultBehavior: behavior,
      additionalBehaviors: Object.fromEntries(
        STREAM_PATH_PATTERNS.map((p) => [
          p,
          { ...behavior, edgeLambdas: [{ functionVersion: this.streamRouter.currentVersion, eventType: LambdaEdgeEventType.ORIGIN_REQUEST, includeBody: false }] },
        ]),
      ),
    });
    this.url = `https://${this.distribution.distributionDomainName}`;
  }
}

/** The us-east-1 stack EdgeFunction will put the function in (it reuses a child of the stage with that id). */
function edgeSupportStack(scope: Construct, id: string, parent: Stack): Stack {
  const stage = Stage.of(scope);
  if (!stage) throw new Error('SkiffFrontDoor: the stack must be part of a CDK app or stage');
  return (stage.node.tryFindChild(id) as Stack | undefined) ?? new Stack(stage, id, { env: { region: EDGE_REGION, account: parent.account } });
}

/** The stream router bundled (CommonJS: what Lambda@Edge loads most simply) into a directory of its own. */
function bundleStreamRouter(): string {
  const outdir = mkdtempSync(join(tmpdir(), 'skiff-stream-router-'));
  buildSync({
    entryPoints: [ROUTER_ENTRY],
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    outfile: join(outdir, 'index.js'),
    minify: true,
    external: ['@aws-sdk/*'],
    logLevel: 'warning',
  });
  return outdir;
}
