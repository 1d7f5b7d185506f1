import t from 'tap';
import { deliverEvents, paidAccount, setup, type TestContext } from './helper.js';
import { smtpReceiver } from './smtp.js';

const sms = (accountId: string, id: string, segments = 1) => ({ id, accountId, type: 'sms', segments });
const events = async (ctx: TestContext, type: string, accountId: string) =>
  (await ctx.query('select payload from outbox where type = $1 and account_id = $2 order by id', [type, accountId])).rows.map((r) => r.payload);

t.test('a burst of usage that crosses the low-balance line sends one alert and one email; credits arm it again', async (t) => {
  const ctx = await setup(t);
  // ₹600 of credits; the default line is ₹500 (50,000 paise).
  const account = await paidAccount(ctx, 60_000);
  t.same((await ctx.call('GET', `/v1/accounts/${account.id}/credits`)).body.alerts, { lowBalanceThreshold: 50_000, forecastHorizonHours: 168, lowBalanceAlerted: false, forecastAlerted: false });
  // 400 SMS of 2 segments at once (₹200 in all): the balance passes ₹500 once, mid-burst, whatever the batching.
  await Promise.all(
    Array.from({ length: 40 }, (_, b) =>
      ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: { events: Array.from({ length: 10 }, (_, i) => sms(account.id, `s-${b}-${i}`, 2)) } }),
    ),
  );
  t.equal((await ctx.call('GET', `/v1/accounts/${account.id}/credits`)).body.balance, 40_000);
  const alerts = await events(ctx, 'credits.low_balance', account.id);
  t.equal(alerts.length, 1, 'one alert for the crossing, not one per debit');
  t.equal(alerts[0].threshold, 50_000);
  t.ok(alerts[0].available < 50_000 && alerts[0].available >= 40_000, `sent by the transaction that crossed, with what it left (${alerts[0].available})`);
  t.equal((await ctx.call('GET', `/v1/accounts/${account.id}/credits`)).body.alerts.lowBalanceAlerted, true);

  // More debits below the line: nothing more.
  await ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: { events: [sms(account.id, 'after-1'), sms(account.id, 'after-2')] } });
  t.equal((await events(ctx, 'credits.low_balance', account.id)).length, 1);

  const smtp = await smtpReceiver(t);
  await deliverEvents(ctx, smtp.url);
  const parsed = await Promise.all(smtp.received.map((m) => smtp.parse(m)));
  const mails = parsed.filter((m) => m.subject?.startsWith('Your credits are running low'));
  t.equal(mails.length, 1, 'one email');
  const mail = mails[0]!;
  t.match(mail.subject, /^Your credits are running low: ₹[\d,.]+ left$/);
  t.match(mail.text, /Your available credits fell to ₹[\d,.]+, under your alert threshold of ₹500\.00/);
  t.notMatch(mail.text ?? '', /paise|\b49\d{3}\b/, 'no minor units');

  // A top-up that stays under the line does not arm it; one that lifts available above does.
  await ctx.call('POST', `/v1/accounts/${account.id}/credits/adjustments`, { body: { amount: 1_000, reason: 'small goodwill' }, headers: { 'idempotency-key': 'adj-small' } });
  t.equal((await ctx.call('GET', `/v1/accounts/${account.id}/credits`)).body.alerts.lowBalanceAlerted, true);
  await ctx.call('POST', `/v1/accounts/${account.id}/credits/adjustments`, { body: { amount: 20_000, reason: 'top-up' }, headers: { 'idempotency-key': 'adj-big' } });
  t.equal((await ctx.call('GET', `/v1/accounts/${account.id}/credits`)).body.alerts.lowBalanceAlerted, false, 'armed again');
  await ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: { events: Array.from({ length: 5 }, (_, i) => sms(account.id, `cross-again-${i}`, 100)) } });
  t.equal((await events(ctx, 'credits.low_balance', account.id)).length, 2, 'the next crossing alerts again');
});

