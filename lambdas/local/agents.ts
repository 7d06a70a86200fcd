// Node agents for the local cluster: `skiff up` runs one (or --nodes N) in-process on the local Docker
// Engine. Each is a real client of the apiserver over HTTPS with its own node token, exactly as a
// separate `skiff agent` process (or an EC2 node) would be; only the process is shared.

import os from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../storage/backend.ts';
import { newToken, nodeUser, storeToken } from '../apiserver/auth.ts';
import { startAgent, type Agent, type AgentOptions } from '../../node-agent/agent.ts';

export interface LocalAgentsOptions {
  count: number;
  backend: Backend;
  server: string;
  caCert: string;
  dataDir: string;
  /** Overrides for every agent (tests shorten back-off, pick a network...). */
  agent?: Partial<AgentOptions>;
  log?: (msg: string) => void;
}

/** Node names: the host's name for one node, <host>-0..N-1 for several. */
export function localNodeNames(count: number): string[] {
  const host = os.hostname().toLowerCase().replace(/[^a-z0-9.-]/g, '-');
  return count === 1 ? [host] : Array.from({ length: count }, (_, i) => `${host}-${i}`);
}

export async function startLocalAgents(o: LocalAgentsOptions): Promise<Agent[]> {
  const agents: Agent[] = [];
  try {
    for (const name of o.agent?.nodeName ? [o.agent.nodeName] : localNodeNames(o.count)) {
      // The agents share the host's network namespace, so one proxy (the first agent's) serves them all.
      const proxy = agents.length === 0 ? o.agent?.proxy : false;
      const token = newToken();
      await storeToken(o.backend, token, nodeUser(name));
      agents.push(
        await startAgent({
          api: { server: o.server, caCert: o.caCert, token },
          nodeName: name,
          dataDir: join(o.dataDir, 'nodes', name),
          port: 0,
          log: o.log,
          ...o.agent,
          proxy,
        }),
      );
    }
  } catch (e) {
    await Promise.all(agents.map((a) => a.close()));
    throw e;
  }
  return agents;
}
