import t from 'tap';
import { deliverEvents, pdfText, readyAccount, setup, writeCounts } from './helper.js';
import { smtpReceiver } from './smtp.js';

const upgradeBody = {
  planId: 'plan_starter_v1',
  billingCycle: 'quarterly',
  addOns: { whatsapp: true },
  initialCredits: 200000,
  paymentMethod: { type: 'card', token: 'tok_visa' },
  autoRecharge: { enabled: true, threshold: 50000, amount: 200000 },
};

t.test('the brief, end to end: trial, KYC, quote, upgrade by card, invoice, credits, email with PDF, configuration kept', async (t) => {
  const smtp = await smtpReceiver(t);
  const ctx = await setup(t);
  const account = await readyAccount(ctx, { name: 'Acme <Telecom>', email: 'owner@acme.example', country: 'IN' });
  const accountKey = await ctx.key(['read', 'write'], account.id);
  await ctx.call('POST', `/v1/accounts/${account.id}/whitelisted-numbers`, { key: accountKey, body: { number: '+919811111111' } });

  const before = {
    account: (await ctx.call('GET', `/v1/accounts/${account.id}`)).body,
    whitelist: (await ctx.call('GET', `/v1/accounts/${account.id}/whitelisted-numbers`)).body,
    keys: (await ctx.query('select id, hash, scopes, account_id, revoked_at from api_keys order by id')).rows,
  };

  // Step 2: review the plan summary.
  const { paymentMethod, ...quoteBody } = upgradeBody;
  const quote = await ctx.call('POST', `/v1/accounts/${account.id}/upgrade/quote`, {
    key: accountKey,
    body: { ...quoteBody, paymentMethodType: paymentMethod.type },
  });
  t.equal(quote.status, 200);
  t.same(
    quote.body.lines.map((l: any) => [l.kind, l.grossAmount, l.discountAmount, l.amount]),
    [
      ['plan_fee', 750000, 37500, 712500],
      ['whatsapp_addon', 300000, 15000, 285000],
      ['credits', 200000, 0, 200000],
    ],
    'plan fee = monthly minimum x 3 less 5%, add-on likewise, credits',
  );
  t.same([quote.body.subtotal, quote.body.tax, quote.body.total], [1197500, { label: 'CGST 9% + SGST 9%', rateBps: 1800, amount: 215550, components: [{ name: 'CGST', rateBps: 900, amount: 107775 }, { name: 'SGST', rateBps: 900, amount: 107775 }] }, 1413050]);
  t.same(quote.body.allowedPaymentMethods, ['card', 'netbanking', 'upi']);
  t.same([quote.body.canUpgrade, quote.body.blockers], [true, []]);
  t.equal(quote.body.entitlementsAfter.exophones.limit, 5);
  t.equal(quote.body.period.start, '2026-11-26T10:00:00.000Z');
  t.equal(quote.body.period.end, '2027-02-26T10:00:00.000Z');
  const countsAfterQuote = await writeCounts(ctx);
  t.equal(countsAfterQuote.payments, 0, 'the quote writes nothing');

  // Steps 4-5: credits and payment.
  const res = await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, { key: accountKey, body: upgradeBody, headers: { 'idempotency-key': 'upgrade-1' } });
  t.equal(res.status, 201);
  const { account: upgraded, subscription, invoice, payment } = res.body;
  t.equal(res.body.status, 'active');
  t.equal(upgraded.status, 'active');
  t.equal(upgraded.planId, 'plan_starter_v1');
  t.equal(subscription.status, 'active');
  t.same(subscription.currentPeriod, { start: '2026-11-26T10:00:00.000Z', end: '2027-02-26T10:00:00.000Z' });
  t.same(subscription.paymentMethod, { type: 'card', label: 'visa' });
  t.equal(subscription.whatsappAddon, true);
  t.equal(invoice.status, 'paid');
  t.equal(invoice.number, 'INV/2627/0000001');
  t.same([invoice.discountTotal, invoice.tax.amount, invoice.total], [52500, 215550, 1413050], 'discount and tax as quoted');
  t.equal(payment.status, 'succeeded');
  t.equal(payment.amount, 1413050);
  t.notMatch(JSON.stringify(res.body), /tok_visa/, 'the card token is never answered back');

  // What changes after upgrading.
  const ent = (await ctx.call('GET', `/v1/accounts/${account.id}/entitlements`, { key: accountKey })).body;
  t.equal(ent.outbound, 'any', 'whitelisting removed');
  t.equal(ent.entitlements.numberWhitelisting.required, false);
  t.equal(ent.entitlements.exophones.limit, 5, 'production ExoPhones purchasable');
  t.equal(ent.entitlements.campaigns, 'basic');
  t.equal(ent.entitlements.whatsapp, 'add_on');
  t.same(ent.addOns, { whatsapp: true }, 'the bought add-on shows');
  t.same(ent.entitlements.support.channels, ['email', 'chat']);

  const credits = await ctx.query('select kind, amount, balance_after, source_key from credit_ledger where account_id = $1', [account.id]);
  t.same(credits.rows, [{ kind: 'upgrade', amount: '200000', balance_after: '200000', source_key: `payment:${payment.id}` }], 'initial credits in the ledger');
  const balance = await ctx.query('select balance from credit_balances where account_id = $1', [account.id]);
  t.equal(Number(balance.rows[0].balance), 200000);
  const recharge = await ctx.query('select enabled, threshold, amount from auto_recharge_settings where account_id = $1', [account.id]);
  t.same(recharge.rows, [{ enabled: true, threshold: '50000', amount: '200000' }], 'auto-recharge stored');
  const events = await ctx.query('select type from outbox where account_id = $1 order by id', [account.id]);
  t.same(
    events.rows.map((r: any) => r.type).slice(-4),
    ['invoice.created', 'payment.succeeded', 'invoice.paid', 'account.upgraded'],
  );

  // Configurations preserved.
  const after = {
    account: (await ctx.call('GET', `/v1/accounts/${account.id}`, { key: accountKey })).body,
    whitelist: (await ctx.call('GET', `/v1/accounts/${account.id}/whitelisted-numbers`, { key: accountKey })).body,
    keys: (await ctx.query('select id, hash, scopes, account_id, revoked_at from api_keys order by id')).rows,
  };
  t.equal(after.account.id, before.account.id, 'same account id');
  t.same(after.account.kyc, before.account.kyc, 'KYC record untouched');
  t.same([after.account.name, after.account.email, after.account.country, after.account.currency], [before.account.name, before.account.email, before.account.country, before.account.currency]);
  t.same(after.whitelist, before.whitelist, 'whitelist carried over');
  t.same(after.keys, before.keys, 'API keys untouched, and the account key still works');

  // Step 6: the confirmation email, with the invoice as a PDF.
  await deliverEvents(ctx, smtp.url);
  t.equal(smtp.received.length, 2, 'the KYC approval and the upgrade confirmation');
  const mail = await smtp.parse(smtp.received.find((r) => r.raw.includes('Welcome to Starter'))!);
  t.same(smtp.received[1]!.to, ['owner@acme.example']);
  t.match(mail.subject, /Welcome to Starter: invoice INV\/2627\/0000001/);
  t.match(mail.text, /INV\/2627\/0000001/);
  t.match(mail.text, /CGST 9% \+ SGST 9%\s+₹2,155\.50/);
  t.match(mail.text, /Total\s+₹14,130\.50/);
  t.match(mail.text, /26 Nov 2026 to 26 Feb 2027/);
  t.match(mail.text, /ExoPhones: up to 5/);
  t.match(mail.html as string, /Acme &#60;Telecom&#62;/, 'HTML part, with the name escaped');
  t.match(mail.html as string, /₹14,130\.50/);
  t.equal(mail.attachments.length, 1);
  const attachment = mail.attachments[0]!;
  t.equal(attachment.contentType, 'application/pdf');
  t.equal(attachment.filename, 'INV-2627-0000001.pdf', 'the number as a file name');
  const text = await pdfText(attachment.content);
  t.match(text, /TAX INVOICE/);
  t.match(text, /Invoice number: INV\/2627\/0000001/);
  t.match(text, /Starter plan, quarterly \(3 months\)/);
  t.match(text, /WhatsApp add-on/);
  t.match(text, /Prepaid credits for calls and SMS/);
  t.match(text, /Invoice total\s*₹14,130\.50/);

  // The job runs again: no second email.
  await deliverEvents(ctx, smtp.url);
  t.equal(smtp.received.length, 2, 'a re-run sends nothing');

  // Reads.
  const sub = await ctx.call('GET', `/v1/accounts/${account.id}/subscription`, { key: accountKey });
  t.equal(sub.body.id, subscription.id);
  const list = await ctx.call('GET', `/v1/accounts/${account.id}/invoices`, { key: accountKey });
  t.same(list.body.data.map((i: any) => i.number), ['INV/2627/0000001']);
  const one = await ctx.call('GET', `/v1/invoices/${invoice.id}`, { key: accountKey });
  t.same(one.body, invoice);
  const pdf = await ctx.app.inject({ method: 'GET', url: `/v1/invoices/${invoice.id}/pdf`, headers: { authorization: `Bearer ${accountKey}` } });
  t.equal(pdf.statusCode, 200);
  t.match(pdf.headers['content-type'], /application\/pdf/);
  t.match(await pdfText(pdf.rawPayload), /INV\/2627\/0000001/);
  t.equal((await ctx.call('GET', `/v1/payments/${payment.id}`, { key: accountKey })).body.status, 'succeeded');

  const stranger = await readyAccount(ctx);
  const strangerKey = await ctx.key(['read'], stranger.id);
  for (const url of [`/v1/invoices/${invoice.id}`, `/v1/invoices/${invoice.id}/pdf`, `/v1/payments/${payment.id}`]) {
    t.equal((await ctx.call('GET', url, { key: strangerKey })).status, 404, `${url} is invisible to another account`);
  }
  t.equal((await ctx.call('GET', `/v1/accounts/${stranger.id}/subscription`)).body.code, 'subscription_not_found');
});

