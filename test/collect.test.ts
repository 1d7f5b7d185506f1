import t, { type Test } from 'tap';
import { createLogger } from '../src/lib/logger.js';
import { createSmtpMailer } from '../src/modules/notifications/mailer.js';
import { startWorkers } from '../src/workers.js';
import { approveKyc, setup } from './helper.js';
import { smtpReceiver } from './smtp.js';

/**
 * Collecting what is owed: a renewal the e-mandate does not cover waits for the customer and
 * is paid by them; a declined renewal is recovered by a new card the customer pays with; and
 * however many pay at once, with a dunning retry among them, the invoice is charged once.
 * Real workers, a test clock, an SMTP server.
 */
async function until(what: string, fn: () => Promise<boolean>, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function world(t: Test, env: Record<string, string> = {}) {
  const smtp = await smtpReceiver(t);
  const ctx = await setup(t, { TEST_CLOCKS_ENABLED: 'true', SCHEDULER_INTERVAL_MS: '50', OUTBOX_POLL_MS: '50', PRE_DEBIT_NOTICE_HOURS: '24', ...env });
  const mailer = createSmtpMailer(smtp.url, 'Billing <billing@test.example>');
  const workers = await startWorkers({ config: ctx.config, logger: createLogger({ LOG_LEVEL: 'silent' }), database: ctx.database, redis: ctx.redis, queues: ctx.queues, clock: ctx.clock }, { mailer });
  t.teardown(() => workers.close());
  const clock = (await ctx.call('POST', '/v1/test-clocks', { body: { name: 'collect', frozenTime: '2026-12-01T10:00:00Z' } })).body;
  const advance = async (to: string) => {
    const res = await ctx.call('POST', `/v1/test-clocks/${clock.id}/advance`, { body: { frozenTime: to } });
    if (res.status !== 200 || res.body.status !== 'ready') throw new Error(`advance to ${to}: ${res.status} ${JSON.stringify(res.body)}`);
  };
  const subscribe = async (opts: { country: string; plan: string; cycle: string; token: string }) => {
    const email = `${opts.plan}-${Math.random().toString(36).slice(2)}@acme.example`;
    const account = (await ctx.call('POST', '/v1/accounts', { body: { name: 'Iyer Cloud Communications LLP', email, country: opts.country, testClockId: clock.id } })).body;
    await approveKyc(ctx, account.id);
    const minimum = (await ctx.call('GET', `/v1/plans/${opts.plan}`)).body.prices.find((p: any) => p.currency === account.currency).minInitialCredits;
    const res = await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, {
      body: { planId: opts.plan, billingCycle: opts.cycle, initialCredits: minimum, paymentMethod: { type: 'card', token: opts.token } },
      headers: { 'idempotency-key': `up-${account.id}` },
    });
    if (res.status !== 201) throw new Error(`upgrade: ${res.status} ${JSON.stringify(res.body)}`);
    return { accountId: account.id as string, email, subscription: res.body.subscription };
  };
  const renewalInvoice = async (accountId: string) => {
    const list = (await ctx.call('GET', `/v1/accounts/${accountId}/invoices`)).body.data;
    return list.find((i: any) => i.period.start !== list.at(-1).period.start) ?? list[0];
  };
  const renewalPayments = async (accountId: string) =>
    (await ctx.query("select id, status, failure_code from payments where account_id = $1 and purpose = 'renewal' order by id", [accountId])).rows;
  const charges = async (accountId: string) =>
    (await ctx.query("select c.outcome from sandbox_charges c join payments p on p.id = c.idempotency_key where p.account_id = $1 and p.purpose = 'renewal'", [accountId])).rows
      .map((r: any) => r.outcome)
      .sort();
  const mailsTo = (email: string) => smtp.received.filter((m) => m.to.includes(email));
  return { ctx, smtp, clock, advance, subscribe, renewalInvoice, renewalPayments, charges, mailsTo };
}

