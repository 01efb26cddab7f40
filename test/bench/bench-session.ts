import type { SessionInfo } from '../../sidecar/src/audit/event-builder.js';

/** The session the core benches shape events for: an agent in a pod, as a sidecar records it. */
export function benchSession(): SessionInfo {
  return {
    id: '0190a0b0-2222-7222-8333-444455556666',
    identity: {
      kind: 'agent',
      name: 'billing',
      namespace: 'agents',
      pod: 'billing-7d9f',
      serviceAccount: 'billing',
      source: 'kubernetes',
    },
    target: { database: 'orders', host: 'orders-db.prod.svc', port: 5432, route: 'orders' },
    client: '127.0.0.1:51234',
    dbUser: 'app',
    applicationName: 'billing-agent',
    nextSeq: 1,
  };
}
