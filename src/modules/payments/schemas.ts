import { z } from 'zod';
import { amountInputSchema, currencySchema, minorUnitsSchema } from '../../lib/money.js';

export const paymentMethodTypeSchema = z.enum(['card', 'upi', 'netbanking', 'wire_transfer', 'cheque']);

export const sandboxDescription =
  'Sandbox test values. Cards: `tok_visa`, `tok_mastercard`, `tok_rupay` succeed; `tok_chargeDeclined` is declined ' +
  '(`card_declined`); `tok_chargeDeclinedInsufficientFunds` lacks funds (`insufficient_funds`); `tok_timeout` charges but ' +
  'the answer is lost, so the payment is `unknown` until reconciled (it then succeeds); `tok_chargeCustomerFail` pays the upgrade ' +
  'and declines every later unattended charge (renewals); `tok_refundDeclined` pays, but refunds of it fail (`refund_declined`). ' +
  'Any other token is refused (`invalid_card_token`). UPI: VPA `success@upi` succeeds, `failure@upi` fails, any other VPA ' +
  'is not found (`upi_vpa_not_found`). Net banking: any bank code succeeds except `FAIL`.';

export const paymentMethodInputSchema = z
  .discriminatedUnion('type', [
    z.object({
      type: z.literal('card'),
      token: z.string().min(1).max(200).meta({ description: 'A card token from the gateway (Visa, Mastercard, RuPay)', examples: ['tok_visa'] }),
    }),
    z.object({
      type: z.literal('upi'),
      vpa: z.string().regex(/^[\w.-]{2,256}@[\w.-]{2,64}$/, 'must be a VPA such as name@bank').meta({ examples: ['success@upi'] }),
      app: z.enum(['google_pay', 'phonepe', 'paytm']).optional(),
    }),
    z.object({
      type: z.literal('netbanking'),
      bankCode: z.string().regex(/^[A-Z0-9]{2,12}$/, 'must be a bank code such as HDFC').meta({ examples: ['HDFC'] }),
    }),
    z.object({ type: z.literal('wire_transfer') }),
    z.object({ type: z.literal('cheque') }),
  ])
  .meta({ id: 'PaymentMethodInput', description: `How to pay. ${sandboxDescription}` });

export type PaymentMethodInput = z.infer<typeof paymentMethodInputSchema>;

export const paymentSchema = z
  .object({
    id: z.string(),
    accountId: z.string(),
    purpose: z.enum(['upgrade', 'renewal', 'purchase', 'recharge']).meta({ description: 'What the payment is for' }),
    status: z
      .enum(['processing', 'unknown', 'succeeded', 'failed', 'awaiting_confirmation'])
      .meta({ description: '`unknown`: the gateway did not answer; it is reconciled before anything else is tried' }),
    amount: minorUnitsSchema,
    currency: currencySchema,
    methodType: paymentMethodTypeSchema,
    invoiceId: z.string().nullable(),
    failureCode: z.string().nullable(),
    failureMessage: z.string().nullable(),
    offlineReference: z.string().nullable().meta({ description: 'Wire or cheque reference recorded by ops' }),
    createdAt: z.date(),
    updatedAt: z.date(),
  })
  .meta({
    id: 'Payment',
    examples: [
      {
        id: 'pay_01kb2m3n4p5q6r7s8t9v0w1x2y',
        accountId: 'acc_01kb2m3n4p5q6r7s8t9v0w1x2y',
        purpose: 'upgrade',
        status: 'succeeded',
        amount: 1076750,
        currency: 'INR',
        methodType: 'card',
        invoiceId: 'inv_01kb2m3n4p5q6r7s8t9v0w1x2y',
        failureCode: null,
        failureMessage: null,
        offlineReference: null,
        createdAt: '2026-11-26T10:00:00.000Z',
        updatedAt: '2026-11-26T10:00:00.000Z',
      },
    ],
  });

export type PaymentDto = z.infer<typeof paymentSchema>;

export const paymentIdSchema = z.string().regex(/^pay_[0-9a-z]{26}$/, 'not a payment id');

export const confirmPaymentBodySchema = z
  .object({
    reference: z.string().trim().min(1).max(200).meta({ description: 'Bank transfer UTR or cheque number' }),
    amount: amountInputSchema.optional().meta({ description: 'When given, must equal the amount due' }),
  })
  .meta({ id: 'ConfirmPayment', examples: [{ reference: 'UTR HDFC0000123456', amount: 1038980 }] });

