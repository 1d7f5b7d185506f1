import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../lib/errors.js';
import { decodeCursor, paginationQuerySchema } from '../../lib/pagination.js';
import { errorResponses } from '../../lib/problem.js';
import { assertAccountVisible, principalOf } from '../../plugins/auth.js';
import { accountParamsSchema } from '../accounts/schemas.js';
import { eventCatalogue, type EventType } from '../events/catalogue.js';
import type { WebhookService } from './service.js';

const tags = ['Webhooks'];
const endpointExample = {
  id: 'we_01kb2m3n4p5q6r7s8t9v0w1x2y',
  accountId: 'acc_01kb2m3n4p5q6r7s8t9v0w1x2y',
  url: 'https://hooks.acme.example/billing',
  description: 'billing events to our CRM',
  eventTypes: ['account.upgraded', 'invoice.paid'],
  status: 'enabled',
  disabledReason: null,
  createdAt: '2026-11-26T10:00:00.000Z',
  updatedAt: '2026-11-26T10:00:00.000Z',
};
const endpointShape = {
  id: z.string(),
  accountId: z.string(),
  url: z.string(),
  description: z.string(),
  eventTypes: z.array(z.string()).meta({ description: 'Empty: every event' }),
  status: z.enum(['enabled', 'disabled']),
  disabledReason: z.string().nullable(),
  createdAt: z.date(),
  updatedAt: z.date(),
};
const endpointSchema = z.object(endpointShape).meta({ id: 'WebhookEndpoint', examples: [endpointExample] });
const endpointWithSecretSchema = z
  .object({ ...endpointShape, secret: z.string().meta({ description: 'whsec_...: shown once; verify signatures with it (Standard Webhooks)' }) })
  .meta({ id: 'WebhookEndpointWithSecret', examples: [{ ...endpointExample, secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }] });
const endpointParams = z.object({ endpointId: z.string().regex(/^we_[0-9a-z]{26}$/, 'not a webhook endpoint id') });
// No default here: zod 4 applies a default even under .optional(), which would make a PATCH
// without eventTypes reset the filter. Only the create route defaults it.
// Only types the service sends: a misspelt filter (`invoice.payed`) would silently receive nothing.
const eventTypes = z
  .array(z.enum(Object.keys(eventCatalogue) as [EventType, ...EventType[]]))
  .max(100)
  .meta({ description: 'The event types to receive (see the `webhooks` section); empty: every event' });
const notFound = { 404: 'No such webhook endpoint, or not visible to this key (`webhook_endpoint_not_found`)' };
const badUrl = { 422: 'Not https (in production), or resolving to a loopback, private or link-local address (`invalid_webhook_url`)' };

