/**
 * The `byline` CLI as real child processes (collector, sidecar), for pipeline tests that kill,
 * signal and restart them, and a reader for what the collector stored.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import type { AuditEvent } from '@byline/api';

const cli = join(resolve(import.meta.dirname, '../..'), 'cli/bin/byline.mjs');
/** Every child started, so a test file's afterAll can kill what is left. */
export const children = new Set<ChildProcess>();

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function listening(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

/** A `byline` subcommand as a child process, ready once its port accepts connections. */
export class Service {
  child: ChildProcess | null = null;
  output = '';
  constructor(
    private readonly args: string[],
    readonly port: number,
  ) {}

  async start(): Promise<void> {
    const child = spawn(process.execPath, [cli, ...this.args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    child.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    child.once('exit', () => children.delete(child));
    this.child = child;
    const deadline = Date.now() + 20_000;
    while (!(await listening(this.port))) {
      if (child.exitCode !== null) {
        await sleep(100); // let its last words arrive
        throw new Error(`${this.args[0]} exited ${child.exitCode}:\n${this.output}`);
      }
      if (Date.now() > deadline) throw new Error(`${this.args[0]} did not listen:\n${this.output}`);
      await sleep(50);
    }
  }

  /** Sends `signal` and waits for the exit; resolves with the exit code (null when killed). */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    const child = this.child;
    if (!child || child.exitCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill(signal);
    const code = await exited;
    this.child = null;
    return code;
  }
}

/** Every event the collector stored (matching `filter`), following its pages. */
export async function storedEvents(
  url: string,
  token: string,
  filter: Record<string, string> = {},
): Promise<AuditEvent[]> {
  const out: AuditEvent[] = [];
  let cursor: string | null = null;
  do {
    const q = new URLSearchParams({ ...filter, limit: '5000', ...(cursor ? { cursor } : {}) });
    const res = await fetch(`${url}/v1/events?${q}`, { headers: { authorization: `Bearer ${token}` } });
    if (!res.ok) throw new Error(`collector answered ${res.status}: ${await res.text()}`);
    const body = (await res.json()) as { events: { event: AuditEvent }[]; nextCursor: string | null };
    out.push(...body.events.map((e) => e.event));
    cursor = body.nextCursor;
  } while (cursor);
  return out;
}

/** Polls `check` until it returns a value that is not undefined, or fails after `ms`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}
