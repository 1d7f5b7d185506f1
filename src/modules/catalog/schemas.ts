import { z } from 'zod';
import { amountInputSchema, currencySchema, minorUnitsSchema } from '../../lib/money.js';
import { entitlementsSchema, starterEntitlementsExample } from './entitlements.js';

export const planIdSchema = z
  .string()
  .regex(/^plan_[a-z0-9_-]{1,80}$/)
  .meta({ description: 'Id of one plan version', examples: ['plan_growth_v1'] });

export const planPriceSchema = z
  .object({
    currency: currencySchema,
    monthlyMinimum: minorUnitsSchema.meta({ description: 'Plan fee per month, in minor units' }),
    minInitialCredits: minorUnitsSchema.meta({ description: 'Smallest credit purchase allowed at upgrade' }),
    pulseSeconds: z.number().int().min(1).max(3600).meta({ description: 'Voice pulse length in seconds' }),
    perPulseRate: minorUnitsSchema.meta({ description: 'Price of one voice pulse, in minor units' }),
    perSmsRate: minorUnitsSchema.meta({ description: 'Price of one SMS segment, in minor units' }),
    whatsappAddonMonthly: minorUnitsSchema
      .nullable()
      .meta({ description: 'Monthly price of the WhatsApp add-on; null where WhatsApp is included or unavailable' }),
  })
  .meta({ id: 'PlanPrice' });

export const planSchema = z
  .object({
    id: planIdSchema,
    code: z.string().meta({ description: 'Stable plan code; versions of one plan share it' }),
    version: z.number().int().min(1),
    kind: z.enum(['trial', 'standard', 'custom']),
    tier: z.enum(['trial', 'starter', 'growth', 'enterprise']),
    name: z.string(),
    description: z.string(),
    commitment: z.enum(['none', 'low', 'medium', 'custom']).meta({ description: 'The brief\'s "monthly minimum" row' }),
    entitlements: entitlementsSchema,
    prices: z.array(planPriceSchema),
    offeredToAccountId: z.string().nullable().meta({ description: 'Custom plans: the one account they are offered to' }),
    current: z.boolean().meta({ description: 'False once a newer version replaced this one' }),
    createdAt: z.date(),
  })
  .meta({
    id: 'Plan',
    examples: [
      {
        id: 'plan_starter_v1',
        code: 'starter',
        version: 1,
        kind: 'standard',
        tier: 'starter',
        name: 'Starter',
        description: 'Low commitment: up to 5 ExoPhones, WhatsApp as an add-on.',
        commitment: 'low',
        entitlements: starterEntitlementsExample,
        prices: [
          {
            currency: 'INR',
            monthlyMinimum: 250000,
            minInitialCredits: 100000,
            pulseSeconds: 60,
            perPulseRate: 60,
            perSmsRate: 25,
            whatsappAddonMonthly: 100000,
          },
        ],
        offeredToAccountId: null,
        current: true,
        createdAt: '2026-01-01T00:00:00.000Z',
      },
    ],
  });

export type Plan = z.infer<typeof planSchema>;
export type PlanPrice = z.infer<typeof planPriceSchema>;

export const planListSchema = z
  .object({ data: z.array(planSchema), nextCursor: z.string().nullable() })
  .meta({ id: 'PlanList' });

export const listPlansQuerySchema = z.object({
  accountId: z.string().regex(/^acc_[0-9a-z]{26}$/, 'not an account id').optional().meta({ description: 'Also list the custom plans offered to this account' }),
  currency: currencySchema.optional().meta({ description: 'Only prices in this currency' }),
});

export const billingCycleSchema = z
  .object({
    code: z.enum(['monthly', 'quarterly', 'annual']),
    name: z.string(),
    months: z.number().int().min(1),
    discountBps: z.number().int().min(0).max(10000).meta({ description: 'Discount in basis points (500 = 5%)' }),
    discountPercent: z.number().min(0).max(100),
  })
  .meta({
    id: 'BillingCycle',
    examples: [{ code: 'quarterly', name: 'Quarterly', months: 3, discountBps: 500, discountPercent: 5 }],
  });

export const billingCycleListSchema = z
  .object({ data: z.array(billingCycleSchema), nextCursor: z.string().nullable() })
  .meta({ id: 'BillingCycleList' });

const pricesInputSchema = z
  .array(
    planPriceSchema.extend({
      monthlyMinimum: amountInputSchema,
      minInitialCredits: amountInputSchema,
      perPulseRate: amountInputSchema,
      perSmsRate: amountInputSchema,
      whatsappAddonMonthly: amountInputSchema.nullable(),
      pulseSeconds: planPriceSchema.shape.pulseSeconds.default(60),
    }),
  )
  .min(1)
  .refine((prices) => new Set(prices.map((p) => p.currency)).size === prices.length, 'one price per currency');

export const createCustomPlanBodySchema = z
  .object({
    accountId: z.string().regex(/^acc_[0-9a-z]{26}$/, 'not an account id'),
    name: z.string().trim().min(1).max(120),
    description: z.string().max(1000).default(''),
    exophoneLimit: z.number().int().min(0).nullable().default(null).meta({ description: 'null: unlimited' }),
    callRecordingRetentionDays: z.number().int().min(1).max(3650).default(365),
    slaUptimePercent: z.number().min(90).max(100).default(99.95),
    apiRateLimitPerMinute: z.number().int().min(1).max(1_000_000).default(5000),
    prices: pricesInputSchema,
  })
  .meta({
    id: 'CreateCustomPlan',
    examples: [
      {
        accountId: 'acc_01kb2m3n4p5q6r7s8t9v0w1x2y',
        name: 'Acme Enterprise',
        exophoneLimit: 200,
        callRecordingRetentionDays: 730,
        slaUptimePercent: 99.99,
        apiRateLimitPerMinute: 20000,
        prices: [
          { currency: 'INR', monthlyMinimum: 7500000, minInitialCredits: 5000000, pulseSeconds: 60, perPulseRate: 35, perSmsRate: 18, whatsappAddonMonthly: null },
        ],
      },
    ],
  });

export const createPlanVersionBodySchema = z
  .object({
    prices: pricesInputSchema,
    name: z.string().trim().min(1).max(120).optional(),
    description: z.string().max(1000).optional(),
    entitlements: entitlementsSchema.optional().meta({ description: 'Replaces the entitlements; omitted keeps them' }),
  })
  .meta({
    id: 'CreatePlanVersion',
    examples: [
      {
        prices: [
          { currency: 'INR', monthlyMinimum: 275000, minInitialCredits: 100000, pulseSeconds: 60, perPulseRate: 60, perSmsRate: 25, whatsappAddonMonthly: 100000 },
          { currency: 'USD', monthlyMinimum: 5400, minInitialCredits: 2000, pulseSeconds: 60, perPulseRate: 2, perSmsRate: 1, whatsappAddonMonthly: 1500 },
        ],
      },
    ],
  });

export type CreateCustomPlanInput = z.infer<typeof createCustomPlanBodySchema>;
export type CreatePlanVersionInput = z.infer<typeof createPlanVersionBodySchema>;