export const webhookRoutes: FastifyPluginAsyncZod<{ webhooks: WebhookService }> = async (app, { webhooks }) => {
  app.post(
    '/v1/accounts/:accountId/webhook-endpoints',
    {
      config: { scope: 'write' },
      schema: {
        tags,
        operationId: 'createWebhookEndpoint',
        summary: 'Add a webhook endpoint',
        description:
          'Events are POSTed as JSON `{type, timestamp, data}` with the Standard Webhooks headers `webhook-id` (the event id, the same ' +
          'on every retry), `webhook-timestamp` and `webhook-signature` (v1, HMAC-SHA256 of `id.timestamp.body`). Only 2xx counts; ' +
          '410 disables the endpoint; others are retried with jitter for about a day (standard), three days (priority, Growth) or ' +
          'at least three days and then parked for redelivery (guaranteed, Enterprise). The secret is shown once.',
        params: accountParamsSchema,
        body: z
          .object({ url: z.string().max(2000), eventTypes: eventTypes.default([]), description: z.string().max(500).default('') })
          .meta({ id: 'CreateWebhookEndpoint', examples: [{ url: 'https://hooks.acme.example/billing', eventTypes: ['account.upgraded', 'invoice.paid'] }] }),
        response: { 201: endpointWithSecretSchema, ...errorResponses({ 404: 'No such account (`account_not_found`)', ...badUrl }) },
      },
    },
    async (request, reply) => reply.status(201).send(await webhooks.create(request.params.accountId, request.body)),
  );

  app.get(
    '/v1/accounts/:accountId/webhook-endpoints',
    {
      config: { scope: 'read' },
      schema: {
        tags,
        operationId: 'listWebhookEndpoints',
        summary: 'List webhook endpoints',
        params: accountParamsSchema,
        response: {
          200: z.object({ data: z.array(endpointSchema), nextCursor: z.string().nullable() }).meta({ id: 'WebhookEndpointList', examples: [{ data: [endpointExample], nextCursor: null }] }),
          ...errorResponses({ 404: 'No such account (`account_not_found`)' }),
        },
      },
    },
    async (request) => webhooks.list(request.params.accountId),
  );

  app.patch(
    '/v1/webhook-endpoints/:endpointId',
    {
      config: { scope: 'write' },
      schema: {
        tags,
        operationId: 'updateWebhookEndpoint',
        summary: 'Change, disable or enable a webhook endpoint',
        params: endpointParams,
        body: z
          .object({ url: z.string().max(2000).optional(), eventTypes: eventTypes.optional(), description: z.string().max(500).optional(), enabled: z.boolean().optional() })
          .meta({ id: 'UpdateWebhookEndpoint', examples: [{ enabled: false }] }),
        response: { 200: endpointSchema, ...errorResponses({ ...notFound, ...badUrl }) },
      },
    },
    async (request) => webhooks.update(request.params.endpointId, principalOf(request), request.body),
  );

  app.delete(
    '/v1/webhook-endpoints/:endpointId',
    {
      config: { scope: 'write' },
      schema: { tags, operationId: 'deleteWebhookEndpoint', summary: 'Delete a webhook endpoint', params: endpointParams, response: { 204: z.undefined().describe('Deleted'), ...errorResponses(notFound) } },
    },
    async (request, reply) => {
      await webhooks.remove(request.params.endpointId, principalOf(request));
      return reply.status(204).send();
    },
  );

  app.post(
    '/v1/webhook-endpoints/:endpointId/rotate-secret',
    {
      config: { scope: 'write', audit: 'webhook.rotate_secret' },
      schema: {
        tags,
        operationId: 'rotateWebhookSecret',
        summary: 'Rotate the signing secret',
        description: 'The new secret is shown once. The old one keeps signing beside it (two v1 signatures) for WEBHOOK_SECRET_GRACE_HOURS.',
        params: endpointParams,
        response: { 200: endpointWithSecretSchema, ...errorResponses(notFound) },
      },
    },
    async (request) => webhooks.rotateSecret(request.params.endpointId, principalOf(request)),
  );

  const attemptSchema = z.object({ attemptedAt: z.date(), statusCode: z.number().int().nullable(), latencyMs: z.number().int(), error: z.string().nullable(), nextAttemptAt: z.date().nullable() });
  const deliverySchema = z.object({
    id: z.string(),
    eventId: z.string().meta({ description: 'The `webhook-id` header' }),
    eventType: z.string(),
    deliveryClass: z.enum(['standard', 'priority', 'guaranteed']),
    status: z.enum(['pending', 'succeeded', 'failed']),
    attempts: z.array(attemptSchema),
    nextAttemptAt: z.date().nullable(),
    createdAt: z.date(),
    deliveredAt: z.date().nullable(),
  });

  app.get(
    '/v1/webhook-endpoints/:endpointId/deliveries',
    {
      config: { scope: 'read' },
      schema: {
        tags,
        operationId: 'listWebhookDeliveries',
        summary: 'List deliveries and their attempts, newest first',
        params: endpointParams,
        querystring: paginationQuerySchema,
        response: {
          200: z
            .object({ data: z.array(deliverySchema), nextCursor: z.string().nullable() })
            .meta({
              id: 'WebhookDeliveryList',
              examples: [
                {
                  data: [
                    {
                      id: 'whd_01kb2m3n4p5q6r7s8t9v0w1x2y',
                      eventId: 'evt_01kb2m3n4p5q6r7s8t9v0w1x2y',
                      eventType: 'invoice.paid',
                      deliveryClass: 'priority',
                      status: 'succeeded',
                      attempts: [{ attemptedAt: '2026-11-26T10:00:01.000Z', statusCode: 200, latencyMs: 84, error: null, nextAttemptAt: null }],
                      nextAttemptAt: null,
                      createdAt: '2026-11-26T10:00:00.000Z',
                      deliveredAt: '2026-11-26T10:00:01.000Z',
                    },
                  ],
                  nextCursor: null,
                },
              ],
            }),
          ...errorResponses(notFound),
        },
      },
    },
    async (request) =>
      webhooks.listDeliveries(request.params.endpointId, principalOf(request), { before: decodeCursor(request.query.cursor), limit: request.query.limit }),
  );

  app.post(
    '/v1/webhook-endpoints/:endpointId/deliveries/:deliveryId/redeliver',
    {
      config: { scope: 'write' },
      schema: {
        tags,
        operationId: 'redeliverWebhook',
        summary: 'Send a delivery again',
        params: endpointParams.extend({ deliveryId: z.string().regex(/^whd_[0-9a-z]{26}$/) }),
        response: {
          202: z.object({ id: z.string(), status: z.enum(['pending', 'succeeded', 'failed']) }).meta({ id: 'Redelivery', examples: [{ id: 'whd_01kb2m3n4p5q6r7s8t9v0w1x2y', status: 'pending' }] }),
          ...errorResponses({
            404: 'No such endpoint or delivery (`webhook_endpoint_not_found`, `webhook_delivery_not_found`)',
            409: 'An attempt is queued or running (`webhook_delivery_in_flight`)',
          }),
        },
      },
    },
    async (request, reply) => reply.status(202).send(await webhooks.redeliver(request.params.endpointId, request.params.deliveryId, principalOf(request))),
  );

  app.get(
    '/v1/events',
    {
      config: { scope: 'read' },
      schema: {
        tags,
        operationId: 'listEvents',
        summary: 'List an account\'s events, newest first',
        description:
          'The events sent (or to be sent) to webhooks: a consumer that missed deliveries catches up here. Kept for the months the outbox is kept (`HISTORY_RETENTION_MONTHS`, 3 by default: the month of an event is dropped whole once it is past that and every event in it is delivered). A key bound to an account sees its own.',
        querystring: paginationQuerySchema.extend({
          accountId: z.string().regex(/^acc_[0-9a-z]{26}$/).optional().meta({ description: 'Required for keys not bound to an account' }),
          type: z.string().regex(/^[a-z_]+\.[a-z_]+$/).optional(),
        }),
        response: {
          200: z
            .object({ data: z.array(z.object({ id: z.string(), type: z.string(), accountId: z.string().nullable(), data: z.record(z.string(), z.unknown()), createdAt: z.date() })), nextCursor: z.string().nullable() })
            .meta({
              id: 'EventList',
              examples: [{ data: [{ id: 'evt_01kb2m3n4p5q6r7s8t9v0w1x2y', type: 'account.upgraded', accountId: 'acc_01kb2m3n4p5q6r7s8t9v0w1x2y', data: { planId: 'plan_starter_v1' }, createdAt: '2026-11-26T10:00:00.000Z' }], nextCursor: null }],
            }),
          ...errorResponses({ 404: 'Not visible to this key (`account_not_found`)' }),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      if (request.query.accountId) assertAccountVisible(principal, request.query.accountId);
      const accountId = principal.accountId ?? request.query.accountId;
      if (!accountId) throw new AppError('validation_failed', 'accountId is required', { errors: [{ path: 'querystring.accountId', message: 'required' }] });
      const cursor = decodeCursor(request.query.cursor);
      return webhooks.listEvents(accountId, { before: cursor ? Number(cursor) : undefined, limit: request.query.limit, type: request.query.type });
    },
  );
};
