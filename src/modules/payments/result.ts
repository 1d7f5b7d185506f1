import { z } from 'zod';
import { accountSchema } from '../accounts/schemas.js';
import { invoiceSchema } from '../billing/schemas.js';
import { subscriptionSchema } from '../subscriptions/schemas.js';
import { paymentSchema } from './schemas.js';

const exampleOf = (schema: z.ZodType): Record<string, any> => (schema.meta()?.examples as Record<string, unknown>[])[0]!;

/**
 * A payment with what it bought, as an upgrade and an offline confirmation answer it. Its own
 * file: payments/schemas.ts is imported by the subscription schemas this one needs.
 */
export const paymentResultSchema = z
  .object({
    status: z
      .enum(['active', 'pending_payment', 'payment_unknown'])
      .meta({
        description:
          '`active`: paid (an upgrade: upgraded). `pending_payment`: wire transfer or cheque, the invoice is open until ops confirm the money. ' +
          '`payment_unknown`: the gateway did not answer; the payment is reconciled before anything else is tried (retry with the same Idempotency-Key).',
      }),
    account: accountSchema,
    subscription: subscriptionSchema.nullable(),
    invoice: invoiceSchema.nullable(),
    payment: paymentSchema,
  })
  .meta({
    id: 'PaymentResult',
    description: 'A payment with what it bought: the account, its subscription once paid, and the invoice',
    examples: [
      {
        status: 'active',
        account: { ...exampleOf(accountSchema), status: 'active', planId: 'plan_starter_v1' },
        subscription: exampleOf(subscriptionSchema),
        invoice: exampleOf(invoiceSchema),
        payment: exampleOf(paymentSchema),
      },
    ],
  });

export type PaymentResult = z.infer<typeof paymentResultSchema>;
