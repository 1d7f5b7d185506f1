import t, { type Test } from 'tap';
import { createLogger } from '../src/lib/logger.js';
import { createSmtpMailer } from '../src/modules/notifications/mailer.js';
import { startWorkers } from '../src/workers.js';
import { allEventsHandled, approveKyc, readyAccount, setup, type TestContext } from './helper.js';
import { smtpReceiver } from './smtp.js';

const env = { TEST_CLOCKS_ENABLED: 'true', SCHEDULER_INTERVAL_MS: '50', OUTBOX_POLL_MS: '50', PRE_DEBIT_NOTICE_HOURS: '0' };

async function until(what: string, fn: () => Promise<boolean>, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function withWorkers(t: Test, ctx: TestContext, smtpUrl: string) {
  const mailer = createSmtpMailer(smtpUrl, 'Billing <billing@test.example>');
  const workers = await startWorkers(
    { config: ctx.config, logger: createLogger({ LOG_LEVEL: 'silent' }), database: ctx.database, redis: ctx.redis, queues: ctx.queues, clock: ctx.clock },
    { mailer },
  );
  t.teardown(() => workers.close());
}

/** An active Starter account with exactly `balance` credits, paying by `token`. */
async function paid(ctx: TestContext, balance: number, token = 'tok_visa', testClockId?: string) {
  const account = testClockId
    ? (await ctx.call('POST', '/v1/accounts', { body: { name: 'R', email: `r${Math.random()}@acme.example`, country: 'IN', testClockId } })).body
    : await readyAccount(ctx);
  if (testClockId) await approveKyc(ctx, account.id);
  const res = await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, {
    body: { planId: 'plan_starter_v1', billingCycle: 'monthly', initialCredits: 100000, paymentMethod: { type: 'card', token } },
    headers: { 'idempotency-key': `u-${account.id}` },
  });
  if (res.status !== 201) throw new Error(`upgrade ${res.status}`);
  await ctx.call('POST', `/v1/accounts/${account.id}/credits/adjustments`, { body: { amount: balance - 100000, reason: 'setup' }, headers: { 'idempotency-key': `a-${account.id}` } });
  return res.body.account as { id: string; email: string };
}

