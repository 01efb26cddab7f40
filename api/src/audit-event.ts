/**
 * AuditEvent v1 — the public contract (see shared/DESIGN.md). One JSON object per event.
 *
 * Every field of the table is always present; what is not known is `null`, so readers never
 * have to tell "absent" from "unknown". `statement` and `result` are null on session events,
 * except that `session.start` and `session.end` carry a result saying how the session went.
 */
import { FormatRegistry, type Static, Type as T } from '@sinclair/typebox';

// TypeBox knows no formats by itself. RFC 3339 date-time, as `Date.prototype.toISOString` writes it
// and as other producers may (offsets, any number of fraction digits).
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;
if (!FormatRegistry.Has('date-time')) {
  FormatRegistry.Set('date-time', (v) => RFC3339.test(v) && !Number.isNaN(Date.parse(v)));
}

const Nullable = <S extends Parameters<typeof T.Union>[0][number]>(s: S) => T.Union([s, T.Null()]);

export const IdentityKind = T.Union([T.Literal('agent'), T.Literal('human'), T.Literal('service')]);
export const IdentitySource = T.Union([T.Literal('kubernetes'), T.Literal('oidc'), T.Literal('static')]);

export const Identity = T.Object(
  {
    name: T.String({ minLength: 1 }),
    kind: IdentityKind,
    namespace: Nullable(T.String()),
    serviceAccount: Nullable(T.String()),
    pod: Nullable(T.String()),
    source: IdentitySource,
    /**
     * With source oidc (byline gateway), where `name` is the person's (the token's name claim): who
     * the token named, the AgentIdentity that claims them (whose routes and guardrails apply; null
     * when none does and the connection was refused), and the token's own id and login session when
     * it has them (never the token). Absent for other sources (added in v1, optional).
     */
    oidc: T.Optional(
      T.Object(
        {
          issuer: T.String({ minLength: 1 }),
          subject: T.String({ minLength: 1 }),
          agentIdentity: Nullable(T.String()),
          jti: Nullable(T.String()),
          sid: Nullable(T.String()),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const Session = T.Object(
  {
    id: T.String({ minLength: 1 }),
    /** Order within the session: session.start is 0, each statement counts up by one. */
    seq: T.Integer({ minimum: 0 }),
    /** The client's address as the sidecar saw it. */
    client: Nullable(T.String()),
    applicationName: Nullable(T.String()),
    /** The database role the session runs as upstream. */
    dbUser: Nullable(T.String()),
  },
  { additionalProperties: false },
);

export const Target = T.Object(
  {
    route: T.String(),
    host: T.String(),
    port: T.Integer({ minimum: 1, maximum: 65535 }),
    database: Nullable(T.String()),
  },
  { additionalProperties: false },
);

export const StatementProtocol = T.Union([
  T.Literal('simple'),
  T.Literal('extended'),
  T.Literal('copy'),
  T.Literal('function'),
]);
export const StatementClass = T.Union([
  T.Literal('read'),
  T.Literal('write'),
  T.Literal('ddl'),
  T.Literal('role'),
  T.Literal('tcl'),
  T.Literal('misc'),
]);
export const ParamsMode = T.Union([T.Literal('none'), T.Literal('redacted'), T.Literal('full')]);

/**
 * No event exceeds this many bytes of canonical JSON: the sidecar shortens what would (see
 * `statement.truncated`), and the collector's limits.maxBatchBytes is at least 1 MiB, above it.
 */
export const MAX_EVENT_BYTES = 1024 * 1024 - 1024;

const Sha256 = T.String({ pattern: '^[0-9a-f]{64}$' });
/** What was shortened: the original's UTF-8 length and SHA-256, so the full text can be matched later. */
const Shortened = T.Object({ bytes: T.Integer({ minimum: 0 }), sha256: Sha256 }, { additionalProperties: false });
export const Truncation = T.Object(
  {
    /** Other fields shortened without a hash (e.g. `context.tags`, `statement.tables`, `result.error`). */
    others: T.Array(T.String()),
    /** Parameters cut to a prefix, by position. */
    params: Nullable(
      T.Array(
        T.Object(
          { bytes: T.Integer({ minimum: 0 }), index: T.Integer({ minimum: 0 }), sha256: Sha256 },
          { additionalProperties: false },
        ),
      ),
    ),
    /** `statement.text` holds a prefix of a text this long with this hash. */
    text: Nullable(Shortened),
  },
  { additionalProperties: false },
);

export const Statement = T.Object(
  {
    /** Exactly as on the wire; for a Query holding several statements, this statement's slice. */
    text: T.String(),
    protocol: StatementProtocol,
    /**
     * Bound parameters per `paramsMode`: null for `none` or when there are none to show;
     * `full` gives text-format values as text and binary ones as `\x…` hex; `redacted` keeps
     * only each value's size (`<redacted N bytes>`). SQL NULL is null in every mode.
     */
    params: Nullable(T.Array(Nullable(T.String()))),
    paramsMode: ParamsMode,
    /** Upper-case command words, e.g. `SELECT`, `INSERT`, `CREATE TABLE`. */
    command: Nullable(T.String()),
    class: StatementClass,
    /** Relations the statement names, schema-qualified when written so; null when unparsable. */
    tables: Nullable(T.Array(T.String())),
    preparedName: Nullable(T.String()),
    /** Present only when the sidecar shortened something to keep the event within MAX_EVENT_BYTES. */
    truncated: T.Optional(Truncation),
    /**
     * Present (true) only when Postgres returned a different number of results than the sidecar
     * split the Query into: each result then has its own event carrying the whole Query's text.
     */
    splitMismatch: T.Optional(T.Literal(true)),
    /**
     * Present only when `text` is not exactly what the client sent: a client encoding that does not
     * convert exactly (`text` is then a best-effort rendering). The statement's exact bytes, base64,
     * and the client encoding as Postgres names it (`SJIS`, `JOHAB`…).
     */
    textRaw: T.Optional(
      T.Object({ base64: T.String(), encoding: T.String({ minLength: 1 }) }, { additionalProperties: false }),
    ),
  },
  { additionalProperties: false },
);

export const ResultStatus = T.Union([
  T.Literal('ok'),
  T.Literal('error'),
  T.Literal('cancelled'),
  T.Literal('denied'),
  T.Literal('unknown'),
]);

export const Result = T.Object(
  {
    status: ResultStatus,
    /** The CommandComplete tag, e.g. `UPDATE 3`. */
    tag: Nullable(T.String()),
    rows: Nullable(T.Integer({ minimum: 0 })),
    sqlstate: Nullable(T.String({ pattern: '^[0-9A-Z]{5}$' })),
    error: Nullable(T.String()),
    durationUs: Nullable(T.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);

export const Approval = T.Object(
  {
    name: T.String(),
    approvedBy: T.String(),
    /**
     * Who asked for it (the Approval's `spec.requestedBy`, stamped by the admission webhook).
     * Added to v1 later, so optional: absent from events of older sidecars and collectors.
     */
    requestedBy: T.Optional(T.String()),
    reason: Nullable(T.String()),
    ticket: Nullable(T.String()),
    expiresAt: Nullable(T.String()),
  },
  { additionalProperties: false },
);

export const Authz = T.Object(
  {
    decision: T.Union([T.Literal('allow'), T.Literal('deny')]),
    rule: Nullable(T.String()),
    approval: Nullable(Approval),
  },
  { additionalProperties: false },
);

export const Context = T.Object(
  {
    task: Nullable(T.String()),
    traceparent: Nullable(T.String()),
    tags: T.Record(T.String(), T.String()),
  },
  { additionalProperties: false },
);

export const Chain = T.Object(
  {
    stream: T.String({ minLength: 1 }),
    seq: T.Integer({ minimum: 1 }),
    prev: Nullable(T.String({ pattern: '^[0-9a-f]{64}$' })),
    hash: T.String({ pattern: '^[0-9a-f]{64}$' }),
  },
  { additionalProperties: false },
);

export const EventType = T.Union([
  T.Literal('session.start'),
  T.Literal('statement'),
  T.Literal('session.end'),
  T.Literal('spool.damaged'),
  T.Literal('spool.deadLettered'),
]);

/** `spool.damaged`: bytes of a spool segment failed their CRC; whatever they held is lost. */
export const SpoolDamage = T.Object(
  {
    /** Damaged byte range [start, end) of the segment file. */
    end: T.Integer({ minimum: 0 }),
    kind: T.Literal('spool.damaged'),
    /** Where the segment was copied for inspection (null when the copy failed). */
    quarantine: Nullable(T.String()),
    segment: T.String(),
    /** The last chain.seq read before the damage and the first after it (null: none in that segment). */
    seqAfter: Nullable(T.Integer({ minimum: 1 })),
    seqBefore: Nullable(T.Integer({ minimum: 1 })),
    start: T.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);

/** `spool.deadLettered`: events the collector permanently refused, kept on the sidecar's disk. */
export const DeadLetter = T.Object(
  {
    /** The refused events, as chained: the gap they leave in the stream is accounted for here. */
    events: T.Array(
      T.Object(
        { hash: Sha256, id: T.String(), seq: T.Integer({ minimum: 1 }), type: T.String() },
        { additionalProperties: false },
      ),
    ),
    /** The file under the spool's dead-letter directory that holds them verbatim. */
    file: T.String(),
    kind: T.Literal('spool.deadLettered'),
    /** What the collector said. */
    reason: T.String(),
    status: T.Integer(),
  },
  { additionalProperties: false },
);

export const AuditEventSchema = T.Object(
  {
    v: T.Literal(1),
    id: T.String({ pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' }),
    type: EventType,
    time: T.String({ format: 'date-time' }),
    identity: Identity,
    /** Only on `spool.damaged` and `spool.deadLettered` events: what happened. */
    incident: T.Optional(T.Union([SpoolDamage, DeadLetter])),
    session: Session,
    target: Target,
    statement: Nullable(Statement),
    result: Nullable(Result),
    authz: Nullable(Authz),
    context: Nullable(Context),
    chain: Chain,
  },
  { additionalProperties: false, $id: 'https://byline.dev/schemas/audit-event/v1' },
);

export type AuditEvent = Static<typeof AuditEventSchema>;
export type AuditIdentity = Static<typeof Identity>;
export type AuditSession = Static<typeof Session>;
export type AuditTarget = Static<typeof Target>;
export type AuditStatement = Static<typeof Statement>;
export type AuditResult = Static<typeof Result>;
export type AuditContext = Static<typeof Context>;
export type AuditChain = Static<typeof Chain>;
export type StatementClassName = Static<typeof StatementClass>;
export type StatementProtocolName = Static<typeof StatementProtocol>;
export type ResultStatusName = Static<typeof ResultStatus>;
export type ParamsModeName = Static<typeof ParamsMode>;
/** An event before the chain is appended: what the sidecar's hot path produces. */
export type AuditIncident = Static<typeof SpoolDamage> | Static<typeof DeadLetter>;
export type AuditTruncation = Static<typeof Truncation>;
export type UnchainedEvent = Omit<AuditEvent, 'chain'>;
