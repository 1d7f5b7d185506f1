import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { decodeCursor, paginationQuerySchema } from '../../lib/pagination.js';
import { errorResponses } from '../../lib/problem.js';
import { assertUnboundKey, principalOf } from '../../plugins/auth.js';
import {
  accountListSchema,
  accountParamsSchema,
  accountSchema,
  billingProfileBodySchema,
  billingProfileSchema,
  createAccountBodySchema,
  e164Schema,
  effectiveEntitlementsSchema,
  setKycBodySchema,
  whitelistedNumberListSchema,
  whitelistedNumberSchema,
} from './schemas.js';
import type { AccountsService } from './service.js';

const notFound = { 404: 'No such account, or not visible to this key (`account_not_found`)' };

export const accountsRoutes: FastifyPluginAsyncZod<{ accounts: AccountsService }> = async (app, { accounts }) => {
  app.post(
    '/v1/accounts',
    {
      config: { scope: 'write', idempotency: 'optional' },
      schema: {
        tags: ['Accounts'],
        operationId: 'createAccount',
        summary: 'Create a trial account',
        description:
          'A new account starts in `trial` with KYC `pending` and the trial entitlements: outbound calls and SMS to whitelisted ' +
          'numbers only, one trial number, no campaigns or WhatsApp. Its currency follows its country (India: INR, elsewhere USD).',
        body: createAccountBodySchema,
        response: {
          201: accountSchema,
          ...errorResponses({
            404: 'Test clocks are off (`test_clocks_disabled`) or no such clock (`test_clock_not_found`)',
            409: 'A request with this Idempotency-Key is still running (`idempotency_request_in_progress`)',
            422: 'The Idempotency-Key was used with another body (`idempotency_key_reused`)',
          }),
        },
      },
    },
    async (request, reply) => {
      assertUnboundKey(principalOf(request));
      return reply.status(201).send(await accounts.createTrialAccount(request.body));
    },
  );

  app.get(
    '/v1/accounts',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['Accounts'],
        operationId: 'listAccounts',
        summary: 'List accounts',
        description: 'Oldest first. A key bound to an account lists only that account.',
        querystring: paginationQuerySchema,
        response: { 200: accountListSchema, ...errorResponses() },
      },
    },
    async (request) =>
      accounts.listAccounts({ after: decodeCursor(request.query.cursor), limit: request.query.limit, only: principalOf(request).accountId }),
  );

  app.get(
    '/v1/accounts/:accountId',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['Accounts'],
        operationId: 'getAccount',
        summary: 'Get an account',
        params: accountParamsSchema,
        response: { 200: accountSchema, ...errorResponses(notFound) },
      },
    },
    async (request) => accounts.getAccount(request.params.accountId),
  );

  app.put(
    '/v1/accounts/:accountId/kyc',
    {
      config: { scope: 'kyc', audit: 'kyc.set' },
      schema: {
        tags: ['Accounts'],
        operationId: 'setKycStatus',
        summary: 'Set the KYC status (KYC service)',
        description:
          'Transitions: pending -> submitted -> approved | rejected; rejected -> submitted. Setting the current status again ' +
          'is a no-op, so retries are safe. Upgrading to a paid plan needs `approved`. Needs the `kyc` scope.',
        params: accountParamsSchema,
        body: setKycBodySchema,
        response: {
          200: accountSchema,
          ...errorResponses({ ...notFound, 409: 'Transition not allowed from the current status (`kyc_transition_not_allowed`)' }),
        },
      },
    },
    async (request) => accounts.setKycStatus(request.params.accountId, request.body),
  );

  app.put(
    '/v1/accounts/:accountId/billing-profile',
    {
      config: { scope: 'write', audit: 'account.billing_profile' },
      schema: {
        tags: ['Accounts'],
        operationId: 'setBillingProfile',
        summary: 'Set the billing profile printed on tax invoices',
        description:
          'Legal name, address, state and GSTIN as the customer\'s tax invoices must show them (GST Rule 46). For an Indian account ' +
          'the `state` is the GST state code and decides the place of supply: the seller\'s state is taxed CGST + SGST, any other ' +
          'IGST; without a profile, invoices are taxed as supplied in the seller\'s state. A GSTIN is checked by format and check ' +
          'character and must be of that state. Invoices issued earlier keep the details they were issued with. Replaces the whole profile; ' +
          'the same body again is a no-op.',
        params: accountParamsSchema,
        body: billingProfileBodySchema,
        response: {
          200: billingProfileSchema,
          ...errorResponses({ ...notFound, 422: 'A GSTIN that is not valid or not of the state (`invalid_gstin`), an unknown state code or PIN (`invalid_billing_profile`)' }),
        },
      },
    },
    async (request) => accounts.setBillingProfile(request.params.accountId, request.body),
  );

  app.get(
    '/v1/accounts/:accountId/billing-profile',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['Accounts'],
        operationId: 'getBillingProfile',
        summary: 'Get the billing profile and how invoices will be taxed',
        params: accountParamsSchema,
        response: { 200: billingProfileSchema, ...errorResponses({ 404: 'No such account (`account_not_found`), or no profile yet (`billing_profile_not_found`)' }) },
      },
    },
    async (request) => accounts.getBillingProfile(request.params.accountId),
  );

  app.get(
    '/v1/accounts/:accountId/entitlements',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['Accounts'],
        operationId: 'getEntitlements',
        summary: 'Get the effective entitlements',
        description: 'What the account may do now: its plan version\'s entitlements, where outbound traffic may go, and whitelist use.',
        params: accountParamsSchema,
        response: { 200: effectiveEntitlementsSchema, ...errorResponses(notFound) },
      },
    },
    async (request) => accounts.entitlementsOf(request.params.accountId),
  );

  app.get(
    '/v1/accounts/:accountId/whitelisted-numbers',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['Trial whitelist'],
        operationId: 'listWhitelistedNumbers',
        summary: 'List whitelisted numbers',
        params: accountParamsSchema,
        querystring: paginationQuerySchema,
        response: { 200: whitelistedNumberListSchema, ...errorResponses(notFound) },
      },
    },
    async (request) =>
      accounts.listWhitelistedNumbers(request.params.accountId, { after: decodeCursor(request.query.cursor), limit: request.query.limit }),
  );

  app.post(
    '/v1/accounts/:accountId/whitelisted-numbers',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['Trial whitelist'],
        operationId: 'addWhitelistedNumber',
        summary: 'Whitelist a number for trial calls and SMS',
        description:
          'E.164 only. 201 when added, 200 when it was already there (safe to retry). The trial may hold a configured number ' +
          'of entries (TRIAL_WHITELIST_LIMIT, default 5). Paid accounts call any number and need no whitelist.',
        params: accountParamsSchema,
        body: z.object({ number: e164Schema }).meta({ id: 'AddWhitelistedNumber', examples: [{ number: '+919876543210' }] }),
        response: {
          200: whitelistedNumberSchema,
          201: whitelistedNumberSchema,
          ...errorResponses({
            ...notFound,
            409: 'Whitelist full (`whitelist_limit_reached`) or not a trial (`whitelist_not_applicable`)',
            422: 'Not a valid E.164 number (`invalid_phone_number`)',
          }),
        },
      },
    },
    async (request, reply) => {
      const { created, entry } = await accounts.addWhitelistedNumber(request.params.accountId, request.body.number);
      return reply.status(created ? 201 : 200).send(entry);
    },
  );

  app.delete(
    '/v1/accounts/:accountId/whitelisted-numbers/:number',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['Trial whitelist'],
        operationId: 'removeWhitelistedNumber',
        summary: 'Remove a whitelisted number',
        description: 'The number in E.164 form; URL-encode the plus as %2B.',
        params: accountParamsSchema.extend({ number: e164Schema }),
        response: {
          204: z.undefined().describe('Removed'),
          ...errorResponses({ 404: 'No such account (`account_not_found`) or number (`whitelisted_number_not_found`)' }),
        },
      },
    },
    async (request, reply) => {
      await accounts.removeWhitelistedNumber(request.params.accountId, request.params.number);
      return reply.status(204).send();
    },
  );
};
