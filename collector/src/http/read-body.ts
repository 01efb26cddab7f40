/**
 * Reads a request body up to a byte limit. A declared Content-Length over the limit is refused
 * before a byte is read; a body that grows past it while streaming (chunked) stops being read there.
 */
import type { IncomingMessage } from 'node:http';
import { HttpError } from './respond.js';

export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const tooLarge = (what: string) =>
    new HttpError(413, `${what}; at most ${maxBytes} bytes are accepted per request (limits.maxBatchBytes)`, {
      maxBytes,
    });
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) {
    return Promise.reject(tooLarge(`the body is ${declared} bytes`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        req.pause();
        reject(tooLarge(`the body is more than ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (e: Error) => {
      cleanup();
      reject(new HttpError(400, `the request body could not be read: ${e.message}`));
    };
    const onAborted = () => {
      cleanup();
      reject(new HttpError(400, 'the client went away before sending the whole body'));
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}
