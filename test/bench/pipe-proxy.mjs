// A baseline for the benchmark: the simplest Node.js TCP proxy (socket.pipe both ways, no
// parsing). Its CPU per transaction is the floor for any Node.js proxy on this machine.
// usage: node pipe-proxy.mjs LISTEN_PORT UPSTREAM_PORT
import { connect, createServer } from 'node:net';

const [listenPort, upstreamPort] = process.argv.slice(2).map(Number);
createServer({ noDelay: true }, (client) => {
  const upstream = connect({ host: '127.0.0.1', port: upstreamPort, noDelay: true });
  client.pipe(upstream).pipe(client);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close);
  upstream.on('error', close);
}).listen(listenPort, '127.0.0.1');
// Exit normally on the bench's SIGTERM, so that --cpu-prof (BENCH_CPU_PROF) writes its profile.
process.on('SIGTERM', () => process.exit(0));
