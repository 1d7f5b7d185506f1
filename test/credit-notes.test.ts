import t from 'tap';
import type { RefundResult } from '../src/modules/payments/provider.js';
import { createSandboxProvider } from '../src/modules/payments/sandbox.js';
import { createServices } from '../src/services.js';
import { paidAccount, pdfText, setup, type TestContext } from './helper.js';

/**
 * A Starter monthly upgrade of an Indian account with no billing profile (taxed in the seller's
 * state): plan fee INR 2,500 (line 0) + INR 1,000 of credits (line 1) = INR 3,500 taxable,
 * CGST 9% INR 315 + SGST 9% INR 315, INR 4,130 paid by card.
 */
async function paidInvoice(ctx: TestContext, token = 'tok_visa') {
  const account = await paidAccount(ctx, 100000, { paymentMethod: { type: 'card', token } });
  const [invoice] = (await ctx.call('GET', `/v1/accounts/${account.id}/invoices`)).body.data;
  return { account, invoice };
}

const issue = (ctx: TestContext, invoiceId: string, body: object, key = `cn-${Math.random()}`) =>
  ctx.call('POST', `/v1/invoices/${invoiceId}/credit-notes`, { body, headers: { 'idempotency-key': key } });

const count = async (ctx: TestContext, table: string) => (await ctx.query(`select count(*)::int as n from ${table}`)).rows[0].n;
const invariants = async (ctx: TestContext) => (await ctx.call('GET', '/v1/ops/ledger-invariants')).body.violations;

t.test('a partial credit note on a paid upgrade invoice refunds to the card once under retries, with the tax reversed in proportion', async (t) => {
  const ctx = await setup(t);
  const { account, invoice } = await paidInvoice(ctx);
  t.equal(invoice.total, 413000);
  const body = { reason: 'Outage on 3 December: INR 1,000 of the plan fee', amount: 100000 };
  const first = await issue(ctx, invoice.id, body, 'outage-credit');
  t.equal(first.status, 201, JSON.stringify(first.body));
  t.match(first.body, {
    number: 'CN/2627/0000001',
    invoiceNumber: invoice.number,
    settlement: 'refund',
    lines: [{ position: 0, amount: 100000 }],
    subtotal: 100000,
    // 31,500 x 1,00,000 / 3,50,000 = 9,000 paise of each.
    tax: { amount: 18000, components: [{ name: 'CGST', rateBps: 900, amount: 9000 }, { name: 'SGST', rateBps: 900, amount: 9000 }] },
    total: 118000,
    amountInWords: 'Indian Rupees One Thousand One Hundred Eighty Only',
    refund: { status: 'succeeded', amount: 118000 },
  });
  const retried = await issue(ctx, invoice.id, body, 'outage-credit');
  t.equal(retried.body.id, first.body.id, 'the retry answers with the same note');
  // The same request reaching the service again (its stored answer lost): still one note, one refund.
  const apiKeyId = (await ctx.query("select api_key_id from idempotency_keys where key = 'outage-credit'")).rows[0]?.api_key_id ?? 'k';
  const again = await ctx.services.creditNotes.issue(invoice.id, { accountId: null }, body, { apiKeyId, key: 'outage-credit' } as never);
  t.equal(again.note.id, first.body.id);
  t.equal(await count(ctx, 'credit_notes'), 1);
  t.equal(await count(ctx, 'sandbox_refunds'), 1, 'the card refunded once');
  t.same(await invariants(ctx), [], 'the ledger invariants hold');
  const events = (await ctx.query("select type from outbox where type in ('credit_note.created', 'refund.succeeded') order by id")).rows.map((r: any) => r.type);
  t.same(events, ['credit_note.created', 'refund.succeeded']);
  t.equal((await ctx.call('GET', `/v1/invoices/${invoice.id}/credit-notes`, { key: ctx.keys.read })).body.data.length, 1);
  const other = await paidAccount(ctx, 100000);
  const otherKey = await ctx.key(['read'], other.id);
  t.equal((await ctx.call('GET', `/v1/credit-notes/${first.body.id}`, { key: otherKey })).status, 404, 'invisible to another account');
  t.equal((await ctx.call('GET', `/v1/credit-notes/${first.body.id}`, { key: await ctx.key(['read'], account.id) })).body.total, 118000);
});

