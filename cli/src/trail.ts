/**
 * `byline trail`: who ran what, from the collector. A table for people, or with --format json
 * each event exactly as the sidecar emitted it (canonical JSON), one per line.
 */
import { type AuditEvent, canonicalJson } from '@byline/api';
import { type ChainMarker, CollectorClient } from './collector-client.js';
import { type OptionValues, UsageError } from './command-table.js';
import { followTrail } from './trail-follow.js';

/** The ID token of byline login (--issuer/--client-id, else the last login), refreshed when expired. */
async function loginToken(values: Partial<Record<string, string>>): Promise<string> {
  // Loaded only with --login: openid-client is no cost to a reader with a token file.
  const { defaultLogin, freshPassword } = await import('./login.js');
  const last = defaultLogin();
  const issuer = values.issuer ?? last?.issuer;
  const clientId = values['client-id'] ?? (values.issuer === undefined ? last?.clientId : undefined);
  if (!issuer || !clientId) {
    throw new UsageError(
      '--login: no byline login to take a token from; run byline login, or give --issuer and --client-id',
    );
  }
  return freshPassword(issuer, clientId);
}

/** Runs with the values parsed from the command table's `trail` entry; `signal` ends a --follow. */
export async function trail(
  options: OptionValues,
  out: NodeJS.WritableStream = process.stdout,
  signal?: AbortSignal,
): Promise<number> {
  const values = options as Partial<Record<string, string>>;
  if (!values.collector) throw new UsageError('--collector is required');
  if ((values['token-file'] === undefined) === (options.login !== true)) {
    throw new UsageError('give exactly one of --token-file FILE and --login (the token of byline login)');
  }
  if (values.format !== 'table' && values.format !== 'json')
    throw new UsageError(`--format must be table or json, got ${values.format}`);
  for (const t of ['since', 'until'] as const) {
    const v = values[t];
    if (v !== undefined && Number.isNaN(Date.parse(v)))
      throw new UsageError(`--${t} must be an RFC 3339 time, got ${JSON.stringify(v)}`);
  }
  const limit = values.limit === undefined ? Number.POSITIVE_INFINITY : Number(values.limit);
  if (!(limit > 0) || !Number.isInteger(limit === Number.POSITIVE_INFINITY ? 1 : limit)) {
    throw new UsageError(`--limit must be a positive whole number, got ${JSON.stringify(values.limit)}`);
  }
  const client = new CollectorClient(values.collector, values['token-file'] ?? { token: await loginToken(values) });
  const filters = {
    identity: values.identity,
    namespace: values.namespace,
    table: values.table,
    session: values.session,
    route: values.route,
    database: values.database,
    approval: values.approval,
    class: values.class,
    status: values.status,
    text: values.text,
    since: values.since,
    until: values.until,
  };
  const markers = new Map<string, ChainMarker>();
  let count = 0;
  const table = new TrailTable(out);
  if (options.follow === true) {
    const printed = await followTrail(client, {
      filters,
      from: values.since === undefined ? 'end' : 'start',
      limit,
      print: (e) => (values.format === 'json' ? out.write(`${canonicalJson(e)}\n`) : table.row(e)),
      warn: (message) => process.stderr.write(`byline trail: ${message}\n`),
      ...(signal ? { signal } : {}),
    });
    if (values.format === 'table') table.end(printed);
    return 0;
  }
  for await (const page of client.events(filters, limit)) {
    for (const m of page.markers) markers.set(`${m.stream}/${m.seq}/${m.kind}`, m);
    for (const item of page.events) {
      count++;
      if (values.format === 'json') out.write(`${canonicalJson(item.event)}\n`);
      else table.row(item.event);
    }
  }
  if (values.format === 'table') {
    table.end(count);
    const open = [...markers.values()].filter((m) => !m.resolvedAt);
    if (open.length > 0) {
      out.write(`\nchain problems noticed by the collector in these streams (run byline verify):\n`);
      for (const m of open) out.write(`  ${m.kind} at stream ${m.stream} seq ${m.seq}: ${m.detail}\n`);
    }
  }
  return 0;
}

const COLUMNS = ['TIME', 'IDENTITY', 'DATABASE', 'STATEMENT', 'RESULT', 'APPROVAL'] as const;
const WIDTH = { statement: 60 };

/** Rows are printed as they come (no buffering of a long trail); widths are fixed for that. */
class TrailTable {
  private started = false;

  constructor(private readonly out: NodeJS.WritableStream) {}

  row(e: AuditEvent): void {
    if (!this.started) {
      this.started = true;
      this.line([...COLUMNS]);
    }
    this.line([
      e.time.replace('T', ' '),
      `${e.identity.name}${e.identity.namespace ? `@${e.identity.namespace}` : ''}`,
      e.target.database ?? '',
      statementCell(e),
      resultCell(e),
      approvalCell(e),
    ]);
  }

  end(count: number): void {
    this.out.write(count === 0 ? 'no events match\n' : `(${count} event${count === 1 ? '' : 's'})\n`);
  }

  private line(cells: string[]): void {
    const widths = [24, 18, 10, WIDTH.statement, 24];
    this.out.write(
      `${cells
        .map((c, i) => (i < widths.length ? c.padEnd(widths[i]!) : c))
        .join('  ')
        .trimEnd()}\n`,
    );
  }
}

function statementCell(e: AuditEvent): string {
  if (e.type !== 'statement' || !e.statement) return `— ${e.type} (session ${e.session.id.slice(0, 8)}) —`;
  const text = e.statement.text.replace(/\s+/g, ' ').trim();
  return text.length > WIDTH.statement ? `${text.slice(0, WIDTH.statement - 1)}…` : text;
}

/** `name (requested by A, approved by B)`; the requester only when the event names one (optional in v1). */
export function approvalCell(e: AuditEvent): string {
  const a = e.authz?.approval;
  if (!a) return '';
  return `${a.name} (${a.requestedBy !== undefined ? `requested by ${a.requestedBy}, ` : ''}approved by ${a.approvedBy})`;
}

function resultCell(e: AuditEvent): string {
  const r = e.result;
  if (!r) return '';
  if (r.status === 'ok') return r.rows === null ? (r.tag ?? 'ok') : `${r.rows} row${r.rows === 1 ? '' : 's'}`;
  const what = r.sqlstate ? `${r.sqlstate} ${r.error ?? ''}` : (r.error ?? '');
  return `${r.status}: ${what}`.trim().slice(0, 60);
}
