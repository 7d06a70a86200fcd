// The stack `cdk deploy` creates from this repository: one SkiffCluster and its endpoints as outputs.
// `skiff kubeconfig --stack NAME` reads ApiEndpoint and ClusterName, then the SSM parameters
// <ParameterPrefix>/admin-token and <ParameterPrefix>/ca.

import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { SkiffCluster, type SkiffClusterProps } from './skiff-cluster.ts';

export interface SkiffStackProps extends StackProps {
  readonly cluster?: SkiffClusterProps;
}

export class SkiffStack extends Stack {
  public readonly cluster: SkiffCluster;

  constructor(scope: Construct, id: string, props: SkiffStackProps = {}) {
    super(scope, id, props);
    this.cluster = new SkiffCluster(this, 'Cluster', props.cluster);
    new CfnOutput(this, 'ApiEndpoint', {
      value: this.cluster.apiUrl,
      description: 'The apiserver endpoint (a kubeconfig cluster.server): the CloudFront front door, or the Function URL without one',
    });
    new CfnOutput(this, 'TableName', {
      value: this.cluster.table.tableName,
      description: 'The DynamoDB table holding the cluster state',
    });
    new CfnOutput(this, 'ClusterName', {
      value: this.cluster.clusterName,
      description: 'The cluster name (its SSM parameters are under /skiff/<ClusterName>/)',
    });
    new CfnOutput(this, 'ParameterPrefix', {
      value: this.cluster.parameterPrefix,
      description: 'SSM prefix of api-url, ca, bootstrap-token and admin-token',
    });
  }
}
