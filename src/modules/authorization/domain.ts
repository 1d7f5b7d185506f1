import type { AccountStatus, KycStatus } from '../accounts/domain.js';
import type { Entitlements } from '../catalog/entitlements.js';

export type Action = 'outbound_call' | 'outbound_sms' | 'whatsapp' | 'campaign' | 'purchase_exophone';

export const denialReasons = [
  'account_limited',
  'past_due_beyond_grace',
  'number_not_whitelisted',
  'dlt_required',
  'insufficient_credits',
  'feature_not_in_plan',
  'kyc_not_approved',
  'paid_plan_required',
  'exophone_limit_reached',
  'destination_required',
] as const;

export type DenialReason = (typeof denialReasons)[number];

export interface Facts {
  status: AccountStatus;
  kycStatus: KycStatus;
  pastDueSince: Date | null;
  graceDays: number;
  entitlements: Entitlements;
  whatsappAddon: boolean;
  dltRegistered: boolean;
  /** Credits and the price of one pulse / one SMS; rates null when the plan bills nothing (trial). */
  balance: number;
  rates: { perPulseRate: number; perSmsRate: number } | null;
  destination: string | null;
  destinationWhitelisted: boolean;
  exophonesInUse: number;
  now: Date;
}

const DAY_MS = 86_400_000;

/** May the account do this now? The first reason that says no, or null. Pure and fast. */
export function authorize(action: Action, f: Facts): DenialReason | null {
  if (f.status === 'limited') return 'account_limited';
  if (f.status === 'past_due' && f.pastDueSince && f.now.getTime() - f.pastDueSince.getTime() > f.graceDays * DAY_MS) return 'past_due_beyond_grace';

  if (action === 'purchase_exophone') {
    if (f.kycStatus !== 'approved') return 'kyc_not_approved';
    if (f.status !== 'active') return 'paid_plan_required';
    const limit = f.entitlements.exophones.limit;
    return limit !== null && f.exophonesInUse >= limit ? 'exophone_limit_reached' : null;
  }
  if (action === 'whatsapp') {
    const w = f.entitlements.whatsapp;
    if (w === 'not_available' || (w === 'add_on' && !f.whatsappAddon)) return 'feature_not_in_plan';
  }
  if (action === 'campaign' && f.entitlements.campaigns === 'not_available') return 'feature_not_in_plan';
  if (action === 'outbound_call' || action === 'outbound_sms') {
    if (!f.destination) return 'destination_required';
    if (f.entitlements.numberWhitelisting.required && !f.destinationWhitelisted) return 'number_not_whitelisted';
    if (action === 'outbound_sms' && f.entitlements.smsDltRequiredForIndia && f.destination.startsWith('+91') && !f.dltRegistered) return 'dlt_required';
  }
  if (f.rates && (action === 'outbound_call' || action === 'outbound_sms')) {
    const unit = action === 'outbound_call' ? f.rates.perPulseRate : f.rates.perSmsRate;
    if (f.balance < unit) return 'insufficient_credits';
  }
  return null;
}