t.test('each refusal has its own code and writes nothing', async (t) => {
  const ctx = await setup(t);
  const india = await readyAccount(ctx, { country: 'IN' });
  const us = await readyAccount(ctx, { country: 'US' });
  const pendingKyc = (await ctx.call('POST', '/v1/accounts', { body: { name: 'New', email: 'n@example.com', country: 'IN' } })).body;
  await ctx.call('POST', '/v1/plans/plan_growth_v1/versions', {
    body: { prices: (await ctx.call('GET', '/v1/plans/plan_growth_v1')).body.prices },
  });
  const other = await readyAccount(ctx);
  const custom = await ctx.call('POST', '/v1/plans/custom', {
    body: { accountId: other.id, name: 'Other Co', prices: [{ currency: 'INR', monthlyMinimum: 1, minInitialCredits: 1, perPulseRate: 1, perSmsRate: 1, whatsappAddonMonthly: null }] },
  });

  const cases: Array<[string, string, object, number, string]> = [
    ['KYC not approved', pendingKyc.id, {}, 409, 'kyc_not_approved'],
    ['unknown plan', india.id, { planId: 'plan_platinum_v1' }, 404, 'plan_not_found'],
    ['another account\'s custom plan', india.id, { planId: custom.body.id }, 404, 'plan_not_found'],
    ['superseded version', india.id, { planId: 'plan_growth_v1', addOns: { whatsapp: false } }, 422, 'plan_not_offered'],
    ['the trial plan', india.id, { planId: 'plan_trial_v1' }, 422, 'plan_not_offered'],
    ['add-on where WhatsApp is included', india.id, { planId: 'plan_growth_v2' }, 422, 'addon_not_available'],
    ['credits below the minimum', india.id, { initialCredits: 99999 }, 422, 'initial_credits_below_minimum'],
    ['UPI outside India', us.id, { initialCredits: 2000, paymentMethod: { type: 'upi', vpa: 'success@upi' } }, 422, 'payment_method_not_allowed'],
    ['net banking outside India', us.id, { initialCredits: 2000, paymentMethod: { type: 'netbanking', bankCode: 'HDFC' } }, 422, 'payment_method_not_allowed'],
    ['wire transfer on Starter', india.id, { billingCycle: 'annual', paymentMethod: { type: 'wire_transfer' } }, 422, 'payment_method_not_allowed'],
    ['cheque on Enterprise monthly', india.id, { planId: 'plan_enterprise_v1', addOns: { whatsapp: false }, initialCredits: 2500000, billingCycle: 'monthly', paymentMethod: { type: 'cheque' } }, 422, 'payment_method_not_allowed'],
    ['auto-recharge threshold above amount', india.id, { autoRecharge: { enabled: true, threshold: 300000, amount: 200000 } }, 422, 'invalid_auto_recharge'],
    ['auto-recharge on net banking', india.id, { paymentMethod: { type: 'netbanking', bankCode: 'HDFC' } }, 422, 'invalid_auto_recharge'],
    ['disabled auto-recharge that makes no sense', india.id, { autoRecharge: { enabled: false, threshold: 500000, amount: 100 } }, 422, 'invalid_auto_recharge'],
    ['credits too large to price exactly', india.id, { initialCredits: 9_000_000_000_000_000 }, 400, 'validation_failed'],
  ];
  const baseline = await writeCounts(ctx);
  for (const [name, accountId, override, status, code] of cases) {
    const before = (await ctx.call('GET', `/v1/accounts/${accountId}`)).body;
    const res = await ctx.call('POST', `/v1/accounts/${accountId}/upgrade`, {
      body: { ...upgradeBody, ...override },
      headers: { 'idempotency-key': `refusal-${name.replace(/\W+/g, '-')}` },
    });
    t.equal(res.status, status, `${name}: ${status}`);
    t.equal(res.body.code, code, `${name}: ${code}`);
    t.same(await writeCounts(ctx), baseline, `${name}: nothing written`);
    t.same((await ctx.call('GET', `/v1/accounts/${accountId}`)).body, before, `${name}: account unchanged`);
  }
  const quote = await ctx.call('POST', `/v1/accounts/${pendingKyc.id}/upgrade/quote`, { body: { ...upgradeBody, paymentMethod: undefined, paymentMethodType: 'upi' } });
  t.equal(quote.status, 200, 'a quote still prices it');
  t.same(quote.body.blockers.map((b: any) => b.code), ['kyc_not_approved']);
  t.equal(quote.body.canUpgrade, false);

  const missingKey = await ctx.call('POST', `/v1/accounts/${india.id}/upgrade`, { body: upgradeBody });
  t.equal(missingKey.status, 400, 'the upgrade needs an Idempotency-Key');
  t.equal(missingKey.body.code, 'idempotency_key_required', 'its own code');

  // Not in trial: upgrade once, then again.
  t.equal((await ctx.call('POST', `/v1/accounts/${india.id}/upgrade`, { body: upgradeBody, headers: { 'idempotency-key': 'first' } })).status, 201);
  const counts = await writeCounts(ctx);
  const again = await ctx.call('POST', `/v1/accounts/${india.id}/upgrade`, { body: upgradeBody, headers: { 'idempotency-key': 'second' } });
  t.equal(again.status, 409);
  t.equal(again.body.code, 'account_not_in_trial');
  t.same(await writeCounts(ctx), counts, 'nothing written');
});

