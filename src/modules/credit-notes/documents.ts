import { createHash } from 'node:crypto';
import type { Db } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import { timeZoneForCountry } from '../../lib/format.js';
import { amountInWords } from '../../lib/words.js';
import * as accountsRepo from '../accounts/repo.js';
import * as billingRepo from '../billing/repo.js';
import * as repo from './repo.js';

/** For the emails that attach it: a credit note's number and PDF by its id, or null when there is none. */
export const creditNotePdfById = (db: Db, clock: Clock) => async (creditNoteId: string): Promise<{ number: string; pdf: Buffer } | null> => {
  const note = await repo.findCreditNote(db, creditNoteId);
  return note ? { number: note.number, pdf: (await creditNotePdf(db, clock, note)).pdf } : null;
};

/** A credit note's PDF, rendered on first need and kept (as invoices' are): the same bytes every time. */
export async function creditNotePdf(db: Db, clock: Clock, note: repo.CreditNoteRow): Promise<{ pdf: Buffer; sha256: string }> {
  const kept = await billingRepo.findDocument(db, note.id);
  if (kept) return { pdf: kept.pdf, sha256: kept.sha256 };
  const invoice = (await billingRepo.findInvoice(db, note.invoiceId))!;
  const account = (await accountsRepo.findAccount(db, note.accountId))!;
  const supply = note.supply ?? invoice.supply;
  if (!supply) throw new Error(`credit note ${note.id}: its invoice keeps no supply to print`);
  // Loaded on first use, as for invoices (src/modules/billing/documents.ts).
  const pdf = await (await import('../billing/pdf.js')).renderCreditNotePdf({
    note: {
      number: note.number,
      issuedAt: note.issuedAt,
      currency: note.currency,
      reason: note.reason,
      lines: note.lines,
      subtotal: note.subtotal,
      taxAmount: note.taxAmount,
      total: note.total,
      components: note.taxComponents,
      amountInWords: amountInWords(note.total, note.currency),
    },
    invoice: { number: invoice.number, issuedAt: invoice.issuedAt },
    supply,
    timeZone: timeZoneForCountry(account.country),
  });
  await billingRepo.keepDocument(db, { id: note.id, pdf, sha256: createHash('sha256').update(pdf).digest('hex'), createdAt: clock.now() });
  const stored = (await billingRepo.findDocument(db, note.id))!;
  return { pdf: stored.pdf, sha256: stored.sha256 };
}
