// A multi-node topology on one machine, for pod network tests: a root-namespace bridge plays the VPC
// (and its router: the root namespace routes between the nodes), and each node is a network namespace
// with a veth into that bridge, IP forwarding on, and a Docker Engine of its own started inside it with
// nsenter (`ip netns exec` would remount /sys and hide the cgroup mounts, and dockerd refuses to start).
// Each engine has its own data-root, exec-root, socket, containerd namespace and default bridge, and
// writes its iptables rules in its node's namespace only. destroy() removes every part of it.
//
// Names carry the test process's pid: skvpc<pid> (bridge), sk<pid><letter> (namespaces), so parallel
// runs and other tests never meet.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';

export interface NetnsNode {
  /** The namespace's name (under /run/netns). */
  netns: string;
  /** The node's address on the VPC bridge (its InternalIP). */
  address: string;
  socketPath: string;
  docker: Docker;
  /** The engine's log, for failures. */
  logPath: string;
}

export interface Topology {
  bridge: string;
  /** The VPC router's address (the root namespace's, on the bridge): the nodes' default gateway. */
  gateway: string;
  nodes: NetnsNode[];
  destroy(): Promise<void>;
}

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
const tryRun = (cmd: string, args: string[]) => {
  try {
    sh(cmd, args);
  } catch {
    // teardown: already gone
  }
};

/**
 * Whether this machine can host the topology (root, ip, nsenter, dockerd). Under CI=true a machine that
 * cannot is an error, as for requireDocker().
 */
export function netnsTopologySupported(): boolean {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  for (const bin of ['ip', 'nsenter', 'setpriv', 'dockerd', 'iptables']) {
    try {
      sh('sh', ['-c', `command -v ${bin}`]);
    } catch {
      missing.push(bin);
    }
  }
  if (!missing.length) return true;
  const msg = `multi-node network topology needs ${missing.join(', ')}`;
  if (process.env.CI === 'true') throw new Error(msg);
  console.warn(`\n!!!!!!!!!! ${msg}: multi-node network tests are SKIPPED\n`);
  return false;
}

export async function startTopology(count = 2): Promise<Topology> {
  const pid = process.pid;
  const bridge = `skvpc${pid}`;
  const gateway = '10.199.0.1';
  const dir = mkdtempSync(join(tmpdir(), 'skiff-netns-'));
  const forwardRule = ['FORWARD', '-i', bridge, '-o', bridge, '-m', 'comment', '--comment', `skiff test vpc ${pid}`, '-j', 'ACCEPT'];
  const engines: ChildProcess[] = [];
  const nodes: NetnsNode[] = [];
  const names = Array.from({ length: count }, (_, i) => `sk${pid}${String.fromCharCode(97 + i)}`);

  const destroy = async () => {
    for (const n of nodes) {
      // Containers first, while their engine runs (it unmounts their layers and namespaces).
      try {
        const all = await n.docker.listContainers({ all: true });
        await Promise.all(all.map((c) => n.docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
      } catch {
        // engine not up
      }
    }
    await Promise.all(
      engines.map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
            p.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            p.kill('SIGTERM');
          }),
      ),
    );
    for (const ns of names) tryRun('ip', ['netns', 'del', ns]);
    tryRun('ip', ['link', 'del', bridge]);
    for (let i = 0; i < 5; i++) tryRun('iptables', ['-w', '5', '-D', ...forwardRule]);
    // Anything an engine left mounted under its roots would make the removal fail: unmount first.
    try {
      const mounts = readFileSync('/proc/self/mounts', 'utf8')
        .split('\n')
        .map((l) => l.split(' ')[1] ?? '')
        .filter((m) => m.startsWith(dir))
        .sort((a, b) => b.length - a.length);
      for (const m of mounts) tryRun('umount', ['-l', m]);
    } catch {
      // no /proc
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    sh('ip', ['link', 'add', bridge, 'type', 'bridge']);
    sh('ip', ['addr', 'add', `${gateway}/24`, 'dev', bridge]);
    sh('ip', ['link', 'set', bridge, 'up']);
    // The root namespace routes between the nodes out of the bridge it came in on; the host's Docker
    // has set FORWARD's policy to DROP, so this VPC's traffic is let through explicitly.
    sh('iptables', ['-w', '5', '-I', ...forwardRule]);
    for (const [i, ns] of names.entries()) {
      const address = `10.199.0.${2 + i}`;
      const host = `${ns}h`; // the root end of the veth (at most 15 characters)
      sh('ip', ['netns', 'add', ns]);
      sh('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      sh('ip', ['link', 'set', host, 'master', bridge, 'up']);
      sh('ip', ['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      sh('ip', ['-n', ns, 'route', 'add', 'default', 'via', gateway]);
      // A new namespace inherits the host's forwarding (on): turned off here, the engine turns it on and,
      // doing so, sets FORWARD's policy to DROP, as on any host where Docker enables forwarding.
      sh('nsenter', [`--net=/run/netns/${ns}`, 'sysctl', '-qw', 'net.ipv4.ip_forward=0']);
      const root = join(dir, ns);
      const socketPath = join(root, 'docker.sock');
      const logPath = join(root, 'dockerd.log');
      sh('mkdir', ['-p', root]);
      const out = openSync(logPath, 'a');
      const p = spawn(
        'nsenter',
        [
          `--net=/run/netns/${ns}`,
          // The engine goes with this process even if it dies without destroy().
          'setpriv',
          '--pdeathsig', 'TERM',
          'dockerd',
          '--data-root', join(root, 'data'),
          '--exec-root', join(root, 'exec'),
          '-H', `unix://${socketPath}`,
          '--pidfile', join(root, 'dockerd.pid'),
          '--bip', `192.168.${200 + i}.1/24`,
          '--iptables=true',
          '--containerd-namespace', `skiff-${ns}`,
          '--containerd-plugins-namespace', `skiff-${ns}-plugins`,
        ],
        { stdio: ['ignore', out, out] },
      );
      engines.push(p);
      const docker = new Docker({ socketPath });
      nodes.push({ netns: ns, address, socketPath, docker, logPath });
    }
    for (const n of nodes) {
      const deadline = Date.now() + 60_000;
      for (;;) {
        try {
          await n.docker.ping();
          break;
        } catch {
          if (Date.now() > deadline) throw new Error(`dockerd in ${n.netns} did not start: ${readFileSync(n.logPath, 'utf8').slice(-2000)}`);
          if (engines[nodes.indexOf(n)]!.exitCode !== null) throw new Error(`dockerd in ${n.netns} exited: ${readFileSync(n.logPath, 'utf8').slice(-2000)}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    }
    // Forwarding on in any case (the nodes route their pods' traffic).
    for (const n of nodes) sh('nsenter', [`--net=/run/netns/${n.netns}`, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  } catch (e) {
    await destroy();
    throw e;
  }
  return { bridge, gateway, nodes, destroy };
}
