/**
 * Opens the connection to Postgres and negotiates TLS per the route's `sslMode`, the way libpq
 * does: `disable` never asks, `prefer` asks and accepts a refusal, `require` insists but does not
 * verify the certificate, `verify-full` insists and checks the CA chain and the host name.
 */
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import type { UpstreamConfig } from '@byline/api';
import { tlsServerEndPointHash } from '../auth/scram.js';
import { SSL_REQUEST } from '../protocol/messages.js';
import { ReusedReadBuffer } from './read-buffer.js';

export interface UpstreamConnection {
  socket: Socket | TLSSocket;
  /** RFC 5929 tls-server-end-point data for SCRAM-SHA-256-PLUS, when the link is TLS. */
  channelBinding: Buffer | null;
  /** The socket reads into this buffer (no 'data' events); null when it emits 'data'. */
  reads: ReusedReadBuffer | null;
}

export class UpstreamError extends Error {
  override name = 'UpstreamError';
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * With `reuseReadBuffer` and sslMode disable, the plain socket reads into a reused buffer
 * (read-buffer.ts). Not otherwise: the SSLRequest answer is read as a 'data' event, and TLS does
 * its own reading.
 */
export async function connectUpstream(
  upstream: UpstreamConfig,
  options: { reuseReadBuffer?: boolean } = {},
): Promise<UpstreamConnection> {
  const sslMode = upstream.sslMode ?? 'prefer';
  const timeoutMs = upstream.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  if (sslMode === 'disable') {
    const reads = options.reuseReadBuffer ? new ReusedReadBuffer() : null;
    const socket = await openTcp(upstream.host, upstream.port, timeoutMs, reads);
    return { socket, channelBinding: null, reads };
  }
  const socket = await openTcp(upstream.host, upstream.port, timeoutMs, null);
  try {
    const answer = await askForTls(socket, timeoutMs);
    if (answer === 'N') {
      if (sslMode === 'prefer') return { socket, channelBinding: null, reads: null };
      throw new UpstreamError(
        `the database server at ${upstream.host}:${upstream.port} refused TLS (sslMode ${sslMode})`,
      );
    }
    const tls = await startTls(socket, upstream, sslMode === 'verify-full', timeoutMs);
    const cert = tls.getPeerCertificate();
    const channelBinding = cert?.raw ? tlsServerEndPointHash(cert.raw) : null;
    return { socket: tls, channelBinding, reads: null };
  } catch (e) {
    socket.destroy();
    throw e;
  }
}

function openTcp(host: string, port: number, timeoutMs: number, reads: ReusedReadBuffer | null): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(reads ? { host, port, onread: reads.onread } : { host, port });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new UpstreamError(`timed out connecting to the database server at ${host}:${port}`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (e) => {
      clearTimeout(timer);
      reject(new UpstreamError(`cannot connect to the database server at ${host}:${port}: ${e.message}`));
    });
  });
}

/** Sends SSLRequest and reads the one-byte answer, refusing anything sent after it. */
function askForTls(socket: Socket, timeoutMs: number): Promise<'S' | 'N'> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, answer?: 'S' | 'N') => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('error', onError);
      socket.removeListener('close', onClose);
      if (err) reject(err);
      else resolve(answer!);
    };
    const onData = (chunk: Buffer) => {
      socket.pause();
      const c = chunk[0];
      // More than one byte would be data injected before the handshake (CVE-2021-23222).
      if (chunk.length !== 1 || (c !== 0x53 && c !== 0x4e)) {
        done(new UpstreamError('the database server sent an invalid answer to SSLRequest'));
      } else {
        done(null, c === 0x53 ? 'S' : 'N');
      }
    };
    const onError = (e: Error) => done(new UpstreamError(`connection to the database server failed: ${e.message}`));
    const onClose = () => done(new UpstreamError('the database server closed the connection during TLS negotiation'));
    const timer = setTimeout(
      () => done(new UpstreamError('timed out waiting for the answer to SSLRequest')),
      timeoutMs,
    );
    socket.on('data', onData);
    socket.once('error', onError);
    socket.once('close', onClose);
    socket.write(SSL_REQUEST);
  });
}

const caCache = new Map<string, Buffer>();

function startTls(socket: Socket, upstream: UpstreamConfig, verify: boolean, timeoutMs: number): Promise<TLSSocket> {
  let ca: Buffer | undefined;
  if (upstream.sslRootCertFile) {
    ca = caCache.get(upstream.sslRootCertFile);
    if (!ca) {
      ca = readFileSync(upstream.sslRootCertFile);
      caCache.set(upstream.sslRootCertFile, ca);
    }
  }
  return new Promise((resolve, reject) => {
    const tls = tlsConnect({
      socket,
      servername: isIp(upstream.host) ? undefined : upstream.host,
      host: upstream.host,
      ca,
      rejectUnauthorized: verify,
      ...(verify ? {} : { checkServerIdentity: () => undefined }),
    });
    const timer = setTimeout(() => {
      tls.destroy();
      reject(new UpstreamError('timed out during the TLS handshake with the database server'));
    }, timeoutMs);
    tls.once('secureConnect', () => {
      clearTimeout(timer);
      tls.removeAllListeners('error');
      resolve(tls);
    });
    tls.once('error', (e) => {
      clearTimeout(timer);
      reject(new UpstreamError(`TLS with the database server failed: ${e.message}`));
    });
  });
}

function isIp(host: string): boolean {
  return /^[0-9.]+$/.test(host) || host.includes(':');
}
