// A DynamoDB endpoint for tests: SKIFF_DYNAMODB_ENDPOINT when set (LocalStack or real AWS), otherwise a
// moto server started from .venv-moto on a free loopback port and stopped by the caller. With neither,
// dynamoTestEndpoint() returns undefined (tests skip loudly), except under CI=true, where it throws:
// CI must never pass by skipping the DynamoDB suites.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';

export interface ClientOptions {
  maxSockets?: number;
}

export interface DynamoTestEndpoint {
  client: DynamoDBClient;
  endpoint: string;
  /**
   * A new client for the same endpoint (e.g. to stand for a second process); maxSockets bounds how many
   * of its requests are in flight at once (the SDK's default is 50).
   */
  newClient(opts?: ClientOptions): DynamoDBClient;
  /** Stops the moto server this call started (no-op for an external endpoint). */
  stop(): Promise<void>;
}

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const VENV = join(REPO, '.venv-moto');

// The moto server, started as `python -c MOTO_SERVER host port` rather than through `moto_server`, with
// these changes, which keep moto's own request handling:
// 1. Atomicity. moto_server serves each request on its own thread and moto's TransactWriteItems takes no
//    lock: two concurrent transactions can both pass a condition on the same item, and a cancelled one
//    restores a copy of the whole table taken before it started, undoing writes committed meanwhile
//    (16 writers x 10 increments on stock moto_server ended at 146). DynamoDB's transactions are
//    serializable, so one lock around each request makes moto behave as DynamoDB does.
// 2. Speed. To roll back a cancelled transaction, moto deep-copies every table it touches, stream records
//    included: O(all writes so far) per write (over 0.5 s per transaction after 500 writes). Under the lock
//    it is enough to save and restore the items the transaction touches, and the stream's length.
// 3. Speed. moto's Query of a table (no index) sorts every item of the table and keeps the partition's:
//    O(table) per Query, 72% of moto's time in a 1,000-node run (py-spy), where DynamoDB reads the one
//    partition. The partition's items within the range condition are handed to moto's own Query code
//    instead (it sorts, checks and pages them as before).
// 4. Speed. The server is waitress, not moto_server's werkzeug development server, which closes every
//    connection after its answer: each request was a new TCP connection and a new thread, and with a
//    hundred hollow nodes polling (bench:scale, deployed mode) half of the machine's CPU was kernel time.
//    waitress keeps connections open and answers on a few threads (the lock serializes them anyway). And
//    moto found each request's service by listing its own package directory, a stat per module, every
//    time (a fifth of its time under the lock): the list is read once. waitress's queue-depth warnings
//    are off (stderr's tail is what a failed start reports).
const MOTO_SERVER = `
import copy, sys, threading
from waitress import serve
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
import moto.dynamodb.models as ddb
from moto.dynamodb.comparisons import get_comparison_func
from moto.dynamodb.models.table import Table
from moto.dynamodb.models.dynamo_type import DynamoType

class CopyKeepingTables:
    # moto's transact_write_items gets the live table instead of a deep copy: its restore is a no-op.
    def __getattr__(self, name):
        return getattr(copy, name)
    @staticmethod
    def deepcopy(x, memo=None):
        return x if isinstance(x, Table) else copy.deepcopy(x, memo)
ddb.copy = CopyKeepingTables()

transact = ddb.DynamoDBBackend.transact_write_items
def transact_write_items(self, transact_items):
    saved = []  # (table, hash, range, deep copy of the item or None), taken before anything changes
    for entry in transact_items:
        for op in entry.values():
            table = self.tables.get(op.get("TableName"))
            attrs = op.get("Key") or op.get("Item") or {}
            if table is None or table.hash_key_attr not in attrs or (table.range_key_attr and table.range_key_attr not in attrs):
                continue
            h = DynamoType(attrs[table.hash_key_attr])
            r = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
            saved.append((table, h, r, copy.deepcopy(table.get_item(h, r))))
    streams = {id(t): (t.stream_shard, len(t.stream_shard.items)) for t, _, _, _ in saved if t.stream_shard}
    try:
        return transact(self, transact_items)
    except Exception:
        for table, h, r, item in reversed(saved):
            bucket, key = (table.items[h], r) if r is not None else (table.items, h)
            if item is None:
                bucket.pop(key, None)
            else:
                bucket[key] = item
        for shard, n in streams.values():
            del shard.items[n:]
        raise
ddb.DynamoDBBackend.transact_write_items = transact_write_items

table_query = Table.query
# A string sort key's condition, checked with moto's own comparison on the plain strings (what
# DynamoType.compare does for them, without its per-item casts: it was most of moto's time in a long run).
def range_check(op, objs):
    if all(o.type == "S" for o in objs):
        compare, values = get_comparison_func(op), [o.value for o in objs]
        return lambda key: compare(key.value, *values) if key.type == "S" else key.compare(op, objs)
    return lambda key: key.compare(op, objs)
def partition_query(self, hash_key, *args, **kwargs):
    index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
    if index_name or hash_key is None or not self.range_key_attr:
        return table_query(self, hash_key, *args, **kwargs)
    # Query's no-index branch reads self.all_items() and keeps the items whose hash key matches. Those
    # outside the range condition are left out here too (moto's check, which it makes again): moto sizes
    # every item it is handed before that check, and a log partition holds every revision of a run.
    range_comparison, range_objs = args[0], args[1]
    partition = list(self.items[hash_key].values()) if hash_key in self.items else []
    if range_comparison:
        check = range_check(range_comparison, range_objs)
        partition = [i for i in partition if check(i.range_key)]
    self.all_items = lambda: partition
    try:
        return table_query(self, hash_key, *args, **kwargs)
    finally:
        del self.all_items
Table.query = partition_query
# moto finds a request's service by listing its own package directory (a stat per module) every time.
import moto.backends as backends
backends.list_of_moto_modules = lambda modules=tuple(backends.list_of_moto_modules()): modules
# waitress warns of its task queue's depth on stderr, whose tail is kept to say why a start failed.
import logging
logging.getLogger("waitress.queue").setLevel(logging.ERROR)

app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()
def serialized(environ, start_response):
    with lock:
        return list(app(environ, start_response))
serve(serialized, host=sys.argv[1], port=int(sys.argv[2]), threads=8, connection_limit=4000, backlog=4096, channel_timeout=600, _quiet=True)
`;

