import t, { type Test } from 'tap';
import { paidAccount, readyAccount, setup, type TestContext } from './helper.js';

const sms = (accountId: string, id: string, segments = 1) => ({ id, accountId, type: 'sms', segments });

async function assertInvariants(t: Test, ctx: TestContext) {
  const report = await ctx.call('GET', '/v1/ops/ledger-invariants');
  t.same(report.body.violations, [], `ledger invariants hold over ${report.body.accountsChecked} accounts`);
}

t.test('200 concurrent debits of one SMS against a balance of 100 SMS: exactly 100 succeed', async (t) => {
  const ctx = await setup(t);
  const account = await paidAccount(ctx, 100 * 25);
  const results = await Promise.all(
    Array.from({ length: 200 }, (_, i) => ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: { events: [sms(account.id, `sms-${i}`)] } })),
  );
  const statuses = results.map((r) => r.body.results[0].status);
  t.equal(statuses.filter((s) => s === 'debited').length, 100);
  t.ok(results.filter((r) => r.body.results[0].status === 'rejected').every((r) => r.body.results[0].reason === 'insufficient_credits'));
  const credits = await ctx.call('GET', `/v1/accounts/${account.id}/credits`);
  t.equal(credits.body.balance, 0);
  await assertInvariants(t, ctx);
});

t.test('the same usage batch sent 5 times at once debits once', async (t) => {
  const ctx = await setup(t);
  const account = await paidAccount(ctx, 100000);
  const batch = { events: [{ id: 'call-1', accountId: account.id, type: 'voice_call', durationSeconds: 61 }, sms(account.id, 'sms-1', 3)] };
  const results = await Promise.all(Array.from({ length: 5 }, () => ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: batch })));
  t.equal(results.filter((r) => !r.body.results[0].duplicate).length, 1, 'one run rated it, four saw duplicates');
  for (const r of results) {
    t.same(
      r.body.results.map((x: any) => [x.id, x.status, x.units, x.amount]),
      [
        ['call-1', 'debited', 2, 120],
        ['sms-1', 'debited', 3, 75],
      ],
      '61 s = 2 pulses x 60; 3 segments x 25; every answer the same',
    );
  }
  t.equal((await ctx.call('GET', `/v1/accounts/${account.id}/credits`)).body.balance, 100000 - 195);
  const ledger = await ctx.call('GET', `/v1/accounts/${account.id}/credits/ledger?limit=2`);
  t.same(ledger.body.data.map((e: any) => [e.kind, e.amount, e.sourceKey]), [
    ['usage', -75, `usage:${account.id}:sms-1`],
    ['usage', -120, `usage:${account.id}:call-1`],
  ]);
  t.ok(ledger.body.nextCursor);
  const older = await ctx.call('GET', `/v1/accounts/${account.id}/credits/ledger?limit=5&cursor=${ledger.body.nextCursor}`);
  t.same(older.body.data.map((e: any) => e.kind), ['upgrade'], 'the initial credit');
  await assertInvariants(t, ctx);
});

t.test('usage is rejected per event: insufficient credits, limited, trial, unknown account', async (t) => {
  const ctx = await setup(t);
  const paid = await paidAccount(ctx, 100);
  const trial = await readyAccount(ctx);
  const limited = await paidAccount(ctx, 1000);
  await ctx.query("update accounts set status = 'limited' where id = $1", [limited.id]);
  const res = await ctx.call('POST', '/v1/usage', {
    key: ctx.keys.write,
    body: {
      events: [
        sms(paid.id, 'a', 4),
        sms(paid.id, 'b', 1),
        { id: 'c', accountId: paid.id, type: 'voice_call', durationSeconds: 0 },
        sms(limited.id, 'd'),
        sms(trial.id, 'e'),
        sms('acc_00000000000000000000000000', 'f'),
      ],
    },
  });
  t.equal(res.status, 200, 'the batch does not fail');
  t.same(
    res.body.results.map((r: any) => [r.id, r.status, r.reason]),
    [
      ['a', 'debited', null],
      ['b', 'rejected', 'insufficient_credits'],
      ['c', 'debited', null],
      ['d', 'rejected', 'account_limited'],
      ['e', 'rejected', 'not_billable'],
      ['f', 'rejected', 'account_not_found'],
    ],
  );
  t.equal(res.body.balances.find((b: any) => b.accountId === paid.id).balance, 0);
  const bound = await ctx.key(['write'], paid.id);
  const other = await ctx.call('POST', '/v1/usage', { key: bound, body: { events: [sms(limited.id, 'g')] } });
  t.equal(other.body.results[0].reason, 'account_not_found', 'a bound key rates only its own account');
  await assertInvariants(t, ctx);
});

