/**
 * collector.existingSecret against a real PostgreSQL: the chart renders a store URL without a
 * password and PGPASSWORD from the Secret; the collector's store, given exactly that URL and
 * environment, logs in with password authentication (and cannot without the variable).
 */
import { openStore } from '@byline/collector';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse } from 'yaml';
import { AUTH_USERS, startPostgres, TEST_PASSWORD, type TestPostgres } from '../harness/postgres.js';
import { buildHelm, findHelm } from './helm.js';
import { find, render } from './render.js';

let db: TestPostgres;
let helmBin: string;
beforeAll(async () => {
  helmBin = findHelm() ?? (await buildHelm());
  db = await startPostgres();
  const admin = db.client();
  await admin.connect();
  await admin.query(`CREATE DATABASE trail OWNER ${AUTH_USERS.scram}`);
  await admin.end();
}, 20 * 60_000);
afterAll(async () => {
  await db?.stop();
});

it('the collector logs in to PostgreSQL with the password from existingSecret, given as PGPASSWORD', async () => {
  const manifests = render(helmBin, {
    release: 'byline',
    namespace: 'byline',
    set: [
      `collector.store=postgres://${AUTH_USERS.scram}@127.0.0.1:${db.port}/trail`,
      'collector.existingSecret.name=trail-db',
    ],
  });
  const config = find(manifests, 'Secret', 'byline-collector-config')[0] as unknown as {
    stringData: { 'collector.yaml': string };
  };
  const store = (parse(config.stringData['collector.yaml']) as { store: string }).store;
  expect(store).not.toContain(TEST_PASSWORD);
  const deployment = find(manifests, 'Deployment', 'byline-collector')[0] as unknown as {
    spec: { template: { spec: { containers: { env: { name: string; valueFrom?: unknown }[] }[] } } };
  };
  const env = deployment.spec.template.spec.containers[0]?.env.find((e) => e.valueFrom !== undefined);
  expect(env).toEqual({ name: 'PGPASSWORD', valueFrom: { secretKeyRef: { name: 'trail-db', key: 'password' } } });

  const saved = process.env.PGPASSWORD;
  try {
    delete process.env.PGPASSWORD;
    await expect(openStore(store)).rejects.toThrow(/password/i);
    // What the kubelet does with the Secret's value.
    process.env[env!.name] = TEST_PASSWORD;
    const opened = await openStore(store);
    await opened.ping();
    await opened.close();
  } finally {
    if (saved === undefined) delete process.env.PGPASSWORD;
    else process.env.PGPASSWORD = saved;
  }
});
