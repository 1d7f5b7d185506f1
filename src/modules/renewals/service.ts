import type { Db } from '../../db/client.js';
import * as accountsRepo from '../accounts/repo.js';
import { amountDue } from '../billing/domain.js';
import * as billingRepo from '../billing/repo.js';
import { issueInvoice } from '../billing/issue.js';
import * as catalogRepo from '../catalog/repo.js';
import { appendEvents, type NewEvent } from '../events/repo.js';
import { chargeableAfter, mandateApplies, unattendedVerdict, type ActionRequired } from '../payments/mandate.js';
import type { ChargeResult } from '../payments/provider.js';
import { isAttended, type PurposeDeps } from '../payments/service.js';
import * as paymentsRepo from '../payments/repo.js';
import * as subscriptionsRepo from '../subscriptions/repo.js';
import type { SubscriptionRow } from '../subscriptions/repo.js';
import { nowForAccount } from '../test-clocks/time.js';
import { createBatchRenewals } from './batch.js';
import { nextDunningAt, planRenewal, renewalEvents, renewalInvoice, renewalNoticeEvent, requiresActionEvent, type RenewalRules } from './domain.js';
import * as renewalsRepo from './repo.js';

export interface RenewalDeps extends PurposeDeps {
  invoiceDueDays: number;
  /** Days after the renewal to retry a declined charge: [1, 3, 7] by default. */
  dunningRetryDays: number[];
}

export type DueWork =
  | { kind: 'renew'; subscriptionId: string; periodEnd: Date }
  | { kind: 'retry'; invoiceId: string; attempt: number }
  | { kind: 'notice'; subscriptionId: string; periodEnd: Date };

/**
 * Renewals and dunning. Due work is found in Postgres (per account clock), never only in
 * Redis; each step is one transaction that re-checks it is still due, and the invoice of a
 * period is unique per subscription, so a step that runs twice does nothing the second time.
 */
