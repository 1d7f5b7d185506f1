import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Clock } from '../../lib/clock.js';
import type { Db } from '../../db/client.js';
import { errorResponses } from '../../lib/problem.js';
import { replyWithPdf } from '../../lib/pdf-reply.js';
import { principalOf } from '../../plugins/auth.js';
import { toInvoiceDto } from '../billing/dto.js';
import { pdfFileName } from '../billing/domain.js';
import * as billingRepo from '../billing/repo.js';
import { invoiceIdSchema, invoiceSchema } from '../billing/schemas.js';
import { creditNotePdf } from './documents.js';
import { toCreditNoteDto } from './dto.js';
import { creditNoteIdSchema, creditNoteListSchema, creditNoteSchema, issueCreditNoteBodySchema } from './schemas.js';
import type { CreditNotesService } from './service.js';

const invoiceParams = z.object({ invoiceId: invoiceIdSchema });
const noteParams = z.object({ creditNoteId: creditNoteIdSchema });
const invoiceNotFound = { 404: 'No such invoice, or not visible to this key (`invoice_not_found`)' };

/** Corrections of issued invoices: credit notes (with their refunds) and voiding. Policy: docs/refunds.md. */
export const creditNoteRoutes: FastifyPluginAsyncZod<{ creditNotes: CreditNotesService; db: Db; clock: Clock }> = async (app, { creditNotes, db, clock }) => {
  app.post(
    '/v1/invoices/:invoiceId/credit-notes',
    {
      config: { scope: 'ops', idempotency: 'required', audit: 'invoice.credit_note' },
      schema: {
        tags: ['Credit notes'],
        operationId: 'issueCreditNote',
        summary: 'Issue a credit note against an invoice (ops)',
        description:
          'Takes a taxable value off an invoice (an `amount`, from its lines in order, or per line), reverses its tax in proportion ' +
          '(CGST + SGST or IGST as invoiced), and numbers the note in its own gapless series (CN/2627/0000001). Never more than the ' +
          'invoice minus earlier credit notes. Settled as a refund to the card, UPI or bank that paid (through the gateway; purchased ' +
          'credits are taken back from the balance first, and refused with `credits_already_spent` once spent), as credits in the ' +
          'ledger, or, on an unpaid invoice, as less due (owing nothing, it is settled and its dunning stops). A retry with the same ' +
          '`Idempotency-Key` answers with the same note and refunds once. Example: an Indian customer paid INR 11,800 (INR 10,000 + ' +
          'IGST 18%) for Growth; 10 days of outage are credited with `{ "reason": "Outage", "amount": 333333 }`: a credit note of ' +
          'INR 3,933.33 refunded to their card. Policy: docs/refunds.md.',
        params: invoiceParams,
        body: issueCreditNoteBodySchema,
        response: {
          201: creditNoteSchema,
          ...errorResponses({
            ...invoiceNotFound,
            409: '`invoice_not_creditable` (void), `invoice_payment_in_progress`, `credits_already_spent`, `idempotency_request_in_progress`',
            422: '`credit_note_exceeds_invoice` (with `creditable`), `invalid_settlement`, `refund_not_possible` (paid by wire or cheque: settle as credits), `idempotency_key_reused`',
          }),
        },
      },
    },
    async (request, reply) => reply.status(201).send(toCreditNoteDto(await creditNotes.issue(request.params.invoiceId, principalOf(request), request.body, request.idempotency))),
  );

  app.get(
    '/v1/invoices/:invoiceId/credit-notes',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['Credit notes'],
        operationId: 'listCreditNotesOfInvoice',
        summary: 'List an invoice\'s credit notes',
        description: 'Oldest first; an invoice has a handful at most.',
        params: invoiceParams,
        response: { 200: creditNoteListSchema, ...errorResponses(invoiceNotFound) },
      },
    },
    async (request) => ({ data: (await creditNotes.listForInvoice(request.params.invoiceId, principalOf(request))).map(toCreditNoteDto) }),
  );

  app.get(
    '/v1/credit-notes/:creditNoteId',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['Credit notes'],
        operationId: 'getCreditNote',
        summary: 'Get a credit note and its refund',
        params: noteParams,
        response: { 200: creditNoteSchema, ...errorResponses({ 404: 'No such credit note, or not visible to this key (`credit_note_not_found`)' }) },
      },
    },
    async (request) => toCreditNoteDto(await creditNotes.get(request.params.creditNoteId, principalOf(request))),
  );

  app.get(
    '/v1/credit-notes/:creditNoteId/pdf',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['Credit notes'],
        operationId: 'getCreditNotePdf',
        summary: 'Download the credit note as PDF',
        description: 'Rendered once and kept, like an invoice\'s: the same bytes every time, with an `ETag` (304 on `If-None-Match`).',
        params: noteParams,
        response: {
          200: { description: 'The credit note as a PDF', content: { 'application/pdf': { schema: z.string().meta({ format: 'binary' }) } } },
          304: z.undefined().describe('Not modified'),
          ...errorResponses({ 404: 'No such credit note, or not visible to this key (`credit_note_not_found`)' }),
        },
      },
    },
    async (request, reply) => {
      const { note } = await creditNotes.get(request.params.creditNoteId, principalOf(request));
      const { pdf, sha256 } = await creditNotePdf(db, clock, note);
      return replyWithPdf(request, reply, { pdf, sha256, fileName: pdfFileName(note.number) });
    },
  );

  app.post(
    '/v1/invoices/:invoiceId/void',
    {
      config: { scope: 'ops', idempotency: 'optional', audit: 'invoice.void' },
      schema: {
        tags: ['Invoices'],
        operationId: 'voidInvoice',
        summary: 'Void an open invoice (ops)',
        description:
          'Nothing is owed on it any more; its number stays used (numbers stay gapless). Dunning stops, a payment awaiting a wire for ' +
          'it fails, and a subscription past due because of it is `active` again. Voiding it again answers the same. A paid invoice ' +
          'is corrected with a credit note instead; an upgrade\'s invoice is not voided.',
        params: invoiceParams,
        response: {
          200: invoiceSchema,
          ...errorResponses({ ...invoiceNotFound, 409: '`invoice_not_voidable` (paid, or a pending upgrade\'s), `invoice_payment_in_progress`' }),
        },
      },
    },
    async (request) => {
      const invoice = await creditNotes.voidInvoice(request.params.invoiceId, principalOf(request));
      return toInvoiceDto(invoice, await billingRepo.linesOf(db, invoice.id));
    },
  );
};