for (const [method, code] of [
  [{ type: 'card', token: 'tok_chargeDeclined' }, 'card_declined'],
  [{ type: 'card', token: 'tok_chargeDeclinedInsufficientFunds' }, 'insufficient_funds'],
  [{ type: 'upi', vpa: 'failure@upi' }, 'upi_declined'],
  [{ type: 'netbanking', bankCode: 'FAIL' }, 'bank_declined'],
] as const) {
  t.test(`a declined payment (${code}) leaves the account in trial and answers the reason`, async (t) => {
    const ctx = await setup(t);
    const account = await readyAccount(ctx);
    const body = { ...upgradeBody, paymentMethod: method, autoRecharge: undefined };
    const res = await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, { body, headers: { 'idempotency-key': 'declined' } });
    t.equal(res.status, 402);
    t.equal(res.body.code, 'payment_declined');
    t.equal(res.body.declineCode, code);
    const after = (await ctx.call('GET', `/v1/accounts/${account.id}`)).body;
    t.same([after.status, after.planId], ['trial', 'plan_trial_v1']);
    const counts = await writeCounts(ctx);
    t.same([counts.invoices, counts.subscriptions, counts.credit_ledger, counts.invoice_number_sequences], [0, 0, 0, 0], 'no invoice, no number used, no credits');
    t.equal((await ctx.query("select status from payments")).rows[0].status, 'failed');
    t.equal((await ctx.query("select count(*)::int as n from outbox where type = 'payment.failed'")).rows[0].n, 1);

    const replay = await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, { body, headers: { 'idempotency-key': 'declined' } });
    t.equal(replay.status, 402, 'the same key replays the decline');
    t.equal(replay.headers['idempotent-replayed'], 'true');

    const retry = await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, { body: upgradeBody, headers: { 'idempotency-key': 'with-visa' } });
    t.equal(retry.status, 201, 'another method may then succeed');
    t.equal(retry.body.invoice.number, 'INV/2627/0000001', 'the decline used no invoice number');
  });
}