t.test('ops adjustments: reasoned, idempotent, never below zero', async (t) => {
  const ctx = await setup(t);
  const account = await paidAccount(ctx, 100000);
  const body = { amount: -100001, reason: 'too much' };
  const refused = await ctx.call('POST', `/v1/accounts/${account.id}/credits/adjustments`, { body, headers: { 'idempotency-key': 'neg' } });
  t.equal(refused.status, 409);
  t.equal(refused.body.code, 'insufficient_credits');
  const ok = { amount: 5000, reason: 'Goodwill for the outage' };
  t.equal((await ctx.call('POST', `/v1/accounts/${account.id}/credits/adjustments`, { body: ok, headers: { 'idempotency-key': 'gw' } })).status, 201);
  t.equal((await ctx.call('POST', `/v1/accounts/${account.id}/credits/adjustments`, { body: ok, headers: { 'idempotency-key': 'gw' } })).status, 201);
  t.equal((await ctx.call('GET', `/v1/accounts/${account.id}/credits`)).body.balance, 105000, 'applied once');
  await ctx.call('PUT', `/v1/accounts/${account.id}/credits/auto-recharge`, { body: { enabled: true, threshold: 1000, amount: 5000 } });
  const withSettings = await ctx.call('POST', `/v1/accounts/${account.id}/credits/adjustments`, { body: { amount: 1, reason: 'show settings' }, headers: { 'idempotency-key': 'gw2' } });
  t.same(withSettings.body.autoRecharge, { enabled: true, threshold: 1000, amount: 5000 }, 'the answer is the same credits view as GET');
  t.equal((await ctx.call('POST', `/v1/accounts/${account.id}/credits/adjustments`, { key: ctx.keys.write, body: ok, headers: { 'idempotency-key': 'w' } })).status, 403);
  await t.rejects(ctx.query('update credit_ledger set amount = 1'), /append-only/, 'ledger rows cannot be edited');
  await t.rejects(ctx.query('delete from credit_ledger'), /append-only/, 'nor deleted');
  await assertInvariants(t, ctx);
});