t.test('a credit note above what remains of the invoice is refused, and writes nothing', async (t) => {
  const ctx = await setup(t);
  const { invoice } = await paidInvoice(ctx);
  t.equal((await issue(ctx, invoice.id, { reason: 'Goodwill', amount: 100000, settlement: 'credits' })).status, 201);
  const before = [await count(ctx, 'credit_notes'), await count(ctx, 'credit_ledger'), await count(ctx, 'outbox')];
  const refused = await issue(ctx, invoice.id, { reason: 'Too much', amount: 250001 });
  t.equal(refused.status, 422);
  t.equal(refused.body.code, 'credit_note_exceeds_invoice');
  t.equal(refused.body.creditable, 250000, 'says what is left');
  t.same([await count(ctx, 'credit_notes'), await count(ctx, 'credit_ledger'), await count(ctx, 'outbox')], before, 'nothing written');
  // What is left, to the paise: the last note takes exactly the tax left.
  const rest = await issue(ctx, invoice.id, { reason: 'The rest', amount: 250000 });
  t.equal(rest.status, 201, JSON.stringify(rest.body));
  t.equal(rest.body.refund.status, 'succeeded', 'the plan fee left and the credits, back to the card');
  const notes = (await ctx.call('GET', `/v1/invoices/${invoice.id}/credit-notes`)).body.data;
  t.equal(notes.reduce((s: number, n: any) => s + n.total, 0), invoice.total, 'the notes add up to the invoice');
  t.equal((await issue(ctx, invoice.id, { reason: 'More', amount: 1 })).body.code, 'credit_note_exceeds_invoice');
  t.same(await invariants(ctx), []);
});

t.test('purchased credits are taken back before their money is refunded; spent ones are refused', async (t) => {
  const ctx = await setup(t);
  const { account, invoice } = await paidInvoice(ctx);
  await ctx.call('POST', `/v1/accounts/${account.id}/credits/adjustments`, { body: { amount: -60000, reason: 'spent' }, headers: { 'idempotency-key': 'spend' } });
  const refused = await issue(ctx, invoice.id, { reason: 'Unused credits', lines: [{ position: 1, amount: 100000 }] });
  t.equal(refused.status, 409);
  t.equal(refused.body.code, 'credits_already_spent');
  t.equal(await count(ctx, 'credit_notes'), 0);
  const unused = await issue(ctx, invoice.id, { reason: 'Unused credits', lines: [{ position: 1, amount: 40000 }] });
  t.equal(unused.status, 201, JSON.stringify(unused.body));
  t.equal(unused.body.refund.status, 'succeeded');
  t.equal(unused.body.total, 47200, 'INR 400 + 18% GST back to the card');
  t.equal((await ctx.call('GET', `/v1/accounts/${account.id}/credits`)).body.balance, 0, 'the credits taken back');
  t.same(await invariants(ctx), []);
});

t.test('a refund the card network declines: the note stands, the credits stay taken back (no double value), refund.failed says so', async (t) => {
  const ctx = await setup(t);
  const { account, invoice } = await paidInvoice(ctx, 'tok_refundDeclined');
  const res = await issue(ctx, invoice.id, { reason: 'Unused credits', lines: [{ position: 1, amount: 100000 }] });
  t.equal(res.status, 201);
  t.match(res.body.refund, { status: 'failed', failureCode: 'refund_declined' });
  t.equal((await ctx.call('GET', `/v1/accounts/${account.id}/credits`)).body.balance, 0, 'the credits stay taken back: the money is owed instead');
  t.equal((await ctx.query("select count(*)::int as n from outbox where type = 'refund.failed'")).rows[0].n, 1);
  t.same(await invariants(ctx), []);
});

