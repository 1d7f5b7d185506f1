import t, { type Test } from 'tap';
import { formatAmount } from '../../src/lib/format.js';
import type { InvoiceDto } from '../../src/modules/billing/schemas.js';
import { starterEntitlementsExample } from '../../src/modules/catalog/entitlements.js';
import {
  emailingEventTypes,
  emailNeeds,
  renderEmail,
  renderUpgradeConfirmation,
  type AccountForEmail,
  type EmailFacts,
  type RenderedEmail,
} from '../../src/modules/notifications/templates.js';

const indian: AccountForEmail = { name: 'Iyer Cloud Communications LLP', email: 'ap@iyer.example', country: 'IN', currency: 'INR' };
const american: AccountForEmail = { name: 'Dial & Co <US>', email: 'ap@dial.example', country: 'US', currency: 'USD' };
const email = (type: string, payload: Record<string, unknown>, facts?: EmailFacts) => renderEmail({ type, payload }, indian, facts);

t.test('a renewal is announced as renewed only once paid', async (t) => {
  t.equal(email('subscription.renewed', { periodStart: '2027-03-01T10:00:00Z', periodEnd: '2027-06-01T10:00:00Z' }), null, 'the period starting is no email');
  const paid = email('invoice.paid', { kind: 'renewal', number: 'INV/2627/0000007', total: 3363000, currency: 'INR', periodStart: '2027-03-01T10:00:00Z', periodEnd: '2027-06-01T10:00:00Z' });
  t.match(paid?.subject, /renewed: invoice INV\/2627\/0000007/);
  t.match(paid?.text, /1 Mar 2027 to 1 Jun 2027: ₹33,630\.00 paid, invoice INV\/2627\/0000007/);
  t.equal(email('invoice.paid', { kind: 'upgrade', number: 'INV-1', total: 1 }), null, 'other invoices: their own emails');
  t.ok(emailingEventTypes.has('invoice.paid') && emailingEventTypes.has('invoice.requires_action'));
});

t.test('a renewal waiting for the customer says so, and never that a charge failed', async (t) => {
  const ask = email('invoice.requires_action', { number: 'INV/2627/0000007', total: 3363000, currency: 'INR', reason: 'above_mandate', payBy: '2027-03-02T10:00:00Z' });
  t.match(ask?.subject, /Action needed/);
  t.match(ask?.text, /₹33,630\.00.*above the limit of your e-mandate.*by 2 Mar 2027, 15:30 IST/s);
  const reminder = email('subscription.past_due', { attempt: 2, failureCode: 'mandate_expired', nextAttemptAt: '2027-03-04T10:00:00Z' });
  t.match(reminder?.text, /not paid yet.*e-mandate of your saved method has ended.*before 4 Mar 2027, 15:30 IST/s);
  t.notMatch(reminder?.text, /failed/, 'no word of a failed charge');
  const notice = email('subscription.renewal_notice', { amount: 3363000, currency: 'INR', chargeAt: '2027-03-01T10:00:00Z', requiresAction: 'above_mandate' });
  t.match(notice?.subject, /will need your approval/);
});

t.test('an auto-recharge waiting for the customer asks them to pay it, as a recharge', async (t) => {
  const ask = email('invoice.requires_action', { kind: 'credits', number: 'INV/2627/0000009', total: 2360000, currency: 'INR', reason: 'mandate_expired', payBy: '2026-12-17T10:00:00Z' });
  t.match(ask?.subject, /auto-recharge/);
  t.match(ask?.text, /₹23,600\.00.*e-mandate of your saved method has ended.*by 17 Dec 2026, 15:30 IST/s);
  t.notMatch(ask?.text, /subscription/, 'not spoken of as a renewal');
});

