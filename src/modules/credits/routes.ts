import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { decodeCursor, paginationQuerySchema } from '../../lib/pagination.js';
import { errorResponses } from '../../lib/problem.js';
import { principalOf } from '../../plugins/auth.js';
import { accountParamsSchema } from '../accounts/schemas.js';
import { adjustmentBodySchema, creditAlertSettingsSchema, creditAlertsSchema, creditsSchema, invariantReportSchema, ledgerPageSchema, usageBatchSchema, usageResultSchema } from './schemas.js';
import { paymentMethodInputSchema, paymentSchema, sandboxDescription } from '../payments/schemas.js';
import { invoiceSchema } from '../billing/schemas.js';
import { amountInputSchema } from '../../lib/money.js';
import type { PurchaseService } from './purchases.js';
import type { CreditsService } from './service.js';

const tags = ['Credits'];
const notFound = { 404: 'No such account, or not visible to this key (`account_not_found`)' };

const purchaseResultSchema = z
  .object({
    status: z.enum(['credited', 'failed', 'payment_unknown']),
    balance: z.number().int(),
    payment: paymentSchema,
    invoice: invoiceSchema.nullable(),
  })
  .meta({
    id: 'CreditPurchase',
    examples: [
      {
        status: 'credited',
        balance: 300000,
        payment: { ...(paymentSchema.meta()?.examples as Array<Record<string, unknown>>)[0], purpose: 'purchase', amount: 236000 },
        invoice: null,
      },
    ],
  });

