// Pod volumes on disk (temp dirs) and the Docker binds that mount them, and, against the real engine,
// a running container seeing a ConfigMap update through the atomic ..data swap.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { containerBinds, prepareVolumes, removePodDir } from '../node-agent/volumes.ts';
import { requireDocker, TEST_IMAGE } from './support/docker.ts';

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-volumes-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let n = 0;
const newPodDir = () => path.join(tmp, `pod-${++n}`);

function pod(volumes: any[], extra: Record<string, any> = {}): KubeObject {
  return {
    metadata: { name: 'web-1', namespace: 'shop', uid: 'u-1', labels: { app: 'web' }, annotations: { a: '1' } },
    spec: { containers: [{ name: 'app', resources: { limits: { memory: '64Mi' } } }], volumes, ...extra },
  };
}
const cm = (name: string, data: Record<string, string>, binaryData?: Record<string, string>): KubeObject => ({
  metadata: { name, namespace: 'shop' }, data, ...(binaryData ? { binaryData } : {}),
});
const secret = (name: string, data: Record<string, string>): KubeObject => ({
  metadata: { name, namespace: 'shop' }, data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
});
const objs = (cms: KubeObject[] = [], secrets: KubeObject[] = []) => ({
  configMaps: new Map(cms.map((o) => [o.metadata.name!, o])),
  secrets: new Map(secrets.map((o) => [o.metadata.name!, o])),
});
const mode = (p: string) => fs.statSync(p).mode & 0o7777;
const read = (p: string) => fs.readFileSync(p, 'utf8');