t.test('every authorization reason', async (t) => {
  const ctx = await setup(t, { PAST_DUE_GRACE_DAYS: '3' });
  const authorize = async (accountId: string, action: string, destination?: string) =>
    (await ctx.call('POST', `/v1/accounts/${accountId}/authorize`, { key: ctx.keys.read, body: { action, destination } })).body;

  const trial = await readyAccount(ctx);
  await ctx.call('POST', `/v1/accounts/${trial.id}/whitelisted-numbers`, { body: { number: '+14155550123' } });
  t.same(await authorize(trial.id, 'outbound_call', '+14155550100'), { allowed: false, reason: 'number_not_whitelisted', detail: 'Trial accounts may call and text whitelisted numbers only' });
  t.equal((await authorize(trial.id, 'outbound_call', '+14155550123')).allowed, true, 'a whitelisted number');
  t.equal((await authorize(trial.id, 'outbound_call')).reason, 'destination_required');
  t.equal((await authorize(trial.id, 'whatsapp')).reason, 'feature_not_in_plan');
  t.equal((await authorize(trial.id, 'campaign')).reason, 'feature_not_in_plan');
  t.equal((await authorize(trial.id, 'purchase_exophone')).reason, 'paid_plan_required');
  const noKyc = (await ctx.call('POST', '/v1/accounts', { body: { name: 'n', email: 'n@example.com', country: 'IN' } })).body;
  t.equal((await authorize(noKyc.id, 'purchase_exophone')).reason, 'kyc_not_approved');

  const paid = await paidAccount(ctx, 100000);
  t.equal((await authorize(paid.id, 'outbound_call', '+14155550100')).allowed, true, 'paid: any number');
  t.equal((await authorize(paid.id, 'outbound_sms', '+919876543210')).reason, 'dlt_required', 'an Indian account sending SMS to India without DLT');
  t.equal((await authorize(paid.id, 'outbound_sms', '+14155550100')).allowed, true, 'DLT only for Indian numbers');
  await ctx.call('PUT', `/v1/accounts/${paid.id}/dlt`, { key: ctx.keys.write, body: { entityId: '1201159876543210987' } });
  t.equal((await authorize(paid.id, 'outbound_sms', '+919876543210')).allowed, true, 'after DLT registration, from the next check');
  t.equal((await authorize(paid.id, 'whatsapp')).reason, 'feature_not_in_plan', 'Starter without the add-on');
  t.equal((await authorize(paid.id, 'campaign')).allowed, true, 'Starter has basic campaigns');

  await ctx.call('POST', `/v1/accounts/${paid.id}/credits/adjustments`, { body: { amount: -99941, reason: 'leave 59' }, headers: { 'idempotency-key': 'x' } });
  t.equal((await authorize(paid.id, 'outbound_call', '+14155550100')).reason, 'insufficient_credits', '59 paise is less than one 60-paise pulse');
  t.equal((await authorize(paid.id, 'outbound_sms', '+14155550100')).allowed, true, 'but covers one 25-paise SMS');

  const withAddon = await paidAccount(ctx, 100000, { addOns: { whatsapp: true } });
  t.equal((await authorize(withAddon.id, 'whatsapp')).allowed, true, 'the add-on bought');

  await ctx.query("update accounts set status = 'past_due', past_due_since = $2 where id = $1", [withAddon.id, new Date('2026-11-24T10:00:00Z')]);
  t.equal((await authorize(withAddon.id, 'outbound_call', '+14155550100')).allowed, true, 'past_due within grace');
  await ctx.query("update accounts set past_due_since = $2 where id = $1", [withAddon.id, new Date('2026-11-22T09:00:00Z')]);
  t.equal((await authorize(withAddon.id, 'outbound_call', '+14155550100')).reason, 'past_due_beyond_grace');
  await ctx.query("update accounts set status = 'limited' where id = $1", [withAddon.id]);
  t.equal((await authorize(withAddon.id, 'outbound_call', '+14155550100')).reason, 'account_limited');

  const phones = await paidAccount(ctx, 100000);
  for (let i = 0; i < 5; i++) {
    t.equal((await ctx.call('POST', `/v1/accounts/${phones.id}/exophones`, { body: { number: `+9180456789${String(i).padStart(2, '0')}` } })).status, 201);
  }
  t.equal((await authorize(phones.id, 'purchase_exophone')).reason, 'exophone_limit_reached');
  const sixth = await ctx.call('POST', `/v1/accounts/${phones.id}/exophones`, { body: { number: '+918045678999' } });
  t.equal(sixth.status, 409);
  t.equal(sixth.body.code, 'exophone_limit_reached');
  t.equal((await ctx.call('GET', `/v1/accounts/${phones.id}/exophones`)).body.limit, 5, 'Starter: 5');
  const minimum = (await ctx.call('GET', '/v1/plans/plan_enterprise_v1')).body.prices.find((p: any) => p.currency === 'INR').minInitialCredits;
  const enterprise = await paidAccount(ctx, 100000, { planId: 'plan_enterprise_v1', billingCycle: 'annual', initialCredits: minimum });
  const list = await ctx.call('GET', `/v1/accounts/${enterprise.id}/exophones`);
  t.same([list.status, list.body.limit], [200, null], 'Enterprise: unlimited is null, as /entitlements says');
});

