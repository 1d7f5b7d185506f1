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
import { until } from './fault-harness.js';
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
  const { dropped } = await dropExpiredHistory(ctx.database.db, mar, retention);
  t.ok(dropped.includes('usage_events_p2031_01') && dropped.includes('credit_ledger_p2031_01'), 'January dropped');
  t.notOk(dropped.some((d) => d.endsWith('2031_02') || d.endsWith('2031_03')), 'February and March kept');
  t.same((await dropExpiredHistory(ctx.database.db, mar, retention)).dropped, [], 'a second pass drops nothing');
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

t.test('events and their deliveries over three months: each in its event\'s month, delivered once however often re-run, a month dropped only when nothing in it is owed', async (t) => {
  const ctx = await setup(t, { WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' });
  const jan = new Date('2031-01-10T06:30:00Z');
  const feb = new Date('2031-02-10T06:30:00Z');
  const mar = new Date('2031-03-10T06:30:00Z');
  const made = await ensureHistoryPartitions(ctx.database.db, jan);
  for (const table of ['outbox', 'webhook_deliveries', 'email_deliveries']) {
    for (const month of ['2031_01', '2031_02', '2031_03']) t.ok(made.includes(`${table}_p${month}`), `${table}_p${month} made ahead`);
  }

  ctx.clock.set(jan);
  const account = await paidAccount(ctx, 100000);
  const hook = await ctx.call('POST', `/v1/accounts/${account.id}/webhook-endpoints`, { key: ctx.keys.write, body: { url: 'http://127.0.0.1:9/hook', eventTypes: [] } });
  t.equal(hook.status, 201);
  const adjust = (amount: number, key: string) =>
    ctx.call('POST', `/v1/accounts/${account.id}/credits/adjustments`, { body: { amount, reason: 'goodwill' }, headers: { 'idempotency-key': key } });
  ctx.clock.set(feb);
  t.equal((await adjust(5000, 'feb')).status, 201);
  ctx.clock.set(mar);
  t.equal((await adjust(7000, 'mar')).status, 201);

  const events = async () =>
    (await ctx.query(`select *, tableoid::regclass::text as part from outbox where account_id = $1 order by id`, [account.id])).rows.map((r) => ({
      id: Number(r.id), eventId: r.event_id as string, type: r.type as string, accountId: r.account_id as string, payload: r.payload,
      createdAt: r.created_at as Date, relayedAt: r.relayed_at as Date | null, handledAt: r.handled_at as Date | null, part: r.part as string,
    }));
  const all = await events();
  const monthOf = (e: { createdAt: Date }) => e.createdAt.toISOString().slice(0, 7).replace('-', '_');
  t.same([...new Set(all.map((e) => e.part))], ['outbox_p2031_01', 'outbox_p2031_02', 'outbox_p2031_03'], 'events in their months');

  // The relay's fan-out run twice for every event (a relay that died after its commit, a requeue): one delivery each.
  // In March, every delivery lands in its event's month.
  for (let round = 0; round < 2; round++) for (const e of all) await ctx.services.webhooks.fanOut(e);
  const deliveries = (await ctx.query(`select event_id, tableoid::regclass::text as part from webhook_deliveries where account_id = $1`, [account.id])).rows;
  t.equal(deliveries.length, all.length, 'one delivery per event, however often fanned out');
  for (const d of deliveries) t.equal(d.part, `webhook_deliveries_p${monthOf(all.find((e) => e.eventId === d.event_id)!)}`, `${d.event_id}'s delivery in its event's month`);

  // The upgrade's confirmation email, its job run twice: one send, its row in January.
  const { createNotificationsService } = await import('../src/modules/notifications/service.js');
  const sent: string[] = [];
  const notifications = createNotificationsService({ db: ctx.database.db, clock: ctx.clock, mailer: { send: async (m) => void sent.push(m.subject), close() {} } });
  const upgraded = all.find((e) => e.type === 'account.upgraded')!;
  t.same([await notifications.emailForEvent(upgraded), await notifications.emailForEvent(upgraded)], ['sent', 'already_sent']);
  t.equal(sent.length, 1, 'one email');
  t.same((await ctx.query(`select tableoid::regclass::text as part from email_deliveries where event_id = $1`, [upgraded.eventId])).rows, [{ part: 'email_deliveries_p2031_01' }]);
  await t.rejects(
    ctx.query(`insert into webhook_deliveries select * from webhook_deliveries where event_id = $1`, [upgraded.eventId]),
    { code: '23505' },
    'the (endpoint, event) key refuses a second row',
  );

  // Retention of one month, in March: January is past it, but its events are not handled yet and its deliveries pending.
  const retention = parseRetention('outbox=1,webhook_deliveries=1,email_deliveries=1,webhook_attempts=1');
  // (The empty months of the wall clock's year, made by the migration, go at once.)
  const of2031 = (names: string[]) => names.filter((n) => n.includes('2031'));
  const pass = async () => {
    const result = await dropExpiredHistory(ctx.database.db, mar, retention, ['outbox', 'webhook_deliveries', 'email_deliveries']);
    return { dropped: of2031(result.dropped), held: result.held.map((h) => `${h.partition} ${h.reason} ${h.rows ?? '-'}`) };
  };
  const januaryEvents = all.filter((e) => e.part === 'outbox_p2031_01').length;
  t.same(await pass(), {
    dropped: [],
    held: [
      `outbox_p2031_01 rows_still_owed ${januaryEvents}`,
      'webhook_deliveries_p2031_01 outbox_month_kept -',
      'email_deliveries_p2031_01 outbox_month_kept -',
    ],
  }, 'nothing of 2031 dropped while January owes something');

  // January's events handled, but their webhook deliveries still pending: the outbox month stays (an attempt builds its body from the event).
  await ctx.query(`update outbox set relayed_at = now(), handled_at = now() where created_at < '2031-02-01'`);
  t.same(await pass(), {
    dropped: [],
    held: [
      `outbox_p2031_01 webhook_deliveries_pending ${januaryEvents}`,
      'webhook_deliveries_p2031_01 outbox_month_kept -',
      'email_deliveries_p2031_01 outbox_month_kept -',
    ],
  });
  // Delivered (or given up): January goes, the outbox first, then the deliveries of its events.
  await ctx.query(`update webhook_deliveries set status = 'failed', next_attempt_at = null where event_created_at < '2031-02-01'`);
  t.same(await pass(), { dropped: ['outbox_p2031_01', 'webhook_deliveries_p2031_01', 'email_deliveries_p2031_01'], held: [] });
  t.same(
    (await historyPartitions(ctx.database.db, 'webhook_deliveries')).map((p) => p.name),
    ['webhook_deliveries_p2031_02', 'webhook_deliveries_p2031_03'],
  );

  // What is kept still deduplicates: February's and March's events fanned out again make nothing new.
  const left = await events();
  t.same(left.map((e) => e.part), all.filter((e) => e.part !== 'outbox_p2031_01').map((e) => e.part), 'February and March events kept');
  let again = 0;
  for (const e of left) again += await ctx.services.webhooks.fanOut(e);
  t.equal(again, 0, 'no second delivery after the drop');
  t.same((await ctx.services.credits.checkInvariants()).violations, []);
  const listed = await ctx.call('GET', `/v1/events?accountId=${account.id}&limit=100`, { key: ctx.keys.read });
  t.equal(listed.status, 200);
  t.equal(listed.body.data.length, left.length, 'GET /v1/events lists the months kept');

  // A delivery made pending again after its event is gone (a redelivery of an old one): it fails at once, saying why, not retried in silence.
  const orphan = left.find((e) => e.part === 'outbox_p2031_02')!;
  await ctx.query(`delete from outbox where event_id = $1`, [orphan.eventId]);
  const { rows: [delivery] } = await ctx.query(
    `update webhook_deliveries set status = 'pending', attempts = 0, next_attempt_at = now() - interval '1 minute', leased_until = null where event_id = $1 returning id`,
    [orphan.eventId],
  );
  t.equal(await ctx.services.webhooks.deliver(delivery.id, 1), 'failed');
  const settled = (await ctx.query(`select status, last_error from webhook_deliveries where id = $1`, [delivery.id])).rows[0];
  t.same(settled, { status: 'failed', last_error: 'the event is no longer kept (past the outbox retention)' });
  t.equal((await ctx.query(`select count(*)::int as n from webhook_attempts where delivery_id = $1`, [delivery.id])).rows[0].n, 1, 'the attempt is on record');
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
  const defaults = { usage_events: 13, credit_ledger: null, audit_events: 96, outbox: 3, webhook_deliveries: 3, webhook_attempts: 3, email_deliveries: 13 };
  t.same(parseRetention(''), defaults);
  t.same(parseRetention('usage_events=6, credit_ledger=96,webhook_attempts=keep'), { ...defaults, usage_events: 6, credit_ledger: 96, webhook_attempts: null });
  t.same(parseRetention('outbox=1,webhook_deliveries=1'), { ...defaults, outbox: 1, webhook_deliveries: 1 });
  // A delivery row is what stops an event still in the outbox from being delivered again: never kept for less.
  for (const bad of ['usage=3', 'usage_events=0', 'usage_events=-1', 'usage_events=x', 'usage_events', 'usage_events=6,usage_events=7', 'outbox=6', 'outbox=keep,email_deliveries=24', 'email_deliveries=2']) {
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
  // An event of September, delivered in October; an email whose event is gone.
  await client.query(`insert into outbox (event_id, type, account_id, payload, created_at, relayed_at, handled_at) values ('evt_old', 'credits.adjusted', 'acc_old', '{}', '2026-09-02T10:00:00.123456Z', '2026-09-02', '2026-09-02')`);
  await client.query(`insert into webhook_endpoints (id, account_id, url, event_types, status, secret, created_at, updated_at) values ('we_old', 'acc_old', 'https://hooks.example.in/x', '{}', 'enabled', 's', '2026-09-01', '2026-09-01')`);
  await client.query(`insert into webhook_deliveries (id, endpoint_id, account_id, event_id, event_type, delivery_class, status, attempts, give_up_at, created_at)
    values ('whd_old', 'we_old', 'acc_old', 'evt_old', 'credits.adjusted', 'standard', 'failed', 1, '2026-10-21', '2026-10-20')`);
  await client.query(`insert into webhook_attempts (delivery_id, attempted_at, status_code, latency_ms) values ('whd_old', '2026-10-20', 500, 12)`);
  await client.query(`insert into email_deliveries (id, event_id, template, account_id, "to", subject, created_at) values
    ('eml_old', 'evt_old', 'credits_adjusted', 'acc_old', 'old@example.in', 'Credits', '2026-10-20'),
    ('eml_orphan', 'evt_gone', 'credits_adjusted', 'acc_old', 'old@example.in', 'Credits', '2026-10-21')`);

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
  // 0027: the outbox by its time, a delivery by its event's (its own when the event is gone).
  t.equal((await client.query(`select tableoid::regclass::text as part from outbox`)).rows[0].part, 'outbox_p2026_09');
  t.same((await client.query(`select tableoid::regclass::text as part, event_created_at from webhook_deliveries`)).rows, [{ part: 'webhook_deliveries_p2026_09', event_created_at: new Date('2026-09-02T10:00:00.123Z') }]);
  // To the millisecond, as the service reads the event's time and writes it again when a re-run fans it out: the same key.
  t.equal((await client.query(`select count(*)::int as n from webhook_deliveries where event_created_at = '2026-09-02T10:00:00.123Z'`)).rows[0].n, 1);
  t.same((await client.query(`select id, tableoid::regclass::text as part from email_deliveries order by id`)).rows, [
    { id: 'eml_old', part: 'email_deliveries_p2026_09' },
    { id: 'eml_orphan', part: 'email_deliveries_p2026_10' },
  ]);
  t.equal((await client.query(`select count(*)::int as n from webhook_attempts`)).rows[0].n, 1, 'the attempt kept');
  const nextEvent = await client.query(`insert into outbox (event_id, type, account_id, payload, created_at) values ('evt_new', 'credits.adjusted', 'acc_old', '{}', now()) returning id`);
  t.equal(Number(nextEvent.rows[0].id), 2, 'the outbox id sequence goes on from the old table');
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

t.test('the hourly tasks run a minute after a worker starts too: a fleet restarted every half hour still keeps its months', async (t) => {
  const { maintenanceTasks, runPeriodically } = await import('../src/jobs/maintenance.js');
  const { createLogger } = await import('../src/lib/logger.js');
  const ctx = await setup(t);
  const tasks = maintenanceTasks({ db: ctx.database.db, clock: ctx.clock, ...ctx.services, queues: ctx.queues, schedulerIntervalMs: 1000 });
  for (const name of ['keep history partitions', 'purge expired idempotency records']) {
    const task = tasks.find((task) => task.name === name)!;
    t.ok(task.firstAfterMs !== undefined && task.firstAfterMs <= 60_000 && task.everyMs >= 10 * 60_000, `${name}: first after ${task.firstAfterMs} ms, then every ${task.everyMs} ms`);
  }
  // The runner honours it: an hourly task told to run first after 20 ms runs, and only once in that hour.
  const runs: number[] = [];
  const periodic = runPeriodically([{ name: 'hourly', everyMs: 3_600_000, firstAfterMs: 20, run: async () => void runs.push(Date.now()) }], createLogger(ctx.config));
  t.teardown(() => periodic.stop());
  await until(() => runs.length > 0, 'the first run', 10_000, 10);
  await periodic.stop();
  t.equal(runs.length, 1);
});
