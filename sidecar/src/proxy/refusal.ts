/**
 * Statements the sidecar does not forward, and how the client is told (DESIGN.md "Reliability":
 * fail closed). An idle session gets an ERROR and ReadyForQuery and stays usable; in the middle
 * of a pipeline or a transaction nothing short of closing the session keeps client and server in
 * agreement about what ran, so it gets a FATAL and Postgres rolls back.
 */
import type { Spool } from '../spool/spool.js';

export interface Refusal {
  sqlstate: string;
  message: string;
  /** The `reason` label of byline_statements_refused_total. */
  metric: 'backlog' | 'spool_write';
}

/** Whether refusing can leave the session usable: nothing outstanding, no transaction open. */
export function refusalKeepsSession(idle: boolean, transactionStatus: string): boolean {
  return idle && transactionStatus === 'I';
}

/** The spool cannot take a new statement: null when it can. */
export function backlogRefusal(spool: Spool): Refusal | null {
  if (spool.accepting) return null;
  const failure = spool.writeFailure;
  return failure
    ? {
        sqlstate: '53100',
        message: `statement refused: the audit spool cannot be written (${failure.message})`,
        metric: 'spool_write',
      }
    : { sqlstate: '53400', message: `statement refused: ${spool.refusalReason}`, metric: 'backlog' };
}

/** The begin records of statements just framed could not be written: they must not be forwarded. */
export function spoolWriteRefusal(spool: Spool): Refusal {
  const failure = spool.writeFailure;
  return {
    sqlstate: '53100',
    message: `statement refused: its audit record cannot be written to the spool${failure ? ` (${failure.message})` : ''}`,
    metric: 'spool_write',
  };
}