export const paymentMethodIdSchema = z.string().regex(/^pm_[0-9a-z]{26}$/, 'not a payment method id');

const mandateSchema = z
  .object({
    maxAmount: minorUnitsSchema.meta({ description: 'The most one unattended charge may take (paise, tax included)' }),
    validUntil: z.date().nullable().meta({ description: 'When the mandate ends; null: no end' }),
  })
  .meta({ description: 'Indian e-mandate (card and UPI in INR): renewals and auto-recharge above it need the customer' });

export const savedPaymentMethodSchema = z
  .object({
    id: z.string(),
    accountId: z.string(),
    type: paymentMethodTypeSchema,
    label: z.string().nullable().meta({ description: 'Card brand, masked VPA (`ra***@okhdfc`) or bank code: never the token or the whole VPA' }),
    last4: z.string().nullable().meta({ description: 'Card: its last four digits' }),
    isDefault: z.boolean().meta({ description: 'Renewals and auto-recharge charge the default method' }),
    mandate: mandateSchema.nullable(),
    createdAt: z.date(),
  })
  .meta({
    id: 'SavedPaymentMethod',
    examples: [
      {
        id: 'pm_01kb2m3n4p5q6r7s8t9v0w1x2y',
        accountId: 'acc_01kb2m3n4p5q6r7s8t9v0w1x2y',
        type: 'card',
        label: 'visa',
        last4: '4242',
        isDefault: true,
        mandate: { maxAmount: 1500000, validUntil: null },
        createdAt: '2026-11-26T10:00:00.000Z',
      },
    ],
  });

export type SavedPaymentMethodDto = z.infer<typeof savedPaymentMethodSchema>;

export const addPaymentMethodBodySchema = z
  .object({
    paymentMethod: z
      .discriminatedUnion('type', [
        paymentMethodInputSchema.options[0],
        paymentMethodInputSchema.options[1],
        paymentMethodInputSchema.options[2],
      ])
      .meta({ description: `Card, UPI or net banking (wire transfer and cheque are not saved). ${sandboxDescription}` }),
    makeDefault: z.boolean().optional().meta({ description: 'Charge it for renewals and auto-recharge from now on (the first method always is)' }),
    mandate: z
      .object({
        maxAmount: amountInputSchema.min(1).optional().meta({ description: 'Default: the cap (MANDATE_CAP_INR, INR 15,000)' }),
        validUntil: z.iso.datetime({ offset: true }).optional().meta({ description: 'Default: no end' }),
        authenticated: z
          .boolean()
          .optional()
          .meta({ description: 'The customer passed the additional authentication a mandate above the cap needs (RBI)' }),
      })
      .optional()
      .meta({ description: 'Indian card and UPI methods only' }),
  })
  .meta({
    id: 'AddPaymentMethod',
    examples: [{ paymentMethod: { type: 'card', token: 'tok_visa' }, makeDefault: true, mandate: { maxAmount: 1500000 } }],
  });

export type AddPaymentMethodBody = z.infer<typeof addPaymentMethodBodySchema>;

export const payInvoiceBodySchema = z
  .object({
    paymentMethodId: paymentMethodIdSchema.optional().meta({ description: 'One of the account\'s saved methods' }),
    paymentMethod: addPaymentMethodBodySchema.shape.paymentMethod.optional().meta({ description: 'A new method: saved (the default only when the account has none) and charged' }),
  })
  .refine((b) => !(b.paymentMethodId && b.paymentMethod), { message: 'give paymentMethodId or paymentMethod, not both' })
  .meta({
    id: 'PayInvoice',
    description: 'Without either, the account\'s default method is charged.',
    examples: [{}, { paymentMethodId: 'pm_01kb2m3n4p5q6r7s8t9v0w1x2y' }, { paymentMethod: { type: 'card', token: 'tok_visa' } }],
  });

export const recordOfflineBodySchema = confirmPaymentBodySchema
  .extend({ methodType: z.enum(['wire_transfer', 'cheque']).meta({ description: 'How the money came' }) })
  .meta({ id: 'RecordOfflinePayment', examples: [{ reference: 'NEFT HDFCN52026120212345', amount: 3363000, methodType: 'wire_transfer' }] });
