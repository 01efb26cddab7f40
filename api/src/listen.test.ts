import { describe, expect, test } from 'vitest';
import { HostPort } from './config-parts.js';
import { parseListen } from './listen.js';
import { validate } from './validate.js';

describe('parseListen', () => {
  test.each([
    ['127.0.0.1:6432', { host: '127.0.0.1', port: 6432 }],
    ['localhost:0', { host: 'localhost', port: 0 }],
    ['[::1]:9443', { host: '::1', port: 9443 }],
    [':8080', { host: '0.0.0.0', port: 8080 }],
    ['0.0.0.0:65535', { host: '0.0.0.0', port: 65535 }],
  ])('%s', (listen, expected) => {
    expect(parseListen(listen)).toEqual(expected);
  });

  test.each(['127.0.0.1', '127.0.0.1:65536', '127.0.0.1:99999', 'host:port', '::1:80', '127.0.0.1:-1', ''])(
    '%j is refused naming the field',
    (listen) => {
      expect(() => parseListen(listen, 'metrics.listen')).toThrow(
        `metrics.listen: expected host:port with a port from 0 to 65535, got ${JSON.stringify(listen)}`,
      );
    },
  );
});

describe('HostPort (the config schema) agrees on the port range', () => {
  test.each(['0', '1', '80', '6432', '9999', '10000', '59999', '64999', '65499', '65529', '65535'])(
    ':%s passes',
    (p) => {
      expect(validate(HostPort, `127.0.0.1:${p}`, 'x')).toBe(`127.0.0.1:${p}`);
    },
  );
  test.each(['65536', '65540', '65600', '66000', '70000', '99999', '00080'])(':%s is refused', (p) => {
    expect(() => validate(HostPort, `127.0.0.1:${p}`, 'x')).toThrow('expected host:port with a port from 0 to 65535');
  });
});
