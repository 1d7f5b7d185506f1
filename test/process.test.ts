import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import t from 'tap';
import { migratePostgres } from '../src/db/client.js';
import { createTestDatabase, ownQueuePrefix } from './helper.js';
import { freePort, run, until } from './processes.js';


// Processes start slowly on a busy machine (each compiles its TypeScript): more than tap's default per file.
t.setTimeout(300_000);

t.test('npm start on the embedded database: first ops key, /docs, plans, one process per data directory', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'billing-data-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const port = await freePort();
  const prefix = ownQueuePrefix(t, 'proc');
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

t.test('SIGTERM to `npm start` itself (a service manager, kill <pid>) stops the service, not only npm', async (t) => {
  const { spawn } = await import('node:child_process');
  const { root } = await import('./processes.js');
  const dataDir = mkdtempSync(join(tmpdir(), 'billing-data-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const port = await freePort();
  const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !['DATABASE_URL', 'PORT', 'BOOTSTRAP_API_KEY'].includes(k) && !k.startsWith('npm_')));
  const npm = spawn('npm', ['start'], { cwd: root, env: { ...cleanEnv, DATA_DIR: dataDir, PORT: String(port), QUEUE_PREFIX: ownQueuePrefix(t, 'npm'), LOG_LEVEL: 'warn' }, stdio: 'ignore', detached: true });
  // Whatever happens, nothing of it outlives the test (its process group).
  t.teardown(() => {
    try {
      process.kill(-npm.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  });
  await until(async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, 'the api under npm start');
  npm.kill('SIGTERM');
  await until(async () => !(await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false)), 'the api to stop answering', 30_000);
  // The service's node process (npm's child) has exited: nothing is left in npm's process group.
  await until(() => {
    try {
      process.kill(-npm.pid!, 0);
      return false;
    } catch {
      return true;
    }
  }, 'every process of npm start to exit', 30_000);
  t.pass('npm and the service it ran both exited');
});

t.test('a bad configuration stops the process with one line naming the variable', async (t) => {
  const proc = run(t, 'src/server.ts', { PORT: 'not-a-port' });
  t.equal(await proc.exit, 1);
  t.match(proc.stderr().trim(), /^Invalid configuration: PORT: [^\n]*$/);
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
  t.match(ok.stderr(), /^created key_\S+ with scopes read,write; the key is not shown again\n$/, 'the note on stderr');
  const json = run(t, 'src/cli/keys-create.ts', { DATABASE_URL: url }, ['--scopes', 'read', '--json']);
  t.equal(await json.exit, 0);
  const shown = JSON.parse(json.stdout()); // the JSON alone: a line after it would not parse
  t.match(shown, { key: /^bsk_/, id: /^key_/, scopes: ['read'], name: 'cli' });
  t.equal(json.stderr(), '', '--json: nothing else, on stderr either');
  const bad = run(t, 'src/cli/keys-create.ts', { DATABASE_URL: url }, ['--scopes', 'admin']);
  t.equal(await bad.exit, 2);
  t.match(bad.stderr(), /--scopes must list some of: read, write, kyc, ops/);
  const help = run(t, 'src/cli/keys-create.ts', { DATABASE_URL: url }, ['--help']);
  t.equal(await help.exit, 0);
  t.match(help.stdout(), /^usage: npm run keys:create -- --scopes/);
});