t.test('plans are named, never shown by id, also when the service found no name', async (t) => {
  const payload = { from: 'plan_growth_v1', to: 'plan_starter_v1', effectiveAt: '2026-02-28T09:30:00Z', conflicts: [] };
  const named = email('subscription.plan_change_scheduled', payload, { planNames: { plan_growth_v1: 'Growth', plan_starter_v1: 'Starter' } });
  t.match(named?.subject, /Your change to the Starter plan is scheduled/);
  t.match(named?.text, /Your plan changes from Growth to Starter on 28 Feb 2026, 15:00 IST, the start of your next billing period/);
  const unnamed = email('subscription.plan_change_scheduled', payload);
  t.match(unnamed?.text, /changes to your new plan on 28 Feb 2026/);
  t.notMatch(`${unnamed?.subject} ${unnamed?.text} ${unnamed?.html}`, /plan_/);
});

t.test('a declined charge reads as words, not as its code', async (t) => {
  const declined = email('subscription.past_due', { attempt: 1, failureCode: 'card_declined', nextAttemptAt: '2027-03-02T10:00:00Z' }, { invoiceNumber: 'INV/2627/0000007' });
  t.match(declined?.subject, /could not take your renewal payment/);
  t.match(declined?.text, /renewal invoice INV\/2627\/0000007, but the card was declined \(attempt 1\)/);
  t.match(declined?.text, /try again on 2 Mar 2027, 15:30 IST/);
  const funds = email('credits.recharge_failed', { failureCode: 'insufficient_funds', failures: 1, disabled: false, nextAttemptAt: '2026-12-02T05:00:00Z' });
  t.match(funds?.text, /failed: the card has insufficient funds\. We will try again on 2 Dec 2026, 10:30 IST/);
  const unknown = email('credits.recharge_failed', { failureCode: 'gateway_hiccup', failures: 5, disabled: true });
  t.match(unknown?.text, /the payment was declined/);
  t.notMatch(`${declined?.text} ${funds?.text} ${unknown?.text}`, /_/);
});

t.test('a credit note says how it is settled; a refund receipt and a failed refund say what happens next', async (t) => {
  const note = (settlement: string) =>
    email('credit_note.created', { creditNoteId: 'cn_1', number: 'CN/2627/0000001', invoiceId: 'inv_1', invoiceNumber: 'INV/2627/0000004', total: 118000, currency: 'INR', settlement, reason: 'Duplicate charge' });
  t.match(note('refund')?.text, /credit note CN\/2627\/0000001 for ₹1,180\.00 against invoice INV\/2627\/0000004: it is being refunded to the card or account you paid with/);
  t.match(note('credits')?.text, /added to your prepaid credits/);
  t.match(note('reduce_due')?.text, /reduces what you owe on that invoice/);
  t.match(note('refund')?.text, /Reason\s+Duplicate charge/);
  const refunded = email('refund.succeeded', { refundId: 'ref_1', creditNoteId: 'cn_1', creditNoteNumber: 'CN/2627/0000001', paymentId: 'pay_1', amount: 118000, currency: 'INR' }, { attached: true });
  t.match(refunded?.subject, /refund for credit note CN\/2627\/0000001/);
  t.match(refunded?.text, /We refunded ₹1,180\.00/);
  t.match(refunded?.text, /credit note is attached as a PDF/);
  const failed = email('refund.failed', { refundId: 'ref_1', creditNoteId: 'cn_1', creditNoteNumber: 'CN/2627/0000001', paymentId: 'pay_1', amount: 118000, currency: 'INR', failureCode: 'refund_declined', failureMessage: 'Declined' });
  t.match(failed?.text, /could not refund ₹1,180\.00.*declined the refund.*billing team will contact you.*prepaid credits instead/s);
  const voided = email('invoice.voided', { invoiceId: 'inv_1', number: 'INV/2627/0000004', total: 118000, currency: 'INR' });
  t.match(voided?.subject, /Invoice INV\/2627\/0000004 is cancelled/);
  t.match(voided?.text, /Nothing is due on it/);
});

