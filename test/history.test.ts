/**
 * Partitioned history (migration 0026, src/db/history.ts): usage events, ledger entries, audit
 * events and webhook attempts live in monthly partitions; the workers make months ahead and
 * drop whole months past retention; uniqueness holds across months; the ledger's invariants
 * hold after a dropped month (carried as a sum per account).
 */
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import t from 'tap';
import { migratePostgres, migrationsFolder } from '../src/db/client.js';
import { dropExpiredHistory, ensureHistoryPartitions, historyPartitions, monthStart, parseRetention } from '../src/db/history.js';
import { loadConfig } from '../src/config.js';
import { adminUrl, paidAccount, setup } from './helper.js';

const sms = (accountId: string, id: string) => ({ id, accountId, type: 'sms', segments: 1 });

/** The partition each row of `table` sits in, by id column. */
async function placement(query: (text: string, params?: unknown[]) => Promise<pg.QueryResult<any>>, table: string, idColumn: string, accountId: string) {
  const rows = await query(`select ${idColumn}::text as id, tableoid::regclass::text as part from ${table} where account_id = $1`, [accountId]);
  return Object.fromEntries(rows.rows.map((r) => [r.id, r.part]));
}

t.test('three months of usage: months made ahead, ids unique across months, the oldest dropped by retention, invariants hold', async (t) => {
  const ctx = await setup(t);
  const jan = new Date('2031-01-10T06:30:00Z');
  const feb = new Date('2031-02-10T06:30:00Z');
  const mar = new Date('2031-03-10T06:30:00Z');

  // The workers' pass for January makes January to March (two ahead) for every history table.
  const made = await ensureHistoryPartitions(ctx.database.db, jan);
  for (const table of ['usage_events', 'credit_ledger', 'audit_events', 'webhook_attempts']) {
    for (const month of ['2031_01', '2031_02', '2031_03']) t.ok(made.includes(`${table}_p${month}`), `${table}_p${month} made ahead`);
  }
  // Idempotent, and two workers at once agree.
  const again = await Promise.all([ensureHistoryPartitions(ctx.database.db, jan), ensureHistoryPartitions(ctx.database.db, jan)]);
  t.same(again[0], made, 'a second pass finds the same months');

  ctx.clock.set(jan);
  const account = await paidAccount(ctx, 100000);
  const rate = async (ids: string[]) => {
    const res = await ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: { events: ids.map((id) => sms(account.id, id)) } });
    t.equal(res.status, 200);
    return res.body.results as Array<{ id: string; status: string; duplicate: boolean; amount: number }>;
  };
  const inJan = await rate(['jan-1', 'jan-2', 'jan-3']);
  t.same(inJan.map((r) => r.status), ['debited', 'debited', 'debited']);
  ctx.clock.set(feb);
  await rate(['feb-1', 'feb-2']);
  ctx.clock.set(mar);
  await rate(['mar-1']);

  const usage = await placement(ctx.query, 'usage_events', 'id', account.id);
  t.equal(usage['jan-1'], 'usage_events_p2031_01');
  t.equal(usage['feb-1'], 'usage_events_p2031_02');
  t.equal(usage['mar-1'], 'usage_events_p2031_03');
  const ledgerParts = (await ctx.query(`select distinct tableoid::regclass::text as part from credit_ledger where account_id = $1 order by 1`, [account.id])).rows.map((r) => r.part);
  t.same(ledgerParts, ['credit_ledger_p2031_01', 'credit_ledger_p2031_02', 'credit_ledger_p2031_03'], 'ledger entries in their months');

  const balance = async () => (await ctx.call('GET', `/v1/accounts/${account.id}/credits`, { key: ctx.keys.read })).body.balance as number;
  const before = await balance();
  const count = async (table: string) => Number((await ctx.query(`select count(*) from ${table} where account_id = $1`, [account.id])).rows[0].count);
  const [usageRows, ledgerRows] = [await count('usage_events'), await count('credit_ledger')];

  // In March, January's and February's ids are still known: duplicates, nothing debited.
  const replay = await rate(['jan-2', 'feb-1', 'mar-1']);
  t.same(replay.map((r) => r.duplicate), [true, true, true], 'ids of earlier months answer as duplicates');
  t.equal(await balance(), before, 'no second debit');
  t.equal(await count('usage_events'), usageRows);
  t.equal(await count('credit_ledger'), ledgerRows);

  // A payment's source key cannot come again in another month (the trigger), nor in its own (the index).
  const payment = (await ctx.query(`select source_key, amount, balance_after from credit_ledger where account_id = $1 and source_key like 'payment:%'`, [account.id])).rows[0];
  for (const at of [mar, jan]) {
    await t.rejects(
      ctx.query(
        `insert into credit_ledger (account_id, kind, amount, currency, balance_after, source_key, description, created_at) values ($1, 'upgrade', $2, 'INR', $3, $4, 'again', $5)`,
        [account.id, payment.amount, payment.balance_after, payment.source_key, at],
      ),
      { code: '23505' },
      `a second ${payment.source_key} in ${at.toISOString().slice(0, 7)} is refused`,
    );
  }

  // Retention of one month in March: every month that ended by February 1 goes, January among them.
  const retention = parseRetention('usage_events=1,credit_ledger=1,audit_events=1,webhook_attempts=1');
  const dropped = await dropExpiredHistory(ctx.database.db, mar, retention);
  t.ok(dropped.includes('usage_events_p2031_01') && dropped.includes('credit_ledger_p2031_01'), 'January dropped');
  t.notOk(dropped.some((d) => d.endsWith('2031_02') || d.endsWith('2031_03')), 'February and March kept');
  t.same(await dropExpiredHistory(ctx.database.db, mar, retention), [], 'a second pass drops nothing');
  const left = await historyPartitions(ctx.database.db, 'usage_events');
  t.same(left.map((p) => p.name), ['usage_events_p2031_02', 'usage_events_p2031_03']);

  // The ledger still adds up: January's entries (the upgrade's credit, three debits) carried as one sum.
  const carried = (await ctx.query(`select amount, entries, through from credit_ledger_carried where account_id = $1`, [account.id])).rows[0];
  t.equal(Number(carried.entries), 4, 'four January entries carried');
  t.equal(new Date(carried.through).toISOString(), '2031-02-01T00:00:00.000Z');
  t.equal(await balance(), before, 'the balance is untouched');
  const { violations } = await ctx.services.credits.checkInvariants();
  t.same(violations, [], 'ledger invariants hold after the drop');

  // Deduplication still holds for the months kept, and new usage lands in March.
  const after = await rate(['feb-2', 'mar-1', 'mar-2']);
  t.same(after.map((r) => [r.duplicate, r.status]), [[true, 'debited'], [true, 'debited'], [false, 'debited']]);
  t.equal(await balance(), before - after[2]!.amount, 'one new debit only');
  t.same((await ctx.services.credits.checkInvariants()).violations, []);
  const ledger = await ctx.call('GET', `/v1/accounts/${account.id}/credits/ledger`, { key: ctx.keys.read });
  t.equal(ledger.status, 200, 'the ledger lists what is kept');
});