t.test('an unanswered refund is settled by the sweep, once', async (t) => {
  const ctx = await setup(t);
  const sandbox = createSandboxProvider({ db: ctx.database.db, clock: ctx.clock });
  let lose = true;
  const provider = { ...sandbox, refund: async (r: Parameters<typeof sandbox.refund>[0]): Promise<RefundResult> => (lose ? { status: 'unknown' } : sandbox.refund(r)) };
  const services = createServices({ config: ctx.config, database: ctx.database, clock: ctx.clock, provider });
  const { invoice } = await paidInvoice(ctx);
  const issued = await services.creditNotes.issue(invoice.id, { accountId: null }, { reason: 'Goodwill', amount: 50000 }, null);
  t.equal(issued.refund?.status, 'unknown');
  lose = false;
  t.equal(await services.creditNotes.reconcileRefunds(), 0, 'too fresh to sweep');
  await ctx.query("update refunds set touched_at = touched_at - interval '3 minutes'");
  t.equal(await services.creditNotes.reconcileRefunds(), 1);
  t.equal((await ctx.query('select status from refunds')).rows[0].status, 'succeeded');
  await ctx.query("update refunds set touched_at = touched_at - interval '3 minutes'");
  t.equal(await services.creditNotes.reconcileRefunds(), 0, 'nothing twice');
  t.equal(await count(ctx, 'sandbox_refunds'), 1);
});

t.test('an invoice paid by wire is credited as credits, not refunded through the gateway; an open one owes less; void', async (t) => {
  const ctx = await setup(t);
  const { invoice } = await paidInvoice(ctx);
  await ctx.query("update payments set provider_reference = null, offline_reference = 'NEFT1' where invoice_id = $1", [invoice.id]);
  t.equal((await issue(ctx, invoice.id, { reason: 'Goodwill', amount: 1000 })).body.code, 'refund_not_possible');
  t.equal((await issue(ctx, invoice.id, { reason: 'Goodwill', amount: 1000, settlement: 'reduce_due' })).body.code, 'invalid_settlement');
  const asCredits = await issue(ctx, invoice.id, { reason: 'Goodwill', amount: 1000, settlement: 'credits' });
  t.equal(asCredits.status, 201);
  t.equal(asCredits.body.refund, null);
  t.equal(asCredits.body.total, 1180);
  t.same(await invariants(ctx), []);
  t.equal((await ctx.call('POST', `/v1/invoices/${invoice.id}/void`)).body.code, 'invoice_not_voidable', 'a paid invoice is credited, not voided');
});

t.test('the credit note PDF names its invoice, the tax reversed and its reason; the same bytes every time', async (t) => {
  const ctx = await setup(t);
  const { invoice } = await paidInvoice(ctx);
  const note = (await issue(ctx, invoice.id, { reason: 'Outage on 3 December', amount: 100000 })).body;
  const get = (headers: Record<string, string> = {}) =>
    ctx.app.inject({ method: 'GET', url: `/v1/credit-notes/${note.id}/pdf`, headers: { authorization: `Bearer ${ctx.keys.read}`, ...headers } });
  const first = await get();
  t.equal(first.statusCode, 200);
  const text = await pdfText(first.rawPayload);
  for (const pattern of [/CREDIT NOTE/, /Credit note number: CN\/2627\/0000001/, new RegExp(`Against invoice: ${invoice.number.replaceAll('/', '\\/')}`), /CGST @ 9%\s*₹90\.00/, /SGST @ 9%\s*₹90\.00/, /Credit note total\s*₹1,180\.00/, /Reason: Outage on 3 December/, /GSTIN: 29AABCE1234F1Z1/]) {
    t.match(text, pattern);
  }
  t.notMatch(text, /minor units/);
  t.ok((await get()).rawPayload.equals(first.rawPayload), 'the same bytes');
  t.equal((await get({ 'if-none-match': String(first.headers.etag) })).statusCode, 304);
});

