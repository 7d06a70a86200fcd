// The container environment the node agent gives Docker: service variables, envFrom, env with $(VAR)
// expansion and every valueFrom source, with kubelet's precedence and error texts.

import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { containerEnv, expand, expandArgs, referencedObjects, serviceEnv } from '../node-agent/env.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');

function pod(spec: Record<string, any>, meta: Record<string, any> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web-1', namespace: 'shop', uid: 'u-123', labels: { app: 'web', tier: 'front' }, annotations: { note: 'hi "there"' }, ...meta },
    spec: { nodeName: 'node-a', serviceAccountName: 'robot', ...spec },
    status: { hostIP: '10.0.0.5', podIP: '172.20.0.7', podIPs: [{ ip: '172.20.0.7' }, { ip: 'fd00::7' }] },
  };
}

const cm = (name: string, data: Record<string, string>, extra: Record<string, any> = {}): KubeObject => ({
  apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'shop' }, data, ...extra,
});
const secret = (name: string, data: Record<string, string>): KubeObject => ({
  apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'shop' },
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
});
const svc = (name: string, ns: string, clusterIP: string | undefined, ports: any[]): KubeObject => ({
  apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec: { clusterIP, ports },
});

const none = { configMaps: new Map(), secrets: new Map(), services: [] as KubeObject[] };
const asMap = (env: string[]) => new Map(env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));

