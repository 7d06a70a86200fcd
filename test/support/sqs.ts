// An SQS endpoint for tests: a moto server of its own (from .venv-moto), without the one-request-at-a-time
// lock the DynamoDB tests' server takes (support/dynamodb.ts): a long poll holds its request open for
// seconds, and under that lock it would hold every other request back. Without moto, undefined (tests
// skip loudly), except under CI=true, where it throws.

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SQSClient } from '@aws-sdk/client-sqs';
import { startMotoServer } from './dynamodb.ts';

const VENV = join(resolve(dirname(fileURLToPath(import.meta.url)), '../..'), '.venv-moto');

const PLAIN_MOTO_SERVER = `
import sys
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
run_simple(sys.argv[1], int(sys.argv[2]), DomainDispatcherApplication(create_backend_app), threaded=True, request_handler=MotoRequestHandler)
`;

export interface SqsTestEndpoint {
  endpoint: string;
  /** A client of its own (each agent and function has one). */
  newClient(): SQSClient;
  stop(): Promise<void>;
}

export async function sqsTestEndpoint(): Promise<SqsTestEndpoint | undefined> {
  if (!existsSync(join(VENV, 'bin/moto_server'))) {
    const msg = `No SQS endpoint: install moto: python3 -m venv .venv-moto && .venv-moto/bin/pip install 'moto[server]==5.2.5'`;
    if (process.env.CI === 'true') throw new Error(msg);
    console.warn(`\n!!!!!!!!!! ${msg}\n!!!!!!!!!! SQS tests are SKIPPED\n`);
    return undefined;
  }
  const moto = await startMotoServer(PLAIN_MOTO_SERVER, 4000);
  const clients: SQSClient[] = [];
  return {
    endpoint: moto.endpoint,
    newClient() {
      const c = new SQSClient({ endpoint: moto.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
      clients.push(c);
      return c;
    },
    async stop() {
      for (const c of clients) c.destroy();
      await moto.stop();
    },
  };
}
