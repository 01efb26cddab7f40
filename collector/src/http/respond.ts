/** JSON responses and the one error type handlers throw: every error leaves as `{ "error": … }`. */
import type { IncomingMessage, ServerResponse } from 'node:http';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  sendText(res, status, JSON.stringify(body), headers);
}

/** Sends JSON text already built (the query responses splice stored events in as they are). */
export function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
  contentType = 'application/json; charset=utf-8',
): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendError(req: IncomingMessage, res: ServerResponse, error: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  // A body not read to its end (refused before or while reading it) is not read any further:
  // with "Connection: close" Node closes the socket once the answer is flushed.
  const close: Record<string, string> = req.complete ? {} : { Connection: 'close' };
  sendJson(res, error.status, { error: error.message, ...error.extra }, { ...error.headers, ...close });
}
