import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { decodeCursor, paginationQuerySchema } from '../../lib/pagination.js';
import { errorResponses } from '../../lib/problem.js';
import { principalOf } from '../../plugins/auth.js';
import { accountParamsSchema } from '../accounts/schemas.js';
import { paymentResultSchema } from './result.js';
import { invoiceIdSchema } from '../billing/schemas.js';
import type { InvoicePayments } from './invoice-payments.js';
import type { PaymentMethodsService } from './methods-service.js';
import { addPaymentMethodBodySchema, confirmPaymentBodySchema, payInvoiceBodySchema, recordOfflineBodySchema, paymentIdSchema, paymentMethodIdSchema, paymentSchema, sandboxDescription, savedPaymentMethodSchema } from './schemas.js';
import type { PaymentsService } from './service.js';

const paymentListSchema = z
  .object({ data: z.array(paymentSchema), nextCursor: z.string().nullable() })
  .meta({ id: 'PaymentList', examples: [{ data: [(paymentSchema.meta()?.examples as unknown[])[0]], nextCursor: null }] });

/** Payments of every purpose: read one, list an account's, and record money paid offline. */
export const paymentRoutes: FastifyPluginAsyncZod<{ payments: PaymentsService; methods: PaymentMethodsService; invoicePayments: InvoicePayments }> = async (
  app,
  { payments, methods, invoicePayments },
) => {
  app.post(
    '/v1/invoices/:invoiceId/pay',
    {
      config: { scope: 'write', idempotency: 'required', audit: 'invoice.pay' },
      schema: {
        tags: ['Invoices'],
        operationId: 'payInvoice',
        summary: 'Pay an open invoice now',
        description:
          'For a renewal declined in dunning, or one waiting for the customer (`actionRequired`: above the e-mandate, the mandate ' +
          'ended, no method); an auto-recharge of credits waiting for the customer (paid: the credits are added once); or an upgrade ' +
          'invoice awaiting a wire transfer or cheque, paid by card instead (the upgrade completes and the awaited payment is ' +
          'superseded). Charges the given method, a saved one, or the default, with the customer present (no e-mandate limit). ' +
          'Paid: the invoice is paid, the account is `active` at once, dunning stops and its pending retry charges nothing. A decline answers 402 and ' +
          'leaves the invoice and its schedule as they were. One charge of an invoice at a time: another pay, or a dunning retry, ' +
          `meanwhile answers 409 \`invoice_payment_in_progress\`. ${sandboxDescription}`,
        params: z.object({ invoiceId: invoiceIdSchema }),
        body: payInvoiceBodySchema,
        response: {
          201: paymentResultSchema,
          202: paymentResultSchema,
          ...errorResponses({
            402: 'The payment was declined (`payment_declined`, with `declineCode` and `paymentId`)',
            404: 'No such invoice or payment method (`invoice_not_found`, `payment_method_not_found`)',
            409: '`invoice_not_payable` (not open, or not a kind paid this way), `invoice_payment_in_progress`, `idempotency_request_in_progress`',
            422: '`payment_method_required` (no default), `payment_method_not_allowed`, `idempotency_key_reused`',
          }),
        },
      },
    },
    async (request, reply) => {
      const result = await invoicePayments.pay(request.params.invoiceId, principalOf(request), request.body, request.idempotency);
      return reply.status(result.status === 'payment_unknown' ? 202 : 201).send(result);
    },
  );

  const methodParams = accountParamsSchema.extend({ methodId: paymentMethodIdSchema });
  const methodNotFound = { 404: 'No such account or payment method (`account_not_found`, `payment_method_not_found`)' };

  app.get(
    '/v1/accounts/:accountId/payment-methods',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['Payment methods'],
        operationId: 'listPaymentMethods',
        summary: 'List the account\'s saved payment methods',
        params: accountParamsSchema,
        response: {
          200: z.object({ data: z.array(savedPaymentMethodSchema), nextCursor: z.string().nullable() }).meta({ id: 'SavedPaymentMethodList' }),
          ...errorResponses({ 404: 'No such account (`account_not_found`)' }),
        },
      },
    },
    async (request) => methods.list(request.params.accountId),
  );

  app.post(
    '/v1/accounts/:accountId/payment-methods',
    {
      config: { scope: 'write', idempotency: 'optional', audit: 'payment_method.add' },
      schema: {
        tags: ['Payment methods'],
        operationId: 'addPaymentMethod',
        summary: 'Save a card, UPI or net banking method',
        description:
          'Saved with the gateway and kept as its reusable reference: the card token or the whole VPA is never stored or shown. ' +
          'The account\'s first method, or one added with `makeDefault`, becomes the default that renewals and auto-recharge charge. ' +
          'An Indian card or UPI method carries an e-mandate: at most the cap (INR 15,000) per unattended charge unless the customer ' +
          'authenticated a higher amount, and optionally an end date.',
        params: accountParamsSchema,
        body: addPaymentMethodBodySchema,
        response: {
          201: savedPaymentMethodSchema,
          ...errorResponses({
            404: 'No such account (`account_not_found`)',
            422: '`payment_method_not_allowed` (UPI and net banking: India only), `mandate_above_cap`, `mandate_not_applicable`',
            503: 'The gateway could not save the method (`service_unavailable`); retry',
          }),
        },
      },
    },
    async (request, reply) => reply.status(201).send(await methods.add(request.params.accountId, request.body)),
  );

  app.post(
    '/v1/accounts/:accountId/payment-methods/:methodId/default',
    {
      config: { scope: 'write', audit: 'payment_method.default' },
      schema: {
        tags: ['Payment methods'],
        operationId: 'makePaymentMethodDefault',
        summary: 'Charge this method for renewals and auto-recharge from now on',
        description: 'The live subscription charges it at its next renewal or dunning retry; auto-recharge too when it is a card or UPI.',
        params: methodParams,
        response: { 200: savedPaymentMethodSchema, ...errorResponses(methodNotFound) },
      },
    },
    async (request) => methods.makeDefault(request.params.accountId, request.params.methodId),
  );

  app.delete(
    '/v1/accounts/:accountId/payment-methods/:methodId',
    {
      config: { scope: 'write', audit: 'payment_method.remove' },
      schema: {
        tags: ['Payment methods'],
        operationId: 'removePaymentMethod',
        summary: 'Remove a saved payment method',
        params: methodParams,
        response: {
          204: z.undefined().describe('Removed'),
          ...errorResponses({
            ...methodNotFound,
            409: '`payment_method_is_default` (make another the default first), `payment_method_in_use` (the only method of a live subscription, or auto-recharge\'s)',
          }),
        },
      },
    },
    async (request, reply) => {
      await methods.remove(request.params.accountId, request.params.methodId);
      return reply.status(204).send();
    },
  );

  app.post(
    '/v1/invoices/:invoiceId/offline-payments',
    {
      config: { scope: 'ops', idempotency: 'optional', audit: 'invoice.record_offline' },
      schema: {
        tags: ['Invoices'],
        operationId: 'recordOfflinePayment',
        summary: 'Record a wire transfer or cheque received for an open invoice (ops)',
        description:
          'For a renewal invoice the customer settled by bank transfer (NEFT, RTGS, IMPS) or cheque instead of paying by card: the ' +
          'invoice is paid, the account `active`, dunning over; for an auto-recharge invoice waiting for the customer: paid, the ' +
          'credits added. An invoice with a payment awaiting money (an upgrade or renewal by ' +
          'wire) is confirmed through that payment, as POST /v1/payments/{id}/confirm does. The same reference again answers the same.',
        params: z.object({ invoiceId: invoiceIdSchema }),
        body: recordOfflineBodySchema,
        response: {
          200: paymentResultSchema,
          ...errorResponses({
            404: 'No such invoice (`invoice_not_found`)',
            409: '`invoice_not_payable`, `invoice_payment_in_progress` (a card charge of it is in flight), `payment_not_confirmable`',
            422: 'The amount differs from the amount due (`payment_amount_mismatch`)',
          }),
        },
      },
    },
    async (request) => payments.recordOffline(request.params.invoiceId, principalOf(request), request.body),
  );

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
