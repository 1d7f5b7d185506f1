import pg from 'pg';
import t from 'tap';
import { approveKyc, createAccount, paidAccount, readyAccount, setup, type TestContext } from './helper.js';

const call = { action: 'outbound_call', destination: '+14155550123' };
const smsIndia = { action: 'outbound_sms', destination: '+919876543210' };

const authorize = async (ctx: TestContext, accountId: string, body: object) => (await ctx.call('POST', `/v1/accounts/${accountId}/authorize`, { key: ctx.keys.read, body })).body;

/** A write that fires no trigger, so the change feed never hears of it (superuser only). */
const unannounced = (ctx: TestContext, statement: string) => ctx.query(`begin; set local session_replication_role = replica; ${statement}; commit`);

/** Stops the database announcing what authorize reads: only this api's own invalidation can make the next check fresh. */
async function silenceFeed(ctx: TestContext) {
  for (const [table, trigger] of [
    ['accounts', 'accounts_notify_update'],
    ['credit_balances', 'credit_balances_notify_update'],
    ['credit_balances', 'credit_balances_notify_insert'],
    ['whitelisted_numbers', 'whitelisted_numbers_notify'],
    ['subscriptions', 'subscriptions_notify'],
  ]) {
    await ctx.query(`alter table ${table} disable trigger ${trigger}`);
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('authorize answers from memory, and the database announces every change to it', async (t) => {
  const ctx = await setup(t);
  const account = await paidAccount(ctx, 100000);
  // Every notification of the set-up heard: a late one would drop the facts cached next.
  await ctx.app.changes.sync();
  t.equal((await authorize(ctx, account.id, call)).allowed, true);

  await unannounced(ctx, `update accounts set status = 'limited' where id = '${account.id}'`);
  t.equal((await authorize(ctx, account.id, call)).allowed, true, 'a change the feed did not hear is not seen: the answer came from memory');

  await ctx.query('update accounts set past_due_since = now() where id = $1', [account.id]);
  await ctx.app.changes.sync();
  t.equal((await authorize(ctx, account.id, call)).reason, 'account_limited', 'an announced change drops the cached facts');
});

t.test('a change made through this api is seen by the very next check, without the feed', async (t) => {
  const ctx = await setup(t);
  await silenceFeed(ctx);

  // Balance: exactly one pulse (60 paise), spent, then topped up.
  const funded = await paidAccount(ctx, 60);
  t.equal((await authorize(ctx, funded.id, call)).allowed, true);
  const debit = await ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: { events: [{ id: 'c1', accountId: funded.id, type: 'voice_call', durationSeconds: 30 }] } });
  t.equal(debit.body.results[0].status, 'debited');
  t.equal((await authorize(ctx, funded.id, call)).reason, 'insufficient_credits', 'after the debit');
  await ctx.call('POST', `/v1/accounts/${funded.id}/credits/adjustments`, { body: { amount: 60, reason: 'goodwill' }, headers: { 'idempotency-key': 'adj-back' } });
  t.equal((await authorize(ctx, funded.id, call)).allowed, true, 'after the top-up');
  await ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: { events: [{ id: 'c2', accountId: funded.id, type: 'voice_call', durationSeconds: 30 }] } });
  t.equal((await authorize(ctx, funded.id, call)).reason, 'insufficient_credits', 'spent again');
  const bought = await ctx.call('POST', `/v1/accounts/${funded.id}/credits/purchases`, { key: ctx.keys.write, body: { amount: 1000 }, headers: { 'idempotency-key': 'buy' } });
  t.equal(bought.status, 201);
  t.equal((await authorize(ctx, funded.id, call)).allowed, true, 'after the credit purchase');

  // DLT registration.
  t.equal((await authorize(ctx, funded.id, smsIndia)).reason, 'dlt_required');
  await ctx.call('PUT', `/v1/accounts/${funded.id}/dlt`, { body: { entityId: '1201159876543210987' } });
  t.equal((await authorize(ctx, funded.id, smsIndia)).allowed, true, 'after the DLT registration');

  // KYC.
  const applicant = await createAccount(ctx, { country: 'IN' });
  t.equal((await authorize(ctx, applicant.id, { action: 'purchase_exophone' })).reason, 'kyc_not_approved');
  await approveKyc(ctx, applicant.id);
  t.equal((await authorize(ctx, applicant.id, { action: 'purchase_exophone' })).reason, 'paid_plan_required', 'after the KYC approval');

  // Trial whitelist, then the upgrade.
  const trial = await readyAccount(ctx, { country: 'IN' });
  t.equal((await authorize(ctx, trial.id, call)).reason, 'number_not_whitelisted');
  t.equal((await authorize(ctx, trial.id, { action: 'purchase_exophone' })).reason, 'paid_plan_required');
  const added = await ctx.call('POST', `/v1/accounts/${trial.id}/whitelisted-numbers`, { body: { number: call.destination } });
  t.equal(added.status, 201);
  t.equal((await authorize(ctx, trial.id, call)).allowed, true, 'after whitelisting');
  t.equal((await ctx.call('DELETE', `/v1/accounts/${trial.id}/whitelisted-numbers/${encodeURIComponent(call.destination)}`)).status, 204);
  t.equal((await authorize(ctx, trial.id, call)).reason, 'number_not_whitelisted', 'after the removal');
  const upgraded = await ctx.call('POST', `/v1/accounts/${trial.id}/upgrade`, {
    body: { planId: 'plan_starter_v1', billingCycle: 'monthly', initialCredits: 100000, paymentMethod: { type: 'card', token: 'tok_visa' } },
    headers: { 'idempotency-key': 'up-trial' },
  });
  t.equal(upgraded.status, 201);
  t.equal((await authorize(ctx, trial.id, { action: 'purchase_exophone' })).allowed, true, 'after the upgrade');
  t.equal((await authorize(ctx, trial.id, { action: 'outbound_call', destination: '+14155550999' })).allowed, true, 'no whitelist on a paid plan');

  // A route named by another id: ops confirm a wire transfer (the payment id).
  const wire = await readyAccount(ctx, { country: 'US' });
  const pending = await ctx.call('POST', `/v1/accounts/${wire.id}/upgrade`, {
    body: { planId: 'plan_enterprise_v1', billingCycle: 'annual', initialCredits: 20000, paymentMethod: { type: 'wire_transfer' } },
    headers: { 'idempotency-key': 'up-wire' },
  });
  t.equal((await authorize(ctx, wire.id, { action: 'purchase_exophone' })).reason, 'paid_plan_required', 'awaiting the money');
  const confirmed = await ctx.call('POST', `/v1/payments/${pending.body.payment.id}/confirm`, { body: { reference: 'UTR1', amount: pending.body.invoice.total } });
  t.equal(confirmed.status, 200);
  t.equal((await authorize(ctx, wire.id, { action: 'purchase_exophone' })).allowed, true, 'after ops confirmed the wire');
});

