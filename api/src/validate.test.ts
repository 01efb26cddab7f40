import { Type as T } from '@sinclair/typebox';
import { describe, expect, test } from 'vitest';
import { SidecarConfigSchema, sidecarConfigRules } from './sidecar-config.js';
import { fieldName, isValid, problemsOf, ValidationError, validate } from './validate.js';

// biome-ignore lint/suspicious/noExplicitAny: test fixtures are edited freely
type Loose = any;

function config(): Loose {
  return {
    identity: { static: { name: 'agent-1', kind: 'agent' } },
    routes: [
      {
        name: 'orders-db',
        listen: '127.0.0.1:6432',
        upstream: { host: 'db.internal', port: 5432, sslMode: 'verify-full' },
        credentials: { mode: 'inject', username: 'app', passwordFile: '/secrets/password' },
      },
    ],
    audit: { params: 'redacted', sinks: [{ file: '/spool/audit.jsonl' }] },
  };
}

function problems(edit: (c: Loose) => void): string[] {
  const c = config();
  edit(c);
  const found = problemsOf(SidecarConfigSchema, c);
  // The rules the schema cannot say run once it holds, as loadConfigFile runs them.
  return found.length > 0 ? found : sidecarConfigRules(c as never);
}

describe('fieldName', () => {
  test.each([
    ['', '(top level)'],
    ['/routes', 'routes'],
    ['/routes/0/upstream/port', 'routes[0].upstream.port'],
    ['/audit/sinks/12/file', 'audit.sinks[12].file'],
    ['/a~1b/c~0d', 'a/b.c~d'],
  ])('%j → %s', (pointer, name) => {
    expect(fieldName(pointer)).toBe(name);
  });
});

describe('sidecar config messages name the field and what was expected', () => {
  test('a valid config has no problems and validate returns it as is', () => {
    const c = config();
    expect(problemsOf(SidecarConfigSchema, c)).toEqual([]);
    expect(isValid(SidecarConfigSchema, c)).toBe(true);
    expect(validate(SidecarConfigSchema, c, 'sidecar config')).toBe(c);
  });

  test.each<[string, (c: Loose) => void, string[]]>([
    [
      'missing routes',
      (c) => {
        delete c.routes;
      },
      ['routes: required field is missing'],
    ],
    ['empty routes', (c) => (c.routes = []), ['routes: expected at least 1 item, got []']],
    [
      'a typo in a field name',
      (c) => {
        c.routes[0].upstrem = c.routes[0].upstream;
        delete c.routes[0].upstream;
      },
      ['routes[0].upstream: required field is missing', 'routes[0].upstrem: unknown field (did you mean "upstream"?)'],
    ],
    [
      'an unknown field nothing resembles',
      (c) => (c.audit.colour = 'blue'),
      [
        'audit.colour: unknown field (known fields: params, spoolDir, durability, maxSpoolBytes, onBacklogFull, segmentBytes, drainSeconds, sinks)',
      ],
    ],
    [
      'a field in the wrong case',
      (c) => {
        c.routes[0].upstream.SSLMODE = 'require';
      },
      ['routes[0].upstream.SSLMODE: unknown field (did you mean "sslMode"?)'],
    ],
    [
      'a port that is not a number',
      (c) => (c.routes[0].upstream.port = '5432x'),
      ['routes[0].upstream.port: expected integer, got "5432x"'],
    ],
    [
      'a port out of range',
      (c) => (c.routes[0].upstream.port = 70000),
      ['routes[0].upstream.port: expected integer to be less or equal to 65535, got 70000'],
    ],
    [
      'an unknown sslMode',
      (c) => (c.routes[0].upstream.sslMode = 'maybe'),
      ['routes[0].upstream.sslMode: expected one of "disable", "prefer", "require", "verify-full", got "maybe"'],
    ],
    [
      'inject without username',
      (c) => {
        delete c.routes[0].credentials.username;
      },
      ['routes[0].credentials: give username or usernameFile (exactly one)'],
    ],
    [
      'an unknown credentials mode',
      (c) => (c.routes[0].credentials.mode = 'injct'),
      ['routes[0].credentials.mode: expected one of "inject", "passthrough", got "injct"'],
    ],
    [
      'credentials without a mode',
      (c) => {
        delete c.routes[0].credentials.mode;
      },
      ['routes[0].credentials.mode: required field is missing (one of "inject", "passthrough")'],
    ],
    [
      'credentials that are not an object',
      (c) => (c.routes[0].credentials = 'inject'),
      ['routes[0].credentials: expected an object with mode: "inject", "passthrough", got "inject"'],
    ],
    [
      'passthrough with inject-only fields',
      (c) => (c.routes[0].credentials = { mode: 'passthrough', username: 'x' }),
      ['routes[0].credentials.username: unknown field (known fields: mode)'],
    ],
    [
      'audit.params: everything',
      (c) => (c.audit.params = 'everything'),
      ['audit.params: expected one of "none", "redacted", "full", got "everything"'],
    ],
    [
      'a listen address without a host',
      (c) => (c.routes[0].listen = '6432'),
      ['routes[0].listen: expected host:port with a port from 0 to 65535, got "6432"'],
    ],
    [
      'a route name in capitals',
      (c) => (c.routes[0].name = 'Orders'),
      ['routes[0].name: expected a name of lower-case letters, digits and "-" (like "orders-db"), got "Orders"'],
    ],
    [
      'an empty host',
      (c) => (c.routes[0].upstream.host = ''),
      ['routes[0].upstream.host: expected a non-empty string, got ""'],
    ],
    [
      'an unknown identity kind',
      (c) => (c.identity.static.kind = 'robot'),
      ['identity.static.kind: expected one of "agent", "human", "service", got "robot"'],
    ],
    [
      'a long value is shortened',
      (c) => (c.routes[0].upstream.port = 'x'.repeat(100)),
      [`routes[0].upstream.port: expected integer, got "${'x'.repeat(56)}...`],
    ],
  ])('%s', (_name, edit, expected) => {
    expect(problems(edit)).toEqual(expected);
  });

  test('every problem is listed, each once', () => {
    const c = config();
    c.routes[0].upstream.port = 'x';
    c.routes[0].upstream.sslMode = 'maybe';
    c.audit.params = 'all';
    delete c.identity;
    expect(problemsOf(SidecarConfigSchema, c)).toEqual([
      'identity: required field is missing',
      'routes[0].upstream.port: expected integer, got "x"',
      'routes[0].upstream.sslMode: expected one of "disable", "prefer", "require", "verify-full", got "maybe"',
      'audit.params: expected one of "none", "redacted", "full", got "all"',
    ]);
  });

  test('not an object at all', () => {
    expect(problemsOf(SidecarConfigSchema, null)).toEqual(['(top level): expected object, got null']);
    expect(problemsOf(SidecarConfigSchema, 'routes: []')).toEqual(['(top level): expected object, got "routes: []"']);
  });

  test('ValidationError lists the problems under what was being validated', () => {
    const c = config();
    c.routes[0].upstream.port = '5432x';
    let error: unknown;
    try {
      validate(SidecarConfigSchema, c, 'sidecar config (x.yaml)');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).what).toBe('sidecar config (x.yaml)');
    expect((error as ValidationError).problems).toEqual(['routes[0].upstream.port: expected integer, got "5432x"']);
    expect((error as Error).message).toBe(
      'invalid sidecar config (x.yaml):\n  - routes[0].upstream.port: expected integer, got "5432x"',
    );
  });
});

