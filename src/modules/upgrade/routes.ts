import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { errorResponses } from '../../lib/problem.js';
import { accountParamsSchema } from '../accounts/schemas.js';
import { sandboxDescription } from '../payments/schemas.js';
import { quoteRequestSchema, quoteSchema, upgradeRequestSchema, upgradeResultSchema } from './schemas.js';
import type { UpgradeService } from './service.js';

const refusals =
  'Refusals, each with nothing written: `kyc_not_approved`, `account_not_in_trial`, `upgrade_in_progress` (409); ' +
  '`plan_not_found` (404); `plan_not_offered`, `currency_not_priced`, `addon_not_available`, `initial_credits_below_minimum`, ' +
  '`payment_method_not_allowed`, `invalid_auto_recharge` (422).';

export const upgradeRoutes: FastifyPluginAsyncZod<{ upgrades: UpgradeService }> = async (app, { upgrades }) => {
  app.post(
    '/v1/accounts/:accountId/upgrade/quote',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['Upgrade'],
        operationId: 'quoteUpgrade',
        summary: 'Review the plan summary before upgrading',
        description:
          'Prices the upgrade without writing anything: plan fee for the first period (monthly minimum x months x (1 - cycle discount)), ' +
          'the WhatsApp add-on when chosen, the initial credits, tax as its own line, and the total; the first period; the entitlements ' +
          'after the upgrade; the payment methods this account may use for this plan and cycle; and `blockers` naming anything that ' +
          'would make the upgrade refuse now.',
        params: accountParamsSchema,
        body: quoteRequestSchema,
        response: {
          200: quoteSchema,
          ...errorResponses({
            404: 'No such account or plan (`account_not_found`, `plan_not_found`)',
            422: 'Not priceable: `plan_not_offered`, `currency_not_priced`, `addon_not_available`',
          }),
        },
      },
    },
    async (request) => upgrades.quote(request.params.accountId, request.body),
  );

  app.post(
    '/v1/accounts/:accountId/upgrade',
    {
      config: { scope: 'write', idempotency: 'required', audit: 'account.upgrade' },
      schema: {
        tags: ['Upgrade'],
        operationId: 'upgradeAccount',
        summary: 'Upgrade a trial to a paid plan',
        description:
          'Card, UPI or net banking: charged at once; on success the account is active on the plan (201 `active`) with its ' +
          'subscription, paid invoice, credits and a confirmation email. A decline answers 402 `payment_declined` with the reason ' +
          'and leaves the account in trial. If the gateway does not answer, 202 `payment_unknown`: retry with the same ' +
          'Idempotency-Key to learn the outcome. Wire transfer and cheque (Enterprise, annual): 201 `pending_payment` with an ' +
          `open invoice until ops confirm the money. ${refusals} ${sandboxDescription}`,
        params: accountParamsSchema,
        body: upgradeRequestSchema,
        response: {
          201: upgradeResultSchema,
          202: upgradeResultSchema,
          ...errorResponses({
            402: 'The payment was declined (`payment_declined`, with `declineCode` and `paymentId`)',
            404: 'No such account or plan (`account_not_found`, `plan_not_found`)',
            409: 'Refused by state: `kyc_not_approved`, `account_not_in_trial`, `upgrade_in_progress`, `idempotency_request_in_progress`',
            422: 'Refused by rule: `plan_not_offered`, `currency_not_priced`, `addon_not_available`, `initial_credits_below_minimum`, `payment_method_not_allowed`, `invalid_auto_recharge`, `idempotency_key_reused`',
          }),
        },
      },
    },
    async (request, reply) => {
      const result = await upgrades.upgrade(request.params.accountId, request.body, request.idempotency);
      return reply.status(result.status === 'payment_unknown' ? 202 : 201).send(result);
    },
  );
};