t.test('a past_due account that pays its invoice through this api is allowed by the very next check, without the feed', async (t) => {
  const ctx = await setup(t, { PRE_DEBIT_NOTICE_HOURS: '0' }); // charge at the period end
  const declining = await paidAccount(ctx, 100000, { paymentMethod: { type: 'card', token: 'tok_chargeCustomerFail' } });
  const [subscription] = (await ctx.query("select id, current_period_end from subscriptions where account_id = $1 and status = 'active'", [declining.id])).rows;
  ctx.clock.set(new Date(subscription.current_period_end.getTime() + 60_000));
  await ctx.services.renewals.renew(subscription.id, subscription.current_period_end); // the worker's: declined, past_due
  ctx.clock.advance(4 * 86_400_000);
  await ctx.app.changes.sync();
  t.equal((await authorize(ctx, declining.id, call)).reason, 'past_due_beyond_grace');

  await silenceFeed(ctx);
  const card = await ctx.call('POST', `/v1/accounts/${declining.id}/payment-methods`, { body: { paymentMethod: { type: 'card', token: 'tok_mastercard' }, makeDefault: true } });
  t.equal(card.status, 201);
  const [invoice] = (await ctx.call('GET', `/v1/accounts/${declining.id}/invoices`)).body.data.filter((i: any) => i.status === 'open');
  const paid = await ctx.call('POST', `/v1/invoices/${invoice.id}/pay`, { key: ctx.keys.write, body: {}, headers: { 'idempotency-key': 'recover' } });
  t.equal(paid.status, 201, JSON.stringify(paid.body));
  t.equal((await authorize(ctx, declining.id, call)).allowed, true, 'active again at once');
});

