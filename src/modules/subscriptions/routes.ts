import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponses } from '../../lib/problem.js';
import { principalOf } from '../../plugins/auth.js';
import { billingCycleBodySchema, planChangeBodySchema, planChangeResultSchema, subscriptionIdSchema, subscriptionSchema, scheduledSubscriptionSchema } from './schemas.js';
import type { SubscriptionsService } from './service.js';

const tags = ['Subscriptions'];
const params = z.object({ subscriptionId: subscriptionIdSchema });
const notFound = { 404: 'No such subscription, or not visible to this key (`subscription_not_found`)' };

export const subscriptionRoutes: FastifyPluginAsyncZod<{ subscriptions: SubscriptionsService }> = async (app, { subscriptions }) => {
  app.get(
    '/v1/subscriptions/:subscriptionId',
    {
      config: { scope: 'read' },
      schema: { tags, operationId: 'getSubscriptionById', summary: 'Get a subscription', params, response: { 200: subscriptionSchema, ...errorResponses(notFound) } },
    },
    async (request) => subscriptions.get(request.params.subscriptionId, principalOf(request)),
  );

  app.post(
    '/v1/subscriptions/:subscriptionId/plan-change',
    {
      config: { scope: 'write', audit: 'subscription.plan_change' },
      schema: {
        tags,
        operationId: 'schedulePlanChange',
        summary: 'Schedule an upgrade or downgrade for the next period',
        description:
          'Takes effect at the start of the next billing period. A new request replaces the scheduled one. The answer lists the ' +
          'entitlements that will change and the conflicts a downgrade creates (it is accepted; after it applies, new purchases ' +
          'over a limit are refused).',
        params,
        body: planChangeBodySchema,
        response: {
          200: planChangeResultSchema,
          ...errorResponses({
            ...notFound,
            409: 'Already on this plan (`plan_unchanged`), not active (`subscription_not_active`), or the period ended and its renewal is pending (`renewal_pending`)',
            422: 'Not on offer (`plan_not_offered`), not priced in the account currency (`currency_not_priced`), or the payment method is not allowed on it (`payment_method_not_allowed`)',
          }),
        },
      },
    },
    async (request) => subscriptions.schedulePlanChange(request.params.subscriptionId, principalOf(request), request.body.planId),
  );

  app.delete(
    '/v1/subscriptions/:subscriptionId/scheduled-change',
    {
      config: { scope: 'write', audit: 'subscription.plan_change_withdraw' },
      schema: {
        tags,
        operationId: 'withdrawPlanChange',
        summary: 'Withdraw the scheduled plan change',
        params,
        response: { 200: subscriptionSchema, ...errorResponses({ 404: 'No such subscription, or no change scheduled (`no_scheduled_change`)' }) },
      },
    },
    async (request) => subscriptions.withdrawPlanChange(request.params.subscriptionId, principalOf(request)),
  );

  app.post(
    '/v1/subscriptions/:subscriptionId/billing-cycle',
    {
      config: { scope: 'ops', audit: 'subscription.billing_cycle' },
      schema: {
        tags,
        operationId: 'scheduleBillingCycle',
        summary: 'Switch the billing cycle at the next renewal (ops, on request to support)',
        params,
        body: billingCycleBodySchema,
        response: {
          200: scheduledSubscriptionSchema,
          ...errorResponses({
            ...notFound,
            409: 'Already on this cycle (`billing_cycle_unchanged`), not active (`subscription_not_active`), or renewal pending (`renewal_pending`)',
            422: 'The payment method is not allowed on that cycle (`payment_method_not_allowed`)',
          }),
        },
      },
    },
    async (request) => subscriptions.scheduleBillingCycle(request.params.subscriptionId, request.body.billingCycle),
  );

  app.post(
    '/v1/subscriptions/:subscriptionId/cancel',
    {
      config: { scope: 'write', audit: 'subscription.cancel' },
      schema: {
        tags,
        operationId: 'cancelSubscription',
        summary: 'Cancel at the end of the current period',
        description: 'The account stays active to the period end, then becomes limited (no outbound calls or SMS; credits and data kept). Withdraw with resume.',
        params,
        response: { 200: subscriptionSchema, ...errorResponses({ ...notFound, 409: 'Not active (`subscription_not_active`)' }) },
      },
    },
    async (request) => subscriptions.cancel(request.params.subscriptionId, principalOf(request)),
  );

  app.post(
    '/v1/subscriptions/:subscriptionId/resume',
    {
      config: { scope: 'write', audit: 'subscription.resume' },
      schema: {
        tags,
        operationId: 'resumeSubscription',
        summary: 'Withdraw a scheduled cancellation',
        params,
        response: { 200: subscriptionSchema, ...errorResponses({ ...notFound, 409: 'No cancellation scheduled (`subscription_not_cancelling`)' }) },
      },
    },
    async (request) => subscriptions.resume(request.params.subscriptionId, principalOf(request)),
  );
};
