import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponses } from '../../lib/problem.js';
import { accountParamsSchema, e164Schema } from '../accounts/schemas.js';
import { holdSchema, holdTermsSchema } from '../holds/schemas.js';
import type { HoldsService } from '../holds/service.js';
import { denialReasons, type Action } from './domain.js';
import type { AuthorizationService } from './service.js';

export const authorizationRoutes: FastifyPluginAsyncZod<{ authorization: AuthorizationService; holds: HoldsService }> = async (app, { authorization, holds }) => {
  async function decide(accountId: string, body: { action: Action; destination?: string; hold?: z.infer<typeof holdTermsSchema> }) {
    const { hold, action, destination } = body;
    if (!hold || (action !== 'outbound_call' && action !== 'outbound_sms')) return authorization.check(accountId, body);
    if (!destination) return { allowed: false, reason: 'destination_required' as const, detail: 'Calls and SMS need a destination number', hold: null };
    const held = await holds.hold(accountId, { action, destination, ...hold });
    return { allowed: held.granted, reason: held.reason, detail: held.detail, hold: held.hold };
  }

  app.post(
    '/v1/accounts/:accountId/authorize',
    {
      config: { scope: 'read', hot: true },
      schema: {
        tags: ['Usage'],
        operationId: 'authorizeAction',
        summary: 'May this account do this now? (called per call and message)',
        description:
          'Allowed, or not with a reason code: trial and number not whitelisted; SMS to an Indian number without DLT; limited, ' +
          'or past_due beyond the grace period; balance below one pulse or one SMS; feature not in plan; KYC, paid plan or ' +
          'ExoPhone limit for a purchase. Reads the current state, so changes count from the next check. Credits are the available ' +
          'balance (balance less active holds). With `hold`, a call or SMS that is allowed also holds its credits in the same request ' +
          '(as POST /v1/accounts/{id}/holds does): allowed only if the hold is granted, and the answer carries it. Without `hold` it writes nothing.',
        params: accountParamsSchema,
        body: z
          .object({
            action: z.enum(['outbound_call', 'outbound_sms', 'whatsapp', 'campaign', 'purchase_exophone']),
            destination: e164Schema.optional().meta({ description: 'The number called or texted (E.164): needed for calls and SMS' }),
            hold: holdTermsSchema.optional().meta({ description: 'Hold credits for the call or SMS in the same request (outbound_call and outbound_sms only)' }),
          })
          .refine((b) => !b.hold || b.action === 'outbound_call' || b.action === 'outbound_sms', { message: 'only calls and SMS take a hold', path: ['hold'] })
          .meta({ id: 'AuthorizeRequest', examples: [{ action: 'outbound_sms', destination: '+919876543210' }, { action: 'outbound_call', destination: '+919876543210', hold: { reference: 'call-8812', units: 2, ttlSeconds: 600 } }] }),
        response: {
          200: z
            .object({
              allowed: z.boolean(),
              reason: z.enum(denialReasons).nullable(),
              detail: z.string().nullable(),
              hold: holdSchema.nullable().optional().meta({ description: 'The hold taken, when `hold` was asked and granted' }),
            })
            .meta({ id: 'Authorization', examples: [{ allowed: false, reason: 'dlt_required', detail: 'SMS to Indian numbers needs DLT registration (PUT /v1/accounts/{id}/dlt)' }] }),
          ...errorResponses({ 404: 'No such account (`account_not_found`)', 422: 'Not a valid E.164 number (`invalid_phone_number`)' }),
        },
      },
    },
    async (request) => {
      const answer = await decide(request.params.accountId, request.body);
      authorization.record(request.body.action, answer.reason);
      return answer;
    },
  );

  app.put(
    '/v1/accounts/:accountId/dlt',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['Accounts'],
        operationId: 'setDltRegistration',
        summary: 'Record the account\'s DLT registration (SMS in India)',
        params: accountParamsSchema,
        body: z
          .object({ entityId: z.string().regex(/^\d{10,19}$/, 'a DLT principal entity id: 10 to 19 digits').nullable() })
          .meta({ id: 'DltRegistration', examples: [{ entityId: '1201159876543210987' }] }),
        response: {
          200: z
            .object({ accountId: z.string(), dltEntityId: z.string().nullable(), registered: z.boolean() })
            .meta({ id: 'DltStatus', examples: [{ accountId: 'acc_01kb2m3n4p5q6r7s8t9v0w1x2y', dltEntityId: '1201159876543210987', registered: true }] }),
          ...errorResponses({ 404: 'No such account (`account_not_found`)' }),
        },
      },
    },
    async (request) => authorization.setDlt(request.params.accountId, request.body.entityId),
  );
};