t.test('renewals and limits made by the worker reach the api through the feed', async (t) => {
  const ctx = await setup(t, { PRE_DEBIT_NOTICE_HOURS: '0' }); // charge at the period end
  // A card that pays the upgrade and declines every renewal.
  const declining = await paidAccount(ctx, 100000, { paymentMethod: { type: 'card', token: 'tok_chargeCustomerFail' } });
  const cancelling = await paidAccount(ctx, 100000);
  t.equal((await authorize(ctx, declining.id, call)).allowed, true);
  t.equal((await authorize(ctx, cancelling.id, call)).allowed, true);

  const [subscription] = (await ctx.query("select id, current_period_end from subscriptions where account_id = $1 and status = 'active'", [declining.id])).rows;
  const [other] = (await ctx.query("select id, current_period_end from subscriptions where account_id = $1 and status = 'active'", [cancelling.id])).rows;
  t.equal((await ctx.call('POST', `/v1/subscriptions/${other.id}/cancel`, { body: {} })).status, 200);

  // The worker's renewal (another services instance, as in the worker process).
  ctx.clock.set(new Date(subscription.current_period_end.getTime() + 60_000));
  t.equal(await ctx.services.renewals.renew(subscription.id, subscription.current_period_end), 'renewed');
  t.equal(await ctx.services.renewals.renew(other.id, other.current_period_end), 'cancelled');
  await ctx.app.changes.sync();

  t.equal((await authorize(ctx, cancelling.id, call)).reason, 'account_limited', 'cancelled at period end: limited');
  t.equal((await authorize(ctx, declining.id, call)).allowed, true, 'declined renewal: past_due, within the grace period');
  ctx.clock.advance(4 * 86_400_000);
  t.equal((await authorize(ctx, declining.id, call)).reason, 'past_due_beyond_grace', 'past_due reached the cache (the grace is counted from it)');
});

