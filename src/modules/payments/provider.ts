import type { Currency } from '../../lib/money.js';

/** A payment instrument as the customer gives it: a one-time card token, a VPA, a bank code. */
export type InstrumentMethod =
  | { type: 'card'; token: string }
  | { type: 'upi'; vpa: string }
  | { type: 'netbanking'; bankCode: string };

/** What a charge is made with: an instrument, or a method saved with the provider (by its reference). */
export type ChargeMethod = InstrumentMethod | { type: 'saved'; reference: string };

export interface SaveMethodRequest {
  /** Our payment method id: saving it again returns the first answer. */
  idempotencyKey: string;
  method: InstrumentMethod;
}

/**
 * A method the provider keeps for later charges (Stripe's pm_..., Razorpay's token_...):
 * the reusable reference is all we store, with a label safe to show (card brand, masked VPA).
 */
export interface SavedMethod {
  reference: string;
  label: string;
  /** Card: the last four digits. */
  last4?: string;
}

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

export interface RefundRequest {
  /** Our refund id: the provider answers a repeated key with the first refund's result. */
  idempotencyKey: string;
  /** The provider's reference of the charge being refunded (a payment's providerReference). */
  chargeReference: string;
  amount: number;
  currency: Currency;
  reason: string;
}

export type RefundResult =
  | { status: 'succeeded'; reference: string }
  | { status: 'failed'; reference: string | null; code: string; message: string }
  /** The call broke: the money may or may not have gone back. Reconcile with lookupRefund. */
  | { status: 'unknown' };

export type RefundLookup = Exclude<RefundResult, { status: 'unknown' }> | { status: 'not_found' };

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
  /**
   * Keeps a card, UPI or net-banking method on the provider's side for renewals and
   * auto-recharge; charges of the method then go by `{ type: 'saved', reference }`.
   */
  saveMethod(request: SaveMethodRequest): Promise<SavedMethod>;
  /** Returns money of a succeeded charge to the method it came from (all or part of it). */
  refund(request: RefundRequest): Promise<RefundResult>;
  /** What the provider knows of a refund by our idempotency key; `not_found`: never made. */
  lookupRefund(idempotencyKey: string): Promise<RefundLookup>;
}
