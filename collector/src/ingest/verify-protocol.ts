/** What the collector's main thread and a verification worker (verify-worker.ts) send each other, and how it fails. */
import type { WriterIdentity } from '../auth/authenticator.js';
import type { ParsedBatch } from './parse-batch.js';

/** What the ingest handler needs: a batch body → verdict (parse-batch.ts), inline or in a worker. */
export type VerifyBatch = (body: Uint8Array, writer: WriterIdentity, maxEvents: number) => Promise<ParsedBatch>;

/** Every worker is busy and the waiting line is full: try again shortly. */
export class VerifyBusy extends Error {}

/** The batch could not be verified (its worker died or failed); it must be refused. */
export class VerifyFailed extends Error {}

export interface WorkerRequest {
  id: number;
  body: Uint8Array;
  writer: WriterIdentity;
  maxEvents: number;
}

/** The worker's first message, once it has loaded, and then one answer per request. */
export type WorkerAnswer = { ready: true } | { id: number; parsed: ParsedBatch } | { id: number; error: string };
