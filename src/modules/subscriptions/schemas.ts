import { z } from 'zod';
import { billingCycleCodeSchema, periodSchema } from '../billing/schemas.js';
import { paymentMethodTypeSchema } from '../payments/schemas.js';

export const subscriptionSchema = z
  .object({
    id: z.string(),
    accountId: z.string(),
    status: z.enum(['active', 'past_due', 'cancelled']),
    plan: z.object({ id: z.string(), code: z.string(), version: z.number().int(), name: z.string() }),
    billingCycle: billingCycleCodeSchema,
    whatsappAddon: z.boolean(),
    anchorAt: z.date().meta({ description: 'Periods are anchored to this instant (the upgrade)' }),
    currentPeriod: periodSchema,
    paymentMethod: z.object({
      type: paymentMethodTypeSchema,
      label: z.string().nullable().meta({ description: 'Safe to show: the card brand, the masked VPA (`ra***@okhdfc`) or the bank code' }),
    }),
    scheduledChange: z
      .object({
        planId: z.string().nullable(),
        billingCycle: billingCycleCodeSchema.nullable(),
        effectiveAt: z.date().meta({ description: 'The start of the next period' }),
      })
      .nullable(),
    cancelAtPeriodEnd: z.boolean().meta({ description: 'Ends (account limited) at the period end unless resumed' }),
    endedAt: z.date().nullable(),
    createdAt: z.date(),
  })
  .meta({
    id: 'Subscription',
    examples: [
      {
        id: 'sub_01kb2m3n4p5q6r7s8t9v0w1x2y',
        accountId: 'acc_01kb2m3n4p5q6r7s8t9v0w1x2y',
        status: 'active',
        plan: { id: 'plan_starter_v1', code: 'starter', version: 1, name: 'Starter' },
        billingCycle: 'quarterly',
        whatsappAddon: false,
        anchorAt: '2026-11-26T10:00:00.000Z',
        currentPeriod: { start: '2026-11-26T10:00:00.000Z', end: '2027-02-26T10:00:00.000Z' },
        paymentMethod: { type: 'card', label: 'visa' },
        scheduledChange: null,
        cancelAtPeriodEnd: false,
        endedAt: null,
        createdAt: '2026-11-26T10:00:00.000Z',
      },
    ],
  });

export type SubscriptionDto = z.infer<typeof subscriptionSchema>;

export const subscriptionIdSchema = z.string().regex(/^sub_[0-9a-z]{26}$/, 'not a subscription id');

const changeSchema = z.object({ entitlement: z.string(), from: z.unknown(), to: z.unknown() });

export const renewalNeedsCustomerActionSchema = z.boolean().meta({
  description:
    'True when renewals, as now scheduled, cannot be charged without the customer (an Indian card or UPI above its e-mandate, ' +
    'INR 15,000 unless more was authenticated): each renewal invoice will wait for POST /v1/invoices/{id}/pay',
});

export const scheduledSubscriptionSchema = subscriptionSchema
  .extend({ renewalNeedsCustomerAction: renewalNeedsCustomerActionSchema })
  .meta({
    id: 'ScheduledSubscription',
    examples: [{ ...(subscriptionSchema.meta()?.examples as Array<Record<string, unknown>>)[0], renewalNeedsCustomerAction: false }],
  });

export const planChangeResultSchema = z
  .object({
    subscription: subscriptionSchema,
    effectiveAt: z.date().meta({ description: 'When the new plan applies: the start of the next period' }),
    entitlementChanges: z.array(changeSchema),
    conflicts: z
      .array(z.object({ code: z.enum(['exophone_limit_exceeded', 'retention_reduced', 'feature_removed']), detail: z.string() }))
      .meta({ description: 'What a downgrade takes away from the account as it is now; accepted and reported' }),
    renewalNeedsCustomerAction: renewalNeedsCustomerActionSchema,
  })
  .meta({
    id: 'PlanChange',
    examples: [
      {
        subscription: {
          ...(subscriptionSchema.meta()?.examples as Array<Record<string, unknown>>)[0],
          scheduledChange: { planId: 'plan_basic_v1', billingCycle: null, effectiveAt: '2027-02-26T10:00:00.000Z' },
        },
        effectiveAt: '2027-02-26T10:00:00.000Z',
        entitlementChanges: [{ entitlement: 'callRecording.retentionDays', from: 90, to: 30 }],
        conflicts: [{ code: 'retention_reduced', detail: 'Call-recording retention goes from 90 to 30 days' }],
        renewalNeedsCustomerAction: false,
      },
    ],
  });

export const planChangeBodySchema = z
  .object({ planId: z.string().regex(/^plan_[a-z0-9_-]{1,80}$/) })
  .meta({ id: 'PlanChangeRequest', examples: [{ planId: 'plan_starter_v1' }] });

export const billingCycleBodySchema = z
  .object({ billingCycle: billingCycleCodeSchema })
  .meta({ id: 'BillingCycleChangeRequest', examples: [{ billingCycle: 'annual' }] });