t.test('while the change feed is down, authorize reads the database; it comes back by itself', async (t) => {
  const ctx = await setup(t);
  const account = await paidAccount(ctx, 100000);
  t.equal((await authorize(ctx, account.id, call)).allowed, true);

  await ctx.query("select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'billing-service-changes' and datname = current_database()");
  await until('the feed to notice', () => !ctx.app.changes.live);
  await unannounced(ctx, `update accounts set status = 'limited' where id = '${account.id}'`);
  const metrics = async () => (await ctx.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${ctx.keys.ops}` } })).body;
  t.match(await metrics(), /billing_change_feed_live 0/);
  t.equal((await authorize(ctx, account.id, call)).reason, 'account_limited', 'no cache while notifications could be missed');

  await until('the feed to reconnect', () => ctx.app.changes.live);
  t.match(await metrics(), /billing_change_feed_live 1/);
  t.equal((await authorize(ctx, account.id, call)).reason, 'account_limited');
  await unannounced(ctx, `update accounts set status = 'active' where id = '${account.id}'`);
  t.equal((await authorize(ctx, account.id, call)).reason, 'account_limited', 'cached again once the feed is back');
});

t.test('group commit: 64 callers debiting one account share transactions, each gets its own result', async (t) => {
  const ctx = await setup(t);
  const account = await paidAccount(ctx, 100000);
  const stat = async (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec((await ctx.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${ctx.keys.ops}` } })).body)?.[1]);
  const before = { tx: await stat('billing_usage_transactions_total'), events: await stat('billing_usage_events_total') };

  const responses = await Promise.all(
    Array.from({ length: 64 }, (_, i) => ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: { events: [{ id: `sms-${i}`, accountId: account.id, type: 'sms', segments: 1 + (i % 3) }] } })),
  );
  t.ok(responses.every((r, i) => r.status === 200 && r.body.results[0].id === `sms-${i}` && r.body.results[0].units === 1 + (i % 3) && r.body.results[0].status === 'debited'), 'each caller gets its own event back');
  const spent = responses.reduce((sum, r) => sum + r.body.results[0].amount, 0);
  t.equal((await ctx.call('GET', `/v1/accounts/${account.id}/credits`)).body.balance, 100000 - spent);
  const { rows } = await ctx.query("select count(*)::int as n, count(distinct balance_after)::int as distinct_after from credit_ledger where account_id = $1 and kind = 'usage'", [account.id]);
  t.same(rows[0], { n: 64, distinct_after: 64 }, 'one ledger entry per event, each with its own running balance');

  const tx = (await stat('billing_usage_transactions_total')) - before.tx;
  t.equal((await stat('billing_usage_events_total')) - before.events, 64);
  t.ok(tx < 64, `64 debits in ${tx} transactions`);
});

t.test('group commit keeps exactly-once: one id from ten callers at once, and overlapping batches', async (t) => {
  const ctx = await setup(t);
  const account = await paidAccount(ctx, 100000);
  const event = { id: 'call-42', accountId: account.id, type: 'voice_call', durationSeconds: 61 };
  const responses = await Promise.all(Array.from({ length: 10 }, () => ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: { events: [event] } })));
  const results = responses.map((r) => r.body.results[0]);
  t.equal(results.filter((r) => !r.duplicate).length, 1, 'one caller rated it');
  t.ok(results.every((r) => r.status === 'debited' && r.amount === 120), 'every caller gets the same answer');

  // Overlapping batches at once (a partial retry racing the original): the shared id debits once.
  const sms = (id: string) => ({ id, accountId: account.id, type: 'sms', segments: 2 });
  const [a, b] = await Promise.all([
    ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: { events: [sms('sms-1'), sms('sms-2')] } }),
    ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: { events: [sms('sms-2'), sms('sms-3')] } }),
  ]);
  const shared = [a.body.results[1], b.body.results[0]];
  t.same(shared.map((r) => r.duplicate).sort(), [false, true], 'sms-2 rated by one batch, a duplicate in the other');
  const { rows } = await ctx.query("select source_key from credit_ledger where account_id = $1 and kind = 'usage' order by source_key", [account.id]);
  t.same(rows.map((r) => r.source_key), ['call-42', 'sms-1', 'sms-2', 'sms-3'].map((id) => `usage:${account.id}:${id}`));
  t.equal((await ctx.call('GET', `/v1/accounts/${account.id}/credits`)).body.balance, 100000 - 120 - 3 * 50);
});

t.test('a usage transaction that waited for an account reads the balance its lock holder left', async (t) => {
  const ctx = await setup(t);
  const account = await paidAccount(ctx, 100000);
  // Another writer (an adjustment, a recharge) holds the account and adds credits.
  const other = new pg.Client({ connectionString: ctx.config.DATABASE_URL });
  await other.connect();
  t.teardown(() => other.end());
  await other.query('begin');
  await other.query('select id from accounts where id = $1 for update', [account.id]);
  await other.query('update credit_balances set balance = balance + 1000 where account_id = $1', [account.id]);
  await other.query(
    `insert into credit_ledger (account_id, kind, amount, currency, balance_after, source_key, description, created_at)
     values ($1, 'adjustment', 1000, 'INR', 101000, 'test:held', 'held', now())`,
    [account.id],
  );
  const debit = ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: { events: [{ id: 'sms-1', accountId: account.id, type: 'sms', segments: 1 }] } });
  await until('the usage to wait for the lock', async () => (await ctx.query("select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'")).rows[0].n > 0);
  await other.query('commit');
  t.equal((await debit).body.results[0].status, 'debited');
  t.equal((await ctx.call('GET', `/v1/accounts/${account.id}/credits`)).body.balance, 100000 + 1000 - 25, 'the credit is kept and the debit applied');
  // (the ledger invariants, checked at teardown, would also catch a lost update)
});

