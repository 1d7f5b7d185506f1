import { z } from 'zod';
import { amountInputSchema, currencySchema, minorUnitsSchema } from '../../lib/money.js';
import { billingCycleCodeSchema, invoiceLineSchema, invoiceSchema, periodSchema, taxLineSchema } from '../billing/schemas.js';
import { entitlementsSchema, starterEntitlementsExample } from '../catalog/entitlements.js';
import { planIdSchema } from '../catalog/schemas.js';
import { paymentMethodInputSchema, paymentMethodTypeSchema } from '../payments/schemas.js';

const exampleOf = (schema: z.ZodType): Record<string, any> => (schema.meta()?.examples as Record<string, unknown>[])[0]!;

const autoRechargeSchema = z
  .object({
    enabled: z.boolean(),
    threshold: amountInputSchema.meta({ description: 'Recharge when the balance falls below this, in minor units (paise for INR)' }),
    amount: amountInputSchema.min(1).meta({ description: 'How much to buy each time, in minor units (paise for INR); must exceed the threshold' }),
  })
  .meta({ description: 'Charges the upgrade\'s payment method unattended: card or UPI only' });

const upgradeFields = {
  planId: planIdSchema,
  billingCycle: billingCycleCodeSchema,
  addOns: z
    .object({ whatsapp: z.boolean().default(false).meta({ description: 'The WhatsApp add-on (Starter)' }) })
    .default({ whatsapp: false }),
  initialCredits: amountInputSchema.meta({ description: 'Credits to buy now, in minor units of the account\'s currency (paise for INR: 500000 is ₹5,000.00); at least the plan\'s minimum' }),
  autoRecharge: autoRechargeSchema.optional(),
};

export const quoteRequestSchema = z
  .object({ ...upgradeFields, paymentMethodType: paymentMethodTypeSchema.optional() })
  .meta({
    id: 'UpgradeQuoteRequest',
    examples: [{ planId: 'plan_starter_v1', billingCycle: 'quarterly', addOns: { whatsapp: true }, initialCredits: 200000, paymentMethodType: 'upi' }],
  });

export const upgradeRequestSchema = z
  .object({ ...upgradeFields, paymentMethod: paymentMethodInputSchema })
  .meta({
    id: 'UpgradeRequest',
    examples: [
      {
        planId: 'plan_starter_v1',
        billingCycle: 'quarterly',
        addOns: { whatsapp: false },
        initialCredits: 200000,
        paymentMethod: { type: 'card', token: 'tok_visa' },
        autoRecharge: { enabled: true, threshold: 50000, amount: 200000 },
      },
    ],
  });

export type QuoteRequest = z.infer<typeof quoteRequestSchema>;
export type UpgradeRequest = z.infer<typeof upgradeRequestSchema>;

export const quoteSchema = z
  .object({
    accountId: z.string(),
    plan: z.object({ id: z.string(), code: z.string(), version: z.number().int(), name: z.string() }),
    billingCycle: z.object({ code: billingCycleCodeSchema, months: z.number().int(), discountBps: z.number().int() }),
    currency: currencySchema,
    period: periodSchema.meta({ description: 'The first period if the upgrade happened now' }),
    lines: z.array(invoiceLineSchema),
    subtotal: minorUnitsSchema,
    discountTotal: minorUnitsSchema,
    tax: taxLineSchema,
    total: minorUnitsSchema,
    entitlementsAfter: entitlementsSchema,
    allowedPaymentMethods: z.array(paymentMethodTypeSchema).meta({ description: 'For this account, plan and cycle' }),
    canUpgrade: z.boolean(),
    blockers: z
      .array(z.object({ code: z.string(), detail: z.string() }))
      .meta({ description: 'Why the upgrade would be refused now (e.g. `kyc_not_approved`), with the same codes the upgrade answers' }),
    renewalTotal: minorUnitsSchema.meta({ description: 'What each renewal will cost: the plan fee and add-on for a period, tax included' }),
    renewalNeedsCustomerAction: z.boolean().meta({
      description:
        'True when renewals cannot be charged without the customer: by card or UPI (card unless `paymentMethodType` says otherwise) ' +
        'in India above the e-mandate cap (INR 15,000). Each renewal invoice will then wait for POST /v1/invoices/{id}/pay.',
    }),
  })
  .meta({
    id: 'UpgradeQuote',
    examples: [
      {
        accountId: 'acc_01kb2m3n4p5q6r7s8t9v0w1x2y',
        plan: { id: 'plan_starter_v1', code: 'starter', version: 1, name: 'Starter' },
        billingCycle: { code: 'quarterly', months: 3, discountBps: 500 },
        currency: 'INR',
        period: { start: '2026-11-26T10:00:00.000Z', end: '2027-02-26T10:00:00.000Z' },
        lines: exampleOf(invoiceSchema).lines,
        subtotal: 912500,
        discountTotal: 37500,
        tax: exampleOf(invoiceSchema).tax,
        total: 1076750,
        entitlementsAfter: starterEntitlementsExample,
        allowedPaymentMethods: ['card', 'netbanking', 'upi'],
        canUpgrade: true,
        blockers: [],
        renewalTotal: 840750,
        renewalNeedsCustomerAction: false,
      },
    ],
  });

export type Quote = z.infer<typeof quoteSchema>;

/** What an upgrade answers: its payment with what it bought (see payments/result.ts). */
export { paymentResultSchema as upgradeResultSchema, type PaymentResult as UpgradeResult } from '../payments/result.js';
