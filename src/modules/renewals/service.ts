import { and, asc, eq, inArray, isNotNull, lte, not, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { accounts, billingCycles, invoices, paymentMethods, payments as paymentsTable, subscriptions, testClocks } from '../../db/schema/index.js';
import * as billingRepo from '../billing/repo.js';
import * as accountsRepo from '../accounts/repo.js';
import { issueInvoice } from '../billing/issue.js';
import * as catalogRepo from '../catalog/repo.js';
import { appendEvents, type NewEvent } from '../events/repo.js';
import { chargeableAfter, mandateApplies, unattendedVerdict, type ActionRequired } from '../payments/mandate.js';
import type { ChargeResult } from '../payments/provider.js';
import { isAttended, type PurposeDeps } from '../payments/service.js';
import * as paymentsRepo from '../payments/repo.js';
import { addMonthsClamped } from '../subscriptions/periods.js';
import type { SubscriptionRow } from '../subscriptions/repo.js';
import { nowForAccount } from '../test-clocks/time.js';
import { createBatchRenewals } from './batch.js';
import { priceNextPeriod as priceFor, renewalCharge } from './domain.js';
import * as renewalsRepo from './repo.js';
import { batchable } from './repo.js';

export interface RenewalDeps extends PurposeDeps {
  invoiceDueDays: number;
  /** Days after the renewal to retry a declined charge: [1, 3, 7] by default. */
  dunningRetryDays: number[];
}

export type DueWork =
  | { kind: 'renew'; subscriptionId: string; periodEnd: Date }
  | { kind: 'retry'; invoiceId: string; attempt: number }
  | { kind: 'notice'; subscriptionId: string; periodEnd: Date };

const DAY_MS = 86_400_000;

/**
 * Renewals and dunning. Due work is found in Postgres (per account clock), never only in
 * Redis; each step is one transaction that re-checks it is still due, and the invoice of a
 * period is unique per subscription, so a step that runs twice does nothing the second time.
 */
export function createRenewalService(deps: RenewalDeps) {
  const { db, clock, payments } = deps;
  /**
   * The scheduler's sweep: renewals and retries whose time has come. SKIP LOCKED only keeps
   * sweeps running side by side from reading the same rows at once; exactly-once comes from
   * each step re-checking under the account lock, and from the unique invoice per period.
   */
  async function findDue(limit = 500): Promise<DueWork[]> {
    // The time each account lives on: its test clock's, or the real one.
    const now = sql`coalesce(${testClocks.frozenTime}, ${clock.now().toISOString()}::timestamptz)`;
    return db.transaction(async (tx) => {
      // One at a time only what the batch drain leaves alone (renewDue): test clocks, cancellations, changes...
      const subs = await tx
        .select({ id: subscriptions.id, periodEnd: subscriptions.currentPeriodEnd })
        .from(subscriptions)
        .innerJoin(accounts, eq(accounts.id, subscriptions.accountId))
        .leftJoin(testClocks, eq(testClocks.id, accounts.testClockId))
        .leftJoin(paymentMethods, eq(paymentMethods.id, subscriptions.paymentMethodId))
        .where(and(eq(subscriptions.status, 'active'), lte(subscriptions.currentPeriodEnd, now), not(batchable(clock.now(), deps.mandate.noticeHours))))
        .orderBy(asc(subscriptions.currentPeriodEnd))
        .limit(limit)
        .for('update', { of: subscriptions, skipLocked: true });
      const retries = await tx
        .select({ id: invoices.id, attempt: invoices.attemptCount })
        .from(invoices)
        .innerJoin(accounts, eq(accounts.id, invoices.accountId))
        .leftJoin(testClocks, eq(testClocks.id, accounts.testClockId))
        .where(and(eq(invoices.status, 'open'), isNotNull(invoices.nextAttemptAt), lte(invoices.nextAttemptAt, now)))
        .orderBy(asc(invoices.nextAttemptAt))
        .limit(limit)
        .for('update', { of: invoices, skipLocked: true });
      // Pre-debit notices (Indian card and UPI mandates) that fall due before a period end.
      const notices =
        deps.mandate.noticeHours > 0
          ? await tx
              .select({ id: subscriptions.id, periodEnd: subscriptions.currentPeriodEnd })
              .from(subscriptions)
              .innerJoin(accounts, eq(accounts.id, subscriptions.accountId))
              .innerJoin(paymentMethods, eq(paymentMethods.id, subscriptions.paymentMethodId))
              .leftJoin(testClocks, eq(testClocks.id, accounts.testClockId))
              .where(
                and(
                  eq(subscriptions.status, 'active'),
                  eq(subscriptions.cancelAtPeriodEnd, false),
                  eq(accounts.currency, 'INR'),
                  inArray(paymentMethods.type, ['card', 'upi']),
                  sql`${subscriptions.renewalNoticeFor} is distinct from ${subscriptions.currentPeriodEnd}`,
                  sql`${subscriptions.currentPeriodEnd} - ${`${deps.mandate.noticeHours} hours`}::interval <= ${now}`,
                  sql`${subscriptions.currentPeriodEnd} > ${now}`,
                ),
              )
              .limit(limit)
          : [];
      return [
        ...subs.map((s) => ({ kind: 'renew' as const, subscriptionId: s.id, periodEnd: s.periodEnd })),
        ...retries.map((r) => ({ kind: 'retry' as const, invoiceId: r.id, attempt: r.attempt })),
        ...notices.map((n) => ({ kind: 'notice' as const, subscriptionId: n.id, periodEnd: n.periodEnd })),
      ];
    });
  }

  /**
   * Ends a period: cancels a subscription set to cancel, or starts the next period with the
   * scheduled plan and cycle, issues its invoice and charges the saved method.
   */
  async function renew(subscriptionId: string, periodEnd: Date): Promise<'renewed' | 'cancelled' | 'invoiced' | 'skipped'> {
    const step = await db.transaction(async (tx) => {
      const [found] = await tx.select().from(subscriptions).where(eq(subscriptions.id, subscriptionId));
      if (!found) return { kind: 'skipped' as const };
      const account = (await accountsRepo.findAccount(tx, found.accountId, { forUpdate: true }))!;
      const [sub] = await tx.select().from(subscriptions).where(eq(subscriptions.id, subscriptionId)).for('update');
      const now = await nowForAccount(tx, account, clock);
      if (!sub || sub.status !== 'active' || sub.currentPeriodEnd.getTime() !== periodEnd.getTime() || now < periodEnd) {
        return { kind: 'skipped' as const };
      }
      if (sub.cancelAtPeriodEnd) {
        await endSubscription(tx, sub, account, 'cancelled', now);
        return { kind: 'cancelled' as const };
      }

      const { planId, cycleCode, cycle, whatsappAddon, priced } = await priceNextPeriod(tx, sub, account);
      const start = sub.currentPeriodEnd;
      const monthsElapsed = sub.monthsElapsed + cycle.months;
      const end = addMonthsClamped(sub.anchorAt, monthsElapsed);
      const [method] = await tx.select().from(paymentMethods).where(eq(paymentMethods.id, sub.paymentMethodId));
      const verdict = unattendedVerdict(deps.mandate, method, account.currency, priced.total, now);
      const charge = verdict.ok ? method! : null;
      // Card or UPI that cannot be charged without the customer (above the e-mandate, expired,
      // no method): not a decline. The invoice waits for them under the dunning schedule.
      const needsCustomer = !verdict.ok && verdict.reason !== 'not_unattended' ? verdict.reason : null;

      // Indian e-mandates: the charge waits until a pre-debit notice has been out for its window.
      const { notice, chargeAt } = charge ? renewalCharge(sub, account, charge.type, now, deps.mandate) : { notice: null, chargeAt: now };
      const deferred = chargeAt > now;

      const dueAt = charge || needsCustomer ? chargeAt : new Date(now.getTime() + deps.invoiceDueDays * DAY_MS);
      const invoice = await issueInvoice(tx, {
        accountId: account.id,
        subscriptionId: sub.id,
        kind: 'renewal',
        status: 'open',
        priced,
        planId,
        billingCycle: cycleCode,
        period: { start, end },
        now,
        dueAt,
        attemptCount: (charge && !deferred) || needsCustomer ? 1 : 0,
        // Unpaid by its due date, an offline invoice enters dunning like a declined charge; a
        // charge waiting for its pre-debit notice runs then, as the first attempt; one waiting
        // for the customer is looked at again on the dunning schedule, as a declined one is.
        nextAttemptAt: needsCustomer ? nextDunningAt(dueAt, 1) : charge && !deferred ? null : dueAt,
        actionRequired: needsCustomer,
      });
      await tx
        .update(subscriptions)
        .set({
          planId,
          billingCycle: cycleCode,
          whatsappAddon,
          currentPeriodStart: start,
          currentPeriodEnd: end,
          monthsElapsed,
          scheduledPlanId: null,
          scheduledBillingCycle: null,
          ...(notice?.sentNow ? { renewalNoticeFor: periodEnd, renewalNoticeAt: now } : {}),
          updatedAt: now,
        })
        .where(eq(subscriptions.id, sub.id));
      await tx.update(accounts).set({ planId, updatedAt: now }).where(eq(accounts.id, account.id));

      const base = { accountId: account.id, subscriptionId: sub.id };
      const events: NewEvent[] = [];
      if (planId !== sub.planId) events.push({ type: 'subscription.plan_changed', accountId: account.id, payload: { ...base, from: sub.planId, to: planId } });
      if (cycleCode !== sub.billingCycle) {
        events.push({ type: 'subscription.billing_cycle_changed', accountId: account.id, payload: { ...base, from: sub.billingCycle, to: cycleCode } });
      }
      events.push(
        { type: 'invoice.created', accountId: account.id, payload: { ...base, invoiceId: invoice.id, number: invoice.number, total: invoice.total, status: 'open' } },
        {
          type: 'subscription.renewed',
          accountId: account.id,
          payload: { ...base, invoiceId: invoice.id, planId, billingCycle: cycleCode, periodStart: start.toISOString(), periodEnd: end.toISOString() },
        },
      );
      if (notice?.sentNow) events.push(renewalNoticeEvent(account, sub.id, invoice.total, chargeAt));
      if (needsCustomer) events.push(requiresActionEvent(account, sub.id, invoice, needsCustomer, nextDunningAt(dueAt, 1)));
      await appendEvents(tx, now, events);
      if (needsCustomer || (charge && deferred)) return { kind: 'invoiced' as const };
      if (!charge) {
        // Wire, cheque, net banking: an open invoice with a due date, paid when ops confirm the money.
        await payments.open(tx, {
          accountId: account.id,
          purpose: 'renewal',
          offline: true,
          amount: invoice.total,
          currency: invoice.currency,
          method: method!,
          invoiceId: invoice.id,
          request: { invoiceId: invoice.id },
          now,
        });
        return { kind: 'invoiced' as const };
      }
      const payment = await openRenewalPayment(tx, invoice, account.id, charge, now);
      return { kind: 'charge' as const, payment, method: charge };
    });
    if (step.kind !== 'charge') return step.kind;
    await chargeAndSettle(step.payment, step.method);
    return 'renewed';
  }

  /** What the next period will be and cost (see priceNextPeriod in domain.ts). */
  async function priceNextPeriod(tx: Db, sub: SubscriptionRow, account: accountsRepo.AccountRow) {
    const planId = sub.scheduledPlanId ?? sub.planId;
    const cycleCode = sub.scheduledBillingCycle ?? sub.billingCycle;
    const plan = await catalogRepo.findPlan(tx, planId);
    const prices = await catalogRepo.pricesOf(tx, [planId]);
    const [cycle] = await tx.select().from(billingCycles).where(eq(billingCycles.code, cycleCode));
    return priceFor(sub, account, { plan, prices, cycle }, deps.taxRates);
  }

  const renewalNoticeEvent = (account: accountsRepo.AccountRow, subscriptionId: string, amount: number, chargeAt: Date, requiresAction?: ActionRequired): NewEvent => ({
    type: 'subscription.renewal_notice',
    accountId: account.id,
    payload: { accountId: account.id, subscriptionId, amount, currency: account.currency, chargeAt: chargeAt.toISOString(), ...(requiresAction ? { requiresAction } : {}) },
  });

  /** The pre-debit notice, sent PRE_DEBIT_NOTICE_HOURS before the period end so the renewal charges on time. */
  async function sendRenewalNotice(subscriptionId: string, periodEnd: Date): Promise<'sent' | 'skipped'> {
    return db.transaction(async (tx) => {
      const [found] = await tx.select().from(subscriptions).where(eq(subscriptions.id, subscriptionId));
      if (!found) return 'skipped';
      const account = (await accountsRepo.findAccount(tx, found.accountId, { forUpdate: true }))!;
      const [sub] = await tx.select().from(subscriptions).where(eq(subscriptions.id, subscriptionId)).for('update');
      const now = await nowForAccount(tx, account, clock);
      const noticeFrom = new Date(periodEnd.getTime() - deps.mandate.noticeHours * 3_600_000);
      if (!sub || sub.status !== 'active' || sub.cancelAtPeriodEnd || sub.currentPeriodEnd.getTime() !== periodEnd.getTime() || now < noticeFrom) return 'skipped';
      if (sub.renewalNoticeFor?.getTime() === periodEnd.getTime()) return 'skipped';
      const { priced } = await priceNextPeriod(tx, sub, account);
      // A renewal the mandate will not cover is announced as one the customer will have to pay.
      const [method] = await tx.select().from(paymentMethods).where(eq(paymentMethods.id, sub.paymentMethodId));
      const verdict = unattendedVerdict(deps.mandate, method, account.currency, priced.total, periodEnd);
      const requiresAction = !verdict.ok && verdict.reason !== 'not_unattended' ? verdict.reason : undefined;
      await tx.update(subscriptions).set({ renewalNoticeFor: periodEnd, renewalNoticeAt: now }).where(eq(subscriptions.id, sub.id));
      await appendEvents(tx, now, [renewalNoticeEvent(account, sub.id, priced.total, periodEnd, requiresAction)]);
      return 'sent';
    });
  }

  /**
   * A dunning step: charge the open invoice again if this attempt is still the one due; for
   * an invoice paid offline (nothing to charge), record that it is overdue instead.
   */
  async function retry(invoiceId: string, attempt: number): Promise<'charged' | 'reminded' | 'skipped'> {
    const step = await db.transaction(async (tx) => {
      const [found] = await tx.select().from(invoices).where(eq(invoices.id, invoiceId));
      if (!found?.subscriptionId) return null;
      const account = (await accountsRepo.findAccount(tx, found.accountId, { forUpdate: true }))!;
      const [invoice] = await tx.select().from(invoices).where(eq(invoices.id, invoiceId)).for('update');
      const now = await nowForAccount(tx, account, clock);
      if (!invoice || invoice.status !== 'open' || invoice.attemptCount !== attempt || !invoice.nextAttemptAt || invoice.nextAttemptAt > now) return null;
      const [sub] = await tx.select().from(subscriptions).where(eq(subscriptions.id, invoice.subscriptionId!)).for('update');
      if (sub!.status === 'cancelled') {
        // The subscription ended meanwhile: stop dunning this invoice, leave the account alone.
        await tx.update(invoices).set({ status: 'void', nextAttemptAt: null }).where(eq(invoices.id, invoice.id));
        return null;
      }
      // The customer is paying it right now: this attempt is theirs.
      if (await paymentsRepo.findInFlightForInvoice(tx, invoice.id)) return null;
      const [method] = await tx.select().from(paymentMethods).where(eq(paymentMethods.id, sub!.paymentMethodId));
      const verdict = unattendedVerdict(deps.mandate, method, account.currency, invoice.total, now);
      if (!verdict.ok) {
        // Offline or net banking: an overdue reminder; card or UPI the rules forbid charging unattended: it waits for the customer.
        await remindOverdue(tx, invoice, sub!, account, now, verdict.reason === 'not_unattended' ? null : verdict.reason);
        return { kind: 'reminded' as const };
      }
      // An Indian card or UPI no pre-debit notice covered for this period (it became the default
      // after the renewal was invoiced): the notice first, the charge once its window has passed.
      if (mandateApplies(account.currency, method!.type) && sub!.renewalNoticeFor?.getTime() !== invoice.periodStart.getTime()) {
        const chargeAt = chargeableAfter(deps.mandate, now);
        await tx.update(subscriptions).set({ renewalNoticeFor: invoice.periodStart, renewalNoticeAt: now }).where(eq(subscriptions.id, sub!.id));
        await appendEvents(tx, now, [renewalNoticeEvent(account, sub!.id, invoice.total, chargeAt)]);
        if (chargeAt > now) {
          await tx.update(invoices).set({ nextAttemptAt: chargeAt }).where(eq(invoices.id, invoiceId));
          return { kind: 'reminded' as const };
        }
      }
      // The method can be charged now (a new default, a larger mandate): the invoice no longer waits for the customer.
      await tx.update(invoices).set({ attemptCount: attempt + 1, nextAttemptAt: null, actionRequired: null }).where(eq(invoices.id, invoiceId));
      const payment = await openRenewalPayment(tx, invoice, account.id, method!, now);
      return { kind: 'charge' as const, payment, method: method! };
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
  async function remindOverdue(tx: Db, invoice: typeof invoices.$inferSelect, sub: SubscriptionRow, account: accountsRepo.AccountRow, now: Date, needsCustomer: ActionRequired | null) {
    const attempts = invoice.attemptCount + 1;
    const waitDays = deps.dunningRetryDays[attempts - 1];
    const ids = { accountId: account.id, subscriptionId: sub.id, invoiceId: invoice.id };
    if (waitDays !== undefined) {
      const nextAttemptAt = new Date(invoice.dueAt.getTime() + waitDays * DAY_MS);
      await tx.update(invoices).set({ attemptCount: attempts, nextAttemptAt, actionRequired: needsCustomer }).where(eq(invoices.id, invoice.id));
      await tx.update(subscriptions).set({ status: 'past_due', updatedAt: now }).where(eq(subscriptions.id, sub.id));
      await tx.update(accounts).set({ status: 'past_due', pastDueSince: sql`coalesce(${accounts.pastDueSince}, ${now.toISOString()}::timestamptz)`, updatedAt: now }).where(eq(accounts.id, account.id));
      const pastDue: NewEvent = {
        type: 'subscription.past_due',
        accountId: account.id,
        payload: { ...ids, attempt: attempts, retriesLeft: deps.dunningRetryDays.length - attempts + 1, nextAttemptAt: nextAttemptAt.toISOString(), failureCode: needsCustomer ?? 'invoice_overdue' },
      };
      // The first time it waits for the customer (the method changed, the mandate ended): say how to pay.
      const asked = needsCustomer && !invoice.actionRequired ? [requiresActionEvent(account, sub.id, invoice, needsCustomer, nextAttemptAt)] : [];
      await appendEvents(tx, now, [pastDue, ...asked]);
      return;
    }
    await tx.update(invoices).set({ status: 'void', nextAttemptAt: null }).where(eq(invoices.id, invoice.id));
    await tx
      .update(paymentsTable)
      .set({ status: 'failed', failureCode: 'invoice_overdue', failureMessage: 'The invoice was not paid', updatedAt: now, touchedAt: sql`now()` })
      .where(and(eq(paymentsTable.invoiceId, invoice.id), eq(paymentsTable.status, 'awaiting_confirmation')));
    await endSubscription(tx, sub, account, 'dunning_exhausted', now);
  }

  const openRenewalPayment = (tx: Db, invoice: typeof invoices.$inferSelect, accountId: string, method: paymentsRepo.PaymentMethodRow, now: Date) =>
    payments.open(tx, {
      accountId,
      purpose: 'renewal',
      amount: invoice.total,
      currency: invoice.currency,
      method,
      invoiceId: invoice.id,
      request: { invoiceId: invoice.id },
      now,
    });

  // Only charges the rules allow unattended get here (unattendedVerdict, before the payment opened).
  const chargeAndSettle = async (payment: paymentsRepo.PaymentRow, method: paymentsRepo.PaymentMethodRow): Promise<void> => {
    await settle(payment.id, await payments.charge(payment, method));
  };

  /** When a renewal waiting for the customer (or declined) is looked at again: the dunning schedule from its due date. */
  const nextDunningAt = (dueAt: Date, attempt: number) => new Date(dueAt.getTime() + (deps.dunningRetryDays[attempt - 1] ?? 0) * DAY_MS);

  /** The invoice waits for the customer: how much, why, and by when, for the email and the console. */
  const requiresActionEvent = (
    account: accountsRepo.AccountRow,
    subscriptionId: string,
    invoice: Pick<typeof invoices.$inferSelect, 'id' | 'number' | 'total' | 'currency'>,
    reason: ActionRequired,
    payBy: Date,
  ): NewEvent => ({
    type: 'invoice.requires_action',
    accountId: account.id,
    payload: { accountId: account.id, subscriptionId, invoiceId: invoice.id, number: invoice.number, total: invoice.total, currency: invoice.currency, reason, payBy: payBy.toISOString() },
  });

  /** Settles a renewal payment (see the handler below); true when this call settled it. */
  const settle = async (paymentId: string, result: ChargeResult): Promise<boolean> => (await payments.settle(paymentId, result)).settledNow;

  /** invoice.paid of a renewal: the renewal is complete (its email says so). */
  const renewalPaid = (p: { accountId: string; subscriptionId: string; invoiceId: string; paymentId: string; number: string; total: number; currency: string; periodStart: Date; periodEnd: Date }) => ({
    accountId: p.accountId,
    subscriptionId: p.subscriptionId,
    invoiceId: p.invoiceId,
    paymentId: p.paymentId,
    number: p.number,
    total: p.total,
    kind: 'renewal',
    currency: p.currency,
    periodStart: p.periodStart.toISOString(),
    periodEnd: p.periodEnd.toISOString(),
  });

  /** The invoice a renewal payment pays, and its subscription, locked: the settling transaction's second locks. */
  async function lockInvoiceAndSubscription(tx: Db, invoiceId: string) {
    const [invoice] = await tx.select().from(invoices).where(eq(invoices.id, invoiceId)).for('update');
    const [sub] = await tx.select().from(subscriptions).where(eq(subscriptions.id, invoice!.subscriptionId!)).for('update');
    return { invoice: invoice!, sub: sub! };
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
    fields: async ({ tx, payment }) => {
      const [invoice] = await tx.select({ subscriptionId: invoices.subscriptionId }).from(invoices).where(eq(invoices.id, payment.invoiceId!));
      return { subscriptionId: invoice!.subscriptionId };
    },
    async succeeded({ tx, payment, account, now }) {
      const { invoice, sub } = await lockInvoiceAndSubscription(tx, payment.invoiceId!);
      const ids = { accountId: account.id, subscriptionId: sub.id, invoiceId: invoice.id, paymentId: payment.id };
      await tx.update(invoices).set({ status: 'paid', paidAt: now, nextAttemptAt: null, actionRequired: null }).where(eq(invoices.id, invoice.id));
      const after: NewEvent[] = [{ type: 'invoice.paid', accountId: account.id, payload: renewalPaid({ ...invoice, ...ids }) }];
      if (sub.status === 'past_due') {
        await tx.update(subscriptions).set({ status: 'active', updatedAt: now }).where(eq(subscriptions.id, sub.id));
        await tx.update(accounts).set({ status: 'active', pastDueSince: null, updatedAt: now }).where(eq(accounts.id, account.id));
        after.push({ type: 'subscription.recovered', accountId: account.id, payload: ids });
      }
      return { after };
    },
    async failed({ tx, payment, account, now }, failure) {
      // The customer's own attempt (POST /v1/invoices/{id}/pay) declined: they were told; the schedule stands.
      if (isAttended(payment)) return {};
      const { invoice, sub } = await lockInvoiceAndSubscription(tx, payment.invoiceId!);
      if (sub.status === 'cancelled') {
        await tx.update(invoices).set({ status: 'void', nextAttemptAt: null }).where(eq(invoices.id, invoice.id));
        return {};
      }
      const attempts = invoice.attemptCount;
      const waitDays = deps.dunningRetryDays[attempts - 1];
      if (waitDays === undefined) {
        // Retries ran out: the invoice is written off and the subscription ends.
        await tx.update(invoices).set({ status: 'void', nextAttemptAt: null }).where(eq(invoices.id, invoice.id));
        await endSubscription(tx, sub, account, 'dunning_exhausted', now);
        return {};
      }
      // Counted from the first attempt: the invoice's due date (later than its issue when a notice deferred it).
      const nextAttemptAt = new Date(invoice.dueAt.getTime() + waitDays * DAY_MS);
      await tx.update(invoices).set({ nextAttemptAt }).where(eq(invoices.id, invoice.id));
      await tx.update(subscriptions).set({ status: 'past_due', updatedAt: now }).where(eq(subscriptions.id, sub.id));
      await tx.update(accounts).set({ status: 'past_due', pastDueSince: sql`coalesce(${accounts.pastDueSince}, ${now.toISOString()}::timestamptz)`, updatedAt: now }).where(eq(accounts.id, account.id));
      const ids = { accountId: account.id, subscriptionId: sub.id, invoiceId: invoice.id };
      return {
        after: [
          {
            type: 'subscription.past_due',
            accountId: account.id,
            payload: { ...ids, attempt: attempts, retriesLeft: deps.dunningRetryDays.length - attempts + 1, nextAttemptAt: nextAttemptAt.toISOString(), failureCode: failure.code },
          },
        ],
      };
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
    await tx.update(subscriptions).set({ status: 'cancelled', cancelAtPeriodEnd: false, endedAt: now, updatedAt: now }).where(eq(subscriptions.id, sub.id));
    await tx.update(accounts).set({ status: 'limited', pastDueSince: null, updatedAt: now }).where(eq(accounts.id, account.id));
    const ids = { accountId: account.id, subscriptionId: sub.id };
    await appendEvents(tx, now, [
      { type: 'subscription.cancelled', accountId: account.id, payload: { ...ids, reason, planId: sub.planId } },
      { type: 'account.limited', accountId: account.id, payload: { ...ids, reason } },
    ]);
  }

  /** Work still due on a test clock: the advance call waits for this to reach zero. */
  async function pendingOnClock(testClockId: string): Promise<number> {
    const [row] = await db.execute<{ n: number }>(sql`
      select
        (select count(*) from subscriptions s join accounts a on a.id = s.account_id join test_clocks c on c.id = a.test_clock_id
          where c.id = ${testClockId} and s.status = 'active' and s.current_period_end <= c.frozen_time)
      + (select count(*) from invoices i join accounts a on a.id = i.account_id join test_clocks c on c.id = a.test_clock_id
          where c.id = ${testClockId} and i.status = 'open' and i.next_attempt_at <= c.frozen_time)
      + (select count(*) from payments p join accounts a on a.id = p.account_id
          where a.test_clock_id = ${testClockId} and p.purpose in ('renewal', 'recharge') and p.status in ('processing', 'unknown'))
      + (select count(*) from auto_recharge_settings r join accounts a on a.id = r.account_id join test_clocks c on c.id = a.test_clock_id
          where c.id = ${testClockId} and r.enabled and r.next_attempt_at <= c.frozen_time)
      + (select count(*) from subscriptions s join accounts a on a.id = s.account_id join test_clocks c on c.id = a.test_clock_id
          join payment_methods m on m.id = s.payment_method_id
          where c.id = ${testClockId} and ${deps.mandate.noticeHours} > 0 and s.status = 'active' and not s.cancel_at_period_end
            and a.currency = 'INR' and m.type in ('card', 'upi') and s.renewal_notice_for is distinct from s.current_period_end
            and s.current_period_end - make_interval(hours => ${deps.mandate.noticeHours}) <= c.frozen_time and s.current_period_end > c.frozen_time)
      as n`).then((r) => (r as unknown as { rows: Array<{ n: string }> }).rows);
    return Number(row?.n ?? 0);
  }

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
