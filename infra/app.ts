// The CDK app (cdk.json: "app": "npx tsx infra/app.ts").

import { App } from 'aws-cdk-lib';
import { SkiffStack } from './skiff-stack.ts';

const app = new App();
new SkiffStack(app, 'SkiffStack', {
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
app.synth();
