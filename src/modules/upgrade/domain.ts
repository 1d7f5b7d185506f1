import type { TaxRegime } from '../billing/tax.js';
import { formatAmount } from '../../lib/format.js';
import type { ErrorCode } from '../../lib/errors.js';
import type { Currency } from '../../lib/money.js';
import type { AccountStatus, KycStatus } from '../accounts/domain.js';
import { priceUpgrade, type BillingCycleCode, type PricedInvoice } from '../billing/domain.js';
import type { Entitlements } from '../catalog/entitlements.js';
import { allowedPaymentMethods, chargeableUnattended, type PaymentMethodType } from '../payments/methods.js';
import { periodAt, type Period } from '../subscriptions/periods.js';

export interface Refusal {
  code: ErrorCode;
  detail: string;
  extra?: Record<string, unknown>;
}

export interface UpgradeContext {
  account: { id: string; status: AccountStatus; kycStatus: KycStatus; country: string; currency: Currency };
  plan: { id: string; kind: string; tier: string; name: string; supersededAt: Date | null; offeredToAccountId: string | null; entitlements: Entitlements };
  price: { monthlyMinimum: number; minInitialCredits: number; whatsappAddonMonthly: number | null } | undefined;
  cycle: { code: BillingCycleCode; name: string; months: number; discountBps: number };
  tax: TaxRegime;
  now: Date;
}

export interface UpgradeChoice {
  whatsappAddon: boolean;
  initialCredits: number;
  paymentMethodType?: PaymentMethodType;
  autoRecharge?: { enabled: boolean; threshold: number; amount: number };
}

export interface Evaluation {
  priced: PricedInvoice;
  /** What each renewal will cost (plan fee and add-on, tax included). */
  renewalTotal: number;
  period: Period;
  allowedMethods: PaymentMethodType[];
  /** Reasons the upgrade would be refused; empty when it may go ahead. */
  blockers: Refusal[];
}

/**
 * The pure decision of an upgrade: what it costs and whether it may happen. A refusal that
 * makes pricing impossible (plan not on offer, no price, add-on unavailable) comes back as
 * `refused`; the rest are blockers, so a quote can still show the price.
 */
export function evaluateUpgrade(ctx: UpgradeContext, choice: UpgradeChoice): { refused: Refusal } | Evaluation {
  const { account, plan, price, cycle } = ctx;
  const offered =
    plan.supersededAt === null && (plan.kind === 'standard' || (plan.kind === 'custom' && plan.offeredToAccountId === account.id));
  if (!offered) {
    return { refused: { code: 'plan_not_offered', detail: plan.supersededAt ? `${plan.id} was replaced by a newer version` : `${plan.id} cannot be bought by this account` } };
  }
  if (!price) return { refused: { code: 'currency_not_priced', detail: `${plan.id} has no ${account.currency} price` } };
  if (choice.whatsappAddon && plan.entitlements.whatsapp !== 'add_on') {
    return {
      refused: {
        code: 'addon_not_available',
        detail: plan.entitlements.whatsapp === 'included' ? `WhatsApp is already included in ${plan.name}` : `${plan.name} offers no WhatsApp add-on`,
      },
    };
  }
  if (choice.whatsappAddon && price.whatsappAddonMonthly === null) {
    return { refused: { code: 'addon_not_available', detail: `${plan.name} has no WhatsApp add-on price in ${account.currency}` } };
  }

  const priceWith = (initialCredits: number) =>
    priceUpgrade({
      currency: account.currency,
      planName: plan.name,
      cycle,
      monthlyMinimum: price.monthlyMinimum,
      whatsappAddonMonthly: choice.whatsappAddon ? price.whatsappAddonMonthly : null,
      initialCredits,
      tax: ctx.tax,
    });
  const priced = priceWith(choice.initialCredits);
  const allowedMethods = allowedPaymentMethods(account.country, plan.tier, cycle.code);
  const blockers: Refusal[] = [];

  if (account.kycStatus !== 'approved') {
    blockers.push({ code: 'kyc_not_approved', detail: `KYC is ${account.kycStatus}; it must be approved first`, extra: { kycStatus: account.kycStatus } });
  }
  // A limited account (cancelled, or dunning exhausted) may subscribe again; KYC stays approved.
  if (account.status !== 'trial' && account.status !== 'limited') {
    blockers.push({ code: 'account_not_in_trial', detail: `The account is ${account.status}`, extra: { accountStatus: account.status } });
  }
  if (choice.initialCredits < price.minInitialCredits) {
    blockers.push({
      code: 'initial_credits_below_minimum',
      detail: `${plan.name} needs at least ${formatAmount(price.minInitialCredits, account.currency)} of initial credits`,
      extra: { minimum: price.minInitialCredits },
    });
  }
  if (choice.paymentMethodType && !allowedMethods.includes(choice.paymentMethodType)) {
    blockers.push({
      code: 'payment_method_not_allowed',
      detail: paymentMethodRule(choice.paymentMethodType),
      extra: { allowedPaymentMethods: allowedMethods },
    });
  }
  const recharge = choice.autoRecharge;
  // Stored even when disabled (to be switched on later), so it must make sense either way.
  if (recharge && recharge.threshold >= recharge.amount) {
    blockers.push({ code: 'invalid_auto_recharge', detail: 'The recharge amount must be larger than the threshold' });
  }
  if (recharge?.enabled) {
    if (choice.paymentMethodType && !chargeableUnattended(choice.paymentMethodType)) {
      blockers.push({ code: 'invalid_auto_recharge', detail: `Auto-recharge needs a card or UPI; ${choice.paymentMethodType} cannot be charged unattended` });
    }
  }
  // What each renewal will cost: the same plan fee and add-on, without the initial credits.
  return { priced, renewalTotal: priceWith(0).total, period: periodAt(ctx.now, cycle.months, 0), allowedMethods, blockers };
}

function paymentMethodRule(type: PaymentMethodType): string {
  switch (type) {
    case 'upi':
    case 'netbanking':
      return `${type === 'upi' ? 'UPI' : 'Net banking'} is available to accounts in India only`;
    case 'wire_transfer':
    case 'cheque':
      return `${type === 'cheque' ? 'Cheque' : 'Wire transfer'} is for Enterprise plans paid annually only`;
    default:
      return `${type} is not allowed here`;
  }
}
