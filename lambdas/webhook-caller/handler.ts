// The webhook caller: a function inside the nodes' VPC that POSTs an AdmissionReview to a service-based
// webhook's pod for the deployed apiserver, which is outside the VPC (apiserver/webhook-post.ts). Only
// the apiserver's role may invoke it; it reads nothing and talks only inside the VPC.

import { callForApiserver, type CallerResult, type WebhookPost } from '../apiserver/webhook-post.ts';

export async function handler(event: WebhookPost): Promise<CallerResult> {
  const ok =
    event && typeof event.host === 'string' && Number.isInteger(event.port) && typeof event.path === 'string' && typeof event.hostHeader === 'string' &&
    typeof event.body === 'string' && typeof event.timeoutMs === 'number';
  if (!ok) return { error: { message: 'the webhook caller was given no webhook post' } };
  // Never longer than this function may run (its timeout is 35 s; kube caps a webhook at 30 s).
  return callForApiserver({ ...event, timeoutMs: Math.min(event.timeoutMs, 30_000) });
}