export function createRenewalService(deps: RenewalDeps) {
  const { db, clock, payments } = deps;
  const rules: RenewalRules = { mandate: deps.mandate, taxation: deps.taxation, invoiceDueDays: deps.invoiceDueDays, dunningRetryDays: deps.dunningRetryDays };
  /**
   * The scheduler's sweep: renewals and retries whose time has come. SKIP LOCKED only keeps
   * sweeps running side by side from reading the same rows at once; exactly-once comes from
   * each step re-checking under the account lock, and from the unique invoice per period.
   */
  async function findDue(limit = 500): Promise<DueWork[]> {
    const now = clock.now();
    return db.transaction(async (tx) => {
      // One at a time only what the batch drain leaves alone (renewDue): test clocks, cancellations, changes...
      const subs = await renewalsRepo.lockDueSingles(tx, now, deps.mandate.noticeHours, limit);
      const retries = await renewalsRepo.lockDueRetries(tx, now, limit);
      const notices = deps.mandate.noticeHours > 0 ? await renewalsRepo.listDueNotices(tx, now, deps.mandate.noticeHours, limit) : [];
      return [
        ...subs.map((s) => ({ kind: 'renew' as const, subscriptionId: s.id, periodEnd: s.periodEnd })),
        ...retries.map((r) => ({ kind: 'retry' as const, invoiceId: r.id, attempt: r.attempt })),
        ...notices.map((n) => ({ kind: 'notice' as const, subscriptionId: n.id, periodEnd: n.periodEnd })),
      ];
    });
  }

  /** The account, then the subscription, locked (the order every writer of both takes), and the account's time. */
  async function lockSubscription(tx: Db, subscriptionId: string) {
    const found = await subscriptionsRepo.findSubscription(tx, subscriptionId);
    if (!found) return null;
    const account = (await accountsRepo.findAccount(tx, found.accountId, { forUpdate: true }))!;
    const sub = (await subscriptionsRepo.findSubscription(tx, subscriptionId, { forUpdate: true }))!;
    return { account, sub, now: await nowForAccount(tx, account, clock) };
  }

  /**
   * Ends a period: cancels a subscription set to cancel, or starts the next period with the
   * scheduled plan and cycle (planRenewal), issues its invoice and charges the saved method.
   */
  async function renew(subscriptionId: string, periodEnd: Date): Promise<'renewed' | 'cancelled' | 'invoiced' | 'skipped'> {
    const step = await db.transaction(async (tx) => {
      const locked = await lockSubscription(tx, subscriptionId);
      if (!locked) return { kind: 'skipped' as const };
      const { account, sub, now } = locked;
      if (sub.status !== 'active' || sub.currentPeriodEnd.getTime() !== periodEnd.getTime() || now < periodEnd) return { kind: 'skipped' as const };
      if (sub.cancelAtPeriodEnd) {
        await endSubscription(tx, sub, account, 'cancelled', now);
        return { kind: 'cancelled' as const };
      }

      const method = await paymentsRepo.findPaymentMethod(tx, sub.paymentMethodId);
      const plan = planRenewal(sub, account, method, await catalogOf(tx, sub), now, rules);
      const invoice = await issueInvoice(tx, renewalInvoice(sub, account, plan, now));
      const noticeFor = plan.notice?.sentNow ? periodEnd : null;
      await renewalsRepo.startNextPeriods(tx, [{ id: sub.id, planId: plan.planId, billingCycle: plan.cycleCode, whatsappAddon: plan.whatsappAddon, start: plan.start, end: plan.end, monthsElapsed: plan.monthsElapsed, noticeFor }], now);
      await renewalsRepo.setAccountPlans(tx, [{ accountId: account.id, planId: plan.planId }], now);
      const events = renewalEvents(sub, account, plan, invoice);
      await appendEvents(tx, now, [...events.before, events.created, ...events.after]);

      if (plan.collect === 'customer' || plan.collect === 'charge_after_notice') return { kind: 'invoiced' as const };
      if (plan.collect === 'offline') {
        // Wire, cheque, net banking: an open invoice with a due date, paid when ops confirm the money.
        await payments.open(tx, { accountId: account.id, purpose: 'renewal', offline: true, amount: invoice.total, currency: invoice.currency, method: method!, invoiceId: invoice.id, request: { invoiceId: invoice.id }, now });
        return { kind: 'invoiced' as const };
      }
      return { kind: 'charge' as const, payment: await openRenewalPayment(tx, invoice, account.id, method!, now), method: method! };
    });
    if (step.kind !== 'charge') return step.kind;
    await chargeAndSettle(step.payment, step.method);
    return 'renewed';
  }

  /** The catalog rows the next period of a subscription is priced from. */
  async function catalogOf(tx: Db, sub: SubscriptionRow) {
    const planId = sub.scheduledPlanId ?? sub.planId;
    return {
      plan: await catalogRepo.findPlan(tx, planId),
      prices: await catalogRepo.pricesOf(tx, [planId]),
      cycle: await catalogRepo.findBillingCycle(tx, sub.scheduledBillingCycle ?? sub.billingCycle),
    };
  }

  /** The pre-debit notice, sent PRE_DEBIT_NOTICE_HOURS before the period end so the renewal charges on time. */
  async function sendRenewalNotice(subscriptionId: string, periodEnd: Date): Promise<'sent' | 'skipped'> {
    return db.transaction(async (tx) => {
      const locked = await lockSubscription(tx, subscriptionId);
      if (!locked) return 'skipped';
      const { account, sub, now } = locked;
      const noticeFrom = new Date(periodEnd.getTime() - deps.mandate.noticeHours * 3_600_000);
      if (sub.status !== 'active' || sub.cancelAtPeriodEnd || sub.currentPeriodEnd.getTime() !== periodEnd.getTime() || now < noticeFrom) return 'skipped';
      if (sub.renewalNoticeFor?.getTime() === periodEnd.getTime()) return 'skipped';
      // Planned as at the period end: a renewal the mandate will not cover is announced as one the customer will have to pay.
      const method = await paymentsRepo.findPaymentMethod(tx, sub.paymentMethodId);
      const plan = planRenewal(sub, account, method, await catalogOf(tx, sub), periodEnd, rules);
      await renewalsRepo.markNoticeSent(tx, sub.id, periodEnd, now);
      await appendEvents(tx, now, [renewalNoticeEvent(account, sub.id, plan.priced.total, periodEnd, plan.needsCustomer ?? undefined)]);
      return 'sent';
    });
  }

  /**
   * A dunning step: charge the open invoice again if this attempt is still the one due; for
   * an invoice paid offline (nothing to charge), record that it is overdue instead.
   */
  async function retry(invoiceId: string, attempt: number): Promise<'charged' | 'reminded' | 'skipped'> {
    const step = await db.transaction(async (tx) => {
      const found = await billingRepo.findInvoice(tx, invoiceId);
      if (!found?.subscriptionId) return null;
      const account = (await accountsRepo.findAccount(tx, found.accountId, { forUpdate: true }))!;
      const invoice = await billingRepo.findInvoice(tx, invoiceId, { forUpdate: true });
      const now = await nowForAccount(tx, account, clock);
      if (!invoice || invoice.status !== 'open' || invoice.attemptCount !== attempt || !invoice.nextAttemptAt || invoice.nextAttemptAt > now) return null;
      const sub = (await subscriptionsRepo.findSubscription(tx, invoice.subscriptionId!, { forUpdate: true }))!;
      if (sub.status === 'cancelled') {
        // The subscription ended meanwhile: stop dunning this invoice, leave the account alone.
        await billingRepo.voidInvoice(tx, invoice.id);
        return null;
      }
      // The customer is paying it right now: this attempt is theirs.
      if (await paymentsRepo.findInFlightForInvoice(tx, invoice.id)) return null;
      const method = await paymentsRepo.findPaymentMethod(tx, sub.paymentMethodId);
      const verdict = unattendedVerdict(deps.mandate, method, account.currency, amountDue(invoice), now);
      if (!verdict.ok) {
        // Offline or net banking: an overdue reminder; card or UPI the rules forbid charging unattended: it waits for the customer.
        await remindOverdue(tx, invoice, sub, account, now, verdict.reason === 'not_unattended' ? null : verdict.reason);
        return { kind: 'reminded' as const };
      }
      // An Indian card or UPI no pre-debit notice covered for this period (it became the default
      // after the renewal was invoiced): the notice first, the charge once its window has passed.
      if (mandateApplies(account.currency, method!.type) && sub.renewalNoticeFor?.getTime() !== invoice.periodStart.getTime()) {
        const chargeAt = chargeableAfter(deps.mandate, now);
        await renewalsRepo.markNoticeSent(tx, sub.id, invoice.periodStart, now);
        await appendEvents(tx, now, [renewalNoticeEvent(account, sub.id, amountDue(invoice), chargeAt)]);
        if (chargeAt > now) {
          await billingRepo.setInvoiceSchedule(tx, invoiceId, { nextAttemptAt: chargeAt });
          return { kind: 'reminded' as const };
        }
      }
      // The method can be charged now (a new default, a larger mandate): the invoice no longer waits for the customer.
      await billingRepo.setInvoiceSchedule(tx, invoiceId, { attemptCount: attempt + 1, nextAttemptAt: null, actionRequired: null });
      return { kind: 'charge' as const, payment: await openRenewalPayment(tx, invoice, account.id, method!, now), method: method! };
    });
    if (!step) return 'skipped';
    if (step.kind === 'reminded') return 'reminded';
    await chargeAndSettle(step.payment, step.method);
    return 'charged';
  }

  /**
   * An open invoice past due without a charge: an offline one (wire, cheque, net banking), or
   * one waiting for the customer (`needsCustomer`). past_due with reminders on the dunning
   * schedule, then the end.
   */
  async function remindOverdue(tx: Db, invoice: billingRepo.InvoiceRow, sub: SubscriptionRow, account: accountsRepo.AccountRow, now: Date, needsCustomer: ActionRequired | null) {
    const attempts = invoice.attemptCount + 1;
    if (deps.dunningRetryDays[attempts - 1] === undefined) {
      await billingRepo.voidInvoice(tx, invoice.id);
      await paymentsRepo.failAwaitingForInvoice(tx, invoice.id, now);
      await endSubscription(tx, sub, account, 'dunning_exhausted', now);
      return;
    }
    const nextAttemptAt = nextDunningAt(rules, invoice.dueAt, attempts);
    await billingRepo.setInvoiceSchedule(tx, invoice.id, { attemptCount: attempts, nextAttemptAt, actionRequired: needsCustomer });
    const pastDue = await markPastDue(tx, invoice, sub, account, now, attempts, needsCustomer ?? 'invoice_overdue');
    // The first time it waits for the customer (the method changed, the mandate ended): say how to pay.
    const asked = needsCustomer && !invoice.actionRequired ? [requiresActionEvent(account.id, sub.id, invoice, needsCustomer, nextAttemptAt)] : [];
    await appendEvents(tx, now, [pastDue, ...asked]);
  }

  /** Dunning goes on: past_due until attempt `attempts + 1`; the event that says so. */
  async function markPastDue(tx: Db, invoice: billingRepo.InvoiceRow, sub: SubscriptionRow, account: accountsRepo.AccountRow, now: Date, attempts: number, failureCode: string): Promise<NewEvent> {
    await renewalsRepo.markPastDue(tx, sub.id, account.id, now);
    return {
      type: 'subscription.past_due',
      accountId: account.id,
      payload: {
        accountId: account.id,
        subscriptionId: sub.id,
        invoiceId: invoice.id,
        attempt: attempts,
        retriesLeft: deps.dunningRetryDays.length - attempts + 1,
        nextAttemptAt: nextDunningAt(rules, invoice.dueAt, attempts).toISOString(),
        failureCode,
      },
    };
  }

  const openRenewalPayment = (tx: Db, invoice: billingRepo.InvoiceRow, accountId: string, method: paymentsRepo.PaymentMethodRow, now: Date) =>
    payments.open(tx, { accountId, purpose: 'renewal', amount: amountDue(invoice), currency: invoice.currency, method, invoiceId: invoice.id, request: { invoiceId: invoice.id }, now });

  // Only charges the rules allow unattended get here (planRenewal or unattendedVerdict, before the payment opened).
  const chargeAndSettle = async (payment: paymentsRepo.PaymentRow, method: paymentsRepo.PaymentMethodRow): Promise<void> => {
    await settle(payment.id, await payments.charge(payment, method));
  };

  /** Settles a renewal payment (see the handler below); true when this call settled it. */
  const settle = async (paymentId: string, result: ChargeResult): Promise<boolean> => (await payments.settle(paymentId, result)).settledNow;

  /** invoice.paid of a renewal: the renewal is complete (its email says so). */
  const renewalPaid = (p: { accountId: string; subscriptionId: string; invoiceId: string; paymentId: string; number: string; total: number; currency: string; periodStart: Date; periodEnd: Date; amountPaid?: number }) => ({
    accountId: p.accountId,
    subscriptionId: p.subscriptionId,
    invoiceId: p.invoiceId,
    paymentId: p.paymentId,
    number: p.number,
    total: p.total,
    // Less than the total when a credit note reduced what was due.
    amountPaid: p.amountPaid ?? p.total,
    kind: 'renewal',
    currency: p.currency,
    periodStart: p.periodStart.toISOString(),
    periodEnd: p.periodEnd.toISOString(),
  });

  /** The invoice a renewal payment pays, and its subscription, locked: the settling transaction's second locks. */
  async function lockInvoiceAndSubscription(tx: Db, invoiceId: string) {
    const invoice = (await billingRepo.findInvoice(tx, invoiceId, { forUpdate: true }))!;
    const sub = (await subscriptionsRepo.findSubscription(tx, invoice.subscriptionId!, { forUpdate: true }))!;
    return { invoice, sub };
  }

  /**
   * What a renewal payment's answer means. Paid: its invoice is paid, and a past-due
   * subscription is active again. Declined: past_due with the next retry, or the end when
   * retries ran out; a late decline for a subscription that has ended since writes the
   * invoice off and leaves the account alone.
   */
  payments.handle('renewal', {
    describe: (payment) => `Renewal, invoice ${payment.invoiceId}`,
    unattended: true,
    fields: async ({ tx, payment }) => ({ subscriptionId: (await billingRepo.findInvoice(tx, payment.invoiceId!))!.subscriptionId }),
    async succeeded({ tx, payment, account, now }) {
      const { invoice, sub } = await lockInvoiceAndSubscription(tx, payment.invoiceId!);
      const ids = { accountId: account.id, subscriptionId: sub.id, invoiceId: invoice.id, paymentId: payment.id };
      await billingRepo.markInvoicesPaid(tx, [invoice.id], now);
      const after: NewEvent[] = [{ type: 'invoice.paid', accountId: account.id, payload: renewalPaid({ ...invoice, ...ids, amountPaid: payment.amount }) }];
      if (sub.status === 'past_due') {
        await renewalsRepo.markRecovered(tx, sub.id, account.id, now);
        after.push({ type: 'subscription.recovered', accountId: account.id, payload: ids });
      }
      return { after };
    },
    async failed({ tx, payment, account, now }, failure) {
      // The customer's own attempt (POST /v1/invoices/{id}/pay) declined: they were told; the schedule stands.
      if (isAttended(payment)) return {};
      const { invoice, sub } = await lockInvoiceAndSubscription(tx, payment.invoiceId!);
      if (sub.status === 'cancelled') {
        await billingRepo.voidInvoice(tx, invoice.id);
        return {};
      }
      const attempts = invoice.attemptCount;
      if (deps.dunningRetryDays[attempts - 1] === undefined) {
        // Retries ran out: the invoice is written off and the subscription ends.
        await billingRepo.voidInvoice(tx, invoice.id);
        await endSubscription(tx, sub, account, 'dunning_exhausted', now);
        return {};
      }
      // Counted from the first attempt: the invoice's due date (later than its issue when a notice deferred it).
      await billingRepo.setInvoiceSchedule(tx, invoice.id, { nextAttemptAt: nextDunningAt(rules, invoice.dueAt, attempts) });
      return { after: [await markPastDue(tx, invoice, sub, account, now, attempts, failure.code)] };
    },
    // A wave's successes in one transaction, for subscriptions simply active in real time; the rest one by one.
    async succeededMany(tx, paid, now) {
      const states = await renewalsRepo.stateOfPayments(tx, paid.map((p) => p.id));
      const plain = states.filter((s) => s.invoiceStatus === 'open' && s.subscriptionStatus === 'active' && !s.testClockId);
      const plainIds = new Set(plain.map((s) => s.paymentId));
      await billingRepo.markInvoicesPaid(tx, plain.map((s) => s.invoiceId), now);
      return {
        passOn: paid.filter((p) => !plainIds.has(p.id)).map((p) => p.id),
        settled: plain.map((s) => ({
          paymentId: s.paymentId,
          fields: { subscriptionId: s.subscriptionId },
          after: [{ type: 'invoice.paid' as const, accountId: s.accountId, payload: renewalPaid(s) }],
        })),
      };
    },
  });

  /** Cancelled at period end, or dunning exhausted: the account keeps data and credits but is limited. */
  async function endSubscription(tx: Db, sub: SubscriptionRow, account: accountsRepo.AccountRow, reason: 'cancelled' | 'dunning_exhausted', now: Date) {
    await renewalsRepo.markEnded(tx, sub.id, account.id, now);
    const ids = { accountId: account.id, subscriptionId: sub.id };
    await appendEvents(tx, now, [
      { type: 'subscription.cancelled', accountId: account.id, payload: { ...ids, reason, planId: sub.planId } },
      { type: 'account.limited', accountId: account.id, payload: { ...ids, reason } },
    ]);
  }

  /** Work still due on a test clock: the advance call waits for this to reach zero. */
  const pendingOnClock = (testClockId: string): Promise<number> => renewalsRepo.pendingOnClock(db, testClockId, deps.mandate.noticeHours);

  const batch = createBatchRenewals(deps, { renew, settle });

  return {
    findDue,
    renew,
    /** Renews named periods set-based (see batch.ts): what a wave of plain renewals goes through. */
    renewMany: batch.renewMany,
    /** The worker's drain of due plain renewals, batch by batch. */
    renewDue: batch.renewDue,
    /** Due renewals the drain will take, up to `limit`. */
    countBatchDue: batch.countDue,
    retry,
    settle,
    pendingOnClock,
    sendRenewalNotice,
  };
}

export type RenewalService = ReturnType<typeof createRenewalService>;