t.test('UPI and net banking succeed for an Indian account', async (t) => {
  const ctx = await setup(t);
  for (const paymentMethod of [{ type: 'upi', vpa: 'success@upi', app: 'phonepe' }, { type: 'netbanking', bankCode: 'ICIC' }]) {
    const account = await readyAccount(ctx);
    const res = await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, {
      body: { ...upgradeBody, paymentMethod, autoRecharge: undefined },
      headers: { 'idempotency-key': `ok-${paymentMethod.type}` },
    });
    t.equal(res.status, 201, paymentMethod.type);
    t.equal(res.body.subscription.paymentMethod.type, paymentMethod.type);
  }
  const numbers = (await ctx.query('select number from invoices order by number')).rows.map((r: any) => r.number);
  t.same(numbers, ['INV/2627/0000001', 'INV/2627/0000002'], 'consecutive');
});

t.test('an unknown result is reconciled before anything else is tried', async (t) => {
  const ctx = await setup(t);
  const account = await readyAccount(ctx);
  const body = { ...upgradeBody, paymentMethod: { type: 'card', token: 'tok_timeout' } };
  const first = await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, { body, headers: { 'idempotency-key': 'slow' } });
  t.equal(first.status, 202);
  t.equal(first.body.status, 'payment_unknown');
  t.equal(first.body.payment.status, 'unknown');
  t.equal(first.body.account.status, 'trial');

  const other = await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, { body: upgradeBody, headers: { 'idempotency-key': 'impatient' } });
  t.equal(other.status, 409, 'a new attempt first reconciles the unknown one, which had taken the money');
  t.equal(other.body.code, 'account_not_in_trial');

  const retry = await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, { body, headers: { 'idempotency-key': 'slow' } });
  t.equal(retry.status, 201, 'the same key learns the outcome');
  t.equal(retry.body.status, 'active');
  t.equal((await ctx.query('select count(*)::int as n from sandbox_charges')).rows[0].n, 1, 'charged once');
  t.equal((await ctx.query('select count(*)::int as n from invoices')).rows[0].n, 1);
});

