// Where a deployed agent's EMF lines go (metrics.ts publishEmf): a CloudWatch Logs log group of the
// cluster (infra/nodes.ts makes it and lets nodes write to it), one stream per node, one PutLogEvents a
// minute. CloudWatch extracts the metrics from the lines (no CloudWatch agent on the node). A failed send
// is dropped with a message: metrics are a sample, and the next minute's increases start from this one's.

import { CloudWatchLogsClient, CreateLogStreamCommand, PutLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';

export function cloudWatchLogsWriter(o: { logGroupName: string; logStreamName: string; client?: CloudWatchLogsClient; log?: (m: string) => void }): (lines: string[]) => Promise<void> {
  const client = o.client ?? new CloudWatchLogsClient({});
  let streamReady = false;
  return async (lines) => {
    try {
      if (!streamReady) {
        await client.send(new CreateLogStreamCommand({ logGroupName: o.logGroupName, logStreamName: o.logStreamName })).catch((e: { name?: string }) => {
          if (e.name !== 'ResourceAlreadyExistsException') throw e;
        });
        streamReady = true;
      }
      const now = Date.now();
      await client.send(new PutLogEventsCommand({ logGroupName: o.logGroupName, logStreamName: o.logStreamName, logEvents: lines.map((message) => ({ timestamp: now, message })) }));
    } catch (e) {
      if ((e as { name?: string }).name === 'ResourceNotFoundException') streamReady = false;
      o.log?.(`metrics: PutLogEvents to ${o.logGroupName} failed, ${lines.length} lines dropped: ${(e as Error).message}`);
    }
  };
}
