/** Holds: credits reserved for a call or message while it runs. Pure. */
import type { Currency } from '../../lib/money.js';
import { denialReasons, type DenialReason } from '../authorization/domain.js';

export type HoldAction = 'outbound_call' | 'outbound_sms';
/** Why a hold is refused: authorize's reasons that apply to calls and SMS. */
export const holdReasons = denialReasons.filter((r) => !['kyc_not_approved', 'paid_plan_required', 'exophone_limit_reached'].includes(r)) as [
  Exclude<DenialReason, 'kyc_not_approved' | 'paid_plan_required' | 'exophone_limit_reached'>,
  ...Exclude<DenialReason, 'kyc_not_approved' | 'paid_plan_required' | 'exophone_limit_reached'>[],
];
export type HoldReason = (typeof holdReasons)[number];
export type HoldStatus = 'active' | 'settled' | 'released' | 'expired';

export interface Hold {
  id: string;
  accountId: string;
  reference: string;
  action: HoldAction;
  destination: string | null;
  units: number;
  unitAmount: number;
  amount: number;
  currency: Currency;
  status: HoldStatus;
  ttlSeconds: number;
  expiresAt: Date;
  usageEventId: string | null;
  settledAmount: number | null;
  createdAt: Date;
  updatedAt: Date;
}

/** The price of one unit held: a pulse for a call, a segment for an SMS; 0 on a plan that bills nothing. */
export function unitAmountOf(action: HoldAction, rates: { perPulseRate: number; perSmsRate: number } | null): number {
  if (!rates) return 0;
  return action === 'outbound_call' ? rates.perPulseRate : rates.perSmsRate;
}

/**
 * What a usage event debits when it settles an active hold. The hold is freed first, so the
 * event may spend its own hold and whatever else is available; a call that outran its hold
 * (and the balance) debits all that is there and records the rest as shortfall.
 */
export function settlement(actual: number, availableAfterRelease: number): { debit: number; shortfall: number } {
  const debit = Math.min(actual, Math.max(availableAfterRelease, 0));
  return { debit, shortfall: actual - debit };
}

/** The later of the hold's expiry and `ttlSeconds` from now: an extension never shortens a hold. */
export function extendedExpiry(current: Date, now: Date, ttlSeconds: number): Date {
  const next = now.getTime() + ttlSeconds * 1000;
  return next > current.getTime() ? new Date(next) : current;
}
