/**
 * How the long-running commands log: pino JSON lines on stdout with level names ("info", not 30)
 * and ISO times, for log pipelines; or `--log-format pretty`, one readable line per record, for
 * people at a terminal. Both come from the same records, so start and shutdown lines say the same.
 */
import pino, { type DestinationStream, type Logger } from 'pino';
import type { LogFormat } from './log-settings.js';

export interface LoggerOptions {
  format: LogFormat;
  level: string;
  component: string;
}

export function createLogger(options: LoggerOptions, out: NodeJS.WritableStream = process.stdout): Logger {
  // Synchronous writes: a record written before process.exit must not be lost.
  const destination: DestinationStream =
    options.format === 'pretty'
      ? { write: (line: string) => out.write(prettyLine(line)) }
      : out === process.stdout
        ? pino.destination({ dest: 1, sync: true })
        : out;
  return pino(
    {
      level: options.level,
      base: { component: options.component },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

const FIXED = new Set(['level', 'time', 'component', 'msg', 'err']);

/** One JSON record as a line for people: `TIME LEVEL component: message key=value …`. */
export function prettyLine(json: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json);
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const level = String(record.level ?? '').toUpperCase();
  const fields = Object.entries(record)
    .filter(([k]) => !FIXED.has(k))
    .map(([k, v]) => `${k}=${prettyValue(v)}`);
  let line = `${record.time ?? ''} ${level.padEnd(5)} ${oneLine(record.component ?? 'byline')}: ${oneLine(record.msg ?? '')}`;
  if (fields.length > 0) line += ` ${fields.join(' ')}`;
  const err = record.err as { message?: string; stack?: string } | string | undefined;
  if (typeof err === 'string') line += ` err=${prettyValue(err)}`;
  else if (err) line += `\n    ${(err.stack ?? err.message ?? JSON.stringify(err)).split('\n').join('\n    ')}`;
  return `${line}\n`;
}

/** Control characters escaped, so that no message (which may quote a client) can forge a log line. */
function oneLine(v: unknown): string {
  return String(v).replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
}

function prettyValue(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}
