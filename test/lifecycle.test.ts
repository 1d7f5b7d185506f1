import { entryArgv } from './processes.js';
import t, { type Test } from 'tap';
import { createLogger } from '../src/lib/logger.js';
import { createSmtpMailer } from '../src/modules/notifications/mailer.js';
import { startWorkers } from '../src/workers.js';
import { allEventsHandled, approveKyc, scanKeys, setup, type TestContext } from './helper.js';
import { smtpReceiver } from './smtp.js';

const env = { TEST_CLOCKS_ENABLED: 'true', SCHEDULER_INTERVAL_MS: '50', OUTBOX_POLL_MS: '50', PRE_DEBIT_NOTICE_HOURS: '0' };

async function until(what: string, fn: () => Promise<boolean>, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The app, two real worker sets (BullMQ workers, scheduler, relay), an SMTP server and a test clock. */
async function world(t: Test, opts: { start?: string; workers?: number } = {}) {
  const smtp = await smtpReceiver(t);
  const ctx = await setup(t, env);
  const logger = createLogger({ LOG_LEVEL: 'silent' });
  for (let i = 0; i < (opts.workers ?? 1); i++) {
    const mailer = createSmtpMailer(smtp.url, 'Billing <billing@test.example>');
    const workers = await startWorkers({ config: ctx.config, logger, database: ctx.database, redis: ctx.redis, queues: ctx.queues, clock: ctx.clock }, { mailer });
    t.teardown(() => workers.close());
  }
  const clock = (await ctx.call('POST', '/v1/test-clocks', { body: { name: 'lifecycle', frozenTime: opts.start ?? '2026-01-31T09:30:00Z' } })).body;
  const advance = async (to: string) => {
    const res = await ctx.call('POST', `/v1/test-clocks/${clock.id}/advance`, { body: { frozenTime: to } });
    if (res.status !== 200 || res.body.status !== 'ready') throw new Error(`advance to ${to}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const subscribe = async (plan: string, cycle: string, token = 'tok_visa', country = 'IN') => {
    const account = (await ctx.call('POST', '/v1/accounts', { body: { name: 'Acme', email: `${plan}-${Math.random()}@acme.example`, country, testClockId: clock.id } })).body;
    await approveKyc(ctx, account.id);
    const minimum = (await ctx.call('GET', `/v1/plans/${plan}`)).body.prices.find((p: any) => p.currency === account.currency).minInitialCredits;
    const res = await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, {
      body: { planId: plan, billingCycle: cycle, initialCredits: minimum, paymentMethod: { type: 'card', token } },
      headers: { 'idempotency-key': `up-${account.id}` },
    });
    if (res.status !== 201) throw new Error(`upgrade: ${res.status} ${JSON.stringify(res.body)}`);
    return { account: res.body.account, subscription: res.body.subscription };
  };
  const mailsTo = (email: string) => smtp.received.filter((r) => r.to.includes(email));
  return { ctx, smtp, clock, advance, subscribe, mailsTo };
}

async function readyAccountOn(ctx: TestContext, testClockId: string): Promise<string> {
  const account = (await ctx.call('POST', '/v1/accounts', { body: { name: 'C', email: `c${Math.random()}@example.com`, country: 'IN', testClockId } })).body;
  await approveKyc(ctx, account.id);
  return account.id;
}

const invoicesOf = (ctx: TestContext, accountId: string) =>
  ctx.query('select kind, status, plan_id, billing_cycle, period_start, period_end, subtotal, tax_amount, total from invoices where account_id = $1 order by period_start', [accountId]).then((r) => r.rows);

t.test('a downgrade scheduled mid-period applies exactly at the period end, with new entitlements and a correct invoice', async (t) => {
  const w = await world(t);
  const { account, subscription } = await w.subscribe('plan_growth_v1', 'monthly');
  t.same(subscription.currentPeriod, { start: '2026-01-31T09:30:00.000Z', end: '2026-02-28T09:30:00.000Z' }, 'Jan 31 -> Feb 28');

  await w.advance('2026-02-10T00:00:00Z');
  const change = await w.ctx.call('POST', `/v1/subscriptions/${subscription.id}/plan-change`, { body: { planId: 'plan_starter_v1' } });
  t.equal(change.status, 200);
  t.equal(change.body.effectiveAt, '2026-02-28T09:30:00.000Z');
  t.ok(change.body.entitlementChanges.some((c: any) => c.entitlement === 'callRecording.retentionDays' && c.from === 90 && c.to === 30));
  t.ok(change.body.entitlementChanges.some((c: any) => c.entitlement === 'exophones.limit' && c.from === 20 && c.to === 5));
  t.same(
    change.body.conflicts.map((c: any) => c.code),
    ['retention_reduced', 'feature_removed', 'feature_removed', 'feature_removed', 'feature_removed'],
    'retention 90 -> 30 days; WhatsApp, campaigns, contact center, analytics go down',
  );
  t.equal((await w.ctx.call('POST', `/v1/subscriptions/${subscription.id}/plan-change`, { body: { planId: 'plan_growth_v1' } })).body.code, 'plan_unchanged');

  await w.advance('2026-02-28T09:29:59Z');
  t.equal((await w.ctx.call('GET', `/v1/accounts/${account.id}/entitlements`)).body.plan.code, 'growth', 'not a second early');
  t.equal((await invoicesOf(w.ctx, account.id)).length, 1);

  await w.advance('2026-02-28T09:30:00Z');
  const ent = (await w.ctx.call('GET', `/v1/accounts/${account.id}/entitlements`)).body;
  t.equal(ent.plan.code, 'starter', 'the downgrade applied at the period end');
  t.equal(ent.entitlements.callRecording.retentionDays, 30);
  const sub = (await w.ctx.call('GET', `/v1/subscriptions/${subscription.id}`)).body;
  t.same(sub.currentPeriod, { start: '2026-02-28T09:30:00.000Z', end: '2026-03-31T09:30:00.000Z' }, 'Feb 28 -> Mar 31: the anchor day comes back');
  t.equal(sub.scheduledChange, null);
  const invoices = await invoicesOf(w.ctx, account.id);
  t.equal(invoices.length, 2);
  t.same(
    [invoices[1].kind, invoices[1].status, invoices[1].plan_id, invoices[1].subtotal, invoices[1].tax_amount, invoices[1].total],
    ['renewal', 'paid', 'plan_starter_v1', '250000', '45000', '295000'],
    'Starter monthly: 2,500.00 + 18% GST, charged to the saved card',
  );
  const balance = await w.ctx.query('select balance from credit_balances where account_id = $1', [account.id]);
  t.equal(Number(balance.rows[0].balance), 500000, 'credits carry over untouched');
  await until('the renewal email', async () => w.mailsTo(account.email).some((m) => m.raw.includes('Your subscription renewed')));
});

t.test('a billing-cycle switch applies at the renewal', async (t) => {
  const w = await world(t, { start: '2026-03-15T12:00:00Z' });
  const { account, subscription } = await w.subscribe('plan_starter_v1', 'monthly');
  t.equal((await w.ctx.call('POST', `/v1/subscriptions/${subscription.id}/billing-cycle`, { key: w.ctx.keys.write, body: { billingCycle: 'annual' } })).status, 403, 'ops only');
  const switched = await w.ctx.call('POST', `/v1/subscriptions/${subscription.id}/billing-cycle`, { body: { billingCycle: 'annual' } });
  t.same(switched.body.scheduledChange, { planId: null, billingCycle: 'annual', effectiveAt: '2026-04-15T12:00:00.000Z' });
  await w.advance('2026-04-15T12:00:00Z');
  const sub = (await w.ctx.call('GET', `/v1/subscriptions/${subscription.id}`)).body;
  t.equal(sub.billingCycle, 'annual');
  t.same(sub.currentPeriod, { start: '2026-04-15T12:00:00.000Z', end: '2027-04-15T12:00:00.000Z' });
  const invoices = await invoicesOf(w.ctx, account.id);
  // 250000 x 12 x 0.85 = 2550000, + 18% = 3009000.
  t.same([invoices[1].billing_cycle, invoices[1].subtotal, invoices[1].total], ['annual', '2550000', '3009000']);
});

t.test('a cancellation ends at the period end and limits the account; a withdrawn one renews normally', async (t) => {
  const w = await world(t, { start: '2026-05-01T00:00:00Z' });
  const leaving = await w.subscribe('plan_starter_v1', 'monthly');
  const staying = await w.subscribe('plan_starter_v1', 'monthly');
  t.equal((await w.ctx.call('POST', `/v1/subscriptions/${leaving.subscription.id}/cancel`)).body.cancelAtPeriodEnd, true);
  await w.ctx.call('POST', `/v1/subscriptions/${staying.subscription.id}/cancel`);
  const resumed = await w.ctx.call('POST', `/v1/subscriptions/${staying.subscription.id}/resume`);
  t.equal(resumed.body.cancelAtPeriodEnd, false);
  t.equal((await w.ctx.call('POST', `/v1/subscriptions/${staying.subscription.id}/resume`)).body.code, 'subscription_not_cancelling');

  await w.advance('2026-05-20T00:00:00Z');
  t.equal((await w.ctx.call('GET', `/v1/accounts/${leaving.account.id}`)).body.status, 'active', 'active until the period end');
  await w.advance('2026-06-01T00:00:00Z');
  const gone = (await w.ctx.call('GET', `/v1/accounts/${leaving.account.id}`)).body;
  t.equal(gone.status, 'limited');
  t.equal((await w.ctx.call('GET', `/v1/accounts/${leaving.account.id}/entitlements`)).body.outbound, 'blocked', 'no outbound calls or SMS');
  t.equal((await w.ctx.call('GET', `/v1/subscriptions/${leaving.subscription.id}`)).body.status, 'cancelled');
  const ended = await w.ctx.call('GET', `/v1/accounts/${leaving.account.id}/subscription`);
  t.same([ended.status, ended.body.id, ended.body.status, typeof ended.body.endedAt], [200, leaving.subscription.id, 'cancelled', 'string'], 'the account\'s subscription is the one that ended');
  t.equal((await invoicesOf(w.ctx, leaving.account.id)).length, 1, 'no renewal invoice');
  t.equal((await w.ctx.call('GET', `/v1/accounts/${staying.account.id}`)).body.status, 'active');
  t.equal((await invoicesOf(w.ctx, staying.account.id)).length, 2, 'the resumed one renewed');

  // A limited account may subscribe again; its kept credits are still there.
  const again = await w.ctx.call('POST', `/v1/accounts/${leaving.account.id}/upgrade`, {
    body: { planId: 'plan_growth_v1', billingCycle: 'monthly', initialCredits: 500000, paymentMethod: { type: 'card', token: 'tok_visa' } },
    headers: { 'idempotency-key': 'come-back' },
  });
  t.equal(again.status, 201);
  t.equal(again.body.account.status, 'active');
  const balance = await w.ctx.query('select balance from credit_balances where account_id = $1', [leaving.account.id]);
  t.equal(Number(balance.rows[0].balance), 100000 + 500000, 'kept credits plus the new ones');
  await until('the cancellation emails', async () => w.mailsTo(leaving.account.email).filter((m) => /will end|has ended/.test(m.raw)).length === 2);
});

t.test('a renewal declined every time: past_due, retries after 1, 3 and 7 days, then limited, with four emails', async (t) => {
  const w = await world(t, { start: '2026-07-01T00:00:00Z' });
  const { account, subscription } = await w.subscribe('plan_starter_v1', 'monthly', 'tok_chargeCustomerFail');
  await w.advance('2026-08-01T00:00:00Z');
  t.equal((await w.ctx.call('GET', `/v1/accounts/${account.id}`)).body.status, 'past_due');
  const attempts = async () => (await w.ctx.query("select count(*)::int as n from payments where account_id = $1 and purpose = 'renewal'", [account.id])).rows[0].n;
  t.equal(await attempts(), 1);
  await w.advance('2026-08-01T23:59:59Z');
  t.equal(await attempts(), 1, 'no retry before a day has passed');
  await w.advance('2026-08-02T00:00:00Z');
  t.equal(await attempts(), 2, 'retry after 1 day');
  await w.advance('2026-08-04T00:00:00Z');
  t.equal(await attempts(), 3, 'retry after 3 days');
  t.equal((await w.ctx.call('GET', `/v1/accounts/${account.id}`)).body.status, 'past_due');
  await w.advance('2026-08-08T00:00:00Z');
  t.equal(await attempts(), 4, 'retry after 7 days');
  t.equal((await w.ctx.call('GET', `/v1/accounts/${account.id}`)).body.status, 'limited', 'retries exhausted');
  t.equal((await w.ctx.call('GET', `/v1/subscriptions/${subscription.id}`)).body.status, 'cancelled');
  const [, renewal] = await invoicesOf(w.ctx, account.id);
  t.equal(renewal.status, 'void');
  await until('four dunning emails', async () => w.mailsTo(account.email).filter((m) => /could not take your renewal|has ended/.test(m.raw)).length >= 4);
  await until('every event handled: a fifth email would have been sent by now', () => allEventsHandled(w.ctx));
  const dunning = w.mailsTo(account.email).filter((m) => /could not take your renewal|has ended/.test(m.raw));
  t.equal(dunning.length, 4, 'three past-due emails and the end');
});

t.test('a declined renewal that later succeeds restores active', async (t) => {
  const w = await world(t, { start: '2026-07-01T00:00:00Z' });
  const { account } = await w.subscribe('plan_starter_v1', 'monthly', 'tok_chargeCustomerFail');
  await w.advance('2026-08-01T00:00:00Z');
  t.equal((await w.ctx.call('GET', `/v1/accounts/${account.id}`)).body.status, 'past_due');
  // The customer fixed the card: on the gateway's side, behind the same saved reference.
  await w.ctx.query("update sandbox_payment_methods set instrument = 'tok_visa' where reference in (select reference from payment_methods where account_id = $1)", [account.id]);
  await w.advance('2026-08-02T00:00:00Z');
  t.equal((await w.ctx.call('GET', `/v1/accounts/${account.id}`)).body.status, 'active');
  const [, renewal] = await invoicesOf(w.ctx, account.id);
  t.equal(renewal.status, 'paid');
});

t.test('two workers and a Redis that loses everything mid-run: every due renewal happens exactly once', async (t) => {
  const w = await world(t, { start: '2026-09-10T08:00:00Z', workers: 2 });
  const subs = [];
  for (let i = 0; i < 12; i++) subs.push(await w.subscribe('plan_starter_v1', 'monthly'));
  // Move time without waiting, wipe every key of this service in Redis while the renewals run, then wait.
  await w.ctx.query('update test_clocks set frozen_time = $1 where id = $2', ['2026-10-10T08:00:00Z', w.clock.id]);
  await new Promise((r) => setTimeout(r, 60));
  const keys = await scanKeys(w.ctx.redis, `${w.ctx.config.QUEUE_PREFIX}:*`);
  if (keys.length) await w.ctx.redis.del(...keys);
  await until('all renewals', async () => (await w.ctx.call('GET', `/v1/test-clocks/${w.clock.id}`)).body.status === 'ready');
  const { rows } = await w.ctx.query(
    "select subscription_id, count(*)::int as n from invoices where kind = 'renewal' group by subscription_id",
  );
  t.equal(rows.length, 12, 'every subscription renewed');
  t.ok(rows.every((r: any) => r.n === 1), 'each exactly once');
  const charges = await w.ctx.query("select count(*)::int as n from payments where purpose = 'renewal'");
  t.equal(charges.rows[0].n, 12, 'one charge each');
  await t.rejects(
    w.ctx.query("insert into invoices select 'inv_dup', account_id, subscription_id, 'INV-dup', financial_year, 999999, status, currency, subtotal, discount_total, tax_label, tax_rate_bps, tax_amount, total, plan_id, billing_cycle, period_start, period_end, issued_at, due_at, paid_at, kind, attempt_count, next_attempt_at from invoices where kind = 'renewal' limit 1"),
    /invoices_subscription_period_key/,
    'a second invoice for a period is refused by the database',
  );
});

t.test('test clocks are off unless enabled', async (t) => {
  const ctx = await setup(t);
  const res = await ctx.call('POST', '/v1/test-clocks', { body: { name: 'x', frozenTime: '2026-01-01T00:00:00Z' } });
  t.equal(res.status, 404);
  t.equal(res.body.code, 'test_clocks_disabled');
  const account = await ctx.call('POST', '/v1/accounts', { body: { name: 'x', email: 'x@example.com', country: 'IN', testClockId: 'clk_00000000000000000000000000' } });
  t.equal(account.body.code, 'test_clocks_disabled');
});

t.test('an offline-paying Enterprise account gets an open invoice with a due date at renewal, paid when ops confirm', async (t) => {
  const w = await world(t, { start: '2026-06-30T00:00:00Z' });
  const account = (await w.ctx.call('POST', '/v1/accounts', { body: { name: 'Big Co', email: 'ap@big.example', country: 'US', testClockId: w.clock.id } })).body;
  await approveKyc(w.ctx, account.id);
  const up = await w.ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, {
    body: { planId: 'plan_enterprise_v1', billingCycle: 'annual', initialCredits: 20000, paymentMethod: { type: 'cheque' } },
    headers: { 'idempotency-key': 'cheque' },
  });
  await w.ctx.call('POST', `/v1/payments/${up.body.payment.id}/confirm`, { body: { reference: 'CHQ-0001' } });
  await w.advance('2027-06-30T00:00:00Z');
  const [, renewal] = await invoicesOf(w.ctx, account.id);
  t.same([renewal.kind, renewal.status, renewal.total], ['renewal', 'open', '1018980'], '99900 x 12 x 0.85, no US tax');
  const pending = await w.ctx.query("select id, status from payments where account_id = $1 and purpose = 'renewal'", [account.id]);
  t.same(pending.rows.map((r: any) => r.status), ['awaiting_confirmation'], 'no charge attempted');
  t.equal((await w.ctx.query('select count(*)::int as n from sandbox_charges')).rows[0].n, 0);
  const due = await w.ctx.query('select due_at from invoices where account_id = $1 and kind = $2', [account.id, 'renewal']);
  t.equal(due.rows[0].due_at.toISOString(), '2027-07-15T00:00:00.000Z', 'due in 15 days');
  const paid = await w.ctx.call('POST', `/v1/payments/${pending.rows[0].id}/confirm`, { body: { reference: 'CHQ-0002', amount: 1018980 } });
  t.equal(paid.status, 200);
  t.equal(paid.body.invoice.status, 'paid');
  t.equal(paid.body.payment.offlineReference, 'CHQ-0002');
  t.equal(paid.body.account.status, 'active');
  t.equal((await w.ctx.query('select next_attempt_at from invoices where id = $1', [paid.body.invoice.id])).rows[0].next_attempt_at, null, 'no dunning once paid');
  await w.advance('2027-07-20T00:00:00Z');
  t.equal((await w.ctx.call('GET', `/v1/accounts/${account.id}`)).body.status, 'active', 'a paid invoice is never overdue');
});

t.test('an offline renewal invoice left unpaid: past_due at its due date, reminders, then limited', async (t) => {
  const w = await world(t, { start: '2026-06-30T00:00:00Z' });
  const account = (await w.ctx.call('POST', '/v1/accounts', { body: { name: 'Slow Co', email: 'ap@slow.example', country: 'US', testClockId: w.clock.id } })).body;
  await approveKyc(w.ctx, account.id);
  const up = await w.ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, {
    body: { planId: 'plan_enterprise_v1', billingCycle: 'annual', initialCredits: 20000, paymentMethod: { type: 'wire_transfer' } },
    headers: { 'idempotency-key': 'wire' },
  });
  await w.ctx.call('POST', `/v1/payments/${up.body.payment.id}/confirm`, { body: { reference: 'UTR-1' } });
  await w.advance('2027-06-30T00:00:00Z');
  t.equal((await w.ctx.call('GET', `/v1/accounts/${account.id}`)).body.status, 'active', 'open but not yet due');
  await w.advance('2027-07-15T00:00:00Z');
  t.equal((await w.ctx.call('GET', `/v1/accounts/${account.id}`)).body.status, 'past_due', 'overdue');
  await w.advance('2027-07-18T00:00:00Z');
  t.equal((await w.ctx.call('GET', `/v1/accounts/${account.id}`)).body.status, 'past_due');
  await w.advance('2027-07-22T00:00:00Z');
  t.equal((await w.ctx.call('GET', `/v1/accounts/${account.id}`)).body.status, 'limited', 'seven days past due: ended');
  const [, renewal] = await invoicesOf(w.ctx, account.id);
  t.equal(renewal.status, 'void');
  await until('overdue emails', async () => w.mailsTo('ap@slow.example').filter((m) => /invoice is overdue|has ended/.test(m.raw)).length === 4);
});

t.test('two worker processes and a flushed Redis: every renewal exactly once', async (t) => {
  const { spawn } = await import('node:child_process');
  const { once } = await import('node:events').then((m) => m.default);
  const ctx = await setup(t, env);
  const root = new URL('..', import.meta.url).pathname;
  const { rmSync } = await import('node:fs');
  t.teardown(() => rmSync(`/tmp/billing-mail-${ctx.config.QUEUE_PREFIX}`, { recursive: true, force: true }));
  for (let i = 0; i < 2; i++) {
    const child = spawn(process.execPath, entryArgv('src/worker.ts'), {
      cwd: root,
      env: { ...process.env, DATABASE_URL: ctx.config.DATABASE_URL, QUEUE_PREFIX: ctx.config.QUEUE_PREFIX, LOG_LEVEL: 'warn', ...env, MAIL_DIR: `/tmp/billing-mail-${ctx.config.QUEUE_PREFIX}` },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    t.teardown(async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
    });
  }
  const clock = (await ctx.call('POST', '/v1/test-clocks', { body: { name: 'procs', frozenTime: '2026-03-31T23:00:00Z' } })).body;
  for (let i = 0; i < 8; i++) {
    const account = (await ctx.call('POST', '/v1/accounts', { body: { name: `A${i}`, email: `a${i}@example.com`, country: 'US', testClockId: clock.id } })).body;
    await approveKyc(ctx, account.id);
    const res = await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, {
      body: { planId: 'plan_starter_v1', billingCycle: 'monthly', initialCredits: 2000, paymentMethod: { type: 'card', token: 'tok_mastercard' } },
      headers: { 'idempotency-key': `p-${i}` },
    });
    t.equal(res.status, 201);
  }
  await ctx.query('update test_clocks set frozen_time = $1 where id = $2', ['2026-04-30T23:00:00Z', clock.id]);
  await new Promise((r) => setTimeout(r, 100));
  const keys = await scanKeys(ctx.redis, `${ctx.config.QUEUE_PREFIX}:*`);
  if (keys.length) await ctx.redis.del(...keys);
  await until('the renewals', async () => (await ctx.call('GET', `/v1/test-clocks/${clock.id}`)).body.status === 'ready', 30_000);
  const { rows } = await ctx.query("select subscription_id, count(*)::int as n from invoices where kind = 'renewal' group by subscription_id");
  t.equal(rows.length, 8, 'all renewed');
  t.ok(rows.every((r: any) => r.n === 1), 'each once');
  const periods = await ctx.query('select distinct current_period_end from subscriptions');
  t.same(periods.rows.map((r: any) => r.current_period_end.toISOString()), ['2026-05-31T23:00:00.000Z'], 'Mar 31 -> Apr 30 -> May 31');
});

t.test('changes after the period end wait for the renewal; payment rules hold for the plan and cycle it will be', async (t) => {
  const ctx = await setup(t, env);
  const clock = (await ctx.call('POST', '/v1/test-clocks', { body: { name: 'no workers', frozenTime: '2026-03-01T00:00:00Z' } })).body;
  const account = (await ctx.call('POST', '/v1/accounts', { body: { name: 'W', email: 'w@example.com', country: 'US', testClockId: clock.id } })).body;
  await approveKyc(ctx, account.id);
  const up = await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, {
    body: { planId: 'plan_enterprise_v1', billingCycle: 'annual', initialCredits: 20000, paymentMethod: { type: 'wire_transfer' } },
    headers: { 'idempotency-key': 'w' },
  });
  const confirmed = await ctx.call('POST', `/v1/payments/${up.body.payment.id}/confirm`, { body: { reference: 'UTR-9' } });
  const subId = confirmed.body.subscription.id;
  const toGrowth = await ctx.call('POST', `/v1/subscriptions/${subId}/plan-change`, { body: { planId: 'plan_growth_v1' } });
  t.equal(toGrowth.status, 422, 'wire transfer is for Enterprise only');
  t.equal(toGrowth.body.code, 'payment_method_not_allowed');
  const monthly = await ctx.call('POST', `/v1/subscriptions/${subId}/billing-cycle`, { body: { billingCycle: 'monthly' } });
  t.equal(monthly.body.code, 'payment_method_not_allowed', 'and for annual billing only');

  const card = await readyAccountOn(ctx, clock.id);
  const cardSub = (await ctx.call('POST', `/v1/accounts/${card}/upgrade`, {
    body: { planId: 'plan_growth_v1', billingCycle: 'monthly', initialCredits: 500000, paymentMethod: { type: 'card', token: 'tok_visa' } },
    headers: { 'idempotency-key': 'c' },
  })).body.subscription.id;
  t.equal((await ctx.call('POST', `/v1/subscriptions/${cardSub}/plan-change`, { body: { planId: 'plan_starter_v1' } })).status, 200);
  const withdrawn = await ctx.call('DELETE', `/v1/subscriptions/${cardSub}/scheduled-change`);
  t.equal(withdrawn.status, 200);
  t.equal(withdrawn.body.scheduledChange, null, 'withdrawn');
  t.equal((await ctx.call('DELETE', `/v1/subscriptions/${cardSub}/scheduled-change`)).body.code, 'no_scheduled_change');

  // No worker runs here: the period ends and its renewal has not happened yet.
  await ctx.query('update test_clocks set frozen_time = $1 where id = $2', ['2026-04-02T00:00:00Z', clock.id]);
  const late = await ctx.call('POST', `/v1/subscriptions/${cardSub}/cancel`);
  t.equal(late.status, 409);
  t.equal(late.body.code, 'renewal_pending');
  t.equal((await ctx.call('GET', `/v1/test-clocks/${clock.id}`)).body.status, 'advancing', 'the clock knows work is due');
  await ctx.services.renewals.renew(cardSub, new Date('2026-04-01T00:00:00Z'));
  t.equal((await ctx.call('POST', `/v1/subscriptions/${cardSub}/cancel`)).status, 200, 'after the renewal, changes apply to the next period');
});

t.test('a renewal whose answer was lost is reconciled after 30 s of real time, even on a test clock that stands still', async (t) => {
  const ctx = await setup(t, env);
  const clock = (await ctx.call('POST', '/v1/test-clocks', { body: { name: 'future', frozenTime: '2027-01-01T00:00:00Z' } })).body;
  const id = await readyAccountOn(ctx, clock.id);
  const sub = (await ctx.call('POST', `/v1/accounts/${id}/upgrade`, {
    body: { planId: 'plan_starter_v1', billingCycle: 'monthly', initialCredits: 100000, paymentMethod: { type: 'card', token: 'tok_visa' } },
    headers: { 'idempotency-key': 'f' },
  })).body.subscription;
  await ctx.query("update sandbox_payment_methods set instrument = 'tok_timeout' where reference in (select reference from payment_methods where account_id = $1)", [id]);
  await ctx.query('update test_clocks set frozen_time = $1 where id = $2', ['2027-02-01T00:00:00Z', clock.id]);
  t.equal(await ctx.services.renewals.renew(sub.id, new Date('2027-02-01T00:00:00Z')), 'renewed');
  const payment = await ctx.query("select status from payments where purpose = 'renewal'");
  t.equal(payment.rows[0].status, 'unknown');
  t.equal((await ctx.call('GET', `/v1/test-clocks/${clock.id}`)).body.status, 'advancing', 'an unknown payment is pending work');
  t.equal((await ctx.services.payments.reconcileStale()).checked, 0, 'not stale yet');
  // The clock stands still; 40 s of real time pass (a worker crashed mid-charge, say).
  await ctx.query("update payments set touched_at = touched_at - interval '40 seconds' where purpose = 'renewal'");
  t.equal((await ctx.services.payments.reconcileStale()).checked, 1, 'stale in real time, whatever the test clock says');
  const invoice = await ctx.query("select status from invoices where kind = 'renewal'");
  t.equal(invoice.rows[0].status, 'paid', 'the gateway had taken the money');
  t.equal((await ctx.call('GET', `/v1/test-clocks/${clock.id}`)).body.status, 'ready');

  // A late decline for a subscription that has ended since (the account subscribed again):
  // the invoice is written off, and the account and its new state are left alone.
  await ctx.query('update test_clocks set frozen_time = $1 where id = $2', ['2027-03-01T00:00:00Z', clock.id]);
  t.equal(await ctx.services.renewals.renew(sub.id, new Date('2027-03-01T00:00:00Z')), 'renewed');
  const { rows: [late] } = await ctx.query("select id, invoice_id from payments where purpose = 'renewal' and status = 'unknown'");
  await ctx.query("update subscriptions set status = 'cancelled' where id = $1", [sub.id]);
  t.equal(await ctx.services.renewals.settle(late.id, { status: 'failed', code: 'card_declined', message: 'declined', reference: null }), true);
  t.equal((await ctx.call('GET', `/v1/accounts/${id}`)).body.status, 'active', 'the account is left alone');
  t.equal((await ctx.query('select status from invoices where id = $1', [late.invoice_id])).rows[0].status, 'void');
  t.equal((await ctx.query("select count(*)::int as n from outbox where type = 'account.limited'")).rows[0].n, 0, 'no second ending');
});
