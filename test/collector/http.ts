/**
 * A raw HTTP client for collector tests: node:http, so a test controls every header and can send
 * bodies the server refuses part-way (the answer may arrive while the body is still being written).
 */
import { request } from 'node:http';
import { connect } from 'node:net';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read whatever the JSON holds
  json: any;
}

export interface RequestOptions {
  token?: string;
  body?: string | Buffer;
  headers?: Record<string, string | number>;
  /** Send the body in chunks without Content-Length (chunked transfer encoding). */
  chunked?: boolean;
}

export function call(port: number, method: string, path: string, options: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...options.headers };
    if (options.token !== undefined) headers.Authorization = `Bearer ${options.token}`;
    const body = options.body === undefined ? undefined : Buffer.from(options.body);
    if (body && !options.chunked && headers['Content-Length'] === undefined) headers['Content-Length'] = body.length;
    if (body && headers['Content-Type'] === undefined) headers['Content-Type'] = 'application/x-ndjson';
    let answered = false;
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    // The server may answer and close while the body is still going out (413): that is not an error.
    req.on('error', (e) => {
      if (!answered) reject(e);
    });
    if (!body) {
      req.end();
    } else if (options.chunked) {
      const size = 64 * 1024;
      let at = 0;
      const pump = () => {
        while (at < body.length) {
          const ok = req.write(body.subarray(at, at + size));
          at += size;
          if (!ok) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    } else {
      req.end(body);
    }
  });
}

/** Bytes straight onto a socket, for requests no HTTP client would send; resolves with what came back. */
export function rawExchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => socket.write(bytes));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      text += d;
    });
    socket.on('end', () => resolve(text));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer within 10 s')));
  });
}

/** A metric's value from the Prometheus text, e.g. `byline_collector_events_rejected_total{reason="identity"}`. */
export function metric(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}
