/** `host:port` as every Byline config and flag writes a listen address; the one parser for it. */

export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * Parses `host:port`, `[v6]:port` or `:port` (all interfaces). Port 0 asks the system for a free
 * one. Throws an Error naming `what` and the value when it is not an address a server can bind.
 */
export function parseListen(listen: string, what = 'listen'): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]*)):(\d{1,5})$/.exec(listen);
  const port = Number(m?.[3]);
  if (!m || port > 65535) {
    throw new Error(`${what}: expected host:port with a port from 0 to 65535, got ${JSON.stringify(listen)}`);
  }
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/** A port number as a regular expression: 0–65535, no leading zeros beyond four digits. */
export const PORT_PATTERN = '(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})';