t.test('an ops debit that crosses the line alerts too; the same reference for another call is refused', async (t) => {
  const ctx = await setup(t);
  const account = await paidAccount(ctx, 60_000);
  t.same(await events(ctx, 'credits.low_balance', account.id), [], 'nothing above the line');
  await ctx.call('POST', `/v1/accounts/${account.id}/credits/adjustments`, { body: { amount: -57_000, reason: 'correction' }, headers: { 'idempotency-key': 'adj-down' } });
  t.same(await events(ctx, 'credits.low_balance', account.id), [{ accountId: account.id, balance: 3_000, held: 0, available: 3_000, threshold: 50_000, currency: 'INR' }]);
  await ctx.call('POST', `/v1/accounts/${account.id}/credits/adjustments`, { body: { amount: -1_000, reason: 'again' }, headers: { 'idempotency-key': 'adj-down-2' } });
  t.equal((await events(ctx, 'credits.low_balance', account.id)).length, 1, 'once');

  const first = await ctx.call('POST', `/v1/accounts/${account.id}/holds`, { key: ctx.keys.write, body: { action: 'outbound_call', destination: '+919876543210', reference: 'r1' } });
  t.equal(first.status, 201);
  const other = await ctx.call('POST', `/v1/accounts/${account.id}/holds`, { key: ctx.keys.write, body: { action: 'outbound_sms', destination: '+919876543210', reference: 'r1' } });
  t.same([other.status, other.body.code], [422, 'hold_reference_reused']);
  // An SMS record naming a call's hold does not settle it.
  const sms1 = await ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: { events: [{ ...sms(account.id, 'sms-r1'), holdId: first.body.hold.id }] } });
  t.same([sms1.body.results[0].status, sms1.body.results[0].holdId], ['debited', null]);
  t.equal((await ctx.call('GET', `/v1/holds/${first.body.hold.id}`, { key: ctx.keys.read })).body.status, 'active');
});

t.test('holds count: a hold that leaves available under the account\'s own line alerts; the line is the account\'s to set', async (t) => {
  const ctx = await setup(t, { LOW_BALANCE_THRESHOLD_INR: '0' });
  const account = await paidAccount(ctx, 10_000);
  const set = await ctx.call('PUT', `/v1/accounts/${account.id}/credits/alerts`, { key: ctx.keys.write, body: { lowBalanceThreshold: 5_000, forecastHorizonHours: 24 } });
  t.same(set.body, { lowBalanceThreshold: 5_000, forecastHorizonHours: 24, lowBalanceAlerted: false, forecastAlerted: false });
  t.equal((await ctx.call('PUT', `/v1/accounts/${account.id}/credits/alerts`, { key: ctx.keys.write, body: { lowBalanceThreshold: -1, forecastHorizonHours: null } })).status, 400);
  await ctx.call('POST', `/v1/accounts/${account.id}/holds`, { key: ctx.keys.write, body: { action: 'outbound_call', destination: '+919876543210', reference: 'h1', units: 50 } });
  const alerts = await events(ctx, 'credits.low_balance', account.id);
  t.same(alerts, [], 'not yet: 7,000 available');
  await ctx.call('POST', `/v1/accounts/${account.id}/holds`, { key: ctx.keys.write, body: { action: 'outbound_call', destination: '+919876543210', reference: 'h2', units: 50 } });
  t.same(await events(ctx, 'credits.low_balance', account.id), [{ accountId: account.id, balance: 10_000, held: 6_000, available: 4_000, threshold: 5_000, currency: 'INR' }]);
});

