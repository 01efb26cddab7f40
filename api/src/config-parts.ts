/** Schema pieces every Byline config shares. */
import { Type as T } from '@sinclair/typebox';

/** Unknown fields are refused, so that a typo never silently leaves something unconfigured. */
export const Strict = { additionalProperties: false } as const;

export const HostPort = T.String({ pattern: '^(\\[[0-9a-fA-F:.]+\\]|[^:\\s]+):[0-9]{1,5}$', description: 'host:port' });

export const LogConfig = T.Object(
  {
    level: T.Optional(T.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => T.Literal(l)))),
  },
  Strict,
);
