// A deployed agent's push channel (issue #16): its own SQS queue, long-polled, on which the controller
// manager's node notifier (lambdas/controllers/node-notifier.ts) says what to re-list. Each message
// nudges the agent's informers of the collections it names (informer.ts): they re-list at once instead
// of at the end of their poll period, which stays as the safety net for a lost message.
//
// The agent makes its queue at start (CreateQueue is idempotent for the same attributes): messages
// older than a minute are dropped (the poll has caught up with them by then), and a message received
// but not deleted (the agent stopped in between) comes back after the visibility timeout, to be acted
// on again: a nudge acted on twice costs one more list and changes nothing.

import { CreateQueueCommand, DeleteMessageBatchCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { nodeQueueName, type PushMessage, type PushedCollection } from '../lambdas/controllers/node-notifier.ts';

export interface PushChannelOptions {
  sqs: SQSClient;
  /** The cluster's queue prefix (`skiff agent --push-queue-prefix`). */
  queuePrefix: string;
  nodeName: string;
  /** Called with the collections a batch of messages names, before the messages are deleted. */
  onNudge: (collections: PushedCollection[]) => void;
  /** Called with the latest "report usage until" deadline a batch names (ms since the epoch; node-agent/usage-report.ts). */
  onReportUsage?: (untilMs: number) => void;
  log?: (msg: string) => void;
  /** Long-poll wait (default 20 s, SQS's longest: the fewest requests while idle). */
  waitSeconds?: number;
  /** How long a received message stays hidden before it comes back undeleted (default 30 s). */
  visibilityTimeoutSeconds?: number;
}

export interface PushChannel {
  queueUrl: string;
  stop(): Promise<void>;
}

const COLLECTIONS: readonly string[] = ['pods', 'services', 'endpoints'] satisfies PushedCollection[];

export async function startPushChannel(o: PushChannelOptions): Promise<PushChannel> {
  const log = o.log ?? (() => {});
  const { QueueUrl } = await o.sqs.send(
    new CreateQueueCommand({
      QueueName: nodeQueueName(o.queuePrefix, o.nodeName),
      Attributes: { MessageRetentionPeriod: '60', VisibilityTimeout: String(o.visibilityTimeoutSeconds ?? 30) },
    }),
  );
  const queueUrl = QueueUrl!;
  const ctl = new AbortController();
  const running = (async () => {
    while (!ctl.signal.aborted) {
      try {
        const got = await o.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: o.waitSeconds ?? 20, MaxNumberOfMessages: 10 }), { abortSignal: ctl.signal });
        const messages = got.Messages ?? [];
        if (!messages.length) continue;
        const named = new Set<PushedCollection>();
        for (const m of messages) for (const c of collectionsOf(m.Body)) named.add(c);
        if (named.size) o.onNudge([...named]);
        const until = Math.max(0, ...messages.map((m) => reportUsageUntil(m.Body)));
        if (until) o.onReportUsage?.(until);
        await o.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
      } catch (e) {
        if (ctl.signal.aborted) break;
        // Throttled, the network down, the queue deleted under us: the poll covers meanwhile.
        log(`push channel: ${(e as Error).message}; again in 5 s`);
        await new Promise((r) => setTimeout(r, 5000));
      }
    }
  })();
  return {
    queueUrl,
    async stop() {
      ctl.abort();
      await running;
    },
  };
}

/** The deadline of a "report usage" message (ms since the epoch), 0 when it is not one. */
function reportUsageUntil(body: string | undefined): number {
  try {
    const t = Date.parse((JSON.parse(body ?? '') as PushMessage).reportUsage?.until ?? '');
    return Number.isFinite(t) ? t : 0;
  } catch {
    return 0;
  }
}

/** The collections a message names; a message that is not ours names none (and is deleted). */
function collectionsOf(body: string | undefined): PushedCollection[] {
  try {
    const m = JSON.parse(body ?? '') as PushMessage;
    return Array.isArray(m.resync) ? m.resync.filter((c): c is PushedCollection => COLLECTIONS.includes(c)) : [];
  } catch {
    return [];
  }
}
