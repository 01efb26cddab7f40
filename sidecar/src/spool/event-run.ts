/**
 * A run of events as the shipper sends them: their canonical JSON lines as UTF-8 bytes, each line
 * ending in a newline (the NDJSON request body, as is), and where each line ends. The bytes come
 * straight from the spool's records, so shipping never decodes an event to a string nor encodes it
 * again; a line is decoded only when one is needed alone (the signed head, a dead letter).
 */
const NEWLINE = 0x0a;

export class EventRun {
  private constructor(
    /** The lines, each ending in '\n'. */
    readonly body: Buffer,
    /** Offset in `body` just past each line's '\n'. */
    private readonly ends: readonly number[],
  ) {}

  static readonly empty = new EventRun(Buffer.alloc(0), []);

  /**
   * The lines held in `parts` (each part one or more lines joined by '\n', with no newline at its
   * end; an empty part holds none), in order, in one body. JSON text never holds a raw newline, so
   * the lines are found by it.
   */
  static fromParts(parts: readonly Buffer[]): EventRun {
    let size = 0;
    for (let i = 0; i < parts.length; i++) if (parts[i]!.length > 0) size += parts[i]!.length + 1;
    if (size === 0) return EventRun.empty;
    const body = Buffer.allocUnsafe(size);
    let at = 0;
    for (let i = 0; i < parts.length; i++) {
      if (parts[i]!.length === 0) continue;
      at += parts[i]!.copy(body, at);
      body[at++] = NEWLINE;
    }
    const ends: number[] = [];
    for (let p = body.indexOf(NEWLINE); p !== -1; p = body.indexOf(NEWLINE, p + 1)) ends.push(p + 1);
    return new EventRun(body, ends);
  }

  static fromLines(lines: readonly string[]): EventRun {
    if (lines.length === 0) return EventRun.empty;
    return EventRun.fromParts([Buffer.from(lines.join('\n'), 'utf8')]);
  }

  get count(): number {
    return this.ends.length;
  }

  /** Bytes of line `i` in the body, its newline included. */
  bytes(i: number): number {
    return this.ends[i]! - this.start(i);
  }

  /** Line `i`, decoded (without its newline). */
  line(i: number): string {
    return this.body.toString('utf8', this.start(i), this.ends[i]! - 1);
  }

  /** Every line, decoded (tests, and the rare caller that needs them all). */
  get lines(): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.ends.length; i++) out.push(this.line(i));
    return out;
  }

  /** Lines [lo, hi) as a run of their own, sharing these bytes. */
  slice(lo: number, hi: number): EventRun {
    if (lo === 0 && hi === this.ends.length) return this;
    const start = this.start(lo);
    const ends: number[] = [];
    for (let i = lo; i < hi; i++) ends.push(this.ends[i]! - start);
    return new EventRun(this.body.subarray(start, hi > lo ? this.ends[hi - 1]! : start), ends);
  }

  private start(i: number): number {
    return i === 0 ? 0 : this.ends[i - 1]!;
  }
}