t.test('ExoPhones: a paid plan\'s limit, release, and one owner per number', async (t) => {
  const ctx = await setup(t);
  const a = await paidAccount(ctx, 100000);
  const b = await paidAccount(ctx, 100000);
  const bought = await ctx.call('POST', `/v1/accounts/${a.id}/exophones`, { body: { number: '+918045678901' } });
  t.equal(bought.status, 201);
  t.equal((await ctx.call('POST', `/v1/accounts/${a.id}/exophones`, { body: { number: '+918045678901' } })).status, 200, 'again: the same one');
  const taken = await ctx.call('POST', `/v1/accounts/${b.id}/exophones`, { body: { number: '+918045678901' } });
  t.equal(taken.body.code, 'exophone_taken');
  const list = await ctx.call('GET', `/v1/accounts/${a.id}/exophones`);
  t.same([list.body.data.length, list.body.limit], [1, 5]);
  t.equal((await ctx.call('DELETE', `/v1/accounts/${a.id}/exophones/${bought.body.id}`)).status, 204);
  t.equal((await ctx.call('POST', `/v1/accounts/${b.id}/exophones`, { body: { number: '+918045678901' } })).status, 201, 'released numbers can be bought again');

  const growth = await readyAccount(ctx);
  await ctx.call('POST', `/v1/accounts/${growth.id}/upgrade`, {
    body: { planId: 'plan_growth_v1', billingCycle: 'monthly', initialCredits: 500000, paymentMethod: { type: 'card', token: 'tok_visa' } },
    headers: { 'idempotency-key': 'g' },
  });
  for (let i = 0; i < 12; i++) await ctx.call('POST', `/v1/accounts/${growth.id}/exophones`, { body: { number: `+9180456790${String(i).padStart(2, '0')}` } });
  const sub = (await ctx.call('GET', `/v1/accounts/${growth.id}/subscription`)).body;
  const change = await ctx.call('POST', `/v1/subscriptions/${sub.id}/plan-change`, { body: { planId: 'plan_starter_v1' } });
  t.match(change.body.conflicts[0], { code: 'exophone_limit_exceeded', detail: '12 ExoPhones in use, the new limit is 5: no new purchases until below it' }, 'the brief\'s example: 12 in use, limit 5');
});

t.test('event ids are per account: one account cannot claim or probe another\'s', async (t) => {
  const ctx = await setup(t);
  const a = await paidAccount(ctx, 100000);
  const b = await paidAccount(ctx, 100000);
  const keyA = await ctx.key(['write'], a.id);
  t.equal((await ctx.call('POST', '/v1/usage', { key: keyA, body: { events: [sms(a.id, 'call-42')] } })).body.results[0].status, 'debited');
  const res = await ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: { events: [sms(b.id, 'call-42')] } });
  t.same([res.body.results[0].status, res.body.results[0].duplicate], ['debited', false], 'B\'s event with the same id is B\'s own');
  const race = await Promise.all(
    Array.from({ length: 10 }, (_, i) => ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: { events: [sms(i % 2 ? a.id : b.id, 'same-moment')] } })),
  );
  t.ok(race.every((r) => r.status === 200), 'no 500 when two accounts send one id at once');
  await assertInvariants(t, ctx);
});

t.test('the invariants check finds a paid credit purchase without its credit', async (t) => {
  const ctx = await setup(t);
  ctx.allowLedgerViolations();
  const a = await paidAccount(ctx, 100000);
  await ctx.query(
    "insert into payments (id, account_id, purpose, status, amount, currency, method_type, payment_method_id, request, created_at, updated_at) select 'pay_ghost', account_id, 'purchase', 'succeeded', 1180, currency, method_type, payment_method_id, '{\"credits\": 1000}', now(), now() from payments where account_id = $1 limit 1",
    [a.id],
  );
  const report = await ctx.call('GET', `/v1/ops/ledger-invariants?accountId=${a.id}`);
  t.same(report.body.violations.map((v: any) => v.rule), ['payment_credited']);
});

t.test('two accounts buying one number at once: one gets it, the other 409', async (t) => {
  const ctx = await setup(t);
  const a = await paidAccount(ctx, 100000);
  const b = await paidAccount(ctx, 100000);
  const results = await Promise.all([a, b, a, b].map((acc) => ctx.call('POST', `/v1/accounts/${acc.id}/exophones`, { body: { number: '+918045670000' } })));
  t.ok(results.every((r) => [200, 201, 409].includes(r.status)), `no 500: ${results.map((r) => r.status)}`);
  t.equal(results.filter((r) => r.status === 201).length, 1);
});