t.test('the service is told what to look up: plan names, the invoice or credit note to name and attach', async (t) => {
  const needs = (type: string, payload: Record<string, unknown>) => emailNeeds({ type, payload });
  t.same(needs('invoice.paid', { invoiceId: 'inv_1', kind: 'renewal' }), { planIds: [], invoiceId: 'inv_1', creditNoteId: null, attach: 'invoice' });
  t.same(needs('credits.purchased', { invoiceId: 'inv_2' }).attach, 'invoice');
  t.same(needs('credits.recharged', { invoiceId: 'inv_2' }).attach, 'invoice');
  t.same(needs('invoice.requires_action', { invoiceId: 'inv_3' }).attach, 'invoice');
  t.same(needs('refund.failed', { creditNoteId: 'cn_1' }), { planIds: [], invoiceId: null, creditNoteId: 'cn_1', attach: 'credit_note' });
  t.same(needs('credit_note.created', { creditNoteId: 'cn_1' }).attach, 'credit_note');
  t.same(needs('subscription.past_due', { invoiceId: 'inv_4' }), { planIds: [], invoiceId: 'inv_4', creditNoteId: null, attach: null }, 'named, not attached');
  t.same(needs('subscription.plan_change_scheduled', { from: 'plan_a', to: 'plan_b' }).planIds, ['plan_a', 'plan_b']);
});

// ---------------------------------------------------------------------------------------
// Every template, for an Indian and an American account.