t.test('India, Growth quarterly by card: above the e-mandate the renewal waits for the customer, who pays it; active, one charge, no decline', async (t) => {
  const w = await world(t);
  // Starter quarterly is within the INR 15,000 cap; the switch to Growth at the next period is not.
  const { accountId, email, subscription } = await w.subscribe({ country: 'IN', plan: 'plan_starter_v1', cycle: 'quarterly', token: 'tok_visa' });
  const change = await w.ctx.call('POST', `/v1/subscriptions/${subscription.id}/plan-change`, { body: { planId: 'plan_growth_v1' } });
  t.equal(change.status, 200);
  t.equal(change.body.renewalNeedsCustomerAction, true, 'the plan change says renewals will need the customer');

  const periodEnd = subscription.currentPeriod.end as string;
  await w.advance(new Date(Date.parse(periodEnd) - 3_600_000).toISOString()); // inside the pre-debit notice window
  await until('the notice that says it will need approval', async () => w.mailsTo(email).some((m) => m.raw.includes('will need your approval')));
  await w.advance(periodEnd);

  const invoice = await w.renewalInvoice(accountId);
  t.equal(invoice.status, 'requires_action');
  t.equal(invoice.actionRequired.reason, 'above_mandate');
  t.equal(invoice.planId, 'plan_growth_v1');
  t.ok(invoice.total > 1_500_000, `INR ${invoice.total / 100}: above the cap`);
  t.same(await w.renewalPayments(accountId), [], 'no charge tried, so nothing declined');
  t.equal((await w.ctx.call('GET', `/v1/accounts/${accountId}`)).body.status, 'active', 'active while the invoice waits');
  await until('the email asking to pay', async () => w.mailsTo(email).some((m) => m.raw.includes('Action needed')));
  t.notOk(w.mailsTo(email).some((m) => /Subject: Your subscription renewed/.test(m.raw)), 'no "renewed" email for an unpaid renewal');

  const paid = await w.ctx.call('POST', `/v1/invoices/${invoice.id}/pay`, { key: w.ctx.keys.write, body: {}, headers: { 'idempotency-key': `pay-${invoice.id}` } });
  t.equal(paid.status, 201, JSON.stringify(paid.body));
  t.equal(paid.body.status, 'active');
  t.equal(paid.body.invoice.status, 'paid');
  t.same(await w.renewalPayments(accountId), [{ id: paid.body.payment.id, status: 'succeeded', failure_code: null }], 'one payment');
  t.same(await w.charges(accountId), ['succeeded'], 'one charge');
  t.equal((await w.ctx.query("select count(*)::int as n from outbox where type = 'payment.failed' and account_id = $1", [accountId])).rows[0].n, 0, 'no decline');
  await until('the renewed email, once paid', async () => w.mailsTo(email).some((m) => /Subject: Your subscription renewed/.test(m.raw)));

  // The dunning date passes: nothing more happens.
  await w.advance(new Date(Date.parse(periodEnd) + 8 * 86_400_000).toISOString());
  t.same(await w.charges(accountId), ['succeeded'], 'still one charge after the dunning dates');
  t.equal((await w.ctx.call('GET', `/v1/accounts/${accountId}`)).body.status, 'active');
});

t.test('US card that starts declining: past_due; a new default card pays the open invoice; active at once; the next retry charges nothing', async (t) => {
  const w = await world(t);
  const { accountId, subscription } = await w.subscribe({ country: 'US', plan: 'plan_starter_v1', cycle: 'monthly', token: 'tok_chargeCustomerFail' });
  await w.advance(subscription.currentPeriod.end);
  t.equal((await w.ctx.call('GET', `/v1/accounts/${accountId}`)).body.status, 'past_due', 'declined');
  const invoice = await w.renewalInvoice(accountId);
  t.equal(invoice.status, 'open');

  const card = await w.ctx.call('POST', `/v1/accounts/${accountId}/payment-methods`, { body: { paymentMethod: { type: 'card', token: 'tok_mastercard' }, makeDefault: true } });
  t.equal(card.status, 201);
  t.equal(card.body.isDefault, true);
  const paid = await w.ctx.call('POST', `/v1/invoices/${invoice.id}/pay`, { key: w.ctx.keys.write, body: {}, headers: { 'idempotency-key': 'recover' } });
  t.equal(paid.status, 201, JSON.stringify(paid.body));
  t.equal((await w.ctx.call('GET', `/v1/accounts/${accountId}`)).body.status, 'active', 'active at once');
  t.equal(paid.body.invoice.status, 'paid');
  t.same(await w.charges(accountId), ['failed', 'succeeded'], 'the declined renewal, and the customer\'s payment');

  await w.advance(new Date(Date.parse(subscription.currentPeriod.end) + 2 * 86_400_000).toISOString()); // past the first retry date
  t.same(await w.charges(accountId), ['failed', 'succeeded'], 'the scheduled retry charged nothing');
  t.equal((await w.ctx.call('GET', `/v1/accounts/${accountId}`)).body.status, 'active');
});