const smsBatch = (accountId: string, prefix: string, n: number, segments: number) => ({
  events: Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i}`, accountId, type: 'sms', segments })),
});

t.test('a top-up charges first and credits after, with a paid invoice; a decline credits nothing', async (t) => {
  const ctx = await setup(t);
  const account = await paid(ctx, 1000);
  const body = { amount: 200000, paymentMethod: { type: 'upi', vpa: 'success@upi' } };
  const res = await ctx.call('POST', `/v1/accounts/${account.id}/credits/purchases`, { key: ctx.keys.write, body, headers: { 'idempotency-key': 'top-1' } });
  t.equal(res.status, 201);
  t.equal(res.body.status, 'credited');
  t.equal(res.body.balance, 201000);
  t.same([res.body.invoice.subtotal, res.body.invoice.tax.amount, res.body.invoice.total, res.body.invoice.status], [200000, 36000, 236000, 'paid']);
  const again = await ctx.call('POST', `/v1/accounts/${account.id}/credits/purchases`, { key: ctx.keys.write, body, headers: { 'idempotency-key': 'top-1' } });
  t.equal(again.headers['idempotent-replayed'], 'true');
  t.equal((await ctx.call('GET', `/v1/accounts/${account.id}/credits`)).body.balance, 201000, 'credited once');

  const declined = await ctx.call('POST', `/v1/accounts/${account.id}/credits/purchases`, {
    key: ctx.keys.write,
    body: { amount: 5000, paymentMethod: { type: 'card', token: 'tok_chargeDeclined' } },
    headers: { 'idempotency-key': 'top-2' },
  });
  t.equal(declined.status, 402);
  t.equal(declined.body.declineCode, 'card_declined');
  t.equal((await ctx.call('GET', `/v1/accounts/${account.id}/credits`)).body.balance, 201000, 'nothing credited');
  const saved = await ctx.call('POST', `/v1/accounts/${account.id}/credits/purchases`, { key: ctx.keys.write, body: { amount: 1000 }, headers: { 'idempotency-key': 'top-3' } });
  t.equal(saved.body.balance, 202000, 'the saved method when none is given');

  const trial = await readyAccount(ctx);
  const refused = await ctx.call('POST', `/v1/accounts/${trial.id}/credits/purchases`, { body, headers: { 'idempotency-key': 'top-4' } });
  t.equal(refused.body.code, 'paid_plan_required');
  t.same((await ctx.call('GET', '/v1/ops/ledger-invariants')).body.violations, []);
});

t.test('a top-up whose answer was lost, retried with the same key, credits once', async (t) => {
  const ctx = await setup(t, env);
  const account = await paid(ctx, 1000);
  const body = { amount: 1000, paymentMethod: { type: 'card', token: 'tok_timeout' } };
  const first = await ctx.call('POST', `/v1/accounts/${account.id}/credits/purchases`, { key: ctx.keys.write, body, headers: { 'idempotency-key': 'lost' } });
  t.equal(first.status, 202);
  const retry = await ctx.call('POST', `/v1/accounts/${account.id}/credits/purchases`, { key: ctx.keys.write, body, headers: { 'idempotency-key': 'lost' } });
  t.equal(retry.status, 201, 'the retry learns the first charge went through');
  const again = await ctx.call('POST', `/v1/accounts/${account.id}/credits/purchases`, { key: ctx.keys.write, body, headers: { 'idempotency-key': 'lost' } });
  t.equal(again.headers['idempotent-replayed'], 'true');
  t.equal((await ctx.call('GET', `/v1/accounts/${account.id}/credits`)).body.balance, 2000, 'credited once');
  t.equal((await ctx.query("select count(*)::int as n from payments where purpose = 'purchase'")).rows[0].n, 1, 'one payment');
  t.equal((await ctx.query('select count(*)::int as n from sandbox_charges where amount = 1180')).rows[0].n, 1, 'one charge');
  t.same((await ctx.call('GET', '/v1/ops/ledger-invariants')).body.violations, []);

  const wire = (await ctx.call('POST', '/v1/accounts', { body: { name: 'W', email: 'w@example.com', country: 'US' } })).body;
  await approveKyc(ctx, wire.id);
  const up = await ctx.call('POST', `/v1/accounts/${wire.id}/upgrade`, {
    body: { planId: 'plan_enterprise_v1', billingCycle: 'annual', initialCredits: 20000, paymentMethod: { type: 'wire_transfer' } },
    headers: { 'idempotency-key': 'wire' },
  });
  await ctx.call('POST', `/v1/payments/${up.body.payment.id}/confirm`, { body: { reference: 'UTR' } });
  const noMethod = await ctx.call('POST', `/v1/accounts/${wire.id}/credits/purchases`, { body: { amount: 1000 }, headers: { 'idempotency-key': 'w1' } });
  t.equal(noMethod.status, 422, 'a wire-paying account gives a method for top-ups');
  t.equal(noMethod.body.code, 'payment_method_not_allowed');
});

t.test('50 debits crossing the threshold at once: exactly one recharge, the balance right, one receipt', async (t) => {
  const smtp = await smtpReceiver(t);
  const ctx = await setup(t, env);
  await withWorkers(t, ctx, smtp.url);
  const account = await paid(ctx, 5000);
  const settings = await ctx.call('PUT', `/v1/accounts/${account.id}/credits/auto-recharge`, { key: ctx.keys.write, body: { enabled: true, threshold: 2000, amount: 10000 } });
  t.same(settings.body, { enabled: true, threshold: 2000, amount: 10000 });
  // 50 batches of one 4-segment SMS (100 paise each) at once: 5000 -> 0, crossing 2000 once.
  const results = await Promise.all(
    Array.from({ length: 50 }, (_, i) => ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: smsBatch(account.id, `x${i}`, 1, 4) })),
  );
  t.ok(results.every((r) => r.body.results[0].status === 'debited'), 'every debit covered');
  await until('the recharge', async () => (await ctx.call('GET', `/v1/accounts/${account.id}/credits`)).body.balance === 10000);
  // A second recharge would need one due or one in flight: there is neither.
  t.same(await ctx.services.purchases.findDueRecharges(), [], 'nothing due');
  t.equal((await ctx.query("select count(*)::int as n from payments where purpose = 'recharge' and status not in ('succeeded', 'failed')")).rows[0].n, 0, 'nothing in flight');
  t.equal((await ctx.call('GET', `/v1/accounts/${account.id}/credits`)).body.balance, 10000, '0 + one recharge of 10000');
  t.equal((await ctx.query("select count(*)::int as n from payments where purpose = 'recharge'")).rows[0].n, 1, 'one recharge payment');
  t.equal((await ctx.query("select count(*)::int as n from credit_ledger where kind = 'recharge'")).rows[0].n, 1);
  await until('the receipt', async () => smtp.received.some((m) => m.raw.includes('Receipt: your credits were recharged')));
  await until('every event handled: a second receipt would have been sent by now', () => allEventsHandled(ctx));
  t.equal(smtp.received.filter((m) => m.raw.includes('Receipt: your credits were recharged')).length, 1, 'one receipt');
  t.same((await ctx.call('GET', '/v1/ops/ledger-invariants')).body.violations, []);
});

t.test('failed recharges are retried with a doubling pause, then auto-recharge switches itself off', async (t) => {
  const smtp = await smtpReceiver(t);
  const ctx = await setup(t, env);
  await withWorkers(t, ctx, smtp.url);
  const clock = (await ctx.call('POST', '/v1/test-clocks', { body: { name: 'recharge', frozenTime: '2026-12-01T00:00:00Z' } })).body;
  const account = await paid(ctx, 3000, 'tok_chargeCustomerFail', clock.id);
  await ctx.call('PUT', `/v1/accounts/${account.id}/credits/auto-recharge`, { body: { enabled: true, threshold: 2000, amount: 10000 } });
  await ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: smsBatch(account.id, 'f', 1, 50) }); // 3000 - 1250: below 2000
  const attempts = async () => (await ctx.query("select count(*)::int as n from payments where purpose = 'recharge'")).rows[0].n;
  // Settled before the clock moves: the pause counts from the failure, on the account's clock.
  const failed = async () => (await ctx.query("select count(*)::int as n from payments where purpose = 'recharge' and status = 'failed'")).rows[0].n;
  await until('the first attempt to fail', async () => (await failed()) === 1);
  t.equal(await attempts(), 1);
  const advance = (to: string) => ctx.call('POST', `/v1/test-clocks/${clock.id}/advance`, { body: { frozenTime: to } });
  await advance('2026-12-01T00:14:00Z');
  t.equal(await attempts(), 1, 'not before 15 minutes');
  const backoff = (await ctx.query('select consecutive_failures, next_attempt_at from auto_recharge_settings where account_id = $1', [account.id])).rows[0];
  await ctx.call('PUT', `/v1/accounts/${account.id}/credits/auto-recharge`, { body: { enabled: true, threshold: 2000, amount: 10000 } });
  t.same((await ctx.query('select consecutive_failures, next_attempt_at from auto_recharge_settings where account_id = $1', [account.id])).rows[0], backoff, 'saving the same settings keeps the backoff');
  t.equal(await attempts(), 1, 'and charges nothing');
  await advance('2026-12-01T00:15:00Z');
  t.equal(await attempts(), 2, 'retry after 15 minutes');
  await advance('2026-12-01T00:45:00Z');
  t.equal(await attempts(), 3, 'then after 30 more');
  const settings = await ctx.query('select enabled, consecutive_failures from auto_recharge_settings where account_id = $1', [account.id]);
  t.same(settings.rows[0], { enabled: false, consecutive_failures: 3 }, 'off after 3 failures');
  await advance('2026-12-02T00:00:00Z');
  t.equal(await attempts(), 3, 'no more attempts');
  await until('the emails', async () => smtp.received.filter((m) => /auto-recharge failed|Auto-recharge is switched off/i.test(m.raw)).length === 3);
  t.ok(smtp.received.some((m) => m.raw.includes('Auto-recharge is switched off')));
});

t.test('one recharge at a time, none for a limited account', async (t) => {
  const ctx = await setup(t, env);
  const account = await paid(ctx, 1000);
  await ctx.call('PUT', `/v1/accounts/${account.id}/credits/auto-recharge`, { body: { enabled: true, threshold: 2000, amount: 10000 } });
  const outcomes = await Promise.all([ctx.services.purchases.recharge(account.id), ctx.services.purchases.recharge(account.id)]);
  t.same(outcomes.sort(), ['recharged', 'skipped']);
  await t.rejects(
    ctx.query(
      "insert into payments (id, account_id, purpose, status, amount, currency, method_type, payment_method_id, request, created_at, updated_at) select 'pay_x1', account_id, 'recharge', 'unknown', 1, currency, method_type, payment_method_id, '{}', now(), now() from payments where purpose = 'upgrade' limit 1; insert into payments (id, account_id, purpose, status, amount, currency, method_type, payment_method_id, request, created_at, updated_at) select 'pay_x2', account_id, 'recharge', 'processing', 1, currency, method_type, payment_method_id, '{}', now(), now() from payments where purpose = 'upgrade' limit 1",
    ),
    /payments_one_open_recharge/,
    'the database refuses a second recharge in flight',
  );
  const limited = await paid(ctx, 1000);
  await ctx.call('PUT', `/v1/accounts/${limited.id}/credits/auto-recharge`, { body: { enabled: true, threshold: 2000, amount: 10000 } });
  await ctx.query("update accounts set status = 'limited' where id = $1", [limited.id]);
  t.equal(await ctx.services.purchases.recharge(limited.id), 'skipped', 'no recharge while limited');
  const bad = await ctx.call('PUT', `/v1/accounts/${account.id}/credits/auto-recharge`, { body: { enabled: true, threshold: 2000, amount: 10000, paymentMethod: { type: 'netbanking', bankCode: 'HDFC' } } });
  t.equal(bad.body.code, 'invalid_auto_recharge', 'net banking cannot be charged unattended');
});

t.test('Indian e-mandates: a pre-debit notice a day before each unattended charge, and a cap per charge', async (t) => {
  const smtp = await smtpReceiver(t);
  const ctx = await setup(t, { ...env, PRE_DEBIT_NOTICE_HOURS: '24' });
  await withWorkers(t, ctx, smtp.url);
  const clock = (await ctx.call('POST', '/v1/test-clocks', { body: { name: 'mandate', frozenTime: '2026-07-01T00:00:00Z' } })).body;
  const advance = async (to: string) => {
    const res = await ctx.call('POST', `/v1/test-clocks/${clock.id}/advance`, { body: { frozenTime: to } });
    if (res.body.status !== 'ready') throw new Error(`advance ${to}: ${JSON.stringify(res.body)}`);
  };
  const onTime = await paid(ctx, 100000, 'tok_visa', clock.id);
  const invoices = async (accountId: string) =>
    (await ctx.query("select status, next_attempt_at from invoices where account_id = $1 and kind = 'renewal'", [accountId])).rows;

  await advance('2026-07-30T23:59:00Z');
  t.notOk(smtp.received.some((m) => m.to.includes(onTime.email) && m.raw.includes('Upcoming charge')), 'no notice before the window');
  await advance('2026-07-31T00:00:00Z');
  await until('the renewal notice', async () => smtp.received.some((m) => m.to.includes(onTime.email) && m.raw.includes('Upcoming charge for your subscription')));
  await advance('2026-08-01T00:00:00Z');
  t.same((await invoices(onTime.id)).map((i: any) => i.status), ['paid'], 'noticed a day ahead: charged on time at the period end');

  // A notice missed (the clock jumps past the window): the charge waits a day after the notice.
  const late = await paid(ctx, 100000, 'tok_visa', clock.id);
  await advance('2026-09-01T00:00:00Z');
  const [pending] = await invoices(late.id);
  t.equal(pending.status, 'open', 'not charged without notice');
  t.equal(pending.next_attempt_at.toISOString(), '2026-09-02T00:00:00.000Z', 'charged 24 hours after the notice');
  await advance('2026-09-02T00:00:00Z');
  t.same((await invoices(late.id)).map((i: any) => i.status), ['paid']);

  // Auto-recharge: the notice first, the charge a day later.
  const recharging = await paid(ctx, 3000, 'tok_visa', clock.id);
  t.equal((await ctx.call('PUT', `/v1/accounts/${recharging.id}/credits/auto-recharge`, { body: { enabled: true, threshold: 2000, amount: 1_400_000 } })).body.code, 'invalid_auto_recharge', '14,000 + 18% GST is above the 15,000 cap');
  await ctx.call('PUT', `/v1/accounts/${recharging.id}/credits/auto-recharge`, { body: { enabled: true, threshold: 2000, amount: 10000 } });
  await ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: smsBatch(recharging.id, 'm', 1, 50) });
  await until('the recharge notice', async () => smtp.received.some((m) => m.to.includes(recharging.email) && m.raw.includes('Upcoming auto-recharge')));
  t.equal((await ctx.query("select count(*)::int as n from payments where purpose = 'recharge'")).rows[0].n, 0, 'no charge yet');
  await advance('2026-09-03T00:00:00Z');
  t.equal((await ctx.call('GET', `/v1/accounts/${recharging.id}/credits`)).body.balance, 1750 + 10000, 'charged after the notice window');

  // Enterprise monthly in INR (50,000 + GST) cannot be taken unattended: not a decline, the invoice waits for the customer.
  const big = (await ctx.call('POST', '/v1/accounts', { body: { name: 'Big', email: 'big@acme.example', country: 'IN', testClockId: clock.id } })).body;
  await approveKyc(ctx, big.id);
  await ctx.call('POST', `/v1/accounts/${big.id}/upgrade`, {
    body: { planId: 'plan_enterprise_v1', billingCycle: 'monthly', initialCredits: 2500000, paymentMethod: { type: 'card', token: 'tok_visa' } },
    headers: { 'idempotency-key': 'big' },
  });
  await advance('2026-10-03T00:00:00Z'); // the period ends
  const declined = await ctx.query("select failure_code from payments where account_id = $1 and purpose = 'renewal'", [big.id]);
  t.same(declined.rows, [], 'no charge attempted, nothing declined');
  const [invoice] = (await ctx.call('GET', `/v1/accounts/${big.id}/invoices`)).body.data.filter((i: any) => i.period.start.startsWith('2026-10'));
  t.equal(invoice.status, 'requires_action');
  t.same(invoice.actionRequired, { reason: 'above_mandate', payBy: '2026-10-04T00:00:00.000Z' }, 'paid by the first dunning day, or past_due');
  t.equal((await ctx.call('GET', `/v1/accounts/${big.id}`)).body.status, 'active', 'still active while it waits');
  await until('the email asking to pay', async () => smtp.received.some((m) => m.to.includes('big@acme.example') && m.raw.includes('Action needed')));
});