const inr = { currency: 'INR' };
const usd = { currency: 'USD' };
/** Payloads as the service writes them, a variant per branch of each template; amounts distinct enough to spot raw. */
const samples = (c: { currency: string }): Record<string, Array<Record<string, unknown>>> => ({
  'invoice.paid': [{ accountId: 'acc_1', invoiceId: 'inv_1', number: 'INV/2627/0000007', total: 3363000, kind: 'renewal', ...c, periodStart: '2027-03-01T10:00:00.000Z', periodEnd: '2027-06-01T10:00:00.000Z' }],
  'invoice.requires_action': [
    { accountId: 'acc_1', kind: 'renewal', subscriptionId: 'sub_1', invoiceId: 'inv_1', number: 'INV/2627/0000007', total: 3363000, ...c, reason: 'above_mandate', payBy: '2027-03-02T10:00:00.000Z' },
    { accountId: 'acc_1', kind: 'credits', invoiceId: 'inv_2', number: 'INV/2627/0000009', total: 2360000, ...c, reason: 'no_method', payBy: '2026-12-17T10:00:00.000Z' },
  ],
  'subscription.past_due': ['mandate_expired', 'invoice_overdue', 'card_declined'].map((failureCode) => ({
    accountId: 'acc_1', subscriptionId: 'sub_1', invoiceId: 'inv_1', attempt: 2, retriesLeft: 1, nextAttemptAt: '2027-03-04T10:00:00.000Z', failureCode,
  })),
  'subscription.recovered': [{ accountId: 'acc_1', subscriptionId: 'sub_1', invoiceId: 'inv_1', paymentId: 'pay_1' }, { accountId: 'acc_1', subscriptionId: 'sub_1', invoiceId: 'inv_1' }],
  'subscription.cancelled': ['cancelled', 'dunning_exhausted'].map((reason) => ({ accountId: 'acc_1', subscriptionId: 'sub_1', reason, planId: 'plan_growth_v1' })),
  'subscription.cancellation_scheduled': [{ accountId: 'acc_1', subscriptionId: 'sub_1', endsAt: '2027-06-01T10:00:00.000Z' }],
  'subscription.resumed': [{ accountId: 'acc_1', subscriptionId: 'sub_1' }],
  'subscription.plan_change_scheduled': [
    { accountId: 'acc_1', subscriptionId: 'sub_1', from: 'plan_growth_v1', to: 'plan_starter_v1', effectiveAt: '2027-02-28T09:30:00.000Z', conflicts: [{ code: 'retention_reduced', detail: '90 to 30 days' }] },
  ],
  'subscription.renewal_notice': [
    { accountId: 'acc_1', subscriptionId: 'sub_1', amount: 1769900, ...c, chargeAt: '2027-03-01T10:00:00.000Z' },
    { accountId: 'acc_1', subscriptionId: 'sub_1', amount: 1769900, ...c, chargeAt: '2027-03-01T10:00:00.000Z', requiresAction: 'above_mandate' },
  ],
  'credits.recharge_notice': [{ accountId: 'acc_1', amount: 2360000, ...c, chargeAt: '2026-12-03T10:00:00.000Z' }],
  'credits.low_balance': [
    { accountId: 'acc_1', balance: 4871200, held: 0, available: 4871200, threshold: 5000000, ...c },
    { accountId: 'acc_1', balance: 5123400, held: 312000, available: 4811400, threshold: 5000000, ...c },
  ],
  'credits.depletion_forecast': [
    { accountId: 'acc_1', ...c, available: 1800500, spentLastHour: 100300, spentLastDay: 200600, ratePerHour: 100300, hoursLeft: 17.95, runsOutAt: '2026-11-27T05:59:00.000Z', horizonHours: 168, autoRecharge: null },
    {
      accountId: 'acc_1', ...c, available: 1800500, spentLastHour: 10300, spentLastDay: 200600, ratePerHour: 10300, hoursLeft: 174.8, runsOutAt: '2026-12-03T05:59:00.000Z', horizonHours: 240,
      autoRecharge: { threshold: 500000, amount: 2000000, expectedAt: '2026-11-27T00:59:00.000Z', noticeHours: 24, landsAt: '2026-11-28T00:59:00.000Z', landsBeforeDepletion: true },
    },
    {
      accountId: 'acc_1', ...c, available: 1800500, spentLastHour: 100300, spentLastDay: 200600, ratePerHour: 100300, hoursLeft: 17.95, runsOutAt: '2026-11-27T05:59:00.000Z', horizonHours: 168,
      autoRecharge: { threshold: 500000, amount: 2000000, expectedAt: '2026-11-27T00:59:00.000Z', noticeHours: 24, landsAt: '2026-11-28T00:59:00.000Z', landsBeforeDepletion: false },
    },
  ],
  'credits.recharged': [{ accountId: 'acc_1', paymentId: 'pay_1', invoiceId: 'inv_2', credits: 2000000, total: 2360000, ...c }],
  'credits.purchased': [{ accountId: 'acc_1', paymentId: 'pay_1', invoiceId: 'inv_3', credits: 1234500, total: 1456710, ...c }],
  'credits.recharge_failed': [
    { accountId: 'acc_1', failureCode: 'card_declined', failures: 1, disabled: false, nextAttemptAt: '2026-12-02T05:00:00.000Z' },
    { accountId: 'acc_1', failureCode: 'insufficient_funds', failures: 5, disabled: true },
  ],
  'subscription.billing_cycle_change_scheduled': [{ accountId: 'acc_1', subscriptionId: 'sub_1', from: 'monthly', to: 'annual', effectiveAt: '2027-04-15T12:00:00.000Z' }],
  'credit_note.created': ['refund', 'credits', 'reduce_due'].map((settlement) => ({
    accountId: 'acc_1', creditNoteId: 'cn_1', number: 'CN/2627/0000001', invoiceId: 'inv_1', invoiceNumber: 'INV/2627/0000004', total: 1180050, ...c, settlement, reason: 'service_outage',
  })),
  'refund.succeeded': [{ accountId: 'acc_1', refundId: 'ref_1', creditNoteId: 'cn_1', creditNoteNumber: 'CN/2627/0000001', paymentId: 'pay_1', amount: 1180050, ...c }],
  'refund.failed': [
    { accountId: 'acc_1', refundId: 'ref_1', creditNoteId: 'cn_1', creditNoteNumber: 'CN/2627/0000001', paymentId: 'pay_1', amount: 1180050, ...c, failureCode: 'refund_declined', failureMessage: 'Refund declined by issuer' },
  ],
  'invoice.voided': [{ accountId: 'acc_1', invoiceId: 'inv_1', number: 'INV/2627/0000004', total: 3363000, ...c }],
  'kyc.status_changed': [
    { accountId: 'acc_1', from: 'submitted', to: 'approved', reason: null },
    { accountId: 'acc_1', from: 'submitted', to: 'rejected', reason: 'Address proof expired' },
  ],
});

