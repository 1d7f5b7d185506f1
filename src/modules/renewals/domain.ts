import type { accounts, billingCycles } from '../../db/schema/index.js';
import { priceUpgrade, type PricedInvoice } from '../billing/domain.js';
import { taxRegime, type Taxation } from '../billing/tax.js';
import type { PlanPriceRow, PlanRow } from '../catalog/repo.js';
import type { InvoiceToIssue } from '../billing/issue.js';
import type { NewEvent } from '../events/repo.js';
import { chargeableAfter, mandateApplies, unattendedVerdict, type ActionRequired, type MandateRules } from '../payments/mandate.js';
import { chargeableUnattended, type PaymentMethodType } from '../payments/methods.js';
import { addMonthsClamped } from '../subscriptions/periods.js';
import type { SubscriptionRow } from '../subscriptions/repo.js';

type AccountRow = typeof accounts.$inferSelect;
type CycleRow = typeof billingCycles.$inferSelect;
/** What of an account its invoices' tax depends on: where it is, and its billing profile. */
export type TaxedAccount = Pick<AccountRow, 'currency' | 'country' | 'name' | 'email' | 'billingProfile'>;

export interface NextPeriodPrice {
  planId: string;
  cycleCode: SubscriptionRow['billingCycle'];
  cycle: CycleRow;
  whatsappAddon: boolean;
  priced: PricedInvoice;
}

/**
 * What the next period will be and cost: the scheduled plan and cycle, the add-on if still
 * sold. The single and the batch renewal both price with this, so they cannot drift apart.
 */
export function priceNextPeriod(
  sub: SubscriptionRow,
  account: TaxedAccount,
  catalog: { plan: PlanRow | undefined; prices: PlanPriceRow[]; cycle: CycleRow | undefined },
  taxation: Taxation,
): NextPeriodPrice {
  const planId = sub.scheduledPlanId ?? sub.planId;
  const cycleCode = sub.scheduledBillingCycle ?? sub.billingCycle;
  const { plan, cycle } = catalog;
  const price = catalog.prices.find((p) => p.planId === planId && p.currency === account.currency);
  if (!plan || !price || !cycle) throw new Error(`subscription ${sub.id}: plan ${planId} or cycle ${cycleCode} cannot be billed in ${account.currency}`);
  // The add-on lasts while the plan sells it as an add-on; a plan that includes WhatsApp drops it.
  const whatsappAddon = sub.whatsappAddon && plan.entitlements.whatsapp === 'add_on' && price.whatsappAddonMonthly !== null;
  const priced = priceUpgrade({
    currency: account.currency,
    planName: plan.name,
    cycle,
    monthlyMinimum: price.monthlyMinimum,
    whatsappAddonMonthly: whatsappAddon ? price.whatsappAddonMonthly : null,
    initialCredits: 0,
    tax: taxRegime(taxation, account),
  });
  return { planId, cycleCode, cycle, whatsappAddon, priced };
}

/** How the charge of a period end may run: now, or after a pre-debit notice (sent now, or earlier). */
export interface RenewalCharge {
  notice: { at: Date; sentNow: boolean } | null;
  chargeAt: Date;
}

export function renewalCharge(sub: SubscriptionRow, account: Pick<AccountRow, 'currency'>, methodType: PaymentMethodType, now: Date, rules: MandateRules): RenewalCharge {
  let notice: RenewalCharge['notice'] = null;
  if (mandateApplies(account.currency, methodType)) {
    const noticed = sub.renewalNoticeFor?.getTime() === sub.currentPeriodEnd.getTime() && sub.renewalNoticeAt;
    notice = noticed ? { at: sub.renewalNoticeAt!, sentNow: false } : { at: now, sentNow: true };
  }
  return { notice, chargeAt: notice ? chargeableAfter(rules, notice.at) : now };
}

/** What a renewal goes by besides its rows: the e-mandate rules, tax, due days and the dunning schedule. */
export interface RenewalRules {
  mandate: MandateRules;
  taxation: Taxation;
  invoiceDueDays: number;
  /** Days after the invoice's due date to look at it again: [1, 3, 7] by default. */
  dunningRetryDays: number[];
}

/** The method a renewal would charge, as far as the plan needs it. */
export type RenewalMethod = { type: PaymentMethodType; mandateMaxAmount: number | null; mandateValidUntil: Date | null; status?: 'active' | 'removed' };

