/** The collector's query API, as `byline trail` and `byline verify` use it. */
import { readFileSync } from 'node:fs';
import type { AuditEvent, StreamEvidence } from '@byline/api';

export interface TrailItem {
  event: AuditEvent;
  receivedAt: string;
  /** Where the store holds it (its stream and seq columns), when the collector says. */
  stream?: string;
  seq?: number;
}

export interface ChainMarker {
  stream: string;
  seq: number;
  kind: string;
  detail: string;
  resolvedAt: string | null;
}

export interface TrailPage {
  events: TrailItem[];
  markers: ChainMarker[];
  nextCursor: string | null;
}

export interface StreamSummary {
  stream: string;
  firstSeq: number;
  lastSeq: number;
  count: number;
}

/** The collector could not be reached or answered 5xx: worth retrying as is. */
export class CollectorUnavailable extends Error {}

export class CollectorClient {
  private readonly token: string;

  /** `token`: a file holding the reader token (--token-file), or the token itself (byline login's). */
  constructor(
    private readonly base: string,
    token: string | { token: string },
  ) {
    if (typeof token === 'object') this.token = token.token;
    else {
      try {
        this.token = readFileSync(token, 'utf8').trim();
      } catch (e) {
        throw new Error(`cannot read --token-file ${token}: ${(e as Error).message}`);
      }
    }
    if (!/^https?:\/\//.test(base))
      throw new Error(`--collector must be an http:// or https:// URL, got ${JSON.stringify(base)}`);
  }

  private async get<T>(
    path: string,
    query: Record<string, string | readonly string[] | undefined>,
    signal?: AbortSignal,
  ): Promise<T> {
    const url = new URL(path, this.base);
    for (const [k, v] of Object.entries(query)) {
      if (typeof v === 'string') url.searchParams.set(k, v);
      else for (const each of v ?? []) url.searchParams.append(k, each);
    }
    let res: Response;
    try {
      res = await fetch(url, {
        headers: { authorization: `Bearer ${this.token}`, accept: 'application/json' },
        ...(signal ? { signal } : {}),
      });
    } catch (e) {
      if (signal?.aborted) throw e;
      throw new CollectorUnavailable(
        `cannot reach the collector at ${url.origin}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`,
      );
    }
    const text = await res.text();
    if (!res.ok) {
      let reason = text;
      try {
        reason = (JSON.parse(text) as { error?: string }).error ?? text;
      } catch {
        // not JSON: show it as it is
      }
      const message = `the collector answered ${res.status} for ${url.pathname}: ${reason.trim()}`;
      throw res.status >= 500 ? new CollectorUnavailable(message) : new Error(message);
    }
    return JSON.parse(text) as T;
  }

  /** Every page of events matching `filters`, up to `limit` events. */
  async *events(
    filters: Record<string, string | undefined>,
    limit = Number.POSITIVE_INFINITY,
  ): AsyncGenerator<TrailPage> {
    let cursor: string | undefined;
    let seen = 0;
    do {
      const pageSize = Math.min(1000, limit - seen);
      if (pageSize <= 0) return;
      const page = await this.get<TrailPage>('/v1/events', { ...filters, limit: String(pageSize), cursor });
      seen += page.events.length;
      yield page;
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
  }

  /**
   * `GET /v1/events/follow` once: events stored after `position` (a cursor, or where to start),
   * waiting up to `waitSeconds` for some; `nextCursor` is where to resume.
   */
  followPage(
    filters: Record<string, string | undefined>,
    position: { cursor: string } | { from: 'start' | 'end' },
    waitSeconds: number,
    signal?: AbortSignal,
  ): Promise<TrailPage & { nextCursor: string }> {
    return this.get('/v1/events/follow', { ...filters, ...position, wait: String(waitSeconds) }, signal);
  }

  async streams(): Promise<StreamSummary[]> {
    const body = await this.get<{ streams: StreamSummary[] }>('/v1/streams', {});
    return body.streams;
  }

  /**
   * Markers, registered keys and signed heads of these streams (`GET /v1/evidence`, 100 streams a
   * request), and the collector's receipt key (from its config, null when it has none).
   */
  async evidence(streams: readonly string[]): Promise<{ receiptKey: string | null; streams: StreamEvidence[] }> {
    const out: StreamEvidence[] = [];
    let receiptKey: string | null = null;
    // At least one request, for the receipt key.
    for (let i = 0; i === 0 || i < streams.length; i += 100) {
      const body = await this.get<{ receiptKey: string | null; streams: StreamEvidence[] }>('/v1/evidence', {
        stream: streams.slice(i, i + 100),
      });
      receiptKey = body.receiptKey;
      out.push(...body.streams);
    }
    return { receiptKey, streams: out };
  }
}
