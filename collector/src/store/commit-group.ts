/**
 * Group commit: batches handed to a store in the same turn of the event loop (several shippers'
 * requests finishing together) are written by one call of `writeAll`, which commits them together
 * while keeping each batch all-or-nothing on its own (a savepoint per batch). One commit then
 * carries many batches, and the pages they share (the recent end of every index) are written once.
 *
 * The group is taken on `setImmediate`, after the poll phase that delivered the requests, so a lone
 * batch waits for nothing but the rest of the current turn.
 */

/** One batch's outcome inside a group: its own result, or the error that rolled back only it. */
export type Settled<R> = { ok: true; value: R } | { ok: false; error: unknown };

interface Waiting<J, R> {
  job: J;
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
}

export class CommitGroup<J, R> {
  private waiting: Waiting<J, R>[] = [];
  private scheduled = false;
  private running: Promise<void> = Promise.resolve();

  constructor(
    /** Writes `jobs` in one transaction; one Settled per job, in order. Throwing fails every job. */
    private readonly writeAll: (jobs: J[]) => Settled<R>[] | Promise<Settled<R>[]>,
    /** A job's weight (its events), and the most a group holds: more wait for the next group. */
    private readonly weigh: (job: J) => number = () => 1,
    private readonly maxWeight = 64,
  ) {}

  submit(job: J): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ job, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.running = this.running.then(() => this.flush());
        });
      }
    });
  }

  /** Resolves once every job submitted so far has been written (or has failed). */
  async drain(): Promise<void> {
    while (this.scheduled || this.waiting.length > 0) {
      await new Promise((r) => setImmediate(r));
      await this.running;
    }
    await this.running;
  }

  /** How many of the waiting jobs the next group takes: at least one, however heavy. */
  private groupLength(): number {
    let weight = 0;
    for (let i = 0; i < this.waiting.length; i++) {
      weight += this.weigh(this.waiting[i]!.job);
      if (weight > this.maxWeight) return Math.max(1, i);
    }
    return this.waiting.length;
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    while (this.waiting.length > 0) {
      const group = this.waiting.splice(0, this.groupLength());
      let settled: Settled<R>[];
      try {
        settled = await this.writeAll(group.map((w) => w.job));
      } catch (e) {
        for (const w of group) w.reject(e);
        continue;
      }
      group.forEach((w, i) => {
        const s = settled[i]!;
        if (s.ok) w.resolve(s.value);
        else w.reject(s.error);
      });
    }
  }
}
