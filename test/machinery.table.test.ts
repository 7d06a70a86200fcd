import { describe, expect, it } from 'vitest';
import { kinds } from '../lambdas/kinds/index.ts';
import type { KindStrategy } from '../lambdas/kinds/kind.ts';
import { humanDuration, toTable } from '../lambdas/machinery/table.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';

const strategy = (kind: string): KindStrategy => kinds.all().find((k) => k.info.kind === kind)!;
const NOW = new Date('2025-01-10T12:00:00Z');
const ago = (seconds: number) => new Date(NOW.getTime() - seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

function cells(kind: string, o: KubeObject): unknown[] {
  return toTable(strategy(kind), [o], { now: NOW }).rows[0]!.cells;
}

describe('humanDuration (duration.HumanDuration)', () => {
  const S = 1000;
  const M = 60 * S;
  const H = 60 * M;
  const D = 24 * H;
  it.each([
    [0, '0s'],
    [-1500, '0s'],
    [-2500, '<invalid>'],
    [5 * S, '5s'],
    [119 * S, '119s'],
    [2 * M, '2m'],
    [3 * M + 2 * S, '3m2s'],
    [9 * M + 59 * S, '9m59s'],
    [10 * M + 30 * S, '10m'],
    [179 * M, '179m'],
    [3 * H, '3h'],
    [3 * H + 4 * M, '3h4m'],
    [8 * H + 30 * M, '8h'],
    [47 * H, '47h'],
    [48 * H, '2d'],
    [2 * D + 3 * H, '2d3h'],
    [8 * D + 5 * H, '8d'],
    [12 * D, '12d'],
    [729 * D, '729d'],
    [(2 * 365 + 3) * D, '2y3d'],
    [3 * 365 * D, '3y'],
    [9 * 365 * D, '9y'],
  ])('%d ms is %s', (ms, text) => {
    expect(humanDuration(ms)).toBe(text);
  });
});

const basePod = (over: Partial<KubeObject> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web', namespace: 'default', creationTimestamp: ago(5), resourceVersion: '42', labels: { app: 'web' } },
  spec: { containers: [{ name: 'app', image: 'nginx' }] },
  status: { phase: 'Pending' },
  ...over,
});