t.test('ten concurrent pay calls and a dunning retry on one invoice charge it once', async (t) => {
  const w = await world(t);
  const { accountId, subscription } = await w.subscribe({ country: 'US', plan: 'plan_starter_v1', cycle: 'monthly', token: 'tok_chargeCustomerFail' });
  await w.advance(subscription.currentPeriod.end);
  const invoice = await w.renewalInvoice(accountId);
  // A good default, so the retry would succeed too if it got there first.
  await w.ctx.call('POST', `/v1/accounts/${accountId}/payment-methods`, { body: { paymentMethod: { type: 'card', token: 'tok_visa' }, makeDefault: true } });
  // The retry's time has come (the workers would run it: here it runs beside the pays, by hand).
  const { rows: [row] } = await w.ctx.query('select attempt_count, next_attempt_at from invoices where id = $1', [invoice.id]);
  await w.ctx.query('update test_clocks set frozen_time = $1 where id = $2', [row.next_attempt_at, w.clock.id]);

  const pays = Array.from({ length: 10 }, (_, i) =>
    w.ctx.call('POST', `/v1/invoices/${invoice.id}/pay`, { key: w.ctx.keys.write, body: {}, headers: { 'idempotency-key': `race-${i}` } }),
  );
  const [retried, ...answers] = await Promise.all([w.ctx.services.renewals.retry(invoice.id, row.attempt_count), ...pays]);
  t.ok(['charged', 'skipped'].includes(retried), `the retry: ${retried}`);
  const codes = answers.map((a) => (a.status === 201 ? 'paid' : a.body.code));
  t.ok(codes.every((c) => ['paid', 'invoice_payment_in_progress', 'invoice_not_payable'].includes(c)), `every pay answered paid or refused: ${codes.join(', ')}`);
  for (const a of answers.filter((x) => x.body.code === 'invoice_payment_in_progress')) t.equal(a.headers['retry-after'], '2', 'a charge in flight: retry in 2 s');
  await until('the invoice paid', async () => (await w.ctx.query('select status from invoices where id = $1', [invoice.id])).rows[0].status === 'paid');
  const succeeded = (await w.charges(accountId)).filter((o: string) => o === 'succeeded');
  t.equal(succeeded.length, 1, 'charged once');
  t.equal((await w.renewalPayments(accountId)).filter((p: any) => p.status === 'succeeded').length, 1, 'one successful payment');
  t.equal((await w.ctx.call('GET', `/v1/accounts/${accountId}`)).body.status, 'active');
});

t.test('pay: refusals (paid, void, not a renewal, no such method, no key) write nothing', async (t) => {
  const w = await world(t);
  const { accountId } = await w.subscribe({ country: 'IN', plan: 'plan_starter_v1', cycle: 'monthly', token: 'tok_visa' });
  const [upgradeInvoice] = (await w.ctx.call('GET', `/v1/accounts/${accountId}/invoices`)).body.data;
  const pay = (id: string, body: object = {}, key: string | null = w.ctx.keys.write) => w.ctx.call('POST', `/v1/invoices/${id}/pay`, { key, body, headers: { 'idempotency-key': `k-${Math.random()}` } });
  const other = await w.subscribe({ country: 'IN', plan: 'plan_starter_v1', cycle: 'monthly', token: 'tok_visa' });
  const before = (await w.ctx.query('select count(*)::int as n from payments')).rows[0].n;
  t.equal((await pay(upgradeInvoice.id)).body.code, 'invoice_not_payable', 'already paid');
  t.equal((await pay('inv_00000000000000000000000000')).status, 404);
  t.equal((await pay(upgradeInvoice.id, {}, null)).status, 401);
  t.equal((await pay(upgradeInvoice.id, {}, await w.ctx.key(['write'], other.accountId))).status, 404, 'another account\'s key sees no such invoice');
  t.equal((await pay(upgradeInvoice.id, { paymentMethodId: 'pm_00000000000000000000000000' })).status, 409, 'checked in order: not payable first');
  t.equal((await w.ctx.query('select count(*)::int as n from payments')).rows[0].n, before, 'nothing written');
});

