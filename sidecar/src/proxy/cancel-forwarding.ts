/**
 * A CancelRequest received on any route's listener: resolved through the shared registry and
 * sent to the upstream of the session it names, never to the receiving route's upstream.
 */
import type { Logger } from 'pino';
import { type CancelKey, encodeCancelRequest } from '../protocol/messages.js';
import type { CancelRegistry } from './cancel-registry.js';
import { connectUpstream } from './upstream.js';

/** As Postgres does, the caller answers nothing either way and closes the connection. */
export function forwardCancel(cancels: CancelRegistry, presented: CancelKey, log: Logger): void {
  const target = cancels.resolve(presented);
  if (!target) {
    log.info({ pid: presented.pid }, 'cancel request with an unknown key ignored');
    return;
  }
  connectUpstream(target.upstream)
    .then(({ socket }) => {
      socket.on('error', () => {});
      socket.end(encodeCancelRequest(target.key));
    })
    .catch((e) => log.warn({ err: e }, 'could not forward a cancel request'));
}
