import { createHash } from 'node:crypto';
import type { Db } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import { timeZoneForCountry } from '../../lib/format.js';
import * as accountsRepo from '../accounts/repo.js';
import * as catalogRepo from '../catalog/repo.js';
import { toInvoiceDto } from './dto.js';
import * as repo from './repo.js';
import type { InvoiceDto } from './schemas.js';
import { taxRegime, type Taxation } from './tax.js';

export interface StoredPdf {
  pdf: Buffer;
  /** Hex SHA-256 of the bytes. */
  sha256: string;
}

/**
 * Invoice PDFs, rendered once and kept. The first that needs one (a download, the email that
 * attaches it) renders it; every later one gets the same bytes, so a customer's copy, the
 * email's and a tax officer's are one document. Rendering is deterministic besides, so two
 * processes rendering at once keep identical bytes (the first insert wins).
 */
export function createInvoiceDocuments(deps: { db: Db; clock: Clock; taxation?: Taxation }) {
  const { db, clock } = deps;

  async function pdfOf(invoice: repo.InvoiceRow): Promise<StoredPdf & { invoice: InvoiceDto }> {
    const dto = toInvoiceDto(invoice, await repo.linesOf(db, invoice.id));
    const kept = await repo.findDocument(db, invoice.id);
    if (kept) return { invoice: dto, pdf: kept.pdf, sha256: kept.sha256 };
    const account = (await accountsRepo.findAccount(db, invoice.accountId))!;
    const plan = await catalogRepo.findPlan(db, invoice.planId);
    // Invoices issued before their supply was kept: described as the account stands now.
    const supply = dto.supply ?? (deps.taxation ? taxRegime(deps.taxation, account).supply : null);
    if (!supply) throw new Error(`invoice ${invoice.id} has no supply and no seller is configured to describe it`);
    // pdfkit and the fonts load on the first document: most processes never render one (about 9 MB of RSS and 0.1 s of start).
    const pdf = await (await import('./pdf.js')).renderInvoicePdf({ invoice: { ...dto, supply }, planName: plan?.name ?? dto.planId, timeZone: timeZoneForCountry(account.country) });
    await repo.keepDocument(db, { id: invoice.id, pdf, sha256: createHash('sha256').update(pdf).digest('hex'), createdAt: clock.now() });
    const stored = (await repo.findDocument(db, invoice.id))!;
    return { invoice: dto, pdf: stored.pdf, sha256: stored.sha256 };
  }

  return { pdfOf };
}

export type InvoiceDocuments = ReturnType<typeof createInvoiceDocuments>;
