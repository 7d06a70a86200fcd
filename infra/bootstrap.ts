// SkiffBootstrap: the cluster's join parameters in SSM Parameter Store, under /skiff/<clusterName>/.
//   bootstrap-token, admin-token  SecureString, made by a custom resource (lambdas/bootstrap/lambda.ts)
//                                 at deploy time, so their values are never in the template
//   service-account-key           SecureString, the same way: the RSA keys service-account tokens are
//                                 signed with (the apiserver alone may read it)
//   api-url, ca                   String, plain AWS::SSM::Parameter resources
// Agents read api-url, ca and bootstrap-token (node-agent/bootstrap.ts); `skiff kubeconfig --stack`
// reads the ClusterName output, admin-token and ca.

import { CustomResource, Duration, Token } from 'aws-cdk-lib';
import { PRINCIPAL_ARN } from '../lambdas/kinds/iam/accessentry.ts';
import type { ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { ParameterTier, StringParameter } from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import type { BootstrapProperties } from '../lambdas/bootstrap/lambda.ts';
import { SSM_PARAMETERS, SYSTEM_TRUST } from '../node-agent/bootstrap.ts';
import { parameterArn } from './nodes.ts';

/** The service-account signing keys' parameter under the prefix (SecureString; the apiserver reads it). */
export const SERVICE_ACCOUNT_KEY_PARAMETER = 'service-account-key';

/** The admin token's parameter name under the prefix (`skiff kubeconfig --stack` reads it). */
export const ADMIN_TOKEN_PARAMETER = 'admin-token';

/** The parameter prefix of a cluster: /skiff/<clusterName>. */
export function parameterPrefix(clusterName: string): string {
  return `/skiff/${clusterName}`;
}

export interface SkiffBootstrapProps {
  readonly clusterName: string;
  readonly table: ITableV2;
  /** The URL agents reach the apiserver at (the Function URL: their requests need no front door). */
  readonly apiUrl: string;
  /** PEM CA bundle for apiUrl, or SYSTEM_TRUST ('system') for publicly trusted certificates. Default 'system'. */
  readonly ca?: string;
  /** See SkiffClusterProps.adminToken (default true) and adminPrincipalArns. */
  readonly adminToken?: boolean;
  readonly adminPrincipalArns?: string[];
  /** The service-account token issuer: the cluster's public API URL (stored in the table by the custom resource). */
  readonly serviceAccountIssuer?: string;
  /** Makes the function that handles the custom resource (SkiffCluster's skiffFunction: own role and logs, table access). */
  readonly newFunction: (id: string, prefix: string, entry: string, timeout: Duration, env?: Record<string, string>) => NodejsFunction;
}

export class SkiffBootstrap extends Construct {
  public readonly function: NodejsFunction;
  /** The token-making custom resource: nodes should start after it. */
  public readonly tokens: CustomResource;
  public readonly apiUrlParameter: StringParameter;
  public readonly caParameter: StringParameter;

  constructor(scope: Construct, id: string, props: SkiffBootstrapProps) {
    super(scope, id);
    const prefix = parameterPrefix(props.clusterName);
    this.function = props.newFunction('BootstrapFunction', 'Bootstrap', '../lambdas/bootstrap/lambda.ts', Duration.minutes(2));
    const secretNames = [SSM_PARAMETERS.bootstrapToken, ADMIN_TOKEN_PARAMETER, SERVICE_ACCOUNT_KEY_PARAMETER];
    this.function.addToRolePolicy(
      new PolicyStatement({
        // SecureStrings under the AWS-managed aws/ssm key: its key policy lets the account's principals
        // use it through SSM, so no kms: statement is needed.
        // Exactly the calls lambdas/bootstrap/lambda.ts makes (test/infra.test.ts reads them from it).
        actions: ['ssm:PutParameter', 'ssm:GetParameter', 'ssm:GetParameters', 'ssm:DeleteParameters'],
        resources: secretNames.map((n) => parameterArn(this, props.clusterName, n)),
      }),
    );
    for (const arn of props.adminPrincipalArns ?? []) {
      if (!Token.isUnresolved(arn) && !PRINCIPAL_ARN.test(arn)) throw new Error(`SkiffCluster: adminPrincipalArns: ${arn} is not an IAM user or role ARN`);
    }
    const properties: BootstrapProperties = {
      BootstrapTokenParameter: `${prefix}/${SSM_PARAMETERS.bootstrapToken}`,
      AdminTokenParameter: `${prefix}/${ADMIN_TOKEN_PARAMETER}`,
      AdminToken: props.adminToken === false ? 'false' : 'true',
      AdminPrincipalArns: props.adminPrincipalArns ?? [],
      ServiceAccountKeyParameter: `${prefix}/${SERVICE_ACCOUNT_KEY_PARAMETER}`,
      ...(props.serviceAccountIssuer ? { ServiceAccountIssuer: props.serviceAccountIssuer } : {}),
    };
    // CloudFormation calls a custom resource again only when its properties change. The bootstrap's bundle
    // key (its content's hash) makes each deploy of new code a change, so the table is upgraded then
    // (indexExisting, startFeeds, the dependents' counts) and the system objects and RBAC roles reconciled;
    // every step is idempotent, and tokens and keys are kept (ensureTokens, ensureServiceAccountKey).
    const code = (this.function.node.defaultChild as CfnFunction).code as CfnFunction.CodeProperty;
    this.tokens = new CustomResource(this, 'Tokens', {
      serviceToken: this.function.functionArn,
      resourceType: 'Custom::SkiffBootstrapTokens',
      properties: { ...properties, CodeKey: code.s3Key },
    });
    // The role's policy must exist before CloudFormation calls the function.
    this.tokens.node.addDependency(this.function.role!);

    this.apiUrlParameter = new StringParameter(this, 'ApiUrl', {
      parameterName: `${prefix}/${SSM_PARAMETERS.apiUrl}`,
      stringValue: props.apiUrl,
      tier: ParameterTier.STANDARD,
      description: 'Skiff apiserver URL',
    });
    this.caParameter = new StringParameter(this, 'Ca', {
      parameterName: `${prefix}/${SSM_PARAMETERS.ca}`,
      stringValue: props.ca ?? SYSTEM_TRUST,
      tier: ParameterTier.STANDARD,
      description: `PEM CA bundle for the apiserver URL, or "${SYSTEM_TRUST}" for the system trust store`,
    });
  }
}