describe('Pod table', () => {
  it('has kubectl columns, wide ones at priority 1', () => {
    const t = toTable(strategy('Pod'), [basePod()], { now: NOW });
    expect(t.kind).toBe('Table');
    expect(t.apiVersion).toBe('meta.k8s.io/v1');
    expect(t.columnDefinitions.map((c) => [c.name, c.type, c.priority])).toEqual([
      ['Name', 'string', 0],
      ['Ready', 'string', 0],
      ['Status', 'string', 0],
      ['Restarts', 'string', 0],
      ['Age', 'string', 0],
      ['IP', 'string', 1],
      ['Node', 'string', 1],
      ['Nominated Node', 'string', 1],
      ['Readiness Gates', 'string', 1],
    ]);
    expect(t.columnDefinitions[0]!.format).toBe('name');
    expect(t.columnDefinitions[0]!.description).toMatch(/^Name must be unique within a namespace/);
    expect(t.columnDefinitions[4]!.description).toMatch(/^CreationTimestamp is a timestamp/);
  });

  it('a pending pod', () => {
    expect(cells('Pod', basePod())).toEqual(['web', '0/1', 'Pending', '0', '5s', '<none>', '<none>', '<none>', '<none>']);
  });

  it('a running, ready pod shows IP and node', () => {
    const p = basePod({
      spec: { nodeName: 'n1', containers: [{ name: 'app', image: 'nginx' }, { name: 'side', image: 'x' }] },
      status: {
        phase: 'Running',
        podIPs: [{ ip: '10.244.0.5' }],
        containerStatuses: [
          { name: 'app', ready: true, restartCount: 0, state: { running: {} } },
          { name: 'side', ready: false, restartCount: 0, state: { running: {} } },
        ],
      },
    });
    expect(cells('Pod', p)).toEqual(['web', '1/2', 'Running', '0', '5s', '10.244.0.5', 'n1', '<none>', '<none>']);
  });

  it('CrashLoopBackOff with restarts and when the last one happened', () => {
    const p = basePod({
      status: {
        phase: 'Running',
        containerStatuses: [
          { name: 'app', ready: false, restartCount: 5, state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: { terminated: { exitCode: 1, finishedAt: ago(125) } } },
        ],
      },
    });
    expect(cells('Pod', p).slice(1, 4)).toEqual(['0/1', 'CrashLoopBackOff', '5 (2m5s ago)']);
  });

  it('a completed pod carries the Completed row condition', () => {
    const p = basePod({ status: { phase: 'Succeeded', containerStatuses: [{ name: 'app', ready: false, restartCount: 0, state: { terminated: { exitCode: 0, reason: 'Completed' } } }] } });
    const row = toTable(strategy('Pod'), [p], { now: NOW }).rows[0]!;
    expect(row.cells[2]).toBe('Completed');
    expect(row.conditions).toEqual([{ type: 'Completed', status: 'True', reason: 'Succeeded', message: 'The pod has completed successfully.' }]);
  });

  it('a container that exited without a reason shows its exit code or signal', () => {
    const exit = basePod({ status: { phase: 'Failed', containerStatuses: [{ name: 'app', state: { terminated: { exitCode: 3 } } }] } });
    expect(cells('Pod', exit)[2]).toBe('ExitCode:3');
    const sig = basePod({ status: { phase: 'Running', containerStatuses: [{ name: 'app', state: { terminated: { exitCode: 137, signal: 9 } } }] } });
    expect(cells('Pod', sig)[2]).toBe('Signal:9');
  });

  it('init containers: progress, failures and waiting reasons', () => {
    const spec = { initContainers: [{ name: 'i1', image: 'x' }, { name: 'i2', image: 'x' }], containers: [{ name: 'app', image: 'nginx' }] };
    const progress = basePod({ spec, status: { phase: 'Pending', initContainerStatuses: [{ name: 'i1', state: { terminated: { exitCode: 0 } } }, { name: 'i2', state: { running: {} } }] } });
    expect(cells('Pod', progress)[2]).toBe('Init:1/2');
    const failed = basePod({ spec, status: { phase: 'Pending', initContainerStatuses: [{ name: 'i1', restartCount: 2, state: { terminated: { exitCode: 1 } } }] } });
    expect(cells('Pod', failed).slice(2, 4)).toEqual(['Init:ExitCode:1', '2']);
    const waiting = basePod({ spec, status: { phase: 'Pending', initContainerStatuses: [{ name: 'i1', state: { waiting: { reason: 'ImagePullBackOff' } } }] } });
    expect(cells('Pod', waiting)[2]).toBe('Init:ImagePullBackOff');
  });

  it('restartable init containers (sidecars) count towards READY', () => {
    const p = basePod({
      spec: { initContainers: [{ name: 'proxy', image: 'x', restartPolicy: 'Always' }], containers: [{ name: 'app', image: 'nginx' }] },
      status: {
        phase: 'Running',
        conditions: [{ type: 'Initialized', status: 'True' }],
        initContainerStatuses: [{ name: 'proxy', ready: true, started: true, state: { running: {} } }],
        containerStatuses: [{ name: 'app', ready: true, state: { running: {} } }],
      },
    });
    expect(cells('Pod', p).slice(1, 3)).toEqual(['2/2', 'Running']);
  });

  it('a pod being deleted is Terminating; scheduling gates and readiness gates', () => {
    expect(cells('Pod', basePod({ metadata: { name: 'web', deletionTimestamp: ago(1), creationTimestamp: ago(60) } }))[2]).toBe('Terminating');
    expect(cells('Pod', basePod({ status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'SchedulingGated' }] } }))[2]).toBe('SchedulingGated');
    const gated = basePod({
      spec: { containers: [{ name: 'app', image: 'x' }], readinessGates: [{ conditionType: 'example.com/a' }, { conditionType: 'example.com/b' }] },
      status: { phase: 'Running', conditions: [{ type: 'example.com/a', status: 'True' }] },
    });
    expect(cells('Pod', gated)[8]).toBe('1/2');
  });

  it('a completed container next to a running one reads Running or NotReady', () => {
    const statuses = [
      { name: 'a', ready: false, state: { terminated: { exitCode: 0, reason: 'Completed' } } },
      { name: 'b', ready: true, state: { running: {} } },
    ];
    const spec = { containers: [{ name: 'a', image: 'x' }, { name: 'b', image: 'x' }] };
    expect(cells('Pod', basePod({ spec, status: { phase: 'Running', containerStatuses: statuses, conditions: [{ type: 'Ready', status: 'True' }] } }))[2]).toBe('Running');
    expect(cells('Pod', basePod({ spec, status: { phase: 'Running', containerStatuses: statuses } }))[2]).toBe('NotReady');
  });
});

