/**
 * The startup conversation's decisions, pure: what a startup-phase packet asks for, whether a
 * StartupMessage may go through this route, and what Postgres is sent in its place.
 */
import { timingSafeEqual } from 'node:crypto';
import type { RouteConfig } from '@byline/api';
import { ProtocolError, REQUEST, type StartupMessage } from '../protocol/messages.js';

export type StartupRequest = 'ssl' | 'gssenc' | 'cancel' | 'startup' | 'unsupported';

export function startupRequest(code: number): StartupRequest {
  if (code === REQUEST.ssl) return 'ssl';
  if (code === REQUEST.gssenc) return 'gssenc';
  if (code === REQUEST.cancel) return 'cancel';
  return code >> 16 === 3 ? 'startup' : 'unsupported';
}

/**
 * Refuses what this route does not serve. `injectedUser` is the role the sidecar logs in as
 * (inject mode), null in passthrough.
 */
export function checkStartup(route: RouteConfig, startup: StartupMessage, injectedUser: string | null): void {
  const params = startup.params;
  if (params.has('replication')) {
    throw new ProtocolError('replication connections cannot go through the Byline sidecar', '0A000');
  }
  const user = params.get('user');
  if (!user) throw new ProtocolError('no PostgreSQL user name specified in startup packet', '28000');
  // Silently logging a client in as another role than it asked for would surprise it (and the
  // reader of its logs); a route that serves any name says so with acceptAnyUser.
  const credentials = route.credentials;
  if (injectedUser !== null && user !== injectedUser && !(credentials.mode === 'inject' && credentials.acceptAnyUser)) {
    throw new ProtocolError(
      `route "${route.name}" logs in as user "${injectedUser}", not "${user}": connect as "${injectedUser}"`,
      '28000',
    );
  }
  const requested = params.get('database');
  const served = route.upstream.database;
  if (served && requested && requested !== served && requested !== user) {
    throw new ProtocolError(
      `database "${requested}" is not served by route "${route.name}" (it serves "${served}")`,
      '3D000',
    );
  }
}

/** The parameters the sidecar sets in the upstream StartupMessage; every other one goes as sent. */
export function upstreamOverrides(route: RouteConfig, injectedUser: string | null): Map<string, string> {
  const overrides = new Map<string, string>();
  if (injectedUser !== null) overrides.set('user', injectedUser);
  if (route.upstream.database) overrides.set('database', route.upstream.database);
  return overrides;
}

/** The password a local client presented against clientPasswordFile's, in constant time. */
export function passwordMatches(presented: string, expected: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