/** An Indian account whose renewal waits for the customer (its card's e-mandate is INR 1): an open renewal invoice. */
async function waitingRenewal(ctx: TestContext) {
  const account = await paidAccount(ctx, 100000);
  await ctx.query('update payment_methods set mandate_max_amount = 100 where account_id = $1', [account.id]);
  const { rows } = await ctx.query('select id, current_period_end from subscriptions where account_id = $1', [account.id]);
  ctx.clock.set(new Date(rows[0].current_period_end.getTime() + 60_000));
  if ((await ctx.services.renewals.renew(rows[0].id, rows[0].current_period_end)) !== 'invoiced') throw new Error('the renewal should wait');
  const invoice = (await ctx.query("select id, total, attempt_count, next_attempt_at from invoices where account_id = $1 and kind = 'renewal'", [account.id])).rows[0];
  return { account, invoice: { ...invoice, total: Number(invoice.total) } };
}

t.test('on an unpaid invoice a credit note reduces what is due: paying charges the rest; crediting it all settles it', async (t) => {
  const ctx = await setup(t);
  const { account, invoice } = await waitingRenewal(ctx);
  t.equal((await issue(ctx, invoice.id, { reason: 'Goodwill', amount: 100000, settlement: 'refund' })).body.code, 'invalid_settlement', 'nothing was paid to refund');
  const note = await issue(ctx, invoice.id, { reason: 'Goodwill: INR 1,000 off', amount: 100000 });
  t.equal(note.status, 201, JSON.stringify(note.body));
  t.equal(note.body.settlement, 'reduce_due');
  const after = (await ctx.call('GET', `/v1/invoices/${invoice.id}`)).body;
  t.match(after, { status: 'requires_action', creditedTotal: 118000, amountDue: invoice.total - 118000 });
  const paid = await ctx.call('POST', `/v1/invoices/${invoice.id}/pay`, { body: {}, headers: { 'idempotency-key': 'pay-rest' } });
  t.equal(paid.status, 201, JSON.stringify(paid.body));
  t.equal((await ctx.query("select amount from sandbox_charges order by created_at desc limit 1")).rows[0].amount, String(invoice.total - 118000), 'the rest was charged');

  const second = await waitingRenewal(ctx);
  const whole = await issue(ctx, second.invoice.id, { reason: 'Free month', amount: 250000 });
  t.equal(whole.status, 201);
  t.match((await ctx.call('GET', `/v1/invoices/${second.invoice.id}`)).body, { status: 'paid', amountDue: 0 }, 'settled by the credit');
  t.equal((await ctx.query('select count(*)::int as n from payments where invoice_id = $1', [second.invoice.id])).rows[0].n, 0, 'nothing charged');
  void account;
});

t.test('void: an open renewal invoice of a past-due account is voided, its number stays used, the account is active again', async (t) => {
  const ctx = await setup(t);
  const { account, invoice } = await waitingRenewal(ctx);
  ctx.clock.set(invoice.next_attempt_at);
  t.equal(await ctx.services.renewals.retry(invoice.id, invoice.attempt_count), 'reminded');
  t.equal((await ctx.call('GET', `/v1/accounts/${account.id}`)).body.status, 'past_due');
  t.equal((await ctx.call('POST', `/v1/invoices/${invoice.id}/void`, { key: ctx.keys.write })).status, 403, 'ops only');
  const voided = await ctx.call('POST', `/v1/invoices/${invoice.id}/void`);
  t.equal(voided.status, 200, JSON.stringify(voided.body));
  t.match(voided.body, { status: 'void', amountDue: 0 });
  t.equal((await ctx.call('GET', `/v1/accounts/${account.id}`)).body.status, 'active', 'active again');
  t.equal((await ctx.call('POST', `/v1/invoices/${invoice.id}/void`)).body.status, 'void', 'voiding again answers the same');
  t.equal((await ctx.query("select count(*)::int as n from outbox where type = 'invoice.voided'")).rows[0].n, 1, 'one event');
  t.equal((await ctx.query('select next_attempt_at from invoices where id = $1', [invoice.id])).rows[0].next_attempt_at, null, 'dunning stopped');
  const pdf = await ctx.app.inject({ method: 'GET', url: `/v1/invoices/${invoice.id}/pdf`, headers: { authorization: `Bearer ${ctx.keys.read}` } });
  t.match(await pdfText(pdf.rawPayload), /TAX INVOICE - CANCELLED[\s\S]*nothing is due on it/, 'its PDF says it is cancelled');
  t.equal((await ctx.call('POST', `/v1/invoices/${invoice.id}/pay`, { body: {}, headers: { 'idempotency-key': 'late' } })).body.code, 'invoice_not_payable');
  const onVoid = await issue(ctx, invoice.id, { reason: 'Too late', amount: 1 });
  t.equal(onVoid.body.code, 'invoice_not_creditable', JSON.stringify(onVoid.body));
});

