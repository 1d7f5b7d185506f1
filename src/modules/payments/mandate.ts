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

export const overCap = (rules: MandateRules, amount: number): boolean => amount > rules.capInr;

/** When a charge announced at `noticeAt` may run. */
export const chargeableAfter = (rules: MandateRules, noticeAt: Date): Date => new Date(noticeAt.getTime() + rules.noticeHours * 3_600_000);
