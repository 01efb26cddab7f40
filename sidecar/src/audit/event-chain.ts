/**
 * The sidecar's chain writer: the same chain as @byline/api's `ChainWriter.appendCanonical` (the
 * same canonical JSON, so the same hashes `byline verify` checks), built for the audit pipeline's
 * loop, where it is most of the cost of an event. It writes the top level of the event itself,
 * in canonical key order, so that:
 *  - the parts a whole session shares (identity, target) and the authz parts its decisions share
 *    are serialized once and reused (they are built once and never changed afterwards);
 *  - the hash goes straight into its place (`chain` follows `authz`), without searching the text;
 *  - no chained copy of the event object is built: the sinks take the JSON lines.
 * Every nested object is built in canonical key order by EventBuilder (its tests check that), so
 * JSON.stringify of it is its canonical JSON, as appendCanonical assumes too.
 */
import * as crypto from 'node:crypto';
import type { UnchainedEvent } from '@byline/api';

// One-shot crypto.hash (Node ≥ 20.12) skips the Hash object.
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;
function sha256(text: string): string {
  return oneShot ? oneShot('sha256', text, 'hex') : crypto.createHash('sha256').update(text).digest('hex');
}

/** JSON of objects that are shared by many events and never change once built. */
const shared = new WeakMap<object, string>();
function sharedJson(value: object | null): string {
  if (value === null) return 'null';
  let json = shared.get(value);
  if (json === undefined) {
    json = JSON.stringify(value);
    shared.set(value, json);
  }
  return json;
}

export class EventChain {
  private readonly streamJson: string;

  constructor(
    readonly stream: string,
    private seq = 0,
    private prev: string | null = null,
  ) {
    this.streamJson = JSON.stringify(stream);
  }

  /** Where the chain stands: the last event's seq and hash. */
  get position(): { seq: number; prev: string | null } {
    return { seq: this.seq, prev: this.prev };
  }

  /**
   * Chains one event whose nested objects are in canonical key order, and returns its canonical
   * JSON (with `chain.hash`). `identity`, `target` and `authz` must not be changed after they were
   * first chained (the session's and the decision's are shared and cached by object).
   */
  append(e: UnchainedEvent): string {
    this.seq += 1;
    const head = `{"authz":${sharedJson(e.authz)},"chain":{`;
    const rest =
      `"prev":${this.prev === null ? 'null' : `"${this.prev}"`},"seq":${this.seq},"stream":${this.streamJson}}` +
      `,"context":${JSON.stringify(e.context)},"id":${JSON.stringify(e.id)},"identity":${sharedJson(e.identity)}` +
      (e.incident === undefined ? '' : `,"incident":${JSON.stringify(e.incident)}`) +
      `,"result":${JSON.stringify(e.result)},"session":${JSON.stringify(e.session)}` +
      `,"statement":${JSON.stringify(e.statement)},"target":${sharedJson(e.target)}` +
      `,"time":${JSON.stringify(e.time)},"type":${JSON.stringify(e.type)},"v":${e.v}}`;
    const hash = sha256(head + rest);
    this.prev = hash;
    return `${head}"hash":"${hash}",${rest}`;
  }
}
