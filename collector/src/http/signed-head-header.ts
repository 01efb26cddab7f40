/**
 * The `Byline-Signed-Head` header of a `POST /v1/events`: the batch's head, signed by the
 * sidecar's key for its stream (api/src/signed-head.ts). Checked before anything is stored: the
 * head must be an event of this batch and the signature must verify with the key it names, so the
 * store never keeps a signature that proves nothing.
 */
import type { IncomingMessage } from 'node:http';
import { parseSignedHeadHeader, SIGNED_HEAD_HEADER, type SignedHead, signatureValid } from '@byline/api';
import type { IngestEvent } from '../store/types.js';
import { HttpError } from './respond.js';

/** The batch's signed head, undefined when the batch carries none, or a 400 naming the problem. */
export function signedHeadOf(req: IncomingMessage, events: readonly IngestEvent[]): SignedHead | undefined {
  const value = req.headers[SIGNED_HEAD_HEADER];
  if (value === undefined) return undefined;
  if (Array.isArray(value)) throw new HttpError(400, `${SIGNED_HEAD_HEADER}: give the header once`);
  const fields = parseSignedHeadHeader(value);
  if (typeof fields === 'string') throw new HttpError(400, `${SIGNED_HEAD_HEADER}: ${fields}`);
  const event = events.find((e) => e.seq === fields.seq && e.hash === fields.hash);
  if (!event) {
    throw new HttpError(
      400,
      `${SIGNED_HEAD_HEADER}: no event of this batch has seq ${fields.seq} and hash ${fields.hash.slice(0, 12)}…`,
    );
  }
  const head: SignedHead = { ...fields, stream: event.stream };
  if (!signatureValid(head)) {
    throw new HttpError(400, `${SIGNED_HEAD_HEADER}: the signature does not verify with key ${head.key}`);
  }
  return head;
}
