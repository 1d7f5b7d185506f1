import { z } from 'zod';
import { amountInputSchema, currencySchema, minorUnitsSchema } from '../../lib/money.js';

export const creditNoteIdSchema = z.string().regex(/^cn_[0-9a-z]{26}$/, 'not a credit note id').meta({ examples: ['cn_01kb2m3n4p5q6r7s8t9v0w1x2y'] });

export const issueCreditNoteBodySchema = z
  .object({
    reason: z.string().trim().min(3).max(500).meta({ description: 'Why, as the customer and a tax officer will read it on the credit note' }),
    amount: amountInputSchema.min(1).optional().meta({
      description: 'The taxable value to credit (before tax), taken from the invoice\'s lines in order; the tax is reversed in proportion and added. Or give `lines`',
    }),
    lines: z
      .array(z.object({ position: z.number().int().min(0).max(100), amount: amountInputSchema.min(1).meta({ description: 'Taxable value to credit on that line' }) }))
      .min(1)
      .max(20)
      .optional()
      .meta({ description: 'The taxable value to credit per invoice line (its 0-based position in `lines`)' }),
    settlement: z.enum(['refund', 'credits', 'reduce_due']).optional().meta({
      description:
        '`refund`: back to the card, UPI or bank that paid (default for a paid invoice); `credits`: added to the credits balance; `reduce_due`: an unpaid invoice owes less (its only and default settlement)',
    }),
  })
  .refine((b) => (b.amount === undefined) !== (b.lines === undefined), { message: 'give either amount or lines', path: ['amount'] })
  .meta({
    id: 'IssueCreditNote',
    examples: [
      { reason: 'Outage on 3 December: 10 days of the plan fee', amount: 83333 },
      { reason: 'Unused prepaid credits returned on request', lines: [{ position: 1, amount: 50000 }], settlement: 'refund' },
    ],
  });

export const refundSchema = z
  .object({
    id: z.string(),
    status: z.enum(['processing', 'succeeded', 'failed', 'unknown']).meta({
      description: '`processing`/`unknown`: the gateway has not answered (the workers ask again); `failed`: the money is owed another way (ops)',
    }),
    amount: minorUnitsSchema,
    currency: currencySchema,
    paymentId: z.string().meta({ description: 'The payment refunded' }),
    failureCode: z.string().nullable(),
    failureMessage: z.string().nullable(),
  })
  .meta({ id: 'Refund' });

const componentSchema = z.object({ name: z.enum(['CGST', 'SGST', 'IGST', 'Tax']), rateBps: z.number().int(), amount: minorUnitsSchema });

const creditNoteExample = {
  id: 'cn_01kb2m3n4p5q6r7s8t9v0w1x2y',
  number: 'CN/2627/0000001',
  accountId: 'acc_01kb2m3n4p5q6r7s8t9v0w1x2y',
  invoiceId: 'inv_01kb2m3n4p5q6r7s8t9v0w1x2y',
  invoiceNumber: 'INV/2627/0000042',
  reason: 'Outage on 3 December: 10 days of the plan fee',
  settlement: 'refund',
  currency: 'INR',
  lines: [{ position: 0, description: 'Growth plan, monthly (1 month)', amount: 333333 }],
  subtotal: 333333,
  tax: { amount: 60000, components: [{ name: 'CGST', rateBps: 900, amount: 30000 }, { name: 'SGST', rateBps: 900, amount: 30000 }] },
  total: 393333,
  amountInWords: 'Indian Rupees Three Thousand Nine Hundred Thirty-Three and Thirty-Three Paise Only',
  issuedAt: '2026-12-04T10:00:00.000Z',
  refund: { id: 're_01kb2m3n4p5q6r7s8t9v0w1x2y', status: 'succeeded', amount: 393333, currency: 'INR', paymentId: 'pay_01kb2m3n4p5q6r7s8t9v0w1x2y', failureCode: null, failureMessage: null },
};

export const creditNoteSchema = z
  .object({
    id: z.string(),
    number: z.string().meta({ description: 'Gapless per financial year, its own series: CN/2627/0000001' }),
    accountId: z.string(),
    invoiceId: z.string(),
    invoiceNumber: z.string(),
    reason: z.string(),
    settlement: z.enum(['refund', 'credits', 'reduce_due']),
    currency: currencySchema,
    lines: z.array(z.object({ position: z.number().int(), description: z.string(), amount: minorUnitsSchema.meta({ description: 'Taxable value credited on this invoice line' }) })),
    subtotal: minorUnitsSchema.meta({ description: 'Taxable value credited' }),
    tax: z.object({ amount: minorUnitsSchema, components: z.array(componentSchema) }).meta({ description: 'The invoice\'s tax reversed in proportion' }),
    total: minorUnitsSchema,
    amountInWords: z.string(),
    issuedAt: z.date(),
    refund: refundSchema.nullable().meta({ description: 'For `settlement: refund`: the money going back' }),
  })
  .meta({ id: 'CreditNote', examples: [creditNoteExample] });

export type CreditNoteDto = z.infer<typeof creditNoteSchema>;

export const creditNoteListSchema = z.object({ data: z.array(creditNoteSchema) }).meta({ id: 'CreditNoteList' });

