/**
 * The verification worker's entry point: `parseBatch` (schema, canonical form, hash, writer
 * identity per line) off the collector's event loop. One request at a time; each answer carries
 * the request's id. An exception inside `parseBatch` is answered as an error for that batch, so
 * the pool refuses it; nothing here ever answers "valid" for a batch it did not check.
 */
import { parentPort } from 'node:worker_threads';
import { parseBatch } from './parse-batch.js';
import type { WorkerAnswer, WorkerRequest } from './verify-protocol.js';

const port = parentPort;
if (!port) throw new Error('verify-worker.ts runs as a worker thread (VerifyPool starts it)');
port.on('message', (request: WorkerRequest) => {
  let answer: WorkerAnswer;
  try {
    answer = { id: request.id, parsed: parseBatch(request.body, request.writer, request.maxEvents) };
  } catch (e) {
    answer = { id: request.id, error: (e as Error)?.message ?? String(e) };
  }
  port.postMessage(answer);
});
port.postMessage({ ready: true });
