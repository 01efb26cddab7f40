/**
 * Before the parser is loaded (it loads with the first connection) nothing on a restricted route is
 * allowed, and that answer is not kept: once it is loaded, the same texts and prepared statements
 * are decided. Its own file, so that the parser is not loaded yet when it starts.
 */
import { expect, test } from 'vitest';
import { SidecarMetrics } from '../metrics.js';
import { loadedParser, loadParser } from '../sql/parser.js';
import { NOT_LOADED, StatementAnalyzer } from './analyzer.js';
import { Authorizer } from './authorizer.js';
import { PolicyEngine } from './engine.js';

test('denied while the parser loads, decided once it has loaded; a prepared statement does not keep the denial', async () => {
  expect(loadedParser()).toBeUndefined();
  const engine = new PolicyEngine();
  engine.setPolicy({
    version: '1',
    identity: { name: 'agent', namespace: null },
    routes: [{ name: 'db', access: 'read', accessSource: 'sidecar config', guardrails: [], approvals: [] }],
  });
  const analyzer = new StatementAnalyzer();
  const authorizer = new Authorizer(engine, analyzer, new SidecarMetrics());
  const prepared = { text: 'SELECT a FROM t WHERE b = $1', name: 'p', flags: 0, raw: null };

  expect(analyzer.analyze('SELECT 1')).toBe(NOT_LOADED);
  const [early] = authorizer.execute('db', prepared, 0);
  expect(early).toMatchObject({ allow: false, message: expect.stringContaining('the SQL parser is not loaded yet') });
  expect(authorizer.query('db', 'SELECT 1', 0, 0)[0]!.allow).toBe(false);

  await loadParser();
  expect(authorizer.execute('db', prepared, 0)[0]).toMatchObject({ allow: true });
  expect(authorizer.query('db', 'SELECT 1', 0, 0)[0]).toMatchObject({ allow: true });
  expect(authorizer.query('db', 'DELETE FROM t', 0, 0)[0]).toMatchObject({ allow: false });
});
