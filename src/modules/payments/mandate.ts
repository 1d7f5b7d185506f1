import type { Currency } from '../../lib/money.js';
import type { PaymentMethodType } from './methods.js';

/**
 * Indian e-mandate rules for charges made without the customer (renewals, auto-recharge)
 * on cards and UPI: a cap per charge, and a pre-debit notice some hours before it.
 */
export interface MandateRules {
  capInr: number;
  noticeHours: number;
}

export const mandateApplies = (currency: Currency, method: PaymentMethodType): boolean =>
  currency === 'INR' && (method === 'card' || method === 'upi');


/** When a charge announced at `noticeAt` may run. */
export const chargeableAfter = (rules: MandateRules, noticeAt: Date): Date => new Date(noticeAt.getTime() + rules.noticeHours * 3_600_000);

/** Why a charge cannot run without the customer; it then waits for them (POST /v1/invoices/{id}/pay). */
export type ActionRequired = 'above_mandate' | 'mandate_expired' | 'no_method';

export type UnattendedVerdict = { ok: true } | { ok: false; reason: ActionRequired | 'not_unattended' };

/**
 * May this amount be charged with the customer absent (a renewal, a dunning retry, an
 * auto-recharge)? Only card and UPI can be; an Indian card or UPI method only within its
 * e-mandate: up to its maximum (the cap unless the customer authenticated more) and before
 * it ends. The one rule every unattended charge goes by.
 */
export function unattendedVerdict(
  rules: MandateRules,
  method: { type: PaymentMethodType; mandateMaxAmount: number | null; mandateValidUntil: Date | null; status?: 'active' | 'removed' } | null | undefined,
  currency: Currency,
  amount: number,
  now: Date,
): UnattendedVerdict {
  if (!method || method.status === 'removed') return { ok: false, reason: 'no_method' };
  if (method.type !== 'card' && method.type !== 'upi') return { ok: false, reason: 'not_unattended' };
  if (!mandateApplies(currency, method.type)) return { ok: true };
  if (method.mandateValidUntil && method.mandateValidUntil <= now) return { ok: false, reason: 'mandate_expired' };
  if (amount > (method.mandateMaxAmount ?? rules.capInr)) return { ok: false, reason: 'above_mandate' };
  return { ok: true };
}
