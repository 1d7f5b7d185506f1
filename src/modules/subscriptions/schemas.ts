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
    paymentMethod: z.object({ type: paymentMethodTypeSchema, label: z.string().nullable() }),
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
        createdAt: '2026-11-26T10:00:00.000Z',
      },
    ],
  });

export type SubscriptionDto = z.infer<typeof subscriptionSchema>;
