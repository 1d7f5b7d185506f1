import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { decodeCursor, paginationQuerySchema } from '../../lib/pagination.js';
import { errorResponses } from '../../lib/problem.js';
import { principalOf } from '../../plugins/auth.js';
import { accountParamsSchema } from '../accounts/schemas.js';
import { paymentResultSchema } from './result.js';
import { confirmPaymentBodySchema, paymentIdSchema, paymentSchema } from './schemas.js';
import type { PaymentsService } from './service.js';

const paymentListSchema = z
  .object({ data: z.array(paymentSchema), nextCursor: z.string().nullable() })
  .meta({ id: 'PaymentList', examples: [{ data: [(paymentSchema.meta()?.examples as unknown[])[0]], nextCursor: null }] });

/** Payments of every purpose: read one, list an account's, and record money paid offline. */
export const paymentRoutes: FastifyPluginAsyncZod<{ payments: PaymentsService }> = async (app, { payments }) => {
  app.get(
    '/v1/accounts/:accountId/payments',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['Payments'],
        operationId: 'listPayments',
        summary: 'List the account\'s payments, newest first',
        description: 'Every purpose: upgrade, renewal, credit purchase, auto-recharge. Cursor paginated.',
        params: accountParamsSchema,
        querystring: paginationQuerySchema,
        response: { 200: paymentListSchema, ...errorResponses({ 404: 'No such account (`account_not_found`)' }) },
      },
    },
    async (request) => payments.listForAccount(request.params.accountId, { before: decodeCursor(request.query.cursor), limit: request.query.limit }),
  );

  app.get(
    '/v1/payments/:paymentId',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['Payments'],
        operationId: 'getPayment',
        summary: 'Get a payment',
        params: z.object({ paymentId: paymentIdSchema }),
        response: { 200: paymentSchema, ...errorResponses({ 404: 'No such payment, or not visible to this key (`payment_not_found`)' }) },
      },
    },
    async (request) => payments.get(request.params.paymentId, principalOf(request)),
  );

  app.post(
    '/v1/payments/:paymentId/confirm',
    {
      config: { scope: 'ops', idempotency: 'optional', audit: 'payment.confirm' },
      schema: {
        tags: ['Payments'],
        operationId: 'confirmOfflinePayment',
        summary: 'Record a wire transfer or cheque (ops)',
        description:
          'The payment succeeds and its invoice is paid. An upgrade completes: the subscription starts, the credits are added and the ' +
          'account becomes active. A renewal paid offline ends its dunning. Confirming a payment already confirmed with the same ' +
          'reference answers the same result again.',
        params: z.object({ paymentId: paymentIdSchema }),
        body: confirmPaymentBodySchema,
        response: {
          200: paymentResultSchema,
          ...errorResponses({
            404: 'No such payment (`payment_not_found`)',
            409: 'Not awaiting an offline payment (`payment_not_confirmable`)',
            422: 'The amount differs from the amount due (`payment_amount_mismatch`)',
          }),
        },
      },
    },
    async (request) => payments.confirmOffline(request.params.paymentId, request.body),
  );
};