export async function dynamoTestEndpoint(): Promise<DynamoTestEndpoint | undefined> {
  const region = process.env.AWS_REGION ?? 'us-east-1';
  const external = process.env.SKIFF_DYNAMODB_ENDPOINT;
  if (external) {
    // Real AWS needs real credentials (the default chain); LocalStack accepts anything.
    const creds = process.env.AWS_ACCESS_KEY_ID ? {} : { credentials: { accessKeyId: 'test', secretAccessKey: 'test' } };
    const newClient = (opts: ClientOptions = {}) => new DynamoDBClient({ endpoint: external, region, ...creds, ...requestHandler(opts) });
    return { client: newClient(), endpoint: external, newClient, stop: async () => {} };
  }

  if (!existsSync(join(VENV, 'bin/moto_server')) || !existsSync(join(VENV, 'bin/waitress-serve'))) {
    const msg = `No DynamoDB endpoint: set SKIFF_DYNAMODB_ENDPOINT, or install moto: python3 -m venv .venv-moto && .venv-moto/bin/pip install 'moto[server]==5.2.5' 'waitress==3.0.2'`;
    if (process.env.CI === 'true') throw new Error(msg);
    console.warn(`\n!!!!!!!!!! ${msg}\n!!!!!!!!!! DynamoDB tests are SKIPPED\n`);
    return undefined;
  }

  const moto = await startMotoServer(MOTO_SERVER, 4000);
  const endpoint = moto.endpoint;
  // Static dummy credentials in the client config: nothing in process.env is touched.
  const newClient = (opts: ClientOptions = {}) =>
    new DynamoDBClient({ endpoint, region, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: 5, ...requestHandler(opts) });
  const client = newClient();
  return {
    client,
    endpoint,
    newClient,
    async stop() {
      client.destroy();
      await moto.stop();
    },
  };
}

const requestHandler = ({ maxSockets }: ClientOptions) =>
  maxSockets === undefined ? {} : { requestHandler: { httpAgent: new HttpAgent({ keepAlive: true, maxSockets }), httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets }) } };

/** A table name no other test uses. */
export function uniqueTableName(label = 'skiff-test'): string {
  return `${label}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** A free loopback port (for a server about to be started). */
/**
 * Runs `python -c script 127.0.0.1 PORT` from .venv-moto on a free loopback port and waits until it
 * serves; on failure, the last `keepStderr` characters of its stderr say why.
 */
export async function startMotoServer(script: string, keepStderr: number): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const proc = spawn(join(VENV, 'bin/python'), ['-c', script, '127.0.0.1', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-keepStderr)));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  try {
    await waitUntilServing(endpoint, proc);
  } catch (e) {
    proc.kill('SIGKILL');
    throw new Error(`moto server did not start: ${(e as Error).message}\n${stderr}`);
  }
  return {
    endpoint,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolvePort(port));
    });
  });
}

/** Resolves once a moto server answers, or throws when its process exits first or 30 s pass. */
async function waitUntilServing(endpoint: string, proc: ChildProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`exited with code ${proc.exitCode}`);
    try {
      await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1000) });
      return; // any HTTP answer means it is serving
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error('no answer within 30 s');
}