t.test('an Enterprise annual upgrade awaiting a wire transfer is paid by card instead: active, the wire payment superseded, ops cannot confirm it after', async (t) => {
  const w = await world(t);
  const account = (await w.ctx.call('POST', '/v1/accounts', { body: { name: 'Bharat Telecom Pvt Ltd', email: 'ap@bharat.example', country: 'IN', testClockId: w.clock.id } })).body;
  await approveKyc(w.ctx, account.id);
  const minimum = (await w.ctx.call('GET', '/v1/plans/plan_enterprise_v1')).body.prices.find((p: any) => p.currency === 'INR').minInitialCredits;
  const pending = await w.ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, {
    body: { planId: 'plan_enterprise_v1', billingCycle: 'annual', initialCredits: minimum, paymentMethod: { type: 'wire_transfer' } },
    headers: { 'idempotency-key': 'wire' },
  });
  t.equal(pending.body.status, 'pending_payment');
  const wirePayment = pending.body.payment.id;

  const paid = await w.ctx.call('POST', `/v1/invoices/${pending.body.invoice.id}/pay`, {
    key: w.ctx.keys.write,
    body: { paymentMethod: { type: 'card', token: 'tok_rupay' } },
    headers: { 'idempotency-key': 'by-card' },
  });
  t.equal(paid.status, 201, JSON.stringify(paid.body));
  t.equal(paid.body.status, 'active');
  t.equal(paid.body.account.status, 'active');
  t.equal(paid.body.subscription.plan.id, 'plan_enterprise_v1');
  t.same(paid.body.subscription.paymentMethod, { type: 'card', label: 'rupay' }, 'the card pays the renewals');
  t.equal(paid.body.invoice.id, pending.body.invoice.id, 'the same invoice, paid');
  const wire = (await w.ctx.query('select status, failure_code from payments where id = $1', [wirePayment])).rows[0];
  t.same(wire, { status: 'failed', failure_code: 'superseded' });
  const late = await w.ctx.call('POST', `/v1/payments/${wirePayment}/confirm`, { body: { reference: 'UTR123' } });
  t.equal(late.status, 409);
  t.equal(late.body.code, 'payment_not_confirmable', 'a wire arriving now is not a second upgrade');
  t.equal((await w.ctx.query("select count(*)::int as n from subscriptions where account_id = $1", [account.id])).rows[0].n, 1);
});

t.test('ops cannot record a wire for an invoice whose card charge is in flight; a charge landing on an invoice settled meanwhile is flagged for refund, nothing else moves', async (t) => {
  const ctx = await setup(t, { PRE_DEBIT_NOTICE_HOURS: '0' });
  const account = (await ctx.call('POST', '/v1/accounts', { body: { name: 'Net Bank Co', email: 'nb@acme.example', country: 'IN' } })).body;
  await approveKyc(ctx, account.id);
  const up = await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, {
    body: { planId: 'plan_starter_v1', billingCycle: 'monthly', initialCredits: 100000, paymentMethod: { type: 'netbanking', bankCode: 'HDFC' } },
    headers: { 'idempotency-key': 'nb' },
  });
  t.equal(up.status, 201);
  ctx.clock.set(new Date(Date.parse(up.body.subscription.currentPeriod.end) + 60_000));
  t.equal(await ctx.services.renewals.renew(up.body.subscription.id, new Date(up.body.subscription.currentPeriod.end)), 'invoiced', 'net banking: an open invoice awaiting the money');
  const { rows: [awaiting] } = await ctx.query("select id, invoice_id from payments where purpose = 'renewal' and status = 'awaiting_confirmation'");

  // The customer pays by card meanwhile, and the gateway's answer is lost.
  const lost = await ctx.call('POST', `/v1/invoices/${awaiting.invoice_id}/pay`, { body: { paymentMethod: { type: 'card', token: 'tok_timeout' } }, headers: { 'idempotency-key': 'card' } });
  t.equal(lost.status, 202);
  const refused = await ctx.call('POST', `/v1/payments/${awaiting.id}/confirm`, { body: { reference: 'UTR1' } });
  t.equal(refused.status, 409);
  t.equal(refused.body.code, 'invoice_payment_in_progress');

  // Written off meanwhile (as dunning would), then the card's charge turns out to have landed.
  await ctx.query("update invoices set status = 'void', next_attempt_at = null where id = $1", [awaiting.invoice_id]);
  const before = (await ctx.call('GET', `/v1/accounts/${account.id}`)).body.status;
  const { findPayment } = await import('../src/modules/payments/repo.js');
  const settled = await ctx.services.payments.reconcile((await findPayment(ctx.database.db, lost.body.payment.id))!);
  t.equal(settled.payment.status, 'succeeded', 'the money is recorded');
  t.equal((await ctx.query('select status from invoices where id = $1', [awaiting.invoice_id])).rows[0].status, 'void', 'the invoice is left as it was');
  t.equal((await ctx.call('GET', `/v1/accounts/${account.id}`)).body.status, before, 'the account too');
  const flagged = (await ctx.query("select payload from outbox where type = 'payment.overpaid'")).rows;
  t.equal(flagged.length, 1, 'flagged for a refund');
  t.match(flagged[0].payload, { paymentId: lost.body.payment.id, invoiceStatus: 'void' });
});

