import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponses } from '../../lib/problem.js';
import { assertAccountVisible, principalOf } from '../../plugins/auth.js';
import {
  billingCycleListSchema,
  createCustomPlanBodySchema,
  createPlanVersionBodySchema,
  listPlansQuerySchema,
  planIdSchema,
  planListSchema,
  planSchema,
} from './schemas.js';
import type { CatalogService } from './service.js';

const tags = ['Catalog'];

export const catalogRoutes: FastifyPluginAsyncZod<{ catalog: CatalogService }> = async (app, { catalog }) => {
  app.get(
    '/v1/plans',
    {
      config: { scope: 'read' },
      schema: {
        tags,
        operationId: 'listPlans',
        summary: 'List the plans on offer',
        description:
          'The current version of each standard plan (Starter, Growth, Enterprise) with its entitlements and prices per currency, ' +
          'plus the custom Enterprise plans offered to the given account. A key bound to an account always sees that account\'s offers.',
        querystring: listPlansQuerySchema,
        response: { 200: planListSchema, ...errorResponses({ 404: 'Unknown account (`account_not_found`)' }) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      if (request.query.accountId) assertAccountVisible(principal, request.query.accountId);
      const accountId = principal.accountId ?? request.query.accountId ?? null;
      if (request.query.accountId) await catalog.assertAccountExists(request.query.accountId);
      return { data: await catalog.listPlans({ accountId, currency: request.query.currency }), nextCursor: null };
    },
  );

  app.get(
    '/v1/plans/:planId',
    {
      config: { scope: 'read' },
      schema: {
        tags,
        operationId: 'getPlan',
        summary: 'Get one plan version',
        description: 'Any version, including superseded ones that existing subscribers still pay.',
        params: z.object({ planId: planIdSchema }),
        response: { 200: planSchema, ...errorResponses({ 404: 'No such plan (`plan_not_found`)' }) },
      },
    },
    async (request) => catalog.getPlan(request.params.planId, principalOf(request)),
  );

  app.post(
    '/v1/plans/custom',
    {
      config: { scope: 'ops', idempotency: 'optional', audit: 'plan.custom_create' },
      schema: {
        tags,
        operationId: 'createCustomPlan',
        summary: 'Offer a custom Enterprise plan to one account (ops)',
        description:
          'Enterprise entitlements with custom ExoPhone limit, recording retention, SLA and API rate limit, and custom prices. ' +
          'Only the named account sees and may buy it. A price in the account currency is required.',
        body: createCustomPlanBodySchema,
        response: {
          201: planSchema,
          ...errorResponses({
            404: 'No such account (`account_not_found`)',
            409: 'A request with this Idempotency-Key is still running (`idempotency_request_in_progress`)',
            422: 'No price in the account currency (`currency_not_priced`), or the Idempotency-Key was used with another body (`idempotency_key_reused`)',
          }),
        },
      },
    },
    async (request, reply) => reply.status(201).send(await catalog.createCustomPlan(request.body)),
  );

  app.post(
    '/v1/plans/:planId/versions',
    {
      config: { scope: 'ops', audit: 'plan.version_create' },
      schema: {
        tags,
        operationId: 'createPlanVersion',
        summary: 'Change a plan\'s prices by making a new version (ops)',
        description:
          'Supersedes the given current version with a new one. Existing subscribers keep the version they bought; ' +
          'new purchases get the new one. Naming a superseded version answers 409 so two operators cannot overwrite each other.',
        params: z.object({ planId: planIdSchema }),
        body: createPlanVersionBodySchema,
        response: {
          201: planSchema,
          ...errorResponses({
            404: 'No such plan (`plan_not_found`)',
            409: 'Not the current version (`plan_version_conflict`)',
            422: 'A currency of the replaced version has no price (`currency_not_priced`)',
          }),
        },
      },
    },
    async (request, reply) => reply.status(201).send(await catalog.createPlanVersion(request.params.planId, request.body)),
  );

  app.get(
    '/v1/billing-cycles',
    {
      config: { scope: 'read' },
      schema: {
        tags,
        operationId: 'listBillingCycles',
        summary: 'List billing cycles and their discounts',
        description: 'Plan fee for a period = monthly minimum x months x (1 - discount).',
        response: { 200: billingCycleListSchema, ...errorResponses() },
      },
    },
    async () => ({ data: await catalog.listBillingCycles(), nextCursor: null }),
  );
};
