import t from 'tap';
import { createAccount, setup } from './helper.js';

t.test('GET /v1/plans carries every row of the brief\'s plan table', async (t) => {
  const ctx = await setup(t);
  const res = await ctx.call('GET', '/v1/plans');
  t.equal(res.status, 200);
  const byCode = Object.fromEntries(res.body.data.map((p: any) => [p.code, p]));
  t.same(Object.keys(byCode).sort(), ['enterprise', 'growth', 'starter'], 'the three standard plans, not the trial');
  const { starter, growth, enterprise } = byCode;

  // Monthly minimum: low / medium / custom commitment, priced in both currencies.
  t.same([starter.commitment, growth.commitment, enterprise.commitment], ['low', 'medium', 'custom']);
  for (const plan of [starter, growth, enterprise]) {
    t.same(plan.prices.map((p: any) => p.currency).sort(), ['INR', 'USD'], `${plan.code} priced in INR and USD`);
    for (const price of plan.prices) {
      t.ok(Number.isInteger(price.monthlyMinimum) && price.monthlyMinimum > 0, 'monthly minimum in minor units');
      t.ok(Number.isInteger(price.minInitialCredits) && price.minInitialCredits > 0, 'minimum initial credits');
      t.equal(price.pulseSeconds, 60, 'pulse length');
      t.ok(Number.isInteger(price.perPulseRate) && Number.isInteger(price.perSmsRate), 'per-pulse and per-SMS rates');
    }
  }
  const inr = (p: any) => p.prices.find((x: any) => x.currency === 'INR');
  t.ok(inr(starter).monthlyMinimum < inr(growth).monthlyMinimum && inr(growth).monthlyMinimum < inr(enterprise).monthlyMinimum, 'low < medium < custom');
  t.ok(inr(starter).whatsappAddonMonthly > 0, 'Starter prices the WhatsApp add-on');
  t.equal(inr(growth).whatsappAddonMonthly, null, 'Growth includes WhatsApp');

  const e = (p: any) => p.entitlements;
  t.same([e(starter).exophones.limit, e(growth).exophones.limit, e(enterprise).exophones.limit], [5, 20, null], 'ExoPhones: 5, 20, unlimited');
  for (const plan of [starter, growth, enterprise]) {
    t.equal(e(plan).voiceApi, 'full', 'Voice API: full access');
    t.equal(e(plan).smsApi, 'full', 'SMS API: full access');
    t.equal(e(plan).numberWhitelisting.required, false, 'no whitelisting on paid plans');
  }
  t.same([e(starter).whatsapp, e(growth).whatsapp, e(enterprise).whatsapp], ['add_on', 'included', 'included'], 'WhatsApp');
  t.same([e(starter).campaigns, e(growth).campaigns, e(enterprise).campaigns], ['basic', 'advanced', 'full_suite'], 'Campaigns');
  t.same([e(starter).contactCenter, e(growth).contactCenter, e(enterprise).contactCenter], ['not_available', 'basic', 'full'], 'Contact center');
  t.same(
    [e(starter).callRecording, e(growth).callRecording, e(enterprise).callRecording],
    [{ retentionDays: 30, custom: false }, { retentionDays: 90, custom: false }, { retentionDays: 365, custom: true }],
    'Call recording: 30, 90, custom retention',
  );
  t.same([e(starter).analytics, e(growth).analytics, e(enterprise).analytics], ['standard', 'advanced', 'custom_dashboards'], 'Analytics');
  t.same(
    [e(starter).support, e(growth).support, e(enterprise).support],
    [
      { tier: 'email_chat', channels: ['email', 'chat'] },
      { tier: 'priority', channels: ['email', 'chat', 'phone'] },
      { tier: 'dedicated_account_manager', channels: ['email', 'chat', 'phone'] },
    ],
    'Support',
  );
  t.same(
    [e(starter).sla, e(growth).sla, e(enterprise).sla.custom],
    [{ uptimePercent: 99.5, custom: false }, { uptimePercent: 99.9, custom: false }, true],
    'SLA: 99.5%, 99.9%, custom',
  );
  t.same(
    [e(starter).apiRateLimit.tier, e(growth).apiRateLimit.tier, e(enterprise).apiRateLimit.tier],
    ['standard', 'higher', 'custom'],
    'API rate limits',
  );
  t.ok(e(growth).apiRateLimit.requestsPerMinute > e(starter).apiRateLimit.requestsPerMinute, 'higher is higher');
  t.same([e(starter).webhooks, e(growth).webhooks, e(enterprise).webhooks], ['standard', 'priority', 'guaranteed'], 'Webhooks');

  const inrOnly = await ctx.call('GET', '/v1/plans?currency=INR');
  t.ok(inrOnly.body.data.every((p: any) => p.prices.length === 1 && p.prices[0].currency === 'INR'), 'currency filter');
});

