import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import t from 'tap';
import { migratePostgres } from '../src/db/client.js';
import { adminUrl, ownQueuePrefix, prefix } from './helper.js';
import { freePort, run, until } from './processes.js';

// Starting the api and workers against what they depend on: a missing Redis, a schema behind the build.

// Processes start slowly on a busy machine (each compiles its TypeScript): more than tap's default per file.
t.setTimeout(300_000);

t.test('no Redis: the api starts all the same (a restart during an outage still serves), with one line that says how to provide one', async (t) => {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'billing-nr-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const proc = run(t, 'src/server.ts', { REDIS_URL: 'redis://127.0.0.1:1', DATA_DIR: dataDir, PORT: String(port), QUEUE_PREFIX: ownQueuePrefix(t, 'nr') });
  await until(async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, 'the api without Redis');
  t.match(proc.stdout(), /Redis does not answer at redis:\/\/127\.0\.0\.1:1: start one .* or set REDIS_URL.*Starting without it/, 'logged');
  const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
  t.equal(ready.status, 200);
  t.same(await ready.json(), { status: 'degraded', checks: { postgres: 'ok', schema: 'ok', redis: 'failed' } });
  proc.child.kill('SIGTERM');
  t.equal(await proc.exit, 0, 'and closes cleanly');
});


t.test('an api or worker on a database whose migrations are behind stops at start with one line naming npm run migrate', async (t) => {
  // An empty database, never migrated.
  const name = `${prefix}_um_${Date.now()}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  t.teardown(async () => {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    await c.query(`drop database if exists ${name} with (force)`);
    await c.end();
  });
  const url = adminUrl.replace(/\/[^/?]*(\?|$)/, `/${name}$1`);
  for (const entry of ['src/server.ts', 'src/worker.ts']) {
    const proc = run(t, entry, { DATABASE_URL: url, PORT: String(await freePort()), QUEUE_PREFIX: ownQueuePrefix(t, 'um') });
    t.equal(await proc.exit, 1, `${entry} exits`);
    t.match(proc.stderr().trim(), /^The database schema is behind this build \(0 of \d+ migrations applied; first missing: 0000_init\): run `npm run migrate` \(node dist\/migrate\.js\) against it, then start again\.$/, 'one line that says what to do');
    t.notMatch(proc.stdout(), /Server listening|relation .* does not exist/, 'never listened, no stack traces');
  }
  // Migrated, the same database starts.
  await migratePostgres(url);
  const port = await freePort();
  const proc = run(t, 'src/server.ts', { DATABASE_URL: url, PORT: String(port), QUEUE_PREFIX: ownQueuePrefix(t, 'um') });
  await until(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok, 'the api on the migrated database');
  // A migration this build knows but the database lost (a restore from an older backup): /readyz says not ready.
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query('delete from drizzle.__drizzle_migrations where created_at = (select max(created_at) from drizzle.__drizzle_migrations)');
  await client.end();
  const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
  t.equal(ready.status, 503);
  t.match(((await ready.json()) as { detail: string }).detail, /schema: failed/);
  proc.child.kill('SIGTERM');
  t.equal(await proc.exit, 0);
});

