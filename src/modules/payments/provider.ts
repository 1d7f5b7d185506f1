import type { Currency } from '../../lib/money.js';

export type ChargeMethod =
  | { type: 'card'; token: string }
  | { type: 'upi'; vpa: string }
  | { type: 'netbanking'; bankCode: string };

export interface ChargeRequest {
  /** Our payment id: the provider answers a repeated key with the first charge's result. */
  idempotencyKey: string;
  amount: number;
  currency: Currency;
  method: ChargeMethod;
  description: string;
  /** True for renewals and auto-recharge: the customer is not present. */
  unattended?: boolean;
}

export type ChargeResult =
  | { status: 'succeeded'; reference: string }
  | { status: 'failed'; reference: string | null; code: string; message: string }
  /** The call timed out or broke: the money may or may not have moved. Reconcile with lookup. */
  | { status: 'unknown' };

export type LookupResult = Exclude<ChargeResult, { status: 'unknown' }> | { status: 'not_found' };

/**
 * A payment gateway (card, UPI, net banking). Razorpay or Stripe would be other
 * implementations of the same interface. Never called inside a database transaction.
 */
export interface PaymentProvider {
  charge(request: ChargeRequest): Promise<ChargeResult>;
  /**
   * Optional: many charges in one call (a renewal wave), answered in request order, each
   * exactly as `charge` would answer it. Without it, callers charge one by one.
   */
  chargeMany?(requests: ChargeRequest[]): Promise<ChargeResult[]>;
  /** What the provider knows of a charge by our idempotency key; `not_found`: never charged. */
  lookup(idempotencyKey: string): Promise<LookupResult>;
}
