// A Docker Engine for tests: the local engine (DOCKER_HOST or /var/run/docker.sock). Without one,
// requireDocker() returns undefined and the caller skips loudly, except under CI=true, where it throws:
// CI must never pass by skipping the container tests (.ci/run installs and starts dockerd).

import { PassThrough } from 'node:stream';
import Docker from 'dockerode';
import { ensureBusyboxImage } from '../../node-agent/images.ts';

/** The app image tests run: busybox-static (sh, sleep, httpd, wget, nc...), imported, no registry. */
export const TEST_IMAGE = 'skiff.local/busybox:test';

let cached: Promise<Docker | undefined> | undefined;

export function requireDocker(): Promise<Docker | undefined> {
  cached ??= (async () => {
    const docker = new Docker();
    try {
      await docker.ping();
    } catch (e) {
      const msg = `No Docker Engine reachable (${(e as Error).message}): start dockerd (apt-get install docker.io)`;
      if (process.env.CI === 'true') throw new Error(msg);
      console.warn(`\n!!!!!!!!!! ${msg}\n!!!!!!!!!! Docker tests are SKIPPED\n`);
      return undefined;
    }
    await ensureBusyboxImage(docker, TEST_IMAGE);
    return docker;
  })();
  return cached;
}

/**
 * Runs a command in a container through the engine (what kubectl exec reaches, minus the apiserver
 * hop), with stdout and stderr kept apart.
 */
export async function execInContainer(engine: Docker, id: string, cmd: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const ex = await engine.getContainer(id).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await ex.start({ hijack: true, stdin: false });
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d: Buffer) => (stdout += d.toString()));
  err.on('data', (d: Buffer) => (stderr += d.toString()));
  engine.modem.demuxStream(stream, out, err);
  await new Promise((r) => stream.on('end', r));
  const info = await ex.inspect();
  return { code: info.ExitCode ?? -1, stdout, stderr };
}