t.test('a depletion forecast under the horizon sends one event and one email; India auto-recharge says when it lands', async (t) => {
  const ctx = await setup(t, { LOW_BALANCE_THRESHOLD_INR: '0', PRE_DEBIT_NOTICE_HOURS: '24' });
  const account = await paidAccount(ctx, 200_000);
  await ctx.call('PUT', `/v1/accounts/${account.id}/credits/auto-recharge`, { key: ctx.keys.write, body: { enabled: true, threshold: 50_000, amount: 100_000 } });
  // ₹100 an hour for the last two hours.
  for (const hour of [0, 1]) {
    await ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: { events: Array.from({ length: 400 }, (_, i) => sms(account.id, `h${hour}-${i}`)) } });
    ctx.clock.advance(3_600_000);
  }
  ctx.clock.advance(-60_000); // within the hour of the last burst: ₹1,800 left at ₹100 an hour lasts 18 hours
  await ctx.call('PUT', `/v1/accounts/${account.id}/credits/alerts`, { key: ctx.keys.write, body: { lowBalanceThreshold: null, forecastHorizonHours: 12 } });
  t.equal(await ctx.services.forecasts.sweep(), 0, 'beyond a 12-hour horizon: nothing');
  await ctx.call('PUT', `/v1/accounts/${account.id}/credits/alerts`, { key: ctx.keys.write, body: { lowBalanceThreshold: null, forecastHorizonHours: 24 } });
  t.equal(await ctx.services.forecasts.sweep(), 1, 'within 24 hours: one forecast');
  t.equal(await ctx.services.forecasts.sweep(), 0, 'once');
  const [forecast] = await events(ctx, 'credits.depletion_forecast', account.id);
  t.match(forecast, {
    available: 180_000,
    spentLastHour: 10_000,
    spentLastDay: 20_000,
    ratePerHour: 10_000,
    hoursLeft: 18,
    runsOutAt: '2026-11-27T05:59:00.000Z',
    horizonHours: 24,
    autoRecharge: { threshold: 50_000, amount: 100_000, expectedAt: '2026-11-27T00:59:00.000Z', noticeHours: 24, landsAt: '2026-11-28T00:59:00.000Z', landsBeforeDepletion: false },
  });

  const smtp = await smtpReceiver(t);
  await deliverEvents(ctx, smtp.url);
  const mails = smtp.received.filter((m) => /Subject: At your current usage, your credits last about 18 hours/.test(m.raw));
  t.equal(mails.length, 1, 'one email');
  const text = (await smtp.parse(mails[0]!)).text ?? '';
  t.match(text, /about ₹100\.00 an hour/);
  t.match(text, /Your auto-recharge of ₹1,000\.00 can only be charged around .* after the 24-hour pre-debit notice your e-mandate requires: that is after your credits run out/);

  // A purchase arms it again; the next sweep forecasts afresh.
  await ctx.call('POST', `/v1/accounts/${account.id}/credits/adjustments`, { body: { amount: 10_000, reason: 'top-up' }, headers: { 'idempotency-key': 'adj-1' } });
  t.equal((await ctx.call('GET', `/v1/accounts/${account.id}/credits`)).body.alerts.forecastAlerted, false);
  t.equal(await ctx.services.forecasts.sweep(), 1, 'still under 24 hours at this rate: forecast again');
});

t.test('an idle account gets no forecast', async (t) => {
  const ctx = await setup(t, { LOW_BALANCE_THRESHOLD_INR: '0' });
  await paidAccount(ctx, 1_000);
  t.equal(await ctx.services.forecasts.sweep(), 0);
});

t.test('the forecast sweep pages through every candidate: none is starved by the ones before it', async (t) => {
  const ctx = await setup(t, { LOW_BALANCE_THRESHOLD_INR: '0' });
  const { createDepletionForecasts } = await import('../src/modules/credits/alerts.js');
  const accounts = [await paidAccount(ctx, 2_000), await paidAccount(ctx, 2_000), await paidAccount(ctx, 2_000)];
  // Each spends ₹10 this hour: ₹10 left lasts an hour, well inside the default week.
  for (const a of accounts) await ctx.call('POST', '/v1/usage', { key: ctx.keys.write, body: { events: Array.from({ length: 40 }, (_, i) => sms(a.id, `p-${i}`)) } });
  const forecasts = createDepletionForecasts({ db: ctx.database.db, clock: ctx.clock, horizonHours: 168, mandate: { capInr: 1_500_000, noticeHours: 24 }, batch: 1 });
  t.equal(await forecasts.sweep(), 3, 'pages of one account each, all three forecast');
  t.equal(await forecasts.sweep(), 0);
});