/**
 * How a renewal's invoice gets paid: charged now; charged once its pre-debit notice has been
 * out long enough; by the customer (the rules forbid charging it unattended: not a decline);
 * or offline (wire, cheque, net banking: due in `invoiceDueDays`).
 */
export type Collection = 'charge_now' | 'charge_after_notice' | 'customer' | 'offline';

export interface RenewalPlan extends NextPeriodPrice {
  start: Date;
  end: Date;
  monthsElapsed: number;
  collect: Collection;
  /** Why the customer must pay it themselves (collect 'customer'). */
  needsCustomer: ActionRequired | null;
  /** The pre-debit notice the charge goes by; `sentNow` when this renewal sends it. */
  notice: RenewalCharge['notice'];
  /** The invoice's schedule: due date, attempts counted, when dunning looks at it next. */
  invoice: Required<Pick<InvoiceToIssue, 'dueAt' | 'attemptCount' | 'nextAttemptAt' | 'actionRequired'>>;
}

/** When dunning looks at an invoice again after `attempt` attempts: the schedule counted from its due date. */
export const nextDunningAt = (rules: Pick<RenewalRules, 'dunningRetryDays'>, dueAt: Date, attempt: number): Date =>
  new Date(dueAt.getTime() + (rules.dunningRetryDays[attempt - 1] ?? 0) * 86_400_000);

/**
 * The whole decision of a period end that renews (not one set to cancel): the next period
 * and its price, how its invoice is collected, and that invoice's schedule. Pure: the single
 * renewal and the batch both plan with this, and only apply the plan their own way.
 */
export function planRenewal(
  sub: SubscriptionRow,
  account: TaxedAccount,
  method: RenewalMethod | null | undefined,
  catalog: { plan: PlanRow | undefined; prices: PlanPriceRow[]; cycle: CycleRow | undefined },
  now: Date,
  rules: RenewalRules,
): RenewalPlan {
  const next = priceNextPeriod(sub, account, catalog, rules.taxation);
  const monthsElapsed = sub.monthsElapsed + next.cycle.months;
  const period = { start: sub.currentPeriodEnd, end: addMonthsClamped(sub.anchorAt, monthsElapsed), monthsElapsed };
  const verdict = unattendedVerdict(rules.mandate, method, account.currency, next.priced.total, now);
  if (verdict.ok) {
    // Indian e-mandates: the charge waits until a pre-debit notice has been out for its window.
    const { notice, chargeAt } = renewalCharge(sub, account, method!.type, now, rules.mandate);
    const later = chargeAt > now;
    return {
      ...next,
      ...period,
      collect: later ? 'charge_after_notice' : 'charge_now',
      needsCustomer: null,
      notice,
      // A charge waiting for its notice runs at its due date, as the first attempt.
      invoice: { dueAt: chargeAt, attemptCount: later ? 0 : 1, nextAttemptAt: later ? chargeAt : null, actionRequired: null },
    };
  }
  if (verdict.reason !== 'not_unattended') {
    // Card or UPI beyond the e-mandate, or no method: waits for the customer, looked at again
    // on the dunning schedule as a declined charge is.
    return {
      ...next,
      ...period,
      collect: 'customer',
      needsCustomer: verdict.reason,
      notice: null,
      invoice: { dueAt: now, attemptCount: 1, nextAttemptAt: nextDunningAt(rules, now, 1), actionRequired: verdict.reason },
    };
  }
  // Unpaid by its due date, an offline invoice enters dunning like a declined charge.
  const dueAt = new Date(now.getTime() + rules.invoiceDueDays * 86_400_000);
  return { ...next, ...period, collect: 'offline', needsCustomer: null, notice: null, invoice: { dueAt, attemptCount: 0, nextAttemptAt: dueAt, actionRequired: null } };
}

/** The invoice a planned renewal issues, open; `id` when the caller needs it before the invoice exists (a batch). */
export function renewalInvoice(sub: SubscriptionRow, account: Pick<AccountRow, 'id'>, plan: RenewalPlan, now: Date, id?: string): InvoiceToIssue {
  return {
    ...(id ? { id } : {}),
    accountId: account.id,
    subscriptionId: sub.id,
    kind: 'renewal',
    status: 'open',
    priced: plan.priced,
    planId: plan.planId,
    billingCycle: plan.cycleCode,
    period: { start: plan.start, end: plan.end },
    now,
    ...plan.invoice,
  };
}