t.test('the worker sweep settles an unknown payment nobody retried', async (t) => {
  const ctx = await setup(t);
  const account = await readyAccount(ctx);
  await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, {
    body: { ...upgradeBody, paymentMethod: { type: 'card', token: 'tok_timeout' } },
    headers: { 'idempotency-key': 'lost' },
  });
  t.same(await ctx.services.payments.reconcileStale(), { checked: 0, succeeded: 0, failed: 0, unknown: 0 }, 'too fresh to sweep');
  await ctx.query("update payments set touched_at = touched_at - interval '1 minute'"); // a minute of real time passes
  t.same(await ctx.services.payments.reconcileStale(), { checked: 1, succeeded: 1, failed: 0, unknown: 0 });
  t.equal((await ctx.call('GET', `/v1/accounts/${account.id}`)).body.status, 'active');
  t.same(await ctx.services.payments.reconcileStale(), { checked: 0, succeeded: 0, failed: 0, unknown: 0 }, 'nothing twice');
});

t.test('20 identical upgrades at once: one charge, one invoice, one ledger entry, one email', async (t) => {
  const smtp = await smtpReceiver(t);
  const ctx = await setup(t);
  const account = await readyAccount(ctx);
  const fire = () => ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, { body: upgradeBody, headers: { 'idempotency-key': 'same-click' } });
  const results = await Promise.all(Array.from({ length: 20 }, fire));
  const statuses = results.map((r) => r.status);
  t.ok(statuses.every((s) => s === 201 || s === 409), `only 201 and 409: ${statuses.join(',')}`);
  t.ok(statuses.includes(201));
  t.equal(new Set(results.filter((r) => r.status === 201).map((r) => r.body.invoice.id)).size, 1, 'every 201 is the same upgrade');
  const replay = await fire();
  t.equal(replay.status, 201);
  t.equal(replay.headers['idempotent-replayed'], 'true', 'replayed from the record written with the activation');
  for (const table of ['sandbox_charges', 'invoices', 'credit_ledger', 'subscriptions']) {
    t.equal((await ctx.query(`select count(*)::int as n from ${table}`)).rows[0].n, 1, `one row in ${table}`);
  }
  await deliverEvents(ctx, smtp.url);
  await deliverEvents(ctx, smtp.url);
  t.equal(smtp.received.filter((r) => r.raw.includes('Welcome to Starter')).length, 1, 'one confirmation email');
});

