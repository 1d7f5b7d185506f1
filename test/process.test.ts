import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import t, { type Test } from 'tap';
import { migratePostgres } from '../src/db/client.js';
import { adminUrl, createTestDatabase, scanKeys } from './helper.js';

const root = new URL('..', import.meta.url).pathname;

interface Running {
  child: ChildProcess;
  stderr: () => string;
  stdout: () => string;
  exit: Promise<number | null>;
}

function run(t: Test, entry: string, env: Record<string, string>, args: string[] = []): Running {
  const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !['DATABASE_URL', 'PORT', 'BOOTSTRAP_API_KEY'].includes(k)));
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, entry), ...args], {
    cwd: root,
    env: { ...cleanEnv, LOG_LEVEL: 'warn', NODE_ENV: 'development', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  let out = '';
  child.stderr!.on('data', (c) => (err += c));
  child.stdout!.on('data', (c) => (out += c));
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return { child, stderr: () => err, stdout: () => out, exit };
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

async function until<T>(fn: () => T | Promise<T>, what: string, ms = 30_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function withRedisCleanup(t: Test, prefix: string) {
  t.teardown(async () => {
    const redis = new Redis();
    const keys = await scanKeys(redis, `${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });
}

t.test('npm start on the embedded database: first ops key, /docs, plans, one process per data directory', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'billing-data-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const port = await freePort();
  const prefix = `bt-proc-${port}`;
  withRedisCleanup(t, prefix);
  const env = { DATA_DIR: dataDir, PORT: String(port), QUEUE_PREFIX: prefix };

  const first = run(t, 'src/main.ts', env);
  const key = await until(() => /bsk_[A-Za-z0-9_-]{43}/.exec(first.stderr())?.[0], 'the first ops key');
  await until(async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, 'the api');

  const plans = await fetch(`http://127.0.0.1:${port}/v1/plans`, { headers: { authorization: `Bearer ${key}` } });
  t.equal(plans.status, 200);
  t.same(((await plans.json()) as any).data.map((p: any) => p.code).sort(), ['enterprise', 'growth', 'starter']);
  const docs = await fetch(`http://127.0.0.1:${port}/docs/`);
  t.equal(docs.status, 200);
  t.equal((await fetch(`http://127.0.0.1:${port}/v1/plans`)).status, 401);

  const second = run(t, 'src/worker.ts', env);
  t.equal(await second.exit, 1, 'a second process on the same data directory refuses to start');
  t.match(second.stderr(), /in use by process \d+.*PGlite allows one process per data directory/);

  first.child.kill('SIGTERM');
  t.equal(await first.exit, 0, 'SIGTERM closes gracefully');

  // Started again on the same data: the data is kept and no second key is printed.
  const again = run(t, 'src/main.ts', { ...env, BOOTSTRAP_API_KEY: 'bsk_chosen-by-the-operator-0123456789abcdef' });
  await until(async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, 'the api again');
  t.notMatch(again.stderr(), /First ops API key/);
  for (const k of [key, 'bsk_chosen-by-the-operator-0123456789abcdef']) {
    const res = await fetch(`http://127.0.0.1:${port}/v1/billing-cycles`, { headers: { authorization: `Bearer ${k}` } });
    t.equal(res.status, 200, 'the old key and BOOTSTRAP_API_KEY both work');
  }
  again.child.kill('SIGTERM');
  t.equal(await again.exit, 0);
});

t.test('a bad configuration stops the process with one line naming the variable', async (t) => {
  const proc = run(t, 'src/server.ts', { PORT: 'not-a-port' });
  t.equal(await proc.exit, 1);
  t.match(proc.stderr().trim(), /^Invalid configuration: PORT: [^\n]*$/);
});

t.test('no Redis: the api starts all the same (a restart during an outage still serves), with one line that says how to provide one', async (t) => {
  const port = await freePort();
  const proc = run(t, 'src/server.ts', { REDIS_URL: 'redis://127.0.0.1:1', DATA_DIR: mkdtempSync(join(tmpdir(), 'billing-nr-')), PORT: String(port), QUEUE_PREFIX: `bt-nr-${port}` });
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
  const name = `billing_test_um_${Date.now()}`;
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
    const proc = run(t, entry, { DATABASE_URL: url, PORT: String(await freePort()), QUEUE_PREFIX: `bt-um-${Date.now()}` });
    t.equal(await proc.exit, 1, `${entry} exits`);
    t.match(proc.stderr().trim(), /^The database schema is behind this build \(0 of \d+ migrations applied; first missing: 0000_init\): run `npm run migrate` \(node dist\/migrate\.js\) against it, then start again\.$/, 'one line that says what to do');
    t.notMatch(proc.stdout(), /Server listening|relation .* does not exist/, 'never listened, no stack traces');
  }
  // Migrated, the same database starts.
  await migratePostgres(url);
  const port = await freePort();
  const proc = run(t, 'src/server.ts', { DATABASE_URL: url, PORT: String(port), QUEUE_PREFIX: `bt-um-${port}` });
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

t.test('two migrations at once are safe', async (t) => {
  const url = await createTestDatabase(t);
  // createTestDatabase migrated once already; roll back to empty and race two migrators.
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query('drop schema public cascade; create schema public; drop schema drizzle cascade');
  await Promise.all([migratePostgres(url), migratePostgres(url), migratePostgres(url)]);
  const { rows } = await client.query('select count(*)::int as n from drizzle.__drizzle_migrations');
  const plans = await client.query("select count(*)::int as n from plans where code = 'starter'");
  await client.end();
  t.ok(rows[0].n >= 3, 'each migration recorded once');
  t.equal(plans.rows[0].n, 1, 'the seed ran once');
});

t.test('keys:create makes a key and refuses bad scopes', async (t) => {
  const url = await createTestDatabase(t);
  const ok = run(t, 'src/cli/keys-create.ts', { DATABASE_URL: url }, ['--scopes', 'read,write', '--name', 'console']);
  let out = '';
  ok.child.stdout!.on('data', (c) => (out += c));
  t.equal(await ok.exit, 0);
  t.match(out.trim(), /^bsk_[A-Za-z0-9_-]{43}$/);
  const bad = run(t, 'src/cli/keys-create.ts', { DATABASE_URL: url }, ['--scopes', 'admin']);
  t.equal(await bad.exit, 2);
  t.match(bad.stderr(), /--scopes must list some of: read, write, kyc, ops/);
});
