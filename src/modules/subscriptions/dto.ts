import type { PlanRow } from '../catalog/repo.js';
import type { PaymentMethodRow } from '../payments/repo.js';
import type { SubscriptionRow } from './repo.js';
import type { SubscriptionDto } from './schemas.js';

export function toSubscriptionDto(row: SubscriptionRow, plan: PlanRow, method: PaymentMethodRow | undefined): SubscriptionDto {
  return {
    id: row.id,
    accountId: row.accountId,
    status: row.status,
    plan: { id: plan.id, code: plan.code, version: plan.version, name: plan.name },
    billingCycle: row.billingCycle,
    whatsappAddon: row.whatsappAddon,
    anchorAt: row.anchorAt,
    currentPeriod: { start: row.currentPeriodStart, end: row.currentPeriodEnd },
    paymentMethod: { type: method?.type ?? 'card', label: method?.label ?? null },
    scheduledChange:
      row.scheduledPlanId || row.scheduledBillingCycle
        ? { planId: row.scheduledPlanId, billingCycle: row.scheduledBillingCycle, effectiveAt: row.currentPeriodEnd }
        : null,
    cancelAtPeriodEnd: row.cancelAtPeriodEnd,
    endedAt: row.endedAt,
    createdAt: row.createdAt,
  };
}
