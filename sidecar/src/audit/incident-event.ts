/**
 * Events about the trail itself rather than a statement: `spool.damaged` (spool bytes lost to
 * corruption) and `spool.deadLettered` (events the collector permanently refused). They are
 * chained like any event, so the gap they explain is itself in the trail. Pure.
 */
import { type AuditIdentity, type AuditIncident, type AuditTarget, type UnchainedEvent, uuidv7 } from '@byline/api';

/** Who reports: the sidecar's stream (standing in for a session), identity now, and a route. */
export interface IncidentOrigin {
  stream: string;
  identity: AuditIdentity;
  target: AuditTarget;
}

export function incidentEvent(incident: AuditIncident, origin: IncidentOrigin, time = Date.now()): UnchainedEvent {
  // Keys in canonical (sorted) order, as the chain expects.
  return {
    authz: null,
    context: null,
    id: uuidv7(time),
    identity: origin.identity,
    incident,
    result: null,
    session: { applicationName: null, client: null, dbUser: null, id: origin.stream, seq: 0 },
    statement: null,
    target: origin.target,
    time: new Date(time).toISOString(),
    type: incident.kind,
    v: 1,
  };
}
