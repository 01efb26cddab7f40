/**
 * Realistic, correctly chained AuditEvents as a sidecar would ship them, for the benchmark and tests:
 * sessions opened and closed, statements of every class, tables, an approval now and then.
 */
import { type ChainedEvent, ChainWriter, type UnchainedEvent, uuidv7 } from '@byline/api';

export interface SampleOptions {
  identity?: string;
  /** `identity.namespace` (default null: a static identity placed nowhere). */
  namespace?: string | null;
  route?: string;
  database?: string | null;
  /** Milliseconds since the epoch of the first event; each next one is 1 ms later. */
  startMs?: number;
  /** Statements per session (between session.start and session.end). */
  sessionLength?: number;
  /** Put this approval on every statement. */
  approval?: string | null;
  /** Who requested that approval (`authz.approval.requestedBy`); omitted when not given. */
  requestedBy?: string;
}

const STATEMENTS: { text: string; command: string; class: 'read' | 'write' | 'ddl'; tables: string[] }[] = [
  { text: 'select id, email from customers where id = $1', command: 'SELECT', class: 'read', tables: ['customers'] },
  {
    text: "update customers set email = 'a@example.com' where id = 7",
    command: 'UPDATE',
    class: 'write',
    tables: ['customers'],
  },
  {
    text: 'select o.id, c.email from orders o join customers c on c.id = o.customer_id where o.total > 100',
    command: 'SELECT',
    class: 'read',
    tables: ['orders', 'customers'],
  },
  {
    text: 'insert into invoices (order_id, amount) values ($1, $2) returning id',
    command: 'INSERT',
    class: 'write',
    tables: ['invoices'],
  },
  {
    text: 'alter table billing.ledger add column note text',
    command: 'ALTER TABLE',
    class: 'ddl',
    tables: ['billing.ledger'],
  },
];

/** Builds a stream's events, one session after another, chained by a fresh ChainWriter. */
export class SampleStream {
  readonly writer: ChainWriter;
  private n = 0;
  private session = uuidv7();
  private sessionSeq = 0;

  constructor(
    private readonly options: SampleOptions = {},
    stream = uuidv7(),
  ) {
    this.writer = new ChainWriter(stream);
  }

  get stream(): string {
    return this.writer.stream;
  }

  /** The next `count` events, chained. */
  take(count: number): ChainedEvent[] {
    return Array.from({ length: count }, () => this.writer.append(this.nextEvent()));
  }

  /** The next event, not yet chained (for tests that chain it themselves). */
  nextEvent(): UnchainedEvent {
    const o = this.options;
    const length = o.sessionLength ?? 20;
    const at = new Date((o.startMs ?? Date.UTC(2026, 10, 27, 3, 0, 0)) + this.n).toISOString();
    const i = this.n++;
    const position = this.sessionSeq;
    const type = position === 0 ? 'session.start' : position > length ? 'session.end' : 'statement';
    const base = {
      v: 1 as const,
      id: uuidv7(),
      time: at,
      identity: {
        kind: 'agent' as const,
        name: o.identity ?? 'billing-agent',
        // What a static identity writes: the fields a static token vouches for (no placement by default).
        namespace: o.namespace ?? null,
        pod: null,
        serviceAccount: null,
        source: 'static' as const,
      },
      session: {
        applicationName: 'billing-worker',
        client: '127.0.0.1:59940',
        dbUser: 'app_user',
        id: this.session,
        seq: position,
      },
      target: {
        database: o.database === undefined ? 'orders' : o.database,
        host: '10.0.0.5',
        port: 5432,
        route: o.route ?? 'orders-db',
      },
      context: { tags: { task: 'reconcile' }, task: 'reconcile-2026-11', traceparent: null },
    };
    if (type === 'statement') this.sessionSeq += 1;
    else if (type === 'session.start') this.sessionSeq = 1;
    else {
      this.session = uuidv7();
      this.sessionSeq = 0;
    }
    if (type !== 'statement') {
      return {
        ...base,
        type,
        statement: null,
        authz: null,
        result: { durationUs: null, error: null, rows: null, sqlstate: null, status: 'ok', tag: null },
      };
    }
    const s = STATEMENTS[i % STATEMENTS.length]!;
    const approval = o.approval ?? null;
    return {
      ...base,
      type,
      statement: {
        class: s.class,
        command: s.command,
        params: s.text.includes('$1')
          ? ['<redacted 2 bytes>', '<redacted 5 bytes>'].slice(0, s.text.includes('$2') ? 2 : 1)
          : null,
        paramsMode: 'redacted',
        preparedName: null,
        protocol: s.text.includes('$1') ? 'extended' : 'simple',
        tables: s.tables,
        text: s.text,
      },
      result: {
        durationUs: 800 + (i % 500),
        error: null,
        rows: 1,
        sqlstate: null,
        status: 'ok',
        tag: `${s.command} 1`,
      },
      authz: {
        approval: approval
          ? {
              approvedBy: 'alice@example.com',
              expiresAt: null,
              name: approval,
              reason: 'month-end',
              ...(this.options.requestedBy !== undefined ? { requestedBy: this.options.requestedBy } : {}),
              ticket: 'OPS-7',
            }
          : null,
        decision: 'allow',
        rule: null,
      },
    };
  }
}

/** NDJSON body for a batch: each event's canonical text on its own line. */
export function ndjson(events: readonly ChainedEvent[]): string {
  return events.map((e) => `${e.json}\n`).join('');
}