t.test('billing cycles: monthly 0%, quarterly 5%, annual 15%', async (t) => {
  const ctx = await setup(t);
  const res = await ctx.call('GET', '/v1/billing-cycles', { key: ctx.keys.read });
  t.equal(res.status, 200);
  t.same(
    res.body.data.map((c: any) => [c.code, c.months, c.discountBps, c.discountPercent]),
    [
      ['monthly', 1, 0, 0],
      ['quarterly', 3, 500, 5],
      ['annual', 12, 1500, 15],
    ],
  );
});

t.test('a price change makes a new version and leaves the old one as it was', async (t) => {
  const ctx = await setup(t);
  const before = (await ctx.call('GET', '/v1/plans/plan_starter_v1')).body;
  const newPrices = before.prices.map((p: any) => ({ ...p, monthlyMinimum: p.monthlyMinimum + 100 }));

  const refused = await ctx.call('POST', '/v1/plans/plan_starter_v1/versions', { key: ctx.keys.write, body: { prices: newPrices } });
  t.equal(refused.status, 403, 'ops only');

  const created = await ctx.call('POST', '/v1/plans/plan_starter_v1/versions', { body: { prices: newPrices } });
  t.equal(created.status, 201);
  t.equal(created.body.id, 'plan_starter_v2');
  t.equal(created.body.version, 2);
  t.same(created.body.entitlements, before.entitlements, 'entitlements kept');

  const old = (await ctx.call('GET', '/v1/plans/plan_starter_v1')).body;
  t.same(old.prices, before.prices, 'the old version keeps its prices, so its subscribers pay the same');
  t.equal(old.current, false);

  const listed = (await ctx.call('GET', '/v1/plans')).body.data.filter((p: any) => p.code === 'starter');
  t.same(listed.map((p: any) => p.id), ['plan_starter_v2'], 'new purchases see only the new version');

  const stale = await ctx.call('POST', '/v1/plans/plan_starter_v1/versions', { body: { prices: newPrices } });
  t.equal(stale.status, 409);
  t.equal(stale.body.code, 'plan_version_conflict');

  const dupCurrency = await ctx.call('POST', '/v1/plans/plan_starter_v2/versions', { body: { prices: [newPrices[0], newPrices[0]] } });
  t.equal(dupCurrency.status, 400, 'one price per currency');
});

t.test('two concurrent version changes: one wins, the other gets 409', async (t) => {
  const ctx = await setup(t);
  const prices = (await ctx.call('GET', '/v1/plans/plan_growth_v1')).body.prices;
  const results = await Promise.all([1, 2].map(() => ctx.call('POST', '/v1/plans/plan_growth_v1/versions', { body: { prices } })));
  t.same(results.map((r) => r.status).sort(), [201, 409]);
});

