// The sandbox's way to its API server (`local up --apiserver`): a TCP relay that listens in
// the top namespace (172.30.0.1:6443, on the bridge every node reaches) and connects each
// connection to the API server's address as the host sees it. The node daemons and
// nodemesh-identity live in namespaces with no route out (topology.ts), and a test API server
// listens on the host's loopback; the relay joins the two without giving the sandbox a route
// anywhere else: it forwards only to the one address it was started with. TLS passes through
// untouched (the sandbox's kubeconfigs name the server's certificate with tls-server-name).
//
// Runs detached in the root namespace, in the sandbox cgroup `nodemesh-apiserver-relay`
// (teardown kills it with the rest); the listening socket is made inside the top namespace by
// the native addon (setns there and back on one thread).
//
//   node apiserver-relay.js <netns path> <listen ip> <listen port> <target host> <target port>
import * as net from 'node:net';
import { loadNative } from '../../native';
import { SOCKET_FLAGS } from '../../daemon/redirection/socket-factory';

export const RELAY_READY_MESSAGE = 'apiserver relay ready';

function main(argv: string[]): void {
  const [netnsPath, listenIp, listenPort, targetHost, targetPort] = argv;
  if (!netnsPath || !listenIp || !listenPort || !targetHost || !targetPort) {
    process.stderr.write('usage: apiserver-relay <netns path> <listen ip> <listen port> <target host> <target port>\n');
    process.exit(2);
  }
  const native = loadNative();
  const fd = native.socketInNetns(netnsPath, net.isIPv6(listenIp) ? 6 : 4, listenIp, Number(listenPort), 0, 511, SOCKET_FLAGS.reuseAddr);
  const server = net.createServer({ pauseOnConnect: false }, (client) => {
    const upstream = net.connect({ host: targetHost, port: Number(targetPort) });
    client.pipe(upstream);
    upstream.pipe(client);
    const end = (): void => { client.destroy(); upstream.destroy(); };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  });
  server.listen({ fd }, () => {
    process.stdout.write(`${JSON.stringify({ msg: RELAY_READY_MESSAGE, listen: `${listenIp}:${listenPort}`, target: `${targetHost}:${targetPort}` })}\n`);
  });
  const stop = (): void => { server.close(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (require.main === module) main(process.argv.slice(2));
