/**
 * The log formats and levels the long-running commands accept. Apart from logging.ts so that the
 * command table (and with it `--help`) does not load pino.
 */
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