export const creditsRoutes: FastifyPluginAsyncZod<{
  credits: CreditsService;
  purchases: PurchaseService;
  /** Told every balance a usage batch left, so cached authorization facts follow at once. */
  noteBalance?: (accountId: string, balance: number) => void;
}> = async (app, { credits, purchases, noteBalance }) => {
  app.post(
    '/v1/accounts/:accountId/credits/purchases',
    {
      config: { scope: 'write', idempotency: 'required', audit: 'credits.purchase' },
      schema: {
        tags,
        operationId: 'purchaseCredits',
        summary: 'Buy credits (top-up)',
        description:
          'Charges the given method, or the saved one, for the credits plus tax; the credits arrive only after the payment succeeded, ' +
          `with a paid invoice. A decline answers 402 \`payment_declined\`; a lost gateway answer 202 (retry with the same key). ${sandboxDescription}`,
        params: accountParamsSchema,
        body: z
          .object({
            // A paisa's worth of credits would still take a numbered tax invoice and a charge the gateways refuse (their minimum is ₹1 / $1).
            amount: amountInputSchema.min(100).meta({ description: 'Credits to buy, in minor units (paise, cents), tax added on top: at least 100 (₹1 / $1), at most 10^12' }),
            paymentMethod: paymentMethodInputSchema.optional(),
          })
          .meta({ id: 'PurchaseCredits', examples: [{ amount: 200000, paymentMethod: { type: 'upi', vpa: 'success@upi' } }] }),
        response: {
          201: purchaseResultSchema,
          202: purchaseResultSchema,
          ...errorResponses({
            ...notFound,
            402: 'The payment was declined (`payment_declined`)',
            409: 'Not on a paid plan (`paid_plan_required`), or the Idempotency-Key is in use',
            422: '`payment_method_not_allowed`, `idempotency_key_reused`',
          }),
        },
      },
    },
    async (request, reply) => {
      const result = await purchases.purchase(request.params.accountId, request.body, request.idempotency);
      return reply.status(result.status === 'payment_unknown' ? 202 : 201).send(result);
    },
  );

  app.put(
    '/v1/accounts/:accountId/credits/auto-recharge',
    {
      config: { scope: 'write', audit: 'credits.auto_recharge' },
      schema: {
        tags,
        operationId: 'setAutoRecharge',
        summary: 'Set auto-recharge',
        description:
          'When a debit leaves the balance below the threshold, the saved card or UPI method is charged for the amount (plus tax); ' +
          'one recharge at a time. A failed charge emails the account and is retried with a doubling pause; after ' +
          'AUTO_RECHARGE_MAX_FAILURES failures in a row auto-recharge switches itself off. Not while the account is limited.',
        params: accountParamsSchema,
        body: z
          .object({ enabled: z.boolean(), threshold: amountInputSchema, amount: amountInputSchema.min(1), paymentMethod: paymentMethodInputSchema.optional() })
          .meta({ id: 'AutoRechargeSettings', examples: [{ enabled: true, threshold: 50000, amount: 200000 }] }),
        response: {
          200: z.object({ enabled: z.boolean(), threshold: z.number().int(), amount: z.number().int() }).meta({ id: 'AutoRecharge', examples: [{ enabled: true, threshold: 50000, amount: 200000 }] }),
          ...errorResponses({ ...notFound, 422: 'Threshold not below the amount, or a method that cannot be charged unattended (`invalid_auto_recharge`)' }),
        },
      },
    },
    async (request) => purchases.setAutoRecharge(request.params.accountId, request.body),
  );

  app.get(
    '/v1/accounts/:accountId/credits',
    {
      config: { scope: 'read' },
      schema: { tags, operationId: 'getCredits', summary: 'Get the credit balance, what holds reserve of it, auto-recharge and alert settings', params: accountParamsSchema, response: { 200: creditsSchema, ...errorResponses(notFound) } },
    },
    async (request) => credits.getCredits(request.params.accountId),
  );

  app.put(
    '/v1/accounts/:accountId/credits/alerts',
    {
      config: { scope: 'write', audit: 'credits.alerts' },
      schema: {
        tags,
        operationId: 'setCreditAlerts',
        summary: 'Set the low-balance threshold and the depletion forecast\'s horizon',
        description:
          'credits.low_balance (with an email) goes out once when the available balance (balance less holds) falls under the threshold, ' +
          'and again only after credits lift it back; credits.depletion_forecast once when, at the rate of the last hour and day, credits ' +
          'would run out within the horizon, and again after the next purchase or recharge. null takes the defaults ' +
          '(LOW_BALANCE_THRESHOLD_INR / _USD, DEPLETION_FORECAST_HOURS). Changing a line arms its alert again.',
        params: accountParamsSchema,
        body: creditAlertSettingsSchema,
        response: { 200: creditAlertsSchema, ...errorResponses(notFound) },
      },
    },
    async (request) => credits.setAlerts(request.params.accountId, request.body),
  );

  app.get(
    '/v1/accounts/:accountId/credits/ledger',
    {
      config: { scope: 'read' },
      schema: {
        tags,
        operationId: 'listLedger',
        summary: 'List the credit ledger, newest first',
        description: 'Append-only: every purchase, upgrade credit, recharge, usage debit and ops adjustment, each with a unique source key.',
        params: accountParamsSchema,
        querystring: paginationQuerySchema,
        response: { 200: ledgerPageSchema, ...errorResponses(notFound) },
      },
    },
    async (request) => credits.listLedger(request.params.accountId, { before: decodeCursor(request.query.cursor), limit: request.query.limit }),
  );

  app.post(
    '/v1/accounts/:accountId/credits/adjustments',
    {
      config: { scope: 'ops', idempotency: 'required', audit: 'credits.adjust' },
      schema: {
        tags,
        operationId: 'adjustCredits',
        summary: 'Adjust credits with a reason (ops)',
        description: 'A new ledger entry, never an edit. A debit below zero is refused.',
        params: accountParamsSchema,
        body: adjustmentBodySchema,
        response: {
          201: creditsSchema,
          ...errorResponses({ ...notFound, 409: 'The debit would make the balance negative (`insufficient_credits`)', 422: 'The Idempotency-Key was used with another body (`idempotency_key_reused`)' }),
        },
      },
    },
    async (request, reply) =>
      reply.status(201).send(await credits.adjust(request.params.accountId, request.body, principalOf(request), request.headers['idempotency-key'] as string)),
  );

  app.post(
    '/v1/usage',
    {
      config: { scope: 'write', hot: true },
      schema: {
        tags: ['Usage'],
        operationId: 'rateUsage',
        summary: 'Rate and debit a batch of calls and SMS',
        description:
          'Up to 1,000 events. A voice call costs ceil(duration / pulse length) pulses at the plan\'s per-pulse rate; an SMS its ' +
          'segments at the per-SMS rate. Each event id debits once, whatever the retries: a repeated id answers its first result ' +
          'with `duplicate: true`. An event the balance cannot cover is rejected on its own (`insufficient_credits`) without ' +
          'failing the batch; so are events of a limited account (`account_limited`) or a plan that bills nothing (`not_billable`). ' +
          'Balances are checked against the available balance (balance less active holds). An event that names its `holdId` settles ' +
          'that hold: the hold is freed and the event\'s price debited from what is then available, once; a call that outran its hold ' +
          'and the balance debits all there is and reports the rest as `shortfall`. A hold that has ended (or is another account\'s) ' +
          'is ignored and the event rated as any other; so is another kind\'s hold (a call\'s hold settles only a voice_call, an SMS\'s an sms).',
        body: usageBatchSchema,
        response: { 200: usageResultSchema, ...errorResponses() },
      },
    },
    async (request) => {
      const result = await credits.rateUsage(request.body, principalOf(request));
      for (const { accountId, available } of result.balances) noteBalance?.(accountId, available);
      return result;
    },
  );

  app.get(
    '/v1/ops/ledger-invariants',
    {
      config: { scope: 'ops' },
      schema: {
        tags: ['Operations'],
        operationId: 'checkLedgerInvariants',
        summary: 'Check the credit ledger\'s invariants (ops)',
        description: 'For one account or all: balance = sum of ledger, never negative, one credit per paid credit purchase, no credit without its payment.',
        querystring: z.object({ accountId: z.string().regex(/^acc_[0-9a-z]{26}$/).optional() }),
        response: { 200: invariantReportSchema, ...errorResponses() },
      },
    },
    async (request) => credits.checkInvariants(request.query.accountId),
  );
};