const facts: EmailFacts = { planNames: { plan_growth_v1: 'Growth', plan_starter_v1: 'Starter' }, invoiceNumber: 'INV/2627/0000003', attached: true };
const amountFields = ['total', 'amount', 'credits', 'available', 'threshold', 'ratePerHour', 'spentLastHour', 'spentLastDay'];
const timeFields = ['payBy', 'nextAttemptAt', 'endsAt', 'effectiveAt', 'chargeAt', 'runsOutAt'];

const upgradeInvoice = (currency: 'INR' | 'USD'): InvoiceDto => ({
  id: 'inv_1',
  number: 'INV/2627/0000001',
  accountId: 'acc_1',
  subscriptionId: 'sub_1',
  status: 'paid',
  actionRequired: null,
  currency,
  planId: 'plan_starter_v1',
  billingCycle: 'quarterly',
  period: { start: new Date('2026-11-26T10:00:00Z'), end: new Date('2027-02-26T10:00:00Z') },
  lines: [
    { kind: 'plan_fee', description: 'Starter plan, quarterly (3 months)', quantity: 3, unitAmount: 250000, grossAmount: 750000, discountAmount: 37500, amount: 712500 },
    { kind: 'credits', description: 'Prepaid credits for calls and SMS', quantity: 1, unitAmount: 200000, grossAmount: 200000, discountAmount: 0, amount: 200000 },
  ] as InvoiceDto['lines'],
  subtotal: 912500,
  discountTotal: 37500,
  tax:
    currency === 'INR'
      ? { label: 'CGST 9% + SGST 9%', rateBps: 1800, amount: 164250, components: [{ name: 'CGST', rateBps: 900, amount: 82125 }, { name: 'SGST', rateBps: 900, amount: 82125 }] }
      : { label: 'No tax (export of services)', rateBps: 0, amount: 0, components: [] },
  supply: null,
  total: currency === 'INR' ? 1076750 : 912500,
  amountInWords: 'Only',
  issuedAt: new Date('2026-11-26T10:00:00Z'),
  dueAt: new Date('2026-11-26T10:00:00Z'),
  paidAt: new Date('2026-11-26T10:00:00Z'),
}) as InvoiceDto;

