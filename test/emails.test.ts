import t from 'tap';
import { formatAmount } from '../src/lib/format.js';
import { createLogger } from '../src/lib/logger.js';
import { createSmtpMailer } from '../src/modules/notifications/mailer.js';
import { startWorkers } from '../src/workers.js';
import { approveKyc, deliverEvents, paidAccount, pdfText, setup } from './helper.js';
import { smtpReceiver } from './smtp.js';

/**
 * Customer emails as they arrive: a text and an HTML part, amounts in rupees, and the
 * invoice the email is about attached as its PDF, named after its number.
 */
async function until(what: string, fn: () => Promise<boolean>, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.test('a renewal receipt: text and HTML, the period in IST, the renewal invoice attached as its PDF', async (t) => {
  const smtp = await smtpReceiver(t);
  const ctx = await setup(t, { TEST_CLOCKS_ENABLED: 'true', SCHEDULER_INTERVAL_MS: '50', OUTBOX_POLL_MS: '50', PRE_DEBIT_NOTICE_HOURS: '0' });
  const mailer = createSmtpMailer(smtp.url, 'Billing <billing@test.example>');
  const workers = await startWorkers({ config: ctx.config, logger: createLogger({ LOG_LEVEL: 'silent' }), database: ctx.database, redis: ctx.redis, queues: ctx.queues, clock: ctx.clock }, { mailer });
  t.teardown(() => workers.close());
  const clock = (await ctx.call('POST', '/v1/test-clocks', { body: { name: 'receipts', frozenTime: '2026-12-01T10:00:00Z' } })).body;
  const account = (await ctx.call('POST', '/v1/accounts', { body: { name: 'Iyer <Cloud> LLP', email: 'ap@iyer.example', country: 'IN', testClockId: clock.id } })).body;
  await approveKyc(ctx, account.id);
  const upgrade = await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, {
    body: { planId: 'plan_starter_v1', billingCycle: 'monthly', initialCredits: 100000, paymentMethod: { type: 'card', token: 'tok_visa' } },
    headers: { 'idempotency-key': `up-${account.id}` },
  });
  t.equal(upgrade.status, 201);
  const advanced = await ctx.call('POST', `/v1/test-clocks/${clock.id}/advance`, { body: { frozenTime: upgrade.body.subscription.currentPeriod.end } });
  t.equal(advanced.body.status, 'ready');

  await until('the renewal receipt', async () => smtp.received.some((m) => /Subject: Your subscription renewed/.test(m.raw)));
  const renewal = (await ctx.call('GET', `/v1/accounts/${account.id}/invoices`)).body.data.find((i: any) => i.number !== upgrade.body.invoice.number);
  t.equal(renewal.status, 'paid');
  const mail = await smtp.parse(smtp.received.find((m) => /Subject: Your subscription renewed/.test(m.raw))!);
  t.equal(mail.subject, `Your subscription renewed: invoice ${renewal.number}`);
  const total = formatAmount(renewal.total, 'INR');
  t.match(mail.text, `Your subscription renewed for 1 Jan 2027 to 1 Feb 2027: ${total} paid, invoice ${renewal.number}.`);
  t.match(mail.text, /invoice is attached as a PDF/);
  t.notMatch(mail.text, String(renewal.total), 'never in paise');
  t.match(mail.html as string, /Iyer &#60;Cloud&#62; LLP/, 'an HTML part, the name escaped');
  t.ok((mail.html as string).includes(total), 'the total in the HTML part');
  t.equal(mail.attachments.length, 1);
  const [pdf] = mail.attachments;
  t.equal(pdf!.contentType, 'application/pdf');
  t.equal(pdf!.content.subarray(0, 5).toString(), '%PDF-');
  t.equal(pdf!.filename, `${renewal.number.replaceAll('/', '-')}.pdf`, 'named after the invoice');
  t.match(await pdfText(pdf!.content), `Invoice number: ${renewal.number}`, 'the renewal invoice itself');
});

t.test('a credits purchase receipt names its invoice and attaches its PDF', async (t) => {
  const smtp = await smtpReceiver(t);
  const ctx = await setup(t);
  const account = await paidAccount(ctx, 100000);
  const bought = await ctx.call('POST', `/v1/accounts/${account.id}/credits/purchases`, {
    key: ctx.keys.write,
    body: { amount: 200000, paymentMethod: { type: 'upi', vpa: 'success@upi' } },
    headers: { 'idempotency-key': 'top-up' },
  });
  t.equal(bought.status, 201);
  const invoice = bought.body.invoice;

  await deliverEvents(ctx, smtp.url);
  const receipts = smtp.received.filter((m) => m.raw.includes('Receipt: credits purchased'));
  t.equal(receipts.length, 1, 'one receipt');
  const mail = await smtp.parse(receipts[0]!);
  t.equal(mail.subject, `Receipt: credits purchased, invoice ${invoice.number}`);
  t.match(mail.text, 'We added ₹2,000.00 of credits for ₹2,360.00.');
  t.match(mail.text, new RegExp(`Invoice\\s+${invoice.number}`));
  t.match(mail.html as string, /Amount charged, with tax<\/td><td [^>]*>₹2,360\.00<\/td>/, 'the amounts table in HTML');
  t.equal(mail.attachments.length, 1);
  t.equal(mail.attachments[0]!.filename, `${invoice.number.replaceAll('/', '-')}.pdf`);
  t.match(await pdfText(mail.attachments[0]!.content), `Invoice number: ${invoice.number}`);
});
