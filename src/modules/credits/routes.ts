import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { decodeCursor, paginationQuerySchema } from '../../lib/pagination.js';
import { errorResponses } from '../../lib/problem.js';
import { principalOf } from '../../plugins/auth.js';
import { accountParamsSchema } from '../accounts/schemas.js';
import { adjustmentBodySchema, creditsSchema, invariantReportSchema, ledgerPageSchema, usageBatchSchema, usageResultSchema } from './schemas.js';
import type { CreditsService } from './service.js';

const tags = ['Credits'];
const notFound = { 404: 'No such account, or not visible to this key (`account_not_found`)' };

export const creditsRoutes: FastifyPluginAsyncZod<{ credits: CreditsService }> = async (app, { credits }) => {
  app.get(
    '/v1/accounts/:accountId/credits',
    {
      config: { scope: 'read' },
      schema: { tags, operationId: 'getCredits', summary: 'Get the credit balance and auto-recharge settings', params: accountParamsSchema, response: { 200: creditsSchema, ...errorResponses(notFound) } },
    },
    async (request) => credits.getCredits(request.params.accountId),
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
      config: { scope: 'ops', idempotency: 'required' },
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
    async (request, reply) => reply.status(201).send(await credits.adjust(request.params.accountId, request.body, principalOf(request))),
  );

  app.post(
    '/v1/usage',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['Usage'],
        operationId: 'rateUsage',
        summary: 'Rate and debit a batch of calls and SMS',
        description:
          'Up to 1,000 events. A voice call costs ceil(duration / pulse length) pulses at the plan\'s per-pulse rate; an SMS its ' +
          'segments at the per-SMS rate. Each event id debits once, whatever the retries: a repeated id answers its first result ' +
          'with `duplicate: true`. An event the balance cannot cover is rejected on its own (`insufficient_credits`) without ' +
          'failing the batch; so are events of a limited account (`account_limited`) or a plan that bills nothing (`not_billable`).',
        body: usageBatchSchema,
        response: { 200: usageResultSchema, ...errorResponses() },
      },
    },
    async (request) => credits.rateUsage(request.body, principalOf(request)),
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
