// A deployed agent's dead man's switch (node-agent/dead-mans-switch.ts) against EventBridge Scheduler on
// moto, and what its firing does to the cluster on DynamoDB (moto): the agent keeps moving its one-time
// schedule ahead; when it stops, the schedule's payload (as Scheduler would deliver it to the controller
// function) goes through the deployed controllers' wake-up handler and makes the node unreachable at
// once, though its long lease has not run out. moto does not fire schedules, so the test delivers the
// stored payload itself.

import { afterAll, describe, expect, it } from 'vitest';
import { CreateScheduleGroupCommand, GetScheduleCommand, SchedulerClient } from '@aws-sdk/client-scheduler';
import { dynamoTestEndpoint, uniqueTableName } from './support/dynamodb.ts';
import { DynamoBackend, ensureTable } from '../lambdas/storage/dynamodb.ts';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { EventBridgeWakeUps, handleWakeUp, isWakeUpEvent, scheduleName, type WakeUps } from '../lambdas/controllers/wakeups.ts';
import { NODE_LEASE_NAMESPACE, NODE_LIFECYCLE_CONTROLLER, silentNodeKey, UNREACHABLE_TAINT } from '../lambdas/controllers/nodelifecycle.ts';
import { controllers as deployedControllers } from '../lambdas/controllers/lambda.ts';
import { startDeadMansSwitch } from '../node-agent/dead-mans-switch.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import { until } from './support/until.ts';

const moto = await dynamoTestEndpoint();
afterAll(async () => moto?.stop());

const nodes = findResource('', 'v1', 'nodes')!;
const leases = findResource('coordination.k8s.io', 'v1', 'leases')!;
const namespaces = findResource('', 'v1', 'namespaces')!;

describe.skipIf(!moto)('dead man\'s switch (EventBridge Scheduler and DynamoDB on moto)', () => {
  it('the agent keeps its schedule ahead; once it stops, the schedule\'s payload makes its node unreachable through the deployed handler', async () => {
    const client = new SchedulerClient({ endpoint: moto!.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    const group = `skiff-wakeups-${Date.now().toString(36)}`;
    await client.send(new CreateScheduleGroupCommand({ Name: group }));
    const wakeUps = new EventBridgeWakeUps({ client, group, targetArn: 'arn:aws:lambda:us-east-1:123456789012:function:skiff-controllers', roleArn: 'arn:aws:iam::123456789012:role/skiff-wakeups' });
    const name = scheduleName(NODE_LIFECYCLE_CONTROLLER, silentNodeKey('ip-10-0-1-5'));
    const at = async () => (await client.send(new GetScheduleCommand({ Name: name, GroupName: group }))) as { ScheduleExpression?: string; Target?: { Input?: string } };

    const sw = startDeadMansSwitch({ wakeUps, nodeName: 'ip-10-0-1-5', everyMs: 1000, silentAfterMs: 40_000 });
    const first = await until('the schedule exists', async () => (await at().catch(() => undefined))?.ScheduleExpression);
    // 40 s ahead of now, to the second.
    const due = Date.parse(`${/^at\((.*)\)$/.exec(first)![1]}Z`);
    expect(due - Date.now()).toBeGreaterThan(35_000);
    expect(due - Date.now()).toBeLessThanOrEqual(41_000);
    // Moved ahead while the agent lives.
    await until('moved ahead', async () => (await at()).ScheduleExpression! > first, 10_000);
    sw.stop();
    const payload = JSON.parse((await at()).Target!.Input!);
    expect(payload).toEqual({ skiffWakeUp: { controller: NODE_LIFECYCLE_CONTROLLER, key: 'silent:ip-10-0-1-5' } });

    // The cluster: the node renewed its 480 s lease a minute ago; then Scheduler delivers the payload.
    const tableName = uniqueTableName('skiff-deadman');
    await ensureTable(moto!.client, tableName);
    const ctx = new ApiServer({ backend: new DynamoBackend({ client: moto!.client, tableName }) }).controllerContext();
    await ctx.registry.create(namespaces, undefined, { metadata: { name: NODE_LEASE_NAMESPACE } });
    await ctx.registry.create(nodes, undefined, { metadata: { name: 'ip-10-0-1-5' }, status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady' }] } });
    await ctx.registry.create(leases, NODE_LEASE_NAMESPACE, {
      metadata: { name: 'ip-10-0-1-5' },
      spec: { holderIdentity: 'ip-10-0-1-5', leaseDurationSeconds: 480, renewTime: new Date(Date.now() - 60_000).toISOString() },
    });
    expect(isWakeUpEvent(payload)).toBe(true);
    await handleWakeUp(deployedControllers, ctx, payload);
    const n = await ctx.registry.get(nodes, undefined, 'ip-10-0-1-5');
    expect((n.spec?.taints ?? []).map((t: { key: string; effect: string }) => `${t.key}:${t.effect}`)).toEqual([`${UNREACHABLE_TAINT}:NoSchedule`, `${UNREACHABLE_TAINT}:NoExecute`]);
    expect(n.status?.conditions?.[0]).toMatchObject({ type: 'Ready', status: 'Unknown', reason: 'NodeStatusUnknown' });
  });
});

// A lapse of the switch (moves failing, or the agent stalled past silentAfterMs) may have let the schedule
// fire and mark the node unreachable; the agent then heartbeats at once (onLapse) rather than at its next
// Lease renewal, up to 300 s later. A stub stands for Scheduler here: what is tested is when onLapse is called.
describe('dead man\'s switch lapses', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('the first move that succeeds after failed ones calls onLapse once; steady moves never do', async () => {
    let fail = false;
    let calls = 0;
    let lapses = 0;
    const wakeUps = {
      async wakeAt() {
        calls++;
        if (fail) throw new Error('ThrottlingException: Rate exceeded');
      },
    } as unknown as WakeUps;
    const sw = startDeadMansSwitch({ wakeUps, nodeName: 'n1', everyMs: 20, silentAfterMs: 5_000, onLapse: () => lapses++ });
    try {
      await until('steady moves', async () => calls >= 5);
      expect(lapses).toBe(0);
      fail = true;
      const before = calls;
      await until('failed moves', async () => calls >= before + 3);
      expect(lapses).toBe(0);
      fail = false;
      await until('a lapse', async () => lapses > 0);
      const after = calls;
      await until('steady moves again', async () => calls >= after + 5);
      expect(lapses).toBe(1);
    } finally {
      sw.stop();
    }
  });

  it('a move more than silentAfterMs after the last (the agent stalled: its event loop blocked) calls onLapse', async () => {
    let lapses = 0;
    const wakeUps = { async wakeAt() {} } as unknown as WakeUps;
    const sw = startDeadMansSwitch({ wakeUps, nodeName: 'n2', everyMs: 20, silentAfterMs: 1_000, onLapse: () => lapses++ });
    try {
      await sleep(300);
      expect(lapses).toBe(0);
      const stallUntil = Date.now() + 1_500;
      while (Date.now() < stallUntil); // no timer runs meanwhile, as in a stalled agent
      await until('a lapse', async () => lapses > 0, 5_000, 20);
      await sleep(300);
      expect(lapses).toBe(1);
    } finally {
      sw.stop();
    }
  });
});