t.test('a row past the months made waits in the DEFAULT partition and moves into its month when the month is made', async (t) => {
  const ctx = await setup(t);
  ctx.clock.set(new Date('2033-07-04T00:00:00Z'));
  const account = await paidAccount(ctx, 100000);
  await ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: { events: [sms(account.id, 'far-1')] } });
  t.equal((await placement(ctx.query, 'usage_events', 'id', account.id))['far-1'], 'usage_events_default');
  await ensureHistoryPartitions(ctx.database.db, new Date('2033-07-01T00:00:00Z'), 0);
  t.equal((await placement(ctx.query, 'usage_events', 'id', account.id))['far-1'], 'usage_events_p2033_07', 'moved into July');
  const ledger = (await ctx.query(`select tableoid::regclass::text as part from credit_ledger where account_id = $1`, [account.id])).rows.map((r) => r.part);
  t.ok(ledger.length >= 2 && ledger.every((p) => p === 'credit_ledger_p2033_07'), 'ledger rows moved too (the append-only trigger lets only this move through)');
  await t.rejects(ctx.query(`delete from credit_ledger where account_id = $1`, [account.id]), { code: 'P0001' }, 'the ledger stays append-only');
  // The move's own switch opens only the DEFAULT partition's rows, not a month's.
  await t.rejects(
    ctx.query(`do $$ begin perform set_config('billing.moving_history', 'on', true); delete from credit_ledger where account_id = '${account.id}'; end $$`),
    { code: 'P0001' },
    'setting the move switch by hand does not open a month to deletes',
  );
  // Bounds are UTC whatever the session's DateStyle and TimeZone (%L of a timestamptz follows them).
  await ctx.query(
    `do $$ begin perform set_config('datestyle', 'SQL, DMY', true); perform set_config('timezone', 'Asia/Kolkata', true); perform billing_history_partition('audit_events', '2034-03-15T00:00:00Z'); end $$`,
  );
  await ctx.query(`insert into audit_events (at, actor_key_id, action, details) values ('2034-03-31T23:30:00Z', 'k', 'edge', '{}'), ('2034-04-01T00:30:00Z', 'k', 'edge', '{}')`);
  const edges = (await ctx.query(`select at, tableoid::regclass::text as part from audit_events where action = 'edge' order by at`)).rows.map((r) => r.part);
  t.same(edges, ['audit_events_p2034_03', 'audit_events_default'], 'March ends at midnight UTC, made from an IST session with DMY dates');
  const dup = await ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: { events: [sms(account.id, 'far-1')] } });
  t.equal(dup.body.results[0].duplicate, true);
  t.same((await ctx.services.credits.checkInvariants()).violations, []);
});

