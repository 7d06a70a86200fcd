// `skiff kubeconfig --stack NAME`: a kubeconfig for a deployed cluster. The stack's outputs say where
// its apiserver is (ApiEndpoint) and what it is called (ClusterName); SSM Parameter Store holds the
// admin token (a SecureString the stack's bootstrap resource made) and the CA for the endpoint. The
// token is read with the caller's own AWS credentials: whoever may read that parameter is an admin.

import { SSM_PARAMETERS, SYSTEM_TRUST } from '../../node-agent/bootstrap.ts';
import { renderKubeconfig } from './kubeconfig.ts';

/** The admin token's parameter name under the cluster prefix (not readable by nodes). */
export const ADMIN_TOKEN_PARAMETER = 'admin-token';

export async function kubeconfigForStack(stackName: string): Promise<string> {
  const { CloudFormationClient, DescribeStacksCommand } = await import('@aws-sdk/client-cloudformation');
  const { SSMClient, GetParametersCommand } = await import('@aws-sdk/client-ssm');
  const cfn = new CloudFormationClient({});
  const ssm = new SSMClient({});
  try {
    const stack = (await cfn.send(new DescribeStacksCommand({ StackName: stackName }))).Stacks?.[0];
    const output = (key: string) => stack?.Outputs?.find((o) => o.OutputKey === key)?.OutputValue;
    const server = output('ApiEndpoint')?.replace(/\/+$/, '');
    const clusterName = output('ClusterName');
    if (!server || !clusterName) throw new Error(`stack ${stackName} has no ApiEndpoint and ClusterName outputs: is it a Skiff stack, fully deployed?`);
    const prefix = `/skiff/${clusterName}`;
    const names = [`${prefix}/${ADMIN_TOKEN_PARAMETER}`, `${prefix}/${SSM_PARAMETERS.ca}`];
    const got = await ssm.send(new GetParametersCommand({ Names: names, WithDecryption: true }));
    if (got.InvalidParameters?.length) throw new Error(`SSM parameters missing: ${got.InvalidParameters.join(', ')} (deployed with bootstrap off?)`);
    const value = (n: string) => got.Parameters?.find((p) => p.Name === n)?.Value ?? '';
    const ca = value(names[1]!);
    return renderKubeconfig({
      server,
      token: value(names[0]!),
      caCert: ca && ca !== SYSTEM_TRUST ? ca : undefined,
      clusterName,
      userName: `${clusterName}-admin`,
    });
  } finally {
    cfn.destroy();
    ssm.destroy();
  }
}
