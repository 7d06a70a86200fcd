// A whole emulated AWS account for deploy tests: one moto server (every service on one endpoint:
// CloudFormation, S3, IAM, STS, SSM, Lambda, DynamoDB, SQS, EventBridge, ...) from .venv-moto on a free
// loopback port, that `cdk deploy` / `cdklocal deploy` can target. As test/support/dynamodb.ts does, it
// skips loudly on a developer machine without moto and throws under CI=true.
//
// moto 5.2.5's CloudFormation lacks two resource types the Skiff stack needs, so this server adds them
// as thin models over moto's own backends (moto skips unknown types, and a GetAtt on a skipped resource
// fails the whole deploy):
// - AWS::DynamoDB::GlobalTable (what CDK's TableV2 synthesizes): with one replica in the stack's region
//   it is that region's table, so it is created as moto's AWS::DynamoDB::Table is, plus the replica's
//   TTL and point-in-time recovery settings.
// - AWS::Lambda::Url: moto's Lambda API has function URL configs (CreateFunctionUrlConfig), its
//   CloudFormation does not; Fn::GetAtt FunctionUrl returns moto's URL (which moto cannot serve).
// And three changes to moto's behaviour:
// - A stack created or updated through a change set (as cdk deploys) has its Outputs: moto 5.2.5 builds
//   a stack's outputs when the stack is created, which for a change set is before it has a template.
//   They are resolved when the change set executes, so an output naming a resource moto skipped fails
//   the deploy with moto's message instead of every later DescribeStacks with a 500.
// - A Lambda-backed custom resource fails the deploy. moto would run its function in Docker from a Lambda
//   runtime image pulled from a public registry, in the background, and report the resource (and the
//   stack) CREATE_COMPLETE at once whether or not the function ever ran: here it never can.
// - moto delivers a table's stream records to the event source mappings' functions inside each write
//   request, by running the function in Docker from a Lambda runtime image it pulls from a public
//   registry. With no registry reachable that fails, leaves an unlabelled Docker volume behind and drops
//   the records from the stream. This server does not deliver; the records stay on the stream.

import { existsSync } from 'node:fs';
import { startMotoServer } from './dynamodb.ts';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const MOTO_ACCOUNT_ID = '123456789012';
export const MOTO_REGION = 'us-east-1';

export interface MotoAccount {
  endpoint: string;
  region: string;
  accountId: string;
  /** Static dummy credentials and region for SDK clients (moto accepts any credentials). */
  clientConfig: { endpoint: string; region: string; credentials: { accessKeyId: string; secretAccessKey: string } };
  stop(): Promise<void>;
}

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const VENV = join(REPO, '.venv-moto');
/** moto's Python (its standard library also unzips Lambda bundles for the deploy test). */
export const MOTO_PYTHON = join(VENV, 'bin/python');