t.test('concurrent upgrades under different keys: one wins, the rest are refused', async (t) => {
  const ctx = await setup(t);
  const account = await readyAccount(ctx);
  const results = await Promise.all(
    Array.from({ length: 10 }, (_, i) => ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, { body: upgradeBody, headers: { 'idempotency-key': `k-${i}` } })),
  );
  t.equal(results.filter((r) => r.status === 201).length, 1);
  t.ok(results.filter((r) => r.status !== 201).every((r) => r.status === 409 && ['upgrade_in_progress', 'account_not_in_trial'].includes(r.body.code)));
  t.equal((await ctx.query('select count(*)::int as n from sandbox_charges')).rows[0].n, 1, 'charged once');
});

t.test('wire transfer on Enterprise annual completes only after ops confirm it', async (t) => {
  const ctx = await setup(t);
  const account = await readyAccount(ctx, { country: 'US' });
  const key = await ctx.key(['read', 'write'], account.id);
  const body = { planId: 'plan_enterprise_v1', billingCycle: 'annual', initialCredits: 20000, paymentMethod: { type: 'wire_transfer' } };
  const res = await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, { key, body, headers: { 'idempotency-key': 'wire' } });
  t.equal(res.status, 201);
  t.equal(res.body.status, 'pending_payment');
  t.equal(res.body.account.status, 'pending_payment');
  t.equal(res.body.subscription, null);
  t.equal(res.body.invoice.status, 'open');
  t.equal(res.body.invoice.dueAt, '2026-12-11T10:00:00.000Z', 'due in 15 days');
  // 99900 x 12 x 0.85 = 1018980 plus 20000 credits, no US tax.
  t.equal(res.body.invoice.total, 1038980);
  t.equal(res.body.payment.status, 'awaiting_confirmation');
  t.equal((await ctx.call('GET', `/v1/accounts/${account.id}/entitlements`)).body.plan.code, 'trial', 'still the trial until paid');
  t.equal((await ctx.query('select count(*)::int as n from credit_ledger')).rows[0].n, 0, 'no credits yet');
  t.equal((await ctx.query('select count(*)::int as n from sandbox_charges')).rows[0].n, 0, 'no gateway');
  const second = await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, { key, body: upgradeBody, headers: { 'idempotency-key': 'meanwhile' } });
  t.equal(second.body.code, 'account_not_in_trial', 'no second upgrade while one awaits its money');

  const paymentId = res.body.payment.id;
  t.equal((await ctx.call('POST', `/v1/payments/${paymentId}/confirm`, { key: ctx.keys.write, body: { reference: 'UTR1' } })).status, 403, 'ops only');
  const wrong = await ctx.call('POST', `/v1/payments/${paymentId}/confirm`, { body: { reference: 'UTR1', amount: 1 } });
  t.equal(wrong.status, 422);
  t.equal(wrong.body.code, 'payment_amount_mismatch');

  ctx.clock.advance(3 * 86_400_000);
  const confirmed = await ctx.call('POST', `/v1/payments/${paymentId}/confirm`, { body: { reference: 'UTR HDFC0000123456', amount: 1038980 } });
  t.equal(confirmed.status, 200);
  t.equal(confirmed.body.status, 'active');
  t.equal(confirmed.body.account.status, 'active');
  t.equal(confirmed.body.invoice.status, 'paid');
  t.equal(confirmed.body.invoice.number, res.body.invoice.number, 'the same invoice, now paid');
  t.equal(confirmed.body.subscription.plan.code, 'enterprise');
  t.equal(confirmed.body.payment.offlineReference, 'UTR HDFC0000123456');
  t.equal(confirmed.body.subscription.currentPeriod.start, '2026-11-29T10:00:00.000Z', 'the period starts when the money arrived');
  t.equal(confirmed.body.invoice.period.start, '2026-11-29T10:00:00.000Z', 'and the invoice says so');
  t.equal((await ctx.query('select count(*)::int as n from credit_ledger')).rows[0].n, 1);

  const twice = await ctx.call('POST', `/v1/payments/${paymentId}/confirm`, { body: { reference: 'UTR HDFC0000123456' } });
  t.equal(twice.status, 200, 'confirming again answers the same result');
  t.equal((await ctx.query('select count(*)::int as n from credit_ledger')).rows[0].n, 1, 'and credits nothing twice');
  const otherWire = await ctx.call('POST', `/v1/payments/${paymentId}/confirm`, { body: { reference: 'UTR ANOTHER' } });
  t.equal(otherWire.status, 409, 'another reference is another payment, not a retry');
  t.equal(otherWire.body.code, 'payment_not_confirmable');

  const cardAccount = await readyAccount(ctx);
  const card = await ctx.call('POST', `/v1/accounts/${cardAccount.id}/upgrade`, { body: upgradeBody, headers: { 'idempotency-key': 'card' } });
  const cardConfirm = await ctx.call('POST', `/v1/payments/${card.body.payment.id}/confirm`, { body: { reference: 'x' } });
  t.equal(cardConfirm.status, 409, 'a card payment is not confirmed by ops');
  t.equal(cardConfirm.body.code, 'payment_not_confirmable');
});

