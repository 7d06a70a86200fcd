// kubectl port-forward's far end, as kubelet's pkg/kubelet/cri/streaming/portforward/httpstream.go serves
// it (protocol portforward.k8s.io). Over one SPDY connection the client opens, for each local
// connection, a pair of streams: `streamType: error`, then `streamType: data`, both with `port` and
// `requestID`. When a pair is complete the agent dials the pod at port and copies bytes both ways on the
// data stream; a failure is written as text on the error stream, which is closed when forwarding ends.
//
// Kubelet dials localhost:port inside the pod's network namespace; the agent dials the pod's IP (the
// pause container's address on the pod network) from the host, as its probes do. A server in the pod
// listening on 127.0.0.1 only is therefore not reachable this way.

import net from 'node:net';
import type Docker from 'dockerode';
import { ApiError } from '../lambdas/machinery/status.ts';
import { LABELS, PAUSE } from './runtime.ts';
import { replyStream, streamHeader, type SpdyConnection, type SpdyStream } from './spdy.ts';

export const PORT_FORWARD_PROTOCOL = 'portforward.k8s.io';

/** Kubelet's default --streaming-connection-idle-timeout is for connections; this is its stream-pair wait. */
const PAIR_TIMEOUT_MS = 30_000;

export interface PortForwardTarget {
  namespace: string;
  pod: string;
  podIP: string;
}

/** The pod's IP on this node: the running pause container of the newest pod uid, or a 404/400 Status. */
export async function findPodIP(docker: Docker, nodeName: string, namespace: string, pod: string): Promise<string> {
  const all = await docker.listContainers({
    all: true,
    filters: { label: [`${LABELS.node}=${nodeName}`, `${LABELS.namespace}=${namespace}`, `${LABELS.pod}=${pod}`, `${LABELS.container}=${PAUSE}`] },
  });
  const pause = all.sort((a, b) => b.Created - a.Created)[0];
  if (!pause) throw new ApiError('NotFound', `pod ${namespace}/${pod} is not running on this node`);
  if (pause.State !== 'running') throw new ApiError('BadRequest', `pod ${namespace}/${pod} is not running`);
  const info = await docker.getContainer(pause.Id).inspect();
  const ip = Object.values(info.NetworkSettings?.Networks ?? {})
    .map((n) => n.IPAddress)
    .find((a) => a);
  if (!ip) throw new ApiError('BadRequest', `pod ${namespace}/${pod} has no IP address to forward to`);
  return ip;
}

interface Pair {
  error?: SpdyStream;
  data?: SpdyStream;
  timer: NodeJS.Timeout;
}

/** Serves port-forward stream pairs on an accepted SPDY connection until it closes. */
export function servePortForward(conn: SpdyConnection, target: PortForwardTarget): void {
  const pairs = new Map<string, Pair>();
  const sockets = new Set<net.Socket>();
  conn.on('stream', (s: SpdyStream) => {
    const type = streamHeader(s, 'streamType');
    const portText = streamHeader(s, 'port') ?? '';
    // kubelet's httpStreamReceived: such a stream is refused (reset), the connection stays.
    if ((type !== 'error' && type !== 'data') || !/^\d+$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      s.abort();
      return;
    }
    replyStream(s);
    // Clients older than requestID pair streams by id: error n, data n+2 (kubelet does the same).
    const id = streamHeader(s, 'requestID') ?? String(type === 'error' ? s.id : s.id - 2);
    let p = pairs.get(id);
    if (!p) {
      p = {
        timer: setTimeout(() => {
          pairs.delete(id);
          const err = p!.error;
          if (err) err.end(`timed out waiting for the ${p!.data ? 'error' : 'data'} stream of request ${id}`);
          p!.data?.end();
        }, PAIR_TIMEOUT_MS),
      };
      pairs.set(id, p);
    }
    if (p[type]) {
      // A second stream of one type for one request: kubelet refuses it too.
      s.end();
      return;
    }
    p[type] = s;
    if (p.error && p.data) {
      clearTimeout(p.timer);
      pairs.delete(id);
      forward(p.error, p.data, Number(portText), target, sockets);
    }
  });
  conn.on('close', () => {
    for (const p of pairs.values()) clearTimeout(p.timer);
    pairs.clear();
    for (const s of sockets) s.destroy();
  });
}

function forward(errorStream: SpdyStream, data: SpdyStream, port: number, t: PortForwardTarget, sockets: Set<net.Socket>): void {
  // The client only reads the error stream (it closed its side at once).
  errorStream.resume();
  const sock = net.connect({ host: t.podIP, port, noDelay: true });
  sockets.add(sock);
  let connected = false;
  let finished = false;
  const finish = (message?: string) => {
    if (finished) return;
    finished = true;
    sockets.delete(sock);
    sock.destroy();
    if (!data.writableEnded) data.end();
    if (message) errorStream.end(message);
    else errorStream.end();
  };
  sock.on('connect', () => {
    connected = true;
    // Half-closes travel both ways: the client's FIN ends our writes to the pod and vice versa.
    data.pipe(sock);
    sock.pipe(data);
  });
  sock.on('error', (e) => finish(connected ? undefined : `error forwarding port ${port} to pod ${t.namespace}/${t.pod}: dial tcp ${t.podIP}:${port}: ${e.message}`));
  sock.on('close', () => finish());
  // The client resets the data stream once it has read the pod's side to the end, or when it goes away.
  data.on('close', () => finish());
  data.on('error', () => finish());
}