describe('prepareVolumes', () => {
  it('makes an emptyDir writable by any user, under the pod dir, kept across runs', () => {
    const dir = newPodDir();
    const p = pod([{ name: 'scratch', emptyDir: {} }, { name: 'mem', emptyDir: { medium: 'Memory' } }]);
    const v = prepareVolumes(p, dir, objs());
    expect(v.get('scratch')).toBe(path.join(dir, 'volumes', 'empty-dir', 'scratch'));
    expect(fs.statSync(v.get('scratch')!).isDirectory()).toBe(true);
    expect(mode(v.get('scratch')!)).toBe(0o777);
    expect(fs.statSync(v.get('mem')!).isDirectory()).toBe(true);
    fs.writeFileSync(path.join(v.get('scratch')!, 'work'), 'data');
    const again = prepareVolumes(p, dir, objs());
    expect(again).toEqual(v);
    expect(read(path.join(v.get('scratch')!, 'work'))).toBe('data');
  });

  it("writes a ConfigMap's data and binaryData as kubelet's atomic writer lays them out", () => {
    const dir = newPodDir();
    const bin = Buffer.from([0, 1, 2, 255]);
    const v = prepareVolumes(pod([{ name: 'cfg', configMap: { name: 'settings' } }]), dir, objs([cm('settings', { 'app.conf': 'a=1\n', color: 'blue' }, { 'logo.bin': b64(bin) })]));
    const vol = v.get('cfg')!;
    expect(vol).toBe(path.join(dir, 'volumes', 'configmap', 'cfg'));
    const version = fs.readlinkSync(path.join(vol, '..data'));
    expect(version).toMatch(/^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\./);
    expect(fs.readdirSync(vol).sort()).toEqual(['..data', version, 'app.conf', 'color', 'logo.bin'].sort());
    for (const k of ['app.conf', 'color', 'logo.bin']) {
      expect(fs.lstatSync(path.join(vol, k)).isSymbolicLink()).toBe(true);
      expect(fs.readlinkSync(path.join(vol, k))).toBe(path.join('..data', k));
      expect(mode(path.join(vol, k))).toBe(0o644);
    }
    expect(read(path.join(vol, 'app.conf'))).toBe('a=1\n');
    expect(read(path.join(vol, 'color'))).toBe('blue');
    expect(fs.readFileSync(path.join(vol, 'logo.bin')).equals(bin)).toBe(true);
  });

  it('projects items to their paths with their modes, honours defaultMode and optional', () => {
    const dir = newPodDir();
    const settings = cm('settings', { 'app.conf': 'a=1', color: 'blue', unused: 'x' });
    const v = prepareVolumes(
      pod([
        { name: 'cfg', configMap: { name: 'settings', defaultMode: 0o440, items: [{ key: 'app.conf', path: 'etc/app/app.conf', mode: 0o600 }, { key: 'color', path: 'color.txt' }] } },
        { name: 'opt', configMap: { name: 'settings', optional: true, items: [{ key: 'absent', path: 'x' }, { key: 'color', path: 'c' }] } },
        { name: 'gone', configMap: { name: 'not-there', optional: true } },
      ]),
      dir,
      objs([settings]),
    );
    const cfg = v.get('cfg')!;
    expect(read(path.join(cfg, 'etc/app/app.conf'))).toBe('a=1');
    expect(mode(path.join(cfg, 'etc/app/app.conf'))).toBe(0o600);
    expect(read(path.join(cfg, 'color.txt'))).toBe('blue');
    expect(mode(path.join(cfg, 'color.txt'))).toBe(0o440);
    expect(fs.existsSync(path.join(cfg, 'unused'))).toBe(false);
    expect(fs.readdirSync(v.get('opt')!).filter((e) => !e.startsWith('..'))).toEqual(['c']);
    expect(fs.readdirSync(v.get('gone')!).filter((e) => !e.startsWith('..'))).toEqual([]);
  });

  it('writes Secrets decoded, with defaultMode and items', () => {
    const dir = newPodDir();
    const v = prepareVolumes(
      pod([
        { name: 'tls', secret: { secretName: 'tls', defaultMode: 0o400 } },
        { name: 'pw', secret: { secretName: 'db', items: [{ key: 'password', path: 'db/pw' }] } },
      ]),
      dir,
      objs([], [secret('tls', { 'tls.crt': 'CERT', 'tls.key': 'KEY' }), secret('db', { password: 'hunter2', user: 'u' })]),
    );
    expect(read(path.join(v.get('tls')!, 'tls.key'))).toBe('KEY');
    expect(mode(path.join(v.get('tls')!, 'tls.key'))).toBe(0o400);
    expect(read(path.join(v.get('pw')!, 'db/pw'))).toBe('hunter2');
    expect(fs.existsSync(path.join(v.get('pw')!, 'user'))).toBe(false);
  });

  it('fails with a message naming the volume for missing required objects and keys', () => {
    const dir = newPodDir();
    const attempt = (vol: any, o = objs([cm('settings', { a: '1' })], [secret('db', { a: '1' })])) => () => prepareVolumes(pod([vol]), dir, o);
    expect(attempt({ name: 'c', configMap: { name: 'nope' } })).toThrow('volume "c": configmap "nope" not found');
    expect(attempt({ name: 's', secret: { secretName: 'nope' } })).toThrow('volume "s": secret "nope" not found');
    expect(attempt({ name: 'c', configMap: { name: 'settings', items: [{ key: 'b', path: 'b' }] } })).toThrow('configmap references non-existent config key: b');
    expect(attempt({ name: 's', secret: { secretName: 'db', items: [{ key: 'b', path: 'b' }] } })).toThrow('references non-existent secret key: b');
    expect(attempt({ name: 'c', configMap: { name: 'settings', items: [{ key: 'a', path: '../escape' }] } })).toThrow(/invalid path/);
    expect(attempt({ name: 'data', nfs: { server: 'nfs.local', path: '/exports' } })).toThrow(
      'volume "data": volume type nfs is not supported by Skiff\'s node agent',
    );
    // A claim is supported (test/agent.local-path.test.ts); one not bound yet waits.
    expect(attempt({ name: 'data', persistentVolumeClaim: { claimName: 'pvc' } })).toThrow('volume "data": PersistentVolumeClaim is not bound: "pvc"');
    expect(attempt({ name: 'tok', projected: { sources: [{ serviceAccountToken: { path: 'token' } }] } })).toThrow('volume "tok": no token for service account token source "token"');
    expect(fs.existsSync(path.join(tmp, '..', 'escape'))).toBe(false);
  });

  it('refreshes ConfigMap content atomically and changes nothing when the content is the same', () => {
    const dir = newPodDir();
    const p = pod([{ name: 'cfg', configMap: { name: 'settings' } }, { name: 'scratch', emptyDir: {} }]);
    const v = prepareVolumes(p, dir, objs([cm('settings', { color: 'blue', size: 'L' })]));
    const vol = v.get('cfg')!;
    const first = fs.readlinkSync(path.join(vol, '..data'));
    fs.writeFileSync(path.join(v.get('scratch')!, 'keep'), 'me');

    // Same content: the same version stays (no rewrite at all).
    const firstIno = fs.statSync(path.join(vol, first, 'color')).ino;
    prepareVolumes(p, dir, objs([cm('settings', { color: 'blue', size: 'L' })]));
    expect(fs.readlinkSync(path.join(vol, '..data'))).toBe(first);
    expect(fs.statSync(path.join(vol, first, 'color')).ino).toBe(firstIno);

    // New content: a new version, the removed key's link gone, the new key linked, the old version removed.
    prepareVolumes(p, dir, objs([cm('settings', { color: 'red', shape: 'round' })]));
    const second = fs.readlinkSync(path.join(vol, '..data'));
    expect(second).not.toBe(first);
    expect(read(path.join(vol, 'color'))).toBe('red');
    expect(read(path.join(vol, 'shape'))).toBe('round');
    expect(fs.existsSync(path.join(vol, 'size'))).toBe(false);
    expect(fs.readdirSync(vol).sort()).toEqual(['..data', second, 'color', 'shape'].sort());
    expect(read(path.join(v.get('scratch')!, 'keep'))).toBe('me');

    // A mode change alone is a change too.
    prepareVolumes(pod([{ name: 'cfg', configMap: { name: 'settings', defaultMode: 0o600 } }]), dir, objs([cm('settings', { color: 'red', shape: 'round' })]));
    expect(mode(path.join(vol, 'color'))).toBe(0o600);
  });

  it('writes downwardAPI files and projected volumes that combine sources', () => {
    const dir = newPodDir();
    const p = pod([
      {
        name: 'info',
        downwardAPI: {
          items: [
            { path: 'name', fieldRef: { fieldPath: 'metadata.name' } },
            { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
            { path: 'mem', resourceFieldRef: { containerName: 'app', resource: 'limits.memory', divisor: '1Mi' } },
          ],
        },
      },
      {
        name: 'all',
        projected: {
          defaultMode: 0o444,
          sources: [
            { configMap: { name: 'settings', items: [{ key: 'color', path: 'config/color' }] } },
            { secret: { name: 'db' } },
            { downwardAPI: { items: [{ path: 'ns', fieldRef: { fieldPath: 'metadata.namespace' } }] } },
          ],
        },
      },
    ]);
    const v = prepareVolumes(p, dir, objs([cm('settings', { color: 'blue' })], [secret('db', { password: 'pw' })]));
    expect(read(path.join(v.get('info')!, 'name'))).toBe('web-1');
    expect(read(path.join(v.get('info')!, 'labels'))).toBe('app="web"');
    expect(read(path.join(v.get('info')!, 'mem'))).toBe('64');
    const all = v.get('all')!;
    expect(read(path.join(all, 'config/color'))).toBe('blue');
    expect(read(path.join(all, 'password'))).toBe('pw');
    expect(read(path.join(all, 'ns'))).toBe('shop');
    expect(mode(path.join(all, 'ns'))).toBe(0o444);
  });

  it('uses hostPath volumes in place and checks their type', () => {
    const dir = newPodDir();
    const host = path.join(tmp, 'host');
    fs.mkdirSync(host);
    fs.writeFileSync(path.join(host, 'file'), 'x');
    const one = (hostPath: any) => prepareVolumes(pod([{ name: 'h', hostPath }]), dir, objs()).get('h');
    expect(one({ path: host })).toBe(host);
    expect(one({ path: host, type: 'Directory' })).toBe(host);
    expect(one({ path: path.join(host, 'file'), type: 'File' })).toBe(path.join(host, 'file'));
    expect(one({ path: path.join(host, 'new/deep'), type: 'DirectoryOrCreate' })).toBe(path.join(host, 'new/deep'));
    expect(fs.statSync(path.join(host, 'new/deep')).isDirectory()).toBe(true);
    expect(one({ path: path.join(host, 'made'), type: 'FileOrCreate' })).toBe(path.join(host, 'made'));
    expect(fs.statSync(path.join(host, 'made')).isFile()).toBe(true);
    expect(() => one({ path: path.join(host, 'file'), type: 'Directory' })).toThrow(`hostPath type check failed: ${path.join(host, 'file')} is not a directory`);
    expect(() => one({ path: host, type: 'File' })).toThrow('is not a file');
    expect(() => one({ path: path.join(host, 'missing'), type: 'Directory' })).toThrow('is not a directory');
    expect(() => one({ path: host, type: 'Socket' })).toThrow('is not a socket');
    expect(() => one({ path: '/dev/null', type: 'BlockDevice' })).toThrow('is not a block device');
    expect(one({ path: '/dev/null', type: 'CharDevice' })).toBe('/dev/null');
    expect(() => one({ path: 'relative' })).toThrow('must be absolute');
  });
});

describe('containerBinds', () => {
  it('binds volumes read-write or read-only, subPaths created as directories', () => {
    const dir = newPodDir();
    const v = prepareVolumes(pod([{ name: 'scratch', emptyDir: {} }, { name: 'cfg', configMap: { name: 's' } }]), dir, objs([cm('s', { k: 'v' })]));
    const binds = containerBinds(
      {
        name: 'app',
        volumeMounts: [
          { name: 'scratch', mountPath: '/work' },
          { name: 'cfg', mountPath: '/etc/cfg', readOnly: true },
          { name: 'scratch', mountPath: '/logs', subPath: 'logs/app' },
          { name: 'cfg', mountPath: '/etc/k', subPath: 'k', readOnly: true },
          { name: 'scratch', mountPath: '/per-pod', subPathExpr: '$(POD_NAME)/data' },
        ],
      },
      v,
      ['POD_NAME=web-1'],
    );
    const scratch = v.get('scratch')!;
    expect(binds).toEqual([
      `${scratch}:/work`,
      `${v.get('cfg')}:/etc/cfg:ro`,
      `${scratch}/logs/app:/logs`,
      `${v.get('cfg')}/k:/etc/k:ro`,
      `${scratch}/web-1/data:/per-pod`,
    ]);
    expect(fs.statSync(path.join(scratch, 'logs/app')).isDirectory()).toBe(true);
    expect(mode(path.join(scratch, 'logs/app'))).toBe(0o777);
    expect(fs.statSync(path.join(scratch, 'web-1/data')).isDirectory()).toBe(true);
  });

  it('refuses unknown volumes and escaping subPaths', () => {
    const v = new Map([['scratch', path.join(tmp, 'x')]]);
    expect(() => containerBinds({ name: 'app', volumeMounts: [{ name: 'nope', mountPath: '/x' }] }, v)).toThrow('cannot find volume "nope" to mount into container "app"');
    expect(() => containerBinds({ name: 'app', volumeMounts: [{ name: 'scratch', mountPath: '/x', subPath: '../etc' }] }, v)).toThrow(/must be a relative path/);
    expect(() => containerBinds({ name: 'app', volumeMounts: [{ name: 'scratch', mountPath: '/x', subPath: '/etc' }] }, v)).toThrow(/must be a relative path/);
    expect(() => containerBinds({ name: 'app', volumeMounts: [{ name: 'scratch', mountPath: '/x', subPathExpr: '$(A)/$(B)' }] }, v, ['A=1', 'B='])).toThrow('missing value for B');
    expect(() => containerBinds({ name: 'app', volumeMounts: [{ name: 'scratch', mountPath: '/x', subPathExpr: '$(POD)' }] }, v)).toThrow('missing value for POD');
    expect(containerBinds({ name: 'app' }, v)).toEqual([]);
  });
});

describe('removePodDir', () => {
  it('removes the pod directory with all volumes, leaving hostPaths alone', () => {
    const dir = newPodDir();
    const host = fs.mkdtempSync(path.join(tmp, 'keep-'));
    const v = prepareVolumes(pod([{ name: 'e', emptyDir: {} }, { name: 'c', configMap: { name: 's' } }, { name: 'h', hostPath: { path: host } }]), dir, objs([cm('s', { k: 'v' })]));
    fs.writeFileSync(path.join(v.get('e')!, 'f'), 'x');
    removePodDir(dir);
    expect(fs.existsSync(dir)).toBe(false);
    expect(fs.existsSync(host)).toBe(true);
    removePodDir(dir); // again: nothing there, no error
  });
});

describe('with Docker', () => {
  const LABEL = { 'io.skiff.test': 'agent.volumes.test.ts' };
  const made: string[] = [];
  afterAll(async () => {
    const docker = await requireDocker();
    for (const id of made) await docker?.getContainer(id).remove({ force: true });
  });

  it('a running container sees a refreshed ConfigMap through its bind mount', async () => {
    const docker = await requireDocker();
    if (!docker) return;
    const dir = newPodDir();
    const p = pod([{ name: 'cfg', configMap: { name: 'settings' } }]);
    const v = prepareVolumes(p, dir, objs([cm('settings', { color: 'blue' })]));
    const binds = containerBinds({ name: 'app', volumeMounts: [{ name: 'cfg', mountPath: '/etc/cfg', readOnly: true }] }, v);
    const c = await docker.createContainer({ Image: TEST_IMAGE, Cmd: ['sleep', '60'], Labels: LABEL, HostConfig: { Binds: binds } });
    made.push(c.id);
    await c.start();
    const cat = async (cmd: string[]) => {
      const exec = await c.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
      const stream = await exec.start({ hijack: true, stdin: false });
      const chunks: Buffer[] = [];
      const sink = { write: (b: Buffer) => (chunks.push(b), true) } as unknown as NodeJS.WritableStream;
      docker.modem.demuxStream(stream, sink, sink);
      await new Promise((ok) => stream.on('end', ok));
      return Buffer.concat(chunks).toString();
    };
    expect(await cat(['cat', '/etc/cfg/color'])).toBe('blue');
    prepareVolumes(p, dir, objs([cm('settings', { color: 'green', extra: 'new' })]));
    expect(await cat(['cat', '/etc/cfg/color'])).toBe('green');
    expect(await cat(['cat', '/etc/cfg/extra'])).toBe('new');
    expect(await cat(['sh', '-c', 'echo x > /etc/cfg/color 2>&1 || echo refused'])).toMatch(/Read-only file system|refused/);
  });
});
