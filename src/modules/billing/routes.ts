import { pdfFileName } from './domain.js';
import { replyWithPdf } from '../../lib/pdf-reply.js';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { decodeCursor, paginationQuerySchema } from '../../lib/pagination.js';
import { errorResponses } from '../../lib/problem.js';
import { principalOf } from '../../plugins/auth.js';
import { accountParamsSchema } from '../accounts/schemas.js';
import { subscriptionSchema } from '../subscriptions/schemas.js';
import { invoiceIdSchema, invoiceListSchema, invoiceSchema } from './schemas.js';
import type { BillingService } from './service.js';

export const billingRoutes: FastifyPluginAsyncZod<{ billing: BillingService }> = async (app, { billing }) => {
  app.get(
    '/v1/accounts/:accountId/subscription',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['Subscriptions'],
        operationId: 'getSubscription',
        summary: 'Get the account\'s subscription',
        description: 'The live one; after it ended, the one that ended last (`status: cancelled`, with `endedAt`).',
        params: accountParamsSchema,
        response: {
          200: subscriptionSchema,
          ...errorResponses({ 404: 'No such account (`account_not_found`), or never subscribed (`subscription_not_found`)' }),
        },
      },
    },
    async (request) => billing.getSubscription(request.params.accountId),
  );

  app.get(
    '/v1/accounts/:accountId/invoices',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['Invoices'],
        operationId: 'listInvoices',
        summary: 'List the account\'s invoices, newest first',
        params: accountParamsSchema,
        querystring: paginationQuerySchema,
        response: { 200: invoiceListSchema, ...errorResponses({ 404: 'No such account (`account_not_found`)' }) },
      },
    },
    async (request) =>
      billing.listInvoices(request.params.accountId, { before: decodeCursor(request.query.cursor), limit: request.query.limit }),
  );

  app.get(
    '/v1/invoices/:invoiceId',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['Invoices'],
        operationId: 'getInvoice',
        summary: 'Get an invoice',
        params: z.object({ invoiceId: invoiceIdSchema }),
        response: { 200: invoiceSchema, ...errorResponses({ 404: 'No such invoice, or not visible to this key (`invoice_not_found`)' }) },
      },
    },
    async (request) => billing.getInvoice(request.params.invoiceId, principalOf(request)),
  );

  app.get(
    '/v1/invoices/:invoiceId/pdf',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['Invoices'],
        operationId: 'getInvoicePdf',
        summary: 'Download the tax invoice as PDF',
        description:
          'The tax invoice as CGST Rule 46 asks (seller and buyer with GSTIN, place of supply, SAC, CGST + SGST or IGST, amount in ' +
          'words), with embedded fonts for Latin and Devanagari names. Rendered once and kept: every download returns the same bytes, ' +
          'with an `ETag`; `If-None-Match` with it answers 304.',
        params: z.object({ invoiceId: invoiceIdSchema }),
        response: {
          200: { description: 'The invoice as a PDF', content: { 'application/pdf': { schema: z.string().meta({ format: 'binary' }) } } },
          304: z.undefined().describe('Not modified: the `If-None-Match` ETag is the document\'s'),
          ...errorResponses({ 404: 'No such invoice, or not visible to this key (`invoice_not_found`)' }),
        },
      },
    },
    async (request, reply) => {
      const { invoice, pdf, sha256 } = await billing.invoicePdf(request.params.invoiceId, principalOf(request));
      return replyWithPdf(request, reply, { pdf, sha256, fileName: pdfFileName(invoice.number) });
    },
  );
};
