// Every record on a DynamoDB table's stream so far (from TRIM_HORIZON), as Lambda would deliver them:
// feeding them all to handleStreamBatch again and again is at-least-once delivery at its worst.

import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { DescribeStreamCommand, DynamoDBStreamsClient, GetRecordsCommand, GetShardIteratorCommand } from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBRecord } from 'aws-lambda';
import type { DynamoTestEndpoint } from './dynamodb.ts';

export async function streamRecords(ddb: DynamoTestEndpoint, tableName: string): Promise<DynamoDBRecord[]> {
  const streams = new DynamoDBStreamsClient({ endpoint: ddb.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  try {
    const arn = (await ddb.client.send(new DescribeTableCommand({ TableName: tableName }))).Table!.LatestStreamArn!;
    const shards = (await streams.send(new DescribeStreamCommand({ StreamArn: arn }))).StreamDescription!.Shards!;
    const out: DynamoDBRecord[] = [];
    for (const sh of shards) {
      let it = (await streams.send(new GetShardIteratorCommand({ StreamArn: arn, ShardId: sh.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
      for (let i = 0; it && i < 1000; i++) {
        const r = await streams.send(new GetRecordsCommand({ ShardIterator: it }));
        out.push(...((r.Records ?? []) as unknown as DynamoDBRecord[]));
        if (!r.Records?.length) break;
        it = r.NextShardIterator;
      }
    }
    return out;
  } finally {
    streams.destroy();
  }
}
