// Wake-ups: how a controller gets a key reconciled at a time in the future when nothing changes before
// then (a CronJob's next fire time).
//
// Locally the runner's requeue does it (the process keeps running), so LocalWakeUps does nothing. In the
// cloud no function runs between events, and the scheduled resync (every 5 minutes) is too coarse for a
// schedule that fires every minute, so EventBridgeWakeUps keeps one one-time Amazon EventBridge Scheduler
// schedule per key, `at(<time>)`, deleted by Scheduler after it ran (ActionAfterCompletion DELETE). Its
// target is the controller function itself, with a payload naming the controller and the key
// ({"skiffWakeUp": {...}}), which the controller Lambda's handler reconciles (handleWakeUp). Cost: one
// Scheduler invocation per fire (the first 14 million a month are free; infra/cost-model.ts), plus the
// UpdateSchedule/CreateSchedule calls, made only when the wanted time changes.

import { createHash } from 'node:crypto';
import {
  ConflictException,
  CreateScheduleCommand,
  DeleteScheduleCommand,
  ResourceNotFoundException,
  SchedulerClient,
  UpdateScheduleCommand,
  type CreateScheduleCommandInput,
} from '@aws-sdk/client-scheduler';
import { contextFor, type Controller, type ControllerContext } from './controller.ts';
import { namespaceOfKey, reconcileCharged } from '../machinery/usage.ts';

export interface WakeUps {
  /** Reconcile `key` of `controller` at `at` (replacing an earlier wake-up of that key). */
  wakeAt(controller: string, key: string, at: Date): Promise<void>;
  /** No wake-up for `key` any more (its object is gone). */
  cancel(controller: string, key: string): Promise<void>;
}

/** Locally: the runner requeues the key itself (ReconcileResult.requeueAfterMs). */
export const localWakeUps: WakeUps = {
  async wakeAt() {},
  async cancel() {},
};

/** The payload a wake-up schedule sends to the controller function. */
export interface WakeUpEvent {
  skiffWakeUp: { controller: string; key: string };
}

export function isWakeUpEvent(e: unknown): e is WakeUpEvent {
  const w = (e as WakeUpEvent | undefined)?.skiffWakeUp;
  return !!w && typeof w.controller === 'string' && typeof w.key === 'string';
}

/** Reconciles the key a wake-up names (a failure throws: Scheduler's retry policy tries again). */
export async function handleWakeUp(controllers: Controller[], ctx: ControllerContext, e: WakeUpEvent): Promise<void> {
  const c = controllers.find((c) => c.name === e.skiffWakeUp.controller);
  if (!c) return console.warn(`wake-up for unknown controller ${e.skiffWakeUp.controller}`);
  // The Scheduler's invocation and the reconcile are the key's namespace's (cost per namespace, usage.ts).
  const key = e.skiffWakeUp.key;
  ctx.usage?.invocation([namespaceOfKey(key)], true);
  await reconcileCharged(ctx.usage, key, () => c.reconcile(key, contextFor(c, ctx)));
}

export interface EventBridgeWakeUpsOptions {
  client: SchedulerClient;
  /** The schedule group the schedules live in (deleting the stack deletes it and them). */
  group: string;
  /** The function the schedules invoke (the controller manager's). */
  targetArn: string;
  /** The role Scheduler assumes to invoke it. */
  roleArn: string;
}

/** A schedule's name: 64 characters at most of [0-9a-zA-Z-_.], one per controller and key. */
export function scheduleName(controller: string, key: string): string {
  return `${controller.slice(0, 20)}-${createHash('sha256').update(`${controller}\n${key}`).digest('hex').slice(0, 40)}`;
}

/** Scheduler's at() takes yyyy-mm-ddThh:mm:ss; a time is rounded up to the second, so it is never early. */
export function atExpression(at: Date): string {
  const s = new Date(Math.ceil(at.getTime() / 1000) * 1000).toISOString();
  return `at(${s.slice(0, 19)})`;
}

export class EventBridgeWakeUps implements WakeUps {
  /** What this instance last asked for, per schedule: a reconcile that wants the same time calls nothing. */
  private readonly asked = new Map<string, string>();
  constructor(private readonly opts: EventBridgeWakeUpsOptions) {}

  async wakeAt(controller: string, key: string, at: Date): Promise<void> {
    const Name = scheduleName(controller, key);
    const ScheduleExpression = atExpression(at);
    if (this.asked.get(Name) === ScheduleExpression) return;
    const input: CreateScheduleCommandInput = {
      Name,
      GroupName: this.opts.group,
      ScheduleExpression,
      ScheduleExpressionTimezone: 'UTC',
      FlexibleTimeWindow: { Mode: 'OFF' },
      ActionAfterCompletion: 'DELETE',
      Target: {
        Arn: this.opts.targetArn,
        RoleArn: this.opts.roleArn,
        Input: JSON.stringify({ skiffWakeUp: { controller, key } } satisfies WakeUpEvent),
        RetryPolicy: { MaximumRetryAttempts: 10, MaximumEventAgeInSeconds: 3600 },
      },
      Description: `${controller} ${key}`.slice(0, 512),
    };
    // Upsert: most keys have a schedule already (the one for their next fire time, until it ran).
    try {
      await this.opts.client.send(new UpdateScheduleCommand(input));
    } catch (e) {
      if (!(e instanceof ResourceNotFoundException) && (e as Error).name !== 'ResourceNotFoundException') throw e;
      try {
        await this.opts.client.send(new CreateScheduleCommand(input));
      } catch (e2) {
        // Another instance created it meanwhile: make it ours.
        if (!(e2 instanceof ConflictException) && (e2 as Error).name !== 'ConflictException') throw e2;
        await this.opts.client.send(new UpdateScheduleCommand(input));
      }
    }
    this.asked.set(Name, ScheduleExpression);
  }

  async cancel(controller: string, key: string): Promise<void> {
    const Name = scheduleName(controller, key);
    this.asked.delete(Name);
    try {
      await this.opts.client.send(new DeleteScheduleCommand({ Name, GroupName: this.opts.group }));
    } catch (e) {
      if (!(e instanceof ResourceNotFoundException) && (e as Error).name !== 'ResourceNotFoundException') throw e;
    }
  }
}

/**
 * The cloud's wake-ups, from the controller function's environment (infra/skiff-cluster.ts):
 * SKIFF_WAKEUP_GROUP and SKIFF_WAKEUP_ROLE_ARN; the target is this function (its name and region from the
 * Lambda runtime, the account from the role's ARN, so the stack has no self-reference). Without them
 * (`skiff up`, tests): local ones.
 */
export function wakeUpsFromEnv(env: NodeJS.ProcessEnv = process.env): WakeUps {
  const group = env.SKIFF_WAKEUP_GROUP;
  const roleArn = env.SKIFF_WAKEUP_ROLE_ARN;
  const fn = env.AWS_LAMBDA_FUNCTION_NAME;
  const region = env.AWS_REGION;
  if (!group || !roleArn || !fn || !region) return localWakeUps;
  const [, partition, , , account] = roleArn.split(':');
  const targetArn = `arn:${partition}:lambda:${region}:${account}:function:${fn}`;
  return new EventBridgeWakeUps({ client: new SchedulerClient({ region }), group, targetArn, roleArn });
}
