// The stack `cdk deploy` creates from this repository: one SkiffCluster and its endpoints as outputs.

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
      value: this.cluster.url.url,
      description: 'The apiserver endpoint (a kubeconfig cluster.server)',
    });
    new CfnOutput(this, 'TableName', {
      value: this.cluster.table.tableName,
      description: 'The DynamoDB table holding the cluster state',
    });
  }
}
