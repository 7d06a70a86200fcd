// Running iptables from the agent, optionally inside another network namespace. The agent's rules belong
// in the namespace its Docker Engine's bridges live in: normally the host's own, but a node can be a
// network namespace of its own (test topologies, a node per namespace), whose engine the agent reaches
// by socket while the agent process stays in the host's namespace. nsenter switches only the network
// namespace (`ip netns exec` would also remount /sys), so iptables sees that node's tables.

import { execFile, spawn } from 'node:child_process';

/** A network namespace: a name under /run/netns (as `ip netns add` makes) or a path (/proc/PID/ns/net). */
export function netnsPath(netns: string): string {
  return netns.includes('/') ? netns : `/run/netns/${netns}`;
}

/** The command line that runs cmd in netns (or as it is without one). */
export function inNetns(netns: string | undefined, cmd: string, args: string[]): [string, string[]] {
  return netns ? ['nsenter', [`--net=${netnsPath(netns)}`, cmd, ...args]] : [cmd, args];
}

/** Runs a command (in netns, if given) and returns its stdout; rejects with its stderr. */
export function runIn(netns: string | undefined, cmd: string, args: string[]): Promise<string> {
  const [c, a] = inNetns(netns, cmd, args);
  return new Promise((resolve, reject) => {
    execFile(c, a, { maxBuffer: 256 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

export const iptables = (args: string[], netns?: string): Promise<string> => runIn(netns, 'iptables', args);

export const iptablesSave = (table: string, netns?: string): Promise<string> => runIn(netns, 'iptables-save', ['-t', table]);

/** Applies iptables-restore input with --noflush: only the chains it names are touched. */
export function iptablesRestore(text: string, netns?: string): Promise<void> {
  const [c, a] = inNetns(netns, 'iptables-restore', ['-w', '5', '--noflush']);
  return new Promise((resolve, reject) => {
    const p = spawn(c, a, { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`iptables-restore exited ${code}: ${err.trim().slice(0, 2000)}`))));
    p.stdin.end(text);
  });
}
