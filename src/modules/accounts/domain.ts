import type { Entitlements } from '../catalog/entitlements.js';

export type KycStatus = 'pending' | 'submitted' | 'approved' | 'rejected';
export type AccountStatus = 'trial' | 'pending_payment' | 'active' | 'past_due' | 'limited';

const kycNext: Record<KycStatus, readonly KycStatus[]> = {
  pending: ['submitted'],
  submitted: ['approved', 'rejected'],
  rejected: ['submitted'],
  approved: [],
};

/** `unchanged` lets a retried call succeed without a second event. */
export function kycTransition(from: KycStatus, to: KycStatus): 'change' | 'unchanged' | 'refused' {
  if (from === to) return 'unchanged';
  return kycNext[from].includes(to) ? 'change' : 'refused';
}

export const allowedKycTransitions = (from: KycStatus): readonly KycStatus[] => kycNext[from];

export type Outbound = 'whitelisted_only' | 'any' | 'blocked';

/**
 * Where outbound calls and SMS may go now: the plan says whitelisted or any; a limited
 * account (cancelled, or dunning exhausted) may call no one.
 */
export function outboundOf(status: AccountStatus, entitlements: Entitlements): Outbound {
  if (status === 'limited') return 'blocked';
  return entitlements.numberWhitelisting.required ? 'whitelisted_only' : 'any';
}
