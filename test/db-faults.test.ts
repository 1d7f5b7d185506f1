import pg from 'pg';
import t, { type Test } from 'tap';
import { sql } from 'drizzle-orm';
import { openPostgres } from '../src/db/client.js';
import { isConnectionError } from '../src/db/errors.js';
import { createLogger } from '../src/lib/logger.js';
import { createTestDatabase, paidAccount, setup } from './helper.js';

const logger = createLogger({ LOG_LEVEL: 'silent' });

async function until<T>(fn: () => Promise<T>, what: string, ms = 20_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A fresh database, the service's pool on it, and a plain session beside it (to kill backends, read settings). */
async function poolAndAdmin(t: Test, poolSize: number) {
  const url = await createTestDatabase(t);
  const database = openPostgres(url, poolSize, logger);
  t.teardown(() => database.close());
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  t.teardown(() => admin.end());
  return { url, database, admin };
}

t.test('a connection killed between two statements of a transaction fails that transaction, not the process; the pool recovers', async (t) => {
  const { database, admin } = await poolAndAdmin(t, 2);
  let uncaught: unknown;
  const onUncaught = (err: unknown) => (uncaught = err);
  process.on('uncaughtException', onUncaught);
  t.teardown(() => process.off('uncaughtException', onUncaught));

  const failed = await database.db
    .transaction(async (tx) => {
      const { rows } = (await tx.execute(sql`select pg_backend_pid() as pid`)) as unknown as { rows: Array<{ pid: number }> };
      await admin.query('select pg_terminate_backend($1)', [rows[0]!.pid]);
      // The socket closes a moment later: the next statement finds it dead.
      await until(async () => !(await admin.query('select 1 from pg_stat_activity where pid = $1', [rows[0]!.pid])).rowCount, 'the backend to go');
      await tx.execute(sql`select 1`);
    })
    .then(
      () => null,
      (err: unknown) => err,
    );
  t.ok(failed, 'the transaction failed');
  t.ok(isConnectionError(failed), `as a lost connection (${(failed as Error)?.message})`);
  // Give a late `error` event its chance to surface before asserting nothing was uncaught.
  await new Promise((r) => setImmediate(r));
  t.equal(uncaught, undefined, 'nothing uncaught');

  // More transactions than the pool has connections: none of them leaked.
  for (let i = 0; i < 5; i++) {
    const n = await database.db.transaction(async (tx) => (await tx.execute(sql`select 1 as n`)) as unknown as { rows: Array<{ n: number }> });
    t.equal(n.rows[0]!.n, 1, `transaction ${i + 1} after the kill`);
  }
});

t.test('killing every idle connection of the pool: the next queries simply reconnect', async (t) => {
  const { url, database, admin } = await poolAndAdmin(t, 3);
  await Promise.all([1, 2, 3].map(() => database.db.transaction((tx) => tx.execute(sql`select pg_sleep(0.01)`))));
  const name = new URL(url).pathname.slice(1);
  const killed = await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [name]);
  t.ok(killed.rowCount! >= 1, 'connections were killed');
  const ok = await until(
    () =>
      database.ping().then(
        () => true,
        () => false,
      ),
    'the pool to reconnect',
  );
  t.ok(ok);
  t.ok(await database.db.transaction(async (tx) => tx.execute(sql`select 1`)), 'transactions work again');
});

t.test('a request whose database connection is killed answers 503 database_unavailable with Retry-After, writes nothing, and a retry succeeds', async (t) => {
  const ctx = await setup(t);
  const account = await paidAccount(ctx, 100000);
  const before = (await ctx.query('select count(*)::int as n from credit_ledger where account_id = $1', [account.id])).rows[0].n;

  // Hold the account's row lock so the adjustment's transaction waits on it; then kill the waiting backend.
  const holder = new pg.Client({ connectionString: ctx.config.DATABASE_URL });
  await holder.connect();
  t.teardown(() => holder.end());
  await holder.query('begin');
  await holder.query('select id from accounts where id = $1 for update', [account.id]);
  const request = ctx.call('POST', `/v1/accounts/${account.id}/credits/adjustments`, {
    body: { amount: 5000, reason: 'goodwill' },
    headers: { 'idempotency-key': 'adj-killed' },
  });
  const waiting = await until(async () => {
    const { rows } = await holder.query("select pid from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database() and pid <> pg_backend_pid()");
    return rows[0]?.pid as number | undefined;
  }, 'the adjustment to wait on the lock');
  await holder.query('select pg_terminate_backend($1)', [waiting]);
  const res = await request;
  await holder.query('rollback');

  t.equal(res.status, 503);
  t.match(String(res.headers['content-type']), /^application\/problem\+json/);
  t.equal(res.body.code, 'database_unavailable');
  t.ok(Number(res.headers['retry-after']) > 0, 'Retry-After says when to try again');
  t.equal((await ctx.query('select count(*)::int as n from credit_ledger where account_id = $1', [account.id])).rows[0].n, before, 'nothing was written');

  const retry = await ctx.call('POST', `/v1/accounts/${account.id}/credits/adjustments`, {
    body: { amount: 5000, reason: 'goodwill' },
    headers: { 'idempotency-key': 'adj-killed' },
  });
  t.equal(retry.status, 201, 'the same request with the same key goes through');
  t.equal((await ctx.query('select count(*)::int as n from credit_ledger where account_id = $1', [account.id])).rows[0].n, before + 1, 'once');
});

t.test("the service's sessions run without JIT, so the ledger check over the partitioned history is not compiled each time", async (t) => {
  const { database, admin } = await poolAndAdmin(t, 2);
  t.comment(`a plain session of this server: jit = ${(await admin.query('show jit')).rows[0].jit} (Postgres's default is on)`);
  const jitOf = async (run: (query: ReturnType<typeof sql>) => Promise<unknown>) => ((await run(sql`select current_setting('jit') as jit`)) as { rows: Array<{ jit: string }> }).rows[0]!.jit;
  t.equal(await jitOf((q) => database.db.execute(q)), 'off', "the pool's sessions have it off");
  t.equal(await database.db.transaction((tx) => jitOf((q) => tx.execute(q))), 'off', 'transactions too');
});
