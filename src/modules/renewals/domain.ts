import type { accounts, billingCycles } from '../../db/schema/index.js';
import { priceUpgrade, taxFor, type PricedInvoice } from '../billing/domain.js';
import type { PlanPriceRow, PlanRow } from '../catalog/repo.js';
import { chargeableAfter, mandateApplies, type MandateRules } from '../payments/mandate.js';
import { chargeableUnattended, type PaymentMethodType } from '../payments/methods.js';
import type { SubscriptionRow } from '../subscriptions/repo.js';

type AccountRow = typeof accounts.$inferSelect;
type CycleRow = typeof billingCycles.$inferSelect;

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
  account: Pick<AccountRow, 'currency' | 'country'>,
  catalog: { plan: PlanRow | undefined; prices: PlanPriceRow[]; cycle: CycleRow | undefined },
  taxRates: Record<string, number>,
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
    tax: taxFor(account.country, taxRates),
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

export type BatchRoute = { route: 'batch'; charge: RenewalCharge } | { route: 'single' } | { route: 'skipped' };

/**
 * The common case the batch renewal handles itself: a due period of an active subscription,
 * on real time, renewing as it is (no cancellation, no scheduled change), charged now to a
 * card or UPI method. Everything else goes through the single renewal, unchanged.
 */
export function batchRoute(
  sub: SubscriptionRow,
  account: Pick<AccountRow, 'currency' | 'testClockId'>,
  methodType: PaymentMethodType | null,
  periodEnd: Date,
  now: Date,
  rules: MandateRules,
): BatchRoute {
  // A test clock has its own "now": the single path reads it.
  if (account.testClockId) return { route: 'single' };
  if (sub.status !== 'active' || sub.currentPeriodEnd.getTime() !== periodEnd.getTime() || now < periodEnd) return { route: 'skipped' };
  if (sub.cancelAtPeriodEnd || sub.scheduledPlanId || sub.scheduledBillingCycle) return { route: 'single' };
  if (!methodType || !chargeableUnattended(methodType)) return { route: 'single' };
  const charge = renewalCharge(sub, account, methodType, now, rules);
  // A charge that must wait for its pre-debit notice is issued now and charged later.
  if (charge.chargeAt > now) return { route: 'single' };
  return { route: 'batch', charge };
}
