import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { errorResponses } from '../../lib/problem.js';
import { principalOf } from '../../plugins/auth.js';
import { accountParamsSchema } from '../accounts/schemas.js';
import { extendRequestSchema, holdParamsSchema, holdRequestSchema, holdResultSchema, holdSchema } from './schemas.js';
import type { HoldsService } from './service.js';

const tags = ['Usage'];
const holdNotFound = { 404: 'No such hold, or not visible to this key (`hold_not_found`)' };

export const holdsRoutes: FastifyPluginAsyncZod<{ holds: HoldsService }> = async (app, { holds }) => {
  app.post(
    '/v1/accounts/:accountId/holds',
    {
      config: { scope: 'write', hot: true },
      schema: {
        tags,
        operationId: 'createHold',
        summary: 'Hold credits for a call or message that starts now',
        description:
          'Reserves `units` pulses (a call) or SMS segments at the plan\'s rate from the available balance (balance less active holds), ' +
          'so concurrent calls can never spend more than the account has. Refused with authorize\'s reason codes (200, `granted: false`). ' +
          'The `reference` (the call id) makes it idempotent: the same reference answers the first hold (`duplicate: true`, 200); ' +
          'the same reference for another action or destination is 422 `hold_reference_reused`. ' +
          'A usage event that names the `holdId` settles it: the actual price is debited once and the rest freed. ' +
          'Extend it as a long call goes on; release it if the call never connects; unsettled, it expires after `ttlSeconds` and is freed by the workers.',
        params: accountParamsSchema,
        body: holdRequestSchema,
        response: {
          200: holdResultSchema,
          201: holdResultSchema,
          ...errorResponses({
            404: 'No such account, or not visible to this key (`account_not_found`)',
            422: 'Not a valid E.164 number (`invalid_phone_number`); the reference already holds for another action or destination (`hold_reference_reused`)',
          }),
        },
      },
    },
    async (request, reply) => {
      const result = await holds.hold(request.params.accountId, request.body);
      return reply.status(result.granted && !result.duplicate ? 201 : 200).send(result);
    },
  );

  app.get(
    '/v1/holds/:holdId',
    {
      config: { scope: 'read' },
      schema: { tags, operationId: 'getHold', summary: 'Get a hold', params: holdParamsSchema, response: { 200: holdSchema, ...errorResponses(holdNotFound) } },
    },
    async (request) => holds.get(request.params.holdId, principalOf(request)),
  );

  app.post(
    '/v1/holds/:holdId/extend',
    {
      config: { scope: 'write', hot: true, idempotency: 'optional' },
      schema: {
        tags,
        operationId: 'extendHold',
        summary: 'Hold more as a long call goes on',
        description:
          'Adds `units` at the price the hold was granted at, from the available balance, and keeps the hold from expiring for its time to live ' +
          '(or `ttlSeconds`) from now. `granted: false` with `insufficient_credits` when the balance cannot cover them: end the call. ' +
          'Each request adds: send an Idempotency-Key to retry one safely.',
        params: holdParamsSchema,
        body: extendRequestSchema,
        response: {
          200: holdResultSchema,
          ...errorResponses({ ...holdNotFound, 409: 'The hold has ended: settled, released or expired (`hold_not_active`)' }),
        },
      },
    },
    async (request) => holds.extend(request.params.holdId, request.body, principalOf(request)),
  );

  app.post(
    '/v1/holds/:holdId/release',
    {
      config: { scope: 'write', hot: true },
      schema: {
        tags,
        operationId: 'releaseHold',
        summary: 'Release a hold (the call did not connect, the message was not sent)',
        description: 'Frees what is held. Releasing a hold that has ended (settled, released, expired) answers it as it is.',
        params: holdParamsSchema,
        response: { 200: holdSchema, ...errorResponses(holdNotFound) },
      },
    },
    async (request) => holds.release(request.params.holdId, principalOf(request)),
  );
};