t.test('HISTORY_RETENTION_MONTHS: per table over the defaults, bad values refused at start', async (t) => {
  t.same(parseRetention(''), { usage_events: 13, credit_ledger: null, audit_events: 96, webhook_attempts: 3 });
  t.same(parseRetention('usage_events=6, credit_ledger=96,webhook_attempts=keep'), { usage_events: 6, credit_ledger: 96, audit_events: 96, webhook_attempts: null });
  for (const bad of ['usage=3', 'usage_events=0', 'usage_events=-1', 'usage_events=x', 'usage_events', 'usage_events=6,usage_events=7']) {
    t.throws(() => loadConfig({ HISTORY_RETENTION_MONTHS: bad }), `${bad} refused`);
  }
  t.equal(monthStart(new Date('2031-03-31T23:59:59Z'), -1).toISOString(), '2031-02-01T00:00:00.000Z');
});

t.test('the migration moves existing rows into their months and the id sequences go on', async (t) => {
  // An empty database (the test databases are clones of one already migrated).
  const name = `${process.env.TEST_DATABASE_PREFIX ?? 'billing_test'}_premig_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  t.teardown(async () => {
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.end();
  });
  const url = adminUrl.replace(/\/[^/?]*(\?|$)/, `/${name}$1`);
  // Migrate to 0025 from a copy of the folder whose journal stops there.
  const dir = mkdtempSync(join(tmpdir(), 'migrations-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(migrationsFolder, dir, { recursive: true });
  const journal = JSON.parse(readFileSync(join(dir, 'meta', '_journal.json'), 'utf8'));
  journal.entries = journal.entries.filter((e: { tag: string }) => e.tag < '0026');
  writeFileSync(join(dir, 'meta', '_journal.json'), JSON.stringify(journal));
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  t.teardown(() => client.end());
  await migrate(drizzle(client), { migrationsFolder: dir });

  await client.query(`insert into accounts (id, name, email, country, currency, status, kyc_status, plan_id, created_at, updated_at)
    values ('acc_old', 'Old', 'old@example.in', 'IN', 'INR', 'active', 'approved', 'plan_starter_v1', '2026-09-01', '2026-09-01')`);
  await client.query(`insert into credit_ledger (account_id, kind, amount, currency, balance_after, source_key, description, created_at) values
    ('acc_old', 'adjustment', 50000, 'INR', 50000, 'adjustment:a1', 'opening', '2026-09-02'),
    ('acc_old', 'usage', -25, 'INR', 49975, 'usage:acc_old:e1', 'sms', '2026-10-15')`);
  await client.query(`insert into credit_balances (account_id, currency, balance, updated_at) values ('acc_old', 'INR', 49975, '2026-10-15')`);
  await client.query(`insert into usage_events (id, account_id, type, units, amount, status, balance_after, created_at) values ('e1', 'acc_old', 'sms', 1, 25, 'debited', 49975, '2026-10-15')`);
  await client.query(`insert into audit_events (at, actor_key_id, action, account_id, details) values ('2026-09-02', 'key_x', 'credits.adjust', 'acc_old', '{}')`);

  await migratePostgres(url);
  const parts = await client.query(`select tableoid::regclass::text as part, source_key from credit_ledger order by id`);
  t.same(parts.rows, [
    { part: 'credit_ledger_p2026_09', source_key: 'adjustment:a1' },
    { part: 'credit_ledger_p2026_10', source_key: 'usage:acc_old:e1' },
  ]);
  t.equal((await client.query(`select tableoid::regclass::text as part from usage_events`)).rows[0].part, 'usage_events_p2026_10');
  t.equal((await client.query(`select tableoid::regclass::text as part from audit_events`)).rows[0].part, 'audit_events_p2026_09');
  const next = await client.query(`insert into credit_ledger (account_id, kind, amount, currency, balance_after, source_key, description, created_at)
    values ('acc_old', 'usage', -25, 'INR', 49950, 'usage:acc_old:e2', 'sms', now()) returning id`);
  t.equal(Number(next.rows[0].id), 3, 'the ledger id sequence goes on from the old table');
  const months = (await client.query(`select count(*) from pg_inherits where inhparent = 'usage_events'::regclass`)).rows[0].count;
  t.ok(Number(months) >= 5, `months from October to two ahead, and DEFAULT (${months})`);
});

t.test("the workers' hourly task makes the months ahead and drops those past the configured retention", async (t) => {
  const ctx = await setup(t, { HISTORY_RETENTION_MONTHS: 'webhook_attempts=1' });
  const now = new Date();
  const old = monthStart(now, -3);
  await ctx.query(`select billing_history_partition('webhook_attempts', $1)`, [old]);
  await ctx.query(`select billing_history_partition('usage_events', $1)`, [old]);
  const { maintenanceTasks } = await import('../src/jobs/maintenance.js');
  const task = maintenanceTasks({ db: ctx.database.db, clock: ctx.clock, ...ctx.services, queues: ctx.queues, schedulerIntervalMs: 1000, historyRetention: ctx.config.HISTORY_RETENTION_MONTHS }).find(
    (task) => task.name === 'keep history partitions',
  )!;
  t.ok(task, 'the task is among the maintenance tasks');
  const result = (await task.run()) as { dropped: string[] };
  const name = (table: string, at: Date) => `${table}_p${at.toISOString().slice(0, 7).replace('-', '_')}`;
  t.ok(result.dropped.includes(name('webhook_attempts', old)), `${name('webhook_attempts', old)} dropped (retention 1 month)`);
  const usageMonths = (await historyPartitions(ctx.database.db, 'usage_events')).map((p) => p.name);
  t.ok(usageMonths.includes(name('usage_events', old)), 'usage_events keeps it (13 months by default)');
  t.ok(usageMonths.includes(name('usage_events', monthStart(now, 2))), 'two months ahead made');
});