t.test('idempotency around unknown and in-progress answers', async (t) => {
  const ctx = await setup(t);
  const account = await readyAccount(ctx);
  const slow = { ...upgradeBody, paymentMethod: { type: 'card', token: 'tok_timeout' } };
  t.equal((await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, { body: slow, headers: { 'idempotency-key': 'u1' } })).status, 202);
  const otherBody = await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, { body: upgradeBody, headers: { 'idempotency-key': 'u1' } });
  t.equal(otherBody.status, 422, 'after a 202 the key still belongs to its first body');
  t.equal(otherBody.body.code, 'idempotency_key_reused');

  const other = await readyAccount(ctx);
  const keyOf = await ctx.key(['write'], other.id);
  // A stuck payment in processing (its request died) makes another attempt wait: 409, not stored.
  await ctx.call('POST', `/v1/accounts/${other.id}/upgrade`, { key: keyOf, body: slow, headers: { 'idempotency-key': 'p1' } });
  const busy = await ctx.call('POST', `/v1/accounts/${other.id}/upgrade`, { key: keyOf, body: upgradeBody, headers: { 'idempotency-key': 'p2' } });
  t.equal(busy.status, 409);
  t.equal(busy.body.code, 'account_not_in_trial', 'the unknown payment was reconciled first: it had taken the money');
  const again = await ctx.call('POST', `/v1/accounts/${other.id}/upgrade`, { key: keyOf, body: upgradeBody, headers: { 'idempotency-key': 'p2' } });
  t.notOk(again.headers['idempotent-replayed'], 'a 409 is not replayed: the retry runs again');
});

t.test('an unknown payment the gateway never saw is asked again under the same key, never declared unpaid', async (t) => {
  const { createSandboxProvider } = await import('../src/modules/payments/sandbox.js');
  const { createServices } = await import('../src/services.js');
  const ctx = await setup(t);
  const sandbox = createSandboxProvider({ db: ctx.database.db, clock: ctx.clock });
  let lose = true;
  // A gateway whose first answer is lost before it records anything.
  const flaky = { ...sandbox, charge: async (req: any) => (lose ? ((lose = false), { status: 'unknown' as const }) : sandbox.charge(req)) };
  const services = createServices({ config: ctx.config, database: ctx.database, clock: ctx.clock, provider: flaky });
  const account = await readyAccount(ctx);
  const first = await services.upgrades.upgrade(account.id, { ...upgradeBody, addOns: { whatsapp: true } } as never, null);
  t.equal(first.status, 'payment_unknown');
  t.same(await services.payments.reconcileStale(), { checked: 0, succeeded: 0, failed: 0, unknown: 0 }, 'young: left alone');
  await ctx.query("update payments set touched_at = touched_at - interval '3 minutes'"); // past the in-flight window, in real time
  t.same(await services.payments.reconcileStale(), { checked: 1, succeeded: 1, failed: 0, unknown: 0 }, 'old and unknown to the gateway: charged again under its key');
  t.equal((await ctx.query('select count(*)::int as n from sandbox_charges')).rows[0].n, 1, 'one charge');
});
