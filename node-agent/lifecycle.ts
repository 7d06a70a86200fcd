// Container lifecycle hooks, as the kubelet runs them (pkg/kubelet/lifecycle, kuberuntime's killContainer):
// a container's preStop handler runs before the container is signalled, and its time comes out of the
// pod's grace period; whatever is left (at least 2 s once a hook ran, kubelet's minimum) is the SIGTERM
// to SIGKILL wait. This is what lets a Deployment roll with no failed request: the hook (typically a
// short sleep) keeps the old container serving while its endpoint leaves the Services' rules.
// The handlers are the probes' (exec, httpGet, tcpSocket: probes.ts), plus sleep.

import { runProbe, type ProbeTarget } from './probes.ts';

/** kubelet's minimumGracePeriodInSeconds: the least SIGTERM-to-SIGKILL wait once a preStop hook ran. */
const MIN_GRACE_AFTER_HOOK_S = 2;

/**
 * Runs a container's preStop handler (if any) within graceSeconds and returns the seconds left for the
 * stop itself. A handler that fails or times out is logged by the caller's event, not retried: kubelet
 * goes on to stop the container either way.
 */
export async function runPreStop(container: Record<string, any> | undefined, graceSeconds: number, target: ProbeTarget): Promise<{ graceLeft: number; error?: string }> {
  const hook = container?.lifecycle?.preStop;
  if (!hook || graceSeconds <= 0) return { graceLeft: graceSeconds };
  const started = Date.now();
  let error: string | undefined;
  if (hook.sleep) {
    await new Promise((r) => setTimeout(r, Math.min(Number(hook.sleep.seconds) || 0, graceSeconds) * 1000));
  } else {
    // runProbe never throws; its timeout is the whole grace period.
    const r = await runProbe({ ...hook, timeoutSeconds: graceSeconds }, target);
    if (!r.ok) error = r.message;
  }
  const spent = (Date.now() - started) / 1000;
  return { graceLeft: Math.max(MIN_GRACE_AFTER_HOOK_S, Math.ceil(graceSeconds - spent)), error };
}
