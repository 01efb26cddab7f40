/** Schema pieces every Byline config shares. */
import { Type as T } from '@sinclair/typebox';
import { PORT_PATTERN } from './listen.js';

/** Unknown fields are refused, so that a typo never silently leaves something unconfigured. */
export const Strict = { additionalProperties: false } as const;

export const HostPort = T.String({
  pattern: `^(\\[[0-9a-fA-F:.]+\\]|[^:\\s]+):${PORT_PATTERN}$`,
  description: 'host:port with a port from 0 to 65535',
});

export const LogConfig = T.Object(
  {
    level: T.Optional(T.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => T.Literal(l)))),
  },
  Strict,
);