describe('referencedObjects', () => {
  it('names every ConfigMap and Secret from env, envFrom, volumes and projected sources, once', () => {
    const p = pod({
      initContainers: [{ name: 'init', env: [{ name: 'A', valueFrom: { configMapKeyRef: { name: 'init-cm', key: 'k' } } }] }],
      containers: [
        {
          name: 'app',
          env: [
            { name: 'B', valueFrom: { secretKeyRef: { name: 'db', key: 'pw' } } },
            { name: 'C', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            { name: 'D', value: 'plain' },
          ],
          envFrom: [{ configMapRef: { name: 'settings' } }, { secretRef: { name: 'db' } }],
        },
      ],
      volumes: [
        { name: 'v1', configMap: { name: 'files' } },
        { name: 'v2', secret: { secretName: 'tls' } },
        { name: 'v3', emptyDir: {} },
        { name: 'v4', projected: { sources: [{ configMap: { name: 'proj-cm' } }, { secret: { name: 'proj-s' } }, { downwardAPI: { items: [] } }] } },
      ],
    });
    const r = referencedObjects(p);
    expect([...r.configMaps].sort()).toEqual(['files', 'init-cm', 'proj-cm', 'settings']);
    expect([...r.secrets].sort()).toEqual(['db', 'proj-s', 'tls']);
  });

  it('is empty for a pod that uses none', () => {
    const r = referencedObjects(pod({ containers: [{ name: 'a', image: 'x' }] }));
    expect(r.configMaps.size + r.secrets.size).toBe(0);
  });
});

describe('serviceEnv', () => {
  it('makes the variables of kubelet envvars.FromServices, in its order', () => {
    const env = serviceEnv(
      [
        svc('my-db', 'shop', '10.96.0.10', [
          { port: 5432 },
          { name: 'metrics-http', port: 9187, protocol: 'TCP' },
          { name: 'dns', port: 53, protocol: 'UDP' },
        ]),
      ],
      'shop',
    );
    expect(env).toEqual([
      { name: 'MY_DB_SERVICE_HOST', value: '10.96.0.10' },
      { name: 'MY_DB_SERVICE_PORT', value: '5432' },
      { name: 'MY_DB_SERVICE_PORT_METRICS_HTTP', value: '9187' },
      { name: 'MY_DB_SERVICE_PORT_DNS', value: '53' },
      { name: 'MY_DB_PORT', value: 'tcp://10.96.0.10:5432' },
      { name: 'MY_DB_PORT_5432_TCP', value: 'tcp://10.96.0.10:5432' },
      { name: 'MY_DB_PORT_5432_TCP_PROTO', value: 'tcp' },
      { name: 'MY_DB_PORT_5432_TCP_PORT', value: '5432' },
      { name: 'MY_DB_PORT_5432_TCP_ADDR', value: '10.96.0.10' },
      { name: 'MY_DB_PORT_9187_TCP', value: 'tcp://10.96.0.10:9187' },
      { name: 'MY_DB_PORT_9187_TCP_PROTO', value: 'tcp' },
      { name: 'MY_DB_PORT_9187_TCP_PORT', value: '9187' },
      { name: 'MY_DB_PORT_9187_TCP_ADDR', value: '10.96.0.10' },
      { name: 'MY_DB_PORT_53_UDP', value: 'udp://10.96.0.10:53' },
      { name: 'MY_DB_PORT_53_UDP_PROTO', value: 'udp' },
      { name: 'MY_DB_PORT_53_UDP_PORT', value: '53' },
      { name: 'MY_DB_PORT_53_UDP_ADDR', value: '10.96.0.10' },
    ]);
  });

  it('skips headless services, services without a cluster IP and other namespaces; brackets IPv6', () => {
    const env = serviceEnv(
      [
        svc('headless', 'shop', 'None', [{ port: 80 }]),
        svc('pending', 'shop', '', [{ port: 80 }]),
        svc('elsewhere', 'other', '10.96.0.11', [{ port: 80 }]),
        svc('v6', 'shop', 'fd00::1', [{ port: 80 }]),
      ],
      'shop',
    );
    expect(env.map((e) => e.name)).toEqual([
      'V6_SERVICE_HOST', 'V6_SERVICE_PORT', 'V6_PORT', 'V6_PORT_80_TCP', 'V6_PORT_80_TCP_PROTO', 'V6_PORT_80_TCP_PORT', 'V6_PORT_80_TCP_ADDR',
    ]);
    expect(env.find((e) => e.name === 'V6_PORT')!.value).toBe('tcp://[fd00::1]:80');
  });
});

describe('expand ($(VAR) as kubelet)', () => {
  // The cases of kubernetes/third_party/forked/golang/expansion/expand_test.go.
  const vars: Record<string, string> = { VAR_A: 'A', VAR_B: 'B', VAR_C: 'C', VAR_REF: '$(VAR_A)', VAR_EMPTY: '' };
  const cases: [string, string][] = [
    ['$(VAR_A)', 'A'],
    ['$(VAR_A)-$(VAR_A)', 'A-A'],
    ['___$(VAR_B)___', '___B___'],
    ['$(VAR_A)_$(VAR_B)_$(VAR_C)', 'A_B_C'],
    ['$$(VAR_B)_$(VAR_A)', '$(VAR_B)_A'],
    ['$$(VAR_A)_$$(VAR_B)', '$(VAR_A)_$(VAR_B)'],
    ['f000-$$VAR_A', 'f000-$VAR_A'],
    ['foo\\$(VAR_C)bar', 'foo\\Cbar'],
    ['$(VAR_A$(VAR_B))', '$(VAR_A$(VAR_B))'],
    ['$(VAR_A$(VAR_B)', '$(VAR_A$(VAR_B)'],
    ['$(VAR_REF)', '$(VAR_A)'],
    ['foo$(VAR_EMPTY)bar', 'foobar'],
    ['foo$(VAR_Awhoops!', 'foo$(VAR_Awhoops!'],
    ['$?_boo_$!', '$?_boo_$!'],
    ['$VAR_A', '$VAR_A'],
    ['$(VAR_DNE)', '$(VAR_DNE)'],
    ['$$$$$$(BIG_MONEY)', '$$$(BIG_MONEY)'],
    ['$$$$$$(VAR_A)', '$$$(VAR_A)'],
    ['$$$$$$$(GOOD_ODDS)', '$$$$(GOOD_ODDS)'],
    ['$$$$$$$(VAR_A)', '$$$A'],
    ['${VAR_A}', '${VAR_A}'],
    ['$(VAR_B)_______$(A', 'B_______$(A'],
    ['$(VAR_C)_______$(', 'C_______$('],
    ['$(VAR_A)foobarzab$', 'Afoobarzab$'],
    ['--$($($($($--', '--$($($($($--'],
    ['$(foo$$var)', '$(foo$$var)'],
    ['\n', '\n'],
  ];
  for (const [input, want] of cases) {
    it(JSON.stringify(input), () => expect(expand(input, (n) => vars[n])).toBe(want));
  }

  it('expandArgs expands command and args against the final env', () => {
    expect(expandArgs(['echo', '$(GREETING), $(WHO)!', '$$(GREETING)', '$(MISSING)'], ['GREETING=hello', 'WHO=a=b'])).toEqual([
      'echo', 'hello, a=b!', '$(GREETING)', '$(MISSING)',
    ]);
  });
});

describe('containerEnv', () => {
  it('resolves env values, $(VAR) references, fieldRefs, ConfigMap and Secret keys', () => {
    const p = pod({});
    const c = {
      name: 'app',
      env: [
        { name: 'BASE', value: 'x' },
        { name: 'DERIVED', value: '$(BASE)-$(LATER)-$(DB_SERVICE_HOST)-$$(BASE)' },
        { name: 'LATER', value: 'y' },
        { name: 'EMPTY', value: '' },
        { name: 'NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        { name: 'NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
        { name: 'UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
        { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
        { name: 'NOTE', valueFrom: { fieldRef: { fieldPath: "metadata.annotations['note']" } } },
        { name: 'LABELS', valueFrom: { fieldRef: { fieldPath: 'metadata.labels' } } },
        { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
        { name: 'SA', valueFrom: { fieldRef: { fieldPath: 'spec.serviceAccountName' } } },
        { name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
        { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
        { name: 'POD_IPS', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'status.podIPs' } } },
        { name: 'COLOR', valueFrom: { configMapKeyRef: { name: 'settings', key: 'color' } } },
        { name: 'PW', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } },
        { name: 'OPT1', valueFrom: { configMapKeyRef: { name: 'absent', key: 'k', optional: true } } },
        { name: 'OPT2', valueFrom: { secretKeyRef: { name: 'db', key: 'absent', optional: true } } },
      ],
    };
    const r = containerEnv(p, c, {
      configMaps: new Map([['settings', cm('settings', { color: 'blue' })]]),
      secrets: new Map([['db', secret('db', { password: 's3cr=t\nline2' })]]),
      services: [svc('db', 'shop', '10.96.0.9', [{ port: 5432 }])],
    });
    expect(r.error).toBeUndefined();
    const m = asMap(r.env);
    expect(m.get('DERIVED')).toBe('x-$(LATER)-10.96.0.9-$(BASE)'); // only earlier vars and services are visible
    expect(m.get('EMPTY')).toBe('');
    expect(m.get('NAME')).toBe('web-1');
    expect(m.get('NS')).toBe('shop');
    expect(m.get('UID')).toBe('u-123');
    expect(m.get('APP')).toBe('web');
    expect(m.get('NOTE')).toBe('hi "there"');
    expect(m.get('LABELS')).toBe('app="web"\ntier="front"');
    expect(m.get('NODE')).toBe('node-a');
    expect(m.get('SA')).toBe('robot');
    expect(m.get('HOST_IP')).toBe('10.0.0.5');
    expect(m.get('POD_IP')).toBe('172.20.0.7');
    expect(m.get('POD_IPS')).toBe('172.20.0.7,fd00::7');
    expect(m.get('COLOR')).toBe('blue');
    expect(m.get('PW')).toBe('s3cr=t\nline2');
    expect(m.has('OPT1')).toBe(false); // optional and missing: not set at all
    expect(m.has('OPT2')).toBe(false);
    expect(r.env).toContain('DB_SERVICE_PORT=5432');
  });

  it('orders service variables, then envFrom, then env; later sources override earlier ones', () => {
    const p = pod({});
    const c = {
      name: 'app',
      envFrom: [
        { configMapRef: { name: 'settings' } },
        { secretRef: { name: 'db' }, prefix: 'DB_' },
        { configMapRef: { name: 'gone', optional: true } },
      ],
      env: [{ name: 'color', value: 'from-env' }, { name: 'WEB_SERVICE_HOST', value: 'mine' }],
    };
    const r = containerEnv(p, c, {
      configMaps: new Map([['settings', cm('settings', { color: 'blue', size: 'L', 'bad key': 'x', '1st': 'y' })]]),
      secrets: new Map([['db', secret('db', { user: 'admin', 'pass word': 'x' })]]),
      services: [svc('web', 'shop', '10.96.0.3', [{ port: 80 }])],
    });
    expect(r.error).toBeUndefined();
    expect(r.env).toEqual([
      'WEB_SERVICE_PORT=80',
      'WEB_PORT=tcp://10.96.0.3:80',
      'WEB_PORT_80_TCP=tcp://10.96.0.3:80',
      'WEB_PORT_80_TCP_PROTO=tcp',
      'WEB_PORT_80_TCP_PORT=80',
      'WEB_PORT_80_TCP_ADDR=10.96.0.3',
      'size=L',
      'DB_user=admin',
      'color=from-env',
      'WEB_SERVICE_HOST=mine',
    ]);
    expect(r.warnings).toEqual([
      'Keys [1st, bad key] from the EnvFrom configMap shop/settings were skipped since they are considered invalid environment variable names.',
      'Keys [DB_pass word] from the EnvFrom secret shop/db were skipped since they are considered invalid environment variable names.',
    ]);
  });

  it('leaves out the namespace services when enableServiceLinks is false, but keeps default/kubernetes', () => {
    const services = [svc('web', 'shop', '10.96.0.3', [{ port: 80 }]), svc('kubernetes', 'default', '10.96.0.1', [{ name: 'https', port: 443 }])];
    const on = asMap(containerEnv(pod({}), { name: 'a' }, { ...none, services }).env);
    expect(on.get('WEB_SERVICE_HOST')).toBe('10.96.0.3');
    expect(on.get('KUBERNETES_SERVICE_HOST')).toBe('10.96.0.1');
    const off = asMap(containerEnv(pod({ enableServiceLinks: false }), { name: 'a' }, { ...none, services }).env);
    expect(off.has('WEB_SERVICE_HOST')).toBe(false);
    expect(off.get('KUBERNETES_SERVICE_PORT_HTTPS')).toBe('443');
  });

  it('resolves resourceFieldRef with divisors, rounding up; limits default to node allocatable', () => {
    const c = {
      name: 'app',
      resources: { limits: { cpu: '1500m', memory: '1Gi' }, requests: { cpu: '250m' } },
      env: [
        { name: 'CPU_LIMIT', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } },
        { name: 'CPU_LIMIT_M', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1m' } } },
        { name: 'CPU_REQ', valueFrom: { resourceFieldRef: { resource: 'requests.cpu', divisor: '1m' } } },
        { name: 'MEM_LIMIT_MI', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } } },
        { name: 'MEM_LIMIT', valueFrom: { resourceFieldRef: { resource: 'limits.memory' } } },
        { name: 'MEM_REQ', valueFrom: { resourceFieldRef: { resource: 'requests.memory', divisor: '1Mi' } } },
        { name: 'SIDE_MEM', valueFrom: { resourceFieldRef: { containerName: 'side', resource: 'limits.memory', divisor: '1M' } } },
      ],
    };
    const p = pod({ containers: [c, { name: 'side' }] });
    const r = containerEnv(p, c, { ...none, allocatable: { cpu: '4', memory: '8000000000' } });
    expect(r.error).toBeUndefined();
    const m = asMap(r.env);
    expect(m.get('CPU_LIMIT')).toBe('2'); // 1.5 cores rounded up
    expect(m.get('CPU_LIMIT_M')).toBe('1500');
    expect(m.get('CPU_REQ')).toBe('250');
    expect(m.get('MEM_LIMIT_MI')).toBe('1024');
    expect(m.get('MEM_LIMIT')).toBe(String(1024 ** 3));
    expect(m.get('MEM_REQ')).toBe('1024'); // unset request = the limit
    expect(m.get('SIDE_MEM')).toBe('8000'); // no limit: the node's allocatable
  });

  it("reports kubelet's errors for missing required ConfigMaps, Secrets and keys", () => {
    const objs = {
      configMaps: new Map([['settings', cm('settings', { color: 'blue' })]]),
      secrets: new Map([['db', secret('db', { user: 'u' })]]),
      services: [],
    };
    const err = (c: Record<string, any>) => containerEnv(pod({}), { name: 'a', ...c }, objs).error;
    expect(err({ env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'nope', key: 'k' } } }] })).toBe('configmap "nope" not found');
    expect(err({ env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'settings', key: 'k' } } }] })).toBe("couldn't find key k in ConfigMap shop/settings");
    expect(err({ env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'nope', key: 'k' } } }] })).toBe('secret "nope" not found');
    expect(err({ env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'db', key: 'pw' } } }] })).toBe("couldn't find key pw in Secret shop/db");
    expect(err({ envFrom: [{ configMapRef: { name: 'nope' } }] })).toBe('configmap "nope" not found');
    expect(err({ envFrom: [{ secretRef: { name: 'nope' } }] })).toBe('secret "nope" not found');
    expect(err({ env: [{ name: 'X', valueFrom: { fieldRef: { fieldPath: 'spec.restartPolicy' } } }] })).toBe('unsupported fieldPath: spec.restartPolicy');
    expect(err({ env: [{ name: 'X', valueFrom: { resourceFieldRef: { resource: 'limits.gpu' } } }] })).toBe('unsupported container resource : limits.gpu');
    // the optional forms of the same references are fine
    expect(err({ env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'settings', key: 'k', optional: true } } }], envFrom: [{ secretRef: { name: 'nope', optional: true } }] })).toBeUndefined();
  });
});
