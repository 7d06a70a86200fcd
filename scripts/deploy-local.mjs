// `npm run deploy:local [-- --endpoint URL] [cdk options...]`: builds, then bootstraps and deploys
// SkiffStack with cdklocal (aws-cdk-local) to an AWS emulator: LocalStack (the default endpoint,
// http://localhost:4566) or a moto server. Further arguments go to `cdklocal bootstrap` and `cdklocal
// deploy` alike, e.g. `-c skiff:nodes=false -c skiff:frontDoor=false -c skiff:bootstrap=false` for a
// control-plane-only stack, or `-o DIR` for the cloud assembly. cdk prints the stack outputs at the end.

import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const args = process.argv.slice(2);
let endpoint = process.env.AWS_ENDPOINT_URL ?? 'http://localhost:4566';
const i = args.indexOf('--endpoint');
if (i >= 0) {
  endpoint = args[i + 1];
  if (!endpoint) throw new Error('--endpoint needs a URL');
  args.splice(i, 2);
}

// cdklocal (v3, for the current CDK CLI) drops every other AWS_* variable, sets dummy credentials and
// us-east-1, and requires the S3 endpoint when the general one is set. Path-style S3: emulators serve
// buckets at <endpoint>/<bucket>, not at <bucket>.<host>.
const templateUrlEndpoint = new URL(endpoint);
// The template URL cdk hands CloudFormation: moto recognises its own S3 in a URL by "localhost" in it.
if (['127.0.0.1', '[::1]'].includes(templateUrlEndpoint.hostname)) templateUrlEndpoint.hostname = 'localhost';
const env = {
  ...process.env,
  AWS_ENDPOINT_URL: endpoint,
  AWS_ENDPOINT_URL_S3: endpoint,
  AWS_ENDPOINT_URL_S3_FOR_CLOUDFORMATION: templateUrlEndpoint.origin,
  AWS_S3_FORCE_PATH_STYLE: '1',
};

const cdklocal = createRequire(import.meta.url).resolve('aws-cdk-local/bin/cdklocal');
function run(cmd, argv) {
  const r = spawnSync(cmd, argv, { stdio: 'inherit', env });
  if (r.status !== 0) {
    console.error(`deploy:local: ${[cmd, ...argv].join(' ')} failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`})`);
    process.exit(r.status || 1);
  }
}

console.log(`deploy:local: deploying SkiffStack to ${endpoint}`);
run('npm', ['run', 'build', '--silent']);
run(process.execPath, [cdklocal, 'bootstrap', ...args]);
run(process.execPath, [cdklocal, 'deploy', 'SkiffStack', '--require-approval', 'never', ...args]);
