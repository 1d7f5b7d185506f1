import t from 'tap';
import { emailingEventTypes, renderEmail } from '../../src/modules/notifications/templates.js';

const account = { name: 'Iyer Cloud Communications LLP', email: 'ap@iyer.example' };
const email = (type: string, payload: Record<string, unknown>) => renderEmail({ type, payload }, account);

t.test('a renewal is announced as renewed only once paid', async (t) => {
  t.equal(email('subscription.renewed', { periodStart: '2027-03-01T10:00:00Z', periodEnd: '2027-06-01T10:00:00Z' }), null, 'the period starting is no email');
  const paid = email('invoice.paid', { kind: 'renewal', number: 'INV/2627/0000007', total: 3363000, currency: 'INR', periodStart: '2027-03-01T10:00:00Z', periodEnd: '2027-06-01T10:00:00Z' });
  t.match(paid?.subject, /renewed/);
  t.match(paid?.text, /INR 33,630\.00 paid, invoice INV\/2627\/0000007/);
  t.equal(email('invoice.paid', { kind: 'upgrade', number: 'INV-1', total: 1 }), null, 'other invoices: their own emails');
  t.ok(emailingEventTypes.has('invoice.paid') && emailingEventTypes.has('invoice.requires_action'));
});

t.test('a renewal waiting for the customer says so, and never that a charge failed', async (t) => {
  const ask = email('invoice.requires_action', { number: 'INV/2627/0000007', total: 3363000, currency: 'INR', reason: 'above_mandate', payBy: '2027-03-02T10:00:00Z' });
  t.match(ask?.subject, /Action needed/);
  t.match(ask?.text, /INR 33,630\.00.*above the limit of your e-mandate.*by 2027-03-02/s);
  const reminder = email('subscription.past_due', { attempt: 2, failureCode: 'mandate_expired', nextAttemptAt: '2027-03-04T10:00:00Z' });
  t.match(reminder?.text, /not paid yet.*e-mandate of your saved method has ended.*before 2027-03-04/s);
  t.notMatch(reminder?.text, /failed/, 'no word of a failed charge');
  const notice = email('subscription.renewal_notice', { amount: 3363000, currency: 'INR', chargeAt: '2027-03-01T10:00:00Z', requiresAction: 'above_mandate' });
  t.match(notice?.subject, /will need your approval/);
});

t.test('an auto-recharge waiting for the customer asks them to pay it, as a recharge', async (t) => {
  const ask = email('invoice.requires_action', { kind: 'credits', number: 'INV/2627/0000009', total: 2360000, currency: 'INR', reason: 'mandate_expired', payBy: '2026-12-17T10:00:00Z' });
  t.match(ask?.subject, /auto-recharge/);
  t.match(ask?.text, /INR 23,600\.00.*e-mandate of your saved method has ended.*by 2026-12-17/s);
  t.notMatch(ask?.text, /subscription/, 'not spoken of as a renewal');
});