describe('row objects and table metadata', () => {
  it('PartialObjectMetadata by default (enough for --show-labels), the object, or nothing', () => {
    const p = basePod();
    expect(toTable(strategy('Pod'), [p], { now: NOW }).rows[0]!.object).toEqual({ kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: p.metadata });
    expect(toTable(strategy('Pod'), [p], { now: NOW, includeObject: 'Object' }).rows[0]!.object).toBe(p);
    expect(toTable(strategy('Pod'), [p], { now: NOW, includeObject: 'None' }).rows[0]!.object).toBeNull();
  });

  it('lists carry their list metadata; a single object its resourceVersion', () => {
    expect(toTable(strategy('Pod'), [basePod(), basePod()], { listMeta: { resourceVersion: '99', continue: 'c' } }).metadata).toEqual({ resourceVersion: '99', continue: 'c' });
    expect(toTable(strategy('Pod'), [basePod()]).metadata).toEqual({ resourceVersion: '42' });
    expect(toTable(strategy('Pod'), []).rows).toEqual([]);
  });
});

describe('other kinds', () => {
  it('Service: type, cluster IP, external IP, ports and selector', () => {
    const svc: KubeObject = {
      metadata: { name: 'web', creationTimestamp: ago(3600) },
      spec: { type: 'NodePort', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], ports: [{ port: 80, nodePort: 30080, protocol: 'TCP' }, { port: 53, protocol: 'UDP' }], selector: { tier: 'fe', app: 'web' } },
    };
    expect(cells('Service', svc)).toEqual(['web', 'NodePort', '10.96.0.10', '<none>', '80:30080/TCP,53/UDP', '60m', 'app=web,tier=fe']);
    const lb: KubeObject = { metadata: { name: 'lb' }, spec: { type: 'LoadBalancer', clusterIPs: ['10.96.0.11'], ports: [{ port: 443, protocol: 'TCP' }] }, status: {} };
    expect(cells('Service', lb).slice(2, 5)).toEqual(['10.96.0.11', '<pending>', '443/TCP']);
    const headless: KubeObject = { metadata: { name: 'h' }, spec: { type: 'ClusterIP', clusterIP: 'None', clusterIPs: ['None'] } };
    expect(cells('Service', headless).slice(2, 5)).toEqual(['None', '<none>', '<none>']);
    const ext: KubeObject = { metadata: { name: 'e' }, spec: { type: 'ExternalName', externalName: 'db.example.com' } };
    expect(cells('Service', ext).slice(2, 4)).toEqual(['<none>', 'db.example.com']);
  });

  it('EndpointSlice: address type, ports and addresses (three, then a count), <unset> for none', () => {
    const slice: KubeObject = {
      metadata: { name: 'web-x7k2p', creationTimestamp: ago(90) },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.0.0.1'] }, { addresses: ['10.0.0.2', '10.0.0.3'] }, { addresses: ['10.0.0.4'] }, { addresses: ['10.0.0.5'] }],
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }],
    };
    expect(cells('EndpointSlice', slice)).toEqual(['web-x7k2p', 'IPv4', '8080,53', '10.0.0.1,10.0.0.2,10.0.0.3 + 2 more...', '90s']);
    const ports = [1, 2, 3, 4].map((port) => ({ port })).concat([{ name: 'all' } as any]);
    expect(cells('EndpointSlice', { ...slice, ports })[2]).toBe('1,2,3 + 2 more...');
    expect(cells('EndpointSlice', { ...slice, ports: [{ name: 'all' }, {}] })[2]).toBe('all,*');
    expect(cells('EndpointSlice', { metadata: { name: 'empty' }, addressType: 'IPv4', endpoints: [] }).slice(2, 4)).toEqual(['<unset>', '<unset>']);
    const table = toTable(strategy('EndpointSlice'), [slice]);
    expect(table.columnDefinitions.map((c) => c.name)).toEqual(['Name', 'AddressType', 'Ports', 'Endpoints', 'Age']);
    expect(table.columnDefinitions[1]!.description).toMatch(/^addressType specifies the type of address/);
  });

  it('Endpoints: at most three addresses, then a count', () => {
    const ep: KubeObject = {
      metadata: { name: 'web' },
      subsets: [
        { addresses: [{ ip: '10.0.0.1' }, { ip: '10.0.0.2' }], ports: [{ port: 80 }, { port: 8080 }] },
        { addresses: [{ ip: 'fd00::1' }], ports: [{ port: 80 }] },
      ],
    };
    expect(cells('Endpoints', ep)[1]).toBe('10.0.0.1:80,10.0.0.2:80,10.0.0.1:8080 + 2 more...');
    expect(cells('Endpoints', { metadata: { name: 'x' }, subsets: [{ addresses: [{ ip: 'fd00::1' }], ports: [{ port: 80 }] }] })[1]).toBe('[fd00::1]:80');
    expect(cells('Endpoints', { metadata: { name: 'x' } })[1]).toBe('<none>');
    expect(cells('Endpoints', { metadata: { name: 'x' }, subsets: [{ addresses: [{ ip: '10.0.0.9' }] }] })[1]).toBe('10.0.0.9');
  });

  it('ReplicationController: desired, current, ready and the wide columns', () => {
    const rc: KubeObject = {
      metadata: { name: 'rc', creationTimestamp: ago(30) },
      spec: { replicas: 3, selector: { app: 'web' }, template: { spec: { containers: [{ name: 'a', image: 'nginx:1' }, { name: 'b', image: 'busybox' }] } } },
      status: { replicas: 2, readyReplicas: 1 },
    };
    expect(cells('ReplicationController', rc)).toEqual(['rc', 3, 2, 1, '30s', 'a,b', 'nginx:1,busybox', 'app=web']);
    expect(toTable(strategy('ReplicationController'), []).columnDefinitions.map((c) => c.name)).toEqual(['Name', 'Desired', 'Current', 'Ready', 'Age', 'Containers', 'Images', 'Selector']);
  });

  it('Node: status, roles, version and system info', () => {
    const node: KubeObject = {
      metadata: { name: 'n1', creationTimestamp: ago(3 * 86400), labels: { 'node-role.kubernetes.io/control-plane': '', 'kubernetes.io/role': 'worker' } },
      spec: { unschedulable: true },
      status: {
        conditions: [{ type: 'MemoryPressure', status: 'False' }, { type: 'Ready', status: 'False' }],
        addresses: [{ type: 'Hostname', address: 'n1' }, { type: 'InternalIP', address: '192.168.1.10' }],
        nodeInfo: { kubeletVersion: 'v1.32.0', osImage: 'Debian GNU/Linux 12', kernelVersion: '6.1.0', containerRuntimeVersion: 'skiff://0.1.0' },
      },
    };
    expect(cells('Node', node)).toEqual(['n1', 'NotReady,SchedulingDisabled', 'control-plane,worker', '3d', 'v1.32.0', '192.168.1.10', '<none>', 'Debian GNU/Linux 12', '6.1.0', 'skiff://0.1.0']);
    expect(cells('Node', { metadata: { name: 'n2' }, status: {} }).slice(1, 3)).toEqual(['Unknown', '<none>']);
    expect(cells('Node', { metadata: { name: 'n3' }, status: { conditions: [{ type: 'Ready', status: 'True' }] } })[1]).toBe('Ready');
  });

  it('Event: last seen, type, reason, object and message', () => {
    const ev: KubeObject = {
      metadata: { name: 'web.17a', namespace: 'default' },
      involvedObject: { kind: 'Pod', name: 'web', fieldPath: 'spec.containers{app}' },
      reason: 'Pulled',
      type: 'Normal',
      message: '  Successfully pulled image  \n',
      source: { component: 'kubelet', host: 'n1' },
      firstTimestamp: ago(600),
      lastTimestamp: ago(70),
    };
    expect(cells('Event', ev)).toEqual(['70s', 'Normal', 'Pulled', 'pod/web', 'spec.containers{app}', 'kubelet, n1', 'Successfully pulled image', '10m', 1, 'web.17a']);
    const fresh: KubeObject = { metadata: { name: 'e' }, involvedObject: { kind: 'Node' }, eventTime: ago(4), reportingComponent: 'default-scheduler', count: 3 };
    expect(cells('Event', fresh)).toEqual(['4s', '', '', 'node', '', 'default-scheduler', '', '4s', 3, 'e']);
    expect(toTable(strategy('Event'), []).columnDefinitions.filter((c) => c.priority === 0).map((c) => c.name)).toEqual(['Last Seen', 'Type', 'Reason', 'Object', 'Message']);
  });

  it('Namespace, ConfigMap, Secret, ServiceAccount and Lease', () => {
    const t = ago(7200);
    expect(cells('Namespace', { metadata: { name: 'team', creationTimestamp: t }, status: { phase: 'Active' } })).toEqual(['team', 'Active', '120m']);
    expect(cells('ConfigMap', { metadata: { name: 'c', creationTimestamp: t }, data: { a: '1', b: '2' }, binaryData: { c: 'AA==' } })).toEqual(['c', 3, '120m']);
    expect(cells('Secret', { metadata: { name: 's', creationTimestamp: t }, type: 'Opaque', data: { a: 'MQ==' } })).toEqual(['s', 'Opaque', 1, '120m']);
    expect(cells('ServiceAccount', { metadata: { name: 'default', creationTimestamp: t } })).toEqual(['default', 0, '120m']);
    expect(cells('Lease', { metadata: { name: 'kube-scheduler', creationTimestamp: t }, spec: { holderIdentity: 'sched-1' } })).toEqual(['kube-scheduler', 'sched-1', '120m']);
    expect(cells('Lease', { metadata: { name: 'l' }, spec: {} })).toEqual(['l', '', '<unknown>']);
  });

  it('a kind without a printer gets Name and Created At', () => {
    const widget: KindStrategy = { info: { ...strategy('ConfigMap').info, kind: 'Widget', resource: 'widgets' } };
    const t = toTable(widget, [{ metadata: { name: 'w', creationTimestamp: '2025-01-01T00:00:00Z' } }]);
    expect(t.columnDefinitions.map((c) => [c.name, c.type])).toEqual([
      ['Name', 'string'],
      ['Created At', 'date'],
    ]);
    expect(t.rows[0]!.cells).toEqual(['w', '2025-01-01T00:00:00Z']);
  });
});