const MOTO_SERVER = `
import sys
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.cloudformation.parsing import OutputMap  # imports every CloudFormation model; the classes below join them
from moto.cloudformation.custom_model import CustomModel
from moto.cloudformation.exceptions import UnformattedGetAttTemplateException, ValidationError
from moto.cloudformation.models import CloudFormationBackend
from moto.core.common_models import CloudFormationModel
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.table import Table
from moto.awslambda.models import LambdaBackend
from moto.awslambda.utils import get_backend as lambda_backend

class GlobalTable(CloudFormationModel):
    __module__ = "moto.dynamodb.skiff"  # moto files every model under the service its module names
    @staticmethod
    def cloudformation_name_type():
        return "TableName"
    @staticmethod
    def cloudformation_type():
        return "AWS::DynamoDB::GlobalTable"
    @classmethod
    def has_cfn_attr(cls, attr):
        return Table.has_cfn_attr(attr)
    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        replicas = props.get("Replicas") or [{"Region": region_name}]
        if [r.get("Region") for r in replicas] != [region_name]:
            raise ValidationError(message="only a global table with one replica, in the stack's region, is emulated")
        table = Table.create_from_cloudformation_json(resource_name, cloudformation_json, account_id, region_name, **kwargs)
        backend = dynamodb_backends[account_id][region_name]
        if props.get("TimeToLiveSpecification"):
            backend.update_time_to_live(table.name, props["TimeToLiveSpecification"])
        pitr = replicas[0].get("PointInTimeRecoverySpecification")
        if pitr:
            backend.update_continuous_backups(table.name, pitr)
        return table
    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        Table.delete_from_cloudformation_json(resource_name, cloudformation_json, account_id, region_name)

class FunctionUrl(CloudFormationModel):
    __module__ = "moto.awslambda.skiff"
    def __init__(self, config):
        self.config = config
    @staticmethod
    def cloudformation_name_type():
        return ""
    @staticmethod
    def cloudformation_type():
        return "AWS::Lambda::Url"
    @classmethod
    def has_cfn_attr(cls, attr):
        return attr in ("FunctionArn", "FunctionUrl")
    @property
    def physical_resource_id(self):
        return self.config.function.function_arn
    def get_cfn_attribute(self, attr):
        if attr == "FunctionUrl":
            return self.config.url
        if attr == "FunctionArn":
            return self.config.function.function_arn
        raise UnformattedGetAttTemplateException()
    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        config = {k: props[k] for k in ("AuthType", "InvokeMode", "Cors") if k in props}
        return cls(lambda_backend(account_id, region_name).create_function_url_config(props["TargetFunctionArn"], config))
    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        lambda_backend(account_id, region_name).delete_function_url_config(cloudformation_json["Properties"]["TargetFunctionArn"])

LambdaBackend.send_dynamodb_items = lambda self, function_arn, items, source: None

def custom_resource(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    raise ValidationError(message=f"{kwargs['ResourceType']} {kwargs['LogicalId']}: moto would run its function in Docker "
                          "from a Lambda runtime image pulled from a registry, and report it created even when that fails")
CustomModel.create_from_cloudformation_json = classmethod(custom_resource)

execute_change_set = CloudFormationBackend.execute_change_set
def execute_change_set_with_outputs(self, change_set_name, stack_name=None):
    execute_change_set(self, change_set_name, stack_name)
    change_set = self.change_sets.get(change_set_name) or next(
        c for c in self.change_sets.values() if c.change_set_name == change_set_name)
    stack = self.stacks[change_set.stack_id]
    stack._parse_template()
    stack.output_map = stack._create_output_map()
    try:
        stack.outputs  # resolves every output now: one naming a resource moto did not create fails the deploy
    except Exception:
        stack.status = change_set.change_set_type + "_FAILED"
        stack.output_map = OutputMap(stack.resource_map, {"Outputs": {}}, stack.stack_id)
        raise
CloudFormationBackend.execute_change_set = execute_change_set_with_outputs

app = DomainDispatcherApplication(create_backend_app)
run_simple(sys.argv[1], int(sys.argv[2]), app, threaded=True, request_handler=MotoRequestHandler)
`;

/** Starts a moto server standing for one AWS account, or undefined (with a loud warning) without moto. */
export async function motoAccount(): Promise<MotoAccount | undefined> {
  if (!existsSync(join(VENV, 'bin/moto_server'))) {
    const msg = `No moto server: python3 -m venv .venv-moto && .venv-moto/bin/pip install 'moto[server]==5.2.5'`;
    if (process.env.CI === 'true') throw new Error(msg);
    console.warn(`\n!!!!!!!!!! ${msg}\n!!!!!!!!!! deploy tests are SKIPPED\n`);
    return undefined;
  }
  const moto = await startMotoServer(MOTO_SERVER, 8000);
  const endpoint = moto.endpoint;
  return {
    endpoint,
    region: MOTO_REGION,
    accountId: MOTO_ACCOUNT_ID,
    clientConfig: { endpoint, region: MOTO_REGION, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } },
    stop: () => moto.stop(),
  };
}

