import type { Entitlements } from './entitlements.js';

/** A custom Enterprise plan: the Enterprise entitlements with the limits sales agreed. */
export function customEnterpriseEntitlements(
  enterprise: Entitlements,
  terms: { exophoneLimit: number | null; callRecordingRetentionDays: number; slaUptimePercent: number; apiRateLimitPerMinute: number },
): Entitlements {
  return {
    ...enterprise,
    exophones: { ...enterprise.exophones, limit: terms.exophoneLimit },
    callRecording: { retentionDays: terms.callRecordingRetentionDays, custom: true },
    sla: { uptimePercent: terms.slaUptimePercent, custom: true },
    apiRateLimit: { tier: 'custom', requestsPerMinute: terms.apiRateLimitPerMinute },
  };
}

export const planVersionId = (code: string, version: number): string => `plan_${code}_v${version}`;

export const discountPercent = (bps: number): number => bps / 100;
