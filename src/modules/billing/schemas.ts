import { z } from 'zod';
import { currencySchema, minorUnitsSchema } from '../../lib/money.js';

export const billingCycleCodeSchema = z.enum(['monthly', 'quarterly', 'annual']);

export const invoiceLineSchema = z
  .object({
    kind: z.enum(['plan_fee', 'whatsapp_addon', 'credits']),
    description: z.string(),
    quantity: z.number().int().meta({ description: 'Months for recurring fees, 1 for credits' }),
    unitAmount: minorUnitsSchema.meta({ description: 'Per month for recurring fees' }),
    grossAmount: minorUnitsSchema,
    discountAmount: minorUnitsSchema.meta({ description: 'The billing-cycle discount on this line' }),
    amount: minorUnitsSchema.meta({ description: 'grossAmount - discountAmount, rounded half-up once' }),
  })
  .meta({ id: 'InvoiceLine' });

export const taxLineSchema = z.object({
  label: z.string().meta({ examples: ['GST 18%'] }),
  rateBps: z.number().int().meta({ description: 'Tax rate in basis points (1800 = 18%)' }),
  amount: minorUnitsSchema,
});

export const periodSchema = z.object({ start: z.date(), end: z.date() });

const invoiceExample = {
  id: 'inv_01kb2m3n4p5q6r7s8t9v0w1x2y',
  number: 'INV-2026-27-000042',
  accountId: 'acc_01kb2m3n4p5q6r7s8t9v0w1x2y',
  subscriptionId: 'sub_01kb2m3n4p5q6r7s8t9v0w1x2y',
  status: 'paid',
  actionRequired: null,
  currency: 'INR',
  planId: 'plan_starter_v1',
  billingCycle: 'quarterly',
  period: { start: '2026-11-26T10:00:00.000Z', end: '2027-02-26T10:00:00.000Z' },
  lines: [
    { kind: 'plan_fee', description: 'Starter plan, quarterly (3 months)', quantity: 3, unitAmount: 250000, grossAmount: 750000, discountAmount: 37500, amount: 712500 },
    { kind: 'credits', description: 'Prepaid credits for calls and SMS', quantity: 1, unitAmount: 200000, grossAmount: 200000, discountAmount: 0, amount: 200000 },
  ],
  subtotal: 912500,
  discountTotal: 37500,
  tax: { label: 'GST 18%', rateBps: 1800, amount: 164250 },
  total: 1076750,
  issuedAt: '2026-11-26T10:00:00.000Z',
  dueAt: '2026-11-26T10:00:00.000Z',
  paidAt: '2026-11-26T10:00:00.000Z',
};

export const invoiceSchema = z
  .object({
    id: z.string(),
    number: z.string().meta({ description: 'Consecutive and gapless per Indian financial year (April-March)' }),
    accountId: z.string(),
    subscriptionId: z.string().nullable(),
    status: z.enum(['open', 'requires_action', 'paid', 'void']).meta({
      description:
        '`open`: unpaid, charged automatically (or awaiting a wire transfer or cheque). `requires_action`: unpaid, and the saved ' +
        'method cannot be charged without the customer (see `actionRequired`): pay it with POST /v1/invoices/{id}/pay.',
    }),
    actionRequired: z
      .object({
        reason: z.enum(['above_mandate', 'mandate_expired', 'no_method']).meta({
          description: '`above_mandate`: above the e-mandate of the method (INR 15,000 unless more was authenticated); `mandate_expired`; `no_method`',
        }),
        payBy: z.date().nullable().meta({ description: 'When dunning looks at it next: unpaid by then, the account goes past_due (and, in the end, limited)' }),
      })
      .nullable(),
    currency: currencySchema,
    planId: z.string(),
    billingCycle: billingCycleCodeSchema,
    period: periodSchema,
    lines: z.array(invoiceLineSchema),
    subtotal: minorUnitsSchema,
    discountTotal: minorUnitsSchema,
    tax: taxLineSchema,
    total: minorUnitsSchema,
    issuedAt: z.date(),
    dueAt: z.date(),
    paidAt: z.date().nullable(),
  })
  .meta({ id: 'Invoice', examples: [invoiceExample] });

export type InvoiceDto = z.infer<typeof invoiceSchema>;

export const invoiceListSchema = z
  .object({ data: z.array(invoiceSchema), nextCursor: z.string().nullable() })
  .meta({ id: 'InvoiceList' });

export const invoiceIdSchema = z.string().regex(/^inv_[0-9a-z]{26}$/, 'not an invoice id').meta({ examples: [invoiceExample.id] });
