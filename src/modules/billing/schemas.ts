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
  label: z.string().meta({ examples: ['CGST 9% + SGST 9%', 'IGST 18%', 'IGST 0% (export of services)'] }),
  rateBps: z.number().int().meta({ description: 'Total tax rate in basis points (1800 = 18%)' }),
  amount: minorUnitsSchema,
  components: z
    .array(z.object({ name: z.enum(['CGST', 'SGST', 'IGST', 'Tax']), rateBps: z.number().int(), amount: minorUnitsSchema }))
    .meta({ description: 'The split the law asks for: CGST + SGST within the seller\'s state, IGST otherwise; each rounded per line, half-up, once, adding up to `amount`' }),
});

const stateSchema = z.object({ code: z.string(), name: z.string() });

export const supplySchema = z
  .object({
    type: z.enum(['intra_state', 'inter_state', 'export', 'foreign']),
    placeOfSupply: stateSchema.meta({ description: 'The state the service is supplied in (GST state code and name); `96` Other Countries for an export' }),
    reverseCharge: z.boolean().meta({ description: 'Whether the recipient pays the tax (never, for these services)' }),
    sac: z.string().meta({ description: 'Services Accounting Code of what is sold' }),
    seller: z.object({ legalName: z.string(), address: z.string(), gstin: z.string(), state: stateSchema }),
    buyer: z.object({
      legalName: z.string(),
      address: z.string().nullable(),
      gstin: z.string().nullable(),
      state: stateSchema.nullable(),
      country: z.string(),
      email: z.string(),
    }),
    exportTerms: z.string().nullable().meta({ description: 'On an export of services at zero rate: the terms it is made under (a Letter of Undertaking)' }),
  })
  .meta({ id: 'InvoiceSupply', description: 'The tax invoice\'s parties, place of supply and terms (GST Rule 46), as they were when it was issued' });

export const periodSchema = z.object({ start: z.date(), end: z.date() });

const invoiceExample = {
  id: 'inv_01kb2m3n4p5q6r7s8t9v0w1x2y',
  number: 'INV/2627/0000042',
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
  tax: { label: 'CGST 9% + SGST 9%', rateBps: 1800, amount: 164250, components: [{ name: 'CGST', rateBps: 900, amount: 82125 }, { name: 'SGST', rateBps: 900, amount: 82125 }] },
  supply: {
    type: 'intra_state',
    placeOfSupply: { code: '29', name: 'Karnataka' },
    reverseCharge: false,
    sac: '998419',
    seller: { legalName: 'Example Cloud Telephony Private Limited', address: '4th Floor, 100 Residency Road, Bengaluru, Karnataka 560025', gstin: '29AABCE1234F1Z1', state: { code: '29', name: 'Karnataka' } },
    buyer: { legalName: 'Iyer Cloud Communications LLP', address: '22, 80 Feet Road, Koramangala, Bengaluru 560034', gstin: null, state: { code: '29', name: 'Karnataka' }, country: 'IN', email: 'ap@iyer.example' },
    exportTerms: null,
  },
  amountInWords: 'Indian Rupees Ten Thousand Seven Hundred Sixty-Seven and Fifty Paise Only',
  total: 1076750,
  creditedTotal: 0,
  amountDue: 0,
  issuedAt: '2026-11-26T10:00:00.000Z',
  dueAt: '2026-11-26T10:00:00.000Z',
  paidAt: '2026-11-26T10:00:00.000Z',
};

export const invoiceSchema = z
  .object({
    id: z.string(),
    number: z.string().meta({ description: 'Consecutive and gapless per Indian financial year (April-March), at most 16 characters: INV/2627/0000042' }),
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
    supply: supplySchema.nullable().meta({ description: 'Null only on invoices issued before tax invoices kept it' }),
    total: minorUnitsSchema,
    creditedTotal: minorUnitsSchema.meta({ description: 'What credit notes took off this invoice, tax included' }),
    amountDue: minorUnitsSchema.meta({ description: 'What is still to pay: 0 once paid or void; an open invoice\'s total less its credit notes' }),
    amountInWords: z.string().meta({ description: 'The total in words (Indian numbering, lakh and crore, for INR)' }),
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
