// The apiserver as pods reach it on a local cluster: a TCP relay on the pod network's gateway address.
//
// `skiff up` serves the API on 127.0.0.1, which a container on a Docker bridge cannot reach: its
// 127.0.0.1 is its own, and the kernel will not DNAT a bridge packet to the host's loopback (that needs
// route_localnet, which opens every loopback service of the host to the pod network). The gateway
// address is the host's own address on the bridge, which every pod of the node can reach (the node DNS
// server listens there too), so the agent listens on gateway:port and splices each connection to the
// apiserver unchanged: TLS stays end to end between the pod and the apiserver, which presents its own
// certificate (carrying the kubernetes Service's names and cluster IP: lambdas/local/certs.ts), and the
// pod's bearer token reaches it untouched. The `kubernetes` Service's Endpoints name this address, so
// the service proxy's ordinary DNAT of the cluster IP (10.96.0.1:443) lands on the relay, and
// https://kubernetes.default.svc and KUBERNETES_SERVICE_HOST:PORT both work.
//
// It costs nothing per request beyond the bytes it copies (no parsing, no API read).

import net from 'node:net';

export interface ApiRelay {
  host: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Listens on host:port (port 0 picks one) and relays every connection to target. Rejects with the
 * listen error (EADDRINUSE when another agent on the same network already relays there).
 */
export async function startApiRelay(o: { host: string; port: number; target: { host: string; port: number }; log?: (m: string) => void }): Promise<ApiRelay> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(o.target.port, o.target.host);
    sockets.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', (e) => {
      o.log?.(`apiserver relay: ${e.message}`);
      end();
    });
    upstream.on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(o.port, o.host, () => ok());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: o.host,
    port,
    async close() {
      const closed = new Promise<void>((ok) => server.close(() => ok()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}
