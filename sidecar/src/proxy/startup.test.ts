import type { RouteConfig } from '@byline/api';
import { describe, expect, test } from 'vitest';
import { PROTOCOL_3_0, type ProtocolError, REQUEST, type StartupMessage } from '../protocol/messages.js';
import { checkStartup, startupRequest, upstreamOverrides } from './startup.js';

function route(credentials: Partial<RouteConfig['credentials']> = {}, database: string | null = 'orders'): RouteConfig {
  return {
    name: 'orders-db',
    listen: '127.0.0.1:0',
    upstream: { host: 'db', port: 5432, ...(database ? { database } : {}) },
    credentials: { mode: 'inject', username: 'app_user', passwordFile: '/pw', ...credentials },
  } as RouteConfig;
}

function startup(params: Record<string, string>): StartupMessage {
  return { protocol: PROTOCOL_3_0, params: new Map(Object.entries(params)), pairs: [] };
}

function refusal(fn: () => void): { sqlstate: string; message: string } | null {
  try {
    fn();
    return null;
  } catch (e) {
    return { sqlstate: (e as ProtocolError).sqlstate, message: (e as Error).message };
  }
}

describe('checkStartup', () => {
  test.each([
    ['the route user', { user: 'app_user', database: 'orders' }, null],
    ['no database (the user name serves)', { user: 'app_user' }, null],
    [
      'another user',
      { user: 'agent', database: 'orders' },
      {
        sqlstate: '28000',
        message: 'route "orders-db" logs in as user "app_user", not "agent": connect as "app_user"',
      },
    ],
    [
      'no user',
      { database: 'orders' },
      { sqlstate: '28000', message: 'no PostgreSQL user name specified in startup packet' },
    ],
    [
      'another database',
      { user: 'app_user', database: 'postgres' },
      { sqlstate: '3D000', message: 'database "postgres" is not served by route "orders-db" (it serves "orders")' },
    ],
    [
      'replication',
      { user: 'app_user', replication: 'database' },
      { sqlstate: '0A000', message: 'replication connections cannot go through the Byline sidecar' },
    ],
  ])('inject route, %s', (_name, params, expected) => {
    expect(refusal(() => checkStartup(route(), startup(params), 'app_user'))).toEqual(expected);
  });

  test('acceptAnyUser lets any user name through; passthrough never compares', () => {
    expect(refusal(() => checkStartup(route({ acceptAnyUser: true }), startup({ user: 'agent' }), 'app_user'))).toBe(
      null,
    );
    const passthrough = { ...route(), credentials: { mode: 'passthrough' } } as RouteConfig;
    expect(refusal(() => checkStartup(passthrough, startup({ user: 'anyone', database: 'orders' }), null))).toBe(null);
  });
});

test('upstreamOverrides: the injected user and the served database, nothing else', () => {
  expect([...upstreamOverrides(route(), 'app_user')]).toEqual([
    ['user', 'app_user'],
    ['database', 'orders'],
  ]);
  expect([...upstreamOverrides(route({}, null), null)]).toEqual([]);
});

test('startupRequest names what an untyped packet asks for', () => {
  expect([REQUEST.ssl, REQUEST.gssenc, REQUEST.cancel, PROTOCOL_3_0, 2 << 16].map(startupRequest)).toEqual([
    'ssl',
    'gssenc',
    'cancel',
    'startup',
    'unsupported',
  ]);
});