t.test('the customer hears of the credit note and the refund by email, in rupees, with the credit note attached', async (t) => {
  const { smtpReceiver } = await import('./smtp.js');
  const { deliverEvents } = await import('./helper.js');
  const ctx = await setup(t);
  const smtp = await smtpReceiver(t);
  const { invoice } = await paidInvoice(ctx);
  const note = (await issue(ctx, invoice.id, { reason: 'Outage on 3 December', amount: 100000 })).body;
  await deliverEvents(ctx, smtp.url);
  const mails = await Promise.all(smtp.received.map((r) => smtp.parse(r)));
  const refundMail = mails.find((m) => /refund/i.test(m.subject ?? '') && m.text?.includes(note.number));
  t.ok(refundMail, `a refund email names ${note.number}: ${mails.map((m) => m.subject).join(' | ')}`);
  t.match(refundMail!.text, /₹1,180\.00/);
  t.ok(refundMail!.html, 'an HTML part');
  t.notMatch(`${refundMail!.text}${refundMail!.html}`, /minor units|118000/);
  t.same(refundMail!.attachments.map((a) => a.filename), ['CN-2627-0000001.pdf'], 'the credit note attached');
  t.equal(refundMail!.attachments[0]!.contentType, 'application/pdf');
  // Delivered again (a re-run job): nothing sent twice.
  const sent = smtp.received.length;
  await deliverEvents(ctx, smtp.url);
  t.equal(smtp.received.length, sent, 'a re-run sends nothing');
});

t.test('without its Idempotency-Key, a credit note is refused with its own code, and nothing is written', async (t) => {
  const ctx = await setup(t);
  const { invoice } = await paidInvoice(ctx);
  const res = await ctx.call('POST', `/v1/invoices/${invoice.id}/credit-notes`, { body: { reason: 'Goodwill', amount: 1000 } });
  t.equal(res.status, 400);
  t.equal(res.body.code, 'idempotency_key_required');
  t.equal(await count(ctx, 'credit_notes'), 0);
  const blank = await ctx.call('POST', `/v1/invoices/${invoice.id}/credit-notes`, { body: { reason: 'Goodwill', amount: 1000 }, headers: { 'idempotency-key': '' } });
  t.equal(blank.status, 400, 'an empty key is refused too');
});

t.test('prepaid credits of an unpaid invoice are not credited (not granted yet); its other lines are', async (t) => {
  const { readyAccount } = await import('./helper.js');
  const ctx = await setup(t);
  const account = await readyAccount(ctx, { country: 'US' });
  const body = { planId: 'plan_enterprise_v1', billingCycle: 'annual', initialCredits: 20000, paymentMethod: { type: 'wire_transfer' } };
  const invoice = (await ctx.call('POST', `/v1/accounts/${account.id}/upgrade`, { body, headers: { 'idempotency-key': 'wire' } })).body.invoice;
  t.equal(invoice.status, 'open');
  const refused = await issue(ctx, invoice.id, { reason: 'Credits waived', lines: [{ position: 1, amount: 20000 }] });
  t.equal(refused.status, 422);
  t.equal(refused.body.code, 'invalid_settlement', 'not "already spent": they were never granted');
  t.equal(await count(ctx, 'credit_notes'), 0, 'nothing written');
  const planFee = await issue(ctx, invoice.id, { reason: 'Discount agreed', lines: [{ position: 0, amount: 18980 }] });
  t.equal(planFee.status, 201, JSON.stringify(planFee.body));
  t.match((await ctx.call('GET', `/v1/invoices/${invoice.id}`)).body, { amountDue: 1020000 }, 'the awaited wire is for what is left');
  t.equal((await ctx.query("select amount from payments where status = 'awaiting_confirmation'")).rows[0].amount, '1020000');
});
