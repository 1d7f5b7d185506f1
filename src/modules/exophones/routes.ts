import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponses } from '../../lib/problem.js';
import { accountParamsSchema, e164Schema } from '../accounts/schemas.js';
import type { ExophonesService } from './service.js';

const tags = ['ExoPhones'];
const exophoneSchema = z
  .object({ id: z.string(), number: z.string(), purchasedAt: z.date() })
  .meta({ id: 'ExoPhone', examples: [{ id: 'exo_01kb2m3n4p5q6r7s8t9v0w1x2y', number: '+918045678901', purchasedAt: '2026-11-26T10:10:00.000Z' }] });

export const exophonesRoutes: FastifyPluginAsyncZod<{ exophones: ExophonesService }> = async (app, { exophones }) => {
  app.get(
    '/v1/accounts/:accountId/exophones',
    {
      config: { scope: 'read' },
      schema: {
        tags,
        operationId: 'listExophones',
        summary: 'List the account\'s production ExoPhones and its limit',
        params: accountParamsSchema,
        response: {
          200: z
            .object({ data: z.array(exophoneSchema), limit: z.number().int().nullable().meta({ description: 'null: unlimited' }), trialNumbers: z.number().int() })
            .meta({ id: 'ExoPhoneList', examples: [{ data: [{ id: 'exo_01kb2m3n4p5q6r7s8t9v0w1x2y', number: '+918045678901', purchasedAt: '2026-11-26T10:10:00.000Z' }], limit: 5, trialNumbers: 0 }] }),
          ...errorResponses({ 404: 'No such account (`account_not_found`)' }),
        },
      },
    },
    async (request) => exophones.list(request.params.accountId),
  );

  app.post(
    '/v1/accounts/:accountId/exophones',
    {
      config: { scope: 'write', idempotency: 'optional' },
      schema: {
        tags,
        operationId: 'purchaseExophone',
        summary: 'Record a purchased production ExoPhone',
        description: 'Needs approved KYC and an active paid plan, within the plan\'s limit. 201 when added, 200 when the account already has it.',
        params: accountParamsSchema,
        body: z.object({ number: e164Schema }).meta({ id: 'PurchaseExophone', examples: [{ number: '+918045678901' }] }),
        response: {
          200: exophoneSchema,
          201: exophoneSchema,
          ...errorResponses({
            404: 'No such account (`account_not_found`)',
            409: '`kyc_not_approved`, `paid_plan_required`, `exophone_limit_reached`, `exophone_taken`',
            422: 'Not a valid E.164 number (`invalid_phone_number`)',
          }),
        },
      },
    },
    async (request, reply) => {
      const { created, exophone } = await exophones.purchase(request.params.accountId, request.body.number);
      return reply.status(created ? 201 : 200).send(exophone);
    },
  );

  app.delete(
    '/v1/accounts/:accountId/exophones/:exophoneId',
    {
      config: { scope: 'write' },
      schema: {
        tags,
        operationId: 'releaseExophone',
        summary: 'Release a production ExoPhone',
        params: accountParamsSchema.extend({ exophoneId: z.string().regex(/^exo_[0-9a-z]{26}$/) }),
        response: { 204: z.undefined().describe('Released'), ...errorResponses({ 404: 'No such account or ExoPhone (`exophone_not_found`)' }) },
      },
    },
    async (request, reply) => {
      await exophones.release(request.params.accountId, request.params.exophoneId);
      return reply.status(204).send();
    },
  );
};