t.test('a TRUNCATE is announced too: every cache is dropped', async (t) => {
  const ctx = await setup(t);
  const account = await paidAccount(ctx, 100000);
  await ctx.app.changes.sync(); // as above: no late notification of the set-up
  t.equal((await authorize(ctx, account.id, call)).allowed, true);
  await unannounced(ctx, `update accounts set status = 'limited' where id = '${account.id}'`);
  t.equal((await authorize(ctx, account.id, call)).allowed, true, 'cached');
  await ctx.query('truncate whitelisted_numbers');
  await ctx.app.changes.sync();
  t.equal((await authorize(ctx, account.id, call)).reason, 'account_limited', 'reloaded after the truncate');
});

t.test('the hot paths write no request log lines at info; other routes do, and debug logs both', async (t) => {
  const { Writable } = await import('node:stream');
  const linesFor = async (level: string) => {
    const lines: Array<{ msg?: string; req?: { url?: string }; level: number }> = [];
    const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(...String(chunk).trim().split('\n').map((l) => JSON.parse(l))), done()) });
    const ctx = await setup(t, { LOG_LEVEL: level }, { logTo: sink });
    const account = await paidAccount(ctx, 100000);
    lines.length = 0;
    t.equal((await authorize(ctx, account.id, call)).allowed, true);
    t.equal((await ctx.call('POST', `/v1/accounts/${account.id}/authorize`, { key: ctx.keys.read, body: { action: 'outbound_call', destination: '12' } })).status, 422);
    t.equal((await ctx.call('GET', '/v1/plans')).status, 200);
    return lines.filter((l) => l.msg === 'incoming request').map((l) => l.req!.url!.replace(account.id, '{id}'));
  };
  t.same(await linesFor('info'), ['/v1/plans'], 'at info: the catalog request is logged, the two authorize calls are not');
  t.same(await linesFor('debug'), ['/v1/accounts/{id}/authorize', '/v1/accounts/{id}/authorize', '/v1/plans'], 'at debug: every request');
});

t.test('/metrics counts authorize answers by action and outcome (the hot routes log no request lines at info)', async (t) => {
  const ctx = await setup(t);
  const paid = await paidAccount(ctx, 100000);
  for (let i = 0; i < 3; i++) t.equal((await authorize(ctx, paid.id, call)).allowed, true);
  t.equal((await authorize(ctx, paid.id, smsIndia)).reason, 'dlt_required');
  const held = await authorize(ctx, paid.id, { ...call, hold: { reference: 'metrics-1' } });
  t.ok(held.allowed && held.hold, 'a call allowed with its hold');
  t.equal((await authorize(ctx, paid.id, { action: 'outbound_call', hold: { reference: 'metrics-2' } })).reason, 'destination_required');
  const text = (await ctx.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${ctx.keys.ops}` } })).body;
  const count = (action: string, outcome: string) => Number(new RegExp(`^billing_authorizations_total\\{action="${action}",outcome="${outcome}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  t.equal(count('outbound_call', 'allowed'), 4, 'three checks and one with a hold');
  t.equal(count('outbound_sms', 'dlt_required'), 1);
  t.equal(count('outbound_call', 'destination_required'), 1);
  t.match(text, /# TYPE billing_authorizations_total counter/);
});