t.test('an Indian card made default after a net-banking renewal is invoiced gets its pre-debit notice before the retry charges it', async (t) => {
  const ctx = await setup(t, { PRE_DEBIT_NOTICE_HOURS: '24' });
  const account = (await ctx.call('POST', '/v1/accounts', { body: { name: 'Net Bank Co', email: 'nb2@acme.example', country: 'IN' } })).body;
  await approveKyc(ctx, account.id);
  const up = await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, {
    body: { planId: 'plan_starter_v1', billingCycle: 'monthly', initialCredits: 100000, paymentMethod: { type: 'netbanking', bankCode: 'HDFC' } },
    headers: { 'idempotency-key': 'nb2' },
  });
  const end = new Date(up.body.subscription.currentPeriod.end);
  ctx.clock.set(new Date(end.getTime() + 60_000));
  await ctx.services.renewals.renew(up.body.subscription.id, end);
  const { rows: [invoice] } = await ctx.query("select id, due_at, attempt_count from invoices where kind = 'renewal'");
  await ctx.call('POST', `/v1/accounts/${account.id}/payment-methods`, { body: { paymentMethod: { type: 'card', token: 'tok_visa' }, makeDefault: true } });

  ctx.clock.set(invoice.due_at);
  t.equal(await ctx.services.renewals.retry(invoice.id, invoice.attempt_count), 'reminded', 'the notice first');
  t.equal((await ctx.query("select count(*)::int as n from payments where purpose = 'renewal' and status <> 'awaiting_confirmation'")).rows[0].n, 0, 'nothing charged yet');
  const notice = (await ctx.query("select payload from outbox where type = 'subscription.renewal_notice'")).rows;
  t.equal(notice.length, 1);
  const { rows: [deferred] } = await ctx.query('select next_attempt_at, attempt_count from invoices where id = $1', [invoice.id]);
  t.equal(deferred.next_attempt_at.getTime(), invoice.due_at.getTime() + 24 * 3_600_000, 'charged a day after the notice');

  ctx.clock.set(deferred.next_attempt_at);
  t.equal(await ctx.services.renewals.retry(invoice.id, deferred.attempt_count), 'charged');
  t.equal((await ctx.query('select status from invoices where id = $1', [invoice.id])).rows[0].status, 'paid');
});

t.test('ops record a NEFT transfer for a renewal waiting for the customer: paid, active; the same reference again answers the same', async (t) => {
  const ctx = await setup(t, { PRE_DEBIT_NOTICE_HOURS: '0' });
  const account = (await ctx.call('POST', '/v1/accounts', { body: { name: 'Iyer Cloud', email: 'neft@iyer.example', country: 'IN' } })).body;
  await approveKyc(ctx, account.id);
  const up = await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, {
    body: { planId: 'plan_growth_v1', billingCycle: 'quarterly', initialCredits: 500000, paymentMethod: { type: 'card', token: 'tok_visa' } },
    headers: { 'idempotency-key': 'growth' },
  });
  t.equal(up.status, 201);
  const end = new Date(up.body.subscription.currentPeriod.end);
  ctx.clock.set(new Date(end.getTime() + 60_000));
  t.equal(await ctx.services.renewals.renew(up.body.subscription.id, end), 'invoiced');
  const [invoice] = (await ctx.call('GET', `/v1/accounts/${account.id}/invoices`)).body.data.filter((i: any) => i.status === 'requires_action');
  t.ok(invoice, 'the renewal waits for the customer');

  const body = { reference: 'NEFT HDFCN52026120212345', amount: invoice.total, methodType: 'wire_transfer' };
  t.equal((await ctx.call('POST', `/v1/invoices/${invoice.id}/offline-payments`, { key: ctx.keys.write, body })).status, 403, 'ops only');
  const recorded = await ctx.call('POST', `/v1/invoices/${invoice.id}/offline-payments`, { body });
  t.equal(recorded.status, 200, JSON.stringify(recorded.body));
  t.equal(recorded.body.invoice.status, 'paid');
  t.equal(recorded.body.payment.offlineReference, body.reference);
  t.equal(recorded.body.account.status, 'active');
  const again = await ctx.call('POST', `/v1/invoices/${invoice.id}/offline-payments`, { body });
  t.equal(again.status, 200);
  t.equal(again.body.payment.id, recorded.body.payment.id, 'the same recording answers the same');
  t.equal((await ctx.call('POST', `/v1/invoices/${invoice.id}/offline-payments`, { body: { ...body, reference: 'NEFT OTHER' } })).body.code, 'invoice_not_payable', 'a second, different transfer is refused');
  t.equal((await ctx.query("select count(*)::int as n from payments where invoice_id = $1 and status = 'succeeded'", [invoice.id])).rows[0].n, 1, 'one payment');
});