/** What every customer email must be, whatever it says. */
function checkReadable(t: Test, mail: RenderedEmail, account: AccountForEmail, payload: Record<string, unknown>) {
  const all = `${mail.subject}\n${mail.text}\n${mail.html}`;
  const currency = account.currency!;
  t.ok(mail.subject.length > 0 && mail.text.length > 0, 'a subject and a text part');
  t.match(mail.html, /^<!doctype html>\n<html lang="en">.*<h1 [^>]*>.+<\/h1>/s, 'an HTML part in the shared layout, with a heading');
  t.notMatch(mail.html, /<(img|link|script)\b|https?:\/\//i, 'no external assets');
  t.ok(mail.html.includes(`Hello ${account.name.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)},`), 'the name escaped in HTML');
  t.notOk(mail.html.includes(account.name) && /[&<>]/.test(account.name), 'never unescaped');
  t.notMatch(all, /minor units/i, 'no "minor units"');
  t.notMatch(all, /plan_/, 'plans by name');
  t.notMatch(mail.text, /\b[a-z]+_[a-z_]+\b/, 'no codes such as card_declined');
  t.notMatch(all, /\bundefined\b|\bNaN\b|\bnull\b|\[object /, 'nothing missing');
  t.notMatch(all, /\d{4}-\d{2}-\d{2}/, 'no ISO dates');
  t.notMatch(all, /\b(INR|USD) \d/, 'no "INR 1,234.00" style');
  for (const field of amountFields) {
    const minor = payload[field];
    if (typeof minor !== 'number') continue;
    t.notOk(all.includes(String(minor)), `${field} ${minor} not shown in minor units`);
    t.ok(mail.text.includes(formatAmount(minor, currency)) && mail.html.includes(formatAmount(minor, currency)), `${field} as ${formatAmount(minor, currency)}`);
  }
  const zone = account.country === 'IN' ? 'IST' : '(EST|EDT)';
  for (const field of timeFields) {
    if (typeof payload[field] !== 'string') continue;
    t.match(mail.text, new RegExp(`\\d{1,2} [A-Z][a-z]{2} \\d{4}, \\d{2}:\\d{2} ${zone}\\b`), `${field} as a time in the account's zone, named`);
  }
}

for (const [account, c] of [[indian, inr], [american, usd]] as const) {
  t.test(`every email reads well for ${account.country === 'IN' ? 'an Indian' : 'an American'} account`, async (t) => {
    const byType = samples(c);
    for (const type of emailingEventTypes) {
      if (type === 'account.upgraded') {
        const mail = renderUpgradeConfirmation({ account, plan: { name: 'Starter' }, entitlements: starterEntitlementsExample, invoice: upgradeInvoice(account.currency!) });
        checkReadable(t, mail, account, { total: upgradeInvoice(account.currency!).total });
        t.match(mail.text, /26 Nov 2026 to 26 Feb 2027/, 'the period in dates of the account\'s zone');
        t.match(mail.text, account.currency === 'INR' ? /CGST 9% \+ SGST 9%\s+₹1,642\.50\n\s+Total\s+₹10,767\.50/ : /Total\s+\$9,125\.00/);
        t.match(mail.html, /Billing-cycle discount<\/td><td [^>]*>-[₹$]375\.00</, 'the amounts table in HTML');
        continue;
      }
      const variants = byType[type];
      t.ok(variants, `${type} has sample payloads`);
      for (const payload of variants ?? []) {
        const mail = renderEmail({ type, payload }, account, facts);
        t.ok(mail, `${type} ${JSON.stringify(payload)} emails`);
        if (mail) checkReadable(t, mail, account, payload);
      }
    }
  });
}

t.test('receipts name their invoice or credit note and say the PDF is attached', async (t) => {
  const byType = samples(inr);
  for (const type of ['invoice.paid', 'invoice.requires_action', 'credits.purchased', 'credits.recharged']) {
    for (const payload of byType[type]!) {
      const mail = renderEmail({ type, payload }, indian, facts)!;
      t.match(mail.text, /INV\/2627\/\d{7}/, `${type} names its invoice`);
      t.match(mail.text, /invoice is attached as a PDF/, `${type} attaches it`);
    }
  }
  for (const type of ['credit_note.created', 'refund.succeeded', 'refund.failed']) {
    const mail = renderEmail({ type, payload: byType[type]![0]! }, indian, facts)!;
    t.match(mail.text, /CN\/2627\/0000001/, `${type} names its credit note`);
    t.match(mail.text, /credit note is attached as a PDF/, `${type} attaches it`);
  }
  const plain = renderEmail({ type: 'credits.purchased', payload: byType['credits.purchased']![0]! }, indian)!;
  t.match(plain.text, /invoice is in your billing history/, 'nothing attached: not said to be');
});

t.test('a renewal partly settled by a credit note says what was paid, and the total', async (t) => {
  const paid = renderEmail(
    { type: 'invoice.paid', payload: { kind: 'renewal', number: 'INV/2728/0000003', total: 3363000, amountPaid: 2183000, currency: 'INR', periodStart: '2027-06-01T10:00:00Z', periodEnd: '2027-09-01T10:00:00Z' } },
    { name: 'Iyer Cloud', email: 'ap@iyer.example', country: 'IN' },
  );
  t.match(paid?.text, /₹21,830\.00 paid/);
  t.match(paid?.text, /Invoice total, less credit notes\s+₹33,630\.00/);
});