/** A renewal's events around its invoice.created (whose number only the issued invoice has). */
export interface RenewalEvents {
  /** Before invoice.created: a scheduled plan or cycle taking effect. */
  before: NewEvent[];
  /** invoice.created without its number. */
  created: NewEvent;
  /** After it: subscription.renewed, the pre-debit notice sent now, the request to pay. */
  after: NewEvent[];
}

/** The events of a planned renewal, the same for the single and the batch path. */
export function renewalEvents(sub: SubscriptionRow, account: Pick<AccountRow, 'id' | 'currency'>, plan: RenewalPlan, invoice: { id: string; number?: string; total: number; currency: string }): RenewalEvents {
  const base = { accountId: account.id, subscriptionId: sub.id };
  const before: NewEvent[] = [];
  if (plan.planId !== sub.planId) before.push({ type: 'subscription.plan_changed', accountId: account.id, payload: { ...base, from: sub.planId, to: plan.planId } });
  if (plan.cycleCode !== sub.billingCycle) {
    before.push({ type: 'subscription.billing_cycle_changed', accountId: account.id, payload: { ...base, from: sub.billingCycle, to: plan.cycleCode } });
  }
  const created: NewEvent = {
    type: 'invoice.created',
    accountId: account.id,
    payload: { ...base, invoiceId: invoice.id, ...(invoice.number ? { number: invoice.number } : {}), total: invoice.total, status: plan.needsCustomer ? 'requires_action' : 'open' },
  };
  const after: NewEvent[] = [
    {
      type: 'subscription.renewed',
      accountId: account.id,
      payload: { ...base, invoiceId: invoice.id, planId: plan.planId, billingCycle: plan.cycleCode, periodStart: plan.start.toISOString(), periodEnd: plan.end.toISOString() },
    },
  ];
  if (plan.notice?.sentNow) after.push(renewalNoticeEvent(account, sub.id, invoice.total, plan.invoice.dueAt));
  if (plan.needsCustomer) after.push(requiresActionEvent(account.id, sub.id, invoice, plan.needsCustomer, plan.invoice.nextAttemptAt!));
  return { before, created, after };
}

/** The pre-debit notice: how much, and when it will be charged (or that the customer must pay it). */
export const renewalNoticeEvent = (account: Pick<AccountRow, 'id' | 'currency'>, subscriptionId: string, amount: number, chargeAt: Date, requiresAction?: ActionRequired): NewEvent => ({
  type: 'subscription.renewal_notice',
  accountId: account.id,
  payload: { accountId: account.id, subscriptionId, amount, currency: account.currency, chargeAt: chargeAt.toISOString(), ...(requiresAction ? { requiresAction } : {}) },
});

/** The invoice waits for the customer: how much, why, and by when, for the email and the console. */
export const requiresActionEvent = (
  accountId: string,
  subscriptionId: string,
  invoice: { id: string; number?: string; total: number; currency: string },
  reason: ActionRequired,
  payBy: Date,
): NewEvent => ({
  type: 'invoice.requires_action',
  accountId,
  payload: { accountId, kind: 'renewal', subscriptionId, invoiceId: invoice.id, number: invoice.number, total: invoice.total, currency: invoice.currency, reason, payBy: payBy.toISOString() },
});

export type BatchRoute = { route: 'batch' } | { route: 'single' } | { route: 'skipped' };

/**
 * The common case the batch renewal handles itself: a due period of an active subscription,
 * on real time, renewing as it is (no cancellation, no scheduled change), to be charged now
 * to a card or UPI method (planRenewal says whether it is). Everything else goes through the
 * single renewal, unchanged.
 */
export function batchRoute(sub: SubscriptionRow, account: Pick<AccountRow, 'testClockId'>, methodType: PaymentMethodType | null, periodEnd: Date, now: Date): BatchRoute {
  // A test clock has its own "now": the single path reads it.
  if (account.testClockId) return { route: 'single' };
  if (sub.status !== 'active' || sub.currentPeriodEnd.getTime() !== periodEnd.getTime() || now < periodEnd) return { route: 'skipped' };
  if (sub.cancelAtPeriodEnd || sub.scheduledPlanId || sub.scheduledBillingCycle) return { route: 'single' };
  if (!methodType || !chargeableUnattended(methodType)) return { route: 'single' };
  return { route: 'batch' };
}
