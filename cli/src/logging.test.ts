import { PassThrough } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { createLogger, prettyLine } from './logging.js';

function capture(
  format: 'json' | 'pretty',
  level = 'info',
): { lines: () => string[]; log: ReturnType<typeof createLogger> } {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => {
    text += d.toString();
  });
  const log = createLogger({ format, level, component: 'sidecar' }, out);
  return { log, lines: () => text.split('\n').filter(Boolean) };
}

describe('createLogger', () => {
  test('json: level names, not numbers; ISO time; the component', () => {
    const { log, lines } = capture('json');
    log.info({ route: 'orders-db' }, 'route listening');
    log.warn('careful');
    log.debug('not at info');
    const records = lines().map((l) => JSON.parse(l));
    expect(records).toEqual([
      {
        level: 'info',
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/),
        component: 'sidecar',
        route: 'orders-db',
        msg: 'route listening',
      },
      { level: 'warn', time: expect.any(String), component: 'sidecar', msg: 'careful' },
    ]);
  });

  test('pretty: the same records as readable lines', () => {
    const { log, lines } = capture('pretty', 'debug');
    log.info({ route: 'orders-db', listen: '127.0.0.1:6432' }, 'route listening');
    log.debug({ n: 3, tags: ['a b'] }, 'details');
    expect(lines()).toEqual([
      expect.stringMatching(/^\S+Z INFO {2}sidecar: route listening route=orders-db listen=127\.0\.0\.1:6432$/),
      expect.stringMatching(/^\S+Z DEBUG sidecar: details n=3 tags=\["a b"\]$/),
    ]);
  });
});

describe('prettyLine', () => {
  test('quotes strings with spaces, indents an error stack under its line', () => {
    const line = prettyLine(
      JSON.stringify({
        level: 'error',
        time: '2026-12-06T12:00:00.000Z',
        component: 'collector',
        msg: 'shutdown failed',
        store: 'sqlite:/tmp/a b.db',
        err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at x (y.js:1:1)' },
      }),
    );
    expect(line).toBe(
      '2026-12-06T12:00:00.000Z ERROR collector: shutdown failed store="sqlite:/tmp/a b.db"\n    Error: boom\n        at x (y.js:1:1)\n',
    );
  });

  test('a message with a newline cannot forge a second record', () => {
    const line = prettyLine(
      JSON.stringify({ level: 'warn', time: 't', component: 'sidecar', msg: 'bad user "x"\nt INFO  sidecar: forged' }),
    );
    expect(line).toBe('t WARN  sidecar: bad user "x"\\nt INFO  sidecar: forged\n');
    expect(line.split('\n')).toHaveLength(2);
  });

  test('a line that is not JSON passes through unchanged', () => {
    expect(prettyLine('not json')).toBe('not json\n');
  });
});