t.test('custom Enterprise plan offered to one account', async (t) => {
  const ctx = await setup(t);
  const a = await createAccount(ctx, { country: 'IN' });
  const b = await createAccount(ctx, { country: 'IN' });
  const body = {
    accountId: a.id,
    name: 'Acme Enterprise',
    exophoneLimit: 200,
    callRecordingRetentionDays: 730,
    slaUptimePercent: 99.99,
    apiRateLimitPerMinute: 20000,
    prices: [{ currency: 'INR', monthlyMinimum: 7500000, minInitialCredits: 5000000, perPulseRate: 35, perSmsRate: 18, whatsappAddonMonthly: null }],
  };
  t.equal((await ctx.call('POST', '/v1/plans/custom', { key: ctx.keys.write, body })).status, 403, 'ops only');

  const usdOnly = await ctx.call('POST', '/v1/plans/custom', { body: { ...body, prices: [{ ...body.prices[0], currency: 'USD' }] } });
  t.equal(usdOnly.status, 422);
  t.equal(usdOnly.body.code, 'currency_not_priced');

  const created = await ctx.call('POST', '/v1/plans/custom', { body });
  t.equal(created.status, 201);
  const plan = created.body;
  t.equal(plan.kind, 'custom');
  t.equal(plan.tier, 'enterprise');
  t.equal(plan.offeredToAccountId, a.id);
  t.same(plan.entitlements.exophones.limit, 200);
  t.same(plan.entitlements.callRecording, { retentionDays: 730, custom: true });
  t.same(plan.entitlements.sla, { uptimePercent: 99.99, custom: true });
  t.same(plan.entitlements.apiRateLimit, { tier: 'custom', requestsPerMinute: 20000 });
  t.equal(plan.entitlements.webhooks, 'guaranteed', 'the rest is Enterprise');
  t.equal(plan.prices[0].pulseSeconds, 60, 'pulse length defaults to 60 s');

  const keyA = await ctx.key(['read'], a.id);
  const keyB = await ctx.key(['read'], b.id);
  const seenByA = (await ctx.call('GET', '/v1/plans', { key: keyA })).body.data.map((p: any) => p.id);
  const seenByB = (await ctx.call('GET', '/v1/plans', { key: keyB })).body.data.map((p: any) => p.id);
  t.ok(seenByA.includes(plan.id), 'the account it is offered to sees it');
  t.notOk(seenByB.includes(plan.id), 'another account does not');
  t.equal((await ctx.call('GET', `/v1/plans/${plan.id}`, { key: keyB })).status, 404);
  t.equal((await ctx.call('GET', `/v1/plans/${plan.id}`, { key: keyA })).status, 200);
  t.notOk((await ctx.call('GET', '/v1/plans')).body.data.some((p: any) => p.id === plan.id), 'not in the public list');
  t.ok((await ctx.call('GET', `/v1/plans?accountId=${a.id}`)).body.data.some((p: any) => p.id === plan.id), 'ops can list an account\'s offers');
  t.equal((await ctx.call('GET', `/v1/plans?accountId=${a.id}`, { key: keyB })).status, 404, 'a bound key cannot ask for another account');

  const missing = await ctx.call('POST', '/v1/plans/custom', { body: { ...body, accountId: 'acc_00000000000000000000000000' } });
  t.equal(missing.status, 404);
});

t.test('unknown plan is 404 problem+json', async (t) => {
  const ctx = await setup(t);
  const res = await ctx.call('GET', '/v1/plans/plan_nope_v1');
  t.equal(res.status, 404);
  t.equal(res.body.code, 'plan_not_found');
  t.match(res.headers['content-type'], /application\/problem\+json/);
});

t.test('review fixes: custom plans take an Idempotency-Key, versions keep every currency, unknown accountId is 404', async (t) => {
  const ctx = await setup(t);
  const a = await createAccount(ctx);
  const body = {
    accountId: a.id,
    name: 'Once',
    prices: [{ currency: 'INR', monthlyMinimum: 1, minInitialCredits: 1, perPulseRate: 1, perSmsRate: 1, whatsappAddonMonthly: null }],
  };
  const first = await ctx.call('POST', '/v1/plans/custom', { body, headers: { 'idempotency-key': 'cp-1' } });
  const second = await ctx.call('POST', '/v1/plans/custom', { body, headers: { 'idempotency-key': 'cp-1' } });
  t.equal(first.body.id, second.body.id, 'one plan');
  t.equal((await ctx.query("select count(*)::int as n from plans where kind = 'custom'")).rows[0].n, 1);

  const usdOnly = (await ctx.call('GET', '/v1/plans/plan_starter_v1')).body.prices.filter((p: any) => p.currency === 'USD');
  const dropped = await ctx.call('POST', '/v1/plans/plan_starter_v1/versions', { body: { prices: usdOnly } });
  t.equal(dropped.status, 422);
  t.equal(dropped.body.code, 'currency_not_priced');
  t.same(dropped.body.missingCurrencies, ['INR']);

  const unknown = await ctx.call('GET', '/v1/plans?accountId=acc_00000000000000000000000000');
  t.equal(unknown.status, 404);
  t.equal(unknown.body.code, 'account_not_found');
});
