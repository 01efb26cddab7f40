/**
 * Signs the head of every batch the shipper sends (api/src/signed-head.ts). One Ed25519 key per
 * stream, generated in this process and never written anywhere: the collector registers its public
 * key, bound to the identity it authenticated, from the first batch that carries it, so rewriting a
 * stream's stored history takes this process's key, not only write access to the store.
 *
 * A restarted sidecar continues its stream with a new key; the stream then has several keys, each
 * vouching for the heads it signed. Off the forward path: one JSON.parse per batch.
 */
import { formatSignedHeadHeader, HeadSigner } from '@byline/api';

export class StreamSigner {
  private readonly keys = new Map<string, HeadSigner>();

  /** The `Byline-Signed-Head` value for a batch: its last event's (stream, seq, hash), signed. */
  headerFor(lines: readonly string[]): string {
    const last = lines[lines.length - 1];
    if (last === undefined) throw new Error('a batch to sign holds at least one event');
    const { stream, seq, hash } = (JSON.parse(last) as { chain: { stream: string; seq: number; hash: string } }).chain;
    let signer = this.keys.get(stream);
    if (!signer) {
      signer = new HeadSigner();
      this.keys.set(stream, signer);
    }
    return formatSignedHeadHeader(signer.sign({ stream, seq, hash }));
  }
}