describe('other schemas', () => {
  test('a union that is not of literals or tagged objects says which kinds it takes', () => {
    const schema = T.Object({ v: T.Union([T.String(), T.Integer()]) });
    expect(problemsOf(schema, { v: true })).toEqual(['v: expected one of: string, integer, got true']);
  });

  test('a nullable object that is set names the field inside it', () => {
    const schema = T.Object({
      result: T.Union([T.Object({ status: T.Union([T.Literal('ok'), T.Literal('error')]) }), T.Null()]),
      tags: T.Union([T.Array(T.String()), T.Null()]),
    });
    expect(problemsOf(schema, { result: { status: 'fine' }, tags: ['a', 1] })).toEqual([
      'result.status: expected one of "ok", "error", got "fine"',
      'tags[1]: expected string, got 1',
    ]);
    expect(problemsOf(schema, { result: 'ok', tags: null })).toEqual([
      'result: expected one of: object, null, got "ok"',
    ]);
  });

  test('a pattern without a description shows the pattern', () => {
    const schema = T.Object({ id: T.String({ pattern: '^[0-9]+$' }) });
    expect(problemsOf(schema, { id: 'abc' })).toEqual([`id: expected string to match '^[0-9]+$', got "abc"`]);
  });

  test('at most 20 problems are listed', () => {
    const schema = T.Array(T.Integer());
    const list = problemsOf(
      schema,
      Array.from({ length: 50 }, (_, i) => `n${i}`),
    );
    expect(list).toHaveLength(20);
    expect(list[0]).toBe('[0]: expected integer, got "n0"');
  });
});

describe('the collector CA inline (caPem) or from a file (caFile)', () => {
  const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  const kube = (collector: Loose) => (c: Loose) => {
    c.identity = { kubernetes: { tokenPath: '/var/run/token', collector: { url: 'https://c.ns.svc', ...collector } } };
  };
  const sink = (collector: Loose) => (c: Loose) => {
    c.audit = {
      spoolDir: '/spool',
      sinks: [{ file: '/spool/a.jsonl' }, { collector: { url: 'https://c.ns.svc', tokenFile: '/t', ...collector } }],
    };
  };

  test.each<[string, (c: Loose) => void]>([
    ['identity.kubernetes with caPem', kube({ caPem: PEM })],
    ['identity.kubernetes with caFile', kube({ caFile: '/ca.crt' })],
    ['a collector sink with caPem', sink({ caPem: PEM })],
  ])('%s is accepted', (_, edit) => {
    expect(problems(edit)).toEqual([]);
  });

  test.each<[string, (c: Loose) => void, string[]]>([
    [
      'both on identity.kubernetes',
      kube({ caPem: PEM, caFile: '/ca.crt' }),
      ['identity.kubernetes.collector: give caFile or caPem, not both'],
    ],
    [
      'both on a sink',
      sink({ caPem: PEM, caFile: '/ca.crt' }),
      ['audit.sinks[1].collector: give caFile or caPem, not both'],
    ],
  ])('%s is refused', (_, edit, expected) => {
    expect(problems(edit)).toEqual(expected);
  });

  test('a caPem that is not PEM is refused, naming the field', () => {
    const found = problems(sink({ caPem: '/etc/ssl/ca.crt' }));
    expect(found.join('\n')).toContain('audit.sinks[1].collector.caPem');
  });
});
