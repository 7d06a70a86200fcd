// `skiff kubeconfig --stack NAME`: a kubeconfig for a deployed cluster. The stack's outputs say where
// its apiserver is (ApiEndpoint) and what it is called (ClusterName); SSM Parameter Store holds the
// admin token (a SecureString the stack's bootstrap resource made) and the CA for the endpoint. The
// token is read with the caller's own AWS credentials: whoever may read that parameter is an admin.

import { caFromParameter, readParameters, SSM_PARAMETERS } from '../../node-agent/bootstrap.ts';
import { renderKubeconfig } from './kubeconfig.ts';

/** The admin token's parameter name under the cluster prefix (not readable by nodes). */
export const ADMIN_TOKEN_PARAMETER = 'admin-token';

/**
 * With `iam`: no token at all; kubectl runs `skiff token --cluster-name <name>` for each sign-in, so the
 * caller's own AWS identity (mapped by the cluster's AccessEntries) is who kubectl acts as.
 */
export async function kubeconfigForStack(stackName: string, opts: { iam?: boolean } = {}): Promise<string> {
  const { CloudFormationClient, DescribeStacksCommand } = await import('@aws-sdk/client-cloudformation');
  const cfn = new CloudFormationClient({});
  try {
    const stack = (await cfn.send(new DescribeStacksCommand({ StackName: stackName }))).Stacks?.[0];
    const output = (key: string) => stack?.Outputs?.find((o) => o.OutputKey === key)?.OutputValue;
    const server = output('ApiEndpoint')?.replace(/\/+$/, '');
    const clusterName = output('ClusterName');
    if (!server || !clusterName) throw new Error(`stack ${stackName} has no ApiEndpoint and ClusterName outputs: is it a Skiff stack, fully deployed?`);
    if (opts.iam) {
      const ca = await readParameters(`/skiff/${clusterName}`, [SSM_PARAMETERS.ca]);
      const region = await cfn.config.region();
      return renderKubeconfig({
        server,
        caCert: caFromParameter(ca[SSM_PARAMETERS.ca]),
        clusterName,
        userName: `${clusterName}-iam`,
        exec: { command: 'skiff', args: ['token', '--cluster-name', clusterName, '--region', region] },
      });
    }
    const v = await readParameters(`/skiff/${clusterName}`, [ADMIN_TOKEN_PARAMETER, SSM_PARAMETERS.ca]).catch((e: Error) => {
      throw new Error(`${e.message} (deployed with bootstrap off?)`);
    });
    return renderKubeconfig({
      server,
      token: v[ADMIN_TOKEN_PARAMETER],
      caCert: caFromParameter(v[SSM_PARAMETERS.ca]),
      clusterName,
      userName: `${clusterName}-admin`,
    });
  } finally {
    cfn.destroy();
  }
}
